/* SPDX-License-Identifier: MIT */
/*
 * CPU feature detection: cpuid for what the CPU has, xgetbv for what the OS
 * saves across context switches.  Both are needed: a CPU with AVX-512 under
 * a kernel that does not enable ZMM state would fault on the first kernel.
 */
#include <string.h>

#include "core/dsp.h"

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
    unsigned a, b, c, d, flags = 0;

    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, popcnt = (c >> 23) & 1;
    if (!osxsave || !avx || !popcnt)
        return 0;
    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) /* XMM and YMM state */
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1, bmi1 = (b >> 3) & 1, bmi2 = (b >> 8) & 1;
    if (avx2 && bmi1 && bmi2)
        flags |= NETELECT_CPU_AVX2;
    const int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    const int vbmi2 = (c >> 6) & 1;
    /* opmask, ZMM_Hi256 and Hi16_ZMM state */
    if ((flags & NETELECT_CPU_AVX2) && f && dq && bw && vl && vbmi2 && (xcr0 & 0xe0) == 0xe0)
        flags |= NETELECT_CPU_AVX512;
    return flags;
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
    return -1;
}

const char *netelect__cpu_name(unsigned flags)
{
    if (flags & NETELECT_CPU_AVX512)
        return "avx512";
    if (flags & NETELECT_CPU_AVX2)
        return "avx2";
    return "scalar";
}
