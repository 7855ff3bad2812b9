/*
 * hssgw policy replay: what a candidate policy set would have decided on
 * the real trail.  For every decision in the trail (intent records, and
 * final records that reached policy: denials, allowed requests that
 * failed later, status polls answered from the cache) it decides again
 * through gw_pol_decide, the gateway's own decision, with the record's
 * inputs: its claims (subject, issuer, groups and the policy_input the
 * gateway records, docs/AUDIT.md), its request context, its client
 * address and its time.  Prints every decision that flips (allow <->
 * deny) and a summary per team and per statement.  A record that lacks
 * something the candidate reads is `unknown`, never guessed.  Streams:
 * memory stays bounded whatever the trail's size.  Reads only.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "cli.h"
#include "config.h"
#include "gw.h"
#include "policy.h"

#define LINE_MAX_BYTES ((size_t)4 << 20)
#define TALLY_MAX      1000 /* teams, statements; the rest is "(other)" */
#define VALUES_MAX     4096 /* claim and context values per record */
#define TRUNC_MARK     "...[truncated "

static const char replay_usage[] =
    "usage: hssgw policy replay --config CANDIDATE [--since T] [--until T] "
    "[--format json|table] TRAIL...\n";

struct tally {
	char key[256];
	unsigned long denies, allows;
};

struct tallies {
	struct tally *v; /* TALLY_MAX + 1: the last is "(other)" */
	size_t n;
};

/* One record's inputs, pointing into its JSON (valid while it lives). */
struct recin {
	struct gw_claims claims;
	struct gw_claim cl[GW_CLAIMS_MAX];
	struct gw_kv ctx[GW_POL_CTX_MAX - 2];
	size_t nctx;
	int ctx_whole; /* policy_input.context was recorded */
	/* names known to the record, present or known absent */
	const char *known[GW_CLAIMS_MAX + 8];
	size_t nknown;
	const char *truncated[GW_CLAIMS_MAX + GW_POL_CTX_MAX];
	size_t ntrunc;
	char *pool[VALUES_MAX];
	size_t npool;
	char region[128];
	const char *regionv[1], *projv[1], *issv[1], *subv[1];
};

/* The run: the candidate, the filters, the counts. */
struct replay {
	const struct gw_pol_set *set;
	int json;
	int has_since, has_until;
	int64_t since, until;
	unsigned long decisions, flips, new_denies, new_allows, unknown;
	struct tallies teams, stmts;
	json_tokener *tok;
	struct recin *ri; /* one record's inputs, reused */
};

static const char *
str_of(json_object *o, const char *k)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *
obj_of(json_object *o, const char *k)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

/*
 * The string values of a JSON array into the record's pool; 0, or -1
 * when it is no array of strings or the pool is full.  *cut is set when
 * the audit writer capped the list or a value (the marker).
 */
static int
values_of(struct recin *ri, json_object *a, char ***out, size_t *n, int *cut)
{
	size_t i, len;
	const char *s;

	*out = &ri->pool[ri->npool];
	*n = 0;
	if (!json_object_is_type(a, json_type_array))
		return -1;
	len = json_object_array_length(a);
	if (ri->npool + len > VALUES_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		s = json_object_get_string(json_object_array_get_idx(a, i));
		if (s == NULL)
			return -1;
		if (strstr(s, TRUNC_MARK) != NULL)
			*cut = 1;
		ri->pool[ri->npool++] = (char *)s;
		(*n)++;
	}
	return 0;
}

/* Adds a claim with the values of a (a JSON array) unless it has one. */
static int
claim_add(struct recin *ri, const char *name, json_object *a)
{
	struct gw_claim *c;
	size_t i;
	int cut = 0;

	for (i = 0; i < ri->claims.n; i++)
		if (strcasecmp(ri->cl[i].name, name) == 0)
			return 0;
	if (ri->claims.n >= GW_CLAIMS_MAX)
		return -1;
	c = &ri->cl[ri->claims.n];
	if (values_of(ri, a, &c->values, &c->nvalues, &cut) == -1)
		return -1;
	c->name = (char *)name;
	c->is_array = 1;
	ri->claims.n++;
	if (cut)
		ri->truncated[ri->ntrunc++] = name;
	return 0;
}

static void
known_add(struct recin *ri, const char *name)
{
	if (ri->nknown < sizeof(ri->known) / sizeof(ri->known[0]))
		ri->known[ri->nknown++] = name;
}

/* A claim holding one value: iss, sub (kept as a token keeps them). */
static void
claim_one(struct recin *ri, const char *name, const char *v)
{
	struct gw_claim *c = &ri->cl[ri->claims.n];

	known_add(ri, name);
	if (v == NULL || ri->npool >= VALUES_MAX ||
	    ri->claims.n >= GW_CLAIMS_MAX)
		return;
	ri->pool[ri->npool] = (char *)v;
	c->name = (char *)name;
	c->values = &ri->pool[ri->npool++];
	c->nvalues = 1;
	c->is_array = 0;
	ri->claims.n++;
}

/* The caller's claims: subject, issuer, groups, then policy_input's. */
static int
rec_claims(struct recin *ri, json_object *rec, json_object *pin)
{
	json_object *g = NULL, *pc;

	ri->claims.v = ri->cl;
	ri->claims.iss = (char *)str_of(rec, "issuer");
	ri->claims.sub = (char *)str_of(rec, "subject");
	ri->claims.jti = (char *)str_of(rec, "jti");
	claim_one(ri, "iss", ri->claims.iss);
	claim_one(ri, "sub", ri->claims.sub);
	if (ri->claims.jti != NULL)
		claim_one(ri, "jti", ri->claims.jti);
	if (json_object_object_get_ex(rec, "groups", &g)) {
		known_add(ri, "groups");
		if (g != NULL && claim_add(ri, "groups", g) == -1)
			return -1;
	}
	pc = pin != NULL ? obj_of(pin, "claims") : NULL;
	if (pc == NULL)
		return 0;
	json_object_object_foreach(pc, k, v)
	{
		known_add(ri, k);
		/* null: the token lacked the claim, which is known too. */
		if (v != NULL && claim_add(ri, k, v) == -1)
			return -1;
	}
	return 0;
}

static void
ctx_one(struct recin *ri, const char *key, const char **slot, const char *v)
{
	if (v == NULL || ri->nctx >= sizeof(ri->ctx) / sizeof(ri->ctx[0]))
		return;
	slot[0] = v;
	ri->ctx[ri->nctx++] = (struct gw_kv){key, slot, 1};
}

/*
 * The request context: policy_input.context when recorded; else what
 * every record says (project, region, a task's creator), and then a
 * candidate that reads any other hss: key makes the record unknown.
 */
static int
rec_context(struct recin *ri, json_object *rec, json_object *pin)
{
	json_object *pc = pin != NULL ? obj_of(pin, "context") : NULL;
	const char *res, *colon;
	char **vals;
	size_t n;
	int cut;

	if (pc != NULL) {
		ri->ctx_whole = 1;
		json_object_object_foreach(pc, k, v)
		{
			cut = 0;
			if (v == NULL)
				continue;
			if (ri->nctx >= sizeof(ri->ctx) / sizeof(ri->ctx[0]) ||
			    values_of(ri, v, &vals, &n, &cut) == -1)
				return -1;
			ri->ctx[ri->nctx++] =
			    (struct gw_kv){k, (const char *const *)vals, n};
			if (cut)
				ri->truncated[ri->ntrunc++] = k;
		}
		return 0;
	}
	res = str_of(rec, "resource");
	if (res != NULL && strncmp(res, "hss:", 4) == 0 &&
	    (colon = strchr(res + 4, ':')) != NULL &&
	    (size_t)(colon - res - 4) < sizeof(ri->region)) {
		memcpy(ri->region, res + 4, (size_t)(colon - res - 4));
		ri->region[colon - res - 4] = '\0';
		ctx_one(ri, "hss:region", ri->regionv, ri->region);
	}
	ctx_one(ri, "hss:project", ri->projv, str_of(rec, "project"));
	ctx_one(ri, "hss:task_issuer", ri->issv, str_of(rec, "task_issuer"));
	ctx_one(ri, "hss:task_subject", ri->subv, str_of(rec, "task_subject"));
	return 0;
}

static int
in_list(const char *const *v, size_t n, const char *name, int icase)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((icase ? strcasecmp(v[i], name) : strcmp(v[i], name)) == 0)
			return 1;
	return 0;
}

/*
 * The first key the candidate reads that the record cannot give, or
 * NULL: a claim it did not record, a capped value, a context key of a
 * record without policy_input.context.  gw: keys are always known.
 */
static const char *
rec_missing(const struct replay *rp, const struct recin *ri)
{
	const char *k;
	size_t i, j;
	int claim;

	for (i = 0; (k = gw_pol_key_at(rp->set, i, &claim)) != NULL; i++) {
		if (claim) {
			if (!in_list(ri->known, ri->nknown, k + 4, 1) ||
			    in_list(ri->truncated, ri->ntrunc, k + 4, 1))
				return k;
			continue;
		}
		if (strncasecmp(k, "gw:", 3) == 0)
			continue;
		if (in_list(ri->truncated, ri->ntrunc, k, 1))
			return k;
		if (ri->ctx_whole)
			continue;
		for (j = 0; j < ri->nctx; j++)
			if (strcasecmp(ri->ctx[j].key, k) == 0)
				break;
		if (j == ri->nctx)
			return k;
	}
	return NULL;
}

/* The route's action: a denied act-for names hss:ActForSubject. */
static const char *
route_action(json_object *rec, const char *action)
{
	const char *path = str_of(rec, "path");
	size_t n = path != NULL ? strlen(path) : 0;

	if (strcmp(action, "hss:ActForSubject") != 0)
		return action;
	if (n >= 5 && strcmp(path + n - 5, "/file") == 0)
		return "hss:DownloadExportFile";
	return "hss:GetExportTask";
}

/* Adds to the key's row (the last row sums the keys past the cap). */
static void
tally(struct tallies *t, const char *key, int new_allow)
{
	struct tally *row = NULL;
	size_t i;

	for (i = 0; i < t->n && row == NULL; i++)
		if (strncmp(t->v[i].key, key, sizeof(t->v[i].key) - 1) == 0)
			row = &t->v[i];
	if (row == NULL && t->n < TALLY_MAX) {
		row = &t->v[t->n++];
		snprintf(row->key, sizeof(row->key), "%s", key);
	}
	if (row == NULL) {
		row = &t->v[TALLY_MAX];
		snprintf(row->key, sizeof(row->key), "(other)");
	}
	if (new_allow)
		row->allows++;
	else
		row->denies++;
}

static void
stmt_name(const struct gw_pol_decision *d, char *out, size_t cap)
{
	if (d->effect == GW_POL_IMPLICIT_DENY || d->file[0] == '\0')
		snprintf(out, cap, "(no statement)");
	else
		snprintf(out, cap, "%s#%s", d->file, d->sid);
}

/* The record's own deciding statement, "file#sid", or "". */
static void
rec_stmt(json_object *rec, char *out, size_t cap)
{
	json_object *s = obj_of(rec, "statement");
	const char *f = s != NULL ? str_of(s, "file") : NULL;
	const char *sid = s != NULL ? str_of(s, "sid") : NULL;

	if (f != NULL && sid != NULL)
		snprintf(out, cap, "%s#%s", f, sid);
	else
		snprintf(out, cap, "(no statement)");
}

static void
jset(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k,
	                       v != NULL ? json_object_new_string(v) : NULL);
}

/* One flip, or one unknown record (why set), as a JSON line. */
static void
print_json(json_object *rec, const char *file, const char *action,
           const char *after, const char *stmt, const char *why)
{
	json_object *o = json_object_new_object();
	char before_stmt[300];

	if (o == NULL)
		return;
	if (why != NULL)
		json_object_object_add(o, "unknown",
		                       json_object_new_boolean(1));
	jset(o, "request_id", str_of(rec, "request_id"));
	jset(o, "time", str_of(rec, "time"));
	jset(o, "subject", str_of(rec, "subject"));
	jset(o, "team", str_of(rec, "team"));
	jset(o, "action", action);
	jset(o, "resource", str_of(rec, "resource"));
	jset(o, "before", str_of(rec, "decision"));
	rec_stmt(rec, before_stmt, sizeof(before_stmt));
	jset(o, "before_statement", before_stmt);
	if (why != NULL) {
		jset(o, "reason", why);
	} else {
		jset(o, "after", after);
		jset(o, "statement", stmt);
	}
	jset(o, "file", file);
	printf("%s\n",
	       json_object_to_json_string_ext(
	           o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* A member for the table: "-" when null or absent. */
static const char *
cell(json_object *rec, const char *k)
{
	const char *s = str_of(rec, k);

	return s != NULL ? s : "-";
}

static void
print_row(json_object *rec, const char *action, const char *after,
          const char *stmt)
{
	printf("%-24s  %-36s  %-16s  %-12s  %-24s  %-24s  %-13s  %-13s  %s\n",
	       cell(rec, "time"), cell(rec, "request_id"), cell(rec, "subject"),
	       cell(rec, "team"), action, cell(rec, "resource"),
	       cell(rec, "decision"), after, stmt);
}

/*
 * Decides one record again; prints it when it flips or is unknown.
 * -1: the record is malformed (why in err).
 */
static int
replay_rec(struct replay *rp, json_object *rec, const char *file, char *err,
           size_t errlen)
{
	struct recin *ri = rp->ri;
	const char *before, *action, *ts, *missing, *team;
	char stmt[300], key[600], why[300];
	json_object *pin = obj_of(rec, "policy_input");
	struct gw_pol_input in;
	struct gw_pol_verdict v;
	int64_t t;
	int was, is;

	before = str_of(rec, "decision");
	action = str_of(rec, "action");
	ts = str_of(rec, "time");
	if (before == NULL || action == NULL)
		return 0; /* never reached policy */
	if (ts == NULL || gw_rfc3339_ms(ts, &t) == -1) {
		snprintf(err, errlen, "a decision without a valid time");
		return -1;
	}
	if ((rp->has_since && t < rp->since) ||
	    (rp->has_until && t > rp->until))
		return 0;
	memset(ri, 0, sizeof(*ri));
	if (rec_claims(ri, rec, pin) == -1 || rec_context(ri, rec, pin) == -1) {
		snprintf(err, errlen,
		         "a claim or context key is malformed "
		         "or over the caps");
		return -1;
	}
	rp->decisions++;
	memset(&in, 0, sizeof(in));
	in.claims = &ri->claims;
	in.action = route_action(rec, action);
	in.resource = str_of(rec, "resource");
	in.ctx = ri->ctx;
	in.nctx = ri->nctx;
	in.now_ms = t;
	in.client_ip = str_of(rec, "client_addr");
	in.task_iss = str_of(rec, "task_issuer");
	in.task_sub = str_of(rec, "task_subject");
	missing = rec_missing(rp, ri);
	if (missing != NULL) {
		rp->unknown++;
		snprintf(why, sizeof(why),
		         "the candidate reads %s, which the record lacks",
		         missing);
		if (rp->json)
			print_json(rec, file, action, NULL, NULL, why);
		return 0;
	}
	if (gw_pol_decide(rp->set, &in, &v) == -1) {
		snprintf(err, errlen, "request context too large");
		return -1;
	}
	was = strcmp(before, "allow") == 0;
	is = v.decision.effect == GW_POL_ALLOW;
	if (was == is)
		return 0;
	rp->flips++;
	if (is)
		rp->new_allows++;
	else
		rp->new_denies++;
	stmt_name(&v.decision, stmt, sizeof(stmt));
	team = str_of(rec, "team");
	if (team == NULL)
		team = str_of(rec, "subject");
	tally(&rp->teams, team != NULL ? team : "(no subject)", is);
	/* A lost Allow decides nothing now: name the Allow that it was. */
	if (!is && v.decision.effect == GW_POL_IMPLICIT_DENY) {
		rec_stmt(rec, key, sizeof(key));
		tally(&rp->stmts, key, is);
	} else {
		tally(&rp->stmts, stmt, is);
	}
	if (rp->json)
		print_json(rec, file, v.action,
		           gw_pol_effect_name(v.decision.effect), stmt, NULL);
	else
		print_row(rec, v.action, gw_pol_effect_name(v.decision.effect),
		          stmt);
	return 0;
}

/*
 * Only decisions count: the outcome repeats its intent's, a summary
 * has none.  The phase is the fourth member of every record (v, seq,
 * prev first, docs/AUDIT.md), so a look at the start skips those lines
 * without parsing them.
 */
static int
skip_line(const char *line)
{
	const char *p = strstr(line, "\"phase\":\"");

	if (p == NULL || p - line > 120)
		return 0;
	p += 9;
	return strncmp(p, "outcome\"", 8) == 0 ||
	       strncmp(p, "summary\"", 8) == 0;
}

/* One trail file; -1 on an error (printed). */
static int
replay_file(struct replay *rp, const char *file)
{
	FILE *f = fopen(file, "r");
	json_object *rec = NULL;
	char *line = NULL, err[256];
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int rc = 0;

	if (f == NULL) {
		fprintf(stderr, "hssgw: %s: cannot open\n", file);
		return -1;
	}
	while (rc == 0 && (n = getline(&line, &cap, f)) != -1) {
		lineno++;
		if ((size_t)n > LINE_MAX_BYTES) {
			fprintf(stderr, "hssgw: %s:%zu: line over %zu bytes\n",
			        file, lineno, LINE_MAX_BYTES);
			rc = -1;
			break;
		}
		if (line[n - 1] != '\n') {
			/* Torn by a crash, never acknowledged (AUDIT.md). */
			fprintf(stderr,
			        "hssgw: %s:%zu: note: unterminated last "
			        "line skipped\n",
			        file, lineno);
			break;
		}
		if (n == 1 || skip_line(line))
			continue;
		json_tokener_reset(rp->tok);
		rec = json_tokener_parse_ex(rp->tok, line, (int)n - 1);
		if (rec == NULL ||
		    !json_object_is_type(rec, json_type_object)) {
			fprintf(stderr, "hssgw: %s:%zu: not a record\n", file,
			        lineno);
			rc = -1;
		} else if (replay_rec(rp, rec, file, err, sizeof(err)) == -1) {
			fprintf(stderr, "hssgw: %s:%zu: %s\n", file, lineno,
			        err);
			rc = -1;
		}
		json_object_put(rec);
		rec = NULL;
	}
	if (rc == 0 && ferror(f)) {
		fprintf(stderr, "hssgw: %s: read error\n", file);
		rc = -1;
	}
	free(line);
	fclose(f);
	return rc;
}

static json_object *
tally_json(const struct tallies *t, const char *name)
{
	json_object *a = json_object_new_array(), *o;
	size_t i;

	for (i = 0; i <= TALLY_MAX; i++) {
		if (i >= t->n && i != TALLY_MAX)
			continue;
		if (i == TALLY_MAX && t->v[i].denies + t->v[i].allows == 0)
			break;
		o = json_object_new_object();
		jset(o, name, t->v[i].key);
		json_object_object_add(
		    o, "new_denies",
		    json_object_new_int64((int64_t)t->v[i].denies));
		json_object_object_add(
		    o, "new_allows",
		    json_object_new_int64((int64_t)t->v[i].allows));
		json_object_array_add(a, o);
	}
	return a;
}

static void
tally_table(const struct tallies *t, const char *name)
{
	size_t i;

	printf("%-40s  %10s  %10s\n", name, "new_denies", "new_allows");
	for (i = 0; i <= TALLY_MAX; i++) {
		if ((i >= t->n && i != TALLY_MAX) ||
		    (i == TALLY_MAX && t->v[i].denies + t->v[i].allows == 0))
			continue;
		printf("%-40s  %10lu  %10lu\n", t->v[i].key, t->v[i].denies,
		       t->v[i].allows);
	}
}

static void
summary(const struct replay *rp)
{
	json_object *o, *s;

	if (!rp->json) {
		printf("decisions %lu, flips %lu (new denies %lu, new allows "
		       "%lu), unknown %lu, candidate revision %s\n",
		       rp->decisions, rp->flips, rp->new_denies, rp->new_allows,
		       rp->unknown, gw_pol_revision(rp->set));
		tally_table(&rp->teams, "team");
		tally_table(&rp->stmts, "statement");
		return;
	}
	o = json_object_new_object();
	s = json_object_new_object();
	json_object_object_add(o, "summary", s);
	json_object_object_add(s, "decisions",
	                       json_object_new_int64((int64_t)rp->decisions));
	json_object_object_add(s, "flips",
	                       json_object_new_int64((int64_t)rp->flips));
	json_object_object_add(s, "new_denies",
	                       json_object_new_int64((int64_t)rp->new_denies));
	json_object_object_add(s, "new_allows",
	                       json_object_new_int64((int64_t)rp->new_allows));
	json_object_object_add(s, "unknown",
	                       json_object_new_int64((int64_t)rp->unknown));
	jset(s, "candidate_revision", gw_pol_revision(rp->set));
	json_object_object_add(s, "teams", tally_json(&rp->teams, "team"));
	json_object_object_add(s, "statements",
	                       tally_json(&rp->stmts, "statement"));
	printf("%s\n",
	       json_object_to_json_string_ext(
	           o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* Parses the options into rp; -1: usage. */
static int
replay_args(int argc, char *argv[], struct replay *rp, const char **config)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"since", required_argument, NULL, 's'},
	    {"until", required_argument, NULL, 'u'},
	    {"format", required_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	rp->json = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			*config = optarg;
			break;
		case 's':
		case 'u':
			if (gw_rfc3339_ms(optarg, ch == 's'
			                              ? &rp->since
			                              : &rp->until) == -1) {
				fprintf(stderr,
				        "hssgw: --%s: not an RFC 3339 time\n",
				        ch == 's' ? "since" : "until");
				return -1;
			}
			*(ch == 's' ? &rp->has_since : &rp->has_until) = 1;
			break;
		case 'f':
			if (strcmp(optarg, "json") != 0 &&
			    strcmp(optarg, "table") != 0)
				return -1;
			rp->json = strcmp(optarg, "json") == 0;
			break;
		default:
			return -1;
		}
	}
	return *config == NULL || optind >= argc ? -1 : 0;
}

int
gw_cli_policy_replay(int argc, char *argv[])
{
	struct gw_config *conf = NULL;
	struct gw_pol_set *set = NULL;
	const char *config = NULL;
	struct replay rp;
	int rc = 2;

	memset(&rp, 0, sizeof(rp));
	if (gw_cli_help(argc, argv, replay_usage))
		return 0;
	if (replay_args(argc, argv, &rp, &config) == -1) {
		fputs(replay_usage, stderr);
		return 2;
	}
	set = gw_cli_polset_load(config, &conf);
	rp.set = set;
	rp.teams.v = calloc(TALLY_MAX + 1, sizeof(*rp.teams.v));
	rp.stmts.v = calloc(TALLY_MAX + 1, sizeof(*rp.stmts.v));
	rp.tok = json_tokener_new();
	rp.ri = malloc(sizeof(*rp.ri));
	if (set == NULL || rp.teams.v == NULL || rp.stmts.v == NULL ||
	    rp.tok == NULL || rp.ri == NULL)
		goto out;
	if (!rp.json)
		printf(
		    "%-24s  %-36s  %-16s  %-12s  %-24s  %-24s  %-13s  %-13s  "
		    "%s\n",
		    "TIME", "REQUEST_ID", "SUBJECT", "TEAM", "ACTION",
		    "RESOURCE", "BEFORE", "AFTER", "STATEMENT");
	for (; optind < argc; optind++)
		if (replay_file(&rp, argv[optind]) == -1)
			goto out;
	summary(&rp);
	rc = rp.flips > 0 ? 1 : 0;
out:
	if (rp.tok != NULL)
		json_tokener_free(rp.tok);
	free(rp.ri);
	free(rp.teams.v);
	free(rp.stmts.v);
	gw_pol_free(set);
	gw_conf_free(conf);
	return rc;
}
