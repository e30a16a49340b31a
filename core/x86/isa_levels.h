/* SPDX-License-Identifier: MIT */
/*
 * The x86 ISA levels, defined once (dav1d's src/x86/cpu.h lists its levels
 * the same way): the CPUID features a level needs and the register state
 * the OS must save for it (XCR0, read with xgetbv).
 *
 * A level needs exactly the features its kernels' translation unit is
 * compiled for, because the compiler may emit any instruction its flags
 * allow, anywhere in that unit.  Three things follow from this header:
 *
 *  - detection (core/cpu.c) grants a level when the CPU has every feature
 *    in NETELECT_X86_NEEDS_<level> and XCR0 has every bit in
 *    NETELECT_X86_XCR0_<level>;
 *  - the unit's -m flags (x86_isas in core/meson.build) must enable at
 *    least those features: each unit checks it with a _Static_assert on
 *    NETELECT_X86_COMPILED, built from the compiler's predefined macros;
 *  - and no more than those (beyond the library's baseline flags): each
 *    unit exports what it was compiled for, and tests/core/test_isa.c
 *    compares that with the level.  This is the direction a build cannot
 *    check alone, since the baseline comes from the user's CFLAGS.
 *
 * The avx512 level has FMA and F16C because clang's -mavx512f implies
 * them (gcc's does not; meson passes -mfma -mf16c so both agree).  Every
 * AVX-512 CPU has both.
 */
#ifndef CORE_X86_ISA_LEVELS_H
#define CORE_X86_ISA_LEVELS_H

#include <stdint.h>

/*
 * Features, one bit each: every feature a level uses, and the neighbours a
 * stray -m flag would most likely add, so that it shows up as a mismatch.
 */
#define NETELECT_X86_SSE3 (UINT64_C(1) << 0)
#define NETELECT_X86_SSSE3 (UINT64_C(1) << 1)
#define NETELECT_X86_SSE41 (UINT64_C(1) << 2)
#define NETELECT_X86_SSE42 (UINT64_C(1) << 3)
#define NETELECT_X86_POPCNT (UINT64_C(1) << 4)
#define NETELECT_X86_PCLMUL (UINT64_C(1) << 5)
#define NETELECT_X86_AES (UINT64_C(1) << 6)
#define NETELECT_X86_MOVBE (UINT64_C(1) << 7)
#define NETELECT_X86_XSAVE (UINT64_C(1) << 8)
#define NETELECT_X86_AVX (UINT64_C(1) << 9)
#define NETELECT_X86_F16C (UINT64_C(1) << 10)
#define NETELECT_X86_FMA (UINT64_C(1) << 11)
#define NETELECT_X86_AVX2 (UINT64_C(1) << 12)
#define NETELECT_X86_BMI1 (UINT64_C(1) << 13)
#define NETELECT_X86_BMI2 (UINT64_C(1) << 14)
#define NETELECT_X86_AVX512F (UINT64_C(1) << 15)
#define NETELECT_X86_AVX512DQ (UINT64_C(1) << 16)
#define NETELECT_X86_AVX512BW (UINT64_C(1) << 17)
#define NETELECT_X86_AVX512VL (UINT64_C(1) << 18)
#define NETELECT_X86_AVX512CD (UINT64_C(1) << 19)
#define NETELECT_X86_AVX512IFMA (UINT64_C(1) << 20)
#define NETELECT_X86_AVX512VBMI (UINT64_C(1) << 21)
#define NETELECT_X86_AVX512VBMI2 (UINT64_C(1) << 22)
#define NETELECT_X86_AVX512VNNI (UINT64_C(1) << 23)
#define NETELECT_X86_AVX512BITALG (UINT64_C(1) << 24)
#define NETELECT_X86_AVX512VPOPCNTDQ (UINT64_C(1) << 25)
#define NETELECT_X86_AVX512FP16 (UINT64_C(1) << 26)
#define NETELECT_X86_GFNI (UINT64_C(1) << 27)
#define NETELECT_X86_VAES (UINT64_C(1) << 28)
#define NETELECT_X86_VPCLMULQDQ (UINT64_C(1) << 29)

/* XCR0 state components. */
#define NETELECT_X86_XCR0_SSE (UINT64_C(1) << 1)      /* XMM */
#define NETELECT_X86_XCR0_YMM (UINT64_C(1) << 2)      /* upper halves of YMM */
#define NETELECT_X86_XCR0_OPMASK (UINT64_C(1) << 5)   /* k0-k7 */
#define NETELECT_X86_XCR0_ZMM_HI256 (UINT64_C(1) << 6) /* upper halves of ZMM0-15 */
#define NETELECT_X86_XCR0_HI16_ZMM (UINT64_C(1) << 7) /* ZMM16-31 */

/* avx2: core/x86/elect_avx2.c.  -mavx2 implies SSE3..SSE4.2, AVX, XSAVE. */
#define NETELECT_X86_NEEDS_AVX2                                                              \
    (NETELECT_X86_SSE3 | NETELECT_X86_SSSE3 | NETELECT_X86_SSE41 | NETELECT_X86_SSE42 |     \
     NETELECT_X86_POPCNT | NETELECT_X86_XSAVE | NETELECT_X86_AVX | NETELECT_X86_AVX2 |      \
     NETELECT_X86_BMI1 | NETELECT_X86_BMI2)
#define NETELECT_X86_XCR0_AVX2 (NETELECT_X86_XCR0_SSE | NETELECT_X86_XCR0_YMM)

/* avx512: core/x86/elect_avx512.c.  AVX-512 F/BW/DQ/VL, no VBMI/VBMI2/CD. */
#define NETELECT_X86_NEEDS_AVX512                                                            \
    (NETELECT_X86_NEEDS_AVX2 | NETELECT_X86_F16C | NETELECT_X86_FMA | NETELECT_X86_AVX512F | \
     NETELECT_X86_AVX512DQ | NETELECT_X86_AVX512BW | NETELECT_X86_AVX512VL)
#define NETELECT_X86_XCR0_AVX512                                                             \
    (NETELECT_X86_XCR0_AVX2 | NETELECT_X86_XCR0_OPMASK | NETELECT_X86_XCR0_ZMM_HI256 |       \
     NETELECT_X86_XCR0_HI16_ZMM)

/* The raw words detection reads; zero for a leaf the CPU does not have. */
struct netelect__x86_cpuid {
    uint32_t leaf1_ecx, leaf1_edx;
    uint32_t leaf7_ebx, leaf7_ecx, leaf7_edx; /* leaf 7, sub-leaf 0 */
    uint64_t xcr0; /* xgetbv(0); ignored unless leaf 1 reports OSXSAVE */
};

/* The features above that `c` reports (pure: no cpuid executed). */
uint64_t netelect__x86_features(const struct netelect__x86_cpuid *c);
/* The NETELECT_CPU_* levels `c` supports, CPU and OS (pure). */
unsigned netelect__x86_levels(const struct netelect__x86_cpuid *c);

/* What each unit was compiled for (NETELECT_X86_COMPILED there). */
extern const uint64_t netelect__x86_compiled_baseline; /* core/cpu.c */
extern const uint64_t netelect__x86_compiled_avx2;     /* core/x86/elect_avx2.c */
extern const uint64_t netelect__x86_compiled_avx512;   /* core/x86/elect_avx512.c */

/* The features the including unit is compiled for, from predefined macros. */
#ifdef __SSE3__
#define NETELECT_X86_C_SSE3 NETELECT_X86_SSE3
#else
#define NETELECT_X86_C_SSE3 0
#endif
#ifdef __SSSE3__
#define NETELECT_X86_C_SSSE3 NETELECT_X86_SSSE3
#else
#define NETELECT_X86_C_SSSE3 0
#endif
#ifdef __SSE4_1__
#define NETELECT_X86_C_SSE41 NETELECT_X86_SSE41
#else
#define NETELECT_X86_C_SSE41 0
#endif
#ifdef __SSE4_2__
#define NETELECT_X86_C_SSE42 NETELECT_X86_SSE42
#else
#define NETELECT_X86_C_SSE42 0
#endif
#ifdef __POPCNT__
#define NETELECT_X86_C_POPCNT NETELECT_X86_POPCNT
#else
#define NETELECT_X86_C_POPCNT 0
#endif
#ifdef __PCLMUL__
#define NETELECT_X86_C_PCLMUL NETELECT_X86_PCLMUL
#else
#define NETELECT_X86_C_PCLMUL 0
#endif
#ifdef __AES__
#define NETELECT_X86_C_AES NETELECT_X86_AES
#else
#define NETELECT_X86_C_AES 0
#endif
#ifdef __MOVBE__
#define NETELECT_X86_C_MOVBE NETELECT_X86_MOVBE
#else
#define NETELECT_X86_C_MOVBE 0
#endif
#ifdef __XSAVE__
#define NETELECT_X86_C_XSAVE NETELECT_X86_XSAVE
#else
#define NETELECT_X86_C_XSAVE 0
#endif
#ifdef __AVX__
#define NETELECT_X86_C_AVX NETELECT_X86_AVX
#else
#define NETELECT_X86_C_AVX 0
#endif
#ifdef __F16C__
#define NETELECT_X86_C_F16C NETELECT_X86_F16C
#else
#define NETELECT_X86_C_F16C 0
#endif
#ifdef __FMA__
#define NETELECT_X86_C_FMA NETELECT_X86_FMA
#else
#define NETELECT_X86_C_FMA 0
#endif
#ifdef __AVX2__
#define NETELECT_X86_C_AVX2 NETELECT_X86_AVX2
#else
#define NETELECT_X86_C_AVX2 0
#endif
#ifdef __BMI__
#define NETELECT_X86_C_BMI1 NETELECT_X86_BMI1
#else
#define NETELECT_X86_C_BMI1 0
#endif
#ifdef __BMI2__
#define NETELECT_X86_C_BMI2 NETELECT_X86_BMI2
#else
#define NETELECT_X86_C_BMI2 0
#endif
#ifdef __AVX512F__
#define NETELECT_X86_C_AVX512F NETELECT_X86_AVX512F
#else
#define NETELECT_X86_C_AVX512F 0
#endif
#ifdef __AVX512DQ__
#define NETELECT_X86_C_AVX512DQ NETELECT_X86_AVX512DQ
#else
#define NETELECT_X86_C_AVX512DQ 0
#endif
#ifdef __AVX512BW__
#define NETELECT_X86_C_AVX512BW NETELECT_X86_AVX512BW
#else
#define NETELECT_X86_C_AVX512BW 0
#endif
#ifdef __AVX512VL__
#define NETELECT_X86_C_AVX512VL NETELECT_X86_AVX512VL
#else
#define NETELECT_X86_C_AVX512VL 0
#endif
#ifdef __AVX512CD__
#define NETELECT_X86_C_AVX512CD NETELECT_X86_AVX512CD
#else
#define NETELECT_X86_C_AVX512CD 0
#endif
#ifdef __AVX512IFMA__
#define NETELECT_X86_C_AVX512IFMA NETELECT_X86_AVX512IFMA
#else
#define NETELECT_X86_C_AVX512IFMA 0
#endif
#ifdef __AVX512VBMI__
#define NETELECT_X86_C_AVX512VBMI NETELECT_X86_AVX512VBMI
#else
#define NETELECT_X86_C_AVX512VBMI 0
#endif
#ifdef __AVX512VBMI2__
#define NETELECT_X86_C_AVX512VBMI2 NETELECT_X86_AVX512VBMI2
#else
#define NETELECT_X86_C_AVX512VBMI2 0
#endif
#ifdef __AVX512VNNI__
#define NETELECT_X86_C_AVX512VNNI NETELECT_X86_AVX512VNNI
#else
#define NETELECT_X86_C_AVX512VNNI 0
#endif
#ifdef __AVX512BITALG__
#define NETELECT_X86_C_AVX512BITALG NETELECT_X86_AVX512BITALG
#else
#define NETELECT_X86_C_AVX512BITALG 0
#endif
#ifdef __AVX512VPOPCNTDQ__
#define NETELECT_X86_C_AVX512VPOPCNTDQ NETELECT_X86_AVX512VPOPCNTDQ
#else
#define NETELECT_X86_C_AVX512VPOPCNTDQ 0
#endif
#ifdef __AVX512FP16__
#define NETELECT_X86_C_AVX512FP16 NETELECT_X86_AVX512FP16
#else
#define NETELECT_X86_C_AVX512FP16 0
#endif
#ifdef __GFNI__
#define NETELECT_X86_C_GFNI NETELECT_X86_GFNI
#else
#define NETELECT_X86_C_GFNI 0
#endif
#ifdef __VAES__
#define NETELECT_X86_C_VAES NETELECT_X86_VAES
#else
#define NETELECT_X86_C_VAES 0
#endif
#ifdef __VPCLMULQDQ__
#define NETELECT_X86_C_VPCLMULQDQ NETELECT_X86_VPCLMULQDQ
#else
#define NETELECT_X86_C_VPCLMULQDQ 0
#endif

#define NETELECT_X86_COMPILED                                                                \
    (NETELECT_X86_C_SSE3 | NETELECT_X86_C_SSSE3 | NETELECT_X86_C_SSE41 |                     \
     NETELECT_X86_C_SSE42 | NETELECT_X86_C_POPCNT | NETELECT_X86_C_PCLMUL |                  \
     NETELECT_X86_C_AES | NETELECT_X86_C_MOVBE | NETELECT_X86_C_XSAVE | NETELECT_X86_C_AVX | \
     NETELECT_X86_C_F16C | NETELECT_X86_C_FMA | NETELECT_X86_C_AVX2 | NETELECT_X86_C_BMI1 |  \
     NETELECT_X86_C_BMI2 | NETELECT_X86_C_AVX512F | NETELECT_X86_C_AVX512DQ |                \
     NETELECT_X86_C_AVX512BW | NETELECT_X86_C_AVX512VL | NETELECT_X86_C_AVX512CD |           \
     NETELECT_X86_C_AVX512IFMA | NETELECT_X86_C_AVX512VBMI | NETELECT_X86_C_AVX512VBMI2 |    \
     NETELECT_X86_C_AVX512VNNI | NETELECT_X86_C_AVX512BITALG |                               \
     NETELECT_X86_C_AVX512VPOPCNTDQ | NETELECT_X86_C_AVX512FP16 | NETELECT_X86_C_GFNI |      \
     NETELECT_X86_C_VAES | NETELECT_X86_C_VPCLMULQDQ)

#endif /* CORE_X86_ISA_LEVELS_H */
