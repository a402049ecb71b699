//! The cost of one `procession::metrics` publish (feature `metrics`) of a runtime of many
//! actors, into metrics-util's `DebuggingRecorder` (a real registry of atomics, as an
//! exporter's).
//!
//! ```text
//! cargo bench --features metrics --bench metrics_publish        # criterion, then a JSON line
//! MP_ACTORS=100 cargo bench --features metrics --bench metrics_publish
//! ```
//!
//! The bench spawns `MP_ACTORS` (default 1,000) idle actors, asks each once, then times
//! `Exporter::publish`: list the runtime directory, map every mailbox read-only, read its
//! header and its process's `/proc` entries, and record 13 series per actor. The last
//! line on stdout is one JSON object with the median of `MP_REPS` (default 30) plain
//! timed runs.

use std::time::{Duration, Instant};

use criterion::Criterion;
use metrics_util::debugging::DebuggingRecorder;
use procession::metrics::Exporter;
use procession::prelude::*;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct Ping;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Ping))]
struct Idle;

impl Handler<Ping> for Idle {
    fn handle(&mut self, _: Ping, _cx: &mut Context<Self>) {}
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let actors = env_usize("MP_ACTORS", 1000);
    let reps = env_usize("MP_REPS", 30).max(1);
    let started = Instant::now();
    let idle: Vec<ActorRef<Idle>> = (0..actors)
        .map(|_| procession::spawn(Idle).expect("an idle actor"))
        .collect();
    for a in &idle {
        a.ask(Ping).expect("an answer");
    }
    eprintln!(
        "{actors} actors spawned and asked in {:?}",
        started.elapsed()
    );

    let recorder = DebuggingRecorder::new();
    let mut exporter = Exporter::new().expect("an exporter");
    let mut publish =
        || metrics::with_local_recorder(&recorder, || exporter.publish()).expect("a publish");
    assert_eq!(publish(), actors, "every actor is published");

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    c.bench_function(&format!("metrics_publish_{actors}_actors"), |b| {
        b.iter(&mut publish)
    });

    let mut runs: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            publish();
            t.elapsed()
        })
        .collect();
    runs.sort();
    let p50 = runs[runs.len() / 2].as_secs_f64() * 1e3;
    println!(
        r#"{{"id":"metrics_publish","desc":"one procession::metrics publish of a runtime into a DebuggingRecorder","actors":{actors},"unit":"ms","p50":{p50:.2},"reps":{reps}}}"#
    );
    for a in &idle {
        a.stop().expect("stop");
    }
    for a in idle {
        a.join().expect("join");
    }
}
