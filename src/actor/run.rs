//! The actor loop: what runs inside an actor's process from its `create` to its exit.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::actor_ref::ActorRef;
use super::ask::{drop_thread_inbox, forget_inherited_inbox, ReplyFailure, ReplyRoutes};
use super::context::Context;
use super::traits::Dispatch;
use crate::mailbox::{Consumer, ExitKind, Mailbox, Received, Wait};
use crate::os::proc::exit_now;
use crate::process::bootstrap::ChildBoot;
use crate::process::registry::ActorEntry;
use crate::process::Exit;
use crate::wire::{decode_body, encode_body, FrameHeader, FrameKind, WireError, HEADER_LEN};

impl ActorEntry {
    /// The registry entry of actor type `A`, whose Rust path is `type_name` (used by
    /// `#[derive(Actor)]`).
    pub const fn of<A: Dispatch>(type_name: &'static str) -> ActorEntry {
        ActorEntry {
            name: A::NAME,
            type_name,
            run: run_actor::<A>,
        }
    }
}

/// Exit status of an actor process whose handler panicked.
const EXIT_PANICKED: i32 = 101;

/// This process's own mailbox, for the panic hook. A `fork`-method child inherits its
/// parent's value and replaces it first thing.
static OWN_MAILBOX: Mutex<Option<Arc<Mailbox>>> = Mutex::new(None);

/// The id of the mailbox this process consumes as an actor (0: none), for the cheap
/// "an actor asks itself" check.
static OWN_MAILBOX_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The mailbox this process consumes as an actor (0: it is not an actor).
pub(crate) fn own_mailbox_id() -> u64 {
    OWN_MAILBOX_ID.load(std::sync::atomic::Ordering::Relaxed)
}

/// `true` if `id` is the mailbox this process consumes: an ask to it can never be
/// answered, since the only thread that would answer is the one waiting.
pub(crate) fn is_own_mailbox(id: u64) -> bool {
    OWN_MAILBOX_ID.load(std::sync::atomic::Ordering::Relaxed) == id
}

/// This process's mailbox and memory limit, for the abort handler (a `OnceLock` is read
/// with one atomic load, nothing that could deadlock in a signal handler).
static OOM_MAILBOX: std::sync::OnceLock<Arc<Mailbox>> = std::sync::OnceLock::new();
static OOM_LIMIT_MIB: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Called from the abort handler when an abort came with the address space at its limit.
fn record_oom() {
    if let Some(mb) = OOM_MAILBOX.get() {
        mb.record_exit(
            ExitKind::OutOfMemory,
            OOM_LIMIT_MIB.load(Ordering::SeqCst),
            "an allocation failed under the memory limit",
        );
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Records panics in the mailbox's exit record as they happen, so that even a panic that
/// aborts (panic = "abort", or a panic while panicking) is reported as `Panicked`, and
/// names the actor on stderr before the standard panic message.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let own = OWN_MAILBOX.try_lock().ok().and_then(|g| g.clone());
        if let Some(mb) = own {
            mb.record_exit(ExitKind::Panicked, 0, &panic_text(info.payload()));
            // The standard message names the thread, which in an actor process has no
            // name: say which actor it is first.
            eprintln!(
                "procession: actor {} (pid {}) panicked:",
                mb.actor_name(),
                std::process::id()
            );
        }
        previous(info);
    }));
}

fn finish(mb: &Mailbox, kind: ExitKind, message: &str, code: i32) -> ! {
    mb.record_exit(kind, 0, message);
    if kind != ExitKind::Panicked {
        // As Python does at exit: wait for the non-daemon actors this one spawned.
        // (Daemon ones, and all of them after a crash, are killed by the zygote.)
        crate::process::join_non_daemons();
    }
    drop_thread_inbox();
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    exit_now(code)
}

fn run_actor<A: Dispatch>(boot: ChildBoot) -> ! {
    let pid = std::process::id();
    let mb = match Mailbox::open(&boot.runtime_dir, boot.mailbox_id) {
        Ok(mb) => mb,
        Err(e) => {
            eprintln!("procession: actor {} cannot open its mailbox: {e}", A::NAME);
            exit_now(crate::process::bootstrap::EXIT_BOOT_FAILED)
        }
    };
    forget_inherited_inbox();
    let first_actor_in_process = OWN_MAILBOX
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .replace(mb.clone())
        .is_none();
    OWN_MAILBOX_ID.store(mb.id(), std::sync::atomic::Ordering::Relaxed);
    mb.set_pid(pid);
    let incarnation = mb.incarnation();
    // The user's set-up first (a subscriber of their own, say), then the zero-setup
    // PROCESSION_LOG one if they installed none, then the span, which needs a subscriber
    // to be recorded.
    crate::process::bootstrap::leave_zygote_logging();
    let start = crate::ChildStart {
        actor: A::NAME,
        pid,
        incarnation,
        label: mb.label(),
        mailbox_id: mb.id(),
    };
    if let Err(p) = catch_unwind(|| crate::process::run_child_inits(&start)) {
        let text = format!("a child_init function panicked: {}", panic_text(&*p));
        finish(&mb, ExitKind::Panicked, &text, EXIT_PANICKED);
    }
    crate::process::bootstrap::install_child_logging();
    // After the user's set-up, so that a panic hook of theirs is wrapped, not lost.
    if first_actor_in_process {
        install_panic_hook();
    }
    crate::os::proc::set_process_name(A::NAME);
    let span = tracing::info_span!("actor", actor = A::NAME, pid, incarnation);
    let _enter = span.enter();

    if let Err(e) = boot.limits.apply() {
        finish(
            &mb,
            ExitKind::Failed,
            &format!("cannot apply its limits: {e}"),
            1,
        );
    }
    if let Some(limit) = boot.limits.memory {
        let _ = OOM_MAILBOX.set(mb.clone());
        OOM_LIMIT_MIB.store((limit >> 20).min(i32::MAX as u64) as i32, Ordering::SeqCst);
        crate::os::limits::report_oom_on_abort(limit, record_oom);
    }
    let mut cx = Context::new(ActorRef::<A>::from_mailbox(mb.clone()));
    cx.set_parent(boot.parent_pid, boot.parent_mailbox);
    // A supervisor or a pool keeps these bytes and decodes them again at every restart.
    let decoded = if mb.is_supervised() {
        crate::sync::object::decode_reusable(|| decode_body(&boot.args, "spawn arguments"))
    } else {
        decode_body(&boot.args, "spawn arguments")
    };
    let args: A::Args = match decoded {
        Ok(a) => a,
        Err(e) => finish(&mb, ExitKind::Failed, &e.to_string(), 1),
    };
    let created = catch_unwind(AssertUnwindSafe(|| A::create(args, &mut cx)));
    let mut actor = match created {
        Ok(Ok(actor)) => actor,
        Ok(Err(e)) if e.is::<super::traits::Ignore>() => finish(&mb, ExitKind::Ignored, "", 0),
        Ok(Err(e)) => finish(&mb, ExitKind::Failed, &format!("create failed: {e}"), 1),
        Err(p) => finish(&mb, ExitKind::Panicked, &panic_text(&*p), EXIT_PANICKED),
    };
    mb.set_running();
    tracing::info!("actor started");
    if catch_unwind(AssertUnwindSafe(|| actor.started(&mut cx))).is_err() {
        finish(&mb, ExitKind::Panicked, "", EXIT_PANICKED);
    }

    let mut consumer = Consumer::new();
    let mut routes = ReplyRoutes::default();
    let mut out = Vec::new();
    let mut last_end: Option<Instant> = None;
    let outcome = loop {
        if cx.is_stopping() {
            break ExitKind::Normal;
        }
        // Only the timers due now: one a handler sets for "now" runs after the next
        // mailbox message, so a self-rescheduling timer cannot starve the mailbox. "Now"
        // is when the last handler ended, if one just did (its clock reading is reused),
        // and the clock is read only when there are timers.
        let handled_at = last_end.take();
        // When the next frame is already there, the handler that just ended is where the
        // next one's busy time starts: one clock reading per message instead of two.
        let mut begun = handled_at;
        if cx.next_timer().is_some() {
            let now = handled_at.unwrap_or_else(Instant::now);
            while let Some(timer) = cx.pop_due_timer(now) {
                begun = None;
                if let Ok((h, body)) = FrameHeader::parse(&timer) {
                    handle_tell(&mut actor, &mut cx, &mb, &h, body, None);
                }
                if cx.is_stopping() {
                    break;
                }
            }
        }
        if cx.is_stopping() {
            continue;
        }
        let mut wait = cx.next_timer().map_or(Wait::Forever, Wait::Until);
        if crate::process::fork::has_children() {
            // This process must reap the actors it forked itself: wake up now and then.
            crate::process::fork::reap();
            let slice = Instant::now() + crate::mailbox::LIVENESS_SLICE;
            wait = match wait {
                Wait::Until(t) if t < slice => wait,
                _ => Wait::Until(slice),
            };
        }
        // An async actor waits for mail while its runtime runs its tasks, a slice at a
        // time, and takes what came without blocking.
        #[cfg(feature = "tokio")]
        let wait = if A::ASYNC {
            super::async_actor::idle_wait(&mb, wait);
            Wait::Never
        } else {
            wait
        };
        let mut waited = false;
        let (frame, pos) = match mb.recv_noting_wait(&mut consumer, wait, &mut waited) {
            Received::Frame(f, pos) => (f, pos),
            Received::Bad(e) => {
                rejected(&mb, &e);
                continue;
            }
            Received::TimedOut => continue,
        };
        if waited {
            begun = None;
        }
        let (h, body) = match FrameHeader::parse(frame) {
            Ok(x) => x,
            Err(e) => {
                rejected(&mb, &e);
                continue;
            }
        };
        match h.kind {
            // A stop aimed at an earlier incarnation (queued before a restart) is stale.
            FrameKind::Stop if h.corr == 0 || h.corr == incarnation as u64 + 1 => {
                mb.commit(&mut consumer);
                if h.reply_to == super::actor_ref::STOP_SHUTDOWN {
                    // Its supervisor terminates it: OTP's exit reason `shutdown`.
                    cx.shutdown("shutdown");
                }
                break ExitKind::Stopped;
            }
            FrameKind::Stop => {}
            FrameKind::Tell | FrameKind::Ask | FrameKind::Batch => {
                let is_ask = h.kind != FrameKind::Tell;
                let attempts = mb.begin_in_flight(pos, if is_ask { h.reply_to } else { 0 }, h.corr);
                if attempts > 1 && drop_after_crash::<A>(&mb, &mut routes, &h, attempts) {
                    mb.commit(&mut consumer);
                    mb.end_in_flight();
                    continue;
                }
                if h.kind == FrameKind::Batch {
                    handle_batch(
                        &mut actor,
                        &mut cx,
                        &mb,
                        &mut routes,
                        &mut out,
                        &h,
                        body,
                        attempts,
                    );
                } else if is_ask {
                    last_end = Some(handle_ask(
                        &mut actor,
                        &mut cx,
                        &mb,
                        &mut routes,
                        &mut out,
                        &h,
                        body,
                        attempts,
                        begun,
                    ));
                } else {
                    last_end = Some(handle_tell(&mut actor, &mut cx, &mb, &h, body, begun));
                }
                mb.commit(&mut consumer);
                mb.end_in_flight();
            }
            other => rejected(
                &mb,
                &WireError::BadHeader(format!("{other:?} frame sent to an actor's mailbox")),
            ),
        }
    };
    let stopped = catch_unwind(AssertUnwindSafe(|| actor.stopping(&mut cx)));
    drop(actor);
    match stopped {
        Ok(()) => {
            tracing::info!(exit = ?outcome, "actor stopping");
            match cx.shutdown_reason() {
                Some(reason) => finish(&mb, ExitKind::Shutdown, reason, 0),
                None => finish(&mb, outcome, "", 0),
            }
        }
        Err(p) => finish(&mb, ExitKind::Panicked, &panic_text(&*p), EXIT_PANICKED),
    }
}

/// The frame at `head` was being handled when an earlier incarnation died (this is
/// attempt number `attempts`). Returns `true` if it must be dropped: its message type is
/// at-most-once, or it has crashed the actor more often than its redelivery limit.
fn drop_after_crash<A: Dispatch>(
    mb: &Mailbox,
    routes: &mut ReplyRoutes,
    h: &FrameHeader,
    attempts: u32,
) -> bool {
    let limit = A::redelivery_limit(h.tag);
    let message_type = A::message_name(h.tag).unwrap_or("?");
    if attempts <= limit.saturating_add(1) {
        tracing::info!(
            message_type,
            tag = h.tag,
            attempt = attempts,
            limit,
            "redelivering the message a crash interrupted"
        );
        return false;
    }
    let prev = Exit::from_raw(mb.prev_exit());
    if limit > 0 {
        mb.count_poison();
        tracing::error!(
            message_type,
            tag = h.tag,
            attempts = attempts - 1,
            "dropping a poison message: it crashed the actor {} times ({prev})",
            attempts - 1
        );
    } else {
        tracing::warn!(
            message_type,
            tag = h.tag,
            "dropping the at-most-once message a crash interrupted ({prev})"
        );
    }
    if h.kind != FrameKind::Tell {
        let pid = mb.prev_pid();
        send_failure(routes, h, ReplyFailure::Died(prev, pid));
    }
    true
}

fn handle_tell<A: Dispatch>(
    actor: &mut A,
    cx: &mut Context<A>,
    mb: &Mailbox,
    h: &FrameHeader,
    body: &[u8],
    begun: Option<Instant>,
) -> Instant {
    let start = begun.unwrap_or_else(Instant::now);
    cx.begin_message(None);
    let r = catch_unwind(AssertUnwindSafe(|| actor.dispatch(h.tag, body, cx, None)));
    cx.end_message();
    let end = Instant::now();
    mb.count_handled(end - start, 1, 0);
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => rejected(mb, &e),
        Err(p) => finish(mb, ExitKind::Panicked, &panic_text(&*p), EXIT_PANICKED),
    }
    end
}

#[allow(clippy::too_many_arguments)]
fn handle_ask<A: Dispatch>(
    actor: &mut A,
    cx: &mut Context<A>,
    mb: &Mailbox,
    routes: &mut ReplyRoutes,
    out: &mut Vec<u8>,
    h: &FrameHeader,
    body: &[u8],
    attempts: u32,
    begun: Option<Instant>,
) -> Instant {
    out.clear();
    FrameHeader {
        kind: FrameKind::Reply,
        tag: h.tag,
        corr: h.corr,
        reply_to: 0,
    }
    .write_into(out);
    let start = begun.unwrap_or_else(Instant::now);
    cx.begin_message(Some(super::context::AskInFlight {
        reply_to: h.reply_to,
        corr: h.corr,
        tag: h.tag,
    }));
    let r = catch_unwind(AssertUnwindSafe(|| {
        actor.dispatch(h.tag, body, cx, Some(&mut *out))
    }));
    let deferred = cx.end_message();
    let end = Instant::now();
    mb.count_handled(end - start, 1, 1);
    match r {
        // The handler took the reply token: its return value is not the reply.
        Ok(Ok(())) if deferred => {}
        Ok(Ok(())) => {
            if FrameHeader::seal(out).is_ok() {
                routes.send(h.reply_to, h.corr, FrameKind::Reply, out);
            }
        }
        Ok(Err(e)) => {
            rejected(mb, &e);
            send_failure(routes, h, ReplyFailure::Rejected(e));
        }
        Err(p) => {
            let message = panic_text(&*p);
            mb.record_exit(ExitKind::Panicked, 0, &message);
            let message = mb.raw_exit().message;
            // An at-least-once ask will be answered by the next incarnation; any other
            // asker learns now that the actor died handling its request.
            let redelivered = mb.is_supervised() && attempts <= A::redelivery_limit(h.tag);
            if !redelivered {
                send_failure(
                    routes,
                    h,
                    ReplyFailure::Died(
                        Exit::Panicked {
                            message: message.clone(),
                        },
                        std::process::id(),
                    ),
                );
            }
            finish(mb, ExitKind::Panicked, &message, EXIT_PANICKED)
        }
    }
    end
}

/// A batch: every record is one message of the header's tag; the reply holds one record
/// per reply, in order. A rejected record fails the whole batch; a panic ends the actor
/// as for an ask.
#[allow(clippy::too_many_arguments)]
fn handle_batch<A: Dispatch>(
    actor: &mut A,
    cx: &mut Context<A>,
    mb: &Mailbox,
    routes: &mut ReplyRoutes,
    out: &mut Vec<u8>,
    h: &FrameHeader,
    body: &[u8],
    attempts: u32,
) {
    let Some(items) = crate::wire::records(body) else {
        let e = WireError::Truncated {
            expected: body.len() as u64 + 1,
            got: body.len() as u64,
        };
        rejected(mb, &e);
        return send_failure(routes, h, ReplyFailure::Rejected(e));
    };
    out.clear();
    FrameHeader {
        kind: FrameKind::Reply,
        tag: h.tag,
        corr: h.corr,
        reply_to: 0,
    }
    .write_into(out);
    let mut one = Vec::new();
    let start = Instant::now();
    let mut n = 0;
    for item in items {
        n += 1;
        one.clear();
        let r = catch_unwind(AssertUnwindSafe(|| {
            actor.dispatch(h.tag, item, cx, Some(&mut one))
        }));
        match r {
            Ok(Ok(())) => crate::wire::push_record(out, &one),
            Ok(Err(e)) => {
                rejected(mb, &e);
                return send_failure(routes, h, ReplyFailure::Rejected(e));
            }
            Err(p) => {
                let message = panic_text(&*p);
                mb.record_exit(ExitKind::Panicked, 0, &message);
                let message = mb.raw_exit().message;
                let redelivered = mb.is_supervised() && attempts <= A::redelivery_limit(h.tag);
                if !redelivered {
                    send_failure(
                        routes,
                        h,
                        ReplyFailure::Died(
                            Exit::Panicked {
                                message: message.clone(),
                            },
                            std::process::id(),
                        ),
                    );
                }
                finish(mb, ExitKind::Panicked, &message, EXIT_PANICKED)
            }
        }
    }
    mb.count_handled(start.elapsed(), n, n);
    if FrameHeader::seal(out).is_ok() {
        routes.send(h.reply_to, h.corr, FrameKind::Reply, out);
    }
}

fn rejected(mb: &Mailbox, e: &WireError) {
    mb.count_bad_frame();
    tracing::warn!(actor = mb.actor_name(), pid = std::process::id(), error = %e, "rejected a frame");
}

fn send_failure(routes: &mut ReplyRoutes, h: &FrameHeader, failure: ReplyFailure) {
    let mut buf = Vec::with_capacity(HEADER_LEN + 64);
    FrameHeader {
        kind: FrameKind::ReplyError,
        tag: h.tag,
        corr: h.corr,
        reply_to: 0,
    }
    .write_into(&mut buf);
    if encode_body(&failure, &mut buf).is_ok() && FrameHeader::seal(&mut buf).is_ok() {
        routes.send(h.reply_to, h.corr, FrameKind::ReplyError, &buf);
    }
}
