/*
 * The one FastCGI record walk hssgw does itself: whether the bytes a
 * peer has sent so far hold a whole request, and whether they follow the
 * only order a responder request may have (FastCGI 1.0, 3.3, 5.1, 6.2):
 * FCGI_BEGIN_REQUEST with its id, FCGI_PARAMS records of that id up to
 * the empty one, then FCGI_STDIN records of that id up to the empty one.
 * The front thread hands only whole requests to workers (libfcgi parses
 * them; this only walks the headers), and closes a connection whose
 * records stray from that order before any worker sees it.  Incremental:
 * each byte is fed once, so a peer trickling bytes costs the front no
 * more than the bytes themselves.  Pure: it reads exactly the n bytes it
 * is given and never trusts a record length.  Fuzzed by
 * tests/fuzz/fuzz_fcgi.c.
 */
#include <stddef.h>
#include <string.h>

#include "fcgi.h"
#include "gw.h"

#define FCGI_VERSION_1       1
#define FCGI_BEGIN_REQUEST   1
#define FCGI_ABORT_REQUEST   2
#define FCGI_PARAMS          4
#define FCGI_STDIN           5
#define FCGI_BEGIN_BODY_LEN  8
#define FCGI_NULL_REQUEST_ID 0

enum stage { ST_BEGIN, ST_PARAMS, ST_STDIN, ST_DONE };

static const char *const reject_name[GW_FCGI_REJ__MAX] = {
    [GW_FCGI_REJ_NONE] = "none",
    [GW_FCGI_REJ_MALFORMED] = "malformed",
    [GW_FCGI_REJ_FOREIGN_ID] = "foreign_id",
    [GW_FCGI_REJ_ORDER] = "out_of_order",
    [GW_FCGI_REJ_MANAGEMENT] = "management",
    [GW_FCGI_REJ_ABORTED] = "aborted",
};
_Static_assert(sizeof(reject_name) / sizeof(reject_name[0]) == GW_FCGI_REJ__MAX,
               "every rejection needs a name");

const char *
gw_fcgi_reject_name(enum gw_fcgi_reject r)
{
	return (unsigned)r < GW_FCGI_REJ__MAX ? reject_name[r] : "none";
}

void
gw_fcgi_walk_init(struct gw_fcgi_walk *w)
{
	memset(w, 0, sizeof(*w));
}

/*
 * One whole header: the next stage, or a rejection.  Only the request's
 * own records in their order pass; anything libfcgi would skip (another
 * id) or answer (a management record, id 0) is a peer we do not serve.
 */
static enum gw_fcgi_reject
header(struct gw_fcgi_walk *w, const unsigned char *h)
{
	unsigned type = h[1], id = ((unsigned)h[2] << 8) | h[3];
	size_t clen = ((size_t)h[4] << 8) | h[5];

	if (h[0] != FCGI_VERSION_1)
		return GW_FCGI_REJ_MALFORMED;
	if (id == FCGI_NULL_REQUEST_ID)
		return GW_FCGI_REJ_MANAGEMENT;
	if (w->stage == ST_BEGIN) {
		if (type != FCGI_BEGIN_REQUEST)
			return GW_FCGI_REJ_ORDER;
		if (clen != FCGI_BEGIN_BODY_LEN)
			return GW_FCGI_REJ_MALFORMED;
		w->id = id;
		w->stage = ST_PARAMS;
		return GW_FCGI_REJ_NONE;
	}
	if (id != w->id)
		return GW_FCGI_REJ_FOREIGN_ID;
	if (type == FCGI_ABORT_REQUEST)
		return GW_FCGI_REJ_ABORTED;
	if (w->stage == ST_PARAMS && type == FCGI_PARAMS) {
		if (clen == 0)
			w->stage = ST_STDIN;
		return GW_FCGI_REJ_NONE;
	}
	if (w->stage == ST_STDIN && type == FCGI_STDIN) {
		if (clen == 0)
			w->stage = ST_DONE;
		return GW_FCGI_REJ_NONE;
	}
	/* A second BEGIN_REQUEST, STDIN before PARAMS ended, FCGI_DATA (not
	 * a responder's), anything after the request ended. */
	return GW_FCGI_REJ_ORDER;
}

int
gw_fcgi_walk(struct gw_fcgi_walk *w, const unsigned char *p, size_t n)
{
	size_t k;

	while (n > 0 && w->reject == GW_FCGI_REJ_NONE) {
		if (w->skip > 0) {
			k = n < w->skip ? n : w->skip;
			w->skip -= k;
		} else {
			k = GW_FCGI_HEADER_LEN - w->hlen;
			if (k > n)
				k = n;
			memcpy(w->hdr + w->hlen, p, k);
			w->hlen += k;
			if (w->hlen == GW_FCGI_HEADER_LEN) {
				w->hlen = 0;
				w->skip =
				    (((size_t)w->hdr[4] << 8) | w->hdr[5]) +
				    w->hdr[6];
				w->reject = header(w, w->hdr);
			}
		}
		p += k;
		n -= k;
		w->fed += k;
		/* The request's end (the empty STDIN record, at most padding
		 * after it) is where the walk stops: later bytes are not
		 * this request's, and gw_fcgi_walk_after judges them. */
		if (w->stage == ST_DONE && w->skip == 0 && !w->ended) {
			w->ended = 1;
			w->end = w->fed;
		}
	}
	if (w->reject != GW_FCGI_REJ_NONE)
		return -1;
	return w->ended;
}

size_t
gw_fcgi_walk_need(const struct gw_fcgi_walk *w)
{
	return w->skip + (GW_FCGI_HEADER_LEN - w->hlen);
}

int
gw_fcgi_stream_ended(const unsigned char *p, size_t n)
{
	struct gw_fcgi_walk w;

	gw_fcgi_walk_init(&w);
	return gw_fcgi_walk(&w, p, n) == 1;
}

#define FCGI_END_REQUEST      3
#define FCGI_STDOUT           6
#define FCGI_REQUEST_COMPLETE 0
#define FCGI_CONTENT_MAX      65535

static int
put_header(struct gw_buf *out, unsigned type, unsigned id, size_t len)
{
	unsigned char h[GW_FCGI_HEADER_LEN];

	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)len;
	h[6] = 0; /* no padding */
	h[7] = 0;
	return gw_buf_add(out, h, sizeof(h));
}

int
gw_fcgi_frame_answer(struct gw_buf *out, unsigned id, const void *p, size_t n)
{
	static const unsigned char end[GW_FCGI_HEADER_LEN] = {
	    0, 0, 0, 0, FCGI_REQUEST_COMPLETE, 0, 0, 0};
	const unsigned char *c = p;
	size_t k;

	if (id == FCGI_NULL_REQUEST_ID || id > 0xffff)
		return -1;
	while (n > 0) {
		k = n > FCGI_CONTENT_MAX ? FCGI_CONTENT_MAX : n;
		if (put_header(out, FCGI_STDOUT, id, k) == -1 ||
		    gw_buf_add(out, c, k) == -1)
			return -1;
		c += k;
		n -= k;
	}
	/* The empty FCGI_STDOUT ends the stream; FCGI_END_REQUEST carries
	 * appStatus 0 and FCGI_REQUEST_COMPLETE (FastCGI 1.0, 5.3, 5.5). */
	if (put_header(out, FCGI_STDOUT, id, 0) == -1 ||
	    put_header(out, FCGI_END_REQUEST, id, sizeof(end)) == -1 ||
	    gw_buf_add(out, end, sizeof(end)) == -1)
		return -1;
	return 0;
}
