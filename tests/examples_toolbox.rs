//! The toolbox examples work: each one ported from Python's `multiprocessing` docs
//! (`seed_lock`, `seed_pipe`, `seed_queue`, `seed_globals_not_shared`, `seed_value_array`,
//! `seed_daemon`, `seed_semaphore`) is built with the profile of this test binary, run as
//! a subprocess with a private `PROCESSION_SHM_DIR`, and its output is checked; no
//! example leaves a runtime directory behind.
//!
//! `cargo test --test examples_toolbox` does not build the examples (only a plain
//! `cargo test` does), so the first test to need them runs `cargo build --example ...`
//! with the same profile; when they are fresh that is a no-op. (The helpers are those of
//! `tests/examples.rs`.)

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

const EXAMPLES: [&str; 7] = [
    "seed_lock",
    "seed_pipe",
    "seed_queue",
    "seed_globals_not_shared",
    "seed_value_array",
    "seed_daemon",
    "seed_semaphore",
];

/// Far longer than any passing run, even on a loaded 2-core machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The directory holding the example binaries of this test binary's profile, after
/// building them.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This binary is target/<profile>/deps/examples_toolbox-<hash>.
        let exe = std::env::current_exe().expect("path of the test binary");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in target/<profile>/deps");
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a profile directory name");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
        for name in EXAMPLES {
            cmd.args(["--example", name]);
        }
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .expect("cannot run cargo to build the examples");
        assert!(
            out.status.success(),
            "building the examples failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = profile_dir.join("examples");
        for name in EXAMPLES {
            assert!(
                dir.join(name).is_file(),
                "cargo built the examples, but {} is missing (a --target or unusual target \
                 directory layout?)",
                dir.join(name).display()
            );
        }
        dir
    })
}

/// A private base directory for one run's runtime directory; removed on drop.
struct ShmBase(PathBuf);

impl ShmBase {
    fn new() -> ShmBase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "procession-examples-toolbox-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        ShmBase(path)
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for ShmBase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One finished run of an example.
struct Run {
    stdout: String,
    stderr: String,
    shm: ShmBase,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The number after `prefix` (and an optional `pid`) on the first line starting with it.
    fn number_after(&self, prefix: &str) -> u32 {
        let rest = self
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line starts with {prefix:?}:\n{}", self.stdout))
            .trim_start();
        leading_number(rest.strip_prefix("pid").unwrap_or(rest))
    }
}

fn leading_number(s: &str) -> u32 {
    let digits: String = s
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number at the start of {s:?}"))
}

/// Runs example `name` to its end with `env` set (and no inherited procession settings),
/// and checks that it succeeded. Returns once its stdout closed: every process that
/// inherited it, the zygote included, has exited.
fn run_example(name: &str, env: &[(&str, &str)]) -> Run {
    let bin = examples_dir().join(name);
    let shm = ShmBase::new();
    let mut cmd = Command::new(&bin);
    for var in [
        "PROCESSION_START_METHOD",
        "PROCESSION_LOG",
        "PROCESSION_SPIN_US",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PROCESSION_SHM_DIR", &shm.0)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out: Output = match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("example {name} did not finish within {RUN_TIMEOUT:?}; killed it");
        }
    };
    let run = Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        shm,
    };
    assert!(
        out.status.success(),
        "example {name} failed ({}):\n--- stdout\n{}--- stderr\n{}",
        out.status,
        run.stdout,
        run.stderr
    );
    run
}

/// The index of the first line equal to `line`.
fn position(run: &Run, line: &str) -> usize {
    run.lines()
        .iter()
        .position(|l| *l == line)
        .unwrap_or_else(|| panic!("missing line {line:?}:\n{}", run.stdout))
}

#[test]
fn seed_lock_prints_ten_greetings_whose_lines_the_lock_keeps_together() {
    let run = run_example("seed_lock", &[]);
    let lines = run.lines();
    let mut nums = HashSet::new();
    let mut pids = HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("hello world ") {
            let num = leading_number(rest);
            let pid = leading_number(rest.split_once("(pid ").expect("pid").1);
            assert!(
                nums.insert(num),
                "worker {num} greeted twice:\n{}",
                run.stdout
            );
            pids.insert(pid);
            assert_eq!(
                lines.get(i + 1).copied(),
                Some(format!("  goodbye from {num}").as_str()),
                "another worker printed while {num} held the lock:\n{}",
                run.stdout
            );
        }
    }
    assert_eq!(nums, (0..10).collect::<HashSet<u32>>(), "{}", run.stdout);
    assert_eq!(pids.len(), 10, "ten processes:\n{}", run.stdout);
    assert_eq!(
        lines.last(),
        Some(&"all 10 printed under the lock"),
        "{}",
        run.stdout
    );
}

#[test]
fn seed_pipe_carries_values_both_ways_and_the_child_sees_end_of_file() {
    let run = run_example("seed_pipe", &[]);
    let parent = run.number_after("parent (pid");
    let child = leading_number(
        run.stdout
            .split_once("child (pid ")
            .expect("the header names the child")
            .1,
    );
    assert_ne!(parent, child, "{}", run.stdout);
    let greeting = position(&run, r#"parent received (42, None, "hello")"#);
    let question = position(
        &run,
        &format!(r#"child (pid {child}) received (1, None, "how are you")"#),
    );
    let answer = position(
        &run,
        &format!(r#"parent received (2, Some({child}), "how are you, answered")"#),
    );
    let last = position(
        &run,
        &format!(r#"parent received (40, Some({child}), "what is twice 20, answered")"#),
    );
    let eof = position(
        &run,
        &format!("child (pid {child}) sees end of file: the parent closed its end"),
    );
    assert!(
        greeting < question && question < answer && answer < last && last < eof,
        "{}",
        run.stdout
    );
    position(&run, "child answered 2 questions");
    position(&run, "child exited: stopped on request");
}

#[test]
fn seed_queue_collects_one_item_from_each_of_ten_processes() {
    let run = run_example("seed_queue", &[]);
    let items: Vec<(u32, u32)> = run
        .lines()
        .iter()
        .filter_map(|l| l.strip_prefix(r#"got "hello" from worker "#))
        .map(|rest| {
            let (num, pid) = rest.split_once(" (pid ").expect("item line");
            (leading_number(num), leading_number(pid))
        })
        .collect();
    assert_eq!(items.len(), 10, "{}", run.stdout);
    let nums: HashSet<u32> = items.iter().map(|i| i.0).collect();
    let pids: HashSet<u32> = items.iter().map(|i| i.1).collect();
    assert_eq!(nums, (0..10).collect::<HashSet<u32>>(), "{}", run.stdout);
    assert_eq!(pids.len(), 10, "ten processes:\n{}", run.stdout);
    assert_eq!(
        run.lines().last(),
        Some(&"collected 10 items; queue empty: true"),
        "{}",
        run.stdout
    );
}

/// The lines `child <n> (pid <p>) changed its copy: <rest>`, as `(n, rest)`.
fn child_copies(run: &Run) -> Vec<(u32, String)> {
    run.lines()
        .iter()
        .filter_map(|l| l.strip_prefix("child "))
        .map(|rest| {
            let (_, values) = rest.split_once("changed its copy: ").expect("child line");
            (leading_number(rest), values.to_string())
        })
        .collect()
}

#[test]
fn seed_globals_not_shared_leaves_the_parents_copy_unchanged() {
    let run = run_example("seed_globals_not_shared", &[]);
    position(&run, "parent before: COUNTER = 1, ITEMS = [0]");
    position(&run, "parent after: COUNTER = 1, ITEMS = [0]");
    assert_eq!(
        child_copies(&run),
        [
            (1, "COUNTER = 100, ITEMS = [1]".to_string()),
            (2, "COUNTER = 100, ITEMS = [2]".to_string())
        ],
        "forkserver children start from the initial globals:\n{}",
        run.stdout
    );
}

#[test]
fn seed_globals_not_shared_under_fork_children_change_a_copy_of_the_parents_values() {
    let run = run_example(
        "seed_globals_not_shared",
        &[("PROCESSION_START_METHOD", "fork")],
    );
    assert_eq!(
        child_copies(&run),
        [
            (1, "COUNTER = 101, ITEMS = [0, 1]".to_string()),
            (2, "COUNTER = 101, ITEMS = [0, 2]".to_string())
        ],
        "{}",
        run.stdout
    );
    position(&run, "parent after: COUNTER = 1, ITEMS = [0]");
}

#[test]
fn seed_value_array_parent_sees_the_childs_writes() {
    let run = run_example("seed_value_array", &[]);
    let before = position(
        &run,
        "before: num = 0, arr = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
    );
    let num = position(&run, "num = 10.78");
    let arr = position(&run, "arr = [0, 1, 9999, 3, 4, 5, 6, 7, 8, 9]");
    assert!(before < num && num < arr, "{}", run.stdout);
}

#[test]
fn seed_daemon_waits_for_the_worker_then_its_daemon_dies_with_it() {
    let run = run_example("seed_daemon", &[]);
    let daemon = run.number_after("daemon pid");
    let waiting = position(
        &run,
        "launcher still running: it waits for its non-daemon worker",
    );
    let alive = position(&run, &format!("daemon pid {daemon} running: true"));
    let worker = position(&run, "worker exited: stopped itself");
    let launcher = position(&run, "launcher exited: stopped on request");
    let killed = position(&run, "daemon exited: killed by signal 9 (SIGKILL)");
    let gone = position(&run, &format!("daemon pid {daemon} is gone from /proc"));
    assert!(
        waiting < alive
            && alive < worker
            && worker < launcher
            && launcher < killed
            && killed < gone,
        "{}",
        run.stdout
    );
}

#[test]
fn seed_semaphore_never_lets_more_than_two_workers_in_at_once() {
    let run = run_example("seed_semaphore", &[]);
    let active_after = |marker: &str| -> Vec<u32> {
        run.lines()
            .iter()
            .filter_map(|l| l.split_once(marker))
            .map(|(_, n)| leading_number(n))
            .collect()
    };
    let enters = active_after(" enter (active: ");
    let leaves = active_after(" leave (active: ");
    assert_eq!(enters.len(), 6, "{}", run.stdout);
    assert_eq!(leaves.len(), 6, "{}", run.stdout);
    assert!(
        enters.iter().all(|&n| (1..=2).contains(&n)),
        "{}",
        run.stdout
    );
    let max = run.number_after("max concurrent workers observed:");
    assert!((1..=2).contains(&max), "{}", run.stdout);
    position(&run, "permits free at the end: 2");
}

#[test]
fn every_toolbox_example_leaves_no_runtime_directory_behind() {
    for name in EXAMPLES {
        let run = run_example(name, &[]);
        assert_eq!(
            run.shm.leftovers(),
            Vec::<String>::new(),
            "{name} left files in its PROCESSION_SHM_DIR; stderr:\n{}",
            run.stderr
        );
    }
}
