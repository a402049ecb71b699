//! Python's `multiprocessing` queue example, ported: ten processes each put one item into
//! one queue, and the parent collects all ten.
//!
//! ```python
//! def f(q):
//!     q.put([42, None, 'hello'])
//!
//! if __name__ == '__main__':
//!     q = Queue()
//!     p = Process(target=f, args=(q,))
//!     p.start()
//!     print(q.get())    # prints "[42, None, 'hello']"
//!     p.join()
//! ```
//!
//! Run with `cargo run --release --example seed_queue`.

use std::time::Duration;

use procession::prelude::*;
use procession::queue::Queue;

/// One item: the sender's number, its pid, and a greeting.
type Item = (u32, u32, String);

/// The parent's "go": put one item, then stop.
#[derive(Serialize, Deserialize, Message)]
struct PutOne;

/// A worker: the shared queue and its number, given at spawn.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(PutOne))]
struct Putter {
    queue: Queue<Item>,
    num: u32,
}

impl Handler<PutOne> for Putter {
    fn handle(&mut self, _: PutOne, cx: &mut Context<Self>) {
        if let Err(e) = self.queue.put((self.num, cx.pid(), "hello".into())) {
            eprintln!("worker {}: cannot put: {e}", self.num);
        }
        cx.stop();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue = Queue::<Item>::unbounded()?;
    let workers = (0..10)
        .map(|num| {
            procession::spawn(Putter {
                queue: queue.clone(),
                num,
            })
        })
        .collect::<procession::Result<Vec<ActorRef<Putter>>>>()?;
    for w in &workers {
        w.tell(PutOne)?;
    }
    for _ in 0..10 {
        let (num, pid, text) = queue.get_timeout(Duration::from_secs(60))?;
        println!("got {text:?} from worker {num} (pid {pid})");
    }
    for (num, w) in workers.iter().enumerate() {
        let exit = w.join()?;
        if exit != Exit::Normal {
            return Err(format!("worker {num} ended badly: {exit}").into());
        }
    }
    println!("collected 10 items; queue empty: {}", queue.is_empty());
    Ok(())
}
