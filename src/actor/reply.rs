//! [`ReplyToken`]: the reply to an ask, taken by its handler to be sent later
//! ([`Context::reply_later`](crate::Context::reply_later)).

use std::cell::Cell;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::ask::ReplyFailure;
use super::context::AskInFlight;
use crate::error::{Error, Result};
use crate::process::runtime;
use crate::wire::{encode_body, FrameHeader, FrameKind};

/// The right to answer one ask, with a value of type `R`: [`reply`](Self::reply) sends
/// it to the asker, from any thread or any process of the runtime.
///
/// A token is `Serialize + Deserialize`, so it can travel in a message to another actor,
/// which then replies in the first one's place. Once serialized, the original no longer
/// speaks for the ask (the copy does), and dropping it sends nothing. A token dropped
/// without replying, and never serialized, fails the ask at once with
/// [`Error::NoReply`](crate::Error::NoReply) rather than let the asker wait for its
/// timeout. If the process holding the token dies first, the asker learns it as for any
/// ask: when the actor's final exit is recorded, or at its timeout (a restarted actor
/// does not see the message again: its handler returned).
#[must_use = "an ask waits for this token's reply"]
pub struct ReplyToken<R> {
    ask: AskInFlight,
    /// Replied, or serialized: nothing left to do on drop.
    done: Cell<bool>,
    _reply: PhantomData<fn(R)>,
}

impl<R> std::fmt::Debug for ReplyToken<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyToken")
            .field("reply_to", &format_args!("{:016x}", self.ask.reply_to))
            .field("corr", &self.ask.corr)
            .finish()
    }
}

impl<R: Serialize> ReplyToken<R> {
    pub(crate) fn new(ask: AskInFlight) -> Self {
        ReplyToken {
            ask,
            done: Cell::new(false),
            _reply: PhantomData,
        }
    }

    /// Sends `value` as the reply. It never blocks on an asker that stopped waiting.
    ///
    /// # Errors
    /// [`Error::Wire`] if `value` does not encode; [`Error::RuntimeLost`] if this
    /// process has no runtime. An asker that has gone (it timed out, or ended) is not an
    /// error: the reply is discarded, as a late reply always is.
    pub fn reply(self, value: R) -> Result<()> {
        self.done.set(true);
        let mut frame = Vec::new();
        FrameHeader {
            kind: FrameKind::Reply,
            tag: self.ask.tag,
            corr: self.ask.corr,
            reply_to: 0,
        }
        .write_into(&mut frame);
        encode_body(&value, &mut frame)?;
        FrameHeader::seal(&mut frame)?;
        send(&self.ask, &frame)
    }
}

/// The reply inboxes that tokens of this process answered lately, kept mapped: a process
/// that answers many asks later (a gateway answers every ask from another host so) would
/// otherwise map and unmap an inbox per reply.
static INBOXES: std::sync::Mutex<Option<super::ask::ReplyRoutes>> = std::sync::Mutex::new(None);

/// Sends a reply frame to the asker's inbox, or a `TooLarge` failure in its place.
fn send(ask: &AskInFlight, frame: &[u8]) -> Result<()> {
    runtime::current().ok_or(Error::RuntimeLost)?;
    let mut routes = INBOXES.lock().unwrap_or_else(|e| e.into_inner());
    routes.get_or_insert_with(Default::default).send(
        ask.reply_to,
        ask.corr,
        FrameKind::Reply,
        frame,
    );
    Ok(())
}

impl<R> Drop for ReplyToken<R> {
    fn drop(&mut self) {
        // In a panicking handler, the actor's death is what the asker must hear (or
        // the next incarnation's reply, for a message that is redelivered).
        if self.done.get() || std::thread::panicking() {
            return;
        }
        let mut frame = Vec::new();
        FrameHeader {
            kind: FrameKind::ReplyError,
            tag: self.ask.tag,
            corr: self.ask.corr,
            reply_to: 0,
        }
        .write_into(&mut frame);
        if encode_body(&ReplyFailure::NoReply, &mut frame).is_ok()
            && FrameHeader::seal(&mut frame).is_ok()
        {
            tracing::warn!(
                corr = self.ask.corr,
                "a reply token was dropped without a reply"
            );
            let _ = send(&self.ask, &frame);
        }
    }
}

#[derive(Serialize, Deserialize)]
struct WireToken {
    reply_to: u64,
    corr: u64,
    tag: u64,
}

impl<R> Serialize for ReplyToken<R> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // The copy speaks for the ask from now on.
        self.done.set(true);
        WireToken {
            reply_to: self.ask.reply_to,
            corr: self.ask.corr,
            tag: self.ask.tag,
        }
        .serialize(s)
    }
}

impl<'de, R> Deserialize<'de> for ReplyToken<R> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = WireToken::deserialize(d)?;
        Ok(ReplyToken {
            ask: AskInFlight {
                reply_to: w.reply_to,
                corr: w.corr,
                tag: w.tag,
            },
            done: Cell::new(false),
            _reply: PhantomData,
        })
    }
}
