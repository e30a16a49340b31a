// SPDX-License-Identifier: MIT
//! `View` against a real segment: the built netelectd publishes a private
//! segment (a unique name, its own control socket and UDP port) and the
//! built `netelect` CLI changes it over the control socket.  Needs
//! NETELECT_BUILD (meson's test 'rust' sets it); without it each test says
//! so and returns.
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use netelect::{ErrorKind, Outcome, State, View, ViewOptions};

const SELF: u64 = 0x51;

fn build_dir() -> Option<PathBuf> {
    let b = PathBuf::from(std::env::var_os("NETELECT_BUILD")?);
    if b.join("agent/netelectd").exists() && b.join("agent/netelect").exists() {
        Some(b)
    } else {
        None
    }
}

macro_rules! need_build {
    () => {
        match build_dir() {
            Some(b) => b,
            None => {
                eprintln!("SKIP: NETELECT_BUILD with agent/netelectd and agent/netelect needed");
                return;
            }
        }
    };
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One netelectd on a private segment; killed and cleaned up on drop.
struct Agent {
    build: PathBuf,
    shm: String,
    tmp: PathBuf,
    child: Child,
}

static COUNT: AtomicUsize = AtomicUsize::new(0);

impl Agent {
    fn start(build: &PathBuf, node_id: u64) -> Agent {
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let shm = format!("netelect-rs-{}-{n}", std::process::id());
        let tmp = std::env::temp_dir().join(&shm);
        std::fs::create_dir_all(&tmp).unwrap();
        let log = std::fs::File::create(tmp.join("netelectd.log")).unwrap();
        let child = Command::new(build.join("agent/netelectd"))
            .args(["--shm", &shm, "--control"])
            .arg(tmp.join("ctl"))
            .args(["--node-id", &format!("{node_id:#x}"), "--listen", &format!("127.0.0.1:{}", free_udp_port())])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("netelectd starts");
        let mut a = Agent { build: build.clone(), shm, tmp, child };
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Some(st) = a.child.try_wait().unwrap() {
                panic!("netelectd exited with {st}: {}", a.log());
            }
            if a.cli(&["status"]).status.success() {
                return a;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("netelectd did not publish within 10 s: {}", a.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.join("netelectd.log")).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(self.build.join("agent/netelect"))
            .args(["--shm", &self.shm, "--control"])
            .arg(self.tmp.join("ctl"))
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) {
        let o = self.cli(args);
        assert!(o.status.success(), "netelect {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }

    fn signal(&mut self, sig: i32) {
        // SAFETY: our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let _ = self.child.wait();
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

#[test]
fn elect_rank_status_nodes_and_channels() {
    let b = need_build!();
    let a = Agent::start(&b, SELF);
    let v = View::open(&a.shm).unwrap();
    assert_eq!(v.self_id(), SELF);
    assert_eq!(v.elect("default", SELF).unwrap(), Outcome::SelfWins);
    assert_eq!(v.elect("default", 0x99).unwrap(), Outcome::PeerWins(SELF));
    let c = std::ffi::CString::new("default").unwrap();
    assert_eq!(v.elect(c.as_c_str(), SELF).unwrap(), Outcome::SelfWins);
    assert_eq!(v.elect(&String::from("default"), SELF).unwrap(), Outcome::SelfWins);
    let (r, gen) = v.elect_gen("default", SELF).unwrap();
    assert!(r.is_self() && gen == v.generation() && gen > 0);
    assert_eq!(v.rank("default", SELF).unwrap(), vec![SELF]);
    assert_eq!(v.rank_into("default", SELF, &mut []).unwrap(), 1);

    // A 3-replica channel whose peers have operator RTTs (set-rtt adds
    // the node): the order is by RTT.
    a.ok(&["set-rtt", "0x77", "30000"]);
    a.ok(&["set-rtt", "0x78", "20000"]);
    a.ok(&["set-health", "0x77", "up"]);
    a.ok(&["set-health", "0x78", "up"]);
    a.ok(&["channel", "add", "c3", "self", "0x77", "0x78"]);
    assert_eq!(v.rank("c3", SELF).unwrap(), vec![SELF, 0x78, 0x77]);
    assert_eq!(v.rank("c3", 0x99).unwrap(), vec![SELF, 0x78, 0x77]);
    // As 0x78 the view's RTTs (the agent's) put SELF at 0 too: the lower id wins.
    assert_eq!(v.elect("c3", 0x78).unwrap(), Outcome::PeerWins(SELF));
    assert_eq!(v.rank("c3", 0x77).unwrap(), vec![SELF, 0x77, 0x78]);
    // Names of one length in turn: the per-thread name buffer must follow.
    a.ok(&["channel", "add", "c2", "0x77"]);
    for _ in 0..3 {
        assert_eq!(v.elect("c3", SELF).unwrap(), Outcome::SelfWins);
        assert_eq!(v.elect("c2", SELF).unwrap(), Outcome::PeerWins(0x77));
        assert_eq!(v.elect(&String::from("c3"), SELF).unwrap(), Outcome::SelfWins);
    }
    let mut out = [0u64; 3];
    assert_eq!(v.rank_into("c3", SELF, &mut out).unwrap(), 3);
    assert_eq!(out, [SELF, 0x78, 0x77]);
    // More candidates than rank()'s first guess (16): it asks again.
    let mut big = vec!["channel".to_string(), "add".into(), "c20".into(), "self".into()];
    let mut want = vec![SELF];
    for i in 0..19u64 {
        a.ok(&["set-rtt", &format!("{:#x}", 0x100 + i), &format!("{}", 1000 * (19 - i))]);
        a.ok(&["set-health", &format!("{:#x}", 0x100 + i), "up"]);
        big.push(format!("{:#x}", 0x100 + i));
        want.insert(1, 0x100 + i);
    }
    a.ok(&big.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(v.rank("c20", SELF).unwrap(), want);

    let s = v.status().unwrap();
    assert!(s.writer_alive && s.state == State::Live && s.self_id == SELF && !s.stale);
    assert!(s.generation == v.generation() && s.n_chans >= 3 && s.n_nodes == 3 + 19);
    assert!(s.agent_pid as u32 == a.child.id() && s.abi_major >= 1 && s.max_nodes >= s.n_nodes);
    let mut nodes: Vec<u64> = v.nodes().unwrap().map(|n| n.id).collect();
    nodes.sort_unstable();
    assert_eq!(nodes[..3], [SELF, 0x77, 0x78]);
    assert_eq!(nodes.len(), 3 + 19);
    let n = v.node(0x78).unwrap();
    assert!(n.id == 0x78 && n.rtt_ns == 20_000 && n.healthy && n.source == netelect::RttSource::Operator);
    assert_eq!(v.node(0x1234).unwrap_err().kind(), ErrorKind::NotFound);
    let chans: Vec<_> = v.channels().unwrap().collect();
    let c3 = chans.iter().find(|c| c.name == "c3").expect("channel c3");
    let mut m = c3.members.clone();
    m.sort_unstable();
    assert_eq!(m, vec![SELF, 0x77, 0x78]);
    assert!(chans.iter().any(|c| c.name == "default" && c.members == vec![SELF]));
}

#[test]
fn errors_carry_the_c_codes() {
    let b = need_build!();
    let a = Agent::start(&b, SELF);
    let v = View::open(&a.shm).unwrap();
    let e = v.elect("no-such-channel", SELF).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoChannel);
    assert_eq!(e.code(), netelect::Error::ENOCHAN);
    assert_eq!(e.code(), -4100);
    assert!(e.message().contains("channel"), "{}", e.message());
    assert!(e.to_string().contains("-4100"));
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    assert!(boxed.to_string().contains("channel"));
    assert_eq!(v.rank("no-such-channel", SELF).unwrap_err().kind(), ErrorKind::NoChannel);
    // Names C would refuse or misread are refused before the call.
    for bad in ["", "a\0b", &"x".repeat(256)] {
        assert_eq!(v.elect(bad, SELF).unwrap_err().kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    assert_eq!(v.elect(&"x".repeat(255), SELF).unwrap_err().kind(), ErrorKind::NoChannel);
    let e = View::open(&format!("netelect-rs-missing-{}", std::process::id())).unwrap_err();
    assert_eq!((e.kind(), e.code(), e.raw_os_error()), (ErrorKind::NotFound, -libc::ENOENT, Some(libc::ENOENT)));
    assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::NotFound);
    let owner = std::fs::metadata(format!("/dev/shm/{}", a.shm)).map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap();
    let opts = ViewOptions { expect_uid: Some(owner + 4242), ..Default::default() };
    let e = View::open_with(Some(&a.shm), &opts).unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::NotTrusted, -libc::EPERM));
    let opts = ViewOptions { expect_uid: Some(owner), ..Default::default() };
    assert!(View::open_with(Some(&a.shm), &opts).unwrap().elect("default", SELF).unwrap().is_self());
}

#[test]
fn wait_times_out_then_wakes_on_a_change() {
    let b = need_build!();
    let a = Agent::start(&b, SELF);
    let v = View::open(&a.shm).unwrap();
    let g0 = v.generation();
    let e = v.wait(g0, Some(Duration::from_millis(50))).unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::TimedOut, -libc::ETIMEDOUT));
    let t0 = Instant::now();
    let g1 = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(200));
            a.ok(&["channel", "add", "rs-extra", "0x77", "self"]);
        });
        v.wait(g0, Some(Duration::from_secs(10))).unwrap()
    });
    let waited = t0.elapsed();
    assert!(g1 > g0);
    // An idle agent publishes nothing, so the first wake-up is the change.
    assert!(waited > Duration::from_millis(150) && waited < Duration::from_secs(5), "woke after {waited:?}");
    assert!(v.elect("rs-extra", SELF).unwrap().is_self());
}

#[test]
fn fd_polls_readable_on_a_publish() {
    let b = need_build!();
    let a = Agent::start(&b, SELF);
    let v = View::open(&a.shm).unwrap();
    let fd = v.fd().unwrap();
    assert!(fd >= 0 && v.fd().unwrap() == fd);
    v.rearm().unwrap();
    let g0 = v.generation();
    a.ok(&["channel", "add", "rs-fd", "self"]);
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 5000) }, 1, "no readability after a publish");
    v.rearm().unwrap();
    assert!(v.generation() > g0);
    assert!(v.elect("rs-fd", SELF).unwrap().is_self());
}

#[test]
fn threads_share_one_view() {
    let b = need_build!();
    let a = Agent::start(&b, SELF);
    let v = Arc::new(View::open(&a.shm).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let (v, stop) = (Arc::clone(&v), Arc::clone(&stop));
            thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) || n < 1000 {
                    assert_eq!(v.elect("default", SELF + i).unwrap().leader(SELF + i), Some(SELF));
                    n += 1;
                }
                n
            })
        })
        .collect();
    for i in 0..5 {
        a.ok(&["channel", "add", &format!("rs-t{i}"), "self"]);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        assert!(w.join().unwrap() >= 1000);
    }
    assert!(v.elect("rs-t4", SELF).unwrap().is_self());
}

#[test]
fn agent_exit_ends_wait_and_death_goes_stale() {
    let b = need_build!();
    let mut a = Agent::start(&b, 0x52);
    let v = View::open(&a.shm).unwrap();
    let g0 = v.generation();
    let e = thread::scope(|s| {
        let pid = a.child.id() as i32;
        s.spawn(move || {
            thread::sleep(Duration::from_millis(200));
            // SAFETY: the agent's pid, still our unreaped child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        });
        v.wait(g0, Some(Duration::from_secs(10))).unwrap_err()
    });
    assert_eq!((e.kind(), e.code()), (ErrorKind::AgentGone, -libc::EOWNERDEAD));
    a.signal(libc::SIGTERM);
    assert!(!v.status().unwrap().writer_alive);
    // The last version answers for the fail-static window, then Stale.
    let opts = ViewOptions { fail_static: Some(Duration::from_millis(100)), ..Default::default() };
    let mut b2 = Agent::start(&b, 0x53);
    let v2 = View::open_with(Some(&b2.shm), &opts).unwrap();
    assert!(v2.elect("default", 0x53).unwrap().is_self());
    b2.signal(libc::SIGKILL);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match v2.elect("default", 0x53) {
            Ok(_) if Instant::now() < end => thread::sleep(Duration::from_millis(20)),
            Ok(o) => panic!("still answering {o:?} 10 s after a kill -9"),
            Err(e) => {
                assert_eq!((e.kind(), e.code()), (ErrorKind::Stale, netelect::Error::ESTALE));
                break;
            }
        }
    }
}

#[test]
fn view_is_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<View>();
}
