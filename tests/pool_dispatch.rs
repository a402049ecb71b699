//! `Pool` dispatch and lifecycle as Python's `multiprocessing.Pool` (issue 8, item 9):
//! concurrent calls spread over idle workers, a stuck task does not hold back the next
//! one, tasks submitted before `close` run, shared handles in the initializer's
//! arguments work in every worker and every replacement, out-of-range sizes are
//! rejected, `map_async`/`starmap_async` with `on_ready`, and a per-task timeout.
//!
//! Tasks that must overlap meet at a `Barrier` with a timeout: if two of them ran one
//! after the other on one worker, the first would time out waiting for the second.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use procession::pool::{Pool, PoolOptions};
use procession::prelude::*;
use procession::shared::Value;
use procession::sync::Barrier;
use procession::Error;

/// The worker's spawn arguments: a shared counter its `create` increments.
#[derive(Serialize, Deserialize)]
struct Args {
    creates: Value<u64>,
}

/// Waits at the barrier (at most `LONG`) and replies with the worker's pid, or 0 if the
/// barrier broke or timed out.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Meet(Barrier);

/// Squares.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Square(u64);

/// Adds (built from a tuple by `starmap_async`).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Add(u64, u64);

impl From<(u64, u64)> for Add {
    fn from((a, b): (u64, u64)) -> Add {
        Add(a, b)
    }
}

/// Never returns (only a kill ends it).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct Hang;

/// A task that hangs or squares, for one stream of tasks.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
enum Job {
    Hang,
    Square(u64),
}

/// Panics (its worker dies and is replaced).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct Die;

#[derive(Actor)]
#[actor(handles(Meet, Square, Add, Hang, Job, Die), args = Args)]
struct Worker;

impl Actor for Worker {
    type Args = Args;
    fn create(args: Args, _cx: &mut Context<Self>) -> Result<Self, BoxError> {
        args.creates.fetch_add(1);
        Ok(Worker)
    }
}

impl Handler<Meet> for Worker {
    fn handle(&mut self, Meet(b): Meet, cx: &mut Context<Self>) -> u32 {
        match b.wait_timeout(LONG) {
            Ok(_) => cx.pid(),
            Err(_) => 0,
        }
    }
}

impl Handler<Square> for Worker {
    fn handle(&mut self, Square(x): Square, _cx: &mut Context<Self>) -> u64 {
        x * x
    }
}

impl Handler<Add> for Worker {
    fn handle(&mut self, Add(a, b): Add, _cx: &mut Context<Self>) -> u64 {
        a + b
    }
}

impl Handler<Hang> for Worker {
    fn handle(&mut self, _: Hang, _cx: &mut Context<Self>) {
        loop {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Handler<Job> for Worker {
    fn handle(&mut self, job: Job, cx: &mut Context<Self>) -> u64 {
        match job {
            Job::Hang => {
                self.handle(Hang, cx);
                0
            }
            Job::Square(x) => x * x,
        }
    }
}

impl Handler<Die> for Worker {
    fn handle(&mut self, _: Die, _cx: &mut Context<Self>) {
        panic!("told to die");
    }
}

fn args() -> (Args, Value<u64>) {
    let creates = Value::new(0u64).unwrap();
    (
        Args {
            creates: creates.clone(),
        },
        creates,
    )
}

fn pool(n: usize) -> Pool<Worker> {
    Pool::new(n, args().0).unwrap()
}

#[test]
fn two_concurrent_apply_async_calls_run_on_two_workers_at_once() {
    let pool = pool(2);
    let b = Barrier::new(2).unwrap();
    let one = pool.apply_async(Meet(b.clone()));
    let two = pool.apply_async(Meet(b.clone()));
    let (p1, p2) = (one.get(LONG).unwrap(), two.get(LONG).unwrap());
    assert!(
        p1 != 0 && p2 != 0,
        "the tasks did not meet: they ran one after the other"
    );
    assert_ne!(p1, p2);
}

#[test]
fn a_stuck_task_does_not_hold_back_the_next_one_while_a_worker_is_idle() {
    let pool = pool(2);
    let b = Barrier::new(2).unwrap();
    let stuck = pool.apply_async(Meet(b.clone()));
    // Runs on the idle worker while the first task waits for us at the barrier.
    assert_eq!(pool.apply_timeout(Square(7), LONG).unwrap(), 49);
    assert_ne!(
        b.wait_timeout(LONG),
        Err(procession::sync::SyncError::Timeout)
    );
    assert_ne!(stuck.get(LONG).unwrap(), 0);
}

#[test]
fn tasks_submitted_before_close_run_and_join_waits_for_them() {
    let pool = pool(2);
    let results: Vec<_> = (0..20).map(|i| pool.apply_async(Square(i))).collect();
    let mapped = pool.map_async((0..20).map(Square));
    pool.close();
    pool.join_timeout(LONG).unwrap();
    for (i, r) in results.into_iter().enumerate() {
        assert!(r.ready(), "join returned before task {i} was done");
        assert_eq!(r.get(LONG).unwrap(), (i * i) as u64);
    }
    let expected: Vec<u64> = (0..20).map(|i| i * i).collect();
    assert_eq!(mapped.get(LONG).unwrap(), expected);
    assert!(matches!(
        pool.apply_async(Square(1)).get(LONG),
        Err(Error::Runtime(_))
    ));
}

#[test]
fn shared_handles_in_the_initializer_args_work_in_every_worker_and_replacement() {
    let (a, creates) = args();
    let pool = Pool::<Worker>::new(4, a).unwrap();
    assert_eq!(
        creates.load(),
        4,
        "each of the 4 workers opened the shared counter"
    );
    // A replacement decodes the same arguments again.
    assert!(pool.apply_timeout(Die, LONG).is_err());
    assert_eq!(pool.apply_timeout(Square(3), LONG).unwrap(), 9);
    let deadline = std::time::Instant::now() + LONG;
    while creates.load() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "no replacement started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pool.restarts().iter().sum::<u32>(), 1);
}

#[test]
fn a_pool_of_zero_processes_or_zero_maxtasksperchild_is_rejected() {
    assert!(matches!(
        Pool::<Worker>::new(0, args().0),
        Err(Error::InvalidArgument(why)) if why.contains("processes")
    ));
    assert!(matches!(
        Pool::<Worker>::with_options(args().0, PoolOptions::new().processes(1).maxtasksperchild(0)),
        Err(Error::InvalidArgument(why)) if why.contains("maxtasksperchild")
    ));
    assert!(matches!(
        Pool::<Worker>::with_options(args().0, PoolOptions::new().processes(1).chunksize(0)),
        Err(Error::InvalidArgument(why)) if why.contains("chunksize")
    ));
}

#[test]
fn map_async_and_starmap_async_deliver_results_and_call_on_ready() {
    let pool = pool(2);
    let (tx, rx) = mpsc::channel();
    let mapped = pool
        .map_async((1..=5).map(Square))
        .on_ready(move |r| tx.send(r.as_ref().map(|v| v.len()).ok()).unwrap());
    assert_eq!(mapped.get(LONG).unwrap(), vec![1, 4, 9, 16, 25]);
    assert_eq!(rx.recv_timeout(LONG).unwrap(), Some(5));
    let sums = pool.starmap_async::<Add, _>([(1, 2), (3, 4)]);
    assert_eq!(sums.get(LONG).unwrap(), vec![3, 7]);
}

#[test]
fn on_ready_on_a_finished_result_runs_at_once_with_an_error_too() {
    let pool = pool(1);
    let r = pool.apply_async(Die);
    let err = format!("{:?}", r.on_ready(|_| {}).get(LONG).unwrap_err());
    assert!(err.contains("ActorDied"), "got {err}");
    let done = pool.apply_async(Square(2));
    while !done.ready() {
        std::thread::yield_now();
    }
    let (tx, rx) = mpsc::channel();
    let done = done.on_ready(move |r| tx.send(*r.as_ref().unwrap()).unwrap());
    assert_eq!(rx.try_recv().unwrap(), 4, "called at once");
    assert_eq!(done.get(LONG).unwrap(), 4);
}

#[test]
fn a_task_past_its_timeout_fails_alone_and_its_worker_is_replaced() {
    let pool = Pool::<Worker>::with_options(
        args().0,
        PoolOptions::new()
            .processes(1)
            .chunksize(1)
            .task_timeout(Duration::from_millis(200)),
    )
    .unwrap();
    // One worker: the second task waits in its mailbox behind the stuck one.
    let mut results = pool.imap([Job::Hang, Job::Square(5)]).unwrap();
    let stuck = results.next().unwrap();
    assert!(matches!(stuck, Err(Error::Timeout(t)) if t == Duration::from_millis(200)));
    assert_eq!(results.next().unwrap().unwrap(), 25);
    assert!(results.next().is_none());
    assert_eq!(pool.restarts(), [1]);
}
