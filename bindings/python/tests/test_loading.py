# SPDX-License-Identifier: MIT
"""Loading the library, and the ctypes mirrors of the C structs."""
import ctypes
import os
import subprocess
import sys

import pytest

import netelect
from netelect import _lib

PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_missing_library_is_a_clear_importerror():
    env = dict(os.environ, NETELECT_LIB="/nonexistent/libnetelect.so")
    r = subprocess.run([sys.executable, "-c", "import netelect"], cwd=PKG, env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "NETELECT_LIB" in r.stderr, r.stderr


def test_loaded_library_and_struct_layouts():
    # the library's version (meson's) is the package's (tests/version)
    assert netelect.version() == netelect.__version__ and netelect.isa() in ("scalar", "avx2", "avx512")
    # sizeof/offsetof of include/netelect/view.h on x86_64 and aarch64 (LP64)
    assert ctypes.sizeof(_lib.Status_) == 168
    assert _lib.Status_.generation.offset == 8
    assert _lib.Status_.writer_alive.offset == 160
    assert ctypes.sizeof(_lib.NodeInfo_) == 48
    assert ctypes.sizeof(_lib.ViewOpts_) == 24
    assert ctypes.sizeof(_lib.Result_) == 16


def test_strerror_and_isa():
    assert "channel" in netelect.strerror(netelect.ENOCHAN)
    with pytest.raises(ValueError, match="unknown ISA"):
        netelect.set_isa("sse9")
