/* SPDX-License-Identifier: MIT */
/*
 * netelectd's side of the Prometheus metrics (agent/metrics.h): the counters
 * `stats` did not keep before, and the optional HTTP endpoint
 * ([metrics] listen, off by default) serving GET /metrics.
 *
 * The endpoint is libmicrohttpd driven from the agent's own epoll loop
 * (MHD_USE_EPOLL without an internal thread: its epoll fd sits in ours and
 * MHD_run() never blocks).  So:
 *   - no HTTP parser of our own to get wrong (Debian's libmicrohttpd is
 *     fuzzed upstream), with its limits on connections, per-IP connections,
 *     request memory (headers included) and an idle timeout;
 *   - still one thread: the reply is rendered from the agent's state with
 *     no lock, no copy and no race, and the unit's SystemCallFilter=
 *     @system-service and RestrictAddressFamilies= (AF_INET/AF_INET6
 *     already there for UDP) need nothing more.  A thread of libmicrohttpd's
 *     own would have needed the agent's state under a lock for every scrape.
 * A scrape costs one stats reply (O(nodes + members)) in the loop, as a
 * `netelect stats` does.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/clock.h"
#include "agent/log.h"
#include "agent/metrics.h"

/* Upper bounds of the publish histograms' buckets, ns: a publish takes tens
 * of microseconds for a small view; the detection-to-segment delay is
 * bounded by publish_min_interval (at most 1 s). */
static const uint64_t bucket_ns[NETELECT_METRICS_BUCKETS] = {
    10000,    25000,     50000,     100000,    250000,     500000,    1000000,
    5000000,  10000000,  50000000,  100000000, 500000000,  2500000000};

struct hist {
    uint64_t counts[NETELECT_METRICS_BUCKETS + 1]; /* per bucket, the last above every bound */
    uint64_t sum_ns;
};

/* Limits of the endpoint: a scraper needs one connection; these bound what
 * anyone who can reach the port may hold. */
#define HTTP_MAX_CONNECTIONS 16
#define HTTP_MAX_PER_IP 4
#define HTTP_TIMEOUT_S 10
#define HTTP_MEMORY 16384 /* per connection: the request line and headers must fit */

struct netelect_metrics {
    struct hist duration, delay;
    uint64_t start_unix_ns;
    /* scratch for the elections of agent_metrics_published() */
    uint64_t *ids, *rtt;
    uint8_t *ok;
    size_t cap;
    struct MHD_Daemon *mhd;
    int tfd;
    uint64_t requests, errors;
};

static void hist_add(struct hist *h, uint64_t ns)
{
    size_t i = 0;
    while (i < NETELECT_METRICS_BUCKETS && ns > bucket_ns[i])
        i++;
    h->counts[i]++;
    h->sum_ns += ns;
}

static json_t *hist_json(const struct hist *h)
{
    json_t *le = json_array(), *c = json_array();
    for (size_t i = 0; i < NETELECT_METRICS_BUCKETS; i++)
        json_array_append_new(le, json_integer((json_int_t)bucket_ns[i]));
    for (size_t i = 0; i <= NETELECT_METRICS_BUCKETS; i++)
        json_array_append_new(c, json_integer((json_int_t)h->counts[i]));
    return json_pack("{s:o, s:o, s:I}", "le_ns", le, "counts", c, "sum_ns",
                     (json_int_t)(h->sum_ns > INT64_MAX ? INT64_MAX : h->sum_ns));
}

/* Room for n entries in the election scratch. */
static void scratch_reserve(struct netelect_metrics *m, size_t n)
{
    if (n <= m->cap)
        return;
    size_t cap = n * 2;
    uint64_t *ids = realloc(m->ids, cap * sizeof *ids);
    if (ids)
        m->ids = ids;
    uint64_t *rtt = realloc(m->rtt, cap * sizeof *rtt);
    if (rtt)
        m->rtt = rtt;
    uint8_t *ok = realloc(m->ok, cap);
    if (ok)
        m->ok = ok;
    if (!ids || !rtt || !ok)
        DIE("out of memory electing over a channel of %zu members", n);
    m->cap = cap;
}

/* Member id of c as a reader electing for this node finds it in the segment
 * just written: a member that is not a node is unknown and not a candidate,
 * this node is at RTT 0 and healthy unless drained. */
static void scratch_put(struct agent *a, struct netelect_metrics *m, size_t j, uint64_t id,
                        bool self_ok)
{
    const struct node *n = id == a->self ? NULL : agent_node_find(a, id);
    m->ids[j] = id;
    if (id == a->self) {
        m->rtt[j] = 0;
        m->ok[j] = self_ok;
    } else if (n && n->pub_valid) {
        m->rtt[j] = n->pub.rtt_ns;
        m->ok[j] = n->pub.healthy != 0;
    } else {
        m->rtt[j] = NETELECT_RTT_UNKNOWN;
        m->ok[j] = 0;
    }
}

/* The leader among the first k scratch entries (0: none eligible). */
static uint64_t scratch_elect(const struct agent *a, const struct netelect_metrics *m, size_t k)
{
    struct netelect_result r = netelect_elect(m->ids, m->rtt, m->ok, k, a->self);
    return r.outcome == NETELECT_NO_ELIGIBLE ? 0 : r.winner;
}

/*
 * c's leader after a delta that changed only the nodes in changed[]: their
 * measurements, nothing structural, so every other member's key is what it
 * was at the last publish.  The old leader held the minimum key of the
 * eligible members; unless it changed itself, the new minimum is the least
 * of it and the changed members, so only those few go through the election.
 * Returns false when c needs the whole election: its leader changed (its key
 * may have grown, and any member may now beat it), or it has none on record;
 * or when that is cheaper, c having no more members than the delta has nodes.
 */
static bool leader_after_delta(struct agent *a, struct netelect_metrics *m, const struct chan *c,
                               bool self_ok, const uint64_t *changed, size_t n_changed,
                               uint64_t *leader)
{
    if (!c->leader_valid || c->n <= n_changed)
        return false;
    size_t k = 0;
    scratch_reserve(m, 1 + n_changed);
    if (c->leader)
        scratch_put(a, m, k++, c->leader, self_ok);
    for (size_t i = 0; i < n_changed; i++) {
        if (!agent_chan_member(c, changed[i]))
            continue;
        if (changed[i] == c->leader)
            return false;
        scratch_put(a, m, k++, changed[i], self_ok);
    }
    if (k == (c->leader != 0)) {
        *leader = c->leader; /* no member of c changed */
        return true;
    }
    *leader = scratch_elect(a, m, k);
    return true;
}

void agent_metrics_published(struct agent *a, uint64_t duration_ns, uint64_t delay_ns, bool delta,
                             const uint64_t *changed, size_t n_changed)
{
    struct netelect_metrics *m = a->metrics;
    if (!m)
        return;
    hist_add(&m->duration, duration_ns);
    if (delay_ns != UINT64_MAX)
        hist_add(&m->delay, delay_ns);
    /* Each channel's leader as a reader electing for this node finds it in
     * the segment just written, through the same netelect_elect().  After a
     * delta, a channel costs O(changed nodes) instead of O(members): without
     * that, a 100k-member channel made every one-node delta cost the agent
     * about 3 ms (bench/agent_publish.py --members). */
    for (size_t i = 0; i < a->n_chans; i++) {
        struct chan *c = &a->chans[i];
        const bool self_ok = !agent_drained(a, c->name);
        uint64_t leader;
        if (!delta || !leader_after_delta(a, m, c, self_ok, changed, n_changed, &leader)) {
            scratch_reserve(m, c->n);
            for (size_t j = 0; j < c->n; j++)
                scratch_put(a, m, j, c->m[j].id, self_ok);
            leader = scratch_elect(a, m, c->n);
        }
        if (c->leader_valid && c->leader != leader)
            c->leader_changes++;
        c->leader = leader;
        c->leader_valid = true;
    }
}

/* Worst-case JSON sizes: a peer (an IPv6 address and every counter at its
 * widest) and a leader entry (a 63-byte channel name); the budget leaves the
 * rest of the 1 MiB reply to the counters, drops and histograms. */
#define PEER_JSON_MAX 400
#define LEADER_JSON_MAX 200
#define FIRST_PAGE_BUDGET 900000

size_t agent_metrics_first_page(const struct agent *a, size_t limit)
{
    if (limit == SIZE_MAX)
        return limit;
    const size_t lead = a->n_chans * LEADER_JSON_MAX;
    const size_t fit = lead + PEER_JSON_MAX < FIRST_PAGE_BUDGET
                           ? (FIRST_PAGE_BUDGET - lead) / PEER_JSON_MAX : 1;
    return fit < limit ? fit : limit;
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void agent_metrics_stats(const struct agent *a, json_t *r)
{
    const struct netelect_metrics *m = a->metrics;
    char b[24];
    json_object_set_new(r, "version", json_string(NETELECT_VERSION_STRING));
    uint64_t start = m ? m->start_unix_ns : realtime_ns() - (agent_now_ns() - a->start_ns);
    json_object_set_new(r, "start_time_ns", json_integer((json_int_t)start));
    json_object_set_new(r, "ctl_connections", json_integer((json_int_t)a->stats.ctl_clients));
    json_object_set_new(r, "serf_enabled", json_boolean(a->cfg.serf_enabled));
    size_t serf = 0;
    for (size_t i = 0; i < a->tab_cap; i++)
        serf += a->tab[i] && a->tab[i]->serf_known;
    json_object_set_new(r, "serf_members", json_integer((json_int_t)serf));
    json_t *l = json_array();
    for (size_t i = 0; i < a->n_chans; i++) {
        const struct chan *c = &a->chans[i];
        if (!c->leader_valid)
            continue; /* created since the last publish: not in the segment yet */
        snprintf(b, sizeof b, "0x%llx", (unsigned long long)c->leader);
        json_array_append_new(l, json_pack("{s:s, s:o, s:b, s:I, s:I}", "channel", c->name,
                                           "leader", c->leader ? json_string(b) : json_null(),
                                           "self", c->leader && c->leader == a->self,
                                           "leader_changes", (json_int_t)c->leader_changes,
                                           "members", (json_int_t)c->n));
    }
    json_object_set_new(r, "leaders", l);
    if (m) {
        json_object_set_new(r, "publish_duration", hist_json(&m->duration));
        json_object_set_new(r, "publish_delay", hist_json(&m->delay));
        json_object_set_new(r, "http_requests", json_integer((json_int_t)m->requests));
        json_object_set_new(r, "http_errors", json_integer((json_int_t)m->errors));
    }
}

/* ---- the HTTP endpoint ------------------------------------------------------------ */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = 0;
    /* Debug only: anyone who can reach the port can make it complain. */
    LOG_D("metrics endpoint: %s", msg);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type,
                             char *body, size_t len, bool owned, bool allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Every request is answered on its first call (headers complete): GET or
 * HEAD of /metrics gets the metrics, anything else a clear error; a body
 * sent anyway is not read (libmicrohttpd closes such a connection). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct agent *a = cls;
    struct netelect_metrics *m = a->metrics;
    (void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
    m->requests++;
    static char not_allowed[] = "405 method not allowed: the metrics endpoint answers GET and "
                                "HEAD only\n";
    static char not_found[] = "404 not found: the metrics are at /metrics\n";
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
        m->errors++;
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", not_allowed,
                     sizeof not_allowed - 1, false, true);
    }
    if (strcmp(url, "/metrics")) {
        m->errors++;
        return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", not_found,
                     sizeof not_found - 1, false, false);
    }
    json_t *st = agent_control_stats(a);
    char *text = NULL;
    size_t len = 0;
    int r = st ? agent_metrics_render(st, &text, &len) : -ENOMEM;
    json_decref(st);
    if (r < 0)
        DIE("out of memory rendering the metrics");
    return reply(conn, MHD_HTTP_OK, NETELECT_METRICS_CONTENT_TYPE, text, len, true, false);
}

/* Re-arms the timer for libmicrohttpd's next deadline (connection timeouts). */
static void arm(struct netelect_metrics *m)
{
    struct itimerspec its = {0};
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(m->mhd, &ms) == MHD_YES) {
        /* 0 means "now": a zero it_value would disarm the timer instead. */
        its.it_value.tv_sec = (time_t)(ms / 1000);
        its.it_value.tv_nsec = ms ? (long)(ms % 1000) * 1000000 : 1;
    }
    if (timerfd_settime(m->tfd, 0, &its, NULL) < 0)
        DIE("timerfd_settime(metrics): %s", strerror(errno));
}

void agent_metrics_event(struct agent *a)
{
    struct netelect_metrics *m = a->metrics;
    if (!m || !m->mhd)
        return;
    uint64_t v;
    ssize_t n = read(m->tfd, &v, sizeof v); /* non-blocking: EAGAIN when it is the epoll fd */
    (void)n;
    MHD_run(m->mhd);
    arm(m);
}

int agent_metrics_open(struct agent *a)
{
    struct netelect_metrics *m = calloc(1, sizeof *m);
    if (!m)
        DIE("out of memory starting the metrics");
    m->tfd = -1;
    m->start_unix_ns = realtime_ns() - (agent_now_ns() - a->start_ns);
    a->metrics = m;
    if (!a->cfg.metrics_listen[0])
        return 0;
    m->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (a->cfg.metrics_addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
        0, NULL, NULL, on_request, a,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first: it covers the other options */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a->cfg.metrics_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_MAX_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY,
        MHD_OPTION_END);
    if (!m->mhd) {
        int e = errno ? errno : EADDRNOTAVAIL;
        LOG_E("cannot serve metrics on %s: %s", a->cfg.metrics_listen, strerror(e));
        return -e;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    m->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_TAG(EV_METRICS, 0)};
    if (!info || m->tfd < 0 || epoll_ctl(a->ep, EPOLL_CTL_ADD, info->epoll_fd, &ev) < 0 ||
        epoll_ctl(a->ep, EPOLL_CTL_ADD, m->tfd, &ev) < 0)
        DIE("metrics endpoint: %s", strerror(errno));
    arm(m);
    LOG_N("serving metrics on http://%s/metrics", a->cfg.metrics_listen);
    return 0;
}

void agent_metrics_close(struct agent *a)
{
    struct netelect_metrics *m = a->metrics;
    if (!m)
        return;
    if (m->mhd)
        MHD_stop_daemon(m->mhd);
    if (m->tfd >= 0)
        close(m->tfd);
    free(m->ids);
    free(m->rtt);
    free(m->ok);
    free(m);
    a->metrics = NULL;
}
