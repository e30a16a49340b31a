/* SPDX-License-Identifier: MIT */
/*
 * The probe wire format.  Every packet is exactly NETELECT_PKT_LEN bytes:
 *
 *   off len field
 *     0   4 magic "NEPK" (0x4e45504b, big-endian on the wire)
 *     4   1 version (1)
 *     5   1 type: 1 PING, 2 PONG
 *     6   2 flags (must be 0 in version 1)
 *     8   8 sender node id
 *    16   8 receiver node id
 *    24   8 sender incarnation (CLOCK_REALTIME ns at agent start: grows across restarts)
 *    32   8 receiver incarnation as the sender knows it (PONG: the pinger's; PING: 0 or last seen)
 *    40   8 seq (per sender incarnation, from 1, +1 per packet sent to anyone)
 *    48   8 timestamp: sender CLOCK_MONOTONIC ns at send
 *    56   8 ack seq   (PONG: seq of the PING answered; PING: 0)
 *    64   8 ack ts    (PONG: timestamp of that PING; PING: 0)
 *    72  32 HMAC-SHA512-256 (libsodium crypto_auth) over bytes 0..71, pre-shared key
 *
 * All integers are big-endian.  The RTT is measured on the pinger's own clock
 * (its send-time table, cross-checked with the echoed timestamp), so no clock
 * of another host is ever trusted.
 *
 * agent_pkt_decode() is a pure function (bytes in, struct or error out)
 * so it can be fuzzed; replay and rate checks are separate pure helpers on
 * caller-owned state.
 */
#ifndef AGENT_PACKET_H
#define AGENT_PACKET_H

#include <errno.h> /* the NETELECT_PKT_E* codes are negative errno values */
#include <stddef.h>
#include <stdint.h>

#define NETELECT_PKT_MAGIC 0x4e45504bu
#define NETELECT_PKT_VERSION 1
#define NETELECT_PKT_HDR_LEN 72
#define NETELECT_PKT_MAC_LEN 32
#define NETELECT_PKT_LEN (NETELECT_PKT_HDR_LEN + NETELECT_PKT_MAC_LEN)

enum netelect_pkt_type { NETELECT_PKT_PING = 1, NETELECT_PKT_PONG = 2 };

struct netelect_pkt {
    uint8_t version, type;
    uint16_t flags;
    uint64_t sender, receiver, sender_inc, receiver_inc, seq, ts, ack_seq, ack_ts;
};

/* Distinct rejection codes (negative errno values), one per stats counter. */
#define NETELECT_PKT_EGARBAGE (-EPROTO)            /* no magic */
#define NETELECT_PKT_EVERSION (-EPROTONOSUPPORT)   /* unknown version */
#define NETELECT_PKT_ETRUNC (-EBADMSG)             /* shorter than NETELECT_PKT_LEN */
#define NETELECT_PKT_EOVERSIZE (-EMSGSIZE)         /* longer than NETELECT_PKT_LEN */
#define NETELECT_PKT_EAUTH (-EKEYREJECTED)         /* MAC does not verify */
#define NETELECT_PKT_EINVAL (-EINVAL)              /* authentic but malformed fields */
#define NETELECT_PKT_EREPLAY (-EALREADY)           /* seq seen or below the window */
#define NETELECT_PKT_ESTALEINC (-ESTALE)           /* older incarnation than the peer's */

/* Writes NETELECT_PKT_LEN bytes. 0, or -EINVAL for an unencodable packet. */
int agent_pkt_encode(const struct netelect_pkt *p, const uint8_t key[32],
                         uint8_t out[NETELECT_PKT_LEN]);
/* Checks, in order: magic, version, length, MAC, fields. */
int agent_pkt_decode(const uint8_t *buf, size_t len, const uint8_t key[32],
                         struct netelect_pkt *out);
/* Short name of a decode/replay error for logs and stats ("garbage", ...). */
const char *agent_pkt_err_name(int err);

/*
 * Per-peer anti-replay: the newest incarnation seen and a 64-packet sliding
 * window over its seqs (RFC 4303 §3.4.3 style).  A higher incarnation resets
 * the window (the peer restarted); a lower one is rejected.
 */
struct netelect_replay {
    uint64_t inc, top, bits;
};
/* 0 accepted (and recorded), 1 accepted and the incarnation is new,
 * NETELECT_PKT_EREPLAY or NETELECT_PKT_ESTALEINC. */
int agent_replay_check(struct netelect_replay *r, uint64_t inc, uint64_t seq);

/* Token bucket: rate tokens per second, at most burst; one token per packet. */
struct netelect_bucket {
    uint64_t last_ns;
    uint64_t tokens_micro; /* tokens x 1e6, so low rates still refill smoothly */
};
/* 1: take it, 0: over the limit. */
int agent_bucket_take(struct netelect_bucket *b, uint64_t now_ns, uint32_t rate,
                          uint32_t burst);

#endif /* AGENT_PACKET_H */
