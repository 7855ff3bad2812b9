/*
 * libFuzzer harness for the JWK Set parser (jwks.c): any bytes must parse
 * into a set or fail with a reason, never crash or leak.  A set that
 * parses is walked (every key has a tag and PEM) so a half-built key
 * shows up, and the ECDSA conversion gets the same bytes as a signature.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t halves[] = {32, 48, 66};
	struct gw_jwks_set *s = NULL;
	unsigned char *der, *raw;
	char err[160];
	size_t i, derlen = 0;

	if (gw_jwks_parse((const char *)data, size, &s, err, sizeof(err)) ==
	    0) {
		for (i = 0; i < s->n; i++)
			if (s->keys[i].tag == 0 || s->keys[i].pem == NULL ||
			    s->keys[i].pkey == NULL)
				abort();
		gw_jwks_set_free(s);
	}
	for (i = 0; i < 3; i++) {
		der = gw_jws_ecdsa_der(data, size, halves[i], &derlen);
		if (der == NULL)
			continue;
		raw = gw_jws_ecdsa_raw(der, derlen, halves[i]);
		if (raw == NULL || memcmp(raw, data, size) != 0)
			abort();
		free(raw);
		OPENSSL_free(der);
	}
	return 0;
}
