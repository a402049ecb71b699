//! [`Semaphore`] and [`BoundedSemaphore`]: counters of permits shared by processes.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::object::{shared_handle_serde, SharedObject, ShmSafe};
use super::{AcquireResult, OwnerDied, SyncError, LIVENESS};
use crate::error::Result;
use crate::os::futex;
use crate::os::proc::{identity_alive, pid};

const HOLDERS: usize = 128;

#[repr(C)]
pub(crate) struct SemCell {
    value: AtomicU32,
    bound: AtomicU32,
    waiters: AtomicU32,
    /// `pid << 32 | permits` of each process holding permits.
    holders: [AtomicU64; HOLDERS],
    /// The start time of the process in the same slot of `holders` (0: unknown), so that
    /// a holder that died is told apart from a new process that got its pid. Zeroed
    /// before a slot is freed and written after it is claimed, so it is never stale.
    holder_starts: [AtomicU64; HOLDERS],
}

// SAFETY: repr(C), all atomics, valid when zeroed.
unsafe impl ShmSafe for SemCell {}

impl SemCell {
    /// Keeps `sum(holder counts) == live Permit guards`, per process, so that the permits
    /// a process held when it died can be given back.
    fn track(&self, me: u32, add: bool) {
        for (slot, start) in self.holders.iter().zip(&self.holder_starts) {
            let e = slot.load(Acquire);
            if e >> 32 == me as u64 {
                let n = e & 0xffff_ffff;
                let new = if add { n + 1 } else { n.saturating_sub(1) };
                let new = if new == 0 {
                    start.store(0, SeqCst);
                    0
                } else {
                    ((me as u64) << 32) | new
                };
                if slot.compare_exchange(e, new, AcqRel, Relaxed).is_ok() {
                    return;
                }
            }
        }
        if add {
            let entry = ((me as u64) << 32) | 1;
            // A full table only loses the dead-holder recovery for this process.
            if let Some(i) = self
                .holders
                .iter()
                .position(|s| s.compare_exchange(0, entry, AcqRel, Relaxed).is_ok())
            {
                self.holder_starts[i].store(crate::os::proc::own_start_time(), SeqCst);
            }
        }
    }

    /// Returns the permits of dead holders to the count; how many it returned.
    fn reclaim(&self) -> u32 {
        let mut back = 0;
        for (slot, start) in self.holders.iter().zip(&self.holder_starts) {
            let e = slot.load(Acquire);
            if e == 0 || identity_alive((e >> 32) as u32, start.load(SeqCst)) {
                continue;
            }
            // Zero the start before freeing the slot, so it is never stale for the next
            // holder (a failed CAS only leaves a live holder checked by pid alone).
            start.store(0, SeqCst);
            if slot.compare_exchange(e, 0, AcqRel, Relaxed).is_ok() {
                let n = (e & 0xffff_ffff) as u32;
                self.value.fetch_add(n, SeqCst);
                futex::wake(&self.value, n as i32);
                back += n;
            }
        }
        back
    }

    fn acquire(&self, timeout: Option<Duration>) -> Option<std::result::Result<(), OwnerDied<()>>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut died = false;
        loop {
            let v = self.value.load(Acquire);
            if v > 0 {
                if self
                    .value
                    .compare_exchange(v, v - 1, AcqRel, Relaxed)
                    .is_ok()
                {
                    self.track(pid(), true);
                    return Some(if died {
                        Err(OwnerDied::new(()))
                    } else {
                        Ok(())
                    });
                }
                continue;
            }
            if self.reclaim() > 0 {
                died = true;
                continue;
            }
            let slice = match deadline {
                None => LIVENESS,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    left.min(LIVENESS)
                }
            };
            self.waiters.fetch_add(1, SeqCst);
            futex::wait(&self.value, 0, Some(slice));
            self.waiters.fetch_sub(1, SeqCst);
        }
    }

    /// Returns a permit without touching the holder table (`Semaphore::release`, or a
    /// `Permit` whose tracking was already removed).
    fn release(&self) -> std::result::Result<(), SyncError> {
        let bound = self.bound.load(Relaxed);
        loop {
            let v = self.value.load(Acquire);
            if bound != 0 && v >= bound {
                return Err(SyncError::OverReleased { bound });
            }
            if self
                .value
                .compare_exchange(v, v + 1, AcqRel, Relaxed)
                .is_ok()
            {
                break;
            }
        }
        if self.waiters.load(SeqCst) > 0 {
            futex::wake(&self.value, 1);
        }
        Ok(())
    }
}

/// A permit of a [`Semaphore`] or [`BoundedSemaphore`], held by this process: dropping
/// it gives the permit back. If the process dies while holding it, the permit is given
/// back too, and the next acquirer is told ([`OwnerDied`]).
#[must_use = "the permit is given back as soon as it is dropped; use forget() to consume it"]
pub struct Permit<'a> {
    cell: &'a SemCell,
    held: bool,
}

impl Permit<'_> {
    /// Consumes the permit: it is not given back (the acquiring side of a signal).
    pub fn forget(mut self) {
        self.held = false;
        self.cell.track(pid(), false);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.held {
            self.cell.track(pid(), false);
            let _ = self.cell.release();
        }
    }
}

impl std::fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permit")
    }
}

macro_rules! semaphore_handle {
    ($(#[$doc:meta])* $name:ident, $bounded:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            obj: Arc<SharedObject<SemCell>>,
        }

        impl $name {
            /// Creates it with `value` permits.
            ///
            /// # Errors
            /// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created,
            /// or the error of starting the runtime (as for [`spawn`](crate::spawn)).
            pub fn new(value: u32) -> Result<Self> {
                let obj = SharedObject::create(0, |c: &SemCell, _| {
                    c.value.store(value, SeqCst);
                    c.bound.store(if $bounded { value.max(1) } else { 0 }, SeqCst);
                    Ok(())
                })?;
                Ok(Self::from_obj(obj))
            }

            fn from_obj(obj: Arc<SharedObject<SemCell>>) -> Self {
                Self { obj }
            }

                        /// Takes a permit, waiting as long as needed; it is held until the [`Permit`] is
            /// dropped (or consumed with [`Permit::forget`]). `Err(OwnerDied)` still holds
            /// one: it comes from a process that died holding permits (they were returned).
            ///
            /// # Errors
            /// `Err(OwnerDied(guard))` when the previous holder's process died holding it:
            /// the guard still holds it (call `OwnerDied::into_inner` after repairing what
            /// it protects).
            pub fn acquire(&self) -> AcquireResult<Permit<'_>> {
                loop {
                    if let Some(r) = self.try_acquire_for(None) {
                        return r;
                    }
                }
            }

            /// Takes a permit if one is free now.
            ///
            /// # Errors
            /// `Err(OwnerDied(guard))` when the previous holder's process died holding it:
            /// the guard still holds it (call `OwnerDied::into_inner` after repairing what
            /// it protects).
            pub fn try_acquire(&self) -> Option<AcquireResult<Permit<'_>>> {
                self.try_acquire_for(Some(Duration::ZERO))
            }

            /// Waits at most `timeout` for a permit; `None` if none came.
            ///
            /// # Errors
            /// `Err(OwnerDied(guard))` when the previous holder's process died holding it:
            /// the guard still holds it (call `OwnerDied::into_inner` after repairing what
            /// it protects).
            pub fn acquire_timeout(&self, timeout: Duration) -> Option<AcquireResult<Permit<'_>>> {
                self.try_acquire_for(Some(timeout))
            }

            fn try_acquire_for(&self, timeout: Option<Duration>) -> Option<AcquireResult<Permit<'_>>> {
                                let cell = self.obj.get();
                let got = cell.acquire(timeout)?;
                // Only now, with a permit taken, does a guard exist to give it back.
                let permit = Permit { cell, held: true };
                Some(match got {
                    Ok(()) => Ok(permit),
                    Err(_) => Err(OwnerDied::new(permit)),
                })
            }

            /// Adds a permit, as Python's `release()` does: the usual way for one process
            /// to signal another. (To give back a permit you hold, drop its [`Permit`].)
            ///
            /// # Errors
            /// [`SyncError::OverReleased`] for a `BoundedSemaphore` released above its
            /// initial value (Python's `ValueError`).
            pub fn release(&self) -> std::result::Result<(), SyncError> {
                self.obj.get().release()
            }

            /// Permits free now.
            pub fn value(&self) -> u32 {
                self.obj.get().value.load(Acquire)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({} free)"), self.value())
            }
        }

        shared_handle_serde!($name, SemCell);
    };
}

semaphore_handle!(
    /// A counting semaphore shared by processes, like Python's `Semaphore`, but robust:
    /// permits held by a process that dies are returned, and the acquirer that gets one
    /// of them is told so ([`OwnerDied`]). Up to 128 processes are tracked as holders.
    ///
    /// ```
    /// let sem = procession::sync::Semaphore::new(2)?;
    /// let a = sem.acquire().expect("no holder died");
    /// let _b = sem.acquire().expect("no holder died");
    /// assert!(sem.try_acquire().is_none());
    /// drop(a); // gives its permit back
    /// assert_eq!(sem.value(), 1);
    /// sem.acquire().expect("no holder died").forget(); // consumed, as a signal's receiver does
    /// assert_eq!(sem.value(), 0);
    /// # Ok::<(), procession::Error>(())
    /// ```
    Semaphore,
    false
);

semaphore_handle!(
    /// A [`Semaphore`] that refuses to be released above its initial value: such a
    /// release is [`SyncError::OverReleased`], as Python's `BoundedSemaphore` raises.
    ///
    /// ```
    /// use procession::sync::{BoundedSemaphore, SyncError};
    /// let sem = BoundedSemaphore::new(1)?;
    /// assert_eq!(sem.release(), Err(SyncError::OverReleased { bound: 1 }));
    /// # Ok::<(), procession::Error>(())
    /// ```
    BoundedSemaphore,
    true
);

#[cfg(test)]
mod tests {
    use super::*;

    fn cell() -> SemCell {
        SemCell {
            value: AtomicU32::new(0),
            bound: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            holders: std::array::from_fn(|_| AtomicU64::new(0)),
            holder_starts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    #[test]
    fn permits_of_a_holder_whose_pid_now_names_another_process_are_reclaimed() {
        let c = cell();
        let me = std::process::id();
        // A holder recorded with our pid but another start time: the process that held
        // them died and its pid was recycled (for us).
        c.holders[0].store(((me as u64) << 32) | 2, SeqCst);
        c.holder_starts[0].store(crate::os::proc::own_start_time() + 1, SeqCst);
        assert_eq!(c.reclaim(), 2);
        assert_eq!(c.value.load(SeqCst), 2);
        assert_eq!(c.holders[0].load(SeqCst), 0);
    }

    #[test]
    fn permits_of_a_live_holder_are_not_reclaimed() {
        let c = cell();
        c.track(std::process::id(), true);
        assert_eq!(c.reclaim(), 0);
        c.track(std::process::id(), false);
        assert_eq!(c.holders.iter().filter(|h| h.load(SeqCst) != 0).count(), 0);
    }
}
