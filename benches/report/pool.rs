//! `Pool` (section 8): `Pool::map` of 100,000 trivial tasks, chunk size 1 and default.

use std::time::Instant;

use procession::pool::{Pool, PoolOptions};
use procession::prelude::*;
use procession::StartMethod;

use crate::{rate_record, Cfg, R};

/// `f(x) = x`.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Noop(u64);

/// The pool's worker.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Noop))]
struct PoolWorker;

impl Handler<Noop> for PoolWorker {
    fn handle(&mut self, Noop(x): Noop, _cx: &mut Context<Self>) -> u64 {
        x
    }
}

pub(crate) fn bench_pool(cfg: &Cfg, chunksize: Option<usize>) -> R<()> {
    let tasks = cfg.n(100_000, 5_000) as u64;
    let mut opts = PoolOptions::new()
        .processes(2)
        .start_method(StartMethod::Forkserver);
    if let Some(c) = chunksize {
        opts = opts.chunksize(c);
    }
    let pe = |e: procession::Error| format!("pool: {e}");
    let pool = Pool::<PoolWorker>::with_options(PoolWorker, opts).map_err(pe)?;
    let result = (|| -> R<(Vec<f64>, Vec<f64>)> {
        pool.map((0..2000).map(Noop)).map_err(pe)?; // warm-up
                                                    // A default-chunksize map of 100k no-ops is quick, so it gets more repetitions,
                                                    // as in mp_baseline.py.
        let reps = if chunksize.is_none() {
            cfg.reps.max(if cfg.quick { 1 } else { 10 })
        } else {
            cfg.reps
        };
        let (mut rates, mut els) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let t0 = Instant::now();
            let res = pool.map((0..tasks).map(Noop)).map_err(pe)?;
            let el = t0.elapsed().as_secs_f64();
            if res.len() as u64 != tasks || res.last() != Some(&(tasks - 1)) {
                return Err("pool result wrong".into());
            }
            rates.push(tasks as f64 / el);
            els.push(el);
        }
        Ok((rates, els))
    })();
    pool.close();
    let joined = pool.join().map_err(pe);
    let (rates, els) = result?;
    joined?;
    let (label, eff) = match chunksize {
        Some(c) => (c.to_string(), c as u64),
        None => ("default".to_string(), tasks.div_ceil(2 * 4)),
    };
    rate_record(
        &format!("pool.map.chunksize_{label}"),
        &format!(
            "procession::pool::Pool::<W>::with_options(processes(2){}) .map((0..{tasks}) \
             .map(Noop)) with handler f(x) = x; pool created and warmed up (a map of 2000) \
             beforehand, not timed; tasks / map() wall time; result length and last value \
             checked",
            chunksize.map_or(String::new(), |c| format!(".chunksize({c})"))
        ),
        "tasks/s",
        &rates,
    )
    .i("effective_chunksize", eff)
    .i("tasks", tasks)
    .list("elapsed_s", &els)
    .s("py_id", &format!("pool.map.chunksize_{label}"))
    .emit();
    Ok(())
}
