//! Ctrl-C, SIGTERM and SIGHUP (issue 10, item 1). A "program" here is this test binary
//! re-run, in a process group of its own, on the `#[ignore]`d helper [`signal_probe`]: it
//! starts a supervisor with three children and then a plain actor, prints one `READY`
//! line, and waits. The tests send a real signal to that whole process group, as a
//! terminal's Ctrl-C does, and check:
//! - by default, every `stopping` hook runs, the last started actor first and the
//!   supervisor's children in reverse start order; the program exits 130 (SIGINT) or 143
//!   (SIGTERM); no process and no runtime directory is left;
//! - a second signal during that shutdown ends the program at once, and every actor with it;
//! - after `shutdown_signal()`, the signal only reaches `main`, the actors live on (they
//!   never saw it), and `main` decides.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use procession::prelude::*;
use procession::supervisor::{ChildSpec, Strategy, Supervisor};

const LONG: Duration = Duration::from_secs(30);
const PROBE_ENV: &str = "PROCESSION_TEST_SIGNAL_PROBE";
const LOG_ENV: &str = "PROCESSION_TEST_SIGNAL_LOG";

// ---------------------------------------------------------------------------------------
// The actors of the probe program.

/// Appends `stopping <id>` to the log file in its `stopping` hook; with `hang`, first
/// writes `hanging <id>` and then never returns from the hook.
#[derive(Serialize, Deserialize, Actor, Clone)]
#[actor(handles(Alive), args = Hooked)]
struct Hooked {
    id: String,
    log: PathBuf,
    hang: bool,
}

/// Ask: the pid (proves the actor is alive and answering).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Alive;

impl Handler<Alive> for Hooked {
    fn handle(&mut self, _: Alive, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

impl Actor for Hooked {
    type Args = Hooked;

    fn create(args: Hooked, _cx: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(args)
    }

    fn stopping(&mut self, _cx: &mut Context<Self>) {
        if self.hang {
            append(&self.log, &format!("hanging {}", self.id));
            loop {
                std::thread::park();
            }
        }
        append(&self.log, &format!("stopping {}", self.id));
    }
}

fn hooked(id: &str, log: &Path, hang: bool) -> Hooked {
    Hooked {
        id: id.into(),
        log: log.into(),
        hang,
    }
}

/// The program the tests signal. Modes: `default`, `hang` (the plain actor's hook never
/// returns), `user` (main takes the signals over).
#[test]
#[ignore = "helper: the other tests of this file run it in a subprocess"]
fn signal_probe() {
    let Ok(mode) = std::env::var(PROBE_ENV) else {
        return;
    };
    let log = PathBuf::from(std::env::var(LOG_ENV).unwrap());
    let signals = (mode == "user").then(procession::shutdown_signal);
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::worker::<Hooked>("c1", hooked("c1", &log, false)))
        .child(ChildSpec::worker::<Hooked>("c2", hooked("c2", &log, false)))
        .child(ChildSpec::worker::<Hooked>("c3", hooked("c3", &log, false)))
        .spawn()
        .unwrap();
    let last: ActorRef<Hooked> = procession::spawn(hooked("last", &log, mode == "hang")).unwrap();
    let mut pids: Vec<u32> = ["c1", "c2", "c3"]
        .iter()
        .map(|id| sup.child::<Hooked>(id).unwrap().ask(Alive).unwrap())
        .collect();
    pids.push(sup.pid());
    pids.push(last.ask(Alive).unwrap());
    let dir = procession::__private::runtime_dir().unwrap();
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    println!("\nREADY pids={} dir={}", list.join(","), dir.display());
    match signals {
        None => {
            // Wait for the signal; the program ends through it.
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            panic!("stdin closed before any signal ended the program");
        }
        Some(signals) => {
            let sig = signals.wait_timeout(LONG).expect("no signal arrived");
            let alive = last.ask_timeout(Alive, LONG).is_ok()
                && sup
                    .child::<Hooked>("c1")
                    .unwrap()
                    .ask_timeout(Alive, LONG)
                    .is_ok();
            println!("\nGOT {sig} alive={alive}");
            assert_eq!(procession::stop_all(LONG), 0);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running and signalling it.

struct Program {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
}

impl Program {
    fn start(mode: &str) -> Program {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!(
            "procession-signal-test-{}-{n}-{mode}.log",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&log);
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["signal_probe", "--exact", "--ignored", "--nocapture"])
            .env(PROBE_ENV, mode)
            .env(LOG_ENV, &log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Program { child, lines, log }
    }

    /// Starts the program in `mode` and waits for its `READY` line: the program, the pids
    /// of its actors and supervisor, and its runtime directory.
    fn ready(mode: &str) -> (Program, Vec<u32>, PathBuf) {
        let program = Program::start(mode);
        let ready = program.line("READY");
        let dir = PathBuf::from(Program::field(&ready, "dir"));
        (program, pids_of(&ready), dir)
    }

    /// The value of `key=` on the first line that has `tag`.
    fn line(&self, tag: &str) -> String {
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no {tag} line from the program ({e})"));
            if let Some(i) = line.find(tag) {
                return line[i..].to_string();
            }
        }
    }

    fn field(line: &str, key: &str) -> String {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in {line}"))
            .to_string()
    }

    /// Sends `sig` to the program's whole process group, as a terminal does.
    fn signal_group(&self, sig: Signal) {
        kill(Pid::from_raw(-(self.child.id() as i32)), sig).unwrap();
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + LONG;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the program did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // Only the process this test started, by its pid (and so its group).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s[s.rfind(')')? + 1..].trim_start().to_string();
            rest.chars().next()
        })
        .is_some_and(|state| state != 'Z' && state != 'X')
}

fn wait_gone(pids: &[u32], dir: &Path) {
    let deadline = Instant::now() + LONG;
    while pids.iter().any(|&p| running(p)) || dir.exists() {
        assert!(
            Instant::now() < deadline,
            "left behind: pids {:?}, dir exists: {}",
            pids.iter().filter(|&&p| running(p)).collect::<Vec<_>>(),
            dir.exists()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn pids_of(ready: &str) -> Vec<u32> {
    Program::field(ready, "pids")
        .split(',')
        .map(|p| p.parse().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The tests.

fn graceful(sig: Signal, status: i32) {
    let (mut program, pids, dir) = Program::ready("default");
    program.signal_group(sig);
    let exit = program.wait();
    assert_eq!(exit.code(), Some(status), "{exit}");
    assert_eq!(
        program.log_lines(),
        ["stopping last", "stopping c3", "stopping c2", "stopping c1"],
        "every stopping hook ran, in OTP order"
    );
    wait_gone(&pids, &dir);
}

#[test]
fn sigint_to_the_group_stops_every_tree_in_order_and_exits_130() {
    graceful(Signal::SIGINT, 130);
}

#[test]
fn sigterm_to_the_group_stops_every_tree_in_order_and_exits_143() {
    graceful(Signal::SIGTERM, 143);
}

#[test]
fn a_second_sigint_during_the_shutdown_ends_the_program_and_every_actor_at_once() {
    let (mut program, pids, dir) = Program::ready("hang");
    program.signal_group(Signal::SIGINT);
    let deadline = Instant::now() + LONG;
    while !program.log_lines().contains(&"hanging last".to_string()) {
        assert!(
            Instant::now() < deadline,
            "the shutdown never reached the hook"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    program.signal_group(Signal::SIGINT);
    let exit = program.wait();
    assert_eq!(exit.code(), Some(130), "{exit}");
    assert!(
        !program
            .log_lines()
            .iter()
            .any(|l| l.starts_with("stopping c")),
        "the supervisor's children were not stopped gracefully: the second signal cut it short"
    );
    wait_gone(&pids, &dir);
}

#[test]
fn after_shutdown_signal_the_signal_reaches_main_only_and_the_actors_live_on() {
    let (mut program, pids, dir) = Program::ready("user");
    program.signal_group(Signal::SIGTERM);
    let got = program.line("GOT");
    assert!(got.contains("SIGTERM"), "{got}");
    assert_eq!(Program::field(&got, "alive"), "true", "{got}");
    let exit = program.wait();
    assert!(exit.success(), "{exit}");
    assert_eq!(
        program.log_lines(),
        ["stopping last", "stopping c3", "stopping c2", "stopping c1"],
        "main's stop_all stops in OTP order too"
    );
    wait_gone(&pids, &dir);
}
