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
#elif NETELECT_HAVE_ARM_SIMD
    netelect__kernels_init_arm(d, flags);
#else
    (void)flags;
#endif
}

static struct netelect__kernels tables[NETELECT__CPU_MAX_LEVELS];
static unsigned detected;
static _Atomic(const struct netelect__kernels *) current;
static _Atomic unsigned current_flags;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void select_flags(unsigned mask)
{
    const unsigned eff = detected & mask;
    int level = 0; /* the highest level whose every flag is in eff */
    for (int l = 1; l < netelect__cpu_nlevels; l++)
        if ((netelect__cpu_levels[l] & eff) == netelect__cpu_levels[l])
            level = l;
    atomic_store_explicit(&current_flags, netelect__cpu_levels[level], memory_order_relaxed);
    atomic_store_explicit(&current, &tables[level], memory_order_release);
}

static void init_once(void)
{
    /* Levels without compiled kernels are not levels at all. */
    detected = NETELECT_HAVE_X86_SIMD || NETELECT_HAVE_ARM_SIMD ? netelect__cpu_detect() : 0;
    for (int l = 0; l < netelect__cpu_nlevels; l++)
        netelect__kernels_init(&tables[l], detected & netelect__cpu_levels[l]);
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
