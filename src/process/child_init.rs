//! `#[procession::child_init]`: the user's own set-up (a tracing subscriber, a metrics
//! recorder, a seed) in every actor process, before the actor's `create`.

use linkme::distributed_slice;

/// Which actor this process is about to become, as a [`child_init`](crate::child_init)
/// function is told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildStart {
    /// The actor type's stable name.
    pub actor: &'static str,
    /// This process's pid.
    pub pid: u32,
    /// Which incarnation it is: 0 for the first start, then one more at each restart.
    pub incarnation: u32,
    /// Its child id under a supervisor (empty for an actor spawned directly).
    pub label: String,
    /// Its mailbox id.
    pub mailbox_id: u64,
}

/// Every `#[child_init]` function linked into this binary.
#[doc(hidden)]
#[distributed_slice]
pub static CHILD_INITS: [fn(&ChildStart)];

/// Runs every registered function, in link order. Whatever they install stays for the
/// life of the process.
pub(crate) fn run_all(start: &ChildStart) {
    for init in CHILD_INITS {
        init(start);
    }
}
