//! Futex wait and wake on words in `MAP_SHARED` memory (no `FUTEX_PRIVATE_FLAG`, so the
//! kernel keys them by the backing file and they work across processes).
//!
//! **Every wait is bounded** by [`MAX_WAIT`], whatever the caller asks: the words live in
//! memory that other processes can write, so a wake-up can be lost (a peer died between
//! its store and its wake, or a corrupt write cleared a "waiting" flag). Callers loop and
//! re-check their condition, so a lost wake-up costs latency, never liveness.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// The longest any futex wait sleeps before its caller re-checks its condition.
pub const MAX_WAIT: Duration = Duration::from_millis(100);

/// Sleeps while `*word == expected`, for at most `timeout` and never longer than
/// [`MAX_WAIT`]. Returns `true` if woken by a [`wake`], `false` when the value differed,
/// on a signal, or when the time passed; either way the caller re-checks its condition.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    wait_capped(
        word,
        expected,
        timeout.map_or(MAX_WAIT, |d| d.min(MAX_WAIT)),
    )
}

/// The longest an *idle* consumer sleeps between re-checks ([`wait_idle`]).
pub const IDLE_MAX_WAIT: Duration = Duration::from_secs(1);

/// As [`wait`], for a consumer that has been idle for a while and backs off: at most
/// `timeout`, never longer than [`IDLE_MAX_WAIT`]. Ten thousand idle actors that each
/// woke every [`MAX_WAIT`] would keep a small machine's CPUs busy re-checking empty
/// mailboxes; backing off to once a second costs a lost wake-up (rare: a peer that died
/// between its store and its wake, or a corrupt flag) at most that much latency.
pub fn wait_idle(word: &AtomicU32, expected: u32, timeout: Duration) -> bool {
    wait_capped(word, expected, timeout.min(IDLE_MAX_WAIT))
}

fn wait_capped(word: &AtomicU32, expected: u32, d: Duration) -> bool {
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    let ts_ptr = &ts as *const libc::timespec;
    // SAFETY: `word` is a valid, aligned 32-bit atomic for the duration of the call; the
    // kernel only reads it. `ts_ptr` points at a timespec on our stack. FUTEX_WAIT's
    // errors (EAGAIN, ETIMEDOUT, EINTR) all mean "re-check".
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    rc == 0
}

/// Wakes up to `n` waiters sleeping on `word`.
pub fn wake(word: &AtomicU32, n: i32) {
    // SAFETY: `word` is a valid, aligned 32-bit atomic; FUTEX_WAKE does not touch memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}
