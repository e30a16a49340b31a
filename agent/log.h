/* SPDX-License-Identifier: MIT */
/*
 * netelectd's log: one line per event on stderr.  Under systemd
 * (JOURNAL_STREAM set) each line starts with a "<N>" syslog priority, which
 * journald turns into the entry's priority; otherwise lines are prefixed with
 * a UTC timestamp and the level, for people.
 */
#ifndef AGENT_LOG_H
#define AGENT_LOG_H

#include "agent/config.h"

void agent_log_init(int level);
void agent_log_set_level(int level);
int agent_log_enabled(int level);
__attribute__((format(printf, 2, 3))) void agent_log(int level, const char *fmt, ...);
/* Unrecoverable: logs file:line and the message, then aborts (agent only). */
__attribute__((noreturn, format(printf, 3, 4))) void agent_die(const char *file, int line,
                                                                  const char *fmt, ...);

/*
 * A message about a node (node: its id, 0 none), a peer address (addr, NULL
 * none) and/or a channel (NULL none).  Under journald it is sent natively
 * (sd_journal_send) with the fields NODE_ID=0x..., PEER=a.b.c.d:port and
 * CHANNEL=name, so `journalctl NODE_ID=0x102` finds everything about one
 * node; elsewhere (or built without libsystemd, or if the journal socket
 * refuses it) it is the same line as agent_log().
 */
struct sockaddr;
__attribute__((format(printf, 5, 6))) void agent_log_about(int level, uint64_t node,
                                                               const struct sockaddr *addr,
                                                               const char *channel,
                                                               const char *fmt, ...);

#define LOG_E(...) agent_log(NETELECT_LOG_ERR, __VA_ARGS__)
#define LOG_W(...) agent_log(NETELECT_LOG_WARN, __VA_ARGS__)
#define LOG_N(...) agent_log(NETELECT_LOG_NOTICE, __VA_ARGS__)
#define LOG_I(...) agent_log(NETELECT_LOG_INFO, __VA_ARGS__)
#define LOG_D(...) do { if (agent_log_enabled(NETELECT_LOG_DEBUG)) \
                            agent_log(NETELECT_LOG_DEBUG, __VA_ARGS__); } while (0)
#define LOGA_W(node, addr, chan, ...) agent_log_about(NETELECT_LOG_WARN, node, addr, chan, __VA_ARGS__)
#define LOGA_N(node, addr, chan, ...) agent_log_about(NETELECT_LOG_NOTICE, node, addr, chan, __VA_ARGS__)
#define LOGA_I(node, addr, chan, ...) agent_log_about(NETELECT_LOG_INFO, node, addr, chan, __VA_ARGS__)
#define DIE(...) agent_die(__FILE__, __LINE__, __VA_ARGS__)

#endif /* AGENT_LOG_H */
