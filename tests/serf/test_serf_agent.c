/* SPDX-License-Identifier: MIT */
/*
 * netelectd against a fake Serf (the glue's part of the trust rules): the
 * agent is started on a config whose [serf] rpc_addr is a listener of this
 * test (same uid, so trusted), which answers the client's requests with a
 * member snapshot holding, besides this host's own member:
 *  - "evil", claiming this host's node id with channel "other";
 *  - "b", claiming another member's id with channel "dupch";
 *  - "c", listing more channels than [serf] max_channels allows.
 * The published view must hold this host only in its own channels, no
 * "other" or "dupch" channel, and no more channels than the cap.
 * Usage: test_serf_agent PATH/TO/netelectd.  Exit 0 pass, 1 fail, 77 skip.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netelect.h"
#include "tests/serf/helpers.h"

#define SELF 0x10u
#define MAX_CHANS 3

static int failures;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL: " __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int tcp_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static uint16_t free_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0)
        return 0;
    close(fd);
    return ntohs(a.sin_port);
}

static const struct tmember members[] = {
    {"self", "0x10", "mine", "alive", {127, 0, 0, 1}, 7946},
    {"evil", "0x10", "other", "alive", {127, 0, 0, 9}, 7946}, /* would move this host */
    {"a", "0x20", "mine", "alive", {127, 0, 0, 2}, 7946},
    {"b", "0x20", "dupch", "alive", {127, 0, 0, 3}, 7946},
    {"c", "0x30", "c1,c2,c3,c4,c5", "alive", {127, 0, 0, 4}, 7946},
};

/* Answers one request; `cmd` and `seq` from its header. */
static void answer(struct mp *m, const char *cmd, uint64_t seq)
{
    mp_header(m, seq, NULL);
    if (!strcmp(cmd, "stats")) {
        mp_stats_body(m, "self");
    } else if (!strcmp(cmd, "members")) {
        mp_members_body(m, members, sizeof(members) / sizeof(members[0]));
    } else if (!strcmp(cmd, "members-filtered")) {
        mp_members_body(m, NULL, 0);
    } else if (!strcmp(cmd, "get-coordinate")) {
        struct netelect_serf_coord c = {.dim = 0};
        mp_coord_body(m, &c, 0);
    }
}

static bool has_body(const char *cmd)
{
    return strcmp(cmd, "stats") != 0 && strcmp(cmd, "members") != 0;
}

/* Serves the connection c until `until_ms`. */
static void serve(int c, uint64_t until_ms)
{
    msgpack_unpacker u;
    msgpack_unpacker_init(&u, 65536);
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    struct mp m;
    mp_init(&m);
    char cmd[64] = "";
    uint64_t seq = 0;
    bool want_body = false;
    while (mono_ms() < until_ms) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        msgpack_unpacker_reserve_buffer(&u, 65536);
        ssize_t n = recv(c, msgpack_unpacker_buffer(&u), 65536, 0);
        if (n <= 0)
            break;
        msgpack_unpacker_buffer_consumed(&u, (size_t)n);
        while (msgpack_unpacker_next(&u, &res) == MSGPACK_UNPACK_SUCCESS) {
            msgpack_object o = res.data;
            if (want_body) {
                want_body = false;
                answer(&m, cmd, seq);
                continue;
            }
            if (o.type != MSGPACK_OBJECT_MAP)
                continue;
            for (uint32_t i = 0; i < o.via.map.size; i++) {
                msgpack_object k = o.via.map.ptr[i].key, v = o.via.map.ptr[i].val;
                if (k.type != MSGPACK_OBJECT_STR)
                    continue;
                if (k.via.str.size == 7 && !memcmp(k.via.str.ptr, "Command", 7) &&
                    v.type == MSGPACK_OBJECT_STR)
                    snprintf(cmd, sizeof(cmd), "%.*s", (int)v.via.str.size, v.via.str.ptr);
                else if (k.via.str.size == 3 && !memcmp(k.via.str.ptr, "Seq", 3))
                    seq = v.via.u64;
            }
            if (has_body(cmd))
                want_body = true;
            else
                answer(&m, cmd, seq);
        }
        if (m.sb.size) {
            (void)!send(c, m.sb.data, m.sb.size, MSG_NOSIGNAL);
            msgpack_sbuffer_clear(&m.sb);
        }
    }
    mp_free(&m);
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&u);
}

struct seen {
    size_t n_chans;
    bool self_in_mine, a_in_mine, other, dupch, self_elsewhere;
    char names[512];
};

static int chan_cb(void *ctx, const char *name, const uint64_t *ids, size_t n)
{
    struct seen *s = ctx;
    s->n_chans++;
    size_t l = strlen(s->names);
    snprintf(s->names + l, sizeof(s->names) - l, "%s%s", l ? "," : "", name);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(name, "mine") && ids[i] == SELF)
            s->self_in_mine = true;
        if (!strcmp(name, "mine") && ids[i] == 0x20)
            s->a_in_mine = true;
        if (strcmp(name, "mine") && ids[i] == SELF)
            s->self_elsewhere = true;
    }
    if (!strcmp(name, "other"))
        s->other = true;
    if (!strcmp(name, "dupch"))
        s->dupch = true;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/TO/netelectd\n", argv[0]);
        return 2;
    }
    char dir[] = "/tmp/netelect-serf-agent-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    uint16_t port = 0;
    int l = tcp_listener(&port);
    uint16_t udp = free_udp_port();
    if (l < 0 || !udp) {
        perror("listener");
        return 1;
    }
    char shm[64], conf[256], logp[256];
    snprintf(shm, sizeof(shm), "netelect-serftest-%d", (int)getpid());
    snprintf(conf, sizeof(conf), "%s/agent.conf", dir);
    snprintf(logp, sizeof(logp), "%s/agent.log", dir);
    FILE *f = fopen(conf, "w");
    if (!f)
        return 1;
    fprintf(f,
            "[agent]\nnode_id = %#x\nlisten = 127.0.0.1:%u\ncontrol = %s/ctl\nlog_level = info\n"
            "[segment]\nname = %s\n"
            "[serf]\nenabled = yes\nrpc_addr = 127.0.0.1:%u\nstatus_poll = off\n"
            "coord_period = 3600s\nmax_channels = %d\n",
            SELF, udp, dir, shm, port, MAX_CHANS);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *lf = freopen(logp, "w", stderr);
        (void)lf;
        dup2(2, 1);
        execl(argv[1], argv[1], "--config", conf, (char *)NULL);
        _exit(127);
    }
    struct pollfd p = {.fd = l, .events = POLLIN};
    int c = poll(&p, 1, 10000) == 1 ? accept(l, NULL, NULL) : -1;
    CHECK(c >= 0, "netelectd did not connect to the fake Serf");
    struct seen s = {0};
    if (c >= 0) {
        uint64_t end = mono_ms() + 8000;
        while (mono_ms() < end) {
            serve(c, mono_ms() + 100);
            struct netelect_view *v;
            if (netelect_view_open(shm, &v) < 0)
                continue;
            memset(&s, 0, sizeof(s));
            netelect_view_foreach_channel(v, chan_cb, &s);
            netelect_view_close(v);
            if (s.self_in_mine && s.a_in_mine && s.n_chans >= MAX_CHANS)
                break;
        }
        serve(c, mono_ms() + 300); /* anything more would show now */
        struct netelect_view *v;
        if (netelect_view_open(shm, &v) == 0) {
            memset(&s, 0, sizeof(s));
            netelect_view_foreach_channel(v, chan_cb, &s);
            netelect_view_close(v);
        }
        printf("channels in the view: %s\n", s.names);
        CHECK(s.self_in_mine && s.a_in_mine, "'mine' lacks this host or 0x20");
        CHECK(!s.self_elsewhere, "a member claiming this host's id put it in another channel");
        CHECK(!s.other, "channel 'other' from the impostor of this host's id exists");
        CHECK(!s.dupch, "channel 'dupch' from a duplicate id's member exists");
        CHECK(s.n_chans <= MAX_CHANS, "%zu channels over [serf] max_channels = %d", s.n_chans,
              MAX_CHANS);
        close(c);
    }
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    char line[512];
    f = fopen(logp, "r");
    while (f && fgets(line, sizeof(line), f))
        if (failures || strstr(line, "serf:"))
            fprintf(stderr, "  agent: %s", line);
    if (f)
        fclose(f);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' /dev/shm/%s /dev/shm/%s.lock /dev/shm/%s.readers", dir,
             shm, shm, shm);
    (void)!system(cmd);
    printf("%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
