//! Python's `multiprocessing.Manager` example, ported: worker processes update a dict and
//! a list that live in a manager's server process, through proxies.
//!
//! ```python
//! from multiprocessing import Process, Manager
//!
//! def f(i, d, l):
//!     d[i] = i * i
//!     l.append(10 + i)
//!
//! if __name__ == '__main__':
//!     with Manager() as manager:
//!         d = manager.dict()
//!         l = manager.list(range(5))
//!         ps = [Process(target=f, args=(i, d, l)) for i in range(10)]
//!         for p in ps: p.start()
//!         for p in ps: p.join()
//!         print(d)
//!         print(l)
//! ```
//!
//! The list starts with 5 elements and each of the 10 workers appends one: 15 in the end
//! (the appends in the order the workers ran).
//!
//! Run with `cargo run --release --example seed_manager`.

use std::collections::HashSet;

use procession::manager::{Manager, SharedList, SharedMap};
use procession::prelude::*;

/// The parent's "go": run `f`, then end the process.
#[derive(Serialize, Deserialize, Message)]
struct Go;

/// A worker process; its spawn argument carries `i` and the two proxies.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Go))]
struct Worker {
    i: u64,
    d: SharedMap<u64, u64>,
    l: SharedList<u64>,
}

impl Handler<Go> for Worker {
    fn handle(&mut self, _: Go, cx: &mut Context<Self>) {
        // d[i] = i * i; l.append(10 + i)
        let done = self
            .d
            .insert(self.i, self.i * self.i)
            .and_then(|_| self.l.push(10 + self.i));
        if let Err(e) = done {
            eprintln!("worker {}: {e}", self.i);
        }
        cx.stop();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("main: pid {}", std::process::id());
    let manager = Manager::start()?;
    println!("manager server: pid {}", manager.pid());
    let d = manager.dict::<u64, u64>()?;
    let l = manager.list::<u64>()?;
    for v in 0..5 {
        l.push(v)?;
    }

    let workers = (0..10)
        .map(|i| {
            procession::spawn(Worker {
                i,
                d: d.clone(),
                l: l.clone(),
            })
        })
        .collect::<procession::Result<Vec<ActorRef<Worker>>>>()?;
    let pids: HashSet<u32> = workers.iter().map(|w| w.pid()).collect();
    for w in &workers {
        w.tell(Go)?;
    }
    for w in &workers {
        w.join()?;
    }
    println!(
        "{} workers in {} processes joined",
        workers.len(),
        pids.len()
    );

    let mut entries = d.snapshot()?;
    entries.sort_unstable();
    let dict: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    println!("{{{}}}", dict.join(", "));
    println!("{:?}", l.snapshot()?);
    println!("list length: {}", l.len()?);

    manager.shutdown()?;
    println!("manager shut down");
    Ok(())
}
