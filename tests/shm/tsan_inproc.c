/* SPDX-License-Identifier: MIT */
/*
 * The publish protocol under ThreadSanitizer: one writer thread and reader
 * threads in one process over one anonymous MAP_SHARED region (TSAN tracks
 * virtual addresses, so writer and readers must use the same mapping).
 * Built with -fsanitize=thread -DNETELECT_SHM_ATOMIC_PAYLOAD (readers copy
 * the member arrays out with relaxed atomics before running the kernels,
 * see shm/view.c) -DNETELECT_URCU_OUTOFLINE; a plain executable because
 * Criterion cannot run under TSAN.  Exit 0 pass, 1 fail, 77 skip; a TSAN
 * report exits 66 (halt_on_error).  The writer mixes full publishes and
 * deltas (netelect__writer_update).  Run it by hand with
 *   setarch $(uname -m) -R build/tests/shm/shm_tsan [seconds]
 * (setarch -R: TSAN runtimes of gcc 12 / clang 14 abort under
 * vm.mmap_rnd_bits=32, see toolchain-notes.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "netelect.h"
#include "tests/args.h"
#include "tests/shm/oracle.h"
#include "shm/view_internal.h"
#include "shm/writer.h"

#define NN 256
#define NCH 8
#define NMEM 64
/* Delta period: 3 versions in 4 are deltas changing the nodes with id = g
 * mod P (tests/shm/oracle.h, o_gen). */
#define P 5u

static uint64_t member(int c, int k)
{
    return (uint64_t)((c * 37 + k * 13) % NN) + 1;
}

/* The snapshot callback and its checks, over NMEM and member(). */
#include "tests/shm/snapshot.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct netelect_writer *g_w;
static struct netelect_view *g_v;
static uint64_t g_deadline;
static _Atomic uint64_t g_reads, g_torn, g_gaveup, g_publishes;

static void *writer_thread(void *arg)
{
    (void)arg;
    static struct netelect_wnode nodes[NN];
    static uint64_t mem[NCH][NMEM];
    static char names[NCH][8];
    struct netelect_wchan chans[NCH];
    for (int c = 0; c < NCH; c++) {
        snprintf(names[c], sizeof names[c], "c%d", c);
        for (int k = 0; k < NMEM; k++)
            mem[c][k] = member(c, k);
        chans[c] = (struct netelect_wchan){names[c], mem[c], NMEM};
    }
    static struct netelect_wnode upd[NN];
    for (uint64_t round = 0; now_ns() < g_deadline; round++) {
        uint64_t g = netelect__writer_generation(g_w) + 1;
        if (round % 4 == 0) {
            for (int i = 0; i < NN; i++) {
                const uint64_t id = (uint64_t)i + 1;
                nodes[i] = (struct netelect_wnode){.id = id, .rtt_ns = o_rtt(o_gen(g, id, P), id),
                                                   .healthy = o_ok(o_gen(g, id, P), id)};
            }
            if (netelect__writer_publish(g_w, nodes, NN, chans, NCH) != 0)
                abort();
        } else {
            /* Deltas in between (netelect__writer_update). */
            size_t n = 0;
            for (uint64_t id = 1; id <= NN; id++)
                if (o_gen(g, id, P) == g)
                    upd[n++] = (struct netelect_wnode){.id = id, .rtt_ns = o_rtt(g, id),
                                                       .healthy = o_ok(g, id)};
            if (netelect__writer_update(g_w, upd, n) != 0)
                abort();
        }
        netelect__writer_heartbeat(g_w);
        atomic_fetch_add(&g_publishes, 1);
    }
    return NULL;
}

static void *reader_thread(void *arg)
{
    uint64_t x = *(const uint64_t *)arg; /* the reader's PRNG seed */
    struct snapctx s = {.self = 0};
    while (now_ns() < g_deadline) {
        x = mix64(x + 1);
        s.c = (int)(x % NCH);
        int rc = netelect_view_read(g_v, snap_fn, &s);
        if (rc == -EAGAIN) {
            atomic_fetch_add(&g_gaveup, 1);
            continue;
        }
        if (rc || s.rc_members == NETELECT_ENOCHAN)
            continue; /* the first, empty version */
        atomic_fetch_add(&g_reads, 1);
        if (!check(&s, P))
            atomic_fetch_add(&g_torn, 1);
        char nm[8];
        snprintf(nm, sizeof nm, "c%d", s.c);
        struct netelect_result r;
        uint64_t g;
        if (netelect_view_elect_gen(g_v, nm, 0, &r, &g) == 0 && !check_elect(s.c, 0, g, r, P))
            atomic_fetch_add(&g_torn, 1);
        uint64_t rank[NMEM];
        size_t cnt;
        (void)netelect_view_rank(g_v, nm, 0, rank, NMEM, &cnt);
        (void)netelect_view_generation(g_v);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? test_arg_d(argv[1], 0, 86400, "tsan_inproc: SECONDS") : 3.0;
    const size_t size = 8u << 20;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return 77;
    struct netelect_writer_config cfg = {.self_id = 1, .slots = 2, .max_nodes = NN,
                                         .max_chans = NCH, .max_members = NCH * NMEM};
    int rc = netelect__writer_open_mem(&cfg, mem, size, &g_w);
    if (rc == 0)
        rc = netelect__view_open_mem(mem, size, &g_v);
    if (rc) {
        fprintf(stderr, "tsan: setup: %s\n", netelect_strerror(rc));
        return 1;
    }
    g_deadline = now_ns() + (uint64_t)(secs * 1e9);
    pthread_t w, r[3];
    static const uint64_t seeds[3] = {1, 2, 3};
    pthread_create(&w, NULL, writer_thread, NULL);
    for (int i = 0; i < 3; i++)
        pthread_create(&r[i], NULL, reader_thread, (void *)&seeds[i]);
    pthread_join(w, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(r[i], NULL);
    netelect_view_close(g_v);
    netelect__writer_close(g_w, true);
    munmap(mem, size);
    fprintf(stderr,
            "tsan: %" PRIu64 " publishes, %" PRIu64 " validated reads, %" PRIu64
            " torn accepted, %" PRIu64 " gave up\n",
            atomic_load(&g_publishes), atomic_load(&g_reads), atomic_load(&g_torn),
            atomic_load(&g_gaveup));
    return atomic_load(&g_torn) == 0 && atomic_load(&g_reads) > 0 ? 0 : 1;
}
