//! Refs to actors on other hosts: the part of the cluster that lives in the core crate.
//!
//! The network itself is not here. A **gateway** (the crate `procession-nats`) is an
//! actor in the local tree, registered under [`GATEWAY_NAME`]; it owns the connection to
//! the cluster and bridges local mailboxes to it. This module gives what the rest of the
//! core and a gateway share, with no network dependency:
//!
//! - [`RemoteAddr`]: what an [`ActorRef`](crate::ActorRef) to an actor on another host
//!   carries: the host's name, the **epoch** of that host's runtime (a host that restarts
//!   gets a new one, so a stale ref is refused rather than delivered to whoever took its
//!   mailbox id), the mailbox id and the actor type.
//! - [`HostIdentity`]: who this host is, published by its gateway into the runtime
//!   directory so that every process of the runtime writes its refs with it.
//! - The gateway protocol: [`Forward`] (a tell or a stop), [`ForwardAsk`] and
//!   [`SpawnOn`], the messages a remote ref sends to the local gateway, and what monitors,
//!   links and supervisors of remote actors send ([`Monitor`], [`Demonitor`], [`Link`],
//!   [`Unlink`], [`Terminate`]).
//! - The receiving side's calls: [`deliver`], [`start_ask`] and [`spawn_local`], which a
//!   gateway uses for what came from another host, checking it as untrusted input.
//!
//! A ref to a local actor pays nothing for any of this: the remote path is one branch,
//! taken only by refs that name another host.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::mailbox::{Mailbox, SendFail, Wait};
use crate::process::{names, runtime};
use crate::wire::{decode_body, encode_body, FrameHeader, FrameKind, WIRE_VERSION};
use crate::{ByteBuf, Error, Message, Result};

/// The name under which a host's gateway registers itself ([`register`](crate::register)).
/// Remote refs send through the actor registered under it.
pub const GATEWAY_NAME: &str = "procession.gateway";

/// The address of an actor on another host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RemoteAddr {
    /// The host's name in its cluster.
    pub host: String,
    /// The epoch of that host's runtime when the ref was made.
    pub epoch: u64,
    /// The actor's mailbox id on that host.
    pub mailbox: u64,
    /// The actor type's stable name.
    pub actor: String,
}

/// Who this host is in its cluster: written by the gateway when it starts
/// ([`publish_host`]), read by every process of the runtime ([`this_host`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostIdentity {
    /// The cluster's name (a prefix of every subject the gateway uses).
    pub cluster: String,
    /// This host's name in the cluster.
    pub host: String,
    /// This runtime's epoch: random, fixed for the life of the runtime (a restarted
    /// gateway keeps it; a restarted host gets a new one).
    pub epoch: u64,
    /// The largest message the cluster's server takes, in bytes (NATS `max_payload`):
    /// a remote send of more fails with [`RemoteError::TooLarge`] before it is queued.
    pub max_payload: u64,
}

/// Why a send to, or a call on, an actor on another host failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// This host runs no gateway (none is registered under [`GATEWAY_NAME`]).
    #[error("this host runs no gateway: start one (procession-nats) to reach other hosts")]
    NoGateway,
    /// The gateway is not connected to the cluster's server now (it reconnects on its own).
    #[error("the gateway is not connected to the cluster")]
    Disconnected,
    /// No gateway of that host answers: the host is down, or not in this cluster.
    #[error("host {host:?} is unreachable (no gateway of it answers)")]
    HostUnreachable {
        /// The host.
        host: String,
    },
    /// The ref was made by an earlier run of that host: its actors are gone.
    #[error("the ref names epoch {epoch:x} of host {host:?}, which now runs epoch {current:x}")]
    StaleRef {
        /// The host.
        host: String,
        /// The ref's epoch.
        epoch: u64,
        /// The host's epoch now.
        current: u64,
    },
    /// The other side speaks another wire version.
    #[error("host {host:?} speaks wire version {theirs}, this one {ours}")]
    VersionMismatch {
        /// The other host.
        host: String,
        /// This build's [`WIRE_VERSION`].
        ours: u8,
        /// Theirs.
        theirs: u8,
    },
    /// The message is larger than the cluster's server takes (NATS `max_payload`).
    #[error("message of {len} bytes exceeds the cluster's limit of {max} bytes")]
    TooLarge {
        /// Its size on the wire.
        len: u64,
        /// The server's `max_payload`.
        max: u64,
    },
    /// No actor of the ref's type runs in that mailbox on that host.
    #[error("host {host:?} has no {actor} at mailbox {mailbox:016x}")]
    NoSuchActor {
        /// The host.
        host: String,
        /// The actor type the ref names.
        actor: String,
        /// The mailbox id.
        mailbox: u64,
    },
    /// The host cannot run that actor type (its binary does not link it).
    #[error("host {host:?} cannot run actor type {actor:?}; it runs {known:?}")]
    UnknownActorType {
        /// The host.
        host: String,
        /// The type asked for.
        actor: String,
        /// The types it can run.
        known: Vec<String>,
    },
    /// No answer within the time allowed.
    #[error("no answer from the other host within {0:?}")]
    Timeout(Duration),
    /// Something that came from another host did not parse: it was dropped.
    #[error("malformed input from another host: {0}")]
    BadInput(String),
    /// The other host could not do it (the reason is in the text).
    #[error("host {host:?} refused: {reason}")]
    Refused {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The operation is not available on a ref to a remote actor.
    #[error("{0} is not available on a ref to an actor on another host")]
    Unsupported(String),
}

/// A tell or a stop for an actor on another host: `frame` is the complete frame to put
/// in its mailbox there. A remote ref's [`tell`](crate::ActorRef::tell) sends this to
/// the local gateway. It is encoded as a CBOR array, not a map: the gateway decodes one
/// per remote tell, and field names were most of that work.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[serde(from = "ForwardWire", into = "ForwardWire")]
#[message(tag = "procession.remote.Forward")]
pub struct Forward {
    /// Where it goes.
    pub to: RemoteAddr,
    /// The frame.
    pub frame: ByteBuf,
}

/// How [`Forward`] is encoded: host, epoch, mailbox, actor type, frame.
#[derive(Serialize, Deserialize)]
struct ForwardWire(String, u64, u64, String, ByteBuf);

impl From<ForwardWire> for Forward {
    fn from(ForwardWire(host, epoch, mailbox, actor, frame): ForwardWire) -> Self {
        Forward {
            to: RemoteAddr {
                host,
                epoch,
                mailbox,
                actor,
            },
            frame,
        }
    }
}

impl From<Forward> for ForwardWire {
    fn from(Forward { to, frame }: Forward) -> Self {
        ForwardWire(to.host, to.epoch, to.mailbox, to.actor, frame)
    }
}

/// An ask of an actor on another host: `frame` is the ask's frame (its correlation id
/// and reply inbox are filled in there). The reply is the reply frame as it came back,
/// which the asker checks like any frame from another process.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.remote.ForwardAsk", reply = std::result::Result<ByteBuf, RemoteError>)]
pub struct ForwardAsk {
    /// Where it goes.
    pub to: RemoteAddr,
    /// The ask's frame.
    pub frame: ByteBuf,
    /// How long the asker waits.
    pub timeout: Duration,
}

/// Spawn an actor of type `actor` with the encoded spawn arguments `args` on `host`:
/// what [`spawn_on`] sends to the local gateway.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.remote.SpawnOn", reply = std::result::Result<RemoteAddr, RemoteError>)]
pub struct SpawnOn {
    /// The host to run it on.
    pub host: String,
    /// The actor type's stable name.
    pub actor: String,
    /// Its spawn arguments, encoded.
    pub args: ByteBuf,
    /// How long the caller waits.
    pub timeout: Duration,
    /// Its mailbox capacity in messages, if not the default.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// The limits the kernel enforces on it there.
    #[serde(default)]
    pub limits: crate::process::Limits,
}

/// Terminate an actor on another host by a supervisor's [`Shutdown`] rule, on that host
/// (a graceful stop, then a kill by its zygote at the deadline), and answer with its
/// exit once it has exited: what a supervisor sends to the local gateway for a child on
/// another host.
///
/// [`Shutdown`]: crate::supervisor::Shutdown
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.remote.Terminate", reply = std::result::Result<crate::Exit, RemoteError>)]
pub struct Terminate {
    /// The actor.
    pub to: RemoteAddr,
    /// How it is stopped.
    pub shutdown: crate::supervisor::Shutdown,
    /// How long the caller waits.
    pub timeout: Duration,
}

/// Local mailbox `watcher` monitors `target`, an actor on another host: what
/// [`Context::monitor`](crate::Context::monitor) of a remote ref sends to the local
/// gateway. The `Down` comes as for a local monitor, with
/// [`Exit::HostLost`](crate::Exit::HostLost) if the target's host is lost first.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.remote.Monitor")]
pub struct Monitor {
    /// The local mailbox that gets the `Down`.
    pub watcher: u64,
    /// The actor monitored.
    pub target: RemoteAddr,
}

/// Local mailbox `watcher` no longer monitors `target` ([`Context::demonitor`](crate::Context::demonitor)).
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.remote.Demonitor")]
pub struct Demonitor {
    /// The local mailbox.
    pub watcher: u64,
    /// The actor it monitored.
    pub target: RemoteAddr,
}

/// Local mailbox `local` (an actor of type `local_actor`) links with `target`, an actor
/// on another host: what [`Context::link`](crate::Context::link) of a remote ref sends
/// to the local gateway. OTP's rules hold across the hosts, and a lost host is an exit
/// with [`Exit::HostLost`](crate::Exit::HostLost) for the other side.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.remote.Link")]
pub struct Link {
    /// The local actor's mailbox.
    pub local: u64,
    /// Its type's stable name.
    pub local_actor: String,
    /// The actor on another host.
    pub target: RemoteAddr,
}

/// Undoes a [`Link`] ([`Context::unlink`](crate::Context::unlink)).
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.remote.Unlink")]
pub struct Unlink {
    /// The local actor's mailbox.
    pub local: u64,
    /// The actor on another host.
    pub target: RemoteAddr,
}

// ---- who this host is ----

fn host_file() -> Result<PathBuf> {
    Ok(runtime::get()?.dir().join("host"))
}

/// The file in the runtime directory where a gateway keeps what a crash of its process
/// must not lose (the monitors and links it holds of actors on other hosts). It goes
/// with the runtime directory. What a gateway reads back from it is untrusted input.
///
/// # Errors
/// [`Error::RuntimeLost`] without a runtime.
pub fn gateway_state_file() -> Result<PathBuf> {
    Ok(runtime::get()?.dir().join("gateway-state"))
}

/// Publishes this host's identity for every process of the runtime (a gateway calls it
/// once connected). The file is replaced atomically.
///
/// # Errors
/// [`Error::Io`] if it cannot be written; [`Error::RuntimeLost`] without a runtime.
pub fn publish_host(id: &HostIdentity) -> Result<()> {
    let path = host_file()?;
    let mut bytes = Vec::new();
    encode_body(id, &mut bytes)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| Error::io("cannot write the host file", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("cannot publish the host file", e))?;
    *HOST.lock().unwrap_or_else(|e| e.into_inner()) = (Some(Arc::new(id.clone())), None);
    Ok(())
}

/// What [`this_host`] knows, and when it last looked for the file without finding it.
type HostCache = (Option<Arc<HostIdentity>>, Option<Instant>);

static HOST: Mutex<HostCache> = Mutex::new((None, None));

/// How often a process without a host identity looks for the file again.
const HOST_RECHECK: Duration = Duration::from_millis(100);

/// This host's identity, once its gateway has published it; `None` on a host with no
/// gateway. The file is in the runtime directory, which any process of the same user can
/// write: a file that does not decode counts as none (and is logged).
pub fn this_host() -> Option<Arc<HostIdentity>> {
    let mut cache = HOST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(id) = &cache.0 {
        return Some(id.clone());
    }
    if cache.1.is_some_and(|t| t.elapsed() < HOST_RECHECK) {
        return None;
    }
    cache.1 = Some(Instant::now());
    let bytes = std::fs::read(host_file().ok()?).ok()?;
    match decode_body::<HostIdentity>(&bytes, "HostIdentity") {
        Ok(id) => {
            let id = Arc::new(id);
            cache.0 = Some(id.clone());
            Some(id)
        }
        Err(e) => {
            tracing::warn!(error = %e, "the runtime's host file does not decode; ignored");
            None
        }
    }
}

/// `true` if `host`/`epoch` name this runtime (or name no host at all).
pub(crate) fn is_here(host: Option<&str>, epoch: u64) -> bool {
    match host {
        None => true,
        Some(h) => this_host().is_some_and(|id| id.host == h && id.epoch == epoch),
    }
}

// ---- the sending side ----

static GATEWAY: Mutex<Option<Arc<Mailbox>>> = Mutex::new(None);

/// The local gateway's mailbox.
fn gateway() -> std::result::Result<Arc<Mailbox>, RemoteError> {
    let mut cached = GATEWAY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(mb) = cached.as_ref() {
        if !mb.is_gone() {
            return Ok(mb.clone());
        }
    }
    let rt = runtime::get().map_err(|_| RemoteError::NoGateway)?;
    let (id, _) = names::lookup(rt.dir(), GATEWAY_NAME).ok_or(RemoteError::NoGateway)?;
    let mb = Mailbox::open(rt.dir(), id).map_err(|_| RemoteError::NoGateway)?;
    if mb.is_gone() {
        return Err(RemoteError::NoGateway);
    }
    *cached = Some(mb.clone());
    Ok(mb)
}

/// The borrowed form of [`Forward`], encoded the same way ([`ForwardWire`]).
#[derive(Serialize)]
struct ForwardRef<'a>(&'a str, u64, u64, &'a str, &'a serde_bytes::Bytes);

impl<'a> ForwardRef<'a> {
    fn of(to: &'a RemoteAddr, frame: &'a [u8]) -> Self {
        ForwardRef(
            &to.host,
            to.epoch,
            to.mailbox,
            &to.actor,
            serde_bytes::Bytes::new(frame),
        )
    }
}

/// Why a remote send did not go.
pub(crate) enum SendError {
    /// The local gateway's mailbox refused it.
    Local(SendFail, u64),
    /// Before it reached the gateway.
    Remote(RemoteError),
    /// The message did not encode.
    Wire(crate::wire::WireError),
}

/// Builds the frame of a message for `to` (its header, then `body` encoded).
fn frame_of<T: Serialize + ?Sized>(header: FrameHeader, body: &T) -> Result<Vec<u8>, SendError> {
    let mut frame = Vec::new();
    header.write_into(&mut frame);
    encode_body(body, &mut frame).map_err(SendError::Wire)?;
    FrameHeader::seal(&mut frame).map_err(SendError::Wire)?;
    if let Some(id) = this_host() {
        if frame.len() as u64 > id.max_payload {
            return Err(SendError::Remote(RemoteError::TooLarge {
                len: frame.len() as u64,
                max: id.max_payload,
            }));
        }
    }
    Ok(frame)
}

/// Sends a tell (or a stop, by its header) to an actor on another host, through the
/// gateway; returns once the gateway has it.
pub(crate) fn send<T: Serialize + ?Sized>(
    to: &RemoteAddr,
    header: FrameHeader,
    body: &T,
    wait: Wait,
) -> std::result::Result<(), SendError> {
    let frame = frame_of(header, body)?;
    let gw = gateway().map_err(SendError::Remote)?;
    let fwd = ForwardRef::of(to, &frame);
    let header = FrameHeader {
        kind: FrameKind::Tell,
        tag: Forward::TAG_ID,
        corr: 0,
        reply_to: 0,
    };
    let sent = crate::actor::with_frame(header, &fwd, |f| {
        gw.send(f, wait).map_err(|e| (e, f.len() as u64))
    })
    .map_err(SendError::Wire)?;
    sent.map_err(|(fail, len)| SendError::Local(fail, len))
}

/// Asks an actor on another host, through the gateway, and returns the reply frame's
/// kind and body, checked.
pub(crate) fn ask<Q: Serialize + ?Sized, R: serde::de::DeserializeOwned>(
    to: &RemoteAddr,
    tag: u64,
    msg: &Q,
    what: &'static str,
    timeout: Duration,
) -> Result<R> {
    let (gw, req) = forward_ask(to, tag, msg, timeout)?;
    // The gateway answers by the request's own timeout; the margin is for its own hop.
    let reply: std::result::Result<ByteBuf, RemoteError> = crate::actor::ask_mailbox(
        &gw,
        ForwardAsk::TAG_ID,
        &req,
        "ForwardAsk",
        timeout + GATEWAY_MARGIN,
    )
    .map_err(|e| match e {
        Error::Timeout(_) => Error::Timeout(timeout),
        other => other,
    })?;
    finish_ask(to, reply, what, timeout)
}

/// The gateway, and the request that asks `to` a message `msg` of type `tag` through it.
fn forward_ask<Q: Serialize + ?Sized>(
    to: &RemoteAddr,
    tag: u64,
    msg: &Q,
    timeout: Duration,
) -> Result<(Arc<Mailbox>, ForwardAsk)> {
    let header = FrameHeader {
        kind: FrameKind::Ask,
        tag,
        corr: 0,
        reply_to: 0,
    };
    let frame = match frame_of(header, msg) {
        Ok(f) => f,
        Err(SendError::Wire(e)) => return Err(Error::Wire(e)),
        Err(SendError::Remote(e)) => return Err(Error::Remote(e)),
        Err(SendError::Local(..)) => unreachable!("frame_of sends nothing"),
    };
    let gw = gateway().map_err(Error::Remote)?;
    let req = ForwardAsk {
        to: to.clone(),
        frame: ByteBuf::from(frame),
        timeout,
    };
    Ok((gw, req))
}

/// What the gateway's answer to a [`ForwardAsk`] of `to` means for the asker.
pub(crate) fn finish_ask<R: serde::de::DeserializeOwned>(
    to: &RemoteAddr,
    reply: std::result::Result<ByteBuf, RemoteError>,
    what: &'static str,
    timeout: Duration,
) -> Result<R> {
    let reply = reply.map_err(|e| match e {
        RemoteError::Timeout(_) => Error::Timeout(timeout),
        // The other host knows the type by its id only when no such actor is there.
        RemoteError::NoSuchActor { host, mailbox, .. } => Error::Remote(RemoteError::NoSuchActor {
            host,
            actor: to.actor.clone(),
            mailbox,
        }),
        e => Error::Remote(e),
    })?;
    let (h, body) = FrameHeader::parse(&reply)
        .map_err(|e| Error::Remote(RemoteError::BadInput(format!("reply frame: {e}"))))?;
    crate::actor::interpret_reply_from(&to.actor, 0, h.kind, body, what)
}

/// The future of an ask of `to` through the gateway: [`ActorRef::ask_async`](crate::ActorRef::ask_async)
/// of a remote ref.
pub(crate) fn ask_future<Q: Serialize + ?Sized, R: serde::de::DeserializeOwned>(
    to: &Arc<RemoteAddr>,
    tag: u64,
    msg: &Q,
    what: &'static str,
    timeout: Duration,
) -> crate::AskFuture<R> {
    match forward_ask(to, tag, msg, timeout) {
        Ok((gw, req)) => {
            crate::AskFuture::through_gateway(gw, to.clone(), &req, what, timeout + GATEWAY_MARGIN)
        }
        Err(e) => crate::AskFuture::failed(e),
    }
}

/// Tells the gateway that local mailbox `watcher` monitors `target`.
pub(crate) fn monitor(watcher: u64, target: &RemoteAddr) -> Result<()> {
    let gw = gateway().map_err(Error::Remote)?;
    let m = Monitor {
        watcher,
        target: target.clone(),
    };
    send_to_gateway(&gw, Monitor::TAG_ID, &m)
}

/// Tells the gateway that local mailbox `watcher` no longer monitors `target`; `false` if
/// there is no gateway to tell.
pub(crate) fn demonitor(watcher: u64, target: &RemoteAddr) -> bool {
    let Ok(gw) = gateway() else { return false };
    let m = Demonitor {
        watcher,
        target: target.clone(),
    };
    send_to_gateway(&gw, Demonitor::TAG_ID, &m).is_ok()
}

/// A tell of `msg` (of message type `tag`) to the gateway, waiting at most 5 s for room.
fn send_to_gateway<T: Serialize>(gw: &Mailbox, tag: u64, msg: &T) -> Result<()> {
    let header = FrameHeader {
        kind: FrameKind::Tell,
        tag,
        corr: 0,
        reply_to: 0,
    };
    let wait = Wait::from_timeout(Some(crate::DEFAULT_STOP_TIMEOUT));
    match crate::actor::with_frame(header, msg, |f| gw.send(f, wait))? {
        Ok(()) => Ok(()),
        Err(SendFail::Dead | SendFail::Lost) => Err(Error::Remote(RemoteError::NoGateway)),
        Err(_) => Err(Error::Timeout(crate::DEFAULT_STOP_TIMEOUT)),
    }
}

/// Tells the gateway that local mailbox `local`, an actor of type `local_actor`, links
/// with `target`.
pub(crate) fn link(local: u64, local_actor: &str, target: &RemoteAddr) -> Result<()> {
    let gw = gateway().map_err(Error::Remote)?;
    let m = Link {
        local,
        local_actor: local_actor.to_string(),
        target: target.clone(),
    };
    send_to_gateway(&gw, Link::TAG_ID, &m)
}

/// Tells the gateway that local mailbox `local` no longer links with `target`.
pub(crate) fn unlink(local: u64, target: &RemoteAddr) {
    if let Ok(gw) = gateway() {
        let m = Unlink {
            local,
            target: target.clone(),
        };
        let _ = send_to_gateway(&gw, Unlink::TAG_ID, &m);
    }
}

/// Applies the exit of a linked actor on another host (or of that host) to the local
/// actor at `local`, with OTP's rules, as for a local link: one that traps exits gets
/// `exited` as a message, for every exit; one that does not is killed unless the exit
/// is normal. Its process is found by its mailbox in this runtime's own records, never
/// by a pid read from shared memory.
pub fn link_exit(local: u64, exited: &crate::Exited) {
    let Ok(rt) = runtime::get() else { return };
    let Ok(mb) = Mailbox::open(rt.dir(), local) else {
        return;
    };
    if mb.is_gone() {
        return;
    }
    if mb.traps_exits() {
        crate::process::send_notice(&mb, crate::process::EXITED_TAG, exited);
    } else if !exited.exit.is_normal() && mb.state() == crate::mailbox::STATE_RUNNING {
        mb.record_exit(
            crate::mailbox::ExitKind::Linked,
            0,
            &format!("linked actor {} exited: {}", exited.actor, exited.exit),
        );
        if !crate::process::fork::signal_child(local, nix::sys::signal::Signal::SIGKILL) {
            crate::process::signal_consumer(local, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// What a call through the gateway waits beyond the caller's own timeout.
pub(crate) const GATEWAY_MARGIN: Duration = Duration::from_secs(1);

/// Spawns an actor of type `A` on `host` (through this host's gateway) and returns its
/// ref: Erlang's `spawn(Node, ...)`. The host must link `A` (the same binary, or one that
/// has the same actor type under the same stable name); it runs the actor as a child of
/// its gateway, so the actor ends if that gateway's process ends.
///
/// # Errors
/// [`Error::Remote`] with [`RemoteError::UnknownActorType`] if the host cannot run `A`,
/// [`RemoteError::HostUnreachable`], [`RemoteError::NoGateway`],
/// [`RemoteError::Disconnected`] or [`RemoteError::Refused`] (its spawn failed);
/// [`Error::Timeout`] after `timeout`; [`Error::Wire`] if the arguments do not encode.
pub fn spawn_on<A: crate::ActorType>(
    host: &str,
    args: A::Args,
    timeout: Duration,
) -> Result<crate::ActorRef<A>> {
    let mut bytes = Vec::new();
    encode_body(&args, &mut bytes)?;
    let addr = spawn_raw(host, A::NAME, bytes, None, Default::default(), timeout)?;
    ref_to(addr)
}

/// Spawns an actor of the type named `actor`, with encoded arguments, on `host`; checks
/// that the answer names that type on that host.
pub(crate) fn spawn_raw(
    host: &str,
    actor: &str,
    args: Vec<u8>,
    capacity: Option<u32>,
    limits: crate::process::Limits,
    timeout: Duration,
) -> Result<RemoteAddr> {
    let gw = gateway().map_err(Error::Remote)?;
    let req = SpawnOn {
        host: host.to_string(),
        actor: actor.to_string(),
        args: ByteBuf::from(args),
        timeout,
        capacity,
        limits,
    };
    let addr: std::result::Result<RemoteAddr, RemoteError> = crate::actor::ask_mailbox(
        &gw,
        SpawnOn::TAG_ID,
        &req,
        "SpawnOn",
        timeout + GATEWAY_MARGIN,
    )?;
    let addr = addr.map_err(|e| match e {
        RemoteError::Timeout(_) => Error::Timeout(timeout),
        e => Error::Remote(e),
    })?;
    if addr.actor != actor || addr.host != host {
        return Err(Error::Remote(RemoteError::BadInput(format!(
            "asked {host:?} for a {actor}, got a ref to a {} on {:?}",
            addr.actor, addr.host
        ))));
    }
    Ok(addr)
}

/// How long a supervisor waits for a child on another host to be terminated beyond its
/// shutdown allowance (for [`Shutdown::Infinity`](crate::supervisor::Shutdown::Infinity),
/// in all: the host's gateway answers earlier if the host is lost).
pub(crate) const TERMINATE_MARGIN: Duration = Duration::from_secs(10);
/// The longest a supervisor waits for a child on another host with an `Infinity` shutdown.
pub(crate) const TERMINATE_INFINITY: Duration = Duration::from_secs(3600);

/// Terminates `to`, an actor on another host, by `shutdown` on its host, and returns its
/// exit (see [`Terminate`]).
pub(crate) fn terminate(
    to: &RemoteAddr,
    shutdown: crate::supervisor::Shutdown,
) -> Result<crate::Exit> {
    use crate::supervisor::Shutdown;
    let timeout = match shutdown {
        Shutdown::BrutalKill => TERMINATE_MARGIN,
        Shutdown::Timeout(d) => d.saturating_add(TERMINATE_MARGIN),
        Shutdown::Infinity => TERMINATE_INFINITY,
    };
    let gw = gateway().map_err(Error::Remote)?;
    let req = Terminate {
        to: to.clone(),
        shutdown,
        timeout,
    };
    let exit: std::result::Result<crate::Exit, RemoteError> = crate::actor::ask_mailbox(
        &gw,
        Terminate::TAG_ID,
        &req,
        "Terminate",
        timeout + GATEWAY_MARGIN,
    )?;
    exit.map_err(|e| match e {
        RemoteError::Timeout(_) => Error::Timeout(timeout),
        e => Error::Remote(e),
    })
}

// ---- the receiving side (a gateway's calls) ----

/// Checks a frame that came from another host: it parses, and its kind is one of `kinds`.
fn check_frame<'a>(
    frame: &'a [u8],
    kinds: &[FrameKind],
) -> std::result::Result<(FrameHeader, &'a [u8]), RemoteError> {
    let (h, body) = FrameHeader::parse(frame).map_err(|e| RemoteError::BadInput(e.to_string()))?;
    if !kinds.contains(&h.kind) {
        return Err(RemoteError::BadInput(format!(
            "a {:?} frame where {kinds:?} was expected",
            h.kind
        )));
    }
    Ok((h, body))
}

/// The local mailboxes that other hosts' messages went to lately, kept mapped: a gateway
/// delivers many messages to few mailboxes, and a mapping per message would cost an
/// open, an mmap and an munmap each.
static TARGETS: Mutex<Option<std::collections::HashMap<u64, Arc<Mailbox>>>> = Mutex::new(None);

/// How many such mailboxes stay mapped.
const MAX_TARGETS: usize = 1024;

/// The id of an actor type on the wire between gateways: [`tag_id`](crate::wire::tag_id)
/// of its stable name.
pub const fn actor_id(name: &str) -> u64 {
    crate::wire::tag_id(name)
}

/// The local mailbox `mailbox`, if it holds an actor whose type has the id `actor` (see
/// [`actor_id`]) and that is not gone.
fn local_target(mailbox: u64, actor: u64) -> std::result::Result<Arc<Mailbox>, RemoteError> {
    let no_such = || RemoteError::NoSuchActor {
        host: this_host().map(|h| h.host.clone()).unwrap_or_default(),
        actor: format!("{actor:016x}"),
        mailbox,
    };
    let mut targets = TARGETS.lock().unwrap_or_else(|e| e.into_inner());
    let targets = targets.get_or_insert_with(Default::default);
    let mb = match targets.get(&mailbox) {
        Some(mb) if !mb.is_gone() => mb.clone(),
        _ => {
            let rt = runtime::get().map_err(|_| no_such())?;
            let mb = Mailbox::open(rt.dir(), mailbox).map_err(|_| no_such())?;
            if targets.len() >= MAX_TARGETS {
                targets.retain(|_, mb| !mb.is_gone());
                if targets.len() >= MAX_TARGETS {
                    targets.clear();
                }
            }
            targets.insert(mailbox, mb.clone());
            mb
        }
    };
    if actor_id(mb.actor_name()) != actor || mb.is_gone() {
        return Err(no_such());
    }
    Ok(mb)
}

/// Puts a tell or stop frame that came from another host into the local mailbox
/// `mailbox`, which must hold an actor whose type has the id `actor` ([`actor_id`]).
/// Waits at most `timeout` for room.
/// The frame is untrusted: one that does not parse, or is not a plain tell or stop, is
/// refused with [`RemoteError::BadInput`] and nothing is queued.
///
/// # Errors
/// [`RemoteError::BadInput`], [`RemoteError::NoSuchActor`] (also for an actor gone
/// meanwhile), [`RemoteError::Timeout`] if the mailbox stayed full,
/// [`RemoteError::TooLarge`] above the mailbox's maximum frame.
pub fn deliver(
    mailbox: u64,
    actor: u64,
    frame: &[u8],
    timeout: Duration,
) -> std::result::Result<(), RemoteError> {
    let (h, _) = check_frame(frame, &[FrameKind::Tell, FrameKind::Stop])?;
    if h.corr != 0 || h.reply_to != 0 {
        return Err(RemoteError::BadInput(
            "a tell or stop from another host carries no correlation id or reply inbox".into(),
        ));
    }
    let mb = local_target(mailbox, actor)?;
    match mb.send(frame, Wait::from_timeout(Some(timeout))) {
        Ok(()) => Ok(()),
        Err(SendFail::Timeout | SendFail::Full) => Err(RemoteError::Timeout(timeout)),
        Err(SendFail::TooLarge) => Err(RemoteError::TooLarge {
            len: frame.len() as u64,
            max: mb.max_frame(),
        }),
        Err(SendFail::Dead | SendFail::Lost | SendFail::Corrupt) => Err(RemoteError::NoSuchActor {
            host: this_host().map(|h| h.host.clone()).unwrap_or_default(),
            actor: mb.actor_name().to_string(),
            mailbox,
        }),
    }
}

/// As [`deliver`], for frames that came together (a batch of tells for one mailbox):
/// they go into the mailbox in order, with one lock and one wake-up for as many as fit.
/// Returns how many were queued, and the error that stopped the rest: the frame at that
/// index was refused ([`RemoteError::BadInput`], the later ones are not looked at), or
/// it and the later ones were not queued (the mailbox stayed full, is gone, ...).
///
/// # Errors
/// As [`deliver`].
pub fn deliver_many(
    mailbox: u64,
    actor: u64,
    frames: &[&[u8]],
    timeout: Duration,
) -> (usize, std::result::Result<(), RemoteError>) {
    let mut good = frames.len();
    let mut bad = None;
    for (i, frame) in frames.iter().enumerate() {
        let checked = check_frame(frame, &[FrameKind::Tell, FrameKind::Stop]).and_then(|(h, _)| {
            if h.corr != 0 || h.reply_to != 0 {
                return Err(RemoteError::BadInput(
                    "a tell or stop from another host carries no correlation id or reply inbox"
                        .into(),
                ));
            }
            Ok(())
        });
        if let Err(e) = checked {
            (good, bad) = (i, Some(e));
            break;
        }
    }
    if good == 0 {
        return (0, bad.map_or(Ok(()), Err));
    }
    let mb = match local_target(mailbox, actor) {
        Ok(mb) => mb,
        Err(e) => return (0, Err(e)),
    };
    let (sent, result) = mb.send_many(&frames[..good], Wait::from_timeout(Some(timeout)));
    let failed = |fail: SendFail, at: usize| match fail {
        SendFail::Timeout | SendFail::Full => RemoteError::Timeout(timeout),
        SendFail::TooLarge => RemoteError::TooLarge {
            len: frames[at].len() as u64,
            max: mb.max_frame(),
        },
        SendFail::Dead | SendFail::Lost | SendFail::Corrupt => RemoteError::NoSuchActor {
            host: this_host().map(|h| h.host.clone()).unwrap_or_default(),
            actor: mb.actor_name().to_string(),
            mailbox,
        },
    };
    match result {
        Ok(()) => (sent, bad.map_or(Ok(()), Err)),
        Err(fail) => (sent, Err(failed(fail, sent.min(frames.len() - 1)))),
    }
}

/// An ask that came from another host, queued in a local mailbox by [`start_ask`]:
/// [`wait`](Self::wait) gives the reply frame to send back.
#[must_use = "wait gives the reply"]
pub struct LocalAsk {
    target: Arc<Mailbox>,
    tag: u64,
    rx: crossbeam_channel::Receiver<crate::actor::Routed>,
    /// Where the router wakes the task of [`wait_async`](LocalAsk::wait_async).
    waker: crate::actor::WakerSlot,
    deadline: Instant,
    timeout: Duration,
}

impl std::fmt::Debug for LocalAsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAsk")
            .field("actor", &self.target.actor_name())
            .field("tag", &self.tag)
            .finish()
    }
}

fn this_host_name() -> String {
    this_host().map(|h| h.host.clone()).unwrap_or_default()
}

/// Queues an ask frame that came from another host in the local mailbox `mailbox`, which
/// must hold an actor whose type has the id `actor` ([`actor_id`]), waiting at most
/// `room` for room in it (zero: not at all); the reply is awaited for `timeout`. It is queued
/// before this returns, so a gateway that calls this and [`deliver`] from one thread keeps
/// each sender's order. The frame is untrusted: it must parse and be an ask; its
/// correlation id and reply inbox are replaced by this process's own.
///
/// # Errors
/// [`RemoteError::BadInput`], [`RemoteError::NoSuchActor`], [`RemoteError::Timeout`]
/// (with `room`) if the mailbox stayed full, [`RemoteError::TooLarge`],
/// [`RemoteError::Refused`] if this process cannot take replies.
pub fn start_ask(
    mailbox: u64,
    actor: u64,
    frame: &[u8],
    room: Duration,
    timeout: Duration,
) -> std::result::Result<LocalAsk, RemoteError> {
    let (h, _) = check_frame(frame, &[FrameKind::Ask])?;
    let target = local_target(mailbox, actor)?;
    let router = crate::actor::router().map_err(|e| RemoteError::Refused {
        host: this_host_name(),
        reason: e.to_string(),
    })?;
    let now = Instant::now();
    let deadline = now + timeout;
    let mut frame = frame.to_vec();
    let waker: crate::actor::WakerSlot = Arc::new(Mutex::new(None));
    match router.start_raw_ask(
        &target,
        &mut frame,
        now + room,
        deadline,
        Some(waker.clone()),
    ) {
        Ok((_, rx)) => Ok(LocalAsk {
            target,
            tag: h.tag,
            rx,
            waker,
            deadline,
            timeout,
        }),
        Err(SendFail::Timeout | SendFail::Full) => Err(RemoteError::Timeout(room)),
        Err(SendFail::TooLarge) => Err(RemoteError::TooLarge {
            len: frame.len() as u64,
            max: target.max_frame(),
        }),
        Err(SendFail::Dead | SendFail::Lost | SendFail::Corrupt) => Err(RemoteError::NoSuchActor {
            host: this_host_name(),
            actor: target.actor_name().to_string(),
            mailbox,
        }),
    }
}

impl LocalAsk {
    /// Waits (blocking, at most the ask's timeout) for the reply, and returns the reply
    /// frame to send to the asker's host. An actor that died handling it gives a reply
    /// frame that says so, as a local asker would hear it.
    ///
    /// # Errors
    /// [`RemoteError::Timeout`]; [`RemoteError::Refused`] if this host's runtime was lost.
    pub fn wait(self) -> std::result::Result<Vec<u8>, RemoteError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let routed = self
            .rx
            .recv_timeout(left + crate::mailbox::LIVENESS_SLICE * 4)
            .unwrap_or(crate::actor::Routed::TimedOut);
        self.reply_frame(routed)
    }

    /// As [`wait`](Self::wait), without blocking the thread that polls it: the process's
    /// reply router wakes the task (on any executor). It resolves by the ask's timeout at
    /// the latest: the router ends the wait then.
    pub fn wait_async(
        self,
    ) -> impl std::future::Future<Output = std::result::Result<Vec<u8>, RemoteError>> {
        let mut this = Some(self);
        std::future::poll_fn(move |cx| {
            let ask = this.as_ref().expect("polled after it resolved");
            let routed = match ask.rx.try_recv() {
                Ok(r) => Some(r),
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    Some(crate::actor::Routed::TimedOut)
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    *ask.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
                    // The reply may have come between the check and the waker.
                    match ask.rx.try_recv() {
                        Ok(r) => Some(r),
                        Err(crossbeam_channel::TryRecvError::Disconnected) => {
                            Some(crate::actor::Routed::TimedOut)
                        }
                        Err(crossbeam_channel::TryRecvError::Empty) => None,
                    }
                }
            };
            match routed {
                Some(r) => {
                    let ask = this.take().expect("checked above");
                    std::task::Poll::Ready(ask.reply_frame(r))
                }
                None => std::task::Poll::Pending,
            }
        })
    }

    /// The reply frame for what the router said.
    fn reply_frame(
        &self,
        routed: crate::actor::Routed,
    ) -> std::result::Result<Vec<u8>, RemoteError> {
        use crate::actor::Routed;
        let refused = |reason: String| RemoteError::Refused {
            host: this_host_name(),
            reason,
        };
        match routed {
            Routed::Reply(kind, body) => {
                let mut frame = Vec::with_capacity(crate::wire::HEADER_LEN + body.len());
                FrameHeader {
                    kind,
                    tag: self.tag,
                    corr: 0,
                    reply_to: 0,
                }
                .write_into(&mut frame);
                frame.extend_from_slice(&body);
                FrameHeader::seal(&mut frame).map_err(|e| refused(e.to_string()))?;
                Ok(frame)
            }
            Routed::TimedOut => Err(RemoteError::Timeout(self.timeout)),
            Routed::Died => {
                let exit = if self.target.state() == crate::mailbox::STATE_EXITED {
                    crate::Exit::from_raw(self.target.raw_exit())
                } else {
                    crate::Exit::RuntimeLost
                };
                let failure = crate::actor::ReplyFailure::Died(exit, self.target.pid());
                crate::actor::failure_frame(self.tag, failure).map_err(|e| refused(e.to_string()))
            }
            Routed::Lost => Err(refused("this host's runtime was lost".into())),
        }
    }
}

/// The address of the actor registered under `name` in this runtime
/// ([`register`](crate::register)), as another host would use it; `None` if no live actor
/// holds the name, or this host has no identity yet.
pub fn lookup_local(name: &str) -> Option<RemoteAddr> {
    let id = this_host()?;
    let rt = runtime::get().ok()?;
    let (mailbox, actor) = names::lookup(rt.dir(), name)?;
    local_target(mailbox, actor_id(&actor)).ok()?;
    Some(RemoteAddr {
        host: id.host.clone(),
        epoch: id.epoch,
        mailbox,
        actor,
    })
}

/// A ref to the actor at `addr`: local if `addr` names this host's runtime, remote
/// otherwise. For gateways, which learn addresses from other hosts.
///
/// # Errors
/// [`Error::Remote`] ([`RemoteError::NoSuchActor`]) if `addr` is of this host and no
/// `A` is there; [`Error::BadRef`] if `addr` names another actor type than `A`.
pub fn ref_to<A: crate::ActorType>(addr: RemoteAddr) -> Result<crate::ActorRef<A>> {
    if addr.actor != A::NAME {
        return Err(Error::BadRef(format!(
            "a ref to a {} used as a ref to a {}",
            addr.actor,
            A::NAME
        )));
    }
    if is_here(Some(&addr.host), addr.epoch) {
        let mb = local_target(addr.mailbox, actor_id(&addr.actor)).map_err(Error::Remote)?;
        return Ok(crate::ActorRef::from_mailbox(mb));
    }
    Ok(crate::ActorRef::from_remote(addr))
}

/// What a reply frame (from [`LocalAsk::wait`]) says, for an ask whose reply the caller
/// does not need: `Ok` if the handler returned, else the error an asker would get
/// ([`Error::Rejected`], [`Error::ActorDied`], ...). `actor` names the actor in it.
///
/// # Errors
/// That error; [`Error::Wire`] for a frame that does not parse.
pub fn check_reply(actor: &str, frame: &[u8]) -> Result<()> {
    let (h, body) = FrameHeader::parse(frame)?;
    crate::actor::interpret_reply_from::<serde::de::IgnoredAny>(actor, 0, h.kind, body, "reply")
        .map(|_| ())
}

/// `true` if `addr` names this host's runtime and a live actor of its type is at its
/// mailbox.
pub fn is_alive_here(addr: &RemoteAddr) -> bool {
    is_here(Some(&addr.host), addr.epoch)
        && local_target(addr.mailbox, actor_id(&addr.actor)).is_ok()
}

/// The actor types this binary can run, by stable name.
pub fn actor_types() -> Vec<String> {
    crate::process::registry::ACTORS
        .iter()
        .map(|e| e.name.to_string())
        .collect()
}

/// Spawns, in this host, an actor of type `actor` with encoded arguments that came from
/// another host, as a child of the calling process; returns its address.
///
/// # Errors
/// [`RemoteError::UnknownActorType`] if this binary does not link `actor`;
/// [`RemoteError::Refused`] if the spawn failed (its `create` failed, or the arguments
/// did not decode); [`RemoteError::NoGateway`] if this host has no identity yet.
pub fn spawn_local(actor: &str, args: Vec<u8>) -> std::result::Result<RemoteAddr, RemoteError> {
    spawn_local_with(actor, args, None, crate::process::Limits::default())
}

/// As [`spawn_local`], with the mailbox capacity and the limits the request gave.
///
/// # Errors
/// As [`spawn_local`].
pub fn spawn_local_with(
    actor: &str,
    args: Vec<u8>,
    capacity: Option<u32>,
    limits: crate::process::Limits,
) -> std::result::Result<RemoteAddr, RemoteError> {
    let id = this_host().ok_or(RemoteError::NoGateway)?;
    if crate::process::registry::find(actor).is_none() {
        return Err(RemoteError::UnknownActorType {
            host: id.host.clone(),
            actor: actor.to_string(),
            known: actor_types(),
        });
    }
    let mut opts = crate::SpawnOptions::default().limits(limits);
    if let Some(c) = capacity {
        opts = opts.capacity(c);
    }
    let mb = crate::process::start(actor, args, &opts).map_err(|e| RemoteError::Refused {
        host: id.host.clone(),
        reason: e.to_string(),
    })?;
    Ok(RemoteAddr {
        host: id.host.clone(),
        epoch: id.epoch,
        mailbox: mb.id(),
        actor: actor.to_string(),
    })
}

/// Makes local mailbox `watcher` (a gateway's own) a monitor of the local actor at
/// `target` (whose type has the id `actor`), for a monitor on another host: its `Down`
/// then comes to `watcher`. If the actor has already exited, nothing is registered and
/// its `Down` is returned at once.
///
/// # Errors
/// [`RemoteError::NoSuchActor`] if there is no such actor; [`RemoteError::Refused`] if it
/// already has the maximum number of monitors and links.
pub fn watch_local(
    target: u64,
    actor: u64,
    watcher: u64,
) -> std::result::Result<Option<crate::Down>, RemoteError> {
    let mb = local_target(target, actor)?;
    let down = || crate::Down {
        id: mb.id(),
        actor: mb.actor_name().to_string(),
        pid: mb.pid(),
        exit: crate::Exit::from_raw(mb.raw_exit()),
    };
    if mb.state() == crate::mailbox::STATE_EXITED && mb.is_gone() {
        return Ok(Some(down()));
    }
    if !mb.add_watcher(watcher, false) {
        return Err(RemoteError::Refused {
            host: this_host_name(),
            reason: format!("actor {} has too many monitors and links", mb.actor_name()),
        });
    }
    // Exited before we registered? Whoever removes the registration delivers.
    if mb.state() == crate::mailbox::STATE_EXITED && mb.remove_watcher(watcher, false) {
        return Ok(Some(down()));
    }
    Ok(None)
}

/// Terminates the local actor at `target` (whose type has the id `actor`) by a
/// supervisor's `shutdown` rule, for a supervisor on another host: a graceful stop whose
/// exit is `Shutdown("shutdown")`, then a kill through the zygote at the deadline (never
/// by a pid read from shared memory). Returns its exit once it has exited; blocks until
/// then (an `Infinity` shutdown for at most an hour).
///
/// # Errors
/// [`RemoteError::NoSuchActor`] if there is no such actor (it is gone already).
pub fn terminate_local(
    target: u64,
    actor: u64,
    shutdown: crate::supervisor::Shutdown,
) -> std::result::Result<crate::Exit, RemoteError> {
    use crate::supervisor::Shutdown;
    let mb = local_target(target, actor)?;
    let exited = |mb: &Mailbox| crate::Exit::from_raw(mb.raw_exit());
    if mb.state() == crate::mailbox::STATE_EXITED {
        return Ok(exited(&mb));
    }
    let now = Instant::now();
    let kill_at = match shutdown {
        Shutdown::BrutalKill => now,
        Shutdown::Timeout(d) => now + d,
        Shutdown::Infinity => now + TERMINATE_INFINITY,
    };
    if shutdown != Shutdown::BrutalKill {
        let stop =
            crate::actor::send_stop_as(&mb, Some(mb.incarnation()), Wait::Until(kill_at), true);
        if stop.is_err() {
            crate::process::fork::kill_consumer(mb.id());
        }
    }
    if !crate::supervisor::wait_exit(&mb, Some(kill_at.saturating_duration_since(Instant::now()))) {
        tracing::warn!(mailbox = %format!("{target:016x}"), "shutdown timeout expired; killing");
        crate::process::fork::kill_consumer(mb.id());
    }
    crate::supervisor::wait_exit(&mb, None);
    Ok(exited(&mb))
}

/// Stops local mailbox `watcher` monitoring the local actor at `target` (see
/// [`watch_local`]).
pub fn unwatch_local(target: u64, watcher: u64) {
    if let Ok(rt) = runtime::get() {
        if let Ok(mb) = Mailbox::open(rt.dir(), target) {
            mb.remove_watcher(watcher, false);
        }
    }
}

/// Delivers `down` (an exit on another host, or its host's loss) to the local mailbox
/// `watcher`, as the `Down` of its monitor; `false` if `watcher` is gone.
pub fn notify_down(watcher: u64, down: &crate::Down) -> bool {
    let Ok(rt) = runtime::get() else { return false };
    let Ok(mb) = Mailbox::open(rt.dir(), watcher) else {
        return false;
    };
    if mb.is_gone() {
        return false;
    }
    crate::process::send_notice(&mb, crate::process::DOWN_TAG, down);
    true
}

/// The wire version a gateway puts on what it sends, and checks on what it receives.
pub const fn wire_version() -> u8 {
    WIRE_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_is_encoded_as_its_borrowed_form_and_decodes_back() {
        let to = RemoteAddr {
            host: "b".into(),
            epoch: 7,
            mailbox: 9,
            actor: "x::Counter".into(),
        };
        let frame = vec![1u8, 2, 3];
        let (mut owned, mut borrowed) = (Vec::new(), Vec::new());
        let fwd = Forward {
            to: to.clone(),
            frame: ByteBuf::from(frame.clone()),
        };
        encode_body(&fwd, &mut owned).unwrap();
        let r = ForwardRef::of(&to, &frame);
        encode_body(&r, &mut borrowed).unwrap();
        assert_eq!(owned, borrowed);
        let back: Forward = decode_body(&owned, "Forward").unwrap();
        assert_eq!((back.to, back.frame.into_vec()), (to, frame));
    }
}
