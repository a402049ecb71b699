//! Helpers shared by the integration tests: a [`Gate`] that holds an actor inside a
//! handler until the test lets it go (no sleeps), a clean stop-and-join, and a checksum.
//!
//! Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use procession::__private::Dispatch;
use procession::{ActorRef, Exit};

/// Generous bound for anything that must happen in a passing run (a loaded 2-core box).
pub const LONG: Duration = Duration::from_secs(30);

/// How long an actor waits at a gate before giving up by itself (a failing test must not
/// leave an actor blocked for ever).
const GATE_GIVE_UP: Duration = Duration::from_secs(60);

/// A rendezvous point between the test and an actor in another process: a unix socket.
///
/// The actor calls [`wait_at_gate`] with [`Gate::path`] inside a handler; it connects and
/// blocks reading one byte. The test sees the connection with [`Gate::arrival`] (so it
/// knows the actor is now inside that handler) and lets it go with [`Arrived::release`].
pub struct Gate {
    listener: UnixListener,
    path: PathBuf,
}

/// An actor that is blocked at a [`Gate`]. Dropping it without [`Arrived::release`] also
/// frees the actor (it reads end-of-file).
pub struct Arrived {
    conn: UnixStream,
}

impl Gate {
    /// A new gate on a fresh socket path.
    pub fn new() -> Gate {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "procession-gate-{}-{}-{nanos:08x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let listener = UnixListener::bind(&path).expect("bind the gate socket");
        Gate { listener, path }
    }

    /// The address to hand to the actor.
    pub fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Waits (at most `timeout`) until an actor has arrived at the gate.
    pub fn arrival(&self, timeout: Duration) -> Arrived {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(timeout).expect("timeout fits poll");
        let ready = loop {
            match poll(&mut fds, timeout) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.expect("poll the gate socket"),
            }
        };
        assert!(ready > 0, "no actor arrived at the gate in time");
        let (conn, _) = self.listener.accept().expect("accept at the gate");
        Arrived { conn }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Arrived {
    /// Lets the actor leave its handler.
    pub fn release(mut self) {
        self.conn.write_all(&[1]).expect("release the gate");
    }
}

/// In an actor's handler: blocks until the test releases the gate at `path`. Returns
/// `true` if it was released, `false` if the gate was gone, dropped or timed out.
pub fn wait_at_gate(path: &str) -> bool {
    let Ok(mut conn) = UnixStream::connect(path) else {
        return false;
    };
    if conn.set_read_timeout(Some(GATE_GIVE_UP)).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    matches!(conn.read(&mut byte), Ok(1))
}

/// Stops `actor` gracefully and checks that it ended with [`Exit::Stopped`].
pub fn stop_and_join<A: Dispatch>(actor: &ActorRef<A>) {
    actor.stop().expect("queue the stop request");
    let exit = actor.join_timeout(LONG).expect("actor ends after stop");
    assert_eq!(exit, Exit::Stopped, "actor did not stop cleanly");
}

/// 64-bit FNV-1a of `bytes`, to compare payloads across processes.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `len` bytes of a non-repeating-looking pattern.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).rotate_right(13) as u8)
        .collect()
}
