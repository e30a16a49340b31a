/* SPDX-License-Identifier: MIT */
/*
 * The seed's own test module (net-mesh 0.23.0 replication_election.rs),
 * case for case, through the public callback form, which has the seed's
 * shape (a replica set, an RTT lookup and a health lookup), and again
 * through the array form with the same data.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netelect.h>

#define MS 1000000ull

struct rtt_entry {
    uint64_t node, ms;
};

/* The seed's rtt_table + alive_set fixture. */
struct view {
    const struct rtt_entry *rtt;
    size_t n_rtt;
    const uint64_t *alive;
    size_t n_alive;
};

static uint64_t rtt_lookup(void *ctx, uint64_t node)
{
    const struct view *v = ctx;
    for (size_t i = 0; i < v->n_rtt; i++)
        if (v->rtt[i].node == node)
            return v->rtt[i].ms * MS;
    return NETELECT_RTT_UNKNOWN;
}

static int health_lookup(void *ctx, uint64_t node)
{
    const struct view *v = ctx;
    for (size_t i = 0; i < v->n_alive; i++)
        if (v->alive[i] == node)
            return 1;
    return 0;
}

/* Elects through both public forms and requires them to agree. */
static struct netelect_result elect2(const uint64_t *set, size_t n, uint64_t self,
                                     const struct view *v)
{
    struct netelect_result a = netelect_elect_cb(set, n, self, rtt_lookup, health_lookup,
                                                 (void *)v);
    uint64_t rtt[16];
    uint8_t healthy[16];
    cr_assert(n <= 16);
    for (size_t i = 0; i < n; i++) {
        rtt[i] = rtt_lookup((void *)v, set[i]);
        healthy[i] = (uint8_t)health_lookup((void *)v, set[i]);
    }
    struct netelect_result b = netelect_elect(n ? set : NULL, n ? rtt : NULL,
                                              n ? healthy : NULL, n, self);
    cr_assert_eq(a.outcome, b.outcome, "callback form %d vs array form %d", a.outcome,
                 b.outcome);
    cr_assert_eq(a.winner, b.winner, "callback form %" PRIx64 " vs array form %" PRIx64,
                 a.winner, b.winner);
    return a;
}

#define ARR(...) ((const uint64_t[]){__VA_ARGS__})
#define LEN(...) (sizeof((const uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t))
#define RTTS(...) ((const struct rtt_entry[]){__VA_ARGS__})
#define NRTT(...) (sizeof((const struct rtt_entry[]){__VA_ARGS__}) / sizeof(struct rtt_entry))

static void expect(struct netelect_result r, enum netelect_outcome o, uint64_t winner)
{
    cr_assert_eq(r.outcome, o, "outcome %d, expected %d", r.outcome, o);
    cr_assert_eq(r.winner, winner, "winner %#" PRIx64 ", expected %#" PRIx64, r.winner, winner);
}

Test(seed, single_eligible_replica_wins)
{
    struct view v = {NULL, 0, ARR(0x1), 1};
    expect(elect2(ARR(0x1), 1, 0x1, &v), NETELECT_SELF_WINS, 0x1);
}

Test(seed, empty_replica_set_yields_no_eligible)
{
    struct view v = {NULL, 0, ARR(0x1), 1};
    expect(elect2(NULL, 0, 0x1, &v), NETELECT_NO_ELIGIBLE, 0);
}

Test(seed, self_unhealthy_falls_to_peer)
{
    struct view v = {RTTS({0x2, 50}), 1, ARR(0x2), 1};
    expect(elect2(ARR(0x1, 0x2), 2, 0x1, &v), NETELECT_PEER_WINS, 0x2);
}

Test(seed, all_peers_unhealthy_falls_to_self)
{
    struct view v = {RTTS({0x2, 50}, {0x3, 75}), 2, ARR(0x1), 1};
    expect(elect2(ARR(0x1, 0x2, 0x3), 3, 0x1, &v), NETELECT_SELF_WINS, 0x1);
}

Test(seed, all_unhealthy_yields_no_eligible)
{
    struct view v = {NULL, 0, NULL, 0};
    expect(elect2(ARR(0x1, 0x2, 0x3), 3, 0x1, &v), NETELECT_NO_ELIGIBLE, 0);
}

Test(seed, self_wins_against_distant_peers)
{
    struct view v = {RTTS({0x2, 10}, {0x3, 5}), 2, ARR(0x1, 0x2, 0x3), 3};
    expect(elect2(ARR(0x1, 0x2, 0x3), 3, 0x1, &v), NETELECT_SELF_WINS, 0x1);
}

Test(seed, lowest_rtt_peer_wins_when_self_excluded)
{
    struct view v = {RTTS({0x10, 30}, {0x20, 10}, {0x30, 20}), 3, ARR(0x10, 0x20, 0x30), 3};
    expect(elect2(ARR(0x10, 0x20, 0x30), 3, 0xFF, &v), NETELECT_PEER_WINS, 0x20);
}

Test(seed, tied_rtt_breaks_by_lex_node_id)
{
    struct view v = {RTTS({0xAA, 25}, {0xBB, 25}, {0xCC, 25}), 3, ARR(0xAA, 0xBB, 0xCC), 3};
    expect(elect2(ARR(0xCC, 0xAA, 0xBB), 3, 0xFF, &v), NETELECT_PEER_WINS, 0xAA);
}

Test(seed, rtt_takes_priority_over_node_id)
{
    struct view v = {RTTS({0xAA, 50}, {0xBB, 10}), 2, ARR(0xAA, 0xBB), 2};
    expect(elect2(ARR(0xAA, 0xBB), 2, 0xFF, &v), NETELECT_PEER_WINS, 0xBB);
}

Test(seed, peer_without_rtt_measurement_ranks_at_worst_rtt)
{
    struct view v = {RTTS({0xAA, 30}, {0xBB, 50}), 2, ARR(0xAA, 0xBB, 0xCC), 3};
    const uint64_t *set = ARR(0xAA, 0xBB, 0xCC);
    expect(elect2(set, 3, 0xFF, &v), NETELECT_PEER_WINS, 0xAA);

    /* The unmeasured peer stays a valid backup: last in the failover order. */
    uint64_t rtt[3], out[3];
    uint8_t healthy[3];
    for (int i = 0; i < 3; i++) {
        rtt[i] = rtt_lookup(&v, set[i]);
        healthy[i] = 1;
    }
    cr_assert_eq(netelect_rank(set, rtt, healthy, 3, 0xFF, out), 3);
    cr_assert(out[0] == 0xAA && out[1] == 0xBB && out[2] == 0xCC);
}

Test(seed, only_unmeasured_peers_still_elect_a_leader)
{
    struct view v = {NULL, 0, ARR(0xAA, 0xBB), 2};
    expect(elect2(ARR(0xAA, 0xBB), 2, 0xFF, &v), NETELECT_PEER_WINS, 0xAA);
}

Test(seed, determinism_across_call_orders)
{
    static const uint64_t perms[6][3] = {
        {0x1, 0x2, 0x3}, {0x3, 0x2, 0x1}, {0x2, 0x1, 0x3},
        {0x1, 0x3, 0x2}, {0x3, 0x1, 0x2}, {0x2, 0x3, 0x1},
    };
    struct view v = {RTTS({0x1, 20}, {0x2, 20}, {0x3, 20}), 3, ARR(0x1, 0x2, 0x3), 3};
    for (int p = 0; p < 6; p++)
        expect(elect2(perms[p], 3, 0xFF, &v), NETELECT_PEER_WINS, 0x1);
}

Test(seed, self_at_zero_rtt_beats_peer_at_zero_rtt_via_lex_node_id)
{
    struct view smaller = {RTTS({0x10, 0}), 1, ARR(0x5, 0x10), 2};
    expect(elect2(ARR(0x5, 0x10), 2, 0x5, &smaller), NETELECT_SELF_WINS, 0x5);
    struct view larger = {RTTS({0x5, 0}), 1, ARR(0x5, 0x10), 2};
    expect(elect2(ARR(0x5, 0x10), 2, 0x10, &larger), NETELECT_PEER_WINS, 0x5);
}

Test(seed, winner_helper_strips_self_id)
{
    uint64_t peer = 0x77;
    struct netelect_result self = {NETELECT_SELF_WINS, 0x1};
    struct netelect_result p = {NETELECT_PEER_WINS, 0xAA};
    struct netelect_result none = {NETELECT_NO_ELIGIBLE, 0};
    cr_assert_eq(netelect_peer_winner(self, &peer), 0);
    cr_assert_eq(peer, 0x77, "SELF_WINS must not report a peer");
    cr_assert_eq(netelect_peer_winner(p, &peer), 1);
    cr_assert_eq(peer, 0xAA);
    peer = 0x77;
    cr_assert_eq(netelect_peer_winner(none, &peer), 0);
    cr_assert_eq(peer, 0x77);
}

Test(seed, is_self_helper)
{
    cr_assert(netelect_is_self((struct netelect_result){NETELECT_SELF_WINS, 1}));
    cr_assert_not(netelect_is_self((struct netelect_result){NETELECT_PEER_WINS, 0xAA}));
    cr_assert_not(netelect_is_self((struct netelect_result){NETELECT_NO_ELIGIBLE, 0}));
}

Test(seed, cross_partition_independent_evaluation)
{
    const uint64_t *global = ARR(0xA, 0xB, 0xC, 0xD);
    struct view side_a = {RTTS({0xB, 5}), 1, ARR(0xA, 0xB), 2};
    expect(elect2(global, 4, 0xA, &side_a), NETELECT_SELF_WINS, 0xA);
    struct view side_d = {RTTS({0xC, 5}), 1, ARR(0xC, 0xD), 2};
    expect(elect2(global, 4, 0xD, &side_d), NETELECT_SELF_WINS, 0xD);
}

Test(seed, central_peer_at_zero_rtt_wins_across_all_voters)
{
    const uint64_t *set = ARR(0x10, 0x20, 0x30);
    /* Every voter sees 0x10 at 0, 0x20 at 10 ms, 0x30 at 20 ms. */
    struct view v = {RTTS({0x10, 0}, {0x20, 10}, {0x30, 20}), 3, set, 3};
    for (int i = 0; i < 3; i++) {
        struct netelect_result r = elect2(set, 3, set[i], &v);
        cr_assert_neq(r.outcome, NETELECT_NO_ELIGIBLE);
        cr_assert_eq(r.winner, 0x10, "voter %#" PRIx64 " chose %#" PRIx64, set[i], r.winner);
    }
}

Test(seed, symmetric_failover_yields_dual_self_winners_as_expected)
{
    const uint64_t *set = ARR(0x05, 0x10, 0x20, 0x30);
    const uint64_t *survivors = ARR(0x10, 0x20, 0x30);
    /* Each survivor sees every other node at 5 ms; the dead leader is unhealthy. */
    struct view v = {RTTS({0x05, 5}, {0x10, 5}, {0x20, 5}, {0x30, 5}), 4, survivors, 3};
    for (int i = 0; i < 3; i++)
        expect(elect2(set, 4, survivors[i], &v), NETELECT_SELF_WINS, survivors[i]);
}

/* Beyond the seed: the rules the port adds or pins down. */
Test(rules, duplicate_ids_stay_separate_entries)
{
    const uint64_t ids[] = {7, 3, 7, 3};
    const uint64_t rtt[] = {5, 9, 5, 9};
    const uint8_t healthy[] = {1, 1, 1, 1};
    uint64_t out[4];
    cr_assert_eq(netelect_rank(ids, rtt, healthy, 4, 0xFF, out), 4);
    cr_assert(out[0] == 7 && out[1] == 7 && out[2] == 3 && out[3] == 3);
    /* A duplicated self: both copies at RTT 0. */
    cr_assert_eq(netelect_rank(ids, rtt, healthy, 4, 3, out), 4);
    cr_assert(out[0] == 3 && out[1] == 3 && out[2] == 7 && out[3] == 7);
}

Test(rules, saturated_measurement_ranks_before_unknown)
{
    const uint64_t ids[] = {1, 2};
    const uint64_t rtt[] = {NETELECT_RTT_UNKNOWN, NETELECT_RTT_MAX_MEASURED};
    const uint8_t healthy[] = {1, 1};
    expect(netelect_elect(ids, rtt, healthy, 2, 0xFF), NETELECT_PEER_WINS, 2);
    struct timespec huge = {.tv_sec = INT64_MAX, .tv_nsec = 999999999};
    cr_assert_eq(netelect_rtt_from_timespec(&huge), NETELECT_RTT_MAX_MEASURED);
    struct timespec ms = {.tv_sec = 1, .tv_nsec = 500};
    cr_assert_eq(netelect_rtt_from_timespec(&ms), 1000000500ull);
    struct timespec neg = {.tv_sec = -1, .tv_nsec = 0};
    cr_assert_eq(netelect_rtt_from_timespec(&neg), 0);
    cr_assert_eq(netelect_rtt_from_timespec(NULL), NETELECT_RTT_UNKNOWN);
}

Test(rules, topk_is_a_prefix_of_rank)
{
    const uint64_t ids[] = {50, 40, 30, 20, 10};
    const uint64_t rtt[] = {1, 2, 3, NETELECT_RTT_UNKNOWN, 2};
    const uint8_t healthy[] = {1, 1, 0, 1, 1};
    uint64_t all[5], top[5];
    size_t n = netelect_rank(ids, rtt, healthy, 5, 0xFF, all);
    cr_assert_eq(n, 4);
    for (size_t k = 0; k <= 5; k++) {
        memset(top, 0xEE, sizeof top);
        size_t m = netelect_topk(ids, rtt, healthy, 5, 0xFF, k, top);
        cr_assert_eq(m, k < n ? k : n);
        cr_assert(memcmp(top, all, m * sizeof *top) == 0, "k=%zu", k);
        if (m < 5)
            cr_assert_eq(top[m], 0xEEEEEEEEEEEEEEEEull, "topk wrote past its count");
    }
}

Test(rules, healthy_is_any_nonzero_byte)
{
    const uint64_t ids[] = {1, 2};
    const uint64_t rtt[] = {9, 8};
    const uint8_t healthy[] = {0x80, 0x02};
    expect(netelect_elect(ids, rtt, healthy, 2, 0xFF), NETELECT_PEER_WINS, 2);
}

Test(api, version_isa_and_errors)
{
    /* meson's project(version:) is the one source of both the library's
     * string and the header's numbers. */
    char hdr[32];
    snprintf(hdr, sizeof hdr, "%d.%d.%d", NETELECT_VERSION_MAJOR, NETELECT_VERSION_MINOR,
             NETELECT_VERSION_PATCH);
    cr_assert_str_eq(hdr, NETELECT_MESON_VERSION, "the header's version is meson's");
    cr_assert_str_eq(netelect_version(), NETELECT_MESON_VERSION, "the library's version is meson's");
    cr_assert_eq(netelect_version_number(), NETELECT_VERSION_NUMBER);
    const char *isa = netelect_isa();
    cr_assert(!strcmp(isa, "scalar") || !strcmp(isa, "avx2") || !strcmp(isa, "avx512") ||
              !strcmp(isa, "neon"));
    /* CI runs this suite forced to each level; scalar exists everywhere. */
    const char *forced = getenv("NETELECT_ISA");
    if (forced && !strcmp(forced, "scalar"))
        cr_assert_str_eq(isa, "scalar", "NETELECT_ISA=scalar must select the scalar kernels");
    cr_assert_eq(netelect_set_isa("bogus"), -EINVAL);
    cr_assert_eq(netelect_set_isa("scalar"), 0);
    cr_assert_str_eq(netelect_isa(), "scalar");
    cr_assert_str_eq(netelect_strerror(-ENOENT), "No such file or directory");
    cr_assert_str_eq(netelect_strerror(NETELECT_ENOCHAN), "no such channel");
    cr_assert_str_eq(netelect_strerror(NETELECT_ECORRUPT),
                     "segment is corrupt or not a netelect segment");
    cr_assert_str_eq(netelect_strerror(12345), "unknown error");
}
