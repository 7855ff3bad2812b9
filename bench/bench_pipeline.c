/*
 * In-process benchmark of the per-request work hssgw adds: JWT
 * verification (RS256, ES256, HS256) in full (cache off) and answered by
 * the verified-token cache, the PEM parse libjwt repeats on every full
 * RS256 check, validation and translation, policy evaluation over 200
 * statements, and the whole pipeline up to the upstream call (a denied
 * request, audited) with a new token and with a cached one.  Each result is
 * reported in nanoseconds per operation and as a ratio to a baseline measured
 * in the same run: json-c parsing the same request body, the least any JSON
 * gateway does.  The audit trail runs with fsync off here: what durability
 * costs is bench_audit's to measure.  Also what the metrics add: the
 * increments an exported request makes, and one scrape.  Numbers, not
 * assertions: see bench/README.md.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "claims.h"
#include "config.h"
#include "gw.h"
#include "jwtv.h"
#include "metrics.h"
#include "pipeline.h"
#include "policy.h"
#include "translate.h"
#include "upreq.h"

#define ISS        "https://idp.bench"
#define HMAC       "bench-hmac-secret-0123456789abcdef0123456789"
#define STATEMENTS 200

static const char *body =
    "{\"project\":\"demo\",\"image_type\":\"private_image\","
    "\"namespace\":\"team-a\",\"severity_level\":\"High\","
    "\"operate_all\":true,\"start_latest_scan_time\":"
    "\"2026-01-01T00:00:00Z\",\"image_id_list\":[\"a1\",\"b2\"]}";

static char dir[64];

static void
die(const char *what, const char *err)
{
	fprintf(stderr, "bench: %s: %s\n", what, err ? err : "");
	exit(1);
}

static void
put(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		die("write", path);
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
}

/* Writes a fresh key pair; returns the private key PEM (caller frees). */
static char *
keypair(const char *name, int ec)
{
	EVP_PKEY *k = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
	char path[256], *priv;
	BIO *mem;
	FILE *f;
	long n;
	char *p;

	if (k == NULL)
		die("keygen", name);
	snprintf(path, sizeof(path), "%s/%s.pub.pem", dir, name);
	f = fopen(path, "w");
	PEM_write_PUBKEY(f, k);
	fclose(f);
	mem = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(mem, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(mem, &p);
	priv = strndup(p, (size_t)n);
	BIO_free(mem);
	EVP_PKEY_free(k);
	return priv;
}

static void
policies(void)
{
	struct gw_buf b;
	int i;

	gw_buf_init(&b, 1 << 20);
	gw_buf_puts(&b, "{\"Version\":\"2012-10-17\",\"Statement\":[");
	/* 199 statements for other teams, then the one that applies. */
	for (i = 0; i < STATEMENTS; i++)
		gw_buf_printf(
		    &b,
		    "%s{\"Sid\":\"S%d\",\"Effect\":\"Allow\","
		    "\"Principal\":{\"jwt:groups\":[\"team-%d\",\"ops-%d\"]},"
		    "\"Action\":\"hss:ExportImageBaseline\","
		    "\"Resource\":\"hss:*:demo\"}",
		    i ? "," : "", i, i == STATEMENTS - 1 ? 0 : i + 1000, i);
	gw_buf_puts(&b, "]}");
	put("pol/bench.json", b.p);
	gw_buf_reset(&b);
}

/* hssgw.json (the default token cache) or, cold, hssgw-cold.json (off). */
static void
config(int cold)
{
	char c[2048];

	snprintf(
	    c, sizeof(c),
	    "{\"listen\":\"unix:%s/s.sock\",\"max_body_bytes\":8192,"
	    "\"jwt\":{\"cache_entries\":%d,\"issuers\":[{\"issuer\":\"" ISS
	    "\","
	    "\"audiences\":[\"hssgw\"],\"keys\":["
	    "{\"kid\":\"rs\",\"alg\":\"RS256\",\"file\":\"rs.pub.pem\"},"
	    "{\"kid\":\"es\",\"alg\":\"ES256\",\"file\":\"es.pub.pem\"},"
	    "{\"kid\":\"hs\",\"alg\":\"HS256\",\"file\":\"hs.secret\"}]}]},"
	    "\"policies_dir\":\"pol\",\"credentials\":[{\"name\":\"m\","
	    "\"type\":\"token_file\",\"file\":\"iam.token\"}],"
	    "\"projects\":[{\"alias\":\"demo\",\"project_id\":\"p0\","
	    "\"region\":\"cn-north-4\",\"endpoint\":\"https://127.0.0.1:1\","
	    "\"enterprise_project_id\":\"0\",\"credentials\":\"m\"}],"
	    "\"audit\":{\"file\":\"%s\",\"fsync\":false}}",
	    dir, cold ? 0 : 4096, cold ? "audit-cold.jsonl" : "audit.jsonl");
	put(cold ? "hssgw-cold.json" : "hssgw.json", c);
}

static char *
mint(const char *alg, const char *kid, const char *key, const char *group)
{
	char claims[512], err[256], *t;
	long long now = gw_now_ms() / 1000;

	snprintf(claims, sizeof(claims),
	         "{\"iss\":\"" ISS "\",\"aud\":\"hssgw\",\"sub\":\"bench\","
	         "\"groups\":[\"%s\",\"x\",\"y\"],\"exp\":%lld}",
	         group, now + 3600);
	t = gw_jwt_mint(alg, kid, (const unsigned char *)key, strlen(key),
	                claims, err, sizeof(err));
	if (t == NULL)
		die("mint", err);
	return t;
}

struct ctx {
	struct gw_snapshot *snap, *snap_cold;
	struct gw_worker *w;
	struct gw_jwt_keyset *keys, *keys_cold;
	struct gw_pol_set *pol;
	struct gw_config *conf;
	struct gw_claims *claims;
	char *tok_rs, *tok_es, *tok_hs, *tok_deny;
	char *rs_pub; /* PEM text of the RS256 public key */
	struct gw_metrics *met;
};

typedef void opfn(struct ctx *);

static void
op_baseline(struct ctx *c)
{
	(void)c;
	json_object_put(json_tokener_parse(body));
}

static void
verify(const struct gw_jwt_keyset *ks, const char *tok)
{
	struct gw_claims *cl = NULL;
	struct gw_fault f;

	if (gw_jwt_verify(ks, tok, gw_now_ms() / 1000, &cl, &f) != GW_OK)
		die("verify", f.msg);
	gw_claims_free(cl);
}

static void
op_rs256(struct ctx *c)
{
	verify(c->keys_cold, c->tok_rs);
}

static void
op_es256(struct ctx *c)
{
	verify(c->keys_cold, c->tok_es);
}

static void
op_hs256(struct ctx *c)
{
	verify(c->keys_cold, c->tok_hs);
}

static void
op_rs256_cached(struct ctx *c)
{
	verify(c->keys, c->tok_rs);
}

/* What libjwt 1.10.2's jwt_decode does first on every RS256 call. */
static void
op_pem_parse(struct ctx *c)
{
	BIO *b = BIO_new_mem_buf(c->rs_pub, -1);
	EVP_PKEY *k =
	    b != NULL ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;

	if (k == NULL)
		die("pem", "parse failed");
	EVP_PKEY_free(k);
	BIO_free(b);
}

static void
op_translate(struct ctx *c)
{
	struct gw_export_req *x = NULL;
	struct gw_upreq *u = NULL;
	struct gw_fault f;

	if (gw_tr_parse(c->conf, body, strlen(body), &x, &f) != GW_OK ||
	    gw_tr_build(x, &u, &f) != GW_OK)
		die("translate", f.msg);
	gw_upreq_free(u);
	gw_tr_req_free(x);
}

static void
op_policy(struct ctx *c)
{
	struct gw_pol_request r;
	struct gw_pol_decision d;

	memset(&r, 0, sizeof(r));
	r.claims = c->claims;
	r.action = "hss:ExportImageBaseline";
	r.resource = "hss:cn-north-4:demo";
	gw_pol_eval(c->pol, &r, &d);
	if (d.effect != GW_POL_ALLOW)
		die("policy", "the last statement should allow");
}

static void
pipeline(struct gw_snapshot *snap, struct ctx *c, const char *tok)
{
	struct gw_http_req req;
	struct gw_http_resp resp;
	char auth[4096];

	snprintf(auth, sizeof(auth), "Bearer %s", tok);
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/v1/exports/image-baseline";
	req.content_type = "application/json";
	req.authorization = auth;
	req.client_addr = "127.0.0.1";
	req.request_id = "bench";
	req.body = body;
	req.bodylen = strlen(body);
	req.now_ms = gw_now_ms();
	gw_pipe_handle(snap, c->w, &req, &resp);
	if (resp.status != 403)
		die("pipeline", resp.body);
	gw_http_resp_reset(&resp);
}

/* The cache is off in this snapshot: every request verifies in full. */
static void
op_pipeline(struct ctx *c)
{
	pipeline(c->snap_cold, c, c->tok_deny);
}

/* A token the snapshot's cache has seen (the warm-up put it there). */
static void
op_pipeline_cached(struct ctx *c)
{
	pipeline(c->snap, c, c->tok_deny);
}

/*
 * What one export records: its answer and duration, the token check, the
 * decision, the HSS call, two audit records and a sync.
 */
static void
op_metrics(struct ctx *c)
{
	gw_metrics_jwt(c->met, GW_MET_JWT_OK);
	gw_metrics_decision(c->met, GW_MET_DEC_ALLOW);
	gw_metrics_upstream(c->met, "export", 200, 80000);
	gw_metrics_audit_record(c->met, 1);
	gw_metrics_audit_sync(c->met, 400);
	gw_metrics_audit_record(c->met, 1);
	gw_metrics_request(c->met, GW_MET_ROUTE_EXPORT, 200, GW_OK, 0, 90000);
}

/* One scrape of the registry and the process_* families. */
static void
op_scrape(struct ctx *c)
{
	struct gw_buf b;

	gw_buf_init(&b, GW_MET_OUT_MAX);
	gw_metrics_write(c->met, &b);
	gw_metrics_write_process(&b);
	gw_buf_reset(&b);
}

static double
measure(opfn *fn, struct ctx *c, double seconds)
{
	int64_t start, now;
	long n = 0, batch = 16;
	int i;

	for (i = 0; i < 64; i++) /* warm up */
		fn(c);
	start = gw_mono_us();
	do {
		for (i = 0; i < batch; i++)
			fn(c);
		n += batch;
		now = gw_mono_us();
	} while (now - start < (int64_t)(seconds * 1e6));
	return (double)(now - start) * 1000.0 / (double)n;
}

int
main(int argc, char *argv[])
{
	static const struct {
		const char *name;
		opfn *fn;
	} ops[] = {
	    {"baseline: json-c parse of the request body", op_baseline},
	    {"jwt verify RS256", op_rs256},
	    {"jwt verify ES256", op_es256},
	    {"jwt verify HS256", op_hs256},
	    {"  of which: PEM parse libjwt repeats (RS256)", op_pem_parse},
	    {"jwt verify RS256, cached token", op_rs256_cached},
	    {"validate + translate", op_translate},
	    {"policy eval, 200 statements (last applies)", op_policy},
	    {"pipeline to a 403, RS256, audited", op_pipeline},
	    {"pipeline to a 403, RS256 cached, audited", op_pipeline_cached},
	    {"metrics: an export's increments (7 series)", op_metrics},
	    {"metrics: one scrape (registry + /proc)", op_scrape},
	};
	struct ctx c;
	struct gw_fault f;
	double seconds = argc > 1 ? atof(argv[1]) : 1.0, base = 0, ns;
	char err[1024], path[256], *rs, *es;
	size_t i;

	memset(&c, 0, sizeof(c));
	snprintf(dir, sizeof(dir), "/tmp/hssgw-bench-XXXXXX");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", dir);
	snprintf(path, sizeof(path), "%s/pol", dir);
	mkdir(path, 0700);
	rs = keypair("rs", 0);
	es = keypair("es", 1);
	snprintf(path, sizeof(path), "%s/rs.pub.pem", dir);
	if (gw_read_file(path, 65536, 0, &c.rs_pub, &i, err, sizeof(err)) == -1)
		die("read", err);
	put("hs.secret", HMAC);
	put("iam.token", "bench-iam-token");
	policies();
	config(0);
	config(1);
	snprintf(path, sizeof(path), "%s/hssgw-cold.json", dir);
	c.snap_cold = gw_pipe_load(path, 1, err, sizeof(err));
	c.conf = gw_conf_load(path, err, sizeof(err));
	if (c.snap_cold == NULL || c.conf == NULL)
		die("load", err);
	c.keys_cold = gw_jwt_keyset_load(c.conf, err, sizeof(err));
	gw_conf_free(c.conf);
	snprintf(path, sizeof(path), "%s/hssgw.json", dir);
	c.snap = gw_pipe_load(path, 1, err, sizeof(err));
	if (c.snap == NULL || c.keys_cold == NULL)
		die("load", err);
	c.w = gw_pipe_worker_new();
	c.met = gw_metrics_new();
	if (c.met == NULL)
		die("metrics", "out of memory");
	c.conf = gw_conf_load(path, err, sizeof(err));
	c.keys = gw_jwt_keyset_load(c.conf, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/pol", dir);
	c.pol = gw_pol_load_dir(path, err, sizeof(err));
	if (c.w == NULL || c.conf == NULL || c.keys == NULL || c.pol == NULL)
		die("setup", err);
	c.tok_rs = mint("RS256", "rs", rs, "team-0");
	c.tok_es = mint("ES256", "es", es, "team-0");
	c.tok_hs = mint("HS256", "hs", HMAC, "team-0");
	c.tok_deny = mint("RS256", "rs", rs, "nobody");
	if (gw_jwt_verify(c.keys, c.tok_hs, gw_now_ms() / 1000, &c.claims,
	                  &f) != GW_OK)
		die("claims", f.msg);

	printf("%-46s %12s %10s\n", "operation", "ns/op", "x baseline");
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		/* bench_pipeline SECONDS WORDS: only rows naming WORDS (and
		 * the baseline), e.g. to profile one row with perf. */
		if (i > 0 && argc > 2 && strstr(ops[i].name, argv[2]) == NULL)
			continue;
		ns = measure(ops[i].fn, &c, seconds);
		if (i == 0)
			base = ns;
		printf("%-46s %12.0f %10.2f\n", ops[i].name, ns, ns / base);
	}
	printf("policy set: %zu statements\n", gw_pol_count(c.pol));

	gw_claims_free(c.claims);
	free(c.rs_pub);
	gw_jwt_keyset_free(c.keys_cold);
	gw_pipe_free(c.snap_cold);
	free(c.tok_rs);
	free(c.tok_es);
	free(c.tok_hs);
	free(c.tok_deny);
	gw_secret_free(rs);
	gw_secret_free(es);
	gw_pol_free(c.pol);
	gw_jwt_keyset_free(c.keys);
	gw_conf_free(c.conf);
	gw_pipe_worker_free(c.w);
	gw_metrics_free(c.met);
	gw_pipe_free(c.snap);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		return 1;
	return 0;
}
