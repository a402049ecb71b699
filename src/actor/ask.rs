//! Request/reply. Each thread that asks owns a **reply inbox**: a small mailbox of its own
//! in the runtime directory, created on its first ask and removed when the thread ends (or
//! by the reaper, when its process ends). An ask sends the request with the inbox id and a
//! fresh correlation id, then reads its inbox until the matching reply arrives; replies to
//! earlier asks that timed out are discarded. No dispatcher thread sits in the path, so a
//! reply wakes the asking thread directly.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::actor_ref::with_frame;
use crate::error::{Error, Result};
use crate::mailbox::{
    Consumer, Mailbox, MailboxConfig, Received, SendFail, Wait, LIVENESS_SLICE, STATE_EXITED,
};
use crate::process::{fork, runtime, Exit};
use crate::wire::{decode_body, FrameHeader, FrameKind, WireError};

/// The body of a [`FrameKind::ReplyError`] frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ReplyFailure {
    /// The actor could not decode or dispatch the request.
    Rejected(WireError),
    /// The actor died handling the request: how, and the pid of the process that died
    /// (0 if unknown), which a restart has replaced by the time the asker reads this.
    Died(Exit, u32),
    /// The handler took the reply token, and it was dropped without a reply.
    NoReply,
    /// The reply was larger than the asker's inbox accepts (`len` > `max` bytes).
    TooLarge {
        /// The encoded reply's size.
        len: u64,
        /// The inbox's maximum frame size.
        max: u64,
    },
}

struct Inbox {
    mb: Arc<Mailbox>,
    consumer: Consumer,
    next_corr: u64,
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.mb.mark_exited();
        self.mb.unlink();
    }
}

thread_local! {
    static INBOX: RefCell<Option<Inbox>> = const { RefCell::new(None) };
}

/// Forgets, without removing, a reply inbox this thread inherited through `fork`: it
/// belongs to the parent process, which still uses it.
pub(crate) fn forget_inherited_inbox() {
    let _ = INBOX.try_with(|i| {
        if let Some(inherited) = i.borrow_mut().take() {
            std::mem::forget(inherited);
        }
    });
}

/// Removes this thread's reply inbox now (an actor process calls it before exiting).
pub(crate) fn drop_thread_inbox() {
    let _ = INBOX.try_with(|i| i.borrow_mut().take());
}

pub(crate) fn inbox_config() -> MailboxConfig {
    MailboxConfig::default().ring_size(256 << 10).capacity(1024)
}

pub(crate) fn ask<Q: Serialize, R: DeserializeOwned>(
    target: &Mailbox,
    tag: u64,
    msg: &Q,
    what: &'static str,
    timeout: Duration,
) -> Result<R> {
    ask_with(
        target,
        tag,
        timeout,
        |header, deadline| {
            with_frame(header, msg, |frame| {
                (frame.len(), target.send(frame, Wait::Until(deadline)))
            })
            .map_err(Error::from)
        },
        |kind, _frame, body| interpret_reply(target, kind, body, what),
    )
}

/// An ask through this thread's inbox: `send` queues the request with the header it is
/// given, `finish` reads the matching reply frame (its kind, the whole frame, its body).
fn ask_with<R>(
    target: &Mailbox,
    tag: u64,
    timeout: Duration,
    send: impl FnOnce(FrameHeader, Instant) -> Result<(usize, std::result::Result<(), SendFail>)>,
    finish: impl FnOnce(FrameKind, &[u8], &[u8]) -> Result<R>,
) -> Result<R> {
    let deadline = Instant::now() + timeout;
    INBOX.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| Error::Runtime("ask called re-entrantly on one thread".into()))?;
        if target.is_lost() {
            return Err(Error::RuntimeLost);
        }
        if super::run::is_own_mailbox(target.id()) {
            return Err(Error::AskedItself {
                actor: target.actor_name().to_string(),
            });
        }
        if slot.as_ref().is_some_and(|i| i.mb.is_lost()) {
            // Its runtime was lost: the inbox went with it.
            *slot = None;
        }
        if slot.is_none() {
            let rt = runtime::get()?;
            let mb = Mailbox::create(rt.dir(), &inbox_config(), "reply-inbox", true)
                .map_err(|e| Error::io("cannot create this thread's reply inbox", e))?;
            mb.set_pid(std::process::id());
            mb.set_running();
            *slot = Some(Inbox {
                mb,
                consumer: Consumer::new(),
                next_corr: 1,
            });
        }
        let inbox = slot.as_mut().expect("inbox was just created");
        let corr = inbox.next_corr;
        inbox.next_corr += 1;
        inbox.mb.set_waiting_corr(corr);
        let header = FrameHeader {
            kind: FrameKind::Ask,
            tag,
            corr,
            reply_to: inbox.mb.id(),
        };
        let result = match send(header, deadline) {
            Err(e) => Err(e),
            Ok((len, Err(fail))) => Err(send_error(target, fail, len, timeout)),
            Ok((_, Ok(()))) => await_reply(target, inbox, corr, deadline, timeout, finish),
        };
        inbox.mb.set_waiting_corr(0);
        result
    })
}

/// Replies that came after their asker had stopped waiting (it timed out, or dropped its
/// future), in this process; each was discarded.
static LATE_REPLIES: AtomicU64 = AtomicU64::new(0);

/// How many replies this process has discarded because they came after their asker
/// stopped waiting: the ask had timed out, or its [`ask_async`](crate::ActorRef::ask_async)
/// future was dropped. A reply is never handed to the wrong ask; this counts what was
/// thrown away instead.
pub fn late_replies() -> u64 {
    LATE_REPLIES.load(Ordering::Relaxed)
}

pub(crate) fn count_late_reply() {
    LATE_REPLIES.fetch_add(1, Ordering::Relaxed);
}

/// The error for a request that could not be queued in `target`'s mailbox.
pub(crate) fn send_error(target: &Mailbox, fail: SendFail, len: usize, timeout: Duration) -> Error {
    match fail {
        SendFail::Dead => died(target),
        SendFail::Timeout | SendFail::Full => Error::Timeout(timeout),
        SendFail::Corrupt => Error::Corrupt {
            actor: target.actor_name().to_string(),
        },
        SendFail::Lost => Error::RuntimeLost,
        SendFail::TooLarge => Error::Wire(WireError::TooLarge {
            len: len as u64,
            max: target.max_frame(),
        }),
    }
}

/// What a reply frame of `kind` with `body` means for the asker of `target`.
pub(crate) fn interpret_reply<R: DeserializeOwned>(
    target: &Mailbox,
    kind: FrameKind,
    body: &[u8],
    what: &'static str,
) -> Result<R> {
    interpret_reply_from(target.actor_name(), target.pid(), kind, body, what)
}

/// What a reply frame of `kind` with `body` means, from an actor of type `actor` whose
/// pid (0: unknown) is `pid`.
pub(crate) fn interpret_reply_from<R: DeserializeOwned>(
    actor: &str,
    pid: u32,
    kind: FrameKind,
    body: &[u8],
    what: &'static str,
) -> Result<R> {
    match kind {
        FrameKind::Reply => Ok(decode_body(body, what)?),
        FrameKind::ReplyError => match decode_body::<ReplyFailure>(body, "ReplyFailure")? {
            ReplyFailure::Rejected(source) => Err(Error::Rejected {
                actor: actor.to_string(),
                source,
            }),
            ReplyFailure::Died(exit, died_pid) => Err(Error::ActorDied {
                actor: actor.to_string(),
                pid: if died_pid != 0 { died_pid } else { pid },
                exit: Some(exit),
            }),
            ReplyFailure::NoReply => Err(Error::NoReply {
                actor: actor.to_string(),
            }),
            ReplyFailure::TooLarge { len, max } => Err(Error::ReplyTooLarge {
                actor: actor.to_string(),
                len,
                max,
            }),
        },
        other => Err(Error::Wire(WireError::BadHeader(format!(
            "unexpected {other:?} frame in a reply inbox"
        )))),
    }
}

/// A `ReplyError` frame carrying `failure`, for an ask of message type `tag`.
pub(crate) fn failure_frame(tag: u64, failure: ReplyFailure) -> Result<Vec<u8>> {
    let mut frame = Vec::with_capacity(64);
    FrameHeader {
        kind: FrameKind::ReplyError,
        tag,
        corr: 0,
        reply_to: 0,
    }
    .write_into(&mut frame);
    crate::wire::encode_body(&failure, &mut frame)?;
    FrameHeader::seal(&mut frame)?;
    Ok(frame)
}

pub(crate) fn died(target: &Mailbox) -> Error {
    let exit = (target.state() == STATE_EXITED).then(|| Exit::from_raw(target.raw_exit()));
    Error::ActorDied {
        actor: target.actor_name().to_string(),
        pid: target.pid(),
        exit,
    }
}

/// Reads `inbox` until the reply to `corr` comes, the deadline passes, or `target` is
/// gone for good.
fn await_reply<R>(
    target: &Mailbox,
    inbox: &mut Inbox,
    corr: u64,
    deadline: Instant,
    timeout: Duration,
    finish: impl FnOnce(FrameKind, &[u8], &[u8]) -> Result<R>,
) -> Result<R> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout(timeout));
        }
        let slice = Wait::Until(deadline.min(now + LIVENESS_SLICE));
        match inbox.mb.recv(&mut inbox.consumer, slice) {
            Received::Frame(frame, _) => {
                let (h, body) = match FrameHeader::parse(frame) {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "malformed reply frame dropped");
                        continue;
                    }
                };
                if h.corr != corr {
                    // A late reply to an earlier ask that timed out.
                    LATE_REPLIES.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                return finish(h.kind, frame, body);
            }
            Received::Bad(e) => tracing::warn!(error = %e, "malformed reply frame dropped"),
            Received::TimedOut => {
                fork::reap();
                crate::mailbox::probe_runtime();
                if target.is_lost() {
                    return Err(Error::RuntimeLost);
                }
                // Between two incarnations of a supervised actor the request stays queued
                // (or the next incarnation answers for the one in flight): only a final
                // exit ends the wait early.
                if target.is_gone() {
                    return Err(died(target));
                }
            }
        }
    }
}

/// The reply inboxes an actor has answered recently, kept mapped so that a reply costs
/// no open/mmap.
#[derive(Default)]
pub(crate) struct ReplyRoutes {
    open: HashMap<u64, Arc<Mailbox>>,
}

const MAX_ROUTES: usize = 256;

impl ReplyRoutes {
    /// Sends a reply frame (or a failure) to the inbox `reply_to`; never blocks on an
    /// asker that has stopped waiting. Failures are logged, not raised: the actor goes on.
    pub(crate) fn send(&mut self, reply_to: u64, corr: u64, _kind: FrameKind, frame: &[u8]) {
        let inbox = match self.open.get(&reply_to) {
            Some(mb) => mb.clone(),
            None => {
                let Some(rt) = runtime::current() else { return };
                match Mailbox::open(rt.dir(), reply_to) {
                    Ok(mb) => {
                        if self.open.len() >= MAX_ROUTES {
                            self.open.retain(|_, mb| mb.state() != STATE_EXITED);
                            if self.open.len() >= MAX_ROUTES {
                                self.open.clear();
                            }
                        }
                        self.open.insert(reply_to, mb.clone());
                        mb
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, corr, "reply inbox is gone");
                        return;
                    }
                }
            }
        };
        if !Self::send_to(&inbox, corr, frame) && inbox.state() == STATE_EXITED {
            self.open.remove(&reply_to);
        }
    }

    /// Sends a reply frame to an open inbox (a failure that fits, if the reply does not);
    /// `false` if it was not delivered.
    pub(crate) fn send_to(inbox: &Mailbox, corr: u64, frame: &[u8]) -> bool {
        let sent = inbox.send_reply(frame, corr);
        if let Err(SendFail::TooLarge) = sent {
            // Tell the asker at once, in a frame that fits, rather than let it time out.
            tracing::warn!(
                len = frame.len(),
                max = inbox.max_frame(),
                corr,
                "reply too large for the asker's inbox; sending ReplyTooLarge instead"
            );
            let failure = ReplyFailure::TooLarge {
                len: frame.len() as u64,
                max: inbox.max_frame(),
            };
            let mut buf = Vec::with_capacity(64);
            let tag = FrameHeader::parse(frame).map_or(0, |(h, _)| h.tag);
            FrameHeader {
                kind: FrameKind::ReplyError,
                tag,
                corr,
                reply_to: 0,
            }
            .write_into(&mut buf);
            if crate::wire::encode_body(&failure, &mut buf).is_ok()
                && FrameHeader::seal(&mut buf).is_ok()
            {
                let _ = inbox.send_reply(&buf, corr);
            }
            return false;
        }
        if let Err(e) = sent {
            tracing::debug!(?e, corr, "reply not delivered (the asker stopped waiting)");
            return false;
        }
        true
    }
}

/// What came back for one pipelined request.
pub(crate) type PipelinedReply = std::result::Result<Vec<u8>, ReplyFailure>;

/// Many requests in flight at once, matched to their replies by correlation id (a pool's
/// calls use it), in one of two ways:
/// - [`Pipeline::new`]: the replies come to a reply inbox of the pipeline's own, which
///   its owner reads with [`Pipeline::recv`] (a blocking map or imap). This is the fast
///   way: the reply wakes the caller directly.
/// - [`Pipeline::on_stream`]: the replies come through the process's reply router, to a
///   channel shared with other pipelines, and the owner hands each to
///   [`Pipeline::answer`] (a pool's dispatcher of async calls, which drives them all).
pub(crate) struct Pipeline {
    way: Way,
    frame: Vec<u8>,
}

enum Way {
    Direct(Inbox),
    Routed {
        router: Arc<super::router::Router>,
        tx: crossbeam_channel::Sender<super::router::StreamItem>,
        tag: u64,
        /// Sent and not answered yet: unregistered when the pipeline is dropped.
        pending: std::collections::HashSet<u64>,
    },
}

impl Pipeline {
    /// A pipeline with a fresh reply inbox, removed when it is dropped.
    pub(crate) fn new() -> Result<Pipeline> {
        let rt = runtime::get()?;
        let mb = Mailbox::create(rt.dir(), &inbox_config(), "reply-inbox", true)
            .map_err(|e| Error::io("cannot create a reply inbox", e))?;
        mb.set_pid(std::process::id());
        mb.set_running();
        mb.set_waiting_corr(crate::mailbox::ANY_CORR);
        Ok(Pipeline {
            way: Way::Direct(Inbox {
                mb,
                consumer: Consumer::new(),
                next_corr: 1,
            }),
            frame: Vec::new(),
        })
    }

    /// A pipeline whose replies go through the router to `tx`, with `tag` and their
    /// correlation ids.
    pub(crate) fn on_stream(
        tx: crossbeam_channel::Sender<super::router::StreamItem>,
        tag: u64,
    ) -> Result<Pipeline> {
        Ok(Pipeline {
            way: Way::Routed {
                router: super::router::router()?,
                tx,
                tag,
                pending: Default::default(),
            },
            frame: Vec::new(),
        })
    }

    /// Sends one request frame (`Ask` or `Batch`) with a raw body; returns its correlation id.
    pub(crate) fn send(
        &mut self,
        target: &Arc<Mailbox>,
        kind: FrameKind,
        tag: u64,
        body: &[u8],
        wait: Wait,
    ) -> std::result::Result<u64, SendFail> {
        let corr = match &mut self.way {
            Way::Direct(inbox) => {
                inbox.next_corr += 1;
                inbox.next_corr - 1
            }
            Way::Routed { router, .. } => router.corr(),
        };
        self.frame.clear();
        FrameHeader {
            kind,
            tag,
            corr,
            reply_to: self.inbox_id(),
        }
        .write_into(&mut self.frame);
        self.frame.extend_from_slice(body);
        FrameHeader::seal(&mut self.frame).map_err(|_| SendFail::TooLarge)?;
        match &mut self.way {
            Way::Direct(_) => target.send(&self.frame, wait).map(|()| corr),
            Way::Routed {
                router,
                tx,
                tag: stream,
                pending,
            } => {
                // Registered first: the reply may come before `send` returns.
                router.register_stream(corr, target.clone(), tx.clone(), *stream);
                match target.send(&self.frame, wait) {
                    Ok(()) => {
                        pending.insert(corr);
                        Ok(corr)
                    }
                    Err(e) => {
                        router.unregister(corr);
                        Err(e)
                    }
                }
            }
        }
    }

    /// The id of the inbox the replies come to (the `reply_to` of every request sent).
    pub(crate) fn inbox_id(&self) -> u64 {
        match &self.way {
            Way::Direct(inbox) => inbox.mb.id(),
            Way::Routed { router, .. } => router.inbox_id(),
        }
    }

    /// What a routed answer to request `corr` of this pipeline means; `None` for a frame
    /// that is no reply (dropped).
    pub(crate) fn answer(
        &mut self,
        corr: u64,
        routed: super::router::Routed,
    ) -> Option<PipelinedReply> {
        use super::router::Routed;
        if let Way::Routed { pending, .. } = &mut self.way {
            pending.remove(&corr);
        }
        match routed {
            Routed::Reply(kind, body) => reply_of(kind, &body),
            // Stream requests have no deadline and no liveness watch: only a router that
            // ended (its runtime lost) answers this way.
            Routed::TimedOut | Routed::Died | Routed::Lost => {
                Some(Err(ReplyFailure::Died(Exit::RuntimeLost, 0)))
            }
        }
    }

    /// Receives the next reply in this pipeline's own inbox (its correlation id and
    /// body, or why it failed); `None` if none came in `wait`, or for a routed pipeline.
    pub(crate) fn recv(&mut self, wait: Wait) -> Option<(u64, PipelinedReply)> {
        let Way::Direct(inbox) = &mut self.way else {
            return None;
        };
        loop {
            match inbox.mb.recv(&mut inbox.consumer, wait) {
                Received::Frame(frame, _) => {
                    let Ok((h, body)) = FrameHeader::parse(frame) else {
                        continue;
                    };
                    if let Some(reply) = reply_of(h.kind, body) {
                        return Some((h.corr, reply));
                    }
                }
                Received::Bad(e) => tracing::warn!(error = %e, "malformed reply frame dropped"),
                Received::TimedOut => return None,
            }
        }
    }
}

/// A pipelined request's reply frame of `kind`: its body, or why it failed; `None` for a
/// frame that is no reply.
fn reply_of(kind: FrameKind, body: &[u8]) -> Option<PipelinedReply> {
    match kind {
        FrameKind::Reply => Some(Ok(body.to_vec())),
        FrameKind::ReplyError => Some(match decode_body::<ReplyFailure>(body, "ReplyFailure") {
            Ok(f) => Err(f),
            Err(e) => Err(ReplyFailure::Rejected(e)),
        }),
        _ => None,
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Way::Routed {
            router, pending, ..
        } = &mut self.way
        {
            for corr in pending.drain() {
                router.unregister(corr);
            }
        }
    }
}
