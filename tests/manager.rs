//! `procession::manager::Manager` and its proxies, as the module docs state them:
//! `SharedMap` get/insert/remove/len/contains_key/update/snapshot, `SharedList`
//! push/pop/get/set (out of range is an error)/len/snapshot, `Namespace` attributes of
//! any serializable type; proxies handed to actors work in those actors' processes
//! (Python's classic example, with 10 processes); concurrent updates from several actor
//! processes are not lost (each operation is atomic); after `shutdown`, every operation
//! fails with `ActorDied`.
//!
//! Every manager is shut down, and every actor killed and joined, when its test ends,
//! even when an assertion fails.

use std::collections::HashMap;
use std::ops::Deref;
use std::time::Duration;

use procession::__private::Dispatch;
use procession::manager::{Manager, SharedList, SharedMap};
use procession::prelude::*;
use procession::Error;

/// Long enough never to be hit in a passing run on a loaded 2-core machine.
const LONG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Test plumbing.

/// A manager that is shut down when the test ends, however it ends.
struct Managed(Manager);

impl Managed {
    fn start() -> Managed {
        Managed(Manager::start().unwrap())
    }
}

impl Deref for Managed {
    type Target = Manager;
    fn deref(&self) -> &Manager {
        &self.0
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        let _ = self.0.shutdown();
    }
}

/// An actor that is killed and joined when the test ends, however it ends.
struct Reaped<A: Dispatch>(ActorRef<A>);

impl<A: Dispatch> Deref for Reaped<A> {
    type Target = ActorRef<A>;
    fn deref(&self) -> &ActorRef<A> {
        &self.0
    }
}

impl<A: Dispatch> Drop for Reaped<A> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.join_timeout(LONG);
    }
}

/// An actor holding proxies to a map and a list of a manager.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Contribute, Hammer))]
struct Contributor {
    map: SharedMap<u32, String>,
    list: SharedList<u32>,
}

/// Inserts `i -> "from <pid>"` into the map and pushes `i` onto the list; replies with
/// the actor's pid.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<u32, String>)]
struct Contribute(u32);

/// Pushes `from..from + count` onto the list one by one, inserts each into the map one
/// by one, and inserts them again with one `update`.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(), String>)]
struct Hammer {
    from: u32,
    count: u32,
}

impl Handler<Contribute> for Contributor {
    fn handle(&mut self, Contribute(i): Contribute, cx: &mut Context<Self>) -> Result<u32, String> {
        let pid = cx.pid();
        self.map
            .insert(i, format!("from {pid}"))
            .map_err(|e| e.to_string())?;
        self.list.push(i).map_err(|e| e.to_string())?;
        Ok(pid)
    }
}

impl Handler<Hammer> for Contributor {
    fn handle(
        &mut self,
        Hammer { from, count }: Hammer,
        cx: &mut Context<Self>,
    ) -> Result<(), String> {
        let range = from..from + count;
        for k in range.clone() {
            self.list.push(k).map_err(|e| e.to_string())?;
            self.map
                .insert(k, format!("one by {}", cx.pid()))
                .map_err(|e| e.to_string())?;
        }
        self.map
            .update(range.map(|k| (k, format!("update by {}", cx.pid()))))
            .map_err(|e| e.to_string())
    }
}

fn spawn_contributor(map: &SharedMap<u32, String>, list: &SharedList<u32>) -> Reaped<Contributor> {
    Reaped(
        procession::spawn(Contributor {
            map: map.clone(),
            list: list.clone(),
        })
        .unwrap(),
    )
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// The server.

#[test]
fn manager_server_runs_in_its_own_process() {
    let m = Managed::start();
    assert_ne!(m.pid(), 0);
    assert_ne!(m.pid(), std::process::id());
}

// ---------------------------------------------------------------------------------------
// SharedMap.

#[test]
fn dict_get_returns_what_insert_stored_and_insert_returns_the_previous_value() {
    let m = Managed::start();
    let d = m.dict::<String, u32>().unwrap();
    assert_eq!(d.insert("a".into(), 1).unwrap(), None);
    assert_eq!(d.get(&"a".to_string()).unwrap(), Some(1));
    assert_eq!(d.insert("a".into(), 2).unwrap(), Some(1));
    assert_eq!(d.get(&"a".to_string()).unwrap(), Some(2));
}

#[test]
fn dict_get_of_a_missing_key_is_none() {
    let m = Managed::start();
    let d = m.dict::<u64, String>().unwrap();
    assert_eq!(d.get(&7).unwrap(), None);
}

#[test]
fn dict_remove_returns_the_value_and_the_key_is_gone() {
    let m = Managed::start();
    let d = m.dict::<u64, String>().unwrap();
    d.insert(7, "seven".into()).unwrap();
    assert_eq!(d.remove(&7).unwrap(), Some("seven".to_string()));
    assert_eq!(d.get(&7).unwrap(), None);
    assert_eq!(d.remove(&7).unwrap(), None);
}

#[test]
fn dict_len_and_contains_key_follow_inserts_and_removes() {
    let m = Managed::start();
    let d = m.dict::<u64, u64>().unwrap();
    assert_eq!(d.len().unwrap(), 0);
    assert!(d.is_empty().unwrap());
    for k in 0..5 {
        d.insert(k, k * 10).unwrap();
    }
    d.insert(3, 33).unwrap(); // an overwrite adds no entry
    assert_eq!(d.len().unwrap(), 5);
    assert!(!d.is_empty().unwrap());
    assert!(d.contains_key(&3).unwrap());
    assert!(!d.contains_key(&5).unwrap());
    d.remove(&3).unwrap();
    assert_eq!(d.len().unwrap(), 4);
    assert!(!d.contains_key(&3).unwrap());
}

#[test]
fn dict_update_inserts_every_entry_and_overwrites_existing_ones() {
    let m = Managed::start();
    let d = m.dict::<String, i32>().unwrap();
    d.insert("keep".into(), 1).unwrap();
    d.insert("over".into(), 2).unwrap();
    d.update([("over".to_string(), 20), ("new".to_string(), 30)])
        .unwrap();
    assert_eq!(d.len().unwrap(), 3);
    assert_eq!(d.get(&"keep".to_string()).unwrap(), Some(1));
    assert_eq!(d.get(&"over".to_string()).unwrap(), Some(20));
    assert_eq!(d.get(&"new".to_string()).unwrap(), Some(30));
}

#[test]
fn dict_snapshot_holds_every_entry() {
    let m = Managed::start();
    let d = m.dict::<u32, Vec<String>>().unwrap();
    let entries: Vec<(u32, Vec<String>)> = (0..20)
        .map(|k| (k, (0..k % 3).map(|j| format!("{k}.{j}")).collect()))
        .collect();
    d.update(entries.clone()).unwrap();
    assert_eq!(sorted(d.snapshot().unwrap()), entries);
}

#[test]
fn two_dicts_of_one_manager_are_independent() {
    let m = Managed::start();
    let a = m.dict::<u32, u32>().unwrap();
    let b = m.dict::<u32, u32>().unwrap();
    a.insert(1, 10).unwrap();
    b.insert(1, 20).unwrap();
    b.insert(2, 30).unwrap();
    assert_eq!(a.get(&1).unwrap(), Some(10));
    assert_eq!(b.get(&1).unwrap(), Some(20));
    assert_eq!(a.len().unwrap(), 1);
    assert_eq!(b.len().unwrap(), 2);
}

#[test]
fn a_cloned_dict_proxy_sees_the_same_map() {
    let m = Managed::start();
    let a = m.dict::<u32, u32>().unwrap();
    let b = a.clone();
    a.insert(1, 10).unwrap();
    assert_eq!(b.get(&1).unwrap(), Some(10));
}

// ---------------------------------------------------------------------------------------
// SharedList.

#[test]
fn list_get_and_len_follow_pushes() {
    let m = Managed::start();
    let l = m.list::<String>().unwrap();
    assert_eq!(l.len().unwrap(), 0);
    assert!(l.is_empty().unwrap());
    for w in ["a", "b", "c"] {
        l.push(w.to_string()).unwrap();
    }
    assert_eq!(l.len().unwrap(), 3);
    assert!(!l.is_empty().unwrap());
    assert_eq!(l.get(0).unwrap(), Some("a".to_string()));
    assert_eq!(l.get(2).unwrap(), Some("c".to_string()));
}

#[test]
fn list_get_out_of_range_is_none() {
    let m = Managed::start();
    let l = m.list::<u8>().unwrap();
    l.push(1).unwrap();
    assert_eq!(l.get(1).unwrap(), None);
    assert_eq!(l.get(usize::MAX).unwrap(), None);
}

#[test]
fn list_pop_returns_the_last_value_then_none_when_empty() {
    let m = Managed::start();
    let l = m.list::<i64>().unwrap();
    l.push(1).unwrap();
    l.push(2).unwrap();
    assert_eq!(l.pop().unwrap(), Some(2));
    assert_eq!(l.pop().unwrap(), Some(1));
    assert_eq!(l.pop().unwrap(), None);
    assert_eq!(l.len().unwrap(), 0);
}

#[test]
fn list_set_replaces_the_value_at_an_index() {
    let m = Managed::start();
    let l = m.list::<i64>().unwrap();
    for v in [1, 2, 3] {
        l.push(v).unwrap();
    }
    l.set(1, 20).unwrap();
    assert_eq!(l.snapshot().unwrap(), [1, 20, 3]);
}

#[test]
fn list_set_out_of_range_is_an_error_and_changes_nothing() {
    let m = Managed::start();
    let l = m.list::<i64>().unwrap();
    l.push(1).unwrap();
    let err = l.set(1, 5).unwrap_err();
    assert!(matches!(err, Error::Runtime(_)), "{err:?}");
    assert!(err.to_string().contains("out of range"), "{err}");
    assert_eq!(l.snapshot().unwrap(), [1]);
}

#[test]
fn list_snapshot_holds_every_value_in_order() {
    let m = Managed::start();
    let l = m.list::<(u32, String)>().unwrap();
    let values: Vec<(u32, String)> = (0..50).map(|i| (i, format!("v{i}"))).collect();
    for v in &values {
        l.push(v.clone()).unwrap();
    }
    assert_eq!(l.snapshot().unwrap(), values);
}

// ---------------------------------------------------------------------------------------
// Namespace.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: f64,
    y: f64,
}

#[test]
fn namespace_attributes_of_different_types_read_back() {
    let m = Managed::start();
    let ns = m.namespace().unwrap();
    ns.set("count", &42u32).unwrap();
    ns.set("name", &"procession".to_string()).unwrap();
    ns.set("weights", &vec![0.5f64, 1.5]).unwrap();
    ns.set("origin", &Point { x: 1.0, y: -2.0 }).unwrap();
    ns.set("nothing", &None::<u8>).unwrap();
    assert_eq!(ns.get::<u32>("count").unwrap(), Some(42));
    assert_eq!(
        ns.get::<String>("name").unwrap(),
        Some("procession".to_string())
    );
    assert_eq!(ns.get::<Vec<f64>>("weights").unwrap(), Some(vec![0.5, 1.5]));
    assert_eq!(
        ns.get::<Point>("origin").unwrap(),
        Some(Point { x: 1.0, y: -2.0 })
    );
    assert_eq!(ns.get::<Option<u8>>("nothing").unwrap(), Some(None));
}

#[test]
fn namespace_attribute_can_be_rebound_to_another_type() {
    let m = Managed::start();
    let ns = m.namespace().unwrap();
    ns.set("x", &1u32).unwrap();
    ns.set("x", &"one".to_string()).unwrap();
    assert_eq!(ns.get::<String>("x").unwrap(), Some("one".to_string()));
}

#[test]
fn namespace_missing_attribute_is_none() {
    let m = Managed::start();
    let ns = m.namespace().unwrap();
    assert_eq!(ns.get::<u32>("absent").unwrap(), None);
}

#[test]
fn namespace_attribute_read_as_the_wrong_type_is_an_error() {
    let m = Managed::start();
    let ns = m.namespace().unwrap();
    ns.set("name", &"procession".to_string()).unwrap();
    let err = ns.get::<u32>("name").unwrap_err();
    assert!(matches!(err, Error::Wire(_)), "{err:?}");
}

#[test]
fn two_namespaces_of_one_manager_are_independent() {
    let m = Managed::start();
    let a = m.namespace().unwrap();
    let b = m.namespace().unwrap();
    a.set("x", &1u32).unwrap();
    assert_eq!(b.get::<u32>("x").unwrap(), None);
}

// ---------------------------------------------------------------------------------------
// Proxies in other processes.

/// Python's classic example: processes update a managed dict and list.
#[test]
fn proxies_passed_to_actors_work_in_their_processes() {
    let m = Managed::start();
    let map = m.dict::<u32, String>().unwrap();
    let list = m.list::<u32>().unwrap();
    for v in 100..105 {
        list.push(v).unwrap();
    }
    let actors: Vec<Reaped<Contributor>> =
        (0..10).map(|_| spawn_contributor(&map, &list)).collect();
    let mut pids = HashMap::new();
    for (i, actor) in actors.iter().enumerate() {
        let pid = actor
            .ask_timeout(Contribute(i as u32), LONG)
            .unwrap()
            .unwrap();
        assert_eq!(
            pid,
            actor.pid(),
            "the proxy was used in the actor's process"
        );
        assert_ne!(pid, std::process::id());
        pids.insert(i as u32, pid);
    }

    assert_eq!(list.len().unwrap(), 15);
    let items = list.snapshot().unwrap();
    assert_eq!(items[..5], [100, 101, 102, 103, 104]);
    assert_eq!(sorted(items[5..].to_vec()), (0..10).collect::<Vec<u32>>());
    assert_eq!(map.len().unwrap(), 10);
    for (i, pid) in pids {
        assert_eq!(map.get(&i).unwrap(), Some(format!("from {pid}")));
    }
    for actor in &actors {
        actor.stop().unwrap();
        assert_eq!(actor.join_timeout(LONG).unwrap(), Exit::Stopped);
    }
}

#[test]
fn concurrent_updates_from_several_actor_processes_are_not_lost() {
    const ACTORS: u32 = 4;
    const EACH: u32 = 250;
    let m = Managed::start();
    let map = m.dict::<u32, String>().unwrap();
    let list = m.list::<u32>().unwrap();
    let actors: Vec<Reaped<Contributor>> = (0..ACTORS)
        .map(|_| spawn_contributor(&map, &list))
        .collect();

    std::thread::scope(|s| {
        let running: Vec<_> = actors
            .iter()
            .enumerate()
            .map(|(i, actor)| {
                let from = i as u32 * EACH;
                s.spawn(move || actor.ask_timeout(Hammer { from, count: EACH }, LONG))
            })
            .collect();
        for r in running {
            r.join().unwrap().unwrap().unwrap();
        }
    });

    let total = ACTORS * EACH;
    assert_eq!(list.len().unwrap(), total as usize);
    assert_eq!(
        sorted(list.snapshot().unwrap()),
        (0..total).collect::<Vec<u32>>(),
        "every push is in the list exactly once"
    );
    let entries = sorted(map.snapshot().unwrap());
    assert_eq!(entries.len(), total as usize);
    let pid_of: Vec<u32> = actors.iter().map(|a| a.pid()).collect();
    for (k, v) in entries {
        let pid = pid_of[(k / EACH) as usize];
        assert_eq!(v, format!("update by {pid}"), "key {k}");
    }
    for actor in &actors {
        actor.stop().unwrap();
        assert_eq!(actor.join_timeout(LONG).unwrap(), Exit::Stopped);
    }
}

// ---------------------------------------------------------------------------------------
// Shutdown.

#[test]
fn shutdown_stops_the_server() {
    let m = Managed::start();
    assert_eq!(m.shutdown().unwrap(), Exit::Stopped);
}

#[test]
fn operations_after_shutdown_fail_with_actor_died() {
    let m = Managed::start();
    let map = m.dict::<u32, u32>().unwrap();
    let list = m.list::<u32>().unwrap();
    let ns = m.namespace().unwrap();
    map.insert(1, 1).unwrap();
    list.push(1).unwrap();
    ns.set("x", &1u32).unwrap();
    m.shutdown().unwrap();

    let errors: Vec<(&str, Error)> = vec![
        ("map.get", map.get(&1).unwrap_err()),
        ("map.insert", map.insert(2, 2).unwrap_err()),
        ("map.len", map.len().unwrap_err()),
        ("map.snapshot", map.snapshot().unwrap_err()),
        ("list.push", list.push(2).unwrap_err()),
        ("list.pop", list.pop().unwrap_err()),
        ("list.set", list.set(0, 3).unwrap_err()),
        ("ns.get", ns.get::<u32>("x").unwrap_err()),
        ("ns.set", ns.set("x", &2u32).unwrap_err()),
        ("manager.dict", m.dict::<u32, u32>().unwrap_err()),
    ];
    for (what, err) in errors {
        assert!(err.is_actor_died(), "{what}: {err:?}");
    }
}

#[test]
fn a_proxy_in_an_actor_reports_an_error_after_shutdown() {
    let m = Managed::start();
    let map = m.dict::<u32, String>().unwrap();
    let list = m.list::<u32>().unwrap();
    let actor = spawn_contributor(&map, &list);
    m.shutdown().unwrap();
    let err = actor.ask_timeout(Contribute(1), LONG).unwrap().unwrap_err();
    assert!(err.contains("died"), "{err}");
    actor.stop().unwrap();
    assert_eq!(actor.join_timeout(LONG).unwrap(), Exit::Stopped);
}
