#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration test: what every reader is told about a dead agent, and when.

usage: it_liveness.py BUILD_DIR

One agent, a reader attached before it dies (view_check
`loop`), and readers that attach at several times after a `kill -9` and
after a SIGTERM: `netelect status/elect` as root (which may read the
agent's lock) and as an unprivileged user (heartbeat time alone).  All of
them must agree: the agent is gone within 3 heartbeat periods (300 ms) of
a kill -9 and at once after SIGTERM, elections answer from the last view
during the fail-static window (2 s) counted from the agent's death, not
from the reader's attach, and return ESTALE after it.  Exit 0 pass, 1
fail, 77 skip.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_agents as it  # noqa: E402  (shares the harness; BUILD comes from argv[1])
from it_agents import Agent, LoopReader, check, log, wait_for  # noqa: E402

NOBODY = 65534
FAIL_STATIC_S = 2.0  # the library's default
LIMIT_S = 0.3        # max(3 x 100 ms heartbeat, 300 ms)


def as_nobody(argv):
    """argv run as an unprivileged user (who cannot open the agent's 0600 lock)."""
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] + argv


def cli(agent, *args, nobody=False):
    argv = [it.CLI, "--shm", agent.shm] + list(args)
    r = subprocess.run(as_nobody(argv) if nobody else argv, capture_output=True, text=True, timeout=15)
    return r.returncode, r.stdout, r.stderr


def at(t0, secs):
    """Sleeps until t0 + secs (monotonic)."""
    d = t0 + secs - time.monotonic()
    if d > 0:
        time.sleep(d)


def reader_estale_after(rd, t_wall_ns):
    """Seconds from t_wall_ns to the loop reader's first ESTALE answer after it, or None."""
    for e in rd.of("answer"):
        if e["ts_ns"] > t_wall_ns and e["rc"] < 0 and "stal" in e["err"]:
            return (e["ts_ns"] - t_wall_ns) / 1e9
    return None


def expect(agent, when, verb, rc_want, out_has, nobody=False):
    rc, out, err = cli(agent, verb, *(["default"] if verb == "elect" else []), nobody=nobody)
    who = "nobody" if nobody else "root"
    check(rc == rc_want and out_has in out,
          f"{when}: `netelect {verb}` attached now as {who}: exit {rc} (want {rc_want}), "
          f"{(out.strip() or err.strip()).splitlines()[0] if (out or err).strip() else ''!r}")


def scenario(h):
    if subprocess.run(["setpriv", "--version"], capture_output=True).returncode != 0:
        log("SKIP: setpriv (util-linux) is missing")
        return 77
    if os.geteuid() != 0:
        log("SKIP: needs root (runs readers as another user)")
        return 77
    port = h.free_udp_port()
    a = Agent(h, 1, 0x51, port, [], [("default", ["self"])], key=False)
    a.start()
    # /dev/shm/<name> must be readable to 'nobody' (0644 by default)
    wait_for("the agent published", lambda: cli(a, "status")[0] == 0, 5, 0.02)
    expect(a, "alive", "status", 0, "alive", nobody=True)
    rd = LoopReader(h, a.shm, "default", 0x51)
    wait_for("the attached reader answers", lambda: rd.of("answer"), 5, 0.005)

    # ---- kill -9: nobody tells readers; they must tell by themselves
    t0, w0 = time.monotonic(), time.time_ns()
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(timeout=5)
    at(t0, LIMIT_S + 0.15)
    for nobody in (False, True):
        expect(a, "kill -9 + 0.45 s", "status", 4, "gone", nobody=nobody)
        expect(a, "kill -9 + 0.45 s (fail-static)", "elect", 4, "leader 0x51", nobody=nobody)
    at(t0, LIMIT_S + FAIL_STATIC_S + 0.3)
    for nobody in (False, True):
        expect(a, "kill -9 + 2.6 s (past fail-static)", "elect", 4, "", nobody=nobody)
        rc, out, err = cli(a, "elect", "default", nobody=nobody)
        check("leader" not in out and "stal" in err,
              f"kill -9 + 2.6 s: a reader attaching now gets ESTALE like one attached all along "
              f"({err.strip()!r})")
    wait_for("the attached reader got ESTALE", lambda: reader_estale_after(rd, w0) is not None, 2, 0.01)
    d = reader_estale_after(rd, w0)
    # (upper bounds leave 0.3 s for a loaded 2-core machine to schedule the reader)
    check(FAIL_STATIC_S - 0.1 <= d <= LIMIT_S + FAIL_STATIC_S + 0.6,
          f"kill -9: the attached reader got ESTALE {d:.2f} s after the kill "
          f"(fail-static {FAIL_STATIC_S} s from the death, seen within {LIMIT_S} s)")

    # ---- SIGTERM: the agent says so; readers know at once
    a.start()
    wait_for("the reader answers from the new agent",
             lambda: rd.of("answer")[-1]["rc"] == 0 and rd.of("answer")[-1]["ts_ns"] > w0, 5, 0.01)
    expect(a, "restarted", "status", 0, "alive")
    t1, w1 = time.monotonic(), time.time_ns()
    a.proc.send_signal(signal.SIGTERM)
    a.proc.wait(timeout=5)
    for nobody in (False, True):
        expect(a, "SIGTERM + ~0 s", "status", 4, "abandoned", nobody=nobody)
        expect(a, "SIGTERM + ~0 s (fail-static)", "elect", 4, "leader 0x51", nobody=nobody)
    at(t1, FAIL_STATIC_S + 0.3)
    for nobody in (False, True):
        rc, out, err = cli(a, "elect", "default", nobody=nobody)
        check(rc == 4 and "leader" not in out and "stal" in err,
              f"SIGTERM + 2.3 s: a reader attaching now gets ESTALE (exit {rc}, {err.strip()!r})")
    wait_for("the attached reader got ESTALE", lambda: reader_estale_after(rd, w1) is not None, 2, 0.01)
    d = reader_estale_after(rd, w1)
    check(FAIL_STATIC_S - 0.1 <= d <= FAIL_STATIC_S + 0.6,
          f"SIGTERM: the attached reader got ESTALE {d:.2f} s after the exit")
    rd.stop()
    return 0


def main():
    return it.run_scenario("liveness", scenario)


if __name__ == "__main__":
    sys.exit(main())
