//! Ctrl-C, SIGTERM and SIGHUP: the root stops its trees gracefully, or lets `main` decide.
//!
//! Actors do not see these signals when a terminal or an orchestrator sends them to the
//! program's process group: the zygote, and so every actor, runs in a process group of
//! its own (a `fork`-method child joins it), and the zygote ignores them. Only the root
//! gets them, and when it has started a runtime it handles them on a thread of its own
//! (`procession-signals`, parked in a `read` of signal-hook's self-pipe):
//!
//! - **by default**, the first signal stops every actor the root spawned, the last
//!   started first, each as a supervisor stops a child (`stopping` runs, the exit is
//!   [`Exit::Shutdown("shutdown")`](crate::Exit::Shutdown), a supervisor stops its own
//!   children in reverse start order with their shutdown allowances), each given at most
//!   [`SIGNAL_SHUTDOWN_ALLOWANCE`] before it is killed. The root then exits with status
//!   128 + the signal's number: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP. A second
//!   signal during that shutdown ends the root at once with that status; the zygote then
//!   kills every actor.
//! - **after [`shutdown_signal`]**, nothing happens by itself: the signals arrive on the
//!   returned [`ShutdownSignal`], and `main` decides (for example calls [`stop_all`] and
//!   returns), as a tokio program does with `ctrl_c()`.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::mailbox::{Mailbox, Wait, LIVENESS_SLICE};

/// How long the default signal handling waits for each top-level actor to stop before it
/// kills it.
pub const SIGNAL_SHUTDOWN_ALLOWANCE: Duration = Duration::from_secs(30);

const MODE_DEFAULT: u8 = 0;
const MODE_USER: u8 = 1;

static MODE: AtomicU8 = AtomicU8::new(MODE_DEFAULT);
static INSTALL: Once = Once::new();
/// The watcher thread runs (then a `fork` start may ignore it: see `fork::start`).
static WATCHING: AtomicBool = AtomicBool::new(false);
/// A default shutdown is under way.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);
static CHANNEL: Mutex<
    Option<(
        crossbeam_channel::Sender<Signal>,
        crossbeam_channel::Receiver<Signal>,
    )>,
> = Mutex::new(None);

/// Whether the signal watcher thread exists in this process.
pub(crate) fn watcher_running() -> bool {
    WATCHING.load(Ordering::SeqCst)
}

/// In a `fork` child: the watcher thread was not forked with it.
pub(crate) fn forget_in_fork_child() {
    WATCHING.store(false, Ordering::SeqCst);
}

/// Whether a signal-driven shutdown is under way.
pub(crate) fn shutting_down() -> bool {
    SHUTTING_DOWN.load(Ordering::SeqCst)
}

/// Starts handling SIGINT, SIGTERM and SIGHUP in this (root) process, once.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot handle SIGINT/SIGTERM/SIGHUP; they keep their default action");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("procession-signals".into())
            .spawn(move || {
                for raw in signals.forever() {
                    if let Ok(sig) = Signal::try_from(raw) {
                        on_signal(sig);
                    }
                }
            });
        match spawned {
            Ok(_) => WATCHING.store(true, Ordering::SeqCst),
            Err(e) => tracing::warn!(error = %e, "cannot start the signal thread"),
        }
    });
}

fn on_signal(sig: Signal) {
    if MODE.load(Ordering::SeqCst) == MODE_USER {
        if let Some((tx, _)) = &*CHANNEL.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = tx.send(sig);
        }
        return;
    }
    let status = 128 + sig as i32;
    if SHUTTING_DOWN.swap(true, Ordering::SeqCst) {
        eprintln!("procession: {sig} again: ending now; every actor is killed");
        crate::os::proc::exit_now(status);
    }
    eprintln!(
        "procession: {sig}: stopping every actor, the last started first ({sig} again ends at once)"
    );
    // On a thread of its own, so that this one goes on watching for a second signal.
    let spawned = std::thread::Builder::new()
        .name("procession-shutdown".into())
        .spawn(move || {
            stop_all(SIGNAL_SHUTDOWN_ALLOWANCE);
            std::process::exit(status);
        });
    if spawned.is_err() {
        crate::os::proc::exit_now(status);
    }
}

/// Signals the root receives, once [`shutdown_signal`] took them over.
///
/// ```no_run
/// let signals = procession::shutdown_signal();
/// // ... spawn the service's actors ...
/// let sig = signals.wait();
/// eprintln!("{sig}: shutting down");
/// procession::stop_all(std::time::Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    rx: crossbeam_channel::Receiver<Signal>,
}

impl ShutdownSignal {
    /// Waits for the next SIGINT, SIGTERM or SIGHUP.
    pub fn wait(&self) -> Signal {
        // The sender lives in a static: the channel never disconnects.
        self.rx.recv().unwrap_or(Signal::SIGTERM)
    }

    /// Waits at most `timeout` for the next one.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Signal> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next one, if one arrived already.
    pub fn try_get(&self) -> Option<Signal> {
        self.rx.try_recv().ok()
    }

    /// The receiver itself, to `select!` on it with other crossbeam channels.
    pub fn receiver(&self) -> &crossbeam_channel::Receiver<Signal> {
        &self.rx
    }
}

/// Takes over SIGINT, SIGTERM and SIGHUP: from now on they do not stop anything by
/// themselves, and arrive on the returned handle (every handle shares one queue: each
/// signal is seen by one of them). Until it is called, the root stops its trees in OTP
/// order on the first signal and exits with 128 + the signal's number (see the README's
/// "Ctrl-C, SIGTERM and SIGHUP").
pub fn shutdown_signal() -> ShutdownSignal {
    let rx = {
        let mut ch = CHANNEL.lock().unwrap_or_else(|e| e.into_inner());
        ch.get_or_insert_with(crossbeam_channel::unbounded)
            .1
            .clone()
    };
    MODE.store(MODE_USER, Ordering::SeqCst);
    install();
    ShutdownSignal { rx }
}

/// Stops every actor this process spawned and that still runs, the last started first,
/// as a supervisor stops its children: a graceful stop whose exit is
/// [`Exit::Shutdown("shutdown")`](crate::Exit::Shutdown), then at most `allowance` for
/// it to end, then a kill. Returns how many had to be killed. Actors spawned by those
/// actors are theirs to stop (a supervisor stops its children in reverse start order).
pub fn stop_all(allowance: Duration) -> usize {
    let mut children = super::active_children();
    children.reverse();
    let mut killed = 0;
    for child in children {
        let mb = child.mailbox();
        let stop = crate::actor::send_stop_as(mb, None, Wait::from_timeout(Some(allowance)), true);
        if stop.is_ok() && ended_within(mb, allowance) {
            continue;
        }
        killed += 1;
        tracing::warn!(
            actor = child.name(),
            pid = child.pid(),
            "did not stop in time; killing it"
        );
        super::fork::kill_consumer(mb.id());
        ended_within(mb, allowance);
    }
    killed
}

/// Waits at most `timeout` for the consumer of `mb` to end; whether it did.
fn ended_within(mb: &Mailbox, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        super::fork::reap();
        if !super::running(mb) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        mb.wait_state_change(mb.state(), left.min(LIVENESS_SLICE));
    }
}
