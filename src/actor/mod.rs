//! Actors: the traits a user implements, the typed reference, the context, the actor loop,
//! and request/reply.

mod actor_ref;
mod ask;
#[cfg(feature = "tokio")]
pub mod async_actor;
mod context;
mod reply;
mod router;
mod run;
mod traits;

pub(crate) use actor_ref::{send_stop, send_stop_as, with_frame};
pub use actor_ref::{
    spawn, spawn_named, spawn_with, ActorRef, Spawn, DEFAULT_ASK_TIMEOUT, DEFAULT_STOP_TIMEOUT,
    TELL_MANY_BATCH,
};
pub use ask::late_replies;
pub(crate) use ask::{
    ask as ask_mailbox, failure_frame, interpret_reply_from, Pipeline, PipelinedReply, ReplyFailure,
};
pub use context::{Context, TimerHandle};
pub use reply::ReplyToken;
pub(crate) use router::{router, Routed, StreamItem, WakerSlot};
pub use router::{AskFuture, TellFuture};

/// The file of this process's reply router inbox, if it has one.
pub(crate) fn router_inbox_path() -> Option<std::path::PathBuf> {
    router::Router::inbox_path()
}
pub(crate) use run::own_mailbox_id;
pub use traits::{
    handle, Actor, ActorType, AsyncHandler, BoxError, Dispatch, Handler, Handles, Ignore, Message,
    NotAMessage,
};
