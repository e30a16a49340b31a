/* SPDX-License-Identifier: MIT */
/*
 * netelect_view_wait(): woken by a publish, not by polling; times out;
 * returns at once when the agent leaves or is already gone; follows a
 * move to a larger segment; and a publish nobody waits for wakes nobody.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>

#include "netelect.h"
#include "shm/layout.h"
#include "shm/writer.h"
#include "tests/shm/helpers.h"

static char name[128];
static void setup(void)
{
    t_name(name, sizeof name, "wait");
}
static void teardown(void)
{
    t_unlink(name);
}
TestSuite(wait, .init = setup, .fini = teardown, .timeout = 30);

static const struct netelect_wnode one[] = {{.id = 1, .rtt_ns = 10, .healthy = 1}};
static const uint64_t m1[] = {1};
static const struct netelect_wchan c1[] = {{"c", m1, 1}};

/* A heartbeat period of 1 s: a waiter that were not woken by the writer
 * would sleep ~3 s (its liveness horizon) before seeing a publish. */
static struct netelect_writer *wopen(void)
{
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 1,
                                         .heartbeat_period_ns = UINT64_C(1000000000),
                                         .max_nodes = 16, .max_chans = 4, .max_members = 16};
    struct netelect_writer *w = NULL;
    cr_assert_eq(netelect__writer_open(&cfg, &w), 0);
    cr_assert_eq(netelect__writer_publish(w, one, 1, c1, 1), 0);
    return w;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

struct later {
    struct netelect_writer *w;
    int what; /* 0 publish, 1 abandon, 2 publish a view that needs a larger segment */
    long delay_ms;
};

static void *act_later(void *arg)
{
    struct later *l = arg;
    struct timespec d = {0, l->delay_ms * 1000000L};
    nanosleep(&d, NULL);
    if (l->what == 0)
        netelect__writer_publish(l->w, one, 1, c1, 1);
    else if (l->what == 1)
        netelect__writer_close(l->w, true);
    else {
        static struct netelect_wnode big[200];
        for (int i = 0; i < 200; i++)
            big[i] = (struct netelect_wnode){.id = (uint64_t)i + 1, .rtt_ns = 5, .healthy = 1};
        netelect__writer_publish(l->w, big, 200, c1, 1);
    }
    return NULL;
}

static int wait_for(struct netelect_writer *w, int what, double *ms)
{
    struct netelect_view *v = NULL;
    cr_assert_eq(netelect_view_open(name, &v), 0);
    const uint64_t g = netelect_view_generation(v);
    struct later l = {w, what, 50};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, act_later, &l), 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = netelect_view_wait(v, g, UINT64_C(10000000000));
    *ms = ms_since(&t0);
    pthread_join(th, NULL);
    if (rc == 0)
        cr_assert_neq(netelect_view_generation(v), g);
    netelect_view_close(v);
    return rc;
}

Test(wait, woken_by_a_publish)
{
    struct netelect_writer *w = wopen();
    double ms;
    int rc = wait_for(w, 0, &ms);
    netelect__writer_close(w, true);
    cr_assert_eq(rc, 0, "%s", netelect_strerror(rc));
    cr_assert(ms >= 40 && ms < 1000, "woken after %.1f ms (publish at 50 ms)", ms);
}

Test(wait, woken_when_the_agent_leaves)
{
    struct netelect_writer *w = wopen();
    double ms;
    int rc = wait_for(w, 1, &ms);
    cr_assert_eq(rc, -EOWNERDEAD, "%s", netelect_strerror(rc));
    cr_assert(ms < 1000, "told after %.1f ms (exit at 50 ms)", ms);
}

Test(wait, follows_a_move_to_a_larger_segment)
{
    struct netelect_writer *w = wopen();
    double ms;
    int rc = wait_for(w, 2, &ms);
    netelect__writer_close(w, true);
    cr_assert_eq(rc, 0, "%s", netelect_strerror(rc));
    cr_assert(ms < 1000, "woken after %.1f ms (move at 50 ms)", ms);
}

Test(wait, times_out_and_gone_at_once)
{
    struct netelect_writer *w = wopen();
    struct netelect_view *v = NULL;
    cr_assert_eq(netelect_view_open(name, &v), 0);
    const uint64_t g = netelect_view_generation(v);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(netelect_view_wait(v, g, UINT64_C(100000000)), -ETIMEDOUT);
    const double ms = ms_since(&t0);
    cr_assert(ms >= 99 && ms < 1000, "timed out after %.1f ms (asked 100)", ms);
    cr_assert_eq(netelect_view_wait(v, g - 1, 0), 0, "an old generation returns at once");
    netelect__writer_close(w, true);
    cr_assert_eq(netelect_view_wait(v, g, UINT64_C(5000000000)), -EOWNERDEAD);
    cr_assert_eq(netelect_view_wait(NULL, g, 0), -EINVAL);
    netelect_view_close(v);
}

/* The word waiters sleep on moves only when someone waits: a publish with
 * no waiter costs one fcntl() and no futex call. */
Test(wait, nobody_waiting_nobody_woken)
{
    struct netelect_writer *w = wopen();
    char path[256];
    t_path(path, sizeof path, name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    const struct netelect_shm_hdr *h =
        mmap(NULL, NETELECT_SHM_PAGE, PROT_READ, MAP_SHARED, fileno(f), 0);
    fclose(f);
    cr_assert_neq((void *)h, MAP_FAILED);
    const uint32_t w0 = atomic_load(&h->h_wake);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(netelect__writer_publish(w, one, 1, c1, 1), 0);
    const uint32_t w1 = atomic_load(&h->h_wake);
    double ms;
    cr_assert_eq(wait_for(w, 0, &ms), 0);
    const uint32_t w2 = atomic_load(&h->h_wake);
    munmap((void *)h, NETELECT_SHM_PAGE);
    netelect__writer_close(w, true);
    cr_assert_eq(w1, w0, "publishes with no waiter touched the futex word");
    cr_assert_neq(w2, w1, "a publish with a waiter did not");
}

/* ---- netelect_view_fd() */

static int readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

Test(wait, fd_reports_publish_exit_and_a_new_agent)
{
    struct netelect_writer *w = wopen();
    struct netelect_view *v = NULL;
    cr_assert_eq(netelect_view_open(name, &v), 0);
    const int fd = netelect_view_fd(v);
    cr_assert_geq(fd, 0, "%s", netelect_strerror(fd));
    cr_assert_eq(netelect_view_fd(v), fd, "one descriptor per handle");
    cr_assert_not(readable(fd, 100), "readable with nothing published");

    const uint64_t g = netelect_view_generation(v);
    cr_assert_eq(netelect__writer_publish(w, one, 1, c1, 1), 0);
    cr_assert(readable(fd, 1000), "a publish was not reported");
    cr_assert_eq(netelect_view_fd_rearm(v), 0);
    cr_assert_neq(netelect_view_generation(v), g);
    cr_assert_not(readable(fd, 50), "still readable after rearm");

    netelect__writer_close(w, true);
    cr_assert(readable(fd, 1000), "the agent's exit was not reported");
    cr_assert_eq(netelect_view_fd_rearm(v), 0);

    /* A new agent renames its file over the name: reported, and after
     * rearm the descriptor follows the new file. */
    w = wopen();
    cr_assert(readable(fd, 1000), "a new agent was not reported");
    cr_assert_eq(netelect_view_fd_rearm(v), 0);
    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, "c", 1, &r), 0);
    cr_assert_eq(netelect_view_fd_rearm(v), 0);
    cr_assert_not(readable(fd, 50));
    cr_assert_eq(netelect__writer_publish(w, one, 1, c1, 1), 0);
    cr_assert(readable(fd, 1000), "a publish of the new agent was not reported");
    netelect_view_close(v);
    netelect__writer_close(w, true);
}
