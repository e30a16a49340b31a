// SPDX-License-Identifier: MIT
//! The seed's own signature (net-mesh's
//! `adapter::net::redex::replication_election`): a replica set plus RTT and
//! health lookups.  A net-mesh user swaps it in by importing
//! `netelect::replication_election::{elect, ElectionOutcome}` instead.
//!
//! It runs the C library's callback form `netelect_elect_cb`, which streams
//! over the set without allocating and asks each lookup the seed's way:
//! health first, RTT only for a healthy peer other than `self_id`.  One
//! difference at the edge: a measured RTT of 2^64-1 ns or more (584 years)
//! still ranks before an unmeasured peer here; the seed made it tie.
use std::any::Any;
use std::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::{rtt_ns, sys};
pub use crate::{NodeId, Outcome as ElectionOutcome};

struct Lookups<'a, R, H> {
    rtt_to: &'a R,
    health_of: &'a H,
    /// A panic in a lookup, carried across the C frames and resumed after.
    panic: Option<Box<dyn Any + Send>>,
}

unsafe extern "C" fn rtt_tramp<R, H>(ctx: *mut c_void, node: u64) -> u64
where
    R: Fn(NodeId) -> Option<Duration>,
{
    // SAFETY: ctx is the &mut Lookups that elect() passed, alive for the call.
    let l = &mut *(ctx as *mut Lookups<'_, R, H>);
    if l.panic.is_some() {
        return sys::NETELECT_RTT_UNKNOWN;
    }
    match panic::catch_unwind(AssertUnwindSafe(|| (l.rtt_to)(node))) {
        Ok(rtt) => rtt_ns(rtt),
        Err(p) => {
            l.panic = Some(p);
            sys::NETELECT_RTT_UNKNOWN
        }
    }
}

unsafe extern "C" fn health_tramp<R, H>(ctx: *mut c_void, node: u64) -> libc::c_int
where
    H: Fn(NodeId) -> bool,
{
    // SAFETY: as rtt_tramp.
    let l = &mut *(ctx as *mut Lookups<'_, R, H>);
    if l.panic.is_some() {
        return 0;
    }
    match panic::catch_unwind(AssertUnwindSafe(|| (l.health_of)(node))) {
        Ok(h) => h as libc::c_int,
        Err(p) => {
            l.panic = Some(p);
            0
        }
    }
}

/// The seed's `elect`: `replica_set` with `self_id` at RTT 0, `rtt_to`
/// giving a peer's measured RTT (`None`: never measured, ranks last) and
/// `health_of` whether a node is a candidate.
pub fn elect<R, H>(replica_set: &[NodeId], self_id: NodeId, rtt_to: R, health_of: H) -> ElectionOutcome
where
    R: Fn(NodeId) -> Option<Duration>,
    H: Fn(NodeId) -> bool,
{
    let mut l = Lookups { rtt_to: &rtt_to, health_of: &health_of, panic: None };
    // SAFETY: the set is valid for its length; the trampolines get back the
    // Lookups they were instantiated for, which outlives the call.
    let r = unsafe {
        sys::netelect_elect_cb(
            replica_set.as_ptr(),
            replica_set.len(),
            self_id,
            Some(rtt_tramp::<R, H>),
            Some(health_tramp::<R, H>),
            &mut l as *mut Lookups<'_, R, H> as *mut c_void,
        )
    };
    if let Some(p) = l.panic {
        panic::resume_unwind(p);
    }
    ElectionOutcome::from_c(r)
}
