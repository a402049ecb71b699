//! Messaging between actor processes: that handlers really run in another process,
//! tell/ask ordering and per-sender FIFO (threads and processes), backpressure on a full
//! mailbox, ask replies of many types and ask timeouts, large payloads and the sender-side
//! size limit, `ActorRef`s travelling inside messages, spawning from inside an actor, the
//! three start methods, and how spawning fails (unknown actor name, failing `create`).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::{checksum, pattern, stop_and_join, wait_at_gate, Gate, LONG};
use procession::prelude::*;
use procession::wire::WireError;
use procession::{Error, SpawnOptions, StartMethod, TellError};

// ---------------------------------------------------------------------------------------
// Messages shared by several actors.

/// Replies with the pid of the process that handles it (`cx.pid()`).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct WhatIsYourPid;

/// Replies with `n + 1`.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Echo(u64);

// ---------------------------------------------------------------------------------------
// Recorder: remembers what it was told, in order.

#[derive(Serialize, Deserialize, Message)]
struct Push(u64);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<u64>)]
struct Log;

#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(WhatIsYourPid, Push, Log))]
struct Recorder {
    seen: Vec<u64>,
}

impl Handler<WhatIsYourPid> for Recorder {
    fn handle(&mut self, _: WhatIsYourPid, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

impl Handler<Push> for Recorder {
    fn handle(&mut self, Push(n): Push, _cx: &mut Context<Self>) {
        self.seen.push(n);
    }
}

impl Handler<Log> for Recorder {
    fn handle(&mut self, _: Log, _cx: &mut Context<Self>) -> Vec<u64> {
        self.seen.clone()
    }
}

#[test]
fn handler_runs_in_another_process_whose_pid_is_actor_ref_pid() {
    let rec: ActorRef<Recorder> = procession::spawn(Recorder::default()).unwrap();
    let pid_inside = rec.ask(WhatIsYourPid).unwrap();
    assert_ne!(pid_inside, std::process::id());
    assert_eq!(pid_inside, rec.pid());
    stop_and_join(&rec);
}

#[test]
fn tells_are_handled_before_a_later_ask_from_the_same_thread() {
    let rec: ActorRef<Recorder> = procession::spawn(Recorder::default()).unwrap();
    for n in 0..1000 {
        rec.tell(Push(n)).unwrap();
    }
    assert_eq!(rec.ask(Log).unwrap(), (0..1000).collect::<Vec<_>>());
    stop_and_join(&rec);
}

// ---------------------------------------------------------------------------------------
// OrderChecker: checks per-sender order of numbered messages.

#[derive(Serialize, Deserialize, Message)]
struct Numbered {
    sender: u32,
    seq: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct OrderStats {
    count: u64,
    order_violations: u64,
    /// Per sender: the next sequence number expected (= how many arrived in order).
    next: BTreeMap<u32, u64>,
}

#[derive(Serialize, Deserialize, Message)]
#[message(reply = OrderStats)]
struct Stats;

#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Numbered, Stats))]
struct OrderChecker {
    next: HashMap<u32, u64>,
    count: u64,
    order_violations: u64,
}

impl Handler<Numbered> for OrderChecker {
    fn handle(&mut self, Numbered { sender, seq }: Numbered, _cx: &mut Context<Self>) {
        let next = self.next.entry(sender).or_insert(0);
        if seq != *next {
            self.order_violations += 1;
        }
        *next = seq + 1;
        self.count += 1;
    }
}

impl Handler<Stats> for OrderChecker {
    fn handle(&mut self, _: Stats, _cx: &mut Context<Self>) -> OrderStats {
        OrderStats {
            count: self.count,
            order_violations: self.order_violations,
            next: self.next.iter().map(|(&k, &v)| (k, v)).collect(),
        }
    }
}

#[test]
fn fifo_per_sender_holds_for_four_threads_sending_100k_messages() {
    const SENDERS: u32 = 4;
    const EACH: u64 = 25_000;
    let checker: ActorRef<OrderChecker> = procession::spawn(OrderChecker::default()).unwrap();
    std::thread::scope(|s| {
        for sender in 0..SENDERS {
            let checker = checker.clone();
            s.spawn(move || {
                for seq in 0..EACH {
                    checker.tell(Numbered { sender, seq }).unwrap();
                }
            });
        }
    });
    let stats = checker.ask_timeout(Stats, LONG).unwrap();
    assert_eq!((stats.count, stats.order_violations), (100_000, 0));
    assert_eq!(stats.next, (0..SENDERS).map(|s| (s, EACH)).collect());
    stop_and_join(&checker);
}

// Blaster: an actor that sends numbered messages to an OrderChecker it got at spawn.

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Blast {
    count: u64,
}

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Blast))]
struct Blaster {
    id: u32,
    target: ActorRef<OrderChecker>,
}

impl Handler<Blast> for Blaster {
    /// Replies with how many messages were accepted by the target's mailbox.
    fn handle(&mut self, Blast { count }: Blast, _cx: &mut Context<Self>) -> u64 {
        let mut sent = 0;
        for seq in 0..count {
            if self
                .target
                .tell(Numbered {
                    sender: self.id,
                    seq,
                })
                .is_ok()
            {
                sent += 1;
            }
        }
        sent
    }
}

#[test]
fn fifo_per_sender_holds_for_two_sender_processes() {
    const EACH: u64 = 20_000;
    let checker: ActorRef<OrderChecker> = procession::spawn(OrderChecker::default()).unwrap();
    let blasters: Vec<ActorRef<Blaster>> = (0..2)
        .map(|id| {
            procession::spawn(Blaster {
                id,
                target: checker.clone(),
            })
            .unwrap()
        })
        .collect();
    // Both processes send at the same time; each reply comes after its last tell.
    let sent: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = blasters
            .iter()
            .map(|b| s.spawn(|| b.ask_timeout(Blast { count: EACH }, LONG).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sent, vec![EACH, EACH]);
    let stats = checker.ask_timeout(Stats, LONG).unwrap();
    assert_eq!((stats.count, stats.order_violations), (2 * EACH, 0));
    assert_eq!(stats.next, (0..2).map(|s| (s, EACH)).collect());
    for b in &blasters {
        stop_and_join(b);
    }
    stop_and_join(&checker);
}

// ---------------------------------------------------------------------------------------
// Gatekeeper: a handler that blocks at a Gate until the test releases it.

/// Blocks the actor at the gate with this path; replies whether it was released.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = bool)]
struct WaitAtGate(String);

#[derive(Debug, PartialEq, Serialize, Deserialize, Message)]
struct Tick(u64);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<u64>)]
struct Ticks;

#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(WaitAtGate, Tick, Ticks))]
struct Gatekeeper {
    ticks: Vec<u64>,
}

impl Handler<WaitAtGate> for Gatekeeper {
    fn handle(&mut self, WaitAtGate(path): WaitAtGate, _cx: &mut Context<Self>) -> bool {
        wait_at_gate(&path)
    }
}

impl Handler<Tick> for Gatekeeper {
    fn handle(&mut self, Tick(n): Tick, _cx: &mut Context<Self>) {
        self.ticks.push(n);
    }
}

impl Handler<Ticks> for Gatekeeper {
    fn handle(&mut self, _: Ticks, _cx: &mut Context<Self>) -> Vec<u64> {
        self.ticks.clone()
    }
}

const SMALL_CAPACITY: u32 = 4;

/// Spawns a gatekeeper with a 4-frame mailbox, blocks it inside a handler and fills its
/// mailbox with `Tick(0..4)` (all accepted).
fn blocked_gatekeeper_with_full_mailbox(gate: &Gate) -> (ActorRef<Gatekeeper>, common::Arrived) {
    let keeper: ActorRef<Gatekeeper> = procession::spawn_with(
        Gatekeeper::default(),
        SpawnOptions::new().capacity(SMALL_CAPACITY),
    )
    .unwrap();
    keeper.tell(WaitAtGate(gate.path())).unwrap();
    // The actor has taken WaitAtGate off its queue and is blocked in the handler.
    let arrived = gate.arrival(LONG);
    for n in 0..SMALL_CAPACITY as u64 {
        keeper.try_tell(Tick(n)).unwrap();
    }
    (keeper, arrived)
}

#[test]
fn try_tell_on_a_full_mailbox_gives_the_message_back_as_full() {
    let gate = Gate::new();
    let (keeper, arrived) = blocked_gatekeeper_with_full_mailbox(&gate);
    let err = keeper.try_tell(Tick(100)).unwrap_err();
    assert!(err.is_full(), "expected Full, got {err:?}");
    assert_eq!(err.into_inner(), Tick(100));
    arrived.release();
    assert_eq!(keeper.ask(Ticks).unwrap(), vec![0, 1, 2, 3]);
    stop_and_join(&keeper);
}

#[test]
fn tell_timeout_on_a_full_mailbox_gives_the_message_back_after_the_timeout() {
    let gate = Gate::new();
    let (keeper, arrived) = blocked_gatekeeper_with_full_mailbox(&gate);
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let err = keeper.tell_timeout(Tick(100), timeout).unwrap_err();
    assert!(started.elapsed() >= timeout, "gave up before the timeout");
    assert!(err.is_timeout(), "expected Timeout, got {err:?}");
    assert_eq!(err.into_inner(), Tick(100));
    arrived.release();
    assert_eq!(keeper.ask(Ticks).unwrap(), vec![0, 1, 2, 3]);
    stop_and_join(&keeper);
}

#[test]
fn every_message_a_full_mailbox_accepted_is_handled_after_it_drains() {
    let gate = Gate::new();
    let (keeper, arrived) = blocked_gatekeeper_with_full_mailbox(&gate);
    // Refused sends must not count; a blocking tell from another thread waits for room.
    assert!(keeper.try_tell(Tick(100)).unwrap_err().is_full());
    let blocked = {
        let keeper = keeper.clone();
        std::thread::spawn(move || {
            for n in 4..20 {
                keeper.tell(Tick(n)).unwrap();
            }
        })
    };
    arrived.release();
    blocked.join().unwrap();
    assert_eq!(keeper.ask(Ticks).unwrap(), (0..20).collect::<Vec<_>>());
    assert_eq!(keeper.bad_frames(), 0);
    stop_and_join(&keeper);
}

#[test]
fn ask_timeout_returns_timeout_when_the_handler_is_slower_and_the_actor_keeps_working() {
    let gate = Gate::new();
    let keeper: ActorRef<Gatekeeper> = procession::spawn(Gatekeeper::default()).unwrap();
    let timeout = Duration::from_millis(200);
    // The handler cannot reply before the gate is released, which happens only below.
    let err = keeper
        .ask_timeout(WaitAtGate(gate.path()), timeout)
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(d) if d == timeout),
        "got {err:?}"
    );
    gate.arrival(LONG).release();
    // The late reply to the timed-out ask is not mistaken for this one.
    keeper.tell(Tick(1)).unwrap();
    assert_eq!(keeper.ask(Ticks).unwrap(), vec![1]);
    stop_and_join(&keeper);
}

// ---------------------------------------------------------------------------------------
// Replier: one message per reply type.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
    label: String,
}

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct GetU64;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = String)]
struct GetString;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<String>)]
struct GetVec;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = Point)]
struct GetPoint;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<u64, String>)]
struct Divide(u64, u64);

/// No `reply = ...`: the reply is `()`.
#[derive(Serialize, Deserialize, Message)]
struct DoNothing;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(GetU64, GetString, GetVec, GetPoint, Divide, DoNothing))]
struct Replier;

impl Handler<GetU64> for Replier {
    fn handle(&mut self, _: GetU64, _cx: &mut Context<Self>) -> u64 {
        u64::MAX - 1
    }
}

impl Handler<GetString> for Replier {
    fn handle(&mut self, _: GetString, _cx: &mut Context<Self>) -> String {
        "héllo, wörld".to_string()
    }
}

impl Handler<GetVec> for Replier {
    fn handle(&mut self, _: GetVec, _cx: &mut Context<Self>) -> Vec<String> {
        vec!["a".into(), String::new(), "ccc".into()]
    }
}

impl Handler<GetPoint> for Replier {
    fn handle(&mut self, _: GetPoint, _cx: &mut Context<Self>) -> Point {
        Point {
            x: -3,
            y: 7,
            label: "p".into(),
        }
    }
}

impl Handler<Divide> for Replier {
    fn handle(&mut self, Divide(a, b): Divide, _cx: &mut Context<Self>) -> Result<u64, String> {
        a.checked_div(b)
            .ok_or_else(|| format!("cannot divide {a} by zero"))
    }
}

impl Handler<DoNothing> for Replier {
    fn handle(&mut self, _: DoNothing, _cx: &mut Context<Self>) {}
}

#[test]
fn ask_returns_the_handlers_reply_for_each_reply_type() {
    let r: ActorRef<Replier> = procession::spawn(Replier).unwrap();
    assert_eq!(r.ask(GetU64).unwrap(), u64::MAX - 1);
    assert_eq!(r.ask(GetString).unwrap(), "héllo, wörld");
    assert_eq!(r.ask(GetVec).unwrap(), vec!["a", "", "ccc"]);
    assert_eq!(
        r.ask(GetPoint).unwrap(),
        Point {
            x: -3,
            y: 7,
            label: "p".into()
        }
    );
    r.ask(DoNothing).unwrap();
    stop_and_join(&r);
}

#[test]
fn ask_returns_both_variants_of_a_result_reply_as_data() {
    let r: ActorRef<Replier> = procession::spawn(Replier).unwrap();
    assert_eq!(r.ask(Divide(84, 2)).unwrap(), Ok(42));
    assert_eq!(
        r.ask(Divide(1, 0)).unwrap(),
        Err("cannot divide 1 by zero".to_string())
    );
    stop_and_join(&r);
}

// ---------------------------------------------------------------------------------------
// Digester: large payloads.

/// Replies with the payload's length and checksum.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (u64, u64))]
struct Digest(ByteBuf);

/// Replies with `len` bytes of the shared pattern.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ByteBuf)]
struct Generate(usize);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Digest, Generate, Echo))]
struct Digester;

impl Handler<Digest> for Digester {
    fn handle(&mut self, Digest(bytes): Digest, _cx: &mut Context<Self>) -> (u64, u64) {
        (bytes.len() as u64, checksum(&bytes))
    }
}

impl Handler<Generate> for Digester {
    fn handle(&mut self, Generate(len): Generate, _cx: &mut Context<Self>) -> ByteBuf {
        ByteBuf::from(pattern(len))
    }
}

impl Handler<Echo> for Digester {
    fn handle(&mut self, Echo(n): Echo, _cx: &mut Context<Self>) -> u64 {
        n + 1
    }
}

fn assert_payload_round_trips(len: usize) {
    let d: ActorRef<Digester> = procession::spawn(Digester).unwrap();
    let bytes = pattern(len);
    let want = (len as u64, checksum(&bytes));
    assert_eq!(
        d.ask_timeout(Digest(ByteBuf::from(bytes)), LONG).unwrap(),
        want
    );
    stop_and_join(&d);
}

#[test]
fn one_mib_byte_buffer_reaches_the_actor_intact() {
    assert_payload_round_trips(1 << 20);
}

#[test]
fn sixteen_mib_byte_buffer_streams_through_a_one_mib_ring_intact() {
    assert_payload_round_trips(16 << 20);
}

#[test]
fn four_mib_reply_streams_back_to_the_asker_intact() {
    let d: ActorRef<Digester> = procession::spawn(Digester).unwrap();
    let reply = d.ask_timeout(Generate(4 << 20), LONG).unwrap();
    assert_eq!(reply.len(), 4 << 20);
    assert_eq!(checksum(&reply), checksum(&pattern(4 << 20)));
    stop_and_join(&d);
}

#[test]
fn tell_larger_than_max_frame_is_refused_by_the_sender_and_the_actor_keeps_working() {
    let d: ActorRef<Digester> =
        procession::spawn_with(Digester, SpawnOptions::new().max_frame(1 << 20)).unwrap();
    let err = d
        .tell(Digest(ByteBuf::from(vec![7u8; 2 << 20])))
        .unwrap_err();
    match err {
        TellError::TooLarge { msg, len, max } => {
            assert_eq!(max, 1 << 20);
            assert!(len > 2 << 20, "len {len} is the encoded frame size");
            assert_eq!(msg.0.len(), 2 << 20, "the message comes back whole");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(d.ask(Echo(41)).unwrap(), 42);
    assert_eq!(d.bad_frames(), 0, "the actor never saw the refused frame");
    stop_and_join(&d);
}

#[test]
fn ask_larger_than_max_frame_fails_with_wire_too_large_and_the_actor_keeps_working() {
    let d: ActorRef<Digester> =
        procession::spawn_with(Digester, SpawnOptions::new().max_frame(1 << 20)).unwrap();
    let err = d
        .ask(Digest(ByteBuf::from(vec![7u8; 2 << 20])))
        .unwrap_err();
    assert!(
        matches!(err, Error::Wire(WireError::TooLarge { max, .. }) if max == 1 << 20),
        "got {err:?}"
    );
    assert_eq!(d.ask(Echo(1)).unwrap(), 2);
    assert_eq!(d.bad_frames(), 0, "the actor never saw the refused frame");
    stop_and_join(&d);
}

// ---------------------------------------------------------------------------------------
// Relay: uses ActorRefs it receives in messages.

/// Asks `target` for `Echo(n)` from inside the handler.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<u64, String>)]
struct AskVia {
    target: ActorRef<Digester>,
    n: u64,
}

/// Replies with `cx.myself()`.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ActorRef<Relay>)]
struct Myself;

/// Two message types under one tag, as two builds that disagree about a message would
/// produce. One actor cannot list both (the derive rejects that at compile time), so the
/// sender's side of the disagreement is written by hand below: it believes `Relay`
/// handles `UseRecorderRefUnderTheSameTag`, while `Relay` decodes the tag as
/// `UseDigesterRef`.
#[derive(Serialize, Deserialize, Message)]
#[message(tag = "messaging::UseRef", reply = u64)]
struct UseDigesterRef(ActorRef<Digester>);

#[derive(Serialize, Deserialize, Message)]
#[message(tag = "messaging::UseRef", reply = u64)]
struct UseRecorderRefUnderTheSameTag(ActorRef<Recorder>);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(AskVia, Myself, WhatIsYourPid, UseDigesterRef))]
struct Relay;

/// The other build's view: it thinks `Relay` lists this message.
impl procession::__private::Handles<UseRecorderRefUnderTheSameTag> for Relay {}

impl Handler<AskVia> for Relay {
    fn handle(
        &mut self,
        AskVia { target, n }: AskVia,
        _cx: &mut Context<Self>,
    ) -> Result<u64, String> {
        target.ask(Echo(n)).map_err(|e| e.to_string())
    }
}

impl Handler<Myself> for Relay {
    fn handle(&mut self, _: Myself, cx: &mut Context<Self>) -> ActorRef<Relay> {
        cx.myself()
    }
}

impl Handler<WhatIsYourPid> for Relay {
    fn handle(&mut self, _: WhatIsYourPid, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

impl Handler<UseDigesterRef> for Relay {
    fn handle(&mut self, UseDigesterRef(d): UseDigesterRef, _cx: &mut Context<Self>) -> u64 {
        d.ask(Echo(0)).unwrap_or(u64::MAX)
    }
}

impl Handler<UseRecorderRefUnderTheSameTag> for Relay {
    fn handle(&mut self, _: UseRecorderRefUnderTheSameTag, _cx: &mut Context<Self>) -> u64 {
        unreachable!("the shared tag dispatches to UseDigesterRef")
    }
}

#[test]
fn actor_ref_sent_in_a_message_works_in_the_receiving_process() {
    let d: ActorRef<Digester> = procession::spawn(Digester).unwrap();
    let relay: ActorRef<Relay> = procession::spawn(Relay).unwrap();
    let answer = relay
        .ask_timeout(
            AskVia {
                target: d.clone(),
                n: 41,
            },
            LONG,
        )
        .unwrap();
    assert_eq!(answer, Ok(42));
    stop_and_join(&relay);
    stop_and_join(&d);
}

#[test]
fn myself_ref_returned_from_a_handler_addresses_the_same_actor() {
    let relay: ActorRef<Relay> = procession::spawn(Relay).unwrap();
    let me = relay.ask(Myself).unwrap();
    assert_eq!(me, relay);
    assert_eq!(me.id(), relay.id());
    assert_eq!(me.ask(WhatIsYourPid).unwrap(), relay.pid());
    stop_and_join(&relay);
}

#[test]
fn actor_ref_decoded_as_another_actor_type_is_rejected_with_a_decode_error() {
    let rec: ActorRef<Recorder> = procession::spawn(Recorder::default()).unwrap();
    let d: ActorRef<Digester> = procession::spawn(Digester).unwrap();
    let relay: ActorRef<Relay> = procession::spawn(Relay).unwrap();
    let err = relay
        .ask(UseRecorderRefUnderTheSameTag(rec.clone()))
        .unwrap_err();
    match &err {
        Error::Rejected {
            source: WireError::Decode { message, .. },
            ..
        } => assert!(
            message.contains("used as a reference to"),
            "unexpected decode message: {message}"
        ),
        other => panic!("expected Rejected(Decode), got {other:?}"),
    }
    assert_eq!(relay.bad_frames(), 1);
    // The same tag with a reference of the right type works, and so does the actor.
    assert_eq!(relay.ask(UseDigesterRef(d.clone())).unwrap(), 1);
    stop_and_join(&relay);
    stop_and_join(&d);
    stop_and_join(&rec);
}

// ---------------------------------------------------------------------------------------
// Parent and Child: spawning from inside an actor.

/// Replies with the pid of this process's parent.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct ParentPid;

/// Panics in the handler.
#[derive(Serialize, Deserialize, Message)]
struct Explode;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WhatIsYourPid, ParentPid, Explode))]
struct Child;

impl Handler<WhatIsYourPid> for Child {
    fn handle(&mut self, _: WhatIsYourPid, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

impl Handler<ParentPid> for Child {
    fn handle(&mut self, _: ParentPid, _cx: &mut Context<Self>) -> u32 {
        std::os::unix::process::parent_id()
    }
}

impl Handler<Explode> for Child {
    fn handle(&mut self, _: Explode, _cx: &mut Context<Self>) {
        panic!("child exploded on purpose");
    }
}

/// Spawns a `Child` with `cx.spawn` and replies with its ref.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<ActorRef<Child>, String>)]
struct SpawnChild;

#[derive(Debug, Serialize, Deserialize)]
struct ForkReport {
    parent_pid: u32,
    child_pid: u32,
    child_says_pid: u32,
    child_says_parent_pid: u32,
    child_exit: Exit,
}

/// Forks a `Child` (StartMethod::Fork), questions it, stops and joins it.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<ForkReport, String>)]
struct ForkChild;

/// Asks `first` (so this thread has a reply inbox), forks a `Child`, asks and stops it,
/// then asks `second`, which has never replied to this actor; replies with its answer.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<u32, String>)]
struct AskAroundAForkChild {
    first: ActorRef<Child>,
    second: ActorRef<Child>,
}

/// Forks a `Child`, makes it panic and joins it; replies with the child's exit.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<Exit, String>)]
struct ForkChildThatPanics;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(
    WhatIsYourPid,
    SpawnChild,
    ForkChild,
    AskAroundAForkChild,
    ForkChildThatPanics
))]
struct Parent;

fn fork_options() -> SpawnOptions {
    SpawnOptions::new().start_method(StartMethod::Fork)
}

impl Handler<WhatIsYourPid> for Parent {
    fn handle(&mut self, _: WhatIsYourPid, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

impl Handler<SpawnChild> for Parent {
    fn handle(&mut self, _: SpawnChild, cx: &mut Context<Self>) -> Result<ActorRef<Child>, String> {
        cx.spawn::<Child>(Child).map_err(|e| e.to_string())
    }
}

impl Handler<ForkChild> for Parent {
    fn handle(&mut self, _: ForkChild, cx: &mut Context<Self>) -> Result<ForkReport, String> {
        let s = |e: Error| e.to_string();
        let child: ActorRef<Child> = cx.spawn_with(Child, fork_options()).map_err(s)?;
        let report = ForkReport {
            parent_pid: cx.pid(),
            child_pid: child.pid(),
            child_says_pid: child.ask(WhatIsYourPid).map_err(s)?,
            child_says_parent_pid: child.ask(ParentPid).map_err(s)?,
            child_exit: {
                child.stop().map_err(s)?;
                child.join_timeout(LONG).map_err(s)?
            },
        };
        Ok(report)
    }
}

impl Handler<AskAroundAForkChild> for Parent {
    fn handle(
        &mut self,
        AskAroundAForkChild { first, second }: AskAroundAForkChild,
        cx: &mut Context<Self>,
    ) -> Result<u32, String> {
        let s = |e: Error| e.to_string();
        first.ask(WhatIsYourPid).map_err(s)?;
        let child: ActorRef<Child> = cx.spawn_with(Child, fork_options()).map_err(s)?;
        child.ask(WhatIsYourPid).map_err(s)?;
        child.stop().map_err(s)?;
        child.join_timeout(LONG).map_err(s)?;
        second
            .ask_timeout(WhatIsYourPid, Duration::from_secs(10))
            .map_err(s)
    }
}

impl Handler<ForkChildThatPanics> for Parent {
    fn handle(&mut self, _: ForkChildThatPanics, cx: &mut Context<Self>) -> Result<Exit, String> {
        let s = |e: Error| e.to_string();
        let child: ActorRef<Child> = cx.spawn_with(Child, fork_options()).map_err(s)?;
        child.tell(Explode).map_err(|e| e.to_string())?;
        child.join_timeout(LONG).map_err(s)
    }
}

#[test]
fn context_spawn_starts_a_child_actor_in_a_third_process() {
    let parent: ActorRef<Parent> = procession::spawn(Parent).unwrap();
    let child = parent.ask_timeout(SpawnChild, LONG).unwrap().unwrap();
    let child_pid = child.ask(WhatIsYourPid).unwrap();
    assert_eq!(child_pid, child.pid());
    assert_ne!(child_pid, parent.pid());
    assert_ne!(child_pid, std::process::id());
    stop_and_join(&child);
    stop_and_join(&parent);
}

#[test]
fn spawn_start_method_runs_the_actor_in_a_new_process() {
    let rec: ActorRef<Recorder> = procession::spawn_with(
        Recorder::default(),
        SpawnOptions::new().start_method(StartMethod::Spawn),
    )
    .unwrap();
    let pid = rec.ask(WhatIsYourPid).unwrap();
    assert_eq!(pid, rec.pid());
    assert_ne!(pid, std::process::id());
    rec.tell(Push(5)).unwrap();
    assert_eq!(rec.ask(Log).unwrap(), vec![5]);
    stop_and_join(&rec);
}

#[test]
fn fork_start_method_is_refused_in_a_multithreaded_process() {
    // Start the zygote, which removes the runtime directory when this process ends: a
    // process whose only spawn is a refused fork would otherwise leave it behind.
    procession::init().unwrap();
    // Keep a second thread alive for the duration of the call, whatever the harness does.
    let (release, parked) = std::sync::mpsc::channel::<()>();
    let helper = std::thread::spawn(move || {
        let _ = parked.recv();
    });
    let result = procession::spawn_with::<Recorder>(Recorder::default(), fork_options());
    drop(release);
    helper.join().unwrap();
    match result {
        Err(Error::ForkUnsafe { threads }) => assert!(threads >= 2, "threads = {threads}"),
        Err(other) => panic!("expected ForkUnsafe, got {other:?}"),
        Ok(actor) => {
            let _ = actor.kill();
            let _ = actor.join_timeout(LONG);
            panic!("fork from a multi-threaded process was not refused");
        }
    }
}

#[test]
fn fork_start_method_works_from_inside_an_actor() {
    let parent: ActorRef<Parent> = procession::spawn(Parent).unwrap();
    let report = parent.ask_timeout(ForkChild, LONG).unwrap().unwrap();
    assert_eq!(report.parent_pid, parent.pid());
    assert_eq!(report.child_says_pid, report.child_pid);
    assert_ne!(report.child_pid, report.parent_pid);
    assert_ne!(report.child_pid, std::process::id());
    assert_eq!(report.child_says_parent_pid, report.parent_pid);
    assert_eq!(report.child_exit, Exit::Stopped);
    stop_and_join(&parent);
}

#[test]
fn fork_child_of_an_actor_leaves_the_parents_asks_working() {
    let first: ActorRef<Child> = procession::spawn(Child).unwrap();
    let second: ActorRef<Child> = procession::spawn(Child).unwrap();
    let parent: ActorRef<Parent> = procession::spawn(Parent).unwrap();
    let answer = parent
        .ask_timeout(
            AskAroundAForkChild {
                first: first.clone(),
                second: second.clone(),
            },
            LONG,
        )
        .unwrap();
    assert_eq!(answer, Ok(second.pid()));
    stop_and_join(&parent);
    stop_and_join(&first);
    stop_and_join(&second);
}

#[test]
fn panic_in_a_fork_child_of_an_actor_leaves_the_parents_exit_alone() {
    let parent: ActorRef<Parent> = procession::spawn(Parent).unwrap();
    let child_exit = parent
        .ask_timeout(ForkChildThatPanics, LONG)
        .unwrap()
        .unwrap();
    assert!(
        matches!(&child_exit, Exit::Panicked { message } if message.contains("exploded")),
        "child exit: {child_exit:?}"
    );
    stop_and_join(&parent);
}

// ---------------------------------------------------------------------------------------
// How spawning fails.

#[test]
fn spawning_an_unknown_actor_name_fails_with_unknown_actor() {
    let mut unit = Vec::new();
    procession::wire::encode_body(&(), &mut unit).unwrap();
    let opts = SpawnOptions::new().start_timeout(LONG);
    let err = procession::__private::spawn_named("no::such::Actor", unit, opts).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownActor { name } if name == "no::such::Actor"),
        "got {err:?}"
    );
}

#[derive(Actor)]
#[actor(handles(), args = String)]
struct Refuser;

impl Actor for Refuser {
    type Args = String;
    fn create(why: String, _cx: &mut Context<Self>) -> Result<Self, BoxError> {
        Err(format!("refusing to start: {why}").into())
    }
}

#[test]
fn actor_whose_create_fails_yields_start_failed_with_the_error_text() {
    let err = procession::spawn::<Refuser>("no database".to_string()).unwrap_err();
    match err {
        Error::StartFailed {
            actor,
            exit: Exit::Failed(text),
        } => {
            assert!(actor.ends_with("Refuser"), "actor = {actor}");
            assert!(
                text.contains("refusing to start: no database"),
                "text = {text}"
            );
        }
        other => panic!("expected StartFailed(Failed), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// tell_many: batches under one take of the lock.

#[test]
fn tell_many_delivers_a_burst_larger_than_the_mailbox_in_order() {
    // 4 frames of capacity against batches of up to 128: every batch waits for room
    // several times, and nothing is lost or reordered.
    let keeper: ActorRef<Gatekeeper> = procession::spawn_with(
        Gatekeeper::default(),
        SpawnOptions::new().capacity(SMALL_CAPACITY),
    )
    .unwrap();
    keeper.tell_many((0..2_000).map(Tick)).unwrap();
    assert_eq!(keeper.ask(Ticks).unwrap(), (0..2_000).collect::<Vec<_>>());
    assert_eq!(keeper.bad_frames(), 0);
    stop_and_join(&keeper);
}

#[test]
fn tell_many_from_four_threads_keeps_each_threads_order() {
    let checker: ActorRef<OrderChecker> = procession::spawn(OrderChecker::default()).unwrap();
    std::thread::scope(|s| {
        for sender in 0..4u32 {
            let checker = checker.clone();
            s.spawn(move || {
                checker
                    .tell_many((0..5_000).map(|seq| Numbered { sender, seq }))
                    .unwrap()
            });
        }
    });
    let stats = checker.ask(Stats).unwrap();
    assert_eq!((stats.count, stats.order_violations), (20_000, 0));
    assert!(stats.next.values().all(|&n| n == 5_000), "{:?}", stats.next);
    stop_and_join(&checker);
}

#[derive(Serialize, Deserialize, Message)]
struct Blob(ByteBuf);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<usize>)]
struct Lengths;

#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Blob, Lengths))]
struct LengthLog {
    lengths: Vec<usize>,
}

impl Handler<Blob> for LengthLog {
    fn handle(&mut self, Blob(b): Blob, _cx: &mut Context<Self>) {
        self.lengths.push(b.len());
    }
}

impl Handler<Lengths> for LengthLog {
    fn handle(&mut self, _: Lengths, _cx: &mut Context<Self>) -> Vec<usize> {
        self.lengths.clone()
    }
}

#[test]
fn tell_many_stops_at_a_message_too_large_and_says_how_many_were_sent() {
    let log: ActorRef<LengthLog> =
        procession::spawn_with(LengthLog::default(), SpawnOptions::new().max_frame(1024)).unwrap();
    let sizes = [10, 20, 30, 5_000, 40];
    let err = log
        .tell_many(sizes.iter().map(|&n| Blob(ByteBuf::from(vec![7u8; n]))))
        .unwrap_err();
    assert_eq!(err.sent, 3);
    match err.error {
        TellError::TooLarge { msg, max, .. } => {
            assert_eq!((msg.0.len(), max), (5_000, 1024));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The three before it were delivered; the one after it was not sent.
    assert_eq!(log.ask(Lengths).unwrap(), vec![10, 20, 30]);
    stop_and_join(&log);
}

#[test]
fn tell_many_to_an_actor_that_has_exited_gives_the_first_message_back_as_dead() {
    let keeper: ActorRef<Gatekeeper> = procession::spawn(Gatekeeper::default()).unwrap();
    stop_and_join(&keeper);
    let err = keeper.tell_many((7..10).map(Tick)).unwrap_err();
    assert_eq!(err.sent, 0);
    match err.error {
        TellError::Dead(first) => assert_eq!(first, Tick(7)),
        other => panic!("expected Dead, got {other:?}"),
    }
}
