//! What a new user meets in the first hour (issue 9, items 3 and 4): `Tiny.spawn()`
//! infers the actor type, a bad `PROCESSION_START_METHOD` is an error, a program that
//! returns with a non-daemon actor running says what it waits for, `#[child_init]` runs
//! in every actor process before `create`, an actor process goes by its actor's name,
//! and a panicking actor is named on stderr.
//!
//! The tests that need a whole program (its environment, its exit, its stderr) re-run
//! this test binary's ignored `program` test as a child, in the mode `FIRST_HOUR_MODE`.

mod common;
mod sup_common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Gate, LONG};
use procession::prelude::*;
use procession::supervisor::{ChildSpec, Strategy, Supervisor};
use procession::ChildStart;

/// What this process's `#[child_init]` saw (set in actor processes only).
static SEEN: Mutex<Option<ChildStart>> = Mutex::new(None);

#[procession::child_init]
fn remember_the_start(start: &ChildStart) {
    *SEEN.lock().unwrap() = Some(start.clone());
    if std::env::var_os("FIRST_HOUR_OWN_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(|| Marked(std::io::stderr()))
            .try_init();
    }
}

/// The user's own log writer in the tests: each event's line is marked as theirs.
struct Marked(std::io::Stderr);

impl std::io::Write for Marked {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut line = b"own-subscriber: ".to_vec();
        line.extend_from_slice(buf);
        self.0.write_all(&line)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Ask: what `create` found the child_init had seen, and the pid.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (Option<(String, u32, u32, String)>, u32))]
struct Seen;

/// Tell: panic.
#[derive(Serialize, Deserialize, Message)]
struct Crash;

/// Tell: wait at the gate at this path, then stop.
#[derive(Serialize, Deserialize, Message)]
struct Hold(String);

/// An actor that keeps what its process's child_init had recorded when `create` ran.
#[derive(Actor)]
#[actor(handles(Seen, Crash, Hold), args = ())]
struct Tiny {
    at_create: Option<(String, u32, u32, String)>,
}

impl Actor for Tiny {
    type Args = ();

    fn create(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
        let seen = SEEN.lock().unwrap().clone();
        let at_create = seen.map(|s| (s.actor.to_string(), s.pid, s.incarnation, s.label));
        Ok(Tiny { at_create })
    }
}

impl Handler<Seen> for Tiny {
    fn handle(
        &mut self,
        _: Seen,
        cx: &mut Context<Self>,
    ) -> (Option<(String, u32, u32, String)>, u32) {
        (self.at_create.clone(), cx.pid())
    }
}

impl Handler<Crash> for Tiny {
    fn handle(&mut self, _: Crash, _: &mut Context<Self>) {
        panic!("crash on request");
    }
}

impl Handler<Hold> for Tiny {
    /// Waits at the gate, then stops.
    fn handle(&mut self, Hold(gate): Hold, cx: &mut Context<Self>) {
        common::wait_at_gate(&gate);
        cx.stop();
    }
}

/// An actor whose spawn arguments are itself, as `#[derive(Actor)]` makes it.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Seen))]
struct SelfArgs;

impl Handler<Seen> for SelfArgs {
    fn handle(
        &mut self,
        _: Seen,
        cx: &mut Context<Self>,
    ) -> (Option<(String, u32, u32, String)>, u32) {
        (None, cx.pid())
    }
}

#[test]
fn spawn_on_the_value_infers_the_actor_type() {
    let actor = SelfArgs.spawn().unwrap();
    let typed: &ActorRef<SelfArgs> = &actor;
    let (_, pid) = typed.ask_timeout(Seen, LONG).unwrap();
    assert_ne!(pid, std::process::id());
    common::stop_and_join(&actor);
}

#[test]
fn child_init_runs_in_the_actor_process_before_create_with_its_name_pid_and_incarnation() {
    let sup = sup_common::start(
        Supervisor::new(Strategy::OneForOne).child(ChildSpec::worker::<Tiny>("tiny", ())),
    );
    let tiny = sup.child::<Tiny>("tiny").unwrap();
    let (seen, pid) = tiny.ask_timeout(Seen, LONG).unwrap();
    let name = "first_hour::Tiny".to_string();
    assert_eq!(seen, Some((name.clone(), pid, 0, "tiny".to_string())));
    assert!(
        SEEN.lock().unwrap().is_none(),
        "it runs in actor processes only"
    );

    tiny.tell(Crash).unwrap();
    sup_common::wait_restarted(&sup, "tiny", pid);
    let (seen, new_pid) = tiny.ask_timeout(Seen, LONG).unwrap();
    assert_eq!(seen, Some((name, new_pid, 1, "tiny".to_string())));
}

#[test]
fn an_actor_process_goes_by_the_short_name_of_its_actor() {
    let actor = SelfArgs.spawn().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", actor.pid())).unwrap();
    assert_eq!(comm.trim_end(), "SelfArgs");
    common::stop_and_join(&actor);
}

/// This test binary, run as a child program in `mode`, with its stderr piped.
fn run_program(mode: &str, envs: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "program",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("FIRST_HOUR_MODE", mode)
    .env_remove("PROCESSION_START_METHOD")
    .env_remove("PROCESSION_LOG")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits (at most [`LONG`]) for `child` to exit; kills it if it does not.
fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the program did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The child's stderr, a line at a time, through a channel (so reads have a deadline).
fn stderr_lines(child: &mut std::process::Child) -> crossbeam_channel::Receiver<String> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until one contains `needle` (at most [`LONG`]); returns it.
fn line_with(lines: &crossbeam_channel::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + LONG;
    loop {
        match lines.recv_deadline(deadline) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => continue,
            Err(e) => panic!("no line with {needle:?} on the program's stderr: {e}"),
        }
    }
}

#[test]
fn a_report_debug_prints_the_error_and_its_causes_in_words() {
    let cause = procession::Error::Supervisor(procession::supervisor::SupervisorError::NotFound {
        id: "cache".into(),
    });
    let report = procession::Report::from(cause);
    let text = format!("{report:?}");
    assert!(!text.contains("Supervisor("), "{text}");
    assert!(text.contains("cache"), "{text}");
    let tell: procession::Report = procession::TellError::Dead(5u8).into();
    assert_eq!(format!("{tell:?}"), "the actor has exited");
}

#[test]
fn a_start_method_variable_that_names_no_method_fails_the_spawn() {
    let mut child = run_program("bogus", &[("PROCESSION_START_METHOD", "bogus")]);
    let lines = stderr_lines(&mut child);
    let line = line_with(&lines, "spawn failed:");
    assert!(
        line.contains(r#"PROCESSION_START_METHOD="bogus" is not a start method"#),
        "{line}"
    );
    assert!(wait_exit(&mut child).success());
}

#[test]
fn a_program_that_returns_with_a_non_daemon_actor_running_names_it_and_waits() {
    let gate = Gate::new();
    let mut child = run_program("linger", &[("FIRST_HOUR_GATE", &gate.path())]);
    let lines = stderr_lines(&mut child);
    let arrived = gate.arrival(LONG);
    let started = Instant::now();
    let line = line_with(&lines, "non-daemon actor");
    assert!(
        started.elapsed() >= procession::EXIT_WAIT_NOTICE - Duration::from_millis(100),
        "said at once, not after waiting"
    );
    assert!(line.contains("main has returned"), "{line}");
    assert!(line.contains("first_hour::Tiny (pid "), "{line}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "it still waits for the actor"
    );
    arrived.release();
    assert!(wait_exit(&mut child).success());
}

#[test]
fn a_panicking_actor_is_named_on_stderr_before_the_panic_message() {
    let mut child = run_program("panic", &[]);
    let lines = stderr_lines(&mut child);
    let named = line_with(&lines, "procession: actor first_hour::Tiny (pid ");
    assert!(named.ends_with("panicked:"), "{named}");
    line_with(&lines, "crash on request");
    assert!(wait_exit(&mut child).success());
}

/// Every line the program writes to stderr until it exits (at most [`LONG`]).
fn all_lines(child: &mut std::process::Child) -> Vec<String> {
    let lines = stderr_lines(child);
    assert!(wait_exit(child).success());
    let deadline = Instant::now() + LONG;
    let mut out = Vec::new();
    // The reader thread ends at end-of-file, which follows the exit of every process
    // that held the pipe.
    while let Ok(line) = lines.recv_deadline(deadline) {
        out.push(line);
    }
    out
}

#[test]
fn procession_log_writes_plain_text_when_stderr_is_not_a_terminal() {
    let mut child = run_program("log", &[("PROCESSION_LOG", "info")]);
    let lines = all_lines(&mut child);
    assert!(
        lines.iter().any(|l| l.contains("actor started")),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('\x1b')),
        "colour codes: {lines:?}"
    );
}

#[test]
fn a_subscriber_installed_by_child_init_gets_the_actors_events_instead_of_procession_log() {
    let envs = [("PROCESSION_LOG", "info"), ("FIRST_HOUR_OWN_LOG", "1")];
    let mut child = run_program("log", &envs);
    let lines = all_lines(&mut child);
    let started: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("actor started"))
        .collect();
    assert!(!started.is_empty(), "{lines:?}");
    assert!(
        started.iter().all(|l| l.starts_with("own-subscriber: ")),
        "{started:?}"
    );
}

#[test]
fn log_events_name_the_supervisor_and_the_message_type() {
    let mut child = run_program("sup_log", &[("PROCESSION_LOG", "info")]);
    let lines = all_lines(&mut child);
    let started = |sup: &str, child: &str| {
        lines.iter().any(|l| {
            l.contains("child started")
                && l.contains(&format!("supervisor={sup}"))
                && l.contains(&format!("child={child}"))
        })
    };
    assert!(started("root", "workers"), "{lines:?}");
    assert!(started("workers", "tiny"), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("child exited") && l.contains("supervisor=workers")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("dropping the at-most-once message")
                && l.contains("message_type=\"first_hour::Crash\"")),
        "{lines:?}"
    );
}

/// The child program of the tests above (not a test by itself).
#[test]
#[ignore = "run as a child program by the tests of this file"]
fn program() {
    match std::env::var("FIRST_HOUR_MODE").as_deref() {
        Ok("bogus") => {
            let err = procession::spawn::<Tiny>(()).map(|_| ()).unwrap_err();
            eprintln!("spawn failed: {err}");
            assert!(matches!(err, procession::Error::InvalidArgument(_)));
        }
        Ok("linger") => {
            let tiny = procession::spawn::<Tiny>(()).unwrap();
            tiny.tell(Hold(std::env::var("FIRST_HOUR_GATE").unwrap()))
                .unwrap();
            // Returns with the actor running: the exit waits for it.
        }
        Ok("panic") => {
            let tiny = procession::spawn::<Tiny>(()).unwrap();
            tiny.tell(Crash).unwrap();
            let exit = tiny.join_timeout(LONG).unwrap();
            assert!(matches!(exit, Exit::Panicked { .. }), "{exit:?}");
        }
        Ok("log") => {
            let tiny = procession::spawn::<Tiny>(()).unwrap();
            common::stop_and_join(&tiny);
        }
        Ok("sup_log") => {
            // root -> workers -> tiny; tiny crashes handling Crash, and its next
            // incarnation drops that at-most-once message, naming it.
            let workers =
                Supervisor::new(Strategy::OneForOne).child(ChildSpec::worker::<Tiny>("tiny", ()));
            let root = sup_common::start(
                Supervisor::new(Strategy::OneForOne)
                    .child(ChildSpec::supervisor("workers", workers)),
            );
            let workers = root
                .child::<procession::supervisor::SupervisorActor>("workers")
                .unwrap();
            let tiny = workers.child::<Tiny>("tiny").unwrap();
            let old = tiny.pid();
            tiny.tell(Crash).unwrap();
            sup_common::wait_restarted(&workers, "tiny", old);
            // Answered after the dropped message: its event has been written.
            tiny.ask_timeout(Seen, LONG).unwrap();
            sup_common::stop_and_join(&root);
        }
        other => panic!("FIRST_HOUR_MODE={other:?}"),
    }
}
