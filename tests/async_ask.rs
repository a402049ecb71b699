//! Async callers: `ask_async` and `tell_async` on tokio (multi-thread and current-thread)
//! and on `futures::executor`, through the process's reply router.

mod common;

use std::time::{Duration, Instant};

use common::{stop_and_join, wait_at_gate, Gate, LONG};
use futures::FutureExt;
use procession::prelude::*;
use procession::{Error, SpawnOptions};

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Echo(u64);

/// Holds the actor at a gate, then replies with its pid.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Hold(String);

/// A tell the actor counts.
#[derive(Serialize, Deserialize, Message)]
struct Note;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Notes;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Echo, Hold, Note, Notes))]
struct Svc {
    notes: u64,
}

impl Handler<Echo> for Svc {
    fn handle(&mut self, Echo(x): Echo, _cx: &mut Context<Self>) -> u64 {
        x * 3 + 1
    }
}

impl Handler<Hold> for Svc {
    fn handle(&mut self, Hold(path): Hold, cx: &mut Context<Self>) -> u32 {
        wait_at_gate(&path);
        cx.pid()
    }
}

impl Handler<Note> for Svc {
    fn handle(&mut self, _: Note, _cx: &mut Context<Self>) {
        self.notes += 1;
    }
}

impl Handler<Notes> for Svc {
    fn handle(&mut self, _: Notes, _cx: &mut Context<Self>) -> u64 {
        self.notes
    }
}

fn svc() -> ActorRef<Svc> {
    Svc { notes: 0 }.spawn().expect("spawn Svc")
}

/// The tests share this process's reply router. Written (alone) by the tests that make a
/// reply come late, so that each sees its own in the process-wide count, and by the one
/// that writes over the router's inbox, whose reset may cost other asks their replies;
/// read by all the others.
static ROUTER: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared_router() -> std::sync::RwLockReadGuard<'static, ()> {
    ROUTER.read().unwrap_or_else(|e| e.into_inner())
}

fn router_alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    ROUTER.write().unwrap_or_else(|e| e.into_inner())
}

/// Waits for an actor at `gate` on tokio's blocking pool, off the runtime's threads.
async fn arrival_off_the_runtime(gate: Gate) -> (Gate, common::Arrived) {
    tokio::task::spawn_blocking(move || {
        let arrived = gate.arrival(LONG);
        (gate, arrived)
    })
    .await
    .unwrap()
}

/// Waits, with a deadline, until `late_replies()` exceeds `before`.
fn wait_for_late_reply(before: u64) -> u64 {
    let deadline = Instant::now() + LONG;
    loop {
        let now = procession::late_replies();
        if now > before {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the late reply was never counted"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_thousand_concurrent_async_asks_from_8_tasks_on_two_threads_to_4_actors_are_all_answered() {
    let _router = shared_router();
    let actors: Vec<ActorRef<Svc>> = (0..4).map(|_| svc()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let answered: Vec<u64> = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let actors = actors.clone();
            tasks.push(tokio::spawn(async move {
                // 125 asks in flight at once from this task.
                let asks = (0..125u64).map(|i| {
                    let x = t * 1000 + i;
                    let a = &actors[(x % 4) as usize];
                    a.ask_async_timeout(Echo(x), LONG)
                        .map(move |r| (x, r.expect("async ask answered")))
                });
                futures::future::join_all(asks).await
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            for (x, reply) in task.await.expect("task ran") {
                assert_eq!(reply, x * 3 + 1, "reply to ask {x}");
                all.push(x);
            }
        }
        all
    });
    assert_eq!(answered.len(), 1000);
    for a in &actors {
        stop_and_join(a);
    }
}

#[test]
fn a_current_thread_runtime_runs_other_tasks_while_an_async_ask_is_in_flight() {
    let _router = shared_router();
    let a = svc();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pid = rt.block_on(async {
        let gate = Gate::new();
        let ask = tokio::spawn(a.ask_async_timeout(Hold(gate.path()), LONG));
        // The actor is inside the handler once it reaches the gate; wait for that off
        // the runtime's only thread.
        let (gate, arrived) = arrival_off_the_runtime(gate).await;
        // The ask is in flight. A blocking ask would hold the runtime's only thread, and
        // this task could not run until it returned.
        let other = tokio::spawn(async {
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            42
        });
        assert_eq!(other.await.unwrap(), 42);
        assert!(
            !ask.is_finished(),
            "the ask was answered before the gate opened"
        );
        arrived.release();
        let pid = tokio::time::timeout(LONG, ask).await.expect("answered");
        drop(gate);
        pid.unwrap().expect("async ask answered")
    });
    assert_eq!(pid, a.pid());
    stop_and_join(&a);
}

#[test]
fn async_asks_work_on_the_futures_executor() {
    let _router = shared_router();
    let a = svc();
    let replies = futures::executor::block_on(futures::future::join_all(
        (0..100u64).map(|x| a.ask_async(Echo(x))),
    ));
    for (x, r) in replies.into_iter().enumerate() {
        assert_eq!(r.expect("answered"), x as u64 * 3 + 1);
    }
    stop_and_join(&a);
}

#[test]
fn a_dropped_ask_future_abandons_the_wait_and_its_late_reply_is_counted() {
    let _router = router_alone();
    let a = svc();
    let gate = Gate::new();
    let before = procession::late_replies();
    // One poll queues the request; dropping the future then abandons the wait.
    let fut = a.ask_async_timeout(Hold(gate.path()), LONG);
    assert!(
        fut.now_or_never().is_none(),
        "answered before the gate opened"
    );
    gate.arrival(LONG).release();
    wait_for_late_reply(before);
    // The actor goes on, and a new ask gets its own reply.
    assert_eq!(
        futures::executor::block_on(a.ask_async(Echo(2))).unwrap(),
        7
    );
    stop_and_join(&a);
}

#[test]
fn an_async_ask_times_out_at_its_deadline_and_the_reply_that_follows_is_discarded() {
    let _router = router_alone();
    let a = svc();
    let gate = Gate::new();
    let before = procession::late_replies();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let r = futures::executor::block_on(a.ask_async_timeout(Hold(gate.path()), timeout));
    assert!(matches!(r, Err(Error::Timeout(t)) if t == timeout), "{r:?}");
    assert!(started.elapsed() >= timeout);
    gate.arrival(LONG).release();
    wait_for_late_reply(before);
    assert_eq!(
        futures::executor::block_on(a.ask_async(Echo(0))).unwrap(),
        1
    );
    stop_and_join(&a);
}

#[test]
fn an_async_ask_to_an_actor_that_dies_handling_it_fails_with_actor_died() {
    let _router = shared_router();
    let a = svc();
    let gate = Gate::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(async {
        let ask = tokio::spawn(a.ask_async_timeout(Hold(gate.path()), LONG));
        let (gate, arrived) = arrival_off_the_runtime(gate).await;
        a.kill().unwrap();
        let r = tokio::time::timeout(LONG, ask)
            .await
            .expect("the wait ended");
        drop((arrived, gate));
        r.unwrap()
    });
    assert!(matches!(r, Err(Error::ActorDied { .. })), "{r:?}");
    assert_eq!(a.join_timeout(LONG).unwrap(), procession::Exit::Signaled(9));
}

#[test]
fn tell_async_waits_for_room_in_a_full_mailbox_without_blocking_its_thread() {
    let _router = shared_router();
    let a: ActorRef<Svc> =
        procession::spawn_with(Svc { notes: 0 }, SpawnOptions::new().capacity(4))
            .expect("spawn Svc");
    let gate = Gate::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let notes = rt.block_on(async {
        a.tell_async(Note).await.unwrap();
        let hold = tokio::spawn(a.ask_async_timeout(Hold(gate.path()), LONG));
        let (gate, arrived) = arrival_off_the_runtime(gate).await;
        // Fill the mailbox while the actor is held.
        let mut queued = 0u64;
        while a.try_tell(Note).is_ok() {
            queued += 1;
            assert!(queued < 1000, "the mailbox never filled");
        }
        let tell = tokio::spawn(a.tell_async(Note));
        let other = tokio::spawn(async {
            tokio::task::yield_now().await;
            7
        });
        assert_eq!(other.await.unwrap(), 7);
        assert!(!tell.is_finished(), "a tell into a full mailbox resolved");
        arrived.release();
        tokio::time::timeout(LONG, tell)
            .await
            .expect("the tell went through once there was room")
            .unwrap()
            .unwrap();
        hold.await.unwrap().unwrap();
        drop(gate);
        let notes = a.ask_async(Notes).await.unwrap();
        assert_eq!(notes, 1 + queued + 1);
        notes
    });
    assert!(notes >= 3);
    stop_and_join(&a);
}

#[test]
fn the_routed_blocking_ask_gets_its_reply_through_a_channel() {
    let _router = shared_router();
    let a = svc();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let a = a.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let x = t * 100 + i;
                    assert_eq!(a.ask_routed(Echo(x), LONG).unwrap(), x * 3 + 1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    stop_and_join(&a);
}

/// Writes `bytes` at the offset of `field` in this process's reply router inbox.
fn scribble_router(field: &str, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let path = procession::__private::router_inbox_path().expect("the router runs");
    let at = procession::__private::header_field_offset(field).expect("a header field");
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, at as u64).unwrap();
}

#[test]
fn a_written_over_router_inbox_costs_at_most_its_replies_and_async_asks_go_on() {
    let _router = router_alone();
    let a = svc();
    futures::executor::block_on(a.ask_async(Echo(1))).unwrap();
    for (field, garbage) in [
        ("frames_sent", 100_000u64.to_le_bytes().to_vec()),
        ("head", u64::MAX.to_le_bytes().to_vec()),
        ("tail", 12_345u64.to_le_bytes().to_vec()),
    ] {
        scribble_router(field, &garbage);
        // Each ask ends by its deadline at the latest; a reply the reset lost times out,
        // and within a few tries the router is whole again.
        let deadline = Instant::now() + LONG;
        loop {
            let started = Instant::now();
            let r = futures::executor::block_on(
                a.ask_async_timeout(Echo(2), Duration::from_millis(500)),
            );
            assert!(started.elapsed() < Duration::from_secs(10), "an ask hung");
            match r {
                Ok(v) => {
                    assert_eq!(v, 7);
                    break;
                }
                Err(e) => assert!(Instant::now() < deadline, "never recovered: {e}"),
            }
        }
    }
    stop_and_join(&a);
}

/// Replies with the length of what it was sent.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Weigh(procession::ByteBuf);

#[derive(Serialize, Deserialize, Message)]
struct Drop2(procession::ByteBuf);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Weigh, Drop2, Notes))]
struct Scale {
    bytes: u64,
}

impl Handler<Weigh> for Scale {
    fn handle(&mut self, Weigh(b): Weigh, _cx: &mut Context<Self>) -> u64 {
        b.len() as u64
    }
}

impl Handler<Drop2> for Scale {
    fn handle(&mut self, Drop2(b): Drop2, _cx: &mut Context<Self>) {
        self.bytes += b.len() as u64;
    }
}

impl Handler<Notes> for Scale {
    fn handle(&mut self, _: Notes, _cx: &mut Context<Self>) -> u64 {
        self.bytes
    }
}

#[test]
fn messages_larger_than_the_mailbox_ring_go_through_ask_async_and_tell_async() {
    let _router = shared_router();
    let a = Scale { bytes: 0 }.spawn().unwrap();
    // 4 MiB: four times the default 1 MiB ring, so it is sent in parts.
    let big = procession::ByteBuf::from(vec![7u8; 4 << 20]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let n = a.ask_async_timeout(Weigh(big.clone()), LONG).await.unwrap();
        assert_eq!(n, 4 << 20);
        a.tell_async(Drop2(big.clone())).await.unwrap();
        a.tell_async(Drop2(big)).await.unwrap();
        assert_eq!(a.ask_async(Notes).await.unwrap(), 8 << 20);
    });
    stop_and_join(&a);
}
