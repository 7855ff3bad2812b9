/*
 * hssgw policy test: policy unit tests with statement coverage, for the
 * merge request that changes a policy.  Reads case files (the schema is
 * in docs/POLICIES.md), decides each case through gw_pol_decide, the
 * function the gateway's routes decide with (never a second evaluator),
 * compares with the expected decision and deciding statement, and counts
 * per statement the cases it decided or applied to.  Writes JUnit XML on
 * request.  Claims in a case are not verified (a token is).  Never runs
 * on the request path; never prints a token.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "config.h"
#include "gw.h"
#include "jwtv.h"
#include "policy.h"
#include "translate.h"

#define CASES_FILE_MAX ((size_t)8 << 20)
#define MSG_MAX        1024
#define XML_MAX        ((size_t)64 << 20)

static const char test_usage[] =
    "usage: hssgw policy test --config FILE [--junit OUT.xml] "
    "[--min-coverage PCT] CASES...\n";

/* The whole run: the set under test, per statement counts, the totals. */
struct run {
	const char *config_path;
	const struct gw_config *conf;
	const struct gw_pol_set *set;
	struct gw_jwt_keyset *keys; /* loaded for the first token case */
	size_t nstmt;
	unsigned *decided, *applied;
	unsigned char *scratch; /* one case's applied statements */
	size_t ncases, nfailed;
	struct gw_buf xml; /* the JUnit test cases of the current file */
	size_t file_cases, file_failed;
	struct gw_buf suites; /* every file's finished <testsuite> */
};

/* One case as read from its file; strings borrowed from the JSON. */
struct tcase {
	const char *name;
	json_object *claims;
	const char *token;
	json_object *request, *task;
	const char *client_ip;
	int64_t now_ms;
	enum gw_pol_effect want;
	const char *want_stmt; /* NULL: not checked */
};

/* Appends s XML-escaped (text and attribute values alike). */
static void
xml_text(struct gw_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<':
			gw_buf_puts(b, "&lt;");
			break;
		case '>':
			gw_buf_puts(b, "&gt;");
			break;
		case '&':
			gw_buf_puts(b, "&amp;");
			break;
		case '"':
			gw_buf_puts(b, "&quot;");
			break;
		default:
			/* XML 1.0 has no C0 controls but tab and newline. */
			if ((unsigned char)*s < 0x20 && *s != '\t' &&
			    *s != '\n')
				gw_buf_puts(b, "?");
			else
				gw_buf_add(b, s, 1);
		}
	}
}

static int
effect_parse(const char *s, enum gw_pol_effect *out)
{
	enum gw_pol_effect e;

	for (e = GW_POL_IMPLICIT_DENY; e < GW_POL_EFFECT__MAX; e++)
		if (strcmp(s, gw_pol_effect_name(e)) == 0) {
			*out = e;
			return 0;
		}
	return -1;
}

/* A member that must be a string when present; -1 with a message. */
static int
opt_str(json_object *o, const char *k, const char **out, const char *path,
        char *msg)
{
	json_object *v = NULL;

	*out = NULL;
	if (!json_object_object_get_ex(o, k, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(msg, MSG_MAX, "%s.%s: must be a string", path, k);
		return -1;
	}
	*out = json_object_get_string(v);
	return 0;
}

/* A member that must be an object when present. */
static int
opt_obj(json_object *o, const char *k, json_object **out, const char *path,
        char *msg)
{
	json_object *v = NULL;

	*out = NULL;
	if (!json_object_object_get_ex(o, k, &v))
		return 0;
	if (!json_object_is_type(v, json_type_object)) {
		snprintf(msg, MSG_MAX, "%s.%s: must be an object", path, k);
		return -1;
	}
	*out = v;
	return 0;
}

/* Every member is one the schema names: a typo is an error, not a pass. */
static int
known_members(json_object *o, const char *const *names, const char *path,
              char *msg)
{
	size_t i;

	json_object_object_foreach(o, k, v)
	{
		(void)v;
		for (i = 0; names[i] != NULL && strcmp(names[i], k) != 0; i++)
			;
		if (names[i] == NULL) {
			snprintf(msg, MSG_MAX, "%s.%s: unknown member", path,
			         k);
			return -1;
		}
	}
	return 0;
}

/* Reads one case; -1 with "<JSON path>: <rule>" in msg. */
static int
case_read(json_object *o, const char *path, struct tcase *c, char *msg)
{
	static const char *const names[] = {
	    "name",     "description", "claims",    "token",
	    "request",  "task",        "client_ip", "time",
	    "decision", "statement",   NULL};
	const char *t = NULL, *d = NULL;

	memset(c, 0, sizeof(*c));
	c->now_ms = gw_now_ms();
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(msg, MSG_MAX, "%s: must be an object", path);
		return -1;
	}
	if (known_members(o, names, path, msg) == -1 ||
	    opt_str(o, "name", &c->name, path, msg) == -1 ||
	    opt_obj(o, "claims", &c->claims, path, msg) == -1 ||
	    opt_str(o, "token", &c->token, path, msg) == -1 ||
	    opt_obj(o, "request", &c->request, path, msg) == -1 ||
	    opt_obj(o, "task", &c->task, path, msg) == -1 ||
	    opt_str(o, "client_ip", &c->client_ip, path, msg) == -1 ||
	    opt_str(o, "time", &t, path, msg) == -1 ||
	    opt_str(o, "decision", &d, path, msg) == -1 ||
	    opt_str(o, "statement", &c->want_stmt, path, msg) == -1)
		return -1;
	if (c->name == NULL || c->name[0] == '\0')
		snprintf(msg, MSG_MAX, "%s.name: required", path);
	else if ((c->claims == NULL) == (c->token == NULL))
		snprintf(msg, MSG_MAX,
		         "%s: exactly one of \"claims\" or \"token\"", path);
	else if ((c->request == NULL) == (c->task == NULL))
		snprintf(msg, MSG_MAX,
		         "%s: exactly one of \"request\" or \"task\"", path);
	else if (t != NULL && gw_rfc3339_ms(t, &c->now_ms) == -1)
		snprintf(msg, MSG_MAX, "%s.time: not an RFC 3339 date-time",
		         path);
	else if (d == NULL)
		snprintf(msg, MSG_MAX, "%s.decision: required", path);
	else if (effect_parse(d, &c->want) == -1)
		snprintf(msg, MSG_MAX,
		         "%s.decision: must be \"allow\", \"explicit_deny\" "
		         "or \"implicit_deny\"",
		         path);
	else if (c->want_stmt != NULL && c->want == GW_POL_IMPLICIT_DENY)
		snprintf(msg, MSG_MAX,
		         "%s.statement: an implicit deny has no statement",
		         path);
	else
		return 0;
	return -1;
}

/* The caller's claims: parsed as a token's are, or a verified token. */
static struct gw_claims *
case_claims(struct run *r, const struct tcase *c, const char *path, char *msg)
{
	struct gw_claims *cl = NULL;
	struct gw_fault fault;
	const char *why = NULL, *js;
	char err[512];

	if (c->claims != NULL) {
		js = json_object_to_json_string_ext(c->claims,
		                                    JSON_C_TO_STRING_PLAIN);
		if (gw_claims_parse(js, strlen(js), &cl, &why) != GW_OK)
			snprintf(msg, MSG_MAX, "%s.claims: %s", path, why);
		return cl;
	}
	if (r->keys == NULL) {
		r->keys = gw_jwt_keyset_load(r->conf, err, sizeof(err));
		if (r->keys == NULL) {
			snprintf(msg, MSG_MAX, "%s.token: %s", path, err);
			return NULL;
		}
	}
	memset(&fault, 0, sizeof(fault));
	if (gw_jwt_verify(r->keys, c->token, c->now_ms / 1000, &cl, &fault) !=
	    GW_OK)
		snprintf(msg, MSG_MAX, "%s.token: %s", path, fault.msg);
	return cl;
}

/* A task case's route: the action, project and task creator. */
static int
task_input(const struct run *r, const struct tcase *c,
           const struct gw_claims *cl, struct gw_pol_input *in,
           struct gw_pol_task_ctx *tctx, char *res, const char *path, char *msg)
{
	static const char *const names[] = {"action",
	                                    "project",
	                                    "task_issuer",
	                                    "task_subject",
	                                    "enterprise_project_id",
	                                    NULL};
	const struct gw_conf_project *p;
	const char *alias = NULL, *iss = NULL, *sub = NULL, *eps = NULL;
	char tp[300];

	snprintf(tp, sizeof(tp), "%s.task", path);
	if (known_members(c->task, names, tp, msg) == -1 ||
	    opt_str(c->task, "action", &in->action, tp, msg) == -1 ||
	    opt_str(c->task, "project", &alias, tp, msg) == -1 ||
	    opt_str(c->task, "task_issuer", &iss, tp, msg) == -1 ||
	    opt_str(c->task, "task_subject", &sub, tp, msg) == -1 ||
	    opt_str(c->task, "enterprise_project_id", &eps, tp, msg) == -1)
		return -1;
	if (in->action == NULL ||
	    (strcmp(in->action, "hss:GetExportTask") != 0 &&
	     strcmp(in->action, "hss:DownloadExportFile") != 0)) {
		snprintf(msg, MSG_MAX,
		         "%s.action: must be \"hss:GetExportTask\" or "
		         "\"hss:DownloadExportFile\"",
		         tp);
		return -1;
	}
	p = alias != NULL ? gw_conf_project_get(r->conf, alias) : NULL;
	if (p == NULL) {
		snprintf(msg, MSG_MAX, "%s.project: not a project of %s", tp,
		         r->config_path);
		return -1;
	}
	/* The creator defaults to the caller: a task of its own. */
	in->task_iss = iss != NULL ? iss : (cl->iss != NULL ? cl->iss : "");
	in->task_sub = sub != NULL ? sub : (cl->sub != NULL ? cl->sub : "");
	gw_pol_task_ctx_build(tctx, in->task_iss, in->task_sub, p->alias,
	                      p->region,
	                      eps != NULL ? eps : p->enterprise_project_id);
	in->ctx = tctx->kv;
	in->nctx = tctx->n;
	snprintf(res, 300, "hss:%s:%s", p->region, p->alias);
	in->resource = res;
	return 0;
}

/* The statement a decision names: index into the set, or n. */
static size_t
stmt_index(const struct run *r, const struct gw_pol_ref *ref)
{
	struct gw_pol_ref s;
	size_t i;

	for (i = 0; gw_pol_stmt_at(r->set, i, &s, NULL) == 0; i++)
		if (strcmp(s.file, ref->file) == 0 &&
		    strcmp(s.sid, ref->sid) == 0)
			return i;
	return r->nstmt;
}

/*
 * Counts the case once per statement: it applied (scratch bit 1, set by
 * gw_pol_decide) or decided (bit 2: a deciding statement of the route's
 * action, or of the hss:ActForSubject that let the caller in).
 */
static void
count(struct run *r, const struct gw_pol_verdict *v)
{
	size_t i, k;

	for (i = 0; i < v->decision.ndeciding; i++) {
		k = stmt_index(r, &v->decision.deciding[i]);
		if (k < r->nstmt)
			r->scratch[k] |= 2;
	}
	for (i = 0; v->acted_for && i < v->actfor.ndeciding; i++) {
		k = stmt_index(r, &v->actfor.deciding[i]);
		if (k < r->nstmt)
			r->scratch[k] |= 2;
	}
	for (i = 0; i < r->nstmt; i++) {
		r->applied[i] += (r->scratch[i] & 1) != 0;
		r->decided[i] += (r->scratch[i] & 2) != 0;
	}
}

/* Whether want ("file#Sid") is one of the decision's deciding ones. */
static int
names_stmt(const struct gw_pol_decision *d, const char *want)
{
	char s[300];
	size_t i;

	for (i = 0; i < d->ndeciding; i++) {
		snprintf(s, sizeof(s), "%s#%s", d->deciding[i].file,
		         d->deciding[i].sid);
		if (strcmp(s, want) == 0)
			return 1;
	}
	return 0;
}

/* Decides the case; 0 passed, 1 failed, -1 malformed (msg says). */
static int
case_decide(struct run *r, const struct tcase *c, const char *path, char *msg)
{
	struct gw_export_req *xreq = NULL;
	struct gw_claims *cl = NULL;
	struct gw_pol_task_ctx tctx;
	struct gw_pol_input in;
	struct gw_pol_verdict v;
	struct gw_fault fault;
	const char *js;
	char res[300], got[300];
	int rc = -1;

	memset(&in, 0, sizeof(in));
	memset(&fault, 0, sizeof(fault));
	cl = case_claims(r, c, path, msg);
	if (cl == NULL)
		goto out;
	if (c->request != NULL) {
		js = json_object_to_json_string_ext(c->request,
		                                    JSON_C_TO_STRING_PLAIN);
		if (gw_tr_parse(r->conf, js, strlen(js), &xreq, &fault) !=
		    GW_OK) {
			snprintf(msg, MSG_MAX, "%s.request%s%s: %s", path,
			         fault.field[0] ? "." : "", fault.field,
			         fault.msg);
			goto out;
		}
		snprintf(res, sizeof(res), "hss:%s:%s", xreq->project->region,
		         xreq->project->alias);
		in.action = "hss:ExportImageBaseline";
		in.resource = res;
		in.ctx = xreq->ctx;
		in.nctx = xreq->nctx;
	} else if (task_input(r, c, cl, &in, &tctx, res, path, msg) == -1)
		goto out;
	in.claims = cl;
	in.now_ms = c->now_ms;
	in.client_ip = c->client_ip;
	in.applied = r->scratch;
	memset(r->scratch, 0, r->nstmt);
	if (gw_pol_decide(r->set, &in, &v) == -1) {
		snprintf(msg, MSG_MAX, "%s: request context too large", path);
		goto out;
	}
	count(r, &v);
	rc = 0;
	if (v.decision.effect == c->want &&
	    (c->want_stmt == NULL || names_stmt(&v.decision, c->want_stmt)))
		goto out;
	rc = 1;
	if (v.decision.effect != GW_POL_IMPLICIT_DENY)
		snprintf(got, sizeof(got), "%s#%s", v.decision.file,
		         v.decision.sid);
	else
		snprintf(got, sizeof(got), "no statement");
	snprintf(msg, MSG_MAX, "expected %s%s%s%s, got %s (%s%s)",
	         gw_pol_effect_name(c->want), c->want_stmt ? " (" : "",
	         c->want_stmt ? c->want_stmt : "", c->want_stmt ? ")" : "",
	         gw_pol_effect_name(v.decision.effect), got,
	         strcmp(v.action, in.action) != 0 ? ", on hss:ActForSubject"
	                                          : "");
out:
	gw_tr_req_free(xreq);
	gw_claims_free(cl);
	return rc;
}

/* One case's line (failures only) and its JUnit test case. */
static void
report_case(struct run *r, const char *file, const char *path, const char *name,
            int rc, const char *msg)
{
	r->ncases++;
	r->file_cases++;
	gw_buf_puts(&r->xml, "    <testcase classname=\"");
	xml_text(&r->xml, file);
	gw_buf_puts(&r->xml, "\" name=\"");
	xml_text(&r->xml, name != NULL ? name : path);
	if (rc == 0) {
		gw_buf_puts(&r->xml, "\"/>\n");
		return;
	}
	r->nfailed++;
	r->file_failed++;
	if (rc == 1)
		printf("FAIL %s: %s \"%s\": %s\n", file, path, name, msg);
	else
		printf("FAIL %s: %s\n", file, msg);
	gw_buf_puts(&r->xml, "\">\n      <failure message=\"");
	xml_text(&r->xml, msg);
	gw_buf_printf(&r->xml, "\" type=\"%s\"/>\n    </testcase>\n",
	              rc == 1 ? "decision" : "malformed");
}

/* The file's cases; a file that is not a case file is one failure. */
static void
run_file(struct run *r, const char *file)
{
	json_object *root = NULL, *cases = NULL;
	struct tcase c;
	char err[512], msg[MSG_MAX], path[64], *buf = NULL;
	size_t len = 0, i, n;
	int rc;

	r->file_cases = r->file_failed = 0;
	gw_buf_reset(&r->xml);
	gw_buf_init(&r->xml, XML_MAX);
	if (gw_read_file(file, CASES_FILE_MAX, 0, &buf, &len, err,
	                 sizeof(err)) == -1) {
		report_case(r, file, "(file)", NULL, -1, err);
		goto out;
	}
	root = json_tokener_parse(buf);
	if (root == NULL || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "cases", &cases) ||
	    !json_object_is_type(cases, json_type_array) ||
	    json_object_array_length(cases) == 0) {
		report_case(r, file, "(document)", NULL, -1,
		            "(document): must be a JSON object with a "
		            "non-empty \"cases\" array");
		goto out;
	}
	n = json_object_array_length(cases);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "cases[%zu]", i);
		rc = case_read(json_object_array_get_idx(cases, i), path, &c,
		               msg);
		if (rc == 0)
			rc = case_decide(r, &c, path, msg);
		report_case(r, file, path, rc == -1 ? NULL : c.name, rc, msg);
	}
out:
	gw_buf_puts(&r->suites, "  <testsuite name=\"");
	xml_text(&r->suites, file);
	gw_buf_printf(&r->suites, "\" tests=\"%zu\" failures=\"%zu\">\n",
	              r->file_cases, r->file_failed);
	if (r->xml.p != NULL)
		gw_buf_puts(&r->suites, r->xml.p);
	gw_buf_puts(&r->suites, "  </testsuite>\n");
	json_object_put(root);
	free(buf);
}

/* The coverage summary; returns the percentage of statements reached. */
static double
coverage(const struct run *r)
{
	struct gw_pol_ref s;
	size_t i, reached = 0;
	double pct;

	for (i = 0; i < r->nstmt; i++)
		reached += r->applied[i] > 0;
	pct = r->nstmt > 0 ? 100.0 * (double)reached / (double)r->nstmt : 100.0;
	printf("%zu cases, %zu passed, %zu failed\n", r->ncases,
	       r->ncases - r->nfailed, r->nfailed);
	printf("coverage: %zu/%zu statements (%.1f%%), policy revision %s\n",
	       reached, r->nstmt, pct, gw_pol_revision(r->set));
	printf("  decided  applied  statement\n");
	for (i = 0; gw_pol_stmt_at(r->set, i, &s, NULL) == 0; i++)
		printf("  %7u  %7u  %s#%s\n", r->decided[i], r->applied[i],
		       s.file, s.sid);
	if (reached < r->nstmt) {
		printf("not reached by any case:\n");
		for (i = 0; gw_pol_stmt_at(r->set, i, &s, NULL) == 0; i++)
			if (r->applied[i] == 0)
				printf("  %s#%s\n", s.file, s.sid);
	}
	return pct;
}

/* The JUnit document: the files' suites, then coverage as one case. */
static int
write_junit(struct run *r, const char *out, double pct, double min, int cov_ok)
{
	struct gw_buf b;
	FILE *f = NULL;
	int rc = -1;

	gw_buf_init(&b, XML_MAX + 4096);
	gw_buf_printf(&b,
	              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	              "<testsuites name=\"hssgw policy test\" tests=\"%zu\" "
	              "failures=\"%zu\">\n",
	              r->ncases + 1, r->nfailed + !cov_ok);
	if (r->suites.p != NULL)
		gw_buf_puts(&b, r->suites.p);
	gw_buf_printf(&b,
	              "  <testsuite name=\"coverage\" tests=\"1\" "
	              "failures=\"%d\">\n    <testcase classname=\"coverage\" "
	              "name=\"statement coverage %.1f%% (minimum %.1f%%)\"",
	              !cov_ok, pct, min);
	if (cov_ok)
		gw_buf_puts(&b, "/>\n");
	else
		gw_buf_printf(&b,
		              ">\n      <failure message=\"coverage %.1f%% is "
		              "below %.1f%%\" type=\"coverage\"/>\n    "
		              "</testcase>\n",
		              pct, min);
	gw_buf_puts(&b, "  </testsuite>\n</testsuites>\n");
	if (b.overflow) {
		fprintf(stderr, "hssgw: %s: report over %zu bytes\n", out,
		        (size_t)XML_MAX);
		goto out;
	}
	f = fopen(out, "w");
	if (f == NULL || fputs(b.p, f) == EOF) {
		fprintf(stderr, "hssgw: %s: cannot write\n", out);
		goto out;
	}
	rc = 0;
out:
	if (f != NULL && fclose(f) != 0 && rc == 0) {
		fprintf(stderr, "hssgw: %s: cannot write\n", out);
		rc = -1;
	}
	gw_buf_reset(&b);
	return rc;
}

/* --min-coverage: a percentage in [0, 100]; -1 otherwise. */
static int
pct_parse(const char *s, double *out)
{
	char *end = NULL;
	double v = strtod(s, &end);

	if (end == s || *end != '\0' || !(v >= 0.0 && v <= 100.0))
		return -1;
	*out = v;
	return 0;
}

int
gw_cli_policy_test(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"junit", required_argument, NULL, 'j'},
	    {"min-coverage", required_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0},
	};
	struct gw_config *conf = NULL;
	struct gw_pol_set *set = NULL;
	const char *junit = NULL;
	struct run r;
	double min = 0.0, pct;
	int ch, rc = 1, cov_ok;

	memset(&r, 0, sizeof(r));
	if (gw_cli_help(argc, argv, test_usage))
		return 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'c')
			r.config_path = optarg;
		else if (ch == 'j')
			junit = optarg;
		else if (ch != 'm' || pct_parse(optarg, &min) == -1)
			goto usage;
	}
	if (r.config_path == NULL || optind >= argc)
		goto usage;
	set = gw_cli_polset_load(r.config_path, &conf);
	if (set == NULL)
		goto out;
	r.conf = conf;
	r.set = set;
	r.nstmt = gw_pol_count(set);
	r.decided = calloc(r.nstmt + 1, sizeof(*r.decided));
	r.applied = calloc(r.nstmt + 1, sizeof(*r.applied));
	r.scratch = calloc(r.nstmt + 1, 1);
	if (r.decided == NULL || r.applied == NULL || r.scratch == NULL)
		goto out;
	gw_buf_init(&r.suites, XML_MAX);
	for (; optind < argc; optind++)
		run_file(&r, argv[optind]);
	pct = coverage(&r);
	cov_ok = pct >= min;
	if (!cov_ok)
		printf("FAIL coverage %.1f%% is below --min-coverage %g\n", pct,
		       min);
	if (junit != NULL && write_junit(&r, junit, pct, min, cov_ok) == -1)
		goto out;
	rc = r.nfailed == 0 && cov_ok ? 0 : 1;
out:
	gw_buf_reset(&r.xml);
	gw_buf_reset(&r.suites);
	free(r.decided);
	free(r.applied);
	free(r.scratch);
	gw_jwt_keyset_free(r.keys);
	gw_pol_free(set);
	gw_conf_free(conf);
	return rc;
usage:
	fputs(test_usage, stderr);
	return 2;
}
