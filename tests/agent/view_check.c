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
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netelect.h>

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
        struct netelect_view_status st;
        if (netelect_view_status(v, &st) == 0 && st.state == 1) {
            int known = 0;
            for (int i = 0; i < nseen; i++)
                known |= !memcmp(seen[i], st.incarnation, 16);
            if (!known && nseen < 16) {
                memcpy(seen[nseen++], st.incarnation, 16);
                struct netelect_result res = {0};
                /* The writer's first version of a new incarnation is empty
                 * (netelect__writer_open); the agent's own follows at once. */
                int r;
                for (int i = 0; i < 1000; i++) {
                    r = netelect_view_elect(v, chan, netelect_view_self(v), &res);
                    if (r != -ENOENT)
                        break;
                    struct timespec d1 = {0, 1000000};
                    nanosleep(&d1, NULL);
                }
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

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: view_check SHM elect CHANNEL [SELF] | view_check SHM follow N TIMEOUT_S CHANNEL\n");
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
    } else if (!strcmp(argv[2], "follow") && argc == 6) {
        r = do_follow(v, atoi(argv[3]), atof(argv[4]), argv[5]);
    } else {
        r = 2;
    }
    netelect_view_close(v);
    return r;
}
