//! A process-shared, robust pthread mutex placed in shared memory.
//!
//! "Robust" is the kernel's robust-futex list: when a thread dies holding the lock, the
//! kernel marks the lock word, and the next locker gets [`Locked::OwnerDied`] instead of
//! blocking for ever. An uncontended lock or unlock is one atomic instruction, no syscall.

use std::cell::UnsafeCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a successful lock reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// The lock was free or released normally.
    Clean,
    /// The previous owner died holding it; the protected state may be half-updated. The
    /// holder repairs it, then calls [`RobustMutex::mark_consistent`].
    OwnerDied,
}

/// The raw mutex, to be embedded (`#[repr(C)]`) in a shared-memory structure. All-zero
/// bytes are "not initialized yet"; [`RobustMutex::init`] initializes it exactly once.
#[repr(C)]
pub struct RobustMutex {
    inner: UnsafeCell<libc::pthread_mutex_t>,
    initialized: std::sync::atomic::AtomicU32,
}

// SAFETY: a PTHREAD_PROCESS_SHARED mutex is designed to be used concurrently from many
// threads and processes through a shared reference.
unsafe impl Sync for RobustMutex {}

impl RobustMutex {
    /// Initializes the mutex in place as process-shared and robust (and recursive if
    /// asked). The creator of a shared structure calls it before publishing the
    /// structure; later calls do nothing, so a live mutex is never re-initialized.
    pub fn init(&self, recursive: bool) -> std::io::Result<()> {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        if self
            .initialized
            .compare_exchange(0, 1, AcqRel, Acquire)
            .is_err()
        {
            return Ok(());
        }
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: standard attr life cycle on a local. `inner` is not used by anyone yet:
        // the flag above lets exactly one caller through, before publication.
        unsafe {
            check(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
            let attr = attr.as_mut_ptr();
            let r = (|| {
                check(libc::pthread_mutexattr_setpshared(
                    attr,
                    libc::PTHREAD_PROCESS_SHARED,
                ))?;
                check(libc::pthread_mutexattr_setrobust(
                    attr,
                    libc::PTHREAD_MUTEX_ROBUST,
                ))?;
                if recursive {
                    check(libc::pthread_mutexattr_settype(
                        attr,
                        libc::PTHREAD_MUTEX_RECURSIVE,
                    ))?;
                }
                check(libc::pthread_mutex_init(self.inner.get(), attr))
            })();
            libc::pthread_mutexattr_destroy(attr);
            r
        }
    }

    /// Locks, waiting at most `timeout` (`None`: for ever; `Some(ZERO)`: try once).
    /// Returns `None` on timeout.
    pub fn lock(&self, timeout: Option<Duration>) -> Option<Locked> {
        let m = self.inner.get();
        // SAFETY: the mutex was initialized by `init` before the file was published, and
        // stays mapped while `&self` lives.
        let rc = unsafe {
            match timeout {
                None => libc::pthread_mutex_lock(m),
                Some(d) if d.is_zero() => libc::pthread_mutex_trylock(m),
                Some(d) => {
                    let at = SystemTime::now()
                        .checked_add(d)
                        .unwrap_or(SystemTime::now())
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default();
                    let ts = libc::timespec {
                        tv_sec: at.as_secs() as libc::time_t,
                        tv_nsec: at.subsec_nanos() as libc::c_long,
                    };
                    libc::pthread_mutex_timedlock(m, &ts)
                }
            }
        };
        match rc {
            0 => Some(Locked::Clean),
            libc::EOWNERDEAD => Some(Locked::OwnerDied),
            // EBUSY / ETIMEDOUT; ENOTRECOVERABLE cannot happen because every OwnerDied
            // holder marks the mutex consistent before unlocking.
            _ => None,
        }
    }

    /// Declares the state repaired after [`Locked::OwnerDied`].
    pub fn mark_consistent(&self) {
        // SAFETY: called by the current holder of an initialized robust mutex.
        unsafe {
            libc::pthread_mutex_consistent(self.inner.get());
        }
    }

    /// Unlocks. Only the holder may call it.
    pub fn unlock(&self) {
        // SAFETY: called by the current holder of an initialized mutex.
        unsafe {
            libc::pthread_mutex_unlock(self.inner.get());
        }
    }
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}
