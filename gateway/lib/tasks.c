/*
 * Task handles (tasks.h).
 * Handle layout, all base64url without padding:
 *
 *   handle  = b64(payload) "." b64(mac)
 *   payload = 0x03 | created_ms (8 bytes, big endian)
 *             | len16 task_id | len16 project | len16 eps | len16 iss
 *             | len16 sub
 *   mac     = HMAC-SHA256(key, "hssgw-task-v3" 0x00 | payload)
 *
 * Version 3 adds the enterprise project the export was made under (eps,
 * length 0 when none was sent), so status and download ask HSS under the
 * same one (#16).  Version 2 (no eps, context "hssgw-task-v2") still
 * opens, with has_eps 0: those tasks were made before the allow-list,
 * under the project's default, and are polled under it as before; a v2
 * handle cannot be re-labelled v3 because the MAC context differs.
 * Version 1 handles (creator only inside the MAC) no longer open.
 * Length prefixes keep ("ab","c") and ("a","bc") apart.  Owns the key
 * bytes (process lifetime, wiped on free); never logs or returns them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "tasks.h"

#define TASK_VERSION    0x03
#define TASK_VERSION_V2 0x02
#define TASK_MAC_LEN    32
#define TASK_CTX        "hssgw-task-v3"
#define TASK_CTX_V2     "hssgw-task-v2"
/* 1 + 8 + 2 + id + 2 + project + 2 + eps + 2 + iss + 2 + sub */
#define TASK_PAYLOAD_MAX                                                       \
	(19 + GW_TASK_ID_MAX + GW_TASK_PROJECT_MAX + GW_TASK_EPS_MAX +         \
	 GW_TASK_ISS_MAX + GW_TASK_SUB_MAX)
_Static_assert((TASK_PAYLOAD_MAX + 2) / 3 * 4 + 1 + 43 <= GW_TASK_HANDLE_MAX,
               "the longest payload must fit a handle");

struct gw_task_key {
	unsigned char *k;
	size_t len;
	EVP_MAC_CTX *mac; /* HMAC-SHA-256 keyed with k */
};

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

struct gw_task_key *
gw_task_key_new(const void *key, size_t len)
{
	struct gw_task_key *k = NULL;

	if (key == NULL || len < GW_TASK_KEY_MIN || len > GW_TASK_KEY_MAX)
		return NULL;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return NULL;
	k->k = malloc(len);
	if (k->k == NULL) {
		free(k);
		return NULL;
	}
	memcpy(k->k, key, len);
	k->len = len;
	k->mac = gw_hmac_sha256_new(k->k, k->len);
	if (k->mac == NULL) {
		gw_task_key_free(k);
		return NULL;
	}
	return k;
}

struct gw_task_key *
gw_task_key_load(const char *path, char *err, size_t errlen)
{
	struct gw_task_key *k = NULL;
	char *text = NULL;
	size_t len = 0;

	if (gw_read_file(path, GW_TASK_KEY_MAX + 2, 1, &text, &len, err,
	                 errlen) == -1)
		goto out;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (len < GW_TASK_KEY_MIN || len > GW_TASK_KEY_MAX) {
		snprintf(err, errlen, "%s: a handle key must be %d to %d bytes",
		         path, GW_TASK_KEY_MIN, GW_TASK_KEY_MAX);
		goto out;
	}
	k = gw_task_key_new(text, len);
	if (k == NULL)
		snprintf(err, errlen, "out of memory");
out:
	if (text != NULL) {
		gw_wipe(text, len);
		free(text);
	}
	return k;
}

void
gw_task_key_free(struct gw_task_key *k)
{
	if (k == NULL)
		return;
	EVP_MAC_CTX_free(k->mac);
	if (k->k != NULL) {
		gw_wipe(k->k, k->len);
		free(k->k);
	}
	free(k);
}

static size_t
b64_enc(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;
	unsigned v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 |
		    in[i + 2];
		out[o++] = b64chars[v >> 18 & 63];
		out[o++] = b64chars[v >> 12 & 63];
		out[o++] = b64chars[v >> 6 & 63];
		out[o++] = b64chars[v & 63];
	}
	if (n - i == 1) {
		v = (unsigned)in[i] << 16;
		out[o++] = b64chars[v >> 18 & 63];
		out[o++] = b64chars[v >> 12 & 63];
	} else if (n - i == 2) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = b64chars[v >> 18 & 63];
		out[o++] = b64chars[v >> 12 & 63];
		out[o++] = b64chars[v >> 6 & 63];
	}
	return o;
}

static int
b64_val(char c)
{
	const char *p = c != '\0' ? strchr(b64chars, c) : NULL;

	return p != NULL ? (int)(p - b64chars) : -1;
}

/* Strict base64url: no padding, no stray bits.  Bytes written or -1. */
static long
b64_dec(const char *in, size_t n, unsigned char *out, size_t cap)
{
	size_t i, o = 0;
	unsigned v = 0;
	int bits = 0, d;

	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i++) {
		d = b64_val(in[i]);
		if (d < 0)
			return -1;
		v = (v << 6 | (unsigned)d) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return -1;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	/* Leftover bits must be zero, so each handle has one spelling. */
	if (bits > 0 && (v & ((1u << bits) - 1)) != 0)
		return -1;
	return (long)o;
}

static int
put16(unsigned char *b, size_t *off, size_t cap, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max || *off + 2 + n > cap)
		return -1;
	b[(*off)++] = (unsigned char)(n >> 8);
	b[(*off)++] = (unsigned char)n;
	/* Length-prefixed bytes, not a C string: no NUL is meant. */
	memcpy(b + *off, s, n); // NOLINT(bugprone-not-null-terminated-result)
	*off += n;
	return 0;
}

/* ctx is TASK_CTX or TASK_CTX_V2, both of the same length. */
static int
mac(const struct gw_task_key *k, const char *ctx, const unsigned char *payload,
    size_t plen, unsigned char out[TASK_MAC_LEN])
{
	unsigned char msg[sizeof(TASK_CTX) + TASK_PAYLOAD_MAX];
	size_t off = sizeof(TASK_CTX);

	_Static_assert(sizeof(TASK_CTX) == sizeof(TASK_CTX_V2),
	               "contexts of one length");
	if (plen > TASK_PAYLOAD_MAX)
		return -1;
	memcpy(msg, ctx, sizeof(TASK_CTX)); /* NUL included */
	memcpy(msg + off, payload, plen);
	off += plen;
	_Static_assert(TASK_MAC_LEN == 32, "HMAC-SHA-256");
	return gw_hmac_sha256(k->mac, msg, off, out);
}

/* The characters HSS task ids and project aliases may hold in a handle. */
static int
field_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strlen(s);
	return n >= 1 && n <= max && gw_utf8_valid(s, n);
}

int
gw_task_seal(const struct gw_task_key *k, const char *task_id,
             const char *project, const char *eps, const char *iss,
             const char *sub, int64_t now_ms, char *out, size_t cap)
{
	unsigned char p[TASK_PAYLOAD_MAX], m[TASK_MAC_LEN];
	size_t off = 0, o;
	int i;

	if (k == NULL || !field_ok(task_id, GW_TASK_ID_MAX) ||
	    !field_ok(project, GW_TASK_PROJECT_MAX) ||
	    !field_ok(iss, GW_TASK_ISS_MAX) ||
	    !field_ok(sub, GW_TASK_SUB_MAX) ||
	    (eps != NULL && !field_ok(eps, GW_TASK_EPS_MAX)) || now_ms < 0 ||
	    cap < GW_TASK_HANDLE_MAX + 1)
		return -1;
	p[off++] = TASK_VERSION;
	for (i = 7; i >= 0; i--)
		p[off++] = (unsigned char)((uint64_t)now_ms >> (8 * i));
	if (put16(p, &off, sizeof(p), task_id, GW_TASK_ID_MAX) == -1 ||
	    put16(p, &off, sizeof(p), project, GW_TASK_PROJECT_MAX) == -1 ||
	    put16(p, &off, sizeof(p), eps != NULL ? eps : "",
	          GW_TASK_EPS_MAX) == -1 ||
	    put16(p, &off, sizeof(p), iss, GW_TASK_ISS_MAX) == -1 ||
	    put16(p, &off, sizeof(p), sub, GW_TASK_SUB_MAX) == -1 ||
	    mac(k, TASK_CTX, p, off, m) == -1)
		return -1;
	o = b64_enc(p, off, out);
	out[o++] = '.';
	o += b64_enc(m, sizeof(m), out + o);
	out[o] = '\0';
	return 0;
}

/*
 * Reads a length-prefixed field into dst (cap max + 1), at least min
 * bytes; 0 or -1.
 */
static int
get16(const unsigned char *b, size_t len, size_t *off, char *dst, size_t min,
      size_t max)
{
	size_t n;

	if (*off + 2 > len)
		return -1;
	n = (size_t)b[*off] << 8 | b[*off + 1];
	*off += 2;
	if (n < min || n > max || *off + n > len || memchr(b + *off, 0, n))
		return -1;
	memcpy(dst, b + *off, n);
	dst[n] = '\0';
	*off += n;
	return 0;
}

int
gw_task_open(const struct gw_task_key *k, const char *handle,
             struct gw_task_ref *ref)
{
	unsigned char p[TASK_PAYLOAD_MAX], got[TASK_MAC_LEN + 2],
	    want[TASK_MAC_LEN];
	struct gw_task_ref r;
	const char *dot;
	size_t hlen, off = 0;
	long plen, mlen;
	uint64_t t = 0;
	unsigned char v;
	int i;

	if (k == NULL || handle == NULL || ref == NULL)
		return -1;
	hlen = strnlen(handle, GW_TASK_HANDLE_MAX + 1);
	if (hlen > GW_TASK_HANDLE_MAX)
		return -1;
	dot = strchr(handle, '.');
	if (dot == NULL)
		return -1;
	plen = b64_dec(handle, (size_t)(dot - handle), p, sizeof(p));
	mlen = b64_dec(dot + 1, hlen - (size_t)(dot - handle) - 1, got,
	               sizeof(got));
	if (plen < 1 || mlen != TASK_MAC_LEN)
		return -1;
	/*
	 * The MAC first: nothing of an unauthenticated payload is used but
	 * its version byte, which picks the MAC context; a forged version
	 * byte changes the context and fails the MAC.
	 */
	v = p[0];
	if ((v != TASK_VERSION && v != TASK_VERSION_V2) ||
	    mac(k, v == TASK_VERSION ? TASK_CTX : TASK_CTX_V2, p, (size_t)plen,
	        want) == -1 ||
	    !gw_ct_equal(want, sizeof(want), got, TASK_MAC_LEN))
		return -1;
	memset(&r, 0, sizeof(r));
	off = 1;
	if ((size_t)plen < off + 8)
		return -1;
	for (i = 0; i < 8; i++)
		t = t << 8 | p[off++];
	if (t > (uint64_t)INT64_MAX ||
	    get16(p, (size_t)plen, &off, r.task_id, 1, GW_TASK_ID_MAX) == -1 ||
	    get16(p, (size_t)plen, &off, r.project, 1, GW_TASK_PROJECT_MAX) ==
	        -1 ||
	    (v == TASK_VERSION &&
	     get16(p, (size_t)plen, &off, r.eps, 0, GW_TASK_EPS_MAX) == -1) ||
	    get16(p, (size_t)plen, &off, r.iss, 1, GW_TASK_ISS_MAX) == -1 ||
	    get16(p, (size_t)plen, &off, r.sub, 1, GW_TASK_SUB_MAX) == -1 ||
	    off != (size_t)plen)
		return -1;
	r.has_eps = v == TASK_VERSION;
	r.created_ms = (int64_t)t;
	*ref = r;
	return 0;
}

int
gw_task_is_creator(const struct gw_task_ref *ref, const char *iss,
                   const char *sub)
{
	/* Not secret (the handle shows both): a plain compare will do. */
	return ref != NULL && iss != NULL && sub != NULL &&
	       strcmp(ref->iss, iss) == 0 && strcmp(ref->sub, sub) == 0;
}

int64_t
gw_task_retry_delay_ms(int attempt, long long retry_after_s)
{
	if (retry_after_s > 0)
		return (int64_t)retry_after_s * 1000; /* HSS knows best */
	if (attempt < 0)
		attempt = 0;
	return 2000LL << (attempt < 3 ? attempt : 3);
}
