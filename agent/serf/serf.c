/* SPDX-License-Identifier: MIT */
/*
 * Serf RPC client: connection state machine, request queue, reply decoding,
 * member table and coordinate polling.  See serf.h for the usage contract
 * and docs/serf.md for the protocol as Serf 0.9.4 speaks it.
 *
 * Protocol shape (Serf's cmd/serf/command/agent/ipc.go): every message is a
 * msgpack map, concatenated with no length prefix.  A request is a header
 * {Command, Seq} plus a body for commands that take arguments; a reply is a
 * header {Seq, Error} plus a body only for the commands that return data,
 * and only when the header carries no error (Serf answers "Handshake
 * required", "Authentication required" and unknown commands with a bare
 * header).  Serf handles one client's requests in order, so replies arrive
 * in request order, except that a `stream` subscription keeps sending
 * {Seq: stream's seq} headers followed by {Event, Members} bodies after its
 * bare acknowledgement.  Hence the decoder needs to know, for each header,
 * whether a body follows: that is what the pending-request ring records.
 */
#include "agent/serf/serf.h"
#include "agent/serf/serf_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <msgpack.h>

#include "netelect.h"

#define DEFAULT_RPC_ADDR "127.0.0.1:7373"
#define DEFAULT_ID_TAG "nid"
#define DEFAULT_CHANNEL_TAG "netelect-channels"
#define DEFAULT_COORD_PERIOD_NS (2ull * 1000000000ull)
#define DEFAULT_BACKOFF_MIN_NS (100ull * 1000000ull)
#define DEFAULT_BACKOFF_MAX_NS (10ull * 1000000000ull)
#define MAX_CFG_STR 4096u
#define READ_CHUNK 65536u
/* Bounds one handle() call so a flood cannot starve the agent's loop; the
 * fd stays readable, so level-triggered epoll comes straight back. */
#define MAX_READS_PER_HANDLE 64
#define MEMBER_STREAM_TYPES "member-join,member-leave,member-failed,member-update,member-reap"
#define DEFAULT_STATUS_POLL_NS (50ull * 1000000ull)
/* Serf compiles "^" + Status + "$" (ipc.go filterMembers), which anchors
 * only the first and last alternatives of an ungrouped alternation: with
 * "fail|alive" serf 0.9.4 returns failed members too.  The group makes every
 * alternative a whole-status match, so a status Serf adds later (say
 * "left-over") cannot slip in.  Only non-alive members come back, so the
 * reply stays small however big the fleet. */
#define STATUS_FILTER "(failed|left|leaving)"

enum req_kind { REQ_HANDSHAKE, REQ_AUTH, REQ_STATS, REQ_STREAM, REQ_MEMBERS, REQ_COORD, REQ_STATUS };
enum body_kind { BODY_NONE, BODY_STATS, BODY_MEMBERS, BODY_EVENT, BODY_COORD, BODY_STATUS };
enum conn_state { ST_IDLE, ST_CONNECTING, ST_OPEN };

struct pending {
    uint64_t seq;
    uint64_t deadline;
    enum req_kind kind;
    char *node; /* REQ_COORD: whose coordinate; NULL means our own */
};

struct member {
    char *name;
    size_t name_len;
    uint64_t hash;
    char *channels;
    uint64_t node_id;
    int has_id;
    enum netelect_serf_status status;
    char addr[46];
    uint16_t port;
    uint64_t gen; /* snapshot generation that last saw it */
    size_t idx;   /* position in the dense array */
    struct member *next;
    /* Id ownership (docs/serf.md, "Trust"): has_id says the member claims
     * node_id; owns that the claim was accepted, so it alone reports
     * node_id; refused why not (enum netelect_serf_reject, 0: not refused).
     * Members that claim an id are chained by it through id_next. */
    bool owns;
    int refused;
    struct member *id_next;
    struct netelect_serf_coord coord;
    bool coord_ok;
};

struct netelect_serf {
    /* configuration (strings owned) */
    char *auth_key, *id_tag, *channel_tag;
    uint32_t *rpc_uids;
    size_t n_rpc_uids;
    bool rpc_uid_any;
    uint64_t self_id;
    size_t max_ids;
    size_t id_tag_len, channel_tag_len;
    uint64_t coord_period, backoff_min, backoff_max;
    uint64_t status_period; /* NETELECT_SERF_STATUS_POLL_OFF: no status polls */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct netelect_serf_callbacks cb;
    void *ctx;

    /* connection */
    int fd;
    bool test_mode; /* "connected" without a socket (tests, fuzzer) */
    enum conn_state state;
    bool up;            /* handshake (+auth) done */
    bool down_reported; /* connection(0) already reported for this outage */
    int down_err;       /* ... with this reason */
    uint64_t backoff, reconnect_at, connect_deadline;

    /* output */
    msgpack_sbuffer out;
    size_t out_off;
    msgpack_packer pk;

    /* input */
    msgpack_unpacker unp;
    bool unp_ok;
    struct netelect_serf_scan scan;
    enum body_kind await;
    struct pending await_req;
    unsigned char *rbuf;

    /* requests in flight, in order */
    struct pending ring[NETELECT_SERF_MAX_PENDING];
    unsigned ring_head, ring_count;
    unsigned coord_inflight;
    uint64_t next_seq;
    uint64_t stream_seq;
    bool stream_acked;

    /* what Serf told us */
    char *self_name;
    struct netelect_serf_coord self_coord;
    bool self_coord_ok;
    struct member **vec;
    size_t n_members, vec_cap;
    struct member **buckets;
    struct member **id_buckets; /* members claiming an id, by id; n_buckets of them */
    size_t n_buckets;
    size_t n_owned, n_refused;
    uint64_t gen;
    uint64_t without_id;

    /* coordinate polling */
    bool poll_active;
    size_t poll_cursor;
    uint64_t next_poll_at;

    /* status polling: only after this session's snapshot, one at a time */
    bool synced;
    bool status_inflight;
    uint64_t next_status_at;

    struct netelect_serf_stats st;
};

/* ------------------------------------------------------------------ */
/* small helpers */

static char *dup_n(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

/* Periods are caller-chosen: a huge one must not wrap to "due now". */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool str_is(const msgpack_object *o, const char *lit)
{
    size_t n = strlen(lit);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, lit, n) == 0;
}

static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
    for (uint32_t i = 0; i < m->via.map.size; i++)
        if (str_is(&m->via.map.ptr[i].key, key))
            return &m->via.map.ptr[i].val;
    return NULL;
}

static bool get_number(const msgpack_object *o, double *out)
{
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = o->via.f64;
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)o->via.u64;
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)o->via.i64;
        break;
    default:
        return false;
    }
    return isfinite(*out);
}

/* ------------------------------------------------------------------ */
/* pure helpers exported for tests */

int agent_serf_parse_id(const char *s, size_t len, uint64_t *out)
{
    if (!s || !out || len == 0)
        return -EINVAL;
    unsigned base = 10;
    size_t i = 0;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        unsigned c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -EINVAL;
        if (v > (UINT64_MAX - d) / base)
            return -EINVAL;
        v = v * base + d;
    }
    *out = v;
    return 0;
}

static uint64_t sat_ns(double ns)
{
    if (!(ns > 0))
        return 0;
    /* 2^64 is exact in a double; anything at or past it saturates. */
    if (!(ns < 18446744073709551616.0))
        return NETELECT_RTT_MAX_MEASURED;
    uint64_t v = (uint64_t)ns; /* truncation, as Serf's time.Duration() does */
    return v > NETELECT_RTT_MAX_MEASURED ? NETELECT_RTT_MAX_MEASURED : v;
}

int agent_serf_distance(const struct netelect_serf_coord *a,
                            const struct netelect_serf_coord *b, uint64_t *rtt_ns,
                            uint64_t *err_ns)
{
    if (!a || !b || a->dim != b->dim || a->dim == 0 || a->dim > NETELECT_SERF_MAX_DIM)
        return -EINVAL;
    double sum = 0;
    for (unsigned i = 0; i < a->dim; i++) {
        double d = a->vec[i] - b->vec[i];
        sum += d * d;
    }
    double raw = sqrt(sum) + a->height + b->height;
    double adj = raw + a->adjustment + b->adjustment;
    double dist = adj > 0 ? adj : raw;
    double err = a->error + b->error;
    if (!isfinite(dist) || !isfinite(err))
        return -EINVAL;
    uint64_t r = sat_ns(dist * 1e9);
    if (rtt_ns)
        *rtt_ns = r;
    if (err_ns)
        *err_ns = sat_ns(err * (double)r);
    return 0;
}

/* ------------------------------------------------------------------ */
/* member table: dense array (for polling) + chained hash (for lookup) */

static size_t id_slot(uint64_t id, size_t n_buckets)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (n_buckets - 1);
}

static struct member *member_find(const struct netelect_serf *s, const char *name, size_t len,
                                  uint64_t h)
{
    if (!s->n_buckets)
        return NULL;
    for (struct member *m = s->buckets[h & (s->n_buckets - 1)]; m; m = m->next)
        if (m->hash == h && m->name_len == len && memcmp(m->name, name, len) == 0)
            return m;
    return NULL;
}

static int table_grow(struct netelect_serf *s)
{
    if (s->n_members == s->vec_cap) {
        size_t cap = s->vec_cap ? s->vec_cap * 2 : 64;
        struct member **v = realloc(s->vec, cap * sizeof(struct member *));
        if (!v)
            return -ENOMEM;
        s->vec = v;
        s->vec_cap = cap;
    }
    if (s->n_members + 1 > s->n_buckets) {
        size_t nb = s->n_buckets ? s->n_buckets * 2 : 64;
        struct member **b = calloc(nb, sizeof(struct member *));
        struct member **ib = calloc(nb, sizeof(struct member *));
        if (!b || !ib) {
            free(b);
            free(ib);
            return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_members; i++) {
            struct member *m = s->vec[i];
            m->next = b[m->hash & (nb - 1)];
            b[m->hash & (nb - 1)] = m;
            if (m->has_id) {
                size_t k = id_slot(m->node_id, nb);
                m->id_next = ib[k];
                ib[k] = m;
            }
        }
        free(s->buckets);
        free(s->id_buckets);
        s->buckets = b;
        s->id_buckets = ib;
        s->n_buckets = nb;
    }
    return 0;
}

static void id_link(struct netelect_serf *s, struct member *m)
{
    size_t k = id_slot(m->node_id, s->n_buckets);
    m->id_next = s->id_buckets[k];
    s->id_buckets[k] = m;
}

static void id_unlink(struct netelect_serf *s, struct member *m)
{
    struct member **pp = &s->id_buckets[id_slot(m->node_id, s->n_buckets)];
    while (*pp != m)
        pp = &(*pp)->id_next;
    *pp = m->id_next;
}

/* The member holding id, or NULL. */
static struct member *id_owner(const struct netelect_serf *s, uint64_t id)
{
    if (!s->n_buckets)
        return NULL;
    for (struct member *m = s->id_buckets[id_slot(id, s->n_buckets)]; m; m = m->id_next)
        if (m->owns && m->node_id == id)
            return m;
    return NULL;
}

static bool is_self_member(const struct netelect_serf *s, const struct member *m)
{
    return s->self_name && strcmp(m->name, s->self_name) == 0;
}

/* Whether m's id claim may be accepted now: 0, or why not. */
static int claim_verdict(const struct netelect_serf *s, const struct member *m)
{
    if (s->self_id && m->node_id == s->self_id && !is_self_member(s, m))
        return NETELECT_SERF_REJECT_SELF_ID;
    /* A holder that left, or is leaving (a graceful leave is reported as
     * leaving first, and a host may rejoin under a new name before Serf
     * says left), keeps its id (and its coordinate polls) only until
     * another member claims it: a host that leaves and rejoins is not
     * locked out for Serf's 24 h tombstone time.  A failed holder keeps
     * it against members elsewhere (docs/serf.md, "Trust"), but not
     * against one at its own address: that host came back (Serf often
     * reports a leave under load as a failure). */
    const struct member *o = id_owner(s, m->node_id);
    if (o && o != m && o->status != NETELECT_SERF_LEFT && o->status != NETELECT_SERF_LEAVING &&
        !(o->status == NETELECT_SERF_FAILED && memcmp(o->addr, m->addr, sizeof(o->addr)) == 0))
        return NETELECT_SERF_REJECT_DUP_ID;
    if (!m->owns && s->n_owned >= s->max_ids)
        return NETELECT_SERF_REJECT_CAP;
    return 0;
}

static void set_refused(struct netelect_serf *s, struct member *m, int why)
{
    if (!m->refused && why)
        s->n_refused++;
    else if (m->refused && !why)
        s->n_refused--;
    m->refused = why;
}

static void report(struct netelect_serf *s, enum netelect_serf_event ev, const struct member *m,
                   bool has_id)
{
    struct netelect_serf_member out = {
        .name = m->name, .node_id = m->node_id, .has_id = has_id, .channels = m->channels,
        .status = m->status, .port = m->port,
    };
    memcpy(out.addr, m->addr, sizeof(out.addr));
    if (s->cb.member)
        s->cb.member(s->ctx, ev, &out);
}

static void report_refusal(struct netelect_serf *s, const struct member *m)
{
    struct netelect_serf_member out = {
        .name = m->name, .node_id = m->node_id, .has_id = 0, .channels = m->channels,
        .status = m->status, .port = m->port,
    };
    memcpy(out.addr, m->addr, sizeof(out.addr));
    s->st.refusals++;
    if (s->cb.reject)
        s->cb.reject(s->ctx, m->refused, &out);
}

/* Accepts m's claim if nothing stands against it now. */
static bool try_own(struct netelect_serf *s, struct member *m)
{
    if (!m->has_id || m->owns || m->status == NETELECT_SERF_LEFT || claim_verdict(s, m))
        return false;
    struct member *o = id_owner(s, m->node_id);
    if (o) { /* it left, and was reported so: nothing more to say about it */
        o->owns = false;
        s->n_owned--;
    }
    m->owns = true;
    s->n_owned++;
    set_refused(s, m, 0);
    return true;
}

/* An id was given up (its holder left, was reaped or changed its tag), so a
 * slot under max_ids is free too: the first member waiting for that id, else
 * the first one waiting for a slot, takes it and is reported as it stands. */
static void promote(struct netelect_serf *s, uint64_t id)
{
    for (struct member *m = s->id_buckets[id_slot(id, s->n_buckets)]; m; m = m->id_next)
        if (m->node_id == id && m->refused && try_own(s, m)) {
            report(s, NETELECT_SERF_EV_UPDATE, m, true);
            return;
        }
    if (!s->n_refused)
        return;
    for (size_t i = 0; i < s->n_members; i++) {
        struct member *m = s->vec[i];
        if (m->refused == NETELECT_SERF_REJECT_CAP && try_own(s, m)) {
            report(s, NETELECT_SERF_EV_UPDATE, m, true);
            return;
        }
    }
}

/* m no longer holds its id (it stays chained under it as a claim). */
static void release(struct netelect_serf *s, struct member *m)
{
    if (!m->owns)
        return;
    m->owns = false;
    s->n_owned--;
    promote(s, m->node_id);
}

static void member_free(struct member *m)
{
    if (m) {
        free(m->name);
        free(m->channels);
        free(m);
    }
}

static void member_remove(struct netelect_serf *s, struct member *m)
{
    struct member **pp = &s->buckets[m->hash & (s->n_buckets - 1)];
    while (*pp != m)
        pp = &(*pp)->next;
    *pp = m->next;
    bool owned = m->owns;
    uint64_t id = m->node_id;
    if (m->has_id)
        id_unlink(s, m);
    if (owned) {
        m->owns = false;
        s->n_owned--;
    }
    set_refused(s, m, 0);
    size_t last = --s->n_members;
    if (m->idx != last) {
        s->vec[m->idx] = s->vec[last];
        s->vec[m->idx]->idx = m->idx;
    }
    /* The poll cursor may now skip the moved member once; it is polled on
     * the next cycle. */
    if (!m->has_id)
        s->without_id--;
    member_free(m);
    if (owned)
        promote(s, id);
}

/* ------------------------------------------------------------------ */
/* output */

static int out_pending(const struct netelect_serf *s)
{
    return s->out.size > s->out_off;
}

static int pack_str(msgpack_packer *pk, const char *str)
{
    size_t n = strlen(str);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, str, n);
}

/* Queues {Command, Seq} + an optional one-string-field body. */
static int queue_request(struct netelect_serf *s, enum req_kind kind, const char *cmd,
                         const char *bkey, const char *bval, uint64_t now, const char *node)
{
    if (s->ring_count >= NETELECT_SERF_MAX_PENDING)
        return -ENOBUFS;
    if (s->out.size - s->out_off > NETELECT_SERF_MAX_OUT)
        return -ENOBUFS;
    char *node_copy = NULL;
    if (node && !(node_copy = strdup(node)))
        return -ENOMEM;

    size_t before = s->out.size;
    uint64_t seq = s->next_seq;
    int r = 0;
    r |= msgpack_pack_map(&s->pk, 2);
    r |= pack_str(&s->pk, "Command");
    r |= pack_str(&s->pk, cmd);
    r |= pack_str(&s->pk, "Seq");
    r |= msgpack_pack_uint64(&s->pk, seq);
    if (kind == REQ_HANDSHAKE) {
        r |= msgpack_pack_map(&s->pk, 1);
        r |= pack_str(&s->pk, "Version");
        r |= msgpack_pack_int32(&s->pk, 1);
    } else if (kind == REQ_STATUS) {
        /* All three keys: Serf's decoder leaves absent ones at their zero
         * value anyway, but an explicit empty name/tag filter says "any". */
        r |= msgpack_pack_map(&s->pk, 3);
        r |= pack_str(&s->pk, "Status");
        r |= pack_str(&s->pk, STATUS_FILTER);
        r |= pack_str(&s->pk, "Tags");
        r |= msgpack_pack_map(&s->pk, 0);
        r |= pack_str(&s->pk, "Name");
        r |= pack_str(&s->pk, "");
    } else if (bkey) {
        r |= msgpack_pack_map(&s->pk, 1);
        r |= pack_str(&s->pk, bkey);
        r |= pack_str(&s->pk, bval);
    }
    if (r != 0) {
        s->out.size = before; /* drop the partial message */
        free(node_copy);
        return -ENOMEM;
    }
    s->next_seq++;
    struct pending *p = &s->ring[(s->ring_head + s->ring_count++) % NETELECT_SERF_MAX_PENDING];
    p->seq = seq;
    p->deadline = now + NETELECT_SERF_REQUEST_TIMEOUT_NS;
    p->kind = kind;
    p->node = node_copy;
    if (kind == REQ_COORD)
        s->coord_inflight++;
    if (kind == REQ_STREAM)
        s->stream_seq = seq;
    if (kind == REQ_STATUS)
        s->status_inflight = true;
    return 0;
}

static int flush_out(struct netelect_serf *s)
{
    if (s->test_mode || s->fd < 0)
        return 0;
    while (out_pending(s)) {
        ssize_t w = send(s->fd, s->out.data + s->out_off, s->out.size - s->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -errno;
        }
        s->out_off += (size_t)w;
    }
    if (s->out_off == s->out.size) {
        msgpack_sbuffer_clear(&s->out);
        s->out_off = 0;
    } else if (s->out_off > s->out.size / 2) {
        memmove(s->out.data, s->out.data + s->out_off, s->out.size - s->out_off);
        s->out.size -= s->out_off;
        s->out_off = 0;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* connection lifecycle */

static void clear_pending(struct netelect_serf *s)
{
    while (s->ring_count) {
        free(s->ring[s->ring_head].node);
        s->ring_head = (s->ring_head + 1) % NETELECT_SERF_MAX_PENDING;
        s->ring_count--;
    }
    s->ring_head = 0;
    free(s->await_req.node);
    s->await_req.node = NULL;
    s->await = BODY_NONE;
    s->coord_inflight = 0;
    s->status_inflight = false;
}

static int reset_input(struct netelect_serf *s)
{
    if (s->unp_ok)
        msgpack_unpacker_destroy(&s->unp);
    s->unp_ok = msgpack_unpacker_init(&s->unp, MSGPACK_UNPACKER_INIT_BUFFER_SIZE);
    agent_serf_scan_init(&s->scan);
    return s->unp_ok ? 0 : -ENOMEM;
}

/* Tears the connection down and schedules the next attempt. */
static void drop(struct netelect_serf *s, int err, uint64_t now)
{
    bool was_connected = s->state == ST_OPEN;
    bool was_up = s->up;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->test_mode = false;
    s->state = ST_IDLE;
    s->up = false;
    clear_pending(s);
    msgpack_sbuffer_clear(&s->out);
    s->out_off = 0;
    reset_input(s);
    s->stream_acked = false;
    s->poll_active = false;
    s->synced = false;
    s->self_coord_ok = false;
    /* A restarted agent may have another name: learn it again from stats. */
    free(s->self_name);
    s->self_name = NULL;
    if (was_connected)
        s->st.disconnects++;
    s->reconnect_at = now + s->backoff;
    s->backoff = s->backoff > s->backoff_max / 2 ? s->backoff_max : s->backoff * 2;
    if (s->backoff < s->backoff_min)
        s->backoff = s->backoff_min;
    /* Once per outage and reason, so a Serf that stays down does not flood
     * the log, but a refused listener is still heard of. */
    if (was_up || !s->down_reported || err != s->down_err) {
        s->down_reported = true;
        s->down_err = err;
        if (s->cb.connection)
            s->cb.connection(s->ctx, 0, err);
    }
}

static int start_session(struct netelect_serf *s, uint64_t now)
{
    s->next_seq = 0;
    s->stream_acked = false;
    int r = queue_request(s, REQ_HANDSHAKE, "handshake", NULL, NULL, now, NULL);
    if (r == 0 && s->auth_key)
        r = queue_request(s, REQ_AUTH, "auth", "AuthKey", s->auth_key, now, NULL);
    return r;
}

static int on_ready(struct netelect_serf *s, uint64_t now)
{
    s->up = true;
    s->down_reported = false;
    s->st.connects++;
    if (s->cb.connection)
        s->cb.connection(s->ctx, 1, 0);
    /* Subscribe before taking the snapshot so no change falls in between;
     * a change reported before the snapshot is superseded by it. */
    int r = queue_request(s, REQ_STATS, "stats", NULL, NULL, now, NULL);
    if (r == 0)
        r = queue_request(s, REQ_STREAM, "stream", "Type", MEMBER_STREAM_TYPES, now, NULL);
    if (r == 0)
        r = queue_request(s, REQ_MEMBERS, "members", NULL, NULL, now, NULL);
    return r;
}

/* ------------------------------------------------------------------ */
/* who listens: the peer socket's owner, from the kernel's socket tables */

/* Whether a socket in this TCP state is a full socket, whose uid is its
 * creator's.  Request sockets (SYN_RECV, NEW_SYN_RECV) and time-wait ones
 * carry no owner (inet_diag reports uid 0 for them) and a LISTEN match means
 * the exact connection was not found: none of them identifies anyone. */
static bool full_socket_state(unsigned st)
{
    switch (st) {
    case 1:  /* ESTABLISHED */
    case 4:  /* FIN_WAIT1 */
    case 5:  /* FIN_WAIT2 */
    case 8:  /* CLOSE_WAIT */
    case 9:  /* LAST_ACK */
    case 11: /* CLOSING */
        return true;
    default:
        return false;
    }
}

/* NETLINK_SOCK_DIAG exact lookup of the socket whose local end is `srv` and
 * remote end `cli` (the Serf side of our connection).
 * @return its uid, -ENOENT (no such socket here), -EAGAIN (not a full socket
 * yet), or another -errno (sock_diag unavailable). */
static int64_t diag_uid(const struct sockaddr_storage *srv, const struct sockaddr_storage *cli)
{
    struct {
        struct nlmsghdr nh;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof(req));
    req.nh.nlmsg_len = sizeof(req);
    req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nh.nlmsg_flags = NLM_F_REQUEST;
    req.nh.nlmsg_seq = 1;
    req.r.sdiag_family = (uint8_t)srv->ss_family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = ~0u;
    req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if (srv->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)srv, *b = (const void *)cli;
        req.r.id.idiag_sport = a->sin_port;
        req.r.id.idiag_dport = b->sin_port;
        memcpy(req.r.id.idiag_src, &a->sin_addr, 4);
        memcpy(req.r.id.idiag_dst, &b->sin_addr, 4);
    } else {
        const struct sockaddr_in6 *a = (const void *)srv, *b = (const void *)cli;
        req.r.id.idiag_sport = a->sin6_port;
        req.r.id.idiag_dport = b->sin6_port;
        memcpy(req.r.id.idiag_src, &a->sin6_addr, 16);
        memcpy(req.r.id.idiag_dst, &b->sin6_addr, 16);
    }
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -errno;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    int64_t r = -EIO;
    union {
        struct nlmsghdr nh;
        char b[8192];
    } buf;
    if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
        r = -errno;
        goto out;
    }
    /* An exact (non-dump) request is answered inside sendto(). */
    ssize_t n = recv(nl, &buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) {
        r = errno == EAGAIN ? -EIO : -errno;
        goto out;
    }
    for (struct nlmsghdr *h = &buf.nh; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *e = NLMSG_DATA(h);
            r = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? e->error : -EIO;
            break;
        }
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
            h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
            continue;
        const struct inet_diag_msg *m = NLMSG_DATA(h);
        /* The kernel falls back to a listener when no connection matches:
         * only the exact connection counts. */
        if (m->idiag_family != srv->ss_family || m->id.idiag_sport != req.r.id.idiag_sport ||
            m->id.idiag_dport != req.r.id.idiag_dport)
            r = -ENOENT;
        else if (!full_socket_state(m->idiag_state))
            r = m->idiag_state == 10 ? -ENOENT : -EAGAIN; /* 10: LISTEN */
        else
            r = m->idiag_uid;
        break;
    }
out:
    close(nl);
    return r;
}

/* The same lookup in /proc/net/tcp[6], for kernels without tcp_diag
 * (sock_diag answers ENOENT when the module is missing, too). */
static int64_t proc_uid(const struct sockaddr_storage *srv, const struct sockaddr_storage *cli)
{
    char want_l[48], want_r[48];
    const char *path;
    if (srv->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)srv, *b = (const void *)cli;
        /* the __be32 printed as a native word, as the kernel does */
        snprintf(want_l, sizeof(want_l), "%08X:%04X", a->sin_addr.s_addr, ntohs(a->sin_port));
        snprintf(want_r, sizeof(want_r), "%08X:%04X", b->sin_addr.s_addr, ntohs(b->sin_port));
        path = "/proc/net/tcp";
    } else {
        const struct sockaddr_in6 *a = (const void *)srv, *b = (const void *)cli;
        uint32_t wa[4], wb[4];
        memcpy(wa, &a->sin6_addr, 16);
        memcpy(wb, &b->sin6_addr, 16);
        snprintf(want_l, sizeof(want_l), "%08X%08X%08X%08X:%04X", wa[0], wa[1], wa[2], wa[3],
                 ntohs(a->sin6_port));
        snprintf(want_r, sizeof(want_r), "%08X%08X%08X%08X:%04X", wb[0], wb[1], wb[2], wb[3],
                 ntohs(b->sin6_port));
        path = "/proc/net/tcp6";
    }
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[512];
    int64_t r = -ENOENT;
    while (fgets(line, sizeof(line), f)) {
        char l[48], rm[48];
        unsigned st;
        unsigned long uid;
        /* Kernel-written fields (hex state, decimal uid < 2^32): nothing
         * to overflow, and the count is checked. */
        if (sscanf(line, " %*u: %47s %47s %x %*s %*s %*s %lu", l, rm, &st, &uid) != 4) // NOLINT(cert-err34-c)
            continue;
        if (strcmp(l, want_l) || strcmp(rm, want_r))
            continue;
        r = full_socket_state(st) ? (int64_t)uid : -EAGAIN;
        break;
    }
    fclose(f);
    return r;
}

/* The owner uid of the socket at the other end of our connection, if it is
 * on this host.  @return the uid, -ENOENT (not a socket of this host:
 * another host, or gone), -EAGAIN (the peer has not completed accept-side
 * set-up), or another -errno. */
static int64_t peer_socket_uid(int fd)
{
    struct sockaddr_storage loc = {0}, rem = {0};
    socklen_t ll = sizeof(loc), rl = sizeof(rem);
    if (getsockname(fd, (struct sockaddr *)&loc, &ll) < 0 ||
        getpeername(fd, (struct sockaddr *)&rem, &rl) < 0)
        return -errno;
    if (loc.ss_family != rem.ss_family ||
        (loc.ss_family != AF_INET && loc.ss_family != AF_INET6))
        return -EAFNOSUPPORT;
    int64_t r = -EAGAIN;
    /* On loopback the whole three-way handshake normally completes inside
     * connect(); a peer still in SYN_RECV (its ACK not yet processed) gets a
     * few more looks, a yield apart, never a sleep. */
    for (int i = 0; i < 8 && r == -EAGAIN; i++) {
        if (i)
            sched_yield();
        r = diag_uid(&rem, &loc);
        if (r < 0 && r != -EAGAIN)
            r = proc_uid(&rem, &loc);
    }
    return r;
}

/* The connection is open and nothing has been sent yet: go on only if the
 * listener is owned by a trusted uid (see rpc_uids in serf.h). */
static int check_listener(struct netelect_serf *s)
{
    if (s->rpc_uid_any)
        return 0;
    int64_t uid = peer_socket_uid(s->fd);
    s->st.listener_uid = uid >= 0 ? uid : -1;
    if (uid >= 0) {
        if (uid == 0 || uid == (int64_t)geteuid())
            return 0;
        for (size_t i = 0; i < s->n_rpc_uids; i++)
            if (uid == (int64_t)s->rpc_uids[i])
                return 0;
    }
    s->st.listener_refused++;
    return -EPERM;
}

/* Connected: the listener is checked before the first byte is queued, so a
 * refused one never sees the handshake, let alone the auth key. */
static int session_open(struct netelect_serf *s, uint64_t now)
{
    int r = check_listener(s);
    if (r < 0)
        return r; /* drop() closes the socket */
    s->state = ST_OPEN;
    return start_session(s, now);
}

static int try_connect(struct netelect_serf *s, uint64_t now)
{
    int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->fd = fd;
    s->connect_deadline = now + NETELECT_SERF_CONNECT_TIMEOUT_NS;
    if (connect(fd, (struct sockaddr *)&s->addr, s->addr_len) == 0)
        return session_open(s, now);
    if (errno == EINPROGRESS || errno == EINTR) {
        s->state = ST_CONNECTING;
        return 0;
    }
    return -errno; /* drop() closes the fd */
}

/* ------------------------------------------------------------------ */
/* decoding */

struct member_view {
    const char *name;
    size_t name_len;
    const char *channels;
    size_t channels_len;
    bool has_channels;
    uint64_t node_id;
    int has_id;
    enum netelect_serf_status status;
    char addr[46];
    uint16_t port;
};

static enum netelect_serf_status parse_status(const msgpack_object *o)
{
    if (str_is(o, "alive"))
        return NETELECT_SERF_ALIVE;
    if (str_is(o, "leaving"))
        return NETELECT_SERF_LEAVING;
    if (str_is(o, "left"))
        return NETELECT_SERF_LEFT;
    if (str_is(o, "failed"))
        return NETELECT_SERF_FAILED;
    /* "none", or a status a later Serf adds: not healthy, not an error. */
    return NETELECT_SERF_NONE;
}

static bool has_nul(const char *p, size_t n)
{
    return memchr(p, '\0', n) != NULL;
}

static int parse_member(const struct netelect_serf *s, const msgpack_object *o,
                        struct member_view *v)
{
    memset(v, 0, sizeof(*v));
    if (o->type != MSGPACK_OBJECT_MAP)
        return -EBADMSG;
    const msgpack_object *name = map_get(o, "Name");
    const msgpack_object *status = map_get(o, "Status");
    const msgpack_object *addr = map_get(o, "Addr");
    const msgpack_object *port = map_get(o, "Port");
    const msgpack_object *tags = map_get(o, "Tags");
    if (!name || name->type != MSGPACK_OBJECT_STR || name->via.str.size == 0 ||
        has_nul(name->via.str.ptr, name->via.str.size))
        return -EBADMSG;
    v->name = name->via.str.ptr;
    v->name_len = name->via.str.size;
    if (!status || status->type != MSGPACK_OBJECT_STR)
        return -EBADMSG;
    v->status = parse_status(status);
    if (port) {
        if (port->type != MSGPACK_OBJECT_POSITIVE_INTEGER || port->via.u64 > 65535)
            return -EBADMSG;
        v->port = (uint16_t)port->via.u64;
    }
    if (addr && addr->type != MSGPACK_OBJECT_NIL) {
        /* Go's net.IP is a byte slice: 4 bytes, or 16 (maybe v4-mapped). */
        static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (addr->type != MSGPACK_OBJECT_BIN)
            return -EBADMSG;
        const unsigned char *a = (const unsigned char *)addr->via.bin.ptr;
        uint32_t n = addr->via.bin.size;
        if (n == 4 || (n == 16 && memcmp(a, v4mapped, 12) == 0))
            inet_ntop(AF_INET, n == 4 ? a : a + 12, v->addr, sizeof(v->addr));
        else if (n == 16)
            inet_ntop(AF_INET6, a, v->addr, sizeof(v->addr));
        else if (n != 0)
            return -EBADMSG;
    }
    if (tags && tags->type != MSGPACK_OBJECT_NIL) {
        if (tags->type != MSGPACK_OBJECT_MAP)
            return -EBADMSG;
        for (uint32_t i = 0; i < tags->via.map.size; i++) {
            const msgpack_object *k = &tags->via.map.ptr[i].key;
            const msgpack_object *val = &tags->via.map.ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR || val->type != MSGPACK_OBJECT_STR)
                return -EBADMSG;
            const char *vp = val->via.str.ptr;
            size_t vn = val->via.str.size;
            if (k->via.str.size == s->id_tag_len &&
                memcmp(k->via.str.ptr, s->id_tag, s->id_tag_len) == 0) {
                /* A bad id only takes the member out of the view. */
                v->has_id = agent_serf_parse_id(vp, vn, &v->node_id) == 0;
            } else if (k->via.str.size == s->channel_tag_len &&
                       memcmp(k->via.str.ptr, s->channel_tag, s->channel_tag_len) == 0) {
                if (has_nul(vp, vn))
                    return -EBADMSG;
                v->channels = vp;
                v->channels_len = vn;
                v->has_channels = true;
            }
        }
    }
    return 0;
}

/* Applies a parsed member to the table and reports it.  A member is
 * reported with has_id only while it holds its id (see claim_verdict): a
 * refused claim is reported without one, which netelectd ignores, and
 * through reject() when it is first refused.  An id a member gives up (tag
 * changed or removed, reaped) is reported as reaped under that id first,
 * and may then pass to a member that was waiting for it (promote); a
 * member that left keeps its id until another member claims it. */
static int apply_member(struct netelect_serf *s, enum netelect_serf_event ev,
                        const struct member_view *v)
{
    uint64_t h = hash_bytes(v->name, v->name_len);
    struct member *m = member_find(s, v->name, v->name_len, h);

    if (ev == NETELECT_SERF_EV_REAP || (!m && s->n_members >= NETELECT_SERF_MAX_MEMBERS)) {
        /* Not (or no longer) tracked: report from temporary copies.  An
         * untracked member cannot hold an id (nothing would keep a second
         * claimant out), so it is reported without one. */
        struct netelect_serf_member out = {
            .node_id = m ? m->node_id : v->node_id, .has_id = m && m->owns,
            .status = v->status, .port = v->port,
        };
        memcpy(out.addr, v->addr, sizeof(out.addr));
        char *name = dup_n(v->name, v->name_len);
        char *ch = v->has_channels ? dup_n(v->channels, v->channels_len) : NULL;
        if (!name || (v->has_channels && !ch)) {
            free(name);
            free(ch);
            return -ENOMEM;
        }
        if (!m && ev != NETELECT_SERF_EV_REAP)
            s->st.members_untracked++;
        out.name = name;
        out.channels = ch;
        if (s->cb.member)
            s->cb.member(s->ctx, ev, &out);
        if (m)
            member_remove(s, m); /* after the report: a waiting claimant follows it */
        free(name);
        free(ch);
        return 0;
    }

    char *ch = NULL;
    if (v->has_channels && !(ch = dup_n(v->channels, v->channels_len)))
        return -ENOMEM;
    bool fresh = false;
    if (!m) {
        int r = table_grow(s);
        if (r < 0 || !(m = calloc(1, sizeof(*m)))) {
            free(ch);
            return -ENOMEM;
        }
        if (!(m->name = dup_n(v->name, v->name_len))) {
            free(m);
            free(ch);
            return -ENOMEM;
        }
        m->name_len = v->name_len;
        m->hash = h;
        m->idx = s->n_members;
        s->vec[s->n_members++] = m;
        m->next = s->buckets[h & (s->n_buckets - 1)];
        s->buckets[h & (s->n_buckets - 1)] = m;
        s->without_id++; /* no claim until set below */
        fresh = true;
    }
    bool claim_changed = fresh || m->has_id != v->has_id || m->node_id != v->node_id;
    /* The holder of this host's id must be this host's member: after a
     * reconnect, `stats` may name another agent. */
    bool lost_self = m->owns && s->self_id && m->node_id == s->self_id && !is_self_member(s, m);
    if (m->owns && (claim_changed || lost_self)) {
        /* The id it held goes first, as a reap, before anything else. */
        report(s, NETELECT_SERF_EV_REAP, m, true);
        release(s, m);
    }
    if (claim_changed) {
        if (m->has_id)
            id_unlink(s, m);
        else
            s->without_id--;
        set_refused(s, m, 0);
        m->coord_ok = false;
        m->node_id = v->has_id ? v->node_id : 0;
        m->has_id = v->has_id;
        if (m->has_id)
            id_link(s, m);
        else
            s->without_id++;
    }
    free(m->channels);
    m->channels = ch;
    m->status = v->status;
    memcpy(m->addr, v->addr, sizeof(m->addr));
    m->port = v->port;
    m->gen = s->gen;

    bool refusal = false;
    if (m->has_id && !m->owns && m->status != NETELECT_SERF_LEFT && !try_own(s, m)) {
        int why = claim_verdict(s, m);
        refusal = why != m->refused;
        set_refused(s, m, why);
    }
    report(s, ev, m, m->owns);
    if (refusal)
        report_refusal(s, m);
    /* It left, is leaving or failed: a member waiting for its id may have
     * it now (claim_verdict decides). */
    if (m->owns && m->status != NETELECT_SERF_ALIVE)
        promote(s, m->node_id);
    return 0;
}

/* Validates a Members array completely before reporting any of it, so a
 * malformed reply changes nothing. */
static int check_members(const struct netelect_serf *s, const msgpack_object *arr)
{
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY)
        return -EBADMSG;
    struct member_view v;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        int r = parse_member(s, &arr->via.array.ptr[i], &v);
        if (r < 0)
            return r;
    }
    return 0;
}

static int body_members(struct netelect_serf *s, const msgpack_object *o, uint64_t now)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return -EBADMSG;
    const msgpack_object *arr = map_get(o, "Members");
    int r = check_members(s, arr);
    if (r < 0)
        return r;
    s->gen++;
    struct member_view v;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        parse_member(s, &arr->via.array.ptr[i], &v);
        if ((r = apply_member(s, NETELECT_SERF_EV_SNAPSHOT, &v)) < 0)
            return r;
    }
    /* Only a session that got this far resets the backoff: an agent that
     * accepts the handshake and then sends garbage must not be retried at
     * the minimum interval forever. */
    s->backoff = s->backoff_min;
    /* The snapshot is as fresh as a poll would be: the first one is due a
     * period later, and polls never run ahead of it (a poll reply compared
     * with a table that lacks the snapshot would report stale members). */
    s->synced = true;
    s->next_status_at = add_sat(now, s->status_period);
    /* Members we knew that Serf no longer lists (e.g. reaped while we were
     * disconnected) are gone for good. */
    for (size_t i = 0; i < s->n_members;) {
        struct member *m = s->vec[i];
        if (m->gen == s->gen) {
            i++;
            continue;
        }
        report(s, NETELECT_SERF_EV_REAP, m, m->owns);
        member_remove(s, m); /* moves the last member to i */
    }
    return 0;
}

static int body_event(struct netelect_serf *s, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return -EBADMSG;
    const msgpack_object *ev = map_get(o, "Event");
    if (!ev || ev->type != MSGPACK_OBJECT_STR)
        return -EBADMSG;
    enum netelect_serf_event e;
    if (str_is(ev, "member-join"))
        e = NETELECT_SERF_EV_JOIN;
    else if (str_is(ev, "member-leave"))
        e = NETELECT_SERF_EV_LEAVE;
    else if (str_is(ev, "member-failed"))
        e = NETELECT_SERF_EV_FAILED;
    else if (str_is(ev, "member-update"))
        e = NETELECT_SERF_EV_UPDATE;
    else if (str_is(ev, "member-reap"))
        e = NETELECT_SERF_EV_REAP;
    else
        return 0; /* user events and queries are not ours to interpret */
    const msgpack_object *arr = map_get(o, "Members");
    int r = check_members(s, arr);
    if (r < 0)
        return r;
    s->st.events++;
    struct member_view v;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        parse_member(s, &arr->via.array.ptr[i], &v);
        if ((r = apply_member(s, e, &v)) < 0)
            return r;
    }
    return 0;
}

/* The supplementary status poll's reply: the members Serf holds as failed,
 * left or leaving right now.  Serf's own status is compared with the one
 * last reported for the member, and only a change is reported, so an
 * unchanged reply costs no callback.  A member absent from the reply is not
 * taken as alive: a return to alive comes from the stream (member-join or
 * -update), which carries its tags too.  The stream's own, later, event for
 * a change reported here is applied again as usual (same status: the
 * callback sees the same state twice, which netelectd takes as a no-op). */
static int body_status(struct netelect_serf *s, const msgpack_object *o)
{
    s->status_inflight = false;
    if (o->type != MSGPACK_OBJECT_MAP)
        return -EBADMSG;
    const msgpack_object *arr = map_get(o, "Members");
    int r = check_members(s, arr);
    if (r < 0)
        return r;
    struct member_view v;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        parse_member(s, &arr->via.array.ptr[i], &v);
        enum netelect_serf_event e;
        if (v.status == NETELECT_SERF_FAILED)
            e = NETELECT_SERF_EV_FAILED;
        else if (v.status == NETELECT_SERF_LEFT || v.status == NETELECT_SERF_LEAVING)
            e = NETELECT_SERF_EV_LEAVE;
        else
            continue; /* not what we asked for: the stream has it */
        struct member *m = member_find(s, v.name, v.name_len, hash_bytes(v.name, v.name_len));
        if (m ? m->status == v.status : s->n_members >= NETELECT_SERF_MAX_MEMBERS)
            continue; /* unchanged, or untracked (would be reported every poll) */
        s->st.status_changes++;
        if ((r = apply_member(s, e, &v)) < 0)
            return r;
    }
    return 0;
}

static int body_stats(struct netelect_serf *s, const msgpack_object *o, uint64_t now)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return -EBADMSG;
    const msgpack_object *agent = map_get(o, "agent");
    if (!agent || agent->type != MSGPACK_OBJECT_MAP)
        return -EBADMSG;
    const msgpack_object *name = map_get(agent, "name");
    if (!name || name->type != MSGPACK_OBJECT_STR || name->via.str.size == 0 ||
        has_nul(name->via.str.ptr, name->via.str.size))
        return -EBADMSG;
    char *n = dup_n(name->via.str.ptr, name->via.str.size);
    if (!n)
        return -ENOMEM;
    free(s->self_name);
    s->self_name = n;
    s->next_poll_at = now; /* first estimates as soon as possible */
    return 0;
}

static int parse_coord(const msgpack_object *o, struct netelect_serf_coord *c, bool *ok)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return -EBADMSG;
    const msgpack_object *okv = map_get(o, "Ok");
    const msgpack_object *co = map_get(o, "Coord");
    if (!okv || okv->type != MSGPACK_OBJECT_BOOLEAN || !co)
        return -EBADMSG;
    *ok = okv->via.boolean;
    if (!*ok)
        return co->type == MSGPACK_OBJECT_MAP || co->type == MSGPACK_OBJECT_NIL ? 0 : -EBADMSG;
    if (co->type != MSGPACK_OBJECT_MAP)
        return -EBADMSG;
    const msgpack_object *vec = map_get(co, "Vec");
    const msgpack_object *err = map_get(co, "Error");
    const msgpack_object *adj = map_get(co, "Adjustment");
    const msgpack_object *hgt = map_get(co, "Height");
    if (!vec || vec->type != MSGPACK_OBJECT_ARRAY || vec->via.array.size == 0 ||
        vec->via.array.size > NETELECT_SERF_MAX_DIM || !err || !adj || !hgt)
        return -EBADMSG;
    c->dim = vec->via.array.size;
    for (unsigned i = 0; i < c->dim; i++)
        if (!get_number(&vec->via.array.ptr[i], &c->vec[i]))
            return -EBADMSG;
    if (!get_number(err, &c->error) || !get_number(adj, &c->adjustment) ||
        !get_number(hgt, &c->height))
        return -EBADMSG;
    return 0;
}

static int poll_fill(struct netelect_serf *s, uint64_t now);

static int body_coord(struct netelect_serf *s, const msgpack_object *o, const char *node,
                      uint64_t now)
{
    struct netelect_serf_coord c;
    bool ok;
    int r = parse_coord(o, &c, &ok);
    if (r < 0)
        return r;
    if (!node) {
        s->self_coord_ok = ok;
        if (ok)
            s->self_coord = c;
    } else if (ok) {
        struct member *m = member_find(s, node, strlen(node), hash_bytes(node, strlen(node)));
        if (m && m->owns) {
            m->coord = c;
            m->coord_ok = true;
            uint64_t rtt, err;
            /* Different dimensionalities cannot be compared: no estimate. */
            if (s->self_coord_ok && agent_serf_distance(&s->self_coord, &c, &rtt, &err) == 0 &&
                s->cb.coord)
                s->cb.coord(s->ctx, m->node_id, rtt, err);
        }
    }
    return poll_fill(s, now);
}

static struct pending pop_pending(struct netelect_serf *s)
{
    struct pending p = s->ring[s->ring_head];
    s->ring_head = (s->ring_head + 1) % NETELECT_SERF_MAX_PENDING;
    s->ring_count--;
    if (p.kind == REQ_COORD)
        s->coord_inflight--;
    return p;
}

static int on_header(struct netelect_serf *s, const msgpack_object *o, uint64_t now)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return -EBADMSG;
    const msgpack_object *seqo = map_get(o, "Seq");
    const msgpack_object *erro = map_get(o, "Error");
    if (!seqo || seqo->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -EBADMSG;
    if (erro && erro->type != MSGPACK_OBJECT_STR && erro->type != MSGPACK_OBJECT_NIL)
        return -EBADMSG;
    bool failed = erro && erro->type == MSGPACK_OBJECT_STR && erro->via.str.size > 0;
    uint64_t seq = seqo->via.u64;

    if (s->stream_acked && seq == s->stream_seq) {
        if (failed)
            return -EBADMSG;
        s->await = BODY_EVENT;
        return 0;
    }
    /* Serf answers in request order, so anything else is out of protocol. */
    if (s->ring_count == 0 || s->ring[s->ring_head].seq != seq)
        return -EBADMSG;
    struct pending p = pop_pending(s);
    if (failed) {
        free(p.node);
        s->st.rpc_errors++;
        return p.kind == REQ_AUTH ? -EACCES : -EPROTO;
    }
    switch (p.kind) {
    case REQ_HANDSHAKE:
        return s->auth_key ? 0 : on_ready(s, now);
    case REQ_AUTH:
        return on_ready(s, now);
    case REQ_STREAM:
        s->stream_acked = true;
        return 0;
    case REQ_STATS:
        s->await = BODY_STATS;
        break;
    case REQ_MEMBERS:
        s->await = BODY_MEMBERS;
        break;
    case REQ_COORD:
        s->await = BODY_COORD;
        break;
    case REQ_STATUS:
        s->await = BODY_STATUS;
        break;
    }
    s->await_req = p;
    return 0;
}

static int on_object(struct netelect_serf *s, const msgpack_object *o, uint64_t now)
{
    enum body_kind k = s->await;
    if (k == BODY_NONE)
        return on_header(s, o, now);
    s->await = BODY_NONE;
    char *node = s->await_req.node;
    s->await_req.node = NULL;
    int r;
    switch (k) {
    case BODY_STATS: r = body_stats(s, o, now); break;
    case BODY_MEMBERS: r = body_members(s, o, now); break;
    case BODY_STATUS: r = body_status(s, o); break;
    case BODY_EVENT: r = body_event(s, o); break;
    case BODY_COORD: r = body_coord(s, o, node, now); break;
    default: r = -EBADMSG; break;
    }
    free(node);
    return r;
}

/* A protocol error: counted where it is the peer's fault, then dropped. */
static int fail(struct netelect_serf *s, int err, uint64_t now)
{
    if (err == -EBADMSG || err == -EMSGSIZE)
        s->st.malformed++;
    drop(s, err, now);
    return err;
}

int agent_serf_feed(struct netelect_serf *s, const void *bytes, size_t n, uint64_t now_ns)
{
    if (!s || (!bytes && n))
        return -EINVAL;
    if (s->state != ST_OPEN)
        return -ENOTCONN;
    if (n == 0)
        return 0;
    int r = agent_serf_scan(&s->scan, bytes, n);
    if (r < 0)
        return fail(s, r, now_ns);
    if (!msgpack_unpacker_reserve_buffer(&s->unp, n))
        return fail(s, -ENOMEM, now_ns);
    memcpy(msgpack_unpacker_buffer(&s->unp), bytes, n);
    msgpack_unpacker_buffer_consumed(&s->unp, n);

    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    for (;;) {
        msgpack_unpack_return ur = msgpack_unpacker_next(&s->unp, &res);
        if (ur == MSGPACK_UNPACK_CONTINUE)
            break;
        if (ur != MSGPACK_UNPACK_SUCCESS) {
            r = ur == MSGPACK_UNPACK_NOMEM_ERROR ? -ENOMEM : -EBADMSG;
            break;
        }
        if ((r = on_object(s, &res.data, now_ns)) < 0)
            break;
    }
    msgpack_unpacked_destroy(&res);
    if (r < 0)
        return fail(s, r, now_ns);
    r = flush_out(s);
    return r < 0 ? fail(s, r, now_ns) : 0;
}

/* ------------------------------------------------------------------ */
/* coordinate polling */

static int poll_fill(struct netelect_serf *s, uint64_t now)
{
    if (!s->poll_active)
        return 0;
    while (s->poll_cursor < s->n_members && s->coord_inflight < NETELECT_SERF_COORD_WINDOW &&
           s->ring_count < NETELECT_SERF_MAX_PENDING) {
        struct member *m = s->vec[s->poll_cursor++];
        if (!m->owns || is_self_member(s, m))
            continue;
        int r = queue_request(s, REQ_COORD, "get-coordinate", "Node", m->name, now, m->name);
        if (r < 0)
            return r;
        s->st.coord_polls++;
    }
    if (s->poll_cursor >= s->n_members && s->coord_inflight == 0)
        s->poll_active = false;
    return 0;
}

static int poll_start(struct netelect_serf *s, uint64_t now)
{
    s->poll_active = true;
    s->poll_cursor = 0;
    s->next_poll_at = now + s->coord_period;
    /* Our own coordinate first, so every estimate in the cycle uses a
     * coordinate of ours at most one cycle older than the peer's. */
    int r = queue_request(s, REQ_COORD, "get-coordinate", "Node", s->self_name, now, NULL);
    if (r < 0) {
        s->poll_active = false; /* try again next period */
        return r;
    }
    s->st.coord_polls++;
    return poll_fill(s, now);
}

/* ------------------------------------------------------------------ */
/* public entry points */

static int parse_addr(const char *str, struct sockaddr_storage *ss, socklen_t *len)
{
    const char *colon = strrchr(str, ':');
    if (!colon || colon == str || strlen(colon + 1) == 0 || strlen(colon + 1) > 5)
        return -EINVAL;
    char host[64];
    const char *h = str;
    size_t hl = (size_t)(colon - str);
    if (h[0] == '[') {
        if (hl < 2 || h[hl - 1] != ']')
            return -EINVAL;
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host))
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (h == str && memchr(host, ':', hl))
        return -EINVAL; /* an IPv6 address needs brackets */
    unsigned port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        port = port * 10 + (unsigned)(*p - '0');
    }
    if (port == 0 || port > 65535)
        return -EINVAL;
    /* Numeric only: name resolution could block the agent's loop. */
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
    } else {
        return -EINVAL;
    }
    return 0;
}

static int copy_cfg_str(const char *in, const char *def, char **out, size_t *len)
{
    const char *v = in ? in : def;
    if (!v) {
        *out = NULL;
        return 0;
    }
    size_t n = strnlen(v, MAX_CFG_STR + 1);
    if (n == 0 || n > MAX_CFG_STR)
        return -EINVAL;
    if (!(*out = dup_n(v, n)))
        return -ENOMEM;
    if (len)
        *len = n;
    return 0;
}

void agent_serf_free(struct netelect_serf *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    clear_pending(s);
    if (s->unp_ok)
        msgpack_unpacker_destroy(&s->unp);
    msgpack_sbuffer_destroy(&s->out);
    for (size_t i = 0; i < s->n_members; i++)
        member_free(s->vec[i]);
    free(s->vec);
    free(s->buckets);
    free(s->id_buckets);
    free(s->rpc_uids);
    free(s->self_name);
    free(s->auth_key);
    free(s->id_tag);
    free(s->channel_tag);
    free(s->rbuf);
    free(s);
}

int agent_serf_new(const struct netelect_serf_config *cfg,
                       const struct netelect_serf_callbacks *cb, void *ctx,
                       struct netelect_serf **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    static const struct netelect_serf_config none;
    if (!cfg)
        cfg = &none;
    struct netelect_serf *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->fd = -1;
    msgpack_sbuffer_init(&s->out);
    msgpack_packer_init(&s->pk, &s->out, msgpack_sbuffer_write);
    int r = parse_addr(cfg->rpc_addr ? cfg->rpc_addr : DEFAULT_RPC_ADDR, &s->addr, &s->addr_len);
    if (r == 0 && cfg->auth_key)
        r = copy_cfg_str(cfg->auth_key, NULL, &s->auth_key, NULL);
    if (r == 0)
        r = copy_cfg_str(cfg->id_tag, DEFAULT_ID_TAG, &s->id_tag, &s->id_tag_len);
    if (r == 0)
        r = copy_cfg_str(cfg->channel_tag, DEFAULT_CHANNEL_TAG, &s->channel_tag,
                         &s->channel_tag_len);
    s->coord_period = cfg->coord_period_ns ? cfg->coord_period_ns : DEFAULT_COORD_PERIOD_NS;
    s->status_period = cfg->status_poll_ns ? cfg->status_poll_ns : DEFAULT_STATUS_POLL_NS;
    s->backoff_min = cfg->backoff_min_ns ? cfg->backoff_min_ns : DEFAULT_BACKOFF_MIN_NS;
    s->backoff_max = cfg->backoff_max_ns ? cfg->backoff_max_ns : DEFAULT_BACKOFF_MAX_NS;
    if (r == 0 && s->backoff_min > s->backoff_max)
        r = -EINVAL;
    s->backoff = s->backoff_min;
    s->rpc_uid_any = cfg->rpc_uid_any != 0;
    if (r == 0 && cfg->n_rpc_uids) {
        if (!cfg->rpc_uids || cfg->n_rpc_uids > 64)
            r = -EINVAL;
        else if (!(s->rpc_uids = malloc(cfg->n_rpc_uids * sizeof(uint32_t))))
            r = -ENOMEM;
        else
            memcpy(s->rpc_uids, cfg->rpc_uids, cfg->n_rpc_uids * sizeof(uint32_t));
        s->n_rpc_uids = s->rpc_uids ? cfg->n_rpc_uids : 0;
    }
    s->self_id = cfg->self_id;
    s->max_ids = cfg->max_ids ? cfg->max_ids : NETELECT_SERF_DEFAULT_MAX_IDS;
    s->st.listener_uid = -1;
    /* Already due, but not 0: callers that arm a timerfd with the deadline
     * would read 0 as "disarm" and never connect. */
    s->reconnect_at = 1;
    if (cb)
        s->cb = *cb;
    s->ctx = ctx;
    if (r == 0 && !(s->rbuf = malloc(READ_CHUNK)))
        r = -ENOMEM;
    if (r == 0)
        r = reset_input(s);
    if (r < 0) {
        agent_serf_free(s);
        return r;
    }
    *out = s;
    return 0;
}

int agent_serf_fd(const struct netelect_serf *s)
{
    return s ? s->fd : -1;
}

uint32_t agent_serf_events(const struct netelect_serf *s)
{
    if (!s || s->fd < 0)
        return 0;
    if (s->state == ST_CONNECTING)
        return EPOLLOUT;
    return EPOLLIN | (out_pending(s) ? EPOLLOUT : 0);
}

static int finish_connect(struct netelect_serf *s, uint64_t now)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == EINPROGRESS || err == EALREADY)
        return 0;
    if (err)
        return -err;
    return session_open(s, now);
}

int agent_serf_handle(struct netelect_serf *s, uint32_t revents, uint64_t now_ns)
{
    if (!s)
        return -EINVAL;
    if (s->fd < 0)
        return 0;
    int r;
    if (s->state == ST_CONNECTING) {
        if (!(revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return 0;
        if ((r = finish_connect(s, now_ns)) < 0)
            return fail(s, r, now_ns);
        if (s->state != ST_OPEN)
            return 0;
        r = flush_out(s);
        return r < 0 ? fail(s, r, now_ns) : 0;
    }
    if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        for (int i = 0; i < MAX_READS_PER_HANDLE; i++) {
            ssize_t n = recv(s->fd, s->rbuf, READ_CHUNK, MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                return fail(s, -errno, now_ns);
            }
            if (n == 0)
                return fail(s, -ECONNRESET, now_ns);
            if ((r = agent_serf_feed(s, s->rbuf, (size_t)n, now_ns)) < 0)
                return r;
        }
    }
    if (s->fd >= 0 && (revents & EPOLLOUT)) {
        if ((r = flush_out(s)) < 0)
            return fail(s, r, now_ns);
    }
    return 0;
}

static bool status_due(const struct netelect_serf *s)
{
    return s->up && s->synced && !s->status_inflight &&
           s->status_period != NETELECT_SERF_STATUS_POLL_OFF;
}

int agent_serf_tick(struct netelect_serf *s, uint64_t now_ns)
{
    if (!s)
        return -EINVAL;
    int r = 0;
    if (s->state == ST_IDLE) {
        if (now_ns < s->reconnect_at)
            return 0;
        if ((r = try_connect(s, now_ns)) < 0)
            return fail(s, r, now_ns);
        if (s->state == ST_OPEN && (r = flush_out(s)) < 0)
            return fail(s, r, now_ns);
        return 0;
    }
    if (s->state == ST_CONNECTING) {
        if (now_ns >= s->connect_deadline) {
            s->st.timeouts++;
            return fail(s, -ETIMEDOUT, now_ns);
        }
        return 0;
    }
    if (s->ring_count && now_ns >= s->ring[s->ring_head].deadline) {
        s->st.timeouts++;
        return fail(s, -ETIMEDOUT, now_ns);
    }
    if (s->up && s->self_name && !s->poll_active && now_ns >= s->next_poll_at) {
        /* A full queue only delays this cycle. */
        if ((r = poll_start(s, now_ns)) < 0 && r != -ENOBUFS)
            return fail(s, r, now_ns);
    }
    if (status_due(s) && now_ns >= s->next_status_at) {
        /* The period runs from one send to the next; a slow reply delays
         * the next poll instead of stacking polls up. */
        s->next_status_at = add_sat(now_ns, s->status_period);
        r = queue_request(s, REQ_STATUS, "members-filtered", NULL, NULL, now_ns, NULL);
        if (r == 0)
            s->st.status_polls++;
        else if (r != -ENOBUFS) /* a full queue only skips this poll */
            return fail(s, r, now_ns);
    }
    r = flush_out(s);
    return r < 0 ? fail(s, r, now_ns) : 0;
}

uint64_t agent_serf_next_deadline(const struct netelect_serf *s)
{
    if (!s)
        return UINT64_MAX;
    if (s->state == ST_IDLE)
        return s->reconnect_at;
    if (s->state == ST_CONNECTING)
        return s->connect_deadline;
    uint64_t d = UINT64_MAX;
    if (s->ring_count)
        d = s->ring[s->ring_head].deadline;
    if (s->up && s->self_name && !s->poll_active && s->next_poll_at < d)
        d = s->next_poll_at;
    if (status_due(s) && s->next_status_at < d)
        d = s->next_status_at;
    return d ? d : 1;
}

void agent_serf_stats(const struct netelect_serf *s, struct netelect_serf_stats *out)
{
    if (!s || !out)
        return;
    *out = s->st;
    out->connected = s->up;
    out->members = s->n_members;
    out->members_without_id = s->without_id;
    out->ids_refused = s->n_refused;
}

int agent_serf_test_connected(struct netelect_serf *s, uint64_t now_ns)
{
    if (!s)
        return -EINVAL;
    if (s->state != ST_IDLE)
        return -EBUSY;
    s->test_mode = true;
    s->state = ST_OPEN;
    return start_session(s, now_ns);
}

size_t agent_serf_take_output(struct netelect_serf *s, void *buf, size_t cap)
{
    if (!s)
        return 0;
    size_t n = s->out.size - s->out_off;
    if (n > cap)
        n = cap;
    if (n && buf)
        memcpy(buf, s->out.data + s->out_off, n);
    s->out_off += n;
    if (s->out_off == s->out.size) {
        msgpack_sbuffer_clear(&s->out);
        s->out_off = 0;
    }
    return n;
}

size_t agent_serf_member_count(const struct netelect_serf *s)
{
    return s ? s->n_members : 0;
}

const char *agent_serf_self_name(const struct netelect_serf *s)
{
    return s ? s->self_name : NULL;
}
