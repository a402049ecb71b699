//! Python's daemon processes, ported: when a process ends normally, it waits for its
//! non-daemon children, and its daemon children are killed.
//!
//! ```python
//! def launcher(go):
//!     Process(target=idle, daemon=True).start()     # killed when launcher ends
//!     Process(target=work, args=(go,)).start()      # waited for
//! ```
//!
//! Here a `Launcher` actor spawns an idle daemon (`SpawnOptions::daemon(true)`) and a
//! non-daemon worker that waits for a "go" event. The launcher is asked to stop: it does
//! not exit while its worker runs. Once the worker is let go and ends, the launcher's
//! process ends, and its daemon is killed with it: its pid disappears.
//!
//! Run with `cargo run --release --example seed_daemon`.

use std::time::Duration;

use procession::prelude::*;
use procession::sync::Event;
use procession::SpawnOptions;

/// Generous: nothing in this example waits nearly this long.
const PATIENCE: Duration = Duration::from_secs(60);

/// A daemon that does nothing: it waits for messages until it is killed.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles())]
struct Idler;

/// The worker's job: wait for "go", then stop.
#[derive(Serialize, Deserialize, Message)]
struct Work;

/// A non-daemon worker.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Work))]
struct Worker {
    go: Event,
}

impl Handler<Work> for Worker {
    fn handle(&mut self, _: Work, cx: &mut Context<Self>) {
        if self.go.wait_timeout(PATIENCE) {
            println!("worker (pid {}): got go, finishing", cx.pid());
        } else {
            println!("worker (pid {}): no go in time, finishing", cx.pid());
        }
        cx.stop();
    }
}

/// Spawn a daemon and a non-daemon worker; reply with references to both.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(ActorRef<Idler>, ActorRef<Worker>), String>)]
struct Launch;

/// The parent of both.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Launch))]
struct Launcher {
    go: Event,
}

impl Handler<Launch> for Launcher {
    fn handle(
        &mut self,
        _: Launch,
        cx: &mut Context<Self>,
    ) -> Result<(ActorRef<Idler>, ActorRef<Worker>), String> {
        let daemon = cx
            .spawn_with::<Idler>(Idler, SpawnOptions::new().daemon(true))
            .map_err(|e| e.to_string())?;
        let worker = cx
            .spawn::<Worker>(Worker {
                go: self.go.clone(),
            })
            .map_err(|e| e.to_string())?;
        worker.tell(Work).map_err(|e| e.to_string())?;
        Ok((daemon, worker))
    }
}

/// Whether `pid` is a running process (not gone, not a zombie).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Waits (at most `PATIENCE`) until `/proc/<pid>` is gone: `join` returns as soon as the
/// exit is recorded, a moment before the zygote releases the pid.
fn wait_pid_gone(pid: u32) -> bool {
    let proc_dir = format!("/proc/{pid}");
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::path::Path::new(&proc_dir).exists() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let go = Event::new()?;
    let launcher = procession::spawn::<Launcher>(Launcher { go: go.clone() })?;
    let (daemon, worker) = launcher.ask(Launch)??;
    println!("launcher pid {}", launcher.pid());
    println!("daemon pid {}", daemon.pid());
    println!("worker pid {}", worker.pid());

    launcher.stop()?;
    println!("launcher asked to stop");
    if launcher.join_timeout(Duration::from_millis(300)).is_err() {
        println!("launcher still running: it waits for its non-daemon worker");
    }
    println!(
        "daemon pid {} running: {}",
        daemon.pid(),
        running(daemon.pid())
    );

    go.set();
    println!("worker exited: {}", worker.join_timeout(PATIENCE)?);
    println!("launcher exited: {}", launcher.join_timeout(PATIENCE)?);
    println!("daemon exited: {}", daemon.join_timeout(PATIENCE)?);
    println!(
        "daemon pid {} running: {}",
        daemon.pid(),
        running(daemon.pid())
    );
    if wait_pid_gone(daemon.pid()) {
        println!("daemon pid {} is gone from /proc", daemon.pid());
    }
    Ok(())
}
