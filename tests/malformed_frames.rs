//! Malformed input in an actor's mailbox: every kind of bad frame (unknown tag, body that
//! does not decode, truncated, oversized, bad header, stray continuation records, a writer
//! that dies mid-frame) is counted in `bad_frames()` as one rejected frame, and the actor
//! lives on: a later ask gets the right reply. Frames are injected below the framing layer
//! with `Mailbox::send_raw_record`; because a mailbox is FIFO, the bad frame has been
//! processed by the time the following ask is answered, so the counts are exact.

mod common;

use common::{stop_and_join, LONG};
use procession::prelude::*;
use procession::wire::{FrameHeader, FrameKind, WIRE_VERSION};
use procession::{Exit, SpawnOptions};

/// Replies with `n + 1`.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Ping(u64);

/// Remembered by the victim.
#[derive(Serialize, Deserialize, Message)]
struct Note(u64);

/// Replies with every note so far.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<u64>)]
struct Notes;

/// The actor that receives the malformed frames.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Ping, Note, Notes))]
struct Victim {
    notes: Vec<u64>,
}

impl Handler<Ping> for Victim {
    fn handle(&mut self, Ping(n): Ping, _cx: &mut Context<Self>) -> u64 {
        n + 1
    }
}

impl Handler<Note> for Victim {
    fn handle(&mut self, Note(n): Note, _cx: &mut Context<Self>) {
        self.notes.push(n);
    }
}

impl Handler<Notes> for Victim {
    fn handle(&mut self, _: Notes, _cx: &mut Context<Self>) -> Vec<u64> {
        self.notes.clone()
    }
}

/// Starts a frame in the target's mailbox, keeps the producers' lock, and aborts.
#[derive(Serialize, Deserialize, Message)]
struct Sabotage {
    target: ActorRef<Victim>,
    first_chunk: ByteBuf,
}

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Sabotage))]
struct Saboteur;

impl Handler<Sabotage> for Saboteur {
    fn handle(&mut self, msg: Sabotage, _cx: &mut Context<Self>) {
        let _ = msg
            .target
            .mailbox()
            .begin_frame_and_hold_lock(&msg.first_chunk);
        std::process::abort();
    }
}

/// A complete, well-formed frame: header, then `body` as is.
fn frame(kind: FrameKind, tag: u64, body: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    FrameHeader {
        kind,
        tag,
        corr: 0,
        reply_to: 0,
    }
    .write_into(&mut buf);
    buf.extend_from_slice(body);
    FrameHeader::seal(&mut buf).unwrap();
    buf
}

/// The CBOR encoding of `value`.
fn cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    procession::wire::encode_body(value, &mut buf).unwrap();
    buf
}

/// Writes `bytes` as one complete ring record (FIRST | LAST).
fn inject(victim: &ActorRef<Victim>, bytes: &[u8]) {
    victim
        .mailbox()
        .send_raw_record(true, true, bytes)
        .expect("write the raw record");
}

/// The actor answers an ask correctly, and has rejected exactly `bad` frames so far.
fn assert_lives_on_having_rejected(victim: &ActorRef<Victim>, bad: u64) {
    assert_eq!(victim.ask_timeout(Ping(41), LONG).unwrap(), 42);
    assert_eq!(victim.bad_frames(), bad);
}

fn spawn_victim() -> ActorRef<Victim> {
    procession::spawn(Victim::default()).unwrap()
}

#[test]
fn well_formed_tell_with_an_unknown_tag_is_rejected() {
    let victim = spawn_victim();
    inject(&victim, &frame(FrameKind::Tell, 0xdead_beef, &cbor(&())));
    assert_lives_on_having_rejected(&victim, 1);
    stop_and_join(&victim);
}

#[test]
fn ask_frame_with_an_unknown_tag_and_no_reply_inbox_is_rejected() {
    let victim = spawn_victim();
    // reply_to 0 names no inbox: the error reply has nowhere to go, and that is fine.
    inject(&victim, &frame(FrameKind::Ask, 0xdead_beef, &cbor(&())));
    assert_lives_on_having_rejected(&victim, 1);
    stop_and_join(&victim);
}

#[test]
fn garbage_body_for_a_known_tag_is_rejected() {
    let victim = spawn_victim();
    inject(
        &victim,
        &frame(
            FrameKind::Tell,
            <Note as Message>::TAG_ID,
            &[0xff, 0x00, 0x13],
        ),
    );
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), Vec::<u64>::new());
    stop_and_join(&victim);
}

#[test]
fn body_of_another_type_for_a_known_tag_is_rejected() {
    let victim = spawn_victim();
    inject(
        &victim,
        &frame(FrameKind::Tell, <Note as Message>::TAG_ID, &cbor(&"seven")),
    );
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), Vec::<u64>::new());
    stop_and_join(&victim);
}

#[test]
fn body_with_trailing_bytes_is_rejected() {
    let victim = spawn_victim();
    let mut body = cbor(&Note(7));
    body.push(0);
    inject(
        &victim,
        &frame(FrameKind::Tell, <Note as Message>::TAG_ID, &body),
    );
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), Vec::<u64>::new());
    stop_and_join(&victim);
}

#[test]
fn frame_shorter_than_its_announced_length_is_rejected() {
    let victim = spawn_victim();
    let mut f = frame(FrameKind::Tell, <Note as Message>::TAG_ID, &cbor(&Note(7)));
    let announced = f.len() as u32 + 100;
    f[..4].copy_from_slice(&announced.to_le_bytes());
    inject(&victim, &f);
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), Vec::<u64>::new());
    stop_and_join(&victim);
}

#[test]
fn frame_longer_than_its_announced_length_is_rejected() {
    let victim = spawn_victim();
    let mut f = frame(FrameKind::Tell, <Note as Message>::TAG_ID, &cbor(&Note(7)));
    let announced = f.len() as u32;
    f.extend_from_slice(&[0; 16]);
    f[..4].copy_from_slice(&announced.to_le_bytes());
    inject(&victim, &f);
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), Vec::<u64>::new());
    stop_and_join(&victim);
}

#[test]
fn record_shorter_than_a_length_prefix_is_rejected() {
    let victim = spawn_victim();
    inject(&victim, &[3, 0]);
    assert_lives_on_having_rejected(&victim, 1);
    stop_and_join(&victim);
}

#[test]
fn frame_shorter_than_a_header_is_rejected() {
    let victim = spawn_victim();
    let mut f = vec![0u8; 16];
    f[..4].copy_from_slice(&16u32.to_le_bytes());
    f[4] = WIRE_VERSION;
    f[5] = FrameKind::Tell as u8;
    inject(&victim, &f);
    assert_lives_on_having_rejected(&victim, 1);
    stop_and_join(&victim);
}

#[test]
fn frame_announcing_more_than_max_frame_is_skipped_unread() {
    let victim = spawn_victim();
    let mb = victim.mailbox();
    // A first record announcing 1 GiB (far above the 64 MiB default), some continuation
    // bytes, and a last record: the consumer must skip it all without allocating 1 GiB.
    let mut first = frame(FrameKind::Tell, <Note as Message>::TAG_ID, &[0; 32]);
    first[..4].copy_from_slice(&(1u32 << 30).to_le_bytes());
    mb.send_raw_record(true, false, &first).unwrap();
    mb.send_raw_record(false, false, &[0xaa; 4096]).unwrap();
    mb.send_raw_record(false, true, &[0xbb; 64]).unwrap();
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), Vec::<u64>::new());
    stop_and_join(&victim);
}

#[test]
fn frame_above_a_custom_max_frame_is_skipped_even_when_complete() {
    let victim: ActorRef<Victim> =
        procession::spawn_with(Victim::default(), SpawnOptions::new().max_frame(4096)).unwrap();
    // A complete, well-formed Note frame of 8 KiB (the sender-side check is bypassed).
    let mut body = cbor(&Note(7));
    body.resize(8192, 0);
    let f = frame(FrameKind::Tell, <Note as Message>::TAG_ID, &body);
    victim.mailbox().send_raw_record(true, true, &f).unwrap();
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), Vec::<u64>::new());
    stop_and_join(&victim);
}

#[test]
fn frame_of_another_wire_version_is_rejected() {
    let victim = spawn_victim();
    let mut f = frame(FrameKind::Tell, <Note as Message>::TAG_ID, &cbor(&Note(7)));
    f[4] = WIRE_VERSION.wrapping_add(1);
    inject(&victim, &f);
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), Vec::<u64>::new());
    stop_and_join(&victim);
}

#[test]
fn frame_of_an_unknown_kind_is_rejected() {
    let victim = spawn_victim();
    let mut f = frame(FrameKind::Tell, <Note as Message>::TAG_ID, &cbor(&Note(7)));
    f[5] = 99;
    inject(&victim, &f);
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), Vec::<u64>::new());
    stop_and_join(&victim);
}

#[test]
fn reply_frame_sent_to_an_actor_mailbox_is_rejected() {
    let victim = spawn_victim();
    inject(
        &victim,
        &frame(FrameKind::Reply, <Ping as Message>::TAG_ID, &cbor(&5u64)),
    );
    inject(
        &victim,
        &frame(FrameKind::ReplyError, <Ping as Message>::TAG_ID, &cbor(&())),
    );
    assert_lives_on_having_rejected(&victim, 2);
    stop_and_join(&victim);
}

#[test]
fn last_record_without_a_first_is_rejected() {
    let victim = spawn_victim();
    let f = frame(FrameKind::Tell, <Note as Message>::TAG_ID, &cbor(&Note(7)));
    victim.mailbox().send_raw_record(false, true, &f).unwrap();
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), Vec::<u64>::new());
    stop_and_join(&victim);
}

#[test]
fn middle_record_without_a_first_is_rejected() {
    let victim = spawn_victim();
    victim
        .mailbox()
        .send_raw_record(false, false, &[0x55; 40])
        .unwrap();
    assert_lives_on_having_rejected(&victim, 1);
    stop_and_join(&victim);
}

#[test]
fn last_record_without_a_first_does_not_use_up_mailbox_capacity() {
    let victim: ActorRef<Victim> =
        procession::spawn_with(Victim::default(), SpawnOptions::new().capacity(1)).unwrap();
    let f = frame(FrameKind::Tell, <Note as Message>::TAG_ID, &cbor(&Note(7)));
    victim.mailbox().send_raw_record(false, true, &f).unwrap();
    // With capacity 1, a leaked slot would keep every later frame out of the mailbox.
    assert_eq!(
        victim
            .ask_timeout(Ping(1), std::time::Duration::from_secs(10))
            .unwrap(),
        2
    );
    assert_eq!(victim.mailbox().queued(), 0);
    stop_and_join(&victim);
}

#[test]
fn frame_cut_short_by_the_next_first_record_is_rejected_and_the_next_frame_delivered() {
    let victim = spawn_victim();
    let f = frame(FrameKind::Tell, <Note as Message>::TAG_ID, &cbor(&Note(7)));
    // The first half of a frame, never finished; the next frame starts a new FIRST record.
    victim
        .mailbox()
        .send_raw_record(true, false, &f[..f.len() / 2])
        .unwrap();
    victim.tell(Note(8)).unwrap();
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), vec![8]);
    stop_and_join(&victim);
}

#[test]
fn writer_dying_mid_frame_does_not_block_the_next_sender_and_its_part_is_dropped() {
    let victim = spawn_victim();
    let saboteur: ActorRef<Saboteur> = procession::spawn(Saboteur).unwrap();
    // The first 40 bytes of a frame that announces 4096.
    let mut chunk = frame(FrameKind::Tell, <Note as Message>::TAG_ID, &[0; 8]);
    chunk[..4].copy_from_slice(&4096u32.to_le_bytes());
    saboteur
        .tell(Sabotage {
            target: victim.clone(),
            first_chunk: ByteBuf::from(chunk),
        })
        .unwrap();
    assert_eq!(saboteur.join_timeout(LONG).unwrap(), Exit::Signaled(6));
    // The saboteur died holding the producers' lock: a tell and an ask still get through.
    victim.tell(Note(9)).unwrap();
    assert_lives_on_having_rejected(&victim, 1);
    assert_eq!(victim.ask(Notes).unwrap(), vec![9]);
    stop_and_join(&victim);
}

#[test]
fn actor_survives_every_kind_of_bad_frame_in_a_row() {
    let victim = spawn_victim();
    let mb = victim.mailbox();
    let note = <Note as Message>::TAG_ID;
    let good = frame(FrameKind::Tell, note, &cbor(&Note(1)));
    let mut bad_version = good.clone();
    bad_version[4] = WIRE_VERSION.wrapping_add(1);
    let mut bad_kind = good.clone();
    bad_kind[5] = 0;
    let mut truncated = good.clone();
    truncated[..4].copy_from_slice(&(good.len() as u32 + 1).to_le_bytes());
    let mut huge = good.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());

    inject(&victim, &frame(FrameKind::Tell, 1, &cbor(&())));
    inject(&victim, &frame(FrameKind::Tell, note, &[0xff]));
    inject(&victim, &bad_version);
    inject(&victim, &bad_kind);
    inject(&victim, &truncated);
    mb.send_raw_record(true, false, &huge).unwrap();
    mb.send_raw_record(false, true, &[0; 8]).unwrap();
    mb.send_raw_record(false, false, &[0; 8]).unwrap();
    inject(&victim, &good);
    assert_lives_on_having_rejected(&victim, 7);
    assert_eq!(victim.ask(Notes).unwrap(), vec![1]);
    stop_and_join(&victim);
}
