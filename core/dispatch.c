/* SPDX-License-Identifier: MIT */
/*
 * One kernel table per ISA level, each filled once; the table in use is an
 * atomic pointer so netelect_set_isa() may switch levels while other threads
 * elect (they finish on whichever table they loaded, and every table stays
 * valid for the life of the process).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "config.h"
#include "core/dispatch.h"

void netelect__kernels_init(struct netelect__kernels *d, unsigned flags)
{
    /* The references are the oracle; the portable kernels are what runs. */
    d->elect = netelect__elect_scalar;
    d->rank = netelect__rank_scalar;
    d->topk = netelect__topk_scalar;
#if NETELECT_HAVE_X86_SIMD
    netelect__kernels_init_x86(d, flags);
#else
    (void)flags;
#endif
}

enum { LEVELS = 3 }; /* scalar, avx2, avx512 */

static struct netelect__kernels tables[LEVELS];
static unsigned detected;
static _Atomic(const struct netelect__kernels *) current;
static _Atomic unsigned current_flags;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static unsigned level_flags(int level)
{
    return level == 2 ? NETELECT_CPU_AVX2 | NETELECT_CPU_AVX512
           : level == 1 ? NETELECT_CPU_AVX2
                        : 0;
}

static void select_flags(unsigned mask)
{
    const unsigned eff = detected & mask;
    const int level = (eff & NETELECT_CPU_AVX512) ? 2 : (eff & NETELECT_CPU_AVX2) ? 1 : 0;
    atomic_store_explicit(&current_flags, level_flags(level), memory_order_relaxed);
    atomic_store_explicit(&current, &tables[level], memory_order_release);
}

static void init_once(void)
{
    /* Levels without compiled kernels are not levels at all. */
    detected = NETELECT_HAVE_X86_SIMD ? netelect__cpu_detect() : 0;
    for (int l = 0; l < LEVELS; l++)
        netelect__kernels_init(&tables[l], detected & level_flags(l));
    int mask = netelect__cpu_flags_for(getenv("NETELECT_ISA"));
    select_flags(mask < 0 ? ~0u : (unsigned)mask);
}

const struct netelect__kernels *netelect__kernels_get(void)
{
    const struct netelect__kernels *d = atomic_load_explicit(&current, memory_order_acquire);
    if (__builtin_expect(d != NULL, 1))
        return d;
    pthread_once(&once, init_once);
    return atomic_load_explicit(&current, memory_order_acquire);
}

NETELECT_API const char *netelect_isa(void)
{
    netelect__kernels_get();
    return netelect__cpu_name(atomic_load_explicit(&current_flags, memory_order_relaxed));
}

NETELECT_API int netelect_set_isa(const char *name)
{
    const int mask = netelect__cpu_flags_for(name);
    if (mask < 0)
        return -EINVAL;
    pthread_once(&once, init_once);
    select_flags((unsigned)mask);
    return 0;
}
