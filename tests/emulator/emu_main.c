/*
 * hss-emulator's process: the command line, the config (loaded once,
 * read-only afterwards), the listening socket, the worker threads and
 * shutdown on SIGTERM.  docs/EMULATOR.md lists every behaviour.
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "emu.h"

static const struct emu_key conf_keys[] = {
    {"projects", json_type_array, 1},
    {"record_total_num", json_type_int, 0},
    {"iam", json_type_object, 0},
    {"aksk", json_type_array, 0},
};

static const struct emu_key iam_keys[] = {
    {"users", json_type_array, 1},
    {"agencies", json_type_array, 0},
    {"token_ttl_s", json_type_int, 0},
};

/*
 * Principals: IAM users, agencies and AK/SK pairs share one shape.  The
 * "name" field of a row is its name (user, agency, access key), "secret"
 * its password or secret key, "domain" its account.
 */
static const struct emu_principal_kind {
	const char *where;
	const char *name;
	const char *secret; /* NULL: none */
	const char *domain; /* NULL: none */
	struct emu_key keys[4];
} pkind_user = {"iam.users",
                "name",
                "password",
                "domain",
                {{"domain", json_type_string, 1},
                 {"name", json_type_string, 1},
                 {"password", json_type_string, 1},
                 {"projects", json_type_array, 1}}},
  pkind_agency = {"iam.agencies",
                  "name",
                  NULL,
                  "domain",
                  {{"domain", json_type_string, 1},
                   {"name", json_type_string, 1},
                   {"projects", json_type_array, 1},
                   {"projects", json_type_array, 1}}},
  pkind_aksk = {"aksk",
                "access_key",
                "secret_key",
                NULL,
                {{"access_key", json_type_string, 1},
                 {"secret_key", json_type_string, 1},
                 {"projects", json_type_array, 1},
                 {"projects", json_type_array, 1}}};

static const struct emu_key project_keys[] = {
    {"project_id", json_type_string, 1},
    {"tokens", json_type_array, 1},
};

/* ---- configuration ---- */

static void
principals_free(struct emu_principal *p, size_t n)
{
	size_t i, j;

	for (i = 0; p != NULL && i < n; i++) {
		free(p[i].name);
		free(p[i].domain);
		gw_secret_free(p[i].secret);
		for (j = 0; j < p[i].nprojects; j++)
			free(p[i].projects[j]);
		free(p[i].projects);
	}
	free(p);
}

static void
conf_free(struct emu_conf *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	/* The guard is for the analyzer: projects is set before nprojects. */
	for (i = 0; c->projects != NULL && i < c->nprojects; i++) {
		free(c->projects[i].id);
		for (j = 0; j < c->projects[i].ntokens; j++)
			gw_secret_free(c->projects[i].tokens[j]);
		free(c->projects[i].tokens);
		free(c->projects[i].toklens);
	}
	free(c->projects);
	principals_free(c->users, c->nusers);
	principals_free(c->agencies, c->nagencies);
	principals_free(c->aksks, c->naksks);
	free(c);
}

/* Visible ASCII only: what can travel in a path segment or header. */
static int
visible_ascii(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

static int
conf_project(struct json_object *jp, size_t idx, struct emu_project *p,
             char *err, size_t errlen)
{
	struct json_object *v = NULL, *t = NULL;
	char where[64];
	const char *s = NULL;
	size_t i, n, len;

	snprintf(where, sizeof(where), "projects[%zu]", idx);
	if (emu_keys_check(jp, project_keys, NELEM(project_keys), where, err,
	                   errlen) == -1)
		return -1;
	json_object_object_get_ex(jp, "project_id", &v);
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len < 1 || len > EMU_PID_MAX || !visible_ascii(s, len) ||
	    strchr(s, '/') != NULL) {
		snprintf(
		    err, errlen,
		    "%s.project_id: 1 to %d visible ASCII characters, no '/'",
		    where, EMU_PID_MAX);
		return -1;
	}
	p->id = gw_strdup(s);
	json_object_object_get_ex(jp, "tokens", &v);
	n = json_object_array_length(v);
	if (n > EMU_TOKENS_MAX) {
		snprintf(err, errlen, "%s.tokens: at most %d", where,
		         EMU_TOKENS_MAX);
		return -1;
	}
	p->tokens = calloc(n ? n : 1, sizeof(*p->tokens));
	p->toklens = calloc(n ? n : 1, sizeof(*p->toklens));
	if (p->id == NULL || p->tokens == NULL || p->toklens == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		t = json_object_array_get_idx(v, i);
		if (!json_object_is_type(t, json_type_string)) {
			snprintf(err, errlen,
			         "%s.tokens[%zu]: must be a string", where, i);
			return -1;
		}
		s = json_object_get_string(t);
		len = (size_t)json_object_get_string_len(t);
		if (len < 1 || len > EMU_TOKEN_MAX || !visible_ascii(s, len)) {
			snprintf(
			    err, errlen,
			    "%s.tokens[%zu]: 1 to %d visible ASCII characters",
			    where, i, EMU_TOKEN_MAX);
			return -1;
		}
		p->tokens[i] = gw_strdup(s);
		if (p->tokens[i] == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		p->toklens[i] = len;
		p->ntokens++;
	}
	return 0;
}

/* Loads an array of principals of one kind; 0 or -1 with a reason. */
static int
conf_principals(struct json_object *arr, const struct emu_principal_kind *k,
                struct emu_principal **out, size_t *nout, char *err,
                size_t errlen)
{
	struct json_object *jp, *v, *pr;
	struct emu_principal *p;
	char where[64];
	size_t i, j, n = json_object_array_length(arr), len;
	const char *s;

	if (n > EMU_PRINCIPALS_MAX) {
		snprintf(err, errlen, "%s: at most %d", k->where,
		         EMU_PRINCIPALS_MAX);
		return -1;
	}
	*out = calloc(n ? n : 1, sizeof(**out));
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		p = &(*out)[i];
		(*nout)++;
		jp = json_object_array_get_idx(arr, i);
		snprintf(where, sizeof(where), "%s[%zu]", k->where, i);
		if (emu_keys_check(jp, k->keys, NELEM(k->keys), where, err,
		                   errlen) == -1)
			return -1;
		json_object_object_get_ex(jp, k->name, &v);
		p->name = gw_strdup(json_object_get_string(v));
		if (k->domain != NULL) {
			json_object_object_get_ex(jp, k->domain, &v);
			p->domain = gw_strdup(json_object_get_string(v));
		}
		if (k->secret != NULL) {
			json_object_object_get_ex(jp, k->secret, &v);
			p->secret = gw_strdup(json_object_get_string(v));
			p->secretlen = (size_t)json_object_get_string_len(v);
		}
		json_object_object_get_ex(jp, "projects", &pr);
		p->projects =
		    calloc(json_object_array_length(pr) + 1, sizeof(char *));
		if (p->name == NULL || p->projects == NULL ||
		    (k->domain != NULL && p->domain == NULL) ||
		    (k->secret != NULL && p->secret == NULL)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		for (j = 0; j < json_object_array_length(pr); j++) {
			v = json_object_array_get_idx(pr, j);
			s = json_object_get_string(v);
			len = json_object_is_type(v, json_type_string)
			          ? (size_t)json_object_get_string_len(v)
			          : 0;
			if (len < 1 || len > EMU_PID_MAX ||
			    !visible_ascii(s, len)) {
				snprintf(err, errlen,
				         "%s.projects[%zu]: 1 to %d visible "
				         "ASCII characters",
				         where, j, EMU_PID_MAX);
				return -1;
			}
			p->projects[j] = gw_strdup(s);
			if (p->projects[j] == NULL) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			p->nprojects++;
		}
	}
	return 0;
}

/* The optional "iam" and "aksk" sections; 0 or -1 with a reason. */
static int
conf_iam(struct json_object *root, struct emu_conf *c, char *err, size_t errlen)
{
	struct json_object *iam = NULL, *v = NULL;
	char jerr[256];

	c->token_ttl_s = EMU_TTL_DEF;
	if (json_object_object_get_ex(root, "aksk", &v) &&
	    conf_principals(v, &pkind_aksk, &c->aksks, &c->naksks, err,
	                    errlen) == -1)
		return -1;
	if (!json_object_object_get_ex(root, "iam", &iam))
		return 0;
	if (emu_keys_check(iam, iam_keys, NELEM(iam_keys), "iam", err,
	                   errlen) == -1)
		return -1;
	if (emu_int_key(iam, "token_ttl_s", 1, EMU_TTL_MAX, &c->token_ttl_s,
	                jerr, sizeof(jerr)) == -1) {
		snprintf(err, errlen, "iam: %s", jerr);
		return -1;
	}
	json_object_object_get_ex(iam, "users", &v);
	if (conf_principals(v, &pkind_user, &c->users, &c->nusers, err,
	                    errlen) == -1)
		return -1;
	if (json_object_object_get_ex(iam, "agencies", &v) &&
	    conf_principals(v, &pkind_agency, &c->agencies, &c->nagencies, err,
	                    errlen) == -1)
		return -1;
	return 0;
}

/* Loads the config; NULL with a reason naming the key on any error. */
static struct emu_conf *
conf_load(const char *path, char *err, size_t errlen)
{
	struct emu_conf *c = NULL, *res = NULL;
	struct json_object *root = NULL, *v = NULL;
	char *text = NULL, jerr[256];
	size_t len = 0, i, j, n;
	int rc;

	/*
	 * Not read as a secret file: these are throwaway test tokens, and
	 * the record file holds them in full anyway.
	 */
	if (gw_read_file(path, EMU_CONF_MAX, 0, &text, &len, err, errlen) == -1)
		goto out;
	root = emu_json_parse_strict(text, len, jerr, sizeof(jerr));
	if (root == NULL) {
		snprintf(err, errlen, "%s: %s", path, jerr);
		goto out;
	}
	if (emu_keys_check(root, conf_keys, NELEM(conf_keys), "config", err,
	                   errlen) == -1)
		goto out;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	c->record_total_num = 1; /* the API page's example response */
	rc = emu_int_key(root, "record_total_num", 0, EMU_RECORD_MAX,
	                 &c->record_total_num, jerr, sizeof(jerr));
	if (rc == -1) {
		snprintf(err, errlen, "config: %s", jerr);
		goto out;
	}
	if (conf_iam(root, c, err, errlen) == -1)
		goto out;
	json_object_object_get_ex(root, "projects", &v);
	n = json_object_array_length(v);
	if (n < 1 || n > EMU_PROJECTS_MAX) {
		snprintf(err, errlen, "config: \"projects\" needs 1 to %d",
		         EMU_PROJECTS_MAX);
		goto out;
	}
	c->projects = calloc(n, sizeof(*c->projects));
	if (c->projects == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		c->nprojects++;
		if (conf_project(json_object_array_get_idx(v, i), i,
		                 &c->projects[i], err, errlen) == -1)
			goto out;
		for (j = 0; j < i; j++) {
			if (strcmp(c->projects[j].id, c->projects[i].id) == 0) {
				snprintf(err, errlen,
				         "projects[%zu].project_id: duplicate",
				         i);
				goto out;
			}
		}
	}
	res = c;
	c = NULL;
out:
	conf_free(c);
	json_object_put(root);
	if (text != NULL) {
		gw_wipe(text, len);
		free(text);
	}
	return res;
}

/* ---- threads and lifecycle ---- */

static int
is_stopping(struct emu *e)
{
	int s;

	pthread_mutex_lock(&e->life);
	s = e->stopping;
	pthread_mutex_unlock(&e->life);
	return s;
}

static void
set_busy(struct emu *e, int delta)
{
	pthread_mutex_lock(&e->life);
	e->busy += delta;
	pthread_cond_broadcast(&e->lifecv);
	pthread_mutex_unlock(&e->life);
}

static void *
worker(void *arg)
{
	struct emu *e = arg;
	FCGX_Request fr;
	int rc;

	if (FCGX_InitRequest(&fr, e->listenfd, 0) != 0) {
		fprintf(stderr, "hss-emulator: FCGX_InitRequest failed\n");
		goto out;
	}
	for (;;) {
		rc = FCGX_Accept_r(&fr);
		if (rc < 0) {
			if (is_stopping(e))
				break;
			/* A transient accept failure must not shrink the pool.
			 */
			emu_sleep_ms(100);
			continue;
		}
		set_busy(e, 1);
		emu_handle(e, &fr);
		FCGX_Finish_r(&fr);
		set_busy(e, -1);
		if (is_stopping(e))
			break;
	}
	FCGX_Free(&fr, 1);
out:
	pthread_mutex_lock(&e->life);
	e->alive--;
	pthread_cond_broadcast(&e->lifecv);
	pthread_mutex_unlock(&e->life);
	return NULL;
}

/*
 * Opens the listening socket.  Not FCGX_OpenSocket: libfcgi 2.4 binds TCP
 * to INADDR_ANY and exit()s on errors; this binds 127.0.0.1 only.
 * Returns the descriptor, -2 for a malformed ADDR, -1 for a system error.
 */
static int
listen_open(const char *addr, char *unixpath, size_t cap, char *err,
            size_t errlen)
{
	struct sockaddr_un sun;
	struct sockaddr_in sin;
	struct stat st;
	const char *path;
	long long port;
	int fd = -1, one = 1;

	if (strncmp(addr, "unix:", 5) == 0) {
		path = addr + 5;
		if (*path != '/' || strlen(path) >= sizeof(sun.sun_path) ||
		    strlen(path) >= cap) {
			snprintf(err, errlen,
			         "--listen: unix path must be "
			         "absolute and short");
			return -2;
		}
		/* Replace a stale socket, never any other file. */
		if (lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				snprintf(
				    err, errlen,
				    "--listen: %s exists and is not a socket",
				    path);
				return -1;
			}
			unlink(path);
		}
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, path, strlen(path) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd == -1 ||
		    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
			goto fail;
		snprintf(unixpath, cap, "%s", path);
	} else if (strncmp(addr, "127.0.0.1:", 10) == 0) {
		if (gw_strtonum(addr + 10, 1, 65535, &port) == -1) {
			snprintf(err, errlen, "--listen: bad port");
			return -2;
		}
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd == -1 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		               sizeof(one)) == -1 ||
		    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
			goto fail;
	} else {
		snprintf(
		    err, errlen,
		    "--listen: expected unix:/path.sock or 127.0.0.1:PORT");
		return -2;
	}
	if (listen(fd, 128) == -1)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "--listen %s: %s", addr, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

struct emu_opts {
	const char *config;
	const char *log;
	const char *listen;
	const char *threads;
};

static const struct {
	const char *name;
	size_t off;
	int required;
} opttab[] = {
    {"--config", offsetof(struct emu_opts, config), 1},
    {"--log", offsetof(struct emu_opts, log), 1},
    {"--listen", offsetof(struct emu_opts, listen), 0},
    {"--threads", offsetof(struct emu_opts, threads), 0},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: hss-emulator --config FILE --log FILE "
	           "[--listen unix:/path.sock|127.0.0.1:PORT] "
	           "[--threads N]\n");
}

/* Parses argv into opts ("--opt VALUE" or "--opt=VALUE"); -1 on error. */
static int
opts_parse(int argc, char **argv, struct emu_opts *o)
{
	const char **slot;
	const char *val;
	size_t i, n;
	int k;

	memset(o, 0, sizeof(*o));
	for (k = 1; k < argc; k++) {
		for (i = 0; i < NELEM(opttab); i++) {
			n = strlen(opttab[i].name);
			if (strncmp(argv[k], opttab[i].name, n) == 0 &&
			    (argv[k][n] == '\0' || argv[k][n] == '='))
				break;
		}
		if (i == NELEM(opttab)) {
			fprintf(stderr, "hss-emulator: unknown option %s\n",
			        argv[k]);
			return -1;
		}
		if (argv[k][n] == '=')
			val = argv[k] + n + 1;
		else if (k + 1 < argc)
			val = argv[++k];
		else {
			fprintf(stderr, "hss-emulator: %s needs a value\n",
			        opttab[i].name);
			return -1;
		}
		slot = (const char **)(void *)((char *)o + opttab[i].off);
		if (*slot != NULL) {
			fprintf(stderr, "hss-emulator: %s given twice\n",
			        opttab[i].name);
			return -1;
		}
		*slot = val;
	}
	for (i = 0; i < NELEM(opttab); i++) {
		slot = (const char **)(void *)((char *)o + opttab[i].off);
		if (opttab[i].required && *slot == NULL) {
			fprintf(stderr, "hss-emulator: %s is required\n",
			        opttab[i].name);
			return -1;
		}
	}
	return 0;
}

static int64_t
mono_ms(void)
{
	return gw_mono_us() / 1000;
}

/*
 * Waits for the workers after SIGTERM: every busy one finishes its
 * request.  Idle ones blocked on a kept-alive FastCGI connection cannot
 * be woken, so after a short grace with nothing in flight they are left
 * to process exit.  Returns the number still alive.
 */
static int
drain_workers(struct emu *e)
{
	struct timespec ts;
	int64_t start = mono_ms();
	int alive;

	pthread_mutex_lock(&e->life);
	while (e->alive > 0 &&
	       !(e->busy == 0 && mono_ms() - start >= EMU_GRACE_MS)) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&e->lifecv, &e->life, &ts);
	}
	alive = e->alive;
	pthread_mutex_unlock(&e->life);
	return alive;
}

int
main(int argc, char **argv)
{
	struct emu e;
	struct emu_opts o;
	struct emu_conf *conf = NULL;
	pthread_condattr_t ca;
	pthread_t *tids = NULL;
	sigset_t set;
	char err[512], unixpath[sizeof(((struct sockaddr_un *)0)->sun_path)];
	long long nthreads = EMU_THREADS_DEF;
	int sig = 0, i, started = 0, rc = 1, left;

	memset(&e, 0, sizeof(e));
	unixpath[0] = '\0';
	e.listenfd = -1;
	e.logfd = -1;
	if (argc == 2 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (opts_parse(argc, argv, &o) == -1) {
		usage(stderr);
		return 2;
	}
	if (o.threads != NULL &&
	    gw_strtonum(o.threads, 1, EMU_THREADS_MAX, &nthreads) == -1) {
		fprintf(stderr, "hss-emulator: --threads: 1 to %d\n",
		        EMU_THREADS_MAX);
		return 2;
	}
	conf = conf_load(o.config, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "hss-emulator: %s\n", err);
		return 2;
	}
	e.conf = conf;
	emu_inject_reset(&e.inj);
	pthread_mutex_init(&e.lock, NULL);
	pthread_mutex_init(&e.iamlock, NULL);
	pthread_mutex_init(&e.tlock, NULL);
	e.file_bytes = 1024;
	e.tasks = calloc(EMU_TASKS_MAX, sizeof(*e.tasks));
	if (e.tasks == NULL) {
		fprintf(stderr, "hss-emulator: out of memory\n");
		return 1;
	}
	pthread_mutex_init(&e.loglock, NULL);
	pthread_mutex_init(&e.life, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e.lifecv, &ca);
	pthread_condattr_destroy(&ca);

	e.logfd = open(o.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (e.logfd == -1) {
		fprintf(stderr, "hss-emulator: %s: %s\n", o.log,
		        strerror(errno));
		goto out;
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "hss-emulator: FCGX_Init failed\n");
		goto out;
	}
	if (o.listen != NULL) {
		e.listenfd = listen_open(o.listen, unixpath, sizeof(unixpath),
		                         err, sizeof(err));
		if (e.listenfd < 0) {
			fprintf(stderr, "hss-emulator: %s\n", err);
			rc = e.listenfd == -2 ? 2 : 1;
			e.listenfd = -1;
			goto out;
		}
	} else if (FCGX_IsCGI()) {
		fprintf(stderr, "hss-emulator: fd 0 is not a FastCGI listening "
		                "socket; use --listen\n");
		rc = 2;
		goto out;
	} else
		e.listenfd = 0;

	/* Workers inherit the mask; only main takes SIGTERM/SIGINT. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	tids = calloc((size_t)nthreads, sizeof(*tids));
	if (tids == NULL)
		goto out;
	for (i = 0; i < nthreads; i++) {
		pthread_mutex_lock(&e.life);
		e.alive++;
		pthread_mutex_unlock(&e.life);
		if (pthread_create(&tids[i], NULL, worker, &e) != 0) {
			pthread_mutex_lock(&e.life);
			e.alive--;
			pthread_mutex_unlock(&e.life);
			fprintf(stderr,
			        "hss-emulator: pthread_create failed\n");
			break;
		}
		started++;
	}
	if (started == 0)
		goto out;
	fprintf(stderr, "hss-emulator: ready, %d threads on %s\n", started,
	        o.listen != NULL ? o.listen : "fd 0");

	while (sigwait(&set, &sig) != 0)
		;
	pthread_mutex_lock(&e.life);
	e.stopping = 1;
	pthread_mutex_unlock(&e.life);
	FCGX_ShutdownPending();
	/* Wakes every accept(2) blocked on the socket (Linux). */
	shutdown(e.listenfd, SHUT_RDWR);
	left = drain_workers(&e);
	if (left == 0) {
		for (i = 0; i < started; i++)
			pthread_join(tids[i], NULL);
	}
	fprintf(stderr, "hss-emulator: signal %d, stopped\n", sig);
	rc = 0;
	if (left > 0) {
		/* Idle threads still hold e and conf: leave them to exit. */
		if (unixpath[0] != '\0')
			unlink(unixpath);
		fflush(stderr);
		_exit(0);
	}
out:
	if (unixpath[0] != '\0')
		unlink(unixpath);
	if (e.listenfd > 0)
		close(e.listenfd);
	if (e.logfd != -1)
		close(e.logfd);
	free(tids);
	if (e.issued != NULL) {
		gw_wipe(e.issued, e.capissued * sizeof(*e.issued));
		free(e.issued);
	}
	conf_free(conf);
	return rc;
}
