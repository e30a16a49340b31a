/* SPDX-License-Identifier: MIT */
/**
 * @file netelect.h
 * @brief libnetelect: deterministic nearest-RTT leader election.
 *
 * The rule:
 *
 *  - Candidates are the replica-set entries whose health is true.
 *  - The caller's own node (`self_id`) is at RTT 0, whatever was measured
 *    for it.
 *  - A peer whose RTT was never measured (@ref NETELECT_RTT_UNKNOWN) ranks
 *    after every measured peer; it is not excluded.
 *  - Candidates are ordered by the unsigned 128-bit key `rtt << 64 | id`,
 *    ascending: lower RTT first, ties to the lower 64-bit node id.  The
 *    first is the winner.
 *
 * Duplicate ids stay separate entries (each one is a candidate).  A
 * `self_id` that is absent from the set is not a candidate.  Any `n` may be
 * 0, and array pointers may be NULL when `n` is 0.
 *
 * Saturation: RTTs are nanoseconds in a uint64_t, and UINT64_MAX is
 * reserved for "never measured".  A measurement that would be
 * >= UINT64_MAX - 1 ns (about 584 years, e.g. from converting a larger
 * duration) must be stored as UINT64_MAX - 1 so that it still ranks before
 * "unknown"; @ref netelect_rtt_from_timespec
 * does this.  The library itself never changes a value it is given.
 *
 * The library never prints, never aborts, and reports errors as negative
 * errno values (see @ref netelect_strerror).  Every function is thread-safe.
 */
#ifndef NETELECT_H
#define NETELECT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "netelect/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(NETELECT_BUILDING) && defined(__GNUC__)
#define NETELECT_API __attribute__((visibility("default")))
#else
#define NETELECT_API
#endif


/** RTT value meaning "never measured": ranks after every measured RTT. */
#define NETELECT_RTT_UNKNOWN UINT64_MAX
/** Largest RTT that counts as measured (see the saturation note above). */
#define NETELECT_RTT_MAX_MEASURED (UINT64_MAX - 1)

enum netelect_outcome {
    NETELECT_NO_ELIGIBLE = 0, /**< no healthy replica (partition, or all down) */
    NETELECT_SELF_WINS = 1,   /**< the caller is the leader */
    NETELECT_PEER_WINS = 2,   /**< a peer is the leader: see `winner` */
};

struct netelect_result {
    enum netelect_outcome outcome;
    /** self_id on SELF_WINS, the peer's id on PEER_WINS, 0 on NO_ELIGIBLE. */
    uint64_t winner;
};

/**
 * Elects the leader among `n` replicas given as parallel arrays.
 *
 * @param ids      node ids (may be NULL if n == 0)
 * @param rtt_ns   RTT from the caller to each node, ns, or NETELECT_RTT_UNKNOWN
 * @param healthy  healthy[i] != 0 means entry i is a candidate
 * @param n        number of entries
 * @param self_id  the calling node; its entries are at RTT 0
 * @return the outcome; never fails.
 */
NETELECT_API struct netelect_result netelect_elect(const uint64_t *ids, const uint64_t *rtt_ns,
                                                   const uint8_t *healthy, size_t n,
                                                   uint64_t self_id);

/**
 * Writes every candidate's id in election order (the failover order: the
 * winner first) to `out_ids`, which must have room for `n` ids.  Nothing is
 * written past the returned count.
 *
 * Memory: a radix sort needs O(n) scratch (16 to 32 bytes per candidate).
 * It comes from a buffer cached per thread and freed when the thread exits.
 * Up to 8 MiB it is always kept; up to 64 MiB (2M to 4M candidates) it is
 * kept while the thread's calls keep needing more than 8 MiB, and given
 * back by the first call that needs less; beyond 64 MiB it is allocated
 * and freed per call.  If that allocation fails, rank falls back to an
 * allocation-free O(n log n) heap sort, so it never fails.
 *
 * @return the number of candidates written (<= n).
 */
NETELECT_API size_t netelect_rank(const uint64_t *ids, const uint64_t *rtt_ns,
                                  const uint8_t *healthy, size_t n, uint64_t self_id,
                                  uint64_t *out_ids);

/**
 * Writes the first min(k, number of candidates) ids of the election order to
 * `out_ids`, which must have room for `k` ids.  A selection, not a full sort,
 * for k <= 32; a larger k ranks everything into a temporary buffer (and, if
 * that cannot be allocated, uses an allocation-free heap selection), so it
 * never fails either.
 *
 * @return the number of ids written.
 */
NETELECT_API size_t netelect_topk(const uint64_t *ids, const uint64_t *rtt_ns,
                                  const uint8_t *healthy, size_t n, uint64_t self_id, size_t k,
                                  uint64_t *out_ids);

/**
 * RTT lookup for the callback form: returns the RTT in ns from the caller to
 * `node`, or NETELECT_RTT_UNKNOWN when there is no measurement.  The value
 * returned for the caller itself is ignored (self is at RTT 0).
 */
typedef uint64_t (*netelect_rtt_fn)(void *ctx, uint64_t node);
/** Health lookup for the callback form: non-zero when `node` is alive. */
typedef int (*netelect_health_fn)(void *ctx, uint64_t node);

/**
 * The callback form: a replica set plus an RTT and a health lookup that
 * share a context pointer.  Each lookup is called at most once per entry.
 * A NULL `rtt` means every peer is unmeasured; a NULL `health` means every
 * entry is healthy.
 * @return the outcome; never fails.
 */
NETELECT_API struct netelect_result netelect_elect_cb(const uint64_t *replica_set, size_t n,
                                                      uint64_t self_id, netelect_rtt_fn rtt,
                                                      netelect_health_fn health, void *ctx);

/** Non-zero iff the caller won. */
static inline int netelect_is_self(struct netelect_result r)
{
    return r.outcome == NETELECT_SELF_WINS;
}

/**
 * Returns 1 and stores the peer's id when a peer won; returns 0 (and
 * leaves `*peer` alone) on SELF_WINS and NO_ELIGIBLE, since the caller
 * already knows its own id.
 */
static inline int netelect_peer_winner(struct netelect_result r, uint64_t *peer)
{
    if (r.outcome != NETELECT_PEER_WINS)
        return 0;
    if (peer)
        *peer = r.winner;
    return 1;
}

/**
 * Converts a measured duration into a netelect RTT in ns, saturating at
 * NETELECT_RTT_MAX_MEASURED so a huge measurement still ranks before
 * "unknown".  Negative durations become 0; NULL gives NETELECT_RTT_UNKNOWN.
 */
NETELECT_API uint64_t netelect_rtt_from_timespec(const struct timespec *ts);

/** The kernel family in use for the calling process: "scalar", "avx2", "avx512". */
NETELECT_API const char *netelect_isa(void);

/**
 * Restricts the kernels to `name` ("scalar", "avx2", "avx512") or lower, as
 * the environment variable NETELECT_ISA does at start-up.  A level the CPU
 * lacks is never used: asking for it selects the best level it has.
 * @return 0, or -EINVAL for an unknown name.
 */
NETELECT_API int netelect_set_isa(const char *name);

/** "MAJOR.MINOR.PATCH" of the library actually loaded. */
NETELECT_API const char *netelect_version(void);
/** NETELECT_VERSION_NUMBER of the library actually loaded. */
NETELECT_API unsigned netelect_version_number(void);

/*
 * netelect's own error codes, below -4096 so they never collide with a
 * negative errno.
 */
#define NETELECT_EVERSION (-4097) /**< segment has an incompatible ABI major */
#define NETELECT_ECORRUPT (-4098) /**< segment failed validation */
#define NETELECT_ESTALE (-4099)   /**< agent gone for longer than the staleness limit */
#define NETELECT_ENOCHAN (-4100)  /**< no such channel in the published view */

/**
 * Describes a value returned by this library: a negative errno or one of the
 * NETELECT_E* codes.  Never NULL; the string is static.
 */
NETELECT_API const char *netelect_strerror(int err);

#ifdef __cplusplus
}
#endif

#include "netelect/view.h"

#endif /* NETELECT_H */
