//! `Queue` and `SimpleQueue` (section 8): one-way throughput to a consumer process.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use procession::prelude::*;
use procession::queue::{simplex, PipeReceiver, PipeSender, Queue, RecvError, SimpleQueue};

use crate::toolbox::{finish_held, held, measure, rates_of, Tup, LONG};
use crate::{rate_record, tell_err, Blob, Cfg, R};

/// The consumer's control messages to the runner, over a simplex pipe.
#[derive(Serialize, Deserialize, Debug)]
enum Ctl {
    Ready,
    /// Items and payload bytes received before the `None` sentinel.
    Done(u64, u64),
    Failed(String),
}

/// The queue a consumer drains, with its item type.
#[derive(Serialize, Deserialize)]
enum Chan {
    QueueTuple(Queue<Option<Tup>>),
    QueueBytes(Queue<Option<Blob>>),
    SimpleTuple(SimpleQueue<Option<Tup>>),
    SimpleBytes(SimpleQueue<Option<Blob>>),
}

/// Drain the queue until its `None` sentinel, reporting on the control pipe.
#[derive(Serialize, Deserialize, Message)]
struct Drain(Chan, PipeSender<Ctl>);

/// The consumer process of the queue figures.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Drain))]
struct Drainer;

/// Counts items and payload bytes until `get` yields `None`.
fn drain<T>(get: impl Fn() -> Result<Option<T>, RecvError>, len: impl Fn(&T) -> u64) -> Ctl {
    let (mut n, mut bytes) = (0, 0);
    loop {
        match get() {
            Ok(Some(item)) => {
                n += 1;
                bytes += len(&item);
            }
            Ok(None) => return Ctl::Done(n, bytes),
            Err(e) => return Ctl::Failed(format!("get failed after {n} items: {e}")),
        }
    }
}

impl Handler<Drain> for Drainer {
    fn handle(&mut self, Drain(chan, ctl): Drain, _cx: &mut Context<Self>) {
        if ctl.send(Ctl::Ready).is_err() {
            return;
        }
        let done = match &chan {
            Chan::QueueTuple(q) => drain(|| q.get(), |_| 0),
            Chan::QueueBytes(q) => drain(|| q.get(), |b| b.0.len() as u64),
            Chan::SimpleTuple(q) => drain(|| q.get(), |_| 0),
            Chan::SimpleBytes(q) => drain(|| q.get(), |b| b.0.len() as u64),
        };
        let _ = ctl.send(done);
    }
}

fn ctl_recv(rx: &PipeReceiver<Ctl>) -> R<Ctl> {
    rx.recv_timeout(LONG)
        .map_err(|e| format!("control pipe: {e}"))
}

/// Puts item number `i` (`None`: the sentinel) into the runner's handle of the queue.
type PutFn = dyn Fn(Option<u64>) -> R<()>;

/// One repetition: the consumer is told to drain a fresh queue and says it is ready; then
/// the runner puts n items and the `None` sentinel; timed from the first put to the
/// consumer's done report in hand.
fn oneway_run(d: &ActorRef<Drainer>, kind: &str, bytes64: bool, n: u64) -> R<f64> {
    let qe = |e: procession::Error| format!("queue: {e}");
    let pe = |e: procession::Error| format!("pipe: {e}");
    let (tx, rx) = simplex::<Ctl>().map_err(pe)?;
    let blob = Blob(Arc::new(vec![b'x'; 64]));
    let hello = || Cow::Borrowed("hello");
    // The runner's handle, and the one the consumer gets.
    let (chan, put): (Chan, Box<PutFn>) = match (kind, bytes64) {
        ("queue", false) => {
            let q = Queue::<Option<Tup>>::unbounded().map_err(qe)?;
            let c = Chan::QueueTuple(q.clone());
            (
                c,
                Box::new(move |i| q.put(i.map(|i| (i, hello()))).map_err(tell_err)),
            )
        }
        ("queue", true) => {
            let q = Queue::<Option<Blob>>::unbounded().map_err(qe)?;
            let c = Chan::QueueBytes(q.clone());
            (
                c,
                Box::new(move |i| q.put(i.map(|_| blob.clone())).map_err(tell_err)),
            )
        }
        ("simplequeue", false) => {
            let q = SimpleQueue::<Option<Tup>>::new().map_err(qe)?;
            let c = Chan::SimpleTuple(q.clone());
            (
                c,
                Box::new(move |i| q.put(i.map(|i| (i, hello()))).map_err(tell_err)),
            )
        }
        ("simplequeue", true) => {
            let q = SimpleQueue::<Option<Blob>>::new().map_err(qe)?;
            let c = Chan::SimpleBytes(q.clone());
            (
                c,
                Box::new(move |i| q.put(i.map(|_| blob.clone())).map_err(tell_err)),
            )
        }
        _ => return Err(format!("unknown queue kind {kind}")),
    };
    d.tell(Drain(chan, tx)).map_err(tell_err)?;
    match ctl_recv(&rx)? {
        Ctl::Ready => {}
        other => return Err(format!("consumer not ready: {other:?}")),
    }
    let t0 = Instant::now();
    for i in 0..n {
        put(Some(i))?;
    }
    put(None)?;
    let done = ctl_recv(&rx)?;
    let el = t0.elapsed().as_secs_f64();
    let want_bytes = if bytes64 { 64 * n } else { 0 };
    match done {
        Ctl::Done(got, b) if got == n && b == want_bytes => Ok(el),
        other => Err(format!("consumer reported {other:?} for {n} items")),
    }
}

pub(crate) fn bench_queue(cfg: &Cfg, kind: &str, bytes64: bool) -> R<()> {
    let d = held::<Drainer>(Drainer)?;
    let mut run = |n: u64| oneway_run(&d, kind, bytes64, n);
    let (n, els) = measure(cfg, &mut run, 5_000, 1000)?;
    finish_held(&d)?;
    let (label, what) = if bytes64 {
        (
            "bytes64",
            "64-byte byte strings (one shared buffer, a CBOR byte string; the consumer adds \
             up the lengths, total checked)",
        )
    } else {
        ("tuple", "(i, \"hello\") tuples ((u64, Cow<str>))")
    };
    let api = if kind == "queue" {
        "procession::queue::Queue::unbounded()"
    } else {
        "procession::queue::SimpleQueue::new()"
    };
    let id = format!("throughput.{kind}.{label}");
    rate_record(
        &id,
        &format!(
            "{api} (a fresh one per rep): runner q.put(Some(item)), an actor process \
             q.get(); one-way {what} + None sentinel; clock from the first put to the runner \
             receiving the consumer's done-report (count checked) over a simplex pipe \
             (end-to-end delivery); the consumer is started and has said \"ready\" before \
             the clock starts"
        ),
        "msg/s",
        &rates_of(&els, n as f64),
    )
    .i("n_per_rep", n)
    .list("elapsed_s", &els)
    .s("py_id", &id)
    .emit();
    Ok(())
}
