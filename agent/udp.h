/* SPDX-License-Identifier: MIT */
/*
 * The UDP probe protocol: PINGs sent as the probe heap comes due, PONGs
 * timed into the probe filter, and every other datagram rate-limited,
 * authenticated and dropped with a counted reason.
 */
#ifndef AGENT_UDP_H
#define AGENT_UDP_H

#include <stdint.h>

#include "agent/agent.h"

/* `stats` names of the drop reasons (enum drop_reason, agent.h). */
extern const char *const agent_drop_names[DROP_N];

/* Start-up: this incarnation's number and the unknown-source buckets
 * (aborts if out of memory). */
void agent_udp_init(struct agent *a);
/* Binds the probe socket to a->cfg.listen and adds it to the loop: 0 or
 * -errno. */
int agent_udp_open(struct agent *a);
/* Reads (a bounded batch of) datagrams from the probe socket. */
void agent_udp_readable(struct agent *a);
/* Sends the probes that are due and re-arms the probe timer. */
void agent_probes_run(struct agent *a);
/* Re-arms the probe timer for the heap's earliest deadline (after events
 * that moved it). */
void agent_probes_arm(struct agent *a);
/* Ends the current interval of rate-limited authentication-failure logging
 * if it is over (called at every heartbeat). */
void agent_auth_log_flush(uint64_t now);

#endif /* AGENT_UDP_H */
