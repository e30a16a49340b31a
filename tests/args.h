/* SPDX-License-Identifier: MIT */
/*
 * Strict number parsing for the test helpers' command lines (atoi/atof
 * would turn a typo into 0 and a test that silently checks nothing): the
 * whole argument must be a number within [lo, hi], else the helper prints
 * what was wrong and exits 2.
 */
#ifndef TESTS_ARGS_H
#define TESTS_ARGS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static inline long long test_arg_ll(const char *s, long long lo, long long hi, const char *what)
{
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 0) : 0;
    if (!s || end == s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "%s: '%s' is not an integer in [%lld, %lld]\n", what, s ? s : "(none)",
                lo, hi);
        exit(2);
    }
    return v;
}

static inline double test_arg_d(const char *s, double lo, double hi, const char *what)
{
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: '%s' is not a number in [%g, %g]\n", what, s ? s : "(none)", lo, hi);
        exit(2);
    }
    return v;
}

#endif /* TESTS_ARGS_H */
