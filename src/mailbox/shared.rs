//! **Marked unsafe file**: the raw layout of a mailbox file in shared memory, and the only
//! code outside `os/` that dereferences pointers into it. Everything above this file uses
//! the safe [`Region`] methods.
//!
//! A mailbox file is one page of [`Header`] followed by a byte ring of `ring_size` bytes
//! (a power of two). All fields that change after creation are atomics; the producers'
//! robust mutex serializes writers. The magic word is written last by the creator, so a
//! process that maps a half-created file refuses it.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::os::robust::RobustMutex;
use crate::os::shm::SharedMapping;

/// Names the layout version too: a process built against another layout (an inspector
/// such as `procession-top` built from other sources) refuses the file.
const MAGIC: u64 = u64::from_le_bytes(*b"PRCSNMB2");
/// Bytes before the ring: the header, padded to one page.
pub const HEADER_SIZE: usize = 4096;
/// Longest actor name stored in the header.
pub const NAME_MAX: usize = 200;
/// Longest exit message stored in the header.
pub const EXIT_MESSAGE_MAX: usize = 1024;

/// Producer-side words. Each group is on a cache line of its own, so that what one side
/// writes per message is not on a line the other side reads per message (a shared line
/// written by one CPU and read by the other costs a transfer each time).
#[repr(C, align(64))]
pub struct ProducerSide {
    /// Bytes committed into the ring since creation (monotonic; position = tail % ring).
    pub tail: AtomicU64,
    /// Complete frames committed since creation (monotonic; raised just before `tail`
    /// publishes a frame's last record). Frames queued = this − `frames_taken`.
    pub frames_sent: AtomicU64,
    /// 1 while a producer has written the first chunk of a frame but not its last.
    pub frame_open: AtomicU32,
    /// Pid of the process that last took the producer lock.
    pub writer_pid: AtomicU32,
    /// Starts the next words on a line of their own: the consumer reads them after
    /// every frame, and producers write them only when they sleep.
    pub _line: CacheLine,
    /// Producers sleeping for space or capacity.
    pub producers_waiting: AtomicU32,
    /// Futex word the consumer bumps when it frees space.
    pub space_seq: AtomicU32,
}

/// Consumer-side words, in three cache-line groups (see [`ProducerSide`]).
#[repr(C, align(64))]
pub struct ConsumerSide {
    /// 1 while the consumer sleeps (or is about to) on `data_seq`. Producers read it on
    /// every send; the consumer writes it only when it goes to sleep.
    pub consumer_waiting: AtomicU32,
    /// Futex word producers bump when they publish data for a sleeping consumer.
    pub data_seq: AtomicU32,
    /// Starts the consumer's per-frame words on a line of their own.
    pub _line: CacheLine,
    /// Bytes consumed since creation. Producers read it only when the room they last saw
    /// is used up.
    pub head: AtomicU64,
    /// Complete frames consumed since creation (good or bad; monotonic).
    pub frames_taken: AtomicU64,
    /// Starts the consumer's own bookkeeping (no producer reads it) on the next line.
    pub _own: CacheLine,
    /// For a reply inbox: the correlation id its owner is waiting for (0: none).
    pub waiting_corr: AtomicU64,
    /// Frames the consumer rejected as malformed.
    pub bad_frames: AtomicU64,
    /// Frames the consumer reassembled (for benchmarks and introspection).
    pub frames_in: AtomicU64,
    /// Ring position of the frame being handled (`NONE`: none). Survives the consumer's
    /// death, so its next incarnation knows which frame was in flight.
    pub in_flight_pos: AtomicU64,
    /// How many incarnations have started handling the frame at `in_flight_pos`.
    pub in_flight_attempts: AtomicU32,
    /// Reply inbox and correlation id of the in-flight frame, if it is an ask.
    pub in_flight_reply_to: AtomicU64,
    /// See `in_flight_reply_to`.
    pub in_flight_corr: AtomicU64,
    /// Frames dropped after crashing the actor more often than their redelivery limit.
    pub poison_dropped: AtomicU64,
    /// Messages the actor handled (tells and asks), over every incarnation.
    pub handled: AtomicU64,
    /// Asks among them (a reply was produced).
    pub asks_answered: AtomicU64,
    /// Nanoseconds spent in handlers, summed.
    pub busy_ns: AtomicU64,
    /// The longest single handler run, in nanoseconds.
    pub busy_max_ns: AtomicU64,
    /// The most frames ever queued at once (seen by the consumer as it takes one).
    pub queued_high: AtomicU32,
}

/// A zero-sized field that starts the next one on a fresh 64-byte cache line.
#[repr(C, align(64))]
pub struct CacheLine;

/// No frame in flight.
pub const NONE: u64 = u64::MAX;

/// Watchers: who is told when the consumer's process exits.
#[repr(C, align(64))]
pub struct WatchSide {
    /// Mailbox ids to notify (0: free slot; [`LINK_BIT`] set: a link, else a monitor).
    /// Each slot fires once: the publisher of an exit swaps it to 0.
    pub slots: [AtomicU64; WATCH_SLOTS],
}

/// For mailboxes used as queues and pipes: a consumers' lock (many readers), a handle
/// count across processes (the last handle removes the file), a count of unfinished
/// tasks (`JoinableQueue`), and the processes holding the writing end (a pipe's EOF).
#[repr(C, align(64))]
pub struct QueueSide {
    /// Serializes readers when there are several.
    pub consumers: RobustMutex,
    /// Handles to this queue in all processes.
    pub handles: AtomicU32,
    /// Items put and not yet marked done (futex word).
    pub unfinished: AtomicU32,
    /// Writing ends travelling inside messages (serialized, not yet deserialized).
    pub writers_in_flight: AtomicU32,
    /// 0 open; 1 shut down (no more puts, gets end once it is empty); 2 shut down
    /// immediately (what it held is discarded).
    pub shutdown: AtomicU32,
    /// `pid << 32 | count` of each process holding the writing end.
    pub writers: [AtomicU64; WRITER_SLOTS],
}

/// Where the consumer sits among the runtime's actors, for inspectors (`procession-top`,
/// [`inspect`](crate::inspect)). Written by the spawner before the actor starts; like
/// every header byte it is untrusted to a reader.
#[repr(C, align(64))]
pub struct TreeSide {
    /// [`ROLE_ACTOR`] for an actor's mailbox; 0 for queues, pipes and reply inboxes.
    pub role: AtomicU32,
    /// Length of the valid prefix of `label`.
    pub label_len: AtomicU32,
    /// Mailbox id of the actor's supervisor, or of the actor that spawned it (0: the
    /// root process spawned it).
    pub parent: AtomicU64,
    /// UTF-8 text: its child id under a supervisor (empty otherwise).
    pub label: [AtomicU8; LABEL_MAX],
}

/// [`TreeSide::role`] of an actor's mailbox.
pub const ROLE_ACTOR: u32 = 1;
/// Longest label stored in the header.
pub const LABEL_MAX: usize = 64;

/// Processes tracked as holders of a pipe's writing end.
pub const WRITER_SLOTS: usize = 32;

/// Watcher slots per mailbox.
pub const WATCH_SLOTS: usize = 48;
/// Marks a watcher slot as a link rather than a monitor.
pub const LINK_BIT: u64 = 1 << 62;

/// Life of the process that consumes this mailbox.
#[repr(C, align(64))]
pub struct LifeSide {
    /// Futex word: [`STATE_STARTING`], [`STATE_RUNNING`] or [`STATE_EXITED`].
    pub state: AtomicU32,
    /// Pid of the consuming process (0 before it starts).
    pub pid: AtomicU32,
    /// 1 once the consumer finished starting (an actor's `create` succeeded).
    pub ran: AtomicU32,
    /// Which incarnation runs (0 for the first; a restart adds one).
    pub incarnation: AtomicU32,
    /// 1 if a supervisor owns this mailbox: an exit is not final, the file is kept for
    /// the next incarnation.
    pub supervised: AtomicU32,
    /// 1 once no incarnation will follow (the actor is gone for good).
    pub final_exit: AtomicU32,
    /// 1 if the consumer traps exits of linked actors (gets `Exited` messages instead
    /// of dying with them).
    pub trap_exit: AtomicU32,
    /// 1 if the consumer is a daemon: its parent does not wait for it at exit.
    pub daemon: AtomicU32,
    /// Exit kind and value of the previous incarnation (kept across a restart).
    pub prev_exit_kind: AtomicU32,
    /// See `prev_exit_kind`.
    pub prev_exit_value: AtomicI32,
    /// Pid of the previous incarnation, so that an error about it names it.
    pub prev_pid: AtomicU32,
    /// How it ended, as recorded by itself or by its reaper (an `EXIT_*` code).
    pub exit_kind: AtomicU32,
    /// Signal number or exit status, depending on `exit_kind`.
    pub exit_value: AtomicI32,
    /// Length of the valid prefix of `exit_message`.
    pub exit_message_len: AtomicU32,
    /// UTF-8 text: the panic message or failure reason.
    pub exit_message: [AtomicU8; EXIT_MESSAGE_MAX],
}

/// The mailbox file header.
#[repr(C)]
pub struct Header {
    magic: AtomicU64,
    /// Ring bytes (a power of two); read once at open (see [`Region`]).
    ring_size: u64,
    /// Maximum frames queued at once; read once at open.
    capacity: u32,
    name_len: u32,
    /// Largest frame the consumer accepts; read once at open.
    max_frame: u64,
    name: [u8; NAME_MAX],
    /// The producers' lock.
    pub lock: RobustMutex,
    /// See [`ProducerSide`].
    pub prod: ProducerSide,
    /// See [`ConsumerSide`].
    pub cons: ConsumerSide,
    /// See [`LifeSide`].
    pub life: LifeSide,
    /// See [`WatchSide`].
    pub watch: WatchSide,
    /// See [`QueueSide`].
    pub queue: QueueSide,
    /// See [`TreeSide`].
    pub tree: TreeSide,
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_SIZE);

/// The consumer has not started yet.
pub const STATE_STARTING: u32 = 0;
/// The consumer is handling messages.
pub const STATE_RUNNING: u32 = 1;
/// The consumer's process has exited and been reaped; `exit_*` are final.
pub const STATE_EXITED: u32 = 2;

/// A mapped mailbox file.
///
/// The sizes fixed at creation (`ring_size`, `capacity`, `max_frame`) are read once, when
/// the file is mapped, checked, and kept here: a later write over the shared header
/// cannot change the bounds this process works with.
pub struct Region {
    map: SharedMapping,
    ring_size: u64,
    capacity: u32,
    max_frame: u64,
    name: String,
    /// What this process's producers last read of the consumer's progress.
    pub seen: Seen,
}

/// The consumer's `head` and `frames_taken` as a producer in this process last read them
/// (plain process memory, not shared). Both only grow, so room computed from an older
/// reading is never more than the room there is: a producer re-reads the shared words
/// only when the room it last saw is used up, and the consumer's line stays in its cache.
#[derive(Debug, Default)]
pub struct Seen {
    /// `head` as last read (and checked against `tail`).
    pub head: AtomicU64,
    /// `frames_taken` as last read (and checked against `frames_sent`).
    pub taken: AtomicU64,
}

/// What [`Region::open_held`] read from a mailbox file that was known good: the bounds
/// to map it with later, whatever has been written over its header since. Holding them
/// costs no mapping and no fd, so a process that forks (the zygote, which holds one per
/// running actor) copies nothing per actor at each fork.
#[derive(Debug, Clone)]
pub struct HeldRegion {
    ring_size: u64,
    capacity: u32,
    max_frame: u64,
    name: String,
}

impl HeldRegion {
    /// Maps the file at `path` with these bounds, without trusting its header: it must
    /// still have the length those bounds give (a file cut short would fault on access).
    pub fn map(&self, path: &Path) -> io::Result<Region> {
        let map = SharedMapping::open(path)?;
        if map.len() as u64 != HEADER_SIZE as u64 + self.ring_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the mailbox file changed size since it was checked",
            ));
        }
        Ok(Region {
            map,
            ring_size: self.ring_size,
            capacity: self.capacity,
            max_frame: self.max_frame,
            name: self.name.clone(),
            seen: Seen::default(),
        })
    }
}

impl Region {
    /// Creates the file at `path` with a fresh header. `ring_size` must be a power of two.
    pub fn create(
        path: &Path,
        ring_size: usize,
        capacity: u32,
        max_frame: u64,
        name: &str,
    ) -> io::Result<Region> {
        assert!(ring_size.is_power_of_two() && ring_size >= 4096);
        let map = SharedMapping::create(path, HEADER_SIZE + ring_size)?;
        let hdr = map.as_ptr() as *mut Header;
        let name = &name.as_bytes()[..name.len().min(NAME_MAX)];
        // SAFETY: the file was just created with O_EXCL and zero-filled by ftruncate; no
        // other process can have mapped it yet (the magic is still zero, so an early opener
        // refuses it). The writes below initialize plain fields of a page-aligned Header
        // that fits in the first page (checked at compile time).
        unsafe {
            (*hdr).ring_size = ring_size as u64;
            (*hdr).capacity = capacity;
            (*hdr).max_frame = max_frame;
            (*hdr).name_len = name.len() as u32;
            (*hdr).cons.in_flight_pos = AtomicU64::new(NONE);
            (&mut (*hdr).name)[..name.len()].copy_from_slice(name);
        }
        let region = Region {
            map,
            ring_size: ring_size as u64,
            capacity,
            max_frame,
            name: String::new(),
            seen: Seen::default(),
        };
        let region = Region {
            name: region.read_name(),
            ..region
        };
        region.header().lock.init(false)?;
        region.header().queue.consumers.init(false)?;
        region.header().magic.store(MAGIC, Ordering::Release);
        Ok(region)
    }

    /// Maps an existing mailbox file and checks that it is one.
    pub fn open(path: &Path) -> io::Result<Region> {
        Self::checked(SharedMapping::open(path)?)
    }

    /// Maps an existing mailbox file **read-only** (`O_RDONLY`, `PROT_READ`) and checks
    /// that it is one. Only loads may go through such a region: a store, a lock or a
    /// futex wake on it would fault, so an inspector that uses it cannot disturb the
    /// program it watches.
    pub fn open_read_only(path: &Path) -> io::Result<Region> {
        Self::checked(SharedMapping::open_read_only(path)?)
    }

    /// Maps an existing mailbox file for a moment, checks it, and keeps only the sizes
    /// and name read then: see [`HeldRegion`].
    pub fn open_held(path: &Path) -> io::Result<HeldRegion> {
        let region = Self::open(path)?;
        Ok(HeldRegion {
            ring_size: region.ring_size,
            capacity: region.capacity,
            max_frame: region.max_frame,
            name: region.name.clone(),
        })
    }

    fn checked(map: SharedMapping) -> io::Result<Region> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        if map.len() < HEADER_SIZE + 4096 {
            return Err(bad("file too small for a mailbox"));
        }
        // SAFETY: the mapping is at least one page long and page-aligned, so reading the
        // atomic magic word at offset 0 is in bounds and aligned.
        let magic = unsafe { &*(map.as_ptr() as *const AtomicU64) }.load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(bad("not a procession mailbox (or not fully created)"));
        }
        // SAFETY: magic is set, so the creator finished writing the header (Release/Acquire).
        // These plain fields are only read here, once; whatever bytes they hold are valid
        // integers, and they are checked below before use.
        let (ring_size, capacity, max_frame) = unsafe {
            let h = map.as_ptr() as *const Header;
            ((*h).ring_size, (*h).capacity, (*h).max_frame)
        };
        if !ring_size.is_power_of_two() || HEADER_SIZE as u64 + ring_size != map.len() as u64 {
            return Err(bad("mailbox header does not match the file size"));
        }
        if capacity == 0 || max_frame == 0 || max_frame > u32::MAX as u64 {
            return Err(bad("mailbox header holds impossible sizes"));
        }
        let region = Region {
            map,
            ring_size,
            capacity,
            max_frame,
            name: String::new(),
            seen: Seen::default(),
        };
        Ok(Region {
            name: region.read_name(),
            ..region
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        // SAFETY: the mapping is page-aligned and at least HEADER_SIZE long, and Header
        // holds only atomics, a RobustMutex, and fields written before the magic; it stays
        // mapped for as long as `&self` lives.
        unsafe { &*(self.map.as_ptr() as *const Header) }
    }

    /// The stable name of the actor type that owns this mailbox (as read at open).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn read_name(&self) -> String {
        let h = self.header();
        let n = (h.name_len as usize).min(NAME_MAX);
        String::from_utf8_lossy(&h.name[..n]).into_owned()
    }

    /// Ring bytes.
    pub fn ring_size(&self) -> u64 {
        self.ring_size
    }

    /// Most frames queued at once (as read when the file was mapped).
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Largest frame accepted (as read when the file was mapped).
    pub fn max_frame(&self) -> u64 {
        self.max_frame
    }

    fn ring(&self) -> *mut u8 {
        // SAFETY: HEADER_SIZE < mapping length, checked at create/open.
        unsafe { self.map.as_ptr().add(HEADER_SIZE) }
    }

    /// Writes `bytes` over the file at `offset` (header or ring), as a careless or hostile
    /// process of the same user could (fault-injection tests only; bounds are checked).
    pub fn scribble(&self, offset: usize, bytes: &[u8]) {
        let end = offset.saturating_add(bytes.len()).min(self.map.len());
        let n = end.saturating_sub(offset);
        // SAFETY: offset..offset+n lies inside the mapping (clamped to its length). Other
        // processes may access these bytes concurrently, through atomics; that is the
        // point (a foreign write), and every reader treats the header as untrusted. No
        // Rust reference to these bytes is held across this copy in this process except
        // atomics, for which a concurrent plain write is what another process does.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.map.as_ptr().add(offset), n);
        }
    }

    /// Copies `src` into the ring starting at stream position `pos`, wrapping at the end.
    /// The caller holds the producer lock and has checked that the bytes are free.
    pub fn write_at(&self, pos: u64, src: &[u8]) {
        let off = (pos % self.ring_size) as usize;
        let first = src.len().min(self.ring_size as usize - off);
        // SAFETY: off < ring_size and first <= ring_size - off, the rest wraps to offset 0
        // and src.len() <= ring_size (callers write at most one chunk); both ranges are
        // inside the mapping. Only the lock holder writes free ring space, and consumers do
        // not read it until `tail` is published, so there is no concurrent access.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ring().add(off), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), self.ring(), src.len() - first);
        }
    }

    /// Copies ring bytes at stream position `pos` into `dst`, wrapping at the end.
    pub fn read_at(&self, pos: u64, dst: &mut [u8]) {
        let off = (pos % self.ring_size) as usize;
        let len = dst.len().min(self.ring_size as usize);
        let first = len.min(self.ring_size as usize - off);
        // SAFETY: as in write_at, both source ranges lie inside the ring. The bytes were
        // published before `tail` (Release) and read after loading it (Acquire); producers
        // do not overwrite them until `head` passes them.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring().add(off), dst.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(self.ring(), dst.as_mut_ptr().add(first), len - first);
        }
    }

    /// Appends `len` ring bytes at stream position `pos` to `dst` (one copy, no zero-fill).
    pub fn read_extend(&self, pos: u64, len: usize, dst: &mut Vec<u8>) {
        let off = (pos % self.ring_size) as usize;
        let len = len.min(self.ring_size as usize);
        let first = len.min(self.ring_size as usize - off);
        // SAFETY: both ranges lie inside the ring (off < ring_size, first <= ring_size - off,
        // len - first <= off); they were published before `tail` and are not overwritten
        // until `head` passes them. The slices live only for the two copies.
        unsafe {
            dst.extend_from_slice(std::slice::from_raw_parts(self.ring().add(off), first));
            dst.extend_from_slice(std::slice::from_raw_parts(self.ring(), len - first));
        }
    }
}

/// Offset in a mailbox file of a header field, by name (for fault-injection tests):
/// `magic`, `ring_size`, `capacity`, `max_frame`, `lock`, `tail`, `frame_open`,
/// `head`, `queued`, `consumer_waiting`, `data_seq`, `state`, `pid`, `final_exit`,
/// `exit_kind`, `watch`, `ring` (the first ring byte).
pub fn header_field_offset(field: &str) -> Option<usize> {
    use std::mem::offset_of;
    let prod = offset_of!(Header, prod);
    let cons = offset_of!(Header, cons);
    let life = offset_of!(Header, life);
    Some(match field {
        "magic" => offset_of!(Header, magic),
        "ring_size" => offset_of!(Header, ring_size),
        "capacity" => offset_of!(Header, capacity),
        "max_frame" => offset_of!(Header, max_frame),
        "lock" => offset_of!(Header, lock),
        "tail" => prod + offset_of!(ProducerSide, tail),
        "frame_open" => prod + offset_of!(ProducerSide, frame_open),
        "head" => cons + offset_of!(ConsumerSide, head),
        "frames_sent" => prod + offset_of!(ProducerSide, frames_sent),
        "frames_taken" => cons + offset_of!(ConsumerSide, frames_taken),
        "consumer_waiting" => cons + offset_of!(ConsumerSide, consumer_waiting),
        "data_seq" => cons + offset_of!(ConsumerSide, data_seq),
        "state" => life + offset_of!(LifeSide, state),
        "pid" => life + offset_of!(LifeSide, pid),
        "final_exit" => life + offset_of!(LifeSide, final_exit),
        "exit_kind" => life + offset_of!(LifeSide, exit_kind),
        "watch" => offset_of!(Header, watch),
        "ring" => HEADER_SIZE,
        _ => return None,
    })
}
