/* SPDX-License-Identifier: MIT */
/* test_abi.c's view of its clients built against other headers. */
#ifndef TESTS_SHM_ABI_CLIENT_H
#define TESTS_SHM_ABI_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ABI_CANARY 0xA5

struct netelect_view;

/* What a client read from its own struct. */
struct abi_seen {
    int canary_intact; /* the 64 bytes after the client's struct are untouched */
    uint32_t size;     /* `size` after the call (v0: its struct's size) */
    uint32_t state, writer_alive;
    uint64_t self_id, heartbeat_mono_ns;
};

/* abi_client_older.c: a sized struct shorter than the library's. */
int older_status(struct netelect_view *v, uint32_t size, struct abi_seen *seen);
size_t older_status_size(void);
int older_open(const char *name, uid_t other_uid, struct netelect_view **out);

/* abi_client_v0.c: the NETELECT_0 entry points, structs without a size. */
int v0_status(struct netelect_view *v, struct abi_seen *seen);
int v0_open(const char *name, uid_t expect_uid, struct netelect_view **out);

#endif
