//! The per-program runtime: its private directory and its connection to the zygote.
//!
//! The root process (the program the user ran) creates the runtime lazily, on its first
//! spawn: a directory `/dev/shm/procession-<pid>-<nonce>` with mode 0700, and the zygote
//! (see [`forkserver`](super::forkserver)). Actor processes learn the directory from their
//! boot record and reach the zygote through `zygote.sock` inside it.
//!
//! ## When the zygote dies
//! The root holds a pidfd of its zygote and its end of the zygote's socket. Every slow
//! path (a wait slice of an ask, a join, a blocked send, a spawn; `is_alive`) polls both,
//! so the root notices the zygote's death within one slice (20 ms) of any call. The
//! runtime is then **lost**: every actor died with the zygote (parent-death signal), every
//! `ActorRef` into it fails fast (`ask`/`stop` with [`Error::RuntimeLost`], `tell` with
//! `TellError::RuntimeLost`, `join` with [`Exit::RuntimeLost`](crate::Exit::RuntimeLost)),
//! the actors this process forked itself are killed, and the runtime directory is removed
//! (the zygote's janitor process removes it at once, even if the root is idle). The at-exit
//! join of non-daemon actors no longer waits for them, so `main` returns normally.
//!
//! **The runtime heals itself:** the next spawn (or any use that needs a runtime) starts a
//! fresh one, with a new directory and zygote. References into the lost runtime stay
//! failed; new ones work.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::forkserver::ZygoteClient;
use crate::error::{Error, Result};

/// The runtime as seen from this process.
#[derive(Debug)]
pub struct Runtime {
    dir: PathBuf,
    root: AtomicBool,
    zygote: Mutex<Option<ZygoteClient>>,
    /// Which runtime of this process this is (a lost one is replaced by the next).
    generation: u32,
    /// Set once the zygote was found dead.
    lost: AtomicBool,
}

/// The current runtime (`None`: none yet, or the last one was lost). Runtimes are
/// leaked, so whatever refers to a lost one keeps a valid `&'static` to it.
static RUNTIME: RwLock<Option<&'static Runtime>> = RwLock::new(None);
static CREATE: Mutex<()> = Mutex::new(());
static GENERATIONS: AtomicU32 = AtomicU32::new(0);

fn install(rt: Runtime) -> &'static Runtime {
    crate::mailbox::set_generation(rt.generation);
    crate::mailbox::set_lost_probe(probe);
    let rt: &'static Runtime = Box::leak(Box::new(rt));
    *RUNTIME.write().unwrap_or_else(|e| e.into_inner()) = Some(rt);
    rt
}

/// The runtime, creating it (root process) on first use, or after the last was lost.
pub fn get() -> Result<&'static Runtime> {
    if let Some(rt) = current() {
        // Starting something in a runtime whose zygote died would fail obscurely (its
        // directory is gone): check first, and start afresh if it is lost.
        rt.check_zygote();
        if !rt.is_lost() {
            return Ok(rt);
        }
    }
    let _guard = CREATE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = current() {
        return Ok(rt);
    }
    super::registry::check_unique()?;
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let base = std::env::var_os("PROCESSION_SHM_DIR")
        .map_or_else(|| PathBuf::from("/dev/shm"), PathBuf::from);
    let dir = base.join(format!("procession-{}-{nonce:08x}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| {
            Error::io(
                format!("cannot create the runtime directory {}", dir.display()),
                e,
            )
        })?;
    let generation = GENERATIONS.fetch_add(1, Ordering::SeqCst);
    let rt = install(Runtime {
        dir,
        root: AtomicBool::new(true),
        zygote: Mutex::new(None),
        generation,
        lost: AtomicBool::new(false),
    });
    // The zygote is the runtime's keeper: it removes the directory when this process
    // ends, however it ends. Start it with the directory, whatever the runtime is first
    // used for (a spawn, a Lock, a Queue...).
    if let Err(e) = rt.zygote() {
        let _ = std::fs::remove_dir_all(rt.dir());
        rt.lost.store(true, Ordering::SeqCst);
        *RUNTIME.write().unwrap_or_else(|e| e.into_inner()) = None;
        return Err(e);
    }
    if generation > 0 {
        tracing::warn!(dir = %rt.dir().display(), generation, "started a fresh runtime after the last one was lost");
    }
    super::signals::install();
    Ok(rt)
}

/// The runtime if this process already has one (a deserialized `ActorRef` needs it).
pub fn current() -> Option<&'static Runtime> {
    *RUNTIME.read().unwrap_or_else(|e| e.into_inner())
}

/// Installs the runtime of a child process (before any user code runs in it).
pub fn init_child(dir: &Path) {
    if current().is_some() {
        return;
    }
    install(Runtime {
        dir: dir.to_path_buf(),
        root: AtomicBool::new(false),
        zygote: Mutex::new(None),
        generation: 0,
        lost: AtomicBool::new(false),
    });
}

impl Runtime {
    /// The private directory holding mailboxes and the zygote socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `true` in the process that created the runtime.
    pub fn is_root(&self) -> bool {
        self.root.load(Ordering::Relaxed)
    }

    /// The zygote connection, started (root) or connected (child) on first use.
    pub fn zygote(&self) -> Result<MutexGuard<'_, Option<ZygoteClient>>> {
        let mut guard = self.zygote.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_lost() {
            return Err(Error::RuntimeLost);
        }
        if guard.is_none() {
            *guard = Some(if self.root.load(Ordering::Relaxed) {
                ZygoteClient::start(&self.dir)?
            } else {
                ZygoteClient::connect(&self.dir)?
            });
        }
        Ok(guard)
    }

    /// `true` once its zygote was found dead.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Checks (without waiting) whether the zygote has died; if so, declares the runtime
    /// lost. Only the root can tell (an actor dies with its zygote).
    fn check_zygote(&'static self) {
        if !self.is_root() || self.is_lost() {
            return;
        }
        // Never block here: a thread that holds the lock is talking to the zygote and
        // will see its death itself.
        let dead = match self.zygote.try_lock() {
            Ok(guard) => guard.as_ref().is_some_and(|z| z.is_dead()),
            Err(_) => false,
        };
        if dead {
            self.lose();
        }
    }

    /// The zygote died: every actor in this runtime died with it. Fail every reference
    /// fast, kill this process's own fork children, remove the directory, and let the
    /// next use start a fresh runtime.
    pub(crate) fn lose(&'static self) {
        if self.lost.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::error!(dir = %self.dir.display(), "the zygote died: this runtime and every actor in it are lost");
        {
            let mut current = RUNTIME.write().unwrap_or_else(|e| e.into_inner());
            if current.is_some_and(|rt| std::ptr::eq(rt, self)) {
                *current = None;
            }
        }
        crate::mailbox::mark_generation_lost(self.generation);
        super::fork::kill_all();
        if let Some(z) = self.zygote.lock().unwrap_or_else(|e| e.into_inner()).take() {
            z.reap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// In a child forked directly from this process: forget the parent's zygote connection
    /// (the child reconnects through the socket if it spawns) and become a non-root.
    pub fn forget_in_fork_child(&self) {
        self.root.store(false, Ordering::Relaxed);
        let mut guard = self.zygote.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(z) = guard.take() {
            z.forget();
        }
    }
}

/// The slow-path check registered with the mailbox layer: notices a dead zygote.
fn probe() {
    if let Some(rt) = current() {
        rt.check_zygote();
    }
}
