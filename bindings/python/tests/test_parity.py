# SPDX-License-Identifier: MIT
"""Random differential tests: netelect.elect/rank/topk (lists, array.array,
numpy arrays zero-copy and converted) against the pure-Python reference of
the rule and against the C library's callback form, which does not go
through the binding's marshalling.  The seed is printed on failure
(NETELECT_PY_SEED=N reproduces a run)."""
import array
import os
import random

import pytest

import netelect
from ref import U64_MAX, c_elect_cb, ref_elect, ref_rank

try:
    import numpy as np
except ImportError:
    np = None

SEED = int(os.environ.get("NETELECT_PY_SEED", random.SystemRandom().randrange(1 << 32)))


def cases(count):
    rng = random.Random(SEED)
    for _ in range(count):
        n = rng.choice([0, 1, 2, 3, 5, 8, 17, 33, 64, 100, 257])
        pool = rng.choice([4, 50, 1 << 16, 1 << 64])  # small pools give duplicates
        ids = [rng.randrange(pool) for _ in range(n)]
        style = rng.random()
        rtts = []
        for _ in range(n):
            x = rng.random()
            if x < 0.15:
                rtts.append(U64_MAX)
            elif x < 0.2:
                rtts.append(U64_MAX - 1)
            elif style < 0.5:
                rtts.append(rng.randrange(8))  # many ties
            else:
                rtts.append(rng.randrange(1 << 64 - 1))
        healthy = [rng.random() < 0.7 for _ in range(n)]
        if ids and rng.random() < 0.6:
            self_id = rng.choice(ids)
        else:
            self_id = rng.randrange(pool)
        yield ids, rtts, healthy, self_id


def forms(ids, rtts, healthy):
    yield "lists", ids, rtts, healthy
    yield "array.array", array.array("Q", ids), array.array("Q", rtts), array.array("B", healthy)
    if np is not None:
        yield ("numpy zero-copy", np.array(ids, dtype=np.uint64), np.array(rtts, dtype=np.uint64),
               np.array(healthy, dtype=np.uint8))
        # strided / other dtypes: converted, same answer
        big = np.zeros(2 * len(ids), dtype=np.uint64)
        big[::2] = ids
        yield ("numpy strided+bool", big[::2], np.array(rtts, dtype=np.uint64),
               np.array(healthy, dtype=bool))


def test_elect_matches_reference_and_c():
    for ids, rtts, healthy, self_id in cases(400):
        want = ref_elect(ids, rtts, healthy, self_id)
        rtt_of = dict(zip(ids, rtts))
        hmap = {}
        for i, h in zip(ids, healthy):
            hmap.setdefault(i, h)
        # the callback form asks per id: only comparable without duplicate ids
        if len(set(ids)) == len(ids):
            assert c_elect_cb(ids, self_id, lambda x: rtt_of[x], lambda x: hmap[x]) == want, SEED
        for name, i, r, h in forms(ids, rtts, healthy):
            got = netelect.elect(i, r, h, self_id)
            assert (int(got.outcome), got.winner) == want, \
                f"seed {SEED} {name}: n={len(ids)} self={self_id:#x} got {got} want {want}"


def test_rank_and_topk_match_reference():
    for ids, rtts, healthy, self_id in cases(300):
        want = ref_rank(ids, rtts, healthy, self_id)
        for name, i, r, h in forms(ids, rtts, healthy):
            assert netelect.rank(i, r, h, self_id) == want, f"seed {SEED} {name} rank"
            for k in (0, 1, 3, 32, 33, len(ids) + 1):
                assert netelect.topk(i, r, h, self_id, k) == want[:k], f"seed {SEED} {name} k={k}"


@pytest.mark.skipif(np is None, reason="python3-numpy is not installed")
def test_rank_into_numpy_out_is_in_place():
    ids, rtts, healthy, self_id = [5, 3, 9, 1], [10, 10, U64_MAX, 2], [1, 1, 1, 0], 9
    out = np.full(8, 77, dtype=np.uint64)
    assert netelect.rank(ids, rtts, healthy, self_id, out=out) == 3
    assert out.tolist() == [9, 3, 5, 77, 77, 77, 77, 77]
    assert netelect.topk(ids, rtts, healthy, self_id, 2, out=out) == 2
    assert out[:2].tolist() == [9, 3]
    with pytest.raises(ValueError):
        netelect.rank(ids, rtts, healthy, self_id, out=np.zeros(3, dtype=np.uint64))


def test_none_rtt_means_unknown():
    assert netelect.rank([1, 2, 3], [None, 5, None], [1, 1, 1], 0) == [2, 1, 3]


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="one length"):
        netelect.elect([1, 2], [1], [1, 1], 0)
    with pytest.raises(ValueError, match="0..2"):
        netelect.elect([-1], [1], [1], 0)
    with pytest.raises(ValueError, match="0..2"):
        netelect.elect([1], [1 << 64], [1], 0)
    with pytest.raises(TypeError):
        netelect.elect(["a"], [1], [1], 0)
    with pytest.raises(ValueError, match="self_id"):
        netelect.elect([1], [1], [1], -1)
    with pytest.raises(ValueError, match="k must"):
        netelect.topk([1], [1], [1], 0, -1)
    if np is not None:
        with pytest.raises(ValueError, match="negative"):
            netelect.elect(np.array([-3], dtype=np.int64), [1], [1], 0)
        with pytest.raises(TypeError, match="dtype"):
            netelect.elect(np.array([1.5]), [1], [1], 0)


@pytest.mark.skipif(np is None, reason="python3-numpy is not installed")
def test_numpy_uint64_is_zero_copy():
    """The C library reads the caller's own memory: a change to the array
    between two calls is seen without any conversion step."""
    ids = np.array([4, 2], dtype=np.uint64)
    rtts = np.array([1, 1], dtype=np.uint64)
    healthy = np.array([1, 1], dtype=np.uint8)
    p, keep, n = netelect._core._u64(ids, "ids")
    assert p == ids.ctypes.data and n == 2
    p, keep, n = netelect._core._u8(healthy)
    assert p == healthy.ctypes.data
    ro = np.frombuffer(np.array([9, 8], dtype=np.uint64).tobytes(), dtype=np.uint64)
    assert not ro.flags.writeable  # read-only: zero-copy the slower way
    assert netelect._core._u64(ro, "ids")[0] == ro.ctypes.data
    assert netelect.elect(ids, rtts, healthy, 0).winner == 2
    healthy[1] = 0
    assert netelect.elect(ids, rtts, healthy, 0).winner == 4
