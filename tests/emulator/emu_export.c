/*
 * The export API, POST /v5/{project_id}/image/baseline/export: the checks
 * HSS runs, in order (token or AK/SK, project, region, Content-Type, body
 * cap, query and body), then the per-minute limit, the task it creates
 * and the failure injected in force.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "emu.h"
#include "translate.h"

/* Steps 2 to 7 of the brief, in order; fills the answer. */
static void
export_check(struct emu *e, struct emu_req *r, const char *pid, size_t pidlen,
             struct emu_answer *a)
{
	struct gw_fault fault;
	const char *tok, *region, *auth;
	char detail[400], pidz[EMU_PID_MAX + 1];
	size_t ntok = 0, nregion = 0, nauth = 0, toklen, rlen;
	long pidx;
	int known = 0, mine = 0, issued;

	/* 2. X-Auth-Token (API page, Table 3; APIGW.0301 variants), or
	 * an AK/SK signature when no token is sent (notes section 5). */
	tok = emu_param_get(r->envp, "HTTP_X_AUTH_TOKEN", &ntok);
	auth = emu_param_get(r->envp, "HTTP_AUTHORIZATION", &nauth);
	if ((tok == NULL || *tok == '\0') && auth != NULL) {
		if (nauth != 1 || pidlen > EMU_PID_MAX) {
			emu_answer_err(a, EE_AKSK, NULL);
			return;
		}
		memcpy(pidz, pid, pidlen);
		pidz[pidlen] = '\0';
		if (emu_aksk_verify(e, r, auth, pidz, a) == -1)
			return;
		pidx = emu_project_find(e->conf, pid, pidlen);
		if (pidx < 0) {
			emu_answer_err(a, EE_DENIED, NULL);
			return;
		}
		goto checked;
	}
	if (tok == NULL || *tok == '\0') {
		emu_answer_err(a, EE_NO_TOKEN, NULL);
		return;
	}
	toklen = strlen(tok);
	/* Two tokens are ambiguous: never guess which one counts. */
	if (ntok > 1 || toklen > EMU_TOKEN_MAX) {
		emu_answer_err(a, EE_BAD_TOKEN, NULL);
		return;
	}
	pidx = emu_project_find(e->conf, pid, pidlen);
	emu_token_scan(e->conf, tok, toklen, pidx, &known, &mine);
	if (!known) {
		/* Not configured: maybe IAM issued it (expired, revoked?). */
		issued = emu_issued_check(e, tok, pid, pidlen, a);
		if (issued == -1)
			return;
		known = mine = issued;
	}
	if (!known) {
		emu_answer_err(a, EE_BAD_TOKEN, NULL);
		return;
	}
	/* 3. project_id 1..256 (Table 1), configured, covered by token. */
	if (pidx < 0 || !mine) {
		emu_answer_err(a, EE_DENIED, NULL);
		return;
	}
checked:
	/* 4. region header: optional, 1..128 (Table 3). */
	region = emu_param_get(r->envp, "HTTP_REGION", &nregion);
	if (nregion > 1) {
		emu_answer_err(a, EE_PARAM, "region: must be sent once");
		return;
	}
	rlen = region != NULL ? strlen(region) : 0;
	if (nregion == 1 && (rlen < 1 || rlen > EMU_REGION_MAX)) {
		emu_answer_err(a, EE_PARAM, "region: length must be 1 to 128");
		return;
	}
	/* 5. Content-Type (SDK: application/json). */
	if (!emu_media_is_json(emu_param_get(r->envp, "CONTENT_TYPE", NULL))) {
		emu_answer_err(a, EE_PARSE, NULL);
		return;
	}
	/* 6. Body cap, then query and body as HSS checks them. */
	if (r->body_over) {
		emu_answer_err(a, EE_TOO_LARGE, NULL);
		return;
	}
	memset(&fault, 0, sizeof(fault));
	if (gw_tr_check_hss(r->query, r->body.p != NULL ? r->body.p : "",
	                    r->body.len, &fault) != GW_OK) {
		if (fault.field[0] != '\0')
			snprintf(detail, sizeof(detail), "%s: %s", fault.field,
			         fault.msg);
		else
			snprintf(detail, sizeof(detail), "%s",
			         fault.msg[0] != '\0' ? fault.msg : "rejected");
		emu_answer_err(a, EE_PARAM, detail);
		return;
	}
	/* 7. Success (Table 5). */
	a->kind = ANS_SUCCESS;
	a->status = 200;
}

void
emu_handle_export(struct emu *e, struct emu_req *r, const char *pid,
                  size_t pidlen, struct emu_answer *a)
{
	struct emu_inject inj;

	if (strcmp(r->method, "POST") != 0) {
		emu_answer_err(a, EE_METHOD, NULL);
		a->allow = "POST";
		return;
	}
	emu_inject_take(e, &inj);
	export_check(e, r, pid, pidlen, a);
	if (a->kind == ANS_SUCCESS && !emu_limit_take(e, API_EXPORT))
		emu_answer_injected(a, 429);
	if (a->kind == ANS_SUCCESS && inj.mode == MODE_OK &&
	    emu_task_new(e, pid, pidlen, r->query, a->task) == -1)
		emu_answer_err(a, EE_INTERNAL, "task table full");
	/* An invalid request is never masked by an injected failure. */
	if (a->kind == ANS_SUCCESS) {
		if (inj.mode == MODE_STATUS) {
			emu_answer_injected(a, (int)inj.status);
			a->retry_after = inj.retry_after;
		} else if (inj.mode == MODE_MALFORMED)
			a->kind = ANS_MALFORMED;
		else if (inj.mode == MODE_DROP)
			a->kind = ANS_DROP;
	}
	if (inj.mode == MODE_DELAY)
		a->delay_ms = inj.delay_ms;
}
