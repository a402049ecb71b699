//! Python's dict and list behaviour on manager proxies (issue 8, item 13): insertion
//! order, `items`/`keys`/`values`/iteration over a snapshot, `pop`/`popitem`/
//! `setdefault`/`clear`, list `extend`/`insert`/`pop(i)`/slices; and user types hosted by
//! the manager (`BaseManager.register`): `Managed`, `register!`, `Manager::create`,
//! `Proxy`, called from several processes.
//!
//! Every manager is shut down, and every actor stopped, when its test ends, even when an
//! assertion fails.

mod common;

use std::ops::Deref;

use common::LONG;
use procession::manager::{register, Managed, Manager, Proxy};
use procession::prelude::*;

/// A manager that is shut down when the test ends, however it ends.
struct Server(Manager);

impl Server {
    fn start() -> Server {
        Server(Manager::start().unwrap())
    }
}

impl Deref for Server {
    type Target = Manager;
    fn deref(&self) -> &Manager {
        &self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.shutdown();
    }
}

// ---------------------------------------------------------------------------------------
// Dicts.

#[test]
fn dict_entries_come_in_insertion_order_and_a_reinserted_key_goes_last() {
    let m = Server::start();
    let d = m.dict::<String, u32>().unwrap();
    for (i, k) in ["zebra", "apple", "mango", "kiwi"].into_iter().enumerate() {
        d.insert(k.into(), i as u32).unwrap();
    }
    d.remove(&"apple".to_string()).unwrap();
    d.insert("apple".into(), 9).unwrap();
    assert_eq!(d.keys().unwrap(), ["zebra", "mango", "kiwi", "apple"]);
    assert_eq!(d.values().unwrap(), [0, 2, 3, 9]);
    assert_eq!(d.items().unwrap(), d.snapshot().unwrap());
    let iterated: Vec<(String, u32)> = d.iter().unwrap().collect();
    assert_eq!(iterated, d.snapshot().unwrap());
}

#[test]
fn dict_replacing_a_value_keeps_the_keys_place() {
    let m = Server::start();
    let d = m.dict::<u32, char>().unwrap();
    d.update([(3, 'c'), (1, 'a'), (2, 'b')]).unwrap();
    assert_eq!(d.insert(1, 'A').unwrap(), Some('a'));
    assert_eq!(d.snapshot().unwrap(), [(3, 'c'), (1, 'A'), (2, 'b')]);
}

#[test]
fn dict_pop_item_takes_the_entry_inserted_last_then_none() {
    let m = Server::start();
    let d = m.dict::<u32, u32>().unwrap();
    d.insert(1, 10).unwrap();
    d.insert(2, 20).unwrap();
    assert_eq!(d.pop_item().unwrap(), Some((2, 20)));
    assert_eq!(d.pop_item().unwrap(), Some((1, 10)));
    assert_eq!(d.pop_item().unwrap(), None);
}

#[test]
fn dict_set_default_inserts_only_when_the_key_is_absent() {
    let m = Server::start();
    let d = m.dict::<String, u32>().unwrap();
    assert_eq!(d.set_default("k".into(), 1).unwrap(), 1);
    assert_eq!(d.set_default("k".into(), 2).unwrap(), 1);
    assert_eq!(d.get(&"k".to_string()).unwrap(), Some(1));
}

#[test]
fn dict_pop_returns_the_value_and_clear_empties_the_dict() {
    let m = Server::start();
    let d = m.dict::<u32, u32>().unwrap();
    d.update([(1, 1), (2, 4), (3, 9)]).unwrap();
    assert_eq!(d.pop(&2).unwrap(), Some(4));
    assert_eq!(d.pop(&2).unwrap(), None);
    d.clear().unwrap();
    assert!(d.is_empty().unwrap());
    assert!(d.snapshot().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Lists.

#[test]
fn list_extend_insert_and_remove_at_behave_as_pythons() {
    let m = Server::start();
    let l = m.list::<u32>().unwrap();
    l.extend([1, 2, 3]).unwrap();
    l.insert(0, 0).unwrap();
    l.insert(100, 4).unwrap(); // past the end: appends, as Python's insert
    assert_eq!(l.snapshot().unwrap(), [0, 1, 2, 3, 4]);
    assert_eq!(l.remove(1).unwrap(), 1);
    assert!(l.remove(10).is_err(), "pop(i) out of range is an error");
    assert_eq!(l.iter().unwrap().collect::<Vec<_>>(), [0, 2, 3, 4]);
    l.clear().unwrap();
    assert_eq!(l.len().unwrap(), 0);
}

#[test]
fn list_slices_clamp_their_bounds_and_set_slice_replaces_a_range() {
    let m = Server::start();
    let l = m.list::<u32>().unwrap();
    l.extend(0..10).unwrap();
    assert_eq!(l.slice(2..5).unwrap(), [2, 3, 4]);
    assert_eq!(l.slice(..=1).unwrap(), [0, 1]);
    assert_eq!(l.slice(8..100).unwrap(), [8, 9]);
    assert!(l.slice(20..30).unwrap().is_empty());
    assert!(
        l.slice((std::ops::Bound::Included(6), std::ops::Bound::Excluded(3)))
            .unwrap()
            .is_empty(),
        "a reversed range is empty"
    );
    l.set_slice(1..9, [42]).unwrap();
    assert_eq!(l.snapshot().unwrap(), [0, 42, 9]);
    l.set_slice(3.., [7, 8]).unwrap(); // list[3:] = [7, 8] appends
    assert_eq!(l.snapshot().unwrap(), [0, 42, 9, 7, 8]);
}

// ---------------------------------------------------------------------------------------
// User types hosted by the manager.

#[derive(Serialize, Deserialize)]
struct Tally {
    total: i64,
    calls: u32,
}

#[derive(Serialize, Deserialize)]
enum TallyOp {
    Add(i64),
    Total,
    Divide(i64),
}

impl Managed for Tally {
    type Call = TallyOp;
    type Reply = Result<i64, String>;

    fn call(&mut self, op: TallyOp) -> Result<i64, String> {
        self.calls += 1;
        match op {
            TallyOp::Add(n) => self.total += n,
            TallyOp::Total => {}
            TallyOp::Divide(0) => return Err("division by zero".into()),
            TallyOp::Divide(n) => self.total /= n,
        }
        Ok(self.total)
    }
}
register!(Tally);

/// Ask: add 1 to the tally `n` times, one call each.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct AddOnes(u32);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(AddOnes))]
struct Adder {
    tally: Proxy<Tally>,
}

impl Handler<AddOnes> for Adder {
    fn handle(&mut self, AddOnes(n): AddOnes, _cx: &mut Context<Self>) {
        for _ in 0..n {
            self.tally.call(TallyOp::Add(1)).unwrap().unwrap();
        }
    }
}

#[test]
fn a_registered_type_lives_in_the_server_and_answers_calls() {
    let m = Server::start();
    let t = m
        .create(Tally {
            total: 10,
            calls: 0,
        })
        .unwrap();
    assert_eq!(t.call(TallyOp::Add(5)).unwrap(), Ok(15));
    assert_eq!(t.call(TallyOp::Divide(3)).unwrap(), Ok(5));
    assert_eq!(
        t.call(TallyOp::Divide(0)).unwrap(),
        Err("division by zero".to_string()),
        "a failure travels in the reply and the value goes on"
    );
    let v = t.value().unwrap();
    assert_eq!((v.total, v.calls), (5, 3));
    let other = m.create(Tally { total: 0, calls: 0 }).unwrap();
    assert_eq!(
        other.call(TallyOp::Total).unwrap(),
        Ok(0),
        "values are independent"
    );
}

#[test]
fn calls_on_a_managed_value_from_several_processes_are_each_atomic() {
    let m = Server::start();
    let t = m.create(Tally { total: 0, calls: 0 }).unwrap();
    let adders: Vec<ActorRef<Adder>> = (0..3)
        .map(|_| procession::spawn(Adder { tally: t.clone() }).unwrap())
        .collect();
    let asks: Vec<_> = adders
        .iter()
        .map(|a| {
            let a = a.clone();
            std::thread::spawn(move || a.ask_timeout(AddOnes(200), LONG))
        })
        .collect();
    for ask in asks {
        ask.join().unwrap().unwrap();
    }
    assert_eq!(t.call(TallyOp::Total).unwrap(), Ok(600));
    for a in &adders {
        common::stop_and_join(a);
    }
}
