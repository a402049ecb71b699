//! Nothing outlives the program, and nothing piles up while it runs:
//! - when the root process is SIGKILLed, or returns from `main` without stopping its
//!   actors, every actor process (whatever its start method, and actors spawned by
//!   actors) and the zygote end, and the runtime directory is removed;
//! - 1,000 spawn/ask/stop/join cycles leave no file descriptor, process or runtime-dir
//!   entry behind, and the reaper removes an exited actor's mailbox and reply inboxes;
//! - with `PROCESSION_LOG` set, actor processes log their start, their exit and rejected
//!   frames, naming the actor and its pid; without it, they log nothing.
//!
//! A "root" here is this test binary re-run as a subprocess on the `#[ignore]`d helper
//! test [`orphan_probe`], which does what `PROBE_ENV` says and prints one `PROBE ...` line.
//! The tests in this file count this process's descriptors, children and runtime-dir
//! entries, so they run one at a time (`serial()`), and in-process actor work runs on a
//! short-lived thread (`on_fresh_thread`) so that its reply inbox is gone when it returns.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use procession::prelude::*;
use procession::{SpawnOptions, StartMethod};

/// Long enough never to be hit in a passing run on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// How fast the runtime must take every actor down after the root is SIGKILLed.
const TEARDOWN: Duration = Duration::from_secs(1);

/// Tells the helper test what to do; unset, it does nothing.
const PROBE_ENV: &str = "PROCESSION_TEST_ORPHAN_PROBE";

/// The name [`orphan_probe`] has in this test binary.
const PROBE_TEST: &str = "orphan_probe";

const CYCLES: usize = 1000;

// ---------------------------------------------------------------------------------------
// Actors.

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct WhoAreYou;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WhoAreYou))]
struct Idle;

impl Handler<WhoAreYou> for Idle {
    fn handle(&mut self, _: WhoAreYou, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct ChildPid;

/// Spawns an [`Idle`] child from inside its own process and asks it once (so it owns a
/// reply inbox); stops and joins the child when it stops gracefully.
#[derive(Actor)]
#[actor(handles(ChildPid), args = ())]
struct Parent {
    child: ActorRef<Idle>,
}

impl Actor for Parent {
    type Args = ();

    fn create((): (), cx: &mut Context<Self>) -> Result<Self, BoxError> {
        let child: ActorRef<Idle> = cx.spawn(Idle)?;
        child.ask(WhoAreYou)?;
        Ok(Parent { child })
    }

    fn stopping(&mut self, _cx: &mut Context<Self>) {
        let _ = self.child.stop();
        let _ = self.child.join_timeout(PATIENCE);
    }
}

impl Handler<ChildPid> for Parent {
    fn handle(&mut self, _: ChildPid, _cx: &mut Context<Self>) -> u32 {
        self.child.pid()
    }
}

// ---------------------------------------------------------------------------------------
// Looking at processes and directories.

/// A process, identified by pid and start time (so a recycled pid is not mistaken for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: u32,
    start: u64,
}

/// State letter, parent pid and start time of `pid`, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, ppid, start))
}

impl Proc {
    fn of(pid: u32) -> Proc {
        let (_, _, start) = stat(pid).unwrap_or_else(|| panic!("no process {pid}"));
        Proc { pid, start }
    }

    /// Still running: it exists, is the same process, and is not a zombie.
    fn running(&self) -> bool {
        matches!(stat(self.pid), Some((state, _, start))
            if start == self.start && state != 'Z' && state != 'X')
    }

    fn parse(s: &str) -> Proc {
        let (pid, start) = s.split_once(':').unwrap();
        Proc {
            pid: pid.parse().unwrap(),
            start: start.parse().unwrap(),
        }
    }
}

impl std::fmt::Display for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.pid, self.start)
    }
}

/// Every process (zombies included) whose chain of parents reaches `root`, with its state.
fn descendants(root: u32) -> BTreeMap<u32, char> {
    let mut parent = BTreeMap::new();
    let mut state = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some((s, ppid, _)) = stat(pid) {
            parent.insert(pid, ppid);
            state.insert(pid, s);
        }
    }
    let mut out = BTreeMap::new();
    for (&pid, &s) in &state {
        let mut p = pid;
        for _ in 0..64 {
            match parent.get(&p) {
                Some(&pp) if pp == root => {
                    out.insert(pid, s);
                    break;
                }
                Some(&pp) if pp > 1 => p = pp,
                _ => break,
            }
        }
    }
    out
}

/// The runtime directories (`procession-<pid>-<nonce>`) of the root process `pid`.
fn runtime_dirs_of(pid: u32) -> Vec<PathBuf> {
    let base = std::env::var_os("PROCESSION_SHM_DIR")
        .map_or_else(|| PathBuf::from("/dev/shm"), PathBuf::from);
    let prefix = format!("procession-{pid}-");
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// This process's runtime directory (it exists once the runtime started).
fn own_runtime_dir() -> PathBuf {
    let dirs = runtime_dirs_of(std::process::id());
    assert_eq!(dirs.len(), 1, "runtime dirs of this process: {dirs:?}");
    dirs[0].clone()
}

/// Starts this process's runtime if it has none (one spawn/stop/join: after a spawn the
/// zygote is serving and its socket exists), waits until the reaper removed that actor's
/// files, and returns the runtime directory and its entries.
fn settled_runtime_dir() -> (PathBuf, Vec<String>) {
    let idle: ActorRef<Idle> = procession::spawn(Idle).unwrap();
    idle.stop().unwrap();
    idle.join_timeout(PATIENCE).unwrap();
    let dir = own_runtime_dir();
    let settled = wait_for(PATIENCE, || {
        !entries(&dir).iter().any(|e| e.starts_with("mb-"))
    });
    assert!(settled.is_some(), "{:?}", entries(&dir));
    let now = entries(&dir);
    (dir, now)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect();
    fds.sort();
    fds
}

/// Polls `cond` until it holds or `within` passes; returns when it first held.
fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> Option<Instant> {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return Some(Instant::now());
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------------------
// Test plumbing.

/// The tests of this file count process-wide resources: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on a new thread and joins it, so the thread's reply inbox is removed before
/// this returns (a thread's inbox lives as long as the thread).
fn on_fresh_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Removes terminal colour codes (`ESC [ ... letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `line` has the field `pid=<pid>` (and not merely a pid that starts the same).
fn names_pid(line: &str, pid: u32) -> bool {
    line.match_indices("pid=").any(|(i, m)| {
        let digits: String = line[i + m.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits == pid.to_string()
    })
}

/// A root process: this test binary, re-run on [`orphan_probe`].
struct Probe {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Probe {
    fn start(mode: &str, log: Option<&str>) -> Probe {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([PROBE_TEST, "--exact", "--ignored", "--nocapture"])
            .arg("--test-threads=1")
            .env(PROBE_ENV, mode)
            .env_remove("PROCESSION_START_METHOD")
            .env_remove("PROCESSION_EXIT_JOIN_TIMEOUT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if mode == "linger" {
            cmd.env("PROCESSION_EXIT_JOIN_TIMEOUT", "0.5");
        }
        match log {
            Some(filter) => cmd.env("PROCESSION_LOG", filter),
            None => cmd.env_remove("PROCESSION_LOG"),
        };
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Probe {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// The fields of the probe's `PROBE` line (libtest may print on the same line first).
    fn report(&mut self) -> BTreeMap<String, String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("no PROBE line from the probe ({e})");
                }
            };
            if let Some(i) = line.find("PROBE ") {
                return line[i + "PROBE ".len()..]
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
            }
        }
    }

    /// Waits (with a deadline) for the probe to exit by itself; returns its stderr.
    fn finish(mut self) -> String {
        let exited = wait_for(PATIENCE, || self.child.try_wait().unwrap().is_some());
        if exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(
            exited.is_some(),
            "the probe did not exit; stderr:\n{stderr}"
        );
        assert!(
            status.success(),
            "probe failed ({status}); stderr:\n{stderr}"
        );
        stderr
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Only the process this test started, by its pid.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn procs(field: &str) -> Vec<Proc> {
    field
        .split(',')
        .filter(|s| !s.is_empty())
        .map(Proc::parse)
        .collect()
}

// ---------------------------------------------------------------------------------------
// The root process that the tests start.

/// Spawns an actor of each kind, prints `PROBE actors=<pid:start,...> children=<...>
/// dir=<runtime dir>`, then blocks on stdin (`block`) or returns without stopping them
/// (`exit`; then they are daemons; `linger`: they are not, and the exit join has a
/// deadline). In `log` mode it makes one actor reject a frame, stops it and prints
/// `PROBE pid=<pid>`.
#[test]
#[ignore = "helper: other tests of this file run it in a subprocess"]
fn orphan_probe() {
    let Ok(mode) = std::env::var(PROBE_ENV) else {
        return;
    };
    let me = std::process::id();
    let mut out = std::io::stdout();
    if mode == "log" {
        let idle: ActorRef<Idle> = procession::spawn(Idle).unwrap();
        idle.mailbox()
            .send_raw_record(true, true, &[0xAB; 40])
            .unwrap();
        // Asked after the bad frame, so the actor has handled it when this returns.
        assert_eq!(idle.ask(WhoAreYou).unwrap(), idle.pid());
        assert_eq!(idle.bad_frames(), 1);
        idle.stop().unwrap();
        assert_eq!(idle.join_timeout(PATIENCE).unwrap(), Exit::Stopped);
        writeln!(out, "\nPROBE pid={}", idle.pid()).unwrap();
        out.flush().unwrap();
        return;
    }

    // In `exit` mode the actors are daemons: a normal exit of the root terminates them
    // (non-daemon actors would be waited for, as Python's multiprocessing does).
    let daemon = mode == "exit";
    let forked: ActorRef<Idle> =
        procession::spawn_with(Idle, SpawnOptions::new().daemon(daemon)).unwrap();
    let execed: ActorRef<Idle> = procession::spawn_with(
        Idle,
        SpawnOptions::new()
            .start_method(StartMethod::Spawn)
            .daemon(daemon),
    )
    .unwrap();
    let parent: ActorRef<Parent> =
        procession::spawn_with((), SpawnOptions::new().daemon(daemon)).unwrap();
    let grandchild = parent.ask(ChildPid).unwrap();
    let actors = [
        forked.ask(WhoAreYou).unwrap(),
        execed.ask(WhoAreYou).unwrap(),
        parent.pid(),
        grandchild,
    ];
    let list = |pids: &mut dyn Iterator<Item = u32>| {
        pids.map(|p| Proc::of(p).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let children = descendants(me)
        .into_iter()
        .filter(|&(pid, _)| stat(pid).is_some_and(|(_, ppid, _)| ppid == me))
        .map(|(pid, _)| pid);
    let dirs = runtime_dirs_of(me);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    writeln!(
        out,
        "\nPROBE actors={} children={} dir={}",
        list(&mut actors.into_iter()),
        list(&mut children.collect::<Vec<_>>().into_iter()),
        dirs[0].display()
    )
    .unwrap();
    out.flush().unwrap();
    if mode == "block" {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    }
}

// ---------------------------------------------------------------------------------------
// No orphans.

#[test]
fn sigkill_of_the_root_takes_every_actor_down_within_a_second() {
    let _serial = serial();
    let mut probe = Probe::start("block", None);
    let report = probe.report();
    let actors = procs(&report["actors"]);
    let children = procs(&report["children"]);
    let dir = PathBuf::from(&report["dir"]);
    assert_eq!(actors.len(), 4, "{report:?}");
    assert!(!children.is_empty(), "the zygote is the root's child");
    assert!(actors.iter().chain(&children).all(Proc::running));
    assert!(dir.is_dir());
    let all: Vec<Proc> = actors.iter().chain(&children).copied().collect();

    let killed = Instant::now();
    probe.child.kill().unwrap();
    probe.child.wait().unwrap();
    let gone = wait_for(PATIENCE, || !all.iter().any(Proc::running));
    let still: Vec<&Proc> = all.iter().filter(|p| p.running()).collect();
    let gone = gone.unwrap_or_else(|| panic!("still running after {PATIENCE:?}: {still:?}"));
    let took = gone - killed;
    eprintln!("every actor and the zygote ended {took:?} after the root was killed");
    assert!(
        took <= TEARDOWN,
        "the last actor ended {took:?} after the root was killed"
    );
    assert!(
        wait_for(PATIENCE, || !dir.exists()).is_some(),
        "runtime dir {} is left: {:?}",
        dir.display(),
        entries(&dir)
    );
}

/// Runs the probe in `mode` until it exits by itself; checks that its 4 actors and its
/// zygote end and its runtime directory goes. Returns the probe's stderr.
fn exits_leaving_nothing(mode: &str) -> String {
    let mut probe = Probe::start(mode, None);
    let report = probe.report();
    let root = probe.child.id();
    let all: Vec<Proc> = procs(&report["actors"])
        .into_iter()
        .chain(procs(&report["children"]))
        .collect();
    assert_eq!(all.len(), 5, "{report:?}");
    let stderr = probe.finish();
    assert!(
        wait_for(PATIENCE, || !all.iter().any(Proc::running)).is_some(),
        "still running: {:?}",
        all.iter().filter(|p| p.running()).collect::<Vec<_>>()
    );
    assert!(
        wait_for(PATIENCE, || runtime_dirs_of(root).is_empty()).is_some(),
        "left behind: {:?}",
        runtime_dirs_of(root)
    );
    stderr
}

#[test]
fn normal_exit_of_the_root_terminates_its_daemon_actors_and_leaves_no_runtime_dir() {
    let _serial = serial();
    exits_leaving_nothing("exit");
}

#[test]
fn the_exit_join_gives_up_at_its_deadline_and_the_actors_still_running_end_with_the_root() {
    let _serial = serial();
    let stderr = exits_leaving_nothing("linger");
    assert!(
        stderr.contains("3 of 3 non-daemon actors still running after the exit join timeout"),
        "the root says why it did not wait; stderr:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------------------
// No leaks.

/// What a leak would change: this process's open fds, its descendant processes (zombies
/// included) and the entries of its runtime directory.
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    fds: Vec<String>,
    descendants: BTreeMap<u32, char>,
    runtime_dir: Vec<String>,
}

impl Footprint {
    fn now(dir: &Path) -> Footprint {
        Footprint {
            fds: open_fds(),
            descendants: descendants(std::process::id()),
            runtime_dir: entries(dir),
        }
    }
}

#[test]
fn a_thousand_spawn_stop_cycles_leak_no_fd_process_or_runtime_entry() {
    let _serial = serial();
    on_fresh_thread(|| {
        let cycle = || {
            let a: ActorRef<Idle> = procession::spawn(Idle).unwrap();
            assert_eq!(a.ask(WhoAreYou).unwrap(), a.pid());
            a.stop().unwrap();
            assert_eq!(a.join_timeout(PATIENCE).unwrap(), Exit::Stopped);
        };
        // The first cycle starts the runtime, the zygote and this thread's reply inbox.
        cycle();
        let dir = own_runtime_dir();
        let mut before = Footprint::now(&dir);
        // The reaper may still be finishing the warm-up actor. What stays: the zygote and
        // its janitor (which removes the runtime directory if the zygote is killed).
        wait_for(PATIENCE, || {
            before = Footprint::now(&dir);
            before.descendants.len() == 2
                && !before.runtime_dir.iter().any(|e| e.starts_with("mb-"))
        });
        let started = Instant::now();
        for _ in 0..CYCLES {
            cycle();
        }
        eprintln!(
            "{CYCLES} spawn/ask/stop/join cycles took {:?}",
            started.elapsed()
        );
        let mut after = Footprint::now(&dir);
        wait_for(PATIENCE, || {
            after = Footprint::now(&dir);
            after == before
        });
        assert_eq!(after, before);
    });
}

#[test]
fn reaper_removes_an_exited_actors_mailbox_and_inboxes() {
    let _serial = serial();
    on_fresh_thread(|| {
        let (dir, before) = settled_runtime_dir();
        let parent: ActorRef<Parent> = procession::spawn(()).unwrap();
        let child = parent.ask(ChildPid).unwrap();
        assert_ne!(child, 0);
        let during = entries(&dir);
        let mailboxes = during.iter().filter(|e| e.starts_with("mb-")).count();
        let parent_inbox = format!("in-{:08x}", parent.pid());
        assert_eq!(mailboxes, 2, "parent and child mailboxes: {during:?}");
        assert!(
            during.iter().any(|e| e.starts_with(&parent_inbox)),
            "the parent's reply inbox: {during:?}"
        );
        parent.stop().unwrap();
        assert_eq!(parent.join_timeout(PATIENCE).unwrap(), Exit::Stopped);
        // This thread's own reply inbox (from the ask above) lives as long as the thread,
        // in this process's inbox directory, which lives as long as the process.
        let ours = format!("in-{:08x}", std::process::id());
        let not_ours = |names: Vec<String>| -> Vec<String> {
            names
                .into_iter()
                .filter(|e| !e.starts_with(&ours))
                .collect()
        };
        let others = || not_ours(entries(&dir));
        let before = not_ours(before.clone());
        // The reaper removes the files just after it publishes the exit (see the ignored
        // test below), so wait for it.
        let cleaned = wait_for(PATIENCE, || others() == before);
        assert!(cleaned.is_some(), "left behind: {:?}", others());
    });
}

#[test]
fn mailbox_file_is_gone_when_join_returns() {
    let _serial = serial();
    on_fresh_thread(|| {
        let (dir, before) = settled_runtime_dir();
        for round in 0..200 {
            let idle: ActorRef<Idle> = procession::spawn(Idle).unwrap();
            idle.stop().unwrap();
            assert_eq!(idle.join_timeout(PATIENCE).unwrap(), Exit::Stopped);
            assert_eq!(
                entries(&dir),
                before,
                "round {round}: left behind after join"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------
// Observability.

#[test]
fn with_procession_log_actors_log_start_exit_and_rejected_frames_naming_actor_and_pid() {
    let _serial = serial();
    let mut probe = Probe::start("log", Some("info"));
    let pid: u32 = probe.report()["pid"].parse().unwrap();
    let stderr = strip_ansi(&probe.finish());
    let name = <Idle as procession::__private::Dispatch>::NAME;
    let logged = |what: &str| {
        stderr
            .lines()
            .any(|l| l.contains(what) && l.contains(name) && names_pid(l, pid))
    };
    assert!(logged("actor started"), "no start line; stderr:\n{stderr}");
    assert!(logged("actor exited"), "no exit line; stderr:\n{stderr}");
    assert!(
        logged("rejected a frame"),
        "no rejected-frame warning; stderr:\n{stderr}"
    );
}

#[test]
fn without_procession_log_actors_log_nothing() {
    let _serial = serial();
    let mut probe = Probe::start("log", None);
    probe.report();
    let stderr = strip_ansi(&probe.finish());
    let tracing_line = |l: &str| {
        ["TRACE", "DEBUG", " INFO", " WARN", "ERROR"]
            .iter()
            .any(|level| l.contains(level))
            || ["actor started", "actor exited", "rejected a frame"]
                .iter()
                .any(|what| l.contains(what))
    };
    assert!(
        !stderr.lines().any(tracing_line),
        "tracing output without PROCESSION_LOG:\n{stderr}"
    );
}
