//! Pipes: [`pipe`] (duplex) and [`simplex`].

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::channel::Channel;
use super::RecvError;
use crate::error::{Result, TellError};
use crate::mailbox::{MailboxConfig, Wait};

/// The sending half of one direction; it holds the direction's "writer" registration.
struct Tx<T> {
    ch: Arc<Channel<T>>,
}

impl<T: Serialize + DeserializeOwned> Tx<T> {
    fn new(ch: Arc<Channel<T>>) -> Self {
        ch.mb.hold_writer(true);
        Tx { ch }
    }
}

impl<T> Drop for Tx<T> {
    fn drop(&mut self) {
        self.ch.mb.hold_writer(false);
        // A reader blocked on this direction re-checks at once (and may see EOF).
        self.ch.mb.wake_readers();
    }
}

impl<T: Serialize + DeserializeOwned> Clone for Tx<T> {
    fn clone(&self) -> Self {
        Tx::new(self.ch.clone())
    }
}

fn recv_on<T: Serialize + DeserializeOwned>(
    rx: &Channel<T>,
    timeout: Option<Duration>,
) -> std::result::Result<T, RecvError> {
    rx.get(timeout, &|| !rx.mb.writers_alive())
}

/// Serializes a sending end: its channel and its writer registration travel with it.
fn tx_leaving<T: Serialize + DeserializeOwned>(tx: &Tx<T>) -> u64 {
    tx.ch.mark_in_flight();
    tx.ch.mb.writer_in_flight(true);
    tx.ch.id()
}

fn rx_leaving<T: Serialize + DeserializeOwned>(rx: &Channel<T>) -> u64 {
    rx.mark_in_flight();
    rx.id()
}

fn open_tx<T: Serialize + DeserializeOwned>(id: u64) -> Result<Tx<T>> {
    let tx = Tx::new(Arc::new(Channel::open_transferred(id)?));
    tx.ch.mb.writer_in_flight(false);
    Ok(tx)
}

fn open_rx<T: Serialize + DeserializeOwned>(id: u64) -> Result<Arc<Channel<T>>> {
    Ok(Arc::new(Channel::open_transferred(id)?))
}

/// One end of a duplex pipe: it sends to the other end and receives from it.
///
/// Clones are more handles on the same end: they share its sending and its receiving
/// direction (each value is received by one of them), and the other end sees EOF once
/// every clone, in every process, is gone.
pub struct PipeEnd<T> {
    tx: Tx<T>,
    rx: Arc<Channel<T>>,
}

/// Makes a duplex pipe, like Python's `Pipe()`: two ends, each able to send and receive.
///
/// ```
/// use procession::queue::{pipe, RecvError};
/// let (a, b) = pipe::<String>()?;
/// a.send("ping".into()).unwrap();
/// assert_eq!(b.recv().unwrap(), "ping");
/// b.send("pong".into()).unwrap();
/// assert_eq!(a.recv().unwrap(), "pong");
/// drop(b);
/// assert_eq!(a.recv(), Err(RecvError::Eof));
/// # Ok::<(), procession::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created, or the
/// error of starting the runtime (as for [`spawn`](crate::spawn)).
pub fn pipe<T: Serialize + DeserializeOwned>() -> Result<(PipeEnd<T>, PipeEnd<T>)> {
    let cfg = MailboxConfig::default();
    let ab = Arc::new(Channel::create(&cfg)?);
    let ba = Arc::new(Channel::create(&cfg)?);
    let a = PipeEnd {
        tx: Tx::new(ab.clone()),
        rx: ba.clone(),
    };
    let b = PipeEnd {
        tx: Tx::new(ba),
        rx: ab,
    };
    Ok((a, b))
}

impl<T: Serialize + DeserializeOwned> PipeEnd<T> {
    /// Sends a value to the other end (waits while the pipe is full, as long as the
    /// reading end lives; [`send_timeout`](PipeEnd::send_timeout) bounds the wait).
    ///
    /// # Errors
    /// [`TellError`](crate::TellError), which gives the item back: `Full` (no room, and the
    /// call does not wait), `Timeout`, `ShutDown` after a shutdown, `Dead` if the reading side is gone
    /// for good, `TooLarge`, `Encode`, `Corrupt`, `RuntimeLost`.
    pub fn send(&self, value: T) -> std::result::Result<(), TellError<T>> {
        self.tx.ch.put(value, Wait::Forever)
    }

    /// Like [`send`](PipeEnd::send), waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`TellError`](crate::TellError), which gives the item back: `Full` (no room, and the
    /// call does not wait), `Timeout`, `ShutDown` after a shutdown, `Dead` if the reading side is gone
    /// for good, `TooLarge`, `Encode`, `Corrupt`, `RuntimeLost`.
    pub fn send_timeout(
        &self,
        value: T,
        timeout: Duration,
    ) -> std::result::Result<(), TellError<T>> {
        self.tx.ch.put(value, Wait::from_timeout(Some(timeout)))
    }

    /// Receives the next value; [`RecvError::Eof`] once the other end is gone and
    /// everything it sent has been received.
    ///
    /// # Errors
    /// [`RecvError`](crate::queue::RecvError): `Empty` (nothing there, and the call does
    /// not wait), `Timeout`, `Eof` once every writer is gone and everything sent was
    /// received, `ShutDown`, or `Wire` for an item that does not decode (that item is
    /// dropped; the next one is fine).
    pub fn recv(&self) -> std::result::Result<T, RecvError> {
        recv_on(&self.rx, None)
    }

    /// Like [`recv`](PipeEnd::recv), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError`](crate::queue::RecvError): `Empty` (nothing there, and the call does
    /// not wait), `Timeout`, `Eof` once every writer is gone and everything sent was
    /// received, `ShutDown`, or `Wire` for an item that does not decode (that item is
    /// dropped; the next one is fine).
    pub fn recv_timeout(&self, timeout: Duration) -> std::result::Result<T, RecvError> {
        recv_on(&self.rx, Some(timeout))
    }

    /// Whether a value can be received now, waiting at most `timeout` for one.
    pub fn poll(&self, timeout: Duration) -> bool {
        poll(&self.rx, timeout)
    }
}

fn poll<T: Serialize + DeserializeOwned>(rx: &Channel<T>, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if rx.len() > 0 {
            return true;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        rx.mb
            .wait_readable(left.min(crate::mailbox::LIVENESS_SLICE));
    }
}

impl<T: Serialize + DeserializeOwned> Serialize for PipeEnd<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        (tx_leaving(&self.tx), rx_leaving(&self.rx)).serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for PipeEnd<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let (tx, rx) = <(u64, u64)>::deserialize(d)?;
        let e = serde::de::Error::custom;
        Ok(PipeEnd {
            tx: open_tx(tx).map_err(e)?,
            rx: open_rx(rx).map_err(e)?,
        })
    }
}

/// The sending end of a [`simplex`] pipe.
///
/// Clone it to give several threads or processes the same pipe to send on, as several
/// processes may share one end of a Python `Pipe`: the receiver sees
/// [`RecvError::Eof`] once every clone, in every process, is gone.
///
/// ```
/// use procession::queue::{simplex, RecvError};
/// let (tx, rx) = simplex::<u32>()?;
/// let tx2 = tx.clone();
/// drop(tx);
/// tx2.send(7).unwrap();
/// assert_eq!(rx.recv().unwrap(), 7);
/// drop(tx2);
/// assert_eq!(rx.recv(), Err(RecvError::Eof));
/// # Ok::<(), procession::Error>(())
/// ```
pub struct PipeSender<T> {
    tx: Tx<T>,
}

/// The receiving end of a [`simplex`] pipe.
///
/// Clones compete for the values, as several processes reading one Python `Connection`
/// do: each value is received by exactly one of them, and reads are serialized, so a
/// value is never split between two readers.
pub struct PipeReceiver<T> {
    rx: Arc<Channel<T>>,
}

/// Makes a one-way pipe, like Python's `Pipe(duplex=False)`.
///
/// ```
/// let (tx, rx) = procession::queue::simplex::<u64>()?;
/// tx.send(42).unwrap();
/// assert!(rx.poll(std::time::Duration::from_millis(10)));
/// assert_eq!(rx.recv().unwrap(), 42);
/// # Ok::<(), procession::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) if its shared-memory file cannot be created, or the
/// error of starting the runtime (as for [`spawn`](crate::spawn)).
pub fn simplex<T: Serialize + DeserializeOwned>() -> Result<(PipeSender<T>, PipeReceiver<T>)> {
    let ch = Arc::new(Channel::create(&MailboxConfig::default())?);
    Ok((
        PipeSender {
            tx: Tx::new(ch.clone()),
        },
        PipeReceiver { rx: ch },
    ))
}

impl<T: Serialize + DeserializeOwned> PipeSender<T> {
    /// Sends a value (waits while the pipe is full, as long as the reading end lives;
    /// [`send_timeout`](PipeSender::send_timeout) bounds the wait).
    ///
    /// # Errors
    /// [`TellError`](crate::TellError), which gives the item back: `Full` (no room, and the
    /// call does not wait), `Timeout`, `ShutDown` after a shutdown, `Dead` if the reading side is gone
    /// for good, `TooLarge`, `Encode`, `Corrupt`, `RuntimeLost`.
    pub fn send(&self, value: T) -> std::result::Result<(), TellError<T>> {
        self.tx.ch.put(value, Wait::Forever)
    }

    /// Like [`send`](PipeSender::send), waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`TellError`](crate::TellError), which gives the item back: `Full` (no room, and the
    /// call does not wait), `Timeout`, `ShutDown` after a shutdown, `Dead` if the reading side is gone
    /// for good, `TooLarge`, `Encode`, `Corrupt`, `RuntimeLost`.
    pub fn send_timeout(
        &self,
        value: T,
        timeout: Duration,
    ) -> std::result::Result<(), TellError<T>> {
        self.tx.ch.put(value, Wait::from_timeout(Some(timeout)))
    }
}

impl<T: Serialize + DeserializeOwned> PipeReceiver<T> {
    /// Receives the next value; [`RecvError::Eof`] once every sender is gone.
    ///
    /// # Errors
    /// [`RecvError`](crate::queue::RecvError): `Empty` (nothing there, and the call does
    /// not wait), `Timeout`, `Eof` once every writer is gone and everything sent was
    /// received, `ShutDown`, or `Wire` for an item that does not decode (that item is
    /// dropped; the next one is fine).
    pub fn recv(&self) -> std::result::Result<T, RecvError> {
        recv_on(&self.rx, None)
    }

    /// Like [`recv`](PipeReceiver::recv), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError`](crate::queue::RecvError): `Empty` (nothing there, and the call does
    /// not wait), `Timeout`, `Eof` once every writer is gone and everything sent was
    /// received, `ShutDown`, or `Wire` for an item that does not decode (that item is
    /// dropped; the next one is fine).
    pub fn recv_timeout(&self, timeout: Duration) -> std::result::Result<T, RecvError> {
        recv_on(&self.rx, Some(timeout))
    }

    /// Whether a value can be received now, waiting at most `timeout` for one.
    pub fn poll(&self, timeout: Duration) -> bool {
        poll(&self.rx, timeout)
    }
}

impl<T: Serialize + DeserializeOwned> Serialize for PipeSender<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        tx_leaving(&self.tx).serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for PipeSender<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let id = u64::deserialize(d)?;
        Ok(PipeSender {
            tx: open_tx(id).map_err(serde::de::Error::custom)?,
        })
    }
}

impl<T: Serialize + DeserializeOwned> Serialize for PipeReceiver<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        rx_leaving(&self.rx).serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for PipeReceiver<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let id = u64::deserialize(d)?;
        Ok(PipeReceiver {
            rx: open_rx(id).map_err(serde::de::Error::custom)?,
        })
    }
}

impl<T: Serialize + DeserializeOwned> Clone for PipeEnd<T> {
    fn clone(&self) -> Self {
        PipeEnd {
            tx: self.tx.clone(),
            rx: self.rx.clone(),
        }
    }
}

impl<T: Serialize + DeserializeOwned> Clone for PipeSender<T> {
    fn clone(&self) -> Self {
        PipeSender {
            tx: self.tx.clone(),
        }
    }
}

impl<T> Clone for PipeReceiver<T> {
    fn clone(&self) -> Self {
        PipeReceiver {
            rx: self.rx.clone(),
        }
    }
}

/// Ready: a value is waiting, or no writer is left (`recv` reports EOF).
fn rx_ready<T: Serialize + DeserializeOwned>(rx: &Channel<T>) -> bool {
    rx.len() > 0 || !rx.mb.writers_alive()
}

impl<T: Serialize + DeserializeOwned> crate::Waitable for PipeEnd<T> {
    fn is_ready(&self) -> bool {
        rx_ready(&self.rx)
    }

    fn wait_ready(&self, timeout: Duration) {
        self.rx.mb.wait_readable(timeout);
    }
}

impl<T: Serialize + DeserializeOwned> crate::Waitable for PipeReceiver<T> {
    fn is_ready(&self) -> bool {
        rx_ready(&self.rx)
    }

    fn wait_ready(&self, timeout: Duration) {
        self.rx.mb.wait_readable(timeout);
    }
}

macro_rules! debug_by_ids {
    ($t:ident, |$s:ident| $ids:expr) => {
        impl<T> std::fmt::Debug for $t<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let $s = self;
                write!(f, concat!(stringify!($t), "{:x?}"), $ids)
            }
        }
    };
}
debug_by_ids!(PipeEnd, |s| (s.tx.ch.mb.id(), s.rx.mb.id()));
debug_by_ids!(PipeSender, |s| s.tx.ch.mb.id());
debug_by_ids!(PipeReceiver, |s| s.rx.mb.id());
