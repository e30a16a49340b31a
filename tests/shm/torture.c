/* SPDX-License-Identifier: MIT */
/*
 * Multi-process torture of the segment protocol (segment-protocol.md §11).
 *
 *   torture drive [--seconds S] [--readers P] [--threads T] [--slots K]
 *                 [--reader-exe PATH] [--expect-torn] [--no-chaos] [--delta P]
 *
 * The driver runs one writer process publishing as fast as it can, P
 * reader processes of T threads each, and chaos: the writer SIGKILLed,
 * SIGTERMed, SIGSTOPped, or made to kill itself at an injected crash point
 * (NETELECT_CRASH_AT), then restarted; a second writer started beside the
 * live one (must be refused); readers stopped (their registry pins must
 * not stall the writer) and a victim reader killed and respawned.
 *
 * Oracle: every payload is a pure function of its generation (node RTT and
 * health = mix(generation, id)), so a reader checks each validated read
 * against the generation it came from.  torn_accepted must be 0.  With
 * --reader-exe pointing at the build whose validation is compiled out
 * (NETELECT_NO_VALIDATE) and --expect-torn, the test passes only if torn
 * reads ARE accepted: the negative control that proves the oracle bites.
 *
 * --delta P: the writer publishes mostly deltas (netelect__writer_update),
 * version g changing exactly the nodes with id = g (mod P), and one full
 * publish in 16 (always the first after a start).  The oracle stays a pure
 * function of the generation: node id in version g holds what version
 * g - ((g - id) mod P), the last one that changed it, gave it.  Full
 * publishes write the same function, so any mix of the two is checkable.
 *
 * Exit: 0 pass, 1 fail, 77 skip.  No Criterion here: the roles are
 * processes that exec this binary (see toolchain-notes: no cr_assert in
 * forked children).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "netelect.h"
#include "tests/args.h"
#include "tests/shm/oracle.h"
#include "shm/writer.h"

#define NN 1024   /* nodes 1..NN */
#define NCH 16    /* channels c0..c15 */
#define NMEM 256  /* members per channel */

/* --delta P (0: every version a full publish, every node changed). */
static unsigned g_period;

static uint64_t member(int c, int k)
{
    return (uint64_t)((c * 37 + k * 13 + (k * k) % 7) % NN) + 1;
}

/* The snapshot callback and its checks, over NMEM and member(). */
#include "tests/shm/snapshot.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------ writer */

static volatile sig_atomic_t g_term;
static void on_term(int sig)
{
    (void)sig;
    g_term = 1;
}

static int role_writer(const char *name, unsigned slots, bool once)
{
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = 1,
                                         .slots = slots, .heartbeat_period_ns = 10000000,
                                         .max_nodes = NN, .max_chans = NCH,
                                         .max_members = NCH * NMEM};
    struct netelect_writer *w = NULL;
    int rc;
    if (once) /* the "second writer": must be refused */
        return netelect__writer_open(&cfg, &w) == -EBUSY ? 3 : 4;
    signal(SIGTERM, on_term);
    const uint64_t give_up = now_ns() + 5000000000u;
    while ((rc = netelect__writer_open(&cfg, &w)) == -EBUSY && now_ns() < give_up)
        sleep_ms(5); /* the previous writer is still dying */
    if (rc) {
        fprintf(stderr, "writer: open: %s\n", netelect_strerror(rc));
        return 1;
    }
    static struct netelect_wnode nodes[NN];
    static uint64_t mem[NCH][NMEM];
    static char names[NCH][8];
    struct netelect_wchan chans[NCH];
    for (int c = 0; c < NCH; c++) {
        snprintf(names[c], sizeof names[c], "c%d", c);
        for (int k = 0; k < NMEM; k++)
            mem[c][k] = member(c, k);
        chans[c] = (struct netelect_wchan){names[c], mem[c], NMEM};
    }
    uint64_t next_hb = 0, x = (uint64_t)getpid();
    bool first = true;
    static struct netelect_wnode upd[NN];
    while (!g_term) {
        const uint64_t g = netelect__writer_generation(w) + 1;
        x = mix64(x + 1);
        if (!g_period || first || x % 16 == 0) {
            for (int i = 0; i < NN; i++) {
                const uint64_t id = (uint64_t)i + 1, og = o_gen(g, id, g_period);
                nodes[i] = (struct netelect_wnode){.id = id, .rtt_ns = o_rtt(og, id),
                                                   .rtt_raw_ns = og, .healthy = o_ok(og, id),
                                                   .source = NETELECT_SRC_PROBE};
            }
            rc = netelect__writer_publish(w, nodes, NN, chans, NCH);
        } else {
            size_t n = 0;
            for (uint64_t id = 1; id <= NN; id++)
                if (o_gen(g, id, g_period) == g)
                    upd[n++] = (struct netelect_wnode){.id = id, .rtt_ns = o_rtt(g, id),
                                                       .rtt_raw_ns = g, .healthy = o_ok(g, id),
                                                       .source = NETELECT_SRC_PROBE};
            rc = netelect__writer_update(w, upd, n);
        }
        first = false;
        if (rc) {
            fprintf(stderr, "writer: publish: %s\n", netelect_strerror(rc));
            return 1;
        }
        if (netelect__writer_generation(w) != g) {
            fprintf(stderr, "writer: generation %" PRIu64 " != %" PRIu64 "\n",
                    netelect__writer_generation(w), g);
            return 1;
        }
        const uint64_t t = now_ns();
        if (t >= next_hb) {
            netelect__writer_heartbeat(w);
            next_hb = t + 10000000;
        }
    }
    netelect__writer_close(w, true);
    return 0;
}

/* ------------------------------------------------------------ reader */

struct rstats {
    _Atomic uint64_t reads, torn, eagain, stale, corrupt, other, fast, fast_torn, empty;
};

struct rthread {
    struct netelect_view *v;
    struct rstats *st;
    uint64_t deadline;
    uint64_t seed;
};

static void count_rc(struct rstats *st, int rc)
{
    if (rc == NETELECT_ENOCHAN)
        atomic_fetch_add(&st->empty, 1);
    else if (rc == -EAGAIN)
        atomic_fetch_add(&st->eagain, 1);
    else if (rc == NETELECT_ESTALE)
        atomic_fetch_add(&st->stale, 1);
    else if (rc == NETELECT_ECORRUPT)
        atomic_fetch_add(&st->corrupt, 1);
    else
        atomic_fetch_add(&st->other, 1);
}

static void *reader_thread(void *arg)
{
    struct rthread *t = arg;
    uint64_t x = t->seed;
    struct snapctx sc;
    while (now_ns() < t->deadline) {
        for (int it = 0; it < 64; it++) {
            x = mix64(x + 1);
            sc.c = (int)(x % NCH);
            sc.self = (x >> 8) & 1 ? member(sc.c, (int)((x >> 16) % NMEM)) : 0;
            int rc = netelect_view_read(t->v, snap_fn, &sc);
            if (rc == 0 && sc.rc_members == NETELECT_ENOCHAN && sc.rc_elect == NETELECT_ENOCHAN) {
                /* A new writer's first, empty version. */
                atomic_fetch_add_explicit(&t->st->empty, 1, memory_order_relaxed);
            } else if (rc == 0) {
                atomic_fetch_add_explicit(&t->st->reads, 1, memory_order_relaxed);
                if (!check(&sc, g_period))
                    atomic_fetch_add(&t->st->torn, 1);
            } else {
                count_rc(t->st, rc);
            }
            /* The election entry point (and its per-thread cache). */
            char nm[8];
            snprintf(nm, sizeof nm, "c%d", sc.c);
            struct netelect_result r;
            uint64_t g;
            rc = netelect_view_elect_gen(t->v, nm, sc.self, &r, &g);
            if (rc == 0) {
                atomic_fetch_add_explicit(&t->st->fast, 1, memory_order_relaxed);
                if (!check_elect(sc.c, sc.self, g, r, g_period))
                    atomic_fetch_add(&t->st->fast_torn, 1);
            } else {
                count_rc(t->st, rc);
            }
        }
    }
    return NULL;
}

static int role_reader(const char *name, int threads, double seconds)
{
    struct netelect_view *v = NULL;
    int rc;
    const uint64_t give_up = now_ns() + 5000000000u;
    /* Fail-static long enough to ride out the driver's chaos. */
    struct netelect_view_opts o = {.size = sizeof o, .fail_static_ns = UINT64_C(30000000000)};
    while ((rc = netelect_view_open_opts(name, &o, &v)) != 0 && now_ns() < give_up)
        sleep_ms(5);
    if (rc) {
        fprintf(stderr, "reader: open: %s\n", netelect_strerror(rc));
        return 1;
    }
    static struct rstats st;
    pthread_t th[16];
    struct rthread rt[16];
    if (threads > 16)
        threads = 16;
    const uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < threads; i++) {
        rt[i] = (struct rthread){v, &st, deadline, (uint64_t)getpid() * 1000 + (uint64_t)i};
        pthread_create(&th[i], NULL, reader_thread, &rt[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    struct netelect_view_status vs = {.size = sizeof vs};
    netelect_view_status(v, &vs);
    printf("reads=%" PRIu64 " torn=%" PRIu64 " fast=%" PRIu64 " fast_torn=%" PRIu64
           " eagain=%" PRIu64 " stale=%" PRIu64 " corrupt=%" PRIu64 " other=%" PRIu64
           " retries=%" PRIu64 " reattaches=%" PRIu64 " forced_reuse=%" PRIu64
           " empty=%" PRIu64 "\n",
           atomic_load(&st.reads), atomic_load(&st.torn), atomic_load(&st.fast),
           atomic_load(&st.fast_torn), atomic_load(&st.eagain), atomic_load(&st.stale),
           atomic_load(&st.corrupt), atomic_load(&st.other), vs.retries, vs.reattaches,
           vs.forced_reuse, atomic_load(&st.empty));
    fflush(stdout);
    netelect_view_close(v);
    return 0;
}

/* ------------------------------------------------------------ driver */

static const char *g_self_exe;
static char g_name[128];
static unsigned g_slots = 3;

static pid_t spawn(const char *exe, char *const argv[], int out_fd, const char *crash)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (out_fd >= 0)
            dup2(out_fd, 1);
        if (crash)
            setenv("NETELECT_CRASH_AT", crash, 1);
        else
            unsetenv("NETELECT_CRASH_AT");
        execv(exe, argv);
        _exit(127);
    }
    return pid;
}

static char g_period_arg[16] = "0";

static pid_t spawn_writer(const char *crash)
{
    char slots[16];
    snprintf(slots, sizeof slots, "%u", g_slots);
    char role[] = "writer";
    char *argv[] = {(char *)g_self_exe, role, g_name, slots, g_period_arg, NULL};
    return spawn(g_self_exe, argv, -1, crash);
}

struct reader_proc {
    pid_t pid;
    int fd; /* its stdout */
};

static struct reader_proc spawn_reader(const char *exe, int threads, double secs)
{
    int p[2];
    struct reader_proc r = {-1, -1};
    if (pipe(p))
        return r;
    char th[16], s[32];
    snprintf(th, sizeof th, "%d", threads);
    snprintf(s, sizeof s, "%.3f", secs);
    char role[] = "reader";
    char *argv[] = {(char *)exe, role, g_name, th, s, g_period_arg, NULL};
    r.pid = spawn(exe, argv, p[1], NULL);
    close(p[1]);
    r.fd = p[0];
    return r;
}

static void cleanup_files(void)
{
    char p[300];
    static const char *const sfx[] = {"", ".lock", ".readers"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "/dev/shm/%s%s", g_name, sfx[i]);
        unlink(p);
    }
}

struct totals {
    uint64_t reads, torn, fast, fast_torn, eagain, stale, corrupt, other, retries, reattaches,
        forced, empty;
};

/* The reader's report, "reads=N torn=N ...": every key in order, each with a
 * whole decimal number (strtoull, checked: sscanf cannot report overflow). */
static bool parse_report(const char *s, const char *const *keys, uint64_t *const *vals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const size_t kl = strlen(keys[i]);
        while (*s == ' ')
            s++;
        if (strncmp(s, keys[i], kl) || s[kl] != '=' || s[kl + 1] < '0' || s[kl + 1] > '9')
            return false;
        char *end;
        errno = 0;
        const unsigned long long v = strtoull(s + kl + 1, &end, 10);
        if (errno || (*end && *end != ' ' && *end != '\n'))
            return false;
        *vals[i] = v;
        s = end;
    }
    return true;
}

static bool collect(struct reader_proc *r, struct totals *t, const char *label)
{
    char buf[512] = {0};
    ssize_t n = 0, k;
    while (n < (ssize_t)sizeof buf - 1 && (k = read(r->fd, buf + n, sizeof buf - 1 - (size_t)n)) > 0)
        n += k;
    close(r->fd);
    int st = 0;
    waitpid(r->pid, &st, 0);
    struct totals x = {0};
    static const char *const keys[] = {"reads", "torn", "fast", "fast_torn", "eagain", "stale",
                                       "corrupt", "other", "retries", "reattaches",
                                       "forced_reuse", "empty"};
    uint64_t *const vals[] = {&x.reads, &x.torn, &x.fast, &x.fast_torn, &x.eagain, &x.stale,
                              &x.corrupt, &x.other, &x.retries, &x.reattaches, &x.forced,
                              &x.empty};
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
        !parse_report(buf, keys, vals, sizeof keys / sizeof keys[0])) {
        fprintf(stderr, "%s: pid %d exit status %#x, output '%s'\n", label, (int)r->pid, st, buf);
        return false;
    }
    fprintf(stderr, "%s: %s", label, buf);
    t->reads += x.reads, t->torn += x.torn, t->fast += x.fast, t->fast_torn += x.fast_torn;
    t->eagain += x.eagain, t->stale += x.stale, t->corrupt += x.corrupt, t->other += x.other;
    t->retries += x.retries, t->reattaches += x.reattaches, t->empty += x.empty;
    if (x.forced > t->forced)
        t->forced = x.forced;
    return true;
}

static int role_drive(int argc, char **argv)
{
    double seconds = NETELECT_DEFAULT_TORTURE_SECONDS;
    int nreaders = 3, threads = 2;
    const char *reader_exe = g_self_exe;
    bool expect_torn = false, chaos = true;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = test_arg_d(argv[++i], 0, 86400, "torture: --seconds");
        else if (!strcmp(argv[i], "--readers") && i + 1 < argc)
            nreaders = (int)test_arg_ll(argv[++i], 0, 64, "torture: --readers");
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (int)test_arg_ll(argv[++i], 1, 64, "torture: --threads");
        else if (!strcmp(argv[i], "--slots") && i + 1 < argc)
            g_slots = (unsigned)test_arg_ll(argv[++i], 1, 64, "torture: --slots");
        else if (!strcmp(argv[i], "--reader-exe") && i + 1 < argc)
            reader_exe = argv[++i];
        else if (!strcmp(argv[i], "--expect-torn"))
            expect_torn = true;
        else if (!strcmp(argv[i], "--no-chaos"))
            chaos = false;
        else if (!strcmp(argv[i], "--delta") && i + 1 < argc)
            g_period = (unsigned)test_arg_ll(argv[++i], 1, NN, "torture: --delta");
        else {
            fprintf(stderr, "torture: unknown option %s\n", argv[i]);
            return 1;
        }
    }
    if (access("/dev/shm", W_OK) != 0)
        return 77;
    if (nreaders < 1 || nreaders > 8)
        nreaders = 3;
    snprintf(g_name, sizeof g_name, "netelect-torture-%d", (int)getpid());
    cleanup_files();
    signal(SIGPIPE, SIG_IGN);

    uint64_t seed = now_ns();
    snprintf(g_period_arg, sizeof g_period_arg, "%u", g_period);
    fprintf(stderr, "torture: %.1f s, %d readers x %d threads, K=%u, %s%s, seed %" PRIu64 "%s%s\n",
            seconds, nreaders, threads, g_slots,
            g_period ? "delta publishes, P=" : "full publishes", g_period ? g_period_arg : "", seed,
            chaos ? ", chaos" : "",
            expect_torn ? ", NEGATIVE CONTROL (expects torn reads)" : "");

    pid_t writer = spawn_writer(NULL);
    bool writer_armed = false; /* started with a crash point */
    /* Wait for the first segment so readers attach at once. */
    char path[300];
    snprintf(path, sizeof path, "/dev/shm/%s", g_name);
    for (int i = 0; i < 500 && access(path, R_OK) != 0; i++)
        sleep_ms(10);

    /* Two writers at once, deterministically once (chaos repeats it): the
     * first one is alive and unarmed, so the second must be refused. */
    unsigned refused = 0, second_ok = 0;
    {
        char slots[16], role[] = "writer2";
        snprintf(slots, sizeof slots, "%u", g_slots);
        char *av[] = {(char *)g_self_exe, role, g_name, slots, NULL};
        int st = 0;
        pid_t p = spawn(g_self_exe, av, -1, NULL);
        waitpid(p, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
            refused++;
        else
            second_ok++;
    }

    struct reader_proc rd[9];
    for (int i = 0; i < nreaders; i++)
        rd[i] = spawn_reader(reader_exe, threads, seconds);
    /* The victim: killed and respawned during the run. */
    struct reader_proc victim = {-1, -1};

    const uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
    unsigned restarts = 0, self_crashes = 0, kills = 0, terms = 0, stops = 0, rstops = 0,
             victims = 0;
    static const char *const points[] = {"after_seq_odd",  "mid_payload",   "after_seq_even",
                                         "before_current", "after_current", "mid_heartbeat"};
    uint64_t x = seed;
    while (chaos && now_ns() + 1500000000u < end) {
        x = mix64(x + 1);
        sleep_ms(150 + (unsigned)(x % 350));
        /* A writer that killed itself at its crash point gets replaced. */
        int st;
        if (waitpid(writer, &st, WNOHANG) == writer) {
            if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
                self_crashes++;
            writer = -1;
        }
        const unsigned action = (unsigned)(x >> 20) % 8;
        if (writer < 0 || action == 0 || action == 1) {
            if (writer > 0) {
                int sig = action == 0 ? SIGKILL : SIGTERM;
                kill(writer, sig);
                waitpid(writer, NULL, 0);
                sig == SIGKILL ? kills++ : terms++;
            }
            /* Half the restarts are armed to die at an injected point. */
            char crash[64];
            writer_armed = (x >> 33) & 1;
            snprintf(crash, sizeof crash, "%s:%u", points[(x >> 40) % 6],
                     1 + (unsigned)((x >> 48) % 300));
            writer = spawn_writer(writer_armed ? crash : NULL);
            restarts++;
        } else if (action == 2 && !writer_armed) {
            /* Two writers at once: the second must be refused. */
            char slots[16];
            snprintf(slots, sizeof slots, "%u", g_slots);
            char role[] = "writer2";
            char *av[] = {(char *)g_self_exe, role, g_name, slots, NULL};
            pid_t p = spawn(g_self_exe, av, -1, NULL);
            waitpid(p, &st, 0);
            if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
                refused++;
            else if (waitpid(writer, NULL, WNOHANG) == 0)
                second_ok++; /* our writer is alive: a second one got in */
        } else if (action == 3) {
            kill(writer, SIGSTOP); /* heartbeat stops; readers keep going */
            sleep_ms(400);
            kill(writer, SIGCONT);
            stops++;
        } else if (action == 4) {
            int i = (int)((x >> 24) % (unsigned)nreaders);
            kill(rd[i].pid, SIGSTOP); /* a stuck registered reader */
            sleep_ms(200);
            kill(rd[i].pid, SIGCONT);
            rstops++;
        } else if (action == 5) {
            if (victim.pid > 0) {
                kill(victim.pid, SIGKILL);
                waitpid(victim.pid, NULL, 0);
                close(victim.fd);
                victims++;
            }
            victim = spawn_reader(reader_exe, 1, 30);
        }
    }
    if (!chaos)
        sleep_ms((unsigned)(seconds * 1000));

    struct totals t = {0};
    bool ok = true;
    for (int i = 0; i < nreaders; i++) {
        char label[32];
        snprintf(label, sizeof label, "reader %d", i);
        ok &= collect(&rd[i], &t, label);
    }
    if (victim.pid > 0) {
        kill(victim.pid, SIGKILL);
        waitpid(victim.pid, NULL, 0);
        close(victim.fd);
    }
    if (writer > 0) {
        kill(writer, SIGTERM);
        waitpid(writer, NULL, 0);
    }
    cleanup_files();

    fprintf(stderr,
            "torture: reads %" PRIu64 " (+%" PRIu64 " elections), torn_accepted %" PRIu64
            " (+%" PRIu64 "), gave-up %" PRIu64 ", stale %" PRIu64 ", corrupt %" PRIu64
            ", other %" PRIu64 ", retries %" PRIu64 ", reattaches %" PRIu64
            ", forced_reuse %" PRIu64 ", empty first versions %" PRIu64 "\n",
            t.reads, t.fast, t.torn, t.fast_torn, t.eagain, t.stale, t.corrupt, t.other, t.retries,
            t.reattaches, t.forced, t.empty);
    fprintf(stderr,
            "torture: writer restarts %u (SIGKILL %u, SIGTERM %u, self-crash at injected points "
            "%u), writer SIGSTOPs %u, second writer refused %u / admitted %u, reader SIGSTOPs "
            "%u, victim readers killed %u\n",
            restarts, kills, terms, self_crashes, stops, refused, second_ok, rstops, victims);

    if (!ok || t.reads == 0) {
        fprintf(stderr, "torture: FAIL (readers did not report or read nothing)\n");
        return 1;
    }
    const uint64_t torn = t.torn + t.fast_torn;
    if (expect_torn) {
        if (torn == 0) {
            fprintf(stderr, "torture: FAIL: validation compiled out yet no torn read was seen; "
                            "the oracle cannot detect tearing\n");
            return 1;
        }
        fprintf(stderr, "torture: PASS (negative control caught %" PRIu64 " torn reads)\n", torn);
        return 0;
    }
    /* Readers fail static for 30 s, far longer than any outage the chaos
     * causes: a stale answer here is a liveness bug. */
    if (torn || t.corrupt || t.other || t.stale || second_ok) {
        fprintf(stderr, "torture: FAIL\n");
        return 1;
    }
    if (chaos && restarts && !t.reattaches) {
        fprintf(stderr, "torture: FAIL: the writer restarted but no reader reattached\n");
        return 1;
    }
    fprintf(stderr, "torture: PASS\n");
    return 0;
}

int main(int argc, char **argv)
{
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    g_self_exe = n > 0 ? (self[n] = 0, self) : argv[0];
    if (argc >= 2 && !strcmp(argv[1], "drive"))
        return role_drive(argc, argv);
    if (argc == 5 && !strcmp(argv[1], "writer")) {
        g_period = (unsigned)test_arg_ll(argv[4], 0, NN, "torture writer: PERIOD");
        return role_writer(argv[2], (unsigned)test_arg_ll(argv[3], 1, 64, "torture writer: SLOTS"), false);
    }
    if (argc == 4 && !strcmp(argv[1], "writer2"))
        return role_writer(argv[2], (unsigned)test_arg_ll(argv[3], 1, 64, "torture writer2: SLOTS"), true);
    if (argc == 6 && !strcmp(argv[1], "reader")) {
        g_period = (unsigned)test_arg_ll(argv[5], 0, NN, "torture reader: PERIOD");
        return role_reader(argv[2], (int)test_arg_ll(argv[3], 1, 64, "torture reader: THREADS"),
                           test_arg_d(argv[4], 0, 86400, "torture reader: SECONDS"));
    }
    fprintf(stderr, "usage: %s drive [--seconds S] [--readers P] [--threads T] [--slots K]\n"
                    "       [--reader-exe PATH] [--expect-torn] [--no-chaos] [--delta P]\n",
            argv[0]);
    return 1;
}
