//! `multiprocessing` semantics (issue 8, items 10–12): an atomic `Barrier.reset` and the
//! barrier action, a `Lock` left held by a process that exits cleanly, `Lock::locked`,
//! queue shutdown and close, clonable pipe ends, `active_children`, an actor's parent and
//! daemon flag, and `procession::wait`. Each test would fail on the behaviour it is named
//! after.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use procession::prelude::*;
use procession::sync::{Barrier, Lock, SyncError};

/// Tell: acquire the lock, forget the guard (so it is never released), stop cleanly.
#[derive(Serialize, Deserialize, Message)]
struct HoldAndQuit;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(HoldAndQuit))]
struct Holder {
    lock: Lock,
}

impl Handler<HoldAndQuit> for Holder {
    fn handle(&mut self, _: HoldAndQuit, cx: &mut Context<Self>) {
        std::mem::forget(self.lock.acquire().expect("nobody held it"));
        cx.stop();
    }
}

#[test]
fn a_lock_held_by_an_actor_that_exits_cleanly_is_taken_over_with_owner_died() {
    let lock = Lock::new().unwrap();
    let holder: ActorRef<Holder> = procession::spawn(Holder { lock: lock.clone() }).unwrap();
    holder.tell(HoldAndQuit).unwrap();
    assert_eq!(holder.join_timeout(LONG).unwrap(), Exit::Normal);
    assert!(lock.locked(), "the holder left it held");
    match lock.acquire_timeout(LONG) {
        Some(Err(died)) => drop(died.into_inner()),
        Some(Ok(_)) => panic!("expected OwnerDied, got a clean acquire"),
        None => panic!("the lock of a process that exited was never recovered"),
    }
    assert!(!lock.locked());
}

#[test]
fn lock_locked_tells_whether_it_is_held() {
    let lock = Lock::new().unwrap();
    assert!(!lock.locked());
    let held = lock.acquire().unwrap();
    assert!(lock.locked());
    drop(held);
    assert!(!lock.locked());
}

/// Waits until `n` parties wait at `b`.
fn wait_for_waiters(b: &Barrier, n: u32) {
    let deadline = std::time::Instant::now() + LONG;
    while b.n_waiting() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "parties never arrived"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn parties_that_wait_again_right_after_a_reset_find_the_barrier_whole() {
    let b = Barrier::new(4).unwrap();
    let parties: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                let first = b.wait_timeout(LONG);
                // At once, as a party that handles the reset by retrying would.
                let second = b.wait_timeout(LONG);
                (first, second)
            })
        })
        .collect();
    wait_for_waiters(&b, 3);
    b.reset();
    wait_for_waiters(&b, 3);
    assert!(!b.is_broken());
    b.wait_timeout(LONG).unwrap(); // the fourth party of the new round
    for p in parties {
        let (first, second) = p.join().unwrap();
        assert_eq!(first, Err(SyncError::BrokenBarrier));
        assert!(second.is_ok(), "the retry saw {second:?}");
    }
}

#[test]
fn the_barrier_action_runs_once_before_any_party_is_released() {
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let b = Barrier::new(3).unwrap().with_action(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    let parties: Vec<_> = (0..3)
        .map(|_| {
            let (b, runs) = (b.clone(), runs.clone());
            std::thread::spawn(move || {
                b.wait_timeout(LONG).unwrap();
                runs.load(Ordering::SeqCst)
            })
        })
        .collect();
    for p in parties {
        assert_eq!(p.join().unwrap(), 1, "released before the action ran");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_barrier_action_breaks_the_barrier_for_the_others() {
    let plain = Barrier::new(2).unwrap();
    let other = {
        let b = plain.clone();
        std::thread::spawn(move || b.wait_timeout(LONG))
    };
    wait_for_waiters(&plain, 1);
    let with_action = plain.clone().with_action(|| panic!("action failed"));
    let last = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        with_action.wait_timeout(LONG)
    }));
    assert!(last.is_err(), "the action's panic goes on in its caller");
    assert_eq!(other.join().unwrap(), Err(SyncError::BrokenBarrier));
    assert!(plain.is_broken());
}

// ---------------------------------------------------------------------------------------
// Queue shutdown and close (Python 3.13).

use procession::queue::{pipe, simplex, JoinableQueue, PipeSender, Queue, RecvError};
use procession::TellError;

#[test]
fn a_shut_down_queue_refuses_puts_and_delivers_what_it_held_then_shut_down() {
    let q = Queue::<u32>::bounded(8).unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.shutdown(false);
    assert!(q.is_shut_down());
    assert!(matches!(q.put(3), Err(TellError::ShutDown(3))));
    assert_eq!(q.get_timeout(LONG), Ok(1));
    assert_eq!(q.get_timeout(LONG), Ok(2));
    assert_eq!(q.get_timeout(LONG), Err(RecvError::ShutDown));
}

#[test]
fn an_immediate_shutdown_discards_what_the_queue_held() {
    let q = Queue::<u32>::bounded(8).unwrap();
    q.put(1).unwrap();
    q.shutdown(true);
    assert_eq!(q.get_timeout(LONG), Err(RecvError::ShutDown));
    assert!(q.is_empty());
}

#[test]
fn a_getter_waiting_on_an_empty_queue_gets_shut_down_from_another_process() {
    let q = Queue::<u32>::bounded(8).unwrap();
    let waiting = {
        let q = q.clone();
        std::thread::spawn(move || q.get_timeout(LONG))
    };
    let closer: ActorRef<Shutter> = procession::spawn(Shutter { q: q.clone() }).unwrap();
    closer.ask_timeout(ShutItDown, LONG).unwrap();
    assert_eq!(waiting.join().unwrap(), Err(RecvError::ShutDown));
    assert!(matches!(q.put(1), Err(TellError::ShutDown(1))));
    stop_and_join(&closer);
}

#[test]
fn an_immediate_shutdown_of_a_joinable_queue_counts_discarded_items_done() {
    let q = JoinableQueue::<u32>::new().unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(!q.join_timeout(Duration::ZERO));
    q.shutdown(true);
    assert!(q.join_timeout(LONG), "join still waits for discarded items");
}

#[test]
fn close_stops_puts_through_this_handle_only_in_this_process() {
    let q = Queue::<u32>::bounded(8).unwrap();
    let other_process: ActorRef<Shutter> = procession::spawn(Shutter { q: q.clone() }).unwrap();
    q.close();
    assert!(matches!(q.put(1), Err(TellError::ShutDown(1))));
    other_process.ask_timeout(PutOne(5), LONG).unwrap().unwrap();
    assert_eq!(q.get_timeout(LONG), Ok(5), "gets and other processes go on");
    stop_and_join(&other_process);
}

/// Ask: shut the queue down.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct ShutItDown;

/// Ask: put one item.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(), String>)]
struct PutOne(u32);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(ShutItDown, PutOne))]
struct Shutter {
    q: Queue<u32>,
}

impl Handler<ShutItDown> for Shutter {
    fn handle(&mut self, _: ShutItDown, _cx: &mut Context<Self>) {
        self.q.shutdown(false);
    }
}

impl Handler<PutOne> for Shutter {
    fn handle(&mut self, PutOne(n): PutOne, _cx: &mut Context<Self>) -> Result<(), String> {
        self.q.put(n).map_err(|e| e.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// Pipe ends are Clone.

/// Keeps a pipe sender until it stops; sends on it when asked.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(SendOn))]
struct KeepsSender {
    tx: PipeSender<u32>,
}

/// Ask: send this value on the kept sender.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = bool)]
struct SendOn(u32);

impl Handler<SendOn> for KeepsSender {
    fn handle(&mut self, SendOn(n): SendOn, _cx: &mut Context<Self>) -> bool {
        self.tx.send_timeout(n, LONG).is_ok()
    }
}

#[test]
fn a_cloned_sender_keeps_the_pipe_open_until_every_clone_in_every_process_is_gone() {
    let (tx, rx) = simplex::<u32>().unwrap();
    let other: ActorRef<KeepsSender> = procession::spawn(KeepsSender { tx: tx.clone() }).unwrap();
    let here = tx.clone();
    drop(tx);
    here.send(1).unwrap();
    drop(here);
    assert_eq!(rx.recv_timeout(LONG), Ok(1));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(50)),
        Err(RecvError::Timeout),
        "no EOF while the actor holds a clone"
    );
    assert!(other.ask_timeout(SendOn(2), LONG).unwrap());
    assert_eq!(rx.recv_timeout(LONG), Ok(2));
    stop_and_join(&other);
    assert_eq!(rx.recv_timeout(LONG), Err(RecvError::Eof));
}

#[test]
fn cloned_receivers_each_take_distinct_values_and_together_take_all() {
    let (tx, rx) = simplex::<u32>().unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(v) = rx.recv_timeout(LONG) {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    for i in 0..1000 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let mut all: Vec<u32> = readers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    drop(rx);
}

#[test]
fn a_cloned_duplex_end_sends_and_receives_on_the_same_pipe() {
    let (a, b) = pipe::<String>().unwrap();
    let a2 = a.clone();
    a2.send("from the clone".into()).unwrap();
    assert_eq!(b.recv_timeout(LONG).unwrap(), "from the clone");
    b.send("to either".into()).unwrap();
    assert_eq!(a.recv_timeout(LONG).unwrap(), "to either");
    drop(a);
    b.send("still open".into()).unwrap();
    assert_eq!(a2.recv_timeout(LONG).unwrap(), "still open");
    drop(a2);
    assert_eq!(b.recv_timeout(LONG), Err(RecvError::Eof));
}

// ---------------------------------------------------------------------------------------
// active_children, an actor's parent and daemon flag.

/// Ask: (parent pid, is daemon, whether the parent is a `Spawner`).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (u32, bool, bool))]
struct Lineage;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Lineage))]
struct Kin;

impl Handler<Lineage> for Kin {
    fn handle(&mut self, _: Lineage, cx: &mut Context<Self>) -> (u32, bool, bool) {
        (
            cx.parent_pid(),
            cx.is_daemon(),
            cx.parent::<Spawner>().is_some(),
        )
    }
}

/// Ask: spawn a `Kin` (daemon or not), ask it its lineage, and report it with the
/// spawner's own pid and whether the kin is among the spawner's active children.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ((u32, bool, bool), u32, bool))]
struct SpawnKin(bool);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(SpawnKin))]
struct Spawner;

impl Handler<SpawnKin> for Spawner {
    fn handle(
        &mut self,
        SpawnKin(daemon): SpawnKin,
        cx: &mut Context<Self>,
    ) -> ((u32, bool, bool), u32, bool) {
        let kin: ActorRef<Kin> = cx
            .spawn_with(Kin, procession::SpawnOptions::new().daemon(daemon))
            .unwrap();
        let lineage = kin.ask_timeout(Lineage, LONG).unwrap();
        let listed = procession::active_children()
            .iter()
            .any(|c| c.id() == kin.id() && c.is_daemon() == daemon);
        kin.stop().unwrap();
        kin.join_timeout(LONG).unwrap();
        (lineage, cx.pid(), listed)
    }
}

#[test]
fn an_actor_spawned_by_the_root_sees_the_root_as_parent_and_no_parent_actor() {
    let kin: ActorRef<Kin> = procession::spawn(Kin).unwrap();
    let (parent, daemon, parent_is_actor) = kin.ask_timeout(Lineage, LONG).unwrap();
    assert_eq!(parent, std::process::id());
    assert!(!daemon);
    assert!(!parent_is_actor);
    stop_and_join(&kin);
}

#[test]
fn an_actor_spawned_by_an_actor_sees_that_actor_as_parent_and_its_daemon_flag() {
    let spawner: ActorRef<Spawner> = procession::spawn(Spawner).unwrap();
    for daemon in [false, true] {
        let ((parent, is_daemon, parent_is_spawner), spawner_pid, listed) =
            spawner.ask_timeout(SpawnKin(daemon), LONG).unwrap();
        assert_eq!(parent, spawner_pid);
        assert_eq!(is_daemon, daemon);
        assert!(parent_is_spawner);
        assert!(listed, "the spawner's active_children lists its child");
    }
    stop_and_join(&spawner);
}

#[test]
fn active_children_lists_running_actors_of_this_process_daemons_included_and_drops_ended_ones() {
    let plain: ActorRef<Kin> = procession::spawn(Kin).unwrap();
    let daemon: ActorRef<Kin> =
        procession::spawn_with(Kin, procession::SpawnOptions::new().daemon(true)).unwrap();
    let find = |id: u64| {
        procession::active_children()
            .into_iter()
            .find(|c| c.id() == id)
    };
    let p = find(plain.id()).expect("the non-daemon is listed");
    assert_eq!((p.pid(), p.is_daemon()), (plain.pid(), false));
    assert_eq!(p.actor::<Kin>(), Some(plain.clone()));
    assert!(
        p.actor::<Spawner>().is_none(),
        "typed access checks the type"
    );
    assert!(find(daemon.id()).expect("the daemon is listed").is_daemon());
    stop_and_join(&plain);
    assert!(find(plain.id()).is_none(), "an ended actor is not active");
    assert!(find(daemon.id()).is_some());
    stop_and_join(&daemon);
    assert!(find(daemon.id()).is_none());
}

// ---------------------------------------------------------------------------------------
// procession::wait.

#[test]
fn wait_returns_the_actor_that_ended_among_several_objects() {
    let kin: ActorRef<Kin> = procession::spawn(Kin).unwrap();
    let (_tx, rx) = simplex::<u32>().unwrap();
    let q = Queue::<u32>::bounded(4).unwrap();
    let objects: [&dyn procession::Waitable; 3] = [&rx, &kin, &q];
    assert!(procession::wait(&objects, Some(Duration::from_millis(20))).is_empty());
    kin.stop().unwrap();
    assert_eq!(procession::wait(&objects, Some(LONG)), vec![1]);
    assert_eq!(kin.join_timeout(Duration::ZERO).unwrap(), Exit::Stopped);
}

#[test]
fn wait_wakes_for_a_value_sent_from_another_process() {
    let (tx, rx) = simplex::<u32>().unwrap();
    let other: ActorRef<KeepsSender> = procession::spawn(KeepsSender { tx }).unwrap();
    let q = Queue::<u32>::bounded(4).unwrap();
    let waiter = {
        let rx = rx.clone();
        let q = q.clone();
        std::thread::spawn(move || procession::wait(&[&q, &rx], Some(LONG)))
    };
    assert!(other.ask_timeout(SendOn(9), LONG).unwrap());
    assert_eq!(waiter.join().unwrap(), vec![1]);
    assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(9));
    stop_and_join(&other);
}

#[test]
fn wait_counts_eof_and_a_shut_down_queue_as_ready() {
    let (tx, rx) = simplex::<u32>().unwrap();
    let q = Queue::<u32>::bounded(4).unwrap();
    drop(tx);
    q.shutdown(false);
    assert_eq!(procession::wait(&[&rx, &q], Some(LONG)), vec![0, 1]);
    assert_eq!(rx.recv_timeout(Duration::ZERO), Err(RecvError::Eof));
    assert_eq!(q.get_timeout(Duration::ZERO), Err(RecvError::ShutDown));
}
