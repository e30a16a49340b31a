/* SPDX-License-Identifier: MIT */
/*
 * SPIN model of the netelect publish protocol (shm/README.md): K slots per
 * segment, each with a seqcount; the writer fills a non-current slot
 * (seq odd, payload word by word, seq even) and then names it in `cur`;
 * readers load cur, check seq even, read the payload, re-check seq.  The
 * writer can be killed at any step; a new writer builds a second segment,
 * renames it over the path and marks the old one superseded; readers that
 * see that reattach.  A reader also gives up after MAXTRY laps, as the
 * library does.
 *
 * Readers are independent of each other, so one reader is enough; K=2 is
 * the tightest reuse (the slot a reader is on is rewritten next).  Larger
 * instances: spin -DK=3 -DG=4 -a publish.pml (minutes, GBs).
 *
 * Checked (spin -a; gcc -DSAFETY pan.c; ./pan):
 *   - no reader accepts a torn payload (assert in reader);
 *   - `cur` never names a slot whose seq is odd (assert in monitor);
 *   - every reader ends, having read from the new segment at least once
 *     after the restart (invalid end states / assert in reader).
 * -DNOVALIDATE drops the re-check: SPIN must then find a torn read (the
 * model's negative control, run by tests/shm/spin.sh).
 *
 * The model is sequentially consistent; the orderings that make the real
 * code behave so are the C11 release/acquire fences documented in
 * shm/layout.h (and checked by the TSAN test).
 */
#ifndef K
#define K 2
#endif
#ifndef G
#define G 3       /* generations published by the first writer */
#endif
#define NSEG 2
#define MAXTRY 3
#define R 2       /* validated reads per reader on each segment */

byte seq[NSEG * K];
byte w0[NSEG * K];   /* payload word 0: the generation that wrote it */
byte w1[NSEG * K];   /* payload word 1 */
byte cur[NSEG];
byte state[NSEG];    /* 0 init, 1 live, 2 superseded */
byte path = 0;       /* the segment the name points at */
bool killed = false;
bool restarted = false;

inline publish(sg, g, s) {
    s = (cur[sg] + 1) % K;              /* the oldest slot: never the current one */
    seq[sg * K + s] = seq[sg * K + s] + 1;  /* odd: being written */
    w0[sg * K + s] = g;
    w1[sg * K + s] = g;
    seq[sg * K + s] = seq[sg * K + s] + 1;  /* even: sealed */
    cur[sg] = s                              /* publish */
}

active proctype writer() {
    byte g = 1, s;
    {
        do
        :: g <= G -> publish(0, g, s); g++
        :: else -> break
        od
    } unless { killed }
}

/* SIGKILL at any moment (or never, until the writer is done). */
active proctype killer() {
    killed = true
}

/* The next agent: waits for the old one's death, builds segment 1
 * privately, renames it in, marks the old file, then publishes. */
active proctype restarter() {
    byte s;
    killed;
    seq[K + 0] = 2; w0[K + 0] = G + 1; w1[K + 0] = G + 1; cur[1] = 0;
    state[1] = 1;
    path = 1;          /* rename(): the name now points at segment 1 */
    state[0] = 2;      /* superseded */
    restarted = true;
    publish(1, G + 2, s);
    publish(1, G + 3, s)
}

active proctype reader() {
    byte sg = path, c, q0, q1, a, b, tries = 0, done0 = 0, done1 = 0;
    do
    :: done1 >= R -> break
    :: else ->
        if
        :: state[sg] == 2 -> sg = path     /* reattach */
        :: else -> skip
        fi;
        c = cur[sg];
        q0 = seq[sg * K + c];
        if
        :: q0 % 2 == 1 -> tries++         /* being written: retry */
        :: else ->
            a = w0[sg * K + c];
            b = w1[sg * K + c];
            q1 = seq[sg * K + c];
#ifdef NOVALIDATE
            if
            :: true ->
#else
            if
            :: q0 == q1 ->
#endif
                assert(a == b);           /* no torn read accepted */
                tries = MAXTRY            /* done with this read */
            :: else -> tries++            /* lapped: retry */
            fi
        fi;
        if
        :: tries >= MAXTRY ->             /* accepted, or -EAGAIN: next read */
            tries = 0;
            if
            :: sg == 1 -> done1++
            :: else -> done0++
            fi
        :: else -> skip
        fi;
        /* Nothing new to read on segment 0 once it is done: wait for the
         * restart to mark it (the real reader polls, bounded by staleness). */
        if
        :: (sg == 0 && done0 >= R) -> state[0] == 2
        :: else -> skip
        fi
    od;
    assert(sg == 1)
}

/* One assert, placed by SPIN at every point of every interleaving. */
active proctype monitor() {
    assert(seq[0 * K + cur[0]] % 2 == 0 && seq[1 * K + cur[1]] % 2 == 0)
}
