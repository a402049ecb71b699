//! The envelope of every message between gateways: a fixed 24-byte prefix before the
//! body, instead of NATS headers (which cost a hash map per message to build and to read).
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `PROC` |
//! | 4 | wire version ([`procession::wire::WIRE_VERSION`]) |
//! | 5 | [`Kind`] |
//! | 6..8 | zero |
//! | 8..16 | an epoch, little-endian: the target's for [`Kind::Mail`] and [`Kind::Batch`], the sender's otherwise |
//! | 16..24 | for those two, the actor type's id ([`procession::remote::actor_id`]); for a heartbeat or a reply, the sender gateway's run; else zero |
//!
//! Everything after it is the body: a frame for [`Kind::Mail`]; for [`Kind::Batch`],
//! frames each after its length (4 bytes, little-endian) ([`push_frame`],
//! [`Frames`]); CBOR otherwise.

use procession::remote::RemoteError;

const MAGIC: [u8; 4] = *b"PROC";

/// Bytes before the body.
pub(crate) const LEN: usize = 24;

/// What a message between gateways is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// A frame for a mailbox (a tell, a stop, or an ask).
    Mail = 1,
    /// A request to a gateway (spawn, whereis, info, monitor, demonitor).
    Request = 2,
    /// A reply: the request succeeded.
    Ok = 3,
    /// A reply: the request failed (the body is a `RemoteError`).
    Err = 4,
    /// A heartbeat: the sender's host is up, in the epoch given.
    Beat = 5,
    /// A monitored actor exited (the body is its `Down`).
    Down = 6,
    /// Tells (or stops) for one mailbox, queued one after another: several frames in one
    /// message, delivered in order.
    Batch = 7,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Mail,
            2 => Kind::Request,
            3 => Kind::Ok,
            4 => Kind::Err,
            5 => Kind::Beat,
            6 => Kind::Down,
            7 => Kind::Batch,
            _ => return None,
        })
    }
}

/// A parsed envelope and its body.
#[derive(Debug)]
pub(crate) struct Env<'a> {
    pub kind: Kind,
    pub epoch: u64,
    pub extra: u64,
    pub body: &'a [u8],
}

/// Builds a message: the envelope, then `body`.
pub(crate) fn build(kind: Kind, epoch: u64, extra: u64, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(LEN + body.len());
    v.extend_from_slice(&MAGIC);
    v.push(procession::wire::WIRE_VERSION);
    v.push(kind as u8);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&epoch.to_le_bytes());
    v.extend_from_slice(&extra.to_le_bytes());
    v.extend_from_slice(body);
    v
}

/// Parses a message from another host (untrusted). `from` names the sender in a
/// version mismatch.
pub(crate) fn parse<'a>(payload: &'a [u8], from: &str) -> Result<Env<'a>, RemoteError> {
    if payload.len() < LEN || payload[..4] != MAGIC {
        return Err(RemoteError::BadInput(format!(
            "a message of {} bytes without procession's envelope",
            payload.len()
        )));
    }
    let ours = procession::wire::WIRE_VERSION;
    if payload[4] != ours {
        return Err(RemoteError::VersionMismatch {
            host: from.to_string(),
            ours,
            theirs: payload[4],
        });
    }
    let kind = Kind::from_u8(payload[5])
        .ok_or_else(|| RemoteError::BadInput(format!("envelope kind {}", payload[5])))?;
    let word = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
    Ok(Env {
        kind,
        epoch: word(8),
        extra: word(16),
        body: &payload[LEN..],
    })
}

/// Bytes a frame takes in a [`Kind::Batch`] body beyond its own.
pub(crate) const FRAME_PREFIX: usize = 4;

/// Appends `frame` to a [`Kind::Batch`] body.
pub(crate) fn push_frame(body: &mut Vec<u8>, frame: &[u8]) {
    let len = u32::try_from(frame.len()).expect("a frame within max_payload");
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(frame);
}

/// The frames of a [`Kind::Batch`] body, as ranges of it, in order. The body came from
/// another host: a length that runs past its end ends the walk with an error.
pub(crate) struct Frames<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Frames<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Frames { body, at: 0 }
    }
}

impl Iterator for Frames<'_> {
    type Item = Result<std::ops::Range<usize>, RemoteError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.body.get(self.at..).filter(|r| !r.is_empty())?;
        let Some(len) = rest.get(..FRAME_PREFIX) else {
            self.at = self.body.len();
            return Some(Err(RemoteError::BadInput("a truncated batch".into())));
        };
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let start = self.at + FRAME_PREFIX;
        match start.checked_add(len).filter(|&end| end <= self.body.len()) {
            Some(end) => {
                self.at = end;
                Some(Ok(start..end))
            }
            None => {
                self.at = self.body.len();
                Some(Err(RemoteError::BadInput(format!(
                    "a batch frame of {len} bytes past the end of its message"
                ))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_back_its_frames_in_order() {
        let mut body = Vec::new();
        for f in [&b"one"[..], b"", b"three"] {
            push_frame(&mut body, f);
        }
        let frames: Vec<&[u8]> = Frames::new(&body).map(|r| &body[r.unwrap()]).collect();
        assert_eq!(frames, [&b"one"[..], b"", b"three"]);
    }

    #[test]
    fn a_batch_frame_that_runs_past_the_end_is_bad_input_after_the_good_ones() {
        let mut body = Vec::new();
        push_frame(&mut body, b"good");
        body.extend_from_slice(&100u32.to_le_bytes());
        body.extend_from_slice(b"short");
        let got: Vec<_> = Frames::new(&body).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(&body[got[0].clone().unwrap()], b"good");
        assert!(matches!(got[1], Err(RemoteError::BadInput(_))));
        // A length cut short is bad input too.
        assert!(matches!(
            Frames::new(&[1, 0]).next(),
            Some(Err(RemoteError::BadInput(_)))
        ));
    }

    #[test]
    fn an_envelope_reads_back_as_built() {
        let m = build(Kind::Mail, 7, 9, b"frame");
        let e = parse(&m, "x").unwrap();
        assert_eq!(
            (e.kind, e.epoch, e.extra, e.body),
            (Kind::Mail, 7, 9, &b"frame"[..])
        );
    }

    #[test]
    fn a_short_or_foreign_message_is_bad_input() {
        for m in [&b""[..], b"PROC", &[0u8; 40][..]] {
            assert!(matches!(parse(m, "x"), Err(RemoteError::BadInput(_))));
        }
    }

    #[test]
    fn another_version_is_a_version_mismatch() {
        let mut m = build(Kind::Request, 1, 0, b"");
        m[4] = m[4].wrapping_add(1);
        assert!(matches!(
            parse(&m, "old"),
            Err(RemoteError::VersionMismatch { host, .. }) if host == "old"
        ));
    }
}
