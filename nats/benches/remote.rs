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
//! - `remote.durable_tell.u64`: `Durable::tell` of a `u64` (each returns once the server
//!   stored it) to a durable mailbox that host b serves, until the last is handled;
//!   against `raw.js_publish.u64`, async-nats JetStream publishes of 8 bytes, each ack
//!   awaited.
//! - `remote.host_lost`: from a SIGKILL of another host's root process to the `Down`
//!   with `HostLost` of a monitor of its actor, with the default 3 s lease.
//!
//! Knobs: `PB_REPS` (default 3; the value is the median), `PB_N` (asks per repetition,
//! default 5000), `PB_TELLS` (tells per repetition, default 50000).

use std::time::{Duration, Instant};

use procession::prelude::*;

mod hosts;
use hosts::{spawn_host, Count, Echo, Pair, Sink, Tick, T};

/// Monitor this sink.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct WatchSink(ActorRef<Sink>);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct DownCount;

/// Counts the `HostLost` downs of the sinks it monitors.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WatchSink, DownCount, procession::Down))]
struct Watcher {
    downs: u64,
}

impl Handler<WatchSink> for Watcher {
    fn handle(&mut self, WatchSink(s): WatchSink, cx: &mut Context<Self>) {
        cx.monitor(&s).unwrap();
    }
}
impl Handler<DownCount> for Watcher {
    fn handle(&mut self, _: DownCount, _cx: &mut Context<Self>) -> u64 {
        self.downs
    }
}
impl Handler<procession::Down> for Watcher {
    fn handle(&mut self, d: procession::Down, _cx: &mut Context<Self>) {
        if matches!(d.exit, procession::Exit::HostLost { .. }) {
            self.downs += 1;
        }
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

fn main() {
    if hosts::host_if_asked() {
        return;
    }
    let reps = env_usize("PB_REPS", 3);
    let n = env_usize("PB_N", 5000);
    let tells = env_usize("PB_TELLS", 50_000);
    let pair = Pair::start();
    let (url, sink, rt, raw) = (&pair.url, &pair.sink, &pair.rt, &pair.raw);
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
        let before = count(rt);
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
        while count(rt) < before + tells as u64 {
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

    // Durable tells, each stored before the next; and raw JetStream publishes.
    let durable = procession_nats::Durable::<Sink>::new("bench").unwrap();
    let js = {
        let _g = rt.enter();
        async_nats::jetstream::new(raw.clone())
    };
    rt.block_on(
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "raw_bench".into(),
            subjects: vec!["raw.js".into()],
            ..Default::default()
        }),
    )
    .unwrap();
    let dn = env_usize("PB_DURABLE", 3000);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for r in 0..reps {
        eprintln!("durable rep {r}");
        let before = sink.ask_timeout(Count, Duration::from_secs(120)).unwrap();
        let t = Instant::now();
        for i in 0..dn {
            durable.tell(Tick(i as u64)).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while sink.ask_timeout(Count, Duration::from_secs(120)).unwrap() < before + dn as u64 {
            assert!(
                Instant::now() < deadline,
                "durable tells were not all handled"
            );
        }
        ours.push(dn as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        rt.block_on(async {
            for i in 0..dn as u64 {
                let ack = js.publish("raw.js", i.to_le_bytes().to_vec().into()).await;
                ack.unwrap().await.unwrap();
            }
        });
        theirs.push(dn as f64 / t.elapsed().as_secs_f64());
    }
    emit_rate(
        "remote.durable_tell.u64",
        "Durable::tell of a u64 (stored, then handled by an actor on host b), until the last is handled",
        ours,
    );
    emit_rate(
        "raw.js_publish.u64",
        "async-nats JetStream publish of 8 bytes, each ack awaited",
        theirs,
    );

    // Host lost: a monitor of an actor on a host whose root is SIGKILLed.
    let watcher = Watcher { downs: 0 }.spawn().unwrap();
    let mut lost = Vec::new();
    for r in 0..reps {
        let name = format!("lost{r}");
        let mut h = spawn_host(url, &name);
        let target: ActorRef<Sink> = procession_nats::whereis_on(&name, "sink", T)
            .unwrap()
            .unwrap();
        watcher.ask(WatchSink(target.clone())).unwrap();
        target.ask(Count).unwrap(); // the monitor is registered there by now
        let before = watcher.ask(DownCount).unwrap();
        let t = Instant::now();
        h.kill().unwrap();
        h.wait().unwrap();
        while watcher.ask(DownCount).unwrap() == before {
            assert!(t.elapsed() < Duration::from_secs(30), "no HostLost");
            std::thread::sleep(Duration::from_millis(5));
        }
        lost.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let list: Vec<String> = lost.iter().map(|v| format!("{v:.0}")).collect();
    println!(
        "{{\"id\":\"remote.host_lost\",\"desc\":\"SIGKILL of another host's root to a monitor's Down(HostLost), lease 3 s\",\"unit\":\"ms\",\"stat\":\"median\",\"value\":{:.0},\"reps\":[{}]}}",
        median(lost),
        list.join(",")
    );
    watcher.stop().unwrap();
    watcher.join().unwrap();

    pair.stop();
}
