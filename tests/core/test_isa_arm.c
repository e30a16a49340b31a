/* SPDX-License-Identifier: MIT */
/*
 * The AArch64 ISA levels (core/arm/isa_levels.h) against the outside world:
 *
 *  - detection, run on recorded AT_HWCAP words of real CPUs (the pure
 *    decoder, so this part runs on every architecture), picks the level
 *    their kernels can run on;
 *  - on AArch64 (CI: the cross build under qemu-aarch64), the neon unit is
 *    compiled for exactly its level, and the running CPU is detected as
 *    having it.
 *
 * The words are the `Features` lines of /proc/cpuinfo as Linux prints them
 * for these parts, turned into bits with <asm/hwcap.h>'s numbering.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <string.h>

#include "config.h"
#include "core/arm/isa_levels.h"
#include "core/dispatch.h"

static const struct {
    const char *cpu;
    uint64_t hwcap;
    const char *level;
} hwcaps[] = {
    /* fp asimd evtstrm crc32 cpuid */
    {"Cortex-A72 (Raspberry Pi 4)", 0x887, "neon"},
    /* fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid */
    {"Cortex-A53 with the crypto extension", 0x8ff, "neon"},
    /* ... atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs */
    {"Neoverse N1 (AWS Graviton2)", 0x10119fff, "neon"},
    /* every bit from fp to ssbs but sb, then paca pacg: sve among them */
    {"Neoverse V1 (AWS Graviton3)", 0xdfffffff, "neon"},
    /* A kernel on a CPU without FP/AdvSIMD reports neither. */
    {"no FP/AdvSIMD (evtstrm cpuid only)", 0x804, "scalar"},
    /* AdvSIMD shares FP's registers: the bit alone is not enough. */
    {"asimd without fp (inconsistent word)", 0x2, "scalar"},
    {"no hwcaps at all", 0, "scalar"},
};

Test(isa_arm, levels_of_real_hwcaps)
{
    for (size_t i = 0; i < sizeof hwcaps / sizeof hwcaps[0]; i++) {
        const unsigned got = netelect__arm_levels(hwcaps[i].hwcap);
        cr_expect_str_eq(netelect__cpu_name(got), hwcaps[i].level,
                         "%s (AT_HWCAP %#" PRIx64 "): detected %s, expected %s", hwcaps[i].cpu,
                         hwcaps[i].hwcap, netelect__cpu_name(got), hwcaps[i].level);
        cr_expect_eq((int)got, netelect__cpu_flags_for(hwcaps[i].level), "%s: flags %#x",
                     hwcaps[i].cpu, got);
    }
}

Test(isa_arm, decode_keeps_the_listed_bits)
{
    cr_expect_eq(netelect__arm_features(UINT64_MAX), NETELECT_ARM_KNOWN);
    const uint64_t n1 = netelect__arm_features(0x10119fff);
    const uint64_t has = NETELECT_ARM_NEEDS_NEON | NETELECT_ARM_ATOMICS | NETELECT_ARM_ASIMDDP |
                         NETELECT_ARM_CRC32 | NETELECT_ARM_ASIMDRDM;
    cr_expect_eq(n1 & has, has, "missing %#" PRIx64, has & ~n1);
    cr_expect_eq(n1 & NETELECT_ARM_SVE, 0, "Neoverse N1 has no SVE");
}

Test(isa_arm, names)
{
    cr_expect_str_eq(netelect__cpu_name(NETELECT_CPU_NEON), "neon");
    cr_expect_eq(netelect__cpu_flags_for("neon"), (int)NETELECT_CPU_NEON);
}

#if defined(__aarch64__) && NETELECT_HAVE_ARM_SIMD
#include <sys/auxv.h>

/* The unit's -march replaces the baseline's features, so "exactly its
 * level" needs no baseline term here (unlike x86's additive -m flags). */
Test(isa_arm, neon_unit_is_compiled_for_its_level)
{
    const uint64_t c = netelect__arm_compiled_neon;
    cr_expect_eq(NETELECT_ARM_NEEDS_NEON & ~c, 0, "neon unit built without %#" PRIx64,
                 NETELECT_ARM_NEEDS_NEON & ~c);
    cr_expect_eq(c & ~NETELECT_ARM_NEEDS_NEON, 0,
                 "neon unit built with %#" PRIx64 ", which its level does not require: "
                 "detection would select it on CPUs without them",
                 c & ~NETELECT_ARM_NEEDS_NEON);
}

/* Every AArch64 Linux machine we run on has AdvSIMD, qemu-aarch64's
 * default CPU included: a detection that misses it would test nothing. */
Test(isa_arm, this_cpu_has_neon)
{
    cr_expect(netelect__cpu_detect() & NETELECT_CPU_NEON, "AT_HWCAP: %#lx",
              (unsigned long)getauxval(AT_HWCAP));
}
#endif
