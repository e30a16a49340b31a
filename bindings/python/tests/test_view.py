# SPDX-License-Identifier: MIT
"""View against a real segment: the built netelectd publishes a private
segment (a unique name, its own control socket and UDP port), the built
netelect CLI changes it through the control socket.  Needs NETELECT_BUILD
(the build directory; meson's test 'python' sets it)."""
import errno
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import netelect
from netelect import Outcome

BUILD = os.environ.get("NETELECT_BUILD")
NETELECTD = os.path.join(BUILD or "", "agent", "netelectd")
CLI = os.path.join(BUILD or "", "agent", "netelect")
pytestmark = pytest.mark.skipif(not (BUILD and os.access(NETELECTD, os.X_OK)
                                     and os.access(CLI, os.X_OK)),
                                 reason="NETELECT_BUILD with agent/netelectd and agent/netelect needed")
SELF = 0x51


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Agent:
    """One netelectd on a private segment; stopped and cleaned up by stop()."""
    count = 0

    def __init__(self, node_id):
        Agent.count += 1
        self.tmp = tempfile.mkdtemp(prefix=f"netelect-py-{os.getpid()}-")
        self.shm = f"netelect-py-{os.getpid()}-{Agent.count}"
        self.ctl = os.path.join(self.tmp, "ctl")
        self.log = open(os.path.join(self.tmp, "netelectd.log"), "w")
        self.proc = subprocess.Popen(
            [NETELECTD, "--shm", self.shm, "--control", self.ctl, "--node-id", hex(node_id),
             "--listen", f"127.0.0.1:{free_udp_port()}"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"netelectd exited with {self.proc.returncode}: {self.logtext()}")
            if self.cli("status").returncode == 0:
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("netelectd did not publish within 10 s")

    def logtext(self):
        with open(self.log.name) as f:
            return f.read()[-2000:]

    def cli(self, *args):
        return subprocess.run([CLI, "--shm", self.shm, "--control", self.ctl] + list(args),
                              capture_output=True, text=True, timeout=15)

    def stop(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)

    def cleanup(self):
        self.stop()
        self.log.close()
        for suffix in ("", ".lock", ".readers", ".tmp"):
            try:
                os.unlink("/dev/shm/" + self.shm + suffix)
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def agent():
    a = Agent(SELF)
    yield a
    a.cleanup()


@pytest.fixture
def view(agent):
    with netelect.View(agent.shm) as v:
        yield v


def test_elect_rank_and_identity(view):
    assert view.self_id == SELF
    assert view.elect("default") == (Outcome.SELF_WINS, SELF)
    assert view.elect("default", self_id=0x99) == (Outcome.PEER_WINS, SELF)
    r, gen = view.elect_gen("default")
    assert r.is_self and gen == view.generation > 0
    assert view.rank("default") == [SELF]
    assert view.rank("default", cap=0) == []


def test_status_nodes_and_channels(view):
    s = view.status()
    assert isinstance(s, netelect.ViewStatus)
    assert s.writer_alive is True and s.state == netelect.AgentState.LIVE and s.self_id == SELF
    assert s.generation == view.generation and s.n_chans >= 1 and len(s.incarnation) == 16
    assert s.agent_pid > 0 and s.abi_major >= 1 and s.max_nodes >= s.n_nodes
    nodes = list(view.nodes())
    assert [n.id for n in nodes] == [SELF] and nodes[0].healthy
    assert view.node(SELF).id == SELF
    with pytest.raises(netelect.NoSegment) as e:  # -ENOENT: no such node
        view.node(0x1234)
    assert e.value.code == -errno.ENOENT
    chans = {c.name: c.members for c in view.channels()}
    assert chans["default"] == (SELF,)


def test_unknown_channel_raises_nochannel(view):
    with pytest.raises(netelect.NoChannel) as e:
        view.elect("no-such-channel")
    assert e.value.code == netelect.ENOCHAN == -4100
    assert e.value.message == netelect.strerror(-4100) and "channel" in e.value.message
    assert isinstance(e.value, netelect.NetelectError) and isinstance(e.value, LookupError)
    with pytest.raises(netelect.NoChannel):
        view.rank("no-such-channel")


def test_wait_is_woken_by_a_control_socket_change(agent, view):
    g0 = view.generation
    with pytest.raises(netelect.Timeout) as e:
        view.wait(g0, timeout=0.05)
    assert e.value.code == -errno.ETIMEDOUT
    out = {}
    t = threading.Timer(0.2, lambda: out.setdefault(
        "r", agent.cli("channel", "add", "py-extra", "0x77", "self")))
    t0 = time.monotonic()
    t.start()
    g1 = view.wait(g0, timeout=10)
    waited = time.monotonic() - t0
    t.join()
    assert out["r"].returncode == 0, out["r"].stderr
    assert g1 > g0
    # (an idle agent publishes nothing, so the first wake-up is the change)
    assert 0.15 < waited < 5, f"woke after {waited:.3f} s (the change came at 0.2 s)"
    assert view.generation >= g1
    assert view.elect("py-extra") == (Outcome.SELF_WINS, SELF)
    assert sorted({c.name: c.members for c in view.channels()}["py-extra"]) == [SELF, 0x77]


def test_fd_polls_readable_on_a_publish(agent, view):
    fd = view.fd()
    assert fd == view.fd() == view.fileno() and fd >= 0
    view.rearm()
    g0 = view.generation
    assert agent.cli("channel", "add", "py-fd", "self").returncode == 0
    r, _, _ = select.select([fd], [], [], 5)
    assert r == [fd], "the descriptor did not become readable after a publish"
    view.rearm()
    assert view.generation > g0
    assert view.elect("py-fd").is_self


def test_open_errors():
    with pytest.raises(netelect.NoSegment) as e:
        netelect.View(f"netelect-py-missing-{os.getpid()}")
    assert e.value.code == -errno.ENOENT and "open" in str(e.value)


def test_expect_uid_refuses_another_owner(agent):
    owner = os.stat("/dev/shm/" + agent.shm).st_uid
    with pytest.raises(netelect.NotTrusted) as e:
        netelect.View(agent.shm, expect_uid=owner + 4242)
    assert e.value.code == -errno.EPERM
    with netelect.View(agent.shm, expect_uid=owner) as v:
        assert v.elect("default").is_self


def test_context_manager_closes(agent):
    with netelect.View(agent.shm) as v:
        assert not v.closed
    assert v.closed
    with pytest.raises(ValueError, match="closed"):
        v.elect("default")
    v.close()  # idempotent


def test_agent_exit_ends_wait_with_agentgone():
    a = Agent(0x52)
    try:
        v = netelect.View(a.shm)
        g0 = v.generation
        threading.Timer(0.2, lambda: a.stop(signal.SIGTERM)).start()
        with pytest.raises(netelect.AgentGone) as e:
            v.wait(g0, timeout=10)
        assert e.value.code == -errno.EOWNERDEAD
        assert v.status().writer_alive is False
        with pytest.raises(netelect.AgentGone):  # at once if it already was
            v.wait(timeout=10)
        assert v.elect("default").is_self  # fail-static: still answers from the last view
        v.close()
        with netelect.View(a.shm, fail_static=0.05) as v2:
            time.sleep(0.1)
            with pytest.raises(netelect.Stale) as e:
                v2.elect("default")
            assert e.value.code == netelect.ESTALE
    finally:
        a.cleanup()


def test_threads_elect_on_one_view(view):
    """One View, several threads, each with its own self_id: every answer is
    that thread's own (no result buffer is shared between calls)."""
    errors = []

    def run(me):
        want = (Outcome.SELF_WINS, SELF) if me == SELF else (Outcome.PEER_WINS, SELF)
        for _ in range(3000):
            got = view.elect("default", self_id=me)
            if got != want:
                errors.append((me, got))
                return

    ts = [threading.Thread(target=run, args=(me,)) for me in (SELF, 0x1, 0x2, 0x3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
