//! Remote figures against raw async-nats doing the same work, in the same run, one JSON
//! object per line on stdout (progress on stderr):
//!
//! ```text
//! cargo bench -p procession-nats --bench remote > /tmp/remote.jsonl
//! ```
//!
//! - `remote.ask_rtt.bytes16`: an ask of 16 bytes from host a (this process) to an actor
//!   on host b (a child process with its own runtime and gateway), p50/p99; against
//!   `raw.request_rtt.bytes16`, a request/reply of 16 bytes between two plain NATS
//!   clients in the same two processes.
//! - `remote.tell.u64`: tells of a `u64` to an actor on host b, end to end (the last one
//!   handled); against `raw.publish.u64`, publishes of 8 bytes counted by a subscriber in
//!   host b's process.
//!
//! Knobs: `PB_REPS` (default 3; the value is the median), `PB_N` (asks per repetition,
//! default 5000), `PB_TELLS` (tells per repetition, default 50000).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use procession::prelude::*;
use procession::supervisor::{Strategy, Supervisor};
use procession_nats::{server::NatsServer, GatewayConfig};

const T: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = ByteBuf)]
struct Echo(ByteBuf);

#[derive(Serialize, Deserialize, Message)]
struct Tick(u64);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Count;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Echo, Tick, Count))]
struct Sink {
    n: u64,
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

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn emit_rtt(id: &str, desc: &str, mut us: Vec<f64>) {
    us.sort_by(f64::total_cmp);
    println!(
        "{{\"id\":\"{id}\",\"desc\":\"{desc}\",\"unit\":\"us\",\"stat\":\"p50\",\"value\":{:.2},\"p50\":{:.2},\"p99\":{:.2},\"min\":{:.2},\"max\":{:.2},\"n\":{}}}",
        pct(&us, 0.5),
        pct(&us, 0.5),
        pct(&us, 0.99),
        us[0],
        us[us.len() - 1],
        us.len()
    );
}

fn emit_rate(id: &str, desc: &str, reps: Vec<f64>) {
    let list: Vec<String> = reps.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "{{\"id\":\"{id}\",\"desc\":\"{desc}\",\"unit\":\"msg/s\",\"stat\":\"median\",\"value\":{:.0},\"reps\":[{}]}}",
        median(reps),
        list.join(",")
    );
}

/// Host b: a gateway, a `Sink` registered as "sink", and raw NATS responders on
/// `raw.echo` (replies with the payload) and `raw.count` (replies with how many messages
/// `raw.tick` got). Runs until stdin closes.
fn host_b(url: String) {
    let cfg = GatewayConfig::new(&url, "bench", "b");
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(procession_nats::gateway_child(cfg))
        .spawn()
        .unwrap();
    procession_nats::wait_connected(T).unwrap();
    let sink = Sink { n: 0 }.spawn().unwrap();
    procession::register("sink", &sink).unwrap();
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

fn main() {
    if let Ok(url) = std::env::var("PB_HOST_B") {
        return host_b(url);
    }
    let reps = env_usize("PB_REPS", 3);
    let n = env_usize("PB_N", 5000);
    let tells = env_usize("PB_TELLS", 50_000);
    let server = NatsServer::start().expect("a nats-server");
    let url = server.url();
    let mut b = Command::new(std::env::current_exe().unwrap())
        .env("PB_HOST_B", &url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(b.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("READY") {
        line.clear();
    }
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(procession_nats::gateway_child(GatewayConfig::new(
            &url, "bench", "a",
        )))
        .spawn()
        .unwrap();
    procession_nats::wait_connected(T).unwrap();
    let sink: ActorRef<Sink> = procession_nats::whereis_on("b", "sink", T)
        .unwrap()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let raw = rt.block_on(async_nats::connect(url.as_str())).unwrap();
    let payload = ByteBuf::from(vec![7u8; 16]);

    // Round trips, alternating the two within each repetition.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        sink.ask(Echo(payload.clone())).unwrap();
        rt.block_on(raw.request("raw.echo", vec![7u8; 16].into()))
            .unwrap();
    }
    for r in 0..reps {
        eprintln!("rtt rep {r}");
        for _ in 0..n {
            let t = Instant::now();
            sink.ask(Echo(payload.clone())).unwrap();
            ours.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            rt.block_on(raw.request("raw.echo", vec![7u8; 16].into()))
                .unwrap();
            theirs.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    emit_rtt(
        "remote.ask_rtt.bytes16",
        "ActorRef::ask of 16 bytes to an actor on host b, via both gateways",
        ours,
    );
    emit_rtt(
        "raw.request_rtt.bytes16",
        "async-nats request/reply of 16 bytes between the same two processes",
        theirs,
    );

    // Throughput, end to end.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for r in 0..reps {
        eprintln!("tell rep {r}");
        let before = sink.ask_timeout(Count, Duration::from_secs(120)).unwrap();
        let t = Instant::now();
        for i in 0..tells {
            sink.tell(Tick(i as u64)).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while sink.ask_timeout(Count, Duration::from_secs(120)).unwrap() < before + tells as u64 {
            assert!(
                Instant::now() < deadline,
                "remote tells were lost (see the gateway's log)"
            );
        }
        ours.push(tells as f64 / t.elapsed().as_secs_f64());

        let count = |rt: &tokio::runtime::Runtime| -> u64 {
            let m = rt.block_on(raw.request("raw.count", "".into())).unwrap();
            String::from_utf8_lossy(&m.payload).parse().unwrap()
        };
        let before = count(&rt);
        let t = Instant::now();
        rt.block_on(async {
            for i in 0..tells as u64 {
                raw.publish("raw.tick", i.to_le_bytes().to_vec().into())
                    .await
                    .unwrap();
            }
            raw.flush().await.unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(&rt) < before + tells as u64 {
            assert!(
                Instant::now() < deadline,
                "raw publishes were lost (a slow consumer?)"
            );
        }
        theirs.push(tells as f64 / t.elapsed().as_secs_f64());
    }
    emit_rate(
        "remote.tell.u64",
        "ActorRef::tell of a u64 to an actor on host b, until the last is handled",
        ours,
    );
    emit_rate(
        "raw.publish.u64",
        "async-nats publish of 8 bytes, until a subscriber in host b's process counted the last",
        theirs,
    );

    sup.stop().unwrap();
    sup.join().unwrap();
    drop(b.stdin.take());
    b.wait().unwrap();
    drop(server);
}
