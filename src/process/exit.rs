//! How an actor process ended.

use serde::{Deserialize, Serialize};

use crate::mailbox::{ExitKind, RawExit};

/// How an actor's process ended, as seen by [`ActorRef::join`](crate::ActorRef::join).
///
/// ```
/// use procession::Exit;
/// assert!(Exit::Stopped.is_clean());
/// assert!(!Exit::Signaled(9).is_clean());
/// assert_eq!(Exit::Signaled(9).to_string(), "killed by signal 9 (SIGKILL)");
/// // Python's `Process.exitcode`: 0 clean, n for exit(n), -s for signal s, 1 for a panic.
/// assert_eq!(Exit::Signaled(9).code(), Some(-9));
/// assert_eq!(Exit::Exited(3).code(), Some(3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exit {
    /// The actor stopped itself with [`Context::stop`](crate::Context::stop).
    Normal,
    /// The actor stopped on request ([`ActorRef::stop`](crate::ActorRef::stop)).
    Stopped,
    /// A handler (or `create`, or a hook) panicked; `message` is the panic text.
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The process was killed by this signal (9 for SIGKILL, including the OOM killer's;
    /// 11 for a segfault; 6 for an abort).
    Signaled(i32),
    /// The actor could not run: `create` failed, its arguments did not decode, the
    /// process exited with an unexpected status, or a linked actor's abnormal exit took
    /// it down (the text says which).
    Failed(String),
    /// A supervisor shut itself down, with this reason (for instance because the restart
    /// intensity was reached). Not an abnormal exit for restart purposes, as in OTP.
    Shutdown(String),
    /// The runtime was lost: its zygote died, and every actor in it with it. No exit
    /// record of the actor itself could be trusted after that.
    RuntimeLost,
    /// The process ended with this **nonzero** status without the actor recording an
    /// exit: it called `std::process::exit(n)` (or `libc::exit`) itself. A zero status is
    /// [`Exit::Normal`], as Python counts `sys.exit(0)` a clean exit.
    Exited(i32),
    /// `create` returned [`Ignore`](crate::Ignore) (OTP's `ignore`): the actor chose not to
    /// run. A supervisor keeps such a child's spec and lists it with no process.
    Ignored,
    /// An allocation failed under the actor's memory limit
    /// ([`Limits::memory_limit`](crate::Limits::memory_limit)), and the process died of
    /// it (Rust aborts on a failed allocation). Abnormal: a supervisor restarts it like
    /// any crash.
    OutOfMemory {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The actor ran on another host, and that host was lost: its lease ran out (no
    /// heartbeat from its gateway within the lease time) or it came back as a new run.
    /// What became of the actor is unknown. Erlang's `noconnection`. Only a monitor of a
    /// remote ref receives it.
    HostLost {
        /// The host's name.
        host: String,
    },
}

impl Exit {
    /// `true` for [`Exit::Normal`], [`Exit::Stopped`], [`Exit::Shutdown`] and
    /// [`Exit::Ignored`]: the exits a `Transient` child is not restarted after (OTP's
    /// `normal`, `shutdown` and `{shutdown, Info}`).
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            Exit::Normal | Exit::Stopped | Exit::Shutdown(_) | Exit::Ignored
        )
    }

    /// `true` for the exits OTP calls `normal`: [`Exit::Normal`] (the actor stopped
    /// itself) and [`Exit::Stopped`] (a graceful stop on request, as `gen_server:stop/1`).
    /// These are the only exits that do **not** kill a linked actor that does not trap
    /// exits; [`Exit::Shutdown`] is not normal, as in OTP.
    pub fn is_normal(&self) -> bool {
        matches!(self, Exit::Normal | Exit::Stopped)
    }

    /// The exit as a process exit code, with the mapping of Python's
    /// `Process.exitcode`: `0` for a clean exit ([`Exit::is_clean`]), `n` for
    /// [`Exit::Exited(n)`](Exit::Exited), `-s` for a signal `s` (`-6`, an abort, for
    /// [`Exit::OutOfMemory`]), `1` for a panic or a
    /// failure. `None` for [`Exit::RuntimeLost`]: no status of the actor itself is known.
    pub fn code(&self) -> Option<i32> {
        match self {
            Exit::Normal | Exit::Stopped | Exit::Shutdown(_) | Exit::Ignored => Some(0),
            Exit::Exited(n) => Some(*n),
            Exit::Signaled(s) => Some(-s),
            Exit::OutOfMemory { .. } => Some(-libc::SIGABRT),
            Exit::Panicked { .. } | Exit::Failed(_) => Some(1),
            Exit::RuntimeLost | Exit::HostLost { .. } => None,
        }
    }

    /// The exit a wait status alone tells (when no record in the mailbox can be read).
    pub(crate) fn from_wait(signal: Option<i32>, status: i32) -> Exit {
        match signal {
            Some(sig) => Exit::Signaled(sig),
            None if status == 0 => Exit::Normal,
            None => Exit::Exited(status),
        }
    }

    pub(crate) fn from_raw(raw: RawExit) -> Exit {
        match raw.kind {
            ExitKind::Normal => Exit::Normal,
            ExitKind::Stopped => Exit::Stopped,
            ExitKind::Panicked => Exit::Panicked {
                message: raw.message,
            },
            ExitKind::Signaled => Exit::Signaled(raw.value),
            ExitKind::Failed | ExitKind::UnknownActor | ExitKind::Linked => {
                Exit::Failed(raw.message)
            }
            ExitKind::Shutdown => Exit::Shutdown(raw.message),
            ExitKind::Exited => Exit::Exited(raw.value),
            ExitKind::Ignored => Exit::Ignored,
            ExitKind::OutOfMemory => Exit::OutOfMemory {
                limit: (raw.value as u32 as u64) << 20,
            },
            ExitKind::None => Exit::Failed("no exit was recorded".into()),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Normal => f.write_str("stopped itself"),
            Exit::Stopped => f.write_str("stopped on request"),
            Exit::Panicked { message } => write!(f, "panicked: {message}"),
            Exit::Signaled(sig) => match nix::sys::signal::Signal::try_from(*sig) {
                Ok(s) => write!(f, "killed by signal {sig} ({})", s.as_str()),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
            Exit::Failed(why) => write!(f, "failed: {why}"),
            Exit::Shutdown(why) => write!(f, "shut down: {why}"),
            Exit::RuntimeLost => f.write_str("lost with its runtime (the zygote died)"),
            Exit::HostLost { host } => write!(f, "lost with its host {host:?} (no connection)"),
            Exit::Exited(n) => write!(f, "exited with status {n}"),
            Exit::Ignored => f.write_str("ignored its start (create returned Ignore)"),
            Exit::OutOfMemory { limit } => {
                write!(
                    f,
                    "out of memory: an allocation failed under its {} MiB limit",
                    limit >> 20
                )
            }
        }
    }
}
