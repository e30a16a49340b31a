/* SPDX-License-Identifier: MIT */
/*
 * The kernel table (struct netelect__kernels: which elect, rank and top-k
 * functions run) and how it is chosen for the CPU, dav1d's model; the
 * inline building blocks every kernel shares, and the contract every kernel
 * keeps, are core/kernel.h.
 *
 * Every operation has a scalar reference (ref.c), which is the oracle for
 * the differential tests and is never trimmed away, and optional per-ISA
 * kernels that live in their own translation units with their own target
 * flags.  netelect__kernels_init() fills a table with the portable kernels
 * first and then walks an early-return ladder over the effective CPU flags,
 * so a table built for flags F only ever holds kernels the CPU can run.
 */
#ifndef CORE_DISPATCH_H
#define CORE_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "netelect.h"

typedef struct netelect_result (*netelect__elect_fn)(const uint64_t *ids, const uint64_t *rtt,
                                                     const uint8_t *healthy, size_t n,
                                                     uint64_t self_id);
typedef size_t (*netelect__rank_fn)(const uint64_t *ids, const uint64_t *rtt,
                                    const uint8_t *healthy, size_t n, uint64_t self_id,
                                    uint64_t *out_ids);
typedef size_t (*netelect__topk_fn)(const uint64_t *ids, const uint64_t *rtt,
                                    const uint8_t *healthy, size_t n, uint64_t self_id, size_t k,
                                    uint64_t *out_ids);

struct netelect__kernels {
    netelect__elect_fn elect;
    netelect__rank_fn rank;
    netelect__topk_fn topk;
};

/*
 * CPU feature levels, one bit each; a level implies every lower one of its
 * architecture.  What each needs (CPUID features and OS state, or AT_HWCAP
 * bits) is defined in one place per architecture, core/x86/isa_levels.h and
 * core/arm/isa_levels.h, which detection and the build both follow.
 */
enum {
    NETELECT_CPU_AVX2 = 1u << 0,   /* NETELECT_X86_NEEDS_AVX2 */
    NETELECT_CPU_AVX512 = 1u << 1, /* NETELECT_X86_NEEDS_AVX512 */
    NETELECT_CPU_NEON = 1u << 2,   /* NETELECT_ARM_NEEDS_NEON (AArch64) */
};

/* This build's levels, lowest (scalar, 0) first, each with the flags of
 * every level below it: what dispatch and checksimd walk. */
enum { NETELECT__CPU_MAX_LEVELS = 3 };
extern const unsigned netelect__cpu_levels[];
extern const int netelect__cpu_nlevels;

/* What the CPU and OS support, detected once. */
unsigned netelect__cpu_detect(void);
/* Flags for a level name ("scalar", "avx2", "avx512", "neon"): -1 if unknown. */
int netelect__cpu_flags_for(const char *name);
/* Name of the highest level present in `flags`. */
const char *netelect__cpu_name(unsigned flags);

/* Fills `d` for exactly the levels in `flags` (portable kernels first). */
void netelect__kernels_init(struct netelect__kernels *d, unsigned flags);
/* Per-ISA ladders; each only overwrites the entries it implements. */
void netelect__kernels_init_x86(struct netelect__kernels *d, unsigned flags);
void netelect__kernels_init_arm(struct netelect__kernels *d, unsigned flags);

/* The table in use (detected & NETELECT_ISA), never NULL. */
const struct netelect__kernels *netelect__kernels_get(void);

/* Scalar references: obviously correct, no allocation. */
struct netelect_result netelect__elect_ref(const uint64_t *ids, const uint64_t *rtt,
                                           const uint8_t *healthy, size_t n, uint64_t self_id);
size_t netelect__rank_ref(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                          size_t n, uint64_t self_id, uint64_t *out_ids);
size_t netelect__topk_ref(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                          size_t n, uint64_t self_id, size_t k, uint64_t *out_ids);

/*
 * Production kernels.  `_scalar` ones are portable and fill the scalar
 * table; rank_scalar is also the rank of every SIMD table.
 */
struct netelect_result netelect__elect_scalar(const uint64_t *ids, const uint64_t *rtt,
                                              const uint8_t *healthy, size_t n,
                                              uint64_t self_id);
size_t netelect__rank_scalar(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, uint64_t *out_ids);
size_t netelect__topk_scalar(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, size_t k, uint64_t *out_ids);
/* The radix rank after its pass 1, given that pass's findings (a
 * struct netelect__rank_scan, core/kernel.h): how a SIMD rank that only
 * vectorizes the scan shares the passes with the portable one. */
struct netelect__rank_scan;
size_t netelect__rank_scanned(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                              size_t n, uint64_t self_id, uint64_t *out_ids,
                              const struct netelect__rank_scan *sc);
/* Top-k by a full `rank` into a private buffer; for k beyond the buffer. */
size_t netelect__topk_sorted(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, size_t k, uint64_t *out_ids,
                             netelect__rank_fn rank);

struct netelect_result netelect__elect_avx2(const uint64_t *ids, const uint64_t *rtt,
                                            const uint8_t *healthy, size_t n, uint64_t self_id);
size_t netelect__topk_avx2(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                           size_t n, uint64_t self_id, size_t k, uint64_t *out_ids);
struct netelect_result netelect__elect_avx512(const uint64_t *ids, const uint64_t *rtt,
                                              const uint8_t *healthy, size_t n,
                                              uint64_t self_id);
size_t netelect__topk_avx512(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, size_t k, uint64_t *out_ids);
size_t netelect__rank_avx512(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                             size_t n, uint64_t self_id, uint64_t *out_ids);
struct netelect_result netelect__elect_neon(const uint64_t *ids, const uint64_t *rtt,
                                            const uint8_t *healthy, size_t n, uint64_t self_id);
size_t netelect__rank_neon(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                           size_t n, uint64_t self_id, uint64_t *out_ids);
size_t netelect__topk_neon(const uint64_t *ids, const uint64_t *rtt, const uint8_t *healthy,
                           size_t n, uint64_t self_id, size_t k, uint64_t *out_ids);

/*
 * The calling thread's cached scratch buffer, at least `bytes` long and
 * 64-byte aligned, or NULL when memory is short (callers then fall back to
 * the allocation-free reference).  Give it back with netelect__scratch_put,
 * which frees it only if it was too large to keep (core/scratch.c says what
 * is kept).  Its contents are whatever the last user left.  Not re-entrant:
 * one user per thread at a time.
 */
void *netelect__scratch_get(size_t bytes);
void netelect__scratch_put(void *p);

#endif /* CORE_DISPATCH_H */
