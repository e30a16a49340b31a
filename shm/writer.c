/* SPDX-License-Identifier: MIT */
/*
 * The segment writer (netelectd's side).  See shm/README.md for the
 * protocol and shm/layout.h for the field contracts.
 *
 * Crash safety comes from the order of stores, not from cleanup: a slot is
 * only ever named by h_current after its seq went back to even, so killing
 * the writer at any instruction leaves h_current on the last complete
 * version.  NETELECT_CRASH_AT=<point>[:<n>] makes the writer SIGKILL itself
 * the n-th time it passes <point> (torture tests only; points are listed in
 * crash_names below and in segment-protocol.md §11).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "netelect.h"
#include "shm/layout.h"
#include "shm/path.h"
#include "shm/registry.h"
#include "shm/trust.h"
#include "shm/writer.h"

enum crash_point {
    CRASH_NONE,
    CRASH_AFTER_SEQ_ODD,
    CRASH_MID_PAYLOAD,
    CRASH_AFTER_SEQ_EVEN,
    CRASH_BEFORE_CURRENT,
    CRASH_AFTER_CURRENT,
    CRASH_MID_HEARTBEAT,
};
static const char *const crash_names[] = {
    [CRASH_AFTER_SEQ_ODD] = "after_seq_odd",   [CRASH_MID_PAYLOAD] = "mid_payload",
    [CRASH_AFTER_SEQ_EVEN] = "after_seq_even", [CRASH_BEFORE_CURRENT] = "before_current",
    [CRASH_AFTER_CURRENT] = "after_current",   [CRASH_MID_HEARTBEAT] = "mid_heartbeat",
};

struct segment {
    char tmp[PATH_MAX + 64]; /* private name while unnamed (no O_TMPFILE), else "" */
    int fd;
    uint8_t *base;
    struct netelect_shm_layout L;
};

struct netelect_writer {
    struct netelect__shm_paths p;
    struct netelect_writer_config cfg;
    int lock_fd;
    struct segment seg;
    struct netelect__reg_writer *reg;
    uint64_t gen;                                 /* of the version h_current names */
    uint64_t slot_word[NETELECT_SHM_MAX_SLOTS];   /* gen<<8|s held by slot s, 0: none */
    uint64_t reader_deadline_ns;
    enum crash_point crash_at;
    unsigned long crash_left;
    bool external; /* netelect__writer_open_mem(): not our memory, no files */
    struct netelect__trust trust;      /* whose files under our names are not squatters */
    struct netelect_writer_report rep; /* what open found (netelect__writer_report) */
    unsigned fails;                    /* consecutive failed publishes */
    uint64_t wait_budget_ns;           /* how long choose_slot may still wait */
    uint64_t budget_at_ns;             /* CLOCK_MONOTONIC of its last refill */

    /*
     * Publish-cost caches (private).  Agents mostly republish the same
     * node ids and memberships with new RTTs, so a slot's node table is
     * rebuilt only if the id sequence changed since that slot was last
     * written (ids_ver), and members are mapped to node indices only when
     * the ids or the memberships changed (midx).
     */
    uint64_t *prev_ids;   /* ids of the last publish, in order */
    size_t prev_n, prev_ids_cap;
    uint64_t ids_ver;                             /* bumped when they change */
    uint64_t slot_ids_ver[NETELECT_SHM_MAX_SLOTS]; /* ids_ver of slot's table, 0 none */
    uint64_t *prev_members; /* flattened memberships of the last publish */
    size_t prev_m, prev_members_cap;
    int32_t *midx;        /* per member: index into nodes[], -1 not a node */
    size_t midx_cap;
    uint64_t midx_ver;    /* ids_ver midx was computed for, 0 none */
    bool midx_ok;         /* this publish may use midx */
    uint8_t *mdown;       /* per member: its member_down at the last full write (midx_cap) */

    /*
     * Delta publishing (netelect__writer_update; shm/README.md, "Delta
     * publish").  A delta version differs from the one before only in some
     * nodes' measurements.  The log keeps, for each delta version since the
     * last full write (log_base), the node indices it changed, so that a
     * reused slot holding version gs >= log_base catches up by copying, from
     * the current slot, only the nodes changed in (gs, current]; any other
     * slot gets the used part of the current slot copied whole.  The
     * reverse index (node -> positions of its replica entries) is rebuilt
     * from midx after every full write (full_ver).
     */
    uint64_t full_ver;    /* successful full writes */
    uint64_t rev_ver;     /* full_ver the reverse index is for */
    uint32_t *rev_first;  /* [n_nodes + 1]: node i's entries are rev_pos[first[i], first[i+1]) */
    uint32_t *rev_pos;    /* [n_members]: member positions, grouped by node */
    size_t rev_first_cap, rev_pos_cap;
    uint64_t *mark;       /* per node: the update (stamp) that last touched it */
    size_t mark_cap;
    uint64_t stamp;
    uint64_t log_base;    /* generation of the last full write */
    struct dlog {
        uint64_t gen;     /* the delta version this entry is about, 0 none */
        uint32_t *idx;    /* node indices it changed */
        size_t n, cap;
    } log[NETELECT_SHM_MAX_SLOTS];
};

struct need {
    uint64_t nodes, chans, members, names;
};
/* choose_slot() waits for pinned slots at most reader_deadline_ns per this
 * period in all. */
#define WAIT_REFILL_NS UINT64_C(100000000)
static int measure(const struct netelect_wnode *nodes, size_t n_nodes,
                   const struct netelect_wchan *chans, size_t n_chans, struct need *nd);
static uint32_t grow_cap(uint32_t cap, uint64_t need, uint32_t max);
static void caches_prepare(struct netelect_writer *w, const struct netelect_wnode *nodes,
                           size_t n_nodes, const struct netelect_wchan *chans, size_t n_chans,
                           size_t n_members);
static int write_slot(struct netelect_writer *w, struct segment *sg, unsigned s, uint64_t gen,
                      const struct netelect_wnode *nodes, uint32_t n_nodes,
                      const struct netelect_wchan *chans, uint32_t n_chans);
static void publish_slot(struct netelect_writer *w, unsigned s, uint64_t gen);
static void caches_free(struct netelect_writer *w);

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void crash_point(struct netelect_writer *w, enum crash_point p)
{
    if (__builtin_expect(w->crash_at == p, 0) && --w->crash_left == 0)
        kill(getpid(), SIGKILL);
}

static void crash_parse(struct netelect_writer *w)
{
    const char *e = getenv("NETELECT_CRASH_AT");
    w->crash_at = CRASH_NONE;
    if (!e)
        return;
    for (int i = CRASH_AFTER_SEQ_ODD; i <= CRASH_MID_HEARTBEAT; i++) {
        size_t n = strlen(crash_names[i]);
        if (strncmp(e, crash_names[i], n) == 0 && (e[n] == 0 || e[n] == ':')) {
            w->crash_at = (enum crash_point)i;
            w->crash_left = e[n] == ':' ? strtoul(e + n + 1, NULL, 10) : 1;
            if (w->crash_left == 0)
                w->crash_left = 1;
        }
    }
}

static struct netelect_shm_hdr *hdr_of(const struct segment *s)
{
    return (struct netelect_shm_hdr *)(void *)s->base;
}

static struct netelect_shm_slot *slot_of(const struct segment *s, unsigned i)
{
    return (struct netelect_shm_slot *)(void *)(s->base + s->L.slot_off[i]);
}

static void *region(const struct segment *s, unsigned i, int rg)
{
    return s->base + s->L.slot_off[i] + s->L.region_off[rg];
}

static void segment_discard(struct netelect_writer *w, struct segment *s);

static void segment_unmap(struct segment *s)
{
    if (s->base)
        munmap(s->base, s->L.segment_size);
    if (s->fd >= 0)
        close(s->fd);
    s->base = NULL;
    s->fd = -1;
}

/* Our file, or no file, under `path`; squatters are removed if we may
 * (counted in the report) and refused otherwise. */
static int claim(struct netelect_writer *w, const char *path)
{
    uid_t uid = (uid_t)-1;
    int rc = netelect__claim_name(path, &w->trust, &uid);
    if (uid != (uid_t)-1) {
        w->rep.squatters += rc >= 0;
        w->rep.squatter_uid = uid;
    }
    return rc;
}

/* The generation a previous incarnation reached, so generations keep
 * increasing across restarts (readers key caches on them). */
static uint64_t old_generation(const struct netelect_writer *w)
{
    int fd = open(w->p.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    struct netelect_shm_hdr h;
    struct stat st;
    uint64_t g = 0;
    /* Only a trusted predecessor's generation: a planted file could push
     * it to the 2^55 limit and keep the agent from ever starting. */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && netelect__trust_has(&w->trust, st.st_uid) &&
        pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h && h.h_magic == NETELECT_SHM_MAGIC)
        g = atomic_load_explicit(&h.h_current, memory_order_relaxed) >> 8;
    close(fd);
    return g;
}

/*
 * Maps page 0 of the file now at `path` (an older incarnation of ours) so
 * that once the new file has the name, its readers can be told to look at
 * the path again (mark_old).  Best effort: readers also notice a dead
 * heartbeat.
 */
static struct netelect_shm_hdr *map_old(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    struct stat st;
    struct netelect_shm_hdr *h = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        (uint64_t)st.st_size >= NETELECT_SHM_PAGE) {
        h = mmap(NULL, NETELECT_SHM_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (h == MAP_FAILED)
            h = NULL;
        else if (h->h_magic != NETELECT_SHM_MAGIC) {
            munmap(h, NETELECT_SHM_PAGE);
            h = NULL;
        }
    }
    close(fd);
    return h;
}

/* Wakes up to `most` threads sleeping in netelect_view_wait() on this segment. */
static void wake_all(struct netelect_shm_hdr *h, int most)
{
    atomic_fetch_add_explicit(&h->h_wake, 1, memory_order_relaxed);
    syscall(SYS_futex, &h->h_wake, FUTEX_WAKE, most, NULL, NULL, 0);
}

/* Any reader may wait, and FUTEX_WAKE costs the writer time per thread it
 * wakes (about 4 us each here): a publish wakes at most this many, so
 * parking thousands of waiting threads cannot stall publishing.  The rest
 * see the change when their own liveness horizon wakes them (at most
 * max(3 heartbeat periods, 300 ms) later); leaving LIVE wakes everyone. */
#define WAKE_PER_PUBLISH 256

/* After a publish: wakes the waiters, if any announced themselves (see
 * NETELECT_SHM_WAIT_LOCK), at the cost of one fcntl() otherwise. */
static void wake_waiters(struct segment *s)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = NETELECT_SHM_WAIT_LOCK,
                       .l_len = NETELECT_SHM_WAIT_SPAN + NETELECT_SHM_FD_SPAN};
    if (s->fd < 0 || (fcntl(s->fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_UNLCK))
        return;
    wake_all(hdr_of(s), WAKE_PER_PUBLISH);
    /* The kernel reports the first conflicting lock: a descriptor holder
     * may hide behind a thread waiter, so look at their range alone. */
    struct flock fd_fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                          .l_start = NETELECT_SHM_FD_LOCK, .l_len = NETELECT_SHM_FD_SPAN};
    if (fl.l_start >= NETELECT_SHM_FD_LOCK ||
        (fcntl(s->fd, F_OFD_GETLK, &fd_fl) == 0 && fd_fl.l_type != F_UNLCK))
        futimens(s->fd, NULL); /* IN_ATTRIB for netelect_view_fd() */
}

/* h_state leaves LIVE (or STALLED) for `state`, and says since when. */
static void leave_live(struct netelect_shm_hdr *h, uint32_t from, uint32_t state)
{
    atomic_store_explicit(&h->h_gone_mono_ns, now_ns(CLOCK_MONOTONIC), memory_order_relaxed);
    /* Release: the time above (and, for ABANDONED, the final version) is
     * visible to a reader that sees the new state. */
    atomic_compare_exchange_strong_explicit(&h->h_state, &from, state, memory_order_release,
                                            memory_order_relaxed);
    /* Waiters learn at once that this file is done with. */
    wake_all(h, INT_MAX);
}

static void mark_old(struct netelect_shm_hdr *h, uint32_t state)
{
    if (!h)
        return;
    /* Readers of the old file re-open the path when they see `state`. */
    const uint32_t st = atomic_load_explicit(&h->h_state, memory_order_relaxed);
    if (st == NETELECT_SHM_LIVE || st == NETELECT_SHM_STALLED)
        leave_live(h, st, state);
    munmap(h, NETELECT_SHM_PAGE);
}

static void fill_random(uint8_t *b, size_t n)
{
    if (getrandom(b, n, GRND_NONBLOCK) == (ssize_t)n)
        return;
    uint64_t x = now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)b;
    for (size_t i = 0; i < n; i++) {
        x = netelect__mix64(x + i);
        b[i] = (uint8_t)x;
    }
}

static void segment_discard(struct netelect_writer *w, struct segment *s)
{
    (void)w;
    if (s->tmp[0])
        unlink(s->tmp);
    s->tmp[0] = 0;
    segment_unmap(s);
}

/* An empty, sealed version of generation `gen` in slot 0. */
static void init_slot0(struct segment *s, uint64_t gen)
{
    struct netelect_shm_slot *sl = slot_of(s, 0);
    sl->s_generation = gen;
    sl->s_publish_ns = now_ns(CLOCK_MONOTONIC);
    sl->s_node_tab_mask = 15;
    sl->s_chan_tab_mask = 15;
    atomic_store_explicit(&sl->s_seq, 2, memory_order_relaxed);
}

/* Fills the header and an empty version `gen` in slot 0, then LIVE. */
static void segment_init(struct netelect_writer *w, struct segment *s, uint64_t gen,
                         const uint8_t inc[16])
{
    struct netelect_shm_hdr *h = hdr_of(s);
    h->h_magic = NETELECT_SHM_MAGIC;
    h->h_abi_major = NETELECT_SHM_ABI_MAJOR;
    h->h_abi_minor = NETELECT_SHM_ABI_MINOR;
    h->h_header_size = sizeof(struct netelect_shm_hdr);
    h->h_layout_desc = NETELECT_SHM_LAYOUT_DESC;
    h->h_incompat_flags = 0;
    h->h_compat_flags = w->reg ? NETELECT_SHM_COMPAT_REGISTRY : 0;
    h->h_slot_count = s->L.slot_count;
    h->h_segment_size = s->L.segment_size;
    h->h_slot_size = s->L.slot_size;
    memcpy(h->h_slot_off, s->L.slot_off, sizeof h->h_slot_off);
    h->h_max_nodes = s->L.max_nodes;
    h->h_max_chans = s->L.max_chans;
    h->h_max_members = s->L.max_members;
    h->h_max_name_bytes = s->L.max_name_bytes;
    h->h_node_tab_cap = s->L.node_tab_cap;
    h->h_chan_tab_cap = s->L.chan_tab_cap;
    memcpy(h->h_region_off, s->L.region_off, sizeof h->h_region_off);
    memcpy(h->h_incarnation, inc, 16);
    h->h_writer_pid = (int32_t)getpid();
    h->h_writer_uid = (uint32_t)geteuid();
    h->h_self_id = w->cfg.self_id;
    h->h_heartbeat_period_ns = w->cfg.heartbeat_period_ns;
    h->h_layout_crc = netelect__layout_crc(h);
    h->h_timens = netelect__timens();
    h->h_pidns = netelect__pidns();
    init_slot0(s, gen);
    atomic_store_explicit(&h->h_heartbeat_seq, 1, memory_order_relaxed);
    atomic_store_explicit(&h->h_heartbeat_mono_ns, now_ns(CLOCK_MONOTONIC), memory_order_relaxed);
    atomic_store_explicit(&h->h_current, gen << 8, memory_order_relaxed);
    /* Release: everything above is complete before LIVE (for a file, the
     * rename in segment_name() is what makes it reachable at all). */
    netelect__store_release32(&h->h_state, NETELECT_SHM_LIVE);
}

/*
 * Builds a complete, LIVE segment in an unnamed file (O_TMPFILE; a unique
 * private name where that is unsupported) holding an empty version `gen` in
 * slot 0.  segment_name() then gives it the real name atomically, so
 * readers see the old file or the new one, never a half-built one.
 */
static int segment_build(struct netelect_writer *w, struct segment *s, uint64_t gen,
                         const uint8_t inc[16])
{
    int rc, fd;
    s->fd = -1;
    s->base = NULL;
    s->tmp[0] = 0;
    if ((rc = netelect__layout_compute(&s->L)))
        return rc;
    const size_t size = s->L.segment_size;
    const mode_t mode = w->cfg.mode;

    fd = open(w->p.dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
    if (fd < 0) {
        for (int i = 0; i < 100 && fd < 0; i++) {
            uint32_t r;
            fill_random((uint8_t *)&r, sizeof r);
            snprintf(s->tmp, sizeof s->tmp, "%s.tmp.%d.%08x", w->p.path, (int)getpid(), r);
            fd = open(s->tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, mode);
            if (fd < 0 && errno != EEXIST)
                return -errno;
        }
        if (fd < 0)
            return -EEXIST;
    }
    s->fd = fd;
    /* The umask must not decide who may read the view. */
    if (fchmod(fd, mode) != 0 ||
        (w->cfg.group != (gid_t)-1 && fchown(fd, (uid_t)-1, w->cfg.group) != 0)) {
        rc = -errno;
        goto fail;
    }
    /* Allocate every page now: a full tmpfs is an error here, not a
     * SIGBUS in the middle of a publish. */
    if ((rc = posix_fallocate(fd, 0, (off_t)size)) != 0) {
        rc = -rc;
        goto fail;
    }
    s->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (s->base == MAP_FAILED) {
        s->base = NULL;
        rc = -errno;
        goto fail;
    }

    segment_init(w, s, gen, inc);
    return 0;
fail:
    segment_discard(w, s);
    return rc;
}

static int segment_name(struct netelect_writer *w, struct segment *s)
{
    (void)w;
    if (!s->tmp[0]) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", s->fd);
        for (int i = 0;; i++) {
            uint32_t r;
            fill_random((uint8_t *)&r, sizeof r);
            snprintf(s->tmp, sizeof s->tmp, "%s.tmp.%d.%08x", w->p.path, (int)getpid(), r);
            if (linkat(AT_FDCWD, proc, AT_FDCWD, s->tmp, AT_SYMLINK_FOLLOW) == 0)
                break;
            if (errno != EEXIST || i == 100) {
                s->tmp[0] = 0;
                return -errno;
            }
        }
    }
    if (rename(s->tmp, w->p.path) != 0)
        return -errno; /* the caller's segment_discard() unlinks tmp */
    s->tmp[0] = 0;
    return 0;
}

/*
 * A writer killed between linkat() and rename() leaves a full-size
 * "<name>.tmp.<pid>.<rand>" (or "<name>.readers.tmp...") behind.  Called
 * with the lock held, so no other writer of this name is making one now:
 * every such file of ours is garbage.
 */
static void remove_stale_tmps(struct netelect_writer *w)
{
    const char *base = strrchr(w->p.path, '/');
    base = base ? base + 1 : w->p.path;
    char seg[NAME_MAX + 1], reg[NAME_MAX + 1];
    if (snprintf(seg, sizeof seg, "%s.tmp.", base) >= (int)sizeof seg ||
        snprintf(reg, sizeof reg, "%s.readers.tmp.", base) >= (int)sizeof reg)
        return;
    DIR *d = opendir(w->p.dir);
    if (!d)
        return;
    const uid_t me = geteuid();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, seg, strlen(seg)) != 0 && strncmp(e->d_name, reg, strlen(reg)) != 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_uid == me && unlinkat(dirfd(d), e->d_name, 0) == 0)
            w->rep.stale_tmps++;
    }
    closedir(d);
}

static int lock_writer(struct netelect_writer *w)
{
    int rc = claim(w, w->p.lock);
    if (rc < 0)
        return rc;
    /* 0600: whoever can open the lock file can hold a lock on it and keep
     * the agent from ever starting again (readers do not need it). */
    int fd = open(w->p.lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        !(st.st_uid == geteuid() || (geteuid() == 0 && netelect__trust_has(&w->trust, st.st_uid)))) {
        close(fd);
        return -EPERM;
    }
    /* A lock file an older version created 0644 (or a squatter's we
     * replaced under the same name in the meantime) is closed to others
     * before we rely on it; descriptors opened earlier stay open, which
     * is why the lock is tried only after this. */
    if ((st.st_mode & 0077) && fchmod(fd, 0600) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    /* An OFD lock: tied to this open file description, not the process, so
     * no close() of another descriptor drops it, and the kernel drops it
     * when the writer dies. */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        rc = (errno == EAGAIN || errno == EACCES) ? -EBUSY : -errno;
        close(fd);
        return rc;
    }
    w->lock_fd = fd;
    return 0;
}

int netelect__writer_open(const struct netelect_writer_config *cfg, struct netelect_writer **out)
{
    int rc;
    if (!cfg || !out)
        return -EINVAL;
    *out = NULL;
    if ((cfg->slots && (cfg->slots < 2 || cfg->slots > NETELECT_SHM_MAX_SLOTS)) ||
        (cfg->mode & ~(mode_t)0777) || (cfg->mode & 0022))
        return -EINVAL;
    /* A bad snapshot is refused before any file is touched. */
    struct need init;
    if ((rc = measure(cfg->initial_nodes, cfg->n_initial_nodes, cfg->initial_chans,
                      cfg->n_initial_chans, &init)))
        return rc;
    struct netelect_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->lock_fd = -1;
    w->seg.fd = -1;
    w->cfg = *cfg;
    if (!w->cfg.mode)
        w->cfg.mode = 0644;
    if (!w->cfg.slots)
        w->cfg.slots = 3;
    if (!w->cfg.heartbeat_period_ns)
        w->cfg.heartbeat_period_ns = UINT64_C(100000000);
    if (w->cfg.heartbeat_period_ns > UINT64_C(3600000000000)) {
        rc = -EINVAL;
        goto fail;
    }
    w->reader_deadline_ns = UINT64_C(2000000); /* 2 ms of waiting per publish at most */
    if ((rc = netelect__shm_paths(cfg->name, &w->p)))
        goto fail;
    w->cfg.name = NULL; /* not ours to keep */
    w->cfg.initial_nodes = NULL, w->cfg.n_initial_nodes = 0;
    w->cfg.initial_chans = NULL, w->cfg.n_initial_chans = 0;
    crash_parse(w);

    netelect__trust_init(&w->trust, false, 0);
    if ((rc = lock_writer(w)))
        goto fail;
    if ((rc = claim(w, w->p.path)) < 0 || (rc = claim(w, w->p.readers)) < 0)
        goto fail;
    remove_stale_tmps(w);

    uint8_t inc[16];
    fill_random(inc, sizeof inc);
    /* Registry first, so the segment can advertise it.  A registry we cannot
     * create only costs readers their grace periods. */
    if (netelect__reg_create(w->p.readers, w->p.dir, inc, w->cfg.mode, w->cfg.group, &w->reg))
        w->reg = NULL;

    /* Generations grow across restarts: at least the old one + 1, and at
     * least the wall clock in microseconds (in case the old file is gone). */
    uint64_t g = old_generation(w) + 1;
    uint64_t us = now_ns(CLOCK_REALTIME) / 1000u;
    if (us > g)
        g = us;
    if (g >= (UINT64_C(1) << 55)) {
        rc = -EOVERFLOW;
        goto fail;
    }

    struct netelect_shm_layout *L = &w->seg.L;
    L->slot_count = w->cfg.slots;
    L->max_nodes = cfg->max_nodes ? cfg->max_nodes : 1024;
    L->max_chans = cfg->max_chans ? cfg->max_chans : 64;
    L->max_members = cfg->max_members ? cfg->max_members : 1024;
    if (L->max_chans > NETELECT_SHM_MAX_CHANS) {
        rc = -EINVAL;
        goto fail;
    }
    /* Room for the snapshot with the same headroom growth gives, so the
     * agent's next publishes (the same view, soon a little more) do not
     * move the segment straight away. */
    L->max_nodes = grow_cap(L->max_nodes, init.nodes, NETELECT_SHM_MAX_NODES);
    L->max_chans = grow_cap(L->max_chans, init.chans, NETELECT_SHM_MAX_CHANS);
    L->max_members = grow_cap(L->max_members, init.members, NETELECT_SHM_MAX_MEMBERS);
    L->max_name_bytes = L->max_chans * 32u;
    if (init.names > L->max_name_bytes)
        L->max_name_bytes =
            grow_cap(L->max_name_bytes, init.names, NETELECT_SHM_MAX_NAME_BYTES) & ~7u;
    if (L->max_name_bytes < init.names) {
        rc = -E2BIG;
        goto fail;
    }
    /* The file we are about to replace, if any, belongs to a dead writer
     * (we hold the lock); readers still on it are told to move. */
    struct netelect_shm_hdr *old = map_old(w->p.path);
    rc = segment_build(w, &w->seg, g, inc);
    /* The snapshot goes into slot 0 while the file is still unnamed: the
     * first version a reader can ever see is the real one, never an empty
     * one it would answer "unknown channel" from. */
    if (rc == 0 && (init.nodes || init.chans)) {
        caches_prepare(w, cfg->initial_nodes, init.nodes, cfg->initial_chans, init.chans,
                       init.members);
        rc = write_slot(w, &w->seg, 0, g, cfg->initial_nodes, (uint32_t)init.nodes,
                        cfg->initial_chans, (uint32_t)init.chans);
        if (rc)
            segment_discard(w, &w->seg);
    }
    if (rc == 0 && (rc = segment_name(w, &w->seg)))
        segment_discard(w, &w->seg);
    if (rc) {
        if (old)
            munmap(old, NETELECT_SHM_PAGE);
        goto fail;
    }
    mark_old(old, NETELECT_SHM_SUPERSEDED);
    w->gen = g;
    w->slot_word[0] = g << 8;
    *out = w;
    return 0;
fail:
    /* Nothing is mapped here (the segment was discarded), so close frees
     * exactly what open took: the registry, the lock, the caches. */
    netelect__writer_close(w, false);
    return rc;
}

/*
 * The oldest slot that is neither current nor pinned by a live reader.  If
 * every candidate stays pinned for reader_deadline_ns, the oldest is reused
 * anyway: a stopped or stuck reader never stalls publication, and its
 * validation notices.
 */
/* Charges `d` of waiting to the budget (never below zero). */
static void spend_wait(struct netelect_writer *w, uint64_t d)
{
    w->wait_budget_ns -= d < w->wait_budget_ns ? d : w->wait_budget_ns;
}

static unsigned choose_slot(struct netelect_writer *w)
{
    struct netelect_shm_hdr *h = hdr_of(&w->seg);
    const unsigned K = w->seg.L.slot_count;
    const unsigned cur = (unsigned)(atomic_load_explicit(&h->h_current, memory_order_relaxed) & 0xff);
    unsigned oldest = cur == 0 ? 1 : 0;
    for (unsigned s = 0; s < K; s++)
        if (s != cur && w->slot_word[s] < w->slot_word[oldest])
            oldest = s;
    if (w->reg && netelect__reg_faulted(w->reg)) {
        netelect__reg_writer_close(w->reg); /* truncated under us: see registry.c */
        w->reg = NULL;
        w->rep.registry_lost = true;
    }
    if (!w->reg)
        return oldest;

    uint64_t t0 = 0;
    bool waited = false;
    for (;;) {
        unsigned pinned = netelect__reg_pinned(w->reg, w->slot_word, K);
        unsigned best = K;
        for (unsigned s = 0; s < K; s++)
            if (s != cur && !(pinned & (1u << s)) &&
                (best == K || w->slot_word[s] < w->slot_word[best]))
                best = s;
        if (best != K) {
            if (waited)
                spend_wait(w, now_ns(CLOCK_MONOTONIC) - t0);
            if (best != oldest)
                atomic_fetch_add_explicit(&h->h_pinned_waits, 1, memory_order_relaxed);
            return best;
        }
        uint64_t t = now_ns(CLOCK_MONOTONIC);
        if (!waited) {
            t0 = t;
            waited = true;
            /* Whoever may write the registry (the agent's group) can pin
             * every slot on purpose; the waiting that buys is capped at
             * one deadline per WAIT_REFILL_NS, whatever the registry says. */
            if (t - w->budget_at_ns >= WAIT_REFILL_NS) {
                w->wait_budget_ns = w->reader_deadline_ns;
                w->budget_at_ns = t;
            }
        }
        const uint64_t waited_ns = t - t0;
        if (waited_ns >= w->reader_deadline_ns || waited_ns >= w->wait_budget_ns) {
            spend_wait(w, waited_ns);
            atomic_fetch_add_explicit(&h->h_forced_reuse, 1, memory_order_relaxed);
            return oldest;
        }
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
}

static uint32_t tab_mask_for(uint32_t n)
{
    uint32_t c = 16;
    while (c < 2u * n)
        c <<= 1;
    return c - 1;
}

/* Finds `id` among the nodes of this publish (index into `nodes`), via the
 * slot's table that write_slot just filled. */
static int64_t node_find(const uint32_t *tab, uint32_t mask, const struct netelect_wnode *nodes,
                         uint64_t id)
{
    for (uint32_t i = (uint32_t)netelect__mix64(id) & mask, probes = 0; probes <= mask;
         i = (i + 1) & mask, probes++) {
        uint32_t e = tab[i];
        if (!e)
            return -1;
        if (nodes[e - 1].id == id)
            return e - 1;
    }
    return -1;
}

/*
 * Writes one complete version into slot `s`, which no reader is on (or
 * whose reader will fail validation).  Leaves the slot sealed (seq even)
 * but unpublished.  @return 0 or -EINVAL (duplicate node id or channel).
 */
static int write_slot(struct netelect_writer *w, struct segment *sg, unsigned s, uint64_t gen,
                      const struct netelect_wnode *nodes, uint32_t n_nodes,
                      const struct netelect_wchan *chans, uint32_t n_chans)
{
    struct netelect_shm_slot *sl = slot_of(sg, s);
    struct netelect_shm_node *nd = region(sg, s, NETELECT_RG_NODES);
    uint32_t *ntab = region(sg, s, NETELECT_RG_NODE_TAB);
    struct netelect_shm_chan *ch = region(sg, s, NETELECT_RG_CHANS);
    uint32_t *ctab = region(sg, s, NETELECT_RG_CHAN_TAB);
    uint64_t *m_ids = region(sg, s, NETELECT_RG_M_IDS);
    uint64_t *m_rtt = region(sg, s, NETELECT_RG_M_RTT);
    uint8_t *m_ok = region(sg, s, NETELECT_RG_M_HEALTHY);
    uint64_t *names = region(sg, s, NETELECT_RG_NAMES);
    int rc = 0;

    /* Every payload store below is inside begin/end (layout.h). */
    const uint64_t q = netelect__write_seqcount_begin(&sl->s_seq);
    crash_point(w, CRASH_AFTER_SEQ_ODD);

    const uint32_t nmask = tab_mask_for(n_nodes), cmask = tab_mask_for(n_chans);
    NETELECT_STORE_RELAXED(&sl->s_generation, gen);
    NETELECT_STORE_RELAXED(&sl->s_publish_ns, now_ns(CLOCK_MONOTONIC));
    NETELECT_STORE_RELAXED(&sl->s_n_nodes, n_nodes);
    NETELECT_STORE_RELAXED(&sl->s_n_chans, n_chans);
    NETELECT_STORE_RELAXED(&sl->s_node_tab_mask, nmask);
    NETELECT_STORE_RELAXED(&sl->s_chan_tab_mask, cmask);
    NETELECT_STORE_RELAXED(&sl->s_flags, 0u);
    NETELECT_STORE_RELAXED(&sl->s_payload_crc, (uint64_t)0);

    /* The slot's table still maps exactly these ids if they did not change
     * since this slot was last written successfully. */
    const bool reuse_tab = w->ids_ver && w->slot_ids_ver[s] == w->ids_ver && sg == &w->seg;
    w->slot_ids_ver[s] = 0;
    /* Clear two entries per store (the table is 64-byte aligned and its
     * size a power of two >= 16). */
    for (uint32_t i = 0; !reuse_tab && i <= nmask; i += 2)
        NETELECT_STORE_RELAXED((uint64_t *)(void *)&ntab[i], (uint64_t)0);
    for (uint32_t i = 0; i < n_nodes; i++) {
        const struct netelect_wnode *src = &nodes[i];
        struct netelect_shm_node *d = &nd[i];
        NETELECT_STORE_RELAXED(&d->n_id, src->id);
        NETELECT_STORE_RELAXED(&d->n_rtt, src->rtt_ns);
        NETELECT_STORE_RELAXED(&d->n_rtt_raw, src->rtt_raw_ns);
        NETELECT_STORE_RELAXED(&d->n_rtt_err, src->rtt_err_ns);
        NETELECT_STORE_RELAXED(&d->n_last_heard, src->last_heard_ns);
        NETELECT_STORE_RELAXED(&d->n_healthy, (uint8_t)(src->healthy != 0));
        NETELECT_STORE_RELAXED(&d->n_source, src->source);
        if (reuse_tab)
            continue;
        /* The writer is the only one storing to the table; its own loads
         * need no ordering. */
        uint32_t j = (uint32_t)netelect__mix64(src->id) & nmask;
        for (;;) {
            uint32_t e = NETELECT_LOAD_RELAXED(&ntab[j]);
            if (!e)
                break;
            if (nodes[e - 1].id == src->id) {
                rc = -EINVAL;
                goto seal;
            }
            j = (j + 1) & nmask;
        }
        NETELECT_STORE_RELAXED(&ntab[j], i + 1);
    }
    crash_point(w, CRASH_MID_PAYLOAD);

    for (uint32_t i = 0; i <= cmask; i += 2)
        NETELECT_STORE_RELAXED((uint64_t *)(void *)&ctab[i], (uint64_t)0);
    uint32_t m = 0, nb = 0;
    for (uint32_t c = 0; c < n_chans; c++) {
        const struct netelect_wchan *src = &chans[c];
        const uint32_t len = (uint32_t)strlen(src->name);
        const uint64_t hash = netelect__name_hash(src->name, len);
        uint32_t j = (uint32_t)hash & cmask;
        for (;;) {
            uint32_t e = NETELECT_LOAD_RELAXED(&ctab[j]);
            if (!e)
                break;
            const struct netelect_wchan *o = &chans[e - 1];
            if (strcmp(o->name, src->name) == 0) {
                rc = -EINVAL;
                goto seal;
            }
            j = (j + 1) & cmask;
        }
        NETELECT_STORE_RELAXED(&ctab[j], c + 1);

        struct netelect_shm_chan *d = &ch[c];
        NETELECT_STORE_RELAXED(&d->c_hash, hash);
        NETELECT_STORE_RELAXED(&d->c_name_off, nb);
        NETELECT_STORE_RELAXED(&d->c_name_len, len);
        NETELECT_STORE_RELAXED(&d->c_first, m);
        NETELECT_STORE_RELAXED(&d->c_n, src->n_members);
        for (uint32_t k = 0; k < len; k += 8) {
            uint64_t word = 0;
            memcpy(&word, src->name + k, len - k < 8 ? len - k : 8);
            NETELECT_STORE_RELAXED(&names[(nb + k) / 8], word);
        }
        nb += (len + 7) & ~7u;

        for (uint32_t k = 0; k < src->n_members; k++, m++) {
            const uint64_t id = src->members[k];
            int64_t ni;
            if (w->midx_ok) {
                ni = w->midx[m];
            } else {
                ni = node_find(ntab, nmask, nodes, id);
                if (w->midx)
                    w->midx[m] = (int32_t)ni;
            }
            if (w->mdown)
                w->mdown[m] = src->member_down && src->member_down[k];
            NETELECT_STORE_RELAXED(&m_ids[m], id);
            NETELECT_STORE_RELAXED(&m_rtt[m], ni < 0 ? NETELECT_RTT_UNKNOWN : nodes[ni].rtt_ns);
            NETELECT_STORE_RELAXED(&m_ok[m], (uint8_t)(ni >= 0 && nodes[ni].healthy &&
                                                       !(src->member_down && src->member_down[k])));
        }
    }
    NETELECT_STORE_RELAXED(&sl->s_n_members, m);
    NETELECT_STORE_RELAXED(&sl->s_name_bytes, nb);

seal:
    if (rc) {
        NETELECT_STORE_RELAXED(&sl->s_generation, (uint64_t)0);
        w->midx_ver = 0;
    } else {
        if (sg == &w->seg)
            w->slot_ids_ver[s] = w->ids_ver;
        if (w->midx)
            w->midx_ver = w->ids_ver;
        /* A full version: deltas from here on are relative to it. */
        w->full_ver++;
        w->log_base = gen;
        for (unsigned i = 0; i < NETELECT_SHM_MAX_SLOTS; i++)
            w->log[i].gen = 0;
    }
    /* Seals the payload above; the slot may be named by h_current now. */
    netelect__write_seqcount_end(&sl->s_seq, q);
    crash_point(w, CRASH_AFTER_SEQ_EVEN);
    return rc;
}

static int measure(const struct netelect_wnode *nodes, size_t n_nodes,
                   const struct netelect_wchan *chans, size_t n_chans, struct need *nd)
{
    if ((n_nodes && !nodes) || (n_chans && !chans))
        return -EINVAL;
    nd->nodes = n_nodes;
    nd->chans = n_chans;
    nd->members = 0;
    nd->names = 0;
    for (size_t c = 0; c < n_chans; c++) {
        if (!chans[c].name || (chans[c].n_members && !chans[c].members))
            return -EINVAL;
        size_t len = strnlen(chans[c].name, NETELECT_CHAN_NAME_MAX + 1);
        if (len == 0 || len > NETELECT_CHAN_NAME_MAX)
            return -EINVAL;
        nd->members += chans[c].n_members;
        nd->names += (len + 7) & ~(size_t)7;
    }
    if (nd->nodes > NETELECT_SHM_MAX_NODES || nd->chans > NETELECT_SHM_MAX_CHANS ||
        nd->members > NETELECT_SHM_MAX_MEMBERS || nd->names > NETELECT_SHM_MAX_NAME_BYTES)
        return -E2BIG;
    return 0;
}

static uint32_t grow_cap(uint32_t cap, uint64_t need, uint32_t max)
{
    if (need <= cap)
        return cap;
    uint64_t c = need + need / 2;
    if (c < (uint64_t)cap * 2)
        c = (uint64_t)cap * 2;
    return c > max ? max : (uint32_t)c;
}

/*
 * Moves to a larger segment: a new file with the same incarnation and the
 * new version already in slot 0 takes the name; the old file is marked
 * SUPERSEDED so its readers re-open the path at their next call.  The old
 * file is never shrunk (its readers keep a valid mapping).
 */
static int grow(struct netelect_writer *w, const struct need *nd,
                const struct netelect_wnode *nodes, const struct netelect_wchan *chans)
{
    struct segment ns = {.fd = -1};
    ns.L.slot_count = w->seg.L.slot_count;
    ns.L.max_nodes = grow_cap(w->seg.L.max_nodes, nd->nodes, NETELECT_SHM_MAX_NODES);
    ns.L.max_chans = grow_cap(w->seg.L.max_chans, nd->chans, NETELECT_SHM_MAX_CHANS);
    ns.L.max_members = grow_cap(w->seg.L.max_members, nd->members, NETELECT_SHM_MAX_MEMBERS);
    ns.L.max_name_bytes =
        grow_cap(w->seg.L.max_name_bytes, nd->names, NETELECT_SHM_MAX_NAME_BYTES) & ~7u;
    if (ns.L.max_name_bytes < nd->names)
        return -E2BIG;
    const uint64_t gen = w->gen + 1;
    uint8_t inc[16];
    memcpy(inc, hdr_of(&w->seg)->h_incarnation, 16);
    int rc = segment_build(w, &ns, gen, inc);
    if (rc)
        return rc;
    rc = write_slot(w, &ns, 0, gen, nodes, (uint32_t)nd->nodes, chans, (uint32_t)nd->chans);
    if (rc == 0)
        rc = segment_name(w, &ns);
    if (rc) {
        segment_discard(w, &ns);
        return rc;
    }
    struct netelect_shm_hdr *oh = hdr_of(&w->seg);
    /* Readers of the old file that see SUPERSEDED re-open the path and
     * find the new file, which rename() already made reachable. */
    leave_live(oh, atomic_load_explicit(&oh->h_state, memory_order_relaxed),
               NETELECT_SHM_SUPERSEDED);
    segment_unmap(&w->seg);
    w->seg = ns;
    w->gen = gen;
    memset(w->slot_word, 0, sizeof w->slot_word);
    w->slot_word[0] = gen << 8;
    memset(w->slot_ids_ver, 0, sizeof w->slot_ids_ver);
    return 0;
}

/*
 * Compares this publish's ids and memberships with the last one and sets
 * up the caches above.  Without memory for them, publishing just does the
 * full work.
 */
static void caches_prepare(struct netelect_writer *w, const struct netelect_wnode *nodes,
                           size_t n_nodes, const struct netelect_wchan *chans, size_t n_chans,
                           size_t n_members)
{
    bool same = n_nodes == w->prev_n && w->prev_ids;
    for (size_t i = 0; same && i < n_nodes; i++)
        same = nodes[i].id == w->prev_ids[i];
    if (!same) {
        w->ids_ver++;
        if (n_nodes > w->prev_ids_cap) {
            free(w->prev_ids);
            w->prev_ids_cap = n_nodes + n_nodes / 4;
            w->prev_ids = malloc(w->prev_ids_cap * sizeof *w->prev_ids);
            if (!w->prev_ids)
                w->prev_ids_cap = 0;
        }
        w->prev_n = w->prev_ids ? n_nodes : 0;
        for (size_t i = 0; i < w->prev_n; i++)
            w->prev_ids[i] = nodes[i].id;
        if (!w->prev_ids)
            w->ids_ver++; /* nothing to compare with next time: never equal */
    }

    bool msame = n_members == w->prev_m && w->prev_members;
    for (size_t c = 0, m = 0; msame && c < n_chans; c++)
        for (uint32_t k = 0; msame && k < chans[c].n_members; k++, m++)
            msame = chans[c].members[k] == w->prev_members[m];
    if (!msame) {
        if (n_members > w->prev_members_cap) {
            free(w->prev_members);
            free(w->midx);
            free(w->mdown);
            w->prev_members_cap = n_members + n_members / 4 + 1;
            w->prev_members = malloc(w->prev_members_cap * sizeof *w->prev_members);
            w->midx = malloc(w->prev_members_cap * sizeof *w->midx);
            w->mdown = malloc(w->prev_members_cap * sizeof *w->mdown);
            if (!w->prev_members || !w->midx || !w->mdown) {
                free(w->prev_members), free(w->midx), free(w->mdown);
                w->prev_members = NULL, w->midx = NULL, w->mdown = NULL;
                w->prev_members_cap = 0;
            }
        }
        w->prev_m = w->prev_members ? n_members : 0;
        for (size_t c = 0, m = 0; w->prev_members && c < n_chans; c++)
            for (uint32_t k = 0; k < chans[c].n_members; k++, m++)
                w->prev_members[m] = chans[c].members[k];
        w->midx_ver = 0;
    }
    w->midx_ok = w->midx && msame && w->midx_ver && w->midx_ver == w->ids_ver;
}

static int publish(struct netelect_writer *w, const struct netelect_wnode *nodes, size_t n_nodes,
                   const struct netelect_wchan *chans, size_t n_chans)
{
    struct need nd;
    int rc;
    if ((rc = measure(nodes, n_nodes, chans, n_chans, &nd)))
        return rc;
    const struct netelect_shm_layout *L = &w->seg.L;
    caches_prepare(w, nodes, n_nodes, chans, n_chans, nd.members);
    if (nd.nodes > L->max_nodes || nd.chans > L->max_chans || nd.members > L->max_members ||
        nd.names > L->max_name_bytes)
        return w->external ? -ENOSPC : grow(w, &nd, nodes, chans);

    const unsigned s = choose_slot(w);
    const uint64_t gen = w->gen + 1;
    /* Forget what the slot held before touching it: if the write fails the
     * slot is garbage and must count as the oldest. */
    w->slot_word[s] = 0;
    rc = write_slot(w, &w->seg, s, gen, nodes, (uint32_t)n_nodes, chans, (uint32_t)n_chans);
    if (rc)
        return rc;
    publish_slot(w, s, gen);
    return 0;
}

/* Names the sealed slot `s` (version `gen`) in h_current, and what follows
 * a publish. */
static void publish_slot(struct netelect_writer *w, unsigned s, uint64_t gen)
{
    crash_point(w, CRASH_BEFORE_CURRENT);
    /* Release: publishes the sealed slot; pairs with the reader's acquire
     * load of h_current, which therefore sees seq even and the payload. */
    netelect__store_release64(&hdr_of(&w->seg)->h_current, gen << 8 | s);
    crash_point(w, CRASH_AFTER_CURRENT);
    w->slot_word[s] = gen << 8 | s;
    w->gen = gen;
    /* A publish is a sign of life as good as a heartbeat (readers judge
     * the writer by this time): an agent busy starting up or publishing
     * between two beats is not taken for dead.  h_heartbeat_seq, which
     * readers in another time namespace watch, moves only on beats. */
    atomic_store_explicit(&hdr_of(&w->seg)->h_heartbeat_mono_ns, now_ns(CLOCK_MONOTONIC),
                          memory_order_relaxed);
    wake_waiters(&w->seg);
}

static void caches_free(struct netelect_writer *w)
{
    free(w->prev_ids);
    free(w->prev_members);
    free(w->midx);
    free(w->mdown);
    free(w->rev_first);
    free(w->rev_pos);
    free(w->mark);
    for (unsigned i = 0; i < NETELECT_SHM_MAX_SLOTS; i++)
        free(w->log[i].idx);
}

/* ---- delta publishing (netelect__writer_update) */

/* `p` with room for `need` elements of `elem` bytes (realloc'ed, *cap
 * updated), or NULL with `p` and *cap untouched. */
static void *reserve(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap && p)
        return p;
    const size_t c = need + need / 4 + 16;
    if (c > SIZE_MAX / elem)
        return NULL;
    void *n = realloc(p, c * elem);
    if (n)
        *cap = c;
    return n;
}

/* Node -> its replica entries, for the version of the last full write:
 * a counting sort of midx (member -> node).  Once per full write. */
static int rev_build(struct netelect_writer *w, uint32_t n_nodes, uint32_t n_members)
{
    if (w->rev_ver == w->full_ver)
        return 0;
    if (n_members && (!w->midx || !w->mdown || w->midx_ver != w->ids_ver))
        return -ENOMEM; /* the caches could not be allocated at that write */
    uint32_t *first = reserve(w->rev_first, &w->rev_first_cap, (size_t)n_nodes + 1, sizeof *first);
    if (!first)
        return -ENOMEM;
    w->rev_first = first;
    uint32_t *pos = reserve(w->rev_pos, &w->rev_pos_cap, n_members, sizeof *pos);
    if (!pos)
        return -ENOMEM;
    w->rev_pos = pos;
    memset(first, 0, ((size_t)n_nodes + 1) * sizeof *first);
    for (uint32_t m = 0; m < n_members; m++)
        if (w->midx[m] >= 0 && (uint32_t)w->midx[m] < n_nodes)
            first[w->midx[m]]++;
    uint32_t sum = 0;
    for (uint32_t i = 0; i < n_nodes; i++)
        first[i] = sum += first[i]; /* inclusive: the end of node i's run */
    first[n_nodes] = sum;
    for (uint32_t m = n_members; m-- > 0;)
        if (w->midx[m] >= 0 && (uint32_t)w->midx[m] < n_nodes)
            pos[--first[w->midx[m]]] = m; /* ends as the start of the run */
    w->rev_ver = w->full_ver;
    return 0;
}

/* Index of node `id` in slot `c` (the current version), -1 if absent.  The
 * writer reads back its own stores: no ordering needed. */
static int64_t cur_node_find(const struct segment *sg, unsigned c, uint64_t id)
{
    const struct netelect_shm_slot *sl = slot_of(sg, c);
    const uint32_t mask = sl->s_node_tab_mask, n = sl->s_n_nodes;
    const uint32_t *tab = region(sg, c, NETELECT_RG_NODE_TAB);
    const struct netelect_shm_node *nd = region(sg, c, NETELECT_RG_NODES);
    for (uint32_t i = (uint32_t)netelect__mix64(id) & mask, probes = 0; probes <= mask;
         i = (i + 1) & mask, probes++) {
        const uint32_t e = tab[i];
        if (!e)
            return -1;
        if (e <= n && nd[e - 1].n_id == id)
            return e - 1;
    }
    return -1;
}

static void copy_words(uint64_t *dst, const uint64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        NETELECT_STORE_RELAXED(&dst[i], src[i]);
}

/* Slot s := slot c, the used part only (both hold the same layout).
 * Inside s's write section. */
static void slot_copy(struct netelect_writer *w, unsigned s, unsigned c)
{
    const struct segment *sg = &w->seg;
    const struct netelect_shm_slot *a = slot_of(sg, c);
    struct netelect_shm_slot *b = slot_of(sg, s);
    const uint32_t nn = a->s_n_nodes, nc = a->s_n_chans, nm = a->s_n_members;
    const uint32_t nb = a->s_name_bytes, nmask = a->s_node_tab_mask, cmask = a->s_chan_tab_mask;
    NETELECT_STORE_RELAXED(&b->s_n_nodes, nn);
    NETELECT_STORE_RELAXED(&b->s_n_chans, nc);
    NETELECT_STORE_RELAXED(&b->s_n_members, nm);
    NETELECT_STORE_RELAXED(&b->s_name_bytes, nb);
    NETELECT_STORE_RELAXED(&b->s_node_tab_mask, nmask);
    NETELECT_STORE_RELAXED(&b->s_chan_tab_mask, cmask);
    NETELECT_STORE_RELAXED(&b->s_flags, a->s_flags);
    NETELECT_STORE_RELAXED(&b->s_payload_crc, a->s_payload_crc);
    /* In 8-byte words: regions are 64-byte aligned and the byte-sized
     * ones (health, names) are followed by a region or the slot's end on a
     * line boundary, so rounding up stays inside the slot's own region. */
    static const struct {
        int rg;
        unsigned per8; /* elements per 8 bytes, or 0: `words` 8-byte words each */
        unsigned words;
    } rgs[] = {
        {NETELECT_RG_NODES, 0, sizeof(struct netelect_shm_node) / 8},
        {NETELECT_RG_NODE_TAB, 2, 0},
        {NETELECT_RG_CHANS, 0, sizeof(struct netelect_shm_chan) / 8},
        {NETELECT_RG_CHAN_TAB, 2, 0},
        {NETELECT_RG_M_IDS, 1, 0},
        {NETELECT_RG_M_RTT, 1, 0},
        {NETELECT_RG_M_HEALTHY, 8, 0},
        {NETELECT_RG_NAMES, 8, 0},
    };
    const uint64_t count[] = {nn, (uint64_t)nmask + 1, nc, (uint64_t)cmask + 1, nm, nm, nm, nb};
    for (unsigned r = 0; r < sizeof rgs / sizeof rgs[0]; r++) {
        const uint64_t words = rgs[r].per8 ? (count[r] + rgs[r].per8 - 1) / rgs[r].per8
                                           : count[r] * rgs[r].words;
        copy_words(region(sg, s, rgs[r].rg), region(sg, c, rgs[r].rg), words);
    }
    w->slot_ids_ver[s] = w->slot_ids_ver[c];
}

/* Node i and its replica entries in slot s := those of slot c. */
static void node_catch_up(struct netelect_writer *w, unsigned s, unsigned c, uint32_t i)
{
    const struct segment *sg = &w->seg;
    const struct netelect_shm_node *a = (const struct netelect_shm_node *)region(sg, c, NETELECT_RG_NODES) + i;
    struct netelect_shm_node *b = (struct netelect_shm_node *)region(sg, s, NETELECT_RG_NODES) + i;
    NETELECT_STORE_RELAXED(&b->n_rtt, a->n_rtt);
    NETELECT_STORE_RELAXED(&b->n_rtt_raw, a->n_rtt_raw);
    NETELECT_STORE_RELAXED(&b->n_rtt_err, a->n_rtt_err);
    NETELECT_STORE_RELAXED(&b->n_last_heard, a->n_last_heard);
    NETELECT_STORE_RELAXED(&b->n_healthy, a->n_healthy);
    NETELECT_STORE_RELAXED(&b->n_source, a->n_source);
    const uint64_t *rtt_a = region(sg, c, NETELECT_RG_M_RTT);
    const uint8_t *ok_a = region(sg, c, NETELECT_RG_M_HEALTHY);
    uint64_t *rtt_b = region(sg, s, NETELECT_RG_M_RTT);
    uint8_t *ok_b = region(sg, s, NETELECT_RG_M_HEALTHY);
    for (uint32_t k = w->rev_first[i]; k < w->rev_first[i + 1]; k++) {
        const uint32_t p = w->rev_pos[k];
        NETELECT_STORE_RELAXED(&rtt_b[p], rtt_a[p]);
        NETELECT_STORE_RELAXED(&ok_b[p], ok_a[p]);
    }
}

/* Node i and its replica entries in slot s := the update `u`, with the
 * rules of write_slot (a replica is healthy iff its node is and the last
 * full publish did not mark it down in that channel). */
static void node_apply(struct netelect_writer *w, unsigned s, uint32_t i,
                       const struct netelect_wnode *u)
{
    const struct segment *sg = &w->seg;
    struct netelect_shm_node *d = (struct netelect_shm_node *)region(sg, s, NETELECT_RG_NODES) + i;
    const uint8_t healthy = u->healthy != 0;
    NETELECT_STORE_RELAXED(&d->n_rtt, u->rtt_ns);
    NETELECT_STORE_RELAXED(&d->n_rtt_raw, u->rtt_raw_ns);
    NETELECT_STORE_RELAXED(&d->n_rtt_err, u->rtt_err_ns);
    NETELECT_STORE_RELAXED(&d->n_last_heard, u->last_heard_ns);
    NETELECT_STORE_RELAXED(&d->n_healthy, healthy);
    NETELECT_STORE_RELAXED(&d->n_source, u->source);
    uint64_t *rtt = region(sg, s, NETELECT_RG_M_RTT);
    uint8_t *ok = region(sg, s, NETELECT_RG_M_HEALTHY);
    for (uint32_t k = w->rev_first[i]; k < w->rev_first[i + 1]; k++) {
        const uint32_t p = w->rev_pos[k];
        NETELECT_STORE_RELAXED(&rtt[p], u->rtt_ns);
        NETELECT_STORE_RELAXED(&ok[p], (uint8_t)(healthy && !w->mdown[p]));
    }
}

int netelect__writer_update(struct netelect_writer *w, const struct netelect_wnode *upd, size_t n)
{
    if (!w || (n && !upd))
        return -EINVAL;
    /* After a failed publish the segment holds an older view than the
     * agent's: an update relative to the agent's would be applied to the
     * wrong base. */
    if (w->fails)
        return -ESTALE;
    const struct segment *sg = &w->seg;
    const unsigned c =
        (unsigned)(atomic_load_explicit(&hdr_of(sg)->h_current, memory_order_relaxed) & 0xff);
    const struct netelect_shm_slot *cs = slot_of(sg, c);
    const uint32_t n_nodes = cs->s_n_nodes;
    if (n > n_nodes)
        return n_nodes ? -EINVAL : -ENOENT; /* a duplicate, or an id that is not a node */
    int rc = rev_build(w, n_nodes, cs->s_n_members);
    if (rc)
        return rc;
    uint64_t *mark = reserve(w->mark, &w->mark_cap, n_nodes, sizeof *mark);
    if (!mark)
        return -ENOMEM;
    if (mark != w->mark)
        memset(mark, 0, w->mark_cap * sizeof *mark); /* stamps of the old array mean nothing */
    w->mark = mark;
    const uint64_t gen = w->gen + 1;
    /* The entry for `gen` replaces the one for gen - NETELECT_SHM_MAX_SLOTS,
     * which no catch-up can need any more (see below). */
    struct dlog *e = &w->log[gen % NETELECT_SHM_MAX_SLOTS];
    e->gen = 0;
    uint32_t *idx = reserve(e->idx, &e->cap, n, sizeof *idx);
    if (!idx)
        return -ENOMEM;
    e->idx = idx;

    /* Everything is checked before the slot is touched: a refused update
     * changes nothing. */
    const uint64_t stamp = ++w->stamp;
    const struct netelect_shm_node *cnd = region(sg, c, NETELECT_RG_NODES);
    int64_t i = -1;
    for (size_t k = 0; k < n; k++) {
        /* Agents pass nodes in view order more often than not: the one
         * after the last is tried before the hash table (a random access
         * per node in a large view). */
        if (!((uint64_t)(i + 1) < n_nodes && cnd[i + 1].n_id == upd[k].id))
            i = cur_node_find(sg, c, upd[k].id);
        else
            i++;
        if (i < 0)
            return -ENOENT;
        if (mark[i] == stamp)
            return -EINVAL;
        mark[i] = stamp;
        idx[k] = (uint32_t)i;
    }
    e->n = n;

    const unsigned s = choose_slot(w);
    /* Slot s holds version gs.  It catches up from the log if every version
     * in (gs, current] is a delta on the structure s already has, all of
     * them still logged; otherwise it gets the current slot whole. */
    const uint64_t gs = w->slot_word[s] >> 8;
    bool catch_up = w->slot_word[s] && gs >= w->log_base && w->gen - gs < NETELECT_SHM_MAX_SLOTS;
    size_t logged = 0;
    for (uint64_t g = gs + 1; catch_up && g <= w->gen; g++) {
        catch_up = w->log[g % NETELECT_SHM_MAX_SLOTS].gen == g;
        logged += w->log[g % NETELECT_SHM_MAX_SLOTS].n;
    }
    /* Past an eighth of the nodes, one sequential copy of the slot is
     * cheaper than scattered node-by-node catch-up. */
    if (logged > n_nodes / 8)
        catch_up = false;
    w->slot_word[s] = 0; /* garbage until sealed, as in publish() */

    struct netelect_shm_slot *sl = slot_of(sg, s);
    /* Every payload store below is inside begin/end (layout.h), exactly as
     * for a full version: to a reader the slot is simply being rewritten. */
    const uint64_t q = netelect__write_seqcount_begin(&sl->s_seq);
    crash_point(w, CRASH_AFTER_SEQ_ODD);
    NETELECT_STORE_RELAXED(&sl->s_generation, gen);
    NETELECT_STORE_RELAXED(&sl->s_publish_ns, now_ns(CLOCK_MONOTONIC));
    if (catch_up) {
        for (uint64_t g = gs + 1; g <= w->gen; g++) {
            const struct dlog *l = &w->log[g % NETELECT_SHM_MAX_SLOTS];
            for (size_t k = 0; k < l->n; k++)
                if (mark[l->idx[k]] != stamp) { /* once each; the update's own nodes follow */
                    mark[l->idx[k]] = stamp;
                    node_catch_up(w, s, c, l->idx[k]);
                }
        }
    } else {
        slot_copy(w, s, c);
    }
    crash_point(w, CRASH_MID_PAYLOAD);
    for (size_t k = 0; k < n; k++)
        node_apply(w, s, idx[k], &upd[k]);
    netelect__write_seqcount_end(&sl->s_seq, q);
    crash_point(w, CRASH_AFTER_SEQ_EVEN);
    e->gen = gen;
    publish_slot(w, s, gen);
    return 0;
}

int netelect__writer_publish(struct netelect_writer *w, const struct netelect_wnode *nodes,
                             size_t n_nodes, const struct netelect_wchan *chans, size_t n_chans)
{
    if (!w)
        return -EINVAL;
    const int rc = publish(w, nodes, n_nodes, chans, n_chans);
    _Atomic uint32_t *state = &hdr_of(&w->seg)->h_state;
    if (rc == 0) {
        if (w->fails >= NETELECT_WRITER_STALL_AFTER) {
            /* Release: h_gone_mono_ns is 0 again before a reader sees LIVE
             * (h_current already published the data). */
            uint32_t st = NETELECT_SHM_STALLED;
            atomic_store_explicit(&hdr_of(&w->seg)->h_gone_mono_ns, 0, memory_order_relaxed);
            atomic_compare_exchange_strong_explicit(state, &st, NETELECT_SHM_LIVE,
                                                    memory_order_release, memory_order_relaxed);
        }
        w->fails = 0;
    } else if (++w->fails == NETELECT_WRITER_STALL_AFTER) {
        /* Heartbeats go on, so without this readers would serve the frozen
         * view as the live agent's forever. */
        leave_live(hdr_of(&w->seg), NETELECT_SHM_LIVE, NETELECT_SHM_STALLED);
    }
    return rc;
}

unsigned netelect__writer_failures(const struct netelect_writer *w)
{
    return w ? w->fails : 0;
}

void netelect__writer_report(const struct netelect_writer *w, struct netelect_writer_report *out)
{
    if (w && out)
        *out = w->rep;
}

int netelect__writer_heartbeat(struct netelect_writer *w)
{
    if (!w)
        return -EINVAL;
    struct netelect_shm_hdr *h = hdr_of(&w->seg);
    /* Relaxed: readers only look for progress of the counter, on their own
     * clock; no data is published through it. */
    uint64_t q = atomic_load_explicit(&h->h_heartbeat_seq, memory_order_relaxed);
    atomic_store_explicit(&h->h_heartbeat_seq, q + 1, memory_order_relaxed);
    crash_point(w, CRASH_MID_HEARTBEAT);
    atomic_store_explicit(&h->h_heartbeat_mono_ns, now_ns(CLOCK_MONOTONIC), memory_order_relaxed);
    return 0;
}

uint64_t netelect__writer_generation(const struct netelect_writer *w)
{
    return w ? w->gen : 0;
}

int netelect__writer_open_mem(const struct netelect_writer_config *cfg, void *mem, size_t size,
                              struct netelect_writer **out)
{
    if (!cfg || !mem || !out || ((uintptr_t)mem % NETELECT_SHM_PAGE))
        return -EINVAL;
    *out = NULL;
    struct need init;
    int rc = measure(cfg->initial_nodes, cfg->n_initial_nodes, cfg->initial_chans,
                     cfg->n_initial_chans, &init);
    if (rc)
        return rc;
    struct netelect_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->external = true;
    w->lock_fd = -1;
    w->seg.fd = -1;
    w->cfg = *cfg;
    w->cfg.name = NULL;
    w->cfg.initial_nodes = NULL, w->cfg.n_initial_nodes = 0;
    w->cfg.initial_chans = NULL, w->cfg.n_initial_chans = 0;
    w->cfg.mode = 0644;
    w->cfg.slots = cfg->slots ? cfg->slots : 3;
    if (!w->cfg.heartbeat_period_ns)
        w->cfg.heartbeat_period_ns = UINT64_C(100000000);
    struct netelect_shm_layout *L = &w->seg.L;
    L->slot_count = w->cfg.slots;
    L->max_nodes = cfg->max_nodes ? cfg->max_nodes : 1024;
    L->max_chans = cfg->max_chans ? cfg->max_chans : 64;
    L->max_members = cfg->max_members ? cfg->max_members : 1024;
    L->max_name_bytes = L->max_chans * 32u;
    rc = netelect__layout_compute(L);
    if (rc == 0 && L->segment_size > size)
        rc = -ENOSPC;
    /* No growth over caller memory: a snapshot must fit as configured. */
    if (rc == 0 && (init.nodes > L->max_nodes || init.chans > L->max_chans ||
                    init.members > L->max_members || init.names > L->max_name_bytes))
        rc = -ENOSPC;
    if (rc) {
        netelect__writer_close(w, false);
        return rc;
    }
    uint8_t inc[16];
    fill_random(inc, sizeof inc);
    w->seg.base = mem;
    w->gen = 1;
    segment_init(w, &w->seg, w->gen, inc);
    if (init.nodes || init.chans) {
        /* Slot 0 is already current here: the seq protocol covers a reader
         * that attaches to the memory this early. */
        caches_prepare(w, cfg->initial_nodes, init.nodes, cfg->initial_chans, init.chans,
                       init.members);
        rc = write_slot(w, &w->seg, 0, w->gen, cfg->initial_nodes, (uint32_t)init.nodes,
                        cfg->initial_chans, (uint32_t)init.chans);
        if (rc) {
            netelect__writer_close(w, false); /* external: leaves `mem` alone */
            return rc;
        }
    }
    w->slot_word[0] = w->gen << 8;
    *out = w;
    return 0;
}

void netelect__writer_close(struct netelect_writer *w, bool abandon)
{
    if (!w)
        return;
    if (abandon && w->seg.base) {
        struct netelect_shm_hdr *h = hdr_of(&w->seg);
        leave_live(h, atomic_load_explicit(&h->h_state, memory_order_relaxed),
                   NETELECT_SHM_ABANDONED);
        if (w->seg.fd >= 0)
            futimens(w->seg.fd, NULL); /* netelect_view_fd() holders, too */
    }
    if (w->external)
        w->seg.base = NULL;
    segment_unmap(&w->seg);
    if (w->reg)
        netelect__reg_writer_close(w->reg);
    if (w->lock_fd >= 0)
        close(w->lock_fd);
    caches_free(w);
    free(w);
}
