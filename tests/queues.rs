//! Queues and pipes across processes: a `Queue` shared by producer and consumer actors
//! delivers every item exactly once; a bounded queue hands items back when full
//! (`try_put`, `put_timeout`); `get_timeout`/`try_get` on an empty queue; `SimpleQueue`;
//! `JoinableQueue`'s `join` waits for `task_done` of every item, in other processes, and
//! refuses extra `task_done`s; queue handles travel in spawn arguments and messages; the
//! queue's file goes when its last handle does. Pipes: a duplex pipe used both ways with
//! an actor holding one end, a simplex pipe, `Eof` once the other end is dropped or its
//! process is killed, `poll`, and ends handed over at spawn or in a message.
//!
//! Every actor is killed and joined when its test ends, even when an assertion fails; no
//! test sleeps to synchronize.

mod common;

use std::collections::HashSet;
use std::ops::Deref;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use procession::__private::{Dispatch, Handles};
use procession::prelude::*;
use procession::queue::{
    pipe, simplex, JoinableQueue, PipeEnd, PipeSender, Queue, RecvError, SimpleQueue,
};
use procession::shared::Value;
use procession::TellError;

use common::{wait_at_gate, Gate};

/// Long enough never to be hit in a passing run on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// For waits that must time out in a passing run (their length does not matter).
const BRIEFLY: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------
// Test plumbing.

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
        let _ = self.0.join_timeout(PATIENCE);
    }
}

fn spawn_reaped<A: Dispatch>(args: A::Args) -> Reaped<A> {
    Reaped(procession::spawn(args).unwrap())
}

/// Stops the actor gracefully and checks that it ended with `Exit::Stopped`.
fn stop_and_join<A: Dispatch>(actor: &ActorRef<A>) {
    actor.stop().unwrap();
    assert_eq!(actor.join_timeout(PATIENCE).unwrap(), Exit::Stopped);
}

/// Asks `actor` in a new thread (for handlers that block until the test acts).
fn ask_in_thread<A, M>(actor: &ActorRef<A>, msg: M) -> JoinHandle<M::Reply>
where
    A: Handles<M>,
    M: Message,
{
    let actor = actor.clone();
    std::thread::spawn(move || actor.ask_timeout(msg, PATIENCE).unwrap())
}

/// This process's runtime directory (it exists once a queue was made).
fn runtime_dir() -> PathBuf {
    let base = std::env::var_os("PROCESSION_SHM_DIR")
        .map_or_else(|| PathBuf::from("/dev/shm"), PathBuf::from);
    let prefix = format!("procession-{}-", std::process::id());
    let dirs: Vec<PathBuf> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "one runtime directory for this process");
    dirs[0].clone()
}

/// The file of a queue: `mb-<id>` in the runtime directory (the id is in its Debug form).
fn queue_file<T>(queue: &Queue<T>) -> PathBuf {
    let debug = format!("{queue:?}");
    let id = debug
        .strip_prefix("Queue(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected Debug form {debug:?}"));
    runtime_dir().join(format!("mb-{id}"))
}

// ---------------------------------------------------------------------------------------
// Queue: many producers, many consumers.

/// Put `count` items `Some(first + i)`.
#[derive(Serialize, Deserialize, Message)]
struct Produce {
    first: u32,
    count: u32,
}

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Produce))]
struct Producer {
    queue: Queue<Option<u32>>,
}

impl Handler<Produce> for Producer {
    fn handle(&mut self, Produce { first, count }: Produce, _cx: &mut Context<Self>) {
        for i in 0..count {
            self.queue.put(Some(first + i)).unwrap();
        }
    }
}

/// Take items until `None`; reply with them.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<u32>)]
struct Drain;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Drain))]
struct Consumer {
    queue: Queue<Option<u32>>,
}

impl Handler<Drain> for Consumer {
    fn handle(&mut self, _: Drain, _cx: &mut Context<Self>) -> Vec<u32> {
        let mut got = Vec::new();
        while let Some(item) = self.queue.get().unwrap() {
            got.push(item);
        }
        got
    }
}

#[test]
fn a_queue_shared_by_3_producer_and_2_consumer_processes_delivers_every_item_exactly_once() {
    const PER_PRODUCER: u32 = 10_000;
    let queue = Queue::<Option<u32>>::bounded(512).unwrap();
    let consumers: Vec<Reaped<Consumer>> = (0..2)
        .map(|_| {
            spawn_reaped::<Consumer>(Consumer {
                queue: queue.clone(),
            })
        })
        .collect();
    let producers: Vec<Reaped<Producer>> = (0..3)
        .map(|_| {
            spawn_reaped::<Producer>(Producer {
                queue: queue.clone(),
            })
        })
        .collect();
    let drains: Vec<_> = consumers.iter().map(|c| ask_in_thread(c, Drain)).collect();
    let produced: Vec<_> = producers
        .iter()
        .enumerate()
        .map(|(p, producer)| {
            ask_in_thread(
                producer,
                Produce {
                    first: p as u32 * PER_PRODUCER,
                    count: PER_PRODUCER,
                },
            )
        })
        .collect();
    for p in produced {
        p.join().unwrap();
    }
    for _ in &consumers {
        queue.put(None).unwrap();
    }

    let mut all = Vec::new();
    for d in drains {
        all.extend(d.join().unwrap());
    }
    assert_eq!(
        all.len(),
        3 * PER_PRODUCER as usize,
        "no item lost or doubled"
    );
    let distinct: HashSet<u32> = all.iter().copied().collect();
    assert_eq!(distinct, (0..3 * PER_PRODUCER).collect::<HashSet<u32>>());
    assert!(queue.is_empty());
    for a in &producers {
        stop_and_join(a);
    }
    for a in &consumers {
        stop_and_join(a);
    }
}

// ---------------------------------------------------------------------------------------
// Queue: bounds, timeouts, emptiness.

#[test]
fn try_put_on_a_full_bounded_queue_gives_the_item_back_as_full() {
    let queue = Queue::<String>::bounded(2).unwrap();
    queue.put("a".into()).unwrap();
    queue.put("b".into()).unwrap();
    match queue.try_put("c".into()) {
        Err(TellError::Full(item)) => assert_eq!(item, "c"),
        other => panic!("expected Full(\"c\"), got {other:?}"),
    }
    assert_eq!(queue.len(), 2);
}

#[test]
fn put_timeout_on_a_full_bounded_queue_gives_the_item_back_as_timeout() {
    let queue = Queue::<String>::bounded(1).unwrap();
    queue.put("a".into()).unwrap();
    match queue.put_timeout("b".into(), BRIEFLY) {
        Err(TellError::Timeout(item)) => assert_eq!(item, "b"),
        other => panic!("expected Timeout(\"b\"), got {other:?}"),
    }
    assert_eq!(queue.get().unwrap(), "a");
    assert!(queue.is_empty(), "the refused item was not queued");
}

#[test]
fn get_timeout_on_an_empty_queue_times_out() {
    let queue = Queue::<u32>::bounded(4).unwrap();
    assert_eq!(queue.get_timeout(BRIEFLY), Err(RecvError::Timeout));
}

#[test]
fn try_get_on_an_empty_queue_is_empty() {
    let queue = Queue::<u32>::unbounded().unwrap();
    assert_eq!(queue.try_get(), Err(RecvError::Empty));
    queue.put(5).unwrap();
    assert_eq!(queue.try_get(), Ok(5));
    assert_eq!(queue.try_get(), Err(RecvError::Empty));
}

/// Take one item and reply with it.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Option<u32>)]
struct TakeOne;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(TakeOne))]
struct Taker {
    queue: Queue<Option<u32>>,
}

impl Handler<TakeOne> for Taker {
    fn handle(&mut self, _: TakeOne, _cx: &mut Context<Self>) -> Option<u32> {
        self.queue.get_timeout(PATIENCE).unwrap()
    }
}

#[test]
fn a_put_blocked_on_a_full_queue_completes_once_another_process_takes_an_item() {
    let queue = Queue::<Option<u32>>::bounded(1).unwrap();
    queue.put(Some(1)).unwrap();
    let blocked = {
        let queue = queue.clone();
        std::thread::spawn(move || queue.put_timeout(Some(2), PATIENCE).is_ok())
    };
    let taker = spawn_reaped::<Taker>(Taker {
        queue: queue.clone(),
    });
    assert_eq!(taker.ask(TakeOne).unwrap(), Some(1));
    assert!(blocked.join().unwrap(), "the blocked put went through");
    assert_eq!(taker.ask(TakeOne).unwrap(), Some(2));
    stop_and_join(&taker);
}

// ---------------------------------------------------------------------------------------
// SimpleQueue.

/// Put 0..count into the simple queue.
#[derive(Serialize, Deserialize, Message)]
struct PutNumbers(u32);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(PutNumbers))]
struct SimplePutter {
    queue: SimpleQueue<u32>,
}

impl Handler<PutNumbers> for SimplePutter {
    fn handle(&mut self, PutNumbers(count): PutNumbers, _cx: &mut Context<Self>) {
        for i in 0..count {
            self.queue.put(i).unwrap();
        }
    }
}

#[test]
fn a_simple_queue_carries_items_from_an_actor_in_order() {
    let queue = SimpleQueue::<u32>::new().unwrap();
    assert!(queue.is_empty());
    let putter = spawn_reaped::<SimplePutter>(SimplePutter {
        queue: queue.clone(),
    });
    putter.ask(PutNumbers(1000)).unwrap();
    let got: Vec<u32> = (0..1000).map(|_| queue.get().unwrap()).collect();
    assert_eq!(got, (0..1000).collect::<Vec<u32>>());
    assert!(queue.is_empty());
    stop_and_join(&putter);
}

// ---------------------------------------------------------------------------------------
// JoinableQueue.

/// Take items until `None`, counting each in `done` before its `task_done`.
#[derive(Serialize, Deserialize, Message)]
struct WorkUntilNone;

/// Take one item, wait at the gate at this path, then call `task_done`.
#[derive(Serialize, Deserialize, Message)]
struct TakeOneAtGate(String);

/// Call `task_done` once; reply whether it was accepted.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = bool)]
struct TaskDone;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WorkUntilNone, TakeOneAtGate, TaskDone))]
struct JoinWorker {
    queue: JoinableQueue<Option<u32>>,
    done: Value<u64>,
}

impl Handler<WorkUntilNone> for JoinWorker {
    fn handle(&mut self, _: WorkUntilNone, _cx: &mut Context<Self>) {
        loop {
            let item = self.queue.get().unwrap();
            if item.is_some() {
                self.done.fetch_add(1);
            }
            self.queue.task_done().unwrap();
            if item.is_none() {
                return;
            }
        }
    }
}

impl Handler<TakeOneAtGate> for JoinWorker {
    fn handle(&mut self, TakeOneAtGate(gate): TakeOneAtGate, _cx: &mut Context<Self>) {
        self.queue.get().unwrap();
        wait_at_gate(&gate);
        self.queue.task_done().unwrap();
    }
}

impl Handler<TaskDone> for JoinWorker {
    fn handle(&mut self, _: TaskDone, _cx: &mut Context<Self>) -> bool {
        self.queue.task_done().is_ok()
    }
}

fn join_worker(queue: &JoinableQueue<Option<u32>>, done: &Value<u64>) -> Reaped<JoinWorker> {
    spawn_reaped::<JoinWorker>(JoinWorker {
        queue: queue.clone(),
        done: done.clone(),
    })
}

#[test]
fn joinable_queue_join_returns_only_after_workers_called_task_done_for_every_item() {
    const ITEMS: u32 = 2000;
    let queue = JoinableQueue::<Option<u32>>::new().unwrap();
    let done = Value::new(0u64).unwrap();
    let workers = [join_worker(&queue, &done), join_worker(&queue, &done)];
    for w in &workers {
        w.tell(WorkUntilNone).unwrap();
    }
    for i in 0..ITEMS {
        queue.put(Some(i)).unwrap();
    }
    for _ in &workers {
        queue.put(None).unwrap();
    }
    assert!(queue.join_timeout(PATIENCE), "every item was marked done");
    assert_eq!(
        done.load(),
        ITEMS as u64,
        "join returned after the task_done of every item"
    );
    for w in &workers {
        stop_and_join(w);
    }
}

#[test]
fn joinable_queue_join_waits_while_an_item_taken_in_another_process_is_not_done() {
    let queue = JoinableQueue::<Option<u32>>::new().unwrap();
    let worker = join_worker(&queue, &Value::new(0u64).unwrap());
    let gate = Gate::new();
    queue.put(Some(1)).unwrap();
    worker.tell(TakeOneAtGate(gate.path())).unwrap();
    let arrived = gate.arrival(PATIENCE);

    assert!(
        !queue.join_timeout(BRIEFLY),
        "taken is not done: join still waits"
    );
    arrived.release();
    assert!(
        queue.join_timeout(PATIENCE),
        "done once the worker's task_done ran"
    );
    stop_and_join(&worker);
}

#[test]
fn joinable_queue_task_done_more_times_than_items_is_an_error() {
    let queue = JoinableQueue::<Option<u32>>::new().unwrap();
    assert!(queue.task_done().is_err(), "nothing was put");
    queue.put(Some(1)).unwrap();
    assert_eq!(queue.get().unwrap(), Some(1));
    queue.task_done().unwrap();
    assert!(queue.task_done().is_err(), "one put, one task_done");
    assert!(
        queue.join_timeout(PATIENCE),
        "the refused call changed nothing"
    );
}

#[test]
fn joinable_queue_task_done_in_another_process_counts_against_the_same_items() {
    let queue = JoinableQueue::<Option<u32>>::new().unwrap();
    let worker = join_worker(&queue, &Value::new(0u64).unwrap());
    queue.put(Some(1)).unwrap();
    assert_eq!(queue.get().unwrap(), Some(1));
    assert!(worker.ask(TaskDone).unwrap(), "one item is unfinished");
    assert!(queue.join_timeout(PATIENCE));
    assert!(!worker.ask(TaskDone).unwrap(), "none is left: an error");
    stop_and_join(&worker);
}

// ---------------------------------------------------------------------------------------
// Queue handles in messages, and the queue's file.

/// A queue handle, to keep.
#[derive(Serialize, Deserialize, Message)]
struct UseQueue(Queue<Option<u32>>);

/// Put this item into the kept queue.
#[derive(Serialize, Deserialize, Message)]
struct PutInto(u32);

/// Whether a queue was kept.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = bool)]
struct HasQueue;

#[derive(Actor)]
#[actor(handles(UseQueue, PutInto, HasQueue), args = ())]
struct QueueKeeper {
    queue: Option<Queue<Option<u32>>>,
}

impl Actor for QueueKeeper {
    type Args = ();
    fn create((): (), _cx: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(QueueKeeper { queue: None })
    }
}

impl Handler<UseQueue> for QueueKeeper {
    fn handle(&mut self, UseQueue(queue): UseQueue, _cx: &mut Context<Self>) {
        self.queue = Some(queue);
    }
}

impl Handler<HasQueue> for QueueKeeper {
    fn handle(&mut self, _: HasQueue, _cx: &mut Context<Self>) -> bool {
        self.queue.is_some()
    }
}

impl Handler<PutInto> for QueueKeeper {
    fn handle(&mut self, PutInto(item): PutInto, _cx: &mut Context<Self>) {
        self.queue
            .as_ref()
            .expect("UseQueue came first")
            .put(Some(item))
            .unwrap();
    }
}

#[test]
fn a_queue_handle_given_in_a_message_works_in_the_actor() {
    let queue = Queue::<Option<u32>>::unbounded().unwrap();
    let keeper = spawn_reaped::<QueueKeeper>(());
    keeper.tell(UseQueue(queue.clone())).unwrap();
    keeper.tell(PutInto(42)).unwrap();
    assert_eq!(queue.get_timeout(PATIENCE), Ok(Some(42)));
    stop_and_join(&keeper);
}

#[test]
fn a_queue_handle_moved_into_a_told_message_reaches_the_actor_even_if_it_was_the_last_one() {
    let queue = Queue::<Option<u32>>::unbounded().unwrap();
    let keeper = spawn_reaped::<QueueKeeper>(());
    // `tell` drops the message once it is queued: the actor now has the only handle.
    keeper.tell(UseQueue(queue)).unwrap();
    assert!(
        keeper.ask(HasQueue).unwrap(),
        "the actor could not open the queue (rejected frames: {})",
        keeper.bad_frames()
    );
    stop_and_join(&keeper);
}

#[test]
fn the_queue_file_is_removed_when_the_last_handle_in_this_process_is_dropped() {
    let queue = Queue::<u32>::bounded(8).unwrap();
    let file = queue_file(&queue);
    assert!(file.exists(), "{} exists", file.display());
    let clone = queue.clone();
    drop(queue);
    assert!(file.exists(), "a clone still holds it");
    let decoded: Queue<u32> = procession::wire::decode_body(
        &{
            let mut buf = Vec::new();
            procession::wire::encode_body(&clone, &mut buf).unwrap();
            buf
        },
        "queue",
    )
    .unwrap();
    drop(clone);
    assert!(file.exists(), "a deserialized handle holds it too");
    drop(decoded);
    assert!(!file.exists(), "the last handle removed {}", file.display());
}

#[test]
fn the_queue_file_lives_while_an_actor_holds_a_handle_and_goes_when_it_stops() {
    let queue = Queue::<Option<u32>>::unbounded().unwrap();
    let file = queue_file(&queue);
    // The spawn arguments hold this process's only handle until the actor has its own.
    let producer = spawn_reaped::<Producer>(Producer { queue });
    assert!(file.exists(), "the actor's handle keeps {}", file.display());
    stop_and_join(&producer);
    assert!(
        !file.exists(),
        "the actor dropped the last handle at its stop: {} is gone",
        file.display()
    );
}

// ---------------------------------------------------------------------------------------
// Pipes.

/// Receive until end of file, sending back each value doubled; reply how many.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Serve;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Serve))]
struct PipeServer {
    end: PipeEnd<i64>,
}

impl Handler<Serve> for PipeServer {
    fn handle(&mut self, _: Serve, _cx: &mut Context<Self>) -> u64 {
        let mut served = 0;
        loop {
            match self.end.recv() {
                Ok(x) => {
                    self.end.send(x * 2).unwrap();
                    served += 1;
                }
                Err(RecvError::Eof) => return served,
                Err(other) => panic!("recv failed: {other}"),
            }
        }
    }
}

#[test]
fn a_duplex_pipe_carries_values_both_ways_with_an_actor_holding_the_end_given_at_spawn() {
    let (mine, theirs) = pipe::<i64>().unwrap();
    let server = spawn_reaped::<PipeServer>(PipeServer { end: theirs });
    let served = ask_in_thread(&server, Serve);
    for x in -50..50 {
        mine.send(x).unwrap();
        assert_eq!(mine.recv_timeout(PATIENCE), Ok(x * 2));
    }
    drop(mine);
    assert_eq!(
        served.join().unwrap(),
        100,
        "the actor saw end of file once this end was dropped"
    );
    stop_and_join(&server);
}

#[test]
fn recv_gets_eof_after_the_other_end_is_dropped_in_the_same_process() {
    let (a, b) = pipe::<String>().unwrap();
    b.send("last words".into()).unwrap();
    drop(b);
    assert_eq!(
        a.recv_timeout(PATIENCE).as_deref(),
        Ok("last words"),
        "what was sent before comes first"
    );
    assert_eq!(a.recv_timeout(PATIENCE), Err(RecvError::Eof));
    assert_eq!(a.recv(), Err(RecvError::Eof), "and stays at end of file");
}

#[test]
fn recv_gets_eof_after_the_process_holding_the_other_end_is_killed() {
    let (mine, theirs) = pipe::<i64>().unwrap();
    let server = spawn_reaped::<PipeServer>(PipeServer { end: theirs });
    assert_eq!(
        mine.recv_timeout(BRIEFLY),
        Err(RecvError::Timeout),
        "the actor holds the other end: no end of file yet"
    );
    server.kill().unwrap();
    assert_eq!(server.join_timeout(PATIENCE).unwrap(), Exit::Signaled(9));
    assert_eq!(mine.recv_timeout(PATIENCE), Err(RecvError::Eof));
}

#[test]
fn a_simplex_pipe_carries_values_one_way_then_eof() {
    let (tx, rx) = simplex::<u64>().unwrap();
    for i in 0..100 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let got: Vec<u64> = (0..100)
        .map(|_| rx.recv_timeout(PATIENCE).unwrap())
        .collect();
    assert_eq!(got, (0..100).collect::<Vec<u64>>());
    assert_eq!(rx.recv_timeout(PATIENCE), Err(RecvError::Eof));
}

/// A simplex sender, to keep.
#[derive(Serialize, Deserialize, Message)]
struct KeepSender(PipeSender<u64>);

/// A duplex end, to keep.
#[derive(Serialize, Deserialize, Message)]
struct KeepEnd(PipeEnd<u64>);

/// Send 0..count on the kept sender and the kept end.
#[derive(Serialize, Deserialize, Message)]
struct SendNumbers(u64);

/// Wait at the gate at this path.
#[derive(Serialize, Deserialize, Message)]
struct WaitAtGate(String);

#[derive(Actor)]
#[actor(handles(KeepSender, KeepEnd, SendNumbers, WaitAtGate), args = ())]
struct EndKeeper {
    sender: Option<PipeSender<u64>>,
    end: Option<PipeEnd<u64>>,
}

impl Actor for EndKeeper {
    type Args = ();
    fn create((): (), _cx: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(EndKeeper {
            sender: None,
            end: None,
        })
    }
}

impl Handler<KeepSender> for EndKeeper {
    fn handle(&mut self, KeepSender(tx): KeepSender, _cx: &mut Context<Self>) {
        self.sender = Some(tx);
    }
}

impl Handler<KeepEnd> for EndKeeper {
    fn handle(&mut self, KeepEnd(end): KeepEnd, _cx: &mut Context<Self>) {
        self.end = Some(end);
    }
}

impl Handler<SendNumbers> for EndKeeper {
    fn handle(&mut self, SendNumbers(count): SendNumbers, _cx: &mut Context<Self>) {
        for i in 0..count {
            if let Some(tx) = &self.sender {
                tx.send(i).unwrap();
            }
            if let Some(end) = &self.end {
                end.send(i).unwrap();
            }
        }
    }
}

impl Handler<WaitAtGate> for EndKeeper {
    fn handle(&mut self, WaitAtGate(gate): WaitAtGate, _cx: &mut Context<Self>) {
        wait_at_gate(&gate);
    }
}

#[test]
fn a_simplex_sender_given_in_a_message_sends_from_the_actor() {
    let (tx, rx) = simplex::<u64>().unwrap();
    let keeper = spawn_reaped::<EndKeeper>(());
    keeper.ask(KeepSender(tx)).unwrap();
    keeper.tell(SendNumbers(10)).unwrap();
    let got: Vec<u64> = (0..10)
        .map(|_| rx.recv_timeout(PATIENCE).unwrap())
        .collect();
    assert_eq!(got, (0..10).collect::<Vec<u64>>());
    stop_and_join(&keeper);
    assert_eq!(
        rx.recv_timeout(PATIENCE),
        Err(RecvError::Eof),
        "the actor's stop dropped the only sender"
    );
}

#[test]
fn a_duplex_end_given_in_a_message_works_both_ways() {
    let (mine, theirs) = pipe::<u64>().unwrap();
    let keeper = spawn_reaped::<EndKeeper>(());
    keeper.ask(KeepEnd(theirs)).unwrap();
    keeper.tell(SendNumbers(3)).unwrap();
    let got: Vec<u64> = (0..3)
        .map(|_| mine.recv_timeout(PATIENCE).unwrap())
        .collect();
    assert_eq!(got, [0, 1, 2]);
    mine.send(7).unwrap();
    stop_and_join(&keeper);
    assert_eq!(mine.recv_timeout(PATIENCE), Err(RecvError::Eof));
}

#[test]
fn recv_does_not_report_eof_while_the_only_sender_is_in_a_message_not_yet_handled() {
    let (tx, rx) = simplex::<u64>().unwrap();
    let keeper = spawn_reaped::<EndKeeper>(());
    let gate = Gate::new();
    keeper.tell(WaitAtGate(gate.path())).unwrap();
    let arrived = gate.arrival(PATIENCE);
    keeper.tell(KeepSender(tx)).unwrap(); // queued behind the gate: not decoded yet

    let early = rx.recv_timeout(Duration::from_millis(200));
    arrived.release();
    assert_eq!(
        early,
        Err(RecvError::Timeout),
        "the sender exists (in the actor's mailbox), so this is no end of file"
    );
    keeper.tell(SendNumbers(1)).unwrap();
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(0));
    stop_and_join(&keeper);
}

#[test]
fn poll_says_whether_a_value_is_waiting() {
    let (mine, theirs) = pipe::<u64>().unwrap();
    let keeper = spawn_reaped::<EndKeeper>(());
    keeper.ask(KeepEnd(theirs)).unwrap();
    assert!(!mine.poll(BRIEFLY), "nothing sent yet");
    keeper.tell(SendNumbers(1)).unwrap();
    assert!(mine.poll(PATIENCE), "the actor's value arrives");
    assert!(mine.poll(Duration::ZERO), "poll does not consume it");
    assert_eq!(mine.recv_timeout(PATIENCE), Ok(0));
    assert!(!mine.poll(Duration::ZERO));
    stop_and_join(&keeper);
}
