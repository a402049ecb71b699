//! Operating a tree: per-actor limits, an actor that runs out of its memory and is
//! restarted, live counters, and a graceful Ctrl-C.
//!
//! ```text
//! service (OneForOne)
//! ├─ web     pinned to CPU 0, nice 5, at most 256 open files
//! ├─ cache   a 128 MiB headroom memory limit; its first incarnation allocates until
//! │          the limit stops it (Exit::OutOfMemory), and the supervisor restarts it
//! └─ audit   a plain worker
//! ```
//!
//! `main` prints every child's counters once a second (`ChildInfo::stats`). Press Ctrl-C
//! (or send SIGTERM): every `stopping` hook runs, `audit` first (reverse start order), and
//! the program exits 130 (143 for SIGTERM). A second Ctrl-C ends it at once.
//!
//! Run with `cargo run --release --example operate`. With `OPERATE_DEMO=1` it sends
//! itself SIGINT once the cache has been restarted (the test suite runs it so).

use std::time::Duration;

use procession::prelude::*;
use procession::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorActor};
use procession::{Limits, Resource};

/// Tell: do some work.
#[derive(Serialize, Deserialize, Message)]
struct Work(u64);

/// A worker that sums what it is told, and allocates until stopped if `hog` (only in
/// its first incarnation).
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Work), args = (String, bool))]
struct Service {
    name: String,
    hog: bool,
    total: u64,
}

impl Actor for Service {
    type Args = (String, bool);

    fn create((name, hog): (String, bool), cx: &mut Context<Self>) -> Result<Self, BoxError> {
        let hog = hog && cx.incarnation() == 0;
        if hog {
            cx.send_self_after(Duration::from_millis(300), Work(u64::MAX))?;
        }
        Ok(Service {
            name,
            hog,
            total: 0,
        })
    }

    fn stopping(&mut self, cx: &mut Context<Self>) {
        println!(
            "stopping {} (pid {}, total {})",
            self.name,
            cx.pid(),
            self.total
        );
    }
}

impl Handler<Work> for Service {
    fn handle(&mut self, Work(n): Work, _cx: &mut Context<Self>) {
        if self.hog && n == u64::MAX {
            println!("{} starts allocating without bound", self.name);
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![7u8; 4 << 20]);
            }
        }
        self.total += n;
    }
}

/// Address space of this process, to give the cache room above it.
fn address_space() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn child(id: &str, hog: bool) -> ChildSpec {
    ChildSpec::worker::<Service>(id, (id.to_string(), hog))
}

fn show(sup: &ActorRef<SupervisorActor>) -> procession::Result<u32> {
    let mut cache_restarts = 0;
    for c in sup.which_children()? {
        let s = c
            .stats
            .clone()
            .unwrap_or_else(|| panic!("{} has no stats", c.id));
        if c.id == "cache" {
            cache_restarts = c.restarts;
        }
        println!(
            "  {:<6} pid {:>7}  handled {:>4}  queued {}/{} (high {})  restarts {}  rss {:>5} KiB  last exit: {}",
            c.id,
            s.pid,
            s.handled,
            s.queued,
            s.capacity,
            s.queued_high,
            c.restarts,
            s.rss_bytes.unwrap_or(0) >> 10,
            c.last_exit.map_or("-".to_string(), |e| e.to_string()),
        );
    }
    Ok(cache_restarts)
}

fn main() -> procession::Result<()> {
    let demo = std::env::var_os("OPERATE_DEMO").is_some();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(
            child("web", false).limits(Limits::new().cpu_affinity([0]).nice(5).rlimit(
                Resource::RLIMIT_NOFILE,
                256,
                256,
            )),
        )
        .child(
            child("cache", true).limits(Limits::new().memory_limit(address_space() + (128 << 20))),
        )
        .child(child("audit", false))
        .spawn()?;
    let web = sup.child::<Service>("web")?;
    println!(
        "service tree started (supervisor pid {}); Ctrl-C stops it",
        sup.pid()
    );
    let mut n = 0u64;
    loop {
        n += 1;
        for _ in 0..100 {
            web.tell(Work(n))?;
        }
        println!("tick {n}:");
        let restarts = show(&sup)?;
        if demo && restarts >= 1 {
            println!("cache was restarted after running out of memory; sending SIGINT to myself");
            nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT).ok();
            // The shutdown runs on procession's signal thread and ends the program.
            std::thread::park_timeout(Duration::from_secs(60));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
