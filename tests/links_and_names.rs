//! Links, monitors, names and the daemon rules (src/supervisor/mod.rs, "Links,
//! monitors, daemons" and "Names"):
//! - a monitor gets exactly one `Down` with the target's id and exit, for a stop, a panic
//!   and a SIGKILL; monitoring an actor that already exited gives the `Down` at once;
//! - a link kills the other side of an abnormal exit (either way) with a `Failed` exit
//!   naming the dead actor; a clean exit does not propagate; an actor that traps exits
//!   gets an `Exited` message instead and keeps running;
//! - `register` / `whereis` / `unregister`, their errors, a name surviving a supervised
//!   restart and released when its actor is gone for good (an unsupervised actor joined,
//!   a supervised child terminated);
//! - a process exiting normally (the root, or an actor that stops) waits for its
//!   non-daemon actors; the root terminates its daemon ones; a daemon's subtree dies with
//!   it; SIGKILL of the root of a 3-level supervision tree leaves no process and no
//!   runtime directory.
//!
//! Root-exit scenarios run this test binary again as a root process of its own, on the
//! `#[ignore]`d helper test [`daemon_probe`] (see `restart_common::Probe`).

mod restart_common;

use std::io::Read;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use procession::__private::Dispatch;
use procession::prelude::*;
use procession::supervisor::{ChildSpec, Strategy, Supervisor, TreeNode};
use procession::{Down, Error, Exited, SpawnOptions, StartMethod};

use restart_common::{
    children_of, entries, proc_list, procs, runtime_dirs_of, wait_for, Probe, Proc, TempDir, LONG,
};

/// Selects what [`daemon_probe`] does; unset, it does nothing.
const PROBE_ENV: &str = "PROCESSION_TEST_DAEMON_PROBE";
/// The name of [`daemon_probe`] in this test binary.
const PROBE_TEST: &str = "daemon_probe";
/// Where the probe's non-daemon actor writes that it stopped itself.
const MARKER_ENV: &str = "PROCESSION_TEST_DAEMON_MARKER";
/// How long the probe's non-daemon actor lives.
const NON_DAEMON_LIFE: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------
// Actors.

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct WhoAreYou;

/// A tell whose handler panics.
#[derive(Serialize, Deserialize, Message)]
struct Crash;

/// Something to monitor, link to, or name.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WhoAreYou, Crash))]
struct Target;

impl Handler<WhoAreYou> for Target {
    fn handle(&mut self, _: WhoAreYou, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

impl Handler<Crash> for Target {
    fn handle(&mut self, _: Crash, _cx: &mut Context<Self>) {
        panic!("target crashed on purpose")
    }
}

/// Another actor type, for `whereis` with the wrong type.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WhoAreYou))]
struct Other;

impl Handler<WhoAreYou> for Other {
    fn handle(&mut self, _: WhoAreYou, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

/// Monitors the target now.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(), String>)]
struct Watch(ActorRef<Target>);

/// Keeps a reference, to monitor it later ([`WatchHeld`]).
#[derive(Serialize, Deserialize, Message)]
struct Hold(ActorRef<Target>);

/// Monitors the reference kept by [`Hold`].
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(), String>)]
struct WatchHeld;

/// Every `Down` received so far.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<Down>)]
struct Downs;

/// Monitors targets and records the `Down`s it receives.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Down, Watch, Hold, WatchHeld, Downs))]
struct Watcher {
    downs: Vec<Down>,
    held: Option<ActorRef<Target>>,
}

impl Handler<Down> for Watcher {
    fn handle(&mut self, down: Down, _cx: &mut Context<Self>) {
        self.downs.push(down);
    }
}

impl Handler<Watch> for Watcher {
    fn handle(&mut self, Watch(t): Watch, cx: &mut Context<Self>) -> Result<(), String> {
        cx.monitor(&t).map_err(|e| e.to_string())
    }
}

impl Handler<Hold> for Watcher {
    fn handle(&mut self, Hold(t): Hold, _cx: &mut Context<Self>) {
        self.held = Some(t);
    }
}

impl Handler<WatchHeld> for Watcher {
    fn handle(&mut self, _: WatchHeld, cx: &mut Context<Self>) -> Result<(), String> {
        let t = self.held.as_ref().ok_or("nothing held")?;
        cx.monitor(t).map_err(|e| e.to_string())
    }
}

impl Handler<Downs> for Watcher {
    fn handle(&mut self, _: Downs, _cx: &mut Context<Self>) -> Vec<Down> {
        self.downs.clone()
    }
}

/// Links to the target.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(), String>)]
struct LinkTo(ActorRef<Target>);

/// Turns exit trapping on.
#[derive(Serialize, Deserialize, Message)]
struct TrapExits;

/// Every `Exited` received so far.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<Exited>)]
struct Exiteds;

/// Links to targets; records `Exited` messages when it traps exits.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(LinkTo, TrapExits, Exited, Exiteds, WhoAreYou, Crash))]
struct Linker {
    exited: Vec<Exited>,
}

impl Handler<LinkTo> for Linker {
    fn handle(&mut self, LinkTo(t): LinkTo, cx: &mut Context<Self>) -> Result<(), String> {
        cx.link(&t).map_err(|e| e.to_string())
    }
}

impl Handler<TrapExits> for Linker {
    fn handle(&mut self, _: TrapExits, cx: &mut Context<Self>) {
        cx.trap_exit(true);
    }
}

impl Handler<Exited> for Linker {
    fn handle(&mut self, e: Exited, _cx: &mut Context<Self>) {
        self.exited.push(e);
    }
}

impl Handler<Exiteds> for Linker {
    fn handle(&mut self, _: Exiteds, _cx: &mut Context<Self>) -> Vec<Exited> {
        self.exited.clone()
    }
}

impl Handler<WhoAreYou> for Linker {
    fn handle(&mut self, _: WhoAreYou, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

impl Handler<Crash> for Linker {
    fn handle(&mut self, _: Crash, _cx: &mut Context<Self>) {
        panic!("linker crashed on purpose")
    }
}

/// The pid of the child a [`DaemonParent`] spawned.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct ChildPid;

/// Spawns a [`Target`] of its own when created.
#[derive(Actor)]
#[actor(handles(ChildPid), args = ())]
struct DaemonParent {
    child: ActorRef<Target>,
}

impl Actor for DaemonParent {
    type Args = ();

    fn create((): (), cx: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(DaemonParent {
            child: cx.spawn(Target)?,
        })
    }
}

impl Handler<ChildPid> for DaemonParent {
    fn handle(&mut self, _: ChildPid, _cx: &mut Context<Self>) -> u32 {
        self.child.pid()
    }
}

/// Spawns a non-daemon [`SelfStopper`] (writing the marker file at this path) and sets
/// it to stop itself after [`NON_DAEMON_LIFE`].
#[derive(Actor)]
#[actor(handles(ChildPid), args = String)]
struct StopperParent {
    child: ActorRef<SelfStopper>,
}

impl Actor for StopperParent {
    type Args = String;

    fn create(marker: String, cx: &mut Context<Self>) -> Result<Self, BoxError> {
        let child: ActorRef<SelfStopper> = cx.spawn(SelfStopper { marker })?;
        child.tell(QuitAfter(NON_DAEMON_LIFE))?;
        Ok(StopperParent { child })
    }
}

impl Handler<ChildPid> for StopperParent {
    fn handle(&mut self, _: ChildPid, _cx: &mut Context<Self>) -> u32 {
        self.child.pid()
    }
}

/// Sets a timer that makes the actor stop itself ([`Quit`]) after this delay.
#[derive(Serialize, Deserialize, Message)]
struct QuitAfter(Duration);

/// Writes the marker file, then stops the actor.
#[derive(Serialize, Deserialize, Message)]
struct Quit;

/// Stops itself on a timer, leaving a marker file behind.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(QuitAfter, Quit))]
struct SelfStopper {
    marker: String,
}

impl Handler<QuitAfter> for SelfStopper {
    fn handle(&mut self, QuitAfter(d): QuitAfter, cx: &mut Context<Self>) {
        cx.send_self_after(d, Quit).unwrap();
    }
}

impl Handler<Quit> for SelfStopper {
    fn handle(&mut self, _: Quit, cx: &mut Context<Self>) {
        std::fs::write(&self.marker, b"stopped itself").unwrap();
        cx.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Plumbing.

fn name_of<A: Dispatch>() -> &'static str {
    A::NAME
}

fn stop<A: Dispatch>(actor: &ActorRef<A>) {
    actor.stop().unwrap();
    assert_eq!(actor.join_timeout(LONG).unwrap(), Exit::Stopped);
}

/// Returns once the zygote has finished publishing every exit that a `join` has already
/// seen (the `Down`s, links and `Exited`s of that exit included): the zygote serves one
/// request at a time, and a spawn is a request to it.
fn zygote_barrier() {
    let probe: ActorRef<Target> = procession::spawn_with(
        Target,
        SpawnOptions::new().start_method(StartMethod::Forkserver),
    )
    .unwrap();
    stop(&probe);
}

/// The `Down`s the watcher received about actor `id`, once there is at least one.
fn downs_about(watcher: &ActorRef<Watcher>, id: u64) -> Vec<Down> {
    let mut downs = Vec::new();
    let arrived = wait_for(LONG, || {
        downs = watcher.ask(Downs).unwrap();
        downs.iter().any(|d| d.id == id)
    });
    assert!(arrived, "no Down within {LONG:?}: {downs:?}");
    downs.into_iter().filter(|d| d.id == id).collect()
}

/// Makes `target` exit with `end`, and returns every `Down` a watcher that monitors it
/// received about it. Afterwards a second monitored actor is stopped and its `Down`
/// waited for, so a duplicate `Down` about `target` would have arrived by then.
fn monitored_exit(target: &ActorRef<Target>, end: impl FnOnce(&ActorRef<Target>)) -> Vec<Down> {
    let watcher: ActorRef<Watcher> = procession::spawn(Watcher::default()).unwrap();
    let sentinel: ActorRef<Target> = procession::spawn(Target).unwrap();
    watcher.ask(Watch(target.clone())).unwrap().unwrap();
    watcher.ask(Watch(sentinel.clone())).unwrap().unwrap();
    end(target);
    target.join_timeout(LONG).unwrap();
    downs_about(&watcher, target.id());
    stop(&sentinel);
    downs_about(&watcher, sentinel.id());
    let downs = watcher.ask(Downs).unwrap();
    stop(&watcher);
    downs.into_iter().filter(|d| d.id == target.id()).collect()
}

// ---------------------------------------------------------------------------------------
// Monitors.

#[test]
fn monitor_delivers_exactly_one_down_with_exit_stopped_when_the_target_is_stopped() {
    let target: ActorRef<Target> = procession::spawn(Target).unwrap();
    let pid = target.pid();
    let downs = monitored_exit(&target, |t| t.stop().unwrap());
    assert_eq!(
        downs,
        vec![Down {
            id: target.id(),
            actor: name_of::<Target>().to_string(),
            pid,
            exit: Exit::Stopped,
        }]
    );
}

#[test]
fn monitor_delivers_exactly_one_down_with_exit_panicked_when_the_target_panics() {
    let target: ActorRef<Target> = procession::spawn(Target).unwrap();
    let pid = target.pid();
    let downs = monitored_exit(&target, |t| t.tell(Crash).unwrap());
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!((downs[0].id, downs[0].pid), (target.id(), pid));
    assert_eq!(downs[0].actor, name_of::<Target>());
    match &downs[0].exit {
        Exit::Panicked { message } => assert!(message.contains("on purpose"), "{message}"),
        other => panic!("expected Panicked, got {other:?}"),
    }
}

#[test]
fn monitor_delivers_exactly_one_down_with_exit_signaled_9_when_the_target_is_sigkilled() {
    let target: ActorRef<Target> = procession::spawn(Target).unwrap();
    let pid = target.pid();
    let downs = monitored_exit(&target, |t| t.kill().unwrap());
    assert_eq!(
        downs,
        vec![Down {
            id: target.id(),
            actor: name_of::<Target>().to_string(),
            pid,
            exit: Exit::Signaled(9),
        }]
    );
}

#[test]
fn monitoring_an_actor_that_already_exited_delivers_its_down_at_once() {
    let watcher: ActorRef<Watcher> = procession::spawn(Watcher::default()).unwrap();
    let target: ActorRef<Target> = procession::spawn(Target).unwrap();
    let pid = target.pid();
    watcher.tell(Hold(target.clone())).unwrap();
    watcher.ask(Downs).unwrap(); // the watcher holds the reference now
    stop(&target);
    watcher.ask(WatchHeld).unwrap().unwrap();
    // The Down was queued while WatchHeld was handled, so before this ask.
    let downs = watcher.ask(Downs).unwrap();
    assert_eq!(
        downs,
        vec![Down {
            id: target.id(),
            actor: name_of::<Target>().to_string(),
            pid,
            exit: Exit::Stopped,
        }]
    );
    stop(&watcher);
}

// ---------------------------------------------------------------------------------------
// Links.

/// A [`Linker`] linked to a [`Target`].
fn linked_pair() -> (ActorRef<Linker>, ActorRef<Target>) {
    let a: ActorRef<Linker> = procession::spawn(Linker::default()).unwrap();
    let b: ActorRef<Target> = procession::spawn(Target).unwrap();
    a.ask(LinkTo(b.clone())).unwrap().unwrap();
    (a, b)
}

fn assert_failed_naming(exit: Exit, actor: &str, pid: u32) {
    match exit {
        Exit::Failed(why) => assert!(
            why.contains(actor) && why.contains(&pid.to_string()),
            "the Failed exit does not name {actor} (pid {pid}): {why}"
        ),
        other => panic!("expected Failed naming {actor}, got {other:?}"),
    }
}

#[test]
fn link_a_panic_of_the_linked_actor_kills_the_linking_one_with_failed_naming_it() {
    let (a, b) = linked_pair();
    let b_pid = b.pid();
    b.tell(Crash).unwrap();
    assert!(matches!(
        b.join_timeout(LONG).unwrap(),
        Exit::Panicked { .. }
    ));
    assert_failed_naming(a.join_timeout(LONG).unwrap(), name_of::<Target>(), b_pid);
}

#[test]
fn link_works_both_ways_a_panic_of_the_linking_actor_kills_the_linked_one() {
    let (a, b) = linked_pair();
    let a_pid = a.pid();
    a.tell(Crash).unwrap();
    assert!(matches!(
        a.join_timeout(LONG).unwrap(),
        Exit::Panicked { .. }
    ));
    assert_failed_naming(b.join_timeout(LONG).unwrap(), name_of::<Linker>(), a_pid);
}

#[test]
fn link_a_clean_stop_of_the_linked_actor_leaves_the_linking_one_running() {
    let (a, b) = linked_pair();
    let a_pid = a.pid();
    stop(&b);
    zygote_barrier();
    assert!(a.is_alive());
    assert_eq!(a.ask(WhoAreYou).unwrap(), a_pid);
    stop(&a);
}

#[test]
fn link_an_actor_that_traps_exits_receives_exited_and_keeps_running() {
    let a: ActorRef<Linker> = procession::spawn(Linker::default()).unwrap();
    let b: ActorRef<Target> = procession::spawn(Target).unwrap();
    let (a_pid, b_pid) = (a.pid(), b.pid());
    a.tell(TrapExits).unwrap();
    a.ask(LinkTo(b.clone())).unwrap().unwrap();
    b.tell(Crash).unwrap();
    assert!(matches!(
        b.join_timeout(LONG).unwrap(),
        Exit::Panicked { .. }
    ));
    let mut exited = Vec::new();
    assert!(
        wait_for(LONG, || {
            exited = a.ask(Exiteds).unwrap();
            !exited.is_empty()
        }),
        "no Exited within {LONG:?}"
    );
    assert_eq!(exited.len(), 1, "{exited:?}");
    let e = &exited[0];
    assert_eq!((e.id, e.pid), (b.id(), b_pid));
    assert_eq!(e.actor, name_of::<Target>());
    assert!(matches!(e.exit, Exit::Panicked { .. }), "{:?}", e.exit);
    assert!(a.is_alive());
    assert_eq!(a.ask(WhoAreYou).unwrap(), a_pid);
    stop(&a);
}

// ---------------------------------------------------------------------------------------
// Names.

#[test]
fn register_binds_a_name_whereis_finds_it_and_unregister_removes_it() {
    let t: ActorRef<Target> = procession::spawn(Target).unwrap();
    procession::register("links.register", &t).unwrap();
    let found: ActorRef<Target> = procession::whereis("links.register").unwrap();
    assert_eq!(found, t);
    assert_eq!(found.ask(WhoAreYou).unwrap(), t.pid());
    assert!(procession::unregister("links.register", &t));
    assert!(procession::whereis::<Target>("links.register").is_none());
    assert!(!procession::unregister("links.register", &t));
    stop(&t);
}

#[test]
fn whereis_with_the_wrong_actor_type_returns_none() {
    let t: ActorRef<Target> = procession::spawn(Target).unwrap();
    procession::register("links.wrong-type", &t).unwrap();
    assert!(procession::whereis::<Other>("links.wrong-type").is_none());
    assert!(procession::whereis::<Target>("links.wrong-type").is_some());
    stop(&t);
}

#[test]
fn registering_a_name_held_by_a_live_actor_fails_with_name_taken() {
    let first: ActorRef<Target> = procession::spawn(Target).unwrap();
    let second: ActorRef<Target> = procession::spawn(Target).unwrap();
    procession::register("links.taken", &first).unwrap();
    match procession::register("links.taken", &second) {
        Err(Error::NameTaken(name)) => assert_eq!(name, "links.taken"),
        other => panic!("expected NameTaken, got {other:?}"),
    }
    assert_eq!(
        procession::whereis::<Target>("links.taken"),
        Some(first.clone())
    );
    stop(&first);
    stop(&second);
}

#[test]
fn registering_an_invalid_name_fails_with_bad_name() {
    let t: ActorRef<Target> = procession::spawn(Target).unwrap();
    let too_long = "n".repeat(101);
    for name in ["", ".hidden", "has space", "a/b", "ünï", too_long.as_str()] {
        match procession::register(name, &t) {
            Err(Error::BadName(n)) => assert_eq!(n, name),
            other => panic!("{name:?}: expected BadName, got {other:?}"),
        }
    }
    stop(&t);
}

#[test]
fn a_name_stays_bound_to_a_supervised_child_across_a_restart() {
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(60))
        .child(ChildSpec::worker::<Target>("t", Target))
        .spawn()
        .unwrap();
    let t: ActorRef<Target> = sup.child("t").unwrap();
    procession::register("links.supervised", &t).unwrap();
    let before = t.pid();
    let incarnation = t.mailbox().incarnation();
    t.kill().unwrap();
    assert!(
        wait_for(LONG, || t.mailbox().incarnation() > incarnation),
        "no restart within {LONG:?}"
    );
    let found: ActorRef<Target> = procession::whereis("links.supervised").unwrap();
    let after = found.ask_timeout(WhoAreYou, LONG).unwrap();
    assert_ne!(after, before);
    assert_eq!(after, t.pid());
    stop(&sup);
}

#[test]
fn a_name_is_released_when_its_unsupervised_actor_is_gone_for_good() {
    let t: ActorRef<Target> = procession::spawn(Target).unwrap();
    procession::register("links.released", &t).unwrap();
    stop(&t);
    assert!(procession::whereis::<Target>("links.released").is_none());
    // Free for another actor.
    let next: ActorRef<Target> = procession::spawn(Target).unwrap();
    procession::register("links.released", &next).unwrap();
    assert_eq!(
        procession::whereis::<Target>("links.released"),
        Some(next.clone())
    );
    stop(&next);
}

#[test]
fn a_name_of_a_supervised_child_is_released_when_the_child_is_terminated_for_good() {
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::worker::<Target>("t", Target))
        .spawn()
        .unwrap();
    let t: ActorRef<Target> = sup.child("t").unwrap();
    procession::register("links.terminated", &t).unwrap();
    sup.terminate_child("t").unwrap();
    assert!(procession::whereis::<Target>("links.terminated").is_none());
    stop(&sup);
}

// ---------------------------------------------------------------------------------------
// Daemons.

/// Every pid in a supervision tree snapshot.
fn tree_pids(node: &TreeNode, out: &mut Vec<u32>) {
    out.extend(node.info.pid);
    for c in &node.children {
        tree_pids(c, out);
    }
}

/// A root process of its own, doing what `PROBE_ENV` says, then printing one `PROBE`
/// line:
/// - `non_daemon`: spawns a non-daemon [`SelfStopper`] that stops itself after
///   [`NON_DAEMON_LIFE`], prints `pid=`, and returns (so the process exits normally);
/// - `daemon`: spawns a daemon [`Target`] (it would live for ever), prints `pid=` and
///   `dir=`, and returns;
/// - `tree`: starts a 3-level supervision tree, prints every actor process and the
///   root's own children (the zygote) as `pids=`, and `dir=`, then blocks on stdin.
#[test]
#[ignore = "helper: other tests of this file run it in a subprocess"]
fn daemon_probe() {
    let Ok(mode) = std::env::var(PROBE_ENV) else {
        return;
    };
    let me = std::process::id();
    let mut out = std::io::stdout();
    match mode.as_str() {
        "non_daemon" => {
            let marker = std::env::var(MARKER_ENV).unwrap();
            let a: ActorRef<SelfStopper> = procession::spawn(SelfStopper { marker }).unwrap();
            a.tell(QuitAfter(NON_DAEMON_LIFE)).unwrap();
            writeln!(out, "\nPROBE pid={}", proc_list([a.pid()])).unwrap();
        }
        "daemon" => {
            let a: ActorRef<Target> =
                procession::spawn_with(Target, SpawnOptions::new().daemon(true)).unwrap();
            let dir = runtime_dirs_of(me).pop().unwrap();
            writeln!(
                out,
                "\nPROBE pid={} dir={}",
                proc_list([a.pid()]),
                dir.display()
            )
            .unwrap();
        }
        "tree" => {
            let workers = |n: &str| {
                Supervisor::new(Strategy::OneForOne)
                    .child(ChildSpec::worker::<Target>(format!("{n}-w1"), Target))
                    .child(ChildSpec::worker::<Target>(format!("{n}-w2"), Target))
            };
            let root = Supervisor::new(Strategy::OneForOne)
                .child(ChildSpec::supervisor("mid", workers("mid")))
                .child(ChildSpec::worker::<Target>("top-w", Target))
                .spawn()
                .unwrap();
            let tree = root.tree().unwrap();
            let mut pids = Vec::new();
            tree_pids(&tree, &mut pids);
            assert_eq!(
                pids.len(),
                5,
                "root, mid, 2 workers below mid, 1 beside:\n{tree}"
            );
            pids.extend(children_of(me));
            let dir = runtime_dirs_of(me).pop().unwrap();
            writeln!(
                out,
                "\nPROBE pids={} dir={}",
                proc_list(pids),
                dir.display()
            )
            .unwrap();
            out.flush().unwrap();
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        other => panic!("unknown probe mode {other:?}"),
    }
    out.flush().unwrap();
}

fn assert_dir_removed(dir: &Path) {
    assert!(
        wait_for(LONG, || !dir.exists()),
        "runtime dir {} is left: {:?}",
        dir.display(),
        entries(dir)
    );
}

#[test]
fn at_a_normal_exit_the_root_waits_for_its_non_daemon_actors() {
    let tmp = TempDir::new("links-non-daemon");
    let marker = tmp.file("stopped");
    let mut probe = Probe::start(
        PROBE_TEST,
        (PROBE_ENV, "non_daemon"),
        &[(MARKER_ENV, &marker)],
    );
    let report = probe.report();
    let actor = procs(&report["pid"])[0];
    let root = probe.child.id();
    let ran = probe.finish();
    // The root ended only after its actor had ended by itself (not killed at exit).
    assert!(!actor.running(), "the actor outlived the root");
    assert!(
        PathBuf::from(&marker).exists(),
        "the actor did not stop itself: it was killed when the root exited"
    );
    assert!(
        ran >= NON_DAEMON_LIFE,
        "the root exited after {ran:?}, before its actor's {NON_DAEMON_LIFE:?} were up"
    );
    assert!(
        wait_for(LONG, || runtime_dirs_of(root).is_empty()),
        "left behind: {:?}",
        runtime_dirs_of(root)
    );
}

#[test]
fn at_a_normal_exit_the_root_terminates_its_daemon_actors() {
    let mut probe = Probe::start(PROBE_TEST, (PROBE_ENV, "daemon"), &[]);
    let report = probe.report();
    let daemon = procs(&report["pid"])[0];
    let dir = PathBuf::from(&report["dir"]);
    // It returns although its daemon would live for ever...
    probe.finish();
    // ...and the daemon goes with it.
    assert!(
        wait_for(LONG, || !daemon.running()),
        "daemon {daemon} still runs"
    );
    assert_dir_removed(&dir);
}

#[test]
fn a_daemons_subtree_dies_with_it() {
    let d: ActorRef<DaemonParent> =
        procession::spawn_with((), SpawnOptions::new().daemon(true)).unwrap();
    let child = Proc::of(d.ask(ChildPid).unwrap());
    assert!(child.running());
    d.kill().unwrap();
    assert_eq!(d.join_timeout(LONG).unwrap(), Exit::Signaled(9));
    assert!(
        wait_for(LONG, || !child.running()),
        "the daemon's child {child} outlived it"
    );
}

#[test]
fn an_actor_that_stops_waits_for_its_non_daemon_children() {
    let tmp = TempDir::new("links-actor-non-daemon");
    let marker = tmp.file("stopped");
    let parent: ActorRef<StopperParent> = procession::spawn(marker.clone()).unwrap();
    let child = Proc::of(parent.ask(ChildPid).unwrap());
    stop(&parent);
    // The parent's process ended only after its child had stopped itself.
    assert!(
        PathBuf::from(&marker).exists(),
        "the child did not stop itself: it was killed when its parent exited"
    );
    assert!(
        wait_for(LONG, || !child.running()),
        "child {child} outlived its parent"
    );
}

#[test]
fn sigkill_of_the_root_of_a_3_level_supervision_tree_leaves_no_process_and_no_runtime_dir() {
    let mut probe = Probe::start(PROBE_TEST, (PROBE_ENV, "tree"), &[]);
    let report = probe.report();
    let all = procs(&report["pids"]);
    let dir = PathBuf::from(&report["dir"]);
    assert!(all.len() >= 6, "5 actors and the zygote: {report:?}");
    assert!(all.iter().all(Proc::running), "{report:?}");
    probe.kill();
    assert!(
        wait_for(LONG, || !all.iter().any(Proc::running)),
        "still running: {:?}",
        all.iter().filter(|p| p.running()).collect::<Vec<_>>()
    );
    assert_dir_removed(&dir);
}
