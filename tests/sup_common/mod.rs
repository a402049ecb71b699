//! Helpers shared by the supervision suites (`tests/supervision.rs`,
//! `tests/supervision_strategies.rs`): a [`Probe`] worker that reports its life to a
//! [`Collector`] running outside the supervision tree, a [`Watcher`] that monitors an actor
//! and keeps its `Down`s, a [`Guard`] that stops (or kills) an actor when a test ends, and
//! polling helpers with deadlines.
//!
//! Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::ops::Deref;
use std::time::{Duration, Instant};

use procession::__private::Dispatch;
use procession::prelude::*;
use procession::supervisor::{ChildInfo, ChildSpec, ChildState, SupervisorActor, WhichChildren};
use procession::Down;

/// Generous bound for anything that must happen in a passing run (a loaded 2-core box).
pub const LONG: Duration = Duration::from_secs(30);

/// How often a polled condition is checked again.
const POLL: Duration = Duration::from_millis(5);

// ---------------------------------------------------------------------------------------
// The collector: an unsupervised actor that records what probes tell it, in arrival order.

/// Something a [`Probe`] did, with the pid of the process that did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// `create` began.
    Creating { id: String, pid: u32 },
    /// `create` is about to return successfully.
    Created { id: String, pid: u32 },
    /// The `stopping` hook ran.
    Stopping { id: String, pid: u32 },
    /// Message `Record(n)` was handled.
    Got { n: u32, pid: u32 },
}

/// Tell: record one event.
#[derive(Serialize, Deserialize, Message)]
pub struct Note(pub Event);

/// Ask: every event recorded so far, in arrival order.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<Event>)]
pub struct Events;

/// Records events from probes in other processes.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Note, Events))]
pub struct Collector {
    events: Vec<Event>,
}

impl Handler<Note> for Collector {
    fn handle(&mut self, Note(e): Note, _cx: &mut Context<Self>) {
        self.events.push(e);
    }
}

impl Handler<Events> for Collector {
    fn handle(&mut self, _: Events, _cx: &mut Context<Self>) -> Vec<Event> {
        self.events.clone()
    }
}

/// A fresh collector, stopped when the guard drops.
pub fn collector() -> Guard<Collector> {
    Guard(procession::spawn(Collector::default()).unwrap())
}

/// The events recorded so far.
pub fn events(log: &ActorRef<Collector>) -> Vec<Event> {
    log.ask_timeout(Events, LONG).unwrap()
}

/// The ids of the `Created` events among `events`, in order.
pub fn created(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Created { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// The ids of the `Stopping` events among `events`, in order.
pub fn stopped(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Stopping { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// `events` without the `Creating` markers, as `"created a"` / `"stopping b"` strings.
pub fn story(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Created { id, .. } => Some(format!("created {id}")),
            Event::Stopping { id, .. } => Some(format!("stopping {id}")),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The probe: a worker whose every move can be observed and provoked.

/// A probe's spawn arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeArgs {
    /// What it answers to [`WhoAmI`] and records in its events.
    pub id: String,
    /// Where it records its events, if anywhere.
    pub log: Option<ActorRef<Collector>>,
    /// `create` fails from this incarnation on (0: always).
    pub fail_from: Option<u32>,
}

/// Arguments of a probe that records nothing.
pub fn quiet(id: &str) -> ProbeArgs {
    ProbeArgs {
        id: id.into(),
        log: None,
        fail_from: None,
    }
}

/// Arguments of a probe that records its life in `log`.
pub fn logged(id: &str, log: &ActorRef<Collector>) -> ProbeArgs {
    ProbeArgs {
        id: id.into(),
        log: Some(log.clone()),
        fail_from: None,
    }
}

/// A worker spec for a probe.
pub fn probe(id: &str, args: ProbeArgs) -> ChildSpec {
    ChildSpec::worker::<Probe>(id, args)
}

/// Ask: `(id, pid, incarnation)` of the process that answers.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (String, u32, u32))]
pub struct WhoAmI;

/// Tell: panic with this message in the handler.
#[derive(Serialize, Deserialize, Message)]
pub struct Crash(pub String);

/// Tell: stop itself (`Context::stop`, a normal exit).
#[derive(Serialize, Deserialize, Message)]
pub struct Quit;

/// Tell: spin for ever inside the handler (only SIGKILL ends it).
#[derive(Serialize, Deserialize, Message)]
pub struct Spin;

/// Tell: sleep this many milliseconds inside the handler (a slow message).
#[derive(Serialize, Deserialize, Message)]
pub struct Nap(pub u64);

/// Tell: record `Got { n }` in the log.
#[derive(Serialize, Deserialize, Message)]
pub struct Record(pub u32);

/// The observable worker.
#[derive(Actor)]
#[actor(handles(WhoAmI, Crash, Quit, Spin, Nap, Record), args = ProbeArgs)]
pub struct Probe {
    args: ProbeArgs,
}

impl Probe {
    fn note(&self, e: Event) {
        if let Some(log) = &self.args.log {
            let _ = log.tell(Note(e));
        }
    }
}

impl Actor for Probe {
    type Args = ProbeArgs;

    fn create(args: ProbeArgs, cx: &mut Context<Self>) -> Result<Self, BoxError> {
        let me = Probe { args };
        let (id, pid) = (me.args.id.clone(), cx.pid());
        me.note(Event::Creating {
            id: id.clone(),
            pid,
        });
        if me.args.fail_from.is_some_and(|n| cx.incarnation() >= n) {
            return Err(format!("probe {id} was told to fail").into());
        }
        me.note(Event::Created { id, pid });
        Ok(me)
    }

    fn stopping(&mut self, cx: &mut Context<Self>) {
        self.note(Event::Stopping {
            id: self.args.id.clone(),
            pid: cx.pid(),
        });
    }
}

impl Handler<WhoAmI> for Probe {
    fn handle(&mut self, _: WhoAmI, cx: &mut Context<Self>) -> (String, u32, u32) {
        (self.args.id.clone(), cx.pid(), cx.incarnation())
    }
}

impl Handler<Crash> for Probe {
    fn handle(&mut self, Crash(why): Crash, _cx: &mut Context<Self>) {
        panic!("{why}");
    }
}

impl Handler<Quit> for Probe {
    fn handle(&mut self, _: Quit, cx: &mut Context<Self>) {
        cx.stop();
    }
}

impl Handler<Spin> for Probe {
    fn handle(&mut self, _: Spin, _cx: &mut Context<Self>) {
        loop {
            std::hint::spin_loop();
        }
    }
}

impl Handler<Nap> for Probe {
    fn handle(&mut self, Nap(ms): Nap, _cx: &mut Context<Self>) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

impl Handler<Record> for Probe {
    fn handle(&mut self, Record(n): Record, cx: &mut Context<Self>) {
        self.note(Event::Got { n, pid: cx.pid() });
    }
}

// ---------------------------------------------------------------------------------------
// The watcher: monitors a supervisor and keeps the `Down`s it receives.

/// Ask: monitor this supervisor (registered once the reply arrives).
#[derive(Serialize, Deserialize, Message)]
pub struct WatchSup(pub ActorRef<SupervisorActor>);

/// Ask: the `Down`s received so far.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<Down>)]
pub struct Downs;

/// Keeps every `Down` it receives.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Down, WatchSup, Downs))]
pub struct Watcher {
    downs: Vec<Down>,
}

impl Handler<Down> for Watcher {
    fn handle(&mut self, down: Down, _cx: &mut Context<Self>) {
        self.downs.push(down);
    }
}

impl Handler<WatchSup> for Watcher {
    fn handle(&mut self, WatchSup(target): WatchSup, cx: &mut Context<Self>) {
        cx.monitor(&target).unwrap();
    }
}

impl Handler<Downs> for Watcher {
    fn handle(&mut self, _: Downs, _cx: &mut Context<Self>) -> Vec<Down> {
        self.downs.clone()
    }
}

/// A watcher that monitors `target`, stopped when the guard drops.
pub fn watch(target: &ActorRef<SupervisorActor>) -> Guard<Watcher> {
    let w = Guard(procession::spawn(Watcher::default()).unwrap());
    w.ask_timeout(WatchSup(target.clone()), LONG).unwrap();
    w
}

/// Waits until the watcher has received a `Down`, and returns the first one.
pub fn first_down(watcher: &ActorRef<Watcher>) -> Down {
    wait_until("the watcher receives a Down", || {
        watcher.ask_timeout(Downs, LONG).unwrap().into_iter().next()
    })
}

// ---------------------------------------------------------------------------------------
// Cleanup and polling.

/// An actor that is stopped (or, failing that, killed) and joined when the test ends,
/// however it ends. A test that stops and joins it itself leaves nothing for the drop.
pub struct Guard<A: Dispatch>(pub ActorRef<A>);

impl<A: Dispatch> Deref for Guard<A> {
    type Target = ActorRef<A>;
    fn deref(&self) -> &ActorRef<A> {
        &self.0
    }
}

impl<A: Dispatch> Drop for Guard<A> {
    fn drop(&mut self) {
        if !self.0.is_alive() {
            return;
        }
        let _ = self.0.stop();
        if self.0.join_timeout(LONG).is_err() {
            let _ = self.0.kill();
            let _ = self.0.join_timeout(LONG);
        }
    }
}

/// Spawns a supervisor that is cleaned up when the guard drops.
pub fn start(sup: procession::supervisor::Supervisor) -> Guard<SupervisorActor> {
    Guard(sup.spawn().unwrap())
}

/// Stops `actor` gracefully, joins it, and checks it ended with [`Exit::Stopped`].
pub fn stop_and_join<A: Dispatch>(actor: &ActorRef<A>) {
    actor.stop().unwrap();
    assert_eq!(actor.join_timeout(LONG).unwrap(), Exit::Stopped);
}

/// Calls `f` until it returns `Some`, at most [`LONG`]; panics naming `what` if it never does.
pub fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(POLL);
    }
}

/// The supervisor's children (asked with a long timeout: it may be busy restarting).
pub fn children(sup: &ActorRef<SupervisorActor>) -> Vec<ChildInfo> {
    sup.ask_timeout(WhichChildren, LONG).unwrap()
}

/// The child with this id (panics if there is none).
pub fn info(sup: &ActorRef<SupervisorActor>, id: &str) -> ChildInfo {
    children(sup)
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no child {id:?}"))
}

/// The running pid of the child with this id (panics if it does not run).
pub fn pid_of(sup: &ActorRef<SupervisorActor>, id: &str) -> u32 {
    info(sup, id)
        .pid
        .unwrap_or_else(|| panic!("child {id:?} does not run"))
}

/// The pid of every child, in start order.
pub fn pids(sup: &ActorRef<SupervisorActor>) -> Vec<Option<u32>> {
    children(sup).into_iter().map(|c| c.pid).collect()
}

/// Waits until child `id` runs again with a pid other than `old`; returns the new pid.
pub fn wait_restarted(sup: &ActorRef<SupervisorActor>, id: &str, old: u32) -> u32 {
    wait_until(
        &format!("child {id:?} runs with a pid other than {old}"),
        || {
            let c = info(sup, id);
            c.pid
                .filter(|&p| p != old && c.state == ChildState::Running)
        },
    )
}

/// Waits until child `id` is in `state`; returns its info.
pub fn wait_state(sup: &ActorRef<SupervisorActor>, id: &str, state: ChildState) -> ChildInfo {
    wait_until(&format!("child {id:?} is {state:?}"), || {
        Some(info(sup, id)).filter(|c| c.state == state)
    })
}

/// Waits until the supervisor has no child with this id.
pub fn wait_removed(sup: &ActorRef<SupervisorActor>, id: &str) {
    wait_until(&format!("child {id:?} is removed"), || {
        (!children(sup).iter().any(|c| c.id == id)).then_some(())
    })
}

/// `true` once no live process has this pid (a zombie counts as gone).
pub fn pid_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Waits until every pid in `pids` is gone.
pub fn wait_gone(pids: &[u32]) {
    for &pid in pids {
        wait_until(&format!("pid {pid} is gone"), || {
            pid_gone(pid).then_some(())
        });
    }
}

/// A reference to the running probe `id` of `sup`.
pub fn probe_ref(sup: &ActorRef<SupervisorActor>, id: &str) -> ActorRef<Probe> {
    sup.child::<Probe>(id).unwrap()
}
