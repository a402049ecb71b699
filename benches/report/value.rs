//! `Value` (section 8): increments from two processes, under its lock and with `fetch_add`.

use procession::shared::Value;
use procession::sync::Lock;

use crate::group::{group_figure, pin_grunts, two_grunts, Work, PINNED_NOTE};
use crate::toolbox::{cpus, finish_held, rates_of};
use crate::{rate_record, Cfg, R};

pub(crate) fn bench_value(cfg: &Cfg) -> R<()> {
    let lock = Lock::new().map_err(|e| format!("Lock::new: {e}"))?;
    let value = Value::new(0u64).map_err(|e| format!("Value::new: {e}"))?;
    let grunts = two_grunts(&lock, &value)?;
    let locked = "`*value.get_lock() += 1` (the value's robust re-entrant lock, as Python's \
                  `with v.get_lock(): v.value += 1`)";
    let mut figures = vec![
        (Work::ValueLocked, false, "shm.value_incr_2proc", locked, ""),
        (
            Work::ValueAtomic,
            false,
            "shm.value_fetch_add_2proc",
            "`value.fetch_add(1)` (a lock-free atomic add on the shared value)",
            "; NOT the same operation as the Python figure: Python has no lock-free \
             increment, so this is shown beside its locked one",
        ),
    ];
    if cpus() >= 2 {
        figures.push((
            Work::ValueLocked,
            true,
            "shm.value_incr_2proc_pinned",
            locked,
            PINNED_NOTE,
        ));
    }
    for (work, pin, id, what, note) in figures {
        pin_grunts(&grunts, pin)?;
        let (n, els, diag, finals) = group_figure(cfg, &grunts, work, Some(&value), 20_000)?;
        rate_record(
            id,
            &format!(
                "Value<u64> shared by 2 actor processes, each doing N x {what}; total \
                 increments (2N) / wall time from the first \"go\" to both workers' reports \
                 in hand; final value checked == 2N on every rep{note}"
            ),
            "incr/s",
            &rates_of(&els, 2.0 * n as f64),
        )
        .i("n_per_process", n)
        .s("final_count_exact", "true")
        .list("final_values", &finals)
        .list("elapsed_s", &els)
        .raw("diag_per_rep", &diag)
        .s("py_id", "shm.value_incr_2proc")
        .emit();
    }
    pin_grunts(&grunts, false)?;
    for g in &grunts {
        finish_held(g)?;
    }
    Ok(())
}
