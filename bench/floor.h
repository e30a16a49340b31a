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

// The body shared by the three units: one pass in blocks of 256 replicas
// (the ids and RTTs of a block, then its health bytes), so all three
// streams advance together like a kernel's loads do.
static inline uint64_t floor_read_body(const uint64_t *__restrict ids,
                                       const uint64_t *__restrict rtt,
                                       const uint8_t *__restrict h, size_t n)
{
    uint64_t a = 0, b = 0;
    uint8_t c = 0;
    size_t i = 0;
    for (; i + 256 <= n; i += 256) {
        for (size_t j = i; j < i + 256; j++) {
            a |= ids[j];
            b |= rtt[j];
        }
        for (size_t j = i; j < i + 256; j++)
            c |= h[j];
    }
    for (; i < n; i++) {
        a |= ids[i];
        b |= rtt[i];
        c |= h[i];
    }
    return a ^ b ^ c;
}

} // namespace nb

#endif // BENCH_FLOOR_H
