// SPDX-License-Identifier: MIT
//! Raw FFI declarations for libnetelect: `include/netelect.h` and
//! `include/netelect/view.h`, written by hand (see README.md for why not
//! bindgen).  `tests/sync.rs` fails when a public function, a constant or
//! the size or layout of a public struct here differs from the headers.
//!
//! Everything here is `unsafe` and mirrors C exactly; the safe API is the
//! `netelect` crate.
#![allow(non_camel_case_types)]
#![no_std]

use core::ffi::c_void;
use libc::{c_char, c_int, c_uint, size_t, timespec};

pub const NETELECT_VERSION_MAJOR: u32 = 0;
pub const NETELECT_VERSION_MINOR: u32 = 1;
pub const NETELECT_VERSION_PATCH: u32 = 0;
pub const NETELECT_VERSION_NUMBER: u32 =
    (NETELECT_VERSION_MAJOR << 16) | (NETELECT_VERSION_MINOR << 8) | NETELECT_VERSION_PATCH;

pub const NETELECT_RTT_UNKNOWN: u64 = u64::MAX;
pub const NETELECT_RTT_MAX_MEASURED: u64 = u64::MAX - 1;

pub const NETELECT_EVERSION: c_int = -4097;
pub const NETELECT_ECORRUPT: c_int = -4098;
pub const NETELECT_ESTALE: c_int = -4099;
pub const NETELECT_ENOCHAN: c_int = -4100;

/// `enum netelect_outcome`.  A C enum is an `int`-sized integer here: a
/// Rust enum would make any other value the library might return
/// undefined behaviour.
pub type netelect_outcome = c_uint;
pub const NETELECT_NO_ELIGIBLE: netelect_outcome = 0;
pub const NETELECT_SELF_WINS: netelect_outcome = 1;
pub const NETELECT_PEER_WINS: netelect_outcome = 2;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct netelect_result {
    pub outcome: netelect_outcome,
    pub winner: u64,
}

pub type netelect_rtt_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, node: u64) -> u64>;
pub type netelect_health_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, node: u64) -> c_int>;

/// `enum netelect_rtt_source`.
pub type netelect_rtt_source = c_uint;
pub const NETELECT_SRC_NONE: netelect_rtt_source = 0;
pub const NETELECT_SRC_PROBE: netelect_rtt_source = 1;
pub const NETELECT_SRC_SERF: netelect_rtt_source = 2;
pub const NETELECT_SRC_OPERATOR: netelect_rtt_source = 3;

/// `enum netelect_agent_state` (`netelect_view_status.state`).
pub type netelect_agent_state = c_uint;
pub const NETELECT_AGENT_INIT: netelect_agent_state = 0;
pub const NETELECT_AGENT_LIVE: netelect_agent_state = 1;
pub const NETELECT_AGENT_ABANDONED: netelect_agent_state = 2;
pub const NETELECT_AGENT_MOVED: netelect_agent_state = 3;
pub const NETELECT_AGENT_STALLED: netelect_agent_state = 4;

/// Opaque handle (`struct netelect_view`).
#[repr(C)]
pub struct netelect_view {
    _private: [u8; 0],
}

/// Opaque snapshot (`struct netelect_snap`).
#[repr(C)]
pub struct netelect_snap {
    _private: [u8; 0],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct netelect_node_info {
    pub id: u64,
    pub rtt_ns: u64,
    pub rtt_raw_ns: u64,
    pub rtt_err_ns: u64,
    pub last_heard_ns: u64,
    pub healthy: u8,
    pub source: u8,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct netelect_view_status {
    /// Set to `size_of::<netelect_view_status>()` before the call (view.h,
    /// "Growing structs").
    pub size: u32,
    pub reserved0: u32,
    pub generation: u64,
    pub self_id: u64,
    pub publish_ns: u64,
    pub heartbeat_seq: u64,
    pub heartbeat_age_ns: u64,
    pub forced_reuse: u64,
    pub n_nodes: u32,
    pub n_chans: u32,
    pub agent_pid: i32,
    pub state: u32,
    pub incarnation: [u8; 16],
    pub abi_major: u16,
    pub abi_minor: u16,
    pub slot_count: u32,
    pub max_nodes: u32,
    pub max_chans: u32,
    pub max_members: u32,
    pub registered: u32,
    pub stale: u32,
    pub heartbeat_period_ns: u64,
    pub retries: u64,
    pub reattaches: u64,
    pub pinned_waits: u64,
    pub heartbeat_mono_ns: u64,
    pub writer_alive: u32,
    pub clock_shared: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct netelect_view_opts {
    /// Set to `size_of::<netelect_view_opts>()` (view.h, "Growing structs").
    pub size: u32,
    pub reserved0: u32,
    pub fail_static_ns: u64,
    pub expect_uid: u32,
    pub expect_uid_set: u32,
}

pub type netelect_node_cb =
    Option<unsafe extern "C" fn(ctx: *mut c_void, node: *const netelect_node_info) -> c_int>;
pub type netelect_channel_cb = Option<
    unsafe extern "C" fn(ctx: *mut c_void, name: *const c_char, members: *const u64, n: size_t) -> c_int,
>;
pub type netelect_read_fn =
    Option<unsafe extern "C" fn(s: *const netelect_snap, ctx: *mut c_void) -> c_int>;

extern "C" {
    // netelect.h
    pub fn netelect_elect(ids: *const u64, rtt_ns: *const u64, healthy: *const u8, n: size_t, self_id: u64) -> netelect_result;
    pub fn netelect_rank(ids: *const u64, rtt_ns: *const u64, healthy: *const u8, n: size_t, self_id: u64, out_ids: *mut u64) -> size_t;
    pub fn netelect_topk(ids: *const u64, rtt_ns: *const u64, healthy: *const u8, n: size_t, self_id: u64, k: size_t, out_ids: *mut u64) -> size_t;
    pub fn netelect_elect_cb(replica_set: *const u64, n: size_t, self_id: u64, rtt: netelect_rtt_fn, health: netelect_health_fn, ctx: *mut c_void) -> netelect_result;
    pub fn netelect_rtt_from_timespec(ts: *const timespec) -> u64;
    pub fn netelect_isa() -> *const c_char;
    pub fn netelect_set_isa(name: *const c_char) -> c_int;
    pub fn netelect_version() -> *const c_char;
    pub fn netelect_version_number() -> c_uint;
    pub fn netelect_strerror(err: c_int) -> *const c_char;

    // netelect/view.h
    pub fn netelect_view_open(name: *const c_char, out: *mut *mut netelect_view) -> c_int;
    pub fn netelect_view_open_opts(name: *const c_char, opts: *const netelect_view_opts, out: *mut *mut netelect_view) -> c_int;
    pub fn netelect_view_close(v: *mut netelect_view);
    pub fn netelect_view_elect(v: *mut netelect_view, channel: *const c_char, self_id: u64, out: *mut netelect_result) -> c_int;
    pub fn netelect_view_elect_gen(v: *mut netelect_view, channel: *const c_char, self_id: u64, out: *mut netelect_result, generation: *mut u64) -> c_int;
    pub fn netelect_view_rank(v: *mut netelect_view, channel: *const c_char, self_id: u64, out_ids: *mut u64, cap: size_t, count: *mut size_t) -> c_int;
    pub fn netelect_view_generation(v: *mut netelect_view) -> u64;
    pub fn netelect_view_wait(v: *mut netelect_view, last_generation: u64, timeout_ns: u64) -> c_int;
    pub fn netelect_view_fd(v: *mut netelect_view) -> c_int;
    pub fn netelect_view_fd_rearm(v: *mut netelect_view) -> c_int;
    pub fn netelect_view_self(v: *mut netelect_view) -> u64;
    pub fn netelect_view_status(v: *mut netelect_view, out: *mut netelect_view_status) -> c_int;
    pub fn netelect_view_node(v: *mut netelect_view, id: u64, out: *mut netelect_node_info) -> c_int;
    pub fn netelect_view_foreach_node(v: *mut netelect_view, cb: netelect_node_cb, ctx: *mut c_void) -> c_int;
    pub fn netelect_view_foreach_channel(v: *mut netelect_view, cb: netelect_channel_cb, ctx: *mut c_void) -> c_int;
    pub fn netelect_view_read(v: *mut netelect_view, fn_: netelect_read_fn, ctx: *mut c_void) -> c_int;
    pub fn netelect_snap_generation(s: *const netelect_snap) -> u64;
    pub fn netelect_snap_publish_ns(s: *const netelect_snap) -> u64;
    pub fn netelect_snap_elect(s: *const netelect_snap, channel: *const c_char, self_id: u64, out: *mut netelect_result) -> c_int;
    pub fn netelect_snap_rank(s: *const netelect_snap, channel: *const c_char, self_id: u64, out_ids: *mut u64, cap: size_t, count: *mut size_t) -> c_int;
    pub fn netelect_snap_node(s: *const netelect_snap, id: u64, out: *mut netelect_node_info) -> c_int;
    pub fn netelect_snap_members(s: *const netelect_snap, channel: *const c_char, ids: *mut u64, rtt_ns: *mut u64, healthy: *mut u8, cap: size_t, count: *mut size_t) -> c_int;
}
