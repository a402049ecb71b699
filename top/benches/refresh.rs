//! The cost of one `procession-top` refresh against a runtime of many actors.
//!
//! ```text
//! cargo bench -p procession-top --bench refresh            # criterion, then a JSON line
//! PT_ACTORS=100 cargo bench -p procession-top --bench refresh
//! ```
//!
//! This bench process is itself the watched program: it spawns `PT_ACTORS` (default
//! 1,000) idle actors under 10 supervisors, asks each once, then times, in its own
//! runtime, (1) a refresh (list the runtimes, map every mailbox read-only, read every
//! header and `/proc` entry, build the tree and the rates) and (2) a refresh plus drawing
//! the whole table as text (what `--once` prints). The last line on stdout is one JSON
//! object with the medians of `PT_REPS` (default 30) plain timed runs of each.

use std::time::{Duration, Instant};

use criterion::Criterion;
use procession::prelude::*;
use procession::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorActor};
use procession_top::model::{Source, Tracker};

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

fn tree(actors: usize) -> Vec<ActorRef<SupervisorActor>> {
    let groups = 10.min(actors.max(1));
    (0..groups)
        .map(|g| {
            let n = actors / groups + usize::from(g < actors % groups);
            let sup = (0..n)
                .fold(Supervisor::new(Strategy::OneForOne), |s, i| {
                    s.child(ChildSpec::worker::<Idle>(format!("w{g}-{i}"), Idle))
                })
                .spawn()
                .expect("a supervisor of idle actors");
            for c in sup.which_children().expect("its children") {
                sup.child::<Idle>(&c.id)
                    .expect("a child ref")
                    .ask(Ping)
                    .expect("an answer");
            }
            sup
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let actors = env_usize("PT_ACTORS", 1000);
    let reps = env_usize("PT_REPS", 30).max(1);
    let started = Instant::now();
    let sups = tree(actors);
    eprintln!(
        "{actors} actors spawned and asked in {:?}",
        started.elapsed()
    );
    let source = Source {
        pid: Some(std::process::id()),
        ..Source::all()
    };
    let mut tracker = Tracker::new(source);
    let shown: usize = tracker.refresh().iter().map(|f| f.actors.len()).sum();
    assert_eq!(shown, actors + sups.len(), "every actor is seen");

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    c.bench_function(&format!("top_refresh_{actors}_actors"), |b| {
        b.iter(|| tracker.refresh())
    });
    c.bench_function(&format!("top_refresh_and_text_{actors}_actors"), |b| {
        b.iter(|| procession_top::text(tracker.refresh(), 120))
    });

    let time = |f: &mut dyn FnMut()| {
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect::<Vec<_>>()
    };
    let refresh = time(&mut || drop(tracker.refresh()));
    let with_text = time(&mut || drop(procession_top::text(tracker.refresh(), 120)));
    println!(
        "{}",
        serde_json::json!({
            "id": "top_refresh",
            "desc": "one procession-top refresh (read every mailbox header and /proc entry, tree, rates) of one runtime",
            "actors": actors + sups.len(),
            "unit": "ms",
            "refresh_p50": median(refresh),
            "refresh_and_text_p50": median(with_text),
            "reps": reps,
        })
    );
    for sup in sups {
        sup.stop().expect("stop");
        sup.join().expect("join");
    }
}
