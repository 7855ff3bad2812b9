/*
 * hss-emulator: a strict stand-in for Huawei Cloud HSS
 * POST /v5/{project_id}/image/baseline/export and for IAM's
 * POST /v3/auth/tokens, served over FastCGI behind nginx (TLS) for the
 * integration tests.  HSS requests authenticate with a configured or
 * IAM-issued X-Auth-Token, or an SDK-HMAC-SHA256 signature.  It checks every
 * request the way the real service does (/work/shared/reference: the API page
 * and the SDK notes), records each request it receives as one JSON line, and
 * misbehaves on demand through /_emulator/control.
 *
 * It owns the config (immutable after load, shared read-only by the
 * workers), the record file and the failure-injection state (one mutex).
 * It must never crash or exit on any request input, and never be deployed
 * in front of real credentials: it records tokens in full on purpose, so
 * the tests can assert exactly what hssgw sent.
 *
 * This header is internal to the emulator: its limits, the shared types
 * and the functions one file calls in another.  emu_main.c (config,
 * threads, main), emu_http.c (requests, JSON, answers, the record file),
 * emu_faults.c (failure injection, /_emulator/ control), emu_iam.c (IAM
 * tokens, AK/SK), emu_export.c (the export API), emu_tasks.c (task status,
 * downloads, the per-minute limit).  docs/EMULATOR.md lists every
 * behaviour; keep the two in step.
 */
#ifndef HSSGW_EMU_H
#define HSSGW_EMU_H

#include <pthread.h>
#include <stddef.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "gw.h"

#define EMU_BODY_MAX ((size_t)1024 * 1024) /* brief: over 1 MiB -> 413 */
#define EMU_DRAIN_MAX                                                          \
	((size_t)64 * 1024 * 1024) /* read and drop past the cap */
#define EMU_CTL_BODY_MAX   4096
#define EMU_CONF_MAX       ((size_t)1024 * 1024)
#define EMU_PATH_MAX       8192
#define EMU_PID_MAX        256   /* API page, Table 1: 1 to 256 chars */
#define EMU_TOKEN_MAX      32768 /* API page, Table 3: 1 to 32,768 chars */
#define EMU_REGION_MAX     128   /* API page, Table 3: 1 to 128 chars */
#define EMU_RECORD_MAX     2147483647LL /* API page, Table 5 */
#define EMU_HDR_MAX        256
#define EMU_HDR_BYTES      ((size_t)256 * 1024)
#define EMU_HDR_NAME_MAX   256
#define EMU_THREADS_MAX    64
#define EMU_THREADS_DEF    4
#define EMU_PROJECTS_MAX   1024
#define EMU_TOKENS_MAX     1024
#define EMU_DELAY_MAX      300000LL
#define EMU_COUNT_MAX      1000000000LL
#define EMU_GRACE_MS       500
#define EMU_DROP_STATUS    444 /* what nginx's "return 444" gives */
#define EMU_PRINCIPALS_MAX 256
#define EMU_ISSUED_MAX     ((size_t)1 << 20)
#define EMU_TTL_DEF        86400LL /* hss-api-notes.md 4.1: 24 hours */
#define EMU_TTL_MAX        86400LL
#define EMU_SDK_WINDOW_MS  (15 * 60 * 1000LL) /* 5: 15 minutes */
#define EMU_TASKS_MAX      4096
#define EMU_LIMIT_MAX      600 /* hss-api-notes.md 6: 600 per API */

#define EMU_EXPORT_PREFIX "/v5/"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* "/v5/": the HSS APIs' common path prefix (emu_http.c). */
extern const char emu_export_prefix[sizeof(EMU_EXPORT_PREFIX)];

/* The emulator's own answers, in the order the export checks run. */
enum emu_err {
	EE_NOT_FOUND,
	EE_METHOD,
	EE_NO_TOKEN,
	EE_BAD_TOKEN,
	EE_TOKEN_EXPIRED,
	EE_AKSK,
	EE_DENIED,
	EE_PARAM,
	EE_PARSE,
	EE_TOO_LARGE,
	EE_CONTROL,
	EE_INTERNAL,
	EE__MAX
};

/* One answer's status, error code and message. */
struct emu_errdef {
	int status;
	const char *code;
	const char *msg;
};

enum emu_mode {
	MODE_OK = 0,
	MODE_DELAY,
	MODE_STATUS,
	MODE_MALFORMED,
	MODE_DROP,
	MODE__MAX
};

/* A JSON object's allowed keys: unknown keys are errors. */
struct emu_key {
	const char *name;
	enum json_type type;
	int required;
};

/* Process lifetime: loaded once, read-only afterwards. */
struct emu_project {
	char *id;
	char **tokens;
	size_t *toklens;
	size_t ntokens;
};

struct emu_principal {
	char *name;
	char *domain; /* NULL for AK/SK */
	char *secret; /* NULL for agencies */
	size_t secretlen;
	char **projects;
	size_t nprojects;
};

struct emu_conf {
	struct emu_project *projects;
	size_t nprojects;
	long long record_total_num;
	struct emu_principal *users, *agencies, *aksks;
	size_t nusers, nagencies, naksks;
	long long token_ttl_s;
};

/* A token IAM issued; project "" for a domain-scoped token. */
struct emu_token {
	char tok[80];
	char fp[17]; /* gw_fingerprint, as hssgw's audit shows it */
	char project[EMU_PID_MAX + 1];
	char domain[129];
	long long issued_ms;
	long long expires_ms;
	int revoked;
};

/* The APIs the per-minute limit counts separately. */
enum emu_api { API_EXPORT, API_STATUS, API_FILE, API__MAX };

/* An export task; created by an accepted export. */
/* Reference, table 2: enterprise_project_id is 1..256 characters. */
#define EMU_EPS_MAX 1024

struct emu_task {
	char id[33];
	char file_id[33];
	char project[EMU_PID_MAX + 1];
	/* enterprise_project_id of the export, decoded; "" when none. */
	char eps[EMU_EPS_MAX + 1];
	long long created_ms;
	long long delay_ms;
	long long file_bytes;
	int fail;
};

/* The last EMU_LIMIT_MAX calls of one API. */
struct emu_window {
	long long t[EMU_LIMIT_MAX];
};

/* The failure injection in force; remaining -1 means until changed. */
struct emu_inject {
	enum emu_mode mode;
	long long delay_ms;
	long long status;
	long long remaining;
	long long retry_after; /* mode status: Retry-After seconds, 0: none */
};

struct emu {
	const struct emu_conf *conf;
	int listenfd;
	int logfd;
	pthread_mutex_t loglock;
	/* failure injection and its counters */
	pthread_mutex_t lock;
	struct emu_inject inj;
	long long exports;  /* export requests taken (POST on the path) */
	long long injected; /* of those, served under a mode other than ok */
	/* lifecycle */
	pthread_mutex_t life;
	pthread_cond_t lifecv;
	int stopping;
	int alive;
	int busy;
	/* IAM: issued tokens and the call counter */
	pthread_mutex_t iamlock;
	struct emu_token *issued;
	size_t nissued, capissued;
	long long iam_calls;
	/* export tasks and the per-minute limit (tlock) */
	pthread_mutex_t tlock;
	struct emu_task *tasks;
	size_t ntasks;
	long long task_delay_ms, file_bytes, limit, throttled;
	int task_fail;
	long long calls[API__MAX];
	struct emu_window win[API__MAX];
};

/* Request lifetime. */
struct emu_req {
	char **envp;
	const char *method;
	const char *query;
	char path[EMU_PATH_MAX];
	int path_over;
	struct gw_buf body;
	int body_over;
	char reqid[33];
	int redact_body; /* IAM requests carry passwords: not recorded */
};

enum emu_kind {
	ANS_ERROR,
	ANS_SUCCESS,
	ANS_MALFORMED,
	ANS_DROP,
	ANS_RAW,
	ANS_FILE
};

struct emu_answer {
	enum emu_kind kind;
	int status;
	char code[32];
	char msg[512];
	const char *allow;     /* Allow header for 405 */
	long long retry_after; /* > 0: a Retry-After header */
	long long delay_ms;
	char *raw;            /* ANS_RAW body, owned */
	char *subject_token;  /* IAM: X-Subject-Token header, owned */
	char task[33];        /* ANS_SUCCESS: the task created */
	struct emu_task file; /* ANS_FILE: the file to stream */
};

/* emu_http.c: requests, JSON helpers, answers, the record file */
void emu_answer_err(struct emu_answer *a, enum emu_err err, const char *detail);
const char *emu_reason(int status);
struct json_object *emu_json_parse_strict(const char *p, size_t n, char *err,
                                          size_t errlen);
int emu_keys_check(struct json_object *obj, const struct emu_key *keys,
                   size_t nkeys, const char *where, char *err, size_t errlen);
int emu_int_key(struct json_object *obj, const char *name, long long min,
                long long max, long long *out, char *err, size_t errlen);
const char *emu_param_get(char **envp, const char *name, size_t *count);
int emu_media_is_json(const char *ct);
void emu_token_scan(const struct emu_conf *c, const char *tok, size_t len,
                    long pidx, int *known, int *mine);
long emu_project_find(const struct emu_conf *c, const char *pid, size_t len);
void emu_sleep_ms(long long ms);
void emu_handle(struct emu *e, FCGX_Request *fr);

/* emu_faults.c: failure injection and /_emulator/control, reset */
void emu_inject_reset(struct emu_inject *i);
void emu_inject_take(struct emu *e, struct emu_inject *out);
void emu_answer_injected(struct emu_answer *a, int status);
void emu_handle_control(struct emu *e, struct emu_req *r, struct emu_answer *a);

/* emu_iam.c: IAM tokens and AK/SK signatures */
void emu_handle_iam(struct emu *e, struct emu_req *r, struct emu_answer *a);
int emu_aksk_verify(struct emu *e, struct emu_req *r, const char *auth,
                    const char *pid, struct emu_answer *a);
int emu_issued_check(struct emu *e, const char *tok, const char *pid,
                     size_t pidlen, struct emu_answer *a);
void emu_handle_revoke(struct emu *e, struct emu_req *r, struct emu_answer *a);
void emu_handle_iam_calls(struct emu *e, struct emu_answer *a);

/* emu_export.c: the export API */
void emu_handle_export(struct emu *e, struct emu_req *r, const char *pid,
                       size_t pidlen, struct emu_answer *a);

/* emu_tasks.c: export tasks, downloads and the per-minute limit */
int emu_task_new(struct emu *e, const char *pid, size_t pidlen,
                 const char *query, char task[33]);
/*
 * The decoded enterprise_project_id of a raw query string into out (cap
 * EMU_EPS_MAX + 1), "" when absent; 0, or -1 when malformed or too long.
 */
int emu_query_eps(const char *query, char *out, size_t cap);
int emu_limit_take(struct emu *e, enum emu_api api);
int emu_task_path(const char *path, const char **pid, size_t *pidlen,
                  const char **id);
void emu_handle_task(struct emu *e, struct emu_req *r, int api, const char *pid,
                     size_t pidlen, const char *id, struct emu_answer *a);
void emu_respond_file(FCGX_Request *fr, const struct emu_task *t,
                      const char *reqid);
void emu_handle_tasks_ctl(struct emu *e, struct emu_req *r,
                          struct emu_answer *a);

#endif /* HSSGW_EMU_H */
