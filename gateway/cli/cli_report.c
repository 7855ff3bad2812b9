/*
 * hssgw audit report: argv to a gw_report and its page.  The page is
 * written to a temporary file next to --out (mode 0600: it holds the
 * trail's subjects and addresses) and renamed over it once complete, so
 * a failed run never leaves half a report.  Reads only the trail; never
 * runs on the request path.
 */
#include <sys/stat.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "gw.h"
#include "report.h"

#define FILES_TEXT_MAX 4096
#define PATH_TMP_MAX   4096

static void
usage(void)
{
	fprintf(stderr,
	        "usage: hssgw audit report FILE... --out report.html "
	        "[--since T] [--until T]\n"
	        "       [--checkpoint FILE | --no-checkpoint] [--config FILE] "
	        "[--team-claim NAME]\n");
}

/* The files as given, for the page's captions; "FILE..." if too long. */
static void
files_text(char *const *files, size_t n, char *buf, size_t cap)
{
	size_t i, off = 0;
	int w;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		w = snprintf(buf + off, cap - off, "%s%s", i ? " " : "",
		             files[i]);
		if (w < 0 || (size_t)w >= cap - off) {
			snprintf(buf, cap, "FILE...");
			return;
		}
		off += (size_t)w;
	}
}

/* Writes the page to out via a temporary file; 0 or -1 with a reason. */
static int
write_page(const struct gw_report *rep, const char *out, char *err,
           size_t errlen)
{
	char tmp[PATH_TMP_MAX];
	FILE *f = NULL;
	int fd, rc = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", out) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "--out: path too long");
		return -1;
	}
	fd = mkstemp(tmp);
	if (fd == -1) {
		snprintf(err, errlen, "%s: cannot create", out);
		return -1;
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		snprintf(err, errlen, "%s: cannot create", out);
		goto out;
	}
	if (gw_report_html(rep, f) == -1 || fsync(fileno(f)) == -1) {
		snprintf(err, errlen, "%s: write failed", out);
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		snprintf(err, errlen, "%s: write failed", out);
		goto out;
	}
	f = NULL;
	if (rename(tmp, out) == -1) {
		snprintf(err, errlen, "%s: cannot rename into place", out);
		goto out;
	}
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	if (rc == -1)
		unlink(tmp);
	return rc;
}

int
gw_cli_audit_report(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"since", required_argument, NULL, 'a'},
	    {"until", required_argument, NULL, 'b'},
	    {"checkpoint", required_argument, NULL, 'c'},
	    {"no-checkpoint", no_argument, NULL, 'n'},
	    {"out", required_argument, NULL, 'o'},
	    {"config", required_argument, NULL, 'f'},
	    {"team-claim", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	struct gw_report_opts ro;
	struct gw_config *conf = NULL;
	struct gw_report *rep = NULL;
	const struct gw_report_totals *t;
	const char *out = NULL, *confpath = NULL, *claim = NULL;
	char err[1024], dflt[PATH_TMP_MAX], files[FILES_TEXT_MAX];
	int ch, none = 0, rc = 1;

	memset(&ro, 0, sizeof(ro));
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
		case 'b':
			if (gw_rfc3339_ms(optarg, ch == 'a'
			                              ? &ro.since_ms
			                              : &ro.until_ms) == -1) {
				fprintf(stderr,
				        "hssgw: --%s: not an RFC 3339 "
				        "time\n",
				        ch == 'a' ? "since" : "until");
				return 2;
			}
			*(ch == 'a' ? &ro.has_since : &ro.has_until) = 1;
			break;
		case 'c':
			ro.checkpoint = optarg;
			ro.checkpoint_required = 1;
			break;
		case 'n':
			none = 1;
			break;
		case 'o':
			out = optarg;
			break;
		case 'f':
			confpath = optarg;
			break;
		case 't':
			claim = optarg;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind == argc || out == NULL || (none && ro.checkpoint)) {
		usage();
		return 2;
	}
	if (confpath != NULL) {
		conf = gw_conf_load(confpath, err, sizeof(err));
		if (conf == NULL) {
			fprintf(stderr, "hssgw: %s\n", err);
			return 1;
		}
		ro.team_claim = conf->tasks_fair_share_claim;
		ro.budget_per_minute = conf->tasks_budget_per_minute;
	}
	if (claim != NULL)
		ro.team_claim = claim;
	/* As audit verify: the live file is last, its checkpoint next to it. */
	if (ro.checkpoint == NULL && !none &&
	    snprintf(dflt, sizeof(dflt), "%s.checkpoint", argv[argc - 1]) <
	        (int)sizeof(dflt))
		ro.checkpoint = dflt;
	ro.files = (const char *const *)argv + optind;
	ro.nfiles = (size_t)(argc - optind);
	files_text(argv + optind, ro.nfiles, files, sizeof(files));
	ro.cmdline_files = files;
	rep = gw_report_build(&ro, err, sizeof(err));
	if (rep == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		goto out;
	}
	if (write_page(rep, out, err, sizeof(err)) == -1) {
		fprintf(stderr, "hssgw: %s\n", err);
		goto out;
	}
	t = gw_report_totals(rep);
	printf("%s: %lld records, trail %s\n", out, t->records,
	       t->intact ? "intact" : "BROKEN");
	/* Like audit verify: a broken trail is exit 1, the page says where. */
	rc = t->intact ? 0 : 1;
out:
	gw_report_free(rep);
	gw_conf_free(conf);
	return rc;
}
