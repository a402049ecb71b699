//! procession across machines, over [NATS](https://nats.io).
//!
//! Each host runs one **gateway**: an actor in its local tree ([`Gateway`]), supervised
//! like any other, which owns the NATS connection and bridges the host's mailboxes to
//! subjects. Ordinary actors never link tokio: a ref to an actor on another host sends
//! its frame to the local gateway's mailbox, and the gateway publishes it.
//!
//! ```text
//!  host a                                   host b
//!  actor ──tell/ask──▶ gateway a ══NATS══▶ gateway b ──frame──▶ actor's mailbox
//!                         ▲                    │ (an ask's reply)
//!                         └══════════ reply ═══┘
//! ```
//!
//! - **One ref type.** [`procession::ActorRef`] names a host, that host's runtime
//!   **epoch**, and a mailbox. A ref to a local actor costs what it always did. Refs
//!   travel in messages across hosts and still work; a ref made by an earlier run of a
//!   host is refused there with [`RemoteError::StaleRef`](procession::RemoteError).
//! - **tell, ask (with its timeout) and stop** work on remote refs; [`spawn_on`] starts
//!   an actor on another host; [`whereis_on`] finds one registered there by name.
//! - **Typed failures.** With the server unreachable, asks fail with
//!   `RemoteError::Disconnected` at once, tells are counted as undelivered and logged
//!   (never dropped silently), local refs are unaffected, and the gateway reconnects on
//!   its own. A message larger than the server's `max_payload` fails with
//!   `RemoteError::TooLarge` before it is queued. Frames from other hosts are untrusted
//!   like local ones: a bad one is refused with a typed error, counted, and the gateway
//!   lives on. Every message carries the wire version; a mismatch is
//!   `RemoteError::VersionMismatch`.
//!
//! - **Monitors across hosts.** [`Context::monitor`](procession::Context::monitor) of a
//!   remote ref delivers `Down` when that actor exits; when its whole host is lost (no
//!   heartbeat within [`GatewayConfig::lease`], or it came back as a new run), every
//!   monitor of that host gets `Down` with [`Exit::HostLost`],
//!   Erlang's `noconnection`. [`Context::link`](procession::Context::link) follows OTP's
//!   rules across hosts the same way, `HostLost` being an exit that is not normal.
//!
//! Subjects: `proc.<cluster>.<host>.mb.<mailbox>` (tells, stops, asks),
//! `proc.<cluster>.<host>.{spawn,whereis,info,monitor,demonitor,down}`, replies on
//! `proc.<cluster>.<host>.reply.<n>` of the asking host, and heartbeats on
//! `proc.<cluster>.hb.<host>`. Every message starts with a 24-byte envelope (magic, wire
//! version, kind, epoch; see the `envelope` module) rather than NATS headers.
//!
//! **Security.** The connection takes NATS's own credentials and TLS settings
//! ([`GatewayConfig::token`], [`user_password`](GatewayConfig::user_password),
//! [`credentials_file`](GatewayConfig::credentials_file), [`tls`](GatewayConfig::tls)),
//! passed through to async-nats. Every host of a cluster can send to every mailbox of the
//! cluster's hosts: restrict who may publish on `proc.<cluster>.>` with the server's
//! authorization, as for any NATS subject.

use std::path::PathBuf;
use std::time::Duration;

use procession::prelude::*;
use procession::remote::{self, RemoteAddr, RemoteError, GATEWAY_NAME};
use procession::supervisor::ChildSpec;

mod durable;
mod envelope;
mod gateway;
pub mod server;

pub use durable::{Durable, DurableOptions, DurablePublish, ServeDurable};
pub use gateway::Gateway;

/// What a host's gateway connects to and who it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayConfig {
    /// The server's URL (`nats://127.0.0.1:4222`), or several, comma-separated.
    pub url: String,
    /// The cluster's name: hosts of one cluster reach each other. `[A-Za-z0-9_-]+`.
    pub cluster: String,
    /// This host's name in the cluster, unique in it. `[A-Za-z0-9_-]+`.
    pub host: String,
    /// A token for the server's token authentication.
    pub token: Option<String>,
    /// A user name and password.
    pub user_password: Option<(String, String)>,
    /// A `.creds` file (NATS decentralized JWT authentication).
    pub credentials_file: Option<PathBuf>,
    /// TLS: required, with these root certificates and client certificate, if given.
    pub tls: Option<TlsConfig>,
    /// How long a remote tell waits for room in the other host's mailbox, there.
    pub deliver_timeout: Duration,
    /// A host not heard from for this long is lost: every monitor of its actors gets
    /// `Down` with [`Exit::HostLost`]. Default 3 s.
    pub lease: Duration,
    /// How often this gateway says it is up (default 500 ms; keep it well under the
    /// other hosts' `lease`).
    pub heartbeat: Duration,
}

/// TLS settings, passed through to async-nats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TlsConfig {
    /// PEM files of the certificate authorities to trust (the system's otherwise).
    pub root_certificates: Vec<PathBuf>,
    /// A client certificate and its key, PEM files, for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl GatewayConfig {
    /// A config for host `host` of cluster `cluster` at the server `url`, with no
    /// credentials.
    ///
    /// ```
    /// let cfg = procession_nats::GatewayConfig::new("nats://127.0.0.1:4222", "demo", "a");
    /// assert_eq!(cfg.host, "a");
    /// ```
    pub fn new(
        url: impl Into<String>,
        cluster: impl Into<String>,
        host: impl Into<String>,
    ) -> Self {
        GatewayConfig {
            url: url.into(),
            cluster: cluster.into(),
            host: host.into(),
            token: None,
            user_password: None,
            credentials_file: None,
            tls: None,
            deliver_timeout: Duration::from_secs(5),
            lease: Duration::from_secs(3),
            heartbeat: Duration::from_millis(500),
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        let token = |what: &str, s: &str| {
            if s.is_empty()
                || s.len() > 64
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                Err(format!(
                    "{what} {s:?} is not 1 to 64 characters of [A-Za-z0-9_-]"
                ))
            } else {
                Ok(())
            }
        };
        token("cluster", &self.cluster)?;
        token("host", &self.host)?;
        if self.heartbeat.is_zero() || self.heartbeat >= self.lease {
            return Err(format!(
                "the heartbeat ({:?}) must be shorter than the lease ({:?})",
                self.heartbeat, self.lease
            ));
        }
        Ok(())
    }

    pub(crate) fn prefix(&self, host: &str) -> String {
        format!("proc.{}.{host}", self.cluster)
    }
}

/// What a gateway has done, for tests and operators ([`Status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayStatus {
    /// Connected to the server now.
    pub connected: bool,
    /// This host's runtime epoch.
    pub epoch: u64,
    /// The server's `max_payload`.
    pub max_payload: u64,
    /// Messages published to other hosts.
    pub sent: u64,
    /// Messages received from other hosts and handed to local mailboxes.
    pub delivered: u64,
    /// Tells that could not be delivered (to or from this host): each was logged.
    pub undelivered: u64,
    /// Input from other hosts refused as malformed, of another version, or stale.
    pub refused: u64,
    /// Times the NATS client dropped messages addressed to this host because the gateway
    /// fell behind (slow-consumer events; each was logged).
    pub slow_consumer: u64,
    /// Messages of durable mailboxes served here, handled and acked.
    pub durable_acked: u64,
    /// Messages of durable mailboxes served here handed to the actor again (its handler
    /// had not returned when it, or its host, died; or it did not answer in time).
    pub durable_redelivered: u64,
    /// Messages of durable mailboxes dropped as poison (each was logged).
    pub durable_poisoned: u64,
}

/// Asks a gateway for its [`GatewayStatus`].
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.nats.Status", reply = GatewayStatus)]
pub struct Status;

/// Asks a gateway to find the actor registered under `name` on `host`.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.nats.WhereIs", reply = Result<Option<RemoteAddr>, RemoteError>)]
pub struct WhereIs {
    /// The host.
    pub host: String,
    /// The registered name.
    pub name: String,
    /// How long to wait for the host.
    pub timeout: Duration,
}

/// Asks a gateway what `host` is: its epoch, wire version and actor types.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.nats.Info", reply = Result<HostInfo, RemoteError>)]
pub struct Info {
    /// The host.
    pub host: String,
    /// How long to wait for it.
    pub timeout: Duration,
}

/// Binds `name` in the cluster's registry to `addr` (an actor of this host): what
/// [`register_global`] sends to the gateway.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.nats.RegisterGlobal", reply = Result<(), RemoteError>)]
pub struct RegisterGlobal {
    /// The name.
    pub name: String,
    /// The actor.
    pub addr: RemoteAddr,
}

/// Looks `name` up in the cluster's registry ([`whereis_global`]).
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.nats.WhereIsGlobal", reply = Result<Option<RemoteAddr>, RemoteError>)]
pub struct WhereIsGlobal {
    /// The name.
    pub name: String,
}

/// Removes the binding of `name` to `addr` ([`unregister_global`]); `true` if there was
/// one.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.nats.UnregisterGlobal", reply = Result<bool, RemoteError>)]
pub struct UnregisterGlobal {
    /// The name.
    pub name: String,
    /// The actor it should be bound to.
    pub addr: RemoteAddr,
}

/// What a host says of itself ([`host_info`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Its name.
    pub host: String,
    /// Its runtime's epoch.
    pub epoch: u64,
    /// Its wire version.
    pub wire_version: u8,
    /// The actor types it can run ([`spawn_on`]).
    pub actor_types: Vec<String>,
}

/// Starts this host's gateway (unsupervised; see [`gateway_child`] for a supervised one).
///
/// # Errors
/// As [`procession::spawn`]: [`procession::Error::StartFailed`] for a bad host or cluster
/// name, a gateway already running, or bad credentials.
pub fn start_gateway(cfg: GatewayConfig) -> procession::Result<ActorRef<Gateway>> {
    procession::spawn::<Gateway>(cfg)
}

/// A child spec for this host's gateway, to put in a supervisor (id `"gateway"`,
/// restarted permanently, like any worker).
pub fn gateway_child(cfg: GatewayConfig) -> ChildSpec {
    ChildSpec::worker::<Gateway>("gateway", cfg)
}

/// This host's gateway, if one runs.
pub fn gateway() -> Option<ActorRef<Gateway>> {
    procession::whereis::<Gateway>(GATEWAY_NAME)
}

/// Waits up to `timeout` until this host's gateway runs and is connected.
///
/// # Errors
/// [`procession::Error::Timeout`] if it is not connected by then.
pub fn wait_connected(timeout: Duration) -> procession::Result<GatewayStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(gw) = gateway() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if let Ok(s) = gw.ask_timeout(Status, left.max(Duration::from_millis(10))) {
                if s.connected {
                    return Ok(s);
                }
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(procession::Error::Timeout(timeout));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn via_gateway() -> procession::Result<ActorRef<Gateway>> {
    gateway().ok_or(procession::Error::Remote(RemoteError::NoGateway))
}

pub(crate) fn flatten<T>(
    r: procession::Result<Result<T, RemoteError>>,
    timeout: Duration,
) -> procession::Result<T> {
    match r? {
        Ok(v) => Ok(v),
        Err(RemoteError::Timeout(_)) => Err(procession::Error::Timeout(timeout)),
        Err(e) => Err(procession::Error::Remote(e)),
    }
}

/// What `host` says of itself.
///
/// # Errors
/// [`procession::Error::Remote`] ([`RemoteError::HostUnreachable`], ...) or
/// [`procession::Error::Timeout`].
pub fn host_info(host: &str, timeout: Duration) -> procession::Result<HostInfo> {
    let gw = via_gateway()?;
    let r = gw.ask_timeout(
        Info {
            host: host.into(),
            timeout,
        },
        timeout + Duration::from_secs(1),
    );
    flatten(r, timeout)
}

/// The actor registered under `name` on `host` ([`procession::register`] there), if it is
/// an `A`.
///
/// # Errors
/// As [`host_info`]; [`procession::Error::BadRef`] if the name is bound to another type.
pub fn whereis_on<A: procession::ActorType>(
    host: &str,
    name: &str,
    timeout: Duration,
) -> procession::Result<Option<ActorRef<A>>> {
    let gw = via_gateway()?;
    let req = WhereIs {
        host: host.into(),
        name: name.into(),
        timeout,
    };
    let r = gw.ask_timeout(req, timeout + Duration::from_secs(1));
    match flatten(r, timeout)? {
        None => Ok(None),
        Some(addr) => remote::ref_to::<A>(addr).map(Some),
    }
}

/// The cluster registry's view of a local ref: its address as other hosts use it.
fn global_addr<A: procession::ActorType>(actor: &ActorRef<A>) -> procession::Result<RemoteAddr> {
    if let Some(addr) = actor.remote_addr() {
        return Ok(addr.clone());
    }
    let id = remote::this_host().ok_or(procession::Error::Remote(RemoteError::NoGateway))?;
    Ok(RemoteAddr {
        host: id.host.clone(),
        epoch: id.epoch,
        mailbox: actor.id(),
        actor: A::NAME.to_string(),
    })
}

const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `name` to `actor` in the cluster's registry (a JetStream KV bucket,
/// `procession_<cluster>_names`): every host of the cluster finds it with
/// [`whereis_global`]. `actor` must run on this host. The name is released when the
/// actor is gone for good (this host's gateway deletes it), or when this host is lost:
/// then lookups stop seeing it within the lease, and a new registration takes it over.
/// Names are as for [`procession::register`], and of at most 100 characters.
///
/// # Errors
/// [`procession::Error::NameTaken`] if a live actor holds it; [`procession::Error::BadName`];
/// [`procession::Error::Remote`] ([`RemoteError::Unsupported`] for a ref to another host's
/// actor, [`RemoteError::Refused`] if the server has no JetStream, ...).
pub fn register_global<A: procession::ActorType>(
    name: &str,
    actor: &ActorRef<A>,
) -> procession::Result<()> {
    if !valid_key(name) {
        return Err(procession::Error::BadName(name.to_string()));
    }
    let addr = global_addr(actor)?;
    let gw = via_gateway()?;
    match gw.ask_timeout(
        RegisterGlobal {
            name: name.into(),
            addr,
        },
        REGISTRY_TIMEOUT,
    )? {
        Ok(()) => Ok(()),
        Err(RemoteError::Refused { reason, .. }) if reason == NAME_TAKEN => {
            Err(procession::Error::NameTaken(name.to_string()))
        }
        Err(e) => Err(procession::Error::Remote(e)),
    }
}

/// The reason of the `Refused` that means the name is taken.
pub(crate) const NAME_TAKEN: &str = "the name is taken by a live actor";

/// A key of the KV bucket: procession's name rules (KV keys take no `:`).
fn valid_key(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && !name.ends_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The actor bound to `name` in the cluster's registry, if it lives and is an `A`.
///
/// # Errors
/// [`procession::Error::Remote`] if the registry cannot be read;
/// [`procession::Error::BadRef`] if the name is bound to another type.
pub fn whereis_global<A: procession::ActorType>(
    name: &str,
) -> procession::Result<Option<ActorRef<A>>> {
    if !valid_key(name) {
        return Err(procession::Error::BadName(name.to_string()));
    }
    let gw = via_gateway()?;
    let r = gw.ask_timeout(WhereIsGlobal { name: name.into() }, REGISTRY_TIMEOUT);
    match flatten(r, REGISTRY_TIMEOUT)? {
        None => Ok(None),
        Some(addr) => remote::ref_to::<A>(addr).map(Some),
    }
}

/// Removes the binding of `name` to `actor` from the cluster's registry; `true` if there
/// was one.
///
/// # Errors
/// As [`whereis_global`].
pub fn unregister_global<A: procession::ActorType>(
    name: &str,
    actor: &ActorRef<A>,
) -> procession::Result<bool> {
    let addr = global_addr(actor)?;
    let gw = via_gateway()?;
    let r = gw.ask_timeout(
        UnregisterGlobal {
            name: name.into(),
            addr,
        },
        REGISTRY_TIMEOUT,
    );
    flatten(r, REGISTRY_TIMEOUT)
}

/// Spawns an actor of type `A` on `host`: see [`procession::spawn_on`].
///
/// # Errors
/// As [`procession::spawn_on`].
pub fn spawn_on<A: procession::ActorType>(
    host: &str,
    args: A::Args,
    timeout: Duration,
) -> procession::Result<ActorRef<A>> {
    procession::spawn_on::<A>(host, args, timeout)
}
