// SPDX-License-Identifier: MIT
/*
 * The per-thread scratch buffer's keep policy (core/scratch.c).  A kept
 * buffer is recognised by a mark written past its first pages.  The
 * buffers checked for a lost mark are over 32 MiB, which glibc (whatever
 * its dynamic mmap threshold) and ASan always mmap: freed and allocated
 * again, they come back as fresh zeroed pages, so the mark is gone even
 * when the address happens to repeat.  No test depends on what
 * an earlier one left behind: each makes the buffer it checks, because
 * crlite (the aarch64 tier's stand-in for Criterion) runs them all in one
 * process and thread.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "core/dispatch.h"

#define MIB ((size_t)1 << 20)
static const char mark[] = "netelect scratch mark";

/* Gets `bytes`, marks it at `at`, and gives it back. */
static void *use_and_mark(size_t bytes, size_t at)
{
    unsigned char *p = netelect__scratch_get(bytes);
    cr_assert_not_null(p, "scratch_get(%zu) failed", bytes);
    memcpy(p + at, mark, sizeof mark);
    netelect__scratch_put(p);
    return p;
}

static int has_mark(const unsigned char *p, size_t at)
{
    return memcmp(p + at, mark, sizeof mark) == 0;
}

/* A rank of 1M candidates needs 15 to 31 MiB: kept between such calls. */
Test(scratch, large_buffer_kept_while_needed)
{
    const size_t big = 33 * MIB, at = 20 * MIB + 7;
    void *p = use_and_mark(big, at);
    unsigned char *q = netelect__scratch_get(big);
    cr_assert_eq(q, p, "a second call of the same size got another buffer");
    cr_assert(has_mark(q, at), "the buffer was given back between two calls that need it");
    netelect__scratch_put(q);
    /* A smaller call that still needs more than 8 MiB keeps it too. */
    q = netelect__scratch_get(12 * MIB);
    cr_assert(q == p && has_mark(q, at), "a 12 MiB call dropped the 33 MiB buffer");
    netelect__scratch_put(q);
}

/* The first call that needs no more than 8 MiB gives the large one back. */
Test(scratch, large_buffer_given_back_by_small_call)
{
    const size_t big = 33 * MIB, at = 20 * MIB + 7;
    use_and_mark(big, at);
    unsigned char *s = netelect__scratch_get(4096);
    cr_assert_not_null(s);
    netelect__scratch_put(s);
    unsigned char *q = netelect__scratch_get(big);
    cr_assert_not_null(q);
    cr_assert_not(has_mark(q, at), "the 33 MiB buffer survived a 4 KiB call");
    netelect__scratch_put(q);
}

/* Small buffers are kept whatever follows, as before. */
Test(scratch, small_buffer_always_kept)
{
    const size_t at = 5 * MIB + 3;
    void *p = use_and_mark(6 * MIB, at);
    unsigned char *q = netelect__scratch_get(100);
    cr_assert(q == p && has_mark(q, at), "a 6 MiB buffer was not reused by a 100 B call");
    netelect__scratch_put(q);
}

/* Past 64 MiB nothing is kept: allocated and freed per call. */
Test(scratch, huge_buffer_not_kept)
{
    const size_t huge = 80 * MIB, at = 70 * MIB + 1;
    use_and_mark(huge, at);
    unsigned char *q = netelect__scratch_get(huge);
    cr_assert_not_null(q);
    cr_assert_not(has_mark(q, at), "an 80 MiB buffer was kept");
    netelect__scratch_put(q);
}
