//! What watchers are told when an actor's process exits: [`Down`] for monitors,
//! [`Exited`] for linked actors that trap exits. Both arrive as ordinary messages, so an
//! actor that monitors lists `Down` in `#[actor(handles(...))]`.

use serde::{Deserialize, Serialize};

use super::exit::Exit;

/// The stable tag of [`Down`].
pub const DOWN_TAG: &str = "procession::Down";
/// The stable tag of [`Exited`].
pub const EXITED_TAG: &str = "procession::Exited";

/// A monitored actor's process exited (for any reason). Sent once per monitor.
///
/// ```
/// # use procession::{Down, Exit};
/// let d = Down { id: 7, actor: "m::Worker".into(), pid: 42, exit: Exit::Signaled(9) };
/// assert!(!d.exit.is_clean());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Down {
    /// The exited actor's address ([`ActorRef::id`](crate::ActorRef::id)).
    pub id: u64,
    /// Its actor type's stable name.
    pub actor: String,
    /// The pid of the incarnation that exited.
    pub pid: u32,
    /// How it exited.
    pub exit: Exit,
}

/// A linked actor exited — for any reason, normal included, as in OTP — and the receiver
/// traps exits ([`Context::trap_exit`](crate::Context::trap_exit)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exited {
    /// The exited actor's address.
    pub id: u64,
    /// Its actor type's stable name.
    pub actor: String,
    /// The pid that exited.
    pub pid: u32,
    /// How it exited.
    pub exit: Exit,
}
