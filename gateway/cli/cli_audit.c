/*
 * hssgw audit verify|query: the auditor's tools over the trail's files.
 * Reads only; never runs on the request path.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auditq.h"
#include "cli.h"
#include "gw.h"

/* stdout's buffer for audit query into a pipe. */
#define OUT_BUF (256 * 1024)

static const char verify_usage[] =
    "usage: hssgw audit verify [--checkpoint FILE | --no-checkpoint] "
    "[--pubkey FILE]\n"
    "       [--against COLLECTED] FILE... (oldest first; several "
    "instances' trails:\n"
    "       each checked as its own chain; a collector's resent copies "
    "are counted)\n";
static const char query_usage[] =
    "usage: hssgw audit query FILE... [--subject S] [--since T] "
    "[--until T]\n"
    "       [--decision D] [--project P] [--task-id ID] "
    "[--format json|table]\n";

/* How verify was asked to check (flags). */
struct verify_args {
	const char *ckpt;
	int required, none;
	const char *pubkey;  /* --pubkey: signed checkpoints */
	const char *against; /* --against: the collector's copy */
};

/* verify --against: the host's trail (intact) against the collected copy. */
static int
verify_against(const char **files, size_t n, const char *collected,
               const char *label)
{
	struct gw_auditq_report rep;

	if (gw_auditq_against(collected, files, n, &rep) == -1) {
		printf("%s%s:%lld: seq %lld: %s: %s\n", label, rep.file,
		       rep.line, rep.seq, gw_auditq_problem_name(rep.problem),
		       rep.msg);
		return 1;
	}
	printf("%sok: seq %lld..%lld as the collector received them (%s)\n",
	       label, rep.compared_first, rep.compared_last, collected);
	if (rep.last_seq > rep.compared_last)
		printf("%snote: seq %lld..%lld not collected yet\n", label,
		       rep.compared_last + 1, rep.last_seq);
	return 0;
}

/*
 * Verifies one trail (files oldest first); prints the outcome, named
 * by the trail's instance when there are several.  0 intact, 1 not.
 */
static int
verify_trail(const char **files, size_t n, const struct verify_args *va,
             const char *name)
{
	struct gw_auditq_report rep;
	char dflt[4096], label[160];
	const char *ckpt = va->ckpt;

	label[0] = '\0';
	if (name != NULL)
		snprintf(label, sizeof(label),
		         "instance %s: ", name[0] ? name : "(unnamed)");
	/* The live file is last; its checkpoint sits next to it. */
	if (ckpt == NULL && !va->none &&
	    snprintf(dflt, sizeof(dflt), "%s.checkpoint", files[n - 1]) <
	        (int)sizeof(dflt))
		ckpt = dflt;
	if (gw_auditq_verify_signed(files, n, ckpt, va->required, va->pubkey,
	                            &rep) == -1) {
		printf("%s%s:%lld: seq %lld: %s: %s\n", label, rep.file,
		       rep.line, rep.seq, gw_auditq_problem_name(rep.problem),
		       rep.msg);
		return 1;
	}
	if (rep.torn_tail)
		printf("%snote: an unterminated last line (a write cut short "
		       "by a crash) was ignored\n",
		       label);
	if (!rep.checkpoint_checked)
		printf("%snote: no checkpoint compared: a cut-off tail would "
		       "not be seen\n",
		       label);
	if (rep.duplicates > 0)
		printf(
		    "%snote: %lld duplicate records (identical copies of "
		    "records already seen, as a collector's resends leave)\n",
		    label, rep.duplicates);
	if (va->pubkey != NULL)
		printf("%ssigned: %lld checkpoint records verified, the last "
		       "at seq %lld; %lld records after it not yet signed\n",
		       label, rep.signed_checkpoints, rep.last_signed_seq,
		       rep.last_seq - rep.last_signed_seq);
	printf("%sok: %lld records, seq %lld..%lld\n", label, rep.records,
	       rep.first_seq, rep.last_seq);
	if (va->against != NULL)
		return verify_against(files, n, va->against, label);
	return 0;
}

/*
 * Several instances' trails at once (docs/SHARED_STATE.md): the files
 * are grouped by the instance their first record names, keeping their
 * order (oldest first within a trail), and each trail is verified as its
 * own chain against its own checkpoint.
 */
static int
cmd_audit_verify(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"checkpoint", required_argument, NULL, 'c'},
	    {"no-checkpoint", no_argument, NULL, 'n'},
	    {"pubkey", required_argument, NULL, 'p'},
	    {"against", required_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0},
	};
	const char **group = NULL;
	char(*inst)[128] = NULL;
	struct verify_args va;
	size_t nfiles, i, j, ng, ntrails = 0;
	int ch, rc = 2, bad = 0;

	memset(&va, 0, sizeof(va));
	if (gw_cli_help(argc, argv, verify_usage))
		return 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'c') {
			va.ckpt = optarg;
			va.required = 1;
		} else if (ch == 'n')
			va.none = 1;
		else if (ch == 'p')
			va.pubkey = optarg;
		else if (ch == 'a')
			va.against = optarg;
		else
			goto usage;
	}
	if (optind == argc)
		goto usage;
	nfiles = (size_t)(argc - optind);
	group = calloc(nfiles, sizeof(*group));
	inst = calloc(nfiles, sizeof(*inst));
	if (group == NULL || inst == NULL) {
		fprintf(stderr, "hssgw: out of memory\n");
		rc = 1;
		goto out;
	}
	for (i = 0; i < nfiles; i++)
		if (gw_auditq_instance_of(argv[optind + i], inst[i],
		                          sizeof(inst[i])) == -1)
			inst[i][0] = '\0'; /* verify reports it unreadable */
	/*
	 * A file that names no instance (the live file just after a
	 * rotation, still empty; records from before instances existed)
	 * belongs to the trail of the file before it, else after it:
	 * never a trail of its own, which would cut a trail in two and
	 * part its last file from its checkpoint.
	 */
	for (i = 1; i < nfiles; i++)
		if (inst[i][0] == '\0')
			memcpy(inst[i], inst[i - 1], sizeof(inst[i]));
	for (i = nfiles - 1; i > 0; i--)
		if (inst[i - 1][0] == '\0')
			memcpy(inst[i - 1], inst[i], sizeof(inst[i - 1]));
	for (i = 0; i < nfiles; i++) {
		for (j = 0; j < i && strcmp(inst[j], inst[i]) != 0; j++)
			continue;
		ntrails += j == i;
	}
	if (ntrails > 1 && (va.ckpt != NULL || va.against != NULL)) {
		fprintf(stderr, "hssgw: --checkpoint and --against name one "
		                "trail's; these files hold several\n");
		goto out;
	}
	for (i = 0; i < nfiles; i++) {
		for (j = 0; j < i && strcmp(inst[j], inst[i]) != 0; j++)
			continue;
		if (j < i)
			continue; /* verified with its first file's trail */
		for (ng = 0, j = i; j < nfiles; j++)
			if (strcmp(inst[j], inst[i]) == 0)
				group[ng++] = argv[optind + j];
		bad |=
		    verify_trail(group, ng, &va, ntrails > 1 ? inst[i] : NULL);
	}
	rc = bad ? 1 : 0;
	goto out;
usage:
	fputs(verify_usage, stderr);
out:
	free(group);
	free(inst);
	return rc;
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
	char err[512], *obuf;
	int ch;

	memset(&f, 0, sizeof(f));
	if (gw_cli_help(argc, argv, query_usage))
		return 0;
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
	/*
	 * Into a pipe, big writes, not one per 4 KiB: they were most of
	 * "audit query | wc -l" (bench/README.md).  glibc sizes only a
	 * buffer it is given; stdout holds this one until exit.
	 */
	if (!isatty(STDOUT_FILENO)) {
		obuf = malloc(OUT_BUF);
		if (obuf != NULL)
			setvbuf(stdout, obuf, _IOFBF, OUT_BUF);
	}
	if (gw_auditq_query((const char *const *)argv + optind,
	                    (size_t)(argc - optind), &f, fmt, stdout, err,
	                    sizeof(err)) == -1) {
		fprintf(stderr, "hssgw: %s\n", err);
		return 1;
	}
	return 0;
usage:
	fputs(query_usage, stderr);
	return 2;
}

int
gw_cli_audit(int argc, char *argv[])
{
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return cmd_audit_verify(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "query") == 0)
		return cmd_audit_query(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "report") == 0)
		return gw_cli_audit_report(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "ship") == 0)
		return gw_cli_audit_ship(argc - 1, argv + 1);
	if (gw_cli_help(argc, argv,
	                "usage: hssgw audit verify|query|report FILE... "
	                "[OPTIONS]\n"
	                "       hssgw audit ship --config FILE\n"))
		return 0;
	fprintf(stderr,
	        "usage: hssgw audit verify|query|report FILE... [OPTIONS]\n"
	        "       hssgw audit ship --config FILE\n");
	return 2;
}
