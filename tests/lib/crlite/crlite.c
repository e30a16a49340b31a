/* SPDX-License-Identifier: MIT */
/*
 * crlite's runner (see criterion/criterion.h here for why it exists): runs
 * every registered test in registration order, reports each failed check
 * with its file and line, and exits 1 if any test failed.  Arguments are
 * accepted and ignored, so a meson test() written for Criterion (with
 * --jobs=, --timeout=) runs unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>

#include "criterion/criterion.h"

static struct crlite_test *head, **tail = &head;
static jmp_buf abort_test;
static int failed;

void crlite_register(struct crlite_test *t)
{
    t->next = NULL;
    *tail = t;
    tail = &t->next;
}

void crlite_fail(int fatal, const char *file, int line, const char *check, const char *fmt, ...)
{
    failed = 1;
    fprintf(stderr, "%s:%d: %s failed: %s", file, line, fatal ? "assertion" : "expectation",
            check);
    if (fmt[0]) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    if (fatal)
        longjmp(abort_test, 1);
}

/* Its own frame: nothing in it lives across the longjmp. */
static int run_one(const struct crlite_test *t)
{
    failed = 0;
    if (!setjmp(abort_test))
        t->fn();
    return failed;
}

int main(void)
{
    int tests = 0, failures = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (const struct crlite_test *t = head; t; t = t->next) {
        const int f = run_one(t);
        tests++;
        failures += f;
        printf("[%s] %s::%s\n", f ? "FAIL" : "PASS", t->suite, t->name);
    }
    printf("crlite: %d tests, %d passed, %d failed\n", tests, tests - failures, failures);
    return failures ? 1 : 0;
}
