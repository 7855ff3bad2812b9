/*
 * Audit record formatting (audit_format.c): a record's line is written
 * straight into a buffer, strings capped and made valid UTF-8.  audit.c
 * chains and commits the lines and writes its summary records with the
 * same member writers.  Internal to the audit module.
 */
#ifndef GW_AUDIT_INT_H
#define GW_AUDIT_INT_H

#include <stddef.h>

#include "audit.h"

/* Caps on strings copied into a record (bytes, before JSON escaping). */
#define CAP_TEXT   256
#define CAP_PATH   512
#define CAP_ADDR   64
#define CAP_FILE   1024
#define CAP_GROUPS 32 /* values of the groups claim */

/* Lowercase hex of a SHA-256 digest. */
void aud_hex32(const unsigned char *md, char out[GW_AUDIT_HASH_HEX + 1]);
/*
 * Members: each appends ,"k": (no comma right after an opening brace or
 * bracket) and a value; a failed append leaves the buffer's overflow
 * flag set for the caller to check once.
 */
void aud_key(struct gw_buf *, const char *k);
void aud_cap(struct gw_buf *, const char *k, const char *v, size_t cap);
void aud_str(struct gw_buf *, const char *k, const char *v);
void aud_int(struct gw_buf *, const char *k, long long v, int absent);
/* A record's content; summary: a JSON object's text or NULL. 0 or -1. */
int aud_format(const struct gw_audit_rec *, const char *summary,
               struct gw_buf *);

#endif
