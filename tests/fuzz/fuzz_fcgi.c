/*
 * libFuzzer harness for the FastCGI record walk the front thread does on
 * what a peer of the socket sends (gw_fcgi_walk, gw_fcgi_stream_ended).
 * Looks for out-of-bounds reads (ASan: the input is exactly n bytes), UB,
 * and these properties: the walk fed in two pieces (the front reads what
 * has arrived) decides exactly as fed at once; a whole request stays whole
 * or is rejected (an abort or stray record after its end), never becomes
 * incomplete; a prefix shorter than one record header never is whole; and
 * what the walk calls a whole request is one by a plain reference walk of
 * the rule (BEGIN_REQUEST, PARAMS to the empty one, STDIN to the empty
 * one, all of the BEGIN_REQUEST's nonzero id).
 */
#include <stdint.h>
#include <stdlib.h>

#include "fcgi.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* 1 when the n bytes at p are exactly one well-ordered request. */
static int
reference(const uint8_t *p, size_t n)
{
	static const unsigned want[3] = {1, 4, 5}; /* BEGIN, PARAMS, STDIN */
	size_t off = 0, clen;
	unsigned id = 0, rid;
	int stage = 0;

	while (n - off >= 8) {
		clen = ((size_t)p[off + 4] << 8) | p[off + 5];
		rid = ((unsigned)p[off + 2] << 8) | p[off + 3];
		if (p[off] != 1 || rid == 0 || p[off + 1] != want[stage])
			return 0;
		if (stage == 0) {
			if (clen != 8)
				return 0;
			id = rid;
			stage = 1;
		} else if (rid != id)
			return 0;
		else if (clen == 0 && ++stage == 3)
			return off + 8 + p[off + 6] == n;
		off += 8 + clen + p[off + 6];
		if (off > n)
			return 0;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cut = size > 0 ? data[0] % (size + 1) : 0;
	struct gw_fcgi_walk a, b;
	int ra, rb, rp;

	gw_fcgi_walk_init(&a);
	gw_fcgi_walk_init(&b);
	ra = gw_fcgi_walk(&a, data, size);
	rp = gw_fcgi_walk(&b, data, cut);
	rb = rp == -1 ? -1 : gw_fcgi_walk(&b, data + cut, size - cut);
	if (ra != rb || a.reject != b.reject || a.end != b.end)
		abort();
	if (rp == 1 && rb == 0)
		abort();
	if (ra != -1 && a.fed != size)
		abort();
	if (a.ended && (a.end > size || !reference(data, a.end)))
		abort();
	if (ra == 1 && gw_fcgi_walk_need(&a) == 0)
		abort();
	if (gw_fcgi_stream_ended(data, size < 8 ? size : 7))
		abort();
	return 0;
}
