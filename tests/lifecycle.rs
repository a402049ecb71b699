//! The life of one actor, seen from outside: graceful `stop` (every message told before it
//! is handled, `started` runs before the first message, `stopping` runs at the end),
//! `Context::stop`, `kill`, crashes (panic, abort, segfault) and what callers blocked in
//! `ask` or `tell` learn about them, operations on an actor that is already dead,
//! `join_timeout`, and the isolation of siblings from a crash.
//!
//! Every test waits on events (replies, `join_timeout`) with generous timeouts, and every
//! actor it spawns is killed and joined when the test ends, even when an assertion fails.

use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use procession::__private::Dispatch;
use procession::prelude::*;
use procession::{Error, SpawnOptions, TellError};

/// Long enough never to be hit in a passing run on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Test plumbing.

/// An actor that is killed and joined when the test ends, however it ends.
struct Reaped<A: Dispatch>(ActorRef<A>);

impl<A: Dispatch> Deref for Reaped<A> {
    type Target = ActorRef<A>;
    fn deref(&self) -> &ActorRef<A> {
        &self.0
    }
}

impl<A: Dispatch> Drop for Reaped<A> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.join_timeout(PATIENCE);
    }
}

fn spawn_reaped<A: Dispatch>(args: A::Args) -> Reaped<A> {
    Reaped(procession::spawn(args).unwrap())
}

/// A private directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "procession-test-lifecycle-{}-{}-{what}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// A journaling actor: it writes every hook and message to a file, so the test can read
// what happened inside it after it exited.

/// Handled by appending `note N` to the journal.
#[derive(Serialize, Deserialize, Message)]
struct Note(u64);

#[derive(Actor)]
#[actor(handles(Note), args = PathBuf)]
struct Journal {
    file: std::fs::File,
    notes: u64,
}

impl Journal {
    fn write(&mut self, line: &str) {
        writeln!(self.file, "{line}").unwrap();
    }
}

impl Actor for Journal {
    type Args = PathBuf;

    fn create(path: PathBuf, _cx: &mut Context<Self>) -> Result<Self, BoxError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Journal { file, notes: 0 })
    }

    fn started(&mut self, _cx: &mut Context<Self>) {
        self.write("started");
    }

    fn stopping(&mut self, _cx: &mut Context<Self>) {
        let line = format!("stopping after {} notes", self.notes);
        self.write(&line);
    }
}

impl Handler<Note> for Journal {
    fn handle(&mut self, Note(n): Note, _cx: &mut Context<Self>) {
        self.notes += 1;
        self.write(&format!("note {n}"));
    }
}

/// Spawns a journal in `dir`, tells it notes `1..=notes`, stops it, and returns its exit
/// and the journal's lines.
fn journal_run(dir: &TempDir, notes: u64) -> (Exit, Vec<String>) {
    let path = dir.path().join("journal");
    let journal: Reaped<Journal> = spawn_reaped(path.clone());
    for n in 1..=notes {
        journal.tell(Note(n)).unwrap();
    }
    journal.stop().unwrap();
    let exit = journal.join_timeout(PATIENCE).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    (exit, text.lines().map(str::to_string).collect())
}

// ---------------------------------------------------------------------------------------
// A worker that can be told to misbehave.

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Add(u64);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Pid;

#[derive(Serialize, Deserialize, Message)]
struct StopSelf;

#[derive(Serialize, Deserialize, Message)]
struct Panic(String);

#[derive(Serialize, Deserialize, Message)]
struct Abort;

#[derive(Serialize, Deserialize, Message)]
struct Segfault;

/// Blocks the handler until the process gets a signal that ends it.
#[derive(Serialize, Deserialize, Message)]
struct Hang;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Add, Pid, StopSelf, Panic, Abort, Segfault, Hang))]
struct Worker {
    total: u64,
}

impl Handler<Add> for Worker {
    fn handle(&mut self, Add(n): Add, _cx: &mut Context<Self>) -> u64 {
        self.total += n;
        self.total
    }
}

impl Handler<Pid> for Worker {
    fn handle(&mut self, _: Pid, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

impl Handler<StopSelf> for Worker {
    fn handle(&mut self, _: StopSelf, cx: &mut Context<Self>) {
        cx.stop();
    }
}

impl Handler<Panic> for Worker {
    fn handle(&mut self, Panic(text): Panic, _cx: &mut Context<Self>) {
        panic!("{text}");
    }
}

impl Handler<Abort> for Worker {
    fn handle(&mut self, _: Abort, _cx: &mut Context<Self>) {
        std::process::abort();
    }
}

impl Handler<Segfault> for Worker {
    fn handle(&mut self, _: Segfault, _cx: &mut Context<Self>) {
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGSEGV).unwrap();
        unreachable!("SIGSEGV has its default action in an actor process");
    }
}

impl Handler<Hang> for Worker {
    fn handle(&mut self, _: Hang, _cx: &mut Context<Self>) {
        loop {
            nix::unistd::pause();
        }
    }
}

fn worker() -> Reaped<Worker> {
    spawn_reaped(Worker { total: 0 })
}

/// The `exit` carried by an `Error::ActorDied`, failing on any other result.
fn died_exit<T: std::fmt::Debug>(result: procession::Result<T>) -> Option<Exit> {
    match result {
        Err(Error::ActorDied { exit, .. }) => exit,
        other => panic!("expected Error::ActorDied, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Graceful stop and the hooks.

#[test]
fn stop_handles_every_message_told_before_it_and_exits_stopped() {
    let dir = TempDir::new("stop");
    let (exit, lines) = journal_run(&dir, 200);
    assert_eq!(exit, Exit::Stopped);
    let notes: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("note "))
        .map(String::as_str)
        .collect();
    let expected: Vec<String> = (1..=200).map(|n| format!("note {n}")).collect();
    assert_eq!(notes, expected, "every note, in order, exactly once");
}

#[test]
fn stopping_hook_runs_on_graceful_stop_after_the_last_message() {
    let dir = TempDir::new("stopping");
    let (_, lines) = journal_run(&dir, 3);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("stopping after 3 notes"),
        "journal: {lines:?}"
    );
}

#[test]
fn started_hook_runs_before_the_first_message() {
    let dir = TempDir::new("started");
    let (_, lines) = journal_run(&dir, 2);
    assert_eq!(
        lines,
        ["started", "note 1", "note 2", "stopping after 2 notes"],
    );
}

#[test]
fn stop_from_inside_a_handler_exits_normal() {
    let w = worker();
    w.tell(StopSelf).unwrap();
    assert_eq!(w.join_timeout(PATIENCE).unwrap(), Exit::Normal);
}

// ---------------------------------------------------------------------------------------
// Kill and crashes.

#[test]
fn kill_exits_signaled_9_and_is_alive_turns_false() {
    let w = worker();
    assert!(w.is_alive());
    w.kill().unwrap();
    assert_eq!(w.join_timeout(PATIENCE).unwrap(), Exit::Signaled(9));
    assert!(!w.is_alive());
}

#[test]
fn panic_in_handler_exits_panicked_with_its_message() {
    let w = worker();
    w.tell(Panic("the answer is 42".into())).unwrap();
    match w.join_timeout(PATIENCE).unwrap() {
        Exit::Panicked { message } => assert!(
            message.contains("the answer is 42"),
            "panic message: {message:?}"
        ),
        other => panic!("expected Exit::Panicked, got {other:?}"),
    }
}

#[test]
fn ask_blocked_on_a_panicking_handler_gets_actor_died_with_the_panic() {
    let w = worker();
    let result = w.ask_timeout(Panic("no reply for you".into()), PATIENCE);
    match died_exit(result) {
        Some(Exit::Panicked { message }) => assert!(
            message.contains("no reply for you"),
            "panic message: {message:?}"
        ),
        other => panic!("expected exit Some(Panicked), got {other:?}"),
    }
}

#[test]
fn ask_blocked_on_an_aborting_handler_gets_actor_died() {
    let w = worker();
    let exit = died_exit(w.ask_timeout(Abort, PATIENCE));
    assert_eq!(exit, Some(Exit::Signaled(6)));
}

#[test]
fn abort_in_handler_exits_signaled_6() {
    let w = worker();
    w.tell(Abort).unwrap();
    assert_eq!(w.join_timeout(PATIENCE).unwrap(), Exit::Signaled(6));
}

#[test]
fn segfault_in_handler_exits_signaled_11_and_siblings_keep_working() {
    let left = worker();
    let victim = worker();
    let right = worker();
    assert_eq!(left.ask(Add(1)).unwrap(), 1);
    assert_eq!(right.ask(Add(10)).unwrap(), 10);
    victim.tell(Segfault).unwrap();
    assert_eq!(victim.join_timeout(PATIENCE).unwrap(), Exit::Signaled(11));
    assert_eq!(left.ask(Add(1)).unwrap(), 2);
    assert_eq!(right.ask(Add(10)).unwrap(), 20);
}

/// Makes a worker crash in one way.
type Crash = fn(&ActorRef<Worker>);

#[test]
fn crash_of_one_actor_does_not_affect_a_sibling() {
    let sibling = worker();
    let pid = sibling.ask(Pid).unwrap();
    let crashes: [(&str, Crash); 4] = [
        ("panic", |w| w.tell(Panic("crash".into())).unwrap()),
        ("abort", |w| w.tell(Abort).unwrap()),
        ("segfault", |w| w.tell(Segfault).unwrap()),
        ("kill", |w| w.kill().unwrap()),
    ];
    for (round, (what, crash)) in crashes.iter().enumerate() {
        let victim = worker();
        victim.ask(Add(1)).unwrap();
        crash(&victim);
        let exit = victim.join_timeout(PATIENCE).unwrap();
        assert!(!exit.is_clean(), "{what}: {exit:?}");
        assert_eq!(
            sibling.ask(Add(1)).unwrap(),
            round as u64 + 1,
            "sibling state after the {what}"
        );
        assert_eq!(
            sibling.ask(Pid).unwrap(),
            pid,
            "sibling process after {what}"
        );
    }
    assert!(sibling.is_alive());
}

// ---------------------------------------------------------------------------------------
// Talking to the dead.

#[test]
fn ask_to_a_dead_actor_returns_actor_died_before_its_timeout() {
    let w = worker();
    w.kill().unwrap();
    w.join_timeout(PATIENCE).unwrap();
    let asked = Instant::now();
    let exit = died_exit(w.ask_timeout(Add(1), PATIENCE));
    assert!(asked.elapsed() < PATIENCE);
    assert_eq!(exit, Some(Exit::Signaled(9)));
}

#[test]
fn tell_to_a_dead_actor_gives_the_message_back() {
    let w = worker();
    w.kill().unwrap();
    w.join_timeout(PATIENCE).unwrap();
    match w.tell(Add(7)) {
        Err(TellError::Dead(Add(n))) => assert_eq!(n, 7),
        other => panic!("expected TellError::Dead, got {other:?}"),
    }
}

/// Whether thread `tid` of this process sleeps in a shared (not process-private)
/// `FUTEX_WAIT`: what a sender waiting for room in a mailbox does. (The standard library's
/// own locks and channels use private futexes, so they do not match.)
fn sleeps_on_a_shared_futex(tid: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
        return false;
    };
    let mut fields = text.split_whitespace();
    let nr = fields.next().and_then(|f| f.parse::<i64>().ok());
    let op = fields
        .nth(1)
        .and_then(|f| i64::from_str_radix(f.trim_start_matches("0x"), 16).ok());
    nr == Some(libc::SYS_futex) && op == Some(libc::FUTEX_WAIT as i64)
}

#[test]
fn tell_blocked_on_a_full_mailbox_returns_dead_when_the_actor_is_killed() {
    let w: Reaped<Worker> = Reaped(
        procession::spawn_with(Worker { total: 0 }, SpawnOptions::new().capacity(1)).unwrap(),
    );
    // The actor takes `Hang` off the queue and blocks in it for good; `Add(1)` then
    // waits for that and fills the single slot.
    w.tell(Hang).unwrap();
    w.tell(Add(1)).unwrap();
    assert!(w.try_tell(Add(2)).unwrap_err().is_full());

    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let sender = (*w).clone();
    let teller = std::thread::spawn(move || {
        tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
        let result = sender.tell(Add(3));
        let _ = done_tx.send(match result {
            Err(TellError::Dead(Add(n))) => Ok(n),
            Err(other) => Err(format!("{other:?}")),
            Ok(()) => Err("the tell succeeded".to_string()),
        });
    });
    // Wait (polling with a deadline) until the teller sleeps on the mailbox's futex.
    let tid = tid_rx.recv_timeout(PATIENCE).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while !sleeps_on_a_shared_futex(tid) {
        assert!(Instant::now() < deadline, "the teller never blocked");
        assert!(done_rx.try_recv().is_err(), "the tell returned early");
        std::thread::sleep(Duration::from_millis(1));
    }

    w.kill().unwrap();
    let result = done_rx
        .recv_timeout(PATIENCE)
        .expect("the blocked tell hung");
    assert_eq!(result, Ok(3), "the blocked tell gives its message back");
    teller.join().unwrap();
    assert_eq!(w.join_timeout(PATIENCE).unwrap(), Exit::Signaled(9));
}

// ---------------------------------------------------------------------------------------
// Joining, and operations on an exited actor.

#[test]
fn join_timeout_times_out_on_a_running_actor_then_returns_after_stop() {
    let w = worker();
    let err = w.join_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(w.is_alive());
    w.stop().unwrap();
    assert_eq!(w.join_timeout(PATIENCE).unwrap(), Exit::Stopped);
}

#[test]
fn stop_and_kill_on_an_exited_actor_are_no_ops_returning_ok() {
    let w = worker();
    w.stop().unwrap();
    assert_eq!(w.join_timeout(PATIENCE).unwrap(), Exit::Stopped);
    w.stop().unwrap();
    w.kill().unwrap();
    assert_eq!(w.join_timeout(PATIENCE).unwrap(), Exit::Stopped);
}
