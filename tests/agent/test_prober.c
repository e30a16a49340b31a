/* SPDX-License-Identifier: MIT */
/* The probe state machine on a fake clock: detection, recovery, RTT filter, damping. */
#include <criterion/criterion.h>
#include <errno.h>

#include "agent/prober.h"

#define MS 1000000ull

static const struct netelect_probe_params pp = {
    .interval_ns = 100 * MS, .timeout_ns = 100 * MS, .misses = 3,
    .flap_threshold = 3, .flap_rise = 5, .flap_half_life_ns = 60000 * MS};

struct sim {
    struct netelect_probe p;
    uint64_t now, seq;
    uint64_t reply_at, reply_seq, reply_ts; /* one PONG in flight, if any */
    uint64_t late_ns; /* timers fire this late (cycling 0..late_ns), as on a loaded host */
    unsigned late_i;
    int health_events;
};

/* Advances the fake clock to `until`, firing ticks when due; the peer answers
 * with `rtt` when alive (rtt == 0: dead). */
static void run(struct sim *s, uint64_t until, uint64_t rtt)
{
    while (s->now < until) {
        uint64_t next = agent_probe_next(&s->p);
        if (s->reply_at && s->reply_at < next)
            next = s->reply_at;
        if (next > until)
            next = until;
        if (s->late_ns && next < until && next != s->reply_at)
            next += ((uint64_t)(s->late_i++) * 2654435761u) % (s->late_ns + 1);
        s->now = next;
        if (s->reply_at && s->now >= s->reply_at) {
            int f = agent_probe_reply(&s->p, &pp, s->reply_seq, s->reply_ts, s->now);
            cr_assert_geq(f, 0);
            if (f & NETELECT_PROBE_HEALTH)
                s->health_events++;
            s->reply_at = 0;
        }
        if (s->now >= agent_probe_next(&s->p)) {
            int f = agent_probe_tick(&s->p, &pp, s->now, s->seq + 1);
            if (f & NETELECT_PROBE_HEALTH)
                s->health_events++;
            if (f & NETELECT_PROBE_SEND) {
                s->seq++;
                /* a PONG already in flight is superseded only when it is
                 * later than the next (slow peer): keep the earliest */
                if (rtt && !s->reply_at) {
                    s->reply_at = s->now + rtt;
                    s->reply_seq = s->seq;
                    s->reply_ts = s->now;
                }
            }
        }
    }
}

Test(prober, unknown_until_first_reply_then_healthy, .timeout = 10)
{
    struct sim s = {.now = 1000 * MS};
    agent_probe_init(&s.p, s.now);
    cr_assert_eq(s.p.healthy, 0);
    cr_assert_eq(s.p.samples, 0);
    run(&s, s.now + 1 * MS, 2 * MS);
    cr_assert_eq(s.p.samples, 0, "no reply yet");
    run(&s, s.now + 5 * MS, 2 * MS);
    cr_assert_eq(s.p.healthy, 1);
    cr_assert_eq(s.p.srtt_ns, 2 * MS);
    cr_assert_eq(s.p.rttvar_ns, 1 * MS);
}

Test(prober, rfc6298_filter, .timeout = 10)
{
    struct netelect_probe p;
    agent_probe_init(&p, 1000 * MS); /* CLOCK_MONOTONIC is never 0 */
    uint64_t now = 0, seq = 0;
    uint64_t samples[] = {8 * MS, 16 * MS, 8 * MS};
    uint64_t srtt = 0, var = 0;
    for (int i = 0; i < 3; i++) {
        now = agent_probe_next(&p);
        cr_assert(agent_probe_tick(&p, &pp, now, ++seq) & NETELECT_PROBE_SEND);
        int f = agent_probe_reply(&p, &pp, seq, now, now + samples[i]);
        cr_assert_geq(f, 0);
        cr_assert(f & NETELECT_PROBE_RTT);
        if (!i) {
            srtt = samples[0];
            var = samples[0] / 2;
        } else {
            uint64_t d = srtt > samples[i] ? srtt - samples[i] : samples[i] - srtt;
            var = var - var / 4 + d / 4;
            srtt = srtt - srtt / 8 + samples[i] / 8;
        }
        cr_assert_eq(p.srtt_ns, srtt);
        cr_assert_eq(p.rttvar_ns, var);
        cr_assert_eq(p.raw_ns, samples[i]);
    }
    cr_assert_eq(p.srtt_ns, 8875 * MS / 1000); /* 7/8*9 + 1/8*8 */
    /* a duplicate or forged PONG gives no second sample */
    cr_assert_eq(agent_probe_reply(&p, &pp, seq, now, now + 1 * MS), -ENOENT);
    cr_assert_eq(agent_probe_reply(&p, &pp, seq + 5, now, now + 1 * MS), -ENOENT);
    now = agent_probe_next(&p);
    agent_probe_tick(&p, &pp, now, ++seq);
    cr_assert_eq(agent_probe_reply(&p, &pp, seq, now + 1, now + 1 * MS), -ENOENT,
                 "wrong echoed timestamp");
}

Test(prober, dead_peer_detected_after_three_misses, .timeout = 10)
{
    struct sim s = {.now = 1000 * MS};
    agent_probe_init(&s.p, s.now);
    run(&s, 2000 * MS, 1 * MS);
    cr_assert_eq(s.p.healthy, 1);
    uint64_t death = s.now + 37 * MS; /* the peer dies between probes */
    run(&s, death, 1 * MS);
    uint64_t detected = 0;
    while (!detected && s.now < death + 2000 * MS) {
        run(&s, s.now + 1 * MS, 0);
        if (!s.p.healthy)
            detected = s.now;
    }
    cr_assert_neq(detected, 0);
    uint64_t d = detected - death;
    cr_assert(d >= 300 * MS && d <= 400 * MS, "detected after %llu ms", (unsigned long long)(d / MS));
    cr_assert_eq(s.p.miss_run, 3);
    cr_assert_eq(s.p.flaps, 1);
    /* comes back: healthy on the first reply (penalty 1 < threshold 3) */
    uint64_t back = s.now;
    run(&s, back + 150 * MS, 1 * MS);
    cr_assert_eq(s.p.healthy, 1);
}

Test(prober, detection_stays_within_bounds_when_timers_fire_late, .timeout = 10)
{
    for (uint64_t late = 1; late <= 20; late += 3) {
        struct sim s = {.now = 1000 * MS, .late_ns = late * MS};
        agent_probe_init(&s.p, s.now);
        run(&s, 2000 * MS, 1 * MS);
        cr_assert_eq(s.p.healthy, 1);
        uint64_t death = s.now + 1 * MS;
        run(&s, death, 1 * MS);
        uint64_t detected = 0;
        while (!detected && s.now < death + 2000 * MS) {
            run(&s, s.now + 1 * MS, 0);
            if (!s.p.healthy)
                detected = s.now;
        }
        uint64_t d = detected - death;
        cr_assert(detected && d <= 400 * MS + 4 * late * MS,
                  "timers %llu ms late: detected after %llu ms", (unsigned long long)late,
                  (unsigned long long)(d / MS));
    }
}

Test(prober, late_send_does_not_hide_a_miss, .timeout = 10)
{
    /* The PING due at 1000 ms goes out 5 ms late (deadline 1105 ms); the next
     * tick runs at 1101 ms, when the next PING is due: the unanswered one
     * must count as missed before it is replaced. */
    struct netelect_probe p;
    agent_probe_init(&p, 1000 * MS);
    cr_assert(agent_probe_tick(&p, &pp, 1005 * MS, 1) & NETELECT_PROBE_SEND);
    cr_assert_eq(agent_probe_next(&p), 1100 * MS);
    cr_assert(agent_probe_tick(&p, &pp, 1101 * MS, 2) & NETELECT_PROBE_SEND);
    cr_assert_eq(p.missed, 1);
    cr_assert_eq(p.miss_run, 1);
}

Test(prober, two_misses_are_not_enough, .timeout = 10)
{
    struct sim s = {.now = 1000 * MS};
    agent_probe_init(&s.p, s.now);
    run(&s, 1500 * MS, 1 * MS);
    run(&s, s.now + 250 * MS, 0); /* ~2 probes lost */
    cr_assert_eq(s.p.healthy, 1, "miss_run %u", s.p.miss_run);
    run(&s, s.now + 200 * MS, 1 * MS);
    cr_assert_eq(s.p.miss_run, 0);
    cr_assert_eq(s.p.healthy, 1);
}

Test(prober, slow_but_alive_peer_stays_healthy, .timeout = 10)
{
    struct sim s = {.now = 1000 * MS};
    agent_probe_init(&s.p, s.now);
    run(&s, 5000 * MS, 150 * MS); /* RTT above the timeout: late replies still count */
    cr_assert_eq(s.p.healthy, 1);
    cr_assert(s.p.srtt_ns >= 140 * MS && s.p.srtt_ns <= 160 * MS);
}

Test(prober, flapping_is_damped, .timeout = 10)
{
    struct sim s = {.now = 1000 * MS};
    agent_probe_init(&s.p, s.now);
    run(&s, 1200 * MS, 1 * MS);
    for (int flap = 0; flap < 3; flap++) {
        run(&s, s.now + 600 * MS, 0);
        cr_assert_eq(s.p.healthy, 0, "flap %d down", flap);
        run(&s, s.now + 1000 * MS, 1 * MS);
        cr_assert_eq(s.p.healthy, 1, "flap %d back up", flap);
    }
    cr_assert_eq(s.p.flaps, 3);
    cr_assert_geq(agent_probe_penalty(&s.p, &pp, s.now), 2.9);
    /* third strike: now a flap_rise (5) replies are needed, about 400+ ms */
    run(&s, s.now + 600 * MS, 0);
    cr_assert_eq(s.p.healthy, 0);
    run(&s, s.now + 250 * MS, 1 * MS); /* 2-3 replies */
    cr_assert_eq(s.p.healthy, 0, "damped: still unhealthy after %u replies", s.p.good_run);
    run(&s, s.now + 400 * MS, 1 * MS);
    cr_assert_eq(s.p.healthy, 1, "healthy after %u replies", s.p.good_run);
    /* the penalty halves every half-life: after 2 hours it is negligible */
    cr_assert_lt(agent_probe_penalty(&s.p, &pp, s.now + 7200000 * MS), 0.01);
}

Test(prober, no_burst_after_a_stall, .timeout = 10)
{
    struct netelect_probe p;
    agent_probe_init(&p, 1);
    agent_probe_tick(&p, &pp, 1, 1);
    int f = agent_probe_tick(&p, &pp, 10000 * MS, 2);
    cr_assert(f & NETELECT_PROBE_SEND);
    cr_assert_eq(agent_probe_next(&p), 10100 * MS);
}
