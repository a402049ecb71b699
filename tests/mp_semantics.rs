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
