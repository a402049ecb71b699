//! The synchronization primitives and shared values across processes: a SIGKILLed holder
//! of a `Lock`, an `RLock` or a `Semaphore` permit hands it on with `OwnerDied`; a lock
//! held in one process excludes the others; a `Barrier` passes all parties, and breaks
//! (for every other party) when a waiting party dies, when a wait times out, or when it is
//! aborted, and `reset` mends it; a `BoundedSemaphore` refuses to be over-released;
//! `Value` and `Array` counts stay exact under contention from two processes; `Event`
//! and `Condition` wake waiters in other processes; `SingleInstance` refuses a second
//! holder in another process and is free again once its holder is SIGKILLed.
//!
//! Every actor is killed and joined when its test ends, even when an assertion fails.
//! Actors that must be inside a handler (holding something) before the test acts are held
//! at a [`common::Gate`]; no test sleeps to synchronize.

mod common;

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use procession::__private::Dispatch;
use procession::prelude::*;
use procession::shared::{Array, Value};
use procession::sync::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore, SingleInstance, SyncError,
};
use procession::Error;

use common::{wait_at_gate, Gate};

/// Long enough never to be hit in a passing run on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// For the 1M-increment runs: far above what they take even in a debug build.
const COUNTING_PATIENCE: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------------------------------
// Test plumbing.

/// An actor that is killed and joined when the test ends, however it ends.
struct Reaped<A: Dispatch>(ActorRef<A>);

impl<A: Dispatch> Deref for Reaped<A> {
    type Target = ActorRef<A>;
    fn deref(&self) -> &ActorRef<A> {
        &self.0
    }
}

impl<A: Dispatch> Drop for Reaped<A> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.join_timeout(PATIENCE);
    }
}

fn spawn_reaped<A: Dispatch>(args: A::Args) -> Reaped<A> {
    Reaped(procession::spawn(args).unwrap())
}

/// Kills the actor and waits until its death has been recorded.
fn kill_and_join<A: Dispatch>(actor: &ActorRef<A>) {
    actor.kill().unwrap();
    assert_eq!(
        actor.join_timeout(PATIENCE).unwrap(),
        Exit::Signaled(9),
        "the actor was killed by SIGKILL"
    );
}

/// Stops the actor gracefully and checks that it ended with `Exit::Stopped`.
fn stop_and_join<A: Dispatch>(actor: &ActorRef<A>) {
    actor.stop().unwrap();
    assert_eq!(actor.join_timeout(PATIENCE).unwrap(), Exit::Stopped);
}

/// Waits (at most [`PATIENCE`]) until `ready` holds, re-checking every millisecond:
/// for states of shared memory that no event announces (a barrier's waiting count).
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Asks `actor` in a new thread (for handlers that block until the test acts).
fn ask_in_thread<A, M>(actor: &ActorRef<A>, msg: M, timeout: Duration) -> JoinHandle<M::Reply>
where
    A: procession::__private::Handles<M>,
    M: Message,
{
    let actor = actor.clone();
    std::thread::spawn(move || actor.ask_timeout(msg, timeout).unwrap())
}

// ---------------------------------------------------------------------------------------
// A holder of a lock or a permit, kept inside a handler by a gate.

/// What a [`Holder`] acquires.
#[derive(Serialize, Deserialize)]
enum Held {
    Lock(Lock),
    /// Acquired twice (re-entrantly).
    RLock(RLock),
    Permit(Semaphore),
    /// A shared value's own lock.
    ValueLock(Value<u64>),
}

/// Acquire what you hold, then wait at the gate at this path; release when let go.
#[derive(Serialize, Deserialize, Message)]
struct HoldAtGate(String);

/// Acquire a permit of the semaphore you hold, and keep it (reply once taken).
#[derive(Serialize, Deserialize, Message)]
struct TakePermit;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(HoldAtGate, TakePermit))]
struct Holder {
    held: Held,
}

impl Handler<HoldAtGate> for Holder {
    fn handle(&mut self, HoldAtGate(gate): HoldAtGate, _cx: &mut Context<Self>) {
        match &self.held {
            Held::Lock(lock) => {
                let _held = lock.acquire().unwrap();
                wait_at_gate(&gate);
            }
            Held::RLock(lock) => {
                let _outer = lock.acquire().unwrap();
                let _inner = lock.acquire().unwrap();
                wait_at_gate(&gate);
            }
            Held::Permit(sem) => {
                let _permit = sem.acquire().unwrap();
                wait_at_gate(&gate);
            }
            Held::ValueLock(value) => {
                let mut held = value.get_lock().unwrap();
                *held = 1; // a half-done update, as the dead holder leaves it
                wait_at_gate(&gate);
            }
        }
    }
}

impl Handler<TakePermit> for Holder {
    fn handle(&mut self, _: TakePermit, _cx: &mut Context<Self>) {
        match &self.held {
            // The receiving side of a signal consumes the permit.
            Held::Permit(sem) => sem.acquire().unwrap().forget(),
            _ => panic!("TakePermit needs a semaphore"),
        }
    }
}

/// Spawns a holder of `held`, and returns once it holds it (it waits at the gate).
fn holder_at_gate(held: Held) -> (Reaped<Holder>, Gate, common::Arrived) {
    let holder = spawn_reaped::<Holder>(Holder { held });
    let gate = Gate::new();
    holder.tell(HoldAtGate(gate.path())).unwrap();
    let arrived = gate.arrival(PATIENCE);
    (holder, gate, arrived)
}

#[test]
fn a_sigkilled_lock_holder_gives_the_next_acquirer_owner_died() {
    let lock = Lock::new().unwrap();
    let (holder, _gate, _arrived) = holder_at_gate(Held::Lock(lock.clone()));
    assert!(lock.try_acquire().is_none(), "the holder has it");

    kill_and_join(&holder);
    let died = lock.acquire().expect_err("the holder died holding it");
    let guard = died.into_inner();
    assert!(lock.try_acquire().is_none(), "into_inner's guard holds it");
    drop(guard);
    assert!(
        matches!(lock.try_acquire(), Some(Ok(_))),
        "after the release, the next acquire is clean"
    );
}

#[test]
fn a_sigkilled_rlock_holder_gives_the_next_acquirer_owner_died() {
    let lock = RLock::new().unwrap();
    let (holder, _gate, _arrived) = holder_at_gate(Held::RLock(lock.clone()));
    assert!(lock.try_acquire().is_none(), "the holder has it");

    kill_and_join(&holder);
    let died = lock
        .acquire_timeout(PATIENCE)
        .expect("free once its holder died")
        .expect_err("the holder died holding it");
    let guard = died.into_inner();
    let again = lock.acquire().expect("re-entrant, and consistent again");
    drop(again);
    drop(guard);
    assert!(matches!(lock.try_acquire(), Some(Ok(_))));
}

#[test]
fn a_sigkilled_semaphore_holder_gives_the_next_acquirer_owner_died() {
    let sem = Semaphore::new(1).unwrap();
    let (holder, _gate, _arrived) = holder_at_gate(Held::Permit(sem.clone()));
    assert!(
        sem.try_acquire().is_none(),
        "the holder has the only permit"
    );

    kill_and_join(&holder);
    let got = sem
        .acquire_timeout(PATIENCE)
        .expect("the dead holder's permit is returned");
    assert!(
        got.is_err(),
        "the permit came from a dead holder: OwnerDied"
    );
    assert_eq!(sem.value(), 0, "the returned permit was taken, once");
    drop(got);
    assert!(
        matches!(sem.try_acquire(), Some(Ok(_))),
        "after the permit is given back, clean"
    );
}

#[test]
fn a_sigkilled_value_lock_holder_gives_the_next_get_lock_owner_died() {
    let value = Value::new(0u64).unwrap();
    let (holder, _gate, _arrived) = holder_at_gate(Held::ValueLock(value.clone()));

    kill_and_join(&holder);
    let Err(died) = value.get_lock() else {
        panic!("the holder died holding it, but get_lock was clean");
    };
    let mut repaired = died.into_inner();
    assert_eq!(*repaired, 1, "the dead holder's write is there");
    *repaired = 0;
    drop(repaired);
    let Ok(clean) = value.get_lock() else {
        panic!("get_lock is clean again after the repair");
    };
    assert_eq!(*clean, 0);
}

#[test]
fn a_semaphore_permit_taken_by_a_process_that_then_exits_is_not_handed_out_again() {
    // The signalling pattern: one process releases, another acquires (and keeps it: the
    // permit is consumed, not held). Nothing is owed back when the acquirer exits.
    let sem = Semaphore::new(0).unwrap();
    let taker = spawn_reaped::<Holder>(Holder {
        held: Held::Permit(sem.clone()),
    });
    let took = ask_in_thread(&taker, TakePermit, PATIENCE);
    sem.release().unwrap();
    took.join().unwrap();
    stop_and_join(&taker);

    assert_eq!(sem.value(), 0);
    assert!(
        sem.try_acquire().is_none(),
        "one release, one acquire: no permit is left to take"
    );
}

#[test]
fn a_lock_held_in_one_process_excludes_the_others_until_released() {
    let lock = Lock::new().unwrap();
    let (holder, _gate, arrived) = holder_at_gate(Held::Lock(lock.clone()));
    assert!(lock.try_acquire().is_none());
    assert!(lock.acquire_timeout(Duration::from_millis(50)).is_none());

    arrived.release();
    let got = lock
        .acquire_timeout(PATIENCE)
        .expect("released by the holder");
    assert!(got.is_ok(), "a clean release is not OwnerDied");
    drop(got);
    stop_and_join(&holder);
}

/// A lock handle, to keep.
#[derive(Serialize, Deserialize, Message)]
struct KeepLock(Lock);

/// Whether a kept lock can be acquired now.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = bool)]
struct TryKeptLock;

#[derive(Actor)]
#[actor(handles(KeepLock, TryKeptLock), args = ())]
struct LockKeeper {
    lock: Option<Lock>,
}

impl Actor for LockKeeper {
    type Args = ();
    fn create((): (), _cx: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(LockKeeper { lock: None })
    }
}

impl Handler<KeepLock> for LockKeeper {
    fn handle(&mut self, KeepLock(lock): KeepLock, _cx: &mut Context<Self>) {
        self.lock = Some(lock);
    }
}

impl Handler<TryKeptLock> for LockKeeper {
    fn handle(&mut self, _: TryKeptLock, _cx: &mut Context<Self>) -> bool {
        self.lock
            .as_ref()
            .is_some_and(|l| matches!(l.try_acquire(), Some(Ok(_))))
    }
}

#[test]
fn a_lock_handle_given_in_a_message_is_the_same_lock_in_the_actor() {
    let lock = Lock::new().unwrap();
    let keeper = spawn_reaped::<LockKeeper>(());
    keeper.tell(KeepLock(lock.clone())).unwrap();
    assert!(keeper.ask(TryKeptLock).unwrap(), "free: the actor takes it");
    let held = lock.acquire().unwrap();
    assert!(
        !keeper.ask(TryKeptLock).unwrap(),
        "held here: refused there"
    );
    drop(held);
    stop_and_join(&keeper);
}

#[test]
fn a_lock_moved_into_a_told_message_reaches_the_actor_even_if_it_was_the_last_handle() {
    let keeper = spawn_reaped::<LockKeeper>(());
    // `tell` drops the message once it is queued: the actor now has the only handle.
    keeper.tell(KeepLock(Lock::new().unwrap())).unwrap();
    assert!(
        keeper.ask(TryKeptLock).unwrap(),
        "the actor could not open the lock (rejected frames: {})",
        keeper.bad_frames()
    );
    stop_and_join(&keeper);
}

// ---------------------------------------------------------------------------------------
// Barrier.

/// How a barrier wait ended, as an actor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Waited {
    Passed(u32),
    Broken,
    TimedOut,
}

impl From<Result<u32, SyncError>> for Waited {
    fn from(r: Result<u32, SyncError>) -> Waited {
        match r {
            Ok(i) => Waited::Passed(i),
            Err(SyncError::BrokenBarrier) => Waited::Broken,
            Err(SyncError::Timeout) => Waited::TimedOut,
            Err(other) => panic!("unexpected barrier error {other}"),
        }
    }
}

/// Wait at the barrier (no timeout); reply how it ended.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Waited)]
struct WaitAtBarrier;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WaitAtBarrier))]
struct Party {
    barrier: Barrier,
}

impl Handler<WaitAtBarrier> for Party {
    fn handle(&mut self, _: WaitAtBarrier, _cx: &mut Context<Self>) -> Waited {
        self.barrier.wait().into()
    }
}

#[test]
fn a_barrier_passes_all_parties_in_every_generation() {
    let barrier = Barrier::new(3).unwrap();
    let a = spawn_reaped::<Party>(Party {
        barrier: barrier.clone(),
    });
    let b = spawn_reaped::<Party>(Party {
        barrier: barrier.clone(),
    });
    for round in 0..3 {
        let wa = ask_in_thread(&a, WaitAtBarrier, PATIENCE);
        let wb = ask_in_thread(&b, WaitAtBarrier, PATIENCE);
        let mine = Waited::from(barrier.wait_timeout(PATIENCE));
        let all = [mine, wa.join().unwrap(), wb.join().unwrap()];
        let indexes: HashSet<u32> = all
            .iter()
            .map(|w| match w {
                Waited::Passed(i) => *i,
                other => panic!("round {round}: a party got {other:?}"),
            })
            .collect();
        assert_eq!(indexes, HashSet::from([0, 1, 2]), "round {round}");
    }
    assert!(!barrier.is_broken());
    stop_and_join(&a);
    stop_and_join(&b);
}

#[test]
fn a_barrier_broken_by_a_dead_party_returns_an_error_to_all_the_others() {
    let barrier = Barrier::new(3).unwrap();
    let a = spawn_reaped::<Party>(Party {
        barrier: barrier.clone(),
    });
    let b = spawn_reaped::<Party>(Party {
        barrier: barrier.clone(),
    });
    let victim = {
        let a = a.clone();
        std::thread::spawn(move || a.ask_timeout(WaitAtBarrier, PATIENCE))
    };
    let survivor = ask_in_thread(&b, WaitAtBarrier, PATIENCE);
    wait_until("both actors wait at the barrier", || {
        barrier.n_waiting() == 2
    });

    kill_and_join(&a);
    assert_eq!(
        survivor.join().unwrap(),
        Waited::Broken,
        "the other waiting party learns it (well within its ask timeout)"
    );
    assert!(matches!(
        victim.join().unwrap(),
        Err(Error::ActorDied { .. })
    ));
    assert!(barrier.is_broken());
    assert_eq!(
        barrier.wait_timeout(PATIENCE),
        Err(SyncError::BrokenBarrier),
        "the last party, arriving late, is told at once"
    );
    stop_and_join(&b);
}

#[test]
fn a_barrier_wait_that_times_out_breaks_it_for_the_other_parties() {
    let barrier = Barrier::new(3).unwrap();
    let a = spawn_reaped::<Party>(Party {
        barrier: barrier.clone(),
    });
    let waiting = ask_in_thread(&a, WaitAtBarrier, PATIENCE);
    wait_until("the actor waits at the barrier", || {
        barrier.n_waiting() == 1
    });

    // Two of three parties: the third never comes.
    assert_eq!(
        barrier.wait_timeout(Duration::from_millis(100)),
        Err(SyncError::Timeout)
    );
    assert_eq!(waiting.join().unwrap(), Waited::Broken);
    assert!(barrier.is_broken());
    assert_eq!(
        barrier.wait_timeout(PATIENCE),
        Err(SyncError::BrokenBarrier)
    );
    stop_and_join(&a);
}

#[test]
fn an_aborted_barrier_breaks_for_the_waiters_and_reset_mends_it() {
    let barrier = Barrier::new(2).unwrap();
    let a = spawn_reaped::<Party>(Party {
        barrier: barrier.clone(),
    });
    let waiting = ask_in_thread(&a, WaitAtBarrier, PATIENCE);
    wait_until("the actor waits at the barrier", || {
        barrier.n_waiting() == 1
    });

    barrier.abort();
    assert_eq!(waiting.join().unwrap(), Waited::Broken);
    assert_eq!(
        a.ask(WaitAtBarrier).unwrap(),
        Waited::Broken,
        "still broken"
    );

    barrier.reset();
    assert!(!barrier.is_broken());
    assert_eq!(barrier.n_waiting(), 0);
    let waiting = ask_in_thread(&a, WaitAtBarrier, PATIENCE);
    let mine = Waited::from(barrier.wait_timeout(PATIENCE));
    let mut both = [mine, waiting.join().unwrap()];
    both.sort_by_key(|w| format!("{w:?}"));
    assert_eq!(both, [Waited::Passed(0), Waited::Passed(1)]);
    stop_and_join(&a);
}

#[test]
fn a_barrier_reset_while_a_party_waits_gives_that_party_broken_barrier() {
    let barrier = Barrier::new(2).unwrap();
    let a = spawn_reaped::<Party>(Party {
        barrier: barrier.clone(),
    });
    let waiting = ask_in_thread(&a, WaitAtBarrier, PATIENCE);
    wait_until("the actor waits at the barrier", || {
        barrier.n_waiting() == 1
    });

    barrier.reset();
    assert_eq!(
        waiting.join().unwrap(),
        Waited::Broken,
        "a reset breaks the current generation, as Python's does: the waiter did not pass"
    );
    assert!(!barrier.is_broken(), "and leaves the barrier usable");
    stop_and_join(&a);
}

// ---------------------------------------------------------------------------------------
// BoundedSemaphore.

#[test]
fn over_releasing_a_bounded_semaphore_is_an_error() {
    let sem = BoundedSemaphore::new(2).unwrap();
    assert_eq!(sem.release(), Err(SyncError::OverReleased { bound: 2 }));
    assert_eq!(sem.value(), 2, "the refused release changed nothing");

    drop(sem.acquire().unwrap());
    assert_eq!(sem.release(), Err(SyncError::OverReleased { bound: 2 }));
    assert_eq!(sem.value(), 2);
}

#[test]
fn a_plain_semaphore_may_be_released_above_its_initial_value() {
    let sem = Semaphore::new(1).unwrap();
    sem.release().unwrap();
    assert_eq!(sem.value(), 2);
}

// ---------------------------------------------------------------------------------------
// Value and Array under contention.

/// How a [`Bumper`] increments.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Increment {
    /// `*value.get_lock() += 1`.
    ValueUnderItsLock,
    /// `value.fetch_add(1)`, no lock.
    ValueFetchAdd,
    /// `array.get_lock()[0] += 1`.
    ArrayElementUnderItsLock,
    /// A plain read-modify-write through `value.raw()`, under a separate `Lock`.
    RawValueUnderALock,
}

/// Increment `times` times, this way.
#[derive(Serialize, Deserialize, Message)]
struct Bump {
    how: Increment,
    times: u64,
}

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Bump))]
struct Bumper {
    value: Value<u64>,
    array: Array<u64>,
    lock: Lock,
}

impl Handler<Bump> for Bumper {
    fn handle(&mut self, Bump { how, times }: Bump, _cx: &mut Context<Self>) {
        for _ in 0..times {
            match how {
                Increment::ValueUnderItsLock => *self.value.get_lock().unwrap() += 1,
                Increment::ValueFetchAdd => {
                    self.value.fetch_add(1);
                }
                Increment::ArrayElementUnderItsLock => self.array.get_lock().unwrap()[0] += 1,
                Increment::RawValueUnderALock => {
                    let _held = self.lock.acquire().unwrap();
                    let p = self.value.raw();
                    // SAFETY: every writer holds `lock`; the pointer is valid while
                    // `self.value` lives.
                    unsafe { p.write_volatile(p.read_volatile() + 1) };
                }
            }
        }
    }
}

const PER_PROCESS: u64 = 1_000_000;

/// Two actors increment `PER_PROCESS` times each, at the same time; returns the final
/// value and array element 0.
fn two_processes_increment(how: Increment) -> (u64, u64) {
    let value = Value::new(0u64).unwrap();
    let array = Array::new(4, 0u64).unwrap();
    let lock = Lock::new().unwrap();
    let bumpers: Vec<Reaped<Bumper>> = (0..2)
        .map(|_| {
            spawn_reaped::<Bumper>(Bumper {
                value: value.clone(),
                array: array.clone(),
                lock: lock.clone(),
            })
        })
        .collect();
    let runs: Vec<_> = bumpers
        .iter()
        .map(|b| {
            ask_in_thread(
                b,
                Bump {
                    how,
                    times: PER_PROCESS,
                },
                COUNTING_PATIENCE,
            )
        })
        .collect();
    for run in runs {
        run.join().unwrap();
    }
    for b in &bumpers {
        stop_and_join(b);
    }
    let element = array.get(0).unwrap();
    assert_eq!(&array.to_vec()[1..], &[0, 0, 0], "other elements untouched");
    (value.get(), element)
}

#[test]
fn value_count_is_exact_under_its_lock_with_two_processes_of_1m_increments() {
    let (value, _) = two_processes_increment(Increment::ValueUnderItsLock);
    assert_eq!(value, 2 * PER_PROCESS);
}

#[test]
fn value_count_is_exact_with_fetch_add_from_two_processes_of_1m_increments() {
    let (value, _) = two_processes_increment(Increment::ValueFetchAdd);
    assert_eq!(value, 2 * PER_PROCESS);
}

#[test]
fn array_element_count_is_exact_under_its_lock_with_two_processes_of_1m_increments() {
    let (_, element) = two_processes_increment(Increment::ArrayElementUnderItsLock);
    assert_eq!(element, 2 * PER_PROCESS);
}

#[test]
fn a_lock_makes_raw_value_increments_exact_with_two_processes_of_1m_increments() {
    let (value, _) = two_processes_increment(Increment::RawValueUnderALock);
    assert_eq!(value, 2 * PER_PROCESS);
}

// ---------------------------------------------------------------------------------------
// Event and Condition.

/// Set `ready`, then wait for `event` at most PATIENCE; reply whether it was set.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = bool)]
struct WaitForEvent;

/// Set `event`.
#[derive(Serialize, Deserialize, Message)]
struct SetEvent;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WaitForEvent, SetEvent))]
struct EventUser {
    event: Event,
    ready: Event,
}

impl Handler<WaitForEvent> for EventUser {
    fn handle(&mut self, _: WaitForEvent, _cx: &mut Context<Self>) -> bool {
        self.ready.set();
        self.event.wait_timeout(PATIENCE)
    }
}

impl Handler<SetEvent> for EventUser {
    fn handle(&mut self, _: SetEvent, _cx: &mut Context<Self>) {
        self.event.set();
    }
}

#[test]
fn an_event_set_in_one_process_wakes_a_waiter_in_another() {
    let event = Event::new().unwrap();
    let ready = Event::new().unwrap();
    let user = spawn_reaped::<EventUser>(EventUser {
        event: event.clone(),
        ready: ready.clone(),
    });
    let waiting = ask_in_thread(&user, WaitForEvent, PATIENCE * 2);
    assert!(ready.wait_timeout(PATIENCE), "the actor is about to wait");
    assert!(!event.is_set());
    event.set();
    assert!(waiting.join().unwrap(), "the waiter saw the event set");
    stop_and_join(&user);
}

#[test]
fn an_event_set_by_an_actor_is_seen_by_the_parent_and_clear_resets_it() {
    let event = Event::new().unwrap();
    let user = spawn_reaped::<EventUser>(EventUser {
        event: event.clone(),
        ready: Event::new().unwrap(),
    });
    assert!(!event.wait_timeout(Duration::from_millis(10)));
    user.tell(SetEvent).unwrap();
    assert!(event.wait_timeout(PATIENCE));
    assert!(event.is_set());
    event.clear();
    assert!(!event.is_set());
    assert!(!event.wait_timeout(Duration::from_millis(10)));
    stop_and_join(&user);
}

/// Under the condition's lock: set `waiting`, then wait (with no timeout) until the shared
/// value equals this; reply the value seen.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct WaitUntilValueIs(u32);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WaitUntilValueIs))]
struct CondWaiter {
    cond: Condition,
    value: Value<u32>,
    waiting: Event,
}

impl Handler<WaitUntilValueIs> for CondWaiter {
    fn handle(&mut self, WaitUntilValueIs(want): WaitUntilValueIs, _cx: &mut Context<Self>) -> u32 {
        let mut held = self.cond.acquire().unwrap();
        self.waiting.set();
        while self.value.load() != want {
            held = self.cond.wait(held).unwrap();
        }
        drop(held);
        self.value.load()
    }
}

fn cond_waiter(cond: &Condition, value: &Value<u32>) -> (Reaped<CondWaiter>, Event) {
    let waiting = Event::new().unwrap();
    let waiter = spawn_reaped::<CondWaiter>(CondWaiter {
        cond: cond.clone(),
        value: value.clone(),
        waiting: waiting.clone(),
    });
    (waiter, waiting)
}

#[test]
fn a_condition_notify_wakes_a_waiter_in_another_process() {
    let cond = Condition::new().unwrap();
    let value = Value::new(0u32).unwrap();
    let (waiter, waiting) = cond_waiter(&cond, &value);
    let seen = ask_in_thread(&waiter, WaitUntilValueIs(7), PATIENCE);
    assert!(waiting.wait_timeout(PATIENCE));

    // The waiter set `waiting` under the lock; getting the lock means it is in `wait`.
    let held = cond.acquire().unwrap();
    value.store(7);
    cond.notify();
    drop(held);
    assert_eq!(seen.join().unwrap(), 7);
    stop_and_join(&waiter);
}

#[test]
fn a_condition_notify_all_wakes_every_waiter_in_other_processes() {
    let cond = Condition::new().unwrap();
    let value = Value::new(0u32).unwrap();
    let (w1, waiting1) = cond_waiter(&cond, &value);
    let (w2, waiting2) = cond_waiter(&cond, &value);
    let seen1 = ask_in_thread(&w1, WaitUntilValueIs(3), PATIENCE);
    let seen2 = ask_in_thread(&w2, WaitUntilValueIs(3), PATIENCE);
    assert!(waiting1.wait_timeout(PATIENCE) && waiting2.wait_timeout(PATIENCE));

    let held = cond.acquire().unwrap();
    value.store(3);
    cond.notify_all();
    drop(held);
    assert_eq!(seen1.join().unwrap(), 3);
    assert_eq!(seen2.join().unwrap(), 3);
    stop_and_join(&w1);
    stop_and_join(&w2);
}

#[test]
fn a_condition_wait_for_times_out_when_nobody_notifies() {
    let cond = Condition::new().unwrap();
    let held = cond.acquire().unwrap();
    let (again, ready) = cond.wait_for(held, Duration::from_millis(20), || false);
    assert!(!ready);
    let held = again.expect("the lock is held again, cleanly");
    drop(held);
    assert!(cond.acquire().is_ok());
}

// ---------------------------------------------------------------------------------------
// SingleInstance.

/// The outcome of `SingleInstance::acquire` in an actor.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Taken {
    Acquired,
    AlreadyRunning(Option<u32>),
    Failed(String),
}

/// Try to take the single-instance guard of this name, and keep it if taken.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Taken)]
struct TakeInstance(String);

#[derive(Actor)]
#[actor(handles(TakeInstance), args = ())]
struct InstanceHolder {
    held: Vec<SingleInstance>,
}

impl Actor for InstanceHolder {
    type Args = ();
    fn create((): (), _cx: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(InstanceHolder { held: Vec::new() })
    }
}

impl Handler<TakeInstance> for InstanceHolder {
    fn handle(&mut self, TakeInstance(name): TakeInstance, _cx: &mut Context<Self>) -> Taken {
        match SingleInstance::acquire(&name) {
            Ok(guard) => {
                self.held.push(guard);
                Taken::Acquired
            }
            Err(Error::AlreadyRunning { pid, .. }) => Taken::AlreadyRunning(pid),
            Err(other) => Taken::Failed(other.to_string()),
        }
    }
}

/// A fresh single-instance name; its lock file is removed on drop.
struct InstanceName(String);

impl InstanceName {
    fn new() -> InstanceName {
        static N: AtomicU32 = AtomicU32::new(0);
        InstanceName(format!(
            "procession-test-sync-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

impl Drop for InstanceName {
    fn drop(&mut self) {
        if let Ok(guard) = SingleInstance::acquire(&self.0) {
            let _ = std::fs::remove_file(guard.path());
        }
    }
}

#[test]
fn single_instance_held_here_refuses_an_actor_naming_this_process() {
    let name = InstanceName::new();
    let guard = SingleInstance::acquire(&name.0).unwrap();
    let actor = spawn_reaped::<InstanceHolder>(());
    assert_eq!(
        actor.ask(TakeInstance(name.0.clone())).unwrap(),
        Taken::AlreadyRunning(Some(std::process::id()))
    );
    drop(guard);
    assert_eq!(
        actor.ask(TakeInstance(name.0.clone())).unwrap(),
        Taken::Acquired,
        "free once this process dropped it"
    );
    stop_and_join(&actor);
}

#[test]
fn single_instance_held_by_an_actor_refuses_a_second_copy_until_the_holder_is_sigkilled() {
    let name = InstanceName::new();
    let actor = spawn_reaped::<InstanceHolder>(());
    assert_eq!(
        actor.ask(TakeInstance(name.0.clone())).unwrap(),
        Taken::Acquired
    );
    match SingleInstance::acquire(&name.0) {
        Err(Error::AlreadyRunning { name: n, pid }) => {
            assert_eq!(n, name.0);
            assert_eq!(pid, Some(actor.pid()), "the holder's pid is named");
        }
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }

    kill_and_join(&actor);
    let guard =
        SingleInstance::acquire(&name.0).expect("the kernel released the dead holder's lock");
    drop(guard);
}
