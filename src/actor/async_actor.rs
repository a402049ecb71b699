//! Async actors (cargo feature `tokio`): an actor declared `#[actor(async, handles(...))]`
//! implements [`AsyncHandler`](crate::AsyncHandler) instead of [`Handler`](crate::Handler), and its process
//! runs a current-thread tokio runtime that drives its handlers.
//!
//! - **One message at a time**, as for every actor: the next message is taken only when
//!   the handler's future has completed, so per-sender FIFO, the in-flight record and the
//!   mailbox-survives-restart rules mean what they mean for a sync actor. A message whose
//!   handler is awaiting when the process dies was in flight: it is redelivered to the
//!   next incarnation up to its [`REDELIVER`](crate::Message::REDELIVER) limit (0 by
//!   default, so it is dropped and its asker gets [`Error::ActorDied`](crate::Error::ActorDied)).
//! - **Tasks the actor spawns** (`tokio::spawn` from a handler) run on the same thread,
//!   while a handler awaits and while the actor waits for mail: the idle wait parks a
//!   blocking-pool thread on the mailbox and keeps the runtime turning. They end with the
//!   process, and a restart starts without them.
//! - `create`, `started` and `stopping` stay sync; `started` can send the actor a message
//!   ([`Context::send_self_after`](crate::Context::send_self_after) with a zero delay) to
//!   do async work first thing.

use std::cell::OnceCell;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mailbox::{Mailbox, Wait, LIVENESS_SLICE};

thread_local! {
    static RUNTIME: OnceCell<tokio::runtime::Runtime> = const { OnceCell::new() };
}

fn with_runtime<R>(f: impl FnOnce(&tokio::runtime::Runtime) -> R) -> R {
    RUNTIME.with(|cell| {
        let rt = cell.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("procession-async")
                .build()
                .expect("cannot build the async actor's tokio runtime")
        });
        f(rt)
    })
}

/// Runs `fut` to completion on this thread's current-thread runtime (the actor's).
#[doc(hidden)]
pub fn block_on<F: Future>(fut: F) -> F::Output {
    with_runtime(|rt| rt.block_on(fut))
}

/// Waits for mail as `wait` says, at most one liveness slice, while the runtime runs the
/// actor's tasks; returns early when a frame is queued.
pub(crate) fn idle_wait(mb: &Arc<Mailbox>, wait: Wait) {
    let slice = match wait {
        Wait::Never => return,
        Wait::Until(t) => t.saturating_duration_since(Instant::now()),
        Wait::Forever => LIVENESS_SLICE,
    }
    .min(LIVENESS_SLICE);
    if slice == Duration::ZERO || mb.queued() > 0 {
        return;
    }
    let mb = mb.clone();
    block_on(async move {
        let _ = tokio::task::spawn_blocking(move || mb.wait_readable(slice)).await;
    });
}
