/* SPDX-License-Identifier: MIT */
/* Reader internals reachable from tests (netelect_internal_dep). */
#ifndef SHM_VIEW_INTERNAL_H
#define SHM_VIEW_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "netelect.h"

typedef uint64_t (*netelect__clock_fn)(void *ctx);
/* Replaces the reader's clock (CLOCK_MONOTONIC ns) for staleness tests;
 * NULL restores it.  Call before other threads use the view. */
void netelect__view_set_clock(struct netelect_view *v, netelect__clock_fn fn, void *ctx);

/* A view over caller-provided memory holding a segment (the TSAN test's
 * anonymous MAP_SHARED region): validated as a file would be, never
 * reattached.  Returns as netelect_view_open(). */
int netelect__view_open_mem(const void *mem, size_t size, struct netelect_view **out);

#endif /* SHM_VIEW_INTERNAL_H */
