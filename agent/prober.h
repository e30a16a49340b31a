/* SPDX-License-Identifier: MIT */
/*
 * One peer's probe state machine, driven by the caller's clock (so tests use
 * a fake one).  No I/O here: the caller sends the PING it is told to send and
 * feeds back matching PONGs.
 *
 * Timing.  A PING is due every `interval`; it times out `timeout` (<= interval)
 * after it was sent.  `misses` consecutive timeouts make a healthy peer
 * unhealthy, so with the defaults (100 ms, 100 ms, 3) a peer that dies is
 * declared dead 300-400 ms later.  A peer starts unhealthy ("never heard")
 * and its RTT starts unknown; the first reply makes it healthy.
 *
 * RTT filter (RFC 6298 §2, in integer ns): the first sample R sets
 * srtt = R, rttvar = R/2; later ones do rttvar = 3/4 rttvar + 1/4 |srtt - R|,
 * srtt = 7/8 srtt + 1/8 R.  srtt is what elections use, rttvar is published
 * as the error figure, and the raw last sample is kept too.  A reply that
 * arrives after its timeout still gives a sample (it is a real round trip)
 * and still counts as a sign of life.
 *
 * Flap damping (BGP-style, RFC 2439 in spirit): each healthy -> unhealthy
 * transition adds 1 to a penalty that halves every `flap_half_life`.  While
 * the penalty is >= `flap_threshold`, an unhealthy peer needs `flap_rise`
 * consecutive replies (not 1) before it is healthy again.  Going unhealthy
 * is never delayed: a dead leader must be dropped at once.
 */
#ifndef AGENT_PROBER_H
#define AGENT_PROBER_H

#include <stdint.h>

#define NETELECT_PROBE_RING 16

struct netelect_probe_params {
    uint64_t interval_ns, timeout_ns;
    uint32_t misses;
    uint32_t flap_threshold, flap_rise;
    uint64_t flap_half_life_ns;
};

struct netelect_probe {
    uint64_t next_send_ns;   /* next PING due */
    uint64_t deadline_ns;    /* timeout of the outstanding PING, 0: none */
    uint64_t out_seq;        /* seq of the outstanding PING */
    struct { uint64_t seq, sent_ns; } ring[NETELECT_PROBE_RING]; /* send-time table */
    uint64_t srtt_ns, rttvar_ns, raw_ns; /* valid iff samples > 0 */
    uint64_t samples, sent, missed;
    uint32_t miss_run, good_run;
    uint8_t healthy;
    double penalty;          /* flap penalty as of penalty_ns */
    uint64_t penalty_ns;
    uint64_t flaps;          /* healthy -> unhealthy transitions */
    uint64_t last_heard_ns;  /* last valid reply, 0: never */
};

enum {
    NETELECT_PROBE_SEND = 1,      /* send a PING with the seq passed in */
    NETELECT_PROBE_HEALTH = 2,    /* healthy changed */
    NETELECT_PROBE_RTT = 4,       /* a new RTT sample was taken */
};

/* The first PING is due at first_ns (spread peers out to avoid bursts). */
void agent_probe_init(struct netelect_probe *p, uint64_t first_ns);
/* Earliest time agent_probe_tick() has work to do. */
uint64_t agent_probe_next(const struct netelect_probe *p);
/* Processes timeouts and sends due at now_ns; returns NETELECT_PROBE_* bits.
 * If SEND is set the caller must send a PING carrying `seq` (recorded here). */
int agent_probe_tick(struct netelect_probe *p, const struct netelect_probe_params *pp,
                         uint64_t now_ns, uint64_t seq);
/* A PONG for `seq` whose echoed timestamp is `echo_ts` arrived at now_ns.
 * Returns NETELECT_PROBE_* bits, or -ENOENT if it answers no PING we sent
 * (unknown, duplicate, or echoing a different send time). */
int agent_probe_reply(struct netelect_probe *p, const struct netelect_probe_params *pp,
                          uint64_t seq, uint64_t echo_ts, uint64_t now_ns);
/* The flap penalty decayed to now_ns. */
double agent_probe_penalty(const struct netelect_probe *p,
                               const struct netelect_probe_params *pp, uint64_t now_ns);

#endif /* AGENT_PROBER_H */
