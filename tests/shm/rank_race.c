/* SPDX-License-Identifier: MIT */
/*
 * rank_race: the real writer republishing a big channel while readers
 * without a registry slot rank, top-k and elect over it.
 *
 *   rank_race [--seconds S]
 *
 * A reader that has no slot in the <name>.readers registry (the default
 * for every uid but the agent's group, and everyone after the writer's
 * 2 ms forced reuse) is protected by the seq re-check alone, so the writer
 * may rewrite the very slot it is reading.  Rank and top-k must therefore
 * not run their multi-pass sort on the live mapping: a pass that counted
 * few healthy members would size the scratch and the next pass meet many
 * (under ASan: a SEGV WRITE in rank_packed, from do_rank, within seconds).
 *
 * Here one writer thread (netelect__writer_*, K = 2 slots) publishes two
 * versions of three channels, in random order; they differ in health and
 * RTT:
 *   big     20000 members, 2% / 98% healthy (the packed-key radix rank);
 *   wide     3000 members, RTTs over the whole 64-bit range (the record
 *            path), 50% / 95% healthy;
 *   sparse   2000 members, 24 / 1900 healthy (24 is the insertion sort's
 *            size, 1900 is not).
 * Each node is a member REP = 8 times (below), which keeps the node table
 * (written first by a publish) short.
 * The registry file is replaced by a foreign one before the readers open,
 * so they run on validation alone.  Two reader threads call, over every
 * channel, with self absent or a member: netelect_view_rank with every cap
 * in 0..40 and 63..65, 100, 1000, n/2, n-1, n, n+1, n+50 (k = cap: top-k's
 * insertion buffer up to 32, the full sort above it, and cap = n); the
 * same through a snapshot (netelect_snap_rank); and netelect_view_elect.
 * Every answer must be the exact answer of one of the two versions (count,
 * and the ids up to the cap), and the canaries after the cap intact.  The
 * output buffers are heap blocks of exactly cap + 8 ids, so ASan sees any
 * write past them too.  The run must also show that readers were lapped
 * (retries > 0): otherwise nothing was tested.
 *
 * Exit: 0 pass, 1 fail, 77 skip (no writable /dev/shm).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dispatch.h"
#include "netelect.h"
#include "shm/path.h"
#include "shm/writer.h"

enum { BIG = 20000, WIDE = 3000, SPARSE = 2000, NCH = 3, NSELF = 2, READERS = 2 };
/* Each node is a member REP times over (interleaved): a short node table
 * makes a publish reach the member arrays soon after it starts rewriting
 * a slot, which is when a reader that has just begun there is in the
 * first passes of its sort. */
enum { REP = 8 };
#define NNODES ((BIG + WIDE + SPARSE) / REP)
#define NMEMBERS (BIG + WIDE + SPARSE)
#define CANARY 0x5a5a5a5a5a5a5a5aull
#define NCANARY 8

static const char *const chan_name[NCH] = {"big", "wide", "sparse"};
static const uint32_t chan_n[NCH] = {BIG, WIDE, SPARSE};

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
    struct timespec ts = {0, (long)us * 1000L};
    nanosleep(&ts, NULL);
}

/* Node j (0-based) of the whole table; channels own consecutive ranges. */
static uint64_t node_id(uint32_t j)
{
    return mix64(j) | 1; /* distinct, every bit varying, never 0 */
}

static int node_chan(uint32_t j)
{
    return j < BIG / REP ? 0 : j < (BIG + WIDE) / REP ? 1 : 2;
}

/* Member k of the channel whose nodes start at node `base`. */
static uint32_t member_node(int c, uint32_t base, uint32_t k)
{
    return base + k % (chan_n[c] / REP);
}

/* Version v's health and RTT of node j. */
static void node_state(int v, uint32_t j, uint8_t *healthy, uint64_t *rtt)
{
    const uint64_t x = mix64((uint64_t)j * 2 + (uint64_t)v + 0x1234);
    switch (node_chan(j)) {
    case 0:
        *healthy = v ? x % 50 != 0 : x % 50 == 0;
        *rtt = x % 20 == 1 ? NETELECT_RTT_UNKNOWN : 100000 + (x >> 8) % 200000000;
        break;
    case 1:
        *healthy = v ? x % 20 != 0 : x % 2 == 0;
        *rtt = (x >> 3) % NETELECT_RTT_UNKNOWN; /* 0 .. 2^64 - 2 */
        break;
    default: {
        const uint32_t k = j - (BIG + WIDE) / REP;
        *healthy = v ? k % 20 != 0 : k < 3; /* 24 members: the small sort */
        *rtt = 1000 + (x >> 8) % 1000000;
        break;
    }
    }
}

/* ------------------------------------------------------------ oracle */

struct expect {
    size_t count;          /* candidates */
    uint64_t *order;       /* the whole failover order */
    struct netelect_result elect;
};

static struct expect want[2][NCH][NSELF];
static uint64_t selves[NCH][NSELF];

static void build_oracle(void)
{
    static uint64_t ids[BIG], rtt[BIG];
    static uint8_t ok[BIG];
    for (int v = 0; v < 2; v++) {
        uint32_t base = 0;
        for (int c = 0; c < NCH; c++) {
            const uint32_t n = chan_n[c];
            for (uint32_t k = 0; k < n; k++) {
                const uint32_t j = member_node(c, base, k);
                ids[k] = node_id(j);
                node_state(v, j, &ok[k], &rtt[k]);
            }
            selves[c][0] = 0;                           /* not a member */
            selves[c][1] = node_id(member_node(c, base, n / 3)); /* a member, REP times */
            for (int s = 0; s < NSELF; s++) {
                struct expect *e = &want[v][c][s];
                e->order = malloc((size_t)n * sizeof *e->order);
                if (!e->order)
                    abort();
                e->count = netelect__rank_ref(ids, rtt, ok, n, selves[c][s], e->order);
                e->elect = netelect__elect_ref(ids, rtt, ok, n, selves[c][s]);
            }
            base += n / REP;
        }
    }
}

/* ------------------------------------------------------------ writer */

struct shared {
    atomic_bool stop;
    atomic_ulong publishes;
    atomic_int writer_rc;
};

static struct netelect_wnode nodes[2][NNODES];
static uint64_t members[NMEMBERS];
static struct netelect_wchan chans[NCH];

static void build_versions(void)
{
    for (uint32_t j = 0; j < NNODES; j++) {
        for (int v = 0; v < 2; v++) {
            struct netelect_wnode *w = &nodes[v][j];
            memset(w, 0, sizeof *w);
            w->id = node_id(j);
            node_state(v, j, &w->healthy, &w->rtt_ns);
            w->rtt_raw_ns = w->rtt_ns;
            w->source = NETELECT_SRC_PROBE;
        }
    }
    uint32_t base = 0, m = 0;
    for (int c = 0; c < NCH; c++) {
        chans[c] = (struct netelect_wchan){chan_name[c], members + m, chan_n[c]};
        for (uint32_t k = 0; k < chan_n[c]; k++)
            members[m++] = node_id(member_node(c, base, k));
        base += chan_n[c] / REP;
    }
}

struct wthread {
    struct shared *sh;
    struct netelect_writer *w;
};

/*
 * Publishes version 0 or 1, chosen at random each time (so a slot that is
 * rewritten once or several times during a read changes with probability
 * 1/2 whatever the count; a strict alternation would put the same version
 * back into the same slot with two slots, and readers that restart right
 * after a flip would phase-lock onto it).  Flat out in bursts of 20 ms,
 * then a 10 ms pause in which even slow (sanitized) reads finish.
 * Heartbeat every 10 ms.
 */
static void *publisher(void *arg)
{
    struct wthread *wt = arg;
    uint64_t next_hb = 0, burst_end = now_ns() + 20000000, x = 42;
    while (!atomic_load(&wt->sh->stop)) {
        x = mix64(x);
        const int rc = netelect__writer_publish(wt->w, nodes[x & 1], NNODES, chans, NCH);
        if (rc) {
            atomic_store(&wt->sh->writer_rc, rc);
            break;
        }
        atomic_fetch_add(&wt->sh->publishes, 1);
        const uint64_t t = now_ns();
        if (t >= next_hb) {
            netelect__writer_heartbeat(wt->w);
            next_hb = t + 10000000;
        }
        if (t >= burst_end) {
            sleep_us(10000);
            netelect__writer_heartbeat(wt->w);
            burst_end = now_ns() + 20000000;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ readers */

struct rstats {
    atomic_ulong ranks, snap_ranks, elects, eagain, bad;
};

struct rthread {
    struct netelect_view *v;
    struct rstats *st;
    uint64_t deadline;
    int index;
};

static size_t caps[NCH][64];
static size_t ncaps[NCH];

static void build_caps(void)
{
    for (int c = 0; c < NCH; c++) {
        const size_t n = chan_n[c];
        size_t *p = caps[c], k = 0;
        for (size_t cap = 0; cap <= 40; cap++)
            p[k++] = cap;
        const size_t more[] = {63, 64, 65, 100, 1000, n / 2, n - 1, n, n + 1, n + 50};
        for (size_t i = 0; i < sizeof more / sizeof *more; i++)
            p[k++] = more[i];
        ncaps[c] = k;
    }
}

static void fail(struct rstats *st, const char *what, int c, int s, size_t cap, const char *why)
{
    if (atomic_fetch_add(&st->bad, 1) < 10)
        fprintf(stderr, "rank_race: FAIL %s channel %s self %d cap %zu: %s\n", what,
                chan_name[c], s, cap, why);
}

/* 0 when (count, out[0, min(cap, count))) is version 0's or 1's answer
 * and the canaries after out[cap] are intact. */
static const char *check_rank(int c, int s, const uint64_t *out, size_t cap, size_t count)
{
    for (size_t i = 0; i < NCANARY; i++)
        if (out[cap + i] != CANARY)
            return "wrote past the cap (canary)";
    for (int v = 0; v < 2; v++) {
        const struct expect *e = &want[v][c][s];
        if (count != e->count)
            continue;
        const size_t w = cap < count ? cap : count;
        if (memcmp(out, e->order, w * sizeof *out) == 0)
            return NULL;
    }
    for (int v = 0; v < 2; v++)
        if (count == want[v][c][s].count)
            return "ids are not either version's order";
    return "count is not either version's candidate count";
}

struct snapq {
    int c, s;
    uint64_t *out;
    size_t cap, count;
    int rc;
};

static int snap_fn(const struct netelect_snap *snap, void *p)
{
    struct snapq *q = p;
    q->rc = netelect_snap_rank(snap, chan_name[q->c], selves[q->c][q->s], q->out, q->cap,
                               &q->count);
    return 0;
}

/*
 * Preemption, injected: a timer signal stops each reader about every
 * 1.5 ms of wall time, wherever it is (between the passes of a sort too),
 * for 0.1 to 1.3 ms, while the writer goes on.  A reader on a busy host is
 * preempted like this all the time.  Without it the race is rare: a
 * reader that was lapped restarts right after the writer's flip, the
 * moment the writer turns to the other slot, and its first passes are
 * over before the writer comes back to its slot.
 */
#define PAUSE_SIG (SIGRTMIN + 1)
#ifndef sigev_notify_thread_id /* glibc 2.36 has the field, not the name */
#define sigev_notify_thread_id _sigev_un._tid
#endif
static __thread uint64_t pause_rng;

static void on_pause(int sig)
{
    (void)sig;
    const int e = errno;
    pause_rng = pause_rng * 6364136223846793005ull + 1442695040888963407ull;
    struct timespec ts = {0, 100000 + (long)((pause_rng >> 33) % 1200000)};
    nanosleep(&ts, NULL);
    errno = e;
}

static timer_t pause_timer(int index)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = PAUSE_SIG;
    sev.sigev_notify_thread_id = gettid();
    timer_t tm;
    if (timer_create(CLOCK_MONOTONIC, &sev, &tm) != 0)
        return NULL;
    const long period = 1500000 + 130000L * index; /* threads out of step */
    struct itimerspec its = {{0, period}, {0, period}};
    timer_settime(tm, 0, &its, NULL);
    return tm;
}

static void *reader_thread(void *arg)
{
    struct rthread *t = arg;
    struct rstats *st = t->st;
    pause_rng = (uint64_t)t->index * 0x9e3779b97f4a7c15ull;
    timer_t tm = pause_timer(t->index);
    uint64_t x = (uint64_t)t->index * 7919;
    size_t next[NCH] = {0};
    while (now_ns() < t->deadline && atomic_load(&st->bad) == 0) {
        x = mix64(x);
        /* Half the calls on the big channel; every other call takes the
         * next cap in turn (each channel goes through all of them), the
         * others a cap past top-k's insertion buffer: the full sort, which
         * is where a rewrite between passes hurts. */
        const int c = x % 4 < 2 ? 0 : (int)(x % 4) - 1, s = (int)((x >> 8) % NSELF);
        const size_t n = chan_n[c], big_caps[] = {n + 1, n, n / 2, 33, 1000};
        const size_t cap = (x >> 16) & 1 ? caps[c][next[c]++ % ncaps[c]]
                                         : big_caps[(x >> 20) % (sizeof big_caps / sizeof *big_caps)];
        uint64_t *out = malloc((cap + NCANARY) * sizeof *out);
        if (!out)
            abort();
        for (size_t i = 0; i < cap + NCANARY; i++)
            out[i] = CANARY;
        size_t count = SIZE_MAX;
        int rc = netelect_view_rank(t->v, chan_name[c], selves[c][s], out, cap, &count);
        const char *why;
        if (rc == -EAGAIN) {
            atomic_fetch_add(&st->eagain, 1);
        } else if (rc) {
            fail(st, "view_rank", c, s, cap, netelect_strerror(rc));
        } else {
            atomic_fetch_add(&st->ranks, 1);
            if ((why = check_rank(c, s, out, cap, count)))
                fail(st, "view_rank", c, s, cap, why);
        }

        for (size_t i = 0; i < cap + NCANARY; i++)
            out[i] = CANARY;
        struct snapq q = {c, s, out, cap, SIZE_MAX, -1};
        rc = netelect_view_read(t->v, snap_fn, &q);
        if (rc == -EAGAIN) {
            atomic_fetch_add(&st->eagain, 1);
        } else if (rc || q.rc) {
            fail(st, "snap_rank", c, s, cap, netelect_strerror(rc ? rc : q.rc));
        } else {
            atomic_fetch_add(&st->snap_ranks, 1);
            if ((why = check_rank(c, s, out, cap, q.count)))
                fail(st, "snap_rank", c, s, cap, why);
        }
        free(out);

        struct netelect_result r;
        rc = netelect_view_elect(t->v, chan_name[c], selves[c][s], &r);
        if (rc == -EAGAIN) {
            atomic_fetch_add(&st->eagain, 1);
        } else if (rc) {
            fail(st, "view_elect", c, s, 0, netelect_strerror(rc));
        } else {
            atomic_fetch_add(&st->elects, 1);
            bool ok = false;
            for (int v = 0; v < 2; v++)
                ok |= r.outcome == want[v][c][s].elect.outcome &&
                      r.winner == want[v][c][s].elect.winner;
            if (!ok)
                fail(st, "view_elect", c, s, 0, "not either version's leader");
        }
    }
    if (tm)
        timer_delete(tm);
    return NULL;
}

/* ------------------------------------------------------------ main */

static void cleanup(const struct netelect__shm_paths *p)
{
    unlink(p->path);
    unlink(p->lock);
    unlink(p->readers);
}

int main(int argc, char **argv)
{
    double seconds = 3;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--seconds") != 0 || i + 1 == argc ||
            !((seconds = strtod(argv[++i], &end)) > 0) || *end) {
            fprintf(stderr, "usage: %s [--seconds S], S > 0\n", argv[0]);
            return 1;
        }
    }
    if (access("/dev/shm", W_OK) != 0)
        return 77;
    char name[64];
    snprintf(name, sizeof name, "netelect-rank-race-%d", (int)getpid());
    struct netelect__shm_paths p;
    if (netelect__shm_paths(name, &p)) {
        fprintf(stderr, "rank_race: bad name %s\n", name);
        return 1;
    }
    build_versions();
    build_caps();
    build_oracle();

    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 1,
                                         .slots = 2, .heartbeat_period_ns = 10000000,
                                         .max_nodes = NNODES, .max_chans = NCH,
                                         .max_members = NMEMBERS,
                                         .initial_nodes = nodes[0], .n_initial_nodes = NNODES,
                                         .initial_chans = chans, .n_initial_chans = NCH};
    struct netelect_writer *w = NULL;
    int rc = netelect__writer_open(&cfg, &w);
    if (rc) {
        fprintf(stderr, "rank_race: writer open: %s\n", netelect_strerror(rc));
        cleanup(&p);
        return 1;
    }
    /* A foreign file where the registry was: readers cannot register
     * (as for any reader whose uid may not open it), the writer keeps its
     * own mapping of the real one. */
    unlink(p.readers);
    int fd = open(p.readers, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, "not a registry", 14) != 14) {
        fprintf(stderr, "rank_race: cannot replace %s: %s\n", p.readers, strerror(errno));
        netelect__writer_close(w, true);
        cleanup(&p);
        return 1;
    }
    close(fd);

    struct netelect_view *v = NULL;
    struct netelect_view_opts o = {.size = sizeof o, .fail_static_ns = UINT64_MAX,
                                   .expect_uid = (uint32_t)geteuid(), .expect_uid_set = 1};
    rc = netelect_view_open_opts(name, &o, &v);
    struct netelect_view_status vs = {.size = sizeof vs};
    if (rc == 0)
        rc = netelect_view_status(v, &vs);
    if (rc || vs.registered) {
        fprintf(stderr, "rank_race: reader open: %s, registered %d (want 0)\n",
                netelect_strerror(rc), (int)vs.registered);
        netelect__writer_close(w, true);
        cleanup(&p);
        return 1;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_pause;
    sa.sa_flags = SA_RESTART;
    sigaction(PAUSE_SIG, &sa, NULL);
    struct shared sh;
    atomic_init(&sh.stop, false);
    atomic_init(&sh.publishes, 0);
    atomic_init(&sh.writer_rc, 0);
    struct wthread wt = {&sh, w};
    pthread_t wth, rth[READERS];
    static struct rstats st;
    struct rthread rt[READERS];
    pthread_create(&wth, NULL, publisher, &wt);
    const uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < READERS; i++) {
        rt[i] = (struct rthread){v, &st, deadline, i + 1};
        pthread_create(&rth[i], NULL, reader_thread, &rt[i]);
    }
    for (int i = 0; i < READERS; i++)
        pthread_join(rth[i], NULL);
    atomic_store(&sh.stop, true);
    pthread_join(wth, NULL);
    vs = (struct netelect_view_status){.size = sizeof vs};
    netelect_view_status(v, &vs);
    netelect_view_close(v);
    netelect__writer_close(w, true);
    cleanup(&p);

    fprintf(stderr,
            "rank_race: %.1f s, %lu publishes; view_rank %lu, snap_rank %lu, elect %lu answers "
            "checked; %lu gave up (-EAGAIN); reader retries %" PRIu64 "; %lu bad\n",
            seconds, atomic_load(&sh.publishes), atomic_load(&st.ranks),
            atomic_load(&st.snap_ranks), atomic_load(&st.elects), atomic_load(&st.eagain),
            (uint64_t)vs.retries, atomic_load(&st.bad));
    if (atomic_load(&sh.writer_rc)) {
        fprintf(stderr, "rank_race: FAIL: publish: %s\n",
                netelect_strerror(atomic_load(&sh.writer_rc)));
        return 1;
    }
    if (atomic_load(&st.bad)) {
        fprintf(stderr, "rank_race: FAIL\n");
        return 1;
    }
    if (!vs.retries || !atomic_load(&st.ranks) || !atomic_load(&st.snap_ranks) ||
        !atomic_load(&st.elects)) {
        fprintf(stderr, "rank_race: FAIL: the writer never lapped a reader, or no answer got "
                        "through: nothing was tested\n");
        return 1;
    }
    fprintf(stderr, "rank_race: PASS\n");
    return 0;
}
