//! Runs the repository's examples as subprocesses, for the example tests: builds them
//! once with this test binary's profile (`cargo test --test X` does not build examples),
//! runs one with a private `PROCESSION_SHM_DIR` and a timeout, and returns its output.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

/// Every example of the repository (built together, once).
const ALL_EXAMPLES: [&str; 14] = [
    "operate",
    "ping_pong",
    "quickstart",
    "seed_daemon",
    "seed_globals_not_shared",
    "seed_lock",
    "seed_manager",
    "seed_pipe",
    "seed_pool",
    "seed_process_join",
    "seed_queue",
    "seed_semaphore",
    "seed_value_array",
    "supervision_tree",
];

/// The examples that need a cargo feature, with it.
const FEATURE_EXAMPLES: [(&str, &str); 1] = [("async_jobs", "tokio")];

/// Far longer than any passing run, even on a loaded 2-core machine.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The directory holding the example binaries of this test binary's profile, after
/// building them.
pub fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This test binary is target/<profile>/deps/<name>-<hash>.
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
        for name in ALL_EXAMPLES {
            cmd.args(["--example", name]);
        }
        // The features this test binary was built with, so that cargo reuses its build
        // of the library; and the examples that need them.
        let features: Vec<&str> = [
            ("metrics", cfg!(feature = "metrics")),
            ("tokio", cfg!(feature = "tokio")),
        ]
        .into_iter()
        .filter_map(|(f, on)| on.then_some(f))
        .collect();
        if !features.is_empty() {
            cmd.args(["--features", &features.join(",")]);
        }
        for name in FEATURE_EXAMPLES
            .iter()
            .filter(|(_, f)| features.contains(f))
        {
            cmd.args(["--example", name.0]);
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
        for name in ALL_EXAMPLES {
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
pub struct ShmBase(pub PathBuf);

impl ShmBase {
    pub fn new() -> ShmBase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "procession-examples-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        ShmBase(path)
    }

    pub fn leftovers(&self) -> Vec<String> {
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
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub shm: ShmBase,
}

impl Run {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The rest of the first line starting with `prefix`.
    pub fn after(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line starts with {prefix:?}:\n{}", self.stdout))
    }

    /// Asserts that `line` is one of the output's lines.
    pub fn assert_line(&self, line: &str) {
        assert!(
            self.lines().contains(&line),
            "missing line {line:?}:\n--- stdout\n{}--- stderr\n{}",
            self.stdout,
            self.stderr
        );
    }

    /// The number after `prefix` (and an optional `pid`) on the first line starting with it.
    pub fn number_after(&self, prefix: &str) -> u32 {
        let rest = self
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line starts with {prefix:?}:\n{}", self.stdout))
            .trim_start();
        leading_number(rest.strip_prefix("pid").unwrap_or(rest))
    }
}

pub fn leading_number(s: &str) -> u32 {
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
pub fn run_example(name: &str, env: &[(&str, &str)]) -> Run {
    let (run, status) = run_example_status(name, env);
    assert!(
        status.success(),
        "example {name} failed ({status}):\n--- stdout\n{}--- stderr\n{}",
        run.stdout,
        run.stderr
    );
    run
}

/// Runs an example to its end, whatever its exit status, and returns that status.
pub fn run_example_status(name: &str, env: &[(&str, &str)]) -> (Run, std::process::ExitStatus) {
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
    (run, out.status)
}
