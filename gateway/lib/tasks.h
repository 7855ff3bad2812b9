/*
 * Task handles: what hssgw gives a caller instead of a bare HSS task_id.
 * A handle carries the task_id, the project alias and the creator's
 * identity (issuer and subject), signed with HMAC-SHA256 under a key only
 * the gateway holds (config "tasks.handle_key_file"), so every hssgw
 * instance sharing the key can verify it without shared memory
 * (docs/TASKS.md).  A handle is signed, not encrypted: it shows the
 * task_id and its creator's subject.  Whether a caller may act for the
 * creator is the pipeline's question (policy action hss:ActForSubject);
 * this module only says who created it.  Verification is constant time
 * and every failure looks the same.  Never returns or logs the key.
 */
#ifndef GW_TASKS_H
#define GW_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "gw.h"

/* The longest handle we mint or accept, NUL excluded. */
#define GW_TASK_HANDLE_MAX 2304
/* Bounds on the bound fields (task_id: reference 1.4 / 2.1, 1..256). */
#define GW_TASK_ID_MAX      256
#define GW_TASK_PROJECT_MAX 64
#define GW_TASK_ISS_MAX     512 /* a longer iss or sub gets no handle */
#define GW_TASK_SUB_MAX     512
#define GW_TASK_EPS_MAX     256 /* reference, table 2: 1..256 */
/* Handle keys: at least 32 bytes, at most 1024. */
#define GW_TASK_KEY_MIN 32
#define GW_TASK_KEY_MAX 1024

struct gw_task_key;

/* What a verified handle names: the task and who created it. */
struct gw_task_ref {
	char task_id[GW_TASK_ID_MAX + 1];
	char project[GW_TASK_PROJECT_MAX + 1];
	char iss[GW_TASK_ISS_MAX + 1]; /* the creator's issuer */
	char sub[GW_TASK_SUB_MAX + 1]; /* and subject */
	/*
	 * The enterprise project the export was made under ("" when none
	 * was sent); status and download go under the same one (has_eps
	 * 1).  A version 2 handle does not carry it: has_eps 0, and the
	 * project's configured default applies, as it did when it was made.
	 */
	char eps[GW_TASK_EPS_MAX + 1];
	int has_eps;
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
 * Mints the handle of task_id in project under enterprise project eps
 * (NULL: none was sent) created by (iss, sub) at now_ms into out (cap >=
 * GW_TASK_HANDLE_MAX + 1): only [A-Za-z0-9_-.] characters.  Returns 0,
 * or -1 when a field is out of bounds.
 */
int gw_task_seal(const struct gw_task_key *, const char *task_id,
                 const char *project, const char *eps, const char *iss,
                 const char *sub, int64_t now_ms, char *out, size_t cap);
/*
 * Verifies a handle: 0 and *ref filled (task, project, creator) when the
 * MAC is right; -1 for anything else (malformed, forged, another key),
 * with no hint which.  Whether the caller may use it is not decided here.
 */
int gw_task_open(const struct gw_task_key *, const char *handle,
                 struct gw_task_ref *ref);
/* 1 when (iss, sub) is the creator named in ref, else 0. */
int gw_task_is_creator(const struct gw_task_ref *ref, const char *iss,
                       const char *sub);

/*
 * How long to wait before retry number attempt (0-based) after HSS
 * answered 429: its Retry-After when it sent one (retry_after_s > 0),
 * else 2 s, 4 s, 8 s, then 16 s.  The caller caps it by its deadline.
 */
int64_t gw_task_retry_delay_ms(int attempt, long long retry_after_s);

#endif
