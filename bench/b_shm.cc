// SPDX-License-Identifier: MIT
//
// The shared-memory view through the public reader API (netelect/view.h)
// and the internal writer (shm/writer.h).
//
// Rows (group "shm", run pinned like the core rows):
//   shm/open_close/<nodes>        netelect_view_open + netelect_view_close
//   shm/generation/<nodes>        netelect_view_generation (the cheap check)
//   shm/view_elect/<n>            netelect_view_elect on an n-replica channel,
//                                 the same question every call (answered from
//                                 the library's per-thread cache after the first)
//   shm/view_elect_nocache/<n>    the same, self alternating between two absent
//                                 ids: the cache never hits, every call is a
//                                 full validated read and election
//   shm/mem_elect/<n>             netelect_elect on the same n replicas in
//                                 memory (the arrays the view was published
//                                 from), self alternating likewise
//   shm/publish/<nodes>           netelect__writer_publish of a <nodes>-node
//                                 view (one channel holding every node plus a
//                                 3-replica one), no reader attached
//   shm/publish_full/<nodes>/<k>  k nodes' measurements change, and the whole
//                                 view is published (netelect__writer_publish,
//                                 the only way before delta publishing)
//   shm/publish_delta/<nodes>/<k> the same change published as a delta
//                                 (netelect__writer_update of the k nodes);
//                                 nodes 10k, 100k, 1M (1M not with --ne_quick),
//                                 k = 1, 100, all
// Rows (group "shm_mt": need two CPUs, report.py runs them unpinned):
//   shm_mt/publish_to_visible/3   a writer publishes, a reader thread spins on
//                                 netelect_view_generation; manual time is the
//                                 latency from the publish call to the reader
//                                 seeing the new generation (counters give
//                                 the median from the call and from its return)
//   shm_mt/readers_1khz/3/threads:T  T reader threads elect on a 3-replica
//                                 channel while a writer thread publishes a
//                                 1k-node view every millisecond
//
// Segments are named netelect-bench-<pid>-<tag> and removed at exit
// (segment, .lock, .readers and anything else with that prefix).
//
// The shm layer is written in parallel with this suite: every writer and
// reader entry point is referenced weakly (the library is linked whole),
// and if any is missing or a trial open fails, no shm row is registered and
// the context says why.
#include "bench/bench.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <thread>

#include <dirent.h>
#include <unistd.h>

extern "C" {
#include "core/dispatch.h"
#include "shm/writer.h"
}

#pragma weak netelect__writer_open
#pragma weak netelect__writer_publish
#pragma weak netelect__writer_update
#pragma weak netelect__writer_close
#pragma weak netelect__writer_generation
#pragma weak netelect__writer_heartbeat
#pragma weak netelect_view_open
#pragma weak netelect_view_close
#pragma weak netelect_view_elect
#pragma weak netelect_view_generation

namespace nb {
namespace {

std::string prefix()
{
    return "netelect-bench-" + std::to_string(getpid());
}

uint64_t now_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// A published view: nodes from dataset(nodes, rand) copy 0, one channel
// "all" with every node and a channel "c3" with the first three.
struct View {
    std::string name;
    size_t nodes = 0;
    netelect_writer *w = nullptr;
    std::vector<netelect_wnode> wn;
    std::vector<uint64_t> all, c3;
    std::vector<netelect_wchan> chans;
    // The in-memory arrays the channels were built from (member order).
    const uint64_t *ids = nullptr, *rtt = nullptr;
    const uint8_t *healthy = nullptr;
};

std::map<std::string, View *> &views()
{
    static std::map<std::string, View *> v;
    return v;
}

// Longer than any timed loop: see heartbeat().
constexpr uint64_t kBenchHeartbeatNs = UINT64_C(60000000000);

int make_view(const std::string &tag, size_t nodes, View **out)
{
    auto it = views().find(tag);
    if (it != views().end()) {
        *out = it->second;
        return 0;
    }
    View *v = new View;
    v->name = prefix() + "-" + tag;
    v->nodes = nodes;
    Dataset &ds = dataset(nodes, Input::rand, 0);
    const Copy &cp = ds.copies[0];
    v->ids = cp.ids;
    v->rtt = cp.rtt;
    v->healthy = cp.healthy;
    v->wn.resize(nodes);
    for (size_t i = 0; i < nodes; i++) {
        v->wn[i] = netelect_wnode{cp.ids[i], cp.rtt[i], cp.rtt[i], 0, now_ns(), cp.healthy[i],
                                  static_cast<uint8_t>(cp.rtt[i] == NETELECT_RTT_UNKNOWN
                                                           ? NETELECT_SRC_NONE
                                                           : NETELECT_SRC_PROBE)};
        v->all.push_back(cp.ids[i]);
    }
    for (size_t i = 0; i < std::min<size_t>(3, nodes); i++)
        v->c3.push_back(cp.ids[i]);
    // Named fields, the rest zero: fields added to netelect_wchan later
    // (e.g. an optional per-member array) keep their "none" default here.
    for (const auto *ids : {&v->all, &v->c3}) {
        netelect_wchan c{};
        c.name = ids == &v->all ? "all" : "c3";
        c.members = ids->data();
        c.n_members = static_cast<uint32_t>(ids->size());
        v->chans.push_back(c);
    }

    netelect_writer_config cfg{};
    cfg.name = v->name.c_str();
    cfg.mode = 0600;
    cfg.group = static_cast<gid_t>(-1);
    cfg.self_id = kSelf;
    cfg.max_nodes = static_cast<uint32_t>(nodes + 16);
    cfg.max_chans = 4;
    cfg.max_members = static_cast<uint32_t>(nodes + 16);
    cfg.heartbeat_period_ns = kBenchHeartbeatNs; // see heartbeat()
    int rc = netelect__writer_open(&cfg, &v->w);
    if (rc == 0)
        rc = netelect__writer_publish(v->w, v->wn.data(), v->wn.size(), v->chans.data(),
                                      v->chans.size());
    if (rc != 0) {
        if (v->w)
            netelect__writer_close(v->w, true);
        delete v;
        return rc;
    }
    views()[tag] = v;
    *out = v;
    return 0;
}

// Readers judge the agent by its heartbeat: one more than 1.5 periods late
// costs them a lock probe (fcntl, ~1 us) every LIVENESS_EVERY calls, and
// past max(3 periods, 300 ms) the agent counts as gone, which sends readers
// to look for a new segment and, past the fail-static limit, fails them
// with NETELECT_ESTALE.  A live agent heartbeats every 100 ms and is never
// late; the rows here heartbeat from the thread that owns the writer,
// outside the timed part, before each timed loop, which lasts longer than
// 150 ms (Google Benchmark's min_time), so the views declare a heartbeat
// period of kBenchHeartbeatNs: a timed loop then sees an agent on time, as
// readers of a live agent do, and pays the same periodic clock check.
void heartbeat(View *v)
{
    netelect__writer_heartbeat(v->w);
}

int publish(View *v)
{
    return netelect__writer_publish(v->w, v->wn.data(), v->wn.size(), v->chans.data(),
                                    v->chans.size());
}

std::string err_text(const char *what, int rc)
{
    return std::string(what) + ": " + netelect_strerror(rc);
}

// Elect through the view and check the answer against the in-memory
// reference on the same replicas.
std::string check_view(netelect_view *h, const View *v, const char *chan, size_t n,
                       uint64_t self = kSelf)
{
    netelect_result r{};
    int rc = netelect_view_elect(h, chan, self, &r);
    if (rc)
        return err_text("netelect_view_elect", rc);
    const netelect_result e = netelect__elect_ref(v->ids, v->rtt, v->healthy, n, self);
    if (r.outcome != e.outcome || r.winner != e.winner)
        return "netelect_view_elect differs from the in-memory reference";
    return {};
}


// ---------------------------------------------------------------- pinned rows

struct ViewHandle {
    netelect_view *h = nullptr;
    int rc = 0;
    explicit ViewHandle(const View *v) { rc = netelect_view_open(v->name.c_str(), &h); }
    ~ViewHandle()
    {
        if (h)
            netelect_view_close(h);
    }
};

void reg_pinned(View *big, View *small)
{
    benchmark::RegisterBenchmark(("shm/open_close/" + std::to_string(big->nodes)).c_str(),
                                 [big](benchmark::State &st) {
                                     for ([[maybe_unused]] auto _ : st) {
                                         netelect_view *h = nullptr;
                                         int rc = netelect_view_open(big->name.c_str(), &h);
                                         if (rc) {
                                             st.SkipWithError(
                                                 err_text("netelect_view_open", rc).c_str());
                                             break;
                                         }
                                         netelect_view_close(h);
                                     }
                                 });
    benchmark::RegisterBenchmark(("shm/generation/" + std::to_string(big->nodes)).c_str(),
                                 [big](benchmark::State &st) {
                                     ViewHandle vh(big);
                                     if (vh.rc) {
                                         st.SkipWithError(
                                             err_text("netelect_view_open", vh.rc).c_str());
                                         return;
                                     }
                                     for ([[maybe_unused]] auto _ : st) {
                                         uint64_t g = netelect_view_generation(vh.h);
                                         benchmark::DoNotOptimize(g);
                                     }
                                 });
    // view_elect / mem_elect on the 3-replica channel and on the channel
    // holding every node of the view.
    struct Case {
        View *v;
        const char *chan;
        size_t n;
    };
    const Case cases[] = {{big, "c3", 3}, {small, "all", small->nodes}};
    for (const Case &c : cases) {
        // The same question each call: after the first, the library answers
        // from its per-thread cache (same channel, self and version: one
        // acquire load), which is what a high-rate failover check gets.
        benchmark::RegisterBenchmark(
            ("shm/view_elect/" + std::to_string(c.n)).c_str(), [c](benchmark::State &st) {
                heartbeat(c.v);
                ViewHandle vh(c.v);
                if (vh.rc) {
                    st.SkipWithError(err_text("netelect_view_open", vh.rc).c_str());
                    return;
                }
                std::string e = check_view(vh.h, c.v, c.chan, c.n, kSelf);
                if (!e.empty()) {
                    st.SkipWithError(e.c_str());
                    return;
                }
                int bad = 0;
                for ([[maybe_unused]] auto _ : st) {
                    netelect_result r;
                    bad |= netelect_view_elect(vh.h, c.chan, kSelf, &r);
                    benchmark::DoNotOptimize(r);
                }
                if (bad)
                    st.SkipWithError("netelect_view_elect failed while timed");
                set_counters(st, c.n);
            });
        // self alternates between two ids absent from the channel, so the
        // per-thread answer cache never hits: every call is a full validated
        // read and election over the channel's replicas in the segment.
        benchmark::RegisterBenchmark(
            ("shm/view_elect_nocache/" + std::to_string(c.n)).c_str(),
            [c](benchmark::State &st) {
                heartbeat(c.v);
                ViewHandle vh(c.v);
                if (vh.rc) {
                    st.SkipWithError(err_text("netelect_view_open", vh.rc).c_str());
                    return;
                }
                const uint64_t selves[2] = {kSelf, kSelf + 1};
                for (uint64_t s : selves) {
                    std::string e = check_view(vh.h, c.v, c.chan, c.n, s);
                    if (!e.empty()) {
                        st.SkipWithError(e.c_str());
                        return;
                    }
                }
                int bad = 0;
                size_t i = 0;
                for ([[maybe_unused]] auto _ : st) {
                    netelect_result r;
                    bad |= netelect_view_elect(vh.h, c.chan, selves[i], &r);
                    benchmark::DoNotOptimize(r);
                    i ^= 1;
                }
                if (bad)
                    st.SkipWithError("netelect_view_elect failed while timed");
                set_counters(st, c.n);
            });
        benchmark::RegisterBenchmark(
            ("shm/mem_elect/" + std::to_string(c.n)).c_str(), [c](benchmark::State &st) {
                const uint64_t selves[2] = {kSelf, kSelf + 1};
                size_t i = 0;
                for ([[maybe_unused]] auto _ : st) {
                    netelect_result r =
                        netelect_elect(c.v->ids, c.v->rtt, c.v->healthy, c.n, selves[i]);
                    benchmark::DoNotOptimize(r);
                    i ^= 1;
                }
                set_counters(st, c.n);
            });
    }
}

void reg_publish(size_t nodes)
{
    const std::string tag = "p" + std::to_string(nodes);
    benchmark::RegisterBenchmark(
        ("shm/publish/" + std::to_string(nodes)).c_str(), [tag, nodes](benchmark::State &st) {
            View *v = nullptr;
            int rc = make_view(tag, nodes, &v);
            if (rc) {
                st.SkipWithError(err_text("writer open/publish", rc).c_str());
                return;
            }
            for ([[maybe_unused]] auto _ : st) {
                rc = publish(v);
                if (rc) {
                    st.SkipWithError(err_text("netelect__writer_publish", rc).c_str());
                    break;
                }
            }
            set_counters(st, nodes);
        });
}

// k nodes of the view get new measurements (a window that moves on every
// call, so successive versions change different nodes), written into
// v->wn, which stays the logical view; `out` gets the changed records.
void change_nodes(View *v, size_t k, uint64_t iter, std::vector<netelect_wnode> &out)
{
    const size_t n = v->wn.size();
    const size_t start = static_cast<size_t>((iter * 104729u) % n);
    out.resize(k);
    for (size_t j = 0; j < k; j++) {
        netelect_wnode &w = v->wn[(start + j) % n];
        w.rtt_ns = (w.rtt_ns + 1 + iter) % 1000000;
        w.rtt_raw_ns = w.rtt_ns;
        w.healthy = static_cast<uint8_t>((iter + j) % 9 != 0);
        out[j] = w;
    }
}

void reg_publish_changed(size_t nodes, size_t k, bool delta)
{
    const std::string tag = "pc" + std::to_string(nodes);
    const std::string row = std::string(delta ? "shm/publish_delta/" : "shm/publish_full/") +
                            std::to_string(nodes) + "/" + std::to_string(k);
    auto *b = benchmark::RegisterBenchmark(row.c_str(), [tag, nodes, k, delta](benchmark::State &st) {
        View *v = nullptr;
        int rc = make_view(tag, nodes, &v);
        if (rc) {
            st.SkipWithError(err_text("writer open/publish", rc).c_str());
            return;
        }
        // A full publish first: a delta applies to the last full view.
        if ((rc = publish(v))) {
            st.SkipWithError(err_text("netelect__writer_publish", rc).c_str());
            return;
        }
        std::vector<netelect_wnode> upd;
        uint64_t iter = 0;
        for ([[maybe_unused]] auto _ : st) {
            st.PauseTiming();
            change_nodes(v, k, ++iter, upd);
            if (iter % 64 == 0)
                heartbeat(v);
            st.ResumeTiming();
            rc = delta ? netelect__writer_update(v->w, upd.data(), upd.size()) : publish(v);
            if (rc) {
                st.SkipWithError(err_text(delta ? "netelect__writer_update"
                                                : "netelect__writer_publish", rc).c_str());
                break;
            }
        }
        set_counters(st, k);
    });
    // A 1M-node full publish takes ~0.1-0.2 s: a handful of iterations.
    b->MinTime(nodes >= 1000000 ? 1.0 : 0.2);
}

// ---------------------------------------------------------------- two-CPU rows

void publish_to_visible(benchmark::State &st)
{
    View *v = nullptr;
    int rc = make_view("ptv", 3, &v);
    if (rc) {
        st.SkipWithError(err_text("writer open/publish", rc).c_str());
        return;
    }
    ViewHandle vh(v);
    if (vh.rc) {
        st.SkipWithError(err_text("netelect_view_open", vh.rc).c_str());
        return;
    }
    std::atomic<uint64_t> seen_gen{netelect_view_generation(vh.h)};
    std::atomic<uint64_t> seen_ns{0};
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        uint64_t last = seen_gen.load();
        while (!stop.load(std::memory_order_relaxed)) {
            const uint64_t g = netelect_view_generation(vh.h);
            if (g != last) {
                seen_ns.store(now_ns(), std::memory_order_relaxed);
                seen_gen.store(g, std::memory_order_release);
                last = g;
            }
        }
    });
    std::vector<double> from_call, from_return;
    std::string err;
    uint64_t iter = 0;
    for ([[maybe_unused]] auto _ : st) {
        if (++iter % 64 == 0)
            heartbeat(v); // not timed: manual time starts at t0 below
        const uint64_t before = seen_gen.load(std::memory_order_acquire);
        const uint64_t t0 = now_ns();
        rc = publish(v);
        const uint64_t t1 = now_ns();
        if (rc) {
            err = err_text("netelect__writer_publish", rc);
            break;
        }
        const uint64_t deadline = t1 + 1000000000u;
        uint64_t g;
        while ((g = seen_gen.load(std::memory_order_acquire)) == before && now_ns() < deadline)
            ;
        if (g == before) {
            err = "the reader never saw the new generation (1 s)";
            break;
        }
        const uint64_t seen = seen_ns.load(std::memory_order_relaxed);
        const double lat = static_cast<double>(seen - t0);
        from_call.push_back(lat);
        from_return.push_back(seen > t1 ? static_cast<double>(seen - t1) : 0.0);
        st.SetIterationTime(lat * 1e-9);
    }
    stop.store(true);
    reader.join();
    if (!err.empty()) {
        st.SkipWithError(err.c_str());
        return;
    }
    auto pct = [](std::vector<double> x, double p) {
        if (x.empty())
            return 0.0;
        std::sort(x.begin(), x.end());
        return x[std::min(x.size() - 1, static_cast<size_t>(p * static_cast<double>(x.size())))];
    };
    st.counters["p50_from_call_ns"] = pct(from_call, 0.5);
    st.counters["p99_from_call_ns"] = pct(from_call, 0.99);
    st.counters["p50_from_return_ns"] = pct(from_return, 0.5);
}

// The 1 kHz writer behind the reader-throughput rows: started in Setup,
// stopped in Teardown (both run once per run, outside the reader threads).
struct Ticker {
    View *v = nullptr;
    std::thread t;
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> published{0}, failed{0};
};
Ticker ticker;

void ticker_setup(const benchmark::State &)
{
    if (make_view("r1k", 1000, &ticker.v))
        return;
    // Between repetitions no one beats: with the other shm_mt rows
    // interleaved, the gap can pass the hang limit plus fail-static (3 s),
    // and readers rightly call the agent stale until the first beat.  Beat
    // before any reader opens the view, as a live agent would have.
    heartbeat(ticker.v);
    ticker.stop = false;
    ticker.t = std::thread([] {
        struct timespec next;
        clock_gettime(CLOCK_MONOTONIC, &next);
        uint64_t k = 0;
        while (!ticker.stop.load(std::memory_order_relaxed)) {
            if (++k % 100 == 0)
                heartbeat(ticker.v); // every 100 ms, as the agent does
            next.tv_nsec += 1000000;
            if (next.tv_nsec >= 1000000000) {
                next.tv_nsec -= 1000000000;
                next.tv_sec++;
            }
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
            if (publish(ticker.v))
                ticker.failed++;
            else
                ticker.published++;
        }
    });
}

void ticker_teardown(const benchmark::State &)
{
    ticker.stop = true;
    if (ticker.t.joinable())
        ticker.t.join();
}

void readers(benchmark::State &st)
{
    if (!ticker.v) {
        st.SkipWithError("could not create the 1 kHz writer's segment");
        return;
    }
    ViewHandle vh(ticker.v);
    if (vh.rc) {
        st.SkipWithError(err_text("netelect_view_open", vh.rc).c_str());
        return;
    }
    const uint64_t g0 = netelect_view_generation(vh.h);
    int first_bad = 0;
    uint64_t bad = 0;
    for ([[maybe_unused]] auto _ : st) {
        netelect_result r;
        const int rc = netelect_view_elect(vh.h, "c3", kSelf, &r);
        if (__builtin_expect(rc != 0, 0) && bad++ == 0)
            first_bad = rc;
        benchmark::DoNotOptimize(r);
    }
    const uint64_t g1 = netelect_view_generation(vh.h);
    if (bad) {
        // Which error, and how often, is what tells a reader's bug from a
        // starved writer.
        st.SkipWithError((err_text("netelect_view_elect failed while the writer published", first_bad) +
                          " (" + std::to_string(bad) + " of " + std::to_string(st.iterations()) +
                          " calls)")
                             .c_str());
        return;
    }
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
    // Generations seen by this thread while it ran (about 1 per ms).
    st.counters["generations_seen"] =
        benchmark::Counter(static_cast<double>(g1 - g0), benchmark::Counter::kAvgThreads);
}

bool shm_linked()
{
    return netelect__writer_open && netelect__writer_publish && netelect__writer_close &&
           netelect__writer_generation && netelect__writer_heartbeat && netelect_view_open && netelect_view_close &&
           netelect_view_elect && netelect_view_generation;
}

} // namespace

void register_shm()
{
    const bool pinned = opt.has_group("shm"), mt = opt.has_group("shm_mt");
    if (!pinned && !mt)
        return;
    if (!shm_linked()) {
        add_context("shm", "not benchmarked: the shm writer/reader is not in this build");
        return;
    }
    // Trial: a writer and a reader on a small view must work end to end.
    View *small3 = nullptr;
    int rc = make_view("trial", 3, &small3);
    netelect_view *h = nullptr;
    if (rc == 0)
        rc = netelect_view_open(small3->name.c_str(), &h);
    std::string e;
    if (rc == 0) {
        e = check_view(h, small3, "c3", 3);
        netelect_view_close(h);
    } else {
        e = err_text("trial writer/reader", rc);
    }
    if (!e.empty()) {
        add_context("shm", "not benchmarked: " + e);
        return;
    }
    add_context("shm", "benchmarked");

    if (pinned) {
        View *big = nullptr;
        rc = make_view("v10k", 10000, &big);
        if (rc) {
            add_context("shm", "not benchmarked: 10k view: " + err_text("writer", rc));
            return;
        }
        reg_pinned(big, big);  // c3 and all of the same 10k-node view
        for (size_t n : {size_t{1000}, size_t{10000}, size_t{100000}})
            reg_publish(n);
        if (netelect__writer_update)
            for (size_t n : {size_t{10000}, size_t{100000}, size_t{1000000}}) {
                if (n >= 1000000 && opt.quick)
                    continue; // a 200 MB segment and seconds of full copies
                for (size_t k : {size_t{1}, size_t{100}, n})
                    for (bool delta : {false, true})
                        reg_publish_changed(n, k, delta);
            }
    }
    if (mt) {
        benchmark::RegisterBenchmark("shm_mt/publish_to_visible/3", publish_to_visible)
            ->UseManualTime()
            ->Iterations(opt.quick ? 200 : 5000);
        benchmark::RegisterBenchmark("shm_mt/readers_1khz/3", readers)
            ->Setup(ticker_setup)
            ->Teardown(ticker_teardown)
            ->Threads(1)
            ->Threads(2)
            ->MinTime(opt.quick ? 0.05 : 0.5) // about 500 publishes per run in full mode
            ->UseRealTime();
    }
}

void shm_cleanup()
{
    for (auto &[tag, v] : views()) {
        if (v->w)
            netelect__writer_close(v->w, true);
        delete v;
    }
    views().clear();
    const std::string p = prefix();
    if (DIR *d = opendir("/dev/shm")) {
        while (struct dirent *de = readdir(d))
            if (!std::strncmp(de->d_name, p.c_str(), p.size()))
                unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
}

} // namespace nb
