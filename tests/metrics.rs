//! Per-actor counters (issue 10, item 3): messages received and handled, asks answered,
//! handler time (sum and max), mailbox depth and its high-water mark, restarts and the
//! last exit, the process's RSS and CPU time; read through `ActorRef::stats`, a
//! supervisor's `which_children`, and `runtime_snapshot` for the whole runtime.

mod common;
mod sup_common;

use std::time::{Duration, Instant};

use common::{Gate, LONG};
use procession::prelude::*;
use procession::supervisor::{ChildSpec, Strategy, Supervisor};

/// Tell: do nothing.
#[derive(Serialize, Deserialize, Message)]
struct Nop;

/// Ask: spin on the CPU for this many milliseconds, then answer.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct Spin(u64);

/// Tell: wait at the gate at this path.
#[derive(Serialize, Deserialize, Message)]
struct Hold(String);

/// Tell: panic.
#[derive(Serialize, Deserialize, Message)]
struct Crash;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Nop, Spin, Hold, Crash))]
struct Counted;

impl Handler<Nop> for Counted {
    fn handle(&mut self, _: Nop, _: &mut Context<Self>) {}
}

impl Handler<Spin> for Counted {
    /// Spins until `ms` have passed on the clock **and** this process has been charged
    /// `ms` of CPU time: on a loaded machine it may be descheduled while it spins.
    fn handle(&mut self, Spin(ms): Spin, _: &mut Context<Self>) {
        let want = Duration::from_millis(ms);
        let (start, cpu0) = (Instant::now(), own_cpu_time());
        while start.elapsed() < want || own_cpu_time().saturating_sub(cpu0) < want {
            std::hint::spin_loop();
        }
    }
}

/// This process's user + system CPU time, as `/proc/self/stat` reports it (the figure
/// `stats()` reads), in clock ticks.
fn own_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
        .max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

impl Handler<Hold> for Counted {
    fn handle(&mut self, Hold(gate): Hold, _: &mut Context<Self>) {
        common::wait_at_gate(&gate);
    }
}

impl Handler<Crash> for Counted {
    fn handle(&mut self, _: Crash, _: &mut Context<Self>) {
        panic!("crash on request");
    }
}

#[test]
fn stats_count_tells_and_asks_and_the_time_spent_in_handlers() {
    let a: ActorRef<Counted> = procession::spawn(Counted).unwrap();
    for _ in 0..5 {
        a.tell(Nop).unwrap();
    }
    a.ask_timeout(Spin(20), LONG).unwrap();
    a.ask_timeout(Spin(1), LONG).unwrap();
    let s = a.stats();
    assert_eq!((s.received, s.handled, s.asks_answered), (7, 7, 2));
    assert!(s.busy_max >= Duration::from_millis(20), "{:?}", s.busy_max);
    assert!(s.busy >= Duration::from_millis(21), "{:?}", s.busy);
    assert!(s.busy_max < s.busy);
    assert_eq!((s.queued, s.restarts, s.last_exit.clone()), (0, 0, None));
    assert!(s.running);
    assert_eq!(s.pid, a.pid());
    assert!(s.rss_bytes.unwrap() > 0);
    assert!(
        s.cpu_time.unwrap() >= Duration::from_millis(10),
        "{:?}",
        s.cpu_time
    );
    common::stop_and_join(&a);
    let after = a.stats();
    assert_eq!(after.last_exit, Some(Exit::Stopped));
    assert!(!after.running);
    assert_eq!(
        (after.rss_bytes, after.cpu_time),
        (None, None),
        "no process to read"
    );
}

#[test]
fn the_high_water_mark_records_the_deepest_backlog() {
    let a: ActorRef<Counted> = procession::spawn(Counted).unwrap();
    let gate = Gate::new();
    a.tell(Hold(gate.path())).unwrap();
    let arrived = gate.arrival(LONG);
    for _ in 0..10 {
        a.tell(Nop).unwrap();
    }
    assert_eq!(a.stats().queued, 10);
    arrived.release();
    a.ask_timeout(Spin(0), LONG).unwrap();
    let s = a.stats();
    assert_eq!(s.queued, 0);
    // 10, or 11 if the ask was queued before the actor took the first of the ten.
    assert!((10..=11).contains(&s.queued_high), "{}", s.queued_high);
    assert!(s.capacity >= 10);
    common::stop_and_join(&a);
}

#[test]
fn counters_add_up_across_a_restart_which_shows_with_the_last_exit() {
    let sup = sup_common::start(
        Supervisor::new(Strategy::OneForOne).child(ChildSpec::worker::<Counted>("c", Counted)),
    );
    let child = sup.child::<Counted>("c").unwrap();
    child.ask_timeout(Spin(0), LONG).unwrap();
    let first = sup_common::pid_of(&sup, "c");
    child.tell(Crash).unwrap();
    sup_common::wait_restarted(&sup, "c", first);
    child.ask_timeout(Spin(0), LONG).unwrap();
    let s = child.stats();
    assert_eq!(s.restarts, 1);
    assert!(
        matches!(s.last_exit, Some(Exit::Panicked { .. })),
        "{:?}",
        s.last_exit
    );
    assert_eq!(s.handled, 3, "both incarnations' messages");
    let listed = sup_common::info(&sup, "c")
        .stats
        .expect("which_children carries the stats");
    assert_eq!((listed.id, listed.handled), (child.id(), 3));
}

#[test]
fn the_runtime_snapshot_lists_every_actor_and_leaves_out_queues() {
    let a: ActorRef<Counted> = procession::spawn(Counted).unwrap();
    let b: ActorRef<Counted> = procession::spawn(Counted).unwrap();
    let q = procession::queue::Queue::<u32>::bounded(4).unwrap();
    q.put(1).unwrap();
    b.tell(Nop).unwrap();
    b.ask_timeout(Spin(0), LONG).unwrap();
    let snap = procession::runtime_snapshot().unwrap();
    let find = |id: u64| snap.iter().find(|s| s.id == id);
    assert_eq!(find(a.id()).map(|s| s.handled), Some(0));
    assert_eq!(find(b.id()).map(|s| s.handled), Some(2));
    assert!(
        snap.iter().all(|s| !s.name.contains("u32")),
        "a queue is not an actor: {snap:?}"
    );
    common::stop_and_join(&a);
    common::stop_and_join(&b);
}
