//! Large messages (section 4): throughput of 1 MiB and 16 MiB tells, as bytes in the
//! message and as `SharedBytes` handles.

use std::sync::Arc;
use std::time::Instant;

use procession::{SharedBytes, StartMethod};

use crate::{
    calibrate, finish, rate_record, spawn_sink, tell_err, Blob, Bytes, Cfg, Owned, Shared, Take, R,
};

/// Calibrates, then times `cfg.reps` runs of n × `send` followed by one `Take` (count
/// and byte total checked): (n, MB/s per rep, seconds per rep).
fn large_rates(
    cfg: &Cfg,
    a: &Owned,
    size: usize,
    nmax: u64,
    send: &mut dyn FnMut() -> R<()>,
) -> R<(u64, Vec<f64>, Vec<f64>)> {
    let mut run = |n: u64| -> R<f64> {
        let t0 = Instant::now();
        for _ in 0..n {
            send()?;
        }
        let (got, bytes) = a.ask(Take).map_err(|e| format!("count ask failed: {e}"))?;
        let el = t0.elapsed().as_secs_f64();
        if got != n || bytes != n * size as u64 {
            return Err(format!("actor got {got} messages / {bytes} bytes of {n}"));
        }
        Ok(el)
    };
    let n0 = if size <= 1 << 20 { 16 } else { 4 };
    let cfg_large = Cfg {
        target_s: cfg.target_s * 0.75,
        only: None,
        ..*cfg
    };
    let n = calibrate(&cfg_large, &mut run, n0, nmax)?.max(4);
    let mut mbs = Vec::new();
    let mut els = Vec::new();
    for _ in 0..cfg.reps {
        let el = run(n)?;
        els.push(el);
        mbs.push(n as f64 * size as f64 / 1e6 / el);
    }
    Ok((n, mbs, els))
}

pub(crate) fn bench_bytes(cfg: &Cfg, label: &str, size: usize) -> R<()> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let blob = Blob(Arc::new(vec![0u8; size]));
    let (n, mbs, els) = large_rates(cfg, &a, size, 1 << 20, &mut || {
        a.tell(Bytes(blob.clone())).map_err(tell_err)
    })?;
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

/// `SharedBytes` of `size`: made afresh for each tell from a private buffer (one copy,
/// into shared memory), or one made once and re-sent (`fresh == false`: no copy at all).
pub(crate) fn bench_shared(cfg: &Cfg, label: &str, size: usize, fresh: bool) -> R<()> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let private = vec![1u8; size];
    let once = SharedBytes::from_slice(&private).map_err(|e| format!("SharedBytes: {e}"))?;
    let (n, mbs, els) = large_rates(cfg, &a, size, 1 << 22, &mut || {
        let b = if fresh {
            SharedBytes::from_slice(&private).map_err(|e| format!("SharedBytes: {e}"))?
        } else {
            once.clone()
        };
        a.tell(Shared(b)).map_err(tell_err)
    })?;
    finish(&a)?;
    let how = if fresh {
        "SharedBytes::from_slice of a private buffer for each tell (a fresh file in /dev/shm \
         and one copy), then ActorRef::tell(Shared(b))"
    } else {
        "ActorRef::tell(Shared(b.clone())) of one SharedBytes made once (no copy: a handle)"
    };
    rate_record(
        &format!(
            "bytes.{label}.shared_{}",
            if fresh { "fresh" } else { "reused" }
        ),
        &format!(
            "n x {how}, {size} bytes each; the actor maps the buffer and reads one byte per \
             4 KiB page in place; then ask(Take) (count and byte total checked); MB = 10^6 \
             bytes; clock from the first tell to the count in hand"
        ),
        "MB/s",
        &mbs,
    )
    .i("n_per_rep", n)
    .list("elapsed_s", &els)
    .s("py_id", &format!("large.pipe.{label}"))
    .emit();
    Ok(())
}
