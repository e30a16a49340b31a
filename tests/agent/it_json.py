#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration test: the `netelect --json` contract, and the agent's log of bad MACs.

usage: it_json.py BUILD_DIR json|authlog [CLI]

  json     Two live agents (A probes B, and a peer that never answers).
           Every verb of `netelect --json` (status, view, elect, rank,
           stats, the control verbs' replies, and errors: unknown channel,
           usage, no segment, agent unreachable, refusals, agent gone and
           ESTALE) must print exactly one line on stdout that validates
           against docs/netelect-cli.schema.json, with the exit status the
           verb has without --json.  Also: one id form everywhere, unknown
           RTTs null, `--opt=VALUE` and options after the verb
           (getopt_long), NETELECT_SHM / NETELECT_CONTROL defaults, and
           NETELECT_ENOCHAN ("no such channel") for an unknown channel.
  authlog  Probe packets with a wrong MAC: the first is logged at once with
           its source address, the rest as one line with their count when
           the 10 s interval ends (not one line each).
CLI (optional) tests another netelect binary with this build's agent (to
show the test fails on an older CLI).  Needs python3-jsonschema.  Exit 0
pass, 1 fail, 77 skip.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_agents as it  # noqa: E402  (shares the harness; BUILD comes from argv[1])
from it_agents import Agent, Fail, Harness, check, gen_key, healthy, log, wait_for  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = os.path.join(SRC, "docs", "netelect-cli.schema.json")
ID_RE = re.compile(r"^0x(0|[1-9a-f][0-9a-f]{0,15})$")
FAIL_STATIC_S = 2.0
AUTH_LOG_S = 10.0  # agent/udp.c AUTH_LOG_NS


class Contract:
    """Runs `netelect --json ...` and checks each reply against the schema."""

    def __init__(self, validator):
        self.v = validator
        self.verbs = set()

    def run(self, argv, rc, what, env=None):
        """argv: the CLI's arguments (--json included by the caller); rc: the exit status wanted."""
        r = subprocess.run([it.CLI] + argv, capture_output=True, text=True, timeout=15,
                           env=dict(os.environ, **(env or {})))
        lines = r.stdout.splitlines()
        if r.returncode != rc or len(lines) != 1:
            raise Fail(f"{what}: `netelect {' '.join(argv)}`: exit {r.returncode} (want {rc}), "
                       f"{len(lines)} stdout lines (want 1)\nstdout: {r.stdout[:400]!r}\nstderr: {r.stderr[:400]!r}")
        try:
            j = json.loads(lines[0])
        except json.JSONDecodeError as e:
            raise Fail(f"{what}: stdout is not JSON ({e}): {lines[0][:200]!r}")
        errs = sorted(self.v.iter_errors(j), key=lambda e: list(e.absolute_path))
        if errs:
            raise Fail(f"{what}: `netelect {' '.join(argv)}` does not match the schema: "
                       + "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:160]}"
                                   for e in errs[:4]) + f"\n  reply: {lines[0][:600]}")
        check(True, f"{what}: exit {rc}, schema ok")
        self.verbs.add(j.get("verb"))
        j["_stderr"] = r.stderr
        return j


def load_validator():
    try:
        import jsonschema
    except ImportError:
        return None
    with open(SCHEMA) as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def ids_in(j):
    """Every value of an id-valued key, anywhere in a reply."""
    out = []
    if isinstance(j, dict):
        for k, v in j.items():
            if k in ("id", "self", "node_id", "leader", "peers_next") and isinstance(v, str):
                out.append(v)
            elif k == "members" and isinstance(v, list):
                out += v
            else:
                out += ids_in(v)
    elif isinstance(j, list):
        for v in j:
            out += ids_in(v)
    return out


def scenario_json(h, c):
    gen_key(h)
    A, B, Z = 0xA1, 0xB2, 0xDEAD  # Z is configured but never answers: its RTT stays unknown
    pa, pb, pz = h.free_udp_port(), h.free_udp_port(), h.free_udp_port()
    a = Agent(h, 1, A, pa, [(B, f"127.0.0.1:{pb}"), (Z, f"127.0.0.1:{pz}")],
              [("default", ["self"]), ("pair", [B, Z]), ("ghost", [Z]), ("all", ["self", B])])
    b = Agent(h, 2, B, pb, [(A, f"127.0.0.1:{pa}")], [("default", ["self"])])
    a.start()
    b.start()
    wait_for("A sees B healthy", lambda: healthy(a, B), 5)
    base = ["--json", "--shm", a.shm, "--control", a.ctl]
    replies = []

    def run(args, rc, what, env=None, opts=None):
        j = c.run((base if opts is None else opts) + args, rc, what, env)
        replies.append(j)
        return j

    # ---- reading verbs
    st = run(["status"], 0, "status")
    check(st["alive"] and st["node_id"] == "0x" + format(A, "x") and isinstance(st["generation"], int),
          f"status: alive, node_id {st['node_id']}, generation {st['generation']}")
    v = run(["view"], 0, "view")
    nodes = {n["id"]: n for n in v["nodes"]}
    check(nodes[f"{Z:#x}"]["rtt_ns"] is None and nodes[f"{Z:#x}"]["raw_ns"] is None,
          "view: a never-measured RTT is null, not -1")
    check(isinstance(nodes[f"{B:#x}"]["rtt_ns"], int) and nodes[f"{A:#x}"]["self"],
          "view: a measured RTT is an integer; self is marked")
    chans = {ch["name"]: ch for ch in v["channels"]}
    check(chans["ghost"]["outcome"] == "none" and chans["ghost"]["leader"] is None,
          "view: a channel without a candidate has outcome none and leader null")
    check(chans["pair"]["leader"] == f"{B:#x}" and chans["pair"]["outcome"] == "peer",
          f"view: 'pair' is led by B, as an id ({chans['pair']['leader']})")
    el = run(["elect", "pair"], 0, "elect")
    check(el["leader"] == f"{B:#x}" and el["outcome"] == "peer" and el["agent_alive"] is True,
          "elect: leader B as an id, outcome peer, agent alive")
    el = run(["elect", "default"], 0, "elect (self wins)")
    check(el["leader"] == el["self"] == f"{A:#x}" and el["outcome"] == "self", "elect: self wins 'default'")
    el = run(["elect", "ghost"], 3, "elect (no eligible replica)")
    check(el["leader"] is None and el["outcome"] == "none", "elect ghost: leader null, outcome none, exit 3")
    rk = run(["rank", "pair"], 0, "rank")
    check([e["id"] for e in rk["order"]] == [f"{B:#x}"], f"rank pair: B only (Z is unhealthy): {rk['order']}")
    rk = run(["rank", "all"], 0, "rank (self first)")
    check(rk["order"][0] == {"id": f"{A:#x}", "rtt_ns": 0, "self": True}, f"rank all: self first at RTT 0")
    rk = run(["rank", "ghost"], 3, "rank (no eligible replica)")
    check(rk["order"] == [], "rank ghost: empty order, exit 3")
    sts = run(["stats"], 0, "stats")
    peers = {p["id"]: p for p in sts["peers"]}
    check(peers[f"{Z:#x}"]["rtt_ns"] is None and peers[f"{Z:#x}"]["rtt_estimate_ns"] is None,
          "stats: a never-measured peer's RTTs are null")
    check(isinstance(sts["generation"], int), "stats carries the generation")

    w = run(["watch", "pair", "--count", "1"], 0, "watch (first line)")
    check(w["event"] == "leader" and w["leader"] == f"{B:#x}" and w["agent_alive"] is True
          and isinstance(w["ts_ns"], int), f"watch: first line, leader B, event {w['event']}")
    w = run(["watch", "nope", "--count", "1"], 1, "watch of an unknown channel")
    check(w["ok"] is False and w["error"]["name"] == "NETELECT_ENOCHAN" and w["verb"] == "watch",
          "watch nope: a failure line with NETELECT_ENOCHAN, exit 1")

    # ---- control verbs: every success reply
    for args, what in ((["set-rtt", "0x77", "2ms"], "set-rtt"), (["set-health", "0x77", "down"], "set-health"),
                       (["clear", "0x77"], "clear"), (["peer", "add", "0x88", "127.0.0.1:9"], "peer add"),
                       (["peer", "remove", "0x88"], "peer remove"),
                       (["channel", "add", "extra", "self", "0x99"], "channel add"),
                       (["channel", "remove", "extra", "0x99"], "channel remove (members)"),
                       (["channel", "remove", "extra"], "channel remove"), (["drain", "all"], "drain"),
                       (["undrain", "all"], "undrain"), (["reload"], "reload")):
        j = run(args, 0, what)
        check(j["ok"] is True and isinstance(j["generation"], int), f"{what}: ok, generation {j['generation']}")

    # ---- errors: JSON on stdout too, exit status unchanged
    e = run(["elect", "nope"], 1, "elect of an unknown channel")
    check(e["error"]["name"] == "NETELECT_ENOCHAN" and "no such channel" in e["error"]["message"]
          and "no such channel" in e["_stderr"],
          f"unknown channel: {e['error']['name']} {e['error']['message']!r} (and on stderr)")
    e = run(["rank", "nope"], 1, "rank of an unknown channel")
    check(e["error"]["code"] == e["error"]["code"] and e["error"]["name"] == "NETELECT_ENOCHAN",
          "rank: NETELECT_ENOCHAN")
    e = run(["elect"], 2, "usage error (missing CHANNEL)")
    check(e["error"]["name"] == "EINVAL" and e["verb"] == "elect", f"usage: {e['error']['message']!r}")
    run(["--bogus", "status"], 2, "usage error (unknown option)")
    e = run(["frobnicate"], 2, "usage error (unknown verb)")
    check(e["verb"] is None, "an unknown verb is reported with verb null")
    run(["elect", "pair", "--shm"], 2, "usage error (option without its value)")
    e = run(["status"], 1, "no segment", opts=["--json", "--shm", f"{a.shm}-none"])
    check(e["error"]["name"] == "ENOENT" and e["generation"] is None, "no segment: ENOENT, generation null")
    e = run(["stats"], 1, "agent unreachable", opts=["--json", "--control", a.ctl + "-none"])
    check(e["error"]["name"] == "ENOENT", "control socket missing: ENOENT")
    e = run(["set-health", f"{A:#x}", "down"], 1, "refusal (own id)")
    check(e["error"]["name"] == "EINVAL" and "own id" in e["error"]["message"], "refusal: EINVAL, the agent's message")
    e = run(["clear", "0x4242"], 1, "refusal (no such node)")
    check(e["error"]["name"] == "ENOENT", "clear of an unknown node: ENOENT")
    e = run(["channel", "remove", "nope"], 1, "refusal (no such channel)")
    check(e["error"]["name"] == "NETELECT_ENOCHAN", "channel remove of an unknown channel: NETELECT_ENOCHAN")
    e = run(["drain", "nope"], 1, "refusal (drain of no such channel)")
    check(e["error"]["name"] == "NETELECT_ENOCHAN", "drain of an unknown channel: NETELECT_ENOCHAN")

    # ---- option parsing: --opt=VALUE, options after the verb, environment defaults
    j = run(["elect", "pair", "--json", f"--shm={a.shm}", "--control", a.ctl], 0,
            "--opt=VALUE and options after the verb", opts=[])
    check(j["leader"] == f"{B:#x}", "elect pair --json --shm=NAME: same answer")
    j = run(["rank", "pair", "--self", f"{B:#x}"], 0, "--self after CHANNEL")
    check(j["self"] == f"{B:#x}" and j["order"][0]["self"], "rank pair --self B: B is self and first")
    env = {"NETELECT_SHM": a.shm, "NETELECT_CONTROL": a.ctl}
    j = run(["status"], 0, "NETELECT_SHM", env=env, opts=["--json"])
    check(j["node_id"] == f"{A:#x}", "NETELECT_SHM names the segment")
    run(["stats"], 0, "NETELECT_CONTROL", env=env, opts=["--json"])
    j = run(["status"], 0, "an option wins over the environment",
            env={"NETELECT_SHM": f"{a.shm}-none"}, opts=["--json", "--shm", a.shm])
    r = subprocess.run([it.CLI, "--help"], capture_output=True, text=True, timeout=5)
    check(r.returncode == 0 and "NETELECT_SHM" in r.stdout and "NETELECT_CONTROL" in r.stdout,
          "--help documents NETELECT_SHM and NETELECT_CONTROL")
    # --json as the value of another option is that value, not the option
    r = subprocess.run([it.CLI, "frobnicate", "--exec", "--json"], capture_output=True, text=True, timeout=5)
    check(r.returncode == 2 and not r.stdout and "unknown verb" in r.stderr,
          f"`--exec --json` leaves JSON off ({r.stdout.strip()!r})")
    r = subprocess.run([it.CLI, "--shm", a.shm, "elect", "nope"], capture_output=True, text=True, timeout=5)
    check(r.returncode == 1 and "no such channel" in r.stderr and not r.stdout,
          f"without --json: the error on stderr only ({r.stderr.strip()!r})")

    # ---- one id form everywhere
    all_ids = [i for j in replies for i in ids_in(j)]
    bad = [i for i in all_ids if not ID_RE.match(i)]
    check(not bad and len(all_ids) > 20, f"{len(all_ids)} ids in {len(replies)} replies, all 0x-hex ({bad[:5]})")

    # ---- the agent gone: still schema-valid, exit 4; then ESTALE
    b.kill(signal.SIGTERM)
    a.kill(signal.SIGTERM)
    t0 = time.monotonic()
    st = run(["status"], 4, "status of an exited agent")
    check(st["alive"] is False and st["state"] == "abandoned", f"status: {st['state']}")
    el = run(["elect", "pair"], 4, "elect from the last view (fail-static)")
    check(el["agent_alive"] is False and el["leader"] == f"{B:#x}", "elect: last answer, agent_alive false, exit 4")
    rk = run(["rank", "pair"], 4, "rank from the last view (fail-static)")
    v = run(["view"], 4, "view of an exited agent (exit 4, as status, elect and rank)")
    check(v["agent_alive"] is False, "view: agent_alive false")
    e = run(["stats"], 1, "stats with the agent gone")
    time.sleep(max(0.0, t0 + FAIL_STATIC_S + 0.3 - time.monotonic()))
    e = run(["elect", "pair"], 4, "elect past the fail-static window")
    check(e["error"]["name"] == "NETELECT_ESTALE", f"ESTALE: {e['error']['message']!r}")
    run(["rank", "pair"], 4, "rank past the fail-static window")

    want = {"status", "view", "elect", "rank", "stats", "set-rtt", "set-health", "clear", "peer-add",
            "peer-remove", "channel-add", "channel-remove", "drain", "undrain", "reload", None}
    check(want <= c.verbs, f"every verb's reply was checked ({sorted(map(str, c.verbs))})")
    return 0


def auth_lines(a):
    with open(a.proc.logpath) as f:
        return [l.strip() for l in f if "failed authentication" in l]


def scenario_authlog(h, c):
    gen_key(h)
    port = h.free_udp_port()
    a = Agent(h, 1, 0xC1, port, [], [("default", ["self"])]).start()
    wrong = os.path.join(h.tmp, "wrongkey")
    h.run([it.NETELECTD, "--gen-key", wrong], check_rc=0)
    pktsend = os.path.join(it.HELPERS, "pktsend")
    to = f"127.0.0.1:{port}"
    t0 = time.monotonic()
    h.run([pktsend, to, wrong, "0x777", "0xc1", "badmac"], check_rc=0)
    wait_for("the first bad MAC is logged", lambda: auth_lines(a), 2, 0.01)
    first = auth_lines(a)
    check(len(first) == 1 and "127.0.0.1:" in first[0], f"logged at once, with the source: {first[0]!r}")
    # 40 more from the same source: counted, not logged one by one
    h.run([pktsend, to, wrong, "0x777", "0xc1", "floodmac", "40", "200"], check_rc=0)
    time.sleep(0.5)
    n_bad = a.stats()["drops"]["bad_mac"]
    check(len(auth_lines(a)) == 1, f"{n_bad} bad MACs so far, still one log line")
    wait_for("the interval's summary line", lambda: len(auth_lines(a)) >= 2, AUTH_LOG_S + 3, 0.1)
    dt = time.monotonic() - t0
    lines = auth_lines(a)
    m = re.search(r"(\d+) more probe packets? failed authentication", lines[1])
    check(m and int(m.group(1)) == n_bad - 1 and "127.0.0.1:" in lines[1],
          f"after {dt:.1f} s one line with the count ({n_bad - 1}) and the last source: {lines[1]!r}")
    check(AUTH_LOG_S - 0.5 <= dt <= AUTH_LOG_S + 3, f"the summary came when the {AUTH_LOG_S:.0f} s interval ended")
    check(len(lines) == 2, "two lines for 1 + the rest")
    return 0


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[2] not in ("json", "authlog"):
        print(__doc__)
        return 2
    if len(sys.argv) == 4:
        it.CLI = os.path.abspath(sys.argv[3])
    validator = load_validator()
    if validator is None:
        log("SKIP: python3-jsonschema is missing (.ci/bootstrap test installs it)")
        return 77
    return it.run_scenario(sys.argv[2], {"json": scenario_json, "authlog": scenario_authlog}[sys.argv[2]],
                           Contract(validator))


if __name__ == "__main__":
    sys.exit(main())
