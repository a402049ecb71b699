//! A supervisor's death loses nothing and invalidates no reference: a child's mailbox
//! belongs to its place in the tree (the path of child ids from the root), not to the
//! process of its supervisor. A restarted supervisor adopts its children's mailboxes,
//! with everything queued in them.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::LONG;
use procession::prelude::*;
use procession::shared::Array;
use procession::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorActor};
use procession::TellError;

/// At least once: the one in flight when the recorder is killed is handled again.
#[derive(Serialize, Deserialize, Message)]
#[message(redeliver = 1000)]
struct Seq(u32);

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Ping;

/// Marks every sequence number it handles in shared memory, which outlives it.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Seq, Ping))]
struct Recorder {
    seen: Array<u8>,
}

impl Handler<Seq> for Recorder {
    fn handle(&mut self, Seq(i): Seq, _: &mut Context<Self>) {
        // A little work per message, so that the mailbox holds a backlog while the test
        // kills the supervisor (the kills are paced by progress, not by time).
        let mut x = i as u64;
        for _ in 0..20_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        std::hint::black_box(x);
        let _ = self.seen.set(i as usize, 1);
    }
}

impl Handler<Ping> for Recorder {
    fn handle(&mut self, _: Ping, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

/// Kills and joins the root supervisor when dropped, even if the test fails first.
struct KillOnDrop(ActorRef<SupervisorActor>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.join_timeout(LONG);
    }
}

fn tree(seen: &Array<u8>) -> KillOnDrop {
    let middle = Supervisor::new(Strategy::OneForOne)
        .intensity(1000, Duration::from_secs(1))
        .child(ChildSpec::worker::<Recorder>(
            "recorder",
            Recorder { seen: seen.clone() },
        ));
    Supervisor::new(Strategy::OneForOne)
        .intensity(1000, Duration::from_secs(1))
        .child(ChildSpec::supervisor("middle", middle))
        .spawn()
        .map(KillOnDrop)
        .unwrap()
}

fn pid_of(sup: &ActorRef<SupervisorActor>, id: &str) -> Option<u32> {
    sup.which_children()
        .ok()?
        .into_iter()
        .find(|c| c.id == id)?
        .pid
}

#[test]
fn sigkilling_a_middle_supervisor_20_times_under_4_senders_loses_no_accepted_message() {
    const SENDERS: u32 = 4;
    const PER_SENDER: u32 = 5_000;
    const KILLS: usize = 20;
    let total = (SENDERS * PER_SENDER) as usize;
    let seen = Array::new(total, 0u8).unwrap();
    let root = tree(&seen);
    let middle: ActorRef<SupervisorActor> = root.0.child("middle").unwrap();
    let recorder: ActorRef<Recorder> = middle.child("recorder").unwrap();
    let first_recorder = recorder.ask(Ping).unwrap();

    let refused = Arc::new(AtomicU32::new(0));
    let accepted = Arc::new(AtomicU32::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let recorder = recorder.clone();
            let refused = refused.clone();
            let accepted = accepted.clone();
            std::thread::spawn(move || {
                for i in 0..PER_SENDER {
                    match recorder.tell(Seq(s * PER_SENDER + i)) {
                        Ok(()) => accepted.fetch_add(1, Ordering::Relaxed),
                        Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();

    // The kills must land while accepted messages wait in the mailbox: kill k once k/KILLS
    // of the messages have been handled, and record how many were accepted but not yet
    // handled at that moment.
    let handled = || seen.to_vec().iter().filter(|&&b| b != 0).count();
    let mut pending_at_kill = Vec::new();
    for k in 0..KILLS {
        let due = k * total / KILLS;
        let start = Instant::now();
        while handled() < due {
            assert!(start.elapsed() < LONG, "the recorder made no progress");
            std::thread::sleep(Duration::from_micros(200));
        }
        let before = pid_of(&root.0, "middle").expect("middle runs");
        pending_at_kill.push(accepted.load(Ordering::Relaxed) as usize - handled().min(total));
        middle.kill().unwrap();
        let start = Instant::now();
        loop {
            match pid_of(&root.0, "middle") {
                Some(p) if p != before => break,
                _ if start.elapsed() > LONG => panic!("middle not restarted after kill {k}"),
                _ => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(refused.load(Ordering::Relaxed), 0, "tells were refused");
    // The same reference still reaches the recorder, now a later incarnation.
    let last_recorder = recorder.ask_timeout(Ping, LONG).unwrap();
    assert_ne!(first_recorder, last_recorder);
    let start = Instant::now();
    let lost = loop {
        let lost = seen.to_vec().iter().filter(|&&b| b == 0).count();
        if lost == 0 || start.elapsed() > LONG {
            break lost;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!(
        "{KILLS} middle-supervisor SIGKILLs under {SENDERS}x{PER_SENDER} at-least-once tells: \
         {lost} of {total} accepted messages lost; accepted but not yet handled at each kill: \
         {pending_at_kill:?}"
    );
    assert_eq!(lost, 0, "accepted messages were lost");
}

#[test]
fn refs_into_a_subtree_fail_fast_once_the_unsupervised_root_supervisor_is_gone() {
    let seen = Array::new(1, 0u8).unwrap();
    let root = tree(&seen);
    let middle: ActorRef<SupervisorActor> = root.0.child("middle").unwrap();
    let recorder: ActorRef<Recorder> = middle.child("recorder").unwrap();
    assert_ne!(recorder.ask(Ping).unwrap(), 0);
    root.0.kill().unwrap();
    assert_eq!(root.0.join_timeout(LONG).unwrap(), Exit::Signaled(9));
    // Its subtree's mailboxes are closed: no incarnation will ever read them.
    let start = Instant::now();
    loop {
        match recorder.tell_timeout(Seq(0), Duration::from_millis(50)) {
            Err(TellError::Dead(_)) => break,
            _ if start.elapsed() > LONG => panic!("the subtree's mailbox stayed open"),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    assert!(!recorder.is_alive());
}
