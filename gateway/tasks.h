/*
 * Task handles: what hssgw gives a caller instead of a bare HSS task_id.
 * A handle is the task_id, the project alias and the caller's identity
 * (issuer and subject) bound together by HMAC-SHA256 under a key only the
 * gateway holds (config "tasks.handle_key_file"), so every hssgw instance
 * sharing the key can verify it without shared memory (docs/TASKS.md).
 * A handle is signed, not encrypted: it reveals the task_id, which the
 * export answer shows anyway.  Verification is constant time and every
 * failure looks the same to the caller.  Never returns or logs the key.
 */
#ifndef GW_TASKS_H
#define GW_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "gw.h"

/* The longest handle we mint or accept, NUL excluded. */
#define GW_TASK_HANDLE_MAX 1024
/* Bounds on the bound fields (task_id: reference 1.4 / 2.1, 1..256). */
#define GW_TASK_ID_MAX      256
#define GW_TASK_PROJECT_MAX 64
#define GW_TASK_ISS_MAX     1024
#define GW_TASK_SUB_MAX     1024
/* Handle keys: at least 32 bytes, at most 1024. */
#define GW_TASK_KEY_MIN 32
#define GW_TASK_KEY_MAX 1024

struct gw_task_key;

/* What a verified handle names (the caller it binds is checked, not kept). */
struct gw_task_ref {
	char task_id[GW_TASK_ID_MAX + 1];
	char project[GW_TASK_PROJECT_MAX + 1];
	int64_t created_ms;
};

/*
 * Loads the handle key from a secret file (owner, mode checked): its
 * bytes, trailing newline trimmed, 32..1024 bytes.  NULL with a reason.
 */
struct gw_task_key *gw_task_key_load(const char *path, char *err,
                                     size_t errlen);
/* A key from bytes (tests, and a random key when none is configured). */
struct gw_task_key *gw_task_key_new(const void *key, size_t len);
/* Frees a key, wiping it; accepts NULL. */
void gw_task_key_free(struct gw_task_key *);

/*
 * Mints the handle of task_id in project for (iss, sub) at now_ms into
 * out (cap >= GW_TASK_HANDLE_MAX + 1): only [A-Za-z0-9_-.] characters.
 * Returns 0, or -1 when a field is out of bounds.
 */
int gw_task_seal(const struct gw_task_key *, const char *task_id,
                 const char *project, const char *iss, const char *sub,
                 int64_t now_ms, char *out, size_t cap);
/*
 * Verifies a handle for the caller (iss, sub): 0 and *ref filled when the
 * MAC is right and the handle was minted for this caller; -1 for anything
 * else (malformed, forged, foreign), with no hint which.
 */
int gw_task_open(const struct gw_task_key *, const char *handle,
                 const char *iss, const char *sub, struct gw_task_ref *ref);

#endif
