# SPDX-License-Identifier: MIT
"""Finds the library and the agent binaries under test.

NETELECT_LIB: libnetelect.so to load (meson sets it to the build's).
NETELECT_BUILD: the build directory holding agent/netelectd and agent/netelect
(meson sets it; without it the View tests are skipped).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the package under test, not an installed one
sys.path.insert(0, HERE)
