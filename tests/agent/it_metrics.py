#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration test: Prometheus metrics.

usage: it_metrics.py BUILD_DIR

Three agents on loopback; A (0x301) probes B (0x302) and C (0x303) and
serves [metrics] listen on a free port.  Checks:
  - GET /metrics and `netelect stats --format=prometheus` both pass
    `promtool check metrics` (Debian's prometheus package) and carry the
    same families, with real values (peers healthy, RTT measured, leaders);
  - kill -9 of C: peer_healthy{peer="0x303"} goes to 0, its probes lost
    grow, health_changes_total grows and channel "c" (C alone) has leader
    "none" after exactly one more leader change;
  - the endpoint as an input parser: 405 with Allow for POST, 404 for
    another path, 400 for a malformed request, 431 for oversized headers,
    the per-address connection limit, idle connections that do not stall
    the agent's loop (the control socket answers meanwhile), HEAD;
  - an unreachable agent: `netelect_up 0` (still valid for promtool), exit 1;
    a bad --format is a usage error; a bad [metrics] listen a config error.
Exit 0 pass, 1 fail, 77 skip (no promtool).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_agents as it  # noqa: E402  (shares the harness; BUILD comes from argv[1])
from it_agents import Agent, Fail, check, gen_key, healthy, log, wait_for  # noqa: E402

A, B, C = 0x301, 0x302, 0x303
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def free_tcp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def promtool(text, what):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, f"promtool check metrics accepts {what} "
          f"({len(text.splitlines())} lines){'' if r.returncode == 0 else ': ' + r.stdout + r.stderr}")


def parse(text):
    """{(name, labels): value} and the families (TYPE lines)."""
    samples, families = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            families[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise Fail(f"unparsable sample line: {line!r}")
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples, families


def scrape(port):
    return scrape_at(f"127.0.0.1:{port}")


def scrape_at(hostport):
    try:
        with urllib.request.urlopen(f"http://{hostport}/metrics", timeout=10) as r:
            ctype = r.headers.get("Content-Type", "")
            if not ctype.startswith("text/plain; version=0.0.4"):
                raise Fail(f"GET /metrics: Content-Type {ctype!r}")
            return r.read().decode()
    except (urllib.error.URLError, OSError) as e:
        raise Fail(f"GET /metrics: {e}")


def raw_http(port, data, timeout=5):
    """Sends data, returns the status line (or '' if closed without one)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:  # refused by a limit: closed with a reset
                break
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace")
    finally:
        s.close()


def value(samples, name, labels=""):
    if (name, labels) not in samples:
        raise Fail(f"no sample {name}{labels}")
    return samples[(name, labels)]


def scenario(h):
    if not shutil.which("promtool"):
        log("SKIP: promtool not found (Debian package prometheus)")
        return 77
    gen_key(h)
    ports = {i: h.free_udp_port() for i in (A, B, C)}
    mport = free_tcp_port()
    addr = {i: f"127.0.0.1:{p}" for i, p in ports.items()}
    a = Agent(h, 1, A, ports[A], [(B, addr[B]), (C, addr[C])],
              [("all", ["self", B, C]), ("c", [C])], extra=f"[metrics]\nlisten = 127.0.0.1:{mport}")
    b = Agent(h, 2, B, ports[B], [(A, addr[A])], [("all", ["self"])])
    c = Agent(h, 3, C, ports[C], [(A, addr[A])], [("all", ["self"])])

    # a bad address is a configuration error with the key's name
    bad = os.path.join(h.tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write(a.text.replace(f"listen = 127.0.0.1:{mport}", "listen = localhost:9707"))
    r = h.run([it.NETELECTD, "--check-config", bad])
    check(r.returncode == 1 and "metrics listen" in r.stderr,
          f"[metrics] listen = localhost:9707 is refused: {r.stderr.strip()}")

    for x in (a, b, c):
        x.start()
    for o in (B, C):
        wait_for(f"0x301 sees {o:#x} healthy", lambda o=o: healthy(a, o), 10)
    wait_for("0x301 measured both RTTs",
             lambda: all(p["rtt_estimate_ns"] for p in a.stats()["peers"]), 10)

    text = scrape(mport)
    promtool(text, "GET /metrics")
    s, fam = parse(text)
    check(value(s, "netelect_up") == 1, "netelect_up 1")
    check(value(s, "netelect_build_info", '{version="' + a.stats()["version"] + '",node_id="0x301"}') == 1,
          "build_info names the version and node 0x301")
    check(abs(value(s, "netelect_start_time_seconds") - time.time()) < 120,
          "start_time_seconds is a recent Unix time")
    check(value(s, "netelect_generation") > 0 and value(s, "netelect_publishes_total") >= 1,
          "generation and publishes")
    check(value(s, "netelect_publish_duration_seconds_count") == value(s, "netelect_publishes_total"),
          "the publish duration histogram counts every publish")
    check(0 <= value(s, "netelect_publishes_delta_total") <= value(s, "netelect_publishes_total"),
          "delta publishes are some of the publishes")
    check(value(s, "netelect_publish_duration_seconds_bucket", '{le="+Inf"}') ==
          value(s, "netelect_publish_duration_seconds_count"), "histogram +Inf bucket = count")
    for o in ("0x302", "0x303"):
        lab = '{peer="' + o + '"}'
        check(value(s, "netelect_peer_healthy", lab) == 1, f"peer_healthy{lab} 1")
        check(0 < value(s, "netelect_peer_rtt_seconds", lab) < 0.05,
              f"peer_rtt_seconds{lab} = {value(s, 'netelect_peer_rtt_seconds', lab)}")
        check(value(s, "netelect_peer_probes_sent_total", lab) >= 1, f"probes sent to {o}")
    check(value(s, "netelect_channel_leader", '{channel="all",leader="0x301"}') == 1 and
          value(s, "netelect_channel_leader_is_self", '{channel="all"}') == 1,
          "this node leads 'all' (RTT 0)")
    check(value(s, "netelect_channel_leader", '{channel="c",leader="0x303"}') == 1,
          "0x303 leads 'c'")
    for name in ("netelect_auth_failures_total", "netelect_rate_limited_drops_total",
                 "netelect_control_requests_total", "netelect_serf_connected"):
        value(s, name)
    check(fam.get("netelect_peer_probes_lost_total") == "counter" and
          fam.get("netelect_publish_delay_seconds") == "histogram", "family types")

    # The CLI's rendering: same families, promtool-clean.
    r = a.cli("stats", "--format=prometheus")
    promtool(r.stdout, "netelect stats --format=prometheus")
    s2, fam2 = parse(r.stdout)
    check(set(fam2) == set(fam), f"the CLI and the endpoint give the same {len(fam)} families")
    check(value(s2, "netelect_peer_healthy", '{peer="0x303"}') == 1, "CLI: 0x303 healthy")

    # kill -9 of C: its series move.
    lost0 = value(s, "netelect_peer_probes_lost_total", '{peer="0x303"}')
    hc0 = value(s, "netelect_health_changes_total")
    lc0 = value(s, "netelect_channel_leader_changes_total", '{channel="c"}')
    t0 = time.monotonic()
    c.kill(signal.SIGKILL)

    # Peer series are live state; channel leaders are what the last publish
    # holds, and a publish may trail the health change by up to
    # publish_min_interval (coalescing).  Wait for both before asserting.
    def c_down():
        s = parse(scrape(mport))[0]
        return s if s.get(("netelect_peer_healthy", '{peer="0x303"}')) == 0 else None
    s = wait_for("peer_healthy{peer=\"0x303\"} 0", c_down, 10, 0.05)
    log(f"peer_healthy went to 0 {1000 * (time.monotonic() - t0):.0f} ms after kill -9")

    def c_published():
        s = parse(scrape(mport))[0]
        return s if s.get(("netelect_channel_leader", '{channel="c",leader="none"}')) == 1 else None
    s = wait_for("a publish with no leader in 'c'", c_published, 5, 0.02)
    lost1 = value(s, "netelect_peer_probes_lost_total", '{peer="0x303"}')
    check(lost1 > lost0, f"probes lost to 0x303 grew ({lost0:.0f} -> {lost1:.0f})")
    check(value(s, "netelect_health_changes_total") > hc0, "health_changes_total grew")
    check(value(s, "netelect_peer_healthy", '{peer="0x302"}') == 1, "0x302 still healthy")
    check(value(s, "netelect_channel_leader", '{channel="c",leader="none"}') == 1 and
          ("netelect_channel_leader", '{channel="c",leader="0x303"}') not in s,
          "channel 'c' has no leader")
    check(value(s, "netelect_channel_leader_changes_total", '{channel="c"}') == lc0 + 1 and
          value(s, "netelect_channel_leader_changes_total", '{channel="all"}') == 0,
          f"the kill made one more leader change in 'c' ({lc0:.0f} before), 'all' has none")
    promtool(scrape(mport), "GET /metrics after the kill")

    # The endpoint as an input parser.
    st = raw_http(mport, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    check(st.startswith("HTTP/1.1 405") and "Allow: GET, HEAD" in st, "POST: 405 with Allow")
    st = raw_http(mport, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    check(st.startswith("HTTP/1.1 404"), "another path: 404")
    st = raw_http(mport, b"GET /metrics\r\n\r\n")
    check(st.startswith("HTTP/1.1 400"), "a request line without a version: 400")
    st = raw_http(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    check(st.startswith("HTTP/1.1 431"), "40 KB of headers: 431")
    st = raw_http(mport, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    check(st.startswith("HTTP/1.1 200"), "HEAD: 200")
    # Half-sent requests hold connections open; the per-address limit
    # refuses the fifth, and the agent's loop does not wait for any of them.
    held = []
    try:
        for _ in range(4):
            k = socket.create_connection(("127.0.0.1", mport), timeout=5)
            k.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            held.append(k)
        time.sleep(0.2)
        t = time.monotonic()
        a.cli("stats")
        ms = 1000 * (time.monotonic() - t)
        check(ms < 2000, f"the control socket answers while 4 requests hang ({ms:.0f} ms)")
        st = raw_http(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        check(not st.startswith("HTTP/1.1 200"), "a fifth connection from one address is refused")
    finally:
        for k in held:
            k.close()
    wait_for("the endpoint serves again", lambda: scrape(mport), 5, 0.05)
    s = parse(scrape(mport))[0]
    check(value(s, "netelect_metrics_errors_total") >= 2, "the endpoint counts its errors")

    # No agent: netelect_up 0, exit 1, still valid text.
    r = it.subprocess.run([it.CLI, "--control", os.path.join(h.tmp, "nothing"), "stats",
                           "--format=prometheus"], capture_output=True, text=True, timeout=15)
    check(r.returncode == 1 and "netelect_up 0" in r.stdout, "unreachable agent: netelect_up 0, exit 1")
    promtool(r.stdout, "the unreachable agent's output")
    r = a.cli("stats", "--format=yaml", rc=2)
    check("--format" in r.stderr, "a bad --format is a usage error")
    a.cli("status", "--format=prometheus", rc=2)
    big(h)
    return 0


def big(h):
    """2000 peers at IPv6 addresses and 4096 channels of 63-byte names: the
    stats reply's first page also lists every leader and must stay under the
    control socket's 1 MiB; the CLI and the endpoint still give it all."""
    port, mport = h.free_udp_port(), free_tcp_port()
    first = 0xabcdef0000000000
    # the longest addresses and names make the biggest reply (nothing answers
    # at these addresses: the peers stay unhealthy)
    peers = [(first + i, f"[fd00:1234:5678:9abc:def0:1234:5678:{i:x}]:{20000 + i}")
             for i in range(2000)]
    chans = [("c%05d" % i + "x" * 57, ["self", first + i % 2000]) for i in range(4096)]
    d = Agent(h, 9, 0x309, port, peers, chans, listen_host="[::1]",
              extra=f"[limits]\nchannels = 5000\n[metrics]\nlisten = [::1]:{mport}")
    d.start()
    r = d.cli("stats", "--format=prometheus")
    s, _ = parse(r.stdout)
    n_peers = sum(1 for name, _ in s if name == "netelect_peer_probes_sent_total")
    n_lead = sum(1 for name, _ in s if name == "netelect_channel_leader")
    check(n_peers == 2000 and n_lead == 4096,
          f"stats --format=prometheus at 2000 peers and 4096 channels: {n_peers} peers, "
          f"{n_lead} leaders ({len(r.stdout)} bytes)")
    t = time.monotonic()
    text = scrape_at(f"[::1]:{mport}")
    log(f"SCRAPE {len(text)} bytes (2000 peers, 4096 channels) in "
        f"{1000 * (time.monotonic() - t):.0f} ms")
    check(parse(text)[0].keys() >= {k for k in s if k[0].startswith("netelect_peer_")},
          "the IPv6 endpoint lists every peer series the CLI does")


def main():
    for exe in (it.NETELECTD, it.CLI):
        if not os.access(exe, os.X_OK):
            print(f"missing {exe}")
            return 1
    return it.run_scenario("metrics", scenario)


if __name__ == "__main__":
    sys.exit(main())
