# SPDX-License-Identifier: MIT
"""netelect: Python bindings (ctypes) over libnetelect.

    import netelect
    r = netelect.elect([1, 2, 3], [0, 50_000, 20_000], [1, 1, 1], self_id=1)
    with netelect.View() as v:          # /dev/shm/netelect
        print(v.elect("default").leader)

See bindings/python/README.md.
"""
from ._core import RTT_MAX_MEASURED, RTT_UNKNOWN, Outcome, Result, elect, rank, topk
from ._lib import PATH as library_path
from ._lib import lib as _clib
from .errors import (AgentGone, Corrupt, NetelectError, NoChannel, NoSegment, NotTrusted, Stale,
                     Timeout, TryAgain, VersionMismatch, strerror)
from .view import AgentState, Channel, NodeInfo, RttSource, View, ViewStatus

ENOCHAN, ESTALE, EVERSION, ECORRUPT = -4100, -4099, -4097, -4098


def version():
    """The loaded library's version, "MAJOR.MINOR.PATCH"."""
    return _clib.netelect_version().decode()


def isa():
    """The kernel family in use: "scalar", "avx2" or "avx512"."""
    return _clib.netelect_isa().decode()


def set_isa(name):
    """Restricts the kernels to `name` or lower (as NETELECT_ISA does)."""
    rc = _clib.netelect_set_isa(name.encode())
    if rc < 0:
        raise ValueError(f"unknown ISA level {name!r} (scalar, avx2, avx512)")


__version__ = "0.1.0"
__all__ = ["elect", "rank", "topk", "Outcome", "Result", "RTT_UNKNOWN", "RTT_MAX_MEASURED",
           "View", "ViewStatus", "AgentState", "NodeInfo", "Channel", "RttSource", "NetelectError",
           "NoChannel", "Stale", "VersionMismatch", "Corrupt", "NoSegment", "NotTrusted",
           "AgentGone", "Timeout", "TryAgain", "strerror", "version", "isa", "set_isa",
           "library_path"]
