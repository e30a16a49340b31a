/* SPDX-License-Identifier: MIT */
/*
 * SPIN model of delta publishing (shm/README.md, "Delta publish";
 * netelect__writer_update in shm/writer.c).  A slot's payload is N node
 * words plus its generation word.  Version 1 is a full write into slot 0;
 * every later version g is a delta that changes node g % N to the value g.
 * The writer reuses the oldest non-current slot s, which holds version gs
 * (or nothing: 0), inside the slot's seqcount (begin / end):
 *   - gs = 0: the current slot is copied into s word by word;
 *   - else s catches up: for every version in (gs, current] the node that
 *     version changed is copied from the current slot (the change log);
 * then the new change is applied, the slot sealed, and `cur` (generation
 * and slot in one word, like h_current) names it.  The writer can be
 * killed at any step.
 *
 * The reader is the library's: load cur, seqcount begin (odd: retry), the
 * slot's generation must be cur's (else it was reused: retry), read every
 * node word, seqcount retry; an accepted read must be exactly version g:
 * node j holds the last version <= g that changed it (1 if none).
 *
 * Checked (spin -a; gcc -DSAFETY pan.c; ./pan), K = 2 and 3:
 *   - no reader accepts a read that is not exactly one version (assert);
 *   - `cur` never names a slot whose seq is odd (monitor);
 *   - the reader ends (invalid end states).
 * Negative controls, each must fail:
 *   -DNOVALIDATE   the reader does not re-check seq;
 *   -DEARLYSTORE   the writer's change is stored before the slot's seq
 *                  goes odd (the ordering bug: what a missing release fence
 *                  after the odd store allows on a weak machine);
 *   -DNOCATCHUP    a reused slot does not catch up from the log.
 *
 * The model is sequentially consistent; the C11 orderings that make the
 * real code behave so are the seqcount steps in shm/layout.h.
 */
#ifndef K
#define K 2
#endif
#ifndef G
#define G 5     /* versions: 1 full, 2..G deltas (K=3: two copies, two catch-ups) */
#endif
#define N 3     /* node words per slot */
#define MAXTRY 3
#define R 2     /* reads per reader */

byte seq[K];
byte gw[K];          /* the slot's generation word */
byte w[K * N];       /* node words */
byte cur = 1 * K + 0;  /* generation 1 in slot 0 */
bool killed = false;

active proctype writer() {
    byte ver[K];     /* private: the version each slot holds, 0 none */
    byte g = 2, s, cs, t, j, gg;
    /* Version 1: a full write into slot 0 before anyone can read. */
    d_step {
        seq[0] = 2; gw[0] = 1;
        j = 0;
        do :: j < N -> w[j] = 1; j++ :: else -> break od;
        ver[0] = 1; j = 0
    };
    {
        do
        :: g <= G ->
            cs = cur % K;
            /* the oldest slot that is not current */
            s = (cs + 1) % K;
            t = 0;
            do
            :: t < K ->
                if
                :: t != cs && ver[t] < ver[s] -> s = t
                :: else -> skip
                fi;
                t++
            :: else -> break
            od;
#ifdef EARLYSTORE
            w[s * N + g % N] = g;
#endif
            seq[s] = seq[s] + 1;            /* write_seqcount_begin: odd */
            gw[s] = g;
            if
            :: ver[s] == 0 ->               /* nothing to catch up from: copy */
                j = 0;
                do :: j < N -> w[s * N + j] = w[cs * N + j]; j++ :: else -> break od
            :: else ->
#ifndef NOCATCHUP
                gg = ver[s] + 1;            /* catch up: the log of (gs, current] */
                do
                :: gg < g -> w[s * N + gg % N] = w[cs * N + gg % N]; gg++
                :: else -> break
                od
#else
                skip
#endif
            fi;
            w[s * N + g % N] = g;           /* the change itself */
            seq[s] = seq[s] + 1;            /* write_seqcount_end: even */
            cur = g * K + s;                /* publish */
            ver[s] = g;
            g++
        :: else -> break
        od
    } unless { killed }
}

/* SIGKILL at any moment (or never). */
active proctype killer() {
    killed = true
}

active proctype reader() {
    byte c, s, g, q0, q1, a[N], j, want, tries = 0, done = 0;
    do
    :: done >= R -> break
    :: else ->
        c = cur;
        s = c % K;
        g = c / K;
        q0 = seq[s];                        /* read_seqcount_begin */
        if
        :: q0 % 2 == 1 -> tries++           /* being written */
        :: else ->
            if
            :: gw[s] != g -> tries++        /* reused since cur was read */
            :: else ->
                j = 0;
                do :: j < N -> a[j] = w[s * N + j]; j++ :: else -> break od;
                q1 = seq[s];                /* read_seqcount_retry */
#ifdef NOVALIDATE
                if
                :: true ->
#else
                if
                :: q0 == q1 ->
#endif
                    j = 0;
                    do
                    :: j < N ->
                        /* the last version <= g that changed node j */
                        want = (g + N - j) % N;     /* versions since */
                        if
                        :: want + 2 > g -> want = 1 /* none after the full one */
                        :: else -> want = g - want
                        fi;
                        assert(a[j] == want);
                        j++
                    :: else -> break
                    od;
                    tries = MAXTRY
                :: else -> tries++          /* lapped */
                fi
            fi
        fi;
        if
        :: tries >= MAXTRY -> tries = 0; done++
        :: else -> skip
        fi
    od
}

active proctype monitor() {
    assert(seq[cur % K] % 2 == 0)
}
