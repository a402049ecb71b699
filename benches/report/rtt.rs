//! Ask round trip of 16 bytes (section 2): default spin, spin off, and every CPU kept busy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use procession::prelude::*;
use procession::StartMethod;

use crate::{dist_record, finish, spawn_sink, Cfg, Echo, R};

fn rtt_series(cfg: &Cfg, n: usize, warm: usize) -> R<Vec<Vec<f64>>> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let payload = ByteBuf::from(b"0123456789abcdef".to_vec());
    let ask = |m: Echo| -> R<ByteBuf> { a.ask(m).map_err(|e| format!("ask failed: {e}")) };
    for _ in 0..warm {
        ask(Echo(payload.clone()))?;
    }
    let mut series = Vec::new();
    for _ in 0..cfg.reps {
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let msg = Echo(payload.clone());
            let t0 = Instant::now();
            let back = ask(msg)?;
            samples.push(t0.elapsed().as_secs_f64() * 1e6);
            if back.len() != 16 {
                return Err("echo mismatch".into());
            }
        }
        series.push(samples);
    }
    finish(&a)?;
    Ok(series)
}

pub(crate) fn bench_rtt(cfg: &Cfg, variant: &str) -> R<()> {
    let (n, warm) = (cfg.n(20_000, 2_000), cfg.n(2_000, 200));
    let spin = std::env::var("PROCESSION_SPIN_US").unwrap_or_else(|_| "50 (default)".into());
    let mut spinners = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let (id, py_id, note) = match variant {
        "rtt" => ("ask_rtt.bytes16", "pipe_rtt.bytes16", String::new()),
        "rtt_nospin" => ("ask_rtt.bytes16_nospin", "pipe_rtt.bytes16", String::new()),
        "rtt_busy" => {
            let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
            for _ in 0..cpus {
                let stop = stop.clone();
                spinners.push(std::thread::spawn(move || {
                    // SAFETY: plain syscalls on the calling thread; on Linux the nice value
                    // is per thread, so this lowers only this spinner.
                    unsafe {
                        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
                    }
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                }));
            }
            std::thread::sleep(Duration::from_millis(200)); // let the spinners get going
            (
                "ask_rtt.bytes16_busy_cpus",
                "pipe_rtt.bytes16_busy_cpus",
                format!(
                    "; diagnostic: {cpus} nice-19 busy-loop threads run meanwhile so no CPU \
                     goes idle"
                ),
            )
        }
        other => return Err(format!("unknown round-trip variant {other}")),
    };
    let result = rtt_series(cfg, n, warm);
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        let _ = s.join();
    }
    let series = result?;
    dist_record(
        id,
        &format!(
            "ActorRef::ask(Echo(16-byte ByteBuf)), the actor replies with the same 16 bytes; \
             each round trip timed individually ({warm} warm-up round trips discarded); \
             PROCESSION_SPIN_US={spin}{note}"
        ),
        &series,
    )
    .s("spin_us", &spin)
    .s("py_id", py_id)
    .emit();
    Ok(())
}
