//! What a procession child process does before (instead of) `main`.
//!
//! The load-time hook in [`os::boot`](crate::os::boot) calls [`on_load`] in every process
//! of a binary that links procession. It returns at once unless `PROCESSION_BOOT` is set,
//! which only the runtime does when it re-executes the binary:
//! - `PROCESSION_BOOT=zygote`: become the forkserver (never returns);
//! - `PROCESSION_BOOT=actor`: read the boot record from `PROCESSION_BOOT_FD` and run
//!   that actor (the `spawn` start method; never returns).
//!
//! Because this runs before `main`, a child never runs the user's `main` or a test harness.

use std::io::Read;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mailbox::{ExitKind, Mailbox};
use crate::os::proc::{exit_now, ignore_sigpipe, take_inherited_fd};

/// Everything a child needs to become an actor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildBoot {
    /// The actor type's stable name.
    pub name: String,
    /// Its spawn arguments, CBOR-encoded.
    #[serde(with = "serde_bytes")]
    pub args: Vec<u8>,
    /// The mailbox it consumes.
    pub mailbox_id: u64,
    /// The runtime directory.
    pub runtime_dir: PathBuf,
    /// The pid of the process that asked for it (its logical parent).
    #[serde(default)]
    pub parent_pid: u32,
    /// The mailbox that process consumes, if it is an actor (0: it is not).
    #[serde(default)]
    pub parent_mailbox: u64,
    /// What the kernel enforces on it.
    #[serde(default)]
    pub limits: super::Limits,
}

/// Exit status of a child whose actor type is unknown.
pub const EXIT_UNKNOWN_ACTOR: i32 = 3;
/// Exit status of a child that could not set itself up.
pub const EXIT_BOOT_FAILED: i32 = 4;

/// Called by the load-time hook in every process; returns at once in ordinary runs.
pub fn on_load() {
    let Some(role) = std::env::var_os("PROCESSION_BOOT") else {
        return;
    };
    let fd = std::env::var("PROCESSION_BOOT_FD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    let dir = std::env::var_os("PROCESSION_RUNTIME_DIR").map(PathBuf::from);
    // Our own children must not inherit the role. The process is single-threaded here.
    for var in [
        "PROCESSION_BOOT",
        "PROCESSION_BOOT_FD",
        "PROCESSION_RUNTIME_DIR",
    ] {
        std::env::remove_var(var);
    }
    ignore_sigpipe();
    let role = role.to_string_lossy();
    match (role.as_ref(), dir) {
        ("zygote", Some(dir)) => {
            install_zygote_logging();
            super::forkserver::zygote_main(fd, dir)
        }
        ("actor", _) => {
            let boot = take_inherited_fd(fd).and_then(|fd| {
                let mut bytes = Vec::new();
                std::fs::File::from(fd).read_to_end(&mut bytes)?;
                crate::wire::decode_body::<ChildBoot>(&bytes, "ChildBoot")
                    .map_err(std::io::Error::other)
            });
            match boot {
                Ok(boot) => run_child(boot),
                Err(e) => {
                    eprintln!("procession: cannot read this actor's boot record: {e}");
                    exit_now(EXIT_BOOT_FAILED)
                }
            }
        }
        (other, _) => {
            eprintln!("procession: PROCESSION_BOOT={other:?} is not a role this binary knows");
            exit_now(EXIT_BOOT_FAILED)
        }
    }
}

/// Becomes the actor described by `boot`. Never returns.
pub fn run_child(boot: ChildBoot) -> ! {
    super::runtime::init_child(&boot.runtime_dir);
    match super::registry::find(&boot.name) {
        Some(entry) => (entry.run)(boot),
        None => {
            leave_zygote_logging();
            install_child_logging();
            tracing::error!(actor = %boot.name, pid = std::process::id(), "unknown actor type");
            if let Ok(mb) = Mailbox::open(&boot.runtime_dir, boot.mailbox_id) {
                mb.record_exit(
                    ExitKind::UnknownActor,
                    0,
                    &format!(
                        "no actor type named {:?} is registered in this binary",
                        boot.name
                    ),
                );
            }
            exit_now(EXIT_UNKNOWN_ACTOR)
        }
    }
}

/// Child processes never run `main`, so they cannot inherit the user's tracing
/// subscriber unless forked from it. With `PROCESSION_LOG` set (a tracing filter such as
/// `warn` or `procession=debug`), an actor process that has no subscriber once its
/// `#[child_init]` functions ran logs to stderr (colours only if stderr is a terminal).
pub(crate) fn install_child_logging() {
    if let Some(subscriber) = log_subscriber() {
        let _ = tracing::subscriber::set_global_default(subscriber);
    }
}

fn log_subscriber() -> Option<impl tracing::Subscriber + Send + Sync> {
    use std::io::IsTerminal;
    let filter = std::env::var("PROCESSION_LOG").ok()?;
    Some(
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .finish(),
    )
}

thread_local! {
    /// The zygote's subscriber, set for its (only) thread rather than globally: the actor
    /// processes it forks must be free to install their own global one.
    static ZYGOTE_LOG: std::cell::RefCell<Option<tracing::subscriber::DefaultGuard>> =
        const { std::cell::RefCell::new(None) };
}

fn install_zygote_logging() {
    if let Some(subscriber) = log_subscriber() {
        let guard = tracing::subscriber::set_default(subscriber);
        ZYGOTE_LOG.with(|g| *g.borrow_mut() = Some(guard));
    }
}

/// In an actor forked by the zygote: drops the zygote's subscriber it inherited.
pub(crate) fn leave_zygote_logging() {
    let _ = ZYGOTE_LOG.try_with(|g| g.borrow_mut().take());
}
