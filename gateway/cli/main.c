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

#include "cli.h"
#include "client.h"
#include "config.h"
#include "daemon.h"
#include "gw.h"
#include "jwtv.h"
#include "pipeline.h"
#include "translate.h"
#include "upstream.h"

#define KEY_MAX (64 * 1024)

int
gw_cli_help(int argc, char *argv[], const char *usage)
{
	if (argc < 2 ||
	    (strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0))
		return 0;
	/* Asked-for help is output, not an error: stdout, exit 0. */
	fputs(usage, stdout);
	return 1;
}

const char *
gw_cli_config_arg(int argc, char *argv[])
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

static const char serve_usage[] = "usage: hssgw serve --config FILE\n";

static int
cmd_serve(int argc, char *argv[])
{
	static const struct rlimit nocore = {0, 0};
	struct rlimit cur;
	struct gw_gateway *gw = NULL;
	const char *path = NULL;
	char err[1024];
	int rc;

	if (gw_cli_help(argc, argv, serve_usage))
		return 0;
	path = gw_cli_config_arg(argc, argv);
	if (path == NULL) {
		fputs(serve_usage, stderr);
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
	gw = gw_gateway_open(path, err, sizeof(err));
	if (gw == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		return 1;
	}
	rc = gw_daemon_run(gw, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "hssgw: %s\n", err);
	gw_gateway_free(gw);
	return rc == 0 ? 0 : 1;
}

static const char check_config_usage[] =
    "usage: hssgw check-config --config FILE [--offline]\n";

/*
 * hssgw check-config --config FILE [--offline]: loads everything a
 * snapshot holds and, unless --offline, fetches every JWKS issuer's
 * discovery document and key set and validates them as the server would.
 */
static int
cmd_check_config(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"offline", no_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	struct gw_snapshot *snap = NULL;
	const char *path = NULL;
	char err[1024];
	int ch, offline = 0, bad = 0, rc = 1;

	if (gw_cli_help(argc, argv, check_config_usage))
		return 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'c')
			path = optarg;
		else if (ch == 'o')
			offline = 1;
		else
			bad = 1;
	}
	if (bad || path == NULL || optind != argc) {
		fputs(check_config_usage, stderr);
		return 2;
	}
	snap = gw_pipe_load(path, 0, err, sizeof(err));
	if (snap == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		return 1;
	}
	if (!offline &&
	    (gw_up_global_init() != 0 ||
	     gw_pipe_prime_keys(snap, gw_now_ms(), err, sizeof(err)) > 0)) {
		fprintf(stderr, "hssgw: %s\n", err);
		goto out;
	}
	printf("%s: ok%s\n", path, offline ? " (offline)" : "");
	rc = 0;
out:
	gw_pipe_free(snap);
	return rc;
}

char *
gw_cli_read_stdin(size_t *len)
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

/*
 * hssgw translate --config FILE --handle H [--file-id ID]: the status
 * (and download) requests of a task, as the server builds them.
 */
static int
translate_task(const struct gw_config *conf, const char *handle,
               const char *file_id)
{
	struct gw_buf out;
	int rc;

	gw_buf_init(&out, STDIN_MAX * 4);
	rc = gw_cli_translate_task(conf, handle, file_id, &out);
	if (rc == 0)
		printf("%s\n", out.p);
	else
		fprintf(stderr, "hssgw: %s\n",
		        rc == 1 && out.p != NULL ? out.p
		                                 : "translation failed");
	gw_buf_reset(&out);
	return rc == 0 ? 0 : 1;
}

static const char translate_usage[] =
    "usage: hssgw translate --config FILE < request.json\n"
    "       hssgw translate --config FILE --handle HANDLE [--file-id ID]\n";

static int
cmd_translate(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"handle", required_argument, NULL, 'H'},
	    {"file-id", required_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	struct gw_config *conf = NULL;
	const char *path = NULL, *handle = NULL, *file_id = NULL;
	struct gw_buf out;
	char err[1024], *in = NULL;
	size_t len = 0;
	int rc = 1, ch, bad = 0;

	if (gw_cli_help(argc, argv, translate_usage))
		return 0;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (ch == 'c')
			path = optarg;
		else if (ch == 'H')
			handle = optarg;
		else if (ch == 'f')
			file_id = optarg;
		else
			bad = 1;
	}
	if (path == NULL || bad || optind != argc ||
	    (file_id != NULL && handle == NULL)) {
		fputs(translate_usage, stderr);
		return 2;
	}
	gw_buf_init(&out, STDIN_MAX * 4);
	conf = gw_conf_load(path, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		goto out;
	}
	if (handle != NULL) {
		rc = translate_task(conf, handle, file_id);
		goto out;
	}
	in = gw_cli_read_stdin(&len);
	if (in == NULL) {
		fprintf(stderr, "hssgw: stdin: unreadable or over %d bytes\n",
		        STDIN_MAX);
		goto out;
	}
	rc = gw_cli_translate(conf, in, len, &out);
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

static const char mint_token_usage[] =
    "usage: hssgw mint-token --key FILE --alg "
    "RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|ES512|EdDSA|HS256\n"
    "       [--kid K] --iss ISS --aud AUD --sub SUB\n"
    "       [--groups a,b] [--ttl SECONDS] [--claims JSON]\n";

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

	if (gw_cli_help(argc, argv, mint_token_usage))
		return 0;
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
	fputs(mint_token_usage, stderr);
	return 2;
}

static int
cmd_fields(int argc, char *argv[])
{
	struct gw_buf b;

	if (gw_cli_help(argc, argv, "usage: hssgw fields\n"))
		return 0;
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
	if (gw_cli_help(argc, argv, "usage: hssgw version\n"))
		return 0;
	printf("hssgw %s\n", GW_VERSION);
	return 0;
}

static const struct cmd {
	const char *name;
	int (*fn)(int, char *[]);
	const char *help;
} cmds[] = {
    {"serve", cmd_serve, "--config FILE: serve FastCGI requests"},
    {"check-config", cmd_check_config,
     "--config FILE [--offline]: validate config, keys (JWKS fetched "
     "unless --offline), policies, credentials"},
    {"translate", cmd_translate,
     "--config FILE < request.json | --handle H [--file-id ID]: print "
     "the HSS request(s)"},
    {"mint-token", cmd_mint_token, "--key FILE --alg ALG ...: dev JWT"},
    {"policy", gw_cli_policy,
     "check|explain|test|replay --config FILE ...: check, explain, test "
     "or replay policies"},
    {"fields", cmd_fields, "print the HSS field table (Markdown)"},
    {"audit", gw_cli_audit,
     "verify|query|report|ship ...: check the chain, print records, "
     "write an HTML report, or ship the trail to the collector"},
    {"export", gw_client_export,
     "--url URL --token JWT --project P --out FILE ...: export, poll, "
     "download"},
    {"whoami", gw_client_whoami,
     "--url URL (--token JWT | --id-token SOURCE): what the token may do"},
    {"version", cmd_version, "print the version"},
};

int
main(int argc, char *argv[])
{
	size_t i;

	FILE *to = stderr;

	if (argc >= 2)
		for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcmp(argv[1], cmds[i].name) == 0)
				return cmds[i].fn(argc - 1, argv + 1);
	/* hssgw --help, -h and help list the commands as the output. */
	if (argc == 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	     strcmp(argv[1], "help") == 0))
		to = stdout;
	fprintf(to, "usage: hssgw COMMAND [ARGS]\n"
	            "       hssgw COMMAND --help\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(to, "  %-13s %s\n", cmds[i].name, cmds[i].help);
	return to == stdout ? 0 : 2;
}
