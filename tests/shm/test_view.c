/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the segment: writer + reader round trips, lifecycle
 * (restart, abandon, staleness, growth), the single-writer lock and the
 * reader registry.  Attach validation has its own file (test_attach.c).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "netelect.h"
#include "shm/layout.h"
#include "shm/registry.h"
#include "shm/view_internal.h"
#include "shm/writer.h"
#include "tests/shm/helpers.h"

static char name[128];

static void setup(void)
{
    t_name(name, sizeof name, "view");
    t_unlink(name);
}

static void teardown(void)
{
    t_unlink(name);
}

TestSuite(shm, .init = setup, .fini = teardown, .timeout = 30);

static struct netelect_writer *wopen(uint64_t self, uint32_t slots)
{
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = self,
                                         .slots = slots};
    struct netelect_writer *w = NULL;
    int rc = netelect__writer_open(&cfg, &w);
    cr_assert_eq(rc, 0, "writer_open: %s", netelect_strerror(rc));
    return w;
}

/* A small view: nodes 1..5 (3 unhealthy), node 9 unmeasured; channel "a"
 * = {1,2,3}, "b" = {3,4,7 (not a node)}, "self" = {1,2,100}, "empty" = {}. */
static const struct netelect_wnode base_nodes[] = {
    {.id = 1, .rtt_ns = 500, .rtt_raw_ns = 510, .rtt_err_ns = 5, .last_heard_ns = 11, .healthy = 1,
     .source = NETELECT_SRC_PROBE},
    {.id = 2, .rtt_ns = 300, .rtt_raw_ns = 290, .rtt_err_ns = 3, .last_heard_ns = 12, .healthy = 1,
     .source = NETELECT_SRC_SERF},
    {.id = 3, .rtt_ns = 100, .rtt_raw_ns = 100, .healthy = 0, .source = NETELECT_SRC_PROBE},
    {.id = 4, .rtt_ns = 900, .rtt_raw_ns = 900, .healthy = 1, .source = NETELECT_SRC_OPERATOR},
    {.id = 9, .rtt_ns = NETELECT_RTT_UNKNOWN, .rtt_raw_ns = NETELECT_RTT_UNKNOWN, .healthy = 1},
    {.id = 100, .rtt_ns = 7777, .healthy = 1, .source = NETELECT_SRC_PROBE},
};
static const uint64_t ch_a[] = {1, 2, 3};
static const uint64_t ch_b[] = {3, 4, 7};
static const uint64_t ch_self[] = {1, 2, 100};
static const uint64_t ch_unk[] = {9, 4};
static const struct netelect_wchan base_chans[] = {
    {"a", ch_a, 3}, {"b", ch_b, 3}, {"self", ch_self, 3}, {"empty", NULL, 0}, {"unk", ch_unk, 2},
};

static void publish_base(struct netelect_writer *w)
{
    int rc = netelect__writer_publish(w, base_nodes, 6, base_chans, 5);
    cr_assert_eq(rc, 0, "publish: %s", netelect_strerror(rc));
}

static struct netelect_view *vopen(void)
{
    struct netelect_view *v = NULL;
    int rc = netelect_view_open(name, &v);
    cr_assert_eq(rc, 0, "view_open: %s", netelect_strerror(rc));
    return v;
}

Test(shm, round_trip_elect)
{
    struct netelect_writer *w = wopen(100, 0);
    publish_base(w);
    struct netelect_view *v = vopen();
    struct netelect_result r;

    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0);
    cr_assert_eq(r.outcome, NETELECT_PEER_WINS);
    cr_assert_eq(r.winner, 2); /* 3 is nearer but unhealthy */

    cr_assert_eq(netelect_view_elect(v, "b", 0, &r), 0);
    cr_assert_eq(r.winner, 4, "7 is not a node: non-candidate; got %" PRIu64, r.winner);

    cr_assert_eq(netelect_view_elect(v, "self", 100, &r), 0);
    cr_assert_eq(r.outcome, NETELECT_SELF_WINS, "self is at RTT 0 whatever was measured");
    cr_assert_eq(r.winner, 100);
    cr_assert_eq(netelect_view_self(v), 100);
    cr_assert_eq(netelect_view_elect(v, "self", netelect_view_self(v), &r), 0);
    cr_assert_eq(r.outcome, NETELECT_SELF_WINS);

    cr_assert_eq(netelect_view_elect(v, "empty", 0, &r), 0);
    cr_assert_eq(r.outcome, NETELECT_NO_ELIGIBLE);

    cr_assert_eq(netelect_view_elect(v, "unk", 0, &r), 0);
    cr_assert_eq(r.winner, 4, "an unmeasured peer ranks after every measured one");
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

Test(shm, same_answer_as_in_memory)
{
    /* 2000 nodes, 40 channels of varied size, against netelect_elect and
     * netelect_rank on the same data in private memory. */
    enum { N = 2000, C = 40 };
    struct netelect_wnode *nodes = calloc(N, sizeof *nodes);
    uint64_t *mem = calloc((size_t)C * 300, sizeof *mem);
    struct netelect_wchan chans[C];
    char names[C][16];
    uint64_t x = 42;
    for (int i = 0; i < N; i++) {
        x = netelect__mix64(x + 1);
        nodes[i].id = x >> 8 | 1;
        nodes[i].rtt_ns = (x & 15) == 0 ? NETELECT_RTT_UNKNOWN : (x >> 20) % 5000;
        nodes[i].healthy = (x & 7) != 0;
    }
    for (int c = 0; c < C; c++) {
        snprintf(names[c], sizeof names[c], "chan-%d", c);
        uint32_t n = (uint32_t)(c * 7 % 300);
        for (uint32_t k = 0; k < n; k++) {
            x = netelect__mix64(x + 7);
            mem[c * 300 + k] = (x & 31) == 0 ? x : nodes[x % N].id; /* some not nodes */
        }
        chans[c] = (struct netelect_wchan){names[c], mem + c * 300, n};
    }
    struct netelect_writer *w = wopen(nodes[5].id, 4);
    cr_assert_eq(netelect__writer_publish(w, nodes, N, chans, C), 0);
    struct netelect_view *v = vopen();
    for (int c = 0; c < C; c++) {
        uint64_t ids[300], rtt[300];
        uint8_t ok[300];
        uint32_t n = chans[c].n_members;
        for (uint32_t k = 0; k < n; k++) {
            ids[k] = chans[c].members[k];
            rtt[k] = NETELECT_RTT_UNKNOWN;
            ok[k] = 0;
            for (int i = 0; i < N; i++)
                if (nodes[i].id == ids[k]) {
                    rtt[k] = nodes[i].rtt_ns;
                    ok[k] = nodes[i].healthy;
                }
        }
        for (int si = 0; si < 2; si++) {
            uint64_t self = si ? nodes[5].id : 0;
            struct netelect_result want = netelect_elect(ids, rtt, ok, n, self), got;
            cr_assert_eq(netelect_view_elect(v, names[c], self, &got), 0);
            cr_assert_eq(got.outcome, want.outcome, "chan %d", c);
            cr_assert_eq(got.winner, want.winner, "chan %d", c);
            uint64_t want_rank[300], got_rank[300];
            size_t wn = netelect_rank(ids, rtt, ok, n, self, want_rank), gn = 0;
            cr_assert_eq(netelect_view_rank(v, names[c], self, got_rank, 300, &gn), 0);
            cr_assert_eq(gn, wn);
            cr_assert_eq(memcmp(got_rank, want_rank, wn * 8), 0, "chan %d", c);
            /* A short buffer gets the head of the order and the full count. */
            if (wn > 3) {
                cr_assert_eq(netelect_view_rank(v, names[c], self, got_rank, 3, &gn), 0);
                cr_assert_eq(gn, wn);
                cr_assert_eq(memcmp(got_rank, want_rank, 3 * 8), 0);
            }
        }
    }
    netelect_view_close(v);
    netelect__writer_close(w, true);
    free(nodes);
    free(mem);
}

Test(shm, errors_and_unknowns)
{
    struct netelect_writer *w = wopen(1, 0);
    publish_base(w);
    struct netelect_view *v = vopen();
    struct netelect_result r;
    size_t cnt;
    struct netelect_node_info ni;
    /* An unknown channel has its own code: -ENOENT is "no segment" at open. */
    cr_assert_eq(netelect_view_elect(v, "nope", 0, &r), NETELECT_ENOCHAN);
    cr_assert_str_eq(netelect_strerror(NETELECT_ENOCHAN), "no such channel");
    cr_assert_eq(netelect_view_elect(v, "", 0, &r), -EINVAL);
    cr_assert_eq(netelect_view_elect(v, NULL, 0, &r), -EINVAL);
    cr_assert_eq(netelect_view_elect(v, "a", 0, NULL), -EINVAL);
    cr_assert_eq(netelect_view_elect(NULL, "a", 0, &r), -EINVAL);
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[299] = 0;
    cr_assert_eq(netelect_view_elect(v, longname, 0, &r), -EINVAL);
    cr_assert_eq(netelect_view_rank(v, "nope", 0, NULL, 0, &cnt), NETELECT_ENOCHAN);
    cr_assert_eq(netelect_view_rank(v, "a", 0, NULL, 5, &cnt), -EINVAL);
    cr_assert_eq(netelect_view_rank(v, "a", 0, NULL, 0, &cnt), 0);
    cr_assert_eq(cnt, 2);
    cr_assert_eq(netelect_view_node(v, 12345, &ni), -ENOENT);
    struct netelect_view *v2;
    cr_assert_eq(netelect_view_open("", &v2), -EINVAL);
    char missing[160];
    snprintf(missing, sizeof missing, "%s-missing", name);
    cr_assert_eq(netelect_view_open(missing, &v2), -ENOENT);

    /* Bad publishes are refused and leave the current version alone. */
    uint64_t g = netelect_view_generation(v);
    struct netelect_wnode dup[2] = {{.id = 5, .healthy = 1}, {.id = 5}};
    cr_assert_eq(netelect__writer_publish(w, dup, 2, NULL, 0), -EINVAL);
    struct netelect_wchan dupc[2] = {{"x", NULL, 0}, {"x", NULL, 0}};
    cr_assert_eq(netelect__writer_publish(w, NULL, 0, dupc, 2), -EINVAL);
    struct netelect_wchan badc[1] = {{"", NULL, 0}};
    cr_assert_eq(netelect__writer_publish(w, NULL, 0, badc, 1), -EINVAL);
    struct netelect_wchan nullm[1] = {{"y", NULL, 3}};
    cr_assert_eq(netelect__writer_publish(w, NULL, 0, nullm, 1), -EINVAL);
    cr_assert_eq(netelect_view_generation(v), g);
    int rc = netelect_view_elect(v, "a", 0, &r);
    cr_assert_eq(rc, 0, "%s", netelect_strerror(rc));
    cr_assert_eq(r.winner, 2);
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

Test(shm, node_lookup)
{
    struct netelect_writer *w = wopen(1, 0);
    publish_base(w);
    struct netelect_view *v = vopen();
    struct netelect_node_info ni;
    cr_assert_eq(netelect_view_node(v, 2, &ni), 0);
    cr_assert_eq(ni.id, 2);
    cr_assert_eq(ni.rtt_ns, 300);
    cr_assert_eq(ni.rtt_raw_ns, 290);
    cr_assert_eq(ni.rtt_err_ns, 3);
    cr_assert_eq(ni.last_heard_ns, 12);
    cr_assert_eq(ni.healthy, 1);
    cr_assert_eq(ni.source, NETELECT_SRC_SERF);
    cr_assert_eq(netelect_view_node(v, 3, &ni), 0);
    cr_assert_eq(ni.healthy, 0);
    cr_assert_eq(netelect_view_node(v, 9, &ni), 0);
    cr_assert_eq(ni.rtt_ns, NETELECT_RTT_UNKNOWN);
    cr_assert_eq(ni.source, NETELECT_SRC_NONE);
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

struct acc {
    uint64_t sum;
    int n, stop_at;
};

static int node_cb(void *ctx, const struct netelect_node_info *ni)
{
    struct acc *a = ctx;
    a->sum += ni->id;
    return ++a->n == a->stop_at ? 77 : 0;
}

static int chan_cb(void *ctx, const char *nm, const uint64_t *m, size_t n)
{
    struct acc *a = ctx;
    for (size_t i = 0; i < n; i++)
        a->sum += m[i];
    a->sum += strlen(nm) * 1000;
    a->n++;
    return 0;
}

Test(shm, iterators)
{
    struct netelect_writer *w = wopen(1, 0);
    publish_base(w);
    struct netelect_view *v = vopen();
    struct acc a = {0};
    cr_assert_eq(netelect_view_foreach_node(v, node_cb, &a), 0);
    cr_assert_eq(a.n, 6);
    cr_assert_eq(a.sum, 1 + 2 + 3 + 4 + 9 + 100);
    a = (struct acc){.stop_at = 2};
    cr_assert_eq(netelect_view_foreach_node(v, node_cb, &a), 77, "early stop returns cb's value");
    cr_assert_eq(a.n, 2);
    a = (struct acc){0};
    cr_assert_eq(netelect_view_foreach_channel(v, chan_cb, &a), 0);
    cr_assert_eq(a.n, 5);
    cr_assert_eq(a.sum, (6 + 14 + 103 + 13) + 1000 * (1 + 1 + 4 + 5 + 3));
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

Test(shm, generation_and_status)
{
    struct netelect_writer *w = wopen(100, 0);
    struct netelect_view *v = vopen();
    uint64_t g0 = netelect_view_generation(v);
    cr_assert_eq(g0, netelect__writer_generation(w));
    cr_assert_eq(netelect_view_generation(v), g0, "no publish, no change");
    publish_base(w);
    uint64_t g1 = netelect_view_generation(v);
    cr_assert_gt(g1, g0);
    struct netelect_result r;
    uint64_t gen = 0;
    cr_assert_eq(netelect_view_elect_gen(v, "a", 0, &r, &gen), 0);
    cr_assert_eq(gen, g1);
    cr_assert_eq(netelect_view_generation(v), gen, "cached answer still valid");
    publish_base(w);
    cr_assert_neq(netelect_view_generation(v), gen, "cached answer invalidated");
    netelect__writer_heartbeat(w);

    struct netelect_view_status st = {.size = sizeof st};
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.generation, netelect_view_generation(v));
    cr_assert_eq(st.self_id, 100);
    cr_assert_eq(st.n_nodes, 6);
    cr_assert_eq(st.n_chans, 5);
    cr_assert_eq(st.state, NETELECT_AGENT_LIVE);
    cr_assert_eq(st.agent_pid, getpid());
    cr_assert_eq(st.abi_major, 1);
    cr_assert_eq(st.slot_count, 3);
    cr_assert_eq(st.heartbeat_seq, 2);
    cr_assert_eq(st.registered, 1, "root may open the registry");
    cr_assert_eq(st.stale, 0);
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

/* Generations keep growing across writer restarts, so caches keyed by
 * them never confuse two incarnations. */
Test(shm, restart_reattach)
{
    struct netelect_writer *w = wopen(1, 0);
    publish_base(w);
    struct netelect_view *v = vopen();
    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0);
    cr_assert_eq(r.winner, 2);
    uint64_t g = netelect_view_generation(v);
    /* A crash: no ABANDONED mark. */
    netelect__writer_close(w, false);

    w = wopen(2, 0);
    struct netelect_wnode n2[] = {{.id = 1, .rtt_ns = 1, .healthy = 1}};
    const uint64_t m2[] = {1, 2};
    struct netelect_wchan c2[] = {{"a", m2, 2}};
    cr_assert_eq(netelect__writer_publish(w, n2, 1, c2, 1), 0);
    /* The new writer marked the old file SUPERSEDED: the next call moves. */
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0);
    cr_assert_eq(r.winner, 1);
    cr_assert_gt(netelect_view_generation(v), g);
    cr_assert_eq(netelect_view_self(v), 2);
    struct netelect_view_status st = {.size = sizeof st};
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.reattaches, 1);
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

static uint64_t fake_now;
static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

Test(shm, abandoned_fail_static_then_stale_then_back)
{
    struct netelect_writer *w = wopen(1, 0);
    publish_base(w);
    struct netelect_view_opts o = {.size = sizeof o, .fail_static_ns = 1000000000};
    struct netelect_view *v;
    cr_assert_eq(netelect_view_open_opts(name, &o, &v), 0);
    fake_now = 1000000000;
    netelect__view_set_clock(v, fake_clock, NULL);
    netelect__writer_close(w, true);

    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0, "fail-static right after the exit");
    cr_assert_eq(r.winner, 2);
    struct netelect_view_status st = {.size = sizeof st};
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.state, NETELECT_AGENT_ABANDONED);
    fake_now += 900000000;
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0, "still inside fail-static");
    fake_now += 200000000;
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), NETELECT_ESTALE);
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.stale, 1);

    /* A new agent: the view finds it (after its back-off) and recovers. */
    w = wopen(1, 0);
    publish_base(w);
    fake_now += 100000000;
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0);
    cr_assert_eq(r.winner, 2);
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

Test(shm, heartbeat_staleness_on_reader_clock)
{
    struct netelect_writer *w = wopen(1, 0); /* period 100 ms: limit 300 ms */
    publish_base(w);
    struct netelect_view_opts o = {.size = sizeof o, .fail_static_ns = 500000000};
    struct netelect_view *v;
    cr_assert_eq(netelect_view_open_opts(name, &o, &v), 0);
    fake_now = 5000000000;
    netelect__view_set_clock(v, fake_clock, NULL);
    struct netelect_result r;
    struct netelect_view_status st = {.size = sizeof st};
    cr_assert_eq(netelect_view_status(v, &st), 0);
    /* Publishes alone do not prove liveness; the heartbeat does. */
    fake_now += 700000000;
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.stale, 0, "300 ms + 500 ms not yet over");
    cr_assert_eq(st.heartbeat_age_ns, 700000000);
    fake_now += 200000000;
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.stale, 1);
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), NETELECT_ESTALE);
    /* The agent was only slow: one heartbeat and the view is live again. */
    netelect__writer_heartbeat(w);
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0);
    cr_assert_eq(r.winner, 2);
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

Test(shm, capacity_growth)
{
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 1,
                                         .max_nodes = 4, .max_chans = 1, .max_members = 4};
    struct netelect_writer *w;
    cr_assert_eq(netelect__writer_open(&cfg, &w), 0);
    publish_base(w); /* 6 nodes, 5 channels: must grow */
    struct netelect_view *v = vopen();
    struct netelect_view_status st = {.size = sizeof st};
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_geq(st.max_nodes, 6);
    cr_assert_eq(st.n_chans, 5);
    enum { N = 5000 };
    struct netelect_wnode *nodes = calloc(N, sizeof *nodes);
    uint64_t *mem = calloc(N, sizeof *mem);
    for (int i = 0; i < N; i++) {
        nodes[i] = (struct netelect_wnode){.id = (uint64_t)i + 10, .rtt_ns = (uint64_t)(N - i),
                                           .healthy = 1};
        mem[i] = (uint64_t)i + 10;
    }
    struct netelect_wchan big[] = {{"big", mem, N}};
    cr_assert_eq(netelect__writer_publish(w, nodes, N, big, 1), 0);
    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, "big", 0, &r), 0, "the reader followed the move");
    cr_assert_eq(r.winner, N - 1 + 10);
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_geq(st.max_nodes, N);
    cr_assert_geq(st.reattaches, 1);
    netelect_view_close(v);
    netelect__writer_close(w, true);
    free(nodes);
    free(mem);
}

Test(shm, second_writer_refused)
{
    struct netelect_writer *w = wopen(1, 0);
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1};
    struct netelect_writer *w2 = NULL;
    cr_assert_eq(netelect__writer_open(&cfg, &w2), -EBUSY);
    cr_assert_null(w2);
    /* Also from another process (an OFD lock is per open file, not per
     * process, but check the real case). */
    pid_t pid = fork();
    if (pid == 0) {
        struct netelect_writer *w3 = NULL;
        _exit(netelect__writer_open(&cfg, &w3) == -EBUSY ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    cr_assert(ok);
    netelect__writer_close(w, true);
    cr_assert_eq(netelect__writer_open(&cfg, &w2), 0, "the lock dies with its holder");
    netelect__writer_close(w2, true);
}

/* Squatters, forged segments and the reader's owner check: test_trust.c. */

Test(shm, mode_and_group)
{
    struct netelect_writer_config cfg = {.name = name, .group = 0, .mode = 0640, .self_id = 1};
    struct netelect_writer *w;
    cr_assert_eq(netelect__writer_open(&cfg, &w), 0);
    char path[256];
    struct stat st;
    t_path(path, sizeof path, name);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640);
    cr_assert_eq(st.st_gid, 0);
    t_append(path, sizeof path, ".readers");
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0660, "group readers may register");
    netelect__writer_close(w, true);
    struct netelect_writer_config bad = {.name = name, .group = (gid_t)-1, .mode = 0666};
    cr_assert_eq(netelect__writer_open(&bad, &w), -EINVAL, "a world-writable view is refused");
}

/* ---- the registry: grace periods */

static void read_incarnation(uint8_t inc[16])
{
    char path[256];
    t_path(path, sizeof path, name);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    struct netelect_shm_hdr h;
    cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    memcpy(inc, h.h_incarnation, 16);
    close(fd);
}

static uint64_t read_current(void)
{
    char path[256];
    t_path(path, sizeof path, name);
    int fd = open(path, O_RDONLY);
    struct netelect_shm_hdr h;
    cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
    return atomic_load_explicit(&h.h_current, memory_order_relaxed);
}

/* A child process that announces `word` in the registry and then waits. */
static pid_t pinning_child(uint64_t word)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    uint8_t inc[16];
    read_incarnation(inc);
    char rpath[256];
    t_path(rpath, sizeof rpath, name);
    t_append(rpath, sizeof rpath, ".readers");
    pid_t pid = fork();
    if (pid == 0) {
        struct netelect__reg_reader *r;
        char ok = 0;
        if (netelect__reg_attach(rpath, inc, geteuid(), &r) == 0) {
            _Atomic uint64_t *a = netelect__reg_claim(r);
            if (a) {
                atomic_store(a, word);
                ok = 1;
            }
        }
        if (write(p[1], &ok, 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    close(p[1]);
    char ok = 0;
    cr_assert_eq(read(p[0], &ok, 1), 1);
    close(p[0]);
    cr_assert_eq(ok, 1, "child could not register");
    return pid;
}

Test(shm, registry_pins_then_forced_reuse)
{
    /* K = 3.  Versions: g (slot 0), publish g+1 -> slot 1.  A live reader
     * announcing slot 0's word pins it: the next publish goes to slot 2,
     * the one after that must skip 0 too, i.e. wait, then force. */
    struct netelect_writer *w = wopen(1, 3);
    uint64_t w0 = read_current(); /* slot 0 */
    cr_assert_eq(w0 & 0xff, 0);
    publish_base(w);
    cr_assert_eq(read_current() & 0xff, 1);
    pid_t pid = pinning_child(w0);
    publish_base(w);
    cr_assert_eq(read_current() & 0xff, 2, "slot 0 is pinned, so slot 2");
    publish_base(w);
    /* Not current (2), not pinned (0): slot 1. */
    cr_assert_eq(read_current() & 0xff, 1);
    struct netelect_view *v = vopen();
    struct netelect_view_status st = {.size = sizeof st};
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_geq(st.pinned_waits, 1);
    cr_assert_eq(st.forced_reuse, 0);
    /* Once the reader dies its pin is gone (the kernel dropped its OFD
     * lock): slot 0, the oldest, is reused next and nothing was forced. */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    publish_base(w);
    cr_assert_eq(read_current() & 0xff, 0);
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.forced_reuse, 0);
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

Test(shm, registry_forced_reuse_k2)
{
    /* K = 2: a stuck reader on the only non-current slot cannot stall the
     * writer: after the bounded wait the slot is reused and counted. */
    struct netelect_writer *w = wopen(1, 2);
    uint64_t w0 = read_current();
    publish_base(w); /* -> slot 1 */
    pid_t pid = pinning_child(w0);
    kill(pid, SIGSTOP);
    publish_base(w); /* slot 0 pinned by a live (stopped) reader */
    cr_assert_eq(read_current() & 0xff, 0);
    struct netelect_view *v = vopen();
    struct netelect_view_status st = {.size = sizeof st};
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.forced_reuse, 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

/* ---- read sections */

struct multi {
    struct netelect_result a, b;
    struct netelect_node_info n2;
    uint64_t gen;
};

static int multi_fn(const struct netelect_snap *s, void *ctx)
{
    struct multi *m = ctx;
    m->gen = netelect_snap_generation(s);
    int rc = netelect_snap_elect(s, "a", 0, &m->a);
    if (!rc)
        rc = netelect_snap_elect(s, "b", 0, &m->b);
    if (!rc)
        rc = netelect_snap_node(s, 2, &m->n2);
    return rc;
}

static int nochan_fn(const struct netelect_snap *s, void *ctx)
{
    int *rc = ctx;
    struct netelect_result r;
    size_t n;
    rc[0] = netelect_snap_elect(s, "nope", 0, &r);
    rc[1] = netelect_snap_rank(s, "nope", 0, NULL, 0, &n);
    rc[2] = netelect_snap_members(s, "nope", NULL, NULL, NULL, 0, &n);
    return 0;
}

Test(shm, read_section)
{
    struct netelect_writer *w = wopen(1, 0);
    publish_base(w);
    struct netelect_view *v = vopen();
    struct multi m;
    cr_assert_eq(netelect_view_read(v, multi_fn, &m), 0);
    cr_assert_eq(m.a.winner, 2);
    cr_assert_eq(m.b.winner, 4);
    cr_assert_eq(m.n2.rtt_ns, 300);
    cr_assert_eq(m.gen, netelect_view_generation(v));
    int nochan[3];
    cr_assert_eq(netelect_view_read(v, nochan_fn, nochan), 0);
    cr_assert_eq(nochan[0], NETELECT_ENOCHAN, "snap_elect of an unknown channel");
    cr_assert_eq(nochan[1], NETELECT_ENOCHAN, "snap_rank of an unknown channel");
    cr_assert_eq(nochan[2], NETELECT_ENOCHAN, "snap_members of an unknown channel");
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

/* ---- the writer's publish caches must follow every kind of change */

static void expect_same(struct netelect_view *v, const struct netelect_wnode *nodes, size_t nn,
                        const struct netelect_wchan *chans, size_t nc, const char *step)
{
    for (size_t c = 0; c < nc; c++) {
        uint64_t ids[64], rtt[64];
        uint8_t ok[64];
        uint32_t n = chans[c].n_members;
        for (uint32_t k = 0; k < n; k++) {
            ids[k] = chans[c].members[k];
            rtt[k] = NETELECT_RTT_UNKNOWN;
            ok[k] = 0;
            for (size_t i = 0; i < nn; i++)
                if (nodes[i].id == ids[k]) {
                    rtt[k] = nodes[i].rtt_ns;
                    ok[k] = nodes[i].healthy != 0;
                }
        }
        uint64_t want[64], got[64];
        size_t wn = netelect_rank(ids, rtt, ok, n, 0, want), gn = 0;
        int rc = netelect_view_rank(v, chans[c].name, 0, got, 64, &gn);
        cr_assert_eq(rc, 0, "%s: chan %zu: %s", step, c, netelect_strerror(rc));
        cr_assert_eq(gn, wn, "%s: chan %zu", step, c);
        cr_assert_eq(memcmp(got, want, wn * 8), 0, "%s: chan %zu order", step, c);
    }
}

Test(shm, publish_caches_follow_changes)
{
    struct netelect_writer *w = wopen(1, 3);
    struct netelect_view *v = vopen();
    struct netelect_wnode nodes[40];
    uint64_t m1[20], m2[20];
    for (int i = 0; i < 40; i++)
        nodes[i] = (struct netelect_wnode){.id = (uint64_t)i * 7 + 3, .rtt_ns = (uint64_t)(i * 31 % 17),
                                           .healthy = (uint8_t)(i % 4 != 1)};
    for (int k = 0; k < 20; k++) {
        m1[k] = nodes[k * 2].id;
        m2[k] = nodes[39 - k].id;
    }
    struct netelect_wchan chans[2] = {{"x", m1, 20}, {"y", m2, 20}};
    char step[64];
    /* Several rounds of every change, more than K, so that every slot
     * sees reuse and rebuild. */
    for (int round = 0; round < 12; round++) {
        switch (round % 6) {
        case 0: /* RTT and health only */
            for (int i = 0; i < 40; i++) {
                nodes[i].rtt_ns = (nodes[i].rtt_ns * 13 + (uint64_t)round) % 23;
                nodes[i].healthy = (uint8_t)((i + round) % 5 != 0);
            }
            break;
        case 1: { /* same ids, new order */
            struct netelect_wnode t = nodes[0];
            nodes[0] = nodes[39];
            nodes[39] = t;
            break;
        }
        case 2: /* a membership changes */
            m1[round % 20] = nodes[(round * 3) % 40].id;
            break;
        case 3: /* a node leaves (its replicas become non-candidates) */
            nodes[5].id += 1000;
            break;
        case 4: { /* a duplicate id is refused, then the view is unchanged */
            uint64_t keep = nodes[7].id;
            nodes[7].id = nodes[8].id;
            uint64_t g = netelect_view_generation(v);
            cr_assert_eq(netelect__writer_publish(w, nodes, 40, chans, 2), -EINVAL);
            cr_assert_eq(netelect_view_generation(v), g);
            nodes[7].id = keep;
            break;
        }
        default: /* nothing changes at all */
            break;
        }
        cr_assert_eq(netelect__writer_publish(w, nodes, 40, chans, 2), 0);
        snprintf(step, sizeof step, "round %d", round);
        expect_same(v, nodes, 40, chans, 2, step);
        struct netelect_node_info ni;
        for (int i = 0; i < 40; i++) {
            cr_assert_eq(netelect_view_node(v, nodes[i].id, &ni), 0, "%s node %d", step, i);
            cr_assert_eq(ni.rtt_ns, nodes[i].rtt_ns);
        }
    }
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

/* A reader that cannot use the registry (here: a foreign file in its
 * place) still works, on validation alone. */
Test(shm, works_without_registry)
{
    struct netelect_writer *w = wopen(1, 0);
    publish_base(w);
    char rpath[256];
    t_path(rpath, sizeof rpath, name);
    t_append(rpath, sizeof rpath, ".readers");
    cr_assert_eq(unlink(rpath), 0);
    int fd = open(rpath, O_CREAT | O_WRONLY, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "not a registry", 14), 14);
    close(fd);
    struct netelect_view *v = vopen();
    struct netelect_view_status st = {.size = sizeof st};
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.registered, 0);
    struct netelect_result r;
    uint64_t ids[8];
    size_t n;
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0);
    cr_assert_eq(r.winner, 2);
    cr_assert_eq(netelect_view_rank(v, "a", 0, ids, 8, &n), 0);
    cr_assert_eq(n, 2);
    publish_base(w); /* the writer, too, carries on */
    cr_assert_eq(netelect_view_elect(v, "b", 0, &r), 0);
    cr_assert_eq(r.winner, 4);
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

Test(shm, initial_snapshot_first_version)
{
    /* An agent that restarts passes what it knows: the very first version a
     * reader can open already answers, with no publish at all. */
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 100,
                                         .initial_nodes = base_nodes, .n_initial_nodes = 6,
                                         .initial_chans = base_chans, .n_initial_chans = 5};
    struct netelect_writer *w;
    int rc = netelect__writer_open(&cfg, &w);
    cr_assert_eq(rc, 0, "writer_open: %s", netelect_strerror(rc));
    const uint64_t g = netelect__writer_generation(w);
    struct netelect_view *v = vopen();
    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0);
    cr_assert_eq(r.winner, 2);
    cr_assert_eq(netelect_view_elect(v, "b", 0, &r), 0);
    cr_assert_eq(r.winner, 4);
    cr_assert_eq(netelect_view_elect(v, "self", 100, &r), 0);
    cr_assert_eq(r.outcome, NETELECT_SELF_WINS);
    cr_assert_eq(netelect_view_elect(v, "empty", 0, &r), 0);
    cr_assert_eq(r.outcome, NETELECT_NO_ELIGIBLE);
    struct netelect_node_info ni;
    cr_assert_eq(netelect_view_node(v, 1, &ni), 0);
    cr_assert(ni.rtt_ns == 500 && ni.rtt_raw_ns == 510 && ni.rtt_err_ns == 5 &&
              ni.last_heard_ns == 11 && ni.healthy && ni.source == NETELECT_SRC_PROBE);
    struct netelect_view_status st = {.size = sizeof st};
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.generation, g, "the snapshot is the first version, not a later publish");
    cr_assert_eq(st.n_nodes, 6);
    cr_assert_eq(st.n_chans, 5);
    cr_assert_eq(st.max_nodes, 1024, "defaults kept when the snapshot fits");
    /* The caches were primed with the snapshot: the same view republished
     * (the agent's next step) and a changed one both read back right. */
    publish_base(w);
    expect_same(v, base_nodes, 6, base_chans, 5, "republished snapshot");
    struct netelect_wnode n2[6];
    memcpy(n2, base_nodes, sizeof n2);
    n2[1].healthy = 0;
    cr_assert_eq(netelect__writer_publish(w, n2, 6, base_chans, 5), 0);
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0);
    cr_assert_eq(r.winner, 1);
    netelect_view_close(v);
    netelect__writer_close(w, true);

    /* A bad snapshot is refused and leaves no segment behind. */
    struct netelect_wnode dup[] = {{.id = 5}, {.id = 5}};
    cfg.initial_nodes = dup;
    cfg.n_initial_nodes = 2;
    t_unlink(name);
    cr_assert_eq(netelect__writer_open(&cfg, &w), -EINVAL);
    struct netelect_view *v2;
    cr_assert_eq(netelect_view_open(name, &v2), -ENOENT);
    struct netelect_wchan noname[] = {{"", NULL, 0}};
    cfg.initial_nodes = NULL;
    cfg.n_initial_nodes = 0;
    cfg.initial_chans = noname;
    cfg.n_initial_chans = 1;
    cr_assert_eq(netelect__writer_open(&cfg, &w), -EINVAL);
    cfg.initial_chans = NULL;
    cr_assert_eq(netelect__writer_open(&cfg, &w), -EINVAL, "n_initial_chans without an array");
}

Test(shm, initial_snapshot_replaces_old_incarnation)
{
    /* The restart case: readers of the old incarnation move straight to a
     * version that answers the same question the same way. */
    struct netelect_writer *w = wopen(100, 0);
    publish_base(w);
    struct netelect_view *v = vopen();
    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0);
    cr_assert_eq(r.winner, 2);
    const uint64_t g = netelect_view_generation(v);
    netelect__writer_close(w, false); /* a crash */
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 100,
                                         .initial_nodes = base_nodes, .n_initial_nodes = 6,
                                         .initial_chans = base_chans, .n_initial_chans = 5};
    cr_assert_eq(netelect__writer_open(&cfg, &w), 0);
    cr_assert_eq(netelect_view_elect(v, "a", 0, &r), 0, "no -ENOENT on the new incarnation");
    cr_assert_eq(r.winner, 2);
    cr_assert_gt(netelect_view_generation(v), g);
    struct netelect_view_status st = {.size = sizeof st};
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.reattaches, 1);
    cr_assert_neq(st.heartbeat_mono_ns, 0);
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

Test(shm, initial_snapshot_grows_capacities)
{
    enum { N = 5000, C = 100 };
    struct netelect_wnode *nodes = calloc(N, sizeof *nodes);
    uint64_t *mem = calloc(N, sizeof *mem);
    static char names[C][72];
    struct netelect_wchan chans[C];
    cr_assert(nodes && mem);
    for (int i = 0; i < N; i++) {
        nodes[i] = (struct netelect_wnode){.id = (uint64_t)i + 10, .rtt_ns = (uint64_t)(N - i),
                                           .healthy = 1};
        mem[i] = (uint64_t)i + 10;
    }
    /* long names (64 bytes each): more than max_chans x 32 would give */
    for (int c = 0; c < C; c++) {
        snprintf(names[c], sizeof names[c], "channel-with-a-rather-long-name-to-need-more-name-bytes-%04d", c);
        chans[c] = (struct netelect_wchan){names[c], mem + c * (N / C), N / C};
    }
    chans[0].members = mem;
    chans[0].n_members = N;
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 1,
                                         .max_nodes = 4, .max_chans = 1, .max_members = 4,
                                         .initial_nodes = nodes, .n_initial_nodes = N,
                                         .initial_chans = chans, .n_initial_chans = C};
    struct netelect_writer *w;
    int rc = netelect__writer_open(&cfg, &w);
    cr_assert_eq(rc, 0, "writer_open: %s", netelect_strerror(rc));
    struct netelect_view *v = vopen();
    struct netelect_view_status st = {.size = sizeof st};
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_geq(st.max_nodes, N);
    cr_assert_geq(st.max_chans, C);
    cr_assert_geq(st.max_members, N + (C - 1) * (N / C));
    cr_assert_eq(st.n_nodes, N);
    cr_assert_eq(st.n_chans, C);
    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, names[0], 0, &r), 0);
    cr_assert_eq(r.winner, N - 1 + 10);
    cr_assert_eq(netelect_view_elect(v, names[C - 1], 0, &r), 0);
    cr_assert_eq(r.winner, (C - 1) * (N / C) + N / C - 1 + 10);
    /* Sized to fit: the agent's next publish of the same view stays put. */
    cr_assert_eq(netelect__writer_publish(w, nodes, N, chans, C), 0);
    cr_assert_eq(netelect_view_elect(v, names[0], 0, &r), 0);
    cr_assert_eq(netelect_view_status(v, &st), 0);
    cr_assert_eq(st.reattaches, 0);
    netelect_view_close(v);
    netelect__writer_close(w, true);

    /* Over caller memory there is no growth: too big is -ENOSPC. */
    struct netelect_writer_config mc = {.self_id = 1, .max_nodes = 16, .max_chans = 4,
                                        .max_members = 16, .initial_nodes = nodes,
                                        .n_initial_nodes = N};
    size_t sz = 1 << 22;
    void *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(netelect__writer_open_mem(&mc, m, sz, &w), -ENOSPC);
    mc.n_initial_nodes = 16;
    cr_assert_eq(netelect__writer_open_mem(&mc, m, sz, &w), 0);
    cr_assert_eq(netelect__writer_generation(w), 1);
    netelect__writer_close(w, false);
    munmap(m, sz);
    free(nodes);
    free(mem);
}

/* ---- delta publishing (netelect__writer_update) */

#define DN 60
struct dview {
    struct netelect_wnode nodes[DN];
    uint64_t mp[32], mq[20];
    uint8_t down_p[32];
    struct netelect_wchan chans[3];
};

struct members_ctx {
    const char *name;
    uint64_t ids[64], rtt[64];
    uint8_t ok[64];
    size_t n;
    int rc;
};

static int members_fn(const struct netelect_snap *s, void *p)
{
    struct members_ctx *x = p;
    x->rc = netelect_snap_members(s, x->name, x->ids, x->rtt, x->ok, 64, &x->n);
    return 0;
}

/* Everything a reader can see of the current version equals the logical
 * view `d` (what a full publish of it would show). */
static void expect_view(struct netelect_view *v, const struct dview *d, const char *step)
{
    for (int i = 0; i < DN; i++) {
        struct netelect_node_info ni;
        const struct netelect_wnode *n = &d->nodes[i];
        cr_assert_eq(netelect_view_node(v, n->id, &ni), 0, "%s: node %d", step, i);
        cr_assert(ni.rtt_ns == n->rtt_ns && ni.rtt_raw_ns == n->rtt_raw_ns &&
                      ni.rtt_err_ns == n->rtt_err_ns && ni.last_heard_ns == n->last_heard_ns &&
                      ni.healthy == (n->healthy != 0) && ni.source == n->source,
                  "%s: node %d fields", step, i);
    }
    for (int c = 0; c < 3; c++) {
        const struct netelect_wchan *ch = &d->chans[c];
        struct members_ctx x = {.name = ch->name};
        cr_assert_eq(netelect_view_read(v, members_fn, &x), 0);
        cr_assert_eq(x.rc, 0, "%s: chan %s", step, ch->name);
        cr_assert_eq(x.n, ch->n_members, "%s: chan %s", step, ch->name);
        for (uint32_t k = 0; k < ch->n_members; k++) {
            uint64_t rtt = NETELECT_RTT_UNKNOWN;
            uint8_t ok = 0;
            for (int i = 0; i < DN; i++)
                if (d->nodes[i].id == ch->members[k]) {
                    rtt = d->nodes[i].rtt_ns;
                    ok = d->nodes[i].healthy && !(ch->member_down && ch->member_down[k]);
                }
            cr_assert(x.ids[k] == ch->members[k] && x.rtt[k] == rtt && x.ok[k] == ok,
                      "%s: chan %s member %u: got %" PRIu64 "/%" PRIu64 "/%u want %" PRIu64
                      "/%" PRIu64 "/%u",
                      step, ch->name, k, x.ids[k], x.rtt[k], x.ok[k], ch->members[k], rtt, ok);
        }
    }
}

static uint64_t drand(uint64_t *x)
{
    *x = *x * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *x >> 33;
}

static void delta_run(uint32_t slots, uint64_t seed)
{
    struct netelect_writer *w = wopen(1, slots);
    struct netelect_view *v = vopen();
    static struct dview d;
    memset(&d, 0, sizeof d);
    for (int i = 0; i < DN; i++)
        d.nodes[i] = (struct netelect_wnode){.id = (uint64_t)i * 5 + 1, .rtt_ns = (uint64_t)i * 10,
                                             .healthy = 1, .source = NETELECT_SRC_PROBE};
    /* "p": nodes, one of them twice, one id that is not a node, some
     * members down in this channel only; "q": other nodes; "r": empty. */
    for (int k = 0; k < 32; k++) {
        d.mp[k] = d.nodes[(k * 7) % DN].id;
        d.down_p[k] = k % 5 == 2;
    }
    d.mp[3] = d.mp[4];
    d.mp[9] = 4242; /* not a node */
    for (int k = 0; k < 20; k++)
        d.mq[k] = d.nodes[DN - 1 - k].id;
    d.chans[0] = (struct netelect_wchan){"p", d.mp, 32, d.down_p};
    d.chans[1] = (struct netelect_wchan){"q", d.mq, 20, NULL};
    d.chans[2] = (struct netelect_wchan){"r", NULL, 0, NULL};
    cr_assert_eq(netelect__writer_publish(w, d.nodes, DN, d.chans, 3), 0);
    expect_view(v, &d, "first full");

    uint64_t x = seed;
    char step[96];
    for (int round = 0; round < 120; round++) {
        const uint64_t g = netelect_view_generation(v);
        const unsigned op = (unsigned)(drand(&x) % 16);
        if (op == 0 || op == 1) {
            /* A full publish in between (op 1 also moves a membership). */
            if (op == 1)
                d.mq[drand(&x) % 20] = d.nodes[drand(&x) % DN].id;
            cr_assert_eq(netelect__writer_publish(w, d.nodes, DN, d.chans, 3), 0);
        } else if (op == 2) {
            /* Refused updates change nothing: an unknown id, a duplicate. */
            struct netelect_wnode u[2] = {d.nodes[3], d.nodes[3]};
            u[0].rtt_ns = 99999;
            cr_assert_eq(netelect__writer_update(w, u, 2), -EINVAL);
            u[1].id = 4242;
            cr_assert_eq(netelect__writer_update(w, u, 2), -ENOENT);
            cr_assert_eq(netelect_view_generation(v), g);
            snprintf(step, sizeof step, "K=%u round %d refused", slots, round);
            expect_view(v, &d, step);
            continue;
        } else if (op == 3) {
            /* After a failed full publish the base is unknown: refused until
             * a full publish succeeds. */
            struct netelect_wnode keep = d.nodes[8];
            d.nodes[8].id = d.nodes[9].id;
            cr_assert_eq(netelect__writer_publish(w, d.nodes, DN, d.chans, 3), -EINVAL);
            d.nodes[8] = keep;
            cr_assert_eq(netelect__writer_update(w, d.nodes, 1), -ESTALE);
            cr_assert_eq(netelect__writer_publish(w, d.nodes, DN, d.chans, 3), 0);
        } else {
            /* An update of 0..12 distinct nodes (all fields), or of all. */
            struct netelect_wnode u[DN];
            size_t n = op == 15 ? DN : (size_t)(drand(&x) % 13);
            const int start = (int)(drand(&x) % DN);
            for (size_t k = 0; k < n; k++) {
                const int i = (int)((size_t)start + k * 7) % DN; /* 7 is prime to 60 */
                struct netelect_wnode *nd = &d.nodes[i];
                nd->rtt_ns = drand(&x) % 8 == 0 ? NETELECT_RTT_UNKNOWN : drand(&x) % 1000;
                nd->rtt_raw_ns = drand(&x);
                nd->rtt_err_ns = drand(&x) % 50;
                nd->last_heard_ns = drand(&x);
                nd->healthy = (uint8_t)(drand(&x) % 3 != 0);
                nd->source = (uint8_t)(drand(&x) % 3);
                u[k] = *nd;
            }
            int rc = netelect__writer_update(w, u, n);
            cr_assert_eq(rc, 0, "update: %s", netelect_strerror(rc));
        }
        cr_assert_eq(netelect_view_generation(v), g + 1, "K=%u round %d", slots, round);
        snprintf(step, sizeof step, "K=%u round %d op %u", slots, round, op);
        expect_view(v, &d, step);
    }
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

/* Delta versions (catch-up of a reused slot from the log, whole copies of
 * the current slot, updates mixed with full publishes and refusals) show
 * exactly what a full publish of the same view shows. */
Test(shm, delta_update_equals_full_publish)
{
    delta_run(2, 1);
    delta_run(3, 2);
    delta_run(5, 3);
}

/* An update on a view with no nodes: only the empty update is possible. */
Test(shm, delta_update_empty_view)
{
    struct netelect_writer *w = wopen(1, 3);
    struct netelect_view *v = vopen();
    const uint64_t g = netelect_view_generation(v);
    struct netelect_wnode u = {.id = 1};
    cr_assert_eq(netelect__writer_update(w, &u, 1), -ENOENT);
    cr_assert_eq(netelect__writer_update(w, NULL, 1), -EINVAL);
    cr_assert_eq(netelect__writer_update(NULL, &u, 1), -EINVAL);
    cr_assert_eq(netelect__writer_update(w, NULL, 0), 0);
    cr_assert_eq(netelect_view_generation(v), g + 1);
    netelect_view_close(v);
    netelect__writer_close(w, true);
}

/*
 * The miss path's geometry cache (elect_geo in shm/view.c): a thread that
 * elected on "g" keeps where g's members were in that version.  Republish
 * g elsewhere (another size, behind a padding channel of another size,
 * its first members unhealthy) until the writer reuses the very slot the
 * geometry points into, then ask again with another self: the answer
 * must be the new version's, never one read through the stale bounds.
 */
static struct netelect_result geo_publish(struct netelect_writer *w, int pad, bool moved,
                                          uint64_t self)
{
    struct netelect_wnode nodes[64];
    for (int i = 0; i < 64; i++)
        nodes[i] = (struct netelect_wnode){.id = (uint64_t)i + 1,
                                           .rtt_ns = 1000 - (uint64_t)i * 10,
                                           .healthy = (uint8_t)(i < 40 || i >= 50)};
    uint64_t padm[16], g[5], rtt[5];
    uint8_t ok[5];
    for (int i = 0; i < pad; i++)
        padm[i] = (uint64_t)i + 1;
    /* v1: {20, 21, 22}; moved: {41, 42, 43} (unhealthy), then 30, 31. */
    const uint64_t g1[] = {20, 21, 22}, g2[] = {41, 42, 43, 30, 31};
    const uint32_t gn = moved ? 5 : 3;
    memcpy(g, moved ? g2 : g1, gn * sizeof *g);
    for (uint32_t k = 0; k < gn; k++) {
        rtt[k] = nodes[g[k] - 1].rtt_ns;
        ok[k] = nodes[g[k] - 1].healthy;
    }
    struct netelect_wchan chans[2] = {{"pad", padm, (uint32_t)pad}, {"g", g, gn}};
    int rc = netelect__writer_publish(w, nodes, 64, chans, 2);
    cr_assert_eq(rc, 0, "publish: %s", netelect_strerror(rc));
    return netelect_elect(g, rtt, ok, gn, self);
}

Test(shm, geometry_cache_follows_republish)
{
    const uint64_t s1 = 1000, s2 = 2000; /* not members: the answer cache misses */
    for (uint32_t slots = 2; slots <= 4; slots++) {
        for (int gap = 1; gap <= 5; gap++) {
            t_unlink(name);
            struct netelect_writer *w = wopen(7, slots);
            const struct netelect_result r1 = geo_publish(w, 2, false, s1);
            struct netelect_view *v = vopen();
            struct netelect_result r;
            /* Warm: the first call caches the geometry, the second (another
             * self) is answered through it. */
            cr_assert_eq(netelect_view_elect(v, "g", s1, &r), 0);
            cr_assert(r.outcome == r1.outcome && r.winner == r1.winner);
            cr_assert_eq(netelect_view_elect(v, "g", s2, &r), 0);
            cr_assert(r.outcome == r1.outcome && r.winner == r1.winner);
            struct netelect_result want = r1;
            for (int i = 0; i < gap; i++)
                want = geo_publish(w, 3 + 2 * i, true, s1);
            for (int k = 0; k < 4; k++) {
                const uint64_t self = k & 1 ? s2 : s1;
                uint64_t gen = 0;
                cr_assert_eq(netelect_view_elect_gen(v, "g", self, &r, &gen), 0);
                cr_assert(r.outcome == want.outcome && r.winner == want.winner,
                          "K=%u, %d republishes, call %d: got %d/%" PRIu64 ", want %d/%" PRIu64,
                          slots, gap, k, r.outcome, r.winner, want.outcome, want.winner);
                cr_assert_eq(gen, netelect_view_generation(v));
            }
            netelect_view_close(v);
            netelect__writer_close(w, true);
        }
    }
}

/* The geometry belongs to the cached name: a rank on another channel
 * takes the name cache over, and an election on that channel must not be
 * answered through the first channel's members. */
Test(shm, geometry_cache_follows_channel)
{
    struct netelect_writer *w = wopen(7, 3);
    geo_publish(w, 8, false, 0);
    struct netelect_view *v = vopen();
    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, "g", 1000, &r), 0);
    cr_assert_eq(netelect_view_elect(v, "g", 2000, &r), 0);
    cr_assert_eq(r.winner, 22);
    uint64_t ids[16];
    size_t n = 0;
    cr_assert_eq(netelect_view_rank(v, "pad", 1000, ids, 16, &n), 0);
    cr_assert_eq(n, 8);
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(netelect_view_elect(v, "pad", k & 1 ? 2000 : 3000, &r), 0);
        cr_assert_eq(r.winner, 8, "call %d: pad's nearest is 8, got %" PRIu64, k, r.winner);
    }
    netelect_view_close(v);
    netelect__writer_close(w, true);
}
