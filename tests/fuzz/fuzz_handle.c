/*
 * libFuzzer harness for task handles (gw_task_open).  The first input
 * byte picks the mode: odd, the rest is a raw handle; an accepted one
 * would mean a forged HMAC and aborts.  Even, the rest is split at NUL
 * bytes into task_id, project, iss and sub, sealed with the random key,
 * and must open with the same fields, naming exactly that creator and
 * no other subject.  The key is random per process.
 * Looks for crashes, leaks, UB and round-trip or binding failures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "tasks.h"

#define NOW 1700000000000LL

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct gw_task_key *key;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char k[GW_TASK_KEY_MIN];

	(void)argc;
	(void)argv;
	if (RAND_bytes(k, sizeof(k)) != 1)
		abort();
	key = gw_task_key_new(k, sizeof(k));
	if (key == NULL)
		abort();
	return 0;
}

/* The next NUL-terminated field of [*p, end), at most cap - 1 bytes. */
static void
field(const uint8_t **p, const uint8_t *end, char *out, size_t cap)
{
	size_t n = 0;

	while (*p < end && **p != '\0' && n + 1 < cap)
		out[n++] = (char)*(*p)++;
	out[n] = '\0';
	while (*p < end && **p != '\0')
		(*p)++;
	if (*p < end)
		(*p)++;
}

static void
sealed(const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	char tid[GW_TASK_ID_MAX + 2], proj[GW_TASK_PROJECT_MAX + 2];
	char iss[128], sub[128], other[130], eps[GW_TASK_EPS_MAX + 2];
	char h[GW_TASK_HANDLE_MAX + 1];
	struct gw_task_ref ref;

	field(&p, end, tid, sizeof(tid));
	field(&p, end, proj, sizeof(proj));
	field(&p, end, iss, sizeof(iss));
	field(&p, end, sub, sizeof(sub));
	field(&p, end, eps, sizeof(eps)); /* "": no enterprise project */
	if (gw_task_seal(key, tid, proj, eps[0] != '\0' ? eps : NULL, iss, sub,
	                 NOW, h, sizeof(h)) == -1)
		return; /* a field out of bounds */
	if (gw_task_open(key, h, &ref) != 0 || strcmp(ref.task_id, tid) != 0 ||
	    strcmp(ref.project, proj) != 0 || ref.created_ms != NOW ||
	    !ref.has_eps || strcmp(ref.eps, eps) != 0 ||
	    !gw_task_is_creator(&ref, iss, sub))
		abort(); /* a handle we minted must open as minted */
	snprintf(other, sizeof(other), "%sx", sub);
	if (gw_task_is_creator(&ref, iss, other))
		abort(); /* names sub: nobody else is its creator */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char h[GW_TASK_HANDLE_MAX + 2];
	struct gw_task_ref ref;
	size_t n;

	if (len == 0)
		return 0;
	if ((data[0] & 1) == 0) {
		sealed(data + 1, len - 1);
		return 0;
	}
	n = len - 1 < sizeof(h) - 1 ? len - 1 : sizeof(h) - 1;
	memcpy(h, data + 1, n);
	h[n] = '\0';
	if (gw_task_open(key, h, &ref) == 0)
		abort(); /* forged without the key */
	return 0;
}
