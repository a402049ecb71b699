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
//!
//! ## At exit
//!
//! As in Python, a process that exits normally first waits for the non-daemon actors it
//! spawned ([`SpawnOptions::daemon`]), and by default it waits as long as they run. After
//! [`EXIT_WAIT_NOTICE`] (2 s) of waiting it says so on stderr, once, naming each actor it
//! waits for and its pid, and how to end the wait, so a program that returns from `main`
//! with a worker still running does not hang silently. That wait is the one blocking call a program makes without naming it, so it has a deadline
//! too: [`set_exit_join_timeout`], or the `PROCESSION_EXIT_JOIN_TIMEOUT` environment
//! variable (seconds, fractions allowed). Past it, the process says on stderr which actors
//! still run and exits; they are then killed, as daemons are. This workspace's
//! `.cargo/config.toml` sets 120 s, so that a failing test that leaves an actor running
//! ends its test binary instead of hanging it.

pub(crate) mod bootstrap;
mod child_init;
mod exit;
pub(crate) mod fork;
pub(crate) mod forkserver;
mod limits;
pub(crate) mod names;
mod notice;
pub(crate) mod registry;
pub(crate) mod runtime;
mod signals;
mod stats;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) use child_init::run_all as run_child_inits;
pub use child_init::ChildStart;
#[doc(hidden)]
pub use child_init::CHILD_INITS;
pub use exit::Exit;
pub(crate) use forkserver::send_notice;
pub use limits::{Limits, Resource};
pub use notice::{Down, Exited, DOWN_TAG, EXITED_TAG};
pub use signals::{shutdown_signal, stop_all, ShutdownSignal, SIGNAL_SHUTDOWN_ALLOWANCE};
pub(crate) use signals::{shutting_down, watcher_running};
pub use stats::{runtime_snapshot, ActorStats};

use crate::error::{Error, Result};
use crate::mailbox::{
    ExitKind, Mailbox, MailboxConfig, LIVENESS_SLICE, STATE_EXITED, STATE_RUNNING,
};
use bootstrap::ChildBoot;

/// How a new actor process is started. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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

/// The start method used by spawns that do not choose one: what [`set_start_method`]
/// set, else `PROCESSION_START_METHOD` (`forkserver`, `spawn` or `fork`), else
/// [`StartMethod::Forkserver`]. A `PROCESSION_START_METHOD` that names no method gives
/// the default here, and makes every spawn that relies on it fail (see
/// [`configured_start_method`]).
pub fn start_method() -> StartMethod {
    configured_start_method().unwrap_or_default()
}

/// As [`start_method`], but a `PROCESSION_START_METHOD` that names no start method is an
/// error rather than ignored: what [`spawn`](crate::spawn) and [`init`] use.
///
/// # Errors
/// [`Error::InvalidArgument`], naming the variable, its
/// value and the values it takes.
pub fn configured_start_method() -> Result<StartMethod> {
    let v = DEFAULT_METHOD.load(Ordering::Relaxed);
    if v != u8::MAX {
        return Ok(StartMethod::from_u8(v));
    }
    match std::env::var("PROCESSION_START_METHOD") {
        Err(std::env::VarError::NotPresent) => Ok(StartMethod::default()),
        Ok(s) if s.is_empty() => Ok(StartMethod::default()),
        Ok(s) => StartMethod::parse(s.trim()).ok_or_else(|| bad_start_method(&s)),
        Err(std::env::VarError::NotUnicode(s)) => Err(bad_start_method(&s.to_string_lossy())),
    }
}

fn bad_start_method(value: &str) -> Error {
    Error::InvalidArgument(format!(
        "PROCESSION_START_METHOD={value:?} is not a start method: use forkserver (the \
         default), spawn or fork, or unset it"
    ))
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
    pub(crate) daemon: bool,
    /// Set by a supervisor: the mailbox outlives incarnations, the supervisor joins it.
    pub(crate) supervised: bool,
    /// A mailbox to notify (with `Down`) when the actor exits, registered before it starts.
    pub(crate) watcher: Option<u64>,
    /// Set by a supervisor: the mailbox id of this child's place in the tree (adopted if
    /// an earlier incarnation of the supervisor created it).
    pub(crate) tree_id: Option<u64>,
    /// Set by a supervisor: the child's id, recorded in the mailbox for inspectors.
    pub(crate) label: Option<String>,
    pub(crate) limits: Limits,
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

    /// Makes the actor a daemon. As in Python's multiprocessing: when the process that
    /// spawned it exits normally, it waits for its non-daemon actors to end but terminates
    /// its daemon actors. (Whatever the flag, when the spawning process dies abnormally —
    /// even by SIGKILL — every actor it spawned is killed: there are no orphans.)
    /// Unlike Python, a daemon may spawn actors of its own; they die with it.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Limits the kernel enforces on the actor's process (see [`Limits`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Shorthand for [`Limits::memory_limit`].
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.limits = self.limits.memory_limit(bytes);
        self
    }

    /// Shorthand for [`Limits::cpu_affinity`].
    pub fn cpu_affinity(mut self, cpus: impl IntoIterator<Item = usize>) -> Self {
        self.limits = self.limits.cpu_affinity(cpus);
        self
    }

    /// Shorthand for [`Limits::nice`].
    pub fn nice(mut self, n: i32) -> Self {
        self.limits = self.limits.nice(n);
        self
    }

    /// Shorthand for [`Limits::rlimit`].
    pub fn rlimit(mut self, resource: Resource, soft: u64, hard: u64) -> Self {
        self.limits = self.limits.rlimit(resource, soft, hard);
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
///
/// # Errors
/// [`Error::DuplicateActorName`] if two actor types share
/// a name, [`Error::InvalidArgument`] for a bad
/// `PROCESSION_START_METHOD`, [`Error::Io`] if the runtime directory or
/// the zygote cannot be created.
pub fn init() -> Result<()> {
    let method = configured_start_method()?;
    let rt = runtime::get()?;
    if method != StartMethod::Fork {
        drop(rt.zygote()?);
    }
    Ok(())
}

/// Starts an actor process for the registered actor type `name`, with CBOR `args`, and
/// waits until its `create` has run. Returns its mailbox.
pub(crate) fn start(name: &str, args: Vec<u8>, opts: &SpawnOptions) -> Result<Arc<Mailbox>> {
    crate::os::boot::keep_hook_linked();
    // A bad PROCESSION_START_METHOD fails before anything is created.
    opts.method.map_or_else(configured_start_method, Ok)?;
    let rt = runtime::get()?;
    fork::reap();
    let (mb, adopted) = match opts.tree_id {
        Some(id) => Mailbox::create_or_adopt(rt.dir(), id, &opts.mailbox, name),
        None => Mailbox::create(rt.dir(), &opts.mailbox, name, false).map(|mb| (mb, false)),
    }
    .map_err(|e| Error::io("cannot create the actor's mailbox", e))?;
    if adopted {
        // Its previous consumer was killed with the previous incarnation of its
        // supervisor; wait until it has been reaped, then continue from its queue.
        let timeout = opts.start_timeout.unwrap_or(DEFAULT_START_TIMEOUT);
        let deadline = Instant::now() + timeout;
        while mb.state() != STATE_EXITED && mb.state() != crate::mailbox::STATE_STARTING {
            if Instant::now() >= deadline {
                return Err(Error::Timeout(timeout));
            }
            fork::reap();
            mb.wait_state_change(mb.state(), LIVENESS_SLICE);
        }
        tracing::info!(
            actor = name,
            mailbox = format_args!("{:016x}", mb.id()),
            queued = mb.queued(),
            "adopting the mailbox of this place in the tree"
        );
        if mb.state() == STATE_EXITED {
            mb.reset_for_restart();
        }
    }
    let parent = opts.watcher.unwrap_or_else(crate::actor::own_mailbox_id);
    mb.set_place(parent, opts.label.as_deref().unwrap_or(""));
    mb.set_daemon(opts.daemon);
    mb.set_supervised(opts.supervised);
    if let Some(w) = opts.watcher {
        mb.add_watcher(w, false);
    }
    if let Err(e) = start_on(&mb, name, args, opts) {
        if !adopted {
            mb.unlink();
        }
        return Err(e);
    }
    if !opts.daemon && !opts.supervised {
        track_non_daemon(&mb);
    }
    track_child(&mb);
    Ok(mb)
}

/// Every actor this process spawned, pruned of ended ones at each spawn.
static CHILDREN: Mutex<Vec<Arc<Mailbox>>> = Mutex::new(Vec::new());

fn running(mb: &Mailbox) -> bool {
    mb.state() != STATE_EXITED && !mb.is_gone() && !mb.is_lost()
}

fn track_child(mb: &Arc<Mailbox>) {
    let mut list = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|m| m.id() != mb.id() && running(m));
    list.push(mb.clone());
}

/// An actor that this process spawned and that has not ended: see [`active_children`].
#[derive(Clone)]
pub struct ActiveChild {
    mb: Arc<Mailbox>,
}

impl ActiveChild {
    /// Its current pid.
    pub fn pid(&self) -> u32 {
        self.mb.pid()
    }

    /// Its mailbox id, as [`ActorRef::id`](crate::ActorRef::id).
    pub fn id(&self) -> u64 {
        self.mb.id()
    }

    /// The stable name of its actor type.
    pub fn name(&self) -> &str {
        self.mb.actor_name()
    }

    /// Whether it is a daemon ([`SpawnOptions::daemon`]).
    pub fn is_daemon(&self) -> bool {
        self.mb.is_daemon()
    }

    pub(crate) fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mb
    }

    /// A typed reference to it, if it is an actor of type `A`.
    pub fn actor<A: crate::actor::Dispatch>(&self) -> Option<crate::ActorRef<A>> {
        (self.mb.actor_name() == A::NAME).then(|| crate::ActorRef::from_mailbox(self.mb.clone()))
    }
}

impl std::fmt::Debug for ActiveChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveChild")
            .field("name", &self.name())
            .field("pid", &self.pid())
            .field("id", &format_args!("{:016x}", self.id()))
            .field("daemon", &self.is_daemon())
            .finish()
    }
}

/// The actors this process spawned that have not ended, in spawn order, as Python's
/// `multiprocessing.active_children()`: daemons, supervised children (in a supervisor's
/// process) and pool workers (in the pool's) included. Like Python's, it reaps the
/// children that have ended first.
///
/// ```
/// # use procession::prelude::*;
/// # #[derive(Serialize, Deserialize, Message)] #[message(reply = u32)] struct Ping;
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Ping))] struct Echo;
/// # impl Handler<Ping> for Echo { fn handle(&mut self, _: Ping, cx: &mut Context<Self>) -> u32 { cx.pid() } }
/// let echo: ActorRef<Echo> = procession::spawn(Echo)?;
/// assert!(procession::active_children().iter().any(|c| c.id() == echo.id()));
/// echo.stop()?;
/// echo.join()?;
/// assert!(!procession::active_children().iter().any(|c| c.id() == echo.id()));
/// # Ok::<(), procession::Error>(())
/// ```
pub fn active_children() -> Vec<ActiveChild> {
    fork::reap();
    crate::mailbox::probe_runtime();
    let mut list = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|m| running(m));
    list.iter()
        .map(|mb| ActiveChild { mb: mb.clone() })
        .collect()
}

/// Starts a new incarnation consuming the existing mailbox `mb` (whose life record says
/// STARTING), and waits until its `create` has run.
pub(crate) fn start_on(
    mb: &Arc<Mailbox>,
    name: &str,
    args: Vec<u8>,
    opts: &SpawnOptions,
) -> Result<()> {
    let method = opts.method.map_or_else(configured_start_method, Ok)?;
    let rt = runtime::get()?;
    let boot = ChildBoot {
        name: name.to_string(),
        args,
        mailbox_id: mb.id(),
        runtime_dir: rt.dir().to_path_buf(),
        parent_pid: crate::os::proc::pid(),
        parent_mailbox: crate::actor::own_mailbox_id(),
        limits: opts.limits.clone(),
    };
    let pid = match method {
        StartMethod::Fork => fork::start(boot, mb)?,
        StartMethod::Forkserver | StartMethod::Spawn => {
            let mut zygote = rt.zygote()?;
            let z = zygote
                .as_mut()
                .ok_or_else(|| Error::Runtime("no zygote connection".into()))?;
            z.spawn(boot, method == StartMethod::Spawn)?
        }
    };
    mb.set_pid(pid);
    let timeout = opts.start_timeout.unwrap_or(DEFAULT_START_TIMEOUT);
    let deadline = Instant::now() + timeout;
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
            _ if mb.is_lost() => return Err(Error::RuntimeLost),
            _ if Instant::now() >= deadline => {
                fork::kill_consumer(mb.id());
                return Err(Error::Timeout(timeout));
            }
            _ => {
                fork::reap();
                crate::mailbox::probe_runtime();
            }
        }
    }
    tracing::info!(
        actor = name,
        pid,
        ?method,
        incarnation = mb.incarnation(),
        "actor spawned"
    );
    Ok(())
}

/// Asks the zygote to signal the consumer of `mailbox`; `false` if no process of the
/// zygote's (nor a fork child handed to it) consumes it now, or the zygote cannot be
/// reached. Returns once the signal is sent.
pub(crate) fn signal_consumer(mailbox: u64, signal: nix::sys::signal::Signal) -> bool {
    let Some(rt) = runtime::current() else {
        return false;
    };
    let Ok(mut guard) = rt.zygote() else {
        return false;
    };
    guard
        .as_mut()
        .is_some_and(|z| z.signal(mailbox, signal).unwrap_or(false))
}

/// Hands the zygote a pidfd of `pid`, a child this process just forked for `mailbox`.
pub(crate) fn pidfd_to_zygote(mailbox: u64, pid: u32) -> Result<()> {
    let pidfd = crate::os::pidfd::PidFd::open(pid)
        .map_err(|e| Error::io("cannot open a pidfd of the fork child", e))?;
    let rt = runtime::get()?;
    let mut guard = rt.zygote()?;
    match guard.as_mut() {
        Some(z) => z.adopt(mailbox, &pidfd),
        None => Err(Error::Runtime("no zygote connection".into())),
    }
}

/// The zygote's own record of the consumer of `mailbox` (`Unknown` if it cannot say).
pub(crate) fn consumer_status(mailbox: u64) -> forkserver::ConsumerStatus {
    let Some(rt) = runtime::current() else {
        return forkserver::ConsumerStatus::Unknown;
    };
    let Ok(mut guard) = rt.zygote() else {
        return forkserver::ConsumerStatus::Unknown;
    };
    guard
        .as_mut()
        .and_then(|z| z.status(mailbox).ok())
        .unwrap_or(forkserver::ConsumerStatus::Unknown)
}

/// Whether no process consumes `mb` any more, by the records of the processes that start
/// actors (this one's fork children, the zygote's children), whatever the mailbox file
/// says: it may have been written over.
pub(crate) fn consumer_gone(mb: &Mailbox) -> bool {
    !fork::is_child(mb.id())
        && !matches!(
            consumer_status(mb.id()),
            forkserver::ConsumerStatus::Running { .. }
        )
}

/// Non-daemon actors spawned by this process, which it waits for before it exits.
static NON_DAEMONS: Mutex<Vec<Arc<Mailbox>>> = Mutex::new(Vec::new());

fn track_non_daemon(mb: &Arc<Mailbox>) {
    let mut list = NON_DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|m| !m.is_gone());
    list.push(mb.clone());
    if runtime::current().is_some_and(|rt| rt.is_root()) {
        crate::os::proc::at_exit_once(join_non_daemons_at_exit);
    }
}

/// Waits until every non-daemon actor this process spawned has ended. The root calls it
/// at exit (as Python's multiprocessing does); an actor calls it before its process ends.
pub(crate) fn join_non_daemons() {
    let list: Vec<Arc<Mailbox>> =
        std::mem::take(&mut *NON_DAEMONS.lock().unwrap_or_else(|e| e.into_inner()));
    let waiting: Vec<_> = list.into_iter().filter(|m| !m.is_gone()).collect();
    if waiting.is_empty() {
        return;
    }
    tracing::info!(
        count = waiting.len(),
        "waiting for non-daemon actors to end"
    );
    let deadline = exit_join_timeout().map(|t| Instant::now() + t);
    let notice_at = Instant::now() + EXIT_WAIT_NOTICE;
    let mut noticed = false;
    let total = waiting.len();
    for (done, mb) in waiting.iter().enumerate() {
        let mut slices = 0u32;
        while !mb.is_gone() {
            if !noticed && Instant::now() >= notice_at {
                noticed = true;
                eprintln!("{}", exit_wait_notice(&waiting[done..]));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let left = waiting[done..].iter().filter(|m| !m.is_gone()).count();
                tracing::warn!(left, total, "exit join timeout: not waiting any longer");
                eprintln!(
                    "procession: {left} of {total} non-daemon actors still running after the \
                     exit join timeout ({:?}); exiting without them (they are killed)",
                    exit_join_timeout().unwrap_or_default()
                );
                return;
            }
            fork::reap();
            crate::mailbox::probe_runtime();
            // The mailbox file can be written over: at once, then now and then, ask the
            // zygote, which keeps its own record, whether anything still consumes it.
            if slices % 16 == 0 && consumer_gone(mb) {
                break;
            }
            let slice = deadline.map_or(LIVENESS_SLICE, |d| {
                d.saturating_duration_since(Instant::now())
                    .min(LIVENESS_SLICE)
            });
            mb.wait_state_change(mb.state(), slice);
            slices += 1;
        }
    }
}

/// How long a process that exits waits for its non-daemon actors before it says on
/// stderr which ones it waits for.
pub const EXIT_WAIT_NOTICE: Duration = Duration::from_secs(2);

/// What an exiting process prints once it has waited [`EXIT_WAIT_NOTICE`] for `left`.
fn exit_wait_notice(left: &[Arc<Mailbox>]) -> String {
    let running: Vec<String> = left
        .iter()
        .filter(|m| !m.is_gone())
        .map(|m| format!("{} (pid {})", m.actor_name(), m.pid()))
        .collect();
    let who = if runtime::current().is_some_and(|rt| rt.is_root()) {
        "main has returned; the program".to_string()
    } else {
        format!("actor process {}", std::process::id())
    };
    format!(
        "procession: {who} waits for {} non-daemon actor{} to end, as Python's \
         multiprocessing does: {}. Stop and join them before returning, spawn them with \
         SpawnOptions::daemon(true), set a limit with set_exit_join_timeout, or press Ctrl-C \
         to stop them.",
        running.len(),
        if running.len() == 1 { "" } else { "s" },
        running.join(", ")
    )
}

/// [`EXIT_JOIN`] when nothing was set: read the environment.
const EXIT_JOIN_UNSET: u64 = u64::MAX;
/// [`EXIT_JOIN`] for "as long as they run".
const EXIT_JOIN_FOREVER: u64 = u64::MAX - 1;
/// The exit join's deadline in microseconds, or one of the two values above.
static EXIT_JOIN: AtomicU64 = AtomicU64::new(EXIT_JOIN_UNSET);

/// Sets how long this process waits at exit for its non-daemon actors: `None` (the
/// default, as in Python) waits as long as they run. Past the deadline the process names
/// the actors still running on stderr and exits; they are killed, as daemons are. See
/// [At exit](self#at-exit).
///
/// ```
/// use std::time::Duration;
/// procession::set_exit_join_timeout(Some(Duration::from_secs(10)));
/// assert_eq!(procession::exit_join_timeout(), Some(Duration::from_secs(10)));
/// procession::set_exit_join_timeout(None);
/// assert_eq!(procession::exit_join_timeout(), None);
/// ```
pub fn set_exit_join_timeout(timeout: Option<Duration>) {
    let v = timeout.map_or(EXIT_JOIN_FOREVER, |d| {
        (d.as_micros() as u64).min(EXIT_JOIN_FOREVER - 1)
    });
    EXIT_JOIN.store(v, Ordering::Relaxed);
}

/// How long this process waits at exit for its non-daemon actors (`None`: as long as
/// they run): what [`set_exit_join_timeout`] set, else `PROCESSION_EXIT_JOIN_TIMEOUT`
/// (seconds), else `None`. A value that is not a number of seconds is ignored.
pub fn exit_join_timeout() -> Option<Duration> {
    match EXIT_JOIN.load(Ordering::Relaxed) {
        EXIT_JOIN_UNSET => std::env::var("PROCESSION_EXIT_JOIN_TIMEOUT")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(1e9))),
        EXIT_JOIN_FOREVER => None,
        us => Some(Duration::from_micros(us)),
    }
}

/// Forgets the parent's list in a `fork` child (those actors are not its children).
pub(crate) fn forget_non_daemons() {
    if let Ok(mut list) = NON_DAEMONS.try_lock() {
        std::mem::forget(std::mem::take(&mut *list));
    }
}

extern "C" fn join_non_daemons_at_exit() {
    join_non_daemons();
}
