//! **Marked unsafe file**: [`SharedBytes`], an immutable byte buffer in a shared-memory
//! file of the runtime directory, that travels in messages as a handle. This is the only
//! code of it that dereferences pointers into shared memory.
//!
//! # Layout and counting
//! The file is a 4 KiB header, then the bytes. The header holds the length, a count of
//! references **in flight** (handles serialized into a message and not yet decoded) and
//! a table of **holder slots**, one per process that has the buffer mapped: the slot
//! holds that process's pid. Clones within a process share one mapping and one slot.
//!
//! - Serializing a handle adds one in-flight reference; decoding it claims a slot for
//!   the decoding process (or reuses its mapping), then takes the in-flight reference
//!   back. So between the two, the buffer always has a reference somewhere.
//! - When a process drops its last handle, it frees its slot, and if no slot is taken and
//!   nothing is in flight, removes the file.
//! - **A holder that crashes** frees nothing itself, so each process also records the
//!   buffers it holds as empty marker files in `holds-<pid>/` of the runtime directory.
//!   The process that reaps an actor (the zygote, or a `fork`-method parent) frees the
//!   dead pid's slots in those buffers and removes any buffer that is then unreferenced.
//! - A handle serialized into a message that is never decoded (the message was dropped
//!   with its mailbox) keeps its buffer until the runtime ends, as for the toolbox
//!   handles ([`crate::sync`]).
//!
//! # Untrusted bytes
//! The header is shared memory that any process of the same user can write: the length
//! is checked against the file's size at every map, and a scribbled count or slot can
//! at worst remove the file early (every existing mapping stays valid; a handle still in
//! flight then fails to decode with [`Error::BadRef`]) or keep it until the runtime ends.
//! Pids in the slots are only ever compared, never signalled. The bytes themselves are
//! as untrusted as any message; a process that writes the file behind procession's back
//! changes what readers see.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::error::{Error, Result};
use crate::os::shm::SharedMapping;
use crate::process::runtime;

const MAGIC: u64 = u64::from_le_bytes(*b"PRCSBYT1");
const HEADER: usize = 4096;
/// Holder slots: processes that have one buffer mapped at once, beyond which a holder
/// is counted without a pid (and not freed if it crashes).
const SLOTS: usize = 1000;

#[repr(C)]
struct Header {
    magic: AtomicU64,
    len: u64,
    in_flight: AtomicU32,
    /// Holders that found no free slot.
    unslotted: AtomicU32,
    slots: [AtomicU32; SLOTS],
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER);

/// One process's mapping of one buffer.
struct Mapped {
    map: SharedMapping,
    id: u64,
    len: usize,
    /// The slot this process took, or `None`: counted in `unslotted`.
    slot: Option<usize>,
    path: PathBuf,
    marker: PathBuf,
}

/// An immutable byte buffer in shared memory that travels between processes as a
/// handle: sending one costs what sending a `u64` costs, whatever its length, and the
/// receiver reads the same pages (no copy). Clone is a reference count, within a process
/// and across processes; the memory is freed when the last holder drops it, **including
/// holders that crash** (their reaper frees their share).
///
/// When to use it instead of [`ByteBuf`](crate::ByteBuf) (or `Vec<u8>`): a `ByteBuf` is
/// copied into the target's ring and out again, and is bounded by the mailbox's
/// `max_frame` (64 MiB by default). A `SharedBytes` is a file in `/dev/shm`: making one
/// allocates and zeroes fresh pages, which costs about what one trip through a ring
/// costs (on the 2-vCPU development VM: 0.9 GB/s for a fresh 16 MiB buffer and its send,
/// against 1.7 GB/s for a 16 MiB `ByteBuf`), and then **sending it again costs a handle**
/// (13–14 GB/s for 16 MiB, the receiver mapping it and touching every page). So: for
/// bytes sent once and read once, `ByteBuf` is as good and simpler; use `SharedBytes`
/// for buffers sent to several actors or several times, kept by the receiver, larger
/// than `max_frame`, or written in place once ([`with_len`](Self::with_len)) instead of
/// being built in a `Vec` first.
///
/// ```
/// use procession::shared::SharedBytes;
///
/// let frame = SharedBytes::with_len(16 << 20, |buf| buf.fill(7))?; // written in place
/// let copy = frame.clone(); // a reference, not a copy
/// assert_eq!(copy.len(), 16 << 20);
/// assert!(copy.iter().all(|&b| b == 7));
/// let small = SharedBytes::from_slice(b"hello")?;
/// assert_eq!(&small[..], b"hello");
/// # Ok::<(), procession::Error>(())
/// ```
///
/// In a message it is a field like any other:
///
/// ```no_run
/// # use procession::prelude::*;
/// use procession::shared::SharedBytes;
///
/// #[derive(Serialize, Deserialize, Message)]
/// #[message(reply = u64)]
/// struct Checksum(SharedBytes);
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Checksum))] struct Summer;
/// # impl Handler<Checksum> for Summer {
/// #     fn handle(&mut self, m: Checksum, _: &mut Context<Self>) -> u64 {
/// #         m.0.iter().map(|&b| b as u64).sum()
/// #     }
/// # }
/// # let summer: ActorRef<Summer> = procession::spawn(Summer)?;
/// let image = SharedBytes::from_slice(&std::fs::read("frame.raw")?)?;
/// let sum = summer.ask(Checksum(image))?; // the actor reads the same pages
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A `SharedBytes` belongs to the runtime that created it: it is valid in every process
/// of the program, and gone when the program ends.
#[derive(Clone)]
pub struct SharedBytes {
    inner: Arc<Mapped>,
}

fn cache() -> &'static Mutex<HashMap<u64, Weak<Mapped>>> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Weak<Mapped>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn file_of(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("bytes-{id:016x}"))
}

fn holds_dir(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("holds-{pid:08x}"))
}

fn header(map: &SharedMapping) -> &Header {
    // SAFETY: every mapping made here is at least HEADER bytes long and page-aligned;
    // Header holds only atomics and `len`, a plain integer written before the magic was
    // published (and checked against the file size before use), so any bytes are valid.
    unsafe { &*(map.as_ptr() as *const Header) }
}

impl Mapped {
    fn header(&self) -> &Header {
        header(&self.map)
    }

    /// Takes a holder slot for this process, and records the hold for its reaper.
    fn claim(map: SharedMapping, id: u64, len: usize, dir: &Path) -> Mapped {
        let pid = std::process::id();
        let h = header(&map);
        let slot =
            (0..SLOTS).find(|&i| h.slots[i].compare_exchange(0, pid, SeqCst, SeqCst).is_ok());
        if slot.is_none() {
            h.unslotted.fetch_add(1, SeqCst);
        }
        let holds = holds_dir(dir, pid);
        let marker = holds.join(format!("{id:016x}"));
        // Best effort: without a marker, a crash of this process keeps the buffer until
        // the runtime ends (as for an unslotted holder).
        let _ = std::fs::create_dir(&holds);
        let _ = std::fs::File::create(&marker);
        Mapped {
            map,
            id,
            len,
            slot,
            path: file_of(dir, id),
            marker,
        }
    }
}

/// Whether nothing refers to the buffer: no slot taken, nothing in flight, no unslotted
/// holder.
fn unreferenced(h: &Header) -> bool {
    h.in_flight.load(SeqCst) == 0
        && h.unslotted.load(SeqCst) == 0
        && h.slots.iter().all(|s| s.load(SeqCst) == 0)
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let h = self.header();
        match self.slot {
            Some(i) => {
                let _ = h.slots[i].compare_exchange(std::process::id(), 0, SeqCst, SeqCst);
            }
            None => {
                let _ = h
                    .unslotted
                    .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
            }
        }
        let _ = std::fs::remove_file(&self.marker);
        // Each releaser stores its zero before it looks at the others (SeqCst): of two
        // last holders releasing at once, at least one sees both zeros.
        if unreferenced(h) {
            let _ = std::fs::remove_file(&self.path);
        }
        let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
        if cache.get(&self.id).is_some_and(|w| w.strong_count() == 0) {
            cache.remove(&self.id);
        }
    }
}

impl SharedBytes {
    /// A buffer of `len` bytes, zeroed, that `fill` writes in place before it is shared:
    /// the way to make a large buffer without a copy (read a file into it, render into
    /// it).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be created or mapped (`/dev/shm` full, or the
    /// limit of its tmpfs), [`Error::Runtime`] if the runtime cannot be started.
    pub fn with_len(len: usize, fill: impl FnOnce(&mut [u8])) -> Result<SharedBytes> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = runtime::get()?.dir().to_path_buf();
        for _ in 0..1000 {
            let id = ((std::process::id() as u64) << 32) | N.fetch_add(1, SeqCst) as u64;
            let path = file_of(&dir, id);
            let map = match SharedMapping::create(&path, HEADER + len) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot create a shared buffer of {len} bytes"),
                        e,
                    ))
                }
            };
            // SAFETY: the mapping is HEADER + len bytes, zero-filled and not yet visible
            // to anyone (the magic is zero, so an opener refuses it): the plain `len`
            // field and the data area are ours alone to write.
            unsafe {
                (*(map.as_ptr() as *mut Header)).len = len as u64;
                fill(std::slice::from_raw_parts_mut(
                    map.as_ptr().add(HEADER),
                    len,
                ));
            }
            header(&map).magic.store(MAGIC, SeqCst);
            let mapped = Arc::new(Mapped::claim(map, id, len, &dir));
            cache()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, Arc::downgrade(&mapped));
            return Ok(SharedBytes { inner: mapped });
        }
        Err(Error::Runtime("no free shared-buffer id".into()))
    }

    /// A buffer holding a copy of `data` (one copy, into shared memory).
    ///
    /// # Errors
    /// As [`with_len`](Self::with_len).
    pub fn from_slice(data: &[u8]) -> Result<SharedBytes> {
        Self::with_len(data.len(), |buf| buf.copy_from_slice(data))
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is HEADER + len bytes (len checked against the file size
        // when it was mapped) and lives as long as `self`. The API never writes the data
        // after it was shared.
        unsafe { std::slice::from_raw_parts(self.inner.map.as_ptr().add(HEADER), self.inner.len) }
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.inner.len
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// The buffer's file (for tests that check it is freed).
    #[doc(hidden)]
    pub fn __path(&self) -> &Path {
        &self.inner.path
    }

    /// Maps buffer `id` of this runtime (or reuses this process's mapping of it).
    fn open(id: u64) -> Result<SharedBytes> {
        let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(inner) = cache.get(&id).and_then(Weak::upgrade) {
            return Ok(SharedBytes { inner });
        }
        let dir = runtime::get()?.dir().to_path_buf();
        let bad = |why: String| Error::BadRef(format!("shared buffer {id:016x}: {why}"));
        let map = SharedMapping::open(&file_of(&dir, id)).map_err(|e| bad(e.to_string()))?;
        if map.len() < HEADER {
            return Err(bad("file too small".into()));
        }
        let h = header(&map);
        if h.magic.load(SeqCst) != MAGIC {
            return Err(bad("not a shared buffer".into()));
        }
        if h.len != (map.len() - HEADER) as u64 {
            return Err(bad(format!(
                "header says {} bytes, the file holds {}",
                h.len,
                map.len() - HEADER
            )));
        }
        let len = map.len() - HEADER;
        let inner = Arc::new(Mapped::claim(map, id, len, &dir));
        cache.insert(id, Arc::downgrade(&inner));
        Ok(SharedBytes { inner })
    }
}

impl std::ops::Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for SharedBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SharedBytes {}

impl std::fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBytes")
            .field("id", &format_args!("{:016x}", self.inner.id))
            .field("len", &self.inner.len)
            .finish()
    }
}

impl serde::Serialize for SharedBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.inner.header().in_flight.fetch_add(1, SeqCst);
        self.inner.id.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for SharedBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let id = u64::deserialize(d)?;
        let bytes = SharedBytes::open(id).map_err(serde::de::Error::custom)?;
        // Our hold is counted: the reference that travelled can go (unless these bytes
        // are decoded again later, as spawn arguments are at every restart).
        if crate::sync::object::consumes_in_flight() {
            let _ = bytes
                .inner
                .header()
                .in_flight
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
        }
        Ok(bytes)
    }
}

/// Frees the holder slots of process `pid`, which has exited, in every buffer it held,
/// and removes the buffers nothing refers to any more. Called by its reaper, while the
/// pid is still reserved by the zombie.
pub(crate) fn release_holds_of(dir: &Path, pid: u32) {
    let holds = holds_dir(dir, pid);
    let Ok(entries) = std::fs::read_dir(&holds) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|n| u64::from_str_radix(n, 16).ok())
        else {
            continue;
        };
        let path = file_of(dir, id);
        let Ok(map) = SharedMapping::open(&path) else {
            continue;
        };
        if map.len() < HEADER {
            continue;
        }
        let h = header(&map);
        if h.magic.load(SeqCst) != MAGIC {
            continue;
        }
        for slot in &h.slots {
            let _ = slot.compare_exchange(pid, 0, SeqCst, SeqCst);
        }
        if unreferenced(h) {
            let _ = std::fs::remove_file(&path);
        }
    }
    let _ = std::fs::remove_dir_all(&holds);
}
