/*
 * libFuzzer harness for the fast path of audit verify and query
 * (lib/auditq_scan.c): the scanner must never recognise a line json-c
 * would not take, nor read it differently.  Each input is one line; its
 * first byte picks what the rest becomes, so that random bytes reach the
 * scanner's deep paths: the line as it is; a record's members after the
 * chain header hssgw writes; a record's body; and, spelled one token per
 * byte from pieces of records, a line or a record's members.  Records
 * are sealed with their correct hash (the writer's suffix).  For every
 * line, the checks of tests/unit/lib/auditq_fixture.c: the chain members
 * (the scanner against json-c, then the combined verdict, hash included)
 * and the query verdict under a few filters, with and without the
 * scanner.  Aborts on any disagreement.  Reaches lib/'s internals
 * (auditq_int.h), as tests/CMakeLists.txt notes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auditq.h"
#include "auditq_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char head[] =
    "{\"v\":1,\"seq\":7,\"prev\":"
    "\"0000000000000000000000000000000000000000000000000000000000000000\",";

/*
 * Pieces of records and of their lookalikes: in the token modes each
 * byte of the input is one of these, so a short input is a line a
 * random one would take long to spell (an escaped key json-c reads as a
 * member, a duplicate one, a time the filters compare).
 */
static const char *const tokens[] = {
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\"",
    "\\",
    "\"v\"",
    "\"seq\"",
    "\"prev\"",
    "\"hash\"",
    "\"s\\u0065q\"",
    "\"subject\"",
    "\"subj\\u0065ct\"",
    "\"alice\"",
    "\"al\\u0069ce\"",
    "\"decision\"",
    "\"allow\"",
    "\"project\"",
    "\"demo\"",
    "\"upstream\"",
    "\"task_id\"",
    "\"t-1\"",
    "\"time\"",
    "\"2026-01-01T00:00:00.000Z\"",
    "\"2026-01-01T00:00:00.001Z\"",
    "1",
    "7",
    "-0",
    "01",
    "1e400",
    ".5",
    "null",
    "true",
    "tRue",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\x01\"",
    "\"\xff\"",
    "\"0000000000000000000000000000000000000000000000000000000000000000\"",
    "/**/",
    "'x'",
    "\"\\\"\"",
    "\"a\"",
};

/* Each byte of p as a token into out (cap bytes); the length. */
static size_t
spell(const uint8_t *p, size_t n, char *out, size_t cap)
{
	const size_t ntok = sizeof(tokens) / sizeof(tokens[0]);
	size_t len = 0, k, i;

	for (i = 0; i < n; i++) {
		k = strlen(tokens[p[i] % ntok]);
		if (len + k >= cap)
			break;
		memcpy(out + len, tokens[p[i] % ntok], k);
		len += k;
	}
	out[len] = '\0';
	return len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = 0, rest = size > 0 ? size - 1 : 0, cap;
	char *line;

	if (size == 0 || size > GW_AUDITQ_LINE_MAX)
		return 0;
	/* NUL-terminated, room for a header, a brace, the hash, tokens. */
	cap = sizeof(head) + 80 + 80 * rest;
	line = malloc(cap);
	if (line == NULL)
		return 0;
	switch (data[0] % 5) {
	case 0:
		memcpy(line, data + 1, rest);
		n = rest;
		line[n] = '\0';
		break;
	case 1:
		memcpy(line, head, sizeof(head) - 1);
		memcpy(line + sizeof(head) - 1, data + 1, rest);
		line[sizeof(head) - 1 + rest] = '}';
		n = aqf_seal(line, sizeof(head) + rest);
		break;
	case 2:
		memcpy(line, data + 1, rest);
		n = aqf_seal(line, rest);
		break;
	case 3:
		n = spell(data + 1, rest, line, cap - 80);
		break;
	default:
		memcpy(line, head, sizeof(head) - 1);
		n = sizeof(head) - 1;
		n += spell(data + 1, rest, line + n, cap - 80 - n);
		line[n++] = '}';
		n = aqf_seal(line, n);
		break;
	}
	if ((n > 0 || data[0] % 5 == 0 || data[0] % 5 == 3) &&
	    (aqf_chain_agrees(line, n) == -1 ||
	     aqf_query_agrees(line, n) == -1))
		abort();
	free(line);
	return 0;
}
