//! [`Barrier`]: parties wait until all have arrived.

use std::sync::atomic::Ordering::{Acquire, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lock::{acquire, MutexCell};
use super::object::{shared_handle_serde, SharedObject, ShmSafe};
use super::{SyncError, LIVENESS};
use crate::error::Result;
use crate::os::futex;
use crate::os::proc::{own_start_time, pid, process_alive, start_time};

const WAITERS: usize = 256;

#[repr(C)]
pub(crate) struct BarrierCell {
    mutex: MutexCell,
    parties: AtomicU32,
    count: AtomicU32,
    generation: AtomicU32,
    broken: AtomicU32,
    /// Bumped by every reset: a waiter from before a reset gets `BrokenBarrier`.
    resets: AtomicU32,
    /// `pid << 32 | low 32 bits of its start time` of each party waiting in the current
    /// generation: one word, so a pid recycled for another process is not taken for the
    /// party that died.
    waiting: [AtomicU64; WAITERS],
}

// SAFETY: repr(C), a MutexCell and atomics, valid when zeroed.
unsafe impl ShmSafe for BarrierCell {}

/// A barrier for a fixed number of parties in any processes, like Python's `Barrier`:
/// each [`wait`](Barrier::wait)s until all have arrived, then all go on. It breaks — and
/// every waiter gets [`SyncError::BrokenBarrier`] — when a wait times out, when it is
/// [`abort`](Barrier::abort)ed, or when a waiting party's process dies (where Python's
/// would hang for ever).
///
/// ```
/// let b = procession::sync::Barrier::new(1)?;
/// assert_eq!(b.wait(), Ok(0)); // one party: it passes at once
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    obj: Arc<SharedObject<BarrierCell>>,
    /// Run by this handle's process when it is the last to arrive ([`Barrier::with_action`]).
    action: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Barrier {
    /// A barrier for `parties` parties (at least 1, at most 256).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn new(parties: u32) -> Result<Self> {
        let parties = parties.clamp(1, WAITERS as u32);
        let obj = SharedObject::create(0, |c: &BarrierCell, _| {
            c.parties.store(parties, SeqCst);
            c.mutex.mutex.init(false)
        })?;
        Ok(Self::from_obj(obj))
    }

    fn from_obj(obj: Arc<SharedObject<BarrierCell>>) -> Self {
        Barrier { obj, action: None }
    }

    /// Sets the barrier action, as Python's `Barrier(parties, action)`: when a wait through
    /// **this handle** is the last to arrive, it runs `action` before any party is
    /// released. If the action panics, the barrier breaks (the others get
    /// [`SyncError::BrokenBarrier`]) and the panic goes on in the caller.
    ///
    /// A closure cannot travel to another process, so the action belongs to the handle:
    /// a handle that another process decodes has none unless that process sets one. Set
    /// the same action in every process that may arrive last.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// let runs = Arc::new(AtomicU32::new(0));
    /// let r = runs.clone();
    /// let b = procession::sync::Barrier::new(1)?.with_action(move || {
    ///     r.fetch_add(1, Ordering::SeqCst);
    /// });
    /// b.wait().unwrap();
    /// assert_eq!(runs.load(Ordering::SeqCst), 1);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn with_action(mut self, action: impl Fn() + Send + Sync + 'static) -> Self {
        self.action = Some(Arc::new(action));
        self
    }

    /// Waits for all parties; returns this party's arrival index (0 for the first).
    ///
    /// # Errors
    /// [`SyncError::BrokenBarrier`] if the barrier is broken: aborted, a wait timed out, or
    /// a waiting party's process died.
    pub fn wait(&self) -> std::result::Result<u32, SyncError> {
        self.wait_inner(None)
    }

    /// Waits at most `timeout`; a timeout breaks the barrier (as in Python).
    ///
    /// # Errors
    /// [`SyncError::Timeout`] when the wait timed out (which breaks the barrier for every
    /// party, as in Python), or [`SyncError::BrokenBarrier`] as for [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> std::result::Result<u32, SyncError> {
        self.wait_inner(Some(timeout))
    }

    fn wait_inner(&self, timeout: Option<Duration>) -> std::result::Result<u32, SyncError> {
        let c = self.obj.get();
        let deadline = timeout.map(|t| Instant::now() + t);
        let (gen, index, epoch) = {
            let _held = loop {
                if let Some(r) = acquire(&c.mutex.mutex, None) {
                    break r.unwrap_or_else(|died| died.into_inner());
                }
            };
            if c.broken.load(SeqCst) != 0 {
                return Err(SyncError::BrokenBarrier);
            }
            let gen = c.generation.load(SeqCst);
            let epoch = c.resets.load(SeqCst);
            let index = c.count.fetch_add(1, SeqCst);
            if index + 1 >= c.parties.load(SeqCst) {
                if let Some(action) = &self.action {
                    // Run before anyone is released; a panic breaks the barrier.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| action()));
                    if let Err(panic) = ran {
                        c.count.store(0, SeqCst);
                        c.broken.store(1, SeqCst);
                        futex::wake(&c.generation, i32::MAX);
                        std::panic::resume_unwind(panic);
                    }
                }
                c.count.store(0, SeqCst);
                for w in &c.waiting {
                    w.store(0, SeqCst);
                }
                c.generation.fetch_add(1, SeqCst);
                futex::wake(&c.generation, i32::MAX);
                return Ok(index);
            }
            let token = ((pid() as u64) << 32) | (own_start_time() & 0xffff_ffff);
            c.waiting[index as usize % WAITERS].store(token, SeqCst);
            (gen, index, epoch)
        };
        loop {
            if c.resets.load(Acquire) != epoch {
                return Err(SyncError::BrokenBarrier);
            }
            if c.generation.load(Acquire) != gen {
                return Ok(index);
            }
            if c.broken.load(Acquire) != 0 {
                return Err(SyncError::BrokenBarrier);
            }
            if c.waiting.iter().any(|w| {
                let t = w.load(Acquire);
                t != 0 && !party_alive(t)
            }) {
                self.abort();
                return Err(SyncError::BrokenBarrier);
            }
            let slice = match deadline {
                None => LIVENESS,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.abort();
                        return Err(SyncError::Timeout);
                    }
                    left.min(LIVENESS)
                }
            };
            futex::wait(&c.generation, gen, Some(slice));
        }
    }

    /// Breaks the barrier: every current and future waiter gets `BrokenBarrier` until
    /// [`reset`](Barrier::reset).
    pub fn abort(&self) {
        let c = self.obj.get();
        c.broken.store(1, SeqCst);
        futex::wake(&c.generation, i32::MAX);
    }

    /// Returns the barrier to its initial, unbroken state (waiters get `BrokenBarrier`).
    pub fn reset(&self) {
        let c = self.obj.get();
        // All of it under the barrier's mutex, so that it is atomic: a party that got
        // `BrokenBarrier` from this reset and waits again at once finds the barrier whole,
        // never broken or half-reset. Waiters of the old epoch see `resets` change.
        let _held = loop {
            if let Some(r) = acquire(&c.mutex.mutex, None) {
                break r.unwrap_or_else(|died| died.into_inner());
            }
        };
        c.count.store(0, SeqCst);
        for w in &c.waiting {
            w.store(0, SeqCst);
        }
        c.broken.store(0, SeqCst);
        c.resets.fetch_add(1, SeqCst);
        c.generation.fetch_add(1, SeqCst);
        futex::wake(&c.generation, i32::MAX);
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        self.obj.get().broken.load(Acquire) != 0
    }

    /// The number of parties.
    pub fn parties(&self) -> u32 {
        self.obj.get().parties.load(Acquire)
    }

    /// Parties waiting now.
    pub fn n_waiting(&self) -> u32 {
        self.obj.get().count.load(Acquire)
    }
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Barrier({}/{} waiting)",
            self.n_waiting(),
            self.parties()
        )
    }
}

shared_handle_serde!(Barrier, BarrierCell);

/// Whether the party of a `waiting` token still lives (the same process, not a new one
/// that got its pid).
fn party_alive(token: u64) -> bool {
    let pid = (token >> 32) as u32;
    let start = token & 0xffff_ffff;
    process_alive(pid) && (start == 0 || start_time(pid).is_some_and(|t| t & 0xffff_ffff == start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_party_is_alive_only_as_the_process_that_started_then() {
        let me = (pid() as u64) << 32;
        assert!(party_alive(me | (own_start_time() & 0xffff_ffff)));
        // Same pid, another start time: a recycled pid, the party is gone.
        assert!(!party_alive(me | ((own_start_time() + 1) & 0xffff_ffff)));
    }
}
