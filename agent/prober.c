/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "agent/prober.h"

void agent_probe_init(struct netelect_probe *p, uint64_t first_ns)
{
    memset(p, 0, sizeof *p);
    p->next_send_ns = first_ns;
}

uint64_t agent_probe_next(const struct netelect_probe *p)
{
    if (p->deadline_ns && p->deadline_ns < p->next_send_ns)
        return p->deadline_ns;
    return p->next_send_ns;
}

double agent_probe_penalty(const struct netelect_probe *p,
                               const struct netelect_probe_params *pp, uint64_t now_ns)
{
    if (p->penalty <= 0 || now_ns <= p->penalty_ns)
        return p->penalty;
    return p->penalty * exp2(-(double)(now_ns - p->penalty_ns) / (double)pp->flap_half_life_ns);
}

int agent_probe_tick(struct netelect_probe *p, const struct netelect_probe_params *pp,
                         uint64_t now_ns, uint64_t seq)
{
    int flags = 0;
    /* The timeout is handled before the send that may be due at the same
     * instant (timeout == interval), so that PING's miss is counted first. */
    /* An outstanding PING is judged at its deadline, or when the next one is
     * due if that comes first: a timer that fires late makes the deadline
     * (send time + timeout) drift past the next send, and overwriting it
     * would lose that miss and slow detection by a whole interval. */
    if (p->deadline_ns && (now_ns >= p->deadline_ns || now_ns >= p->next_send_ns)) {
        p->deadline_ns = 0;
        p->missed++;
        p->good_run = 0;
        if (p->miss_run < UINT32_MAX)
            p->miss_run++;
        if (p->healthy && p->miss_run >= pp->misses) {
            p->healthy = 0;
            p->flaps++;
            p->penalty = agent_probe_penalty(p, pp, now_ns) + 1.0;
            p->penalty_ns = now_ns;
            flags |= NETELECT_PROBE_HEALTH;
        }
    }
    if (now_ns >= p->next_send_ns) {
        unsigned slot = (unsigned)(seq % NETELECT_PROBE_RING);
        p->ring[slot].seq = seq;
        p->ring[slot].sent_ns = now_ns;
        p->out_seq = seq;
        p->deadline_ns = now_ns + pp->timeout_ns;
        p->sent++;
        p->next_send_ns += pp->interval_ns;
        /* After a stall (a suspended VM, a debugger) do not send a burst. */
        if (p->next_send_ns <= now_ns)
            p->next_send_ns = now_ns + pp->interval_ns;
        flags |= NETELECT_PROBE_SEND;
    }
    return flags;
}

int agent_probe_reply(struct netelect_probe *p, const struct netelect_probe_params *pp,
                          uint64_t seq, uint64_t echo_ts, uint64_t now_ns)
{
    unsigned slot = (unsigned)(seq % NETELECT_PROBE_RING);
    if (!seq || p->ring[slot].seq != seq || !p->ring[slot].sent_ns ||
        p->ring[slot].sent_ns != echo_ts || now_ns < p->ring[slot].sent_ns)
        return -ENOENT;
    uint64_t rtt = now_ns - p->ring[slot].sent_ns;
    p->ring[slot].sent_ns = 0; /* one sample per PING, whatever a duplicate says */
    int flags = NETELECT_PROBE_RTT;
    if (!p->samples) {
        p->srtt_ns = rtt;
        p->rttvar_ns = rtt / 2;
    } else {
        uint64_t d = p->srtt_ns > rtt ? p->srtt_ns - rtt : rtt - p->srtt_ns;
        p->rttvar_ns = p->rttvar_ns - p->rttvar_ns / 4 + d / 4;
        p->srtt_ns = p->srtt_ns - p->srtt_ns / 8 + rtt / 8;
    }
    p->raw_ns = rtt;
    p->samples++;
    p->last_heard_ns = now_ns;
    if (seq == p->out_seq)
        p->deadline_ns = 0;
    p->miss_run = 0;
    if (p->good_run < UINT32_MAX)
        p->good_run++;
    if (!p->healthy) {
        uint32_t need = agent_probe_penalty(p, pp, now_ns) >= pp->flap_threshold
                            ? pp->flap_rise : 1;
        if (p->good_run >= need) {
            p->healthy = 1;
            flags |= NETELECT_PROBE_HEALTH;
        }
    }
    return flags;
}
