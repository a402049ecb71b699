//! [`Context`]: what a running actor can do to itself and its surroundings.

use super::actor_ref::ActorRef;
use super::traits::{Actor, Dispatch};
use crate::error::Result;
use crate::process::SpawnOptions;

/// Handed to every hook and handler: the actor's own ref, its pid, a way to stop, and a way
/// to spawn more actors.
///
/// ```
/// use procession::prelude::*;
///
/// #[derive(Serialize, Deserialize, Message)]
/// struct Quit;
///
/// #[derive(Serialize, Deserialize, Actor)]
/// #[actor(handles(Quit))]
/// struct Quitter;
///
/// impl Handler<Quit> for Quitter {
///     fn handle(&mut self, _: Quit, cx: &mut Context<Self>) {
///         cx.stop(); // join() then reports Exit::Normal
///     }
/// }
/// ```
pub struct Context<A: Actor> {
    me: ActorRef<A>,
    stop: bool,
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(me: ActorRef<A>) -> Self {
        Context { me, stop: false }
    }

    /// A reference to this actor, to hand to others.
    pub fn myself(&self) -> ActorRef<A> {
        self.me.clone()
    }

    /// This actor's pid.
    pub fn pid(&self) -> u32 {
        std::process::id()
    }

    /// Stops the actor after the current handler returns; `stopping` runs, and the exit
    /// is [`Exit::Normal`](crate::Exit::Normal).
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Whether [`Context::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stop
    }

    /// Spawns another actor, in its own process, from inside this one.
    pub fn spawn<B: Dispatch>(&self, args: B::Args) -> Result<ActorRef<B>> {
        crate::spawn(args)
    }

    /// Spawns another actor with options (an actor process is single-threaded unless it
    /// starts threads, so [`StartMethod::Fork`](crate::StartMethod::Fork) works here).
    pub fn spawn_with<B: Dispatch>(
        &self,
        args: B::Args,
        opts: SpawnOptions,
    ) -> Result<ActorRef<B>> {
        crate::spawn_with(args, opts)
    }
}
