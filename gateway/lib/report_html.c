/*
 * The audit report's page: gw_report_html renders the tables report.c
 * built as one self-contained HTML page (inline CSS, inline SVG charts),
 * each table captioned with the "hssgw audit query | jq" that reproduces
 * it.  It only reads the report.  It must escape every string that comes
 * from the trail (they are the callers') and must load nothing (no script,
 * stylesheet or image from anywhere; its Content-Security-Policy forbids
 * them too), so the page opens from a mail.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auditq.h"
#include "gw.h"
#include "report.h"
#include "report_int.h"

#define TOP_ROWS    100 /* rows shown per table; the rest summed */
#define CHART_TEAMS 8   /* teams stacked in the chart; the rest "other" */
#define CHART_W     900
#define CHART_H     300
#define PLOT_L      60
#define PLOT_R      20
#define PLOT_T      50
#define PLOT_B      50

/* Okabe-Ito: told apart with colour blindness, and in grey print. */
static const char *const palette[] = {
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9",
    "#D55E00", "#F0E442", "#000000", "#999999",
};
_Static_assert(sizeof(palette) / sizeof(palette[0]) == CHART_TEAMS + 1,
               "a colour per charted team and one for the rest");

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:"
    "960px;color:#111;padding:0 1em}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid "
    "#0072B2;padding-bottom:.2em;margin-top:2em}"
    "table{border-collapse:collapse;margin:.5em 0;width:100%}"
    "th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;"
    "vertical-align:top;overflow-wrap:anywhere}"
    "th{background:#eef3f8}td.n,th.n{text-align:right;font-variant-numeric:"
    "tabular-nums}tr.other td{font-style:italic;color:#444}"
    ".q{font-size:.85em;color:#444;margin:.2em 0 1em}.q code{background:"
    "#f4f4f4;padding:.1em .3em;overflow-wrap:anywhere}"
    ".ok{border-left:6px solid #009E73;background:#eefaf4;padding:.6em 1em}"
    ".broken{border-left:6px solid #D55E00;background:#fdeee6;padding:.6em"
    " 1em;font-weight:bold}"
    ".note{color:#444;font-size:.9em}svg{width:100%;height:auto;max-width:"
    "900px}svg text{font:12px system-ui,sans-serif}"
    "dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}"
    "dt{font-weight:bold}dd{margin:0}"
    "@media print{body{font-size:10pt;margin:0;max-width:none}"
    "section{break-inside:avoid-page}h2{break-after:avoid}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

/* Writes s HTML-escaped: every string from the trail is the callers'. */
static void
esc(FILE *f, const char *s)
{
	for (; s != NULL && *s; s++)
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			if ((unsigned char)*s < 0x20)
				fputc(' ', f);
			else
				fputc(*s, f);
		}
}

/* At most n bytes of s, escaped, cut on a UTF-8 boundary, "..." if cut. */
static void
esc_short(FILE *f, const char *s, size_t n)
{
	char buf[128];
	size_t len = strlen(s);

	if (n >= sizeof(buf) - 4)
		n = sizeof(buf) - 4;
	if (len <= n) {
		esc(f, s);
		return;
	}
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	snprintf(buf, sizeof(buf), "%.*s...", (int)n, s);
	esc(f, buf);
}

static void
fmt_time(int64_t ms, char *buf, size_t cap)
{
	if (ms == 0)
		snprintf(buf, cap, "-");
	else
		gw_fmt_time_ms(ms, buf, cap);
}

/*
 * The query behind a table: hssgw audit query over the same files and
 * window, then jq over its JSON lines, then tail (sort | uniq -c).
 */
static void
caption(FILE *f, const struct gw_report *rep, const char *args, const char *jq1,
        const char *jq2, const char *tail)
{
	char t[40];

	fputs("<p class=\"q\">Reproduce: <code>hssgw audit query ", f);
	esc(f, rep->opts.cmdline_files ? rep->opts.cmdline_files : "FILE...");
	if (rep->opts.has_since) {
		gw_fmt_time_ms(rep->opts.since_ms, t, sizeof(t));
		fprintf(f, " --since %s", t);
	}
	if (rep->opts.has_until) {
		gw_fmt_time_ms(rep->opts.until_ms, t, sizeof(t));
		fprintf(f, " --until %s", t);
	}
	if (args != NULL) {
		fputc(' ', f);
		esc(f, args);
	}
	if (jq1 != NULL) {
		fputs(" | jq -r '", f);
		esc(f, jq1);
		esc(f, jq2);
		fputs("'", f);
	}
	if (tail != NULL) {
		fputc(' ', f);
		esc(f, tail);
	}
	fputs("</code></p>\n", f);
}

/* A column of a rendered table. */
struct col {
	const char *title;
	int c; /* a gw_report_col, or one of the extras below */
};
#define X_PROJECTS (-1)
#define X_FIELDS   (-2)
#define X_TEAM     (-3)

struct sorter {
	const struct row *r;
	long long key;
};

static int
cmp_sorter(const void *a, const void *b)
{
	const struct sorter *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? 1 : -1;
	return strcmp(x->r->key, y->r->key);
}

static long long
row_sum(const struct row *r, const struct col *cols, size_t ncols)
{
	long long s = 0;
	size_t i;

	for (i = 0; i < ncols; i++)
		if (cols[i].c >= 0)
			s += r->c[cols[i].c];
	return s;
}

static void
cell_extra(FILE *f, const struct gw_report *rep, const struct row *r, int c)
{
	char buf[4096];

	if (c == X_PROJECTS)
		rep_join_names(&rep->projects, r->projects, buf, sizeof(buf));
	else if (c == X_FIELDS)
		rep_join_names(&rep->fields, r->fields, buf, sizeof(buf));
	else if (r->team >= 0 && (size_t)r->team < rep->tab[GW_REPORT_TEAM].n)
		snprintf(buf, sizeof(buf), "%s",
		         rep->tab[GW_REPORT_TEAM].rows[r->team].key);
	else
		snprintf(buf, sizeof(buf), "%s", r->team >= 0 ? "other" : "-");
	fputs("<td>", f);
	esc(f, buf);
	fputs("</td>", f);
}

static void
row_html(FILE *f, const struct gw_report *rep, const struct row *r,
         const char *label, const char *cls, const struct col *cols,
         size_t ncols)
{
	size_t i;

	fprintf(f, "<tr%s%s%s><td>", cls ? " class=\"" : "", cls ? cls : "",
	        cls ? "\"" : "");
	esc(f, label ? label : r->key);
	fputs("</td>", f);
	for (i = 0; i < ncols; i++)
		if (cols[i].c >= 0)
			fprintf(f, "<td class=\"n\">%lld</td>",
			        r->c[cols[i].c]);
		else
			cell_extra(f, rep, r, cols[i].c);
	fputs("</tr>\n", f);
}

/*
 * A table of the rows of t with something in cols, by the first
 * column, at most TOP_ROWS, the rest summed into one row; the "other"
 * row (keys past the cap) last, saying so.
 */
static int
table_html(FILE *f, const struct gw_report *rep, enum gw_report_table t,
           const char *id, const char *keytitle, const struct col *cols,
           size_t ncols)
{
	const struct table *tb = &rep->tab[t];
	struct sorter *v;
	struct row rest;
	char label[96];
	size_t i, j, n = 0;

	v = calloc(tb->n + 1, sizeof(*v));
	if (v == NULL)
		return -1;
	for (i = 0; i < tb->n; i++)
		if (row_sum(&tb->rows[i], cols, ncols) > 0) {
			v[n].r = &tb->rows[i];
			v[n++].key = tb->rows[i].c[cols[0].c];
		}
	qsort(v, n, sizeof(*v), cmp_sorter);
	fprintf(f, "<table id=\"%s\"><thead><tr><th>", id);
	esc(f, keytitle);
	fputs("</th>", f);
	for (i = 0; i < ncols; i++)
		fprintf(f, "<th%s>%s</th>",
		        cols[i].c >= 0 ? " class=\"n\"" : "", cols[i].title);
	fputs("</tr></thead><tbody>\n", f);
	if (n == 0 && !tb->other_used)
		fprintf(f, "<tr><td colspan=\"%zu\">none</td></tr>\n",
		        ncols + 1);
	for (i = 0; i < n && i < TOP_ROWS; i++)
		row_html(f, rep, v[i].r, NULL, NULL, cols, ncols);
	if (n > TOP_ROWS) {
		memset(&rest, 0, sizeof(rest));
		for (i = TOP_ROWS; i < n; i++)
			for (j = 0; j < GW_RC__MAX; j++)
				rest.c[j] += v[i].r->c[j];
		snprintf(label, sizeof(label), "(%zu more rows, summed)",
		         n - TOP_ROWS);
		rest.team = -1;
		row_html(f, rep, &rest, label, "other", cols, ncols);
	}
	if (tb->other_used && row_sum(&tb->other, cols, ncols) > 0) {
		snprintf(label, sizeof(label),
		         "other (keys past the first %zu, summed)", tb->cap);
		row_html(f, rep, &tb->other, label, "other", cols, ncols);
	}
	fputs("</tbody></table>\n", f);
	free(v);
	return 0;
}

/* A round step for about 5 ticks up to max. */
static long long
nice_step(long long max)
{
	long long step = 1;

	while (step * 5 < max) {
		if (step * 2 * 5 >= max)
			return step * 2;
		if (step * 5 * 5 >= max)
			return step * 5;
		step *= 10;
	}
	return step;
}

/* The chart's buckets: hours when the range is short, else days. */
struct buckets {
	int64_t start; /* hour number of the first */
	int64_t width; /* hours per bucket */
	size_t n;
};

static void
buckets_of(const struct gw_report *rep, struct buckets *b)
{
	int64_t lo = 0, hi = 0, span;
	size_t i;

	memset(b, 0, sizeof(*b));
	for (i = 0; i < rep->nhours; i++) {
		if (i == 0 || rep->hours[i].h < lo)
			lo = rep->hours[i].h;
		if (i == 0 || rep->hours[i].h > hi)
			hi = rep->hours[i].h;
	}
	if (rep->nhours == 0)
		return;
	span = hi - lo + 1;
	b->width = 1;
	b->start = lo;
	if (span > 72) {
		/* Whole UTC days, at most 400 bars. */
		b->start = lo - ((lo % 24) + 24) % 24;
		span = hi - b->start + 1;
		b->width = 24 * ((span + 24 * 400 - 1) / (24 * 400));
	}
	b->n = (size_t)((span + b->width - 1) / b->width);
}

struct series {
	const char *name;
	long long *v; /* one per bucket */
};

static void
bucket_label(const struct buckets *b, size_t i, char *buf, size_t cap)
{
	char t[40];

	gw_fmt_time_ms((b->start + (int64_t)i * b->width) * HOUR_MS, t,
	               sizeof(t));
	/* "2026-01-01T13:00:00.000Z": MM-DD, with HH:00 for hours. */
	if (b->width == 1)
		snprintf(buf, cap, "%.5s %.5s", t + 5, t + 11);
	else
		snprintf(buf, cap, "%.5s", t + 5);
}

/* A stacked bar chart in inline SVG: title, axes, ticks and a legend. */
static void
chart_html(FILE *f, const char *id, const char *title, const char *ylabel,
           const struct buckets *b, const struct series *s, size_t ns)
{
	double pw = CHART_W - PLOT_L - PLOT_R, ph = CHART_H - PLOT_T - PLOT_B;
	double bw, barw, x, y, hgt, lx = PLOT_L;
	long long max = 0, tot, step, v;
	size_t i, k, every;
	char lab[40];

	for (i = 0; i < b->n; i++) {
		for (tot = 0, k = 0; k < ns; k++)
			tot += s[k].v[i];
		if (tot > max)
			max = tot;
	}
	step = nice_step(max > 0 ? max : 1);
	max = ((max + step - 1) / step) * step;
	if (max == 0)
		max = step;
	bw = b->n > 0 ? pw / (double)b->n : pw;
	barw = bw * 0.8 > 60 ? 60 : bw * 0.8;
	fprintf(f,
	        "<svg id=\"%s\" viewBox=\"0 0 %d %d\" role=\"img\" "
	        "xmlns=\"http://www.w3.org/2000/svg\" aria-labelledby=\"%s-t\">"
	        "<title id=\"%s-t\">",
	        id, CHART_W, CHART_H, id, id);
	esc(f, title);
	fprintf(f, "</title><text x=\"%d\" y=\"18\" font-weight=\"bold\">", 0);
	esc(f, title);
	fputs("</text>\n", f);
	/* Legend along the top. */
	for (k = 0; k < ns; k++) {
		fprintf(f,
		        "<rect x=\"%.0f\" y=\"28\" width=\"10\" height=\"10\" "
		        "fill=\"%s\"/><text x=\"%.0f\" y=\"37\">",
		        lx, palette[k % (CHART_TEAMS + 1)], lx + 14);
		esc_short(f, s[k].name, 32);
		fputs("</text>", f);
		lx += 24 + 7.0 * (double)(strlen(s[k].name) < 32
		                              ? strlen(s[k].name)
		                              : 35);
	}
	fputc('\n', f);
	/* Y axis, ticks and grid. */
	for (v = 0; v <= max; v += step) {
		y = PLOT_T + ph - ph * (double)v / (double)max;
		fprintf(f,
		        "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
		        "stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" "
		        "text-anchor=\"end\">%lld</text>\n",
		        PLOT_L, y, CHART_W - PLOT_R, y, PLOT_L - 6, y + 4, v);
	}
	fprintf(f,
	        "<text transform=\"translate(14 %.0f) rotate(-90)\" "
	        "text-anchor=\"middle\">",
	        PLOT_T + ph / 2);
	esc(f, ylabel);
	fputs("</text>\n", f);
	/* Bars, bottom up. */
	for (i = 0; i < b->n; i++) {
		x = PLOT_L + bw * (double)i;
		y = PLOT_T + ph;
		for (k = 0; k < ns; k++) {
			if (s[k].v[i] == 0)
				continue;
			hgt = ph * (double)s[k].v[i] / (double)max;
			y -= hgt;
			bucket_label(b, i, lab, sizeof(lab));
			/* A lone bar stays a bar, not a wall. */
			fprintf(f,
			        "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
			        "height=\"%.2f\" fill=\"%s\"><title>",
			        x + (bw - barw) / 2, y, barw, hgt,
			        palette[k % (CHART_TEAMS + 1)]);
			esc(f, s[k].name);
			fprintf(f, " %s: %lld</title></rect>\n", lab,
			        s[k].v[i]);
		}
	}
	/* X axis and about ten labels. */
	fprintf(f,
	        "<line x1=\"%d\" y1=\"%.0f\" x2=\"%d\" y2=\"%.0f\" "
	        "stroke=\"#333\"/><line x1=\"%d\" y1=\"%d\" x2=\"%d\" "
	        "y2=\"%.0f\" stroke=\"#333\"/>\n",
	        PLOT_L, PLOT_T + ph, CHART_W - PLOT_R, PLOT_T + ph, PLOT_L,
	        PLOT_T, PLOT_L, PLOT_T + ph);
	every = b->n / 10 + 1;
	for (i = 0; i < b->n; i += every) {
		bucket_label(b, i, lab, sizeof(lab));
		fprintf(f,
		        "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s"
		        "</text>\n",
		        PLOT_L + bw * ((double)i + 0.5), PLOT_T + ph + 16, lab);
	}
	fprintf(f,
	        "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">UTC, per "
	        "%s</text>\n</svg>\n",
	        PLOT_L + pw / 2, CHART_H - 6, b->width == 1 ? "hour" : "day");
	if (b->width > 24)
		fprintf(f, "<p class=\"note\">Each bar is %lld days.</p>\n",
		        (long long)(b->width / 24));
}

/* Which bucket an hour falls in. */
static size_t
bucket_of(const struct buckets *b, int64_t h)
{
	return (size_t)((h - b->start) / b->width);
}

static int
exports_chart(FILE *f, const struct gw_report *rep)
{
	const struct table *tb = &rep->tab[GW_REPORT_TEAM];
	struct series s[CHART_TEAMS + 1];
	struct sorter *v = NULL;
	struct buckets b;
	int map[GW_REPORT_TEAMS_MAX + 1];
	size_t i, k, n = 0, ns;
	long long *vals = NULL;
	int rc = -1;

	buckets_of(rep, &b);
	v = calloc(tb->n + 1, sizeof(*v));
	vals = calloc((b.n + 1) * (CHART_TEAMS + 1), sizeof(*vals));
	if (v == NULL || vals == NULL)
		goto out;
	for (i = 0; i < tb->n; i++)
		if (tb->rows[i].c[GW_RC_EXPORTS] > 0) {
			v[n].r = &tb->rows[i];
			v[n++].key = tb->rows[i].c[GW_RC_EXPORTS];
		}
	qsort(v, n, sizeof(*v), cmp_sorter);
	/* The busiest teams get a colour each, the rest share one. */
	for (i = 0; i <= GW_REPORT_TEAMS_MAX; i++)
		map[i] = CHART_TEAMS;
	ns = n < CHART_TEAMS ? n : CHART_TEAMS;
	for (k = 0; k < ns; k++) {
		map[v[k].r - tb->rows] = (int)k;
		s[k].name = v[k].r->key;
	}
	if (n > CHART_TEAMS ||
	    (tb->other_used && tb->other.c[GW_RC_EXPORTS] > 0))
		s[ns++].name = "other teams";
	for (k = 0; k < ns; k++)
		s[k].v = vals + k * (b.n + 1);
	for (i = 0; i < rep->nhours; i++)
		for (k = 0; k <= GW_REPORT_TEAMS_MAX; k++)
			if (rep->hours[i].exports[k] > 0)
				s[map[k] < (int)ns ? map[k] : (int)ns - 1]
				    .v[bucket_of(&b, rep->hours[i].h)] +=
				    rep->hours[i].exports[k];
	chart_html(f, "exports-chart", "Exports over time, by team", "exports",
	           &b, s, ns);
	rc = 0;
out:
	free(v);
	free(vals);
	return rc;
}

static int
budget_chart(FILE *f, const struct gw_report *rep)
{
	struct series s[2] = {{"budget rejections (HSSGW.0205)", NULL},
	                      {"HSS 429", NULL}};
	struct buckets b;
	size_t i;

	buckets_of(rep, &b);
	s[0].v = calloc(b.n + 1, sizeof(long long));
	s[1].v = calloc(b.n + 1, sizeof(long long));
	if (s[0].v == NULL || s[1].v == NULL) {
		free(s[0].v);
		free(s[1].v);
		return -1;
	}
	for (i = 0; i < rep->nhours; i++) {
		s[0].v[bucket_of(&b, rep->hours[i].h)] += rep->hours[i].budget;
		s[1].v[bucket_of(&b, rep->hours[i].h)] += rep->hours[i].hss429;
	}
	chart_html(f, "budget-chart",
	           "Budget rejections and HSS 429s over time", "answers", &b, s,
	           2);
	free(s[0].v);
	free(s[1].v);
	return 0;
}

#define NOT_INTENT "select(.phase!=\"intent\" and (.subject//\"\")!=\"\""
#define UNIQ       "| sort | uniq -c"

static void
integrity_html(FILE *f, const struct gw_report *rep)
{
	const struct gw_auditq_report *v = &rep->t.verify;
	char a[40], b[40];

	fputs("<section id=\"integrity\"><h2>1. Integrity</h2>\n", f);
	if (rep->t.intact) {
		fprintf(f,
		        "<p id=\"integrity-status\" class=\"ok\">Intact: "
		        "<code>hssgw audit verify</code> found no problem in "
		        "%lld records (seq %lld to %lld)",
		        v->records, v->first_seq, v->last_seq);
		fputs(v->checkpoint_checked
		          ? ", and the checkpoint matches.</p>\n"
		          : ". No checkpoint was compared: a cut-off tail "
		            "would not be seen.</p>\n",
		      f);
	} else {
		fprintf(f,
		        "<p id=\"integrity-status\" class=\"broken\">BROKEN: "
		        "%s at ",
		        gw_auditq_problem_name(v->problem));
		esc(f, v->file);
		fprintf(f, ":%lld (seq %lld): ", v->line, v->seq);
		esc(f, v->msg);
		fputs(". The trail was tampered with or damaged there; the "
		      "numbers below count every readable record, before and "
		      "after the break.</p>\n",
		      f);
	}
	if (v->torn_tail)
		fputs("<p class=\"note\">An unterminated last line (a write "
		      "cut short by a crash, never acknowledged) was "
		      "ignored.</p>\n",
		      f);
	fputs("<p class=\"q\">Reproduce: <code>hssgw audit verify ", f);
	if (rep->opts.checkpoint != NULL && rep->opts.checkpoint_required) {
		fputs("--checkpoint ", f);
		esc(f, rep->opts.checkpoint);
		fputc(' ', f);
	}
	esc(f, rep->opts.cmdline_files ? rep->opts.cmdline_files : "FILE...");
	fputs("</code> (over the whole files, whatever the window)</p>\n", f);
	fmt_time(rep->t.first_ms, a, sizeof(a));
	fmt_time(rep->t.last_ms, b, sizeof(b));
	fprintf(f,
	        "<dl><dt>Records in the report</dt><dd id=\"records\">%lld</dd>"
	        "<dt>First record</dt><dd id=\"first\">%s</dd>"
	        "<dt>Last record</dt><dd id=\"last\">%s</dd>"
	        "<dt>Lines that are not records</dt><dd id=\"unreadable\">%lld"
	        "</dd></dl>\n",
	        rep->t.records, a, b, rep->t.unreadable);
	caption(f, rep, NULL, NULL, NULL, "| wc -l");
	fputs("</section>\n", f);
}

static int
exports_html(FILE *f, const struct gw_report *rep)
{
	static const struct col team[] = {{"exports", GW_RC_EXPORTS},
	                                  {"coalesced", GW_RC_COALESCED},
	                                  {"projects", X_PROJECTS},
	                                  {"HSS fields used", X_FIELDS}};
	static const struct col subj[] = {{"exports", GW_RC_EXPORTS},
	                                  {"coalesced", GW_RC_COALESCED},
	                                  {"team", X_TEAM},
	                                  {"projects", X_PROJECTS},
	                                  {"HSS fields used", X_FIELDS}};
	char jq[512];

	fputs("<section id=\"exports\"><h2>2. Exports</h2>\n<p>Exports "
	      "answered 200 (a task created, or an earlier identical "
	      "export's task shared: <em>coalesced</em>, no HSS call). ",
	      f);
	if (rep->opts.team_claim == NULL)
		fputs("No fair-share claim is configured: a team is a "
		      "subject.",
		      f);
	else {
		fputs("A team is the first value of the <code>", f);
		esc(f, rep->opts.team_claim);
		fprintf(f,
		        "</code> claim, as in the budget's fair share; "
		        "<span id=\"no-team\">%lld</span> records without it "
		        "in the trail were counted by subject.",
		        rep->t.no_team);
	}
	fputs("</p>\n", f);
	if (exports_chart(f, rep) == -1)
		return -1;
	if (rep->t.outside_chart > 0)
		fprintf(f,
		        "<p class=\"note\">%lld records fell past the %d hours "
		        "the charts keep and are in the tables only.</p>\n",
		        rep->t.outside_chart, GW_REPORT_HOURS_MAX);
	fputs("<h3>Per team</h3>\n", f);
	if (table_html(f, rep, GW_REPORT_TEAM, "exports-team", "team", team,
	               4) == -1)
		return -1;
	snprintf(jq, sizeof(jq),
	         "select(.phase!=\"intent\" and .action==\"" ACT_EXPORT
	         "\" and .status==200) | %s",
	         rep->claimexpr);
	caption(f, rep, "--decision allow", jq, NULL, UNIQ);
	fputs("<p class=\"q\">Coalesced: add <code>and .coalesced==true</code>"
	      "; projects: print <code>.project</code>; HSS fields: "
	      "<code>.upstream.request.body|keys[]</code>.</p>\n",
	      f);
	fputs("<h3>Per subject</h3>\n", f);
	if (table_html(f, rep, GW_REPORT_SUBJECT, "exports-subject", "subject",
	               subj, 5) == -1)
		return -1;
	caption(f, rep, "--decision allow",
	        "select(.phase!=\"intent\" and .action==\"" ACT_EXPORT
	        "\" and .status==200) | .subject",
	        NULL, UNIQ);
	fputs("</section>\n", f);
	return 0;
}

static int
decisions_html(FILE *f, const struct gw_report *rep)
{
	static const struct col team[] = {
	    {"allowed", GW_RC_ALLOW},
	    {"explicit deny", GW_RC_EXPLICIT},
	    {"implicit deny", GW_RC_IMPLICIT},
	    {"shadow would deny", GW_RC_SHADOW_DENY},
	    {"shadow would allow", GW_RC_SHADOW_ALLOW}};
	static const struct col stmt[] = {{"allowed", GW_RC_ALLOW},
	                                  {"explicit deny", GW_RC_EXPLICIT},
	                                  {"implicit deny", GW_RC_IMPLICIT}};
	static const struct col denied[] = {{"explicit deny", GW_RC_EXPLICIT},
	                                    {"implicit deny", GW_RC_IMPLICIT}};
	static const struct col shadow[] = {
	    {"would deny (allowed today)", GW_RC_SHADOW_DENY},
	    {"would allow (denied today)", GW_RC_SHADOW_ALLOW}};
	char jq[512];

	fputs("<section id=\"decisions\"><h2>3. Decisions</h2>\n<p>Every "
	      "request that reached policy, whatever its action.</p>\n"
	      "<h3>Per team</h3>\n",
	      f);
	if (table_html(f, rep, GW_REPORT_TEAM, "decisions-team", "team", team,
	               5) == -1)
		return -1;
	snprintf(jq, sizeof(jq),
	         NOT_INTENT " and .decision!=null) | %s + \" \" + .decision",
	         rep->claimexpr);
	caption(f, rep, NULL, jq, NULL, UNIQ);
	fputs("<h3>Per deciding statement</h3>\n", f);
	if (table_html(f, rep, GW_REPORT_STATEMENT, "decisions-statement",
	               "statement (file#sid)", stmt, 3) == -1)
		return -1;
	caption(f, rep, NULL,
	        NOT_INTENT " and .decision!=null) | (if .statement then "
	                   ".statement.file + \"#\" + .statement.sid else "
	                   "\"(no statement)\" end) + \" \" + .decision",
	        NULL, UNIQ);
	fputs("<h3>Top denied callers</h3>\n", f);
	if (table_html(f, rep, GW_REPORT_DENIED, "denied-callers", "subject",
	               denied, 2) == -1)
		return -1;
	caption(f, rep, "--decision explicit_deny",
	        "select(.phase!=\"intent\") | .subject", NULL,
	        UNIQ " | sort -rn");
	fputs("<p class=\"q\">Implicit denials: the same with "
	      "<code>--decision implicit_deny</code>.</p>\n",
	      f);
	fputs("<h3>Shadow-policy disagreements</h3>\n<p>What the shadow "
	      "policies (a policy change under test) would have decided "
	      "differently, by the shadow statement that decided.</p>\n",
	      f);
	if (table_html(f, rep, GW_REPORT_SHADOW, "shadow", "shadow statement",
	               shadow, 2) == -1)
		return -1;
	caption(f, rep, NULL,
	        NOT_INTENT " and .shadow!=null and (.decision==\"allow\")!="
	                   "(.shadow.decision==\"allow\")) | (if "
	                   ".shadow.statement then .shadow.statement.file + "
	                   "\"#\" + .shadow.statement.sid else \"(no "
	                   "statement)\" end) + \" \" + .decision",
	        NULL, UNIQ);
	fputs("</section>\n", f);
	return 0;
}

static void
peaks_html(FILE *f, const struct gw_report *rep)
{
	const struct table *tb = &rep->tab[GW_REPORT_UPKEY];
	const struct row *r;
	long long lim = rep->opts.budget_per_minute, peak;
	char t[40];
	size_t i;
	double w;

	fprintf(f,
	        "<h3>Busiest minute per credentials and API</h3>\n<p>Calls "
	        "HSS answered (not coalesced, not from the status cache) in "
	        "one minute, by arrival time, against the limit of "
	        "<span id=\"limit\">%lld</span> a minute "
	        "(<code>tasks.budget_per_minute</code>).</p>\n"
	        "<table id=\"peaks\"><thead><tr><th>credentials api</th>"
	        "<th class=\"n\">calls</th><th class=\"n\">peak minute "
	        "calls</th><th>minute (UTC)</th><th>against the limit</th>"
	        "</tr></thead><tbody>\n",
	        lim);
	if (tb->n == 0)
		fputs("<tr><td colspan=\"5\">none</td></tr>\n", f);
	for (i = 0; i <= tb->n; i++) {
		r = i < tb->n ? &tb->rows[i] : &tb->other;
		if (i == tb->n && !tb->other_used)
			break;
		peak = r->ring != NULL ? r->ring->peak : 0;
		if (r->ring != NULL && r->ring->peak_min >= 0)
			gw_fmt_time_ms(r->ring->peak_min * MINUTE_MS, t,
			               sizeof(t));
		else
			snprintf(t, sizeof(t), "-");
		fputs("<tr><td>", f);
		esc(f, i < tb->n ? r->key : "other");
		w = lim > 0 ? 100.0 * (double)peak / (double)lim : 0;
		fprintf(
		    f,
		    "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
		    "<td>%.16s</td><td><svg viewBox=\"0 0 120 14\" "
		    "width=\"120\" height=\"14\" role=\"img\"><title>%lld of "
		    "%lld</title><rect x=\"0\" y=\"2\" width=\"100\" "
		    "height=\"10\" fill=\"#eee\"/><rect x=\"0\" y=\"2\" "
		    "width=\"%.0f\" height=\"10\" fill=\"%s\"/><line "
		    "x1=\"100\" y1=\"0\" x2=\"100\" y2=\"14\" "
		    "stroke=\"#000\"/></svg> %lld/%lld</td></tr>\n",
		    r->c[GW_RC_COUNT], peak, t, peak, lim, w > 120 ? 120 : w,
		    peak >= lim ? "#D55E00" : "#0072B2", peak, lim);
	}
	fputs("</tbody></table>\n", f);
	caption(f, rep, NULL,
	        "select(.phase!=\"intent\" and .upstream.status!=null and "
	        ".coalesced!=true and .cached!=true) | (.credentials // \"-\") "
	        "+ \" \" + ({\"" ACT_EXPORT "\":\"export\",\"" ACT_STATUS
	        "\":\"export-task\",\"" ACT_DOWNLOAD
	        "\":\"download\"}[.action // \"\"] // \"other\") + \" \" + "
	        ".time[0:16]",
	        NULL, UNIQ " | sort -rn");
}

static int
budget_html(FILE *f, const struct gw_report *rep)
{
	static const struct col team[] = {
	    {"budget rejections (HSSGW.0205)", GW_RC_BUDGET},
	    {"HSS 429", GW_RC_HSS429}};
	char jq[512];

	fputs("<section id=\"budget\"><h2>4. Budget</h2>\n<p>Requests the "
	      "gateway's own budget refused (429 <code>HSSGW.0205</code>), "
	      "and requests whose last HSS answer was 429.</p>\n",
	      f);
	if (budget_chart(f, rep) == -1)
		return -1;
	caption(f, rep, NULL,
	        "select(.phase!=\"intent\" and (.error_code==\"HSSGW.0205\" "
	        "or .upstream.status==429)) | (if .upstream.status==429 then "
	        "\"HSS429\" else \"HSSGW.0205\" end) + \" \" + .time[0:13]",
	        NULL, UNIQ);
	fputs("<h3>Per team</h3>\n", f);
	if (table_html(f, rep, GW_REPORT_TEAM, "budget-team", "team", team,
	               2) == -1)
		return -1;
	snprintf(jq, sizeof(jq),
	         NOT_INTENT " and (.error_code==\"HSSGW.0205\" or "
	                    ".upstream.status==429)) | %s + \" \" + (if "
	                    ".upstream.status==429 then \"HSS429\" else "
	                    "\"HSSGW.0205\" end)",
	         rep->claimexpr);
	caption(f, rep, NULL, jq, NULL, UNIQ);
	peaks_html(f, rep);
	fputs("</section>\n", f);
	return 0;
}

static int
tasks_html(FILE *f, const struct gw_report *rep)
{
	static const struct col team[] = {
	    {"status polls", GW_RC_POLLS},
	    {"from the status cache", GW_RC_POLLS_CACHED},
	    {"downloads", GW_RC_DOWNLOADS},
	    {"downloads failed", GW_RC_DOWNLOADS_FAILED}};
	static const struct col count[] = {{"failures", GW_RC_COUNT}};
	static const char anon[] =
	    "select((.subject//\"\")==\"\" and .phase!=\"intent\" and "
	    ".phase!=\"summary\") | ";
	char jq[512];

	fputs("<section id=\"tasks\"><h2>5. Downloads, status polls and "
	      "anonymous failures</h2>\n<h3>Per team</h3>\n",
	      f);
	if (table_html(f, rep, GW_REPORT_TEAM, "tasks-team", "team", team, 4) ==
	    -1)
		return -1;
	snprintf(jq, sizeof(jq),
	         NOT_INTENT " and (.action==\"" ACT_STATUS
	                    "\" or .action==\"" ACT_DOWNLOAD
	                    "\")) | %s + \" \" + .action + \" \" + "
	                    "(.status|tostring) + \" \" + "
	                    "(.cached==true|tostring)",
	         rep->claimexpr);
	caption(f, rep, NULL, jq, NULL, UNIQ);
	fprintf(f,
	        "<h3>Anonymous failures</h3>\n<p>Requests answered without "
	        "a verified subject (no or a bad token, unknown path, ...), "
	        "by reason and by client address; "
	        "<span id=\"summaries\">%lld</span> summary records' counts "
	        "included.</p>\n<h4>By reason</h4>\n",
	        rep->t.summaries);
	if (table_html(f, rep, GW_REPORT_REASON, "anon-reason", "reason", count,
	               1) == -1)
		return -1;
	snprintf(jq, sizeof(jq),
	         "%s.error_code // (if .status then \"HTTP \\(.status)\" else "
	         "\"unknown\" end)",
	         anon);
	caption(f, rep, NULL, jq, NULL, UNIQ);
	fputs("<h4>By client address</h4>\n", f);
	if (table_html(f, rep, GW_REPORT_ADDR, "anon-addr", "client address",
	               count, 1) == -1)
		return -1;
	snprintf(jq, sizeof(jq), "%s.client_addr // \"-\"", anon);
	caption(f, rep, NULL, jq, NULL, UNIQ);
	/* Summary records' counts, "reason address count" per line. */
	caption(f, rep, NULL,
	        "select(.phase==\"summary\") | .counts[] | .reason + \" \" + "
	        ".client_addr + \" \" + (.count|tostring)",
	        NULL, NULL);
	fputs("</section>\n", f);
	return 0;
}

int
gw_report_html(const struct gw_report *rep, FILE *f)
{
	char a[40], b[40];

	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
	      "charset=\"utf-8\">\n"
	      /* Nothing may load: the page must open from a mail. */
	      "<meta http-equiv=\"Content-Security-Policy\" content=\""
	      "default-src 'none'; style-src 'unsafe-inline'; img-src "
	      "data:\">\n<meta name=\"viewport\" content=\"width=device-"
	      "width\">\n<title>hssgw audit report</title>\n<style>",
	      f);
	fputs(css, f);
	fputs("</style></head><body>\n<h1>hssgw audit report</h1>\n"
	      "<p class=\"note\">Files: <code>",
	      f);
	esc(f, rep->opts.cmdline_files ? rep->opts.cmdline_files : "");
	fputs("</code>; window: ", f);
	fmt_time(rep->opts.has_since ? rep->opts.since_ms : 0, a, sizeof(a));
	fmt_time(rep->opts.has_until ? rep->opts.until_ms : 0, b, sizeof(b));
	fprintf(f,
	        "%s to %s. Every number can be reproduced with the "
	        "<code>hssgw audit query</code> under its table (and jq). "
	        "Tables show at most %d rows; they keep at most %d teams, "
	        "%d subjects, %d statements, %d reasons and %d addresses, "
	        "past which an <em>other</em> row sums the rest.</p>\n",
	        a, b, TOP_ROWS, GW_REPORT_TEAMS_MAX, GW_REPORT_SUBJECTS_MAX,
	        GW_REPORT_STATEMENTS_MAX, GW_REPORT_REASONS_MAX,
	        GW_REPORT_ADDRS_MAX);
	integrity_html(f, rep);
	if (exports_html(f, rep) == -1 || decisions_html(f, rep) == -1 ||
	    budget_html(f, rep) == -1 || tasks_html(f, rep) == -1)
		return -1;
	fputs("</body></html>\n", f);
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}
