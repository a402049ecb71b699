//! Passing values between processes, as Python's `multiprocessing` does: [`Queue`]
//! (multi-producer, multi-consumer, bounded or not), [`SimpleQueue`], [`JoinableQueue`],
//! and [`pipe`]s (duplex) and [`simplex`] pipes.
//!
//! All are typed (`T: Serialize + DeserializeOwned`, sent as CBOR) and built on the same
//! shared-memory ring as actor mailboxes: no syscall per item while both sides are busy.
//! Handles are `Clone + Serialize + Deserialize`: pass them to an actor at spawn or in a
//! message. The last handle, in whatever process, removes the queue's file.
//!
//! A pipe end's `recv` reports [`RecvError::Eof`] once the other end is gone: dropped
//! in every process that had it, or its processes dead (checked every 20 ms while
//! waiting), and everything sent has been received.

mod channel;
mod pipe;
#[allow(clippy::module_inception)]
mod queue;

pub use pipe::{pipe, simplex, PipeEnd, PipeReceiver, PipeSender};
pub use queue::{JoinableQueue, Queue, SimpleQueue};

/// Why no value was received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing was there, and the call was not allowed to wait.
    #[error("empty")]
    Empty,
    /// Nothing arrived in time.
    #[error("timed out")]
    Timeout,
    /// The sending end is gone and everything it sent has been received.
    #[error("end of file: the other end is closed")]
    Eof,
    /// The queue was shut down and holds nothing more (Python 3.13's `ShutDown`).
    #[error("the queue is shut down")]
    ShutDown,
    /// An item arrived but did not decode.
    #[error(transparent)]
    Wire(#[from] crate::wire::WireError),
}
