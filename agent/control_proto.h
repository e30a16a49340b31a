/* SPDX-License-Identifier: MIT */
/*
 * The control protocol: one JSON object per line over a Unix stream socket,
 * one JSON reply per request line.
 *
 *   {"cmd": "peer-add", "id": "0x11", "addr": "192.0.2.11:7707"}
 *   {"cmd": "peer-remove", "id": "0x11"}
 *   {"cmd": "channel-add", "name": "orders", "members": ["0x10", "0x11"]}
 *   {"cmd": "channel-remove", "name": "orders"}                 (whole channel)
 *   {"cmd": "channel-remove", "name": "orders", "members": ["0x11"]}
 *   {"cmd": "set-rtt", "id": "0x11", "rtt_ns": 1500000}          (source OPERATOR)
 *   {"cmd": "set-health", "id": "0x11", "healthy": false}
 *   {"cmd": "clear", "id": "0x11"}                               (drop both overrides)
 *   {"cmd": "drain"}   {"cmd": "drain", "channel": "orders"}    (this node stops being
 *   {"cmd": "undrain"} {"cmd": "undrain", "channel": "orders"}   a candidate / is one again)
 *   {"cmd": "stats"}   {"cmd": "reload"}   {"cmd": "ping"}
 *   {"cmd": "stats", "after": "0x11", "limit": 1000}            (a page of peers)
 *
 * Ids are strings (decimal or 0x-hex) because JSON numbers cannot carry every
 * 64-bit id; a non-negative integer is accepted too.  "self" is accepted for
 * channel members.  Replies are {"ok": true, ...} or
 * {"ok": false, "error": "<message>", "errno": <n>}.
 *
 * stats lists peers in id order, at most "limit" (default and maximum
 * NETELECT_CTL_STATS_PAGE) with ids above "after"; when more follow, the
 * reply's "peers_next" is the "after" for the next page (the CLI follows
 * it), so no reply outgrows the agent's 1 MiB output buffer.
 *
 * agent_ctl_parse() is a pure function (bytes in, request or error out).
 */
#ifndef AGENT_CONTROL_PROTO_H
#define AGENT_CONTROL_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "agent/parse.h"

#define NETELECT_CTL_MAX_LINE 65536
#define NETELECT_CTL_MAX_MEMBERS 4096
/* peers per stats reply: ~250 bytes each, so a page stays far below 1 MiB */
#define NETELECT_CTL_STATS_PAGE 2000

/* A verb changes state, so only a privileged client may send it (root,
 * the agent's uid, the control group: agent/control.c). */
#define NETELECT_CTL_MUTATES 1u
/* A verb takes "id", a peer's id, which is never this node's own. */
#define NETELECT_CTL_PEER 2u

/*
 * The verbs, one line each: X(VERB, handler, "name", flags, "keys").
 * Everything about a verb comes from this one table: enum netelect_ctl_verb,
 * the parser's name lookup, the list of verbs in its "unknown cmd" error
 * and its check of each request's keys (control_proto.c), and the agent's
 * dispatch (agent/control.c, whose handler for the verb is
 * cmd_<handler>).  keys are the request keys the verb takes besides "cmd".
 */
#define NETELECT_CTL_VERBS(X)                                                                      \
    X(PING, ping, "ping", 0, "")                                                                   \
    X(STATS, stats, "stats", 0, "after limit")                                                     \
    X(PEER_ADD, peer_add, "peer-add", NETELECT_CTL_MUTATES | NETELECT_CTL_PEER, "id addr")         \
    X(PEER_REMOVE, peer_remove, "peer-remove", NETELECT_CTL_MUTATES | NETELECT_CTL_PEER, "id")     \
    X(CHANNEL_ADD, channel_add, "channel-add", NETELECT_CTL_MUTATES, "name members")               \
    X(CHANNEL_REMOVE, channel_remove, "channel-remove", NETELECT_CTL_MUTATES, "name members")      \
    X(SET_RTT, set_rtt, "set-rtt", NETELECT_CTL_MUTATES | NETELECT_CTL_PEER, "id rtt_ns")          \
    X(SET_HEALTH, set_health, "set-health", NETELECT_CTL_MUTATES | NETELECT_CTL_PEER, "id healthy") \
    X(CLEAR, clear, "clear", NETELECT_CTL_MUTATES | NETELECT_CTL_PEER, "id")                       \
    X(RELOAD, reload, "reload", NETELECT_CTL_MUTATES, "")                                          \
    X(DRAIN, drain, "drain", NETELECT_CTL_MUTATES, "channel")                                      \
    X(UNDRAIN, drain, "undrain", NETELECT_CTL_MUTATES, "channel")

enum netelect_ctl_verb {
#define NETELECT_CTL_ENUM(verb, handler, name, flags, keys) NETELECT_CTL_##verb,
    NETELECT_CTL_VERBS(NETELECT_CTL_ENUM)
#undef NETELECT_CTL_ENUM
    NETELECT_CTL_NVERBS
};

struct netelect_ctl_req {
    enum netelect_ctl_verb verb;
    uint64_t id;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char name[NETELECT_CHAN_NAME_MAX + 1];
    uint64_t *members; /* 0 means "self"; malloc'd, free with agent_ctl_req_free */
    size_t n_members;
    int has_members;
    uint64_t rtt_ns;
    int healthy;
    uint64_t after;     /* stats: list peers with ids above this (0: from the start) */
    uint32_t limit;     /* stats: at most this many peers (1..NETELECT_CTL_STATS_PAGE) */
    int has_channel;    /* drain/undrain: one channel (in name), else every channel */
};

/* 0, or -EINVAL/-E2BIG/-ENOMEM with a message for the reply in err. */
int agent_ctl_parse(const char *line, size_t len, struct netelect_ctl_req *out, char *err,
                        size_t errlen);
void agent_ctl_req_free(struct netelect_ctl_req *r);
/* Non-zero for verbs that change state (and so need a privileged peer). */
int agent_ctl_mutates(enum netelect_ctl_verb v);
/* The verb's name in requests ("?" for a value outside the enum). */
const char *agent_ctl_verb_name(enum netelect_ctl_verb v);

#endif /* AGENT_CONTROL_PROTO_H */
