#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""netelectd's publish cost at a large view, for one or more builds in one run.

    bench/agent_publish.py [--nodes N] [--members M] [--changes R] [--rounds K] [--cpu C]
                           NETELECTD...

Each netelectd (pinned to CPU C with taskset, no key, no peers to probe)
gets N nodes over its control socket (set-rtt, pipelined) and a channel of
self and M of them (default 3).  Then, round after round, each agent in turn has
one node's RTT changed R times (one set-rtt per publish_min_interval, so
every change is its own publish), and the figure is the mean publish time
over those publishes from the agent's own publish_duration histogram
(build + write of one version; heartbeat publishes in between count too).
A second figure is the agent's whole CPU time (/proc/PID/schedstat)
per publish over the same rounds: what a publish costs the agent
beyond writing the segment (bookkeeping, the control request).
The agents run side by side, so all builds see the same machine state;
the report gives each build's median over the rounds, min and max.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# The integration tests' pipelined control client: one definition of the
# protocol's framing for the tests and this bench.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "agent"))
from it_agents import Fail, ctl_lines  # noqa: E402


def ctl(path, lines, timeout=120):
    """Sends request lines over one connection (pipelined); the replies,
    every one of which must say ok."""
    try:
        out = ctl_lines(path, lines, timeout)
    except Fail as e:
        sys.exit(f"{path}: {e}")
    refused = sum(1 for r in out if not r.get("ok"))
    if refused:
        sys.exit(f"{path}: {len(lines)} requests, {refused} refused")
    return out


def stats(path):
    st = ctl(path, ['{"cmd":"stats","limit":1}'])[0]
    h = st["publish_duration"]
    return sum(h["counts"]), h["sum_ns"], st["publishes"], st.get("publishes_delta", 0)


class Agent:
    def __init__(self, tmp, idx, binary, nodes, members, cpu):
        self.ctl = os.path.join(tmp, f"ctl{idx}")
        self.shm = f"netelect-aplbench-{os.getpid()}-{idx}"
        conf = os.path.join(tmp, f"agent{idx}.conf")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with open(conf, "w") as f:
            f.write(f"[agent]\nnode_id = 0x1\nlisten = 127.0.0.1:{port}\ncontrol = {self.ctl}\n"
                    f"log_level = warning\n[segment]\nname = {self.shm}\n"
                    f"[limits]\nnodes = {nodes}\nmembers = {members + 1}\n[channels]\nc = self\n")
        self.log = open(os.path.join(tmp, f"agent{idx}.log"), "w")
        self.proc = subprocess.Popen(["taskset", "-c", str(cpu), binary, "--config", conf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while not os.path.exists(self.ctl):
            if time.monotonic() > end or self.proc.poll() is not None:
                sys.exit(f"{binary} did not come up")
            time.sleep(0.02)
        time.sleep(0.1)
        for lo in range(0, nodes, 10000):
            ctl(self.ctl, [json.dumps({"cmd": "set-rtt", "id": hex(0x10000 + i), "rtt_ns": 1000 + i})
                           for i in range(lo, min(nodes, lo + 10000))])
        # the control protocol takes at most 4096 members per request
        ctl(self.ctl, [json.dumps({"cmd": "channel-add", "name": "c",
                                   "members": [hex(0x10000 + i)
                                               for i in range(lo, min(members, lo + 4000))]})
                       for lo in range(0, members, 4000)])

    def cpu_ns(self):
        """The agent's time on a CPU so far (schedstat: ns, where /proc/PID/stat
        counts 10 ms ticks)."""
        with open(f"/proc/{self.proc.pid}/schedstat") as f:
            return int(f.read().split()[0])

    def round(self, changes):
        """Mean ns per publish over `changes` RTT changes of one node
        (publish_duration, and the agent's CPU time)."""
        c0, s0, p0, d0 = stats(self.ctl)
        u0 = self.cpu_ns()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.ctl)
        f = s.makefile("rb")
        for j in range(changes):
            s.sendall((json.dumps({"cmd": "set-rtt", "id": hex(0x10001),
                                   "rtt_ns": 2000000 + 1000 * (j % 2)}) + "\n").encode())
            if not json.loads(f.readline()).get("ok"):
                sys.exit("set-rtt refused")
            time.sleep(0.002)
        s.close()
        time.sleep(0.01)
        u1 = self.cpu_ns()
        c1, s1, p1, d1 = stats(self.ctl)
        return (s1 - s0) / max(1, c1 - c0), (u1 - u0) / max(1, p1 - p0), p1 - p0, d1 - d0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        for suffix in ("", ".lock", ".readers"):
            try:
                os.unlink("/dev/shm/" + self.shm + suffix)
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=100000)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("netelectd", nargs="+")
    o = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="netelect-aplbench-")
    agents = []
    try:
        for i, b in enumerate(o.netelectd):
            agents.append(Agent(tmp, i, b, o.nodes, o.members, o.cpu))
        res = {i: [] for i in range(len(agents))}
        cpu = {i: [] for i in range(len(agents))}
        kinds = {i: [0, 0] for i in range(len(agents))}
        for _ in range(o.rounds):
            for i, a in enumerate(agents):
                ns, cpu_ns, pubs, deltas = a.round(o.changes)
                res[i].append(ns)
                cpu[i].append(cpu_ns)
                kinds[i][0] += pubs
                kinds[i][1] += deltas
        print(f"publish of one node's RTT change at {o.nodes} nodes, channel of {o.members} + self, "
              f"mean per publish "
              f"(publish_duration histogram), {o.rounds} rounds x {o.changes} changes, "
              f"taskset -c {o.cpu}")
        for i, b in enumerate(o.netelectd):
            v = res[i]
            print(f"  {b}: median {statistics.median(v) / 1e3:.1f} us (min {min(v) / 1e3:.1f}, "
                  f"max {max(v) / 1e3:.1f}); {kinds[i][0]} publishes, {kinds[i][1]} deltas")
            v = cpu[i]
            print(f"    agent CPU per publish: median {statistics.median(v) / 1e3:.1f} us "
                  f"(min {min(v) / 1e3:.1f}, max {max(v) / 1e3:.1f})")
    finally:
        for a in agents:
            a.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
