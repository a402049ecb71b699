//! The `fork` start method: the calling process forks itself, and the child becomes the
//! actor. Refused with [`Error::ForkUnsafe`] when the caller has more than one thread (a
//! fork would copy other threads' locks in whatever state they were). The child carries
//! `PR_SET_PDEATHSIG(SIGKILL)`; as the caller is single-threaded, that fires when the
//! caller's process ends.
//!
//! Fork children are this process's own children, so this process reaps them: lazily,
//! whenever it spawns, joins or checks liveness. Until then, another process that joins a
//! fork child killed by a signal waits for that reaping.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::bootstrap::{run_child, ChildBoot};
use crate::error::{Error, Result};
use crate::mailbox::Mailbox;
use crate::os::proc::{die_with_parent, exit_now, fork, thread_count, Forked};

static CHILDREN: Mutex<Vec<(Pid, Arc<Mailbox>)>> = Mutex::new(Vec::new());
/// Whether `CHILDREN` is non-empty, kept beside it (set under its lock): an actor's loop
/// asks before every receive, and a lock per message costs more than the message.
static HAS_CHILDREN: AtomicBool = AtomicBool::new(false);

fn children() -> MutexGuard<'static, Vec<(Pid, Arc<Mailbox>)>> {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Applies `f` to the list of children, then records whether any are left.
fn update_children<R>(f: impl FnOnce(&mut Vec<(Pid, Arc<Mailbox>)>) -> R) -> R {
    let mut children = children();
    let r = f(&mut children);
    HAS_CHILDREN.store(!children.is_empty(), Relaxed);
    r
}

/// Forks the actor described by `boot`; returns its pid.
pub fn start(boot: ChildBoot, mailbox: &Arc<Mailbox>) -> Result<u32> {
    let threads =
        thread_count().map_err(|e| Error::io("cannot count this process's threads", e))?;
    // The signal thread of a root is parked in a read of its self-pipe, holding no lock
    // a child could need: it does not make forking unsafe. (Once a signal has started a
    // shutdown, it works, and nothing new is forked.)
    let ours = usize::from(super::watcher_running());
    if super::shutting_down() {
        return Err(Error::Runtime(
            "the program is shutting down on a signal".into(),
        ));
    }
    if threads > 1 + ours {
        return Err(Error::ForkUnsafe { threads });
    }
    // A child of the root joins the zygote's process group, as every other actor is in,
    // so that a Ctrl-C aimed at the program's group reaches the root only.
    let group = super::runtime::current()
        .filter(|rt| rt.is_root())
        .and_then(|rt| rt.zygote().ok()?.as_ref()?.pid());
    let parent = nix::unistd::getpid();
    match fork().map_err(|e| Error::fork_failed("fork failed", e))? {
        Forked::Parent(pid) => {
            update_children(|c| c.push((pid, mailbox.clone())));
            // Our own unreaped child, so its pid is its own: hand the zygote a pidfd, so
            // that other processes can signal it through the zygote (never by a pid
            // read from the mailbox).
            let adopted = super::pidfd_to_zygote(mailbox.id(), pid.as_raw() as u32);
            if let Err(e) = adopted {
                tracing::warn!(pid = pid.as_raw(), error = %e, "the zygote cannot signal this fork child for other processes");
            }
            Ok(pid.as_raw() as u32)
        }
        Forked::Child => {
            if let Some(rt) = super::runtime::current() {
                rt.forget_in_fork_child();
            }
            update_children(Vec::clear);
            super::forget_non_daemons();
            if die_with_parent(Signal::SIGKILL, parent).is_err() {
                exit_now(1);
            }
            if let Some(zygote) = group {
                let zygote = nix::unistd::Pid::from_raw(zygote as i32);
                if let Err(e) = nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), zygote) {
                    tracing::warn!(error = %e, "cannot join the zygote's process group; a Ctrl-C to the program reaches this actor");
                }
            }
            super::signals::forget_in_fork_child();
            crate::os::proc::reset_signals();
            run_child(boot)
        }
    }
}

/// Whether this process has fork children not yet reaped.
pub fn has_children() -> bool {
    HAS_CHILDREN.load(Relaxed)
}

/// Reaps fork children that have exited and publishes their exits.
pub fn reap() {
    if !has_children() {
        return;
    }
    let mut exited = Vec::new();
    update_children(|children| {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        children.retain(|(pid, mb)| {
            let (signal, status) = match waitid(Id::Pid(*pid), flags) {
                Ok(WaitStatus::Exited(_, code)) => (None, code),
                Ok(WaitStatus::Signaled(_, sig, _)) => (Some(sig as i32), 0),
                Ok(_) => return true,
                Err(_) => (None, 0),
            };
            exited.push((*pid, mb.clone(), signal, status));
            false
        });
    });
    for (pid, mb, signal, status) in exited {
        // Still a zombie (WNOWAIT): its pid is not recycled while the exit is published.
        if let Some(rt) = super::runtime::current() {
            super::forkserver::publish(
                rt.dir(),
                mb.id(),
                Some(&mb),
                pid.as_raw() as u32,
                signal,
                status,
                false,
                &kill_consumer,
            );
        }
        let _ = waitpid(pid, None);
    }
}

/// Whether a fork child of this process, not reaped yet, consumes `mailbox`.
pub fn is_child(mailbox: u64) -> bool {
    children().iter().any(|(_, mb)| mb.id() == mailbox)
}

/// Signals the fork child of this process that consumes `mailbox`; `false` if none does.
/// The child is not reaped while it is listed, so its pid is still its own.
pub fn signal_child(mailbox: u64, signal: Signal) -> bool {
    let children = children();
    match children.iter().find(|(_, mb)| mb.id() == mailbox) {
        Some((pid, _)) => nix::sys::signal::kill(*pid, signal).is_ok(),
        None => false,
    }
}

/// Kills the consumer of `mailbox`: a fork child of this process, or through the zygote.
pub fn kill_consumer(mailbox: u64) -> bool {
    signal_child(mailbox, Signal::SIGKILL) || super::signal_consumer(mailbox, Signal::SIGKILL)
}

/// Kills every fork child of this process (its runtime was lost) and reaps them.
pub fn kill_all() {
    let children = update_children(std::mem::take);
    for (pid, _) in &children {
        let _ = nix::sys::signal::kill(*pid, Signal::SIGKILL);
    }
    for (pid, _) in children {
        let _ = waitpid(pid, None);
    }
}
