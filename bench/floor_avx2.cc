// SPDX-License-Identifier: MIT
// The read floor for ISA level "avx2" (flags set by bench/meson.build).
#include "bench/floor.h"

namespace nb {

uint64_t floor_read_avx2(const uint64_t *ids, const uint64_t *rtt, const uint8_t *h, size_t n)
{
    return floor_read_body(ids, rtt, h, n);
}

} // namespace nb
