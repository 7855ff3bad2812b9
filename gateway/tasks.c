/*
 * Task handles (tasks.h).  Layout, all base64url without padding:
 *
 *   handle  = b64(payload) "." b64(mac)
 *   payload = 0x01 | created_ms (8 bytes, big endian)
 *             | len16 task_id | len16 project
 *   mac     = HMAC-SHA256(key, "hssgw-task-v1" 0x00 | payload
 *                              | len16 iss | len16 sub)
 *
 * The caller's identity is bound by the MAC but not carried in the
 * handle, so a handle shows no subject and a handle presented by anyone
 * but its owner fails exactly like a forged one.  Owns the key bytes
 * (process lifetime, wiped on free); never logs or returns them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tasks.h"

#define TASK_VERSION 0x01
#define TASK_MAC_LEN 32
#define TASK_CTX     "hssgw-task-v1"
/* 1 + 8 + 2 + id + 2 + project */
#define TASK_PAYLOAD_MAX (13 + GW_TASK_ID_MAX + GW_TASK_PROJECT_MAX)

struct gw_task_key {
	unsigned char *k;
	size_t len;
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
	memcpy(b + *off, s, n);
	*off += n;
	return 0;
}

static int
mac(const struct gw_task_key *k, const unsigned char *payload, size_t plen,
    const char *iss, const char *sub, unsigned char out[TASK_MAC_LEN])
{
	unsigned char msg[sizeof(TASK_CTX) + TASK_PAYLOAD_MAX + 4 +
	                  GW_TASK_ISS_MAX + GW_TASK_SUB_MAX];
	unsigned int outl = 0;
	size_t off = sizeof(TASK_CTX);

	if (plen > TASK_PAYLOAD_MAX)
		return -1;
	memcpy(msg, TASK_CTX, sizeof(TASK_CTX)); /* NUL included */
	memcpy(msg + off, payload, plen);
	off += plen;
	if (put16(msg, &off, sizeof(msg), iss, GW_TASK_ISS_MAX) == -1 ||
	    put16(msg, &off, sizeof(msg), sub, GW_TASK_SUB_MAX) == -1)
		return -1;
	if (HMAC(EVP_sha256(), k->k, (int)k->len, msg, off, out, &outl) ==
	        NULL ||
	    outl != TASK_MAC_LEN)
		return -1;
	return 0;
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
             const char *project, const char *iss, const char *sub,
             int64_t now_ms, char *out, size_t cap)
{
	unsigned char p[TASK_PAYLOAD_MAX], m[TASK_MAC_LEN];
	size_t off = 0, o;
	int i;

	if (k == NULL || !field_ok(task_id, GW_TASK_ID_MAX) ||
	    !field_ok(project, GW_TASK_PROJECT_MAX) || iss == NULL ||
	    sub == NULL || now_ms < 0 || cap < GW_TASK_HANDLE_MAX + 1)
		return -1;
	p[off++] = TASK_VERSION;
	for (i = 7; i >= 0; i--)
		p[off++] = (unsigned char)((uint64_t)now_ms >> (8 * i));
	if (put16(p, &off, sizeof(p), task_id, GW_TASK_ID_MAX) == -1 ||
	    put16(p, &off, sizeof(p), project, GW_TASK_PROJECT_MAX) == -1 ||
	    mac(k, p, off, iss, sub, m) == -1)
		return -1;
	o = b64_enc(p, off, out);
	out[o++] = '.';
	o += b64_enc(m, sizeof(m), out + o);
	out[o] = '\0';
	return 0;
}

/* Reads a length-prefixed field into dst (cap max + 1); 0 or -1. */
static int
get16(const unsigned char *b, size_t len, size_t *off, char *dst, size_t max)
{
	size_t n;

	if (*off + 2 > len)
		return -1;
	n = (size_t)b[*off] << 8 | b[*off + 1];
	*off += 2;
	if (n < 1 || n > max || *off + n > len || memchr(b + *off, 0, n))
		return -1;
	memcpy(dst, b + *off, n);
	dst[n] = '\0';
	*off += n;
	return 0;
}

int
gw_task_open(const struct gw_task_key *k, const char *handle, const char *iss,
             const char *sub, struct gw_task_ref *ref)
{
	unsigned char p[TASK_PAYLOAD_MAX], got[TASK_MAC_LEN + 2],
	    want[TASK_MAC_LEN];
	struct gw_task_ref r;
	const char *dot;
	size_t hlen, off = 0;
	long plen, mlen;
	uint64_t t = 0;
	int i;

	if (k == NULL || handle == NULL || iss == NULL || sub == NULL)
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
	/* The MAC first: nothing of an unauthenticated payload is used. */
	if (mac(k, p, (size_t)plen, iss, sub, want) == -1 ||
	    !gw_ct_equal(want, sizeof(want), got, TASK_MAC_LEN))
		return -1;
	memset(&r, 0, sizeof(r));
	if (p[off++] != TASK_VERSION || (size_t)plen < off + 8)
		return -1;
	for (i = 0; i < 8; i++)
		t = t << 8 | p[off++];
	if (t > (uint64_t)INT64_MAX ||
	    get16(p, (size_t)plen, &off, r.task_id, GW_TASK_ID_MAX) == -1 ||
	    get16(p, (size_t)plen, &off, r.project, GW_TASK_PROJECT_MAX) ==
	        -1 ||
	    off != (size_t)plen)
		return -1;
	r.created_ms = (int64_t)t;
	*ref = r;
	return 0;
}
