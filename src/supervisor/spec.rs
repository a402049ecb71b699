//! Supervision as data: [`Supervisor`] (flags and children) and [`ChildSpec`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::actor::{ActorRef, Dispatch};
use crate::error::Result;
use crate::process::{SpawnOptions, StartMethod};
use crate::wire::encode_body;

use super::error::{SpecError, SupervisorError};
use super::server::SupervisorActor;

/// Which children a supervisor restarts when one of them must be restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Strategy {
    /// Only the child that exited (the default).
    #[default]
    OneForOne,
    /// Every child: the others are terminated (in reverse start order), then all are
    /// started again (in start order).
    OneForAll,
    /// The child that exited and every child started after it: those are terminated in
    /// reverse order, then started again in order.
    RestForOne,
    /// Erlang's `simple_one_for_one`: no children at start; children are started at run
    /// time from one template ([`Supervisor::template`]), each restarted on its own as in
    /// `OneForOne`.
    Dynamic,
}

/// When a child is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Restart {
    /// Always (the default).
    #[default]
    Permanent,
    /// Only after an abnormal exit (not [`Exit::is_clean`](crate::Exit::is_clean)).
    Transient,
    /// Never, not even when a sibling's failure terminates it under `OneForAll` or
    /// `RestForOne`; its spec is removed once it has exited.
    Temporary,
}

/// How a child is terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shutdown {
    /// SIGKILL at once.
    BrutalKill,
    /// A graceful stop (the child finishes its current message, runs `stopping`), then
    /// SIGKILL if it has not exited after this long. The default for workers: 5 s.
    Timeout(Duration),
    /// A graceful stop, waited for without limit. The default for supervisors, which
    /// need the time to shut their own children down.
    Infinity,
}

/// Whether a child is a worker or a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildKind {
    /// An ordinary actor.
    Worker,
    /// A supervisor ([`ChildSpec::supervisor`]).
    Supervisor,
}

/// When significant children make their supervisor shut itself down (OTP 24+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AutoShutdown {
    /// Never (the default).
    #[default]
    Never,
    /// When any significant child exits for good (it is not restarted).
    AnySignificant,
    /// When every significant child has exited for good.
    AllSignificant,
}

/// Exponential restart delay: the n-th consecutive restart of a child waits
/// `initial * 2^(n-1)`, at most `max`. A child that has run for `reset_after` without
/// exiting starts again from `initial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay before the first restart.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Running time after which a child counts as stable again.
    pub reset_after: Duration,
}

impl Backoff {
    /// The delay before consecutive restart number `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32
            .checked_shl(n.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// The default shutdown timeout of a worker: 5 seconds.
pub const DEFAULT_WORKER_SHUTDOWN: Duration = Duration::from_secs(5);

/// One child of a supervisor, as data: an id, what to start, its kind, its restart type
/// and its shutdown.
///
/// ```
/// use std::time::Duration;
/// use procession::prelude::*;
/// use procession::supervisor::{ChildSpec, Restart, Shutdown};
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles())] struct Cache { size: usize }
/// let spec = ChildSpec::worker::<Cache>("cache", Cache { size: 64 })
///     .restart(Restart::Transient)
///     .shutdown(Shutdown::Timeout(Duration::from_secs(1)));
/// assert_eq!(spec.id(), "cache");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildSpec {
    pub(crate) id: String,
    pub(crate) actor: String,
    #[serde(with = "serde_bytes")]
    pub(crate) args: Vec<u8>,
    pub(crate) args_error: Option<String>,
    pub(crate) kind: ChildKind,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) significant: bool,
    pub(crate) start_method: Option<StartMethod>,
    pub(crate) capacity: Option<u32>,
    #[serde(default)]
    pub(crate) limits: crate::process::Limits,
    /// The hosts it may run on, in order of preference; empty: this host.
    #[serde(default)]
    pub(crate) hosts: Vec<String>,
}

impl ChildSpec {
    fn new(
        id: String,
        actor: &str,
        args: std::result::Result<Vec<u8>, String>,
        kind: ChildKind,
    ) -> Self {
        let (args, args_error) = match args {
            Ok(a) => (a, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        ChildSpec {
            id,
            actor: actor.to_string(),
            args,
            args_error,
            kind,
            restart: Restart::Permanent,
            shutdown: match kind {
                ChildKind::Worker => Shutdown::Timeout(DEFAULT_WORKER_SHUTDOWN),
                ChildKind::Supervisor => Shutdown::Infinity,
            },
            significant: false,
            start_method: None,
            capacity: None,
            limits: crate::process::Limits::default(),
            hosts: Vec::new(),
        }
    }

    /// A worker child: actor type `A`, started with `args`.
    pub fn worker<A: Dispatch>(id: impl Into<String>, args: A::Args) -> Self {
        let mut bytes = Vec::new();
        let args = encode_body(&args, &mut bytes)
            .map(|()| bytes)
            .map_err(|e| e.to_string());
        Self::new(id.into(), A::NAME, args, ChildKind::Worker)
    }

    /// A supervisor child, with its own children (a subtree).
    pub fn supervisor(id: impl Into<String>, spec: Supervisor) -> Self {
        let mut bytes = Vec::new();
        let args = encode_body(&spec, &mut bytes)
            .map(|()| bytes)
            .map_err(|e| e.to_string());
        Self::new(
            id.into(),
            <SupervisorActor as Dispatch>::NAME,
            args,
            ChildKind::Supervisor,
        )
    }

    /// Sets the restart type (default [`Restart::Permanent`]).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets the shutdown (default 5 s for workers, [`Shutdown::Infinity`] for supervisors).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Marks the child significant for [`AutoShutdown`]. Only `Transient` and `Temporary`
    /// children can be significant (a `Permanent` one never exits for good).
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }

    /// Starts this child with a given start method.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Sets the child's mailbox capacity in messages.
    pub fn capacity(mut self, frames: u32) -> Self {
        self.capacity = Some(frames);
        self
    }

    /// Limits the kernel enforces on every incarnation of the child (see
    /// [`Limits`](crate::Limits)). A child that runs out of its memory exits
    /// [`Exit::OutOfMemory`](crate::Exit::OutOfMemory) and is restarted by its restart
    /// type, as any crash; its siblings are not touched (under `OneForOne`).
    pub fn limits(mut self, limits: crate::process::Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Places the child on another host of the cluster (by its gateway's host name), not
    /// in this one: see [`on_hosts`](Self::on_hosts).
    pub fn on_host(self, host: impl Into<String>) -> Self {
        self.on_hosts([host])
    }

    /// Places the child on one of these hosts of the cluster, in order of preference.
    /// The supervisor starts it through this host's gateway (the crate `procession-nats`)
    /// on the first host that takes it, monitors it there, and restarts it by its restart
    /// type when it exits, or with
    /// [`Exit::HostLost`](crate::Exit::HostLost) when its host is lost: **on the host it
    /// ran on first** (back under a new epoch, or never gone), else on the next host of
    /// the list that takes it. A child on another host gets a new address at each
    /// restart (its mailbox is there, not here): reach it through
    /// [`child`](crate::ActorRef::child) or a cluster name, not through an old ref.
    ///
    /// When no host takes it, the start fails and, as any failed restart, counts against
    /// the intensity; it is retried after the supervisor's [`Backoff`] delay if it has
    /// one (give a supervisor of remote children a backoff and an intensity that cover
    /// the time a host takes to come back). Its `Shutdown` is applied on its host, by
    /// its gateway; an `Infinity` shutdown waits at most an hour there. A partitioned
    /// host may still run the old incarnation when the new one starts elsewhere: as in
    /// Erlang, a lost host is not known to be dead.
    ///
    /// ```
    /// use procession::prelude::*;
    /// use procession::supervisor::ChildSpec;
    /// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles())] struct Worker;
    /// let spec = ChildSpec::worker::<Worker>("w", Worker).on_hosts(["b", "c"]);
    /// assert_eq!(spec.hosts(), ["b", "c"]);
    /// ```
    pub fn on_hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// The hosts the child may run on ([`on_hosts`](Self::on_hosts)); empty: this host.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The child's id, unique among its siblings.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The actor type's stable name.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Worker or supervisor.
    pub fn kind(&self) -> ChildKind {
        self.kind
    }
}

/// A supervisor's configuration: strategy, restart intensity, optional backoff,
/// auto-shutdown, and its children in start order.
///
/// ```no_run
/// use std::time::Duration;
/// use procession::prelude::*;
/// use procession::supervisor::{ChildSpec, Restart, Shutdown, Strategy, Supervisor};
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles())] struct Db;
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles())] struct Web;
/// let sup = Supervisor::new(Strategy::OneForOne)
///     .intensity(3, Duration::from_secs(5))
///     .child(ChildSpec::worker::<Db>("db", Db))
///     .child(ChildSpec::worker::<Web>("web", Web).shutdown(Shutdown::Timeout(Duration::from_secs(1))))
///     .spawn()?; // the supervisor runs in its own process; so does each child
/// println!("{}", sup.tree()?);
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Supervisor {
    pub(crate) strategy: Strategy,
    pub(crate) intensity: u32,
    pub(crate) period: Duration,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) auto_shutdown: AutoShutdown,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) template: Option<ChildSpec>,
}

/// Erlang's default restart intensity: 1 restart...
pub const DEFAULT_INTENSITY: u32 = 1;
/// ...within 5 seconds.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(5);

impl Supervisor {
    /// A supervisor with this strategy, Erlang's default intensity (1 restart in 5 s), no
    /// backoff, no auto-shutdown, and no children yet.
    pub fn new(strategy: Strategy) -> Self {
        Supervisor {
            strategy,
            intensity: DEFAULT_INTENSITY,
            period: DEFAULT_PERIOD,
            backoff: None,
            auto_shutdown: AutoShutdown::Never,
            children: Vec::new(),
            template: None,
        }
    }

    /// Allows at most `restarts` restarts within any `period`; one more makes the
    /// supervisor terminate all its children and exit with [`Exit::Shutdown`](crate::Exit::Shutdown).
    pub fn intensity(mut self, restarts: u32, period: Duration) -> Self {
        self.intensity = restarts;
        self.period = period;
        self
    }

    /// Delays restarts exponentially (see [`Backoff`]).
    pub fn backoff(mut self, initial: Duration, max: Duration, reset_after: Duration) -> Self {
        self.backoff = Some(Backoff {
            initial,
            max,
            reset_after,
        });
        self
    }

    /// Sets when significant children shut the supervisor down.
    pub fn auto_shutdown(mut self, when: AutoShutdown) -> Self {
        self.auto_shutdown = when;
        self
    }

    /// Adds a child; children start in the order added and stop in reverse.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// The template of a [`Strategy::Dynamic`] supervisor's children.
    pub fn template(mut self, spec: ChildSpec) -> Self {
        self.template = Some(spec);
        self
    }

    /// Checks the flags and every child spec as OTP's `init` and `check_childspecs` do:
    /// a positive period; significant children only if `Transient`/`Temporary` and with
    /// an auto-shutdown; a Dynamic supervisor with a template, no static children and no
    /// auto-shutdown; unique ids; positive shutdown timeouts; encodable arguments.
    /// [`Supervisor::spawn`] runs it first, and so does the supervisor's `create`.
    pub fn check(&self) -> std::result::Result<(), SpecError> {
        if self.period.is_zero() {
            return Err(SpecError::ZeroPeriod);
        }
        match (self.strategy, &self.template) {
            (Strategy::Dynamic, None) => return Err(SpecError::MissingTemplate),
            (Strategy::Dynamic, Some(t)) => {
                if !self.children.is_empty() {
                    return Err(SpecError::DynamicWithChildren);
                }
                if self.auto_shutdown != AutoShutdown::Never {
                    return Err(SpecError::DynamicAutoShutdown);
                }
                check_childspecs(std::slice::from_ref(t), self.auto_shutdown)?;
            }
            (_, Some(_)) => return Err(SpecError::TemplateWithoutDynamic),
            (_, None) => {}
        }
        check_childspecs(&self.children, self.auto_shutdown)
    }

    /// Starts the supervisor in its own process; returns once all its children have
    /// started (or fails, having stopped those that had, if one cannot start). An
    /// invalid spec ([`Supervisor::check`]) fails first, with
    /// [`Error::Supervisor`](crate::Error::Supervisor)`(`[`SupervisorError::Invalid`]`)`.
    ///
    /// # Errors
    /// [`Error::Supervisor`](crate::Error::Supervisor) with [`SupervisorError::Invalid`]
    /// for a spec that [`check`](Self::check) rejects;
    /// [`Error::StartFailed`](crate::Error::StartFailed) if a child failed to start
    /// (the supervisor stops the ones it had started, as OTP's does); otherwise as
    /// [`spawn`](crate::spawn).
    pub fn spawn(self) -> Result<ActorRef<SupervisorActor>> {
        self.check().map_err(SupervisorError::Invalid)?;
        crate::spawn(self)
    }

    /// Like [`Supervisor::spawn`], with options for the supervisor's own process.
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn).
    pub fn spawn_with(self, opts: SpawnOptions) -> Result<ActorRef<SupervisorActor>> {
        self.check().map_err(SupervisorError::Invalid)?;
        crate::spawn_with(self, opts)
    }
}

/// Checks child specs as OTP's `supervisor:check_childspecs/2` does, for a supervisor
/// with this auto-shutdown: unique ids, positive shutdown timeouts, encodable arguments,
/// and significance only for `Transient`/`Temporary` children under an auto-shutdown.
///
/// ```
/// use procession::prelude::*;
/// use procession::supervisor::{check_childspecs, AutoShutdown, ChildSpec, SpecError};
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles())] struct Job;
/// let spec = ChildSpec::worker::<Job>("job", Job).significant(true); // Permanent
/// assert_eq!(
///     check_childspecs(&[spec], AutoShutdown::AnySignificant),
///     Err(SpecError::SignificantPermanent { id: "job".into() })
/// );
/// ```
pub fn check_childspecs(
    specs: &[ChildSpec],
    auto_shutdown: AutoShutdown,
) -> std::result::Result<(), SpecError> {
    let mut seen = std::collections::HashSet::new();
    for spec in specs {
        let id = || spec.id.clone();
        if !seen.insert(spec.id.as_str()) {
            return Err(SpecError::DuplicateId { id: id() });
        }
        if let Some(reason) = &spec.args_error {
            return Err(SpecError::Args {
                id: id(),
                reason: reason.clone(),
            });
        }
        let mut hosts = std::collections::HashSet::new();
        for h in &spec.hosts {
            if h.is_empty() || !hosts.insert(h.as_str()) {
                return Err(SpecError::BadHosts {
                    id: id(),
                    reason: format!("{h:?} is empty or named twice"),
                });
            }
        }
        if spec.shutdown == Shutdown::Timeout(Duration::ZERO) {
            return Err(SpecError::ZeroShutdown { id: id() });
        }
        if spec.significant {
            if spec.restart == Restart::Permanent {
                return Err(SpecError::SignificantPermanent { id: id() });
            }
            if auto_shutdown == AutoShutdown::Never {
                return Err(SpecError::SignificantWithoutAutoShutdown { id: id() });
            }
        }
    }
    Ok(())
}
