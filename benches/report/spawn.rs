//! Spawn-to-first-reply (section 1): `spawn_with` then one `ask(Ping)`, per start method.

use std::time::{Duration, Instant};

use procession::StartMethod;

use crate::{dist_record, finish, spawn_sink, thread_count, Cfg, Ping, R};

pub(crate) fn method_name(m: StartMethod) -> &'static str {
    match m {
        StartMethod::Forkserver => "forkserver",
        StartMethod::Spawn => "spawn",
        StartMethod::Fork => "fork",
    }
}

pub(crate) fn bench_spawn(cfg: &Cfg, method: StartMethod) -> R<()> {
    let name = method_name(method);
    let id = format!("spawn.{name}.first_reply");
    let (n_target, budget) = match method {
        StartMethod::Spawn => (cfg.n(100, 5), Duration::from_secs(8)),
        _ => (cfg.n(200, 20), Duration::from_secs(8)),
    };
    // The root's signal thread (parked, holding no lock) does not make forking unsafe;
    // procession's own check refuses the fork method when other threads run.
    let threads = thread_count();
    let mut series = Vec::new();
    let mut cold = None;
    for _ in 0..cfg.reps {
        let mut samples = Vec::with_capacity(n_target);
        let start = Instant::now();
        // One extra, untimed-in-the-stats start first: the cold one (it may start the
        // zygote, and it faults in the binary's pages).
        for i in 0..=n_target {
            let t0 = Instant::now();
            let a = spawn_sink(method)?;
            a.ask(Ping).map_err(|e| format!("first ask failed: {e}"))?;
            let us = t0.elapsed().as_secs_f64() * 1e6;
            finish(&a)?;
            if i == 0 {
                cold.get_or_insert(us);
                continue;
            }
            samples.push(us);
            if start.elapsed() > budget && samples.len() >= 15 {
                break;
            }
        }
        series.push(samples);
    }
    dist_record(
        &id,
        &format!(
            "start method {name}: procession::spawn_with(Sink, start_method={name}) then \
             ask(Ping) (a trivial request, empty reply); timed from before spawn to the \
             reply in hand; stop()+join() afterwards, not timed; the first (cold) start of \
             each rep excluded (cold_us: the very first); threads in the root: {threads} \
             (the signal-watching thread counts as one)"
        ),
        &series,
    )
    .f("cold_us", cold.unwrap_or(f64::NAN))
    .s("method", name)
    .s("py_id", &format!("spawn.{name}.first_msg"))
    .emit();
    Ok(())
}
