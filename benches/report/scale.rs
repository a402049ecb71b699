//! Scale (section 6): spawning, asking and stopping 10/100/1,000/10,000 actors, their
//! memory, and what their files take in /dev/shm.

use std::time::{Duration, Instant};

use procession::prelude::*;
use procession::StartMethod;

use crate::{median, proc_kib, smaps, spawn_sink, Cfg, Json, Owned, Ping, R};

/// A scale phase: name, what it does, and how to read its time from a rep.
type Phase = (&'static str, &'static str, fn(&ScaleRep) -> f64);

#[derive(Default)]
struct ScaleRep {
    spawn_s: f64,
    ask_s: f64,
    stop_s: f64,
    pss_kib: f64,
    root_rss_kib: f64,
    shm_resident_kib: f64,
    shm_apparent_kib: f64,
}

fn scale_rep(n: usize) -> R<ScaleRep> {
    let mut rep = ScaleRep::default();
    // Dropping `actors` on an early return kills and joins whatever was started.
    let mut actors: Vec<Owned> = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        match spawn_sink(StartMethod::Forkserver) {
            Ok(a) => actors.push(a),
            Err(e) => return Err(format!("spawn #{} of {n}: {e}", i + 1)),
        }
    }
    rep.spawn_s = t0.elapsed().as_secs_f64();
    rep.pss_kib = actors.iter().filter_map(|a| smaps(a.pid(), "Pss")).sum();
    rep.root_rss_kib = proc_kib("/proc/self/status", "VmRSS").unwrap_or(f64::NAN);
    let shm = procession::inspect::this_runtime()
        .and_then(|rt| procession::inspect::shm_usage(&rt))
        .map_err(|e| format!("shm usage: {e}"))?;
    rep.shm_resident_kib = shm.resident_bytes as f64 / 1024.0;
    rep.shm_apparent_kib = shm.apparent_bytes as f64 / 1024.0;
    let t1 = Instant::now();
    for (i, a) in actors.iter().enumerate() {
        if let Err(e) = a.ask(Ping) {
            return Err(format!("ask #{} of {n}: {e}", i + 1));
        }
    }
    rep.ask_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    for a in &actors {
        if let Err(e) = a.stop() {
            return Err(format!("stop: {e}"));
        }
    }
    for a in &actors {
        match a.join_timeout(Duration::from_secs(30)) {
            Ok(Exit::Stopped) => {}
            other => return Err(format!("join: {other:?}")),
        }
    }
    rep.stop_s = t2.elapsed().as_secs_f64();
    Ok(rep)
}

pub(crate) fn bench_scale(cfg: &Cfg, n: usize) {
    let mut reps = Vec::new();
    let mut error = None;
    for _ in 0..cfg.reps {
        match scale_rep(n) {
            Ok(r) => reps.push(r),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let phases: [Phase; 3] = [
        (
            "spawn",
            "procession::spawn (forkserver) of N Sink actors, one after another; each \
             spawn returns once the actor's create has run",
            |r| r.spawn_s,
        ),
        (
            "ask",
            "one ask(Ping) to each of the N actors, one after another (their first message)",
            |r| r.ask_s,
        ),
        (
            "stop",
            "stop() on each of the N actors, then join() on each (Exit::Stopped checked)",
            |r| r.stop_s,
        ),
    ];
    for (phase, what, get) in phases {
        let id = format!("scale.{n}.{phase}");
        let ms: Vec<f64> = reps.iter().map(|r| get(r) * 1e3).collect();
        let per: Vec<f64> = reps.iter().map(|r| get(r) * 1e6 / n as f64).collect();
        let mut rec = Json::new(&id)
            .s(
                "desc",
                &format!("N = {n}: {what}; wall time of the whole phase"),
            )
            .s("unit", "ms")
            .f("value", median(&ms))
            .s("stat", &format!("median of {} reps", ms.len()))
            .list("reps", &ms)
            .f("per_actor_us", median(&per))
            .i("actors", n as u64);
        if let Some(e) = &error {
            rec = rec.s("error", e);
        }
        rec.emit();
    }
    let pss: Vec<f64> = reps.iter().map(|r| r.pss_kib).collect();
    let rss: Vec<f64> = reps.iter().map(|r| r.root_rss_kib).collect();
    let mut rec = Json::new(&format!("scale.{n}.mem"))
        .s(
            "desc",
            &format!(
                "N = {n}: sum of the PSS of all N actor processes (smaps_rollup) right after \
                 the spawn phase; root_rss_kib: the root process's VmRSS at that moment; \
                 shm_resident_kib / shm_apparent_kib: what the runtime's files in /dev/shm \
                 hold in memory (du) and their sizes (ls -l), from inspect::shm_usage"
            ),
        )
        .s("unit", "KiB")
        .f("value", median(&pss))
        .s("stat", &format!("median of {} reps", pss.len()))
        .list("reps", &pss)
        .f("per_actor_kib", median(&pss) / n as f64)
        .f("root_rss_kib", median(&rss))
        .f(
            "shm_resident_kib",
            median(&reps.iter().map(|r| r.shm_resident_kib).collect::<Vec<_>>()),
        )
        .f(
            "shm_apparent_kib",
            median(&reps.iter().map(|r| r.shm_apparent_kib).collect::<Vec<_>>()),
        )
        .i("actors", n as u64);
    if let Some(e) = &error {
        eprintln!("   ERROR in scale.{n}: {e}");
        rec = rec.s("error", e);
    }
    rec.emit();
}
