//! [`ActorStats`]: an actor's counters, readable from any process, and
//! [`runtime_snapshot`] for every actor of the runtime.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Exit;
use crate::mailbox::{Mailbox, STATE_EXITED, STATE_RUNNING};

/// An actor's counters at one moment, from its mailbox header (which its process updates
/// with plain stores as it handles messages: no syscall on the message path) and, for
/// memory and CPU, from `/proc`. Counters add up over every incarnation: a restarted
/// actor keeps its mailbox, and its counts.
///
/// ```
/// # use procession::prelude::*;
/// # #[derive(Serialize, Deserialize, Message)] #[message(reply = u32)] struct Ping;
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Ping))] struct Echo;
/// # impl Handler<Ping> for Echo { fn handle(&mut self, _: Ping, cx: &mut Context<Self>) -> u32 { cx.pid() } }
/// let echo: ActorRef<Echo> = procession::spawn(Echo)?;
/// echo.ask(Ping)?;
/// let stats = echo.stats();
/// assert_eq!((stats.handled, stats.asks_answered), (1, 1));
/// assert!(stats.rss_bytes.unwrap() > 0);
/// echo.stop()?;
/// echo.join()?;
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorStats {
    /// The mailbox id.
    pub id: u64,
    /// The actor type's stable name.
    pub name: String,
    /// The current incarnation's pid (0 between incarnations).
    pub pid: u32,
    /// Whether an incarnation is handling messages now.
    pub running: bool,
    /// Frames received.
    pub received: u64,
    /// Messages handled (tells and asks).
    pub handled: u64,
    /// Asks answered.
    pub asks_answered: u64,
    /// Time spent in handlers, summed.
    pub busy: Duration,
    /// The longest single handler run.
    pub busy_max: Duration,
    /// Messages waiting now.
    pub queued: u32,
    /// The most messages ever waiting at once.
    pub queued_high: u32,
    /// The mailbox's capacity in messages.
    pub capacity: u32,
    /// Malformed frames rejected.
    pub bad_frames: u64,
    /// Restarts (the incarnation number: 0 for the first).
    pub restarts: u32,
    /// How the last incarnation that ended did end (the current one if it has ended).
    /// After a restart, only the kind and value are kept, not the message.
    pub last_exit: Option<Exit>,
    /// Resident memory of its process (`/proc/<pid>/statm`), while it runs.
    pub rss_bytes: Option<u64>,
    /// User + system CPU time of its process (`/proc/<pid>/stat`), while it runs.
    pub cpu_time: Option<Duration>,
}

impl ActorStats {
    pub(crate) fn of(mb: &Mailbox) -> ActorStats {
        Self::of_checked(mb, crate::os::proc::runtime_process_alive)
    }

    /// As [`of`](Self::of), with `ours` telling whether a pid read from the header is a
    /// live process of the mailbox's runtime (only then is `/proc` read for it).
    pub(crate) fn of_checked(mb: &Mailbox, ours: impl Fn(u32) -> bool) -> ActorStats {
        let c = mb.counters();
        let state = mb.state();
        let pid = mb.pid();
        let last_exit = if state == STATE_EXITED {
            Some(Exit::from_raw(mb.raw_exit()))
        } else if mb.incarnation() > 0 {
            Some(Exit::from_raw(mb.prev_exit()))
        } else {
            None
        };
        // The pid comes from shared memory: read /proc only for a process of this
        // program, so another process's figures are never reported as the actor's.
        let ours = state == STATE_RUNNING && ours(pid);
        let (rss_bytes, cpu_time) = if ours { proc_usage(pid) } else { (None, None) };
        ActorStats {
            id: mb.id(),
            name: mb.actor_name().to_string(),
            pid,
            running: state == STATE_RUNNING,
            received: c.received,
            handled: c.handled,
            asks_answered: c.asks_answered,
            busy: c.busy,
            busy_max: c.busy_max,
            queued: c.queued,
            queued_high: c.queued_high,
            capacity: mb.capacity(),
            bad_frames: c.bad_frames,
            restarts: mb.incarnation(),
            last_exit,
            rss_bytes,
            cpu_time,
        }
    }
}

/// Resident bytes and CPU time of `pid`, from /proc.
fn proc_usage(pid: u32) -> (Option<u64>, Option<Duration>) {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
        .max(1) as u64;
    let rss = std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * page);
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
            // utime and stime: fields 14 and 15, the 12th and 13th after the name.
            let ticks = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
            Some(Duration::from_micros(ticks * 1_000_000 / tick))
        });
    (rss, cpu)
}

/// Every actor of this process's runtime, its mailbox's counters and its process's
/// usage, read from the runtime directory (any process of the runtime may call it; it
/// takes no lock and sends nothing). Queues and pipes, which share the mailbox format,
/// are left out. In no particular order.
///
/// # Errors
/// As [`inspect::actors`](crate::inspect::actors).
pub fn runtime_snapshot() -> crate::Result<Vec<ActorStats>> {
    let rt = super::runtime::get()?;
    let dir = std::fs::read_dir(rt.dir())
        .map_err(|e| crate::Error::io("cannot list the runtime directory", e))?;
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix("mb-")) else {
            continue;
        };
        let Ok(id) = u64::from_str_radix(hex, 16) else {
            continue;
        };
        // It may end and be removed at any moment: skip what cannot be opened.
        let Ok(mb) = Mailbox::open(rt.dir(), id) else {
            continue;
        };
        if super::registry::find(mb.actor_name()).is_some() {
            out.push(ActorStats::of(&mb));
        }
    }
    Ok(out)
}
