/* SPDX-License-Identifier: MIT */
/*
 * Replays a seed (the format mkcorpus.py writes) into a Serf client that has
 * just completed a simulated handshake: shared by the fuzzer and by the unit
 * test that checks real captured Serf replies.
 *
 * Format: byte 0 selects the chunk size the bytes are fed in (0xc0 and up:
 * whole segments; else byte 0 + 1); the rest is segments separated by
 * "\xc1SRF", with a timer tick (which sends get-coordinate requests) after
 * each segment.
 */
#ifndef TESTS_SERF_REPLAY_H
#define TESTS_SERF_REPLAY_H

#include <stdint.h>
#include <string.h>

#include "agent/serf/serf.h"
#include "agent/serf/serf_internal.h"

#define REPLAY_SEP "\xc1SRF"
#define REPLAY_T0 1000000000ull

/* Serf's handshake reply: {Error: "", Seq: 0}, as captured. */
static const unsigned char replay_handshake_ok[] = {0x82, 0xa5, 'E', 'r', 'r', 'o', 'r', 0xa0,
                                                    0xa3, 'S',  'e', 'q', 0x00};

/* @return 0 if everything was accepted, else the first negative result. */
static inline int replay_seed(struct netelect_serf *s, const uint8_t *data, size_t size)
{
    uint64_t now = REPLAY_T0;
    int r = agent_serf_test_connected(s, now);
    if (r < 0)
        return r;
    if ((r = agent_serf_feed(s, replay_handshake_ok, sizeof(replay_handshake_ok), now)) < 0)
        return r;
    agent_serf_take_output(s, NULL, SIZE_MAX);
    if (size == 0)
        return 0;
    size_t chunk = data[0] >= 0xc0 ? SIZE_MAX : (size_t)data[0] + 1;
    const uint8_t *p = data + 1, *end = data + size;
    while (p <= end) {
        const uint8_t *sep = NULL;
        for (const uint8_t *q = p; q + 4 <= end; q++)
            if (memcmp(q, REPLAY_SEP, 4) == 0) {
                sep = q;
                break;
            }
        const uint8_t *seg_end = sep ? sep : end;
        for (const uint8_t *q = p; q < seg_end;) {
            size_t n = (size_t)(seg_end - q) < chunk ? (size_t)(seg_end - q) : chunk;
            if ((r = agent_serf_feed(s, q, n, now)) < 0)
                return r;
            q += n;
        }
        /* Time moves slowly enough that no request times out. */
        now += 1000000;
        if ((r = agent_serf_tick(s, now)) < 0)
            return r;
        agent_serf_take_output(s, NULL, SIZE_MAX);
        if (!sep)
            break;
        p = sep + 4;
    }
    return 0;
}

#endif /* TESTS_SERF_REPLAY_H */
