/* SPDX-License-Identifier: MIT */
/*
 * The reader registry (see registry.h for the layout and the field
 * contracts, shm/README.md for how it gives grace periods).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm/layout.h"
#include "shm/registry.h"

struct netelect__reg_writer {
    int fd;
    uint8_t *base;
    int guard; /* index in g_guard, -1 none */
};

/*
 * Whoever may write the registry (the agent's uid, and its group with
 * `[segment] group`) may also truncate it, and a load from the writer's
 * mapping past the new end would kill the agent with SIGBUS.  The writer
 * therefore guards its mappings: a SIGBUS inside one replaces the whole
 * mapping with zero pages (no owner, no pin: the registry is as good as
 * absent, which safety never depends on) and marks it faulted; the load
 * is restarted and reads zero.  Any other SIGBUS gets the action that was
 * installed before ours, as if we were not there.  One slot per writer
 * registry alive in the process (the agent has one; tests a few).
 */
#define GUARDS 8
static struct {
    _Atomic(uint8_t *) base;
    _Atomic int faulted;
} g_guard[GUARDS];
static struct sigaction g_prev_bus;
static pthread_once_t g_bus_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    const uint8_t *a = si->si_addr;
    for (int i = 0; i < GUARDS; i++) {
        uint8_t *b = atomic_load_explicit(&g_guard[i].base, memory_order_relaxed);
        if (b && a >= b && a < b + NETELECT_REG_SIZE) {
            /* mmap() is a plain system call: safe here in practice. */
            if (mmap(b, NETELECT_REG_SIZE, PROT_READ | PROT_WRITE,
                     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
                atomic_store_explicit(&g_guard[i].faulted, 1, memory_order_relaxed);
                return;
            }
        }
    }
    if (g_prev_bus.sa_flags & SA_SIGINFO)
        g_prev_bus.sa_sigaction(sig, si, uc);
    else if (g_prev_bus.sa_handler != SIG_DFL && g_prev_bus.sa_handler != SIG_IGN)
        g_prev_bus.sa_handler(sig);
    else {
        /* Returning restarts the access, which now takes the default
         * action: the process dies of this SIGBUS, as it would have. */
        signal(SIGBUS, SIG_DFL);
    }
}

static void bus_install(void)
{
    struct sigaction sa = {.sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_prev_bus);
}

static int guard_add(uint8_t *base)
{
    pthread_once(&g_bus_once, bus_install);
    for (int i = 0; i < GUARDS; i++) {
        uint8_t *expected = NULL;
        if (atomic_compare_exchange_strong(&g_guard[i].base, &expected, base)) {
            atomic_store(&g_guard[i].faulted, 0);
            return i;
        }
    }
    return -1;
}

bool netelect__reg_faulted(const struct netelect__reg_writer *r)
{
    return r->guard < 0 || atomic_load_explicit(&g_guard[r->guard].faulted, memory_order_relaxed);
}

struct netelect__reg_reader {
    int fd;
    uint8_t *base;
    uint64_t key; /* nonce << 16 | record index */
};

static struct netelect_reg_proc *proc_at(uint8_t *base, uint32_t i)
{
    return (struct netelect_reg_proc *)(void *)(base + NETELECT_REG_PROC_OFF + (size_t)i * 64u);
}

static struct netelect_reg_thr *thr_at(uint8_t *base, uint32_t j)
{
    return (struct netelect_reg_thr *)(void *)(base + NETELECT_REG_THR_OFF + (size_t)j * 64u);
}

/*
 * True iff the process that stored `key` still holds its record: the OFD
 * lock on byte (key & 0xffff) is held by someone and the record still
 * carries this key (so a record index taken over by a newer process does
 * not keep an older owner's threads alive).
 */
static int owner_alive(int fd, uint8_t *base, uint64_t key)
{
    const uint32_t i = (uint32_t)(key & 0xffff);
    if (i >= NETELECT_REG_NPROC)
        return 0;
    if (atomic_load_explicit(&proc_at(base, i)->p_key, memory_order_acquire) != key)
        return 0;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)i, .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return 1; /* cannot tell: assume alive, the wait is bounded anyway */
    return fl.l_type != F_UNLCK;
}

int netelect__reg_create(const char *path, const char *dir, const uint8_t inc[16], mode_t mode,
                         gid_t group, struct netelect__reg_writer **out)
{
    int rc = 0;
    char tmp[4200];
    *out = NULL;
    /* Readers need write access to their own records: the agent's uid, and
     * the group when one is given; never others (a hostile reader could
     * otherwise make every publish wait out the bounded pin). */
    const mode_t rmode = 0600 | (group != (gid_t)-1 ? (mode & 0040 ? 0060 : 0) : 0);
    struct netelect__reg_writer *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->guard = -1;
    r->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, rmode);
    tmp[0] = 0;
    if (r->fd < 0) {
        uint32_t n = 0;
        if (getrandom(&n, sizeof n, GRND_NONBLOCK) < 0)
            n = (uint32_t)time(NULL);
        snprintf(tmp, sizeof tmp, "%s.tmp.%d.%08x", path, (int)getpid(), n);
        r->fd = open(tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, rmode);
        if (r->fd < 0) {
            rc = -errno;
            tmp[0] = 0;
            goto fail;
        }
    }
    if (fchmod(r->fd, rmode) != 0 ||
        (group != (gid_t)-1 && fchown(r->fd, (uid_t)-1, group) != 0) ||
        (rc = posix_fallocate(r->fd, 0, NETELECT_REG_SIZE)) != 0) {
        rc = rc ? -rc : -errno;
        goto fail;
    }
    r->base = mmap(NULL, NETELECT_REG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    if (r->base == MAP_FAILED) {
        r->base = NULL;
        rc = -errno;
        goto fail;
    }
    /* Unguarded, a registry is a way for its group to kill the agent. */
    if ((r->guard = guard_add(r->base)) < 0) {
        rc = -EMFILE;
        goto fail;
    }
    struct netelect_reg_hdr *h = (struct netelect_reg_hdr *)(void *)r->base;
    h->r_magic = NETELECT_REG_MAGIC;
    h->r_abi_major = NETELECT_SHM_ABI_MAJOR;
    h->r_abi_minor = NETELECT_SHM_ABI_MINOR;
    h->r_nproc = NETELECT_REG_NPROC;
    h->r_nthread = NETELECT_REG_NTHREAD;
    memcpy(h->r_incarnation, inc, 16);
    if (!tmp[0]) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", r->fd);
        uint32_t n = 0;
        if (getrandom(&n, sizeof n, GRND_NONBLOCK) < 0)
            n = (uint32_t)time(NULL);
        snprintf(tmp, sizeof tmp, "%s.tmp.%d.%08x", path, (int)getpid(), n);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) != 0) {
            rc = -errno;
            tmp[0] = 0;
            goto fail;
        }
    }
    if (rename(tmp, path) != 0) {
        rc = -errno;
        goto fail;
    }
    *out = r;
    return 0;
fail:
    if (tmp[0])
        unlink(tmp);
    netelect__reg_writer_close(r);
    return rc;
}

unsigned netelect__reg_pinned(struct netelect__reg_writer *r, const uint64_t *slot_word,
                              unsigned nslots)
{
    unsigned pinned = 0;
    for (uint32_t j = 0; j < NETELECT_REG_NTHREAD; j++) {
        struct netelect_reg_thr *t = thr_at(r->base, j);
        /* Acquire: pairs with the reader's release stores, so an announce
         * seen here belongs to the owner seen here or a later one. */
        const uint64_t owner = atomic_load_explicit(&t->t_owner, memory_order_acquire);
        if (!owner)
            continue;
        const uint64_t ann = atomic_load_explicit(&t->t_announce, memory_order_acquire);
        const unsigned s = (unsigned)(ann & 0xff);
        if (!ann || s >= nslots || slot_word[s] != ann || (pinned & (1u << s)))
            continue;
        if (owner_alive(r->fd, r->base, owner))
            pinned |= 1u << s;
        else {
            /* Reclaim for the next reader; CAS so a record claimed again
             * in between is never cleared (Turso). */
            uint64_t o = owner;
            atomic_compare_exchange_strong_explicit(&t->t_owner, &o, 0, memory_order_acq_rel,
                                                    memory_order_relaxed);
        }
    }
    return pinned;
}

/* What the writer and a reader both hold of a registry: its mapping and
 * its descriptor. */
static void reg_unmap(int fd, uint8_t *base)
{
    if (base)
        munmap(base, NETELECT_REG_SIZE);
    if (fd >= 0)
        close(fd);
}

void netelect__reg_writer_close(struct netelect__reg_writer *r)
{
    if (!r)
        return;
    reg_unmap(r->fd, r->base);
    /* The guard entry goes last: no load from the mapping is unguarded. */
    if (r->guard >= 0)
        atomic_store(&g_guard[r->guard].base, NULL);
    free(r);
}

int netelect__reg_attach(const char *path, const uint8_t inc[16], uid_t owner,
                         struct netelect__reg_reader **out)
{
    int rc;
    *out = NULL;
    struct netelect__reg_reader *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (r->fd < 0) {
        rc = -errno;
        goto fail;
    }
    struct stat st;
    /* Only the segment's own writer's registry: a file of anyone else's
     * could be truncated under our mapping (SIGBUS) by its owner. */
    if (fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != owner ||
        st.st_size != (off_t)NETELECT_REG_SIZE || (st.st_mode & 0002)) {
        rc = -EPERM;
        goto fail;
    }
    r->base = mmap(NULL, NETELECT_REG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    if (r->base == MAP_FAILED) {
        r->base = NULL;
        rc = -errno;
        goto fail;
    }
    const struct netelect_reg_hdr *h = (const struct netelect_reg_hdr *)(void *)r->base;
    if (h->r_magic != NETELECT_REG_MAGIC || h->r_abi_major != NETELECT_SHM_ABI_MAJOR ||
        h->r_nproc != NETELECT_REG_NPROC || h->r_nthread != NETELECT_REG_NTHREAD ||
        memcmp(h->r_incarnation, inc, 16) != 0) {
        rc = -ESTALE;
        goto fail;
    }
    uint64_t nonce = 0;
    if (getrandom(&nonce, sizeof nonce, GRND_NONBLOCK) != sizeof nonce)
        nonce = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20) ^ (uintptr_t)r;
    nonce = (nonce << 16) >> 16 ? nonce : nonce | (1u << 20);
    for (uint32_t i = 0; i < NETELECT_REG_NPROC; i++) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)i, .l_len = 1};
        if (fcntl(r->fd, F_OFD_SETLK, &fl) != 0)
            continue;
        struct netelect_reg_proc *p = proc_at(r->base, i);
        r->key = (nonce << 16) | i;
        p->p_pid = (int32_t)getpid();
        /* Release: the record is ours (we hold the lock) before anyone can
         * match a thread record to this key. */
        atomic_store_explicit(&p->p_key, r->key, memory_order_release);
        *out = r;
        return 0;
    }
    rc = -EUSERS;
fail:
    netelect__reg_detach(r);
    return rc;
}

_Atomic uint64_t *netelect__reg_claim(struct netelect__reg_reader *r)
{
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t j = 0; j < NETELECT_REG_NTHREAD; j++) {
            struct netelect_reg_thr *t = thr_at(r->base, j);
            uint64_t o = atomic_load_explicit(&t->t_owner, memory_order_relaxed);
            /* Second pass: take over records of dead processes. */
            if (o && (pass == 0 || owner_alive(r->fd, r->base, o)))
                continue;
            if (atomic_compare_exchange_strong_explicit(&t->t_owner, &o, r->key,
                                                        memory_order_acq_rel,
                                                        memory_order_relaxed)) {
                atomic_store_explicit(&t->t_announce, 0, memory_order_release);
                return &t->t_announce;
            }
        }
    }
    return NULL;
}

void netelect__reg_release(struct netelect__reg_reader *r, _Atomic uint64_t *announce)
{
    struct netelect_reg_thr *t =
        (struct netelect_reg_thr *)(void *)((uint8_t *)announce -
                                            offsetof(struct netelect_reg_thr, t_announce));
    atomic_store_explicit(&t->t_announce, 0, memory_order_release);
    uint64_t o = r->key;
    atomic_compare_exchange_strong_explicit(&t->t_owner, &o, 0, memory_order_release,
                                            memory_order_relaxed);
}

void netelect__reg_detach(struct netelect__reg_reader *r)
{
    if (!r)
        return;
    reg_unmap(r->fd, r->base);
    free(r);
}
