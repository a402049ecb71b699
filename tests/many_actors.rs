//! Many actors (issue 12): what each running actor costs the rest of the program.
//!
//! - The zygote keeps no mapping per running actor, so a fork copies nothing per actor
//!   and spawning does not slow down as actors accumulate.
//! - An idle actor backs off its re-checks (to once a second), and still gets a message
//!   whose wake-up was lost.
//! - `inspect::shm_usage` tells what mailbox files hold in memory (their touched pages)
//!   from what they seem to take (their ring sizes).

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use common::LONG;
use procession::prelude::*;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Count;

#[derive(Serialize, Deserialize, Message)]
struct Note;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Count, Note))]
struct Idle {
    notes: u64,
}

impl Handler<Count> for Idle {
    fn handle(&mut self, _: Count, _: &mut Context<Self>) -> u64 {
        self.notes
    }
}

impl Handler<Note> for Idle {
    fn handle(&mut self, _: Note, _: &mut Context<Self>) {
        self.notes += 1;
    }
}

fn idle() -> ActorRef<Idle> {
    procession::spawn(Idle { notes: 0 }).unwrap()
}

fn stop_all(actors: &[ActorRef<Idle>]) {
    for a in actors {
        a.stop().unwrap();
    }
    for a in actors {
        assert_eq!(a.join_timeout(LONG).unwrap(), Exit::Stopped);
    }
}

fn mappings_of(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .count()
}

#[test]
fn the_zygote_keeps_no_mapping_per_running_actor() {
    let first = idle();
    first.ask(Count).unwrap();
    let zygote = procession::__private::zygote_pid().expect("a zygote after a spawn");
    let before = mappings_of(zygote);
    let actors: Vec<ActorRef<Idle>> = (0..64).map(|_| idle()).collect();
    for a in &actors {
        a.ask(Count).unwrap();
    }
    let during = mappings_of(zygote);
    // Its heap may gain an area or two; one mapping per actor would be 64 more.
    assert!(
        during < before + 16,
        "the zygote's mappings went from {before} to {during} for 64 actors"
    );
    stop_all(&actors);
    stop_all(&[first]);
}

#[test]
fn an_actor_idle_long_enough_to_back_off_still_gets_a_message_whose_wakeup_was_lost() {
    let actor = idle();
    assert_eq!(actor.ask(Count).unwrap(), 0);
    // Idle for 3 s, its re-checks have backed off to the longest slice (1 s). This sleep
    // is the condition under test, not a synchronization.
    std::thread::sleep(Duration::from_secs(3));
    // It sleeps on its futex; clear the flag that tells senders to wake it, so the
    // wake-up for the next message is lost.
    let path = procession::__private::mailbox_path(actor.id()).unwrap();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    let at = procession::__private::header_field_offset("consumer_waiting").unwrap() as u64;
    file.write_all_at(&0u32.to_le_bytes(), at).unwrap();
    actor.tell(Note).unwrap();
    // Its next bounded re-check finds the message.
    assert_eq!(actor.ask_timeout(Count, LONG).unwrap(), 1);
    stop_all(&[actor]);
}

#[test]
fn shm_usage_counts_the_pages_idle_mailboxes_touch_not_their_ring_sizes() {
    let actors: Vec<ActorRef<Idle>> = (0..16).map(|_| idle()).collect();
    for a in &actors {
        a.ask(Count).unwrap();
    }
    let rt = procession::inspect::this_runtime().unwrap();
    let used = procession::inspect::shm_usage(&rt).unwrap();
    assert!(used.files >= 16, "{used:?}");
    // 16 mailboxes of a 1 MiB ring each, of which an idle actor touches a page or two.
    assert!(used.apparent_bytes >= 16 << 20, "{used:?}");
    assert!(
        used.resident_bytes * 8 < used.apparent_bytes,
        "idle mailboxes should hold far less than their sizes: {used:?}"
    );
    stop_all(&actors);
}
