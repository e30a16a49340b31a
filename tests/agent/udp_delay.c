/* SPDX-License-Identifier: MIT */
/*
 * udp_delay: a delaying UDP relay for the netns tests (tc netem is not
 * available on the CI machines).  Datagrams from clients to LISTEN are sent
 * on to TARGET after DELAY; replies from TARGET go back to the client that
 * last sent, after DELAY again, so a round trip through it costs 2 x DELAY.
 * FIFO per direction (a constant delay never reorders).  It exits on
 * SIGTERM/SIGINT or after --max-seconds (default 300), so it never outlives
 * a test by much.
 *
 * --jitter MS adds a uniformly random extra delay in [0, MS) to each
 * datagram (xorshift seeded by --seed, default from the pid), still in FIFO
 * order: a datagram never leaves before one that came in earlier, so one
 * that queues behind a slower one is delayed a little more.
 *
 * usage: udp_delay LISTEN TARGET DELAY_MS [--max-seconds N] [--jitter MS] [--seed N]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/parse.h"
#include "tests/args.h"

#define QMAX 4096

struct pkt {
    uint64_t due;
    int up; /* 1: client -> target, 0: target -> client */
    size_t len;
    uint8_t data[1500];
};

static struct pkt q[QMAX];
static size_t qh, qn;
static volatile sig_atomic_t stop;

static void on_sig(int s)
{
    (void)s;
    stop = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng;
static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv)
{
    if (argc < 4 || (argc - 4) % 2) {
        fprintf(stderr, "usage: udp_delay LISTEN TARGET DELAY_MS [--max-seconds N] [--jitter MS] "
                        "[--seed N]\n");
        return 2;
    }
    int max_s = 300;
    double jitter_ms = 0;
    rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    for (int i = 4; i < argc; i += 2) {
        if (!strcmp(argv[i], "--max-seconds"))
            max_s = (int)test_arg_ll(argv[i + 1], 1, 86400, "udp_delay: --max-seconds");
        else if (!strcmp(argv[i], "--jitter"))
            jitter_ms = test_arg_d(argv[i + 1], 0, 60000, "udp_delay: --jitter");
        else if (!strcmp(argv[i], "--seed"))
            rng = (uint64_t)test_arg_ll(argv[i + 1], 1, LLONG_MAX, "udp_delay: --seed");
        else {
            fprintf(stderr, "udp_delay: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    const uint64_t jitter = (uint64_t)(jitter_ms * 1e6);
    struct sockaddr_storage la, ta, ca;
    socklen_t ll, tl, cl = 0;
    if (agent_parse_addr(argv[1], &la, &ll, 0) < 0 || agent_parse_addr(argv[2], &ta, &tl, 0) < 0) {
        fprintf(stderr, "udp_delay: bad address\n");
        return 2;
    }
    double delay_ms = test_arg_d(argv[3], 0, 60000, "udp_delay: DELAY_MS");
    uint64_t delay = (uint64_t)(delay_ms * 1e6);
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    int ls = socket(la.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int us = socket(ta.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (ls < 0 || us < 0 || bind(ls, (struct sockaddr *)&la, ll) < 0) {
        perror("udp_delay: socket/bind");
        return 1;
    }
    uint64_t end = now_ns() + (uint64_t)max_s * 1000000000u;
    printf("udp_delay: %s -> %s, %.3f ms each way, + [0, %.3f ms) jitter\n", argv[1], argv[2],
           delay_ms, jitter_ms);
    fflush(stdout);
    while (!stop && now_ns() < end) {
        uint64_t now = now_ns();
        while (qn && q[qh].due <= now) {
            struct pkt *p = &q[qh];
            if (p->up)
                sendto(us, p->data, p->len, 0, (struct sockaddr *)&ta, tl);
            else if (cl)
                sendto(ls, p->data, p->len, 0, (struct sockaddr *)&ca, cl);
            qh = (qh + 1) % QMAX;
            qn--;
        }
        int timeout = 100;
        if (qn) {
            uint64_t d = q[qh].due > now ? q[qh].due - now : 0;
            timeout = (int)(d / 1000000u);
        }
        struct pollfd pf[2] = {{ls, POLLIN, 0}, {us, POLLIN, 0}};
        /* sub-millisecond precision: poll for the whole ms, then spin-sleep the rest */
        int r = poll(pf, 2, timeout);
        if (r < 0 && errno != EINTR)
            return 1;
        if (r <= 0 && qn) {
            uint64_t t = now_ns();
            if (q[qh].due > t) {
                struct timespec ts = {0, (long)(q[qh].due - t)};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        for (int i = 0; i < 2; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            for (;;) {
                if (qn == QMAX)
                    break; /* full: leave it in the socket buffer */
                struct pkt *p = &q[(qh + qn) % QMAX];
                struct sockaddr_storage from;
                socklen_t fl = sizeof from;
                ssize_t n = recvfrom(pf[i].fd, p->data, sizeof p->data, 0, (struct sockaddr *)&from, &fl);
                if (n < 0)
                    break;
                if (i == 0) {
                    ca = from;
                    cl = fl;
                }
                p->len = (size_t)n;
                p->up = i == 0;
                p->due = now_ns() + delay + (jitter ? xorshift() % jitter : 0);
                if (qn && p->due < q[(qh + qn - 1) % QMAX].due) /* FIFO: not before the last one */
                    p->due = q[(qh + qn - 1) % QMAX].due;
                qn++;
            }
        }
    }
    return 0;
}
