// SPDX-License-Identifier: MIT
//
// The agent's per-packet cost.
//
//   agent/pong/104       one PONG through the whole receive path of the
//                        agent's pure code: per-source token bucket,
//                        agent_pkt_decode (magic, version, length,
//                        HMAC-SHA512-256 verify, fields), anti-replay
//                        window, then agent_probe_reply (RTT filter and
//                        health update).  Built only when agent/packet.c
//                        and agent/prober.c exist (NETELECT_BENCH_HAVE_AGENT).
//   agent/auth_verify/104  libsodium crypto_auth_verify over the same 72
//                        authenticated bytes: the lower bound of the above.
#include "bench/bench.h"

#include <cstring>
#include <ctime>

#include <sodium.h>

#if NETELECT_BENCH_HAVE_AGENT
#include <cerrno>
extern "C" {
#include "agent/packet.h"
#include "agent/prober.h"
}
#endif

namespace nb {
namespace {

constexpr size_t kPktLen = 104; // 72 header bytes + 32-byte MAC (agent/packet.h)
constexpr size_t kHdrLen = 72;

void auth_verify(benchmark::State &st)
{
    uint8_t key[crypto_auth_KEYBYTES], pkt[kPktLen];
    randombytes_buf(key, sizeof key);
    randombytes_buf(pkt, kHdrLen);
    crypto_auth(pkt + kHdrLen, pkt, kHdrLen, key);
    if (crypto_auth_verify(pkt + kHdrLen, pkt, kHdrLen, key) != 0) {
        st.SkipWithError("crypto_auth_verify rejected its own MAC");
        return;
    }
    int bad = 0;
    for ([[maybe_unused]] auto _ : st) {
        bad |= crypto_auth_verify(pkt + kHdrLen, pkt, kHdrLen, key);
        benchmark::ClobberMemory();
    }
    if (bad)
        st.SkipWithError("crypto_auth_verify failed while timed");
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * kPktLen));
}

#if NETELECT_BENCH_HAVE_AGENT
static_assert(NETELECT_PKT_LEN == kPktLen, "agent/packet.h changed the packet size");

uint64_t mono_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// One PONG answering the PING the probe state machine has just sent.  The
// same packet is processed every iteration: the probe and replay states are
// restored from a snapshot first (a ~0.4 KB copy, included in the time) so
// that each iteration sees a fresh, valid reply rather than a replay.
void pong(benchmark::State &st)
{
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    const netelect_probe_params pp{100000000, 100000000, 3, 3, 3, 60000000000ull};
    const uint64_t me = 0x1111, peer = 0x2222, my_inc = 1, peer_inc = 2;
    const uint64_t t0 = mono_ns(), seq = 7;

    netelect_probe probe0;
    agent_probe_init(&probe0, t0);
    if (!(agent_probe_tick(&probe0, &pp, t0, seq) & NETELECT_PROBE_SEND)) {
        st.SkipWithError("the probe did not send its first PING");
        return;
    }
    netelect_replay replay0{};
    netelect_pkt p{};
    p.version = NETELECT_PKT_VERSION;
    p.type = NETELECT_PKT_PONG;
    p.sender = peer;
    p.receiver = me;
    p.sender_inc = peer_inc;
    p.receiver_inc = my_inc;
    p.seq = 1;
    p.ts = t0 + 50000;
    p.ack_seq = seq;
    p.ack_ts = t0;
    alignas(64) uint8_t pkt[kPktLen];
    if (agent_pkt_encode(&p, key, pkt)) {
        st.SkipWithError("agent_pkt_encode failed");
        return;
    }
    netelect_bucket bucket{};
    netelect_probe probe;
    netelect_replay replay;
    const uint64_t arrive = t0 + 150000;
    uint64_t bad = 0;
    for ([[maybe_unused]] auto _ : st) {
        probe = probe0;
        replay = replay0;
        benchmark::ClobberMemory();
        netelect_pkt q;
        int rc = agent_bucket_take(&bucket, arrive, 1000000000u, 1000000000u) ? 0 : -1;
        if (!rc)
            rc = agent_pkt_decode(pkt, kPktLen, key, &q);
        if (!rc)
            rc = agent_replay_check(&replay, q.sender_inc, q.seq) < 0 ? -1 : 0;
        if (!rc)
            rc = agent_probe_reply(&probe, &pp, q.ack_seq, q.ack_ts, arrive) < 0 ? -1 : 0;
        bad += rc != 0;
        benchmark::DoNotOptimize(probe);
    }
    if (bad)
        st.SkipWithError("a valid PONG was rejected");
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}
#endif

} // namespace

void register_agent()
{
    if (!opt.has_group("agent"))
        return;
    if (sodium_init() < 0) {
        add_context("agent", "not benchmarked: sodium_init failed");
        return;
    }
    benchmark::RegisterBenchmark("agent/auth_verify/104", auth_verify);
#if NETELECT_BENCH_HAVE_AGENT
    benchmark::RegisterBenchmark("agent/pong/104", pong);
    add_context("agent", "agent/pong: bucket + decode (HMAC verify) + replay + probe update");
#else
    add_context("agent", "agent/packet.c not in this build: only the libsodium lower bound");
#endif
}

} // namespace nb
