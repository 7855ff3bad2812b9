/*
 * hssgw policy check|explain: operators' view of the policy engine.  Loads
 * config, keys and policies as serve does, evaluates off line, prints;
 * hands test and replay to their own files.
 * Never runs on the request path; claims read from a file are not
 * verified (explain only).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "gw.h"
#include "jwtv.h"
#include "policy.h"
#include "translate.h"

/*
 * Claims from a JSON object file, built by gw_claims_parse: the code that
 * builds a verified token's claims on the request path, so explain sees
 * exactly what enforcement sees and refuses what it refuses (an array
 * holding an object, names equal but for case).  Not verified: for
 * `policy explain` only.  NULL with a message on stderr.
 */
static struct gw_claims *
claims_from_file(const char *path)
{
	struct gw_claims *c = NULL;
	const char *why = NULL;
	char err[512], *buf = NULL;
	size_t len = 0;

	if (gw_read_file(path, STDIN_MAX, 0, &buf, &len, err, sizeof(err)) ==
	    -1) {
		fprintf(stderr, "hssgw: %s\n", err);
		goto out;
	}
	if (gw_claims_parse(buf, len, &c, &why) != GW_OK)
		fprintf(stderr, "hssgw: %s: %s\n", path, why);
out:
	free(buf);
	return c;
}

/* Loads and checks one policy directory; -1 on error (printed). */
static int
policy_check_dir(const char *dir, const char *what)
{
	struct gw_pol_set *set = NULL;
	struct gw_buf b;
	char err[1024];
	size_t n;

	set = gw_pol_load_dir(dir, err, sizeof(err));
	if (set == NULL) {
		fprintf(stderr, "hssgw: %s: error: %s\n", dir, err);
		return -1;
	}
	gw_buf_init(&b, STDIN_MAX);
	n = gw_pol_check(set, gw_now_ms(), &b);
	if (b.p != NULL)
		fputs(b.p, stdout);
	printf("%s (%s): %zu statements, revision %s, %zu warnings\n", dir,
	       what, gw_pol_count(set), gw_pol_revision(set), n);
	gw_buf_reset(&b);
	gw_pol_free(set);
	return 0;
}

static const char check_usage[] = "usage: hssgw policy check --config FILE\n";
static const char explain_usage[] =
    "usage: hssgw policy explain --config FILE (--token JWT | --claims FILE) "
    "[--client-ip IP] < request.json\n";
static const char policy_usage[] =
    "usage: hssgw policy check --config FILE\n"
    "       hssgw policy explain --config FILE (--token JWT | --claims FILE) "
    "[--client-ip IP] < request.json\n"
    "       hssgw policy test --config FILE [--junit OUT.xml] "
    "[--min-coverage PCT] CASES...\n"
    "       hssgw policy replay --config CANDIDATE [--since T] [--until T] "
    "[--format json|table] TRAIL...\n";

/*
 * hssgw policy check --config FILE: the policies and the shadow policies;
 * errors exit 1, warnings only print.
 */
static int
policy_check(int argc, char *argv[])
{
	struct gw_config *conf = NULL;
	const char *path = NULL;
	char err[1024];
	int rc = 1;

	if (gw_cli_help(argc, argv, check_usage))
		return 0;
	path = gw_cli_config_arg(argc, argv);
	if (path == NULL) {
		fputs(check_usage, stderr);
		return 2;
	}
	conf = gw_conf_load(path, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		return 1;
	}
	if (policy_check_dir(conf->policies_dir, "enforced") == 0 &&
	    (conf->shadow_policies_dir == NULL ||
	     policy_check_dir(conf->shadow_policies_dir, "shadow") == 0))
		rc = 0;
	gw_conf_free(conf);
	return rc;
}

/*
 * hssgw policy explain --config FILE (--token JWT | --claims FILE)
 * [--client-ip IP] < request.json: the decision the gateway would make,
 * explained as JSON.  Exits 0 when explained, whatever the decision.
 */
static int
policy_explain(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"token", required_argument, NULL, 't'},
	    {"claims", required_argument, NULL, 'j'},
	    {"client-ip", required_argument, NULL, 'i'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL, *token = NULL, *cfile = NULL, *ip = NULL;
	struct gw_jwt_keyset *keys = NULL;
	struct gw_export_req *xreq = NULL;
	struct gw_config *conf = NULL;
	struct gw_pol_set *set = NULL;
	struct gw_claims *claims = NULL;
	struct gw_pol_ctx *ctx = NULL;
	struct gw_pol_request preq;
	struct gw_fault fault;
	char err[1024], res[300], *in = NULL, *js = NULL;
	size_t len = 0;
	int64_t now_ms = gw_now_ms();
	int ch, rc = 1;

	if (gw_cli_help(argc, argv, explain_usage))
		return 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'j':
			cfile = optarg;
			break;
		case 'i':
			ip = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (path == NULL || (token == NULL) == (cfile == NULL) ||
	    optind != argc)
		goto usage;
	set = gw_cli_polset_load(path, &conf);
	if (set == NULL)
		goto out;
	memset(&fault, 0, sizeof(fault));
	if (token != NULL) {
		keys = gw_jwt_keyset_load(conf, err, sizeof(err));
		if (keys == NULL) {
			fprintf(stderr, "hssgw: %s\n", err);
			goto out;
		}
		if (gw_jwt_verify(keys, token, now_ms / 1000, &claims,
		                  &fault) != GW_OK) {
			fprintf(stderr, "hssgw: token: %s\n", fault.msg);
			goto out;
		}
	} else {
		claims = claims_from_file(cfile);
		if (claims == NULL)
			goto out;
	}
	in = gw_cli_read_stdin(&len);
	if (in == NULL) {
		fprintf(stderr, "hssgw: stdin: unreadable or over %d bytes\n",
		        STDIN_MAX);
		goto out;
	}
	if (gw_tr_parse(conf, in, len, &xreq, &fault) != GW_OK) {
		fprintf(stderr, "hssgw: request: %s%s%s\n", fault.field,
		        fault.field[0] ? ": " : "", fault.msg);
		goto out;
	}
	/* The context the pipeline builds: translation's, plus gw: keys. */
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL ||
	    gw_pol_ctx_build(ctx, xreq->ctx, xreq->nctx, now_ms, ip) == -1)
		goto out;
	snprintf(res, sizeof(res), "hss:%s:%s", xreq->project->region,
	         xreq->project->alias);
	memset(&preq, 0, sizeof(preq));
	preq.claims = claims;
	preq.action = "hss:ExportImageBaseline";
	preq.resource = res;
	preq.ctx = ctx->kv;
	preq.nctx = ctx->n;
	js = gw_pol_explain(set, &preq, NULL);
	if (js == NULL) {
		fprintf(stderr, "hssgw: out of memory\n");
		goto out;
	}
	printf("%s\n", js);
	rc = 0;
out:
	free(js);
	free(ctx);
	free(in);
	gw_tr_req_free(xreq);
	gw_claims_free(claims);
	gw_jwt_keyset_free(keys);
	gw_pol_free(set);
	gw_conf_free(conf);
	return rc;
usage:
	fputs(explain_usage, stderr);
	return 2;
}

int
gw_cli_policy(int argc, char *argv[])
{
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return policy_check(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "explain") == 0)
		return policy_explain(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "test") == 0)
		return gw_cli_policy_test(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "replay") == 0)
		return gw_cli_policy_replay(argc - 1, argv + 1);
	if (gw_cli_help(argc, argv, policy_usage))
		return 0;
	fputs(policy_usage, stderr);
	return 2;
}
