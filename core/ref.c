/* SPDX-License-Identifier: MIT */
/*
 * The scalar reference: the oracle every other kernel is tested against.
 * It is written to be read, not to be fast, and allocates nothing, so it can
 * never fail.  Keys are compared as (hi, lo) pairs rather than through
 * unsigned __int128 so the code is the rule, word for word.
 */
#include "core/dispatch.h"

struct key {
    uint64_t hi; /* rtt, 0 for self */
    uint64_t lo; /* id */
};

static struct key key_of(const uint64_t *ids, const uint64_t *rtt, size_t i, uint64_t self_id)
{
    const uint64_t id = ids[i]; /* once: see "inputs that change", core/kernel.h */
    struct key k = {id == self_id ? 0 : rtt[i], id};
    return k;
}

static int key_less(struct key a, struct key b)
{
    return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
}

struct netelect_result netelect__elect_ref(const uint64_t *ids, const uint64_t *rtt,
                                           const uint8_t *healthy, size_t n, uint64_t self_id)
{
    struct netelect_result r = {NETELECT_NO_ELIGIBLE, 0};
    struct key best = {0, 0};
    int found = 0;

    for (size_t i = 0; i < n; i++) {
        if (!healthy[i])
            continue;
        struct key k = key_of(ids, rtt, i, self_id);
        if (!found || key_less(k, best)) {
            best = k;
            found = 1;
        }
    }
    if (found) {
        r.winner = best.lo;
        r.outcome = best.lo == self_id ? NETELECT_SELF_WINS : NETELECT_PEER_WINS;
    }
    return r;
}

/*
 * Top-k without allocation: out_ids holds the *indices* of the k best
 * candidates seen so far as a binary max-heap (worst at the root).  At the
 * end the heap is sorted in place and the indices are replaced by ids.
 */
struct heap {
    const uint64_t *ids, *rtt;
    uint64_t self_id;
    uint64_t *h;
};

static int idx_less(const struct heap *hp, uint64_t a, uint64_t b)
{
    return key_less(key_of(hp->ids, hp->rtt, (size_t)a, hp->self_id),
                    key_of(hp->ids, hp->rtt, (size_t)b, hp->self_id));
}

static void sift_down(const struct heap *hp, size_t root, size_t len)
{
    uint64_t *h = hp->h;
    for (;;) {
        size_t c = 2 * root + 1;
        if (c >= len)
            return;
        if (c + 1 < len && idx_less(hp, h[c], h[c + 1]))
            c++;
        if (!idx_less(hp, h[root], h[c]))
            return;
        uint64_t t = h[root];
        h[root] = h[c];
        h[c] = t;
        root = c;
    }
}

static void sift_up(const struct heap *hp, size_t i)
{
    uint64_t *h = hp->h;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!idx_less(hp, h[p], h[i]))
            return;
        uint64_t t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

size_t netelect__topk_ref(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                          size_t n, uint64_t self_id, size_t k, uint64_t *out_ids)
{
    struct heap hp = {ids, rtt, self_id, out_ids};
    size_t len = 0;

    if (k == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!healthy[i])
            continue;
        if (len < k) {
            out_ids[len] = i;
            sift_up(&hp, len++);
        } else if (idx_less(&hp, i, out_ids[0])) {
            out_ids[0] = i;
            sift_down(&hp, 0, len);
        }
    }
    /* Heap sort: repeatedly move the worst to the end. */
    for (size_t end = len; end > 1; end--) {
        uint64_t t = out_ids[0];
        out_ids[0] = out_ids[end - 1];
        out_ids[end - 1] = t;
        sift_down(&hp, 0, end - 1);
    }
    for (size_t i = 0; i < len; i++)
        out_ids[i] = ids[out_ids[i]];
    return len;
}

size_t netelect__rank_ref(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                          size_t n, uint64_t self_id, uint64_t *out_ids)
{
    return netelect__topk_ref(ids, rtt, healthy, n, self_id, n, out_ids);
}
