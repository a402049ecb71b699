//! `multiprocessing` semantics (issue 8, items 10–12): an atomic `Barrier.reset` and the
//! barrier action, a `Lock` left held by a process that exits cleanly, and
//! `Lock::locked`. Each test would fail on the behaviour it is named after.

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

use procession::queue::{JoinableQueue, Queue, RecvError};
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
