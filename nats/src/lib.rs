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
//! Subjects: `proc.<cluster>.<host>.mb.<mailbox>` (tells, stops, asks),
//! `proc.<cluster>.<host>.{spawn,whereis,info}`, and replies on
//! `proc.<cluster>.<host>.reply.<n>` of the asking host.
//!
//! **Security.** The connection takes NATS's own credentials and TLS settings
//! ([`GatewayConfig::token`], [`user_password`](GatewayConfig::user_password),
//! [`credentials_file`](GatewayConfig::credentials_file), [`tls`](GatewayConfig::tls)),
//! passed through to async-nats. Every host of a cluster can send to every mailbox of the
//! cluster's hosts: restrict who may publish on `proc.<cluster>.>` with the server's
//! authorization, as for any NATS subject.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use procession::prelude::*;
use procession::remote::{
    self, Forward, ForwardAsk, HostIdentity, RemoteAddr, RemoteError, SpawnOn, GATEWAY_NAME,
};
use procession::{supervisor::ChildSpec, ReplyToken};

pub mod server;

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
        }
    }

    fn check(&self) -> Result<(), String> {
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
        token("host", &self.host)
    }

    fn prefix(&self, host: &str) -> String {
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

const H_WIRE: &str = "Procession-Wire";
const H_EPOCH: &str = "Procession-Epoch";
const H_ACTOR: &str = "Procession-Actor";
const H_FROM: &str = "Procession-From";
const H_STATUS: &str = "Procession-Status";

/// The request body of a spawn on another host.
#[derive(Serialize, Deserialize)]
struct SpawnRequest {
    actor: String,
    #[serde(with = "serde_bytes_compat")]
    args: Vec<u8>,
}

/// `Vec<u8>` as one CBOR byte string.
mod serde_bytes_compat {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let b: procession::ByteBuf = serde::Deserialize::deserialize(d)?;
        Ok(b.into_vec())
    }
}

/// What waits for a reply from another host.
enum Pending {
    Ask(ReplyToken<Result<ByteBuf, RemoteError>>),
    Spawn(ReplyToken<Result<RemoteAddr, RemoteError>>, String),
    WhereIs(ReplyToken<Result<Option<RemoteAddr>, RemoteError>>),
    Info(ReplyToken<Result<HostInfo, RemoteError>>),
}

impl Pending {
    fn fail(self, e: RemoteError) {
        let _ = match self {
            Pending::Ask(t) => t.reply(Err(e)),
            Pending::Spawn(t, _) => t.reply(Err(e)),
            Pending::WhereIs(t) => t.reply(Err(e)),
            Pending::Info(t) => t.reply(Err(e)),
        };
    }
}

/// A job for the publisher task, in the order the gateway's mailbox gave them.
enum Job {
    Tell {
        to: RemoteAddr,
        frame: Vec<u8>,
    },
    Request {
        host: String,
        suffix: String,
        headers: HeaderMap,
        body: Vec<u8>,
        timeout: Duration,
        pending: Pending,
    },
}

/// State shared by the gateway's handlers and tasks.
struct Shared {
    cfg: GatewayConfig,
    epoch: u64,
    client: async_nats::Client,
    connected: AtomicBool,
    max_payload: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    next: AtomicU64,
    sent: AtomicU64,
    delivered: AtomicU64,
    undelivered: AtomicU64,
    refused: AtomicU64,
    /// Slow-consumer events: messages from other hosts that the client dropped.
    slow: Arc<AtomicU64>,
}

/// How many messages from other hosts may wait in this gateway's subscription.
const SUBSCRIPTION_CAPACITY: usize = 1 << 18;

impl Shared {
    fn identity(&self) -> HostIdentity {
        HostIdentity {
            cluster: self.cfg.cluster.clone(),
            host: self.cfg.host.clone(),
            epoch: self.epoch,
            max_payload: self.max_payload.load(Ordering::Relaxed),
        }
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(H_WIRE, remote::wire_version().to_string().as_str());
        h.insert(H_FROM, self.cfg.host.as_str());
        h
    }

    fn take(&self, n: u64) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&n)
    }
}

/// The gateway actor: one per host, registered under [`GATEWAY_NAME`]. Start it with
/// [`start_gateway`], or put [`gateway_child`] in a supervisor. It runs a tokio runtime
/// of its own in its process; a restart keeps the host's epoch (refs stay valid) and
/// reconnects.
#[derive(Actor)]
#[actor(
    name = "procession.nats.Gateway",
    args = GatewayConfig,
    handles(Forward, ForwardAsk, SpawnOn, WhereIs, Info, Status)
)]
pub struct Gateway {
    shared: Arc<Shared>,
    jobs: tokio::sync::mpsc::Sender<Job>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Actor for Gateway {
    type Args = GatewayConfig;

    fn create(cfg: GatewayConfig, cx: &mut Context<Self>) -> Result<Self, BoxError> {
        cfg.check()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("procession-gateway")
            .enable_all()
            .build()?;
        // A restarted gateway keeps the epoch of the runtime it serves.
        let epoch = match remote::this_host() {
            Some(id) if id.cluster == cfg.cluster && id.host == cfg.host => id.epoch,
            _ => random_epoch()?,
        };
        let slow = Arc::new(AtomicU64::new(0));
        let (client, connected) = rt.block_on(connect(&cfg, slow.clone()))?;
        let max_payload = client.server_info().max_payload as u64;
        let shared = Arc::new(Shared {
            cfg,
            epoch,
            client,
            connected: AtomicBool::new(false),
            max_payload: AtomicU64::new(if max_payload > 0 {
                max_payload
            } else {
                1 << 20
            }),
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            slow,
        });
        remote::publish_host(&shared.identity())?;
        let sub = rt.block_on(
            shared
                .client
                .subscribe(format!("{}.>", shared.cfg.prefix(&shared.cfg.host))),
        )?;
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let (inbound_tx, inbound_rx) = crossbeam_channel::bounded::<Inbound>(4096);
        rt.spawn(publisher(shared.clone(), rx));
        rt.spawn(receiver(shared.clone(), sub, inbound_tx));
        rt.spawn(watch_connection(shared.clone(), connected));
        let handle = rt.handle().clone();
        let s = shared.clone();
        std::thread::Builder::new()
            .name("procession-gateway-deliver".into())
            .spawn(move || deliverer(s, handle, inbound_rx))?;
        match procession::register(GATEWAY_NAME, &cx.myself()) {
            Ok(()) => {}
            Err(procession::Error::NameTaken(_))
                if procession::whereis::<Gateway>(GATEWAY_NAME)
                    .is_some_and(|g| g == cx.myself()) => {}
            Err(e) => return Err(format!("cannot register as {GATEWAY_NAME}: {e}").into()),
        }
        tracing::info!(host = %shared.cfg.host, cluster = %shared.cfg.cluster, epoch = format_args!("{epoch:x}"), "gateway up");
        Ok(Gateway {
            shared,
            jobs: tx,
            rt: Some(rt),
        })
    }

    fn stopping(&mut self, _cx: &mut Context<Self>) {
        for (_, p) in self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            p.fail(RemoteError::Disconnected);
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }
}

fn random_epoch() -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut b)?;
    Ok(u64::from_le_bytes(b) | 1)
}

/// Connects with retries in the background: the gateway comes up with the server down and
/// connects when it is back. The channel says when the connection comes and goes.
async fn connect(
    cfg: &GatewayConfig,
    dropped: Arc<AtomicU64>,
) -> Result<
    (
        async_nats::Client,
        tokio::sync::mpsc::UnboundedReceiver<bool>,
    ),
    BoxError,
> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut opts = async_nats::ConnectOptions::new()
        // Core NATS has no backpressure: a subscriber that falls behind by this many
        // messages loses the next ones (a "slow consumer"), which is counted and logged.
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .name(format!("procession-gateway {}/{}", cfg.cluster, cfg.host))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempt| Duration::from_millis((50 * attempt as u64).min(1000)))
        .connection_timeout(Duration::from_secs(2))
        .event_callback(move |event| {
            let tx = tx.clone();
            let dropped = dropped.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        let _ = tx.send(true);
                    }
                    async_nats::Event::Disconnected => {
                        let _ = tx.send(false);
                    }
                    async_nats::Event::SlowConsumer(sid) => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(sid, "messages from other hosts were dropped: this gateway fell behind (slow consumer)");
                    }
                    other => tracing::debug!(event = %other, "nats event"),
                }
            }
        });
    if let Some(t) = &cfg.token {
        opts = opts.token(t.clone());
    }
    if let Some((u, p)) = &cfg.user_password {
        opts = opts.user_and_password(u.clone(), p.clone());
    }
    if let Some(f) = &cfg.credentials_file {
        opts = opts.credentials_file(f.clone()).await?;
    }
    if let Some(tls) = &cfg.tls {
        opts = opts.require_tls(true);
        for ca in &tls.root_certificates {
            opts = opts.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &tls.client_cert {
            opts = opts.add_client_certificate(cert.clone(), key.clone());
        }
    }
    let client = opts.connect(cfg.url.as_str()).await?;
    Ok((client, rx))
}

/// Follows the connection's state, and republishes the host identity with the server's
/// `max_payload` once connected.
async fn watch_connection(
    shared: Arc<Shared>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<bool>,
) {
    if shared.client.connection_state() == async_nats::connection::State::Connected {
        shared.connected.store(true, Ordering::Relaxed);
    }
    while let Some(up) = events.recv().await {
        shared.connected.store(up, Ordering::Relaxed);
        if up {
            let max = shared.client.server_info().max_payload as u64;
            if max > 0 && max != shared.max_payload.swap(max, Ordering::Relaxed) {
                if let Err(e) = remote::publish_host(&shared.identity()) {
                    tracing::warn!(error = %e, "cannot republish the host identity");
                }
            }
            tracing::info!(host = %shared.cfg.host, "gateway connected");
        } else {
            tracing::warn!(host = %shared.cfg.host, "gateway disconnected; reconnecting");
            // What waits for a reply over the lost connection will not get it.
            let lost: Vec<Pending> = shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain()
                .map(|(_, p)| p)
                .collect();
            for p in lost {
                p.fail(RemoteError::Disconnected);
            }
        }
    }
}

fn is_connected(shared: &Shared) -> bool {
    shared.connected.load(Ordering::Relaxed)
        || shared.client.connection_state() == async_nats::connection::State::Connected
}

/// Publishes jobs in the order they came, one at a time: a sender's tells and asks leave
/// this host in its order.
async fn publisher(shared: Arc<Shared>, mut jobs: tokio::sync::mpsc::Receiver<Job>) {
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Tell { to, frame } => {
                if !is_connected(&shared) {
                    shared.undelivered.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(host = %to.host, actor = %to.actor, "remote tell dropped: the gateway is not connected");
                    continue;
                }
                let subject = format!("{}.mb.{:x}", shared.cfg.prefix(&to.host), to.mailbox);
                let mut h = shared.headers();
                h.insert(H_EPOCH, format!("{:x}", to.epoch).as_str());
                h.insert(H_ACTOR, to.actor.as_str());
                match shared
                    .client
                    .publish_with_headers(subject, h, Bytes::from(frame))
                    .await
                {
                    Ok(()) => {
                        shared.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        shared.undelivered.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, host = %to.host, "remote tell not published");
                    }
                }
            }
            Job::Request {
                host,
                suffix,
                headers,
                body,
                timeout,
                pending,
            } => {
                if !is_connected(&shared) {
                    pending.fail(RemoteError::Disconnected);
                    continue;
                }
                let max = shared.max_payload.load(Ordering::Relaxed);
                if body.len() as u64 > max {
                    pending.fail(RemoteError::TooLarge {
                        len: body.len() as u64,
                        max,
                    });
                    continue;
                }
                let n = shared.next.fetch_add(1, Ordering::Relaxed);
                shared
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(n, pending);
                let subject = format!("{}.{suffix}", shared.cfg.prefix(&host));
                let reply = format!("{}.reply.{n:x}", shared.cfg.prefix(&shared.cfg.host));
                let published = shared
                    .client
                    .publish_with_reply_and_headers(subject, reply, headers, Bytes::from(body))
                    .await;
                match published {
                    Ok(()) => {
                        shared.sent.fetch_add(1, Ordering::Relaxed);
                        let s = shared.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(timeout).await;
                            if let Some(p) = s.take(n) {
                                p.fail(RemoteError::Timeout(timeout));
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, host = %host, "remote request not published");
                        if let Some(p) = shared.take(n) {
                            p.fail(RemoteError::Disconnected);
                        }
                    }
                }
            }
        }
    }
}

/// An ask or tell from another host, for the delivering thread.
struct Inbound {
    mailbox: u64,
    actor: String,
    frame: Bytes,
    reply: Option<async_nats::Subject>,
    ask: bool,
}

fn header<'a>(msg: &'a async_nats::Message, name: &str) -> Option<&'a str> {
    msg.headers.as_ref()?.get(name).map(|v| v.as_str())
}

/// Reads everything addressed to this host, checks it, and routes it.
async fn receiver(
    shared: Arc<Shared>,
    mut sub: async_nats::Subscriber,
    inbound: crossbeam_channel::Sender<Inbound>,
) {
    let prefix = format!("{}.", shared.cfg.prefix(&shared.cfg.host));
    while let Some(msg) = sub.next().await {
        let Some(rest) = msg
            .subject
            .as_str()
            .strip_prefix(&prefix)
            .map(str::to_string)
        else {
            continue;
        };
        if let Some(n) = rest.strip_prefix("reply.") {
            on_reply(&shared, n, msg);
            continue;
        }
        // Everything else is a request from another host: untrusted.
        if let Err(e) = check_request(&shared, &msg) {
            refuse(&shared, &msg, e);
            continue;
        }
        if let Some(id) = rest.strip_prefix("mb.") {
            let Ok(mailbox) = u64::from_str_radix(id, 16) else {
                refuse(
                    &shared,
                    &msg,
                    RemoteError::BadInput(format!("bad mailbox id {id:?}")),
                );
                continue;
            };
            let actor = header(&msg, H_ACTOR).unwrap_or("").to_string();
            let ask = msg.payload.get(5) == Some(&2);
            let item = Inbound {
                mailbox,
                actor,
                frame: msg.payload.clone(),
                reply: msg.reply.clone(),
                ask,
            };
            if inbound.send(item).is_err() {
                return;
            }
        } else if rest == "spawn" {
            let s = shared.clone();
            tokio::task::spawn_blocking(move || {
                let r = procession::wire::decode_body::<SpawnRequest>(&msg.payload, "SpawnRequest")
                    .map_err(|e| RemoteError::BadInput(e.to_string()))
                    .and_then(|req| remote::spawn_local(&req.actor, req.args));
                respond_value(&s, msg.reply.clone(), r);
            });
        } else if rest == "whereis" {
            let name = String::from_utf8_lossy(&msg.payload).to_string();
            let r: Result<Option<RemoteAddr>, RemoteError> = Ok(remote::lookup_local(&name));
            respond_value(&shared, msg.reply.clone(), r);
        } else if rest == "info" {
            let info = HostInfo {
                host: shared.cfg.host.clone(),
                epoch: shared.epoch,
                wire_version: remote::wire_version(),
                actor_types: remote::actor_types(),
            };
            respond_value(&shared, msg.reply.clone(), Ok::<_, RemoteError>(info));
        } else {
            refuse(
                &shared,
                &msg,
                RemoteError::BadInput(format!("no such subject {rest:?}")),
            );
        }
    }
}

fn refuse(shared: &Shared, msg: &async_nats::Message, e: RemoteError) {
    shared.refused.fetch_add(1, Ordering::Relaxed);
    let from = header(msg, H_FROM).unwrap_or("?");
    tracing::warn!(error = %e, from, subject = %msg.subject, "input from another host refused");
    respond(shared, msg.reply.clone(), Err(e));
}

/// The version and (for a mailbox) the epoch of a request.
fn check_request(shared: &Shared, msg: &async_nats::Message) -> Result<(), RemoteError> {
    let from = header(msg, H_FROM).unwrap_or("?").to_string();
    let theirs = header(msg, H_WIRE)
        .and_then(|v| v.parse::<u8>().ok())
        .unwrap_or(0);
    if theirs != remote::wire_version() {
        return Err(RemoteError::VersionMismatch {
            host: from,
            ours: remote::wire_version(),
            theirs,
        });
    }
    if msg.subject.as_str().contains(".mb.") {
        let epoch = header(msg, H_EPOCH).and_then(|v| u64::from_str_radix(v, 16).ok());
        if epoch != Some(shared.epoch) {
            return Err(RemoteError::StaleRef {
                host: shared.cfg.host.clone(),
                epoch: epoch.unwrap_or(0),
                current: shared.epoch,
            });
        }
    }
    Ok(())
}

/// Sends `r` (a reply frame, or an error) to `reply`, if the request wants one.
fn respond(shared: &Shared, reply: Option<async_nats::Subject>, r: Result<Vec<u8>, RemoteError>) {
    let Some(reply) = reply else { return };
    let mut h = shared.headers();
    let body = match r {
        Ok(frame) => {
            h.insert(H_STATUS, "ok");
            frame
        }
        Err(e) => {
            h.insert(H_STATUS, "err");
            let mut b = Vec::new();
            if procession::wire::encode_body(&e, &mut b).is_err() {
                return;
            }
            b
        }
    };
    let max = shared.max_payload.load(Ordering::Relaxed);
    let (h, body) = if body.len() as u64 > max {
        // Never a reply that the server drops: the asker hears why instead.
        let mut h = shared.headers();
        h.insert(H_STATUS, "err");
        let mut b = Vec::new();
        let e = RemoteError::TooLarge {
            len: body.len() as u64,
            max,
        };
        if procession::wire::encode_body(&e, &mut b).is_err() {
            return;
        }
        (h, b)
    } else {
        (h, body)
    };
    let client = shared.client.clone();
    // Replies need no order among themselves.
    tokio::runtime::Handle::current().spawn(async move {
        if let Err(e) = client
            .publish_with_headers(reply, h, Bytes::from(body))
            .await
        {
            tracing::debug!(error = %e, "reply not published");
        }
    });
}

fn respond_value<T: Serialize>(
    shared: &Shared,
    reply: Option<async_nats::Subject>,
    r: Result<T, RemoteError>,
) {
    let r = r.and_then(|v| {
        let mut b = Vec::new();
        procession::wire::encode_body(&v, &mut b)
            .map_err(|e| RemoteError::BadInput(e.to_string()))?;
        Ok(b)
    });
    respond(shared, reply, r);
}

/// A reply to one of this host's requests. It came from another host: untrusted.
fn on_reply(shared: &Shared, n: &str, msg: async_nats::Message) {
    let Some(pending) = u64::from_str_radix(n, 16).ok().and_then(|n| shared.take(n)) else {
        return; // late (timed out), or not ours
    };
    if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
        let host = msg.subject.as_str().to_string();
        let host = match &pending {
            Pending::Spawn(_, h) => h.clone(),
            _ => host,
        };
        pending.fail(RemoteError::HostUnreachable { host });
        return;
    }
    let from = header(&msg, H_FROM).unwrap_or("?").to_string();
    let theirs = header(&msg, H_WIRE)
        .and_then(|v| v.parse::<u8>().ok())
        .unwrap_or(0);
    if theirs != remote::wire_version() {
        shared.refused.fetch_add(1, Ordering::Relaxed);
        pending.fail(RemoteError::VersionMismatch {
            host: from,
            ours: remote::wire_version(),
            theirs,
        });
        return;
    }
    let body: &[u8] = &msg.payload;
    if header(&msg, H_STATUS) == Some("err") {
        let e =
            procession::wire::decode_body::<RemoteError>(body, "RemoteError").unwrap_or_else(|e| {
                RemoteError::BadInput(format!("an error reply that does not decode: {e}"))
            });
        pending.fail(e);
        return;
    }
    fn decode<T: serde::de::DeserializeOwned>(
        b: &[u8],
        what: &'static str,
    ) -> Result<T, RemoteError> {
        procession::wire::decode_body(b, what).map_err(|e| RemoteError::BadInput(e.to_string()))
    }
    let _ = match pending {
        Pending::Ask(t) => t.reply(Ok(ByteBuf::from(body.to_vec()))),
        Pending::Spawn(t, _) => t.reply(decode::<RemoteAddr>(body, "RemoteAddr")),
        Pending::WhereIs(t) => t.reply(decode::<Option<RemoteAddr>>(body, "Option<RemoteAddr>")),
        Pending::Info(t) => t.reply(decode::<HostInfo>(body, "HostInfo")),
    };
}

/// The thread that puts what came from other hosts into local mailboxes, in the order it
/// came: tells and the sending of asks (whose replies are awaited on other threads).
fn deliverer(
    shared: Arc<Shared>,
    rt: tokio::runtime::Handle,
    inbound: crossbeam_channel::Receiver<Inbound>,
) {
    let timeout = shared.cfg.deliver_timeout;
    for item in inbound {
        if item.ask {
            match remote::start_ask(item.mailbox, &item.actor, &item.frame, timeout) {
                Ok(ask) => {
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                    let s = shared.clone();
                    let reply = item.reply;
                    let h = rt.clone();
                    rt.spawn_blocking(move || {
                        let r = ask.wait();
                        let _g = h.enter();
                        respond(&s, reply, r);
                    });
                }
                Err(e) => {
                    if matches!(e, RemoteError::BadInput(_)) {
                        shared.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    let _g = rt.enter();
                    respond(&shared, item.reply, Err(e));
                }
            }
        } else {
            match remote::deliver(item.mailbox, &item.actor, &item.frame, timeout) {
                Ok(()) => {
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    if matches!(e, RemoteError::BadInput(_)) {
                        shared.refused.fetch_add(1, Ordering::Relaxed);
                    } else {
                        shared.undelivered.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::warn!(error = %e, actor = %item.actor, "a tell from another host was not delivered");
                    let _g = rt.enter();
                    respond(&shared, item.reply, Err(e));
                }
            }
        }
    }
}

impl Gateway {
    fn queue(&self, job: Job) {
        if let Err(tokio::sync::mpsc::error::SendError(job)) = self.jobs.blocking_send(job) {
            match job {
                Job::Tell { to, .. } => {
                    self.shared.undelivered.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(host = %to.host, "remote tell dropped: the gateway is stopping");
                }
                Job::Request { pending, .. } => pending.fail(RemoteError::Disconnected),
            }
        }
    }

    fn request(
        &self,
        host: &str,
        suffix: String,
        headers: HeaderMap,
        body: Vec<u8>,
        timeout: Duration,
        pending: Pending,
    ) {
        self.queue(Job::Request {
            host: host.to_string(),
            suffix,
            headers,
            body,
            timeout,
            pending,
        });
    }
}

impl Handler<Forward> for Gateway {
    fn handle(&mut self, m: Forward, _cx: &mut Context<Self>) {
        self.queue(Job::Tell {
            to: m.to,
            frame: m.frame.into_vec(),
        });
    }
}

impl Handler<ForwardAsk> for Gateway {
    fn handle(&mut self, m: ForwardAsk, cx: &mut Context<Self>) -> Result<ByteBuf, RemoteError> {
        let Some(token) = cx.reply_later::<ForwardAsk>() else {
            return Err(RemoteError::Unsupported(
                "a ForwardAsk told, not asked".into(),
            ));
        };
        let mut h = self.shared.headers();
        h.insert(H_EPOCH, format!("{:x}", m.to.epoch).as_str());
        h.insert(H_ACTOR, m.to.actor.as_str());
        let suffix = format!("mb.{:x}", m.to.mailbox);
        self.request(
            &m.to.host,
            suffix,
            h,
            m.frame.into_vec(),
            m.timeout,
            Pending::Ask(token),
        );
        Err(RemoteError::Disconnected) // not sent: the token answers
    }
}

impl Handler<SpawnOn> for Gateway {
    fn handle(&mut self, m: SpawnOn, cx: &mut Context<Self>) -> Result<RemoteAddr, RemoteError> {
        let Some(token) = cx.reply_later::<SpawnOn>() else {
            return Err(RemoteError::Unsupported("a SpawnOn told, not asked".into()));
        };
        let mut body = Vec::new();
        let req = SpawnRequest {
            actor: m.actor,
            args: m.args.into_vec(),
        };
        if let Err(e) = procession::wire::encode_body(&req, &mut body) {
            let _ = token.reply(Err(RemoteError::BadInput(e.to_string())));
            return Err(RemoteError::Disconnected);
        }
        let h = self.shared.headers();
        self.request(
            &m.host,
            "spawn".into(),
            h,
            body,
            m.timeout,
            Pending::Spawn(token, m.host.clone()),
        );
        Err(RemoteError::Disconnected) // not sent: the token answers
    }
}

impl Handler<WhereIs> for Gateway {
    fn handle(
        &mut self,
        m: WhereIs,
        cx: &mut Context<Self>,
    ) -> Result<Option<RemoteAddr>, RemoteError> {
        let Some(token) = cx.reply_later::<WhereIs>() else {
            return Err(RemoteError::Unsupported("a WhereIs told, not asked".into()));
        };
        let h = self.shared.headers();
        self.request(
            &m.host,
            "whereis".into(),
            h,
            m.name.into_bytes(),
            m.timeout,
            Pending::WhereIs(token),
        );
        Err(RemoteError::Disconnected) // not sent: the token answers
    }
}

impl Handler<Info> for Gateway {
    fn handle(&mut self, m: Info, cx: &mut Context<Self>) -> Result<HostInfo, RemoteError> {
        let Some(token) = cx.reply_later::<Info>() else {
            return Err(RemoteError::Unsupported("an Info told, not asked".into()));
        };
        let h = self.shared.headers();
        self.request(
            &m.host,
            "info".into(),
            h,
            Vec::new(),
            m.timeout,
            Pending::Info(token),
        );
        Err(RemoteError::Disconnected) // not sent: the token answers
    }
}

impl Handler<Status> for Gateway {
    fn handle(&mut self, _: Status, _cx: &mut Context<Self>) -> GatewayStatus {
        let s = &self.shared;
        GatewayStatus {
            connected: is_connected(s),
            epoch: s.epoch,
            max_payload: s.max_payload.load(Ordering::Relaxed),
            sent: s.sent.load(Ordering::Relaxed),
            delivered: s.delivered.load(Ordering::Relaxed),
            undelivered: s.undelivered.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            slow_consumer: s.slow.load(Ordering::Relaxed),
        }
    }
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

fn via_gateway() -> procession::Result<ActorRef<Gateway>> {
    gateway().ok_or(procession::Error::Remote(RemoteError::NoGateway))
}

fn flatten<T>(
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
