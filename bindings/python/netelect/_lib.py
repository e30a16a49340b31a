# SPDX-License-Identifier: MIT
"""Loads libnetelect with ctypes and declares every function this package calls.

The library is found, in order, through:
  1. NETELECT_LIB, a path to libnetelect.so (e.g. a build directory's);
  2. ctypes.util.find_library("netelect") (ldconfig's cache: an installed library);
  3. `pkg-config --variable=libdir netelect` (an installed netelect.pc);
  4. the soname "libnetelect.so.0" (LD_LIBRARY_PATH, the loader's default paths).

Two handles of the same library are used: `fast` (ctypes.PyDLL) keeps the GIL
for the calls that never block (elect, rank, topk, generation: releasing and
re-taking the GIL would cost more than the call), and `lib` (ctypes.CDLL)
releases it for everything that may block or call back (open, wait, foreach).
"""
import ctypes
import ctypes.util
import os
import subprocess

c_u64 = ctypes.c_uint64
c_u8p = ctypes.c_void_p  # arrays are passed as addresses (zero-copy)
c_u64p = ctypes.c_void_p


class Result_(ctypes.Structure):
    _fields_ = [("outcome", ctypes.c_int), ("winner", c_u64)]


class NodeInfo_(ctypes.Structure):
    _fields_ = [("id", c_u64), ("rtt_ns", c_u64), ("rtt_raw_ns", c_u64), ("rtt_err_ns", c_u64),
                ("last_heard_ns", c_u64), ("healthy", ctypes.c_uint8), ("source", ctypes.c_uint8)]


class Status_(ctypes.Structure):
    """struct netelect_view_status; `size` is set to sizeof before each call
    (view.h, "Growing structs"), new fields are appended."""
    _fields_ = [("size", ctypes.c_uint32), ("reserved0", ctypes.c_uint32),
                ("generation", c_u64), ("self_id", c_u64), ("publish_ns", c_u64),
                ("heartbeat_seq", c_u64), ("heartbeat_age_ns", c_u64), ("forced_reuse", c_u64),
                ("n_nodes", ctypes.c_uint32), ("n_chans", ctypes.c_uint32),
                ("agent_pid", ctypes.c_int32), ("state", ctypes.c_uint32),
                ("incarnation", ctypes.c_uint8 * 16),
                ("abi_major", ctypes.c_uint16), ("abi_minor", ctypes.c_uint16),
                ("slot_count", ctypes.c_uint32), ("max_nodes", ctypes.c_uint32),
                ("max_chans", ctypes.c_uint32), ("max_members", ctypes.c_uint32),
                ("registered", ctypes.c_uint32), ("stale", ctypes.c_uint32),
                ("heartbeat_period_ns", c_u64), ("retries", c_u64), ("reattaches", c_u64),
                ("pinned_waits", c_u64), ("heartbeat_mono_ns", c_u64),
                ("writer_alive", ctypes.c_uint32), ("clock_shared", ctypes.c_uint32)]


class ViewOpts_(ctypes.Structure):
    """struct netelect_view_opts, `size` set as for Status_."""
    _fields_ = [("size", ctypes.c_uint32), ("reserved0", ctypes.c_uint32),
                ("fail_static_ns", c_u64), ("expect_uid", ctypes.c_uint32),
                ("expect_uid_set", ctypes.c_uint32)]


NODE_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(NodeInfo_))
CHAN_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                           ctypes.POINTER(c_u64), ctypes.c_size_t)


def _pkg_config_path():
    """libdir/libnetelect.so.0 from `pkg-config netelect` (a library installed
    under a prefix the loader does not search, e.g. /usr/local/lib/x86_64-linux-gnu
    before ldconfig ran), or None."""
    try:
        r = subprocess.run(["pkg-config", "--variable=libdir", "netelect"],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    p = os.path.join(r.stdout.strip(), "libnetelect.so.0")
    return p if r.returncode == 0 and os.path.exists(p) else None


def _path():
    p = os.environ.get("NETELECT_LIB")
    if p:
        return p
    return ctypes.util.find_library("netelect") or _pkg_config_path() or "libnetelect.so.0"


def _load():
    path = _path()
    try:
        lib = ctypes.CDLL(path)
        fast = ctypes.PyDLL(path)
    except OSError as e:
        raise ImportError(f"netelect: cannot load libnetelect ({path}): {e}; set NETELECT_LIB "
                          f"to the path of libnetelect.so") from None
    vp, sz, i = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
    for h in (lib, fast):
        h.netelect_elect.argtypes = [c_u64p, c_u64p, c_u8p, sz, c_u64]
        h.netelect_elect.restype = Result_
        h.netelect_rank.argtypes = [c_u64p, c_u64p, c_u8p, sz, c_u64, c_u64p]
        h.netelect_rank.restype = sz
        h.netelect_topk.argtypes = [c_u64p, c_u64p, c_u8p, sz, c_u64, sz, c_u64p]
        h.netelect_topk.restype = sz
        h.netelect_view_elect.argtypes = [vp, ctypes.c_char_p, c_u64, ctypes.POINTER(Result_)]
        h.netelect_view_elect.restype = i
        h.netelect_view_elect_gen.argtypes = [vp, ctypes.c_char_p, c_u64, ctypes.POINTER(Result_),
                                              ctypes.POINTER(c_u64)]
        h.netelect_view_elect_gen.restype = i
        h.netelect_view_rank.argtypes = [vp, ctypes.c_char_p, c_u64, c_u64p, sz,
                                         ctypes.POINTER(sz)]
        h.netelect_view_rank.restype = i
        h.netelect_view_generation.argtypes = [vp]
        h.netelect_view_generation.restype = c_u64
        h.netelect_view_self.argtypes = [vp]
        h.netelect_view_self.restype = c_u64
    lib.netelect_strerror.argtypes = [i]
    lib.netelect_strerror.restype = ctypes.c_char_p
    lib.netelect_version.argtypes = []
    lib.netelect_version.restype = ctypes.c_char_p
    lib.netelect_isa.argtypes = []
    lib.netelect_isa.restype = ctypes.c_char_p
    lib.netelect_set_isa.argtypes = [ctypes.c_char_p]
    lib.netelect_set_isa.restype = i
    lib.netelect_view_open_opts.argtypes = [ctypes.c_char_p, ctypes.POINTER(ViewOpts_),
                                            ctypes.POINTER(vp)]
    lib.netelect_view_open_opts.restype = i
    lib.netelect_view_close.argtypes = [vp]
    lib.netelect_view_close.restype = None
    lib.netelect_view_wait.argtypes = [vp, c_u64, c_u64]
    lib.netelect_view_wait.restype = i
    lib.netelect_view_fd.argtypes = [vp]
    lib.netelect_view_fd.restype = i
    lib.netelect_view_fd_rearm.argtypes = [vp]
    lib.netelect_view_fd_rearm.restype = i
    lib.netelect_view_status.argtypes = [vp, ctypes.POINTER(Status_)]
    lib.netelect_view_status.restype = i
    lib.netelect_view_node.argtypes = [vp, c_u64, ctypes.POINTER(NodeInfo_)]
    lib.netelect_view_node.restype = i
    lib.netelect_view_foreach_node.argtypes = [vp, NODE_CB, vp]
    lib.netelect_view_foreach_node.restype = i
    lib.netelect_view_foreach_channel.argtypes = [vp, CHAN_CB, vp]
    lib.netelect_view_foreach_channel.restype = i
    return path, lib, fast


PATH, lib, fast = _load()
