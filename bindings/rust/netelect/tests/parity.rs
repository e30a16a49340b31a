// SPDX-License-Identifier: MIT
//! Random differential tests: every safe form (`elect`/`rank`/`topk` on
//! `&[Replica]`, `Columns`, `ReplicaSet`, the seed's callback form) against
//! the C library called directly through `netelect_sys` on the same arrays,
//! and against a pure-Rust port of the rule.  Inputs have duplicate ids,
//! RTT ties, unknown RTTs, `RTT_MAX_MEASURED` and RTT 0, self present or
//! absent.  `NETELECT_RS_SEED=N` replays a run.
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use netelect::{replication_election, sys, Columns, ErrorKind, Outcome, Replica, ReplicaSet, RTT_MAX_MEASURED, RTT_UNKNOWN};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    let s = std::env::var("NETELECT_RS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1234);
    eprintln!("NETELECT_RS_SEED={s}");
    s | 1
}

/// The rule, written independently of the library.
fn reference(ids: &[u64], rtts: &[u64], healthy: &[bool], self_id: u64) -> Vec<u64> {
    let mut c: Vec<(u64, u64)> = (0..ids.len())
        .filter(|&i| healthy[i])
        .map(|i| (if ids[i] == self_id { 0 } else { rtts[i] }, ids[i]))
        .collect();
    c.sort_unstable();
    c.into_iter().map(|(_, id)| id).collect()
}

fn ref_outcome(order: &[u64], self_id: u64) -> Outcome {
    match order.first() {
        None => Outcome::NoEligibleReplica,
        Some(&w) if w == self_id => Outcome::SelfWins,
        Some(&w) => Outcome::PeerWins(w),
    }
}

struct Case {
    ids: Vec<u64>,
    rtts: Vec<u64>,
    healthy: Vec<bool>,
    self_id: u64,
}

fn gen(r: &mut Rng) -> Case {
    let n = match r.below(10) {
        0 => 0,
        1..=6 => r.below(40) as usize + 1,
        7 | 8 => r.below(600) as usize + 1,
        _ => r.below(12_000) as usize + 1,
    };
    let small_ids = r.below(2) == 0; // a small pool: duplicates
    let small_rtts = r.below(2) == 0; // a small pool: ties
    let mut ids = Vec::with_capacity(n);
    let mut rtts = Vec::with_capacity(n);
    let mut healthy = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(if small_ids { r.below(n as u64 / 2 + 2) } else { r.next() });
        rtts.push(match r.below(20) {
            0 => RTT_UNKNOWN,
            1 => RTT_MAX_MEASURED,
            2 => 0,
            _ if small_rtts => r.below(4) * 1000,
            _ => r.below(200_000_000) + 100_000,
        });
        healthy.push(r.below(10) != 0);
    }
    let self_id = if n > 0 && r.below(2) == 0 { ids[r.below(n as u64) as usize] } else { r.next() };
    Case { ids, rtts, healthy, self_id }
}

fn h8(h: &[bool]) -> Vec<u8> {
    h.iter().map(|&b| b as u8).collect()
}

/// The C library's own answers, called directly on the arrays.
fn c_elect(c: &Case) -> Outcome {
    let h = h8(&c.healthy);
    let r = unsafe { sys::netelect_elect(c.ids.as_ptr(), c.rtts.as_ptr(), h.as_ptr(), c.ids.len(), c.self_id) };
    match r.outcome {
        sys::NETELECT_SELF_WINS => {
            assert_eq!(r.winner, c.self_id);
            Outcome::SelfWins
        }
        sys::NETELECT_PEER_WINS => Outcome::PeerWins(r.winner),
        sys::NETELECT_NO_ELIGIBLE => Outcome::NoEligibleReplica,
        o => panic!("C returned outcome {o}"),
    }
}

fn c_rank(c: &Case) -> Vec<u64> {
    let h = h8(&c.healthy);
    let mut out = vec![0u64; c.ids.len()];
    let m = unsafe { sys::netelect_rank(c.ids.as_ptr(), c.rtts.as_ptr(), h.as_ptr(), c.ids.len(), c.self_id, out.as_mut_ptr()) };
    out.truncate(m);
    out
}

fn c_topk(c: &Case, k: usize) -> Vec<u64> {
    let h = h8(&c.healthy);
    let mut out = vec![0u64; k];
    let m = unsafe {
        sys::netelect_topk(c.ids.as_ptr(), c.rtts.as_ptr(), h.as_ptr(), c.ids.len(), c.self_id, k, out.as_mut_ptr())
    };
    out.truncate(m);
    out
}

fn replicas(c: &Case) -> Vec<Replica> {
    (0..c.ids.len()).map(|i| Replica { id: c.ids[i], rtt_ns: c.rtts[i], healthy: c.healthy[i] }).collect()
}

const ROUNDS: usize = 600;

#[test]
fn elect_matches_c_and_reference() {
    let mut r = Rng(seed());
    for round in 0..ROUNDS {
        let c = gen(&mut r);
        let want = ref_outcome(&reference(&c.ids, &c.rtts, &c.healthy, c.self_id), c.self_id);
        let ctx = format!("round {round}, n={}", c.ids.len());
        assert_eq!(c_elect(&c), want, "C vs reference, {ctx}");
        let reps = replicas(&c);
        assert_eq!(netelect::elect(&reps, c.self_id), want, "elect(&[Replica]), {ctx}");
        let cols = Columns::new(&c.ids, &c.rtts, &c.healthy).unwrap();
        assert_eq!(cols.elect(c.self_id), want, "Columns::elect, {ctx}");
        let h = h8(&c.healthy);
        assert_eq!(Columns::from_u8(&c.ids, &c.rtts, &h).unwrap().elect(c.self_id), want, "Columns::from_u8, {ctx}");
        assert_eq!(ReplicaSet::from(&reps[..]).elect(c.self_id), want, "ReplicaSet::elect, {ctx}");
    }
}

#[test]
fn rank_and_topk_match_c_and_reference() {
    let mut r = Rng(seed() ^ 0xabcdef);
    for round in 0..ROUNDS / 2 {
        let c = gen(&mut r);
        let want = reference(&c.ids, &c.rtts, &c.healthy, c.self_id);
        let ctx = format!("round {round}, n={}", c.ids.len());
        assert_eq!(c_rank(&c), want, "C rank vs reference, {ctx}");
        let reps = replicas(&c);
        let cols = Columns::new(&c.ids, &c.rtts, &c.healthy).unwrap();
        let set = ReplicaSet::from(&reps[..]);
        assert_eq!(netelect::rank(&reps, c.self_id), want, "rank(&[Replica]), {ctx}");
        assert_eq!(cols.rank(c.self_id), want, "Columns::rank, {ctx}");
        assert_eq!(set.rank(c.self_id), want, "ReplicaSet::rank, {ctx}");
        let mut buf = vec![7u64; c.ids.len() + 3];
        let m = cols.rank_into(c.self_id, &mut buf).unwrap();
        assert_eq!(&buf[..m], &want[..], "Columns::rank_into, {ctx}");
        assert!(buf[m..].iter().all(|&x| x == 7), "rank_into wrote past its count, {ctx}");
        for k in [0, 1, 2, 3, 8, 33, c.ids.len(), c.ids.len() + 5] {
            let wk = &want[..k.min(want.len())];
            assert_eq!(c_topk(&c, k), wk, "C topk k={k}, {ctx}");
            assert_eq!(netelect::topk(&reps, c.self_id, k), wk, "topk(&[Replica]) k={k}, {ctx}");
            assert_eq!(cols.topk(c.self_id, k), wk, "Columns::topk k={k}, {ctx}");
            assert_eq!(set.topk(c.self_id, k), wk, "ReplicaSet::topk k={k}, {ctx}");
            let mut out = vec![9u64; k];
            let m = cols.topk_into(c.self_id, &mut out);
            assert_eq!(&out[..m], wk, "Columns::topk_into k={k}, {ctx}");
        }
    }
}

#[test]
fn seed_form_matches_c_and_reference() {
    let mut r = Rng(seed() ^ 0x5eed);
    for round in 0..ROUNDS {
        let c = gen(&mut r);
        // Lookups answer per id: the first entry of an id decides.
        let mut table: HashMap<u64, (Option<Duration>, bool)> = HashMap::new();
        for i in 0..c.ids.len() {
            let rtt = (c.rtts[i] != RTT_UNKNOWN).then(|| Duration::from_nanos(c.rtts[i]));
            table.entry(c.ids[i]).or_insert((rtt, c.healthy[i]));
        }
        let rtts: Vec<u64> = c.ids.iter().map(|id| netelect::rtt_ns(table[id].0)).collect();
        let healthy: Vec<bool> = c.ids.iter().map(|id| table[id].1).collect();
        let want = ref_outcome(&reference(&c.ids, &rtts, &healthy, c.self_id), c.self_id);
        let asked = RefCell::new(Vec::new());
        let got = replication_election::elect(
            &c.ids,
            c.self_id,
            |id| {
                asked.borrow_mut().push(('r', id));
                table[&id].0
            },
            |id| {
                asked.borrow_mut().push(('h', id));
                table[&id].1
            },
        );
        assert_eq!(got, want, "seed form, round {round}, n={}", c.ids.len());
        let c2 = Case { ids: c.ids.clone(), rtts, healthy, self_id: c.self_id };
        assert_eq!(c_elect(&c2), want, "C on the looked-up arrays, round {round}");
        // The seed's call pattern: health for every entry, RTT only for a
        // healthy entry that is not self.
        let mut expect = Vec::new();
        for &id in &c.ids {
            expect.push(('h', id));
            if table[&id].1 && id != c.self_id {
                expect.push(('r', id));
            }
        }
        assert_eq!(*asked.borrow(), expect, "lookup calls, round {round}");
    }
}

#[test]
fn seed_form_resumes_a_lookup_panic() {
    let res = std::panic::catch_unwind(|| {
        replication_election::elect(&[1, 2, 3], 9, |id| if id == 2 { panic!("rtt lookup failed") } else { None }, |_| true)
    });
    let p = res.expect_err("the lookup's panic must reach the caller");
    assert_eq!(p.downcast_ref::<&str>(), Some(&"rtt lookup failed"));
}

#[test]
fn durations_saturate_and_none_is_unknown() {
    assert_eq!(netelect::rtt_ns(None), RTT_UNKNOWN);
    assert_eq!(netelect::rtt_ns(Some(Duration::ZERO)), 0);
    assert_eq!(netelect::rtt_ns(Some(Duration::from_micros(250))), 250_000);
    assert_eq!(netelect::rtt_ns(Some(Duration::MAX)), RTT_MAX_MEASURED);
    assert_eq!(netelect::rtt_ns(Some(Duration::from_nanos(u64::MAX))), RTT_MAX_MEASURED);
    // A huge measured RTT still beats an unmeasured peer.
    let reps = [Replica::new(5, None, true), Replica::new(6, Some(Duration::MAX), true)];
    assert_eq!(netelect::elect(&reps, 1), Outcome::PeerWins(6));
}

#[test]
fn outcome_helpers_and_bad_input() {
    assert_eq!(Outcome::SelfWins.leader(4), Some(4));
    assert_eq!(Outcome::PeerWins(7).leader(4), Some(7));
    assert_eq!(Outcome::NoEligibleReplica.leader(4), None);
    let e = Columns::new(&[1, 2], &[3], &[true, true]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.code(), -libc_einval());
    let e = Columns::new(&[1, 2], &[3, 4], &[true]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let cols = Columns::new(&[1, 2], &[3, 4], &[true, true]).unwrap();
    assert_eq!(cols.rank_into(0, &mut [0; 1]).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(netelect::elect(&[], 1), Outcome::NoEligibleReplica);
    assert!(netelect::rank(&[], 1).is_empty() && netelect::topk(&[], 1, 3).is_empty());
    assert!(["scalar", "avx2", "avx512"].contains(&netelect::isa()));
    assert_eq!(netelect::set_isa("no-such-isa").unwrap_err().kind(), ErrorKind::InvalidInput);
    // The library's version (meson's) is the crate's (tests/version).
    assert_eq!(netelect::version(), env!("CARGO_PKG_VERSION"));
}

fn libc_einval() -> i32 {
    22
}
