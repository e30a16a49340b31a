#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Builds the fuzz seed corpus (corpus/) from real Serf replies (captured/).

capture.py recorded each reply with the Seq the capture used; the client
numbers its requests handshake 0, stats 1, stream 2, members 3, then
get-coordinate from 4 (self first, then members in snapshot order), so the
headers are renumbered to form sessions the client accepts.

Seed format (fuzz_serf.c): byte 0 picks the chunk size the bytes are fed
in; then segments separated by SEP, with a timer tick between segments (the
tick is what sends the get-coordinate requests).  0xc1 never occurs in
valid msgpack, so SEP cannot collide with a reply.
"""
import os
import re
import sys

SEP = b"\xc1SRF"
here = os.path.dirname(os.path.abspath(__file__))
cap = os.path.join(here, "captured")
out = os.path.join(here, "corpus")


def read(name):
    with open(os.path.join(cap, name), "rb") as f:
        return f.read()


def reseq(data, seq):
    """Sets the Seq of every reply header in `data` (fixint seqs only)."""
    assert seq < 128
    n = [0]

    def sub(m):
        n[0] += 1
        return m.group(1) + bytes([seq])

    res = re.sub(rb"(\x82\xa5Error\xa0\xa3Seq)[\x00-\x7f]", sub, data)
    assert n[0] >= 1, "no header found"
    return res


def main():
    os.makedirs(out, exist_ok=True)
    setup = (read("stats") + reseq(read("stream-ack"), 2) + reseq(read("members"), 3))
    events = reseq(read("stream-events"), 2)
    coords = read("coord-n1") + read("coord-n2") + read("coord-n3")
    seeds = {
        # whole chunks: the normal path end to end
        "session-whole": b"\xff" + setup + events + SEP + coords,
        # 1-byte chunks: every boundary
        "session-bytes": b"\x00" + setup + SEP + coords + events,
        "session-7": b"\x06" + setup + SEP + coords,
        "filtered": b"\xff" + read("stats") + reseq(read("stream-ack"), 2)
        + reseq(read("members-filtered"), 3),
        "coord-unknown": b"\xff" + setup + SEP + read("coord-n1")
        + reseq(read("coord-nobody"), 5),
        "raw-members": b"\xff" + read("members"),
        "raw-stats": b"\xff" + read("stats"),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), out), file=sys.stderr)


if __name__ == "__main__":
    main()
