/*
 * Shared by test_auditq_scan.c and tests/fuzz/fuzz_auditq.c: a record
 * sealed with its own hash as audit.c writes it, and the two checks both
 * make of one line, that the scanner of lib/auditq_scan.c and json-c
 * read it alike (through lib/auditq_int.h).
 */
#ifndef HSSGW_TESTS_AUDITQ_FIXTURE_H
#define HSSGW_TESTS_AUDITQ_FIXTURE_H

#include <stddef.h>

/*
 * Replaces the last "}" of body (n bytes, NUL-terminated after) by the
 * record's ,"hash":"..."} member; body needs 75 bytes to spare.  Returns
 * the new length, 0 when body does not end in "}".
 */
size_t aqf_seal(char *body, size_t n);
/*
 * gw_auditq_chain_parse (scanner, then json-c) and json-c alone on line:
 * -1 when their verdicts or members differ, or the scanner took a line
 * json-c refuses; else what the scanner alone said (1 recognised, 0 not).
 */
int aqf_chain_agrees(const char *line, size_t len);
/*
 * The query verdict and time under a few filters, with the scanner and
 * without: -1 when any differs; else what aq_scan_fields said.
 */
int aqf_query_agrees(const char *line, size_t len);

#endif
