/* SPDX-License-Identifier: MIT */
/*
 * AVX-512 (F/BW/VL) elect and top-k.  Built with its own target flags and
 * only ever called through a table filled for a CPU that has them.
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

#include "core/dsp.h"
#include "core/kernel.h"

enum { BLOCK = 32, SMALL_N = 16 };

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
    if (!h)
        return;
    const __m512i vmax = _mm512_set1_epi64(-1), vself = _mm512_set1_epi64((long long)self_id);
    __m512i r[4], d[4];
    for (int j = 0; j < 4; j++) {
        const __mmask8 hj = (__mmask8)(h >> (8 * j));
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
    for (int j = 0; j < 4; j++)
        acc = _mm512_mask_min_epu64(acc, _mm512_cmpeq_epu64_mask(r[j], vm), acc, d[j]);
    netelect__best_offer(b, m, _mm512_reduce_min_epu64(acc));
}

/* The rare path of the hot loop: the block at i has interesting lanes. */
static void __attribute__((noinline))
resolve_block(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t i,
              uint32_t cand, uint64_t self_id, struct netelect__best *b)
{
    cand &= health_mask(healthy, i, BLOCK);
    if (__builtin_popcount(cand) > 2) {
        reduce_block(ids, rtt, healthy, i, BLOCK, self_id, b);
        return;
    }
    for (; cand; cand &= cand - 1)
        netelect__best_offer_idx(b, ids, rtt, healthy, i + (size_t)__builtin_ctz(cand), self_id);
}

/* Interesting lanes of the block at i against threshold vt, as a GPR mask. */
static inline uint32_t block_cand(const uint64_t *ids, const uint64_t *rtt, size_t i, __m512i vt,
                                  __m512i vself)
{
    uint32_t c = 0;
    for (int j = 0; j < 4; j++) {
        const __mmask8 cj =
            _mm512_cmple_epu64_mask(_mm512_loadu_si512(rtt + i + 8 * j), vt) |
            _mm512_cmpeq_epu64_mask(_mm512_loadu_si512(ids + i + 8 * j), vself);
        c |= (uint32_t)_cvtmask8_u32(cj) << (8 * j);
    }
    return c;
}

struct netelect_result netelect__elect_avx512(const uint64_t *ids, const uint64_t *rtt,
                                              const uint8_t *healthy, size_t n, uint64_t self_id)
{
    if (n < SMALL_N)
        return netelect__elect_small(ids, rtt, healthy, n, self_id);
    struct netelect__best b;
    netelect__best_init(&b);
    const __m512i vself = _mm512_set1_epi64((long long)self_id);
    __m512i vt = _mm512_set1_epi64(-1);
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK) {
        /* OR of the four k-masks, tested once: the common case is zero. */
        __mmask8 any = 0;
        for (int j = 0; j < 4; j++)
            any |= _mm512_cmple_epu64_mask(_mm512_loadu_si512(rtt + i + 8 * j), vt) |
                   _mm512_cmpeq_epu64_mask(_mm512_loadu_si512(ids + i + 8 * j), vself);
        if (__builtin_expect(any != 0, 0)) {
            resolve_block(ids, rtt, healthy, i, block_cand(ids, rtt, i, vt, vself), self_id, &b);
            vt = _mm512_set1_epi64((long long)b.rtt);
        }
    }
    if (i < n)
        reduce_block(ids, rtt, healthy, i, n - i, self_id, &b);
    return netelect__best_result(&b, self_id);
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
        for (int j = 0; j < 4; j++) {
            const __mmask8 hj = (__mmask8)(h >> (8 * j));
            __m512i r = _mm512_mask_loadu_epi64(vmax, hj, rtt + i + 8 * j);
            const __m512i d = _mm512_maskz_loadu_epi64(hj, ids + i + 8 * j);
            r = _mm512_mask_mov_epi64(r, _mm512_mask_cmpeq_epu64_mask(hj, d, vself),
                                      _mm512_setzero_si512());
            acc[j] = _mm512_min_epu64(acc[j], r);
        }
    }
    uint64_t mins[BLOCK];
    for (int j = 0; j < 4; j++)
        _mm512_storeu_si512(mins + 8 * j, acc[j]);
    return netelect__kth_of_mins(mins, BLOCK, k);
}

/*
 * Top-k: the same filter with T = the k-th best rtt so far, an insertion
 * buffer for the hits, and an exact (rtt, id) vector test once the buffer
 * is full so that runs of equal rtt do not all reach the buffer.  If
 * blocks keep producing many hits anyway (adversarial order), the rest of
 * the input is bounded once, order-independently, by suffix_bound.
 */
size_t netelect__topk_avx512(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, size_t k, uint64_t *out_ids)
{
    if (k == 0)
        return 0;
    if (k > NETELECT__TOPK_BUF_MAX)
        return netelect__topk_sorted(ids, rtt, healthy, n, self_id, k, out_ids,
                                     netelect__rank_scalar);
    if (n < 2 * BLOCK)
        return netelect__topk_scalar(ids, rtt, healthy, n, self_id, k, out_ids);
    uint64_t br[NETELECT__TOPK_BUF_MAX], bi[NETELECT__TOPK_BUF_MAX];
    struct netelect__topbuf t = {0, k, br, bi};
    const __m512i vself = _mm512_set1_epi64((long long)self_id);
    uint64_t thr = UINT64_MAX;
    __m512i vt = _mm512_set1_epi64(-1);
    int heavy = 0;
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK) {
        __mmask8 any = 0;
        for (int j = 0; j < 4; j++)
            any |= _mm512_cmple_epu64_mask(_mm512_loadu_si512(rtt + i + 8 * j), vt) |
                   _mm512_cmpeq_epu64_mask(_mm512_loadu_si512(ids + i + 8 * j), vself);
        if (__builtin_expect(any == 0, 1))
            continue;
        uint32_t cand = 0;
        if (t.len == k) {
            /* Exact key test against the k-th: (rtt, id) < (wr, wi). */
            const __m512i wr = _mm512_set1_epi64((long long)t.r[k - 1]);
            const __m512i wi = _mm512_set1_epi64((long long)t.id[k - 1]);
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
        const int hits = __builtin_popcount(cand);
        for (; cand; cand &= cand - 1)
            netelect__topbuf_offer_idx(&t, ids, rtt, healthy, i + (size_t)__builtin_ctz(cand),
                                       self_id);
        if (t.len == k && t.r[k - 1] < thr)
            thr = t.r[k - 1];
        if (hits > 4 && heavy >= 0 && ++heavy == 2 && i + BLOCK < n) {
            const uint64_t bound = suffix_bound(ids, rtt, healthy, i + BLOCK, n, self_id, k);
            thr = bound < thr ? bound : thr;
            heavy = -1; /* once is enough: the bound is already order-free */
        }
        vt = _mm512_set1_epi64((long long)thr);
    }
    for (; i < n; i++)
        if (rtt[i] <= thr || ids[i] == self_id)
            netelect__topbuf_offer_idx(&t, ids, rtt, healthy, i, self_id);
    for (size_t j = 0; j < t.len; j++)
        out_ids[j] = bi[j];
    return t.len;
}
