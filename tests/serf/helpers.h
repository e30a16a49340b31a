/* SPDX-License-Identifier: MIT */
/*
 * Shared by the Serf client's unit tests: a recorder for its callbacks, a
 * decoder for the requests it writes, and builders that craft Serf replies
 * with msgpack-c's own packer (so the bytes are what a correct msgpack
 * encoder emits, not what this client happens to accept).
 */
#ifndef TESTS_SERF_HELPERS_H
#define TESTS_SERF_HELPERS_H

#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/serf/serf.h"
#include "agent/serf/serf_internal.h"

#define REC_MAX 512

struct rec_member {
    enum netelect_serf_event ev;
    char name[64];
    uint64_t id;
    int has_id;
    char channels[128];
    int has_channels;
    enum netelect_serf_status status;
    char addr[46];
    uint16_t port;
};

struct rec {
    struct rec_member m[REC_MAX];
    size_t nm;
    struct { uint64_t id, rtt, err; } c[REC_MAX];
    size_t nc;
    struct { int up, err; } conn[REC_MAX];
    size_t nconn;
    struct { int why; char name[64]; uint64_t id; } rej[REC_MAX];
    size_t nrej;
};

static inline void rec_member_cb(void *ctx, enum netelect_serf_event ev,
                                 const struct netelect_serf_member *m)
{
    struct rec *r = ctx;
    if (r->nm >= REC_MAX)
        return;
    struct rec_member *x = &r->m[r->nm++];
    x->ev = ev;
    snprintf(x->name, sizeof(x->name), "%s", m->name);
    x->id = m->node_id;
    x->has_id = m->has_id;
    x->has_channels = m->channels != NULL;
    snprintf(x->channels, sizeof(x->channels), "%s", m->channels ? m->channels : "");
    x->status = m->status;
    memcpy(x->addr, m->addr, sizeof(x->addr));
    x->port = m->port;
}

static inline void rec_coord_cb(void *ctx, uint64_t id, uint64_t rtt, uint64_t err)
{
    struct rec *r = ctx;
    if (r->nc >= REC_MAX)
        return;
    r->c[r->nc].id = id;
    r->c[r->nc].rtt = rtt;
    r->c[r->nc].err = err;
    r->nc++;
}

static inline void rec_conn_cb(void *ctx, int up, int err)
{
    struct rec *r = ctx;
    if (r->nconn >= REC_MAX)
        return;
    r->conn[r->nconn].up = up;
    r->conn[r->nconn].err = err;
    r->nconn++;
}

static inline void rec_reject_cb(void *ctx, int why, const struct netelect_serf_member *m)
{
    struct rec *r = ctx;
    if (r->nrej >= REC_MAX)
        return;
    r->rej[r->nrej].why = why;
    snprintf(r->rej[r->nrej].name, sizeof(r->rej[r->nrej].name), "%s", m->name);
    r->rej[r->nrej].id = m->node_id;
    r->nrej++;
}

static const struct netelect_serf_callbacks rec_callbacks = {
    .member = rec_member_cb, .coord = rec_coord_cb, .connection = rec_conn_cb,
    .reject = rec_reject_cb,
};

/* ---- crafting replies ---- */

struct mp {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static inline void mp_init(struct mp *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static inline void mp_free(struct mp *m)
{
    msgpack_sbuffer_destroy(&m->sb);
}

static inline void mp_str(struct mp *m, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(&m->pk, n);
    msgpack_pack_str_body(&m->pk, s, n);
}

/* Serf's reply header, keys in go-codec's order. */
static inline void mp_header(struct mp *m, uint64_t seq, const char *err)
{
    msgpack_pack_map(&m->pk, 2);
    mp_str(m, "Error");
    mp_str(m, err ? err : "");
    mp_str(m, "Seq");
    msgpack_pack_uint64(&m->pk, seq);
}

struct tmember {
    const char *name;
    const char *nid;      /* NULL: no id tag */
    const char *channels; /* NULL: no channel tag */
    const char *status;
    unsigned char ip[4];
    uint16_t port;
};

static inline void mp_member(struct mp *m, const struct tmember *t)
{
    msgpack_pack_map(&m->pk, 11);
    mp_str(m, "Addr");
    msgpack_pack_bin(&m->pk, 4);
    msgpack_pack_bin_body(&m->pk, t->ip, 4);
    const char *u8keys[] = {"DelegateCur", "DelegateMax", "DelegateMin"};
    const unsigned u8vals[] = {5, 5, 2};
    for (int i = 0; i < 3; i++) {
        mp_str(m, u8keys[i]);
        msgpack_pack_uint8(&m->pk, (uint8_t)u8vals[i]);
    }
    mp_str(m, "Name");
    mp_str(m, t->name);
    mp_str(m, "Port");
    msgpack_pack_uint16(&m->pk, t->port);
    const char *pkeys[] = {"ProtocolCur", "ProtocolMax", "ProtocolMin"};
    const unsigned pvals[] = {2, 5, 1};
    for (int i = 0; i < 3; i++) {
        mp_str(m, pkeys[i]);
        msgpack_pack_uint8(&m->pk, (uint8_t)pvals[i]);
    }
    mp_str(m, "Status");
    mp_str(m, t->status);
    mp_str(m, "Tags");
    msgpack_pack_map(&m->pk, (t->nid != NULL) + (t->channels != NULL) + 1);
    mp_str(m, "role");
    mp_str(m, "replica");
    if (t->nid) {
        mp_str(m, "nid");
        mp_str(m, t->nid);
    }
    if (t->channels) {
        mp_str(m, "netelect-channels");
        mp_str(m, t->channels);
    }
}

static inline void mp_members_body(struct mp *m, const struct tmember *t, size_t n)
{
    msgpack_pack_map(&m->pk, 1);
    mp_str(m, "Members");
    msgpack_pack_array(&m->pk, n);
    for (size_t i = 0; i < n; i++)
        mp_member(m, &t[i]);
}

static inline void mp_event_body(struct mp *m, const char *event, const struct tmember *t,
                                 size_t n)
{
    msgpack_pack_map(&m->pk, 2);
    mp_str(m, "Event");
    mp_str(m, event);
    mp_str(m, "Members");
    msgpack_pack_array(&m->pk, n);
    for (size_t i = 0; i < n; i++)
        mp_member(m, &t[i]);
}

static inline void mp_stats_body(struct mp *m, const char *name)
{
    msgpack_pack_map(&m->pk, 2);
    mp_str(m, "agent");
    msgpack_pack_map(&m->pk, 1);
    mp_str(m, "name");
    mp_str(m, name);
    mp_str(m, "serf");
    msgpack_pack_map(&m->pk, 1);
    mp_str(m, "members");
    mp_str(m, "3");
}

static inline void mp_coord_body(struct mp *m, const struct netelect_serf_coord *c, int ok)
{
    msgpack_pack_map(&m->pk, 2);
    mp_str(m, "Coord");
    msgpack_pack_map(&m->pk, 4);
    mp_str(m, "Adjustment");
    msgpack_pack_double(&m->pk, ok ? c->adjustment : 0);
    mp_str(m, "Error");
    msgpack_pack_double(&m->pk, ok ? c->error : 0);
    mp_str(m, "Height");
    msgpack_pack_double(&m->pk, ok ? c->height : 0);
    mp_str(m, "Vec");
    if (ok) {
        msgpack_pack_array(&m->pk, c->dim);
        for (unsigned i = 0; i < c->dim; i++)
            msgpack_pack_double(&m->pk, c->vec[i]);
    } else {
        msgpack_pack_nil(&m->pk);
    }
    mp_str(m, "Ok");
    if (ok)
        msgpack_pack_true(&m->pk);
    else
        msgpack_pack_false(&m->pk);
}

/* ---- decoding what the client sent ---- */

struct treq {
    char cmd[32];
    uint64_t seq;
    char arg_key[32]; /* the body's single key, if any */
    char arg[128];
    int64_t version;
    int nkeys;      /* keys in the body */
    int filter_any; /* members-filtered: of Tags and Name, how many are empty */
};

/* Takes the client's output and decodes up to `cap` requests from it.
 * @return the number of requests, or -1 if the output is not valid. */
static inline int take_requests(struct netelect_serf *s, struct treq *out, int cap)
{
    static char buf[1 << 20];
    size_t n = agent_serf_take_output(s, buf, sizeof(buf));
    msgpack_unpacker u;
    msgpack_unpacker_init(&u, n + 16);
    memcpy(msgpack_unpacker_buffer(&u), buf, n);
    msgpack_unpacker_buffer_consumed(&u, n);
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    int k = 0, expect_body = 0;
    while (msgpack_unpacker_next(&u, &res) == MSGPACK_UNPACK_SUCCESS) {
        msgpack_object o = res.data;
        if (o.type != MSGPACK_OBJECT_MAP) {
            k = -1;
            break;
        }
        if (!expect_body) {
            if (k >= cap) {
                k = -1;
                break;
            }
            memset(&out[k], 0, sizeof(out[k]));
            out[k].version = -1;
            for (uint32_t i = 0; i < o.via.map.size; i++) {
                msgpack_object key = o.via.map.ptr[i].key, v = o.via.map.ptr[i].val;
                if (key.via.str.size == 7 && !memcmp(key.via.str.ptr, "Command", 7))
                    snprintf(out[k].cmd, sizeof(out[k].cmd), "%.*s", (int)v.via.str.size,
                             v.via.str.ptr);
                else if (key.via.str.size == 3 && !memcmp(key.via.str.ptr, "Seq", 3))
                    out[k].seq = v.via.u64;
            }
            k++;
            const char *c = out[k - 1].cmd;
            expect_body = strcmp(c, "stats") != 0 && strcmp(c, "members") != 0;
        } else {
            expect_body = 0;
            struct treq *q = &out[k - 1];
            /* members-filtered carries Status, Tags and Name; every other
             * request a single key. */
            int filtered = !strcmp(q->cmd, "members-filtered");
            if (filtered ? o.via.map.size != 3 : o.via.map.size != 1) {
                k = -1;
                break;
            }
            q->nkeys = (int)o.via.map.size;
            for (uint32_t i = 0; i < o.via.map.size; i++) {
                msgpack_object key = o.via.map.ptr[i].key, v = o.via.map.ptr[i].val;
                if (key.type != MSGPACK_OBJECT_STR) {
                    k = -1;
                    break;
                }
                int is_status = key.via.str.size == 6 && !memcmp(key.via.str.ptr, "Status", 6);
                if (filtered && !is_status) {
                    /* "any": an empty name filter and an empty tag map */
                    int any = v.type == MSGPACK_OBJECT_MAP ? v.via.map.size == 0
                              : v.type == MSGPACK_OBJECT_STR && v.via.str.size == 0;
                    q->filter_any += any;
                    continue;
                }
                snprintf(q->arg_key, sizeof(q->arg_key), "%.*s", (int)key.via.str.size,
                         key.via.str.ptr);
                if (v.type == MSGPACK_OBJECT_STR)
                    snprintf(q->arg, sizeof(q->arg), "%.*s", (int)v.via.str.size,
                             v.via.str.ptr);
                else if (v.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                    q->version = (int64_t)v.via.u64;
            }
            if (k < 0)
                break;
        }
    }
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&u);
    return k;
}

#endif /* TESTS_SERF_HELPERS_H */
