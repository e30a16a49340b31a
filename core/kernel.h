/* SPDX-License-Identifier: MIT */
/*
 * Scalar building blocks shared by every kernel family.  They are static
 * inline on purpose: each per-ISA translation unit gets its own copy,
 * compiled with that unit's target flags, so the SIMD units never call into
 * a baseline TU for their small-n and candidate-resolution paths and the
 * baseline TU never sees an AVX flag.
 *
 * The contract of every kernel (elect, rank, top-k; ref.c, scalar.c and
 * every ISA unit), "inputs that change":
 *
 *   The arrays ids[], rtt[] and healthy[] may be rewritten by another
 *   thread or process while a kernel runs: a netelect_view_* reader runs
 *   on a segment the agent may be republishing, and throws such a result
 *   away only after the call (shm/view.c).  Whatever the arrays hold,
 *   moment to moment, a kernel
 *     - reads ids[i], rtt[i] and healthy[i] only for i in [0, n) (masked
 *       vector lanes past n access no memory);
 *     - writes out_ids only in [0, returned count), and returns a count
 *       <= n for rank and <= min(k, n) for top-k;
 *     - writes its own scratch only inside what it allocated: a count or
 *       a bound learnt in one pass over the input may size a buffer, but
 *       a later pass that fills it clamps its own count to that size and
 *       from then on works only on what it actually stored, never on the
 *       earlier count;
 *     - returns ids that it read from ids[] (in some order), and
 *       terminates.
 *   The answer itself is then unspecified; only for input that holds
 *   still for the whole call is it the rule's answer.  An element read
 *   twice may differ between the reads, so code that needs one value
 *   (an entry's id, say) reads it once.  tests/core/checksimd (its race
 *   mode: another thread flips health, RTT and ids while each kernel runs)
 *   and tests/shm/rank_race.c check this.
 */
#ifndef CORE_KERNEL_H
#define CORE_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/dispatch.h"
#include "netelect.h"

/* The running minimum (rtt, id) of the candidates seen so far. */
struct netelect__best {
    uint64_t rtt, id;
    int found;
};

static inline void netelect__best_init(struct netelect__best *b)
{
    b->rtt = UINT64_MAX;
    b->id = UINT64_MAX;
    b->found = 0;
}

/* Offers one candidate whose key (self already mapped to 0) is (r, id). */
static inline void netelect__best_offer(struct netelect__best *b, uint64_t r, uint64_t id)
{
    if (r < b->rtt || (r == b->rtt && id <= b->id)) {
        b->rtt = r;
        b->id = id;
        b->found = 1;
    }
}

/* Offers entry i if it is healthy, mapping self to rtt 0. */
static inline void netelect__best_offer_idx(struct netelect__best *b, const uint64_t *ids,
                                            const uint64_t *rtt, const uint8_t *healthy,
                                            size_t i, uint64_t self_id)
{
    if (healthy[i]) {
        const uint64_t id = ids[i]; /* once: the input may change (above) */
        netelect__best_offer(b, id == self_id ? 0 : rtt[i], id);
    }
}

/*
 * A threshold filter is only as good as its threshold: on input sorted by
 * descending RTT every block would hold a new minimum.  Offering a few
 * entries spread over the whole array first (the last one included) starts
 * the threshold near the minimum's neighbourhood whatever the order, so only
 * the region around the minimum yields candidates.  They are real entries,
 * so the result cannot change: a minimum tolerates seeing an entry twice.
 */
enum { NETELECT__SEED_SAMPLES = 32, NETELECT__SEED_MIN_N = 1024 };

static inline void netelect__best_seed(struct netelect__best *b, const uint64_t *ids,
                                       const uint64_t *rtt, const uint8_t *healthy, size_t n,
                                       uint64_t self_id)
{
    if (n < NETELECT__SEED_MIN_N)
        return;
    const size_t step = n / NETELECT__SEED_SAMPLES;
    size_t i = n - 1;
    for (int j = 0; j < NETELECT__SEED_SAMPLES; j++, i -= step)
        netelect__best_offer_idx(b, ids, rtt, healthy, i, self_id);
}

static inline struct netelect_result netelect__best_result(const struct netelect__best *b,
                                                           uint64_t self_id)
{
    struct netelect_result r = {NETELECT_NO_ELIGIBLE, 0};
    if (b->found) {
        r.winner = b->id;
        r.outcome = b->id == self_id ? NETELECT_SELF_WINS : NETELECT_PEER_WINS;
    }
    return r;
}

/*
 * The plain loop, for sizes where vector set-up costs more than it saves.
 * The threshold test first: with random order almost every entry fails it
 * and the branch predicts well.
 */
static inline struct netelect_result netelect__elect_small(const uint64_t *ids,
                                                           const uint64_t *rtt,
                                                           const uint8_t *healthy, size_t n,
                                                           uint64_t self_id)
{
    struct netelect__best b;
    netelect__best_init(&b);
    for (size_t i = 0; i < n; i++) {
        if (!healthy[i])
            continue;
        const uint64_t id = ids[i], r = id == self_id ? 0 : rtt[i];
        netelect__best_offer(&b, r, id);
    }
    return netelect__best_result(&b, self_id);
}

/*
 * The top-k insertion buffer: the best `len` keys so far, ascending.  Keys
 * that tie exactly also have equal ids, so which copy is kept never shows
 * in the output.
 */
struct netelect__topbuf {
    size_t len, k;
    uint64_t *r, *id; /* room for k each */
};

/* Non-zero when (r, id) would enter the buffer. */
static inline int netelect__topbuf_wants(const struct netelect__topbuf *t, uint64_t r,
                                         uint64_t id)
{
    if (t->len < t->k)
        return 1;
    const uint64_t wr = t->r[t->len - 1], wi = t->id[t->len - 1];
    return r < wr || (r == wr && id < wi);
}

static inline void netelect__topbuf_insert(struct netelect__topbuf *t, uint64_t r, uint64_t id)
{
    if (!netelect__topbuf_wants(t, r, id))
        return;
    size_t j = t->len < t->k ? t->len++ : t->len - 1;
    while (j > 0 && (t->r[j - 1] > r || (t->r[j - 1] == r && t->id[j - 1] > id))) {
        t->r[j] = t->r[j - 1];
        t->id[j] = t->id[j - 1];
        j--;
    }
    t->r[j] = r;
    t->id[j] = id;
}

static inline void netelect__topbuf_offer_idx(struct netelect__topbuf *t, const uint64_t *ids,
                                              const uint64_t *rtt, const uint8_t *healthy,
                                              size_t i, uint64_t self_id)
{
    if (healthy[i]) {
        const uint64_t id = ids[i];
        netelect__topbuf_insert(t, id == self_id ? 0 : rtt[i], id);
    }
}

/*
 * The end of every vectorized top-k: entries past the last full block go
 * through the same threshold test one by one, then the buffer's ids (already
 * in election order) are the answer.
 */
static inline size_t netelect__topbuf_finish(struct netelect__topbuf *t, const uint64_t *ids,
                                             const uint64_t *rtt, const uint8_t *healthy,
                                             size_t i, size_t n, uint64_t self_id, uint64_t thr,
                                             uint64_t *out_ids)
{
    for (; i < n; i++)
        if (rtt[i] <= thr || ids[i] == self_id)
            netelect__topbuf_offer_idx(t, ids, rtt, healthy, i, self_id);
    for (size_t j = 0; j < t->len; j++)
        out_ids[j] = t->id[j];
    return t->len;
}

/*
 * What rank's pass 1 learns about the candidates (core/scalar.c): their
 * count m (it only sizes scratch: "inputs that change" above), how many
 * have a measured RTT, the range of those RTTs (self at 0), and the OR and
 * AND of their ids (the bits in which ids differ).  A SIMD unit may compute
 * it and hand it to netelect__rank_scanned (core/dispatch.h) for the passes.
 */
struct netelect__rank_scan {
    size_t m, measured;
    uint64_t mn, mx, id_or, id_and;
};

/* Bits needed to hold x. */
static inline int netelect__top_bit(uint64_t x)
{
    return x ? 64 - __builtin_clzll(x) : 0;
}

/*
 * The rebased RTT of rank's keys from a pass 1: "unknown" becomes one past
 * the largest rebased measurement (*unknown), and the result is how many
 * bits a rebased RTT needs, unknown included.
 */
static inline int netelect__rank_rtt_bits(const struct netelect__rank_scan *sc,
                                          uint64_t *unknown)
{
    *unknown = sc->measured ? sc->mx - sc->mn + 1 : 0;
    return netelect__top_bit(sc->measured < sc->m ? *unknown : sc->mx - sc->mn);
}

/*
 * Rank of few entries: the candidates' (rtt, id) keys insertion-sorted.
 * At most NETELECT__RANK_SMALL candidates are kept whatever n is, so a
 * caller that sized its choice by an earlier count cannot overrun the
 * array (the result is then wrong, and the caller's validation discards
 * it).  Inline so the public entry runs it without the table's indirect
 * call, where that call costs as much as the sort.
 */
enum { NETELECT__RANK_SMALL = 32 };

static inline size_t netelect__rank_small(const uint64_t *ids, const uint64_t *rtt,
                                          const uint8_t *healthy, size_t n, uint64_t self_id,
                                          uint64_t *out_ids)
{
    struct {
        uint64_t r, id;
    } a[NETELECT__RANK_SMALL];
    size_t m = 0;
    for (size_t i = 0; i < n && m < NETELECT__RANK_SMALL; i++) {
        if (!healthy[i])
            continue;
        const uint64_t id = ids[i]; /* once: the input may change (above) */
        a[m].r = id == self_id ? 0 : rtt[i];
        a[m++].id = id;
    }
    for (size_t i = 1; i < m; i++) {
        const uint64_t vr = a[i].r, vid = a[i].id;
        size_t j = i;
        while (j > 0 && (vr < a[j - 1].r || (vr == a[j - 1].r && vid < a[j - 1].id))) {
            a[j] = a[j - 1];
            j--;
        }
        a[j].r = vr;
        a[j].id = vid;
    }
    for (size_t i = 0; i < m; i++)
        out_ids[i] = a[i].id;
    return m;
}

/* Largest k served by the insertion buffer; larger k sort instead. */
#define NETELECT__TOPK_BUF_MAX 32

/*
 * Order-independent bound for top-k: split the entries into `lanes`
 * interleaved classes (index mod lanes) and take each class's minimum
 * rtt.  The classes are disjoint, so the k smallest minima belong to k
 * distinct candidates and every one of the true top k has rtt <= the k-th
 * smallest minimum.  Returns UINT64_MAX (no bound) when fewer than k
 * classes have a candidate.  `mins` is sorted in place.
 */
static inline uint64_t netelect__kth_of_mins(uint64_t *mins, size_t lanes, size_t k)
{
    for (size_t i = 1; i < lanes; i++) {
        uint64_t v = mins[i];
        size_t j = i;
        while (j > 0 && mins[j - 1] > v) {
            mins[j] = mins[j - 1];
            j--;
        }
        mins[j] = v;
    }
    return k && k <= lanes ? mins[k - 1] : UINT64_MAX;
}

/*
 * Folds entries [i, n) into lane-class minima: entry j goes to class
 * (j - s) % classes (rtt, self at 0, healthy only).  The scalar end of the
 * vectorized order-free bounds.
 */
static inline void netelect__class_mins_tail(uint64_t *mins, size_t classes,
                                             const uint64_t *ids, const uint64_t *rtt,
                                             const uint8_t *healthy, size_t s, size_t i,
                                             size_t n, uint64_t self_id)
{
    for (; i < n; i++) {
        if (!healthy[i])
            continue;
        const uint64_t r = ids[i] == self_id ? 0 : rtt[i];
        uint64_t *mm = &mins[(i - s) % classes];
        *mm = r < *mm ? r : *mm;
    }
}

/*
 * The top-k entry point every unit shares: k = 0, k beyond the insertion
 * buffer (a full sort with the unit's own rank), and n below the unit's
 * vector threshold (the portable kernel) before its vector body.
 */
static inline size_t netelect__topk_entry(const uint64_t *ids, const uint64_t *rtt,
                                          const uint8_t *healthy, size_t n, uint64_t self_id,
                                          size_t k, uint64_t *out_ids, netelect__rank_fn rank,
                                          size_t simd_min_n, netelect__topk_fn simd)
{
    if (k == 0)
        return 0;
    if (k > NETELECT__TOPK_BUF_MAX)
        return netelect__topk_sorted(ids, rtt, healthy, n, self_id, k, out_ids, rank);
    if (n < simd_min_n)
        return netelect__topk_scalar(ids, rtt, healthy, n, self_id, k, out_ids);
    return simd(ids, rtt, healthy, n, self_id, k, out_ids);
}

#endif /* CORE_KERNEL_H */
