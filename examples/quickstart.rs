//! The README demo: spawn a counter actor in its own process, tell and ask it, stop it.
//!
//! Run with `cargo run --release --example quickstart`.

use procession::prelude::*;

/// Adds to the counter and replies with the new total.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Add(u64);

/// Replies with the pid of the process handling it.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct WhoAreYou;

/// The spawn argument is the actor's own initial state.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Add, WhoAreYou))]
struct Counter {
    total: u64,
}

impl Handler<Add> for Counter {
    fn handle(&mut self, Add(n): Add, _cx: &mut Context<Self>) -> u64 {
        self.total += n;
        self.total
    }
}

impl Handler<WhoAreYou> for Counter {
    fn handle(&mut self, _: WhoAreYou, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

fn main() -> procession::Result<()> {
    let counter: ActorRef<Counter> = procession::spawn(Counter { total: 0 })?;
    println!("main process:    pid {}", std::process::id());
    println!("counter process: pid {} (ActorRef::pid)", counter.pid());
    println!("counter says it runs in pid {}", counter.ask(WhoAreYou)?);

    counter.tell(Add(1))?;
    println!("tell(Add(1)) sent");
    let total = counter.ask(Add(2))?;
    println!("ask(Add(2)) -> {total}");
    assert_eq!(total, 3);

    counter.stop()?;
    println!("stopped: {}", counter.join()?);
    Ok(())
}
