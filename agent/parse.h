/* SPDX-License-Identifier: MIT */
/*
 * Small parsers shared by netelectd, the netelect CLI and the config loader.
 * All are pure (no I/O, no allocation) so the fuzz targets can reach them.
 */
#ifndef AGENT_PARSE_H
#define AGENT_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Node id: decimal or 0x-hex, 1..UINT64_MAX (0 is reserved: it is what
 * netelect_result.winner holds when nobody won).  0 or -EINVAL/-ERANGE. */
int agent_parse_id(const char *s, uint64_t *out);
/* Unsigned integer with no sign and no trailing junk (base 0). */
int agent_parse_u64(const char *s, uint64_t *out);
/* "<number><unit>" with unit ns|us|ms|s (a fraction is allowed: 1.5ms).
 * A bare number is refused so that nobody guesses the unit. */
int agent_parse_duration(const char *s, uint64_t *out_ns);
/* Numeric "a.b.c.d:port" or "[v6]:port" (no DNS: nothing here blocks).
 * Port 0 is refused unless allow_port0. */
int agent_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len,
                         int allow_port0);
/* Textual form of an address, "a.b.c.d:port" or "[v6]:port". */
const char *agent_fmt_addr(const struct sockaddr *sa, char *buf, size_t len);
/* A channel name: 1..NETELECT_CHAN_NAME_MAX bytes of [A-Za-z0-9._:/@-]. */
#define NETELECT_CHAN_NAME_MAX 63
int agent_valid_chan_name(const char *s);
/* Trims ASCII whitespace at both ends in place. */
char *agent_trim(char *s);

#endif /* AGENT_PARSE_H */
