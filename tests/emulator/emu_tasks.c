/*
 * Export tasks and downloads: GET /v5/{project_id}/export-task/{id} and
 * /v5/{project_id}/download/{file_id}, the task table under e->tlock, the
 * generated files, HSS's per-minute limit per API and /_emulator/tasks.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

/*
 * Export tasks (hss-api-notes.md 2.1, 2.2): every accepted export becomes
 * a task that stays "running" for the configured delay, then turns
 * "success" (or "failure") with a file of the configured size.  Files
 * are generated, never stored: block i (4096 bytes) is i as 8 big-endian
 * bytes, then 4088 bytes of (seed + i % 251 + k) mod 256, seed the sum of
 * the file id's bytes, so a test can check every byte it received.
 */
int
emu_query_eps(const char *query, char *out, size_t cap)
{
	static const char name[] = "enterprise_project_id=";
	const char *p = query != NULL ? query : "", *amp;
	size_t n, len = 0;
	char *d;

	out[0] = '\0';
	while (*p != '\0') {
		amp = strchr(p, '&');
		n = amp != NULL ? (size_t)(amp - p) : strlen(p);
		if (n >= sizeof(name) - 1 &&
		    strncmp(p, name, sizeof(name) - 1) == 0) {
			/* '+' is a space in a query, as servlet containers do.
			 */
			d = gw_pct_decode(p + sizeof(name) - 1,
			                  n - (sizeof(name) - 1), 1, &len);
			if (d == NULL || len + 1 > cap || strlen(d) != len) {
				free(d);
				return -1;
			}
			memcpy(out, d, len + 1);
			free(d);
			return 0;
		}
		p += n + (amp != NULL);
	}
	return 0;
}

int
emu_task_new(struct emu *e, const char *pid, size_t pidlen, const char *query,
             char task[33])
{
	struct emu_task *t;
	char eps[EMU_EPS_MAX + 1];
	int rc = -1;

	if (gw_random_hex(task, 16) == -1 || pidlen > EMU_PID_MAX ||
	    emu_query_eps(query, eps, sizeof(eps)) == -1)
		return -1;
	pthread_mutex_lock(&e->tlock);
	if (e->ntasks < EMU_TASKS_MAX) {
		t = &e->tasks[e->ntasks++];
		memset(t, 0, sizeof(*t));
		memcpy(t->id, task, 33);
		memcpy(t->project, pid, pidlen);
		memcpy(t->eps, eps, sizeof(eps));
		if (gw_random_hex(t->file_id, 16) == -1)
			snprintf(t->file_id, sizeof(t->file_id), "f%s", task);
		t->created_ms = gw_now_ms();
		t->delay_ms = e->task_delay_ms;
		t->file_bytes = e->file_bytes;
		t->fail = e->task_fail;
		rc = 0;
	}
	pthread_mutex_unlock(&e->tlock);
	return rc;
}

/* Finds a task by id or by file id in project pid; 1 if found. */
static int
task_find(struct emu *e, const char *pid, size_t pidlen, const char *id,
          int by_file, struct emu_task *out)
{
	size_t i;
	int found = 0;

	pthread_mutex_lock(&e->tlock);
	for (i = 0; i < e->ntasks && !found; i++) {
		const struct emu_task *t = &e->tasks[i];

		if (strcmp(by_file ? t->file_id : t->id, id) == 0 &&
		    strlen(t->project) == pidlen &&
		    memcmp(t->project, pid, pidlen) == 0) {
			*out = *t;
			found = 1;
		}
	}
	pthread_mutex_unlock(&e->tlock);
	return found;
}

/*
 * HSS's limit (hss-api-notes.md 6): at most limit calls per API in any
 * 60 s.  hssgw is one user on one IP, so every call counts together.
 * 1: allowed and counted; 0: throttled.
 */
int
emu_limit_take(struct emu *e, enum emu_api api)
{
	struct emu_window *w = &e->win[api];
	long long now = gw_now_ms();
	size_t i, n = 0, slot = 0;
	int ok = 1;

	pthread_mutex_lock(&e->tlock);
	e->calls[api]++;
	if (e->limit > 0) {
		for (i = 0; i < (size_t)e->limit; i++) {
			if (w->t[i] != 0 && now - w->t[i] < 60000)
				n++;
			else
				slot = i;
		}
		if (n >= (size_t)e->limit) {
			ok = 0;
			e->throttled++;
		} else
			w->t[slot] = now;
	}
	pthread_mutex_unlock(&e->tlock);
	return ok;
}

/* The token checks of the export (steps 2 and 3) for a GET. */
static int
get_auth(struct emu *e, struct emu_req *r, const char *pid, size_t pidlen,
         struct emu_answer *a)
{
	const char *tok, *auth;
	size_t ntok = 0, nauth = 0, toklen;
	char pidz[EMU_PID_MAX + 1];
	long pidx;
	int known = 0, mine = 0, issued;

	tok = emu_param_get(r->envp, "HTTP_X_AUTH_TOKEN", &ntok);
	auth = emu_param_get(r->envp, "HTTP_AUTHORIZATION", &nauth);
	pidx = emu_project_find(e->conf, pid, pidlen);
	if ((tok == NULL || *tok == '\0') && auth != NULL) {
		if (nauth != 1 || pidlen > EMU_PID_MAX) {
			emu_answer_err(a, EE_AKSK, NULL);
			return -1;
		}
		memcpy(pidz, pid, pidlen);
		pidz[pidlen] = '\0';
		if (emu_aksk_verify(e, r, auth, pidz, a) == -1)
			return -1;
		if (pidx < 0) {
			emu_answer_err(a, EE_DENIED, NULL);
			return -1;
		}
		return 0;
	}
	if (tok == NULL || *tok == '\0') {
		emu_answer_err(a, EE_NO_TOKEN, NULL);
		return -1;
	}
	toklen = strlen(tok);
	if (ntok > 1 || toklen > EMU_TOKEN_MAX) {
		emu_answer_err(a, EE_BAD_TOKEN, NULL);
		return -1;
	}
	emu_token_scan(e->conf, tok, toklen, pidx, &known, &mine);
	if (!known) {
		issued = emu_issued_check(e, tok, pid, pidlen, a);
		if (issued == -1)
			return -1;
		known = mine = issued;
	}
	if (!known) {
		emu_answer_err(a, EE_BAD_TOKEN, NULL);
		return -1;
	}
	if (pidx < 0 || !mine) {
		emu_answer_err(a, EE_DENIED, NULL);
		return -1;
	}
	return 0;
}

/* /v5/{pid}/export-task/{id} or /v5/{pid}/download/{id}: the API or -1. */
int
emu_task_path(const char *path, const char **pid, size_t *pidlen,
              const char **id)
{
	static const struct {
		const char *seg;
		enum emu_api api;
	} segs[] = {{"/export-task/", API_STATUS}, {"/download/", API_FILE}};
	const char *p, *q;
	size_t i, n;

	if (strncmp(path, emu_export_prefix, sizeof(emu_export_prefix) - 1) !=
	    0)
		return -1;
	p = path + sizeof(emu_export_prefix) - 1;
	q = strchr(p, '/');
	if (q == NULL || q == p)
		return -1;
	for (i = 0; i < NELEM(segs); i++) {
		n = strlen(segs[i].seg);
		if (strncmp(q, segs[i].seg, n) == 0 && q[n] != '\0' &&
		    strchr(q + n, '/') == NULL && strlen(q + n) <= 64) {
			*pid = p;
			*pidlen = (size_t)(q - p);
			*id = q + n;
			return (int)segs[i].api;
		}
	}
	return -1;
}

void
emu_handle_task(struct emu *e, struct emu_req *r, int api, const char *pid,
                size_t pidlen, const char *id, struct emu_answer *a)
{
	struct json_object *o = NULL;
	struct emu_task t;
	char eps[EMU_EPS_MAX + 1];
	long long now = gw_now_ms();
	const char *st;

	if (strcmp(r->method, "GET") != 0) {
		emu_answer_err(a, EE_METHOD, NULL);
		a->allow = "GET";
		return;
	}
	if (get_auth(e, r, pid, pidlen, a) == -1)
		return;
	if (!emu_limit_take(e, (enum emu_api)api)) {
		emu_answer_injected(a, 429);
		return;
	}
	/*
	 * HSS scopes tasks by enterprise project: asked under another one
	 * (or none), the task is not found (#16: hssgw must poll under the
	 * enterprise project the export was made with).
	 */
	if (!task_find(e, pid, pidlen, id, api == API_FILE, &t) ||
	    emu_query_eps(r->query, eps, sizeof(eps)) == -1 ||
	    strcmp(eps, t.eps) != 0) {
		emu_answer_err(a, EE_NOT_FOUND, "no such task or file");
		return;
	}
	st = now - t.created_ms < t.delay_ms ? "running"
	     : t.fail                        ? "failure"
	                                     : "success";
	if (api == API_FILE) {
		if (strcmp(st, "success") != 0) {
			emu_answer_err(a, EE_NOT_FOUND, "file not ready");
			return;
		}
		a->kind = ANS_FILE;
		a->status = 200;
		a->file = t;
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "task_id", json_object_new_string(t.id));
	json_object_object_add(o, "task_name",
	                       json_object_new_string("image_baseline_export"));
	json_object_object_add(o, "task_status", json_object_new_string(st));
	if (strcmp(st, "success") == 0) {
		char name[80];

		snprintf(name, sizeof(name), "hss-image-baseline-%.16s.zip",
		         t.id);
		json_object_object_add(o, "file_id",
		                       json_object_new_string(t.file_id));
		json_object_object_add(o, "file_name",
		                       json_object_new_string(name));
	}
	a->raw = gw_strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	a->kind = a->raw != NULL ? ANS_RAW : ANS_ERROR;
	a->status = a->raw != NULL ? 200 : 500;
}

/* Streams a generated file (see emu_task_new) in 64 KiB writes. */
void
emu_respond_file(FCGX_Request *fr, const struct emu_task *t, const char *reqid)
{
	unsigned char base[4096 + 251], block[4096];
	unsigned seed = 0;
	long long off = 0, blk;
	size_t i, n;

	for (i = 0; t->file_id[i] != '\0'; i++)
		seed += (unsigned char)t->file_id[i];
	for (i = 0; i < sizeof(base); i++)
		base[i] = (unsigned char)((seed + i) & 0xff);
	FCGX_FPrintF(fr->out,
	             "Status: 200 OK\r\nContent-Type: application/zip\r\n"
	             "X-Request-Id: %s\r\n",
	             reqid);
	snprintf((char *)block, sizeof(block), "Content-Length: %lld\r\n\r\n",
	         t->file_bytes);
	FCGX_PutS((char *)block, fr->out);
	while (off < t->file_bytes) {
		blk = off / 4096;
		for (i = 0; i < 8; i++)
			block[i] = (unsigned char)((unsigned long long)blk >>
			                           (56 - 8 * i));
		memcpy(block + 8, base + blk % 251 + 8, 4088);
		n = t->file_bytes - off < 4096 ? (size_t)(t->file_bytes - off)
		                               : 4096;
		if (FCGX_PutStr((char *)block, (int)n, fr->out) != (int)n)
			return;
		off += (long long)n;
	}
}

/* POST /_emulator/tasks: {"delay_ms", "file_bytes", "fail",
 * "limit_per_minute"}; GET: the same plus call counters. */
void
emu_handle_tasks_ctl(struct emu *e, struct emu_req *r, struct emu_answer *a)
{
	static const struct emu_key keys[] = {
	    {"delay_ms", json_type_int, 0},
	    {"file_bytes", json_type_int, 0},
	    {"fail", json_type_boolean, 0},
	    {"limit_per_minute", json_type_int, 0},
	};
	struct json_object *root = NULL, *v = NULL;
	long long delay = -1, bytes = -1, limit = -1;
	char err[256], buf[512];

	if (strcmp(r->method, "POST") == 0) {
		root = emu_json_parse_strict(r->body.p != NULL ? r->body.p : "",
		                             r->body.len, err, sizeof(err));
		if (root == NULL ||
		    emu_keys_check(root, keys, NELEM(keys), "tasks", err,
		                   sizeof(err)) == -1 ||
		    emu_int_key(root, "delay_ms", 0, EMU_DELAY_MAX, &delay, err,
		                sizeof(err)) == -1 ||
		    emu_int_key(root, "file_bytes", 0, 1LL << 32, &bytes, err,
		                sizeof(err)) == -1 ||
		    emu_int_key(root, "limit_per_minute", 0, EMU_LIMIT_MAX,
		                &limit, err, sizeof(err)) == -1) {
			emu_answer_err(a, EE_CONTROL, err);
			goto out;
		}
		pthread_mutex_lock(&e->tlock);
		if (delay >= 0)
			e->task_delay_ms = delay;
		if (bytes >= 0)
			e->file_bytes = bytes;
		if (limit >= 0) {
			e->limit = limit;
			memset(e->win, 0, sizeof(e->win));
		}
		if (json_object_object_get_ex(root, "fail", &v))
			e->task_fail = json_object_get_boolean(v);
		pthread_mutex_unlock(&e->tlock);
	} else if (strcmp(r->method, "GET") != 0) {
		emu_answer_err(a, EE_METHOD, NULL);
		a->allow = "GET, POST";
		goto out;
	}
	pthread_mutex_lock(&e->tlock);
	snprintf(buf, sizeof(buf),
	         "{\"delay_ms\": %lld, \"file_bytes\": %lld, \"fail\": %s, "
	         "\"limit_per_minute\": %lld, \"tasks\": %zu, "
	         "\"export_calls\": %lld, \"status_calls\": %lld, "
	         "\"download_calls\": %lld, \"throttled\": %lld}",
	         e->task_delay_ms, e->file_bytes,
	         e->task_fail ? "true" : "false", e->limit, e->ntasks,
	         e->calls[API_EXPORT], e->calls[API_STATUS], e->calls[API_FILE],
	         e->throttled);
	pthread_mutex_unlock(&e->tlock);
	a->raw = gw_strdup(buf);
	a->kind = a->raw != NULL ? ANS_RAW : ANS_ERROR;
	a->status = a->raw != NULL ? 200 : 500;
out:
	json_object_put(root);
}
