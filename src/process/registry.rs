//! The link-time registry of actor types, by stable name. `#[derive(Actor)]` adds an entry;
//! a child process looks its actor up here, never by function-pointer arithmetic.

use linkme::distributed_slice;

use super::bootstrap::ChildBoot;

/// One registered actor type.
#[doc(hidden)]
pub struct ActorEntry {
    /// The stable name (`Dispatch::NAME`).
    pub name: &'static str,
    /// The Rust path of the type, for errors.
    pub type_name: &'static str,
    /// Runs the actor in the current (child) process; never returns.
    pub run: fn(ChildBoot) -> !,
}

/// Every actor type linked into this binary.
#[doc(hidden)]
#[distributed_slice]
pub static ACTORS: [ActorEntry];

/// Finds the actor type registered under `name`.
pub fn find(name: &str) -> Option<&'static ActorEntry> {
    ACTORS.iter().find(|e| e.name == name)
}

/// Fails if two actor types linked into this binary share a stable name: a ref to one
/// would run the other's code. Checked before the first runtime starts.
pub fn check_unique() -> crate::Result<()> {
    for (i, a) in ACTORS.iter().enumerate() {
        if let Some(b) = ACTORS[i + 1..].iter().find(|b| b.name == a.name) {
            let (mut first, mut second) = (a.type_name, b.type_name);
            if first > second {
                std::mem::swap(&mut first, &mut second);
            }
            return Err(crate::Error::DuplicateActorName {
                name: a.name.to_string(),
                first: first.to_string(),
                second: second.to_string(),
            });
        }
    }
    Ok(())
}
