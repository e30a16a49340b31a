/* SPDX-License-Identifier: MIT */
/*
 * The AArch64 ISA levels, defined once (the counterpart of
 * core/x86/isa_levels.h): the hardware capabilities a level needs, as the
 * kernel reports them in getauxval(AT_HWCAP), and the features its unit is
 * compiled for.
 *
 * There is one level, `neon` (AdvSIMD, "asimd" in /proc/cpuinfo), used by
 * core/arm/elect_neon.c.  Every AArch64 Linux distribution's ABI already
 * assumes it (Debian's arm64 baseline is armv8-a, which has it), but the
 * architecture lets a CPU leave FP/AdvSIMD out, and Linux then clears
 * HWCAP_ASIMD and traps the instructions; detection reads the bit rather
 * than assume it, as it costs nothing.  No kernel uses SVE or the dot
 * product (the kernels compare 64-bit keys; neither helps with that), so
 * no level asks for them: a level exists only for a unit that needs it.
 *
 * As on x86, a level needs exactly the features its unit is compiled for:
 *  - detection (core/cpu.c) grants `neon` when AT_HWCAP has every bit in
 *    NETELECT_ARM_NEEDS_NEON;
 *  - the unit's flags (arm_isas in core/meson.build) enable at least those
 *    features: the unit checks NETELECT_ARM_COMPILED with a _Static_assert;
 *  - and no more, beyond the library's baseline: the unit exports what it
 *    was compiled for, and tests/core/test_isa_arm.c compares it with the
 *    level under qemu-aarch64.
 */
#ifndef CORE_ARM_ISA_LEVELS_H
#define CORE_ARM_ISA_LEVELS_H

#include <stdint.h>

/*
 * Features, one bit each, with the same bit numbers as Linux's AT_HWCAP
 * (arch/arm64/include/uapi/asm/hwcap.h: a stable ABI), so that decoding is
 * a mask.  Listed: what the level uses, and the neighbours a stray -march
 * extension would most likely add, so that it shows up as a mismatch.
 */
#define NETELECT_ARM_FP (UINT64_C(1) << 0)       /* HWCAP_FP */
#define NETELECT_ARM_ASIMD (UINT64_C(1) << 1)    /* HWCAP_ASIMD: AdvSIMD, "NEON" */
#define NETELECT_ARM_AES (UINT64_C(1) << 3)      /* HWCAP_AES */
#define NETELECT_ARM_PMULL (UINT64_C(1) << 4)    /* HWCAP_PMULL */
#define NETELECT_ARM_SHA2 (UINT64_C(1) << 6)     /* HWCAP_SHA2 */
#define NETELECT_ARM_CRC32 (UINT64_C(1) << 7)    /* HWCAP_CRC32 */
#define NETELECT_ARM_ATOMICS (UINT64_C(1) << 8)  /* HWCAP_ATOMICS: LSE */
#define NETELECT_ARM_FPHP (UINT64_C(1) << 9)     /* HWCAP_FPHP */
#define NETELECT_ARM_ASIMDHP (UINT64_C(1) << 10) /* HWCAP_ASIMDHP */
#define NETELECT_ARM_ASIMDRDM (UINT64_C(1) << 12) /* HWCAP_ASIMDRDM */
#define NETELECT_ARM_ASIMDDP (UINT64_C(1) << 20) /* HWCAP_ASIMDDP: dot product */
#define NETELECT_ARM_SVE (UINT64_C(1) << 22)     /* HWCAP_SVE */

/* Every bit above: what decoding keeps of AT_HWCAP. */
#define NETELECT_ARM_KNOWN                                                                   \
    (NETELECT_ARM_FP | NETELECT_ARM_ASIMD | NETELECT_ARM_AES | NETELECT_ARM_PMULL |          \
     NETELECT_ARM_SHA2 | NETELECT_ARM_CRC32 | NETELECT_ARM_ATOMICS | NETELECT_ARM_FPHP |     \
     NETELECT_ARM_ASIMDHP | NETELECT_ARM_ASIMDRDM | NETELECT_ARM_ASIMDDP | NETELECT_ARM_SVE)

/* neon: core/arm/elect_neon.c.  AdvSIMD needs FP (the registers are shared). */
#define NETELECT_ARM_NEEDS_NEON (NETELECT_ARM_FP | NETELECT_ARM_ASIMD)

/* The features above that an AT_HWCAP word reports (pure). */
uint64_t netelect__arm_features(uint64_t hwcap);
/* The NETELECT_CPU_* levels an AT_HWCAP word supports (pure). */
unsigned netelect__arm_levels(uint64_t hwcap);

/* What each unit was compiled for (NETELECT_ARM_COMPILED there). */
extern const uint64_t netelect__arm_compiled_baseline; /* core/cpu.c */
extern const uint64_t netelect__arm_compiled_neon;     /* core/arm/elect_neon.c */

/* The features the including unit is compiled for, from ACLE's macros. */
#if defined(__ARM_FP) && __ARM_FP
#define NETELECT_ARM_C_FP NETELECT_ARM_FP
#else
#define NETELECT_ARM_C_FP 0
#endif
#ifdef __ARM_NEON
#define NETELECT_ARM_C_ASIMD NETELECT_ARM_ASIMD
#else
#define NETELECT_ARM_C_ASIMD 0
#endif
#ifdef __ARM_FEATURE_AES
#define NETELECT_ARM_C_AES (NETELECT_ARM_AES | NETELECT_ARM_PMULL)
#else
#define NETELECT_ARM_C_AES 0
#endif
#ifdef __ARM_FEATURE_SHA2
#define NETELECT_ARM_C_SHA2 NETELECT_ARM_SHA2
#else
#define NETELECT_ARM_C_SHA2 0
#endif
#ifdef __ARM_FEATURE_CRC32
#define NETELECT_ARM_C_CRC32 NETELECT_ARM_CRC32
#else
#define NETELECT_ARM_C_CRC32 0
#endif
#ifdef __ARM_FEATURE_ATOMICS
#define NETELECT_ARM_C_ATOMICS NETELECT_ARM_ATOMICS
#else
#define NETELECT_ARM_C_ATOMICS 0
#endif
#ifdef __ARM_FEATURE_FP16_SCALAR_ARITHMETIC
#define NETELECT_ARM_C_FPHP NETELECT_ARM_FPHP
#else
#define NETELECT_ARM_C_FPHP 0
#endif
#ifdef __ARM_FEATURE_FP16_VECTOR_ARITHMETIC
#define NETELECT_ARM_C_ASIMDHP NETELECT_ARM_ASIMDHP
#else
#define NETELECT_ARM_C_ASIMDHP 0
#endif
#ifdef __ARM_FEATURE_QRDMX
#define NETELECT_ARM_C_ASIMDRDM NETELECT_ARM_ASIMDRDM
#else
#define NETELECT_ARM_C_ASIMDRDM 0
#endif
#ifdef __ARM_FEATURE_DOTPROD
#define NETELECT_ARM_C_ASIMDDP NETELECT_ARM_ASIMDDP
#else
#define NETELECT_ARM_C_ASIMDDP 0
#endif
#ifdef __ARM_FEATURE_SVE
#define NETELECT_ARM_C_SVE NETELECT_ARM_SVE
#else
#define NETELECT_ARM_C_SVE 0
#endif

#define NETELECT_ARM_COMPILED                                                                \
    (NETELECT_ARM_C_FP | NETELECT_ARM_C_ASIMD | NETELECT_ARM_C_AES | NETELECT_ARM_C_SHA2 |   \
     NETELECT_ARM_C_CRC32 | NETELECT_ARM_C_ATOMICS | NETELECT_ARM_C_FPHP |                   \
     NETELECT_ARM_C_ASIMDHP | NETELECT_ARM_C_ASIMDRDM | NETELECT_ARM_C_ASIMDDP |             \
     NETELECT_ARM_C_SVE)

#endif /* CORE_ARM_ISA_LEVELS_H */
