/* SPDX-License-Identifier: MIT */
/*
 * netelect: inspect the replica view netelectd publishes, elect from it, and
 * drive the agent over its control socket.  See `netelect --help`.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netelect.h>

#include "agent/config.h"
#include "agent/metrics.h"
#include "agent/parse.h"

enum { EX_OK = 0, EX_ERR = 1, EX_USAGE = 2, EX_NONE = 3, EX_STALE = 4 };

static struct {
    const char *shm, *control;
    bool json, has_self, has_uid;
    uint32_t expect_uid;
    uint64_t self;
    uint64_t count;
    const char *exec;
    bool help;
    bool prometheus; /* stats --format=prometheus */
} o = {.control = NETELECT_DEFAULT_CONTROL};

/*
 * The --json contract (docs/json.md, docs/netelect-cli.schema.json): every
 * reply is one object with schema_version, verb, generation (null when not
 * known) and ok; a failure carries error {code, name, message} instead of
 * the answer, on stdout, with the exit status it has without --json.
 */
#define SCHEMA_VERSION 1
static const char *g_verb;           /* the verb being run (NULL: none yet) */
static struct netelect_view *g_view; /* the open view: an error reports its generation */
static json_int_t g_gen = -1;        /* else the generation an agent reply named, or -1 */

static volatile sig_atomic_t stop;
static void on_sig(int s)
{
    (void)s;
    stop = 1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

/* Node ids, in text and JSON alike: "0x" and lower-case hex (0 too). */
static const char *idstr(uint64_t id, char *b)
{
    snprintf(b, 24, "0x%" PRIx64, id);
    return b;
}

/* JSON integers are signed 64-bit (jansson, and most parsers): a count or
 * a duration beyond 2^63-1 (292 years) is clamped there. */
static json_t *u64_json(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* A duration that may be unknown (NETELECT_RTT_UNKNOWN): null then. */
static json_t *ns_json(uint64_t ns)
{
    return ns == NETELECT_RTT_UNKNOWN ? json_null() : u64_json(ns);
}

static json_t *id_json(uint64_t id)
{
    char b[24];
    return json_string(idstr(id, b));
}

static json_int_t gen_val(uint64_t g)
{
    return g > INT64_MAX ? INT64_MAX : (json_int_t)g;
}

/* Adds the fields of `fields` (consumed) to object j; returns j. */
static json_t *with(json_t *j, json_t *fields)
{
    json_object_update(j, fields);
    json_decref(fields);
    return j;
}

/* A reply of the --json contract, to which the verb adds its fields. */
static json_t *reply_new(bool ok, json_int_t gen)
{
    json_t *j = json_object();
    json_object_set_new(j, "schema_version", json_integer(SCHEMA_VERSION));
    json_object_set_new(j, "verb", g_verb ? json_string(g_verb) : json_null());
    json_object_set_new(j, "generation", gen >= 0 ? json_integer(gen) : json_null());
    json_object_set_new(j, "ok", json_boolean(ok));
    return j;
}

/* The symbolic name of an error code: NETELECT_E*, or the errno's (ENOENT). */
static const char *err_name(int code)
{
    switch (code) {
    case NETELECT_EVERSION: return "NETELECT_EVERSION";
    case NETELECT_ECORRUPT: return "NETELECT_ECORRUPT";
    case NETELECT_ESTALE: return "NETELECT_ESTALE";
    case NETELECT_ENOCHAN: return "NETELECT_ENOCHAN";
    default: break;
    }
    const char *n = code < 0 && code > -4096 ? strerrorname_np(-code) : NULL;
    return n ? n : "EUNKNOWN";
}

/*
 * Reports a failure: "netelect: MESSAGE" on stderr and, under --json, the
 * error reply on stdout as well (code: a negative errno or NETELECT_E*).
 * Returns `ex`, the exit status, which --json does not change.
 */
static int vfail(int code, int ex, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "netelect: %s\n", msg);
    if (o.json) {
        json_t *j = reply_new(false, g_view ? gen_val(netelect_view_generation(g_view)) : g_gen);
        json_object_set_new(j, "error", json_pack("{s:i, s:s, s:s}", "code", code, "name",
                                                  err_name(code), "message", msg));
        print_json(j);
    }
    return ex;
}

__attribute__((format(printf, 3, 4))) static int fail(int code, int ex, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfail(code, ex, fmt, ap);
    va_end(ap);
    return r;
}

/* A usage error: exit 2, code -EINVAL. */
__attribute__((format(printf, 1, 2))) static int die_usage(const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(-EINVAL, EX_USAGE, "%s (see netelect --help)", msg);
}

static const char *fmt_ns(uint64_t ns, char *b, size_t n)
{
    if (ns == NETELECT_RTT_UNKNOWN)
        snprintf(b, n, "unknown");
    else if (ns < 1000)
        snprintf(b, n, "%" PRIu64 " ns", ns);
    else if (ns < 1000000)
        snprintf(b, n, "%.1f us", ns / 1e3);
    else if (ns < 10000000000ull)
        snprintf(b, n, "%.3f ms", ns / 1e6);
    else
        snprintf(b, n, "%.1f s", ns / 1e9);
    return b;
}

static const char *src_name(int s)
{
    switch (s) {
    case NETELECT_SRC_PROBE: return "probe";
    case NETELECT_SRC_SERF: return "serf";
    case NETELECT_SRC_OPERATOR: return "operator";
    default: return "none";
    }
}

/* An unknown channel has its own code, NETELECT_ENOCHAN ("no such
 * channel"); -ENOENT is only "no segment" (at open). */
static const char *chan_err(int err)
{
    return netelect_strerror(err);
}

static int exit_for(int err)
{
    return err == NETELECT_ESTALE ? EX_STALE : EX_ERR;
}

/* An answer served from the last version of an agent that is gone (inside
 * the fail-static window) is printed, but the exit status says so. */
static int gone_code(struct netelect_view *v, int code)
{
    struct netelect_view_status s = {.size = sizeof s};
    if (netelect_view_status(v, &s) < 0 || s.writer_alive)
        return code;
    fprintf(stderr, "netelect: the agent is gone: this answer is from its last view\n");
    return EX_STALE;
}

static int open_view(struct netelect_view **v)
{
    struct netelect_view_opts vo = {.size = sizeof vo, .expect_uid = o.expect_uid,
                                   .expect_uid_set = o.has_uid};
    int r = netelect_view_open_opts(o.shm, &vo, v);
    if (r < 0)
        return fail(r, EX_ERR, "cannot attach to segment %s: %s%s", o.shm ? o.shm : "netelect",
                    netelect_strerror(r),
                    r == -ENOENT  ? " (is netelectd running?)"
                    : r == -EPERM ? " (not published by a trusted user: root, the agent user, "
                                    "yourself, or --expect-uid)"
                                  : "");
    g_view = *v;
    return 0;
}

static void close_view(struct netelect_view *v)
{
    if (g_view == v)
        g_view = NULL;
    netelect_view_close(v);
}

static bool agent_alive(struct netelect_view *v)
{
    struct netelect_view_status s = {.size = sizeof s};
    return netelect_view_status(v, &s) < 0 || s.writer_alive;
}

/* ---- status ------------------------------------------------------------ */

static int cmd_status(void)
{
    struct netelect_view *v;
    int r = open_view(&v);
    if (r)
        return r;
    struct netelect_view_status s = {.size = sizeof s};
    r = netelect_view_status(v, &s);
    if (r < 0) {
        r = fail(r, exit_for(r), "status: %s", netelect_strerror(r));
        close_view(v);
        return r;
    }
    const char *state = s.state == NETELECT_AGENT_ABANDONED ? "abandoned"
                        : s.state == NETELECT_AGENT_STALLED ? "stalled"
                        : s.state == NETELECT_AGENT_MOVED   ? "moved"
                        : !s.writer_alive                   ? "gone"
                        : s.state == NETELECT_AGENT_LIVE    ? "alive"
                                                            : "initialising";
    char inc[33], b[24];
    for (int i = 0; i < 16; i++)
        snprintf(inc + 2 * i, 3, "%02x", s.incarnation[i]);
    if (o.json) {
        json_t *j = reply_new(true, gen_val(s.generation));
        with(j, json_pack("{s:s, s:b, s:s, s:o, s:i, s:o, s:o, s:o, s:b, s:o, s:i, s:i, s:s, s:i, s:i}",
            "segment", o.shm ? o.shm : "netelect", "alive", !strcmp(state, "alive"), "state", state,
            "node_id", id_json(s.self_id), "agent_pid", (int)s.agent_pid,
            "heartbeat_seq", u64_json(s.heartbeat_seq), "heartbeat_age_ns", u64_json(s.heartbeat_age_ns),
            "heartbeat_period_ns", u64_json(s.heartbeat_period_ns), "clock_shared", s.clock_shared != 0,
            "forced_reuse", u64_json(s.forced_reuse), "nodes", (int)s.n_nodes, "channels", (int)s.n_chans,
            "incarnation", inc, "abi_major", (int)s.abi_major, "abi_minor", (int)s.abi_minor));
        print_json(j);
    } else {
        char hb[32];
        printf("agent:        %s (pid %d)\n", state, (int)s.agent_pid);
        printf("node id:      %s\n", idstr(s.self_id, b));
        printf("generation:   %" PRIu64 "\n", s.generation);
        printf("heartbeat:    seq %" PRIu64 ", %s ago\n", s.heartbeat_seq,
               fmt_ns(s.heartbeat_age_ns, hb, sizeof hb));
        printf("nodes:        %u\n", s.n_nodes);
        printf("channels:     %u\n", s.n_chans);
        printf("incarnation:  %s\n", inc);
        printf("abi:          %u.%u\n", s.abi_major, s.abi_minor);
        printf("forced reuse: %" PRIu64 "\n", s.forced_reuse);
    }
    close_view(v);
    return strcmp(state, "alive") ? EX_STALE : EX_OK;
}

/* ---- view ---------------------------------------------------------------- */

struct vec {
    struct netelect_node_info *n;
    size_t len, cap;
};

static int collect_node(void *ctx, const struct netelect_node_info *ni)
{
    struct vec *v = ctx;
    if (v->len == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        void *np = realloc(v->n, cap * sizeof *v->n);
        if (!np)
            return -ENOMEM;
        v->n = np;
        v->cap = cap;
    }
    v->n[v->len++] = *ni;
    return 0;
}

struct chans {
    struct { char name[NETELECT_CHAN_NAME_MAX + 1]; uint64_t *m; size_t n; } *c;
    size_t len, cap;
};

static int collect_chan(void *ctx, const char *name, const uint64_t *members, size_t n)
{
    struct chans *cs = ctx;
    if (cs->len == cs->cap) {
        size_t cap = cs->cap ? 2 * cs->cap : 16;
        void *np = realloc(cs->c, cap * sizeof *cs->c);
        if (!np)
            return -ENOMEM;
        cs->c = np;
        cs->cap = cap;
    }
    snprintf(cs->c[cs->len].name, sizeof cs->c[cs->len].name, "%s", name);
    cs->c[cs->len].m = malloc((n ? n : 1) * sizeof(uint64_t));
    if (!cs->c[cs->len].m)
        return -ENOMEM;
    memcpy(cs->c[cs->len].m, members, n * sizeof(uint64_t));
    cs->c[cs->len].n = n;
    cs->len++;
    return 0;
}

static void free_chans(struct chans *cs)
{
    for (size_t i = 0; i < cs->len; i++)
        free(cs->c[i].m);
    free(cs->c);
    cs->c = NULL;
    cs->len = cs->cap = 0;
}

/* Whether the agent's own node is a member of channel ch but not a
 * candidate: the agent publishes itself unhealthy only when drained. */
static bool self_drained(struct netelect_view *v, const char *ch, const uint64_t *m, size_t n)
{
    const uint64_t me = netelect_view_self(v);
    bool member = false;
    for (size_t i = 0; i < n && !member; i++)
        member = m[i] == me;
    if (!member)
        return false;
    uint64_t *ids = malloc(n * sizeof *ids);
    size_t count = 0;
    bool cand = !ids || netelect_view_rank(v, ch, me, ids, n, &count) < 0;
    for (size_t i = 0; ids && i < count && i < n && !cand; i++)
        cand = ids[i] == me;
    free(ids);
    return !cand;
}

static const char *outcome_name(enum netelect_outcome oc)
{
    return oc == NETELECT_SELF_WINS ? "self" : oc == NETELECT_PEER_WINS ? "peer" : "none";
}

/* One channel of `netelect view`: its election and whether self is drained. */
struct chan_answer {
    int rc;
    struct netelect_result res;
    bool drained;
};

static int cmd_view(void)
{
    struct netelect_view *v;
    int r = open_view(&v);
    if (r)
        return r;
    struct vec nodes = {0};
    struct chans cs = {0};
    struct chan_answer *ans = NULL;
    uint64_t self = o.has_self ? o.self : netelect_view_self(v);
    uint64_t g0, g1;
    /* Nodes, channels and elections from one generation: each iterator is
     * consistent by itself, so the whole is retried while the agent
     * publishes in between (foreach may also call back twice: start each
     * attempt afresh). */
    for (int tries = 0;; tries++) {
        nodes.len = 0;
        free_chans(&cs);
        free(ans);
        ans = NULL;
        g0 = netelect_view_generation(v);
        r = netelect_view_foreach_node(v, collect_node, &nodes);
        if (r == 0)
            r = netelect_view_foreach_channel(v, collect_chan, &cs);
        if (r == 0 && !(ans = calloc(cs.len ? cs.len : 1, sizeof *ans)))
            r = -ENOMEM;
        for (size_t i = 0; r == 0 && i < cs.len; i++) {
            ans[i].rc = netelect_view_elect(v, cs.c[i].name, self, &ans[i].res);
            ans[i].drained = self_drained(v, cs.c[i].name, cs.c[i].m, cs.c[i].n);
        }
        g1 = netelect_view_generation(v);
        if (r != 0 || g0 == g1 || tries == 100)
            break;
    }
    if (r > 0 || (r == 0 && !ans))
        r = -ENOMEM; /* (the callbacks return 0 or -ENOMEM: cannot happen) */
    if (r < 0) {
        r = fail(r, exit_for(r), "view: %s", netelect_strerror(r));
        goto out;
    }
    uint64_t now = mono_ns();
    char b1[32], b2[32], b3[32], b4[32], b5[24];
    json_t *jn = json_array(), *jc = json_array();
    if (!o.json)
        printf("%-20s %12s %12s %12s %-8s %-9s %s\n", "NODE", "RTT", "RAW", "ERR", "SOURCE",
               "HEALTH", "HEARD");
    for (size_t i = 0; i < nodes.len; i++) {
        const struct netelect_node_info *n = &nodes.n[i];
        uint64_t age = n->last_heard_ns && now > n->last_heard_ns ? now - n->last_heard_ns : 0;
        if (o.json) {
            json_array_append_new(jn, json_pack("{s:o, s:o, s:o, s:o, s:s, s:b, s:o, s:b}",
                "id", id_json(n->id), "rtt_ns", ns_json(n->rtt_ns), "raw_ns", ns_json(n->rtt_raw_ns),
                "err_ns", n->rtt_ns == NETELECT_RTT_UNKNOWN ? json_null() : u64_json(n->rtt_err_ns),
                "source", src_name(n->source), "healthy", n->healthy != 0,
                "heard_age_ns", n->last_heard_ns ? u64_json(age) : json_null(), "self", n->id == self));
        } else {
            char heard[40];
            if (n->id == self)
                snprintf(heard, sizeof heard, "-");
            else if (n->last_heard_ns)
                snprintf(heard, sizeof heard, "%s ago", fmt_ns(age, b4, sizeof b4));
            else
                snprintf(heard, sizeof heard, "never");
            printf("%-20s %12s %12s %12s %-8s %-9s %s%s\n", idstr(n->id, b5),
                   fmt_ns(n->rtt_ns, b1, sizeof b1), fmt_ns(n->rtt_raw_ns, b2, sizeof b2),
                   fmt_ns(n->rtt_err_ns, b3, sizeof b3), src_name(n->source),
                   n->healthy ? "healthy" : "unhealthy", heard, n->id == self ? "  (self)" : "");
        }
    }
    if (!o.json)
        printf("\n%-24s %-28s %s\n", "CHANNEL", "LEADER", "MEMBERS");
    for (size_t i = 0; i < cs.len; i++) {
        const struct chan_answer *an = &ans[i];
        if (o.json) {
            json_t *m = json_array();
            for (size_t j = 0; j < cs.c[i].n; j++)
                json_array_append_new(m, id_json(cs.c[i].m[j]));
            json_t *c = json_pack("{s:s, s:o, s:o, s:o, s:b}", "name", cs.c[i].name, "members", m,
                "outcome", an->rc < 0 ? json_null() : json_string(outcome_name(an->res.outcome)),
                "leader", an->rc < 0 || an->res.outcome == NETELECT_NO_ELIGIBLE
                              ? json_null() : id_json(an->res.winner),
                "drained", an->drained);
            if (an->rc < 0)
                json_object_set_new(c, "error", json_pack("{s:i, s:s, s:s}", "code", an->rc,
                    "name", err_name(an->rc), "message", netelect_strerror(an->rc)));
            json_array_append_new(jc, c);
        } else {
            char leader[80];
            if (an->rc < 0)
                snprintf(leader, sizeof leader, "(%s)", netelect_strerror(an->rc));
            else if (an->res.outcome == NETELECT_NO_ELIGIBLE)
                snprintf(leader, sizeof leader, "none");
            else
                snprintf(leader, sizeof leader, "%s%s", idstr(an->res.winner, b5),
                         an->res.outcome == NETELECT_SELF_WINS ? " (self)" : "");
            printf("%-24s %-28s", cs.c[i].name, leader);
            for (size_t j = 0; j < cs.c[i].n; j++)
                printf("%s%s", j ? "," : " ", idstr(cs.c[i].m[j], b5));
            printf("%s\n", an->drained ? "  (self drained)" : "");
        }
    }
    if (o.json)
        print_json(with(reply_new(true, gen_val(g1)),
                        json_pack("{s:o, s:o, s:b, s:o, s:o}", "node_id", id_json(netelect_view_self(v)),
                                  "self", id_json(self), "agent_alive", agent_alive(v),
                                  "nodes", jn, "channels", jc)));
    else {
        json_decref(jn);
        json_decref(jc);
    }
    r = gone_code(v, EX_OK); /* as status, elect and rank: 4 when the agent is gone */
out:
    free(ans);
    free(nodes.n);
    free_chans(&cs);
    close_view(v);
    return r;
}

/* ---- elect / rank / watch -------------------------------------------------------- */

static int cmd_elect(const char *ch)
{
    struct netelect_view *v;
    int r = open_view(&v);
    if (r)
        return r;
    uint64_t self = o.has_self ? o.self : netelect_view_self(v);
    struct netelect_result res;
    uint64_t g0, g1;
    /* Report the generation the answer belongs to: retry if one was published meanwhile. */
    int tries = 0;
    do {
        g0 = netelect_view_generation(v);
        r = netelect_view_elect(v, ch, self, &res);
        g1 = netelect_view_generation(v);
    } while (r == 0 && g0 != g1 && ++tries < 100);
    if (r < 0) {
        r = fail(r, exit_for(r), "elect %s: %s", ch, netelect_strerror(r));
        close_view(v);
        return r;
    }
    char b[24];
    if (o.json)
        print_json(with(reply_new(true, gen_val(g1)),
            json_pack("{s:s, s:o, s:s, s:o, s:b}", "channel", ch, "self", id_json(self),
                      "outcome", outcome_name(res.outcome), "leader",
                      res.outcome == NETELECT_NO_ELIGIBLE ? json_null() : id_json(res.winner),
                      "agent_alive", agent_alive(v))));
    else if (res.outcome == NETELECT_NO_ELIGIBLE)
        printf("%s: no eligible replica\n", ch);
    else
        printf("%s: leader %s%s\n", ch, idstr(res.winner, b),
               res.outcome == NETELECT_SELF_WINS ? " (self)" : "");
    r = res.outcome == NETELECT_NO_ELIGIBLE ? EX_NONE : EX_OK;
    r = gone_code(v, r);
    close_view(v);
    return r;
}

/* rank: the order and each candidate's RTT from one version (a read section). */
struct rank_ctx {
    const char *ch;
    uint64_t self, gen, *ids, *rtt;
    size_t cap, count;
};

static int rank_fn(const struct netelect_snap *s, void *ctx)
{
    struct rank_ctx *k = ctx;
    k->gen = netelect_snap_generation(s);
    int r = netelect_snap_rank(s, k->ch, k->self, k->ids, k->cap, &k->count);
    if (r < 0)
        return r;
    if (k->count > k->cap)
        return 1; /* grow and read again */
    for (size_t i = 0; i < k->count; i++) {
        struct netelect_node_info ni = {.rtt_ns = NETELECT_RTT_UNKNOWN};
        if (netelect_snap_node(s, k->ids[i], &ni) < 0)
            ni.rtt_ns = NETELECT_RTT_UNKNOWN;
        k->rtt[i] = k->ids[i] == k->self ? 0 : ni.rtt_ns;
    }
    return 0;
}

static int cmd_rank(const char *ch)
{
    struct netelect_view *v;
    int r = open_view(&v);
    if (r)
        return r;
    struct rank_ctx k = {.ch = ch, .self = o.has_self ? o.self : netelect_view_self(v), .cap = 256};
    for (;;) {
        free(k.ids);
        free(k.rtt);
        k.ids = malloc(k.cap * sizeof *k.ids);
        k.rtt = malloc(k.cap * sizeof *k.rtt);
        if (!k.ids || !k.rtt) {
            r = -ENOMEM;
            break;
        }
        r = netelect_view_read(v, rank_fn, &k);
        if (r != 1)
            break;
        k.cap = k.count;
    }
    if (r < 0) {
        r = fail(r, exit_for(r), "rank %s: %s", ch, netelect_strerror(r));
        goto out;
    }
    char b[24], b1[32];
    json_t *arr = json_array();
    if (!o.json)
        printf("%-5s %-20s %12s\n", "RANK", "NODE", "RTT");
    for (size_t i = 0; i < k.count; i++) {
        if (o.json)
            json_array_append_new(arr, json_pack("{s:o, s:o, s:b}", "id", id_json(k.ids[i]),
                                                 "rtt_ns", ns_json(k.rtt[i]), "self",
                                                 k.ids[i] == k.self));
        else
            printf("%-5zu %-20s %12s%s\n", i + 1, idstr(k.ids[i], b), fmt_ns(k.rtt[i], b1, sizeof b1),
                   k.ids[i] == k.self ? "  (self)" : "");
    }
    if (o.json)
        print_json(with(reply_new(true, gen_val(k.gen)),
                        json_pack("{s:s, s:o, s:o, s:b}", "channel", ch, "self", id_json(k.self),
                                  "order", arr, "agent_alive", agent_alive(v))));
    else
        json_decref(arr);
    r = gone_code(v, k.count ? EX_OK : EX_NONE);
out:
    free(k.ids);
    free(k.rtt);
    close_view(v);
    return r;
}

/* watch --exec: runs the hook to completion (so never two at once), with
 * the change in its environment.  Changes during the run are coalesced:
 * the next election after it reports the state then. */
static void run_hook(const char *ch, const char *event, const struct netelect_result *res,
                     uint64_t gen)
{
    char b[24], g[24];
    pid_t pid = fork();
    if (pid == 0) {
        snprintf(g, sizeof g, "%" PRIu64, gen);
        setenv("NETELECT_CHANNEL", ch, 1);
        setenv("NETELECT_EVENT", event, 1);
        setenv("NETELECT_OUTCOME", res ? outcome_name(res->outcome) : "", 1);
        setenv("NETELECT_LEADER",
               res && res->outcome != NETELECT_NO_ELIGIBLE ? idstr(res->winner, b) : "", 1);
        setenv("NETELECT_GENERATION", g, 1);
        execl("/bin/sh", "sh", "-c", o.exec, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) {
        fprintf(stderr, "netelect: watch: cannot run the hook: %s\n", strerror(errno));
        return;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
}

/*
 * Prints the leader, then each change, as it happens: sleeps in
 * netelect_view_wait() between changes (no polling while the agent lives),
 * and polls every 100 ms only while the agent is gone, to see a new one
 * come (a dead agent wakes nobody).
 */
static int cmd_watch(const char *ch)
{
    struct netelect_view *v;
    int r = open_view(&v);
    if (r)
        return r;
    /* No SA_RESTART: a signal ends the wait, and the loop sees `stop`. */
    struct sigaction sa = {.sa_handler = on_sig};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    uint64_t self = o.has_self ? o.self : netelect_view_self(v);
    uint64_t printed = 0;
    int last_r = 1;
    bool last_alive = true;
    struct netelect_result last = {.outcome = (enum netelect_outcome)-1};
    int rc = EX_OK;
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (!stop && (!o.count || printed < o.count)) {
        struct netelect_result res = {0};
        uint64_t g = netelect_view_generation(v);
        r = netelect_view_elect_gen(v, ch, self, &res, &g);
        struct netelect_view_status st = {.size = sizeof st};
        const bool alive = netelect_view_status(v, &st) < 0 || st.writer_alive;
        if (r != last_r || alive != last_alive ||
            (r == 0 && (res.outcome != last.outcome || res.winner != last.winner))) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            struct tm tm;
            gmtime_r(&ts.tv_sec, &tm);
            char when[64], b[24];
            snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000);
            uint64_t tns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
            const char *event = r < 0                                  ? "error"
                                : !alive                               ? "gone"
                                : res.outcome == NETELECT_NO_ELIGIBLE ? "no-eligible"
                                                                       : "leader";
            if (o.json) {
                /* docs/json.md, $defs/watch: the reply shape of every verb. */
                json_t *j = with(reply_new(r == 0, r == 0 ? gen_val(g) : -1),
                                 json_pack("{s:s, s:I, s:s, s:o, s:b}", "ts", when, "ts_ns",
                                           (json_int_t)tns, "channel", ch, "self", id_json(self),
                                           "agent_alive", alive));
                if (r == 0)
                    with(j, json_pack("{s:s, s:s, s:o}", "event", event, "outcome",
                                      outcome_name(res.outcome), "leader",
                                      res.outcome == NETELECT_NO_ELIGIBLE ? json_null()
                                                                          : id_json(res.winner)));
                else
                    json_object_set_new(j, "error",
                                        json_pack("{s:i, s:s, s:s}", "code", r, "name", err_name(r),
                                                  "message", netelect_strerror(r)));
                print_json(j);
            } else if (r < 0)
                printf("%s %s: %s\n", when, ch, chan_err(r));
            else if (res.outcome == NETELECT_NO_ELIGIBLE)
                printf("%s %s: no eligible replica (generation %" PRIu64 ")%s\n", when, ch, g,
                       alive ? "" : "; agent gone, from its last view");
            else
                printf("%s %s: leader %s%s (generation %" PRIu64 ")%s\n", when, ch,
                       idstr(res.winner, b), res.outcome == NETELECT_SELF_WINS ? " (self)" : "", g,
                       alive ? "" : "; agent gone, from its last view");
            printed++;
            last_r = r;
            last_alive = alive;
            last = res;
            if (r == NETELECT_ENOCHAN && printed == 1)
                rc = EX_ERR; /* unknown channel: say so once and carry on watching */
            if (o.exec)
                run_hook(ch, event, r == 0 ? &res : NULL, g);
            continue; /* the hook took time: look again before sleeping */
        }
        if (alive && r == 0) {
            r = netelect_view_wait(v, g, UINT64_MAX);
            if (r == 0 || r == -EINTR || r == -EOWNERDEAD)
                continue;
        }
        struct timespec d = {0, 100000000};
        nanosleep(&d, NULL);
    }
    netelect_view_close(v);
    return rc;
}

/* ---- control ------------------------------------------------------------------ */

static int control(json_t *req, json_t **reply)
{
    char *line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!line)
        return EX_ERR;
    int rc = EX_ERR;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", o.control);
    struct timeval tv = {10, 0};
    if (fd < 0)
        goto out;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        const int e = errno;
        rc = fail(-e, EX_ERR, "cannot connect to control socket %s: %s%s", o.control, strerror(e),
                  e == ENOENT || e == ECONNREFUSED ? " (is netelectd running?)" : "");
        goto out;
    }
    size_t l = strlen(line);
    line[l] = '\n'; /* json_dumps leaves the NUL we overwrite: send l + 1 bytes */
    if (send(fd, line, l + 1, MSG_NOSIGNAL) != (ssize_t)(l + 1)) {
        rc = fail(-errno, EX_ERR, "control: send: %s", strerror(errno));
        goto out;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            goto out;
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            const int e = n < 0 ? errno : ECONNRESET;
            rc = fail(-e, EX_ERR, "control: no reply from the agent%s%s", n < 0 ? ": " : "",
                      n < 0 ? strerror(e) : "");
            free(buf);
            goto out;
        }
        len += (size_t)n;
        if (memchr(buf, '\n', len))
            break;
    }
    json_error_t je;
    *reply = json_loadb(buf, (size_t)((char *)memchr(buf, '\n', len) - buf), 0, &je);
    free(buf);
    if (!*reply || !json_is_object(*reply)) {
        rc = fail(-EBADMSG, EX_ERR, "control: unreadable reply: %s", *reply ? "not an object" : je.text);
        json_decref(*reply);
        *reply = NULL;
        goto out;
    }
    json_t *g = json_object_get(*reply, "generation");
    if (json_is_integer(g))
        g_gen = json_integer_value(g);
    rc = EX_OK;
out:
    if (fd >= 0)
        close(fd);
    free(line);
    return rc;
}

static const char *errmsg(json_t *rep)
{
    const char *m = json_string_value(json_object_get(rep, "error"));
    return m ? m : "(no message)";
}

/* The agent's error code: its "errno" (negative), -EPROTO if it gave none. */
static int agent_code(json_t *rep)
{
    json_int_t c = json_integer_value(json_object_get(rep, "errno"));
    return c < 0 && c >= INT32_MIN ? (int)c : -EPROTO;
}

/*
 * A control reply, consumed, under the --json contract: the agent's fields
 * after schema_version, verb, generation and ok (its "error" string and
 * "errno" become the error object).
 */
static void print_agent_reply(json_t *rep)
{
    const bool ok = json_is_true(json_object_get(rep, "ok"));
    json_t *g = json_object_get(rep, "generation");
    json_t *j = reply_new(ok, json_is_integer(g) ? json_integer_value(g) : -1);
    if (ok) {
        json_object_update_missing(j, rep);
    } else {
        const int code = agent_code(rep);
        json_object_set_new(j, "error", json_pack("{s:i, s:s, s:s}", "code", code, "name",
                                                  err_name(code), "message", errmsg(rep)));
    }
    json_decref(rep);
    print_json(j);
}

/* A refusal: says so (on stderr, and as JSON on stdout under --json). */
static int refused(json_t *rep, const char *what)
{
    int r = fail(agent_code(rep), EX_ERR, "%s: %s", what, errmsg(rep));
    json_decref(rep);
    return r;
}

static int simple(json_t *req)
{
    json_t *rep = NULL;
    int rc = control(req, &rep);
    if (rc)
        return rc;
    if (!json_is_true(json_object_get(rep, "ok")))
        return refused(rep, "the agent refused");
    if (o.json)
        print_agent_reply(rep);
    else {
        printf("ok\n");
        json_decref(rep);
    }
    return EX_OK;
}

static int cmd_stats(void)
{
    json_t *rep = NULL;
    int rc = control(json_pack("{s:s}", "cmd", "stats"), &rep);
    if (rc) {
        /* A textfile collector's file then says the agent is down, not
         * nothing (the reason is on stderr, the exit status is 1). */
        if (o.prometheus)
            fputs(NETELECT_METRICS_DOWN, stdout);
        return rc;
    }
    if (!json_is_true(json_object_get(rep, "ok")))
        return refused(rep, "stats");
    /* The agent pages its peer list (a reply stays below its 1 MiB output
     * limit): follow "peers_next" and print one list.  Peers that come or
     * go between pages may be missed or listed once more. */
    json_t *all = json_object_get(rep, "peers");
    const char *next;
    uint64_t prev = 0;
    while (json_is_array(all) && (next = json_string_value(json_object_get(rep, "peers_next")))) {
        uint64_t after;
        if (agent_parse_id(next, &after) < 0 || after <= prev) {
            rc = fail(-EPROTO, EX_ERR, "stats: the agent's page cursor '%s' does not advance", next);
            json_decref(rep);
            return rc;
        }
        prev = after;
        json_t *page = NULL;
        rc = control(json_pack("{s:s, s:s}", "cmd", "stats", "after", next), &page);
        if (rc) {
            json_decref(rep);
            return rc;
        }
        if (!json_is_true(json_object_get(page, "ok"))) {
            json_decref(rep);
            return refused(page, "stats (next page of peers)");
        }
        json_array_extend(all, json_object_get(page, "peers"));
        json_t *pn = json_object_get(page, "peers_next");
        if (pn)
            json_object_set(rep, "peers_next", pn);
        else
            json_object_del(rep, "peers_next");
        json_decref(page);
    }
    if (o.json) {
        print_agent_reply(rep);
        return EX_OK;
    }
    if (o.prometheus) {
        char *text;
        size_t len;
        rc = agent_metrics_render(rep, &text, &len);
        json_decref(rep);
        if (rc < 0) {
            fputs(NETELECT_METRICS_DOWN, stdout);
            return fail(rc, EX_ERR, "stats: %s", strerror(-rc));
        }
        fwrite(text, 1, len, stdout);
        free(text);
        return fflush(stdout) ? fail(-errno, EX_ERR, "stats: %s", strerror(errno)) : EX_OK;
    }
    const char *key;
    json_t *val;
    json_object_foreach(rep, key, val) {
        if (json_is_integer(val))
            printf("%-18s %lld\n", key, (long long)json_integer_value(val));
        else if (json_is_string(val))
            printf("%-18s %s\n", key, json_string_value(val));
        else if (json_is_boolean(val) && strcmp(key, "ok"))
            printf("%-18s %s\n", key, json_is_true(val) ? "yes" : "no");
    }
    json_t *dch = json_object_get(rep, "drained_channels");
    if (json_is_true(json_object_get(rep, "drain_all")))
        printf("%-18s %s\n", "drained", "every channel");
    else if (json_array_size(dch)) {
        printf("%-18s", "drained");
        size_t k;
        json_t *e;
        json_array_foreach(dch, k, e)
            printf("%s%s", k ? ", " : " ", json_string_value(e));
        printf("\n");
    }
    printf("\n%-18s %s\n", "DROP REASON", "COUNT");
    json_object_foreach(json_object_get(rep, "drops"), key, val)
        printf("%-18s %lld\n", key, (long long)json_integer_value(val));
    printf("\n%-20s %-24s %-9s %12s %8s %8s %6s\n", "PEER", "ADDR", "HEALTH", "RTT", "SENT",
           "MISSED", "FLAPS");
    size_t i;
    json_array_foreach(json_object_get(rep, "peers"), i, val) {
        char b[32];
        json_t *rt = json_object_get(val, "rtt_ns"); /* null (or, from an older agent, -1): unknown */
        json_int_t rtt = json_is_integer(rt) ? json_integer_value(rt) : -1;
        printf("%-20s %-24s %-9s %12s %8lld %8lld %6lld\n",
               json_string_value(json_object_get(val, "id")),
               json_string_value(json_object_get(val, "addr")),
               json_is_true(json_object_get(val, "healthy")) ? "healthy" : "unhealthy",
               fmt_ns(rtt < 0 ? NETELECT_RTT_UNKNOWN : (uint64_t)rtt, b, sizeof b),
               (long long)json_integer_value(json_object_get(val, "sent")),
               (long long)json_integer_value(json_object_get(val, "missed")),
               (long long)json_integer_value(json_object_get(val, "flaps")));
    }
    json_decref(rep);
    return EX_OK;
}

/* drain / undrain: says in words what changed (JSON: the agent's reply). */
static int cmd_drain(bool on, const char *ch)
{
    json_t *req = json_pack("{s:s}", "cmd", on ? "drain" : "undrain");
    if (ch)
        json_object_set_new(req, "channel", json_string(ch));
    json_t *rep = NULL;
    int rc = control(req, &rep);
    if (rc)
        return rc;
    if (!json_is_true(json_object_get(rep, "ok")))
        return refused(rep, "the agent refused");
    if (o.json) {
        print_agent_reply(rep);
        return EX_OK;
    }
    const char *what = ch ? ch : "every channel";
    if (!json_is_true(json_object_get(rep, "changed")))
        printf("%s %s: no change (already so)\n", on ? "drain" : "undrain", what);
    else if (on)
        printf("drained from %s%s: this node is no longer a candidate there, until `netelect "
               "undrain%s%s` or netelectd restarts\n", ch ? "channel " : "", what, ch ? " " : "",
               ch ? ch : "");
    else
        printf("undrained %s%s: this node is a candidate again\n", ch ? "channel " : "", what);
    json_decref(rep);
    return EX_OK;
}

static int cmd_raw(const char *text)
{
    /* Sent verbatim (not re-encoded), so malformed requests can be tested. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", o.control);
    struct timeval tv = {10, 0};
    if (fd < 0)
        return fail(-errno, EX_ERR, "raw: socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        const int e = errno;
        close(fd);
        return fail(-e, EX_ERR, "cannot connect to control socket %s: %s", o.control, strerror(e));
    }
    size_t l = strlen(text);
    if (send(fd, text, l, MSG_NOSIGNAL) != (ssize_t)l || send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
        close(fd);
        return EX_ERR;
    }
    char buf[65536];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(buf, '\n', len))
            break;
    }
    close(fd);
    buf[len] = 0;
    if (!len)
        return fail(-ECONNRESET, EX_ERR, "raw: no reply");
    /* The agent's line, verbatim: raw is outside the --json contract. */
    fputs(buf, stdout);
    json_t *rep = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    int ok = rep && json_is_true(json_object_get(rep, "ok"));
    json_decref(rep);
    return ok ? EX_OK : EX_ERR;
}

static int parse_id_arg(const char *s, uint64_t *id)
{
    if (agent_parse_id(s, id) < 0) {
        die_usage("'%s' is not a node id (1..2^64-1, decimal or 0x-hex)", s);
        return -1;
    }
    return 0;
}

static json_t *id_list(char **v, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        uint64_t id;
        char b[24];
        if (!strcmp(v[i], "self")) {
            json_array_append_new(arr, json_string("self"));
            continue;
        }
        if (parse_id_arg(v[i], &id) < 0) {
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, json_string(idstr(id, b)));
    }
    return arr;
}

/* ---- the verbs ------------------------------------------------------------------ */

struct verb;
typedef int verb_fn(const struct verb *v, int np, char **pos);

/*
 * One entry per verb: dispatch, `netelect --help` and `netelect VERB --help`
 * all come from here (man/netelect.1.scd documents the same verbs; the
 * cli-help test holds the two together).  args is the synopsis after the
 * verb's name, summary the one line of the overview, help the paragraph of
 * `netelect VERB --help`.
 */
struct verb {
    const char *name, *args;
    verb_fn *run;
    bool control;               /* over the control socket (else: from the segment) */
    const char *summary, *help;
};

/* die_usage unless the verb got exactly k words (itself included) */
static bool need(int np, int k, const char *what)
{
    if (np == k)
        return true;
    die_usage("%s wants %s", g_verb, what);
    return false;
}

static int run_status(const struct verb *v, int np, char **pos)
{
    (void)v, (void)pos;
    return need(np, 1, "no arguments") ? cmd_status() : EX_USAGE;
}

static int run_view(const struct verb *v, int np, char **pos)
{
    (void)v, (void)pos;
    return need(np, 1, "no arguments") ? cmd_view() : EX_USAGE;
}

static int run_elect(const struct verb *v, int np, char **pos)
{
    (void)v;
    return need(np, 2, "CHANNEL") ? cmd_elect(pos[1]) : EX_USAGE;
}

static int run_rank(const struct verb *v, int np, char **pos)
{
    (void)v;
    return need(np, 2, "CHANNEL") ? cmd_rank(pos[1]) : EX_USAGE;
}

static int run_watch(const struct verb *v, int np, char **pos)
{
    (void)v;
    return need(np, 2, "CHANNEL") ? cmd_watch(pos[1]) : EX_USAGE;
}

static int run_peer(const struct verb *v, int np, char **pos)
{
    (void)v;
    char b[24];
    uint64_t id;
    if (np >= 2 && !strcmp(pos[1], "add")) {
        g_verb = "peer-add";
        if (!need(np, 4, "add ID ADDR"))
            return EX_USAGE;
        struct sockaddr_storage ss;
        socklen_t l;
        if (parse_id_arg(pos[2], &id) < 0)
            return EX_USAGE;
        if (agent_parse_addr(pos[3], &ss, &l, 0) < 0)
            return die_usage("'%s' is not a numeric address:port ([v6]:port for IPv6)", pos[3]);
        return simple(json_pack("{s:s, s:s, s:s}", "cmd", "peer-add", "id", idstr(id, b), "addr", pos[3]));
    }
    if (np >= 2 && !strcmp(pos[1], "remove")) {
        g_verb = "peer-remove";
        if (!need(np, 3, "remove ID"))
            return EX_USAGE;
        if (parse_id_arg(pos[2], &id) < 0)
            return EX_USAGE;
        return simple(json_pack("{s:s, s:s}", "cmd", "peer-remove", "id", idstr(id, b)));
    }
    return die_usage("peer wants add or remove");
}

static int run_channel(const struct verb *v, int np, char **pos)
{
    (void)v;
    if (np < 3 || (strcmp(pos[1], "add") && strcmp(pos[1], "remove")))
        return die_usage("channel wants add NAME ID... or remove NAME [ID...]");
    g_verb = !strcmp(pos[1], "add") ? "channel-add" : "channel-remove";
    if (!agent_valid_chan_name(pos[2]))
        return die_usage("'%s' is not a valid channel name", pos[2]);
    bool add = !strcmp(pos[1], "add");
    if (add && np < 4)
        return die_usage("channel add wants at least one member");
    json_t *req = json_pack("{s:s, s:s}", "cmd", add ? "channel-add" : "channel-remove", "name", pos[2]);
    if (np > 3) {
        json_t *m = id_list(pos + 3, np - 3);
        if (!m) {
            json_decref(req);
            return EX_USAGE;
        }
        json_object_set_new(req, "members", m);
    }
    return simple(req);
}

static int run_set_rtt(const struct verb *v, int np, char **pos)
{
    (void)v;
    char b[24];
    uint64_t id, ns;
    if (!need(np, 3, "ID RTT"))
        return EX_USAGE;
    if (parse_id_arg(pos[1], &id) < 0)
        return EX_USAGE;
    if (agent_parse_duration(pos[2], &ns) < 0 && agent_parse_u64(pos[2], &ns) < 0)
        return die_usage("'%s' is not an RTT (ns, or with a unit: 250us, 1.5ms)", pos[2]);
    if (ns > INT64_MAX)
        return die_usage("RTT too large");
    return simple(json_pack("{s:s, s:s, s:I}", "cmd", "set-rtt", "id", idstr(id, b), "rtt_ns", (json_int_t)ns));
}

static int run_set_health(const struct verb *v, int np, char **pos)
{
    (void)v;
    char b[24];
    uint64_t id;
    if (!need(np, 3, "ID up|down"))
        return EX_USAGE;
    if (parse_id_arg(pos[1], &id) < 0)
        return EX_USAGE;
    int up = !strcmp(pos[2], "up") || !strcmp(pos[2], "healthy");
    if (!up && strcmp(pos[2], "down") && strcmp(pos[2], "unhealthy"))
        return die_usage("set-health wants up or down");
    return simple(json_pack("{s:s, s:s, s:b}", "cmd", "set-health", "id", idstr(id, b), "healthy", up));
}

static int run_clear(const struct verb *v, int np, char **pos)
{
    (void)v;
    char b[24];
    uint64_t id;
    if (!need(np, 2, "ID"))
        return EX_USAGE;
    if (parse_id_arg(pos[1], &id) < 0)
        return EX_USAGE;
    return simple(json_pack("{s:s, s:s}", "cmd", "clear", "id", idstr(id, b)));
}

static int run_stats(const struct verb *v, int np, char **pos)
{
    (void)v, (void)pos;
    return need(np, 1, "no arguments") ? cmd_stats() : EX_USAGE;
}

/* drain and undrain */
static int run_drain(const struct verb *v, int np, char **pos)
{
    if (np > 2)
        return die_usage("%s wants at most one CHANNEL", v->name);
    if (np == 2 && !agent_valid_chan_name(pos[1]))
        return die_usage("'%s' is not a valid channel name", pos[1]);
    return cmd_drain(!strcmp(v->name, "drain"), np == 2 ? pos[1] : NULL);
}

static int run_reload(const struct verb *v, int np, char **pos)
{
    (void)v, (void)pos;
    return need(np, 1, "no arguments") ? simple(json_pack("{s:s}", "cmd", "reload")) : EX_USAGE;
}

static int run_raw(const struct verb *v, int np, char **pos)
{
    (void)v;
    return need(np, 2, "one JSON argument") ? cmd_raw(pos[1]) : EX_USAGE;
}

static const struct verb verbs[] = {
    {"status", "", run_status, false,
     "agent alive?, heartbeat age, generation, node id, counts",
     "Agent liveness, heartbeat age, generation, node id and counts, from the\n"
     "segment. Exit 0 alive, 4 gone (exited, killed, hung or unable to publish), 1 no segment."},
    {"view", "", run_view, false,
     "nodes and channels",
     "Every node (id, rtt, raw sample, error, source, health, last heard) and\n"
     "every channel (members, leader for --self or the agent's node).\n"
     "Exit 0, 4 agent gone (the view shown is its last one)."},
    {"elect", "CHANNEL [--self ID]", run_elect, false,
     "the leader of CHANNEL",
     "The leader of CHANNEL as ID (default: the agent's node) sees it.\n"
     "Exit 0 a leader, 3 no eligible replica, 4 agent gone, 1 unknown channel."},
    {"rank", "CHANNEL [--self ID]", run_rank, false,
     "the failover order of CHANNEL",
     "The failover order of CHANNEL (winner first). Exit codes as elect."},
    {"watch", "CHANNEL [--self ID] [--count N] [--exec CMD]", run_watch, false,
     "print each leader change as it happens",
     "Prints the leader, then each change of it with a UTC timestamp, as it\n"
     "happens (sleeps until the agent publishes: no polling while it lives),\n"
     "until SIGINT/SIGTERM or N lines (the first line counts).  A dead agent\n"
     "is reported (\"agent gone\") within 3 heartbeats, ESTALE after the\n"
     "fail-static window.  --exec CMD runs CMD on each change, never two at once,\n"
     "with NETELECT_CHANNEL, NETELECT_EVENT, NETELECT_OUTCOME, NETELECT_LEADER\n"
     "and NETELECT_GENERATION set."},
    {"peer", "add ID ADDR | peer remove ID", run_peer, true,
     "add (or re-address) / remove a probed peer",
     "Adds (or re-addresses) / removes a probed peer. ADDR: a.b.c.d:port or [v6]:port."},
    {"channel", "add NAME ID|self... | channel remove NAME [ID|self...]", run_channel, true,
     "add members / remove members or the channel",
     "Adds members (creating the channel) / removes members or the whole channel."},
    {"set-rtt", "ID RTT", run_set_rtt, true,
     "override ID's RTT",
     "Overrides ID's RTT (source operator). RTT: ns, or with a unit: 250us, 1.5ms, 2s."},
    {"set-health", "ID up|down", run_set_health, true,
     "override ID's health",
     "Overrides ID's health."},
    {"clear", "ID", run_clear, true,
     "drop ID's RTT and health overrides",
     "Drops ID's RTT and health overrides."},
    {"drain", "[CHANNEL]", run_drain, true,
     "stop being a candidate",
     "This node stops being a candidate in CHANNEL (every channel without one):\n"
     "it is published as unhealthy there, so every reader elects another replica.\n"
     "Lasts until `netelect undrain` or a restart of netelectd (a reload keeps it)."},
    {"undrain", "[CHANNEL]", run_drain, true,
     "resume being a candidate",
     "Ends a drain of CHANNEL (without one: every drain, all channels included)."},
    {"stats", "[--format=text|prometheus]", run_stats, true,
     "the agent's counters",
     "The agent's counters: packets, drops by reason, publishes, control requests, peers.\n"
     "--format=prometheus: the Prometheus text format (for node_exporter's textfile\n"
     "collector); an agent that cannot be asked gives netelect_up 0 and exit 1."},
    {"reload", "", run_reload, true,
     "re-read the agent's configuration",
     "Makes the agent re-read its configuration (as SIGHUP); a bad one is refused\n"
     "with file:line and the running configuration is kept."},
    {"raw", "JSON", run_raw, true,
     "send one raw control request",
     "Sends one raw request line to the control socket and prints the reply\n"
     "(for debugging and tests)."},
};

static const struct verb *verb_find(const char *name)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(verbs[i].name, name))
            return &verbs[i];
    return NULL;
}

/* Prints text indented by two spaces, line by line. */
static void indent(FILE *f, const char *text)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        fprintf(f, "  %.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: netelect [--shm NAME] [--expect-uid UID] [--control PATH] [--json] VERB [ARGS]\n"
"       (options anywhere on the line, as --opt VALUE or --opt=VALUE)\n");
    for (int control = 0; control < 2; control++) {
        fprintf(f, "\n%s\n", control ? "Driving the agent (over its control socket):"
                                     : "Reading the view (from the shared-memory segment, no agent round trip):");
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
            const struct verb *v = &verbs[i];
            if (v->control != control)
                continue;
            char syn[96];
            snprintf(syn, sizeof syn, "%s%s%s", v->name, v->args[0] ? " " : "", v->args);
            if (strlen(syn) <= 27)
                fprintf(f, "  %-27s %s\n", syn, v->summary);
            else
                fprintf(f, "  %s\n  %-27s %s\n", syn, "", v->summary);
        }
    }
    fprintf(f,
"\n"
"Options (anywhere on the line, before or after the verb; `--` ends them):\n"
"  --shm NAME       segment name or path (default: $NETELECT_SHM, else netelect,\n"
"                   i.e. /dev/shm/netelect)\n"
"  --expect-uid UID trust only a segment published by UID (default: root, the\n"
"                   netelect agent user, or yourself; see shm/README.md, Trust)\n"
"  --control PATH   control socket (default: $NETELECT_CONTROL, else\n"
"                   " NETELECT_DEFAULT_CONTROL ")\n"
"  --json           one JSON object per result, errors included (on stdout, same\n"
"                   exit status), for scripts: the contract is docs/json.md\n"
"  --self ID        elect as node ID instead of the agent's own node\n"
"  --count N        watch: stop after N lines\n"
"  --format FMT     stats: text (default) or prometheus (the Prometheus text format)\n"
"  --exec CMD       watch: run CMD (sh -c) on each change, one at a time, with\n"
"                   NETELECT_CHANNEL, _EVENT (leader, no-eligible, gone, error),\n"
"                   _OUTCOME, _LEADER and _GENERATION in its environment\n"
"  -h, --help       this text; `netelect VERB --help` for one verb\n"
"  -V, --version\n"
"\n"
"Environment: NETELECT_SHM and NETELECT_CONTROL set the defaults of --shm and\n"
"--control (an option on the line wins); NETELECT_ISA as for the library.\n"
"\n"
"Ids are decimal or 0x-hex. Exit status: 0 success; 1 error (no segment, agent\n"
"unreachable or refused the request, unknown channel); 2 usage error; 3 no\n"
"eligible replica (elect, rank); 4 the agent is gone (it exited, was killed or\n"
"hangs: no heartbeat for 3 periods, 300 ms by default; elect and rank still\n"
"print the answer from its last view while the library serves it).\n");
}

/* `netelect VERB --help`: the verb's synopsis and paragraph (the overview
 * for a verb that does not exist). */
static int verb_usage(const char *name)
{
    const struct verb *v = verb_find(name);
    if (!v) {
        usage(stdout);
        return EX_OK;
    }
    printf("usage: netelect %s%s%s\n", v->name, v->args[0] ? " " : "", v->args);
    indent(stdout, v->help);
    return EX_OK;
}


/* Long options; getopt_long also takes --opt=VALUE and unambiguous prefixes. */
static const struct option long_opts[] = {
    {"shm", required_argument, NULL, 's'},
    {"control", required_argument, NULL, 'c'},
    {"json", no_argument, NULL, 'j'},
    {"self", required_argument, NULL, 'S'},
    {"expect-uid", required_argument, NULL, 'u'},
    {"exec", required_argument, NULL, 'e'},
    {"count", required_argument, NULL, 'n'},
    {"format", required_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Whether --json is on the line as an option, before any "--": not when it
 * is the value of another option (`--exec --json` runs a command named
 * --json), matched as getopt_long matches (exact name or unique prefix). */
static bool json_asked(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) || strchr(arg, '='))
            continue;
        const struct option *hit = NULL;
        int hits = 0;
        for (const struct option *p = long_opts; p->name; p++) {
            if (!strcmp(p->name, arg + 2)) {
                hit = p;
                hits = 1;
                break;
            }
            if (strstr(p->name, arg + 2) == p->name) { /* a prefix of it */
                hit = p;
                hits++;
            }
        }
        if (hits != 1)
            continue;
        if (hit->val == 'j')
            return true;
        if (hit->has_arg == required_argument)
            i++; /* its value, whatever it looks like */
    }
    return false;
}

int main(int argc, char **argv)
{
    char *pos[64];
    int np = 0;
    const char *env = getenv("NETELECT_SHM");
    if (env && *env)
        o.shm = env;
    env = getenv("NETELECT_CONTROL");
    if (env && *env)
        o.control = env;
    /* --json first, so that errors in the options before it are JSON too. */
    o.json = json_asked(argc, argv);
    /* "-": options anywhere, positionals kept in order as they come (also
     * under POSIXLY_CORRECT); ":": a missing value is ours to report. */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "-:hV", long_opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (np == 64)
                return die_usage("too many arguments");
            pos[np++] = optarg;
            break;
        case 'j':
            o.json = true;
            break;
        case 'h':
            o.help = true;
            break;
        case 'V':
            printf("netelect %s (libnetelect %s, kernels %s)\n", NETELECT_VERSION_STRING_CLI,
                   netelect_version(), netelect_isa());
            return EX_OK;
        case 's':
            o.shm = optarg;
            break;
        case 'c':
            o.control = optarg;
            break;
        case 'S':
            if (parse_id_arg(optarg, &o.self) < 0)
                return EX_USAGE;
            o.has_self = true;
            break;
        case 'u': {
            uint64_t u;
            if (agent_parse_u64(optarg, &u) < 0 || u >= UINT32_MAX)
                return die_usage("--expect-uid wants a numeric uid, not '%s'", optarg);
            o.expect_uid = (uint32_t)u;
            o.has_uid = true;
            break;
        }
        case 'e':
            o.exec = optarg;
            break;
        case 'n':
            if (agent_parse_u64(optarg, &o.count) < 0 || !o.count)
                return die_usage("--count wants a positive integer, not '%s'", optarg);
            break;
        case 'f':
            if (strcmp(optarg, "text") && strcmp(optarg, "prometheus"))
                return die_usage("--format wants text or prometheus, not '%s'", optarg);
            o.prometheus = !strcmp(optarg, "prometheus");
            break;
        case ':':
            return die_usage("option %s wants a value", argv[optind - 1]);
        default:
            if (optopt)
                return die_usage("unknown option -%c", optopt);
            return die_usage("unknown option %s", argv[optind - 1]);
        }
    }
    while (optind < argc) { /* after "--" */
        if (np == 64)
            return die_usage("too many arguments");
        pos[np++] = argv[optind++];
    }
    if (!np) {
        if (o.help) {
            usage(stdout);
            return EX_OK;
        }
        if (o.json)
            return die_usage("no verb");
        usage(stderr);
        return EX_USAGE;
    }
    const char *verb = pos[0];
    if (o.help)
        return verb_usage(verb);
    g_verb = verb;
    if (o.prometheus && strcmp(verb, "stats"))
        return die_usage("--format=prometheus is for stats only");
    if (o.prometheus && o.json)
        return die_usage("--format=prometheus and --json exclude each other");
    const struct verb *v = verb_find(verb);
    if (!v) {
        g_verb = NULL;
        return die_usage("unknown verb '%s'", verb);
    }
    return v->run(v, np, pos);
}
