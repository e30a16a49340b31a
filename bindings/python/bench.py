#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What a call costs through the Python bindings against the C call.

usage: /usr/bin/python3 bindings/python/bench.py BUILD_DIR [N=10000]

Times, with time.perf_counter_ns loops over the same libnetelect.so:
  - netelect.elect on N replicas: numpy uint64/uint8 arrays (zero-copy),
    array.array (zero-copy), and Python lists (converted per call);
  - the bare ctypes call with the addresses prepared once (the floor of any
    ctypes binding);
  - View.elect on a 1-replica channel of a private netelectd segment;
  - the same two calls from C (a 30-line timing loop compiled with cc
    against the build's library), when a C compiler is there.
Prints ns per call (the median of 5 rounds) and the ratio to C.
"""
import ctypes
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
os.environ.setdefault("NETELECT_LIB", os.path.join(BUILD, "libnetelect.so"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

import netelect  # noqa: E402
from netelect import _lib  # noqa: E402

C_TIMER = r"""
#include <netelect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static uint64_t now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec; }
int main(int argc, char **argv) {
    size_t n = strtoull(argv[2], NULL, 0), iters = strtoull(argv[3], NULL, 0);
    volatile uint64_t sink = 0;
    if (!strcmp(argv[1], "elect")) {
        uint64_t *ids = malloc(n * 8), *rtt = malloc(n * 8); uint8_t *h = malloc(n);
        uint64_t x = 88172645463325252ull;
        for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            ids[i] = x; rtt[i] = x % 1000000; h[i] = (x >> 20) % 10 != 0; }
        for (int r = 0; r < 5; r++) { uint64_t t0 = now();
            for (size_t k = 0; k < iters; k++) sink += netelect_elect(ids, rtt, h, n, 7).winner;
            printf("%.1f\n", (double)(now() - t0) / iters); }
    } else {
        struct netelect_view *v; struct netelect_result res;
        if (netelect_view_open(argv[4], &v)) return 1;
        uint64_t self = netelect_view_self(v);
        for (int r = 0; r < 5; r++) { uint64_t t0 = now();
            for (size_t k = 0; k < iters; k++) { netelect_view_elect(v, "default", self, &res);
                sink += res.winner; }
            printf("%.1f\n", (double)(now() - t0) / iters); }
        netelect_view_close(v);
    }
    return (int)(sink & 0);
}
"""


def per_call(fn, iters):
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(iters):
            fn()
        rounds.append((time.perf_counter_ns() - t0) / iters)
    return statistics.median(rounds)


def c_timer(tmp):
    cc = shutil.which("cc")
    if not cc:
        return None
    src, exe = os.path.join(tmp, "t.c"), os.path.join(tmp, "t")
    with open(src, "w") as f:
        f.write(C_TIMER)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # The build's include/ holds the generated netelect/version.h.
    subprocess.run([cc, "-O2", "-I", os.path.join(root, "include"),
                    "-I", os.path.join(BUILD, "include"), src, "-o", exe,
                    os.environ["NETELECT_LIB"], "-Wl,-rpath," + BUILD], check=True)
    return exe


def c_median(exe, *args):
    out = subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True,
                         check=True).stdout.split()
    return statistics.median(float(x) for x in out)


def main():
    x, ids, rtt, h = 88172645463325252, [], [], []
    mask = (1 << 64) - 1
    for _ in range(N):  # the C timer's xorshift, so both elect over the same data
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        ids.append(x)
        rtt.append(x % 1000000)
        h.append(1 if (x >> 20) % 10 != 0 else 0)
    ids_np, rtt_np, h_np = (np.array(ids, dtype=np.uint64), np.array(rtt, dtype=np.uint64),
                            np.array(h, dtype=np.uint8))
    import array
    ids_a, rtt_a, h_a = array.array("Q", ids), array.array("Q", rtt), array.array("B", h)
    want = netelect.elect(ids, rtt, h, 7)
    assert netelect.elect(ids_np, rtt_np, h_np, 7) == want
    pi, pr, ph = ids_np.ctypes.data, rtt_np.ctypes.data, h_np.ctypes.data
    raw = _lib.fast.netelect_elect
    iters = max(200, 2_000_000 // N)
    res = {
        "netelect.elect numpy (zero-copy)": per_call(lambda: netelect.elect(ids_np, rtt_np, h_np, 7), iters),
        "netelect.elect array.array (zero-copy)": per_call(lambda: netelect.elect(ids_a, rtt_a, h_a, 7), iters),
        "netelect.elect lists (converted)": per_call(lambda: netelect.elect(ids, rtt, h, 7), max(20, iters // 20)),
        "bare ctypes call, addresses prepared": per_call(lambda: raw(pi, pr, ph, N, 7), iters),
    }
    tmp = tempfile.mkdtemp(prefix="netelect-pybench-")
    shm = f"netelect-pybench-{os.getpid()}"
    agent = None
    try:
        exe = c_timer(tmp)
        c_elect = c_median(exe, "elect", N, iters) if exe else None
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        ctl = os.path.join(tmp, "ctl")
        agent = subprocess.Popen([os.path.join(BUILD, "agent", "netelectd"), "--shm", shm,
                                  "--control", ctl, "--node-id", "0x51",
                                  "--listen", f"127.0.0.1:{port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                v = netelect.View(shm)
                break
            except netelect.NetelectError:
                time.sleep(0.01)
        with v:
            assert v.elect("default").is_self
            res["View.elect (1-replica channel)"] = per_call(lambda: v.elect("default"), 200_000)
            res["View.elect_gen"] = per_call(lambda: v.elect_gen("default"), 200_000)
            res["View.generation"] = per_call(lambda: v.generation, 200_000)
        c_view = c_median(exe, "view", 0, 2_000_000, shm) if exe else None
    finally:
        if agent:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=10)
        for suffix in ("", ".lock", ".readers", ".tmp"):
            try:
                os.unlink("/dev/shm/" + shm + suffix)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"libnetelect {netelect.version()} ({netelect.isa()}), Python {sys.version.split()[0]}, "
          f"numpy {np.__version__}, N={N}")
    if c_elect is not None:
        print(f"  {'C netelect_elect (cc -O2 loop)':42s} {c_elect:12.1f} ns")
    for k, ns in res.items():
        base = c_view if k.startswith("View.elect") else c_elect
        if k == "View.generation":
            base = None
        ratio = f"  {ns / base:6.2f}x C" if base else ""
        print(f"  {k:42s} {ns:12.1f} ns{ratio}")
    if c_view is not None:
        print(f"  {'C netelect_view_elect (cc -O2 loop)':42s} {c_view:12.1f} ns")


if __name__ == "__main__":
    main()
