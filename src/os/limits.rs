//! Per-actor limits applied by the actor's own process before `create` (rlimits, CPU
//! affinity, nice), and the abort handler that tells an allocation failure under a
//! memory limit from other aborts.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Every resource `rlimit` accepts, to turn a number that travelled back into one.
const RESOURCES: [Resource; 16] = [
    Resource::RLIMIT_AS,
    Resource::RLIMIT_CORE,
    Resource::RLIMIT_CPU,
    Resource::RLIMIT_DATA,
    Resource::RLIMIT_FSIZE,
    Resource::RLIMIT_LOCKS,
    Resource::RLIMIT_MEMLOCK,
    Resource::RLIMIT_MSGQUEUE,
    Resource::RLIMIT_NICE,
    Resource::RLIMIT_NOFILE,
    Resource::RLIMIT_NPROC,
    Resource::RLIMIT_RSS,
    Resource::RLIMIT_RTPRIO,
    Resource::RLIMIT_RTTIME,
    Resource::RLIMIT_SIGPENDING,
    Resource::RLIMIT_STACK,
];

/// The resource numbered `raw` (`resource as i32`).
pub fn resource(raw: i32) -> Option<Resource> {
    RESOURCES.into_iter().find(|r| *r as i32 == raw)
}

/// Sets an rlimit of this process.
pub fn set_rlimit(res: Resource, soft: u64, hard: u64) -> io::Result<()> {
    setrlimit(res, soft, hard).map_err(io::Error::from)
}

/// Binds this process to these CPUs.
pub fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no CPU {c} on this machine"),
            )
        })?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(io::Error::from)
}

/// Sets this process's nice value.
pub fn set_nice(n: i32) -> io::Result<()> {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

static LIMIT: AtomicU64 = AtomicU64::new(0);
static PAGE: AtomicU64 = AtomicU64::new(4096);
static ON_OOM: AtomicUsize = AtomicUsize::new(0);

/// Under a memory limit of `limit` bytes (RLIMIT_AS), an abort while the address space
/// is within `max(limit / 8, 8 MiB)` of the limit calls `on_oom` (which must only store
/// to memory that is already mapped) before the process dies of it. Rust aborts when an
/// allocation fails; this is how that abort is told from others.
pub fn report_oom_on_abort(limit: u64, on_oom: fn()) {
    LIMIT.store(limit, Ordering::SeqCst);
    // SAFETY: sysconf has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE.store(page as u64, Ordering::SeqCst);
    }
    ON_OOM.store(on_oom as usize, Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::Handler(on_abort),
        SaFlags::SA_RESETHAND,
        SigSet::empty(),
    );
    // SAFETY: `on_abort` only makes async-signal-safe calls (open, read, close) and
    // atomic loads, then calls `on_oom`, whose contract is the same.
    unsafe {
        let _ = sigaction(Signal::SIGABRT, &action);
    }
}

/// This process's address space in bytes, read from /proc/self/statm with
/// async-signal-safe calls and a buffer on the stack.
fn address_space() -> Option<u64> {
    let mut buf = [0u8; 64];
    // SAFETY: a NUL-terminated path; read into a buffer of the stated length; the fd is
    // ours and closed once.
    let n = unsafe {
        let fd = libc::open(
            c"/proc/self/statm".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return None;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    if n <= 0 {
        return None;
    }
    let mut pages = 0u64;
    for &b in &buf[..n as usize] {
        if !b.is_ascii_digit() {
            break;
        }
        pages = pages.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(pages.saturating_mul(PAGE.load(Ordering::Relaxed)))
}

extern "C" fn on_abort(_: libc::c_int) {
    let limit = LIMIT.load(Ordering::SeqCst);
    let slack = (limit / 8).max(8 << 20);
    if address_space().is_some_and(|used| used.saturating_add(slack) >= limit) {
        let f = ON_OOM.load(Ordering::SeqCst);
        if f != 0 {
            // SAFETY: the only value stored is a `fn()` cast to usize above.
            let f: fn() = unsafe { std::mem::transmute::<usize, fn()>(f) };
            f();
        }
    }
    // Returning: the disposition is back to the default (SA_RESETHAND), and abort()
    // raises SIGABRT again, which ends the process.
}
