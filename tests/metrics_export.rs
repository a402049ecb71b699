//! The `metrics` facade export (issue 10, item 3, cargo feature `metrics`): each actor's
//! counters and gauges, labelled with its type, child id and mailbox id, recorded into
//! metrics-util's `DebuggingRecorder` and compared with `ActorRef::stats`.

mod common;
mod sup_common;

use std::time::Instant;

use common::LONG;
use metrics::{SharedString, Unit};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use procession::metrics::{publish_every, Exporter};
use procession::prelude::*;
use procession::supervisor::{ChildSpec, Strategy, Supervisor};

/// Tell: do nothing.
#[derive(Serialize, Deserialize, Message)]
struct Nop;

/// Ask: answer at once.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct Ping;

/// Tell: panic.
#[derive(Serialize, Deserialize, Message)]
struct Crash;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Nop, Ping, Crash))]
struct Exported;

impl Handler<Nop> for Exported {
    fn handle(&mut self, _: Nop, _: &mut Context<Self>) {}
}

impl Handler<Ping> for Exported {
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

impl Handler<Crash> for Exported {
    fn handle(&mut self, _: Crash, _: &mut Context<Self>) {
        panic!("crash on request");
    }
}

/// What a recorder holds at one moment (taking a `DebuggingRecorder`'s snapshot resets
/// its values, so a test takes one and looks up every series in it).
type Snapshot = Vec<(CompositeKey, Option<Unit>, Option<SharedString>, DebugValue)>;

fn take(snap: &Snapshotter) -> Snapshot {
    snap.snapshot().into_vec()
}

/// The value of the series `name` whose `id` label is `id` (hex), with its labels.
fn series<'s>(
    snap: &'s Snapshot,
    kind: MetricKind,
    name: &str,
    id: u64,
) -> Option<(&'s DebugValue, Vec<(String, String)>)> {
    let id = format!("{id:x}");
    snap.iter().find_map(|(key, _, _, value)| {
        let labels: Vec<(String, String)> = key
            .key()
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        let ours = key.kind() == kind
            && key.key().name() == name
            && labels.iter().any(|(k, v)| k == "id" && *v == id);
        ours.then_some((value, labels))
    })
}

fn counter(snap: &Snapshot, name: &str, id: u64) -> Option<u64> {
    match series(snap, MetricKind::Counter, name, id)?.0 {
        DebugValue::Counter(v) => Some(*v),
        other => panic!("{name} is not a counter: {other:?}"),
    }
}

fn gauge(snap: &Snapshot, name: &str, id: u64) -> Option<f64> {
    match series(snap, MetricKind::Gauge, name, id)?.0 {
        DebugValue::Gauge(v) => Some(v.into_inner()),
        other => panic!("{name} is not a gauge: {other:?}"),
    }
}

#[test]
fn exported_counters_and_gauges_equal_the_actors_stats_with_its_labels() {
    let a = sup_common::Guard(procession::spawn::<Exported>(Exported).unwrap());
    for _ in 0..2 {
        a.tell(Nop).unwrap();
    }
    for _ in 0..3 {
        a.ask_timeout(Ping, LONG).unwrap();
    }
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    let mut exporter = Exporter::new().unwrap();
    let published = metrics::with_local_recorder(&recorder, || exporter.publish()).unwrap();
    let snap = take(&snap);
    let stats = a.stats();
    assert!(published >= 1);

    let id = a.id();
    let c = |name| counter(&snap, name, id).unwrap_or_else(|| panic!("no {name}"));
    let g = |name| gauge(&snap, name, id).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(c("procession_messages_handled_total"), 5);
    assert_eq!(c("procession_asks_answered_total"), 3);
    assert_eq!(c("procession_messages_received_total"), stats.received);
    assert_eq!(c("procession_restarts_total"), 0);
    assert_eq!(c("procession_bad_frames_total"), 0);
    assert_eq!(g("procession_mailbox_capacity"), f64::from(stats.capacity));
    assert_eq!(g("procession_mailbox_depth"), 0.0);
    assert_eq!(g("procession_actor_running"), 1.0);
    assert!(g("procession_memory_rss_bytes") > 0.0);
    assert!(g("procession_handler_max_seconds") <= g("procession_handler_busy_seconds"));

    let (_, mut labels) = series(
        &snap,
        MetricKind::Counter,
        "procession_messages_handled_total",
        id,
    )
    .unwrap();
    labels.sort();
    let name = stats.name.clone();
    assert_eq!(
        labels,
        [
            ("actor".to_string(), name),
            ("child".to_string(), String::new()),
            ("id".to_string(), format!("{id:x}")),
        ]
    );
    common::stop_and_join(&a);
}

#[test]
fn a_supervised_child_is_labelled_with_its_child_id_and_its_restart_is_counted() {
    let sup = sup_common::start(
        Supervisor::new(Strategy::OneForOne)
            .child(ChildSpec::worker::<Exported>("cache", Exported)),
    );
    let child = sup.child::<Exported>("cache").unwrap();
    let first = sup_common::pid_of(&sup, "cache");
    child.tell(Crash).unwrap();
    sup_common::wait_restarted(&sup, "cache", first);
    child.ask_timeout(Ping, LONG).unwrap();

    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    let mut exporter = Exporter::new().unwrap();
    metrics::with_local_recorder(&recorder, || exporter.publish()).unwrap();
    let snap = take(&snap);
    let (value, labels) = series(
        &snap,
        MetricKind::Counter,
        "procession_restarts_total",
        child.id(),
    )
    .expect("the child's restarts are exported");
    assert_eq!(value, &DebugValue::Counter(1));
    assert!(
        labels.contains(&("child".to_string(), "cache".to_string())),
        "{labels:?}"
    );
    // The supervisor is an actor too, exported with its own series.
    assert_eq!(
        gauge(&snap, "procession_actor_running", sup.id()),
        Some(1.0)
    );
}

#[test]
fn an_actor_that_ended_is_recorded_once_more_as_not_running() {
    let a = sup_common::Guard(procession::spawn::<Exported>(Exported).unwrap());
    a.ask_timeout(Ping, LONG).unwrap();
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    let mut exporter = Exporter::new().unwrap();
    metrics::with_local_recorder(&recorder, || exporter.publish()).unwrap();
    let first = take(&snap);
    let id = a.id();
    assert_eq!(gauge(&first, "procession_actor_running", id), Some(1.0));
    assert!(gauge(&first, "procession_memory_rss_bytes", id).unwrap() > 0.0);

    common::stop_and_join(&a);
    // Its mailbox is removed once it is joined: the exporter no longer finds it, and
    // records it as ended instead of leaving its last figures standing.
    let views = procession::inspect::actors(exporter.runtime()).unwrap();
    assert!(views.iter().all(|v| v.stats.id != id));
    metrics::with_local_recorder(&recorder, || exporter.publish()).unwrap();
    let snap = take(&snap);
    assert_eq!(gauge(&snap, "procession_actor_running", id), Some(0.0));
    assert_eq!(gauge(&snap, "procession_memory_rss_bytes", id), Some(0.0));
    assert_eq!(gauge(&snap, "procession_mailbox_depth", id), Some(0.0));
    // Its counters are not recorded again (the debugging recorder zeroes what a snapshot
    // took, so an untouched counter reads 0; one recorded again would read 1).
    assert_eq!(
        counter(&first, "procession_asks_answered_total", id),
        Some(1)
    );
    assert_eq!(
        counter(&snap, "procession_asks_answered_total", id),
        Some(0)
    );
}

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

/// Waits until a thread named `procession-metrics` runs here (`true`) or none does.
fn wait_for_publisher_thread(present: bool) {
    // The kernel keeps 15 bytes of a thread's name.
    let comm = &"procession-metrics"[..15];
    let deadline = Instant::now() + LONG;
    while thread_names().iter().any(|n| n == comm) != present {
        assert!(
            Instant::now() < deadline,
            "the publisher thread never became {present}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The only test of this binary that installs a global recorder.
#[test]
fn publish_every_records_into_the_global_recorder_until_it_is_stopped() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();
    let a = sup_common::Guard(procession::spawn::<Exported>(Exported).unwrap());
    let publisher = publish_every(std::time::Duration::from_millis(20)).unwrap();
    wait_for_publisher_thread(true);
    for _ in 0..4 {
        a.ask_timeout(Ping, LONG).unwrap();
    }
    // Published at every interval: the fourth answer shows up without another call.
    let deadline = Instant::now() + LONG;
    while counter(&take(&snap), "procession_asks_answered_total", a.id()) != Some(4) {
        assert!(
            Instant::now() < deadline,
            "the publisher never recorded 4 asks"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    publisher.stop();
    // stop joins it: the thread has ended, and its task is gone (at once, or as soon as
    // the kernel has released it).
    wait_for_publisher_thread(false);
    common::stop_and_join(&a);
}
