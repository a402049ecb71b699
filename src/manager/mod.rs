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

mod server;

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
    pub fn start() -> Result<Manager> {
        Ok(Manager {
            server: crate::spawn(ManagerServer::default())?,
        })
    }

    /// A new, empty shared map.
    pub fn dict<K, V>(&self) -> Result<SharedMap<K, V>> {
        Ok(SharedMap {
            server: self.server.clone(),
            id: self.server.ask(New(Kind::Map))?,
            _t: PhantomData,
        })
    }

    /// A new, empty shared list.
    pub fn list<T>(&self) -> Result<SharedList<T>> {
        Ok(SharedList {
            server: self.server.clone(),
            id: self.server.ask(New(Kind::List))?,
            _t: PhantomData,
        })
    }

    /// A new, empty namespace (named attributes of any serializable types).
    pub fn namespace(&self) -> Result<Namespace> {
        Ok(Namespace {
            server: self.server.clone(),
            id: self.server.ask(New(Kind::Namespace))?,
        })
    }

    /// A queue shared by processes (see the [module docs](self)).
    pub fn queue<T: Serialize + DeserializeOwned>(&self) -> Result<Queue<T>> {
        Queue::unbounded()
    }

    /// A lock shared by processes (see the [module docs](self)).
    pub fn lock(&self) -> Result<Lock> {
        Lock::new()
    }

    /// An event shared by processes (see the [module docs](self)).
    pub fn event(&self) -> Result<Event> {
        Event::new()
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// Stops the server and waits for it; proxies then fail with `ActorDied`.
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
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        dec_opt(self.server.ask(MapGet(self.id, enc(key)?))?)
    }

    /// Inserts; returns the previous value.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        dec_opt(
            self.server
                .ask(MapInsert(self.id, enc(&key)?, enc(&value)?))?,
        )
    }

    /// Removes; returns the value that was there.
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        dec_opt(self.server.ask(MapRemove(self.id, enc(key)?))?)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Number of entries.
    pub fn len(&self) -> Result<usize> {
        self.server.ask(Len(self.id))
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Inserts many entries in one atomic operation.
    pub fn update(&self, entries: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        let entries = entries
            .into_iter()
            .map(|(k, v)| Ok((enc(&k)?, enc(&v)?)))
            .collect::<Result<Vec<_>>>()?;
        self.server.ask(MapUpdate(self.id, entries))
    }

    /// A copy of every entry at one moment (iterate it freely).
    pub fn snapshot(&self) -> Result<Vec<(K, V)>> {
        self.server
            .ask(MapSnapshot(self.id))?
            .into_iter()
            .map(|(k, v)| Ok((dec(&k)?, dec(&v)?)))
            .collect()
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
    pub fn push(&self, value: T) -> Result<()> {
        self.server.ask(ListPush(self.id, enc(&value)?))
    }

    /// Removes and returns the last value.
    pub fn pop(&self) -> Result<Option<T>> {
        dec_opt(self.server.ask(ListPop(self.id))?)
    }

    /// The value at `index`.
    pub fn get(&self, index: usize) -> Result<Option<T>> {
        dec_opt(self.server.ask(ListGet(self.id, index))?)
    }

    /// Replaces the value at `index`.
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        self.server
            .ask(ListSet(self.id, index, enc(&value)?))?
            .map_err(Error::Runtime)
    }

    /// Number of values.
    pub fn len(&self) -> Result<usize> {
        self.server.ask(Len(self.id))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A copy of every value at one moment.
    pub fn snapshot(&self) -> Result<Vec<T>> {
        self.server
            .ask(ListSnapshot(self.id))?
            .iter()
            .map(|v| dec(v))
            .collect()
    }
}

/// A proxy to a namespace held by a [`Manager`]: named attributes of any serializable type.
#[derive(Clone, Serialize, Deserialize)]
pub struct Namespace {
    server: ActorRef<ManagerServer>,
    id: u64,
}

impl Namespace {
    /// The attribute `name`, decoded as `T`.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        dec_opt(self.server.ask(NsGet(self.id, name.to_string()))?)
    }

    /// Sets the attribute `name`.
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
