//! Two hosts over a real NATS server: a ping-pong across them, and a remote worker that is
//! killed and restarted by its supervisor on the other host.
//!
//! ```text
//! cargo run -p procession-nats --example two_hosts
//! ```
//!
//! It starts a `nats-server` on 127.0.0.1 (provisioned into `target/` the first time, see
//! `procession_nats::server`), runs host `a` in this process and host `b` as a child
//! process (this program again, with `--host b`), each with its own runtime and gateway.
//! Hosts on different machines run the same way: give each gateway the server's URL.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use procession::prelude::*;
use procession::supervisor::{Strategy, Supervisor};
use procession_nats::{server::NatsServer, GatewayConfig};

const T: Duration = Duration::from_secs(10);

/// A ball: the receiver sends `Ball(n + 1)` back to `to`, until 5.
#[derive(Serialize, Deserialize, Message)]
struct Ball {
    n: u32,
    to: ActorRef<Player>,
}

/// How many times the ball was hit here.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Hits;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Ball, Hits))]
struct Player {
    hits: u32,
}

impl Handler<Ball> for Player {
    fn handle(&mut self, Ball { n, to }: Ball, cx: &mut Context<Self>) {
        self.hits += 1;
        let host = procession::remote::this_host().map_or_else(String::new, |h| h.host.clone());
        println!("{host}: ball {n}");
        if n < 5 {
            // Reply to the sender, on whichever host it is.
            let _ = to.tell(Ball {
                n: n + 1,
                to: cx.myself(),
            });
        }
    }
}

impl Handler<Hits> for Player {
    fn handle(&mut self, _: Hits, _cx: &mut Context<Self>) -> u32 {
        self.hits
    }
}

/// Squares a number; `Crash` aborts its process.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Square(u64);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Crash;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Square, Crash), args = ())]
struct Worker;

impl Actor for Worker {
    type Args = ();
    fn create(_: (), cx: &mut Context<Self>) -> Result<Self, BoxError> {
        // Registered by its address, the name survives restarts.
        if procession::whereis::<Worker>("worker").is_none() {
            procession::register("worker", &cx.myself())?;
        }
        Ok(Worker)
    }
}

impl Handler<Square> for Worker {
    fn handle(&mut self, Square(x): Square, cx: &mut Context<Self>) -> u64 {
        println!("b: worker (pid {}) squares {x}", cx.pid());
        x * x
    }
}

impl Handler<Crash> for Worker {
    fn handle(&mut self, _: Crash, _cx: &mut Context<Self>) -> u64 {
        std::process::abort()
    }
}

fn host_b(url: &str) -> procession::Result<()> {
    let cfg = GatewayConfig::new(url, "demo", "b");
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(procession_nats::gateway_child(cfg))
        .child(procession::supervisor::ChildSpec::worker::<Worker>(
            "worker",
            (),
        ))
        // A daemon: an error in this program ends it, rather than the program waiting.
        .spawn_with(procession::SpawnOptions::default().daemon(true))?;
    procession_nats::wait_connected(T)?;
    let player = Player { hits: 0 }.spawn()?;
    procession::register("player", &player)?;
    println!("READY");
    std::io::stdout().flush().ok();
    // Run until host a closes our stdin.
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
    player.stop()?;
    player.join()?;
    sup.stop()?;
    sup.join()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--host") {
        return Ok(host_b(&args[3])?);
    }
    let server = NatsServer::start()?;
    println!("nats-server on {}", server.url());

    // Host b: another process tree, with its own runtime and gateway.
    let mut b = Command::new(std::env::current_exe()?)
        .args(["--host", "b", &server.url()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = BufReader::new(b.stdout.take().expect("piped"));
    let mut line = String::new();
    while out.read_line(&mut line)? > 0 && !line.contains("READY") {
        line.clear();
    }
    // Echo what host b prints from now on.
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            println!("{l}");
        }
    });

    // Host a: this process.
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(procession_nats::gateway_child(GatewayConfig::new(
            server.url(),
            "demo",
            "a",
        )))
        .spawn_with(procession::SpawnOptions::default().daemon(true))?;
    procession_nats::wait_connected(T)?;

    // 1. Ping-pong: the ball carries the ref of its sender across hosts.
    let mine = Player { hits: 0 }.spawn()?;
    let theirs: ActorRef<Player> =
        procession_nats::whereis_on("b", "player", T)?.ok_or("no player on b")?;
    theirs.tell(Ball {
        n: 1,
        to: mine.clone(),
    })?;
    // The last hit (5) lands on b: wait for it.
    let deadline = std::time::Instant::now() + T;
    while theirs.ask(Hits)? < 3 {
        if std::time::Instant::now() > deadline {
            return Err("the ping-pong did not finish".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "a: {} hits here, {} on b",
        mine.ask(Hits)?,
        theirs.ask(Hits)?
    );

    // 2. A remote worker, killed and restarted by its supervisor on host b.
    let worker: ActorRef<Worker> =
        procession_nats::whereis_on("b", "worker", T)?.ok_or("no worker on b")?;
    println!("a: 7 squared on b is {}", worker.ask(Square(7))?);
    match worker.ask(Crash) {
        Err(e) => println!("a: the worker died: {e}"),
        Ok(_) => return Err("the worker did not crash".into()),
    }
    // Same address, next incarnation: the ask waits for it.
    println!(
        "a: 8 squared on b is {} (after the restart)",
        worker.ask(Square(8))?
    );

    mine.stop()?;
    mine.join()?;
    sup.stop()?;
    sup.join()?;
    drop(b.stdin.take());
    b.wait()?;
    println!("all over");
    Ok(())
}
