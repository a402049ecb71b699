//! Python's classic `multiprocessing.Pool` example, ported, and what Python cannot do:
//! survive a worker that crashes mid-task.
//!
//! ```python
//! from multiprocessing import Pool
//!
//! def f(x):
//!     return x * x
//!
//! if __name__ == '__main__':
//!     with Pool(5) as p:
//!         print(p.map(f, [1, 2, 3]))
//! ```
//!
//! Then `imap_unordered` and `apply_async`, and a task that aborts its worker process:
//! Python's `Pool` would wait for its result for ever; here the caller gets an error,
//! the worker is replaced, and the pool keeps working.
//!
//! Run with `cargo run --release --example seed_pool`.

use std::time::Duration;

use procession::pool::Pool;
use procession::prelude::*;

/// `f(x) = x * x`.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct F(u64);

/// A task that crashes its worker process (SIGABRT).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Crash;

/// The pool's worker.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(F, Crash))]
struct Squarer;

impl Handler<F> for Squarer {
    fn handle(&mut self, F(x): F, _cx: &mut Context<Self>) -> u64 {
        x * x
    }
}

impl Handler<Crash> for Squarer {
    fn handle(&mut self, _: Crash, _cx: &mut Context<Self>) -> u64 {
        std::process::abort()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::<Squarer>::new(5, Squarer)?;

    // print(p.map(f, [1, 2, 3]))
    println!("{:?}", pool.map([1, 2, 3].map(F))?);

    // Results in the order they finish; sorted for printing.
    let mut unordered = pool
        .imap_unordered((1..=10).map(F))?
        .collect::<procession::Result<Vec<u64>>>()?;
    unordered.sort_unstable();
    println!("imap_unordered(f, 1..=10), sorted: {unordered:?}");

    let pending = pool.apply_async(F(10));
    println!(
        "apply_async(f, (10,)).get() -> {}",
        pending.get(Duration::from_secs(60))?
    );

    // Python's Pool hangs here for ever; this one reports the crash.
    match pool.apply(Crash) {
        Err(e) => println!("worker crash -> error: {e}"),
        Ok(_) => unreachable!("the task aborts its process"),
    }
    let restarts: u32 = pool.restarts().iter().sum();
    println!("workers replaced: {restarts}");
    println!("the pool still works: {:?}", pool.map([4, 5, 6].map(F))?);

    pool.close();
    pool.join()?;
    println!("pool closed and joined");
    Ok(())
}
