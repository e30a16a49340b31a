/* SPDX-License-Identifier: MIT */
/*
 * The x86 rung of netelect__kernels_init: each level overwrites the entries it
 * implements and returns as soon as the CPU lacks the next one, so a table
 * never holds a kernel the flags do not allow (dav1d's ladder).  rank is a
 * radix sort whose passes are scatters, which gain nothing from wider
 * vectors; avx512 vectorizes its pass 1 and sorts few candidates with a
 * bitonic network instead of the passes.
 */
#include "core/dispatch.h"

void netelect__kernels_init_x86(struct netelect__kernels *d, unsigned flags)
{
    if (!(flags & NETELECT_CPU_AVX2))
        return;
    d->elect = netelect__elect_avx2;
    d->topk = netelect__topk_avx2;

    if (!(flags & NETELECT_CPU_AVX512))
        return;
    d->elect = netelect__elect_avx512;
    d->topk = netelect__topk_avx512;
    d->rank = netelect__rank_avx512;
}
