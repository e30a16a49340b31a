// SPDX-License-Identifier: MIT
//! Per-call cost of the Rust bindings against the C calls they wrap, in one
//! process: the C side goes through `netelect_sys` directly, on the same
//! data, in the same run, with the repetitions of each pair interleaved so
//! both see the same machine load.
//!
//!   NETELECT_BUILD=build LD_LIBRARY_PATH=build PKG_CONFIG_PATH=build/meson-uninstalled \
//!     taskset -c 1 cargo run --release --example bench [-- --reps N]
//!
//! The View rows need a private netelectd (started from NETELECT_BUILD,
//! stopped at the end) with a 3-replica channel "c3".
use std::ffi::CStr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netelect::{sys, Columns, Replica, ReplicaSet, View, RTT_UNKNOWN};

/// Keeps results alive so no loop is optimised away.
static mut SINK: u64 = 0;

fn sink(x: u64) {
    // SAFETY: single-threaded benchmark; a volatile write the optimiser keeps.
    unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!(SINK), x) }
}

/// This thread's CPU time: on a loaded machine wall time would count the
/// time slices other processes took from us.
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU nanoseconds per call of one repetition: `iters` calls of `f`.
fn time_rep(iters: u64, f: &mut dyn FnMut(u64) -> u64) -> f64 {
    let mut acc = 0u64;
    let t = cpu_ns();
    for i in 0..iters {
        acc = acc.wrapping_add(f(i));
    }
    let ns = (cpu_ns() - t) as f64 / iters as f64;
    sink(acc);
    ns
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Row {
    name: &'static str,
    c: f64,
    rust: f64,
}

/// Runs the C and the Rust form `reps` times each, alternating, after a
/// warm-up; `iters` is chosen so one repetition takes about 2 ms.
fn pair(name: &'static str, reps: usize, c: &mut dyn FnMut(u64) -> u64, r: &mut dyn FnMut(u64) -> u64) -> Row {
    let probe = time_rep(1000, c).max(0.5);
    let iters = ((2e6 / probe) as u64).max(100);
    time_rep(iters / 4, c);
    time_rep(iters / 4, r);
    let (mut cs, mut rs) = (Vec::new(), Vec::new());
    for k in 0..reps {
        // Each goes first every other time: neither owns the quieter slot.
        if k % 2 == 0 {
            cs.push(time_rep(iters, c));
            rs.push(time_rep(iters, r));
        } else {
            rs.push(time_rep(iters, r));
            cs.push(time_rep(iters, c));
        }
    }
    Row { name, c: median(&mut cs), rust: median(&mut rs) }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The bench/ suite's `rand` input: random ids, RTT 100 µs–200 ms, 5 %
/// unknown, 10 % unhealthy; the caller is absent.
fn rand_input(n: usize) -> (Vec<u64>, Vec<u64>, Vec<bool>) {
    let mut r = Rng(0x6e65_7465_6c65_6374);
    let mut ids = Vec::with_capacity(n);
    let mut rtts = Vec::with_capacity(n);
    let mut healthy = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(r.next() | 1);
        rtts.push(if r.next() % 20 == 0 { RTT_UNKNOWN } else { 100_000 + r.next() % 199_900_000 });
        healthy.push(r.next() % 10 != 0);
    }
    (ids, rtts, healthy)
}

struct Agent {
    child: Child,
    shm: String,
    tmp: PathBuf,
}

impl Agent {
    fn start(build: &PathBuf, self_id: u64) -> Agent {
        let shm = format!("netelect-rs-bench-{}", std::process::id());
        let tmp = std::env::temp_dir().join(&shm);
        std::fs::create_dir_all(&tmp).unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(build.join("agent/netelectd"))
            .args(["--shm", &shm, "--control"])
            .arg(tmp.join("ctl"))
            .args(["--node-id", &format!("{self_id:#x}"), "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("netelectd starts");
        let a = Agent { child, shm, tmp };
        let end = Instant::now() + Duration::from_secs(10);
        while !a.cli(build, &["status"]) {
            assert!(Instant::now() < end, "netelectd did not publish within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        for args in [
            &["set-rtt", "0x77", "30000"][..],
            &["set-rtt", "0x78", "20000"],
            &["set-health", "0x77", "up"],
            &["set-health", "0x78", "up"],
            &["channel", "add", "c3", "self", "0x77", "0x78"],
        ] {
            assert!(a.cli(build, args), "netelect {args:?} failed");
        }
        a
    }

    fn cli(&self, build: &PathBuf, args: &[&str]) -> bool {
        Command::new(build.join("agent/netelect"))
            .args(["--shm", &self.shm, "--control"])
            .arg(self.tmp.join("ctl"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for suffix in ["", ".lock", ".readers", ".tmp"] {
            let _ = std::fs::remove_file(format!("/dev/shm/{}{suffix}", self.shm));
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

fn main() {
    let mut reps = 31;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--reps") {
        reps = args[i + 1].parse().expect("--reps N");
    }
    println!("netelect {} isa {}; median of {reps} interleaved repetitions, thread CPU ns per call", netelect::version(), netelect::isa());
    let mut rows = Vec::new();

    let n = 10_000;
    let (ids, rtts, healthy) = rand_input(n);
    let h8: Vec<u8> = healthy.iter().map(|&b| b as u8).collect();
    let cols = Columns::new(&ids, &rtts, &healthy).unwrap();
    let reps_aos: Vec<Replica> = (0..n).map(|i| Replica { id: ids[i], rtt_ns: rtts[i], healthy: healthy[i] }).collect();
    let set = ReplicaSet::from(&reps_aos[..]);
    let self_id = 2; // absent (ids are odd)
    let mut c_elect = |_| unsafe { sys::netelect_elect(ids.as_ptr(), rtts.as_ptr(), h8.as_ptr(), n, self_id).winner };
    let w = |o: netelect::Outcome| o.winner().unwrap_or(0);
    rows.push(pair("elect 10k: Columns::elect (zero-copy)", reps, &mut c_elect, &mut |_| w(cols.elect(self_id))));
    rows.push(pair("elect 10k: ReplicaSet::elect (zero-copy)", reps, &mut c_elect, &mut |_| w(set.elect(self_id))));
    rows.push(pair("elect 10k: elect(&[Replica]) (copies)", reps, &mut c_elect, &mut |_| w(netelect::elect(&reps_aos, self_id))));
    let (ids3, rtts3, h3) = (&ids[..3], &rtts[..3], &healthy[..3]);
    let c3cols = Columns::new(ids3, rtts3, h3).unwrap();
    let h83 = &h8[..3];
    rows.push(pair(
        "elect 3: Columns::elect",
        reps,
        &mut |_| unsafe { sys::netelect_elect(ids3.as_ptr(), rtts3.as_ptr(), h83.as_ptr(), 3, self_id).winner },
        &mut |_| w(c3cols.elect(self_id)),
    ));

    match std::env::var_os("NETELECT_BUILD").map(PathBuf::from) {
        None => println!("(NETELECT_BUILD unset: no View rows)"),
        Some(build) => {
            let agent = Agent::start(&build, 0x51);
            let v = View::open(&agent.shm).unwrap();
            let raw = v.as_ptr();
            let ch = CStr::from_bytes_with_nul(b"c3\0").unwrap();
            let c_view = |s: u64| {
                let mut r = sys::netelect_result::default();
                let rc = unsafe { sys::netelect_view_elect(raw, ch.as_ptr(), s, &mut r) };
                assert_eq!(rc, 0);
                r.winner
            };
            let me = 0x51;
            rows.push(pair("View::elect 3-replica, &CStr (cached)", reps, &mut |_| c_view(me), &mut |_| {
                v.elect(ch, me).unwrap().leader(me).unwrap()
            }));
            rows.push(pair("View::elect 3-replica, &str (cached)", reps, &mut |_| c_view(me), &mut |_| {
                v.elect("c3", me).unwrap().leader(me).unwrap()
            }));
            // Alternating the caller's id defeats the per-thread answer
            // cache: every call is a full validated read.
            let who = |i: u64| 0x90 + (i & 1);
            rows.push(pair("View::elect 3-replica, &str (cache defeated)", reps, &mut |i| c_view(who(i)), &mut |i| {
                v.elect("c3", who(i)).unwrap().leader(who(i)).unwrap()
            }));
            rows.push(pair(
                "View::generation",
                reps,
                &mut |_| unsafe { sys::netelect_view_generation(raw) },
                &mut |_| v.generation(),
            ));
            drop(v);
            drop(agent);
        }
    }
    println!("{:<48} {:>10} {:>10} {:>8}", "call", "C ns", "Rust ns", "Rust/C");
    for r in &rows {
        println!("{:<48} {:>10.2} {:>10.2} {:>7.3}x", r.name, r.c, r.rust, r.rust / r.c);
    }
}
