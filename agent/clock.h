/* SPDX-License-Identifier: MIT */
/*
 * The agent's one clock.  Every deadline (probe heap, publish coalescing,
 * rate limits, control timeouts) and every "heard at" compares against it,
 * so it lives alone in clock.c: every agent file can read it without
 * depending on the file that runs the loop, and a unit test links its own
 * clock instead (tests/agent/test_nodes.c).
 */
#ifndef AGENT_CLOCK_H
#define AGENT_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in ns: the time base of the segment's heartbeat and
 * last_heard fields, shared with readers on this host. */
uint64_t agent_now_ns(void);

#endif /* AGENT_CLOCK_H */
