/* SPDX-License-Identifier: MIT */
/*
 * netelectd's state, shared by its translation units.  The files of agent/:
 *
 *   netelectd.c     main: options, start-up, the event loop, teardown
 *   nodes.c         node table, probe heap, channels, drain, limits (here)
 *   control.c       the control socket: connections, the verb dispatch table
 *   udp.c           the UDP probe protocol             (udp.h)
 *   publish.c       the view into the segment writer   (publish.h)
 *   reload.c        start-up config, reload, inherited view (reload.h)
 *   serf_glue.c     Serf as a membership source        (serf_glue.h)
 *   metrics.c       the Prometheus endpoint            (metrics.h)
 *   evfd.c clock.c log.c   descriptors and timers, the clock, the log
 *
 * and the agent core (libnetelect_agent_core), linked into netelectd, the
 * CLI, the tests and the fuzzers: config.c, packet.c, prober.c,
 * control_proto.c (the verbs), metrics_text.c and parse.c (ids, numbers,
 * durations, addresses, channel names); cli.c is the netelect CLI, demo.c
 * netelect-demo, serf/ the Serf RPC client.  Dependencies go one way:
 * netelectd.c calls the others, control.c calls reload.c and nodes.c, and
 * nothing calls netelectd.c.  Functions shared between files are named
 * agent_*.
 *
 * The agent is single-threaded: one epoll loop owns every structure below,
 * so the node table is a plain hash table (no rculfhash/call_rcu needed;
 * readers in other processes only ever see the shm segment).
 */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netelect.h>

#include "agent/config.h"
#include "agent/packet.h"
#include "agent/prober.h"
#include "shm/writer.h"

/* agent_addr_key(): 16 bytes of IPv6 address, 2 of port */
#define NETELECT_ADDR_KEY_LEN 18

/* Where a node or a channel member came from; reload replaces only CFG. */
enum { ORIG_CFG = 1, ORIG_CTL = 2, ORIG_SERF = 4 };

struct node {
    uint64_t id;
    unsigned orig;              /* ORIG_* bits that keep this node in the table */
    bool probed;                /* has an address: probed over UDP */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct netelect_probe probe;
    struct netelect_replay replay;  /* anti-replay state for packets it sends us */
    uint64_t peer_inc;          /* its incarnation as last seen (echoed in PINGs) */
    uint64_t tx_seq;            /* our seq towards it (per receiver, so its window is dense) */
    uint64_t heard_ns;          /* any authenticated packet from it */
    struct netelect_bucket rx_bucket; /* rate limit of its authenticated packets */
    size_t heap_idx;            /* position in the probe heap, SIZE_MAX: not in it */
    bool rtt_ovr, health_ovr;   /* operator overrides */
    uint64_t rtt_ovr_ns;
    uint8_t health_ovr_val;
    bool serf_known, serf_alive, serf_has_rtt;
    uint64_t serf_rtt_ns, serf_err_ns, serf_heard_ns;
    char *serf_channels;        /* the member's channel tag (comma-separated) */
    struct netelect_wnode pub;  /* as last published, for change detection */
    bool pub_valid;
    bool pub_queued;            /* its id is in agent.pub_changed */
};

struct member {
    uint64_t id;
    unsigned orig;
};

struct chan {
    char name[NETELECT_CHAN_NAME_MAX + 1];
    struct member *m;
    size_t n, cap;
    /* Membership set over m[]: open addressing by id (linear probing,
     * backward-shift delete); a slot holds index + 1 into m, 0 is empty.
     * set_cap is 0 or a power of two at least twice n, so adding, finding
     * and removing a member are O(1) however big a Serf channel grows. */
    uint32_t *set;
    size_t set_cap;
    /* Its leader as this node elected it at the last publish (0: none
     * eligible; leader_valid: published at least once), and how many
     * publishes changed it: for the metrics (agent/metrics.c). */
    uint64_t leader, leader_changes;
    bool leader_valid;
};

struct stats {
    uint64_t rx, rx_ok, tx_ping, tx_pong, tx_err;
    uint64_t drop[16];          /* indexed by enum drop_reason */
    uint64_t publishes, publish_err, heartbeats, heartbeat_err;
    uint64_t publishes_delta;   /* of publishes: deltas (the rest wrote the whole view) */
    uint64_t ctl_requests, ctl_errors, ctl_denied, ctl_clients;
    uint64_t ctl_refused, ctl_timeouts; /* connections refused by the limits, closed by timeouts */
    uint64_t reloads, reload_failures;
    uint64_t health_changes, peer_restarts;
    /* detection -> segment: from the first change marked for publishing to
     * the publish that carried it (what publish_min_interval bounds) */
    uint64_t pub_delay_last_ns, pub_delay_max_ns;
};

enum drop_reason {
    DROP_RATE, DROP_TRUNC, DROP_OVERSIZE, DROP_GARBAGE, DROP_VERSION, DROP_AUTH, DROP_FIELDS,
    DROP_NOT_FOR_US, DROP_UNKNOWN_SENDER, DROP_REPLAY, DROP_STALE_INC, DROP_STALE_PONG,
    DROP_UNSOLICITED, DROP_RATE_PEER, DROP_N
};

struct client;

struct agent {
    struct netelect_cfg cfg;
    const char *cfg_path;       /* NULL: embedded default */
    /* command-line overrides, re-applied on every reload */
    const char *opt_shm, *opt_control, *opt_listen;
    uint64_t opt_node_id;

    uint64_t self;
    uint64_t inc;               /* our incarnation */
    uint8_t key[NETELECT_KEY_LEN];
    bool have_key;
    struct netelect_probe_params probe_params;
    gid_t ctl_gid;              /* (gid_t)-1: none */

    int ep, udp, ctl_fd, ctl_tfd, sig_fd, probe_tfd, hb_tfd, pub_tfd;
    struct netelect_writer *writer;

    /* node table: open addressing by id (linear probing, backward-shift delete) */
    struct node **tab;
    size_t tab_cap, n_nodes;
    /* probe heap keyed by agent_probe_next() */
    struct node **heap;
    size_t heap_n, heap_cap;

    struct chan *chans;
    size_t n_chans, cap_chans;

    /* Drain (`netelect drain [CHANNEL]`): this node is published as
     * unhealthy in every channel (drain_all) or in the channels named in
     * drained[] (names, not struct chan pointers: a channel a reload removes
     * and brings back stays drained).  Kept across reloads, lost on restart. */
    bool drain_all;
    char (*drained)[NETELECT_CHAN_NAME_MAX + 1];
    size_t n_drained, cap_drained;

    /* Addresses of probed nodes (a multiset: peers may share one), keyed by
     * agent_addr_key().  A packet from one of them has its MAC checked
     * before any rate limit and is then limited by its authenticated sender
     * (node.rx_bucket), so a flood spoofing a peer's address cannot spend
     * that peer's budget.  Open addressing, backward-shift delete. */
    struct peer_addr { uint8_t k[NETELECT_ADDR_KEY_LEN]; uint32_t refs; } *paddr;
    size_t paddr_cap, paddr_n;
    /* Unknown sources only: per-source token buckets, direct-mapped by a
     * hash of the address, and one bucket shared by all of them (spoofing
     * many sources does not multiply the MAC work). */
    struct { struct sockaddr_storage a; struct netelect_bucket b; } *buckets;
    size_t n_buckets;
    struct netelect_bucket unknown_bucket;

    bool dirty_hard, dirty_soft, pub_armed, quit;
    uint64_t dirty_since_ns;    /* when dirty_hard was first set */
    /* What the next publish must write (agent/publish.c).  dirty_struct:
     * the whole view, because something other than node measurements
     * changed since the last good full publish (nodes added or removed,
     * channels, memberships, drain, the configuration), or no good publish
     * followed the last one (the writer's delta would be relative to a view
     * the segment does not hold).  Otherwise only the nodes listed in
     * pub_changed (ids, each once: node.pub_queued; an id whose node is
     * gone is skipped) changed their measurements, and the publish is a
     * delta of those.  pub_healthy: healthy nodes in the view last built
     * (self included), for the systemd status line. */
    bool dirty_struct;
    uint64_t *pub_changed;
    size_t n_pub_changed, cap_pub_changed, pub_healthy;
    uint64_t last_pub_ns, start_ns;
    struct stats stats;

    struct client *clients;
    size_t n_clients;

    void *serf;                 /* struct netelect_serf * when built with Serf */
    int serf_fd, serf_tfd;
    uint32_t serf_events;
    bool serf_up;

    struct netelect_metrics *metrics; /* agent/metrics.c */
};

/* nodes.c */
/* Frees the node and channel tables, the drain list and the address sets. */
void agent_tables_free(struct agent *a);
/* A family-independent key for an address: IPv4 as v4-mapped IPv6 (what a
 * dual-stack socket reports), then the port. */
void agent_addr_key(const struct sockaddr_storage *ss, socklen_t len,
                        uint8_t k[NETELECT_ADDR_KEY_LEN]);
/* Whether ss is the address of a probed node (configured or control-added). */
bool agent_addr_known(const struct agent *a, const struct sockaddr_storage *ss, socklen_t len);
struct node *agent_node_find(struct agent *a, uint64_t id);
struct node *agent_node_get(struct agent *a, uint64_t id); /* find or create */
void agent_node_forget_orig(struct agent *a, struct node *n, unsigned orig);
void agent_node_set_addr(struct agent *a, struct node *n, const struct sockaddr_storage *ss,
                             socklen_t len);
void agent_node_clear_addr(struct agent *a, struct node *n);
void agent_heap_fix(struct agent *a, struct node *n);
struct node *agent_heap_top(struct agent *a);
/* n as it would be published now (under RTT hysteresis, relative to n->pub). */
struct netelect_wnode agent_node_view(const struct agent *a, const struct node *n);
/* RTT hysteresis: the RTT to publish given the last published one and the
 * current estimate (band: max(published * pct / 100, min_ns); both 0: off). */
uint64_t agent_rtt_hold(uint64_t published, uint64_t measured, uint32_t pct, uint64_t min_ns);
/* Recomputes n's published form and marks the view dirty (hard or soft). */
void agent_node_changed(struct agent *a, struct node *n);
struct chan *agent_chan_find(struct agent *a, const char *name);
struct chan *agent_chan_get(struct agent *a, const char *name);
/* The member entry of id in c (O(1) through the set), or NULL. */
struct member *agent_chan_member(const struct chan *c, uint64_t id);
/* Adds id to c with origin orig (or ORs orig into an existing member).
 * Never limited: callers that take input from outside (control socket,
 * Serf) check agent_limit_*() first.  0, or -ENOMEM. */
int agent_chan_add_member(struct agent *a, struct chan *c, uint64_t id, unsigned orig);
void agent_chan_remove_member(struct agent *a, struct chan *c, uint64_t id);
void agent_chan_remove(struct agent *a, struct chan *c);
void agent_chan_forget_orig(struct agent *a, unsigned orig);
void agent_mark_dirty(struct agent *a, bool hard);
/* Something other than node measurements changed (see dirty_struct): the
 * next publish writes the whole view, within publish_min_interval. */
void agent_mark_structural(struct agent *a);
/* Whether this node is drained from channel `name` (drain_all or by name). */
bool agent_drained(const struct agent *a, const char *name);
/* Drains (on) or undrains this node from channel `name`, or from every
 * channel (name NULL: on sets drain_all; off clears drain_all and every
 * named drain).  Returns 1 if that changed anything, 0 if it was already
 * so, -ENOMEM.  Marks the view for publishing; does not log. */
int agent_drain(struct agent *a, const char *name, bool on);

/*
 * Limits on what the control socket and Serf may add ([limits] nodes,
 * channels, members in the configuration; the configuration file itself is
 * never limited, but what it adds counts).  Each returns 0 if `adding` more
 * fit, or -ENOSPC with a message for the operator in err ("node limit
 * reached: ...").  Check before changing anything, so that a refused
 * request changes nothing.
 */
int agent_limit_nodes(const struct agent *a, size_t adding, char *err, size_t errlen);
int agent_limit_chans(const struct agent *a, size_t adding, char *err, size_t errlen);
/* c may be NULL (a channel about to be created: 0 members). */
int agent_limit_members(const struct agent *a, const struct chan *c, size_t adding, char *err,
                            size_t errlen);
/* find-or-create within the node limit: 0 (*out set), or -ENOSPC with err */
int agent_node_get_limited(struct agent *a, uint64_t id, struct node **out, char *err,
                               size_t errlen);
/* find-or-create within the channel limit: 0 (*out set), or -ENOSPC with err */
int agent_chan_get_limited(struct agent *a, const char *name, struct chan **out, char *err,
                               size_t errlen);
/* Adds one member within the member limit (an existing member only gains
 * the origin): 0, -ENOSPC with err, or -ENOMEM. */
int agent_chan_add_member_limited(struct agent *a, struct chan *c, uint64_t id, unsigned orig,
                                      char *err, size_t errlen);

/* control.c */
int agent_control_open(struct agent *a);
void agent_control_close(struct agent *a);
void agent_control_accept(struct agent *a);
void agent_control_event(struct agent *a, struct client *c, uint32_t events);
/* The control timer fired: closes clients past their request or idle deadline. */
void agent_control_timer(struct agent *a);

/* epoll tags: bits 56-63 of data.u64 say what fired; the low 56 bits carry a
 * pointer (a client), since user-space addresses stay below 2^56. */
enum { EV_UDP = 1, EV_CTL, EV_SIG, EV_PROBE, EV_HB, EV_PUB, EV_SERF, EV_SERF_T, EV_CLIENT, EV_CTL_T,
       EV_METRICS };
#define EV_TAG(t, p) ((uint64_t)(uintptr_t)(p) | (uint64_t)(t) << 56)

#endif /* AGENT_AGENT_H */
