/*
 * Text matching for the policy engine: ASCII case folding, never the
 * locale's, and wildcard matching ('*' and '?', UTF-8 aware) that is
 * iterative and O(len(text) * len(pattern)).  Pure functions over their
 * arguments: they must never recurse, allocate, log or read the locale,
 * since evaluation calls them on every request.
 */
#include <stdint.h>
#include <string.h>

#include "policy_int.h"

/* ---- text helpers: ASCII case folding, never the locale's ---- */

int
pol_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* ---- wildcard matching: iterative, O(len(text) * len(pattern)) ---- */

/* Length of the UTF-8 character at t[i] (continuation bytes included). */
static size_t
char_len(const char *t, size_t tlen, size_t i)
{
	size_t j = i + 1;

	while (j < tlen && ((unsigned char)t[j] & 0xc0) == 0x80)
		j++;
	return j - i;
}

/*
 * Matches text t against pattern p whose bytes flagged in w are wildcards:
 * '*' any run of characters, '?' exactly one UTF-8 character.  The classic
 * greedy matcher that backtracks only to the last '*': no recursion, at most
 * O(tlen * plen) steps.
 */
int
pol_wmatch(const char *p, const unsigned char *w, size_t plen, const char *t,
           size_t tlen, int icase)
{
	size_t pi = 0, ti = 0, star = SIZE_MAX, mark = 0;

	while (ti < tlen) {
		if (pi < plen && w[pi] && p[pi] == '?') {
			ti += char_len(t, tlen, ti);
			pi++;
		} else if (pi < plen && w[pi] && p[pi] == '*') {
			star = pi++;
			mark = ti;
		} else if (pi < plen && !w[pi] &&
		           pol_fold((unsigned char)p[pi], icase) ==
		               pol_fold((unsigned char)t[ti], icase)) {
			pi++;
			ti++;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			mark += char_len(t, tlen, mark);
			ti = mark;
		} else {
			return 0;
		}
	}
	while (pi < plen && w[pi] && p[pi] == '*')
		pi++;
	return pi == plen;
}

int
pol_kmatch(int kind, const char *p, const unsigned char *w, size_t plen,
           const char *t, size_t tlen, int icase)
{
	switch (kind) {
	case PK_LIT:
		return plen == tlen && (icase ? pol_ieqn(p, t, tlen)
		                              : pol_bytes_eq(p, t, tlen));
	case PK_PREFIX:
		return tlen >= plen - 1 &&
		       (icase ? pol_ieqn(p, t, plen - 1)
		              : pol_bytes_eq(p, t, plen - 1));
	default:
		return pol_wmatch(p, w, plen, t, tlen, icase);
	}
}
