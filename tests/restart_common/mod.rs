//! Helpers for `tests/restarts.rs` and `tests/links_and_names.rs`: waiting for a condition
//! with a deadline, a private temporary directory, looking at processes in `/proc` and
//! at runtime directories, and a [`Probe`]: this test binary re-run as a root process
//! of its own, on an `#[ignore]`d helper test.
//!
//! Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Long enough never to be hit in a passing run on a loaded 2-core machine.
pub const LONG: Duration = Duration::from_secs(30);

/// Polls `cond` until it holds (`true`) or `within` passes (`false`).
pub fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "procession-{what}-{}-{}-{nanos:08x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).unwrap();
        TempDir { path }
    }

    /// A path inside the directory, as a string (to send to an actor).
    pub fn file(&self, name: &str) -> String {
        self.path.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------------------
// Processes.

/// A process, identified by pid and start time (so a recycled pid is not mistaken for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub start: u64,
}

/// State letter, parent pid and start time of `pid`, from `/proc/<pid>/stat`.
pub fn stat(pid: u32) -> Option<(char, u32, u64)> {
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
    pub fn of(pid: u32) -> Proc {
        let (_, _, start) = stat(pid).unwrap_or_else(|| panic!("no process {pid}"));
        Proc { pid, start }
    }

    /// Still running: it exists, is the same process, and is not a zombie.
    pub fn running(&self) -> bool {
        matches!(stat(self.pid), Some((state, _, start))
            if start == self.start && state != 'Z' && state != 'X')
    }

    pub fn parse(s: &str) -> Proc {
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

/// Parses a comma-separated list of [`Proc`]s.
pub fn procs(field: &str) -> Vec<Proc> {
    field
        .split(',')
        .filter(|s| !s.is_empty())
        .map(Proc::parse)
        .collect()
}

/// Formats pids as a comma-separated list of [`Proc`]s.
pub fn proc_list(pids: impl IntoIterator<Item = u32>) -> String {
    pids.into_iter()
        .map(|p| Proc::of(p).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The direct children of process `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if stat(pid).is_some_and(|(_, ppid, _)| ppid == parent) {
            out.push(pid);
        }
    }
    out
}

/// The runtime directories (`procession-<pid>-<nonce>`) of the root process `pid`.
pub fn runtime_dirs_of(pid: u32) -> Vec<PathBuf> {
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

/// The entries of `dir`, sorted (empty if it is gone).
pub fn entries(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------
// A root process of its own.

/// This test binary re-run on one `#[ignore]`d helper test, with an environment variable
/// that selects what it does. The helper prints one `PROBE key=value ...` line.
pub struct Probe {
    pub child: Child,
    pub started: Instant,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Probe {
    /// Runs helper test `test` with `env` set (and the extra variables `vars`).
    pub fn start(test: &str, env: (&str, &str), vars: &[(&str, &str)]) -> Probe {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([test, "--exact", "--ignored", "--nocapture"])
            .arg("--test-threads=1")
            .env(env.0, env.1)
            .env_remove("PROCESSION_START_METHOD")
            .env_remove("PROCESSION_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let started = Instant::now();
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
            started,
            lines,
            stderr: Some(stderr),
        }
    }

    /// The fields of the probe's `PROBE` line (libtest may print on the same line first).
    pub fn report(&mut self) -> BTreeMap<String, String> {
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let stderr = self.stderr.take().unwrap().join().unwrap();
                    panic!("no PROBE line from the probe ({e}); stderr:\n{stderr}");
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

    /// Waits (with a deadline) for the probe to exit by itself and checks it succeeded.
    /// Returns how long it ran (from its start to the moment its exit was seen).
    pub fn finish(&mut self) -> Duration {
        let mut status = None;
        let exited = wait_for(LONG, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let ran = self.started.elapsed();
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(exited, "the probe did not exit; stderr:\n{stderr}");
        let status = status.unwrap();
        assert!(
            status.success(),
            "probe failed ({status}); stderr:\n{stderr}"
        );
        ran
    }

    /// SIGKILLs the probe (only the process this test started, by its pid) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
