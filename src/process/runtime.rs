//! The per-program runtime: its private directory and its connection to the zygote.
//!
//! The root process (the program the user ran) creates the runtime lazily, on its first
//! spawn: a directory `/dev/shm/procession-<pid>-<nonce>` with mode 0700, and the zygote
//! (see [`forkserver`](super::forkserver)). Actor processes learn the directory from their
//! boot record and reach the zygote through `zygote.sock` inside it.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::forkserver::ZygoteClient;
use crate::error::{Error, Result};

/// The runtime as seen from this process.
#[derive(Debug)]
pub struct Runtime {
    dir: PathBuf,
    root: AtomicBool,
    zygote: Mutex<Option<ZygoteClient>>,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static CREATE: Mutex<()> = Mutex::new(());

/// The runtime, creating it (root process) on first use.
pub fn get() -> Result<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let _guard = CREATE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
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
    let rt = Runtime {
        dir,
        root: AtomicBool::new(true),
        zygote: Mutex::new(None),
    };
    let _ = RUNTIME.set(rt);
    let rt = RUNTIME.get().expect("runtime was just set");
    // The zygote is the runtime's keeper: it removes the directory when this process
    // ends, however it ends. Start it with the directory, whatever the runtime is first
    // used for (a spawn, a Lock, a Queue...).
    if let Err(e) = rt.zygote() {
        let _ = std::fs::remove_dir_all(rt.dir());
        return Err(e);
    }
    Ok(rt)
}

/// The runtime if this process already has one (a deserialized `ActorRef` needs it).
pub fn current() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// Installs the runtime of a child process (before any user code runs in it).
pub fn init_child(dir: &Path) {
    let _ = RUNTIME.set(Runtime {
        dir: dir.to_path_buf(),
        root: AtomicBool::new(false),
        zygote: Mutex::new(None),
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
        if guard.is_none() {
            *guard = Some(if self.root.load(Ordering::Relaxed) {
                ZygoteClient::start(&self.dir)?
            } else {
                ZygoteClient::connect(&self.dir)?
            });
        }
        Ok(guard)
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
