//! The `fork` start method: the calling process forks itself, and the child becomes the
//! actor. Refused with [`Error::ForkUnsafe`] when the caller has more than one thread (a
//! fork would copy other threads' locks in whatever state they were). The child carries
//! `PR_SET_PDEATHSIG(SIGKILL)`; as the caller is single-threaded, that fires when the
//! caller's process ends.
//!
//! Fork children are this process's own children, so this process reaps them: lazily,
//! whenever it spawns, joins or checks liveness. Until then, another process that joins a
//! fork child killed by a signal waits for that reaping.

use std::sync::{Arc, Mutex};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::bootstrap::{run_child, ChildBoot};
use crate::error::{Error, Result};
use crate::mailbox::Mailbox;
use crate::os::proc::{die_with_parent, exit_now, fork, thread_count, Forked};

static CHILDREN: Mutex<Vec<(Pid, Arc<Mailbox>)>> = Mutex::new(Vec::new());

/// Forks the actor described by `boot`; returns its pid.
pub fn start(boot: ChildBoot, mailbox: &Arc<Mailbox>) -> Result<u32> {
    let threads =
        thread_count().map_err(|e| Error::io("cannot count this process's threads", e))?;
    if threads > 1 {
        return Err(Error::ForkUnsafe { threads });
    }
    let parent = nix::unistd::getpid();
    match fork().map_err(|e| Error::io("fork failed", e))? {
        Forked::Parent(pid) => {
            CHILDREN
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((pid, mailbox.clone()));
            Ok(pid.as_raw() as u32)
        }
        Forked::Child => {
            if let Some(rt) = super::runtime::current() {
                rt.forget_in_fork_child();
            }
            CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).clear();
            super::forget_non_daemons();
            if die_with_parent(Signal::SIGKILL, parent).is_err() {
                exit_now(1);
            }
            run_child(boot)
        }
    }
}

/// Whether this process has fork children not yet reaped.
pub fn has_children() -> bool {
    !CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_empty()
}

/// Reaps fork children that have exited and publishes their exits.
pub fn reap() {
    let mut children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    if children.is_empty() {
        return;
    }
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    children.retain(|(pid, mb)| {
        let (signal, status) = match waitid(Id::Pid(*pid), flags) {
            Ok(WaitStatus::Exited(_, code)) => (None, code),
            Ok(WaitStatus::Signaled(_, sig, _)) => (Some(sig as i32), 0),
            Ok(_) => return true,
            Err(_) => (None, 0),
        };
        if let Some(rt) = super::runtime::current() {
            super::forkserver::publish(
                rt.dir(),
                mb.id(),
                pid.as_raw() as u32,
                signal,
                status,
                false,
            );
        }
        let _ = waitpid(*pid, None);
        false
    });
}
