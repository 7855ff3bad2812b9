/*
 * Audit record formatting: the record's JSON line written straight into
 * a buffer (no json-c tree: this runs for every request, see
 * bench/README.md), every caller-controlled string capped and made valid
 * UTF-8 (put_capped).  The chain, the commit and the summaries are
 * audit.c's.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit_int.h"

static const char *const phasename[GW_AUDIT_PHASE__MAX] = {
    [GW_AUDIT_FINAL] = "final",           [GW_AUDIT_INTENT] = "intent",
    [GW_AUDIT_OUTCOME] = "outcome",       [GW_AUDIT_SUMMARY] = "summary",
    [GW_AUDIT_CHECKPOINT] = "checkpoint",
};

void
aud_hex32(const unsigned char *md, char out[GW_AUDIT_HASH_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[GW_AUDIT_HASH_HEX] = '\0';
}

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629 §4: no
 * overlong forms, no surrogates, nothing past U+10FFFF), 0 if there is
 * none.
 */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned cp;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1fu;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0fu;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07u;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		return 0;
	if (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
		return 0;
	return len;
}

/*
 * Appends a caller's string as a JSON string a strict reader accepts and
 * an attacker cannot inflate: every byte that is not well-formed UTF-8
 * becomes U+FFFD, and past cap bytes the value is cut (on a character
 * boundary) and ends in "...[truncated N bytes sha256:<hex>]", the
 * length and SHA-256 of the whole original, so the cut value still
 * identifies it.  NULL is written as null.  Returns 0 or -1.
 */
static int
put_capped(struct gw_buf *b, const char *v, size_t cap)
{
	static const char fffd[] = "\xef\xbf\xbd";
	unsigned char md[32];
	const unsigned char *p = (const unsigned char *)v;
	size_t n, i = 0, k, olen = 0;
	char hex[GW_AUDIT_HASH_HEX + 1], o[CAP_FILE + 128];

	if (v == NULL)
		return gw_buf_add(b, "null", 4);
	n = strlen(v);
	if (cap > CAP_FILE)
		cap = CAP_FILE;
	while (i < n) {
		k = utf8_seq(p + i, n - i);
		if (olen + (k != 0 ? k : sizeof(fffd) - 1) > cap)
			break;
		if (k != 0) {
			memcpy(o + olen, p + i, k);
			olen += k;
			i += k;
		} else {
			memcpy(o + olen, fffd, sizeof(fffd) - 1);
			olen += sizeof(fffd) - 1;
			i++;
		}
	}
	if (i < n) {
		if (gw_sha256(p, n, md) == -1)
			return -1;
		aud_hex32(md, hex);
		olen += (size_t)snprintf(o + olen, sizeof(o) - olen,
		                         "...[truncated %zu bytes sha256:%s]",
		                         n, hex);
	}
	return gw_buf_json_str(b, o, olen);
}

/*
 * The writer's members: each appends ,"k": (no comma right after an
 * opening brace or bracket) and a value.  A failed append sets the
 * buffer's overflow flag, which every later append keeps and the caller
 * checks once at the end.
 */
void
aud_key(struct gw_buf *b, const char *k)
{
	if (b->len > 0 && b->p[b->len - 1] != '{' && b->p[b->len - 1] != '[')
		gw_buf_add(b, ",", 1);
	gw_buf_json_str(b, k, strlen(k));
	gw_buf_add(b, ":", 1);
}

void
aud_cap(struct gw_buf *b, const char *k, const char *v, size_t cap)
{
	aud_key(b, k);
	if (put_capped(b, v, cap) == -1)
		b->overflow = 1;
}

void
aud_str(struct gw_buf *b, const char *k, const char *v)
{
	aud_cap(b, k, v, CAP_TEXT);
}

/* A number, or null when absent says so. */
void
aud_int(struct gw_buf *b, const char *k, long long v, int absent)
{
	aud_key(b, k);
	if (absent)
		gw_buf_add(b, "null", 4);
	else
		gw_buf_printf(b, "%lld", v);
}

/* Microseconds as milliseconds, to the microsecond: 1.234. */
static void
put_ms(struct gw_buf *b, const char *k, int64_t us)
{
	aud_key(b, k);
	if (us < 0) {
		gw_buf_add(b, "-", 1);
		us = -us;
	}
	gw_buf_printf(b, "%lld.%03lld", (long long)(us / 1000),
	              (long long)(us % 1000));
}

static void
put_raw(struct gw_buf *b, const char *k, const char *json)
{
	aud_key(b, k);
	gw_buf_puts(b, json);
}

/* A deciding statement {"file","sid"}, or null. */
static void
put_stmt(struct gw_buf *b, const char *k, const char *file, const char *sid)
{
	if (k != NULL)
		aud_key(b, k);
	else if (b->len > 0 && b->p[b->len - 1] != '[')
		gw_buf_add(b, ",", 1);
	if (file == NULL) {
		gw_buf_add(b, "null", 4);
		return;
	}
	gw_buf_add(b, "{", 1);
	aud_cap(b, "file", file, CAP_FILE);
	aud_str(b, "sid", sid);
	gw_buf_add(b, "}", 1);
}

/* Every upstream attempt, oldest first: status, HSS's code, latency. */
static void
put_attempts(struct gw_buf *b, const struct gw_audit_rec *r)
{
	const struct gw_audit_attempt *at;
	size_t i;

	aud_key(b, "attempts");
	gw_buf_add(b, "[", 1);
	for (i = 0; i < r->nattempts && i < GW_AUDIT_ATTEMPTS_MAX; i++) {
		at = &r->attempts[i];
		gw_buf_add(b, i > 0 ? ",{" : "{", i > 0 ? 2 : 1);
		aud_int(b, "status", at->status, at->status == 0);
		aud_str(b, "error_code", at->error_code);
		put_ms(b, "latency_ms", at->latency_us);
		gw_buf_add(b, "}", 1);
	}
	gw_buf_add(b, "]", 1);
}

static void
put_upstream(struct gw_buf *b, const struct gw_audit_rec *r)
{
	aud_key(b, "upstream");
	if (r->upreq == NULL) {
		gw_buf_add(b, "null", 4);
		return;
	}
	gw_buf_add(b, "{", 1);
	aud_key(b, "request");
	if (gw_upreq_json(r->upreq, b) == -1)
		b->overflow = 1;
	aud_int(b, "status", r->up_status, r->up_status == 0);
	aud_str(b, "error_code", r->up_error_code);
	aud_str(b, "task_id", r->task_id);
	aud_int(b, "record_total_num", r->record_total_num,
	        r->record_total_num < 0);
	if (r->nattempts > 0)
		put_attempts(b, r);
	gw_buf_add(b, "}", 1);
}

/* The shadow decision, or null when none was evaluated. */
static void
put_shadow(struct gw_buf *b, const struct gw_audit_rec *r)
{
	aud_key(b, "shadow");
	if (r->shadow_decision == NULL) {
		gw_buf_add(b, "null", 4);
		return;
	}
	gw_buf_add(b, "{", 1);
	aud_str(b, "decision", r->shadow_decision);
	put_stmt(b, "statement", r->shadow_stmt_file, r->shadow_stmt_sid);
	aud_str(b, "policy_revision", r->shadow_revision);
	gw_buf_add(b, "}", 1);
}

/* The token's groups, capped; a cut list says how long it was. */
static void
put_groups(struct gw_buf *b, const struct gw_audit_rec *r)
{
	size_t i;

	aud_key(b, "groups");
	if (r->groups == NULL) {
		gw_buf_add(b, "null", 4);
		return;
	}
	gw_buf_add(b, "[", 1);
	for (i = 0; i < r->ngroups && i < CAP_GROUPS; i++) {
		if (i > 0)
			gw_buf_add(b, ",", 1);
		if (put_capped(b, r->groups[i], CAP_TEXT) == -1)
			b->overflow = 1;
	}
	if (r->ngroups > CAP_GROUPS)
		gw_buf_printf(b, ",\"...[truncated %zu values]\"", r->ngroups);
	gw_buf_add(b, "]", 1);
}

/* {"name": [values...] or null, ...}, names and values capped. */
static void
put_kvs(struct gw_buf *b, const char *k, const struct gw_kv *kv, size_t n)
{
	size_t i, j;

	aud_key(b, k);
	gw_buf_add(b, "{", 1);
	for (i = 0; i < n; i++) {
		aud_key(b, kv[i].key);
		if (kv[i].values == NULL) {
			gw_buf_add(b, "null", 4);
			continue;
		}
		gw_buf_add(b, "[", 1);
		for (j = 0; j < kv[i].nvalues && j < CAP_GROUPS; j++) {
			if (j > 0)
				gw_buf_add(b, ",", 1);
			if (put_capped(b, kv[i].values[j], CAP_TEXT) == -1)
				b->overflow = 1;
		}
		if (kv[i].nvalues > CAP_GROUPS)
			gw_buf_printf(b, ",\"...[truncated %zu values]\"",
			              kv[i].nvalues);
		gw_buf_add(b, "]", 1);
	}
	gw_buf_add(b, "}", 1);
}

/* What the policies read: the claims they reference, the context. */
static void
put_policy_input(struct gw_buf *b, const struct gw_audit_rec *r)
{
	if (r->nclaims == 0 && r->nctx == 0)
		return;
	aud_key(b, "policy_input");
	gw_buf_add(b, "{", 1);
	put_kvs(b, "claims", r->claims, r->nclaims);
	put_kvs(b, "context", r->ctx, r->ctx != NULL ? r->nctx : 0);
	gw_buf_add(b, "}", 1);
}

/*
 * The record's content, written straight into buf (no JSON object tree:
 * this runs for every request, see bench/README.md).  extra, a JSON
 * object's text or NULL, is the "summary" member of a summary record or
 * the "checkpoint" member of a checkpoint record.
 * Returns 0, or -1 with buf's contents undefined.
 */
int
aud_format(const struct gw_audit_rec *r, const char *extra, struct gw_buf *buf)
{
	char when[40];
	size_t i;

	if ((unsigned)r->phase >= GW_AUDIT_PHASE__MAX)
		return -1;
	gw_buf_add(buf, "{", 1);
	/* "phase" first: the chain header is spliced in before it. */
	aud_str(buf, "phase", phasename[r->phase]);
	gw_fmt_time_ms(r->time_ms, when, sizeof(when));
	aud_str(buf, "time", when);
	aud_str(buf, "instance", r->instance);
	aud_str(buf, "request_id", r->request_id);
	aud_cap(buf, "client_addr", r->client_addr, CAP_ADDR);
	aud_str(buf, "method", r->method);
	aud_cap(buf, "path", r->path, CAP_PATH);
	aud_str(buf, "subject", r->subject);
	if (r->team != NULL)
		aud_str(buf, "team", r->team);
	aud_str(buf, "issuer", r->issuer);
	aud_str(buf, "jti", r->jti);
	aud_str(buf, "token_fp", r->token_fp);
	put_groups(buf, r);
	aud_str(buf, "action", r->action);
	aud_str(buf, "resource", r->resource);
	aud_str(buf, "project", r->project);
	aud_str(buf, "decision", r->decision);
	put_stmt(buf, "statement", r->stmt_file, r->stmt_sid);
	aud_key(buf, "statements");
	gw_buf_add(buf, "[", 1);
	for (i = 0; i < r->nstmts; i++)
		put_stmt(buf, NULL, r->stmt_files[i], r->stmt_sids[i]);
	gw_buf_add(buf, "]", 1);
	aud_str(buf, "policy_revision", r->policy_revision);
	put_shadow(buf, r);
	aud_int(buf, "status", r->status, r->status == 0);
	aud_str(buf, "error_code", r->error_code);
	aud_str(buf, "error_field", r->error_field);
	if (r->auth_error != NULL)
		aud_str(buf, "auth_error", r->auth_error);
	aud_str(buf, "credentials", r->cred_name);
	aud_str(buf, "credential_fp", r->cred_fp);
	if (r->coalesced)
		put_raw(buf, "coalesced", "true");
	if (r->cached)
		put_raw(buf, "cached", "true");
	if (r->task_subject != NULL) {
		aud_str(buf, "task_issuer", r->task_issuer);
		aud_str(buf, "task_subject", r->task_subject);
	}
	put_policy_input(buf, r);
	put_upstream(buf, r);
	if (extra != NULL)
		put_raw(buf,
		        r->phase == GW_AUDIT_CHECKPOINT ? "checkpoint"
		                                        : "summary",
		        extra);
	aud_key(buf, "latency_ms");
	gw_buf_add(buf, "{", 1);
	put_ms(buf, "auth", r->lat_auth_us);
	put_ms(buf, "policy", r->lat_policy_us);
	put_ms(buf, "upstream", r->lat_upstream_us);
	put_ms(buf, "total", r->lat_total_us);
	gw_buf_add(buf, "}}", 2);
	return buf->overflow ? -1 : 0;
}

/*
 * "phase" is the first member after the chain header (aud_format), so
 * only the line's head is looked at.
 */
int
aud_is_checkpoint(const char *line, size_t len)
{
	static const char mark[] = ",\"phase\":\"checkpoint\"";
	size_t i, n = sizeof(mark) - 1;

	for (i = 0; i + n <= len && i < 200; i++)
		if (memcmp(line + i, mark, n) == 0)
			return 1;
	return 0;
}

int
gw_audit_format(const struct gw_audit_rec *r, struct gw_buf *buf)
{
	return aud_format(r, NULL, buf);
}
