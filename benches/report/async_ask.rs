//! Async callers and concurrent askers (issue 9): `ask_async` round trips, and asks per
//! second from many threads (inbox or reply router) and from many tokio tasks.

use std::time::{Duration, Instant};

use procession::prelude::*;
use procession::StartMethod;

use crate::{calibrate, dist_record, finish, rate_record, spawn_sink, Cfg, Echo, R};

/// `ask_async` round trips on a current-thread tokio runtime, each timed individually.
pub(crate) fn bench_ask_async_rtt(cfg: &Cfg) -> R<()> {
    let (n, warm) = (cfg.n(20_000, 2_000), cfg.n(2_000, 200));
    let a = spawn_sink(StartMethod::Forkserver)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    let payload = ByteBuf::from(b"0123456789abcdef".to_vec());
    let series = rt.block_on(async {
        for _ in 0..warm {
            a.ask_async(Echo(payload.clone()))
                .await
                .map_err(|e| format!("ask_async failed: {e}"))?;
        }
        let mut series = Vec::new();
        for _ in 0..cfg.reps {
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let msg = Echo(payload.clone());
                let t0 = Instant::now();
                let back = a
                    .ask_async(msg)
                    .await
                    .map_err(|e| format!("ask_async failed: {e}"))?;
                samples.push(t0.elapsed().as_secs_f64() * 1e6);
                if back.len() != 16 {
                    return Err("echo mismatch".to_string());
                }
            }
            series.push(samples);
        }
        Ok::<_, String>(series)
    })?;
    finish(&a)?;
    dist_record(
        "ask_async_rtt.bytes16",
        &format!(
            "ActorRef::ask_async(Echo(16-byte ByteBuf)).await on a current-thread tokio \
             runtime; the reply comes through the process's reply router thread; {warm} \
             warm-up round trips discarded"
        ),
        &series,
    )
    .s("py_id", "pipe_rtt.bytes16")
    .emit();
    Ok(())
}

/// Asks per second to one actor from `threads` threads, each asking in a loop, through
/// the thread's own inbox (`routed == false`) or the reply router.
pub(crate) fn bench_ask_threads(cfg: &Cfg, threads: usize, routed: bool) -> R<()> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let run = |n: u64| -> R<f64> {
        let per = (n / threads as u64).max(1);
        let t0 = Instant::now();
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    let a = a.clone();
                    s.spawn(move || -> R<()> {
                        let payload = ByteBuf::from(b"0123456789abcdef".to_vec());
                        for _ in 0..per {
                            let r = if routed {
                                a.ask_routed(Echo(payload.clone()), Duration::from_secs(30))
                            } else {
                                a.ask(Echo(payload.clone()))
                            };
                            r.map_err(|e| format!("ask failed: {e}"))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in hs {
                h.join().map_err(|_| "asker panicked".to_string())??;
            }
            Ok::<(), String>(())
        })?;
        Ok(t0.elapsed().as_secs_f64() * (n as f64 / (per * threads as u64) as f64))
    };
    let mut run = run;
    let n = calibrate(cfg, &mut run, 2_000, 5_000_000)?;
    let mut rates = Vec::new();
    for _ in 0..cfg.reps {
        let el = run(n)?;
        rates.push(n as f64 / el);
    }
    finish(&a)?;
    let how = if routed { "routed" } else { "inbox" };
    rate_record(
        &format!("asks_per_s.threads.{threads}.{how}"),
        &format!(
            "blocking asks (Echo, 16 bytes) per second to one actor from {threads} threads, \
             each asking in a loop; replies through {}",
            if routed {
                "the process's reply router and a crossbeam channel per ask (ask_routed)"
            } else {
                "each thread's own reply inbox (ActorRef::ask)"
            }
        ),
        "asks/s",
        &rates,
    )
    .emit();
    Ok(())
}

/// Asks per second to one actor from `tasks` tokio tasks on a 2-thread runtime, each
/// awaiting one ask after another.
pub(crate) fn bench_ask_tasks(cfg: &Cfg, tasks: usize) -> R<()> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    let mut run = |n: u64| -> R<f64> {
        let per = (n / tasks as u64).max(1);
        let t0 = Instant::now();
        rt.block_on(async {
            let hs: Vec<_> = (0..tasks)
                .map(|_| {
                    let a = a.clone();
                    tokio::spawn(async move {
                        let payload = ByteBuf::from(b"0123456789abcdef".to_vec());
                        for _ in 0..per {
                            a.ask_async_timeout(Echo(payload.clone()), Duration::from_secs(30))
                                .await
                                .map_err(|e| format!("ask_async failed: {e}"))?;
                        }
                        Ok::<(), String>(())
                    })
                })
                .collect();
            for h in hs {
                h.await.map_err(|e| format!("task: {e}"))??;
            }
            Ok::<(), String>(())
        })?;
        Ok(t0.elapsed().as_secs_f64() * (n as f64 / (per * tasks as u64) as f64))
    };
    let n = calibrate(cfg, &mut run, 2_000, 5_000_000)?;
    let mut rates = Vec::new();
    for _ in 0..cfg.reps {
        let el = run(n)?;
        rates.push(n as f64 / el);
    }
    drop(rt);
    finish(&a)?;
    rate_record(
        &format!("asks_per_s.tasks.{tasks}"),
        &format!(
            "ask_async (Echo, 16 bytes) per second to one actor from {tasks} tokio tasks on a \
             2-worker multi-thread runtime, each task awaiting one ask after another"
        ),
        "asks/s",
        &rates,
    )
    .emit();
    Ok(())
}
