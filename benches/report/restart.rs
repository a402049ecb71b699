//! Restart latency (section 7): SIGKILL of a supervised actor to its next reply (no Python
//! counterpart).

use std::time::{Duration, Instant};

use procession::prelude::*;
use procession::supervisor::{ChildSpec, Shutdown, Strategy, Supervisor, SupervisorActor};

use crate::{dist_record, Cfg, R};

/// Replies with the incarnation that handles it (0 for the first, +1 per restart).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct WhichIncarnation;

/// The supervised worker of the restart figure.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WhichIncarnation))]
struct Phoenix;

impl Handler<WhichIncarnation> for Phoenix {
    fn handle(&mut self, _: WhichIncarnation, cx: &mut Context<Self>) -> u32 {
        cx.incarnation()
    }
}

/// A supervisor this runner started. Dropping it kills and joins it if it still runs;
/// its child dies with it.
struct OwnedSup(ActorRef<SupervisorActor>);

impl Drop for OwnedSup {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.join_timeout(Duration::from_secs(10));
    }
}

/// What one restart cost, and what the asker saw on the way.
struct RestartSample {
    us: f64,
    /// Replies from the killed incarnation (the ask raced the SIGKILL).
    stale: u64,
    /// Asks the killed incarnation had taken when it died (at most once: `ActorDied`).
    died: u64,
}

/// Kills the worker, then asks it until an incarnation newer than the killed one
/// answers; times from just before `kill()` to that reply in hand.
fn restart_once(w: &ActorRef<Phoenix>) -> R<RestartSample> {
    let ask = || w.ask_timeout(WhichIncarnation, Duration::from_secs(30));
    let before = ask().map_err(|e| format!("ask before the kill failed: {e}"))?;
    let (mut stale, mut died) = (0, 0);
    let t0 = Instant::now();
    w.kill().map_err(|e| format!("kill failed: {e}"))?;
    loop {
        match ask() {
            Ok(now) if now > before => break,
            Ok(_) => stale += 1,
            Err(procession::Error::ActorDied { .. }) => died += 1,
            Err(e) => return Err(format!("ask after the kill failed: {e}")),
        }
        if stale + died > 100 {
            return Err("no new incarnation answered 100 asks after the kill".into());
        }
    }
    Ok(RestartSample {
        us: t0.elapsed().as_secs_f64() * 1e6,
        stale,
        died,
    })
}

pub(crate) fn bench_restart(cfg: &Cfg) -> R<()> {
    let (n, warm) = (cfg.n(200, 20), cfg.n(10, 2));
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(1_000_000, Duration::from_secs(1))
        .child(ChildSpec::worker::<Phoenix>("phoenix", Phoenix).shutdown(Shutdown::BrutalKill))
        .spawn()
        .map(OwnedSup)
        .map_err(|e| format!("supervisor spawn failed: {e}"))?;
    let w = sup
        .0
        .child::<Phoenix>("phoenix")
        .map_err(|e| format!("no child: {e}"))?;
    for _ in 0..warm {
        restart_once(&w)?;
    }
    let (mut stale, mut died) = (0, 0);
    let mut series = Vec::new();
    for _ in 0..cfg.reps {
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let s = restart_once(&w)?;
            samples.push(s.us);
            stale += s.stale;
            died += s.died;
        }
        series.push(samples);
    }
    let restarts = sup
        .0
        .which_children()
        .map_err(|e| format!("which_children failed: {e}"))?
        .first()
        .map_or(0, |c| c.restarts);
    sup.0.stop().map_err(|e| format!("stop failed: {e}"))?;
    match sup.0.join_timeout(Duration::from_secs(30)) {
        Ok(Exit::Stopped) => {}
        Ok(other) => return Err(format!("supervisor ended with {other}")),
        Err(e) => return Err(format!("supervisor join failed: {e}")),
    }
    dist_record(
        "restart.sigkill_to_next_reply",
        &format!(
            "restart latency: one Phoenix worker under a OneForOne supervisor (intensity \
             1,000,000 in 1 s, so it never gives up; forkserver); each sample: ask it once \
             (untimed, the incarnation before), then ActorRef::kill() (SIGKILL) and at once \
             ask(WhichIncarnation), which waits in the mailbox and is answered by the new \
             incarnation; timed from just before kill() to a reply from a newer incarnation \
             in hand (an ask the dying incarnation took or answered is asked again, inside \
             the timing: stale_replies, actor_died); {warm} warm-up restarts discarded. \
             Covers the exit being reaped and reported to the supervisor, the zygote forking \
             the new incarnation, its create, and the queued ask. No Python counterpart: \
             multiprocessing has no supervisor"
        ),
        &series,
    )
    .i("stale_replies", stale)
    .i("actor_died", died)
    .i("restarts_reported", u64::from(restarts))
    .emit();
    Ok(())
}
