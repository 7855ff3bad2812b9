/*
 * The HSS field table: every field of the simplified export request and of
 * HSS POST /v5/{project_id}/image/baseline/export, taken from the API
 * reference (table 2 and table 4) with types from the SDK (hss-api-notes
 * 1.3), and the names only the gateway may set.  Owns only static data and
 * the rule and documentation text derived from it.  Must never hold one
 * `if` per field: a new field is a new row.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fields.h"
#include "translate.h"

static const char *const image_types[] = {
    "private_image", "shared_image", "local_image", "instance_image",
    "harbor",        "jfrog",        "cicd",        NULL};
static const char *const vul_types[] = {"linux_vul", "app_vul", NULL};
static const char *const scan_statuses[] = {
    "unscan",          "success",         "scanning", "failed",
    "download_failed", "image_oversized", NULL};
/* Capitalised in the reference, unlike build_command_risk_level. */
static const char *const severity_levels[] = {"Security", "Low", "Medium",
                                              "High", NULL};
static const char *const risk_levels[] = {"critical", "high", "medium", "low",
                                          NULL};

#define I32_MAX 2147483647LL
#define I64_MAX 9223372036854775807LL

#define STR(n, lo, hi, d)                                                      \
	{                                                                      \
		(n), GW_TR_STRING, GW_TR_BODY, 0, NULL, (lo), (hi), 0, (d)     \
	}
#define ENUM(n, e, d)                                                          \
	{                                                                      \
		(n), GW_TR_ENUM, GW_TR_BODY, 0, (e), 0, 0, 0, (d)              \
	}
#define BOOL(n, d)                                                             \
	{                                                                      \
		(n), GW_TR_BOOL, GW_TR_BODY, 0, NULL, 0, 1, 0, (d)             \
	}
#define TIME(n, d)                                                             \
	{                                                                      \
		(n), GW_TR_TIME, GW_TR_BODY, 0, NULL, 0, I64_MAX, 0, (d)       \
	}
#define LIST(n, items, lo, hi, d)                                              \
	{                                                                      \
		(n), GW_TR_STRLIST, GW_TR_BODY, 0, NULL, (lo), (hi), (items),  \
		    (d)                                                        \
	}

const struct gw_tr_field gw_tr_fields[] = {
    {"project", GW_TR_STRING, GW_TR_ALIAS, GW_TR_CALLER_REQUIRED, NULL, 1, 64,
     0,
     "Required. Project alias from the gateway config; selects the "
     "project_id path segment, the region header and the endpoint. "
     "The 64-character cap is the gateway's own."},
    {"enterprise_project_id", GW_TR_STRING, GW_TR_QUERY, 0, NULL, 1, 256, 0,
     "Enterprise project ID, or all_granted_eps for all of them. "
     "Defaults to the project's enterprise_project_id; not sent when "
     "that is unset."},
    {"export_size", GW_TR_INT, GW_TR_QUERY, GW_TR_WIRE_REQUIRED, NULL, 0,
     I32_MAX, 0,
     "Number of records to export. Required by HSS; defaults to the "
     "configured default_export_size."},
    LIST("image_id_list", 1000, 1, 128,
         "Image IDs to export when operate_all is false. The reference's "
         "range is meaningless for a list: the 1000-element cap and the "
         "1-character minimum are the gateway's own; the 128-character "
         "maximum is image_id's."),
    BOOL("operate_all", "true: export everything matching the filters."),
    ENUM("image_type", image_types, "Image type; cicd for CI/CD images."),
    ENUM("vul_type", vul_types, "Vulnerability type."),
    ENUM("scan_status", scan_statuses, "Scan status."),
    STR("namespace", 0, 65535,
        "Organization name (private and shared images only)."),
    STR("image_name", 0, 65535, "Image name."),
    STR("image_version", 0, 65535, "Image tag."),
    STR("image_id", 0, 128, "Image ID."),
    BOOL("latest_version", "Latest image versions only."),
    /* int64 in the SDK (Long), like the times: images over 2 GiB are
     * common, so the page's 2147483547 is the same documentation error. */
    {"image_size", GW_TR_INT, GW_TR_BODY, 0, NULL, 0, I64_MAX, 0,
     "Image size in bytes, int64 (SDK Long). The documented maximum of "
     "2147483547 is a documentation error and is not enforced."},
    TIME("start_latest_update_time",
         "Creation start, ms since the epoch. The documented maximum of "
         "2147483547 is a documentation error (hss-api-notes 1.3) and is "
         "not enforced."),
    TIME("end_latest_update_time", "Creation end, ms since the epoch."),
    TIME("start_latest_scan_time",
         "Start of the latest scan completion, ms since the epoch."),
    TIME("end_latest_scan_time",
         "End of the latest scan completion, ms since the epoch."),
    BOOL("has_malicious_file", "Whether there are malicious files."),
    BOOL("has_vul", "Whether there are software vulnerabilities."),
    BOOL("has_unsafe_setting", "Whether there are baseline check issues."),
    BOOL("risky", "Whether there are security risks."),
    ENUM("severity_level", severity_levels, "Image risk level (capitalised)."),
    STR("instance_name", 0, 128, "Enterprise image instance name."),
    STR("instance_id", 0, 128, "SWR Enterprise Edition instance ID."),
    STR("cicd_name", 0, 128, "CI/CD name."),
    ENUM("build_command_risk_level", risk_levels,
         "Risk level of a build instruction (lower case)."),
    STR("build_command_risk_name", 1, 128,
        "Name of a build instruction "
        "risk."),
    LIST("build_command_rule_id_list", 1000, 1, 200,
         "Build instruction rule IDs. The reference's 1 to 200 characters "
         "apply to each element; the 1000-element cap is the gateway's own."),
    BOOL("has_container", "Whether there are containers."),
    LIST("vul_id_list", 2048, 1, 128,
         "Vulnerability IDs. The reference's \"0 to 2048\" is read as the "
         "element cap; the 1 to 128 characters per element are the "
         "gateway's own."),
};

const size_t gw_tr_nfields = sizeof(gw_tr_fields) / sizeof(gw_tr_fields[0]);

/*
 * Names that select where and as whom the gateway calls HSS.  A caller who
 * could set them would pick another tenant's project or region, or carry a
 * token of their own past the policy check.
 */
static const char *const forbidden[] = {
    "project_id", "region", "X-Auth-Token", "token", "endpoint", "credentials"};

static const char *const type_names[GW_TR_TYPE__MAX] = {
    [GW_TR_STRING] = "string",
    [GW_TR_ENUM] = "string",
    [GW_TR_BOOL] = "boolean",
    [GW_TR_INT] = "integer",
    [GW_TR_TIME] = "integer or RFC 3339 string",
    [GW_TR_STRLIST] = "array of strings",
};
_Static_assert(sizeof(type_names) / sizeof(type_names[0]) == GW_TR_TYPE__MAX,
               "every type needs a name");

static const char *const where_names[GW_TR_WHERE__MAX] = {
    [GW_TR_ALIAS] = "gateway",
    [GW_TR_QUERY] = "query",
    [GW_TR_BODY] = "body",
};
_Static_assert(sizeof(where_names) / sizeof(where_names[0]) == GW_TR_WHERE__MAX,
               "every location needs a name");

const struct gw_tr_field *
gw_tr_field_get(const char *name)
{
	size_t i;

	for (i = 0; i < gw_tr_nfields; i++)
		if (strcmp(gw_tr_fields[i].name, name) == 0)
			return &gw_tr_fields[i];
	return NULL;
}

int
gw_tr_forbidden(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		if (strcasecmp(forbidden[i], name) == 0)
			return 1;
	return 0;
}

const char *
gw_tr_elem_rule(const struct gw_tr_field *f, char *buf, size_t cap)
{
	snprintf(buf, cap, "must be a string of %lld to %lld characters",
	         f->min, f->max);
	return buf;
}

static void
enum_rule(const struct gw_tr_field *f, char *buf, size_t cap)
{
	size_t i, n;

	n = (size_t)snprintf(buf, cap, "must be one of:");
	for (i = 0; f->enums[i] != NULL && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s %s",
		                      i == 0 ? "" : ",", f->enums[i]);
}

const char *
gw_tr_rule(const struct gw_tr_field *f, int wire, char *buf, size_t cap)
{
	switch (f->type) {
	case GW_TR_STRING:
		return gw_tr_elem_rule(f, buf, cap);
	case GW_TR_ENUM:
		enum_rule(f, buf, cap);
		break;
	case GW_TR_BOOL:
		snprintf(buf, cap, "must be a boolean (true or false)");
		break;
	case GW_TR_INT:
		snprintf(buf, cap, "must be an integer between %lld and %lld",
		         f->min, f->max);
		break;
	case GW_TR_TIME:
		snprintf(buf, cap, "must be an integer between %lld and %lld%s",
		         f->min, f->max,
		         wire
		             ? ""
		             : " (milliseconds since the epoch) or an RFC 3339 "
		               "date-time not before 1970");
		break;
	case GW_TR_STRLIST:
		snprintf(
		    buf, cap,
		    "must be an array of at most %zu strings of %lld to %lld "
		    "characters",
		    f->max_items, f->min, f->max);
		break;
	default:
		snprintf(buf, cap, "is invalid");
		break;
	}
	return buf;
}

int
gw_tr_fields_markdown(struct gw_buf *b)
{
	char rule[256];
	const struct gw_tr_field *f;
	size_t i;

	gw_buf_puts(b, "| Field | JSON type | Where | Rule | Notes |\n");
	gw_buf_puts(b, "|---|---|---|---|---|\n");
	for (i = 0; i < gw_tr_nfields; i++) {
		f = &gw_tr_fields[i];
		gw_buf_printf(b, "| `%s` | %s | %s | %s | %s |\n", f->name,
		              type_names[f->type], where_names[f->where],
		              gw_tr_rule(f, 0, rule, sizeof(rule)), f->doc);
	}
	for (i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		gw_buf_printf(
		    b,
		    "| `%s` (any case) | any | never | %s | Rejected with "
		    "400. |\n",
		    forbidden[i], GW_TR_FORBIDDEN_RULE);
	return b->overflow ? -1 : 0;
}
