//! The manager's server actor and its requests.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{ByteBuf, Context, Handler};

/// What a [`New`] request makes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum Kind {
    Map,
    List,
    Namespace,
}

macro_rules! request {
    ($(#[$doc:meta])* $name:ident ( $($field:ty),* ) -> $reply:ty) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, Deserialize, crate::Message)]
        #[message(reply = $reply)]
        pub(crate) struct $name($(pub(crate) $field),*);
    };
}

request!(/** Make a collection. */ New(Kind) -> u64);
request!(/** Entries or items of a collection. */ Len(u64) -> usize);
request!(/** Map lookup. */ MapGet(u64, ByteBuf) -> Option<ByteBuf>);
request!(/** Map insert. */ MapInsert(u64, ByteBuf, ByteBuf) -> Option<ByteBuf>);
request!(/** Map remove. */ MapRemove(u64, ByteBuf) -> Option<ByteBuf>);
request!(/** Many inserts at once. */ MapUpdate(u64, Vec<(ByteBuf, ByteBuf)>) -> ());
request!(/** Every entry. */ MapSnapshot(u64) -> Vec<(ByteBuf, ByteBuf)>);
request!(/** List append. */ ListPush(u64, ByteBuf) -> ());
request!(/** List pop. */ ListPop(u64) -> Option<ByteBuf>);
request!(/** List index. */ ListGet(u64, usize) -> Option<ByteBuf>);
request!(/** List replace. */ ListSet(u64, usize, ByteBuf) -> Result<(), String>);
request!(/** Every item. */ ListSnapshot(u64) -> Vec<ByteBuf>);
request!(/** Namespace read. */ NsGet(u64, String) -> Option<ByteBuf>);
request!(/** Namespace write. */ NsSet(u64, String, ByteBuf) -> ());

/// The manager's server: it holds every collection, as CBOR bytes.
#[derive(Default, Serialize, Deserialize, crate::Actor)]
#[actor(
    handles(
        New,
        Len,
        MapGet,
        MapInsert,
        MapRemove,
        MapUpdate,
        MapSnapshot,
        ListPush,
        ListPop,
        ListGet,
        ListSet,
        ListSnapshot,
        NsGet,
        NsSet
    ),
    name = "procession::manager::ManagerServer"
)]
pub struct ManagerServer {
    #[serde(skip)]
    next: u64,
    #[serde(skip)]
    maps: HashMap<u64, HashMap<ByteBuf, ByteBuf>>,
    #[serde(skip)]
    lists: HashMap<u64, Vec<ByteBuf>>,
}

impl Handler<New> for ManagerServer {
    fn handle(&mut self, New(kind): New, _cx: &mut Context<Self>) -> u64 {
        self.next += 1;
        match kind {
            Kind::Map | Kind::Namespace => {
                self.maps.insert(self.next, HashMap::new());
            }
            Kind::List => {
                self.lists.insert(self.next, Vec::new());
            }
        }
        self.next
    }
}

impl Handler<Len> for ManagerServer {
    fn handle(&mut self, Len(id): Len, _cx: &mut Context<Self>) -> usize {
        self.maps
            .get(&id)
            .map(|m| m.len())
            .or_else(|| self.lists.get(&id).map(|l| l.len()))
            .unwrap_or(0)
    }
}

impl Handler<MapGet> for ManagerServer {
    fn handle(&mut self, MapGet(id, k): MapGet, _cx: &mut Context<Self>) -> Option<ByteBuf> {
        self.maps.get(&id)?.get(&k).cloned()
    }
}

impl Handler<MapInsert> for ManagerServer {
    fn handle(
        &mut self,
        MapInsert(id, k, v): MapInsert,
        _cx: &mut Context<Self>,
    ) -> Option<ByteBuf> {
        self.maps.entry(id).or_default().insert(k, v)
    }
}

impl Handler<MapRemove> for ManagerServer {
    fn handle(&mut self, MapRemove(id, k): MapRemove, _cx: &mut Context<Self>) -> Option<ByteBuf> {
        self.maps.get_mut(&id)?.remove(&k)
    }
}

impl Handler<MapUpdate> for ManagerServer {
    fn handle(&mut self, MapUpdate(id, entries): MapUpdate, _cx: &mut Context<Self>) {
        self.maps.entry(id).or_default().extend(entries);
    }
}

impl Handler<MapSnapshot> for ManagerServer {
    fn handle(
        &mut self,
        MapSnapshot(id): MapSnapshot,
        _cx: &mut Context<Self>,
    ) -> Vec<(ByteBuf, ByteBuf)> {
        self.maps
            .get(&id)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

impl Handler<ListPush> for ManagerServer {
    fn handle(&mut self, ListPush(id, v): ListPush, _cx: &mut Context<Self>) {
        self.lists.entry(id).or_default().push(v);
    }
}

impl Handler<ListPop> for ManagerServer {
    fn handle(&mut self, ListPop(id): ListPop, _cx: &mut Context<Self>) -> Option<ByteBuf> {
        self.lists.get_mut(&id)?.pop()
    }
}

impl Handler<ListGet> for ManagerServer {
    fn handle(&mut self, ListGet(id, i): ListGet, _cx: &mut Context<Self>) -> Option<ByteBuf> {
        self.lists.get(&id)?.get(i).cloned()
    }
}

impl Handler<ListSet> for ManagerServer {
    fn handle(
        &mut self,
        ListSet(id, i, v): ListSet,
        _cx: &mut Context<Self>,
    ) -> Result<(), String> {
        let list = self.lists.get_mut(&id).ok_or("no such list")?;
        let len = list.len();
        let slot = list
            .get_mut(i)
            .ok_or_else(|| format!("index {i} out of range for a list of {len}"))?;
        *slot = v;
        Ok(())
    }
}

impl Handler<ListSnapshot> for ManagerServer {
    fn handle(&mut self, ListSnapshot(id): ListSnapshot, _cx: &mut Context<Self>) -> Vec<ByteBuf> {
        self.lists.get(&id).cloned().unwrap_or_default()
    }
}

impl Handler<NsGet> for ManagerServer {
    fn handle(&mut self, NsGet(id, name): NsGet, _cx: &mut Context<Self>) -> Option<ByteBuf> {
        self.maps
            .get(&id)?
            .get(&ByteBuf::from(name.into_bytes()))
            .cloned()
    }
}

impl Handler<NsSet> for ManagerServer {
    fn handle(&mut self, NsSet(id, name, v): NsSet, _cx: &mut Context<Self>) {
        self.maps
            .entry(id)
            .or_default()
            .insert(ByteBuf::from(name.into_bytes()), v);
    }
}
