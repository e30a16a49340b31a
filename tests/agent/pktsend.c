/* SPDX-License-Identifier: MIT */
/*
 * pktsend: sends hostile or replayed probe packets at a running netelectd
 * (tests only).
 *
 * usage: pktsend [-b FROM_ADDR | -s FROM_ADDR] TO_ADDR KEYFILE FROM_ID TO_ID KIND [COUNT [PPS]]
 * -b binds the sending socket to FROM_ADDR (a peer's configured address, to
 * get the PONG there); -s forges FROM_ADDR as the source of every packet
 * through a raw IPv4 socket (root only; replies go to FROM_ADDR, not here):
 * a spoofed-source flood.
 * KIND: garbage truncated oversized badversion badmac notforus badfields
 *       staleinc valid replay flood
 * `valid` sends one authentic PING, waits for the PONG and prints the PING's
 * bytes in hex ("packet HEX");
 * `replay` resends such bytes (COUNT is the hex), which must be dropped;
 * `staleinc` is authentic but claims incarnation 1 (older than any real one);
 * `flood` sends COUNT (default 5000) garbage packets as fast as it can;
 * `floodmac` sends COUNT well-formed packets with a wrong MAC (each costs
 * the agent a MAC verification), at PPS per second if given.
 * Exit 0 when everything was sent (for `valid`: a PONG came back).
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "agent/config.h"
#include "agent/packet.h"
#include "agent/parse.h"
#include "tests/args.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One UDP datagram from a forged IPv4 source (IP_HDRINCL: the kernel fills
 * in the checksum and id; a zero UDP checksum means none, valid for IPv4). */
static int send_spoofed(int raw, const struct sockaddr_in *src, const struct sockaddr_in *dst,
                        const uint8_t *payload, size_t len)
{
    uint8_t pkt[4096];
    struct iphdr *ip = (struct iphdr *)pkt;
    struct udphdr *udp = (struct udphdr *)(pkt + sizeof *ip);
    size_t total = sizeof *ip + sizeof *udp + len;
    if (total > sizeof pkt)
        return -1;
    memset(pkt, 0, sizeof *ip + sizeof *udp);
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = IPPROTO_UDP;
    ip->tot_len = htons((uint16_t)total);
    ip->saddr = src->sin_addr.s_addr;
    ip->daddr = dst->sin_addr.s_addr;
    udp->source = src->sin_port;
    udp->dest = dst->sin_port;
    udp->len = htons((uint16_t)(sizeof *udp + len));
    memcpy(pkt + sizeof *ip + sizeof *udp, payload, len);
    return sendto(raw, pkt, total, 0, (const struct sockaddr *)dst, sizeof *dst) == (ssize_t)total
               ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct sockaddr_storage src;
    socklen_t srcl = 0;
    int spoof = 0;
    while (argc > 2 && (!strcmp(argv[1], "-b") || !strcmp(argv[1], "-s"))) {
        spoof = argv[1][1] == 's';
        if (agent_parse_addr(argv[2], &src, &srcl, 0) < 0 ||
            (spoof && src.ss_family != AF_INET)) {
            fprintf(stderr, "pktsend: %s wants an address:port%s\n", argv[1],
                    spoof ? " (IPv4)" : "");
            return 2;
        }
        argv += 2;
        argc -= 2;
    }
    if (argc < 6) {
        fprintf(stderr, "usage: pktsend [-b FROM_ADDR | -s FROM_ADDR] TO_ADDR KEYFILE FROM_ID "
                        "TO_ID KIND [COUNT [PPS]]\n");
        return 2;
    }
    struct sockaddr_storage to;
    socklen_t tl;
    uint8_t key[32];
    char err[256];
    uint64_t from_id, to_id;
    if (sodium_init() < 0 || agent_parse_addr(argv[1], &to, &tl, 0) < 0 ||
        agent_key_load(argv[2], key, err, sizeof err) < 0 ||
        agent_parse_id(argv[3], &from_id) < 0 || agent_parse_id(argv[4], &to_id) < 0) {
        fprintf(stderr, "pktsend: bad arguments (%s)\n", err);
        return 2;
    }
    const char *kind = argv[5];
    long count = argc > 6 && !strncmp(kind, "flood", 5)
                     ? (long)test_arg_ll(argv[6], 1, INT_MAX, "pktsend: COUNT") : 5000;
    const char *hex = argc > 6 ? argv[6] : "";
    int fd = socket(to.ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        return 1;
    int raw = -1;
    if (srcl && !spoof) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
        if (bind(fd, (struct sockaddr *)&src, srcl) < 0) {
            perror("pktsend: bind");
            return 1;
        }
    }
    if (spoof) {
        if (to.ss_family != AF_INET) {
            fprintf(stderr, "pktsend: -s needs an IPv4 TO_ADDR\n");
            return 2;
        }
        raw = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); /* implies IP_HDRINCL */
        if (raw < 0) {
            perror("pktsend: raw socket (-s needs CAP_NET_RAW)");
            return 77;
        }
    }
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    struct netelect_pkt p = {.version = 1, .type = NETELECT_PKT_PING, .sender = from_id,
                             .receiver = to_id,
                             .sender_inc = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec,
                             .seq = 1, .ts = now_ns()};
    uint8_t buf[4096];
    randombytes_buf(buf, sizeof buf);
    size_t len = NETELECT_PKT_LEN;
    int sends = 1;
    if (!strcmp(kind, "garbage")) {
        buf[0] = 'X';
    } else if (!strcmp(kind, "flood")) {
        buf[0] = 'X';
        sends = (int)count;
    } else if (!strcmp(kind, "floodmac")) {
        if (agent_pkt_encode(&p, key, buf) < 0)
            return 1;
        buf[NETELECT_PKT_LEN - 1] ^= 1;
        sends = (int)count;
    } else {
        if (agent_pkt_encode(&p, key, buf) < 0)
            return 1;
        if (!strcmp(kind, "truncated"))
            len = NETELECT_PKT_LEN - 9;
        else if (!strcmp(kind, "oversized"))
            len = 2000;
        else if (!strcmp(kind, "badversion"))
            buf[4] = 7;
        else if (!strcmp(kind, "badmac"))
            buf[NETELECT_PKT_LEN - 1] ^= 1;
        else if (!strcmp(kind, "notforus")) {
            p.receiver = to_id + 1;
            agent_pkt_encode(&p, key, buf);
        } else if (!strcmp(kind, "badfields")) {
            /* authentic (a key holder made it) but type 9: hand-made header */
            buf[5] = 9;
            crypto_auth_hmacsha512256(buf + NETELECT_PKT_HDR_LEN, buf, NETELECT_PKT_HDR_LEN, key);
        } else if (!strcmp(kind, "staleinc")) {
            p.sender_inc = 1;
            agent_pkt_encode(&p, key, buf);
        } else if (!strcmp(kind, "replay")) {
            size_t bl = 0;
            if (sodium_hex2bin(buf, sizeof buf, hex, strlen(hex), NULL, &bl, NULL) != 0 ||
                bl != NETELECT_PKT_LEN) {
                fprintf(stderr, "pktsend: replay wants the hex of a captured packet\n");
                return 2;
            }
        } else if (strcmp(kind, "valid")) {
            fprintf(stderr, "pktsend: unknown kind %s\n", kind);
            return 2;
        }
    }
    long pps = argc > 7 ? (long)test_arg_ll(argv[7], 0, 100000000, "pktsend: PPS") : 0;
    uint64_t t0 = now_ns();
    for (int i = 0; i < sends; i++) {
        if (pps > 0 && i % 4 == 0) { /* small steps: a smooth flood, not bursts */
            uint64_t due = t0 + (uint64_t)i * 1000000000u / (uint64_t)pps;
            for (uint64_t t = now_ns(); t < due; t = now_ns()) {
                struct timespec ts = {0, (long)(due - t)};
                nanosleep(&ts, NULL);
            }
        }
        if (raw >= 0) {
            if (send_spoofed(raw, (struct sockaddr_in *)&src, (struct sockaddr_in *)&to, buf,
                             len) < 0) {
                if (errno == ENOBUFS || errno == EAGAIN) {
                    i--; /* the device queue is full: a flood goes on */
                    continue;
                }
                perror("pktsend: sendto (raw)");
                return 1;
            }
            continue;
        }
        if (sendto(fd, buf, len, 0, (struct sockaddr *)&to, tl) != (ssize_t)len) {
            perror("pktsend: sendto");
            return 1;
        }
    }
    if (!strcmp(kind, "valid")) {
        /* With -b the socket is the peer's configured address, where the
         * agent's own probes (authentic PINGs) and answers to earlier PINGs
         * arrive too: skip those, and wait for the answer to this one. */
        struct netelect_pkt q;
        for (int others = 0;; others++) {
            struct pollfd pf = {fd, POLLIN, 0};
            if (others > 16 || poll(&pf, 1, 2000) != 1) {
                fprintf(stderr, "pktsend: no PONG within 2 s (%d other packets of the agent's "
                                "seen)\n", others);
                return 1;
            }
            uint8_t in[256];
            ssize_t n = recv(fd, in, sizeof in, 0);
            int r = agent_pkt_decode(in, n < 0 ? 0 : (size_t)n, key, &q);
            if (r == 0 && (q.type == NETELECT_PKT_PING ||
                           (q.type == NETELECT_PKT_PONG && q.ack_seq != p.seq)))
                continue;
            if (r < 0 || q.type != NETELECT_PKT_PONG) {
                fprintf(stderr, "pktsend: bad PONG (%s, type %d)\n", agent_pkt_err_name(r),
                        r < 0 ? -1 : (int)q.type);
                return 1;
            }
            break;
        }
        char h[2 * NETELECT_PKT_LEN + 1];
        sodium_bin2hex(h, sizeof h, buf, NETELECT_PKT_LEN);
        printf("pong from %#llx\npacket %s\n", (unsigned long long)q.sender, h);
    }
    return 0;
}
