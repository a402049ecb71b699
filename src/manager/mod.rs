//! [`Manager`]: a server actor holding shared collections, reached from any process
//! through typed proxies, as Python's `multiprocessing.Manager`.
//!
//! [`Manager::start`] spawns the server (one actor process). [`SharedMap`],
//! [`SharedList`] and [`Namespace`] proxies send it requests; keys and values travel as
//! CBOR, so any `Serialize + DeserializeOwned` types work. Proxies are
//! `Clone + Serialize + Deserialize`: give them to other actors. Each operation is one
//! round trip to the server, and the server applies operations one at a time, so each
//! single operation is atomic; [`SharedMap::update`] applies many at once.
//!
//! Maps keep insertion order, as a Python dict does (a key removed and inserted again
//! goes to the end; replacing a value keeps its place), so [`SharedMap::snapshot`],
//! [`SharedMap::keys`] and the rest list entries in that order.
//!
//! Your own types, as `BaseManager.register` allows: implement [`Managed`] (a `Call`
//! type in, a `Reply` out), register the type once with [`register!`], and
//! [`Manager::create`] gives a [`Proxy`] to a value held by the server. The registration
//! is static (a linker-collected table) because the server is another process started
//! from this binary, where a registration made at run time would not exist.
//!
//! Python's manager also serves queues, locks and events. Here
//! [`Manager::queue`], [`Manager::lock`] and [`Manager::event`] give the shared-memory
//! primitives of [`queue`](crate::queue) and [`sync`](crate::sync) instead: the same
//! semantics (and more robust), without a round trip to a server for each operation.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::process::Exit;
use crate::queue::Queue;
use crate::sync::{Event, Lock};
use crate::wire::{decode_body, encode_body};
use crate::{ActorRef, ByteBuf};

mod object;
mod server;

pub use object::{register, Managed, Proxy};
#[doc(hidden)]
pub use object::{ManagedEntry, Registered, MANAGED};
pub use server::ManagerServer;
use server::*;

/// A running manager server. Dropping it does not stop the server; [`Manager::shutdown`]
/// does.
///
/// ```
/// let m = procession::manager::Manager::start()?;
/// let map = m.dict::<String, u32>()?;
/// map.insert("a".into(), 1)?;
/// assert_eq!(map.get(&"a".to_string())?, Some(1));
/// let list = m.list::<i64>()?;
/// list.push(5)?;
/// assert_eq!(list.len()?, 1);
/// m.shutdown()?;
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manager {
    server: ActorRef<ManagerServer>,
}

fn enc<T: Serialize + ?Sized>(v: &T) -> Result<ByteBuf> {
    let mut b = Vec::new();
    encode_body(v, &mut b)?;
    Ok(ByteBuf::from(b))
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    Ok(decode_body(b, "manager value")?)
}

fn dec_opt<T: DeserializeOwned>(b: Option<ByteBuf>) -> Result<Option<T>> {
    b.map(|b| dec(&b)).transpose()
}

impl Manager {
    /// Starts a manager server in its own process.
    ///
    /// # Errors
    /// [`Error::Io`] if the manager's process cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn start() -> Result<Manager> {
        Ok(Manager {
            server: crate::spawn(ManagerServer::default())?,
        })
    }

    /// A new, empty shared map.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn dict<K, V>(&self) -> Result<SharedMap<K, V>> {
        Ok(SharedMap {
            server: self.server.clone(),
            id: self.server.ask(New(Kind::Map))?,
            _t: PhantomData,
        })
    }

    /// A new, empty shared list.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn list<T>(&self) -> Result<SharedList<T>> {
        Ok(SharedList {
            server: self.server.clone(),
            id: self.server.ask(New(Kind::List))?,
            _t: PhantomData,
        })
    }

    /// A new, empty namespace (named attributes of any serializable types).
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn namespace(&self) -> Result<Namespace> {
        Ok(Namespace {
            server: self.server.clone(),
            id: self.server.ask(New(Kind::Namespace))?,
        })
    }

    /// A new value of a [`Managed`] type held by the server, and a proxy to it (Python's
    /// `manager.RegisteredType(...)` after `BaseManager.register`). The type must be
    /// registered with [`register!`]; see [`Managed`] for an example.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn create<T: Registered>(&self, value: T) -> Result<Proxy<T>> {
        let id = self
            .server
            .ask(ObjNew(T::NAME.to_string(), enc(&value)?))?
            .map_err(Error::Runtime)?;
        Ok(Proxy {
            server: self.server.clone(),
            id,
            _t: PhantomData,
        })
    }

    /// A queue shared by processes (see the [module docs](self)).
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn queue<T: Serialize + DeserializeOwned>(&self) -> Result<Queue<T>> {
        Queue::unbounded()
    }

    /// A lock shared by processes (see the [module docs](self)).
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn lock(&self) -> Result<Lock> {
        Lock::new()
    }

    /// An event shared by processes (see the [module docs](self)).
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn event(&self) -> Result<Event> {
        Event::new()
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// Stops the server and waits for it; proxies then fail with `ActorDied`.
    ///
    /// # Errors
    /// As [`ActorRef::join`](crate::ActorRef::join) of the server.
    pub fn shutdown(&self) -> Result<Exit> {
        self.server.stop()?;
        self.server.join()
    }
}

/// A proxy to a map held by a [`Manager`].
#[derive(Serialize, Deserialize)]
pub struct SharedMap<K, V> {
    server: ActorRef<ManagerServer>,
    id: u64,
    #[serde(skip)]
    _t: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for SharedMap<K, V> {
    fn clone(&self) -> Self {
        SharedMap {
            server: self.server.clone(),
            id: self.id,
            _t: PhantomData,
        }
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> SharedMap<K, V> {
    /// The value under `key`.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        dec_opt(self.server.ask(MapGet(self.id, enc(key)?))?)
    }

    /// Inserts; returns the previous value.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        dec_opt(
            self.server
                .ask(MapInsert(self.id, enc(&key)?, enc(&value)?))?,
        )
    }

    /// Removes; returns the value that was there.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        dec_opt(self.server.ask(MapRemove(self.id, enc(key)?))?)
    }

    /// Whether `key` is present.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Number of entries.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn len(&self) -> Result<usize> {
        self.server.ask(Len(self.id))
    }

    /// Whether the map is empty.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Inserts many entries in one atomic operation.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn update(&self, entries: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        let entries = entries
            .into_iter()
            .map(|(k, v)| Ok((enc(&k)?, enc(&v)?)))
            .collect::<Result<Vec<_>>>()?;
        self.server.ask(MapUpdate(self.id, entries))
    }

    /// A copy of every entry at one moment, in insertion order (iterate it freely).
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn snapshot(&self) -> Result<Vec<(K, V)>> {
        self.server
            .ask(MapSnapshot(self.id))?
            .into_iter()
            .map(|(k, v)| Ok((dec(&k)?, dec(&v)?)))
            .collect()
    }

    /// Python's `dict.items()`: the same as [`snapshot`](SharedMap::snapshot).
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        self.snapshot()
    }

    /// An iterator over a [`snapshot`](SharedMap::snapshot): one round trip, then no
    /// more; later changes to the map do not show in it.
    ///
    /// ```
    /// let m = procession::manager::Manager::start()?;
    /// let map = m.dict::<String, u32>()?;
    /// map.insert("b".into(), 2)?;
    /// map.insert("a".into(), 1)?;
    /// let keys: Vec<String> = map.iter()?.map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["b", "a"]); // insertion order, as a Python dict
    /// m.shutdown()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn iter(&self) -> Result<std::vec::IntoIter<(K, V)>> {
        Ok(self.snapshot()?.into_iter())
    }

    /// The keys, in insertion order (from one snapshot).
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn keys(&self) -> Result<Vec<K>> {
        Ok(self.snapshot()?.into_iter().map(|(k, _)| k).collect())
    }

    /// The values, in insertion order (from one snapshot).
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn values(&self) -> Result<Vec<V>> {
        Ok(self.snapshot()?.into_iter().map(|(_, v)| v).collect())
    }

    /// Python's `dict.pop(key)`: removes the entry and returns its value.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn pop(&self, key: &K) -> Result<Option<V>> {
        self.remove(key)
    }

    /// Python's `dict.popitem()`: removes and returns the entry inserted last.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn pop_item(&self) -> Result<Option<(K, V)>> {
        self.server
            .ask(MapPopItem(self.id))?
            .map(|(k, v)| Ok((dec(&k)?, dec(&v)?)))
            .transpose()
    }

    /// Python's `dict.setdefault(key, default)`: the value under `key`, after inserting
    /// `default` there if it was absent, in one atomic operation.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn set_default(&self, key: K, default: V) -> Result<V> {
        dec(&self
            .server
            .ask(MapSetDefault(self.id, enc(&key)?, enc(&default)?))?)
    }

    /// Removes every entry.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn clear(&self) -> Result<()> {
        self.server.ask(Clear(self.id))
    }
}

/// A proxy to a list held by a [`Manager`].
#[derive(Serialize, Deserialize)]
pub struct SharedList<T> {
    server: ActorRef<ManagerServer>,
    id: u64,
    #[serde(skip)]
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for SharedList<T> {
    fn clone(&self) -> Self {
        SharedList {
            server: self.server.clone(),
            id: self.id,
            _t: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> SharedList<T> {
    /// Appends a value.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn push(&self, value: T) -> Result<()> {
        self.server.ask(ListPush(self.id, enc(&value)?))
    }

    /// Removes and returns the last value.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn pop(&self) -> Result<Option<T>> {
        dec_opt(self.server.ask(ListPop(self.id))?)
    }

    /// The value at `index`.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn get(&self, index: usize) -> Result<Option<T>> {
        dec_opt(self.server.ask(ListGet(self.id, index))?)
    }

    /// Replaces the value at `index`.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        self.server
            .ask(ListSet(self.id, index, enc(&value)?))?
            .map_err(Error::Runtime)
    }

    /// Number of values.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn len(&self) -> Result<usize> {
        self.server.ask(Len(self.id))
    }

    /// Whether the list is empty.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A copy of every value at one moment.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn snapshot(&self) -> Result<Vec<T>> {
        self.server
            .ask(ListSnapshot(self.id))?
            .iter()
            .map(|v| dec(v))
            .collect()
    }

    /// An iterator over a [`snapshot`](SharedList::snapshot): one round trip; later
    /// changes do not show in it.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn iter(&self) -> Result<std::vec::IntoIter<T>> {
        Ok(self.snapshot()?.into_iter())
    }

    /// Appends many values in one atomic operation (Python's `list.extend`).
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<()> {
        let values = values
            .into_iter()
            .map(|v| enc(&v))
            .collect::<Result<Vec<_>>>()?;
        self.server.ask(ListExtend(self.id, values))
    }

    /// Inserts `value` before `index`; an index past the end appends, as Python's
    /// `list.insert`.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn insert(&self, index: usize, value: T) -> Result<()> {
        self.server.ask(ListInsert(self.id, index, enc(&value)?))
    }

    /// Python's `list.pop(index)`: removes and returns the value at `index`.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn remove(&self, index: usize) -> Result<T> {
        dec(&self
            .server
            .ask(ListRemoveAt(self.id, index))?
            .map_err(Error::Runtime)?)
    }

    /// Python's `list[range]`: the values in `range`, its bounds clamped to the length.
    ///
    /// ```
    /// let m = procession::manager::Manager::start()?;
    /// let list = m.list::<u32>()?;
    /// list.extend(0..10)?;
    /// assert_eq!(list.slice(2..5)?, [2, 3, 4]);
    /// assert_eq!(list.slice(8..)?, [8, 9]);
    /// list.set_slice(0..8, [7])?;         // list[0:8] = [7]
    /// assert_eq!(list.snapshot()?, [7, 8, 9]);
    /// m.shutdown()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn slice(&self, range: impl std::ops::RangeBounds<usize>) -> Result<Vec<T>> {
        let (start, end) = bounds(range);
        self.server
            .ask(ListSlice(self.id, start, end))?
            .iter()
            .map(|v| dec(v))
            .collect()
    }

    /// Python's `list[range] = values`: replaces the values in `range` (clamped) with
    /// `values`, which may be more or fewer, in one atomic operation.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn set_slice(
        &self,
        range: impl std::ops::RangeBounds<usize>,
        values: impl IntoIterator<Item = T>,
    ) -> Result<()> {
        let (start, end) = bounds(range);
        let values = values
            .into_iter()
            .map(|v| enc(&v))
            .collect::<Result<Vec<_>>>()?;
        self.server.ask(ListSplice(self.id, start, end, values))
    }

    /// Removes every value.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn clear(&self) -> Result<()> {
        self.server.ask(Clear(self.id))
    }
}

/// A range's bounds as `start..end`, `end` being `usize::MAX` when unbounded.
fn bounds(range: impl std::ops::RangeBounds<usize>) -> (usize, usize) {
    use std::ops::Bound::*;
    let start = match range.start_bound() {
        Included(&s) => s,
        Excluded(&s) => s.saturating_add(1),
        Unbounded => 0,
    };
    let end = match range.end_bound() {
        Included(&e) => e.saturating_add(1),
        Excluded(&e) => e,
        Unbounded => usize::MAX,
    };
    (start, end)
}

/// A proxy to a namespace held by a [`Manager`]: named attributes of any serializable type.
#[derive(Clone, Serialize, Deserialize)]
pub struct Namespace {
    server: ActorRef<ManagerServer>,
    id: u64,
}

impl Namespace {
    /// The attribute `name`, decoded as `T`.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        dec_opt(self.server.ask(NsGet(self.id, name.to_string()))?)
    }

    /// Sets the attribute `name`.
    ///
    /// # Errors
    /// As every call to the manager, which is an ask of its server:
    /// [`Error::ActorDied`] if the manager is gone,
    /// [`Error::Timeout`] if it does not answer within 5 s,
    /// [`Error::Rejected`] if it cannot decode the call (a key or
    /// value type that does not match the object's).
    pub fn set<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        self.server
            .ask(NsSet(self.id, name.to_string(), enc(value)?))
    }
}

impl<K, V> std::fmt::Debug for SharedMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedMap(#{} on pid {})", self.id, self.server.pid())
    }
}

impl<T> std::fmt::Debug for SharedList<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedList(#{} on pid {})", self.id, self.server.pid())
    }
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Namespace(#{} on pid {})", self.id, self.server.pid())
    }
}
