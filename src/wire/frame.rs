//! The fixed 32-byte frame header and its parsing.

use super::WireError;

/// The wire format version this build speaks.
pub const WIRE_VERSION: u8 = 3;
/// Size of the frame header, length prefix included.
pub const HEADER_LEN: usize = 32;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A message with no reply.
    Tell = 1,
    /// A message whose reply goes to `reply_to` with the same `corr`.
    Ask = 2,
    /// The reply to an ask; the body is the encoded reply.
    Reply = 3,
    /// The ask failed at the receiver; the body is an encoded error.
    ReplyError = 4,
    /// Graceful stop: the actor finishes the frames queued before it, then stops.
    Stop = 5,
    /// An ask carrying several messages of one type (a pool's chunk): the body is a
    /// sequence of `u32` length + CBOR records, and so is the reply's.
    Batch = 6,
}

impl FrameKind {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Tell,
            2 => Self::Ask,
            3 => Self::Reply,
            4 => Self::ReplyError,
            5 => Self::Stop,
            6 => Self::Batch,
            _ => return None,
        })
    }
}

/// The parsed header of one frame.
///
/// ```
/// use procession::wire::{FrameHeader, FrameKind};
/// let h = FrameHeader { kind: FrameKind::Ask, tag: 7, corr: 1, reply_to: 9 };
/// let mut buf = Vec::new();
/// h.write_into(&mut buf);
/// buf.extend_from_slice(b"body");
/// FrameHeader::seal(&mut buf).unwrap();
/// let (back, body) = FrameHeader::parse(&buf).unwrap();
/// assert_eq!((back, body), (h, &b"body"[..]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the frame carries.
    pub kind: FrameKind,
    /// The message type's [`tag_id`](super::tag_id).
    pub tag: u64,
    /// Correlation id of an ask and its reply.
    pub corr: u64,
    /// Mailbox id of the asker's reply inbox.
    pub reply_to: u64,
}

impl FrameHeader {
    /// Appends the header to `buf` with a zero length prefix; call [`FrameHeader::seal`]
    /// once the body has been appended.
    pub fn write_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.push(WIRE_VERSION);
        buf.push(self.kind as u8);
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&self.tag.to_le_bytes());
        buf.extend_from_slice(&self.corr.to_le_bytes());
        buf.extend_from_slice(&self.reply_to.to_le_bytes());
    }

    /// Writes the final length into the prefix of a frame built by [`FrameHeader::write_into`].
    ///
    /// # Errors
    /// [`WireError::TooLarge`] for a frame longer than `u32::MAX` bytes.
    pub fn seal(frame: &mut [u8]) -> Result<(), WireError> {
        let len = u32::try_from(frame.len()).map_err(|_| WireError::TooLarge {
            len: frame.len() as u64,
            max: u32::MAX as u64,
        })?;
        frame[..4].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }

    /// Reads the announced total length from the first four bytes of a frame.
    pub fn announced_len(prefix: [u8; 4]) -> u64 {
        u32::from_le_bytes(prefix) as u64
    }

    /// Parses a complete frame into its header and body.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if the frame is shorter than its header or its announced
    /// length, [`WireError::BadHeader`] for another wire version or an unknown kind.
    pub fn parse(frame: &[u8]) -> Result<(FrameHeader, &[u8]), WireError> {
        if frame.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                expected: HEADER_LEN as u64,
                got: frame.len() as u64,
            });
        }
        let len = Self::announced_len([frame[0], frame[1], frame[2], frame[3]]);
        if len != frame.len() as u64 {
            return Err(WireError::Truncated {
                expected: len,
                got: frame.len() as u64,
            });
        }
        if frame[4] != WIRE_VERSION {
            return Err(WireError::BadHeader(format!(
                "wire version {} (this build speaks {WIRE_VERSION})",
                frame[4]
            )));
        }
        let kind = FrameKind::from_u8(frame[5])
            .ok_or_else(|| WireError::BadHeader(format!("unknown frame kind {}", frame[5])))?;
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&frame[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let header = FrameHeader {
            kind,
            tag: word(8),
            corr: word(16),
            reply_to: word(24),
        };
        Ok((header, &frame[HEADER_LEN..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: FrameKind, body: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        FrameHeader {
            kind,
            tag: 1,
            corr: 2,
            reply_to: 3,
        }
        .write_into(&mut buf);
        buf.extend_from_slice(body);
        FrameHeader::seal(&mut buf).unwrap();
        buf
    }

    #[test]
    fn short_frame_is_truncated() {
        let f = frame(FrameKind::Tell, b"xyz");
        assert!(matches!(
            FrameHeader::parse(&f[..10]),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn frame_shorter_than_its_prefix_is_truncated() {
        let f = frame(FrameKind::Tell, b"xyz");
        let err = FrameHeader::parse(&f[..f.len() - 1]).unwrap_err();
        assert_eq!(
            err,
            WireError::Truncated {
                expected: 35,
                got: 34
            }
        );
    }

    #[test]
    fn unknown_kind_is_a_bad_header() {
        let mut f = frame(FrameKind::Tell, b"");
        f[5] = 99;
        assert!(matches!(
            FrameHeader::parse(&f),
            Err(WireError::BadHeader(_))
        ));
    }

    #[test]
    fn other_version_is_a_bad_header() {
        let mut f = frame(FrameKind::Tell, b"");
        f[4] = WIRE_VERSION + 1;
        assert!(matches!(
            FrameHeader::parse(&f),
            Err(WireError::BadHeader(_))
        ));
    }
}
