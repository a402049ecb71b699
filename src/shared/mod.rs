//! Shared memory for plain data, as in Python's `multiprocessing`: [`Value`] and
//! [`Array`], for types marked [`Pod`] (integers, floats, `bool`, arrays of them, and your
//! own `#[repr(C)]` `Copy` structs with `unsafe impl Pod`).
//!
//! Each has a built-in robust lock ([`Value::get_lock`], [`Array::get_lock`]): a process
//! that dies holding it hands it on with an [`OwnerDied`]
//! indication. `get`/`set` take the lock for one access; the raw pointer (`raw`) is the
//! lock-free accessor, for those who synchronize otherwise. Integer values also have
//! atomic operations ([`Value::fetch_add`] and friends) that need no lock at all.
//! Handles are `Clone + Serialize + Deserialize`: give them to actors.
//!
//! [`SharedBytes`] is an immutable byte buffer that travels as a handle: the way to send
//! megabytes without copying them.

mod bytes;
mod cells;

pub(crate) use bytes::release_holds_of;
pub use bytes::SharedBytes;

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{
    AtomicI32, AtomicI64, AtomicIsize, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use std::sync::Arc;

use cells::{ArrayCell, ValueCell};

use crate::error::{Error, Result};
use crate::os::robust::{Locked, RobustMutex};
use crate::sync::object::SharedObject;
use crate::sync::{AcquireResult, OwnerDied};

/// Plain old data that may live in shared memory.
///
/// # Safety
/// The type is `Copy`, `#[repr(C)]` (or a primitive), contains no pointers or references,
/// and every bit pattern of zero bytes is a valid value; values written by safe code stay
/// valid for every reader.
pub unsafe trait Pod: Copy + Send + Sync + 'static {}

macro_rules! pod {
    ($($t:ty),*) => { $(
        // SAFETY: a primitive without pointers; zero is a valid value.
        unsafe impl Pod for $t {}
    )* };
}
pod!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64, bool);
// SAFETY: an array of Pod is Pod.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

fn lock(m: &RobustMutex) -> AcquireResult<()> {
    loop {
        match m.lock(None) {
            Some(Locked::Clean) => return Ok(()),
            Some(Locked::OwnerDied) => {
                return Err(OwnerDied::new(()));
            }
            None => continue,
        }
    }
}

fn map_guard<B>(r: AcquireResult<()>, g: impl FnOnce() -> B) -> AcquireResult<B> {
    match r {
        Ok(()) => Ok(g()),
        Err(_) => Err(OwnerDied::new(g())),
    }
}

/// One `T` in shared memory, with a lock.
///
/// ```
/// let v = procession::shared::Value::new(10.5f64)?;
/// v.set(10.78);
/// assert_eq!(v.get(), 10.78);
/// let n = procession::shared::Value::new(0u64)?;
/// n.fetch_add(5);
/// assert_eq!(n.load(), 5);
/// # Ok::<(), procession::Error>(())
/// ```
pub struct Value<T: Pod> {
    obj: Arc<SharedObject<ValueCell<T>>>,
}

impl<T: Pod> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            obj: self.obj.clone(),
        }
    }
}

/// The lock of a [`Value`], held; derefs to the value.
pub struct ValueGuard<'a, T: Pod> {
    cell: &'a ValueCell<T>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl<T: Pod> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        cells::value_mut(self.cell)
    }
}

impl<T: Pod> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        cells::value_mut(self.cell)
    }
}

impl<T: Pod> Drop for ValueGuard<'_, T> {
    fn drop(&mut self) {
        self.cell.mutex.unlock();
    }
}

impl<T: Pod> Value<T> {
    /// A new value in shared memory.
    ///
    /// # Errors
    /// [`Error::Io`] if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn new(init: T) -> Result<Self> {
        check_align::<T>()?;
        let obj = SharedObject::create(0, |c: &ValueCell<T>, _| {
            cells::init_value(c, init);
            c.mutex.init(true)
        })?;
        Ok(Value { obj })
    }

    /// Acquires the value's lock (re-entrant, robust); the guard derefs to the value.
    ///
    /// # Errors
    /// `Err(OwnerDied(guard))` when the previous holder's process died holding it: the
    /// guard still holds it (call `OwnerDied::into_inner` after repairing what it
    /// protects).
    pub fn get_lock(&self) -> AcquireResult<ValueGuard<'_, T>> {
        let cell = self.obj.get();
        map_guard(lock(&cell.mutex), || ValueGuard {
            cell,
            _not_send: std::marker::PhantomData,
        })
    }

    /// Reads the value under its lock.
    pub fn get(&self) -> T {
        *self.get_lock().unwrap_or_else(OwnerDied::into_inner)
    }

    /// Writes the value under its lock.
    pub fn set(&self, v: T) {
        *self.get_lock().unwrap_or_else(OwnerDied::into_inner) = v;
    }

    /// The lock-free accessor: a pointer to the shared value, valid while a handle lives.
    /// Reading or writing through it is `unsafe` and unsynchronized.
    pub fn raw(&self) -> *mut T {
        self.obj.get().ptr()
    }
}

fn check_align<T>() -> Result<()> {
    if std::mem::align_of::<T>() > 16 {
        return Err(Error::Runtime(
            "shared values support alignment up to 16".into(),
        ));
    }
    Ok(())
}

macro_rules! atomic_value {
    ($t:ty, $atomic:ty) => {
        impl Value<$t> {
            fn atomic(&self) -> &$atomic {
                cells::as_atomic::<$t, $atomic>(self.obj.get())
            }
            /// Adds atomically (no lock); returns the previous value.
            pub fn fetch_add(&self, v: $t) -> $t {
                self.atomic().fetch_add(v, Ordering::SeqCst)
            }
            /// Subtracts atomically (no lock); returns the previous value.
            pub fn fetch_sub(&self, v: $t) -> $t {
                self.atomic().fetch_sub(v, Ordering::SeqCst)
            }
            /// Reads atomically (no lock).
            pub fn load(&self) -> $t {
                self.atomic().load(Ordering::SeqCst)
            }
            /// Writes atomically (no lock).
            pub fn store(&self, v: $t) {
                self.atomic().store(v, Ordering::SeqCst)
            }
            /// Compare-and-swap (no lock).
            ///
            /// # Errors
            /// `Err(actual)`, the value found, when it was not `current` (nothing is
            /// written).
            pub fn compare_exchange(&self, current: $t, new: $t) -> std::result::Result<$t, $t> {
                self.atomic()
                    .compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst)
            }
        }
    };
}
atomic_value!(u32, AtomicU32);
atomic_value!(i32, AtomicI32);
atomic_value!(u64, AtomicU64);
atomic_value!(i64, AtomicI64);
atomic_value!(usize, AtomicUsize);
atomic_value!(isize, AtomicIsize);

/// A fixed-length array of `T` in shared memory, with a lock.
///
/// ```
/// let a = procession::shared::Array::from_slice(&[1i32, 2, 3, 4])?;
/// a.set(2, 9999)?;
/// assert_eq!(a.to_vec(), vec![1, 2, 9999, 4]);
/// # Ok::<(), procession::Error>(())
/// ```
pub struct Array<T: Pod> {
    obj: Arc<SharedObject<ArrayCell<T>>>,
}

impl<T: Pod> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            obj: self.obj.clone(),
        }
    }
}

/// The lock of an [`Array`], held; derefs to its elements.
pub struct ArrayGuard<'a, T: Pod> {
    array: &'a Array<T>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        cells::elements(&self.array.obj)
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        cells::elements(&self.array.obj)
    }
}

impl<T: Pod> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        self.array.obj.get().mutex.unlock();
    }
}

impl<T: Pod> Array<T> {
    /// An array holding a copy of `items`.
    ///
    /// # Errors
    /// [`Error::Io`] if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn from_slice(items: &[T]) -> Result<Self> {
        check_align::<T>()?;
        let bytes = std::mem::size_of_val(items);
        let obj = SharedObject::create(bytes, |c: &ArrayCell<T>, _| {
            c.len.store(items.len() as u64, Ordering::SeqCst);
            c.mutex.init(true)
        })?;
        let a = Array { obj };
        cells::elements(&a.obj).copy_from_slice(items);
        Ok(a)
    }

    /// An array of `len` copies of `value`.
    ///
    /// # Errors
    /// [`Error::Io`] if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn new(len: usize, value: T) -> Result<Self> {
        Self::from_slice(&vec![value; len])
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.obj.get().len.load(Ordering::Acquire) as usize
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Acquires the array's lock (re-entrant, robust); the guard derefs to the elements.
    ///
    /// # Errors
    /// `Err(OwnerDied(guard))` when the previous holder's process died holding it: the
    /// guard still holds it (call `OwnerDied::into_inner` after repairing what it
    /// protects).
    pub fn get_lock(&self) -> AcquireResult<ArrayGuard<'_, T>> {
        map_guard(lock(&self.obj.get().mutex), || ArrayGuard {
            array: self,
            _not_send: std::marker::PhantomData,
        })
    }

    /// Element `i`, read under the lock.
    pub fn get(&self, i: usize) -> Option<T> {
        self.get_lock()
            .unwrap_or_else(OwnerDied::into_inner)
            .get(i)
            .copied()
    }

    /// Writes element `i` under the lock.
    ///
    /// # Errors
    /// [`Error::Runtime`] for an index out of range.
    pub fn set(&self, i: usize, v: T) -> Result<()> {
        let mut g = self.get_lock().unwrap_or_else(OwnerDied::into_inner);
        let len = g.len();
        *g.get_mut(i).ok_or_else(|| {
            Error::Runtime(format!("index {i} out of range for an array of {len}"))
        })? = v;
        Ok(())
    }

    /// A copy of all elements, read under the lock.
    pub fn to_vec(&self) -> Vec<T> {
        self.get_lock()
            .unwrap_or_else(OwnerDied::into_inner)
            .to_vec()
    }

    /// The lock-free accessor: a pointer to the first element, valid while a handle lives.
    pub fn raw(&self) -> *mut T {
        self.obj.extra_ptr() as *mut T
    }
}

macro_rules! handle_serde {
    ($handle:ident, $cell:ident) => {
        impl<T: Pod> serde::Serialize for $handle<T> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                self.obj.mark_in_flight();
                self.obj.id().serialize(s)
            }
        }
        impl<'de, T: Pod> serde::Deserialize<'de> for $handle<T> {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let id = u64::deserialize(d)?;
                let obj = SharedObject::<$cell<T>>::open_transferred(id)
                    .map_err(serde::de::Error::custom)?;
                Ok($handle { obj })
            }
        }
        impl<T: Pod> std::fmt::Debug for $handle<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($handle), "({:016x})"), self.obj.id())
            }
        }
    };
}
handle_serde!(Value, ValueCell);
handle_serde!(Array, ArrayCell);
