/* SPDX-License-Identifier: MIT */
/* Packet codec, replay window and token bucket: every rejection is distinct. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "agent/packet.h"

static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static struct netelect_pkt ping(void)
{
    return (struct netelect_pkt){.version = 1, .type = NETELECT_PKT_PING, .sender = 0x11,
                                 .receiver = 0x22, .sender_inc = 1000, .seq = 7, .ts = 123456789};
}

Test(packet, roundtrip, .timeout = 10)
{
    uint8_t buf[NETELECT_PKT_LEN];
    struct netelect_pkt p = ping(), q;
    cr_assert_eq(agent_pkt_encode(&p, key, buf), 0);
    cr_assert_eq(memcmp(buf, "NEPK", 4), 0);
    cr_assert_eq(agent_pkt_decode(buf, sizeof buf, key, &q), 0);
    cr_assert_eq(q.sender, 0x11);
    cr_assert_eq(q.receiver, 0x22);
    cr_assert_eq(q.seq, 7);
    cr_assert_eq(q.ts, 123456789);
    struct netelect_pkt pong = {.version = 1, .type = NETELECT_PKT_PONG, .sender = 0x22,
                                .receiver = 0x11, .sender_inc = 5, .receiver_inc = 1000, .seq = 1,
                                .ts = 1, .ack_seq = 7, .ack_ts = 123456789};
    cr_assert_eq(agent_pkt_encode(&pong, key, buf), 0);
    cr_assert_eq(agent_pkt_decode(buf, sizeof buf, key, &q), 0);
    cr_assert_eq(q.ack_seq, 7);
    cr_assert_eq(q.ack_ts, 123456789);
    cr_assert_eq(q.receiver_inc, 1000);
}

Test(packet, rejections_are_distinct, .timeout = 10)
{
    uint8_t buf[NETELECT_PKT_LEN + 64], tmp[sizeof buf];
    struct netelect_pkt p = ping(), q;
    cr_assert_eq(agent_pkt_encode(&p, key, buf), 0);

    memset(tmp, 0xa5, sizeof tmp);
    cr_assert_eq(agent_pkt_decode(tmp, NETELECT_PKT_LEN, key, &q), NETELECT_PKT_EGARBAGE);
    cr_assert_eq(agent_pkt_decode(buf, 0, key, &q), NETELECT_PKT_ETRUNC);
    cr_assert_eq(agent_pkt_decode(buf, 3, key, &q), NETELECT_PKT_ETRUNC);
    for (size_t l = 5; l < NETELECT_PKT_LEN; l++)
        cr_assert_eq(agent_pkt_decode(buf, l, key, &q), NETELECT_PKT_ETRUNC, "len %zu", l);
    memcpy(tmp, buf, NETELECT_PKT_LEN);
    memset(tmp + NETELECT_PKT_LEN, 0, 64);
    cr_assert_eq(agent_pkt_decode(tmp, NETELECT_PKT_LEN + 1, key, &q), NETELECT_PKT_EOVERSIZE);
    cr_assert_eq(agent_pkt_decode(tmp, sizeof tmp, key, &q), NETELECT_PKT_EOVERSIZE);

    memcpy(tmp, buf, NETELECT_PKT_LEN);
    tmp[4] = 2;
    cr_assert_eq(agent_pkt_decode(tmp, NETELECT_PKT_LEN, key, &q), NETELECT_PKT_EVERSION);

    /* any flipped bit in header or MAC fails authentication */
    for (size_t i = 5; i < NETELECT_PKT_LEN; i++) {
        memcpy(tmp, buf, NETELECT_PKT_LEN);
        tmp[i] ^= 0x01;
        cr_assert_eq(agent_pkt_decode(tmp, NETELECT_PKT_LEN, key, &q), NETELECT_PKT_EAUTH,
                     "byte %zu", i);
    }
    uint8_t other[32];
    memcpy(other, key, 32);
    other[31] ^= 0x80;
    cr_assert_eq(agent_pkt_decode(buf, NETELECT_PKT_LEN, other, &q), NETELECT_PKT_EAUTH);

    /* authentic but nonsensical fields: the encoder refuses, a key holder could still send */
    struct netelect_pkt bad = ping();
    bad.type = 9;
    cr_assert_eq(agent_pkt_encode(&bad, key, tmp), -EINVAL);
    bad = ping();
    bad.sender = 0;
    cr_assert_eq(agent_pkt_encode(&bad, key, tmp), -EINVAL);
    cr_assert_eq(agent_pkt_decode(NULL, 10, key, &q), -EINVAL);

    /* all codes differ */
    int codes[] = {NETELECT_PKT_EGARBAGE, NETELECT_PKT_EVERSION, NETELECT_PKT_ETRUNC,
                   NETELECT_PKT_EOVERSIZE, NETELECT_PKT_EAUTH, NETELECT_PKT_EINVAL,
                   NETELECT_PKT_EREPLAY, NETELECT_PKT_ESTALEINC};
    for (size_t i = 0; i < 8; i++)
        for (size_t j = i + 1; j < 8; j++)
            cr_assert_neq(codes[i], codes[j]);
}

Test(packet, random_garbage_never_decodes, .timeout = 20)
{
    uint8_t buf[256];
    struct netelect_pkt q;
    unsigned s = 1;
    for (int round = 0; round < 20000; round++) {
        size_t len = (s = s * 1103515245u + 12345u) % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 16);
        static const uint8_t magic_v1[5] = {'N', 'E', 'P', 'K', 1}; /* bytes, not a string */
        if (round & 1 && len >= sizeof magic_v1)
            memcpy(buf, magic_v1, sizeof magic_v1);
        cr_assert_neq(agent_pkt_decode(buf, len, key, &q), 0);
    }
}

Test(replay, window, .timeout = 10)
{
    struct netelect_replay r = {0};
    cr_assert_eq(agent_replay_check(&r, 100, 1), 1, "first incarnation is new");
    cr_assert_eq(agent_replay_check(&r, 100, 1), NETELECT_PKT_EREPLAY);
    cr_assert_eq(agent_replay_check(&r, 100, 3), 0);
    cr_assert_eq(agent_replay_check(&r, 100, 2), 0, "late but inside the window");
    cr_assert_eq(agent_replay_check(&r, 100, 2), NETELECT_PKT_EREPLAY);
    cr_assert_eq(agent_replay_check(&r, 100, 200), 0);
    cr_assert_eq(agent_replay_check(&r, 100, 137), 0, "63 back");
    cr_assert_eq(agent_replay_check(&r, 100, 136), NETELECT_PKT_EREPLAY, "64 back is too old");
    cr_assert_eq(agent_replay_check(&r, 100, 0), NETELECT_PKT_EREPLAY);
    cr_assert_eq(agent_replay_check(&r, 99, 500), NETELECT_PKT_ESTALEINC);
    cr_assert_eq(agent_replay_check(&r, 101, 1), 1, "restart: new incarnation");
    cr_assert_eq(agent_replay_check(&r, 101, 1), NETELECT_PKT_EREPLAY);
    cr_assert_eq(agent_replay_check(&r, 100, 201), NETELECT_PKT_ESTALEINC);
}

Test(bucket, limits_and_refills, .timeout = 10)
{
    struct netelect_bucket b = {0};
    uint64_t t = 1000000000ull;
    int ok = 0;
    for (int i = 0; i < 100; i++)
        ok += agent_bucket_take(&b, t, 10, 20);
    cr_assert_eq(ok, 20, "burst");
    cr_assert_eq(agent_bucket_take(&b, t + 50000000ull, 10, 20), 0, "half a token after 50 ms");
    cr_assert_eq(agent_bucket_take(&b, t + 100000000ull, 10, 20), 1, "one token after 100 ms");
    ok = 0;
    for (int i = 0; i < 100; i++)
        ok += agent_bucket_take(&b, t + 3600000000000ull, 10, 20);
    cr_assert_eq(ok, 20, "refill caps at burst");
}
