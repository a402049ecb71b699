//! **Marked unsafe file**: a typed `#[repr(C)]` structure in a shared-memory file of the
//! runtime directory, the storage of every primitive in [`sync`](super). This is the only
//! code of the parity layer that dereferences pointers into shared memory.
//!
//! A handle ([`SharedObject`]) maps the file; handles in every process count themselves
//! in the file's header, and the last one to drop removes the file. A handle serializes
//! as its id, so a primitive can travel to another actor in a message or in spawn
//! arguments. (A process that dies keeps its count; the runtime directory is removed
//! when the program ends.)

use std::io;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::os::shm::SharedMapping;
use crate::process::runtime;

/// A structure that may live in shared memory.
///
/// # Safety
/// The type is `#[repr(C)]`; all-zero bytes are a valid value of it; it contains no
/// pointers, references or heap data; and it is mutated only through atomics,
/// `RobustMutex`es, or `UnsafeCell`s guarded by one of those.
pub unsafe trait ShmSafe: Sync + 'static {}

const MAGIC: u64 = u64::from_le_bytes(*b"PRCSNOB1");

#[repr(C)]
struct ObjectHeader {
    magic: AtomicU64,
    type_hash: u64,
    extra: u64,
    handles: AtomicU32,
}

const HEADER: usize = 64;
const _: () = assert!(std::mem::size_of::<ObjectHeader>() <= HEADER);

/// A mapped shared object of type `T`, followed by `extra` bytes (an array's elements).
pub struct SharedObject<T> {
    map: SharedMapping,
    id: u64,
    path: PathBuf,
    _t: PhantomData<T>,
}

fn path_of(id: u64) -> Result<PathBuf> {
    Ok(runtime::get()?.dir().join(format!("obj-{id:016x}")))
}

fn type_hash<T>() -> u64 {
    crate::wire::tag_id(std::any::type_name::<T>())
}

impl<T: ShmSafe> SharedObject<T> {
    /// Creates a new object: zero bytes, then `init` (which must initialize any mutex
    /// in it), then publication.
    pub fn create(
        extra: usize,
        init: impl FnOnce(&T, *mut u8) -> io::Result<()>,
    ) -> Result<Arc<Self>> {
        use std::sync::atomic::AtomicU32 as Counter;
        static N: Counter = Counter::new(0);
        let align = std::mem::align_of::<T>().max(8);
        assert!(
            align <= HEADER,
            "shared objects support alignment up to {HEADER}"
        );
        let len = HEADER + std::mem::size_of::<T>().next_multiple_of(16) + extra;
        for _ in 0..1000 {
            let id = ((std::process::id() as u64) << 32) | N.fetch_add(1, Ordering::Relaxed) as u64;
            let path = path_of(id)?;
            let map = match SharedMapping::create(&path, len.max(1)) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("cannot create a shared object", e)),
            };
            let obj = SharedObject {
                map,
                id,
                path,
                _t: PhantomData,
            };
            // SAFETY: the mapping is page-aligned, at least HEADER bytes, zero-filled, and
            // not yet visible to anyone (the magic is zero); writing plain fields is fine.
            unsafe {
                let h = obj.map.as_ptr() as *mut ObjectHeader;
                (*h).type_hash = type_hash::<T>();
                (*h).extra = extra as u64;
            }
            init(obj.get(), obj.extra_ptr())
                .map_err(|e| Error::io("cannot initialize a shared object", e))?;
            obj.header().handles.store(1, Ordering::SeqCst);
            obj.header().magic.store(MAGIC, Ordering::Release);
            return Ok(Arc::new(obj));
        }
        Err(Error::Runtime("no free shared-object id".into()))
    }

    /// Counts a reference to this object that travels inside a message: serializing a
    /// handle calls this, so the object outlives its last local handle until the message
    /// is deserialized (which takes the reference over with [`SharedObject::open_transferred`]).
    /// A serialized handle that is never deserialized keeps the object until the runtime
    /// ends.
    pub fn mark_in_flight(&self) {
        self.header().handles.fetch_add(1, Ordering::SeqCst);
    }

    /// Maps the object `id`, taking over a reference counted by [`SharedObject::mark_in_flight`]
    /// (unless the bytes are decoded again later: see [`decode_reusable`]).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_transferred(id: u64) -> Result<Arc<Self>> {
        let obj = Self::open(id)?;
        if consumes_in_flight() {
            obj.header().handles.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(obj)
    }

    /// Maps the object `id` of this runtime, checking that it holds a `T`.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the object's file cannot be opened or mapped,
    /// [`Error::BadRef`](crate::Error::BadRef) if it is not an object of this type.
    pub fn open(id: u64) -> Result<Arc<Self>> {
        let path = path_of(id)?;
        let map = SharedMapping::open(&path)
            .map_err(|e| Error::BadRef(format!("shared object {id:016x}: {e}")))?;
        let min = HEADER + std::mem::size_of::<T>();
        if map.len() < min {
            return Err(Error::BadRef(format!(
                "shared object {id:016x} is too small"
            )));
        }
        let obj = SharedObject {
            map,
            id,
            path,
            _t: PhantomData,
        };
        let h = obj.header();
        if h.magic.load(Ordering::Acquire) != MAGIC || h.type_hash != type_hash::<T>() {
            return Err(Error::BadRef(format!(
                "shared object {id:016x} is not a {}",
                std::any::type_name::<T>()
            )));
        }
        h.handles.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::new(obj))
    }

    fn header(&self) -> &ObjectHeader {
        // SAFETY: the mapping starts page-aligned with at least HEADER bytes; ObjectHeader
        // fields are atomics or written before the magic was published.
        unsafe { &*(self.map.as_ptr() as *const ObjectHeader) }
    }

    /// The shared structure.
    pub fn get(&self) -> &T {
        // SAFETY: T: ShmSafe (valid when zeroed, Sync, interior mutability only), it lies
        // at offset HEADER (64-aligned, alignment checked at creation) inside the mapping,
        // which lives as long as `self`.
        unsafe { &*(self.map.as_ptr().add(HEADER) as *const T) }
    }

    /// The first of the extra bytes after the structure (16-aligned).
    pub fn extra_ptr(&self) -> *mut u8 {
        // SAFETY: the offset is within the mapping (its length includes it).
        unsafe {
            self.map
                .as_ptr()
                .add(HEADER + std::mem::size_of::<T>().next_multiple_of(16))
        }
    }

    /// The number of extra bytes.
    pub fn extra_len(&self) -> usize {
        self.header().extra as usize
    }

    /// The object's id (what its handle serializes as).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<T> Drop for SharedObject<T> {
    fn drop(&mut self) {
        // SAFETY: as in `header()`; T is irrelevant to the header.
        let h = unsafe { &*(self.map.as_ptr() as *const ObjectHeader) };
        if h.handles.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

thread_local! {
    static REUSABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `decode` on bytes that will be decoded **again** (a supervised child's or a pool
/// worker's spawn arguments, decoded at every start and restart): the handles in them do
/// not take over the reference their encoding counted, which stays with the bytes, so
/// every decode gets a working handle. That reference is released with the runtime.
pub(crate) fn decode_reusable<R>(decode: impl FnOnce() -> R) -> R {
    let before = REUSABLE.with(|r| r.replace(true));
    let out = decode();
    REUSABLE.with(|r| r.set(before));
    out
}

/// Whether a handle decoded now takes over its in-flight reference (see [`decode_reusable`]).
pub(crate) fn consumes_in_flight() -> bool {
    !REUSABLE.with(|r| r.get())
}

/// Implements `Serialize`/`Deserialize` for a handle type holding `obj: Arc<SharedObject<C>>`.
macro_rules! shared_handle_serde {
    ($handle:ident, $cell:ty) => {
        impl serde::Serialize for $handle {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                self.obj.mark_in_flight();
                self.obj.id().serialize(s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $handle {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let id = u64::deserialize(d)?;
                let obj = $crate::sync::object::SharedObject::<$cell>::open_transferred(id)
                    .map_err(serde::de::Error::custom)?;
                Ok($handle::from_obj(obj))
            }
        }
    };
}
pub(crate) use shared_handle_serde;
