# SPDX-License-Identifier: MIT
"""View: the replica view netelectd publishes in shared memory (netelect/view.h)."""
import ctypes
import dataclasses
import enum
import errno
import time
from typing import Optional, Tuple

from . import _lib
from ._core import Outcome, Result, _OUTCOMES
from .errors import error

_U64_MAX = (1 << 64) - 1
_view_self = _lib.fast.netelect_view_self
_view_elect = _lib.fast.netelect_view_elect
_new = tuple.__new__
_Result = _lib.Result_
_byref = ctypes.byref


class RttSource:
    NONE, PROBE, SERF, OPERATOR = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class NodeInfo:
    id: int
    rtt_ns: int           # smoothed RTT used by elections, or RTT_UNKNOWN
    rtt_raw_ns: int       # last raw sample, or RTT_UNKNOWN
    rtt_err_ns: int       # error estimate (Serf) or deviation (probe); 0 if none
    last_heard_ns: int    # agent CLOCK_MONOTONIC when last heard from; 0 never
    healthy: bool
    source: int           # RttSource


@dataclasses.dataclass(frozen=True)
class Channel:
    name: str
    members: Tuple[int, ...]


class AgentState(enum.IntEnum):
    """enum netelect_agent_state: the agent's state as its segment records it."""
    INIT = 0       # the segment is still being built
    LIVE = 1       # an agent owns the view and publishes it
    ABANDONED = 2  # the agent exited cleanly; the data is frozen
    MOVED = 3      # the agent moved to a larger segment under the same name
    STALLED = 4    # the agent lives but cannot publish; the data is frozen


@dataclasses.dataclass(frozen=True)
class ViewStatus:
    """netelect_view_status(), field for field (see include/netelect/view.h)."""
    generation: int
    self_id: int
    publish_ns: int
    heartbeat_seq: int
    heartbeat_age_ns: int
    forced_reuse: int
    n_nodes: int
    n_chans: int
    agent_pid: int
    state: "AgentState"
    incarnation: bytes
    abi_major: int
    abi_minor: int
    slot_count: int
    max_nodes: int
    max_chans: int
    max_members: int
    registered: bool
    stale: bool
    heartbeat_period_ns: int
    retries: int
    reattaches: int
    pinned_waits: int
    heartbeat_mono_ns: int
    writer_alive: bool
    clock_shared: bool


def _node(n):
    return NodeInfo(n.id, n.rtt_ns, n.rtt_raw_ns, n.rtt_err_ns, n.last_heard_ns,
                    bool(n.healthy), n.source)


def _name(channel):
    if isinstance(channel, str):
        return channel.encode()
    if isinstance(channel, bytes):
        return channel
    raise TypeError(f"channel: a str is needed, got {type(channel).__name__}")


class View:
    """A read-only handle on a published view (netelect_view_open_opts).

    `name` None means /dev/shm/netelect; a name with '/' is a path.
    `expect_uid` requires that uid to own the segment (otherwise root, the
    agent user or our own euid are trusted).  `fail_static` (seconds, None
    for the library's 2 s, math.inf for forever) is how long elections keep
    answering from the last version once the agent is gone.

    Any number of threads may use one View, but close() (and leaving a
    `with` block) must not race with them.
    """

    def __init__(self, name: Optional[str] = None, expect_uid: Optional[int] = None,
                 fail_static: Optional[float] = None):
        self._h = None
        opts = _lib.ViewOpts_(size=ctypes.sizeof(_lib.ViewOpts_))
        if expect_uid is not None:
            opts.expect_uid, opts.expect_uid_set = expect_uid, 1
        if fail_static is not None:
            opts.fail_static_ns = (_U64_MAX if fail_static == float("inf")
                                   else max(1, int(fail_static * 1e9)))
        h = ctypes.c_void_p()
        rc = _lib.lib.netelect_view_open_opts(None if name is None else name.encode(),
                                              ctypes.byref(opts), ctypes.byref(h))
        if rc < 0:
            raise error(rc, f"open {name or 'netelect'}")
        self._h = h.value

    open = classmethod(lambda cls, name=None, expect_uid=None, fail_static=None:
                       cls(name, expect_uid, fail_static))

    def close(self):
        """Detaches (netelect_view_close); idempotent."""
        h, self._h = self._h, None
        if h:
            _lib.lib.netelect_view_close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        if getattr(self, "_h", None):
            self.close()

    def _handle(self):
        if not self._h:
            raise ValueError("netelect: operation on a closed View")
        return self._h

    @property
    def closed(self):
        return not self._h

    @property
    def self_id(self) -> int:
        """The agent's own node id (the default self_id of elect and rank)."""
        return _lib.fast.netelect_view_self(self._handle())

    @property
    def generation(self) -> int:
        """Changes iff a new version was published (one load, no lock)."""
        return _lib.fast.netelect_view_generation(self._handle())

    def elect(self, channel, self_id: Optional[int] = None) -> Result:
        """The leader of `channel` (netelect_view_elect).  Raises NoChannel,
        Stale, ... (NetelectError) as the C call documents."""
        h = self._h
        if not h:
            raise ValueError("netelect: operation on a closed View")
        if self_id is None:
            self_id = _view_self(h)
        res = _Result()  # per call: threads may elect on one View at once
        rc = _view_elect(h, channel.encode() if type(channel) is str else _name(channel),
                         self_id, _byref(res))
        if rc < 0:
            raise error(rc, f"elect {channel}")
        return _new(Result, (_OUTCOMES[res.outcome], res.winner))

    def elect_gen(self, channel, self_id: Optional[int] = None) -> Tuple[Result, int]:
        """elect() plus the generation the answer came from: it holds while
        View.generation still returns that value."""
        h = self._handle()
        if self_id is None:
            self_id = _lib.fast.netelect_view_self(h)
        res, gen = _lib.Result_(), _lib.c_u64()
        rc = _lib.fast.netelect_view_elect_gen(h, _name(channel), self_id, ctypes.byref(res),
                                               ctypes.byref(gen))
        if rc < 0:
            raise error(rc, f"elect {channel}")
        return Result(_OUTCOMES[res.outcome], res.winner), gen.value

    def rank(self, channel, self_id: Optional[int] = None, cap: Optional[int] = None) -> list:
        """The failover order of `channel` (every candidate, or the first `cap`)."""
        h = self._handle()
        if self_id is None:
            self_id = _lib.fast.netelect_view_self(h)
        name = _name(channel)
        want = 64 if cap is None else cap
        while True:
            buf = (_lib.c_u64 * max(want, 1))()
            count = ctypes.c_size_t()
            rc = _lib.fast.netelect_view_rank(h, name, self_id, ctypes.addressof(buf), want,
                                              ctypes.byref(count))
            if rc < 0:
                raise error(rc, f"rank {channel}")
            if cap is not None or count.value <= want:
                return buf[:min(count.value, want)]
            want = count.value  # more candidates than room: again with room for all

    def wait(self, last_generation: Optional[int] = None,
             timeout: Optional[float] = None) -> int:
        """Blocks until the published generation differs from `last_generation`
        (default: the current one) and returns the new generation.  `timeout`
        in seconds (None: no limit).  Raises AgentGone (-EOWNERDEAD) when the
        agent is gone, at once if it already was; Timeout (-ETIMEDOUT).  A
        signal (-EINTR) lets Python run its handlers, then waits on."""
        h = self._handle()
        if last_generation is None:
            last_generation = _lib.fast.netelect_view_generation(h)
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _U64_MAX if end is None else max(0, int((end - time.monotonic()) * 1e9))
            rc = _lib.lib.netelect_view_wait(h, last_generation, left)
            if rc == 0:
                return _lib.fast.netelect_view_generation(h)
            if rc != -errno.EINTR:
                raise error(rc, "wait")

    def fd(self) -> int:
        """netelect_view_fd(): a descriptor (owned by the View: do not close it)
        that polls readable on a publish, the agent's exit or a new agent.
        After each wake-up call rearm(), then read the view."""
        fd = _lib.lib.netelect_view_fd(self._handle())
        if fd < 0:
            raise error(fd, "fd")
        return fd

    def rearm(self):
        """netelect_view_fd_rearm(): consumes the wake-up, follows a new segment."""
        rc = _lib.lib.netelect_view_fd_rearm(self._handle())
        if rc < 0:
            raise error(rc, "rearm")

    def fileno(self) -> int:
        """For select/selectors: the same descriptor as fd()."""
        return self.fd()

    def status(self) -> ViewStatus:
        s = _lib.Status_(size=ctypes.sizeof(_lib.Status_))
        rc = _lib.lib.netelect_view_status(self._handle(), ctypes.byref(s))
        if rc < 0:
            raise error(rc, "status")
        vals = {f.name: getattr(s, f.name) for f in dataclasses.fields(ViewStatus)}
        vals["incarnation"] = bytes(s.incarnation)
        try:
            vals["state"] = AgentState(s.state)
        except ValueError:  # a state this package does not know yet
            pass
        for b in ("registered", "stale", "writer_alive", "clock_shared"):
            vals[b] = bool(vals[b])
        return ViewStatus(**vals)

    def node(self, node_id: int) -> NodeInfo:
        """One node by id; NoSegment (-ENOENT) for an unknown node."""
        n = _lib.NodeInfo_()
        rc = _lib.lib.netelect_view_node(self._handle(), node_id, ctypes.byref(n))
        if rc < 0:
            raise error(rc, f"node {node_id:#x}")
        return _node(n)

    def _foreach(self, fn, cbtype, convert, key):
        """Runs a foreach over one consistent version.  The C call retries as a
        whole when the writer laps it, so the callback may see a first
        attempt's items again: an item seen twice starts the list afresh, and
        a retry counted by the handle meanwhile repeats the whole call."""
        h = self._handle()
        out = []
        for attempt in range(8):
            out, seen, err = [], set(), []

            def cb(_ctx, *args):
                try:
                    item = convert(*args)
                    k = key(item)
                    if k in seen:
                        out.clear()
                        seen.clear()
                    seen.add(k)
                    out.append(item)
                    return 0
                except BaseException as e:  # never let an exception cross C
                    err.append(e)
                    return 1
            before = self.status().retries
            rc = fn(h, cbtype(cb), None)
            if err:
                raise err[0]
            if rc < 0:
                raise error(rc, "foreach")
            if self.status().retries == before:
                break
        return out

    def nodes(self):
        """Every node of one consistent version (netelect_view_foreach_node)."""
        return iter(self._foreach(_lib.lib.netelect_view_foreach_node, _lib.NODE_CB,
                                  lambda p: _node(p.contents), lambda n: n.id))

    def channels(self):
        """Every channel of one consistent version, with its members
        (netelect_view_foreach_channel)."""
        return iter(self._foreach(
            _lib.lib.netelect_view_foreach_channel, _lib.CHAN_CB,
            lambda name, members, n: Channel(name.decode("utf-8", "replace"),
                                             tuple(members[:n])),
            lambda c: c.name))

    def __iter__(self):
        """Iterating a View yields its nodes."""
        return self.nodes()

    def __repr__(self):
        return f"<netelect.View {'closed' if self.closed else hex(self._h)}>"


__all__ = ["View", "ViewStatus", "AgentState", "NodeInfo", "Channel", "RttSource", "Outcome"]
