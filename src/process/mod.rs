//! Starting actor processes: start methods, options, bootstrap, and exits.
//!
//! Three start methods, as in Python's `multiprocessing`:
//!
//! | method | how | cost | use it when |
//! |---|---|---|---|
//! | [`StartMethod::Forkserver`] (default) | a single-threaded zygote forks the actor | lowest | always, unless you need one of the others |
//! | [`StartMethod::Spawn`] | the zygote forks and re-executes the binary | an exec per actor | you want a pristine address space |
//! | [`StartMethod::Fork`] | the caller forks itself | one fork | the caller is single-threaded and the child should inherit its memory |
//!
//! Choose per program with [`set_start_method`] (or the `PROCESSION_START_METHOD`
//! environment variable: `forkserver`, `spawn`, `fork`), or per spawn with
//! [`SpawnOptions::start_method`].

pub(crate) mod bootstrap;
mod exit;
pub(crate) mod fork;
pub(crate) mod forkserver;
pub(crate) mod registry;
pub(crate) mod runtime;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use exit::Exit;

use crate::error::{Error, Result};
use crate::mailbox::{
    ExitKind, Mailbox, MailboxConfig, LIVENESS_SLICE, STATE_EXITED, STATE_RUNNING,
};
use bootstrap::ChildBoot;

/// How a new actor process is started. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartMethod {
    /// Forked by the runtime's single-threaded zygote (the default).
    #[default]
    Forkserver,
    /// Forked by the zygote, then the binary is re-executed.
    Spawn,
    /// Forked from the calling process, which must be single-threaded.
    Fork,
}

impl StartMethod {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Spawn,
            2 => Self::Fork,
            _ => Self::Forkserver,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "forkserver" => Some(Self::Forkserver),
            "spawn" => Some(Self::Spawn),
            "fork" => Some(Self::Fork),
            _ => None,
        }
    }
}

static DEFAULT_METHOD: AtomicU8 = AtomicU8::new(u8::MAX);

/// Sets the start method used by spawns that do not choose one.
///
/// ```
/// procession::set_start_method(procession::StartMethod::Forkserver);
/// assert_eq!(procession::start_method(), procession::StartMethod::Forkserver);
/// ```
pub fn set_start_method(method: StartMethod) {
    DEFAULT_METHOD.store(method as u8, Ordering::Relaxed);
}

/// The start method used by spawns that do not choose one.
pub fn start_method() -> StartMethod {
    let v = DEFAULT_METHOD.load(Ordering::Relaxed);
    if v != u8::MAX {
        return StartMethod::from_u8(v);
    }
    std::env::var("PROCESSION_START_METHOD")
        .ok()
        .and_then(|s| StartMethod::parse(&s))
        .unwrap_or_default()
}

/// The default time [`spawn`](crate::spawn) waits for the actor's `create` to finish.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Options for one spawn.
///
/// ```no_run
/// use procession::prelude::*;
/// use procession::{SpawnOptions, StartMethod};
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles())] struct Worker;
/// let w: ActorRef<Worker> = procession::spawn_with(
///     Worker,
///     SpawnOptions::new().start_method(StartMethod::Spawn).capacity(64),
/// )?;
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    pub(crate) method: Option<StartMethod>,
    pub(crate) mailbox: MailboxConfig,
    pub(crate) start_timeout: Option<Duration>,
}

impl SpawnOptions {
    /// Default options: the program's start method and a default mailbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this start method for this spawn.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Mailbox capacity in messages (default 4096).
    pub fn capacity(mut self, frames: u32) -> Self {
        self.mailbox = self.mailbox.capacity(frames);
        self
    }

    /// Mailbox ring size in bytes (default 1 MiB).
    pub fn ring_size(mut self, bytes: usize) -> Self {
        self.mailbox = self.mailbox.ring_size(bytes);
        self
    }

    /// Largest message the actor accepts, in bytes (default 64 MiB).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.mailbox = self.mailbox.max_frame(bytes);
        self
    }

    /// How long spawn waits for the actor's `create` (default 30 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = Some(timeout);
        self
    }
}

/// Starts the runtime now rather than at the first spawn (the zygote starts in the
/// background). Optional: spawning does this on first use.
pub fn init() -> Result<()> {
    let rt = runtime::get()?;
    if start_method() != StartMethod::Fork {
        drop(rt.zygote()?);
    }
    Ok(())
}

/// Starts an actor process for the registered actor type `name`, with CBOR `args`, and
/// waits until its `create` has run. Returns its mailbox.
pub(crate) fn start(name: &str, args: Vec<u8>, opts: &SpawnOptions) -> Result<Arc<Mailbox>> {
    crate::os::boot::keep_hook_linked();
    let rt = runtime::get()?;
    fork::reap();
    let mb = Mailbox::create(rt.dir(), &opts.mailbox, name, false)
        .map_err(|e| Error::io("cannot create the actor's mailbox", e))?;
    let boot = ChildBoot {
        name: name.to_string(),
        args,
        mailbox_id: mb.id(),
        runtime_dir: rt.dir().to_path_buf(),
    };
    let method = opts.method.unwrap_or_else(start_method);
    if method == StartMethod::Fork && rt.is_root() {
        // The zygote is also the runtime's keeper: it removes the runtime directory when
        // the root ends, however it ends. Fork children need that too.
        drop(rt.zygote()?);
    }
    let started = match method {
        StartMethod::Fork => fork::start(boot, &mb),
        StartMethod::Forkserver | StartMethod::Spawn => rt.zygote().and_then(|mut z| {
            z.as_mut()
                .expect("zygote is connected")
                .spawn(boot, method == StartMethod::Spawn)
        }),
    };
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => {
            mb.unlink();
            return Err(e);
        }
    };
    mb.set_pid(pid);
    let deadline = Instant::now() + opts.start_timeout.unwrap_or(DEFAULT_START_TIMEOUT);
    loop {
        match mb.wait_started(deadline.min(Instant::now() + LIVENESS_SLICE)) {
            STATE_RUNNING => break,
            // It started, then ended already (e.g. it stopped itself in `started`): the
            // spawn succeeded; join() tells how it ended.
            STATE_EXITED if mb.ran() => break,
            STATE_EXITED => {
                let raw = mb.raw_exit();
                if raw.kind == ExitKind::UnknownActor {
                    return Err(Error::UnknownActor {
                        name: name.to_string(),
                    });
                }
                return Err(Error::StartFailed {
                    actor: name.to_string(),
                    exit: Exit::from_raw(raw),
                });
            }
            _ if Instant::now() >= deadline => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                return Err(Error::Timeout(
                    opts.start_timeout.unwrap_or(DEFAULT_START_TIMEOUT),
                ));
            }
            _ => fork::reap(),
        }
    }
    tracing::info!(actor = name, pid, ?method, "actor spawned");
    Ok(mb)
}
