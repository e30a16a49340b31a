/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "agent/packet.h"

_Static_assert(crypto_auth_hmacsha512256_BYTES == NETELECT_PKT_MAC_LEN, "MAC size");
_Static_assert(crypto_auth_hmacsha512256_KEYBYTES == 32, "key size");

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int fields_ok(const struct netelect_pkt *p)
{
    if (p->type != NETELECT_PKT_PING && p->type != NETELECT_PKT_PONG)
        return 0;
    if (p->flags || !p->sender || !p->receiver || !p->sender_inc || !p->seq)
        return 0;
    if (p->type == NETELECT_PKT_PONG && (!p->ack_seq || !p->receiver_inc))
        return 0;
    return 1;
}

int agent_pkt_encode(const struct netelect_pkt *p, const uint8_t key[32],
                         uint8_t out[NETELECT_PKT_LEN])
{
    if (!p || !key || !out || p->version != NETELECT_PKT_VERSION || !fields_ok(p))
        return -EINVAL;
    out[0] = 'N';
    out[1] = 'E';
    out[2] = 'P';
    out[3] = 'K';
    out[4] = p->version;
    out[5] = p->type;
    out[6] = (uint8_t)(p->flags >> 8);
    out[7] = (uint8_t)p->flags;
    put64(out + 8, p->sender);
    put64(out + 16, p->receiver);
    put64(out + 24, p->sender_inc);
    put64(out + 32, p->receiver_inc);
    put64(out + 40, p->seq);
    put64(out + 48, p->ts);
    put64(out + 56, p->ack_seq);
    put64(out + 64, p->ack_ts);
    crypto_auth_hmacsha512256(out + NETELECT_PKT_HDR_LEN, out, NETELECT_PKT_HDR_LEN, key);
    return 0;
}

int agent_pkt_decode(const uint8_t *buf, size_t len, const uint8_t key[32],
                         struct netelect_pkt *out)
{
    if (!buf || !key || !out)
        return -EINVAL;
    /* A runt too short to carry the magic is truncated, not garbage. */
    if (len < 4)
        return NETELECT_PKT_ETRUNC;
    if (memcmp(buf, "NEPK", 4))
        return NETELECT_PKT_EGARBAGE;
    if (len < 5)
        return NETELECT_PKT_ETRUNC;
    if (buf[4] != NETELECT_PKT_VERSION)
        return NETELECT_PKT_EVERSION;
    if (len < NETELECT_PKT_LEN)
        return NETELECT_PKT_ETRUNC;
    if (len > NETELECT_PKT_LEN)
        return NETELECT_PKT_EOVERSIZE;
    if (crypto_auth_hmacsha512256_verify(buf + NETELECT_PKT_HDR_LEN, buf, NETELECT_PKT_HDR_LEN,
                                         key) != 0)
        return NETELECT_PKT_EAUTH;
    struct netelect_pkt p = {
        .version = buf[4],
        .type = buf[5],
        .flags = (uint16_t)(buf[6] << 8 | buf[7]),
        .sender = get64(buf + 8),
        .receiver = get64(buf + 16),
        .sender_inc = get64(buf + 24),
        .receiver_inc = get64(buf + 32),
        .seq = get64(buf + 40),
        .ts = get64(buf + 48),
        .ack_seq = get64(buf + 56),
        .ack_ts = get64(buf + 64),
    };
    if (!fields_ok(&p))
        return NETELECT_PKT_EINVAL;
    *out = p;
    return 0;
}

const char *agent_pkt_err_name(int err)
{
    switch (err) {
    case 0: return "ok";
    case NETELECT_PKT_EGARBAGE: return "garbage";
    case NETELECT_PKT_EVERSION: return "bad_version";
    case NETELECT_PKT_ETRUNC: return "truncated";
    case NETELECT_PKT_EOVERSIZE: return "oversized";
    case NETELECT_PKT_EAUTH: return "bad_mac";
    case NETELECT_PKT_EINVAL: return "bad_fields";
    case NETELECT_PKT_EREPLAY: return "replayed";
    case NETELECT_PKT_ESTALEINC: return "stale_incarnation";
    default: return "error";
    }
}

int agent_replay_check(struct netelect_replay *r, uint64_t inc, uint64_t seq)
{
    if (!seq)
        return NETELECT_PKT_EREPLAY;
    if (inc < r->inc)
        return NETELECT_PKT_ESTALEINC;
    if (inc > r->inc) {
        r->inc = inc;
        r->top = seq;
        r->bits = 1;
        return 1;
    }
    if (seq > r->top) {
        uint64_t shift = seq - r->top;
        r->bits = shift >= 64 ? 1 : (r->bits << shift) | 1;
        r->top = seq;
        return 0;
    }
    uint64_t back = r->top - seq;
    if (back >= 64)
        return NETELECT_PKT_EREPLAY;
    uint64_t bit = 1ull << back;
    if (r->bits & bit)
        return NETELECT_PKT_EREPLAY;
    r->bits |= bit;
    return 0;
}

int agent_bucket_take(struct netelect_bucket *b, uint64_t now_ns, uint32_t rate,
                          uint32_t burst)
{
    const uint64_t cap = (uint64_t)burst * 1000000u;
    if (!b->last_ns) {
        b->last_ns = now_ns;
        b->tokens_micro = cap;
    } else if (now_ns > b->last_ns) {
        uint64_t dt = now_ns - b->last_ns;
        /* dt (ns) * rate / 1000 = micro-tokens; cap dt first so it cannot overflow */
        if (dt > 1000000000000ull)
            dt = 1000000000000ull;
        uint64_t add = dt * rate / 1000u;
        b->tokens_micro = b->tokens_micro + add > cap ? cap : b->tokens_micro + add;
        b->last_ns = now_ns;
    }
    if (b->tokens_micro < 1000000u)
        return 0;
    b->tokens_micro -= 1000000u;
    return 1;
}
