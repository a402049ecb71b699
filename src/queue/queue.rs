//! [`Queue`], [`SimpleQueue`], [`JoinableQueue`].

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::channel::Channel;
use super::RecvError;
use crate::error::{Error, Result, TellError};
use crate::mailbox::{MailboxConfig, Wait};

/// Capacity of an "unbounded" queue: 2^32 - 1 items in a 64 MiB ring (memory is only
/// used for the part of the ring items have passed through).
const UNBOUNDED_RING: usize = 64 << 20;

/// A multi-producer, multi-consumer queue across processes, like Python's
/// `multiprocessing.Queue`.
///
/// ```
/// let q = procession::queue::Queue::<String>::bounded(2)?;
/// q.put("a".into()).unwrap();
/// q.put("b".into()).unwrap();
/// assert!(q.try_put("c".into()).unwrap_err().is_full()); // hands "c" back
/// assert_eq!(q.get().unwrap(), "a");
/// assert_eq!(q.get_timeout(std::time::Duration::from_millis(10)).unwrap(), "b");
/// # Ok::<(), procession::Error>(())
/// ```
pub struct Queue<T> {
    ch: Arc<Channel<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            ch: self.ch.clone(),
        }
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A queue that holds at most `capacity` items (`put` waits when it is full).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn bounded(capacity: u32) -> Result<Self> {
        Self::with_config(MailboxConfig::default().capacity(capacity))
    }

    /// A queue with no item limit (bounded only by its 64 MiB ring).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn unbounded() -> Result<Self> {
        Self::with_config(
            MailboxConfig::default()
                .capacity(u32::MAX)
                .ring_size(UNBOUNDED_RING),
        )
    }

    /// A queue with explicit sizes.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn with_config(cfg: MailboxConfig) -> Result<Self> {
        Ok(Queue {
            ch: Arc::new(Channel::create(&cfg)?),
        })
    }

    /// Puts an item, waiting while the queue is full.
    ///
    /// # Errors
    /// [`TellError`](crate::TellError), which gives the item back: `Full` (no room, and the
    /// call does not wait), `Timeout`, `ShutDown` after a shutdown, `Dead` if the reading side is gone
    /// for good, `TooLarge`, `Encode`, `Corrupt`, `RuntimeLost`.
    pub fn put(&self, item: T) -> std::result::Result<(), TellError<T>> {
        self.ch.put(item, Wait::Forever)
    }

    /// Puts an item if there is room now; otherwise gives it back as `Full`.
    ///
    /// # Errors
    /// [`TellError`](crate::TellError), which gives the item back: `Full` (no room, and the
    /// call does not wait), `Timeout`, `ShutDown` after a shutdown, `Dead` if the reading side is gone
    /// for good, `TooLarge`, `Encode`, `Corrupt`, `RuntimeLost`.
    pub fn try_put(&self, item: T) -> std::result::Result<(), TellError<T>> {
        self.ch.put(item, Wait::Never)
    }

    /// Puts an item, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`TellError`](crate::TellError), which gives the item back: `Full` (no room, and the
    /// call does not wait), `Timeout`, `ShutDown` after a shutdown, `Dead` if the reading side is gone
    /// for good, `TooLarge`, `Encode`, `Corrupt`, `RuntimeLost`.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> std::result::Result<(), TellError<T>> {
        self.ch.put(item, Wait::from_timeout(Some(timeout)))
    }

    /// Takes the next item, waiting as long as needed.
    ///
    /// # Errors
    /// [`RecvError`](crate::queue::RecvError): `Empty` (nothing there, and the call does
    /// not wait), `Timeout`, `Eof` once every writer is gone and everything sent was
    /// received, `ShutDown`, or `Wire` for an item that does not decode (that item is
    /// dropped; the next one is fine).
    pub fn get(&self) -> std::result::Result<T, RecvError> {
        self.ch.get(None, &|| false)
    }

    /// Takes the next item if there is one now.
    ///
    /// # Errors
    /// [`RecvError`](crate::queue::RecvError): `Empty` (nothing there, and the call does
    /// not wait), `Timeout`, `Eof` once every writer is gone and everything sent was
    /// received, `ShutDown`, or `Wire` for an item that does not decode (that item is
    /// dropped; the next one is fine).
    pub fn try_get(&self) -> std::result::Result<T, RecvError> {
        self.ch.get(Some(Duration::ZERO), &|| false)
    }

    /// Takes the next item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError`](crate::queue::RecvError): `Empty` (nothing there, and the call does
    /// not wait), `Timeout`, `Eof` once every writer is gone and everything sent was
    /// received, `ShutDown`, or `Wire` for an item that does not decode (that item is
    /// dropped; the next one is fine).
    pub fn get_timeout(&self, timeout: Duration) -> std::result::Result<T, RecvError> {
        self.ch.get(Some(timeout), &|| false)
    }

    /// Items waiting now (approximate while others put and get).
    pub fn len(&self) -> usize {
        self.ch.len()
    }

    /// Whether no item is waiting now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shuts the queue down for **every** handle, in every process (Python 3.13's
    /// `Queue.shutdown`): `put` fails with [`TellError::ShutDown`] from now on, and `get`
    /// fails with [`RecvError::ShutDown`] once the queue is empty — at once for a getter
    /// already waiting on an empty queue. With `immediate`, what the queue holds is
    /// discarded, so every `get` fails at once. It cannot be reopened.
    ///
    /// ```
    /// use procession::queue::{Queue, RecvError};
    /// let q = Queue::<u32>::bounded(4)?;
    /// q.put(1).unwrap();
    /// q.shutdown(false);
    /// assert!(q.put(2).is_err());
    /// assert_eq!(q.get(), Ok(1)); // what was put before is still delivered
    /// assert_eq!(q.get(), Err(RecvError::ShutDown));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn shutdown(&self, immediate: bool) {
        self.ch.shut_down(immediate, &|| {});
    }

    /// Whether the queue was shut down.
    pub fn is_shut_down(&self) -> bool {
        self.ch.mb.shutdown_level() != 0
    }

    /// Python's `Queue.close`: this process puts nothing more through this handle or
    /// its clones (`put` fails with [`TellError::ShutDown`]); other processes, and `get`,
    /// are not affected. There is no feeder thread to join, so `join_thread` has no
    /// counterpart: a `put` that returned has already placed its item in shared memory.
    pub fn close(&self) {
        self.ch
            .closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl<T: Serialize + DeserializeOwned> Serialize for Queue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.ch.mark_in_flight();
        self.ch.id().serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for Queue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let id = u64::deserialize(d)?;
        let ch = Channel::open_transferred(id).map_err(serde::de::Error::custom)?;
        Ok(Queue { ch: Arc::new(ch) })
    }
}

impl<T: Serialize + DeserializeOwned> crate::Waitable for Queue<T> {
    /// Ready: an item is waiting, or the queue is shut down.
    fn is_ready(&self) -> bool {
        !self.is_empty() || self.is_shut_down()
    }

    fn wait_ready(&self, timeout: Duration) {
        self.ch.mb.wait_readable(timeout);
    }
}

impl<T: Serialize + DeserializeOwned> crate::Waitable for SimpleQueue<T> {
    fn is_ready(&self) -> bool {
        self.0.is_ready()
    }

    fn wait_ready(&self, timeout: Duration) {
        self.0.wait_ready(timeout)
    }
}

impl<T: Serialize + DeserializeOwned> crate::Waitable for JoinableQueue<T> {
    fn is_ready(&self) -> bool {
        self.0.is_ready()
    }

    fn wait_ready(&self, timeout: Duration) {
        self.0.wait_ready(timeout)
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Queue({:016x})", self.ch.mb.id())
    }
}

/// An unbounded queue with only `put`, `get` and `is_empty`, like Python's `SimpleQueue`.
///
/// ```
/// let q = procession::queue::SimpleQueue::<u32>::new()?;
/// q.put(1).unwrap();
/// assert_eq!(q.get().unwrap(), 1);
/// assert!(q.is_empty());
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Serialize + DeserializeOwned")]
pub struct SimpleQueue<T>(Queue<T>);

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue(self.0.clone())
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty queue.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn new() -> Result<Self> {
        Ok(SimpleQueue(Queue::unbounded()?))
    }

    /// Puts an item.
    ///
    /// # Errors
    /// [`TellError`](crate::TellError), which gives the item back: `Full` (no room, and the
    /// call does not wait), `Timeout`, `ShutDown` after a shutdown, `Dead` if the reading side is gone
    /// for good, `TooLarge`, `Encode`, `Corrupt`, `RuntimeLost`.
    pub fn put(&self, item: T) -> std::result::Result<(), TellError<T>> {
        self.0.put(item)
    }

    /// Takes the next item, waiting as long as needed.
    ///
    /// # Errors
    /// [`RecvError`](crate::queue::RecvError): `Empty` (nothing there, and the call does
    /// not wait), `Timeout`, `Eof` once every writer is gone and everything sent was
    /// received, `ShutDown`, or `Wire` for an item that does not decode (that item is
    /// dropped; the next one is fine).
    pub fn get(&self) -> std::result::Result<T, RecvError> {
        self.0.get()
    }

    /// Takes the next item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError`](crate::queue::RecvError): `Empty` (nothing there, and the call does
    /// not wait), `Timeout`, `Eof` once every writer is gone and everything sent was
    /// received, `ShutDown`, or `Wire` for an item that does not decode (that item is
    /// dropped; the next one is fine).
    pub fn get_timeout(&self, timeout: Duration) -> std::result::Result<T, RecvError> {
        self.0.get_timeout(timeout)
    }

    /// Puts an item, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`TellError`](crate::TellError), which gives the item back: `Full` (no room, and the
    /// call does not wait), `Timeout`, `ShutDown` after a shutdown, `Dead` if the reading side is gone
    /// for good, `TooLarge`, `Encode`, `Corrupt`, `RuntimeLost`.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> std::result::Result<(), TellError<T>> {
        self.0.put_timeout(item, timeout)
    }

    /// Whether no item is waiting now.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A [`Queue`] that counts unfinished items, like Python's `JoinableQueue`: each `put`
/// adds one, each [`task_done`](JoinableQueue::task_done) (after a `get`) removes one, and
/// [`join`](JoinableQueue::join) waits until none is left.
///
/// ```
/// let q = procession::queue::JoinableQueue::<u32>::new()?;
/// q.put(7).unwrap();
/// assert_eq!(q.get().unwrap(), 7);
/// q.task_done()?;
/// q.join(); // returns at once: nothing unfinished
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Serialize + DeserializeOwned")]
pub struct JoinableQueue<T>(Queue<T>);

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue(self.0.clone())
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// A new, empty, unbounded queue.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn new() -> Result<Self> {
        Ok(JoinableQueue(Queue::unbounded()?))
    }

    /// A new queue holding at most `capacity` items.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created, or the
    /// error of starting the runtime (as for [`spawn`](crate::spawn)).
    pub fn bounded(capacity: u32) -> Result<Self> {
        Ok(JoinableQueue(Queue::bounded(capacity)?))
    }

    /// Puts an item (one more unfinished task).
    ///
    /// # Errors
    /// [`TellError`](crate::TellError), which gives the item back: `Full` (no room, and the
    /// call does not wait), `Timeout`, `ShutDown` after a shutdown, `Dead` if the reading side is gone
    /// for good, `TooLarge`, `Encode`, `Corrupt`, `RuntimeLost`.
    pub fn put(&self, item: T) -> std::result::Result<(), TellError<T>> {
        let mb = &self.0.ch.mb;
        mb.unfinished_add(1);
        self.0.put(item).inspect_err(|_| {
            mb.task_done();
        })
    }

    /// Puts an item, waiting at most `timeout` for room (one more unfinished task if
    /// it went in).
    ///
    /// # Errors
    /// [`TellError`](crate::TellError), which gives the item back: `Full` (no room, and the
    /// call does not wait), `Timeout`, `ShutDown` after a shutdown, `Dead` if the reading side is gone
    /// for good, `TooLarge`, `Encode`, `Corrupt`, `RuntimeLost`.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> std::result::Result<(), TellError<T>> {
        let mb = &self.0.ch.mb;
        mb.unfinished_add(1);
        self.0.put_timeout(item, timeout).inspect_err(|_| {
            mb.task_done();
        })
    }

    /// Takes the next item, waiting as long as needed.
    ///
    /// # Errors
    /// [`RecvError`](crate::queue::RecvError): `Empty` (nothing there, and the call does
    /// not wait), `Timeout`, `Eof` once every writer is gone and everything sent was
    /// received, `ShutDown`, or `Wire` for an item that does not decode (that item is
    /// dropped; the next one is fine).
    pub fn get(&self) -> std::result::Result<T, RecvError> {
        self.0.get()
    }

    /// Takes the next item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError`](crate::queue::RecvError): `Empty` (nothing there, and the call does
    /// not wait), `Timeout`, `Eof` once every writer is gone and everything sent was
    /// received, `ShutDown`, or `Wire` for an item that does not decode (that item is
    /// dropped; the next one is fine).
    pub fn get_timeout(&self, timeout: Duration) -> std::result::Result<T, RecvError> {
        self.0.get_timeout(timeout)
    }

    /// Marks one item taken with `get` as processed. More calls than items put is an error.
    ///
    /// # Errors
    /// [`Error::Runtime`](crate::Error::Runtime) if called more times than items were put
    /// (Python raises `ValueError`).
    pub fn task_done(&self) -> Result<()> {
        if self.0.ch.mb.task_done() {
            Ok(())
        } else {
            Err(Error::Runtime(
                "task_done() called more times than there were items".into(),
            ))
        }
    }

    /// Waits until every item put has been marked done.
    pub fn join(&self) {
        self.0.ch.mb.wait_all_done(None);
    }

    /// Shuts the queue down as [`Queue::shutdown`]; with `immediate`, each discarded
    /// item counts as done, so [`join`](JoinableQueue::join) returns once the items
    /// already taken are done.
    pub fn shutdown(&self, immediate: bool) {
        let mb = self.0.ch.mb.clone();
        self.0.ch.shut_down(immediate, &|| {
            mb.task_done();
        });
    }

    /// Like [`join`](JoinableQueue::join), at most `timeout`; whether all were done.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.0.ch.mb.wait_all_done(Some(timeout))
    }
}
