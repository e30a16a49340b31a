/* SPDX-License-Identifier: MIT */
/*
 * The public structs can grow (include/netelect/view.h, "Growing structs"):
 * a program built against an older header, whose struct netelect_view_status
 * or netelect_view_opts is smaller than the library's, gets only its own
 * bytes written or read (abi_client_older.c); a newer one, whose struct is
 * larger, gets the library's fields and zeroes past them, and an option the
 * library does not have is refused; a program linked against NETELECT_0,
 * before the structs had a size, gets exactly its struct (abi_client_v0.c).
 * Each client puts canary bytes right after its struct.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "netelect.h"
#include "shm/writer.h"
#include "tests/shm/abi_client.h"
#include "tests/shm/helpers.h"

#define SELF 7

static char name[128];
static struct netelect_writer *w;

static void setup(void)
{
    t_name(name, sizeof name, "abi");
    t_unlink(name);
    struct netelect_writer_config cfg = {.name = name, .group = (gid_t)-1, .self_id = SELF};
    cr_assert_eq(netelect__writer_open(&cfg, &w), 0);
    struct netelect_wnode nodes[] = {{.id = SELF, .rtt_ns = 0, .healthy = 1},
                                     {.id = 9, .rtt_ns = 50, .healthy = 1}};
    uint64_t mem[] = {SELF, 9};
    struct netelect_wchan chans[] = {{"c", mem, 2}};
    cr_assert_eq(netelect__writer_publish(w, nodes, 2, chans, 1), 0);
}

static void teardown(void)
{
    netelect__writer_close(w, false);
    t_unlink(name);
}

TestSuite(abi, .init = setup, .fini = teardown, .timeout = 60);

static struct netelect_view *open_view(void)
{
    struct netelect_view *v;
    cr_assert_eq(netelect_view_open(name, &v), 0);
    return v;
}

/* A uid that does not own the segment (we do). */
static uid_t other_uid(void)
{
    return geteuid() == 12345 ? 12346 : 12345;
}

Test(abi, older_status_is_written_only_up_to_its_size)
{
    struct netelect_view *v = open_view();
    struct netelect_view_status full = {.size = sizeof full};
    cr_assert_eq(netelect_view_status(v, &full), 0);
    const size_t older = older_status_size();
    cr_assert_lt(older, sizeof full, "the client's struct is the smaller one");
    struct abi_seen s;
    cr_assert_eq(older_status(v, (uint32_t)older, &s), 0);
    cr_assert(s.canary_intact, "the library wrote past the caller's struct");
    cr_assert_eq(s.size, older, "size: the bytes filled");
    cr_assert_eq(s.self_id, SELF);
    cr_assert_eq(s.state, NETELECT_AGENT_LIVE);
    cr_assert_eq(s.heartbeat_mono_ns, full.heartbeat_mono_ns);
    /* A size the library cannot use writes nothing. */
    cr_assert_eq(older_status(v, 0, &s), -EINVAL);
    cr_assert(s.canary_intact);
    cr_assert_eq(s.self_id, 0xA5A5A5A5A5A5A5A5u, "nothing written");
    cr_assert_eq(older_status(v, 7, &s), -EINVAL);
    cr_assert(s.canary_intact);
    netelect_view_close(v);
}

Test(abi, newer_status_gets_zeroes_past_the_library_struct)
{
    struct netelect_view *v = open_view();
    struct {
        struct netelect_view_status st;
        unsigned char newer[40]; /* fields this library does not know */
        unsigned char canary[64];
    } b;
    memset(&b, ABI_CANARY, sizeof b);
    b.st.size = sizeof b.st + sizeof b.newer;
    cr_assert_eq(netelect_view_status(v, &b.st), 0);
    cr_assert_eq(b.st.size, sizeof b.st, "size: only the library's own fields are filled");
    cr_assert_eq(b.st.self_id, SELF);
    cr_assert_eq(b.st.reserved0, 0);
    cr_assert_eq(b.st.writer_alive, 1);
    for (size_t i = 0; i < sizeof b.newer; i++)
        cr_assert_eq(b.newer[i], 0, "unknown fields read as 0");
    for (size_t i = 0; i < sizeof b.canary; i++)
        cr_assert_eq(b.canary[i], ABI_CANARY, "written past the caller's size");
    netelect_view_close(v);
}

Test(abi, older_opts_are_read_only_up_to_their_size)
{
    struct netelect_view *v;
    /* Past the client's size sit expect_uid/expect_uid_set of a uid that
     * does not own the segment: read, they would refuse the attach. */
    cr_assert_eq(older_open(name, other_uid(), &v), 0);
    netelect_view_close(v);
    /* ... while the same fields inside the struct do refuse it. */
    struct netelect_view_opts o = {.size = sizeof o, .expect_uid = (uint32_t)other_uid(),
                                   .expect_uid_set = 1};
    cr_assert_eq(netelect_view_open_opts(name, &o, &v), -EPERM);
}

Test(abi, newer_opts_and_bad_sizes)
{
    struct netelect_view *v;
    struct {
        struct netelect_view_opts o;
        uint64_t newer; /* an option this library does not have */
    } b = {.o = {.size = sizeof b}};
    cr_assert_eq(netelect_view_open_opts(name, &b.o, &v), 0, "unknown options left at 0");
    netelect_view_close(v);
    b.newer = 1;
    cr_assert_eq(netelect_view_open_opts(name, &b.o, &v), -E2BIG, "an option set is not ignored");
    cr_assert_null(v);
    struct netelect_view_opts o = {.size = 0};
    cr_assert_eq(netelect_view_open_opts(name, &o, &v), -EINVAL, "size never set");
    o = (struct netelect_view_opts){.size = sizeof o, .reserved0 = 1};
    cr_assert_eq(netelect_view_open_opts(name, &o, &v), -EINVAL);
    cr_assert_eq(netelect_view_open_opts(name, NULL, &v), 0);
    netelect_view_close(v);
}

Test(abi, netelect_0_binaries_get_their_own_structs)
{
    struct netelect_view *v = open_view();
    struct abi_seen s;
    cr_assert_eq(v0_status(v, &s), 0);
    cr_assert(s.canary_intact, "the library wrote past the NETELECT_0 struct");
    cr_assert_eq(s.self_id, SELF);
    cr_assert_eq(s.state, NETELECT_AGENT_LIVE);
    cr_assert_eq(s.writer_alive, 1);
    netelect_view_close(v);
    /* Their options are read at their own offsets. */
    cr_assert_eq(v0_open(name, other_uid(), &v), -EPERM);
    cr_assert_eq(v0_open(name, geteuid(), &v), 0);
    netelect_view_close(v);
}
