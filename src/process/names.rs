//! Registered names, as files in the runtime directory: `names/<name>` holds the mailbox
//! id and the actor type of the actor registered under `<name>`. Creating the file with
//! `O_EXCL` makes registration atomic across processes; the reaper removes a name when
//! its actor is gone for good, so a name survives restarts (the address is the mailbox).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

fn names_dir(dir: &Path) -> PathBuf {
    dir.join("names")
}

/// Checks that `name` is usable as a registered name: 1 to 100 characters from
/// `[A-Za-z0-9_.:-]`, not starting with a dot.
pub fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

/// Registers `name` for mailbox `id` of actor type `actor`. Fails with `AlreadyExists`
/// if the name is bound to an actor that is not gone.
pub fn register(
    dir: &Path,
    name: &str,
    id: u64,
    actor: &str,
    gone: impl Fn(u64) -> bool,
) -> io::Result<()> {
    let names = names_dir(dir);
    std::fs::create_dir_all(&names)?;
    let path = names.join(name);
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => return f.write_all(format!("{id:016x} {actor}").as_bytes()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match lookup(dir, name) {
                // A stale binding (its actor is gone): take the name over.
                Some((old, _)) if gone(old) => {
                    let _ = std::fs::remove_file(&path);
                }
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from(io::ErrorKind::AlreadyExists))
}

/// The mailbox id and actor type registered under `name`.
pub fn lookup(dir: &Path, name: &str) -> Option<(u64, String)> {
    let text = std::fs::read_to_string(names_dir(dir).join(name)).ok()?;
    let (id, actor) = text.split_once(' ')?;
    Some((u64::from_str_radix(id, 16).ok()?, actor.to_string()))
}

/// Removes `name` if it is bound to `id`.
pub fn unregister(dir: &Path, name: &str, id: u64) -> bool {
    if lookup(dir, name).is_some_and(|(bound, _)| bound == id) {
        return std::fs::remove_file(names_dir(dir).join(name)).is_ok();
    }
    false
}

/// Removes every name bound to `id` (its actor is gone for good).
pub fn release_names_of(dir: &Path, id: u64) {
    let Ok(entries) = std::fs::read_dir(names_dir(dir)) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if let Some(name) = name.to_str() {
            if lookup(dir, name).is_some_and(|(bound, _)| bound == id) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
