//! The link-time registry of actor types, by stable name. `#[derive(Actor)]` adds an entry;
//! a child process looks its actor up here, never by function-pointer arithmetic.

use linkme::distributed_slice;

use super::bootstrap::ChildBoot;

/// One registered actor type.
#[doc(hidden)]
pub struct ActorEntry {
    /// The stable name (`Dispatch::NAME`).
    pub name: &'static str,
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
