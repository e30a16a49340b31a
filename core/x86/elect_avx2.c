/* SPDX-License-Identifier: MIT */
/*
 * AVX2 elect and top-k: the same design as the AVX-512 unit (threshold
 * filter over 32-entry blocks, exact fallback for interesting blocks), in
 * the instructions AVX2 has.  AVX2 has no unsigned 64-bit compare or min,
 * so values are compared after flipping the sign bit (x ^ 2^63 turns the
 * unsigned order into the signed one) and minima are blends.
 *
 * Blocks are always full here: the tail is handled by re-running the last
 * full block ending at n, which is harmless because a minimum is
 * idempotent (top-k tracks which entries it has seen and uses a scalar
 * tail instead).
 */
#include <immintrin.h>

#include "core/dispatch.h"
#include "core/kernel.h"
#include "core/x86/isa_levels.h"

_Static_assert((NETELECT_X86_COMPILED & NETELECT_X86_NEEDS_AVX2) == NETELECT_X86_NEEDS_AVX2,
               "core/meson.build builds this unit short of the avx2 level");
const uint64_t netelect__x86_compiled_avx2 = NETELECT_X86_COMPILED;

enum { BLOCK = 32, SMALL_N = 32 };

#define BIAS ((long long)0x8000000000000000ull)

static inline __m256i load(const uint64_t *p)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* Healthy-entry bit mask of the 32 entries at i. */
static inline uint32_t health_bits(const uint8_t *healthy, size_t i)
{
    const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(healthy + i));
    return ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(h, _mm256_setzero_si256()));
}

/* 4 lanes of "this entry is unhealthy", widened from 4 health bytes. */
static inline __m256i unhealthy4(const uint8_t *healthy)
{
    uint32_t w;
    memcpy(&w, healthy, sizeof w);
    return _mm256_cmpeq_epi64(_mm256_cvtepu8_epi64(_mm_cvtsi32_si128((int)w)),
                              _mm256_setzero_si256());
}

static inline uint32_t lanes(__m256i v)
{
    return (uint32_t)_mm256_movemask_pd(_mm256_castsi256_pd(v));
}

/*
 * Exact minimum of the healthy entries of the full block at i, offered to
 * b: min rtt (self at 0, unhealthy at MAX) by sign-biased blends, then
 * every healthy lane holding that rtt is offered in scalar (usually one).
 */
static void reduce_block(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                         size_t i, uint64_t self_id, struct netelect__best *b)
{
    const uint32_t h = health_bits(healthy, i);
    if (!h)
        return;
    const __m256i bias = _mm256_set1_epi64x(BIAS), vself = _mm256_set1_epi64x((long long)self_id);
    __m256i rb[8];
    __m256i mn = _mm256_set1_epi64x(-1 ^ BIAS);
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 8; j++) {
        const size_t o = i + 4 * (size_t)j;
        __m256i r = _mm256_andnot_si256(_mm256_cmpeq_epi64(load(ids + o), vself), load(rtt + o));
        r = _mm256_or_si256(r, unhealthy4(healthy + o));
        rb[j] = _mm256_xor_si256(r, bias);
        mn = _mm256_blendv_epi8(mn, rb[j], _mm256_cmpgt_epi64(mn, rb[j]));
    }
    long long l[4];
    _mm256_storeu_si256((__m256i *)(void *)l, mn);
    long long m = l[0];
    for (int j = 1; j < 4; j++)
        m = l[j] < m ? l[j] : m;
    const __m256i vm = _mm256_set1_epi64x(m);
    uint32_t hit = 0;
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 8; j++)
        hit |= lanes(_mm256_cmpeq_epi64(rb[j], vm)) << (4 * j);
    hit &= h;
    const uint64_t r = (uint64_t)m ^ (uint64_t)BIAS;
    for (; hit; hit &= hit - 1)
        netelect__best_offer(b, r, ids[i + (size_t)__builtin_ctz(hit)]);
}

/* Interesting lanes (rtt <= T or id == self) of the block at i, as bits. */
static inline uint32_t block_cand(const uint64_t *ids, const uint64_t *rtt, size_t i, __m256i vtb,
                                  __m256i vself)
{
    const __m256i bias = _mm256_set1_epi64x(BIAS);
    uint32_t c = 0;
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 8; j++) {
        const size_t o = i + 4 * (size_t)j;
        const __m256i gt = _mm256_cmpgt_epi64(_mm256_xor_si256(load(rtt + o), bias), vtb);
        const __m256i eq = _mm256_cmpeq_epi64(load(ids + o), vself);
        c |= lanes(_mm256_or_si256(_mm256_xor_si256(gt, _mm256_set1_epi64x(-1)), eq)) << (4 * j);
    }
    return c;
}

/* Whether any lane of the block at i is interesting; the hot loop. */
static inline int block_any(const uint64_t *ids, const uint64_t *rtt, size_t i, __m256i vtb,
                            __m256i vself)
{
    const __m256i bias = _mm256_set1_epi64x(BIAS);
    __m256i boring = _mm256_set1_epi64x(-1);
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 8; j++) {
        const size_t o = i + 4 * (size_t)j;
        const __m256i gt = _mm256_cmpgt_epi64(_mm256_xor_si256(load(rtt + o), bias), vtb);
        const __m256i eq = _mm256_cmpeq_epi64(load(ids + o), vself);
        boring = _mm256_and_si256(boring, _mm256_andnot_si256(eq, gt));
    }
    return !_mm256_testc_si256(boring, _mm256_set1_epi64x(-1));
}

/*
 * Order-free scan of the full blocks from i (the v3 kernel; see the
 * AVX-512 unit): per-lane (rtt, id) minimum over healthy entries in two
 * independent accumulators, self seen or not, fixed up at the end.  All in
 * sign-biased form.  The caller handles a partial last block by passing
 * an i that overlaps, which a minimum tolerates.
 */
static void scan_v3(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t i,
                    size_t n, uint64_t self_id, struct netelect__best *b)
{
    const __m256i bias = _mm256_set1_epi64x(BIAS), vself = _mm256_set1_epi64x((long long)self_id);
    const __m256i top = _mm256_set1_epi64x(-1 ^ BIAS);
    __m256i br[2] = {top, top}, bi[2] = {top, top};
    __m256i seen[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    __m256i self = _mm256_setzero_si256();
    for (; i + 8 <= n; i += 8) {
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 2; j++) {
            const size_t o = i + 4 * (size_t)j;
            const __m256i ok = _mm256_xor_si256(unhealthy4(healthy + o), _mm256_set1_epi64x(-1));
            const __m256i r = _mm256_xor_si256(load(rtt + o), bias);
            const __m256i draw = load(ids + o), d = _mm256_xor_si256(draw, bias);
            const __m256i lt = _mm256_and_si256(ok, _mm256_cmpgt_epi64(br[j], r));
            const __m256i eqlt = _mm256_and_si256(
                _mm256_and_si256(ok, _mm256_cmpeq_epi64(r, br[j])), _mm256_cmpgt_epi64(bi[j], d));
            br[j] = _mm256_blendv_epi8(br[j], r, lt);
            bi[j] = _mm256_blendv_epi8(bi[j], d, _mm256_or_si256(lt, eqlt));
            seen[j] = _mm256_or_si256(seen[j], ok);
            self = _mm256_or_si256(self, _mm256_and_si256(ok, _mm256_cmpeq_epi64(draw, vself)));
        }
    }
    long long lr[8], li[8];
    _mm256_storeu_si256((__m256i *)(void *)lr, br[0]);
    _mm256_storeu_si256((__m256i *)(void *)(lr + 4), br[1]);
    _mm256_storeu_si256((__m256i *)(void *)li, bi[0]);
    _mm256_storeu_si256((__m256i *)(void *)(li + 4), bi[1]);
    /* A lane that never saw a healthy entry holds only the sentinel. */
    for (uint32_t v = lanes(seen[0]) | lanes(seen[1]) << 4; v; v &= v - 1) {
        const int l = __builtin_ctz(v);
        netelect__best_offer(b, (uint64_t)lr[l] ^ (uint64_t)BIAS, (uint64_t)li[l] ^ (uint64_t)BIAS);
    }
    for (; i < n; i++)
        netelect__best_offer_idx(b, ids, rtt, healthy, i, self_id);
    if (!_mm256_testz_si256(self, self))
        netelect__best_offer(b, 0, self_id);
}

enum { HEAVY_LIMIT = 3 };

static struct netelect_result __attribute__((noinline))
elect_simd(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
           uint64_t self_id)
{
    struct netelect__best b;
    netelect__best_init(&b);
    netelect__best_seed(&b, ids, rtt, healthy, n, self_id);
    const __m256i vself = _mm256_set1_epi64x((long long)self_id);
    __m256i vtb = _mm256_set1_epi64x((long long)(b.rtt ^ (uint64_t)BIAS));
    int heavy = 0;
    size_t i = 0;
    for (;; i += BLOCK) {
        if (i + BLOCK > n) {
            if (i == n)
                break;
            i = n - BLOCK; /* overlap the last full block */
        }
        if (__builtin_expect(block_any(ids, rtt, i, vtb, vself), 0)) {
            uint32_t cand = block_cand(ids, rtt, i, vtb, vself) & health_bits(healthy, i);
            if (__builtin_popcount(cand) > 2) {
                if (++heavy > HEAVY_LIMIT) {
                    scan_v3(ids, rtt, healthy, i, n, self_id, &b);
                    break;
                }
                reduce_block(ids, rtt, healthy, i, self_id, &b);
            } else {
                for (; cand; cand &= cand - 1)
                    netelect__best_offer_idx(&b, ids, rtt, healthy,
                                             i + (size_t)__builtin_ctz(cand), self_id);
            }
            vtb = _mm256_set1_epi64x((long long)(b.rtt ^ (uint64_t)BIAS));
        }
        if (i + BLOCK == n)
            break;
    }
    return netelect__best_result(&b, self_id);
}

/*
 * Small n takes the scalar loop before any vector state or the SIMD body's
 * 64-byte-aligned frame is set up: at n = 3 that prologue is most of the cost.
 */
struct netelect_result netelect__elect_avx2(const uint64_t *ids, const uint64_t *rtt,
                                            const uint8_t *healthy, size_t n, uint64_t self_id)
{
    if (n < SMALL_N)
        return netelect__elect_small(ids, rtt, healthy, n, self_id);
    return elect_simd(ids, rtt, healthy, n, self_id);
}

/* As in the AVX-512 unit: 32 lane-class minima of [s, n), k-th smallest. */
static uint64_t suffix_bound(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t s, size_t n, uint64_t self_id, size_t k)
{
    uint64_t mins[BLOCK];
    for (int j = 0; j < BLOCK; j++)
        mins[j] = UINT64_MAX;
    const __m256i bias = _mm256_set1_epi64x(BIAS), vself = _mm256_set1_epi64x((long long)self_id);
    __m256i acc[8];
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 8; j++)
        acc[j] = _mm256_set1_epi64x(-1 ^ BIAS);
    size_t i = s;
    for (; i + BLOCK <= n; i += BLOCK)
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 8; j++) {
            const size_t o = i + 4 * (size_t)j;
            __m256i r =
                _mm256_andnot_si256(_mm256_cmpeq_epi64(load(ids + o), vself), load(rtt + o));
            r = _mm256_xor_si256(_mm256_or_si256(r, unhealthy4(healthy + o)), bias);
            acc[j] = _mm256_blendv_epi8(acc[j], r, _mm256_cmpgt_epi64(acc[j], r));
        }
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 8; j++) {
        long long l[4];
        _mm256_storeu_si256((__m256i *)(void *)l, acc[j]);
        for (int q = 0; q < 4; q++)
            mins[4 * j + q] = (uint64_t)l[q] ^ (uint64_t)BIAS;
    }
    netelect__class_mins_tail(mins, BLOCK, ids, rtt, healthy, s, i, n, self_id);
    return netelect__kth_of_mins(mins, BLOCK, k);
}

static size_t __attribute__((noinline))
topk_simd(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
          uint64_t self_id, size_t k, uint64_t *out_ids)
{
    uint64_t br[NETELECT__TOPK_BUF_MAX], bi[NETELECT__TOPK_BUF_MAX];
    struct netelect__topbuf t = {0, k, br, bi};
    const __m256i bias = _mm256_set1_epi64x(BIAS), vself = _mm256_set1_epi64x((long long)self_id);
    uint64_t thr = UINT64_MAX;
    __m256i vtb = _mm256_set1_epi64x(-1 ^ BIAS);
    int bounded = 0;
    size_t i = 0, inserts = 0;
    for (; i + BLOCK <= n; i += BLOCK) {
        if (__builtin_expect(!block_any(ids, rtt, i, vtb, vself), 1))
            continue;
        uint32_t cand = 0;
        if (t.len == k) {
            /* Exact key test against the k-th: (rtt, id) < (wr, wi). */
            const __m256i wr = _mm256_set1_epi64x((long long)(t.r[k - 1] ^ (uint64_t)BIAS));
            const __m256i wi = _mm256_set1_epi64x((long long)(t.id[k - 1] ^ (uint64_t)BIAS));
            _Pragma("GCC unroll 8")
            for (int j = 0; j < 8; j++) {
                const size_t o = i + 4 * (size_t)j;
                const __m256i r = _mm256_xor_si256(load(rtt + o), bias);
                const __m256i draw = load(ids + o), d = _mm256_xor_si256(draw, bias);
                const __m256i c = _mm256_or_si256(
                    _mm256_or_si256(_mm256_cmpgt_epi64(wr, r),
                                    _mm256_and_si256(_mm256_cmpeq_epi64(r, wr),
                                                     _mm256_cmpgt_epi64(wi, d))),
                    _mm256_cmpeq_epi64(draw, vself));
                cand |= lanes(c) << (4 * j);
            }
        } else {
            cand = block_cand(ids, rtt, i, vtb, vself);
        }
        cand &= health_bits(healthy, i);
        inserts += (size_t)__builtin_popcount(cand);
        for (; cand; cand &= cand - 1)
            netelect__topbuf_offer_idx(&t, ids, rtt, healthy, i + (size_t)__builtin_ctz(cand),
                                       self_id);
        if (t.len == k && t.r[k - 1] < thr)
            thr = t.r[k - 1];
        /* Random order inserts about k ln(i/k) times; far more means the
         * order is working against the threshold.  The first full block
         * inserts everything it sees while the buffer fills, whatever the
         * order, so it is allowance, not evidence (counted, it would make a
         * small k trip the bound on every input). */
        if (!bounded && inserts > 8 * k + BLOCK + i / 64 && i + BLOCK < n) {
            const uint64_t bound = suffix_bound(ids, rtt, healthy, i + BLOCK, n, self_id, k);
            thr = bound < thr ? bound : thr;
            bounded = 1;
        }
        vtb = _mm256_set1_epi64x((long long)(thr ^ (uint64_t)BIAS));
    }
    return netelect__topbuf_finish(&t, ids, rtt, healthy, i, n, self_id, thr, out_ids);
}

size_t netelect__topk_avx2(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                           size_t n, uint64_t self_id, size_t k, uint64_t *out_ids)
{
    return netelect__topk_entry(ids, rtt, healthy, n, self_id, k, out_ids, netelect__rank_scalar,
                                2 * BLOCK, topk_simd);
}
