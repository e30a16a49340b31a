/* SPDX-License-Identifier: MIT */
/* Reader internals reachable from tests (netelect_internal_dep). */
#ifndef SHM_VIEW_INTERNAL_H
#define SHM_VIEW_INTERNAL_H

#include <stdint.h>

#include "netelect.h"

typedef uint64_t (*netelect__clock_fn)(void *ctx);
/* Replaces the reader's clock (CLOCK_MONOTONIC ns) for staleness tests;
 * NULL restores it.  Call before other threads use the view. */
void netelect__view_set_clock(struct netelect_view *v, netelect__clock_fn fn, void *ctx);

#endif /* SHM_VIEW_INTERNAL_H */
