//! [`ActorRef`]: the typed address of an actor, usable from any process of the runtime.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::ask;
use super::traits::{Actor, Dispatch, Handles, Message};
use crate::error::{Error, Result, TellError};
use crate::mailbox::{Mailbox, SendFail, Wait, LIVENESS_SLICE, STATE_EXITED};
use crate::process::forkserver::ConsumerStatus;
use crate::process::{fork, runtime, Exit, SpawnOptions};
use crate::remote::{self, RemoteAddr, RemoteError};
use crate::wire::{encode_body, FrameHeader, FrameKind};

/// The default timeout of [`ActorRef::ask`]: 5 seconds.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`ActorRef::stop`] waits for room in a full mailbox: 5 seconds.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A typed reference to an actor running in its own process.
///
/// The address is the actor's mailbox, not its pid. An `ActorRef` is `Clone`, and it is
/// `Serialize + Deserialize`: put it in a message and the receiving actor, in another
/// process, can use it.
///
/// Sending a message the actor does not handle does not compile:
///
/// ```compile_fail,E0277
/// use procession::prelude::*;
/// #[derive(Serialize, Deserialize, Message)] struct Ping;
/// #[derive(Serialize, Deserialize, Message)] struct Pong;
/// #[derive(Serialize, Deserialize, Message)] struct Other;
/// #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Ping, Pong))] struct A;
/// impl Handler<Ping> for A { fn handle(&mut self, _: Ping, _: &mut Context<Self>) {} }
/// impl Handler<Pong> for A { fn handle(&mut self, _: Pong, _: &mut Context<Self>) {} }
/// // error[E0277]: actor `A` does not handle message `Other`
/// fn send(a: ActorRef<A>) { a.tell(Other).unwrap(); }
/// ```
pub struct ActorRef<A> {
    target: Target,
    _actor: PhantomData<fn() -> A>,
}

/// Where an [`ActorRef`] sends.
#[derive(Clone)]
enum Target {
    /// A mailbox of this host's runtime.
    Local(Arc<Mailbox>),
    /// An actor on another host, reached through this host's gateway.
    Remote(Arc<RemoteAddr>),
}

impl<A> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        ActorRef {
            target: self.target.clone(),
            _actor: PhantomData,
        }
    }
}

impl<A> std::fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Target::Local(mb) => f
                .debug_struct("ActorRef")
                .field("actor", &mb.actor_name())
                .field("mailbox", &format_args!("{:016x}", mb.id()))
                .field("pid", &mb.pid())
                .finish(),
            Target::Remote(to) => f
                .debug_struct("ActorRef")
                .field("actor", &to.actor)
                .field("mailbox", &format_args!("{:016x}", to.mailbox))
                .field("host", &to.host)
                .field("epoch", &format_args!("{:x}", to.epoch))
                .finish(),
        }
    }
}

impl<A> PartialEq for ActorRef<A> {
    fn eq(&self, other: &Self) -> bool {
        match (&self.target, &other.target) {
            (Target::Local(a), Target::Local(b)) => a.id() == b.id(),
            (Target::Remote(a), Target::Remote(b)) => a == b,
            _ => false,
        }
    }
}

impl<A> Eq for ActorRef<A> {}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Builds a frame in a thread-local buffer and hands it to `f`.
pub(crate) fn with_frame<T: Serialize + ?Sized, R>(
    header: FrameHeader,
    body: &T,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, crate::wire::WireError> {
    // The buffer is taken out while `f` runs (a nested call gets a fresh one), and at
    // thread exit, when it may be gone, a fresh one serves.
    let mut buf = SCRATCH
        .try_with(|cell| {
            cell.try_borrow_mut()
                .map(|mut b| std::mem::take(&mut *b))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    buf.clear();
    header.write_into(&mut buf);
    let res = encode_body(body, &mut buf).and_then(|()| FrameHeader::seal(&mut buf));
    let out = res.map(|()| f(&buf));
    // Keep the buffer for the next send (a fresh multi-MiB buffer costs a page fault per
    // 4 KiB), unless it grew beyond the default maximum frame.
    if buf.capacity() <= crate::wire::DEFAULT_MAX_FRAME {
        let _ = SCRATCH.try_with(|cell| {
            if let Ok(mut b) = cell.try_borrow_mut() {
                *b = buf;
            }
        });
    }
    out
}

/// The header of a tell of `M`.
fn tell_header<M: Message>() -> FrameHeader {
    FrameHeader {
        kind: FrameKind::Tell,
        tag: M::TAG_ID,
        corr: 0,
        reply_to: 0,
    }
}

/// The most messages [`ActorRef::tell_many`] sends under one take of the mailbox's lock.
pub const TELL_MANY_BATCH: usize = 128;

impl<A: Dispatch> ActorRef<A> {
    pub(crate) fn from_mailbox(mb: Arc<Mailbox>) -> Self {
        ActorRef {
            target: Target::Local(mb),
            _actor: PhantomData,
        }
    }

    pub(crate) fn from_remote(addr: RemoteAddr) -> Self {
        ActorRef {
            target: Target::Remote(Arc::new(addr)),
            _actor: PhantomData,
        }
    }

    /// The actor's current pid (0 before it started, and for an actor on another host).
    pub fn pid(&self) -> u32 {
        match &self.target {
            Target::Local(mb) => mb.pid(),
            Target::Remote(_) => 0,
        }
    }

    /// The mailbox id, the stable address of this actor (on its host).
    pub fn id(&self) -> u64 {
        match &self.target {
            Target::Local(mb) => mb.id(),
            Target::Remote(to) => to.mailbox,
        }
    }

    /// The address of the actor on another host, for a ref to one; `None` for a ref to an
    /// actor of this host.
    pub fn remote_addr(&self) -> Option<&RemoteAddr> {
        match &self.target {
            Target::Local(_) => None,
            Target::Remote(to) => Some(to),
        }
    }

    /// The mailbox of a ref to a local actor, or `what` is not available remotely.
    pub(crate) fn local(&self, what: &'static str) -> Result<&Arc<Mailbox>> {
        match &self.target {
            Target::Local(mb) => Ok(mb),
            Target::Remote(_) => Err(Error::Remote(RemoteError::Unsupported(what.to_string()))),
        }
    }

    fn tell_with<M: Message>(&self, msg: M, wait: Wait) -> Result<(), TellError<M>>
    where
        A: Handles<M>,
    {
        let header = tell_header::<M>();
        let mb = match &self.target {
            Target::Local(mb) => mb,
            Target::Remote(to) => {
                return match remote::send(to, header, &msg, wait) {
                    Ok(()) => Ok(()),
                    Err(remote::SendError::Remote(error)) => Err(TellError::Remote { msg, error }),
                    Err(remote::SendError::Wire(error)) => Err(TellError::Encode { msg, error }),
                    Err(remote::SendError::Local(fail, len)) => {
                        Err(remote_send_fail(fail, msg, len))
                    }
                }
            }
        };
        let sent = with_frame(header, &msg, |frame| {
            mb.send(frame, wait).map_err(|f| (f, frame.len() as u64))
        });
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err((fail, len))) => Err(TellError::from_fail(fail, msg, len, mb.max_frame())),
            Err(error) => Err(TellError::Encode { msg, error }),
        }
    }

    /// Sends `msg` without waiting for it to be handled. Waits while the mailbox is full
    /// (backpressure); fails only if the actor is gone or the message is too large.
    /// Messages from one thread arrive in the order sent.
    ///
    /// # Errors
    /// [`TellError::Dead`] if the actor has exited for good, [`TellError::TooLarge`]
    /// for a message above the mailbox's maximum frame, [`TellError::Encode`] if it
    /// does not encode, [`TellError::Corrupt`] or [`TellError::RuntimeLost`]; each
    /// gives the message back.
    pub fn tell<M: Message>(&self, msg: M) -> Result<(), TellError<M>>
    where
        A: Handles<M>,
    {
        self.tell_with(msg, Wait::Forever)
    }

    /// Like [`tell`](Self::tell), but never waits: a full mailbox gives the message back
    /// as [`TellError::Full`]. (A message larger than the mailbox's ring can never be
    /// accepted without waiting, so it too comes back as `Full`.)
    ///
    /// # Errors
    /// As [`tell`](Self::tell), and [`TellError::Full`] instead of waiting.
    pub fn try_tell<M: Message>(&self, msg: M) -> Result<(), TellError<M>>
    where
        A: Handles<M>,
    {
        self.tell_with(msg, Wait::Never)
    }

    /// Like [`tell`](Self::tell), but waits at most `timeout` for room, then gives the
    /// message back as [`TellError::Timeout`].
    ///
    /// # Errors
    /// As [`tell`](Self::tell), and [`TellError::Timeout`] once `timeout` passed with
    /// the mailbox full.
    pub fn tell_timeout<M: Message>(&self, msg: M, timeout: Duration) -> Result<(), TellError<M>>
    where
        A: Handles<M>,
    {
        self.tell_with(msg, Wait::from_timeout(Some(timeout)))
    }

    /// Sends every message of `msgs`, in order, as [`tell`](Self::tell) would, but takes
    /// the mailbox's lock once for a batch of them (up to [`TELL_MANY_BATCH`] messages or
    /// 64 KiB) and publishes the batch with one update and at most one wake-up of the
    /// actor. For a burst of small messages this costs a fraction of a `tell` each. Waits
    /// for room like `tell` (backpressure). Messages from one thread still arrive in the
    /// order sent, and those of a batch arrive without other senders' frames between them
    /// unless the ring fills mid-batch.
    ///
    /// ```no_run
    /// # use procession::prelude::*;
    /// # #[derive(Serialize, Deserialize, Message)] struct Tick(u64);
    /// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Tick))] struct Sink;
    /// # impl Handler<Tick> for Sink { fn handle(&mut self, _: Tick, _: &mut Context<Self>) {} }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sink: ActorRef<Sink> = procession::spawn(Sink)?;
    /// sink.tell_many((0..100_000).map(Tick))?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`TellManyError`](crate::TellManyError): how many were sent, and the
    /// [`TellError`] of the first that was not (as `tell`'s, holding that message). The
    /// messages after it are not sent.
    pub fn tell_many<M: Message>(
        &self,
        msgs: impl IntoIterator<Item = M>,
    ) -> std::result::Result<(), crate::TellManyError<M>>
    where
        A: Handles<M>,
    {
        let header = tell_header::<M>();
        let mut msgs = msgs.into_iter();
        let mb = match &self.target {
            Target::Local(mb) => mb,
            Target::Remote(_) => {
                // One Forward each: the gateway's publishes are what a batch would save.
                for (sent, msg) in msgs.enumerate() {
                    if let Err(error) = self.tell(msg) {
                        return Err(crate::TellManyError { sent, error });
                    }
                }
                return Ok(());
            }
        };
        let mut batch: Vec<M> = Vec::new();
        let mut buf = Vec::new();
        let mut ends: Vec<usize> = Vec::new();
        let mut sent = 0;
        loop {
            batch.clear();
            buf.clear();
            ends.clear();
            for msg in msgs.by_ref() {
                let start = buf.len();
                header.write_into(&mut buf);
                let encoded =
                    encode_body(&msg, &mut buf).and_then(|()| FrameHeader::seal(&mut buf[start..]));
                if let Err(error) = encoded {
                    // Send what came before it, then report it.
                    buf.truncate(start);
                    let (n, r) = send_batch(mb, &buf, &ends);
                    sent += n;
                    let error = match r {
                        Err((fail, len)) => {
                            let m = batch.swap_remove(n);
                            TellError::from_fail(fail, m, len, mb.max_frame())
                        }
                        Ok(()) => TellError::Encode { msg, error },
                    };
                    return Err(crate::TellManyError { sent, error });
                }
                ends.push(buf.len());
                batch.push(msg);
                if batch.len() >= TELL_MANY_BATCH || buf.len() >= 64 << 10 {
                    break;
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            let (n, r) = send_batch(mb, &buf, &ends);
            sent += n;
            if let Err((fail, len)) = r {
                let m = batch.swap_remove(n);
                let error = TellError::from_fail(fail, m, len, mb.max_frame());
                return Err(crate::TellManyError { sent, error });
            }
        }
    }

    /// Sends `msg` and waits for the reply, at most [`DEFAULT_ASK_TIMEOUT`] (5 s).
    ///
    /// # Errors
    /// As [`ask_timeout`](Self::ask_timeout).
    pub fn ask<M: Message>(&self, msg: M) -> Result<M::Reply>
    where
        A: Handles<M>,
    {
        self.ask_timeout(msg, DEFAULT_ASK_TIMEOUT)
    }

    /// Sends `msg` and waits for the reply, at most `timeout`. If the actor dies first,
    /// returns [`Error::ActorDied`] (within 20 ms of the death being recorded).
    ///
    /// # Errors
    /// [`Error::Timeout`] if no reply came in time (a reply that comes later is
    /// discarded and counted in [`late_replies`](crate::late_replies));
    /// [`Error::ActorDied`] if the actor died first or while handling it;
    /// [`Error::Rejected`] if the actor could not decode it; [`Error::ReplyTooLarge`],
    /// [`Error::NoReply`] (its reply token was dropped), [`Error::AskedItself`],
    /// [`Error::Corrupt`], [`Error::RuntimeLost`], or [`Error::Wire`] if the message
    /// does not encode.
    pub fn ask_timeout<M: Message>(&self, msg: M, timeout: Duration) -> Result<M::Reply>
    where
        A: Handles<M>,
    {
        match &self.target {
            Target::Local(mb) => ask::ask(mb, M::TAG_ID, &msg, M::TAG, timeout),
            Target::Remote(to) => remote::ask(to, M::TAG_ID, &msg, M::TAG, timeout),
        }
    }

    /// Sends `msg` and resolves to the reply, without blocking the thread that polls
    /// it: the async form of [`ask`](Self::ask), with its default timeout of
    /// [`DEFAULT_ASK_TIMEOUT`] (5 s) counted from the first poll. Works on any executor
    /// (tokio, `futures::executor`, ...); the reply comes through this process's reply
    /// router, which wakes the task. Dropping the future abandons the wait (see
    /// [`AskFuture`](crate::AskFuture)).
    ///
    /// # Errors
    /// As [`ask_timeout`](Self::ask_timeout): [`Error::Timeout`], [`Error::ActorDied`],
    /// [`Error::Rejected`], [`Error::ReplyTooLarge`], [`Error::RuntimeLost`],
    /// [`Error::AskedItself`].
    ///
    /// ```
    /// use procession::prelude::*;
    ///
    /// #[derive(Serialize, Deserialize, Message)]
    /// #[message(reply = u64)]
    /// struct Double(u64);
    ///
    /// #[derive(Serialize, Deserialize, Actor)]
    /// #[actor(handles(Double))]
    /// struct Doubler;
    ///
    /// impl Handler<Double> for Doubler {
    ///     fn handle(&mut self, Double(x): Double, _cx: &mut Context<Self>) -> u64 { 2 * x }
    /// }
    ///
    /// let d = Doubler.spawn()?;
    /// // Any executor will do; this one is the `futures` crate's.
    /// let four = futures::executor::block_on(d.ask_async(Double(2)))?;
    /// assert_eq!(four, 4);
    /// d.stop()?;
    /// d.join()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn ask_async<M: Message>(&self, msg: M) -> crate::AskFuture<M::Reply>
    where
        A: Handles<M>,
    {
        self.ask_async_timeout(msg, DEFAULT_ASK_TIMEOUT)
    }

    /// [`ask_async`](Self::ask_async) with a timeout of its own, counted from the first
    /// poll.
    pub fn ask_async_timeout<M: Message>(
        &self,
        msg: M,
        timeout: Duration,
    ) -> crate::AskFuture<M::Reply>
    where
        A: Handles<M>,
    {
        match &self.target {
            Target::Local(mb) => {
                crate::AskFuture::new(mb.clone(), M::TAG_ID, &msg, M::TAG, timeout)
            }
            Target::Remote(to) => remote::ask_future(to, M::TAG_ID, &msg, M::TAG, timeout),
        }
    }

    /// Queues `msg` without blocking the thread that polls the future: the async form of
    /// [`tell`](Self::tell). While the mailbox is full the future waits (backpressure)
    /// and is tried again every millisecond; it resolves once the message is queued.
    ///
    /// # Errors
    /// As [`tell`](Self::tell), with the message given back in the [`TellError`].
    pub fn tell_async<M: Message>(&self, msg: M) -> crate::TellFuture<M>
    where
        A: Handles<M>,
    {
        match &self.target {
            Target::Local(mb) => crate::TellFuture::new(mb.clone(), M::TAG_ID, msg),
            // A remote tell waits only for the local gateway's mailbox.
            Target::Remote(_) => crate::TellFuture::done(self.tell(msg)),
        }
    }

    /// A blocking ask whose reply comes through the process's reply router and a
    /// crossbeam channel, instead of this thread's own inbox (benchmarks compare both).
    #[doc(hidden)]
    pub fn ask_routed<M: Message>(&self, msg: M, timeout: Duration) -> Result<M::Reply>
    where
        A: Handles<M>,
    {
        super::router::router()?.ask_blocking(
            self.local("ask_routed")?,
            M::TAG_ID,
            &msg,
            M::TAG,
            timeout,
        )
    }

    /// Asks the actor to stop gracefully: it handles what was sent before, runs its
    /// `stopping` hook and exits with [`Exit::Stopped`]. Returns once the request is
    /// queued; [`join`](Self::join) waits for the exit. Stopping an exited actor is a no-op.
    /// Waits at most [`DEFAULT_STOP_TIMEOUT`] (5 s) for room in a full mailbox, then
    /// fails with [`Error::Timeout`]; [`stop_timeout`](Self::stop_timeout) chooses the
    /// bound, and [`kill`](Self::kill) does not wait at all.
    ///
    /// # Errors
    /// As [`stop_timeout`](Self::stop_timeout).
    pub fn stop(&self) -> Result<()> {
        self.stop_timeout(DEFAULT_STOP_TIMEOUT)
    }

    /// Like [`stop`](Self::stop), waiting at most `timeout` for room to queue the request.
    ///
    /// ```
    /// use procession::prelude::*;
    /// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles())] struct Idle;
    /// let a: ActorRef<Idle> = procession::spawn(Idle)?;
    /// a.stop_timeout(std::time::Duration::from_secs(1))?;
    /// assert_eq!(a.join()?, procession::Exit::Stopped);
    /// # Ok::<(), procession::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Timeout`] if the mailbox stayed full for `timeout`; [`Error::Corrupt`]
    /// or [`Error::RuntimeLost`].
    pub fn stop_timeout(&self, timeout: Duration) -> Result<()> {
        let header = FrameHeader {
            kind: FrameKind::Stop,
            tag: 0,
            corr: 0,
            reply_to: 0,
        };
        let wait = Wait::from_timeout(Some(timeout));
        let mb = match &self.target {
            Target::Local(mb) => mb,
            Target::Remote(to) => {
                return match remote::send(to, header, &(), wait) {
                    Ok(()) => Ok(()),
                    Err(remote::SendError::Remote(e)) => Err(Error::Remote(e)),
                    Err(remote::SendError::Wire(e)) => Err(Error::Wire(e)),
                    Err(remote::SendError::Local(fail, len)) => {
                        Err(Error::from(remote_send_fail(fail, (), len)))
                    }
                }
            }
        };
        match with_frame(header, &(), |f| mb.send(f, wait))? {
            Ok(()) | Err(SendFail::Dead) => Ok(()),
            Err(SendFail::Timeout | SendFail::Full) => Err(Error::Timeout(timeout)),
            Err(SendFail::Lost) => Err(Error::RuntimeLost),
            Err(SendFail::Corrupt) => Err(Error::Corrupt {
                actor: mb.actor_name().to_string(),
            }),
            Err(SendFail::TooLarge) => Err(Error::Runtime(
                "the actor's maximum frame size is too small for a stop request".into(),
            )),
        }
    }

    /// Kills the actor's process at once with SIGKILL; [`join`](Self::join) then reports
    /// [`Exit::Signaled(9)`](Exit::Signaled). Killing an exited actor is a no-op.
    ///
    /// # Errors
    /// As [`signal`](Self::signal).
    pub fn kill(&self) -> Result<()> {
        self.signal(nix::sys::signal::Signal::SIGKILL)
    }

    /// Sends `signal` to the actor's process, if it still runs. The signal goes through
    /// the process that started the actor (the zygote, or this process for the `fork`
    /// start method), which finds it by its mailbox in its own records: the pid stored in
    /// the mailbox's shared header is never signalled, since any process of the same user
    /// could have written it.
    ///
    /// # Errors
    /// [`Error::RuntimeLost`] if the runtime (its zygote) is gone. An actor that has
    /// already exited is not an error.
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> Result<()> {
        let mb = self.local("signal")?;
        if mb.is_lost() {
            return Err(Error::RuntimeLost);
        }
        if mb.state() == STATE_EXITED && mb.is_gone() {
            return Ok(());
        }
        if fork::signal_child(mb.id(), signal) {
            return Ok(());
        }
        crate::process::signal_consumer(mb.id(), signal);
        Ok(())
    }

    /// `true` until the actor's process has exited and been reaped. For an actor on
    /// another host, which this host cannot see, `true` (ask it, or stop it, to learn).
    pub fn is_alive(&self) -> bool {
        let Target::Local(mb) = &self.target else {
            return true;
        };
        fork::reap();
        crate::mailbox::probe_runtime();
        !mb.is_lost() && mb.state() != STATE_EXITED
    }

    /// Waits for the actor's process to end and says how. For an actor that a supervisor
    /// restarts, this is the end of the current incarnation (use
    /// [`Context::monitor`](crate::Context::monitor) to follow every one). If the runtime
    /// is lost meanwhile (its zygote died), returns [`Exit::RuntimeLost`].
    ///
    /// # Errors
    /// [`Error::Remote`] ([`RemoteError::Unsupported`]) for an actor on another host;
    /// otherwise none (a lost runtime is the exit [`Exit::RuntimeLost`]).
    pub fn join(&self) -> Result<Exit> {
        let mb = self.local("join")?;
        let mut slices = 0u32;
        loop {
            if let Some(exit) = try_join(mb, slices) {
                return Ok(exit);
            }
            mb.wait_state_change(mb.state(), LIVENESS_SLICE);
            slices += 1;
        }
    }

    /// Waits at most `timeout` for the actor's process to end.
    ///
    /// # Errors
    /// [`Error::Timeout`] if the process still runs after `timeout`;
    /// [`Error::Remote`] ([`RemoteError::Unsupported`]) for an actor on another host.
    pub fn join_timeout(&self, timeout: Duration) -> Result<Exit> {
        let mb = self.local("join_timeout")?;
        let deadline = Instant::now() + timeout;
        let mut slices = 0u32;
        loop {
            if let Some(exit) = try_join(mb, slices) {
                return Ok(exit);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout(timeout));
            }
            mb.wait_state_change(mb.state(), left.min(LIVENESS_SLICE));
            slices += 1;
        }
    }

    /// The actor's counters and its process's usage now (see
    /// [`ActorStats`](crate::ActorStats)). Reads shared memory and `/proc`; sends nothing.
    /// An actor on another host has none here: all zero.
    pub fn stats(&self) -> crate::ActorStats {
        match &self.target {
            Target::Local(mb) => crate::ActorStats::of(mb),
            Target::Remote(_) => crate::ActorStats::default(),
        }
    }

    /// Frames this actor rejected as malformed so far.
    #[doc(hidden)]
    pub fn bad_frames(&self) -> u64 {
        self.local("bad_frames").map_or(0, |mb| mb.bad_frames())
    }

    /// The underlying mailbox (tests use it to write malformed frames). Panics for a
    /// ref to an actor on another host.
    #[doc(hidden)]
    pub fn mailbox(&self) -> &Arc<Mailbox> {
        self.local("mailbox")
            .expect("mailbox() of a ref to an actor on another host")
    }
}

/// The error for a remote send that the local gateway's mailbox refused.
fn remote_send_fail<M>(fail: SendFail, msg: M, len: u64) -> TellError<M> {
    match fail {
        // The gateway is gone for good, not the remote actor.
        SendFail::Dead => TellError::Remote {
            msg,
            error: RemoteError::NoGateway,
        },
        other => TellError::from_fail(other, msg, len, crate::wire::DEFAULT_MAX_FRAME as u64),
    }
}

/// Sends the frames of `buf` (each ending at the next of `ends`) to `mb` as one batch.
fn send_batch(
    mb: &Mailbox,
    buf: &[u8],
    ends: &[usize],
) -> (usize, std::result::Result<(), (SendFail, u64)>) {
    let mut frames = Vec::with_capacity(ends.len());
    let mut start = 0;
    for &end in ends {
        frames.push(&buf[start..end]);
        start = end;
    }
    let (n, r) = mb.send_many(&frames, Wait::Forever);
    (n, r.map_err(|fail| (fail, frames[n].len() as u64)))
}

/// The exit, if the process of `mb`'s actor has ended. After one slice of a wait, and
/// every 16th after that, it also asks the zygote, whose own record of the exit does not
/// depend on the mailbox file (which any process of the same user can write over).
fn try_join(mb: &Mailbox, slices: u32) -> Option<Exit> {
    fork::reap();
    crate::mailbox::probe_runtime();
    if mb.is_lost() {
        return Some(Exit::RuntimeLost);
    }
    if mb.state() == STATE_EXITED {
        return Some(Exit::from_raw(mb.raw_exit()));
    }
    // (While STARTING, a supervised actor may be between incarnations: the zygote's
    // record of the last one is not the end of the next.)
    if slices % 16 == 1 && mb.state() != crate::mailbox::STATE_STARTING {
        if let ConsumerStatus::Exited { exit, .. } = crate::process::consumer_status(mb.id()) {
            if mb.state() != STATE_EXITED {
                tracing::warn!(actor = mb.actor_name(), %exit, "the mailbox shows no exit, but the zygote recorded one");
            }
            return Some(exit);
        }
    }
    None
}

/// Queues a graceful stop for the incarnation `incarnation` of the actor that consumes
/// `mb` (`None`: whichever reads it).
pub(crate) fn send_stop(
    mb: &Mailbox,
    incarnation: Option<u32>,
    wait: Wait,
) -> Result<(), SendFail> {
    send_stop_as(mb, incarnation, wait, false)
}

/// `reply_to` of a stop frame from a supervisor terminating its child: the child exits
/// with [`Exit::Shutdown("shutdown")`](crate::Exit::Shutdown), OTP's `shutdown`.
pub(crate) const STOP_SHUTDOWN: u64 = 1;

/// A graceful stop; with `shutdown`, the exit is `Shutdown("shutdown")` instead of
/// `Stopped`.
pub(crate) fn send_stop_as(
    mb: &Mailbox,
    incarnation: Option<u32>,
    wait: Wait,
    shutdown: bool,
) -> Result<(), SendFail> {
    let header = FrameHeader {
        kind: FrameKind::Stop,
        tag: 0,
        corr: incarnation.map_or(0, |i| i as u64 + 1),
        reply_to: if shutdown { STOP_SHUTDOWN } else { 0 },
    };
    with_frame(header, &(), |f| mb.send(f, wait)).unwrap_or(Err(SendFail::TooLarge))
}

/// Starts an actor of type `A` in a new OS process and returns its reference once its
/// `create` has run. Uses the program's start method ([`set_start_method`](crate::set_start_method)).
///
/// **The actor outlives nothing by accident.** As in Python's multiprocessing, a program
/// that returns from `main` while a non-daemon actor runs waits for it to end; after 2 s
/// ([`EXIT_WAIT_NOTICE`](crate::EXIT_WAIT_NOTICE)) it names on stderr the actors it waits
/// for. Stop and join an actor before returning, or spawn it as a daemon
/// ([`SpawnOptions::daemon`]), which is killed when its spawner ends. Whatever the flag,
/// an actor never outlives a spawner that dies. Where `A` cannot be inferred (its spawn
/// arguments are the actor itself), write `Tiny.spawn()` ([`Spawn`]).
///
/// # Errors
/// [`Error::StartFailed`] if `create` failed or panicked, or a limit could not be applied;
/// [`Error::InvalidArgument`] for a `PROCESSION_START_METHOD` that names no start method;
/// [`Error::ForkUnsafe`] for the fork method in a multi-threaded process;
/// [`Error::Io`] if the mailbox or the process cannot be created;
/// [`Error::Timeout`] if `create` did not finish within the start timeout.
///
/// ```
/// use procession::prelude::*;
///
/// #[derive(Serialize, Deserialize, Message)]
/// #[message(reply = u64)]
/// struct Add(u64);
///
/// #[derive(Serialize, Deserialize, Actor)]
/// #[actor(handles(Add))]
/// struct Counter { total: u64 }
///
/// impl Handler<Add> for Counter {
///     fn handle(&mut self, Add(n): Add, _cx: &mut Context<Self>) -> u64 {
///         self.total += n;
///         self.total
///     }
/// }
///
/// let counter: ActorRef<Counter> = procession::spawn(Counter { total: 0 })?;
/// assert_ne!(counter.pid(), std::process::id());
/// counter.tell(Add(1))?;
/// assert_eq!(counter.ask(Add(2))?, 3);
/// counter.stop()?;
/// assert_eq!(counter.join()?, procession::Exit::Stopped);
/// # Ok::<(), procession::Error>(())
/// ```
pub fn spawn<A: Dispatch>(args: A::Args) -> Result<ActorRef<A>> {
    spawn_with(args, SpawnOptions::default())
}

/// Like [`spawn`], with [`SpawnOptions`] (start method, mailbox size, limits).
///
/// # Errors
/// As [`spawn`].
pub fn spawn_with<A: Dispatch>(args: A::Args, opts: SpawnOptions) -> Result<ActorRef<A>> {
    let mut bytes = Vec::new();
    encode_body(&args, &mut bytes)?;
    let mb = crate::process::start(A::NAME, bytes, &opts)?;
    Ok(ActorRef::from_mailbox(mb))
}

/// `actor.spawn()`: spawns an actor whose spawn arguments are the actor itself (what
/// `#[derive(Actor)]` gives without `args = ...`), with its type inferred. The free
/// [`spawn`] cannot infer it from the value alone (another actor type could take the same
/// arguments), so `procession::spawn(Tiny)` needs `let t: ActorRef<Tiny>` or
/// `spawn::<Tiny>`; `Tiny.spawn()` does not.
///
/// ```
/// use procession::prelude::*;
///
/// #[derive(Serialize, Deserialize, Message)]
/// #[message(reply = u32)]
/// struct Pid;
///
/// #[derive(Serialize, Deserialize, Actor)]
/// #[actor(handles(Pid))]
/// struct Tiny;
///
/// impl Handler<Pid> for Tiny {
///     fn handle(&mut self, _: Pid, cx: &mut Context<Self>) -> u32 {
///         cx.pid()
///     }
/// }
///
/// let tiny = Tiny.spawn()?; // an ActorRef<Tiny>
/// assert_ne!(tiny.ask(Pid)?, std::process::id());
/// tiny.stop()?;
/// tiny.join()?;
/// # Ok::<(), procession::Error>(())
/// ```
pub trait Spawn: Dispatch + Actor<Args = Self> {
    /// Spawns this actor in a new process, as [`spawn`] does.
    ///
    /// # Errors
    /// As [`spawn`]: the process cannot be started, or the actor's `create` failed.
    fn spawn(self) -> Result<ActorRef<Self>> {
        spawn(self)
    }

    /// Spawns this actor with options, as [`spawn_with`] does.
    ///
    /// # Errors
    /// As [`spawn_with`].
    fn spawn_with(self, opts: SpawnOptions) -> Result<ActorRef<Self>> {
        spawn_with(self, opts)
    }
}

impl<A: Dispatch + Actor<Args = A>> Spawn for A {}

/// Spawns by stable name, without the type: the child looks the name up in its registry.
/// For tests and tools; returns [`Error::UnknownActor`] if the child does not know it.
#[doc(hidden)]
pub fn spawn_named(name: &str, args: Vec<u8>, opts: SpawnOptions) -> Result<u32> {
    let mb = crate::process::start(name, args, &opts)?;
    Ok(mb.pid())
}

/// An `ActorRef` on the wire: the mailbox and actor type, and the host and its epoch
/// (absent when this runtime has no host identity; such a ref is local wherever read).
#[derive(Serialize, Deserialize)]
struct WireRef {
    mailbox: u64,
    actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(default)]
    epoch: u64,
}

impl<A: Dispatch> crate::Waitable for ActorRef<A> {
    /// Ready: the actor's process has ended (and [`join`](ActorRef::join) returns at once).
    /// Never, for an actor on another host.
    fn is_ready(&self) -> bool {
        !self.is_alive()
    }

    fn wait_ready(&self, timeout: Duration) {
        match &self.target {
            Target::Local(mb) => mb.wait_state_change(mb.state(), timeout),
            Target::Remote(_) => std::thread::sleep(timeout),
        }
    }
}

impl<A: Dispatch> Serialize for ActorRef<A> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let w = match &self.target {
            Target::Local(mb) => {
                let here = remote::this_host();
                WireRef {
                    mailbox: mb.id(),
                    actor: A::NAME.to_string(),
                    host: here.as_ref().map(|h| h.host.clone()),
                    epoch: here.map_or(0, |h| h.epoch),
                }
            }
            Target::Remote(to) => WireRef {
                mailbox: to.mailbox,
                actor: A::NAME.to_string(),
                host: Some(to.host.clone()),
                epoch: to.epoch,
            },
        };
        w.serialize(s)
    }
}

impl<'de, A: Dispatch> Deserialize<'de> for ActorRef<A> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let w = WireRef::deserialize(d)?;
        if w.actor != A::NAME {
            return Err(D::Error::custom(format!(
                "reference to a {} used as a reference to a {}",
                w.actor,
                A::NAME
            )));
        }
        if !remote::is_here(w.host.as_deref(), w.epoch) {
            return Ok(ActorRef::from_remote(RemoteAddr {
                host: w.host.unwrap_or_default(),
                epoch: w.epoch,
                mailbox: w.mailbox,
                actor: w.actor,
            }));
        }
        let rt = runtime::current()
            .ok_or_else(|| D::Error::custom("this process has no procession runtime yet"))?;
        let mb = Mailbox::open(rt.dir(), w.mailbox).map_err(|e| {
            D::Error::custom(format!(
                "actor {} ({:016x}) is gone: {e}",
                w.actor, w.mailbox
            ))
        })?;
        if mb.actor_name() != A::NAME {
            return Err(D::Error::custom("mailbox belongs to another actor type"));
        }
        Ok(ActorRef::from_mailbox(mb))
    }
}
