/*
 * hssgw's command line: a table of subcommands, each a short function
 * over the library.  Startup may exit with a message; nothing here runs on
 * the request path.
 */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "auditq.h"
#include "client.h"
#include "config.h"
#include "fcgi.h"
#include "gw.h"
#include "jwtv.h"
#include "pipeline.h"
#include "policy.h"
#include "translate.h"

#define STDIN_MAX (1024 * 1024)
#define KEY_MAX   (64 * 1024)

static const char *
config_arg(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (ch != 'c')
			return NULL;
		path = optarg;
	}
	if (optind != argc)
		return NULL;
	return path;
}

static int
cmd_serve(int argc, char *argv[])
{
	static const struct rlimit nocore = {0, 0};
	struct rlimit cur;
	struct gw_gateway *gw = NULL;
	const char *path = config_arg(argc, argv);
	char err[1024];
	int rc;

	if (path == NULL) {
		fprintf(stderr, "usage: hssgw serve --config FILE\n");
		return 2;
	}
	/* A write to a closed peer must fail with EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	/* Past a file size limit (systemd LimitFSIZE=) an audit write must
	 * fail with EFBIG, so exports fail closed, not kill the process. */
	signal(SIGXFSZ, SIG_IGN);
	/* The process holds IAM tokens, passwords and keys: no core dump of
	 * it, and no ptrace by other processes of the same user. */
	/* Under systemd's LimitCORE=0 the limit is already 0 and its seccomp
	 * filter (~@resources) refuses setrlimit: only set it when needed. */
	if (getrlimit(RLIMIT_CORE, &cur) == -1 ||
	    ((cur.rlim_cur != 0 || cur.rlim_max != 0) &&
	     setrlimit(RLIMIT_CORE, &nocore) == -1) ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
		fprintf(stderr, "hssgw: cannot disable core dumps\n");
		return 1;
	}
	gw = gw_gw_open(path, err, sizeof(err));
	if (gw == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		return 1;
	}
	rc = gw_fcgi_serve(gw, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "hssgw: %s\n", err);
	gw_gw_free(gw);
	return rc == 0 ? 0 : 1;
}

static int
cmd_check_config(int argc, char *argv[])
{
	struct gw_snapshot *snap = NULL;
	const char *path = config_arg(argc, argv);
	char err[1024];

	if (path == NULL) {
		fprintf(stderr, "usage: hssgw check-config --config FILE\n");
		return 2;
	}
	snap = gw_pipe_load(path, 0, err, sizeof(err));
	if (snap == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		return 1;
	}
	printf("%s: ok\n", path);
	gw_pipe_free(snap);
	return 0;
}

static char *
read_stdin(size_t *len)
{
	struct gw_buf b;
	char chunk[4096];
	ssize_t n;

	gw_buf_init(&b, STDIN_MAX);
	while ((n = read(0, chunk, sizeof(chunk))) > 0)
		if (gw_buf_add(&b, chunk, (size_t)n) == -1) {
			gw_buf_reset(&b);
			return NULL;
		}
	return gw_buf_take(&b, len);
}

static int
cmd_translate(int argc, char *argv[])
{
	struct gw_config *conf = NULL;
	const char *path = config_arg(argc, argv);
	struct gw_buf out;
	char err[1024], *in = NULL;
	size_t len = 0;
	int rc = 1;

	if (path == NULL) {
		fprintf(stderr, "usage: hssgw translate --config FILE "
		                "< request.json\n");
		return 2;
	}
	gw_buf_init(&out, STDIN_MAX * 4);
	conf = gw_conf_load(path, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		goto out;
	}
	in = read_stdin(&len);
	if (in == NULL) {
		fprintf(stderr, "hssgw: stdin: unreadable or over %d bytes\n",
		        STDIN_MAX);
		goto out;
	}
	rc = gw_pipe_translate(conf, in, len, &out);
	if (rc == -1) {
		fprintf(stderr, "hssgw: translation failed\n");
		rc = 1;
		goto out;
	}
	printf("%s\n", out.p);
out:
	gw_buf_reset(&out);
	free(in);
	gw_conf_free(conf);
	return rc;
}

/* Builds the claims of a development token. */
static char *
mint_claims(const char *iss, const char *aud, const char *sub,
            const char *groups, long long ttl, const char *extra)
{
	struct json_object *o = NULL, *x = NULL, *g;
	struct json_object_iterator it, end;
	char *ret = NULL, *copy = NULL, *tok, *save = NULL;
	int64_t now = gw_now_ms() / 1000;
	char jti[33];

	o = json_object_new_object();
	if (extra != NULL) {
		x = json_tokener_parse(extra);
		if (x == NULL || !json_object_is_type(x, json_type_object)) {
			fprintf(stderr, "hssgw: --claims: not a JSON object\n");
			goto out;
		}
		for (it = json_object_iter_begin(x),
		    end = json_object_iter_end(x);
		     !json_object_iter_equal(&it, &end);
		     json_object_iter_next(&it))
			json_object_object_add(
			    o, json_object_iter_peek_name(&it),
			    json_object_get(json_object_iter_peek_value(&it)));
	}
	json_object_object_add(o, "iss", json_object_new_string(iss));
	json_object_object_add(o, "aud", json_object_new_string(aud));
	json_object_object_add(o, "sub", json_object_new_string(sub));
	json_object_object_add(o, "iat", json_object_new_int64(now));
	json_object_object_add(o, "nbf", json_object_new_int64(now));
	json_object_object_add(o, "exp", json_object_new_int64(now + ttl));
	if (gw_random_hex(jti, 16) == 0)
		json_object_object_add(o, "jti", json_object_new_string(jti));
	if (groups != NULL) {
		g = json_object_new_array();
		copy = strdup(groups);
		for (tok = strtok_r(copy, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save))
			json_object_array_add(g, json_object_new_string(tok));
		json_object_object_add(o, "groups", g);
	}
	ret = strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	free(copy);
	json_object_put(x);
	json_object_put(o);
	return ret;
}

static int
cmd_mint_token(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"alg", required_argument, NULL, 'a'},
	    {"kid", required_argument, NULL, 'i'},
	    {"iss", required_argument, NULL, 's'},
	    {"aud", required_argument, NULL, 'u'},
	    {"sub", required_argument, NULL, 'b'},
	    {"groups", required_argument, NULL, 'g'},
	    {"ttl", required_argument, NULL, 't'},
	    {"claims", required_argument, NULL, 'x'},
	    {NULL, 0, NULL, 0},
	};
	const char *key = NULL, *alg = NULL, *kid = NULL, *iss = NULL;
	const char *aud = NULL, *sub = NULL, *groups = NULL, *extra = NULL;
	char err[512], *keybuf = NULL, *claims = NULL, *tok = NULL;
	long long ttl = 3600;
	size_t keylen = 0;
	int ch, rc = 1;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'k':
			key = optarg;
			break;
		case 'a':
			alg = optarg;
			break;
		case 'i':
			kid = optarg;
			break;
		case 's':
			iss = optarg;
			break;
		case 'u':
			aud = optarg;
			break;
		case 'b':
			sub = optarg;
			break;
		case 'g':
			groups = optarg;
			break;
		case 'x':
			extra = optarg;
			break;
		case 't':
			if (gw_strtonum(optarg, -86400LL * 365, 86400LL * 365,
			                &ttl) == -1) {
				fprintf(stderr, "hssgw: --ttl: bad number\n");
				return 2;
			}
			break;
		default:
			goto usage;
		}
	}
	if (key == NULL || alg == NULL || iss == NULL || aud == NULL ||
	    sub == NULL || optind != argc)
		goto usage;
	if (gw_read_file(key, KEY_MAX, 1, &keybuf, &keylen, err, sizeof(err)) ==
	    -1) {
		fprintf(stderr, "hssgw: %s\n", err);
		goto out;
	}
	/* HS256 secret files end with a newline; it is not key material. */
	if (strcmp(alg, "HS256") == 0)
		while (keylen > 0 && (keybuf[keylen - 1] == '\n' ||
		                      keybuf[keylen - 1] == '\r'))
			keybuf[--keylen] = '\0';
	claims = mint_claims(iss, aud, sub, groups, ttl, extra);
	if (claims == NULL)
		goto out;
	tok = gw_jwt_mint(alg, kid, (const unsigned char *)keybuf, keylen,
	                  claims, err, sizeof(err));
	if (tok == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		goto out;
	}
	printf("%s\n", tok);
	rc = 0;
out:
	gw_secret_free(keybuf);
	free(claims);
	free(tok);
	return rc;
usage:
	fprintf(stderr,
	        "usage: hssgw mint-token --key FILE --alg "
	        "RS256|ES256|HS256 [--kid K] --iss ISS --aud AUD --sub SUB\n"
	        "       [--groups a,b] [--ttl SECONDS] [--claims JSON]\n");
	return 2;
}

/* One claim value as text, as jwtv keeps it; NULL for objects. */
static char *
claim_text(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_string:
		return gw_strdup(json_object_get_string(v));
	case json_type_int:
	case json_type_boolean:
	case json_type_double:
		return gw_strdup(
		    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	default:
		return NULL;
	}
}

/*
 * Claims from a JSON object file, kept as jwtv keeps a verified token's:
 * values as text, arrays per element, objects dropped.  Not verified: for
 * `policy explain` only.  NULL with a message on stderr.
 */
static struct gw_claims *
claims_from_file(const char *path)
{
	struct json_object_iterator it, end;
	struct json_object *root = NULL, *v = NULL;
	struct gw_claims *c = NULL;
	struct gw_claim *cl = NULL;
	char err[512], *buf = NULL;
	size_t len = 0, i, n;

	if (gw_read_file(path, STDIN_MAX, 0, &buf, &len, err, sizeof(err)) ==
	    -1) {
		fprintf(stderr, "hssgw: %s\n", err);
		goto out;
	}
	root = json_tokener_parse(buf);
	if (root == NULL || !json_object_is_type(root, json_type_object)) {
		fprintf(stderr, "hssgw: %s: not a JSON object\n", path);
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto nomem;
	c->v = calloc(GW_CLAIMS_MAX, sizeof(*c->v));
	if (c->v == NULL)
		goto nomem;
	it = json_object_iter_begin(root);
	end = json_object_iter_end(root);
	for (; !json_object_iter_equal(&it, &end) && c->n < GW_CLAIMS_MAX;
	     json_object_iter_next(&it)) {
		v = json_object_iter_peek_value(&it);
		cl = &c->v[c->n++];
		cl->name = gw_strdup(json_object_iter_peek_name(&it));
		cl->values = calloc(GW_CLAIM_VALUES_MAX, sizeof(char *));
		if (cl->name == NULL || cl->values == NULL)
			goto nomem;
		cl->is_array = json_object_is_type(v, json_type_array);
		n = cl->is_array ? json_object_array_length(v) : 1;
		for (i = 0; i < n && cl->nvalues < GW_CLAIM_VALUES_MAX; i++) {
			cl->values[cl->nvalues] = claim_text(
			    cl->is_array ? json_object_array_get_idx(v, i) : v);
			if (cl->values[cl->nvalues] != NULL)
				cl->nvalues++;
		}
	}
	if (json_object_object_get_ex(root, "iss", &v))
		c->iss = claim_text(v);
	if (json_object_object_get_ex(root, "sub", &v))
		c->sub = claim_text(v);
	if (json_object_object_get_ex(root, "jti", &v))
		c->jti = claim_text(v);
	goto out;
nomem:
	fprintf(stderr, "hssgw: out of memory\n");
	gw_claims_free(c);
	c = NULL;
out:
	json_object_put(root);
	free(buf);
	return c;
}

/* Config, then its policy directory; prints the reason on failure. */
static struct gw_pol_set *
policy_load(const char *path, struct gw_config **conf)
{
	struct gw_pol_set *set = NULL;
	char err[1024];

	*conf = gw_conf_load(path, err, sizeof(err));
	if (*conf == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		return NULL;
	}
	set = gw_pol_load_dir((*conf)->policies_dir, err, sizeof(err));
	if (set == NULL)
		fprintf(stderr, "hssgw: %s: error: %s\n", (*conf)->policies_dir,
		        err);
	return set;
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

/*
 * hssgw policy check --config FILE: the policies and the shadow policies;
 * errors exit 1, warnings only print.
 */
static int
policy_check(int argc, char *argv[])
{
	struct gw_config *conf = NULL;
	const char *path = config_arg(argc, argv);
	char err[1024];
	int rc = 1;

	if (path == NULL) {
		fprintf(stderr, "usage: hssgw policy check --config FILE\n");
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
	set = policy_load(path, &conf);
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
	in = read_stdin(&len);
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
	fprintf(stderr, "usage: hssgw policy explain --config FILE "
	                "(--token JWT | --claims FILE) [--client-ip IP] "
	                "< request.json\n");
	return 2;
}

static int
cmd_policy(int argc, char *argv[])
{
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return policy_check(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "explain") == 0)
		return policy_explain(argc - 1, argv + 1);
	fprintf(stderr,
	        "usage: hssgw policy check|explain --config FILE ...\n");
	return 2;
}

static int
cmd_fields(int argc, char *argv[])
{
	struct gw_buf b;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: hssgw fields\n");
		return 2;
	}
	gw_buf_init(&b, 1024 * 1024);
	if (gw_tr_fields_markdown(&b) == -1) {
		gw_buf_reset(&b);
		return 1;
	}
	fputs(b.p, stdout);
	gw_buf_reset(&b);
	return 0;
}

static int
cmd_version(int argc, char *argv[])
{
	(void)argc;
	(void)argv;
	printf("hssgw %s\n", GW_VERSION);
	return 0;
}

static int
cmd_audit_verify(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"checkpoint", required_argument, NULL, 'c'},
	    {"no-checkpoint", no_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	struct gw_auditq_report rep;
	const char *ckpt = NULL;
	char dflt[4096];
	int ch, required = 0, none = 0;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'c') {
			ckpt = optarg;
			required = 1;
		} else if (ch == 'n')
			none = 1;
		else
			goto usage;
	}
	if (optind == argc)
		goto usage;
	/* The live file is last; its checkpoint sits next to it. */
	if (ckpt == NULL && !none &&
	    snprintf(dflt, sizeof(dflt), "%s.checkpoint", argv[argc - 1]) <
	        (int)sizeof(dflt))
		ckpt = dflt;
	if (gw_auditq_verify((const char *const *)argv + optind,
	                     (size_t)(argc - optind), ckpt, required,
	                     &rep) == -1) {
		printf("%s:%lld: seq %lld: %s: %s\n", rep.file, rep.line,
		       rep.seq, gw_auditq_problem_name(rep.problem), rep.msg);
		return 1;
	}
	if (rep.torn_tail)
		printf("note: an unterminated last line (a write cut short "
		       "by a crash) was ignored\n");
	if (!rep.checkpoint_checked)
		printf("note: no checkpoint compared: a cut-off tail would "
		       "not be seen\n");
	printf("ok: %lld records, seq %lld..%lld\n", rep.records, rep.first_seq,
	       rep.last_seq);
	return 0;
usage:
	fprintf(stderr, "usage: hssgw audit verify [--checkpoint FILE | "
	                "--no-checkpoint] FILE... (oldest first)\n");
	return 2;
}

static int
cmd_audit_query(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"subject", required_argument, NULL, 's'},
	    {"since", required_argument, NULL, 'a'},
	    {"until", required_argument, NULL, 'b'},
	    {"decision", required_argument, NULL, 'd'},
	    {"project", required_argument, NULL, 'p'},
	    {"task-id", required_argument, NULL, 't'},
	    {"format", required_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	struct gw_auditq_filter f;
	enum gw_auditq_format fmt = GW_AUDITQ_JSON;
	char err[512];
	int ch;

	memset(&f, 0, sizeof(f));
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			f.subject = optarg;
			break;
		case 'd':
			f.decision = optarg;
			break;
		case 'p':
			f.project = optarg;
			break;
		case 't':
			f.task_id = optarg;
			break;
		case 'a':
		case 'b':
			if (gw_rfc3339_ms(optarg, ch == 'a'
			                              ? &f.since_ms
			                              : &f.until_ms) == -1) {
				fprintf(stderr,
				        "hssgw: --%s: not an RFC 3339 "
				        "time\n",
				        ch == 'a' ? "since" : "until");
				return 2;
			}
			*(ch == 'a' ? &f.has_since : &f.has_until) = 1;
			break;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				fmt = GW_AUDITQ_JSON;
			else if (strcmp(optarg, "table") == 0)
				fmt = GW_AUDITQ_TABLE;
			else
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (optind == argc)
		goto usage;
	if (gw_auditq_query((const char *const *)argv + optind,
	                    (size_t)(argc - optind), &f, fmt, stdout, err,
	                    sizeof(err)) == -1) {
		fprintf(stderr, "hssgw: %s\n", err);
		return 1;
	}
	return 0;
usage:
	fprintf(stderr,
	        "usage: hssgw audit query FILE... [--subject S] [--since T] "
	        "[--until T]\n"
	        "       [--decision D] [--project P] [--task-id ID] "
	        "[--format json|table]\n");
	return 2;
}

static int
cmd_audit(int argc, char *argv[])
{
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return cmd_audit_verify(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "query") == 0)
		return cmd_audit_query(argc - 1, argv + 1);
	fprintf(stderr, "usage: hssgw audit verify|query FILE... [OPTIONS]\n");
	return 2;
}

static const struct cmd {
	const char *name;
	int (*fn)(int, char *[]);
	const char *help;
} cmds[] = {
    {"serve", cmd_serve, "--config FILE: serve FastCGI requests"},
    {"check-config", cmd_check_config,
     "--config FILE: validate config, keys, policies, credentials"},
    {"translate", cmd_translate,
     "--config FILE < request.json: print the HSS request"},
    {"mint-token", cmd_mint_token, "--key FILE --alg ALG ...: dev JWT"},
    {"policy", cmd_policy,
     "check|explain --config FILE ...: check or explain policies"},
    {"fields", cmd_fields, "print the HSS field table (Markdown)"},
    {"audit", cmd_audit,
     "verify|query FILE...: check the chain, or print records"},
    {"export", gw_client_export,
     "--url URL --token JWT --project P --out FILE ...: export, poll, "
     "download"},
    {"version", cmd_version, "print the version"},
};

int
main(int argc, char *argv[])
{
	size_t i;

	if (argc >= 2)
		for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcmp(argv[1], cmds[i].name) == 0)
				return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "usage: hssgw COMMAND [ARGS]\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(stderr, "  %-13s %s\n", cmds[i].name, cmds[i].help);
	return 2;
}
