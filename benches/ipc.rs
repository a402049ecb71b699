//! Criterion benchmarks of procession's message paths: ask round trip of 16 bytes, tell
//! throughput of small messages, 1 MiB and 16 MiB messages, and spawn-to-first-reply with
//! the forkserver start method.
//!
//! `cargo bench --bench ipc` (a few minutes). For the side-by-side comparison with Python's
//! `multiprocessing` use `cargo bench --bench report` instead (see BENCHMARKS.md).

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use procession::prelude::*;
use procession::{SpawnOptions, StartMethod};

/// Replies `()`.
#[derive(Serialize, Deserialize, Message)]
struct Ping;

/// Replies with the same bytes.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ByteBuf)]
struct Echo(ByteBuf);

/// A small tell: one integer.
#[derive(Serialize, Deserialize, Message)]
struct Tick(u64);

/// A tell carrying bytes.
#[derive(Serialize, Deserialize, Message)]
struct Bytes(Blob);

/// Returns (messages, bytes) counted since the last `Take`, and resets both.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (u64, u64))]
struct Take;

/// One buffer sent many times without a copy on the sender's side (serialized as a CBOR
/// byte string; arrives as a fresh buffer).
#[derive(Clone)]
struct Blob(Arc<Vec<u8>>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Blob(Arc::new(ByteBuf::deserialize(d)?.into_vec())))
    }
}

/// Counts what it is told; answers pings and echoes.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Ping, Echo, Tick, Bytes, Take))]
struct Sink {
    msgs: u64,
    bytes: u64,
}

impl Handler<Ping> for Sink {
    fn handle(&mut self, _: Ping, _cx: &mut Context<Self>) {}
}

impl Handler<Echo> for Sink {
    fn handle(&mut self, Echo(b): Echo, _cx: &mut Context<Self>) -> ByteBuf {
        b
    }
}

impl Handler<Tick> for Sink {
    fn handle(&mut self, Tick(_): Tick, _cx: &mut Context<Self>) {
        self.msgs += 1;
    }
}

impl Handler<Bytes> for Sink {
    fn handle(&mut self, Bytes(b): Bytes, _cx: &mut Context<Self>) {
        self.msgs += 1;
        self.bytes += b.0.len() as u64;
    }
}

impl Handler<Take> for Sink {
    fn handle(&mut self, _: Take, _cx: &mut Context<Self>) -> (u64, u64) {
        (
            std::mem::take(&mut self.msgs),
            std::mem::take(&mut self.bytes),
        )
    }
}

/// Spawns the benchmark actor with the forkserver start method (whatever
/// `PROCESSION_START_METHOD` says).
fn sink() -> ActorRef<Sink> {
    let opts = SpawnOptions::new().start_method(StartMethod::Forkserver);
    procession::spawn_with(Sink::default(), opts).expect("spawn the benchmark actor")
}

fn done(a: ActorRef<Sink>) {
    a.stop().expect("stop");
    assert_eq!(
        a.join_timeout(Duration::from_secs(30)).expect("join"),
        Exit::Stopped
    );
}

fn ask_rtt_16b(c: &mut Criterion) {
    let a = sink();
    let payload = ByteBuf::from(b"0123456789abcdef".to_vec());
    let mut g = c.benchmark_group("ask_rtt_16b");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ask_echo", |b| {
        b.iter_batched(
            || Echo(payload.clone()),
            |m| a.ask(m).expect("ask"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    done(a);
}

fn tell_small(c: &mut Criterion) {
    const BATCH: u64 = 10_000;
    let a = sink();
    let mut g = c.benchmark_group("tell_small");
    g.sample_size(20);
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("tell_u64_x10k_then_ask", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                a.tell(Tick(i)).expect("tell");
            }
            assert_eq!(a.ask(Take).expect("ask").0, BATCH);
        })
    });
    g.finish();
    done(a);
}

fn bytes(c: &mut Criterion, group: &str, size: usize, batch: u64) {
    let a = sink();
    let blob = Blob(Arc::new(vec![0u8; size]));
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.throughput(Throughput::Bytes(size as u64 * batch));
    g.bench_function(format!("tell_x{batch}_then_ask"), |b| {
        b.iter(|| {
            for _ in 0..batch {
                a.tell(Bytes(blob.clone())).expect("tell");
            }
            assert_eq!(a.ask(Take).expect("ask").1, size as u64 * batch);
        })
    });
    g.finish();
    done(a);
}

fn bytes_1mib(c: &mut Criterion) {
    bytes(c, "bytes_1mib", 1 << 20, 16);
}

fn bytes_16mib(c: &mut Criterion) {
    bytes(c, "bytes_16mib", 16 << 20, 4);
}

fn spawn_forkserver(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_forkserver");
    g.sample_size(20);
    g.bench_function("spawn_ask_stop_join", |b| {
        b.iter(|| {
            let a = sink();
            a.ask(Ping).expect("first ask");
            done(a);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = ask_rtt_16b, tell_small, bytes_1mib, bytes_16mib, spawn_forkserver
}
criterion_main!(benches);
