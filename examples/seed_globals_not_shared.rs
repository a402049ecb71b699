//! Python's "global variables are not shared" pitfall, ported: each process has its own
//! copy of a global, so what the children change never shows in the parent.
//!
//! ```python
//! counter = 1
//! items = [0]
//!
//! def work(i):
//!     global counter
//!     counter += 100
//!     items.append(i)
//!     print('child', i, counter, items)
//!
//! if __name__ == '__main__':
//!     ps = [Process(target=work, args=(i,)) for i in (1, 2)]
//!     for p in ps: p.start()
//!     for p in ps: p.join()
//!     print('parent', counter, items)   # still 1 [0]
//! ```
//!
//! To share data, use [`procession::shared::Value`] and [`Array`](procession::shared::Array)
//! (see `seed_value_array`), a queue, or messages. Run with
//! `cargo run --release --example seed_globals_not_shared`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use procession::prelude::*;

/// A global counter: every process has its own.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A global list: every process has its own.
static ITEMS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Change this process's globals and reply with what it sees.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (u64, Vec<u32>))]
struct ChangeGlobals;

/// A child, numbered by its spawn argument.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(ChangeGlobals))]
struct Child {
    num: u32,
}

fn globals() -> (u64, Vec<u32>) {
    let items = ITEMS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (COUNTER.load(Ordering::SeqCst), items)
}

impl Handler<ChangeGlobals> for Child {
    fn handle(&mut self, _: ChangeGlobals, cx: &mut Context<Self>) -> (u64, Vec<u32>) {
        COUNTER.fetch_add(100, Ordering::SeqCst);
        ITEMS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.num);
        let (counter, items) = globals();
        println!(
            "child {} (pid {}) changed its copy: COUNTER = {counter}, ITEMS = {items:?}",
            self.num,
            cx.pid()
        );
        (counter, items)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    COUNTER.store(1, Ordering::SeqCst);
    ITEMS.lock().unwrap_or_else(|e| e.into_inner()).push(0);
    let (counter, items) = globals();
    println!("parent before: COUNTER = {counter}, ITEMS = {items:?}");
    match procession::start_method() {
        procession::StartMethod::Fork => {
            println!("(start method fork: each child starts from a copy of the parent's memory)")
        }
        _ => println!(
            "(start method forkserver or spawn: each child starts from the program's \
             initial globals, not from the parent's current ones)"
        ),
    }

    for num in [1, 2] {
        let child = procession::spawn::<Child>(Child { num })?;
        child.ask(ChangeGlobals)?;
        child.stop()?;
        child.join()?;
    }

    let (counter, items) = globals();
    println!("parent after: COUNTER = {counter}, ITEMS = {items:?}");
    println!("the children changed their own copies; the parent's are unchanged");
    Ok(())
}
