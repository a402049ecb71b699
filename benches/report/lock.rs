//! `Lock` (section 8): acquire/release in one process, and contended by two processes.

use std::time::Instant;

use procession::shared::Value;
use procession::sync::Lock;

use crate::group::{group_figure, pin_grunts, two_grunts, Work, PINNED_NOTE};
use crate::toolbox::{cpus, finish_held, measure, rates_of};
use crate::{rate_record, Cfg, R};

pub(crate) fn bench_lock(cfg: &Cfg) -> R<()> {
    let lock = Lock::new().map_err(|e| format!("Lock::new: {e}"))?;
    let mut local = |n: u64| -> R<f64> {
        let t0 = Instant::now();
        for _ in 0..n {
            drop(std::hint::black_box(lock.acquire()));
        }
        Ok(t0.elapsed().as_secs_f64())
    };
    let (n, els) = measure(cfg, &mut local, 100_000, 1000)?;
    rate_record(
        "lock.uncontended_1proc",
        "procession::sync::Lock (robust process-shared mutex); drop(lock.acquire()) \
         (acquire, then release by dropping the guard) in a loop in the runner process, \
         no other process touching it",
        "pairs/s",
        &rates_of(&els, n as f64),
    )
    .i("n_per_rep", n)
    .list("elapsed_s", &els)
    .s("py_id", "lock.uncontended_1proc")
    .emit();

    let value = Value::new(0u64).map_err(|e| format!("Value::new: {e}"))?;
    let grunts = two_grunts(&lock, &value)?;
    let pinned: &[bool] = if cpus() >= 2 {
        &[false, true]
    } else {
        &[false]
    };
    for &pin in pinned {
        pin_grunts(&grunts, pin)?;
        let (n, els, diag, _) = group_figure(cfg, &grunts, Work::LockPairs, None, 50_000)?;
        rate_record(
            if pin {
                "lock.contended_2proc_pinned"
            } else {
                "lock.contended_2proc"
            },
            &format!(
                "procession::sync::Lock shared by 2 actor processes, each doing N x \
                 drop(lock.acquire()) with nothing inside; total pairs (2N) / wall time from \
                 the first \"go\" (a tell) to both workers' reports in hand{}",
                if pin { PINNED_NOTE } else { "" }
            ),
            "pairs/s",
            &rates_of(&els, 2.0 * n as f64),
        )
        .i("n_per_process", n)
        .list("elapsed_s", &els)
        .raw("diag_per_rep", &diag)
        .s("py_id", "lock.contended_2proc")
        .emit();
    }
    pin_grunts(&grunts, false)?;
    for g in &grunts {
        finish_held(g)?;
    }
    Ok(())
}
