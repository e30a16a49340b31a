// SPDX-License-Identifier: MIT
//
// The read floor: stream exactly the bytes an elect reads (id and RTT, 8 B
// each, plus the health byte: 17 B per replica) and fold them into one value
// the caller must consume, so the loads cannot be optimised away.  Compiled
// once per ISA level in its own translation unit (floor_*.cc, own flags, no
// global -march) and auto-vectorised by the compiler: it is the floor for
// a kernel of that level.
#ifndef BENCH_FLOOR_H
#define BENCH_FLOOR_H

#include <cstddef>
#include <cstdint>

namespace nb {

uint64_t floor_read_base(const uint64_t *ids, const uint64_t *rtt, const uint8_t *h, size_t n);
uint64_t floor_read_avx2(const uint64_t *ids, const uint64_t *rtt, const uint8_t *h, size_t n);
uint64_t floor_read_avx512(const uint64_t *ids, const uint64_t *rtt, const uint8_t *h, size_t n);

// The body shared by the three units.
static inline uint64_t floor_read_body(const uint64_t *__restrict ids,
                                       const uint64_t *__restrict rtt,
                                       const uint8_t *__restrict h, size_t n)
{
    uint64_t a = 0, b = 0;
    uint8_t c = 0;
    for (size_t i = 0; i < n; i++) {
        a |= ids[i];
        b |= rtt[i];
    }
    for (size_t i = 0; i < n; i++)
        c |= h[i];
    return a ^ b ^ c;
}

} // namespace nb

#endif // BENCH_FLOOR_H
