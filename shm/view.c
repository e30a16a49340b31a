/* SPDX-License-Identifier: MIT */
/*
 * The reader: netelect_view_* (include/netelect/view.h).  Protocol and
 * rationale: shm/README.md; field contracts: shm/layout.h.
 *
 * Every read is a latch read: load h_current (acquire), load the named
 * slot's seq (acquire, must be even), read the payload with relaxed loads,
 * bounds-checking every count and index against the private layout copy,
 * then an acquire fence and a re-load of seq.  Only if seq did not move is
 * the answer returned; otherwise the read is retried (bounded).  A read of
 * a consistent version that is nevertheless out of bounds is a corrupt (or
 * hostile) segment: NETELECT_ECORRUPT, never an out-of-bounds access.
 *
 * The election kernel (netelect_elect) reads the member arrays with plain
 * loads, which is what makes a 10k-replica election run at in-memory
 * speed.  In C11 terms that is a data race, but only with a writer that
 * laps this reader, and any such read is discarded by the seq re-check;
 * the kernels never trust what they read (they stay inside [0, n) and
 * their output whatever the input does meanwhile: core/kernel.h).  Rank
 * and top-k past 32 copy the members into a per-thread buffer first (see
 * members_copy).  Builds with NETELECT_SHM_ATOMIC_PAYLOAD (the TSAN test)
 * copy with relaxed atomic loads, for elections too.
 *
 * The mapping itself is swapped on agent restart and segment growth under
 * liburcu-bp: readers hold urcu_bp_read_lock() while they use a mapping,
 * and the old mapping is unmapped by call_rcu() after a grace period.
 *
 * NETELECT_NO_VALIDATE (the torture test's negative control only) compiles
 * the seq checks out: such a reader must be caught accepting torn reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <urcu-bp.h>
#include <urcu/call-rcu.h>
#include <urcu/compiler.h>
#if !defined(NETELECT_URCU_OUTOFLINE)
/*
 * The read-side lock and unlock inline.  liburcu writes both (and their
 * helper) in under ten lines precisely so that non-LGPL code may inline
 * them (LGPL-2.1 section 5; see the comments in urcu/static/urcu-bp.h);
 * nothing else from the static header is used.  Out of line they cost
 * ~20 ns per pair on Debian 12, more than the whole election budget.  The
 * meson build compiles this file with TLS descriptors (-mtls-dialect=gnu2)
 * where supported, which makes liburcu's thread-local reader pointer, in
 * another DSO, cost a few cycles instead of two __tls_get_addr() calls.
 */
#include <urcu/static/urcu-bp.h>
#define rcu_lock() _urcu_bp_read_lock()
#define rcu_unlock() _urcu_bp_read_unlock()
#else
/* Sanitizer builds: out of line, so TSAN's suppressions for liburcu apply
 * and UBSan does not trip over liburcu 0.13's under-aligned reader records
 * (shm/meson.build). */
#define rcu_lock() urcu_bp_read_lock()
#define rcu_unlock() urcu_bp_read_unlock()
#endif

#include "netelect.h"
#include "core/kernel.h" /* NETELECT__TOPK_BUF_MAX */
#include "shm/layout.h"
#include "shm/path.h"
#include "shm/registry.h"
#include "shm/trust.h"
#include "shm/view_internal.h"

#define MAX_TRIES 8
#define DEFAULT_FAIL_STATIC_NS UINT64_C(2000000000)
#define MIN_STALE_NS UINT64_C(300000000)
/* A writer whose lock is held (alive) but whose heartbeat stopped is hung
 * after max(HANG_PERIODS periods, MIN_HANG_NS). */
#define HANG_PERIODS 10u
#define MIN_HANG_NS UINT64_C(1000000000)
#define REATTACH_BACKOFF_NS UINT64_C(20000000)
#define LIVENESS_EVERY 64u /* calls per thread between clock reads */
/* Elections pin their slot in the registry from this many replicas on;
 * shorter ones are over long before a writer could lap them. */
#define ANNOUNCE_MIN_MEMBERS 256u
/* Channels up to this many members keep their geometry in the thread's
 * cache (elect_geo), elected by the same inline loop netelect_elect()
 * uses below its small-n threshold; past it the election dominates. */
#define GEO_MAX_N 16u
_Static_assert(GEO_MAX_N < ANNOUNCE_MIN_MEMBERS, "elect_geo never announces");

/* Internal "the data I just read is inconsistent" code: retried if the seq
 * moved, NETELECT_ECORRUPT if it did not. */
#define E_GARBAGE (-1000000)

/*
 * The header page seen by the fast paths (netelect_view_generation() and an
 * election answered from the thread's cache), which take no RCU read lock:
 * page 0 of the segment mapped on its own.  When its mapping is retired,
 * the page is replaced in place (mmap MAP_FIXED, atomic for concurrent
 * readers) by an anonymous zero page, whose h_state 0 (INIT, impossible in
 * an attached segment) sends a late fast-path reader to the slow path.
 * The zero page costs 4 KiB of address space and no memory (the segment
 * itself is released) until netelect_view_close().
 */
struct fastref {
    const struct netelect_shm_hdr *h;
    uint64_t map_id;
    struct fastref *next; /* the view's retired list, under reattach_lock */
};

struct map {
    const uint8_t *base;
    size_t size;
    struct fastref *fr;
    struct netelect_shm_layout L;
    dev_t dev;
    ino_t ino;
    uint64_t id; /* process-unique, never reused: keys per-thread caches */
    struct netelect__reg_reader *reg;
    int lock_fd;       /* <name>.lock read-only, -1 if we may not open it */
    int fd;            /* the segment, read-only (netelect_view_wait), -1 external */
    bool writer_clock; /* the writer's CLOCK_MONOTONIC is ours: see liveness_check */
    struct rcu_head rcu;
    struct map *live_next; /* g_live list, under g_live_lock */
    bool external;         /* netelect__view_open_mem(): not ours to unmap */
};

struct netelect_view {
    /* Line 0, read by every call and written only on reattach/staleness
     * changes, so reader threads keep it shared in their caches. */
    /* The mapping in use: swapped with a release store by the reattaching
     * thread, read with acquire under the urcu-bp read lock. */
    _Alignas(64) struct map *_Atomic map;
    /* Its header page for the lock-free fast paths: swapped with map. */
    struct fastref *_Atomic fast;
    _Atomic int stale;
    _Atomic int dead; /* the writer is gone (maybe still inside fail-static) */
    uint64_t id;
    netelect__clock_fn clock;
    void *clock_ctx;
    struct netelect_view_opts opts;
    struct netelect__trust trust; /* uids whose segments we accept, fixed at open */

    /* Liveness, shared by all threads of this handle; relaxed: they are
     * estimates, and a race only moves a deadline by one check.  Written
     * every LIVENESS_EVERY calls at most when the heartbeat moved. */
    _Alignas(64) _Atomic uint64_t hb_map;      /* map id the two fields below are about */
    _Atomic uint64_t hb_seen;     /* last h_heartbeat_seq seen */
    _Atomic uint64_t hb_seen_at;  /* reader clock when it was first seen */
    _Atomic uint64_t gone_since;  /* reader clock when ABANDONED was first seen, 0 */
    _Atomic uint64_t next_reattach;
    _Atomic uint64_t reattaches;
    /* Counted by readers that were lapped: off the read-mostly lines. */
    _Alignas(64) _Atomic uint64_t retries;
    _Alignas(64) pthread_mutex_t reattach_lock; /* slow path only, never held by readers */
    struct fastref *retired; /* zeroed header pages, unmapped at close */
    struct notify *nt;       /* netelect_view_fd(), under nt_lock */
    pthread_mutex_t nt_lock;
    struct netelect__shm_paths p;
};

/* netelect_view_status() with our own struct, for the library's own use. */
static int view_status(struct netelect_view *v, struct netelect_view_status *out);

/* Per-thread state: one channel-lookup cache and the registry records.  The
 * initial-exec model makes each access a %fs-relative load (this sits on
 * the 15 ns election path); the block is small enough for glibc's static
 * TLS surplus even when libnetelect is dlopen()ed. */
#define TLS_REG 4
#define TLS_NAME 48
struct tls_state {
    /* The last validated election: its key (view, mapping, version, self,
     * channel) and its answer.  A version never changes once published
     * (generations are never reused), so a hit is the answer. */
    uint64_t view_id, map_id, cur, self_id;
    struct netelect_result res;
    uint32_t chan_idx, name_len;
    char name[TLS_NAME];
    uint32_t tick;
    bool res_valid;
    /* Where that channel's members are in that version, for elections of
     * up to GEO_MAX_N members (geo_valid): the slot and the member arrays,
     * taken from a validated read whose c_first/c_n passed chan_range's
     * check against the private layout of mapping map_id.  Same key as
     * chan_idx: a version's geometry never changes once published, so a
     * later question on (view, map_id, cur, name) reads the member data
     * through these pointers without re-reading any bound from the
     * segment (elect_geo).  Never dereferenced unless map_id is the view's
     * current mapping, under the RCU read lock. */
    bool geo_valid;
    uint32_t geo_n;
    const struct netelect_shm_slot *geo_sl;
    const uint64_t *geo_ids, *geo_rtt;
    const uint8_t *geo_ok;
    uint32_t destructor_set;
    struct {
        uint64_t map_id;
        _Atomic uint64_t *announce;
    } reg[TLS_REG];
};
static __thread struct tls_state tls __attribute__((tls_model("initial-exec")));

static _Atomic uint64_t g_ids = 1;
static pthread_mutex_t g_live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct map *g_live;
static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static uint64_t mono_clock(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- thread exit: give registry records back */

static void thread_exit(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_live_lock);
    for (int i = 0; i < TLS_REG; i++) {
        if (!tls.reg[i].map_id)
            continue;
        for (struct map *m = g_live; m; m = m->live_next)
            if (m->id == tls.reg[i].map_id && m->reg)
                netelect__reg_release(m->reg, tls.reg[i].announce);
        tls.reg[i].map_id = 0;
    }
    pthread_mutex_unlock(&g_live_lock);
}

static void key_init(void)
{
    if (pthread_key_create(&g_key, thread_exit) != 0)
        g_key = (pthread_key_t)-1;
}

/*
 * This thread's announce word in map m's registry, claiming a record on
 * first use (slow, once per thread and mapping).  NULL: no registry, table
 * full, or this thread already announces in TLS_REG other mappings; the
 * reader then relies on validation alone.
 */
static _Atomic uint64_t *announce_slot(struct map *m)
{
#ifdef NETELECT_NO_VALIDATE
    /* The negative control removes every protection, grace periods too. */
    return NULL;
#endif
    if (!m->reg)
        return NULL;
    for (int i = 0; i < TLS_REG; i++)
        if (tls.reg[i].map_id == m->id)
            return tls.reg[i].announce;
    int free_i = -1;
    pthread_mutex_lock(&g_live_lock);
    for (int i = 0; i < TLS_REG && free_i < 0; i++) {
        bool live = false;
        for (struct map *x = g_live; x && tls.reg[i].map_id; x = x->live_next)
            live |= x->id == tls.reg[i].map_id;
        if (!live)
            free_i = i; /* empty, or its mapping is gone with its registry */
    }
    _Atomic uint64_t *a = NULL;
    if (free_i >= 0 && (a = netelect__reg_claim(m->reg))) {
        tls.reg[free_i].map_id = m->id;
        tls.reg[free_i].announce = a;
    }
    pthread_mutex_unlock(&g_live_lock);
    if (a && !tls.destructor_set) {
        pthread_once(&g_key_once, key_init);
        if (g_key != (pthread_key_t)-1 && pthread_setspecific(g_key, (void *)1) == 0)
            tls.destructor_set = 1;
    }
    return a;
}

/* ---- mappings */

/* This process's time and pid namespaces, looked up once each (0: unknown;
 * a process never changes either). */
static uint64_t own_ns(_Atomic uint64_t *cached, uint64_t (*lookup)(void))
{
    uint64_t t = atomic_load_explicit(cached, memory_order_relaxed); /* 0 not yet */
    if (!t) {
        t = lookup();
        atomic_store_explicit(cached, t ? t : UINT64_MAX, memory_order_relaxed);
    }
    return t == UINT64_MAX ? 0 : t;
}
static _Atomic uint64_t g_timens, g_pidns;
#define own_timens() own_ns(&g_timens, netelect__timens)
#define own_pidns() own_ns(&g_pidns, netelect__pidns)

static void map_free(struct map *m)
{
    pthread_mutex_lock(&g_live_lock);
    for (struct map **pp = &g_live; *pp; pp = &(*pp)->live_next)
        if (*pp == m) {
            *pp = m->live_next;
            break;
        }
    pthread_mutex_unlock(&g_live_lock);
    if (m->reg)
        netelect__reg_detach(m->reg);
    if (m->lock_fd >= 0)
        close(m->lock_fd);
    if (m->fd >= 0)
        close(m->fd);
    if (!m->external)
        munmap((void *)m->base, m->size);
    if (m->fr) {
        if (!m->external)
            munmap((void *)m->fr->h, NETELECT_SHM_PAGE);
        free(m->fr);
    }
    free(m);
}

/* After a grace period no RCU reader is on m; fast-path readers may still
 * be, so its header page is zeroed in place rather than unmapped (the
 * fastref stays on the view's retired list). */
static void map_free_rcu(struct rcu_head *head)
{
    struct map *m = caa_container_of(head, struct map, rcu);
    void *p = mmap((void *)m->fr->h, NETELECT_SHM_PAGE, PROT_READ,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    (void)p; /* on failure the file page stays mapped: still safe to read */
    m->fr = NULL;
    map_free(m);
}

/*
 * Opens, checks and maps the file at the view's path.  Nothing read from
 * the file is trusted until netelect__layout_validate() copied and checked
 * it; afterwards only the private copy m->L is used for sizes and offsets.
 */
static int map_open(struct netelect_view *v, struct map **out)
{
    int rc;
    int fd = open(v->p.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ELOOP ? -EPERM : -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    /* The one check that stops a local user from publishing the view we
     * act on: who owns the open file (shm/README.md, "Trust").  Nobody
     * else can write it (mode), and its owner never truncates it, so the
     * size checked below stays the size while it is mapped. */
    if (!S_ISREG(st.st_mode) || !netelect__trust_has(&v->trust, st.st_uid) ||
        (st.st_mode & 0022)) {
        rc = -EPERM;
        goto out;
    }
    if (st.st_size < (off_t)NETELECT_SHM_PAGE || (uint64_t)st.st_size > NETELECT_SHM_MAX_SEGMENT) {
        rc = NETELECT_ECORRUPT;
        goto out;
    }
    struct netelect_shm_hdr h;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
        rc = NETELECT_ECORRUPT;
        goto out;
    }
    struct map *m = calloc(1, sizeof *m);
    if (!m) {
        rc = -ENOMEM;
        goto out;
    }
    m->lock_fd = -1;
    m->fd = -1;
    if ((rc = netelect__layout_validate(&h, (uint64_t)st.st_size, &m->L))) {
        free(m);
        goto out;
    }
    m->size = (size_t)st.st_size;
    void *base = mmap(NULL, m->size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (base == MAP_FAILED) {
        rc = -errno;
        free(m);
        goto out;
    }
    m->base = base;
    void *hp = mmap(NULL, NETELECT_SHM_PAGE, PROT_READ, MAP_SHARED, fd, 0);
    m->fr = hp == MAP_FAILED ? NULL : malloc(sizeof *m->fr);
    if (!m->fr) {
        rc = hp == MAP_FAILED ? -errno : -ENOMEM;
        if (hp != MAP_FAILED)
            munmap(hp, NETELECT_SHM_PAGE);
        munmap(base, m->size);
        free(m);
        goto out;
    }
    m->fr->h = hp;
    m->fr->next = NULL;
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    m->id = atomic_fetch_add_explicit(&g_ids, 1, memory_order_relaxed);
    m->fr->map_id = m->id;
    /* The writer's CLOCK_MONOTONIC is ours if its time namespace is (an
     * unknown one never matches); used only while the view's clock is the
     * real one (tests substitute theirs). */
    m->writer_clock = m->L.timens && m->L.timens == own_timens();
    /* The writer's lock, if we may read it and it is the writer's: a
     * lock file of anyone else could say anything. */
    int lfd = open(v->p.lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat ls;
    if (lfd >= 0 && fstat(lfd, &ls) == 0 && S_ISREG(ls.st_mode) && ls.st_uid == st.st_uid)
        m->lock_fd = lfd;
    else if (lfd >= 0)
        close(lfd);
    /* The state may have moved on since the pread (INIT is impossible for
     * a named file we did not see as INIT; ABANDONED is served as frozen). */
    if (m->L.compat_flags & NETELECT_SHM_COMPAT_REGISTRY) {
        if (netelect__reg_attach(v->p.readers, m->L.incarnation, st.st_uid, &m->reg))
            m->reg = NULL; /* no permission, or gone: validation alone */
    }
    pthread_mutex_lock(&g_live_lock);
    m->live_next = g_live;
    g_live = m;
    pthread_mutex_unlock(&g_live_lock);
    m->fd = fd; /* kept: waiters announce themselves by locks on it */
    fd = -1;
    *out = m;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static const struct netelect_shm_hdr *hdr(const struct map *m)
{
    return (const struct netelect_shm_hdr *)(const void *)m->base;
}

static const struct netelect_shm_slot *slot_at(const struct map *m, unsigned s)
{
    return (const struct netelect_shm_slot *)(const void *)(m->base + m->L.slot_off[s]);
}

static const void *rg(const struct map *m, const struct netelect_shm_slot *sl, int r)
{
    return (const uint8_t *)sl + m->L.region_off[r];
}

/* ---- liveness and reattach (slow path) */

static void liveness_reset(struct netelect_view *v, uint64_t map_id, uint64_t hb, uint64_t now)
{
    atomic_store_explicit(&v->hb_map, map_id, memory_order_relaxed);
    atomic_store_explicit(&v->hb_seen, hb, memory_order_relaxed);
    atomic_store_explicit(&v->hb_seen_at, now, memory_order_relaxed);
    atomic_store_explicit(&v->gone_since, 0, memory_order_relaxed);
    atomic_store_explicit(&v->stale, 0, memory_order_relaxed);
}

/*
 * Without the writer's clock (another time namespace, an old writer, or a
 * test clock): judges the agent by its heartbeat's progress on our own
 * clock.  Returns where fail-static began on our clock, 0 if alive.
 */
static uint64_t gone_by_progress(struct netelect_view *v, const struct map *m, uint32_t state,
                                 uint64_t now, uint64_t limit)
{
    const uint64_t hb = atomic_load_explicit(&hdr(m)->h_heartbeat_seq, memory_order_relaxed);
    if (atomic_load_explicit(&v->hb_map, memory_order_relaxed) != m->id) {
        liveness_reset(v, m->id, hb, now);
        if (state == NETELECT_SHM_LIVE)
            return 0;
    } else if (atomic_load_explicit(&v->hb_seen, memory_order_relaxed) != hb) {
        /* A STALLED writer's heartbeat goes on: it proves the agent lives,
         * not that the view is its own, so the fail-static clock keeps
         * running until the state is LIVE again. */
        if (state == NETELECT_SHM_LIVE) {
            liveness_reset(v, m->id, hb, now);
            return 0;
        }
        atomic_store_explicit(&v->hb_seen, hb, memory_order_relaxed);
        atomic_store_explicit(&v->hb_seen_at, now, memory_order_relaxed);
    }
    /* Another thread may have stored a time read after our `now`: such a
     * time is "just now", never an unsigned wrap into the far past. */
    if (state != NETELECT_SHM_LIVE) {
        uint64_t since = atomic_load_explicit(&v->gone_since, memory_order_relaxed);
        if (!since) {
            since = now;
            atomic_store_explicit(&v->gone_since, now, memory_order_relaxed);
        }
        return since;
    }
    const uint64_t seen = atomic_load_explicit(&v->hb_seen_at, memory_order_relaxed);
    if (seen >= now || now - seen <= limit) {
        if (atomic_load_explicit(&v->gone_since, memory_order_relaxed))
            atomic_store_explicit(&v->gone_since, 0, memory_order_relaxed); /* un-STALLED */
        return 0;
    }
    return seen + limit;
}

/* True iff nobody holds the writer's lock (the kernel dropped it with the
 * writer).  Only readers that may open the lock file (root, the agent
 * user) have m->lock_fd; for the others the heartbeat time decides. */
static int lock_state(const struct map *m) /* 1 held, 0 free, -1 cannot tell */
{
    if (m->lock_fd < 0)
        return -1;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    if (fcntl(m->lock_fd, F_OFD_GETLK, &fl) != 0)
        return -1;
    return fl.l_type != F_UNLCK;
}

/*
 * Decides whether the writer lives and whether elections are stale, from
 * facts that do not depend on when this reader attached: the writer's own
 * CLOCK_MONOTONIC heartbeat time and exit time (same host, same time
 * namespace: checked at attach), and its lock.  A reader attaching 5 s
 * after a kill -9 thus sees what one attached all along sees.  Without the
 * writer's clock, progress of the heartbeat on our clock decides (the
 * window then starts when we first looked).  Updates v->dead and v->stale;
 * returns true if the path should be looked at again.
 */
static bool liveness_check(struct netelect_view *v, const struct map *m, uint32_t state)
{
    const uint64_t now = v->clock(v->clock_ctx);
    uint64_t limit = 3 * m->L.heartbeat_period_ns;
    if (limit < MIN_STALE_NS)
        limit = MIN_STALE_NS;
    uint64_t since; /* when fail-static began, on our clock; 0: the writer lives */
    if (m->writer_clock && v->clock == mono_clock) { /* a test clock is not the writer's */
        const struct netelect_shm_hdr *h = hdr(m);
        const uint64_t hbt = atomic_load_explicit(&h->h_heartbeat_mono_ns, memory_order_relaxed);
        const uint64_t period = m->L.heartbeat_period_ns;
        if (state == NETELECT_SHM_LIVE) {
            const uint64_t age = hbt >= now ? 0 : now - hbt;
            /* On time: alive, and no system call (the common case). */
            since = 0;
            if (age > period + period / 2) {
                /* Late.  Where we may see the writer's lock, it tells
                 * for certain whether the process lives: free, dead since
                 * its last beat; held, a live but slow (loaded, or
                 * sanitised) agent gets HANG_PERIODS before it counts as
                 * hung.  Elsewhere the heartbeat alone decides. */
                const int lk = lock_state(m);
                uint64_t lim = limit;
                if (lk == 1) {
                    lim = HANG_PERIODS * period > MIN_HANG_NS ? HANG_PERIODS * period : MIN_HANG_NS;
                    if (lim < limit)
                        lim = limit;
                }
                if (lk == 0)
                    since = hbt ? hbt : 1;
                else if (age > lim)
                    since = hbt + lim;
            }
        } else {
            const uint64_t g = atomic_load_explicit(&h->h_gone_mono_ns, memory_order_relaxed);
            since = g ? g : hbt ? hbt : 1;
        }
    } else {
        since = gone_by_progress(v, m, state, now, limit);
    }
    if (!since) {
        if (atomic_load_explicit(&v->stale, memory_order_relaxed))
            atomic_store_explicit(&v->stale, 0, memory_order_relaxed);
        if (atomic_load_explicit(&v->dead, memory_order_relaxed))
            atomic_store_explicit(&v->dead, 0, memory_order_relaxed);
        return false;
    }
    if (!atomic_load_explicit(&v->dead, memory_order_relaxed))
        atomic_store_explicit(&v->dead, 1, memory_order_relaxed);
    const bool stale = since < now && v->opts.fail_static_ns != UINT64_MAX &&
                       now - since > v->opts.fail_static_ns;
    if (stale != (bool)atomic_load_explicit(&v->stale, memory_order_relaxed))
        atomic_store_explicit(&v->stale, stale, memory_order_relaxed);
    /* Look for a new agent, at most every REATTACH_BACKOFF_NS (a moved
     * segment at once). */
    const uint64_t next = atomic_load_explicit(&v->next_reattach, memory_order_relaxed);
    if (state == NETELECT_SHM_SUPERSEDED || now >= next) {
        atomic_store_explicit(&v->next_reattach, now + REATTACH_BACKOFF_NS, memory_order_relaxed);
        return true;
    }
    return false;
}

/*
 * Replaces the mapping if the path now names another valid segment.  Never
 * blocks the threads that keep electing on the old mapping: they hold only
 * an RCU read lock, and the old mapping goes away after a grace period.
 * Must be called outside a read-side critical section.
 */
static void reattach(struct netelect_view *v)
{
    if (pthread_mutex_trylock(&v->reattach_lock) != 0)
        return; /* another thread is at it */
    struct map *nm = NULL;
    if (map_open(v, &nm) == 0 && nm) {
        struct map *old = atomic_load_explicit(&v->map, memory_order_relaxed);
        if (nm->dev == old->dev && nm->ino == old->ino) {
            map_free(nm); /* same file: nothing new yet */
        } else {
            /* Release: the new map's private fields are complete before
             * another thread can load the pointer (acquire). */
            atomic_store_explicit(&v->map, nm, memory_order_release);
            atomic_store_explicit(&v->fast, nm->fr, memory_order_release);
            old->fr->next = v->retired;
            v->retired = old->fr;
            atomic_fetch_add_explicit(&v->reattaches, 1, memory_order_relaxed);
            liveness_reset(v, nm->id,
                           atomic_load_explicit(&hdr(nm)->h_heartbeat_seq, memory_order_relaxed),
                           v->clock(v->clock_ctx));
            urcu_bp_call_rcu(&old->rcu, map_free_rcu);
        }
    }
    pthread_mutex_unlock(&v->reattach_lock);
}

/* ---- netelect_view_fd(): change notification for the caller's poll loop */

/*
 * An epoll descriptor holding (1) an inotify watch on the segment file
 * (IN_ATTRIB: the writer touches the file's times after a publish when a
 * descriptor holder announced itself, see NETELECT_SHM_FD_LOCK; the file is
 * renamed over or unlinked when the agent restarts or moves the view) and
 * (2) a pidfd of the agent (readable when it exits or is killed), where it
 * lives in our pid namespace.  epoll so that the caller gets one
 * descriptor; inotify and pidfd because they are the kernel's own events
 * for "this file changed" and "this process died": no thread of ours, no
 * timer, and no wake-up while nothing happens.
 */
struct notify {
    int ep, ino, wd, pidfd;
    uint64_t map_id; /* the mapping the watch and the announce are for, 0 none */
};

static void notify_free(struct notify *nt)
{
    if (!nt)
        return;
    if (nt->pidfd >= 0)
        close(nt->pidfd);
    if (nt->ino >= 0)
        close(nt->ino);
    if (nt->ep >= 0)
        close(nt->ep);
    free(nt);
}

/* Points the watch, the pidfd and the announce at the current mapping and
 * drains what was reported.  Under nt_lock. */
static int notify_arm(struct netelect_view *v, struct notify *nt)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(nt->ino, buf, sizeof buf) > 0) {
    }
    if (nt->pidfd >= 0) {
        struct pollfd p = {.fd = nt->pidfd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1) { /* reported once: the agent is gone */
            epoll_ctl(nt->ep, EPOLL_CTL_DEL, nt->pidfd, NULL);
            close(nt->pidfd);
            nt->pidfd = -1;
        }
    }
    rcu_lock();
    const struct map *m = atomic_load_explicit(&v->map, memory_order_acquire);
    const uint64_t id = m->id;
    int rc = 0;
    if (id != nt->map_id && m->fd >= 0) {
        /* Announce (one byte per epoll descriptor number: unique in this
         * process); the lock goes with the map's fd when it is retired. */
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET,
                           .l_start = NETELECT_SHM_FD_LOCK + nt->ep % NETELECT_SHM_FD_SPAN, .l_len = 1};
        if (fcntl(m->fd, F_OFD_SETLK, &fl) != 0)
            rc = -errno;
        const int pid = m->L.writer_pid;
        const bool same_ns = m->L.pidns && m->L.pidns == own_pidns();
        rcu_unlock();
        if (rc)
            return rc;
        if (nt->wd >= 0)
            inotify_rm_watch(nt->ino, nt->wd);
        nt->wd = inotify_add_watch(nt->ino, v->p.path, IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF);
        if (nt->wd < 0)
            return -errno;
        if (nt->pidfd >= 0) {
            epoll_ctl(nt->ep, EPOLL_CTL_DEL, nt->pidfd, NULL);
            close(nt->pidfd);
            nt->pidfd = -1;
        }
        /* Only a live writer's pid is its pid (a dead one's may be reused
         * already): the pidfd is kept if the view still says alive after
         * it was opened. */
        struct netelect_view_status st;
        if (same_ns && pid > 0) {
            int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
            if (pfd >= 0 && view_status(v, &st) == 0 && st.writer_alive &&
                st.agent_pid == pid) {
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 2};
                if (epoll_ctl(nt->ep, EPOLL_CTL_ADD, pfd, &ev) == 0)
                    nt->pidfd = pfd, pfd = -1;
            }
            if (pfd >= 0)
                close(pfd);
        }
        nt->map_id = id;
        return 0;
    }
    rcu_unlock();
    return rc;
}

int netelect_view_fd(struct netelect_view *v)
{
    if (!v)
        return -EINVAL;
    pthread_mutex_lock(&v->nt_lock);
    int rc;
    if (v->nt) {
        rc = v->nt->ep;
        goto out;
    }
    struct notify *nt = calloc(1, sizeof *nt);
    if (!nt) {
        rc = -ENOMEM;
        goto out;
    }
    nt->wd = nt->pidfd = -1;
    nt->ep = epoll_create1(EPOLL_CLOEXEC);
    nt->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    if (nt->ep < 0 || nt->ino < 0 || epoll_ctl(nt->ep, EPOLL_CTL_ADD, nt->ino, &ev) != 0) {
        rc = -errno;
        notify_free(nt);
        goto out;
    }
    if ((rc = notify_arm(v, nt)) < 0) {
        notify_free(nt);
        goto out;
    }
    v->nt = nt;
    rc = nt->ep;
out:
    pthread_mutex_unlock(&v->nt_lock);
    return rc;
}

int netelect_view_fd_rearm(struct netelect_view *v)
{
    if (!v)
        return -EINVAL;
    /* The event may be a new file under the name (a restart, a move):
     * look at the path now, not after the reattach back-off, so that the
     * watch and the announce move to the file that has the name. */
    struct netelect_view_status st;
    if (view_status(v, &st) != 0 || st.state != NETELECT_SHM_LIVE || !st.writer_alive)
        reattach(v);
    pthread_mutex_lock(&v->nt_lock);
    const int rc = v->nt ? notify_arm(v, v->nt) : -EBADF;
    pthread_mutex_unlock(&v->nt_lock);
    return rc;
}

/* ---- open / close */

/* The smallest `size` of a growing struct: the size field and reserved0. */
#define SIZED_MIN 8u

/*
 * The caller's options, whatever header it was built against (view.h,
 * "Growing structs"): the fields both know, and a refusal of any option
 * past ours that is set, which this library would otherwise ignore.
 */
static int copy_opts(struct netelect_view_opts *dst, const struct netelect_view_opts *src)
{
    if (src->size < SIZED_MIN || src->reserved0)
        return -EINVAL;
    const unsigned char *b = (const unsigned char *)src;
    for (size_t i = sizeof *dst; i < src->size; i++)
        if (b[i])
            return -E2BIG;
    memset(dst, 0, sizeof *dst);
    memcpy(dst, src, src->size < sizeof *dst ? src->size : sizeof *dst);
    dst->size = sizeof *dst;
    return 0;
}

/* Sized opts since NETELECT_0.2; the NETELECT_0 entry point: view_compat.c. */
#if !defined(__clang__) /* clang 14's assembler ignores "remove": see view_compat.c */
__asm__(".symver netelect_view_open_opts, netelect_view_open_opts@@NETELECT_0.2, remove");
#endif
int netelect_view_open_opts(const char *name, const struct netelect_view_opts *opts,
                            struct netelect_view **out)
{
    int rc;
    if (!out)
        return -EINVAL;
    *out = NULL;
    struct netelect_view *v = calloc(1, sizeof *v);
    if (!v)
        return -ENOMEM;
    if ((rc = netelect__shm_paths(name, &v->p))) {
        free(v);
        return rc;
    }
    if (opts && (rc = copy_opts(&v->opts, opts))) {
        free(v);
        return rc;
    }
    netelect__trust_init(&v->trust, v->opts.expect_uid_set, (uid_t)v->opts.expect_uid);
    if (!v->opts.fail_static_ns)
        v->opts.fail_static_ns = DEFAULT_FAIL_STATIC_NS;
    v->clock = mono_clock;
    v->id = atomic_fetch_add_explicit(&g_ids, 1, memory_order_relaxed);
    pthread_mutex_init(&v->reattach_lock, NULL);
    pthread_mutex_init(&v->nt_lock, NULL);
    struct map *m;
    if ((rc = map_open(v, &m))) {
        pthread_mutex_destroy(&v->reattach_lock);
        free(v);
        return rc;
    }
    atomic_store_explicit(&v->map, m, memory_order_relaxed);
    atomic_store_explicit(&v->fast, m->fr, memory_order_relaxed);
    liveness_reset(v, m->id, atomic_load_explicit(&hdr(m)->h_heartbeat_seq, memory_order_relaxed),
                   v->clock(v->clock_ctx));
    /* Judged now, not 64 calls from now: a process that attaches after the
     * agent died must not get one answer as if it lived. */
    (void)liveness_check(v, m, atomic_load_explicit(&hdr(m)->h_state, memory_order_relaxed));
    *out = v;
    return 0;
}

int netelect_view_open(const char *name, struct netelect_view **out)
{
    return netelect_view_open_opts(name, NULL, out);
}

void netelect_view_close(struct netelect_view *v)
{
    if (!v)
        return;
    /* No thread uses v any more (the contract).  Wait for the callbacks
     * that retire earlier mappings (they zero header pages listed below),
     * then free the current mapping directly. */
    urcu_bp_barrier();
    map_free(atomic_load_explicit(&v->map, memory_order_relaxed));
    for (struct fastref *f = v->retired, *n; f; f = n) {
        n = f->next;
        munmap((void *)f->h, NETELECT_SHM_PAGE);
        free(f);
    }
    notify_free(v->nt);
    pthread_mutex_destroy(&v->nt_lock);
    pthread_mutex_destroy(&v->reattach_lock);
    free(v);
}

int netelect__view_open_mem(const void *mem, size_t size, struct netelect_view **out)
{
    int rc;
    if (!mem || !out)
        return -EINVAL;
    *out = NULL;
    struct netelect_view *v = calloc(1, sizeof *v);
    struct map *m = calloc(1, sizeof *m);
    struct fastref *f = calloc(1, sizeof *f);
    if (!v || !m || !f) {
        rc = -ENOMEM;
        goto fail;
    }
    const struct netelect_shm_hdr *mh = mem;
    const uint64_t seg = size >= sizeof *mh ? mh->h_segment_size : UINT64_MAX;
    rc = seg <= size ? netelect__layout_validate(mem, seg, &m->L) : NETELECT_ECORRUPT;
    if (rc)
        goto fail;
    m->external = true;
    m->lock_fd = -1;
    m->fd = -1;
    m->base = mem;
    m->size = size;
    m->id = atomic_fetch_add_explicit(&g_ids, 1, memory_order_relaxed);
    f->h = mem;
    f->map_id = m->id;
    m->fr = f;
    /* No path: reattach finds nothing and the view keeps this memory. */
    strcpy(v->p.path, "/nonexistent/netelect-mem");
    strcpy(v->p.lock, "/nonexistent/netelect-mem.lock");
    strcpy(v->p.readers, "/nonexistent/netelect-mem.readers");
    v->opts.fail_static_ns = UINT64_MAX;
    v->clock = mono_clock;
    v->id = atomic_fetch_add_explicit(&g_ids, 1, memory_order_relaxed);
    pthread_mutex_init(&v->reattach_lock, NULL);
    pthread_mutex_lock(&g_live_lock);
    m->live_next = g_live;
    g_live = m;
    pthread_mutex_unlock(&g_live_lock);
    atomic_store_explicit(&v->map, m, memory_order_relaxed);
    atomic_store_explicit(&v->fast, f, memory_order_relaxed);
    liveness_reset(v, m->id, 0, v->clock(v->clock_ctx));
    *out = v;
    return 0;
fail:
    free(v);
    free(m);
    free(f);
    return rc;
}

void netelect__view_set_clock(struct netelect_view *v, netelect__clock_fn fn, void *ctx)
{
    v->clock = fn ? fn : mono_clock;
    v->clock_ctx = ctx;
    liveness_reset(v, 0, 0, v->clock(v->clock_ctx));
}

/* ---- lookups inside one slot (no validation here: callers validate) */

/*
 * Index of channel `name` in slot sl, -1 if absent, E_GARBAGE if what was
 * read cannot belong to a consistent version.  Every probe, index and
 * length is checked against the private layout.
 */
static int64_t chan_find(const struct map *m, const struct netelect_shm_slot *sl,
                         const char *name, uint32_t len)
{
    const uint32_t mask = NETELECT_LOAD_RELAXED(&sl->s_chan_tab_mask);
    const uint32_t n_chans = NETELECT_LOAD_RELAXED(&sl->s_n_chans);
    if (mask >= m->L.chan_tab_cap || (mask & (mask + 1)) || n_chans > m->L.max_chans)
        return E_GARBAGE;
    const uint32_t *tab = rg(m, sl, NETELECT_RG_CHAN_TAB);
    const struct netelect_shm_chan *ch = rg(m, sl, NETELECT_RG_CHANS);
    const uint64_t *names = rg(m, sl, NETELECT_RG_NAMES);
    const uint64_t hash = netelect__name_hash(name, len);
    uint32_t i = (uint32_t)hash & mask;
    for (uint32_t probes = 0; probes <= mask; probes++, i = (i + 1) & mask) {
        const uint32_t e = NETELECT_LOAD_RELAXED(&tab[i]);
        if (!e)
            return -1;
        if (e > n_chans)
            return E_GARBAGE;
        const struct netelect_shm_chan *c = &ch[e - 1];
        if (NETELECT_LOAD_RELAXED(&c->c_hash) != hash ||
            NETELECT_LOAD_RELAXED(&c->c_name_len) != len)
            continue;
        const uint32_t off = NETELECT_LOAD_RELAXED(&c->c_name_off);
        if ((off & 7) || off > m->L.max_name_bytes || len > m->L.max_name_bytes - off)
            return E_GARBAGE;
        uint32_t k = 0;
        for (; k < len; k += 8) {
            uint64_t want = 0;
            memcpy(&want, name + k, len - k < 8 ? len - k : 8);
            if (NETELECT_LOAD_RELAXED(&names[(off + k) / 8]) != want)
                break;
        }
        if (k >= len)
            return e - 1;
    }
    return E_GARBAGE; /* a table with load <= 1/2 always has a hole */
}

static int chan_range(const struct map *m, const struct netelect_shm_slot *sl, uint32_t idx,
                      uint32_t *first, uint32_t *n)
{
    const struct netelect_shm_chan *c =
        &((const struct netelect_shm_chan *)rg(m, sl, NETELECT_RG_CHANS))[idx];
    *first = NETELECT_LOAD_RELAXED(&c->c_first);
    *n = NETELECT_LOAD_RELAXED(&c->c_n);
    if (*n > m->L.max_members || *first > m->L.max_members - *n)
        return E_GARBAGE;
    return 0;
}

static int64_t node_find(const struct map *m, const struct netelect_shm_slot *sl, uint64_t id)
{
    const uint32_t mask = NETELECT_LOAD_RELAXED(&sl->s_node_tab_mask);
    const uint32_t n_nodes = NETELECT_LOAD_RELAXED(&sl->s_n_nodes);
    if (mask >= m->L.node_tab_cap || (mask & (mask + 1)) || n_nodes > m->L.max_nodes)
        return E_GARBAGE;
    const uint32_t *tab = rg(m, sl, NETELECT_RG_NODE_TAB);
    const struct netelect_shm_node *nd = rg(m, sl, NETELECT_RG_NODES);
    uint32_t i = (uint32_t)netelect__mix64(id) & mask;
    for (uint32_t probes = 0; probes <= mask; probes++, i = (i + 1) & mask) {
        const uint32_t e = NETELECT_LOAD_RELAXED(&tab[i]);
        if (!e)
            return -1;
        if (e > n_nodes)
            return E_GARBAGE;
        if (NETELECT_LOAD_RELAXED(&nd[e - 1].n_id) == id)
            return e - 1;
    }
    return E_GARBAGE;
}

static void node_copy(const struct map *m, const struct netelect_shm_slot *sl, uint32_t i,
                      struct netelect_node_info *o)
{
    const struct netelect_shm_node *n = &((const struct netelect_shm_node *)rg(m, sl, NETELECT_RG_NODES))[i];
    o->id = NETELECT_LOAD_RELAXED(&n->n_id);
    o->rtt_ns = NETELECT_LOAD_RELAXED(&n->n_rtt);
    o->rtt_raw_ns = NETELECT_LOAD_RELAXED(&n->n_rtt_raw);
    o->rtt_err_ns = NETELECT_LOAD_RELAXED(&n->n_rtt_err);
    o->last_heard_ns = NETELECT_LOAD_RELAXED(&n->n_last_heard);
    o->healthy = NETELECT_LOAD_RELAXED(&n->n_healthy);
    o->source = NETELECT_LOAD_RELAXED(&n->n_source);
}

/*
 * Rank, and top-k past its 32-entry insertion buffer, run on a private
 * copy of the channel's members: a sort makes several passes over its
 * input, and a writer that reuses the slot meanwhile (a reader without a
 * registry slot, or after a forced reuse) would change it between them.
 * The kernels are written to stay in bounds anyway (core/kernel.h,
 * "inputs that change"); the copy makes one call sort one input, and
 * costs a memcpy of 17 bytes per member beside a sort.  Elections and
 * top-k up to 32 stay zero-copy: they are one pass that writes nothing
 * but a bounded buffer and their result, which the seq re-check discards
 * if the input moved (a copy would double a top-8 of 10k members).
 * Builds with NETELECT_SHM_ATOMIC_PAYLOAD (TSAN) always copy, with
 * relaxed atomic loads.
 *
 * The copy lives in a per-thread buffer, kept up to COPY_KEEP bytes and
 * freed when the thread exits; a larger one is allocated per call.  If
 * memory runs out the kernels read the mapping directly, as elections do.
 */
#define COPY_KEEP ((size_t)8 << 20)
static __thread struct {
    void *p;
    size_t cap;
} copy_tls __attribute__((tls_model("initial-exec")));
static pthread_key_t copy_key;
static pthread_once_t copy_once = PTHREAD_ONCE_INIT;
static bool copy_key_ok;

static void copy_free(void *p)
{
    if (p == copy_tls.p) {
        copy_tls.p = NULL;
        copy_tls.cap = 0;
    }
    free(p);
}

static void copy_key_init(void)
{
    copy_key_ok = pthread_key_create(&copy_key, copy_free) == 0;
}

struct members_copy {
    uint64_t *ids, *rtt;
    uint8_t *ok;
    void *mem; /* freed by members_release unless it is the thread's buffer */
};

static int members_copy(const struct map *m, const struct netelect_shm_slot *sl, uint32_t first,
                        uint32_t n, struct members_copy *c)
{
    /* Arrays on 64-byte lines, never empty (an empty channel still gets a
     * buffer, so the copies below never see NULL). */
    const size_t words = ((size_t)n + 8) & ~(size_t)7;
    const size_t bytes = 2 * words * sizeof(uint64_t) + words;
    void *mem = copy_tls.p;
    if (bytes > copy_tls.cap) {
        if (posix_memalign(&mem, 64, bytes) != 0)
            return -ENOMEM;
        pthread_once(&copy_once, copy_key_init);
        if (bytes <= COPY_KEEP && copy_key_ok && pthread_setspecific(copy_key, mem) == 0) {
            free(copy_tls.p);
            copy_tls.p = mem;
            copy_tls.cap = bytes;
        }
    }
    c->mem = mem;
    c->ids = mem;
    c->rtt = c->ids + words;
    c->ok = (uint8_t *)(c->rtt + words);
    const uint64_t *ids = (const uint64_t *)rg(m, sl, NETELECT_RG_M_IDS) + first;
    const uint64_t *rtt = (const uint64_t *)rg(m, sl, NETELECT_RG_M_RTT) + first;
    const uint8_t *ok = (const uint8_t *)rg(m, sl, NETELECT_RG_M_HEALTHY) + first;
#ifdef NETELECT_SHM_ATOMIC_PAYLOAD
    for (uint32_t i = 0; i < n; i++) {
        c->ids[i] = NETELECT_LOAD_RELAXED(&ids[i]);
        c->rtt[i] = NETELECT_LOAD_RELAXED(&rtt[i]);
        c->ok[i] = NETELECT_LOAD_RELAXED(&ok[i]);
    }
#else
    /* Plain copies: the same (discarded-if-lapped) race as the kernels'
     * loads, see the file comment. */
    memcpy(c->ids, ids, (size_t)n * sizeof *ids);
    memcpy(c->rtt, rtt, (size_t)n * sizeof *rtt);
    memcpy(c->ok, ok, n);
#endif
    return 0;
}

static void members_release(const struct members_copy *c)
{
    if (c->mem != copy_tls.p)
        free(c->mem);
}

struct op;
static inline void op_announce(struct op *op, uint64_t cur);

static int do_elect(struct op *op, const struct map *m, const struct netelect_shm_slot *sl,
                    uint32_t ci, uint64_t self_id, uint64_t cur, struct netelect_result *out,
                    uint32_t *first_out, uint32_t *n_out)
{
    uint32_t first, n;
    if (chan_range(m, sl, ci, &first, &n))
        return E_GARBAGE;
    if (first_out) {
        *first_out = first;
        *n_out = n;
    }
    if (op && n >= ANNOUNCE_MIN_MEMBERS)
        op_announce(op, cur);
#ifdef NETELECT_SHM_ATOMIC_PAYLOAD
    struct members_copy c;
    if (members_copy(m, sl, first, n, &c))
        return -ENOMEM;
    *out = netelect_elect(c.ids, c.rtt, c.ok, n, self_id);
    members_release(&c);
#else
    const uint64_t *ids = rg(m, sl, NETELECT_RG_M_IDS);
    const uint64_t *rtt = rg(m, sl, NETELECT_RG_M_RTT);
    const uint8_t *ok = rg(m, sl, NETELECT_RG_M_HEALTHY);
    *out = netelect_elect(ids + first, rtt + first, ok + first, n, self_id);
#endif
    return 0;
}

static int do_rank(const struct map *m, const struct netelect_shm_slot *sl, uint32_t ci,
                   uint64_t self_id, uint64_t *out_ids, size_t cap, size_t *count)
{
    uint32_t first, n;
    if (chan_range(m, sl, ci, &first, &n))
        return E_GARBAGE;
    /* A cap past top-k's insertion buffer may sort: on a private copy.  Up
     * to that, top-k is one pass with a bounded buffer and runs on the
     * mapping, as an election does (see members_copy). */
    struct members_copy c = {0};
#ifdef NETELECT_SHM_ATOMIC_PAYLOAD
    if (members_copy(m, sl, first, n, &c))
        return -ENOMEM;
    const bool copied = true;
#else
    const bool copied = cap > NETELECT__TOPK_BUF_MAX && members_copy(m, sl, first, n, &c) == 0;
#endif
    const uint64_t *ids = c.ids, *rtt = c.rtt;
    const uint8_t *ok = c.ok;
    if (!copied) {
        ids = (const uint64_t *)rg(m, sl, NETELECT_RG_M_IDS) + first;
        rtt = (const uint64_t *)rg(m, sl, NETELECT_RG_M_RTT) + first;
        ok = (const uint8_t *)rg(m, sl, NETELECT_RG_M_HEALTHY) + first;
    }
    size_t cand = 0;
    for (uint32_t i = 0; i < n; i++)
        cand += ok[i] != 0;
    /* On the mapping, cand may be stale by now: top-k never writes more
     * than k, which is at most cap. */
    if (cap)
        netelect_topk(ids, rtt, ok, n, self_id, cap < cand ? cap : cand, out_ids);
    *count = cand;
    if (copied)
        members_release(&c);
    return 0;
}

/* ---- the read loop */

/* What one validated read does, given the slot it reads.  `final` set by
 * the op means it validated (and acted on) its own result already. */
struct op {
    int (*fn)(struct op *op, const struct map *m, const struct netelect_shm_slot *sl,
              uint64_t cur);
    struct netelect_view *v;
    bool final;
    /* Registry announce: before every read, or (lazy) only by the op itself
     * once it knows the read is long enough to be worth a pin (a 3-replica
     * election is over in nanoseconds; validation covers it anyway). */
    bool lazy_announce;
    bool ann_looked, announced;
    _Atomic uint64_t *ann;
    struct map *m;
};

static inline void op_announce(struct op *op, uint64_t cur)
{
    if (!op->ann_looked) {
        /* Found on first use: most elections never announce. */
        op->ann = announce_slot(op->m);
        op->ann_looked = true;
    }
    if (op->ann) {
        /* Release: a writer that sees this announce keeps the slot intact
         * for the rest of this read (a late one costs a retry). */
        atomic_store_explicit(op->ann, cur, memory_order_release);
        op->announced = true;
    }
}

static inline bool seq_unchanged(const struct netelect_shm_slot *sl, uint64_t q0)
{
#ifdef NETELECT_NO_VALIDATE
    (void)sl, (void)q0;
    return true;
#else
    return !netelect__read_seqcount_retry(&sl->s_seq, q0);
#endif
}

static int check_name(const char *name, uint32_t *len)
{
    if (!name)
        return -EINVAL;
    size_t l = strnlen(name, NETELECT_CHAN_NAME_MAX + 1);
    if (l == 0 || l > NETELECT_CHAN_NAME_MAX)
        return -EINVAL;
    *len = (uint32_t)l;
    return 0;
}

/*
 * One read section: the op on the current version of the current mapping,
 * validated, retried at most MAX_TRIES times.  Sets *want_reattach when
 * the liveness check says the path should be looked at again.
 */
typedef int (*op_fn)(struct op *op, const struct map *m, const struct netelect_shm_slot *sl,
                     uint64_t cur);

/* `fn` is a parameter (a constant at every call site) rather than read
 * from op, so that the compiler calls, and can inline, it directly. */
static inline __attribute__((always_inline)) int read_once(struct netelect_view *v, struct op *op,
                                                           op_fn fn,
                                                           bool *want_reattach)
{
    int rc = -EAGAIN;
    rcu_lock();
    struct map *m = atomic_load_explicit(&v->map, memory_order_acquire);
    const struct netelect_shm_hdr *h = hdr(m);
    op->m = m;
    op->ann = NULL;
    op->ann_looked = false;
    op->announced = false;
    for (int tries = 0; tries < MAX_TRIES; tries++) {
        /* Acquire: pairs with the writer's release of h_current, so the
         * slot's seal (seq even) and payload are visible. */
        const uint64_t cur = netelect__load_acquire64(&h->h_current);
        const uint32_t state = atomic_load_explicit(&h->h_state, memory_order_relaxed);
        if (__builtin_expect(state != NETELECT_SHM_LIVE || (++tls.tick % LIVENESS_EVERY) == 0 ||
                                 atomic_load_explicit(&v->stale, memory_order_relaxed),
                             0))
            *want_reattach |= liveness_check(v, m, state);
        const unsigned s = (unsigned)(cur & 0xff);
        if (s >= m->L.slot_count) {
            rc = NETELECT_ECORRUPT;
            break;
        }
        if (!op->lazy_announce)
            op_announce(op, cur);
        const struct netelect_shm_slot *sl = slot_at(m, s);
        const uint64_t q0 = netelect__read_seqcount_begin(&sl->s_seq);
#ifndef NETELECT_NO_VALIDATE
        if ((q0 & 1) || NETELECT_LOAD_RELAXED(&sl->s_generation) != cur >> 8) {
            /* Being rewritten, or reused after we read h_current. */
            atomic_fetch_add_explicit(&v->retries, 1, memory_order_relaxed);
            continue;
        }
#endif
        op->final = false;
        const int r = fn(op, m, sl, cur);
        if (!op->final && !seq_unchanged(sl, q0)) {
            atomic_fetch_add_explicit(&v->retries, 1, memory_order_relaxed);
            continue;
        }
        rc = r == E_GARBAGE ? NETELECT_ECORRUPT : r;
        break;
    }
    if (op->announced)
        atomic_store_explicit(op->ann, 0, memory_order_release);
    rcu_unlock();
    return rc;
}

static inline __attribute__((always_inline)) int run(struct netelect_view *v, struct op *op,
                                                     op_fn fn)
{
    bool want = false;
    op->v = v;
    int rc = read_once(v, op, fn, &want);
    if (__builtin_expect(want, 0)) {
        const uint64_t before = atomic_load_explicit(&v->reattaches, memory_order_relaxed);
        reattach(v);
        if (atomic_load_explicit(&v->reattaches, memory_order_relaxed) != before) {
            want = false;
            rc = read_once(v, op, fn, &want);
        }
    }
    if (__builtin_expect(atomic_load_explicit(&v->stale, memory_order_relaxed), 0))
        return NETELECT_ESTALE;
    return rc;
}

/* ---- elect / rank */

struct chan_op {
    struct op op;
    const char *name;
    uint32_t len;
    bool name_cached; /* the thread cache holds this view and name */
    uint64_t self_id;
    /* result */
    int64_t ci;
    uint64_t map_id, cur;
    struct netelect_result res;
    /* elections: the validated range and where it was read (cache_chan) */
    uint32_t first, n;
    const struct map *m;
    const struct netelect_shm_slot *sl;
    uint64_t *out_ids;
    size_t cap, count;
};

static inline bool tls_hit(const struct netelect_view *v, const struct map *m, uint64_t cur,
                           const char *name, uint32_t len)
{
    return tls.cur == cur && tls.map_id == m->id && tls.view_id == v->id && tls.name_len == len &&
           memcmp(tls.name, name, len) == 0;
}

static inline int64_t cached_chan(const struct chan_op *c, const struct map *m,
                                  const struct netelect_shm_slot *sl, uint64_t cur)
{
    /* The lookup is a pure function of (mapping, version, name), so a hit
     * on the same three needs no hashing and no name compare in shm. */
    if (c->name_cached ? tls.cur == cur && tls.map_id == m->id
                       : tls_hit(c->op.v, m, cur, c->name, c->len))
        return tls.chan_idx;
    return chan_find(m, sl, c->name, c->len);
}

/* Remembers a validated lookup (and, for elections, the answer). */
static void cache_chan(const struct chan_op *c, bool elect)
{
    if (c->len >= TLS_NAME || c->ci < 0)
        return;
    tls.view_id = c->op.v->id;
    tls.map_id = c->map_id;
    tls.cur = c->cur;
    tls.chan_idx = (uint32_t)c->ci;
    if (!c->name_cached) {
        tls.name_len = c->len;
        memcpy(tls.name, c->name, c->len);
        tls.name[c->len] = 0;
    }
    tls.self_id = c->self_id;
    tls.res_valid = elect; /* rank caches the lookup only */
    tls.geo_valid = elect && c->n <= GEO_MAX_N;
    if (elect) {
        tls.res.outcome = c->res.outcome;
        tls.res.winner = c->res.winner;
    }
    if (tls.geo_valid) {
        tls.geo_n = c->n;
        tls.geo_sl = c->sl;
        tls.geo_ids = (const uint64_t *)rg(c->m, c->sl, NETELECT_RG_M_IDS) + c->first;
        tls.geo_rtt = (const uint64_t *)rg(c->m, c->sl, NETELECT_RG_M_RTT) + c->first;
        tls.geo_ok = (const uint8_t *)rg(c->m, c->sl, NETELECT_RG_M_HEALTHY) + c->first;
    }
}

/* Finds the channel an elect or rank names, in this version, and notes
 * which version answered (for the thread cache). */
static inline int chan_resolve(struct chan_op *c, const struct map *m,
                               const struct netelect_shm_slot *sl, uint64_t cur)
{
    c->ci = cached_chan(c, m, sl, cur);
    if (c->ci < 0)
        return c->ci == -1 ? NETELECT_ENOCHAN : (int)c->ci;
    c->map_id = m->id;
    c->cur = cur;
    return 0;
}

static int elect_fn(struct op *op, const struct map *m, const struct netelect_shm_slot *sl,
                    uint64_t cur)
{
    struct chan_op *c = (struct chan_op *)op;
    int rc = chan_resolve(c, m, sl, cur);
    if (rc)
        return rc;
    c->m = m;
    c->sl = sl;
    return do_elect(op, m, sl, (uint32_t)c->ci, c->self_id, cur, &c->res, &c->first, &c->n);
}

/*
 * The miss path of a small channel already looked up in this version by
 * this thread (tls.geo_*): one latch read of the member data through the
 * bounds validated when the geometry was cached, with none of the generic
 * read loop's set-up.  The key is checked under the RCU read lock against
 * the current mapping and h_current, so the cached pointers are into a
 * live mapping and belong to this very version; the slot's seq and
 * generation then say, as in read_once, whether the version still sits in
 * that slot and was not rewritten meanwhile.  Anything else (another
 * version, a slot being rewritten, a lapped read, a writer not LIVE) is
 * left to the general path.  Returns 0 with *out set, or 1 to fall back.
 */
static inline __attribute__((always_inline)) int elect_geo(struct netelect_view *v,
                                                           uint64_t self_id,
                                                           struct netelect_result *out,
                                                           uint64_t *generation)
{
    int rc = 1;
    rcu_lock();
    const struct map *m = atomic_load_explicit(&v->map, memory_order_acquire);
    const struct netelect_shm_hdr *h = hdr(m);
    /* Acquire: pairs with the writer's release of h_current. */
    const uint64_t cur = netelect__load_acquire64(&h->h_current);
    const uint32_t state = atomic_load_explicit(&h->h_state, memory_order_relaxed);
    if (__builtin_expect(state == NETELECT_SHM_LIVE && tls.cur == cur && tls.map_id == m->id, 1)) {
        const struct netelect_shm_slot *sl = tls.geo_sl;
        const uint64_t q0 = netelect__read_seqcount_begin(&sl->s_seq);
#ifndef NETELECT_NO_VALIDATE
        if ((q0 & 1) || NETELECT_LOAD_RELAXED(&sl->s_generation) != cur >> 8)
            goto out;
#endif
        const uint32_t n = tls.geo_n;
        struct netelect_result r;
#ifdef NETELECT_SHM_ATOMIC_PAYLOAD
        uint64_t ids[GEO_MAX_N], rtt[GEO_MAX_N];
        uint8_t ok[GEO_MAX_N];
        for (uint32_t i = 0; i < n; i++) {
            ids[i] = NETELECT_LOAD_RELAXED(&tls.geo_ids[i]);
            rtt[i] = NETELECT_LOAD_RELAXED(&tls.geo_rtt[i]);
            ok[i] = NETELECT_LOAD_RELAXED(&tls.geo_ok[i]);
        }
        r = netelect__elect_small(ids, rtt, ok, n, self_id);
#else
        /* Plain loads, as do_elect's (see the file comment). */
        r = netelect__elect_small(tls.geo_ids, tls.geo_rtt, tls.geo_ok, n, self_id);
#endif
        if (!seq_unchanged(sl, q0))
            goto out;
        tls.tick++;
        tls.self_id = self_id;
        tls.res = r;
        out->outcome = r.outcome;
        out->winner = r.winner;
        if (generation)
            *generation = cur >> 8;
        rc = 0;
    }
out:
    rcu_unlock();
    return rc;
}

/*
 * Whether `channel` is the thread's cached name (tls.name, NUL-terminated,
 * without a NUL before tls.name_len).  Never reads past the caller's
 * string: byte i is read only after bytes 0..i-1 matched non-NUL bytes.
 * Short names (the common case, and the 3-replica miss path's budget)
 * compare inline, longer ones through strcmp(), which is faster past a
 * dozen bytes.
 */
#define NAME_INLINE_MAX 16u
static inline __attribute__((always_inline)) bool name_cached(const char *channel)
{
    const uint32_t len = tls.name_len;
    if (len > NAME_INLINE_MAX)
        return strcmp(tls.name, channel) == 0;
    for (uint32_t i = 0; i <= len; i++)
        if (channel[i] != tls.name[i])
            return false;
    return true;
}

/* Everything but the two cache paths, out of line so that their registers
 * and stack frame are theirs alone.  name_cached: the thread cache holds
 * this view and channel name (its length is tls.name_len). */
static __attribute__((noinline)) int elect_slow(struct netelect_view *v, const char *channel,
                                                uint64_t self_id, struct netelect_result *out,
                                                uint64_t *generation, bool name_cached)
{
    size_t len = tls.name_len;
    if (!name_cached) {
        len = strnlen(channel, NETELECT_CHAN_NAME_MAX + 1);
        if (__builtin_expect(len - 1 >= NETELECT_CHAN_NAME_MAX, 0))
            return -EINVAL;
    }
    struct chan_op c;
    c.op.fn = elect_fn;
    c.op.lazy_announce = true;
    c.name = channel;
    c.len = (uint32_t)len;
    c.name_cached = name_cached;
    c.self_id = self_id;
    int rc = run(v, &c.op, elect_fn);
    if (rc == 0) {
        /* Field by field: c.res was just stored as two narrower words, and
         * a 16-byte copy would stall on store forwarding (~10 % here). */
        out->outcome = c.res.outcome;
        out->winner = c.res.winner;
        if (generation)
            *generation = c.cur >> 8;
        cache_chan(&c, true);
    }
    return rc;
}

static inline __attribute__((always_inline)) int elect_gen(struct netelect_view *v,
                                                           const char *channel, uint64_t self_id,
                                                           struct netelect_result *out,
                                                           uint64_t *generation)
{
    if (__builtin_expect(!v || !out || !channel, 0))
        return -EINVAL;
    /* One name compare serves the answer cache, the geometry cache and
     * the lookup cache in elect_fn, and a hit needs no strnlen(). */
    if (tls.view_id != v->id || !name_cached(channel))
        return elect_slow(v, channel, self_id, out, generation, false);

    /* The liveness check runs every LIVENESS_EVERY calls, and a stale
     * view answers NETELECT_ESTALE: both on the slow path only. */
    if (__builtin_expect(((tls.tick + 1) % LIVENESS_EVERY) != 0, 1) &&
        !atomic_load_explicit(&v->stale, memory_order_relaxed)) {
        if (tls.self_id == self_id && tls.res_valid) {
            /* The same question on the same version as this thread's last
             * election: one acquire load of h_current answers it.  No RCU:
             * the header page outlives its mapping (struct fastref), and
             * the answer comes from this thread's own cache. */
            const struct fastref *f = atomic_load_explicit(&v->fast, memory_order_acquire);
            /* Acquire: pairs with the writer's release of h_current. */
            const uint64_t cur = netelect__load_acquire64(&f->h->h_current);
            const uint32_t state = atomic_load_explicit(&f->h->h_state, memory_order_relaxed);
            if (state == NETELECT_SHM_LIVE && tls.cur == cur && tls.map_id == f->map_id) {
                tls.tick++;
                *out = tls.res;
                if (generation)
                    *generation = cur >> 8;
                return 0;
            }
        } else if (tls.geo_valid && elect_geo(v, self_id, out, generation) == 0) {
            /* Another question on a channel whose geometry in this
             * version this thread knows: the miss path. */
            return 0;
        }
    }
    return elect_slow(v, channel, self_id, out, generation, true);
}

int netelect_view_elect_gen(struct netelect_view *v, const char *channel, uint64_t self_id,
                            struct netelect_result *out, uint64_t *generation)
{
    return elect_gen(v, channel, self_id, out, generation);
}

int netelect_view_elect(struct netelect_view *v, const char *channel, uint64_t self_id,
                        struct netelect_result *out)
{
    return elect_gen(v, channel, self_id, out, NULL);
}

static int rank_fn(struct op *op, const struct map *m, const struct netelect_shm_slot *sl,
                   uint64_t cur)
{
    struct chan_op *c = (struct chan_op *)op;
    int rc = chan_resolve(c, m, sl, cur);
    if (rc)
        return rc;
    return do_rank(m, sl, (uint32_t)c->ci, c->self_id, c->out_ids, c->cap, &c->count);
}

int netelect_view_rank(struct netelect_view *v, const char *channel, uint64_t self_id,
                       uint64_t *out_ids, size_t cap, size_t *count)
{
    struct chan_op c;
    if (!v || !count || (cap && !out_ids) || check_name(channel, &c.len))
        return -EINVAL;
    c.op.fn = rank_fn;
    c.op.lazy_announce = false;
    c.name_cached = false;
    c.name = channel;
    c.self_id = self_id;
    c.out_ids = out_ids;
    c.cap = cap;
    int rc = run(v, &c.op, rank_fn);
    if (rc == 0) {
        *count = c.count;
        cache_chan(&c, false);
    }
    return rc;
}

/* ---- generation, self, status */

uint64_t netelect_view_generation(struct netelect_view *v)
{
    if (!v)
        return 0;
    const struct fastref *f = atomic_load_explicit(&v->fast, memory_order_acquire);
    /* Acquire: a caller that sees a new generation and then elects sees at
     * least that version. */
    const uint64_t cur = netelect__load_acquire64(&f->h->h_current);
    const uint32_t state = atomic_load_explicit(&f->h->h_state, memory_order_relaxed);
    if (__builtin_expect(state != NETELECT_SHM_LIVE, 0)) {
        /* The agent moved or left (or the page was retired under us): let
         * an ordinary read do liveness and reattach, and report the
         * generation it lands on. */
        struct netelect_view_status st;
        if (view_status(v, &st) == 0)
            return st.generation;
    }
    return cur >> 8;
}

/* ---- change notification */

/* Announces (F_RDLCK) or withdraws (F_UNLCK) this thread as a waiter on
 * `fd` (see NETELECT_SHM_WAIT_LOCK). */
static int wait_announce(int fd, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET,
                       .l_start = NETELECT_SHM_WAIT_LOCK + (off_t)(gettid() % NETELECT_SHM_WAIT_SPAN),
                       .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

int netelect_view_wait(struct netelect_view *v, uint64_t last_generation, uint64_t timeout_ns)
{
    if (!v)
        return -EINVAL;
    const uint64_t t0 = v->clock(v->clock_ctx);
    const uint64_t deadline = timeout_ns > UINT64_MAX - t0 ? UINT64_MAX : t0 + timeout_ns;
    int announced_fd = -1;
    int rc;
    for (;;) {
        /* An ordinary read: liveness, reattach to a restarted agent, and
         * the generation it lands on. */
        struct netelect_view_status st;
        rc = view_status(v, &st);
        if (rc < 0 && rc != NETELECT_ESTALE)
            break;
        if (st.generation != last_generation) {
            rc = 0;
            break;
        }
        if (!st.writer_alive) {
            rc = -EOWNERDEAD;
            break;
        }
        const uint64_t now = v->clock(v->clock_ctx);
        if (now >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        rcu_lock();
        struct map *m = atomic_load_explicit(&v->map, memory_order_acquire);
        const int fd = m->fd;
        /* The futex word in the map's own header page, which stays mapped
         * (zeroed, never reused) after the map is retired: a sleeper there
         * is bounded by its timeout, never faults. */
        _Atomic uint32_t *word = (_Atomic uint32_t *)&m->fr->h->h_wake;
        rcu_unlock();
        if (fd < 0) {
            rc = -EOPNOTSUPP; /* netelect__view_open_mem(): nobody to wake us */
            break;
        }
        if (fd != announced_fd) {
            /* A lock on a retired map's fd goes with the fd when the map
             * is freed; its number may be reused by then, so it is never
             * touched again here. */
            if ((rc = wait_announce(fd, F_RDLCK)) < 0)
                break;
            announced_fd = fd;
        }
        const uint32_t w0 = atomic_load_explicit(word, memory_order_acquire);
        /* After the announce: a publish from here on either saw our lock
         * (and bumps the word we compare against) or is in the generation
         * we now read. */
        if (netelect_view_generation(v) != last_generation) {
            rc = 0;
            break;
        }
        /* Sleep until woken, the deadline, or the moment the agent would
         * have to be judged gone if no heartbeat came (a dead agent wakes
         * nobody): while it lives and is silent, one wake-up per
         * max(3 heartbeat periods, 300 ms). */
        uint64_t limit = 3 * st.heartbeat_period_ns;
        if (limit < MIN_STALE_NS)
            limit = MIN_STALE_NS;
        uint64_t until = st.clock_shared ? st.heartbeat_mono_ns + limit + 1000000 : now + limit;
        if (until > deadline)
            until = deadline;
        if (until <= now)
            until = now + 1000000;
        const uint64_t d = until - now;
        struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
        if (syscall(SYS_futex, word, FUTEX_WAIT, w0, &ts, NULL, 0) != 0 && errno == EINTR) {
            rc = -EINTR;
            break;
        }
    }
    if (announced_fd >= 0) {
        /* Withdraw from the map we announced on, if it is still current
         * (under the read lock it cannot be freed meanwhile). */
        rcu_lock();
        if (atomic_load_explicit(&v->map, memory_order_acquire)->fd == announced_fd)
            (void)wait_announce(announced_fd, F_UNLCK);
        rcu_unlock();
    }
    return rc;
}

uint64_t netelect_view_self(struct netelect_view *v)
{
    if (!v)
        return 0;
    rcu_lock();
    const uint64_t id = atomic_load_explicit(&v->map, memory_order_acquire)->L.self_id;
    rcu_unlock();
    return id;
}

struct status_op {
    struct op op;
    struct netelect_view_status *st;
};

static int status_fn(struct op *op, const struct map *m, const struct netelect_shm_slot *sl,
                     uint64_t cur)
{
    struct netelect_view_status *st = ((struct status_op *)op)->st;
    const struct netelect_shm_hdr *h = hdr(m);
    struct netelect_view *v = op->v;
    memset(st, 0, sizeof *st);
    st->generation = cur >> 8;
    st->self_id = m->L.self_id;
    st->publish_ns = NETELECT_LOAD_RELAXED(&sl->s_publish_ns);
    st->n_nodes = NETELECT_LOAD_RELAXED(&sl->s_n_nodes);
    st->n_chans = NETELECT_LOAD_RELAXED(&sl->s_n_chans);
    if (st->n_nodes > m->L.max_nodes || st->n_chans > m->L.max_chans)
        return E_GARBAGE;
    st->heartbeat_seq = atomic_load_explicit(&h->h_heartbeat_seq, memory_order_relaxed);
    st->heartbeat_mono_ns = atomic_load_explicit(&h->h_heartbeat_mono_ns, memory_order_relaxed);
    st->forced_reuse = atomic_load_explicit(&h->h_forced_reuse, memory_order_relaxed);
    st->pinned_waits = atomic_load_explicit(&h->h_pinned_waits, memory_order_relaxed);
    st->agent_pid = m->L.writer_pid;
    st->state = atomic_load_explicit(&h->h_state, memory_order_relaxed);
    memcpy(st->incarnation, m->L.incarnation, sizeof st->incarnation);
    st->abi_major = NETELECT_SHM_ABI_MAJOR;
    st->abi_minor = m->L.abi_minor;
    st->slot_count = m->L.slot_count;
    st->max_nodes = m->L.max_nodes;
    st->max_chans = m->L.max_chans;
    st->max_members = m->L.max_members;
    st->registered = m->reg != NULL;
    st->heartbeat_period_ns = m->L.heartbeat_period_ns;
    liveness_check(v, m, st->state);
    st->writer_alive = !atomic_load_explicit(&v->dead, memory_order_relaxed);
    const uint64_t now = v->clock(v->clock_ctx);
    if (m->writer_clock && v->clock == mono_clock) {
        st->heartbeat_age_ns = now > st->heartbeat_mono_ns ? now - st->heartbeat_mono_ns : 0;
        st->clock_shared = 1;
    } else if (atomic_load_explicit(&v->hb_map, memory_order_relaxed) == m->id) {
        const uint64_t seen = atomic_load_explicit(&v->hb_seen_at, memory_order_relaxed);
        st->heartbeat_age_ns = now > seen ? now - seen : 0; /* see gone_by_progress */
    }
    return 0;
}

static int view_status(struct netelect_view *v, struct netelect_view_status *out)
{
    /* Short reads: no registry pin (see ANNOUNCE_MIN_MEMBERS). */
    struct status_op o = {.op.fn = status_fn, .op.lazy_announce = true, .st = out};
    int rc = run(v, &o.op, status_fn);
    if (rc == NETELECT_ESTALE) {
        /* Status still describes what the handle sees. */
        bool want = false;
        rc = read_once(v, &o.op, status_fn, &want);
    }
    out->stale = (uint32_t)atomic_load_explicit(&v->stale, memory_order_relaxed);
    out->retries = atomic_load_explicit(&v->retries, memory_order_relaxed);
    out->reattaches = atomic_load_explicit(&v->reattaches, memory_order_relaxed);
    return rc;
}

_Static_assert((int)NETELECT_AGENT_INIT == NETELECT_SHM_INIT &&
                   (int)NETELECT_AGENT_LIVE == NETELECT_SHM_LIVE &&
                   (int)NETELECT_AGENT_ABANDONED == NETELECT_SHM_ABANDONED &&
                   (int)NETELECT_AGENT_MOVED == NETELECT_SHM_SUPERSEDED &&
                   (int)NETELECT_AGENT_STALLED == NETELECT_SHM_STALLED,
               "status.state is h_state as the segment stores it");

/*
 * The caller's struct may be older (smaller) or newer (larger) than ours
 * (view.h, "Growing structs"): only out->size bytes are the caller's.
 */
#if !defined(__clang__) /* clang 14's assembler ignores "remove": see view_compat.c */
__asm__(".symver netelect_view_status, netelect_view_status@@NETELECT_0.2, remove");
#endif
int netelect_view_status(struct netelect_view *v, struct netelect_view_status *out)
{
    if (!v || !out)
        return -EINVAL;
    const uint32_t size = out->size;
    if (size < SIZED_MIN)
        return -EINVAL;
    struct netelect_view_status st = {0};
    const int rc = view_status(v, &st);
    st.size = size < sizeof st ? size : (uint32_t)sizeof st;
    memcpy(out, &st, st.size);
    if (size > sizeof st)
        memset((unsigned char *)out + sizeof st, 0, size - sizeof st);
    return rc;
}

/* ---- nodes and iterators */

struct node_op {
    struct op op;
    uint64_t id;
    struct netelect_node_info *out;
};

static int node_fn(struct op *op, const struct map *m, const struct netelect_shm_slot *sl,
                   uint64_t cur)
{
    struct node_op *n = (struct node_op *)op;
    (void)cur;
    int64_t i = node_find(m, sl, n->id);
    if (i < 0)
        return i == -1 ? -ENOENT : (int)i;
    node_copy(m, sl, (uint32_t)i, n->out);
    return 0;
}

int netelect_view_node(struct netelect_view *v, uint64_t id, struct netelect_node_info *out)
{
    if (!v || !out)
        return -EINVAL;
    struct netelect_node_info tmp;
    struct node_op n = {.op.fn = node_fn, .op.lazy_announce = true, .id = id, .out = &tmp};
    int rc = run(v, &n.op, node_fn);
    if (rc == 0)
        *out = tmp;
    return rc;
}

struct foreach_node_op {
    struct op op;
    int (*cb)(void *ctx, const struct netelect_node_info *node);
    void *ctx;
};

/* Validates before every callback, so a callback only ever sees nodes of
 * one consistent version; a lap restarts the walk. */
static int foreach_node_fn(struct op *op, const struct map *m, const struct netelect_shm_slot *sl,
                           uint64_t cur)
{
    struct foreach_node_op *f = (struct foreach_node_op *)op;
    (void)cur;
    const uint64_t q0 = atomic_load_explicit(&sl->s_seq, memory_order_relaxed);
    const uint32_t n = NETELECT_LOAD_RELAXED(&sl->s_n_nodes);
    if (n > m->L.max_nodes)
        return E_GARBAGE;
    for (uint32_t i = 0; i < n; i++) {
        struct netelect_node_info info;
        node_copy(m, sl, i, &info);
        if (!seq_unchanged(sl, q0))
            return -EAGAIN; /* run() sees the seq move and retries */
        int rc = f->cb(f->ctx, &info);
        if (rc) {
            op->final = true;
            return rc;
        }
    }
    return 0;
}

int netelect_view_foreach_node(struct netelect_view *v,
                               int (*cb)(void *ctx, const struct netelect_node_info *node),
                               void *ctx)
{
    if (!v || !cb)
        return -EINVAL;
    struct foreach_node_op f = {.op.fn = foreach_node_fn, .cb = cb, .ctx = ctx};
    return run(v, &f.op, foreach_node_fn);
}

struct foreach_chan_op {
    struct op op;
    int (*cb)(void *ctx, const char *name, const uint64_t *members, size_t n);
    void *ctx;
    uint64_t *buf;
    size_t buf_cap;
};

static int foreach_chan_fn(struct op *op, const struct map *m, const struct netelect_shm_slot *sl,
                           uint64_t cur)
{
    struct foreach_chan_op *f = (struct foreach_chan_op *)op;
    (void)cur;
    const uint64_t q0 = atomic_load_explicit(&sl->s_seq, memory_order_relaxed);
    const uint32_t n = NETELECT_LOAD_RELAXED(&sl->s_n_chans);
    if (n > m->L.max_chans)
        return E_GARBAGE;
    const struct netelect_shm_chan *ch = rg(m, sl, NETELECT_RG_CHANS);
    const uint64_t *names = rg(m, sl, NETELECT_RG_NAMES);
    const uint64_t *ids = rg(m, sl, NETELECT_RG_M_IDS);
    for (uint32_t c = 0; c < n; c++) {
        uint64_t name[(NETELECT_CHAN_NAME_MAX + 1 + 7) / 8] = {0};
        const uint32_t len = NETELECT_LOAD_RELAXED(&ch[c].c_name_len);
        const uint32_t off = NETELECT_LOAD_RELAXED(&ch[c].c_name_off);
        uint32_t first, cnt;
        if (len == 0 || len > NETELECT_CHAN_NAME_MAX || (off & 7) || off > m->L.max_name_bytes ||
            len > m->L.max_name_bytes - off || chan_range(m, sl, c, &first, &cnt))
            return seq_unchanged(sl, q0) ? E_GARBAGE : -EAGAIN;
        for (uint32_t k = 0; k < len; k += 8)
            name[k / 8] = NETELECT_LOAD_RELAXED(&names[(off + k) / 8]);
        char *str = (char *)name;
        str[len] = 0;
        if (cnt > f->buf_cap) {
            uint64_t *nb = realloc(f->buf, (size_t)cnt * sizeof *nb);
            if (!nb) {
                op->final = true;
                return -ENOMEM;
            }
            f->buf = nb;
            f->buf_cap = cnt;
        }
        for (uint32_t k = 0; k < cnt; k++)
            f->buf[k] = NETELECT_LOAD_RELAXED(&ids[first + k]);
        if (!seq_unchanged(sl, q0))
            return -EAGAIN;
        if (memchr(str, 0, len))
            return E_GARBAGE; /* a consistent version with a NUL in a name */
        int rc = f->cb(f->ctx, str, f->buf, cnt);
        if (rc) {
            op->final = true;
            return rc;
        }
    }
    return 0;
}

int netelect_view_foreach_channel(struct netelect_view *v,
                                  int (*cb)(void *ctx, const char *name, const uint64_t *members,
                                            size_t n),
                                  void *ctx)
{
    if (!v || !cb)
        return -EINVAL;
    struct foreach_chan_op f = {.op.fn = foreach_chan_fn, .cb = cb, .ctx = ctx};
    int rc = run(v, &f.op, foreach_chan_fn);
    free(f.buf);
    return rc;
}

/* ---- read sections */

struct netelect_snap {
    const struct map *m;
    const struct netelect_shm_slot *sl;
    uint64_t gen;
    int *garbage;
};

struct read_op {
    struct op op;
    int (*fn)(const struct netelect_snap *s, void *ctx);
    void *ctx;
};

static int read_fn(struct op *op, const struct map *m, const struct netelect_shm_slot *sl,
                   uint64_t cur)
{
    struct read_op *r = (struct read_op *)op;
    int garbage = 0;
    struct netelect_snap s = {m, sl, cur >> 8, &garbage};
    int rc = r->fn(&s, r->ctx);
    return garbage ? E_GARBAGE : rc;
}

int netelect_view_read(struct netelect_view *v, int (*fn)(const struct netelect_snap *s, void *ctx),
                       void *ctx)
{
    if (!v || !fn)
        return -EINVAL;
    struct read_op r = {.op.fn = read_fn, .fn = fn, .ctx = ctx};
    return run(v, &r.op, read_fn);
}

uint64_t netelect_snap_generation(const struct netelect_snap *s)
{
    return s ? s->gen : 0;
}

uint64_t netelect_snap_publish_ns(const struct netelect_snap *s)
{
    return s ? NETELECT_LOAD_RELAXED(&s->sl->s_publish_ns) : 0;
}

static int snap_rc(const struct netelect_snap *s, int64_t r)
{
    if (r == E_GARBAGE) {
        *s->garbage = 1;
        return NETELECT_ECORRUPT;
    }
    return (int)r;
}

int netelect_snap_elect(const struct netelect_snap *s, const char *channel, uint64_t self_id,
                        struct netelect_result *out)
{
    uint32_t len;
    if (!s || !out || check_name(channel, &len))
        return -EINVAL;
    int64_t ci = chan_find(s->m, s->sl, channel, len);
    if (ci < 0)
        return ci == -1 ? NETELECT_ENOCHAN : snap_rc(s, ci);
    return snap_rc(s, do_elect(NULL, s->m, s->sl, (uint32_t)ci, self_id, 0, out, NULL, NULL));
}

int netelect_snap_rank(const struct netelect_snap *s, const char *channel, uint64_t self_id,
                       uint64_t *out_ids, size_t cap, size_t *count)
{
    uint32_t len;
    if (!s || !count || (cap && !out_ids) || check_name(channel, &len))
        return -EINVAL;
    int64_t ci = chan_find(s->m, s->sl, channel, len);
    if (ci < 0)
        return ci == -1 ? NETELECT_ENOCHAN : snap_rc(s, ci);
    return snap_rc(s, do_rank(s->m, s->sl, (uint32_t)ci, self_id, out_ids, cap, count));
}

int netelect_snap_node(const struct netelect_snap *s, uint64_t id, struct netelect_node_info *out)
{
    if (!s || !out)
        return -EINVAL;
    int64_t i = node_find(s->m, s->sl, id);
    if (i < 0)
        return i == -1 ? -ENOENT : snap_rc(s, i);
    node_copy(s->m, s->sl, (uint32_t)i, out);
    return 0;
}

int netelect_snap_members(const struct netelect_snap *s, const char *channel, uint64_t *ids,
                          uint64_t *rtt_ns, uint8_t *healthy, size_t cap, size_t *count)
{
    uint32_t len, first, n;
    if (!s || !count || check_name(channel, &len))
        return -EINVAL;
    int64_t ci = chan_find(s->m, s->sl, channel, len);
    if (ci < 0)
        return ci == -1 ? NETELECT_ENOCHAN : snap_rc(s, ci);
    if (chan_range(s->m, s->sl, (uint32_t)ci, &first, &n))
        return snap_rc(s, E_GARBAGE);
    const uint64_t *mi = rg(s->m, s->sl, NETELECT_RG_M_IDS);
    const uint64_t *mr = rg(s->m, s->sl, NETELECT_RG_M_RTT);
    const uint8_t *mh = rg(s->m, s->sl, NETELECT_RG_M_HEALTHY);
    for (size_t k = 0; k < n && k < cap; k++) {
        if (ids)
            ids[k] = NETELECT_LOAD_RELAXED(&mi[first + k]);
        if (rtt_ns)
            rtt_ns[k] = NETELECT_LOAD_RELAXED(&mr[first + k]);
        if (healthy)
            healthy[k] = NETELECT_LOAD_RELAXED(&mh[first + k]);
    }
    *count = n;
    return 0;
}
