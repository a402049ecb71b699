//! The multiprocessing toolbox (section 8, issue 4): what its figures (Lock, Value, Manager,
//! Queue, Pool, fan-out) share; it measures nothing itself.

use std::borrow::Cow;
use std::time::Duration;

use procession::__private::Dispatch;
use procession::prelude::*;
use procession::{SpawnOptions, StartMethod};

use crate::{calibrate, Cfg, R};

/// `(i, "hello")`, the shape of Python's tuple payload.
pub(crate) type Tup = (u64, Cow<'static, str>);

/// An actor of any type this runner started. Dropping it kills and joins the actor if it
/// still runs, so an error part-way through a figure leaves no process behind.
pub(crate) struct Held<A: Dispatch>(ActorRef<A>);

impl<A: Dispatch> std::ops::Deref for Held<A> {
    type Target = ActorRef<A>;
    fn deref(&self) -> &ActorRef<A> {
        &self.0
    }
}

impl<A: Dispatch> Drop for Held<A> {
    fn drop(&mut self) {
        let _ = self.0.kill(); // a no-op once the actor has exited
        let _ = self.0.join_timeout(Duration::from_secs(10));
    }
}

pub(crate) fn held<A: Dispatch>(args: A::Args) -> R<Held<A>> {
    procession::spawn_with::<A>(
        args,
        SpawnOptions::new().start_method(StartMethod::Forkserver),
    )
    .map(Held)
    .map_err(|e| format!("spawn failed: {e}"))
}

/// Stops a held actor gracefully and checks that it ended with `Exit::Stopped`.
pub(crate) fn finish_held<A: Dispatch>(a: &Held<A>) -> R<()> {
    a.stop().map_err(|e| format!("stop failed: {e}"))?;
    match a.join_timeout(Duration::from_secs(30)) {
        Ok(Exit::Stopped) => Ok(()),
        Ok(other) => Err(format!("actor ended with {other}")),
        Err(e) => Err(format!("join failed: {e}")),
    }
}

/// Runs `run` (one repetition: n operations -> seconds) after calibration, `reps` times.
pub(crate) fn measure(
    cfg: &Cfg,
    run: &mut dyn FnMut(u64) -> R<f64>,
    n0: u64,
    nmin: u64,
) -> R<(u64, Vec<f64>)> {
    let n = calibrate(cfg, run, n0, 1 << 40)?.max(nmin);
    let mut els = Vec::new();
    for _ in 0..cfg.reps {
        els.push(run(n)?);
    }
    Ok((n, els))
}

pub(crate) fn rates_of(els: &[f64], ops: f64) -> Vec<f64> {
    els.iter().map(|e| ops / e).collect()
}

pub(crate) const LONG: Duration = Duration::from_secs(120);

/// Pins the calling process to one CPU, or restores the affinity it had before.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(), String>)]
pub(crate) struct Pin(pub(crate) Option<usize>);

/// Pins process `pid` (0: the caller) to one CPU (`Some`), saving its affinity in
/// `saved` first, or restores the saved affinity (`None`).
pub(crate) fn set_affinity(
    pid: libc::pid_t,
    cpu: Option<usize>,
    saved: &mut Option<libc::cpu_set_t>,
) -> Result<(), String> {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is plain data (all-zero is the empty set); CPU_SET checks the
    // index against the set's size; the affinity calls read/write one set we own.
    unsafe {
        let set = match cpu {
            Some(c) => {
                if saved.is_none() {
                    let mut old: libc::cpu_set_t = std::mem::zeroed();
                    if libc::sched_getaffinity(pid, size, &mut old) != 0 {
                        return Err(format!("sched_getaffinity({pid}) failed"));
                    }
                    *saved = Some(old);
                }
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(c, &mut set);
                set
            }
            None => match saved.take() {
                Some(old) => old,
                None => return Ok(()),
            },
        };
        if libc::sched_setaffinity(pid, size, &set) != 0 {
            return Err(format!("sched_setaffinity({pid}, {cpu:?}) failed"));
        }
    }
    Ok(())
}

pub(crate) fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
