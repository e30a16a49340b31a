/* SPDX-License-Identifier: MIT */
/*
 * AVX-512 (F/BW/DQ/VL) elect and top-k.  Built with the flags of the avx512
 * level (core/x86/isa_levels.h) and only ever called through a table
 * filled for a CPU that has them.
 *
 * elect is a threshold filter with an exact block fallback:
 *
 *  - The hot loop reads 32 rtts and 32 ids per step and asks only "could
 *    any of these beat the best so far?": rtt <= T (the best rtt) or
 *    id == self.  Self is not mapped to rtt 0 here; a self entry is simply
 *    always interesting, and its key is fixed up off the hot path (the v3
 *    hoisting).  Health is not read either: an unhealthy entry can only
 *    make a block interesting, never change the answer.
 *  - An interesting block with at most two healthy hits is resolved in
 *    scalar code.  With more (the first block, RTT-descending input, many
 *    ties) the block's exact minimum is computed in vector registers: min
 *    rtt with vpminuq, then the min id among the lanes holding it.  So
 *    adversarial order costs a bounded amount per block instead of a
 *    scalar insertion per entry.
 *  - The tail is one masked exact block: masked loads do not fault on the
 *    lanes past n, so any n and any alignment are safe.
 */
#include <immintrin.h>

#include "core/dispatch.h"
#include "core/kernel.h"
#include "core/x86/isa_levels.h"

_Static_assert((NETELECT_X86_COMPILED & NETELECT_X86_NEEDS_AVX512) == NETELECT_X86_NEEDS_AVX512,
               "core/meson.build builds this unit short of the avx512 level");
const uint64_t netelect__x86_compiled_avx512 = NETELECT_X86_COMPILED;

/* Below SMALL_N the scalar loop beats one latency-bound masked block (~24 ns). */
enum { BLOCK = 32, SMALL_N = 24 };

/*
 * Slices of a 32-bit lane mask, taken from a general register.  clang 14
 * otherwise spills the k-mask and reloads each byte with vpextrb (a
 * store-forwarding stall, 2-3x on the loop); the empty asm makes the value
 * opaque so it stays a plain integer.
 */
static inline uint32_t opaque32(uint32_t x)
{
    __asm__("" : "+r"(x));
    return x;
}

/* Healthy-lane mask of entries [i, i + len), len <= 32. */
static inline __mmask32 health_mask(const uint8_t *healthy, size_t i, size_t len)
{
    const __mmask32 lm = len >= 32 ? 0xffffffffu : (__mmask32)((1u << len) - 1);
    const __m256i h = _mm256_maskz_loadu_epi8(lm, healthy + i);
    return _mm256_mask_test_epi8_mask(lm, h, h);
}

/*
 * Exact minimum of healthy entries [i, i + len), len <= 32, offered to b.
 * Unhealthy lanes become (MAX, MAX): they can only tie with a real
 * (unknown rtt, id MAX) candidate, whose key is the same.
 */
static void reduce_block(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                         size_t i, size_t len, uint64_t self_id, struct netelect__best *b)
{
    const __mmask32 h = health_mask(healthy, i, len);
    const uint32_t hg = opaque32((uint32_t)h);
    if (!h)
        return;
    const __m512i vmax = _mm512_set1_epi64(-1), vself = _mm512_set1_epi64((long long)self_id);
    __m512i r[4], d[4];
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 4; j++) {
        const __mmask8 hj = (__mmask8)(hg >> (8 * j));
        d[j] = _mm512_mask_loadu_epi64(vmax, hj, ids + i + 8 * j);
        r[j] = _mm512_mask_loadu_epi64(vmax, hj, rtt + i + 8 * j);
        const __mmask8 s = _mm512_mask_cmpeq_epu64_mask(hj, d[j], vself);
        r[j] = _mm512_mask_mov_epi64(r[j], s, _mm512_setzero_si512());
    }
    const uint64_t m =
        _mm512_reduce_min_epu64(_mm512_min_epu64(_mm512_min_epu64(r[0], r[1]),
                                                 _mm512_min_epu64(r[2], r[3])));
    const __m512i vm = _mm512_set1_epi64((long long)m);
    __m512i acc = vmax;
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 4; j++)
        acc = _mm512_mask_min_epu64(acc, _mm512_cmpeq_epu64_mask(r[j], vm), acc, d[j]);
    netelect__best_offer(b, m, _mm512_reduce_min_epu64(acc));
}

/* Interesting lanes of the block at i against threshold vt, as a GPR mask. */
static inline uint32_t block_cand(const uint64_t *ids, const uint64_t *rtt, size_t i, __m512i vt,
                                  __m512i vself)
{
    uint32_t c = 0;
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 4; j++) {
        const __mmask8 cj =
            _mm512_cmple_epu64_mask(_mm512_loadu_si512(rtt + i + 8 * j), vt) |
            _mm512_cmpeq_epu64_mask(_mm512_loadu_si512(ids + i + 8 * j), vself);
        c |= (uint32_t)_cvtmask8_u32(cj) << (8 * j);
    }
    return c;
}

/*
 * The hot test: does any of the 32 entries at i have rtt <= T or id ==
 * self?  One vpminuq tree per array and one compare each, instead of a
 * compare and a k-mask OR per vector: the mask unit is the narrow port.
 */
static inline int block_any(const uint64_t *ids, const uint64_t *rtt, size_t i, __m512i vt,
                            __m512i vself)
{
    const __m512i r = _mm512_min_epu64(
        _mm512_min_epu64(_mm512_loadu_si512(rtt + i), _mm512_loadu_si512(rtt + i + 8)),
        _mm512_min_epu64(_mm512_loadu_si512(rtt + i + 16), _mm512_loadu_si512(rtt + i + 24)));
    const __m512i x = _mm512_min_epu64(
        _mm512_min_epu64(_mm512_xor_si512(_mm512_loadu_si512(ids + i), vself),
                         _mm512_xor_si512(_mm512_loadu_si512(ids + i + 8), vself)),
        _mm512_min_epu64(_mm512_xor_si512(_mm512_loadu_si512(ids + i + 16), vself),
                         _mm512_xor_si512(_mm512_loadu_si512(ids + i + 24), vself)));
    return (_cvtmask8_u32(_mm512_cmple_epu64_mask(r, vt)) |
            _cvtmask8_u32(_mm512_testn_epi64_mask(x, x))) != 0;
}

/*
 * Order-free scan of [i, n) (the v3 kernel): per-lane running minimum of
 * the raw (rtt, id) key over healthy entries, 4 independent accumulators,
 * and a mask of "a healthy entry had id == self".  Self's key is fixed up
 * once at the end: (0, self) is offered if it was seen, and a lane whose
 * minimum is self's raw key cannot hide anything that beats (0, self).
 */
/*
 * One step of scan_v3 over 8 lanes whose health mask is hj: a strictly
 * smaller rtt takes the lane over, an equal one keeps the smaller id.
 * Self is tracked as the minimum of id ^ self (zero iff seen): ALU ops,
 * not more compares into mask registers, which have fewer ports.
 */
#define V3_STEP(j, r, d, hj)                                                                   \
    do {                                                                                       \
        const __mmask8 lt_ = _mm512_mask_cmplt_epu64_mask(hj, r, br[j]);                      \
        const __mmask8 eq_ = _mm512_mask_cmpeq_epu64_mask(hj, r, br[j]);                       \
        br[j] = _mm512_mask_min_epu64(br[j], hj, br[j], r);                                    \
        bi[j] = _mm512_mask_mov_epi64(bi[j], lt_, d);                                          \
        bi[j] = _mm512_mask_min_epu64(bi[j], eq_, bi[j], d);                                   \
        sx[j] = _mm512_mask_min_epu64(sx[j], hj, sx[j], _mm512_xor_si512(d, vself));           \
    } while (0)

static void scan_v3(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t i,
                    size_t n, uint64_t self_id, struct netelect__best *b)
{
    const __m512i vmax = _mm512_set1_epi64(-1), vself = _mm512_set1_epi64((long long)self_id);
    __m512i br[4] = {vmax, vmax, vmax, vmax}, bi[4] = {vmax, vmax, vmax, vmax};
    __m512i sx[4] = {vmax, vmax, vmax, vmax};
    uint32_t valid = 0; /* lanes (index mod 32) that saw a healthy entry */
    /* Full blocks: plain loads, health only masks the compares. */
    for (; i + BLOCK <= n; i += BLOCK) {
        const __m256i hv = _mm256_loadu_si256((const __m256i *)(const void *)(healthy + i));
        const __mmask32 h = _mm256_test_epi8_mask(hv, hv);
        const uint32_t hg = opaque32((uint32_t)h);
        valid |= (uint32_t)h;
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 4; j++) {
            const __mmask8 hj = (__mmask8)(hg >> (8 * j));
            const __m512i r = _mm512_loadu_si512(rtt + i + 8 * j);
            const __m512i d = _mm512_loadu_si512(ids + i + 8 * j);
            V3_STEP(j, r, d, hj);
        }
    }
    if (i < n) {
        const __mmask32 h = health_mask(healthy, i, n - i);
        const uint32_t hg = opaque32((uint32_t)h);
        valid |= (uint32_t)h;
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 4; j++) {
            const __mmask8 hj = (__mmask8)(hg >> (8 * j));
            const __m512i r = _mm512_maskz_loadu_epi64(hj, rtt + i + 8 * j);
            const __m512i d = _mm512_maskz_loadu_epi64(hj, ids + i + 8 * j);
            V3_STEP(j, r, d, hj);
        }
    }
    uint64_t lr[BLOCK], li[BLOCK];
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 4; j++) {
        _mm512_storeu_si512(lr + 8 * j, br[j]);
        _mm512_storeu_si512(li + 8 * j, bi[j]);
    }
    for (; valid; valid &= valid - 1)
        netelect__best_offer(b, lr[__builtin_ctz(valid)], li[__builtin_ctz(valid)]);
    const __m512i x = _mm512_min_epu64(_mm512_min_epu64(sx[0], sx[1]), _mm512_min_epu64(sx[2], sx[3]));
    if (_cvtmask8_u32(_mm512_testn_epi64_mask(x, x)))
        netelect__best_offer(b, 0, self_id);
}

/* Heavy blocks before the filter gives up on the order and scans. */
enum { HEAVY_LIMIT = 3 };

static struct netelect_result __attribute__((noinline))
elect_simd(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
           uint64_t self_id)
{
    struct netelect__best b;
    netelect__best_init(&b);
    netelect__best_seed(&b, ids, rtt, healthy, n, self_id);
    const __m512i vself = _mm512_set1_epi64((long long)self_id);
    __m512i vt = _mm512_set1_epi64((long long)b.rtt);
    /*
     * Peel so that rtt loads are 64-byte aligned: a zmm load across two
     * cache lines costs measurably on the hot loop (ids usually share the
     * alignment).  The head is one exact masked block.
     */
    size_t i = (size_t)(-(uintptr_t)rtt & 63) / 8;
    i = ((uintptr_t)rtt & 7) || i > n ? 0 : i;
    if (i) {
        reduce_block(ids, rtt, healthy, 0, i, self_id, &b);
        vt = _mm512_set1_epi64((long long)b.rtt);
    }
    int heavy = 0;
    for (; i + BLOCK <= n; i += BLOCK) {
        if (__builtin_expect(!block_any(ids, rtt, i, vt, vself), 1))
            continue;
        uint32_t cand = block_cand(ids, rtt, i, vt, vself) & health_mask(healthy, i, BLOCK);
        if (__builtin_popcount(cand) > 2) {
            /* The threshold is not keeping up with the input's order. */
            if (++heavy > HEAVY_LIMIT) {
                scan_v3(ids, rtt, healthy, i, n, self_id, &b);
                return netelect__best_result(&b, self_id);
            }
            reduce_block(ids, rtt, healthy, i, BLOCK, self_id, &b);
        } else {
            for (; cand; cand &= cand - 1)
                netelect__best_offer_idx(&b, ids, rtt, healthy,
                                         i + (size_t)__builtin_ctz(cand), self_id);
        }
        vt = _mm512_set1_epi64((long long)b.rtt);
    }
    if (i < n)
        reduce_block(ids, rtt, healthy, i, n - i, self_id, &b);
    return netelect__best_result(&b, self_id);
}

/*
 * Small n takes the scalar loop before any vector state or the SIMD body's
 * 64-byte-aligned frame is set up: at n = 3 that prologue is most of the cost.
 */
struct netelect_result netelect__elect_avx512(const uint64_t *ids, const uint64_t *rtt,
                                              const uint8_t *healthy, size_t n, uint64_t self_id)
{
    if (n < SMALL_N)
        return netelect__elect_small(ids, rtt, healthy, n, self_id);
    return elect_simd(ids, rtt, healthy, n, self_id);
}

/*
 * Lane-class minima of rtt (self at 0, unhealthy excluded) over [s, n) in
 * 32 classes (index mod 32), then the k-th smallest: see
 * netelect__kth_of_mins.
 */
static uint64_t suffix_bound(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t s, size_t n, uint64_t self_id, size_t k)
{
    const __m512i vmax = _mm512_set1_epi64(-1), vself = _mm512_set1_epi64((long long)self_id);
    __m512i acc[4] = {vmax, vmax, vmax, vmax};
    for (size_t i = s; i < n; i += BLOCK) {
        const size_t len = n - i < BLOCK ? n - i : BLOCK;
        const __mmask32 h = health_mask(healthy, i, len);
        const uint32_t hg = opaque32((uint32_t)h);
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 4; j++) {
            const __mmask8 hj = (__mmask8)(hg >> (8 * j));
            __m512i r = _mm512_mask_loadu_epi64(vmax, hj, rtt + i + 8 * j);
            const __m512i d = _mm512_maskz_loadu_epi64(hj, ids + i + 8 * j);
            r = _mm512_mask_mov_epi64(r, _mm512_mask_cmpeq_epu64_mask(hj, d, vself),
                                      _mm512_setzero_si512());
            acc[j] = _mm512_min_epu64(acc[j], r);
        }
    }
    uint64_t mins[BLOCK];
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 4; j++)
        _mm512_storeu_si512(mins + 8 * j, acc[j]);
    return netelect__kth_of_mins(mins, BLOCK, k);
}

/*
 * A starting threshold for top-k (k <= 8), so the first blocks do not
 * insert everything they see while the buffer fills: the per-lane minima
 * (rtt with self at 0, healthy only) of SAMPLE_CHUNKS chunks of 32 entries
 * spread over the whole input, and their k-th smallest.  Chunks start at
 * multiples of 8, so lane l only ever holds entries with index = l mod 8:
 * the 8 lanes are disjoint classes, and k lanes at or below the bound are
 * k distinct candidates (netelect__kth_of_mins).  Spread rather than a
 * prefix, so an input sorted by descending RTT gets its tight bound too.
 */
enum { SAMPLE_CHUNKS = 8, SAMPLE_MIN_N = 1024 };

static uint64_t sample_bound(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, size_t k)
{
    const __m512i vmax = _mm512_set1_epi64(-1), vself = _mm512_set1_epi64((long long)self_id);
    __m512i acc = vmax;
    const size_t step = (n - BLOCK) / (SAMPLE_CHUNKS - 1);
    for (size_t c = 0; c < SAMPLE_CHUNKS; c++) {
        const size_t s = (c * step) & ~(size_t)7; /* s + BLOCK <= n */
        const __mmask32 h = health_mask(healthy, s, BLOCK);
        const uint32_t hg = opaque32((uint32_t)h);
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 4; j++) {
            const __mmask8 hj = (__mmask8)(hg >> (8 * j));
            __m512i r = _mm512_mask_loadu_epi64(vmax, hj, rtt + s + 8 * j);
            const __m512i d = _mm512_maskz_loadu_epi64(hj, ids + s + 8 * j);
            r = _mm512_mask_mov_epi64(r, _mm512_mask_cmpeq_epu64_mask(hj, d, vself),
                                      _mm512_setzero_si512());
            acc = _mm512_min_epu64(acc, r);
        }
    }
    uint64_t mins[8];
    _mm512_storeu_si512(mins, acc);
    return netelect__kth_of_mins(mins, 8, k);
}

/*
 * Top-k: the same filter with T = the k-th best rtt so far, an insertion
 * buffer for the hits, and an exact (rtt, id) vector test once the buffer
 * is full so that runs of equal rtt do not all reach the buffer.  If
 * blocks keep producing many hits anyway (adversarial order), the rest of
 * the input is bounded once, order-independently, by suffix_bound.
 */
static size_t __attribute__((noinline))
topk_simd(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
          uint64_t self_id, size_t k, uint64_t *out_ids)
{
    uint64_t br[NETELECT__TOPK_BUF_MAX], bi[NETELECT__TOPK_BUF_MAX];
    struct netelect__topbuf t = {0, k, br, bi};
    const __m512i vself = _mm512_set1_epi64((long long)self_id);
    uint64_t thr = UINT64_MAX;
    __m512i vt;
    int bounded = 0;
    /* Same peel as elect, to a 64-byte aligned rtt. */
    size_t i = (size_t)(-(uintptr_t)rtt & 63) / 8, inserts = 0;
    i = (uintptr_t)rtt & 7 ? 0 : i;
    if (n >= SAMPLE_MIN_N && k <= 8)
        thr = sample_bound(ids, rtt, healthy, n, self_id, k);
    for (size_t j = 0; j < i; j++)
        if (rtt[j] <= thr || ids[j] == self_id)
            netelect__topbuf_offer_idx(&t, ids, rtt, healthy, j, self_id);
    if (t.len == k && t.r[k - 1] < thr)
        thr = t.r[k - 1];
    vt = _mm512_set1_epi64((long long)thr);
    for (; i + BLOCK <= n; i += BLOCK) {
        if (__builtin_expect(!block_any(ids, rtt, i, vt, vself), 1))
            continue;
        uint32_t cand = 0;
        if (t.len == k) {
            /* Exact key test against the k-th: (rtt, id) < (wr, wi). */
            const __m512i wr = _mm512_set1_epi64((long long)t.r[k - 1]);
            const __m512i wi = _mm512_set1_epi64((long long)t.id[k - 1]);
            _Pragma("GCC unroll 8")
            for (int j = 0; j < 4; j++) {
                const __m512i r = _mm512_loadu_si512(rtt + i + 8 * j);
                const __m512i d = _mm512_loadu_si512(ids + i + 8 * j);
                const __mmask8 cj = _mm512_cmplt_epu64_mask(r, wr) |
                                    _mm512_mask_cmplt_epu64_mask(
                                        _mm512_cmpeq_epu64_mask(r, wr), d, wi) |
                                    _mm512_cmpeq_epu64_mask(d, vself);
                cand |= (uint32_t)_cvtmask8_u32(cj) << (8 * j);
            }
        } else {
            cand = block_cand(ids, rtt, i, vt, vself);
        }
        cand &= health_mask(healthy, i, BLOCK);
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
            bounded = 1; /* once is enough: the bound is already order-free */
        }
        vt = _mm512_set1_epi64((long long)thr);
    }
    return netelect__topbuf_finish(&t, ids, rtt, healthy, i, n, self_id, thr, out_ids);
}

size_t netelect__topk_avx512(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, size_t k, uint64_t *out_ids)
{
    return netelect__topk_entry(ids, rtt, healthy, n, self_id, k, out_ids, netelect__rank_avx512,
                                2 * BLOCK, topk_simd);
}

/*
 * rank.  Pass 1 (count, RTT range, varying id bits) is vectorized for
 * every n.  For RANK_SMALL < n <= BITONIC_MAX, when the rebased RTT and
 * the index fit one 64-bit key, the keys (n padded to a power of two) are
 * sorted by a bitonic network in zmm registers instead of the radix
 * passes, whose fixed costs (histograms, one pass per digit) dominate at
 * that size; up to 16 vectors stay in registers, beyond that the network
 * works on the stack (4 KiB of keys at BITONIC_MAX):
 *
 *   key = rebased rtt | top varying id bits | index   (MSB to LSB)
 *
 * "Unknown" is one past the largest rebased measurement, as in scalar.c.
 * Keys equal above the index bits (same rtt, same top id bits) are put in
 * id order afterwards by looking the ids up through the index; with
 * random ids that almost never happens.  Everything else takes
 * netelect__rank_scanned, the portable passes, with this pass 1.
 */
enum { RANK_SMALL = 12, BITONIC_MAX = 512, BITONIC_REGS = BITONIC_MAX / 8 };

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Pass 1 over [0, n) with masked 8-lane blocks (no read past n). */
static void rank_scan(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
                      uint64_t self_id, struct netelect__rank_scan *sc)
{
    const __m512i vself = _mm512_set1_epi64((long long)self_id);
    const __m512i vunk = _mm512_set1_epi64((long long)NETELECT_RTT_UNKNOWN);
    __m512i vmn = _mm512_set1_epi64(-1), vmx = _mm512_setzero_si512();
    __m512i vor = _mm512_setzero_si512(), vand = _mm512_set1_epi64(-1);
    size_t m = 0, measured = 0;
    for (size_t i = 0; i < n; i += 8) {
        const __mmask8 lm = n - i >= 8 ? 0xff : (__mmask8)((1u << (n - i)) - 1);
        const __m128i hb = _mm_maskz_loadu_epi8(lm, healthy + i);
        const __mmask8 h = (__mmask8)_mm_mask_test_epi8_mask(lm, hb, hb);
        const __m512i d = _mm512_maskz_loadu_epi64(h, ids + i);
        __m512i r = _mm512_maskz_loadu_epi64(h, rtt + i);
        r = _mm512_mask_mov_epi64(r, _mm512_mask_cmpeq_epu64_mask(h, d, vself),
                                  _mm512_setzero_si512());
        const __mmask8 v = _mm512_mask_cmpneq_epu64_mask(h, r, vunk);
        m += (size_t)__builtin_popcount(_cvtmask8_u32(h));
        measured += (size_t)__builtin_popcount(_cvtmask8_u32(v));
        vmn = _mm512_mask_min_epu64(vmn, v, vmn, r);
        vmx = _mm512_mask_max_epu64(vmx, v, vmx, r);
        vor = _mm512_mask_or_epi64(vor, h, vor, d);
        vand = _mm512_mask_and_epi64(vand, h, vand, d);
    }
    sc->m = m;
    sc->measured = measured;
    sc->mn = measured ? _mm512_reduce_min_epu64(vmn) : 0;
    sc->mx = _mm512_reduce_max_epu64(vmx);
    sc->id_or = (uint64_t)_mm512_reduce_or_epi64(vor);
    sc->id_and = (uint64_t)_mm512_reduce_and_epi64(vand);
}

/* Compare-exchange of lanes l and l ^ j (j = 1, 2, 4) inside one vector:
 * the lanes with bit j set keep the maximum. */
ALWAYS_INLINE __m512i cx_lanes(__m512i x, int j)
{
    __m512i p;
    __mmask8 hi;
    if (j == 1) {
        p = _mm512_shuffle_epi32(x, _MM_PERM_BADC);
        hi = 0xaa;
    } else if (j == 2) {
        p = _mm512_permutex_epi64(x, 0x4e);
        hi = 0xcc;
    } else {
        p = _mm512_shuffle_i64x2(x, x, 0x4e);
        hi = 0xf0;
    }
    return _mm512_mask_max_epu64(_mm512_min_epu64(x, p), hi, x, p);
}

/* The first step of merging sorted runs of k/2 into runs of k (k = 4, 8)
 * inside one vector: lane l against lane l ^ (k - 1). */
ALWAYS_INLINE __m512i flip_lanes(__m512i x, int k)
{
    __m512i p;
    __mmask8 hi;
    if (k == 4) {
        p = _mm512_permutex_epi64(x, 0x1b);
        hi = 0xcc;
    } else {
        p = _mm512_permutexvar_epi64(_mm512_set_epi64(0, 1, 2, 3, 4, 5, 6, 7), x);
        hi = 0xf0;
    }
    return _mm512_mask_max_epu64(_mm512_min_epu64(x, p), hi, x, p);
}

ALWAYS_INLINE __m512i reverse8(__m512i x)
{
    return _mm512_permutexvar_epi64(_mm512_set_epi64(0, 1, 2, 3, 4, 5, 6, 7), x);
}

/*
 * Ascending bitonic sort of 8 * nr keys held in v[0..nr), nr a power of
 * two; element e is lane e % 8 of v[e / 8].  Merging runs of k/2 into runs
 * of k starts with the "flip" (element e against e ^ (k - 1), which makes
 * every comparator ascending) and continues with half-cleaners e ^ j for
 * j = k/4 .. 1.  With nr a constant the loops unroll and v lives in
 * registers.
 */
ALWAYS_INLINE void bitonic_sort(__m512i *v, int nr)
{
    for (int r = 0; r < nr; r++) { /* runs of 8, inside each vector */
        v[r] = cx_lanes(v[r], 1);
        v[r] = flip_lanes(v[r], 4);
        v[r] = cx_lanes(v[r], 1);
        v[r] = flip_lanes(v[r], 8);
        v[r] = cx_lanes(v[r], 2);
        v[r] = cx_lanes(v[r], 1);
    }
    for (int kr = 2; kr <= nr; kr *= 2) { /* runs of 8 * kr */
        for (int a = 0; a < nr; a++) {
            const int b = a ^ (kr - 1);
            if (b < a)
                continue;
            const __m512i rb = reverse8(v[b]);
            const __m512i lo = _mm512_min_epu64(v[a], rb), hi = _mm512_max_epu64(v[a], rb);
            v[a] = lo;
            v[b] = reverse8(hi);
        }
        for (int jr = kr / 4; jr >= 1; jr /= 2)
            for (int a = 0; a < nr; a++) {
                if (a & jr)
                    continue;
                const __m512i lo = _mm512_min_epu64(v[a], v[a | jr]);
                const __m512i hi = _mm512_max_epu64(v[a], v[a | jr]);
                v[a] = lo;
                v[a | jr] = hi;
            }
        for (int r = 0; r < nr; r++) {
            v[r] = cx_lanes(v[r], 4);
            v[r] = cx_lanes(v[r], 2);
            v[r] = cx_lanes(v[r], 1);
        }
    }
}

/* Sorts keys[0, 8 * nr) in place, nr a constant power of two. */
ALWAYS_INLINE void sort_keys_n(uint64_t *keys, int nr)
{
    __m512i v[BITONIC_REGS];
    for (int r = 0; r < nr; r++)
        v[r] = _mm512_loadu_si512(keys + 8 * r);
    bitonic_sort(v, nr);
    for (int r = 0; r < nr; r++)
        _mm512_storeu_si512(keys + 8 * r, v[r]);
}

static void sort_keys(uint64_t *keys, size_t nr)
{
    switch (nr) {
    case 1:
        sort_keys_n(keys, 1);
        break;
    case 2:
        sort_keys_n(keys, 2);
        break;
    case 4:
        sort_keys_n(keys, 4);
        break;
    case 8:
        sort_keys_n(keys, 8);
        break;
    case 16:
        sort_keys_n(keys, 16);
        break;
    case 32:
        sort_keys_n(keys, 32);
        break;
    default:
        sort_keys_n(keys, BITONIC_REGS);
        break;
    }
}

/*
 * The bitonic path; the caller checked that n <= BITONIC_MAX and that
 * rbits + index bits <= 64.  Returns at most sc->m ids (clamping its own
 * count, "inputs that change").
 */
static size_t rank_bitonic(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                           size_t n, uint64_t self_id, uint64_t *out_ids,
                           const struct netelect__rank_scan *sc, int rbits, uint64_t unknown)
{
    const size_t cap = sc->m;
    const int ib = netelect__top_bit(n - 1), id_bits = netelect__top_bit(sc->id_or ^ sc->id_and);
    const int room = 64 - rbits - ib, wid = room < id_bits ? room : id_bits;
    const int id_shift = id_bits - wid;
    const uint64_t idx_mask = ib ? UINT64_MAX >> (64 - ib) : 0;
    const uint64_t id_mask = wid ? UINT64_MAX >> (64 - wid) : 0;
    uint64_t keys[BITONIC_MAX] __attribute__((aligned(64)));

    const __m512i vself = _mm512_set1_epi64((long long)self_id);
    const __m512i vunk = _mm512_set1_epi64((long long)NETELECT_RTT_UNKNOWN);
    const __m512i vunknown = _mm512_set1_epi64((long long)unknown);
    const __m512i vmn = _mm512_set1_epi64((long long)sc->mn);
    const __m512i vidm = _mm512_set1_epi64((long long)id_mask);
    const __m512i rsh = _mm512_set1_epi64(wid + ib), ish = _mm512_set1_epi64(id_shift);
    const __m512i ibv = _mm512_set1_epi64(ib);
    __m512i vi = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i eight = _mm512_set1_epi64(8), vmax = _mm512_set1_epi64(-1);
    /* Every lane is stored, an unhealthy one as MAX, which sorts after
     * every candidate: no compress (slow on Zen 4) and no count-dependent
     * stores.  A candidate whose key is MAX has index bits i, equal to the
     * padding's, so the first m keys are candidates' whatever ties. */
    size_t m = 0;
    size_t i = 0;
    for (; i < n; i += 8, vi = _mm512_add_epi64(vi, eight)) {
        const __mmask8 lm = n - i >= 8 ? 0xff : (__mmask8)((1u << (n - i)) - 1);
        const __m128i hb = _mm_maskz_loadu_epi8(lm, healthy + i);
        const __mmask8 h = (__mmask8)_mm_mask_test_epi8_mask(lm, hb, hb);
        const __m512i d = _mm512_maskz_loadu_epi64(h, ids + i);
        __m512i r = _mm512_maskz_loadu_epi64(h, rtt + i);
        r = _mm512_mask_mov_epi64(r, _mm512_cmpeq_epu64_mask(d, vself), _mm512_setzero_si512());
        r = _mm512_mask_mov_epi64(_mm512_sub_epi64(r, vmn), _mm512_cmpeq_epu64_mask(r, vunk),
                                  vunknown);
        const __m512i idp = _mm512_and_si512(_mm512_srlv_epi64(d, ish), vidm);
        const __m512i key = _mm512_or_si512(
            _mm512_or_si512(_mm512_sllv_epi64(r, rsh), _mm512_sllv_epi64(idp, ibv)), vi);
        _mm512_store_si512(keys + i, _mm512_mask_mov_epi64(vmax, h, key));
        m += (size_t)__builtin_popcount(_cvtmask8_u32(h));
    }
    m = m < cap ? m : cap;
    size_t nr = 1;
    while (8 * nr < n)
        nr *= 2;
    for (; i < 8 * nr; i += 8)
        _mm512_store_si512(keys + i, vmax);
    if (m) /* even one: unhealthy lanes may precede it */
        sort_keys(keys, nr);

    /* Runs equal above the index bits are put in id order; the test is
     * one vector compare per 8 keys, the fix is scalar and rare. */
    const __m512i vib = _mm512_set1_epi64(ib);
    for (size_t j = 1; j < m; j += 8) {
        const __mmask8 lm = m - j >= 8 ? 0xff : (__mmask8)((1u << (m - j)) - 1);
        /* Masked loads: keys + j + 8 may pass the end of keys[] when m is
         * near BITONIC_MAX, and only the lanes in lm may be read. */
        const __m512i cur = _mm512_srlv_epi64(_mm512_maskz_loadu_epi64(lm, keys + j), vib);
        const __m512i prev = _mm512_srlv_epi64(_mm512_maskz_loadu_epi64(lm, keys + j - 1), vib);
        if (__builtin_expect(!_mm512_mask_cmpeq_epu64_mask(lm, cur, prev), 1))
            continue;
        for (size_t q = j; q < j + 8 && q < m; q++) {
            const uint64_t k = keys[q], kid = ids[k & idx_mask];
            size_t t = q;
            while (t > 0 && (keys[t - 1] ^ k) >> ib == 0 && ids[keys[t - 1] & idx_mask] > kid) {
                keys[t] = keys[t - 1];
                t--;
            }
            keys[t] = k;
        }
    }
    const __m512i vidx = _mm512_set1_epi64((long long)idx_mask);
    for (size_t o = 0; o < m; o += 8) {
        const __mmask8 lm = m - o >= 8 ? 0xff : (__mmask8)((1u << (m - o)) - 1);
        const __m512i ix = _mm512_and_si512(_mm512_load_si512(keys + o), vidx);
        _mm512_mask_storeu_epi64(out_ids + o, lm,
                                 _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), lm, ix,
                                                             (const void *)ids, 8));
    }
    return m;
}

static size_t __attribute__((noinline))
rank_simd(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
          uint64_t self_id, uint64_t *out_ids)
{
    struct netelect__rank_scan sc;
    rank_scan(ids, rtt, healthy, n, self_id, &sc);
    if (n <= BITONIC_MAX) {
        uint64_t unknown;
        const int rbits = netelect__rank_rtt_bits(&sc, &unknown);
        if (rbits + netelect__top_bit(n - 1) <= 64)
            return rank_bitonic(ids, rtt, healthy, n, self_id, out_ids, &sc, rbits, unknown);
    }
    return netelect__rank_scanned(ids, rtt, healthy, n, self_id, out_ids, &sc);
}

/* Small n tail-calls the scalar insertion sort before the SIMD body's
 * 64-byte-aligned frame and saved registers are set up. */
size_t netelect__rank_avx512(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, uint64_t *out_ids)
{
    if (n <= RANK_SMALL)
        return netelect__rank_scalar(ids, rtt, healthy, n, self_id, out_ids);
    return rank_simd(ids, rtt, healthy, n, self_id, out_ids);
}
