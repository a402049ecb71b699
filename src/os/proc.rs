//! Process-level syscalls: fork, immediate exit, parent-death signal, fd hygiene, and
//! the thread count that decides whether `fork` is safe.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

/// Which side of a fork we are on.
pub enum Forked {
    /// In the parent; the child's pid.
    Parent(Pid),
    /// In the new child.
    Child,
}

use std::sync::atomic::AtomicU32;

static PID: AtomicU32 = AtomicU32::new(0);

/// This process's pid, cached (it is written into every frame's lock record, and
/// `getpid` is a syscall). Forks made through [`fork`] refresh it in the child.
pub fn pid() -> u32 {
    use std::sync::atomic::Ordering::Relaxed;
    match PID.load(Relaxed) {
        0 => {
            let p = std::process::id();
            PID.store(p, Relaxed);
            p
        }
        p => p,
    }
}

/// Forks the calling process.
///
/// The caller must know the process is single-threaded (the zygote, or a root checked
/// with [`thread_count`]): only then is the child's memory a consistent copy.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: every caller forks a single-threaded process (see above), so no lock held by
    // another thread can be copied in a locked state into the child.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        nix::unistd::ForkResult::Child => {
            PID.store(std::process::id(), std::sync::atomic::Ordering::Relaxed);
            Ok(Forked::Child)
        }
    }
}

/// Ends the process at once with `code`: no atexit handlers, no destructors. Used in
/// forked children, which must never run the parent's exit-time code.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and always sound to call.
    unsafe { libc::_exit(code) }
}

/// Number of threads in this process, from `/proc/self/task`.
pub fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// Asks the kernel to send `sig` to this process when its parent dies, and closes the race
/// where the parent died before the call: returns an error if the parent is already gone.
pub fn die_with_parent(sig: Signal, expected_parent: Pid) -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(sig).map_err(io::Error::from)?;
    if nix::unistd::getppid() != expected_parent {
        return Err(io::Error::other(
            "parent exited before the child was set up",
        ));
    }
    Ok(())
}

/// The signals a terminal or `timeout` sends to a whole process group.
const GROUP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Makes the zygote outlive a Ctrl-C or `timeout` aimed at the program's process group:
/// it must live until the root's end of its socket closes, to clean up after it.
pub fn ignore_group_signals() {
    for sig in GROUP_SIGNALS {
        // SAFETY: SIG_IGN installs no handler code; it is always sound.
        unsafe {
            let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn);
        }
    }
}

/// Unblocks every signal and restores the default dispositions the zygote changed.
pub fn reset_signals() {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    for sig in GROUP_SIGNALS {
        // SAFETY: SIG_DFL installs no handler code; it is always sound.
        unsafe {
            let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
        }
    }
}

/// Closes every fd >= 3 except those in `keep`. Used right after fork, so that a child
/// holds no end of another process's channel (which would defeat EOF detection).
///
/// One `close_range` per gap between kept fds (Linux 5.9+): the child of a zygote that
/// holds one fd per running actor closes them all in a few syscalls. Older kernels get
/// the listing of `/proc/self/fd` and one `close` per fd.
pub fn close_fds_except(keep: &[RawFd]) {
    let mut kept: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd > 2).collect();
    kept.sort_unstable();
    let mut first: RawFd = 3;
    let mut ranges_ok = true;
    for fd in kept.iter().copied().chain(std::iter::once(RawFd::MAX)) {
        if fd > first {
            let last = if fd == RawFd::MAX {
                u32::MAX
            } else {
                (fd - 1) as u32
            };
            // SAFETY: close_range takes plain integers. Right after fork, in a child that
            // never drops the parent's fd-owning objects (it leaves through exit_now or
            // exec), so nothing closes these fds twice.
            let rc = unsafe { libc::syscall(libc::SYS_close_range, first as u32, last, 0u32) };
            if rc != 0 {
                ranges_ok = false;
                break;
            }
        }
        first = fd.saturating_add(1);
    }
    if ranges_ok {
        return;
    }
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: as above.
            unsafe {
                libc::close(fd);
            }
        }
    }
}

/// Makes `cmd` keep `fd` open across its exec (it is CLOEXEC in this process, so no other
/// child started concurrently by another thread inherits it).
pub fn inherit_fd(cmd: &mut Command, fd: RawFd) {
    // SAFETY: the hook runs in the forked child before exec and only calls fcntl, which is
    // async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Ignores SIGPIPE (a write to a closed socket then fails with EPIPE instead of killing us);
/// the Rust runtime does this before `main`, and processes that never reach `main` need it too.
pub fn ignore_sigpipe() {
    // SAFETY: SIG_IGN installs no handler code; it is always sound.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn);
    }
}

/// Takes ownership of an fd this process inherited across exec, whose number arrived in an
/// environment variable set by our own parent.
pub fn take_inherited_fd(fd: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if fd < 3 || nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
        return Err(io::Error::other(format!("inherited fd {fd} is not open")));
    }
    // SAFETY: the fd is open (checked above), was created for us by our parent, and nothing
    // else in this freshly exec'd process knows its number, so we are its only owner.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Registers `f` to run when this process exits normally (return from `main` or
/// `std::process::exit`), once, however often this is called.
pub fn at_exit_once(f: extern "C" fn()) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `f` is a plain `extern "C" fn()` with no captured state, valid for the
        // whole life of the process; atexit only stores the pointer.
        unsafe {
            libc::atexit(f);
        }
    });
}

/// The short form of an actor's stable name that its process goes by in `ps -e`, `top`
/// and `/proc/<pid>/comm`: the last `::` segment, cut to the kernel's 15 bytes on a
/// character boundary.
pub fn short_process_name(actor: &str) -> String {
    let last = actor.rsplit("::").next().unwrap_or(actor);
    let mut end = last.len().min(15);
    while !last.is_char_boundary(end) {
        end -= 1;
    }
    last[..end].to_string()
}

/// Names this process (its calling thread's `comm`, which `ps -e` shows) after the actor
/// it runs (`PR_SET_NAME`). A name with a NUL byte is left as it is.
pub fn set_process_name(actor: &str) {
    if let Ok(name) = std::ffi::CString::new(short_process_name(actor)) {
        let _ = nix::sys::prctl::set_name(&name);
    }
}

/// `true` if process (or thread) `pid` exists and is not a zombie (a dead process not yet
/// reaped). It only reads `/proc`: `pid` may come from shared memory, so it is never
/// passed to `kill`, and values outside the kernel's pid range are simply not alive.
pub fn process_alive(pid: u32) -> bool {
    if pid == 0 || pid > (1 << 22) {
        return false;
    }
    // "pid (comm) S ...": the state follows the last ')'.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// When process `pid` started (clock ticks since boot, field 22 of `/proc/<pid>/stat`):
/// with the pid, it names one process for good, since a recycled pid has a later start.
pub fn start_time(pid: u32) -> Option<u64> {
    if pid == 0 || pid > (1 << 22) {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after "pid (comm)": state is field 3, starttime field 22.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process's start time (see [`start_time`]), cached; refreshed after [`fork`].
pub fn own_start_time() -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    static CACHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static FOR_PID: AtomicU32 = AtomicU32::new(0);
    let me = pid();
    if FOR_PID.load(Relaxed) == me {
        let t = CACHED.load(Relaxed);
        if t != 0 {
            return t;
        }
    }
    let t = start_time(me).unwrap_or(0);
    CACHED.store(t, Relaxed);
    FOR_PID.store(me, Relaxed);
    t
}

/// Whether the process that was `pid`, started at `start` (0: unknown), still lives: a
/// pid recycled for another process does not count. Only reads `/proc`.
pub fn identity_alive(pid: u32, start: u64) -> bool {
    if !process_alive(pid) {
        return false;
    }
    start == 0 || start_time(pid) == Some(start)
}

/// `true` if `pid` is alive and runs the same executable as this process: every process
/// of a procession runtime does (the zygote and actors are this binary), so an id that
/// names any other program is not one of ours.
pub fn runtime_process_alive(pid: u32) -> bool {
    static SELF_EXE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    if !process_alive(pid) {
        return false;
    }
    let me = SELF_EXE.get_or_init(|| std::fs::read_link("/proc/self/exe").ok());
    match (me, std::fs::read_link(format!("/proc/{pid}/exe"))) {
        (Some(me), Ok(exe)) => *me == exe,
        // Not readable (a kernel thread, another user's process): not one of ours.
        _ => false,
    }
}

/// The parent pid and process group of `pid` (fields 4 and 5 of `/proc/<pid>/stat`).
fn parent_and_group(pid: u32) -> Option<(u32, u32)> {
    if pid == 0 || pid > (1 << 22) {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(1);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// `true` if `pid` (read from shared memory by an inspector in another program) is a live
/// process of the runtime whose root is `root`: it runs the root's executable, and its
/// process group is the runtime's zygote, a child of `root` that leads its own group
/// (every actor joins that group). Only reads `/proc`; the pid is never signalled.
pub fn in_runtime_of(pid: u32, root: u32) -> bool {
    if pid == root || !process_alive(pid) || !process_alive(root) {
        return false;
    }
    let Some((_, group)) = parent_and_group(pid) else {
        return false;
    };
    if group == pid || group == root {
        return false;
    }
    let zygote_ok = parent_and_group(group).is_some_and(|(ppid, g)| ppid == root && g == group);
    let exe = |p: u32| std::fs::read_link(format!("/proc/{p}/exe")).ok();
    zygote_ok && exe(pid).is_some() && exe(pid) == exe(root)
}
