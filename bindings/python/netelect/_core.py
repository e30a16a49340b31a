# SPDX-License-Identifier: MIT
"""elect, rank and topk over caller arrays: argument marshalling and the results."""
import array
import ctypes
import enum
from typing import NamedTuple, Optional

from ._lib import fast

try:  # numpy is optional: without it the module works with lists and array.array
    import numpy as _np
except ImportError:  # pragma: no cover - exercised on machines without python3-numpy
    _np = None

RTT_UNKNOWN = (1 << 64) - 1        # NETELECT_RTT_UNKNOWN: never measured, ranks last
RTT_MAX_MEASURED = RTT_UNKNOWN - 1  # the largest RTT that counts as measured
_U64_MAX = RTT_UNKNOWN


class Outcome(enum.IntEnum):
    NO_ELIGIBLE = 0  # no healthy replica (partition, or all down)
    SELF_WINS = 1    # the caller is the leader
    PEER_WINS = 2    # a peer is the leader: see Result.winner


class Result(NamedTuple):
    """An election's outcome.  `winner` is as in C: self_id on SELF_WINS,
    the peer on PEER_WINS, 0 on NO_ELIGIBLE."""
    outcome: Outcome
    winner: int

    @property
    def is_self(self):
        """True iff the caller won (the seed's is_self())."""
        return self.outcome == Outcome.SELF_WINS

    @property
    def peer(self) -> Optional[int]:
        """The peer that won, else None (the seed's winner())."""
        return self.winner if self.outcome == Outcome.PEER_WINS else None

    @property
    def leader(self) -> Optional[int]:
        """Whoever leads (self or a peer), None on NO_ELIGIBLE."""
        return None if self.outcome == Outcome.NO_ELIGIBLE else self.winner


_OUTCOMES = (Outcome.NO_ELIGIBLE, Outcome.SELF_WINS, Outcome.PEER_WINS)


_new = tuple.__new__


def _result(r):
    return _new(Result, (_OUTCOMES[r.outcome], r.winner))  # NamedTuple's __new__ is slow


# Each marshaller returns (address, keepalive, length).  The keepalive object
# owns the memory at `address` and must outlive the call.

_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof
if _np is not None:
    _ndarray = _np.ndarray
    _DT_U64 = _np.dtype(_np.uint64)
    _DT_U8 = _np.dtype(_np.uint8)
    _DT_BOOL = _np.dtype(_np.bool_)
else:
    _ndarray = _DT_U64 = _DT_U8 = _DT_BOOL = None


def _np_addr(x):
    """(address, keepalive) of a C-contiguous array's data.  A ctypes view of
    a writable buffer is three times cheaper than x.ctypes.data (and holds a
    buffer export, so the array cannot be resized under the call); read-only
    or empty arrays take the slower way."""
    try:
        c = _from_buffer(x)
        return _addressof(c), c
    except (TypeError, ValueError, BufferError):
        return x.ctypes.data, x


def _u64(x, what):
    """A uint64 array's address: zero-copy for C-contiguous uint64 numpy arrays
    and array('Q'); anything else is converted (checked: no negative or
    over-range value, None in an RTT list means unknown)."""
    if _np is not None and isinstance(x, _ndarray):
        if x.dtype is _DT_U64 and x.ndim == 1:
            try:  # a writable buffer export only succeeds for C-contiguous data
                c = _from_buffer(x)
                return _addressof(c), c, len(x)
            except (TypeError, ValueError, BufferError):
                pass
        if x.dtype == _DT_U64 and x.ndim == 1 and x.flags.c_contiguous:
            addr, keep = _np_addr(x)
            return addr, keep, x.shape[0]
        if x.ndim != 1:
            raise ValueError(f"{what}: a 1-d array is needed, got {x.ndim} dimensions")
        if x.dtype.kind == "i":
            if x.size and x.min() < 0:
                raise ValueError(f"{what}: negative value {int(x.min())}")
        elif x.dtype.kind not in "ub":
            raise TypeError(f"{what}: an integer array is needed, got dtype {x.dtype}")
        x = _np.ascontiguousarray(x, dtype=_np.uint64)
        return x.ctypes.data, x, x.shape[0]
    if isinstance(x, array.array) and x.typecode in ("Q", "L") and x.itemsize == 8:
        addr, n = x.buffer_info()
        return addr, x, n
    try:
        a = array.array("Q", x)
    except OverflowError:
        raise ValueError(f"{what}: every value must be in 0..2**64-1") from None
    except TypeError:
        if what != "rtts":
            raise TypeError(f"{what}: integers are needed") from None
        try:
            a = array.array("Q", [_U64_MAX if v is None else v for v in x])
        except OverflowError:
            raise ValueError(f"{what}: every value must be in 0..2**64-1 (or None)") from None
        except TypeError:
            raise TypeError(f"{what}: integers (or None for unknown) are needed") from None
    addr, n = a.buffer_info()
    return addr, a, n


def _u8(x):
    """Health flags' address: zero-copy for C-contiguous uint8/int8/bool numpy
    arrays, array('B'/'b') and bytes-like objects of 1-byte items; anything
    else is converted by truth value."""
    if _np is not None and isinstance(x, _ndarray):
        dt = x.dtype
        if (dt is _DT_U8 or dt is _DT_BOOL) and x.ndim == 1:
            try:
                c = _from_buffer(x)
                return _addressof(c), c, len(x)
            except (TypeError, ValueError, BufferError):
                pass
        if ((dt is _DT_U8 or dt is _DT_BOOL or (dt.itemsize == 1 and dt.kind in "uib"))
                and x.ndim == 1 and x.flags.c_contiguous):
            addr, keep = _np_addr(x)
            return addr, keep, x.shape[0]
        if x.ndim != 1:
            raise ValueError(f"healthy: a 1-d array is needed, got {x.ndim} dimensions")
        x = _np.ascontiguousarray(x != 0, dtype=_np.uint8)
        return x.ctypes.data, x, x.shape[0]
    if isinstance(x, array.array) and x.itemsize == 1:
        addr, n = x.buffer_info()
        return addr, x, n
    if isinstance(x, (bytes, bytearray)):
        a = array.array("B", x)  # a copy: bytes have no stable address through ctypes
    else:
        try:  # ints 0..255 and bools directly (non-zero is healthy, as in C)
            a = array.array("B", x)
        except (TypeError, OverflowError):  # anything else by its truth value
            a = array.array("B", [1 if v else 0 for v in x])
    addr, n = a.buffer_info()
    return addr, a, n


def _args(ids, rtts, healthy, self_id):
    pi, ki, n = _u64(ids, "ids")
    pr, kr, nr = _u64(rtts, "rtts")
    ph, kh, nh = _u8(healthy)
    if not (n == nr == nh):
        raise ValueError(f"ids, rtts and healthy must have one length (got {n}, {nr}, {nh})")
    if not 0 <= self_id <= _U64_MAX:
        raise ValueError(f"self_id {self_id} is not a 64-bit node id")
    return pi, pr, ph, n, (ki, kr, kh)


def elect(ids, rtts, healthy, self_id):
    """netelect_elect: the leader among the replicas given as parallel
    sequences (ids, RTTs in ns with RTT_UNKNOWN or None for never measured,
    health flags).  Returns a Result; never fails on well-formed input."""
    pi, pr, ph, n, keep = _args(ids, rtts, healthy, self_id)
    r = fast.netelect_elect(pi, pr, ph, n, self_id)
    del keep
    return _result(r)


def _out(out, need):
    if out is None:
        a = array.array("Q", bytes(8 * need)) if need else array.array("Q")
        return a, (a.buffer_info()[0] if need else None)
    if _np is not None and isinstance(out, _np.ndarray):
        if out.dtype != _np.uint64 or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out: a writable C-contiguous uint64 array is needed")
        if out.shape[0] < need:
            raise ValueError(f"out: room for {need} ids is needed, got {out.shape[0]}")
        return out, out.ctypes.data
    if isinstance(out, array.array) and out.typecode in ("Q", "L") and out.itemsize == 8:
        if len(out) < need:
            raise ValueError(f"out: room for {need} ids is needed, got {len(out)}")
        return out, out.buffer_info()[0]
    raise TypeError("out: a numpy uint64 array or array.array('Q') is needed")


def rank(ids, rtts, healthy, self_id, out=None):
    """netelect_rank: every candidate's id in election order (the failover
    order, the winner first).  Returns a list, or, with `out` (a writable
    uint64 numpy array or array('Q') of at least len(ids)), fills it in
    place and returns the count."""
    pi, pr, ph, n, keep = _args(ids, rtts, healthy, self_id)
    buf, addr = _out(out, n)
    m = fast.netelect_rank(pi, pr, ph, n, self_id, addr)
    del keep
    return m if out is not None else buf[:m].tolist()


def topk(ids, rtts, healthy, self_id, k, out=None):
    """netelect_topk: the first min(k, candidates) ids of the election order;
    a list, or the count written to `out` (room for k ids)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    pi, pr, ph, n, keep = _args(ids, rtts, healthy, self_id)
    buf, addr = _out(out, k)
    m = fast.netelect_topk(pi, pr, ph, n, self_id, k, addr)
    del keep
    return m if out is not None else buf[:m].tolist()
