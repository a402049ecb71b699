//! Every actor's counters, exported through the [`metrics`](https://docs.rs/metrics)
//! facade (cargo feature `metrics`), so a program that already runs a Prometheus,
//! OpenTelemetry or StatsD exporter gets procession's figures with its own.
//!
//! An [`Exporter`] reads a runtime's mailboxes as [`inspect`] does (read
//! only: no lock, no store, nothing sent) and records each actor's [`ActorStats`] into
//! whichever recorder is installed: counters are set to their absolute values, gauges to
//! their current ones. [`publish_every`] does it on a thread of its own.
//!
//! | metric | kind | from |
//! |---|---|---|
//! | `procession_messages_received_total` | counter | [`ActorStats::received`] |
//! | `procession_messages_handled_total` | counter | [`ActorStats::handled`] |
//! | `procession_asks_answered_total` | counter | [`ActorStats::asks_answered`] |
//! | `procession_bad_frames_total` | counter | [`ActorStats::bad_frames`] |
//! | `procession_restarts_total` | counter | [`ActorStats::restarts`] |
//! | `procession_handler_busy_seconds` | gauge | [`ActorStats::busy`] (a sum that only grows) |
//! | `procession_handler_max_seconds` | gauge | [`ActorStats::busy_max`] |
//! | `procession_mailbox_depth` | gauge | [`ActorStats::queued`] |
//! | `procession_mailbox_high_water` | gauge | [`ActorStats::queued_high`] |
//! | `procession_mailbox_capacity` | gauge | [`ActorStats::capacity`] |
//! | `procession_actor_running` | gauge | 1 while an incarnation runs, else 0 |
//! | `procession_memory_rss_bytes` | gauge | [`ActorStats::rss_bytes`], while it runs |
//! | `procession_cpu_seconds` | gauge | [`ActorStats::cpu_time`] of the current incarnation |
//! | `procession_actors` | gauge | actors in the runtime (no labels) |
//!
//! Each per-actor series has the labels `actor` (the type's stable name), `child` (its
//! child id under a supervisor, empty otherwise) and `id` (the mailbox id, in hex as in
//! the runtime directory). The pid is not a label: it changes at every restart.
//!
//! **Deliberate differences from a hand-rolled exporter**, with reasons:
//! - The seconds are gauges: the facade's counters hold integers. Both sums only grow
//!   while an incarnation runs, so `rate()` applies to them.
//! - `last_exit` is not exported: a label naming it would start a new series at every
//!   change, and the facade cannot remove the old one. [`ActorStats::last_exit`] and
//!   `procession-top` show it.
//! - An actor that ends for good is recorded once more, with `procession_actor_running`,
//!   its depth, memory and CPU at 0; after that the exporter forgets it. The facade
//!   cannot delete a series: an exporter's idle timeout (for example
//!   `metrics-exporter-prometheus`'s `idle_timeout`) drops it later.
//! - One exporter covers one runtime. To export several from one process, give each
//!   recorder (or each exporter's global labels) what tells them apart.
//!
//! ```
//! # use procession::prelude::*;
//! # #[derive(Serialize, Deserialize, Message)] struct Ping;
//! # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Ping))] struct Echo;
//! # impl Handler<Ping> for Echo { fn handle(&mut self, _: Ping, _: &mut Context<Self>) {} }
//! let echo: ActorRef<Echo> = procession::spawn(Echo)?;
//! // With a recorder installed (metrics::set_global_recorder, or an exporter's
//! // install()), a thread publishes every actor's figures once a second:
//! let publisher = procession::metrics::publish_every(std::time::Duration::from_secs(1))?;
//! echo.tell(Ping)?;
//! publisher.stop();
//! echo.stop()?;
//! echo.join()?;
//! # Ok::<(), procession::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use ::metrics::{describe_counter, describe_gauge, Label, Unit};

use crate::inspect::{self, ActorView, RuntimeInfo};
use crate::{ActorStats, Error, Result};

const RECEIVED: &str = "procession_messages_received_total";
const HANDLED: &str = "procession_messages_handled_total";
const ASKS: &str = "procession_asks_answered_total";
const BAD_FRAMES: &str = "procession_bad_frames_total";
const RESTARTS: &str = "procession_restarts_total";
const BUSY: &str = "procession_handler_busy_seconds";
const BUSY_MAX: &str = "procession_handler_max_seconds";
const DEPTH: &str = "procession_mailbox_depth";
const HIGH_WATER: &str = "procession_mailbox_high_water";
const CAPACITY: &str = "procession_mailbox_capacity";
const RUNNING: &str = "procession_actor_running";
const RSS: &str = "procession_memory_rss_bytes";
const CPU: &str = "procession_cpu_seconds";
const ACTORS: &str = "procession_actors";

/// Records a runtime's actors into the installed `metrics` recorder, each time
/// [`publish`](Self::publish) is called. It remembers which actors it has recorded, to
/// record once more, as ended, those that are gone (see the [module docs](self)).
///
/// ```
/// # use procession::prelude::*;
/// # #[derive(Serialize, Deserialize, Message)] struct Ping;
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Ping))] struct Echo;
/// # impl Handler<Ping> for Echo { fn handle(&mut self, _: Ping, _: &mut Context<Self>) {} }
/// let echo: ActorRef<Echo> = procession::spawn(Echo)?;
/// let mut exporter = procession::metrics::Exporter::new()?;
/// // Into the global recorder, or any other: here, one that keeps nothing.
/// let recorder = metrics::NoopRecorder;
/// let published = metrics::with_local_recorder(&recorder, || exporter.publish())?;
/// assert!(published >= 1);
/// echo.stop()?;
/// echo.join()?;
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Debug)]
pub struct Exporter {
    runtime: RuntimeInfo,
    /// The actors recorded last time, by mailbox id, with their labels.
    seen: HashMap<u64, [Label; 3]>,
}

impl Exporter {
    /// An exporter of this process's runtime (created if there is none yet, as
    /// [`spawn`](crate::spawn) would).
    ///
    /// # Errors
    /// As [`inspect::this_runtime`].
    pub fn new() -> Result<Exporter> {
        Ok(Self::for_runtime(inspect::this_runtime()?))
    }

    /// An exporter of another runtime of this user, found with
    /// [`inspect::runtimes`]: a sidecar process can export a program's figures without
    /// touching it.
    pub fn for_runtime(runtime: RuntimeInfo) -> Exporter {
        describe();
        Exporter {
            runtime,
            seen: HashMap::new(),
        }
    }

    /// The runtime it exports.
    pub fn runtime(&self) -> &RuntimeInfo {
        &self.runtime
    }

    /// Reads every actor of the runtime and records it; records once more, as ended, each
    /// actor recorded last time that is gone. Returns how many actors it recorded as
    /// present. An error (the runtime directory is gone) records nothing.
    ///
    /// # Errors
    /// As [`inspect::actors`].
    pub fn publish(&mut self) -> Result<usize> {
        let actors = inspect::actors(&self.runtime)?;
        Ok(self.record(&actors))
    }

    /// Records `actors`, read by the caller (for example with [`inspect::actors`]), as
    /// [`publish`](Self::publish) does.
    pub fn record(&mut self, actors: &[ActorView]) -> usize {
        let mut now = HashMap::with_capacity(actors.len());
        for view in actors {
            let labels = labels_of(view);
            record_one(&view.stats, &labels);
            now.insert(view.stats.id, labels);
        }
        for (id, labels) in &self.seen {
            if !now.contains_key(id) {
                record_gone(labels);
            }
        }
        ::metrics::gauge!(ACTORS).set(actors.len() as f64);
        self.seen = now;
        actors.len()
    }
}

fn labels_of(view: &ActorView) -> [Label; 3] {
    [
        Label::new("actor", view.stats.name.clone()),
        Label::new("child", view.label.clone()),
        Label::new("id", format!("{:x}", view.stats.id)),
    ]
}

fn record_one(s: &ActorStats, labels: &[Label; 3]) {
    ::metrics::counter!(RECEIVED, labels.iter()).absolute(s.received);
    ::metrics::counter!(HANDLED, labels.iter()).absolute(s.handled);
    ::metrics::counter!(ASKS, labels.iter()).absolute(s.asks_answered);
    ::metrics::counter!(BAD_FRAMES, labels.iter()).absolute(s.bad_frames);
    ::metrics::counter!(RESTARTS, labels.iter()).absolute(u64::from(s.restarts));
    ::metrics::gauge!(BUSY, labels.iter()).set(s.busy.as_secs_f64());
    ::metrics::gauge!(BUSY_MAX, labels.iter()).set(s.busy_max.as_secs_f64());
    ::metrics::gauge!(DEPTH, labels.iter()).set(f64::from(s.queued));
    ::metrics::gauge!(HIGH_WATER, labels.iter()).set(f64::from(s.queued_high));
    ::metrics::gauge!(CAPACITY, labels.iter()).set(f64::from(s.capacity));
    ::metrics::gauge!(RUNNING, labels.iter()).set(if s.running { 1.0 } else { 0.0 });
    ::metrics::gauge!(RSS, labels.iter()).set(s.rss_bytes.unwrap_or(0) as f64);
    ::metrics::gauge!(CPU, labels.iter()).set(s.cpu_time.unwrap_or_default().as_secs_f64());
}

fn record_gone(labels: &[Label; 3]) {
    for name in [RUNNING, DEPTH, RSS, CPU] {
        ::metrics::gauge!(name, labels.iter()).set(0.0);
    }
}

/// Describes every metric (unit and help text) to the installed recorder.
fn describe() {
    describe_counter!(
        RECEIVED,
        Unit::Count,
        "Frames received by the actor's mailbox."
    );
    describe_counter!(
        HANDLED,
        Unit::Count,
        "Messages (tells and asks) the actor handled."
    );
    describe_counter!(ASKS, Unit::Count, "Asks the actor answered.");
    describe_counter!(
        BAD_FRAMES,
        Unit::Count,
        "Malformed frames the mailbox rejected."
    );
    describe_counter!(RESTARTS, Unit::Count, "Times the actor was restarted.");
    describe_gauge!(BUSY, Unit::Seconds, "Time spent in handlers, summed.");
    describe_gauge!(BUSY_MAX, Unit::Seconds, "The longest single handler run.");
    describe_gauge!(DEPTH, Unit::Count, "Messages waiting in the mailbox.");
    describe_gauge!(
        HIGH_WATER,
        Unit::Count,
        "The most messages ever waiting at once."
    );
    describe_gauge!(CAPACITY, Unit::Count, "The mailbox's capacity in messages.");
    describe_gauge!(RUNNING, "1 while an incarnation of the actor runs, else 0.");
    describe_gauge!(RSS, Unit::Bytes, "Resident memory of the actor's process.");
    describe_gauge!(
        CPU,
        Unit::Seconds,
        "CPU time of the actor's current process."
    );
    describe_gauge!(ACTORS, Unit::Count, "Actors in the runtime.");
}

/// A thread that publishes this runtime's actors at a fixed interval, from
/// [`publish_every`]. [`stop`](Self::stop) it, or drop it, to end the thread.
#[derive(Debug)]
pub struct Publisher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a thread (`procession-metrics`) that publishes this process's runtime through
/// an [`Exporter`] into the global recorder, at once and then every `interval`. A
/// publish that fails (the runtime is gone) is logged with `tracing` and tried again at
/// the next interval.
///
/// # Errors
/// As [`Exporter::new`], and [`Error::Io`] if its thread cannot start.
pub fn publish_every(interval: Duration) -> Result<Publisher> {
    let mut exporter = Exporter::new()?;
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("procession-metrics".into())
        .spawn(move || loop {
            if let Err(e) = exporter.publish() {
                tracing::warn!(error = %e, "cannot publish the runtime's metrics");
            }
            match stopped.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => continue,
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
        })
        .map_err(|e| Error::io("cannot start the metrics thread", e))?;
    Ok(Publisher {
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Publisher {
    /// Ends the thread, after the publish under way if any, and waits for it.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.end();
    }
}
