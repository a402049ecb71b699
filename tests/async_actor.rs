//! Async actors (`#[actor(async)]`, `AsyncHandler`, feature `tokio`): handlers that
//! await loopback I/O, timers and other actors, one message at a time, with tasks that
//! run while the actor waits for mail.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::{stop_and_join, Gate, LONG};
use procession::prelude::*;
use procession::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// Sends the line to the address over TCP and replies with the line that comes back.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<String, String>)]
struct Fetch {
    addr: String,
    line: String,
}

/// Sleeps `ms` milliseconds on the runtime, logging its start and end.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct Nap {
    id: u32,
    ms: u64,
}

#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<String>)]
struct Log;

/// Spawns a task that connects to the address and writes `n` lines, a few ms apart,
/// after the handler has returned.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct Ticker {
    addr: String,
    n: u32,
}

/// Asks the sync `Tripler` actor, asynchronously, from the handler.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<u64, String>)]
struct Relay(ActorRef<Tripler>, u64);

/// Connects to the gate at the path and waits there without end (until killed).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct Stuck(String);

#[derive(Serialize, Deserialize, Actor)]
#[actor(async, handles(Fetch, Nap, Log, Ticker, Relay, Stuck))]
struct Net {
    log: Vec<String>,
}

impl AsyncHandler<Fetch> for Net {
    async fn handle(&mut self, f: Fetch, _cx: &mut Context<Self>) -> Result<String, String> {
        let mut conn = tokio::net::TcpStream::connect(&f.addr)
            .await
            .map_err(|e| e.to_string())?;
        conn.write_all(format!("{}\n", f.line).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut back = String::new();
        tokio::io::BufReader::new(conn)
            .read_line(&mut back)
            .await
            .map_err(|e| e.to_string())?;
        Ok(back.trim_end().to_string())
    }
}

impl AsyncHandler<Nap> for Net {
    async fn handle(&mut self, Nap { id, ms }: Nap, _cx: &mut Context<Self>) {
        self.log.push(format!("start {id}"));
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.log.push(format!("end {id}"));
    }
}

impl AsyncHandler<Log> for Net {
    async fn handle(&mut self, _: Log, _cx: &mut Context<Self>) -> Vec<String> {
        self.log.clone()
    }
}

impl AsyncHandler<Ticker> for Net {
    async fn handle(&mut self, Ticker { addr, n }: Ticker, _cx: &mut Context<Self>) {
        tokio::spawn(async move {
            let Ok(mut conn) = tokio::net::TcpStream::connect(&addr).await else {
                return;
            };
            for i in 0..n {
                tokio::time::sleep(Duration::from_millis(3)).await;
                if conn
                    .write_all(format!("tick {i}\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

impl AsyncHandler<Relay> for Net {
    async fn handle(&mut self, Relay(t, x): Relay, _cx: &mut Context<Self>) -> Result<u64, String> {
        t.ask_async_timeout(Triple(x), LONG)
            .await
            .map_err(|e| e.to_string())
    }
}

impl AsyncHandler<Stuck> for Net {
    async fn handle(&mut self, Stuck(path): Stuck, _cx: &mut Context<Self>) {
        if let Ok(mut conn) = tokio::net::UnixStream::connect(&path).await {
            let mut byte = [0u8; 1];
            let _ = conn.read(&mut byte).await;
        }
        std::future::pending::<()>().await;
    }
}

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Triple(u64);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Triple))]
struct Tripler;

impl Handler<Triple> for Tripler {
    fn handle(&mut self, Triple(x): Triple, _cx: &mut Context<Self>) -> u64 {
        3 * x
    }
}

fn net() -> ActorRef<Net> {
    Net { log: Vec::new() }.spawn().expect("spawn Net")
}

fn loopback() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

#[test]
fn an_async_handler_awaits_a_tcp_round_trip_on_loopback() {
    let (listener, addr) = loopback();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(LONG)).unwrap();
        let mut line = String::new();
        BufReader::new(&conn).read_line(&mut line).unwrap();
        (&conn).write_all(line.to_uppercase().as_bytes()).unwrap();
    });
    let a = net();
    let back = a
        .ask_timeout(
            Fetch {
                addr,
                line: "over loopback".into(),
            },
            LONG,
        )
        .unwrap();
    assert_eq!(back.unwrap(), "OVER LOOPBACK");
    server.join().unwrap();
    stop_and_join(&a);
}

#[test]
fn an_async_actor_handles_one_message_at_a_time() {
    let a = net();
    // Three naps queued at once: each handler awaits, and the next waits for it.
    let naps: Vec<_> = (0..3)
        .map(|id| a.ask_async_timeout(Nap { id, ms: 5 }, LONG))
        .collect();
    for r in futures::executor::block_on(futures::future::join_all(naps)) {
        r.unwrap();
    }
    let log = a.ask_timeout(Log, LONG).unwrap();
    assert_eq!(log.len(), 6, "{log:?}");
    for pair in log.chunks(2) {
        let id = pair[0].strip_prefix("start ").expect("a start first");
        assert_eq!(pair[1], format!("end {id}"), "interleaved: {log:?}");
    }
    stop_and_join(&a);
}

#[test]
fn a_task_an_async_actor_spawns_runs_while_the_actor_waits_for_mail() {
    let (listener, addr) = loopback();
    let a = net();
    a.ask_timeout(Ticker { addr, n: 3 }, LONG).unwrap();
    // Nothing more is sent to the actor: the ticks come from its task alone.
    let (conn, _) = listener.accept().expect("the task connected");
    conn.set_read_timeout(Some(LONG)).unwrap();
    let lines: Vec<String> = BufReader::new(conn)
        .lines()
        .take(3)
        .map(|l| l.expect("a tick"))
        .collect();
    assert_eq!(lines, ["tick 0", "tick 1", "tick 2"]);
    stop_and_join(&a);
}

#[test]
fn an_async_handler_asks_another_actor_without_blocking() {
    let a = net();
    let t = Tripler.spawn().unwrap();
    assert_eq!(a.ask_timeout(Relay(t.clone(), 14), LONG).unwrap(), Ok(42));
    stop_and_join(&a);
    stop_and_join(&t);
}

#[test]
fn an_ask_whose_async_handler_is_awaiting_when_the_actor_is_killed_fails_with_actor_died() {
    let a = net();
    let gate = Gate::new();
    let asker = {
        let (a, path) = (a.clone(), gate.path());
        std::thread::spawn(move || a.ask_timeout(Stuck(path), LONG))
    };
    let arrived = gate.arrival(LONG);
    a.kill().unwrap();
    let r = asker.join().unwrap();
    assert!(matches!(r, Err(Error::ActorDied { .. })), "{r:?}");
    drop(arrived);
    assert_eq!(a.join_timeout(LONG).unwrap(), procession::Exit::Signaled(9));
}
