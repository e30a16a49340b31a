/* SPDX-License-Identifier: MIT */
/*
 * Publishing: the agent's node and channel tables turned into the writer's
 * form and into a new segment version, coalesced to at most one publish per
 * publish_min_interval.
 */
#ifndef AGENT_PUBLISH_H
#define AGENT_PUBLISH_H

#include <stdbool.h>
#include <sys/types.h>

struct agent;

/* Opens the segment (a->cfg.shm_name, group gid or (gid_t)-1) with the
 * current table as its first version, and logs what the writer cleaned up.
 * 0, or the writer's negative errno (logged, with what to do about it). */
int agent_publish_open(struct agent *a, gid_t gid);
/* Publishes the table now (failures are logged, counted and retried at the
 * next heartbeat). */
void agent_publish(struct agent *a);
/* Publishes now, or arms the publish timer for the end of the coalescing
 * interval.  Called after every batch of events. */
void agent_maybe_publish(struct agent *a);

/* Starts the periodic heartbeat timer ([segment] heartbeat). */
void agent_heartbeat_arm(struct agent *a);
/* The heartbeat timer fired: retries a publish still owed, refreshes the
 * segment's heartbeat, and pings systemd's watchdog if it is on. */
void agent_heartbeat(struct agent *a, bool watchdog);

#endif /* AGENT_PUBLISH_H */
