/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer entry point for the Serf client's decoder: arbitrary bytes as
 * Serf's replies after a successful handshake.  Crashes, sanitizer reports,
 * unbounded allocation (libFuzzer's -rss_limit_mb / -malloc_limit_mb) and
 * contract violations (checked below) are findings.
 *
 * Build: CC=clang-14 meson setup build-fuzz -Dfuzzing=true -Db_lundef=false
 * Run:   build-fuzz/tests/serf/fuzz_serf -max_total_time=300 \
 *            -max_len=4096 corpus-work tests/serf/corpus
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netelect.h"
#include "tests/serf/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_member(void *ctx, enum netelect_serf_event ev, const struct netelect_serf_member *m)
{
    (void)ctx;
    /* The contract: a NUL-terminated name, a valid event and status. */
    if (!m->name || strlen(m->name) == 0 || (unsigned)ev > NETELECT_SERF_EV_REAP ||
        (unsigned)m->status > NETELECT_SERF_FAILED || memchr(m->addr, '\0', sizeof(m->addr)) == NULL)
        abort();
    if (m->channels)
        (void)strlen(m->channels);
}

static void on_coord(void *ctx, uint64_t id, uint64_t rtt, uint64_t err)
{
    (void)ctx;
    (void)id;
    (void)err;
    if (rtt == NETELECT_RTT_UNKNOWN)
        abort(); /* an estimate must rank as measured */
}

static void on_conn(void *ctx, int up, int err)
{
    (void)ctx;
    if (up ? err != 0 : err >= 0)
        abort();
}

static void on_reject(void *ctx, int why, const struct netelect_serf_member *m)
{
    (void)ctx;
    if (why < NETELECT_SERF_REJECT_SELF_ID || why > NETELECT_SERF_REJECT_CAP || m->has_id ||
        !m->name)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct netelect_serf_callbacks cb = {on_member, on_coord, on_conn, on_reject};
    /* A port nothing listens on: a tick after a reset must not reach out.
     * The seeds' members carry ids 1-3, n1 being the agent's own: a self id
     * of 1 and a cap of 2 put the id arbitration under the fuzzer too. */
    struct netelect_serf_config cfg = {.rpc_addr = "127.0.0.1:1", .coord_period_ns = 1000,
                                       .self_id = 1, .max_ids = 2};
    struct netelect_serf *s;
    if (agent_serf_new(&cfg, &cb, NULL, &s) != 0)
        abort();
    (void)replay_seed(s, data, size);
    struct netelect_serf_stats st;
    agent_serf_stats(s, &st);
    if (st.members != agent_serf_member_count(s) || st.members_without_id > st.members ||
        st.ids_refused + st.members_without_id > st.members)
        abort();
    agent_serf_free(s);
    return 0;
}
