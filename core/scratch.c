/* SPDX-License-Identifier: MIT */
/*
 * Per-thread scratch memory for rank (and top-k with a large k).
 *
 * A sort of n keys needs O(n) room, and asking malloc for it on every call
 * would cost more than the sort at small n.  Each thread keeps the largest
 * buffer it has needed (up to NETELECT__SCRATCH_KEEP bytes; anything larger
 * is given back after the call) and a pthread key's destructor frees it
 * when the thread exits.  Nothing here can fail loudly: a NULL return tells
 * the caller to use the allocation-free reference instead.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/dispatch.h"

/* Enough for 1M-entry ranks' 64 MiB would be excessive to pin per thread. */
#define NETELECT__SCRATCH_KEEP ((size_t)8 << 20)

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
    if (bytes <= tls_cap)
        return tls_buf;
    pthread_once(&key_once, make_key);
    /* 64-byte alignment keeps the sort's records off cache-line splits. */
    void *p = NULL;
    const size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || posix_memalign(&p, 64, rounded) != 0)
        return NULL;
    if (!key_ok || rounded > NETELECT__SCRATCH_KEEP)
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
