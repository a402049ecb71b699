//! Criterion's view of the remote round trip: an ask of 16 bytes to an actor on another
//! host (a child process with its own runtime and gateway), and async-nats
//! request/reply between the same two processes. `benches/remote.rs` gives the same
//! figures as JSON lines, with percentiles and throughput.
//!
//! ```text
//! cargo bench -p procession-nats --bench remote_criterion
//! ```

use criterion::{criterion_group, Criterion};
use procession::prelude::*;

mod hosts;
use hosts::{Echo, Pair};

fn round_trips(c: &mut Criterion) {
    let pair = Pair::start();
    let (sink, rt, raw) = (&pair.sink, &pair.rt, &pair.raw);
    let payload = ByteBuf::from(vec![7u8; 16]);
    let mut g = c.benchmark_group("remote_rtt_bytes16");
    g.bench_function("procession_ask", |bench| {
        bench.iter(|| sink.ask(Echo(payload.clone())).unwrap())
    });
    g.bench_function("raw_nats_request", |bench| {
        bench.iter(|| {
            rt.block_on(raw.request("raw.echo", vec![7u8; 16].into()))
                .unwrap()
        })
    });
    g.finish();
    pair.stop();
}

criterion_group!(benches, round_trips);

fn main() {
    if hosts::host_if_asked() {
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
