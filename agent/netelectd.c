/* SPDX-License-Identifier: MIT */
/*
 * netelectd: measures RTT and health to this host's peers and publishes the
 * replica view into /dev/shm/<segment> for libnetelect readers.
 *
 * One thread, one epoll loop:
 *   - the UDP socket (PINGs to answer, PONGs to time),
 *   - a timerfd set to the probe heap's earliest deadline,
 *   - a periodic heartbeat timerfd (netelect__writer_heartbeat, whatever happens),
 *   - a one-shot publish timerfd (coalescing: at most one publish per
 *     publish_min_interval, so any change is visible within that interval),
 *   - a signalfd (SIGINT/SIGTERM: exit cleanly; SIGHUP: reload),
 *   - the control socket and its clients, and the Serf RPC client if enabled.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "agent/agent.h"
#include "agent/log.h"
#include "agent/metrics.h"
#if NETELECT_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif
#if NETELECT_HAVE_SERF
#include "agent/serf/serf.h"
#endif

const char *const netelect__drop_names[DROP_N] = {
    [DROP_RATE] = "rate_limited",     [DROP_TRUNC] = "truncated",
    [DROP_OVERSIZE] = "oversized",    [DROP_GARBAGE] = "garbage",
    [DROP_VERSION] = "bad_version",   [DROP_AUTH] = "bad_mac",
    [DROP_FIELDS] = "bad_fields",     [DROP_NOT_FOR_US] = "not_for_us",
    [DROP_UNKNOWN_SENDER] = "unknown_sender", [DROP_REPLAY] = "replayed",
    [DROP_STALE_INC] = "stale_incarnation",   [DROP_STALE_PONG] = "stale_pong",
    [DROP_UNSOLICITED] = "unsolicited_pong", [DROP_RATE_PEER] = "rate_limited_peer",
};

uint64_t netelect__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void arm_abs(int tfd, uint64_t when_ns)
{
    struct itimerspec its = {0};
    if (when_ns) {
        its.it_value.tv_sec = (time_t)(when_ns / 1000000000u);
        its.it_value.tv_nsec = (long)(when_ns % 1000000000u);
    }
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        DIE("timerfd_settime: %s", strerror(errno));
}

static void drain_fd(int fd)
{
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
}

static void epoll_add(struct agent *a, int fd, uint32_t events, int tag)
{
    struct epoll_event ev = {.events = events, .data.u64 = EV_TAG(tag, 0)};
    if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        DIE("epoll_ctl(add %d): %s", tag, strerror(errno));
}

/* ---- publishing ------------------------------------------------------------------ */

static int cmp_wnode(const void *x, const void *y)
{
    const struct netelect_wnode *p = x, *q = y;
    return p->id < q->id ? -1 : p->id > q->id;
}

/* The agent's table in the writer's form (the arrays point into each other
 * and into a->chans: valid until the table changes). */
struct view_arrays {
    struct netelect_wnode *nodes;
    size_t n_nodes;
    struct netelect_wchan *chans;
    size_t n_chans;
    uint64_t *members;
    uint8_t *down; /* member_down of drained channels, or NULL */
};

/* Both the first version (at start-up, before the segment exists) and every
 * publish come from here, so the two can never disagree on what the table
 * means. */
static void view_build(struct agent *a, uint64_t now, struct view_arrays *v)
{
    size_t nn = 1 + a->n_nodes;
    struct netelect_wnode *nodes = malloc(nn * sizeof *nodes);
    struct netelect_wchan *chans = calloc(a->n_chans ? a->n_chans : 1, sizeof *chans);
    size_t total_members = 0;
    for (size_t i = 0; i < a->n_chans; i++)
        total_members += a->chans[i].n;
    uint64_t *members = malloc((total_members ? total_members : 1) * sizeof *members);
    if (!nodes || !chans || !members)
        DIE("out of memory building a view of %zu nodes", nn);
    /* Self is always at RTT 0 (it is the caller of its own elections) and
     * healthy unless drained: from every channel here, from some channels
     * through member_down below. */
    nodes[0] = (struct netelect_wnode){.id = a->self, .rtt_ns = 0, .rtt_raw_ns = 0,
                                       .last_heard_ns = now, .healthy = !a->drain_all,
                                       .source = NETELECT_SRC_PROBE};
    uint8_t *down = NULL;
    if (a->n_drained && !a->drain_all) {
        down = calloc(total_members ? total_members : 1, 1);
        if (!down)
            DIE("out of memory building a view of %zu members", total_members);
    }
    size_t k = 1;
    for (size_t i = 0; i < a->tab_cap; i++) {
        struct node *n = a->tab[i];
        if (!n)
            continue;
        n->pub = netelect__node_view(a, n);
        n->pub_valid = true;
        nodes[k++] = n->pub;
    }
    qsort(nodes, k, sizeof *nodes, cmp_wnode);
    size_t off = 0;
    for (size_t i = 0; i < a->n_chans; i++) {
        chans[i].name = a->chans[i].name;
        chans[i].members = members + off;
        chans[i].n_members = (uint32_t)a->chans[i].n;
        const struct member *me = down ? netelect__chan_member(&a->chans[i], a->self) : NULL;
        if (me && netelect__drained(a, a->chans[i].name)) {
            down[off + (size_t)(me - a->chans[i].m)] = 1;
            chans[i].member_down = down + off;
        }
        for (size_t j = 0; j < a->chans[i].n; j++)
            members[off++] = a->chans[i].m[j].id;
    }
    *v = (struct view_arrays){.nodes = nodes, .n_nodes = k, .chans = chans,
                              .n_chans = a->n_chans, .members = members, .down = down};
}

static void view_free(struct view_arrays *v)
{
    free(v->nodes);
    free(v->chans);
    free(v->members);
    free(v->down);
}

#define PUBLISH_LOG_NS UINT64_C(10000000000)

/* systemd (Type=notify, agent/README.md "systemd unit"): READY=1 once the
 * first full view is published, then STATUS= whenever its one-line summary
 * changes.  Without NOTIFY_SOCKET, sd_notify() does nothing. */
static void notify_published(const struct view_arrays *v, int r)
{
#if NETELECT_HAVE_SYSTEMD
    static bool ready;
    static char last[160];
    char st[160];
    size_t healthy = 0;
    for (size_t i = 0; i < v->n_nodes; i++)
        healthy += v->nodes[i].healthy != 0;
    if (r < 0)
        snprintf(st, sizeof st, "publishing fails: %s", strerror(-r));
    else
        snprintf(st, sizeof st, "publishing: %zu nodes (%zu healthy), %zu channels", v->n_nodes,
                 healthy, v->n_chans);
    if (!strcmp(st, last) && (ready || r < 0))
        return;
    snprintf(last, sizeof last, "%s", st);
    sd_notifyf(0, "%sSTATUS=%s", !ready && r >= 0 ? "READY=1\n" : "", st);
    ready = ready || r >= 0;
#else
    (void)v;
    (void)r;
#endif
}

static void publish(struct agent *a)
{
    uint64_t now = netelect__now_ns();
    struct view_arrays v;
    view_build(a, now, &v);
    /* A failing publish is retried every heartbeat: say so once, then at
     * most every PUBLISH_LOG_NS with the number of failures in between. */
    static uint64_t fail_logged_ns, fails_unlogged;
    int r = netelect__writer_publish(a->w, v.nodes, v.n_nodes, v.chans, v.n_chans);
    const unsigned fails = netelect__writer_failures(a->w);
    if (r < 0) {
        a->st.publish_err++;
        if (fails == NETELECT_WRITER_STALL_AFTER)
            LOG_E("publishing has failed %u times in a row (%s): the segment is marked "
                  "stalled, readers go fail-static and then get ESTALE until a publish succeeds",
                  fails, strerror(-r));
        else if (fails == 1 || now - fail_logged_ns >= PUBLISH_LOG_NS) {
            LOG_W("publishing the view (%zu nodes, %zu channels) failed: %s (%" PRIu64
                  " more failures since the last message)",
                  v.n_nodes, v.n_chans, strerror(-r), fails_unlogged);
            fail_logged_ns = now;
            fails_unlogged = 0;
        } else
            fails_unlogged++;
        /* keep it dirty: the next heartbeat retries */
        a->dirty_soft = true;
    } else {
        if (fail_logged_ns) {
            LOG_N("publishing works again; the segment is live");
            fail_logged_ns = 0;
            fails_unlogged = 0;
        }
        a->st.publishes++;
        uint64_t d = UINT64_MAX;
        if (a->dirty_hard && a->dirty_since_ns) {
            d = netelect__now_ns() - a->dirty_since_ns;
            a->st.pub_delay_last_ns = d;
            if (d > a->st.pub_delay_max_ns)
                a->st.pub_delay_max_ns = d;
        }
        netelect__metrics_published(a, netelect__now_ns() - now, d);
        a->dirty_hard = a->dirty_soft = false;
    }
    a->last_pub_ns = now;
    notify_published(&v, r);
    view_free(&v);
}

/* Publishes now, or arms the publish timer for the end of the coalescing
 * interval.  Called after every batch of events. */
static void maybe_publish(struct agent *a)
{
    if (!a->dirty_hard)
        return;
    uint64_t now = netelect__now_ns();
    uint64_t due = a->last_pub_ns + a->cfg.publish_min_interval_ns;
    if (!a->last_pub_ns || now >= due) {
        publish(a);
        if (a->pub_armed) {
            arm_abs(a->pub_tfd, 0);
            a->pub_armed = false;
        }
    } else if (!a->pub_armed) {
        arm_abs(a->pub_tfd, due);
        a->pub_armed = true;
    }
}

/* ---- UDP ------------------------------------------------------------------------- */

static void send_pkt(struct agent *a, struct node *n, const struct sockaddr *to, socklen_t tolen,
                     int type, uint64_t ack_seq, uint64_t ack_ts, uint64_t now)
{
    struct netelect_pkt p = {
        .version = NETELECT_PKT_VERSION, .type = (uint8_t)type, .sender = a->self,
        .receiver = n->id, .sender_inc = a->inc, .receiver_inc = n->peer_inc,
        .seq = ++n->tx_seq, .ts = now, .ack_seq = ack_seq, .ack_ts = ack_ts};
    uint8_t buf[NETELECT_PKT_LEN];
    if (type == NETELECT_PKT_PONG && !p.receiver_inc)
        return;
    if (netelect__pkt_encode(&p, a->key, buf) < 0)
        DIE("encoding a packet for %#llx failed", (unsigned long long)n->id);
    /* An IPv6 socket ([::]:port, dual-stack) reaches IPv4 peers through
     * v4-mapped addresses. */
    struct sockaddr_in6 mapped;
    // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): set by config or recvfrom
    if (to->sa_family == AF_INET && a->cfg.listen_addr.ss_family == AF_INET6) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)to;
        memset(&mapped, 0, sizeof mapped);
        mapped.sin6_family = AF_INET6;
        mapped.sin6_port = v4->sin_port;
        mapped.sin6_addr.s6_addr[10] = mapped.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&mapped.sin6_addr.s6_addr[12], &v4->sin_addr, 4);
        to = (const struct sockaddr *)&mapped;
        tolen = sizeof mapped;
    }
    if (sendto(a->udp, buf, sizeof buf, MSG_DONTWAIT, to, tolen) != (ssize_t)sizeof buf) {
        a->st.tx_err++;
        LOG_D("send to %#llx: %s", (unsigned long long)n->id, strerror(errno));
        return;
    }
    if (type == NETELECT_PKT_PING)
        a->st.tx_ping++;
    else
        a->st.tx_pong++;
}

static void health_changed(struct agent *a, struct node *n)
{
    a->st.health_changes++;
    char ab[80];
    const struct sockaddr *sa = (const struct sockaddr *)&n->addr;
    if (n->pr.healthy)
        LOGA_N(n->id, sa, NULL, "peer %#llx (%s) is healthy: rtt %.3f ms", (unsigned long long)n->id,
              netelect__fmt_addr((struct sockaddr *)&n->addr, ab, sizeof ab), n->pr.srtt_ns / 1e6);
    else
        LOGA_N(n->id, sa, NULL, "peer %#llx (%s) is unhealthy: %u probes missed in a row",
              (unsigned long long)n->id,
              netelect__fmt_addr((struct sockaddr *)&n->addr, ab, sizeof ab), n->pr.miss_run);
}

static void run_probes(struct agent *a)
{
    uint64_t now = netelect__now_ns();
    struct node *n;
    while ((n = netelect__heap_top(a)) && netelect__probe_next(&n->pr) <= now) {
        uint64_t missed = n->pr.missed;
        int f = netelect__probe_tick(&n->pr, &a->pp, now, n->tx_seq + 1);
        if (n->pr.missed != missed)
            LOG_D("probe of %#llx timed out (%u in a row)", (unsigned long long)n->id, n->pr.miss_run);
        if (f & NETELECT_PROBE_SEND)
            send_pkt(a, n, (struct sockaddr *)&n->addr, n->addrlen, NETELECT_PKT_PING, 0, 0, now);
        if (f & NETELECT_PROBE_HEALTH) {
            health_changed(a, n);
        }
        if (f)
            netelect__node_changed(a, n);
        netelect__heap_fix(a, n);
    }
    n = netelect__heap_top(a);
    arm_abs(a->probe_tfd, n ? netelect__probe_next(&n->pr) : 0);
}

static size_t addr_hash(const struct sockaddr_storage *ss, socklen_t len)
{
    uint64_t h = 1469598103934665603ull;
    const uint8_t *p = (const uint8_t *)ss;
    for (socklen_t i = 0; i < len; i++) /* the len bytes recvfrom() filled */
        h = (h ^ p[i]) * 1099511628211ull; // NOLINT(clang-analyzer-core.UndefinedBinaryOperatorResult)
    return (size_t)h;
}

static void drop(struct agent *a, enum drop_reason r, const struct sockaddr_storage *from)
{
    a->st.drop[r]++;
    if (netelect__log_enabled(NETELECT_LOG_DEBUG)) {
        char ab[80];
        LOG_D("dropped a packet from %s: %s", netelect__fmt_addr((const struct sockaddr *)from, ab, sizeof ab),
              netelect__drop_names[r]);
    }
}

/*
 * Probe packets that fail authentication (a peer configured with another
 * key, or forged packets) are logged, but rate-limited, since anyone who
 * can reach the port can send them: the first at once, with its source;
 * then the failures of each following AUTH_LOG_NS as one line, with their
 * count and the last source, when that interval ends (at a heartbeat).  An
 * interval without any ends the series: the next failure is a "first"
 * again.  `stats` counts every one (drops.bad_mac).
 */
#define AUTH_LOG_NS UINT64_C(10000000000)
static struct {
    uint64_t since_ns; /* start of the current interval; 0: none (log the next at once) */
    uint64_t count;    /* failures in it, not yet logged */
    struct sockaddr_storage last;
} auth_log;

static void auth_log_flush(uint64_t now)
{
    if (!auth_log.since_ns || now - auth_log.since_ns < AUTH_LOG_NS)
        return;
    if (!auth_log.count) {
        auth_log.since_ns = 0;
        return;
    }
    char ab[80];
    LOG_W("%" PRIu64 " more probe packet%s failed authentication in the last %.0f s, the last "
          "from %s (wrong key on a peer, or forged)", auth_log.count, auth_log.count == 1 ? "" : "s",
          (double)(now - auth_log.since_ns) / 1e9,
          netelect__fmt_addr((const struct sockaddr *)&auth_log.last, ab, sizeof ab));
    auth_log.since_ns = now;
    auth_log.count = 0;
}

static void auth_failed(const struct sockaddr_storage *from, uint64_t now)
{
    auth_log_flush(now);
    if (auth_log.since_ns) {
        auth_log.count++;
        auth_log.last = *from;
        return;
    }
    char ab[80];
    LOGA_W(0, (const struct sockaddr *)from, NULL,
           "a probe packet from %s failed authentication: a peer with another key_file, or a "
          "forged packet (further failures: one line per %.0f s with their count)",
          netelect__fmt_addr((const struct sockaddr *)from, ab, sizeof ab), (double)AUTH_LOG_NS / 1e9);
    auth_log.since_ns = now ? now : 1;
}

static void handle_packet(struct agent *a, const uint8_t *buf, size_t len,
                          const struct sockaddr_storage *from, socklen_t fromlen, uint64_t now)
{
    a->st.rx++;
    /*
     * A packet from a probed peer's address gets its MAC checked first
     * (about a microsecond) and is rate-limited by its authenticated sender
     * below: a flood spoofing that address is only so many bad MACs and
     * cannot spend the peer's budget.  Anything else is rate-limited by
     * source address, and all unknown sources together by one more bucket,
     * before a MAC is spent on it.
     */
    if (!netelect__addr_known(a, from, fromlen)) {
        size_t bi = addr_hash(from, fromlen) % a->n_buckets;
        if (memcmp(&a->buckets[bi].a, from, fromlen)) {
            memset(&a->buckets[bi], 0, sizeof a->buckets[bi]);
            memcpy(&a->buckets[bi].a, from, fromlen);
        }
        if (!netelect__bucket_take(&a->buckets[bi].b, now, a->cfg.rate_pps, a->cfg.rate_burst) ||
            !netelect__bucket_take(&a->unknown_bucket, now, a->cfg.rate_pps, a->cfg.rate_burst)) {
            drop(a, DROP_RATE, from);
            return;
        }
    }
    struct netelect_pkt p;
    int r = netelect__pkt_decode(buf, len, a->key, &p);
    switch (r) {
    case 0: break;
    case NETELECT_PKT_ETRUNC: drop(a, DROP_TRUNC, from); return;
    case NETELECT_PKT_EOVERSIZE: drop(a, DROP_OVERSIZE, from); return;
    case NETELECT_PKT_EGARBAGE: drop(a, DROP_GARBAGE, from); return;
    case NETELECT_PKT_EVERSION: drop(a, DROP_VERSION, from); return;
    case NETELECT_PKT_EAUTH:
        drop(a, DROP_AUTH, from);
        auth_failed(from, now);
        return;
    default: drop(a, DROP_FIELDS, from); return;
    }
    if (p.receiver != a->self) {
        drop(a, DROP_NOT_FOR_US, from);
        return;
    }
    struct node *n = netelect__node_find(a, p.sender);
    if (!n || !n->probed) {
        drop(a, DROP_UNKNOWN_SENDER, from);
        return;
    }
    r = netelect__replay_check(&n->rp, p.sender_inc, p.seq);
    if (r == NETELECT_PKT_EREPLAY) {
        drop(a, DROP_REPLAY, from);
        return;
    }
    if (r == NETELECT_PKT_ESTALEINC) {
        drop(a, DROP_STALE_INC, from);
        return;
    }
    if (r == 1) {
        if (n->peer_inc) {
            a->st.peer_restarts++;
            LOGA_I(n->id, (const struct sockaddr *)&n->addr, NULL,
                   "peer %#llx restarted (incarnation %" PRIu64 " -> %" PRIu64 ")",
                  (unsigned long long)n->id, n->peer_inc, p.sender_inc);
        }
        n->peer_inc = p.sender_inc;
    }
    /* Charged only for authentic, fresh packets: only the key holder can
     * spend this budget, and a replay cannot. */
    if (!netelect__bucket_take(&n->rx_bucket, now, a->cfg.rate_pps, a->cfg.rate_burst)) {
        drop(a, DROP_RATE_PEER, from);
        return;
    }
    if (p.type == NETELECT_PKT_PING) {
        a->st.rx_ok++;
        n->heard_ns = now;
        /* The reply goes to the peer's configured address, never to the
         * packet's source: a captured PING resent from elsewhere (it is
         * fresh if the original was lost) cannot aim our PONGs at a third
         * party. */
        send_pkt(a, n, (const struct sockaddr *)&n->addr, n->addrlen, NETELECT_PKT_PONG, p.seq,
                 p.ts, now);
        netelect__node_changed(a, n);
        return;
    }
    if (p.receiver_inc != a->inc) {
        drop(a, DROP_STALE_PONG, from);
        return;
    }
    int f = netelect__probe_reply(&n->pr, &a->pp, p.ack_seq, p.ack_ts, now);
    if (f < 0) {
        drop(a, DROP_UNSOLICITED, from);
        return;
    }
    a->st.rx_ok++;
    n->heard_ns = now;
    if (f & NETELECT_PROBE_HEALTH)
        health_changed(a, n);
    netelect__node_changed(a, n);
    netelect__heap_fix(a, n);
}

static void udp_readable(struct agent *a)
{
    uint8_t buf[2048];
    /* bounded so a flood cannot starve timers and the control socket */
    for (int i = 0; i < 512; i++) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(a->udp, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC,
                             (struct sockaddr *)&from, &fl);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                LOG_D("recvfrom: %s", strerror(errno));
            if (errno == EINTR)
                continue;
            return;
        }
        /* MSG_TRUNC returns the real datagram length: oversized is detected, not misread. */
        handle_packet(a, buf, (size_t)n, &from, fl, netelect__now_ns());
    }
}

static int open_udp(struct agent *a)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->cfg.listen_addr;
    int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){0}, sizeof(int));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Room for a burst of replies from thousands of peers (best effort: the
     * kernel caps it at net.core.rmem_max). */
    int rcvbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind(fd, sa, a->cfg.listen_len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    a->udp = fd;
    epoll_add(a, fd, EPOLLIN, EV_UDP);
    return 0;
}

/* ---- configuration ---------------------------------------------------------------- */

static void apply_cli_overrides(struct agent *a, struct netelect_cfg *c)
{
    if (a->opt_shm)
        snprintf(c->shm_name, sizeof c->shm_name, "%s", a->opt_shm);
    if (a->opt_control)
        snprintf(c->control_path, sizeof c->control_path, "%s", a->opt_control);
    if (a->opt_listen) {
        snprintf(c->listen, sizeof c->listen, "%s", a->opt_listen);
        netelect__parse_addr(c->listen, &c->listen_addr, &c->listen_len, 1);
    }
    if (a->opt_node_id)
        c->node_id = a->opt_node_id;
}

static int load_config(struct agent *a, struct netelect_cfg *c, uint8_t key[NETELECT_KEY_LEN],
                       bool *have_key, char *err, size_t errlen)
{
    int r;
    if (a->cfg_path) {
        r = netelect__cfg_load_file(a->cfg_path, c, err, errlen);
        if (r < 0)
            return r;
    } else {
        /* The embedded default: this host alone, one channel "default" whose
         * only replica is itself; no peers, so no key is needed. */
        netelect__cfg_defaults(c);
        static const uint64_t self_member = 0;
        c->chans = calloc(1, sizeof *c->chans);
        if (!c->chans)
            return -ENOMEM;
        c->n_chans = c->cap_chans = 1;
        snprintf(c->chans[0].name, sizeof c->chans[0].name, "default");
        c->chans[0].members = malloc(sizeof(uint64_t));
        if (!c->chans[0].members)
            return -ENOMEM;
        c->chans[0].members[0] = self_member;
        c->chans[0].n = c->chans[0].cap = 1;
    }
    apply_cli_overrides(a, c);
    *have_key = false;
    if (c->key_file[0]) {
        r = netelect__key_load(c->key_file, key, err, errlen);
        if (r < 0) {
            if (a->cfg_path && c->key_file_line) {
                char tmp[NETELECT_CFG_ERR_LEN];
                snprintf(tmp, sizeof tmp, "%s:%d: %s", a->cfg_path, c->key_file_line, err);
                snprintf(err, errlen, "%s", tmp);
            }
            netelect__cfg_free(c);
            return r;
        }
        *have_key = true;
    }
    return 0;
}

static struct netelect_probe_params probe_params(const struct netelect_cfg *c)
{
    return (struct netelect_probe_params){
        .interval_ns = c->probe_interval_ns, .timeout_ns = c->probe_timeout_ns,
        .misses = c->probe_misses, .flap_threshold = c->flap_threshold,
        .flap_rise = c->flap_rise, .flap_half_life_ns = c->flap_half_life_ns};
}

/* Makes the table match cfg's peers and channels (origin CFG); nodes and
 * members added over the control socket or by Serf are left alone. */
static void apply_membership(struct agent *a, const struct netelect_cfg *c)
{
    for (size_t i = 0; i < a->tab_cap; i++) {
        struct node *n = a->tab[i];
        if (!n || !(n->orig & ORIG_CFG))
            continue;
        bool keep = false;
        for (size_t j = 0; j < c->n_peers; j++)
            keep |= c->peers[j].id == n->id;
        if (!keep) {
            netelect__node_forget_orig(a, n, ORIG_CFG);
            i = (size_t)-1; /* the table may have shifted: rescan */
        }
    }
    for (size_t j = 0; j < c->n_peers; j++) {
        struct node *n = netelect__node_get(a, c->peers[j].id);
        n->orig |= ORIG_CFG;
        netelect__node_set_addr(a, n, &c->peers[j].addr, c->peers[j].addrlen);
    }
    netelect__chan_forget_orig(a, ORIG_CFG);
    for (size_t i = 0; i < c->n_chans; i++) {
        struct chan *ch = netelect__chan_get(a, c->chans[i].name);
        for (size_t j = 0; j < c->chans[i].n; j++) {
            uint64_t id = c->chans[i].members[j] ? c->chans[i].members[j] : a->self;
            if (netelect__chan_add_member(a, ch, id, ORIG_CFG) < 0)
                DIE("out of memory adding channel members");
        }
    }
}

static int resolve_group(const char *name, gid_t *out, char *err, size_t errlen, const char *what)
{
    *out = (gid_t)-1;
    if (!name[0])
        return 0;
    struct group *g = getgrnam(name);
    if (!g) {
        uint64_t v;
        if (netelect__parse_u64(name, &v) == 0) {
            *out = (gid_t)v;
            return 0;
        }
        snprintf(err, errlen, "%s: unknown group '%s'", what, name);
        return -ENOENT;
    }
    *out = g->gr_gid;
    return 0;
}

int netelect__reload(struct agent *a, char *err, size_t errlen)
{
    a->st.reloads++;
    if (!a->cfg_path) {
        LOG_I("reload: running on the embedded default configuration; nothing to reload");
        return 0;
    }
    struct netelect_cfg c;
    uint8_t key[NETELECT_KEY_LEN];
    bool have_key;
    int r = load_config(a, &c, key, &have_key, err, errlen);
    if (r < 0)
        goto bad;
    const char *what = NULL;
    if ((c.node_id ? c.node_id : a->self) != a->self)
        what = "node_id";
    else if (strcmp(c.listen, a->cfg.listen))
        what = "listen";
    else if (strcmp(c.control_path, a->cfg.control_path))
        what = "control";
    else if (strcmp(c.shm_name, a->cfg.shm_name) || c.shm_mode != a->cfg.shm_mode ||
             strcmp(c.shm_group, a->cfg.shm_group) || c.heartbeat_ns != a->cfg.heartbeat_ns)
        what = "[segment] name, mode, group or heartbeat";
    else if (strcmp(c.control_group, a->cfg.control_group))
        what = "control_group";
    else if (have_key != a->have_key)
        what = "whether a key_file is set";
    else if (c.serf_enabled != a->cfg.serf_enabled ||
             strcmp(c.serf_rpc_addr, a->cfg.serf_rpc_addr))
        what = "[serf] enabled or rpc_addr";
    else if (strcmp(c.metrics_listen, a->cfg.metrics_listen))
        what = "[metrics] listen";
    if (what) {
        snprintf(err, errlen, "%s: %s cannot change on reload; restart netelectd", a->cfg_path,
                 what);
        netelect__cfg_free(&c);
        r = -EINVAL;
        goto bad;
    }
    memcpy(a->key, key, sizeof key);
    sodium_memzero(key, sizeof key);
    a->pp = probe_params(&c);
    netelect__log_set_level(c.log_level);
    apply_membership(a, &c);
    netelect__cfg_free(&a->cfg);
    a->cfg = c;
    LOG_N("reloaded %s: %zu peers, %zu channels", a->cfg_path, c.n_peers, c.n_chans);
    return 0;
bad:
    a->st.reload_failures++;
    LOG_E("reload failed, keeping the running configuration: %s", err);
    return r;
}

/* ---- start-up: continuity with the previous incarnation ------------------------------ */

struct inherit {
    struct agent *a;
    uint64_t now;
    bool fresh;             /* the old view was current enough to vouch for health */
    size_t nodes, healthy;
};

/*
 * Seeds one configured, probed peer from the old view.  Only figures our own
 * probes made are taken: an operator's override lived in the old process,
 * and Serf resends its estimates when the client connects.  The estimate
 * goes into the probe filter as if the old process had kept running, so
 * the next replies refine it rather than jump.  Health is taken only as a
 * prober would still hold it: the time since the peer was last heard
 * counts as misses already (a whole probe interval each), so an inherited
 * "healthy" ends no later than a live measurement of a peer that went
 * quiet at that moment would end; a reply resets the run as usual.
 */
static int inherit_node(void *ctx, const struct netelect_node_info *o)
{
    struct inherit *c = ctx;
    struct agent *a = c->a;
    struct node *n = o->id == a->self ? NULL : netelect__node_find(a, o->id);
    if (!n || !n->probed || n->pr.samples || o->source != NETELECT_SRC_PROBE ||
        o->rtt_ns == NETELECT_RTT_UNKNOWN || o->rtt_ns > NETELECT_RTT_MAX_MEASURED)
        return 0;
    struct netelect_probe *p = &n->pr;
    p->srtt_ns = o->rtt_ns;
    p->rttvar_ns = o->rtt_err_ns;
    p->raw_ns = o->rtt_raw_ns <= NETELECT_RTT_MAX_MEASURED ? o->rtt_raw_ns : o->rtt_ns;
    p->samples = 1; /* what makes the estimate count as the probe's own */
    if (o->last_heard_ns && o->last_heard_ns <= c->now)
        p->last_heard_ns = o->last_heard_ns;
    if (c->fresh && o->healthy && p->last_heard_ns) {
        uint64_t quiet = (c->now - p->last_heard_ns) / a->pp.interval_ns;
        if (quiet < a->pp.misses) {
            p->healthy = 1;
            p->miss_run = (uint32_t)quiet;
            c->healthy++;
        }
    }
    c->nodes++;
    netelect__node_changed(a, n);
    return 0;
}

/*
 * Reads the view the previous incarnation left under our segment name, with
 * the public reader (the file may be from an older build: the reader's
 * validation is the contract), and seeds the configured peers from it.
 * Best effort: no view, a foreign one or a read error just means starting
 * from nothing, as before.  The outcome goes to `msg` (one line, logged at
 * `*level` once the start-up line has said what this agent is).
 */
static void inherit_old_view(struct agent *a, char *msg, size_t msglen, int *level)
{
    *level = NETELECT_LOG_INFO;
    struct netelect_view_opts vo = {.size = sizeof vo, .fail_static_ns = UINT64_MAX,
                                    .expect_uid = (uint32_t)geteuid(), .expect_uid_set = 1};
    struct netelect_view *v;
    int r = netelect_view_open_opts(a->cfg.shm_name, &vo, &v);
    if (r < 0) {
        snprintf(msg, msglen, "inherited 0 nodes: no previous view of '%s' to start from (%s)",
                 a->cfg.shm_name, netelect_strerror(r));
        return;
    }
    struct inherit c = {.a = a, .now = netelect__now_ns()};
    struct netelect_view_status st = {.size = sizeof st};
    r = netelect_view_status(v, &st);
    if (r == 0 && st.self_id != a->self) {
        snprintf(msg, msglen, "inherited 0 nodes: the previous view of '%s' is node %#llx's, not ours",
                 a->cfg.shm_name, (unsigned long long)st.self_id);
        netelect_view_close(v);
        return;
    }
    /* A heartbeat time from the future is another clock (a reboot, another
     * time namespace): not fresh. */
    bool aged = r == 0 && st.heartbeat_mono_ns && st.heartbeat_mono_ns <= c.now;
    uint64_t age = aged ? c.now - st.heartbeat_mono_ns : 0;
    uint64_t budget = (uint64_t)a->pp.misses * a->pp.interval_ns;
    c.fresh = aged && age <= budget;
    if (r == 0)
        r = netelect_view_foreach_node(v, inherit_node, &c);
    netelect_view_close(v);
    if (r < 0) {
        *level = NETELECT_LOG_WARN;
        snprintf(msg, msglen, "inherited 0 nodes: reading the previous view of '%s' failed: %s",
                 a->cfg.shm_name, netelect_strerror(r));
        return;
    }
    char ab[48];
    if (aged)
        snprintf(ab, sizeof ab, "%.1f ms old", age / 1e6);
    else
        snprintf(ab, sizeof ab, "of unknown age");
    *level = NETELECT_LOG_NOTICE;
    snprintf(msg, msglen,
             "inherited %zu nodes (%zu healthy) from the previous view of '%s': generation %llu, "
             "agent pid %d %s, heartbeat %s (health kept only within %.0f ms)",
             c.nodes, c.healthy, a->cfg.shm_name, (unsigned long long)st.generation,
             (int)st.agent_pid, st.state == NETELECT_AGENT_ABANDONED ? "exited cleanly" : "died", ab,
             budget / 1e6);
}

/* ---- Serf --------------------------------------------------------------------------- */
#if NETELECT_HAVE_SERF
#include "agent/serf_glue.inc"
#endif

/* ---- main ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
"usage: netelectd [options]\n"
"Measures RTT and health to this host's peers and publishes the replica view\n"
"for libnetelect readers in /dev/shm/<segment>.\n"
"\n"
"  -c, --config FILE     configuration (INI; see netelectd.conf.example); without\n"
"                        one, the embedded default: this host alone, channel\n"
"                        \"default\" = {self}, no peers, no key needed\n"
"      --check-config FILE  validate FILE (and its key file) and exit: 0 valid,\n"
"                        1 invalid (the error is printed as file:line: message)\n"
"      --gen-key FILE    write a new random 32-byte key (64 hex digits, mode 0600)\n"
"                        to FILE, which must not exist, and exit\n"
"      --shm NAME        segment name (default \"netelect\": /dev/shm/netelect)\n"
"      --control PATH    control socket (default " NETELECT_DEFAULT_CONTROL ")\n"
"      --listen ADDR     UDP probe address, a.b.c.d:port or [v6]:port (default 0.0.0.0:%d)\n"
"      --node-id ID      this node's id (default: [agent] node_id, else derived from\n"
"                        /etc/machine-id, else a random id kept in\n"
"                        <state_dir>/node-id; see agent/README.md, Node id)\n"
"  -h, --help            this text\n"
"  -V, --version         print the version and exit\n"
"\n"
"Signals: SIGHUP reloads the configuration (a bad one is logged and ignored);\n"
"SIGINT/SIGTERM mark the segment abandoned and exit 0.\n"
"Exit status: 0 clean exit, 1 start-up or configuration error, 2 usage error.\n",
            NETELECT_DEFAULT_PORT);
}

/*
 * Frees what start-up allocated, on a clean exit and on every start-up
 * failure after the configuration loaded: not out of necessity (the process
 * is ending) but so that leak checkers see a clean exit and a real leak
 * stands out.
 */
static void agent_free(struct agent *a)
{
    sodium_memzero(a->key, sizeof a->key);
    for (size_t i = 0; i < a->tab_cap; i++)
        if (a->tab[i]) {
            free(a->tab[i]->serf_channels);
            free(a->tab[i]);
        }
    free(a->tab);
    free(a->heap);
    for (size_t i = 0; i < a->n_chans; i++) {
        free(a->chans[i].m);
        free(a->chans[i].set);
    }
    free(a->chans);
    free(a->drained);
    free(a->buckets);
    free(a->paddr);
    netelect__cfg_free(&a->cfg);
    if (a->ep >= 0)
        close(a->ep);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", required_argument, NULL, 'C'},
        {"gen-key", required_argument, NULL, 'G'}, {"shm", required_argument, NULL, 's'},
        {"control", required_argument, NULL, 'k'}, {"listen", required_argument, NULL, 'l'},
        {"node-id", required_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'}, {0}};
    struct agent ag = {.udp = -1, .ctl_fd = -1, .ctl_tfd = -1, .ep = -1, .ctl_gid = (gid_t)-1, .serf_fd = -1,
                       .serf_tfd = -1};
    struct agent *a = &ag;
    const char *check = NULL, *genkey = NULL;
    char err[NETELECT_CFG_ERR_LEN];
    int c;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->cfg_path = optarg; break;
        case 'C': check = optarg; break;
        case 'G': genkey = optarg; break;
        case 's': a->opt_shm = optarg; break;
        case 'k':
            if (*optarg != '/' || strlen(optarg) >= sizeof a->cfg.control_path) {
                fprintf(stderr, "netelectd: --control wants an absolute path shorter than %zu bytes\n",
                        sizeof a->cfg.control_path);
                return 2;
            }
            a->opt_control = optarg;
            break;
        case 'l': {
            struct sockaddr_storage ss;
            socklen_t l;
            if (netelect__parse_addr(optarg, &ss, &l, 1) < 0) {
                fprintf(stderr, "netelectd: --listen '%s' is not a numeric address:port\n", optarg);
                return 2;
            }
            a->opt_listen = optarg;
            break;
        }
        case 'n':
            if (netelect__parse_id(optarg, &a->opt_node_id) < 0) {
                fprintf(stderr, "netelectd: --node-id '%s' is not a node id (1..2^64-1)\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("netelectd %s\n", NETELECT_VERSION_STRING); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "netelectd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "netelectd: libsodium failed to initialise\n");
        return 1;
    }
    if (genkey) {
        if (netelect__key_generate(genkey, err, sizeof err) < 0) {
            fprintf(stderr, "netelectd: --gen-key: %s\n", err);
            return 1;
        }
        printf("netelectd: wrote a new key to %s (mode 0600); copy it to every peer\n", genkey);
        return 0;
    }
    if (check) {
        struct netelect_cfg cc;
        uint8_t key[NETELECT_KEY_LEN];
        bool hk;
        a->cfg_path = check;
        if (load_config(a, &cc, key, &hk, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        gid_t g;
        if (resolve_group(cc.control_group, &g, err, sizeof err, "control_group") < 0 ||
            resolve_group(cc.shm_group, &g, err, sizeof err, "[segment] group") < 0) {
            fprintf(stderr, "%s: %s\n", check, err);
            netelect__cfg_free(&cc);
            return 1;
        }
        printf("%s: valid: %zu peers, %zu channels, key %s\n", check, cc.n_peers, cc.n_chans,
               hk ? "loaded" : "not set");
        netelect__cfg_free(&cc);
        return 0;
    }

    netelect__log_init(NETELECT_LOG_INFO);
    a->start_ns = netelect__now_ns();
    if (load_config(a, &a->cfg, a->key, &a->have_key, err, sizeof err) < 0) {
        LOG_E("%s", err);
        return 1;
    }
    netelect__log_set_level(a->cfg.log_level);
    a->self = a->cfg.node_id;
    const char *id_origin = a->opt_node_id ? "--node-id" : "config";
    char id_how[PATH_MAX + 160];
    if (!a->self) {
        /* agent/README.md, "Node id": the machine id, else an id generated
         * once and kept in the state directory. */
        char sdir[PATH_MAX];
        struct netelect_node_id_origin o;
        int r = netelect__state_dir_default(a->cfg.state_dir, sdir, sizeof sdir, err, sizeof err);
        if (r >= 0)
            r = netelect__node_id_resolve(NULL, sdir, &a->self, &o, err, sizeof err);
        if (r < 0) {
            LOG_E("no node_id configured and no readable /etc/machine-id or "
                  "/var/lib/dbus/machine-id to derive one from, and no generated id either: %s; "
                  "set [agent] node_id or pass --node-id", err);
            agent_free(a);
            return 1;
        }
        if (o.source == NETELECT_NODE_ID_MACHINE_ID)
            snprintf(id_how, sizeof id_how, "derived from %s: stable across reboots", o.path);
        else
            snprintf(id_how, sizeof id_how, "%s %s because this host has no machine id: stable "
                     "across reboots while that file is kept",
                     o.source == NETELECT_NODE_ID_GENERATED ? "random, saved to" : "read from",
                     o.path);
        id_origin = id_how;
    }
    gid_t shm_gid;
    if (resolve_group(a->cfg.control_group, &a->ctl_gid, err, sizeof err, "control_group") < 0 ||
        resolve_group(a->cfg.shm_group, &shm_gid, err, sizeof err, "[segment] group") < 0) {
        LOG_E("%s: %s", a->cfg.source, err);
        agent_free(a);
        return 1;
    }
    a->pp = probe_params(&a->cfg);
    {
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        /* Wall-clock based so that it grows across restarts: peers reject an
         * older incarnation as a replay (see agent/README.md). */
        a->inc = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
        if (!a->inc)
            a->inc = 1;
    }
    a->n_buckets = 4096;
    a->buckets = calloc(a->n_buckets, sizeof *a->buckets);
    a->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!a->buckets || a->ep < 0)
        DIE("start-up: %s", strerror(errno));

    /* A shell starting us in the background may have set SIGINT to
     * SIG_IGN, and an ignored signal never reaches a signalfd. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGHUP);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    signal(SIGPIPE, SIG_IGN);
    a->sig_fd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    a->probe_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    a->hb_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    a->pub_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (a->sig_fd < 0 || a->probe_tfd < 0 || a->hb_tfd < 0 || a->pub_tfd < 0)
        DIE("start-up: %s", strerror(errno));
    epoll_add(a, a->sig_fd, EPOLLIN, EV_SIG);
    epoll_add(a, a->probe_tfd, EPOLLIN, EV_PROBE);
    epoll_add(a, a->hb_tfd, EPOLLIN, EV_HB);
    epoll_add(a, a->pub_tfd, EPOLLIN, EV_PUB);

    /* The table first, so the segment's first version is a real view: a
     * reader that moves to it mid-restart keeps finding its channels and,
     * through the inherited state, the same leaders. */
    apply_membership(a, &a->cfg);
    char inherit_msg[384];
    int inherit_level;
    inherit_old_view(a, inherit_msg, sizeof inherit_msg, &inherit_level);
    struct view_arrays first;
    view_build(a, netelect__now_ns(), &first);
    struct netelect_writer_config wc = {
        .name = a->cfg.shm_name, .mode = (mode_t)a->cfg.shm_mode, .group = shm_gid,
        .self_id = a->self, .heartbeat_period_ns = a->cfg.heartbeat_ns,
        .initial_nodes = first.nodes, .n_initial_nodes = first.n_nodes,
        .initial_chans = first.chans, .n_initial_chans = first.n_chans};
    int r = netelect__writer_open(&wc, &a->w);
    view_free(&first);
    if (r < 0) {
        LOG_E("cannot open segment '%s': %s%s", a->cfg.shm_name, strerror(-r),
              r == -EBUSY   ? " (another netelectd is publishing it)"
              : r == -EPERM ? " (a file of another user is in the way and cannot be removed:"
                              " run as root, or use a directory only the agent's user can write,"
                              " e.g. --shm /run/netelect/view; or [segment] group is set and the"
                              " agent may not chown: it needs CAP_CHOWN)"
                            : "");
        agent_free(a);
        return 1;
    }
    struct netelect_writer_report wrep;
    netelect__writer_report(a->w, &wrep);
    if (wrep.squatters)
        LOG_W("removed %u file(s) owned by uid %u from the segment's names (%s, .lock, "
              ".readers): another user tried to publish or block the view",
              wrep.squatters, (unsigned)wrep.squatter_uid, a->cfg.shm_name);
    if (wrep.stale_tmps)
        LOG_N("removed %u temporary file(s) a killed netelectd left beside the segment",
              wrep.stale_tmps);
    if (a->have_key) {
        r = open_udp(a);
        if (r < 0) {
            LOG_E("cannot listen on UDP %s: %s", a->cfg.listen, strerror(-r));
            netelect__writer_close(a->w, true);
            agent_free(a);
            return 1;
        }
    }
    r = netelect__control_open(a);
    if (r < 0) {
        netelect__writer_close(a->w, true);
        if (a->udp >= 0)
            close(a->udp);
        agent_free(a);
        return 1;
    }
    if (netelect__metrics_open(a) < 0) {
        netelect__metrics_close(a);
        netelect__control_close(a);
        netelect__writer_close(a->w, true);
        if (a->udp >= 0)
            close(a->udp);
        agent_free(a);
        return 1;
    }
#if NETELECT_HAVE_SERF
    if (a->cfg.serf_enabled && serf_start(a) < 0) {
        netelect__metrics_close(a);
        netelect__control_close(a);
        netelect__writer_close(a->w, true);
        if (a->udp >= 0)
            close(a->udp);
        agent_free(a);
        return 1;
    }
#endif
    publish(a);
    struct itimerspec hb = {
        .it_interval = {(time_t)(a->cfg.heartbeat_ns / 1000000000u), (long)(a->cfg.heartbeat_ns % 1000000000u)},
        .it_value = {(time_t)(a->cfg.heartbeat_ns / 1000000000u), (long)(a->cfg.heartbeat_ns % 1000000000u)}};
    timerfd_settime(a->hb_tfd, 0, &hb, NULL);
    run_probes(a);

    char shm_path[192];
    snprintf(shm_path, sizeof shm_path, "%s%.127s", strchr(a->cfg.shm_name, '/') ? "" : "/dev/shm/",
             a->cfg.shm_name);
    char lb[128];
    if (a->have_key)
        snprintf(lb, sizeof lb, "probing from UDP %.79s", a->cfg.listen);
    else
        snprintf(lb, sizeof lb, "no key_file, so no peers and no UDP probing");
    LOG_N("netelectd %s started: node %#llx (%s), publishing %s, control %s, config %s, "
          "%zu peers, %zu channels, %s", NETELECT_VERSION_STRING, (unsigned long long)a->self,
          id_origin, shm_path, a->cfg.control_path, a->cfg.source, a->cfg.n_peers, a->n_chans, lb);
    netelect__log(inherit_level, "%s", inherit_msg);

#if NETELECT_HAVE_SYSTEMD
    uint64_t wd_usec = 0;
    const bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;
    if (watchdog && wd_usec < 2 * a->cfg.heartbeat_ns / 1000)
        LOG_W("WatchdogSec (%.3f s) is shorter than twice [segment] heartbeat (%.3f s), "
              "which pings it: systemd may kill a healthy agent", wd_usec / 1e6,
              a->cfg.heartbeat_ns / 1e9);
#endif
    struct epoll_event evs[64];
    while (!a->quit) {
        int n = epoll_wait(a->ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            DIE("epoll_wait: %s", strerror(errno));
        }
        bool probes = false;
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64 >> 56;
            /* epoll data packs an 8-bit tag over a user-space pointer (< 2^56). */
            void *ptr = (void *)(uintptr_t)(evs[i].data.u64 & ((1ull << 56) - 1)); // NOLINT(performance-no-int-to-ptr)
            switch (tag) {
            case EV_UDP: udp_readable(a); break;
            case EV_CTL: netelect__control_accept(a); break;
            case EV_CLIENT: netelect__control_event(a, ptr, evs[i].events); break;
            case EV_CTL_T: drain_fd(a->ctl_tfd); netelect__control_timer(a); break;
            case EV_METRICS: netelect__metrics_event(a); break;
            case EV_PROBE: drain_fd(a->probe_tfd); probes = true; break;
            case EV_PUB: drain_fd(a->pub_tfd); a->pub_armed = false; break;
            case EV_HB:
                drain_fd(a->hb_tfd);
                auth_log_flush(netelect__now_ns());
                if (a->dirty_soft || a->dirty_hard)
                    publish(a);
                if (netelect__writer_heartbeat(a->w) < 0)
                    a->st.heartbeat_err++;
                else
                    a->st.heartbeats++;
#if NETELECT_HAVE_SYSTEMD
                /* WatchdogSec=: the loop is alive (a hung loop stops this) */
                if (watchdog)
                    sd_notify(0, "WATCHDOG=1");
#endif
                break;
            case EV_SIG: {
                struct signalfd_siginfo si;
                while (read(a->sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
                    if (si.ssi_signo == SIGHUP) {
                        LOG_I("SIGHUP: reloading %s", a->cfg_path ? a->cfg_path : "(embedded default)");
                        netelect__reload(a, err, sizeof err);
                    } else {
                        LOG_N("%s: exiting", strsignal((int)si.ssi_signo));
                        a->quit = true;
                    }
                }
                break;
            }
#if NETELECT_HAVE_SERF
            case EV_SERF: serf_io(a, evs[i].events); break;
            case EV_SERF_T: drain_fd(a->serf_tfd); serf_timer(a); break;
#endif
            default: break;
            }
        }
        /* Probes run after I/O so replies that arrived in this batch are
         * counted before their timeouts are judged. */
        if (probes)
            run_probes(a);
        else {
            struct node *top = netelect__heap_top(a);
            arm_abs(a->probe_tfd, top ? netelect__probe_next(&top->pr) : 0);
        }
        maybe_publish(a);
    }
#if NETELECT_HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
#if NETELECT_HAVE_SERF
    serf_stop(a);
#endif
    netelect__metrics_close(a);
    netelect__control_close(a);
    netelect__writer_close(a->w, true);
    if (a->udp >= 0)
        close(a->udp);
    agent_free(a);
    LOG_I("segment %s marked abandoned; bye", shm_path);
    return 0;
}
