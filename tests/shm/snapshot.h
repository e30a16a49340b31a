/* SPDX-License-Identifier: MIT */
/*
 * The reader side of the torture oracle, shared by the multi-process
 * torture test and the in-process TSAN test: a snapshot callback that reads
 * one channel's members and election inside netelect_view_read(), and the
 * checks that what it read is what the generation it read says
 * (tests/shm/oracle.h).  Both tests pick their own sizes and member lists,
 * so the includer defines NMEM (members per channel) and
 * `static uint64_t member(int c, int k)` (channel c's k-th member) first.
 */
#ifndef TESTS_SHM_SNAPSHOT_H
#define TESTS_SHM_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "netelect.h"
#include "tests/shm/oracle.h"

#ifndef NMEM
#error "define NMEM and member() before including tests/shm/snapshot.h"
#endif

/* What one netelect_view_read() of channel "c<c>" saw; c and self are
 * the caller's, the rest the callback's. */
struct snapctx {
    int c;
    uint64_t self;
    uint64_t gen;
    uint64_t ids[NMEM], rtt[NMEM];
    uint8_t ok[NMEM];
    size_t n;
    struct netelect_result res;
    int rc_members, rc_elect;
};

static int snap_fn(const struct netelect_snap *s, void *p)
{
    struct snapctx *x = p;
    char nm[8];
    snprintf(nm, sizeof nm, "c%d", x->c);
    x->gen = netelect_snap_generation(s);
    x->rc_members = netelect_snap_members(s, nm, x->ids, x->rtt, x->ok, NMEM, &x->n);
    x->rc_elect = netelect_snap_elect(s, nm, x->self, &x->res);
    return 0;
}

/* True iff r is the election generation g says channel c holds for self,
 * with delta period `period` (oracle.h, o_gen). */
static bool check_elect(int c, uint64_t self, uint64_t g, struct netelect_result r,
                        unsigned period)
{
    uint64_t ids[NMEM], rtt[NMEM];
    uint8_t ok[NMEM];
    for (int k = 0; k < NMEM; k++) {
        ids[k] = member(c, k);
        rtt[k] = o_rtt(o_gen(g, ids[k], period), ids[k]);
        ok[k] = o_ok(o_gen(g, ids[k], period), ids[k]);
    }
    struct netelect_result want = netelect_elect(ids, rtt, ok, NMEM, self);
    return want.outcome == r.outcome && want.winner == r.winner;
}

/* True iff everything snap_fn read is what generation x->gen published. */
static bool check(const struct snapctx *x, unsigned period)
{
    if (x->rc_members || x->rc_elect || x->n != NMEM)
        return false;
    for (int k = 0; k < NMEM; k++) {
        const uint64_t id = member(x->c, k), g = o_gen(x->gen, id, period);
        if (x->ids[k] != id || x->rtt[k] != o_rtt(g, id) || x->ok[k] != o_ok(g, id))
            return false;
    }
    return check_elect(x->c, x->self, x->gen, x->res, period);
}

#endif /* TESTS_SHM_SNAPSHOT_H */
