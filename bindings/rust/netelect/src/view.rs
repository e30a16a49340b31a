// SPDX-License-Identifier: MIT
//! The replica view netelectd publishes in shared memory.
use std::ffi::{c_void, CStr, CString};
use std::os::unix::io::RawFd;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::time::Duration;

use libc::c_char;

use crate::error::{check, Error};
use crate::{sys, NodeId, Outcome};

fn einval() -> Error {
    Error::from_code(-libc::EINVAL)
}

/// Longest channel name the library accepts (`NETELECT_CHAN_NAME_MAX`).
const CHAN_NAME_MAX: usize = 255;

/// Something that names a channel.  `&str` and `String` are copied onto the
/// stack with a NUL (a few ns; names are 1..255 bytes); `&CStr` and
/// `CString` are passed as they are.
pub trait ChannelName {
    /// Calls `f` with a NUL-terminated copy or view of the name.
    fn with_c_name<T>(&self, f: impl FnOnce(*const c_char) -> T) -> Result<T, Error>;
}

thread_local! {
    /// This thread's last channel name, NUL-terminated, with its length.
    static LAST_NAME: std::cell::UnsafeCell<(usize, [u8; CHAN_NAME_MAX + 1])> =
        const { std::cell::UnsafeCell::new((0, [0; CHAN_NAME_MAX + 1])) };
}

impl ChannelName for str {
    #[inline]
    fn with_c_name<T>(&self, f: impl FnOnce(*const c_char) -> T) -> Result<T, Error> {
        let b = self.as_bytes();
        if b.is_empty() || b.len() > CHAN_NAME_MAX {
            return Err(einval());
        }
        // The name goes to C from a per-thread buffer that is rewritten only
        // when the name changes: C's strcmp reads it with wide loads right
        // away, and reading bytes just stored one by one (a fresh stack
        // copy) stalls on store forwarding, ~6 ns a call, as much as the
        // cached election itself.
        LAST_NAME.with(|cell| {
            // SAFETY: this thread's own buffer; f is C code that never
            // calls back into this function, so no other reference exists.
            let (len, buf) = unsafe { &mut *cell.get() };
            if *len != b.len() || buf[..b.len()] != *b {
                // An interior NUL would name another channel: refuse it as
                // C refuses an empty or overlong name.
                if b.contains(&0) {
                    return Err(einval());
                }
                buf[..b.len()].copy_from_slice(b);
                buf[b.len()] = 0;
                *len = b.len();
            }
            Ok(f(buf.as_ptr() as *const c_char))
        })
    }
}

impl ChannelName for String {
    #[inline]
    fn with_c_name<T>(&self, f: impl FnOnce(*const c_char) -> T) -> Result<T, Error> {
        self.as_str().with_c_name(f)
    }
}

impl ChannelName for CStr {
    #[inline]
    fn with_c_name<T>(&self, f: impl FnOnce(*const c_char) -> T) -> Result<T, Error> {
        Ok(f(self.as_ptr()))
    }
}

impl ChannelName for CString {
    #[inline]
    fn with_c_name<T>(&self, f: impl FnOnce(*const c_char) -> T) -> Result<T, Error> {
        Ok(f(self.as_ptr()))
    }
}

/// Runs the C call `f` on `channel`'s NUL-terminated name: a name C would
/// refuse, or a negative errno from the call, is the error.
#[inline]
fn on_channel<C: ChannelName + ?Sized>(channel: &C, f: impl FnOnce(*const c_char) -> libc::c_int) -> Result<(), Error> {
    check(channel.with_c_name(f)?)
}

/// Options of [`View::open_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewOptions {
    /// How long elections answer from the last version once the agent is
    /// gone, before they fail with `Stale`.  `None`: the library's 2 s;
    /// `Duration::MAX`: forever.
    pub fail_static: Option<Duration>,
    /// The only uid whose segment is trusted.  `None`: root, the agent
    /// user or this process's euid (shm/README.md, "Trust").
    pub expect_uid: Option<u32>,
}

/// Where a node's RTT came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RttSource {
    None,
    Probe,
    Serf,
    Operator,
    Other(u8),
}

/// One node of the published view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Node {
    pub id: NodeId,
    /// Smoothed RTT used by elections, or `RTT_UNKNOWN`.
    pub rtt_ns: u64,
    pub rtt_raw_ns: u64,
    pub rtt_err_ns: u64,
    /// Agent CLOCK_MONOTONIC when last heard from; 0: never.
    pub last_heard_ns: u64,
    pub healthy: bool,
    pub source: RttSource,
}

impl From<&sys::netelect_node_info> for Node {
    fn from(n: &sys::netelect_node_info) -> Node {
        Node {
            id: n.id,
            rtt_ns: n.rtt_ns,
            rtt_raw_ns: n.rtt_raw_ns,
            rtt_err_ns: n.rtt_err_ns,
            last_heard_ns: n.last_heard_ns,
            healthy: n.healthy != 0,
            source: match n.source as u32 {
                sys::NETELECT_SRC_NONE => RttSource::None,
                sys::NETELECT_SRC_PROBE => RttSource::Probe,
                sys::NETELECT_SRC_SERF => RttSource::Serf,
                sys::NETELECT_SRC_OPERATOR => RttSource::Operator,
                _ => RttSource::Other(n.source),
            },
        }
    }
}

/// One channel of the published view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Channel {
    pub name: String,
    pub members: Vec<NodeId>,
}

/// The segment's state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Live,
    /// The agent exited cleanly.
    Abandoned,
    /// The view moved to another segment.
    Moved,
    /// The agent's publishes are failing.
    Stalled,
    Other(u32),
}

/// `struct netelect_view_status` with Rust types (see view.h for each field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    pub generation: u64,
    pub self_id: NodeId,
    pub publish_ns: u64,
    pub heartbeat_seq: u64,
    pub heartbeat_age_ns: u64,
    pub forced_reuse: u64,
    pub n_nodes: u32,
    pub n_chans: u32,
    pub agent_pid: i32,
    pub state: State,
    pub incarnation: [u8; 16],
    pub abi_major: u16,
    pub abi_minor: u16,
    pub slot_count: u32,
    pub max_nodes: u32,
    pub max_chans: u32,
    pub max_members: u32,
    pub registered: bool,
    pub stale: bool,
    pub heartbeat_period_ns: u64,
    pub retries: u64,
    pub reattaches: u64,
    pub pinned_waits: u64,
    pub heartbeat_mono_ns: u64,
    pub writer_alive: bool,
    pub clock_shared: bool,
}

impl From<&sys::netelect_view_status> for Status {
    fn from(s: &sys::netelect_view_status) -> Status {
        Status {
            generation: s.generation,
            self_id: s.self_id,
            publish_ns: s.publish_ns,
            heartbeat_seq: s.heartbeat_seq,
            heartbeat_age_ns: s.heartbeat_age_ns,
            forced_reuse: s.forced_reuse,
            n_nodes: s.n_nodes,
            n_chans: s.n_chans,
            agent_pid: s.agent_pid,
            state: match s.state {
                sys::NETELECT_AGENT_LIVE => State::Live,
                sys::NETELECT_AGENT_ABANDONED => State::Abandoned,
                sys::NETELECT_AGENT_MOVED => State::Moved,
                sys::NETELECT_AGENT_STALLED => State::Stalled,
                x => State::Other(x),
            },
            incarnation: s.incarnation,
            abi_major: s.abi_major,
            abi_minor: s.abi_minor,
            slot_count: s.slot_count,
            max_nodes: s.max_nodes,
            max_chans: s.max_chans,
            max_members: s.max_members,
            registered: s.registered != 0,
            stale: s.stale != 0,
            heartbeat_period_ns: s.heartbeat_period_ns,
            retries: s.retries,
            reattaches: s.reattaches,
            pinned_waits: s.pinned_waits,
            heartbeat_mono_ns: s.heartbeat_mono_ns,
            writer_alive: s.writer_alive != 0,
            clock_shared: s.clock_shared != 0,
        }
    }
}

/// A read-only handle on the agent's view (`struct netelect_view *`).
///
/// `Send + Sync`: view.h allows every function on one handle from any
/// number of threads except `netelect_view_close`, which only `Drop` calls
/// (so no other thread can hold the `View` then), and
/// `netelect_view_fd_rearm` ("one thread at a time per handle"), which
/// [`View::rearm`] serialises with a lock.  A forked child must open its
/// own `View`: the C contract forbids using the parent's after `fork`.
#[derive(Debug)]
pub struct View {
    raw: NonNull<sys::netelect_view>,
    rearm: Mutex<()>,
}

// SAFETY: see the type's documentation (view.h: thread use).
unsafe impl Send for View {}
// SAFETY: as above.
unsafe impl Sync for View {}

/// Tries a foreach this many times when a writer keeps lapping it.
const FOREACH_TRIES: usize = 8;

impl View {
    /// Attaches to the segment `name` (a name under /dev/shm, or a path if
    /// it has a '/').
    pub fn open(name: &str) -> Result<View, Error> {
        View::open_with(Some(name), &ViewOptions::default())
    }

    /// Attaches to the default segment, /dev/shm/netelect.
    pub fn open_default() -> Result<View, Error> {
        View::open_with(None, &ViewOptions::default())
    }

    /// `netelect_view_open_opts`; `name` `None` is the default segment.
    pub fn open_with(name: Option<&str>, opts: &ViewOptions) -> Result<View, Error> {
        let name = name.map(|n| CString::new(n).map_err(|_| einval())).transpose()?;
        let o = sys::netelect_view_opts {
            size: std::mem::size_of::<sys::netelect_view_opts>() as u32,
            reserved0: 0,
            fail_static_ns: match opts.fail_static {
                None => 0,
                Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1),
            },
            expect_uid: opts.expect_uid.unwrap_or(0),
            expect_uid_set: opts.expect_uid.is_some() as u32,
        };
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid name (or NULL), options and out pointer.
        check(unsafe {
            sys::netelect_view_open_opts(name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()), &o, &mut raw)
        })?;
        let raw = NonNull::new(raw).ok_or_else(|| Error::from_code(-libc::ENOMEM))?;
        Ok(View { raw, rearm: Mutex::new(()) })
    }

    /// The C handle, for calls this crate does not wrap (`netelect_view_read`).
    #[inline]
    pub fn as_ptr(&self) -> *mut sys::netelect_view {
        self.raw.as_ptr()
    }

    /// The agent's own node id.
    #[inline]
    pub fn self_id(&self) -> NodeId {
        // SAFETY: a live handle.
        unsafe { sys::netelect_view_self(self.as_ptr()) }
    }

    /// Elects the leader of `channel` as seen from `self_id` (the agent's
    /// own is [`View::self_id`]).
    #[inline]
    pub fn elect<C: ChannelName + ?Sized>(&self, channel: &C, self_id: NodeId) -> Result<Outcome, Error> {
        let mut r = sys::netelect_result::default();
        // SAFETY: a live handle, a NUL-terminated name, a valid out pointer.
        on_channel(channel, |c| unsafe { sys::netelect_view_elect(self.as_ptr(), c, self_id, &mut r) })?;
        Ok(Outcome::from_c(r))
    }

    /// [`View::elect`] and the generation the answer holds for: while
    /// [`View::generation`] returns it, the answer stands.
    #[inline]
    pub fn elect_gen<C: ChannelName + ?Sized>(&self, channel: &C, self_id: NodeId) -> Result<(Outcome, u64), Error> {
        let mut r = sys::netelect_result::default();
        let mut gen = 0;
        // SAFETY: as elect.
        on_channel(channel, |c| unsafe {
            sys::netelect_view_elect_gen(self.as_ptr(), c, self_id, &mut r, &mut gen)
        })?;
        Ok((Outcome::from_c(r), gen))
    }

    /// The failover order of `channel` into `out`; returns the number of
    /// candidates, which may exceed `out.len()` (then only the first
    /// `out.len()` were written).
    pub fn rank_into<C: ChannelName + ?Sized>(&self, channel: &C, self_id: NodeId, out: &mut [NodeId]) -> Result<usize, Error> {
        let mut count = 0;
        // SAFETY: out has room for out.len() ids.
        on_channel(channel, |c| unsafe {
            sys::netelect_view_rank(self.as_ptr(), c, self_id, out.as_mut_ptr(), out.len(), &mut count)
        })?;
        Ok(count)
    }

    /// The failover order of `channel` (every candidate, the winner first).
    pub fn rank<C: ChannelName + ?Sized>(&self, channel: &C, self_id: NodeId) -> Result<Vec<NodeId>, Error> {
        let mut out = vec![0; 16];
        // A publish between the calls may grow the channel: ask again.
        for _ in 0..FOREACH_TRIES {
            let n = self.rank_into(channel, self_id, &mut out)?;
            if n <= out.len() {
                out.truncate(n);
                return Ok(out);
            }
            out.resize(n, 0);
        }
        Err(Error::from_code(-libc::EAGAIN))
    }

    /// The generation of the current version (one load): it changes iff
    /// the agent published.
    #[inline]
    pub fn generation(&self) -> u64 {
        // SAFETY: a live handle.
        unsafe { sys::netelect_view_generation(self.as_ptr()) }
    }

    /// Sleeps until the generation differs from `last_generation`, and
    /// returns the new one.  `timeout` `None`: no limit.  Errors:
    /// `AgentGone`, `TimedOut`, `Interrupted` (a signal handler ran in this
    /// thread: call again).
    pub fn wait(&self, last_generation: u64, timeout: Option<Duration>) -> Result<u64, Error> {
        let ns = match timeout {
            None => u64::MAX,
            Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1).min(u64::MAX - 1),
        };
        // SAFETY: a live handle.
        check(unsafe { sys::netelect_view_wait(self.as_ptr(), last_generation, ns) })?;
        Ok(self.generation())
    }

    /// A descriptor that polls readable when the agent may have published,
    /// exited or been replaced; owned by the `View`.  After each wake-up,
    /// call [`View::rearm`] before reading the view.
    pub fn fd(&self) -> Result<RawFd, Error> {
        // SAFETY: a live handle.
        let rc = unsafe { sys::netelect_view_fd(self.as_ptr()) };
        check(rc)?;
        Ok(rc)
    }

    /// `netelect_view_fd_rearm`, one thread at a time as C requires.
    pub fn rearm(&self) -> Result<(), Error> {
        let _one = self.rearm.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: a live handle; serialised by the lock.
        check(unsafe { sys::netelect_view_fd_rearm(self.as_ptr()) })
    }

    /// The segment's identity and the agent's liveness.
    pub fn status(&self) -> Result<Status, Error> {
        let mut s = sys::netelect_view_status {
            size: std::mem::size_of::<sys::netelect_view_status>() as u32,
            ..Default::default()
        };
        // SAFETY: a live handle, a valid out pointer.
        check(unsafe { sys::netelect_view_status(self.as_ptr(), &mut s) })?;
        Ok(Status::from(&s))
    }

    /// One node by id (`NotFound` if the view has no such node).
    pub fn node(&self, id: NodeId) -> Result<Node, Error> {
        let mut n = sys::netelect_node_info::default();
        // SAFETY: a live handle, a valid out pointer.
        check(unsafe { sys::netelect_view_node(self.as_ptr(), id, &mut n) })?;
        Ok(Node::from(&n))
    }

    /// Runs a foreach until one whole walk happened with no lap.  The C
    /// call restarts its walk when the writer laps it, so the callback may
    /// have seen part of an older version first: the handle's retry
    /// counter tells, and the collection starts again (other threads'
    /// retries only cost a repeat).
    fn collect<T>(&self, mut walk: impl FnMut(&mut Vec<T>) -> i32) -> Result<Vec<T>, Error> {
        for _ in 0..FOREACH_TRIES {
            let before = self.status()?.retries;
            let mut out = Vec::new();
            check(walk(&mut out))?;
            if self.status()?.retries == before {
                return Ok(out);
            }
        }
        Err(Error::from_code(-libc::EAGAIN))
    }

    /// Every node of one consistent version.
    pub fn nodes(&self) -> Result<std::vec::IntoIter<Node>, Error> {
        unsafe extern "C" fn cb(ctx: *mut c_void, n: *const sys::netelect_node_info) -> libc::c_int {
            // SAFETY: ctx is the Vec collect() passed, n a valid node.
            (*(ctx as *mut Vec<Node>)).push(Node::from(&*n));
            0
        }
        let v = self.collect(|out: &mut Vec<Node>| unsafe {
            // SAFETY: a live handle; the callback matches ctx's type.
            sys::netelect_view_foreach_node(self.as_ptr(), Some(cb), out as *mut Vec<Node> as *mut c_void)
        })?;
        Ok(v.into_iter())
    }

    /// Every channel of one consistent version, with its members.
    pub fn channels(&self) -> Result<std::vec::IntoIter<Channel>, Error> {
        unsafe extern "C" fn cb(ctx: *mut c_void, name: *const c_char, m: *const u64, n: usize) -> libc::c_int {
            // SAFETY: ctx is the Vec collect() passed; name and m[0..n] are valid.
            let members = if n == 0 { Vec::new() } else { std::slice::from_raw_parts(m, n).to_vec() };
            let name = CStr::from_ptr(name).to_string_lossy().into_owned();
            (*(ctx as *mut Vec<Channel>)).push(Channel { name, members });
            0
        }
        let v = self.collect(|out: &mut Vec<Channel>| unsafe {
            // SAFETY: a live handle; the callback matches ctx's type.
            sys::netelect_view_foreach_channel(self.as_ptr(), Some(cb), out as *mut Vec<Channel> as *mut c_void)
        })?;
        Ok(v.into_iter())
    }
}

impl Drop for View {
    fn drop(&mut self) {
        // SAFETY: the handle is ours, and &mut self means no other thread uses it.
        unsafe { sys::netelect_view_close(self.as_ptr()) }
    }
}
