/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a Unix stream socket (default /run/netelect/control,
 * mode 0660, group control_group), one JSON request per line, one JSON reply
 * per line (protocol: agent/control_proto.h).
 *
 * Who may do what is decided from SO_PEERCRED at accept time: root, the
 * agent's own uid and members of control_group may change state; anyone who
 * can connect may read (ping, stats).  The socket's mode keeps out everyone
 * else.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/clock.h"
#include "agent/control_proto.h"
#include "agent/evfd.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/reload.h"
#include "agent/udp.h"

/*
 * Connection limits (agent/README.md, "Control socket"): at most MAX_CLIENTS
 * at once, the last ROOT_SLOTS of them for root only, and at most
 * [agent] control_clients_per_uid per other uid; a request line must be
 * complete within control_request_timeout of its first byte, and a
 * connection with nothing to read or write closes after
 * control_idle_timeout.  So half-open requests from one user cannot lock
 * out another, and nothing can lock out root.
 */
#define MAX_CLIENTS 128
#define ROOT_SLOTS 1
#define MAX_OUT (1u << 20)

struct client {
    struct client *next;
    int fd;
    struct ucred cred;
    bool privileged;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off;
    bool closing; /* close once out is flushed */
    uint64_t active_ns;  /* connected, last request completed or last reply bytes sent */
    uint64_t partial_ns; /* first byte of the unfinished request line (0: none) */
};

static int mkdir_p(const char *dir, mode_t mode)
{
    char tmp[108];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int agent_control_open(struct agent *a)
{
    const char *path = a->cfg.control_path;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        LOG_E("control socket path %s is too long", path);
        return -ENAMETOOLONG;
    }
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    char dcopy[108];
    snprintf(dcopy, sizeof dcopy, "%s", path);
    int r = mkdir_p(dirname(dcopy), 0755);
    if (r < 0) {
        LOG_E("cannot create the directory of control socket %s: %s", path, strerror(-r));
        return r;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* A socket left by a dead agent is removed; a live one means another
     * agent owns this path, and we must not steal it. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            LOG_E("control socket path %s exists and is not a socket", path);
            close(fd);
            return -EEXIST;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0) {
            close(probe);
            close(fd);
            LOG_E("another agent is listening on control socket %s", path);
            return -EADDRINUSE;
        }
        if (probe >= 0)
            close(probe);
        unlink(path);
    }
    mode_t old = umask(0117);
    r = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (r < 0 || listen(fd, 64) < 0) {
        r = -errno;
        LOG_E("control socket %s: %s", path, strerror(-r));
        close(fd);
        return r;
    }
    if (chmod(path, 0660) < 0)
        LOG_W("chmod 0660 %s: %s", path, strerror(errno));
    if (a->ctl_gid != (gid_t)-1 && chown(path, (uid_t)-1, a->ctl_gid) < 0)
        LOG_W("chgrp %s to gid %u: %s", path, (unsigned)a->ctl_gid, strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_TAG(EV_CTL, 0)};
    if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        DIE("epoll_ctl(control): %s", strerror(errno));
    a->ctl_fd = fd;
    a->ctl_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event tev = {.events = EPOLLIN, .data.u64 = EV_TAG(EV_CTL_T, 0)};
    if (a->ctl_tfd < 0 || epoll_ctl(a->ep, EPOLL_CTL_ADD, a->ctl_tfd, &tev) < 0)
        DIE("control timer: %s", strerror(errno));
    return 0;
}

static uint64_t client_deadline(const struct agent *a, const struct client *c)
{
    return c->partial_ns ? c->partial_ns + a->cfg.control_request_timeout_ns
                         : c->active_ns + a->cfg.control_idle_timeout_ns;
}

/* Arms the control timer for the earliest client deadline (or disarms it). */
static void arm_timer(struct agent *a)
{
    uint64_t next = 0;
    for (struct client *c = a->clients; c; c = c->next) {
        uint64_t d = client_deadline(a, c);
        if (!next || d < next)
            next = d;
    }
    agent_timer_arm(a->ctl_tfd, next);
}

static void client_free(struct agent *a, struct client *c)
{
    epoll_ctl(a->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    for (struct client **pp = &a->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    a->n_clients--;
    free(c);
}

void agent_control_close(struct agent *a)
{
    while (a->clients)
        client_free(a, a->clients);
    if (a->ctl_tfd >= 0) {
        close(a->ctl_tfd);
        a->ctl_tfd = -1;
    }
    if (a->ctl_fd >= 0) {
        close(a->ctl_fd);
        a->ctl_fd = -1;
        unlink(a->cfg.control_path);
    }
}

static bool in_group(pid_t pid, gid_t gid)
{
    /* SO_PEERCRED carries only the primary gid; supplementary groups come
     * from the connecting process's status file. */
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "Groups:", 7))
            continue;
        char *save = NULL;
        for (char *t = strtok_r(line + 7, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save))
            if ((gid_t)strtoul(t, NULL, 10) == gid)
                found = true;
        break;
    }
    fclose(f);
    return found;
}

/* Answers a connection we will not serve with one error line, and closes it. */
static void refuse(struct agent *a, int fd, const char *why)
{
    char line[256];
    int n = snprintf(line, sizeof line, "{\"ok\":false,\"error\":\"%s\",\"errno\":%d}\n", why,
                     -EBUSY);
    ssize_t wr = send(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1,
                      MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)wr;
    close(fd);
    a->stats.ctl_refused++;
}

void agent_control_accept(struct agent *a)
{
    for (;;) {
        int fd = accept4(a->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                LOG_W("control accept: %s", strerror(errno));
            break;
        }
        struct ucred cred;
        socklen_t l = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &l) < 0) {
            close(fd);
            continue;
        }
        char why[160];
        if (a->n_clients >= MAX_CLIENTS) {
            refuse(a, fd, "too many control clients");
            continue;
        }
        if (cred.uid != 0) {
            size_t mine = 0;
            for (struct client *o = a->clients; o; o = o->next)
                mine += o->cred.uid == cred.uid;
            if (a->n_clients >= MAX_CLIENTS - ROOT_SLOTS) {
                refuse(a, fd, "too many control clients (the last slot is kept for root)");
                continue;
            }
            if (mine >= a->cfg.control_per_uid) {
                snprintf(why, sizeof why, "uid %u already has %zu control connections "
                                          "([agent] control_clients_per_uid = %u)",
                         (unsigned)cred.uid, mine, (unsigned)a->cfg.control_per_uid);
                if (mine == a->cfg.control_per_uid) /* once per burst, not per attempt */
                    LOG_W("control: %s", why);
                refuse(a, fd, why);
                continue;
            }
        }
        struct client *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->cred = cred;
        c->fd = fd;
        c->active_ns = agent_now_ns();
        c->privileged = c->cred.uid == 0 || c->cred.uid == geteuid() ||
                        (a->ctl_gid != (gid_t)-1 &&
                         (c->cred.gid == a->ctl_gid || in_group(c->cred.pid, a->ctl_gid)));
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_TAG(EV_CLIENT, c)};
        if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            DIE("epoll_ctl(client): %s", strerror(errno));
        c->next = a->clients;
        a->clients = c;
        a->n_clients++;
        a->stats.ctl_clients++;
    }
    arm_timer(a);
}

void agent_control_timer(struct agent *a)
{
    uint64_t now = agent_now_ns();
    for (struct client *c = a->clients, *next; c; c = next) {
        next = c->next;
        if (client_deadline(a, c) > now)
            continue;
        char line[192];
        int n = snprintf(line, sizeof line,
                         "{\"ok\":false,\"error\":\"%s: closing the connection\",\"errno\":%d}\n",
                         c->partial_ns ? "request line not completed in time"
                                       : "idle for too long",
                         -ETIMEDOUT);
        ssize_t wr = send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)wr;
        LOG_D("control: closing uid %u's connection: %s", (unsigned)c->cred.uid,
              c->partial_ns ? "request not completed in time" : "idle");
        a->stats.ctl_timeouts++;
        client_free(a, c);
    }
    arm_timer(a);
}

static json_t *err_reply(int code, const char *msg)
{
    return json_pack("{s:b, s:s, s:i}", "ok", 0, "error", msg, "errno", code);
}

static void queue_reply(struct agent *a, struct client *c, json_t *reply)
{
    char *s = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    if (!s)
        DIE("out of memory formatting a control reply");
    size_t l = strlen(s);
    if (l + 1 > MAX_OUT) {
        /* Never silently: one reply this big is an error the client sees
         * (stats is paged so that it cannot get here). */
        free(s);
        s = NULL;
        char msg[128];
        snprintf(msg, sizeof msg, "reply of %zu bytes exceeds the control socket's %u-byte limit",
                 l + 1, MAX_OUT);
        LOG_W("control: %s", msg);
        queue_reply(a, c, err_reply(-E2BIG, msg));
        return;
    }
    if (c->out_len + l + 1 > MAX_OUT) {
        /* A client that never reads its replies is dropped, not buffered forever. */
        free(s);
        c->closing = true;
        return;
    }
    char *np = realloc(c->out, c->out_len + l + 1);
    if (!np)
        DIE("out of memory queueing a control reply");
    c->out = np;
    memcpy(c->out + c->out_len, s, l);
    c->out[c->out_len + l] = '\n';
    c->out_len += l + 1;
    free(s);
    (void)a;
}


/* The drain state, as stats and the drain verbs report it. */
static void drain_state(const struct agent *a, json_t *r)
{
    json_t *names = json_array();
    for (size_t i = 0; i < a->n_drained; i++)
        json_array_append_new(names, json_string(a->drained[i]));
    json_object_set_new(r, "drain_all", json_boolean(a->drain_all));
    json_object_set_new(r, "drained_channels", names);
}

/* Ids as the CLI prints them: "0x" and lower-case hex. */
static char *id_str(uint64_t id, char *buf)
{
    snprintf(buf, 24, "0x%llx", (unsigned long long)id);
    return buf;
}

/* An RTT, or null when unknown (never measured). */
static json_t *rtt_json(uint64_t ns)
{
    return ns == NETELECT_RTT_UNKNOWN ? json_null()
                                      : json_integer(ns > INT64_MAX ? INT64_MAX : (json_int_t)ns);
}

static int cmp_node_id(const void *x, const void *y)
{
    const struct node *p = *(struct node *const *)x, *q = *(struct node *const *)y;
    return p->id < q->id ? -1 : p->id > q->id;
}

/* The counters, and one page of peers: those with ids above `after`, in id
 * order, at most `limit`; "peers_next" says where the next page starts. */
static json_t *stats_reply(struct agent *a, uint64_t after, size_t limit)
{
    char b[64];
    if (!after) /* the first page also lists every channel's leader */
        limit = agent_metrics_first_page(a, limit);
    json_t *drops = json_object();
    for (int i = 0; i < DROP_N; i++)
        json_object_set_new(drops, agent_drop_names[i], json_integer((json_int_t)a->stats.drop[i]));
    json_t *peers = json_array();
    /* An array of node pointers: sizeof *sel is a pointer's size on purpose. */
    struct node **sel = malloc((a->n_nodes ? a->n_nodes : 1) * sizeof *sel); // NOLINT(bugprone-sizeof-expression)
    if (!sel)
        DIE("out of memory listing %zu peers", a->n_nodes);
    size_t ns = 0;
    for (size_t i = 0; i < a->tab_cap; i++)
        if (a->tab[i] && a->tab[i]->id > after)
            sel[ns++] = a->tab[i];
    qsort(sel, ns, sizeof *sel, cmp_node_id); // NOLINT(bugprone-sizeof-expression)
    size_t shown = ns < limit ? ns : limit;
    for (size_t i = 0; i < shown; i++) {
        struct node *n = sel[i];
        struct netelect_wnode w = agent_node_view(a, n);
        char ab[80] = "";
        if (n->probed)
            agent_fmt_addr((struct sockaddr *)&n->addr, ab, sizeof ab);
        json_t *p = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:b, s:b, s:b}",
                              "id", id_str(n->id, b), "addr", ab, "healthy", w.healthy,
                              "rtt_ns", (json_int_t)0,
                              "samples", (json_int_t)n->probe.samples, "sent", (json_int_t)n->probe.sent,
                              "missed", (json_int_t)n->probe.missed, "flaps", (json_int_t)n->probe.flaps,
                              "miss_run", (json_int_t)n->probe.miss_run,
                              "flap_penalty", agent_probe_penalty(&n->probe, &a->probe_params, agent_now_ns()),
                              "rtt_override", n->rtt_ovr, "health_override", n->health_ovr,
                              "serf", n->serf_known);
        /* Unknown RTTs are null (docs/json.md: one form per concept). */
        json_object_set_new(p, "rtt_ns", rtt_json(w.rtt_ns));
        /* The estimate itself: differs from rtt_ns while RTT hysteresis holds
         * the published value. */
        uint64_t est = n->probed && n->probe.samples ? n->probe.srtt_ns
                       : n->serf_has_rtt          ? n->serf_rtt_ns
                                                  : NETELECT_RTT_UNKNOWN;
        json_object_set_new(p, "rtt_estimate_ns", rtt_json(est));
        json_array_append_new(peers, p);
    }
    uint64_t next = shown < ns ? sel[shown - 1]->id : 0;
    free(sel);
    json_t *r = json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:s}",
        "ok", 1, "self", id_str(a->self, b),
        "generation", (json_int_t)(a->writer ? netelect__writer_generation(a->writer) : 0),
        "nodes", (json_int_t)a->n_nodes, "channels", (json_int_t)a->n_chans,
        "rx", (json_int_t)a->stats.rx, "rx_ok", (json_int_t)a->stats.rx_ok,
        "tx_ping", (json_int_t)a->stats.tx_ping, "tx_pong", (json_int_t)a->stats.tx_pong,
        "tx_err", (json_int_t)a->stats.tx_err, "publishes", (json_int_t)a->stats.publishes,
        "publish_errors", (json_int_t)a->stats.publish_err, "heartbeats", (json_int_t)a->stats.heartbeats,
        "ctl_requests", (json_int_t)a->stats.ctl_requests, "ctl_errors", (json_int_t)a->stats.ctl_errors,
        "ctl_denied", (json_int_t)a->stats.ctl_denied, "reloads", (json_int_t)a->stats.reloads,
        "reload_failures", (json_int_t)a->stats.reload_failures,
        "health_changes", (json_int_t)a->stats.health_changes,
        "drops", drops, "peers", peers, "config", a->cfg.source);
    json_object_set_new(r, "peer_restarts", json_integer((json_int_t)a->stats.peer_restarts));
    json_object_set_new(r, "publishes_delta", json_integer((json_int_t)a->stats.publishes_delta));
    if (next)
        json_object_set_new(r, "peers_next", json_string(id_str(next, b)));
    json_object_set_new(r, "ctl_refused", json_integer((json_int_t)a->stats.ctl_refused));
    json_object_set_new(r, "ctl_timeouts", json_integer((json_int_t)a->stats.ctl_timeouts));
    json_object_set_new(r, "uptime_ns", json_integer((json_int_t)(agent_now_ns() - a->start_ns)));
    json_object_set_new(r, "serf_connected", json_boolean(a->serf_up));
    json_object_set_new(r, "publish_delay_last_ns", json_integer((json_int_t)a->stats.pub_delay_last_ns));
    json_object_set_new(r, "publish_delay_max_ns", json_integer((json_int_t)a->stats.pub_delay_max_ns));
    drain_state(a, r);
    if (!after)
        agent_metrics_stats(a, r);
    return r;
}

json_t *agent_control_stats(struct agent *a)
{
    return stats_reply(a, 0, SIZE_MAX);
}

/*
 * drain / undrain: this node stops being a candidate (it is published as
 * unhealthy) in one channel or in all, until undrained or the agent restarts;
 * a reload keeps it.  A channel must exist and have this node as a member
 * (a typo must not look like a drain); undraining one channel while the
 * node is drained from all is refused rather than silently doing nothing.
 */
static json_t *cmd_drain(struct agent *a, const struct client *c, const struct netelect_ctl_req *q)
{
    char err[256];
    const bool on = q->verb == NETELECT_CTL_DRAIN;
    const char *name = q->has_channel ? q->name : NULL;
    if (name) {
        struct chan *ch = agent_chan_find(a, name);
        if (on && !ch) {
            snprintf(err, sizeof err, "no such channel '%s'", name);
            return err_reply(NETELECT_ENOCHAN, err);
        }
        if (on && !agent_chan_member(ch, a->self)) {
            snprintf(err, sizeof err, "this node (%#llx) is not a member of channel '%s': "
                     "there is nothing to drain", (unsigned long long)a->self, name);
            return err_reply(-EINVAL, err);
        }
        if (!on && a->drain_all) {
            snprintf(err, sizeof err, "this node is drained from every channel: `netelect "
                     "undrain` (no channel) ends that, then drain the channels to keep drained");
            return err_reply(-EINVAL, err);
        }
    }
    int r = agent_drain(a, name, on);
    if (r < 0)
        return err_reply(r, "out of memory");
    if (r > 0)
        LOGA_N(0, NULL, name, "%s: node %#llx %s %s%s%s (uid %u)%s", on ? "drain" : "undrain",
              (unsigned long long)a->self,
              on ? "is no longer a candidate in" : "is a candidate again in",
              name ? "channel '" : "every channel", name ? name : "", name ? "'" : "",
              (unsigned)c->cred.uid, on ? "; until undrained or netelectd restarts" : "");
    else
        LOG_I("%s %s: no change (uid %u)", on ? "drain" : "undrain", name ? name : "(all)",
              (unsigned)c->cred.uid);
    json_t *rep = json_pack("{s:b, s:b}", "ok", 1, "changed", r > 0);
    drain_state(a, rep);
    return rep;
}

static json_t *cmd_ping(struct agent *a, const struct client *c, const struct netelect_ctl_req *q)
{
    (void)a, (void)c, (void)q;
    return json_pack("{s:b}", "ok", 1);
}

static json_t *cmd_stats(struct agent *a, const struct client *c, const struct netelect_ctl_req *q)
{
    (void)c;
    return stats_reply(a, q->after, q->limit);
}

static json_t *cmd_peer_add(struct agent *a, const struct client *c,
                            const struct netelect_ctl_req *q)
{
    char err[256];
    struct node *n;
    if (!a->have_key || a->udp < 0)
        return err_reply(-ENOKEY, "no key_file is configured, so this agent does not probe: "
                                  "set [agent] key_file and restart");
    if (q->addr.ss_family == AF_INET6 && a->cfg.listen_addr.ss_family == AF_INET)
        return err_reply(-EAFNOSUPPORT, "an IPv6 peer needs an IPv6 listen address "
                                        "([::]:port reaches both)");
    if (agent_node_get_limited(a, q->id, &n, err, sizeof err) < 0)
        return err_reply(-ENOSPC, err);
    n->orig |= ORIG_CTL;
    agent_node_set_addr(a, n, &q->addr, q->addrlen);
    LOGA_I(q->id, (const struct sockaddr *)&q->addr, NULL, "control: peer %#llx at %s added (uid %u)",
           (unsigned long long)q->id,
          agent_fmt_addr((const struct sockaddr *)&q->addr, err, sizeof err), (unsigned)c->cred.uid);
    return json_pack("{s:b}", "ok", 1);
}

static json_t *cmd_peer_remove(struct agent *a, const struct client *c,
                               const struct netelect_ctl_req *q)
{
    struct node *n = agent_node_find(a, q->id);
    if (!n || !(n->orig & (ORIG_CFG | ORIG_CTL)))
        return err_reply(-ENOENT, "no such peer");
    /* Both origins go: the operator asked for it (a reload brings a
     * configured peer back). */
    agent_node_forget_orig(a, n, ORIG_CFG | ORIG_CTL);
    LOGA_I(q->id, NULL, NULL, "control: peer %#llx removed (uid %u)", (unsigned long long)q->id, (unsigned)c->cred.uid);
    return json_pack("{s:b}", "ok", 1);
}

static json_t *cmd_channel_add(struct agent *a, const struct client *c,
                               const struct netelect_ctl_req *q)
{
    char err[256];
    /* All or nothing: the limits are checked for the whole request
     * before anything changes (the parser refused duplicates). */
    struct chan *ch = agent_chan_find(a, q->name);
    size_t fresh = 0;
    for (size_t i = 0; i < q->n_members; i++)
        fresh += !ch || !agent_chan_member(ch, q->members[i] ? q->members[i] : a->self);
    if ((!ch && agent_limit_chans(a, 1, err, sizeof err) < 0) ||
        agent_limit_members(a, ch, fresh, err, sizeof err) < 0)
        return err_reply(-ENOSPC, err);
    if (!ch)
        ch = agent_chan_get(a, q->name);
    for (size_t i = 0; i < q->n_members; i++)
        if (agent_chan_add_member(a, ch, q->members[i] ? q->members[i] : a->self,
                                      ORIG_CTL) < 0)
            DIE("out of memory adding a channel member");
    LOGA_I(0, NULL, q->name, "control: channel %s: %zu member(s) added (uid %u)", q->name, q->n_members,
          (unsigned)c->cred.uid);
    return json_pack("{s:b, s:I}", "ok", 1, "members", (json_int_t)ch->n);
}

static json_t *cmd_channel_remove(struct agent *a, const struct client *c,
                                  const struct netelect_ctl_req *q)
{
    struct chan *ch = agent_chan_find(a, q->name);
    if (!ch)
        return err_reply(NETELECT_ENOCHAN, "no such channel");
    if (!q->has_members) {
        agent_chan_remove(a, ch);
        LOGA_I(0, NULL, q->name, "control: channel %s removed (uid %u)", q->name, (unsigned)c->cred.uid);
        return json_pack("{s:b}", "ok", 1);
    }
    for (size_t i = 0; i < q->n_members; i++)
        agent_chan_remove_member(a, ch, q->members[i] ? q->members[i] : a->self);
    LOGA_I(0, NULL, q->name, "control: channel %s: member(s) removed (uid %u)", q->name, (unsigned)c->cred.uid);
    return json_pack("{s:b, s:I}", "ok", 1, "members", (json_int_t)ch->n);
}

/* set-rtt and set-health: an operator override on a node, which the
 * request creates (within the node limit) if the agent does not know it. */
static json_t *cmd_override(struct agent *a, const struct client *c,
                            const struct netelect_ctl_req *q, bool rtt)
{
    char err[256];
    struct node *n;
    if (agent_node_get_limited(a, q->id, &n, err, sizeof err) < 0)
        return err_reply(-ENOSPC, err);
    n->orig |= ORIG_CTL;
    if (rtt) {
        n->rtt_ovr = true;
        n->rtt_ovr_ns = q->rtt_ns;
    } else {
        n->health_ovr = true;
        n->health_ovr_val = (uint8_t)q->healthy;
    }
    agent_node_changed(a, n);
    if (rtt)
        LOGA_I(q->id, NULL, NULL, "control: rtt of %#llx overridden to %llu ns (uid %u)",
               (unsigned long long)q->id, (unsigned long long)q->rtt_ns, (unsigned)c->cred.uid);
    else
        LOGA_I(q->id, NULL, NULL, "control: health of %#llx overridden to %s (uid %u)",
               (unsigned long long)q->id, q->healthy ? "healthy" : "unhealthy", (unsigned)c->cred.uid);
    return json_pack("{s:b}", "ok", 1);
}

static json_t *cmd_set_rtt(struct agent *a, const struct client *c,
                           const struct netelect_ctl_req *q)
{
    return cmd_override(a, c, q, true);
}

static json_t *cmd_set_health(struct agent *a, const struct client *c,
                              const struct netelect_ctl_req *q)
{
    return cmd_override(a, c, q, false);
}

static json_t *cmd_clear(struct agent *a, const struct client *c, const struct netelect_ctl_req *q)
{
    struct node *n = agent_node_find(a, q->id);
    if (!n)
        return err_reply(-ENOENT, "no such node");
    n->rtt_ovr = n->health_ovr = false;
    agent_node_changed(a, n);
    /* a node that existed only to carry overrides has no reason to stay */
    if (n->orig == ORIG_CTL && !n->probed)
        agent_node_forget_orig(a, n, ORIG_CTL);
    LOGA_I(q->id, NULL, NULL, "control: overrides of %#llx cleared (uid %u)", (unsigned long long)q->id,
          (unsigned)c->cred.uid);
    return json_pack("{s:b}", "ok", 1);
}

static json_t *cmd_reload(struct agent *a, const struct client *c,
                          const struct netelect_ctl_req *q)
{
    (void)c, (void)q;
    char err[256];
    int r = agent_reload(a, err, sizeof err);
    return r < 0 ? err_reply(r, err) : json_pack("{s:b}", "ok", 1);
}

typedef json_t *command_fn(struct agent *a, const struct client *c,
                           const struct netelect_ctl_req *q);

/* The dispatch table, one entry per verb of NETELECT_CTL_VERBS
 * (agent/control_proto.h), indexed by enum netelect_ctl_verb. */
static const struct command {
    const char *name;
    command_fn *run;
    unsigned flags; /* NETELECT_CTL_MUTATES, NETELECT_CTL_PEER */
} commands[] = {
#define COMMAND(verb, handler, name, flags, keys) [NETELECT_CTL_##verb] = {name, cmd_##handler, flags},
    NETELECT_CTL_VERBS(COMMAND)
#undef COMMAND
};
_Static_assert(sizeof commands / sizeof commands[0] == NETELECT_CTL_NVERBS,
               "one command per verb");

static json_t *dispatch(struct agent *a, struct client *c, const char *line, size_t len)
{
    char err[256];
    struct netelect_ctl_req q;
    a->stats.ctl_requests++;
    int r = agent_ctl_parse(line, len, &q, err, sizeof err);
    if (r < 0) {
        a->stats.ctl_errors++;
        return err_reply(r, err);
    }
    const struct command *cmd = &commands[q.verb];
    json_t *rep;
    if ((cmd->flags & NETELECT_CTL_MUTATES) && !c->privileged) {
        a->stats.ctl_denied++;
        snprintf(err, sizeof err, "%s: permission denied (uid %u is not root, the agent's uid, "
                                  "or in the control group)",
                 cmd->name, (unsigned)c->cred.uid);
        rep = err_reply(-EPERM, err);
    } else if ((cmd->flags & NETELECT_CTL_PEER) && q.id == a->self) {
        rep = err_reply(-EINVAL, "that is this node's own id: it is always at RTT 0 and healthy "
                                 "(`netelect drain` stops it being a candidate)");
    } else {
        rep = cmd->run(a, c, &q);
    }
    if (rep && json_is_false(json_object_get(rep, "ok")))
        a->stats.ctl_errors++;
    /* Every reply names the generation published when it was sent (a change
     * it made shows in a later one): the --json contract's "generation". */
    if (rep && !json_object_get(rep, "generation"))
        json_object_set_new(rep, "generation",
                            a->writer ? json_integer((json_int_t)netelect__writer_generation(a->writer))
                                 : json_null());
    agent_ctl_req_free(&q);
    return rep ? rep : err_reply(-ENOMEM, "out of memory");
}

static void update_events(struct agent *a, struct client *c)
{
    struct epoll_event ev = {.events = (c->closing ? 0 : EPOLLIN) |
                                       (c->out_len > c->out_off ? EPOLLOUT : 0),
                             .data.u64 = EV_TAG(EV_CLIENT, c)};
    epoll_ctl(a->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

void agent_control_event(struct agent *a, struct client *c, uint32_t events)
{
    uint64_t now = agent_now_ns();
    if (events & EPOLLIN) {
        for (;;) {
            if (c->in_cap - c->in_len < 4096) {
                size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
                if (cap > NETELECT_CTL_MAX_LINE + 8192)
                    cap = NETELECT_CTL_MAX_LINE + 8192;
                if (cap <= c->in_len + 1) {
                    /* no newline within the limit: answer once and hang up */
                    queue_reply(a, c, err_reply(-E2BIG, "request line too long"));
                    a->stats.ctl_errors++;
                    c->closing = true;
                    c->in_len = 0;
                    break;
                }
                char *np = realloc(c->in, cap);
                if (!np)
                    DIE("out of memory reading a control request");
                c->in = np;
                c->in_cap = cap;
            }
            ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (n <= 0) {
                c->closing = true;
                break;
            }
            c->in_len += (size_t)n;
            char *nl;
            size_t start = 0;
            while ((nl = memchr(c->in + start, '\n', c->in_len - start))) {
                size_t l = (size_t)(nl - (c->in + start));
                if (l && c->in[start + l - 1] == '\r')
                    l--;
                if (l)
                    queue_reply(a, c, dispatch(a, c, c->in + start, l));
                start = (size_t)(nl - c->in) + 1;
            }
            memmove(c->in, c->in + start, c->in_len - start);
            c->in_len -= start;
            /* The request timeout runs from a line's first byte: a client
             * trickling one byte at a time gets no more time than one that
             * sends half a line and stops. */
            if (start) {
                c->active_ns = now;
                c->partial_ns = c->in_len ? now : 0;
            } else if (!c->partial_ns) {
                c->partial_ns = now;
            }
        }
    }
    if (events & (EPOLLHUP | EPOLLERR))
        c->closing = true;
    while (c->out_len > c->out_off) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            client_free(a, c);
            arm_timer(a);
            return;
        }
        c->out_off += (size_t)n;
        c->active_ns = now;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->closing && c->out_len == 0) {
        client_free(a, c);
        arm_timer(a);
        return;
    }
    update_events(a, c);
    arm_timer(a);
}
