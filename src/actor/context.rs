//! [`Context`]: what a running actor can do to itself and its surroundings.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::actor_ref::{with_frame, ActorRef};
use super::reply::ReplyToken;
use super::traits::{Actor, Dispatch, Handles, Message};
use crate::error::{Error, Result};
use crate::process::{Down, Exit, SpawnOptions, DOWN_TAG};
use crate::wire::{FrameHeader, FrameKind};

/// A message the actor sends itself later ([`Context::send_self_after`]), or every
/// `every` ([`Context::send_interval`]).
struct Timer {
    due: Reverse<Instant>,
    seq: Reverse<u64>,
    frame: Vec<u8>,
    every: Option<Duration>,
}

/// A timer set with [`Context::send_self_after`] or [`Context::send_interval`]; pass it
/// to [`Context::cancel_timer`] to cancel it. It is only a name: dropping it cancels
/// nothing, and it means nothing to another actor or incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerHandle(u64);

/// The ask a handler is answering: where its reply goes.
#[derive(Clone, Copy)]
pub(crate) struct AskInFlight {
    pub(crate) reply_to: u64,
    pub(crate) corr: u64,
    pub(crate) tag: u64,
}

impl PartialEq for Timer {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timer {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

/// Handed to every hook and handler: the actor's own ref, its pid, a way to stop, a way
/// to spawn more actors, monitors and links, and timers.
///
/// ```
/// use procession::prelude::*;
///
/// #[derive(Serialize, Deserialize, Message)]
/// struct Quit;
///
/// #[derive(Serialize, Deserialize, Actor)]
/// #[actor(handles(Quit))]
/// struct Quitter;
///
/// impl Handler<Quit> for Quitter {
///     fn handle(&mut self, _: Quit, cx: &mut Context<Self>) {
///         cx.stop(); // join() then reports Exit::Normal
///     }
/// }
/// ```
pub struct Context<A: Actor> {
    me: ActorRef<A>,
    stop: bool,
    shutdown: Option<String>,
    timers: BinaryHeap<Timer>,
    seq: u64,
    parent_pid: u32,
    parent_mailbox: u64,
    /// The ask being handled, until its reply token is taken.
    ask: Option<AskInFlight>,
    /// The handler took the reply token: the value it returns is not sent.
    deferred: bool,
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(me: ActorRef<A>) -> Self {
        Context {
            me,
            stop: false,
            shutdown: None,
            timers: BinaryHeap::new(),
            seq: 0,
            parent_pid: 0,
            parent_mailbox: 0,
            ask: None,
            deferred: false,
        }
    }

    /// Before a handler runs: the ask it answers, if it is one.
    pub(crate) fn begin_message(&mut self, ask: Option<AskInFlight>) {
        self.ask = ask;
        self.deferred = false;
    }

    /// After a handler ran: whether it took the reply token (its return value is then
    /// not sent).
    pub(crate) fn end_message(&mut self) -> bool {
        self.ask = None;
        std::mem::take(&mut self.deferred)
    }

    /// Takes the reply token of the ask being handled, to reply later: from this
    /// handler's actor after it returns, from another thread, or from another actor
    /// (the token is `Serialize`, so it can travel in a message). The value the handler
    /// returns is then **not** sent; [`ReplyToken::reply`] sends the reply instead.
    /// `None` if the message is a tell, part of a pool's batch, or its token was taken.
    ///
    /// The asker's timeout still governs: a reply after it is discarded and counted in
    /// the asker's [`late_replies`](crate::late_replies). A token dropped without a reply
    /// tells the asker at once ([`Error::NoReply`](crate::Error::NoReply)).
    ///
    /// ```
    /// use procession::prelude::*;
    /// use procession::ReplyToken;
    ///
    /// #[derive(Serialize, Deserialize, Message)]
    /// #[message(reply = String)]
    /// struct Slow(String);
    ///
    /// #[derive(Serialize, Deserialize, Actor)]
    /// #[actor(handles(Slow))]
    /// struct Front;
    ///
    /// impl Handler<Slow> for Front {
    ///     fn handle(&mut self, Slow(s): Slow, cx: &mut Context<Self>) -> String {
    ///         let token: ReplyToken<String> = cx.reply_later::<Slow>().expect("an ask");
    ///         // Answer from a thread, while this actor goes on with its mailbox.
    ///         std::thread::spawn(move || token.reply(s.to_uppercase()));
    ///         String::new() // not sent
    ///     }
    /// }
    ///
    /// let front = Front.spawn()?;
    /// assert_eq!(front.ask(Slow("later".into()))?, "LATER");
    /// front.stop()?;
    /// front.join()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn reply_later<M: Message>(&mut self) -> Option<ReplyToken<M::Reply>>
    where
        A: super::traits::Handler<M>,
    {
        let ask = self.ask.take()?;
        if ask.tag != M::TAG_ID {
            // Asked from a handler of another message type: not this ask's token.
            self.ask = Some(ask);
            return None;
        }
        self.deferred = true;
        Some(ReplyToken::new(ask))
    }

    pub(crate) fn set_parent(&mut self, pid: u32, mailbox: u64) {
        self.parent_pid = pid;
        self.parent_mailbox = mailbox;
    }

    /// The pid of the process that spawned this actor (Python's `parent_process().pid`):
    /// the program's root, the actor that called [`Context::spawn`], or the supervisor
    /// or pool that started this incarnation. (The OS parent, `getppid()`, is the
    /// runtime's zygote; this is the logical one.)
    pub fn parent_pid(&self) -> u32 {
        self.parent_pid
    }

    /// The actor that spawned this one, if it was an actor of type `P` and its mailbox
    /// still exists: a supervisor for a supervised child, the spawning actor otherwise.
    /// `None` when the root process (not an actor) spawned it.
    ///
    /// ```no_run
    /// # use procession::prelude::*;
    /// # #[derive(Serialize, Deserialize, Message)] struct Hello;
    /// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Hello))] struct Boss;
    /// # impl Handler<Hello> for Boss { fn handle(&mut self, _: Hello, _: &mut Context<Self>) {} }
    /// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Hello))] struct Worker;
    /// # impl Handler<Hello> for Worker { fn handle(&mut self, _: Hello, _: &mut Context<Self>) {} }
    /// # fn f(cx: &mut Context<Worker>) {
    /// if let Some(boss) = cx.parent::<Boss>() {
    ///     boss.tell(Hello).unwrap();
    /// }
    /// # }
    /// ```
    pub fn parent<P: Dispatch>(&self) -> Option<ActorRef<P>> {
        if self.parent_mailbox == 0 {
            return None;
        }
        let rt = crate::process::runtime::current()?;
        let mb = crate::mailbox::Mailbox::open(rt.dir(), self.parent_mailbox).ok()?;
        (mb.actor_name() == P::NAME).then(|| ActorRef::from_mailbox(mb))
    }

    /// A reference to this actor, to hand to others.
    pub fn myself(&self) -> ActorRef<A> {
        self.me.clone()
    }

    /// This actor's pid.
    pub fn pid(&self) -> u32 {
        std::process::id()
    }

    /// Stops the actor after the current handler returns; `stopping` runs, and the exit
    /// is [`Exit::Normal`](crate::Exit::Normal).
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Stops the actor like [`Context::stop`], but its exit is
    /// [`Exit::Shutdown(reason)`](crate::Exit::Shutdown): a supervisor giving up.
    pub fn shutdown(&mut self, reason: impl Into<String>) {
        self.stop = true;
        self.shutdown = Some(reason.into());
    }

    pub(crate) fn shutdown_reason(&self) -> Option<&str> {
        self.shutdown.as_deref()
    }

    /// Whether [`Context::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stop
    }

    /// Spawns another actor, in its own process, from inside this one. It is a child of
    /// this actor's process: it dies if this process dies, and (unless it is a daemon)
    /// this actor waits for it before its process ends.
    ///
    /// # Errors
    /// As [`spawn`](crate::spawn).
    pub fn spawn<B: Dispatch>(&self, args: B::Args) -> Result<ActorRef<B>> {
        crate::spawn(args)
    }

    /// Spawns another actor with options (an actor process is single-threaded unless it
    /// starts threads, so [`StartMethod::Fork`](crate::StartMethod::Fork) works here).
    ///
    /// # Errors
    /// As [`spawn_with`](crate::spawn_with).
    pub fn spawn_with<B: Dispatch>(
        &self,
        args: B::Args,
        opts: SpawnOptions,
    ) -> Result<ActorRef<B>> {
        crate::spawn_with(args, opts)
    }

    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|t| t.due.0)
    }

    pub(crate) fn pop_due_timer(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !self.timers.peek().is_some_and(|t| t.due.0 <= now) {
            return None;
        }
        let t = self.timers.pop()?;
        match t.every {
            None => Some(t.frame),
            Some(every) => {
                // The next tick keeps the period, but never falls due in this round (a
                // late actor skips ticks rather than firing a burst of them).
                let mut next = t.due.0 + every;
                if next <= now {
                    next = now + every;
                }
                let frame = t.frame.clone();
                self.timers.push(Timer {
                    due: Reverse(next),
                    ..t
                });
                Some(frame)
            }
        }
    }

    /// Cancels a timer set with [`send_self_after`](Context::send_self_after) or
    /// [`send_interval`](Context::send_interval): `true` if it was pending (an interval
    /// timer always is until cancelled), `false` if it had fired or was cancelled.
    pub fn cancel_timer(&mut self, timer: TimerHandle) -> bool {
        let before = self.timers.len();
        self.timers.retain(|t| t.seq.0 != timer.0);
        self.timers.len() != before
    }

    /// How many timers are pending.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }
}

impl<A: Dispatch> Context<A> {
    /// Whether this actor is a daemon ([`SpawnOptions::daemon`]): its parent does not wait
    /// for it at exit, and kills it instead (Python's `Process.daemon`).
    pub fn is_daemon(&self) -> bool {
        self.me.mailbox().is_daemon()
    }

    /// Which incarnation of this actor runs (0 for the first; each restart by a
    /// supervisor adds one).
    pub fn incarnation(&self) -> u32 {
        self.me.mailbox().incarnation()
    }

    /// Delivers `msg` to this actor itself after `delay`, as a tell. Timers live in the
    /// process: a restart forgets them. The handle cancels it ([`Context::cancel_timer`]).
    ///
    /// # Errors
    /// [`Error::Wire`] if `msg` does not encode.
    pub fn send_self_after<M: Message>(&mut self, delay: Duration, msg: M) -> Result<TimerHandle>
    where
        A: Handles<M>,
    {
        self.add_timer(delay, None, &msg)
    }

    /// Delivers `msg` to this actor itself every `period`, the first time after one
    /// period, until [`cancel_timer`](Context::cancel_timer) (OTP's `timer:send_interval`).
    /// An actor busy past a tick skips it instead of catching up with a burst. A restart
    /// forgets the timer.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a zero period; [`Error::Wire`] if `msg` does not
    /// encode.
    ///
    /// ```
    /// use procession::prelude::*;
    /// use std::time::Duration;
    ///
    /// #[derive(Serialize, Deserialize, Message)]
    /// struct Tick;
    ///
    /// #[derive(Actor)]
    /// #[actor(handles(Tick), args = ())]
    /// struct Heart { beats: u32 }
    ///
    /// impl Actor for Heart {
    ///     type Args = ();
    ///     fn create(_: (), cx: &mut Context<Self>) -> Result<Self, BoxError> {
    ///         cx.send_interval(Duration::from_millis(10), Tick)?;
    ///         Ok(Heart { beats: 0 })
    ///     }
    /// }
    /// # impl Handler<Tick> for Heart {
    /// #     fn handle(&mut self, _: Tick, _cx: &mut Context<Self>) { self.beats += 1; }
    /// # }
    /// ```
    pub fn send_interval<M: Message>(&mut self, period: Duration, msg: M) -> Result<TimerHandle>
    where
        A: Handles<M>,
    {
        if period.is_zero() {
            return Err(Error::InvalidArgument(
                "send_interval needs a period above zero".into(),
            ));
        }
        self.add_timer(period, Some(period), &msg)
    }

    fn add_timer<M: Message>(
        &mut self,
        delay: Duration,
        every: Option<Duration>,
        msg: &M,
    ) -> Result<TimerHandle> {
        let header = FrameHeader {
            kind: FrameKind::Tell,
            tag: M::TAG_ID,
            corr: 0,
            reply_to: 0,
        };
        let frame = with_frame(header, msg, |f| f.to_vec())?;
        self.seq += 1;
        self.timers.push(Timer {
            due: Reverse(Instant::now() + delay),
            seq: Reverse(self.seq),
            frame,
            every,
        });
        Ok(TimerHandle(self.seq))
    }

    /// Monitors `target`: when its process exits, for any reason, this actor receives
    /// one [`Down`] message. If the target has already exited, the `Down` comes at once.
    /// (A restarted target is a new incarnation: monitor it again.)
    ///
    /// # Errors
    /// [`Error::Runtime`] if the target already has the maximum number of monitors and
    /// links; [`Error::Remote`] ([`RemoteError::NoGateway`](crate::RemoteError::NoGateway))
    /// for an actor on another host when this host runs no gateway.
    ///
    /// An actor on another host is monitored through the two hosts' gateways: its `Down`
    /// comes when it exits there, or with [`Exit::HostLost`] when its host is lost first
    /// (no heartbeat within the lease time, as Erlang's `noconnection`).
    pub fn monitor<B: Dispatch>(&self, target: &ActorRef<B>) -> Result<()>
    where
        A: Handles<Down>,
    {
        let me = self.me.id();
        if let Some(addr) = target.remote_addr() {
            return crate::remote::monitor(me, addr);
        }
        let mb = target.local("monitor")?;
        if !mb.add_watcher(me, false) {
            return Err(Error::Runtime(format!(
                "actor {} has too many monitors and links",
                mb.actor_name()
            )));
        }
        // Exited before we registered? Whoever removes the registration delivers.
        if mb.state() == crate::mailbox::STATE_EXITED && mb.remove_watcher(me, false) {
            let down = Down {
                id: mb.id(),
                actor: mb.actor_name().to_string(),
                pid: mb.pid(),
                exit: Exit::from_raw(mb.raw_exit()),
            };
            crate::process::send_notice(self.me.mailbox(), DOWN_TAG, &down);
        }
        Ok(())
    }

    /// Stops monitoring `target`; `true` if a monitor was removed before it fired.
    pub fn demonitor<B: Dispatch>(&self, target: &ActorRef<B>) -> bool {
        if let Some(addr) = target.remote_addr() {
            return crate::remote::demonitor(self.me.id(), addr);
        }
        target
            .local("demonitor")
            .is_ok_and(|mb| mb.remove_watcher(self.me.id(), false))
    }

    /// Links this actor with `target`, both ways, with OTP's rules. When either exits:
    /// - if the other traps exits ([`Context::trap_exit`]), it receives an
    ///   [`Exited`](crate::Exited) message, for **every** exit, normal included;
    /// - otherwise it is killed (its exit is `Failed`, naming the linked actor) unless the
    ///   exit is normal ([`Exit::is_normal`](crate::Exit::is_normal): `Normal` or
    ///   `Stopped`). `Shutdown` — a supervisor terminating a child, or giving up — is not
    ///   normal, so it takes a non-trapping linked actor down, as in OTP.
    ///
    /// Unlike OTP, linking to an actor that has already exited is an error
    /// ([`Error::ActorDied`]) rather than an exit signal with reason `noproc`.
    ///
    /// # Errors
    /// [`Error::ActorDied`] if `target` has already exited; [`Error::Runtime`] if
    /// either side has the maximum number of monitors and links; [`Error::Remote`]
    /// ([`RemoteError::NoGateway`](crate::RemoteError::NoGateway)) for an actor on another
    /// host when this host runs no gateway.
    ///
    /// An actor on another host is linked through the two hosts' gateways, with the same
    /// rules; when either host is lost (no heartbeat within the lease), the actor on the
    /// other side gets the exit [`Exit::HostLost`], which is not normal.
    pub fn link<B: Dispatch>(&self, target: &ActorRef<B>) -> Result<()> {
        if let Some(addr) = target.remote_addr() {
            return crate::remote::link(self.me.id(), A::NAME, addr);
        }
        let (me, them) = (self.me.mailbox(), target.local("link")?);
        if them.is_gone() {
            return Err(Error::ActorDied {
                actor: them.actor_name().to_string(),
                pid: them.pid(),
                exit: Some(Exit::from_raw(them.raw_exit())),
            });
        }
        if !them.add_watcher(me.id(), true) || !me.add_watcher(them.id(), true) {
            them.remove_watcher(me.id(), true);
            return Err(Error::Runtime("too many monitors and links".into()));
        }
        Ok(())
    }

    /// Removes a link made with [`Context::link`].
    pub fn unlink<B: Dispatch>(&self, target: &ActorRef<B>) {
        if let Some(addr) = target.remote_addr() {
            return crate::remote::unlink(self.me.id(), addr);
        }
        if let Ok(them) = target.local("unlink") {
            them.remove_watcher(self.me.id(), true);
            self.me.mailbox().remove_watcher(target.id(), true);
        }
    }

    /// Whether this actor traps exits: with `true`, every exit of a linked actor arrives
    /// as an [`Exited`](crate::Exited) message (list it in `handles(...)`) instead of
    /// killing this actor.
    pub fn trap_exit(&self, on: bool) {
        self.me.mailbox().set_trap_exit(on);
    }
}
