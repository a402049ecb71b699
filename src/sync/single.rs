//! [`SingleInstance`]: one running copy of a program at a time.

use std::io::{Read, Seek, Write};
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// A guard that makes a second copy of a program refuse to start. It holds an exclusive
/// `flock` on `$XDG_RUNTIME_DIR/<name>.lock` (or `/tmp/procession-<uid>/<name>.lock`);
/// the kernel releases it when the holder exits, however it exits, so a crash never
/// leaves a stale lock. Dropping the guard removes the file.
///
/// ```
/// use procession::sync::SingleInstance;
/// let name = format!("doctest-{}", std::process::id());
/// let first = SingleInstance::acquire(&name)?;
/// assert!(SingleInstance::acquire(&name).is_err()); // a second copy is refused
/// drop(first);
/// assert!(SingleInstance::acquire(&name).is_ok());
/// # Ok::<(), procession::Error>(())
/// ```
pub struct SingleInstance {
    lock: Option<Flock<std::fs::File>>,
    path: PathBuf,
}

fn same_file(file: &std::fs::File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Drop for SingleInstance {
    fn drop(&mut self) {
        // Remove the file while still holding the lock, then let go (see `acquire`).
        let _ = std::fs::remove_file(&self.path);
        drop(self.lock.take());
    }
}

impl SingleInstance {
    /// Takes the guard for `name` (1 to 100 characters from `[A-Za-z0-9_.:-]`), or fails
    /// with [`Error::AlreadyRunning`] naming the holder's pid.
    ///
    /// # Errors
    /// [`Error::AlreadyRunning`](crate::Error::AlreadyRunning) if another live process
    /// holds the name; [`Error::BadName`](crate::Error::BadName) for an invalid name;
    /// [`Error::Io`](crate::Error::Io) if its file cannot be created.
    pub fn acquire(name: &str) -> Result<SingleInstance> {
        if !crate::process::names::valid(name) {
            return Err(Error::BadName(name.to_string()));
        }
        let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from(format!("/tmp/procession-{}", nix::unistd::geteuid())),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("cannot create the lock directory", e))?;
        let path = dir.join(format!("{name}.lock"));
        loop {
            let file = std::os::unix::fs::OpenOptionsExt::mode(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false),
                0o600,
            )
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut lock) => {
                    // The holder before us removes the file as it lets go; if it did so
                    // after we opened it, we hold a lock on a file nobody else can find:
                    // start over with the one at the path.
                    if !same_file(&lock, &path) {
                        continue;
                    }
                    let _ = lock.set_len(0);
                    let _ = lock.rewind();
                    let _ = write!(lock, "{}", std::process::id());
                    let _ = lock.flush();
                    return Ok(SingleInstance {
                        lock: Some(lock),
                        path,
                    });
                }
                Err((mut file, _)) => {
                    let mut pid = String::new();
                    let _ = file.read_to_string(&mut pid);
                    return Err(Error::AlreadyRunning {
                        name: name.to_string(),
                        pid: pid.trim().parse().ok(),
                    });
                }
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl std::fmt::Debug for SingleInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SingleInstance({})", self.path.display())
    }
}
