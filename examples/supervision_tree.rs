//! A two-level supervision tree survives three kinds of crash and loses no message.
//!
//! ```text
//! root (OneForOne, 10 restarts in 5 s)
//! ├─ stable   a Counter
//! └─ workers  (OneForOne, 10 restarts in 5 s)
//!    ├─ flaky   records every job it handles with a collector, and crashes three times
//!    └─ steady  a Counter
//! ```
//!
//! `main` sends the flaky worker 300 numbered jobs. Job 100 panics in its handler
//! (crash #1), job 200 calls `std::process::abort()` (crash #2), and after job 250 `main`
//! kills the worker with SIGKILL from outside (crash #3). Crashes are decided by the
//! job number and the worker's incarnation, so they happen exactly once each. After each
//! crash `main` waits until the `workers` supervisor has restarted the flaky worker, and
//! shows that its siblings kept their pids and their state.
//!
//! Jobs are at least once (`#[message(redeliver = 1)]`): the job a crash interrupted is
//! handled again by the next incarnation, and jobs queued meanwhile wait in the mailbox,
//! which outlives every incarnation. The collector is an ordinary actor spawned by `main`,
//! outside the tree, so the crashes do not touch it; at the end it says which jobs were
//! handled, by which incarnation, and whether any was lost.
//!
//! Run with `cargo run --release --example supervision_tree`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use procession::prelude::*;
use procession::supervisor::{ChildSpec, ChildState, Strategy, Supervisor, SupervisorActor};

/// How many jobs `main` sends.
const JOBS: u64 = 300;
/// Job that panics in the first incarnation's handler (crash #1).
const PANIC_AT: u64 = 100;
/// Job that aborts the second incarnation's process (crash #2).
const ABORT_AT: u64 = 200;
/// `main` kills the flaky worker right after sending this job (crash #3).
const KILL_AFTER: u64 = 250;
/// Far longer than a restart takes, even on a loaded machine.
const RESTART_DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// The collector: outside the tree, it outlives every crash.

/// One job handled: which job, and by which incarnation (pid) of the flaky worker.
#[derive(Serialize, Deserialize, Message)]
struct Handled {
    job: u64,
    incarnation: u32,
    pid: u32,
}

/// Ask: everything recorded so far, in arrival order.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<(u64, u32, u32)>)]
struct Recorded;

#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Handled, Recorded))]
struct Collector {
    seen: Vec<(u64, u32, u32)>,
}

impl Handler<Handled> for Collector {
    fn handle(&mut self, h: Handled, _cx: &mut Context<Self>) {
        self.seen.push((h.job, h.incarnation, h.pid));
    }
}

impl Handler<Recorded> for Collector {
    fn handle(&mut self, _: Recorded, _cx: &mut Context<Self>) -> Vec<(u64, u32, u32)> {
        self.seen.clone()
    }
}

// ---------------------------------------------------------------------------------------
// The flaky worker.

/// A numbered job. At least once: the job a crash interrupts is handled again by the
/// next incarnation (once; a job that crashed it twice would be dropped as poison).
#[derive(Serialize, Deserialize, Message)]
#[message(redeliver = 1)]
struct Job(u64);

/// Ask: answered, with the incarnation that answers, once every job sent before it has
/// been handled.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Flush;

/// Records each job with the collector; crashes on jobs 100 and 200 (see the top).
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Job, Flush))]
struct Flaky {
    collector: ActorRef<Collector>,
}

impl Handler<Job> for Flaky {
    fn handle(&mut self, Job(job): Job, cx: &mut Context<Self>) {
        let incarnation = cx.incarnation();
        if job == PANIC_AT && incarnation == 0 {
            panic!("job {job}: a bug in the handler");
        }
        if job == ABORT_AT && incarnation == 1 {
            std::process::abort();
        }
        let record = Handled {
            job,
            incarnation,
            pid: cx.pid(),
        };
        // If the collector were gone this panics, and the job is redelivered once.
        if self.collector.tell(record).is_err() {
            panic!("job {job}: the collector is gone");
        }
    }
}

impl Handler<Flush> for Flaky {
    fn handle(&mut self, _: Flush, cx: &mut Context<Self>) -> u32 {
        cx.incarnation()
    }
}

// ---------------------------------------------------------------------------------------
// The steady siblings: counters whose state shows they were never restarted.

/// Adds one and replies with the new total.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Bump;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Bump))]
struct Counter {
    total: u64,
}

impl Handler<Bump> for Counter {
    fn handle(&mut self, _: Bump, _cx: &mut Context<Self>) -> u64 {
        self.total += 1;
        self.total
    }
}

// ---------------------------------------------------------------------------------------
// main

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The pid of child `id` of `sup` (it must be running).
fn pid_of(sup: &ActorRef<SupervisorActor>, id: &str) -> Res<u32> {
    sup.which_children()?
        .into_iter()
        .find(|c| c.id == id)
        .and_then(|c| c.pid)
        .ok_or_else(|| format!("child {id:?} is not running").into())
}

/// Polls `sup` until child `id` runs again under a pid other than `old_pid`, restarted
/// `restarts` times in all; returns the new pid.
fn wait_for_restart(
    sup: &ActorRef<SupervisorActor>,
    id: &str,
    old_pid: u32,
    restarts: u32,
) -> Res<u32> {
    let deadline = Instant::now() + RESTART_DEADLINE;
    loop {
        let child = sup.which_children()?.into_iter().find(|c| c.id == id);
        if let Some(c) = child {
            if c.state == ChildState::Running && c.restarts == restarts {
                if let Some(pid) = c.pid.filter(|&p| p != old_pid) {
                    return Ok(pid);
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{id} was not restarted within {RESTART_DEADLINE:?}").into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Sends jobs `from..=to` to the flaky worker.
fn send_jobs(flaky: &ActorRef<Flaky>, from: u64, to: u64) -> Res<()> {
    for job in from..=to {
        flaky
            .tell(Job(job))
            .map_err(|e| format!("job {job}: {e}"))?;
    }
    Ok(())
}

/// The siblings of the flaky worker: each must keep its pid and its count.
struct Siblings {
    workers: ActorRef<SupervisorActor>,
    root: ActorRef<SupervisorActor>,
    steady: (ActorRef<Counter>, u32),
    stable: (ActorRef<Counter>, u32),
    bumps: u64,
}

impl Siblings {
    /// After a restart: the new incarnation has caught up, the siblings are undisturbed.
    fn check(&mut self, flaky: &ActorRef<Flaky>) -> Res<()> {
        // Answered once the job the crash interrupted (redelivered) and the jobs queued
        // meanwhile have been handled, so the next crash cannot hit any of them again.
        let incarnation = flaky.ask(Flush)?;
        println!("  flaky incarnation {incarnation} has handled every job sent so far");
        self.bumps += 1;
        for (name, sup, (counter, pid)) in [
            ("steady", &self.workers, &self.steady),
            ("stable", &self.root, &self.stable),
        ] {
            let now = pid_of(sup, name)?;
            let total = counter.ask(Bump)?;
            if now != *pid || total != self.bumps {
                return Err(format!(
                    "{name} was disturbed: pid {pid} -> {now}, count {total} (expected {})",
                    self.bumps
                )
                .into());
            }
            println!("  {name} pid unchanged ({now}), its count kept: {total}");
        }
        Ok(())
    }
}

/// `[1, 2, 3, 7, 8]` as `"1..=3, 7..=8"`.
fn ranges(jobs: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < jobs.len() {
        let mut j = i;
        while j + 1 < jobs.len() && jobs[j + 1] == jobs[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            jobs[i].to_string()
        } else {
            format!("{}..={}", jobs[i], jobs[j])
        });
        i = j + 1;
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(", ")
    }
}

fn main() -> Res<()> {
    println!("main: pid {}", std::process::id());
    let collector: ActorRef<Collector> = procession::spawn(Collector::default())?;
    println!(
        "collector: pid {} (spawned by main, outside the tree)",
        collector.pid()
    );
    let root = start_tree(&collector);
    let outcome = root.as_ref().map_err(|e| e.to_string()).and_then(|root| {
        println!("\nthe tree:\n{}", root.tree().map_err(|e| e.to_string())?);
        run(root, &collector).map_err(|e| e.to_string())
    });
    if outcome.is_err() {
        // A process returning from main waits for its non-daemon actors: on failure,
        // kill the tree (its root's subtree dies with it) and the collector.
        if let Ok(root) = &root {
            let _ = root.kill();
            let _ = root.join_timeout(RESTART_DEADLINE);
        }
        let _ = collector.kill();
        let _ = collector.join_timeout(RESTART_DEADLINE);
    }
    Ok(outcome?)
}

/// Starts the tree; the flaky worker gets a reference to the collector.
fn start_tree(collector: &ActorRef<Collector>) -> Res<ActorRef<SupervisorActor>> {
    let workers = Supervisor::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(5))
        .child(ChildSpec::worker::<Flaky>(
            "flaky",
            Flaky {
                collector: collector.clone(),
            },
        ))
        .child(ChildSpec::worker::<Counter>("steady", Counter { total: 0 }));
    Ok(Supervisor::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(5))
        .child(ChildSpec::worker::<Counter>("stable", Counter { total: 0 }))
        .child(ChildSpec::supervisor("workers", workers))
        .spawn()?)
}

/// The scenario: three crashes, the collector's account, and a clean stop.
fn run(root: &ActorRef<SupervisorActor>, collector: &ActorRef<Collector>) -> Res<()> {
    let workers = root.child::<SupervisorActor>("workers")?;
    let flaky = workers.child::<Flaky>("flaky")?;
    let mut siblings = Siblings {
        steady: (workers.child("steady")?, pid_of(&workers, "steady")?),
        stable: (root.child("stable")?, pid_of(root, "stable")?),
        workers: workers.clone(),
        root: root.clone(),
        bumps: 0,
    };

    // Crash #1: a panic in the handler of job 100.
    let pid0 = pid_of(&workers, "flaky")?;
    println!("crash #1 (panic): sending jobs 1..={PANIC_AT}; job {PANIC_AT} panics in its handler");
    send_jobs(&flaky, 1, PANIC_AT)?;
    let pid1 = wait_for_restart(&workers, "flaky", pid0, 1)?;
    println!("flaky restarted: pid {pid0} -> pid {pid1} (restarts 1)");
    siblings.check(&flaky)?;

    // Crash #2: std::process::abort() on job 200.
    println!(
        "crash #2 (abort): sending jobs {}..={ABORT_AT}; job {ABORT_AT} calls std::process::abort()",
        PANIC_AT + 1
    );
    send_jobs(&flaky, PANIC_AT + 1, ABORT_AT)?;
    let pid2 = wait_for_restart(&workers, "flaky", pid1, 2)?;
    println!("flaky restarted: pid {pid1} -> pid {pid2} (restarts 2)");
    siblings.check(&flaky)?;

    // Crash #3: SIGKILL from outside, with jobs still arriving.
    println!(
        "crash #3 (SIGKILL): sending jobs {}..={KILL_AFTER}, then flaky.kill() from main, \
         then jobs {}..={JOBS} at once",
        ABORT_AT + 1,
        KILL_AFTER + 1
    );
    send_jobs(&flaky, ABORT_AT + 1, KILL_AFTER)?;
    flaky.kill()?;
    send_jobs(&flaky, KILL_AFTER + 1, JOBS)?;
    let pid3 = wait_for_restart(&workers, "flaky", pid2, 3)?;
    println!("flaky restarted: pid {pid2} -> pid {pid3} (restarts 3)");
    siblings.check(&flaky)?;

    // Every job's record was sent to the collector before the last Flush was answered.
    let recorded = collector.ask(Recorded)?;
    let mut by_job: BTreeMap<u64, Vec<(u32, u32)>> = BTreeMap::new();
    for &(job, incarnation, pid) in &recorded {
        by_job.entry(job).or_default().push((incarnation, pid));
    }
    println!("\nthe collector recorded {} handlings:", recorded.len());
    let mut by_incarnation: BTreeMap<(u32, u32), Vec<u64>> = BTreeMap::new();
    for &(job, incarnation, pid) in &recorded {
        by_incarnation
            .entry((incarnation, pid))
            .or_default()
            .push(job);
    }
    for ((incarnation, pid), jobs) in &by_incarnation {
        println!(
            "  incarnation {incarnation} (pid {pid}) handled jobs {}",
            ranges(jobs)
        );
    }
    for (job, crash) in [(PANIC_AT, "the panic"), (ABORT_AT, "the abort")] {
        match by_job.get(&job).and_then(|h| h.first()) {
            Some((incarnation, _)) => println!(
                "  job {job}, interrupted by {crash}, was redelivered and handled by incarnation \
                 {incarnation}"
            ),
            None => println!("  job {job}, interrupted by {crash}, was never handled"),
        }
    }
    let lost: Vec<u64> = (1..=JOBS).filter(|j| !by_job.contains_key(j)).collect();
    let twice: Vec<u64> = by_job
        .iter()
        .filter(|(_, h)| h.len() > 1)
        .map(|(&j, _)| j)
        .collect();
    let strays = by_job.keys().filter(|&&j| j == 0 || j > JOBS).count();
    println!(
        "sent {JOBS}, handled {} distinct, lost {}",
        by_job.len() - strays,
        lost.len()
    );
    if lost.is_empty() {
        println!("no accepted message was lost");
    } else {
        println!("lost jobs: {}", ranges(&lost));
    }
    if twice.is_empty() {
        println!("handled twice: none");
    } else {
        // Possible only for a job the SIGKILL hit after its record was sent: at least once.
        println!(
            "handled twice (in flight at the SIGKILL, redelivered: at least once): {}",
            ranges(&twice)
        );
    }

    println!("\nthe final tree:\n{}", root.tree()?);
    root.stop()?;
    println!("root supervisor exited: {}", root.join()?);
    collector.stop()?;
    println!("collector exited: {}", collector.join()?);
    if !lost.is_empty() || strays > 0 {
        return Err(format!("{} jobs lost, {strays} unexpected records", lost.len()).into());
    }
    Ok(())
}
