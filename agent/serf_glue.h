/* SPDX-License-Identifier: MIT */
/*
 * The Serf membership source (serf_glue.c, built only with the Serf RPC
 * client; agent/README.md documents the mapping).
 */
#ifndef AGENT_SERF_GLUE_H
#define AGENT_SERF_GLUE_H

#include <stdint.h>

struct agent;

/* Starts the RPC client for [serf] rpc_addr and adds it to the loop: 0, or
 * a negative errno after logging why. */
int agent_serf_start(struct agent *a);
/* The RPC socket is ready (events: epoll's). */
void agent_serf_io(struct agent *a, uint32_t events);
/* The client's timer fired (reconnect, coordinate and status polls). */
void agent_serf_timer(struct agent *a);
/* Stops the client; safe when it never started. */
void agent_serf_stop(struct agent *a);

#endif /* AGENT_SERF_GLUE_H */
