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
//!
//! [`wait`](crate::wait) waits on several pipe ends, queues and actors at once, as
//! Python's `multiprocessing.connection.wait` does.
//!
//! # Where procession differs from Python's, and why
//!
//! | Python | procession | why |
//! |---|---|---|
//! | `Queue.put` hands the item to a feeder thread and returns; `join_thread`/`cancel_join_thread` manage that thread | `put` writes the item into shared memory before it returns; there is no feeder thread, so nothing to join or cancel | an item that was accepted is in the queue, even if the putting process dies the next instant |
//! | a queue is untyped: anything picklable | `Queue<T>`: one `Serialize + DeserializeOwned` type, checked when a handle is opened in another process | typed from end to end |
//! | `get(block=False)` raises `Empty`, `put` on a full queue raises `Full` | [`RecvError::Empty`], and [`TellError::Full`](crate::TellError::Full) which hands the item back | typed; nothing is lost on a failed put |
//! | `qsize()` raises `NotImplementedError` on macOS | [`Queue::len`] works everywhere (Linux is the platform) | shared counters |
//! | an unbounded `Queue()` grows with memory | an "unbounded" queue holds up to 2³²−1 items in a 64 MiB ring; [`Queue::with_config`] chooses | a shared ring has a size |
//! | `Queue.close()` also stops the feeder thread | [`Queue::close`] stops puts through this process's handles only; other processes go on | no feeder; as Python's, close is per process |
//! | `shutdown(immediate=True)` (3.13) | [`Queue::shutdown`]`(true)` discards the items, and a [`JoinableQueue`] counts them done so `join` returns | as Python 3.13 |
//! | a `Connection` (a pipe end) may be shared by processes, but reads and writes from several of them can interleave bytes | clones of [`PipeSender`]/[`PipeReceiver`]/[`PipeEnd`] share one end; each value is received whole by exactly one reader | values are frames, and readers take turns |
//! | `recv` on a pipe whose other end is gone raises `EOFError` | [`RecvError::Eof`], once everything sent has been received; the other end's processes dying counts as gone | typed, and a crash is not a silent hang |
//! | `Connection.send_bytes`/`recv_bytes`, `fileno()` | a `PipeEnd<ByteBuf>` carries bytes; there is no file descriptor to select on: use [`wait`](crate::wait) | the pipe is shared memory, not a socket |

mod channel;
mod pipe;
#[allow(clippy::module_inception)]
mod queue;

/// The sizes of a queue's ring ([`Queue::with_config`]); the same as a mailbox's.
pub use crate::mailbox::MailboxConfig;
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
