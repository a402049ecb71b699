//! A random-mutation fuzzer for mailbox files: it writes random and chosen bytes over an
//! actor's mailbox header and ring (as any process of the same uid can), then probes the
//! actor with `try_tell`, `tell_timeout`, `ask_timeout`, `kill` and `join_timeout`.
//!
//! What must hold, whatever the bytes: no process aborts (neither this one, the sender,
//! nor the actor, the reader: an actor that dies without being killed is counted as an
//! abort), no call outlives its deadline by more than a grace period (a hang), and no
//! signal reaches anyone but the actor: a canary process whose pid (and its negation,
//! and -1) are among the values written must be alive at the end.
//!
//! `fuzz_smoke` runs a few seconds in the suite. For a long run:
//! `FUZZ_MUTATIONS=1000000 cargo test --release --test fault_fuzz -- --ignored --nocapture`.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use procession::prelude::*;
use procession::Error;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Ping;

#[derive(Serialize, Deserialize, Message)]
struct Note(u64);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Ping, Note))]
struct Target;

impl Handler<Ping> for Target {
    fn handle(&mut self, _: Ping, cx: &mut Context<Self>) -> u32 {
        cx.pid()
    }
}

impl Handler<Note> for Target {
    fn handle(&mut self, _: Note, _: &mut Context<Self>) {}
}

/// How far past its deadline a call may return before it counts as a hang (scheduling
/// on a loaded 2-core machine; a real hang is unbounded).
const GRACE: Duration = Duration::from_secs(2);
const ASK: Duration = Duration::from_millis(5);
const TELL: Duration = Duration::from_millis(2);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Default)]
struct Tally {
    mutations: u64,
    probes: u64,
    ok: u64,
    typed_errors: u64,
    respawns: u64,
    aborts: u64,
    hangs: u64,
    slowest: Duration,
}

struct Fuzzer {
    rng: Rng,
    canary: Child,
    actor: ActorRef<Target>,
    /// The actor's real pid, as it reported it itself (not read from the header).
    actor_pid: u32,
    tally: Tally,
    fields: Vec<(usize, usize)>,
}

impl Drop for Fuzzer {
    fn drop(&mut self) {
        let _ = self.canary.kill();
        let _ = self.canary.wait();
    }
}

/// Whether process `pid` has ended (gone, or a zombie), by `/proc`.
fn ended(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X')))
    })
}

fn fresh_target() -> (ActorRef<Target>, u32) {
    let actor: ActorRef<Target> = procession::spawn(Target).unwrap();
    let pid = actor.ask(Ping).unwrap();
    (actor, pid)
}

fn offset(field: &str) -> usize {
    procession::__private::header_field_offset(field).unwrap()
}

impl Fuzzer {
    fn new(seed: u64) -> Fuzzer {
        let canary = Command::new("sleep").arg("3600").spawn().unwrap();
        let fields = [
            ("magic", 8),
            ("ring_size", 8),
            ("capacity", 4),
            ("max_frame", 8),
            ("lock", 16),
            ("tail", 8),
            ("frame_open", 4),
            ("head", 8),
            ("frames_sent", 8),
            ("frames_taken", 8),
            ("consumer_waiting", 4),
            ("data_seq", 4),
            ("state", 4),
            ("pid", 4),
            ("final_exit", 4),
            ("exit_kind", 4),
            ("watch", 16),
        ]
        .iter()
        .map(|&(f, len)| (offset(f), len))
        .collect();
        let (actor, actor_pid) = fresh_target();
        Fuzzer {
            rng: Rng(seed | 1),
            canary,
            actor,
            actor_pid,
            tally: Tally::default(),
            fields,
        }
    }

    fn value(&mut self, len: usize) -> Vec<u8> {
        let canary = self.canary.id();
        let tail = self.actor.mailbox().queued() as u64;
        let chosen: [u64; 12] = [
            0,
            1,
            4,
            0xb0,
            0x7fff_ffff,
            u32::MAX as u64,
            u64::MAX,
            canary as u64,
            (-(canary as i64)) as u64,
            1 << 31,
            tail.wrapping_add(self.rng.below(64)),
            4097,
        ];
        let v = if self.rng.below(2) == 0 {
            chosen[self.rng.below(chosen.len() as u64) as usize]
        } else {
            self.rng.next()
        };
        v.to_le_bytes()[..len.min(8)].to_vec()
    }

    /// One round: a few mutations, then a probe.
    fn round(&mut self) {
        let n = 1 + self.rng.below(3);
        for _ in 0..n {
            let (at, len) = match self.rng.below(10) {
                // Known fields, most of the time.
                0..=5 => self.fields[self.rng.below(self.fields.len() as u64) as usize],
                // Anywhere in the header page.
                6 | 7 => (
                    self.rng.below(4096) as usize,
                    1 + self.rng.below(8) as usize,
                ),
                // The first part of the ring, where frames are.
                _ => (
                    offset("ring") + self.rng.below(8192) as usize,
                    1 + self.rng.below(8) as usize,
                ),
            };
            let bytes = self.value(len);
            self.actor.mailbox().scribble(at, &bytes);
            self.tally.mutations += 1;
        }
        self.probe();
    }

    fn timed<T>(&mut self, deadline: Duration, f: impl FnOnce(&ActorRef<Target>) -> T) -> T {
        let start = Instant::now();
        let out = f(&self.actor);
        let took = start.elapsed();
        self.tally.probes += 1;
        self.tally.slowest = self.tally.slowest.max(took);
        if took > deadline + GRACE {
            self.tally.hangs += 1;
        }
        out
    }

    fn probe(&mut self) {
        let _ = self.timed(Duration::ZERO, |a| a.try_tell(Note(1)));
        let told = self.timed(TELL, |a| a.tell_timeout(Note(2), TELL));
        let asked = self.timed(ASK, |a| a.ask_timeout(Ping, ASK));
        match (&told, &asked) {
            (Ok(()), Ok(_)) => self.tally.ok += 1,
            _ => self.tally.typed_errors += 1,
        }
        if let Err(Error::ActorDied { exit, .. }) = &asked {
            // A header may claim the actor exited; only a process that really ended,
            // which nobody killed, died of what it read.
            if ended(self.actor_pid) {
                self.tally.aborts += 1;
                eprintln!("the actor died reading its mailbox: {exit:?}");
            }
        }
        if asked.is_err() {
            self.respawn();
        }
    }

    /// The mailbox may be unusable now: kill the actor (through the zygote), make sure
    /// the kill and the join return, and start a fresh one.
    fn respawn(&mut self) {
        let _ = self.timed(Duration::ZERO, |a| a.kill());
        let _ = self.timed(Duration::from_secs(1), |a| {
            a.join_timeout(Duration::from_secs(1))
        });
        (self.actor, self.actor_pid) = fresh_target();
        self.tally.respawns += 1;
    }

    fn finish(mut self) -> Tally {
        let _ = self.actor.kill();
        let _ = self.actor.join_timeout(common::LONG);
        let canary_alive = self.canary.try_wait().unwrap().is_none();
        assert!(canary_alive, "a signal reached the canary process");
        std::mem::take(&mut self.tally)
    }
}

fn run(mutations: u64, budget: Duration, seed: u64) -> Tally {
    let mut f = Fuzzer::new(seed);
    let start = Instant::now();
    let mut next_report = 100_000;
    while f.tally.mutations < mutations && start.elapsed() < budget {
        f.round();
        if f.tally.mutations >= next_report {
            eprintln!(
                "fuzz seed {seed:#x}: {:?} after {:?}",
                f.tally,
                start.elapsed()
            );
            next_report += 100_000;
        }
    }
    let took = start.elapsed();
    let tally = f.finish();
    eprintln!("fuzz seed {seed:#x}: {tally:?} in {took:?}");
    tally
}

#[test]
fn fuzz_smoke_random_mailbox_mutations_never_abort_hang_or_signal_anyone() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let t = run(20_000, Duration::from_secs(5), seed);
    assert!(t.mutations > 0);
    assert_eq!(t.aborts, 0, "seed {seed:#x}");
    assert_eq!(t.hangs, 0, "seed {seed:#x}");
}

#[test]
#[ignore = "long run: FUZZ_MUTATIONS=1000000 cargo test --release --test fault_fuzz -- --ignored --nocapture"]
fn fuzz_long() {
    let n: u64 = std::env::var("FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // Four fuzzers at once, each on its own actor: most of a round is waiting.
    let threads: Vec<_> = (0..4u64)
        .map(|k| {
            std::thread::spawn(move || run(n / 4, Duration::from_secs(3 * 3600), 0x5eed_f00d + k))
        })
        .collect();
    let mut all = Tally::default();
    for t in threads {
        let t = t.join().unwrap();
        all.mutations += t.mutations;
        all.probes += t.probes;
        all.ok += t.ok;
        all.typed_errors += t.typed_errors;
        all.respawns += t.respawns;
        all.aborts += t.aborts;
        all.hangs += t.hangs;
        all.slowest = all.slowest.max(t.slowest);
    }
    eprintln!("fuzz total: {all:?}");
    assert_eq!(all.aborts, 0);
    assert_eq!(all.hangs, 0);
}
