/* SPDX-License-Identifier: MIT */
/*
 * checksimd: the differential harness for the kernel tables (checkasm
 * model).  For every ISA level the CPU has, the dispatch table is rebuilt
 * with masked flags and every kernel pointer not already tested at a lower
 * level is compared with the scalar reference (netelect__*_ref), exactly,
 * on random and adversarial inputs.
 *
 * Inputs live in guard-paged buffers: a case either ends exactly at a
 * PROT_NONE page (an over-read past n faults) or starts at a chosen
 * misalignment after one.  Output buffers are canary-filled beyond the
 * returned count.  Each test re-seeds from the run seed and its own name, so
 * one test reproduces alone; a failure is shrunk to a small case and
 * printed in full.
 *
 * Race mode (after the differential tests, --race MS of it, 0 to skip):
 * the kernels' "inputs that change" contract (core/kernel.h).  Another
 * thread keeps rewriting the input (health all down / all up / random,
 * RTTs narrow / spanning 64 bits / unknown, ids swapped between two sets
 * and self) while each kernel runs on it, for every ISA level, at sizes
 * around the rank and top-k thresholds; each call must write nothing
 * outside out[0, count) (canaries on both sides), return count <= n
 * (rank) or <= min(k, n) (top-k), and return only ids the input held.
 * Inputs end at a guard page, so an over-read faults.
 *
 *   checksimd [--seed N] [--isa scalar|avx2|avx512|neon] [--function elect|rank|topk]
 *             [--bench] [--no-huge] [--race MS]
 * NETELECT_TEST_SEED sets the seed too.  Exit status: 0 pass, 1 failure.
 */
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "config.h"
#include "core/dispatch.h"

#define UNK NETELECT_RTT_UNKNOWN

/* ---- PRNG: splitmix64, fixed forever so seeds stay meaningful ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static uint64_t run_seed;

static void reseed(const char *name, uint64_t salt)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    rng_state = run_seed ^ h ^ (salt * 0x9e3779b97f4a7c15ull);
}

/* ---- guarded buffers ---- */

struct gbuf {
    unsigned char *base; /* first usable byte, right after a guard page */
    size_t size;         /* usable bytes, followed by a guard page */
};

static long page;

static int gbuf_init(struct gbuf *g, size_t bytes)
{
    const size_t len = (bytes + (size_t)page - 1) / (size_t)page * (size_t)page;
    unsigned char *p = mmap(NULL, len + 2 * (size_t)page, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    if (mprotect(p, (size_t)page, PROT_NONE) ||
        mprotect(p + (size_t)page + len, (size_t)page, PROT_NONE))
        return -errno;
    g->base = p + page;
    g->size = len;
    return 0;
}

/* Where an array of `bytes` goes: flush against the end guard, or `off`
 * bytes after the start guard. */
static void *gbuf_place(const struct gbuf *g, size_t bytes, int at_end, size_t off)
{
    return at_end ? g->base + g->size - bytes : g->base + off;
}

/* ---- cases ---- */

struct tcase {
    size_t n;
    uint64_t *ids, *rtt;
    uint8_t *h;
    uint64_t self;
};

enum mode {
    M_RAND,     /* benchmark-like: random ids, 100us..200ms, 5% unknown, 10% down */
    M_TIES,     /* few distinct rtts and ids: ties and duplicates everywhere */
    M_EQUAL,    /* one rtt for all */
    M_DESC,     /* rtt descending: the threshold filters' adversary */
    M_ASC,      /* rtt ascending */
    M_DOWN,     /* all unhealthy */
    M_EXTREME,  /* ids and rtts from {0, 1, MAX-1, MAX} */
    M_SELFDUP,  /* self many times, mixed health and rtt */
    M_HBYTES,   /* health bytes of every value */
    M_UNKNOWN,  /* every rtt unknown */
    M_SMALLID,  /* ids 0..n (shared top bits), ms-quantised rtts */
    M_EQDESCID, /* one rtt, ids descending: top-k's adversary */
    M_ZERO,     /* many rtt 0 entries next to self */
    M_OUTLIER,  /* dense small ids plus one huge one, few rtts: long tie runs */
    M_SPAN,     /* rtt spans near 64 - log2(n) bits: rank's packed-key boundary */
    M_COUNT
};

static const char *const mode_name[M_COUNT] = {
    "rand", "ties", "equal", "desc", "asc", "down", "extreme",
    "selfdup", "hbytes", "unknown", "smallid", "eqdescid", "zero", "outlier", "span",
};

static int cmp_u64_desc(const void *a, const void *b)
{
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_u64_asc(const void *a, const void *b)
{
    return -cmp_u64_desc(a, b);
}

static uint64_t rand_rtt(void)
{
    return rnd_below(20) == 0 ? UNK : 100000 + rnd_below(200000000 - 100000);
}

static uint8_t rand_health(unsigned down_pct)
{
    if (rnd_below(100) < down_pct)
        return 0;
    static const uint8_t vals[] = {1, 1, 1, 2, 0x80, 0xff, 0x7f};
    return vals[rnd_below(sizeof vals)];
}

static void gen(struct tcase *c, enum mode m)
{
    const size_t n = c->n;
    static const uint64_t ext[] = {0, 1, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < n; i++) {
        c->ids[i] = rnd();
        c->rtt[i] = rand_rtt();
        c->h[i] = rand_health(10);
    }
    switch (m) {
    case M_RAND:
    case M_COUNT:
        break;
    case M_TIES:
        for (size_t i = 0; i < n; i++) {
            c->ids[i] = rnd_below(8) * 0x1000000000000001ull;
            c->rtt[i] = (uint64_t[]){0, 5, 5, 7, UNK}[rnd_below(5)];
        }
        break;
    case M_EQUAL: {
        const uint64_t r = rnd_below(3) == 0 ? 0 : rand_rtt();
        for (size_t i = 0; i < n; i++)
            c->rtt[i] = r;
        break;
    }
    case M_DESC:
        qsort(c->rtt, n, sizeof *c->rtt, cmp_u64_desc);
        break;
    case M_ASC:
        qsort(c->rtt, n, sizeof *c->rtt, cmp_u64_asc);
        break;
    case M_DOWN:
        for (size_t i = 0; i < n; i++)
            c->h[i] = 0;
        break;
    case M_EXTREME:
        for (size_t i = 0; i < n; i++) {
            c->ids[i] = ext[rnd_below(4)];
            c->rtt[i] = ext[rnd_below(4)];
        }
        break;
    case M_SELFDUP:
        break; /* self is planted below */
    case M_HBYTES:
        for (size_t i = 0; i < n; i++)
            c->h[i] = (uint8_t)rnd();
        break;
    case M_UNKNOWN:
        for (size_t i = 0; i < n; i++)
            c->rtt[i] = UNK;
        break;
    case M_SMALLID:
        for (size_t i = 0; i < n; i++) {
            c->ids[i] = rnd_below(n + 1);
            c->rtt[i] = c->rtt[i] == UNK ? UNK : (c->rtt[i] / 1000000 + 1) * 1000000;
        }
        break;
    case M_EQDESCID:
        for (size_t i = 0; i < n; i++) {
            c->ids[i] = UINT64_MAX - i;
            c->rtt[i] = 1000;
        }
        break;
    case M_ZERO:
        for (size_t i = 0; i < n; i++)
            if (rnd_below(3) == 0)
                c->rtt[i] = 0;
        break;
    case M_SPAN: {
        int ib = 0;
        while (n > 1 && ((size_t)1 << ib) < n)
            ib++;
        const int tb = 63 - ib + (int)rnd_below(3); /* 63..65 - ib bits */
        const uint64_t top = tb >= 64 ? UINT64_MAX - 1 : ((uint64_t)1 << tb) - 1;
        for (size_t i = 0; i < n; i++)
            c->rtt[i] = rnd_below(8) == 0 ? UNK : (rnd() & top) % (UINT64_MAX - 1);
        if (n >= 2) {
            c->rtt[rnd_below(n)] = 0;
            c->rtt[rnd_below(n)] = top;
        }
        break;
    }
    case M_OUTLIER:
        /* The huge id makes every small one share the top id digit. */
        for (size_t i = 0; i < n; i++) {
            c->ids[i] = rnd_below(4 * n + 1);
            c->rtt[i] = (uint64_t[]){0, 1000, 1000, UNK}[rnd_below(4)];
        }
        if (n)
            c->ids[rnd_below(n)] = (uint64_t)1 << (40 + rnd_below(24));
        break;
    }
    /* Self: absent, present once, present many times; healthy or not. */
    const unsigned how = (unsigned)rnd_below(m == M_SELFDUP ? 2 : 4);
    if (n == 0 || how == 3) {
        c->self = rnd_below(2) ? rnd() : ext[rnd_below(4)];
    } else {
        const size_t copies = how == 0 ? 1 : 1 + rnd_below(n < 8 ? n : n / 4);
        c->self = how == 2 ? ext[rnd_below(4)] : c->ids[rnd_below(n)];
        for (size_t j = 0; j < copies; j++) {
            const size_t i = rnd_below(n);
            c->ids[i] = c->self;
            if (m == M_SELFDUP)
                c->h[i] = rand_health(50);
        }
    }
}

/* ---- kernels under test ---- */

enum fn { F_ELECT, F_RANK, F_TOPK, F_COUNT };
static const char *const fn_name[F_COUNT] = {"elect", "rank", "topk"};

static const size_t ks[] = {0, 1, 3, 8, 64, SIZE_MAX - 1, SIZE_MAX}; /* last two: n, n+1 */
#define NKS (sizeof ks / sizeof ks[0])

static size_t k_value(size_t ki, size_t n)
{
    return ks[ki] == SIZE_MAX - 1 ? n : ks[ki] == SIZE_MAX ? n + 1 : ks[ki];
}

/* A kernel of any of the three shapes; function pointers stay function
 * pointers (ISO C has no conversion to void *). */
typedef union {
    netelect__elect_fn elect;
    netelect__rank_fn rank;
    netelect__topk_fn topk;
} kfn;

static void (*kfn_id(enum fn f, kfn k))(void)
{
    return f == F_ELECT ? (void (*)(void))k.elect
           : f == F_RANK ? (void (*)(void))k.rank
                         : (void (*)(void))k.topk;
}

#define CANARY 0xa5a5a5a5a5a5a5a5ull
#define SLACK 16

static uint64_t *out_a, *out_b; /* capacity: max n + max k + SLACK */

/* Runs ref and new on c; returns 0 when equal, else writes why to msg. */
static int run_one(enum fn f, kfn kernel, const struct tcase *c, size_t k, char *msg,
                   size_t msglen)
{
    if (f == F_ELECT) {
        const struct netelect_result a = netelect__elect_ref(c->ids, c->rtt, c->h, c->n, c->self);
        const struct netelect_result b =
            kernel.elect(c->ids, c->rtt, c->h, c->n, c->self);
        if (a.outcome == b.outcome && a.winner == b.winner)
            return 0;
        snprintf(msg, msglen, "ref {%d, %#" PRIx64 "} new {%d, %#" PRIx64 "}", a.outcome,
                 a.winner, b.outcome, b.winner);
        return 1;
    }
    const size_t cap = (f == F_RANK ? c->n : k) + SLACK;
    for (size_t i = 0; i < cap; i++)
        out_a[i] = out_b[i] = CANARY;
    size_t ca, cb;
    if (f == F_RANK) {
        ca = netelect__rank_ref(c->ids, c->rtt, c->h, c->n, c->self, out_a);
        cb = kernel.rank(c->ids, c->rtt, c->h, c->n, c->self, out_b);
    } else {
        ca = netelect__topk_ref(c->ids, c->rtt, c->h, c->n, c->self, k, out_a);
        cb = kernel.topk(c->ids, c->rtt, c->h, c->n, c->self, k, out_b);
    }
    if (ca != cb) {
        snprintf(msg, msglen, "count: ref %zu new %zu", ca, cb);
        return 1;
    }
    for (size_t i = 0; i < ca; i++)
        if (out_a[i] != out_b[i]) {
            snprintf(msg, msglen, "out[%zu]: ref %#" PRIx64 " new %#" PRIx64, i, out_a[i],
                     out_b[i]);
            return 1;
        }
    for (size_t i = cb; i < cap; i++)
        if (out_b[i] != CANARY) {
            snprintf(msg, msglen, "wrote out[%zu] = %#" PRIx64 " past count %zu", i, out_b[i],
                     cb);
            return 1;
        }
    return 0;
}

/* ---- failure reporting: shrink, then print ---- */

static void print_case(const struct tcase *c, size_t k, enum fn f)
{
    printf("    n = %zu, self_id = %#" PRIx64, c->n, c->self);
    if (f == F_TOPK)
        printf(", k = %zu", k);
    printf("\n");
    const size_t shown = c->n < 64 ? c->n : 64;
    for (size_t i = 0; i < shown; i++)
        printf("    [%3zu] id %#018" PRIx64 "  rtt %#018" PRIx64 "  healthy %u\n", i,
               c->ids[i], c->rtt[i], c->h[i]);
    if (shown < c->n)
        printf("    ... %zu more (rerun with the printed seed to get them)\n", c->n - shown);
}

/*
 * Removes entries while the failure persists (copies into malloc'd arrays:
 * alignment-dependent failures may vanish, which is why the original case
 * is described too).  Greedy halving then single-entry removal.
 */
static void shrink_and_print(enum fn f, kfn kernel, const struct tcase *orig, size_t k)
{
    struct tcase c = *orig;
    c.ids = malloc((orig->n + 1) * 8);
    c.rtt = malloc((orig->n + 1) * 8);
    c.h = malloc(orig->n + 1);
    struct tcase t = c;
    t.ids = malloc((orig->n + 1) * 8);
    t.rtt = malloc((orig->n + 1) * 8);
    t.h = malloc(orig->n + 1);
    if (!c.ids || !c.rtt || !c.h || !t.ids || !t.rtt || !t.h) {
        print_case(orig, k, f);
        goto out; /* frees whichever allocations succeeded */
    }
    memcpy(c.ids, orig->ids, orig->n * 8);
    memcpy(c.rtt, orig->rtt, orig->n * 8);
    memcpy(c.h, orig->h, orig->n);
    char msg[256];
    if (!run_one(f, kernel, &c, k, msg, sizeof msg)) {
        printf("  (does not fail once copied to fresh buffers: alignment/placement dependent)\n");
        print_case(orig, k, f);
        goto out;
    }
    for (size_t chunk = c.n / 2; chunk >= 1; chunk /= 2) {
        for (size_t at = 0; at + chunk <= c.n && c.n > 1;) {
            t.n = c.n - chunk;
            memcpy(t.ids, c.ids, at * 8);
            memcpy(t.rtt, c.rtt, at * 8);
            memcpy(t.h, c.h, at);
            memcpy(t.ids + at, c.ids + at + chunk, (c.n - at - chunk) * 8);
            memcpy(t.rtt + at, c.rtt + at + chunk, (c.n - at - chunk) * 8);
            memcpy(t.h + at, c.h + at + chunk, c.n - at - chunk);
            const size_t tk = f == F_TOPK && k > t.n ? t.n + (k > c.n) : k;
            if (run_one(f, kernel, &t, tk, msg, sizeof msg)) {
                struct tcase s = c;
                c.n = t.n;
                c.ids = t.ids;
                c.rtt = t.rtt;
                c.h = t.h;
                t.ids = s.ids;
                t.rtt = s.rtt;
                t.h = s.h;
                k = tk;
            } else {
                at += chunk;
            }
        }
    }
    run_one(f, kernel, &c, k, msg, sizeof msg);
    printf("  minimal reproducer (%s):\n", msg);
    print_case(&c, k, f);
out:
    free(c.ids);
    free(c.rtt);
    free(c.h);
    free(t.ids);
    free(t.rtt);
    free(t.h);
}

/* ---- the test driver ---- */

static struct gbuf g_ids, g_rtt, g_h;
static size_t max_n;
static int huge = 1;
static unsigned long long cases_run;

/* What is running, for the crash handler (a guard-page hit is a SIGSEGV). */
static char current[256];

static void on_crash(int sig)
{
    static const char head[] = "CRASH (signal) while running: ";
    if (write(STDOUT_FILENO, head, sizeof head - 1) < 0 ||
        write(STDOUT_FILENO, current, strnlen(current, sizeof current)) < 0 ||
        write(STDOUT_FILENO, "\n", 1) < 0)
        _exit(1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int check_case(enum fn f, kfn kernel, const char *kname, const char *test,
                      uint64_t salt, size_t n, enum mode m, int at_end, size_t off)
{
    struct tcase c;
    c.n = n;
    c.ids = gbuf_place(&g_ids, n * 8, at_end, off);
    c.rtt = gbuf_place(&g_rtt, n * 8, at_end, off);
    c.h = gbuf_place(&g_h, n, at_end, off / 8 + (off & 7));
    gen(&c, m);
    const size_t nk = f == F_TOPK ? NKS : 1;
    for (size_t ki = 0; ki < nk; ki++) {
        const size_t k = f == F_TOPK ? k_value(ki, n) : 0;
        char msg[256];
        cases_run++;
        snprintf(current, sizeof current,
                 "%s test %s case %" PRIu64 " n=%zu k=%zu mode=%s %s+%zu (seed %" PRIu64 ")",
                 kname, test, salt, n, k, mode_name[m], at_end ? "end-guard" : "start", off,
                 run_seed);
        if (!run_one(f, kernel, &c, k, msg, sizeof msg))
            continue;
        printf("FAIL %s [%s] test %s case %" PRIu64 ": n=%zu mode=%s %s+%zu: %s\n", kname,
               fn_name[f], test, salt, n, mode_name[m], at_end ? "end-guard" : "start", off,
               msg);
        printf("  rerun: checksimd --seed %" PRIu64 " --function %s\n", run_seed, fn_name[f]);
        shrink_and_print(f, kernel, &c, k);
        return 1;
    }
    return 0;
}

static const size_t offs[] = {0, 8, 16, 24, 40, 56};
#define NOFFS (sizeof offs / sizeof offs[0])

/* Every n in [0, 300], and around each vector/block multiple up to 2 KiB. */
static int test_sizes(enum fn f, kfn kernel, const char *kname)
{
    int fails = 0;
    reseed("sizes", f);
    uint64_t salt = 0;
    for (size_t n = 0; n <= 300 && fails < 3; n++, salt++) {
        const enum mode m = (enum mode)(n % M_COUNT);
        fails += check_case(f, kernel, kname, "sizes", salt, n, m, (int)(n & 1),
                            offs[n % NOFFS]);
        fails += check_case(f, kernel, kname, "sizes", salt, n, M_RAND, !(n & 1), offs[n % 3]);
    }
    static const size_t widths[] = {4, 8, 16, 32, 64};
    for (size_t w = 0; w < sizeof widths / sizeof *widths && fails < 3; w++)
        for (size_t mul = 1; mul * widths[w] <= 2048 && fails < 3; mul *= 2)
            for (int d = -1; d <= 1; d++, salt++) {
                const size_t n = mul * widths[w] + (size_t)d;
                fails += check_case(f, kernel, kname, "widths", salt, n,
                                    (enum mode)(salt % M_COUNT), (int)(salt & 1),
                                    offs[salt % NOFFS]);
            }
    return fails;
}

/* Every mode at a spread of sizes, both placements, every misalignment. */
static int test_modes(enum fn f, kfn kernel, const char *kname)
{
    static const size_t sizes[] = {1, 2, 3, 7, 15, 31, 33, 63, 65, 100, 257, 1000, 4099};
    int fails = 0;
    for (int m = 0; m < M_COUNT && fails < 3; m++) {
        char test[32];
        snprintf(test, sizeof test, "mode-%s", mode_name[m]);
        reseed(test, f);
        uint64_t salt = 0;
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (size_t o = 0; o < NOFFS && fails < 3; o++, salt++)
                fails += check_case(f, kernel, kname, test, salt, sizes[s], (enum mode)m,
                                    (int)(o & 1), offs[o]);
    }
    return fails;
}

static int test_large(enum fn f, kfn kernel, const char *kname)
{
    int fails = 0;
    reseed("large", f);
    for (int m = 0; m < M_COUNT && fails < 3; m++)
        fails += check_case(f, kernel, kname, "large", (uint64_t)m, 10000, (enum mode)m,
                            m & 1, offs[m % NOFFS]);
    if (huge && !fails) {
        reseed("huge", f);
        fails += check_case(f, kernel, kname, "huge", 0, 1000000, M_RAND, 1, 0);
        fails += check_case(f, kernel, kname, "huge", 1, 1000000, M_DESC, 0, 8);
    }
    return fails;
}

/* ---- --bench: quick ratios, the real benchmarks live in bench/ ---- */

/* Thread CPU time: on a shared 2-core box, time spent descheduled is not
 * the kernel's. */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static volatile uint64_t sink;

/* Median over 11 batches of ~2 ms, rotating input copies (~256 KiB). */
static double bench_one(enum fn f, kfn kernel, struct tcase *copies, size_t ncopies,
                        size_t k)
{
    double med[11];
    size_t iters = 1;
    for (;;) {
        const double t0 = now_ns();
        for (size_t it = 0; it < iters; it++) {
            const struct tcase *c = &copies[it % ncopies];
            if (f == F_ELECT)
                sink += kernel.elect(c->ids, c->rtt, c->h, c->n, c->self).winner;
            else if (f == F_RANK)
                sink += kernel.rank(c->ids, c->rtt, c->h, c->n, c->self, out_a);
            else
                sink += kernel.topk(c->ids, c->rtt, c->h, c->n, c->self, k, out_a);
        }
        const double dt = now_ns() - t0;
        if (dt > 2e6 || iters > (1u << 30)) {
            for (int b = 0; b < 11; b++) {
                const double t1 = now_ns();
                for (size_t it = 0; it < iters; it++) {
                    const struct tcase *c = &copies[it % ncopies];
                    if (f == F_ELECT)
                        sink += kernel.elect(c->ids, c->rtt, c->h, c->n, c->self)
                                    .winner;
                    else if (f == F_RANK)
                        sink += kernel.rank(c->ids, c->rtt, c->h, c->n, c->self,
                                                            out_a);
                    else
                        sink += kernel.topk(c->ids, c->rtt, c->h, c->n, c->self,
                                                            k, out_a);
                }
                med[b] = (now_ns() - t1) / (double)iters;
            }
            qsort(med, 11, sizeof *med, cmp_double);
            return med[5];
        }
        iters *= 2;
    }
}

static int bench(const struct netelect__kernels *tabs, const char *const *names, int ntabs)
{
    static const size_t sizes[] = {3, 16, 256, 10000};
    printf("ns/call (thread CPU time), median of 11 batches of >= 2 ms; inputs rotated, "
           "self absent, k = 8\n");
    printf("%-6s %-5s %6s", "fn", "order", "n");
    printf(" %10s", "ref");
    for (int t = 0; t < ntabs; t++)
        printf(" %10s", names[t]);
    printf("\n");
    for (int f = 0; f < F_COUNT; f++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (int desc = 0; desc < 2; desc++) {
                const size_t n = sizes[s];
                if (desc && n < 256)
                    continue;
                size_t ncopies = (256u << 10) / (17 * n + 1);
                ncopies = ncopies < 1 ? 1 : ncopies > 1024 ? 1024 : ncopies;
                if (f == F_RANK && n >= 10000)
                    ncopies = 8;
                struct tcase *copies = calloc(ncopies, sizeof *copies);
                reseed("bench", n);
                for (size_t c = 0; c < ncopies; c++) {
                    copies[c].n = n;
                    copies[c].ids = aligned_alloc(64, (n * 8 + 63) / 64 * 64);
                    copies[c].rtt = aligned_alloc(64, (n * 8 + 63) / 64 * 64);
                    copies[c].h = aligned_alloc(64, (n + 63) / 64 * 64);
                    for (size_t i = 0; i < n; i++) {
                        copies[c].ids[i] = rnd();
                        copies[c].rtt[i] = rand_rtt();
                        copies[c].h[i] = rand_health(10);
                    }
                    if (desc)
                        qsort(copies[c].rtt, n, 8, cmp_u64_desc);
                    copies[c].self = rnd(); /* absent: the worst case */
                }
                kfn ref;
                if (f == F_ELECT)
                    ref.elect = netelect__elect_ref;
                else if (f == F_RANK)
                    ref.rank = netelect__rank_ref;
                else
                    ref.topk = netelect__topk_ref;
                printf("%-6s %-5s %6zu %10.1f", fn_name[f], desc ? "desc" : "rand", n,
                       bench_one((enum fn)f, ref, copies, ncopies, 8));
                for (int t = 0; t < ntabs; t++) {
                    kfn kp;
                    if (f == F_ELECT)
                        kp.elect = tabs[t].elect;
                    else if (f == F_RANK)
                        kp.rank = tabs[t].rank;
                    else
                        kp.topk = tabs[t].topk;
                    printf(" %10.1f", bench_one((enum fn)f, kp, copies, ncopies, 8));
                }
                printf("\n");
                fflush(stdout);
                for (size_t c = 0; c < ncopies; c++) {
                    free(copies[c].ids);
                    free(copies[c].rtt);
                    free(copies[c].h);
                }
                free(copies);
            }
    return 0;
}

/* ---- --race: inputs that change while the kernel runs ---- */

struct race {
    size_t n;
    uint64_t *ids, *rtt; /* the kernel's input: rewritten by the flipper */
    uint8_t *h;
    const uint64_t *ida, *idb; /* ids[i] is always ida[i], idb[i] or self */
    uint64_t self;
    uint64_t seed;
    atomic_int stop;
    atomic_ulong flips;
};

static uint64_t race_rnd(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* One RTT from one of three regimes: narrow (rank packs keys), spanning
 * 64 bits (rank's record path), or the specials. */
static uint64_t race_rtt(uint64_t *st, unsigned regime)
{
    const uint64_t x = race_rnd(st);
    switch (regime % 3) {
    case 0:
        return 100000 + x % 200000000;
    case 1:
        return x % (UINT64_MAX - 1);
    default:
        return (uint64_t[]){0, 1, UINT64_MAX - 1, UNK}[x & 3];
    }
}

/* The other thread: plain stores into the kernel's input, as a writer
 * reusing a segment slot would make them. */
static void *race_flipper(void *arg)
{
    struct race *r = arg;
    uint64_t st = r->seed;
    const size_t n = r->n;
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        const uint64_t x = race_rnd(&st);
        const size_t a = n ? (size_t)(x >> 8) % n : 0;
        const size_t len = n - a < 1 + (size_t)((x >> 40) % 512) ? n - a : 1 + (size_t)((x >> 40) % 512);
        switch (x % 8) {
        case 0: /* all down: pass 1 of a sort sees few candidates ... */
            memset(r->h, 0, n);
            break;
        case 1: /* ... and then all up */
            memset(r->h, 1, n);
            break;
        case 2:
            for (size_t i = a; i < a + len; i++)
                r->h[i] = (uint8_t)race_rnd(&st);
            break;
        case 3:
        case 4: {
            const unsigned regime = (unsigned)(x >> 4);
            for (size_t i = a; i < a + len; i++)
                r->rtt[i] = race_rtt(&st, regime);
            break;
        }
        case 5: {
            const uint64_t v = race_rtt(&st, (unsigned)(x >> 4));
            for (size_t i = 0; i < n; i++)
                r->rtt[i] = v;
            break;
        }
        case 6:
            for (size_t i = a; i < a + len; i++) {
                const uint64_t y = race_rnd(&st) & 7;
                r->ids[i] = y == 0 ? r->self : y < 4 ? r->ida[i] : r->idb[i];
            }
            break;
        default:
            for (size_t i = 0; i < n; i++)
                r->h[i] = (uint8_t)(i & 1);
            break;
        }
        atomic_fetch_add_explicit(&r->flips, 1, memory_order_relaxed);
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int race_member(const uint64_t *set, size_t len, uint64_t id)
{
    return bsearch(&id, set, len, sizeof id, cmp_u64) != NULL;
}

static unsigned long long race_calls, race_overlaps;

/* Runs `kernel` on input that r's flipper rewrites, for `ns` of thread
 * CPU time (at least a few calls); 0 when every call kept the contract. */
static int race_case(enum fn f, kfn kernel, const char *kname, size_t n, size_t k, double ns,
                     uint64_t salt)
{
    struct race r;
    memset(&r, 0, sizeof r);
    r.n = n;
    /* Flush against the end guard pages: an over-read faults. */
    r.ids = gbuf_place(&g_ids, n * 8, 1, 0);
    r.rtt = gbuf_place(&g_rtt, n * 8, 1, 0);
    r.h = gbuf_place(&g_h, n, 1, 0);
    uint64_t *ida = malloc(n * 8 + 8), *idb = malloc(n * 8 + 8), *set = malloc(2 * n * 8 + 8);
    if (!ida || !idb || !set) {
        free(ida), free(idb), free(set);
        printf("  %-14s race: out of memory\n", kname);
        return 1;
    }
    reseed("race", salt);
    for (size_t i = 0; i < n; i++) {
        ida[i] = rnd();
        idb[i] = rnd_below(4) ? rnd() : rnd_below(64); /* some small ids: shared top bits */
        r.ids[i] = ida[i];
        r.rtt[i] = rand_rtt();
        r.h[i] = rand_health(10);
    }
    r.ida = ida;
    r.idb = idb;
    r.self = n ? ida[rnd_below(n)] : 1;
    r.seed = rnd();
    memcpy(set, ida, n * 8);
    memcpy(set + n, idb, n * 8);
    set[2 * n] = r.self;
    qsort(set, 2 * n + 1, 8, cmp_u64);

    const size_t cap = f == F_RANK ? n : k, limit = f == F_RANK ? n : k < n ? k : n;
    uint64_t *out = out_b + SLACK; /* canaries: out_b[0, SLACK) and past the count */
    pthread_t th;
    atomic_init(&r.stop, 0);
    atomic_init(&r.flips, 0);
    if (pthread_create(&th, NULL, race_flipper, &r) != 0) {
        free(ida), free(idb), free(set);
        printf("  %-14s race: cannot start the flipper thread\n", kname);
        return 1;
    }
    char msg[256] = "";
    const double t0 = now_ns();
    unsigned long calls = 0;
    do {
        for (size_t i = 0; i < cap + 2 * SLACK; i++)
            out_b[i] = CANARY;
        const unsigned long f0 = atomic_load_explicit(&r.flips, memory_order_relaxed);
        size_t cnt = 0;
        if (f == F_ELECT) {
            const struct netelect_result e = kernel.elect(r.ids, r.rtt, r.h, n, r.self);
            if (e.outcome == NETELECT_SELF_WINS ? e.winner != r.self
                : e.outcome == NETELECT_PEER_WINS
                    ? e.winner == r.self || !race_member(set, 2 * n + 1, e.winner)
                    : e.outcome != NETELECT_NO_ELIGIBLE)
                snprintf(msg, sizeof msg, "elect returned {%d, %#" PRIx64 "}", e.outcome,
                         e.winner);
        } else {
            cnt = f == F_RANK ? kernel.rank(r.ids, r.rtt, r.h, n, r.self, out)
                              : kernel.topk(r.ids, r.rtt, r.h, n, r.self, k, out);
            if (cnt > limit)
                snprintf(msg, sizeof msg, "count %zu > %zu", cnt, limit);
            for (size_t i = 0; i < cnt && cnt <= limit && !msg[0]; i++)
                if (!race_member(set, 2 * n + 1, out[i]))
                    snprintf(msg, sizeof msg, "out[%zu] = %#" PRIx64 " was never in ids[]", i,
                             out[i]);
            for (size_t i = 0; i < SLACK && !msg[0]; i++)
                if (out_b[i] != CANARY)
                    snprintf(msg, sizeof msg, "wrote out[-%zu]", SLACK - i);
            for (size_t i = cnt; i < cap + SLACK && cnt <= limit && !msg[0]; i++)
                if (out[i] != CANARY)
                    snprintf(msg, sizeof msg, "wrote out[%zu] past count %zu (capacity %zu)",
                             i, cnt, cap);
        }
        race_overlaps += atomic_load_explicit(&r.flips, memory_order_relaxed) != f0;
        calls++;
    } while (!msg[0] && (calls < 4 || now_ns() - t0 < ns));
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    race_calls += calls;
    free(ida), free(idb), free(set);
    if (!msg[0])
        return 0;
    printf("FAIL %s [%s] race: n=%zu k=%zu: %s (after %lu calls)\n", kname, fn_name[f], n, k,
           msg, calls);
    printf("  rerun: checksimd --seed %" PRIu64 " --function %s --race 2000\n", run_seed,
           fn_name[f]);
    return 1;
}

/* Sizes around every threshold: rank's insertion sort (32), the vector
 * blocks and top-k's buffer (32), rank's scratch and packed keys. */
static int test_race(enum fn f, kfn kernel, const char *kname, double budget_ns)
{
    static const size_t sizes[] = {1, 31, 33, 64, 100, 257, 1000, 4099, 20000};
    static const size_t tks[] = {1, 8, 32, 33, 64, SIZE_MAX - 1, SIZE_MAX}; /* n, n+1 */
    const size_t ns_count = sizeof sizes / sizeof *sizes;
    const size_t nk = f == F_TOPK ? sizeof tks / sizeof *tks : 1;
    /* Long calls are where a rewrite lands mid-call: n >= 1000 get 4x. */
    double weights = 0;
    for (size_t s = 0; s < ns_count; s++)
        weights += sizes[s] >= 1000 ? 4 : 1;
    int fails = 0;
    uint64_t salt = (uint64_t)f << 32;
    for (size_t s = 0; s < ns_count && !fails; s++)
        for (size_t ki = 0; ki < nk && !fails; ki++, salt++) {
            const size_t n = sizes[s];
            const size_t k = tks[ki] == SIZE_MAX - 1 ? n : tks[ki] == SIZE_MAX ? n + 1 : tks[ki];
            snprintf(current, sizeof current, "%s race n=%zu k=%zu (seed %" PRIu64 ")", kname, n,
                     k, run_seed);
            const double per = budget_ns * (n >= 1000 ? 4 : 1) / weights / (double)nk;
            fails += race_case(f, kernel, kname, n, f == F_TOPK ? k : 0, per, salt);
        }
    return fails;
}

/* ---- main ---- */

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--seed N] [--isa scalar|avx2|avx512|neon] [--function elect|rank|topk] "
            "[--bench] [--no-huge] [--race MS]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    const char *isa = NULL, *only = NULL, *seed_s = getenv("NETELECT_TEST_SEED");
    int do_bench = 0;
    double race_ms = 1500; /* thread CPU time over every kernel */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed_s = argv[++i];
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc)
            isa = argv[++i];
        else if (!strcmp(argv[i], "--function") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--bench"))
            do_bench = 1;
        else if (!strcmp(argv[i], "--no-huge"))
            huge = 0;
        else if (!strcmp(argv[i], "--race") && i + 1 < argc) {
            char *end;
            race_ms = strtod(argv[++i], &end);
            if (*end || !(race_ms >= 0))
                return usage(argv[0]);
        }
        else
            return usage(argv[0]);
    }
    if (seed_s && *seed_s) {
        char *end;
        errno = 0;
        run_seed = strtoull(seed_s, &end, 0);
        if (errno || *end)
            return usage(argv[0]);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        run_seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (RUNNING_ON_VALGRIND && huge) {
        /* ~50x slower there; the 1M cases add time, not coverage. */
        huge = 0;
        printf("checksimd: under valgrind, skipping the 1M-entry cases\n");
    }
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    printf("checksimd: seed %" PRIu64 " (set with --seed or NETELECT_TEST_SEED)\n", run_seed);

    /* As dispatch does: levels without compiled kernels are not levels. */
    const unsigned detected =
        NETELECT_HAVE_X86_SIMD || NETELECT_HAVE_ARM_SIMD ? netelect__cpu_detect() : 0;
    int limit = isa ? netelect__cpu_flags_for(isa) : -1;
    if (isa && limit < 0)
        return usage(argv[0]);
    const unsigned mask = limit < 0 ? ~0u : (unsigned)limit;
    printf("cpu: %s; testing up to %s\n", netelect__cpu_name(detected),
           netelect__cpu_name(detected & mask));

    page = sysconf(_SC_PAGESIZE);
    max_n = 1000000;
    if (gbuf_init(&g_ids, max_n * 8 + 64) || gbuf_init(&g_rtt, max_n * 8 + 64) ||
        gbuf_init(&g_h, max_n + 64)) {
        printf("cannot map test buffers\n");
        return 1;
    }
    out_a = malloc((2 * max_n + 2 * SLACK) * 8);
    out_b = malloc((2 * max_n + 2 * SLACK) * 8);
    if (!out_a || !out_b)
        return 1;

    /* This build's levels (core/cpu.c), lowest first. */
    const unsigned *levels = netelect__cpu_levels;
    struct netelect__kernels tabs[NETELECT__CPU_MAX_LEVELS];
    const char *names[NETELECT__CPU_MAX_LEVELS];
    int ntabs = 0;
    for (int l = 0; l < netelect__cpu_nlevels; l++) {
        if ((levels[l] & detected & mask) != levels[l])
            continue;
        netelect__kernels_init(&tabs[ntabs], levels[l]);
        names[ntabs++] = netelect__cpu_name(levels[l]);
    }
    if (do_bench)
        return bench(tabs, names, ntabs);

    void (*tested[NETELECT__CPU_MAX_LEVELS * F_COUNT])(void);
    int ntested = 0, fails = 0;
    for (int t = 0; t < ntabs; t++) {
        kfn ptr[F_COUNT], refp[F_COUNT];
        ptr[F_ELECT].elect = tabs[t].elect;
        ptr[F_RANK].rank = tabs[t].rank;
        ptr[F_TOPK].topk = tabs[t].topk;
        refp[F_ELECT].elect = netelect__elect_ref;
        refp[F_RANK].rank = netelect__rank_ref;
        refp[F_TOPK].topk = netelect__topk_ref;
        for (int f = 0; f < F_COUNT; f++) {
            if (only && strcmp(only, fn_name[f]))
                continue;
            void (*id)(void) = kfn_id((enum fn)f, ptr[f]);
            int seen = id == kfn_id((enum fn)f, refp[f]);
            for (int j = 0; j < ntested; j++)
                seen |= tested[j] == id;
            char kname[32];
            snprintf(kname, sizeof kname, "%s_%s", fn_name[f], names[t]);
            if (seen) {
                printf("  %-14s (same kernel as a lower level: skipped)\n", kname);
                continue;
            }
            tested[ntested++] = id;
            const unsigned long long before = cases_run;
            const double t0 = now_ns();
            int fl = test_sizes((enum fn)f, ptr[f], kname);
            fl += test_modes((enum fn)f, ptr[f], kname);
            fl += test_large((enum fn)f, ptr[f], kname);
            printf("  %-14s %s (%llu cases, %.2f s)\n", kname, fl ? "FAILED" : "ok",
                   cases_run - before, (now_ns() - t0) / 1e9);
            fails += fl;
        }
    }
    /*
     * The public entry points at every level: they answer small n
     * themselves before the table (core/api.c), so the tables above do not
     * cover what they run there.  Sizes and modes only: large n is the
     * table's kernel, tested above.
     */
    for (int t = 0; t < ntabs && !fails; t++) {
        if (netelect_set_isa(names[t]) < 0) {
            printf("checksimd: netelect_set_isa(%s) failed\n", names[t]);
            fails++;
            break;
        }
        kfn pub[F_COUNT];
        pub[F_ELECT].elect = netelect_elect;
        pub[F_RANK].rank = netelect_rank;
        pub[F_TOPK].topk = netelect_topk;
        for (int f = 0; f < F_COUNT; f++) {
            if (only && strcmp(only, fn_name[f]))
                continue;
            char kname[32];
            snprintf(kname, sizeof kname, "%s_public_%s", fn_name[f], names[t]);
            const unsigned long long before = cases_run;
            const double t0 = now_ns();
            int fl = test_sizes((enum fn)f, pub[f], kname);
            fl += test_modes((enum fn)f, pub[f], kname);
            printf("  %-14s %s (%llu cases, %.2f s)\n", kname, fl ? "FAILED" : "ok",
                   cases_run - before, (now_ns() - t0) / 1e9);
            fails += fl;
        }
    }
    printf("checksimd: %s\n", fails ? "FAILED" : "all kernels match the reference");

    if (race_ms > 0 && !fails) {
        /* The same kernels, on input another thread rewrites meanwhile. */
        void (*raced[NETELECT__CPU_MAX_LEVELS * F_COUNT])(void);
        int nraced = 0, rfails = 0;
        for (int t = 0; t < ntabs; t++) /* distinct kernels share the budget */
            for (int f = 0; f < F_COUNT; f++) {
                kfn kp;
                if (f == F_ELECT)
                    kp.elect = tabs[t].elect;
                else if (f == F_RANK)
                    kp.rank = tabs[t].rank;
                else
                    kp.topk = tabs[t].topk;
                void (*id)(void) = kfn_id((enum fn)f, kp);
                int seen = only && strcmp(only, fn_name[f]);
                for (int j = 0; j < nraced; j++)
                    seen |= raced[j] == id;
                if (!seen)
                    raced[nraced++] = id;
            }
        const int nrace = nraced;
        nraced = 0;
        for (int t = 0; t < ntabs; t++) {
            kfn ptr[F_COUNT];
            ptr[F_ELECT].elect = tabs[t].elect;
            ptr[F_RANK].rank = tabs[t].rank;
            ptr[F_TOPK].topk = tabs[t].topk;
            for (int f = 0; f < F_COUNT; f++) {
                if (only && strcmp(only, fn_name[f]))
                    continue;
                void (*id)(void) = kfn_id((enum fn)f, ptr[f]);
                int seen = 0;
                for (int j = 0; j < nraced; j++)
                    seen |= raced[j] == id;
                char kname[32];
                snprintf(kname, sizeof kname, "%s_%s", fn_name[f], names[t]);
                if (seen)
                    continue;
                raced[nraced++] = id;
                const unsigned long long before = race_calls, ov = race_overlaps;
                const int fl = test_race((enum fn)f, ptr[f], kname, race_ms * 1e6 / nrace);
                printf("  %-14s race %s (%llu calls, %llu overlapped a rewrite)\n", kname,
                       fl ? "FAILED" : "ok", race_calls - before, race_overlaps - ov);
                rfails += fl;
            }
        }
        /* The harness itself: calls must have met a rewrite, or nothing
         * above was tested. */
        if (!rfails && race_overlaps == 0) {
            printf("checksimd: race mode FAILED: no call overlapped a rewrite\n");
            rfails = 1;
        }
        printf("checksimd: race mode %s\n",
               rfails ? "FAILED" : "ok: every kernel kept to its input and output bounds");
        fails += rfails;
    }
    return fails ? 1 : 0;
}
