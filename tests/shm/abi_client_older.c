/* SPDX-License-Identifier: MIT */
/*
 * A program built against an older <netelect/view.h> whose structs end
 * earlier than the library's: this file must not include the real header.
 * Its netelect_view_status lacks the last two fields (writer_alive,
 * clock_shared) and its netelect_view_opts everything after fail_static_ns.
 * Each call puts canary bytes right after the struct, where the library's
 * own, larger struct would continue.
 */
#include <stdint.h>
#include <string.h>

#include "tests/shm/abi_client.h"

struct netelect_view_status {
    uint32_t size, reserved0;
    uint64_t generation, self_id, publish_ns, heartbeat_seq, heartbeat_age_ns, forced_reuse;
    uint32_t n_nodes, n_chans;
    int32_t agent_pid;
    uint32_t state;
    uint8_t incarnation[16];
    uint16_t abi_major, abi_minor;
    uint32_t slot_count, max_nodes, max_chans, max_members, registered, stale;
    uint64_t heartbeat_period_ns, retries, reattaches, pinned_waits, heartbeat_mono_ns;
};
int netelect_view_status(struct netelect_view *v, struct netelect_view_status *out);

struct netelect_view_opts {
    uint32_t size, reserved0;
    uint64_t fail_static_ns;
};
int netelect_view_open_opts(const char *name, const struct netelect_view_opts *opts,
                            struct netelect_view **out);

static int canary_intact(const unsigned char *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c[i] != ABI_CANARY)
            return 0;
    return 1;
}

int older_status(struct netelect_view *v, uint32_t size, struct abi_seen *seen)
{
    struct {
        struct netelect_view_status st;
        unsigned char canary[64];
    } b;
    _Static_assert(offsetof(__typeof__(b), canary) == sizeof b.st, "canary right after");
    memset(&b, ABI_CANARY, sizeof b);
    b.st.size = size;
    const int rc = netelect_view_status(v, &b.st);
    seen->canary_intact = canary_intact(b.canary, sizeof b.canary);
    seen->size = b.st.size;
    seen->self_id = b.st.self_id;
    seen->state = b.st.state;
    seen->heartbeat_mono_ns = b.st.heartbeat_mono_ns;
    return rc;
}

size_t older_status_size(void)
{
    return sizeof(struct netelect_view_status);
}

int older_open(const char *name, uid_t other_uid, struct netelect_view **out)
{
    /* Where the library's expect_uid and expect_uid_set would be, a uid
     * that does not own the segment: read, they would refuse it. */
    struct {
        struct netelect_view_opts o;
        uint32_t expect_uid, expect_uid_set;
    } b = {.o = {.size = sizeof b.o}, .expect_uid = (uint32_t)other_uid, .expect_uid_set = 1};
    return netelect_view_open_opts(name, &b.o, out);
}
