/* SPDX-License-Identifier: MIT */
/*
 * Portable production kernels: the scalar table's elect and top-k, and the
 * radix rank every table uses.  ref.c stays the oracle; these are what runs.
 *
 * Rank is an LSD radix sort over only the bits of the key that vary:
 *
 *  1. one pass over the input finds the candidates' count, the range of
 *     measured RTTs (self already at 0) and the bits in which ids differ;
 *  2. RTTs are rebased to that range and "unknown" becomes one more value
 *     just past its top, so it needs no pass of its own;
 *  3. a second input pass scatters the records by the top varying bits of
 *     the id (the least significant digit of the sort that still pays)
 *     and counts every RTT digit at once;
 *  4. one stable pass per RTT digit (digits that are the same for all
 *     records are skipped);
 *  5. runs that tie on RTT and on the id digit are finished by id alone:
 *     insertion sort when short, a radix sort on the id when long, so
 *     adversarial ties stay O(n).
 */
#include <stdlib.h>
#include <string.h>

#include "core/dsp.h"
#include "core/kernel.h"

#ifdef __AVX__
#error "the baseline translation unit must not be built with AVX enabled"
#endif

struct rec {
    uint64_t r, id;
};

static int rec_less(const struct rec *a, const struct rec *b)
{
    return a->r < b->r || (a->r == b->r && a->id < b->id);
}

static void isort_rec(struct rec *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct rec v = a[i];
        size_t j = i;
        while (j > 0 && rec_less(&v, &a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

static void isort_id(struct rec *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct rec v = a[i];
        size_t j = i;
        while (j > 0 && v.id < a[j - 1].id) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

static int top_bit(uint64_t x) /* bits needed to hold x */
{
    return x ? 64 - __builtin_clzll(x) : 0;
}

/* Stable LSD radix by id over its varying bits; `tmp` has room for n. */
static void radix_by_id(struct rec *a, struct rec *tmp, size_t n)
{
    uint64_t vary = 0;
    for (size_t i = 1; i < n; i++)
        vary |= a[i].id ^ a[0].id;
    const int bits = top_bit(vary);
    struct rec *src = a, *dst = tmp;
    for (int shift = 0; shift < bits; shift += 8) {
        size_t cnt[256] = {0};
        for (size_t i = 0; i < n; i++)
            cnt[(src[i].id >> shift) & 255]++;
        size_t sum = 0, trivial = 0;
        for (int d = 0; d < 256; d++) {
            const size_t c = cnt[d];
            trivial |= c == n;
            cnt[d] = sum;
            sum += c;
        }
        if (trivial)
            continue;
        for (size_t i = 0; i < n; i++)
            dst[cnt[(src[i].id >> shift) & 255]++] = src[i];
        struct rec *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
}

enum { SMALL_RANK = 32, MAX_DIGIT_BITS = 11 };

static size_t rank_small(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                         size_t n, uint64_t self_id, uint64_t *out_ids)
{
    struct rec a[SMALL_RANK];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!healthy[i])
            continue;
        a[m].r = ids[i] == self_id ? 0 : rtt[i];
        a[m++].id = ids[i];
    }
    isort_rec(a, m);
    for (size_t i = 0; i < m; i++)
        out_ids[i] = a[i].id;
    return m;
}

size_t netelect__rank_scalar(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, uint64_t *out_ids)
{
    if (n <= SMALL_RANK)
        return rank_small(ids, rtt, healthy, n, self_id, out_ids);

    /* Pass 1: count, RTT range, varying id bits. */
    size_t m = 0, measured = 0;
    uint64_t mn = UINT64_MAX, mx = 0, id_or = 0, id_and = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (!healthy[i])
            continue;
        const uint64_t id = ids[i], r = id == self_id ? 0 : rtt[i];
        m++;
        id_or |= id;
        id_and &= id;
        if (r != NETELECT_RTT_UNKNOWN) {
            measured++;
            mn = r < mn ? r : mn;
            mx = r > mx ? r : mx;
        }
    }
    if (m <= SMALL_RANK)
        return rank_small(ids, rtt, healthy, n, self_id, out_ids);
    if (m > UINT32_MAX) /* the digit counters are 32-bit */
        return netelect__rank_ref(ids, rtt, healthy, n, self_id, out_ids);

    /* Unknown sorts one past the largest rebased measurement. */
    const uint64_t unknown = measured ? mx - mn + 1 : 0;
    if (!measured)
        mn = 0;
    const uint64_t range = measured < m ? unknown : mx - mn;

    int wmax = (63 - __builtin_clzll(m)) - 2;
    wmax = wmax < 6 ? 6 : wmax > MAX_DIGIT_BITS ? MAX_DIGIT_BITS : wmax;
    const int rbits = top_bit(range);
    const int passes = (rbits + wmax - 1) / wmax;
    const int w = passes ? (rbits + passes - 1) / passes : 0;
    const int id_bits = top_bit(id_or ^ id_and);
    const int wid = id_bits < wmax ? id_bits : wmax;
    const int id_shift = id_bits - wid;
    const uint64_t id_mask = ((uint64_t)1 << wid) - 1, r_mask = ((uint64_t)1 << w) - 1;
    const size_t buckets = (size_t)1 << wmax;

    const size_t rec_bytes = m * sizeof(struct rec);
    const size_t hist_words = (size_t)(passes + 1) * buckets;
    unsigned char *mem = netelect__scratch_get(2 * rec_bytes + hist_words * sizeof(uint32_t));
    if (!mem)
        return netelect__rank_ref(ids, rtt, healthy, n, self_id, out_ids);
    struct rec *a = (struct rec *)(void *)mem, *b = (struct rec *)(void *)(mem + rec_bytes);
    uint32_t *hist = (uint32_t *)(void *)(mem + 2 * rec_bytes);
    memset(hist, 0, hist_words * sizeof(uint32_t));
    uint32_t *hid = hist + (size_t)passes * buckets;

    /* The id digit's offsets need its counts before the scatter. */
    for (size_t i = 0; i < n; i++)
        hid[(ids[i] >> id_shift) & id_mask] += healthy[i] != 0;
    uint32_t sum = 0;
    for (size_t d = 0; d <= id_mask; d++) {
        const uint32_t c = hid[d];
        hid[d] = sum;
        sum += c;
    }

    /* Pass 2: scatter by the id digit, count every RTT digit. */
    for (size_t i = 0; i < n; i++) {
        if (!healthy[i])
            continue;
        const uint64_t id = ids[i], raw = id == self_id ? 0 : rtt[i];
        const uint64_t r = raw == NETELECT_RTT_UNKNOWN ? unknown : raw - mn;
        struct rec *dst = &a[hid[(id >> id_shift) & id_mask]++];
        dst->r = r;
        dst->id = id;
        for (int p = 0; p < passes; p++)
            hist[(size_t)p * buckets + ((r >> (p * w)) & r_mask)]++;
    }

    struct rec *src = a, *dst = b;
    for (int p = 0; p < passes; p++) {
        uint32_t *h = hist + (size_t)p * buckets;
        uint32_t s = 0;
        int trivial = 0;
        for (size_t d = 0; d <= r_mask; d++) {
            const uint32_t c = h[d];
            trivial |= c == m;
            h[d] = s;
            s += c;
        }
        if (trivial)
            continue;
        const int shift = p * w;
        for (size_t i = 0; i < m; i++) {
            const struct rec v = src[i];
            dst[h[(v.r >> shift) & r_mask]++] = v;
        }
        struct rec *t = src;
        src = dst;
        dst = t;
    }

    /* Tie-fix: order equal (rtt, id digit) runs by the whole id. */
    for (size_t i = 0; i < m;) {
        const uint64_t r = src[i].r, d = (src[i].id >> id_shift) & id_mask;
        size_t j = i + 1;
        while (j < m && src[j].r == r && ((src[j].id >> id_shift) & id_mask) == d)
            j++;
        if (j - i > 16)
            radix_by_id(src + i, dst + i, j - i);
        else if (j - i > 1)
            isort_id(src + i, j - i);
        i = j;
    }
    for (size_t i = 0; i < m; i++)
        out_ids[i] = src[i].id;
    netelect__scratch_put(mem);
    return m;
}

struct netelect_result netelect__elect_scalar(const uint64_t *ids, const uint64_t *rtt,
                                              const uint8_t *healthy, size_t n,
                                              uint64_t self_id)
{
    return netelect__elect_small(ids, rtt, healthy, n, self_id);
}

/*
 * Top-k for a k too large for the insertion buffer: rank everything into a
 * private buffer (rank itself owns the thread's scratch) and keep the head.
 */
size_t netelect__topk_sorted(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, size_t k, uint64_t *out_ids,
                             netelect__rank_fn rank)
{
    if (k >= n)
        return rank(ids, rtt, healthy, n, self_id, out_ids);
    uint64_t *all = malloc(n * sizeof *all);
    if (!all)
        return netelect__topk_ref(ids, rtt, healthy, n, self_id, k, out_ids);
    const size_t m = rank(ids, rtt, healthy, n, self_id, all);
    const size_t c = m < k ? m : k;
    memcpy(out_ids, all, c * sizeof *out_ids);
    free(all);
    return c;
}

size_t netelect__topk_scalar(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, size_t k, uint64_t *out_ids)
{
    if (k == 0)
        return 0;
    if (k > NETELECT__TOPK_BUF_MAX)
        return netelect__topk_sorted(ids, rtt, healthy, n, self_id, k, out_ids,
                                     netelect__rank_scalar);
    uint64_t br[NETELECT__TOPK_BUF_MAX], bi[NETELECT__TOPK_BUF_MAX];
    struct netelect__topbuf t = {0, k, br, bi};
    uint64_t thr = UINT64_MAX;
    size_t inserts = 0, budget = 4 * k + 64;
    for (size_t i = 0; i < n; i++) {
        if (rtt[i] > thr && ids[i] != self_id)
            continue;
        if (!healthy[i])
            continue;
        netelect__topbuf_offer_idx(&t, ids, rtt, healthy, i, self_id);
        if (t.len == k && t.r[k - 1] < thr)
            thr = t.r[k - 1];
        if (++inserts == budget && i + 1 < n) {
            /* Adversarial order: bound the rest once, order-independently. */
            uint64_t mins[NETELECT__TOPK_BUF_MAX];
            for (size_t l = 0; l < NETELECT__TOPK_BUF_MAX; l++)
                mins[l] = UINT64_MAX;
            for (size_t j = i + 1; j < n; j++) {
                if (!healthy[j])
                    continue;
                const uint64_t r = ids[j] == self_id ? 0 : rtt[j];
                uint64_t *mm = &mins[j % NETELECT__TOPK_BUF_MAX];
                *mm = r < *mm ? r : *mm;
            }
            const uint64_t bound = netelect__kth_of_mins(mins, NETELECT__TOPK_BUF_MAX, k);
            thr = bound < thr ? bound : thr;
        }
    }
    for (size_t i = 0; i < t.len; i++)
        out_ids[i] = bi[i];
    return t.len;
}
