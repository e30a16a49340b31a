# SPDX-License-Identifier: MIT
"""NetelectError and its subclasses: one per error code a caller may act on."""
import errno

from ._lib import lib

EVERSION = -4097
ECORRUPT = -4098
ESTALE = -4099
ENOCHAN = -4100


def strerror(code):
    """netelect_strerror(code): the library's own description of a returned code."""
    return lib.netelect_strerror(int(code)).decode("utf-8", "replace")


class NetelectError(Exception):
    """An error returned by libnetelect.

    `code` is the C return value (a negative errno or a NETELECT_E* code),
    `message` is netelect_strerror(code), `where` names the call.
    """

    def __init__(self, code, where=""):
        self.code = int(code)
        self.message = strerror(code)
        self.where = where
        super().__init__(f"{where}: {self.message} ({self.code})" if where
                         else f"{self.message} ({self.code})")


class NoChannel(NetelectError, LookupError):
    """NETELECT_ENOCHAN: no such channel in the published view."""


class Stale(NetelectError):
    """NETELECT_ESTALE: the agent has been gone longer than the fail-static window."""


class VersionMismatch(NetelectError):
    """NETELECT_EVERSION: the segment has an incompatible ABI major."""


class Corrupt(NetelectError):
    """NETELECT_ECORRUPT: the segment failed validation."""


class NoSegment(NetelectError, FileNotFoundError):
    """-ENOENT: no segment of that name (or, for View.node, no such node)."""


class NotTrusted(NetelectError, PermissionError):
    """-EACCES/-EPERM: the segment's owner or mode was refused (see shm/README.md, Trust)."""


class AgentGone(NetelectError):
    """-EOWNERDEAD from View.wait: the agent exited, was killed, hangs or cannot publish."""


class Timeout(NetelectError, TimeoutError):
    """-ETIMEDOUT from View.wait."""


class TryAgain(NetelectError):
    """-EAGAIN: the segment is still initialising, or every retry was lapped by the writer."""


_BY_CODE = {
    ENOCHAN: NoChannel, ESTALE: Stale, EVERSION: VersionMismatch, ECORRUPT: Corrupt,
    -errno.ENOENT: NoSegment, -errno.EACCES: NotTrusted, -errno.EPERM: NotTrusted,
    -errno.EOWNERDEAD: AgentGone, -errno.ETIMEDOUT: Timeout, -errno.EAGAIN: TryAgain,
}


def error(code, where=""):
    """The NetelectError subclass instance for a negative return value."""
    return _BY_CODE.get(int(code), NetelectError)(code, where)
