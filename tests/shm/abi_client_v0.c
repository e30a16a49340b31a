/* SPDX-License-Identifier: MIT */
/*
 * A program linked against version node NETELECT_0, whose structs had no
 * `size` field: this file must not include the real header.  Its calls bind
 * to netelect_view_status@NETELECT_0 and netelect_view_open_opts@NETELECT_0
 * (shm/view_compat.c), as such a binary's do.
 */
#include <stdint.h>
#include <string.h>

#include "tests/shm/abi_client.h"

struct netelect_view_status {
    uint64_t generation, self_id, publish_ns, heartbeat_seq, heartbeat_age_ns, forced_reuse;
    uint32_t n_nodes, n_chans;
    int32_t agent_pid;
    uint32_t state;
    uint8_t incarnation[16];
    uint16_t abi_major, abi_minor;
    uint32_t slot_count, max_nodes, max_chans, max_members, registered, stale;
    uint64_t heartbeat_period_ns, retries, reattaches, pinned_waits, heartbeat_mono_ns;
    uint32_t writer_alive, clock_shared;
};
int netelect_view_status(struct netelect_view *v, struct netelect_view_status *out);
__asm__(".symver netelect_view_status, netelect_view_status@NETELECT_0");

struct netelect_view_opts {
    uint64_t fail_static_ns;
    uint32_t expect_uid, expect_uid_set;
};
int netelect_view_open_opts(const char *name, const struct netelect_view_opts *opts,
                            struct netelect_view **out);
__asm__(".symver netelect_view_open_opts, netelect_view_open_opts@NETELECT_0");

int v0_status(struct netelect_view *v, struct abi_seen *seen)
{
    struct {
        struct netelect_view_status st;
        unsigned char canary[64];
    } b;
    _Static_assert(sizeof b.st == 160, "the NETELECT_0 struct");
    memset(&b, ABI_CANARY, sizeof b);
    const int rc = netelect_view_status(v, &b.st);
    seen->canary_intact = 1;
    for (size_t i = 0; i < sizeof b.canary; i++)
        seen->canary_intact &= b.canary[i] == ABI_CANARY;
    seen->size = (uint32_t)sizeof b.st;
    seen->self_id = b.st.self_id;
    seen->state = b.st.state;
    seen->heartbeat_mono_ns = b.st.heartbeat_mono_ns;
    seen->writer_alive = b.st.writer_alive;
    return rc;
}

int v0_open(const char *name, uid_t expect_uid, struct netelect_view **out)
{
    const struct netelect_view_opts o = {.expect_uid = (uint32_t)expect_uid, .expect_uid_set = 1};
    return netelect_view_open_opts(name, &o, out);
}
