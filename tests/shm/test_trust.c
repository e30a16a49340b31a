/* SPDX-License-Identifier: MIT */
/*
 * The trust model (shm/README.md, "Trust"), tried the way an unprivileged
 * local user would attack it: each test plays the attacker in a child that
 * dropped to an unprivileged uid, so the suite needs root (it skips
 * otherwise).  Each test is one attack and the protection that defeats it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "netelect.h"
#include "shm/layout.h"
#include "shm/registry.h"
#include "shm/writer.h"
#include "tests/shm/helpers.h"

#define EVIL_UID 4242

static char name[128];

static void setup(void)
{
    t_name(name, sizeof name, "trust");
}

static void teardown(void)
{
    t_unlink(name);
}

TestSuite(trust, .init = setup, .fini = teardown, .timeout = 60);

static void need_root(void)
{
    if (geteuid() != 0)
        cr_skip_test("plays an unprivileged attacker: needs root to change uid");
}

/* In a child: becomes EVIL_UID for good. */
static void become_evil(void)
{
    if (setgroups(0, NULL) != 0 || setresgid(EVIL_UID, EVIL_UID, EVIL_UID) != 0 ||
        setresuid(EVIL_UID, EVIL_UID, EVIL_UID) != 0)
        _exit(90);
}

static int wait_child(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static const struct netelect_wnode evil_nodes[] = {
    {.id = 0x666, .rtt_ns = 1, .healthy = 1, .source = NETELECT_SRC_PROBE},
};
static const uint64_t evil_members[] = {0x666};
static const struct netelect_wchan evil_chans[] = {{"default", evil_members, 1}};

/*
 * An unprivileged user runs a real writer on the agent's name first (the
 * review's reproduction: `netelectd --shm NAME --node-id 0x666`).  It keeps
 * running, holding its lock, until the pipe closes.
 */
static pid_t evil_agent(int *hold_fd)
{
    int p[2], q[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(pipe(q), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[1]);
        close(q[0]);
        become_evil();
        struct netelect_writer_config cfg = {
            .name = name, .group = (gid_t)-1, .self_id = 0x666, .initial_nodes = evil_nodes,
            .n_initial_nodes = 1, .initial_chans = evil_chans, .n_initial_chans = 1};
        struct netelect_writer *w = NULL;
        char ok = netelect__writer_open(&cfg, &w) == 0 ? 'y' : 'n';
        if (write(q[1], &ok, 1) != 1)
            _exit(91);
        char c;
        while (read(p[0], &c, 1) > 0) {
        }
        _exit(0);
    }
    close(p[0]);
    close(q[1]);
    char ok = 0;
    cr_assert_eq(read(q[0], &ok, 1), 1);
    close(q[0]);
    cr_assert_eq(ok, 'y', "the attacker could not even create its segment");
    *hold_fd = p[1];
    return pid;
}

/* A segment published by another uid is refused by default, and
 * the real (root) agent starts over the attacker's files. */
Test(trust, forged_view_refused_and_replaced)
{
    need_root();
    int hold;
    pid_t pid = evil_agent(&hold);
    char path[256];
    t_path(path, sizeof path, name);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_uid, EVIL_UID);

    struct netelect_view *v = NULL;
    int rc = netelect_view_open(name, &v);
    cr_assert_eq(rc, -EPERM, "a root reader attached to uid %d's view: %s", EVIL_UID,
                 netelect_strerror(rc));
    struct netelect_view_opts o = {.size = sizeof o, .expect_uid = EVIL_UID, .expect_uid_set = 1};
    cr_assert_eq(netelect_view_open_opts(name, &o, &v), 0, "unless told that uid is the agent");
    netelect_view_close(v);

    /* The real agent, while the attacker still holds its lock. */
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 7};
    struct netelect_writer *w = NULL;
    rc = netelect__writer_open(&cfg, &w);
    cr_assert_eq(rc, 0, "root agent refused: %s", netelect_strerror(rc));
    struct netelect_writer_report rep;
    netelect__writer_report(w, &rep);
    cr_assert_eq(rep.squatters, 3, "segment, lock and registry removed");
    cr_assert_eq(rep.squatter_uid, EVIL_UID);
    static const char *const sfx[] = {"", ".lock", ".readers"};
    for (int i = 0; i < 3; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        cr_assert_eq(stat(p, &st), 0, "%s", p);
        cr_assert_eq(st.st_uid, 0, "%s still belongs to the attacker", p);
    }
    cr_assert_eq(netelect_view_open(name, &v), 0);
    cr_assert_eq(netelect_view_self(v), 7, "the reader sees the real agent");
    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, "default", 7, &r), NETELECT_ENOCHAN, "no forged channel");
    netelect_view_close(v);
    netelect__writer_close(w, true);
    close(hold);
    cr_assert_eq(wait_child(pid), 0);
}

/* A non-root writer cannot remove another user's file in sticky
 * /dev/shm, and says so with -EPERM instead of touching it. */
Test(trust, unprivileged_writer_refuses_squatter)
{
    need_root();
    char path[256];
    t_path(path, sizeof path, name);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(chown(path, EVIL_UID + 1, EVIL_UID + 1), 0);
    pid_t pid = fork();
    if (pid == 0) {
        become_evil();
        struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1};
        struct netelect_writer *w = NULL;
        _exit(netelect__writer_open(&cfg, &w) == -EPERM ? 0 : 1);
    }
    cr_assert_eq(wait_child(pid), 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_uid, EVIL_UID + 1, "left alone");
    char p[300];
    snprintf(p, sizeof p, "%s.lock", path);
    unlink(p);
}

/* The lock file is the agent's alone: another user cannot open it,
 * so cannot hold a lock on it that keeps the agent from restarting. */
Test(trust, lock_file_closed_to_others)
{
    need_root();
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 7};
    struct netelect_writer *w = NULL;
    cr_assert_eq(netelect__writer_open(&cfg, &w), 0);
    netelect__writer_close(w, true);
    char lock[300];
    t_path(lock, sizeof lock, name);
    t_append(lock, sizeof lock, ".lock");
    struct stat st;
    cr_assert_eq(stat(lock, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);

    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        become_evil();
        char ok = 'n';
        int fd = open(lock, O_RDONLY);
        if (fd >= 0) {
            struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
            if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
                ok = 'L'; /* holding it */
        }
        if (write(p[1], &ok, 1) != 1)
            _exit(91);
        pause();
        _exit(0);
    }
    close(p[1]);
    char got = 0;
    cr_assert_eq(read(p[0], &got, 1), 1);
    close(p[0]);
    int rc = netelect__writer_open(&cfg, &w);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_neq(got, 'L', "uid %d took a lock on the agent's lock file", EVIL_UID);
    cr_assert_eq(rc, 0, "the agent could not restart: %s", netelect_strerror(rc));
    netelect__writer_close(w, true);
}

/* A planted segment cannot push the generation to its limit (the
 * agent would never start again: -EOVERFLOW). */
Test(trust, planted_generation_ignored)
{
    need_root();
    char path[256];
    t_path(path, sizeof path, name);
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
    cr_assert_geq(fd, 0);
    struct netelect_shm_hdr h;
    memset(&h, 0, sizeof h);
    h.h_magic = NETELECT_SHM_MAGIC;
    atomic_store(&h.h_current, ((UINT64_C(1) << 55) - 1) << 8);
    cr_assert_eq(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
    cr_assert_eq(chown(path, EVIL_UID, EVIL_UID), 0);
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 7};
    struct netelect_writer *w = NULL;
    int rc = netelect__writer_open(&cfg, &w);
    cr_assert_eq(rc, 0, "the agent did not start: %s", netelect_strerror(rc));
    cr_assert_lt(netelect__writer_generation(w), UINT64_C(1) << 54);
    netelect__writer_close(w, true);
}

/* Temporaries of a writer killed between link and rename are
 * removed at start (ours only). */
Test(trust, stale_temporaries_removed)
{
    need_root();
    char path[256], ours[320], reg[320], theirs[320];
    t_path(path, sizeof path, name);
    snprintf(ours, sizeof ours, "%s.tmp.99999.deadbeef", path);
    snprintf(reg, sizeof reg, "%s.readers.tmp.99999.cafef00d", path);
    snprintf(theirs, sizeof theirs, "%s.tmp.1.0badf00d", path);
    const char *files[] = {ours, reg, theirs};
    for (int i = 0; i < 3; i++) {
        int fd = open(files[i], O_CREAT | O_EXCL | O_WRONLY, 0644);
        cr_assert_geq(fd, 0);
        cr_assert_eq(ftruncate(fd, 1 << 20), 0);
        close(fd);
    }
    cr_assert_eq(chown(theirs, EVIL_UID, EVIL_UID), 0);
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 7};
    struct netelect_writer *w = NULL;
    cr_assert_eq(netelect__writer_open(&cfg, &w), 0);
    struct netelect_writer_report rep;
    netelect__writer_report(w, &rep);
    netelect__writer_close(w, true);
    struct stat st;
    const bool ours_gone = stat(ours, &st) != 0, reg_gone = stat(reg, &st) != 0;
    const bool theirs_kept = stat(theirs, &st) == 0;
    unlink(ours), unlink(reg), unlink(theirs);
    cr_assert(ours_gone && reg_gone, "a stale temporary of ours is still there");
    cr_assert(theirs_kept, "another user's file was removed");
    cr_assert_eq(rep.stale_tmps, 2);
}

/* Publishes that keep failing (a full tmpfs) mark the segment
 * stalled, readers go fail-static and then get ESTALE, although the
 * heartbeat goes on; a good publish makes it live again. */
Test(trust, failing_publishes_go_stale)
{
    need_root();
    char dir[] = "/tmp/netelect-tiny-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    if (mount("tmpfs", dir, "tmpfs", 0, "size=2m") != 0) {
        rmdir(dir);
        cr_skip_test("cannot mount a small tmpfs here: %s", strerror(errno));
    }
    char seg[128];
    snprintf(seg, sizeof seg, "%s/view", dir);
    static const struct netelect_wnode one[] = {{.id = 1, .rtt_ns = 10, .healthy = 1}};
    static const uint64_t m1[] = {1};
    static const struct netelect_wchan c1[] = {{"c", m1, 1}};
    struct netelect_writer_config cfg = {.name = seg, .group = (gid_t)-1, .self_id = 1,
                                         .max_nodes = 16, .max_chans = 4, .max_members = 16};
    struct netelect_writer *w = NULL;
    cr_assert_eq(netelect__writer_open(&cfg, &w), 0);
    cr_assert_eq(netelect__writer_publish(w, one, 1, c1, 1), 0);
    struct netelect_view_opts o = {.size = sizeof o, .fail_static_ns = 1};
    struct netelect_view *v = NULL;
    cr_assert_eq(netelect_view_open_opts(seg, &o, &v), 0);
    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, "c", 1, &r), 0);

    /* 100k nodes need a segment of tens of MiB: growth fails, ENOSPC. */
    const size_t big = 100000;
    struct netelect_wnode *nodes = calloc(big, sizeof *nodes);
    cr_assert_not_null(nodes);
    for (size_t i = 0; i < big; i++)
        nodes[i] = (struct netelect_wnode){.id = i + 1, .rtt_ns = 10 + i, .healthy = 1};
    int rc = 0;
    for (unsigned i = 0; i < NETELECT_WRITER_STALL_AFTER; i++) {
        rc = netelect__writer_publish(w, nodes, big, c1, 1);
        cr_assert_lt(rc, 0, "a 100k-node view fit in 2 MiB?");
        netelect__writer_heartbeat(w); /* the agent lives on */
    }
    free(nodes);
    /* The first read after the stall starts the fail-static window (1 ns
     * here) and may still answer; past it, the answer is ESTALE. */
    (void)netelect_view_elect(v, "c", 1, &r);
    struct timespec ms = {0, 2000000};
    nanosleep(&ms, NULL);
    rc = netelect_view_elect(v, "c", 1, &r);
    netelect__writer_heartbeat(w);
    const int rc2 = netelect_view_elect(v, "c", 1, &r);
    struct netelect_view_status s = {.size = sizeof s};
    netelect_view_status(v, &s);
    const uint32_t state = s.state;

    const int good = netelect__writer_publish(w, one, 1, c1, 1);
    netelect__writer_heartbeat(w);
    const int rc3 = netelect_view_elect(v, "c", 1, &r);
    netelect_view_close(v);
    netelect__writer_close(w, true);
    umount2(dir, MNT_DETACH);
    rmdir(dir);
    cr_assert_eq(state, NETELECT_AGENT_STALLED);
    cr_assert_eq(rc, NETELECT_ESTALE, "a frozen view was served as live: %s", netelect_strerror(rc));
    cr_assert_eq(rc2, NETELECT_ESTALE, "a heartbeat made a stalled view live again");
    cr_assert_eq(good, 0);
    cr_assert_eq(rc3, 0, "not live again after a good publish: %s", netelect_strerror(rc3));
}

/* A group member truncating the registry cannot kill the agent
 * (SIGBUS in the writer's mapping), and publishing goes on. */
Test(trust, truncated_registry_survived)
{
    need_root();
    struct netelect_writer_config cfg = {.name = name, .group = 0, .mode = 0640, .self_id = 7};
    struct netelect_writer *w = NULL;
    cr_assert_eq(netelect__writer_open(&cfg, &w), 0);
    char reg[300];
    t_path(reg, sizeof reg, name);
    t_append(reg, sizeof reg, ".readers");
    cr_assert_eq(truncate(reg, 0), 0);
    static const struct netelect_wnode one[] = {{.id = 7, .rtt_ns = 10, .healthy = 1}};
    for (int i = 0; i < 10; i++)
        cr_assert_eq(netelect__writer_publish(w, one, 1, NULL, 0), 0);
    struct netelect_writer_report rep;
    netelect__writer_report(w, &rep);
    cr_assert(rep.registry_lost);
    netelect__writer_close(w, true);
}

/*
 * A registry member that pins every slot all the time (re-reading
 * the slots' generations and announcing them from two records) makes each
 * publish wait out the reader deadline (2 ms).  The waiting is capped at one
 * deadline per 100 ms in all: 40 publishes take far less than 40 x 2 ms.
 */
struct pinner {
    const char *name;
    _Atomic int stop;
    _Atomic int ready;
};

static void *pin_all(void *arg)
{
    struct pinner *p = arg;
    char path[256], reg[300];
    t_path(path, sizeof path, p->name);
    snprintf(reg, sizeof reg, "%s.readers", path);
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return NULL;
    const uint8_t *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED)
        return NULL;
    const struct netelect_shm_hdr *h = (const void *)base;
    struct netelect__reg_reader *r = NULL;
    if (netelect__reg_attach(reg, h->h_incarnation, st.st_uid, &r) != 0)
        return NULL;
    _Atomic uint64_t *ann[NETELECT_SHM_MAX_SLOTS] = {0};
    for (unsigned s = 0; s < h->h_slot_count; s++)
        ann[s] = netelect__reg_claim(r);
    atomic_store(&p->ready, 1);
    while (!atomic_load(&p->stop))
        for (unsigned s = 0; s < h->h_slot_count; s++) {
            const struct netelect_shm_slot *sl = (const void *)(base + h->h_slot_off[s]);
            if (ann[s])
                atomic_store(ann[s], sl->s_generation << 8 | s);
        }
    netelect__reg_detach(r);
    munmap((void *)base, (size_t)st.st_size);
    return NULL;
}

Test(trust, pinning_everything_stalls_little)
{
    struct netelect_writer *w = NULL;
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 7};
    cr_assert_eq(netelect__writer_open(&cfg, &w), 0);
    static const struct netelect_wnode one[] = {{.id = 7, .rtt_ns = 10, .healthy = 1}};
    for (int i = 0; i < 3; i++) /* every slot holds a version */
        cr_assert_eq(netelect__writer_publish(w, one, 1, NULL, 0), 0);
    struct pinner p = {.name = name};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, pin_all, &p), 0);
    while (!atomic_load(&p.ready))
        sched_yield();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 40; i++)
        netelect__writer_publish(w, one, 1, NULL, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    atomic_store(&p.stop, 1);
    pthread_join(th, NULL);
    netelect__writer_close(w, true);
    const double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    /* Uncapped: >= 80 ms by construction (40 waits of 2 ms); capped: one
     * wait, and the rest is publishing (margin for a loaded machine). */
    cr_assert_lt(ms, 70.0, "40 publishes took %.1f ms under a pinning reader", ms);
}
