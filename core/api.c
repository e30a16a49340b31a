/* SPDX-License-Identifier: MIT */
/* Public entry points: dispatch, the callback form, versions and errors. */
#include <errno.h>
#include <string.h>

#include "config.h"
#include "core/dispatch.h"
#include "core/kernel.h"

/*
 * Below this n the public elect runs the scalar loop itself: every table's
 * elect takes that same loop below its own vector threshold (avx512 24,
 * avx2 32), so only the table load and the indirect call are saved.
 */
enum { PUBLIC_SMALL_N = 24 };

/*
 * Below this n every table's rank is the same insertion sort
 * (netelect__rank_small: scalar and neon up to 32 entries, avx512 up to
 * 12), so the public rank runs it itself, as elect does its loop.
 */
enum { PUBLIC_RANK_SMALL = 12 };

NETELECT_API struct netelect_result netelect_elect(const uint64_t *ids, const uint64_t *rtt_ns,
                                                   const uint8_t *healthy, size_t n,
                                                   uint64_t self_id)
{
    /*
     * A failover check usually asks about a handful of replicas, and there
     * the table load and the indirect call cost as much as the election.
     * Inlined here, the loop costs less than that (n = 3: 82 instructions
     * per call in callgrind instead of 110, 3.8 ns instead of 5.8).
     */
    if (n < PUBLIC_SMALL_N)
        return netelect__elect_small(ids, rtt_ns, healthy, n, self_id);
    return netelect__kernels_get()->elect(ids, rtt_ns, healthy, n, self_id);
}

NETELECT_API size_t netelect_rank(const uint64_t *ids, const uint64_t *rtt_ns,
                                  const uint8_t *healthy, size_t n, uint64_t self_id,
                                  uint64_t *out_ids)
{
    if (n <= PUBLIC_RANK_SMALL)
        return netelect__rank_small(ids, rtt_ns, healthy, n, self_id, out_ids);
    return netelect__kernels_get()->rank(ids, rtt_ns, healthy, n, self_id, out_ids);
}

NETELECT_API size_t netelect_topk(const uint64_t *ids, const uint64_t *rtt_ns,
                                  const uint8_t *healthy, size_t n, uint64_t self_id, size_t k,
                                  uint64_t *out_ids)
{
    return netelect__kernels_get()->topk(ids, rtt_ns, healthy, n, self_id, k, out_ids);
}

/*
 * The callback form streams: one key per healthy entry, kept only if it
 * beats the best so far, so it needs no allocation and calls each lookup at
 * most once per entry (health first, so RTT is never asked for a node that
 * cannot win).
 */
NETELECT_API struct netelect_result netelect_elect_cb(const uint64_t *replica_set, size_t n,
                                                      uint64_t self_id, netelect_rtt_fn rtt,
                                                      netelect_health_fn health, void *ctx)
{
    struct netelect_result r = {NETELECT_NO_ELIGIBLE, 0};
    uint64_t best_rtt = 0, best_id = 0;
    int found = 0;

    for (size_t i = 0; i < n; i++) {
        const uint64_t id = replica_set[i];
        if (health && !health(ctx, id))
            continue;
        const uint64_t d = id == self_id ? 0 : rtt ? rtt(ctx, id) : NETELECT_RTT_UNKNOWN;
        if (!found || d < best_rtt || (d == best_rtt && id < best_id)) {
            best_rtt = d;
            best_id = id;
            found = 1;
        }
    }
    if (found) {
        r.winner = best_id;
        r.outcome = best_id == self_id ? NETELECT_SELF_WINS : NETELECT_PEER_WINS;
    }
    return r;
}

NETELECT_API uint64_t netelect_rtt_from_timespec(const struct timespec *ts)
{
    if (!ts)
        return NETELECT_RTT_UNKNOWN;
    if (ts->tv_sec < 0 || (ts->tv_sec == 0 && ts->tv_nsec <= 0))
        return 0;
    __extension__ typedef unsigned __int128 u128;
    u128 ns = (u128)(uint64_t)ts->tv_sec * 1000000000u;
    if (ts->tv_nsec > 0)
        ns += (uint64_t)ts->tv_nsec;
    return ns >= NETELECT_RTT_MAX_MEASURED ? NETELECT_RTT_MAX_MEASURED : (uint64_t)ns;
}

NETELECT_API const char *netelect_version(void)
{
    return NETELECT_VERSION_STRING;
}

NETELECT_API unsigned netelect_version_number(void)
{
    return NETELECT_VERSION_NUMBER;
}

NETELECT_API const char *netelect_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case NETELECT_EVERSION:
        return "segment has an incompatible ABI version";
    case NETELECT_ECORRUPT:
        return "segment is corrupt or not a netelect segment";
    case NETELECT_ESTALE:
        return "agent gone for longer than the staleness limit";
    case NETELECT_ENOCHAN:
        return "no such channel";
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        /* strerrordesc_np: thread-safe, locale-free, NULL when unknown. */
        const char *s = strerrordesc_np(-err);
        if (s)
            return s;
    }
    return "unknown error";
}
