//! Python's `multiprocessing` pipe example, ported and extended to both directions: the
//! child sends `[42, None, 'hello']` to the parent, the parent sends questions back, the
//! child answers each, and when the parent closes its end the child sees end of file.
//!
//! ```python
//! def f(conn):
//!     conn.send([42, None, 'hello'])
//!     conn.close()
//!
//! if __name__ == '__main__':
//!     parent_conn, child_conn = Pipe()
//!     p = Process(target=f, args=(child_conn,))
//!     p.start()
//!     print(parent_conn.recv())   # prints "[42, None, 'hello']"
//!     p.join()
//! ```
//!
//! Run with `cargo run --release --example seed_pipe`.

use std::time::Duration;

use procession::prelude::*;
use procession::queue::{pipe, PipeEnd, RecvError};

/// What travels in the pipe, both ways: like Python's `[42, None, 'hello']`.
type Packet = (i64, Option<i64>, String);

/// The parent's "go": greet, then answer until the parent closes its end. The reply is
/// how many questions were answered.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<u32, String>)]
struct Converse;

/// The child: its end of the pipe, given at spawn.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Converse))]
struct Child {
    conn: PipeEnd<Packet>,
}

impl Handler<Converse> for Child {
    fn handle(&mut self, _: Converse, cx: &mut Context<Self>) -> Result<u32, String> {
        let pid = cx.pid();
        self.conn
            .send((42, None, "hello".into()))
            .map_err(|e| e.to_string())?;
        let mut answered = 0;
        loop {
            match self.conn.recv() {
                Ok((n, extra, text)) => {
                    println!("child (pid {pid}) received ({n}, {extra:?}, {text:?})");
                    let answer = (n * 2, Some(pid as i64), format!("{text}, answered"));
                    self.conn.send(answer).map_err(|e| e.to_string())?;
                    answered += 1;
                }
                Err(RecvError::Eof) => {
                    println!("child (pid {pid}) sees end of file: the parent closed its end");
                    return Ok(answered);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (parent_conn, child_conn) = pipe::<Packet>()?;
    let child = procession::spawn::<Child>(Child { conn: child_conn })?;
    println!(
        "parent (pid {}), child (pid {})",
        std::process::id(),
        child.pid()
    );

    // The conversation blocks the child's handler until we close our end, so ask from
    // another thread.
    let asker = {
        let child = child.clone();
        std::thread::spawn(move || child.ask_timeout(Converse, Duration::from_secs(60)))
    };
    let timeout = Duration::from_secs(60);
    println!("parent received {:?}", parent_conn.recv_timeout(timeout)?);
    for (n, text) in [(1, "how are you"), (20, "what is twice 20")] {
        parent_conn.send((n, None, text.into()))?;
        println!("parent received {:?}", parent_conn.recv_timeout(timeout)?);
    }
    drop(parent_conn);
    let answered = asker.join().map_err(|_| "the asking thread panicked")???;
    println!("child answered {answered} questions");
    child.stop()?;
    println!("child exited: {}", child.join()?);
    Ok(())
}
