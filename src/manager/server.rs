//! The manager's server actor and its requests.

use std::collections::HashMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::object::{find_managed, ManagedDyn};
use crate::{ByteBuf, Context, Handler};

/// A map in insertion order, as a Python dict: a key removed and inserted again goes to
/// the end; replacing a value keeps its place.
type Map = IndexMap<ByteBuf, ByteBuf>;

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
request!(/** Empty a map or a list. */ Clear(u64) -> ());
request!(/** Remove and return the last inserted entry. */ MapPopItem(u64) -> Option<(ByteBuf, ByteBuf)>);
request!(/** The value under the key, inserting the default first if absent. */ MapSetDefault(u64, ByteBuf, ByteBuf) -> ByteBuf);
request!(/** Append many. */ ListExtend(u64, Vec<ByteBuf>) -> ());
request!(/** Insert before an index (clamped to the length, as Python's). */ ListInsert(u64, usize, ByteBuf) -> ());
request!(/** Remove and return the item at an index. */ ListRemoveAt(u64, usize) -> Result<ByteBuf, String>);
request!(/** Items in `start..end`, clamped to the length. */ ListSlice(u64, usize, usize) -> Vec<ByteBuf>);
request!(/** Replace the items in `start..end` (clamped) with others. */ ListSplice(u64, usize, usize, Vec<ByteBuf>) -> ());
request!(/** Make an object of a registered type from its encoded value. */ ObjNew(String, ByteBuf) -> Result<u64, String>);
request!(/** Call an object: an encoded call in, an encoded reply out. */ ObjCall(u64, ByteBuf) -> Result<ByteBuf, String>);
request!(/** A copy of an object's value, encoded. */ ObjGet(u64) -> Result<ByteBuf, String>);

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
        NsSet,
        Clear,
        MapPopItem,
        MapSetDefault,
        ListExtend,
        ListInsert,
        ListRemoveAt,
        ListSlice,
        ListSplice,
        ObjNew,
        ObjCall,
        ObjGet
    ),
    name = "procession::manager::ManagerServer"
)]
pub struct ManagerServer {
    #[serde(skip)]
    next: u64,
    #[serde(skip)]
    maps: HashMap<u64, Map>,
    #[serde(skip)]
    lists: HashMap<u64, Vec<ByteBuf>>,
    #[serde(skip)]
    objects: HashMap<u64, Box<dyn ManagedDyn>>,
}

impl Handler<New> for ManagerServer {
    fn handle(&mut self, New(kind): New, _cx: &mut Context<Self>) -> u64 {
        self.next += 1;
        match kind {
            Kind::Map | Kind::Namespace => {
                self.maps.insert(self.next, Map::new());
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
        self.maps.get_mut(&id)?.shift_remove(&k)
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

impl Handler<Clear> for ManagerServer {
    fn handle(&mut self, Clear(id): Clear, _cx: &mut Context<Self>) {
        if let Some(m) = self.maps.get_mut(&id) {
            m.clear();
        }
        if let Some(l) = self.lists.get_mut(&id) {
            l.clear();
        }
    }
}

impl Handler<MapPopItem> for ManagerServer {
    fn handle(
        &mut self,
        MapPopItem(id): MapPopItem,
        _cx: &mut Context<Self>,
    ) -> Option<(ByteBuf, ByteBuf)> {
        self.maps.get_mut(&id)?.pop()
    }
}

impl Handler<MapSetDefault> for ManagerServer {
    fn handle(
        &mut self,
        MapSetDefault(id, k, v): MapSetDefault,
        _cx: &mut Context<Self>,
    ) -> ByteBuf {
        self.maps
            .entry(id)
            .or_default()
            .entry(k)
            .or_insert(v)
            .clone()
    }
}

impl Handler<ListExtend> for ManagerServer {
    fn handle(&mut self, ListExtend(id, items): ListExtend, _cx: &mut Context<Self>) {
        self.lists.entry(id).or_default().extend(items);
    }
}

impl Handler<ListInsert> for ManagerServer {
    fn handle(&mut self, ListInsert(id, i, v): ListInsert, _cx: &mut Context<Self>) {
        let list = self.lists.entry(id).or_default();
        list.insert(i.min(list.len()), v);
    }
}

impl Handler<ListRemoveAt> for ManagerServer {
    fn handle(
        &mut self,
        ListRemoveAt(id, i): ListRemoveAt,
        _cx: &mut Context<Self>,
    ) -> Result<ByteBuf, String> {
        let list = self.lists.get_mut(&id).ok_or("no such list")?;
        if i >= list.len() {
            return Err(format!(
                "index {i} out of range for a list of {}",
                list.len()
            ));
        }
        Ok(list.remove(i))
    }
}

/// `start..end` clamped to `0..len`, as a Python slice with non-negative bounds.
fn clamp(start: usize, end: usize, len: usize) -> std::ops::Range<usize> {
    let end = end.min(len);
    start.min(end)..end
}

impl Handler<ListSlice> for ManagerServer {
    fn handle(
        &mut self,
        ListSlice(id, start, end): ListSlice,
        _cx: &mut Context<Self>,
    ) -> Vec<ByteBuf> {
        self.lists
            .get(&id)
            .map(|l| l[clamp(start, end, l.len())].to_vec())
            .unwrap_or_default()
    }
}

impl Handler<ListSplice> for ManagerServer {
    fn handle(&mut self, ListSplice(id, start, end, items): ListSplice, _cx: &mut Context<Self>) {
        let list = self.lists.entry(id).or_default();
        let range = clamp(start, end, list.len());
        list.splice(range, items);
    }
}

impl Handler<ObjNew> for ManagerServer {
    fn handle(
        &mut self,
        ObjNew(name, value): ObjNew,
        _cx: &mut Context<Self>,
    ) -> Result<u64, String> {
        let entry = find_managed(&name).ok_or_else(|| {
            format!("{name} is not a managed type in this binary (procession::manager::register!)")
        })?;
        let object = (entry.create)(&value)?;
        self.next += 1;
        self.objects.insert(self.next, object);
        Ok(self.next)
    }
}

impl Handler<ObjCall> for ManagerServer {
    fn handle(
        &mut self,
        ObjCall(id, call): ObjCall,
        _cx: &mut Context<Self>,
    ) -> Result<ByteBuf, String> {
        let object = self.objects.get_mut(&id).ok_or("no such object")?;
        // A panic here crashes the server, as any actor's does: a type reports failures
        // in its `Reply` (Python's proxies re-raise the exception instead).
        object.call(&call).map(ByteBuf::from)
    }
}

impl Handler<ObjGet> for ManagerServer {
    fn handle(&mut self, ObjGet(id): ObjGet, _cx: &mut Context<Self>) -> Result<ByteBuf, String> {
        let object = self.objects.get(&id).ok_or("no such object")?;
        object.value().map(ByteBuf::from)
    }
}
