//! The machinery shared by [`Queue`](super::Queue) and [`Pipe`](super::PipeEnd): a
//! mailbox ring with typed frames, several readers serialized by the ring's consumers'
//! lock, and a handle count across processes.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::RecvError;
use crate::actor::with_frame;
use crate::error::{Error, Result, TellError};
use crate::mailbox::{Consumer, Mailbox, MailboxConfig, Received, Wait, LIVENESS_SLICE};
use crate::process::runtime;
use crate::wire::{decode_body, FrameHeader, FrameKind};

/// One direction of items of type `T`.
pub(crate) struct Channel<T> {
    pub(crate) mb: Arc<Mailbox>,
    consumer: Mutex<Consumer>,
    /// This process's handles closed it for putting (`Queue::close`).
    pub(crate) closed: std::sync::atomic::AtomicBool,
    _t: PhantomData<fn(T) -> T>,
}

fn type_name<T>() -> &'static str {
    std::any::type_name::<T>()
}

impl<T: Serialize + DeserializeOwned> Channel<T> {
    pub(crate) fn create(cfg: &MailboxConfig) -> Result<Self> {
        let rt = runtime::get()?;
        let mb = Mailbox::create(rt.dir(), cfg, type_name::<T>(), false)
            .map_err(|e| Error::io("cannot create a queue", e))?;
        mb.add_handle();
        Ok(Self::wrap(mb))
    }

    pub(crate) fn open(id: u64) -> Result<Self> {
        let rt = runtime::get()?;
        let mb = Mailbox::open(rt.dir(), id)
            .map_err(|e| Error::BadRef(format!("queue {id:016x}: {e}")))?;
        if mb.actor_name() != type_name::<T>() {
            return Err(Error::BadRef(format!(
                "a queue of {} used as a queue of {}",
                mb.actor_name(),
                type_name::<T>()
            )));
        }
        mb.add_handle();
        Ok(Self::wrap(mb))
    }

    fn wrap(mb: Arc<Mailbox>) -> Self {
        Channel {
            mb,
            consumer: Mutex::new(Consumer::shared()),
            closed: std::sync::atomic::AtomicBool::new(false),
            _t: PhantomData,
        }
    }

    pub(crate) fn put(&self, item: T, wait: Wait) -> std::result::Result<(), TellError<T>> {
        if self.mb.shutdown_level() != 0 || self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(TellError::ShutDown(item));
        }
        let header = FrameHeader {
            kind: FrameKind::Tell,
            tag: crate::wire::tag_id(type_name::<T>()),
            corr: 0,
            reply_to: 0,
        };
        match with_frame(header, &item, |f| {
            self.mb.send(f, wait).map_err(|e| (e, f.len()))
        }) {
            Ok(Ok(())) => Ok(()),
            Ok(Err((fail, len))) => Err(TellError::from_fail(
                fail,
                item,
                len as u64,
                self.mb.max_frame(),
            )),
            Err(error) => Err(TellError::Encode { msg: item, error }),
        }
    }

    /// Takes the next item. `eof` tells, when nothing arrived in a liveness slice,
    /// whether no item can come any more.
    pub(crate) fn get(
        &self,
        timeout: Option<Duration>,
        eof: &dyn Fn() -> bool,
    ) -> std::result::Result<T, RecvError> {
        self.get_or_discard(timeout, eof, &|| {})
    }

    /// Shuts the queue down for every handle (see `Queue::shutdown`); an immediate one
    /// discards what it holds now, calling `on_discard` for each item.
    pub(crate) fn shut_down(&self, immediate: bool, on_discard: &dyn Fn()) {
        self.mb.shut_down(if immediate { 2 } else { 1 });
        if immediate {
            while self
                .get_or_discard(Some(Duration::ZERO), &|| false, on_discard)
                .is_ok()
            {}
        }
    }

    /// Like `get`; `on_discard` runs for each item an immediate shutdown discards.
    pub(crate) fn get_or_discard(
        &self,
        timeout: Option<Duration>,
        eof: &dyn Fn() -> bool,
        on_discard: &dyn Fn(),
    ) -> std::result::Result<T, RecvError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let left = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut consumer = self.consumer.lock().unwrap_or_else(|e| e.into_inner());
        if self.mb.lock_consumers(left()).is_none() {
            return Err(RecvError::Timeout);
        }
        let result = loop {
            let slice = match left() {
                None => LIVENESS_SLICE,
                Some(l) if l.is_zero() && timeout != Some(Duration::ZERO) => {
                    break Err(RecvError::Timeout)
                }
                Some(l) => l.min(LIVENESS_SLICE),
            };
            let wait = if slice.is_zero() {
                Wait::Never
            } else {
                Wait::from_timeout(Some(slice))
            };
            let shut = self.mb.shutdown_level();
            // An immediate shutdown discards what is queued; a put that raced it too.
            let wait = if shut != 0 { Wait::Never } else { wait };
            match self.mb.recv(&mut consumer, wait) {
                Received::Frame(_, _) if shut >= 2 => {
                    self.mb.commit(&mut consumer);
                    on_discard();
                }
                Received::Frame(f, _) => {
                    let item =
                        FrameHeader::parse(f)
                            .map_err(RecvError::Wire)
                            .and_then(|(_, body)| {
                                decode_body::<T>(body, type_name::<T>()).map_err(RecvError::Wire)
                            });
                    self.mb.commit(&mut consumer);
                    break item;
                }
                Received::Bad(e) => {
                    tracing::warn!(queue = self.mb.actor_name(), error = %e, "dropped a malformed item");
                }
                Received::TimedOut if shut != 0 => break Err(RecvError::ShutDown),
                Received::TimedOut => {
                    if eof() {
                        break Err(RecvError::Eof);
                    }
                    if timeout == Some(Duration::ZERO) {
                        break Err(RecvError::Empty);
                    }
                }
            }
        };
        self.mb.unlock_consumers();
        result
    }

    /// Counts a reference travelling inside a message (see `SharedObject::mark_in_flight`).
    pub(crate) fn mark_in_flight(&self) {
        self.mb.add_handle();
    }

    /// Opens the channel `id`, taking over a reference counted by `mark_in_flight`.
    pub(crate) fn open_transferred(id: u64) -> Result<Self> {
        let ch = Self::open(id)?;
        if crate::sync::object::consumes_in_flight() {
            ch.mb.take_over_handle();
        }
        Ok(ch)
    }

    pub(crate) fn len(&self) -> usize {
        self.mb.queued() as usize
    }

    pub(crate) fn id(&self) -> u64 {
        self.mb.id()
    }
}

impl<T> Drop for Channel<T> {
    fn drop(&mut self) {
        self.mb.drop_handle();
    }
}
