/*
 * The one FastCGI record walk hssgw does itself: whether the bytes a
 * peer has sent so far hold a whole request, so the front thread hands
 * only whole requests to workers (libfcgi parses them; this only finds
 * their end).  Pure: it reads at most n bytes and never trusts a record
 * length to stay inside them.  Fuzzed by tests/fuzz/fuzz_fcgi.c.
 */
#include <stddef.h>

#include "fcgi.h"

#define FCGI_HEADER_LEN 8
#define FCGI_STDIN      5

/*
 * Records up to the empty FCGI_STDIN record that ends the body (FastCGI
 * 1.0, 3.3, 5.1): each header's content and padding lengths are skipped.
 */
int
gw_fcgi_stream_ended(const unsigned char *p, size_t n)
{
	size_t off = 0, clen;

	while (n - off >= FCGI_HEADER_LEN) {
		clen = ((size_t)p[off + 4] << 8) | p[off + 5];
		if (p[off + 1] == FCGI_STDIN && clen == 0)
			return 1;
		off += FCGI_HEADER_LEN + clen + p[off + 6];
		if (off > n)
			break;
	}
	return 0;
}
