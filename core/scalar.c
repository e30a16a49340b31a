/* SPDX-License-Identifier: MIT */
/*
 * Portable production kernels: the scalar table's elect and top-k, and the
 * radix rank every table uses.  ref.c stays the oracle; these are what runs.
 *
 * Rank is an LSD radix sort over only the bits of the key that vary:
 *
 *  1. one branch-free pass over the input finds the candidates' count, the
 *     range of measured RTTs (self already at 0) and the bits in which ids
 *     differ;
 *  2. RTTs are rebased to that range and "unknown" becomes one more value
 *     just past its top, so it needs no pass of its own;
 *  3. usually (rebased rtt bits + index bits <= 64) each candidate becomes
 *     one 64-bit key: rebased rtt, then as many top varying id bits as
 *     the last pass has room for, then its index.  Keys are written in
 *     input order while every digit is counted, then one stable pass per
 *     11-bit-or-less digit (digits equal for all keys are skipped);
 *  4. runs that tie on (rtt, id bits) are finished by the whole id, looked
 *     up through the index: insertion sort when short, one MSD pass plus
 *     insertion sort when long, LSD radix for clustered ids, so
 *     adversarial ties stay O(n);
 *  5. otherwise (RTT spans near 2^64) the same scheme runs on 16-byte
 *     (rtt, id) records with an explicit id-digit pass.
 *
 * Candidates n <= 32 are insertion-sorted directly.
 *
 * The input may change while rank runs (core/kernel.h, "inputs that
 * change"): pass 1's count only sizes the scratch.  Pass 2 stores at most
 * that many keys, reading each entry once, and everything after it works
 * on what pass 2 actually stored, so no count from one pass ever indexes
 * memory filled by another.
 */
#include <stdlib.h>
#include <string.h>

#include "core/dispatch.h"
#include "core/kernel.h"

#ifdef __AVX__
#error "the baseline translation unit must not be built with AVX enabled"
#endif

struct rec {
    uint64_t r, id;
};

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

/* Stable LSD radix by id over its varying bits; `tmp` has room for n. */
static void radix_by_id(struct rec *a, struct rec *tmp, size_t n)
{
    uint64_t vary = 0;
    for (size_t i = 1; i < n; i++)
        vary |= a[i].id ^ a[0].id;
    const int bits = netelect__top_bit(vary);
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

/*
 * Sorts a run of records by id: one MSD pass on the run's top varying id
 * bits (about one bucket per record), then insertion sort per bucket, so a
 * run of random ids costs O(len).  Buckets that stay large (clustered ids)
 * get the LSD radix, which is O(len) whatever the ids.  `tmp` has room for
 * len records.
 */
static void sort_run_by_id(struct rec *a, struct rec *tmp, size_t len)
{
    if (len <= 24) {
        isort_id(a, len);
        return;
    }
    uint64_t vary = 0;
    for (size_t i = 1; i < len; i++)
        vary |= a[i].id ^ a[0].id;
    if (!vary)
        return;
    const int hb = netelect__top_bit(vary);
    int bits = 63 - __builtin_clzll(len);
    bits = bits < 4 ? 4 : bits > 11 ? 11 : bits;
    bits = bits < hb ? bits : hb;
    const int shift = hb - bits;
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    uint32_t cnt[(1 << 11) + 1];
    memset(cnt, 0, ((size_t)(mask + 2)) * sizeof *cnt);
    for (size_t i = 0; i < len; i++)
        cnt[((a[i].id >> shift) & mask) + 1]++;
    for (size_t d = 1; d <= mask + 1; d++)
        cnt[d] += cnt[d - 1];
    /* cnt[d] is now bucket d's start; the scatter advances it to its end. */
    for (size_t i = 0; i < len; i++)
        tmp[cnt[(a[i].id >> shift) & mask]++] = a[i];
    memcpy(a, tmp, len * sizeof *a);
    size_t start = 0;
    for (size_t d = 0; d <= mask; d++) {
        const size_t end = cnt[d], bl = end - start;
        if (bl > 64)
            radix_by_id(a + start, tmp, bl);
        else if (bl > 1)
            isort_id(a + start, bl);
        start = end;
    }
}

enum { SMALL_RANK = NETELECT__RANK_SMALL, MAX_DIGIT_BITS = 11 };

/* Pass 1, branch-free: health and "unknown" are data (~15% of entries),
 * and mispredicting them would cost more than the pass itself. */
static void scan_input(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
                       uint64_t self_id, struct netelect__rank_scan *sc)
{
    size_t m = 0, measured = 0;
    uint64_t mn = UINT64_MAX, mx = 0, id_or = 0, id_and = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        const uint64_t id = ids[i], r = id == self_id ? 0 : rtt[i];
        const uint64_t hm = -(uint64_t)(healthy[i] != 0);
        const uint64_t vm = hm & -(uint64_t)(r != NETELECT_RTT_UNKNOWN);
        m -= hm;
        measured -= vm;
        id_or |= id & hm;
        id_and &= id | ~hm;
        const uint64_t lo = r | ~vm, hi = r & vm;
        mn = lo < mn ? lo : mn;
        mx = hi > mx ? hi : mx;
    }
    sc->m = m;
    sc->measured = measured;
    sc->mn = measured ? mn : 0;
    sc->mx = mx;
    sc->id_or = id_or;
    sc->id_and = id_and;
}

/* Digit width for m records: buckets ~ m/4, within [64, 2048]. */
static int digit_bits(size_t m)
{
    const int w = (63 - __builtin_clzll(m)) - 2;
    return w < 6 ? 6 : w > MAX_DIGIT_BITS ? MAX_DIGIT_BITS : w;
}

/* Exclusive prefix sum in place; whether one bucket holds everything. */
static int prefix(uint32_t *h, size_t buckets, size_t m)
{
    uint32_t s = 0;
    int trivial = 0;
    for (size_t d = 0; d < buckets; d++) {
        const uint32_t c = h[d];
        trivial |= c == m;
        h[d] = s;
        s += c;
    }
    return trivial;
}

struct keyspec {
    uint64_t mn, unknown, self_id;
    int id_shift;
    uint64_t id_mask;
    int r_shift, ib, w;
    uint64_t d_mask;
    size_t buckets;
};

/*
 * Pass 2 of rank_packed; always inlined so `passes` can be a constant.
 * Stores at most `cap` keys (a has room for cap), reads each entry once,
 * counts exactly the keys it stored, and returns how many that is.  The
 * bound costs nothing per entry: a batch of `cap - pos` entries cannot
 * store more than that many keys, so the loop body stays unchecked and
 * only the batch is sized.  On input that holds still, the last batch
 * ends at the last candidate; the batches shrink geometrically before
 * that (about log(m) / (healthy fraction) of them, a few instructions
 * each), measured as no slower than the unbounded loop.
 */
static inline __attribute__((always_inline)) size_t
build_keys(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
           size_t cap, uint64_t *a, uint32_t *hist, const struct keyspec *ks, int passes)
{
    /* Locals: the stores below could alias *ks as far as C knows. */
    const uint64_t mn = ks->mn, unknown = ks->unknown, self_id = ks->self_id;
    const uint64_t id_mask = ks->id_mask, d_mask = ks->d_mask;
    const int id_shift = ks->id_shift, r_shift = ks->r_shift, ib = ks->ib, w = ks->w;
    const size_t buckets = ks->buckets;
    size_t pos = 0, i = 0;
    while (i < n && pos < cap) {
        const size_t room = cap - pos, left = n - i;
        const size_t end = i + (room < left ? room : left);
        for (; i < end; i++) {
            const uint64_t id = ids[i], raw = id == self_id ? 0 : rtt[i];
            const uint64_t r = raw == NETELECT_RTT_UNKNOWN ? unknown : raw - mn;
            const uint64_t key = (r << r_shift) | (((id >> id_shift) & id_mask) << ib) | i;
            const uint32_t ok = healthy[i] != 0;
            a[pos] = key;
            pos += ok;
            for (int p = 0; p < passes; p++)
                hist[(size_t)p * buckets + ((key >> (ib + p * w)) & d_mask)] += ok;
        }
    }
    return pos;
}

/*
 * The common case: rebased rtt, the top varying id bits and the entry's
 * index fit one 64-bit key, so the passes move 8 bytes instead of 16 and
 * the first pass writes sequentially.  Keys are ordered by (rtt, id digit)
 * and carry the index; equal (rtt, digit) runs are then ordered by the
 * whole id, looked up through the index.
 */
static size_t rank_packed(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                          size_t n, uint64_t self_id, uint64_t *out_ids,
                          const struct netelect__rank_scan *sc, int rbits, uint64_t unknown)
{
    const size_t cap = sc->m; /* pass 1's count: sizes, never indexes */
    const int ib = netelect__top_bit(n - 1), wmax = digit_bits(cap);
    const int id_bits = netelect__top_bit(sc->id_or ^ sc->id_and);
    /*
     * The passes are sized by the rtt bits alone; the id digit only gets
     * the last pass's spare bits.  A whole pass for the id would cost more
     * than it saves unless RTTs tie a lot, and the tie-fix copes with that.
     */
    const int room = 64 - rbits - ib;
    const int passes = rbits ? (rbits + wmax - 1) / wmax : 1;
    int wid = passes * wmax - rbits;
    wid = wid < room ? wid : room;
    wid = wid < id_bits ? wid : id_bits;
    const int w = (rbits + wid + passes - 1) / passes;
    const int id_shift = wid ? id_bits - wid : 0;
    const uint64_t idx_mask = ib ? ((uint64_t)1 << (ib - 1) << 1) - 1 : 0;
    const uint64_t id_mask = wid ? ((uint64_t)1 << (wid - 1) << 1) - 1 : 0;
    /* w <= wmax <= MAX_DIGIT_BITS: rbits + wid <= passes * wmax by construction. */
    const uint64_t d_mask = ((uint64_t)1 << w) - 1; // NOLINT(clang-analyzer-core.UndefinedBinaryOperatorResult)
    const size_t buckets = (size_t)1 << w;

    const size_t key_bytes = cap * sizeof(uint64_t);
    unsigned char *mem = netelect__scratch_get(2 * key_bytes +
                                               (size_t)passes * buckets * sizeof(uint32_t));
    if (!mem)
        return netelect__rank_ref(ids, rtt, healthy, n, self_id, out_ids);
    uint64_t *a = (uint64_t *)(void *)mem, *b = (uint64_t *)(void *)(mem + key_bytes);
    uint32_t *hist = (uint32_t *)(void *)(mem + 2 * key_bytes);
    memset(hist, 0, (size_t)passes * buckets * sizeof(uint32_t));

    /* Pass 2: build the keys (compacting by health) and count every digit. */
    const struct keyspec ks = {sc->mn, unknown, self_id, id_shift, id_mask, wid + ib, ib, w,
                               d_mask, buckets};
    size_t m; /* the keys pass 2 stored: every later pass works on these */
    switch (passes) { /* a constant count unrolls the per-digit counting */
    case 1:
        m = build_keys(ids, rtt, healthy, n, cap, a, hist, &ks, 1);
        break;
    case 2:
        m = build_keys(ids, rtt, healthy, n, cap, a, hist, &ks, 2);
        break;
    case 3:
        m = build_keys(ids, rtt, healthy, n, cap, a, hist, &ks, 3);
        break;
    case 4:
        m = build_keys(ids, rtt, healthy, n, cap, a, hist, &ks, 4);
        break;
    default:
        m = build_keys(ids, rtt, healthy, n, cap, a, hist, &ks, passes);
        break;
    }

    uint64_t *src = a, *dst = b;
    for (int p = 0; p < passes; p++) {
        uint32_t *h = hist + (size_t)p * buckets;
        if (prefix(h, buckets, m))
            continue;
        const int shift = ib + p * w;
        for (size_t i = 0; i < m; i++) {
            const uint64_t k = src[i];
            dst[h[(k >> shift) & d_mask]++] = k;
        }
        uint64_t *t = src;
        src = dst;
        dst = t;
    }

    /* Tie-fix: runs equal above the index bits, by the whole id. */
    for (size_t j = 1; j < m; j++) {
        if (__builtin_expect((src[j] ^ src[j - 1]) >> ib != 0, 1))
            continue;
        const uint64_t hi = src[j] >> ib;
        size_t e = j + 1;
        while (e < m && src[e] >> ib == hi)
            e++;
        const size_t s0 = j - 1, len = e - s0;
        struct rec *tmp = len > 16 ? malloc(2 * len * sizeof *tmp) : NULL;
        if (tmp) {
            for (size_t q = 0; q < len; q++) {
                tmp[q].r = src[s0 + q];
                tmp[q].id = ids[src[s0 + q] & idx_mask];
            }
            sort_run_by_id(tmp, tmp + len, len);
            for (size_t q = 0; q < len; q++)
                src[s0 + q] = tmp[q].r;
            free(tmp);
        } else {
            /* Short run, or no memory: insertion sort is always available. */
            for (size_t q = s0 + 1; q < e; q++) {
                const uint64_t k = src[q], kid = ids[k & idx_mask];
                size_t t = q;
                while (t > s0 && ids[src[t - 1] & idx_mask] > kid) {
                    src[t] = src[t - 1];
                    t--;
                }
                src[t] = k;
            }
        }
        j = e;
    }
    for (size_t i = 0; i < m; i++)
        out_ids[i] = ids[src[i] & idx_mask];
    netelect__scratch_put(mem);
    return m;
}

/* The general case: 16-byte (rtt, id) records; see the file comment. */
static size_t rank_records(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                           size_t n, uint64_t self_id, uint64_t *out_ids,
                           const struct netelect__rank_scan *sc, int rbits, uint64_t unknown)
{
    const size_t cap = sc->m; /* pass 1's count: sizes, never indexes */
    const int wmax = digit_bits(cap);
    const int passes = (rbits + wmax - 1) / wmax;
    const int w = passes ? (rbits + passes - 1) / passes : 0;
    const int id_bits = netelect__top_bit(sc->id_or ^ sc->id_and);
    const int wid = id_bits < wmax ? id_bits : wmax;
    const int id_shift = id_bits - wid;
    const uint64_t id_mask = ((uint64_t)1 << wid) - 1, r_mask = ((uint64_t)1 << w) - 1;
    const size_t buckets = (size_t)1 << wmax;

    const size_t rec_bytes = (cap + 1) * sizeof(struct rec); /* +1: a sink for skipped entries */
    const size_t hist_words = (size_t)(passes + 1) * buckets;
    unsigned char *mem = netelect__scratch_get(2 * rec_bytes + hist_words * sizeof(uint32_t));
    if (!mem)
        return netelect__rank_ref(ids, rtt, healthy, n, self_id, out_ids);
    struct rec *a = (struct rec *)(void *)mem, *b = (struct rec *)(void *)(mem + rec_bytes);
    uint32_t *hist = (uint32_t *)(void *)(mem + 2 * rec_bytes);
    memset(hist, 0, hist_words * sizeof(uint32_t));
    uint32_t *hid = hist + (size_t)passes * buckets;

    /* Pass 2: at most cap records, in input order, into b (each entry read
     * once; an unhealthy one, or one past cap, goes to the sink b[cap] and
     * is counted nowhere), counting the id digit and every RTT digit of
     * exactly what was stored. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const uint64_t id = ids[i], raw = id == self_id ? 0 : rtt[i];
        const uint64_t r = raw == NETELECT_RTT_UNKNOWN ? unknown : raw - sc->mn;
        const uint32_t ok = (healthy[i] != 0) & (m < cap);
        b[m].r = r;
        b[m].id = id;
        m += ok;
        hid[(id >> id_shift) & id_mask] += ok;
        for (int p = 0; p < passes; p++)
            hist[(size_t)p * buckets + ((r >> (p * w)) & r_mask)] += ok;
    }
    /* The id digit is the least significant one: a stable scatter b -> a. */
    prefix(hid, id_mask + 1, m);
    for (size_t q = 0; q < m; q++)
        a[hid[(b[q].id >> id_shift) & id_mask]++] = b[q];

    struct rec *src = a, *dst = b;
    for (int p = 0; p < passes; p++) {
        uint32_t *h = hist + (size_t)p * buckets;
        if (prefix(h, r_mask + 1, m))
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

    /* Tie-fix: equal-rtt runs, one id-digit group at a time, by the id. */
    for (size_t j = 1; j < m; j++) {
        if (__builtin_expect(src[j].r != src[j - 1].r, 1))
            continue;
        const uint64_t r = src[j].r;
        size_t e = j + 1;
        while (e < m && src[e].r == r)
            e++;
        for (size_t i = j - 1; i < e;) {
            const uint64_t d = (src[i].id >> id_shift) & id_mask;
            size_t k = i + 1;
            while (k < e && ((src[k].id >> id_shift) & id_mask) == d)
                k++;
            if (k - i > 1)
                sort_run_by_id(src + i, dst + i, k - i);
            i = k;
        }
        j = e;
    }
    for (size_t i = 0; i < m; i++)
        out_ids[i] = src[i].id;
    netelect__scratch_put(mem);
    return m;
}

size_t netelect__rank_scanned(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                              size_t n, uint64_t self_id, uint64_t *out_ids,
                              const struct netelect__rank_scan *sc)
{
    if (n <= SMALL_RANK || sc->m <= SMALL_RANK)
        return netelect__rank_small(ids, rtt, healthy, n, self_id, out_ids);
    if (sc->m > UINT32_MAX) /* the digit counters are 32-bit */
        return netelect__rank_ref(ids, rtt, healthy, n, self_id, out_ids);

    uint64_t unknown;
    const int rbits = netelect__rank_rtt_bits(sc, &unknown);
    if (rbits + netelect__top_bit(n - 1) <= 64)
        return rank_packed(ids, rtt, healthy, n, self_id, out_ids, sc, rbits, unknown);
    return rank_records(ids, rtt, healthy, n, self_id, out_ids, sc, rbits, unknown);
}

size_t netelect__rank_scalar(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, uint64_t *out_ids)
{
    if (n <= SMALL_RANK)
        return netelect__rank_small(ids, rtt, healthy, n, self_id, out_ids);
    struct netelect__rank_scan sc;
    scan_input(ids, rtt, healthy, n, self_id, &sc);
    return netelect__rank_scanned(ids, rtt, healthy, n, self_id, out_ids, &sc);
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
            netelect__class_mins_tail(mins, NETELECT__TOPK_BUF_MAX, ids, rtt, healthy, 0, i + 1,
                                      n, self_id);
            const uint64_t bound = netelect__kth_of_mins(mins, NETELECT__TOPK_BUF_MAX, k);
            thr = bound < thr ? bound : thr;
        }
    }
    for (size_t i = 0; i < t.len; i++)
        out_ids[i] = bi[i];
    return t.len;
}
