//! [`Lock`] and [`RLock`]: robust process-shared mutexes.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::object::{shared_handle_serde, SharedObject, ShmSafe};
use super::{AcquireResult, OwnerDied};
use crate::error::Result;
use crate::os::robust::{Locked, RobustMutex};

#[repr(C)]
pub(crate) struct MutexCell {
    pub(crate) mutex: RobustMutex,
}

// SAFETY: repr(C), valid when zeroed (an uninitialized RobustMutex is all zero and is
// initialized before publication), mutated only through the mutex.
unsafe impl ShmSafe for MutexCell {}

/// Held while a [`Lock`] or [`RLock`] is acquired; releases it when dropped. It must be
/// dropped by the thread that acquired it (it is not `Send`).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    mutex: &'a RobustMutex,
    _not_send: PhantomData<*const ()>,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl std::fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard")
    }
}

pub(crate) fn acquire(
    mutex: &RobustMutex,
    timeout: Option<Duration>,
) -> Option<AcquireResult<LockGuard<'_>>> {
    let state = mutex.lock(timeout)?;
    let guard = LockGuard {
        mutex,
        _not_send: PhantomData,
    };
    Some(match state {
        Locked::Clean => Ok(guard),
        Locked::OwnerDied => Err(OwnerDied::new(guard)),
    })
}

macro_rules! mutex_handle {
    ($(#[$doc:meta])* $name:ident, $recursive:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            obj: Arc<SharedObject<MutexCell>>,
        }

        impl $name {
            /// Creates it, unlocked, in shared memory.
            ///
            /// # Errors
            /// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created,
            /// or the error of starting the runtime (as for [`spawn`](crate::spawn)).
            pub fn new() -> Result<Self> {
                let obj = SharedObject::create(0, |c: &MutexCell, _| c.mutex.init($recursive))?;
                Ok(Self::from_obj(obj))
            }

            fn from_obj(obj: Arc<SharedObject<MutexCell>>) -> Self {
                Self { obj }
            }

            /// Waits until it is acquired. `Err(OwnerDied)` still holds it: the previous
            /// holder died holding it, so what it protects may be half-updated.
            ///
            /// # Errors
            /// `Err(OwnerDied(guard))` when the previous holder's process died holding it:
            /// the guard still holds it (call `OwnerDied::into_inner` after repairing what
            /// it protects).
            pub fn acquire(&self) -> AcquireResult<LockGuard<'_>> {
                loop {
                    if let Some(r) = acquire(&self.obj.get().mutex, None) {
                        return r;
                    }
                }
            }

            /// Acquires it only if it is free now.
            ///
            /// # Errors
            /// `Err(OwnerDied(guard))` when the previous holder's process died holding it:
            /// the guard still holds it (call `OwnerDied::into_inner` after repairing what
            /// it protects).
            pub fn try_acquire(&self) -> Option<AcquireResult<LockGuard<'_>>> {
                acquire(&self.obj.get().mutex, Some(Duration::ZERO))
            }

            /// Waits at most `timeout`; `None` if it stayed held.
            ///
            /// # Errors
            /// `Err(OwnerDied(guard))` when the previous holder's process died holding it:
            /// the guard still holds it (call `OwnerDied::into_inner` after repairing what
            /// it protects).
            pub fn acquire_timeout(&self, timeout: Duration) -> Option<AcquireResult<LockGuard<'_>>> {
                acquire(&self.obj.get().mutex, Some(timeout))
            }

            /// Whether it is held now, by anyone (Python's `Lock.locked()`): a snapshot
            /// that may change at once, for diagnostics rather than decisions.
            pub fn locked(&self) -> bool {
                self.obj.get().mutex.is_locked()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({:016x})"), self.obj.id())
            }
        }

        shared_handle_serde!($name, MutexCell);
    };
}

mutex_handle!(
    /// A mutual-exclusion lock shared by processes, like Python's
    /// `multiprocessing.Lock`, but robust: if its holder dies, the next acquirer gets it
    /// with an [`OwnerDied`] indication instead of waiting for ever. Unlike Python's, it
    /// is owned: the thread that acquired it releases it (by dropping the guard). An
    /// uncontended acquire and release is one atomic instruction each, no syscall.
    ///
    /// ```
    /// let lock = procession::sync::Lock::new()?;
    /// {
    ///     let _held = lock.acquire().expect("no holder died");
    ///     assert!(lock.try_acquire().is_none()); // held (by us)
    /// }
    /// assert!(lock.try_acquire().is_some());
    /// # Ok::<(), procession::Error>(())
    /// ```
    Lock,
    false
);

mutex_handle!(
    /// A re-entrant [`Lock`]: the thread that holds it may acquire it again (each
    /// acquisition has its own guard). Robust like [`Lock`].
    ///
    /// ```
    /// let lock = procession::sync::RLock::new()?;
    /// let outer = lock.acquire().expect("no holder died");
    /// let inner = lock.acquire().expect("re-entrant");
    /// drop(inner);
    /// drop(outer);
    /// # Ok::<(), procession::Error>(())
    /// ```
    RLock,
    true
);
