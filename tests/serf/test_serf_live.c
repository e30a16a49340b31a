/* SPDX-License-Identifier: MIT */
/*
 * Integration test against real Serf agents (Debian's /usr/bin/serf) on
 * loopback: four agents, the client on n1's RPC port.  Checks that the
 * member view converges, that RTT estimates equal `serf rtt`, that kill -9
 * gives member-failed, a graceful leave member-leave, and that the client
 * reconnects and re-snapshots when its own agent is killed and restarted.
 *
 * A plain program (exit 0 pass, 1 fail, 77 skip) rather than a Criterion
 * test, since it forks long-lived children (see toolchain-notes.md).  Every
 * child dies with this process (PR_SET_PDEATHSIG) and is killed on every
 * exit path; every wait is bounded; alarm() caps the whole run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/serf/serf.h"

#define SERF_BIN "/usr/bin/serf"
#define S 1000000000ull
#define MS 1000000ull
/* n1 carries the client, n2 leaves, n3 is killed, n4 is a witness that
 * keeps three members alive for each step (a lone Serf agent whose peers
 * are all gone raises its Lifeguard awareness and detects failures slowly). */
#define NAGENTS 4

static pid_t pids[NAGENTS];
static int base_port;
static char tmpdir[64];
static const uint64_t ids[NAGENTS] = {0x11, 22, 0x33, 44};
static const char *const nid_tags[NAGENTS] = {"0x11", "22", "0X33", "44"};
static const char *const chans[NAGENTS] = {"chA,chB", "chA", "chB,chC", "chC"};

static void kill_all(void)
{
    for (int i = 0; i < NAGENTS; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
    }
}

static void on_signal(int sig)
{
    for (int i = 0; i < NAGENTS; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGKILL);
    _exit(sig == SIGALRM ? 1 : 128 + sig);
}

static void cleanup_dir(void)
{
    if (tmpdir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

static _Noreturn void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "FAIL: ");
    vfprintf(stdout, fmt, ap);
    fprintf(stdout, "\n");
    va_end(ap);
    kill_all();
    if (tmpdir[0]) {
        /* Show the agents' logs to explain the failure. */
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "tail -n 15 %s/agent*.log", tmpdir);
        fflush(stdout);
        if (system(cmd) != 0)
            fprintf(stderr, "no agent logs\n");
    }
    cleanup_dir();
    exit(1);
}

static uint64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

static int bind_port(int type, int port)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* Serf binds TCP+UDP on the gossip port and TCP on the RPC port. */
static int ports_free(int base)
{
    for (int i = 1; i <= NAGENTS; i++)
        if (!bind_port(SOCK_STREAM, base + i) || !bind_port(SOCK_DGRAM, base + i) ||
            !bind_port(SOCK_STREAM, base + 10 + i))
            return 0;
    return 1;
}

static int rpc_port(int i)
{
    return base_port + 11 + i;
}

static void start_agent(int i, int join)
{
    char node[32], bind[40], rpc[40], nid[40], ch[64], joinarg[40], logf[96];
    snprintf(node, sizeof(node), "-node=n%d", i + 1);
    snprintf(bind, sizeof(bind), "-bind=127.0.0.1:%d", base_port + 1 + i);
    snprintf(rpc, sizeof(rpc), "-rpc-addr=127.0.0.1:%d", rpc_port(i));
    snprintf(nid, sizeof(nid), "nid=%s", nid_tags[i]);
    snprintf(ch, sizeof(ch), "netelect-channels=%s", chans[i]);
    snprintf(joinarg, sizeof(joinarg), "-join=127.0.0.1:%d", base_port + 1);
    snprintf(logf, sizeof(logf), "%s/agent%d.log", tmpdir, i + 1);
    pid_t p = fork();
    if (p < 0)
        fail("fork: %s", strerror(errno));
    if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (join)
            execl(SERF_BIN, "serf", "agent", node, bind, rpc, "-profile=local", "-tag", nid,
                  "-tag", ch, joinarg, (char *)NULL);
        else
            execl(SERF_BIN, "serf", "agent", node, bind, rpc, "-profile=local", "-tag", nid,
                  "-tag", ch, (char *)NULL);
        _exit(127);
    }
    pids[i] = p;
}

static int wait_rpc(int i, uint64_t timeout)
{
    uint64_t end = mono() + timeout;
    while (mono() < end) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rpc_port(i)),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok)
            return 1;
        if (waitpid(pids[i], NULL, WNOHANG) == pids[i]) {
            pids[i] = 0;
            return 0;
        }
        usleep(50000);
    }
    return 0;
}

/* Runs a serf CLI command with a deadline; its stdout goes to `out`. */
static int run(char *out, size_t cap, const char *const argv[])
{
    int pfd[2];
    if (pipe(pfd) < 0)
        return -1;
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(SERF_BIN, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t got = 0;
    uint64_t end = mono() + 5 * S;
    for (;;) {
        struct pollfd q = {.fd = pfd[0], .events = POLLIN};
        if (mono() >= end || poll(&q, 1, 100) < 0)
            break;
        if (!q.revents)
            continue;
        ssize_t n = read(pfd[0], out + got, cap - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == cap - 1)
            break;
    }
    out[got] = '\0';
    close(pfd[0]);
    if (mono() >= end)
        kill(p, SIGKILL);
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- what the client reported ---- */

struct seen {
    int present;
    enum netelect_serf_event ev;
    uint64_t ev_at;
    uint64_t id;
    int has_id;
    char channels[64];
    enum netelect_serf_status status;
    uint64_t rtt, err, rtt_n;
};

static struct {
    struct seen n[NAGENTS];
    int up, downs, ups;
    int last_err;
    uint64_t up_at, down_at;
    uint64_t snapshots_since_up;
} st;

static int node_index(const char *name)
{
    if (name[0] == 'n' && name[1] >= '1' && name[1] < '1' + NAGENTS && name[2] == '\0')
        return name[1] - '1';
    return -1;
}

static void on_member(void *ctx, enum netelect_serf_event ev, const struct netelect_serf_member *m)
{
    (void)ctx;
    int i = node_index(m->name);
    if (i < 0)
        return;
    struct seen *x = &st.n[i];
    x->present = ev != NETELECT_SERF_EV_REAP;
    x->ev = ev;
    x->ev_at = mono();
    x->id = m->node_id;
    x->has_id = m->has_id;
    snprintf(x->channels, sizeof(x->channels), "%s", m->channels ? m->channels : "");
    x->status = m->status;
    if (ev == NETELECT_SERF_EV_SNAPSHOT)
        st.snapshots_since_up++;
}

static void on_coord(void *ctx, uint64_t id, uint64_t rtt, uint64_t err)
{
    (void)ctx;
    for (int i = 0; i < NAGENTS; i++) {
        if (ids[i] == id) {
            st.n[i].rtt = rtt;
            st.n[i].err = err;
            st.n[i].rtt_n++;
        }
    }
}

static void on_conn(void *ctx, int up, int err)
{
    (void)ctx;
    st.up = up;
    st.last_err = err;
    if (up) {
        st.ups++;
        st.up_at = mono();
        st.snapshots_since_up = 0;
    } else {
        st.downs++;
        st.down_at = mono();
    }
}

static struct netelect_serf *cl;

/* Runs the client's event loop until done() or the timeout. */
static int drive(uint64_t timeout, int (*done)(void))
{
    uint64_t end = mono() + timeout;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int watched = -1;
    uint32_t watched_ev = 0;
    int ok = 0;
    while (!(ok = done()) && mono() < end) {
        int fd = agent_serf_fd(cl);
        uint32_t ev = agent_serf_events(cl);
        if (fd != watched || ev != watched_ev) {
            if (watched >= 0)
                epoll_ctl(ep, EPOLL_CTL_DEL, watched, NULL);
            watched = -1;
            if (fd >= 0) {
                struct epoll_event e = {.events = ev, .data.fd = fd};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == 0)
                    watched = fd;
            }
            watched_ev = ev;
        }
        uint64_t now = mono(), dl = agent_serf_next_deadline(cl);
        int to = dl <= now ? 0 : (int)((dl - now) / MS + 1);
        if (to > 50)
            to = 50;
        struct epoll_event got;
        int n = epoll_wait(ep, &got, 1, to);
        if (n == 1) {
            agent_serf_handle(cl, got.events, mono());
            /* The fd may have been closed (and its number reused). */
            if (agent_serf_fd(cl) != watched) {
                epoll_ctl(ep, EPOLL_CTL_DEL, watched, NULL);
                watched = -1;
            }
        }
        agent_serf_tick(cl, mono());
    }
    close(ep);
    return ok;
}

static int converged(void)
{
    if (!st.up)
        return 0;
    for (int i = 0; i < NAGENTS; i++) {
        const struct seen *x = &st.n[i];
        if (!x->present || x->status != NETELECT_SERF_ALIVE || !x->has_id || x->id != ids[i] ||
            strcmp(x->channels, chans[i]) != 0)
            return 0;
    }
    return 1;
}

/* Serf starts every coordinate at the origin with Height 10 us; wait until
 * probes have moved both estimates away from 2 x 10 us. */
static int coords_moved(void)
{
    return st.n[1].rtt_n && st.n[2].rtt_n && st.n[1].rtt != 20000 && st.n[2].rtt != 20000;
}

static uint64_t want_rtt_n;
static int target;
static int fresh_coord(void)
{
    return st.n[target].rtt_n >= want_rtt_n;
}

static int never(void)
{
    return 0;
}

static int failed3(void)
{
    return st.n[2].ev == NETELECT_SERF_EV_FAILED;
}
/* The status poll may report n2 `leaving` (EV_LEAVE) between its leave
 * intent and `left`: that is not the end of the leave yet. */
static int left_or_failed2(void)
{
    return (st.n[1].ev == NETELECT_SERF_EV_LEAVE && st.n[1].status != NETELECT_SERF_LEAVING) ||
           st.n[1].ev == NETELECT_SERF_EV_FAILED;
}
static int alive2(void)
{
    return st.n[1].present && st.n[1].status == NETELECT_SERF_ALIVE;
}
static int down(void)
{
    return !st.up && st.downs > 0;
}
static int resnapshot(void)
{
    return st.up && st.ups >= 2 && st.n[0].present && st.n[0].ev == NETELECT_SERF_EV_SNAPSHOT &&
           st.n[0].ev_at >= st.up_at;
}

/* `serf rtt` prints "Estimated n1 <-> n2 rtt: 0.474 ms". */
static double serf_rtt_ms(int a, int b)
{
    char rpc[40], na[16], nb[16], out[256];
    snprintf(rpc, sizeof(rpc), "-rpc-addr=127.0.0.1:%d", rpc_port(0));
    snprintf(na, sizeof(na), "n%d", a + 1);
    snprintf(nb, sizeof(nb), "n%d", b + 1);
    const char *argv[] = {"serf", "rtt", rpc, na, nb, NULL};
    if (run(out, sizeof(out), argv) != 0)
        return -1;
    const char *p = strstr(out, "rtt: ");
    if (!p)
        return -1;
    char *end;
    errno = 0;
    const double ms = strtod(p + 5, &end);
    if (end == p + 5 || errno || strncmp(end, " ms", 3))
        return -1;
    return ms;
}

/* Whether `serf members` on agent i lists `name` with `status`. */
static int serf_says(int i, const char *name, const char *status)
{
    char rpc[40], out[4096];
    snprintf(rpc, sizeof(rpc), "-rpc-addr=127.0.0.1:%d", rpc_port(i));
    const char *argv[] = {"serf", "members", rpc, NULL};
    if (run(out, sizeof(out), argv) != 0)
        return 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char n[64], addr[64], stat[32];
        if (sscanf(line, "%63s %63s %31s", n, addr, stat) == 3 && strcmp(n, name) == 0)
            return strcmp(stat, status) == 0;
    }
    return 0;
}

static int rtt_matches(int i, double *client_ms, double *serf_ms)
{
    /* Read both close together: the client's next fresh estimate, the CLI,
     * then the client's next again; estimates move between probes. */
    for (int attempt = 0; attempt < 8; attempt++) {
        target = i;
        want_rtt_n = st.n[i].rtt_n + 1;
        if (!drive(2 * S, fresh_coord))
            return 0;
        double before = (double)st.n[i].rtt / 1e6;
        double cli = serf_rtt_ms(0, i);
        want_rtt_n = st.n[i].rtt_n + 1;
        if (!drive(2 * S, fresh_coord))
            return 0;
        double after = (double)st.n[i].rtt / 1e6;
        /* 1 %, plus half a unit of the CLI's 3-decimal rounding. */
        double tol = cli * 0.01 + 0.0005;
        *serf_ms = cli;
        if (cli > 0 && (fabs(before - cli) <= tol || fabs(after - cli) <= tol)) {
            *client_ms = fabs(before - cli) <= tol ? before : after;
            return 1;
        }
        *client_ms = after;
        printf("  n1-n%d attempt %d: client %.6f/%.6f ms, serf rtt %.3f ms (moving)\n", i + 1,
               attempt + 1, before, after, cli);
    }
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (access(SERF_BIN, X_OK) != 0) {
        printf("SKIP: %s not installed\n", SERF_BIN);
        return 77;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGALRM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    alarm(55);
    atexit(kill_all);
    uint64_t t_start = mono();

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/netelect-serf-XXXXXX");
    if (!mkdtemp(tmpdir))
        fail("mkdtemp: %s", strerror(errno));
    base_port = 0;
    for (int k = 0; k < 40; k++) {
        int b = 30000 + (int)((getpid() + k * 7919) % 1500) * 20;
        if (ports_free(b)) {
            base_port = b;
            break;
        }
    }
    if (!base_port)
        fail("no free port range");

    start_agent(0, 0);
    if (!wait_rpc(0, 5 * S))
        fail("n1 did not start");
    for (int i = 1; i < NAGENTS; i++)
        start_agent(i, 1);
    for (int i = 1; i < NAGENTS; i++)
        if (!wait_rpc(i, 5 * S))
            fail("n%d did not start", i + 1);
    printf("agents up on 127.0.0.1:%d-%d (rpc %d-%d) after %.2f s\n", base_port + 1,
           base_port + NAGENTS, rpc_port(0), rpc_port(NAGENTS - 1),
           (double)(mono() - t_start) / 1e9);

    char rpc[32];
    snprintf(rpc, sizeof(rpc), "127.0.0.1:%d", rpc_port(0));
    struct netelect_serf_config cfg = {
        .rpc_addr = rpc, .coord_period_ns = 200 * MS,
        .backoff_min_ns = 50 * MS, .backoff_max_ns = 400 * MS,
    };
    struct netelect_serf_callbacks cb = {.member = on_member, .coord = on_coord,
                                         .connection = on_conn};
    if (agent_serf_new(&cfg, &cb, NULL, &cl) != 0)
        fail("agent_serf_new");

    /* 1. The view converges from Serf alone. */
    uint64_t t0 = mono();
    if (!drive(10 * S, converged))
        fail("view did not converge (up=%d)", st.up);
    printf("converged: %d members with ids and channels in %.3f s\n", NAGENTS,
           (double)(mono() - t0) / 1e9);

    /* 2. Estimates equal `serf rtt` for the same pairs. */
    if (!drive(8 * S, coords_moved))
        printf("note: coordinates still at the origin after 8 s\n");
    for (int i = 1; i <= 2; i++) {
        double c = 0, sv = 0;
        if (!rtt_matches(i, &c, &sv))
            fail("n1-n%d: client %.6f ms vs serf rtt %.3f ms (not within 1%%)", i + 1, c, sv);
        printf("rtt n1-n%d: client %.6f ms, serf rtt %.3f ms (err %.6f ms)\n", i + 1, c, sv,
               (double)st.n[i].err / 1e6);
    }

    /* A figure for docs/serf.md: how many get-coordinate round trips one
     * Serf agent answers per second, with the client polling back to back
     * (a 1 ns period) from a second connection. */
    {
        struct netelect_serf_config fast = cfg;
        fast.coord_period_ns = 1;
        struct netelect_serf_callbacks none = {0};
        struct netelect_serf *main_cl = cl;
        if (agent_serf_new(&fast, &none, NULL, &cl) != 0)
            fail("agent_serf_new (rate)");
        drive(300 * MS, never);
        struct netelect_serf_stats a, b;
        agent_serf_stats(cl, &a);
        uint64_t t = mono();
        drive(S, never);
        agent_serf_stats(cl, &b);
        printf("get-coordinate throughput: %.0f requests/s (cycles of %d pipelined requests)\n",
               (double)(b.coord_polls - a.coord_polls) * 1e9 / (double)(mono() - t), NAGENTS);
        agent_serf_free(cl);
        cl = main_cl;
    }

    /* 3. A graceful leave of n2: member-leave.  Serf's leave is best effort:
     * now and then (about 1 run in 9 here) n1 never receives n2's leave
     * intent and Serf itself declares n2 failed.  That is Serf's view, not
     * the client's error, so it is checked against `serf members` and the
     * leave is retried with a fresh n2. */
    char rpc2[40];
    snprintf(rpc2, sizeof(rpc2), "-rpc-addr=127.0.0.1:%d", rpc_port(1));
    const char *leave[] = {"serf", "leave", rpc2, NULL};
    char out[2048];
    for (int attempt = 0;; attempt++) {
        uint64_t t_leave = mono();
        int rc = run(out, sizeof(out), leave);
        if (!drive(15 * S, left_or_failed2))
            fail("neither member-leave nor member-failed for n2 (serf leave exited %d)", rc);
        waitpid(pids[1], NULL, 0); /* it shuts down after leaving */
        pids[1] = 0;
        if (st.n[1].ev == NETELECT_SERF_EV_LEAVE) {
            printf("serf leave n2 -> left (status poll or member-leave): %.3f s (status %d)\n",
                   (double)(st.n[1].ev_at - t_leave) / 1e9, st.n[1].status);
            if (st.n[1].status != NETELECT_SERF_LEFT)
                fail("member-leave for n2 with status %d", st.n[1].status);
            break;
        }
        if (attempt == 2 || !serf_says(0, "n2", "failed"))
            fail("member-failed instead of member-leave for n2 (attempt %d)", attempt + 1);
        printf("note: serf n1 itself saw n2's leave as a failure after %.3f s; retrying\n",
               (double)(st.n[1].ev_at - t_leave) / 1e9);
        start_agent(1, 1);
        if (!wait_rpc(1, 5 * S) || !drive(10 * S, alive2))
            fail("n2 did not rejoin");
    }

    /* 4. kill -9 n3: member-failed, as fast as Serf itself detects it. */
    uint64_t t_kill = mono();
    kill(pids[2], SIGKILL);
    waitpid(pids[2], NULL, 0);
    pids[2] = 0;
    /* Lifeguard stretches the suspicion timeout when few members can
     * confirm it: with -profile=local up to 6 x 3 x 1 s = 18 s for the two
     * left here (seen in a clean-room run: n3 still suspect after 15 s). */
    if (!drive(30 * S, failed3))
        fail("no member-failed for n3 within 30 s");
    printf("kill -9 n3 -> failed (status poll or member-failed): %.3f s (status %d)\n",
           (double)(st.n[2].ev_at - t_kill) / 1e9, st.n[2].status);
    if (st.n[2].status != NETELECT_SERF_FAILED || st.n[2].id != ids[2])
        fail("member-failed for n3 with status %d id %" PRIu64, st.n[2].status, st.n[2].id);

    /* 5. The client's own agent dies and comes back: reconnect, re-snapshot. */
    int downs = st.downs;
    uint64_t t_k1 = mono();
    kill(pids[0], SIGKILL);
    waitpid(pids[0], NULL, 0);
    pids[0] = 0;
    if (!drive(5 * S, down) || st.downs != downs + 1)
        fail("connection loss not reported");
    printf("kill -9 n1 -> connection(0, %d): %.3f s\n", st.last_err,
           (double)(st.down_at - t_k1) / 1e9);
    uint64_t t_r = mono();
    start_agent(0, 0);
    if (!drive(10 * S, resnapshot))
        fail("no reconnect + snapshot after restarting n1");
    printf("n1 restarted -> connection(1) + snapshot: %.3f s\n", (double)(mono() - t_r) / 1e9);
    /* The fresh n1 knows nobody else: n2 and n3 were reaped by the snapshot. */
    if (st.n[1].present || st.n[2].present || st.n[3].present)
        fail("members the restarted agent does not list were not reaped");

    struct netelect_serf_stats s;
    agent_serf_stats(cl, &s);
    printf("stats: connects %" PRIu64 " disconnects %" PRIu64 " malformed %" PRIu64
           " events %" PRIu64 " coord_polls %" PRIu64 "\n",
           s.connects, s.disconnects, s.malformed, s.events, s.coord_polls);
    if (s.malformed != 0)
        fail("malformed replies from a real Serf");
    agent_serf_free(cl);
    kill_all();
    cleanup_dir();
    printf("PASS in %.1f s\n", (double)(mono() - t_start) / 1e9);
    return 0;
}
