//! The mailbox survives a restart (src/supervisor/mod.rs, "The mailbox survives a
//! restart"):
//! - messages queued when a supervised child is SIGKILLed are all handled by the next
//!   incarnation, in order: at least once for a `redeliver` type (only the one in flight
//!   may be handled twice), at most once for the default type (only the one in flight
//!   may be lost);
//! - an `ActorRef` taken before a crash, and one held by a third actor, reach the new
//!   incarnation;
//! - an at-most-once ask being handled when the actor dies ends in `ActorDied`, whether
//!   its handler panicked or the process was SIGKILLed, and the restarted actor answers;
//! - an at-least-once ask whose first attempt crashed is answered by the next incarnation;
//! - a poison message (its handler always panics) is tried `1 + redeliver` times, then
//!   dropped, counted and answered with `ActorDied`, and the actor goes on.
//!
//! Handled messages are recorded outside the restarting actor (a `Collector` actor that
//! is not supervised with it, or files in a directory the test owns), because a restart
//! starts the actor's state over from its spec.

mod common;
mod restart_common;

use std::io::Write;
use std::time::Duration;

use procession::prelude::*;
use procession::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorActor};
use procession::Error;

use common::{wait_at_gate, Gate};
use restart_common::{wait_for, TempDir, LONG};

/// Messages streamed through a restart.
const STREAM: u64 = 10_000;

// ---------------------------------------------------------------------------------------
// Actors.

/// Which process answered, and which incarnation it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Life {
    pid: u32,
    incarnation: u32,
}

#[derive(Serialize, Deserialize, Message)]
#[message(reply = Life)]
struct WhoAreYou;

/// To the collector: one message was handled.
#[derive(Serialize, Deserialize, Message)]
struct Record(u64);

/// To the collector: everything recorded so far, in arrival order.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<u64>)]
struct Recorded;

/// Records what the [`Recorder`] handled; not supervised, so it outlives every restart.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Record, Recorded))]
struct Collector {
    seen: Vec<u64>,
}

impl Handler<Record> for Collector {
    fn handle(&mut self, Record(seq): Record, _cx: &mut Context<Self>) {
        self.seen.push(seq);
    }
}

impl Handler<Recorded> for Collector {
    fn handle(&mut self, _: Recorded, _cx: &mut Context<Self>) -> Vec<u64> {
        self.seen.clone()
    }
}

/// At least once: redelivered to the next incarnation after a crash.
#[derive(Serialize, Deserialize, Message)]
#[message(redeliver = 3)]
struct AtLeastOnce(u64);

/// At most once (the default).
#[derive(Serialize, Deserialize, Message)]
struct AtMostOnce(u64);

/// A supervised worker that reports each message it handles to its collector.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(AtLeastOnce, AtMostOnce, WhoAreYou))]
struct Recorder {
    collector: ActorRef<Collector>,
}

impl Handler<AtLeastOnce> for Recorder {
    fn handle(&mut self, AtLeastOnce(seq): AtLeastOnce, _cx: &mut Context<Self>) {
        self.collector.tell(Record(seq)).unwrap();
    }
}

impl Handler<AtMostOnce> for Recorder {
    fn handle(&mut self, AtMostOnce(seq): AtMostOnce, _cx: &mut Context<Self>) {
        self.collector.tell(Record(seq)).unwrap();
    }
}

impl Handler<WhoAreYou> for Recorder {
    fn handle(&mut self, _: WhoAreYou, cx: &mut Context<Self>) -> Life {
        life(cx)
    }
}

fn life<A: procession::__private::Dispatch>(cx: &Context<A>) -> Life {
    Life {
        pid: cx.pid(),
        incarnation: cx.incarnation(),
    }
}

/// An ask whose handler panics (at most once).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct PanicNow;

/// An ask whose handler blocks at the gate at this path, then answers (at most once).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Life)]
struct BlockAtGate(String);

/// An ask (at least once) whose handler panics if the marker file at this path does not
/// exist yet (creating it first), and answers otherwise: only its first attempt fails.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Life, redeliver = 2)]
struct FailFirstAttempt(String);

/// An ask (at least once) whose handler appends a line to the file at this path, then
/// always panics: a poison message.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Life, redeliver = 2)]
struct Poison(String);

/// A supervised worker that crashes on request.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WhoAreYou, PanicNow, BlockAtGate, FailFirstAttempt, Poison))]
struct Worker;

impl Handler<WhoAreYou> for Worker {
    fn handle(&mut self, _: WhoAreYou, cx: &mut Context<Self>) -> Life {
        life(cx)
    }
}

impl Handler<PanicNow> for Worker {
    fn handle(&mut self, _: PanicNow, _cx: &mut Context<Self>) -> u32 {
        panic!("worker panicked on purpose")
    }
}

impl Handler<BlockAtGate> for Worker {
    fn handle(&mut self, BlockAtGate(path): BlockAtGate, cx: &mut Context<Self>) -> Life {
        wait_at_gate(&path);
        life(cx)
    }
}

impl Handler<FailFirstAttempt> for Worker {
    fn handle(
        &mut self,
        FailFirstAttempt(marker): FailFirstAttempt,
        cx: &mut Context<Self>,
    ) -> Life {
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok()
        {
            panic!("first attempt fails on purpose");
        }
        life(cx)
    }
}

impl Handler<Poison> for Worker {
    fn handle(&mut self, Poison(log): Poison, _cx: &mut Context<Self>) -> Life {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .unwrap();
        writeln!(f, "attempt").unwrap();
        panic!("poison message crashes the worker every time")
    }
}

/// A third actor that keeps a reference it received in a message and uses it later.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Keep, AskKept))]
struct Relay {
    kept: Option<ActorRef<Worker>>,
}

#[derive(Serialize, Deserialize, Message)]
struct Keep(ActorRef<Worker>);

/// Asks the kept worker [`WhoAreYou`] and returns its answer.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<Life, String>)]
struct AskKept;

impl Handler<Keep> for Relay {
    fn handle(&mut self, Keep(r): Keep, _cx: &mut Context<Self>) {
        self.kept = Some(r);
    }
}

impl Handler<AskKept> for Relay {
    fn handle(&mut self, _: AskKept, _cx: &mut Context<Self>) -> Result<Life, String> {
        let kept = self.kept.as_ref().ok_or("nothing kept")?;
        kept.ask_timeout(WhoAreYou, LONG).map_err(|e| e.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// Plumbing.

/// A supervisor (OneForOne, room for `intensity` restarts) with one child `"w"`.
fn supervise(child: ChildSpec, intensity: u32) -> ActorRef<SupervisorActor> {
    Supervisor::new(Strategy::OneForOne)
        .intensity(intensity, Duration::from_secs(60))
        .child(child)
        .spawn()
        .unwrap()
}

/// Stops an actor gracefully and waits for it to end.
fn stop<A: procession::__private::Dispatch>(actor: &ActorRef<A>) {
    actor.stop().unwrap();
    assert_eq!(actor.join_timeout(LONG).unwrap(), Exit::Stopped);
}

/// How often the supervisor has restarted its child `"w"`.
fn restarts_of_w(sup: &ActorRef<SupervisorActor>) -> u32 {
    let children = sup.which_children().unwrap();
    children.iter().find(|c| c.id == "w").unwrap().restarts
}

/// Waits until the actor behind `r` runs an incarnation after `previous`.
fn wait_restarted<A: procession::__private::Dispatch>(r: &ActorRef<A>, previous: u32) {
    let restarted = wait_for(LONG, || r.mailbox().incarnation() > previous);
    assert!(restarted, "no restart within {LONG:?}");
}

/// Streams `STREAM` tells made by `make` to a supervised [`Recorder`], SIGKILLs it from
/// this thread half way through, then returns what the collector recorded (once the
/// restarted recorder has drained its mailbox).
fn stream_through_a_sigkill<M: Message>(make: impl Fn(u64) -> M) -> Vec<u64>
where
    Recorder: procession::__private::Handles<M>,
{
    let collector: ActorRef<Collector> = procession::spawn(Collector::default()).unwrap();
    let sup = supervise(
        ChildSpec::worker::<Recorder>(
            "w",
            Recorder {
                collector: collector.clone(),
            },
        ),
        10,
    );
    let w: ActorRef<Recorder> = sup.child("w").unwrap();
    // (Turbofish: the `where` clause above would otherwise make the compiler take `M`.)
    let before = w.ask::<WhoAreYou>(WhoAreYou).unwrap();
    let mut queued_at_kill = 0;
    for seq in 0..STREAM {
        if seq == STREAM / 2 {
            queued_at_kill = w.mailbox().queued();
            w.kill().unwrap();
        }
        w.tell(make(seq)).unwrap();
    }
    // FIFO: the answer comes after every message sent above has been handled.
    let after = w.ask_timeout::<WhoAreYou>(WhoAreYou, LONG).unwrap();
    eprintln!("{queued_at_kill} messages were queued when the recorder was killed");
    assert_ne!(after.pid, before.pid, "the recorder was not restarted");
    assert_eq!(after.incarnation, before.incarnation + 1);
    assert_eq!(restarts_of_w(&sup), 1);
    // The recorder's tells to the collector were all queued before it answered.
    let recorded = collector.ask_timeout(Recorded, LONG).unwrap();
    stop(&sup);
    stop(&collector);
    recorded
}

// ---------------------------------------------------------------------------------------
// Queued messages survive a SIGKILL.

#[test]
fn at_least_once_messages_queued_at_a_sigkill_are_all_handled_in_order_only_the_in_flight_one_twice(
) {
    let recorded = stream_through_a_sigkill(AtLeastOnce);
    let mut first = Vec::with_capacity(recorded.len());
    let mut seen = std::collections::HashSet::new();
    for &seq in &recorded {
        if seen.insert(seq) {
            first.push(seq);
        }
    }
    let duplicates = recorded.len() - first.len();
    assert!(
        duplicates <= 1,
        "{duplicates} messages were handled twice; only the one in flight may be"
    );
    // Every accepted message is recorded, and first occurrences come in the order sent.
    assert_eq!(first, (0..STREAM).collect::<Vec<_>>());
}

#[test]
fn at_most_once_messages_queued_at_a_sigkill_are_handled_once_in_order_only_the_in_flight_one_lost()
{
    let recorded = stream_through_a_sigkill(AtMostOnce);
    assert!(
        recorded.windows(2).all(|w| w[0] < w[1]),
        "handled twice or out of order"
    );
    let missing: Vec<u64> = {
        let seen: std::collections::HashSet<u64> = recorded.iter().copied().collect();
        (0..STREAM).filter(|s| !seen.contains(s)).collect()
    };
    assert!(
        missing.len() <= 1,
        "lost {} messages ({:?}...); only the one in flight may be lost",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(recorded.len() as u64 >= STREAM - 1);
}

// ---------------------------------------------------------------------------------------
// References stay valid.

#[test]
fn actor_refs_held_here_and_by_another_actor_reach_the_restarted_incarnation() {
    let sup = supervise(ChildSpec::worker::<Worker>("w", Worker), 5);
    let w: ActorRef<Worker> = sup.child("w").unwrap();
    let relay: ActorRef<Relay> = procession::spawn(Relay::default()).unwrap();
    relay.tell(Keep(w.clone())).unwrap();
    let before = w.ask(WhoAreYou).unwrap();
    assert_eq!(relay.ask(AskKept).unwrap(), Ok(before));

    w.kill().unwrap();
    wait_restarted(&w, before.incarnation);

    let after = w.ask_timeout(WhoAreYou, LONG).unwrap();
    assert_ne!(after.pid, before.pid);
    assert!(after.incarnation > before.incarnation);
    assert_eq!(w.pid(), after.pid);
    assert_eq!(relay.ask_timeout(AskKept, LONG).unwrap(), Ok(after));
    stop(&relay);
    stop(&sup);
}

// ---------------------------------------------------------------------------------------
// An ask in flight when the actor dies.

#[test]
fn an_at_most_once_ask_whose_handler_panics_returns_actor_died_panicked_and_the_restart_answers_next(
) {
    let sup = supervise(ChildSpec::worker::<Worker>("w", Worker), 5);
    let w: ActorRef<Worker> = sup.child("w").unwrap();
    let before = w.ask(WhoAreYou).unwrap();

    match w.ask_timeout(PanicNow, LONG) {
        Err(Error::ActorDied {
            exit: Some(Exit::Panicked { message }),
            ..
        }) => assert!(message.contains("on purpose"), "{message}"),
        other => panic!("expected ActorDied with a Panicked exit, got {other:?}"),
    }
    let after = w.ask_timeout(WhoAreYou, LONG).unwrap();
    assert_ne!(after.pid, before.pid);
    assert_eq!(after.incarnation, before.incarnation + 1);
    stop(&sup);
}

#[test]
fn an_at_most_once_ask_whose_actor_is_sigkilled_returns_actor_died_and_the_restart_answers_next() {
    let sup = supervise(ChildSpec::worker::<Worker>("w", Worker), 5);
    let w: ActorRef<Worker> = sup.child("w").unwrap();
    let before = w.ask(WhoAreYou).unwrap();
    let gate = Gate::new();

    let asker = {
        let (w, path) = (w.clone(), gate.path());
        std::thread::spawn(move || w.ask_timeout(BlockAtGate(path), LONG))
    };
    let arrived = gate.arrival(LONG);
    w.kill().unwrap();
    let answer = asker.join().unwrap();
    drop(arrived);
    match answer {
        // The next incarnation drops the at-most-once message and answers for it.
        Err(Error::ActorDied { exit, .. }) => assert_eq!(exit, Some(Exit::Signaled(9))),
        other => panic!("expected ActorDied, got {other:?}"),
    }
    let after = w.ask_timeout(WhoAreYou, LONG).unwrap();
    assert_ne!(after.pid, before.pid);
    assert_eq!(after.incarnation, before.incarnation + 1);
    assert_eq!(restarts_of_w(&sup), 1);
    stop(&sup);
}

#[test]
fn an_at_least_once_ask_whose_first_attempt_panics_is_answered_by_the_next_incarnation() {
    let dir = TempDir::new("restarts-marker");
    let sup = supervise(ChildSpec::worker::<Worker>("w", Worker), 5);
    let w: ActorRef<Worker> = sup.child("w").unwrap();
    let before = w.ask(WhoAreYou).unwrap();

    let answer = w
        .ask_timeout(FailFirstAttempt(dir.file("attempted")), LONG)
        .unwrap();
    assert_ne!(
        answer.pid, before.pid,
        "answered by the incarnation that crashed"
    );
    assert_eq!(answer.incarnation, before.incarnation + 1);
    assert_eq!(restarts_of_w(&sup), 1);
    assert_eq!(w.mailbox().poison_dropped(), 0);
    stop(&sup);
}

#[test]
fn a_poison_message_is_tried_one_plus_redeliver_times_then_dropped_counted_and_answered_actor_died()
{
    let dir = TempDir::new("restarts-poison");
    let log = dir.file("attempts");
    let sup = supervise(ChildSpec::worker::<Worker>("w", Worker), 5);
    let w: ActorRef<Worker> = sup.child("w").unwrap();
    let before = w.ask(WhoAreYou).unwrap();

    match w.ask_timeout(Poison(log.clone()), LONG) {
        Err(Error::ActorDied {
            exit: Some(Exit::Panicked { .. }),
            ..
        }) => {}
        other => panic!("expected ActorDied with a Panicked exit, got {other:?}"),
    }
    // Queued after the poison message: the incarnation that drops it answers this.
    let after = w.ask_timeout(WhoAreYou, LONG).unwrap();
    assert_ne!(after.pid, before.pid);
    assert_eq!(after.incarnation, before.incarnation + 3);
    let attempts = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(attempts, 3, "1 attempt + 2 redeliveries");
    assert_eq!(w.mailbox().poison_dropped(), 1);
    assert_eq!(restarts_of_w(&sup), 3);
    // It goes on answering.
    assert_eq!(w.ask_timeout(WhoAreYou, LONG).unwrap(), after);
    stop(&sup);
}
