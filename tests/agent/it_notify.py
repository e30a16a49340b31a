#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""netelectd's systemd notifications (Type=notify).

usage: it_notify.py BUILD_DIR

Runs netelectd with NOTIFY_SOCKET pointing at a datagram socket this test
binds and WATCHDOG_USEC set, as systemd would, and checks what arrives:
READY=1 exactly once and only when the segment exists and holds the first
view, STATUS= with the one-line summary (and again when it changes: a
channel added over the control socket), WATCHDOG=1 at about the heartbeat
(100 ms), STOPPING=1 on SIGTERM.  Exit 0 pass, 1 fail.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

build = sys.argv[1]
agentd = os.path.join(build, "agent", "netelectd")
cli = os.path.join(build, "agent", "netelect")
failed = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failed.append(what)


with tempfile.TemporaryDirectory(prefix="netelect-notify-") as tmp:
    shm = f"netelect-notify-{os.getpid()}"
    seg = "/dev/shm/" + shm
    ctl = os.path.join(tmp, "control")
    conf = os.path.join(tmp, "netelectd.conf")
    with open(conf, "w") as f:
        f.write("[agent]\nnode_id = 0x71\n[channels]\ndefault = self\n")
    os.chmod(conf, 0o600)
    ns_path = os.path.join(tmp, "notify")
    sk = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sk.bind(ns_path)
    env = dict(os.environ, NOTIFY_SOCKET=ns_path, WATCHDOG_USEC="2000000")
    env.pop("WATCHDOG_PID", None)
    p = subprocess.Popen([agentd, "--config", conf, "--shm", shm, "--control", ctl],
                         env=env, stderr=subprocess.PIPE, text=True)
    msgs = []  # (monotonic time, segment existed when it arrived, fields)

    def recv_until(pred, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            sk.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = sk.recv(4096).decode()
            except socket.timeout:
                break
            fields = dict(l.split("=", 1) for l in data.split("\n") if "=" in l)
            msgs.append((time.monotonic(), os.path.exists(seg), fields))
            if pred(fields):
                return fields
        return None

    try:
        ready = recv_until(lambda f: "READY" in f, 10)
        check(ready is not None and ready.get("READY") == "1", "READY=1 arrives")
        if ready:
            check(msgs[-1][1], "the segment exists when READY=1 arrives")
            st = subprocess.run([cli, "--shm", shm, "status"], capture_output=True, text=True)
            check(st.returncode == 0, f"netelect status right after READY=1: exit {st.returncode}")
            check(ready.get("STATUS", "").startswith("publishing: 1 nodes (1 healthy), 1 channels"),
                  f"STATUS= with READY=1 summarises the view: {ready.get('STATUS')!r}")
        r = subprocess.run([cli, "--shm", shm, "--control", ctl, "channel", "add", "other", "self"],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"channel add over the control socket: exit {r.returncode} {r.stderr.strip()}")
        st2 = recv_until(lambda f: "STATUS" in f and "2 channels" in f["STATUS"], 5)
        check(st2 is not None, "a new STATUS= when the summary changes (2 channels)")
        t0 = time.monotonic()
        n0 = sum("WATCHDOG" in m[2] for m in msgs)
        recv_until(lambda f: False, 2.0)
        wd = sum(m[2].get("WATCHDOG") == "1" for m in msgs) - n0
        # ~20 at a 100 ms heartbeat; a loaded machine may coalesce a few
        # timer expirations, so at least one per 500 ms, and none extra
        check(4 <= wd <= 22, f"WATCHDOG=1 at the heartbeat: {wd} in {time.monotonic() - t0:.1f} s (want ~20)")
        check(sum("READY" in m[2] for m in msgs) == 1, "READY=1 sent once")
        p.terminate()
        stop = recv_until(lambda f: "STOPPING" in f, 5)
        check(stop is not None, "STOPPING=1 on SIGTERM")
        p.wait(timeout=10)
        check(p.returncode == 0, f"netelectd exits 0 on SIGTERM (got {p.returncode})")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err = p.stderr.read()
        if failed:
            sys.stderr.write(err)
        for suffix in ("", ".lock", ".readers"):
            try:
                os.unlink(seg + suffix)
            except FileNotFoundError:
                pass
sys.exit(1 if failed else 0)
