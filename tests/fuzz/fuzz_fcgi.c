/*
 * libFuzzer harness for the FastCGI record walk the front thread does on
 * what a peer of the socket sends (gw_fcgi_stream_ended).  Looks for
 * out-of-bounds reads (ASan: the input is exactly n bytes), UB, and one
 * property: bytes that hold a whole request still do with more appended
 * (the front decides on a prefix of what finally arrives), and a prefix
 * shorter than one record header never does.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fcgi.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cut = size > 0 ? data[0] % (size + 1) : 0;

	if (gw_fcgi_stream_ended(data, cut) &&
	    !gw_fcgi_stream_ended(data, size))
		abort();
	if (gw_fcgi_stream_ended(data, size < 8 ? size : 7))
		abort();
	return 0;
}
