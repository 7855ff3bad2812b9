/*
 * libFuzzer harness for the config loader: any bytes, written to a file,
 * must load or fail with a message, never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct gw_config *c;
	char err[512];
	FILE *f;

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/hssgw-fuzz-conf-%d.json",
		         (int)getpid());
	f = fopen(path, "wb");
	if (f == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	c = gw_conf_load(path, err, sizeof(err));
	gw_conf_free(c);
	return 0;
}
