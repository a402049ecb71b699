//! What both benches of this crate share: the actor they measure, and host b (this bench
//! binary again, run with `PB_HOST_B`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use procession::prelude::*;
use procession::supervisor::{Strategy, Supervisor};
use procession_nats::GatewayConfig;

pub const T: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = ByteBuf)]
pub struct Echo(pub ByteBuf);

#[derive(Serialize, Deserialize, Message)]
pub struct Tick(pub u64);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
pub struct Count;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Echo, Tick, Count))]
pub struct Sink {
    pub n: u64,
}

impl Handler<Echo> for Sink {
    fn handle(&mut self, Echo(b): Echo, _cx: &mut Context<Self>) -> ByteBuf {
        b
    }
}
impl Handler<Tick> for Sink {
    fn handle(&mut self, _: Tick, _cx: &mut Context<Self>) {
        self.n += 1;
    }
}
impl Handler<Count> for Sink {
    fn handle(&mut self, _: Count, _cx: &mut Context<Self>) -> u64 {
        self.n
    }
}

/// Host b: a gateway, a `Sink` registered as "sink", and raw NATS responders on
/// `raw.echo` (replies with the payload) and `raw.count` (replies with how many messages
/// `raw.tick` got). Runs until stdin closes.
pub fn host_b(url: String, name: String) {
    let cfg = GatewayConfig::new(&url, "bench", &name);
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(procession_nats::gateway_child(cfg))
        // A daemon: a panic in main must not leave the program waiting for it.
        .spawn_with(procession::SpawnOptions::default().daemon(true))
        .unwrap();
    procession_nats::wait_connected(T).unwrap();
    let sink = Sink { n: 0 }.spawn().unwrap();
    procession::register("sink", &sink).unwrap();
    if name == "b" {
        procession_nats::Durable::<Sink>::new("bench")
            .unwrap()
            .serve(&sink, procession_nats::DurableOptions::default())
            .unwrap();
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let mut echo = client.subscribe("raw.echo").await.unwrap();
        let mut ticks = client.subscribe("raw.tick").await.unwrap();
        let mut count = client.subscribe("raw.count").await.unwrap();
        let c = client.clone();
        tokio::spawn(async move {
            while let Some(m) = echo.next().await {
                if let Some(r) = m.reply {
                    let _ = c.publish(r, m.payload).await;
                }
            }
        });
        let n = Arc::new(AtomicU64::new(0));
        let n2 = n.clone();
        tokio::spawn(async move {
            while ticks.next().await.is_some() {
                n2.fetch_add(1, Ordering::Relaxed);
            }
        });
        let c = client.clone();
        tokio::spawn(async move {
            while let Some(m) = count.next().await {
                if let Some(r) = m.reply {
                    let v = n.load(Ordering::Relaxed).to_string();
                    let _ = c.publish(r, v.into()).await;
                }
            }
        });
        client.flush().await.unwrap();
    });
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
    drop(rt);
    sink.stop().unwrap();
    sink.join().unwrap();
    sup.stop().unwrap();
    sup.join().unwrap();
}

/// Starts host `name` (this bench binary again) and waits until it is ready. Close its
/// stdin to end it.
pub fn spawn_host(url: &str, name: &str) -> Child {
    let mut h = Command::new(std::env::current_exe().unwrap())
        .env("PB_HOST_B", url)
        .env("PB_HOST_NAME", name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(h.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("READY") {
        line.clear();
    }
    h
}

/// Host a (this process, with its gateway), a server, and host b, with a raw client:
/// what both benches measure against.
pub struct Pair {
    pub server: procession_nats::server::NatsServer,
    pub url: String,
    b: Child,
    sup: ActorRef<procession::supervisor::SupervisorActor>,
    /// Host b's sink.
    pub sink: ActorRef<Sink>,
    /// A current-thread runtime, and a plain async-nats client on it.
    pub rt: tokio::runtime::Runtime,
    pub raw: async_nats::Client,
}

impl Pair {
    pub fn start() -> Pair {
        let server = procession_nats::server::NatsServer::start().expect("a nats-server");
        let url = server.url();
        let b = spawn_host(&url, "b");
        let sup = Supervisor::new(Strategy::OneForOne)
            .child(procession_nats::gateway_child(GatewayConfig::new(
                &url, "bench", "a",
            )))
            // A daemon: a panic in main must not leave the program waiting for it.
            .spawn_with(procession::SpawnOptions::default().daemon(true))
            .unwrap();
        procession_nats::wait_connected(T).unwrap();
        let sink = procession_nats::whereis_on("b", "sink", T)
            .unwrap()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let raw = rt.block_on(async_nats::connect(url.as_str())).unwrap();
        Pair {
            server,
            url,
            b,
            sup,
            sink,
            rt,
            raw,
        }
    }

    /// Stops host a's gateway and host b, then the server.
    pub fn stop(mut self) {
        self.sup.stop().unwrap();
        self.sup.join().unwrap();
        drop(self.b.stdin.take());
        self.b.wait().unwrap();
    }
}

/// Runs host b instead of the bench if this process was started as one; `true` then.
pub fn host_if_asked() -> bool {
    match std::env::var("PB_HOST_B") {
        Ok(url) => {
            let name = std::env::var("PB_HOST_NAME").unwrap_or_else(|_| "b".into());
            host_b(url, name);
            true
        }
        Err(_) => false,
    }
}
