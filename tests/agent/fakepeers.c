/* SPDX-License-Identifier: MIT */
/*
 * fakepeers: answers, on one UDP socket, the PINGs a netelectd sends to any
 * number of peers configured at this address (each with its own node id), so
 * one process stands in for thousands of peers in the scale test.
 *
 * usage: fakepeers LISTEN KEYFILE [--max-seconds N]
 * Exits on SIGTERM/SIGINT or after N seconds (default 120).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
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

static volatile sig_atomic_t stop;
static void on_sig(int s)
{
    (void)s;
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: fakepeers LISTEN KEYFILE [--max-seconds N]\n");
        return 2;
    }
    struct sockaddr_storage la;
    socklen_t ll;
    uint8_t key[32];
    char err[256];
    if (sodium_init() < 0 || agent_parse_addr(argv[1], &la, &ll, 0) < 0 ||
        agent_key_load(argv[2], key, err, sizeof err) < 0) {
        fprintf(stderr, "fakepeers: bad arguments %s\n", err);
        return 2;
    }
    int max_s = argc == 5 ? (int)test_arg_ll(argv[4], 1, 86400, "fakepeers: MAX_SECONDS") : 120;
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    int fd = socket(la.ss_family, SOCK_DGRAM, 0);
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (fd < 0 || bind(fd, (struct sockaddr *)&la, ll) < 0) {
        perror("fakepeers: bind");
        return 1;
    }
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    uint64_t inc = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec, seq = 0, answered = 0;
    time_t end = time(NULL) + max_s;
    while (!stop && time(NULL) < end) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        uint8_t buf[256], out[NETELECT_PKT_LEN];
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        struct netelect_pkt p;
        if (n < 0 || agent_pkt_decode(buf, (size_t)n, key, &p) < 0 || p.type != NETELECT_PKT_PING)
            continue;
        struct netelect_pkt q = {.version = 1, .type = NETELECT_PKT_PONG, .sender = p.receiver,
                                 .receiver = p.sender, .sender_inc = inc,
                                 .receiver_inc = p.sender_inc, .seq = ++seq, .ts = 1,
                                 .ack_seq = p.seq, .ack_ts = p.ts};
        if (agent_pkt_encode(&q, key, out) == 0 &&
            sendto(fd, out, sizeof out, 0, (struct sockaddr *)&from, fl) == (ssize_t)sizeof out)
            answered++;
    }
    printf("fakepeers: answered %llu PINGs\n", (unsigned long long)answered);
    return 0;
}
