//! The fault model, tried as an attacker of the same uid would: a process that writes over
//! a mailbox file's header, and calls that would otherwise block for ever.
//!
//! - Shared memory is untrusted: a corrupt header costs that mailbox's messages and gives a
//!   typed error; it never aborts, hangs or misleads a process that uses the mailbox, and
//!   no pid read from it is ever signalled.
//! - Every blocking call has a deadline; an actor that asks itself, or a reply too large
//!   for its asker, fails at once with a typed error.
//! - An actor's exit is published even when its mailbox header was written over.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::process::{Child, Command};
use std::time::Duration;

use common::{Gate, LONG};
use procession::pool::Pool;
use procession::prelude::*;
use procession::{Error, SpawnOptions, TellError};

// ---------------------------------------------------------------------------------------
// Actors.

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Ping;

#[derive(Serialize, Deserialize, Message)]
struct Note(u64);

#[derive(Serialize, Deserialize, Message)]
struct Crash;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = String)]
struct AskMyself;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = ByteBuf)]
struct Huge(usize);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = bool)]
struct Hold(String);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Count;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Ping, Note, Crash, AskMyself, Huge, Hold, Count))]
struct Target {
    notes: u64,
}

impl Handler<Ping> for Target {
    fn handle(&mut self, _: Ping, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

impl Handler<Note> for Target {
    fn handle(&mut self, _: Note, _: &mut Context<Self>) {
        self.notes += 1;
    }
}

impl Handler<Count> for Target {
    fn handle(&mut self, _: Count, _: &mut Context<Self>) -> u64 {
        self.notes
    }
}

impl Handler<Crash> for Target {
    fn handle(&mut self, _: Crash, _: &mut Context<Self>) {
        panic!("crash on request");
    }
}

impl Handler<AskMyself> for Target {
    fn handle(&mut self, _: AskMyself, cx: &mut Context<Self>) -> String {
        match cx.myself().ask_timeout(Ping, Duration::from_secs(120)) {
            Ok(_) => "answered".into(),
            Err(e) => format!("{e:?}"),
        }
    }
}

impl Handler<Huge> for Target {
    fn handle(&mut self, Huge(n): Huge, _: &mut Context<Self>) -> ByteBuf {
        ByteBuf::from(vec![7u8; n])
    }
}

impl Handler<Hold> for Target {
    fn handle(&mut self, Hold(gate): Hold, _: &mut Context<Self>) -> bool {
        common::wait_at_gate(&gate)
    }
}

fn target() -> ActorRef<Target> {
    procession::spawn(Target { notes: 0 }).unwrap()
}

// ---------------------------------------------------------------------------------------
// Writing over a mailbox file, as any process of the same uid can.

fn offset(field: &str) -> u64 {
    procession::__private::header_field_offset(field).expect("a known header field") as u64
}

fn scribble(actor: &ActorRef<Target>, field: &str, bytes: &[u8]) {
    let path = procession::__private::mailbox_path(actor.id()).unwrap();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(bytes, offset(field)).unwrap();
}

fn read_u64(actor: &ActorRef<Target>, field: &str) -> u64 {
    let path = procession::__private::mailbox_path(actor.id()).unwrap();
    let file = OpenOptions::new().read(true).open(&path).unwrap();
    let mut b = [0u8; 8];
    file.read_exact_at(&mut b, offset(field)).unwrap();
    u64::from_le_bytes(b)
}

/// An unrelated process whose pid the tests write into headers: it must survive.
struct Canary(Child);

impl Canary {
    fn new() -> Canary {
        Canary(Command::new("sleep").arg("600").spawn().unwrap())
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn until_ok<T>(mut f: impl FnMut() -> Result<T, Error>) -> T {
    let start = std::time::Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if start.elapsed() < LONG => {
                assert!(!e.is_timeout(), "a call hung until its deadline: {e}");
            }
            Err(e) => panic!("never recovered: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. Shared memory is untrusted input.

#[test]
fn kill_signals_the_actor_and_never_the_pid_written_in_its_header() {
    let mut canary = Canary::new();
    let actor = target();
    scribble(&actor, "pid", &canary.pid().to_le_bytes());
    actor.kill().unwrap();
    assert_eq!(actor.join_timeout(LONG).unwrap(), Exit::Signaled(9));
    assert!(canary.alive(), "the pid from shared memory was signalled");
}

#[test]
fn negative_and_all_ones_pids_in_the_header_signal_no_group_and_no_process() {
    let mut canary = Canary::new();
    for bogus in [u32::MAX, (-(canary.pid() as i32)) as u32, 0] {
        let actor = target();
        scribble(&actor, "pid", &bogus.to_le_bytes());
        actor
            .signal(nix::sys::signal::Signal::SIGTERM)
            .expect("signal goes through the zygote");
        assert_eq!(actor.join_timeout(LONG).unwrap(), Exit::Signaled(15));
    }
    assert!(canary.alive());
}

#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct LinkTo(ActorRef<Target>);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(LinkTo, Ping))]
struct Linker;

impl Handler<LinkTo> for Linker {
    fn handle(&mut self, LinkTo(other): LinkTo, cx: &mut Context<Self>) {
        cx.link(&other).unwrap();
    }
}

impl Handler<Ping> for Linker {
    fn handle(&mut self, _: Ping, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

#[test]
fn a_link_kills_the_linked_actor_and_never_the_pid_written_in_its_header() {
    let mut canary = Canary::new();
    let dying = target();
    let linker: ActorRef<Linker> = procession::spawn(Linker).unwrap();
    linker.ask(LinkTo(dying.clone())).unwrap();
    let path = procession::__private::mailbox_path(linker.id()).unwrap();
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(&canary.pid().to_le_bytes(), offset("pid"))
        .unwrap();
    dying.kill().unwrap();
    assert_eq!(dying.join_timeout(LONG).unwrap(), Exit::Signaled(9));
    assert!(
        matches!(linker.join_timeout(LONG).unwrap(), Exit::Failed(why) if why.contains("linked"))
    );
    assert!(canary.alive());
}

#[test]
fn a_scribbled_lock_word_never_aborts_or_hangs_senders() {
    // glibc's robust mutex aborted every sender for kind 0xb0 with lock 4, and spun for
    // ever on kind 0x7fffffff. Our lock has no kind: every value is a state it handles.
    for garbage in [
        [4u32, 0, 0xb0, 0],
        [0x7fff_ffff, 0x7fff_ffff, 0x7fff_ffff, 0x7fff_ffff],
        [u32::MAX, u32::MAX, u32::MAX, u32::MAX],
        [1, 0, 0x40, 0],
    ] {
        let actor = target();
        let bytes: Vec<u8> = garbage.iter().flat_map(|w| w.to_le_bytes()).collect();
        scribble(&actor, "lock", &bytes);
        actor.tell_timeout(Note(1), LONG).unwrap();
        assert_eq!(actor.ask_timeout(Count, LONG).unwrap(), 1);
        common::stop_and_join(&actor);
    }
}

#[test]
fn a_lost_wakeup_costs_latency_never_liveness() {
    let actor = target();
    for _ in 0..20 {
        // The actor sleeps on its futex; clear the flag that tells senders to wake it.
        scribble(&actor, "consumer_waiting", &0u32.to_le_bytes());
        actor.tell(Note(1)).unwrap();
        scribble(&actor, "consumer_waiting", &0u32.to_le_bytes());
        assert_ne!(actor.ask_timeout(Ping, LONG).unwrap(), 0);
    }
    assert_eq!(actor.ask(Count).unwrap(), 20);
    common::stop_and_join(&actor);
}

#[test]
fn more_frames_queued_than_the_capacity_is_reported_corrupt_and_repaired() {
    let actor: ActorRef<Target> =
        procession::spawn_with(Target { notes: 0 }, SpawnOptions::new().capacity(8)).unwrap();
    assert_ne!(actor.ask(Ping).unwrap(), 0);
    // Frames queued = frames_sent - frames_taken: claim 1,000 more sent than taken.
    let taken = read_u64(&actor, "frames_taken");
    scribble(&actor, "frames_sent", &(taken + 1000).to_le_bytes());
    match actor.tell_timeout(Note(1), LONG) {
        Err(TellError::Corrupt(_)) | Ok(()) => {}
        Err(e) => panic!("expected Corrupt, got {e}"),
    }
    // The actor repairs its header within a bounded time; then everything works again.
    until_ok(|| actor.ask_timeout(Ping, LONG));
    actor.tell(Note(2)).unwrap();
    assert!(actor.ask(Count).unwrap() >= 1);
    common::stop_and_join(&actor);
}

#[test]
fn an_empty_ring_that_claims_a_full_queue_is_repaired_and_senders_go_on() {
    let actor: ActorRef<Target> =
        procession::spawn_with(Target { notes: 0 }, SpawnOptions::new().capacity(8)).unwrap();
    assert_ne!(actor.ask(Ping).unwrap(), 0);
    // Exactly the capacity: looks legal, and leaves no room for ever unless repaired.
    let taken = read_u64(&actor, "frames_taken");
    scribble(&actor, "frames_sent", &(taken + 8).to_le_bytes());
    actor.tell_timeout(Note(1), LONG).unwrap();
    assert_eq!(actor.ask_timeout(Count, LONG).unwrap(), 1);
    assert!(actor.bad_frames() >= 1, "the repair is counted");
    common::stop_and_join(&actor);
}

#[test]
fn a_head_beyond_the_tail_is_detected_and_the_mailbox_starts_over() {
    let actor = target();
    assert_ne!(actor.ask(Ping).unwrap(), 0);
    // The actor releases a frame's bytes (moves `head`) when it turns to the next one, so
    // after the reply: wait for that, or it would write its own head over ours.
    let tail = read_u64(&actor, "tail");
    let start = std::time::Instant::now();
    while read_u64(&actor, "head") != tail {
        assert!(
            start.elapsed() < LONG,
            "the actor never released the frame it handled"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    scribble(&actor, "head", &(tail + 123_456).to_le_bytes());
    // Nobody sends (a sender that still has room from its last look would not read the
    // head at all): the idle actor checks its header within a bounded time, reports it,
    // and puts its head back.
    let start = std::time::Instant::now();
    while actor.bad_frames() == 0 {
        assert!(
            start.elapsed() < LONG,
            "the written-over head was never noticed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(read_u64(&actor, "head"), tail);
    until_ok(|| actor.ask_timeout(Ping, LONG));
    common::stop_and_join(&actor);
}

#[test]
fn impossible_sizes_in_the_header_change_nothing_for_processes_that_mapped_it() {
    let actor = target();
    assert_ne!(actor.ask(Ping).unwrap(), 0);
    scribble(&actor, "capacity", &0u32.to_le_bytes());
    scribble(&actor, "max_frame", &u64::MAX.to_le_bytes());
    scribble(&actor, "ring_size", &3u64.to_le_bytes());
    for n in 0..100 {
        actor.tell(Note(n)).unwrap();
    }
    assert_eq!(actor.ask(Count).unwrap(), 100);
    common::stop_and_join(&actor);
}

// ---------------------------------------------------------------------------------------
// 1. An exit is published even when the mailbox file is unusable.

#[test]
fn an_actor_whose_header_magic_and_ring_size_were_overwritten_still_has_its_exit_published() {
    let actor = target();
    assert_ne!(actor.ask(Ping).unwrap(), 0);
    scribble(&actor, "magic", b"garbage!");
    scribble(&actor, "ring_size", &7u64.to_le_bytes());
    actor.tell(Crash).unwrap();
    match actor.join_timeout(LONG).unwrap() {
        Exit::Panicked { message } => assert!(message.contains("crash on request")),
        other => panic!("expected a panic exit, got {other}"),
    }
}

#[test]
fn an_exit_hidden_by_a_scribbled_state_word_is_still_seen_by_join() {
    let actor = target();
    assert_ne!(actor.ask(Ping).unwrap(), 0);
    actor.kill().unwrap();
    // Wait for the real exit, then make the header lie that it still runs.
    assert_eq!(actor.join_timeout(LONG).unwrap(), Exit::Signaled(9));
    // (The file is unlinked by now; write through this process's own mapping of it.)
    actor
        .mailbox()
        .scribble(offset("state") as usize, &1u32.to_le_bytes());
    // join asks the zygote, whose own record does not depend on the file.
    assert_eq!(actor.join_timeout(LONG).unwrap(), Exit::Signaled(9));
}

// ---------------------------------------------------------------------------------------
// 3. No call blocks for ever.

#[test]
fn stop_on_a_busy_actor_with_a_full_mailbox_gives_up_at_its_deadline() {
    let actor: ActorRef<Target> =
        procession::spawn_with(Target { notes: 0 }, SpawnOptions::new().capacity(4)).unwrap();
    let gate = Gate::new();
    let held = {
        let actor = actor.clone();
        let path = gate.path();
        std::thread::spawn(move || actor.ask_timeout(Hold(path), LONG))
    };
    let arrived = gate.arrival(LONG);
    while actor.try_tell(Note(0)).is_ok() {}
    match actor.stop_timeout(Duration::from_millis(200)) {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    arrived.release();
    assert!(held.join().unwrap().unwrap());
    common::stop_and_join(&actor);
}

#[test]
fn an_actor_that_asks_itself_fails_at_once_instead_of_waiting_out_its_timeout() {
    let actor = target();
    // The inner ask allows 120 s, the outer one 30 s: only an immediate error fits.
    let answer = actor.ask_timeout(AskMyself, LONG).unwrap();
    assert!(answer.contains("AskedItself"), "{answer}");
    common::stop_and_join(&actor);
}

#[test]
fn a_reply_larger_than_the_askers_maximum_frame_fails_at_once_with_reply_too_large() {
    let actor = target();
    let max = procession::wire::DEFAULT_MAX_FRAME;
    match actor.ask_timeout(Huge(max + 1024), LONG) {
        Err(Error::ReplyTooLarge { len, max: m, .. }) => {
            assert!(len > m);
            assert_eq!(m, max as u64);
        }
        other => panic!("expected ReplyTooLarge, got {:?}", other.map(|b| b.len())),
    }
    // The actor lives on.
    assert_ne!(actor.ask(Ping).unwrap(), 0);
    common::stop_and_join(&actor);
}

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Hold, Ping))]
struct PoolWorker;

impl Handler<Hold> for PoolWorker {
    fn handle(&mut self, Hold(gate): Hold, _: &mut Context<Self>) -> bool {
        common::wait_at_gate(&gate)
    }
}

impl Handler<Ping> for PoolWorker {
    fn handle(&mut self, _: Ping, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

#[test]
fn pool_apply_and_map_with_a_timeout_return_while_a_worker_is_stuck() {
    let pool: Pool<PoolWorker> = Pool::new(2, PoolWorker).unwrap();
    let gate = Gate::new();
    match pool.apply_timeout(Hold(gate.path()), Duration::from_millis(300)) {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    let arrived = gate.arrival(LONG);
    let items = vec![Hold(gate.path()), Hold(gate.path())];
    match pool.map_timeout(items, Duration::from_millis(300)) {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    drop(arrived);
    pool.terminate();
}

#[test]
fn a_full_joinable_queue_gives_the_item_back_at_the_put_deadline_and_counts_no_task() {
    let q = procession::queue::JoinableQueue::<u32>::bounded(1).unwrap();
    q.put(1).unwrap();
    match q.put_timeout(2, Duration::from_millis(100)) {
        Err(TellError::Timeout(2)) => {}
        other => panic!("expected the item back at the deadline, got {other:?}"),
    }
    assert_eq!(q.get().unwrap(), 1);
    q.task_done().unwrap();
    assert!(
        q.join_timeout(Duration::ZERO),
        "the refused put left a task counted"
    );
}

#[test]
fn pool_join_timeout_returns_while_a_map_in_progress_is_stuck() {
    let pool: Pool<PoolWorker> = Pool::new(1, PoolWorker).unwrap();
    let gate = Gate::new();
    let stuck = {
        let pool = pool.clone();
        let path = gate.path();
        std::thread::spawn(move || pool.map_timeout(vec![Hold(path)], LONG))
    };
    let arrived = gate.arrival(LONG);
    pool.close();
    match pool.join_timeout(Duration::from_millis(200)) {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    arrived.release();
    assert_eq!(stuck.join().unwrap().unwrap(), vec![true]);
    pool.join().unwrap();
}
