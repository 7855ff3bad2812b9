/*
 * The scanner against json-c, one line at a time (auditq_fixture.h).
 * Plain C, no cmocka: the fuzz harness links it too.
 */
#include <stdio.h>
#include <string.h>

#include "auditq.h"
#include "auditq_fixture.h"
#include "auditq_int.h"
#include "gw.h"

size_t
aqf_seal(char *body, size_t n)
{
	unsigned char md[32];
	int i;

	if (n < 2 || body[n - 1] != '}' || gw_sha256(body, n, md) == -1)
		return 0;
	memcpy(body + n - 1, ",\"hash\":\"", 9);
	for (i = 0; i < 32; i++)
		snprintf(body + n + 8 + 2 * i, 3, "%02x", md[i]);
	memcpy(body + n + 72, "\"}", 3);
	return n + 74;
}

int
aqf_chain_agrees(const char *line, size_t len)
{
	struct gw_auditq_chain both, slow, fast;
	int rb, rs, rf;

	rf = aq_scan_chain(line, len, &fast);
	rb = gw_auditq_chain_parse(line, len, &both);
	rs = aq_chain_json(line, len, &slow);
	/* Recognised: json-c must take the line, and read it the same. */
	if (rf == 1 && (rs != 0 || fast.v != slow.v || fast.seq != slow.seq ||
	                strcmp(fast.prev, slow.prev) != 0 ||
	                strcmp(fast.hash, slow.hash) != 0))
		return -1;
	if (rs == 0 && aq_chain_hash(NULL, line, len, &slow) == -1)
		rs = -1;
	if (rb != rs)
		return -1;
	if (rs == 0 &&
	    (both.v != slow.v || both.seq != slow.seq ||
	     strcmp(both.prev, slow.prev) != 0 ||
	     strcmp(both.hash, slow.hash) != 0 || both.hash_ok != slow.hash_ok))
		return -1;
	return rf;
}

int
aqf_query_agrees(const char *line, size_t len)
{
	static const struct gw_auditq_filter filters[] = {
	    {0},
	    {.subject = "alice"},
	    {.subject = "alicf"},
	    {.decision = "allow", .project = "demo"},
	    {.task_id = "t-1"},
	    {.task_id = "t-2"},
	    {.has_since = 1, .since_ms = 1767225600000LL},
	    {.has_until = 1, .until_ms = 1767225599999LL},
	    {.has_until = 1, .until_ms = 1767225600000LL},
	};
	char tf[AQ_TIME_CAP], ts[AQ_TIME_CAP];
	struct aq_fields m;
	size_t i;

	for (i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		if (aq_query_line(line, len, &filters[i], 1, tf) !=
		        aq_query_line(line, len, &filters[i], 0, ts) ||
		    strcmp(tf, ts) != 0)
			return -1;
	return aq_scan_fields(line, len, &m);
}
