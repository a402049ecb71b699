//! Looking at running programs from outside: the runtimes of this user on this machine
//! and the actors in each, for tools such as `procession-top`.
//!
//! Nothing here creates a runtime, spawns, sends or locks. Each mailbox is mapped
//! **read-only** (`O_RDONLY`, `PROT_READ`), so an inspector cannot take a producer lock,
//! write a counter or wake a waiter even by mistake: the program it watches runs exactly as
//! it would unwatched. Every byte read is untrusted (see the crate's fault model): names
//! and labels are bounded and decoded lossily, the tree is rebuilt with cycle and depth
//! guards, and a pid read from a header is reported as running with RSS and CPU figures
//! only if `/proc` shows it to be a live process of that runtime (same executable, in the
//! process group of the runtime's zygote, which is a child of the runtime's root). No pid
//! read from shared memory is ever signalled.
//!
//! A runtime can end at any moment, and its directory then vanishes: [`actors`] fails with
//! an [`Error::Io`] of kind `NotFound`, and [`RuntimeInfo::is_alive`]
//! turns false.
//!
//! ```
//! # use procession::prelude::*;
//! # #[derive(Serialize, Deserialize, Message)] #[message(reply = u32)] struct Ping;
//! # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Ping))] struct Echo;
//! # impl Handler<Ping> for Echo { fn handle(&mut self, _: Ping, cx: &mut Context<Self>) -> u32 { cx.pid() } }
//! use procession::inspect;
//! let echo: ActorRef<Echo> = procession::spawn(Echo)?;
//! let pid = echo.ask(Ping)?;
//! let me = inspect::runtimes()
//!     .into_iter()
//!     .find(|rt| rt.root_pid == std::process::id())
//!     .expect("this program's runtime is listed");
//! let actors = inspect::actors(&me)?;
//! let seen = actors.iter().find(|a| a.stats.pid == pid).expect("the actor is listed");
//! assert_eq!(seen.state, inspect::ActorState::Running);
//! assert_eq!(seen.stats.asks_answered, 1);
//! echo.stop()?;
//! echo.join()?;
//! # Ok::<(), procession::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mailbox::{Mailbox, STATE_EXITED, STATE_RUNNING};
use crate::{ActorStats, Error, Result};

/// One runtime: the directory a root process created, and that root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// The runtime directory (`/dev/shm/procession-<pid>-<nonce>`).
    pub dir: PathBuf,
    /// The pid of the program that created it (from the directory's name).
    pub root_pid: u32,
    /// The root's program name (`/proc/<pid>/cmdline`, first word, base name), while it
    /// runs.
    pub program: Option<String>,
}

impl RuntimeInfo {
    /// `true` while the directory exists and its root process runs.
    pub fn is_alive(&self) -> bool {
        self.dir.is_dir() && crate::os::proc::process_alive(self.root_pid)
    }
}

/// Where runtimes are made: `$PROCESSION_SHM_DIR`, or `/dev/shm`.
pub fn default_base() -> PathBuf {
    std::env::var_os("PROCESSION_SHM_DIR").map_or_else(|| PathBuf::from("/dev/shm"), PathBuf::from)
}

/// The live runtimes of this user under [`default_base`], oldest root pid first.
pub fn runtimes() -> Vec<RuntimeInfo> {
    runtimes_in(&default_base())
}

/// The live runtimes of this user under `base`, by root pid.
pub fn runtimes_in(base: &Path) -> Vec<RuntimeInfo> {
    let uid = nix::unistd::geteuid().as_raw();
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut out: Vec<RuntimeInfo> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let root_pid = parse_dir_name(name.to_str()?)?;
            let meta = entry.metadata().ok()?;
            if !meta.is_dir() || meta.uid() != uid {
                return None;
            }
            let rt = RuntimeInfo {
                dir: entry.path(),
                root_pid,
                program: program_name(root_pid),
            };
            rt.is_alive().then_some(rt)
        })
        .collect();
    out.sort_by(|a, b| (a.root_pid, &a.dir).cmp(&(b.root_pid, &b.dir)));
    out
}

/// This process's own runtime (created if there is none yet, as
/// [`spawn`](crate::spawn) would), to inspect it as any other.
///
/// ```
/// let rt = procession::inspect::this_runtime()?;
/// assert!(rt.is_alive());
/// assert!(procession::inspect::runtimes().contains(&rt));
/// # Ok::<(), procession::Error>(())
/// ```
///
/// # Errors
/// [`Error::Runtime`] if this process has no runtime yet (it has
/// spawned nothing).
pub fn this_runtime() -> Result<RuntimeInfo> {
    let rt = crate::process::runtime::get()?;
    let dir = rt.dir().to_path_buf();
    let root_pid = dir
        .file_name()
        .and_then(|n| parse_dir_name(n.to_str()?))
        .unwrap_or_else(std::process::id);
    Ok(RuntimeInfo {
        program: program_name(root_pid),
        dir,
        root_pid,
    })
}

/// What a runtime's files take in its tmpfs (`/dev/shm`), from [`shm_usage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShmUsage {
    /// Files (mailboxes, reply inboxes, queues, pipes, shared values, names).
    pub files: u64,
    /// The sum of their sizes: what `ls -l` shows. A mailbox file is as large as its
    /// ring (1 MiB by default) from the start.
    pub apparent_bytes: u64,
    /// The memory they hold: only the pages that have been touched (what `du` shows, and
    /// what counts against the tmpfs size). An idle actor's mailbox holds one page or two.
    pub resident_bytes: u64,
}

/// Adds up the files of a runtime directory, with its reply-inbox directories.
///
/// ```
/// let rt = procession::inspect::this_runtime()?;
/// let used = procession::inspect::shm_usage(&rt)?;
/// assert!(used.resident_bytes <= used.apparent_bytes + used.files * 4096);
/// # Ok::<(), procession::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the runtime directory cannot be read (the runtime has ended). A file
/// removed while it is being read is left out.
pub fn shm_usage(rt: &RuntimeInfo) -> Result<ShmUsage> {
    fn add(dir: &Path, top: bool, sum: &mut ShmUsage) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)?.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                if top {
                    let _ = add(&entry.path(), false, sum);
                }
                continue;
            }
            sum.files += 1;
            sum.apparent_bytes += meta.len();
            sum.resident_bytes += meta.blocks() * 512;
        }
        Ok(())
    }
    let mut sum = ShmUsage::default();
    add(&rt.dir, true, &mut sum).map_err(|e| {
        Error::io(
            format!("cannot list the runtime directory {}", rt.dir.display()),
            e,
        )
    })?;
    Ok(sum)
}

/// The root pid in a runtime directory's name `procession-<pid>-<nonce>`.
fn parse_dir_name(name: &str) -> Option<u32> {
    let (pid, nonce) = name.strip_prefix("procession-")?.split_once('-')?;
    if nonce.is_empty() || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    pid.parse().ok().filter(|&p| p > 0)
}

fn program_name(pid: u32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = cmdline.split(|&b| b == 0).next()?;
    let first = String::from_utf8_lossy(first);
    let base = first.rsplit('/').next()?.to_string();
    (!base.is_empty()).then_some(base)
}

/// What an actor's mailbox says about its process, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorState {
    /// Its first incarnation is starting.
    Starting,
    /// An incarnation handles messages.
    Running,
    /// Supervised, between incarnations: the last one ended, its supervisor restarts it.
    Restarting,
    /// Ended for good.
    Exited,
}

/// One actor as an inspector sees it: its counters and its place among the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorView {
    /// Its counters (see [`ActorStats`]); `rss_bytes`/`cpu_time` only while its pid is
    /// a live process of the runtime.
    #[serde(flatten)]
    pub stats: ActorStats,
    /// Its child id under a supervisor (empty for an actor spawned directly).
    pub label: String,
    /// The mailbox id of its supervisor, or of the actor that spawned it (0: spawned by
    /// the root process).
    pub parent: u64,
    /// Whether it is a supervisor.
    pub supervisor: bool,
    /// Its state.
    pub state: ActorState,
    /// Whether it is a daemon.
    pub daemon: bool,
}

/// Every actor of the runtime `rt`, read from its directory, in no particular order.
/// Queues, pipes and reply inboxes, which share the mailbox format, are left out, as are
/// files that vanish or do not check out while they are read.
///
/// # Errors
/// [`Error::Io`] if the runtime directory cannot be read (the runtime has
/// ended). A mailbox that cannot be mapped is left out, not an error.
pub fn actors(rt: &RuntimeInfo) -> Result<Vec<ActorView>> {
    let dir = std::fs::read_dir(&rt.dir).map_err(|e| {
        Error::io(
            format!("cannot list the runtime directory {}", rt.dir.display()),
            e,
        )
    })?;
    let root = rt.root_pid;
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix("mb-")) else {
            continue;
        };
        let Ok(id) = u64::from_str_radix(hex, 16) else {
            continue;
        };
        let Ok(mb) = Mailbox::open_read_only(&rt.dir, id) else {
            continue;
        };
        if mb.is_actor() {
            out.push(view_of(&mb, root));
        }
    }
    Ok(out)
}

fn view_of(mb: &Mailbox, root: u32) -> ActorView {
    let stats = ActorStats::of_checked(mb, |pid| crate::os::proc::in_runtime_of(pid, root));
    let state = match mb.state() {
        STATE_RUNNING => ActorState::Running,
        STATE_EXITED if mb.is_supervised() && !mb.is_final() => ActorState::Restarting,
        STATE_EXITED => ActorState::Exited,
        _ if mb.incarnation() > 0 => ActorState::Restarting,
        _ => ActorState::Starting,
    };
    ActorView {
        supervisor: stats.name == crate::supervisor::SUPERVISOR_NAME,
        stats,
        label: mb.label(),
        parent: mb.parent(),
        state,
        daemon: mb.is_daemon(),
    }
}

/// The order to show `actors` in as a tree: `(index, depth)` pairs, each parent before
/// its children, siblings by label, name and id. An actor whose parent is not among
/// them (the root process, or a parent that ended) is at depth 0. The parent links come
/// from shared memory, so a cycle or a chain deeper than 64 cannot loop: every actor
/// appears exactly once.
///
/// ```
/// use procession::inspect::tree_order;
/// # use procession::inspect::{ActorView, ActorState};
/// # fn view(id: u64, parent: u64) -> ActorView {
/// #     let stats = procession::ActorStats { id, ..Default::default() };
/// #     ActorView { stats, label: String::new(), parent, supervisor: false, state: ActorState::Running, daemon: false }
/// # }
/// // 2 is the child of 1; 3 and 4 point at each other.
/// let actors = vec![view(2, 1), view(1, 0), view(3, 4), view(4, 3)];
/// let order = tree_order(&actors);
/// assert_eq!(order[..2], [(1, 0), (0, 1)]);
/// assert_eq!(order.len(), 4);
/// ```
pub fn tree_order(actors: &[ActorView]) -> Vec<(usize, usize)> {
    let index: HashMap<u64, usize> = actors
        .iter()
        .enumerate()
        .map(|(i, a)| (a.stats.id, i))
        .collect();
    let mut children: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, a) in actors.iter().enumerate() {
        if a.parent != a.stats.id && index.contains_key(&a.parent) {
            children.entry(a.parent).or_default().push(i);
        } else {
            roots.push(i);
        }
    }
    let key = |&i: &usize| {
        let a = &actors[i];
        (a.label.clone(), a.stats.name.clone(), a.stats.id)
    };
    for list in children.values_mut() {
        list.sort_by_key(key);
    }
    roots.sort_by_key(key);
    let mut out = Vec::with_capacity(actors.len());
    let mut seen = HashSet::new();
    let mut visit = |start: usize, out: &mut Vec<(usize, usize)>| {
        let mut stack = vec![(start, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            out.push((i, depth));
            if depth >= 64 {
                continue;
            }
            if let Some(kids) = children.get(&actors[i].stats.id) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
    };
    for r in roots {
        visit(r, &mut out);
    }
    // What is left sits on a cycle (or under one): show it from the top.
    for i in 0..actors.len() {
        visit(i, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_dir_name;

    #[test]
    fn a_runtime_directory_name_gives_its_root_pid() {
        assert_eq!(parse_dir_name("procession-1234-00ab12cd"), Some(1234));
        assert_eq!(parse_dir_name("procession-1234-"), None);
        assert_eq!(parse_dir_name("procession-x-00ab"), None);
        assert_eq!(parse_dir_name("procession-0-00ab"), None);
        assert_eq!(parse_dir_name("other-1234-00ab"), None);
        assert_eq!(parse_dir_name("procession-1234-zz"), None);
    }
}
