#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Captures raw Serf RPC replies to build the fuzz seed corpus.

Usage: capture.py RPC_PORT OUTDIR [AUTHKEY]

The requests are encoded by hand (only fixmaps of short strings and small
ints are needed) so that the capture does not depend on a Python msgpack
module, which Debian 12 does not install by default.  Every reply is saved
exactly as the agent sent it: the client under test must parse these bytes.
"""
import os
import socket
import sys
import time


def enc(v):
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        assert 0 <= v < 128
        return bytes([v])
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        assert len(b) < 256
        return bytes([0xD9, len(b)]) + b
    if isinstance(v, dict):
        assert len(v) < 16
        out = bytes([0x80 | len(v)])
        for k, x in v.items():
            out += enc(k) + enc(x)
        return out
    raise TypeError(v)


def drain(s, quiet=0.4, limit=5.0):
    """Reads until the agent has been quiet for `quiet` seconds."""
    data = b""
    end = time.time() + limit
    s.settimeout(quiet)
    while time.time() < end:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        if not b:
            break
        data += b
    return data


def main():
    port, outdir = int(sys.argv[1]), sys.argv[2]
    key = sys.argv[3] if len(sys.argv) > 3 else None
    os.makedirs(outdir, exist_ok=True)
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    seq = 0

    def req(name, cmd, body=None, save=True):
        nonlocal seq
        msg = enc({"Command": cmd, "Seq": seq})
        if body is not None:
            msg += enc(body)
        seq += 1
        s.sendall(msg)
        data = drain(s)
        if save:
            with open(os.path.join(outdir, name), "wb") as f:
                f.write(data)
        return data

    req("handshake", "handshake", {"Version": 1})
    if key is not None:
        req("auth", "auth", {"AuthKey": key})
    req("stats", "stats")
    req("members", "members")
    req("members-filtered", "members-filtered",
        {"Tags": {"nid": "[0-9]+"}, "Status": "alive"})
    for n in ("n1", "n2", "n3", "nobody"):
        req("coord-" + n, "get-coordinate", {"Node": n})
    req("stream-ack", "stream",
        {"Type": "member-join,member-leave,member-failed,member-update,member-reap"})
    # Events: whatever the caller triggers within the next seconds.
    data = drain(s, quiet=8.0, limit=12.0)
    with open(os.path.join(outdir, "stream-events"), "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
