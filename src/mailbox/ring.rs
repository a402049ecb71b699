//! The byte ring's protocol: producers append chunk records under the robust lock, the
//! single consumer reassembles frames. No `unsafe` here; memory access goes through
//! [`Region`].
//!
//! A **record** is an 8-byte header `len: u32 | flags: u32` followed by `len` payload bytes,
//! padded to a multiple of 8. A frame is one or more records: the first has
//! [`FIRST`], the last [`LAST`] (a small frame is one record with both). Frames larger than
//! the ring stream through it while the consumer drains. A producer that dies between the
//! first and the last chunk leaves `frame_open` set; the next producer to take the
//! (robust) lock sees `OwnerDied` and writes an [`ABORT`] record, and the consumer drops
//! the partial frame with [`WireError::Aborted`].

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::time::{Duration, Instant};

use super::shared::Region;
use crate::os::futex;
use crate::os::robust::Locked;
use crate::wire::{FrameHeader, WireError, HEADER_LEN};

/// First record of a frame.
pub const FIRST: u32 = 1;
/// Last record of a frame.
pub const LAST: u32 = 2;
/// The frame in progress was abandoned (its writer died).
pub const ABORT: u32 = 4;
const REC: u64 = 8;

/// How long a blocked party sleeps before it re-checks that its peer is alive.
pub const LIVENESS_SLICE: Duration = Duration::from_millis(20);

/// How long to wait.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    /// Not at all.
    Never,
    /// Until this instant.
    Until(Instant),
    /// As long as the peer lives.
    Forever,
}

impl Wait {
    /// From an optional timeout.
    pub fn from_timeout(t: Option<Duration>) -> Wait {
        match t {
            None => Wait::Forever,
            Some(d) if d.is_zero() => Wait::Never,
            Some(d) => Instant::now()
                .checked_add(d)
                .map_or(Wait::Forever, Wait::Until),
        }
    }

    /// How long the next bounded wait may sleep: at most [`LIVENESS_SLICE`], never past
    /// the deadline; `None` once the deadline has passed (or for `Never`).
    pub fn slice(self) -> Option<Duration> {
        match self {
            Wait::Never => None,
            Wait::Forever => Some(LIVENESS_SLICE),
            Wait::Until(t) => {
                let left = t.saturating_duration_since(Instant::now());
                (!left.is_zero()).then(|| left.min(LIVENESS_SLICE))
            }
        }
    }
}

/// Why a send did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFail {
    /// No room now and no waiting allowed.
    Full,
    /// No room before the deadline.
    Timeout,
    /// The consumer's process is gone.
    Dead,
    /// The frame exceeds the receiver's maximum.
    TooLarge,
    /// The mailbox's shared header holds impossible values (another process wrote over
    /// it). The consumer repairs it within a bounded time; later sends may succeed.
    Corrupt,
    /// The runtime the mailbox belongs to was lost (its zygote died).
    Lost,
}

fn padded(len: u64) -> u64 {
    (len + 7) & !7
}

fn spin_until(budget: Duration, mut ready: impl FnMut() -> bool) -> bool {
    // `ready` may have side effects (a trylock): call it exactly once per check.
    if ready() {
        return true;
    }
    if budget.is_zero() {
        return false;
    }
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= budget {
            return ready();
        }
        // If the peer we wait for shares our CPU, spinning only delays it: let it run.
        // When it runs elsewhere this costs one cheap syscall per 64 polls.
        std::thread::yield_now();
    }
}

/// Appends one frame. `alive` tells whether the consumer's process still lives.
/// How long a `Wait::Never` send waits for the producers' lock held by another writer.
const NEVER_LOCK_GRACE: Duration = Duration::from_millis(1);

pub fn send(
    r: &Region,
    frame: &[u8],
    wait: Wait,
    spin: Duration,
    alive: &dyn Fn() -> bool,
) -> Result<(), SendFail> {
    let h = r.header();
    if frame.len() as u64 > r.max_frame() {
        return Err(SendFail::TooLarge);
    }
    lock(r, wait, spin, alive)?;
    let result = write_frame(r, frame, wait, spin, alive);
    h.lock.unlock();
    result
}

fn lock(r: &Region, wait: Wait, spin: Duration, alive: &dyn Fn() -> bool) -> Result<(), SendFail> {
    let h = r.header();
    let mut got = h.lock.lock(Some(Duration::ZERO));
    if got.is_none() && !spin.is_zero() {
        spin_until(spin, || {
            got = h.lock.lock(Some(Duration::ZERO));
            got.is_some()
        });
        if got.is_none() && matches!(wait, Wait::Never) {
            // A non-blocking send meets another writer inside its (short) critical
            // section: wait that out briefly rather than report a mailbox with room as
            // full. A writer stuck holding the lock costs this call 1 ms at most.
            got = h.lock.lock(Some(NEVER_LOCK_GRACE));
        }
    }
    while got.is_none() {
        if !alive() {
            return Err(SendFail::Dead);
        }
        let Some(slice) = wait.slice() else {
            return Err(match wait {
                Wait::Never => SendFail::Full,
                _ => SendFail::Timeout,
            });
        };
        got = h.lock.lock(Some(slice));
    }
    if got == Some(Locked::OwnerDied) {
        recover_after_dead_writer(r, spin, alive);
    }
    h.prod.writer_pid.store(crate::os::proc::pid(), Relaxed);
    Ok(())
}

/// The previous lock holder died; if it was mid-frame, tell the consumer to drop the part.
fn recover_after_dead_writer(r: &Region, spin: Duration, alive: &dyn Fn() -> bool) {
    let h = r.header();
    let dead = h.prod.writer_pid.load(Relaxed);
    tracing::warn!(
        actor = r.name(),
        writer_pid = dead,
        "a sender died holding the mailbox lock; repairing"
    );
    if h.prod.frame_open.load(Relaxed) != 0 {
        if wait_room(r, REC, false, Wait::Forever, spin, alive).is_ok() {
            publish_record(r, ABORT, &[]);
        }
        h.prod.frame_open.store(0, Relaxed);
    }
}

/// Bytes between `head` and `tail`, or `None` if the two cannot both be right (the tail
/// behind the head, or further ahead than the ring holds): the header was written over.
fn used_bytes(r: &Region, head: u64, tail: u64) -> Option<u64> {
    tail.checked_sub(head).filter(|&u| u <= r.ring_size())
}

/// Frames queued: sent and not yet taken. `None` if more than the capacity (the header
/// was written over). A `frames_taken` ahead of `frames_sent` (possible for a moment after
/// the consumer dropped a corrupt ring) counts as none queued.
fn queued_of(r: &Region, sent: u64, taken: u64) -> Option<u64> {
    Some(sent.saturating_sub(taken)).filter(|&q| q <= u64::from(r.capacity()))
}

/// Frames queued now, as the header says (for counters and readers), at most the capacity.
pub fn queued(r: &Region) -> u32 {
    let h = r.header();
    let taken = h.cons.frames_taken.load(Acquire);
    let sent = h.prod.frames_sent.load(Acquire);
    sent.saturating_sub(taken).min(u64::from(r.capacity())) as u32
}

/// Whether a frame (`new_frame`) or chunk of `need` bytes fits now; `Err` if the header
/// holds impossible values. Called under the producers' lock.
fn room_for(r: &Region, need: u64, new_frame: bool) -> Result<bool, SendFail> {
    let h = r.header();
    room_after(
        r,
        h.prod.tail.load(Relaxed),
        h.prod.frames_sent.load(Relaxed),
        need,
        u64::from(new_frame),
    )
}

/// Whether `need` bytes and `frames` more frames fit after the producers' own `tail` and
/// `sent` (which may count frames written and not yet published); `Err` if the header
/// holds impossible values.
fn room_after(r: &Region, tail: u64, sent: u64, need: u64, frames: u64) -> Result<bool, SendFail> {
    let h = r.header();
    let fits = |head: u64, taken: u64| -> Option<bool> {
        let used = used_bytes(r, head, tail)?;
        let queued = queued_of(r, sent, taken)?;
        Some(r.ring_size() - used >= need && queued + frames <= u64::from(r.capacity()))
    };
    // The consumer's progress as last seen first: while that leaves room, the consumer's
    // line is not read at all (both words only grow, so this never overstates the room).
    if fits(r.seen.head.load(Relaxed), r.seen.taken.load(Relaxed)) == Some(true) {
        return Ok(true);
    }
    let head = h.cons.head.load(Acquire);
    let taken = h.cons.frames_taken.load(Acquire);
    let room = fits(head, taken).ok_or(SendFail::Corrupt)?;
    r.seen.head.store(head, Relaxed);
    r.seen.taken.store(taken, Relaxed);
    Ok(room)
}

fn wait_room(
    r: &Region,
    need: u64,
    new_frame: bool,
    wait: Wait,
    spin: Duration,
    alive: &dyn Fn() -> bool,
) -> Result<(), SendFail> {
    let h = r.header();
    let spin = if matches!(wait, Wait::Never) {
        Duration::ZERO
    } else {
        spin
    };
    if room_for(r, need, new_frame)? {
        return Ok(());
    }
    // Full. While spinning, wait for a quarter of the ring (and of its frame capacity) to
    // be free, not only for what this frame needs: a producer that takes each slot the
    // moment the consumer frees it makes both sides trade the same cache lines for every
    // frame, and the consumer (the slower side of a full ring) pays for it. Once the spin
    // is over, the sleeping wait below takes any room that fits.
    let slack_bytes = (r.ring_size() / 4).min(r.ring_size() - need.min(r.ring_size()));
    let frames = if new_frame {
        u64::from(r.capacity() / 4).max(1)
    } else {
        0
    };
    let (tail, sent) = (h.prod.tail.load(Relaxed), h.prod.frames_sent.load(Relaxed));
    let mut corrupt = false;
    if spin_until(spin, || {
        match room_after(r, tail, sent, need + slack_bytes, frames) {
            Ok(room) => room,
            Err(_) => {
                corrupt = true;
                true
            }
        }
    }) {
        return if corrupt {
            Err(SendFail::Corrupt)
        } else {
            Ok(())
        };
    }
    loop {
        let Some(slice) = wait.slice() else {
            return Err(match wait {
                Wait::Never => SendFail::Full,
                _ => SendFail::Timeout,
            });
        };
        if !alive() {
            return Err(SendFail::Dead);
        }
        h.prod.producers_waiting.fetch_add(1, SeqCst);
        let seq = h.prod.space_seq.load(SeqCst);
        if !room_for(r, need, new_frame)? {
            futex::wait(&h.prod.space_seq, seq, Some(slice));
        }
        let _ = h
            .prod
            .producers_waiting
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
        if room_for(r, need, new_frame)? {
            return Ok(());
        }
    }
}

fn publish_record(r: &Region, flags: u32, payload: &[u8]) {
    let tail = r.header().prod.tail.load(Relaxed);
    let end = write_record(r, tail, flags, payload);
    publish(r, end, u64::from(flags & LAST != 0));
}

/// Writes one record at ring position `at` without publishing it; returns where the next
/// record goes.
fn write_record(r: &Region, at: u64, flags: u32, payload: &[u8]) -> u64 {
    // `tail` is shared memory: wrapping arithmetic, so a written-over value near the top
    // of the range is a corrupt index (found by the next check), never an overflow panic.
    let len = payload.len() as u64;
    r.write_at(at.wrapping_add(REC), payload);
    r.write_at(at, &((len) | ((flags as u64) << 32)).to_le_bytes());
    at.wrapping_add(REC + padded(len))
}

/// Publishes the records written up to `tail`, `frames` of them complete, and wakes the
/// consumer if it sleeps: one wake for however many frames.
fn publish(r: &Region, tail: u64, frames: u64) {
    let h = r.header();
    if frames > 0 {
        // Only the lock holder writes it: no read-modify-write needed.
        let sent = h.prod.frames_sent.load(Relaxed);
        h.prod.frames_sent.store(sent.wrapping_add(frames), Release);
    }
    h.prod.tail.store(tail, SeqCst);
    if h.cons.consumer_waiting.load(SeqCst) != 0 {
        h.cons.data_seq.fetch_add(1, SeqCst);
        futex::wake(&h.cons.data_seq, 1);
    }
}

/// Appends several frames, in order, under one take of the producers' lock. The frames
/// that fit are written and published together (one `tail` update, at most one wake-up);
/// when the ring is full, what was written is published and the rest waits for room as
/// [`send`] does. Returns how many frames were sent, and why the next one was not.
pub fn send_many(
    r: &Region,
    frames: &[&[u8]],
    wait: Wait,
    spin: Duration,
    alive: &dyn Fn() -> bool,
) -> (usize, Result<(), SendFail>) {
    let Some(first) = frames.first() else {
        return (0, Ok(()));
    };
    if first.len() as u64 > r.max_frame() {
        return (0, Err(SendFail::TooLarge));
    }
    if let Err(e) = lock(r, wait, spin, alive) {
        return (0, Err(e));
    }
    let h = r.header();
    let mut done = 0;
    // Written after `tail` and not yet published: `pending` frames, up to `at`.
    let mut pending = 0u64;
    let mut at = h.prod.tail.load(Relaxed);
    let result = loop {
        let Some(frame) = frames.get(done + pending as usize) else {
            break Ok(());
        };
        if frame.len() as u64 > r.max_frame() {
            break Err(SendFail::TooLarge);
        }
        let whole = REC + padded(frame.len() as u64);
        let sent = h.prod.frames_sent.load(Relaxed);
        let room = whole <= r.ring_size()
            && room_after(r, at, sent.wrapping_add(pending), whole, 1) == Ok(true);
        if !room {
            // Publish what is written, then wait for room (or stream a large frame) as a
            // single send does.
            if pending > 0 {
                publish(r, at, pending);
                done += pending as usize;
                pending = 0;
            }
            if let Err(e) = write_frame(r, frame, wait, spin, alive) {
                break Err(e);
            }
            done += 1;
            at = h.prod.tail.load(Relaxed);
            continue;
        }
        at = write_record(r, at, FIRST | LAST, frame);
        pending += 1;
    };
    if pending > 0 {
        publish(r, at, pending);
        done += pending as usize;
    }
    h.lock.unlock();
    (done, result)
}

fn write_frame(
    r: &Region,
    frame: &[u8],
    wait: Wait,
    spin: Duration,
    alive: &dyn Fn() -> bool,
) -> Result<(), SendFail> {
    let h = r.header();
    let max_chunk = (r.ring_size() / 4).max(64) as usize;
    let whole = REC + padded(frame.len() as u64);
    if whole <= r.ring_size() {
        // Small frame: wait for room for all of it (try_tell's "Full" means exactly this).
        wait_room(r, whole, true, wait, spin, alive)?;
        publish_record(r, FIRST | LAST, frame);
        return Ok(());
    }
    if matches!(wait, Wait::Never) {
        return Err(SendFail::Full);
    }
    // Large frame: stream it in chunks. The wait applies to the first chunk; once the
    // frame has started it is written to the end, unless the consumer dies.
    let mut off = 0usize;
    while off < frame.len() {
        let chunk = (frame.len() - off).min(max_chunk);
        let need = REC + padded(chunk as u64);
        let step_wait = if off == 0 { wait } else { Wait::Forever };
        if let Err(e) = wait_room(r, need, off == 0, step_wait, spin, alive) {
            if off > 0 {
                // The consumer is gone mid-frame: mark the part dropped for a successor.
                if room_for(r, REC, false) == Ok(true) {
                    publish_record(r, ABORT, &[]);
                }
                h.prod.frame_open.store(0, Relaxed);
            }
            return Err(e);
        }
        let last = off + chunk == frame.len();
        let flags = if off == 0 { FIRST } else { 0 } | if last { LAST } else { 0 };
        if off == 0 {
            h.prod.frame_open.store(1, Relaxed);
        }
        publish_record(r, flags, &frame[off..off + chunk]);
        off += chunk;
    }
    h.prod.frame_open.store(0, Relaxed);
    Ok(())
}

/// What one receive produced.
#[derive(Debug)]
pub enum Received<'a> {
    /// A complete frame (validated length; the header is not parsed yet), and, if it is
    /// still held in the ring until committed, its ring position (the in-flight key for
    /// redelivery after a crash).
    Frame(&'a [u8], Option<u64>),
    /// A malformed or abandoned frame, already skipped.
    Bad(WireError),
    /// Nothing arrived in time.
    TimedOut,
}

struct Partial {
    total: u64,
    got: u64,
    error: Option<WireError>,
}

/// The single reader of a ring. Keeps a partly received frame across timeouts.
///
/// A frame that fits in one record stays in the ring until [`Consumer::commit`] (or the
/// next receive): if the reading process dies while handling it, the next incarnation
/// finds it at `head` again. Larger frames are released as they stream through.
pub struct Consumer {
    buf: Vec<u8>,
    partial: Option<Partial>,
    /// Where `head` goes once the frame last returned is committed.
    pending: Option<u64>,
    /// Skipping the rest of a frame whose first record this consumer never saw.
    orphan: bool,
    /// Where this consumer knows `head` is, if it is the mailbox's only reader (then it
    /// is the only writer of `head`, and a shared `head` that differs was written over
    /// and is put back). `None` for one of several readers (a queue's), or before the
    /// first receive.
    head: Option<u64>,
    /// Whether it is the only reader (see `head`).
    sole: bool,
    /// `(head, frames_sent, frames_taken)` as last seen while idle with an empty ring
    /// and the two counts apart.
    suspect: Option<Suspect>,
    /// `tail` as last read: records up to it are published, so the consumer reads the
    /// producers' line again only once it has taken them all.
    tail: u64,
    /// `frames_sent` as read with `tail` (for the queue's high-water mark).
    sent: u64,
}

/// See [`Consumer::suspect`].
type Suspect = (u64, u64, u64);

impl Default for Consumer {
    fn default() -> Self {
        Self::new()
    }
}

impl Consumer {
    /// A consumer with an empty reassembly buffer.
    pub fn new() -> Consumer {
        Consumer {
            buf: Vec::new(),
            partial: None,
            pending: None,
            orphan: false,
            head: None,
            suspect: None,
            sole: true,
            tail: 0,
            sent: 0,
        }
    }

    /// A consumer that takes turns with readers in other processes (a queue's): `head`
    /// moves under it between receives, so it keeps no record of its own.
    pub fn shared() -> Consumer {
        Consumer {
            sole: false,
            ..Consumer::new()
        }
    }

    /// Releases the frame last returned, if its bytes are still held in the ring. (It
    /// stopped counting against the mailbox's capacity when it was received: capacity
    /// counts frames waiting, not the one being handled.)
    pub fn commit(&mut self, r: &Region) {
        if let Some(to) = self.pending.take() {
            self.advance(r, to);
        }
    }

    /// Waits for the next frame; `wait` bounds how long (`Never` only checks).
    pub fn recv(&mut self, r: &Region, wait: Wait, spin: Duration) -> Received<'_> {
        self.recv_noting_wait(r, wait, spin, &mut false)
    }

    /// [`recv`](Self::recv), setting `waited` if it found the ring empty and waited (or
    /// spun) for a frame.
    pub fn recv_noting_wait(
        &mut self,
        r: &Region,
        wait: Wait,
        spin: Duration,
        waited: &mut bool,
    ) -> Received<'_> {
        self.commit(r);
        let h = r.header();
        loop {
            let shared = h.cons.head.load(Relaxed);
            let head = if self.sole {
                *self.head.get_or_insert(shared)
            } else {
                shared
            };
            if shared != head {
                h.cons.head.store(head, SeqCst);
                return Received::Bad(corrupt_error(
                    r,
                    format!("head written over ({shared}, was {head}); put back"),
                ));
            }
            let mut tail = if self.tail > head && self.tail - head <= r.ring_size() {
                self.tail
            } else {
                self.refresh(r)
            };
            if head == tail {
                *waited = true;
                let suspect = self.sole.then_some(&mut self.suspect);
                match wait_data(r, head, wait, spin, suspect) {
                    Ok(Some(_)) => tail = self.refresh(r),
                    Ok(None) => return Received::TimedOut,
                    Err(e) => {
                        self.partial = None;
                        self.orphan = false;
                        return Received::Bad(e);
                    }
                }
            }
            if used_bytes(r, head, tail).is_none() {
                // The indexes contradict each other: start over from the tail.
                self.partial = None;
                self.orphan = false;
                let (e, at) = repair(r, format!("head {head}, tail {tail}"));
                if self.sole {
                    self.head = Some(at);
                }
                return Received::Bad(e);
            }
            let mut word = [0u8; 8];
            r.read_at(head, &mut word);
            let word = u64::from_le_bytes(word);
            let len = word & 0xffff_ffff;
            let flags = (word >> 32) as u32;
            let span = REC + padded(len);
            if flags & !(FIRST | LAST | ABORT) != 0 || span > tail - head {
                // Bytes that are not a record: a writer broke the protocol. Drop everything
                // visible and start over from the tail.
                self.partial = None;
                self.orphan = false;
                self.advance(r, tail);
                // Whatever was queued up to the tail is gone with it.
                h.cons
                    .frames_taken
                    .store(h.prod.frames_sent.load(Acquire), SeqCst);
                return Received::Bad(WireError::BadHeader(format!(
                    "corrupt ring record (len {len}, flags {flags:#x}); dropped {} bytes",
                    tail - head
                )));
            }
            if flags & ABORT != 0 {
                self.advance(r, head + span);
                let had_part = self.partial.take().is_some() || std::mem::take(&mut self.orphan);
                if had_part {
                    return Received::Bad(WireError::Aborted);
                }
                continue;
            }
            if flags & FIRST != 0 {
                if let Some(p) = self.partial.take() {
                    // A new frame began before the old one ended: report the old one. The
                    // new record stays in the ring for the next call.
                    return Received::Bad(WireError::Truncated {
                        expected: p.total,
                        got: p.got,
                    });
                }
                if std::mem::take(&mut self.orphan) {
                    return Received::Bad(WireError::Aborted);
                }
                self.start_frame(r, head, len, r.max_frame());
            } else if self.partial.is_none() {
                // The rest of a frame whose start this consumer never saw (a previous
                // incarnation read it, or a writer broke the protocol): skip to its end.
                self.advance(r, head + span);
                if flags & LAST != 0 {
                    self.took_frame(r);
                    self.orphan = false;
                    return Received::Bad(WireError::BadHeader(
                        "the rest of a frame whose first record was not seen".into(),
                    ));
                }
                self.orphan = true;
                continue;
            }
            let Some(p) = self.partial.as_mut() else {
                continue;
            };
            if p.error.is_none() && p.got + len > p.total {
                p.error = Some(WireError::Truncated {
                    expected: p.total,
                    got: p.got + len,
                });
            }
            if p.error.is_none() {
                r.read_extend(head + REC, len as usize, &mut self.buf);
            }
            p.got += len;
            let whole_in_one = flags & (FIRST | LAST) == FIRST | LAST;
            let ok = p.error.is_none() && p.got == p.total;
            if whole_in_one && ok {
                // Held in the ring until committed, for redelivery after a crash.
                self.partial = None;
                self.pending = Some(head + span);
                self.took_frame(r);
                count_frame_in(r);
                return Received::Frame(&self.buf, Some(head));
            }
            self.advance(r, head + span);
            if flags & LAST == 0 {
                continue;
            }
            self.took_frame(r);
            let Some(p) = self.partial.take() else {
                continue;
            };
            if let Some(e) = p.error {
                return Received::Bad(e);
            }
            if p.got != p.total {
                return Received::Bad(WireError::Truncated {
                    expected: p.total,
                    got: p.got,
                });
            }
            count_frame_in(r);
            return Received::Frame(&self.buf, None);
        }
    }

    /// Bytes reserved by the reassembly buffer (tests check that lies are not allocated).
    #[cfg(test)]
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn start_frame(&mut self, r: &Region, head: u64, len: u64, max_frame: u64) {
        self.buf.clear();
        let mut prefix = [0u8; 4];
        let error = if len < 4 {
            Some(WireError::Truncated {
                expected: HEADER_LEN as u64,
                got: len,
            })
        } else {
            r.read_at(head + REC, &mut prefix);
            let total = FrameHeader::announced_len(prefix);
            if total > max_frame {
                Some(WireError::TooLarge {
                    len: total,
                    max: max_frame,
                })
            } else if total < HEADER_LEN as u64 {
                Some(WireError::Truncated {
                    expected: HEADER_LEN as u64,
                    got: total,
                })
            } else {
                // Checked against max_frame above, before allocating.
                self.buf.reserve(total as usize);
                None
            }
        };
        let total = if len >= 4 {
            FrameHeader::announced_len(prefix)
        } else {
            len
        };
        self.partial = Some(Partial {
            total,
            got: 0,
            error,
        });
    }

    /// Reads `tail` (and `frames_sent` with it) afresh.
    fn refresh(&mut self, r: &Region) -> u64 {
        let h = r.header();
        self.tail = h.prod.tail.load(Acquire);
        self.sent = h.prod.frames_sent.load(Acquire);
        self.tail
    }

    /// Counts one frame (good or bad) as taken out of the mailbox.
    fn took_frame(&mut self, r: &Region) {
        let cons = &r.header().cons;
        // Only the consumer (or, for a queue, the reader holding the consumers' lock)
        // writes it: no read-modify-write needed.
        let taken = cons.frames_taken.load(Relaxed);
        // Queued just before this take, as far as the last read of the tail shows.
        let before = self.sent.saturating_sub(taken).min(u64::from(u32::MAX)) as u32;
        if before > cons.queued_high.load(Relaxed) {
            cons.queued_high.store(before, Relaxed);
        }
        cons.frames_taken.store(taken.wrapping_add(1), Release);
    }

    fn advance(&mut self, r: &Region, to: u64) {
        let h = r.header();
        if self.sole {
            self.head = Some(to);
        }
        h.cons.head.store(to, SeqCst);
        // Wake blocked producers only once there is real room (half the ring and half the
        // capacity, or an empty ring), not after every frame: a futex wake on shared memory
        // costs more than the copy of a small frame.
        if h.prod.producers_waiting.load(SeqCst) != 0 && plenty_of_room(r, to) {
            h.prod.space_seq.fetch_add(1, SeqCst);
            futex::wake(&h.prod.space_seq, i32::MAX);
        }
    }
}

fn plenty_of_room(r: &Region, head: u64) -> bool {
    let h = r.header();
    let used = h.prod.tail.load(SeqCst).saturating_sub(head);
    used == 0 || (used <= r.ring_size() / 2 && queued(r) <= r.capacity() / 2)
}

/// Counts one reassembled frame (the consumer's own counter: a plain store).
fn count_frame_in(r: &Region) {
    let c = &r.header().cons;
    c.frames_in
        .store(c.frames_in.load(Relaxed).wrapping_add(1), Relaxed);
}

/// Waits until `tail` moves past `head`; returns the new tail, or `None` on timeout.
/// Each sleep is bounded ([`futex::MAX_WAIT`], backing off to [`futex::IDLE_MAX_WAIT`]
/// while a wait without deadline sees nothing): a wake-up lost to a corrupt
/// `consumer_waiting` costs latency only. An empty ring whose header says frames are
/// queued (which would leave senders waiting for room for ever) is repaired, as `Err`.
fn wait_data(
    r: &Region,
    head: u64,
    wait: Wait,
    spin: Duration,
    mut suspect: Option<&mut Option<Suspect>>,
) -> Result<Option<u64>, WireError> {
    let h = r.header();
    let moved = || {
        let t = h.prod.tail.load(Acquire);
        (t != head).then_some(t)
    };
    let mut seen = None;
    if spin_until(spin, || {
        seen = moved();
        seen.is_some()
    }) {
        return Ok(seen);
    }
    // A wait without a deadline backs off while nothing comes: the first re-check after
    // MAX_WAIT, then twice as long each time, up to IDLE_MAX_WAIT.
    let mut idle = futex::MAX_WAIT;
    loop {
        let slice = match wait {
            Wait::Never => return Ok(None),
            Wait::Forever => Some(idle),
            Wait::Until(t) => {
                let left = t.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(moved());
                }
                Some(left)
            }
        };
        let seq = h.cons.data_seq.load(SeqCst);
        h.cons.consumer_waiting.store(1, SeqCst);
        if let Some(t) = moved() {
            h.cons.consumer_waiting.store(0, Relaxed);
            return Ok(Some(t));
        }
        let woken = match wait {
            Wait::Forever => futex::wait_idle(&h.cons.data_seq, seq, idle),
            _ => futex::wait(&h.cons.data_seq, seq, slice),
        };
        h.cons.consumer_waiting.store(0, Relaxed);
        if let Some(t) = moved() {
            return Ok(Some(t));
        }
        if !woken {
            idle = (idle * 2).min(futex::IDLE_MAX_WAIT);
            if let Some(suspect) = suspect.as_deref_mut() {
                check_idle_header(r, head, suspect)?;
            }
        }
    }
}

/// The consumer is idle at `head` (the ring is empty there). Checks what it can of the
/// header: `head` is its own (put back if written over), and no frame can be queued in an
/// empty ring (cleared once the same count has stood across two idle slices).
fn check_idle_header(
    r: &Region,
    head: u64,
    suspect: &mut Option<Suspect>,
) -> Result<(), WireError> {
    let h = r.header();
    let shared = h.cons.head.load(Acquire);
    if shared != head {
        h.cons.head.store(head, SeqCst);
        return Err(corrupt_error(
            r,
            format!("head written over ({shared}, was {head}); put back"),
        ));
    }
    let taken = h.cons.frames_taken.load(Acquire);
    let sent = h.prod.frames_sent.load(Acquire);
    if sent == taken || h.prod.tail.load(Acquire) != head {
        return Ok(());
    }
    // A sender counts a frame a moment before `tail` publishes it, and a sender waiting
    // for room holds the lock while it waits: so the counts are only wrong if they stay
    // apart, with the ring empty, across a whole idle slice. Then put them right (the
    // consumer writes only its own count).
    let seen = suspect.replace((head, sent, taken));
    if seen != Some((head, sent, taken)) {
        return Ok(());
    }
    *suspect = None;
    if h.prod.tail.load(Acquire) != head || h.prod.frames_sent.load(Acquire) != sent {
        return Ok(());
    }
    h.cons.frames_taken.store(sent, SeqCst);
    if taken > sent {
        // More taken than sent: harmless (it left more room, not less), and what a reset
        // of a corrupt ring can leave for a moment. Put right without a report.
        return Ok(());
    }
    h.prod.space_seq.fetch_add(1, SeqCst);
    futex::wake(&h.prod.space_seq, i32::MAX);
    Err(corrupt_error(
        r,
        format!("{} frames queued in an empty ring", sent - taken),
    ))
}

/// Resets a ring whose indexes are impossible: everything in it is dropped, and senders
/// start again from the current tail.
fn repair(r: &Region, what: String) -> (WireError, u64) {
    let h = r.header();
    let tail = h.prod.tail.load(Acquire);
    h.cons.head.store(tail, SeqCst);
    h.cons
        .frames_taken
        .store(h.prod.frames_sent.load(Acquire), SeqCst);
    h.prod.space_seq.fetch_add(1, SeqCst);
    futex::wake(&h.prod.space_seq, i32::MAX);
    (corrupt_error(r, what), tail)
}

fn corrupt_error(r: &Region, what: String) -> WireError {
    tracing::error!(
        actor = r.name(),
        "mailbox header was written over ({what}); repaired, its queued messages are lost"
    );
    WireError::Corrupt(format!("{what}; the mailbox was reset"))
}

/// Writes raw bytes as one complete record, bypassing framing (tests inject malformed
/// frames with it).
pub fn send_raw_record(r: &Region, flags: u32, bytes: &[u8]) -> Result<(), SendFail> {
    let alive = || true;
    lock(r, Wait::Forever, Duration::ZERO, &alive)?;
    let res = wait_room(
        r,
        REC + padded(bytes.len() as u64),
        flags & FIRST != 0,
        Wait::Forever,
        Duration::ZERO,
        &alive,
    );
    if res.is_ok() {
        publish_record(r, flags, bytes);
    }
    r.header().lock.unlock();
    res
}

/// Releases the producer lock of a region after a simulated writer crash (tests only).
pub fn hold_lock_mid_frame(r: &Region, first_chunk: &[u8]) -> Result<(), SendFail> {
    let alive = || true;
    lock(r, Wait::Forever, Duration::ZERO, &alive)?;
    r.header().prod.frame_open.store(1, Release);
    publish_record(r, FIRST, first_chunk);
    Ok(())
}
