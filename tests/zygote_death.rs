//! When the runtime's own keeper dies: the zygote is SIGKILLed while the root lives.
//!
//! Every actor dies with the zygote (parent-death signal). The root must then notice at
//! once, fail every reference fast with a typed error, remove the runtime directory, exit
//! normally from `main`, and start a fresh runtime on the next spawn.
//!
//! Each test kills the zygote of this very process, so they run one at a time
//! (`serial()`), and each one starts from whatever runtime the last one left (the
//! runtime heals itself on the next spawn).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::LONG;
use procession::prelude::*;
use procession::{Error, TellError};

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Ping;

#[derive(Serialize, Deserialize, Message)]
struct Note;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Ping, Note))]
struct Target;

impl Handler<Ping> for Target {
    fn handle(&mut self, _: Ping, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

impl Handler<Note> for Target {
    fn handle(&mut self, _: Note, _: &mut Context<Self>) {}
}

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Spawns a target (starting a runtime if needed) and SIGKILLs this process's zygote.
/// Returns the target, the dead runtime's directory and the zygote's pid.
fn target_then_kill_zygote() -> (ActorRef<Target>, PathBuf, u32) {
    let target: ActorRef<Target> = procession::spawn(Target).unwrap();
    assert_ne!(target.ask(Ping).unwrap(), 0);
    let dir = procession::__private::runtime_dir().expect("a runtime");
    let zygote = procession::__private::zygote_pid().expect("the root knows its zygote");
    // The zygote is this process's own unreaped child: its pid is still its own.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(zygote as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Wait until the kill has taken effect: the zygote is dead (a zombie until this
    // process notices) and the actor died with it (parent-death signal).
    let dead = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            s.rsplit_once(')').is_some_and(|(_, rest)| {
                matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))
            })
        })
    };
    let actor_pid = target.pid();
    assert!(
        wait_for(LONG, || dead(zygote) && dead(actor_pid)),
        "the zygote or the actor did not die"
    );
    (target, dir, zygote)
}

fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}

#[test]
fn ask_fails_with_runtime_lost_instead_of_timing_out_after_the_zygote_dies() {
    let _serial = serial();
    let (target, _, _) = target_then_kill_zygote();
    match target.ask_timeout(Ping, LONG) {
        Err(Error::RuntimeLost) => {}
        other => panic!("expected RuntimeLost, got {other:?}"),
    }
}

#[test]
fn join_reports_runtime_lost_and_is_alive_turns_false_after_the_zygote_dies() {
    let _serial = serial();
    let (target, _, _) = target_then_kill_zygote();
    assert_eq!(target.join_timeout(LONG).unwrap(), Exit::RuntimeLost);
    assert!(!target.is_alive());
}

#[test]
fn tell_and_stop_fail_fast_with_typed_errors_after_the_zygote_dies() {
    let _serial = serial();
    let (target, _, _) = target_then_kill_zygote();
    // The loss is noticed on the first slow path; join is one.
    assert_eq!(target.join_timeout(LONG).unwrap(), Exit::RuntimeLost);
    assert!(matches!(target.tell(Note), Err(TellError::RuntimeLost(_))));
    assert!(matches!(target.stop(), Err(Error::RuntimeLost)));
    assert!(matches!(target.kill(), Err(Error::RuntimeLost)));
}

#[test]
fn runtime_directory_is_removed_after_the_zygote_dies_even_if_the_root_is_idle() {
    let _serial = serial();
    let (_target, dir, _) = target_then_kill_zygote();
    // Nothing in this process touches the runtime: the zygote's janitor removes it.
    assert!(
        wait_for(LONG, || !dir.exists()),
        "{} is left after the zygote died",
        dir.display()
    );
}

#[test]
fn next_spawn_after_a_lost_runtime_starts_a_fresh_runtime_with_a_new_zygote() {
    let _serial = serial();
    let (old, old_dir, old_zygote) = target_then_kill_zygote();
    assert_eq!(old.join_timeout(LONG).unwrap(), Exit::RuntimeLost);
    let fresh: ActorRef<Target> = procession::spawn(Target).unwrap();
    assert_ne!(fresh.ask(Ping).unwrap(), 0);
    let new_dir = procession::__private::runtime_dir().unwrap();
    assert_ne!(new_dir, old_dir);
    assert_ne!(procession::__private::zygote_pid().unwrap(), old_zygote);
    // The old reference stays failed; the new one works.
    assert!(matches!(old.ask(Ping), Err(Error::RuntimeLost)));
    common::stop_and_join(&fresh);
}

/// Run as a subprocess by the next test: spawns a non-daemon actor, kills its own
/// zygote, says so, and returns (the harness then exits, running the at-exit join).
#[test]
#[ignore = "helper run as a subprocess by root_exits_normally_after_its_zygote_dies"]
fn zygote_death_probe() {
    if std::env::var_os("PROCESSION_TEST_ZYGOTE_PROBE").is_none() {
        return;
    }
    use std::io::Write;
    let target: ActorRef<Target> = procession::spawn(Target).unwrap();
    assert_ne!(target.ask(Ping).unwrap(), 0);
    println!("PROBE killing");
    std::io::stdout().flush().unwrap();
    let (_target, dir, _) = target_then_kill_zygote();
    println!("PROBE killed dir={}", dir.display());
}

#[test]
fn root_exits_normally_after_its_zygote_dies_and_leaves_no_runtime_dir() {
    let _serial = serial();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "zygote_death_probe",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PROCESSION_TEST_ZYGOTE_PROBE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut dir = None;
    let mut killed_at = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // (The harness may print "test zygote_death_probe ... " on the same line.)
        if line.ends_with("PROBE killing") {
            killed_at = Some(Instant::now());
        }
        if let Some((_, d)) = line.split_once("PROBE killed dir=") {
            dir = Some(PathBuf::from(d));
        }
    }
    let exited = wait_for(LONG, || child.try_wait().unwrap().is_some());
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the root did not exit after its zygote died");
    }
    let status = child.wait().unwrap();
    let exited = killed_at.map(|t| t.elapsed());
    let dir = dir.expect("the probe reported its runtime dir");
    assert!(status.success(), "the root ended with {status}");
    assert!(
        wait_for(LONG, || !dir.exists()),
        "{} is left behind",
        dir.display()
    );
    if let (Some(t), Some(exited)) = (killed_at, exited) {
        eprintln!(
            "zygote SIGKILL -> root exited ({status}) {exited:?}, runtime dir gone {:?}",
            t.elapsed()
        );
    }
}
