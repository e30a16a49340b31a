/* SPDX-License-Identifier: MIT */
/*
 * The segment writer, used by netelectd (internal: not installed; link
 * netelect_writer_dep, the static library netelect_shm beside
 * libnetelect.so).  One writer per segment name, enforced by an OFD
 * lock the kernel drops when the writer dies.
 */
#ifndef SHM_WRITER_H
#define SHM_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct netelect_writer;
struct netelect_wnode;
struct netelect_wchan;

struct netelect_writer_config {
    const char *name;             /* NULL: "netelect" (/dev/shm/netelect) */
    mode_t mode;                  /* 0: 0644 */
    gid_t group;                  /* (gid_t)-1: leave the group alone */
    uint64_t self_id;             /* the agent's node id */
    uint32_t max_nodes;           /* initial capacities, 0: defaults; a publish */
    uint32_t max_chans;           /* that needs more moves to a larger new */
    uint32_t max_members;         /* segment, never shrinks a live one */
    uint32_t slots;               /* K, 0: 3 */
    uint64_t heartbeat_period_ns; /* 0: 100 ms; readers judge staleness by it */
    /*
     * The first version (NULL/0: an empty one).  A restarted agent passes
     * what it already knows, so that a reader that reattaches to the new
     * segment never sees a version without its channels.  Validated like a
     * publish; capacities grow to fit it.  Not kept after the call.
     */
    const struct netelect_wnode *initial_nodes;
    size_t n_initial_nodes;
    const struct netelect_wchan *initial_chans;
    size_t n_initial_chans;
};

/* One node as the agent knows it (field meanings: struct netelect_node_info). */
struct netelect_wnode {
    uint64_t id, rtt_ns, rtt_raw_ns, rtt_err_ns, last_heard_ns;
    uint8_t healthy, source;
};

/* One channel: a name and the ids of its replicas (ids need not be in nodes:
 * a replica the agent knows nothing about is published as unhealthy,
 * unmeasured).  member_down (NULL: none) holds one byte per member: non-zero
 * publishes that member unhealthy in this channel only, whatever its node's
 * health (the agent's drain of one channel). */
struct netelect_wchan {
    const char *name;
    const uint64_t *members;
    uint32_t n_members;
    const uint8_t *member_down;
};

/*
 * Creates the segment with its first version (cfg's initial snapshot, or
 * empty) already in place when it takes the name.
 * Files of other uids under the names (segment, .lock, .readers) are
 * squatters: removed when we may (root; see netelect__writer_report()),
 * else -EPERM.  Stale temporaries of ours are removed.
 * Returns 0, -EBUSY (another live writer holds the lock), -EPERM (a file not
 * ours is in the way), -EINVAL (also: a bad initial snapshot), -E2BIG,
 * -ENOMEM, -ENOSPC, or another -errno.
 */
int netelect__writer_open(const struct netelect_writer_config *cfg,
                          struct netelect_writer **out);
/* Publishes a complete new version; never touches a version readers may be on. */
int netelect__writer_publish(struct netelect_writer *w, const struct netelect_wnode *nodes,
                             size_t n_nodes, const struct netelect_wchan *chans, size_t n_chans);
/*
 * Delta publishing: a new version that differs from the current one only in
 * the measurements (rtt, raw rtt, rtt error, last heard, health, source) of
 * the `n` nodes given, each named by its id; node ids, channels and
 * memberships stay as the last full publish made them, and member_down
 * stays as that publish gave it.  The cost is proportional to what changed
 * (these nodes and their replica entries, plus what changed in the few
 * versions the reused slot missed), not to the size of the view: see
 * shm/README.md, "Delta publish".  Readers see it as any other version.
 * Returns 0; -EINVAL (NULL with n > 0, an id twice); -ENOENT (an id that is
 * not a node of the current version: publish the full view); -ESTALE (the
 * last publish failed, so the segment does not hold the view this update
 * is relative to: publish the full view); -ENOMEM.  A refused update
 * changes nothing and does not count as a failed publish.
 */
int netelect__writer_update(struct netelect_writer *w, const struct netelect_wnode *nodes,
                            size_t n);
/* Advances the heartbeat; call every heartbeat_period_ns. */
int netelect__writer_heartbeat(struct netelect_writer *w);
uint64_t netelect__writer_generation(const struct netelect_writer *w);
/*
 * A writer over caller-provided memory (page-aligned, `size` bytes, e.g. an
 * anonymous MAP_SHARED region): no files, no lock, no registry, no growth
 * (a publish that needs more capacity returns -ENOSPC; so does an initial
 * snapshot larger than the capacities).  For in-process tests (TSAN) only.
 * Returns 0, -EINVAL, -ENOSPC (too small), -ENOMEM.
 */
int netelect__writer_open_mem(const struct netelect_writer_config *cfg, void *mem, size_t size,
                              struct netelect_writer **out);
/* Failed publishes in a row after which the segment is marked STALLED. */
#define NETELECT_WRITER_STALL_AFTER 3u

/* What netelect__writer_open() cleaned up, and what went wrong since, for the
 * agent's log. */
struct netelect_writer_report {
    unsigned squatters;  /* files of other, untrusted uids removed from our names */
    uid_t squatter_uid;  /* the owner of the last one (also when refused) */
    unsigned stale_tmps; /* temporaries of a writer killed mid-creation, removed */
    bool registry_lost;  /* since: someone truncated .readers, grace periods are off */
};
void netelect__writer_report(const struct netelect_writer *w, struct netelect_writer_report *out);
/*
 * Consecutive failed publishes.  From NETELECT_WRITER_STALL_AFTER on the
 * segment is marked STALLED (readers go fail-static, then ESTALE: the view
 * they see is no longer the agent's); the next good publish marks it LIVE.
 */
unsigned netelect__writer_failures(const struct netelect_writer *w);
/* abandon: mark the segment ABANDONED (clean exit) before unmapping. */
void netelect__writer_close(struct netelect_writer *w, bool abandon);

#endif /* SHM_WRITER_H */
