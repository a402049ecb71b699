//! # procession
//!
//! Typed actors, each in its own OS process. A crash in one actor (a panic, an abort, a
//! segfault, a SIGKILL) ends that process only; the others go on, and whoever joins it
//! learns exactly how it ended.
//!
//! ```
//! use procession::prelude::*;
//!
//! #[derive(Serialize, Deserialize, Message)]
//! #[message(reply = u64)]
//! struct Add(u64);
//!
//! #[derive(Serialize, Deserialize, Actor)]
//! #[actor(handles(Add))]
//! struct Counter { total: u64 }
//!
//! impl Handler<Add> for Counter {
//!     fn handle(&mut self, Add(n): Add, _cx: &mut Context<Self>) -> u64 {
//!         self.total += n;
//!         self.total
//!     }
//! }
//!
//! let counter: ActorRef<Counter> = procession::spawn(Counter { total: 0 })?; // new process
//! counter.tell(Add(1))?;                 // fire and forget
//! assert_eq!(counter.ask(Add(2))?, 3);   // request/reply
//! counter.stop()?;                       // graceful
//! assert_eq!(counter.join()?, procession::Exit::Stopped);
//! # Ok::<(), procession::Error>(())
//! ```
//!
//! No setup code is needed, in a binary or under `cargo test`: a child process is this
//! same binary, re-executed, and it becomes an actor before `main` runs (see
//! [`process`]). Layers, bottom up: [`wire`] (frames, CBOR), `os` (syscalls), `mailbox`
//! (shared-memory queues; internal, see `src/mailbox/mod.rs`), [`process`] (start
//! methods), and the actor API at the crate root.

extern crate self as procession;

pub(crate) mod actor;
mod error;
pub mod inspect;
mod limit;
pub(crate) mod mailbox;
pub mod manager;
#[cfg(feature = "metrics")]
pub mod metrics;
mod os;
pub mod pool;
pub mod process;
pub mod queue;
pub mod remote;
pub mod shared;
pub mod supervisor;
pub mod sync;
mod wait;
pub mod wire;

#[cfg(feature = "tokio")]
pub use actor::async_actor;
pub use actor::{
    late_replies, spawn, spawn_with, Actor, ActorRef, ActorType, AskFuture, AsyncHandler, BoxError,
    Context, Handler, Handles, Ignore, Message, ReplyToken, Spawn, TellFuture, TimerHandle,
    DEFAULT_ASK_TIMEOUT, DEFAULT_STOP_TIMEOUT, TELL_MANY_BATCH,
};
pub use error::{Error, Report, Result, TellError, TellManyError};
pub use limit::SystemLimit;
pub use process::{
    active_children, configured_start_method, exit_join_timeout, init, runtime_snapshot,
    set_exit_join_timeout, set_start_method, shutdown_signal, start_method, stop_all, ActiveChild,
    ActorStats, ChildStart, Down, Exit, Exited, Limits, Resource, ShutdownSignal, SpawnOptions,
    StartMethod, DEFAULT_START_TIMEOUT, EXIT_WAIT_NOTICE, SIGNAL_SHUTDOWN_ALLOWANCE,
};
pub use procession_macros::{child_init, Actor, Message};
pub use remote::{spawn_on, RemoteError};
/// A byte string for messages (from `serde_bytes`): encoded as one CBOR byte string, and
/// copied into the target's mailbox and out again. Right for small payloads; for
/// megabytes, or bytes sent to several actors, use [`SharedBytes`], which travels as a
/// handle.
pub use serde_bytes::ByteBuf;
pub use shared::SharedBytes;
pub use supervisor::{register, unregister, whereis};
pub use wait::{wait, Waitable};

/// Everything an actor program needs: `use procession::prelude::*;`.
pub mod prelude {
    pub use crate::{
        spawn, Actor, ActorRef, AsyncHandler, BoxError, ByteBuf, Context, Exit, Handler, Message,
        Spawn,
    };
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use crate::actor::{handle, spawn_named, Dispatch, Handles, NotAMessage};
    pub use crate::process::registry::{ActorEntry, ACTORS};
    pub use crate::process::CHILD_INITS;
    pub use crate::wire::WireError;
    pub use linkme;

    #[cfg(feature = "tokio")]
    pub use crate::actor::async_actor::block_on;

    /// Without the `tokio` feature, an `#[actor(async)]` actor fails to compile here,
    /// with this trait's message.
    #[cfg(not(feature = "tokio"))]
    #[diagnostic::on_unimplemented(
        message = "`#[actor(async)]` needs procession's `tokio` feature",
        label = "an async handler runs on the tokio runtime this feature brings",
        note = "enable it: `procession = {{ ..., features = [\"tokio\"] }}`"
    )]
    pub trait NeedsTokioFeature {}

    /// See [`NeedsTokioFeature`].
    #[cfg(not(feature = "tokio"))]
    pub fn block_on<F: core::future::Future + NeedsTokioFeature>(_fut: F) -> F::Output {
        unreachable!("no future implements NeedsTokioFeature")
    }

    /// For fault-injection tests: where fields of a mailbox file's header sit.
    pub use crate::mailbox::header_field_offset;

    /// For fault-injection tests: this process's runtime directory, if it has one.
    pub fn runtime_dir() -> Option<std::path::PathBuf> {
        crate::process::runtime::current().map(|rt| rt.dir().to_path_buf())
    }

    /// For fault-injection tests: the path of the mailbox file with this id.
    pub fn mailbox_path(id: u64) -> Option<std::path::PathBuf> {
        runtime_dir().map(|d| d.join(format!("mb-{id:016x}")))
    }

    /// For fault-injection tests: the file of this process's reply router inbox.
    pub fn router_inbox_path() -> Option<std::path::PathBuf> {
        crate::actor::router_inbox_path()
    }

    /// For fault-injection tests: the pid of this root process's zygote.
    pub fn zygote_pid() -> Option<u32> {
        let rt = crate::process::runtime::current()?;
        let guard = rt.zygote().ok()?;
        guard.as_ref().and_then(|z| z.pid())
    }
}
