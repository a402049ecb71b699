//! Large messages (section 4): throughput of 1 MiB and 16 MiB tells.

use std::sync::Arc;
use std::time::Instant;

use procession::StartMethod;

use crate::{calibrate, finish, rate_record, spawn_sink, tell_err, Blob, Bytes, Cfg, Take, R};

pub(crate) fn bench_bytes(cfg: &Cfg, label: &str, size: usize) -> R<()> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let blob = Blob(Arc::new(vec![0u8; size]));
    let mut run = |n: u64| -> R<f64> {
        let t0 = Instant::now();
        for _ in 0..n {
            a.tell(Bytes(blob.clone())).map_err(tell_err)?;
        }
        let (got, bytes) = a.ask(Take).map_err(|e| format!("count ask failed: {e}"))?;
        let el = t0.elapsed().as_secs_f64();
        if got != n || bytes != n * size as u64 {
            return Err(format!("actor got {got} messages / {bytes} bytes of {n}"));
        }
        Ok(el)
    };
    let n0 = if size <= 1 << 20 { 16 } else { 4 };
    let saved = cfg.target_s;
    let cfg_large = Cfg {
        target_s: saved * 0.75,
        only: None,
        ..*cfg
    };
    let n = calibrate(&cfg_large, &mut run, n0, 1 << 20)?.max(4);
    let mut mbs = Vec::new();
    let mut els = Vec::new();
    for _ in 0..cfg.reps {
        let el = run(n)?;
        els.push(el);
        mbs.push(n as f64 * size as f64 / 1e6 / el);
    }
    finish(&a)?;
    rate_record(
        &format!("bytes.{label}"),
        &format!(
            "n x ActorRef::tell(Bytes({label})) ({size} bytes each, one shared buffer, a CBOR \
             byte string; the actor adds up the lengths), then ask(Take) (count and byte \
             total checked); MB = 10^6 bytes; clock from the first tell to the count in hand"
        ),
        "MB/s",
        &mbs,
    )
    .i("n_per_rep", n)
    .list("elapsed_s", &els)
    .s("py_id", &format!("large.pipe.{label}"))
    .strs("py_also", &[&format!("large.queue.{label}")])
    .emit();
    Ok(())
}
