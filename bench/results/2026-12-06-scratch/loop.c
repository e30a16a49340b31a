// SPDX-License-Identifier: MIT
/*
 * Repeated netelect_rank on one n-entry input, timed per call, with the
 * process's minor page faults per call.  Not part of the build: the bench
 * suite runs each size among many other rows in one process, and what is
 * measured here is how rank behaves in a process that does nothing else
 * (where glibc's malloc heuristics alone decide whether the scratch buffer
 * is fresh memory).  Build and run: see README.md next to this file.
 */
#include <netelect.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int main(int argc, char **argv)
{
    const size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    const int calls = argc > 2 ? atoi(argv[2]) : 20;
    uint64_t *ids = malloc(n * 8), *rtt = malloc(n * 8), *out = malloc(n * 8);
    uint8_t *healthy = malloc(n);
    if (!ids || !rtt || !out || !healthy || calls < 1)
        return 1;
    /* The bench suite's rand shape: 5 % never measured, 10 % unhealthy. */
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        ids[i] = xorshift(&s);
        rtt[i] = xorshift(&s) % 20 == 0 ? UINT64_MAX : 100000 + xorshift(&s) % 200000000;
        healthy[i] = xorshift(&s) % 10 != 0;
    }
    struct rusage r0, r1;
    double best = 1e300, sum = 0;
    getrusage(RUSAGE_SELF, &r0);
    for (int k = 0; k < calls; k++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        const size_t m = netelect_rank(ids, rtt, healthy, n, 0, out);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        sum += ms;
        best = ms < best ? ms : best;
        printf("%.1f ", ms);
        if (m == 0)
            return 1;
    }
    getrusage(RUSAGE_SELF, &r1);
    printf("\nn=%zu calls=%d best %.2f ms mean %.2f ms, minor faults/call %.0f\n", n, calls, best,
           sum / calls, (double)(r1.ru_minflt - r0.ru_minflt) / calls);
    return 0;
}
