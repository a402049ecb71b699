//! A process-shared robust lock on one futex word, for structures in shared memory.
//!
//! It replaces glibc's robust pthread mutex, whose state (`__kind`, `__lock`, the
//! priority ceiling) is itself shared memory that any process of the same user can write:
//! a scribbled kind made every locker abort in glibc's assertions, or spin for ever. Here
//! every bit pattern of the lock's words is a state the code handles:
//!
//! - The **lock word** is `0` when free, otherwise the owner's thread id (the low 30 bits)
//!   plus a `WAITERS` bit that tells the unlocker to wake someone. Uncontended, lock and
//!   unlock are one atomic instruction each, no syscall.
//! - A locker that must wait sleeps on the word with a **bounded** futex wait (10 ms), and
//!   every time a wait ends without a wake-up it checks whether the owner still lives
//!   (through `/proc`, never by signalling it). An owner that died holding the lock is
//!   replaced in one compare-and-swap, and that locker gets [`Locked::OwnerDied`]: the
//!   protected state may be half-updated, and it repairs it.
//! - An owner id that is not a live thread of this program (zero, garbage, a tid that
//!   ended, a process running another executable) is an owner that died. Only an id that
//!   a corrupt write pointed at a live thread of this same program looks like a holder;
//!   lockers then wait for their deadline, never longer.
//! - A re-entrant lock keeps its depth in a second word that only the owner touches.
//!
//! The one window left is tid reuse: an owner that died and whose tid the kernel handed
//! to a new thread is taken for alive until that thread ends. Linux reuses ids only after
//! cycling through `pid_max` of them.

use std::cell::Cell;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

use super::futex;

/// What a successful lock reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// The lock was free or released normally.
    Clean,
    /// The previous owner died holding it; the protected state may be half-updated, and
    /// the new holder repairs it.
    OwnerDied,
}

const WAITERS: u32 = 1 << 31;
const TID_MASK: u32 = (1 << 30) - 1;
/// How long a waiter sleeps before it re-checks the word and its owner's life.
const WAIT_SLICE: Duration = Duration::from_millis(10);

/// The lock, to be embedded (`#[repr(C)]`) in a shared-memory structure. All-zero bytes
/// are a free, non-recursive lock; [`RobustMutex::init`] sets the kind.
#[repr(C)]
pub struct RobustMutex {
    word: AtomicU32,
    /// Extra acquisitions by the owner of a re-entrant lock.
    depth: AtomicU32,
    /// 1 for a re-entrant lock.
    recursive: AtomicU32,
    /// Lockers sleeping (or about to) on the word. An acquirer sets `WAITERS` only while
    /// some sleep, so an unlock after contention has passed costs no wake syscall. (A
    /// wrong count costs a spare wake-up or, at worst, one bounded wait slice.)
    sleepers: AtomicU32,
}

thread_local! {
    /// (pid when cached, tid): a fork child has another pid, so it refreshes the tid.
    static TID: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

/// The calling thread's id, cached per thread (and refreshed after a fork).
fn tid() -> u32 {
    let pid = super::proc::pid();
    TID.with(|c| {
        let (cached_pid, tid) = c.get();
        if cached_pid == pid && tid != 0 {
            return tid;
        }
        let tid = nix::unistd::gettid().as_raw() as u32;
        c.set((pid, tid));
        tid
    })
}

impl RobustMutex {
    /// Sets the lock's kind (re-entrant or not). The creator of a shared structure calls it
    /// before publishing the structure.
    pub fn init(&self, recursive: bool) -> std::io::Result<()> {
        self.recursive.store(recursive as u32, Release);
        Ok(())
    }

    /// Locks, waiting at most `timeout` (`None`: for ever, in bounded slices;
    /// `Some(ZERO)`: try once). Returns `None` on timeout.
    pub fn lock(&self, timeout: Option<Duration>) -> Option<Locked> {
        let me = tid();
        match self.word.compare_exchange(0, me, Acquire, Relaxed) {
            Ok(_) => return Some(Locked::Clean),
            Err(w) if w & TID_MASK == me && self.recursive.load(Relaxed) != 0 => {
                self.depth.fetch_add(1, Relaxed);
                return Some(Locked::Clean);
            }
            Err(_) => {}
        }
        if timeout.is_some_and(|t| t.is_zero()) {
            return self.try_take_free(me);
        }
        // No spinning: a contended locker sleeps at once, which lets the holder run on
        // uncontended (two processes hammering a lock do 12-13M pairs/s this way, about
        // 9M with a short spin). Callers that want to spin (mailbox senders) do so
        // around `lock(Some(ZERO))`.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let w = self.word.load(Relaxed);
            let owner = w & TID_MASK;
            if owner == 0 {
                // Free, or a word with no owner in it (written by someone else): take it,
                // with WAITERS set if others sleep on it.
                let flag = if self.sleepers.load(Relaxed) != 0 {
                    WAITERS
                } else {
                    0
                };
                if self
                    .word
                    .compare_exchange(w, me | flag, Acquire, Relaxed)
                    .is_ok()
                {
                    self.depth.store(0, Relaxed);
                    return Some(if w == 0 || w == WAITERS {
                        Locked::Clean
                    } else {
                        Locked::OwnerDied
                    });
                }
                continue;
            }
            if w & WAITERS == 0
                && self
                    .word
                    .compare_exchange(w, w | WAITERS, Relaxed, Relaxed)
                    .is_err()
            {
                continue;
            }
            let slice = match deadline {
                None => WAIT_SLICE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    left.min(WAIT_SLICE)
                }
            };
            self.sleepers.fetch_add(1, Relaxed);
            let woken = futex::wait(&self.word, w | WAITERS, Some(slice));
            let _ = self
                .sleepers
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
            if !woken && self.word.load(Relaxed) == w | WAITERS && !thread_alive(owner) {
                // The owner died holding it: take it over from exactly the state we saw.
                if self
                    .word
                    .compare_exchange(w | WAITERS, me | WAITERS, Acquire, Relaxed)
                    .is_ok()
                {
                    self.depth.store(0, Relaxed);
                    return Some(Locked::OwnerDied);
                }
            }
        }
    }

    fn try_take_free(&self, me: u32) -> Option<Locked> {
        let w = self.word.load(Relaxed);
        if w & TID_MASK != 0 {
            return None;
        }
        let flag = if self.sleepers.load(Relaxed) != 0 {
            WAITERS
        } else {
            0
        };
        self.word
            .compare_exchange(w, me | flag, Acquire, Relaxed)
            .ok()
            .map(|_| {
                self.depth.store(0, Relaxed);
                if w & !WAITERS == 0 {
                    Locked::Clean
                } else {
                    Locked::OwnerDied
                }
            })
    }

    /// Unlocks. Only the holder may call it; a word that no longer names the caller (it
    /// was overwritten) is left alone rather than releasing someone else's lock.
    pub fn unlock(&self) {
        let me = tid();
        let w = self.word.load(Relaxed);
        if w & TID_MASK != me {
            return;
        }
        if self.recursive.load(Relaxed) != 0 {
            let d = self.depth.load(Relaxed);
            if d > 0 {
                self.depth.store(d - 1, Relaxed);
                return;
            }
        }
        let old = self.word.swap(0, Release);
        if old & WAITERS != 0 {
            futex::wake(&self.word, 1);
        }
    }

    /// `true` if some thread holds the lock now (a snapshot: it may change at once).
    pub fn is_locked(&self) -> bool {
        self.word.load(Relaxed) & TID_MASK != 0
    }

    /// `true` if the calling thread holds the lock (by the word's record).
    pub fn held_by_me(&self) -> bool {
        self.word.load(Relaxed) & TID_MASK == tid()
    }
}

/// Whether thread `tid` exists, is not a zombie, and runs this program (so it can be a
/// process of this runtime).
fn thread_alive(tid: u32) -> bool {
    super::proc::runtime_process_alive(tid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(recursive: bool) -> Box<RobustMutex> {
        let m = Box::new(RobustMutex {
            word: AtomicU32::new(0),
            depth: AtomicU32::new(0),
            recursive: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        });
        m.init(recursive).unwrap();
        m
    }

    #[test]
    fn uncontended_lock_and_unlock_leave_the_word_free() {
        let m = fresh(false);
        assert_eq!(m.lock(None), Some(Locked::Clean));
        assert!(m.held_by_me());
        m.unlock();
        assert_eq!(m.word.load(Relaxed), 0);
    }

    #[test]
    fn try_lock_on_a_held_lock_fails_at_once() {
        let m = fresh(false);
        let held = std::sync::Barrier::new(2);
        let release = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                m.lock(None).unwrap();
                held.wait();
                release.wait();
                m.unlock();
            });
            held.wait();
            assert_eq!(m.lock(Some(Duration::ZERO)), None);
            assert_eq!(m.lock(Some(Duration::from_millis(30))), None);
            release.wait();
        });
        assert_eq!(m.lock(Some(Duration::from_secs(5))), Some(Locked::Clean));
    }

    #[test]
    fn lock_held_by_a_thread_that_ended_is_taken_over_as_owner_died() {
        let m = fresh(false);
        std::thread::scope(|s| {
            s.spawn(|| m.lock(None).unwrap());
        });
        assert_eq!(
            m.lock(Some(Duration::from_secs(5))),
            Some(Locked::OwnerDied)
        );
    }

    #[test]
    fn garbage_in_the_word_never_blocks_past_the_deadline() {
        let m = fresh(false);
        for garbage in [u32::MAX, WAITERS, 0x7fff_ffff, TID_MASK, 1, 0xb0, 4] {
            m.word.store(garbage, Relaxed);
            // An owner id that is no live thread of this program is taken over; a free
            // word with a stale WAITERS bit is simply free.
            let expected = if garbage == WAITERS {
                Locked::Clean
            } else {
                Locked::OwnerDied
            };
            assert_eq!(
                m.lock(Some(Duration::from_millis(200))),
                Some(expected),
                "{garbage:#x}"
            );
            m.unlock();
            assert_eq!(m.word.load(Relaxed), 0);
        }
        // An id that names a live thread of this program looks held: the wait ends at
        // the deadline.
        let me = tid();
        std::thread::scope(|s| {
            s.spawn(|| {
                m.word.store(me, Relaxed);
                assert_eq!(m.lock(Some(Duration::from_millis(50))), None);
            });
        });
        m.word.store(0, Relaxed);
    }

    #[test]
    fn recursive_lock_is_reentrant_and_released_by_the_last_unlock() {
        let m = fresh(true);
        assert_eq!(m.lock(None), Some(Locked::Clean));
        assert_eq!(m.lock(None), Some(Locked::Clean));
        m.unlock();
        assert!(m.held_by_me());
        m.unlock();
        assert_eq!(m.word.load(Relaxed), 0);
    }

    #[test]
    fn contended_lock_counts_exactly() {
        let m = fresh(false);
        let n = std::cell::UnsafeCell::new(0u64);
        struct Shared<'a>(&'a std::cell::UnsafeCell<u64>);
        // SAFETY (test): the counter is only touched while holding the lock.
        unsafe impl Sync for Shared<'_> {}
        let shared = Shared(&n);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let shared = &shared;
                    for _ in 0..20_000 {
                        m.lock(None).unwrap();
                        // SAFETY: exclusive under the lock.
                        unsafe { *shared.0.get() += 1 };
                        m.unlock();
                    }
                });
            }
        });
        assert_eq!(n.into_inner(), 80_000);
    }
}
