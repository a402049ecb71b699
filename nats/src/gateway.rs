//! The gateway actor and the tasks of its process: the publisher (one task, so that a
//! sender's messages leave in order), the receiver (everything addressed to this host,
//! checked as untrusted input), the delivering thread (frames into local mailboxes, in
//! the order they came), heartbeats, and the lease checker that turns a silent host into
//! `HostLost` for its monitors.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use procession::prelude::*;
use procession::remote::{
    self, Demonitor, Forward, ForwardAsk, HostIdentity, Link, Monitor, RemoteAddr, RemoteError,
    SpawnOn, Terminate, Unlink, GATEWAY_NAME,
};
use procession::{Down, ReplyToken};

use crate::durable::{DurableOptions, DurablePublish, ServeDurable};
use crate::envelope::{self, Kind};
use crate::{
    GatewayConfig, GatewayStatus, HostInfo, Info, RegisterGlobal, Status, UnregisterGlobal,
    WhereIs, WhereIsGlobal, NAME_TAKEN,
};

/// How many messages from other hosts may wait in this gateway's subscription. Core NATS
/// has no backpressure: past this, the client drops messages (a "slow consumer"), which
/// is counted and logged.
const SUBSCRIPTION_CAPACITY: usize = 1 << 18;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn cbor<T: Serialize>(v: &T) -> Result<Vec<u8>, RemoteError> {
    let mut b = Vec::new();
    procession::wire::encode_body(v, &mut b).map_err(|e| RemoteError::BadInput(e.to_string()))?;
    Ok(b)
}

fn uncbor<T: serde::de::DeserializeOwned>(b: &[u8], what: &'static str) -> Result<T, RemoteError> {
    procession::wire::decode_body(b, what).map_err(|e| RemoteError::BadInput(e.to_string()))
}

/// The body of a spawn request.
#[derive(Serialize, Deserialize)]
struct SpawnRequest {
    actor: String,
    args: ByteBuf,
    #[serde(default)]
    capacity: Option<u32>,
    #[serde(default)]
    limits: procession::Limits,
}

/// The body of a terminate request: stop mailbox `mailbox` (of the type with id
/// `actor`, in the receiving host's epoch `epoch`) by `shutdown`, answer with its exit.
#[derive(Serialize, Deserialize)]
struct TerminateRequest {
    mailbox: u64,
    actor: u64,
    epoch: u64,
    shutdown: procession::supervisor::Shutdown,
}

/// The body of a monitor or demonitor request: host `from` watches mailbox `mailbox`
/// (of the type with id `actor`) of the receiving host's epoch `epoch`.
#[derive(Serialize, Deserialize)]
struct WatchRequest {
    from: String,
    mailbox: u64,
    actor: u64,
    epoch: u64,
    /// For a link: the linked actor on the requesting host (its mailbox and type).
    #[serde(default)]
    link: Option<(u64, String)>,
}

/// The exit of an actor linked with one on the receiving host: `target` (of epoch
/// `epoch` there) gets it.
#[derive(Serialize, Deserialize)]
struct LinkExit {
    from: String,
    target: u64,
    epoch: u64,
    exited: procession::Exited,
}

/// Undoes a link: `from`'s actor `local` no longer links with `target`.
#[derive(Serialize, Deserialize)]
struct UnlinkRequest {
    from: String,
    target: u64,
    local: u64,
}

/// A link from a local actor to one of another host: that host, its epoch, the mailbox.
type OutLink = (String, u64, u64);

/// A link from another host to a local actor: the host, its epoch, its actor's mailbox
/// and type.
#[derive(Clone, PartialEq, Eq, Hash)]
struct InLink {
    host: String,
    epoch: u64,
    local: u64,
    actor: String,
}

/// The body of a down notice: an actor of `host` (epoch `epoch`) exited.
#[derive(Serialize, Deserialize)]
struct RemoteDown {
    host: String,
    epoch: u64,
    down: Down,
}

/// What waits for a reply from another host.
enum Pending {
    Ask(ReplyToken<Result<ByteBuf, RemoteError>>),
    Spawn(ReplyToken<Result<RemoteAddr, RemoteError>>),
    WhereIs(ReplyToken<Result<Option<RemoteAddr>, RemoteError>>),
    Info(ReplyToken<Result<HostInfo, RemoteError>>),
    Terminate(ReplyToken<Result<Exit, RemoteError>>),
    /// A monitor's registration there; on failure its watchers get their `Down` now.
    Monitor(RemoteAddr),
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
        body: Vec<u8>,
        timeout: Duration,
        pending: Pending,
    },
    Publish {
        subject: String,
        payload: Vec<u8>,
    },
}

/// Who watches an actor of another host, here.
struct Watched {
    actor: String,
    watchers: Vec<u64>,
    /// Local actors linked with it: their mailboxes and types.
    links: Vec<(u64, String)>,
}

impl Watched {
    /// Gives its watchers their `Down` and its linked actors their exit signal.
    fn fire(self, down: &Down) {
        for watcher in self.watchers {
            remote::notify_down(watcher, down);
        }
        let exited = procession::Exited {
            id: down.id,
            actor: down.actor.clone(),
            pid: down.pid,
            exit: down.exit.clone(),
        };
        for (local, _) in self.links {
            remote::link_exit(local, &exited);
        }
    }
}

/// When a host was last heard from, and in which epoch.
#[derive(Clone, Copy)]
struct Seen {
    epoch: u64,
    at: Instant,
    /// Its gateway's run (a new one after a restart of that gateway).
    run: u64,
}

/// State shared by the gateway's handlers and tasks.
pub(crate) struct Shared {
    cfg: GatewayConfig,
    epoch: u64,
    /// This gateway process's run: random, new at each start, in its heartbeats, so that
    /// other hosts know it lost what it held for them and register their monitors again.
    run: u64,
    /// This gateway's mailbox: the watcher of local actors monitored from other hosts.
    mailbox: u64,
    client: async_nats::Client,
    connected: AtomicBool,
    max_payload: AtomicU64,
    /// Requests waiting for their replies: the host asked, and when.
    pending: Mutex<HashMap<u64, (String, Pending, Instant)>>,
    next: AtomicU64,
    sent: AtomicU64,
    delivered: AtomicU64,
    undelivered: AtomicU64,
    refused: AtomicU64,
    slow: Arc<AtomicU64>,
    /// Frames from other hosts waiting for the delivering thread.
    backlog: std::sync::atomic::AtomicUsize,
    /// Heartbeats: host → when last heard.
    seen: Mutex<HashMap<String, Seen>>,
    /// Monitors of actors of other hosts: (host, epoch) → mailbox → watchers here.
    watches: Mutex<HashMap<(String, u64), HashMap<u64, Watched>>>,
    /// `watches` changed since it was last saved ([`save_watches`]).
    watches_dirty: AtomicBool,
    /// Local actors monitored from other hosts: mailbox → hosts.
    watched: Mutex<HashMap<u64, HashSet<String>>>,
    /// Local actors linked with actors of other hosts, seen from here: local mailbox →
    /// (host, epoch, its mailbox).
    out_links: Mutex<HashMap<u64, Vec<OutLink>>>,
    /// Links from actors of other hosts to local ones: local mailbox → those actors.
    in_links: Mutex<HashMap<u64, HashSet<InLink>>>,
    /// The cluster's registry, once opened.
    names: tokio::sync::OnceCell<async_nats::jetstream::kv::Store>,
    /// Names this host holds in the registry: mailbox → (name, revision).
    owned: Mutex<HashMap<u64, Vec<(String, u64)>>>,
    /// When this gateway started: a host not heard from yet counts as up for one lease.
    started: Instant,
    /// The stream of the cluster's durable mailboxes, once opened.
    durable: tokio::sync::OnceCell<async_nats::jetstream::stream::Stream>,
    durable_acked: AtomicU64,
    durable_redelivered: AtomicU64,
    durable_poisoned: AtomicU64,
}

impl Shared {
    /// The monitors of actors of other hosts, to change: they are saved soon after.
    fn watches_mut(&self) -> MutexGuard<'_, HashMap<(String, u64), HashMap<u64, Watched>>> {
        self.watches_dirty.store(true, Ordering::Release);
        lock(&self.watches)
    }

    fn identity(&self) -> HostIdentity {
        HostIdentity {
            cluster: self.cfg.cluster.clone(),
            host: self.cfg.host.clone(),
            epoch: self.epoch,
            max_payload: self.max_payload.load(Ordering::Relaxed),
        }
    }

    fn take(&self, n: u64) -> Option<(String, Pending)> {
        lock(&self.pending).remove(&n).map(|(h, p, _)| (h, p))
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
            || self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Gives every watcher of `targets` (actors of `host`) its `Down` with `exit`.
    fn fire(&self, host: &str, targets: HashMap<u64, Watched>, exit: &Exit) {
        for (id, w) in targets {
            let down = Down {
                id,
                actor: w.actor.clone(),
                pid: 0,
                exit: exit.clone(),
            };
            w.fire(&down);
        }
        tracing::debug!(host, %exit, "remote monitors fired");
    }

    /// The monitors of `to` end now with `exit` (its registration failed).
    fn fail_watch(&self, to: &RemoteAddr, exit: Exit) {
        let w = self
            .watches_mut()
            .get_mut(&(to.host.clone(), to.epoch))
            .and_then(|t| t.remove(&to.mailbox));
        if let Some(w) = w {
            self.fire(&to.host, HashMap::from([(to.mailbox, w)]), &exit);
        }
    }

    fn fail(&self, host: &str, p: Pending, e: RemoteError) {
        let _ = match p {
            Pending::Ask(t) => t.reply(Err(e)),
            Pending::Spawn(t) => t.reply(Err(e)),
            Pending::WhereIs(t) => t.reply(Err(e)),
            Pending::Info(t) => t.reply(Err(e)),
            Pending::Terminate(t) => t.reply(Err(e)),
            Pending::Monitor(to) => {
                let exit = match e {
                    RemoteError::NoSuchActor { .. } => Exit::Failed(format!("noproc: {e}")),
                    _ => Exit::HostLost {
                        host: host.to_string(),
                    },
                };
                self.fail_watch(&to, exit);
                Ok(())
            }
        };
    }

    /// Sends `r` (a reply body, or an error) to `reply`, if the request wants one, from
    /// a task of the runtime (it spawns the publish).
    fn respond(&self, reply: Option<async_nats::Subject>, r: Result<Vec<u8>, RemoteError>) {
        let Some(reply) = reply else { return };
        let payload = self.reply_payload(r);
        let client = self.client.clone();
        // Replies need no order among themselves.
        tokio::runtime::Handle::current().spawn(async move {
            if let Err(e) = client.publish(reply, Bytes::from(payload)).await {
                tracing::debug!(error = %e, "reply not published");
            }
        });
    }

    /// As [`respond`](Self::respond), from a thread outside the runtime's workers (the
    /// delivering thread, a blocking task): it publishes in place, one hand-off fewer.
    fn respond_blocking(
        &self,
        reply: Option<async_nats::Subject>,
        r: Result<Vec<u8>, RemoteError>,
    ) {
        let Some(reply) = reply else { return };
        let payload = self.reply_payload(r);
        let publish = self.client.publish(reply, Bytes::from(payload));
        if let Err(e) = tokio::runtime::Handle::current().block_on(publish) {
            tracing::debug!(error = %e, "reply not published");
        }
    }

    /// The reply message for `r`, within the server's `max_payload`.
    fn reply_payload(&self, r: Result<Vec<u8>, RemoteError>) -> Vec<u8> {
        let max = self.max_payload.load(Ordering::Relaxed) as usize;
        match r {
            Ok(body) if body.len() + envelope::LEN <= max => {
                envelope::build(Kind::Ok, self.epoch, self.run, &body)
            }
            // Never a reply that the server drops: the asker hears why instead.
            Ok(body) => self.error_reply(RemoteError::TooLarge {
                len: (body.len() + envelope::LEN) as u64,
                max: max as u64,
            }),
            Err(e) => self.error_reply(e),
        }
    }

    fn error_reply(&self, e: RemoteError) -> Vec<u8> {
        let body = cbor(&e).unwrap_or_default();
        envelope::build(Kind::Err, self.epoch, self.run, &body)
    }

    fn respond_value<T: Serialize>(
        &self,
        reply: Option<async_nats::Subject>,
        r: Result<T, RemoteError>,
    ) {
        self.respond(reply, r.and_then(|v| cbor(&v)));
    }

    fn refuse(&self, subject: &str, reply: Option<async_nats::Subject>, e: RemoteError) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, subject, "input from another host refused");
        self.respond(reply, Err(e));
    }
}

/// The gateway actor: one per host, registered under [`GATEWAY_NAME`]. Start it with
/// [`start_gateway`](crate::start_gateway), or put [`gateway_child`](crate::gateway_child)
/// in a supervisor. It runs a tokio runtime of its own in its process; a restart keeps the
/// host's epoch (refs stay valid) and reconnects. The monitors and links it holds of
/// actors of other hosts are saved in the runtime directory and registered again by its
/// next run; its heartbeats carry a run id, so other hosts register theirs again too.
#[derive(Actor)]
#[actor(
    name = "procession.nats.Gateway",
    args = GatewayConfig,
    handles(
        Forward,
        ForwardAsk,
        SpawnOn,
        Terminate,
        Monitor,
        Demonitor,
        Down,
        WhereIs,
        Info,
        Status,
        RegisterGlobal,
        WhereIsGlobal,
        UnregisterGlobal,
        DurablePublish,
        ServeDurable,
        Link,
        Unlink
    )
)]
pub struct Gateway {
    shared: Arc<Shared>,
    /// To the publisher task, in the order the mailbox gave the jobs.
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
            run: random_epoch()?,
            mailbox: cx.myself().id(),
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
            backlog: std::sync::atomic::AtomicUsize::new(0),
            seen: Mutex::new(HashMap::new()),
            watches: Mutex::new(HashMap::new()),
            watches_dirty: AtomicBool::new(false),
            watched: Mutex::new(HashMap::new()),
            out_links: Mutex::new(HashMap::new()),
            in_links: Mutex::new(HashMap::new()),
            names: tokio::sync::OnceCell::new(),
            owned: Mutex::new(HashMap::new()),
            started: Instant::now(),
            durable: tokio::sync::OnceCell::new(),
            durable_acked: AtomicU64::new(0),
            durable_redelivered: AtomicU64::new(0),
            durable_poisoned: AtomicU64::new(0),
        });
        remote::publish_host(&shared.identity())?;
        let mine = shared.cfg.prefix(&shared.cfg.host);
        let sub = rt.block_on(shared.client.subscribe(format!("{mine}.>")))?;
        let beats = rt.block_on(
            shared
                .client
                .subscribe(format!("proc.{}.hb.*", shared.cfg.cluster)),
        )?;
        let (jobs, jobs_rx) = tokio::sync::mpsc::channel(4096);
        rt.spawn(publisher(shared.clone(), jobs_rx));
        // What an earlier run of this gateway held for local actors: its monitors and
        // links of actors of other hosts. They are registered again there (a host that
        // holds one already says so; one whose actor exited meanwhile sends its Down).
        let saved = load_watches();
        let mut again = Vec::new();
        for w in saved {
            let to = w.to;
            {
                let mut watches = shared.watches_mut();
                let targets = watches.entry((to.host.clone(), to.epoch)).or_default();
                targets.insert(
                    to.mailbox,
                    Watched {
                        actor: to.actor.clone(),
                        watchers: w.watchers.clone(),
                        links: w.links.clone(),
                    },
                );
            }
            lock(&shared.seen).entry(to.host.clone()).or_insert(Seen {
                epoch: to.epoch,
                at: Instant::now(),
                run: 0,
            });
            if !w.watchers.is_empty() {
                again.push((to.clone(), None));
            }
            for (local, actor) in w.links {
                // The other way: this gateway tells that host when the local actor exits.
                // (Its watch of the local actor is in the actor's mailbox still, and a
                // Down that came meanwhile waits in this gateway's mailbox.)
                lock(&shared.out_links).entry(local).or_default().push((
                    to.host.clone(),
                    to.epoch,
                    to.mailbox,
                ));
                again.push((to.clone(), Some((local, actor))));
            }
        }
        if !again.is_empty() {
            rt.spawn(register_again(shared.clone(), again));
        }
        rt.spawn(saver(shared.clone()));
        let (inbound_tx, inbound_rx) = crossbeam_channel::bounded::<Inbound>(4096);
        rt.spawn(receiver(shared.clone(), sub, inbound_tx));
        rt.spawn(heartbeats(shared.clone(), beats));
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
            jobs,
            rt: Some(rt),
        })
    }

    fn stopping(&mut self, _cx: &mut Context<Self>) {
        let pending: Vec<_> = lock(&self.shared.pending)
            .drain()
            .map(|(_, (h, p, _))| (h, p))
            .collect();
        for (host, p) in pending {
            self.shared.fail(&host, p, RemoteError::Disconnected);
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
/// connects when it is back. The channel says when the connection comes and goes;
/// `dropped` counts slow-consumer events.
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
        .name(format!("procession-gateway {}/{}", cfg.cluster, cfg.host))
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempt| {
            Duration::from_millis((50 * attempt as u64).min(1000))
        })
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
            let lost: Vec<_> = lock(&shared.pending)
                .drain()
                .map(|(_, (h, p, _))| (h, p))
                .collect();
            for (host, p) in lost {
                shared.fail(&host, p, RemoteError::Disconnected);
            }
        }
    }
}

/// Publishes the jobs in the order the gateway's actor thread queued them (so a sender's
/// tells and asks leave this host in its order), taking what has piled up in one go.
async fn publisher(shared: Arc<Shared>, mut jobs: tokio::sync::mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(256);
    while jobs.recv_many(&mut batch, 256).await > 0 {
        let mut queued = batch.drain(..).peekable();
        while let Some(job) = queued.next() {
            let Job::Tell { to, frame } = job else {
                publish(&shared, job).await;
                continue;
            };
            // Tells for one mailbox queued one after another leave as one message (no
            // waiting for more: only what is queued already). Order holds: the batch is
            // published where its first tell stood, and nothing overtakes it.
            let max = shared.max_payload.load(Ordering::Relaxed) as usize;
            let fits = |body: usize, frame: &[u8]| {
                envelope::LEN + body + envelope::FRAME_PREFIX + frame.len() <= max
            };
            let same = |j: &Job, body: usize| matches!(j, Job::Tell { to: t, frame: f } if *t == to && fits(body, f));
            if !queued.peek().is_some_and(|j| same(j, 0)) || !fits(0, &frame) {
                publish_mail(&shared, &to, Kind::Mail, frame, 1).await;
                continue;
            }
            let mut body = Vec::with_capacity(4096);
            envelope::push_frame(&mut body, &frame);
            let mut frames = 1;
            while let Some(Job::Tell { frame, .. }) = queued.next_if(|j| same(j, body.len())) {
                envelope::push_frame(&mut body, &frame);
                frames += 1;
            }
            publish_mail(&shared, &to, Kind::Batch, body, frames).await;
        }
    }
}

/// Publishes `body` (a frame, or a batch of `frames`) for mailbox `to`.
async fn publish_mail(shared: &Shared, to: &RemoteAddr, kind: Kind, body: Vec<u8>, frames: u64) {
    if !shared.is_connected() {
        shared.undelivered.fetch_add(frames, Ordering::Relaxed);
        tracing::warn!(host = %to.host, actor = %to.actor, frames, "remote tells dropped: the gateway is not connected");
        return;
    }
    let subject = format!("{}.mb.{:x}", shared.cfg.prefix(&to.host), to.mailbox);
    let payload = envelope::build(kind, to.epoch, remote::actor_id(&to.actor), &body);
    match bounded(shared.client.publish(subject, Bytes::from(payload))).await {
        Ok(()) => {
            shared.sent.fetch_add(frames, Ordering::Relaxed);
        }
        Err(e) => {
            shared.undelivered.fetch_add(frames, Ordering::Relaxed);
            tracing::warn!(error = %e, host = %to.host, frames, "remote tells not published");
        }
    }
}

/// Publishes one job.
async fn publish(shared: &Arc<Shared>, job: Job) {
    match job {
        Job::Tell { to, frame } => publish_mail(shared, &to, Kind::Mail, frame, 1).await,
        Job::Publish { subject, payload } => {
            if let Err(e) = bounded(shared.client.publish(subject, Bytes::from(payload))).await {
                tracing::warn!(error = %e, "a notice to another host was not published");
            }
        }
        Job::Request {
            host,
            suffix,
            body,
            timeout,
            pending,
        } => {
            if !shared.is_connected() {
                shared.fail(&host, pending, RemoteError::Disconnected);
                return;
            }
            let max = shared.max_payload.load(Ordering::Relaxed);
            if body.len() as u64 > max {
                let e = RemoteError::TooLarge {
                    len: body.len() as u64,
                    max,
                };
                shared.fail(&host, pending, e);
                return;
            }
            let n = shared.next.fetch_add(1, Ordering::Relaxed);
            lock(&shared.pending).insert(n, (host.clone(), pending, Instant::now()));
            let subject = format!("{}.{suffix}", shared.cfg.prefix(&host));
            let reply = format!("{}.reply.{n:x}", shared.cfg.prefix(&shared.cfg.host));
            let published = bounded(shared.client.publish_with_reply(
                subject,
                reply,
                Bytes::from(body),
            ))
            .await;
            match published {
                Ok(()) => {
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                    let s = shared.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(timeout).await;
                        if let Some((host, p)) = s.take(n) {
                            s.fail(&host, p, RemoteError::Timeout(timeout));
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, host = %host, "remote request not published");
                    if let Some((host, p)) = shared.take(n) {
                        shared.fail(&host, p, RemoteError::Disconnected);
                    }
                }
            }
        }
    }
}

/// The longest the publisher waits for the client to take one message: past it the
/// message counts as not published, so the publisher (and the gateway's actor thread,
/// which feeds it through a bounded queue) never waits for ever on a stuck connection.
const PUBLISH_DEADLINE: Duration = Duration::from_secs(5);

/// `publish`, or an error once [`PUBLISH_DEADLINE`] passed.
async fn bounded<E: std::fmt::Display>(
    publish: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(PUBLISH_DEADLINE, publish).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "the client took no message for {PUBLISH_DEADLINE:?}"
        )),
    }
}

/// An ask or tell from another host, for the delivering thread.
struct Inbound {
    mailbox: u64,
    actor: u64,
    frame: Bytes,
    reply: Option<async_nats::Subject>,
    ask: bool,
}

/// Delivers a batch of frames from another host for one mailbox: in place, as many as
/// fit, with one wake-up of the actor; the rest through the delivering thread, in order.
/// `false` once that thread is gone.
fn deliver_batch(
    shared: &Arc<Shared>,
    inbound: &crossbeam_channel::Sender<Inbound>,
    mailbox: u64,
    actor: u64,
    frames: Vec<Bytes>,
) -> bool {
    let mut at = 0;
    while at < frames.len() && shared.backlog.load(Ordering::Acquire) == 0 {
        let slices: Vec<&[u8]> = frames[at..].iter().map(|f| &f[..]).collect();
        let (sent, result) = remote::deliver_many(mailbox, actor, &slices, Duration::ZERO);
        shared.delivered.fetch_add(sent as u64, Ordering::Relaxed);
        at += sent;
        match result {
            Ok(()) => return true,
            // Full: the rest go through the delivering thread.
            Err(RemoteError::Timeout(_)) => break,
            // That frame alone: refused, or larger than the mailbox takes.
            Err(e @ RemoteError::BadInput(_)) => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "a frame from another host refused");
                at += 1;
            }
            Err(e @ RemoteError::TooLarge { .. }) => {
                shared.undelivered.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, mailbox = format_args!("{mailbox:016x}"), "a tell from another host was not delivered");
                at += 1;
            }
            Err(e) => {
                let lost = (frames.len() - at) as u64;
                shared.undelivered.fetch_add(lost, Ordering::Relaxed);
                tracing::warn!(error = %e, mailbox = format_args!("{mailbox:016x}"), lost, "tells from another host were not delivered");
                return true;
            }
        }
    }
    frames.into_iter().skip(at).all(|frame| {
        let item = Inbound {
            mailbox,
            actor,
            ask: false,
            frame,
            reply: None,
        };
        shared.backlog.fetch_add(1, Ordering::AcqRel);
        inbound.send(item).is_ok()
    })
}

/// Delivers a frame from another host in place, unless the delivering thread has some
/// waiting (then after them, through it); `false` once that thread is gone.
fn route(
    shared: &Arc<Shared>,
    inbound: &crossbeam_channel::Sender<Inbound>,
    item: Inbound,
) -> bool {
    let item = if shared.backlog.load(Ordering::Acquire) == 0 {
        match deliver_one(shared, item, Duration::ZERO, true) {
            None => return true,
            Some(item) => item,
        }
    } else {
        item
    };
    shared.backlog.fetch_add(1, Ordering::AcqRel);
    inbound.send(item).is_ok()
}

/// The host that sent a request, from its reply subject (`proc.<cluster>.<host>.reply.<n>`).
fn sender_of(cluster: &str, reply: Option<&async_nats::Subject>) -> String {
    reply
        .and_then(|r| r.as_str().strip_prefix("proc."))
        .and_then(|r| r.strip_prefix(cluster))
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.split_once(".reply."))
        .map_or_else(|| "?".to_string(), |(h, _)| h.to_string())
}

/// Reads everything addressed to this host, checks it, and routes it.
async fn receiver(
    shared: Arc<Shared>,
    mut sub: async_nats::Subscriber,
    inbound: crossbeam_channel::Sender<Inbound>,
) {
    let prefix = format!("{}.", shared.cfg.prefix(&shared.cfg.host));
    while let Some(msg) = sub.next().await {
        let Some(rest) = msg.subject.as_str().strip_prefix(&prefix) else {
            continue;
        };
        if let Some(n) = rest.strip_prefix("reply.") {
            on_reply(&shared, n, &msg);
            continue;
        }
        // Everything else came from another host: untrusted.
        let from = sender_of(&shared.cfg.cluster, msg.reply.as_ref());
        let env = match envelope::parse(&msg.payload, &from) {
            Ok(env) => env,
            Err(e) => {
                shared.refuse(msg.subject.as_str(), msg.reply.clone(), e);
                continue;
            }
        };
        let rest = rest.to_string();
        if let Some(id) = rest.strip_prefix("mb.") {
            let mailbox = match u64::from_str_radix(id, 16) {
                Ok(m) if matches!(env.kind, Kind::Mail | Kind::Batch) => m,
                _ => {
                    let e = RemoteError::BadInput(format!("a {:?} to mailbox {id:?}", env.kind));
                    shared.refuse(msg.subject.as_str(), msg.reply.clone(), e);
                    continue;
                }
            };
            if env.epoch != shared.epoch {
                let e = RemoteError::StaleRef {
                    host: shared.cfg.host.clone(),
                    epoch: env.epoch,
                    current: shared.epoch,
                };
                shared.refuse(msg.subject.as_str(), msg.reply.clone(), e);
                continue;
            }
            if env.kind == Kind::Mail {
                let item = Inbound {
                    mailbox,
                    actor: env.extra,
                    ask: env.body.get(5) == Some(&2),
                    frame: msg.payload.slice(envelope::LEN..),
                    reply: msg.reply.clone(),
                };
                if !route(&shared, &inbound, item) {
                    return;
                }
                continue;
            }
            // A batch of tells (an ask in one is refused: the delivery takes tells and
            // stops only). A batch whose framing breaks off keeps the frames before.
            let mut frames = Vec::new();
            for frame in envelope::Frames::new(env.body) {
                match frame {
                    Ok(r) => frames.push(
                        msg.payload
                            .slice(envelope::LEN + r.start..envelope::LEN + r.end),
                    ),
                    Err(e) => {
                        shared.refuse(msg.subject.as_str(), None, e);
                        break;
                    }
                }
            }
            if !deliver_batch(&shared, &inbound, mailbox, env.extra, frames) {
                return;
            }
            continue;
        }
        match (rest.as_str(), env.kind) {
            ("spawn", Kind::Request) => {
                let s = shared.clone();
                let body = msg.payload.slice(envelope::LEN..);
                let reply = msg.reply.clone();
                tokio::task::spawn_blocking(move || {
                    let r = uncbor::<SpawnRequest>(&body, "SpawnRequest").and_then(|req| {
                        remote::spawn_local_with(
                            &req.actor,
                            req.args.into_vec(),
                            req.capacity,
                            req.limits,
                        )
                    });
                    s.respond_value(reply, r);
                });
            }
            ("terminate", Kind::Request) => {
                let s = shared.clone();
                let body = msg.payload.slice(envelope::LEN..);
                let reply = msg.reply.clone();
                tokio::task::spawn_blocking(move || {
                    let r = uncbor::<TerminateRequest>(&body, "TerminateRequest").and_then(|req| {
                        if req.epoch != s.epoch {
                            return Err(RemoteError::StaleRef {
                                host: s.cfg.host.clone(),
                                epoch: req.epoch,
                                current: s.epoch,
                            });
                        }
                        remote::terminate_local(req.mailbox, req.actor, req.shutdown)
                    });
                    s.respond_value(reply, r);
                });
            }
            ("whereis", Kind::Request) => {
                let name = String::from_utf8_lossy(env.body).to_string();
                let r: Result<Option<RemoteAddr>, RemoteError> = Ok(remote::lookup_local(&name));
                shared.respond_value(msg.reply.clone(), r);
            }
            ("info", Kind::Request) => {
                let info = HostInfo {
                    host: shared.cfg.host.clone(),
                    epoch: shared.epoch,
                    wire_version: remote::wire_version(),
                    actor_types: remote::actor_types(),
                };
                shared.respond_value(msg.reply.clone(), Ok::<_, RemoteError>(info));
            }
            ("monitor", Kind::Request) => {
                let from_epoch = env.epoch;
                let r = uncbor::<WatchRequest>(env.body, "WatchRequest")
                    .and_then(|req| on_monitor(&shared, req, from_epoch));
                shared.respond_value(msg.reply.clone(), r);
            }
            ("demonitor", Kind::Request) => {
                if let Ok(req) = uncbor::<WatchRequest>(env.body, "WatchRequest") {
                    let mut watched = lock(&shared.watched);
                    if let Some(hosts) = watched.get_mut(&req.mailbox) {
                        hosts.remove(&req.from);
                        // (The gateway still watches an actor whose registry names it holds.)
                        if hosts.is_empty() {
                            watched.remove(&req.mailbox);
                            if !lock(&shared.owned).contains_key(&req.mailbox) {
                                remote::unwatch_local(req.mailbox, shared.mailbox);
                            }
                        }
                    }
                }
            }
            ("linkexit", Kind::Down) => match uncbor::<LinkExit>(env.body, "LinkExit") {
                Ok(l) if l.epoch == shared.epoch => {
                    if let Some(links) = lock(&shared.in_links).get_mut(&l.target) {
                        links.retain(|i| !(i.host == l.from && i.local == l.exited.id));
                    }
                    remote::link_exit(l.target, &l.exited);
                }
                Ok(_) => {}
                Err(e) => shared.refuse(msg.subject.as_str(), None, e),
            },
            ("unlink", Kind::Request) => {
                if let Ok(u) = uncbor::<UnlinkRequest>(env.body, "UnlinkRequest") {
                    if let Some(links) = lock(&shared.in_links).get_mut(&u.target) {
                        links.retain(|i| !(i.host == u.from && i.local == u.local));
                    }
                }
            }
            ("down", Kind::Down) => match uncbor::<RemoteDown>(env.body, "RemoteDown") {
                Ok(d) => {
                    let w = shared
                        .watches_mut()
                        .get_mut(&(d.host.clone(), d.epoch))
                        .and_then(|t| t.remove(&d.down.id));
                    if let Some(w) = w {
                        w.fire(&d.down);
                    }
                }
                Err(e) => shared.refuse(msg.subject.as_str(), None, e),
            },
            _ => {
                let e = RemoteError::BadInput(format!("a {:?} on {rest:?}", env.kind));
                shared.refuse(msg.subject.as_str(), msg.reply.clone(), e);
            }
        }
    }
}

/// Host `req.from` monitors a local actor: this gateway watches it in its place. One that
/// has exited already gets its `Down` sent at once.
fn on_monitor(shared: &Arc<Shared>, req: WatchRequest, from_epoch: u64) -> Result<(), RemoteError> {
    if req.epoch != shared.epoch {
        return Err(RemoteError::StaleRef {
            host: shared.cfg.host.clone(),
            epoch: req.epoch,
            current: shared.epoch,
        });
    }
    if let Some((local, actor)) = &req.link {
        let link = InLink {
            host: req.from.clone(),
            epoch: from_epoch,
            local: *local,
            actor: actor.clone(),
        };
        lock(&shared.in_links)
            .entry(req.mailbox)
            .or_default()
            .insert(link);
    }
    let watching = {
        let mut watched = lock(&shared.watched);
        let hosts = watched.entry(req.mailbox).or_default();
        let watching = !hosts.is_empty();
        hosts.insert(req.from.clone());
        watching
    };
    if watching {
        return Ok(()); // this gateway watches it already, for another host or this one
    }
    match remote::watch_local(req.mailbox, req.actor, shared.mailbox) {
        Ok(None) => Ok(()),
        Ok(Some(down)) => {
            send_down(shared, down);
            Ok(())
        }
        Err(e) => {
            lock(&shared.watched).remove(&req.mailbox);
            lock(&shared.in_links).remove(&req.mailbox);
            Err(e)
        }
    }
}

/// Sends the `Down` of a local actor to every host that monitors it.
fn send_down(shared: &Shared, down: Down) {
    // Its links from other hosts end with it (they hear of it through the Down).
    lock(&shared.in_links).remove(&down.id);
    let Some(hosts) = lock(&shared.watched).remove(&down.id) else {
        return;
    };
    let body = RemoteDown {
        host: shared.cfg.host.clone(),
        epoch: shared.epoch,
        down,
    };
    let Ok(body) = cbor(&body) else { return };
    let payload = envelope::build(Kind::Down, shared.epoch, 0, &body);
    for host in hosts {
        let subject = format!("{}.down", shared.cfg.prefix(&host));
        let client = shared.client.clone();
        let payload = Bytes::from(payload.clone());
        tokio::runtime::Handle::current().spawn(async move {
            if let Err(e) = client.publish(subject, payload).await {
                tracing::warn!(error = %e, "a Down for another host was not published");
            }
        });
    }
}

/// A reply to one of this host's requests. It came from another host: untrusted.
fn on_reply(shared: &Shared, n: &str, msg: &async_nats::Message) {
    let Some((host, pending)) = u64::from_str_radix(n, 16).ok().and_then(|n| shared.take(n)) else {
        return; // late (timed out), or not ours
    };
    if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
        shared.fail(
            &host.clone(),
            pending,
            RemoteError::HostUnreachable { host },
        );
        return;
    }
    let env = match envelope::parse(&msg.payload, &host) {
        Ok(env) => env,
        Err(e) => {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            shared.fail(&host, pending, e);
            return;
        }
    };
    let body = env.body;
    match env.kind {
        Kind::Ok => {}
        Kind::Err => {
            let e = uncbor::<RemoteError>(body, "RemoteError").unwrap_or_else(|e| {
                RemoteError::BadInput(format!("an error reply that does not decode: {e}"))
            });
            shared.fail(&host, pending, e);
            return;
        }
        other => {
            let e = RemoteError::BadInput(format!("a {other:?} as a reply"));
            shared.fail(&host, pending, e);
            return;
        }
    }
    let _ = match pending {
        Pending::Ask(t) => t.reply(Ok(ByteBuf::from(body.to_vec()))),
        Pending::Spawn(t) => t.reply(uncbor::<RemoteAddr>(body, "RemoteAddr")),
        Pending::WhereIs(t) => t.reply(uncbor::<Option<RemoteAddr>>(body, "Option<RemoteAddr>")),
        Pending::Info(t) => t.reply(uncbor::<HostInfo>(body, "HostInfo")),
        Pending::Terminate(t) => t.reply(uncbor::<Exit>(body, "Exit")),
        Pending::Monitor(to) => {
            // The run of the gateway that took the monitor: a heartbeat of another run
            // means it restarted since, and lost it.
            if let Some(seen) = lock(&shared.seen).get_mut(&to.host) {
                if seen.run == 0 && seen.epoch == env.epoch {
                    seen.run = env.extra;
                }
            }
            Ok(())
        }
    };
}

/// Says this host is up, every `heartbeat`; reads the others' heartbeats; and, every
/// tenth of the lease, ends the monitors of hosts whose lease ran out (or that came back
/// as a new run) with `HostLost`.
async fn heartbeats(shared: Arc<Shared>, mut beats: async_nats::Subscriber) {
    let s = shared.clone();
    tokio::spawn(async move {
        let subject = format!("proc.{}.hb.{}", s.cfg.cluster, s.cfg.host);
        let payload = Bytes::from(envelope::build(Kind::Beat, s.epoch, s.run, &[]));
        let mut tick = tokio::time::interval(s.cfg.heartbeat);
        loop {
            tick.tick().await;
            if s.is_connected() {
                let _ = s.client.publish(subject.clone(), payload.clone()).await;
            }
        }
    });
    let s = shared.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(s.cfg.lease / 10);
        loop {
            tick.tick().await;
            check_leases(&s);
        }
    });
    let prefix = format!("proc.{}.hb.", shared.cfg.cluster);
    while let Some(msg) = beats.next().await {
        let Some(host) = msg.subject.as_str().strip_prefix(&prefix) else {
            continue;
        };
        if host == shared.cfg.host {
            continue;
        }
        match envelope::parse(&msg.payload, host) {
            Ok(env) if env.kind == Kind::Beat => {
                let seen = Seen {
                    epoch: env.epoch,
                    at: Instant::now(),
                    run: env.extra,
                };
                let before = lock(&shared.seen).insert(host.to_string(), seen);
                // Its gateway restarted (same epoch, new run): it lost the monitors it
                // held for this host, so they are registered again.
                if before.is_some_and(|b| b.epoch == env.epoch && b.run != 0 && b.run != env.extra)
                {
                    tracing::info!(host, "its gateway restarted: registering monitors again");
                    rewatch(&shared, host, env.epoch).await;
                }
            }
            Ok(_) | Err(_) => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A monitor (or links) of an actor of another host, as [`save_watches`] keeps it.
#[derive(Serialize, Deserialize)]
struct SavedWatch {
    to: RemoteAddr,
    watchers: Vec<u64>,
    links: Vec<(u64, String)>,
}

/// The most a gateway reads back of its saved state.
const MAX_SAVED: u64 = 16 << 20;

/// Writes the monitors and links this gateway holds of actors of other hosts to the
/// runtime directory (atomically: a new file renamed over the old), so that a restarted
/// gateway has them again ([`load_watches`]).
fn save_watches(shared: &Shared) {
    // One writer at a time: the actor thread and the saver task share the file.
    static SAVING: Mutex<()> = Mutex::new(());
    let _one = lock(&SAVING);
    shared.watches_dirty.store(false, Ordering::Release);
    let saved: Vec<SavedWatch> = lock(&shared.watches)
        .iter()
        .flat_map(|((host, epoch), targets)| {
            targets.iter().map(|(&mailbox, w)| SavedWatch {
                to: RemoteAddr {
                    host: host.clone(),
                    epoch: *epoch,
                    mailbox,
                    actor: w.actor.clone(),
                },
                watchers: w.watchers.clone(),
                links: w.links.clone(),
            })
        })
        .collect();
    let (Ok(path), Ok(bytes)) = (remote::gateway_state_file(), cbor(&saved)) else {
        return;
    };
    let tmp = path.with_extension("new");
    if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path)) {
        tracing::warn!(error = %e, "the gateway's monitors could not be saved");
    }
}

/// The monitors and links an earlier run of this gateway saved; none if there is no
/// such file, or it does not decode (it is untrusted: logged, then ignored).
fn load_watches() -> Vec<SavedWatch> {
    let Ok(path) = remote::gateway_state_file() else {
        return Vec::new();
    };
    let bytes = match std::fs::File::open(&path) {
        Ok(f) => {
            let mut b = Vec::new();
            match std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_SAVED), &mut b) {
                Ok(_) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "the gateway's saved monitors could not be read");
                    return Vec::new();
                }
            }
        }
        Err(_) => return Vec::new(),
    };
    uncbor::<Vec<SavedWatch>>(&bytes, "the gateway's saved monitors").unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the gateway's saved monitors are ignored");
        Vec::new()
    })
}

/// Registers the monitors and links an earlier run of this gateway held (`again`) with
/// their hosts, once connected (for at most a lease: then they fail, as any
/// registration without a connection does, with `HostLost`).
async fn register_again(shared: Arc<Shared>, again: Vec<(RemoteAddr, Option<(u64, String)>)>) {
    let deadline = Instant::now() + shared.cfg.lease;
    while !shared.is_connected() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::info!(
        n = again.len(),
        "registering the monitors of the gateway's earlier run again"
    );
    for (to, link) in again {
        if let Some(job) = watch_job(&shared, to, link) {
            publish(&shared, job).await;
        }
    }
}

/// Saves the monitors of actors of other hosts whenever they changed, at most every
/// 50 ms (new ones are saved at once, by the handler that adds them).
async fn saver(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        if shared.watches_dirty.load(Ordering::Acquire) {
            let s = shared.clone();
            let _ = tokio::task::spawn_blocking(move || save_watches(&s)).await;
        }
    }
}

/// Registers again, with host `host` (epoch `epoch`), every monitor and link this host
/// holds of its actors. An actor that exited meanwhile gets its `Down` from there.
async fn rewatch(shared: &Arc<Shared>, host: &str, epoch: u64) {
    let requests: Vec<(RemoteAddr, Option<(u64, String)>)> = {
        let watches = lock(&shared.watches);
        let Some(targets) = watches.get(&(host.to_string(), epoch)) else {
            return;
        };
        targets
            .iter()
            .flat_map(|(&mailbox, w)| {
                let to = RemoteAddr {
                    host: host.to_string(),
                    epoch,
                    mailbox,
                    actor: w.actor.clone(),
                };
                let monitor = (!w.watchers.is_empty()).then(|| (to.clone(), None));
                let links = w.links.iter().map(move |l| (to.clone(), Some(l.clone())));
                monitor.into_iter().chain(links).collect::<Vec<_>>()
            })
            .collect()
    };
    for (to, link) in requests {
        if let Some(job) = watch_job(shared, to, link) {
            publish(shared, job).await;
        }
    }
}

/// The request that asks `to`'s host to watch it for this one (and to record `link`, a
/// local actor linked with it).
fn watch_job(shared: &Shared, to: RemoteAddr, link: Option<(u64, String)>) -> Option<Job> {
    let req = WatchRequest {
        from: shared.cfg.host.clone(),
        mailbox: to.mailbox,
        actor: remote::actor_id(&to.actor),
        epoch: to.epoch,
        link,
    };
    let body = cbor(&req).ok()?;
    Some(Job::Request {
        host: to.host.clone(),
        suffix: "monitor".into(),
        body: envelope::build(Kind::Request, shared.epoch, 0, &body),
        timeout: shared.cfg.lease,
        pending: Pending::Monitor(to),
    })
}

/// Ends the monitors of every host whose lease ran out, or that runs another epoch now.
fn check_leases(shared: &Shared) {
    let now = Instant::now();
    let lost: Vec<(String, u64)> = {
        let seen = lock(&shared.seen);
        lock(&shared.watches)
            .keys()
            .filter(|(host, epoch)| match seen.get(host) {
                Some(s) => s.epoch != *epoch || now.duration_since(s.at) > shared.cfg.lease,
                None => true,
            })
            .cloned()
            .collect()
    };
    // Links from actors of lost hosts: the local actor gets the exit HostLost.
    let mut cut = Vec::new();
    {
        let seen = lock(&shared.seen);
        let mut in_links = lock(&shared.in_links);
        for (target, links) in in_links.iter_mut() {
            links.retain(|l| {
                let alive = match seen.get(&l.host) {
                    Some(s) => s.epoch == l.epoch && now.duration_since(s.at) <= shared.cfg.lease,
                    None => shared.started.elapsed() <= shared.cfg.lease,
                };
                if !alive {
                    cut.push((*target, l.clone()));
                }
                alive
            });
        }
        in_links.retain(|_, l| !l.is_empty());
    }
    for (target, l) in cut {
        let exited = procession::Exited {
            id: l.local,
            actor: l.actor,
            pid: 0,
            exit: Exit::HostLost { host: l.host },
        };
        remote::link_exit(target, &exited);
    }
    // Requests sent to a host while it was up, whose lease then ran out, fail now, not
    // at their own timeouts. (One sent later, to a host that may be back before its first
    // heartbeat, waits for its answer, its timeout, or "no responders".)
    let expired: Vec<(String, Pending)> = {
        let seen = lock(&shared.seen);
        let mut pending = lock(&shared.pending);
        let gone: Vec<u64> = pending
            .iter()
            .filter(|(_, (host, _, sent))| {
                seen.get(host).is_some_and(|s| {
                    now.duration_since(s.at) > shared.cfg.lease
                        && sent.saturating_duration_since(s.at) <= shared.cfg.lease
                })
            })
            .map(|(&n, _)| n)
            .collect();
        gone.into_iter()
            .filter_map(|n| pending.remove(&n))
            .map(|(h, p, _)| (h, p))
            .collect()
    };
    for (host, p) in expired {
        let e = RemoteError::HostUnreachable { host: host.clone() };
        shared.fail(&host, p, e);
    }
    for key in lost {
        let targets = shared.watches_mut().remove(&key);
        if let Some(targets) = targets {
            tracing::warn!(host = %key.0, "host lost: its lease ran out");
            let exit = Exit::HostLost {
                host: key.0.clone(),
            };
            shared.fire(&key.0, targets, &exit);
        }
    }
}

/// Puts a frame from another host into its local mailbox (a tell or stop), or queues it
/// there and has a blocking task await the reply (an ask). With `room` zero, a full
/// mailbox gives the item back, for the delivering thread. `in_task`: called from a
/// runtime task (else from a thread outside the workers).
fn deliver_one(
    shared: &Arc<Shared>,
    item: Inbound,
    room: Duration,
    in_task: bool,
) -> Option<Inbound> {
    let respond = |reply, r| {
        if in_task {
            shared.respond(reply, r)
        } else {
            shared.respond_blocking(reply, r)
        }
    };
    let result = if item.ask {
        let timeout = shared.cfg.deliver_timeout;
        match remote::start_ask(item.mailbox, item.actor, &item.frame, room, timeout) {
            Ok(ask) => {
                // The reply router wakes this task when the reply comes.
                let s = shared.clone();
                let reply = item.reply.clone();
                tokio::runtime::Handle::current().spawn(async move {
                    let r = ask.wait_async().await;
                    if let Some(reply) = reply {
                        let payload = Bytes::from(s.reply_payload(r));
                        if let Err(e) = s.client.publish(reply, payload).await {
                            tracing::debug!(error = %e, "reply not published");
                        }
                    }
                });
                Ok(())
            }
            Err(e) => Err(e),
        }
    } else {
        remote::deliver(item.mailbox, item.actor, &item.frame, room)
    };
    match result {
        Ok(()) => {
            shared.delivered.fetch_add(1, Ordering::Relaxed);
        }
        // Full: the delivering thread waits for room, and keeps the order.
        Err(RemoteError::Timeout(d)) if room.is_zero() && d.is_zero() => return Some(item),
        Err(e) => {
            if matches!(e, RemoteError::BadInput(_)) {
                shared.refused.fetch_add(1, Ordering::Relaxed);
            } else if !item.ask {
                shared.undelivered.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, mailbox = format_args!("{:016x}", item.mailbox), "a tell from another host was not delivered");
            }
            respond(item.reply, Err(e));
        }
    }
    None
}

/// The thread that delivers what the receiver could not at once (a full mailbox), in the
/// order it came, waiting for room up to the configured time each.
fn deliverer(
    shared: Arc<Shared>,
    rt: tokio::runtime::Handle,
    inbound: crossbeam_channel::Receiver<Inbound>,
) {
    let _g = rt.enter();
    for item in inbound {
        deliver_one(&shared, item, shared.cfg.deliver_timeout, false);
        shared.backlog.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The error of a gateway request that was told, not asked: it has no one to answer.
fn told(what: &str) -> RemoteError {
    RemoteError::Unsupported(format!("{what} told, not asked"))
}

impl Gateway {
    /// Answers the ask being handled from a task on the gateway's runtime, with the
    /// reply `work` resolves to; `false` if it was a tell (no one to answer).
    fn answer_in_task<M, F>(
        &self,
        cx: &mut Context<Self>,
        work: impl FnOnce(Arc<Shared>) -> F,
    ) -> bool
    where
        M: Message,
        Self: Handler<M>,
        M::Reply: Send + 'static,
        F: std::future::Future<Output = M::Reply> + Send + 'static,
    {
        let (Some(token), Some(rt)) = (cx.reply_later::<M>(), &self.rt) else {
            return false;
        };
        let work = work(self.shared.clone());
        rt.spawn(async move {
            let _ = token.reply(work.await);
        });
        true
    }

    fn queue(&self, job: Job) {
        if let Err(tokio::sync::mpsc::error::SendError(job)) = self.jobs.blocking_send(job) {
            match job {
                Job::Tell { to, .. } => {
                    self.shared.undelivered.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(host = %to.host, "remote tell dropped: the gateway is stopping");
                }
                Job::Request { host, pending, .. } => {
                    self.shared.fail(&host, pending, RemoteError::Disconnected)
                }
                Job::Publish { .. } => {}
            }
        }
    }

    fn request(
        &self,
        host: &str,
        suffix: &str,
        body: Vec<u8>,
        timeout: Duration,
        pending: Pending,
    ) {
        let body = envelope::build(Kind::Request, self.shared.epoch, 0, &body);
        self.queue(Job::Request {
            host: host.to_string(),
            suffix: suffix.to_string(),
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
            return Err(told("a ForwardAsk"));
        };
        // An ask is a mailbox message with a reply subject.
        let to = m.to;
        let body = envelope::build(Kind::Mail, to.epoch, remote::actor_id(&to.actor), &m.frame);
        self.queue(Job::Request {
            suffix: format!("mb.{:x}", to.mailbox),
            host: to.host,
            body,
            timeout: m.timeout,
            pending: Pending::Ask(token),
        });
        Err(RemoteError::Disconnected) // not sent: the token answers
    }
}

impl Handler<SpawnOn> for Gateway {
    fn handle(&mut self, m: SpawnOn, cx: &mut Context<Self>) -> Result<RemoteAddr, RemoteError> {
        let Some(token) = cx.reply_later::<SpawnOn>() else {
            return Err(told("a SpawnOn"));
        };
        let req = SpawnRequest {
            actor: m.actor,
            args: m.args,
            capacity: m.capacity,
            limits: m.limits,
        };
        match cbor(&req) {
            Ok(body) => self.request(&m.host, "spawn", body, m.timeout, Pending::Spawn(token)),
            Err(e) => {
                let _ = token.reply(Err(e));
            }
        }
        Err(RemoteError::Disconnected) // not sent: the token answers
    }
}

impl Handler<Terminate> for Gateway {
    fn handle(&mut self, m: Terminate, cx: &mut Context<Self>) -> Result<Exit, RemoteError> {
        let Some(token) = cx.reply_later::<Terminate>() else {
            return Err(told("a Terminate"));
        };
        let req = TerminateRequest {
            mailbox: m.to.mailbox,
            actor: remote::actor_id(&m.to.actor),
            epoch: m.to.epoch,
            shutdown: m.shutdown,
        };
        match cbor(&req) {
            Ok(body) => self.request(
                &m.to.host,
                "terminate",
                body,
                m.timeout,
                Pending::Terminate(token),
            ),
            Err(e) => {
                let _ = token.reply(Err(e));
            }
        }
        Err(RemoteError::Disconnected) // not sent: the token answers
    }
}

impl Handler<Monitor> for Gateway {
    fn handle(&mut self, m: Monitor, _cx: &mut Context<Self>) {
        let first = self.watch_remote(&m.target, |w| {
            if !w.watchers.contains(&m.watcher) {
                w.watchers.push(m.watcher);
            }
            w.watchers.len() == 1 && w.links.is_empty()
        });
        if first {
            self.register_watch(m.target, None);
        }
    }
}

impl Gateway {
    /// Adds to the record of `to`'s watchers and links (what `add` does, and says), and
    /// starts the lease of its host if it was not heard from yet.
    fn watch_remote(&self, to: &RemoteAddr, add: impl FnOnce(&mut Watched) -> bool) -> bool {
        let added = {
            let mut watches = self.shared.watches_mut();
            let targets = watches.entry((to.host.clone(), to.epoch)).or_default();
            let w = targets.entry(to.mailbox).or_insert_with(|| Watched {
                actor: to.actor.clone(),
                watchers: Vec::new(),
                links: Vec::new(),
            });
            add(w)
        };
        // Saved before the handler returns: a crash of this process after it does not
        // lose the monitor (one before it leaves the request in the mailbox).
        save_watches(&self.shared);
        lock(&self.shared.seen)
            .entry(to.host.clone())
            .or_insert(Seen {
                epoch: to.epoch,
                at: Instant::now(),
                run: 0,
            });
        added
    }

    /// Asks `to`'s host to watch it for this one (and to record `link`, a local actor
    /// linked with it); a failure ends the watch with its `Down` now.
    fn register_watch(&self, to: RemoteAddr, link: Option<(u64, String)>) {
        if let Some(job) = watch_job(&self.shared, to, link) {
            self.queue(job);
        }
    }
}

impl Handler<Demonitor> for Gateway {
    fn handle(&mut self, m: Demonitor, _cx: &mut Context<Self>) {
        let to = m.target;
        let last = {
            let mut watches = self.shared.watches_mut();
            let key = (to.host.clone(), to.epoch);
            let Some(targets) = watches.get_mut(&key) else {
                return;
            };
            let Some(w) = targets.get_mut(&to.mailbox) else {
                return;
            };
            w.watchers.retain(|&x| x != m.watcher);
            let last = w.watchers.is_empty() && w.links.is_empty();
            if last {
                targets.remove(&to.mailbox);
                if targets.is_empty() {
                    watches.remove(&key);
                }
            }
            last
        };
        if last {
            let req = WatchRequest {
                from: self.shared.cfg.host.clone(),
                mailbox: to.mailbox,
                actor: remote::actor_id(&to.actor),
                epoch: to.epoch,
                link: None,
            };
            if let Ok(body) = cbor(&req) {
                self.queue(Job::Publish {
                    subject: format!("{}.demonitor", self.shared.cfg.prefix(&to.host)),
                    payload: envelope::build(Kind::Request, self.shared.epoch, 0, &body),
                });
            }
        }
    }
}

impl Handler<Down> for Gateway {
    /// A local actor that other hosts monitor has exited.
    fn handle(&mut self, down: Down, _cx: &mut Context<Self>) {
        let _g = self.rt.as_ref().map(|rt| rt.enter());
        let names = lock(&self.shared.owned).remove(&down.id);
        if let (Some(names), Some(rt)) = (names, &self.rt) {
            // Its names in the cluster's registry go with it (unless taken over since).
            let s = self.shared.clone();
            rt.spawn(async move {
                if let Ok(kv) = registry(&s).await {
                    for (name, rev) in names {
                        let _ = kv.delete_expect_revision(&name, Some(rev)).await;
                    }
                }
            });
        }
        // Its links with actors of other hosts: they get its exit.
        let links = lock(&self.shared.out_links).remove(&down.id);
        for (host, epoch, target) in links.unwrap_or_default() {
            let l = LinkExit {
                from: self.shared.cfg.host.clone(),
                target,
                epoch,
                exited: procession::Exited {
                    id: down.id,
                    actor: down.actor.clone(),
                    pid: down.pid,
                    exit: down.exit.clone(),
                },
            };
            if let Ok(body) = cbor(&l) {
                self.queue(Job::Publish {
                    subject: format!("{}.linkexit", self.shared.cfg.prefix(&host)),
                    payload: envelope::build(Kind::Down, self.shared.epoch, 0, &body),
                });
            }
        }
        send_down(&self.shared, down);
    }
}

impl Handler<WhereIs> for Gateway {
    fn handle(
        &mut self,
        m: WhereIs,
        cx: &mut Context<Self>,
    ) -> Result<Option<RemoteAddr>, RemoteError> {
        let Some(token) = cx.reply_later::<WhereIs>() else {
            return Err(told("a WhereIs"));
        };
        let body = m.name.into_bytes();
        self.request(&m.host, "whereis", body, m.timeout, Pending::WhereIs(token));
        Err(RemoteError::Disconnected) // not sent: the token answers
    }
}

impl Handler<Info> for Gateway {
    fn handle(&mut self, m: Info, cx: &mut Context<Self>) -> Result<HostInfo, RemoteError> {
        let Some(token) = cx.reply_later::<Info>() else {
            return Err(told("an Info"));
        };
        self.request(&m.host, "info", Vec::new(), m.timeout, Pending::Info(token));
        Err(RemoteError::Disconnected) // not sent: the token answers
    }
}

impl Handler<Status> for Gateway {
    fn handle(&mut self, _: Status, _cx: &mut Context<Self>) -> GatewayStatus {
        let s = &self.shared;
        GatewayStatus {
            connected: s.is_connected(),
            epoch: s.epoch,
            max_payload: s.max_payload.load(Ordering::Relaxed),
            sent: s.sent.load(Ordering::Relaxed),
            delivered: s.delivered.load(Ordering::Relaxed),
            undelivered: s.undelivered.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            slow_consumer: s.slow.load(Ordering::Relaxed),
            durable_acked: s.durable_acked.load(Ordering::Relaxed),
            durable_redelivered: s.durable_redelivered.load(Ordering::Relaxed),
            durable_poisoned: s.durable_poisoned.load(Ordering::Relaxed),
        }
    }
}

// ---- the cluster's registry ----

/// The registry's KV bucket, opened (or created) on first use.
async fn registry(shared: &Shared) -> Result<&async_nats::jetstream::kv::Store, RemoteError> {
    shared
        .names
        .get_or_try_init(|| async {
            let js = async_nats::jetstream::new(shared.client.clone());
            let config = async_nats::jetstream::kv::Config {
                bucket: format!("procession_{}_names", shared.cfg.cluster),
                history: 1,
                storage: async_nats::jetstream::stream::StorageType::File,
                ..Default::default()
            };
            js.create_or_update_key_value(config)
                .await
                .map_err(|e| RemoteError::Refused {
                    host: shared.cfg.host.clone(),
                    reason: format!("the cluster's registry (a JetStream KV bucket): {e}"),
                })
        })
        .await
}

fn kv_error(shared: &Shared, e: impl std::fmt::Display) -> RemoteError {
    RemoteError::Refused {
        host: shared.cfg.host.clone(),
        reason: format!("the cluster's registry: {e}"),
    }
}

/// Whether the actor at `addr` may still live: it lives here, or its host was heard from
/// within the lease in that epoch (or this gateway is too young to know otherwise).
fn may_live(shared: &Shared, addr: &RemoteAddr) -> bool {
    if addr.host == shared.cfg.host {
        return remote::is_alive_here(addr);
    }
    match lock(&shared.seen).get(&addr.host) {
        Some(s) => s.epoch == addr.epoch && s.at.elapsed() <= shared.cfg.lease,
        None => shared.started.elapsed() <= shared.cfg.lease,
    }
}

/// The live binding of `name`, with its revision; a binding to an actor that is gone is
/// none.
async fn lookup(shared: &Shared, name: &str) -> Result<Option<(RemoteAddr, u64)>, RemoteError> {
    let kv = registry(shared).await?;
    let entry = kv.entry(name).await.map_err(|e| kv_error(shared, e))?;
    let Some(entry) = entry else { return Ok(None) };
    if entry.operation != async_nats::jetstream::kv::Operation::Put {
        return Ok(None);
    }
    // The bucket is written by every host of the cluster: untrusted.
    let Ok(addr) = uncbor::<RemoteAddr>(&entry.value, "RemoteAddr") else {
        return Ok(None);
    };
    Ok(may_live(shared, &addr).then_some((addr, entry.revision)))
}

async fn register_global(
    shared: Arc<Shared>,
    name: String,
    addr: RemoteAddr,
) -> Result<(), RemoteError> {
    if addr.host != shared.cfg.host || addr.epoch != shared.epoch {
        return Err(RemoteError::Unsupported(
            "registering another host's actor (register it there)".into(),
        ));
    }
    let kv = registry(&shared).await?;
    let value = Bytes::from(cbor(&addr)?);
    let rev = match kv.create(&name, value.clone()).await {
        Ok(rev) => rev,
        Err(_) => {
            // Taken, or held by an actor that is gone: take it over from the latter.
            let entry = kv.entry(&name).await.map_err(|e| kv_error(&shared, e))?;
            match entry {
                Some(e) if e.operation == async_nats::jetstream::kv::Operation::Put => {
                    let holder = uncbor::<RemoteAddr>(&e.value, "RemoteAddr").ok();
                    if holder.as_ref().is_some_and(|h| may_live(&shared, h)) {
                        return Err(RemoteError::Refused {
                            host: shared.cfg.host.clone(),
                            reason: NAME_TAKEN.into(),
                        });
                    }
                    kv.update(&name, value, e.revision)
                        .await
                        .map_err(|e| kv_error(&shared, e))?
                }
                _ => kv
                    .create(&name, value)
                    .await
                    .map_err(|e| kv_error(&shared, e))?,
            }
        }
    };
    // This gateway watches the actor, and deletes the name when it is gone.
    lock(&shared.owned)
        .entry(addr.mailbox)
        .or_default()
        .push((name.clone(), rev));
    match remote::watch_local(addr.mailbox, remote::actor_id(&addr.actor), shared.mailbox) {
        Ok(None) => Ok(()),
        Ok(Some(_)) | Err(_) => {
            lock(&shared.owned).remove(&addr.mailbox);
            let _ = kv.delete_expect_revision(&name, Some(rev)).await;
            Err(RemoteError::NoSuchActor {
                host: shared.cfg.host.clone(),
                actor: addr.actor.clone(),
                mailbox: addr.mailbox,
            })
        }
    }
}

impl Handler<RegisterGlobal> for Gateway {
    fn handle(&mut self, m: RegisterGlobal, cx: &mut Context<Self>) -> Result<(), RemoteError> {
        if !self.answer_in_task::<RegisterGlobal, _>(cx, |s| register_global(s, m.name, m.addr)) {
            return Err(told("a RegisterGlobal"));
        }
        Ok(()) // not sent: the token answers
    }
}

impl Handler<WhereIsGlobal> for Gateway {
    fn handle(
        &mut self,
        m: WhereIsGlobal,
        cx: &mut Context<Self>,
    ) -> Result<Option<RemoteAddr>, RemoteError> {
        let found = |s: Arc<Shared>| async move {
            lookup(&s, &m.name).await.map(|b| b.map(|(addr, _)| addr))
        };
        if !self.answer_in_task::<WhereIsGlobal, _>(cx, found) {
            return Err(told("a WhereIsGlobal"));
        }
        Ok(None) // not sent: the token answers
    }
}

/// Deletes the binding of `m.name` if it is to `m.addr`; `true` if there was one.
async fn unregister_global(s: Arc<Shared>, m: UnregisterGlobal) -> Result<bool, RemoteError> {
    let Some((addr, rev)) = lookup(&s, &m.name).await? else {
        return Ok(false);
    };
    if addr != m.addr {
        return Ok(false);
    }
    let kv = registry(&s).await?;
    kv.delete_expect_revision(&m.name, Some(rev))
        .await
        .map_err(|e| kv_error(&s, e))?;
    if let Some(names) = lock(&s.owned).get_mut(&addr.mailbox) {
        names.retain(|(n, _)| *n != m.name);
    }
    Ok(true)
}

impl Handler<UnregisterGlobal> for Gateway {
    fn handle(&mut self, m: UnregisterGlobal, cx: &mut Context<Self>) -> Result<bool, RemoteError> {
        if !self.answer_in_task::<UnregisterGlobal, _>(cx, |s| unregister_global(s, m)) {
            return Err(told("an UnregisterGlobal"));
        }
        Ok(false) // not sent: the token answers
    }
}

// ---- durable mailboxes ----

/// The subject of durable mailbox `name`.
fn durable_subject(shared: &Shared, name: &str) -> String {
    format!("proc.{}.durable.{name}", shared.cfg.cluster)
}

/// The stream of the cluster's durable mailboxes, opened (or created) on first use: a
/// work queue on file storage, deduplicating message ids for 2 minutes.
async fn durable_stream(
    shared: &Shared,
) -> Result<&async_nats::jetstream::stream::Stream, RemoteError> {
    shared
        .durable
        .get_or_try_init(|| async {
            let js = async_nats::jetstream::new(shared.client.clone());
            let config = async_nats::jetstream::stream::Config {
                name: format!("procession_{}_durable", shared.cfg.cluster),
                subjects: vec![format!("proc.{}.durable.>", shared.cfg.cluster)],
                retention: async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
                storage: async_nats::jetstream::stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            };
            js.get_or_create_stream(config)
                .await
                .map_err(|e| kv_error(shared, format!("the durable mailboxes' stream: {e}")))
        })
        .await
}

async fn durable_publish(shared: &Shared, m: DurablePublish) -> Result<u64, RemoteError> {
    if !shared.is_connected() {
        return Err(RemoteError::Disconnected);
    }
    let max = shared.max_payload.load(Ordering::Relaxed);
    if m.frame.len() as u64 > max {
        return Err(RemoteError::TooLarge {
            len: m.frame.len() as u64,
            max,
        });
    }
    durable_stream(shared).await?;
    let js = async_nats::jetstream::new(shared.client.clone());
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", m.msg_id.as_str());
    let subject = durable_subject(shared, &m.name);
    let ack = js
        .publish_with_headers(subject, headers, Bytes::from(m.frame.into_vec()))
        .await
        .map_err(|e| kv_error(shared, format!("durable publish: {e}")))?;
    let ack = ack
        .await
        .map_err(|e| kv_error(shared, format!("durable publish not acknowledged: {e}")))?;
    Ok(ack.sequence)
}

/// Feeds the durable mailbox `m.name` into the local actor, one message at a time, for
/// as long as the gateway runs; after a lost connection it starts over from the
/// consumer's state on the server.
async fn serve_durable(shared: Arc<Shared>, m: ServeDurable) {
    let actor_id = remote::actor_id(&m.actor);
    loop {
        if let Err(e) = serve_once(&shared, &m, actor_id).await {
            tracing::warn!(error = %e, name = %m.name, "durable mailbox: serving again shortly");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn durable_consumer(
    shared: &Shared,
    m: &ServeDurable,
) -> Result<async_nats::jetstream::consumer::PullConsumer, RemoteError> {
    let stream = durable_stream(shared).await?;
    let opts: DurableOptions = m.opts;
    let config = async_nats::jetstream::consumer::pull::Config {
        durable_name: Some(format!("procession-{}", m.name)),
        filter_subject: durable_subject(shared, &m.name),
        ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
        ack_wait: opts.ack_wait,
        max_deliver: i64::from(opts.redeliver) + 1,
        max_ack_pending: 1,
        ..Default::default()
    };
    stream
        .get_or_create_consumer(&format!("procession-{}", m.name), config)
        .await
        .map_err(|e| kv_error(shared, format!("durable consumer: {e}")))
}

async fn serve_once(
    shared: &Arc<Shared>,
    m: &ServeDurable,
    actor_id: u64,
) -> Result<(), RemoteError> {
    let consumer = durable_consumer(shared, m).await?;
    // Short pulls with heartbeats: after a lost connection the next pull goes out within
    // a second, not at the default 30 s expiry.
    let mut msgs = consumer
        .stream()
        .max_messages_per_batch(16)
        .expires(Duration::from_secs(1))
        .heartbeat(Duration::from_millis(400))
        .messages()
        .await
        .map_err(|e| kv_error(shared, format!("durable messages: {e}")))?;
    while let Some(msg) = msgs.next().await {
        let msg = msg.map_err(|e| kv_error(shared, format!("durable message: {e}")))?;
        let delivered = msg.info().map_or(1, |i| i.delivered);
        if delivered > 1 {
            shared.durable_redelivered.fetch_add(1, Ordering::Relaxed);
        }
        let last_try = delivered > i64::from(m.opts.redeliver);
        // The stream is written by every host of the cluster: its frames are untrusted
        // like any (start_ask checks them).
        let mut frame = msg.payload.to_vec();
        if frame.len() > 5 {
            frame[5] = procession::wire::FrameKind::Ask as u8;
        }
        let (mailbox, actor, ack_wait) = (m.mailbox, actor_id, m.opts.ack_wait);
        let room = shared.cfg.deliver_timeout;
        let outcome = tokio::task::spawn_blocking(move || {
            remote::start_ask(mailbox, actor, &frame, room, ack_wait)
                .and_then(|ask| ask.wait())
                .map_err(procession::Error::Remote)
                .and_then(|reply| remote::check_reply("durable", &reply))
        })
        .await
        .unwrap_or_else(|e| Err(procession::Error::Runtime(e.to_string())));
        let verdict = match outcome {
            Ok(()) => async_nats::jetstream::AckKind::Ack,
            Err(procession::Error::Rejected { source, .. }) => {
                shared.durable_poisoned.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %source, name = %m.name, "durable message the actor cannot decode: dropped");
                async_nats::jetstream::AckKind::Term
            }
            Err(e) if last_try => {
                shared.durable_poisoned.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, name = %m.name, delivered, "durable message failed every delivery: dropped as poison");
                async_nats::jetstream::AckKind::Term
            }
            Err(e) => {
                tracing::debug!(error = %e, name = %m.name, delivered, "durable message not handled: redelivered");
                async_nats::jetstream::AckKind::Nak(None)
            }
        };
        let acked = matches!(verdict, async_nats::jetstream::AckKind::Ack);
        // Wait for the server to have the ack: after a crash here, an acked message is
        // not delivered again.
        // (A connection lost meanwhile loses the ack's answer, not the consumer: the ack is
        // sent again until the server confirms it, or the message would wait for its
        // ack_wait to be delivered again.)
        let mut tries = 0;
        while let Err(e) = msg.double_ack_with(verdict).await {
            tries += 1;
            if tries >= 20 {
                return Err(kv_error(shared, format!("durable ack: {e}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if acked {
            shared.durable_acked.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

impl Handler<DurablePublish> for Gateway {
    fn handle(&mut self, m: DurablePublish, cx: &mut Context<Self>) -> Result<u64, RemoteError> {
        let publish = |s: Arc<Shared>| async move { durable_publish(&s, m).await };
        if !self.answer_in_task::<DurablePublish, _>(cx, publish) {
            return Err(told("a DurablePublish"));
        }
        Ok(0) // not sent: the token answers
    }
}

impl Handler<ServeDurable> for Gateway {
    fn handle(&mut self, m: ServeDurable, cx: &mut Context<Self>) -> Result<(), RemoteError> {
        let (Some(token), Some(rt)) = (cx.reply_later::<ServeDurable>(), &self.rt) else {
            return Err(told("a ServeDurable"));
        };
        let s = self.shared.clone();
        rt.spawn(async move {
            // Check it can be served now; then serve for good.
            match durable_consumer(&s, &m).await {
                Ok(_) => {
                    let _ = token.reply(Ok(()));
                    serve_durable(s, m).await;
                }
                Err(e) => {
                    let _ = token.reply(Err(e));
                }
            }
        });
        Ok(()) // not sent: the token answers
    }
}

// ---- links across hosts ----

impl Handler<Link> for Gateway {
    fn handle(&mut self, m: Link, cx: &mut Context<Self>) {
        let to = m.target;
        self.watch_remote(&to, |w| {
            if !w.links.iter().any(|(l, _)| *l == m.local) {
                w.links.push((m.local, m.local_actor.clone()));
            }
            true
        });
        // The other way: this gateway watches the local actor, and tells the other host
        // of its exit.
        lock(&self.shared.out_links)
            .entry(m.local)
            .or_default()
            .push((to.host.clone(), to.epoch, to.mailbox));
        match remote::watch_local(
            m.local,
            remote::actor_id(&m.local_actor),
            self.shared.mailbox,
        ) {
            Ok(None) => {}
            Ok(Some(down)) => <Self as Handler<Down>>::handle(self, down, cx),
            Err(e) => tracing::warn!(error = %e, "a link's local actor is gone"),
        }
        // The other host registers both the monitor of its actor and the link.
        self.register_watch(to, Some((m.local, m.local_actor)));
    }
}

impl Handler<Unlink> for Gateway {
    fn handle(&mut self, m: Unlink, _cx: &mut Context<Self>) {
        let to = m.target;
        {
            let mut watches = self.shared.watches_mut();
            if let Some(w) = watches
                .get_mut(&(to.host.clone(), to.epoch))
                .and_then(|t| t.get_mut(&to.mailbox))
            {
                w.links.retain(|(l, _)| *l != m.local);
            }
        }
        if let Some(out) = lock(&self.shared.out_links).get_mut(&m.local) {
            out.retain(|(h, e, t)| !(*h == to.host && *e == to.epoch && *t == to.mailbox));
        }
        let req = UnlinkRequest {
            from: self.shared.cfg.host.clone(),
            target: to.mailbox,
            local: m.local,
        };
        if let Ok(body) = cbor(&req) {
            self.queue(Job::Publish {
                subject: format!("{}.unlink", self.shared.cfg.prefix(&to.host)),
                payload: envelope::build(Kind::Request, self.shared.epoch, 0, &body),
            });
        }
    }
}
