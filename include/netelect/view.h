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
 * netelect_strerror().  Every function may be called from any number of
 * threads on the same handle (except netelect_view_close()).  When the
 * agent restarts or moves the view to a larger segment, the handle follows
 * by itself (threads keep electing meanwhile).  A forked child must open
 * its own handle.  Protocol and guarantees: shm/README.md.
 *
 * Growing structs.  struct netelect_view_status and struct netelect_view_opts
 * start with `size`, which the caller sets to sizeof the struct as its header
 * declares it (`{.size = sizeof(struct netelect_view_status)}`).  Fields are
 * only ever appended, and the library reads and writes only the first
 * min(size, its own sizeof) bytes, so a program built against an older
 * header runs against a newer library and the reverse:
 *  - netelect_view_status() fills the bytes both know, zeroes the caller's
 *    bytes past its own struct, and stores in `size` how many bytes it
 *    filled (fields at or past that offset are unknown to this library);
 *  - netelect_view_open_opts() takes the fields both know; a field past its
 *    own struct that is not zero (an option this library does not have)
 *    is refused with -E2BIG, never silently ignored.
 * A size below 8 (in particular 0: `size` never set) is -EINVAL.
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

/** The agent's state as its segment records it (netelect_view_status.state). */
enum netelect_agent_state {
    NETELECT_AGENT_INIT = 0,      /**< the segment is still being built */
    NETELECT_AGENT_LIVE = 1,      /**< an agent owns the view and publishes it */
    NETELECT_AGENT_ABANDONED = 2, /**< the agent exited cleanly; the data is frozen */
    NETELECT_AGENT_MOVED = 3,     /**< the agent moved to a larger segment under the same name */
    NETELECT_AGENT_STALLED = 4,   /**< the agent lives but cannot publish; the data is frozen */
};

/**
 * The segment's identity and the agent's liveness, as the reader sees them.
 * Set `size` before the call (see "Growing structs" above).
 */
struct netelect_view_status {
    uint32_t size;            /**< in: sizeof the caller's struct; out: bytes filled */
    uint32_t reserved0;       /**< written as 0 */
    uint64_t generation;      /**< generation of the current version */
    uint64_t self_id;         /**< the agent's own node id */
    uint64_t publish_ns;      /**< agent CLOCK_MONOTONIC of the current version */
    uint64_t heartbeat_seq;   /**< advances every heartbeat period while the agent lives */
    uint64_t heartbeat_age_ns;/**< age of the agent's last heartbeat (see clock_shared) */
    uint64_t forced_reuse;    /**< slots the agent reused under a stuck reader */
    uint32_t n_nodes, n_chans;
    int32_t agent_pid;        /**< diagnostics only */
    uint32_t state;           /**< enum netelect_agent_state */
    uint8_t incarnation[16];  /**< random per agent start */
    uint16_t abi_major, abi_minor;
    /* This handle's own counters and the segment's shape. */
    uint32_t slot_count;      /**< K, versions the agent keeps */
    uint32_t max_nodes, max_chans, max_members; /**< capacities of this segment */
    uint32_t registered;      /**< 1 if this process is in the reader registry */
    uint32_t stale;           /**< 1 while elections return NETELECT_ESTALE */
    uint64_t heartbeat_period_ns; /**< the agent's heartbeat period */
    uint64_t retries;         /**< reads of this handle that a writer lapped */
    uint64_t reattaches;      /**< mappings this handle replaced (agent restarts, growth) */
    uint64_t pinned_waits;    /**< publishes that skipped a slot a live reader was on */
    /**
     * Agent CLOCK_MONOTONIC of its last heartbeat.  Only comparable with a
     * clock on the same host and time namespace (a restarted agent judges
     * its predecessor's view by it); readers should use heartbeat_age_ns.
     */
    uint64_t heartbeat_mono_ns;
    /**
     * 1 while the agent lives: its last heartbeat or publish, on its own
     * CLOCK_MONOTONIC, is at most max(3 heartbeat periods, 300 ms) old.
     * Where this process may read the agent's lock file (root, the agent
     * user) the lock decides once a beat is late: free, the agent died
     * with its last beat; held, a slow agent counts as hung only after
     * max(10 periods, 1 s).  0 once it exited (NETELECT_AGENT_ABANDONED,
     * at once), was killed, hangs, or cannot publish
     * (NETELECT_AGENT_STALLED).
     * The same for every reader, whenever it attached.  Elections answer
     * from the last version for fail_static_ns after the agent was last
     * known alive, then return NETELECT_ESTALE.
     */
    uint32_t writer_alive;
    /**
     * 1 if the agent's clock is this process's (same time namespace), so
     * heartbeat_age_ns is its heartbeat's real age; 0: another namespace or
     * an older agent, heartbeat_age_ns is this handle's time since the
     * heartbeat last moved, and the fail-static window starts when this
     * handle first saw the agent gone.
     */
    uint32_t clock_shared;
    /* New fields go here, at the end (see "Growing structs" above). */
};

/**
 * Attaches to a segment.  `name` NULL means "netelect", i.e.
 * /dev/shm/netelect; a name with a '/' is taken as a path.
 * @return 0; -ENOENT no segment; -EACCES/-EPERM owner or mode refused;
 *         NETELECT_EVERSION incompatible ABI; NETELECT_ECORRUPT validation
 *         failed; -EAGAIN segment still initialising; -ENOMEM.
 */
NETELECT_API int netelect_view_open(const char *name, struct netelect_view **out);

/**
 * Options for netelect_view_open_opts(): zero-initialise, set `size`, then
 * the fields wanted (`{.size = sizeof(struct netelect_view_opts), ...}`).
 */
struct netelect_view_opts {
    uint32_t size;      /**< sizeof the caller's struct (see "Growing structs") */
    uint32_t reserved0; /**< must be 0 */
    /**
     * How long elections keep answering from the last version once the
     * agent is gone (see netelect_view_status.writer_alive: counted from
     * its clean exit, or from max(3 x heartbeat period, 300 ms) after its
     * last heartbeat, on the agent's own clock) before they return
     * NETELECT_ESTALE.  0: 2 s.  UINT64_MAX: forever.
     */
    uint64_t fail_static_ns;
    /**
     * The uid that must own (have published) the segment, if
     * expect_uid_set is non-zero.  Otherwise the reader trusts only
     * segments owned by root, by the agent user compiled into the library
     * (meson option agent_user, default "netelect", if that user exists)
     * or by its own euid.  The check is made on the open file, at attach
     * and at every reattach; a segment of any other owner is refused with
     * -EPERM, so an unprivileged local user cannot publish a view this
     * reader acts on.  The trust model: shm/README.md, "Trust".
     */
    uint32_t expect_uid;
    uint32_t expect_uid_set;
    /* New fields go here, at the end (see "Growing structs" above). */
};
/**
 * netelect_view_open() with options; `opts` may be NULL.  Same returns, and
 * -EINVAL for opts->size below 8 or a non-zero reserved0, -E2BIG for an
 * option past this library's struct that is set.
 */
NETELECT_API int netelect_view_open_opts(const char *name, const struct netelect_view_opts *opts,
                                         struct netelect_view **out);
/** Detaches.  No other thread may use `v` during or after the call. */
NETELECT_API void netelect_view_close(struct netelect_view *v);

/**
 * Elects the leader of `channel` over the current version.  Replicas that
 * are not in the agent's node table or are unhealthy are not candidates.
 * A thread asking the same question on an unchanged version is answered
 * from its own cache (one load of shared memory).
 * @return 0; -EINVAL NULL argument or a name not 1..255 bytes;
 *         NETELECT_ENOCHAN no such channel in the current version (its own
 *         code, so it never reads as -ENOENT "no segment" from
 *         netelect_view_open()); NETELECT_ESTALE agent gone past the staleness
 *         limit; -EAGAIN retries exhausted (a writer lapped the reader every
 *         time); NETELECT_ECORRUPT the segment's content is inconsistent.
 */
NETELECT_API int netelect_view_elect(struct netelect_view *v, const char *channel, uint64_t self_id,
                        struct netelect_result *out);
/**
 * netelect_view_elect() that also returns the generation the answer was
 * computed from: while netelect_view_generation(v) returns the same value,
 * the cached answer is still the answer (the cheap "is my cached leader
 * still valid" check: one load).
 */
NETELECT_API int netelect_view_elect_gen(struct netelect_view *v, const char *channel,
                                         uint64_t self_id, struct netelect_result *out,
                                         uint64_t *generation);
/**
 * The failover order of `channel`: up to `cap` ids to `out_ids`, the total
 * number of candidates to `*count` (which may exceed cap).
 * @return as netelect_view_elect().
 */
NETELECT_API int netelect_view_rank(struct netelect_view *v, const char *channel, uint64_t self_id,
                       uint64_t *out_ids, size_t cap, size_t *count);
/**
 * Changes iff a new version was published (one load, no lock).  Generations
 * only grow, also across agent restarts.  0 for a NULL handle.
 */
NETELECT_API uint64_t netelect_view_generation(struct netelect_view *v);
/**
 * Blocks until the published generation differs from `last_generation`,
 * the agent is gone, or `timeout_ns` (UINT64_MAX: no limit) passed.  No
 * polling: the thread sleeps on a futex in the segment and the agent wakes
 * it when it publishes, exits or moves the view (it looks for waiters with
 * one fcntl() per publish, so publishing stays cheap when nobody waits).
 * A dead agent wakes nobody, so while the agent lives and is silent the
 * thread also wakes once per max(3 heartbeat periods, 300 ms) to see that
 * it still beats.  A publish wakes at most 256 waiting threads on a host
 * (any reader may wait; waking costs the agent per thread): more than that
 * see the change at that liveness wake-up instead.  Across an agent
 * restart or a move to a larger segment
 * the handle follows the path and the new generation ends the wait.
 * A signal handler that runs in this thread ends the wait with -EINTR
 * (whatever SA_RESTART says); call again.  Threads may wait on one
 * handle concurrently (not during netelect_view_close()).
 * @return 0 the generation changed (read it with netelect_view_generation());
 *         -EOWNERDEAD the agent is gone (exited, killed, hung, or cannot
 *         publish), also at once if it already was; -ETIMEDOUT; -EINTR;
 *         -EINVAL; -EOPNOTSUPP a handle without a file; or a read error as
 *         netelect_view_status().
 */
NETELECT_API int netelect_view_wait(struct netelect_view *v, uint64_t last_generation,
                                    uint64_t timeout_ns);
/**
 * A descriptor for the caller's own poll/epoll loop: readable (POLLIN)
 * when the agent may have published, exited, died or been replaced, so an
 * event loop learns of changes without a thread and without polling.  It
 * is an epoll descriptor over kernel events: an inotify watch on the
 * segment file (after each publish the agent touches the file's times,
 * only while a descriptor holder exists; a restart renames a new file
 * over it) and a pidfd of the agent where it runs in our pid namespace
 * (readable when it exits or is killed: no heartbeat timeout needed).  A
 * hung agent, or one in another pid namespace that is killed, is not
 * reported by the descriptor: poll with a timeout of the fail-static
 * window if that matters.  Events may be spurious; none is lost.
 * Owned by the handle (closed by netelect_view_close(); do not close it);
 * the same descriptor on every call.
 * Usage: poll it; when readable, call netelect_view_fd_rearm(), then read
 * the view (netelect_view_generation(), _elect(), _status()).
 * @return the descriptor, or -errno (e.g. -EMFILE: inotify instances are
 *         limited per user, fs.inotify.max_user_instances).
 */
NETELECT_API int netelect_view_fd(struct netelect_view *v);
/**
 * Consumes what made the descriptor readable and points it at the current
 * segment (after an agent restart, the new file and the new agent).  Call
 * it before reading the view, so that nothing published meanwhile is
 * missed.  One thread at a time per handle.
 * @return 0, -EBADF netelect_view_fd() was not called, or -errno.
 */
NETELECT_API int netelect_view_fd_rearm(struct netelect_view *v);
/** The agent's node id (usable as self_id). */
NETELECT_API uint64_t netelect_view_self(struct netelect_view *v);

/**
 * Fills the first out->size bytes of `out` (see "Growing structs" above).
 * @return 0, -EINVAL out->size below 8, or an error as netelect_view_open().
 */
NETELECT_API int netelect_view_status(struct netelect_view *v, struct netelect_view_status *out);
/** One node by id. @return 0, -ENOENT unknown node, -EINVAL, or a read error. */
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

/*
 * A consistent multi-query read section.  netelect_view_read() calls `fn`
 * with a snapshot of one version; every netelect_snap_* answer inside `fn`
 * comes from that version.  If the agent lapped the reader, `fn` is called
 * again (so it must only write to memory it owns and tolerate being run
 * twice); answers are only meaningful once netelect_view_read() returns 0
 * (or fn's own non-zero value).  Inside `fn` an answer may be garbage from a
 * version being overwritten: never act on it before the return.
 */
struct netelect_snap;
/**
 * @return fn's return value (0 or positive recommended); -EAGAIN retries
 *         exhausted; NETELECT_ESTALE; NETELECT_ECORRUPT; -EINVAL.
 */
NETELECT_API int netelect_view_read(struct netelect_view *v,
                                    int (*fn)(const struct netelect_snap *s, void *ctx),
                                    void *ctx);
/** The generation of the snapshot. */
NETELECT_API uint64_t netelect_snap_generation(const struct netelect_snap *s);
/** The agent's publish time (CLOCK_MONOTONIC ns) of the snapshot. */
NETELECT_API uint64_t netelect_snap_publish_ns(const struct netelect_snap *s);
/** As netelect_view_elect() (NETELECT_ENOCHAN for an unknown channel), inside a read section. */
NETELECT_API int netelect_snap_elect(const struct netelect_snap *s, const char *channel,
                                     uint64_t self_id, struct netelect_result *out);
/** As netelect_view_rank(), inside a read section. */
NETELECT_API int netelect_snap_rank(const struct netelect_snap *s, const char *channel,
                                    uint64_t self_id, uint64_t *out_ids, size_t cap,
                                    size_t *count);
/** As netelect_view_node(), inside a read section. */
NETELECT_API int netelect_snap_node(const struct netelect_snap *s, uint64_t id,
                                    struct netelect_node_info *out);
/**
 * The members of `channel`, copied: up to `cap` ids, their RTTs and health
 * (any output may be NULL), the member count to `*count`.
 * @return 0; NETELECT_ENOCHAN no such channel; -EINVAL; or a read error.
 */
NETELECT_API int netelect_snap_members(const struct netelect_snap *s, const char *channel,
                                       uint64_t *ids, uint64_t *rtt_ns, uint8_t *healthy,
                                       size_t cap, size_t *count);

#ifdef __cplusplus
}
#endif

#endif /* NETELECT_VIEW_H */
