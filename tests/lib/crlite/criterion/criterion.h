/* SPDX-License-Identifier: MIT */
/*
 * crlite: the subset of Criterion's test API that tests/core's unit tests
 * use, run in one process with no sandbox.  It exists for one place:
 * cross builds run under qemu-user (.ci/test-all's aarch64 tier), where
 * Criterion cannot run, because its BoxFort sandbox starts every test by
 * re-executing the test binary, which the host kernel cannot do for an
 * aarch64 ELF without qemu registered in binfmt_misc (CI containers have
 * no binfmt_misc).  Builds with Criterion never see this header.
 *
 * What it supports: Test(suite, name) with no options (.init, .fini,
 * .exit_code, .signal and the like are not understood: a test that needs
 * them must stay on Criterion), and cr_assert / cr_expect with _not, _eq,
 * _neq, _lt, _leq, _gt, _geq, _str_eq, _null, _not_null, each with an
 * optional printf message.  A failed cr_assert ends its test (longjmp
 * back to the runner); a failed cr_expect marks it failed and goes on, as
 * in Criterion.  Tests run in registration order, in one process: they
 * must not depend on a fresh process each, which the suites built with it
 * do not.
 */
#ifndef TESTS_LIB_CRLITE_CRITERION_CRITERION_H
#define TESTS_LIB_CRLITE_CRITERION_CRITERION_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct crlite_test {
    const char *suite, *name;
    void (*fn)(void);
    struct crlite_test *next;
};

void crlite_register(struct crlite_test *t);
/* Records a failed check; returns only for cr_expect (fatal == 0). */
void crlite_fail(int fatal, const char *file, int line, const char *check, const char *fmt,
                 ...);

#define CRLITE_TEST_(suite, name, ...)                                                    \
    static void suite##_##name(void);                                                     \
    __attribute__((constructor)) static void crlite_reg_##suite##_##name(void)            \
    {                                                                                     \
        static struct crlite_test t = {#suite, #name, suite##_##name, 0};                 \
        crlite_register(&t);                                                              \
    }                                                                                     \
    static void suite##_##name(void)
/* Every argument inside __VA_ARGS__: a macro's `...` may not be empty in C17. */
#define Test(...) CRLITE_TEST_(__VA_ARGS__, 0)

#define CRLITE_CHECK_(fatal, cond, text, ...)                                             \
    do {                                                                                  \
        if (!(cond))                                                                      \
            crlite_fail((fatal), __FILE__, __LINE__, (text), __VA_ARGS__);                \
    } while (0)
#define CRLITE_1_(f, a, ...) CRLITE_CHECK_(f, (a), #a, __VA_ARGS__)
#define CRLITE_NOT_(f, a, ...) CRLITE_CHECK_(f, !(a), "!(" #a ")", __VA_ARGS__)
#define CRLITE_2_(f, op, a, b, ...) CRLITE_CHECK_(f, (a)op(b), #a " " #op " " #b, __VA_ARGS__)
#define CRLITE_STR_(f, a, b, ...) CRLITE_CHECK_(f, !strcmp((a), (b)), #a " == " #b, __VA_ARGS__)
#define CRLITE_NULL_(f, a, ...) CRLITE_CHECK_(f, (a) == NULL, #a " == NULL", __VA_ARGS__)
#define CRLITE_NOT_NULL_(f, a, ...) CRLITE_CHECK_(f, (a) != NULL, #a " != NULL", __VA_ARGS__)

/* The trailing "" is the message when the caller gave none. */
#define cr_assert(...) CRLITE_1_(1, __VA_ARGS__, "")
#define cr_expect(...) CRLITE_1_(0, __VA_ARGS__, "")
#define cr_assert_not(...) CRLITE_NOT_(1, __VA_ARGS__, "")
#define cr_expect_not(...) CRLITE_NOT_(0, __VA_ARGS__, "")
#define cr_assert_eq(...) CRLITE_2_(1, ==, __VA_ARGS__, "")
#define cr_expect_eq(...) CRLITE_2_(0, ==, __VA_ARGS__, "")
#define cr_assert_neq(...) CRLITE_2_(1, !=, __VA_ARGS__, "")
#define cr_expect_neq(...) CRLITE_2_(0, !=, __VA_ARGS__, "")
#define cr_assert_lt(...) CRLITE_2_(1, <, __VA_ARGS__, "")
#define cr_expect_lt(...) CRLITE_2_(0, <, __VA_ARGS__, "")
#define cr_assert_leq(...) CRLITE_2_(1, <=, __VA_ARGS__, "")
#define cr_expect_leq(...) CRLITE_2_(0, <=, __VA_ARGS__, "")
#define cr_assert_gt(...) CRLITE_2_(1, >, __VA_ARGS__, "")
#define cr_expect_gt(...) CRLITE_2_(0, >, __VA_ARGS__, "")
#define cr_assert_geq(...) CRLITE_2_(1, >=, __VA_ARGS__, "")
#define cr_expect_geq(...) CRLITE_2_(0, >=, __VA_ARGS__, "")
#define cr_assert_str_eq(...) CRLITE_STR_(1, __VA_ARGS__, "")
#define cr_expect_str_eq(...) CRLITE_STR_(0, __VA_ARGS__, "")
#define cr_assert_null(...) CRLITE_NULL_(1, __VA_ARGS__, "")
#define cr_expect_null(...) CRLITE_NULL_(0, __VA_ARGS__, "")
#define cr_assert_not_null(...) CRLITE_NOT_NULL_(1, __VA_ARGS__, "")
#define cr_expect_not_null(...) CRLITE_NOT_NULL_(0, __VA_ARGS__, "")

#endif /* TESTS_LIB_CRLITE_CRITERION_CRITERION_H */
