// SPDX-License-Identifier: MIT
//
// The benchmark shim: shared data sets and helpers.  The C++ side holds no
// election logic of its own except the peers that netelect is compared with
// (the seed's filter-sort-pick algorithm, std::sort, pdqsort, vqsort, qsort,
// partial_sort_copy); everything else calls the C API.
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <netelect.h>

__extension__ typedef unsigned __int128 u128;

namespace nb {

// self_id of every timed input; no generated id equals it (timed inputs
// omit self: the worst case, see performance-reference.md §2).
constexpr uint64_t kSelf = 0x5e1f5e1f5e1f5e1fULL;

enum class Input { rand, q1ms, desc };
const char *input_name(Input in);

// One input copy: SoA arrays, each starting `offset` bytes past a 64-byte
// boundary (0 or 16).
struct Copy {
    const uint64_t *ids;
    const uint64_t *rtt;
    const uint8_t *healthy;
};

// The candidates of one copy as sort keys (healthy only, self at RTT 0):
// unsigned __int128 rtt<<64|id.  Its little-endian layout {lo=id, hi=rtt}
// is exactly Highway's hwy::uint128_t, so vqsort sorts the same bytes.
struct Keys {
    std::vector<u128> k;
};

struct Dataset {
    size_t n = 0;
    Input input = Input::rand;
    size_t offset = 0;
    std::vector<Copy> copies;
    // Candidate keys per copy, built on first use (see keys()).
    std::vector<Keys> keys_;

    const std::vector<Keys> &keys();
};

// Data sets are cached: one per (n, input, offset).
Dataset &dataset(size_t n, Input input, size_t offset);
// Number of rotating copies for n: up to 1024, about 256 KiB in all, at
// least 2 for n <= 16 Ki, one copy above.
size_t copies_for(size_t n);

// 64-byte aligned zeroed allocation (freed at exit).
void *aligned_buffer(size_t bytes);

// Counters every row carries: ns per replica and replicas per second.
void set_counters(benchmark::State &st, size_t n);

// Options of this binary (beyond --benchmark_*).
struct Options {
    std::vector<size_t> sizes{3, 16, 64, 256, 1000, 10000, 100000, 1000000};
    std::vector<std::string> groups{"core", "shm", "agent"}; // also "shm_mt"
    bool quick = false;
    bool has_group(const char *g) const;
};
extern Options opt;

void register_core();
void register_shm();
void register_agent();
void register_wait();
// Removes every shared-memory file this process created.
void shm_cleanup();

// Context lines recorded by the registration functions.
void add_context(const std::string &key, const std::string &value);

} // namespace nb

#endif // BENCH_BENCH_H
