//! [`Event`] and [`Condition`].

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lock::{acquire, LockGuard, MutexCell};
use super::object::{shared_handle_serde, SharedObject, ShmSafe};
use super::AcquireResult;
use crate::error::Result;
use crate::mailbox::Wait;
use crate::os::futex;
use crate::os::robust::RobustMutex;

#[repr(C)]
pub(crate) struct EventCell {
    flag: AtomicU32,
}

// SAFETY: repr(C), one atomic, valid when zeroed.
unsafe impl ShmSafe for EventCell {}

/// A flag shared by processes that others can wait for, like Python's `Event`.
///
/// ```
/// let ev = procession::sync::Event::new()?;
/// assert!(!ev.wait_timeout(std::time::Duration::from_millis(1)));
/// ev.set();
/// assert!(ev.is_set() && ev.wait_timeout(std::time::Duration::ZERO));
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone)]
pub struct Event {
    obj: Arc<SharedObject<EventCell>>,
}

impl Event {
    /// A new, clear event.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn new() -> Result<Self> {
        Ok(Self::from_obj(SharedObject::create(
            0,
            |_: &EventCell, _| Ok(()),
        )?))
    }

    fn from_obj(obj: Arc<SharedObject<EventCell>>) -> Self {
        Event { obj }
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        let flag = &self.obj.get().flag;
        flag.store(1, SeqCst);
        futex::wake(flag, i32::MAX);
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.obj.get().flag.store(0, SeqCst);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.obj.get().flag.load(Acquire) != 0
    }

    /// Waits until the flag is set.
    pub fn wait(&self) {
        while !self.wait_timeout(Duration::from_secs(3600)) {}
    }

    /// Waits at most `timeout`; returns whether the flag is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let flag = &self.obj.get().flag;
        let deadline = Instant::now() + timeout;
        loop {
            if flag.load(Acquire) != 0 {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            futex::wait(flag, 0, Some(left));
        }
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Event(set: {})", self.is_set())
    }
}

shared_handle_serde!(Event, EventCell);

#[repr(C)]
pub(crate) struct CondCell {
    mutex: MutexCell,
    seq: AtomicU32,
}

// SAFETY: repr(C), a MutexCell (ShmSafe) and an atomic, valid when zeroed.
unsafe impl ShmSafe for CondCell {}

/// A condition variable with its own robust lock, shared by processes, like Python's
/// `Condition`: acquire it, check your condition, and [`wait`](Condition::wait) (which
/// releases the lock while it sleeps) until another process [`notify`](Condition::notify)s.
///
/// ```
/// let cond = procession::sync::Condition::new()?;
/// let mut held = cond.acquire().expect("no holder died");
/// // Nobody notifies: the wait times out and the lock is held again.
/// let (again, notified) = cond.wait_timeout(held, std::time::Duration::from_millis(1));
/// assert!(!notified);
/// held = again.expect("no holder died");
/// cond.notify_all();
/// drop(held);
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone)]
pub struct Condition {
    obj: Arc<SharedObject<CondCell>>,
}

impl Condition {
    /// A new condition with its lock released.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn new() -> Result<Self> {
        Ok(Self::from_obj(SharedObject::create(
            0,
            |c: &CondCell, _| c.mutex.mutex.init(false),
        )?))
    }

    fn from_obj(obj: Arc<SharedObject<CondCell>>) -> Self {
        Condition { obj }
    }

    fn mutex(&self) -> &RobustMutex {
        &self.obj.get().mutex.mutex
    }

    /// Acquires the condition's lock (see [`Lock::acquire`](super::Lock::acquire)).
    ///
    /// # Errors
    /// `Err(OwnerDied(guard))` when the previous holder's process died holding it: the
    /// guard still holds it (call `OwnerDied::into_inner` after repairing what it
    /// protects).
    pub fn acquire(&self) -> AcquireResult<LockGuard<'_>> {
        loop {
            if let Some(r) = acquire(self.mutex(), None) {
                return r;
            }
        }
    }

    /// Releases the lock held by `guard`, sleeps until notified, and acquires it again.
    /// As with every condition variable, check your condition again after it returns.
    ///
    /// # Errors
    /// `Err(OwnerDied(guard))` when the previous holder's process died holding it: the
    /// guard still holds it (call `OwnerDied::into_inner` after repairing what it
    /// protects).
    pub fn wait<'a>(&'a self, guard: LockGuard<'a>) -> AcquireResult<LockGuard<'a>> {
        self.wait_timeout_inner(guard, None).0
    }

    /// Waits (releasing the lock while asleep) until `ready` holds, at most `timeout`;
    /// returns the lock, and whether `ready` held.
    pub fn wait_for<'a>(
        &'a self,
        mut guard: LockGuard<'a>,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> (AcquireResult<LockGuard<'a>>, bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return (Ok(guard), true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (Ok(guard), false);
            }
            match self.wait_timeout_inner(guard, Some(left)).0 {
                Ok(g) => guard = g,
                Err(died) => return (Err(died), ready()),
            }
        }
    }

    /// Like [`wait`](Condition::wait), for at most `timeout`; the flag says whether it was
    /// notified (rather than timed out).
    pub fn wait_timeout<'a>(
        &'a self,
        guard: LockGuard<'a>,
        timeout: Duration,
    ) -> (AcquireResult<LockGuard<'a>>, bool) {
        self.wait_timeout_inner(guard, Some(timeout))
    }

    fn wait_timeout_inner<'a>(
        &'a self,
        guard: LockGuard<'a>,
        timeout: Option<Duration>,
    ) -> (AcquireResult<LockGuard<'a>>, bool) {
        let seq = &self.obj.get().seq;
        let seen = seq.load(SeqCst);
        drop(guard);
        let deadline = Wait::from_timeout(timeout);
        // Each futex wait is bounded (a lost wake-up costs latency, never liveness), so
        // loop until notified or the deadline.
        let notified = loop {
            if seq.load(SeqCst) != seen {
                break true;
            }
            let Some(slice) = deadline.slice() else {
                break false;
            };
            futex::wait(seq, seen, Some(slice));
        };
        (self.acquire(), notified)
    }

    /// Wakes one waiter.
    pub fn notify(&self) {
        self.notify_n(1);
    }

    /// Wakes up to `n` waiters.
    pub fn notify_n(&self, n: u32) {
        let seq = &self.obj.get().seq;
        seq.fetch_add(1, SeqCst);
        futex::wake(seq, n.min(i32::MAX as u32) as i32);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.notify_n(u32::MAX);
    }
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Condition({:016x})", self.obj.id())
    }
}

shared_handle_serde!(Condition, CondCell);
