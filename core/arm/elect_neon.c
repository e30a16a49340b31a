/* SPDX-License-Identifier: MIT */
/*
 * NEON (AArch64 AdvSIMD) elect and top-k: the design of the x86 units
 * (a threshold filter over blocks, an exact path for the few interesting
 * blocks, an order-free per-lane scan once the order works against the
 * filter), in 128-bit vectors of two 64-bit lanes.
 *
 * The keys are 128 bits, (rtt << 64 | id), and NEON has no 64-bit min of
 * any kind (UMIN/UMINV stop at 32-bit lanes) and no 128-bit compare.  AArch64
 * does have unsigned 64-bit compares (CMHI/CMHS, vcgtq_u64/vcleq_u64), so
 * unlike AVX2 no sign bias is needed: each key stays split in its two
 * halves, one vector of rtts and one of ids, compared lexicographically
 * (rtt_a > rtt_b, or equal rtts and id_a > id_b) and a minimum is two
 * bit-selects (vbslq_u64) driven by that mask.  Masks become scalar bit
 * sets by narrowing 64-bit lanes to bytes (vuzp1q) and then to four bits
 * per lane (vshrn_n_u16 by 4, the AArch64 stand-in for movemask).
 *
 * Loads go through uint8 pointers (vld1q_u8, the same LD1), so no alignment
 * beyond the element's is assumed.  Entries past the last full block take
 * the scalar path, so no load ever reaches past n (core/kernel.h).
 */
#include <arm_neon.h>

#include "core/arm/isa_levels.h"
#include "core/dispatch.h"
#include "core/kernel.h"

#ifdef __AARCH64EB__
#error "the lane order below assumes little-endian AArch64"
#endif

_Static_assert((NETELECT_ARM_COMPILED & NETELECT_ARM_NEEDS_NEON) == NETELECT_ARM_NEEDS_NEON,
               "core/meson.build builds this unit short of the neon level");
const uint64_t netelect__arm_compiled_neon = NETELECT_ARM_COMPILED;

/* 16 entries per block: 8 vectors of rtts, 8 of ids, one of health bytes. */
enum { BLOCK = 16, VECS = BLOCK / 2, SMALL_N = 32, HEAVY_LIMIT = 3 };

/* A lane set of a block: lane l is bit 4l + 3 (four bits per lane). */
#define LANE_BITS 0x8888888888888888ull

static inline uint64x2_t load(const uint64_t *p)
{
    return vreinterpretq_u64_u8(vld1q_u8((const uint8_t *)(const void *)p));
}

/* Sixteen 64-bit lane masks (all ones / zero) as sixteen bytes, in order. */
static inline uint8x16_t narrow16(const uint64x2_t c[VECS])
{
    uint32x4_t w[4];
    for (int j = 0; j < 4; j++)
        w[j] = vuzp1q_u32(vreinterpretq_u32_u64(c[2 * j]), vreinterpretq_u32_u64(c[2 * j + 1]));
    const uint16x8_t h0 = vuzp1q_u16(vreinterpretq_u16_u32(w[0]), vreinterpretq_u16_u32(w[1]));
    const uint16x8_t h1 = vuzp1q_u16(vreinterpretq_u16_u32(w[2]), vreinterpretq_u16_u32(w[3]));
    return vuzp1q_u8(vreinterpretq_u8_u16(h0), vreinterpretq_u8_u16(h1));
}

/* Byte masks to a lane set (LANE_BITS layout). */
static inline uint64_t lane_set(uint8x16_t m)
{
    const uint8x8_t nib = vshrn_n_u16(vreinterpretq_u16_u8(m), 4);
    return vget_lane_u64(vreinterpret_u64_u8(nib), 0) & LANE_BITS;
}

static inline size_t lane_of(uint64_t set)
{
    return (size_t)__builtin_ctzll(set) >> 2;
}

/* Healthy bytes of the block at i as 0xff / 0x00. */
static inline uint8x16_t health16(const uint8_t *healthy, size_t i)
{
    const uint8x16_t h = vld1q_u8(healthy + i);
    return vtstq_u8(h, h);
}

/* Eight health bytes widened to four vectors of two 64-bit lane masks. */
static inline void health8(const uint8_t *healthy, uint64x2_t ok[4])
{
    const uint8x8_t h = vld1_u8(healthy);
    const int16x8_t w = vmovl_s8(vreinterpret_s8_u8(vtst_u8(h, h)));
    const int32x4_t lo = vmovl_s16(vget_low_s16(w)), hi = vmovl_s16(vget_high_s16(w));
    ok[0] = vreinterpretq_u64_s64(vmovl_s32(vget_low_s32(lo)));
    ok[1] = vreinterpretq_u64_s64(vmovl_s32(vget_high_s32(lo)));
    ok[2] = vreinterpretq_u64_s64(vmovl_s32(vget_low_s32(hi)));
    ok[3] = vreinterpretq_u64_s64(vmovl_s32(vget_high_s32(hi)));
}

/* Whether any lane of the block at i is interesting (rtt <= T or id ==
 * self, health aside); the hot loop: two loads, two compares, two ORs per
 * pair of entries. */
static inline int block_any(const uint64_t *ids, const uint64_t *rtt, size_t i, uint64x2_t vthr,
                            uint64x2_t vself)
{
    uint64x2_t acc = vdupq_n_u64(0);
    _Pragma("GCC unroll 8")
    for (int j = 0; j < VECS; j++) {
        const size_t o = i + 2 * (size_t)j;
        acc = vorrq_u64(acc, vorrq_u64(vcleq_u64(load(rtt + o), vthr),
                                       vceqq_u64(load(ids + o), vself)));
    }
    return vmaxvq_u32(vreinterpretq_u32_u64(acc)) != 0;
}

/* The healthy interesting lanes of the block at i, as a lane set. */
static inline uint64_t block_cand(const uint64_t *ids, const uint64_t *rtt,
                                  const uint8_t *healthy, size_t i, uint64x2_t vthr,
                                  uint64x2_t vself)
{
    uint64x2_t c[VECS];
    _Pragma("GCC unroll 8")
    for (int j = 0; j < VECS; j++) {
        const size_t o = i + 2 * (size_t)j;
        c[j] = vorrq_u64(vcleq_u64(load(rtt + o), vthr), vceqq_u64(load(ids + o), vself));
    }
    return lane_set(vandq_u8(narrow16(c), health16(healthy, i)));
}

/*
 * Order-free scan of [i, n): per lane, the (rtt, id) minimum of the healthy
 * entries it sees, with self at its measured rtt; whether self was seen
 * healthy is kept aside and offered at rtt 0 at the end (a minimum does not
 * mind the same id offered twice).  Four independent lane pairs per
 * iteration, so the compare-select chains overlap.
 */
static void scan_v3(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t i,
                    size_t n, uint64_t self_id, struct netelect__best *b)
{
    const uint64x2_t vself = vdupq_n_u64(self_id), top = vdupq_n_u64(UINT64_MAX);
    uint64x2_t br[4] = {top, top, top, top}, bi[4] = {top, top, top, top};
    uint64x2_t seen[4], self = vdupq_n_u64(0);
    for (int j = 0; j < 4; j++)
        seen[j] = vdupq_n_u64(0);
    for (; i + 8 <= n; i += 8) {
        uint64x2_t ok[4];
        health8(healthy + i, ok);
        _Pragma("GCC unroll 4")
        for (int j = 0; j < 4; j++) {
            const size_t o = i + 2 * (size_t)j;
            const uint64x2_t r = load(rtt + o), d = load(ids + o);
            /* (r, d) < (br, bi): the 128-bit compare on the halves. */
            const uint64x2_t lt = vandq_u64(ok[j], vcgtq_u64(br[j], r));
            const uint64x2_t eqlt =
                vandq_u64(vandq_u64(ok[j], vceqq_u64(r, br[j])), vcgtq_u64(bi[j], d));
            br[j] = vbslq_u64(lt, r, br[j]);
            bi[j] = vbslq_u64(vorrq_u64(lt, eqlt), d, bi[j]);
            seen[j] = vorrq_u64(seen[j], ok[j]);
            self = vorrq_u64(self, vandq_u64(ok[j], vceqq_u64(d, vself)));
        }
    }
    /* A lane that never saw a healthy entry holds only the sentinel. */
    for (int j = 0; j < 4; j++) {
        if (vgetq_lane_u64(seen[j], 0))
            netelect__best_offer(b, vgetq_lane_u64(br[j], 0), vgetq_lane_u64(bi[j], 0));
        if (vgetq_lane_u64(seen[j], 1))
            netelect__best_offer(b, vgetq_lane_u64(br[j], 1), vgetq_lane_u64(bi[j], 1));
    }
    for (; i < n; i++)
        netelect__best_offer_idx(b, ids, rtt, healthy, i, self_id);
    if (vmaxvq_u32(vreinterpretq_u32_u64(self)))
        netelect__best_offer(b, 0, self_id);
}

static struct netelect_result __attribute__((noinline))
elect_simd(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
           uint64_t self_id)
{
    struct netelect__best b;
    netelect__best_init(&b);
    netelect__best_seed(&b, ids, rtt, healthy, n, self_id);
    const uint64x2_t vself = vdupq_n_u64(self_id);
    uint64x2_t vthr = vdupq_n_u64(b.rtt);
    int heavy = 0;
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK) {
        if (__builtin_expect(!block_any(ids, rtt, i, vthr, vself), 1))
            continue;
        uint64_t cand = block_cand(ids, rtt, healthy, i, vthr, vself);
        /* Many candidates block after block: the order (descending rtt,
         * say) defeats the threshold, so stop filtering. */
        if (__builtin_popcountll(cand) > 2 && ++heavy > HEAVY_LIMIT) {
            scan_v3(ids, rtt, healthy, i, n, self_id, &b);
            return netelect__best_result(&b, self_id);
        }
        for (; cand; cand &= cand - 1)
            netelect__best_offer_idx(&b, ids, rtt, healthy, i + lane_of(cand), self_id);
        vthr = vdupq_n_u64(b.rtt);
    }
    for (; i < n; i++)
        netelect__best_offer_idx(&b, ids, rtt, healthy, i, self_id);
    return netelect__best_result(&b, self_id);
}

/* Small n takes the scalar loop before any vector state is set up. */
struct netelect_result netelect__elect_neon(const uint64_t *ids, const uint64_t *rtt,
                                            const uint8_t *healthy, size_t n, uint64_t self_id)
{
    if (n < SMALL_N)
        return netelect__elect_small(ids, rtt, healthy, n, self_id);
    return elect_simd(ids, rtt, healthy, n, self_id);
}

/* Lane classes of the bound: 16 vector accumulators of 2 lanes. */
enum { CLASSES = 32, CVECS = CLASSES / 2 };
_Static_assert(CLASSES >= NETELECT__TOPK_BUF_MAX, "the bound needs a class per buffered key");

/*
 * The k-th smallest of CLASSES lane-class minima of [s, n) (class = index
 * mod CLASSES from s; core/kernel.h, netelect__kth_of_mins): an order-free
 * bound every one of the true top k is within.
 */
static uint64_t suffix_bound(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t s, size_t n, uint64_t self_id, size_t k)
{
    const uint64x2_t vself = vdupq_n_u64(self_id);
    uint64x2_t acc[CVECS];
    for (int j = 0; j < CVECS; j++)
        acc[j] = vdupq_n_u64(UINT64_MAX);
    size_t i = s;
    for (; i + CLASSES <= n; i += CLASSES)
        for (int g = 0; g < CLASSES / 8; g++) {
            uint64x2_t ok[4];
            health8(healthy + i + 8 * (size_t)g, ok);
            _Pragma("GCC unroll 4")
            for (int q = 0; q < 4; q++) {
                const int j = 4 * g + q;
                const size_t o = i + 2 * (size_t)j;
                /* self at 0 (BIC clears its rtt), unhealthy at MAX (ORN). */
                uint64x2_t r = vbicq_u64(load(rtt + o), vceqq_u64(load(ids + o), vself));
                r = vornq_u64(r, ok[q]);
                acc[j] = vbslq_u64(vcgtq_u64(acc[j], r), r, acc[j]);
            }
        }
    uint64_t mins[CLASSES];
    for (int j = 0; j < CVECS; j++) {
        mins[2 * j] = vgetq_lane_u64(acc[j], 0);
        mins[2 * j + 1] = vgetq_lane_u64(acc[j], 1);
    }
    netelect__class_mins_tail(mins, CLASSES, ids, rtt, healthy, s, i, n, self_id);
    return netelect__kth_of_mins(mins, CLASSES, k);
}

static size_t __attribute__((noinline))
topk_simd(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
          uint64_t self_id, size_t k, uint64_t *out_ids)
{
    uint64_t br[NETELECT__TOPK_BUF_MAX], bi[NETELECT__TOPK_BUF_MAX];
    struct netelect__topbuf t = {0, k, br, bi};
    const uint64x2_t vself = vdupq_n_u64(self_id);
    uint64_t thr = UINT64_MAX;
    uint64x2_t vthr = vdupq_n_u64(thr);
    int bounded = 0;
    size_t i = 0, inserts = 0;
    for (; i + BLOCK <= n; i += BLOCK) {
        if (__builtin_expect(!block_any(ids, rtt, i, vthr, vself), 1))
            continue;
        uint64_t cand;
        if (t.len == k) {
            /* Exact key test against the k-th: (rtt, id) < (wr, wi). */
            const uint64x2_t wr = vdupq_n_u64(t.r[k - 1]), wi = vdupq_n_u64(t.id[k - 1]);
            uint64x2_t c[VECS];
            _Pragma("GCC unroll 8")
            for (int j = 0; j < VECS; j++) {
                const size_t o = i + 2 * (size_t)j;
                const uint64x2_t r = load(rtt + o), d = load(ids + o);
                c[j] = vorrq_u64(vorrq_u64(vcgtq_u64(wr, r),
                                           vandq_u64(vceqq_u64(r, wr), vcgtq_u64(wi, d))),
                                 vceqq_u64(d, vself));
            }
            cand = lane_set(vandq_u8(narrow16(c), health16(healthy, i)));
        } else {
            cand = block_cand(ids, rtt, healthy, i, vthr, vself);
        }
        inserts += (size_t)__builtin_popcountll(cand);
        for (; cand; cand &= cand - 1)
            netelect__topbuf_offer_idx(&t, ids, rtt, healthy, i + lane_of(cand), self_id);
        if (t.len == k && t.r[k - 1] < thr)
            thr = t.r[k - 1];
        /* As in the x86 units: far more inserts than random order's
         * k ln(i/k) means the order works against the threshold; the first
         * block is allowance, not evidence. */
        if (!bounded && inserts > 8 * k + BLOCK + i / 64 && i + BLOCK < n) {
            const uint64_t bound = suffix_bound(ids, rtt, healthy, i + BLOCK, n, self_id, k);
            thr = bound < thr ? bound : thr;
            bounded = 1;
        }
        vthr = vdupq_n_u64(thr);
    }
    return netelect__topbuf_finish(&t, ids, rtt, healthy, i, n, self_id, thr, out_ids);
}

size_t netelect__topk_neon(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                           size_t n, uint64_t self_id, size_t k, uint64_t *out_ids)
{
    return netelect__topk_entry(ids, rtt, healthy, n, self_id, k, out_ids, netelect__rank_neon,
                                2 * BLOCK, topk_simd);
}

/*
 * Rank: the radix passes are scatters, which vectors do not help (the x86
 * units keep the portable rank for that reason), but pass 1 is a pure
 * reduction over every entry: candidate count, measured count, min and max
 * measured rtt, OR and AND of ids.  Here it runs on lane pairs, the 64-bit
 * min and max again as compare + bit-select, and the counts as lane
 * subtractions of all-ones masks; the passes are then the portable ones
 * (netelect__rank_scanned), so the order is the same by construction.
 */
static void scan_neon(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy, size_t n,
                      uint64_t self_id, struct netelect__rank_scan *sc)
{
    const uint64x2_t vself = vdupq_n_u64(self_id), unk = vdupq_n_u64(NETELECT_RTT_UNKNOWN);
    const uint64x2_t zero = vdupq_n_u64(0), ones = vdupq_n_u64(UINT64_MAX);
    uint64x2_t m[2] = {zero, zero}, meas[2] = {zero, zero}, mn[2] = {ones, ones},
               mx[2] = {zero, zero}, ior[2] = {zero, zero}, iand[2] = {ones, ones};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64x2_t hm[4];
        health8(healthy + i, hm);
        _Pragma("GCC unroll 4")
        for (int j = 0; j < 4; j++) {
            const size_t o = i + 2 * (size_t)j;
            const int a = j & 1; /* two accumulator sets: shorter chains */
            const uint64x2_t id = load(ids + o);
            const uint64x2_t r = vbicq_u64(load(rtt + o), vceqq_u64(id, vself));
            const uint64x2_t vm = vbicq_u64(hm[j], vceqq_u64(r, unk));
            m[a] = vsubq_u64(m[a], hm[j]);
            meas[a] = vsubq_u64(meas[a], vm);
            ior[a] = vorrq_u64(ior[a], vandq_u64(id, hm[j]));
            iand[a] = vandq_u64(iand[a], vornq_u64(id, hm[j]));
            const uint64x2_t lo = vornq_u64(r, vm), hi = vandq_u64(r, vm);
            mn[a] = vbslq_u64(vcgtq_u64(mn[a], lo), lo, mn[a]);
            mx[a] = vbslq_u64(vcgtq_u64(hi, mx[a]), hi, mx[a]);
        }
    }
    mn[0] = vbslq_u64(vcgtq_u64(mn[0], mn[1]), mn[1], mn[0]);
    mx[0] = vbslq_u64(vcgtq_u64(mx[1], mx[0]), mx[1], mx[0]);
    const uint64x2_t vm_ = vaddq_u64(m[0], m[1]), vmeas = vaddq_u64(meas[0], meas[1]);
    const uint64x2_t vior = vorrq_u64(ior[0], ior[1]), viand = vandq_u64(iand[0], iand[1]);
    size_t cnt = (size_t)(vgetq_lane_u64(vm_, 0) + vgetq_lane_u64(vm_, 1));
    size_t measured = (size_t)(vgetq_lane_u64(vmeas, 0) + vgetq_lane_u64(vmeas, 1));
    uint64_t lo0 = vgetq_lane_u64(mn[0], 0), lo1 = vgetq_lane_u64(mn[0], 1);
    uint64_t hi0 = vgetq_lane_u64(mx[0], 0), hi1 = vgetq_lane_u64(mx[0], 1);
    uint64_t lo = lo0 < lo1 ? lo0 : lo1, hi = hi0 > hi1 ? hi0 : hi1;
    uint64_t id_or = vgetq_lane_u64(vior, 0) | vgetq_lane_u64(vior, 1);
    uint64_t id_and = vgetq_lane_u64(viand, 0) & vgetq_lane_u64(viand, 1);
    for (; i < n; i++) { /* the same step as core/scalar.c's scan_input */
        const uint64_t id = ids[i], r = id == self_id ? 0 : rtt[i];
        const uint64_t hmask = -(uint64_t)(healthy[i] != 0);
        const uint64_t vmask = hmask & -(uint64_t)(r != NETELECT_RTT_UNKNOWN);
        cnt -= hmask;
        measured -= vmask;
        id_or |= id & hmask;
        id_and &= id | ~hmask;
        const uint64_t l = r | ~vmask, h = r & vmask;
        lo = l < lo ? l : lo;
        hi = h > hi ? h : hi;
    }
    sc->m = cnt;
    sc->measured = measured;
    sc->mn = measured ? lo : 0;
    sc->mx = hi;
    sc->id_or = id_or;
    sc->id_and = id_and;
}

size_t netelect__rank_neon(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                           size_t n, uint64_t self_id, uint64_t *out_ids)
{
    if (n <= SMALL_N) /* rank_scalar's insertion sort, with no scan at all */
        return netelect__rank_scalar(ids, rtt, healthy, n, self_id, out_ids);
    struct netelect__rank_scan sc;
    scan_neon(ids, rtt, healthy, n, self_id, &sc);
    return netelect__rank_scanned(ids, rtt, healthy, n, self_id, out_ids, &sc);
}
