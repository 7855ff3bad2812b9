/*
 * Audit record formatting (audit_format.c): a record's line is written
 * straight into a buffer, strings capped and made valid UTF-8.  audit.c
 * chains and commits the lines and writes its summary records with the
 * same member writers.  Internal to the audit module.
 */
#ifndef GW_AUDIT_INT_H
#define GW_AUDIT_INT_H

#include <stddef.h>

#include <openssl/evp.h>

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
/*
 * A record's content; extra: a JSON object's text or NULL, the record's
 * "summary" member (or "checkpoint" for a checkpoint record).  0 or -1.
 */
int aud_format(const struct gw_audit_rec *, const char *extra, struct gw_buf *);
/* 1 when a record line (no newline) is a "checkpoint" record, else 0. */
int aud_is_checkpoint(const char *line, size_t len);

/* Signed checkpoints (audit_sign.c; docs/AUDIT.md). */
#define AUD_SIG_B64    88 /* base64 of an Ed25519 signature, "=="-padded */
#define AUD_KEY_ID_HEX 16 /* hex of SHA-256(raw public key), first 8 bytes */
/* An Ed25519 key (private: 1) from a PEM file; NULL + reason, no secret. */
EVP_PKEY *aud_sign_key_load(const char *path, int private, char *err,
                            size_t errlen);
/* The key's id (its public half's); 0 or -1. */
int aud_sign_key_id(EVP_PKEY *, char out[AUD_KEY_ID_HEX + 1]);
/* Appends the bytes a checkpoint signs to out; 0 or -1. */
int aud_sign_canon(long long seq, const char *hash, const char *prev,
                   const char *instance, struct gw_buf *out);
/* Signs msg into base64 out; 0 or -1. */
int aud_sign(EVP_PKEY *, const struct gw_buf *msg, char out[AUD_SIG_B64 + 1]);
/* 1 when b64 is pub's signature of msg, else 0. */
int aud_sign_check(EVP_PKEY *pub, const struct gw_buf *msg, const char *b64);
/* Appends the record's "checkpoint" member (a JSON object); 0 or -1. */
int aud_sign_member(long long seq, const char *hash, const char *prev,
                    const char *key_id, const char *sig, struct gw_buf *out);

#endif
