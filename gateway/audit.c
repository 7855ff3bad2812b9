/*
 * Audit trail, first version: JSON lines appended with O_APPEND and one
 * write(2) per record under a mutex, so records from worker threads never
 * interleave or split.  The trail remembers whether its last write worked,
 * so the pipeline can refuse exports (fail closed) while it is broken.
 * Never receives a secret: the upstream request is printed redacted.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "audit.h"

#define AUDIT_MAX_RECORD (256 * 1024)

struct gw_audit {
	pthread_mutex_t lock;
	int fd;
	int healthy;
};

struct gw_audit *
gw_audit_open(const char *path, char *err, size_t errlen)
{
	struct gw_audit *a;

	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	a->healthy = 1;
	return a;
}

void
gw_audit_close(struct gw_audit *a)
{
	if (a == NULL)
		return;
	close(a->fd);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int
gw_audit_ready(struct gw_audit *a)
{
	int ok;

	if (a == NULL)
		return 0;
	pthread_mutex_lock(&a->lock);
	ok = a->healthy;
	pthread_mutex_unlock(&a->lock);
	return ok;
}

static void
add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static double
ms(int64_t us)
{
	return (double)us / 1000.0;
}

int
gw_audit_format(const struct gw_audit_rec *r, struct gw_buf *buf)
{
	struct json_object *o = NULL, *up = NULL, *lat = NULL, *st = NULL;
	struct gw_buf rb;
	const char *s;
	char when[40];
	int rc = -1;

	gw_buf_init(&rb, AUDIT_MAX_RECORD);
	o = json_object_new_object();
	lat = json_object_new_object();
	if (o == NULL || lat == NULL)
		goto out;
	gw_fmt_time_ms(r->time_ms, when, sizeof(when));
	add_str(o, "time", when);
	add_str(o, "request_id", r->request_id);
	add_str(o, "client_addr", r->client_addr);
	add_str(o, "method", r->method);
	add_str(o, "path", r->path);
	add_str(o, "subject", r->subject);
	add_str(o, "issuer", r->issuer);
	add_str(o, "jti", r->jti);
	add_str(o, "action", r->action);
	add_str(o, "resource", r->resource);
	add_str(o, "project", r->project);
	add_str(o, "decision", r->decision);
	if (r->stmt_file != NULL) {
		st = json_object_new_object();
		add_str(st, "file", r->stmt_file);
		add_str(st, "sid", r->stmt_sid);
	}
	json_object_object_add(o, "statement", st);
	add_str(o, "policy_revision", r->policy_revision);
	json_object_object_add(o, "status", json_object_new_int(r->status));
	add_str(o, "error_code", r->error_code);
	add_str(o, "error_field", r->error_field);
	add_str(o, "credentials", r->cred_name);
	add_str(o, "credential_fp", r->cred_fp);
	if (r->upreq != NULL) {
		up = json_object_new_object();
		if (gw_upreq_json(r->upreq, &rb) == 0)
			json_object_object_add(up, "request",
			                       json_tokener_parse(rb.p));
		json_object_object_add(
		    up, "status",
		    r->up_status ? json_object_new_int64(r->up_status) : NULL);
		add_str(up, "error_code", r->up_error_code);
		add_str(up, "task_id", r->task_id);
		json_object_object_add(
		    up, "record_total_num",
		    r->record_total_num >= 0
		        ? json_object_new_int64(r->record_total_num)
		        : NULL);
	}
	json_object_object_add(o, "upstream", up);
	json_object_object_add(lat, "auth",
	                       json_object_new_double(ms(r->lat_auth_us)));
	json_object_object_add(lat, "policy",
	                       json_object_new_double(ms(r->lat_policy_us)));
	json_object_object_add(lat, "upstream",
	                       json_object_new_double(ms(r->lat_upstream_us)));
	json_object_object_add(lat, "total",
	                       json_object_new_double(ms(r->lat_total_us)));
	json_object_object_add(o, "latency_ms", lat);
	lat = NULL;
	s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	rc = s == NULL ? -1 : gw_buf_puts(buf, s);
out:
	gw_buf_reset(&rb);
	json_object_put(lat);
	json_object_put(o);
	return rc;
}

enum gw_err
gw_audit_emit(struct gw_audit *a, const struct gw_audit_rec *r, char *err,
              size_t errlen)
{
	struct gw_buf b;
	enum gw_err rc = GW_ERR_AUDIT;
	size_t off = 0;
	ssize_t n;

	gw_buf_init(&b, AUDIT_MAX_RECORD);
	if (a == NULL) {
		snprintf(err, errlen, "audit trail not open");
		goto out;
	}
	if (gw_audit_format(r, &b) == -1 || gw_buf_add(&b, "\n", 1) == -1) {
		snprintf(err, errlen, "audit record could not be formatted");
		goto out;
	}
	pthread_mutex_lock(&a->lock);
	/*
	 * One write(2) with O_APPEND: a regular file takes it whole or
	 * reports a short write, which leaves a torn line; treat that as a
	 * failure of the trail.
	 */
	while (off < b.len) {
		n = write(a->fd, b.p + off, b.len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	a->healthy = off == b.len;
	pthread_mutex_unlock(&a->lock);
	if (off != b.len) {
		snprintf(err, errlen, "audit write failed: %s",
		         strerror(errno));
		goto out;
	}
	rc = GW_OK;
out:
	gw_buf_reset(&b);
	return rc;
}
