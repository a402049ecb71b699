//! Python's `multiprocessing` lock example, ported: ten processes print under one lock,
//! so their lines never interleave.
//!
//! ```python
//! def f(l, i):
//!     l.acquire()
//!     try:
//!         print('hello world', i)
//!     finally:
//!         l.release()
//!
//! if __name__ == '__main__':
//!     lock = Lock()
//!     for num in range(10):
//!         Process(target=f, args=(lock, num)).start()
//! ```
//!
//! Each worker prints two lines while it holds the lock; with the lock, each worker's two
//! lines are always adjacent. Run with `cargo run --release --example seed_lock`.

use procession::prelude::*;
use procession::sync::Lock;

/// The parent's "go": print under the lock, then stop.
#[derive(Serialize, Deserialize, Message)]
struct Greet;

/// A worker: the shared lock and its number, given at spawn.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Greet))]
struct Greeter {
    lock: Lock,
    num: u32,
}

impl Handler<Greet> for Greeter {
    fn handle(&mut self, _: Greet, cx: &mut Context<Self>) {
        // Err(OwnerDied) would still hold the lock: a previous holder died mid-print,
        // which is harmless here.
        let _held = self.lock.acquire().unwrap_or_else(|died| died.into_inner());
        println!("hello world {} (pid {})", self.num, cx.pid());
        println!("  goodbye from {}", self.num);
        cx.stop();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lock = Lock::new()?;
    let workers = (0..10)
        .map(|num| {
            procession::spawn(Greeter {
                lock: lock.clone(),
                num,
            })
        })
        .collect::<procession::Result<Vec<ActorRef<Greeter>>>>()?;
    for w in &workers {
        w.tell(Greet)?;
    }
    for (num, w) in workers.iter().enumerate() {
        let exit = w.join()?;
        if exit != Exit::Normal {
            return Err(format!("worker {num} ended badly: {exit}").into());
        }
    }
    println!("all 10 printed under the lock");
    Ok(())
}
