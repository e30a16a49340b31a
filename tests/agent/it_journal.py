#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration test: structured journal fields.

usage: it_journal.py BUILD_DIR

Under journald (JOURNAL_STREAM set), a message about a node, a peer or a
channel goes to the journal natively with NODE_ID=0x..., PEER=addr:port and
CHANNEL=name.  The test re-runs itself in a private mount namespace with a
tmpfs on /run, binds the journal's socket (/run/systemd/journal/socket)
itself and reads the datagrams (journald's native protocol) while two agents
on loopback meet, one is killed, and a channel is added and drained over the
control socket.  Exit 0 pass, 1 fail, 77 skip (not root, no unshare).
"""
import os
import signal
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_agents as it  # noqa: E402  (shares the harness; BUILD comes from argv[1])
from it_agents import Agent, Fail, check, gen_key, healthy, log, wait_for  # noqa: E402

A, B = 0x401, 0x402
SOCK = "/run/systemd/journal/socket"


class Journal:
    """The journal's native socket: each datagram is KEY=VALUE lines."""

    def __init__(self):
        os.makedirs(os.path.dirname(SOCK), exist_ok=True)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(SOCK)
        self.entries = []
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            data = self.s.recv(65536)
            e = {}
            for line in data.decode(errors="replace").split("\n"):
                k, sep, v = line.partition("=")
                if sep:
                    e[k] = v
            with self.lock:
                self.entries.append(e)

    def find(self, needle):
        with self.lock:
            return next((e for e in self.entries if needle in e.get("MESSAGE", "")), None)


def scenario(h):
    j = Journal()
    gen_key(h)
    pa, pb = h.free_udp_port(), h.free_udp_port()
    a = Agent(h, 1, A, pa, [(B, f"127.0.0.1:{pb}")], [("all", ["self", B])])
    b = Agent(h, 2, B, pb, [(A, f"127.0.0.1:{pa}")], [("all", ["self", A])])
    os.environ["JOURNAL_STREAM"] = "0:0"  # A only: journald's variable, any value
    a.start()
    del os.environ["JOURNAL_STREAM"]
    b.start()
    wait_for("0x401 sees 0x402 healthy", lambda: healthy(a, B), 10)
    e = wait_for("a journal entry: peer 0x402 is healthy", lambda: j.find("peer 0x402 (127.0.0.1"), 5)
    check(e.get("NODE_ID") == "0x402" and e.get("PEER") == f"127.0.0.1:{pb}" and
          e.get("PRIORITY") == "5" and e.get("SYSLOG_IDENTIFIER") == "netelectd" and
          "CHANNEL" not in e, f"healthy: {e}")
    check(j.find("is healthy") is e, "the health line went to the journal natively")
    b.kill(signal.SIGKILL)
    e = wait_for("a journal entry: 0x402 is unhealthy", lambda: j.find("is unhealthy"), 10)
    check(e.get("NODE_ID") == "0x402" and e.get("PEER") == f"127.0.0.1:{pb}", f"unhealthy: {e}")
    a.cli("channel", "add", "jobs", "self", "0x402")
    e = wait_for("a journal entry: channel jobs", lambda: j.find("channel jobs"), 5)
    check(e.get("CHANNEL") == "jobs" and "NODE_ID" not in e, f"channel add: {e}")
    a.cli("drain", "jobs")
    e = wait_for("a journal entry: drain", lambda: j.find("drain: node"), 5)
    check(e.get("CHANNEL") == "jobs" and e.get("PRIORITY") == "5", f"drain: {e}")
    a.cli("set-rtt", "0x402", "3ms")
    e = wait_for("a journal entry: rtt override", lambda: j.find("rtt of 0x402"), 5)
    check(e.get("NODE_ID") == "0x402", f"set-rtt: {e}")
    # B (no JOURNAL_STREAM) logs plain lines on stderr, never to the journal
    with j.lock:
        check(not any("0x401" in e.get("NODE_ID", "") for e in j.entries),
              f"only A sent entries ({len(j.entries)} in all)")
    return 0


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (a private mount namespace for the journal socket)")
        return 77
    if os.environ.get("NETELECT_IT_JOURNAL_NS") != "1":
        env = dict(os.environ, NETELECT_IT_JOURNAL_NS="1")
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            'mount -t tmpfs tmpfs /run && exec "$0" "$@"', sys.executable] + sys.argv,
                           env=env)
        if r.returncode == 126 or r.returncode == 127:
            print("SKIP: unshare -m is not available here")
            return 77
        return r.returncode
    for exe in (it.NETELECTD, it.CLI):
        if not os.access(exe, os.X_OK):
            print(f"missing {exe}")
            return 1
    return it.run_scenario("journal", scenario)


if __name__ == "__main__":
    sys.exit(main())
