/* SPDX-License-Identifier: MIT */
/*
 * The AArch64 rung of netelect__kernels_init, dav1d's ladder as on x86: the
 * neon level overwrites the entries it implements, and only when the flags
 * grant it.
 */
#include "core/dispatch.h"

void netelect__kernels_init_arm(struct netelect__kernels *d, unsigned flags)
{
    if (!(flags & NETELECT_CPU_NEON))
        return;
    d->elect = netelect__elect_neon;
    d->rank = netelect__rank_neon;
    d->topk = netelect__topk_neon;
}
