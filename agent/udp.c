/* SPDX-License-Identifier: MIT */
/*
 * The UDP probe protocol (udp.h, the wire format in agent/packet.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/clock.h"
#include "agent/evfd.h"
#include "agent/log.h"
#include "agent/udp.h"

const char *const agent_drop_names[DROP_N] = {
    [DROP_RATE] = "rate_limited",     [DROP_TRUNC] = "truncated",
    [DROP_OVERSIZE] = "oversized",    [DROP_GARBAGE] = "garbage",
    [DROP_VERSION] = "bad_version",   [DROP_AUTH] = "bad_mac",
    [DROP_FIELDS] = "bad_fields",     [DROP_NOT_FOR_US] = "not_for_us",
    [DROP_UNKNOWN_SENDER] = "unknown_sender", [DROP_REPLAY] = "replayed",
    [DROP_STALE_INC] = "stale_incarnation",   [DROP_STALE_PONG] = "stale_pong",
    [DROP_UNSOLICITED] = "unsolicited_pong", [DROP_RATE_PEER] = "rate_limited_peer",
};



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
    if (agent_pkt_encode(&p, a->key, buf) < 0)
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
        a->stats.tx_err++;
        LOG_D("send to %#llx: %s", (unsigned long long)n->id, strerror(errno));
        return;
    }
    if (type == NETELECT_PKT_PING)
        a->stats.tx_ping++;
    else
        a->stats.tx_pong++;
}

static void health_changed(struct agent *a, struct node *n)
{
    a->stats.health_changes++;
    char ab[80];
    const struct sockaddr *sa = (const struct sockaddr *)&n->addr;
    if (n->probe.healthy)
        LOGA_N(n->id, sa, NULL, "peer %#llx (%s) is healthy: rtt %.3f ms", (unsigned long long)n->id,
              agent_fmt_addr((struct sockaddr *)&n->addr, ab, sizeof ab), n->probe.srtt_ns / 1e6);
    else
        LOGA_N(n->id, sa, NULL, "peer %#llx (%s) is unhealthy: %u probes missed in a row",
              (unsigned long long)n->id,
              agent_fmt_addr((struct sockaddr *)&n->addr, ab, sizeof ab), n->probe.miss_run);
}

void agent_probes_run(struct agent *a)
{
    uint64_t now = agent_now_ns();
    struct node *n;
    while ((n = agent_heap_top(a)) && agent_probe_next(&n->probe) <= now) {
        uint64_t missed = n->probe.missed;
        int f = agent_probe_tick(&n->probe, &a->probe_params, now, n->tx_seq + 1);
        if (n->probe.missed != missed)
            LOG_D("probe of %#llx timed out (%u in a row)", (unsigned long long)n->id, n->probe.miss_run);
        if (f & NETELECT_PROBE_SEND)
            send_pkt(a, n, (struct sockaddr *)&n->addr, n->addrlen, NETELECT_PKT_PING, 0, 0, now);
        if (f & NETELECT_PROBE_HEALTH) {
            health_changed(a, n);
        }
        if (f)
            agent_node_changed(a, n);
        agent_heap_fix(a, n);
    }
    agent_probes_arm(a);
}

void agent_probes_arm(struct agent *a)
{
    struct node *n = agent_heap_top(a);
    agent_timer_arm(a->probe_tfd, n ? agent_probe_next(&n->probe) : 0);
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
    a->stats.drop[r]++;
    if (agent_log_enabled(NETELECT_LOG_DEBUG)) {
        char ab[80];
        LOG_D("dropped a packet from %s: %s", agent_fmt_addr((const struct sockaddr *)from, ab, sizeof ab),
              agent_drop_names[r]);
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

void agent_auth_log_flush(uint64_t now)
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
          agent_fmt_addr((const struct sockaddr *)&auth_log.last, ab, sizeof ab));
    auth_log.since_ns = now;
    auth_log.count = 0;
}

static void auth_failed(const struct sockaddr_storage *from, uint64_t now)
{
    agent_auth_log_flush(now);
    if (auth_log.since_ns) {
        auth_log.count++;
        auth_log.last = *from;
        return;
    }
    char ab[80];
    LOGA_W(0, (const struct sockaddr *)from, NULL,
           "a probe packet from %s failed authentication: a peer with another key_file, or a "
          "forged packet (further failures: one line per %.0f s with their count)",
          agent_fmt_addr((const struct sockaddr *)from, ab, sizeof ab), (double)AUTH_LOG_NS / 1e9);
    auth_log.since_ns = now ? now : 1;
}

static void handle_packet(struct agent *a, const uint8_t *buf, size_t len,
                          const struct sockaddr_storage *from, socklen_t fromlen, uint64_t now)
{
    a->stats.rx++;
    /*
     * A packet from a probed peer's address gets its MAC checked first
     * (about a microsecond) and is rate-limited by its authenticated sender
     * below: a flood spoofing that address is only so many bad MACs and
     * cannot spend the peer's budget.  Anything else is rate-limited by
     * source address, and all unknown sources together by one more bucket,
     * before a MAC is spent on it.
     */
    if (!agent_addr_known(a, from, fromlen)) {
        size_t bi = addr_hash(from, fromlen) % a->n_buckets;
        if (memcmp(&a->buckets[bi].a, from, fromlen)) {
            memset(&a->buckets[bi], 0, sizeof a->buckets[bi]);
            memcpy(&a->buckets[bi].a, from, fromlen);
        }
        if (!agent_bucket_take(&a->buckets[bi].b, now, a->cfg.rate_pps, a->cfg.rate_burst) ||
            !agent_bucket_take(&a->unknown_bucket, now, a->cfg.rate_pps, a->cfg.rate_burst)) {
            drop(a, DROP_RATE, from);
            return;
        }
    }
    struct netelect_pkt p;
    int r = agent_pkt_decode(buf, len, a->key, &p);
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
    struct node *n = agent_node_find(a, p.sender);
    if (!n || !n->probed) {
        drop(a, DROP_UNKNOWN_SENDER, from);
        return;
    }
    r = agent_replay_check(&n->replay, p.sender_inc, p.seq);
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
            a->stats.peer_restarts++;
            LOGA_I(n->id, (const struct sockaddr *)&n->addr, NULL,
                   "peer %#llx restarted (incarnation %" PRIu64 " -> %" PRIu64 ")",
                  (unsigned long long)n->id, n->peer_inc, p.sender_inc);
        }
        n->peer_inc = p.sender_inc;
    }
    /* Charged only for authentic, fresh packets: only the key holder can
     * spend this budget, and a replay cannot. */
    if (!agent_bucket_take(&n->rx_bucket, now, a->cfg.rate_pps, a->cfg.rate_burst)) {
        drop(a, DROP_RATE_PEER, from);
        return;
    }
    if (p.type == NETELECT_PKT_PING) {
        a->stats.rx_ok++;
        n->heard_ns = now;
        /* The reply goes to the peer's configured address, never to the
         * packet's source: a captured PING resent from elsewhere (it is
         * fresh if the original was lost) cannot aim our PONGs at a third
         * party. */
        send_pkt(a, n, (const struct sockaddr *)&n->addr, n->addrlen, NETELECT_PKT_PONG, p.seq,
                 p.ts, now);
        agent_node_changed(a, n);
        return;
    }
    if (p.receiver_inc != a->inc) {
        drop(a, DROP_STALE_PONG, from);
        return;
    }
    int f = agent_probe_reply(&n->probe, &a->probe_params, p.ack_seq, p.ack_ts, now);
    if (f < 0) {
        drop(a, DROP_UNSOLICITED, from);
        return;
    }
    a->stats.rx_ok++;
    n->heard_ns = now;
    if (f & NETELECT_PROBE_HEALTH)
        health_changed(a, n);
    agent_node_changed(a, n);
    agent_heap_fix(a, n);
}

void agent_udp_readable(struct agent *a)
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
        handle_packet(a, buf, (size_t)n, &from, fl, agent_now_ns());
    }
}

int agent_udp_open(struct agent *a)
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
    agent_epoll_add(a, fd, EPOLLIN, EV_UDP);
    return 0;
}

void agent_udp_init(struct agent *a)
{
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    /* Wall-clock based so that it grows across restarts: peers reject an
     * older incarnation as a replay (see agent/README.md). */
    a->inc = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
    if (!a->inc)
        a->inc = 1;
    a->n_buckets = 4096;
    a->buckets = calloc(a->n_buckets, sizeof *a->buckets);
    if (!a->buckets)
        DIE("start-up: %s", strerror(errno));
}
