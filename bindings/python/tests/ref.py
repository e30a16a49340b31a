# SPDX-License-Identifier: MIT
"""The election rule in plain Python, written from the rule (not from the C):
candidates are the healthy entries; the caller's own entries are at RTT 0;
an unknown RTT (2**64-1) ranks after every measured one; order by (rtt, id),
ties to the lower id; duplicate ids stay separate entries."""
import ctypes

from netelect import _lib

U64_MAX = (1 << 64) - 1


def ref_rank(ids, rtts, healthy, self_id):
    cands = [(0 if i == self_id else r, i) for i, r, h in zip(ids, rtts, healthy) if h]
    return [i for _, i in sorted(cands)]


def ref_elect(ids, rtts, healthy, self_id):
    """(outcome, winner) as the C library reports it: 0/1/2 and self/peer/0."""
    order = ref_rank(ids, rtts, healthy, self_id)
    if not order:
        return 0, 0
    return (1, self_id) if order[0] == self_id else (2, order[0])


# The C library's seed-shaped callback form, called directly through ctypes:
# an independent path into the library that bypasses the binding's array
# marshalling (the thing these tests check).
RTT_FN = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64)
HEALTH_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64)
_cb = ctypes.CDLL(_lib.PATH).netelect_elect_cb
_cb.argtypes = [ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t, ctypes.c_uint64, RTT_FN,
                HEALTH_FN, ctypes.c_void_p]
_cb.restype = _lib.Result_


def c_elect_cb(replica_set, self_id, rtt_of, health_of):
    """netelect_elect_cb(replica_set, self_id, rtt_of(node) -> ns or None, health_of(node))."""
    arr = (ctypes.c_uint64 * max(1, len(replica_set)))(*replica_set)
    r = _cb(arr, len(replica_set), self_id,
            RTT_FN(lambda _c, n: U64_MAX if rtt_of(n) is None else rtt_of(n)),
            HEALTH_FN(lambda _c, n: 1 if health_of(n) else 0), None)
    return r.outcome, r.winner
