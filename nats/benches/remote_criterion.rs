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
use procession::supervisor::{Strategy, Supervisor};
use procession_nats::{server::NatsServer, GatewayConfig};

mod hosts;
use hosts::{spawn_host, Echo, Sink, T};

fn round_trips(c: &mut Criterion) {
    let server = NatsServer::start().expect("a nats-server");
    let url = server.url();
    let mut b = spawn_host(&url, "b");
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(procession_nats::gateway_child(GatewayConfig::new(
            &url, "bench", "a",
        )))
        .spawn_with(procession::SpawnOptions::default().daemon(true))
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
    sup.stop().unwrap();
    sup.join().unwrap();
    drop(b.stdin.take());
    b.wait().unwrap();
}

criterion_group!(benches, round_trips);

fn main() {
    if let Ok(url) = std::env::var("PB_HOST_B") {
        let name = std::env::var("PB_HOST_NAME").unwrap_or_else(|_| "b".into());
        return hosts::host_b(url, name);
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
