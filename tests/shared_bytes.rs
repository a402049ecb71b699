//! `SharedBytes` (issue 12): a buffer that travels as a handle, read in place by the
//! receiver, and freed when its last holder drops it, even a holder that crashed.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::LONG;
use procession::prelude::*;
use procession::SharedBytes;

#[derive(Serialize, Deserialize, Message)]
struct Keep(SharedBytes);

#[derive(Serialize, Deserialize, Message)]
struct Forget;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Checksum(SharedBytes);

/// Replies with the sum of the kept buffer's bytes (0 if it keeps none).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct KeptSum;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Keep, Forget, Checksum, KeptSum))]
struct Holder {
    #[serde(skip)]
    kept: Option<SharedBytes>,
}

fn sum(b: &[u8]) -> u64 {
    b.iter().map(|&x| x as u64).sum()
}

impl Handler<Keep> for Holder {
    fn handle(&mut self, m: Keep, _: &mut Context<Self>) {
        self.kept = Some(m.0);
    }
}

impl Handler<Forget> for Holder {
    fn handle(&mut self, _: Forget, _: &mut Context<Self>) {
        self.kept = None;
    }
}

impl Handler<Checksum> for Holder {
    fn handle(&mut self, m: Checksum, _: &mut Context<Self>) -> u64 {
        sum(&m.0)
    }
}

impl Handler<KeptSum> for Holder {
    fn handle(&mut self, _: KeptSum, _: &mut Context<Self>) -> u64 {
        self.kept.as_deref().map_or(0, sum)
    }
}

fn holder() -> ActorRef<Holder> {
    procession::spawn(Holder { kept: None }).unwrap()
}

fn stop(a: &ActorRef<Holder>) {
    a.stop().unwrap();
    assert_eq!(a.join_timeout(LONG).unwrap(), Exit::Stopped);
}

/// Polls (every 10 ms, at most `LONG`) until `path` is gone; whether it went.
fn gone(path: &Path) -> bool {
    let deadline = Instant::now() + LONG;
    while path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn pattern(len: usize) -> SharedBytes {
    SharedBytes::with_len(len, |buf| {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i * 31 % 251) as u8;
        }
    })
    .unwrap()
}

/// Gives `b` to `a` to keep, checks that `a` reads the same bytes, and returns its file:
/// from then on the actor is its only holder.
fn hand_over(a: &ActorRef<Holder>, b: SharedBytes) -> std::path::PathBuf {
    let path = b.__path().to_path_buf();
    let expected = sum(&b);
    a.tell(Keep(b)).unwrap();
    assert_eq!(a.ask(KeptSum).unwrap(), expected);
    path
}

#[test]
fn an_actor_reads_the_bytes_it_was_sent_in_place() {
    let a = holder();
    let big = pattern(16 << 20);
    assert_eq!(a.ask(Checksum(big.clone())).unwrap(), sum(&big));
    // The receiver's handle is gone with the message; ours keeps the buffer.
    assert!(big.__path().exists());
    stop(&a);
}

#[test]
fn the_last_drop_in_another_process_frees_the_buffer() {
    let a = holder();
    let path = hand_over(&a, pattern(1 << 20));
    // Only the actor holds it now.
    assert!(path.exists());
    a.tell(Forget).unwrap();
    assert_eq!(a.ask(KeptSum).unwrap(), 0);
    assert!(!path.exists(), "the actor dropped the last handle");
    stop(&a);
}

#[test]
fn a_holder_that_crashes_frees_its_share() {
    let a = holder();
    let path = hand_over(&a, pattern(1 << 20));
    let holds = procession::__private::runtime_dir()
        .unwrap()
        .join(format!("holds-{:08x}", a.pid()));
    assert!(holds.is_dir(), "the actor records what it holds");
    a.kill().unwrap();
    assert!(!a.join_timeout(LONG).unwrap().is_clean());
    assert!(gone(&path), "the reaper frees the dead holder's share");
    assert!(!holds.exists());
}

#[test]
fn a_buffer_sent_to_two_actors_lives_until_both_drop_it() {
    let (a, b) = (holder(), holder());
    let buf = pattern(64 << 10);
    let path = buf.__path().to_path_buf();
    let expected = sum(&buf);
    a.tell(Keep(buf.clone())).unwrap();
    b.tell(Keep(buf)).unwrap();
    assert_eq!(a.ask(KeptSum).unwrap(), expected);
    assert_eq!(b.ask(KeptSum).unwrap(), expected);
    a.tell(Forget).unwrap();
    assert_eq!(a.ask(KeptSum).unwrap(), 0);
    assert!(path.exists(), "the other actor still holds it");
    assert_eq!(b.ask(KeptSum).unwrap(), expected);
    b.tell(Forget).unwrap();
    assert_eq!(b.ask(KeptSum).unwrap(), 0);
    assert!(!path.exists());
    stop(&a);
    stop(&b);
}

#[test]
fn dropping_every_local_handle_frees_a_buffer_never_sent() {
    let b = SharedBytes::from_slice(b"hello").unwrap();
    let c = b.clone();
    let path = b.__path().to_path_buf();
    assert_eq!(&c[..], b"hello");
    drop(b);
    assert!(path.exists(), "a clone still holds it");
    drop(c);
    assert!(!path.exists());
}

#[test]
fn an_empty_buffer_travels_too() {
    let a = holder();
    let empty = SharedBytes::from_slice(&[]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(a.ask(Checksum(empty)).unwrap(), 0);
    stop(&a);
}
