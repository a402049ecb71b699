//! The actor loop: what runs inside an actor's process from its `create` to its exit.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

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
    /// The registry entry of actor type `A` (used by `#[derive(Actor)]`).
    pub const fn of<A: Dispatch>() -> ActorEntry {
        ActorEntry {
            name: A::NAME,
            run: run_actor::<A>,
        }
    }
}

/// Exit status of an actor process whose handler panicked.
const EXIT_PANICKED: i32 = 101;

/// This process's own mailbox, for the panic hook. A `fork`-method child inherits its
/// parent's value and replaces it first thing.
static OWN_MAILBOX: Mutex<Option<Arc<Mailbox>>> = Mutex::new(None);

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Records panics in the mailbox's exit record as they happen, so that even a panic
/// that aborts (panic = "abort", or a panic while panicking) is reported as `Panicked`.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let own = OWN_MAILBOX.try_lock().ok().and_then(|g| g.clone());
        if let Some(mb) = own {
            mb.record_exit(ExitKind::Panicked, 0, &panic_text(info.payload()));
        }
        previous(info);
    }));
}

fn finish(mb: &Mailbox, kind: ExitKind, message: &str, code: i32) -> ! {
    mb.record_exit(kind, 0, message);
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
    if first_actor_in_process {
        install_panic_hook();
    }
    mb.set_pid(pid);
    let span = tracing::info_span!("actor", actor = A::NAME, pid);
    let _enter = span.enter();

    let mut cx = Context::new(ActorRef::<A>::from_mailbox(mb.clone()));
    let args: A::Args = match decode_body(&boot.args, "spawn arguments") {
        Ok(a) => a,
        Err(e) => finish(&mb, ExitKind::Failed, &e.to_string(), 1),
    };
    let created = catch_unwind(AssertUnwindSafe(|| A::create(args, &mut cx)));
    let mut actor = match created {
        Ok(Ok(actor)) => actor,
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
    let outcome = loop {
        if cx.is_stopping() {
            break ExitKind::Normal;
        }
        let frame = match mb.recv(&mut consumer, Wait::Forever) {
            Received::Frame(f) => f,
            Received::Bad(e) => {
                rejected(&mb, &e);
                continue;
            }
            Received::TimedOut => continue,
        };
        let (h, body) = match FrameHeader::parse(frame) {
            Ok(x) => x,
            Err(e) => {
                rejected(&mb, &e);
                continue;
            }
        };
        match h.kind {
            FrameKind::Stop => break ExitKind::Stopped,
            FrameKind::Tell => {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    actor.dispatch(h.tag, body, &mut cx, None)
                }));
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => rejected(&mb, &e),
                    Err(p) => finish(&mb, ExitKind::Panicked, &panic_text(&*p), EXIT_PANICKED),
                }
            }
            FrameKind::Ask => {
                out.clear();
                FrameHeader {
                    kind: FrameKind::Reply,
                    tag: h.tag,
                    corr: h.corr,
                    reply_to: 0,
                }
                .write_into(&mut out);
                let r = catch_unwind(AssertUnwindSafe(|| {
                    actor.dispatch(h.tag, body, &mut cx, Some(&mut out))
                }));
                match r {
                    Ok(Ok(())) => {
                        if FrameHeader::seal(&mut out).is_ok() {
                            routes.send(h.reply_to, h.corr, FrameKind::Reply, &out);
                        }
                    }
                    Ok(Err(e)) => {
                        rejected(&mb, &e);
                        send_failure(&mut routes, &h, ReplyFailure::Rejected(e));
                    }
                    Err(p) => {
                        let message = panic_text(&*p);
                        mb.record_exit(ExitKind::Panicked, 0, &message);
                        let message = mb.raw_exit().message;
                        send_failure(
                            &mut routes,
                            &h,
                            ReplyFailure::Died(Exit::Panicked {
                                message: message.clone(),
                            }),
                        );
                        finish(&mb, ExitKind::Panicked, &message, EXIT_PANICKED)
                    }
                }
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
            finish(&mb, outcome, "", 0)
        }
        Err(p) => finish(&mb, ExitKind::Panicked, &panic_text(&*p), EXIT_PANICKED),
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
