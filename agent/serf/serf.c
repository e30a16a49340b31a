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
#include <math.h>
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
    struct netelect_serf_coord coord;
    bool coord_ok;
};

struct netelect_serf {
    /* configuration (strings owned) */
    char *auth_key, *id_tag, *channel_tag;
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
    size_t n_buckets;
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

int netelect__serf_parse_id(const char *s, size_t len, uint64_t *out)
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

int netelect__serf_distance(const struct netelect_serf_coord *a,
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
        if (!b)
            return -ENOMEM;
        for (size_t i = 0; i < s->n_members; i++) {
            struct member *m = s->vec[i];
            m->next = b[m->hash & (nb - 1)];
            b[m->hash & (nb - 1)] = m;
        }
        free(s->buckets);
        s->buckets = b;
        s->n_buckets = nb;
    }
    return 0;
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
    netelect__serf_scan_init(&s->scan);
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
    /* Once per outage, so a Serf that stays down does not flood the log. */
    if (was_up || !s->down_reported) {
        s->down_reported = true;
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

static int try_connect(struct netelect_serf *s, uint64_t now)
{
    int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->fd = fd;
    s->connect_deadline = now + NETELECT_SERF_CONNECT_TIMEOUT_NS;
    if (connect(fd, (struct sockaddr *)&s->addr, s->addr_len) == 0) {
        s->state = ST_OPEN;
        return start_session(s, now);
    }
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
                v->has_id = netelect__serf_parse_id(vp, vn, &v->node_id) == 0;
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

/* Applies a parsed member to the table and reports it. */
static int apply_member(struct netelect_serf *s, enum netelect_serf_event ev,
                        const struct member_view *v)
{
    uint64_t h = hash_bytes(v->name, v->name_len);
    struct member *m = member_find(s, v->name, v->name_len, h);
    struct netelect_serf_member out = {
        .node_id = v->node_id, .has_id = v->has_id, .status = v->status, .port = v->port,
    };
    memcpy(out.addr, v->addr, sizeof(out.addr));

    if (ev == NETELECT_SERF_EV_REAP || (!m && s->n_members >= NETELECT_SERF_MAX_MEMBERS)) {
        /* Not (or no longer) tracked: report from temporary copies. */
        char *name = dup_n(v->name, v->name_len);
        char *ch = v->has_channels ? dup_n(v->channels, v->channels_len) : NULL;
        if (!name || (v->has_channels && !ch)) {
            free(name);
            free(ch);
            return -ENOMEM;
        }
        if (m)
            member_remove(s, m);
        else if (ev != NETELECT_SERF_EV_REAP)
            s->st.members_untracked++;
        out.name = name;
        out.channels = ch;
        if (s->cb.member)
            s->cb.member(s->ctx, ev, &out);
        free(name);
        free(ch);
        return 0;
    }

    char *ch = NULL;
    if (v->has_channels && !(ch = dup_n(v->channels, v->channels_len)))
        return -ENOMEM;
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
        m->has_id = 1; /* counted as "with id" until set below */
        m->idx = s->n_members;
        s->vec[s->n_members++] = m;
        m->next = s->buckets[h & (s->n_buckets - 1)];
        s->buckets[h & (s->n_buckets - 1)] = m;
    }
    if (!m->has_id)
        s->without_id--;
    if (m->has_id != v->has_id || m->node_id != v->node_id)
        m->coord_ok = false;
    free(m->channels);
    m->channels = ch;
    m->node_id = v->node_id;
    m->has_id = v->has_id;
    if (!m->has_id)
        s->without_id++;
    m->status = v->status;
    memcpy(m->addr, v->addr, sizeof(m->addr));
    m->port = v->port;
    m->gen = s->gen;

    out.name = m->name;
    out.channels = m->channels;
    if (s->cb.member)
        s->cb.member(s->ctx, ev, &out);
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
        struct netelect_serf_member out = {
            .name = m->name, .node_id = m->node_id, .has_id = m->has_id,
            .channels = m->channels, .status = m->status, .port = m->port,
        };
        memcpy(out.addr, m->addr, sizeof(out.addr));
        if (s->cb.member)
            s->cb.member(s->ctx, NETELECT_SERF_EV_REAP, &out);
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
        if (m && m->has_id) {
            m->coord = c;
            m->coord_ok = true;
            uint64_t rtt, err;
            /* Different dimensionalities cannot be compared: no estimate. */
            if (s->self_coord_ok && netelect__serf_distance(&s->self_coord, &c, &rtt, &err) == 0 &&
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

int netelect__serf_feed(struct netelect_serf *s, const void *bytes, size_t n, uint64_t now_ns)
{
    if (!s || (!bytes && n))
        return -EINVAL;
    if (s->state != ST_OPEN)
        return -ENOTCONN;
    if (n == 0)
        return 0;
    int r = netelect__serf_scan(&s->scan, bytes, n);
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
        if (!m->has_id || (s->self_name && strcmp(m->name, s->self_name) == 0))
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

void netelect__serf_free(struct netelect_serf *s)
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
    free(s->self_name);
    free(s->auth_key);
    free(s->id_tag);
    free(s->channel_tag);
    free(s->rbuf);
    free(s);
}

int netelect__serf_new(const struct netelect_serf_config *cfg,
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
        netelect__serf_free(s);
        return r;
    }
    *out = s;
    return 0;
}

int netelect__serf_fd(const struct netelect_serf *s)
{
    return s ? s->fd : -1;
}

uint32_t netelect__serf_events(const struct netelect_serf *s)
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
    s->state = ST_OPEN;
    return start_session(s, now);
}

int netelect__serf_handle(struct netelect_serf *s, uint32_t revents, uint64_t now_ns)
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
            if ((r = netelect__serf_feed(s, s->rbuf, (size_t)n, now_ns)) < 0)
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

int netelect__serf_tick(struct netelect_serf *s, uint64_t now_ns)
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

uint64_t netelect__serf_next_deadline(const struct netelect_serf *s)
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

void netelect__serf_stats(const struct netelect_serf *s, struct netelect_serf_stats *out)
{
    if (!s || !out)
        return;
    *out = s->st;
    out->connected = s->up;
    out->members = s->n_members;
    out->members_without_id = s->without_id;
}

int netelect__serf_test_connected(struct netelect_serf *s, uint64_t now_ns)
{
    if (!s)
        return -EINVAL;
    if (s->state != ST_IDLE)
        return -EBUSY;
    s->test_mode = true;
    s->state = ST_OPEN;
    return start_session(s, now_ns);
}

size_t netelect__serf_take_output(struct netelect_serf *s, void *buf, size_t cap)
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

size_t netelect__serf_member_count(const struct netelect_serf *s)
{
    return s ? s->n_members : 0;
}

const char *netelect__serf_self_name(const struct netelect_serf *s)
{
    return s ? s->self_name : NULL;
}
