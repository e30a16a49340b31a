// SPDX-License-Identifier: MIT
//
// netelect-bench: Google Benchmark over the C API.  Beyond the usual
// --benchmark_* flags it takes
//   --ne_sizes=3,16,...     replica counts (default 3,16,64,256,1k,10k,100k,1M)
//   --ne_groups=core,shm,agent,shm_mt
//                           which families to register (default
//                           core,shm,agent; shm_mt are the multi-thread shm
//                           rows, run unpinned by report.py)
//   --ne_quick              fewer iterations where a row fixes its own count
// and records the machine, compiler, flags and ISA in the JSON context.
#include "bench/bench.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <unistd.h>

#ifndef NETELECT_BENCH_FLAGS
#define NETELECT_BENCH_FLAGS "?"
#endif

namespace nb {

void add_context(const std::string &key, const std::string &value)
{
    benchmark::AddCustomContext(key, value);
}

} // namespace nb

namespace {

std::string cpu_model()
{
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("model name", 0) == 0) {
            auto p = line.find(':');
            if (p != std::string::npos)
                return line.substr(p + 2);
        }
    return "unknown";
}

std::string cpu_flags_of_interest()
{
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("flags", 0) == 0) {
            std::istringstream in(line.substr(line.find(':') + 1));
            std::string w, out;
            while (in >> w)
                if (w.rfind("avx", 0) == 0 || w.rfind("bmi", 0) == 0 || w == "popcnt" ||
                    w == "hypervisor" || w == "sse4_2")
                    out += w + " ";
            return out;
        }
    return "";
}

std::string cpu_family_model()
{
    std::ifstream f("/proc/cpuinfo");
    std::string line, fam, mod;
    while (std::getline(f, line)) {
        if (line.rfind("cpu family", 0) == 0 && fam.empty())
            fam = line.substr(line.find(':') + 2);
        if (line.rfind("model\t", 0) == 0 && mod.empty())
            mod = line.substr(line.find(':') + 2);
    }
    return "family " + fam + " model " + mod;
}

// The VM exposes no /sys cache topology (so Google Benchmark's own "caches"
// context is empty); glibc's sysconf reads cpuid.
std::string caches()
{
    std::ostringstream o;
    o << "L1d " << sysconf(_SC_LEVEL1_DCACHE_SIZE) / 1024 << " KiB, L2 "
      << sysconf(_SC_LEVEL2_CACHE_SIZE) / 1024 << " KiB, L3 " << sysconf(_SC_LEVEL3_CACHE_SIZE) / 1024
      << " KiB (sysconf, as the guest reports them)";
    return o.str();
}

std::vector<size_t> parse_sizes(const char *s)
{
    std::vector<size_t> v;
    while (*s) {
        char *end;
        unsigned long long x = std::strtoull(s, &end, 10);
        if (end == s)
            break;
        if (*end == 'k' || *end == 'K')
            x *= 1000, end++;
        else if (*end == 'M')
            x *= 1000000, end++;
        v.push_back(static_cast<size_t>(x));
        s = *end == ',' ? end + 1 : end;
    }
    return v;
}

std::vector<std::string> parse_list(const char *s)
{
    std::vector<std::string> v;
    std::string cur;
    for (; *s; s++) {
        if (*s == ',') {
            if (!cur.empty())
                v.push_back(cur);
            cur.clear();
        } else {
            cur += *s;
        }
    }
    if (!cur.empty())
        v.push_back(cur);
    return v;
}

} // namespace

int main(int argc, char **argv)
{
    // Our own flags first; Google Benchmark then sees only its own.
    int w = 1;
    for (int i = 1; i < argc; i++) {
        if (!std::strncmp(argv[i], "--ne_sizes=", 11))
            nb::opt.sizes = parse_sizes(argv[i] + 11);
        else if (!std::strcmp(argv[i], "--ne_quick"))
            nb::opt.quick = true;
        else if (!std::strncmp(argv[i], "--ne_groups=", 12))
            nb::opt.groups = parse_list(argv[i] + 12);
        else
            argv[w++] = argv[i];
    }
    argc = w;
    argv[argc] = nullptr;

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;

    nb::add_context("cpu_model", cpu_model());
    nb::add_context("cpu_family_model", cpu_family_model());
    nb::add_context("cpu_flags", cpu_flags_of_interest());
    nb::add_context("cpu_caches", caches());
    nb::add_context("netelect_isa", netelect_isa());
    nb::add_context("netelect_version", netelect_version());
#ifdef __clang__
    nb::add_context("compiler", "clang++ " __clang_version__);
#else
    nb::add_context("compiler", "g++ " __VERSION__);
#endif
    nb::add_context("build_flags", NETELECT_BENCH_FLAGS);
    std::string groups;
    for (const std::string &g : nb::opt.groups)
        groups += (groups.empty() ? "" : ",") + g;
    nb::add_context("ne_groups", groups);

    nb::register_core();
    nb::register_shm();
    nb::register_agent();
    nb::register_wait();

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    nb::shm_cleanup();
    return 0;
}
