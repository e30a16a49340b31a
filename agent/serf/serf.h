/* SPDX-License-Identifier: MIT */
/*
 * A non-blocking client of Serf's RPC protocol (msgpack over TCP), driven by
 * netelectd's event loop: it learns members, their health and their Vivaldi
 * RTT estimates from a local Serf agent and reports them through callbacks.
 *
 * Usage from an epoll loop:
 *   agent_serf_new(&cfg, &cb, ctx, &s);
 *   loop: watch agent_serf_fd(s) for agent_serf_events(s) (it may
 *   change after a reconnect: re-read it after every call), call
 *   agent_serf_handle() when it is ready, and agent_serf_tick() no
 *   later than agent_serf_next_deadline().
 * Nothing here blocks, prints or aborts; errors are negative errno values.
 * Watch the fd level-triggered: one handle() call reads at most 4 MiB.
 * Callbacks run inside handle()/tick() and must not free the client.
 * The first connection attempt is made by the first tick(); rpc_addr must
 * be numeric ("127.0.0.1:7373", "[::1]:7373"; "localhost" is accepted), as
 * name resolution could block.  Protocol and limits: docs/serf.md.
 */
#ifndef AGENT_SERF_SERF_H
#define AGENT_SERF_SERF_H

#include <stddef.h>
#include <stdint.h>

enum netelect_serf_status {
    NETELECT_SERF_NONE = 0,
    NETELECT_SERF_ALIVE,
    NETELECT_SERF_LEAVING,
    NETELECT_SERF_LEFT,
    NETELECT_SERF_FAILED,
};

enum netelect_serf_event {
    NETELECT_SERF_EV_SNAPSHOT, /* from `members` after (re)connecting */
    NETELECT_SERF_EV_JOIN,
    NETELECT_SERF_EV_LEAVE,
    NETELECT_SERF_EV_FAILED,
    NETELECT_SERF_EV_UPDATE, /* tags changed */
    NETELECT_SERF_EV_REAP,   /* gone for good: forget it */
};

struct netelect_serf_member {
    const char *name;     /* Serf member name */
    uint64_t node_id;     /* parsed from the id tag; valid iff has_id */
    int has_id;
    const char *channels; /* the channel tag's value (comma-separated), or NULL */
    enum netelect_serf_status status;
    char addr[46];        /* textual IPv4/IPv6 address */
    uint16_t port;
};

struct netelect_serf_callbacks {
    /* A member's state as of `ev`; pointers are valid during the call only. */
    void (*member)(void *ctx, enum netelect_serf_event ev, const struct netelect_serf_member *m);
    /* The estimated RTT from this host's member to `node_id`, Serf's own
     * distance formula (Euclidean + heights + adjustments), and Vivaldi's
     * error figure for the pair, both in ns. */
    void (*coord)(void *ctx, uint64_t node_id, uint64_t rtt_ns, uint64_t err_ns);
    /* up = 1 after a successful handshake (+auth), 0 on loss (err < 0).
     * A loss is reported once per outage, and again whenever the reason
     * changes (e.g. from -ECONNREFUSED to -EPERM, a listener refused). */
    void (*connection)(void *ctx, int up, int err);
    /* A member's id claim was refused (enum netelect_serf_reject): it is
     * reported to member() with has_id = 0 until the claim becomes valid.
     * Called when a claim is first refused or its reason changes, not for
     * every event of the same member. */
    void (*reject)(void *ctx, int why, const struct netelect_serf_member *m);
};

/* Why a member's id tag was not accepted (docs/serf.md, "Trust"). */
enum netelect_serf_reject {
    NETELECT_SERF_REJECT_SELF_ID = 1, /* this host's id, on a member that is not this host's */
    NETELECT_SERF_REJECT_DUP_ID,      /* an id another tracked member already holds */
    NETELECT_SERF_REJECT_CAP,         /* max_ids members already hold an id */
};

struct netelect_serf_config {
    const char *rpc_addr;      /* "host:port", default "127.0.0.1:7373" */
    const char *auth_key;      /* rpc auth key, or NULL */
    const char *id_tag;        /* tag carrying the 64-bit node id, default "nid" */
    const char *channel_tag;   /* tag carrying the channels, default "netelect-channels" */
    uint64_t coord_period_ns;  /* get-coordinate polling period, default 2 s */
    uint64_t backoff_min_ns;   /* reconnect backoff, default 100 ms ... */
    uint64_t backoff_max_ns;   /* ... doubling up to 10 s */
    /* Supplementary status poll period, default 50 ms; UINT64_MAX turns it
     * off.  `serf agent` holds member events for ~1 s before streaming them
     * (docs/serf.md), so a failure or leave reaches us that much sooner
     * through a `members-filtered` poll for the non-alive members. */
    uint64_t status_poll_ns;
    /* Who may own the RPC listener.  Before anything is sent on a new
     * connection, the client looks the peer's socket up in the kernel's
     * socket tables (NETLINK_SOCK_DIAG, exact 4-tuple) and goes on only if
     * its owner uid is root, this process's euid, or one of rpc_uids;
     * otherwise the connection is dropped with -EPERM and the auth key is
     * never sent.  rpc_uid_any = 1 skips the check (an RPC address on
     * another host, whose sockets this kernel cannot see). */
    const uint32_t *rpc_uids;
    size_t n_rpc_uids;
    int rpc_uid_any;
    /* This host's node id (0: unknown).  Only the member named like the
     * local agent (`stats` agent.name) may carry it; another member
     * claiming it is refused (NETELECT_SERF_REJECT_SELF_ID). */
    uint64_t self_id;
    /* The most members holding an id at once, default
     * NETELECT_SERF_DEFAULT_MAX_IDS; further claims are refused
     * (NETELECT_SERF_REJECT_CAP) until one is released. */
    size_t max_ids;
};

#define NETELECT_SERF_STATUS_POLL_OFF UINT64_MAX
#define NETELECT_SERF_DEFAULT_MAX_IDS 10000u

struct netelect_serf;

/* cfg and cb may be NULL (defaults; no reports), as may any callback.
 * @return 0, -EINVAL (bad address, empty tag, backoff_min > backoff_max),
 * -ENOMEM. */
int agent_serf_new(const struct netelect_serf_config *cfg,
                       const struct netelect_serf_callbacks *cb, void *ctx,
                       struct netelect_serf **out);
void agent_serf_free(struct netelect_serf *s);
/* The socket to watch, or -1 while waiting to reconnect. */
int agent_serf_fd(const struct netelect_serf *s);
/* EPOLLIN / EPOLLOUT bits wanted on that fd. */
uint32_t agent_serf_events(const struct netelect_serf *s);
/* The fd is ready (revents from epoll); now_ns is CLOCK_MONOTONIC.
 * @return 0; or why the connection was just dropped (a reconnect is already
 * scheduled, so this is for logging): -ECONNRESET, -EBADMSG (malformed
 * reply), -EMSGSIZE (over a size limit), -EPROTO (Serf returned an error),
 * -EACCES (auth refused), -EPERM (the RPC listener is not owned by a
 * trusted uid, or cannot be checked: see rpc_uids), or the socket's -errno. */
int agent_serf_handle(struct netelect_serf *s, uint32_t revents, uint64_t now_ns);
/* Timers: reconnect, coordinate and status polls, request time-outs.
 * @return 0, or as handle(), plus -ETIMEDOUT and connect()'s -errno. */
int agent_serf_tick(struct netelect_serf *s, uint64_t now_ns);
/* CLOCK_MONOTONIC ns by which agent_serf_tick() must be called again;
 * never 0 (a due deadline is a past time); UINT64_MAX when nothing is due. */
uint64_t agent_serf_next_deadline(const struct netelect_serf *s);
/* Counters for `netelect status`: reconnects, malformed replies, events. */
struct netelect_serf_stats {
    uint64_t connects, disconnects, malformed, events, coord_polls;
    int connected;
    /* More counters (the struct is append-only): */
    uint64_t rpc_errors;         /* replies whose Error was set */
    uint64_t timeouts;           /* connects or requests that timed out */
    uint64_t members;            /* members tracked now */
    uint64_t members_without_id; /* of those, with no valid id tag */
    uint64_t members_untracked;  /* reported but not tracked (table full) */
    uint64_t status_polls;       /* members-filtered status polls sent */
    uint64_t status_changes;     /* members those polls reported changed */
    uint64_t listener_refused;   /* connections dropped: RPC listener not trusted */
    int64_t listener_uid;        /* owner uid of the last RPC listener checked, -1: unknown */
    uint64_t ids_refused;        /* members whose id claim is refused now */
    uint64_t refusals;           /* claims refused so far (reject() calls) */
};
void agent_serf_stats(const struct netelect_serf *s, struct netelect_serf_stats *out);
/* This host's member name, learnt from `stats` on each connection (NULL
 * until then): the one member allowed to carry self_id. */
const char *agent_serf_self_name(const struct netelect_serf *s);

#endif /* AGENT_SERF_SERF_H */
