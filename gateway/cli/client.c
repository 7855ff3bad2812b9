/*
 * "hssgw export": export, poll, download (client.h, docs/TASKS.md).  One
 * run owns one upstream handle and the output file; nothing outlives it.
 * The file is written to FILE.part and renamed to FILE only once every
 * announced byte arrived, so FILE is never a truncated download: an
 * answer that announces no length (close-delimited or chunked: a cut
 * cannot be told from the end) or an empty one is refused, and FILE and
 * its directory are fsynced before the client says done.  HTTP
 * goes through upstream.c (gw_up_send, gw_up_stream) rather than a second
 * libcurl user: same TLS verification, caps and timeouts as the gateway.
 * The token travels only in the Authorization header (a secret header,
 * wiped after use); it is never printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <json-c/json.h>

#include "client.h"
#include "config.h"
#include "gw.h"
#include "upreq.h"
#include "upstream.h"

#define FIELDS_MAX   64
#define URL_MAX      4096
#define HANDLE_MAX   1024
#define PATH         "/v1/exports/image-baseline"
#define RESPONSE_MAX (1024 * 1024)
#define FILE_MAX     (1LL << 40)

struct opts {
	const char *url, *token, *project, *out, *cacert;
	const char *fields[FIELDS_MAX];
	size_t nfields;
	long long poll_s, max_wait_s;
};

/* One run's state: the upstream handle and the limits it sends with. */
struct run {
	const struct opts *o;
	struct gw_config conf;
	struct gw_upstream *up;
	char base[URL_MAX];
	char handle[HANDLE_MAX + 1];
	char task_id[257];
	char part_path[URL_MAX]; /* FILE.part */
	int part_fd;             /* -1 until created, and after close */
	int part_created;        /* this run created part_path */
};

/* The download sink: FILE.part and how much of it was written. */
struct part {
	int fd;
	long long want, got;
	const char *why; /* the head refused the answer: the reason */
};

static const struct option longopts[] = {
    {"url", required_argument, NULL, 'u'},
    {"token", required_argument, NULL, 't'},
    {"project", required_argument, NULL, 'p'},
    {"field", required_argument, NULL, 'f'},
    {"out", required_argument, NULL, 'o'},
    {"cacert", required_argument, NULL, 'c'},
    {"poll-seconds", required_argument, NULL, 's'},
    {"max-wait-seconds", required_argument, NULL, 'w'},
    {NULL, 0, NULL, 0},
};

static void
usage(FILE *to)
{
	fprintf(to, "usage: hssgw export --url URL --token JWT --project P "
	            "[--field name=value ...]\n"
	            "         --out FILE [--cacert FILE] [--poll-seconds 12] "
	            "[--max-wait-seconds 3600]\n"
	            "  --token may be omitted when HSSGW_TOKEN holds it "
	            "(keeps it out of ps)\n");
}

static int
parse_args(int argc, char *argv[], struct opts *o)
{
	long long n;
	int ch;

	memset(o, 0, sizeof(*o));
	o->poll_s = 12; /* HSS allows 5 calls a minute (reference 6) */
	o->max_wait_s = 3600;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			o->url = optarg;
			break;
		case 't':
			o->token = optarg;
			break;
		case 'p':
			o->project = optarg;
			break;
		case 'f':
			if (o->nfields == FIELDS_MAX ||
			    strchr(optarg, '=') == NULL)
				return -1;
			o->fields[o->nfields++] = optarg;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'c':
			o->cacert = optarg;
			break;
		case 's':
		case 'w':
			if (gw_strtonum(optarg, 1, 86400, &n) == -1)
				return -1;
			*(ch == 's' ? &o->poll_s : &o->max_wait_s) = n;
			break;
		default:
			return -1;
		}
	}
	if (o->token == NULL)
		o->token = getenv("HSSGW_TOKEN");
	if (optind != argc || o->url == NULL || o->token == NULL ||
	    o->project == NULL || o->out == NULL ||
	    strncmp(o->url, "https://", 8) != 0 ||
	    strlen(o->url) >= URL_MAX - 2 * HANDLE_MAX)
		return -1;
	return 0;
}

/*
 * The export body: {"project": P, name: value...}.  A value that parses
 * as JSON (true, 5, ["a","b"]) is sent as such, anything else as a
 * string; quote a string that looks like JSON ('"123"').  The gateway
 * validates every field.
 */
static char *
export_body(const struct opts *o)
{
	struct json_object *body = json_object_new_object(), *v;
	char name[128], *ret = NULL;
	const char *eq;
	size_t i, n;

	if (body == NULL)
		return NULL;
	json_object_object_add(body, "project",
	                       json_object_new_string(o->project));
	for (i = 0; i < o->nfields; i++) {
		eq = strchr(o->fields[i], '=');
		n = (size_t)(eq - o->fields[i]);
		if (n == 0 || n >= sizeof(name))
			goto out;
		memcpy(name, o->fields[i], n);
		name[n] = '\0';
		v = json_tokener_parse(eq + 1);
		if (v == NULL)
			v = json_object_new_string(eq + 1);
		json_object_object_add(body, name, v);
	}
	ret = strdup(json_object_to_json_string_ext(
	    body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(body);
	return ret;
}

/* A request to the gateway with the bearer token (a secret header). */
static struct gw_upreq *
request(struct run *r, const char *method, const char *path)
{
	struct gw_upreq *q = NULL;
	char url[URL_MAX], auth[16384];

	if ((size_t)snprintf(url, sizeof(url), "%s%s", r->base, path) >=
	        sizeof(url) ||
	    (size_t)snprintf(auth, sizeof(auth), "Bearer %s", r->o->token) >=
	        sizeof(auth))
		goto out;
	q = gw_upreq_new(method, url);
	if (q != NULL &&
	    gw_upreq_set_header(q, "Authorization", auth, 1) == -1) {
		gw_upreq_free(q);
		q = NULL;
	}
out:
	gw_wipe(auth, sizeof(auth));
	return q;
}

/* Prints the gateway's error answer (its error_code and error_msg). */
static void
server_error(const char *what, const struct gw_upresp *resp)
{
	struct json_object *o =
	    json_tokener_parse(resp->body ? resp->body : "");
	struct json_object *code = NULL, *msg = NULL;

	if (o != NULL) {
		json_object_object_get_ex(o, "error_code", &code);
		json_object_object_get_ex(o, "error_msg", &msg);
	}
	fprintf(stderr, "hssgw export: %s: HTTP %ld %s: %s\n", what,
	        resp->status, code ? json_object_get_string(code) : "-",
	        msg ? json_object_get_string(msg) : "(no error message)");
	json_object_put(o);
}

/* A string member of a JSON answer into out; 0, or -1 when absent. */
static int
member(const char *body, const char *name, char *out, size_t cap)
{
	struct json_object *o = json_tokener_parse(body ? body : ""), *v;
	int rc = -1;

	if (o != NULL && json_object_object_get_ex(o, name, &v) &&
	    json_object_is_type(v, json_type_string) &&
	    (size_t)json_object_get_string_len(v) < cap) {
		snprintf(out, cap, "%s", json_object_get_string(v));
		rc = 0;
	}
	json_object_put(o);
	return rc;
}

static int
start_export(struct run *r)
{
	struct gw_upreq *q = request(r, "POST", PATH);
	struct gw_upresp resp = {0};
	struct gw_fault f = {0};
	char *body = export_body(r->o);
	int rc = -1;

	if (q == NULL || body == NULL) {
		fprintf(stderr, "hssgw export: request too large\n");
		goto out;
	}
	q->body = body;
	q->bodylen = strlen(body);
	body = NULL;
	if (gw_upreq_set_header(q, "Content-Type", "application/json", 0) == -1)
		goto out;
	if (gw_up_send(r->up, &r->conf, q, &resp, &f) != GW_OK) {
		fprintf(stderr, "hssgw export: export: %s\n", f.msg);
		goto out;
	}
	if (resp.status != 200) {
		server_error("export", &resp);
		goto out;
	}
	if (member(resp.body, "handle", r->handle, sizeof(r->handle)) == -1 ||
	    strspn(r->handle, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
	                      "vwxyz0123456789-_.") != strlen(r->handle) ||
	    member(resp.body, "task_id", r->task_id, sizeof(r->task_id)) ==
	        -1) {
		fprintf(stderr, "hssgw export: export answer has no handle\n");
		goto out;
	}
	fprintf(stderr, "hssgw export: task %s started\n", r->task_id);
	rc = 0;
out:
	free(body);
	gw_upresp_reset(&resp);
	gw_upreq_free(q);
	return rc;
}

static void
sleep_s(long long s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = 0};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
}

/*
 * Polls the status every poll_s seconds until success (0) or failure,
 * an error or max_wait_s (-1).  A 429 (budget or HSS busy) is not an
 * error: the next poll comes after the pace anyway.
 */
static int
poll_status(struct run *r)
{
	char path[HANDLE_MAX + 64], st[32];
	struct gw_upreq *q = NULL;
	struct gw_upresp resp = {0};
	struct gw_fault f = {0};
	int64_t t0 = gw_mono_us() / 1000000;
	long long waited = 0;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/%s", PATH, r->handle);
	q = request(r, "GET", path);
	if (q == NULL)
		goto out;
	for (;;) {
		gw_upresp_reset(&resp);
		if (gw_up_send(r->up, &r->conf, q, &resp, &f) != GW_OK) {
			fprintf(stderr, "hssgw export: status: %s\n", f.msg);
			goto out;
		}
		waited = gw_mono_us() / 1000000 - t0;
		if (resp.status == 200 &&
		    member(resp.body, "task_status", st, sizeof(st)) == 0) {
			fprintf(stderr,
			        "hssgw export: task %s: %s after %lld s\n",
			        r->task_id, st, waited);
			if (strcmp(st, "success") == 0) {
				rc = 0;
				goto out;
			}
			if (strcmp(st, "running") != 0)
				goto out;
		} else if (resp.status == 429)
			fprintf(stderr,
			        "hssgw export: task %s: busy, waiting\n",
			        r->task_id);
		else {
			server_error("status", &resp);
			goto out;
		}
		if (waited + r->o->poll_s > r->o->max_wait_s) {
			fprintf(stderr, "hssgw export: gave up after %lld s\n",
			        waited);
			goto out;
		}
		sleep_s(r->o->poll_s);
	}
out:
	gw_upresp_reset(&resp);
	gw_upreq_free(q);
	return rc;
}

static int
part_head(void *arg, const char *content_type, long long length)
{
	struct part *p = arg;

	(void)content_type;
	p->want = length;
	/* The gateway always sends HSS's Content-Length; without one (a
	 * proxy that changed the framing, a broken server) the end of the
	 * body cannot be told from a cut (issue 21). */
	if (length < 0)
		p->why = "the answer announced no length; refusing a download "
		         "whose end cannot be checked";
	else if (length == 0)
		p->why = "the answer is empty";
	return p->why != NULL ? -1 : 0;
}

static int
part_chunk(void *arg, const void *data, size_t len)
{
	struct part *p = arg;
	const char *b = data;
	ssize_t n;

	while (len > 0) {
		n = write(p->fd, b, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
		p->got += n;
	}
	return 0;
}

/*
 * Creates OUT.part for this run, before anything is exported.  It is
 * created exclusively and never followed (O_EXCL | O_NOFOLLOW): opening
 * an existing name with O_TRUNC wrote through a symlink planted at
 * OUT.part and truncated its target (issue #11).  A stale OUT.part that
 * is a regular file of the user's (an interrupted run) is removed and
 * created afresh; anything else there (a symlink, someone else's file,
 * a directory) is refused with a message, never written or removed.
 * 0, or -1 after saying why.
 */
static int
part_create(struct run *r)
{
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	struct stat st;

	if ((size_t)snprintf(r->part_path, sizeof(r->part_path), "%s.part",
	                     r->o->out) >= sizeof(r->part_path)) {
		fprintf(stderr, "hssgw export: --out: path too long\n");
		return -1;
	}
	r->part_fd = open(r->part_path, flags, 0600);
	if (r->part_fd == -1 && errno == EEXIST &&
	    lstat(r->part_path, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == geteuid()) {
		/* unlink removes the name only, whatever it now is. */
		if (unlink(r->part_path) == 0 || errno == ENOENT)
			r->part_fd = open(r->part_path, flags, 0600);
		else
			errno = EEXIST;
	}
	if (r->part_fd == -1 && errno == EEXIST) {
		fprintf(stderr,
		        "hssgw export: %s: exists and is not a regular file "
		        "of yours (a symlink?); not writing through it: "
		        "remove it\n",
		        r->part_path);
		return -1;
	}
	if (r->part_fd == -1) {
		fprintf(stderr, "hssgw export: %s: %s\n", r->part_path,
		        strerror(errno));
		return -1;
	}
	r->part_created = 1;
	return 0;
}

/* fsync(2) of the directory that holds path, so a rename into it lasts.
 * 0 or -1. */
static int
sync_dir(const char *path)
{
	char dir[URL_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Streams the file to OUT.part, then renames it to OUT; 0 or -1. */
static int
download(struct run *r)
{
	char path[HANDLE_MAX + 64];
	struct gw_upreq *q = NULL;
	struct gw_upresp resp = {0};
	struct gw_fault f = {0};
	struct gw_upsink sink;
	struct part p = {.fd = r->part_fd, .want = -1};
	int rc = -1;

	snprintf(path, sizeof(path), "%s/%s/file", PATH, r->handle);
	q = request(r, "GET", path);
	if (q == NULL)
		goto out;
	sink.head = part_head;
	sink.chunk = part_chunk;
	sink.arg = &p;
	if (gw_up_stream(r->up, &r->conf, q, &sink, FILE_MAX, 600000, &resp,
	                 &f) != GW_OK) {
		fprintf(stderr, "hssgw export: download: %s\n",
		        p.why != NULL ? p.why : f.msg);
		goto out;
	}
	if (resp.status != 200) {
		server_error("download", &resp);
		goto out;
	}
	/* Known, nonzero and equal: nothing else is renamed into place. */
	if (p.want <= 0 || p.got != p.want) {
		fprintf(stderr,
		        "hssgw export: download incomplete: %lld of %lld "
		        "bytes\n",
		        p.got, p.want);
		goto out;
	}
	if (fsync(p.fd) == -1) {
		fprintf(stderr, "hssgw export: %s: %s\n", r->part_path,
		        strerror(errno));
		goto out;
	}
	r->part_fd = -1;
	if (close(p.fd) == -1) {
		fprintf(stderr, "hssgw export: download incomplete\n");
		goto out;
	}
	if (rename(r->part_path, r->o->out) == -1) {
		fprintf(stderr, "hssgw export: %s: %s\n", r->o->out,
		        strerror(errno));
		goto out;
	}
	r->part_path[0] = '\0'; /* renamed: nothing left to remove */
	if (sync_dir(r->o->out) == -1) {
		fprintf(stderr, "hssgw export: %s: directory not synced: %s\n",
		        r->o->out, strerror(errno));
		goto out;
	}
	fprintf(stderr, "hssgw export: %lld bytes in %s\n", p.got, r->o->out);
	rc = 0;
out:
	gw_upresp_reset(&resp);
	gw_upreq_free(q);
	return rc;
}

int
gw_client_export(int argc, char *argv[])
{
	struct opts o;
	struct run r;
	size_t n;
	int rc = 1;

	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (parse_args(argc, argv, &o) == -1) {
		usage(stderr);
		return 2;
	}
	memset(&r, 0, sizeof(r));
	r.o = &o;
	r.part_fd = -1;
	snprintf(r.base, sizeof(r.base), "%s", o.url);
	n = strlen(r.base);
	while (n > 8 && r.base[n - 1] == '/')
		r.base[--n] = '\0';
	/* The gateway may retry HSS for 20 s: wait longer than it does. */
	r.conf.up_ca_file = (char *)o.cacert;
	r.conf.up_connect_timeout_ms = 10000;
	r.conf.up_timeout_ms = 120000;
	r.conf.up_max_response_bytes = RESPONSE_MAX;
	if (gw_up_global_init() != 0 || (r.up = gw_up_new()) == NULL) {
		fprintf(stderr, "hssgw export: cannot set up HTTPS\n");
		goto out;
	}
	/* FILE.part first: a refused path must not cost an HSS export. */
	if (part_create(&r) == 0 && start_export(&r) == 0 &&
	    poll_status(&r) == 0 && download(&r) == 0)
		rc = 0;
out:
	if (r.part_fd != -1)
		close(r.part_fd);
	/* Only a FILE.part this run created (part_fd was opened). */
	if (rc != 0 && r.part_path[0] != '\0' && r.part_created)
		unlink(r.part_path);
	gw_up_free(r.up);
	return rc;
}
