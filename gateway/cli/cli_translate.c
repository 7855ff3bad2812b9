/*
 * "hssgw translate": prints the HSS request an export becomes, or (with
 * --handle) the status and download requests of a task, built by the
 * translation module as the server builds them.  Credentials show as
 * placeholders: no secret is ever read or printed here.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "config.h"
#include "cred.h"
#include "tasks.h"
#include "translate.h"
#include "upstream.h"

/* The project's credential headers, placeholders only (the table is the
 * credentials module's); 0 or -1, also for a project without one. */
static int
show_headers(struct gw_upreq *up, const struct gw_conf_project *p)
{
	if (p->cred == NULL)
		return -1;
	return gw_cred_show_headers(up, p->cred->type, p->project_id);
}

/* One task request as "hssgw translate" prints it; 0 or -1. */
static int
show_task(const struct gw_conf_project *p, const struct gw_task_ref *ref,
          enum gw_tr_task_api api, const char *id, struct gw_buf *out)
{
	struct gw_upreq *up = NULL;
	const char *eps = !ref->has_eps         ? p->enterprise_project_id
	                  : ref->eps[0] != '\0' ? ref->eps
	                                        : NULL;
	int rc = -1;

	if (gw_tr_task_build(p, eps, api, id, &up, NULL) != GW_OK ||
	    show_headers(up, p) == -1 || gw_upreq_json(up, out) == -1)
		goto out;
	rc = 0;
out:
	gw_upreq_free(up);
	return rc;
}

int
gw_cli_translate_task(const struct gw_config *conf, const char *handle,
                      const char *file_id, struct gw_buf *out)
{
	struct gw_task_key *key = NULL;
	const struct gw_conf_project *p = NULL;
	struct gw_task_ref ref;
	char err[512];
	int rc = -1;

	if (conf->tasks_handle_key_file == NULL) {
		gw_buf_puts(out, "no tasks.handle_key_file: handles of a "
		                 "random per-process key cannot be opened");
		return 1;
	}
	key = gw_task_key_load(conf->tasks_handle_key_file, err, sizeof(err));
	if (key == NULL) {
		gw_buf_puts(out, err);
		return 1;
	}
	if (gw_task_open(key, handle, &ref) == -1 ||
	    (p = gw_conf_project_get(conf, ref.project)) == NULL) {
		gw_buf_puts(out, "the handle does not open with this config");
		rc = 1;
		goto out;
	}
	gw_buf_puts(out, "{\"status\": ");
	if (show_task(p, &ref, GW_TR_TASK_STATUS, ref.task_id, out) == -1)
		goto out;
	if (file_id != NULL) {
		gw_buf_puts(out, ",\n\"download\": ");
		if (show_task(p, &ref, GW_TR_TASK_DOWNLOAD, file_id, out) == -1)
			goto out;
	}
	rc = gw_buf_puts(out, "}") == 0 && !out->overflow ? 0 : -1;
out:
	gw_task_key_free(key);
	return rc;
}

int
gw_cli_translate(const struct gw_config *conf, const char *body, size_t len,
                 struct gw_buf *out)
{
	struct gw_export_req *xreq = NULL;
	struct gw_upreq *up = NULL;
	struct json_object *o = NULL;
	struct gw_fault f;
	int rc = -1;

	memset(&f, 0, sizeof(f));
	if (gw_tr_parse(conf, body, len, &xreq, &f) != GW_OK ||
	    gw_tr_build(xreq, &up, &f) != GW_OK) {
		o = json_object_new_object();
		json_object_object_add(
		    o, "status", json_object_new_int(gw_err_status(f.err)));
		json_object_object_add(
		    o, "error_code",
		    json_object_new_string(gw_err_code(f.err)));
		json_object_object_add(o, "field",
		                       json_object_new_string(f.field));
		json_object_object_add(o, "error_msg",
		                       json_object_new_string(f.msg));
		gw_buf_puts(out, json_object_to_json_string_ext(
		                     o, JSON_C_TO_STRING_PRETTY |
		                            JSON_C_TO_STRING_SPACED |
		                            JSON_C_TO_STRING_NOSLASHESCAPE));
		rc = 1;
		goto out;
	}
	if (show_headers(up, xreq->project) == -1 ||
	    gw_upreq_json(up, out) == -1)
		goto out;
	rc = 0;
out:
	json_object_put(o);
	gw_upreq_free(up);
	gw_tr_req_free(xreq);
	return rc;
}
