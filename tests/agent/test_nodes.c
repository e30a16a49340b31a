/* SPDX-License-Identifier: MIT */
/* netelectd's node table, probe heap, channels and change detection. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/clock.h"

static uint64_t fake_now = 1000000000ull;
uint64_t agent_now_ns(void)
{
    return fake_now;
}

static struct agent *mk(void)
{
    static struct agent a;
    memset(&a, 0, sizeof a);
    agent_cfg_defaults(&a.cfg);
    a.probe_params = (struct netelect_probe_params){100000000, 100000000, 3, 3, 10, 60000000000ull};
    a.self = 1;
    return &a;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void heap_ok(struct agent *a)
{
    for (size_t i = 1; i < a->heap_n; i++) {
        cr_assert_leq(agent_probe_next(&a->heap[(i - 1) / 2]->probe), agent_probe_next(&a->heap[i]->probe),
                      "heap order broken at %zu", i);
        cr_assert_eq(a->heap[i]->heap_idx, i);
    }
}

Test(nodes, thousands_of_peers_table_and_heap, .timeout = 30)
{
    struct agent *a = mk();
    enum { N = 5000 };
    struct sockaddr_storage ss;
    socklen_t l;
    agent_parse_addr("127.0.0.1:9", &ss, &l, 0);
    uint64_t s = 88172645463325252ull;
    static uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        ids[i] = rnd(&s) | 1;
        struct node *n = agent_node_get(a, ids[i]);
        n->orig |= ORIG_CFG;
        agent_node_set_addr(a, n, &ss, l);
    }
    cr_assert_eq(a->n_nodes, N);
    cr_assert_eq(a->heap_n, N);
    heap_ok(a);
    /* random next-send times, then pop in order the way the event loop does */
    for (int i = 0; i < N; i++) {
        struct node *n = agent_node_find(a, ids[i]);
        cr_assert_not_null(n);
        n->probe.next_send_ns = fake_now + rnd(&s) % 100000000;
        agent_heap_fix(a, n);
    }
    heap_ok(a);
    uint64_t last = 0;
    for (int i = 0; i < N; i++) {
        struct node *t = agent_heap_top(a);
        uint64_t k = agent_probe_next(&t->probe);
        cr_assert_geq(k, last);
        last = k;
        t->probe.next_send_ns = UINT64_MAX - 1; /* "processed": goes to the back */
        agent_heap_fix(a, t);
    }
    /* delete every other node: lookups of the rest still work (backward-shift delete) */
    for (int i = 0; i < N; i += 2)
        agent_node_forget_orig(a, agent_node_find(a, ids[i]), ORIG_CFG);
    cr_assert_eq(a->n_nodes, N / 2);
    cr_assert_eq(a->heap_n, N / 2);
    heap_ok(a);
    for (int i = 0; i < N; i++) {
        struct node *n = agent_node_find(a, ids[i]);
        if (i % 2)
            cr_assert(n && n->id == ids[i]);
        else
            cr_assert_null(n);
    }
}

Test(nodes, origins_keep_nodes_alive, .timeout = 10)
{
    struct agent *a = mk();
    struct node *n = agent_node_get(a, 42);
    n->orig = ORIG_CFG | ORIG_SERF;
    agent_node_forget_orig(a, n, ORIG_CFG);
    cr_assert_not_null(agent_node_find(a, 42), "Serf still knows it");
    agent_node_forget_orig(a, agent_node_find(a, 42), ORIG_SERF);
    cr_assert_null(agent_node_find(a, 42));
}

Test(nodes, change_detection_hard_and_soft, .timeout = 10)
{
    struct agent *a = mk();
    struct sockaddr_storage ss;
    socklen_t l;
    agent_parse_addr("127.0.0.1:9", &ss, &l, 0);
    struct node *n = agent_node_get(a, 7);
    n->orig = ORIG_CFG;
    agent_node_set_addr(a, n, &ss, l);
    cr_assert(a->dirty_hard, "a new node is a hard change");
    /* pretend it was published */
    n->pub = agent_node_view(a, n);
    n->pub_valid = true;
    a->dirty_hard = a->dirty_soft = false;
    n->probe.samples = 1;
    n->probe.srtt_ns = 1000000;
    agent_node_changed(a, n);
    cr_assert(a->dirty_hard, "unknown -> measured RTT is hard");
    n->pub = agent_node_view(a, n);
    a->dirty_hard = false;
    n->probe.srtt_ns = 1050000; /* +5 % < rtt_change_pct 10 */
    agent_node_changed(a, n);
    cr_assert(!a->dirty_hard && a->dirty_soft, "a small drift rides on the heartbeat");
    a->dirty_soft = false;
    n->probe.srtt_ns = 1200000; /* +20 % */
    agent_node_changed(a, n);
    cr_assert(a->dirty_hard, "a large move is hard");
    n->pub = agent_node_view(a, n);
    a->dirty_hard = false;
    n->probe.healthy = 1;
    agent_node_changed(a, n);
    cr_assert(a->dirty_hard, "health is hard");
    n->pub = agent_node_view(a, n);
    a->dirty_hard = a->dirty_soft = false;
    agent_node_changed(a, n);
    cr_assert(!a->dirty_hard && !a->dirty_soft, "nothing changed, nothing to publish");
}

Test(nodes, rtt_hysteresis_band, .timeout = 10)
{
    /* off: the estimate as it is */
    cr_assert_eq(agent_rtt_hold(1000000, 1300000, 0, 0), 1300000);
    /* 20 %: the band around 1 ms is [0.8 ms, 1.2 ms], edges included */
    cr_assert_eq(agent_rtt_hold(1000000, 1200000, 20, 0), 1000000);
    cr_assert_eq(agent_rtt_hold(1000000, 800000, 20, 0), 1000000);
    cr_assert_eq(agent_rtt_hold(1000000, 1200001, 20, 0), 1200001, "leaves the band upwards");
    cr_assert_eq(agent_rtt_hold(1000000, 799999, 20, 0), 799999, "leaves it downwards");
    /* the absolute floor widens a narrow band, never narrows a wide one */
    cr_assert_eq(agent_rtt_hold(100000, 140000, 20, 50000), 100000, "20 us < 50 us floor");
    cr_assert_eq(agent_rtt_hold(100000, 150001, 20, 50000), 150001);
    cr_assert_eq(agent_rtt_hold(1000000, 1190000, 20, 50000), 1000000, "200 us > floor");
    cr_assert_eq(agent_rtt_hold(100000, 140000, 0, 50000), 100000, "floor alone");
    /* unknown is never held, nor held onto */
    cr_assert_eq(agent_rtt_hold(NETELECT_RTT_UNKNOWN, 5, 20, 50000), 5);
    cr_assert_eq(agent_rtt_hold(5, NETELECT_RTT_UNKNOWN, 20, 50000), NETELECT_RTT_UNKNOWN);
    /* no overflow near the top of the range */
    uint64_t big = NETELECT_RTT_MAX_MEASURED;
    cr_assert_eq(agent_rtt_hold(big, big / 2, 100, 0), big, "100 %% band holds down to 0");
    cr_assert_eq(agent_rtt_hold(big - 1, big, 1, 0), big - 1);
}

/* Two near-equal peers whose estimates jitter inside the band keep the
 * published order; a real move is published at once (hard). */
Test(nodes, rtt_hysteresis_holds_published_order, .timeout = 10)
{
    struct agent *a = mk();
    a->cfg.rtt_hyst_pct = 20;
    a->cfg.rtt_hyst_min_ns = 50000;
    struct sockaddr_storage ss;
    socklen_t l;
    agent_parse_addr("127.0.0.1:9", &ss, &l, 0);
    struct node *b = agent_node_get(a, 0xb), *c = agent_node_get(a, 0xc);
    struct node *ns[2] = {b, c};
    for (int i = 0; i < 2; i++) {
        agent_node_set_addr(a, ns[i], &ss, l);
        ns[i]->probe.samples = 1;
        ns[i]->probe.healthy = 1;
        ns[i]->probe.srtt_ns = i ? 436000 : 371000;
        ns[i]->pub = agent_node_view(a, ns[i]); /* published */
        ns[i]->pub_valid = true;
    }
    uint64_t s = 12345;
    for (int k = 0; k < 1000; k++) {
        a->dirty_hard = false;
        /* both jitter across each other: 371..445 us and 360..439 us */
        b->probe.srtt_ns = 371000 + rnd(&s) % 74000;
        c->probe.srtt_ns = 360000 + rnd(&s) % 80000;
        for (int i = 0; i < 2; i++) {
            agent_node_changed(a, ns[i]);
            ns[i]->pub = agent_node_view(a, ns[i]);
        }
        cr_assert(!a->dirty_hard, "a move inside the band is no hard change (round %d)", k);
        cr_assert_eq(b->pub.rtt_ns, 371000, "B's published RTT holds");
        cr_assert_eq(c->pub.rtt_ns, 436000, "C's published RTT holds");
        cr_assert_eq(b->pub.rtt_raw_ns, b->probe.raw_ns, "the raw sample stays live");
    }
    b->probe.srtt_ns = 3 * 371000;
    agent_node_changed(a, b);
    cr_assert(a->dirty_hard, "a 3x slower peer is a hard change");
    cr_assert_eq(agent_node_view(a, b).rtt_ns, 3 * 371000, "published as measured");
    /* an operator's value is exact, never held */
    b->pub = agent_node_view(a, b);
    b->rtt_ovr = true;
    b->rtt_ovr_ns = 1100000;
    cr_assert_eq(agent_node_view(a, b).rtt_ns, 1100000);
    /* off again (a reload): the estimate itself */
    b->rtt_ovr = false;
    a->cfg.rtt_hyst_pct = 0;
    a->cfg.rtt_hyst_min_ns = 0;
    c->probe.srtt_ns = 440000;
    cr_assert_eq(agent_node_view(a, c).rtt_ns, 440000);
}

Test(nodes, drain_by_channel_and_all, .timeout = 10)
{
    struct agent *a = mk();
    cr_assert(!agent_drained(a, "orders"));
    cr_assert_eq(agent_drain(a, "orders", true), 1);
    cr_assert(a->dirty_hard, "a drain is published at once");
    cr_assert_eq(agent_drain(a, "orders", true), 0, "already drained");
    cr_assert_eq(agent_drain(a, "audit", true), 1);
    cr_assert(agent_drained(a, "orders") && agent_drained(a, "audit"));
    cr_assert(!agent_drained(a, "other"));
    cr_assert_eq(agent_drain(a, "orders", false), 1);
    cr_assert(!agent_drained(a, "orders") && agent_drained(a, "audit"));
    cr_assert_eq(agent_drain(a, "orders", false), 0, "not drained: no change");
    cr_assert_eq(agent_drain(a, NULL, true), 1);
    cr_assert(agent_drained(a, "anything"), "drain all covers channels not named");
    cr_assert_eq(agent_drain(a, NULL, false), 1);
    cr_assert(!a->drain_all && a->n_drained == 0, "undrain all ends the named drains too");
    cr_assert(!agent_drained(a, "audit"));
    cr_assert_eq(agent_drain(a, NULL, false), 0);
    for (int i = 0; i < 100; i++) { /* the list grows */
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        cr_assert_eq(agent_drain(a, name, true), 1);
    }
    cr_assert(agent_drained(a, "c0") && agent_drained(a, "c99") && !agent_drained(a, "c100"));
    free(a->drained);
}

Test(nodes, combining_sources, .timeout = 10)
{
    struct agent *a = mk();
    struct node *n = agent_node_get(a, 9);
    struct netelect_wnode w = agent_node_view(a, n);
    cr_assert_eq(w.rtt_ns, NETELECT_RTT_UNKNOWN);
    cr_assert_eq(w.healthy, 0, "known only as a member: unhealthy");
    n->serf_known = n->serf_alive = n->serf_has_rtt = true;
    n->serf_rtt_ns = 5000000;
    w = agent_node_view(a, n);
    cr_assert(w.healthy && w.source == NETELECT_SRC_SERF && w.rtt_ns == 5000000);
    struct sockaddr_storage ss;
    socklen_t l;
    agent_parse_addr("127.0.0.1:9", &ss, &l, 0);
    agent_node_set_addr(a, n, &ss, l);
    w = agent_node_view(a, n);
    cr_assert(!w.healthy, "probed: probes decide (none answered yet)");
    cr_assert_eq(w.source, NETELECT_SRC_SERF, "Serf RTT until a probe measures one");
    n->probe.samples = 1;
    n->probe.srtt_ns = 700000;
    n->probe.healthy = 1;
    w = agent_node_view(a, n);
    cr_assert(w.healthy && w.source == NETELECT_SRC_PROBE && w.rtt_ns == 700000, "probe preferred");
    n->serf_alive = false;
    w = agent_node_view(a, n);
    cr_assert(!w.healthy, "Serf failed/left wins over live probes");
    n->health_ovr = true;
    n->health_ovr_val = 1;
    n->rtt_ovr = true;
    n->rtt_ovr_ns = UINT64_MAX;
    w = agent_node_view(a, n);
    cr_assert(w.healthy && w.source == NETELECT_SRC_OPERATOR);
    cr_assert_eq(w.rtt_ns, NETELECT_RTT_MAX_MEASURED, "an override never means 'unknown'");
}

Test(nodes, channels_by_origin, .timeout = 10)
{
    struct agent *a = mk();
    struct chan *c = agent_chan_get(a, "orders");
    agent_chan_add_member(a, c, 1, ORIG_CFG);
    agent_chan_add_member(a, c, 2, ORIG_CFG);
    agent_chan_add_member(a, c, 2, ORIG_CTL);
    agent_chan_add_member(a, agent_chan_get(a, "cfg-only"), 3, ORIG_CFG);
    cr_assert_eq(a->n_chans, 2);
    agent_chan_forget_orig(a, ORIG_CFG); /* a reload */
    cr_assert_eq(a->n_chans, 1, "a channel left empty by a reload goes");
    c = agent_chan_find(a, "orders");
    cr_assert_not_null(c);
    cr_assert_eq(c->n, 1);
    cr_assert_eq(c->m[0].id, 2, "the member added over the control socket stays");
}

/* The membership set stays exact through random adds, removes and reloads
 * (checked against a plain array), and every member is found at its index. */
Test(nodes, membership_set_matches_reference, .timeout = 30)
{
    struct agent *a = mk();
    struct chan *c = agent_chan_get(a, "set");
    enum { U = 3000 };
    static unsigned ref[U]; /* origin bits of id i+1, 0: not a member */
    memset(ref, 0, sizeof ref);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int step = 0; step < 200000; step++) {
        uint64_t id = rnd(&s) % U + 1;
        unsigned o = rnd(&s) & 1 ? ORIG_CFG : ORIG_SERF;
        switch (rnd(&s) % 4) {
        case 0:
        case 1:
            cr_assert_eq(agent_chan_add_member(a, c, id, o), 0);
            ref[id - 1] |= o;
            break;
        case 2:
            agent_chan_remove_member(a, c, id);
            ref[id - 1] = 0;
            break;
        default: {
            struct member *m = agent_chan_member(c, id);
            cr_assert_eq(m != NULL, ref[id - 1] != 0, "find(%llu) disagrees", (unsigned long long)id);
            if (m)
                cr_assert_eq(m->orig, ref[id - 1]);
        }
        }
    }
    size_t n = 0;
    for (int i = 0; i < U; i++)
        n += ref[i] != 0;
    cr_assert_eq(c->n, n);
    for (size_t j = 0; j < c->n; j++)
        cr_assert_eq(agent_chan_member(c, c->m[j].id), &c->m[j], "member %zu not at its index", j);
    agent_chan_forget_orig(a, ORIG_SERF); /* swap-removes many at once */
    for (size_t j = 0; j < c->n; j++) {
        cr_assert_eq(c->m[j].orig & ORIG_SERF, 0);
        cr_assert_eq(agent_chan_member(c, c->m[j].id), &c->m[j]);
    }
    for (int i = 0; i < U; i++)
        if (!(ref[i] & ORIG_CFG))
            cr_assert_null(agent_chan_member(c, (uint64_t)i + 1));
    agent_chan_forget_orig(a, ORIG_CFG);
}

/* Adding members goes through the channel's member set, not a scan of the
 * channel: a scan is O(n^2) for a big Serf channel (400k members take
 * minutes), the set milliseconds. */
Test(nodes, big_channel_adds_are_not_quadratic, .timeout = 10)
{
    struct agent *a = mk();
    struct chan *c = agent_chan_get(a, "big");
    enum { N = 400000 };
    for (uint64_t i = 1; i <= N; i++)
        cr_assert_eq(agent_chan_add_member(a, c, i * 0x10001, ORIG_SERF), 0);
    for (uint64_t i = 1; i <= N; i++) /* re-adding: every lookup hits */
        cr_assert_eq(agent_chan_add_member(a, c, i * 0x10001, ORIG_CTL), 0);
    cr_assert_eq(c->n, N);
    for (uint64_t i = 1; i <= N; i += 2)
        agent_chan_remove_member(a, c, i * 0x10001);
    cr_assert_eq(c->n, N / 2);
    agent_chan_forget_orig(a, ORIG_SERF | ORIG_CTL);
    cr_assert_eq(a->n_chans, 0);
}

Test(nodes, limits_refuse_with_a_clear_error, .timeout = 10)
{
    struct agent *a = mk();
    a->cfg.max_nodes = 3;
    a->cfg.max_chans = 2;
    a->cfg.max_members = 2;
    char err[256];
    struct node *n;
    for (uint64_t id = 10; id < 13; id++)
        cr_assert_eq(agent_node_get_limited(a, id, &n, err, sizeof err), 0);
    cr_assert_eq(agent_node_get_limited(a, 13, &n, err, sizeof err), -ENOSPC);
    cr_assert(strstr(err, "node limit reached") && strstr(err, "[limits] nodes = 3"), "%s", err);
    cr_assert_eq(a->n_nodes, 3, "a refused node is not added");
    cr_assert_eq(agent_node_get_limited(a, 11, &n, err, sizeof err), 0, "existing: no limit");
    cr_assert_eq(n->id, 11);
    struct chan *c;
    cr_assert_eq(agent_chan_get_limited(a, "a", &c, err, sizeof err), 0);
    cr_assert_eq(agent_chan_get_limited(a, "b", &c, err, sizeof err), 0);
    cr_assert_eq(agent_chan_get_limited(a, "c", &c, err, sizeof err), -ENOSPC);
    cr_assert(strstr(err, "channel limit reached"), "%s", err);
    cr_assert_eq(agent_chan_get_limited(a, "a", &c, err, sizeof err), 0);
    cr_assert_eq(agent_chan_add_member_limited(a, c, 5, ORIG_CTL, err, sizeof err), 0);
    cr_assert_eq(agent_chan_add_member_limited(a, c, 6, ORIG_CTL, err, sizeof err), 0);
    cr_assert_eq(agent_chan_add_member_limited(a, c, 7, ORIG_CTL, err, sizeof err), -ENOSPC);
    cr_assert(strstr(err, "channel 'a' has 2 members"), "%s", err);
    cr_assert_eq(agent_chan_add_member_limited(a, c, 6, ORIG_SERF, err, sizeof err), 0,
                 "an existing member only gains an origin");
    cr_assert_eq(agent_chan_member(c, 6)->orig, ORIG_CTL | ORIG_SERF);
    cr_assert_eq(agent_limit_members(a, NULL, 3, err, sizeof err), -ENOSPC);
    /* the configuration is never limited: it only counts */
    agent_chan_add_member(a, c, 8, ORIG_CFG);
    cr_assert_eq(c->n, 3);
}

/* The receive path knows a probed peer's address (so it can
 * verify before rate-limiting); peers may share an address. */
Test(nodes, peer_address_multiset, .timeout = 10)
{
    struct agent *a = mk();
    struct sockaddr_storage s1, s2, m1;
    socklen_t l1, l2, lm;
    agent_parse_addr("127.0.0.2:7707", &s1, &l1, 0);
    agent_parse_addr("127.0.0.3:7707", &s2, &l2, 0);
    agent_parse_addr("[::ffff:127.0.0.2]:7707", &m1, &lm, 0);
    cr_assert(!agent_addr_known(a, &s1, l1));
    struct node *x = agent_node_get(a, 10), *y = agent_node_get(a, 11);
    x->orig = y->orig = ORIG_CFG;
    agent_node_set_addr(a, x, &s1, l1);
    agent_node_set_addr(a, y, &s1, l1);
    cr_assert(agent_addr_known(a, &s1, l1));
    cr_assert(agent_addr_known(a, &m1, lm), "a dual-stack socket's v4-mapped form matches");
    cr_assert(!agent_addr_known(a, &s2, l2));
    agent_node_set_addr(a, x, &s2, l2); /* x moves */
    cr_assert(agent_addr_known(a, &s1, l1), "y is still there");
    cr_assert(agent_addr_known(a, &s2, l2));
    agent_node_forget_orig(a, y, ORIG_CFG);
    cr_assert(!agent_addr_known(a, &s1, l1), "the last node at s1 went");
    agent_node_clear_addr(a, x);
    cr_assert(!agent_addr_known(a, &s2, l2));
    /* many addresses: growth and backward-shift deletes keep lookups exact */
    enum { N = 3000 };
    static struct node *ns[N];
    for (int i = 0; i < N; i++) {
        char b[48];
        snprintf(b, sizeof b, "10.%d.%d.1:%d", i / 200, i % 200, 1000 + i);
        struct sockaddr_storage ss;
        socklen_t l;
        agent_parse_addr(b, &ss, &l, 0);
        ns[i] = agent_node_get(a, 100 + (uint64_t)i);
        ns[i]->orig = ORIG_CTL;
        agent_node_set_addr(a, ns[i], &ss, l);
    }
    for (int i = 0; i < N; i += 2)
        agent_node_forget_orig(a, ns[i], ORIG_CTL);
    for (int i = 0; i < N; i++) {
        char b[48];
        snprintf(b, sizeof b, "10.%d.%d.1:%d", i / 200, i % 200, 1000 + i);
        struct sockaddr_storage ss;
        socklen_t l;
        agent_parse_addr(b, &ss, &l, 0);
        cr_assert_eq(agent_addr_known(a, &ss, l), i % 2 == 1, "%s", b);
    }
}
