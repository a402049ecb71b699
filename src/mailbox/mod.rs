//! Mailboxes: bounded, multi-producer, single-consumer queues of frames in shared memory.
//!
//! ## The kernel object
//! A mailbox is a file in the runtime directory (a mode-0700 directory on the `/dev/shm`
//! tmpfs), mapped `MAP_SHARED` by every process that sends to it and by the actor that
//! reads it. It holds a header (a robust process-shared mutex, futex words, the consumer's
//! life and exit record) and a byte ring (see [`ring`](self) for the record format).
//! Sending is: take the producers' lock (one CAS when uncontended), copy the frame into the
//! ring, publish the new tail, and wake the consumer with a futex only if it sleeps. The
//! consumer spins briefly (`PROCESSION_SPIN_US`, default 50 µs) before it sleeps, because
//! waking an idle vCPU costs tens of microseconds on small VMs.
//!
//! Each side writes per message only lines the other reads rarely: the producers write
//! `tail` and `frames_sent`, the consumer `head` and `frames_taken` (frames queued is the
//! difference; no counter is changed by both sides), and each re-reads the other's words
//! only when what it saw last is used up. The sleep words (`consumer_waiting`,
//! `producers_waiting`) have lines of their own, written only by a side going to sleep.
//! A producer that finds the ring full spins until a quarter of it is free, then its
//! sleeping wait takes any room; [`Mailbox::send_many`] writes a batch under one take of
//! the lock and publishes it with one `tail` store and at most one wake-up.
//!
//! We chose this over the alternatives by their limits: unix datagram sockets queue at
//! most `net.unix.max_dgram_qlen` (10 here) datagrams; pipe writes are atomic only up to
//! 4096 bytes, so many writers need a lock anyway and large messages cost two syscalls
//! per 64 KiB; stream sockets need one connection per sender and lose everything buffered
//! when the reading process dies. The ring costs no syscall per message when both sides
//! are busy, and — what decides it — **its contents do not belong to the reading process**.
//!
//! ## Ordering, bounds and backpressure
//! - Frames from one sender (one thread) are delivered in the order sent: a sender holds
//!   the lock for the whole frame, so frames never interleave.
//! - A mailbox holds at most `capacity` frames ([`MailboxConfig::capacity`]) and at most
//!   `ring_size` bytes at once. `tell` waits for room; `try_tell` returns the message;
//!   `tell_timeout` waits up to a deadline. A frame larger than the ring streams through it
//!   while the consumer drains (the deadline bounds the wait for its first chunk).
//! - Frames larger than `max_frame` are refused by the sender, and skipped unread (no
//!   allocation) by the consumer if a faulty sender writes one anyway.
//!
//! ## Failure
//! - A sender that dies holding the lock: the next sender finds the owner dead (the lock
//!   word names its thread, which no longer lives), writes an abort record if a frame was
//!   half written, and goes on. The consumer drops the partial frame with
//!   [`WireError::Aborted`](crate::wire::WireError::Aborted).
//! - A consumer that dies: its reaper marks the life record exited and wakes everyone;
//!   blocked senders and askers re-check liveness every 20 ms and fail with `ActorDied`.
//! - Bytes that are not records (a peer writing garbage into the ring) are dropped with a
//!   typed error; the consumer continues with the next record.
//!
//! ## The header is untrusted
//! Any process of the same user can write the file. What that costs is bounded to this
//! mailbox's messages; it never aborts, hangs or misleads a process that uses it:
//! - The sizes fixed at creation (ring size, capacity, maximum frame, the actor's name)
//!   are read once, checked, and kept by each process when it maps the file; later writes
//!   over them change nothing.
//! - The producers' lock is procession's own futex lock (in `os::robust`), not a
//!   pthread mutex: every bit pattern of it is a state it handles (no abort, no spin).
//! - Every futex wait is bounded (100 ms) and re-checks its condition, so a wake-up lost
//!   to a cleared `consumer_waiting` costs latency, never liveness.
//! - Impossible indexes (`head` past `tail`, more bytes used than the ring holds, more
//!   frames queued than the capacity) make senders that read them fail at once with
//!   [`SendFail::Corrupt`] (`TellError::Corrupt`, `Error::Corrupt`). (A sender reads
//!   `head` and the consumer's frame count only when the room it saw last is used up: both
//!   only grow, so an older reading never overstates the room. A written-over `head` that
//!   no sender read is put back by the consumer's next release, harmlessly.) The consumer, which
//!   alone owns `head`, puts a written-over `head` back, resets impossible indexes, and
//!   clears a frame count that an empty ring contradicts for a whole idle slice, each time
//!   reporting [`WireError::Corrupt`](crate::wire::WireError::Corrupt) (counted as a bad
//!   frame). The messages queued then are lost.
//! - No pid stored in the header is ever signalled or trusted for liveness beyond a
//!   `/proc` read: signals go through the zygote ([`ActorRef::signal`](crate::ActorRef::signal)).
//!
//! ## Keeping the mailbox across a restart (the supervision issue builds on this)
//! Everything a restart needs is in the file, not in the process: the ring, `head` (what
//! was consumed) and `tail` (what was accepted). A supervisor that restarts an actor keeps
//! its own mapping of the file open, forks the new incarnation with the **same mailbox id**,
//! and the new process continues from `head`: every frame accepted before the crash is
//! delivered, in order, to the new incarnation, and every `ActorRef` (which names the id,
//! not the pid) stays valid. For the frame that was being handled when the process died,
//! the actor loop will record its ring position before handling; at-least-once message
//! types are re-read from there, at-most-once ones are skipped and their asker gets
//! `ActorDied`. The life record gets an incarnation counter so joiners can tell
//! incarnations apart. Today (no supervisor yet) the reaper unlinks the file when the
//! actor exits; processes that mapped it keep their mapping and see the exit record.
//!
//! ## Privacy
//! The runtime directory is created mode 0700, files are created 0600 with `O_EXCL`, and
//! opening a file owned by another uid is refused.

mod ring;
mod shared;

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

pub use ring::{Consumer, Received, SendFail, Wait, LIVENESS_SLICE};
pub use shared::{header_field_offset, LINK_BIT, STATE_EXITED, STATE_RUNNING, STATE_STARTING};

use crate::os::futex;
use shared::{Region, EXIT_MESSAGE_MAX, NONE};

/// Sizes of a mailbox, fixed when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxConfig {
    /// Ring bytes, rounded up to a power of two (default 1 MiB; pages are only backed by
    /// memory once touched).
    pub ring_size: usize,
    /// Most frames queued at once (default 4096).
    pub capacity: u32,
    /// Largest frame accepted, in bytes (default [`DEFAULT_MAX_FRAME`](crate::wire::DEFAULT_MAX_FRAME)).
    pub max_frame: usize,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self {
            ring_size: 1 << 20,
            capacity: 4096,
            max_frame: crate::wire::DEFAULT_MAX_FRAME,
        }
    }
}

impl MailboxConfig {
    /// Sets the capacity in frames (at least 1).
    pub fn capacity(mut self, frames: u32) -> Self {
        self.capacity = frames.max(1);
        self
    }

    /// Sets the ring size in bytes (rounded up to a power of two, at least 4 KiB).
    pub fn ring_size(mut self, bytes: usize) -> Self {
        self.ring_size = bytes.max(4096).next_power_of_two();
        self
    }

    /// Sets the maximum frame size in bytes (at most 4 GiB - 1, the length prefix's range).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes.min(u32::MAX as usize);
        self
    }
}

/// How a mailbox's consumer ended, as stored in its life record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitKind {
    /// Not recorded.
    None = 0,
    /// Ended by itself.
    Normal = 1,
    /// Stopped on request.
    Stopped = 2,
    /// A handler panicked; the message holds the panic text.
    Panicked = 3,
    /// Killed by the signal in `value`.
    Signaled = 4,
    /// Failed; the message says why.
    Failed = 5,
    /// The child did not know the actor type named in the message.
    UnknownActor = 6,
    /// Killed because a linked actor exited abnormally; the message says which.
    Linked = 7,
    /// A supervisor shut down, or a supervisor terminated it; the message says why.
    Shutdown = 8,
    /// The process exited by itself with the nonzero status in `value`.
    Exited = 9,
    /// `create` returned `Ignore`.
    Ignored = 10,
    /// An allocation failed under the actor's memory limit; `value` is the limit in MiB.
    OutOfMemory = 11,
}

impl ExitKind {
    fn from_u32(v: u32) -> Self {
        match v {
            1 => Self::Normal,
            2 => Self::Stopped,
            3 => Self::Panicked,
            4 => Self::Signaled,
            5 => Self::Failed,
            6 => Self::UnknownActor,
            7 => Self::Linked,
            8 => Self::Shutdown,
            9 => Self::Exited,
            10 => Self::Ignored,
            11 => Self::OutOfMemory,
            _ => Self::None,
        }
    }
}

/// A mailbox's counters (see [`Mailbox::counters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Frames received.
    pub received: u64,
    /// Messages handled.
    pub handled: u64,
    /// Asks answered.
    pub asks_answered: u64,
    /// Time in handlers, summed.
    pub busy: Duration,
    /// The longest handler run.
    pub busy_max: Duration,
    /// Frames queued now.
    pub queued: u32,
    /// The most frames queued at once.
    pub queued_high: u32,
    /// Frames rejected as malformed.
    pub bad_frames: u64,
}

/// An exit as stored in shared memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawExit {
    /// How it ended.
    pub kind: ExitKind,
    /// Signal number or exit status.
    pub value: i32,
    /// Panic message or failure reason.
    pub message: String,
}

const INBOX_BIT: u64 = 1 << 63;
/// Marks a mailbox id that names a place in a supervision tree (see [`tree_id`]).
const TREE_BIT: u64 = 1 << 61;

/// The mailbox id of child `child` of the supervisor whose mailbox is `parent`: derived
/// from the path of child ids from the root, not from any process, so a supervisor that
/// is restarted (on its own, unchanged mailbox) finds its children's mailboxes again.
pub fn tree_id(parent: u64, child: &str) -> u64 {
    let h = parent
        .to_le_bytes()
        .iter()
        .chain(child.as_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        });
    TREE_BIT | (h & (TREE_BIT - 1))
}

/// Whether `id` names a place in a supervision tree (made by [`tree_id`]).
pub fn is_tree_id(id: u64) -> bool {
    id & (TREE_BIT | INBOX_BIT) == TREE_BIT
}

fn tree_file(dir: &Path, parent: u64) -> PathBuf {
    dir.join(format!("tree-{parent:016x}"))
}

/// Records that `child` (a tree mailbox id) belongs to the subtree of `parent`, so that
/// [`finalize_tree`] can close it when `parent` is gone for good.
pub fn record_tree_child(dir: &Path, parent: u64, child: u64) {
    use std::io::Write;
    let path = tree_file(dir, parent);
    let line = format!("{child:016x}\n");
    if std::fs::read_to_string(&path).is_ok_and(|s| s.contains(line.trim_end())) {
        return;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path);
    if let Ok(mut f) = file {
        let _ = f.write_all(line.as_bytes());
    }
}

/// `parent` will run no more: close the mailboxes of its subtree (final, unlinked once
/// their consumers are gone, their waiters woken), down to the leaves. The lists are files any process of the user can
/// write, so the walk visits each id once and stops at a bounded depth.
pub fn finalize_tree(dir: &Path, parent: u64) {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![(parent, 0u32)];
    while let Some((node, depth)) = stack.pop() {
        if !seen.insert(node) || depth > 64 || seen.len() > 100_000 {
            continue;
        }
        let path = tree_file(dir, node);
        let Ok(list) = std::fs::read_to_string(&path) else {
            continue;
        };
        let _ = std::fs::remove_file(&path);
        for id in list.lines().filter_map(|l| u64::from_str_radix(l, 16).ok()) {
            if !is_tree_id(id) {
                continue;
            }
            if let Ok(mb) = Mailbox::open(dir, id) {
                mb.set_final();
                // A mailbox whose consumer still runs is unlinked by that consumer's
                // reaper, once it has published the exit through the file (the reaper
                // maps it then: it holds no mapping of its own until the exit).
                let state = mb.state();
                if state != STATE_RUNNING && state != STATE_STARTING {
                    mb.unlink();
                }
            }
            stack.push((id, depth + 1));
        }
    }
}

/// The longest an actor waits for room in an asker's full reply inbox.
const REPLY_ROOM_WAIT: Duration = Duration::from_secs(10);

/// `waiting_corr` of an inbox whose owner waits for replies to many asks at once.
pub const ANY_CORR: u64 = u64::MAX;

/// Spin budget before a blocked party sleeps, from `PROCESSION_SPIN_US` (default 50 µs).
pub fn spin_budget() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let us = std::env::var("PROCESSION_SPIN_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50);
        Duration::from_micros(us)
    })
}

/// A mapped mailbox.
pub struct Mailbox {
    region: Region,
    id: u64,
    path: PathBuf,
    /// The runtime generation it belongs to (see [`mark_generation_lost`]).
    generation: u32,
}

/// What was read from a mailbox file when it was known good (see [`Mailbox::hold`]).
#[derive(Debug)]
pub struct HeldMailbox {
    bounds: shared::HeldRegion,
    id: u64,
    path: PathBuf,
}

impl HeldMailbox {
    /// Maps the file with the bounds read when it was checked, even if its header has
    /// been written over since. Outside this process's cache.
    pub fn map(&self) -> io::Result<Mailbox> {
        Ok(Mailbox {
            region: self.bounds.map(&self.path)?,
            id: self.id,
            path: self.path.clone(),
            generation: GENERATION.load(Relaxed),
        })
    }
}

/// The runtime generation that new mailboxes of this process belong to.
static GENERATION: AtomicU32 = AtomicU32::new(0);
/// Mailboxes of every generation below this one belong to a lost runtime.
static LOST_BELOW: AtomicU32 = AtomicU32::new(0);
/// Called in every slow path (a wait slice) to notice a lost runtime; set by the
/// process layer, which knows how to check its zygote.
static PROBE: OnceLock<fn()> = OnceLock::new();

/// Sets the generation of the runtime that mailboxes created or opened from now on
/// belong to (the process layer bumps it when it starts a fresh runtime).
pub fn set_generation(generation: u32) {
    GENERATION.store(generation, SeqCst);
}

/// Declares every mailbox of a generation up to `generation` lost (its runtime's zygote
/// died): sends and receives fail fast with [`SendFail::Lost`], joiners stop waiting.
/// Wakes every thread of this process that sleeps on one of them.
pub fn mark_generation_lost(generation: u32) {
    LOST_BELOW.fetch_max(generation + 1, SeqCst);
    let cached: Vec<Arc<Mailbox>> = cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter_map(Weak::upgrade)
        .collect();
    for mb in cached.iter().filter(|m| m.is_lost()) {
        mb.wake_all();
    }
}

/// Registers the check that slow paths run to notice a lost runtime.
pub fn set_lost_probe(probe: fn()) {
    let _ = PROBE.set(probe);
}

/// Runs the lost-runtime check (a poll of the zygote's pidfd, in the root).
pub fn probe_runtime() {
    if let Some(p) = PROBE.get() {
        p();
    }
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("id", &format_args!("{:016x}", self.id))
            .field("actor", &self.region.name())
            .finish()
    }
}

/// The file of mailbox `id`: `mb-<id>` in the runtime directory, or for a reply inbox
/// `in-<pid>/<n>`, in a directory of the process that created it, so that its reaper
/// removes them all with one `remove_dir_all` instead of a scan of every actor's file.
pub(crate) fn path_of(dir: &Path, id: u64) -> PathBuf {
    if id & INBOX_BIT != 0 {
        let id = id & !INBOX_BIT;
        inbox_dir(dir, (id >> 32) as u32).join(format!("{:08x}", id as u32))
    } else {
        dir.join(format!("mb-{id:016x}"))
    }
}

/// The directory of the reply inboxes that process `pid` creates.
fn inbox_dir(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("in-{pid:08x}"))
}

/// Removes the reply inboxes that process `pid` created (called by its reaper, while
/// the pid is still reserved by the zombie, so no new process with that pid has any).
/// O(its own inboxes), not O(every file in the runtime directory).
pub fn remove_inboxes_of(dir: &Path, pid: u32) {
    let _ = std::fs::remove_dir_all(inbox_dir(dir, pid));
}

fn cache() -> &'static Mutex<HashMap<u64, Weak<Mailbox>>> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Weak<Mailbox>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

impl Mailbox {
    /// Creates a new mailbox (or reply inbox) with a fresh id in `dir`.
    pub fn create(
        dir: &Path,
        cfg: &MailboxConfig,
        name: &str,
        inbox: bool,
    ) -> io::Result<Arc<Mailbox>> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id() as u64;
        for _ in 0..1000 {
            let n = COUNTER.fetch_add(1, Relaxed) as u64;
            let id = (pid << 32) | n | if inbox { INBOX_BIT } else { 0 };
            match Mailbox::create_at(dir, id, cfg, name) {
                Ok(mb) => return Ok(mb),
                // A file left by an earlier process that had our pid: take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("no free mailbox id"))
    }

    /// Creates the mailbox file for `id` (it must not exist) and caches its mapping.
    fn create_at(dir: &Path, id: u64, cfg: &MailboxConfig, name: &str) -> io::Result<Arc<Mailbox>> {
        let path = path_of(dir, id);
        if id & INBOX_BIT != 0 {
            if let Some(parent) = path.parent() {
                match std::fs::DirBuilder::new().mode(0o700).create(parent) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
            }
        }
        let ring = cfg.ring_size.max(4096).next_power_of_two();
        let region = Region::create(&path, ring, cfg.capacity, cfg.max_frame as u64, name)?;
        let mb = Arc::new(Mailbox {
            region,
            id,
            path,
            generation: GENERATION.load(Relaxed),
        });
        cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::downgrade(&mb));
        Ok(mb)
    }

    /// Creates the mailbox with the given tree id ([`tree_id`]), or maps the existing one
    /// (`true`: adopted) if an earlier incarnation of its supervisor created it.
    pub fn create_or_adopt(
        dir: &Path,
        id: u64,
        cfg: &MailboxConfig,
        name: &str,
    ) -> io::Result<(Arc<Mailbox>, bool)> {
        match Mailbox::create_at(dir, id, cfg, name) {
            Ok(mb) => Ok((mb, false)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let mb = Mailbox::open(dir, id)?;
                if mb.actor_name() != name {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the mailbox of this place in the tree belongs to {}, not {name}",
                            mb.actor_name()
                        ),
                    ));
                }
                Ok((mb, true))
            }
            Err(e) => Err(e),
        }
    }

    /// Maps the mailbox `id` in `dir`, sharing one mapping per process.
    pub fn open(dir: &Path, id: u64) -> io::Result<Arc<Mailbox>> {
        let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
        let path = path_of(dir, id);
        let cached = cache.get(&id).and_then(Weak::upgrade);
        if let Some(mb) = &cached {
            // A mailbox that is gone for good may have been created anew at the same id
            // (a place in a supervision tree that was started again): map the file then.
            if mb.path == path && !mb.is_lost() && !mb.is_final() {
                return Ok(mb.clone());
            }
        }
        let region = match Region::open(&path) {
            Ok(region) => region,
            Err(e) => return cached.filter(|mb| !mb.is_lost()).ok_or(e),
        };
        let generation = GENERATION.load(Relaxed);
        let mb = Arc::new(Mailbox {
            region,
            id,
            path,
            generation,
        });
        // Sweep dead entries when the cache has doubled since the last sweep: amortized
        // O(1) per open, even with 10,000 live mailboxes.
        static SWEEP_AT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(4096);
        if cache.len() > SWEEP_AT.load(Relaxed) {
            cache.retain(|_, w| w.strong_count() > 0);
            SWEEP_AT.store((cache.len() * 2).max(4096), Relaxed);
        }
        cache.insert(id, Arc::downgrade(&mb));
        Ok(mb)
    }

    /// Maps the mailbox `id` in `dir` for a moment and checks it, keeping only what the
    /// check read: the zygote's hold on each actor's mailbox, through which it publishes
    /// the actor's exit ([`HeldMailbox::map`]). It holds no mapping and no fd, so a fork
    /// copies nothing per actor and spawning stays O(1) in the number of running actors.
    pub fn hold(dir: &Path, id: u64) -> io::Result<HeldMailbox> {
        let path = path_of(dir, id);
        let bounds = Region::open_held(&path)?;
        Ok(HeldMailbox { bounds, id, path })
    }

    /// Maps the mailbox `id` in `dir` **read-only**, outside this process's cache, for an
    /// inspector: only its reading methods may be called (any writing one would fault on
    /// the read-only mapping). It takes no lock and wakes no one.
    pub fn open_read_only(dir: &Path, id: u64) -> io::Result<Mailbox> {
        let path = path_of(dir, id);
        let region = Region::open_read_only(&path)?;
        Ok(Mailbox {
            region,
            id,
            path,
            generation: u32::MAX,
        })
    }

    /// The mailbox id: the address that `ActorRef`s carry.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The stable name of the actor type it was created for.
    pub fn actor_name(&self) -> &str {
        self.region.name()
    }

    /// Most frames queued at once.
    pub fn capacity(&self) -> u32 {
        self.region.capacity()
    }

    /// The largest frame it accepts.
    pub fn max_frame(&self) -> u64 {
        self.region.max_frame()
    }

    /// The ring's size in bytes: a frame larger than this is sent in parts, waiting for
    /// the consumer between them.
    pub fn ring_size(&self) -> u64 {
        self.region.ring_size()
    }

    /// Removes the file's name (mappings stay valid).
    pub fn unlink(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// `true` once no incarnation of the consumer will run again. An unsupervised
    /// actor's exit is final; a supervised one's is final when its supervisor gives up.
    pub fn is_gone(&self) -> bool {
        self.is_lost()
            || (self.state() == STATE_EXITED
                && self.region.header().life.final_exit.load(Acquire) != 0)
    }

    /// `true` if the runtime this mailbox belongs to was lost (its zygote died).
    pub fn is_lost(&self) -> bool {
        self.generation < LOST_BELOW.load(Relaxed)
    }

    /// Sends one complete frame, failing fast if the consumer is gone for good. A frame
    /// sent while a supervised actor is between incarnations waits for the next one.
    pub fn send(&self, frame: &[u8], wait: Wait) -> Result<(), SendFail> {
        if self.is_gone() {
            return Err(self.gone_fail());
        }
        let sent = ring::send(&self.region, frame, wait, spin_budget(), &|| {
            probe_runtime();
            !self.is_gone()
        });
        match sent {
            Err(SendFail::Dead) if self.is_lost() => Err(SendFail::Lost),
            other => other,
        }
    }

    /// Sends several complete frames in order under one take of the producers' lock
    /// (see [`ring::send_many`]); returns how many were sent, and why the next was not.
    pub fn send_many(&self, frames: &[&[u8]], wait: Wait) -> (usize, Result<(), SendFail>) {
        if self.is_gone() {
            return (0, Err(self.gone_fail()));
        }
        let (sent, result) = ring::send_many(&self.region, frames, wait, spin_budget(), &|| {
            probe_runtime();
            !self.is_gone()
        });
        match result {
            Err(SendFail::Dead) if self.is_lost() => (sent, Err(SendFail::Lost)),
            other => (sent, other),
        }
    }

    fn gone_fail(&self) -> SendFail {
        if self.is_lost() {
            SendFail::Lost
        } else {
            SendFail::Dead
        }
    }

    /// Sends a reply to an inbox without ever blocking on an asker that stopped waiting
    /// (or died: its pid is checked too).
    pub fn send_reply(&self, frame: &[u8], corr: u64) -> Result<(), SendFail> {
        // The common case: room in the inbox, no liveness question to ask.
        match ring::send(&self.region, frame, Wait::Never, Duration::ZERO, &|| true) {
            Err(SendFail::Full) => {}
            done => return done,
        }
        // The owner's pid comes from shared memory: only ever read /proc with it.
        let owner = self.pid();
        let waiting = || {
            let w = self.waiting_corr();
            self.state() != STATE_EXITED
                && (w == corr || w == ANY_CORR)
                && crate::os::proc::process_alive(owner)
        };
        // An asker that waits reads its inbox; if it does not drain it within this bound
        // (or its header lies about waiting), the reply is dropped, and the actor goes on.
        let wait = if waiting() {
            Wait::from_timeout(Some(REPLY_ROOM_WAIT))
        } else {
            Wait::Never
        };
        ring::send(&self.region, frame, wait, spin_budget(), &waiting)
    }

    /// Releases the frame `consumer` returned last (it stays in the ring, for redelivery
    /// after a crash, until this or the next receive).
    pub fn commit(&self, consumer: &mut Consumer) {
        consumer.commit(&self.region);
    }

    /// Receives the next frame with `consumer`, the mailbox's single reader.
    pub fn recv<'c>(&self, consumer: &'c mut Consumer, wait: Wait) -> Received<'c> {
        consumer.recv(&self.region, wait, spin_budget())
    }

    /// [`recv`](Self::recv), setting `waited` if the ring was empty and it waited (or
    /// spun) for the frame.
    pub fn recv_noting_wait<'c>(
        &self,
        consumer: &'c mut Consumer,
        wait: Wait,
        waited: &mut bool,
    ) -> Received<'c> {
        consumer.recv_noting_wait(&self.region, wait, spin_budget(), waited)
    }

    /// Writes one raw ring record, bypassing framing (for tests of malformed input).
    #[doc(hidden)]
    pub fn send_raw_record(&self, first: bool, last: bool, bytes: &[u8]) -> Result<(), SendFail> {
        let flags = if first { ring::FIRST } else { 0 } | if last { ring::LAST } else { 0 };
        ring::send_raw_record(&self.region, flags, bytes)
    }

    /// Writes `bytes` over the mailbox file at `offset`, header or ring (fault-injection
    /// tests: what any process of the same user can do to the file).
    #[doc(hidden)]
    pub fn scribble(&self, offset: usize, bytes: &[u8]) {
        self.region.scribble(offset, bytes);
    }

    /// Takes the producer lock and writes a first chunk without finishing the frame (for
    /// tests that kill a writer mid-frame). The lock stays held.
    #[doc(hidden)]
    pub fn begin_frame_and_hold_lock(&self, first_chunk: &[u8]) -> Result<(), SendFail> {
        ring::hold_lock_mid_frame(&self.region, first_chunk)
    }

    /// Counts `messages` handled messages, `asks` of them asks, that took `took` in all
    /// (the consumer calls it).
    pub fn count_handled(&self, took: Duration, messages: u64, asks: u64) {
        let c = &self.region.header().cons;
        let ns = took.as_nanos().min(u64::MAX as u128) as u64;
        // The consumer is the only writer of these: plain stores, no read-modify-write.
        c.handled
            .store(c.handled.load(Relaxed).wrapping_add(messages), Relaxed);
        if asks > 0 {
            c.asks_answered
                .store(c.asks_answered.load(Relaxed).wrapping_add(asks), Relaxed);
        }
        c.busy_ns
            .store(c.busy_ns.load(Relaxed).wrapping_add(ns), Relaxed);
        if ns > c.busy_max_ns.load(Relaxed) {
            c.busy_max_ns.store(ns, Relaxed);
        }
    }

    /// The consumer's counters, as they are now.
    pub fn counters(&self) -> Counters {
        let c = &self.region.header().cons;
        Counters {
            received: c.frames_in.load(Relaxed),
            handled: c.handled.load(Relaxed),
            asks_answered: c.asks_answered.load(Relaxed),
            busy: Duration::from_nanos(c.busy_ns.load(Relaxed)),
            busy_max: Duration::from_nanos(c.busy_max_ns.load(Relaxed)),
            queued: ring::queued(&self.region),
            queued_high: c.queued_high.load(Relaxed),
            bad_frames: c.bad_frames.load(Relaxed),
        }
    }

    /// Frames the consumer rejected as malformed.
    pub fn bad_frames(&self) -> u64 {
        self.region.header().cons.bad_frames.load(Relaxed)
    }

    /// Counts one rejected frame.
    pub fn count_bad_frame(&self) {
        self.region.header().cons.bad_frames.fetch_add(1, Relaxed);
    }

    /// Frames queued and not yet consumed.
    pub fn queued(&self) -> u32 {
        ring::queued(&self.region)
    }

    /// Sets the correlation id the inbox's owner waits for (0: none).
    pub fn set_waiting_corr(&self, corr: u64) {
        self.region.header().cons.waiting_corr.store(corr, SeqCst);
    }

    fn waiting_corr(&self) -> u64 {
        self.region.header().cons.waiting_corr.load(SeqCst)
    }

    // ---- queues and pipes ----

    /// Takes the consumers' lock (for a mailbox read by several processes), at most
    /// `timeout`; `Some(true)` if a previous reader died holding it.
    pub fn lock_consumers(&self, timeout: Option<Duration>) -> Option<bool> {
        let m = &self.region.header().queue.consumers;
        match m.lock(timeout)? {
            crate::os::robust::Locked::Clean => Some(false),
            crate::os::robust::Locked::OwnerDied => Some(true),
        }
    }

    /// Releases the consumers' lock.
    pub fn unlock_consumers(&self) {
        self.region.header().queue.consumers.unlock();
    }

    /// Counts one more handle to this mailbox (in any process).
    pub fn add_handle(&self) {
        self.region.header().queue.handles.fetch_add(1, SeqCst);
    }

    /// Shuts a queue down: 1 (puts refused, gets end when empty) or 2 (immediately). A
    /// later, milder shutdown does not undo a stronger one. Wakes every waiter.
    pub fn shut_down(&self, level: u32) {
        self.region
            .header()
            .queue
            .shutdown
            .fetch_max(level.min(2), SeqCst);
        self.wake_all();
    }

    /// The queue's shutdown level (0: open; any value from shared memory is clamped).
    pub fn shutdown_level(&self) -> u32 {
        self.region.header().queue.shutdown.load(Acquire).min(2)
    }

    /// Counts one handle less without removing anything (a reference taken over).
    pub fn take_over_handle(&self) {
        self.region.header().queue.handles.fetch_sub(1, SeqCst);
    }

    /// Counts one handle less; the last one removes the file.
    pub fn drop_handle(&self) {
        if self.region.header().queue.handles.fetch_sub(1, SeqCst) == 1 {
            self.unlink();
        }
    }

    /// Adds to the count of unfinished tasks.
    pub fn unfinished_add(&self, n: u32) {
        self.region.header().queue.unfinished.fetch_add(n, SeqCst);
    }

    /// Marks one task done; `false` if none was unfinished.
    pub fn task_done(&self) -> bool {
        let u = &self.region.header().queue.unfinished;
        let done = u.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok();
        if done && u.load(SeqCst) == 0 {
            futex::wake(u, i32::MAX);
        }
        done
    }

    /// Waits until no task is unfinished, at most `timeout`; whether that happened.
    pub fn wait_all_done(&self, timeout: Option<Duration>) -> bool {
        let u = &self.region.header().queue.unfinished;
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let n = u.load(SeqCst);
            if n == 0 {
                return true;
            }
            let slice = match deadline {
                None => LIVENESS_SLICE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    left.min(LIVENESS_SLICE)
                }
            };
            futex::wait(u, n, Some(slice));
        }
    }

    /// Counts this process in (or out of) the holders of the writing end.
    pub fn hold_writer(&self, hold: bool) {
        // Only this process writes its own slot; threads of it (cloning and dropping
        // senders at once) take turns, so no count is lost between a load and a store.
        static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let me = crate::os::proc::pid() as u64;
        let slots = &self.region.header().queue.writers;
        for slot in slots {
            let e = slot.load(Acquire);
            if e >> 32 == me {
                let n = e & 0xffff_ffff;
                let n = if hold { n + 1 } else { n.saturating_sub(1) };
                slot.store(if n == 0 { 0 } else { (me << 32) | n }, SeqCst);
                return;
            }
        }
        if hold {
            let _ = slots.iter().any(|s| {
                s.compare_exchange(0, (me << 32) | 1, SeqCst, SeqCst)
                    .is_ok()
            });
        }
    }

    /// Counts a writing end leaving in a message (`+1`) or arriving from one (`-1`).
    pub fn writer_in_flight(&self, leaving: bool) {
        let n = &self.region.header().queue.writers_in_flight;
        if leaving {
            n.fetch_add(1, SeqCst);
        } else {
            let _ = n.fetch_update(SeqCst, SeqCst, |v| v.checked_sub(1));
        }
    }

    /// Whether any live process holds the writing end (or one is travelling in a message).
    pub fn writers_alive(&self) -> bool {
        let q = &self.region.header().queue;
        q.writers_in_flight.load(Acquire) > 0
            || q.writers.iter().any(|s| {
                let e = s.load(Acquire);
                e != 0 && crate::os::proc::process_alive((e >> 32) as u32)
            })
    }

    /// Sleeps until something is published or a reader is woken, at most `timeout`.
    pub fn wait_readable(&self, timeout: Duration) {
        let h = self.region.header();
        let seq = h.cons.data_seq.load(SeqCst);
        h.cons.consumer_waiting.store(1, SeqCst);
        if self.queued() == 0 {
            futex::wait(&h.cons.data_seq, seq, Some(timeout));
        }
        h.cons.consumer_waiting.store(0, SeqCst);
    }

    /// Wakes a reader blocked on this mailbox (so it re-checks, e.g. for EOF).
    pub fn wake_readers(&self) {
        let h = self.region.header();
        h.cons.data_seq.fetch_add(1, SeqCst);
        futex::wake(&h.cons.data_seq, i32::MAX);
    }

    // ---- supervision ----

    /// Marks the mailbox as owned by a supervisor (exits are not final; the file stays).
    pub fn set_supervised(&self, on: bool) {
        self.region
            .header()
            .life
            .supervised
            .store(on as u32, SeqCst);
    }

    /// Whether a supervisor owns the mailbox.
    pub fn is_supervised(&self) -> bool {
        self.region.header().life.supervised.load(SeqCst) != 0
    }

    /// Whether no incarnation will follow (see [`set_final`](Self::set_final)).
    pub fn is_final(&self) -> bool {
        self.region.header().life.final_exit.load(Acquire) != 0
    }

    /// Declares that no incarnation will follow, and wakes everyone who waits.
    pub fn set_final(&self) {
        self.region.header().life.final_exit.store(1, SeqCst);
        self.wake_all();
    }

    /// Records that this mailbox is an actor's, who its parent is (its supervisor's or
    /// spawner's mailbox id; 0 for the root process) and its label (its child id under a
    /// supervisor), for inspectors. Written before the actor starts.
    pub fn set_place(&self, parent: u64, label: &str) {
        let t = &self.region.header().tree;
        let bytes = label.as_bytes();
        let mut n = bytes.len().min(shared::LABEL_MAX);
        while !label.is_char_boundary(n) {
            n -= 1;
        }
        for (slot, b) in t.label.iter().zip(&bytes[..n]) {
            slot.store(*b, Relaxed);
        }
        t.label_len.store(n as u32, Release);
        t.parent.store(parent, Release);
        t.role.store(shared::ROLE_ACTOR, Release);
    }

    /// `true` if [`set_place`](Self::set_place) marked it as an actor's mailbox.
    pub fn is_actor(&self) -> bool {
        self.region.header().tree.role.load(Acquire) == shared::ROLE_ACTOR
    }

    /// The parent recorded by [`set_place`](Self::set_place) (0: the root process).
    pub fn parent(&self) -> u64 {
        self.region.header().tree.parent.load(Acquire)
    }

    /// The label recorded by [`set_place`](Self::set_place) (lossy UTF-8, bounded).
    pub fn label(&self) -> String {
        let t = &self.region.header().tree;
        let n = (t.label_len.load(Acquire) as usize).min(shared::LABEL_MAX);
        let bytes: Vec<u8> = t.label[..n].iter().map(|b| b.load(Relaxed)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Marks the consumer as a daemon (its parent does not wait for it at exit).
    pub fn set_daemon(&self, on: bool) {
        self.region.header().life.daemon.store(on as u32, SeqCst);
    }

    /// Whether the consumer is a daemon.
    pub fn is_daemon(&self) -> bool {
        self.region.header().life.daemon.load(SeqCst) != 0
    }

    /// Whether the consumer traps exits of linked actors.
    pub fn traps_exits(&self) -> bool {
        self.region.header().life.trap_exit.load(SeqCst) != 0
    }

    /// Sets whether the consumer traps exits of linked actors.
    pub fn set_trap_exit(&self, on: bool) {
        self.region.header().life.trap_exit.store(on as u32, SeqCst);
    }

    /// The current incarnation (0 for the first).
    pub fn incarnation(&self) -> u32 {
        self.region.header().life.incarnation.load(Acquire)
    }

    /// Prepares the mailbox for the next incarnation after the previous one was reaped:
    /// the queue, `head` and the in-flight record stay; the life record starts over.
    pub fn reset_for_restart(&self) {
        let life = &self.region.header().life;
        life.prev_exit_kind
            .store(life.exit_kind.load(Acquire), SeqCst);
        life.prev_exit_value
            .store(life.exit_value.load(Acquire), SeqCst);
        life.prev_pid.store(life.pid.load(Acquire), SeqCst);
        life.exit_kind.store(0, SeqCst);
        life.ran.store(0, SeqCst);
        life.pid.store(0, SeqCst);
        life.incarnation.fetch_add(1, SeqCst);
        life.state.store(STATE_STARTING, SeqCst);
    }

    /// How the previous incarnation ended (after a restart).
    pub fn prev_exit(&self) -> RawExit {
        let life = &self.region.header().life;
        let mut raw = self.raw_exit();
        raw.kind = ExitKind::from_u32(life.prev_exit_kind.load(Acquire));
        raw.value = life.prev_exit_value.load(Acquire);
        raw
    }

    /// The pid of the previous incarnation (after a restart; 0 before the first).
    pub fn prev_pid(&self) -> u32 {
        self.region.header().life.prev_pid.load(Acquire)
    }

    /// Registers `watcher` (a mailbox id) to be told when the consumer exits. Returns
    /// `false` if every slot is taken.
    pub fn add_watcher(&self, watcher: u64, link: bool) -> bool {
        let entry = watcher | if link { LINK_BIT } else { 0 };
        self.region
            .header()
            .watch
            .slots
            .iter()
            .any(|slot| slot.compare_exchange(0, entry, SeqCst, SeqCst).is_ok())
    }

    /// Removes one registration of `watcher`; `true` if this call removed it (so the
    /// caller, not the exit's publisher, owns delivering the notice).
    pub fn remove_watcher(&self, watcher: u64, link: bool) -> bool {
        let entry = watcher | if link { LINK_BIT } else { 0 };
        self.region
            .header()
            .watch
            .slots
            .iter()
            .any(|slot| slot.compare_exchange(entry, 0, SeqCst, SeqCst).is_ok())
    }

    /// Takes every registration (each fires once): `(mailbox id, is_link)`.
    pub fn take_watchers(&self) -> Vec<(u64, bool)> {
        self.region
            .header()
            .watch
            .slots
            .iter()
            .map(|slot| slot.swap(0, SeqCst))
            .filter(|&e| e != 0)
            .map(|e| (e & !LINK_BIT, e & LINK_BIT != 0))
            .collect()
    }

    /// Records that the frame at ring position `pos` is being handled; returns how many
    /// incarnations (this one included) have started handling it.
    pub fn begin_in_flight(&self, pos: Option<u64>, reply_to: u64, corr: u64) -> u32 {
        let c = &self.region.header().cons;
        // A frame that streamed through the ring (pos None) cannot be found again.
        let pos = pos.unwrap_or(NONE);
        let attempts = if pos != NONE && c.in_flight_pos.load(Acquire) == pos {
            c.in_flight_attempts.load(Acquire).saturating_add(1)
        } else {
            1
        };
        c.in_flight_reply_to.store(reply_to, Relaxed);
        c.in_flight_corr.store(corr, Relaxed);
        c.in_flight_attempts.store(attempts, Relaxed);
        c.in_flight_pos.store(pos, Release);
        attempts
    }

    /// Clears the in-flight record after the frame was handled.
    pub fn end_in_flight(&self) {
        let c = &self.region.header().cons;
        c.in_flight_pos.store(NONE, Release);
        c.in_flight_corr.store(0, Relaxed);
    }

    /// `(reply_to, corr)` of the ask or batch the consumer is handling now, if any (a
    /// snapshot of shared memory: a hint, to compare with what the caller sent).
    pub fn handling(&self) -> Option<(u64, u64)> {
        let c = &self.region.header().cons;
        let corr = c.in_flight_corr.load(Acquire);
        (corr != 0).then(|| (c.in_flight_reply_to.load(Relaxed), corr))
    }

    /// Counts one poison frame dropped.
    pub fn count_poison(&self) {
        self.region
            .header()
            .cons
            .poison_dropped
            .fetch_add(1, Relaxed);
    }

    /// Poison frames dropped so far.
    pub fn poison_dropped(&self) -> u64 {
        self.region.header().cons.poison_dropped.load(Relaxed)
    }

    fn wake_all(&self) {
        let h = self.region.header();
        futex::wake(&h.life.state, i32::MAX);
        h.cons.data_seq.fetch_add(1, SeqCst);
        futex::wake(&h.cons.data_seq, i32::MAX);
        h.prod.space_seq.fetch_add(1, SeqCst);
        futex::wake(&h.prod.space_seq, i32::MAX);
    }

    // ---- life record ----

    /// [`STATE_STARTING`], [`STATE_RUNNING`] or [`STATE_EXITED`].
    pub fn state(&self) -> u32 {
        self.region.header().life.state.load(Acquire)
    }

    /// `true` once the consumer finished starting, even if it has exited since.
    pub fn ran(&self) -> bool {
        self.region.header().life.ran.load(Acquire) != 0
    }

    /// Pid of the consumer (0 before it started).
    pub fn pid(&self) -> u32 {
        self.region.header().life.pid.load(Acquire)
    }

    /// Records the consumer's pid (by the spawner, or by the child itself).
    pub fn set_pid(&self, pid: u32) {
        self.region.header().life.pid.store(pid, Release);
    }

    /// Marks the consumer running and wakes whoever waits for it to start.
    pub fn set_running(&self) {
        let life = &self.region.header().life;
        life.ran.store(1, SeqCst);
        let _ = life
            .state
            .compare_exchange(STATE_STARTING, STATE_RUNNING, SeqCst, SeqCst);
        futex::wake(&life.state, i32::MAX);
    }

    /// Marks a reply inbox closed (its thread ended) so repliers stop using it.
    pub fn mark_exited(&self) {
        let life = &self.region.header().life;
        life.state.store(STATE_EXITED, SeqCst);
        futex::wake(&life.state, i32::MAX);
    }

    /// Records how the consumer is ending. The first record wins, so a panic hook's
    /// record is not overwritten by the exit path that follows it.
    pub fn record_exit(&self, kind: ExitKind, value: i32, message: &str) {
        let life = &self.region.header().life;
        if life
            .exit_kind
            .compare_exchange(0, u32::MAX, SeqCst, SeqCst)
            .is_err()
        {
            return;
        }
        let bytes = message.as_bytes();
        let mut n = bytes.len().min(EXIT_MESSAGE_MAX);
        while !message.is_char_boundary(n) {
            n -= 1;
        }
        for (slot, b) in life.exit_message.iter().zip(&bytes[..n]) {
            slot.store(*b, Relaxed);
        }
        life.exit_message_len.store(n as u32, Relaxed);
        life.exit_value.store(value, Relaxed);
        life.exit_kind.store(kind as u32, Release);
    }

    /// What was recorded so far.
    pub fn raw_exit(&self) -> RawExit {
        let life = &self.region.header().life;
        let kind = ExitKind::from_u32(life.exit_kind.load(Acquire));
        let n = (life.exit_message_len.load(Relaxed) as usize).min(EXIT_MESSAGE_MAX);
        let bytes: Vec<u8> = life.exit_message[..n]
            .iter()
            .map(|b| b.load(Relaxed))
            .collect();
        RawExit {
            kind,
            value: life.exit_value.load(Relaxed),
            message: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Called by the reaper once the process is gone: fixes the final exit record from the
    /// wait status, marks the mailbox exited and wakes every joiner and blocked sender.
    pub fn publish_exit(&self, signal: Option<i32>, status: i32) {
        let recorded = self.raw_exit();
        match (recorded.kind, signal) {
            // A panic that ended in abort() is still a panic, and an actor killed for its
            // link keeps the reason it was killed for.
            (ExitKind::Panicked | ExitKind::Linked, _) => {}
            // The abort of a failed allocation under the memory limit.
            (ExitKind::OutOfMemory, Some(sig)) if sig == libc::SIGABRT => {}
            (_, Some(sig)) => {
                self.region.header().life.exit_kind.store(0, SeqCst);
                self.record_exit(ExitKind::Signaled, sig, "");
            }
            // exit(0) without a record is a clean end, as in Python; exit(n) keeps n.
            (ExitKind::None, None) if status == 0 => self.record_exit(ExitKind::Normal, 0, ""),
            (ExitKind::None, None) => self.record_exit(ExitKind::Exited, status, ""),
            _ => {}
        }
        let h = self.region.header();
        if !self.is_supervised() {
            h.life.final_exit.store(1, SeqCst);
        }
        h.life.state.store(STATE_EXITED, SeqCst);
        // Wake joiners, a blocked consumer and blocked producers so they notice.
        self.wake_all();
    }

    /// Waits until the state differs from `seen` or `timeout` passes.
    pub fn wait_state_change(&self, seen: u32, timeout: Duration) {
        let life = &self.region.header().life;
        if life.state.load(Ordering::Acquire) == seen {
            futex::wait(&life.state, seen, Some(timeout));
        }
    }

    /// Waits until the consumer is running or exited, at most until `deadline`.
    pub fn wait_started(&self, deadline: Instant) -> u32 {
        loop {
            let s = self.state();
            let left = deadline.saturating_duration_since(Instant::now());
            if s != STATE_STARTING || left.is_zero() {
                return s;
            }
            self.wait_state_change(s, left.min(LIVENESS_SLICE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FrameHeader, FrameKind, WireError};

    /// A private directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "procession-unit-{}-{tag}-{}",
                std::process::id(),
                N.fetch_add(1, Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn frame(n: u64, body_len: usize) -> Vec<u8> {
        let mut f = Vec::new();
        FrameHeader {
            kind: FrameKind::Tell,
            tag: n,
            corr: 0,
            reply_to: 0,
        }
        .write_into(&mut f);
        f.extend((0..body_len).map(|i| (i as u64 ^ n) as u8));
        FrameHeader::seal(&mut f).unwrap();
        f
    }

    fn small(ring: usize, capacity: u32) -> MailboxConfig {
        MailboxConfig::default().ring_size(ring).capacity(capacity)
    }

    fn recv_frame(mb: &Mailbox, c: &mut Consumer) -> Vec<u8> {
        match mb.recv(c, Wait::from_timeout(Some(Duration::from_secs(10)))) {
            Received::Frame(f, _) => f.to_vec(),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn frames_wrap_around_the_ring_intact_and_in_order() {
        let dir = TempDir::new("wrap");
        let mb = Mailbox::create(&dir.0, &small(4096, 1000), "t", false).unwrap();
        let mut c = Consumer::new();
        for n in 0..500u64 {
            let f = frame(n, (n as usize * 7) % 300);
            mb.send(&f, Wait::Never).unwrap();
            assert_eq!(recv_frame(&mb, &mut c), f);
        }
    }

    #[test]
    fn frame_larger_than_the_ring_streams_through_it() {
        let dir = TempDir::new("stream");
        let mb = Mailbox::create(&dir.0, &small(4096, 16), "t", false).unwrap();
        let big = frame(1, 100_000);
        let sender = {
            let mb = mb.clone();
            let big = big.clone();
            std::thread::spawn(move || mb.send(&big, Wait::Forever))
        };
        let mut c = Consumer::new();
        assert_eq!(recv_frame(&mb, &mut c), big);
        sender.join().unwrap().unwrap();
    }

    #[test]
    fn full_mailbox_refuses_without_waiting_and_accepts_after_a_receive() {
        let dir = TempDir::new("full");
        let mb = Mailbox::create(&dir.0, &small(1 << 16, 3), "t", false).unwrap();
        for n in 0..3 {
            mb.send(&frame(n, 8), Wait::Never).unwrap();
        }
        assert_eq!(mb.send(&frame(3, 8), Wait::Never), Err(SendFail::Full));
        let deadline = Wait::from_timeout(Some(Duration::from_millis(30)));
        assert_eq!(mb.send(&frame(3, 8), deadline), Err(SendFail::Timeout));
        let mut c = Consumer::new();
        assert_eq!(recv_frame(&mb, &mut c), frame(0, 8));
        // The frame being handled no longer counts against the capacity.
        mb.send(&frame(3, 8), Wait::Never).unwrap();
        for n in 1..4 {
            assert_eq!(recv_frame(&mb, &mut c), frame(n, 8));
        }
    }

    #[test]
    fn frame_over_max_frame_is_refused_by_the_sender() {
        let dir = TempDir::new("max");
        let cfg = small(1 << 16, 8).max_frame(1000);
        let mb = Mailbox::create(&dir.0, &cfg, "t", false).unwrap();
        assert_eq!(
            mb.send(&frame(0, 2000), Wait::Never),
            Err(SendFail::TooLarge)
        );
    }

    #[test]
    fn oversized_announced_length_is_skipped_without_allocating() {
        let dir = TempDir::new("oversize");
        let cfg = small(1 << 16, 8).max_frame(1 << 20);
        let mb = Mailbox::create(&dir.0, &cfg, "t", false).unwrap();
        let mut lie = frame(0, 16);
        lie[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        mb.send_raw_record(true, true, &lie).unwrap();
        mb.send(&frame(1, 4), Wait::Never).unwrap();
        let mut c = Consumer::new();
        let wait = Wait::from_timeout(Some(Duration::from_secs(5)));
        match mb.recv(&mut c, wait) {
            Received::Bad(WireError::TooLarge { len, max }) => {
                assert_eq!((len, max), (u32::MAX as u64, 1 << 20))
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(
            c.buffer_capacity() < 1 << 20,
            "the consumer allocated for a lie"
        );
        assert_eq!(recv_frame(&mb, &mut c), frame(1, 4));
    }

    #[test]
    fn abort_record_drops_the_partial_frame() {
        let dir = TempDir::new("abort");
        let mb = Mailbox::create(&dir.0, &small(1 << 16, 8), "t", false).unwrap();
        let f = frame(0, 64);
        mb.send_raw_record(true, false, &f[..40]).unwrap();
        mb.send_raw_record(false, false, &[]).unwrap();
        ring::send_raw_record(&mb.region, ring::ABORT, &[]).unwrap();
        mb.send(&frame(1, 4), Wait::Never).unwrap();
        let mut c = Consumer::new();
        let wait = Wait::from_timeout(Some(Duration::from_secs(5)));
        assert!(matches!(
            mb.recv(&mut c, wait),
            Received::Bad(WireError::Aborted)
        ));
        assert_eq!(recv_frame(&mb, &mut c), frame(1, 4));
    }

    #[test]
    fn writer_dying_mid_frame_is_repaired_by_the_next_writer() {
        let dir = TempDir::new("robust");
        let mb = Mailbox::create(&dir.0, &small(1 << 16, 8), "t", false).unwrap();
        let f = frame(0, 64);
        // A thread that exits holding a robust mutex is, to the kernel, an owner that died.
        std::thread::scope(|s| {
            s.spawn(|| mb.begin_frame_and_hold_lock(&f[..40]).unwrap());
        });
        mb.send(
            &frame(1, 4),
            Wait::from_timeout(Some(Duration::from_secs(10))),
        )
        .unwrap();
        let mut c = Consumer::new();
        let wait = Wait::from_timeout(Some(Duration::from_secs(5)));
        assert!(matches!(
            mb.recv(&mut c, wait),
            Received::Bad(WireError::Aborted)
        ));
        assert_eq!(recv_frame(&mb, &mut c), frame(1, 4));
    }

    #[test]
    fn garbage_bytes_in_the_ring_are_dropped_and_the_next_frame_arrives() {
        let dir = TempDir::new("garbage");
        let mb = Mailbox::create(&dir.0, &small(1 << 16, 8), "t", false).unwrap();
        // A record whose flags word is not one the protocol knows.
        ring::send_raw_record(&mb.region, 0x80, b"garbage!").unwrap();
        let mut c = Consumer::new();
        let wait = Wait::from_timeout(Some(Duration::from_secs(5)));
        assert!(matches!(
            mb.recv(&mut c, wait),
            Received::Bad(WireError::BadHeader(_))
        ));
        mb.send(&frame(1, 4), Wait::Never).unwrap();
        assert_eq!(recv_frame(&mb, &mut c), frame(1, 4));
    }

    #[test]
    fn recv_times_out_on_an_empty_mailbox() {
        let dir = TempDir::new("empty");
        let mb = Mailbox::create(&dir.0, &small(4096, 8), "t", false).unwrap();
        let mut c = Consumer::new();
        let wait = Wait::from_timeout(Some(Duration::from_millis(20)));
        assert!(matches!(mb.recv(&mut c, wait), Received::TimedOut));
    }

    #[test]
    fn opening_a_file_that_is_not_a_mailbox_fails() {
        let dir = TempDir::new("notmb");
        std::fs::write(dir.0.join("mb-0000000000000001"), vec![0u8; 8192]).unwrap();
        assert!(Mailbox::open(&dir.0, 1).is_err());
    }
}

#[cfg(test)]
mod doc_examples {
    use super::*;

    #[test]
    fn a_config_keeps_the_capacity_it_is_given() {
        assert_eq!(MailboxConfig::default().capacity(16).capacity, 16);
    }

    #[test]
    fn a_tree_id_depends_only_on_the_parent_and_the_child_id() {
        let a = tree_id(7, "worker");
        assert_eq!(a, tree_id(7, "worker"));
        assert_ne!(a, tree_id(7, "other"));
        assert!(is_tree_id(a));
    }
}
