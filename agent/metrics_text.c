/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text exposition (format 0.0.4) of a stats reply: see
 * agent/metrics.h.  Names follow the Prometheus conventions: a netelect_
 * prefix, base units (seconds), counters ending in _total, one HELP and
 * one TYPE line per family with all of its samples together.  Node ids are
 * labels ("0x..." as everywhere else), never values: a float64 sample
 * cannot hold a 64-bit id exactly.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metrics.h"

struct sb {
    char *p;
    size_t len, cap;
    bool oom;
};

__attribute__((format(printf, 2, 3))) static void put(struct sb *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static void put_raw(struct sb *b, const char *s, size_t n)
{
    if (b->oom || !n)
        return;
    if (b->len + n >= b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->len + n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

/* A label value, escaped as the format wants (backslash, double quote,
 * newline); the runs between are copied whole (a scrape of thousands of
 * peers and channels is rendered in the agent's loop). */
static void put_label(struct sb *b, const char *s)
{
    for (;;) {
        size_t n = strcspn(s, "\\\"\n");
        put_raw(b, s, n);
        s += n;
        if (!*s)
            return;
        put_raw(b, *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : "\\n", 2);
        s++;
    }
}

static void family(struct sb *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A count, or -1 when absent or not a non-negative integer. */
static long long count(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (long long)json_integer_value(v) : -1;
}

static void boolean(struct sb *b, json_t *st, const char *key, const char *name, const char *help)
{
    json_t *v = json_object_get(st, key);
    if (!json_is_boolean(v))
        return;
    family(b, name, "gauge", help);
    put(b, "%s %d\n", name, json_is_true(v));
}

/* A duration in seconds (ns in the reply): exact to the nanosecond. */
static void put_seconds(struct sb *b, long long ns)
{
    put(b, "%lld.%09lld", ns / 1000000000, ns % 1000000000);
}

/* A top-level count, or a duration in ns as seconds when ns. */
static void scalar(struct sb *b, json_t *st, const char *key, bool ns, const char *name,
                   const char *type, const char *help)
{
    long long v = count(st, key);
    if (v < 0)
        return;
    family(b, name, type, help);
    if (ns) {
        put(b, "%s ", name);
        put_seconds(b, v);
        put(b, "\n");
    } else {
        put(b, "%s %lld\n", name, v);
    }
}

/* {"le_ns": [bounds], "counts": [per bucket, then above the last], "sum_ns": S} */
static void histogram(struct sb *b, json_t *st, const char *key, const char *name,
                      const char *help)
{
    json_t *h = json_object_get(st, key);
    json_t *le = json_object_get(h, "le_ns"), *cn = json_object_get(h, "counts");
    long long sum = count(h, "sum_ns");
    size_t n = json_array_size(le);
    if (!json_is_array(le) || !json_is_array(cn) || json_array_size(cn) != n + 1 || sum < 0)
        return;
    family(b, name, "histogram", help);
    long long cum = 0;
    for (size_t i = 0; i <= n; i++) {
        json_t *c = json_array_get(cn, i);
        cum += json_is_integer(c) && json_integer_value(c) > 0 ? (long long)json_integer_value(c) : 0;
        if (i < n) {
            json_t *l = json_array_get(le, i);
            put(b, "%s_bucket{le=\"", name);
            put_seconds(b, json_is_integer(l) ? (long long)json_integer_value(l) : 0);
            put(b, "\"} %lld\n", cum);
        } else {
            put(b, "%s_bucket{le=\"+Inf\"} %lld\n", name, cum);
        }
    }
    put(b, "%s_sum ", name);
    put_seconds(b, sum);
    put(b, "\n%s_count %lld\n", name, cum);
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Per element of the array st[arr]: one sample labelled with its id_key
 * (as label `label`), the value of field `key` (counts; booleans as 0/1;
 * durations in ns as seconds when ns).  Elements without it are skipped. */
static void per(struct sb *b, json_t *st, const char *arr, const char *id_key, const char *label,
                const char *key, bool ns, const char *name, const char *type, const char *help)
{
    json_t *a = json_object_get(st, arr), *e;
    size_t i;
    bool head = false;
    json_array_foreach(a, i, e) {
        json_t *v = json_object_get(e, key);
        if (!json_is_integer(v) && !json_is_boolean(v))
            continue;
        if (json_is_integer(v) && json_integer_value(v) < 0)
            continue;
        if (!head)
            family(b, name, type, help);
        head = true;
        put(b, "%s{%s=\"", name, label);
        put_label(b, str(e, id_key));
        put(b, "\"} ");
        if (json_is_boolean(v))
            put(b, "%d\n", json_is_true(v));
        else if (ns)
            put_seconds(b, (long long)json_integer_value(v)), put(b, "\n");
        else
            put(b, "%lld\n", (long long)json_integer_value(v));
    }
}

static void build_info(struct sb *b, json_t *st)
{
    family(b, "netelect_up", "gauge", "Whether the agent answered the scrape (1) or not (0).");
    put(b, "netelect_up 1\n");
    family(b, "netelect_build_info", "gauge",
           "The agent's version and node id (labels); always 1.");
    put(b, "netelect_build_info{version=\"");
    put_label(b, str(st, "version"));
    put(b, "\",node_id=\"");
    put_label(b, str(st, "self"));
    put(b, "\"} 1\n");
}

/* One family from two fields, so a scrape never shows one type alone. */
static void packets_sent(struct sb *b, json_t *st)
{
    long long ping = count(st, "tx_ping"), pong = count(st, "tx_pong");
    if (ping >= 0 && pong >= 0) {
        family(b, "netelect_packets_sent_total", "counter", "UDP probe packets sent, by type.");
        put(b, "netelect_packets_sent_total{type=\"ping\"} %lld\n", ping);
        put(b, "netelect_packets_sent_total{type=\"pong\"} %lld\n", pong);
    }
}

/* Drops by reason (whatever reasons the agent reports), and the two
 * reasons an operator alerts on as families of their own. */
static void drops(struct sb *b, json_t *st)
{
    json_t *d = json_object_get(st, "drops");
    if (!json_is_object(d))
        return;
    const char *k;
    json_t *v;
    family(b, "netelect_packets_dropped_total", "counter",
           "UDP probe packets dropped, by reason.");
    json_object_foreach(d, k, v) {
        put(b, "netelect_packets_dropped_total{reason=\"");
        put_label(b, k);
        put(b, "\"} %lld\n", json_is_integer(v) ? (long long)json_integer_value(v) : 0);
    }
    long long mac = count(d, "bad_mac");
    if (mac >= 0) {
        family(b, "netelect_auth_failures_total", "counter",
               "Probe packets that failed authentication (a wrong key_file, or forged).");
        put(b, "netelect_auth_failures_total %lld\n", mac);
    }
    long long rl = count(d, "rate_limited"), rlp = count(d, "rate_limited_peer");
    if (rl >= 0 && rlp >= 0) {
        family(b, "netelect_rate_limited_drops_total", "counter",
               "Probe packets dropped by the rate limits (unknown sources and peers).");
        put(b, "netelect_rate_limited_drops_total %lld\n", rl + rlp);
    }
}

/* The leader is a label, not a value (see the top of this file). */
static void channel_leader(struct sb *b, json_t *st)
{
    json_t *a = json_object_get(st, "leaders"), *e;
    size_t i;
    if (!json_is_array(a))
        return;
    family(b, "netelect_channel_leader", "gauge",
           "Each channel's leader as this node elects it (label leader, \"none\" when no "
           "member is eligible); always 1.");
    json_array_foreach(a, i, e) {
        json_t *l = json_object_get(e, "leader");
        put(b, "netelect_channel_leader{channel=\"");
        put_label(b, str(e, "channel"));
        put(b, "\",leader=\"");
        put_label(b, json_is_string(l) ? json_string_value(l) : "none");
        put(b, "\"} 1\n");
    }
}

/*
 * Every family, in the order of the exposition.  Most are one field of the
 * stats reply (top-level, or of each element of "leaders" or "peers");
 * the few whose shape is their own have a render function.
 */
enum kind { K_SCALAR, K_BOOL, K_HIST, K_PER, K_FN };

struct metric {
    enum kind kind;
    const char *key;   /* the field: of the reply, or of each element of arr */
    bool ns;           /* a duration in ns, exposed in seconds */
    const char *name, *type, *help;
    const char *arr, *id_key, *label; /* K_PER: the array, its elements' id and label */
    void (*render)(struct sb *b, json_t *st); /* K_FN */
};

#define SCALAR(key, name, type, help) {K_SCALAR, key, false, name, type, help, NULL, NULL, NULL, NULL}
#define SECONDS(key, name, help) {K_SCALAR, key, true, name, "gauge", help, NULL, NULL, NULL, NULL}
#define BOOLEAN(key, name, help) {K_BOOL, key, false, name, "gauge", help, NULL, NULL, NULL, NULL}
#define HISTOGRAM(key, name, help) {K_HIST, key, false, name, "histogram", help, NULL, NULL, NULL, NULL}
#define CHANNEL(key, name, type, help) \
    {K_PER, key, false, name, type, help, "leaders", "channel", "channel", NULL}
#define PEER(key, ns, name, type, help) {K_PER, key, ns, name, type, help, "peers", "id", "peer", NULL}
#define RENDER(fn) {K_FN, NULL, false, NULL, NULL, NULL, NULL, NULL, NULL, fn}

static const struct metric metrics[] = {
    RENDER(build_info),
    SECONDS("start_time_ns", "netelect_start_time_seconds",
            "When the agent started, in seconds since the Unix epoch."),
    SCALAR("generation", "netelect_generation", "gauge",
           "The generation of the view last published in the segment."),
    SCALAR("nodes", "netelect_nodes", "gauge", "Nodes in the agent's table (self excluded)."),
    SCALAR("channels", "netelect_channels", "gauge", "Channels in the agent's table."),
    SCALAR("publishes", "netelect_publishes_total", "counter", "Views published into the segment."),
    SCALAR("publishes_delta", "netelect_publishes_delta_total", "counter",
           "Of the views published, those written as deltas (only the nodes whose "
           "measurements changed; the others wrote the whole view)."),
    SCALAR("publish_errors", "netelect_publish_errors_total", "counter",
           "Publishes that failed (retried at the next heartbeat)."),
    HISTOGRAM("publish_duration", "netelect_publish_duration_seconds",
              "Time to build and write one view into the segment."),
    HISTOGRAM("publish_delay", "netelect_publish_delay_seconds",
              "From the first change marked for publishing to the publish that carried it "
              "(bounded by [segment] publish_min_interval)."),
    SCALAR("heartbeats", "netelect_heartbeats_total", "counter",
           "Heartbeats written into the segment."),
    SCALAR("rx", "netelect_packets_received_total", "counter", "UDP probe packets received."),
    SCALAR("rx_ok", "netelect_packets_accepted_total", "counter",
           "UDP probe packets that passed every check."),
    RENDER(packets_sent),
    SCALAR("tx_err", "netelect_send_errors_total", "counter", "UDP sends that failed."),
    RENDER(drops),
    SCALAR("ctl_requests", "netelect_control_requests_total", "counter",
           "Requests received on the control socket."),
    SCALAR("ctl_errors", "netelect_control_errors_total", "counter",
           "Control requests answered with an error."),
    SCALAR("ctl_denied", "netelect_control_denied_total", "counter",
           "Control requests refused for lack of privilege."),
    SCALAR("ctl_connections", "netelect_control_connections_total", "counter",
           "Control connections accepted."),
    SCALAR("ctl_refused", "netelect_control_refused_total", "counter",
           "Control connections refused by the connection limits."),
    SCALAR("ctl_timeouts", "netelect_control_timeouts_total", "counter",
           "Control connections closed by the request or idle timeouts."),
    SCALAR("reloads", "netelect_reloads_total", "counter", "Configuration reloads asked for."),
    SCALAR("reload_failures", "netelect_reload_failures_total", "counter",
           "Configuration reloads refused (the running configuration was kept)."),
    SCALAR("health_changes", "netelect_health_changes_total", "counter",
           "Probed peers that turned healthy or unhealthy."),
    SCALAR("peer_restarts", "netelect_peer_restarts_total", "counter",
           "Peers seen coming back with a new incarnation."),
    BOOLEAN("drain_all", "netelect_drained", "Whether this node is drained from every channel."),
    BOOLEAN("serf_enabled", "netelect_serf_enabled", "Whether [serf] enabled is set."),
    BOOLEAN("serf_connected", "netelect_serf_connected",
            "Whether the Serf RPC stream is up (0 when Serf is not enabled)."),
    SCALAR("serf_members", "netelect_serf_members", "gauge",
           "Nodes the Serf source currently knows."),
    SCALAR("http_requests", "netelect_metrics_requests_total", "counter",
           "Requests to the metrics endpoint."),
    SCALAR("http_errors", "netelect_metrics_errors_total", "counter",
           "Requests to the metrics endpoint answered with an error (bad method or path)."),

    CHANNEL("members", "netelect_channel_members", "gauge", "Members of each channel."),
    RENDER(channel_leader),
    CHANNEL("self", "netelect_channel_leader_is_self", "gauge",
            "Whether this node leads the channel."),
    CHANNEL("leader_changes", "netelect_channel_leader_changes_total", "counter",
            "Publishes that changed the channel's leader (no eligible member counts as a "
            "leader)."),

    PEER("healthy", false, "netelect_peer_healthy", "gauge",
         "Whether the peer is healthy as published (1) or not (0)."),
    PEER("rtt_estimate_ns", true, "netelect_peer_rtt_seconds", "gauge",
         "The peer's smoothed RTT estimate (absent while never measured)."),
    PEER("rtt_ns", true, "netelect_peer_published_rtt_seconds", "gauge",
         "The peer's RTT as published (held by RTT hysteresis; overrides included)."),
    PEER("sent", false, "netelect_peer_probes_sent_total", "counter",
         "Probes (PINGs) sent to the peer."),
    PEER("missed", false, "netelect_peer_probes_lost_total", "counter",
         "Probes to the peer that timed out without a reply."),
    PEER("samples", false, "netelect_peer_rtt_samples_total", "counter",
         "RTT samples taken from the peer's replies."),
    PEER("flaps", false, "netelect_peer_flaps_total", "counter", "Health changes of the peer."),
    PEER("miss_run", false, "netelect_peer_probes_lost_in_a_row", "gauge",
         "Probes to the peer lost in a row (0 after any reply)."),
};

int agent_metrics_render(json_t *st, char **out, size_t *len)
{
    struct sb b = {0};
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++) {
        const struct metric *m = &metrics[i];
        switch (m->kind) {
        case K_SCALAR:
            scalar(&b, st, m->key, m->ns, m->name, m->type, m->help);
            break;
        case K_BOOL:
            boolean(&b, st, m->key, m->name, m->help);
            break;
        case K_HIST:
            histogram(&b, st, m->key, m->name, m->help);
            break;
        case K_PER:
            per(&b, st, m->arr, m->id_key, m->label, m->key, m->ns, m->name, m->type, m->help);
            break;
        case K_FN:
            m->render(&b, st);
            break;
        }
    }
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
