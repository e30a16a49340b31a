/* SPDX-License-Identifier: MIT */
/*
 * The torture oracle shared by the multi-process torture test and the
 * in-process TSAN test: every payload is a pure function of its generation,
 * so a reader can check any answer it accepted against the generation it
 * read it from.
 */
#ifndef TESTS_SHM_ORACLE_H
#define TESTS_SHM_ORACLE_H

#include <stdint.h>

#include "netelect.h"

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

/* What generation g says about node id's RTT (1 in 32 unmeasured)... */
static inline uint64_t o_rtt(uint64_t g, uint64_t id)
{
    uint64_t h = mix64(g * UINT64_C(0x9E3779B97F4A7C15) ^ id);
    return (h & 31) == 0 ? NETELECT_RTT_UNKNOWN : (h >> 8) % 1000000;
}

/* ...and its health (7 in 8 healthy). */
static inline uint8_t o_ok(uint64_t g, uint64_t id)
{
    return ((mix64(g * UINT64_C(0x9E3779B97F4A7C15) ^ id) >> 40) & 7) != 0;
}

/* With delta publishes of period p (version g changes exactly the nodes
 * whose id = g mod p; p = 0: every version changes every node), the
 * version whose values node id carries in version g: the last one that
 * changed it.  Full publishes write the same function, so the oracle
 * stays a pure function of the generation whatever the mix. */
static inline uint64_t o_gen(uint64_t g, uint64_t id, unsigned p)
{
    return p ? g - (g - id) % p : g;
}

#endif /* TESTS_SHM_ORACLE_H */
