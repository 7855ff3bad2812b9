/*
 * Basics: checked parsing, capped buffers, constant-time comparison, secret
 * wiping, capped and permission-checked file reads, clocks and time formats.
 * Owns nothing beyond what it hands to callers; never logs.
 */
#define _GNU_SOURCE
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "gw.h"

enum gw_err
gw_fault_set(struct gw_fault *f, enum gw_err err, const char *field,
             const char *fmt, ...)
{
	va_list ap;

	if (f == NULL)
		return err;
	f->err = err;
	snprintf(f->field, sizeof(f->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	return err;
}

int
gw_strtonum(const char *s, long long min, long long max, long long *out)
{
	char *end = NULL;
	long long v;

	if (s == NULL || *s == '\0' || min > max)
		return -1;
	/* strtoll accepts leading space and '+': strtonum(3) does not. */
	if (!(*s == '-' || (*s >= '0' && *s <= '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
gw_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return 0;
	if (alen == 0)
		return 1;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

void
gw_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

void
gw_secret_free(char *s)
{
	if (s == NULL)
		return;
	gw_wipe(s, strlen(s));
	free(s);
}

int
gw_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, len;
	unsigned int c;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf) {
			len = 2;
			c = p[i] & 0x1f;
		} else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			len = 3;
			c = p[i] & 0x0f;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			len = 4;
			c = p[i] & 0x07;
		} else
			return 0;
		if (n - i < len)
			return 0;
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and > U+10FFFF (RFC 3629). */
		if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
		    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
			return 0;
		i += len;
	}
	return 1;
}

static int
digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
gw_rfc3339_ms(const char *s, int64_t *out)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
	                            31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, oh, om, ms = 0, nd = 0, sign;
	int64_t t;
	const char *p;

	if (s == NULL || strlen(s) < 20)
		return -1;
	if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
	    s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	if (mo == 2 && d == 29 &&
	    !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	if (sec == 60)
		sec = 59; /* leap second: clamp, ms precision is enough */
	p = s + 19;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (nd < 3)
				ms = ms * 10 + (*p - '0');
			nd++;
			p++;
		}
		if (nd == 0 || nd > 9)
			return -1;
		while (nd < 3) {
			ms *= 10;
			nd++;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		oh = om = 0;
		sign = 1;
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		if (digits(p + 1, 2, &oh) || p[3] != ':' ||
		    digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		p += 6;
	} else
		return -1;
	if (*p != '\0')
		return -1;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (oh * 3600 + om * 60);
	*out = t * 1000 + ms;
	return 0;
}

void
gw_fmt_time_ms(int64_t ms, char *buf, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, cap, "invalid");
		return;
	}
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int64_t
gw_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
gw_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
gw_read_file(const char *path, size_t cap, int secret, char **out,
             size_t *outlen, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd = -1, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		snprintf(err, errlen,
		         "%s: secret file is accessible by group or others "
		         "(mode %03o); chmod 600 it",
		         path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (secret && st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(
		    err, errlen,
		    "%s: secret file is owned by uid %u, not the service user",
		    path, (unsigned)st.st_uid);
		goto out;
	}
	if ((size_t)st.st_size > cap) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, cap);
		goto out;
	}
	buf = malloc(cap + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		n = read(fd, buf + len, cap + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > cap) {
			snprintf(err, errlen, "%s: larger than %zu bytes", path,
			         cap);
			goto out;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		gw_wipe(buf, len);
		free(buf);
	}
	if (fd != -1)
		close(fd);
	return rc;
}

int
gw_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
gw_sync_dir(const char *path)
{
	char *copy;
	int fd, rc;

	copy = strdup(path);
	if (copy == NULL)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

void
gw_buf_init(struct gw_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

/* Room for n more bytes and a NUL; 0, or -1 with the overflow flag set. */
static int
buf_grow(struct gw_buf *b, size_t n)
{
	size_t ncap;
	char *np;

	if (b->overflow)
		return -1;
	if (n > b->max || b->len > b->max - n) {
		b->overflow = 1;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > b->max + 1)
			ncap = b->max + 1;
		np = realloc(b->p, ncap);
		if (np == NULL) {
			b->overflow = 1;
			return -1;
		}
		b->p = np;
		b->cap = ncap;
	}
	return 0;
}

int
gw_buf_add(struct gw_buf *b, const void *p, size_t n)
{
	if (buf_grow(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
gw_buf_reserve(struct gw_buf *b, size_t n)
{
	if (buf_grow(b, n) == -1)
		return -1;
	b->p[b->len] = '\0';
	return 0;
}

int
gw_buf_puts(struct gw_buf *b, const char *s)
{
	return gw_buf_add(b, s, strlen(s));
}

int
gw_buf_printf(struct gw_buf *b, const char *fmt, ...)
{
	char small[512], *big = NULL;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->overflow = 1;
		return -1;
	}
	if ((size_t)n < sizeof(small))
		return gw_buf_add(b, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (big == NULL) {
		b->overflow = 1;
		return -1;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = gw_buf_add(b, big, (size_t)n);
	free(big);
	return rc;
}

int
gw_buf_json_str(struct gw_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i, run = 0;
	char esc[8];
	int elen;

	if (gw_buf_add(b, "\"", 1) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
			continue;
		esc[0] = '\\';
		elen = 2;
		switch (p[i]) {
		case '"':
		case '\\':
			esc[1] = (char)p[i];
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[p[i] >> 4];
			esc[5] = hex[p[i] & 0xf];
			elen = 6;
			break;
		}
		if (gw_buf_add(b, s + run, i - run) == -1 ||
		    gw_buf_add(b, esc, (size_t)elen) == -1)
			return -1;
		run = i + 1;
	}
	if (gw_buf_add(b, s + run, n - run) == -1)
		return -1;
	return gw_buf_add(b, "\"", 1);
}

char *
gw_buf_take(struct gw_buf *b, size_t *len)
{
	char *p;

	if (b->p == NULL && gw_buf_add(b, "", 0) == -1)
		return NULL;
	p = b->p;
	if (len != NULL)
		*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	b->overflow = 0;
	return p;
}

void
gw_buf_reset(struct gw_buf *b)
{
	if (b->p != NULL) {
		gw_wipe(b->p, b->len);
		free(b->p);
	}
	b->p = NULL;
	b->len = b->cap = 0;
	b->overflow = 0;
}

char *
gw_strdup(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}

int
gw_random_hex(char *buf, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];
	size_t i;

	if (n > sizeof(raw) || RAND_bytes(raw, (int)n) != 1)
		return -1;
	for (i = 0; i < n; i++) {
		buf[2 * i] = hex[raw[i] >> 4];
		buf[2 * i + 1] = hex[raw[i] & 0xf];
	}
	buf[2 * n] = '\0';
	return 0;
}

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

const EVP_MD *
gw_sha256_md(void)
{
	(void)pthread_once(&sha256_once, sha256_fetch);
	return sha256_md != NULL ? sha256_md : EVP_sha256();
}

static EVP_MAC *hmac_mac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void
hmac_fetch(void)
{
	hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

EVP_MAC_CTX *
gw_hmac_sha256_new(const void *key, size_t len)
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *c;

	(void)pthread_once(&hmac_once, hmac_fetch);
	if (hmac_mac == NULL || (c = EVP_MAC_CTX_new(hmac_mac)) == NULL)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	                                             (char *)"SHA2-256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(c, key, len, params) != 1) {
		EVP_MAC_CTX_free(c);
		return NULL;
	}
	return c;
}

int
gw_hmac_sha256(const EVP_MAC_CTX *keyed, const void *msg, size_t n,
               unsigned char out[32])
{
	EVP_MAC_CTX *c = keyed != NULL ? EVP_MAC_CTX_dup(keyed) : NULL;
	size_t outl = 0;
	int rc;

	rc = c != NULL && EVP_MAC_update(c, msg, n) == 1 &&
	             EVP_MAC_final(c, out, &outl, 32) == 1 && outl == 32
	         ? 0
	         : -1;
	EVP_MAC_CTX_free(c);
	return rc;
}

int
gw_sha256(const void *p, size_t n, unsigned char md[32])
{
	unsigned int len = 0;

	return EVP_Digest(p, n, md, &len, gw_sha256_md(), NULL) == 1 &&
	               len == 32
	           ? 0
	           : -1;
}

void
gw_fingerprint(const void *p, size_t n, char out[17])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	int i;

	if (gw_sha256(p, n, md) == -1) {
		snprintf(out, 17, "%s", "0000000000000000");
		return;
	}
	for (i = 0; i < 8; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[16] = '\0';
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
gw_pct_encode(struct gw_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;
	char e[3] = {'%', 0, 0};
	size_t i;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			if (gw_buf_add(b, &s[i], 1) == -1)
				return -1;
			continue;
		}
		e[1] = hex[c >> 4];
		e[2] = hex[c & 0xf];
		if (gw_buf_add(b, e, 3) == -1)
			return -1;
	}
	return 0;
}

char *
gw_pct_decode(const char *s, size_t n, int form, size_t *outlen)
{
	char *out;
	size_t i, o = 0;
	int hi, lo;

	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[o++] = s[i] == '+' && form ? ' ' : s[i];
			continue;
		}
		if (n - i < 3) {
			free(out);
			return NULL;
		}
		hi = hexval((unsigned char)s[i + 1]);
		lo = hexval((unsigned char)s[i + 2]);
		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		out[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}
