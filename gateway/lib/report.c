/*
 * The audit report.  gw_report_build runs "audit verify" over the files,
 * then reads each line once, parses it with json-c and adds it to bounded
 * tables: a row per team, subject, deciding statement, shadow statement,
 * denied caller, anonymous failure reason and address, and "credentials
 * api" pair, each table capped (keys past the cap go to its "other"
 * row), an hourly series capped at GW_REPORT_HOURS_MAX hours and, per
 * upstream key, a ring of recent minutes that finds the busiest one.
 * Records are read tolerantly: unknown members are ignored, a missing one
 * counts as null.  The counting rules mirror "hssgw audit query" plus jq,
 * and the page (report_html.c) prints, under each table, the query that
 * reproduces it (the captions sit next to the renderers there).  Never
 * holds a record after it was counted; never writes the trail.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "auditq.h"
#include "gw.h"
#include "report.h"
#include "report_int.h"

#define COUNT_MAX 1000000000000LL /* a summary's count, range-checked */

/* The actions the report tells apart, and their budget API. */
static const struct {
	const char *action, *api;
} apis[] = {
    {ACT_EXPORT, "export"},
    {ACT_STATUS, "export-task"},
    {ACT_DOWNLOAD, "download"},
};

static const size_t tabcap[GW_REPORT_TABLE__MAX] = {
    [GW_REPORT_TEAM] = GW_REPORT_TEAMS_MAX,
    [GW_REPORT_SUBJECT] = GW_REPORT_SUBJECTS_MAX,
    [GW_REPORT_STATEMENT] = GW_REPORT_STATEMENTS_MAX,
    [GW_REPORT_SHADOW] = GW_REPORT_STATEMENTS_MAX,
    [GW_REPORT_DENIED] = GW_REPORT_SUBJECTS_MAX,
    [GW_REPORT_REASON] = GW_REPORT_REASONS_MAX,
    [GW_REPORT_ADDR] = GW_REPORT_ADDRS_MAX,
    [GW_REPORT_UPKEY] = GW_REPORT_STATEMENTS_MAX,
};
_Static_assert(sizeof(tabcap) / sizeof(tabcap[0]) == GW_REPORT_TABLE__MAX,
               "one cap per table");

static uint64_t
fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int
tab_init(struct table *t, size_t cap)
{
	size_t slots = 1;

	while (slots < cap * 2)
		slots <<= 1;
	t->cap = cap;
	t->mask = slots - 1;
	t->rows = calloc(cap, sizeof(*t->rows));
	t->index = calloc(slots, sizeof(*t->index));
	t->other.team = -1;
	return t->rows != NULL && t->index != NULL ? 0 : -1;
}

static void
tab_free(struct table *t)
{
	size_t i;

	for (i = 0; t->rows != NULL && i < t->n; i++) {
		free(t->rows[i].key);
		free(t->rows[i].ring);
	}
	free(t->other.ring);
	free(t->rows);
	free(t->index);
}

/* The row of key, or NULL; *slot is where a new key would go. */
static struct row *
tab_find(const struct table *t, const char *key, size_t *slot)
{
	size_t i = (size_t)fnv(key) & t->mask;

	while (t->index[i] != 0) {
		if (strcmp(t->rows[t->index[i] - 1].key, key) == 0)
			return &t->rows[t->index[i] - 1];
		i = (i + 1) & t->mask;
	}
	if (slot != NULL)
		*slot = i;
	return NULL;
}

/*
 * The row of key, added if the table has room, else the "other" row.
 * Keys are capped at GW_REPORT_KEY_MAX bytes (the trail's strings are
 * the callers'), so one long key cannot blow up the page.  NULL only
 * when memory runs out.
 */
static struct row *
tab_get(struct table *t, const char *key)
{
	char capped[GW_REPORT_KEY_MAX + 4];
	struct row *r;
	size_t slot = 0, len = strlen(key);

	if (len > GW_REPORT_KEY_MAX) {
		/* Cut on a UTF-8 boundary, then mark the cut. */
		len = GW_REPORT_KEY_MAX;
		while (len > 0 && ((unsigned char)key[len] & 0xc0) == 0x80)
			len--;
		snprintf(capped, sizeof(capped), "%.*s...", (int)len, key);
		key = capped;
	}
	r = tab_find(t, key, &slot);
	if (r != NULL)
		return r;
	if (t->n == t->cap) {
		t->other_used = 1;
		return &t->other;
	}
	r = &t->rows[t->n];
	r->key = strdup(key);
	if (r->key == NULL)
		return NULL;
	r->team = -1;
	t->index[slot] = (uint32_t)++t->n;
	return r;
}

/* Bit of name in the dictionary; bit 63 for names past its cap. */
static uint64_t
name_bit(struct names *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (strcmp(d->v[i], name) == 0)
			return 1ULL << i;
	if (d->n == NAMES_MAX || strlen(name) > GW_REPORT_KEY_MAX)
		return 1ULL << NAMES_MAX;
	d->v[d->n] = strdup(name);
	if (d->v[d->n] == NULL)
		return 1ULL << NAMES_MAX;
	return 1ULL << d->n++;
}

static const char *
str_of(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* An integer member, or -1 when absent, null or not an integer. */
static long long
int_of(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	return (long long)json_object_get_int64(v);
}

static int
true_of(struct json_object *o, const char *k)
{
	struct json_object *v;

	return o != NULL && json_object_object_get_ex(o, k, &v) &&
	       json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

static struct json_object *
obj_of(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

/*
 * The team: the record's "team" member (the fair-share claim's first
 * value, written by the gateway since it knows tasks.fair_share_claim),
 * else the first value of the configured claim when the record carries
 * it as a member (older records: only "groups"), else the subject, as in
 * the budget's fair share (docs/TASKS.md).
 */
static const char *
team_of(struct gw_report *rep, struct json_object *o, const char *subject)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, "team", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    json_object_get_string_len(v) > 0)
		return json_object_get_string(v);
	if (rep->opts.team_claim == NULL)
		return subject;
	if (json_object_object_get_ex(o, rep->opts.team_claim, &v)) {
		if (json_object_is_type(v, json_type_array) &&
		    json_object_array_length(v) > 0)
			v = json_object_array_get_idx(v, 0);
		if (json_object_is_type(v, json_type_string) &&
		    json_object_get_string_len(v) > 0)
			return json_object_get_string(v);
	}
	rep->t.no_team++;
	return subject;
}

static const char *
api_of(const char *action)
{
	size_t i;

	for (i = 0; action != NULL && i < sizeof(apis) / sizeof(apis[0]); i++)
		if (strcmp(action, apis[i].action) == 0)
			return apis[i].api;
	return "other";
}

/* The hour's row, NULL past the cap or without memory. */
static struct hour *
hour_get(struct gw_report *rep, int64_t ms)
{
	int64_t h = ms / HOUR_MS - (ms < 0 && ms % HOUR_MS != 0);
	size_t i = (size_t)((uint64_t)h * 2654435761ULL) & (HOURS_SLOT - 1);
	struct hour *nh;

	while (rep->hindex[i] != 0) {
		if (rep->hours[rep->hindex[i] - 1].h == h)
			return &rep->hours[rep->hindex[i] - 1];
		i = (i + 1) & (HOURS_SLOT - 1);
	}
	if (rep->nhours == GW_REPORT_HOURS_MAX) {
		rep->t.outside_chart++;
		return NULL;
	}
	nh = realloc(rep->hours, (rep->nhours + 1) * sizeof(*nh));
	if (nh == NULL)
		return NULL;
	rep->hours = nh;
	memset(&nh[rep->nhours], 0, sizeof(*nh));
	nh[rep->nhours].h = h;
	rep->hindex[i] = (int32_t)++rep->nhours;
	return &nh[rep->nhours - 1];
}

/*
 * Counts an upstream call in its minute.  Records are written when a
 * request ends, so they are nearly, not exactly, in time order: a ring
 * of RING minutes per key absorbs that; a minute leaving the ring is
 * final and may become the peak.
 */
static void
ring_add(struct row *r, int64_t ms)
{
	int64_t m = ms / MINUTE_MS;
	struct ring *g = r->ring;
	size_t s = (size_t)((uint64_t)m % RING), i;

	if (g == NULL) {
		g = r->ring = calloc(1, sizeof(*g));
		if (g == NULL)
			return;
		for (i = 0; i < RING; i++)
			g->min[i] = -1;
		g->peak_min = -1;
	}
	if (g->min[s] != m) {
		if (g->min[s] > m)
			return; /* older than the ring: already final */
		if (g->min[s] != -1 && g->n[s] > g->peak) {
			g->peak = g->n[s];
			g->peak_min = g->min[s];
		}
		g->min[s] = m;
		g->n[s] = 0;
	}
	g->n[s]++;
}

static void
ring_flush(struct row *r)
{
	struct ring *g = r->ring;
	size_t i;

	for (i = 0; g != NULL && i < RING; i++)
		if (g->min[i] != -1 &&
		    (g->n[i] > g->peak ||
		     (g->n[i] == g->peak && g->min[i] < g->peak_min))) {
			g->peak = g->n[i];
			g->peak_min = g->min[i];
		}
}

static int
add(struct gw_report *rep, enum gw_report_table t, const char *key,
    enum gw_report_col c, long long n)
{
	struct row *r = tab_get(&rep->tab[t], key);

	if (r == NULL)
		return -1;
	r->c[c] += n;
	return 0;
}

/* A summary record: anonymous failures counted by address and reason. */
static int
add_summary(struct gw_report *rep, struct json_object *o)
{
	struct json_object *counts, *e;
	const char *addr, *reason;
	long long n;
	size_t i, len;

	rep->t.summaries++;
	if (!json_object_object_get_ex(o, "counts", &counts) ||
	    !json_object_is_type(counts, json_type_array))
		return 0;
	len = json_object_array_length(counts);
	for (i = 0; i < len; i++) {
		e = json_object_array_get_idx(counts, i);
		n = int_of(e, "count");
		if (n < 0 || n > COUNT_MAX)
			continue;
		addr = str_of(e, "client_addr");
		reason = str_of(e, "reason");
		if (add(rep, GW_REPORT_REASON, reason ? reason : "unknown",
		        GW_RC_COUNT, n) == -1 ||
		    add(rep, GW_REPORT_ADDR, addr ? addr : "-", GW_RC_COUNT,
		        n) == -1)
			return -1;
	}
	return 0;
}

static int
add_anonymous(struct gw_report *rep, struct json_object *o)
{
	const char *reason = str_of(o, "error_code");
	const char *addr = str_of(o, "client_addr");
	char buf[32];
	long long st = int_of(o, "status");

	if (reason == NULL) {
		if (st >= 0)
			snprintf(buf, sizeof(buf), "HTTP %lld", st);
		else
			snprintf(buf, sizeof(buf), "unknown");
		reason = buf;
	}
	if (add(rep, GW_REPORT_REASON, reason, GW_RC_COUNT, 1) == -1 ||
	    add(rep, GW_REPORT_ADDR, addr ? addr : "-", GW_RC_COUNT, 1) == -1)
		return -1;
	return 0;
}

/* "file#sid" of a statement object, or what stands for none. */
static void
stmt_key(struct json_object *st, char *buf, size_t cap)
{
	const char *f = str_of(st, "file"), *sid = str_of(st, "sid");

	if (st == NULL)
		snprintf(buf, cap, "(no statement)");
	else
		snprintf(buf, cap, "%s#%s", f ? f : "", sid ? sid : "");
}

/* The HSS fields an export asked for: the members of the request body. */
static uint64_t
fields_of(struct gw_report *rep, struct json_object *up)
{
	struct json_object *req = obj_of(up, "request"), *body;
	uint64_t bits = 0;

	body = obj_of(req, "body");
	if (body == NULL)
		return 0;
	json_object_object_foreach(body, k, v)
	{
		(void)v;
		bits |= name_bit(&rep->fields, k);
	}
	return bits;
}

static int
col_of_decision(const char *d)
{
	if (strcmp(d, "allow") == 0)
		return GW_RC_ALLOW;
	if (strcmp(d, "explicit_deny") == 0)
		return GW_RC_EXPLICIT;
	if (strcmp(d, "implicit_deny") == 0)
		return GW_RC_IMPLICIT;
	return -1;
}

/* Row pointers of one record, all in the tables. */
struct rec_rows {
	struct row *team, *subj;
	int teamidx;
};

static int
add_decision(struct gw_report *rep, struct json_object *o,
             const struct rec_rows *rr, const char *subject)
{
	struct json_object *sh = obj_of(o, "shadow");
	const char *d = str_of(o, "decision"), *sd;
	char key[2 * GW_REPORT_KEY_MAX];
	int c, sc;

	if (d == NULL || (c = col_of_decision(d)) == -1)
		return 0;
	rr->team->c[c]++;
	rr->subj->c[c]++;
	stmt_key(obj_of(o, "statement"), key, sizeof(key));
	if (add(rep, GW_REPORT_STATEMENT, key, (enum gw_report_col)c, 1) == -1)
		return -1;
	if (c != GW_RC_ALLOW &&
	    add(rep, GW_REPORT_DENIED, subject, (enum gw_report_col)c, 1) == -1)
		return -1;
	sd = str_of(sh, "decision");
	if (sd == NULL || (sc = col_of_decision(sd)) == -1 ||
	    (sc == GW_RC_ALLOW) == (c == GW_RC_ALLOW))
		return 0;
	/* Only outcome changes count: deny -> deny by another rule is none. */
	c = c == GW_RC_ALLOW ? GW_RC_SHADOW_DENY : GW_RC_SHADOW_ALLOW;
	rr->team->c[c]++;
	rr->subj->c[c]++;
	stmt_key(obj_of(sh, "statement"), key, sizeof(key));
	return add(rep, GW_REPORT_SHADOW, key, (enum gw_report_col)c, 1);
}

static int
add_record(struct gw_report *rep, struct json_object *o, int64_t ms,
           int has_time)
{
	struct json_object *up = obj_of(o, "upstream");
	const char *phase = str_of(o, "phase"), *subject, *team, *action;
	const char *err = str_of(o, "error_code"), *cred;
	struct rec_rows rr;
	struct hour *h = NULL;
	struct row *r;
	long long st = int_of(o, "status"), ust = int_of(up, "status");
	char key[2 * GW_REPORT_KEY_MAX];
	int coalesced = true_of(o, "coalesced"), cached = true_of(o, "cached");

	if (phase != NULL && strcmp(phase, "summary") == 0)
		return add_summary(rep, o);
	/* An export's intent is followed by its outcome: count that one. */
	if (phase != NULL && strcmp(phase, "intent") == 0)
		return 0;
	subject = str_of(o, "subject");
	if (subject == NULL || *subject == '\0')
		return add_anonymous(rep, o);
	team = team_of(rep, o, subject);
	action = str_of(o, "action");
	rr.team = tab_get(&rep->tab[GW_REPORT_TEAM], team);
	if (rr.team == NULL)
		return -1;
	rr.teamidx = rr.team == &rep->tab[GW_REPORT_TEAM].other
	                 ? GW_REPORT_TEAMS_MAX
	                 : (int)(rr.team - rep->tab[GW_REPORT_TEAM].rows);
	rr.subj = tab_get(&rep->tab[GW_REPORT_SUBJECT], subject);
	if (rr.subj == NULL)
		return -1;
	if (rr.subj->team == -1)
		rr.subj->team = rr.teamidx;
	if (add_decision(rep, o, &rr, subject) == -1)
		return -1;
	if (has_time)
		h = hour_get(rep, ms);
	if (action != NULL && strcmp(action, ACT_EXPORT) == 0 && st == 200) {
		uint64_t p =
		    name_bit(&rep->projects,
		             str_of(o, "project") ? str_of(o, "project") : "-");
		uint64_t f = fields_of(rep, up);

		rr.team->c[GW_RC_EXPORTS]++;
		rr.subj->c[GW_RC_EXPORTS]++;
		rr.team->c[GW_RC_COALESCED] += coalesced;
		rr.subj->c[GW_RC_COALESCED] += coalesced;
		rr.team->projects |= p;
		rr.subj->projects |= p;
		rr.team->fields |= f;
		rr.subj->fields |= f;
		if (h != NULL)
			h->exports[rr.teamidx]++;
	} else if (action != NULL && strcmp(action, ACT_STATUS) == 0) {
		rr.team->c[GW_RC_POLLS]++;
		rr.team->c[GW_RC_POLLS_CACHED] += cached;
	} else if (action != NULL && strcmp(action, ACT_DOWNLOAD) == 0) {
		rr.team->c[GW_RC_DOWNLOADS]++;
		rr.team->c[GW_RC_DOWNLOADS_FAILED] += st != 200;
	}
	if (err != NULL && strcmp(err, "HSSGW.0205") == 0) {
		rr.team->c[GW_RC_BUDGET]++;
		if (h != NULL)
			h->budget++;
	}
	if (ust == 429) {
		rr.team->c[GW_RC_HSS429]++;
		if (h != NULL)
			h->hss429++;
	}
	/* A call HSS answered, not one served from a cache. */
	if (ust >= 0 && !coalesced && !cached) {
		cred = str_of(o, "credentials");
		snprintf(key, sizeof(key), "%s %s", cred ? cred : "-",
		         api_of(action));
		r = tab_get(&rep->tab[GW_REPORT_UPKEY], key);
		if (r == NULL)
			return -1;
		r->c[GW_RC_COUNT]++;
		if (has_time)
			ring_add(r, ms);
	}
	return 0;
}

/* 1: a line in buf, 0: end, -1: longer than a record (skipped). */
static int
read_line(FILE *f, char *buf, size_t cap, size_t *len, int *term)
{
	size_t n;
	int toolong = 0;

	*len = 0;
	*term = 0;
	for (;;) {
		if (fgets(buf, (int)cap, f) == NULL)
			return *len > 0 || toolong ? (toolong ? -1 : 1) : 0;
		n = strlen(buf);
		if (n > 0 && buf[n - 1] == '\n') {
			*term = 1;
			buf[n - 1] = '\0';
			*len = n - 1;
			return toolong ? -1 : 1;
		}
		if (n + 1 < cap) { /* end of file or a NUL byte */
			*len = n;
			return toolong ? -1 : 1;
		}
		toolong = 1;
	}
}

static int
read_file(struct gw_report *rep, const char *path, struct json_tokener *tok,
          char *buf, size_t cap, char *err, size_t errlen)
{
	struct json_object *o;
	const char *t;
	int64_t ms = 0;
	size_t len;
	int got, term, has_time, rc = -1;
	FILE *f;

	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((got = read_line(f, buf, cap, &len, &term)) != 0) {
		rep->t.lines++;
		/* As audit query: an unterminated line is no record. */
		if (got == -1 || !term) {
			rep->t.unreadable++;
			continue;
		}
		json_tokener_reset(tok);
		o = json_tokener_parse_ex(tok, buf, (int)len);
		if (o == NULL || !json_object_is_type(o, json_type_object) ||
		    (size_t)tok->char_offset != len) {
			rep->t.unreadable++;
			json_object_put(o);
			continue;
		}
		t = str_of(o, "time");
		has_time = t != NULL && gw_rfc3339_ms(t, &ms) == 0;
		if ((rep->opts.has_since || rep->opts.has_until) &&
		    (!has_time ||
		     (rep->opts.has_since && ms < rep->opts.since_ms) ||
		     (rep->opts.has_until && ms > rep->opts.until_ms))) {
			json_object_put(o);
			continue;
		}
		rep->t.records++;
		if (has_time && (rep->t.first_ms == 0 || ms < rep->t.first_ms))
			rep->t.first_ms = ms;
		if (has_time && ms > rep->t.last_ms)
			rep->t.last_ms = ms;
		got = add_record(rep, o, ms, has_time);
		json_object_put(o);
		if (got == -1) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}

/*
 * The team's jq expression for the captions.  The claim name goes into a
 * shell-quoted jq program, so it is held to a claim name's characters.
 */
static int
team_expr(struct gw_report *rep, char *err, size_t errlen)
{
	const char *c = rep->opts.team_claim;
	size_t n;

	if (c == NULL) {
		snprintf(rep->claimexpr, sizeof(rep->claimexpr),
		         "(.team // .subject)");
		return 0;
	}
	n = strspn(c, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	              "0123456789_:.-");
	if (n == 0 || c[n] != '\0' || n > 128) {
		snprintf(err, errlen,
		         "team claim: 1 to 128 letters, digits, _ : . or -");
		return -1;
	}
	snprintf(rep->claimexpr, sizeof(rep->claimexpr),
	         "(.team // (.[\"%s\"] | if type==\"array\" then .[0] "
	         "else . end) // .subject)",
	         c);
	return 0;
}

/* The verify thread: writes only rep->t.verify and rep->t.intact. */
static void *
verify_main(void *arg)
{
	struct gw_report *rep = arg;

	rep->t.intact = gw_auditq_verify(rep->opts.files, rep->opts.nfiles,
	                                 rep->opts.checkpoint,
	                                 rep->opts.checkpoint_required,
	                                 &rep->t.verify) == 0;
	return NULL;
}

struct gw_report *
gw_report_build(const struct gw_report_opts *opts, char *err, size_t errlen)
{
	struct gw_report *rep = NULL, *ret = NULL;
	struct json_tokener *tok = NULL;
	char *buf = NULL;
	pthread_t vt;
	size_t i;
	int joinable = 0;

	rep = calloc(1, sizeof(*rep));
	if (rep == NULL)
		goto nomem;
	rep->opts = *opts;
	if (rep->opts.budget_per_minute <= 0)
		rep->opts.budget_per_minute = 5;
	if (team_expr(rep, err, errlen) == -1)
		goto out;
	for (i = 0; i < GW_REPORT_TABLE__MAX; i++)
		if (tab_init(&rep->tab[i], tabcap[i]) == -1)
			goto nomem;
	/*
	 * Verify reads the files twice, the tables once: on two cores they
	 * run side by side, so the page costs about what verify does.
	 */
	if (pthread_create(&vt, NULL, verify_main, rep) != 0)
		verify_main(rep);
	else
		joinable = 1;
	buf = malloc(GW_AUDITQ_LINE_MAX + 2);
	tok = json_tokener_new();
	if (buf == NULL || tok == NULL)
		goto nomem;
	for (i = 0; i < opts->nfiles; i++)
		if (read_file(rep, opts->files[i], tok, buf,
		              GW_AUDITQ_LINE_MAX + 2, err, errlen) == -1)
			goto out;
	if (joinable) {
		joinable = 0;
		pthread_join(vt, NULL);
	}
	for (i = 0; i < rep->tab[GW_REPORT_UPKEY].n; i++)
		ring_flush(&rep->tab[GW_REPORT_UPKEY].rows[i]);
	ring_flush(&rep->tab[GW_REPORT_UPKEY].other);
	ret = rep;
	rep = NULL;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	if (joinable)
		pthread_join(vt, NULL);
	if (tok != NULL) /* json-c's free does not take NULL */
		json_tokener_free(tok);
	free(buf);
	gw_report_free(rep);
	return ret;
}

void
gw_report_free(struct gw_report *rep)
{
	size_t i;

	if (rep == NULL)
		return;
	for (i = 0; i < GW_REPORT_TABLE__MAX; i++)
		tab_free(&rep->tab[i]);
	for (i = 0; i < rep->projects.n; i++)
		free(rep->projects.v[i]);
	for (i = 0; i < rep->fields.n; i++)
		free(rep->fields.v[i]);
	free(rep->hours);
	free(rep);
}

const struct gw_report_totals *
gw_report_totals(const struct gw_report *rep)
{
	return &rep->t;
}

static const struct row *
row_of(const struct gw_report *rep, enum gw_report_table t, const char *key)
{
	if ((unsigned)t >= GW_REPORT_TABLE__MAX)
		return NULL;
	if (key == NULL)
		return rep->tab[t].other_used ? &rep->tab[t].other : NULL;
	return tab_find(&rep->tab[t], key, NULL);
}

long long
gw_report_count(const struct gw_report *rep, enum gw_report_table t,
                const char *key, enum gw_report_col c)
{
	const struct row *r = row_of(rep, t, key);

	if (r == NULL || (unsigned)c >= GW_RC__MAX)
		return -1;
	return r->c[c];
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of bits, sorted, joined by ", "; "other" for bit 63. */
void
rep_join_names(const struct names *d, uint64_t bits, char *buf, size_t cap)
{
	const char *v[NAMES_MAX];
	size_t i, n = 0, off = 0;

	for (i = 0; i < d->n; i++)
		if (bits & (1ULL << i))
			v[n++] = d->v[i];
	qsort(v, n, sizeof(v[0]), cmp_str);
	buf[0] = '\0';
	for (i = 0; i < n && off < cap; i++)
		off += (size_t)snprintf(buf + off, cap - off, "%s%s",
		                        i ? ", " : "", v[i]);
	if ((bits & (1ULL << NAMES_MAX)) && off < cap)
		snprintf(buf + off, cap - off, "%sothers", n ? ", " : "");
}

int
gw_report_names(const struct gw_report *rep, enum gw_report_table t,
                const char *key, int what, char *buf, size_t cap)
{
	const struct row *r = row_of(rep, t, key);

	if (r == NULL || cap == 0)
		return -1;
	if (what == 'p')
		rep_join_names(&rep->projects, r->projects, buf, cap);
	else
		rep_join_names(&rep->fields, r->fields, buf, cap);
	return 0;
}

static const struct hour *
hour_find(const struct gw_report *rep, int64_t h)
{
	size_t i = (size_t)((uint64_t)h * 2654435761ULL) & (HOURS_SLOT - 1);

	while (rep->hindex[i] != 0) {
		if (rep->hours[rep->hindex[i] - 1].h == h)
			return &rep->hours[rep->hindex[i] - 1];
		i = (i + 1) & (HOURS_SLOT - 1);
	}
	return NULL;
}

long long
gw_report_hour(const struct gw_report *rep, int64_t hour_ms, const char *team,
               enum gw_report_col c)
{
	const struct hour *h = hour_find(rep, hour_ms / HOUR_MS);
	const struct row *r;
	long long n = 0;
	size_t i;

	if (h == NULL)
		return 0;
	if (c == GW_RC_BUDGET)
		return h->budget;
	if (c == GW_RC_HSS429)
		return h->hss429;
	if (team == NULL) {
		for (i = 0; i <= GW_REPORT_TEAMS_MAX; i++)
			n += h->exports[i];
		return n;
	}
	r = row_of(rep, GW_REPORT_TEAM, team);
	if (r == NULL)
		return 0;
	return h->exports[r == &rep->tab[GW_REPORT_TEAM].other
	                      ? GW_REPORT_TEAMS_MAX
	                      : r - rep->tab[GW_REPORT_TEAM].rows];
}

int
gw_report_peak(const struct gw_report *rep, const char *key, long long *calls,
               int64_t *minute_ms)
{
	const struct row *r = row_of(rep, GW_REPORT_UPKEY, key);

	if (r == NULL || r->ring == NULL || r->ring->peak_min < 0)
		return -1;
	*calls = r->ring->peak;
	*minute_ms = r->ring->peak_min * MINUTE_MS;
	return 0;
}
