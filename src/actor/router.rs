//! The process's **reply router**: one reply inbox per process, read by one thread
//! (`procession-replies`), which hands each reply to its waiter by correlation id.
//!
//! - An async waiter ([`AskFuture`]) is woken through its [`Waker`]; it never blocks the
//!   thread that polls it.
//! - A blocking waiter waits on a `crossbeam-channel` receiver ([`Router::ask_blocking`]).
//!   (A plain [`ActorRef::ask`](crate::ActorRef::ask) does not come here: it reads a
//!   reply inbox of its own thread, which saves the hop through this thread; see
//!   `ask.rs`.)
//!
//! The router also keeps every waiter's promises: it ends a wait at its deadline, when
//! the target's final exit is recorded, or when the runtime is lost, re-checking each
//! within [`LIVENESS_SLICE`]. A reply whose waiter has gone (timed out, or its future was
//! dropped) is discarded and counted ([`late_replies`](crate::late_replies)).
//!
//! The thread starts on the first routed ask, so a program that never asks
//! asynchronously keeps a single thread (the fork start method needs that).

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use serde::de::DeserializeOwned;

use super::ask::{count_late_reply, died, interpret_reply, send_error};
use crate::error::{Error, Result, TellError};
use crate::mailbox::{
    Consumer, Mailbox, MailboxConfig, Received, SendFail, Wait, ANY_CORR, LIVENESS_SLICE,
};
use crate::process::{fork, runtime};
use crate::wire::{FrameHeader, FrameKind};

/// How often a sender that found a mailbox full tries again (the router wakes it).
const ROOM_RETRY: Duration = Duration::from_millis(1);

/// What the router hands a waiter.
pub(crate) enum Routed {
    /// A reply frame's kind and body.
    Reply(FrameKind, Vec<u8>),
    /// The deadline passed first.
    TimedOut,
    /// The target's final exit was recorded first.
    Died,
    /// The runtime was lost.
    Lost,
}

/// What a stream's channel carries: the stream's tag, the correlation id, the answer.
pub(crate) type StreamItem = (u64, u64, Routed);

/// Where a waiter is woken, besides its channel.
pub(crate) type WakerSlot = Arc<Mutex<Option<Waker>>>;

/// Where a waiter's answer goes.
enum Delivery {
    /// One ask: its own channel, and the task to wake.
    One {
        tx: Sender<Routed>,
        waker: Option<WakerSlot>,
    },
    /// One of many requests in flight on one channel (a pool's), with the stream's tag
    /// and the request's correlation id.
    Stream(Sender<StreamItem>, u64),
}

struct Waiter {
    target: Arc<Mailbox>,
    /// `None` for a stream request: its owner keeps its own time and watches its
    /// workers, so the router only routes.
    deadline: Option<Instant>,
    delivery: Delivery,
}

impl Waiter {
    fn deliver(self, corr: u64, what: Routed) {
        match self.delivery {
            Delivery::One { tx, waker } => {
                let _ = tx.send(what);
                if let Some(slot) = &waker {
                    if let Some(w) = lock(slot).as_ref() {
                        w.wake_by_ref();
                    }
                }
            }
            Delivery::Stream(tx, tag) => {
                let _ = tx.send((tag, corr, what));
            }
        }
    }
}

#[derive(Default)]
struct Table {
    waiters: HashMap<u64, Waiter>,
    /// Senders that found a mailbox full, woken to try again.
    room: Vec<Waker>,
    /// The earliest deadline among the waiters, as of the last sweep or registration.
    next_deadline: Option<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One process's router: its inbox and its table of waiters.
pub(crate) struct Router {
    pid: u32,
    mb: Arc<Mailbox>,
    next_corr: AtomicU64,
    table: Mutex<Table>,
    /// When the router thread wakes on its own next (`epoch`-relative nanoseconds); a
    /// registration with an earlier deadline nudges it.
    wakes_at: AtomicU64,
    epoch: Instant,
    /// Cleared when its thread has ended (replaced, lost, or panicked).
    alive: std::sync::atomic::AtomicBool,
}

static ROUTER: Mutex<Option<Arc<Router>>> = Mutex::new(None);

fn router_config() -> MailboxConfig {
    // Room for the replies of thousands of concurrent asks while the thread catches up.
    MailboxConfig::default().ring_size(1 << 20).capacity(8192)
}

/// This process's router, started on first use (again if the runtime it belonged to was
/// lost, or if this process was forked from the one that started it).
pub(crate) fn router() -> Result<Arc<Router>> {
    let mut slot = lock(&ROUTER);
    let pid = std::process::id();
    if let Some(r) = slot.as_ref() {
        if r.pid == pid && !r.mb.is_lost() && r.alive.load(Ordering::SeqCst) {
            return Ok(r.clone());
        }
        if r.pid != pid {
            // Inherited through fork: the inbox is the parent's, and no thread reads it here.
            std::mem::forget(slot.take());
        }
    }
    let rt = runtime::get()?;
    let mb = Mailbox::create(rt.dir(), &router_config(), "reply-router", true)
        .map_err(|e| Error::io("cannot create this process's reply router inbox", e))?;
    mb.set_pid(pid);
    mb.set_running();
    mb.set_waiting_corr(ANY_CORR);
    let r = Arc::new(Router {
        pid,
        mb,
        next_corr: AtomicU64::new(1),
        table: Mutex::new(Table::default()),
        wakes_at: AtomicU64::new(0),
        epoch: Instant::now(),
        alive: std::sync::atomic::AtomicBool::new(true),
    });
    let run = r.clone();
    std::thread::Builder::new()
        .name("procession-replies".into())
        .spawn(move || {
            // A bug here must not leave waiters without an answer: they get a typed
            // error, and the next ask starts a fresh router.
            let r = run.clone();
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.run())).is_err() {
                tracing::error!("the reply router thread panicked; its waiters are told");
            }
            run.alive.store(false, Ordering::SeqCst);
            run.fail_all(Routed::Lost);
        })
        .map_err(|e| Error::io("cannot start the reply router thread", e))?;
    *slot = Some(r.clone());
    Ok(r)
}

impl Router {
    fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// A fresh correlation id for a request whose reply comes to this router.
    pub(crate) fn corr(&self) -> u64 {
        self.next_corr.fetch_add(1, Ordering::Relaxed)
    }

    /// The id of the router's inbox: the `reply_to` of every routed request.
    pub(crate) fn inbox_id(&self) -> u64 {
        self.mb.id()
    }

    fn register(
        &self,
        corr: u64,
        target: Arc<Mailbox>,
        deadline: Instant,
        waker: Option<WakerSlot>,
    ) -> Receiver<Routed> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.add(
            corr,
            Waiter {
                target,
                deadline: Some(deadline),
                delivery: Delivery::One { tx, waker },
            },
        );
        rx
    }

    /// Registers request `corr` of a stream: its reply goes to `tx` with its id.
    pub(crate) fn register_stream(
        &self,
        corr: u64,
        target: Arc<Mailbox>,
        tx: Sender<StreamItem>,
        tag: u64,
    ) {
        self.add(
            corr,
            Waiter {
                target,
                deadline: None,
                delivery: Delivery::Stream(tx, tag),
            },
        );
    }

    fn add(&self, corr: u64, waiter: Waiter) {
        let deadline = waiter.deadline;
        let nudge = {
            let mut t = lock(&self.table);
            t.waiters.insert(corr, waiter);
            match deadline {
                None => false,
                Some(deadline) => {
                    let earlier = t.next_deadline.map_or(true, |d| deadline < d);
                    if earlier {
                        t.next_deadline = Some(deadline);
                    }
                    earlier && self.nanos(deadline) < self.wakes_at.load(Ordering::SeqCst)
                }
            }
        };
        if self.check_alive(corr) && nudge {
            self.nudge();
        }
    }

    /// A thread that ended after this router was handed out answers nobody: the waiter
    /// is told now (the thread's last sweep may have run before it was added). `false`
    /// if so.
    fn check_alive(&self, corr: u64) -> bool {
        if self.alive.load(Ordering::SeqCst) {
            return true;
        }
        let w = lock(&self.table).waiters.remove(&corr);
        if let Some(w) = w {
            w.deliver(corr, Routed::Lost);
        }
        false
    }

    /// Wakes the router thread early (a frame with correlation id 0, which no waiter has).
    fn nudge(&self) {
        let mut buf = Vec::with_capacity(64);
        FrameHeader {
            kind: FrameKind::Reply,
            tag: 0,
            corr: 0,
            reply_to: 0,
        }
        .write_into(&mut buf);
        if FrameHeader::seal(&mut buf).is_ok() {
            let _ = self.mb.send(&buf, Wait::Never);
        }
    }

    pub(crate) fn unregister(&self, corr: u64) {
        lock(&self.table).waiters.remove(&corr);
    }

    fn wait_for_room(&self, waker: &Waker) {
        let mut t = lock(&self.table);
        if !t.room.iter().any(|w| w.will_wake(waker)) {
            t.room.push(waker.clone());
        }
        drop(t);
        // Its slice may be long: wake it so that it takes the short one.
        if self.wakes_at.load(Ordering::SeqCst) > self.nanos(Instant::now() + ROOM_RETRY) {
            self.nudge();
        }
    }

    /// Sends an ask frame and waits for its reply on a crossbeam channel, blocking this
    /// thread (the routed counterpart of the per-thread inbox; benchmarks compare them).
    pub(crate) fn ask_blocking<R: DeserializeOwned>(
        self: &Arc<Self>,
        target: &Arc<Mailbox>,
        tag: u64,
        body: &impl serde::Serialize,
        what: &'static str,
        timeout: Duration,
    ) -> Result<R> {
        let deadline = Instant::now() + timeout;
        let corr = self.corr();
        let rx = self.register(corr, target.clone(), deadline, None);
        let header = FrameHeader {
            kind: FrameKind::Ask,
            tag,
            corr,
            reply_to: self.mb.id(),
        };
        let sent = super::actor_ref::with_frame(header, body, |frame| {
            (frame.len(), target.send(frame, Wait::Until(deadline)))
        });
        match sent {
            Ok((_, Ok(()))) => {}
            Ok((len, Err(fail))) => {
                self.unregister(corr);
                return Err(send_error(target, fail, len, timeout));
            }
            Err(e) => {
                self.unregister(corr);
                return Err(e.into());
            }
        }
        // The router ends the wait at the deadline; the extra slice covers a router that
        // could not run (and is itself bounded).
        match rx.recv_timeout(timeout + LIVENESS_SLICE * 4) {
            Ok(r) => routed_result(target, r, what, timeout),
            Err(_) => {
                self.unregister(corr);
                Err(Error::Timeout(timeout))
            }
        }
    }

    /// Queues `frame`, an ask frame whose correlation id and reply inbox are set here, in
    /// `target`'s mailbox, waiting at most until `room` for room; the reply (or the
    /// router's verdict, at `deadline` at the latest) comes on the returned channel, and
    /// wakes `waker`'s task, if given.
    /// Queued in the caller's order: a gateway calls it from the one thread that delivers
    /// a host's frames in turn.
    pub(crate) fn start_raw_ask(
        self: &Arc<Self>,
        target: &Arc<Mailbox>,
        frame: &mut [u8],
        room: Instant,
        deadline: Instant,
        waker: Option<WakerSlot>,
    ) -> std::result::Result<(u64, Receiver<Routed>), SendFail> {
        let corr = self.corr();
        frame[16..24].copy_from_slice(&corr.to_le_bytes());
        frame[24..32].copy_from_slice(&self.mb.id().to_le_bytes());
        let rx = self.register(corr, target.clone(), deadline, waker);
        match target.send(frame, Wait::Until(room)) {
            Ok(()) => Ok((corr, rx)),
            Err(fail) => {
                self.unregister(corr);
                Err(fail)
            }
        }
    }

    /// The router thread: reads replies, delivers them, and sweeps deadlines and
    /// liveness at least once per [`LIVENESS_SLICE`].
    fn run(self: Arc<Self>) {
        let mut consumer = Consumer::new();
        let mut last_sweep = Instant::now();
        loop {
            if !self.is_current() {
                return;
            }
            let now = Instant::now();
            let (next_deadline, room) = {
                let mut t = lock(&self.table);
                let room = std::mem::take(&mut t.room);
                (t.next_deadline, room)
            };
            let has_room_waiters = !room.is_empty();
            for w in room {
                w.wake();
            }
            let slice = if has_room_waiters {
                ROOM_RETRY
            } else {
                LIVENESS_SLICE
            };
            let mut until = (last_sweep + LIVENESS_SLICE).min(now + slice);
            if let Some(d) = next_deadline {
                until = until.min(d);
            }
            self.wakes_at.store(self.nanos(until), Ordering::SeqCst);
            // A registration may have lowered the deadline after it was read.
            if lock(&self.table).next_deadline < next_deadline {
                continue;
            }
            match self.mb.recv(&mut consumer, Wait::Until(until.max(now))) {
                Received::Frame(frame, _) => {
                    match FrameHeader::parse(frame) {
                        Ok((h, body)) if h.corr != 0 => {
                            let waiter = lock(&self.table).waiters.remove(&h.corr);
                            match waiter {
                                Some(w) => w.deliver(h.corr, Routed::Reply(h.kind, body.to_vec())),
                                None => count_late_reply(),
                            }
                        }
                        Ok(_) => {} // a nudge
                        Err(e) => tracing::warn!(error = %e, "malformed reply frame dropped"),
                    }
                    self.mb.commit(&mut consumer);
                }
                Received::Bad(e) => tracing::warn!(error = %e, "malformed reply frame dropped"),
                Received::TimedOut => {}
            }
            let now = Instant::now();
            if now >= last_sweep + LIVENESS_SLICE || next_deadline.is_some_and(|d| now >= d) {
                self.sweep(now, now >= last_sweep + LIVENESS_SLICE);
                last_sweep = now;
            }
        }
    }

    /// The path of this process's router inbox, if it has one (fault-injection tests).
    pub(crate) fn inbox_path() -> Option<std::path::PathBuf> {
        let r = lock(&ROUTER).clone()?;
        let rt = runtime::current()?;
        Some(crate::mailbox::path_of(rt.dir(), r.mb.id()))
    }

    /// Whether this router is still the process's (a lost runtime replaces it).
    fn is_current(&self) -> bool {
        if self.mb.is_lost() {
            return false;
        }
        lock(&ROUTER)
            .as_ref()
            .is_some_and(|r| std::ptr::eq(Arc::as_ptr(r), self))
    }

    /// Ends the waits whose deadline has passed and, with `liveness`, those whose target
    /// has exited for good or whose runtime is lost.
    fn sweep(&self, now: Instant, liveness: bool) {
        if liveness {
            fork::reap();
            crate::mailbox::probe_runtime();
        }
        let mut ended = Vec::new();
        {
            let mut t = lock(&self.table);
            let mut next: Option<Instant> = None;
            let mut verdicts = Vec::new();
            for (&corr, w) in &t.waiters {
                let Some(deadline) = w.deadline else { continue };
                let why = if deadline <= now {
                    Some(Routed::TimedOut)
                } else if liveness && w.target.is_lost() {
                    Some(Routed::Lost)
                } else if liveness && w.target.is_gone() {
                    Some(Routed::Died)
                } else {
                    None
                };
                match why {
                    Some(why) => verdicts.push((corr, why)),
                    None => next = Some(next.map_or(deadline, |n| n.min(deadline))),
                }
            }
            t.next_deadline = next;
            for (corr, why) in verdicts {
                if let Some(w) = t.waiters.remove(&corr) {
                    ended.push((corr, w, why));
                }
            }
        }
        // Delivered outside the lock: a waker may run code of the executor's.
        for (corr, w, why) in ended {
            w.deliver(corr, why);
        }
    }

    fn fail_all(&self, why: Routed) {
        let waiters: Vec<(u64, Waiter)> = lock(&self.table).waiters.drain().collect();
        for (corr, w) in waiters {
            w.deliver(
                corr,
                match why {
                    Routed::Lost => Routed::Lost,
                    _ => Routed::Died,
                },
            );
        }
    }
}

/// The result of a routed ask, from what the router handed over.
/// What the gateway's answer to an ask of an actor on another host means.
fn remote_result<R: DeserializeOwned>(
    to: &crate::remote::RemoteAddr,
    routed: Routed,
    what: &'static str,
    gateway_timeout: Duration,
) -> Result<R> {
    // The gateway waits the caller's timeout, plus a margin for its own hop.
    let timeout = gateway_timeout.saturating_sub(crate::remote::GATEWAY_MARGIN);
    match routed {
        Routed::Reply(kind, body) => {
            let answer: std::result::Result<serde_bytes::ByteBuf, crate::RemoteError> =
                crate::actor::interpret_reply_from(
                    crate::remote::GATEWAY_NAME,
                    0,
                    kind,
                    &body,
                    "ForwardAsk",
                )?;
            crate::remote::finish_ask(to, answer, what, timeout)
        }
        Routed::TimedOut => Err(Error::Timeout(timeout)),
        Routed::Died => Err(Error::Remote(crate::RemoteError::NoGateway)),
        Routed::Lost => Err(Error::RuntimeLost),
    }
}

fn routed_result<R: DeserializeOwned>(
    target: &Mailbox,
    routed: Routed,
    what: &'static str,
    timeout: Duration,
) -> Result<R> {
    match routed {
        Routed::Reply(kind, body) => interpret_reply(target, kind, &body, what),
        Routed::TimedOut => Err(Error::Timeout(timeout)),
        Routed::Died => Err(died(target)),
        Routed::Lost => Err(Error::RuntimeLost),
    }
}

enum AskState {
    /// Not polled yet, or waiting for room in the target's mailbox.
    Sending,
    /// A frame too large to queue without waiting for the consumer (it is sent in parts)
    /// is being sent by a helper thread; its outcome comes here.
    SendingLarge(SendSlot),
    /// Queued; waiting for the router.
    Waiting,
    Done,
}

/// The future of [`ActorRef::ask_async`](crate::ActorRef::ask_async): resolves to the
/// reply, or to the error a blocking [`ask`](crate::ActorRef::ask) would give.
///
/// It works on any executor and never blocks the thread that polls it: the request is
/// queued without waiting (a full mailbox is tried again every millisecond, woken by the
/// process's reply router; a message larger than the mailbox's ring, which goes in parts,
/// is sent by a helper thread), and the reply arrives through the router, which wakes the
/// task. The deadline runs from the first poll. Dropping the future abandons the wait;
/// a reply that comes afterwards is discarded and counted in
/// [`late_replies`](crate::late_replies). (A request already queued is still handled.)
#[must_use = "a future does nothing unless polled"]
pub struct AskFuture<R> {
    /// `None` only for a future that failed before it started ([`AskFuture::failed`]).
    target: Option<Arc<Mailbox>>,
    frame: Vec<u8>,
    what: &'static str,
    timeout: Duration,
    state: AskState,
    /// The router, correlation id, channel and waker slot, once registered.
    reg: Option<(Arc<Router>, u64, Receiver<Routed>, WakerSlot)>,
    /// An error found before the first poll (the message did not encode).
    early: Option<Error>,
    /// For an ask of an actor on another host, sent to the local gateway: its address
    /// (the reply is the gateway's answer, holding the reply frame).
    remote: Option<Arc<crate::remote::RemoteAddr>>,
    _reply: PhantomData<fn() -> R>,
}

impl<R> Unpin for AskFuture<R> {}

impl<R: DeserializeOwned> AskFuture<R> {
    pub(crate) fn new(
        target: Arc<Mailbox>,
        tag: u64,
        body: &impl serde::Serialize,
        what: &'static str,
        timeout: Duration,
    ) -> Self {
        let mut frame = Vec::new();
        // The header is written at the first poll, when the correlation id is known; the
        // body is encoded now, so that the caller's message can be borrowed.
        FrameHeader {
            kind: FrameKind::Ask,
            tag,
            corr: 0,
            reply_to: 0,
        }
        .write_into(&mut frame);
        let early = crate::wire::encode_body(body, &mut frame)
            .and_then(|()| FrameHeader::seal(&mut frame))
            .err()
            .map(Error::from);
        AskFuture {
            target: Some(target),
            frame,
            what,
            timeout,
            state: AskState::Sending,
            reg: None,
            early,
            remote: None,
            _reply: PhantomData,
        }
    }

    /// An ask of the actor at `to`, on another host, through the gateway `gw`: `req` is
    /// the [`ForwardAsk`](crate::remote::ForwardAsk), and `gateway_timeout` the wait for
    /// the gateway's answer (the caller's timeout and a margin).
    pub(crate) fn through_gateway(
        gw: Arc<Mailbox>,
        to: Arc<crate::remote::RemoteAddr>,
        req: &crate::remote::ForwardAsk,
        what: &'static str,
        gateway_timeout: Duration,
    ) -> Self {
        use crate::Message as _;
        let mut f = AskFuture::new(
            gw,
            crate::remote::ForwardAsk::TAG_ID,
            req,
            what,
            gateway_timeout,
        );
        f.remote = Some(to);
        f
    }

    /// A future that resolves to `error` at its first poll.
    pub(crate) fn failed(error: Error) -> Self {
        AskFuture {
            target: None,
            frame: Vec::new(),
            what: "",
            timeout: Duration::ZERO,
            state: AskState::Sending,
            reg: None,
            early: Some(error),
            remote: None,
            _reply: PhantomData,
        }
    }

    fn target(&self) -> &Arc<Mailbox> {
        self.target
            .as_ref()
            .expect("an AskFuture without a target fails at its first poll")
    }

    fn start(&mut self) -> Result<()> {
        if let Some(e) = self.early.take() {
            return Err(e);
        }
        if self.target().is_lost() {
            return Err(Error::RuntimeLost);
        }
        if super::run::is_own_mailbox(self.target().id()) {
            return Err(Error::AskedItself {
                actor: self.target().actor_name().to_string(),
            });
        }
        let router = router()?;
        let corr = router.corr();
        // The header's correlation id (bytes 16..24) and reply inbox (24..32), known now.
        self.frame[16..24].copy_from_slice(&corr.to_le_bytes());
        self.frame[24..32].copy_from_slice(&router.inbox_id().to_le_bytes());
        let slot: WakerSlot = Arc::new(Mutex::new(None));
        let deadline = Instant::now() + self.timeout;
        let rx = router.register(corr, self.target().clone(), deadline, Some(slot.clone()));
        self.reg = Some((router, corr, rx, slot));
        Ok(())
    }

    fn finish(&mut self, r: Result<R>) -> Poll<Result<R>> {
        self.state = AskState::Done;
        if let Some((router, corr, _, _)) = self.reg.take() {
            router.unregister(corr);
        }
        Poll::Ready(r)
    }
}

impl<R: DeserializeOwned> Future for AskFuture<R> {
    type Output = Result<R>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<R>> {
        let this = &mut *self;
        loop {
            if matches!(this.state, AskState::Done) {
                return Poll::Ready(Err(Error::Runtime(
                    "an AskFuture was polled after it completed".into(),
                )));
            }
            if this.reg.is_none() {
                if let Err(e) = this.start() {
                    return this.finish(Err(e));
                }
            }
            let (router, _, rx, slot) = this.reg.as_ref().expect("registered above");
            *lock(slot) = Some(cx.waker().clone());
            // Whatever the router decided (a reply, a deadline, a death) comes first.
            match rx.try_recv() {
                Ok(routed) => {
                    let r = match &this.remote {
                        None => routed_result(this.target(), routed, this.what, this.timeout),
                        Some(to) => remote_result(to, routed, this.what, this.timeout),
                    };
                    return this.finish(r);
                }
                Err(TryRecvError::Disconnected) => {
                    return this.finish(Err(Error::RuntimeLost));
                }
                Err(TryRecvError::Empty) => {}
            }
            if matches!(this.state, AskState::Sending) && is_large(this.target(), &this.frame) {
                let deadline = Instant::now() + this.timeout;
                let frame = std::mem::take(&mut this.frame);
                let slot =
                    send_on_a_thread(this.target().clone(), frame, Wait::Until(deadline), cx);
                this.state = AskState::SendingLarge(slot);
            }
            let large = match &this.state {
                AskState::SendingLarge(slot) => Some(lock(slot).take()),
                _ => None,
            };
            match large {
                // The thread wakes this task when it is done; the router, if the deadline
                // or a death comes first.
                Some(None) => return Poll::Pending,
                Some(Some(Ok(()))) => {
                    this.state = AskState::Waiting;
                    continue;
                }
                Some(Some(Err(fail))) => {
                    let e = send_error(this.target(), fail, 0, this.timeout);
                    return this.finish(Err(e));
                }
                None => {}
            }
            match this.state {
                AskState::SendingLarge(_) => unreachable!("handled above"),
                AskState::Sending => match this.target().send(&this.frame, Wait::Never) {
                    Ok(()) => {
                        this.state = AskState::Waiting;
                        this.frame = Vec::new();
                        continue;
                    }
                    Err(SendFail::Full) => {
                        router.wait_for_room(cx.waker());
                        return Poll::Pending;
                    }
                    Err(fail) => {
                        let e = send_error(this.target(), fail, this.frame.len(), this.timeout);
                        return this.finish(Err(e));
                    }
                },
                AskState::Waiting => return Poll::Pending,
                AskState::Done => unreachable!("checked above"),
            }
        }
    }
}

impl<R> Drop for AskFuture<R> {
    fn drop(&mut self) {
        if let Some((router, corr, _, _)) = self.reg.take() {
            router.unregister(corr);
        }
    }
}

/// Where a helper thread leaves the outcome of a large send.
type SendSlot = Arc<Mutex<Option<Result<(), SendFail>>>>;

/// Whether `frame` is larger than `target`'s ring, so that it can only be sent in parts,
/// waiting for the consumer between them (a non-waiting send would never get through).
/// (A frame above the maximum frame size is not: its send fails at once with `TooLarge`.)
fn is_large(target: &Mailbox, frame: &[u8]) -> bool {
    let len = frame.len() as u64;
    len > target.ring_size() && len <= target.max_frame()
}

/// Sends a large frame on a helper thread (the send waits for the consumer between its
/// parts), wakes the task when it is done, and leaves the outcome in the slot returned.
fn send_on_a_thread(
    target: Arc<Mailbox>,
    frame: Vec<u8>,
    wait: Wait,
    cx: &TaskContext<'_>,
) -> SendSlot {
    let slot = Arc::new(Mutex::new(None));
    let (out, waker) = (slot.clone(), cx.waker().clone());
    let spawned = std::thread::Builder::new()
        .name("procession-send".into())
        .spawn(move || {
            let r = target.send(&frame, wait);
            *lock(&out) = Some(r);
            waker.wake();
        });
    if spawned.is_err() {
        *lock(&slot) = Some(Err(SendFail::Full));
    }
    slot
}

/// The future of [`ActorRef::tell_async`](crate::ActorRef::tell_async): resolves once the
/// message is queued, or gives it back in a [`TellError`].
///
/// Like [`tell`](crate::ActorRef::tell) it waits while the mailbox is full, but without
/// blocking: it is tried again every millisecond (the process's reply router wakes it).
/// A message larger than the mailbox's ring, which goes in parts, is sent by a helper
/// thread that waits for the actor between the parts.
/// Dropping it before it resolves sends nothing.
#[must_use = "a future does nothing unless polled"]
pub struct TellFuture<M> {
    /// `None` only for a future whose outcome is known ([`TellFuture::done`]).
    target: Option<Arc<Mailbox>>,
    msg: Option<M>,
    frame: Result<Vec<u8>, crate::wire::WireError>,
    /// A frame larger than the ring, being sent by a helper thread.
    large: Option<SendSlot>,
    /// The outcome, known before the first poll ([`TellFuture::done`]).
    ready: Option<Result<(), TellError<M>>>,
}

impl<M> Unpin for TellFuture<M> {}

impl<M: serde::Serialize> TellFuture<M> {
    pub(crate) fn new(target: Arc<Mailbox>, tag: u64, msg: M) -> Self {
        let header = FrameHeader {
            kind: FrameKind::Tell,
            tag,
            corr: 0,
            reply_to: 0,
        };
        let frame = super::actor_ref::with_frame(header, &msg, |f| f.to_vec());
        TellFuture {
            target: Some(target),
            msg: Some(msg),
            frame,
            large: None,
            ready: None,
        }
    }

    /// A future that resolves to `outcome` at its first poll.
    pub(crate) fn done(outcome: Result<(), TellError<M>>) -> Self {
        TellFuture {
            target: None,
            msg: None,
            frame: Ok(Vec::new()),
            large: None,
            ready: Some(outcome),
        }
    }
}

impl<M: serde::Serialize> Future for TellFuture<M> {
    type Output = Result<(), TellError<M>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(outcome) = this.ready.take() {
            return Poll::Ready(outcome);
        }
        let Some(msg) = this.msg.take() else {
            panic!("a TellFuture was polled after it completed");
        };
        let target = this
            .target
            .clone()
            .expect("a TellFuture without an outcome has a target");
        let frame = match &mut this.frame {
            Ok(f) => f,
            Err(e) => {
                return Poll::Ready(Err(TellError::Encode {
                    msg,
                    error: e.clone(),
                }))
            }
        };
        if this.large.is_none() && is_large(&target, frame) {
            let taken = std::mem::take(frame);
            this.large = Some(send_on_a_thread(target.clone(), taken, Wait::Forever, cx));
        }
        if let Some(slot) = &this.large {
            let outcome = lock(slot).take();
            return match outcome {
                None => {
                    this.msg = Some(msg);
                    Poll::Pending
                }
                Some(Ok(())) => Poll::Ready(Ok(())),
                Some(Err(fail)) => {
                    Poll::Ready(Err(TellError::from_fail(fail, msg, 0, target.max_frame())))
                }
            };
        }
        match target.send(frame, Wait::Never) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(SendFail::Full) => match router() {
                Ok(r) => {
                    r.wait_for_room(cx.waker());
                    this.msg = Some(msg);
                    Poll::Pending
                }
                Err(_) => Poll::Ready(Err(TellError::RuntimeLost(msg))),
            },
            Err(fail) => {
                let len = frame.len() as u64;
                Poll::Ready(Err(TellError::from_fail(
                    fail,
                    msg,
                    len,
                    target.max_frame(),
                )))
            }
        }
    }
}
