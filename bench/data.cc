// SPDX-License-Identifier: MIT
//
// Input generation (performance-reference.md §2): ids random 64-bit, RTT
// uniform over 100 us..200 ms with 5 % unknown, 10 % unhealthy; `q1ms`
// rounds RTTs up to whole milliseconds (many ties); `desc` orders `rand` by
// RTT descending (unknown first), the adversarial order for threshold
// filters.  Each copy is generated from its own seed, so rotating copies
// gives the branch predictor nothing to memorise.
#include "bench/bench.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <tuple>

namespace nb {

Options opt;

bool Options::has_group(const char *g) const
{
    return std::find(groups.begin(), groups.end(), g) != groups.end();
}

const char *input_name(Input in)
{
    switch (in) {
    case Input::rand:
        return "rand";
    case Input::q1ms:
        return "q1ms";
    case Input::desc:
        return "desc";
    }
    return "?";
}

namespace {

struct SplitMix {
    uint64_t s;
    uint64_t next()
    {
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // Uniform in [0, bound) (bound small; the bias of a 64-bit modulus is
    // irrelevant here).
    uint64_t below(uint64_t bound) { return next() % bound; }
};

void free_aligned(void *p)
{
    std::free(p);
}

std::vector<std::unique_ptr<void, void (*)(void *)>> &global_mem()
{
    static std::vector<std::unique_ptr<void, void (*)(void *)>> m;
    return m;
}

} // namespace

void *aligned_buffer(size_t bytes)
{
    size_t sz = (bytes + 127) / 64 * 64;
    void *p = std::aligned_alloc(64, sz);
    if (!p)
        std::abort();
    std::memset(p, 0, sz);
    global_mem().emplace_back(p, free_aligned);
    return p;
}

size_t copies_for(size_t n)
{
    if (n > 16384)
        return 1;
    size_t c = (256u * 1024u) / (17 * n);
    return std::clamp<size_t>(c, 2, 1024);
}

Dataset &dataset(size_t n, Input input, size_t offset)
{
    static std::map<std::tuple<size_t, int, size_t>, std::unique_ptr<Dataset>> cache;
    auto key = std::make_tuple(n, static_cast<int>(input), offset);
    auto it = cache.find(key);
    if (it != cache.end())
        return *it->second;

    auto ds = std::make_unique<Dataset>();
    ds->n = n;
    ds->input = input;
    ds->offset = offset;
    const size_t nc = copies_for(n);
    std::vector<uint64_t> ids(n), rtt(n);
    std::vector<uint8_t> h(n);
    std::vector<size_t> order(n);
    for (size_t c = 0; c < nc; c++) {
        // Same content for every offset and input family member: the seed
        // depends on n and the copy only.
        SplitMix rng{0x6e6574656c656374ULL ^ (n * 0x100000001b3ULL) ^ (c << 40)};
        for (size_t i = 0; i < n; i++) {
            uint64_t id;
            do
                id = rng.next();
            while (id == kSelf);
            ids[i] = id;
            uint64_t r = 100000 + rng.below(200000000 - 100000 + 1);
            if (rng.below(100) < 5)
                r = NETELECT_RTT_UNKNOWN;
            else if (input == Input::q1ms)
                r = (r + 999999) / 1000000 * 1000000;
            rtt[i] = r;
            h[i] = rng.below(100) >= 10;
        }
        if (input == Input::desc) {
            std::iota(order.begin(), order.end(), size_t{0});
            std::stable_sort(order.begin(), order.end(),
                             [&](size_t a, size_t b) { return rtt[a] > rtt[b]; });
        }
        auto *pi = static_cast<uint8_t *>(aligned_buffer(n * 8 + offset)) + offset;
        auto *pr = static_cast<uint8_t *>(aligned_buffer(n * 8 + offset)) + offset;
        auto *ph = static_cast<uint8_t *>(aligned_buffer(n + offset)) + offset;
        auto *oi = reinterpret_cast<uint64_t *>(pi);
        auto *orr = reinterpret_cast<uint64_t *>(pr);
        for (size_t i = 0; i < n; i++) {
            size_t s = input == Input::desc ? order[i] : i;
            oi[i] = ids[s];
            orr[i] = rtt[s];
            ph[i] = h[s];
        }
        ds->copies.push_back(Copy{oi, orr, ph});
    }
    Dataset &ref = *ds;
    cache.emplace(key, std::move(ds));
    return ref;
}

const std::vector<Keys> &Dataset::keys()
{
    if (!keys_.empty())
        return keys_;
    keys_.resize(copies.size());
    for (size_t c = 0; c < copies.size(); c++) {
        const Copy &cp = copies[c];
        Keys &k = keys_[c];
        for (size_t i = 0; i < n; i++) {
            if (!cp.healthy[i])
                continue;
            const uint64_t r = cp.ids[i] == kSelf ? 0 : cp.rtt[i];
            k.k.push_back((u128)r << 64 | cp.ids[i]);
        }
    }
    return keys_;
}

void set_counters(benchmark::State &st, size_t n)
{
    const double items = static_cast<double>(n);
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(n));
    // (seconds per iteration) / (n * 1e-9) = ns per replica.
    st.counters["ns_per_replica"] = benchmark::Counter(
        items * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

} // namespace nb
