/* SPDX-License-Identifier: MIT */
/*
 * The event loop's descriptors: opening them at start-up, and the three
 * chores every part of the loop shares (publish coalescing, the probe heap,
 * the Serf client): arming a timerfd, draining one, and registering a
 * descriptor under an epoll tag.  Failures here mean the loop itself is
 * broken, so they abort with a message.
 */
#ifndef AGENT_EVFD_H
#define AGENT_EVFD_H

#include <stdint.h>

struct agent;

/* Arms tfd for the CLOCK_MONOTONIC time when_ns (0 disarms it). */
void agent_timer_arm(int tfd, uint64_t when_ns);
/* Reads a timerfd's expiration count, so that level-triggered epoll stops
 * reporting it. */
void agent_fd_drain(int fd);
/* Adds fd to the agent's epoll set under tag (EV_*, agent.h). */
void agent_epoll_add(struct agent *a, int fd, uint32_t events, int tag);

/* Start-up: the epoll set, the signalfd for SIGINT/SIGTERM/SIGHUP (now
 * blocked), and the probe, heartbeat and publish timers.  Aborts if the
 * system refuses. */
void agent_loop_open(struct agent *a);

#endif /* AGENT_EVFD_H */
