/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the Serf RPC client's decoding, driven with crafted msgpack
 * byte streams fed through agent_serf_feed() (no Serf needed), plus the
 * socket path against an in-test fake Serf on loopback.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netelect.h"
#include "tests/serf/helpers.h"
#include "tests/serf/replay.h"

#define S 1000000000ull
#define T0 (100 * S)

static const struct tmember three[] = {
    {"n1", "1", "ch1,ch2", "alive", {127, 0, 0, 1}, 7946},
    {"n2", "0x2A", "ch1", "alive", {127, 0, 0, 2}, 7947},
    {"n3", NULL, "ch2", "alive", {10, 1, 2, 3}, 7948},
};

static struct netelect_serf *client(struct rec *r, const struct netelect_serf_config *cfg)
{
    struct netelect_serf *s = NULL;
    int rc = agent_serf_new(cfg, &rec_callbacks, r, &s);
    cr_assert_eq(rc, 0, "new: %d", rc);
    return s;
}

static int feed_mp(struct netelect_serf *s, struct mp *m, uint64_t now)
{
    int rc = agent_serf_feed(s, m->sb.data, m->sb.size, now);
    msgpack_sbuffer_clear(&m->sb);
    return rc;
}

/* Brings a test-mode client through the handshake; checks what it sends. */
static struct netelect_serf *up_session(struct rec *r, const struct netelect_serf_config *cfg)
{
    struct netelect_serf *s = client(r, cfg);
    cr_assert_eq(agent_serf_test_connected(s, T0), 0);
    struct treq q[8];
    cr_assert_eq(take_requests(s, q, 8), 1);
    cr_assert_str_eq(q[0].cmd, "handshake");
    cr_assert_eq(q[0].seq, 0);
    cr_assert_str_eq(q[0].arg_key, "Version");
    cr_assert_eq(q[0].version, 1);
    struct mp m;
    mp_init(&m);
    mp_header(&m, 0, NULL);
    cr_assert_eq(feed_mp(s, &m, T0), 0);
    mp_free(&m);
    cr_assert_eq(r->nconn, 1);
    cr_assert_eq(r->conn[0].up, 1);
    cr_assert_eq(take_requests(s, q, 8), 3);
    cr_assert_str_eq(q[0].cmd, "stats");
    cr_assert_eq(q[0].seq, 1);
    cr_assert_str_eq(q[1].cmd, "stream");
    cr_assert_eq(q[1].seq, 2);
    cr_assert_str_eq(q[1].arg_key, "Type");
    cr_assert_str_eq(q[1].arg,
                     "member-join,member-leave,member-failed,member-update,member-reap");
    cr_assert_str_eq(q[2].cmd, "members");
    cr_assert_eq(q[2].seq, 3);
    return s;
}

/* The replies to the client's first two requests (stats as "n1", then the
 * stream's acknowledgement), which every members reply follows. */
static void pack_handshake(struct mp *m)
{
    mp_header(m, 1, NULL);
    mp_stats_body(m, "n1");
    mp_header(m, 2, NULL);
}

/* stats (seq 1) + stream ack (2) + members (3) */
static void pack_setup(struct mp *m, const struct tmember *t, size_t n)
{
    pack_handshake(m);
    mp_header(m, 3, NULL);
    mp_members_body(m, t, n);
}

/* The fixture of the tests that drive one client: a recorder for its
 * callbacks and a packer for the replies fed to it.  The test creates the
 * client (with its own configuration) through fx_up or fx_client; .fini
 * frees all three whether the test passed or failed. */
static struct {
    struct rec *r;
    struct netelect_serf *s;
    struct mp m;
} fx;

static void fx_init(void)
{
    fx.r = calloc(1, sizeof *fx.r);
    cr_assert_not_null(fx.r);
    mp_init(&fx.m);
}

static void fx_fini(void)
{
    mp_free(&fx.m);
    agent_serf_free(fx.s);
    free(fx.r);
}

/* A client through the handshake (up_session), or just created (client). */
static struct netelect_serf *fx_up(const struct netelect_serf_config *cfg)
{
    return fx.s = up_session(fx.r, cfg);
}

static struct netelect_serf *fx_client(const struct netelect_serf_config *cfg)
{
    return fx.s = client(fx.r, cfg);
}

static void last_conn_is(const struct rec *r, int up, int err)
{
    cr_assert_gt(r->nconn, 0);
    cr_assert_eq(r->conn[r->nconn - 1].up, up);
    cr_assert_eq(r->conn[r->nconn - 1].err, err, "err %d, expected %d",
                 r->conn[r->nconn - 1].err, err);
}

Test(serf, handshake_stats_members_snapshot, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf *s = fx_up(NULL);
    struct mp *m = &fx.m;
    pack_setup(m, three, 3);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_str_eq(agent_serf_self_name(s), "n1");
    cr_assert_eq(r->nm, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r->m[i].ev, NETELECT_SERF_EV_SNAPSHOT);
        cr_assert_str_eq(r->m[i].name, three[i].name);
        cr_assert_eq(r->m[i].status, NETELECT_SERF_ALIVE);
        cr_assert_eq(r->m[i].port, three[i].port);
        cr_assert_str_eq(r->m[i].channels, three[i].channels);
    }
    cr_assert_eq(r->m[0].has_id, 1);
    cr_assert_eq(r->m[0].id, 1);
    cr_assert_eq(r->m[1].has_id, 1);
    cr_assert_eq(r->m[1].id, 42);
    cr_assert_eq(r->m[2].has_id, 0);
    cr_assert_str_eq(r->m[0].addr, "127.0.0.1");
    cr_assert_str_eq(r->m[2].addr, "10.1.2.3");
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.connected, 1);
    cr_assert_eq(st.connects, 1);
    cr_assert_eq(st.members, 3);
    cr_assert_eq(st.members_without_id, 1);
    cr_assert_eq(st.malformed, 0);
}

Test(serf, auth_then_ready, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf_config cfg = {.auth_key = "s3cret"};
    struct netelect_serf *s = fx_client(&cfg);
    cr_assert_eq(agent_serf_test_connected(s, T0), 0);
    struct treq q[8];
    cr_assert_eq(take_requests(s, q, 8), 2);
    cr_assert_str_eq(q[1].cmd, "auth");
    cr_assert_eq(q[1].seq, 1);
    cr_assert_str_eq(q[1].arg_key, "AuthKey");
    cr_assert_str_eq(q[1].arg, "s3cret");
    struct mp *m = &fx.m;
    mp_header(m, 0, NULL);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(r->nconn, 0, "up before auth succeeded");
    mp_header(m, 1, NULL);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    last_conn_is(r, 1, 0);
    cr_assert_eq(take_requests(s, q, 8), 3);
    cr_assert_str_eq(q[0].cmd, "stats");
    cr_assert_eq(q[0].seq, 2);
}

Test(serf, auth_rejected, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf_config cfg = {.auth_key = "wrong"};
    struct netelect_serf *s = fx_client(&cfg);
    cr_assert_eq(agent_serf_test_connected(s, T0), 0);
    struct mp *m = &fx.m;
    mp_header(m, 0, NULL);
    mp_header(m, 1, "Invalid authentication token");
    cr_assert_eq(feed_mp(s, m, T0), -EACCES);
    last_conn_is(r, 0, -EACCES);
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.connected, 0);
    cr_assert_eq(st.rpc_errors, 1);
    cr_assert_eq(st.malformed, 0);
    cr_assert_eq(agent_serf_next_deadline(s), T0 + 100000000ull, "backoff_min default");
}

Test(serf, handshake_rejected, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf *s = fx_client(NULL);
    agent_serf_test_connected(s, T0);
    struct mp *m = &fx.m;
    mp_header(m, 0, "Unsupported IPC version");
    cr_assert_eq(feed_mp(s, m, T0), -EPROTO);
    last_conn_is(r, 0, -EPROTO);
    cr_assert_eq(agent_serf_feed(s, "x", 1, T0), -ENOTCONN);
}

Test(serf, stream_events, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf *s = fx_up(NULL);
    struct mp *m = &fx.m;
    pack_setup(m, three, 3);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    r->nm = 0;

    struct tmember n4 = {"n4", "4", "ch9", "alive", {127, 0, 0, 4}, 7949};
    struct tmember n2u = {"n2", "0x2A", "ch1,ch3", "alive", {127, 0, 0, 2}, 7947};
    struct tmember n2l = {"n2", "0x2A", "ch1,ch3", "left", {127, 0, 0, 2}, 7947};
    struct tmember n1f = {"n1", "1", "ch1,ch2", "failed", {127, 0, 0, 1}, 7946};
    struct tmember n4r = {"n4", "4", "ch9", "left", {127, 0, 0, 4}, 7949};
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-join", &n4, 1);
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-update", &n2u, 1);
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-leave", &n2l, 1);
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-failed", &n1f, 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(agent_serf_member_count(s), 4);
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-reap", &n4r, 1);
    mp_header(m, 2, NULL);
    mp_event_body(m, "user", NULL, 0); /* not ours: ignored, not an error */
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(agent_serf_member_count(s), 3);

    cr_assert_eq(r->nm, 5);
    cr_assert_eq(r->m[0].ev, NETELECT_SERF_EV_JOIN);
    cr_assert_eq(r->m[0].id, 4);
    cr_assert_eq(r->m[1].ev, NETELECT_SERF_EV_UPDATE);
    cr_assert_str_eq(r->m[1].channels, "ch1,ch3");
    cr_assert_eq(r->m[2].ev, NETELECT_SERF_EV_LEAVE);
    cr_assert_eq(r->m[2].status, NETELECT_SERF_LEFT);
    cr_assert_eq(r->m[3].ev, NETELECT_SERF_EV_FAILED);
    cr_assert_eq(r->m[3].status, NETELECT_SERF_FAILED);
    cr_assert_eq(r->m[4].ev, NETELECT_SERF_EV_REAP);
    cr_assert_str_eq(r->m[4].name, "n4");
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.events, 5);
    cr_assert_eq(st.malformed, 0);
    cr_assert_eq(st.connected, 1);
}

static void set_coord(struct netelect_serf_coord *c, double x, double y, double h, double adj,
                      double err)
{
    memset(c, 0, sizeof(*c));
    c->dim = 8;
    c->vec[0] = x;
    c->vec[1] = y;
    c->height = h;
    c->adjustment = adj;
    c->error = err;
}

Test(serf, distance_formula, .timeout = 5)
{
    struct netelect_serf_coord a, b;
    uint64_t rtt, err;
    /* |(3,4) ms| = 5 ms; + heights 0.1 + 0.2 ms = 5.3 ms; adjustments
     * -1 + 0.2 ms keep it positive: 4.5 ms.  Errors 0.2 + 0.3 = 0.5 of it. */
    set_coord(&a, 0.003, 0.004, 0.0001, -0.001, 0.2);
    set_coord(&b, 0, 0, 0.0002, 0.0002, 0.3);
    cr_assert_eq(agent_serf_distance(&a, &b, &rtt, &err), 0);
    cr_assert(rtt >= 4499999 && rtt <= 4500000, "rtt %" PRIu64, rtt);
    cr_assert(err >= 2249999 && err <= 2250000, "err %" PRIu64, err);
    /* Symmetric. */
    uint64_t rtt2;
    cr_assert_eq(agent_serf_distance(&b, &a, &rtt2, NULL), 0);
    cr_assert_eq(rtt, rtt2);
    /* Adjustments that would make it <= 0 are ignored: raw 5.3 ms. */
    set_coord(&a, 0.003, 0.004, 0.0001, -0.01, 0.2);
    set_coord(&b, 0, 0, 0.0002, -0.01, 0.3);
    cr_assert_eq(agent_serf_distance(&a, &b, &rtt, NULL), 0);
    cr_assert(rtt >= 5299999 && rtt <= 5300000, "rtt %" PRIu64, rtt);
    /* Same point: heights only (10 us minimum each in Serf): 20 us. */
    set_coord(&a, 0.5, 0.5, 0.00001, 0, 0);
    set_coord(&b, 0.5, 0.5, 0.00001, 0, 0);
    cr_assert_eq(agent_serf_distance(&a, &b, &rtt, &err), 0);
    cr_assert(rtt >= 19999 && rtt <= 20000, "rtt %" PRIu64, rtt);
    cr_assert_eq(err, 0);
    /* Saturates below "unknown". */
    set_coord(&a, 1e12, 0, 0, 0, 1.5);
    set_coord(&b, -1e12, 0, 0, 0, 1.5);
    cr_assert_eq(agent_serf_distance(&a, &b, &rtt, &err), 0);
    cr_assert_eq(rtt, NETELECT_RTT_MAX_MEASURED);
    cr_assert_eq(err, NETELECT_RTT_MAX_MEASURED);
    /* Incomparable or invalid. */
    b.dim = 3;
    cr_assert_eq(agent_serf_distance(&a, &b, &rtt, &err), -EINVAL);
    set_coord(&b, NAN, 0, 0, 0, 0);
    cr_assert_eq(agent_serf_distance(&a, &b, &rtt, &err), -EINVAL);
}

Test(serf, coordinates_polled_and_reported, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    /* Only the coordinate timer here: status polls have their own test. */
    struct netelect_serf_config cfg = {.coord_period_ns = 2 * S,
                                       .status_poll_ns = NETELECT_SERF_STATUS_POLL_OFF};
    struct netelect_serf *s = fx_up(&cfg);
    struct mp *m = &fx.m;
    pack_setup(m, three, 3);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(agent_serf_next_deadline(s), T0, "polls at once after stats");
    cr_assert_eq(agent_serf_tick(s, T0), 0);
    struct treq q[8];
    /* Self first, then each member with an id except self (n3 has none). */
    cr_assert_eq(take_requests(s, q, 8), 2);
    cr_assert_str_eq(q[0].cmd, "get-coordinate");
    cr_assert_eq(q[0].seq, 4);
    cr_assert_str_eq(q[0].arg, "n1");
    cr_assert_str_eq(q[1].arg, "n2");
    cr_assert_eq(q[1].seq, 5);

    struct netelect_serf_coord self, peer;
    set_coord(&self, 0.003, 0.004, 0.0001, -0.001, 0.2);
    set_coord(&peer, 0, 0, 0.0002, 0.0002, 0.3);
    mp_header(m, 4, NULL);
    mp_coord_body(m, &self, 1);
    mp_header(m, 5, NULL);
    mp_coord_body(m, &peer, 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(r->nc, 1);
    cr_assert_eq(r->c[0].id, 42);
    cr_assert(r->c[0].rtt >= 4499999 && r->c[0].rtt <= 4500000, "%" PRIu64, r->c[0].rtt);
    cr_assert(r->c[0].err >= 2249999 && r->c[0].err <= 2250000);

    /* Next cycle only after the period; an unknown coordinate (Ok false)
     * gives no estimate. */
    cr_assert_eq(agent_serf_next_deadline(s), T0 + 2 * S);
    cr_assert_eq(agent_serf_tick(s, T0 + S), 0);
    cr_assert_eq(take_requests(s, q, 8), 0);
    cr_assert_eq(agent_serf_tick(s, T0 + 2 * S), 0);
    cr_assert_eq(take_requests(s, q, 8), 2);
    mp_header(m, q[0].seq, NULL);
    mp_coord_body(m, &self, 1);
    mp_header(m, q[1].seq, NULL);
    mp_coord_body(m, NULL, 0);
    cr_assert_eq(feed_mp(s, m, T0 + 2 * S), 0);
    cr_assert_eq(r->nc, 1);
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.coord_polls, 4);
    cr_assert_eq(st.malformed, 0);
}

/* The whole session as one byte string, replayed with different splits. */
static void replay(const unsigned char *a, size_t na, const unsigned char *b, size_t nb,
                   size_t (*chunk)(size_t i), struct rec *r)
{
    struct netelect_serf *s = up_session(r, NULL);
    for (size_t i = 0, k = 0; i < na; k++) {
        size_t c = chunk(k);
        if (c > na - i)
            c = na - i;
        cr_assert_eq(agent_serf_feed(s, a + i, c, T0), 0);
        i += c;
    }
    cr_assert_eq(agent_serf_tick(s, T0), 0);
    agent_serf_take_output(s, NULL, SIZE_MAX);
    for (size_t i = 0, k = 0; i < nb; k++) {
        size_t c = chunk(k);
        if (c > nb - i)
            c = nb - i;
        cr_assert_eq(agent_serf_feed(s, b + i, c, T0), 0);
        i += c;
    }
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.malformed, 0);
    cr_assert_eq(st.connected, 1);
    agent_serf_free(s);
}

static size_t whole(size_t i)
{
    (void)i;
    return SIZE_MAX;
}
static size_t one(size_t i)
{
    (void)i;
    return 1;
}
static size_t odd(size_t i)
{
    static const size_t sizes[] = {3, 1, 7, 2, 13, 5, 64, 11, 1, 1, 29};
    return sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
}

/* Field by field: memcmp would also compare padding and the bytes after
 * each string's NUL, which no callback promises anything about.  Returns
 * NULL when equal, else what differs first. */
static const char *rec_diff(const struct rec *a, const struct rec *b)
{
    if (a->nm != b->nm || a->nc != b->nc || a->nconn != b->nconn || a->nrej != b->nrej)
        return "record counts";
    for (size_t i = 0; i < a->nm; i++) {
        const struct rec_member *x = &a->m[i], *y = &b->m[i];
        if (x->ev != y->ev || strcmp(x->name, y->name) || x->id != y->id ||
            x->has_id != y->has_id || strcmp(x->channels, y->channels) ||
            x->has_channels != y->has_channels || x->status != y->status ||
            strncmp(x->addr, y->addr, sizeof x->addr) || x->port != y->port)
            return "a member event";
    }
    for (size_t i = 0; i < a->nc; i++)
        if (a->c[i].id != b->c[i].id || a->c[i].rtt != b->c[i].rtt || a->c[i].err != b->c[i].err)
            return "a coordinate";
    for (size_t i = 0; i < a->nconn; i++)
        if (a->conn[i].up != b->conn[i].up || a->conn[i].err != b->conn[i].err)
            return "a connection event";
    for (size_t i = 0; i < a->nrej; i++)
        if (a->rej[i].why != b->rej[i].why || strcmp(a->rej[i].name, b->rej[i].name) ||
            a->rej[i].id != b->rej[i].id)
            return "a rejection";
    return NULL;
}

Test(serf, split_across_chunks, .timeout = 20)
{
    struct mp a, b;
    mp_init(&a);
    mp_init(&b);
    pack_setup(&a, three, 3);
    struct tmember n4 = {"n4", "18446744073709551615", "ch9", "alive", {127, 0, 0, 4}, 1};
    mp_header(&a, 2, NULL);
    mp_event_body(&a, "member-join", &n4, 1);
    struct netelect_serf_coord self, peer;
    set_coord(&self, 0.001, 0.002, 0.0001, 0.0001, 0.5);
    set_coord(&peer, -0.002, 0.001, 0.0003, -0.00005, 0.25);
    /* Requests after the tick: self 4, n2 5, n4 6. */
    mp_header(&b, 4, NULL);
    mp_coord_body(&b, &self, 1);
    mp_header(&b, 2, NULL);
    mp_event_body(&b, "member-failed", &three[1], 1);
    mp_header(&b, 5, NULL);
    mp_coord_body(&b, &peer, 1);
    mp_header(&b, 6, NULL);
    mp_coord_body(&b, &self, 1);

    struct rec *r1 = calloc(1, sizeof(*r1)), *r2 = calloc(1, sizeof(*r2)),
               *r3 = calloc(1, sizeof(*r3));
    const unsigned char *pa = (const unsigned char *)a.sb.data;
    const unsigned char *pb = (const unsigned char *)b.sb.data;
    replay(pa, a.sb.size, pb, b.sb.size, whole, r1);
    replay(pa, a.sb.size, pb, b.sb.size, one, r2);
    replay(pa, a.sb.size, pb, b.sb.size, odd, r3);
    cr_assert_eq(r1->nm, 5);
    cr_assert_eq(r1->m[3].id, UINT64_MAX);
    cr_assert_eq(r1->nc, 2);
    const char *d = rec_diff(r1, r2);
    cr_assert_null(d, "1-byte chunks differ in %s", d);
    d = rec_diff(r1, r3);
    cr_assert_null(d, "odd chunks differ in %s", d);
    free(r1);
    free(r2);
    free(r3);
    mp_free(&a);
    mp_free(&b);
}

/* Feeds `bytes` to a client that has just handshaken and sent stats,
 * stream, members (seqs 1-3); checks that it is rejected with `err`. */
static void expect_rejected(const void *bytes, size_t n, int err, int malformed)
{
    struct rec *r = calloc(1, sizeof(*r));
    struct netelect_serf *s = up_session(r, NULL);
    size_t nm = r->nm;
    int rc = agent_serf_feed(s, bytes, n, T0);
    cr_assert_eq(rc, err, "feed returned %d, expected %d", rc, err);
    cr_assert_eq(r->nm, nm, "a rejected reply reported members");
    last_conn_is(r, 0, err);
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.connected, 0);
    cr_assert_eq(st.disconnects, 1);
    cr_assert_eq(st.malformed, (uint64_t)malformed);
    agent_serf_free(s);
    free(r);
}

static void expect_mp_rejected(struct mp *m, int err)
{
    expect_rejected(m->sb.data, m->sb.size, err, err == -EBADMSG || err == -EMSGSIZE);
    msgpack_sbuffer_clear(&m->sb);
}

Test(serf, malformed_replies, .timeout = 20)
{
    struct mp m;
    mp_init(&m);

    msgpack_pack_array(&m.pk, 2); /* header not a map */
    msgpack_pack_uint8(&m.pk, 1);
    msgpack_pack_nil(&m.pk);
    expect_mp_rejected(&m, -EBADMSG);

    mp_header(&m, 99, NULL); /* nobody asked */
    expect_mp_rejected(&m, -EBADMSG);

    msgpack_pack_map(&m.pk, 2); /* Seq of the wrong type */
    mp_str(&m, "Error");
    mp_str(&m, "");
    mp_str(&m, "Seq");
    mp_str(&m, "1");
    expect_mp_rejected(&m, -EBADMSG);

    msgpack_pack_map(&m.pk, 1); /* no Seq */
    mp_str(&m, "Error");
    mp_str(&m, "");
    expect_mp_rejected(&m, -EBADMSG);

    mp_header(&m, 1, NULL); /* stats without agent.name */
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "agent");
    msgpack_pack_map(&m.pk, 0);
    expect_mp_rejected(&m, -EBADMSG);

    pack_handshake(&m);
    mp_header(&m, 3, NULL); /* Members is a map */
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "Members");
    msgpack_pack_map(&m.pk, 0);
    expect_mp_rejected(&m, -EBADMSG);

    /* One bad member (Port is a string) after good ones: nothing reported. */
    pack_handshake(&m);
    mp_header(&m, 3, NULL);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "Members");
    msgpack_pack_array(&m.pk, 3);
    mp_member(&m, &three[0]);
    mp_member(&m, &three[1]);
    msgpack_pack_map(&m.pk, 3);
    mp_str(&m, "Name");
    mp_str(&m, "n9");
    mp_str(&m, "Status");
    mp_str(&m, "alive");
    mp_str(&m, "Port");
    mp_str(&m, "1");
    expect_mp_rejected(&m, -EBADMSG);

    pack_handshake(&m); /* Name is an integer */
    mp_header(&m, 3, NULL);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "Members");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "Name");
    msgpack_pack_int(&m.pk, 7);
    mp_str(&m, "Status");
    mp_str(&m, "alive");
    expect_mp_rejected(&m, -EBADMSG);

    pack_handshake(&m); /* Port out of range */
    mp_header(&m, 3, NULL);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "Members");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_map(&m.pk, 3);
    mp_str(&m, "Name");
    mp_str(&m, "n1");
    mp_str(&m, "Status");
    mp_str(&m, "alive");
    mp_str(&m, "Port");
    msgpack_pack_uint32(&m.pk, 70000);
    expect_mp_rejected(&m, -EBADMSG);

    pack_handshake(&m); /* an event on the stream without Event */
    mp_header(&m, 2, NULL);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "Members");
    msgpack_pack_array(&m.pk, 0);
    expect_mp_rejected(&m, -EBADMSG);

    static const unsigned char never_used[] = {0xc1};
    expect_rejected(never_used, 1, -EBADMSG, 1);

    mp_header(&m, 1, "Authentication required"); /* Serf's error, not garbage */
    expect_rejected(m.sb.data, m.sb.size, -EPROTO, 0);
    msgpack_sbuffer_clear(&m.sb);
    mp_free(&m);
}

Test(serf, malformed_coordinate, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf *s = fx_up(NULL);
    struct mp *m = &fx.m;
    pack_setup(m, three, 3);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(agent_serf_tick(s, T0), 0);
    mp_header(m, 4, NULL);
    msgpack_pack_map(&m->pk, 2);
    mp_str(m, "Coord");
    msgpack_pack_map(&m->pk, 4);
    mp_str(m, "Adjustment");
    msgpack_pack_double(&m->pk, 0);
    mp_str(m, "Error");
    msgpack_pack_double(&m->pk, 0);
    mp_str(m, "Height");
    msgpack_pack_double(&m->pk, 0);
    mp_str(m, "Vec");
    msgpack_pack_array(&m->pk, 2);
    msgpack_pack_double(&m->pk, 0);
    mp_str(m, "0.1");
    mp_str(m, "Ok");
    msgpack_pack_true(&m->pk);
    cr_assert_eq(feed_mp(s, m, T0), -EBADMSG);
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.malformed, 1);
    cr_assert_eq(r->nc, 0);
}

Test(serf, oversized_rejected_before_allocation, .timeout = 10)
{
    /* map32 claiming 2^32-1 entries: msgpack-c would allocate ~200 GB. */
    static const unsigned char bigmap[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    expect_rejected(bigmap, sizeof(bigmap), -EMSGSIZE, 1);
    static const unsigned char bigarr[] = {0xdd, 0x00, 0x20, 0x00, 0x00}; /* 2M */
    expect_rejected(bigarr, sizeof(bigarr), -EMSGSIZE, 1);
    static const unsigned char bigstr[] = {0xdb, 0x10, 0x00, 0x00, 0x00}; /* 256 MiB */
    expect_rejected(bigstr, sizeof(bigstr), -EMSGSIZE, 1);
    static const unsigned char bigbin[] = {0xc6, 0x00, 0x01, 0x00, 0x01};
    expect_rejected(bigbin, sizeof(bigbin), -EMSGSIZE, 1);
    /* Nesting deeper than any Serf reply. */
    unsigned char deep[40];
    memset(deep, 0x91, sizeof(deep));
    expect_rejected(deep, sizeof(deep), -EMSGSIZE, 1);
    /* Each array within the limit, but together declaring > 256 MiB of
     * msgpack-c slots (1M x 24 bytes each, nested). */
    unsigned char slots[12 * 5];
    for (int i = 0; i < 12; i++) {
        unsigned char h[5] = {0xdd, 0x00, 0x10, 0x00, 0x00};
        memcpy(slots + 5 * i, h, 5);
    }
    expect_rejected(slots, sizeof(slots), -EMSGSIZE, 1);
    /* A member whose name is longer than any Serf name. */
    struct mp m;
    mp_init(&m);
    char *longname = malloc(70001);
    memset(longname, 'x', 70000);
    longname[70000] = 0;
    struct tmember t = {longname, "1", NULL, "alive", {1, 1, 1, 1}, 1};
    pack_handshake(&m);
    mp_header(&m, 3, NULL);
    mp_members_body(&m, &t, 1);
    expect_mp_rejected(&m, -EMSGSIZE);
    free(longname);
    mp_free(&m);
}

Test(serf, truncated_reply_times_out, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf *s = fx_up(NULL);
    struct mp *m = &fx.m;
    mp_header(m, 1, NULL);
    mp_stats_body(m, "n1");
    cr_assert_eq(agent_serf_feed(s, m->sb.data, m->sb.size - 3, T0), 0);
    cr_assert_eq(agent_serf_tick(s, T0 + 5 * S), 0);
    cr_assert_eq(agent_serf_next_deadline(s), T0 + NETELECT_SERF_REQUEST_TIMEOUT_NS);
    cr_assert_eq(agent_serf_tick(s, T0 + NETELECT_SERF_REQUEST_TIMEOUT_NS), -ETIMEDOUT);
    last_conn_is(r, 0, -ETIMEDOUT);
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.timeouts, 1);
    cr_assert_eq(st.malformed, 0);
}

Test(serf, resnapshot_reaps_vanished, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf *s = fx_up(NULL);
    struct mp *m = &fx.m;
    pack_setup(m, three, 3);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    static const unsigned char junk[] = {0xc1};
    cr_assert_eq(agent_serf_feed(s, junk, 1, T0), -EBADMSG);
    cr_assert_eq(agent_serf_member_count(s), 3, "members kept while disconnected");
    /* Reconnected: Serf has forgotten n3 meanwhile. */
    cr_assert_eq(agent_serf_test_connected(s, T0 + S), 0);
    agent_serf_take_output(s, NULL, SIZE_MAX);
    r->nm = 0;
    mp_header(m, 0, NULL);
    pack_setup(m, three, 2);
    cr_assert_eq(feed_mp(s, m, T0 + S), 0);
    cr_assert_eq(r->nm, 3);
    cr_assert_eq(r->m[0].ev, NETELECT_SERF_EV_SNAPSHOT);
    cr_assert_eq(r->m[1].ev, NETELECT_SERF_EV_SNAPSHOT);
    cr_assert_eq(r->m[2].ev, NETELECT_SERF_EV_REAP);
    cr_assert_str_eq(r->m[2].name, "n3");
    cr_assert_eq(agent_serf_member_count(s), 2);
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.connects, 2);
    cr_assert_eq(st.members_without_id, 0);
}

Test(serf, parse_id, .timeout = 5)
{
    uint64_t v = 0;
#define OK(str, want)                                                              \
    do {                                                                           \
        cr_assert_eq(agent_serf_parse_id(str, strlen(str), &v), 0, "%s", str); \
        cr_assert_eq(v, (uint64_t)(want), "%s", str);                              \
    } while (0)
#define BAD(str) cr_assert_eq(agent_serf_parse_id(str, strlen(str), &v), -EINVAL, "%s", str)
    OK("0", 0);
    OK("42", 42);
    OK("0x2A", 42);
    OK("0X2a", 42);
    OK("007", 7);
    OK("18446744073709551615", UINT64_MAX);
    OK("0xffffffffffffffff", UINT64_MAX);
    BAD("");
    BAD("18446744073709551616");
    BAD("0x10000000000000000");
    BAD("-1");
    BAD("+1");
    BAD(" 1");
    BAD("1 ");
    BAD("0x");
    BAD("12x");
    BAD("0xg");
    BAD("1e3");
#undef OK
#undef BAD
}

Test(serf, config_validation, .timeout = 5)
{
    struct netelect_serf *s = NULL;
    const char *bad[] = {"nonsense", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                         "127.0.0.1:x", ":7373", "::1:7373", "[::1:7373", "host.example:7373",
                         "127.0.0.1:123456"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct netelect_serf_config c = {.rpc_addr = bad[i]};
        cr_assert_eq(agent_serf_new(&c, NULL, NULL, &s), -EINVAL, "%s", bad[i]);
        cr_assert_null(s);
    }
    const char *good[] = {"127.0.0.1:7373", "[::1]:7373", "localhost:1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct netelect_serf_config c = {.rpc_addr = good[i]};
        cr_assert_eq(agent_serf_new(&c, NULL, NULL, &s), 0, "%s", good[i]);
        cr_assert_eq(agent_serf_fd(s), -1, "no connection before the first tick");
        agent_serf_free(s);
    }
    struct netelect_serf_config c = {.backoff_min_ns = 2 * S, .backoff_max_ns = S};
    cr_assert_eq(agent_serf_new(&c, NULL, NULL, &s), -EINVAL);
    struct netelect_serf_config e = {.id_tag = ""};
    cr_assert_eq(agent_serf_new(&e, NULL, NULL, &s), -EINVAL);
    cr_assert_eq(agent_serf_new(NULL, NULL, NULL, NULL), -EINVAL);
    /* NULL config and callbacks mean defaults and no reports. */
    cr_assert_eq(agent_serf_new(NULL, NULL, NULL, &s), 0);
    cr_assert_eq(agent_serf_test_connected(s, T0), 0);
    static const unsigned char hs[] = {0x82, 0xa5, 'E', 'r', 'r', 'o', 'r', 0xa0,
                                       0xa3, 'S', 'e', 'q', 0x00};
    cr_assert_eq(agent_serf_feed(s, hs, sizeof(hs), T0), 0);
    agent_serf_free(s);
    agent_serf_free(NULL);
}

/* ---- the socket path, against a fake Serf in this process ---- */

static uint64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

static int listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fd, 4), 0);
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Runs the client's loop for up to `ms`, also polling `extra` (if >= 0);
 * returns when `extra` is readable or `done` holds. */
static int drive(struct netelect_serf *s, int extra, int ms, const struct rec *r, size_t nconn)
{
    uint64_t end = mono() + (uint64_t)ms * 1000000ull;
    while (mono() < end) {
        if (r && r->nconn >= nconn)
            return 1;
        struct pollfd p[2] = {{.fd = agent_serf_fd(s), .events = 0}, {.fd = extra,
                                                                         .events = POLLIN}};
        uint32_t ev = agent_serf_events(s);
        p[0].events = (short)((ev & EPOLLIN ? POLLIN : 0) | (ev & EPOLLOUT ? POLLOUT : 0));
        uint64_t now = mono(), dl = agent_serf_next_deadline(s);
        int to = dl <= now ? 0 : (int)((dl - now) / 1000000 + 1);
        if (to > 20)
            to = 20;
        poll(p, 2, to);
        now = mono();
        if (p[0].revents) {
            uint32_t re = (p[0].revents & POLLIN ? EPOLLIN : 0) |
                          (p[0].revents & POLLOUT ? EPOLLOUT : 0) |
                          (p[0].revents & POLLERR ? EPOLLERR : 0) |
                          (p[0].revents & POLLHUP ? EPOLLHUP : 0);
            agent_serf_handle(s, re, now);
        }
        agent_serf_tick(s, mono());
        if (extra >= 0 && (p[1].revents & POLLIN))
            return 1;
    }
    return r && r->nconn >= nconn;
}

Test(serf, backoff_when_serf_is_down, .timeout = 20, .init = fx_init, .fini = fx_fini)
{
    uint16_t port;
    int l = listener(&port);
    close(l); /* nothing listens there now */
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    struct rec *r = fx.r;
    struct netelect_serf_config cfg = {
        .rpc_addr = addr, .backoff_min_ns = 50000000ull, .backoff_max_ns = 200000000ull};
    struct netelect_serf *s = fx_client(&cfg);
    uint64_t prev = 0, gaps[6];
    int ngaps = 0;
    uint64_t end = mono() + 3 * S;
    while (ngaps < 6 && mono() < end) {
        uint64_t before = agent_serf_next_deadline(s);
        drive(s, -1, 5, NULL, 0);
        uint64_t after = agent_serf_next_deadline(s);
        if (agent_serf_fd(s) < 0 && after != before && after != UINT64_MAX) {
            if (prev)
                gaps[ngaps++] = after - prev;
            prev = after;
        }
    }
    cr_assert_eq(ngaps, 6, "only %d reconnect attempts", ngaps);
    /* The waits double from 50 ms and stop at the maximum: the gaps between
     * the scheduled attempts after the first are 100, 200, 200, ... ms. */
    for (int i = 0; i < ngaps; i++) {
        uint64_t want = i == 0 ? 100000000ull : 200000000ull;
        cr_assert(gaps[i] >= want && gaps[i] < want + 90000000ull,
                  "gap %d: %" PRIu64 " ns, want ~%" PRIu64, i, gaps[i], want);
    }
    cr_assert_eq(r->nconn, 1, "one report per outage, not per attempt");
    last_conn_is(r, 0, -ECONNREFUSED);
}

Test(serf, socket_connect_lose_reconnect, .timeout = 20)
{
    uint16_t port;
    int l = listener(&port);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    struct rec *r = calloc(1, sizeof(*r));
    struct netelect_serf_config cfg = {.rpc_addr = addr, .backoff_min_ns = 50000000ull};
    struct netelect_serf *s = client(r, &cfg);
    static const unsigned char hs_ok[] = {0x82, 0xa5, 'E', 'r', 'r', 'o', 'r', 0xa0,
                                          0xa3, 'S', 'e', 'q', 0x00};
    for (int round = 0; round < 2; round++) {
        cr_assert(drive(s, l, 3000, NULL, 0), "no connection attempt");
        int c = accept(l, NULL, NULL);
        cr_assert_geq(c, 0);
        /* Read the handshake request, answer it. */
        unsigned char buf[256];
        size_t got = 0;
        uint64_t end = mono() + 2 * S;
        while (got < 30 && mono() < end) {
            drive(s, c, 50, NULL, 0);
            ssize_t n = recv(c, buf + got, sizeof(buf) - got, MSG_DONTWAIT);
            if (n > 0)
                got += (size_t)n;
        }
        cr_assert_geq(got, 30, "handshake request not received");
        cr_assert(memmem(buf, got, "handshake", 9) != NULL);
        cr_assert_eq(send(c, hs_ok, sizeof(hs_ok), 0), (ssize_t)sizeof(hs_ok));
        cr_assert(drive(s, -1, 2000, r, (size_t)(2 * round + 1)), "not up");
        last_conn_is(r, 1, 0);
        close(c); /* Serf goes away */
        cr_assert(drive(s, -1, 2000, r, (size_t)(2 * round + 2)), "loss not seen");
        last_conn_is(r, 0, -ECONNRESET);
    }
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.connects, 2);
    cr_assert_eq(st.disconnects, 2);
    agent_serf_free(s);
    close(l);
    free(r);
}

/* ---- real replies captured from Debian's serf 0.9.4 (see mkcorpus.py) ---- */

static void *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", SERF_TEST_CORPUS, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static unsigned char buf[65536];
    *len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return buf;
}

Test(serf, real_serf_replies, .timeout = 10)
{
    const char *seeds[] = {"session-whole", "session-bytes", "session-7"};
    for (size_t k = 0; k < 3; k++) {
        struct rec *r = calloc(1, sizeof(*r));
        struct netelect_serf *s = client(r, NULL);
        size_t len;
        const uint8_t *d = slurp(seeds[k], &len);
        int rc = replay_seed(s, d, len);
        cr_assert_eq(rc, 0, "%s: %d", seeds[k], rc);
        struct netelect_serf_stats st;
        agent_serf_stats(s, &st);
        cr_assert_eq(st.malformed, 0);
        cr_assert_eq(st.connected, 1);
        cr_assert_str_eq(agent_serf_self_name(s), "n1");
        cr_assert_geq(r->nm, 3);
        for (int i = 0; i < 3; i++) {
            char want[16];
            snprintf(want, sizeof(want), "n%d", i + 1);
            cr_assert_eq(r->m[i].ev, NETELECT_SERF_EV_SNAPSHOT);
            cr_assert_str_eq(r->m[i].name, want);
            cr_assert_eq(r->m[i].has_id, 1);
            cr_assert_eq(r->m[i].id, (uint64_t)i + 1);
            /* n3's tag had been changed to ch3 before this capture. */
            cr_assert_str_eq(r->m[i].channels, i == 2 ? "ch3" : "ch1,ch2");
            cr_assert_str_eq(r->m[i].addr, "127.0.0.1");
            cr_assert_eq(r->m[i].port, 17946 + i);
            cr_assert_eq(r->m[i].status, NETELECT_SERF_ALIVE);
        }
        if (k < 2) { /* these two carry the captured events */
            cr_assert_eq(r->nm, 5);
            cr_assert_eq(r->m[3].ev, NETELECT_SERF_EV_LEAVE);
            cr_assert_str_eq(r->m[3].name, "n2");
            cr_assert_eq(r->m[3].status, NETELECT_SERF_LEFT);
            cr_assert_eq(r->m[4].ev, NETELECT_SERF_EV_UPDATE);
            cr_assert_str_eq(r->m[4].channels, "ch3");
        }
        /* Estimates n1->n2 and n1->n3 from the captured coordinates: sub-ms
         * on loopback, as `serf rtt` printed during the capture. */
        cr_assert_eq(r->nc, 2, "%s: %zu estimates", seeds[k], r->nc);
        cr_assert_eq(r->c[0].id, 2);
        cr_assert_eq(r->c[1].id, 3);
        for (int i = 0; i < 2; i++)
            cr_assert(r->c[i].rtt > 10000 && r->c[i].rtt < 10000000, "%" PRIu64, r->c[i].rtt);
        agent_serf_free(s);
        free(r);
    }
}

Test(serf, coordinate_polls_are_windowed, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    enum { N = 200 };
    struct rec *r = fx.r;
    const struct netelect_serf_config cfg = {.status_poll_ns = NETELECT_SERF_STATUS_POLL_OFF};
    struct netelect_serf *s = fx_up(&cfg);
    static struct tmember many[N];
    static char names[N][16], ids[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "n%d", i + 1);
        snprintf(ids[i], sizeof(ids[i]), "%d", 1000 + i);
        many[i] = (struct tmember){names[i], ids[i], "ch", "alive", {10, 0, 0, 1}, 7946};
    }
    struct mp *m = &fx.m;
    pack_setup(m, many, N); /* self is "n1", the first */
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(agent_serf_member_count(s), N);
    cr_assert_eq(agent_serf_tick(s, T0), 0);

    static struct treq q[256];
    struct netelect_serf_coord c;
    set_coord(&c, 0.001, 0, 0.0001, 0, 0.1);
    int total = 0, rounds = 0, k;
    /* At most 64 in flight: answer each batch, which releases the next. */
    while ((k = take_requests(s, q, 256)) > 0) {
        cr_assert_leq(k, 64, "round %d: %d requests in flight", rounds, k);
        for (int i = 0; i < k; i++) {
            cr_assert_str_eq(q[i].cmd, "get-coordinate");
            mp_header(m, q[i].seq, NULL);
            mp_coord_body(m, &c, 1);
        }
        cr_assert_eq(feed_mp(s, m, T0), 0);
        total += k;
        rounds++;
    }
    /* Self once, then the other 199 members, each once. */
    cr_assert_eq(total, N);
    cr_assert_geq(rounds, 4);
    cr_assert_eq(r->nc, N - 1);
    /* The cycle is over: nothing until the next period. */
    cr_assert_eq(agent_serf_next_deadline(s), T0 + 2 * S);
}

Test(serf, backoff_resets_only_after_a_snapshot, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct netelect_serf *s = fx_up(NULL);
    static const unsigned char junk[] = {0xc1};
    const uint64_t ms = 1000000ull;
    /* Handshake accepted, then garbage, three times: 100, 200, 400 ms. */
    for (int i = 0; i < 3; i++) {
        uint64_t now = T0 + (uint64_t)i * S;
        if (i > 0) {
            cr_assert_eq(agent_serf_test_connected(s, now), 0);
            cr_assert_eq(agent_serf_feed(s, replay_handshake_ok,
                                             sizeof(replay_handshake_ok), now), 0);
        }
        cr_assert_eq(agent_serf_feed(s, junk, 1, now), -EBADMSG);
        cr_assert_eq(agent_serf_next_deadline(s), now + (100ull << i) * ms, "attempt %d", i);
    }
    /* A session that completes its snapshot resets it. */
    uint64_t now = T0 + 10 * S;
    cr_assert_eq(agent_serf_test_connected(s, now), 0);
    struct mp *m = &fx.m;
    mp_header(m, 0, NULL);
    pack_setup(m, three, 3);
    cr_assert_eq(feed_mp(s, m, now), 0);
    cr_assert_eq(agent_serf_feed(s, junk, 1, now), -EBADMSG);
    cr_assert_eq(agent_serf_next_deadline(s), now + 100 * ms);
}

/* Answers every get-coordinate in q with "no coordinate"; @return how many
 * requests were something else (their index in *other). */
static int answer_coords(struct mp *m, const struct treq *q, int k, int *other)
{
    int n = 0;
    for (int i = 0; i < k; i++) {
        if (strcmp(q[i].cmd, "get-coordinate") != 0) {
            *other = i;
            n++;
            continue;
        }
        mp_header(m, q[i].seq, NULL);
        mp_coord_body(m, NULL, 0);
    }
    return n;
}

/* Sends the next status poll at `now`; checks the request; @return its seq. */
static uint64_t status_poll(struct netelect_serf *s, uint64_t now)
{
    struct treq q[8];
    cr_assert_leq(agent_serf_next_deadline(s), now, "the poll is due by %" PRIu64, now);
    cr_assert_eq(agent_serf_tick(s, now), 0);
    cr_assert_eq(take_requests(s, q, 8), 1);
    cr_assert_str_eq(q[0].cmd, "members-filtered");
    cr_assert_str_eq(q[0].arg_key, "Status");
    /* grouped: Serf anchors "^...$" around it, and an ungrouped alternation
     * would escape the anchors */
    cr_assert_str_eq(q[0].arg, "(failed|left|leaving)");
    cr_assert_eq(q[0].nkeys, 3);
    cr_assert_eq(q[0].filter_any, 2, "empty Tags and Name");
    return q[0].seq;
}

Test(serf, status_poll_reports_changes_once, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    const uint64_t P = 50 * 1000000ull;
    struct rec *r = fx.r;
    struct netelect_serf *s = fx_up(NULL); /* the default period: 50 ms */
    struct mp *m = &fx.m;
    struct treq q[8];
    int other = -1;

    /* No poll before this session's snapshot: until then there is nothing
     * to compare a reply with. */
    mp_header(m, 1, NULL);
    mp_stats_body(m, "n1");
    mp_header(m, 2, NULL);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(agent_serf_tick(s, T0 + S), 0);
    int k = take_requests(s, q, 8);
    mp_header(m, 3, NULL); /* the snapshot, then the coordinates asked after it */
    mp_members_body(m, three, 3);
    cr_assert_eq(answer_coords(m, q, k, &other), 0, "only get-coordinate before the snapshot");
    cr_assert_eq(feed_mp(s, m, T0 + S), 0);
    cr_assert_eq(r->nm, 3);
    r->nm = 0;
    k = take_requests(s, q, 8); /* the rest of the coordinate cycle */
    cr_assert_eq(answer_coords(m, q, k, &other), 0);
    cr_assert_eq(feed_mp(s, m, T0 + S), 0);

    /* Due one period after the snapshot; one in flight at a time. */
    uint64_t t = T0 + S;
    cr_assert_eq(agent_serf_tick(s, t + P - 1), 0);
    cr_assert_eq(take_requests(s, q, 8), 0);
    uint64_t seq = status_poll(s, t + P);
    cr_assert_eq(agent_serf_tick(s, t + 3 * P), 0);
    cr_assert_eq(take_requests(s, q, 8), 0, "a second poll while one is in flight");
    cr_assert_gt(agent_serf_next_deadline(s), t + 3 * P);

    /* Serf has n2 failed (its stream event is still being coalesced). */
    struct tmember n2f = {"n2", "0x2A", "ch1", "failed", {127, 0, 0, 2}, 7947};
    mp_header(m, seq, NULL);
    mp_members_body(m, &n2f, 1);
    cr_assert_eq(feed_mp(s, m, t + 3 * P), 0);
    cr_assert_eq(r->nm, 1);
    cr_assert_eq(r->m[0].ev, NETELECT_SERF_EV_FAILED);
    cr_assert_str_eq(r->m[0].name, "n2");
    cr_assert_eq(r->m[0].id, 42);
    cr_assert_eq(r->m[0].status, NETELECT_SERF_FAILED);
    cr_assert_str_eq(r->m[0].channels, "ch1");

    /* The same reply again: nothing.  An alive member in a reply (not what
     * was asked for) is left to the stream. */
    t += 3 * P;
    struct tmember again[] = {n2f, three[2]};
    seq = status_poll(s, t + P);
    mp_header(m, seq, NULL);
    mp_members_body(m, again, 2);
    cr_assert_eq(feed_mp(s, m, t + P), 0);
    cr_assert_eq(r->nm, 1, "an unchanged status was reported again");

    /* The stream's own member-failed, a second later, is the usual event;
     * a further poll still reports nothing new. */
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-failed", &n2f, 1);
    cr_assert_eq(feed_mp(s, m, t + 20 * P), 0);
    cr_assert_eq(r->nm, 2);
    cr_assert_eq(r->m[1].ev, NETELECT_SERF_EV_FAILED);
    t += 20 * P;
    seq = status_poll(s, t + P);
    mp_header(m, seq, NULL);
    mp_members_body(m, &n2f, 1);
    cr_assert_eq(feed_mp(s, m, t + P), 0);
    cr_assert_eq(r->nm, 2);

    /* leaving, then left: each a change, both EV_LEAVE with Serf's status;
     * a member the snapshot did not have is reported (and then tracked). */
    t += P;
    struct tmember n3l = {"n3", NULL, "ch2", "leaving", {10, 1, 2, 3}, 7948};
    struct tmember n9 = {"n9", "9", "ch9", "failed", {10, 0, 0, 9}, 7946};
    struct tmember b1[] = {n2f, n3l, n9};
    seq = status_poll(s, t + P);
    mp_header(m, seq, NULL);
    mp_members_body(m, b1, 3);
    cr_assert_eq(feed_mp(s, m, t + P), 0);
    cr_assert_eq(r->nm, 4);
    cr_assert_eq(r->m[2].ev, NETELECT_SERF_EV_LEAVE);
    cr_assert_eq(r->m[2].status, NETELECT_SERF_LEAVING);
    cr_assert_eq(r->m[3].ev, NETELECT_SERF_EV_FAILED);
    cr_assert_str_eq(r->m[3].name, "n9");
    cr_assert_eq(agent_serf_member_count(s), 4);
    t += P;
    n3l.status = "left";
    struct tmember b2[] = {n2f, n3l, n9};
    seq = status_poll(s, t + P);
    mp_header(m, seq, NULL);
    mp_members_body(m, b2, 3);
    cr_assert_eq(feed_mp(s, m, t + P), 0);
    cr_assert_eq(r->nm, 5);
    cr_assert_eq(r->m[4].ev, NETELECT_SERF_EV_LEAVE);
    cr_assert_eq(r->m[4].status, NETELECT_SERF_LEFT);

    /* n2 comes back: absent from the poll (not taken as alive), then the
     * stream's member-join reports it; a later failure is a change again. */
    t += P;
    struct tmember b3[] = {n3l, n9};
    seq = status_poll(s, t + P);
    mp_header(m, seq, NULL);
    mp_members_body(m, b3, 2);
    cr_assert_eq(feed_mp(s, m, t + P), 0);
    cr_assert_eq(r->nm, 5);
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-join", &three[1], 1);
    cr_assert_eq(feed_mp(s, m, t + P), 0);
    cr_assert_eq(r->nm, 6);
    cr_assert_eq(r->m[5].status, NETELECT_SERF_ALIVE);
    t += P;
    struct tmember b4[] = {n2f, n3l, n9};
    seq = status_poll(s, t + P);
    mp_header(m, seq, NULL);
    mp_members_body(m, b4, 3);
    cr_assert_eq(feed_mp(s, m, t + P), 0);
    cr_assert_eq(r->nm, 7);
    cr_assert_eq(r->m[6].ev, NETELECT_SERF_EV_FAILED);

    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.status_polls, 7);
    cr_assert_eq(st.status_changes, 5);
    cr_assert_eq(st.malformed, 0);
    cr_assert_eq(st.connected, 1);
}

/* Brings a default client to its first status poll; @return the poll's seq. */
static uint64_t up_to_status_poll(struct rec *r, struct netelect_serf **out)
{
    struct netelect_serf *s = up_session(r, NULL);
    struct mp m;
    mp_init(&m);
    pack_setup(&m, three, 3);
    cr_assert_eq(feed_mp(s, &m, T0), 0);
    /* The first coordinate cycle is due at once: answer it. */
    cr_assert_eq(agent_serf_tick(s, T0), 0);
    struct treq q[8];
    int other = -1;
    int k = take_requests(s, q, 8);
    cr_assert_eq(answer_coords(&m, q, k, &other), 0);
    cr_assert_eq(feed_mp(s, &m, T0), 0);
    mp_free(&m);
    *out = s;
    return status_poll(s, T0 + 50 * 1000000ull);
}

Test(serf, status_poll_malformed_or_refused, .timeout = 10)
{
    struct tmember bad = {"n2", "0x2A", "ch1", "failed", {127, 0, 0, 2}, 7947};
    for (int c = 0; c < 5; c++) {
        struct rec *r = calloc(1, sizeof(*r));
        struct netelect_serf *s;
        uint64_t seq = up_to_status_poll(r, &s);
        size_t nm = r->nm;
        struct mp m;
        mp_init(&m);
        int want = -EBADMSG;
        mp_header(&m, seq, c == 4 ? "Invalid status filter" : NULL);
        switch (c) {
        case 0: /* Members is not an array */
            msgpack_pack_map(&m.pk, 1);
            mp_str(&m, "Members");
            mp_str(&m, "failed");
            break;
        case 1: { /* the second member has an empty Name: the first is not reported either */
            struct tmember two[] = {bad, bad};
            two[1].name = "";
            mp_members_body(&m, two, 2);
            break;
        }
        case 2: /* not a map */
            msgpack_pack_array(&m.pk, 0);
            break;
        case 3: /* no Members at all */
            msgpack_pack_map(&m.pk, 0);
            break;
        case 4: /* Serf refused it: bare header */
            want = -EPROTO;
            break;
        }
        int rc = feed_mp(s, &m, T0 + S);
        cr_assert_eq(rc, want, "case %d: %d", c, rc);
        cr_assert_eq(r->nm, nm, "case %d: a rejected poll reply reported members", c);
        last_conn_is(r, 0, want);
        struct netelect_serf_stats st;
        agent_serf_stats(s, &st);
        cr_assert_eq(st.malformed, want == -EBADMSG ? 1u : 0u, "case %d", c);
        cr_assert_eq(st.rpc_errors, want == -EPROTO ? 1u : 0u, "case %d", c);
        cr_assert_eq(st.disconnects, 1);
        cr_assert_eq(st.status_polls, 1);
        /* The reconnected session polls again only after its own snapshot. */
        cr_assert_eq(agent_serf_test_connected(s, T0 + 2 * S), 0);
        cr_assert_eq(agent_serf_tick(s, T0 + 3 * S), 0);
        struct treq q[8];
        cr_assert_eq(take_requests(s, q, 8), 1);
        cr_assert_str_eq(q[0].cmd, "handshake");
        mp_free(&m);
        agent_serf_free(s);
        free(r);
    }
}

Test(serf, status_poll_off, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    const struct netelect_serf_config cfg = {.coord_period_ns = 3600 * S,
                                             .status_poll_ns = NETELECT_SERF_STATUS_POLL_OFF};
    struct netelect_serf *s = fx_up(&cfg);
    struct mp *m = &fx.m;
    pack_setup(m, three, 3);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(agent_serf_tick(s, T0), 0);
    struct treq q[8];
    int other = -1;
    int k = take_requests(s, q, 8);
    cr_assert_eq(answer_coords(m, q, k, &other), 0);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(agent_serf_next_deadline(s), T0 + 3600 * S, "only the coordinate timer");
    for (uint64_t t = T0; t < T0 + 10 * S; t += S / 10) {
        cr_assert_eq(agent_serf_tick(s, t), 0);
        cr_assert_eq(take_requests(s, q, 8), 0);
    }
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.status_polls, 0);
}

/* ---- trust: who listens, who may carry which node id ---- */

/* A fake Serf in a child process that drops to `uid` before it creates its
 * listening socket, accepts one connection, and sends back to the parent
 * (through `res`) every byte it received.  Returns the child's pid; *port
 * is the port it listens on. */
static pid_t fake_serf_as(uid_t uid, uint16_t *port, int res[2])
{
    int ctl[2];
    cr_assert_eq(pipe(ctl), 0);
    cr_assert_eq(pipe(res), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(ctl[0]);
        close(res[0]);
        if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
            _exit(2);
        uint16_t p = 0;
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0 ||
            getsockname(l, (struct sockaddr *)&a, &al) < 0)
            _exit(3);
        p = ntohs(a.sin_port);
        if (write(ctl[1], &p, sizeof(p)) != sizeof(p))
            _exit(4);
        close(ctl[1]);
        /* Whatever the client sends over 1.5 s, on every connection. */
        unsigned char buf[4096];
        size_t got = 0;
        uint64_t end = mono() + 1500000000ull;
        int c = -1;
        while (mono() < end) {
            struct pollfd pf[2] = {{.fd = l, .events = POLLIN}, {.fd = c, .events = POLLIN}};
            if (poll(pf, 2, 20) <= 0)
                continue;
            if (pf[0].revents & POLLIN) {
                if (c >= 0)
                    close(c);
                c = accept(l, NULL, NULL);
            }
            if (c >= 0 && (pf[1].revents & POLLIN)) {
                ssize_t n = recv(c, buf + got, sizeof(buf) - got, MSG_DONTWAIT);
                if (n > 0)
                    got += (size_t)n;
                if (n > 0 && got >= 13) { /* answer the handshake, as Serf would */
                    static const unsigned char ok[] = {0x82, 0xa5, 'E', 'r', 'r', 'o', 'r', 0xa0,
                                                       0xa3, 'S',  'e', 'q', 0x00};
                    if (memmem(buf, got, "handshake", 9))
                        (void)!send(c, ok, sizeof(ok), MSG_NOSIGNAL);
                }
                if (n == 0) {
                    close(c);
                    c = -1;
                }
            }
        }
        (void)!write(res[1], buf, got);
        _exit(0);
    }
    close(ctl[1]);
    close(res[1]);
    cr_assert_eq(read(ctl[0], port, sizeof(*port)), (ssize_t)sizeof(*port), "fake serf did not start");
    close(ctl[0]);
    return pid;
}

static size_t fake_serf_result(pid_t pid, int res[2], unsigned char *buf, size_t cap)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fake serf failed: %d", st);
    size_t got = 0;
    ssize_t n;
    while (got < cap && (n = read(res[0], buf + got, cap - got)) > 0)
        got += (size_t)n;
    close(res[0]);
    return got;
}

#define NOBODY 65534
#define KEY "k3y-0f-the-real-serf"

Test(serf, listener_of_another_uid_gets_nothing, .timeout = 20, .init = fx_init, .fini = fx_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to run the fake Serf as uid %d", NOBODY);
    uint16_t port;
    int res[2];
    pid_t pid = fake_serf_as(NOBODY, &port, res);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    struct rec *r = fx.r;
    struct netelect_serf_config cfg = {.rpc_addr = addr, .auth_key = KEY,
                                      .backoff_min_ns = 50000000ull};
    struct netelect_serf *s = fx_client(&cfg);
    drive(s, -1, 1000, r, 1);
    unsigned char buf[4096];
    size_t got = fake_serf_result(pid, res, buf, sizeof(buf));
    cr_assert_null(memmem(buf, got, KEY, strlen(KEY)), "the auth key reached uid %d", NOBODY);
    cr_assert_eq(got, 0, "the untrusted listener got %zu bytes", got);
    last_conn_is(r, 0, -EPERM);
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_geq(st.listener_refused, 1);
    cr_assert_eq(st.listener_uid, NOBODY);
    cr_assert_eq(st.connects, 0);
}

Test(serf, listener_of_the_configured_uid_gets_the_key, .timeout = 20, .init = fx_init, .fini = fx_fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to run the fake Serf as uid %d", NOBODY);
    uint16_t port;
    int res[2];
    pid_t pid = fake_serf_as(NOBODY, &port, res);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    static const uint32_t serf_uid[] = {NOBODY};
    struct netelect_serf_config cfg = {.rpc_addr = addr, .auth_key = KEY,
                                      .rpc_uids = serf_uid, .n_rpc_uids = 1};
    struct netelect_serf *s = fx_client(&cfg);
    drive(s, -1, 1000, NULL, 0);
    unsigned char buf[4096];
    size_t got = fake_serf_result(pid, res, buf, sizeof(buf));
    cr_assert_not_null(memmem(buf, got, "handshake", 9), "no handshake (%zu bytes)", got);
    cr_assert_not_null(memmem(buf, got, KEY, strlen(KEY)), "no auth key (%zu bytes)", got);
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.listener_refused, 0);
    cr_assert_eq(st.listener_uid, NOBODY);
}

/* The rec's last report for member `name`, or NULL. */
static const struct rec_member *last_of(const struct rec *r, const char *name)
{
    for (size_t i = r->nm; i-- > 0;)
        if (!strcmp(r->m[i].name, name))
            return &r->m[i];
    return NULL;
}

Test(serf, only_this_hosts_member_carries_its_id, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf_config cfg = {.self_id = 0x10};
    struct netelect_serf *s = fx_up(&cfg);
    static const struct tmember t[] = {
        {"evil", "0x10", "other", "alive", {10, 0, 0, 6}, 7946}, /* before ours, on purpose */
        {"n1", "0x10", "mine", "alive", {127, 0, 0, 1}, 7946},   /* stats names n1 */
        {"n2", "0x20", "mine", "alive", {127, 0, 0, 2}, 7946},
    };
    struct mp *m = &fx.m;
    pack_setup(m, t, 3);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(r->nm, 3);
    cr_assert_str_eq(r->m[0].name, "evil");
    cr_assert_eq(r->m[0].has_id, 0, "a member claiming this host's id was reported with it");
    cr_assert_eq(r->m[1].has_id, 1);
    cr_assert_eq(r->m[1].id, 0x10);
    cr_assert_eq(r->m[2].has_id, 1);
    cr_assert_eq(r->nrej, 1);
    cr_assert_eq(r->rej[0].why, NETELECT_SERF_REJECT_SELF_ID);
    cr_assert_str_eq(r->rej[0].name, "evil");
    cr_assert_eq(r->rej[0].id, 0x10);
    /* Later events change nothing, and are not refused again. */
    struct tmember evil2 = {"evil", "0x10", "other,more", "alive", {10, 0, 0, 6}, 7946};
    struct tmember late = {"late", "16", "x", "alive", {10, 0, 0, 7}, 7946};
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-update", &evil2, 1);
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-join", &late, 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(last_of(r, "evil")->has_id, 0);
    cr_assert_eq(last_of(r, "late")->has_id, 0);
    cr_assert_eq(r->nrej, 2);
    cr_assert_str_eq(r->rej[1].name, "late");
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.ids_refused, 2);
    cr_assert_eq(st.refusals, 2);
    /* No coordinate is asked for a member that does not hold its id. */
    uint64_t now = T0 + 3 * S;
    cr_assert_eq(agent_serf_tick(s, now), 0);
    struct treq q[16];
    int k = take_requests(s, q, 16);
    for (int i = 0; i < k; i++)
        if (!strcmp(q[i].cmd, "get-coordinate"))
            cr_assert(strcmp(q[i].arg, "evil") && strcmp(q[i].arg, "late"),
                      "coordinate polled for %s", q[i].arg);
}

Test(serf, duplicate_id_refused_until_its_holder_goes, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf *s = fx_up(NULL);
    static const struct tmember t[] = {
        {"n1", "1", "a", "alive", {127, 0, 0, 1}, 7946},
        {"a", "0x55", "a", "alive", {127, 0, 0, 2}, 7946},
        {"b", "85", "b", "alive", {127, 0, 0, 3}, 7946}, /* 85 == 0x55 */
    };
    struct mp *m = &fx.m;
    pack_setup(m, t, 3);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(r->nm, 3);
    cr_assert_eq(r->m[1].has_id, 1);
    cr_assert_eq(r->m[1].id, 0x55);
    cr_assert_eq(r->m[2].has_id, 0, "a second member with the same id was reported with it");
    cr_assert_eq(r->nrej, 1);
    cr_assert_eq(r->rej[0].why, NETELECT_SERF_REJECT_DUP_ID);
    cr_assert_str_eq(r->rej[0].name, "b");
    /* The holder fails: b still waits (a failed host may come back). */
    struct tmember af = {"a", "0x55", "a", "failed", {127, 0, 0, 2}, 7946};
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-failed", &af, 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(last_of(r, "b")->has_id, 0);
    /* The holder is reaped: reported under the id, then b takes it over. */
    size_t before = r->nm;
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-reap", &af, 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(r->nm, before + 2);
    cr_assert_eq(r->m[before].ev, NETELECT_SERF_EV_REAP);
    cr_assert_str_eq(r->m[before].name, "a");
    cr_assert_eq(r->m[before].has_id, 1);
    cr_assert_eq(r->m[before].id, 0x55);
    cr_assert_str_eq(r->m[before + 1].name, "b");
    cr_assert_eq(r->m[before + 1].has_id, 1);
    cr_assert_eq(r->m[before + 1].id, 0x55);
    cr_assert_str_eq(r->m[before + 1].channels, "b");
    /* A holder that changes its tag gives its old id up first. */
    struct tmember b2 = {"b", "0x56", "b", "alive", {127, 0, 0, 3}, 7946};
    before = r->nm;
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-update", &b2, 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(r->nm, before + 2);
    cr_assert_eq(r->m[before].ev, NETELECT_SERF_EV_REAP);
    cr_assert_eq(r->m[before].id, 0x55);
    cr_assert_eq(r->m[before + 1].ev, NETELECT_SERF_EV_UPDATE);
    cr_assert_eq(r->m[before + 1].id, 0x56);
    cr_assert_eq(r->m[before + 1].has_id, 1);
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.ids_refused, 0);
}

Test(serf, a_left_holder_yields_its_id, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf *s = fx_up(NULL);
    static const struct tmember t[] = {
        {"n1", "1", "a", "alive", {127, 0, 0, 1}, 7946},
        {"old", "7", "a", "alive", {127, 0, 0, 2}, 7946},
        {"new", "7", "a", "alive", {127, 0, 0, 3}, 7946},
    };
    struct mp *m = &fx.m;
    pack_setup(m, t, 3);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(last_of(r, "new")->has_id, 0);
    /* `old` leaves for good (tombstoned for a day in Serf): `new` may have it. */
    struct tmember left = {"old", "7", "a", "left", {127, 0, 0, 2}, 7946};
    size_t before = r->nm;
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-leave", &left, 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(r->nm, before + 2);
    cr_assert_str_eq(r->m[before].name, "old");
    cr_assert_eq(r->m[before].has_id, 1, "the leave is reported under the id");
    cr_assert_eq(r->m[before].status, NETELECT_SERF_LEFT);
    cr_assert_str_eq(r->m[before + 1].name, "new");
    cr_assert_eq(r->m[before + 1].has_id, 1);
    cr_assert_eq(r->m[before + 1].id, 7);
}

/* A failed holder keeps its id against members elsewhere, but yields it to
 * one at its own address (its host came back under a new name); a leaving
 * holder yields at once.  agent-serf_fleet met both under load. */
Test(serf, a_failed_holder_yields_only_to_its_own_address, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf *s = fx_up(NULL);
    static const struct tmember t[] = {
        {"n1", "1", "a", "alive", {127, 0, 0, 1}, 7946},
        {"old", "7", "a", "alive", {127, 0, 0, 2}, 7946},
        {"far", "7", "a", "alive", {127, 0, 0, 3}, 7946},
        {"goer", "8", "a", "alive", {127, 0, 0, 4}, 7946},
    };
    struct mp *m = &fx.m;
    pack_setup(m, t, 4);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(last_of(r, "far")->has_id, 0, "a duplicate of a live holder is refused");
    struct tmember failed = {"old", "7", "a", "failed", {127, 0, 0, 2}, 7946};
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-failed", &failed, 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(last_of(r, "far")->has_id, 0, "a failed holder keeps its id against another host");
    struct tmember back = {"old2", "7", "a", "alive", {127, 0, 0, 2}, 7946};
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-join", &back, 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(last_of(r, "old2")->has_id, 1, "the same host, back under a new name, has it");
    cr_assert_eq(last_of(r, "old2")->id, 7);
    /* A graceful leave is reported as leaving first: the id is free then. */
    struct tmember leaving = {"goer", "8", "a", "leaving", {127, 0, 0, 4}, 7946};
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-update", &leaving, 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    struct tmember again = {"goer2", "8", "a", "alive", {127, 0, 0, 5}, 7946};
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-join", &again, 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(last_of(r, "goer2")->has_id, 1, "a leaving holder yields its id");
}

Test(serf, max_ids_caps_the_members_holding_an_id, .timeout = 10, .init = fx_init, .fini = fx_fini)
{
    struct rec *r = fx.r;
    struct netelect_serf_config cfg = {.max_ids = 3};
    struct netelect_serf *s = fx_up(&cfg);
    static const struct tmember t[] = {
        {"n1", "1", "a", "alive", {127, 0, 0, 1}, 7946},
        {"m2", "2", "a", "alive", {127, 0, 0, 2}, 7946},
        {"m3", "3", "a", "alive", {127, 0, 0, 3}, 7946},
        {"m4", "4", "a", "alive", {127, 0, 0, 4}, 7946},
        {"m5", "5", "a", "alive", {127, 0, 0, 5}, 7946},
        {"noid", NULL, "a", "alive", {127, 0, 0, 6}, 7946}, /* does not count */
    };
    struct mp *m = &fx.m;
    pack_setup(m, t, 6);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    size_t with_id = 0;
    for (size_t i = 0; i < r->nm; i++)
        with_id += r->m[i].has_id != 0;
    cr_assert_eq(with_id, 3, "%zu members reported with an id over a cap of 3", with_id);
    cr_assert_eq(r->nrej, 2);
    cr_assert_eq(r->rej[0].why, NETELECT_SERF_REJECT_CAP);
    cr_assert_str_eq(r->rej[0].name, "m4");
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    cr_assert_eq(st.ids_refused, 2);
    /* One holder is reaped: the first one waiting takes its place. */
    size_t before = r->nm;
    mp_header(m, 2, NULL);
    mp_event_body(m, "member-reap", &t[1], 1);
    cr_assert_eq(feed_mp(s, m, T0), 0);
    cr_assert_eq(r->nm, before + 2);
    cr_assert_str_eq(r->m[before + 1].name, "m4");
    cr_assert_eq(r->m[before + 1].has_id, 1);
    cr_assert_eq(r->m[before + 1].id, 4);
    agent_serf_stats(s, &st);
    cr_assert_eq(st.ids_refused, 1);
}
