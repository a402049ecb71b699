//! The `forkserver` start method, and the zygote that serves it.
//!
//! The zygote is this same binary, re-executed with `PROCESSION_BOOT=zygote`; it diverges
//! before `main` (see [`bootstrap`](super::bootstrap)), so it is single-threaded and forking
//! it is safe. It forks actors on request (`forkserver`), or forks and re-executes the
//! binary (`spawn`). It is also the runtime's keeper:
//! - it reaps every actor it started, records the exit in the actor's mailbox, wakes the
//!   joiners and removes the mailbox file and the actor's reply inboxes;
//! - when the root process goes away — even by SIGKILL — its end of the control socket
//!   closes; the zygote then SIGKILLs every actor, reaps them and removes the runtime
//!   directory. Actors also carry `PR_SET_PDEATHSIG(SIGKILL)` bound to the zygote, so if
//!   the zygote itself is killed, they die with it.
//!
//! Requests travel as `u32` length + CBOR on unix stream sockets: the root's private
//! socketpair, or `zygote.sock` in the runtime directory for actors that spawn actors
//! (peers with another uid are refused).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::bootstrap::{run_child, ChildBoot};
use crate::error::{Error, Result};
use crate::mailbox::{remove_inboxes_of, HeldMailbox, Mailbox};
use crate::os::pidfd::PidFd;
use crate::os::proc::{
    close_fds_except, die_with_parent, exit_now, fork, inherit_fd, reset_signals,
    take_inherited_fd, Forked,
};
use crate::process::exit::Exit;
use crate::process::notice::{Down, Exited, DOWN_TAG, EXITED_TAG};
use crate::wire::{FrameHeader, FrameKind};

/// A request to the zygote.
#[derive(Debug, Serialize, Deserialize)]
enum Request {
    /// Start an actor.
    Spawn {
        boot: ChildBoot,
        /// Re-execute the binary in the child (`spawn` start method).
        exec: bool,
    },
    /// Signal the process that consumes this mailbox, if the zygote started it and it
    /// still runs. The zygote signals its own unreaped child, never a pid from memory
    /// that others can write. The reply comes once the signal is sent, so `kill`
    /// returns with the signal delivered, as `kill(2)` does.
    Signal { mailbox: u64, signal: i32 },
    /// What the zygote knows of the consumer of this mailbox.
    Status { mailbox: u64 },
    /// A process forked an actor itself (`fork` start method): it hands the zygote a
    /// pidfd of it (attached with `SCM_RIGHTS`), so any process can signal that actor
    /// through the zygote.
    Adopt { mailbox: u64, pid: u32 },
}

/// The zygote's answer.
#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Spawned {
        pid: u32,
    },
    Failed {
        message: String,
        /// The OS error behind it, to tell a process limit by.
        #[serde(default)]
        errno: Option<i32>,
    },
    /// `Signal`: the process was signalled (`true`) or no process of the zygote's
    /// consumes that mailbox now (`false`).
    Signalled(bool),
    Status(ConsumerStatus),
}

/// The zygote's own record of a mailbox's consumer, kept apart from the mailbox file (so
/// a file that was written over cannot hide an exit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsumerStatus {
    /// A process started by the zygote consumes it now.
    Running {
        /// Its pid.
        pid: u32,
    },
    /// Its last consumer exited like this, and none runs now.
    Exited {
        /// The pid that exited.
        pid: u32,
        /// How.
        exit: Exit,
    },
    /// The zygote started no consumer for it (or forgot it: the record is bounded).
    Unknown,
}

const MAX_REQUEST: u32 = 1 << 30;

fn write_msg<T: Serialize>(conn: &mut UnixStream, msg: &T) -> io::Result<()> {
    let mut buf = vec![0u8; 4];
    crate::wire::encode_body(msg, &mut buf).map_err(io::Error::other)?;
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_le_bytes());
    conn.write_all(&buf)
}

fn read_msg<T: serde::de::DeserializeOwned>(conn: &mut UnixStream) -> io::Result<T> {
    let mut len = [0u8; 4];
    conn.read_exact(&mut len)?;
    read_body(conn, len)
}

/// Reads a request and the fd attached to it, if any (`SCM_RIGHTS` arrives with the
/// first byte of the message that carried it).
fn read_request(conn: &mut UnixStream) -> io::Result<(Request, Option<OwnedFd>)> {
    let mut len = [0u8; 4];
    let mut got = 0;
    let mut fd = None;
    while got < 4 {
        let (n, passed) = crate::os::fdpass::recv_with_fd(conn, &mut len[got..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
        if fd.is_none() {
            fd = passed;
        }
    }
    Ok((read_body(conn, len)?, fd))
}

fn read_body<T: serde::de::DeserializeOwned>(conn: &mut UnixStream, len: [u8; 4]) -> io::Result<T> {
    let len = u32::from_le_bytes(len);
    if len > MAX_REQUEST {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "request too large",
        ));
    }
    let mut body = vec![0u8; len as usize];
    conn.read_exact(&mut body)?;
    crate::wire::decode_body(&body, "zygote message").map_err(io::Error::other)
}

/// A connection to the zygote.
#[derive(Debug)]
pub struct ZygoteClient {
    conn: UnixStream,
    /// Only the root holds this: the zygote is its child.
    process: Option<std::process::Child>,
    /// The root's pidfd of the zygote, opened while it was an unreaped child.
    pidfd: Option<PidFd>,
}

impl ZygoteClient {
    /// Starts the zygote (root process only).
    pub fn start(dir: &Path) -> Result<ZygoteClient> {
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| Error::io("cannot create the zygote socket", e))?;
        let mut cmd = Command::new("/proc/self/exe");
        if let Some(arg0) = std::env::args_os().next() {
            std::os::unix::process::CommandExt::arg0(&mut cmd, arg0);
        }
        cmd.arg("--procession-zygote")
            .env("PROCESSION_BOOT", "zygote")
            .env("PROCESSION_BOOT_FD", theirs.as_raw_fd().to_string())
            .env("PROCESSION_RUNTIME_DIR", dir)
            .stdin(std::process::Stdio::null());
        // A process group of its own, which its actors inherit: the signals a terminal
        // or an orchestrator sends to the program's group reach the root only, which
        // stops the trees in order (see `process::signals`).
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        inherit_fd(&mut cmd, theirs.as_raw_fd());
        let process = cmd.spawn().map_err(|e| {
            Error::fork_failed("cannot start the zygote (re-executing this binary)", e)
        })?;
        drop(theirs);
        // Our own child, not reaped: its pid cannot have been recycled yet. (A kernel
        // without pidfds, before 5.3, still has the socket's hang-up to tell.)
        let pidfd = PidFd::open(process.id())
            .map_err(
                |e| tracing::warn!(error = %e, "no pidfd for the zygote; watching its socket only"),
            )
            .ok();
        tracing::debug!(pid = process.id(), dir = %dir.display(), "zygote started");
        Ok(ZygoteClient {
            conn: ours,
            process: Some(process),
            pidfd,
        })
    }

    /// Connects to the runtime's zygote from an actor process.
    pub fn connect(dir: &Path) -> Result<ZygoteClient> {
        let conn = UnixStream::connect(dir.join("zygote.sock"))
            .map_err(|e| Error::io("cannot reach the zygote", e))?;
        Ok(ZygoteClient {
            conn,
            process: None,
            pidfd: None,
        })
    }

    fn request(&mut self, req: &Request) -> Result<Reply> {
        let io_err = |e| Error::io("the zygote did not answer (did it die?)", e);
        write_msg(&mut self.conn, req).map_err(io_err)?;
        read_msg(&mut self.conn).map_err(io_err)
    }

    /// Asks the zygote to start an actor; returns its pid.
    pub fn spawn(&mut self, boot: ChildBoot, exec: bool) -> Result<u32> {
        match self.request(&Request::Spawn { boot, exec })? {
            Reply::Spawned { pid } => Ok(pid),
            Reply::Failed {
                errno: Some(errno),
                message,
            } => Err(Error::fork_failed(
                message,
                std::io::Error::from_raw_os_error(errno),
            )),
            Reply::Failed { message, .. } => Err(Error::Runtime(message)),
            other => Err(Error::Runtime(format!("unexpected zygote reply {other:?}"))),
        }
    }

    /// Asks the zygote to signal the consumer of `mailbox`; `false` if none of its
    /// processes (nor a fork child handed to it) consumes it now.
    pub fn signal(&mut self, mailbox: u64, signal: Signal) -> Result<bool> {
        match self.request(&Request::Signal {
            mailbox,
            signal: signal as i32,
        })? {
            Reply::Signalled(done) => Ok(done),
            other => Err(Error::Runtime(format!("unexpected zygote reply {other:?}"))),
        }
    }

    /// Hands the zygote a pidfd of an actor this process forked itself, so that any
    /// process can signal it through the zygote.
    pub fn adopt(&mut self, mailbox: u64, pidfd: &PidFd) -> Result<()> {
        let io_err = |e| Error::io("cannot hand the zygote a pidfd (did it die?)", e);
        let mut buf = vec![0u8; 4];
        crate::wire::encode_body(
            &Request::Adopt {
                mailbox,
                pid: pidfd.pid(),
            },
            &mut buf,
        )
        .map_err(|e| Error::io("cannot encode a zygote request", io::Error::other(e)))?;
        let len = (buf.len() - 4) as u32;
        buf[..4].copy_from_slice(&len.to_le_bytes());
        crate::os::fdpass::send_with_fd(&self.conn, &buf, pidfd.as_fd()).map_err(io_err)?;
        match read_msg(&mut self.conn).map_err(io_err)? {
            Reply::Signalled(_) => Ok(()),
            other => Err(Error::Runtime(format!("unexpected zygote reply {other:?}"))),
        }
    }

    /// The zygote's own record of the consumer of `mailbox`.
    pub fn status(&mut self, mailbox: u64) -> Result<ConsumerStatus> {
        match self.request(&Request::Status { mailbox })? {
            Reply::Status(s) => Ok(s),
            other => Err(Error::Runtime(format!("unexpected zygote reply {other:?}"))),
        }
    }

    /// Whether the zygote is dead (root only: its pidfd is readable, or its socket hung
    /// up). Never waits.
    pub fn is_dead(&self) -> bool {
        if self.process.is_none() {
            return false;
        }
        let mut fds = vec![PollFd::new(self.conn.as_fd(), PollFlags::empty())];
        if let Some(pidfd) = &self.pidfd {
            fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => fds.iter().any(|f| {
                f.revents().is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                })
            }),
            _ => false,
        }
    }

    /// The zygote's pid (root only; for logs and tests).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(std::process::Child::id)
    }

    /// Reaps the (dead) zygote (root only).
    pub fn reap(self) {
        if let Some(mut p) = self.process {
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    /// Drops the connection without waiting for the zygote (in a forked child).
    pub fn forget(self) {
        if let Some(p) = self.process {
            std::mem::forget(p);
        }
    }
}

// ------------------------------------------------------------------------------------
// The zygote side.

struct Zygote {
    dir: PathBuf,
    me: Pid,
    children: HashMap<i32, ChildRecord>,
    /// The last exit of each mailbox's consumer, kept by the zygote itself (bounded).
    exits: HashMap<u64, (u32, Exit)>,
    /// Pidfds of actors that other processes forked (`fork` start method), by mailbox.
    foreign: HashMap<u64, PidFd>,
}

/// Exit records kept for mailboxes that have no running consumer.
const EXIT_RECORDS: usize = 8192;

/// What the zygote knows of each actor it started.
struct ChildRecord {
    mailbox: u64,
    /// What the zygote read from the mailbox when the actor was started (while the file
    /// was known good): its exit is published through a mapping made with those sizes
    /// even if the file's header is written over later. Plain data, so a fork copies no
    /// mapping or fd per running actor.
    mb: Option<HeldMailbox>,
    /// The process that asked for it: its logical parent. When the parent dies, the
    /// child is killed (no orphans, whatever the start method or the parent's death).
    parent: i32,
    /// Its parent died; no incarnation will follow this one.
    orphaned: bool,
}

/// The zygote's main loop. Never returns.
pub fn zygote_main(control_fd: i32, dir: PathBuf) -> ! {
    match serve(control_fd, dir) {
        Ok(()) => exit_now(0),
        Err(e) => {
            eprintln!("procession zygote: {e}");
            exit_now(1)
        }
    }
}

/// Starts the janitor: a tiny process that waits for the zygote to end, however it ends,
/// and then removes the runtime directory. A zygote that dies by SIGKILL cannot clean up
/// after itself; the janitor does, even while the root is idle.
fn start_janitor(dir: &Path) -> io::Result<OwnedFd> {
    let (read_end, write_end) = nix::unistd::pipe().map_err(io::Error::from)?;
    match fork()? {
        Forked::Parent(_) => {
            drop(read_end);
            Ok(write_end)
        }
        Forked::Child => {
            close_fds_except(&[read_end.as_raw_fd()]);
            // Hold no terminal or pipe of the program's: a reader of the program's output
            // must see its end when the program ends.
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                for fd in 0..3 {
                    let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
                }
            }
            let mut byte = [0u8; 1];
            let mut pipe = std::fs::File::from(read_end);
            // Returns (EOF) when the zygote's end closes: it exited or was killed.
            let _ = pipe.read(&mut byte);
            let _ = std::fs::remove_dir_all(dir);
            exit_now(0)
        }
    }
}

fn serve(control_fd: i32, dir: PathBuf) -> io::Result<()> {
    let mut control = UnixStream::from(take_inherited_fd(control_fd)?);
    crate::os::proc::ignore_group_signals();
    let janitor = start_janitor(&dir)?;
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(io::Error::from)?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(io::Error::from)?;
    let listener = UnixListener::bind(dir.join("zygote.sock"))?;
    listener.set_nonblocking(true)?;
    let mut z = Zygote {
        dir,
        me: nix::unistd::getpid(),
        children: HashMap::new(),
        exits: HashMap::new(),
        foreign: HashMap::new(),
    };
    let mut conns: Vec<UnixStream> = Vec::new();
    tracing::debug!(pid = z.me.as_raw(), "zygote ready");
    loop {
        let (control_ready, listener_ready, sig_ready, ready_conns) = {
            let mut fds = vec![
                PollFd::new(control.as_fd(), PollFlags::POLLIN),
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            ];
            fds.extend(
                conns
                    .iter()
                    .map(|c| PollFd::new(c.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            let ready_conns: Vec<usize> = (3..fds.len())
                .filter(|&i| ready(&fds[i]))
                .map(|i| i - 3)
                .collect();
            (ready(&fds[0]), ready(&fds[1]), ready(&fds[2]), ready_conns)
        };
        if sig_ready {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            z.reap();
        }
        if control_ready && z.handle(&mut control).is_err() {
            // The root is gone (EOF) or broken: take the whole runtime down.
            z.shutdown();
            drop(janitor);
            return Ok(());
        }
        for i in ready_conns.into_iter().rev() {
            if z.handle(&mut conns[i]).is_err() {
                conns.swap_remove(i);
            }
        }
        if listener_ready {
            while let Ok((conn, _)) = listener.accept() {
                if peer_is_us(&conn) {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
                    conns.push(conn);
                } else {
                    tracing::warn!("refused a zygote connection from another user");
                }
            }
        }
    }
}

fn peer_pid(conn: &UnixStream) -> i32 {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(conn, PeerCredentials).map_or(0, |c| c.pid())
}

fn peer_is_us(conn: &UnixStream) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(conn, PeerCredentials)
        .map(|c| c.uid() == nix::unistd::geteuid().as_raw())
        .unwrap_or(false)
}

impl Zygote {
    fn handle(&mut self, conn: &mut UnixStream) -> io::Result<()> {
        let (request, fd) = read_request(conn)?;
        let reply = match request {
            Request::Adopt { mailbox, pid } => {
                let Some(fd) = fd else {
                    return write_msg(conn, &Reply::Signalled(false));
                };
                self.foreign.retain(|_, p| !p.has_exited());
                self.foreign.insert(mailbox, PidFd::from_received(fd, pid));
                Reply::Signalled(true)
            }
            Request::Spawn { boot, exec } => {
                let mailbox = boot.mailbox_id;
                let reply = self.spawn(boot, exec, peer_pid(conn));
                write_msg(conn, &reply)?;
                // Check the mailbox now (off the requester's critical path), while it is
                // known good: its exit is published with the sizes read now.
                if let Reply::Spawned { pid } = reply {
                    if let Some(rec) = self.children.get_mut(&(pid as i32)) {
                        rec.mb = Mailbox::hold(&self.dir, mailbox).ok();
                    }
                }
                return Ok(());
            }
            Request::Signal { mailbox, signal } => {
                let sig = Signal::try_from(signal).ok();
                Reply::Signalled(sig.is_some_and(|sig| self.signal_mailbox(mailbox, sig)))
            }
            Request::Status { mailbox } => Reply::Status(self.status(mailbox)),
        };
        write_msg(conn, &reply)
    }

    fn spawn(&mut self, boot: ChildBoot, exec: bool, parent: i32) -> Reply {
        let mailbox = boot.mailbox_id;
        match self.fork_child(boot, exec) {
            Ok(pid) => {
                self.children.insert(
                    pid,
                    ChildRecord {
                        mailbox,
                        mb: None,
                        parent,
                        orphaned: false,
                    },
                );
                Reply::Spawned { pid: pid as u32 }
            }
            Err(e) => Reply::Failed {
                message: "the zygote could not fork".into(),
                errno: e.raw_os_error(),
            },
        }
    }

    /// The running child that consumes `mailbox`, if any.
    fn consumer_of(&self, mailbox: u64) -> Option<i32> {
        self.children
            .iter()
            .find(|(_, r)| r.mailbox == mailbox)
            .map(|(&pid, _)| pid)
    }

    /// Signals the consumer of `mailbox`: our own child, not reaped yet (reaping happens
    /// on this same thread), so its pid cannot have been recycled.
    fn signal_mailbox(&self, mailbox: u64, sig: Signal) -> bool {
        match self.consumer_of(mailbox) {
            Some(pid) => kill(Pid::from_raw(pid), sig).is_ok(),
            // An actor another process forked: through the pidfd it handed us.
            None => self
                .foreign
                .get(&mailbox)
                .is_some_and(|p| !p.has_exited() && p.signal(sig).is_ok()),
        }
    }

    fn status(&self, mailbox: u64) -> ConsumerStatus {
        if let Some(pid) = self.consumer_of(mailbox) {
            return ConsumerStatus::Running { pid: pid as u32 };
        }
        match self.exits.get(&mailbox) {
            Some((pid, exit)) => ConsumerStatus::Exited {
                pid: *pid,
                exit: exit.clone(),
            },
            None => ConsumerStatus::Unknown,
        }
    }

    fn fork_child(&mut self, boot: ChildBoot, exec: bool) -> io::Result<i32> {
        match fork()? {
            Forked::Parent(pid) => Ok(pid.as_raw()),
            Forked::Child => {
                // The zygote's records of the other actors are not the child's business.
                // Their pidfds are closed just below, all at once.
                // Forgetting the maps, rather than dropping them or walking their
                // entries, touches none of their pages: no copy-on-write fault per actor.
                std::mem::forget(std::mem::take(&mut self.children));
                std::mem::forget(std::mem::take(&mut self.foreign));
                close_fds_except(&[]);
                reset_signals();
                if die_with_parent(Signal::SIGKILL, self.me).is_err() {
                    exit_now(1);
                }
                if exec {
                    exec_actor(&boot)
                } else {
                    run_child(boot)
                }
            }
        }
    }

    /// Reaps every exited child and publishes its exit.
    fn reap(&mut self) {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        loop {
            let (pid, signal, status) = match waitid(Id::All, flags) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, None, code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Some(sig as i32), 0),
                _ => return,
            };
            // The pid stays reserved (a zombie) until the waitpid below, so nobody can
            // signal a recycled pid while the exit is being published.
            if let Some(rec) = self.children.remove(&pid.as_raw()) {
                let mapped = rec.mb.as_ref().and_then(|held| held.map().ok());
                let exit = {
                    let kill_consumer =
                        |mailbox: u64| self.signal_mailbox(mailbox, Signal::SIGKILL);
                    publish(
                        &self.dir,
                        rec.mailbox,
                        mapped.as_ref(),
                        pid.as_raw() as u32,
                        signal,
                        status,
                        rec.orphaned,
                        &kill_consumer,
                    )
                };
                if self.exits.len() >= EXIT_RECORDS {
                    self.exits.clear();
                }
                self.exits.insert(rec.mailbox, (pid.as_raw() as u32, exit));
            }
            let _ = waitpid(pid, None);
            self.kill_children_of(pid.as_raw());
        }
    }

    /// A process died: its logical children die too (and theirs, as they are reaped).
    fn kill_children_of(&mut self, parent: i32) {
        for (&pid, rec) in self.children.iter_mut().filter(|(_, r)| r.parent == parent) {
            rec.orphaned = true;
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// The root went away: kill every actor, reap them, remove the runtime directory.
    fn shutdown(&mut self) {
        for &pid in self.children.keys() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for (pid, _) in self.children.drain() {
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Records a reaped child's exit in its mailbox (through `mapped`, the caller's own
/// mapping taken while the file was known good, if it has one), removes what it leaves
/// behind, and tells its watchers. `orphaned`: its logical parent is gone, so even a
/// supervised mailbox will see no further incarnation. `kill_consumer` kills the
/// consumer of a mailbox (for links) without reading any pid from shared memory.
#[allow(clippy::too_many_arguments)]
pub fn publish(
    dir: &Path,
    mailbox_id: u64,
    mapped: Option<&Mailbox>,
    pid: u32,
    signal: Option<i32>,
    status: i32,
    orphaned: bool,
    kill_consumer: &dyn Fn(u64) -> bool,
) -> Exit {
    // Files first, exit second: whoever join() wakes must find nothing left behind.
    remove_inboxes_of(dir, pid);
    crate::shared::release_holds_of(dir, pid);
    let opened;
    let mb = match mapped {
        Some(mb) => mb,
        None => match Mailbox::open(dir, mailbox_id) {
            Ok(mb) => {
                opened = mb;
                &*opened
            }
            Err(e) => {
                tracing::error!(mailbox = format_args!("{mailbox_id:016x}"), pid, error = %e, "an actor exited but its mailbox cannot be mapped to record it");
                return Exit::from_wait(signal, status);
            }
        },
    };
    // A child whose supervisor died keeps its mailbox if that mailbox belongs to a place
    // in the tree and the supervisor may come back (it is not final): the supervisor's
    // next incarnation adopts it, with everything queued in it.
    let kept_for_adoption = orphaned && crate::mailbox::is_tree_id(mailbox_id) && !mb.is_final();
    if orphaned && !kept_for_adoption {
        mb.set_supervised(false);
    }
    if !mb.is_supervised() {
        mb.unlink();
        super::names::release_names_of(dir, mailbox_id);
        crate::mailbox::finalize_tree(dir, mailbox_id);
    }
    // Take the watchers before the exit is visible: a supervisor that sees the exit may
    // restart the actor and register itself again at once, and that new registration
    // belongs to the next incarnation.
    let watchers = mb.take_watchers();
    mb.publish_exit(signal, status);
    let exit = Exit::from_raw(mb.raw_exit());
    if exit.is_clean() {
        tracing::info!(actor = mb.actor_name(), pid, %exit, "actor exited");
    } else {
        tracing::warn!(actor = mb.actor_name(), pid, %exit, "actor exited");
    }
    notify_watchers(dir, mb, watchers, pid, &exit, kill_consumer);
    exit
}

/// Delivers `Down` to monitors. Links follow OTP: a linked actor that traps exits gets
/// `Exited` for every exit; one that does not is killed unless the exit is normal
/// ([`Exit::is_normal`]). A linked actor is killed through `kill_consumer`,
/// which finds its process by its mailbox in the killer's own records.
pub fn notify_watchers(
    dir: &Path,
    mb: &Mailbox,
    watchers: Vec<(u64, bool)>,
    pid: u32,
    exit: &Exit,
    kill_consumer: &dyn Fn(u64) -> bool,
) {
    for (watcher_id, link) in watchers {
        let Ok(watcher) = Mailbox::open(dir, watcher_id) else {
            continue;
        };
        if !link {
            let down = Down {
                id: mb.id(),
                actor: mb.actor_name().to_string(),
                pid,
                exit: exit.clone(),
            };
            send_notice(&watcher, DOWN_TAG, &down);
        } else if watcher.traps_exits() {
            // OTP: a trapping process gets an exit message for every exit, normal too.
            let exited = Exited {
                id: mb.id(),
                actor: mb.actor_name().to_string(),
                pid,
                exit: exit.clone(),
            };
            send_notice(&watcher, EXITED_TAG, &exited);
        } else if !exit.is_normal() {
            // A non-trapping one dies for every reason but `normal`; `shutdown` included.
            if watcher.state() == crate::mailbox::STATE_RUNNING {
                watcher.record_exit(
                    crate::mailbox::ExitKind::Linked,
                    0,
                    &format!(
                        "linked actor {} (pid {pid}) exited: {exit}",
                        mb.actor_name()
                    ),
                );
                kill_consumer(watcher_id);
            }
        }
    }
}

/// Sends a notice as an ordinary tell; waits at most a second for room, so a full
/// mailbox cannot stall the reaper. A notice that does not fit is logged.
pub fn send_notice<T: Serialize>(to: &Mailbox, tag: &'static str, body: &T) {
    let mut frame = Vec::new();
    FrameHeader {
        kind: FrameKind::Tell,
        tag: crate::wire::tag_id(tag),
        corr: 0,
        reply_to: 0,
    }
    .write_into(&mut frame);
    if crate::wire::encode_body(body, &mut frame).is_err() || FrameHeader::seal(&mut frame).is_err()
    {
        return;
    }
    let wait = crate::mailbox::Wait::from_timeout(Some(Duration::from_secs(1)));
    if let Err(e) = to.send(&frame, wait) {
        tracing::warn!(
            to = to.actor_name(),
            tag,
            ?e,
            "a notice could not be delivered"
        );
    }
}

/// The `spawn` start method, in a freshly forked zygote child: re-execute the binary with
/// the boot record in a memfd. Never returns.
fn exec_actor(boot: &ChildBoot) -> ! {
    let result = (|| -> io::Result<std::convert::Infallible> {
        use std::ffi::CString;
        use std::io::Seek;
        use std::os::unix::ffi::OsStrExt;
        let fd: OwnedFd = nix::sys::memfd::memfd_create(
            c"procession-boot",
            nix::sys::memfd::MemFdCreateFlag::empty(),
        )
        .map_err(io::Error::from)?;
        let mut file = std::fs::File::from(fd);
        let mut bytes = Vec::new();
        crate::wire::encode_body(boot, &mut bytes).map_err(io::Error::other)?;
        file.write_all(&bytes)?;
        file.rewind()?;
        let fd = file.into_raw_fd();
        let cstr = |b: &[u8]| CString::new(b).map_err(io::Error::other);
        let mut env: Vec<CString> = std::env::vars_os()
            .map(|(k, v)| cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect::<io::Result<_>>()?;
        env.push(cstr(b"PROCESSION_BOOT=actor")?);
        env.push(cstr(format!("PROCESSION_BOOT_FD={fd}").as_bytes())?);
        let arg0 = std::env::args_os().next().unwrap_or_default();
        let argv = [cstr(arg0.as_bytes())?, cstr(b"--procession-actor")?];
        match nix::unistd::execve(c"/proc/self/exe", &argv, &env) {
            Err(e) => Err(io::Error::from(e)),
            Ok(never) => match never {},
        }
    })();
    let Err(e) = result;
    eprintln!("procession: cannot re-execute for the spawn start method: {e}");
    exit_now(super::bootstrap::EXIT_BOOT_FAILED)
}
