/* SPDX-License-Identifier: MIT */
/*
 * view_check: a reader process for the integration tests.
 *
 *   view_check SHM elect CHANNEL [SELF]
 *     Reads one consistent snapshot of the nodes and channel with the
 *     foreach API, elects with netelect_elect() on those arrays and prints
 *     {"generation": G, "outcome": ..., "leader": ...}; retried until the
 *     generation is the same before and after (so it matches `netelect elect`
 *     run at the same generation).
 *
 *   view_check SHM follow N TIMEOUT_S CHANNEL
 *     Attaches once and stays attached, printing a line per new incarnation
 *     (and the channel's leader in it); exits 0 once it has seen N distinct
 *     incarnations, 1 on timeout.  Used to show that a reader carries on
 *     across an agent restart.
 *
 *   view_check SHM loop CHANNEL SELF
 *     Attaches once and elects CHANNEL in a tight loop until SIGTERM, printing
 *     JSON lines (CLOCK_REALTIME ns, election count so far): "answer" when
 *     the answer (error, outcome, leader) changes, "incarnation" at the first
 *     answer from a new agent incarnation, "mark" on SIGUSR1 (the test sends
 *     it as it kills the agent), and a "summary" at exit.  Shows what a
 *     reader that never stops electing sees across agent restarts.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netelect.h>

#include "tests/args.h"

struct snap {
    uint64_t ids[4096], rtt[4096];
    uint8_t healthy[4096];
    size_t n;
    uint64_t members[4096];
    size_t nm;
    const char *chan;
    int found;
};

static int on_node(void *ctx, const struct netelect_node_info *ni)
{
    struct snap *s = ctx;
    if (s->n < 4096) {
        s->ids[s->n] = ni->id;
        s->rtt[s->n] = ni->rtt_ns;
        s->healthy[s->n] = ni->healthy;
        s->n++;
    }
    return 0;
}

static int on_chan(void *ctx, const char *name, const uint64_t *m, size_t n)
{
    struct snap *s = ctx;
    if (strcmp(name, s->chan))
        return 0;
    s->found = 1;
    s->nm = n < 4096 ? n : 4096;
    memcpy(s->members, m, s->nm * sizeof *m);
    return 0;
}

static const char *oc(enum netelect_outcome o)
{
    return o == NETELECT_SELF_WINS ? "self" : o == NETELECT_PEER_WINS ? "peer" : "none";
}

static int do_elect(struct netelect_view *v, const char *chan, uint64_t self)
{
    static struct snap s;
    for (int tries = 0; tries < 1000; tries++) {
        memset(&s, 0, sizeof s);
        s.chan = chan;
        uint64_t g0 = netelect_view_generation(v);
        int r = netelect_view_foreach_node(v, on_node, &s);
        if (r == 0)
            r = netelect_view_foreach_channel(v, on_chan, &s);
        uint64_t g1 = netelect_view_generation(v);
        if (r < 0) {
            fprintf(stderr, "view_check: %s\n", netelect_strerror(r));
            return 1;
        }
        if (g0 != g1)
            continue;
        if (!s.found) {
            fprintf(stderr, "view_check: no channel %s\n", chan);
            return 1;
        }
        /* the replica set with each member's RTT and health from the node table */
        static uint64_t rtt[4096];
        static uint8_t h[4096];
        for (size_t i = 0; i < s.nm; i++) {
            rtt[i] = NETELECT_RTT_UNKNOWN;
            h[i] = 0;
            for (size_t j = 0; j < s.n; j++)
                if (s.ids[j] == s.members[i]) {
                    rtt[i] = s.rtt[j];
                    h[i] = s.healthy[j];
                }
        }
        struct netelect_result res = netelect_elect(s.members, rtt, h, s.nm, self);
        printf("{\"generation\": %" PRIu64 ", \"outcome\": \"%s\", \"leader\": \"%#" PRIx64 "\"}\n",
               g1, oc(res.outcome), res.outcome == NETELECT_NO_ELIGIBLE ? 0 : res.winner);
        return 0;
    }
    fprintf(stderr, "view_check: the generation never held still\n");
    return 1;
}

static int do_follow(struct netelect_view *v, int want, double timeout_s, const char *chan)
{
    uint8_t seen[16][16];
    int nseen = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        struct netelect_view_status st = {.size = sizeof st};
        if (netelect_view_status(v, &st) == 0 && st.state == NETELECT_AGENT_LIVE) {
            int known = 0;
            for (int i = 0; i < nseen; i++)
                known |= !memcmp(seen[i], st.incarnation, 16);
            if (!known && nseen < 16) {
                memcpy(seen[nseen++], st.incarnation, 16);
                struct netelect_result res = {0};
                /* No waiting: an agent's first version already holds its
                 * channels (netelect_writer_config.initial_*). */
                int r = netelect_view_elect(v, chan, netelect_view_self(v), &res);
                printf("incarnation %d: %02x%02x%02x%02x... generation %" PRIu64 " pid %d elect %s %s %#" PRIx64 "\n",
                       nseen, st.incarnation[0], st.incarnation[1], st.incarnation[2],
                       st.incarnation[3], st.generation, (int)st.agent_pid,
                       r < 0 ? netelect_strerror(r) : "ok", oc(res.outcome), res.winner);
                if (nseen >= want)
                    return 0;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 > timeout_s) {
            printf("timeout: saw %d incarnation(s), wanted %d\n", nseen, want);
            return 1;
        }
        struct timespec d = {0, 2000000};
        nanosleep(&d, NULL);
    }
}

static volatile sig_atomic_t g_stop, g_mark;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        g_mark = 1;
    else
        g_stop = 1;
}

static uint64_t wall_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int do_loop(struct netelect_view *v, const char *chan, uint64_t self)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint8_t inc[16] = {0};
    int n_inc = 0;
    uint64_t n = 0, enoent = 0, errors = 0, none = 0, changes = 0, last_gen = 0;
    int last_rc = 1;
    struct netelect_result last = {0};
    enum { MAXL = 16 };
    uint64_t leaders[MAXL], counts[MAXL];
    int nl = 0;
    while (!g_stop) {
        struct netelect_result res = {0};
        uint64_t gen = 0;
        int r = netelect_view_elect_gen(v, chan, self, &res, &gen);
        n++;
        if (g_mark) {
            g_mark = 0;
            printf("{\"ev\": \"mark\", \"ts_ns\": %" PRIu64 ", \"n\": %" PRIu64 "}\n", wall_ns(), n);
        }
        if (r == 0 && gen != last_gen) {
            last_gen = gen;
            struct netelect_view_status st = {.size = sizeof st};
            if (netelect_view_status(v, &st) == 0 && memcmp(st.incarnation, inc, 16)) {
                memcpy(inc, st.incarnation, 16);
                n_inc++;
                printf("{\"ev\": \"incarnation\", \"ts_ns\": %" PRIu64 ", \"n\": %" PRIu64
                       ", \"inc\": %d, \"pid\": %d, \"generation\": %" PRIu64 "}\n",
                       wall_ns(), n, n_inc, (int)st.agent_pid, gen);
            }
        }
        if (r == NETELECT_ENOCHAN)
            enoent++;
        else if (r < 0)
            errors++;
        else if (res.outcome == NETELECT_NO_ELIGIBLE)
            none++;
        if (r == 0) {
            int i = 0;
            while (i < nl && leaders[i] != res.winner)
                i++;
            if (i == nl && nl < MAXL) {
                leaders[nl] = res.winner;
                counts[nl++] = 0;
            }
            if (i < nl)
                counts[i]++;
        }
        if (r != last_rc || (r == 0 && (res.outcome != last.outcome || res.winner != last.winner))) {
            if (last_rc != 1)
                changes++;
            printf("{\"ev\": \"answer\", \"ts_ns\": %" PRIu64 ", \"n\": %" PRIu64
                   ", \"rc\": %d, \"err\": \"%s\", \"outcome\": \"%s\", \"leader\": \"%#" PRIx64
                   "\", \"inc\": %d}\n",
                   wall_ns(), n, r, r < 0 ? netelect_strerror(r) : "", r < 0 ? "" : oc(res.outcome),
                   r < 0 ? 0 : res.winner, n_inc);
            last_rc = r;
            last = res;
        }
    }
    printf("{\"ev\": \"summary\", \"ts_ns\": %" PRIu64 ", \"n\": %" PRIu64 ", \"enoent\": %" PRIu64
           ", \"errors\": %" PRIu64 ", \"none\": %" PRIu64 ", \"changes\": %" PRIu64
           ", \"incarnations\": %d, \"leaders\": {",
           wall_ns(), n, enoent, errors, none, changes, n_inc);
    for (int i = 0; i < nl; i++)
        printf("%s\"%#" PRIx64 "\": %" PRIu64, i ? ", " : "", leaders[i], counts[i]);
    printf("}}\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: view_check SHM elect CHANNEL [SELF] | view_check SHM follow N TIMEOUT_S CHANNEL | view_check SHM loop CHANNEL SELF\n");
        return 2;
    }
    struct netelect_view *v;
    int r = netelect_view_open(argv[1], &v);
    if (r < 0) {
        fprintf(stderr, "view_check: open %s: %s\n", argv[1], netelect_strerror(r));
        return 1;
    }
    if (!strcmp(argv[2], "elect")) {
        uint64_t self = argc > 4 ? strtoull(argv[4], NULL, 0) : netelect_view_self(v);
        r = do_elect(v, argv[3], self);
    } else if (!strcmp(argv[2], "loop") && argc == 5) {
        r = do_loop(v, argv[3], strtoull(argv[4], NULL, 0));
    } else if (!strcmp(argv[2], "follow") && argc == 6) {
        r = do_follow(v, (int)test_arg_ll(argv[3], 0, 16, "view_check follow: WANT"),
                      test_arg_d(argv[4], 0, 3600, "view_check follow: TIMEOUT_S"), argv[5]);
    } else {
        r = 2;
    }
    netelect_view_close(v);
    return r;
}
