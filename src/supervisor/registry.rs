//! Named actors: [`register`], [`whereis`], [`unregister`], within one runtime.
//!
//! A name is bound to an actor's **address** (its mailbox), so it stays bound across
//! restarts by a supervisor, and it is released when the actor is gone for good. Any
//! process of the runtime can look a name up.

use crate::actor::{ActorRef, Dispatch};
use crate::error::{Error, Result};
use crate::mailbox::Mailbox;
use crate::process::{names, runtime};

/// Binds `name` to `actor` in this runtime. Names are 1 to 100 characters from
/// `[A-Za-z0-9_.:-]`. Fails with [`Error::NameTaken`] if another live actor holds it.
///
/// ```
/// use procession::prelude::*;
/// # #[derive(Serialize, Deserialize, Message)] #[message(reply = u32)] struct Pid;
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Pid))] struct Svc;
/// # impl Handler<Pid> for Svc { fn handle(&mut self, _: Pid, cx: &mut Context<Self>) -> u32 { cx.pid() } }
/// let svc: ActorRef<Svc> = procession::spawn(Svc)?;
/// procession::register("svc", &svc)?;
/// let found: ActorRef<Svc> = procession::whereis("svc").expect("registered");
/// assert_eq!(found.ask(Pid)?, svc.pid());
/// svc.stop()?;
/// svc.join()?; // the name is released with the actor
/// assert!(procession::whereis::<Svc>("svc").is_none());
/// # Ok::<(), procession::Error>(())
/// ```
///
/// # Errors
/// [`Error::NameTaken`](crate::Error::NameTaken) if a live actor holds the name,
/// [`Error::BadName`](crate::Error::BadName) for an invalid one,
/// [`Error::Io`](crate::Error::Io) if the registry file cannot be written.
pub fn register<A: Dispatch>(name: &str, actor: &ActorRef<A>) -> Result<()> {
    if !names::valid(name) {
        return Err(Error::BadName(name.to_string()));
    }
    let rt = runtime::get()?;
    let dir = rt.dir().to_path_buf();
    let gone = |id: u64| Mailbox::open(&dir, id).map_or(true, |mb| mb.is_gone());
    names::register(rt.dir(), name, actor.id(), A::NAME, gone).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::NameTaken(name.to_string())
        } else {
            Error::io(format!("cannot register the name {name:?}"), e)
        }
    })
}

/// The actor registered under `name`, if there is one and it is an `A`.
pub fn whereis<A: Dispatch>(name: &str) -> Option<ActorRef<A>> {
    let rt = runtime::get().ok()?;
    let (id, actor) = names::lookup(rt.dir(), name)?;
    if actor != A::NAME {
        tracing::debug!(name, registered = %actor, wanted = A::NAME, "name bound to another actor type");
        return None;
    }
    let mb = Mailbox::open(rt.dir(), id).ok()?;
    (!mb.is_gone()).then(|| ActorRef::from_mailbox(mb))
}

/// Removes the binding of `name` to `actor`; `true` if there was one.
pub fn unregister<A: Dispatch>(name: &str, actor: &ActorRef<A>) -> bool {
    runtime::get().is_ok_and(|rt| names::unregister(rt.dir(), name, actor.id()))
}
