//! `procession-top` against a real program: a supervision tree that this test binary
//! runs as a child process (its ignored `tree_program` test, re-executed). Top is run as
//! its own binary, with `--json`, and in a pseudo-terminal whose screen is rebuilt by a
//! terminal emulator (vt100) to read what a user would see.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use procession::prelude::*;
use procession::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorActor};
use serde_json::Value;

/// Generous bound for anything that must happen in a passing run (a loaded 2-core box).
const LONG: Duration = Duration::from_secs(30);
const PROBE_ENV: &str = "PROCESSION_TOP_TEST_TREE";
const TOP: &str = env!("CARGO_BIN_EXE_procession-top");

// ---------------------------------------------------------------------------------------
// The program that is watched.

/// Ask: the pid of the process that handles it.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Pid;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Pid))]
struct Worker;

impl Handler<Pid> for Worker {
    fn handle(&mut self, _: Pid, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

/// The watched program: `service` (OneForOne) with `web`, `cache` and a supervisor
/// `jobs` over `job-1`. Prints `READY root=… web=…`, then runs until its stdin closes.
#[test]
#[ignore = "run by the other tests as their watched program"]
fn tree_program() {
    if std::env::var_os(PROBE_ENV).is_none() {
        return;
    }
    let jobs =
        Supervisor::new(Strategy::OneForOne).child(ChildSpec::worker::<Worker>("job-1", Worker));
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::worker::<Worker>("web", Worker))
        .child(ChildSpec::worker::<Worker>("cache", Worker))
        .child(ChildSpec::supervisor("jobs", jobs))
        .spawn()
        .unwrap();
    let web = sup.child::<Worker>("web").unwrap();
    let web_pid = web.ask_timeout(Pid, LONG).unwrap();
    let job = sup
        .child::<SupervisorActor>("jobs")
        .unwrap()
        .child::<Worker>("job-1")
        .unwrap();
    job.ask_timeout(Pid, LONG).unwrap();
    println!("READY root={} web={web_pid}", std::process::id());
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    sup.stop().unwrap();
    sup.join().unwrap();
}

/// A running [`tree_program`]; it ends (stdin closed, or killed past `LONG`) on drop.
struct Tree {
    child: Child,
    stdin: Option<ChildStdin>,
    root: u32,
    web: u32,
}

impl Tree {
    fn start() -> Tree {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["tree_program", "--exact", "--ignored", "--nocapture"])
            .env(PROBE_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let lines = spawn_line_reader(child.stdout.take().unwrap());
        let ready = wait_line(
            &lines,
            |l| l.contains("READY"),
            "READY from the tree program",
        );
        let field = |key: &str| -> u32 {
            let at = ready.find(&format!("{key}=")).unwrap() + key.len() + 1;
            ready[at..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let (root, web) = (field("root"), field("web"));
        assert_eq!(root, child.id(), "the root is the program we started");
        Tree {
            child,
            stdin,
            root,
            web,
        }
    }

    /// Ends the program (it stops its tree and exits), waiting at most `LONG`.
    fn end(&mut self) {
        drop(self.stdin.take());
        wait_or_kill(&mut self.child);
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.end();
    }
}

fn spawn_line_reader(out: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Reads to the end even when no one listens any more, so the writer never
        // meets a closed pipe.
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

fn wait_line(lines: &mpsc::Receiver<String>, want: impl Fn(&str) -> bool, what: &str) -> String {
    let deadline = Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no {what} within {LONG:?} ({e})"),
        }
    }
}

/// Waits at most `LONG` for `child` to exit, then kills it (it is ours) and reaps it.
fn wait_or_kill(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + LONG;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn actor<'a>(runtime: &'a Value, display: &str) -> &'a Value {
    runtime["actors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["display"] == display)
        .unwrap_or_else(|| panic!("{display} is listed: {runtime}"))
}

// ---------------------------------------------------------------------------------------
// --json

#[test]
fn once_json_lists_the_running_tree_with_child_ids_depths_and_pids() {
    let tree = Tree::start();
    let out = Command::new(TOP)
        .args(["--once", "--json", "--interval", "0.2", "--pid"])
        .arg(tree.root.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let runtimes = v["runtimes"].as_array().unwrap();
    assert_eq!(runtimes.len(), 1, "only the runtime asked for: {v}");
    let rt = &runtimes[0];
    assert_eq!(rt["root_pid"], tree.root);
    assert_eq!(rt["ended"], false);

    let service = actor(rt, "Supervisor");
    assert_eq!(
        (service["depth"].as_u64(), service["supervisor"].as_bool()),
        (Some(0), Some(true))
    );
    assert_eq!(service["children"], 3);
    let web = actor(rt, "web");
    assert_eq!(web["pid"], tree.web);
    assert_eq!(web["name"], "top::Worker");
    assert_eq!(
        (web["depth"].as_u64(), web["state"].as_str()),
        (Some(1), Some("running"))
    );
    assert_eq!(web["parent"], service["id"]);
    assert_eq!(web["asks_answered"], 1);
    assert!(web["rss_bytes"].as_u64().unwrap() > 0, "{web}");
    assert!(
        web["msg_per_s"].is_number(),
        "two samples give a rate: {web}"
    );
    let jobs = actor(rt, "jobs");
    let job = actor(rt, "job-1");
    assert_eq!(job["depth"], 2);
    assert_eq!(job["parent"], jobs["id"]);
    assert_eq!(actor(rt, "cache")["restarts"], 0);
}

#[test]
fn streaming_json_for_one_pid_reports_the_runtime_ending_and_exits() {
    let mut tree = Tree::start();
    let mut top = Command::new(TOP)
        .args(["--json", "--interval", "0.1", "--pid"])
        .arg(tree.root.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = spawn_line_reader(top.stdout.take().unwrap());
    wait_line(&lines, |l| l.contains("\"web\""), "a line with the tree");
    tree.end();
    let last = wait_line(
        &lines,
        |l| l.contains("\"ended\":true"),
        "a line saying it ended",
    );
    let v: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["runtimes"][0]["root_pid"], tree.root);
    assert!(
        v["runtimes"][0]["actors"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "the last view of the tree is kept: {v}"
    );
    let status = wait_or_kill(&mut top).expect("top exits once its runtime has ended");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_pid_that_is_no_runtime_root_is_an_error_naming_it() {
    // Pid 1 (init) never creates a procession runtime of this user.
    let out = Command::new(TOP)
        .args(["--once", "--json", "--pid", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("root pid 1"), "{err}");
    assert!(out.stdout.is_empty());
}

// ---------------------------------------------------------------------------------------
// The terminal view, in a pseudo-terminal.

const ROWS: u16 = 30;
const COLS: u16 = 150;

/// `procession-top` in a pseudo-terminal; its screen as a terminal would show it.
struct Screen {
    child: Child,
    master: std::fs::File,
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn start(args: &[&str]) -> Screen {
        let size = nix::pty::Winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        let slave = std::fs::File::from(pty.slave);
        let child = Command::new(TOP)
            .args(args)
            .env("TERM", "xterm-256color")
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave)
            .spawn()
            .unwrap();
        let master = std::fs::File::from(pty.master);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let (mut reader, feed) = (master.try_clone().unwrap(), parser.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every holder of the slave side has closed it.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                feed.lock().unwrap().process(&buf[..n]);
            }
        });
        Screen {
            child,
            master,
            parser,
        }
    }

    fn lines(&self) -> Vec<String> {
        let parser = self.parser.lock().unwrap();
        parser.screen().rows(0, COLS).collect()
    }

    /// Waits at most `LONG` for the screen to satisfy `want`; returns its lines then.
    fn wait_for(&self, what: &str, want: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + LONG;
        loop {
            let lines = self.lines();
            if want(&lines) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what}:\n{}",
                lines.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn press(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        wait_or_kill(&mut self.child);
    }
}

/// The text of column `title` in the row whose NAME is `name` (columns as the header
/// places them).
fn cell(lines: &[String], name: &str, title: &str) -> Option<String> {
    let header = lines.iter().find(|l| l.starts_with("NAME"))?;
    let chars: Vec<char> = header.chars().collect();
    let start = header.find(title).map(|b| header[..b].chars().count())?;
    let end = (start + title.len()..chars.len())
        .find(|&i| chars[i] != ' ' && chars[i - 1] == ' ')
        .unwrap_or(usize::MAX);
    let row = lines
        .iter()
        .find(|l| l.split_whitespace().any(|w| w == name) && !l.starts_with("NAME"))?;
    let row: Vec<char> = row.chars().collect();
    let text: String = row
        .get(start..end.min(row.len()))
        .unwrap_or_default()
        .iter()
        .collect();
    Some(text.trim().to_string())
}

#[test]
fn the_terminal_view_shows_the_tree_and_a_restart_and_quits_on_q() {
    let tree = Tree::start();
    let root = tree.root.to_string();
    let mut screen = Screen::start(&["--interval", "0.2", "--pid", &root]);
    let lines = screen.wait_for("the tree", |l| {
        cell(l, "job-1", "STATE").as_deref() == Some("running") && cell(l, "web", "PID").is_some()
    });
    let text = lines.join("\n");
    for name in [
        "Supervisor",
        "web",
        "cache",
        "jobs",
        "job-1",
        "Worker",
        &root,
    ] {
        assert!(text.contains(name), "{name} is shown:\n{text}");
    }
    assert_eq!(cell(&lines, "web", "PID"), Some(tree.web.to_string()));
    assert_eq!(cell(&lines, "web", "RESTARTS").as_deref(), Some("0"));

    // The test's own program printed this pid for its actor `web`.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tree.web as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let lines = screen.wait_for("web restarted", |l| {
        cell(l, "web", "RESTARTS").as_deref() == Some("1")
            && cell(l, "web", "STATE").as_deref() == Some("running")
    });
    assert_eq!(cell(&lines, "web", "LAST EXIT").as_deref(), Some("SIGKILL"));
    assert_ne!(cell(&lines, "web", "PID"), Some(tree.web.to_string()));

    screen.press(b"q");
    let status = wait_or_kill(&mut screen.child).expect("top quits on q");
    assert!(status.success(), "{status:?}");
}

#[test]
fn enter_folds_a_subtree_and_expands_it_again() {
    let tree = Tree::start();
    let root = tree.root.to_string();
    let mut screen = Screen::start(&["--interval", "0.2", "--pid", &root]);
    screen.wait_for("job-1", |l| cell(l, "job-1", "STATE").is_some());
    // The cursor starts on the top supervisor: fold everything under it.
    screen.press(b"\r");
    let lines = screen.wait_for("the tree folded", |l| {
        cell(l, "Supervisor", "STATE").is_some() && cell(l, "web", "STATE").is_none()
    });
    assert!(
        lines.iter().any(|l| l.contains("▸ Supervisor")),
        "{lines:?}"
    );
    screen.press(b" ");
    screen.wait_for("the tree expanded", |l| cell(l, "job-1", "STATE").is_some());
    screen.press(b"\x1b");
    let status = wait_or_kill(&mut screen.child).expect("top quits on Esc");
    assert!(status.success(), "{status:?}");
}
