/* SPDX-License-Identifier: MIT */
/*
 * Internals of the Serf RPC client that tests and the fuzzer reach: the pure
 * decoding entry point, the distance formula, the id parser, the msgpack
 * bounds scanner and the limits that keep memory bounded.
 */
#ifndef AGENT_SERF_SERF_INTERNAL_H
#define AGENT_SERF_SERF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "agent/serf/serf.h"

/*
 * Limits.  Serf's memberlist caps a member's metadata (all tags) at 512
 * bytes and names are short, so 64 KiB strings and 1024-entry maps are far
 * beyond anything legitimate; an array may be as long as the member cap.
 * A single RPC message (e.g. the `members` reply, ~180 bytes per member) may
 * be at most 64 MiB, i.e. about 350k members; msgpack-c allocates 24 bytes
 * per declared array element and 48 per map entry before the elements
 * arrive, so the declared size of one message is bounded separately.
 */
#define NETELECT_SERF_MAX_MEMBERS (1u << 20)
#define NETELECT_SERF_MAX_STR (64u * 1024)
#define NETELECT_SERF_MAX_MAP 1024u
#define NETELECT_SERF_MAX_ARRAY NETELECT_SERF_MAX_MEMBERS
#define NETELECT_SERF_MAX_DEPTH 16u
#define NETELECT_SERF_MAX_MSG_BYTES (64u * 1024 * 1024)
#define NETELECT_SERF_MAX_MSG_COST (256u * 1024 * 1024)
#define NETELECT_SERF_MAX_PENDING 256u
#define NETELECT_SERF_COORD_WINDOW 64u
#define NETELECT_SERF_MAX_OUT (1u << 20)
#define NETELECT_SERF_MAX_DIM 16u
#define NETELECT_SERF_REQUEST_TIMEOUT_NS (10ull * 1000000000ull)
#define NETELECT_SERF_CONNECT_TIMEOUT_NS (5ull * 1000000000ull)

/* A Vivaldi coordinate as Serf reports it; all values in seconds except
 * `error`, which Serf defines as dimensionless. */
struct netelect_serf_coord {
    double vec[NETELECT_SERF_MAX_DIM];
    unsigned dim;
    double error, adjustment, height;
};

/*
 * Serf's distance between two coordinates, in ns, saturated at
 * NETELECT_RTT_MAX_MEASURED; err_ns = (a.error + b.error) * rtt_ns, a
 * rough bound (Vivaldi's error is a relative one).
 * @return 0, or -EINVAL if the dimensions differ or a value is not finite.
 */
int agent_serf_distance(const struct netelect_serf_coord *a,
                            const struct netelect_serf_coord *b, uint64_t *rtt_ns,
                            uint64_t *err_ns);

/*
 * Parses a node id tag: decimal, or hexadecimal after "0x"/"0X", the whole
 * string, no sign, no blanks, at most UINT64_MAX.
 * @return 0, or -EINVAL.
 */
int agent_serf_parse_id(const char *s, size_t len, uint64_t *out);

/*
 * Processes bytes as if they had just been read from the socket.
 * @return 0; or a negative errno if they made the client drop the
 * connection (-EBADMSG malformed, -EMSGSIZE over a limit, -EPROTO or
 * -EACCES refused by Serf), after which a reconnect is scheduled;
 * -ENOTCONN if there is no connection to feed.
 */
int agent_serf_feed(struct netelect_serf *s, const void *bytes, size_t n, uint64_t now_ns);

/*
 * For tests and the fuzzer: behaves as if a connection had just been
 * established, without a socket (the handshake is queued).  Output then
 * accumulates until agent_serf_take_output() takes it.
 * @return 0, or a negative errno.
 */
int agent_serf_test_connected(struct netelect_serf *s, uint64_t now_ns);

/*
 * Copies up to `cap` bytes of queued output to `buf` and drops them.
 * @return the number of bytes copied.
 */
size_t agent_serf_take_output(struct netelect_serf *s, void *buf, size_t cap);

/* The number of members tracked in the table. */
size_t agent_serf_member_count(const struct netelect_serf *s);

/*
 * An incremental msgpack structure scanner that checks every declared size
 * against the limits above *before* msgpack-c sees the bytes, since
 * msgpack-c allocates a container's slots as soon as it reads the header.
 */
struct netelect_serf_scan {
    uint64_t rem[NETELECT_SERF_MAX_DEPTH]; /* items left per open container */
    unsigned depth;
    unsigned char hdr[10];
    unsigned hdr_have, hdr_need;
    uint64_t skip;      /* payload bytes of the current str/bin/ext left */
    uint64_t obj_bytes; /* bytes of the current top-level object so far */
    uint64_t obj_cost;  /* msgpack-c slot bytes it declared so far */
    uint64_t objects;   /* complete top-level objects seen */
};

void agent_serf_scan_init(struct netelect_serf_scan *sc);
/* @return 0, -EMSGSIZE (a limit) or -EBADMSG (an invalid byte). */
int agent_serf_scan(struct netelect_serf_scan *sc, const unsigned char *p, size_t n);

#endif /* AGENT_SERF_SERF_INTERNAL_H */
