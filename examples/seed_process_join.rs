//! Python's classic `multiprocessing` example, ported: three workers print their pid and
//! their parent's pid, the parent joins them all, then prints "all over".
//!
//! ```python
//! def f(name):
//!     print(name, 'pid', os.getpid(), 'ppid', os.getppid())
//!
//! if __name__ == '__main__':
//!     ps = [Process(target=f, args=(f'worker {i}',)) for i in range(3)]
//!     for p in ps: p.start()
//!     for p in ps: p.join()
//!     print('all over')
//! ```
//!
//! Run with `cargo run --release --example seed_process_join`.

use procession::prelude::*;
use procession::StartMethod;

/// The parent's "go": the worker prints who it is, then stops itself.
#[derive(Serialize, Deserialize, Message)]
struct Report;

/// A worker, numbered by its spawn argument.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Report))]
struct Worker {
    index: u32,
}

impl Handler<Report> for Worker {
    fn handle(&mut self, _: Report, cx: &mut Context<Self>) {
        println!(
            "worker {}: pid {}, ppid {}",
            self.index,
            cx.pid(),
            std::os::unix::process::parent_id()
        );
        cx.stop(); // ends the process after this handler; join() reports Exit::Normal
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("main: pid {}", std::process::id());
    match procession::start_method() {
        StartMethod::Forkserver => println!(
            "(start method forkserver: the runtime's zygote forks the workers, so their \
             ppid is the zygote's pid, not main's, as with Python's forkserver)"
        ),
        StartMethod::Spawn => println!(
            "(start method spawn: the runtime's zygote forks and re-executes the workers, \
             so their ppid is the zygote's pid, not main's)"
        ),
        StartMethod::Fork => println!("(start method fork: main forks the workers itself)"),
    }

    let workers = (0..3)
        .map(|index| procession::spawn(Worker { index }))
        .collect::<procession::Result<Vec<ActorRef<Worker>>>>()?;
    for worker in &workers {
        worker.tell(Report)?;
    }
    for (index, worker) in workers.iter().enumerate() {
        let exit = worker.join()?;
        if exit != Exit::Normal {
            return Err(format!("worker {index} ended badly: {exit}").into());
        }
    }
    println!("all over");
    Ok(())
}
