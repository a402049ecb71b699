//! The pool and manager examples work: `seed_pool` (Python's `Pool(5).map(f, [1, 2, 3])`,
//! `imap_unordered`, `apply_async`, and a worker crash that gives an error, not a hang)
//! and `seed_manager` (Python's Manager example: 10 processes update a shared dict and
//! list, which ends with 15 elements). Each is built with the profile of this test
//! binary, run as a subprocess with a private `PROCESSION_SHM_DIR` and a timeout, and its
//! output is checked; neither leaves a runtime directory behind.
//!
//! `cargo test --test examples_pool_manager` does not build the examples (only a plain
//! `cargo test` does), so the first test to need them runs `cargo build --example ...`
//! with the same profile; when they are fresh that is a no-op.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

const EXAMPLES: [&str; 2] = ["seed_pool", "seed_manager"];

/// Far longer than any passing run, even on a loaded 2-core machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The directory holding the example binaries of this test binary's profile, after
/// building them.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This binary is target/<profile>/deps/examples_pool_manager-<hash>.
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
            "procession-examples-pool-manager-test-{}-{}",
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

    /// The rest of the first line starting with `prefix`.
    fn after(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line starts with {prefix:?}:\n{}", self.stdout))
    }

    fn assert_line(&self, line: &str) {
        assert!(
            self.lines().contains(&line),
            "missing line {line:?}:\n--- stdout\n{}--- stderr\n{}",
            self.stdout,
            self.stderr
        );
    }
}

/// `"[1, 2, 3]"` -> `[1, 2, 3]`.
fn parse_list(s: &str) -> Vec<u64> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a list: {s:?}"));
    inner
        .split(", ")
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap_or_else(|_| panic!("not a number: {x:?}")))
        .collect()
}

/// Runs example `name` to its end (with no inherited procession settings), and checks
/// that it succeeded. Returns once its stdout closed: every process that inherited it,
/// the zygote included, has exited.
fn run_example(name: &str) -> Run {
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

#[test]
fn seed_pool_maps_f_over_1_2_3_like_python() {
    let run = run_example("seed_pool");
    assert_eq!(run.lines().first(), Some(&"[1, 4, 9]"), "{}", run.stdout);
}

#[test]
fn seed_pool_imap_unordered_and_apply_async_give_every_result() {
    let run = run_example("seed_pool");
    let unordered = parse_list(run.after("imap_unordered(f, 1..=10), sorted: "));
    assert_eq!(unordered, (1..=10).map(|x| x * x).collect::<Vec<u64>>());
    run.assert_line("apply_async(f, (10,)).get() -> 100");
}

#[test]
fn seed_pool_worker_crash_gives_an_error_and_the_pool_keeps_working() {
    let run = run_example("seed_pool");
    let error = run.after("worker crash -> error: ");
    assert!(
        error.contains("died") && error.contains("SIGABRT"),
        "the error says how the worker died: {error:?}"
    );
    run.assert_line("workers replaced: 1");
    run.assert_line("the pool still works: [16, 25, 36]");
    assert_eq!(
        run.lines().last(),
        Some(&"pool closed and joined"),
        "{}",
        run.stdout
    );
}

#[test]
fn seed_manager_ten_processes_fill_the_dict_and_the_list_reaches_15() {
    let run = run_example("seed_manager");
    run.assert_line("10 workers in 10 processes joined");
    run.assert_line("{0: 0, 1: 1, 2: 4, 3: 9, 4: 16, 5: 25, 6: 36, 7: 49, 8: 64, 9: 81}");
    let list_line = run
        .lines()
        .into_iter()
        .find(|l| l.starts_with('['))
        .unwrap_or_else(|| panic!("no list line:\n{}", run.stdout));
    let list = parse_list(list_line);
    assert_eq!(list.len(), 15, "{}", run.stdout);
    assert_eq!(
        list[..5],
        [0, 1, 2, 3, 4],
        "the initial elements come first"
    );
    let appended: HashSet<u64> = list[5..].iter().copied().collect();
    assert_eq!(
        appended,
        (10..20).collect::<HashSet<u64>>(),
        "each worker appended once"
    );
    run.assert_line("list length: 15");
    assert_eq!(
        run.lines().last(),
        Some(&"manager shut down"),
        "{}",
        run.stdout
    );
}

#[test]
fn seed_manager_server_runs_in_another_process() {
    let run = run_example("seed_manager");
    let pid_after = |prefix: &str| -> u32 { run.after(prefix).trim().parse().expect("a pid") };
    let main = pid_after("main: pid ");
    let server = pid_after("manager server: pid ");
    assert_ne!(server, 0);
    assert_ne!(server, main, "{}", run.stdout);
}

#[test]
fn pool_and_manager_examples_leave_no_runtime_directory_behind() {
    for name in EXAMPLES {
        let run = run_example(name);
        assert_eq!(
            run.shm.leftovers(),
            Vec::<String>::new(),
            "{name} left files in its PROCESSION_SHM_DIR; stderr:\n{}",
            run.stderr
        );
    }
}
