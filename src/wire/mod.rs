//! The wire format: how one message travels as bytes between two processes.
//!
//! A **frame** is a little-endian, length-prefixed record:
//!
//! | bytes | field | meaning |
//! |---|---|---|
//! | 0..4 | `len` | length of the whole frame, prefix included |
//! | 4 | `version` | [`WIRE_VERSION`]; a frame of another version is refused |
//! | 5 | `kind` | [`FrameKind`]: tell, ask, reply, error reply, stop |
//! | 6..8 | reserved | zero |
//! | 8..16 | `tag` | [`tag_id`] of the message type's stable name |
//! | 16..24 | `corr` | correlation id that pairs an ask with its reply |
//! | 24..32 | `reply_to` | the mailbox id the reply goes to (asks only) |
//! | 32.. | body | the message, CBOR-encoded with serde (ciborium) |
//!
//! The receiver checks `len` against its maximum frame size **before** it allocates
//! anything; the default is [`DEFAULT_MAX_FRAME`] (64 MiB) and each mailbox can set its own.
//! Every malformed input (an unknown tag, a truncated or oversized frame, a body that does
//! not decode) is a [`WireError`]; nothing here panics on bytes from another process.
//!
//! **Why this module is public.** Its [`WireError`] is part of the crate's errors
//! ([`Error::Wire`](crate::Error::Wire), [`Error::Rejected`](crate::Error::Rejected),
//! [`TellError::Encode`](crate::TellError::Encode)); [`encode_body`] and [`decode_body`]
//! are the codec every message uses, for a program that stores or forwards messages as
//! bytes; and the frame layout above is the protocol a tool (or a test that injects
//! faults) needs to read or write a mailbox. The shared-memory layer under it, the
//! `mailbox` module, is internal: nothing a user calls needs it.

mod codec;
mod frame;

pub use codec::{decode_body, encode_body};
pub use frame::{FrameHeader, FrameKind, HEADER_LEN, WIRE_VERSION};

/// Appends one `u32` length + bytes record (the item format of batch bodies).
#[doc(hidden)]
pub fn push_record(buf: &mut Vec<u8>, item: &[u8]) {
    buf.extend_from_slice(&(item.len() as u32).to_le_bytes());
    buf.extend_from_slice(item);
}

/// Splits a batch body into its records; `None` if a record runs past the end.
#[doc(hidden)]
pub fn records(mut body: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let len = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
        let item = body.get(4..4 + len)?;
        out.push(item);
        body = &body[4 + len..];
    }
    Some(out)
}

/// The default maximum frame size, 64 MiB. Change it per actor with
/// [`SpawnOptions::max_frame`](crate::SpawnOptions::max_frame).
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// The 64-bit FNV-1a hash of a stable message name, as carried in [`FrameHeader::tag`].
///
/// ```
/// assert_eq!(procession::wire::tag_id("a"), 0xaf63dc4c8601ec8c);
/// assert_ne!(procession::wire::tag_id("m::Add"), procession::wire::tag_id("m::Sub"));
/// ```
pub const fn tag_id(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Why a frame could not be produced or understood. Each is logged once as a tracing
/// warning by the receiver, which then goes on with the next frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum WireError {
    /// The frame announced more bytes than the receiver accepts; it was skipped unread.
    #[error("frame of {len} bytes exceeds the maximum frame size of {max} bytes")]
    TooLarge {
        /// The length the frame announced.
        len: u64,
        /// The receiver's maximum.
        max: u64,
    },
    /// The frame ended before its announced length, or is shorter than a header.
    #[error("truncated frame: expected {expected} bytes, got {got}")]
    Truncated {
        /// Bytes announced (or the header size).
        expected: u64,
        /// Bytes actually received.
        got: u64,
    },
    /// The sending process died in the middle of writing the frame; the part that had
    /// arrived was discarded.
    #[error("frame aborted: its sender died while writing it")]
    Aborted,
    /// The header is not one this version understands (wrong version or kind).
    #[error("bad frame header: {0}")]
    BadHeader(String),
    /// The mailbox's shared header held impossible values (another process wrote over
    /// it); the mailbox repaired itself and the messages it held were dropped.
    #[error("corrupt mailbox: {0}")]
    Corrupt(String),
    /// The actor does not handle a message with this tag.
    #[error("actor {actor} handles no message with tag {tag:#018x}")]
    UnknownTag {
        /// The tag the frame carried.
        tag: u64,
        /// The receiving actor's stable name (kept when the error travels to the asker).
        actor: std::borrow::Cow<'static, str>,
    },
    /// The body is not valid CBOR for the expected type.
    #[error("body of {tag} does not decode: {message}")]
    Decode {
        /// The stable name of the type that was expected (kept when the error travels to
        /// the asker).
        tag: std::borrow::Cow<'static, str>,
        /// What the decoder said.
        message: String,
    },
    /// A value could not be encoded (a serde `Serialize` impl failed).
    #[error("cannot encode {0}")]
    Encode(String),
}
