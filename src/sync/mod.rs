//! Synchronization primitives shared by processes, as in Python's `multiprocessing`:
//! [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Event`], [`Condition`],
//! [`Barrier`], and [`SingleInstance`].
//!
//! Each lives in a small shared-memory file of the runtime directory; a handle is
//! `Clone + Serialize + Deserialize`, so it can be given to an actor in its spawn
//! arguments or in a message, and works there. They are **robust where Python's hang for
//! ever**: a process that dies holding a `Lock`, an `RLock` or a `Semaphore` permit does
//! not block the others — the next acquirer gets it together with an [`OwnerDied`]
//! indication (`Err(OwnerDied(guard))`, which still holds the lock: call
//! [`OwnerDied::into_inner`] to go on, after repairing what the lock protects). A
//! `Barrier` whose waiting party dies breaks, and every other party gets
//! [`SyncError::BrokenBarrier`].
//!
//! A handle serialized into a message keeps its object alive until the message is
//! deserialized, even if the sender drops its last handle meanwhile; a handle serialized
//! and never delivered keeps its object until the program ends.
//!
//! Uncontended, a `Lock` acquire and release are one atomic instruction each; waiting
//! uses futexes on the shared memory. Waiters that depend on another process's liveness
//! re-check it every 20 ms.
//!
//! # Where procession differs from Python's, and why
//!
//! | Python | procession | why |
//! |---|---|---|
//! | a lock held by a process that died (or exited holding it) blocks for ever | the next acquirer gets it with [`OwnerDied`], whatever way the holder's process ended | robustness |
//! | `Lock` may be released by another thread or process | a [`LockGuard`] releases it, in the thread that acquired it | ownership is what makes dead-owner recovery possible |
//! | `acquire(timeout=…)` returns `False` | `acquire_timeout` returns `None` | typed |
//! | `Barrier(parties, action)`: the action is one callable | [`Barrier::with_action`] sets it **per handle**: the last party runs its own handle's action | a closure cannot travel to another process |
//! | a `Barrier` whose party dies hangs the others | it breaks: [`SyncError::BrokenBarrier`] | robustness |
//! | `Barrier.reset()` | the same, and atomic: a party that retries right after it finds the barrier whole | as Python's threading semantics |
//! | `Semaphore`'s permits are anonymous | a dead holder's permit comes back | robustness |

mod barrier;
mod event;
mod lock;
pub(crate) mod object;
mod semaphore;
mod single;

use std::time::Duration;

pub use barrier::Barrier;
pub use event::{Condition, Event};
pub use lock::{Lock, LockGuard, RLock};
pub use semaphore::{BoundedSemaphore, Permit, Semaphore};
pub use single::SingleInstance;

/// How often waiters re-check the liveness of other processes.
pub(crate) const LIVENESS: Duration = Duration::from_millis(20);

/// The previous holder died holding what was just acquired. The acquisition succeeded:
/// `into_inner` gives the guard (or `()`), but what the lock protects may be half-updated.
///
/// ```
/// # use procession::sync::OwnerDied;
/// let e = OwnerDied::new(7);
/// assert_eq!(e.into_inner(), 7);
/// ```
pub struct OwnerDied<G> {
    guard: G,
}

impl<G> OwnerDied<G> {
    /// Wraps what was acquired.
    pub fn new(guard: G) -> Self {
        OwnerDied { guard }
    }

    /// What was acquired.
    pub fn into_inner(self) -> G {
        self.guard
    }

    /// A reference to what was acquired.
    pub fn get_ref(&self) -> &G {
        &self.guard
    }
}

impl<G> std::fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnerDied")
    }
}

impl<G> std::fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("acquired, but the previous holder died holding it: what it protects may be inconsistent")
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

/// The result of acquiring a robust primitive.
pub type AcquireResult<G> = std::result::Result<G, OwnerDied<G>>;

/// Errors of the synchronization primitives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A `BoundedSemaphore` was released above its initial value.
    #[error("released above its bound of {bound} permits")]
    OverReleased {
        /// The bound.
        bound: u32,
    },
    /// The barrier is broken (aborted, timed out, or a waiting party died).
    #[error("the barrier is broken")]
    BrokenBarrier,
    /// The wait timed out (a barrier wait that times out also breaks the barrier).
    #[error("timed out")]
    Timeout,
}
