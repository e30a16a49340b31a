/* SPDX-License-Identifier: MIT */
/*
 * The x86 ISA levels (core/x86/isa_levels.h) against the outside world:
 *
 *  - detection, run on recorded CPUID words and XCR0 of real CPUs, picks
 *    the level their kernels can run on;
 *  - each kernel unit is compiled for exactly its level: the features its
 *    compile flags enabled (the compiler's predefined macros, exported by
 *    the unit) equal the level's features plus the library's baseline.
 *
 * The dumps are leaf 1 ECX/EDX, leaf 7 sub-leaf 0 EBX/ECX/EDX as published
 * for these parts (InstLatx64 via google/cpu_features' tests, Fuchsia's
 * Zircon cpuid tests, valgrind's SKX model, /proc and OpenSSL ia32cap
 * reports); XCR0 is what Linux sets on them: 0x2e7 (x87, SSE, AVX, opmask,
 * ZMM_Hi256, Hi16_ZMM, PKRU) or 0x207 without AVX-512.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "core/dispatch.h"
#include "core/x86/isa_levels.h"

struct dump {
    const char *cpu;
    struct netelect__x86_cpuid c; /* leaf1 ecx, edx; leaf7 ebx, ecx, edx; xcr0 */
    const char *level;
};

#define SKX_LEAF1 0x7ffefbff, 0xbfebfbff
#define SKX_LEAF7 0xd39ffffb, 0x00000008, 0x0c000000

static const struct dump dumps[] = {
    /* AVX-512 F/CD/BW/DQ/VL, no VBMI/VBMI2: the case the level is for. */
    {"Intel Xeon Platinum 8180 (Skylake-SP)", {SKX_LEAF1, SKX_LEAF7, 0x2e7}, "avx512"},
    {"Intel Xeon Gold 6xxx (Cascade Lake)",
     {0x7ffefbff, 0xbfebfbff, 0xd39ffffb, 0x00000808, 0xbc000400, 0x2e7},
     "avx512"},
    {"Intel Xeon Gold 6354 (Ice Lake-SP)",
     {0x7ffefbff, 0xbfebfbff, 0xf3bfb7ef, 0x40417f5e, 0xbc040412, 0x2e7},
     "avx512"},
    {"AMD Ryzen 9 5950X (Zen 3)",
     {0x7ed8320b, 0x178bfbff, 0x219c97a9, 0x0040068c, 0x00000000, 0x207},
     "avx2"},
    {"AMD Ryzen 9 7950X (Zen 4)",
     {0x7ef8320b, 0x178bfbff, 0xf1bf97a9, 0x00405fde, 0x10000010, 0x2e7},
     "avx512"},
    /* The CPU has AVX-512 but the OS does not save opmask/ZMM state. */
    {"Skylake-SP, OS without ZMM state (XCR0 bits 5-7 clear)", {SKX_LEAF1, SKX_LEAF7, 0x207},
     "avx2"},
    {"Skylake-SP, OS with opmask but not ZMM16-31", {SKX_LEAF1, SKX_LEAF7, 0x267}, "avx2"},
    {"Skylake-SP, OS without YMM state", {SKX_LEAF1, SKX_LEAF7, 0x003}, "scalar"},
    /* OSXSAVE clear: XCR0 cannot be read, whatever the word says. */
    {"Zen 3, OSXSAVE clear", {0x76d8320b, 0x178bfbff, 0x219c97a9, 0x0040068c, 0, 0x207},
     "scalar"},
    /* A CPU with AVX-512 F/BW/DQ/VL but (hypothetically) no BMI2: not even avx2. */
    {"Skylake-SP with BMI2 masked", {SKX_LEAF1, 0xd39ffffb & ~(1u << 8), 0x8, 0x0c000000, 0x2e7},
     "scalar"},
};

static const struct {
    uint64_t bit;
    const char *name;
} feature_names[] = {
    {NETELECT_X86_SSE3, "sse3"},
    {NETELECT_X86_SSSE3, "ssse3"},
    {NETELECT_X86_SSE41, "sse4.1"},
    {NETELECT_X86_SSE42, "sse4.2"},
    {NETELECT_X86_POPCNT, "popcnt"},
    {NETELECT_X86_PCLMUL, "pclmul"},
    {NETELECT_X86_AES, "aes"},
    {NETELECT_X86_MOVBE, "movbe"},
    {NETELECT_X86_XSAVE, "xsave"},
    {NETELECT_X86_AVX, "avx"},
    {NETELECT_X86_F16C, "f16c"},
    {NETELECT_X86_FMA, "fma"},
    {NETELECT_X86_AVX2, "avx2"},
    {NETELECT_X86_BMI1, "bmi1"},
    {NETELECT_X86_BMI2, "bmi2"},
    {NETELECT_X86_AVX512F, "avx512f"},
    {NETELECT_X86_AVX512DQ, "avx512dq"},
    {NETELECT_X86_AVX512BW, "avx512bw"},
    {NETELECT_X86_AVX512VL, "avx512vl"},
    {NETELECT_X86_AVX512CD, "avx512cd"},
    {NETELECT_X86_AVX512IFMA, "avx512ifma"},
    {NETELECT_X86_AVX512VBMI, "avx512vbmi"},
    {NETELECT_X86_AVX512VBMI2, "avx512vbmi2"},
    {NETELECT_X86_AVX512VNNI, "avx512vnni"},
    {NETELECT_X86_AVX512BITALG, "avx512bitalg"},
    {NETELECT_X86_AVX512VPOPCNTDQ, "avx512vpopcntdq"},
    {NETELECT_X86_AVX512FP16, "avx512fp16"},
    {NETELECT_X86_GFNI, "gfni"},
    {NETELECT_X86_VAES, "vaes"},
    {NETELECT_X86_VPCLMULQDQ, "vpclmulqdq"},
};

/* "avx2 bmi1" for a mask, so a failure says which features differ. */
static const char *names(uint64_t mask, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0]; i++)
        if (mask & feature_names[i].bit) {
            int w = snprintf(buf + used, len - used, "%s%s", used ? " " : "",
                             feature_names[i].name);
            if (w < 0 || (size_t)w >= len - used)
                break;
            used += (size_t)w;
        }
    return used ? buf : "(none)";
}

Test(isa, levels_of_real_cpuid_dumps)
{
    for (size_t i = 0; i < sizeof dumps / sizeof dumps[0]; i++) {
        const unsigned got = netelect__x86_levels(&dumps[i].c);
        char buf[512];
        const uint64_t f = netelect__x86_features(&dumps[i].c);
        cr_expect_str_eq(netelect__cpu_name(got), dumps[i].level,
                         "%s: detected %s, expected %s (features: %s)", dumps[i].cpu,
                         netelect__cpu_name(got), dumps[i].level, names(f, buf, sizeof buf));
        /* The mask is a ladder: exactly the levels up to the one named. */
        cr_expect_eq((int)got, netelect__cpu_flags_for(dumps[i].level), "%s: flags %#x",
                     dumps[i].cpu, got);
    }
}

Test(isa, decode_names_the_right_bits)
{
    /* Skylake-SP: F/DQ/CD/BW/VL, none of Ice Lake's additions. */
    const struct netelect__x86_cpuid skx = {SKX_LEAF1, SKX_LEAF7, 0x2e7};
    const uint64_t f = netelect__x86_features(&skx);
    const uint64_t has = NETELECT_X86_AVX512F | NETELECT_X86_AVX512DQ | NETELECT_X86_AVX512CD |
                         NETELECT_X86_AVX512BW | NETELECT_X86_AVX512VL | NETELECT_X86_FMA |
                         NETELECT_X86_F16C | NETELECT_X86_MOVBE | NETELECT_X86_AES;
    const uint64_t lacks = NETELECT_X86_AVX512VBMI | NETELECT_X86_AVX512VBMI2 |
                           NETELECT_X86_AVX512IFMA | NETELECT_X86_AVX512VNNI |
                           NETELECT_X86_GFNI | NETELECT_X86_VAES | NETELECT_X86_AVX512FP16;
    char buf[512];
    cr_expect_eq(f & has, has, "missing: %s", names(has & ~f, buf, sizeof buf));
    cr_expect_eq(f & lacks, 0, "spurious: %s", names(f & lacks, buf, sizeof buf));

    /* One bit in each word, decoded alone. */
    const struct {
        struct netelect__x86_cpuid c;
        uint64_t feature;
    } one[] = {
        {{.leaf1_ecx = 1u << 12}, NETELECT_X86_FMA},
        {{.leaf1_ecx = 1u << 23}, NETELECT_X86_POPCNT},
        {{.leaf7_ebx = 1u << 8}, NETELECT_X86_BMI2},
        {{.leaf7_ebx = 1u << 30}, NETELECT_X86_AVX512BW},
        {{.leaf7_ecx = 1u << 6}, NETELECT_X86_AVX512VBMI2},
        {{.leaf7_edx = 1u << 23}, NETELECT_X86_AVX512FP16},
    };
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++)
        cr_expect_eq(netelect__x86_features(&one[i].c), one[i].feature, "case %zu: %s", i,
                     names(netelect__x86_features(&one[i].c), buf, sizeof buf));
}

Test(isa, levels_nest)
{
    cr_expect_eq(NETELECT_X86_NEEDS_AVX512 & NETELECT_X86_NEEDS_AVX2, NETELECT_X86_NEEDS_AVX2);
    cr_expect_eq(NETELECT_X86_XCR0_AVX512 & NETELECT_X86_XCR0_AVX2, NETELECT_X86_XCR0_AVX2);
}

#if NETELECT_HAVE_X86_SIMD
static void expect_unit(const char *unit, uint64_t compiled, uint64_t needs)
{
    const uint64_t base = netelect__x86_compiled_baseline;
    const uint64_t want = needs | base;
    char buf[512];
    cr_expect_eq(want & ~compiled, 0, "%s unit is built without %s, which its level requires",
                 unit, names(want & ~compiled, buf, sizeof buf));
    cr_expect_eq(compiled & ~want, 0,
                 "%s unit is built with %s, which its level does not require: detection "
                 "would select it on CPUs without them",
                 unit, names(compiled & ~want, buf, sizeof buf));
}

Test(isa, units_are_compiled_for_their_level)
{
    expect_unit("avx2", netelect__x86_compiled_avx2, NETELECT_X86_NEEDS_AVX2);
    expect_unit("avx512", netelect__x86_compiled_avx512, NETELECT_X86_NEEDS_AVX512);
}
#endif
