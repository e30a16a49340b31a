/* SPDX-License-Identifier: MIT */
/*
 * Per-thread scratch memory for rank (and top-k with a large k).
 *
 * A sort of n keys needs O(n) room, and asking malloc for it on every call
 * would cost more than the sort at small n.  Each thread keeps the largest
 * buffer it has needed and a pthread key's destructor frees it when the
 * thread exits.  Nothing here can fail loudly: a NULL return tells the
 * caller to use the allocation-free reference instead.
 *
 * How much is kept.  Up to NETELECT__SCRATCH_SMALL, always.  A larger
 * buffer (up to NETELECT__SCRATCH_KEEP_MAX) is kept only while the calls
 * keep needing more than NETELECT__SCRATCH_SMALL: the first call that needs
 * less gives it back.  Allocating it per call is what rank at 1M entries
 * used to do, and then glibc's malloc decides whether each call gets fresh
 * memory: on the 2-vCPU KVM guest the benchmarks run on, 8 of 19 repeated
 * 1M-entry ranks took ~53 ms instead of ~16 ms, each faulting in ~3,500
 * pages of a newly grown heap (bench/results/2026-12-06-scratch/).  A
 * thread that stops after a large rank pins that buffer until it exits or
 * ranks something small.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/dispatch.h"

#define NETELECT__SCRATCH_SMALL ((size_t)8 << 20)
/* 2 x 16 B records for about 2M candidates, plus histograms. */
#define NETELECT__SCRATCH_KEEP_MAX ((size_t)64 << 20)

static pthread_key_t key;
static int key_ok;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static _Thread_local void *tls_buf;
static _Thread_local size_t tls_cap;

static void free_buf(void *p)
{
    free(p);
}

static void make_key(void)
{
    key_ok = pthread_key_create(&key, free_buf) == 0;
}

void *netelect__scratch_get(size_t bytes)
{
    const int shrink = tls_cap > NETELECT__SCRATCH_SMALL && bytes <= NETELECT__SCRATCH_SMALL;
    if (bytes <= tls_cap && !shrink)
        return tls_buf;
    pthread_once(&key_once, make_key);
    /* 64-byte alignment keeps the sort's records off cache-line splits. */
    void *p = NULL;
    const size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || posix_memalign(&p, 64, rounded) != 0)
        return bytes <= tls_cap ? tls_buf : NULL; /* a shrink can wait */
    if (!key_ok || rounded > NETELECT__SCRATCH_KEEP_MAX)
        return p; /* handed back by netelect__scratch_put */
    if (pthread_setspecific(key, p) != 0) {
        return p;
    }
    free(tls_buf);
    tls_buf = p;
    tls_cap = rounded;
    return p;
}

void netelect__scratch_put(void *p)
{
    if (p && p != tls_buf)
        free(p);
}
