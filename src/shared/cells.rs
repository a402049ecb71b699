//! **Marked unsafe file**: the shared-memory layout of [`Value`](super::Value) and
//! [`Array`](super::Array), and the only code of `shared/` that touches their bytes.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::sync::Arc;

use super::Pod;
use crate::os::robust::RobustMutex;
use crate::sync::object::{SharedObject, ShmSafe};

/// A robust lock followed by one `T`.
#[repr(C)]
pub struct ValueCell<T> {
    pub(crate) mutex: RobustMutex,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through the guard (holding the mutex), through
// atomics of the same size and alignment, or through the raw pointer the user
// dereferences at their own risk.
unsafe impl<T: Pod> Sync for ValueCell<T> {}
// SAFETY: repr(C); RobustMutex and T: Pod are valid when zeroed; no pointers.
unsafe impl<T: Pod> ShmSafe for ValueCell<T> {}

impl<T: Pod> ValueCell<T> {
    pub(crate) fn ptr(&self) -> *mut T {
        self.value.get()
    }
}

/// A robust lock followed by an element count; the elements are the object's extra bytes.
#[repr(C)]
pub struct ArrayCell<T> {
    pub(crate) mutex: RobustMutex,
    pub(crate) len: std::sync::atomic::AtomicU64,
    _t: PhantomData<T>,
}

// SAFETY: as ValueCell: the elements are reached under the mutex or through raw pointers.
unsafe impl<T: Pod> Sync for ArrayCell<T> {}
// SAFETY: repr(C), valid when zeroed, no pointers (PhantomData is zero-sized).
unsafe impl<T: Pod> ShmSafe for ArrayCell<T> {}

/// Writes `init` into a freshly created value (before publication).
pub(crate) fn init_value<T: Pod>(cell: &ValueCell<T>, init: T) {
    // SAFETY: called from the creator's init hook, before anyone else can map the object.
    unsafe { cell.ptr().write(init) }
}

/// A mutable reference to the value; the caller holds the lock for the reference's life.
#[allow(clippy::mut_from_ref)]
pub(crate) fn value_mut<T: Pod>(cell: &ValueCell<T>) -> &mut T {
    // SAFETY: the caller (the guard) holds the mutex while the reference lives, so it is
    // the only reference made through the guarded path.
    unsafe { &mut *cell.ptr() }
}

/// The value viewed as the atomic type `A` (same size and alignment as T; checked).
pub(crate) fn as_atomic<T: Pod, A>(cell: &ValueCell<T>) -> &A {
    assert!(std::mem::size_of::<A>() == std::mem::size_of::<T>());
    assert!(std::mem::align_of::<A>() <= std::mem::align_of::<T>().max(8));
    // SAFETY: the value lies 64-aligned + field offset in the mapping; size and alignment
    // are checked above; atomics permit concurrent access from every process.
    unsafe { &*(cell.ptr() as *const A) }
}

/// The elements of an array object.
#[allow(clippy::mut_from_ref)]
pub(crate) fn elements<T: Pod>(obj: &Arc<SharedObject<ArrayCell<T>>>) -> &mut [T] {
    let len = obj.get().len.load(std::sync::atomic::Ordering::Acquire) as usize;
    assert!(len * std::mem::size_of::<T>() <= obj.extra_len());
    // SAFETY: the extra bytes hold `len` elements (checked against the mapped size),
    // 16-aligned (enough for Pod types up to 16-byte alignment, checked at creation);
    // callers hold the array's mutex while the slice lives, or only read atomically-sized
    // elements through the raw pointer.
    unsafe { std::slice::from_raw_parts_mut(obj.extra_ptr() as *mut T, len) }
}
