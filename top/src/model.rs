//! What `procession-top` shows, apart from how: the runtimes it watches, one sample of
//! each per refresh, and the rows of a runtime's tree with rates taken between two samples.
//!
//! Everything is read through [`procession::inspect`], which maps mailboxes read-only: a
//! watched program runs exactly as it would unwatched.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use procession::inspect::{self, ActorView, RuntimeInfo};
use serde::Serialize;

/// How many refreshes a runtime that ended stays on show (marked "ended").
pub const ENDED_KEPT: u32 = 5;

/// Which runtimes to watch.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where runtime directories are (`/dev/shm` unless `PROCESSION_SHM_DIR` says).
    pub base: PathBuf,
    /// Only the runtime of this root pid.
    pub pid: Option<u32>,
}

impl Source {
    /// Every runtime of this user under [`inspect::default_base`].
    pub fn all() -> Source {
        Source {
            base: inspect::default_base(),
            pid: None,
        }
    }

    /// The live runtimes this source names, by root pid.
    pub fn list(&self) -> Vec<RuntimeInfo> {
        let mut list = inspect::runtimes_in(&self.base);
        if let Some(pid) = self.pid {
            list.retain(|rt| rt.root_pid == pid);
        }
        list
    }
}

/// One runtime's actors, read at one instant.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was read.
    pub at: Instant,
    /// Its actors, in no particular order.
    pub actors: Vec<ActorView>,
}

/// One row of a runtime's tree.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Its depth in the tree (0: spawned by the root process, or its parent is gone).
    pub depth: usize,
    /// What to call it: its child id under a supervisor, or else its type's name without
    /// the module path.
    pub display: String,
    /// How many rows sit directly under it.
    pub children: usize,
    /// Its counters and place, as `procession::inspect` read them.
    #[serde(flatten)]
    pub actor: ActorView,
    /// Messages handled per second since the last sample (none in a first sample).
    pub msg_per_s: Option<f64>,
    /// Its process's CPU use since the last sample, in percent of one CPU (none in a
    /// first sample, or across a restart).
    pub cpu_percent: Option<f64>,
}

/// One runtime as a refresh shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeFrame {
    /// Its root, directory and program.
    #[serde(flatten)]
    pub runtime: RuntimeInfo,
    /// It ended: these are its rows as last seen.
    pub ended: bool,
    /// Its actors in tree order.
    pub actors: Vec<Row>,
}

/// The rows of `now` in tree order, with rates against `prev` (an earlier sample of the
/// same runtime).
pub fn rows(now: &Sample, prev: Option<&Sample>) -> Vec<Row> {
    let before: BTreeMap<u64, &ActorView> = prev
        .map(|p| p.actors.iter().map(|a| (a.stats.id, a)).collect())
        .unwrap_or_default();
    let dt = prev.map(|p| now.at.saturating_duration_since(p.at));
    let order = inspect::tree_order(&now.actors);
    let mut out: Vec<Row> = order
        .iter()
        .map(|&(i, depth)| {
            let a = &now.actors[i];
            let (msg_per_s, cpu_percent) = match (before.get(&a.stats.id), dt) {
                (Some(b), Some(dt)) if dt > Duration::ZERO => rates(b, a, dt),
                _ => (None, None),
            };
            Row {
                depth,
                display: if a.label.is_empty() {
                    crate::ui::short_name(&a.stats.name).to_string()
                } else {
                    a.label.clone()
                },
                children: 0,
                actor: a.clone(),
                msg_per_s,
                cpu_percent,
            }
        })
        .collect();
    // In tree order, a row's children are the rows one level deeper that follow it
    // before the next row at its own depth or above.
    for i in 0..out.len() {
        let d = out[i].depth;
        out[i].children = out[i + 1..]
            .iter()
            .take_while(|r| r.depth > d)
            .filter(|r| r.depth == d + 1)
            .count();
    }
    out
}

/// Messages per second and CPU percent of one actor between two samples `dt` apart.
/// A counter that went backwards (it cannot, unless the header lies) gives no rate; CPU
/// time is compared only within one incarnation.
fn rates(before: &ActorView, now: &ActorView, dt: Duration) -> (Option<f64>, Option<f64>) {
    let secs = dt.as_secs_f64();
    let msg = now
        .stats
        .handled
        .checked_sub(before.stats.handled)
        .map(|n| n as f64 / secs);
    let cpu = match (before.stats.cpu_time, now.stats.cpu_time) {
        (Some(b), Some(n)) if before.stats.pid == now.stats.pid => n
            .checked_sub(b)
            .map(|used| used.as_secs_f64() / secs * 100.0),
        _ => None,
    };
    (msg, cpu)
}

/// Keeps the last sample of every runtime it watches, so that each refresh can give
/// rates, and shows a runtime that ended for [`ENDED_KEPT`] more refreshes.
#[derive(Debug)]
pub struct Tracker {
    source: Source,
    /// Each live runtime's last sample, and the frame made of it (kept to show once the
    /// runtime has ended).
    live: BTreeMap<PathBuf, (Sample, RuntimeFrame)>,
    ended: BTreeMap<PathBuf, (RuntimeFrame, u32)>,
}

impl Tracker {
    /// A tracker of `source`'s runtimes; nothing is read until [`refresh`](Self::refresh).
    pub fn new(source: Source) -> Tracker {
        Tracker {
            source,
            live: BTreeMap::new(),
            ended: BTreeMap::new(),
        }
    }

    /// Reads every runtime once: the live ones with their rows, then those that ended
    /// within the last [`ENDED_KEPT`] refreshes, all by root pid.
    pub fn refresh(&mut self) -> Vec<RuntimeFrame> {
        let mut frames = Vec::new();
        let mut seen = BTreeMap::new();
        for rt in self.source.list() {
            let Ok(actors) = inspect::actors(&rt) else {
                continue; // It ended between the listing and the read: see below.
            };
            let now = Sample {
                at: Instant::now(),
                actors,
            };
            let prev = self.live.get(&rt.dir).map(|(s, _)| s);
            let frame = RuntimeFrame {
                actors: rows(&now, prev),
                runtime: rt,
                ended: false,
            };
            frames.push(frame.clone());
            seen.insert(frame.runtime.dir.clone(), (now, frame));
        }
        let gone: Vec<PathBuf> = self
            .live
            .keys()
            .filter(|dir| !seen.contains_key(*dir))
            .cloned()
            .collect();
        for dir in gone {
            if let Some((_, mut frame)) = self.live.remove(&dir) {
                frame.ended = true;
                self.ended.insert(dir, (frame, 0));
            }
        }
        self.live = seen;
        self.ended.retain(|_, (frame, shown)| {
            *shown += 1;
            if *shown <= ENDED_KEPT {
                frames.push(frame.clone());
                true
            } else {
                false
            }
        });
        frames.sort_by(|a, b| {
            (a.runtime.root_pid, &a.runtime.dir).cmp(&(b.runtime.root_pid, &b.runtime.dir))
        });
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use procession::inspect::ActorState;
    use procession::ActorStats;

    fn view(id: u64, parent: u64, label: &str, handled: u64, cpu_ms: u64) -> ActorView {
        ActorView {
            stats: ActorStats {
                id,
                name: "demo::Worker".into(),
                pid: 100 + id as u32,
                handled,
                cpu_time: Some(Duration::from_millis(cpu_ms)),
                ..Default::default()
            },
            label: label.into(),
            parent,
            supervisor: false,
            state: ActorState::Running,
            daemon: false,
        }
    }

    #[test]
    fn rows_give_rates_between_two_samples_and_count_children() {
        let t0 = Instant::now();
        let prev = Sample {
            at: t0,
            actors: vec![view(1, 0, "", 10, 0), view(2, 1, "web", 0, 100)],
        };
        let now = Sample {
            at: t0 + Duration::from_secs(2),
            actors: vec![view(2, 1, "web", 50, 600), view(1, 0, "", 10, 0)],
        };
        let rows = rows(&now, Some(&prev));
        let shown: Vec<(&str, usize, usize)> = rows
            .iter()
            .map(|r| (r.display.as_str(), r.depth, r.children))
            .collect();
        assert_eq!(shown, [("Worker", 0, 1), ("web", 1, 0)]);
        assert_eq!(rows[1].msg_per_s, Some(25.0));
        assert_eq!(rows[1].cpu_percent, Some(25.0));
        assert_eq!(rows[0].msg_per_s, Some(0.0));
    }

    #[test]
    fn a_first_sample_or_a_counter_that_went_back_gives_no_rate() {
        let t0 = Instant::now();
        let now = Sample {
            at: t0 + Duration::from_secs(1),
            actors: vec![view(1, 0, "", 5, 50)],
        };
        assert_eq!(rows(&now, None)[0].msg_per_s, None);
        let later = Sample {
            at: t0,
            actors: vec![view(1, 0, "", 9, 90)],
        };
        let row = &rows(&now, Some(&later))[0];
        assert_eq!((row.msg_per_s, row.cpu_percent), (None, None));
    }
}
