/*
 * Audit: one JSON line per request, whatever its outcome, appended to the
 * configured file with a single write(2) under a lock so concurrent
 * records never interleave.  Records hold no secret: the upstream request
 * is serialized with secret headers redacted, and only a fingerprint of
 * the credential is kept.
 */
#ifndef GW_AUDIT_H
#define GW_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "gw.h"
#include "upreq.h"

struct gw_audit;

/* Every field may be NULL/zero when the request never got that far. */
struct gw_audit_rec {
	int64_t time_ms;
	const char *request_id;
	const char *client_addr;
	const char *method;
	const char *path;
	const char *subject;
	const char *issuer;
	const char *jti;
	const char *action;
	const char *resource;
	const char *project;
	const char *decision;  /* "allow", ... or NULL: not evaluated */
	const char *stmt_file; /* deciding statement, may be NULL */
	const char *stmt_sid;
	const char *policy_revision;
	int status;             /* HTTP status answered */
	const char *error_code; /* HSSGW.xxxx or HSS's, NULL on success */
	const char *error_field;
	const struct gw_upreq *upreq; /* what was sent, NULL if nothing */
	long up_status;               /* 0: no upstream answer */
	const char *up_error_code;    /* HSS error_code, if any */
	const char *task_id;
	long long record_total_num; /* -1: absent */
	const char *cred_name;
	const char *cred_fp;
	int64_t lat_auth_us, lat_policy_us, lat_upstream_us, lat_total_us;
};

/* Opens (creating, mode 0600) the audit file for appending; NULL + reason. */
struct gw_audit *gw_audit_open(const char *path, char *err, size_t errlen);
/* Closes; accepts NULL. */
void gw_audit_close(struct gw_audit *);
/* 1 when the trail can take records (last write succeeded), else 0. */
int gw_audit_ready(struct gw_audit *);
/*
 * Serializes a record to one JSON line (no trailing newline) in buf.
 * Returns 0 or -1.
 */
int gw_audit_format(const struct gw_audit_rec *, struct gw_buf *buf);
/* Formats and appends a record; GW_OK or GW_ERR_AUDIT with a reason. */
enum gw_err gw_audit_emit(struct gw_audit *, const struct gw_audit_rec *,
                          char *err, size_t errlen);

#endif
