//! Error types. [`Error`] for operations that return no message; [`TellError`] for sends,
//! which hand the message back.

use std::time::Duration;

use crate::process::Exit;
use crate::wire::WireError;

/// What went wrong in a procession operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No reply (or no start) within the time allowed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The actor's process is gone. `exit` says how, when it is known yet.
    #[error("actor {actor} (pid {pid}) died{}", .exit.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    ActorDied {
        /// The actor type's stable name.
        actor: String,
        /// Its pid.
        pid: u32,
        /// How it ended, if recorded.
        exit: Option<Exit>,
    },
    /// The actor received the message but could not decode or dispatch it.
    #[error("actor {actor} rejected the message: {source}")]
    Rejected {
        /// The actor type's stable name.
        actor: String,
        /// Why.
        source: WireError,
    },
    /// A message, reply or frame was malformed or too large.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The mailbox is full (only from non-blocking operations).
    #[error("the mailbox is full")]
    Full,
    /// The child process knows no actor type by this name.
    #[error("no actor type named {name:?} is registered in this binary (derive Actor for it, and make sure the binary that spawns is the one that runs)")]
    UnknownActor {
        /// The name asked for.
        name: String,
    },
    /// The actor's process started but its `create` failed.
    #[error("actor {actor} failed to start: {exit}")]
    StartFailed {
        /// The actor type's stable name.
        actor: String,
        /// How it ended.
        exit: Exit,
    },
    /// The `fork` start method was asked for in a multi-threaded process.
    #[error("the fork start method needs a single-threaded process, this one has {threads} threads; use StartMethod::Forkserver (the default) or StartMethod::Spawn")]
    ForkUnsafe {
        /// Threads counted in this process.
        threads: usize,
    },
    /// The name is bound to another live actor.
    #[error("the name {0:?} is already registered to a live actor")]
    NameTaken(String),
    /// The name is not a valid registered name.
    #[error("{0:?} is not a valid name: use 1 to 100 characters from [A-Za-z0-9_.:-], not starting with a dot")]
    BadName(String),
    /// Another copy of the program holds the [`SingleInstance`](crate::sync::SingleInstance) guard.
    #[error("another copy of {name:?} is already running{}", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    AlreadyRunning {
        /// The guard's name.
        name: String,
        /// The holder's pid, if it could be read.
        pid: Option<u32>,
    },
    /// A reference names an actor of another type, or an unknown mailbox.
    #[error("invalid actor reference: {0}")]
    BadRef(String),
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A system call failed on a limit of the system or of this process (open files,
    /// processes, the tmpfs of the mailboxes): the [`SystemLimit`](crate::SystemLimit)
    /// names it, with its value, and says how to raise it.
    #[error("{what}: {limit}")]
    Limit {
        /// What was being done.
        what: String,
        /// The limit reached.
        limit: crate::SystemLimit,
    },
    /// The runtime (zygote) reported a failure.
    #[error("runtime error: {0}")]
    Runtime(String),
    /// The runtime this reference belongs to is gone: its zygote died, every actor in it
    /// died with it, and its directory was removed. Spawn again to get a fresh runtime.
    #[error("the procession runtime was lost (its zygote died); every actor in it is gone — spawn again to start a fresh runtime")]
    RuntimeLost,
    /// The mailbox's shared header held impossible values: another process wrote over
    /// it. The mailbox repairs itself (its queued messages are lost); retry the call.
    #[error("the mailbox of actor {actor} is corrupt (another process wrote over its shared header); it repairs itself and its queued messages are lost, so retry")]
    Corrupt {
        /// The actor type's stable name.
        actor: String,
    },
    /// The actor's reply did not fit the asker's maximum frame size. The actor handled
    /// the request; only its reply was dropped.
    #[error("actor {actor} replied with {len} bytes, more than the {max}-byte maximum frame; send large results another way (a SharedBytes handle, or in parts)")]
    ReplyTooLarge {
        /// The actor type's stable name.
        actor: String,
        /// The encoded reply's size.
        len: u64,
        /// The maximum frame size of the reply inbox.
        max: u64,
    },
    /// An actor asked itself: it cannot answer while it waits, so this would only time
    /// out. Use `tell` to itself (or `Context::send_self`) instead.
    #[error("actor {actor} asked itself; it cannot reply while it waits — tell itself instead")]
    AskedItself {
        /// The actor type's stable name.
        actor: String,
    },
    /// An argument is out of range (for instance a pool of 0 processes); the text says
    /// which and why.
    /// The actor took the ask's reply token ([`Context::reply_later`](crate::Context::reply_later))
    /// and the token was dropped without a reply.
    #[error("actor {actor} dropped the reply token of this ask without replying")]
    NoReply {
        /// The actor asked.
        actor: String,
    },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Two actor types in this binary have the same stable name (`#[actor(name = ...)]`),
    /// so a ref to one would run the other's code. Reported by the first spawn.
    #[error("two actor types are named {name:?}: {first} and {second}; give one of them another #[actor(name = \"...\")]")]
    DuplicateActorName {
        /// The shared name.
        name: String,
        /// One type's Rust path.
        first: String,
        /// The other's.
        second: String,
    },
    /// A supervisor refused or failed an operation, or a supervisor spec is invalid
    /// (match the [`SupervisorError`](crate::supervisor::SupervisorError) inside).
    #[error("supervisor: {0}")]
    Supervisor(#[from] crate::supervisor::SupervisorError),
    /// A call on an actor on another host failed in the cluster: its host, its gateway,
    /// or this host's (match the [`RemoteError`](crate::RemoteError) inside).
    #[error("remote: {0}")]
    Remote(#[from] crate::remote::RemoteError),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        match crate::limit::classify(&source, false, None) {
            Some(limit) => Error::Limit {
                what: what.into(),
                limit,
            },
            None => Error::Io {
                what: what.into(),
                source,
            },
        }
    }

    /// As [`io`](Self::io), for an error in making a process: `EAGAIN` there is a process
    /// limit.
    pub(crate) fn fork_failed(what: impl Into<String>, source: std::io::Error) -> Error {
        match crate::limit::classify(&source, true, None) {
            Some(limit) => Error::Limit {
                what: what.into(),
                limit,
            },
            None => Error::io(what, source),
        }
    }

    /// The limit behind this error, if it is [`Error::Limit`].
    pub fn limit(&self) -> Option<&crate::SystemLimit> {
        match self {
            Error::Limit { limit, .. } => Some(limit),
            _ => None,
        }
    }

    /// `true` for [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    /// `true` for [`Error::ActorDied`].
    pub fn is_actor_died(&self) -> bool {
        matches!(self, Error::ActorDied { .. })
    }

    /// `true` for [`Error::RuntimeLost`].
    pub fn is_runtime_lost(&self) -> bool {
        matches!(self, Error::RuntimeLost)
    }
}

/// An error as `main` should print it: what went wrong, then each cause, in words.
///
/// `fn main() -> procession::Result<()>` prints a failure with `Debug`, which for
/// [`Error`] is its structure (`Error: ForkUnsafe { threads: 3 }`), as for any enum.
/// Return `Result<(), Report>` instead: `?` turns an [`Error`] or a [`TellError`] into a
/// `Report`, whose `Debug` is the message and its causes.
///
/// ```
/// fn main() -> Result<(), procession::Report> {
///     let err = procession::Error::ForkUnsafe { threads: 3 };
///     let report = procession::Report::from(err);
///     assert!(format!("{report:?}").starts_with("the fork start method needs a single-threaded process"));
///     Ok(())
/// }
/// ```
pub struct Report {
    text: String,
}

impl Report {
    fn of(err: &dyn std::error::Error) -> Report {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            // Some messages already end with their cause's: say it once.
            let said = cause.to_string();
            if !text.contains(&said) {
                text.push_str("\n  caused by: ");
                text.push_str(&said);
            }
            source = cause.source();
        }
        Report { text }
    }
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<Error> for Report {
    fn from(err: Error) -> Report {
        Report::of(&err)
    }
}

impl<M> From<TellError<M>> for Report {
    fn from(err: TellError<M>) -> Report {
        // The message is left out: a TellError is an error only for a Debug message.
        Report {
            text: err.to_string(),
        }
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A send that did not happen; the message comes back.
///
/// ```
/// use procession::TellError;
/// let e = TellError::Full(5u32);
/// assert!(e.is_full());
/// assert_eq!(e.into_inner(), 5);
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum TellError<M> {
    /// The mailbox is full and the call was not allowed to wait (`try_tell`).
    #[error("the mailbox is full")]
    Full(M),
    /// The mailbox stayed full until the deadline (`tell_timeout`).
    #[error("the mailbox stayed full until the deadline")]
    Timeout(M),
    /// The actor's process is gone.
    #[error("the actor has exited")]
    Dead(M),
    /// The encoded message exceeds the actor's maximum frame size.
    #[error("message of {len} bytes exceeds the actor's maximum frame size of {max} bytes")]
    TooLarge {
        /// The message.
        msg: M,
        /// Its encoded size.
        len: u64,
        /// The actor's maximum.
        max: u64,
    },
    /// The mailbox's shared header held impossible values (another process wrote over
    /// it). It repairs itself within a bounded time; the message was not sent.
    #[error(
        "the mailbox is corrupt (another process wrote over its header); it repairs itself, retry"
    )]
    Corrupt(M),
    /// The actor's runtime is gone (its zygote died). Spawn again for a fresh one.
    #[error("the procession runtime was lost (its zygote died)")]
    RuntimeLost(M),
    /// The queue was shut down ([`Queue::shutdown`](crate::queue::Queue::shutdown)) or
    /// this handle closed ([`Queue::close`](crate::queue::Queue::close)): Python's
    /// `ShutDown` on `put`.
    #[error("the queue is shut down or closed")]
    ShutDown(M),
    /// The message could not be encoded.
    #[error("cannot encode the message: {error}")]
    Encode {
        /// The message.
        msg: M,
        /// Why.
        error: WireError,
    },
    /// A send to an actor on another host did not reach this host's gateway (see
    /// [`RemoteError`](crate::RemoteError)).
    #[error("remote: {error}")]
    Remote {
        /// The message.
        msg: M,
        /// Why.
        error: crate::remote::RemoteError,
    },
}

impl<M> TellError<M> {
    /// The error for a send of `msg` (encoded as `len` bytes, to a mailbox taking at most
    /// `max`) that the mailbox refused with `fail`.
    pub(crate) fn from_fail(fail: crate::mailbox::SendFail, msg: M, len: u64, max: u64) -> Self {
        use crate::mailbox::SendFail;
        match fail {
            SendFail::Full => TellError::Full(msg),
            SendFail::Timeout => TellError::Timeout(msg),
            SendFail::Dead => TellError::Dead(msg),
            SendFail::Corrupt => TellError::Corrupt(msg),
            SendFail::Lost => TellError::RuntimeLost(msg),
            SendFail::TooLarge => TellError::TooLarge { msg, len, max },
        }
    }

    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            TellError::Full(m)
            | TellError::Timeout(m)
            | TellError::Dead(m)
            | TellError::Corrupt(m)
            | TellError::RuntimeLost(m)
            | TellError::ShutDown(m) => m,
            TellError::TooLarge { msg, .. }
            | TellError::Encode { msg, .. }
            | TellError::Remote { msg, .. } => msg,
        }
    }

    /// `true` for [`TellError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, TellError::Full(_))
    }

    /// `true` for [`TellError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, TellError::Timeout(_))
    }

    /// `true` for [`TellError::Dead`].
    pub fn is_dead(&self) -> bool {
        matches!(self, TellError::Dead(_))
    }
}

/// Why [`ActorRef::tell_many`](crate::ActorRef::tell_many) stopped: the first `sent`
/// messages were sent (in order), the next one was not (it is in `error`), and the ones
/// after it were not taken from the iterator's remainder or were dropped unsent.
///
/// ```no_run
/// # use procession::prelude::*;
/// # #[derive(Serialize, Deserialize, Message)] struct Tick(u64);
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Tick))] struct Sink;
/// # impl Handler<Tick> for Sink { fn handle(&mut self, _: Tick, _: &mut Context<Self>) {} }
/// # fn main() -> procession::Result<()> {
/// let sink: ActorRef<Sink> = procession::spawn(Sink)?;
/// if let Err(e) = sink.tell_many((0..1000).map(Tick)) {
///     eprintln!("{} sent, then: {}", e.sent, e.error);
/// }
/// # Ok(()) }
/// ```
#[derive(thiserror::Error)]
#[error("{sent} messages sent, then: {error}")]
pub struct TellManyError<M> {
    /// How many messages were sent before the failure.
    pub sent: usize,
    /// Why the next one was not; it holds that message.
    pub error: TellError<M>,
}

impl<M> std::fmt::Debug for TellManyError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TellManyError({self})")
    }
}

impl<M> From<TellManyError<M>> for Error {
    fn from(e: TellManyError<M>) -> Error {
        e.error.into()
    }
}

impl<M> std::fmt::Debug for TellError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The message need not be Debug; show what happened.
        write!(f, "TellError({self})")
    }
}

impl<M> From<TellError<M>> for Error {
    fn from(e: TellError<M>) -> Error {
        match e {
            TellError::Full(_) => Error::Full,
            TellError::Timeout(_) => Error::Full,
            TellError::Dead(_) => Error::ActorDied {
                actor: String::new(),
                pid: 0,
                exit: None,
            },
            TellError::Corrupt(_) => Error::Corrupt {
                actor: String::new(),
            },
            TellError::RuntimeLost(_) => Error::RuntimeLost,
            TellError::ShutDown(_) => Error::Runtime("the queue is shut down or closed".into()),
            TellError::TooLarge { len, max, .. } => Error::Wire(WireError::TooLarge { len, max }),
            TellError::Encode { error, .. } => Error::Wire(error),
            TellError::Remote { error, .. } => Error::Remote(error),
        }
    }
}
