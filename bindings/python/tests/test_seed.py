# SPDX-License-Identifier: MIT
"""The seed's 18 test cases (net-mesh 0.23.0 replication_election.rs, ported
case for case as tests/core/test_seed.c does): each election runs through
netelect.elect with lists, with numpy arrays and with array.array, through
the C library's own callback form, and through the Python reference; all must
agree with the seed's expected outcome."""
import array

import pytest

import netelect
from netelect import Outcome
from ref import c_elect_cb, ref_elect

try:
    import numpy as np
except ImportError:
    np = None

MS = 1_000_000


def seed_elect(replica_set, self_id, rtt_table, alive):
    """The seed's elect(replica_set, self_id, rtt_table(...), alive_set(...))."""
    table = dict(rtt_table)
    rtt_of = lambda n: table[n] * MS if n in table else None  # noqa: E731
    health_of = lambda n: n in alive  # noqa: E731
    ids = list(replica_set)
    rtts = [rtt_of(n) for n in ids]  # None: unknown
    healthy = [health_of(n) for n in ids]
    r = netelect.elect(ids, rtts, healthy, self_id)
    want = (int(r.outcome), r.winner)
    rtts_u = [netelect.RTT_UNKNOWN if v is None else v for v in rtts]
    forms = {"callback form (C)": c_elect_cb(ids, self_id, rtt_of, health_of),
             "reference": ref_elect(ids, rtts_u, healthy, self_id),
             "array.array": tuple(netelect.elect(array.array("Q", ids), array.array("Q", rtts_u),
                                                 array.array("B", healthy), self_id))}
    if np is not None:
        forms["numpy"] = tuple(netelect.elect(np.array(ids, dtype=np.uint64),
                                              np.array(rtts_u, dtype=np.uint64),
                                              np.array(healthy, dtype=bool), self_id))
    for name, got in forms.items():
        assert tuple(got) == want, f"{name} {got} != netelect.elect {want}"
    return r


def test_single_eligible_replica_wins():
    assert seed_elect([0x1], 0x1, [], {0x1}).outcome == Outcome.SELF_WINS


def test_empty_replica_set_yields_no_eligible():
    assert seed_elect([], 0x1, [], {0x1}) == (Outcome.NO_ELIGIBLE, 0)


def test_self_unhealthy_falls_to_peer():
    assert seed_elect([0x1, 0x2], 0x1, [(0x2, 50)], {0x2}) == (Outcome.PEER_WINS, 0x2)


def test_all_peers_unhealthy_falls_to_self():
    r = seed_elect([0x1, 0x2, 0x3], 0x1, [(0x2, 50), (0x3, 75)], {0x1})
    assert r == (Outcome.SELF_WINS, 0x1)


def test_all_unhealthy_yields_no_eligible():
    assert seed_elect([0x1, 0x2, 0x3], 0x1, [], set()).outcome == Outcome.NO_ELIGIBLE


def test_self_wins_against_distant_peers():
    r = seed_elect([0x1, 0x2, 0x3], 0x1, [(0x2, 10), (0x3, 5)], {0x1, 0x2, 0x3})
    assert r.is_self


def test_lowest_rtt_peer_wins_when_self_excluded():
    r = seed_elect([0x10, 0x20, 0x30], 0xFF, [(0x10, 30), (0x20, 10), (0x30, 20)],
                   {0x10, 0x20, 0x30})
    assert r == (Outcome.PEER_WINS, 0x20)


def test_tied_rtt_breaks_by_lex_node_id():
    r = seed_elect([0xCC, 0xAA, 0xBB], 0xFF, [(0xAA, 25), (0xBB, 25), (0xCC, 25)],
                   {0xAA, 0xBB, 0xCC})
    assert r == (Outcome.PEER_WINS, 0xAA)


def test_rtt_takes_priority_over_node_id():
    r = seed_elect([0xAA, 0xBB], 0xFF, [(0xAA, 50), (0xBB, 10)], {0xAA, 0xBB})
    assert r.peer == 0xBB


def test_peer_without_rtt_measurement_ranks_at_worst_rtt():
    r = seed_elect([0xAA, 0xBB, 0xCC], 0xFF, [(0xAA, 30), (0xBB, 50)], {0xAA, 0xBB, 0xCC})
    assert r == (Outcome.PEER_WINS, 0xAA)
    # the unmeasured peer stays a valid backup: last in the failover order
    assert netelect.rank([0xAA, 0xBB, 0xCC], [30 * MS, 50 * MS, None], [1, 1, 1], 0xFF) == \
        [0xAA, 0xBB, 0xCC]


def test_only_unmeasured_peers_still_elect_a_leader():
    assert seed_elect([0xAA, 0xBB], 0xFF, [], {0xAA, 0xBB}) == (Outcome.PEER_WINS, 0xAA)


def test_determinism_across_call_orders():
    for perm in ([1, 2, 3], [3, 2, 1], [2, 1, 3], [1, 3, 2], [3, 1, 2], [2, 3, 1]):
        r = seed_elect(perm, 0xFF, [(1, 20), (2, 20), (3, 20)], {1, 2, 3})
        assert r == (Outcome.PEER_WINS, 0x1), f"perm {perm}"


def test_self_at_zero_rtt_beats_peer_at_zero_rtt_via_lex_node_id():
    assert seed_elect([0x5, 0x10], 0x5, [(0x10, 0)], {0x5, 0x10}).is_self
    assert seed_elect([0x5, 0x10], 0x10, [(0x5, 0)], {0x5, 0x10}) == (Outcome.PEER_WINS, 0x5)


def test_winner_helper_strips_self_id():
    assert netelect.Result(Outcome.SELF_WINS, 0x1).peer is None
    assert netelect.Result(Outcome.PEER_WINS, 0xAA).peer == 0xAA
    assert netelect.Result(Outcome.NO_ELIGIBLE, 0).peer is None


def test_is_self_helper():
    assert netelect.Result(Outcome.SELF_WINS, 1).is_self
    assert not netelect.Result(Outcome.PEER_WINS, 0xAA).is_self
    assert not netelect.Result(Outcome.NO_ELIGIBLE, 0).is_self


def test_cross_partition_independent_evaluation():
    g = [0xA, 0xB, 0xC, 0xD]
    assert seed_elect(g, 0xA, [(0xB, 5)], {0xA, 0xB}) == (Outcome.SELF_WINS, 0xA)
    assert seed_elect(g, 0xD, [(0xC, 5)], {0xC, 0xD}) == (Outcome.SELF_WINS, 0xD)


def test_central_peer_at_zero_rtt_wins_across_all_voters():
    s = [0x10, 0x20, 0x30]
    winners = [seed_elect(s, me, [(0x10, 0), (0x20, 10), (0x30, 20)], set(s)).leader for me in s]
    assert winners == [0x10, 0x10, 0x10]


def test_symmetric_failover_yields_dual_self_winners_as_expected():
    s = [0x05, 0x10, 0x20, 0x30]
    survivors = [0x10, 0x20, 0x30]
    rtts = [(n, 5) for n in s]
    assert [me for me in survivors if seed_elect(s, me, rtts, set(survivors)).is_self] == survivors


def test_there_are_eighteen_seed_cases():
    n = len([k for k in globals() if k.startswith("test_") and k != "test_there_are_eighteen_seed_cases"])
    assert n == 18
