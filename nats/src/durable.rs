//! Durable mailboxes: messages kept by JetStream until an actor has handled them.
//!
//! A [`Durable`] mailbox has a name in the cluster. Any host sends to it
//! ([`Durable::tell`]); one host serves it into a local actor ([`Durable::serve`]). The
//! messages live in a work-queue stream (`procession_<cluster>_durable`, file storage),
//! each under a message id that the stream deduplicates (within 2 minutes). A message
//! is **accepted** once `tell` returns: the server has stored it. It is acked only after
//! the actor's handler for it has returned, so it survives the death of the actor (a
//! supervised actor keeps its mailbox, and its next incarnation gets the message again),
//! of the serving host (the next host to serve the name takes over where it stopped),
//! and of the NATS server, which must come back on the same storage.
//!
//! - **Order**: one message is in the actor's hands at a time, so a durable mailbox is
//!   handled in the order the stream stored it; a redelivered message comes again before
//!   the ones after it.
//! - **Duplicates**: delivery is at least once. A handler that returned, on an actor or
//!   host that died before the ack reached the server, sees its message again. Make
//!   handlers idempotent, or keep the message id ([`Durable::tell_with_id`]) in the
//!   message and skip what was done.
//! - **Poison**: a message whose handling failed (the actor died, or did not answer in
//!   `ack_wait`) is redelivered up to [`DurableOptions::redeliver`] times, then dropped,
//!   counted (`GatewayStatus::durable_poisoned`) and logged, as the local at-least-once
//!   limit does. A message the actor cannot decode is dropped at once, and counted too.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use procession::prelude::*;
use procession::remote::RemoteError;
use procession::{ActorType, Handles};

use crate::{flatten, via_gateway};

/// How a served durable mailbox redelivers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct DurableOptions {
    /// Redeliveries of a message whose handling failed before it is dropped as poison
    /// (default 3).
    pub redeliver: u32,
    /// How long a handler may take before its message is redelivered (default 30 s).
    pub ack_wait: Duration,
}

impl Default for DurableOptions {
    fn default() -> Self {
        DurableOptions {
            redeliver: 3,
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// Stores `frame` (a tell of a message) in the durable mailbox `name`, under `msg_id`:
/// what [`Durable::tell`] asks of the gateway. The reply is the stream sequence.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.nats.DurablePublish", reply = Result<u64, RemoteError>)]
pub struct DurablePublish {
    /// The durable mailbox.
    pub name: String,
    /// The message's frame.
    pub frame: ByteBuf,
    /// Its id, for the stream's deduplication.
    pub msg_id: String,
}

/// Serves the durable mailbox `name` into the local mailbox `mailbox` (an actor of type
/// `actor`): what [`Durable::serve`] asks of the gateway.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(tag = "procession.nats.ServeDurable", reply = Result<(), RemoteError>)]
pub struct ServeDurable {
    /// The durable mailbox.
    pub name: String,
    /// The local actor's mailbox.
    pub mailbox: u64,
    /// Its type's stable name.
    pub actor: String,
    /// How it redelivers.
    pub opts: DurableOptions,
}

/// A durable mailbox for actors of type `A`, by name in the cluster.
///
/// ```no_run
/// # use procession::prelude::*;
/// # #[derive(Serialize, Deserialize, Message)] struct Job(u64);
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Job))] struct Worker;
/// # impl Handler<Job> for Worker { fn handle(&mut self, _: Job, _: &mut Context<Self>) {} }
/// # fn main() -> procession::Result<()> {
/// use procession_nats::{Durable, DurableOptions};
/// let jobs = Durable::<Worker>::new("jobs")?;
/// // On the host that does the work:
/// let worker = Worker.spawn()?;
/// jobs.serve(&worker, DurableOptions::default())?;
/// // On any host: returns once the server has stored it.
/// jobs.tell(Job(7))?;
/// # Ok(()) }
/// ```
pub struct Durable<A> {
    name: String,
    _actor: PhantomData<fn() -> A>,
}

impl<A> std::fmt::Debug for Durable<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable").field("name", &self.name).finish()
    }
}

/// How long a durable send waits for the server's acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

impl<A: ActorType> Durable<A> {
    /// The durable mailbox `name` (1 to 64 characters of `[A-Za-z0-9_-]`).
    ///
    /// # Errors
    /// [`procession::Error::BadName`] for another name.
    pub fn new(name: &str) -> procession::Result<Self> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(procession::Error::BadName(name.to_string()));
        }
        Ok(Durable {
            name: name.to_string(),
            _actor: PhantomData,
        })
    }

    /// Stores `msg` in the mailbox; returns once the server has stored it (its stream
    /// sequence), so it is not lost from then on. The message gets a fresh id.
    ///
    /// # Errors
    /// [`procession::Error::Remote`] ([`RemoteError::Disconnected`], [`RemoteError::TooLarge`],
    /// [`RemoteError::Refused`] if the server has no JetStream, ...), or
    /// [`procession::Error::Timeout`] if the server did not acknowledge it within 10 s
    /// (it may have stored it: send it again with the same id, [`tell_with_id`](Self::tell_with_id)).
    pub fn tell<M: Message>(&self, msg: M) -> procession::Result<u64>
    where
        A: Handles<M>,
    {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = procession::remote::this_host()
            .ok_or(procession::Error::Remote(RemoteError::NoGateway))?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let msg_id = format!("{}-{:x}-{}-{n}", id.host, id.epoch, std::process::id());
        self.tell_with_id(msg, &msg_id)
    }

    /// As [`tell`](Self::tell), with the message id chosen by the caller: a second send
    /// with the same id within 2 minutes is not stored again (it returns the first
    /// one's sequence), so a send that timed out can be retried safely.
    ///
    /// # Errors
    /// As [`tell`](Self::tell).
    pub fn tell_with_id<M: Message>(&self, msg: M, msg_id: &str) -> procession::Result<u64>
    where
        A: Handles<M>,
    {
        let mut frame = Vec::new();
        procession::wire::FrameHeader {
            kind: procession::wire::FrameKind::Tell,
            tag: M::TAG_ID,
            corr: 0,
            reply_to: 0,
        }
        .write_into(&mut frame);
        procession::wire::encode_body(&msg, &mut frame)?;
        procession::wire::FrameHeader::seal(&mut frame)?;
        let gw = via_gateway()?;
        let req = DurablePublish {
            name: self.name.clone(),
            frame: ByteBuf::from(frame),
            msg_id: msg_id.to_string(),
        };
        let r = gw.ask_timeout(req, PUBLISH_TIMEOUT + Duration::from_secs(1));
        flatten(r, PUBLISH_TIMEOUT)
    }

    /// Serves the mailbox into `actor`, which runs on this host: its messages go to the
    /// actor one at a time, each acked once the handler returned. Serve a supervised
    /// actor (its mailbox outlives its restarts). One host serves a name at a time; a
    /// second `serve` of it shares the messages with the first.
    ///
    /// # Errors
    /// [`procession::Error::Remote`] ([`RemoteError::Unsupported`] for an actor of another
    /// host, [`RemoteError::Refused`] if the server has no JetStream, ...).
    pub fn serve(&self, actor: &ActorRef<A>, opts: DurableOptions) -> procession::Result<()> {
        if actor.remote_addr().is_some() {
            return Err(procession::Error::Remote(RemoteError::Unsupported(
                "serving a durable mailbox into another host's actor (serve it there)".into(),
            )));
        }
        let gw = via_gateway()?;
        let req = ServeDurable {
            name: self.name.clone(),
            mailbox: actor.id(),
            actor: A::NAME.to_string(),
            opts,
        };
        let r = gw.ask_timeout(req, PUBLISH_TIMEOUT + Duration::from_secs(1));
        flatten(r, PUBLISH_TIMEOUT)
    }
}
