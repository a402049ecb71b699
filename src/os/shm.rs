//! A file in the runtime directory (a tmpfs under `/dev/shm`), mapped `MAP_SHARED`
//! read-write. Mailboxes live in such files, so any process of the same user that knows
//! the path can map the same memory.

use std::fs::{File, OpenOptions};
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::ptr::NonNull;

use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

/// A shared mapping of a whole file (read-write, or read-only for inspectors). Unmapped on drop.
#[derive(Debug)]
pub struct SharedMapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access to its contents goes through
// atomics or through the robust mutex stored inside it, so it may move across threads.
unsafe impl Send for SharedMapping {}
// SAFETY: as above; `&SharedMapping` only hands out raw pointers.
unsafe impl Sync for SharedMapping {}

impl SharedMapping {
    /// Creates `path` (it must not exist; mode 0600), sizes it to `len` zero bytes and maps it.
    pub fn create(path: &Path, len: usize) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.set_len(len as u64)?;
        Self::map(&file, len)
    }

    /// Maps an existing file, refusing one that belongs to another user.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_with(path, true)
    }

    /// Maps an existing file read-only (`O_RDONLY`, `PROT_READ`): a store through the
    /// mapping faults instead of changing the file. Refuses a file of another user.
    pub fn open_read_only(path: &Path) -> io::Result<Self> {
        Self::open_with(path, false)
    }

    fn open_with(path: &Path, write: bool) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(write).open(path)?;
        let meta = file.metadata()?;
        if meta.uid() != nix::unistd::geteuid().as_raw() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} belongs to uid {}, not to us",
                    path.display(),
                    meta.uid()
                ),
            ));
        }
        Self::map_with(&file, meta.len() as usize, write)
    }

    fn map(file: &File, len: usize) -> io::Result<Self> {
        Self::map_with(file, len, true)
    }

    fn map_with(file: &File, len: usize, write: bool) -> io::Result<Self> {
        let size = NonZeroUsize::new(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "empty shared file"))?;
        // SAFETY: we map a regular file we hold open, at an address of the kernel's
        // choosing, so no existing Rust object is aliased. The fd may be closed after
        // mmap returns; the mapping keeps the file alive.
        let ptr = unsafe {
            mmap(
                None,
                size,
                if write {
                    ProtFlags::PROT_READ | ProtFlags::PROT_WRITE
                } else {
                    ProtFlags::PROT_READ
                },
                MapFlags::MAP_SHARED,
                file,
                0,
            )
        }
        .map_err(io::Error::from)?;
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The first byte of the mapping (page-aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapping's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned, and no reference into the
        // mapping outlives `self` (users borrow through `&self`).
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}
