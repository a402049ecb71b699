//! The 2-process groups of the Lock and Value figures (section 8): the `Grunt` worker and
//! the group runs, shared by `lock.rs` and `value.rs`; it measures nothing itself.

use std::time::Instant;

use procession::prelude::*;
use procession::shared::Value;
use procession::sync::{Lock, OwnerDied};

use crate::toolbox::{held, measure, set_affinity, Held, Pin, LONG};
use crate::{num, tell_err, Cfg, R};

/// Seconds on CLOCK_MONOTONIC (the same clock in every process, like Python's
/// `perf_counter`), or this process's CPU seconds with CLOCK_PROCESS_CPUTIME_ID.
fn clock_s(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// What a worker of a multi-process figure reports about its own timed window (as
/// mp_baseline.py's `_stats`).
#[derive(Serialize, Deserialize, Clone, Copy, Default)]
struct ChildStats {
    /// Start and end of the window, CLOCK_MONOTONIC seconds.
    t0: f64,
    t1: f64,
    /// CPU seconds the process used in the window.
    cpu: f64,
    /// The CPU the process last ran on.
    last_cpu: i32,
}

/// `group_diag` of mp_baseline.py: per-child CPU seconds, CPU-busy share, overlap of the
/// children's windows (share of the wall time), last CPU.
fn group_diag(wall: f64, st: &[ChildStats]) -> String {
    let cpu: Vec<String> = st.iter().map(|c| num(c.cpu)).collect();
    let busy: Vec<String> = st
        .iter()
        .map(|c| num(c.cpu / (c.t1 - c.t0).max(1e-9)))
        .collect();
    let last: Vec<String> = st.iter().map(|c| c.last_cpu.to_string()).collect();
    let t0 = st.iter().map(|c| c.t0).fold(f64::NEG_INFINITY, f64::max);
    let t1 = st.iter().map(|c| c.t1).fold(f64::INFINITY, f64::min);
    format!(
        "{{\"child_cpu_s\": [{}], \"child_busy\": [{}], \"last_cpu\": [{}], \
         \"overlap_of_wall\": {}}}",
        cpu.join(", "),
        busy.join(", "),
        last.join(", "),
        num((t1 - t0).max(0.0) / wall)
    )
}

/// What a [`Grunt`] does N times in its timed window.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Work {
    /// `drop(lock.acquire())`.
    LockPairs,
    /// `*value.get_lock() += 1`.
    ValueLocked,
    /// `value.fetch_add(1)`.
    ValueAtomic,
}

/// Gives a grunt the shared Lock and Value (maps them in its process before any timing).
#[derive(Serialize, Deserialize, Message)]
struct Arm(Lock, Value<u64>);

/// "go": do `Work` N times (a tell; the stats wait for `Report`).
#[derive(Serialize, Deserialize, Message)]
struct Go(Work, u64);

/// The stats of the last `Go` (asked after it, so the reply means "done").
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<ChildStats, String>)]
struct Report;

/// A worker process of the Lock and Value figures.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Arm, Go, Report, Pin))]
pub(crate) struct Grunt {
    #[serde(skip)]
    lock: Option<Lock>,
    #[serde(skip)]
    value: Option<Value<u64>>,
    #[serde(skip)]
    last: Option<Result<ChildStats, String>>,
    /// The affinity before a `Pin`, restored by `Pin(None)`.
    #[serde(skip)]
    affinity: Option<libc::cpu_set_t>,
}

impl Handler<Arm> for Grunt {
    fn handle(&mut self, Arm(lock, value): Arm, _cx: &mut Context<Self>) {
        self.lock = Some(lock);
        self.value = Some(value);
    }
}

impl Handler<Go> for Grunt {
    fn handle(&mut self, Go(work, n): Go, _cx: &mut Context<Self>) {
        let (Some(lock), Some(value)) = (&self.lock, &self.value) else {
            self.last = Some(Err("Go before Arm".into()));
            return;
        };
        let c0 = clock_s(libc::CLOCK_PROCESS_CPUTIME_ID);
        let t0 = clock_s(libc::CLOCK_MONOTONIC);
        match work {
            Work::LockPairs => {
                for _ in 0..n {
                    drop(std::hint::black_box(lock.acquire()));
                }
            }
            Work::ValueLocked => {
                for _ in 0..n {
                    *value.get_lock().unwrap_or_else(OwnerDied::into_inner) += 1;
                }
            }
            Work::ValueAtomic => {
                for _ in 0..n {
                    value.fetch_add(1);
                }
            }
        }
        let t1 = clock_s(libc::CLOCK_MONOTONIC);
        self.last = Some(Ok(ChildStats {
            t0,
            t1,
            cpu: clock_s(libc::CLOCK_PROCESS_CPUTIME_ID) - c0,
            // SAFETY: a plain query of the calling thread's CPU.
            last_cpu: unsafe { libc::sched_getcpu() },
        }));
    }
}

impl Handler<Report> for Grunt {
    fn handle(&mut self, _: Report, _cx: &mut Context<Self>) -> Result<ChildStats, String> {
        self.last.take().unwrap_or_else(|| Err("no Go ran".into()))
    }
}

/// One repetition of a group figure (mp_baseline.py's `run_group`): "go" to every grunt,
/// then wait for each one's report; wall time from before the first "go" to the last
/// report in hand.
fn group_run(grunts: &[Held<Grunt>], work: Work, n: u64) -> R<(f64, Vec<ChildStats>)> {
    let t0 = Instant::now();
    for g in grunts {
        g.tell(Go(work, n)).map_err(tell_err)?;
    }
    let mut stats = Vec::new();
    for g in grunts {
        stats.push(
            g.ask_timeout(Report, LONG)
                .map_err(|e| format!("report ask failed: {e}"))??,
        );
    }
    Ok((t0.elapsed().as_secs_f64(), stats))
}

pub(crate) fn two_grunts(lock: &Lock, value: &Value<u64>) -> R<Vec<Held<Grunt>>> {
    let mut gs = Vec::new();
    for _ in 0..2 {
        let g = held::<Grunt>(Grunt::default())?;
        g.ask(Arm(lock.clone(), value.clone()))
            .map_err(|e| format!("arm failed: {e}"))?;
        gs.push(g);
    }
    Ok(gs)
}

impl Handler<Pin> for Grunt {
    fn handle(&mut self, Pin(cpu): Pin, _cx: &mut Context<Self>) -> Result<(), String> {
        set_affinity(0, cpu, &mut self.affinity)
    }
}

/// Pins grunt k to CPU k (`true`), or restores their affinity (`false`).
pub(crate) fn pin_grunts(grunts: &[Held<Grunt>], on: bool) -> R<()> {
    for (k, g) in grunts.iter().enumerate() {
        g.ask(Pin(on.then_some(k)))
            .map_err(|e| format!("pin ask failed: {e}"))??;
    }
    Ok(())
}

/// One 2-process figure: calibrate, then `reps` group runs of `work`; when `value` is
/// given, it is reset before and checked (== 2N) after every run.
pub(crate) fn group_figure(
    cfg: &Cfg,
    grunts: &[Held<Grunt>],
    work: Work,
    value: Option<&Value<u64>>,
    n0: u64,
) -> R<(u64, Vec<f64>, String, Vec<f64>)> {
    let mut diags = Vec::new();
    let mut finals = Vec::new();
    let mut run = |n: u64| -> R<f64> {
        if let Some(v) = value {
            v.store(0);
        }
        let (wall, st) = group_run(grunts, work, n)?;
        if let Some(v) = value {
            let got = v.get();
            if got != 2 * n {
                return Err(format!("Value count wrong: {got} != {}", 2 * n));
            }
            finals.push(got as f64);
        }
        diags.push(group_diag(wall, &st));
        Ok(wall)
    };
    let (n, els) = measure(cfg, &mut run, n0, 1000)?;
    let k = els.len();
    let diag = format!("[{}]", diags[diags.len() - k..].join(", "));
    let finals = finals[finals.len().saturating_sub(k)..].to_vec();
    Ok((n, els, diag, finals))
}

pub(crate) const PINNED_NOTE: &str = "; diagnostic variant: worker k pinned to CPU k \
     (sched_setaffinity), so the two really run at the same time on two CPUs and contend \
     (unpinned, the scheduler may put both on one CPU, where they take turns)";
