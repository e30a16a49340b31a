/* SPDX-License-Identifier: MIT */
/*
 * netelect-demo: the election library at work on a generated view, with
 * timings.  It is the main job until netelectd lands.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netelect.h>

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: netelect-demo [-n REPLICAS] [-s SEED]\n"
               "Elects, ranks and picks the top 3 on a generated view of REPLICAS\n"
               "(default 10000) with 5%% unmeasured and 10%% unhealthy replicas.\n");
}

int main(int argc, char **argv)
{
    size_t n = 10000;
    uint64_t seed = 1;
    int c;
    while ((c = getopt(argc, argv, "n:s:h")) != -1) {
        char *end;
        switch (c) {
        case 'n':
            n = strtoull(optarg, &end, 0);
            if (*end || n == 0 || n > 100000000) {
                fprintf(stderr, "netelect-demo: -n wants 1..100000000, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 's':
            seed = strtoull(optarg, &end, 0);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    uint64_t *ids = malloc(n * sizeof *ids), *rtt = malloc(n * sizeof *rtt);
    uint64_t *order = malloc(n * sizeof *order);
    uint8_t *healthy = malloc(n);
    if (!ids || !rtt || !order || !healthy) {
        fprintf(stderr, "netelect-demo: out of memory for %zu replicas\n", n);
        free(ids);
        free(rtt);
        free(order);
        free(healthy);
        return 1;
    }
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        ids[i] = splitmix(&s);
        uint64_t r = splitmix(&s);
        rtt[i] = r % 100 < 5 ? NETELECT_RTT_UNKNOWN : 100000 + r % 200000000;
        healthy[i] = splitmix(&s) % 100 >= 10;
    }
    const uint64_t self = ids[n / 2];
    printf("netelect %s, kernels: %s, %zu replicas, self %#" PRIx64 "\n", netelect_version(),
           netelect_isa(), n, self);

    struct netelect_result r = netelect_elect(ids, rtt, healthy, n, self);
    printf("elect:  %s %#" PRIx64 "\n",
           r.outcome == NETELECT_SELF_WINS   ? "self wins"
           : r.outcome == NETELECT_PEER_WINS ? "peer wins"
                                             : "no eligible replica",
           r.winner);
    size_t cnt = netelect_rank(ids, rtt, healthy, n, self, order);
    printf("rank:   %zu candidates; failover order starts", cnt);
    for (size_t i = 0; i < cnt && i < 3; i++)
        printf(" %#" PRIx64, order[i]);
    printf("\n");

    const int reps = 200;
    double t0 = now_ns();
    uint64_t sink = 0;
    for (int i = 0; i < reps; i++)
        sink += netelect_elect(ids, rtt, healthy, n, ids[i % n]).winner;
    double t1 = now_ns();
    for (int i = 0; i < 20; i++)
        sink += netelect_rank(ids, rtt, healthy, n, ids[i % n], order);
    double t2 = now_ns();
    for (int i = 0; i < reps; i++)
        sink += netelect_topk(ids, rtt, healthy, n, ids[i % n], 3, order);
    double t3 = now_ns();
    printf("timing: elect %.0f ns, rank %.0f ns, top-3 %.0f ns per call (mean; see bench/ for "
           "honest figures)%s\n",
           (t1 - t0) / reps, (t2 - t1) / 20, (t3 - t2) / reps, sink == 42 ? " " : "");
    free(ids);
    free(rtt);
    free(order);
    free(healthy);
    return 0;
}
