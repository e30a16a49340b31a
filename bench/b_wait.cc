// SPDX-License-Identifier: MIT
//
// Change notification (netelect_view_wait): what a waiter costs
// the writer, and how soon it is woken.
//
// Rows (group "shm_mt": need two CPUs, report.py runs them unpinned):
//   shm_mt/publish_to_woken/3     a reader thread sleeps in netelect_view_wait;
//                                 the writer publishes a 3-node view; manual
//                                 time is the latency from the publish call to
//                                 the waiter's return (counters: p50, p99)
//   shm_mt/publish_waiters/W      netelect__writer_publish of a 3-node view
//                                 with W = 0, 1, 100 threads waiting (each
//                                 waits again as soon as it is woken)
#include "bench/bench.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

extern "C" {
#include "shm/writer.h"
}

namespace nb {
namespace {

uint64_t mono_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

const netelect_wnode kNodes[3] = {{1, 100, 100, 0, 0, 1, 1}, {2, 200, 200, 0, 0, 1, 1},
                                  {3, 300, 300, 0, 0, 1, 1}};
const uint64_t kMembers[3] = {1, 2, 3};

struct Writer {
    std::string name;
    netelect_writer *w = nullptr;
    int rc = 0;
    explicit Writer(const char *tag)
    {
        name = "netelect-bench-" + std::to_string(getpid()) + "-" + tag;
        netelect_writer_config cfg{};
        cfg.name = name.c_str();
        cfg.mode = 0600;
        cfg.group = static_cast<gid_t>(-1);
        cfg.self_id = kSelf;
        rc = netelect__writer_open(&cfg, &w);
        if (rc == 0)
            rc = publish();
    }
    int publish()
    {
        netelect_wchan ch{};
        ch.name = "c3";
        ch.members = kMembers;
        ch.n_members = 3;
        return netelect__writer_publish(w, kNodes, 3, &ch, 1);
    }
    ~Writer()
    {
        if (w)
            netelect__writer_close(w, true);
    }
};

double pct(std::vector<double> x, double p)
{
    if (x.empty())
        return 0.0;
    std::sort(x.begin(), x.end());
    return x[std::min(x.size() - 1, static_cast<size_t>(p * static_cast<double>(x.size())))];
}

void publish_to_woken(benchmark::State &st)
{
    Writer wr("woken");
    netelect_view *v = nullptr;
    int rc = wr.rc ? wr.rc : netelect_view_open(wr.name.c_str(), &v);
    if (rc) {
        st.SkipWithError(("writer or reader open: " + std::string(netelect_strerror(rc))).c_str());
        return;
    }
    std::atomic<uint64_t> woken_ns{0}, woken_gen{netelect_view_generation(v)};
    std::atomic<int> asleep{0};
    std::atomic<bool> stop{false};
    std::thread waiter([&] {
        uint64_t g = woken_gen.load();
        while (!stop.load()) {
            asleep.store(1);
            const int r = netelect_view_wait(v, g, 200000000u);
            const uint64_t t = mono_ns();
            asleep.store(0);
            if (r == 0) {
                g = netelect_view_generation(v);
                woken_ns.store(t, std::memory_order_relaxed);
                woken_gen.store(g, std::memory_order_release);
            }
        }
    });
    std::vector<double> lat;
    std::string err;
    uint64_t iter = 0;
    for ([[maybe_unused]] auto _ : st) {
        if (++iter % 64 == 0)
            netelect__writer_heartbeat(wr.w);
        // Let the waiter get into the futex (not timed).
        while (!asleep.load())
            std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        const uint64_t before = woken_gen.load(std::memory_order_acquire);
        const uint64_t t0 = mono_ns();
        if ((rc = wr.publish())) {
            err = std::string("publish: ") + netelect_strerror(rc);
            break;
        }
        const uint64_t deadline = t0 + 1000000000u;
        while (woken_gen.load(std::memory_order_acquire) == before && mono_ns() < deadline)
            std::this_thread::yield();
        if (woken_gen.load() == before) {
            err = "the waiter was not woken within 1 s";
            break;
        }
        const double l = static_cast<double>(woken_ns.load(std::memory_order_relaxed) - t0);
        lat.push_back(l);
        st.SetIterationTime(l * 1e-9);
    }
    stop.store(true);
    wr.publish(); // wakes the waiter for the last time
    waiter.join();
    netelect_view_close(v);
    if (!err.empty()) {
        st.SkipWithError(err.c_str());
        return;
    }
    st.counters["p50_ns"] = pct(lat, 0.5);
    st.counters["p99_ns"] = pct(lat, 0.99);
}

void publish_waiters(benchmark::State &st)
{
    const int nw = static_cast<int>(st.range(0));
    Writer wr(("waiters" + std::to_string(nw)).c_str());
    netelect_view *v = nullptr;
    int rc = wr.rc ? wr.rc : netelect_view_open(wr.name.c_str(), &v);
    if (rc) {
        st.SkipWithError(("writer or reader open: " + std::string(netelect_strerror(rc))).c_str());
        return;
    }
    std::atomic<bool> stop{false};
    std::atomic<int> waiting{0};
    std::vector<std::thread> th;
    th.reserve(static_cast<size_t>(nw));
    for (int i = 0; i < nw; i++)
        th.emplace_back([&] {
            uint64_t g = netelect_view_generation(v);
            bool counted = false;
            while (!stop.load()) {
                if (!counted) {
                    waiting.fetch_add(1);
                    counted = true;
                }
                if (netelect_view_wait(v, g, 200000000u) == 0)
                    g = netelect_view_generation(v);
            }
        });
    while (waiting.load() < nw)
        std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    uint64_t iter = 0;
    for ([[maybe_unused]] auto _ : st) {
        if (++iter % 64 == 0)
            netelect__writer_heartbeat(wr.w);
        if ((rc = wr.publish()))
            break;
    }
    stop.store(true);
    wr.publish();
    for (auto &t : th)
        t.join();
    netelect_view_close(v);
    if (rc)
        st.SkipWithError(("publish: " + std::string(netelect_strerror(rc))).c_str());
    st.counters["waiters"] = nw;
}

} // namespace

void register_wait()
{
    if (!opt.has_group("shm_mt"))
        return;
    benchmark::RegisterBenchmark("shm_mt/publish_to_woken/3", publish_to_woken)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("shm_mt/publish_waiters", publish_waiters)
        ->Arg(0)
        ->Arg(1)
        ->Arg(100)
        ->Unit(benchmark::kMicrosecond);
}

} // namespace nb
