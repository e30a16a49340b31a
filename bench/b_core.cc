// SPDX-License-Identifier: MIT
//
// elect / rank / top-k: netelect's kernels (the scalar reference, each
// per-ISA table forced with netelect__kernels_init, and the dispatched public
// entry points) side by side with the peers they are measured against.
//
// Row names are  <op>/<method>/<input>/<align>/<n>  with op one of elect,
// rank, topk1, topk3, topk8, topk64; align a64 (64-byte aligned arrays) or
// o16 (16 bytes past a 64-byte boundary).  Methods:
//   ref               netelect__*_ref, the scalar oracle
//   scalar|avx2|avx512  the kernel of that ISA table, one row per distinct
//                     kernel: a table entry equal to a lower level's (or to
//                     the reference) is not repeated (the context says so)
//   public            netelect_elect/_rank/_topk, dispatched
//   seed              the seed's algorithm: filter healthy into a vector of
//                     (rtt, id) with self at 0, std::sort, take the first
//                     (rank: all; topk: the first k)
//   qsort             elect: the same with malloc + qsort; rank: qsort on
//                     the candidate keys
//   floor_<isa>       elect: stream the same 17 B/replica, nothing else
//   memcpy            rank: only the copy of the candidate keys
//   floor_keys        rank: everything the public call does except the
//                     ordering: read the three columns, keep the healthy,
//                     build the 128-bit keys (self at RTT 0) and write
//                     their ids out in input order.  No sort can beat it;
//                     it is the floor of rank at small n, where the peers
//                     below sort keys built outside their timing
//   std_sort, pdqsort, vqsort, qsort
//                     rank: sort the unsigned __int128 keys rtt<<64|id of
//                     the healthy candidates (precomputed, outside the
//                     timing); each iteration first copies them into a
//                     scratch buffer (included in the time: the memcpy row
//                     shows its cost), and does not write ids out
//   partial_sort_copy topk: std::partial_sort_copy of those keys
//
// Every method is checked against the reference on every input copy (and
// on a copy with a healthy self inserted) before it is timed; a mismatch
// skips the row with an error.
#include "bench/bench.h"
#include "bench/floor.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <sstream>
#include <utility>

#include <boost/sort/pdqsort/pdqsort.hpp>
#include <hwy/contrib/sort/vqsort.h>
#include <hwy/targets.h>

extern "C" {
#include "core/dispatch.h"
}

static_assert(sizeof(hwy::uint128_t) == sizeof(u128), "key layouts differ");

namespace nb {
namespace {

// ---------------------------------------------------------------- peers

struct RttId {
    uint64_t rtt, id;
};

// The seed's algorithm, as net-mesh 0.23.0 wrote it: collect the healthy
// replicas as (rtt, id) pairs with self at 0, sort, take the first.
netelect_result seed_elect(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                           size_t n, uint64_t self)
{
    std::vector<std::pair<uint64_t, uint64_t>> v;
    v.reserve(n);
    for (size_t i = 0; i < n; i++)
        if (healthy[i])
            v.emplace_back(ids[i] == self ? 0 : rtt[i], ids[i]);
    std::sort(v.begin(), v.end());
    if (v.empty())
        return {NETELECT_NO_ELIGIBLE, 0};
    const uint64_t w = v.front().second;
    return {w == self ? NETELECT_SELF_WINS : NETELECT_PEER_WINS, w};
}

size_t seed_rank(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
                 uint64_t self, uint64_t *out)
{
    std::vector<std::pair<uint64_t, uint64_t>> v;
    v.reserve(n);
    for (size_t i = 0; i < n; i++)
        if (healthy[i])
            v.emplace_back(ids[i] == self ? 0 : rtt[i], ids[i]);
    std::sort(v.begin(), v.end());
    for (size_t i = 0; i < v.size(); i++)
        out[i] = v[i].second;
    return v.size();
}

size_t seed_topk(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
                 uint64_t self, size_t k, uint64_t *out)
{
    std::vector<std::pair<uint64_t, uint64_t>> v;
    v.reserve(n);
    for (size_t i = 0; i < n; i++)
        if (healthy[i])
            v.emplace_back(ids[i] == self ? 0 : rtt[i], ids[i]);
    std::sort(v.begin(), v.end());
    const size_t m = std::min(k, v.size());
    for (size_t i = 0; i < m; i++)
        out[i] = v[i].second;
    return m;
}

// The part of rank that is not sorting (see floor_keys above).  The keys
// go through memory as they do in the kernels, so the compiler cannot fold
// the build into the id write.
size_t floor_keys_rank(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                       size_t n, uint64_t self, uint64_t *out)
{
    thread_local std::vector<u128> keys;
    if (keys.size() < n)
        keys.resize(n);
    u128 *k = keys.data();
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (healthy[i])
            k[m++] = static_cast<u128>(ids[i] == self ? 0 : rtt[i]) << 64 | ids[i];
    benchmark::ClobberMemory();
    for (size_t i = 0; i < m; i++)
        out[i] = static_cast<uint64_t>(k[i]);
    return m;
}

int cmp_rttid(const void *pa, const void *pb)
{
    const RttId *a = static_cast<const RttId *>(pa), *b = static_cast<const RttId *>(pb);
    if (a->rtt != b->rtt)
        return a->rtt < b->rtt ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

// The seed ported to C: malloc + qsort.
netelect_result qsort_elect(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                            size_t n, uint64_t self)
{
    RttId *v = static_cast<RttId *>(std::malloc((n ? n : 1) * sizeof *v));
    if (!v)
        std::abort();
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (healthy[i])
            v[m++] = RttId{ids[i] == self ? 0 : rtt[i], ids[i]};
    std::qsort(v, m, sizeof *v, cmp_rttid);
    netelect_result r{NETELECT_NO_ELIGIBLE, 0};
    if (m)
        r = {v[0].id == self ? NETELECT_SELF_WINS : NETELECT_PEER_WINS, v[0].id};
    std::free(v);
    return r;
}

// The floors, in elect's shape so they run through the same loop; the
// folded value goes to `winner` and is consumed like a result.
template <uint64_t (*F)(const uint64_t *, const uint64_t *, const uint8_t *, size_t)>
netelect_result floor_as_elect(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                               size_t n, uint64_t)
{
    return {NETELECT_NO_ELIGIBLE, F(ids, rtt, healthy, n)};
}

int cmp_u128(const void *pa, const void *pb)
{
    u128 a, b;
    std::memcpy(&a, pa, sizeof a);
    std::memcpy(&b, pb, sizeof b);
    return a < b ? -1 : a > b;
}

const hwy::Sorter &sorter()
{
    static const hwy::Sorter s;
    return s;
}

enum class Sort { memcpy_only, std_sort, pdqsort, vqsort, qsort };

void run_sort(Sort s, u128 *k, size_t m)
{
    switch (s) {
    case Sort::memcpy_only:
        break;
    case Sort::std_sort:
        std::sort(k, k + m);
        break;
    case Sort::pdqsort:
        boost::sort::pdqsort(k, k + m);
        break;
    case Sort::vqsort:
        sorter()(reinterpret_cast<hwy::uint128_t *>(k), m, hwy::SortAscending());
        break;
    case Sort::qsort:
        std::qsort(k, m, sizeof *k, cmp_u128);
        break;
    }
}

// ---------------------------------------------------------------- kernels

struct Method {
    std::string name;
    netelect__elect_fn elect = nullptr;
    netelect__rank_fn rank = nullptr;
    netelect__topk_fn topk = nullptr;
};

struct KernelSet {
    std::vector<Method> elect, rank, topk; // ref, distinct kernels, public
};

// One row per distinct kernel pointer, named by the lowest ISA table that
// holds it; `ref` first.
KernelSet discover_kernels()
{
    KernelSet ks;
    ks.elect.push_back({"ref", netelect__elect_ref, nullptr, nullptr});
    ks.rank.push_back({"ref", nullptr, netelect__rank_ref, nullptr});
    ks.topk.push_back({"ref", nullptr, nullptr, netelect__topk_ref});
    std::set<const void *> se{reinterpret_cast<const void *>(netelect__elect_ref)};
    std::set<const void *> sr{reinterpret_cast<const void *>(netelect__rank_ref)};
    std::set<const void *> st{reinterpret_cast<const void *>(netelect__topk_ref)};

    const unsigned det = netelect__cpu_detect();
    std::vector<std::pair<unsigned, const char *>> levels{{0u, "scalar"}};
    if (det & NETELECT_CPU_AVX2)
        levels.push_back({NETELECT_CPU_AVX2, "avx2"});
    if ((det & NETELECT_CPU_AVX2) && (det & NETELECT_CPU_AVX512))
        levels.push_back({NETELECT_CPU_AVX2 | NETELECT_CPU_AVX512, "avx512"});

    std::ostringstream ctx;
    // Not a structured binding: C++17 lambdas cannot capture one (clang
    // rejects it; gcc accepts it as an extension).
    for (const auto &level : levels) {
        const unsigned flags = level.first;
        const char *const name = level.second;
        struct netelect__kernels t;
        netelect__kernels_init(&t, flags);
        auto note = [&](const char *op, const void *p, const std::set<const void *> &seen,
                        const void *ref) {
            ctx << name << "." << op << "="
                << (p == ref ? "ref" : seen.count(p) ? "same-as-lower-level" : name) << " ";
        };
        note("elect", reinterpret_cast<const void *>(t.elect), se,
             reinterpret_cast<const void *>(netelect__elect_ref));
        note("rank", reinterpret_cast<const void *>(t.rank), sr,
             reinterpret_cast<const void *>(netelect__rank_ref));
        note("topk", reinterpret_cast<const void *>(t.topk), st,
             reinterpret_cast<const void *>(netelect__topk_ref));
        if (se.insert(reinterpret_cast<const void *>(t.elect)).second)
            ks.elect.push_back({name, t.elect, nullptr, nullptr});
        if (sr.insert(reinterpret_cast<const void *>(t.rank)).second)
            ks.rank.push_back({name, nullptr, t.rank, nullptr});
        if (st.insert(reinterpret_cast<const void *>(t.topk)).second)
            ks.topk.push_back({name, nullptr, nullptr, t.topk});
    }
    add_context("netelect_kernel_tables", ctx.str());
    add_context("netelect_cpu_levels", netelect__cpu_name(det));
    ks.elect.push_back({"public", netelect_elect, nullptr, nullptr});
    ks.rank.push_back({"public", nullptr, netelect_rank, nullptr});
    ks.topk.push_back({"public", nullptr, nullptr, netelect_topk});
    return ks;
}

// ---------------------------------------------------------------- checks

// The inputs a method is verified on: every timed copy, plus copy 0 with a
// healthy self inserted in the middle (self wins at RTT 0).
template <class F> std::string for_each_check_input(Dataset &ds, F &&check)
{
    for (size_t c = 0; c < ds.copies.size(); c++) {
        const Copy &cp = ds.copies[c];
        std::string e = check(cp.ids, cp.rtt, cp.healthy, c);
        if (!e.empty())
            return e;
    }
    if (ds.n > 0) {
        const Copy &cp = ds.copies[0];
        std::vector<uint64_t> ids(cp.ids, cp.ids + ds.n), rtt(cp.rtt, cp.rtt + ds.n);
        std::vector<uint8_t> h(cp.healthy, cp.healthy + ds.n);
        ids[ds.n / 2] = kSelf;
        h[ds.n / 2] = 1;
        rtt[ds.n / 2] = 12345;
        std::string e = check(ids.data(), rtt.data(), h.data(), SIZE_MAX);
        if (!e.empty())
            return e;
    }
    return {};
}

std::string mismatch(const char *what, size_t copy)
{
    char buf[96];
    if (copy == SIZE_MAX)
        std::snprintf(buf, sizeof buf, "%s differs from the reference (input with self)", what);
    else
        std::snprintf(buf, sizeof buf, "%s differs from the reference on copy %zu", what, copy);
    return buf;
}

std::string verify_elect(netelect__elect_fn f, Dataset &ds)
{
    return for_each_check_input(ds, [&](const uint64_t *ids, const uint64_t *rtt,
                                        const uint8_t *h, size_t c) -> std::string {
        const netelect_result a = f(ids, rtt, h, ds.n, kSelf);
        const netelect_result b = netelect__elect_ref(ids, rtt, h, ds.n, kSelf);
        if (a.outcome != b.outcome || a.winner != b.winner)
            return mismatch("elect result", c);
        return {};
    });
}

// A floor row (ordered = false) must produce the reference's candidates,
// in any order.
std::string verify_rank(netelect__rank_fn f, Dataset &ds, bool ordered)
{
    std::vector<uint64_t> a(ds.n + 1), b(ds.n + 1);
    return for_each_check_input(ds, [&](const uint64_t *ids, const uint64_t *rtt,
                                        const uint8_t *h, size_t c) -> std::string {
        const size_t na = f(ids, rtt, h, ds.n, kSelf, a.data());
        const size_t nb_ = netelect__rank_ref(ids, rtt, h, ds.n, kSelf, b.data());
        if (!ordered && na == nb_) {
            std::sort(a.begin(), a.begin() + na);
            std::sort(b.begin(), b.begin() + nb_);
        }
        if (na != nb_ || !std::equal(a.begin(), a.begin() + na, b.begin()))
            return mismatch(ordered ? "rank order" : "rank candidates", c);
        return {};
    });
}

std::string verify_topk(netelect__topk_fn f, Dataset &ds, size_t k)
{
    std::vector<uint64_t> a(k + 1), b(k + 1);
    return for_each_check_input(ds, [&](const uint64_t *ids, const uint64_t *rtt,
                                        const uint8_t *h, size_t c) -> std::string {
        const size_t na = f(ids, rtt, h, ds.n, kSelf, k, a.data());
        const size_t nb_ = netelect__topk_ref(ids, rtt, h, ds.n, kSelf, k, b.data());
        if (na != nb_ || !std::equal(a.begin(), a.begin() + na, b.begin()))
            return mismatch("top-k", c);
        return {};
    });
}

// Peer sorts are checked on the keys they time: the sorted ids must equal
// the reference order.
std::string verify_sort(Sort s, Dataset &ds)
{
    if (s == Sort::memcpy_only)
        return {};
    const auto &keys = ds.keys();
    std::vector<uint64_t> ref(ds.n + 1);
    u128 *scratch = static_cast<u128 *>(aligned_buffer((ds.n + 1) * sizeof(u128)));
    for (size_t c = 0; c < ds.copies.size(); c++) {
        const Copy &cp = ds.copies[c];
        const size_t m = keys[c].k.size();
        std::memcpy(scratch, keys[c].k.data(), m * sizeof(u128));
        run_sort(s, scratch, m);
        const size_t nr = netelect__rank_ref(cp.ids, cp.rtt, cp.healthy, ds.n, kSelf, ref.data());
        if (nr != m)
            return mismatch("candidate count", c);
        for (size_t i = 0; i < m; i++)
            if (static_cast<uint64_t>(scratch[i]) != ref[i])
                return mismatch("sorted order", c);
    }
    return {};
}

std::string verify_partial(Dataset &ds, size_t k)
{
    const auto &keys = ds.keys();
    std::vector<u128> out(k);
    std::vector<uint64_t> ref(k + 1);
    for (size_t c = 0; c < ds.copies.size(); c++) {
        const Copy &cp = ds.copies[c];
        auto e = std::partial_sort_copy(keys[c].k.begin(), keys[c].k.end(), out.begin(), out.end());
        const size_t m = static_cast<size_t>(e - out.begin());
        const size_t nr = netelect__topk_ref(cp.ids, cp.rtt, cp.healthy, ds.n, kSelf, k, ref.data());
        if (nr != m)
            return mismatch("top-k count", c);
        for (size_t i = 0; i < m; i++)
            if (static_cast<uint64_t>(out[i]) != ref[i])
                return mismatch("top-k order", c);
    }
    return {};
}

// ---------------------------------------------------------------- registration

// Verification runs once per row (Google Benchmark calls the function once
// per repetition and while it sizes the iteration count).
struct Verified {
    bool done = false;
    std::string error;
};

template <class V> bool check_once(benchmark::State &st, Verified &v, V &&verify)
{
    if (!v.done) {
        v.error = verify();
        v.done = true;
    }
    if (!v.error.empty()) {
        st.SkipWithError(v.error.c_str());
        return false;
    }
    return true;
}

std::string row(const char *op, const std::string &method, Input in, size_t off, size_t n)
{
    return std::string(op) + "/" + method + "/" + input_name(in) + "/" + (off ? "o16" : "a64") +
           "/" + std::to_string(n);
}

void reg_elect(const std::string &method, netelect__elect_fn f, Input in, size_t off, size_t n,
               bool verify)
{
    auto v = std::make_shared<Verified>();
    benchmark::RegisterBenchmark(row("elect", method, in, off, n).c_str(),
                                 [=](benchmark::State &st) {
                                     Dataset &ds = dataset(n, in, off);
                                     if (verify && !check_once(st, *v, [&] {
                                             return verify_elect(f, ds);
                                         }))
                                         return;
                                     const Copy *cp = ds.copies.data();
                                     const size_t nc = ds.copies.size();
                                     size_t c = 0;
                                     for ([[maybe_unused]] auto _ : st) {
                                         netelect_result r = f(cp[c].ids, cp[c].rtt,
                                                               cp[c].healthy, n, kSelf);
                                         benchmark::DoNotOptimize(r);
                                         if (++c == nc)
                                             c = 0;
                                     }
                                     set_counters(st, n);
                                 });
}

void reg_rank(const std::string &method, netelect__rank_fn f, Input in, size_t off, size_t n,
              bool ordered = true)
{
    auto v = std::make_shared<Verified>();
    benchmark::RegisterBenchmark(row("rank", method, in, off, n).c_str(),
                                 [=](benchmark::State &st) {
                                     Dataset &ds = dataset(n, in, off);
                                     if (!check_once(st, *v, [&] {
                                             return verify_rank(f, ds, ordered);
                                         }))
                                         return;
                                     uint64_t *out = static_cast<uint64_t *>(
                                         aligned_buffer((n + 1) * sizeof(uint64_t)));
                                     const Copy *cp = ds.copies.data();
                                     const size_t nc = ds.copies.size();
                                     size_t c = 0;
                                     for ([[maybe_unused]] auto _ : st) {
                                         size_t m = f(cp[c].ids, cp[c].rtt, cp[c].healthy, n,
                                                      kSelf, out);
                                         benchmark::DoNotOptimize(m);
                                         benchmark::ClobberMemory();
                                         if (++c == nc)
                                             c = 0;
                                     }
                                     set_counters(st, n);
                                 });
}

void reg_sort(const std::string &method, Sort s, Input in, size_t off, size_t n)
{
    auto v = std::make_shared<Verified>();
    benchmark::RegisterBenchmark(row("rank", method, in, off, n).c_str(),
                                 [=](benchmark::State &st) {
                                     Dataset &ds = dataset(n, in, off);
                                     if (!check_once(st, *v, [&] { return verify_sort(s, ds); }))
                                         return;
                                     const auto &keys = ds.keys();
                                     u128 *scratch = static_cast<u128 *>(
                                         aligned_buffer((n + 1) * sizeof(u128)));
                                     const size_t nc = keys.size();
                                     size_t c = 0;
                                     for ([[maybe_unused]] auto _ : st) {
                                         const size_t m = keys[c].k.size();
                                         std::memcpy(scratch, keys[c].k.data(), m * sizeof(u128));
                                         run_sort(s, scratch, m);
                                         benchmark::DoNotOptimize(scratch);
                                         benchmark::ClobberMemory();
                                         if (++c == nc)
                                             c = 0;
                                     }
                                     set_counters(st, n);
                                 });
}

void reg_topk(const std::string &method, netelect__topk_fn f, size_t k, Input in, size_t off,
              size_t n)
{
    const std::string op = "topk" + std::to_string(k);
    auto v = std::make_shared<Verified>();
    benchmark::RegisterBenchmark(row(op.c_str(), method, in, off, n).c_str(),
                                 [=](benchmark::State &st) {
                                     Dataset &ds = dataset(n, in, off);
                                     if (!check_once(st, *v, [&] {
                                             return verify_topk(f, ds, k);
                                         }))
                                         return;
                                     uint64_t *out = static_cast<uint64_t *>(
                                         aligned_buffer((k + 1) * sizeof(uint64_t)));
                                     const Copy *cp = ds.copies.data();
                                     const size_t nc = ds.copies.size();
                                     size_t c = 0;
                                     for ([[maybe_unused]] auto _ : st) {
                                         size_t m = f(cp[c].ids, cp[c].rtt, cp[c].healthy, n,
                                                      kSelf, k, out);
                                         benchmark::DoNotOptimize(m);
                                         benchmark::ClobberMemory();
                                         if (++c == nc)
                                             c = 0;
                                     }
                                     set_counters(st, n);
                                 });
}

void reg_partial(size_t k, Input in, size_t off, size_t n)
{
    const std::string op = "topk" + std::to_string(k);
    auto v = std::make_shared<Verified>();
    benchmark::RegisterBenchmark(
        row(op.c_str(), "partial_sort_copy", in, off, n).c_str(), [=](benchmark::State &st) {
            Dataset &ds = dataset(n, in, off);
            if (!check_once(st, *v, [&] { return verify_partial(ds, k); }))
                return;
            const auto &keys = ds.keys();
            u128 *out = static_cast<u128 *>(aligned_buffer((k + 1) * sizeof(u128)));
            const size_t nc = keys.size();
            size_t c = 0;
            for ([[maybe_unused]] auto _ : st) {
                u128 *e = std::partial_sort_copy(keys[c].k.begin(), keys[c].k.end(), out, out + k);
                benchmark::DoNotOptimize(e);
                benchmark::ClobberMemory();
                if (++c == nc)
                    c = 0;
            }
            set_counters(st, n);
        });
}

} // namespace

void register_core()
{
    if (!opt.has_group("core"))
        return;
    const KernelSet ks = discover_kernels();
    const unsigned det = netelect__cpu_detect();

    std::vector<std::pair<std::string, netelect__elect_fn>> floors{
        {"floor_base", floor_as_elect<floor_read_base>}};
    if (det & NETELECT_CPU_AVX2)
        floors.push_back({"floor_avx2", floor_as_elect<floor_read_avx2>});
    if ((det & NETELECT_CPU_AVX2) && (det & NETELECT_CPU_AVX512))
        floors.push_back({"floor_avx512", floor_as_elect<floor_read_avx512>});

    const Input inputs[] = {Input::rand, Input::q1ms, Input::desc};
    const std::vector<Sort> sorts{Sort::memcpy_only, Sort::std_sort, Sort::pdqsort, Sort::vqsort,
                                  Sort::qsort};
    const char *sort_names[] = {"memcpy", "std_sort", "pdqsort", "vqsort", "qsort"};

    // elect
    for (Input in : inputs)
        for (size_t n : opt.sizes) {
            for (const Method &m : ks.elect)
                reg_elect(m.name, m.elect, in, 0, n, true);
            reg_elect("seed", seed_elect, in, 0, n, true);
            reg_elect("qsort", qsort_elect, in, 0, n, true);
            for (auto &[name, f] : floors)
                reg_elect(name, f, in, 0, n, false);
        }
    for (size_t n : opt.sizes) {
        for (const Method &m : ks.elect)
            reg_elect(m.name, m.elect, Input::rand, 16, n, true);
        for (auto &[name, f] : floors)
            reg_elect(name, f, Input::rand, 16, n, false);
    }

    // rank
    for (Input in : inputs)
        for (size_t n : opt.sizes) {
            for (const Method &m : ks.rank)
                reg_rank(m.name, m.rank, in, 0, n);
            reg_rank("seed", seed_rank, in, 0, n);
            reg_rank("floor_keys", floor_keys_rank, in, 0, n, false);
            for (size_t i = 0; i < sorts.size(); i++)
                reg_sort(sort_names[i], sorts[i], in, 0, n);
        }
    for (size_t n : opt.sizes)
        for (const Method &m : ks.rank)
            if (m.name != "ref")
                reg_rank(m.name, m.rank, Input::rand, 16, n);

    // top-k: every k on rand, k = 8 also on the tie-heavy and adversarial inputs.
    for (size_t k : {1u, 3u, 8u, 64u})
        for (Input in : inputs) {
            if (k != 8 && in != Input::rand)
                continue;
            for (size_t n : opt.sizes) {
                for (const Method &m : ks.topk)
                    reg_topk(m.name, m.topk, k, in, 0, n);
                reg_topk("seed", seed_topk, k, in, 0, n);
                reg_partial(k, in, 0, n);
            }
        }

    std::ostringstream cp;
    for (size_t n : opt.sizes)
        cp << n << ":" << copies_for(n) << " ";
    add_context("input_copies", cp.str());
    add_context("vqsort_mode",
                "hwy::Sorter on hwy::uint128_t {lo=id, hi=rtt} (128-bit keys; K64V64 loses the "
                "value of UINT64_MAX keys in Highway 1.0.3)");
    const int64_t t = hwy::SupportedTargets();
    add_context("hwy_best_target", hwy::TargetName(t & -t));
}

} // namespace nb
