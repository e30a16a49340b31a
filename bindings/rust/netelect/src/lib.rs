// SPDX-License-Identifier: MIT
//! Deterministic nearest-RTT leader election over libnetelect.
//!
//! The rule: among the healthy replicas, the lowest RTT from the deciding
//! node wins (the deciding node is at RTT 0 from itself), ties go to the
//! lower 64-bit id, and a peer whose RTT was never measured
//! ([`RTT_UNKNOWN`]) ranks after every measured one.
//!
//! - Over your own data: [`elect`], [`rank`], [`topk`] on `&[Replica]`
//!   (copied into per-thread column buffers), or the same verbs on
//!   [`Columns`] / [`ReplicaSet`], which hand the C library their arrays
//!   without a copy.
//! - The seed's shape (a replica set plus RTT and health lookups):
//!   [`replication_election::elect`].
//! - Over the agent's shared-memory view: [`View`].
#![warn(missing_debug_implementations)]

use std::cell::RefCell;
use std::ffi::CStr;
use std::time::Duration;

pub use netelect_sys as sys;

mod error;
pub mod replication_election;
mod view;

pub use error::{Error, ErrorKind};
pub use view::{Channel, ChannelName, Node, RttSource, State, Status, View, ViewOptions};

/// RTT meaning "never measured": ranks after every measured RTT.
pub const RTT_UNKNOWN: u64 = sys::NETELECT_RTT_UNKNOWN;
/// The largest RTT that counts as measured.
pub const RTT_MAX_MEASURED: u64 = sys::NETELECT_RTT_MAX_MEASURED;

/// A node id (the seed's `NodeId`).
pub type NodeId = u64;

/// The outcome of an election, with the seed's variant names
/// (`replication_election::ElectionOutcome` is this type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The caller is the leader.
    SelfWins,
    /// A peer is the leader.
    PeerWins(NodeId),
    /// No healthy replica: a partition isolated the caller, or all are down.
    NoEligibleReplica,
}

impl Outcome {
    /// The peer that won; `None` on `SelfWins` (the caller knows its own id)
    /// and on `NoEligibleReplica`, as the seed's `winner()`.
    #[inline]
    pub fn winner(self) -> Option<NodeId> {
        match self {
            Outcome::PeerWins(id) => Some(id),
            _ => None,
        }
    }

    /// True iff the caller won.
    #[inline]
    pub fn is_self(self) -> bool {
        matches!(self, Outcome::SelfWins)
    }

    /// The leader's id whoever it is (`self_id` on `SelfWins`).
    #[inline]
    pub fn leader(self, self_id: NodeId) -> Option<NodeId> {
        match self {
            Outcome::SelfWins => Some(self_id),
            Outcome::PeerWins(id) => Some(id),
            Outcome::NoEligibleReplica => None,
        }
    }

    #[inline]
    pub(crate) fn from_c(r: sys::netelect_result) -> Outcome {
        match r.outcome {
            sys::NETELECT_SELF_WINS => Outcome::SelfWins,
            sys::NETELECT_PEER_WINS => Outcome::PeerWins(r.winner),
            _ => Outcome::NoEligibleReplica,
        }
    }
}

/// Converts a measured duration to netelect's RTT in ns: `None` is
/// [`RTT_UNKNOWN`]; a duration of 2^64-1 ns or more saturates at
/// [`RTT_MAX_MEASURED`] so that it still ranks before "unknown".
#[inline]
pub fn rtt_ns(rtt: Option<Duration>) -> u64 {
    match rtt {
        None => RTT_UNKNOWN,
        Some(d) => {
            let ns = d.as_nanos();
            if ns >= RTT_MAX_MEASURED as u128 {
                RTT_MAX_MEASURED
            } else {
                ns as u64
            }
        }
    }
}

/// One replica: its id, its RTT from the caller in ns (or [`RTT_UNKNOWN`])
/// and whether it is healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Replica {
    pub id: NodeId,
    pub rtt_ns: u64,
    pub healthy: bool,
}

impl Replica {
    pub fn new(id: NodeId, rtt: Option<Duration>, healthy: bool) -> Replica {
        Replica { id, rtt_ns: rtt_ns(rtt), healthy }
    }
}

/// Borrowed parallel arrays, the C library's own layout: elections over
/// them pass the slices' addresses, with no copy.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    ids: &'a [u64],
    rtt_ns: &'a [u64],
    healthy: &'a [u8],
}

fn einval() -> Error {
    Error::from_code(-libc::EINVAL)
}

impl<'a> Columns<'a> {
    /// Fails with `InvalidInput` unless the three slices have one length.
    #[inline]
    pub fn new(ids: &'a [u64], rtt_ns: &'a [u64], healthy: &'a [bool]) -> Result<Self, Error> {
        // SAFETY: bool has the size and alignment of u8 and only the values 0 and 1.
        let h = unsafe { std::slice::from_raw_parts(healthy.as_ptr() as *const u8, healthy.len()) };
        Columns::from_u8(ids, rtt_ns, h)
    }

    /// As [`Columns::new`] with C-style health flags (non-zero: healthy).
    #[inline]
    pub fn from_u8(ids: &'a [u64], rtt_ns: &'a [u64], healthy: &'a [u8]) -> Result<Self, Error> {
        if ids.len() != rtt_ns.len() || ids.len() != healthy.len() {
            return Err(einval());
        }
        Ok(Columns { ids, rtt_ns, healthy })
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The C library's first four arguments: the three arrays and their
    /// one length (equal by construction), as every call here passes them.
    #[inline]
    fn raw(&self) -> (*const u64, *const u64, *const u8, usize) {
        (self.ids.as_ptr(), self.rtt_ns.as_ptr(), self.healthy.as_ptr(), self.ids.len())
    }

    /// `netelect_elect` on the slices themselves.
    #[inline]
    pub fn elect(&self, self_id: NodeId) -> Outcome {
        let (ids, rtt, healthy, n) = self.raw();
        // SAFETY: three valid arrays of n elements.
        Outcome::from_c(unsafe { sys::netelect_elect(ids, rtt, healthy, n, self_id) })
    }

    /// The failover order (every candidate, the winner first).
    pub fn rank(&self, self_id: NodeId) -> Vec<NodeId> {
        let mut out = Vec::with_capacity(self.len());
        // SAFETY: out has room for len() ids and the C call writes at most that many.
        unsafe {
            let m = self.rank_raw(self_id, out.as_mut_ptr());
            out.set_len(m);
        }
        out
    }

    /// The failover order into `out`, which needs room for `len()` ids
    /// (`InvalidInput` otherwise); returns the number of candidates.
    #[inline]
    pub fn rank_into(&self, self_id: NodeId, out: &mut [NodeId]) -> Result<usize, Error> {
        if out.len() < self.len() {
            return Err(einval());
        }
        // SAFETY: checked above.
        Ok(unsafe { self.rank_raw(self_id, out.as_mut_ptr()) })
    }

    unsafe fn rank_raw(&self, self_id: NodeId, out: *mut u64) -> usize {
        let (ids, rtt, healthy, n) = self.raw();
        sys::netelect_rank(ids, rtt, healthy, n, self_id, out)
    }

    /// The first `k` ids of the failover order.
    pub fn topk(&self, self_id: NodeId, k: usize) -> Vec<NodeId> {
        let k = k.min(self.len());
        let mut out = Vec::with_capacity(k);
        // SAFETY: out has room for k ids, the most the C call writes.
        unsafe {
            let m = self.topk_raw(self_id, k, out.as_mut_ptr());
            out.set_len(m);
        }
        out
    }

    /// The first `out.len()` ids of the failover order into `out`; returns how many.
    #[inline]
    pub fn topk_into(&self, self_id: NodeId, out: &mut [NodeId]) -> usize {
        // SAFETY: out has room for k = out.len() ids.
        unsafe { self.topk_raw(self_id, out.len(), out.as_mut_ptr()) }
    }

    unsafe fn topk_raw(&self, self_id: NodeId, k: usize, out: *mut u64) -> usize {
        let (ids, rtt, healthy, n) = self.raw();
        sys::netelect_topk(ids, rtt, healthy, n, self_id, k, out)
    }
}

/// An owned replica set in columns: build it once, elect on it many times
/// with no copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaSet {
    ids: Vec<u64>,
    rtt_ns: Vec<u64>,
    healthy: Vec<u8>,
}

impl ReplicaSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        ReplicaSet { ids: Vec::with_capacity(n), rtt_ns: Vec::with_capacity(n), healthy: Vec::with_capacity(n) }
    }

    pub fn push(&mut self, r: Replica) {
        self.ids.push(r.id);
        self.rtt_ns.push(r.rtt_ns);
        self.healthy.push(r.healthy as u8);
    }

    pub fn clear(&mut self) {
        self.ids.clear();
        self.rtt_ns.clear();
        self.healthy.clear();
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<Replica> {
        Some(Replica { id: *self.ids.get(i)?, rtt_ns: self.rtt_ns[i], healthy: self.healthy[i] != 0 })
    }

    /// Changes entry `i`'s RTT (ns) and health in place.
    pub fn set(&mut self, i: usize, rtt_ns: u64, healthy: bool) {
        self.rtt_ns[i] = rtt_ns;
        self.healthy[i] = healthy as u8;
    }

    #[inline]
    pub fn columns(&self) -> Columns<'_> {
        Columns { ids: &self.ids, rtt_ns: &self.rtt_ns, healthy: &self.healthy }
    }

    #[inline]
    pub fn elect(&self, self_id: NodeId) -> Outcome {
        self.columns().elect(self_id)
    }

    pub fn rank(&self, self_id: NodeId) -> Vec<NodeId> {
        self.columns().rank(self_id)
    }

    pub fn topk(&self, self_id: NodeId, k: usize) -> Vec<NodeId> {
        self.columns().topk(self_id, k)
    }
}

impl FromIterator<Replica> for ReplicaSet {
    fn from_iter<I: IntoIterator<Item = Replica>>(iter: I) -> Self {
        let mut s = ReplicaSet::new();
        s.extend(iter);
        s
    }
}

impl Extend<Replica> for ReplicaSet {
    fn extend<I: IntoIterator<Item = Replica>>(&mut self, iter: I) {
        for r in iter {
            self.push(r);
        }
    }
}

impl From<&[Replica]> for ReplicaSet {
    fn from(r: &[Replica]) -> Self {
        r.iter().copied().collect()
    }
}

thread_local! {
    /// Column buffers for the `&[Replica]` forms: kept per thread so that a
    /// steady caller allocates nothing.
    static SCRATCH: RefCell<ReplicaSet> = RefCell::new(ReplicaSet::new());
}

/// Copies `replicas` into this thread's column buffers and runs `f` on them.
fn with_columns<T>(replicas: &[Replica], f: impl FnOnce(Columns<'_>) -> T) -> T {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let s = &mut *s;
        // Same-length resizes write nothing; one fused pass fills the columns.
        let n = replicas.len();
        s.ids.resize(n, 0);
        s.rtt_ns.resize(n, 0);
        s.healthy.resize(n, 0);
        for ((r, id), (rtt, h)) in
            replicas.iter().zip(s.ids.iter_mut()).zip(s.rtt_ns.iter_mut().zip(s.healthy.iter_mut()))
        {
            *id = r.id;
            *rtt = r.rtt_ns;
            *h = r.healthy as u8;
        }
        f(s.columns())
    })
}

/// Elects the leader among `replicas` as seen from `self_id`.  The C
/// library takes parallel arrays, so the slice is first copied into
/// per-thread columns (about 1 ns per replica; [`Columns`] and
/// [`ReplicaSet`] avoid the copy).
#[inline]
pub fn elect(replicas: &[Replica], self_id: NodeId) -> Outcome {
    with_columns(replicas, |c| c.elect(self_id))
}

/// The failover order of `replicas` (every candidate, the winner first).
pub fn rank(replicas: &[Replica], self_id: NodeId) -> Vec<NodeId> {
    with_columns(replicas, |c| c.rank(self_id))
}

/// The first `k` ids of the failover order.
pub fn topk(replicas: &[Replica], self_id: NodeId, k: usize) -> Vec<NodeId> {
    with_columns(replicas, |c| c.topk(self_id, k))
}

fn static_str(p: *const libc::c_char) -> &'static str {
    // SAFETY: the library returns static NUL-terminated ASCII strings.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("?")
}

/// The kernel family in use: "scalar", "avx2" or "avx512".
pub fn isa() -> &'static str {
    // SAFETY: no arguments; never NULL.
    static_str(unsafe { sys::netelect_isa() })
}

/// Restricts the kernels to `name` or lower (as `NETELECT_ISA` does).
pub fn set_isa(name: &str) -> Result<(), Error> {
    let c = std::ffi::CString::new(name).map_err(|_| einval())?;
    // SAFETY: a valid C string.
    error::check(unsafe { sys::netelect_set_isa(c.as_ptr()) })
}

/// The loaded library's "MAJOR.MINOR.PATCH".
pub fn version() -> &'static str {
    // SAFETY: no arguments; never NULL.
    static_str(unsafe { sys::netelect_version() })
}
