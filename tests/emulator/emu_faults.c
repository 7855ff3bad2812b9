/*
 * Failure injection: the mode in force (ok, delay, status, malformed,
 * drop) under e->lock, taken once per export request, and the
 * /_emulator/ control endpoints that set it, reset it and hand the task
 * and IAM controls to their own files.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "emu.h"

/* Bodies for mode "status"; other statuses get EMU.0<status>. */
static const struct emu_errdef injtab[] = {
    {400, "HSS.0001", "invalid parameter"},
    {401, "APIGW.0301",
     "Incorrect IAM authentication information: token expires"},
    {403, "APIGW.0302", "The IAM user is not authorized to access the API"},
    {404, "APIGW.0101",
     "The API does not exist or has not been published in the "
     "environment"},
    {413, "APIGW.0201", "Request entity too large"},
    {429, "APIGW.0308",
     "The throttling threshold has been reached: policy user over "
     "ratelimit,limit:5,time:1 minute"},
    {502, "APIGW.0202", "Backend unavailable"},
    {504, "APIGW.0203", "Backend timeout"},
};

/* Which control keys each mode takes: 1 required, 0 refused. */
static const struct {
	const char *name;
	int delay_ms;
	int status;
	int count_ok;
} modetab[MODE__MAX] = {
    [MODE_OK] = {"ok", 0, 0, 0},
    [MODE_DELAY] = {"delay", 1, 0, 1},
    [MODE_STATUS] = {"status", 0, 1, 1},
    [MODE_MALFORMED] = {"malformed", 0, 0, 1},
    [MODE_DROP] = {"drop", 0, 0, 1},
};

_Static_assert(sizeof(modetab) / sizeof(modetab[0]) == MODE__MAX,
               "every mode needs a row");

static const struct emu_key control_keys[] = {
    {"mode", json_type_string, 1},     {"delay_ms", json_type_int, 0},
    {"status", json_type_int, 0},      {"count", json_type_int, 0},
    {"retry_after", json_type_int, 0},
};

void
emu_answer_injected(struct emu_answer *a, int status)
{
	size_t i;

	a->kind = ANS_ERROR;
	a->status = status;
	for (i = 0; i < NELEM(injtab); i++) {
		if (injtab[i].status == status) {
			snprintf(a->code, sizeof(a->code), "%s",
			         injtab[i].code);
			snprintf(a->msg, sizeof(a->msg), "%s", injtab[i].msg);
			return;
		}
	}
	snprintf(a->code, sizeof(a->code), "EMU.0%d", status);
	snprintf(a->msg, sizeof(a->msg), "emulated failure: status %d", status);
}

void
emu_inject_reset(struct emu_inject *i)
{
	i->mode = MODE_OK;
	i->delay_ms = 0;
	i->status = 0;
	i->remaining = -1;
	i->retry_after = 0;
}

/* Takes the mode for one export request; counts it exactly. */
void
emu_inject_take(struct emu *e, struct emu_inject *out)
{
	pthread_mutex_lock(&e->lock);
	*out = e->inj;
	e->exports++;
	if (e->inj.mode != MODE_OK) {
		e->injected++;
		if (e->inj.remaining > 0)
			e->inj.remaining--;
		if (e->inj.remaining == 0)
			emu_inject_reset(&e->inj);
	}
	pthread_mutex_unlock(&e->lock);
}

/* The control state as JSON text, owned by the caller; NULL on ENOMEM. */
static char *
state_json(struct emu *e)
{
	struct json_object *o = NULL;
	struct emu_inject inj;
	long long exports, injected;
	char *res = NULL;

	pthread_mutex_lock(&e->lock);
	inj = e->inj;
	exports = e->exports;
	injected = e->injected;
	pthread_mutex_unlock(&e->lock);

	o = json_object_new_object();
	if (o == NULL)
		goto out;
	json_object_object_add(o, "mode",
	                       json_object_new_string(modetab[inj.mode].name));
	json_object_object_add(o, "delay_ms",
	                       json_object_new_int64(inj.delay_ms));
	json_object_object_add(o, "status", json_object_new_int64(inj.status));
	json_object_object_add(o, "retry_after",
	                       json_object_new_int64(inj.retry_after));
	json_object_object_add(
	    o, "count",
	    inj.remaining < 0 ? NULL : json_object_new_int64(inj.remaining));
	json_object_object_add(o, "export_requests",
	                       json_object_new_int64(exports));
	json_object_object_add(o, "injected", json_object_new_int64(injected));
	res = gw_strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(o);
	return res;
}

/* Parses a control body into a new injection; -1 with a reason. */
static int
control_parse(const char *body, size_t len, struct emu_inject *out, char *err,
              size_t errlen)
{
	struct json_object *obj = NULL, *v = NULL;
	struct emu_inject inj;
	const char *name = NULL;
	size_t m;
	int rc = -1, has_delay, has_status, has_count, has_ra;

	emu_inject_reset(&inj);
	obj = emu_json_parse_strict(body, len, err, errlen);
	if (obj == NULL)
		goto out;
	if (emu_keys_check(obj, control_keys, NELEM(control_keys), "control",
	                   err, errlen) == -1)
		goto out;
	json_object_object_get_ex(obj, "mode", &v);
	name = json_object_get_string(v);
	for (m = 0; m < MODE__MAX; m++)
		if (strcmp(name, modetab[m].name) == 0)
			break;
	if (m == MODE__MAX) {
		snprintf(err, errlen,
		         "\"mode\" must be one of ok, delay, "
		         "status, malformed, drop");
		goto out;
	}
	inj.mode = (enum emu_mode)m;
	has_delay = emu_int_key(obj, "delay_ms", 0, EMU_DELAY_MAX,
	                        &inj.delay_ms, err, errlen);
	has_status =
	    emu_int_key(obj, "status", 400, 599, &inj.status, err, errlen);
	has_count = emu_int_key(obj, "count", 1, EMU_COUNT_MAX, &inj.remaining,
	                        err, errlen);
	has_ra = emu_int_key(obj, "retry_after", 1, 3600, &inj.retry_after, err,
	                     errlen);
	if (has_delay == -1 || has_status == -1 || has_count == -1 ||
	    has_ra == -1)
		goto out;
	if (has_ra && m != MODE_STATUS) {
		snprintf(err, errlen,
		         "\"retry_after\" is only allowed with mode "
		         "\"status\"");
		goto out;
	}
	if (has_delay != modetab[m].delay_ms) {
		snprintf(err, errlen, "\"delay_ms\" is %s with mode \"%s\"",
		         modetab[m].delay_ms ? "required" : "not allowed",
		         name);
		goto out;
	}
	if (has_status != modetab[m].status) {
		snprintf(err, errlen, "\"status\" is %s with mode \"%s\"",
		         modetab[m].status ? "required" : "not allowed", name);
		goto out;
	}
	if (has_count && !modetab[m].count_ok) {
		snprintf(err, errlen,
		         "\"count\" is not allowed with mode "
		         "\"ok\"");
		goto out;
	}
	*out = inj;
	rc = 0;
out:
	json_object_put(obj);
	return rc;
}

void
emu_handle_control(struct emu *e, struct emu_req *r, struct emu_answer *a)
{
	struct emu_inject inj;
	char err[256];
	int is_ctl = strcmp(r->path, "/_emulator/control") == 0;
	int is_reset = strcmp(r->path, "/_emulator/reset") == 0;
	int get = strcmp(r->method, "GET") == 0;
	int post = strcmp(r->method, "POST") == 0;

	if (strcmp(r->path, "/_emulator/tasks") == 0) {
		if (r->body_over || r->body.len > EMU_CTL_BODY_MAX)
			emu_answer_err(a, EE_TOO_LARGE, NULL);
		else
			emu_handle_tasks_ctl(e, r, a);
		return;
	}
	if (strcmp(r->path, "/_emulator/revoke") == 0 ||
	    strcmp(r->path, "/_emulator/iam-calls") == 0) {
		int rv = r->path[11] == 'r';

		if (rv ? !post : !get) {
			emu_answer_err(a, EE_METHOD, NULL);
			a->allow = rv ? "POST" : "GET";
		} else if (rv &&
		           (r->body_over || r->body.len > EMU_CTL_BODY_MAX)) {
			emu_answer_err(a, EE_TOO_LARGE, NULL);
		} else if (rv) {
			emu_handle_revoke(e, r, a);
		} else {
			emu_handle_iam_calls(e, a);
		}
		return;
	}
	if (!is_ctl && !is_reset) {
		emu_answer_err(a, EE_NOT_FOUND, NULL);
		return;
	}
	if (!(post || (get && is_ctl))) {
		emu_answer_err(a, EE_METHOD, NULL);
		a->allow = is_ctl ? "GET, POST" : "POST";
		return;
	}
	if (post && (r->body_over || r->body.len > EMU_CTL_BODY_MAX)) {
		emu_answer_err(a, EE_TOO_LARGE, NULL);
		return;
	}
	if (post && is_ctl) {
		if (control_parse(r->body.p != NULL ? r->body.p : "",
		                  r->body.len, &inj, err, sizeof(err)) == -1) {
			emu_answer_err(a, EE_CONTROL, err);
			return;
		}
		pthread_mutex_lock(&e->lock);
		e->inj = inj;
		pthread_mutex_unlock(&e->lock);
	} else if (post) {
		pthread_mutex_lock(&e->lock);
		emu_inject_reset(&e->inj);
		e->exports = 0;
		e->injected = 0;
		pthread_mutex_unlock(&e->lock);
		pthread_mutex_lock(&e->iamlock);
		e->iam_calls = 0;
		pthread_mutex_unlock(&e->iamlock);
	}
	a->raw = state_json(e);
	if (a->raw == NULL) {
		emu_answer_err(a, EE_INTERNAL, NULL);
		return;
	}
	a->kind = ANS_RAW;
	a->status = 200;
}
