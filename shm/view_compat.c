/* SPDX-License-Identifier: MIT */
/*
 * The entry points of programs linked against version node NETELECT_0,
 * whose struct netelect_view_status and struct netelect_view_opts had no
 * `size` field: their binaries call netelect_view_status@NETELECT_0 and
 * netelect_view_open_opts@NETELECT_0, which these functions answer with
 * exactly the struct those programs allocated.  Programs built against the
 * current header bind to the @@NETELECT_0.2 versions (libnetelect.map),
 * which take `size`.
 *
 * The NETELECT_0 structs are the current ones minus the leading size and
 * reserved0 (8 bytes), ending with clock_shared; fields appended after
 * clock_shared are never part of them.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "netelect.h"

#define V0_OFF offsetof(struct netelect_view_status, generation)
#define V0_STATUS_END (offsetof(struct netelect_view_status, clock_shared) + sizeof(uint32_t))
#define V0_OPTS_END (offsetof(struct netelect_view_opts, expect_uid_set) + sizeof(uint32_t))

_Static_assert(V0_OFF == 8 && offsetof(struct netelect_view_opts, fail_static_ns) == V0_OFF,
               "the NETELECT_0 structs start where `size` and reserved0 end");
_Static_assert(V0_STATUS_END - V0_OFF == 160 && V0_OPTS_END - V0_OFF == 16,
               "the NETELECT_0 structs' sizes are frozen");

/* Only reachable through the versioned names below, never called by name. */
__attribute__((visibility("default"))) int netelect__view_status_v0(struct netelect_view *v,
                                                                    void *out);
__attribute__((visibility("default"))) int netelect__view_open_opts_v0(const char *name,
                                                                       const void *opts,
                                                                       struct netelect_view **out);
/* clang 14's integrated assembler ignores .symver's "remove", which leaves
 * view.c's objects defining the plain name twice in a static link of
 * libnetelect.a.  A clang-built library therefore exports only the
 * sized entry points, under NETELECT_0; the compatibility split needs gcc. */
#if !defined(__clang__)
__asm__(".symver netelect__view_status_v0, netelect_view_status@NETELECT_0");
__asm__(".symver netelect__view_open_opts_v0, netelect_view_open_opts@NETELECT_0");
#endif

int netelect__view_status_v0(struct netelect_view *v, void *out)
{
    if (!out)
        return -EINVAL;
    struct netelect_view_status st = {.size = sizeof st};
    const int rc = netelect_view_status(v, &st);
    memcpy(out, (const unsigned char *)&st + V0_OFF, V0_STATUS_END - V0_OFF);
    return rc;
}

int netelect__view_open_opts_v0(const char *name, const void *opts, struct netelect_view **out)
{
    if (!opts)
        return netelect_view_open_opts(name, NULL, out);
    struct netelect_view_opts o = {.size = sizeof o};
    memcpy((unsigned char *)&o + V0_OFF, opts, V0_OPTS_END - V0_OFF);
    return netelect_view_open_opts(name, &o, out);
}
