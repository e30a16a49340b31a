/* SPDX-License-Identifier: MIT */
/**
 * @file netelect/view.h
 * @brief Reading the replica view that netelectd publishes in shared memory.
 *
 * Included by <netelect.h>.  The reader maps the segment read-only, takes no
 * lock, makes no system call on the read path, and validates every read (a
 * version that the agent overwrote mid-read is retried, never returned).
 *
 * Errors are negative errno values or NETELECT_E* codes, see
 * netelect_strerror().
 */
#ifndef NETELECT_VIEW_H
#define NETELECT_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "netelect.h"

#ifdef __cplusplus
extern "C" {
#endif

struct netelect_view;

/** Where a node's RTT came from. */
enum netelect_rtt_source {
    NETELECT_SRC_NONE = 0,     /**< never measured: rtt is NETELECT_RTT_UNKNOWN */
    NETELECT_SRC_PROBE = 1,    /**< netelectd's own round-trip probes */
    NETELECT_SRC_SERF = 2,     /**< a Serf (Vivaldi) estimate */
    NETELECT_SRC_OPERATOR = 3, /**< set by an operator or orchestrator */
};

/** One node of the published view. */
struct netelect_node_info {
    uint64_t id;
    uint64_t rtt_ns;        /**< smoothed RTT used by elections, or NETELECT_RTT_UNKNOWN */
    uint64_t rtt_raw_ns;    /**< last raw sample, or NETELECT_RTT_UNKNOWN */
    uint64_t rtt_err_ns;    /**< error estimate (Serf) or deviation (probe); 0 if none */
    uint64_t last_heard_ns; /**< agent CLOCK_MONOTONIC when last heard from; 0 never */
    uint8_t healthy;        /**< non-zero: healthy */
    uint8_t source;         /**< enum netelect_rtt_source */
};

/** The segment's identity and the agent's liveness, as the reader sees them. */
struct netelect_view_status {
    uint64_t generation;      /**< generation of the current version */
    uint64_t self_id;         /**< the agent's own node id */
    uint64_t publish_ns;      /**< agent CLOCK_MONOTONIC of the current version */
    uint64_t heartbeat_seq;   /**< advances every heartbeat period while the agent lives */
    uint64_t heartbeat_age_ns;/**< reader-clock time since heartbeat_seq last moved */
    uint64_t forced_reuse;    /**< slots the agent reused under a stuck reader */
    uint32_t n_nodes, n_chans;
    int32_t agent_pid;        /**< diagnostics only */
    uint32_t state;           /**< 1 live, 2 abandoned (agent exited cleanly) */
    uint8_t incarnation[16];  /**< random per agent start */
    uint16_t abi_major, abi_minor;
};

/**
 * Attaches to a segment.  `name` NULL means "netelect", i.e.
 * /dev/shm/netelect; a name with a '/' is taken as a path.
 * @return 0; -ENOENT no segment; -EACCES/-EPERM owner or mode refused;
 *         NETELECT_EVERSION incompatible ABI; NETELECT_ECORRUPT validation
 *         failed; -EAGAIN segment still initialising; -ENOMEM.
 */
NETELECT_API int netelect_view_open(const char *name, struct netelect_view **out);
NETELECT_API void netelect_view_close(struct netelect_view *v);

/**
 * Elects the leader of `channel` over the current version.
 * @return 0; -ENOENT unknown channel; NETELECT_ESTALE agent gone past the
 *         staleness limit; -EAGAIN retries exhausted (a writer lapped the
 *         reader every time); NETELECT_ECORRUPT.
 */
NETELECT_API int netelect_view_elect(struct netelect_view *v, const char *channel, uint64_t self_id,
                        struct netelect_result *out);
/**
 * The failover order of `channel`: up to `cap` ids to `out_ids`, the total
 * number of candidates to `*count` (which may exceed cap).
 * @return as netelect_view_elect().
 */
NETELECT_API int netelect_view_rank(struct netelect_view *v, const char *channel, uint64_t self_id,
                       uint64_t *out_ids, size_t cap, size_t *count);
/** Changes iff a new version was published (one load). */
NETELECT_API uint64_t netelect_view_generation(struct netelect_view *v);
/** The agent's node id (usable as self_id). */
NETELECT_API uint64_t netelect_view_self(struct netelect_view *v);

/** @return 0 or an error as netelect_view_open(). */
NETELECT_API int netelect_view_status(struct netelect_view *v, struct netelect_view_status *out);
/** One node by id. @return 0, -ENOENT unknown node, or a read error. */
NETELECT_API int netelect_view_node(struct netelect_view *v, uint64_t id, struct netelect_node_info *out);

/**
 * Calls `cb` for every node of one consistent version (retried as a whole
 * if the writer laps the reader, so `cb` may see a node twice across
 * attempts: `cb` returning non-zero stops early and that value is returned).
 */
NETELECT_API int netelect_view_foreach_node(struct netelect_view *v,
                               int (*cb)(void *ctx, const struct netelect_node_info *node),
                               void *ctx);
/** Same for channels: name and member ids. */
NETELECT_API int netelect_view_foreach_channel(struct netelect_view *v,
                                  int (*cb)(void *ctx, const char *name,
                                            const uint64_t *members, size_t n),
                                  void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* NETELECT_VIEW_H */
