/*
 * The auditor's tools at disk speed (auditq_int.h): trail files read with
 * read(2) in large blocks, and a strict scanner for the lines hssgw
 * writes.  The scanner is a JSON validator that builds nothing: it walks
 * the whole line (so a line it accepts is one JSON object json-c accepts
 * too) and picks a few top-level members out of it.  It is narrower than
 * json-c on purpose: RFC 8259 only (json-c also takes comments, single
 * quotes, trailing commas, leading zeros, any case of true/false/null),
 * no \u0000 or surrogate escapes (json-c cuts or replaces them), nesting
 * well under json-c's limit of 32, no escaped key at the levels it reads
 * (json-c would decode "s\u0065q" to "seq") and no member it reads twice
 * (json-c keeps the last).  Whatever falls outside goes to json-c, so a
 * verdict never depends on which path read a line
 * (tests/unit/lib/test_auditq_scan.c, tests/fuzz/fuzz_auditq.c).  Reads
 * files only; owns nothing past a reader's buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auditq_int.h"
#include "gw.h"

/* Containers nested deeper than this go to json-c (its limit: 32). */
#define DEPTH_MAX 16
/* Longer numbers go to json-c, which saturates what does not fit. */
#define NUM_MAX 40
/* Digits of an integer read as "v" or "seq": never past 2^63. */
#define INT_DIGITS_MAX 18

int
aq_reader_open(struct aq_reader *r, const char *path)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->buf = malloc(AQ_READ_BUF + 1);
	if (r->buf == NULL) {
		errno = ENOMEM;
		return -1;
	}
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd == -1) {
		free(r->buf);
		r->buf = NULL;
		return -1;
	}
	(void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	r->buf[0] = '\0';
	r->line = r->buf;
	return 0;
}

void
aq_reader_close(struct aq_reader *r)
{
	if (r->buf != NULL && r->fd != -1)
		close(r->fd);
	free(r->buf);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

/* Moves what is left to the front and reads more after it. */
static void
refill(struct aq_reader *r)
{
	ssize_t n;

	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->end - r->pos);
		r->end -= r->pos;
		r->pos = 0;
	}
	for (;;) {
		n = read(r->fd, r->buf + r->end, AQ_READ_BUF - r->end);
		if (n == -1 && errno == EINTR)
			continue;
		break;
	}
	if (n <= 0) {
		r->eof = 1;
		if (n == -1)
			r->err = errno;
		return;
	}
	r->end += (size_t)n;
}

int
aq_reader_next(struct aq_reader *r, int *terminated)
{
	char *nl;
	size_t avail;

	*terminated = 0;
	for (;;) {
		avail = r->end - r->pos;
		nl = memchr(r->buf + r->pos, '\n', avail);
		if (nl != NULL) {
			if ((size_t)(nl - (r->buf + r->pos)) >
			    GW_AUDITQ_LINE_MAX)
				return -1;
			*terminated = 1;
			*nl = '\0';
			r->line = r->buf + r->pos;
			r->len = (size_t)(nl - r->line);
			r->pos += r->len + 1;
			r->lineno++;
			return 1;
		}
		if (avail > GW_AUDITQ_LINE_MAX)
			return -1;
		if (r->eof)
			break;
		refill(r);
	}
	if (avail == 0) {
		r->line = r->buf + r->pos;
		r->line[0] = '\0';
		r->len = 0;
		return 0;
	}
	/* The unterminated last line; the buffer has a byte to spare. */
	r->line = r->buf + r->pos;
	r->len = avail;
	r->line[avail] = '\0';
	r->pos = r->end;
	r->lineno++;
	return 1;
}

/*
 * A byte that may stand in a JSON string as it is (RFC 8259 §7): all but
 * the quote, the backslash and the controls.  Bytes past 0x7f are taken
 * as they come, as json-c takes them (it checks no UTF-8 unless asked,
 * and auditq never asks).
 */
static int
is_plain(unsigned char c)
{
	return c >= 0x20 && c != '"' && c != '\\';
}

/*
 * 1 when one of the 8 bytes of x is a quote, a backslash or a control:
 * the word-at-a-time tests of "Bit Twiddling Hacks" (haszero, hasless),
 * exact as a yes or no, so a word without one is skipped whole.
 */
static int
word_stops(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ULL, high = ones * 0x80;
	uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');

	return ((((q - ones) & ~q) | ((b - ones) & ~b) |
	         ((x - ones * 0x20) & ~x)) &
	        high) != 0;
}

static int
is_hex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* 1 when s holds 64 lowercase hex digits, as the chain's hashes are. */
static int
is_hash_hex(const char *s)
{
	unsigned bad = 0, c;
	int i;

	/* No branch per digit: hashes are random, so branches miss. */
	for (i = 0; i < 64; i++) {
		c = (unsigned char)s[i];
		bad |= (c - '0' > 9u) & (c - 'a' > 5u);
	}
	return bad == 0;
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* One escape after its backslash; the byte after it, or NULL. */
static const char *
skip_escape(const char *p, const char *end)
{
	unsigned cp = 0;
	int i;

	if (p >= end)
		return NULL;
	if (strchr("\"\\/bfnrt", *p) != NULL && *p != '\0')
		return p + 1;
	if (*p != 'u' || end - p < 5)
		return NULL;
	for (i = 1; i <= 4; i++) {
		if (!is_hex((unsigned char)p[i]))
			return NULL;
		cp = cp << 4 |
		     (unsigned)(is_digit(p[i]) ? p[i] - '0'
		                               : (p[i] | 0x20) - 'a' + 10);
	}
	/* json-c cuts a string at \u0000 and replaces a lone surrogate. */
	if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
		return NULL;
	return p + 5;
}

/*
 * A string whose opening quote is at p: the byte after its closing
 * quote, or NULL.  *esc is set when it holds an escape.
 */
static const char *
skip_str(const char *p, const char *end, int *esc)
{
	uint64_t x;

	for (p++;;) {
		while (end - p >= 8) {
			memcpy(&x, p, 8);
			if (word_stops(x))
				break;
			p += 8;
		}
		while (p < end && is_plain((unsigned char)*p))
			p++;
		if (p >= end)
			return NULL;
		if (*p == '"')
			return p + 1;
		if (*p != '\\')
			return NULL; /* a control byte */
		*esc = 1;
		p = skip_escape(p + 1, end);
		if (p == NULL)
			return NULL;
	}
}

/* RFC 8259 §6 number, at most NUM_MAX bytes. */
static const char *
skip_num(const char *p, const char *end)
{
	const char *s = p, *d;

	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (p < end && *p >= '1' && *p <= '9')
		while (p < end && is_digit(*p))
			p++;
	else
		return NULL;
	if (p < end && *p == '.') {
		for (d = ++p; p < end && is_digit(*p);)
			p++;
		if (p == d)
			return NULL;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		for (d = p; p < end && is_digit(*p);)
			p++;
		if (p == d)
			return NULL;
	}
	return p - s <= NUM_MAX ? p : NULL;
}

static const char *
skip_word(const char *p, const char *end, const char *w, size_t n)
{
	return (size_t)(end - p) >= n && memcmp(p, w, n) == 0 ? p + n : NULL;
}

static const char *skip_value(const char *p, const char *end, int depth);

/* An array at p ('['), its values at depth. */
static const char *
skip_array(const char *p, const char *end, int depth)
{
	p = skip_ws(p + 1, end);
	if (p < end && *p == ']')
		return p + 1;
	for (;;) {
		p = skip_value(p, end, depth);
		if (p == NULL)
			return NULL;
		p = skip_ws(p, end);
		if (p < end && *p == ']')
			return p + 1;
		if (p >= end || *p != ',')
			return NULL;
		p = skip_ws(p + 1, end);
	}
}

/* A walk over one object's members. */
struct objit {
	const char *p, *end;
	int depth; /* of the member values */
	int first;
};

/* One member: its key (between the quotes, raw) and its value. */
struct member {
	const char *k;
	size_t kn;
	int kesc;
	const char *v, *vend;
};

/* At the object's '{' (p). */
static void
obj_open(struct objit *it, const char *p, const char *end, int depth)
{
	it->p = p + 1;
	it->end = end;
	it->depth = depth;
	it->first = 1;
}

/* 1: a member in m; 0: the closing brace, it->p past it; -1: not JSON. */
static int
obj_next(struct objit *it, struct member *m)
{
	const char *p = skip_ws(it->p, it->end), *end = it->end;

	if (p < end && *p == '}' && it->first) {
		it->p = p + 1;
		return 0;
	}
	if (!it->first) {
		if (p < end && *p == '}') {
			it->p = p + 1;
			return 0;
		}
		if (p >= end || *p != ',')
			return -1;
		p = skip_ws(p + 1, end);
	}
	it->first = 0;
	if (p >= end || *p != '"')
		return -1;
	m->k = p + 1;
	m->kesc = 0;
	p = skip_str(p, end, &m->kesc);
	if (p == NULL)
		return -1;
	m->kn = (size_t)(p - 1 - m->k);
	p = skip_ws(p, end);
	if (p >= end || *p != ':')
		return -1;
	m->v = skip_ws(p + 1, end);
	m->vend = skip_value(m->v, end, it->depth);
	if (m->vend == NULL)
		return -1;
	it->p = m->vend;
	return 1;
}

static const char *
skip_object(const char *p, const char *end, int depth)
{
	struct objit it;
	struct member m;
	int got;

	obj_open(&it, p, end, depth);
	while ((got = obj_next(&it, &m)) == 1)
		continue;
	return got == 0 ? it.p : NULL;
}

/* Any value at p, at depth (the top-level object's members: 1). */
static const char *
skip_value(const char *p, const char *end, int depth)
{
	int esc = 0;

	p = skip_ws(p, end);
	if (p >= end)
		return NULL;
	switch (*p) {
	case '"':
		return skip_str(p, end, &esc);
	case '{':
		return depth < DEPTH_MAX ? skip_object(p, end, depth + 1)
		                         : NULL;
	case '[':
		return depth < DEPTH_MAX ? skip_array(p, end, depth + 1) : NULL;
	case 't':
		return skip_word(p, end, "true", 4);
	case 'f':
		return skip_word(p, end, "false", 5);
	case 'n':
		return skip_word(p, end, "null", 4);
	default:
		return skip_num(p, end);
	}
}

static int
key_is(const struct member *m, const char *k)
{
	size_t n = strlen(k);

	return m->kn == n && memcmp(m->k, k, n) == 0;
}

/* A non-negative integer of at most INT_DIGITS_MAX digits; 0 or -1. */
static int
member_int(const struct member *m, long long *out)
{
	size_t n = (size_t)(m->vend - m->v), i;
	long long v = 0;

	if (n == 0 || n > INT_DIGITS_MAX || (n > 1 && m->v[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (!is_digit(m->v[i]))
			return -1;
		v = v * 10 + (m->v[i] - '0');
	}
	*out = v;
	return 0;
}

/* "<64 lowercase hex>", unescaped; 0 or -1. */
static int
member_hash(const struct member *m, char out[65])
{
	if (m->vend - m->v != 66 || m->v[0] != '"' || !is_hash_hex(m->v + 1))
		return -1;
	memcpy(out, m->v + 1, 64);
	out[64] = '\0';
	return 0;
}

/* The members read, in the order hssgw writes them. */
enum { K_V, K_SEQ, K_PREV, K_HASH, K_OTHER };

static int
chain_key(const struct member *m)
{
	if (m->kn == 1 && m->k[0] == 'v')
		return K_V;
	if (m->kn == 3 && memcmp(m->k, "seq", 3) == 0)
		return K_SEQ;
	if (m->kn == 4 && memcmp(m->k, "prev", 4) == 0)
		return K_PREV;
	if (m->kn == 4 && memcmp(m->k, "hash", 4) == 0)
		return K_HASH;
	return K_OTHER;
}

int
aq_scan_chain(const char *line, size_t len, struct gw_auditq_chain *c)
{
	const char *end = line + len, *suf;
	struct objit it;
	struct member m;
	int got, k, i = 0, hashes = 0, last = K_OTHER;

	memset(c, 0, sizeof(*c));
	if (len > GW_AUDITQ_LINE_MAX || len < AQ_HASH_SUFFIX_LEN + 2 ||
	    line[0] != '{')
		return 0;
	/* Where the hash must be: the suffix the digest leaves out. */
	suf = end - AQ_HASH_SUFFIX_LEN;
	if (memcmp(suf, ",\"hash\":\"", 9) != 0 ||
	    memcmp(end - 2, "\"}", 2) != 0 || !is_hash_hex(suf + 9))
		return 0;
	obj_open(&it, line, end, 1);
	while ((got = obj_next(&it, &m)) == 1) {
		if (m.kesc)
			return 0;
		k = chain_key(&m);
		/* v, seq and prev open the record; nothing read twice. */
		if (i < K_HASH ? k != i : k != K_OTHER && k != K_HASH)
			return 0;
		if ((k == K_V && member_int(&m, &c->v) == -1) ||
		    (k == K_SEQ && member_int(&m, &c->seq) == -1) ||
		    (k == K_PREV && member_hash(&m, c->prev) == -1))
			return 0;
		/* Its digits: the suffix's, checked above. */
		if (k == K_HASH && (++hashes > 1 || m.v != suf + 8))
			return 0;
		last = k;
		i++;
	}
	if (got != 0 || it.p != end || last != K_HASH)
		return 0;
	memcpy(c->hash, suf + 9, 64);
	c->hash[64] = '\0';
	return 1;
}

int
aq_chain_hash(EVP_MD_CTX *md, const char *line, size_t len,
              struct gw_auditq_chain *c)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	EVP_MD_CTX *own = NULL;
	char hex[65];
	int i, rc = -1;

	c->hash_ok = 0;
	if (len < AQ_HASH_SUFFIX_LEN)
		return -1;
	if (md == NULL) {
		own = EVP_MD_CTX_new();
		md = own;
	}
	/* docs/AUDIT.md: SHA-256 of the line without ,"hash":"..." */
	if (md == NULL || EVP_DigestInit_ex(md, gw_sha256_md(), NULL) != 1 ||
	    EVP_DigestUpdate(md, line, len - AQ_HASH_SUFFIX_LEN) != 1 ||
	    EVP_DigestUpdate(md, "}", 1) != 1 ||
	    EVP_DigestFinal_ex(md, d, &dlen) != 1 || dlen != 32)
		goto out;
	/* By hand, not snprintf: this runs for every record. */
	for (i = 0; i < 32; i++) {
		hex[2 * i] = "0123456789abcdef"[d[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
	}
	hex[64] = '\0';
	c->hash_ok = gw_ct_equal(hex, 64, c->hash, 64);
	rc = 0;
out:
	EVP_MD_CTX_free(own);
	return rc;
}

/* What query reads: one of the members, or none. */
static struct aq_str *
field_of(struct aq_fields *f, const struct member *m)
{
	if (key_is(m, "time"))
		return &f->time;
	if (key_is(m, "subject"))
		return &f->subject;
	if (key_is(m, "decision"))
		return &f->decision;
	if (key_is(m, "project"))
		return &f->project;
	return NULL;
}

/* A string without escapes, or null, into s; 0 or -1. */
static int
member_str(const struct member *m, struct aq_str *s)
{
	int esc = 0;

	if (m->vend - m->v == 4 && memcmp(m->v, "null", 4) == 0) {
		s->p = NULL;
		return 0;
	}
	if (m->v[0] != '"' || skip_str(m->v, m->vend, &esc) != m->vend || esc)
		return -1;
	s->p = m->v + 1;
	s->n = (size_t)(m->vend - m->v) - 2;
	return 0;
}

/* upstream's task_id, when upstream is an object; 0 or -1. */
static int
upstream_task(const struct member *up, struct aq_str *task)
{
	struct objit it;
	struct member m;
	int got, seen = 0;

	if (up->v[0] != '{')
		return 0; /* json-c: a non-object has no task_id */
	obj_open(&it, up->v, up->vend, 2);
	while ((got = obj_next(&it, &m)) == 1) {
		if (m.kesc)
			return -1;
		if (!key_is(&m, "task_id"))
			continue;
		if (seen++ > 0 || member_str(&m, task) == -1)
			return -1;
	}
	return got == 0 && it.p == up->vend ? 0 : -1;
}

int
aq_scan_fields(const char *line, size_t len, struct aq_fields *f)
{
	const char *end = line + len;
	struct aq_str *s, seen, *was[5] = {NULL};
	struct objit it;
	struct member m;
	int got, ups = 0;
	size_t i, nwas = 0;

	memset(f, 0, sizeof(*f));
	if (len > GW_AUDITQ_LINE_MAX || len == 0 || line[0] != '{')
		return 0;
	obj_open(&it, line, end, 1);
	while ((got = obj_next(&it, &m)) == 1) {
		if (m.kesc)
			return 0;
		if (key_is(&m, "upstream")) {
			if (ups++ > 0 || upstream_task(&m, &f->task_id) == -1)
				return 0;
			continue;
		}
		s = field_of(f, &m);
		if (s == NULL)
			continue;
		for (i = 0; i < nwas; i++)
			if (was[i] == s)
				return 0;
		was[nwas++] = s;
		if (member_str(&m, &seen) == -1)
			return 0;
		*s = seen;
	}
	return got == 0 && it.p == end ? 1 : 0;
}
