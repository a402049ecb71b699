//! A semaphore limiting concurrency, as in Python's
//! `with sem: ...` examples: six workers, but a `Semaphore(2)` lets at most two work at
//! once. A shared `Value` counts the workers inside; each prints it on entering and
//! leaving, and the parent prints the largest count seen (at most 2).
//!
//! ```python
//! def worker(sem, active, i):
//!     with sem:
//!         with active.get_lock(): active.value += 1
//!         print(i, 'enter', active.value); time.sleep(0.05)
//!         with active.get_lock(): active.value -= 1
//!         print(i, 'leave')
//! ```
//!
//! Run with `cargo run --release --example seed_semaphore`.

use std::time::Duration;

use procession::prelude::*;
use procession::shared::Value;
use procession::sync::Semaphore;

const WORKERS: u32 = 6;
const AT_ONCE: u32 = 2;

/// The parent's "go": work once under the semaphore, then stop.
#[derive(Serialize, Deserialize, Message)]
struct Work;

/// A worker: the shared semaphore and counters, and its number.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Work))]
struct Worker {
    sem: Semaphore,
    active: Value<u32>,
    max_active: Value<u32>,
    num: u32,
}

impl Handler<Work> for Worker {
    fn handle(&mut self, _: Work, cx: &mut Context<Self>) {
        // Err(OwnerDied) still holds a permit (one returned by a dead holder).
        let permit = self.sem.acquire().unwrap_or_else(|died| died.into_inner());
        let now = self.active.fetch_add(1) + 1;
        let mut seen = self.max_active.load();
        while now > seen {
            match self.max_active.compare_exchange(seen, now) {
                Ok(_) => break,
                Err(actual) => seen = actual,
            }
        }
        println!("worker {} enter (active: {now})", self.num);
        std::thread::sleep(Duration::from_millis(50)); // the "work"
        let left = self.active.fetch_sub(1) - 1;
        println!("worker {} leave (active: {left})", self.num);
        drop(permit); // gives the permit back
        cx.stop();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sem = Semaphore::new(AT_ONCE)?;
    let active = Value::new(0u32)?;
    let max_active = Value::new(0u32)?;
    let workers = (0..WORKERS)
        .map(|num| {
            procession::spawn(Worker {
                sem: sem.clone(),
                active: active.clone(),
                max_active: max_active.clone(),
                num,
            })
        })
        .collect::<procession::Result<Vec<ActorRef<Worker>>>>()?;
    for w in &workers {
        w.tell(Work)?;
    }
    for (num, w) in workers.iter().enumerate() {
        let exit = w.join()?;
        if exit != Exit::Normal {
            return Err(format!("worker {num} ended badly: {exit}").into());
        }
    }
    println!(
        "max concurrent workers observed: {} (the semaphore allows {AT_ONCE})",
        max_active.load()
    );
    println!("permits free at the end: {}", sem.value());
    Ok(())
}
