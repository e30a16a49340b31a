/* SPDX-License-Identifier: MIT */
/*
 * CPU feature detection: cpuid for what the CPU has, xgetbv for what the OS
 * saves across context switches.  Both are needed: a CPU with AVX-512 under
 * a kernel that does not enable ZMM state would fault on the first kernel.
 *
 * What each level needs is defined once, in core/x86/isa_levels.h and
 * core/arm/isa_levels.h; this file only reads the words and decodes them
 * (netelect__x86_levels and netelect__arm_levels are pure, and built on
 * every architecture, so that tests/core/test_isa.c and test_isa_arm.c run
 * them on recorded CPUID dumps and AT_HWCAP words).
 */
#include <string.h>

#include "config.h"
#include "core/arm/isa_levels.h"
#include "core/dispatch.h"
#include "core/x86/isa_levels.h"

/* Where each feature sits: leaf 1 ECX, leaf 7 (sub-leaf 0) EBX/ECX/EDX. */
enum { L1_ECX, L7_EBX, L7_ECX, L7_EDX };

static const struct {
    uint8_t word, bit;
    uint64_t feature;
} feature_bits[] = {
    {L1_ECX, 0, NETELECT_X86_SSE3},
    {L1_ECX, 1, NETELECT_X86_PCLMUL},
    {L1_ECX, 9, NETELECT_X86_SSSE3},
    {L1_ECX, 12, NETELECT_X86_FMA},
    {L1_ECX, 19, NETELECT_X86_SSE41},
    {L1_ECX, 20, NETELECT_X86_SSE42},
    {L1_ECX, 22, NETELECT_X86_MOVBE},
    {L1_ECX, 23, NETELECT_X86_POPCNT},
    {L1_ECX, 25, NETELECT_X86_AES},
    {L1_ECX, 26, NETELECT_X86_XSAVE},
    {L1_ECX, 28, NETELECT_X86_AVX},
    {L1_ECX, 29, NETELECT_X86_F16C},
    {L7_EBX, 3, NETELECT_X86_BMI1},
    {L7_EBX, 5, NETELECT_X86_AVX2},
    {L7_EBX, 8, NETELECT_X86_BMI2},
    {L7_EBX, 16, NETELECT_X86_AVX512F},
    {L7_EBX, 17, NETELECT_X86_AVX512DQ},
    {L7_EBX, 21, NETELECT_X86_AVX512IFMA},
    {L7_EBX, 28, NETELECT_X86_AVX512CD},
    {L7_EBX, 30, NETELECT_X86_AVX512BW},
    {L7_EBX, 31, NETELECT_X86_AVX512VL},
    {L7_ECX, 1, NETELECT_X86_AVX512VBMI},
    {L7_ECX, 6, NETELECT_X86_AVX512VBMI2},
    {L7_ECX, 8, NETELECT_X86_GFNI},
    {L7_ECX, 9, NETELECT_X86_VAES},
    {L7_ECX, 10, NETELECT_X86_VPCLMULQDQ},
    {L7_ECX, 11, NETELECT_X86_AVX512VNNI},
    {L7_ECX, 12, NETELECT_X86_AVX512BITALG},
    {L7_ECX, 14, NETELECT_X86_AVX512VPOPCNTDQ},
    {L7_EDX, 23, NETELECT_X86_AVX512FP16},
};

/* The ladder, lowest first: a level is granted only with every lower one. */
static const struct {
    unsigned flag;
    uint64_t needs, xcr0;
} x86_levels[] = {
    {NETELECT_CPU_AVX2, NETELECT_X86_NEEDS_AVX2, NETELECT_X86_XCR0_AVX2},
    {NETELECT_CPU_AVX512, NETELECT_X86_NEEDS_AVX512, NETELECT_X86_XCR0_AVX512},
};

enum { LEAF1_ECX_OSXSAVE = 1u << 27 };

/* What this file, built with the library's own flags, may execute. */
const uint64_t netelect__x86_compiled_baseline = NETELECT_X86_COMPILED;

uint64_t netelect__x86_features(const struct netelect__x86_cpuid *c)
{
    const uint32_t words[] = {c->leaf1_ecx, c->leaf7_ebx, c->leaf7_ecx, c->leaf7_edx};
    uint64_t f = 0;
    for (size_t i = 0; i < sizeof feature_bits / sizeof feature_bits[0]; i++)
        if ((words[feature_bits[i].word] >> feature_bits[i].bit) & 1)
            f |= feature_bits[i].feature;
    return f;
}

unsigned netelect__x86_levels(const struct netelect__x86_cpuid *c)
{
    const uint64_t f = netelect__x86_features(c);
    /* Without OSXSAVE, xgetbv faults and no extended state is enabled. */
    const uint64_t xcr0 = (c->leaf1_ecx & LEAF1_ECX_OSXSAVE) ? c->xcr0 : 0;
    unsigned flags = 0;
    for (size_t i = 0; i < sizeof x86_levels / sizeof x86_levels[0]; i++) {
        if ((f & x86_levels[i].needs) != x86_levels[i].needs ||
            (xcr0 & x86_levels[i].xcr0) != x86_levels[i].xcr0)
            break;
        flags |= x86_levels[i].flag;
    }
    return flags;
}

/* What this file, built with the library's own flags, may execute. */
const uint64_t netelect__arm_compiled_baseline = NETELECT_ARM_COMPILED;

uint64_t netelect__arm_features(uint64_t hwcap)
{
    return hwcap & NETELECT_ARM_KNOWN; /* the bits are AT_HWCAP's own */
}

unsigned netelect__arm_levels(uint64_t hwcap)
{
    const uint64_t f = netelect__arm_features(hwcap);
    return (f & NETELECT_ARM_NEEDS_NEON) == NETELECT_ARM_NEEDS_NEON ? NETELECT_CPU_NEON : 0;
}

/* Every level this build has kernels for, lowest first; each level's flags
 * include every level below it (a ladder, as detection grants them). */
const unsigned netelect__cpu_levels[] = {
    0,
#if NETELECT_HAVE_X86_SIMD
    NETELECT_CPU_AVX2,
    NETELECT_CPU_AVX2 | NETELECT_CPU_AVX512,
#endif
#if NETELECT_HAVE_ARM_SIMD
    NETELECT_CPU_NEON,
#endif
};
#define NLEVELS (sizeof netelect__cpu_levels / sizeof netelect__cpu_levels[0])
const int netelect__cpu_nlevels = (int)NLEVELS;
_Static_assert(NLEVELS <= NETELECT__CPU_MAX_LEVELS, "raise NETELECT__CPU_MAX_LEVELS in core/dispatch.h");

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

unsigned netelect__cpu_detect(void)
{
    struct netelect__x86_cpuid c = {0};
    unsigned a, b, ecx, edx;

    if (!__get_cpuid(1, &a, &b, &ecx, &edx))
        return 0;
    c.leaf1_ecx = ecx;
    c.leaf1_edx = edx;
    if (__get_cpuid_max(0, NULL) >= 7)
        __cpuid_count(7, 0, a, c.leaf7_ebx, c.leaf7_ecx, c.leaf7_edx);
    if (c.leaf1_ecx & LEAF1_ECX_OSXSAVE)
        c.xcr0 = xgetbv0();
    return netelect__x86_levels(&c);
}
#elif defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>

/* The feature bits are the kernel's own (core/arm/isa_levels.h). */
_Static_assert(NETELECT_ARM_FP == HWCAP_FP && NETELECT_ARM_ASIMD == HWCAP_ASIMD &&
                   NETELECT_ARM_AES == HWCAP_AES && NETELECT_ARM_PMULL == HWCAP_PMULL &&
                   NETELECT_ARM_SHA2 == HWCAP_SHA2 && NETELECT_ARM_CRC32 == HWCAP_CRC32 &&
                   NETELECT_ARM_ATOMICS == HWCAP_ATOMICS && NETELECT_ARM_FPHP == HWCAP_FPHP &&
                   NETELECT_ARM_ASIMDHP == HWCAP_ASIMDHP &&
                   NETELECT_ARM_ASIMDRDM == HWCAP_ASIMDRDM &&
                   NETELECT_ARM_ASIMDDP == HWCAP_ASIMDDP && NETELECT_ARM_SVE == HWCAP_SVE,
               "core/arm/isa_levels.h disagrees with <asm/hwcap.h>");

unsigned netelect__cpu_detect(void)
{
    /* The kernel's word: what the CPU has and the kernel lets user space run. */
    return netelect__arm_levels((uint64_t)getauxval(AT_HWCAP));
}
#else
unsigned netelect__cpu_detect(void)
{
    return 0;
}
#endif

int netelect__cpu_flags_for(const char *name)
{
    if (!name)
        return -1;
    if (!strcmp(name, "scalar") || !strcmp(name, "none") || !strcmp(name, "c"))
        return 0;
    if (!strcmp(name, "avx2"))
        return NETELECT_CPU_AVX2;
    if (!strcmp(name, "avx512"))
        return NETELECT_CPU_AVX2 | NETELECT_CPU_AVX512;
    if (!strcmp(name, "neon"))
        return NETELECT_CPU_NEON;
    return -1;
}

const char *netelect__cpu_name(unsigned flags)
{
    if (flags & NETELECT_CPU_AVX512)
        return "avx512";
    if (flags & NETELECT_CPU_AVX2)
        return "avx2";
    if (flags & NETELECT_CPU_NEON)
        return "neon";
    return "scalar";
}
