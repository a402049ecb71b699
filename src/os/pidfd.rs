//! Process file descriptors: a handle on one process that stays bound to it, so signalling
//! through it can never hit a recycled pid, and polling it tells when the process ends.
//!
//! procession signals a process only through a pidfd (or as the parent of an unreaped
//! child, whose pid cannot be recycled). It never signals a pid read from shared memory.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::signal::Signal;

/// An open pidfd.
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
    pid: u32,
}

impl PidFd {
    /// Opens a pidfd for `pid`. Only call it for a process whose pid cannot have been
    /// recycled: a child of the caller that is not reaped yet (or the caller itself).
    pub fn open(pid: u32) -> io::Result<PidFd> {
        if pid == 0 || pid > i32::MAX as u32 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a pid"));
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory
        // is passed. PIDFD_NONBLOCK is not needed: we only poll and signal.
        let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0u32) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd to us; nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(rc as i32) };
        Ok(PidFd { fd, pid })
    }

    /// The pid it was opened for (for logs; do not signal it directly).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Takes a pidfd received from another process (through `SCM_RIGHTS`); `pid` is what
    /// the sender said it is for (used in logs only).
    pub fn from_received(fd: OwnedFd, pid: u32) -> PidFd {
        PidFd { fd, pid }
    }

    /// Sends `signal` to the process. Ends with `Ok` if the process has already exited.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, a null siginfo
        // (the kernel fills it in as for kill) and no flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal as i32,
                std::ptr::null::<libc::siginfo_t>(),
                0u32,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Ok(());
            }
            return Err(e);
        }
        Ok(())
    }

    /// Whether the process has exited (the pidfd is readable), without waiting.
    pub fn has_exited(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfd_of_a_child_reports_its_exit_and_survives_its_reaping() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pfd = PidFd::open(child.id()).unwrap();
        assert!(!pfd.has_exited());
        pfd.signal(Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        assert!(pfd.has_exited());
        // Signalling an exited (and reaped) process through its pidfd is harmless.
        pfd.signal(Signal::SIGKILL).unwrap();
    }

    #[test]
    fn impossible_pids_are_refused() {
        assert!(PidFd::open(0).is_err());
        assert!(PidFd::open(u32::MAX).is_err());
    }
}
