//! User types hosted by a [`Manager`](super::Manager): Python's `BaseManager.register`.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::server::{ManagerServer, ObjCall, ObjGet};
use super::{dec, enc};
use crate::error::{Error, Result};
use crate::wire::{decode_body, encode_body};
use crate::ActorRef;

/// A type whose values a [`Manager`](super::Manager) can hold and that proxies call, as a
/// class registered with Python's `BaseManager.register`. The value lives in the
/// manager's process; [`Proxy::call`] sends a [`Call`](Managed::Call) there and gets the
/// [`Reply`](Managed::Reply) back. Calls are applied one at a time, so each is atomic.
///
/// Register the type with [`register!`](crate::manager::register) so that the manager's
/// process can make and call it.
///
/// ```
/// use procession::manager::{register, Managed, Manager};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Counter { n: i64 }
///
/// #[derive(Serialize, Deserialize)]
/// enum Op { Add(i64), Get }
///
/// impl Managed for Counter {
///     type Call = Op;
///     type Reply = i64;
///     fn call(&mut self, op: Op) -> i64 {
///         if let Op::Add(k) = op { self.n += k; }
///         self.n
///     }
/// }
/// register!(Counter);
///
/// let m = Manager::start()?;
/// let counter = m.create(Counter { n: 1 })?;
/// assert_eq!(counter.call(Op::Add(41))?, 42);
/// assert_eq!(counter.value()?.n, 42);
/// m.shutdown()?;
/// # Ok::<(), procession::Error>(())
/// ```
pub trait Managed: Serialize + DeserializeOwned + Send + 'static {
    /// What a proxy asks of the value (an enum of operations, usually).
    type Call: Serialize + DeserializeOwned;
    /// What a call answers. A call that can fail says so here (a `Result`): a panic in
    /// [`call`](Managed::call) crashes the manager's process, as any actor's panic does.
    type Reply: Serialize + DeserializeOwned;

    /// Applies one call to the value, in the manager's process.
    fn call(&mut self, call: Self::Call) -> Self::Reply;
}

/// Implemented by [`register!`](crate::manager::register): the stable name under which the
/// manager's process finds the type.
#[doc(hidden)]
pub trait Registered: Managed {
    /// The type's path, as `module_path!()::Type`.
    const NAME: &'static str;
}

/// A managed value on the server, behind its type.
pub(crate) trait ManagedDyn: Send {
    fn call(&mut self, call: &[u8]) -> std::result::Result<Vec<u8>, String>;
    fn value(&self) -> std::result::Result<Vec<u8>, String>;
}

struct Hosted<T>(T);

impl<T: Managed> ManagedDyn for Hosted<T> {
    fn call(&mut self, call: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let call: T::Call =
            decode_body(call, std::any::type_name::<T::Call>()).map_err(|e| e.to_string())?;
        let reply = self.0.call(call);
        let mut out = Vec::new();
        encode_body(&reply, &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn value(&self) -> std::result::Result<Vec<u8>, String> {
        let mut out = Vec::new();
        encode_body(&self.0, &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// Makes a hosted value from its encoded form.
pub(crate) type Create = fn(&[u8]) -> std::result::Result<Box<dyn ManagedDyn>, String>;

/// One registered type: what [`register!`](crate::manager::register) puts in the binary.
#[doc(hidden)]
pub struct ManagedEntry {
    name: &'static str,
    pub(crate) create: Create,
}

impl ManagedEntry {
    /// The entry of `T`.
    pub const fn of<T: Registered>() -> ManagedEntry {
        ManagedEntry {
            name: T::NAME,
            create: create::<T>,
        }
    }
}

fn create<T: Managed>(value: &[u8]) -> std::result::Result<Box<dyn ManagedDyn>, String> {
    let value: T = decode_body(value, std::any::type_name::<T>()).map_err(|e| e.to_string())?;
    Ok(Box::new(Hosted(value)))
}

/// Every managed type linked into this binary.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static MANAGED: [ManagedEntry];

pub(crate) fn find_managed(name: &str) -> Option<&'static ManagedEntry> {
    MANAGED.iter().find(|e| e.name == name)
}

/// Registers a [`Managed`] type, so that a [`Manager`](super::Manager) can hold values of
/// it ([`Manager::create`](super::Manager::create)). Write it once, next to the type,
/// at module level. See [`Managed`] for an example.
#[macro_export]
#[doc(hidden)]
macro_rules! __procession_managed {
    ($t:ty) => {
        impl $crate::manager::Registered for $t {
            const NAME: &'static str =
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!($t));
        }
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::manager::MANAGED)]
            #[linkme(crate = $crate::__private::linkme)]
            static ENTRY: $crate::manager::ManagedEntry = $crate::manager::ManagedEntry::of::<$t>();
        };
    };
}

#[doc(inline)]
pub use crate::__procession_managed as register;

/// A proxy to a value of a [`Managed`] type held by a [`Manager`](super::Manager). It is
/// `Clone + Serialize + Deserialize`: give it to other actors.
#[derive(Serialize, Deserialize)]
pub struct Proxy<T> {
    pub(crate) server: ActorRef<ManagerServer>,
    pub(crate) id: u64,
    #[serde(skip)]
    pub(crate) _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Proxy<T> {
    fn clone(&self) -> Self {
        Proxy {
            server: self.server.clone(),
            id: self.id,
            _t: PhantomData,
        }
    }
}

impl<T: Managed> Proxy<T> {
    /// Applies `call` to the value in the manager's process and returns its reply.
    ///
    /// # Errors
    /// As every manager call (see [`Manager`](crate::manager::Manager)): the server is
    /// gone, does not answer in time, or cannot decode the call.
    pub fn call(&self, call: T::Call) -> Result<T::Reply> {
        let reply = self
            .server
            .ask(ObjCall(self.id, enc(&call)?))?
            .map_err(Error::Runtime)?;
        dec(&reply)
    }

    /// A copy of the value as it is now (Python's `_getvalue()`).
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub fn value(&self) -> Result<T> {
        let v = self.server.ask(ObjGet(self.id))?.map_err(Error::Runtime)?;
        dec(&v)
    }
}

impl<T> std::fmt::Debug for Proxy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Proxy<{}>(#{} on pid {})",
            std::any::type_name::<T>(),
            self.id,
            self.server.pid()
        )
    }
}
