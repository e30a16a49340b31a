#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# meson test 'python' (suite 'bindings'): the Python bindings' pytest suite
# against this build's libnetelect.so and agent binaries.
#   run-tests.sh BUILD_DIR LIBNETELECT_SO
# Debian's own /usr/bin/python3 on purpose: python3-pytest and python3-numpy
# are installed for it (a pyenv python3 may come first on PATH).
# (NETELECT_PYTHON overrides it.)  Exit 77 (skip) when python3-pytest is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${NETELECT_PYTHON:-/usr/bin/python3}
if ! "$py" -c 'import pytest' 2>/dev/null; then
    echo "SKIP: python3-pytest is not installed (apt-get install python3-pytest)"
    exit 77
fi
export NETELECT_BUILD=$1 NETELECT_LIB=$2 PYTHONDONTWRITEBYTECODE=1
cd "$here"
exec "$py" -m pytest -q -p no:cacheprovider tests
