/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory layout of /dev/shm/netelect, ABI 1.0 (internal: the
 * installed API is netelect/view.h; netelect-stat style tools may include
 * this).  shm/README.md tells the protocol as a story; this file is the
 * field-by-field contract.  Every field says who writes it, who reads it and
 * with which ordering.  "W" is the one writer (netelectd, shm/writer.c),
 * "R" any reader (shm/view.c, read-only mapping).
 *
 * ABI rules: fields are only ever appended to the header (abi_minor and
 * header_size grow); any change to a record (node, chan, slot header) or to
 * the meaning of a field bumps abi_major and changes layout_desc.
 *
 * Offsets, never pointers: every position in the file is an offset from the
 * start of the file (slot_off) or of a slot (region_off), because the file is
 * mapped at a different address in every process.
 */
#ifndef SHM_LAYOUT_H
#define SHM_LAYOUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
               "cross-process atomics need lock-free 64-bit atomics");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "cross-process atomics need lock-free 32-bit atomics");
_Static_assert(sizeof(void *) == 8, "the segment is only defined for 64-bit processes");

#define NETELECT_SHM_MAGIC UINT64_C(0x5443454C4554454E) /* "NETELECT" little-endian */
#define NETELECT_SHM_ABI_MAJOR 1
#define NETELECT_SHM_ABI_MINOR 1
#define NETELECT_SHM_MAX_SLOTS 8
#define NETELECT_SHM_PAGE 4096u
#define NETELECT_SHM_LINE 64u
/* Largest file a reader agrees to map (1M nodes at K=8 is ~1 GiB). */
#define NETELECT_SHM_MAX_SEGMENT (UINT64_C(16) << 30)
/* Largest capacities: index arithmetic stays in uint32_t with room to spare. */
#define NETELECT_SHM_MAX_NODES (1u << 24)
#define NETELECT_SHM_MAX_CHANS (1u << 20)
#define NETELECT_SHM_MAX_MEMBERS (1u << 26)
#define NETELECT_SHM_MAX_NAME_BYTES (1u << 26)
/* Channel names are 1..255 bytes, no NUL. */
#define NETELECT_CHAN_NAME_MAX 255u

/* h_state values. */
enum {
    NETELECT_SHM_INIT = 0,       /* being built (never visible under the name) */
    NETELECT_SHM_LIVE = 1,       /* a writer owns it */
    NETELECT_SHM_ABANDONED = 2,  /* the writer exited cleanly; data frozen */
    NETELECT_SHM_SUPERSEDED = 3, /* the writer moved to a larger segment under the same name */
    /* The writer lives but its last NETELECT_WRITER_STALL_AFTER publishes
     * failed (a full tmpfs, a view over the hard limits): the data is
     * frozen and no longer the agent's view.  Readers treat it like
     * ABANDONED (fail-static, then ESTALE); the next good publish stores
     * LIVE again.  ABI 1.1. */
    NETELECT_SHM_STALLED = 4,
};

/*
 * Change notification (netelect_view_wait).  A waiting thread announces
 * itself with an OFD read lock on byte NETELECT_SHM_WAIT_LOCK + its tid of
 * the segment file (far past its end: no data there; read locks need only
 * the read-only descriptor readers have, and tids are < 2^22).  The writer,
 * after each publish, asks the kernel (F_OFD_GETLK over the whole range)
 * whether anyone waits, and only then bumps h_wake and wakes the futex, so
 * a publish nobody waits for costs one fcntl().  The lock is taken before
 * the waiter reads h_wake and the generation, and the writer looks after it
 * stored h_current and h_wake: either the writer sees the lock, or the
 * waiter sees the new generation (both sides pass through the kernel's lock
 * list, a full barrier).
 */
#define NETELECT_SHM_WAIT_LOCK (INT64_C(1) << 40)
#define NETELECT_SHM_WAIT_SPAN (INT64_C(1) << 22)
/* netelect_view_fd() holders announce on the next range (one byte per
 * descriptor number of their process): for them the writer also touches the
 * file's times (futimens), which inotify reports as IN_ATTRIB.  The writer
 * looks at both ranges with one F_OFD_GETLK. */
#define NETELECT_SHM_FD_LOCK (NETELECT_SHM_WAIT_LOCK + NETELECT_SHM_WAIT_SPAN)
#define NETELECT_SHM_FD_SPAN (INT64_C(1) << 22)

/* compat flags (unknown bits ignored by readers). */
#define NETELECT_SHM_COMPAT_REGISTRY 0x1u /* <name>.readers exists for this incarnation */
/* incompat flags (unknown bits refused by readers): none defined in 1.0. */
#define NETELECT_SHM_INCOMPAT_KNOWN 0x0u

/* Regions of a slot, in this order, each 64-byte aligned. */
enum {
    NETELECT_RG_NODES,     /* struct netelect_shm_node[max_nodes] */
    NETELECT_RG_NODE_TAB,  /* uint32_t[node_tab_cap]: open addressing by id, index+1, 0 empty */
    NETELECT_RG_CHANS,     /* struct netelect_shm_chan[max_chans], in publish order */
    NETELECT_RG_CHAN_TAB,  /* uint32_t[chan_tab_cap]: open addressing by name hash */
    NETELECT_RG_M_IDS,     /* uint64_t[max_members]: replica ids, channel by channel */
    NETELECT_RG_M_RTT,     /* uint64_t[max_members]: their RTT (UNKNOWN if not a node) */
    NETELECT_RG_M_HEALTHY, /* uint8_t[max_members]: 1 iff a node and healthy */
    NETELECT_RG_NAMES,     /* channel names, each zero-padded to a multiple of 8 */
    NETELECT_RG_COUNT
};

/*
 * The file header, page 0.  Lines 0-3 are the identity and layout: W writes
 * them with plain stores before the file gets its name (rename() and the
 * reader's open()+mmap() order them), never changes them afterwards, and R
 * copies them once at attach into a private struct netelect_shm_layout that
 * it validates and never re-reads (a hostile writer could change them under
 * us: TOCTOU).
 */
struct netelect_shm_hdr {
    uint64_t h_magic;          /* W once; R attach: NETELECT_SHM_MAGIC (byte order) */
    uint16_t h_abi_major;      /* W once; R attach: must equal ours */
    uint16_t h_abi_minor;      /* W once; R attach: any value accepted */
    uint32_t h_header_size;    /* W once; R attach: >= sizeof(1.0 header) */
    uint32_t h_layout_desc;    /* W once; R attach: record sizes (LMDB lock desc) */
    uint32_t h_incompat_flags; /* W once; R attach: unknown bit => refuse */
    uint32_t h_compat_flags;   /* W once; R attach: unknown bits ignored */
    uint32_t h_slot_count;     /* W once; R attach: K in [2, 8] */
    uint64_t h_segment_size;   /* W once; R attach: == fstat st_size */
    uint64_t h_slot_size;      /* W once; R attach: page multiple, >= computed layout */
    uint64_t h_slot_off[NETELECT_SHM_MAX_SLOTS]; /* W once; R attach: page-aligned, disjoint */
    uint32_t h_max_nodes;      /* W once; R attach: capacities, bound every loop and index */
    uint32_t h_max_chans;
    uint32_t h_max_members;
    uint32_t h_max_name_bytes;
    uint32_t h_node_tab_cap;   /* W once; R attach: power of two >= 2*max_nodes */
    uint32_t h_chan_tab_cap;   /* W once; R attach: power of two >= 2*max_chans */
    uint64_t h_region_off[NETELECT_RG_COUNT]; /* W once; R attach: == netelect__layout_compute */
    uint8_t h_incarnation[16]; /* W once (getrandom); R: cache keys, status */
    int32_t h_writer_pid;      /* W once; R: diagnostics only (pid namespaces) */
    uint32_t h_writer_uid;     /* W once; R: diagnostics only (fstat is the check) */
    uint64_t h_self_id;        /* W once; R: netelect_view_self() */
    uint64_t h_heartbeat_period_ns; /* W once; R: staleness limit max(3x, 300 ms) */
    uint64_t h_layout_crc;     /* W once; R attach: FNV-1a 64 of bytes [0, this field) */
    uint8_t h_pad0[8];

    /* Line 4: the only line an election reads from the header. */
    /* W: release store after the slot it names was sealed (seq even);
     * R: acquire load first thing in every read.  (generation << 8) | slot. */
    _Atomic uint64_t h_current;
    /* W: release store (LIVE before rename, ABANDONED/SUPERSEDED at the end,
     * STALLED <-> LIVE after failed / good publishes);
     * R: relaxed load beside h_current, which is on the same line so that a
     * reader learns of a clean exit or a move at no extra cache miss. */
    _Atomic uint32_t h_state;
    uint32_t h_pad1;
    uint8_t h_pad2[48];

    /* Line 5: liveness, written every heartbeat period, kept off line 4 so
     * that an idle agent's heartbeat does not invalidate the election line. */
    _Atomic uint64_t h_heartbeat_seq;     /* W: relaxed +1 per period; R: relaxed, progress only */
    /* W: relaxed, CLOCK_MONOTONIC of each heartbeat and publish;
     * R: relaxed, liveness: a reader in the writer's time namespace (see
     * h_timens) judges the writer by this time, not by when it itself
     * happened to attach. */
    _Atomic uint64_t h_heartbeat_mono_ns;
    _Atomic uint64_t h_forced_reuse;      /* W: relaxed +1 per slot reused under a live pin; R: stats */
    _Atomic uint64_t h_pinned_waits;      /* W: relaxed +1 per publish that skipped a pinned slot */
    /* W: relaxed store of CLOCK_MONOTONIC just before h_state leaves LIVE
     * (ABANDONED, SUPERSEDED, STALLED; 0 again before it returns to LIVE);
     * R: relaxed, where the fail-static window starts.  ABI 1.1. */
    _Atomic uint64_t h_gone_mono_ns;
    /* W once before rename: the inode of the writer's /proc/self/ns/time (0
     * unknown).  R: its CLOCK_MONOTONIC is ours iff this equals our own.
     * Not in the CRC (ABI 1.1 appended it in former padding). */
    uint64_t h_timens;
    /* Change notification (netelect_view_wait): W: relaxed +1 after every
     * publish that a waiter may be sleeping on, then FUTEX_WAKE; R: the
     * futex word a waiter sleeps on.  ABI 1.1. */
    _Atomic uint32_t h_wake;
    uint32_t h_pad3;
    /* W once before rename: the inode of the writer's /proc/self/ns/pid (0
     * unknown); R: h_writer_pid names the writer in our pid namespace iff
     * this equals ours (netelect_view_fd's pidfd).  ABI 1.1. */
    uint64_t h_pidns;
};

_Static_assert(offsetof(struct netelect_shm_hdr, h_magic) == 0, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_abi_major) == 8, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_abi_minor) == 10, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_header_size) == 12, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_layout_desc) == 16, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_incompat_flags) == 20, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_compat_flags) == 24, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_slot_count) == 28, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_segment_size) == 32, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_slot_size) == 40, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_slot_off) == 48, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_max_nodes) == 112, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_max_chans) == 116, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_max_members) == 120, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_max_name_bytes) == 124, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_node_tab_cap) == 128, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_chan_tab_cap) == 132, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_region_off) == 136, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_incarnation) == 200, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_writer_pid) == 216, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_writer_uid) == 220, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_self_id) == 224, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_heartbeat_period_ns) == 232, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_layout_crc) == 240, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_current) == 256, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_state) == 264, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_heartbeat_seq) == 320, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_heartbeat_mono_ns) == 328, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_forced_reuse) == 336, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_pinned_waits) == 344, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_gone_mono_ns) == 352, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_timens) == 360, "layout");
_Static_assert(offsetof(struct netelect_shm_hdr, h_wake) == 368, "layout");
_Static_assert(sizeof(struct netelect_shm_hdr) == 384, "layout");
_Static_assert(sizeof(struct netelect_shm_hdr) <= NETELECT_SHM_PAGE, "header fits page 0");

/*
 * A slot header.  h_current names a slot; the slot's contents are valid
 * for a reader iff s_seq was even before and unchanged after the reader's
 * payload reads (the latch).  W: netelect__write_seqcount_begin, payload
 * with relaxed atomic stores, netelect__write_seqcount_end, then h_current
 * (release).  R: netelect__read_seqcount_begin, relaxed payload loads,
 * netelect__read_seqcount_retry.  The ordering argument is at those steps.
 */
struct netelect_shm_slot {
    _Atomic uint64_t s_seq;  /* W/R: only through the seqcount steps below */
    uint64_t s_generation;   /* W/R: payload (relaxed); must equal h_current >> 8 */
    uint64_t s_publish_ns;   /* payload: W's CLOCK_MONOTONIC at publish */
    uint32_t s_n_nodes;      /* payload: <= max_nodes, R clamps/rejects */
    uint32_t s_n_chans;      /* payload: <= max_chans */
    uint32_t s_n_members;    /* payload: <= max_members */
    uint32_t s_name_bytes;   /* payload: <= max_name_bytes */
    uint32_t s_node_tab_mask; /* payload: pow2-1 < node_tab_cap (table sized by n, not cap) */
    uint32_t s_chan_tab_mask; /* payload: pow2-1 < chan_tab_cap */
    uint32_t s_flags;        /* payload: 0 */
    uint32_t s_pad;
    uint64_t s_payload_crc;  /* payload: 0 (reserved for an audit mode) */
};
_Static_assert(offsetof(struct netelect_shm_slot, s_seq) == 0, "layout");
_Static_assert(offsetof(struct netelect_shm_slot, s_generation) == 8, "layout");
_Static_assert(offsetof(struct netelect_shm_slot, s_publish_ns) == 16, "layout");
_Static_assert(offsetof(struct netelect_shm_slot, s_n_nodes) == 24, "layout");
_Static_assert(offsetof(struct netelect_shm_slot, s_n_chans) == 28, "layout");
_Static_assert(offsetof(struct netelect_shm_slot, s_n_members) == 32, "layout");
_Static_assert(offsetof(struct netelect_shm_slot, s_name_bytes) == 36, "layout");
_Static_assert(offsetof(struct netelect_shm_slot, s_node_tab_mask) == 40, "layout");
_Static_assert(offsetof(struct netelect_shm_slot, s_chan_tab_mask) == 44, "layout");
_Static_assert(offsetof(struct netelect_shm_slot, s_flags) == 48, "layout");
_Static_assert(offsetof(struct netelect_shm_slot, s_payload_crc) == 56, "layout");
_Static_assert(sizeof(struct netelect_shm_slot) == 64, "layout");

/* A node (payload; W relaxed stores, R relaxed loads). */
struct netelect_shm_node {
    uint64_t n_id;
    uint64_t n_rtt;        /* smoothed RTT ns, NETELECT_RTT_UNKNOWN if never measured */
    uint64_t n_rtt_raw;
    uint64_t n_rtt_err;
    uint64_t n_last_heard; /* W's CLOCK_MONOTONIC ns */
    uint8_t n_healthy;     /* 0 or 1 */
    uint8_t n_source;      /* enum netelect_rtt_source */
    uint8_t n_pad[6];
};
_Static_assert(offsetof(struct netelect_shm_node, n_id) == 0, "layout");
_Static_assert(offsetof(struct netelect_shm_node, n_rtt) == 8, "layout");
_Static_assert(offsetof(struct netelect_shm_node, n_rtt_raw) == 16, "layout");
_Static_assert(offsetof(struct netelect_shm_node, n_rtt_err) == 24, "layout");
_Static_assert(offsetof(struct netelect_shm_node, n_last_heard) == 32, "layout");
_Static_assert(offsetof(struct netelect_shm_node, n_healthy) == 40, "layout");
_Static_assert(offsetof(struct netelect_shm_node, n_source) == 41, "layout");
_Static_assert(sizeof(struct netelect_shm_node) == 48, "layout");

/*
 * A channel (payload).  Its replicas are members [c_first, c_first+c_n) of
 * the three SoA arrays, denormalised at publish (RTT and health copied from
 * the node table, "not a node" = unhealthy + unknown) so an election hands
 * three contiguous arrays straight to netelect_elect's kernels.
 */
struct netelect_shm_chan {
    uint64_t c_hash;     /* netelect__name_hash(name) */
    uint32_t c_name_off; /* into NAMES, multiple of 8 */
    uint32_t c_name_len; /* 1..NETELECT_CHAN_NAME_MAX */
    uint32_t c_first;    /* into the member arrays */
    uint32_t c_n;
    uint64_t c_pad;
};
_Static_assert(offsetof(struct netelect_shm_chan, c_hash) == 0, "layout");
_Static_assert(offsetof(struct netelect_shm_chan, c_name_off) == 8, "layout");
_Static_assert(offsetof(struct netelect_shm_chan, c_name_len) == 12, "layout");
_Static_assert(offsetof(struct netelect_shm_chan, c_first) == 16, "layout");
_Static_assert(offsetof(struct netelect_shm_chan, c_n) == 20, "layout");
_Static_assert(sizeof(struct netelect_shm_chan) == 32, "layout");

#define NETELECT_SHM_LAYOUT_DESC                                                   \
    ((uint32_t)sizeof(struct netelect_shm_node) << 24 |                            \
     (uint32_t)sizeof(struct netelect_shm_chan) << 16 |                            \
     (uint32_t)sizeof(struct netelect_shm_slot) << 8 | NETELECT_SHM_LINE)

/* The trusted, private description of a segment (computed or validated). */
struct netelect_shm_layout {
    uint32_t slot_count;
    uint32_t max_nodes, max_chans, max_members, max_name_bytes;
    uint32_t node_tab_cap, chan_tab_cap;
    uint64_t region_off[NETELECT_RG_COUNT];
    uint64_t slot_size;    /* page multiple */
    uint64_t slot_off[NETELECT_SHM_MAX_SLOTS];
    uint64_t segment_size;
    uint64_t self_id;
    uint64_t heartbeat_period_ns;
    uint32_t compat_flags;
    uint16_t abi_minor;
    uint8_t incarnation[16];
    int32_t writer_pid;
    uint64_t timens; /* h_timens */
    uint64_t pidns;  /* h_pidns */
};

/*
 * Fills `L` from slot_count and the four capacities.
 * @return 0, or -EINVAL (out of range) / -EOVERFLOW.
 */
int netelect__layout_compute(struct netelect_shm_layout *L);
/* The inode of this process's time namespace, 0 if unknown (h_timens). */
uint64_t netelect__timens(void);
/* The same for the pid namespace (h_pidns). */
uint64_t netelect__pidns(void);
/* FNV-1a 64 over the identity lines of a header. */
uint64_t netelect__layout_crc(const void *hdr);
/*
 * Validates a header copied out of an untrusted file of `file_size` bytes
 * and fills the private layout.  Never reads past sizeof(*hdr).
 * @return 0, NETELECT_EVERSION, NETELECT_ECORRUPT, or -EAGAIN (state INIT).
 */
int netelect__layout_validate(const struct netelect_shm_hdr *hdr, uint64_t file_size,
                              struct netelect_shm_layout *L);

/* ---- named orderings (liburing style): each call site says what it orders. */

static inline uint64_t netelect__load_acquire64(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_acquire);
}
static inline void netelect__store_release64(_Atomic uint64_t *p, uint64_t v)
{
    atomic_store_explicit(p, v, memory_order_release);
}
static inline uint32_t netelect__load_acquire32(const _Atomic uint32_t *p)
{
    return atomic_load_explicit(p, memory_order_acquire);
}
static inline void netelect__store_release32(_Atomic uint32_t *p, uint32_t v)
{
    atomic_store_explicit(p, v, memory_order_release);
}
/*
 * Payload words are plain-typed in the structs and accessed with relaxed
 * atomics on both sides (Boehm): a plain `mov` on x86, but defined C11.
 * The latch's ordering comes from two fences: release after the writer's
 * odd seq store, acquire before the reader's seq re-check.
 *
 * ThreadSanitizer does not model fences (gcc: -Wtsan), so the TSAN build
 * (NETELECT_SHM_ATOMIC_PAYLOAD) expresses the same orderings with what it
 * does model: every payload store a release (ordering the odd seq before
 * it), every payload load an acquire (ordering it before the re-check).
 * Strictly stronger, so whatever TSAN accepts there holds here.
 */
#ifdef NETELECT_SHM_ATOMIC_PAYLOAD
#define NETELECT_LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define NETELECT_STORE_RELAXED(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define netelect__fence_acquire() ((void)0)
#define netelect__fence_release() ((void)0)
#else
#define NETELECT_LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define NETELECT_STORE_RELAXED(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define netelect__fence_acquire() atomic_thread_fence(memory_order_acquire)
#define netelect__fence_release() atomic_thread_fence(memory_order_release)
#endif

/*
 * ---- the slot latch, as named steps (Linux include/linux/seqlock.h:
 * write_seqcount_begin/end, read_seqcount_begin/retry).
 *
 * The whole ordering argument of a slot lives here.  The writer brackets
 * every store to a slot's payload with begin/end; the reader brackets every
 * payload load with begin/retry, and keeps what it read only if retry says
 * the slot did not move.  Why that is enough (C11, Boehm HPL-2012-68):
 *
 *   W: seq = q+1 (relaxed)          R: q0 = seq (acquire)        [begin]
 *      release fence  ------.          payload loads (relaxed)
 *      payload stores        \         acquire fence  -----.     [retry]
 *      seq = q+2 (release)    `----->  seq == q0 ? (relaxed) <-'
 *
 *   - If any payload load of R saw a store W made after its begin, the
 *     writer's release fence (after seq = q+1) and the reader's acquire
 *     fence (before the re-load) synchronise, so R's re-load sees q+1 or
 *     later: retry reports the lap.
 *   - If R's begin saw q+2 (acquire, pairing with end's release), every
 *     payload store before end is visible to R's loads.
 *   - h_current is stored (release) only after end, and R loads it
 *     (acquire) before begin, so a slot named by h_current was sealed.
 *
 * Begin returns odd for a slot being written (or left odd by a writer that
 * died mid-write): the reader treats that as a lap at once.  Unlike Linux,
 * the reader never spins on an odd count: the writer may be dead.
 */

/* W: opens slot `seq` for writing; returns the even count q to pass to
 * end.  A predecessor killed mid-write left the count odd: rounded up, so
 * the count only ever grows and a reader that saw it can never see it
 * again. */
static inline uint64_t netelect__write_seqcount_begin(_Atomic uint64_t *seq)
{
    uint64_t q = atomic_load_explicit(seq, memory_order_relaxed);
    q += q & 1;
    atomic_store_explicit(seq, q + 1, memory_order_relaxed);
    /* Release fence: the odd count is ordered before every payload store
     * that follows (pairs with the acquire fence in read_seqcount_retry). */
    netelect__fence_release();
    return q;
}

/* W: seals the slot opened by write_seqcount_begin (`q` is what it
 * returned).  Release: a reader whose begin sees q+2 sees the payload. */
static inline void netelect__write_seqcount_end(_Atomic uint64_t *seq, uint64_t q)
{
    atomic_store_explicit(seq, q + 2, memory_order_release);
}

/* R: the count before the payload reads; odd means "being written, retry".
 * Acquire: pairs with write_seqcount_end's release. */
static inline uint64_t netelect__read_seqcount_begin(const _Atomic uint64_t *seq)
{
    return atomic_load_explicit(seq, memory_order_acquire);
}

/* R: true if the payload read since read_seqcount_begin returned `q0` may
 * be torn (the slot was reopened meanwhile): discard it and retry. */
static inline bool netelect__read_seqcount_retry(const _Atomic uint64_t *seq, uint64_t q0)
{
    /* Acquire fence: every payload load above is ordered before the
     * re-load, so if the count is unchanged none of them saw a store of a
     * later write (pairs with write_seqcount_begin's release fence). */
    netelect__fence_acquire();
    return atomic_load_explicit(seq, memory_order_relaxed) != q0;
}

/* ---- hashing shared by writer and reader */

static inline uint64_t netelect__mix64(uint64_t x)
{
    /* murmur3 fmix64: good avalanche for sequential or structured ids. */
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

/* Reads 8 bytes at a time: names are short, and the reader pays this on a
 * channel-cache miss.  Never 0 (0 would be a fine hash, but keeping it
 * non-zero lets a zeroed chan record never match). */
static inline uint64_t netelect__name_hash(const char *s, size_t len)
{
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = netelect__mix64(h ^ w);
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, s + i, len - i);
        h = netelect__mix64(h ^ w ^ UINT64_C(0xA5A5A5A5A5A5A5A5));
    }
    return h | 1;
}

#endif /* SHM_LAYOUT_H */
