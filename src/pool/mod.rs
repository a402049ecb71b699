//! [`Pool`]: a pool of worker processes, as Python's `multiprocessing.Pool`, typed.
//!
//! A task is a message `M` that the worker actor type `W` handles; the reply is the
//! task's result. `Pool::new(n, args)` starts `n` worker processes of type `W` with
//! `args` (the worker's `create` is Python's *initializer*: it runs once in each worker
//! process). Then [`map`](Pool::map), [`imap`](Pool::imap) (ordered, lazy),
//! [`imap_unordered`](Pool::imap_unordered), [`apply`](Pool::apply),
//! [`apply_async`](Pool::apply_async) and [`starmap`](Pool::starmap) run tasks.
//!
//! Tasks travel in **chunks**: one frame carries `chunksize` tasks and its reply their
//! results, and each worker has a few chunks in flight, so a trivial task costs a few
//! hundred nanoseconds, not a round trip. The default chunk size is Python's:
//! `ceil(len / (4 × workers))` for `map`, 1 for `imap`.
//!
//! **A worker that dies is replaced** (on the same mailbox, so the chunks queued for it
//! are not lost), and the chunk it was running fails with
//! [`Error::ActorDied`] — or is retried once on another
//! worker with [`PoolOptions::retry`]. (Python's `Pool` hangs for ever in this case, and
//! `ProcessPoolExecutor` breaks the whole pool.) With
//! [`maxtasksperchild`](PoolOptions::maxtasksperchild), a worker is replaced after that
//! many tasks.
//!
//! **Dispatch.** Each chunk goes to the worker with the least work outstanding from
//! **every** call at once, so concurrent `apply_async` calls run side by side and an idle
//! worker takes the next task while another is stuck. Each call keeps only a small
//! window of chunks queued per worker (256 tasks, at least 2 chunks), so a slow worker
//! holds back little. Tasks submitted before [`close`](Pool::close) run, and
//! [`join`](Pool::join) waits for them. The worker's spawn arguments are decoded again
//! for every worker and every replacement, and shared handles in them
//! ([`Value`](crate::shared::Value), [`Queue`](crate::queue::Queue),
//! [`Lock`](crate::sync::Lock)…) work in each.
//!
//! # Where procession differs from Python's `Pool`, and why
//!
//! | Python | procession | why |
//! |---|---|---|
//! | `func` is any picklable function | a task is a message `M` the worker type handles | typed end to end |
//! | `initializer(*initargs)` | the worker's `create(args)` | the worker is an actor |
//! | one shared task queue that idle workers pull from | each chunk is pushed to the least loaded worker, a small window per call | a worker's mailbox is its own; the window keeps what waits behind a stuck task small |
//! | a worker that dies hangs the pool (`Pool`) or breaks it (`ProcessPoolExecutor`) | it is replaced; its chunk fails with `ActorDied` (or is retried once with `retry`) | supervision |
//! | no per-task timeout | [`PoolOptions::task_timeout`] kills the worker of a stuck task and fails that chunk only | a stuck task should not cost the pool a worker for ever |
//! | `callback`/`error_callback` arguments | [`AsyncResult::on_ready`], one callback with the `Result` | one `Result` carries both |
//! | `Pool(0)` raises `ValueError` | [`Error::InvalidArgument`] | same check |
//! | `AsyncResult.get()` may wait for ever | `get(timeout)` always has a deadline | every blocking call has one |

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::actor::{
    send_stop, Dispatch, Handles, Message, Pipeline, PipelinedReply, ReplyFailure, Routed,
    StreamItem,
};
use crate::error::{Error, Result};
use crate::mailbox::{Mailbox, SendFail, Wait, LIVENESS_SLICE, STATE_EXITED};
use crate::process::{Exit, SpawnOptions, StartMethod};
use crate::wire::{decode_body, encode_body, push_record, records, FrameKind};
use crossbeam_channel::{Receiver, Sender};

/// Options of a [`Pool`]: the builder of [`Pool::with_options`].
///
/// ```
/// use std::time::Duration;
/// use procession::prelude::*;
/// use procession::pool::{Pool, PoolOptions};
///
/// #[derive(Serialize, Deserialize, Message)]
/// #[message(reply = u64)]
/// struct Double(u64);
///
/// #[derive(Serialize, Deserialize, Actor)]
/// #[actor(handles(Double))]
/// struct Doubler;
///
/// impl Handler<Double> for Doubler {
///     fn handle(&mut self, Double(x): Double, _cx: &mut Context<Self>) -> u64 { 2 * x }
/// }
///
/// let opts = PoolOptions::new()
///     .processes(2)
///     .chunksize(4)                             // tasks per message to a worker
///     .maxtasksperchild(100)                    // a fresh process after 100 tasks
///     .task_timeout(Duration::from_secs(10))    // a stuck task fails, its worker is replaced
///     .retry(true);                             // a chunk whose worker died runs once more
/// let pool = Pool::<Doubler>::with_options(Doubler, opts)?;
/// assert_eq!(pool.map((0..10).map(Double))?.iter().sum::<u64>(), 90);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct PoolOptions {
    processes: Option<usize>,
    chunksize: Option<usize>,
    maxtasksperchild: Option<u64>,
    retry: bool,
    start_method: Option<StartMethod>,
    task_timeout: Option<Duration>,
}

impl PoolOptions {
    /// Default options: one worker per CPU, Python's chunking, no retry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of worker processes (default: the number of CPUs). 0 is rejected when the
    /// pool starts, with [`Error::InvalidArgument`].
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// Tasks per chunk for `map`/`starmap`/`imap*` (default: Python's). 0 is rejected
    /// when the pool starts.
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n);
        self
    }

    /// Replace a worker after it has been given this many tasks. 0 is rejected when the
    /// pool starts (Python raises `ValueError` too).
    pub fn maxtasksperchild(mut self, n: u64) -> Self {
        self.maxtasksperchild = Some(n);
        self
    }

    /// Fails a task that runs longer than `timeout` with [`Error::Timeout`]: the worker
    /// running it is killed and replaced, on the same mailbox, so the tasks queued
    /// behind it are not lost. Only the chunk that ran too long fails (with `map`'s
    /// default chunking a chunk holds several tasks: set `chunksize(1)` to fail exactly
    /// one). Python's `Pool` has no such option: a stuck task holds its worker for ever.
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    fn check(&self) -> Result<()> {
        let zero = |what: &str| Err(Error::InvalidArgument(format!("{what} must be at least 1")));
        if self.processes == Some(0) {
            return zero("Pool processes");
        }
        if self.chunksize == Some(0) {
            return zero("Pool chunksize");
        }
        if self.maxtasksperchild == Some(0) {
            return zero("Pool maxtasksperchild");
        }
        if self.task_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::InvalidArgument(
                "Pool task_timeout must be greater than zero".into(),
            ));
        }
        Ok(())
    }

    /// Retry a chunk once, on another worker, when its worker dies running it.
    pub fn retry(mut self, retry: bool) -> Self {
        self.retry = retry;
        self
    }

    /// Start the workers with this start method.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }
}

struct Worker {
    mb: Arc<Mailbox>,
    /// Tasks given to the current incarnation.
    given: u64,
    /// A stop was queued for the current incarnation (maxtasksperchild).
    retiring: bool,
    restarts: u32,
    /// Tasks sent to it and not answered yet, by every call at once: where the next
    /// chunk goes (the least loaded worker), so concurrent calls spread out and an idle
    /// worker takes the next task.
    load: usize,
}

struct Shared {
    name: &'static str,
    args: Vec<u8>,
    opts: PoolOptions,
    workers: Mutex<Vec<Worker>>,
    closed: std::sync::atomic::AtomicBool,
    /// Set by `terminate`: the tasks in flight died with their workers.
    terminated: std::sync::atomic::AtomicBool,
    /// Maps and imaps in progress; `join` waits for them.
    active_runs: Mutex<usize>,
    runs_done: std::sync::Condvar,
    /// Hands async calls to the pool's dispatcher thread, once it runs.
    dispatcher: Mutex<Option<Sender<NewCall>>>,
}

/// A pool of worker processes of actor type `W`. See the [module docs](self).
///
/// ```
/// use procession::prelude::*;
/// use procession::pool::Pool;
///
/// #[derive(Serialize, Deserialize, Message)]
/// #[message(reply = u64)]
/// struct Square(u64);
///
/// #[derive(Serialize, Deserialize, Actor)]
/// #[actor(handles(Square))]
/// struct Squarer;
///
/// impl Handler<Square> for Squarer {
///     fn handle(&mut self, Square(x): Square, _cx: &mut Context<Self>) -> u64 { x * x }
/// }
///
/// let pool = Pool::<Squarer>::new(2, Squarer)?;
/// assert_eq!(pool.map((1..=4).map(Square))?, vec![1, 4, 9, 16]);
/// assert_eq!(pool.apply(Square(7))?, 49);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), procession::Error>(())
/// ```
pub struct Pool<W> {
    shared: Arc<Shared>,
    _w: PhantomData<fn() -> W>,
}

impl<W> Clone for Pool<W> {
    fn clone(&self) -> Self {
        Pool {
            shared: self.shared.clone(),
            _w: PhantomData,
        }
    }
}

impl<W: Dispatch> Pool<W> {
    /// Starts `processes` workers of type `W`, each created from `args`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 processes; [`Error::StartFailed`] if a worker's
    /// `create` failed; otherwise as [`spawn`](crate::spawn).
    pub fn new(processes: usize, args: W::Args) -> Result<Self> {
        Self::with_options(args, PoolOptions::new().processes(processes))
    }

    /// Starts a pool with options (see [`PoolOptions`] for an example).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an option set to 0; otherwise as [`Pool::new`].
    pub fn with_options(args: W::Args, opts: PoolOptions) -> Result<Self> {
        opts.check()?;
        let n = opts
            .processes
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let mut bytes = Vec::new();
        encode_body(&args, &mut bytes)?;
        let shared = Arc::new(Shared {
            name: W::NAME,
            args: bytes,
            opts,
            workers: Mutex::new(Vec::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
            terminated: std::sync::atomic::AtomicBool::new(false),
            active_runs: Mutex::new(0),
            runs_done: std::sync::Condvar::new(),
            dispatcher: Mutex::new(None),
        });
        let pool = Pool {
            shared,
            _w: PhantomData,
        };
        for _ in 0..n {
            let mb =
                crate::process::start(W::NAME, pool.shared.args.clone(), &pool.spawn_options())?;
            pool.workers().push(Worker {
                mb,
                given: 0,
                retiring: false,
                restarts: 0,
                load: 0,
            });
        }
        Ok(pool)
    }

    fn spawn_options(&self) -> SpawnOptions {
        let mut o = SpawnOptions::new();
        o.method = self.shared.opts.start_method;
        o.supervised = true;
        o
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.shared
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Number of worker processes.
    pub fn processes(&self) -> usize {
        self.workers().len()
    }

    /// The pids of the workers now.
    pub fn pids(&self) -> Vec<u32> {
        self.workers().iter().map(|w| w.mb.pid()).collect()
    }

    /// How many times each worker has been replaced.
    pub fn restarts(&self) -> Vec<u32> {
        self.workers().iter().map(|w| w.restarts).collect()
    }

    /// Replaces workers whose process has exited (crash, or maxtasksperchild).
    fn maintain(&self) {
        let mut workers = self.workers();
        for w in workers.iter_mut() {
            if w.mb.state() != STATE_EXITED || w.mb.is_gone() {
                continue;
            }
            crate::process::fork::reap();
            let exit = Exit::from_raw(w.mb.raw_exit());
            if !w.retiring {
                tracing::warn!(pid = w.mb.pid(), %exit, "pool worker died; replacing it");
            }
            w.mb.reset_for_restart();
            match crate::process::start_on(
                &w.mb,
                self.shared.name,
                self.shared.args.clone(),
                &self.spawn_options(),
            ) {
                Ok(()) => {
                    w.given = 0;
                    w.retiring = false;
                    w.restarts += 1;
                }
                Err(e) => tracing::error!(error = %e, "cannot replace a pool worker"),
            }
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Runtime("the pool is closed".into()));
        }
        Ok(())
    }

    /// Applies `W`'s handler to every item; results in input order. Waits as long as
    /// the tasks take, as Python's `Pool.map` does (a worker that dies gives an error,
    /// never a hang); [`map_timeout`](Pool::map_timeout) bounds the wait.
    ///
    /// # Errors
    /// The first task's error, in input order: [`Error::ActorDied`] if a worker died
    /// running it (after the one retry of [`PoolOptions::retry`]), [`Error::Timeout`] for
    /// a task past [`PoolOptions::task_timeout`], [`Error::Rejected`] if a worker could
    /// not decode it; [`Error::Runtime`] once the pool is closed or terminated.
    pub fn map<M: Message>(&self, items: impl IntoIterator<Item = M>) -> Result<Vec<M::Reply>>
    where
        W: Handles<M>,
    {
        self.map_deadline(items, None)
    }

    /// Like [`map`](Pool::map), but fails with [`Error::Timeout`] if every result is not
    /// in within `timeout` (a task stuck in a handler cannot hold the caller longer).
    ///
    /// # Errors
    /// As [`map`](Pool::map), and [`Error::Timeout`] once `timeout` has passed.
    pub fn map_timeout<M: Message>(
        &self,
        items: impl IntoIterator<Item = M>,
        timeout: Duration,
    ) -> Result<Vec<M::Reply>>
    where
        W: Handles<M>,
    {
        self.map_deadline(items, Some(timeout))
    }

    fn map_deadline<M: Message>(
        &self,
        items: impl IntoIterator<Item = M>,
        timeout: Option<Duration>,
    ) -> Result<Vec<M::Reply>>
    where
        W: Handles<M>,
    {
        let items: Vec<M> = items.into_iter().collect();
        self.map_admitted(items, timeout, Admission::new(self)?)
    }

    /// Tasks per chunk for a map of `n` items: the option, or Python's default (about
    /// four chunks per worker).
    fn chunk_for(&self, n: usize) -> usize {
        let workers = self.processes().max(1);
        self.shared
            .opts
            .chunksize
            .unwrap_or_else(|| n.div_ceil(workers * 4).max(1))
    }

    fn map_admitted<M: Message>(
        &self,
        items: Vec<M>,
        timeout: Option<Duration>,
        admitted: Admission,
    ) -> Result<Vec<M::Reply>>
    where
        W: Handles<M>,
    {
        let chunk = self.chunk_for(items.len());
        let mut out: Vec<Option<M::Reply>> = Vec::new();
        out.resize_with(items.len(), || None);
        let mut run = Run::<W, M>::admitted(self, Box::new(items.into_iter()), chunk, admitted)?;
        run.set_timeout(timeout);
        while let Some(done) = run.next_chunk() {
            let (start, results) = done?;
            for (i, r) in results.into_iter().enumerate() {
                out[start + i] = Some(r);
            }
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| Error::Runtime("a task produced no result".into())))
            .collect()
    }

    /// Like [`map`](Pool::map), for a message built from each item (Python's `starmap`,
    /// which unpacks argument tuples).
    ///
    /// # Errors
    /// As [`map`](Pool::map).
    pub fn starmap<M, A>(&self, items: impl IntoIterator<Item = A>) -> Result<Vec<M::Reply>>
    where
        W: Handles<M>,
        M: Message + From<A>,
    {
        self.map(items.into_iter().map(M::from))
    }

    /// Results in input order, as they become available (lazy: tasks are sent as the
    /// iterator is consumed, a few chunks ahead). A failed task yields its error in its
    /// place, and the iteration goes on past it.
    ///
    /// ```
    /// # use procession::prelude::*;
    /// # use procession::pool::Pool;
    /// # #[derive(Serialize, Deserialize, Message)] #[message(reply = u64)] struct Square(u64);
    /// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Square))] struct Squarer;
    /// # impl Handler<Square> for Squarer {
    /// #     fn handle(&mut self, Square(x): Square, _cx: &mut Context<Self>) -> u64 { x * x }
    /// # }
    /// let pool = Pool::<Squarer>::new(2, Squarer)?;
    /// // An endless input is fine: only what is consumed is sent.
    /// let first: Vec<u64> = pool.imap((1..).map(Square))?.take(3).collect::<Result<_, _>>()?;
    /// assert_eq!(first, [1, 4, 9]);
    /// pool.close();
    /// pool.join()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Runtime`] if the pool is closed or terminated (each task's own error
    /// comes through the iterator).
    pub fn imap<M: Message>(
        &self,
        items: impl IntoIterator<Item = M> + 'static,
    ) -> Result<Imap<W, M>>
    where
        W: Handles<M>,
    {
        let chunk = self.shared.opts.chunksize.unwrap_or(1);
        Ok(Imap {
            run: Run::new(self, Box::new(items.into_iter()), chunk)?,
            ready: HashMap::new(),
            next: 0,
            buffer: VecDeque::new(),
            ordered: true,
        })
    }

    /// Results in completion order (lazy).
    ///
    /// # Errors
    /// As [`imap`](Pool::imap).
    pub fn imap_unordered<M: Message>(
        &self,
        items: impl IntoIterator<Item = M> + 'static,
    ) -> Result<Imap<W, M>>
    where
        W: Handles<M>,
    {
        let mut it = self.imap(items)?;
        it.ordered = false;
        Ok(it)
    }

    /// Runs one task and waits for its result, as long as it takes (as Python's
    /// `Pool.apply`); [`apply_timeout`](Pool::apply_timeout) bounds the wait.
    ///
    /// # Errors
    /// As [`map`](Pool::map), for the one task.
    pub fn apply<M: Message>(&self, msg: M) -> Result<M::Reply>
    where
        W: Handles<M>,
    {
        self.apply_deadline(msg, None)
    }

    /// Like [`apply`](Pool::apply), but fails with [`Error::Timeout`] after `timeout`.
    ///
    /// # Errors
    /// As [`apply`](Pool::apply), and [`Error::Timeout`] once `timeout` has passed.
    pub fn apply_timeout<M: Message>(&self, msg: M, timeout: Duration) -> Result<M::Reply>
    where
        W: Handles<M>,
    {
        self.apply_deadline(msg, Some(timeout))
    }

    fn apply_deadline<M: Message>(&self, msg: M, timeout: Option<Duration>) -> Result<M::Reply>
    where
        W: Handles<M>,
    {
        let mut run = Run::<W, M>::new(self, Box::new(std::iter::once(msg)), 1)?;
        run.set_timeout(timeout);
        match run.next_chunk() {
            Some(Ok((_, mut v))) if v.len() == 1 => Ok(v.remove(0)),
            Some(Err(e)) => Err(e),
            _ => Err(Error::Runtime("the task produced no result".into())),
        }
    }

    /// Starts one task and returns at once; [`AsyncResult::get`] waits for the result.
    /// A task submitted before [`close`](Pool::close) runs, and [`join`](Pool::join)
    /// waits for it, as in Python. Every async call of a pool is driven by one
    /// dispatcher thread of the pool, whatever their number, and their results come
    /// through the process's reply router.
    ///
    /// ```
    /// # use procession::prelude::*;
    /// # use procession::pool::Pool;
    /// # #[derive(Serialize, Deserialize, Message)] #[message(reply = u64)] struct Square(u64);
    /// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles(Square))] struct Squarer;
    /// # impl Handler<Square> for Squarer {
    /// #     fn handle(&mut self, Square(x): Square, _cx: &mut Context<Self>) -> u64 { x * x }
    /// # }
    /// use std::time::Duration;
    /// let pool = Pool::<Squarer>::new(2, Squarer)?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let pending = pool
    ///     .apply_async(Square(12))
    ///     .on_ready(move |r| tx.send(*r.as_ref().unwrap()).unwrap()); // Python's callback
    /// assert_eq!(pending.get(Duration::from_secs(10))?, 144);
    /// assert_eq!(rx.recv().unwrap(), 144);
    /// pool.close();
    /// pool.join()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn apply_async<M>(&self, msg: M) -> AsyncResult<M::Reply>
    where
        W: Handles<M> + 'static,
        M: Message,
    {
        self.run_async(vec![msg], 1, |r: Result<Vec<M::Reply>>| match r {
            Ok(mut v) if v.len() == 1 => Ok(v.remove(0)),
            Ok(_) => Err(Error::Runtime("the task produced no result".into())),
            Err(e) => Err(e),
        })
    }

    /// [`map`](Pool::map) without waiting (Python's `map_async`): the results, in input
    /// order, come through the [`AsyncResult`].
    pub fn map_async<M>(&self, items: impl IntoIterator<Item = M>) -> AsyncResult<Vec<M::Reply>>
    where
        W: Handles<M> + 'static,
        M: Message,
    {
        let items: Vec<M> = items.into_iter().collect();
        let chunk = self.chunk_for(items.len());
        self.run_async(items, chunk, |r| r)
    }

    /// [`starmap`](Pool::starmap) without waiting (Python's `starmap_async`).
    pub fn starmap_async<M, A>(
        &self,
        items: impl IntoIterator<Item = A>,
    ) -> AsyncResult<Vec<M::Reply>>
    where
        W: Handles<M> + 'static,
        M: Message + From<A>,
    {
        self.map_async(items.into_iter().map(M::from))
    }

    /// Admits a call now (so that `close` after it does not refuse it, and `join` waits
    /// for it), then hands it to the pool's dispatcher thread, which drives every async
    /// call of the pool at once: their replies come through the process's reply router
    /// on one channel. `done` turns the tasks' results into the call's.
    fn run_async<M, R>(
        &self,
        items: Vec<M>,
        chunk: usize,
        done: impl FnOnce(Result<Vec<M::Reply>>) -> Result<R> + Send + 'static,
    ) -> AsyncResult<R>
    where
        W: Handles<M> + 'static,
        M: Message,
        R: Send + 'static,
    {
        let slot = Arc::new(AsyncSlot {
            state: Mutex::new(AsyncState {
                value: None,
                on_ready: None,
            }),
            ready: std::sync::Condvar::new(),
        });
        let admitted = match Admission::new(self) {
            Ok(a) => a,
            Err(e) => {
                slot.fulfil(Err(e));
                return AsyncResult { slot };
            }
        };
        let (pool, delivered) = (self.clone(), slot.clone());
        let delivery = admitted.another();
        let call: NewCall = Box::new(move |tx, tag| {
            let n = items.len();
            let pipe = match Pipeline::on_stream(tx, tag) {
                Ok(p) => p,
                Err(e) => {
                    delivered.fulfil(done(Err(e)));
                    return None;
                }
            };
            let run =
                Run::<W, M>::with_pipe(&pool, Box::new(items.into_iter()), chunk, admitted, pipe);
            let mut out = Vec::new();
            out.resize_with(n, || None);
            Some(Box::new(MapCall {
                run,
                out,
                deliver: Some(Box::new(move |r| delivered.fulfil(done(r)))),
                _delivery: delivery,
            }) as Box<dyn AsyncCall>)
        });
        if let Err(e) = self.dispatch(call) {
            slot.fulfil(Err(e));
        }
        AsyncResult { slot }
    }

    /// Hands `call` to the dispatcher thread, starting it first if need be.
    fn dispatch(&self, call: NewCall) -> Result<()> {
        let mut d = self
            .shared
            .dispatcher
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let call = match d.as_ref() {
            Some(tx) => match tx.send(call) {
                Ok(()) => return Ok(()),
                // Its thread has ended (it cannot, unless it panicked): start another.
                Err(crossbeam_channel::SendError(call)) => call,
            },
            None => call,
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("procession-pool".into())
            .spawn(move || dispatcher_main(rx))
            .map_err(|e| Error::io("cannot start the pool's dispatcher thread", e))?;
        let sent = tx.send(call);
        *d = Some(tx);
        sent.map_err(|_| Error::Runtime("the pool's dispatcher thread ended".into()))
    }

    /// Accepts no more tasks (Python's `close`); [`join`](Pool::join) then waits for the
    /// workers to finish what they have and exit.
    pub fn close(&self) {
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// After [`close`](Pool::close): waits for the maps and imaps in progress to finish
    /// (drop an imap you will not finish first) and for every async result and its
    /// `on_ready` callback to be delivered, then stops each worker and waits for it to
    /// exit.
    ///
    /// Waits as long as that takes (as Python's `Pool.join`);
    /// [`join_timeout`](Pool::join_timeout) bounds the wait for the maps in progress.
    ///
    /// # Errors
    /// [`Error::Runtime`] if the pool was not closed (Python raises `ValueError`).
    pub fn join(&self) -> Result<()> {
        self.join_deadline(None)
    }

    /// Like [`join`](Pool::join), but fails with [`Error::Timeout`] if the maps and
    /// imaps in progress have not finished within `timeout` (the workers keep running;
    /// [`terminate`](Pool::terminate) stops them at once).
    ///
    /// # Errors
    /// As [`join`](Pool::join), and [`Error::Timeout`] if the workers did not all exit
    /// in time.
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        self.join_deadline(Some(timeout))
    }

    fn join_deadline(&self, timeout: Option<Duration>) -> Result<()> {
        self.check_closed()?;
        let deadline = Wait::from_timeout(timeout);
        let mut active = self
            .shared
            .active_runs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while *active > 0 {
            let Some(slice) = deadline.slice() else {
                return Err(Error::Timeout(timeout.unwrap_or_default()));
            };
            active = self
                .shared
                .runs_done
                .wait_timeout(active, slice)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(active);
        let workers = std::mem::take(&mut *self.workers());
        for w in &workers {
            // A worker stuck in a handler is killed once its stop cannot be queued.
            let wait = Wait::from_timeout(Some(crate::actor::DEFAULT_STOP_TIMEOUT));
            if send_stop(&w.mb, Some(w.mb.incarnation()), wait).is_err() {
                crate::process::fork::kill_consumer(w.mb.id());
            }
        }
        for w in &workers {
            // With a deadline, a worker still busy when it passes is killed (and its exit,
            // which then follows at once, waited for).
            if !wait_exited(&w.mb, deadline) {
                crate::process::fork::kill_consumer(w.mb.id());
                wait_exited(&w.mb, Wait::Forever);
            }
            w.mb.set_final();
            w.mb.unlink();
        }
        Ok(())
    }

    fn check_closed(&self) -> Result<()> {
        if !self.shared.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Runtime(
                "join() needs close() (or terminate()) first".into(),
            ));
        }
        Ok(())
    }

    /// Stops the workers at once (SIGKILL) and waits for them; tasks in flight fail.
    pub fn terminate(&self) {
        self.close();
        self.shared
            .terminated
            .store(true, std::sync::atomic::Ordering::SeqCst);
        terminate(&mut self.workers());
    }
}

/// Waits until the consumer of `mb` has exited (or its runtime is lost), until `wait`'s
/// deadline; whether it has.
fn wait_exited(mb: &Mailbox, wait: Wait) -> bool {
    while mb.state() != STATE_EXITED && !mb.is_lost() {
        crate::process::fork::reap();
        crate::mailbox::probe_runtime();
        let Some(slice) = wait.slice() else {
            return false;
        };
        mb.wait_state_change(mb.state(), slice);
    }
    true
}

fn terminate(workers: &mut Vec<Worker>) {
    for w in workers.iter() {
        if w.mb.state() != STATE_EXITED {
            // Through the process that started it, never by the pid in shared memory.
            crate::process::fork::kill_consumer(w.mb.id());
        }
    }
    for w in workers.drain(..) {
        wait_exited(&w.mb, Wait::Forever);
        w.mb.set_final();
        w.mb.unlink();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut workers =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        terminate(&mut workers);
    }
}

/// A call in progress, counted in `active_runs` from the moment it was admitted (while
/// the pool was open) until its run ends.
struct Admission {
    shared: Option<Arc<Shared>>,
}

impl Admission {
    fn new<W: Dispatch>(pool: &Pool<W>) -> Result<Admission> {
        let mut active = pool
            .shared
            .active_runs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Checked under the lock `join` waits on, so a call is either refused or waited for.
        pool.check_open()?;
        *active += 1;
        Ok(Admission {
            shared: Some(pool.shared.clone()),
        })
    }

    /// A second count for the same call, taken while this one is held (so `close` cannot
    /// have slipped in between): an async call keeps it until its result is delivered,
    /// so that `join` returns only once every result and callback is in place.
    fn another(&self) -> Admission {
        if let Some(shared) = &self.shared {
            *shared.active_runs.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
        Admission {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let mut active = shared.active_runs.lock().unwrap_or_else(|e| e.into_inner());
            *active = active.saturating_sub(1);
            shared.runs_done.notify_all();
        }
    }
}

/// A callback waiting for an async result.
type OnReady<R> = Box<dyn FnOnce(&Result<R>) + Send>;

struct AsyncState<R> {
    value: Option<Result<R>>,
    on_ready: Option<OnReady<R>>,
}

struct AsyncSlot<R> {
    state: Mutex<AsyncState<R>>,
    ready: std::sync::Condvar,
}

impl<R> AsyncSlot<R> {
    fn fulfil(&self, value: Result<R>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = st.on_ready.take() {
            f(&value);
        }
        st.value = Some(value);
        self.ready.notify_all();
    }
}

/// The result of [`Pool::apply_async`], [`Pool::map_async`] and
/// [`Pool::starmap_async`] (Python's `AsyncResult`).
pub struct AsyncResult<R> {
    slot: Arc<AsyncSlot<R>>,
}

impl<R> AsyncResult<R> {
    /// Waits at most `timeout` for the result; [`Error::Timeout`] if it is not ready
    /// (the task goes on).
    ///
    /// # Errors
    /// [`Error::Timeout`] if the result is not ready in `timeout`; otherwise the task's
    /// own error, as [`apply`](Pool::apply) gives it.
    pub fn get(self, timeout: Duration) -> Result<R> {
        let st = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        let (mut st, _) = self
            .slot
            .ready
            .wait_timeout_while(st, timeout, |st| st.value.is_none())
            .unwrap_or_else(|e| e.into_inner());
        st.value.take().unwrap_or(Err(Error::Timeout(timeout)))
    }

    /// Whether the result is ready.
    pub fn ready(&self) -> bool {
        let st = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        st.value.is_some()
    }

    /// Calls `f` with the result once it is ready (at once, on this thread, if it is
    /// already) — Python's `callback` and `error_callback` in one. Otherwise it runs on
    /// the pool's dispatcher thread, which drives every async call of the pool: keep it
    /// short (Python's callbacks run on its result-handler thread, with the same advice).
    pub fn on_ready(self, f: impl FnOnce(&Result<R>) + Send + 'static) -> Self {
        {
            let mut st = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
            match &st.value {
                Some(v) => f(v),
                None => st.on_ready = Some(Box::new(f)),
            }
        }
        self
    }
}

/// Tasks in flight per worker: enough chunks to keep each worker busy while results
/// travel back (at least 4 chunks).
const WINDOW_TASKS: usize = 256;

struct Outstanding {
    worker: usize,
    /// The worker's pid when the chunk was sent (an error names the process that died).
    pid: u32,
    start: usize,
    body: Vec<u8>,
    len: usize,
    retried: bool,
    /// When its worker was first seen handling it (for the task timeout).
    running_since: Option<Instant>,
    /// Its worker was killed because it ran longer than the task timeout.
    timed_out: bool,
}

/// An async call, built on the dispatcher thread from the stream it answers on (its
/// sender, and its tag in it); `None` if it failed at once (its result is delivered).
type NewCall = Box<dyn FnOnce(Sender<StreamItem>, u64) -> Option<Box<dyn AsyncCall>> + Send>;

/// A call the dispatcher drives.
trait AsyncCall {
    /// Takes one routed answer (or none) and goes as far as it can without waiting;
    /// `true` once its result has been delivered.
    fn advance(&mut self, incoming: Option<(u64, Routed)>) -> bool;
}

/// Delivers an async call's results.
type Deliver<R> = Box<dyn FnOnce(Result<Vec<R>>)>;

/// `apply_async`/`map_async`: the tasks' results, in input order, to deliver at the end.
struct MapCall<W, M: Message> {
    run: Run<W, M>,
    out: Vec<Option<M::Reply>>,
    deliver: Option<Deliver<M::Reply>>,
    /// Held until the result and its callback are delivered (`join` waits for it).
    _delivery: Admission,
}

impl<W: Dispatch + Handles<M>, M: Message> AsyncCall for MapCall<W, M> {
    fn advance(&mut self, incoming: Option<(u64, Routed)>) -> bool {
        let mut incoming = incoming
            .and_then(|(corr, routed)| self.run.pipe.answer(corr, routed).map(|r| (corr, r)));
        loop {
            let result = match self.run.advance(incoming.take()) {
                Progress::Chunk(Ok((start, results))) => {
                    for (i, r) in results.into_iter().enumerate() {
                        if let Some(slot) = self.out.get_mut(start + i) {
                            *slot = Some(r);
                        }
                    }
                    continue;
                }
                Progress::Chunk(Err(e)) => Err(e),
                Progress::Done => std::mem::take(&mut self.out)
                    .into_iter()
                    .map(|r| r.ok_or_else(|| Error::Runtime("a task produced no result".into())))
                    .collect(),
                Progress::Waiting | Progress::Replacing => return false,
            };
            if let Some(deliver) = self.deliver.take() {
                deliver(result);
            }
            return true;
        }
    }
}

/// The dispatcher thread of one pool: drives every async call of it, taking their
/// replies from one channel fed by the reply router, and gives each call a step at
/// least every [`LIVENESS_SLICE`] (task timeouts, worker replacement). It ends once the
/// pool is gone and no call remains.
fn dispatcher_main(new: Receiver<NewCall>) {
    let (tx, replies) = crossbeam_channel::unbounded::<StreamItem>();
    let mut calls: HashMap<u64, Box<dyn AsyncCall>> = HashMap::new();
    let mut next_tag = 1u64;
    let mut new = Some(new);
    let mut last_tick = Instant::now();
    // Runs one step of a call; a call that panics is dropped (its admission with it).
    let step = |call: &mut Box<dyn AsyncCall>, incoming: Option<(u64, Routed)>| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.advance(incoming)))
            .unwrap_or_else(|_| {
                tracing::error!("a pool's async call panicked in its dispatcher; dropped");
                true
            })
    };
    loop {
        let never = crossbeam_channel::never();
        let new_rx = new.as_ref().unwrap_or(&never);
        crossbeam_channel::select! {
            recv(new_rx) -> c => match c {
                Ok(make) => {
                    let tag = next_tag;
                    next_tag += 1;
                    if let Some(mut call) = make(tx.clone(), tag) {
                        if !step(&mut call, None) {
                            calls.insert(tag, call);
                        }
                    }
                }
                Err(_) => new = None,
            },
            recv(replies) -> r => {
                if let Ok((tag, corr, routed)) = r {
                    if let Some(call) = calls.get_mut(&tag) {
                        if step(call, Some((corr, routed))) {
                            calls.remove(&tag);
                        }
                    }
                }
            },
            default(LIVENESS_SLICE) => {},
        }
        if new.is_none() && calls.is_empty() {
            return;
        }
        if last_tick.elapsed() >= LIVENESS_SLICE {
            calls.retain(|_, call| !step(call, None));
            last_tick = Instant::now();
        }
    }
}

/// Where a call stands after [`Run::advance`].
enum Progress<R> {
    /// A chunk finished: its first index and results, or its error.
    Chunk(Result<(usize, Vec<R>)>),
    /// Every task is done.
    Done,
    /// Waiting for replies.
    Waiting,
    /// Tasks remain, but every worker is being replaced: waiting for one.
    Replacing,
}

/// One map/imap: sends chunks to workers and collects their results.
struct Run<W, M: Message> {
    pool: Pool<W>,
    items: std::iter::Peekable<Box<dyn Iterator<Item = M>>>,
    next_index: usize,
    chunk: usize,
    pipe: Pipeline,
    outstanding: HashMap<u64, Outstanding>,
    /// Chunks of this call in flight, per worker (its window).
    in_flight: Vec<usize>,
    /// Tasks of this call counted in each worker's `load`, released as they come back.
    tasks_out: Vec<usize>,
    /// When the whole call must have finished, and the timeout it came from.
    deadline: Option<(Instant, Duration)>,
    /// `(start, len)` of the chunk whose error `next_chunk` returned last (an ordered
    /// imap yields that error in its place and goes on past it).
    last_failed: Option<(usize, usize)>,
    _admitted: Admission,
}

impl<W: Dispatch + Handles<M>, M: Message> Run<W, M> {
    fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.deadline = timeout.and_then(|t| Some((Instant::now().checked_add(t)?, t)));
    }

    fn new(pool: &Pool<W>, items: Box<dyn Iterator<Item = M>>, chunk: usize) -> Result<Self> {
        Self::admitted(pool, items, chunk, Admission::new(pool)?)
    }

    fn admitted(
        pool: &Pool<W>,
        items: Box<dyn Iterator<Item = M>>,
        chunk: usize,
        admitted: Admission,
    ) -> Result<Self> {
        Ok(Self::with_pipe(
            pool,
            items,
            chunk,
            admitted,
            Pipeline::new()?,
        ))
    }

    /// A call whose replies come through `pipe`.
    fn with_pipe(
        pool: &Pool<W>,
        items: Box<dyn Iterator<Item = M>>,
        chunk: usize,
        admitted: Admission,
        pipe: Pipeline,
    ) -> Self {
        let n = pool.processes();
        Run {
            pool: pool.clone(),
            items: items.peekable(),
            next_index: 0,
            chunk,
            pipe,
            outstanding: HashMap::new(),
            in_flight: vec![0; n],
            tasks_out: vec![0; n],
            deadline: None,
            last_failed: None,
            _admitted: admitted,
        }
    }

    /// Sends chunks while some worker has room in this call's window.
    fn pump(&mut self) -> Result<()> {
        loop {
            if !self.has_room() {
                return Ok(());
            }
            let mut body = Vec::new();
            let start = self.next_index;
            let mut one = Vec::new();
            for item in self.items.by_ref().take(self.chunk) {
                one.clear();
                encode_body(&item, &mut one)?;
                push_record(&mut body, &one);
                self.next_index += 1;
            }
            let len = self.next_index - start;
            if len == 0 {
                return Ok(());
            }
            let worker = self.reserve(len);
            self.send(
                worker,
                Outstanding {
                    worker,
                    pid: 0,
                    start,
                    body,
                    len,
                    retried: false,
                    running_since: None,
                    timed_out: false,
                },
            )?;
        }
    }

    /// Chunks per worker this call keeps in flight: enough that a worker never waits for
    /// the next one while a reply travels, few enough that a worker that is slow (or
    /// stuck) holds back little: the rest goes to the workers that are free.
    fn window(&self) -> usize {
        (WINDOW_TASKS / self.chunk).max(2)
    }

    fn has_room(&self) -> bool {
        let workers = self.pool.workers();
        (0..self.in_flight.len().min(workers.len()))
            .any(|i| self.in_flight[i] < self.window() && !workers[i].retiring)
    }

    /// Picks the worker for a chunk of `len` tasks and counts them in its load: the
    /// least loaded by **every** call, among those with room in this call's window (any,
    /// if all are being replaced). Done under the workers' lock, so two calls at once
    /// pick different idle workers.
    fn reserve(&mut self, len: usize) -> usize {
        let window = self.window();
        let mut workers = self.pool.workers();
        let n = self.in_flight.len().min(workers.len());
        let pick = (0..n)
            .filter(|&i| self.in_flight[i] < window && !workers[i].retiring)
            .min_by_key(|&i| workers[i].load)
            .or_else(|| (0..n).min_by_key(|&i| workers[i].load))
            .unwrap_or(0);
        if let Some(w) = workers.get_mut(pick) {
            w.load += len;
            self.tasks_out[pick] += len;
        }
        pick
    }

    /// The tasks of a chunk came back (or will not): uncounts them from its worker.
    fn release(&mut self, worker: usize, len: usize) {
        let Some(out) = self.tasks_out.get_mut(worker) else {
            return;
        };
        let len = len.min(*out);
        *out -= len;
        if let Some(w) = self.pool.workers().get_mut(worker) {
            w.load = w.load.saturating_sub(len);
        }
    }

    /// Kills a worker that has been handling one of this call's chunks for longer than
    /// the task timeout; its chunk then fails with `Timeout` (the reply says it died).
    fn enforce_task_timeout(&mut self) {
        let Some(limit) = self.pool.shared.opts.task_timeout else {
            return;
        };
        let inbox = self.pipe.inbox_id();
        let now = Instant::now();
        let mbs: Vec<Option<Arc<Mailbox>>> = {
            let workers = self.pool.workers();
            (0..self.in_flight.len())
                .map(|i| workers.get(i).map(|w| w.mb.clone()))
                .collect()
        };
        for (&corr, o) in self.outstanding.iter_mut() {
            let Some(Some(mb)) = mbs.get(o.worker) else {
                continue;
            };
            if mb.handling() != Some((inbox, corr)) {
                o.running_since = None;
                continue;
            }
            let since = *o.running_since.get_or_insert(now);
            if now.duration_since(since) >= limit {
                tracing::warn!(
                    pid = o.pid,
                    ?limit,
                    "a pool task ran past its timeout; killing its worker"
                );
                o.timed_out = true;
                // A message type that is redelivered comes back to the next incarnation:
                // its time starts again, and it is killed again if it hangs again.
                o.running_since = None;
                // Through the process that started it, never by a pid in shared memory.
                crate::process::fork::kill_consumer(mb.id());
            }
        }
    }

    fn send(&mut self, worker: usize, mut o: Outstanding) -> Result<()> {
        loop {
            let Some(mb) = self.pool.workers().get(worker).map(|w| w.mb.clone()) else {
                return Err(Error::Runtime("the pool was terminated".into()));
            };
            o.pid = mb.pid();
            let wait = Wait::from_timeout(Some(LIVENESS_SLICE));
            match self
                .pipe
                .send(&mb, FrameKind::Batch, M::TAG_ID, &o.body, wait)
            {
                Ok(corr) => {
                    self.in_flight[worker] += 1;
                    let max = self.pool.shared.opts.maxtasksperchild;
                    let mut workers = self.pool.workers();
                    // (The pool may have been terminated since the send.)
                    if let Some(w) = workers.get_mut(worker) {
                        w.given += o.len as u64;
                        if max.is_some_and(|m| w.given >= m) && !w.retiring {
                            w.retiring = true;
                            let _ = send_stop(&w.mb, Some(w.mb.incarnation()), Wait::Forever);
                        }
                    }
                    self.outstanding.insert(corr, o);
                    return Ok(());
                }
                Err(SendFail::Timeout | SendFail::Full | SendFail::Dead | SendFail::Corrupt) => {
                    self.pool.maintain()
                }
                Err(SendFail::Lost) => return Err(Error::RuntimeLost),
                Err(SendFail::TooLarge) => {
                    return Err(Error::Runtime(
                        "a chunk exceeds the worker's maximum frame size; use a smaller chunksize"
                            .into(),
                    ))
                }
            }
        }
    }

    /// The next finished chunk: its first index and results (a blocking call's loop).
    fn next_chunk(&mut self) -> Option<Result<(usize, Vec<M::Reply>)>> {
        let mut incoming = None;
        loop {
            match self.advance(incoming.take()) {
                Progress::Chunk(r) => return Some(r),
                Progress::Done => return None,
                Progress::Replacing => {
                    let first = self.pool.workers().first().map(|w| w.mb.clone());
                    if let Some(mb) = first {
                        mb.wait_state_change(mb.state(), LIVENESS_SLICE);
                    }
                }
                Progress::Waiting => {
                    let slice = match self.deadline {
                        Some((at, _)) => at
                            .saturating_duration_since(Instant::now())
                            .min(LIVENESS_SLICE),
                        None => LIVENESS_SLICE,
                    };
                    incoming = self.pipe.recv(Wait::from_timeout(Some(slice)));
                }
            }
        }
    }

    /// One step of the call, without waiting: takes the reply that came (if any), then
    /// checks the deadline, sends what the windows allow, replaces workers and enforces
    /// the task timeout. The blocking loop above and the pool's dispatcher of async
    /// calls both drive a call with it.
    fn advance(&mut self, incoming: Option<(u64, PipelinedReply)>) -> Progress<M::Reply> {
        if let Some((corr, reply)) = incoming {
            // (No entry: a late reply to a chunk already retried.)
            if let Some(o) = self.outstanding.remove(&corr) {
                self.in_flight[o.worker] = self.in_flight[o.worker].saturating_sub(1);
                self.release(o.worker, o.len);
                let place = (o.start, o.len);
                if let Some(r) = self.finish(o, reply) {
                    self.last_failed = r.is_err().then_some(place);
                    return Progress::Chunk(r);
                }
            }
        }
        if let Some((at, timeout)) = self.deadline {
            if Instant::now() >= at {
                return Progress::Chunk(Err(Error::Timeout(timeout)));
            }
        }
        if let Err(e) = self.pump() {
            return Progress::Chunk(Err(e));
        }
        if self
            .pool
            .shared
            .terminated
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            // terminate() took the workers away: nothing in flight will come back.
            // Its tasks died with their workers.
            let lost = std::mem::take(&mut self.outstanding);
            if let Some(o) = lost.into_values().next() {
                return Progress::Chunk(Err(Error::ActorDied {
                    actor: self.pool.shared.name.to_string(),
                    pid: o.pid,
                    exit: Some(Exit::Signaled(9)),
                }));
            }
            if self.items.peek().is_some() {
                return Progress::Chunk(Err(Error::Runtime("the pool was terminated".into())));
            }
            return Progress::Done;
        }
        if self.outstanding.is_empty() {
            // Done once no task remains...
            if self.items.peek().is_none() {
                return Progress::Done;
            }
            // ...but tasks remain and every worker is being replaced (maxtasksperchild):
            // wait for a replacement.
            self.pool.maintain();
            return Progress::Replacing;
        }
        self.pool.maintain();
        self.enforce_task_timeout();
        Progress::Waiting
    }

    fn finish(
        &mut self,
        o: Outstanding,
        reply: PipelinedReply,
    ) -> Option<Result<(usize, Vec<M::Reply>)>> {
        match reply {
            Ok(body) => Some(decode_results::<M::Reply>(&body, o.len).map(|v| (o.start, v))),
            Err(ReplyFailure::Died(_, _)) if o.timed_out => Some(Err(Error::Timeout(
                self.pool.shared.opts.task_timeout.unwrap_or_default(),
            ))),
            Err(ReplyFailure::Died(exit, _)) => {
                if self.pool.shared.opts.retry && !o.retried {
                    tracing::warn!(%exit, "a pool worker died running a chunk; retrying it once");
                    self.pool.maintain();
                    let worker = self.reserve(o.len);
                    let retry = Outstanding {
                        worker,
                        retried: true,
                        running_since: None,
                        ..o
                    };
                    return self.send(worker, retry).err().map(Err);
                }
                Some(Err(Error::ActorDied {
                    actor: self.pool.shared.name.to_string(),
                    pid: o.pid,
                    exit: Some(exit),
                }))
            }
            Err(ReplyFailure::Rejected(source)) => Some(Err(Error::Rejected {
                actor: self.pool.shared.name.to_string(),
                source,
            })),
            Err(ReplyFailure::NoReply) => Some(Err(Error::NoReply {
                actor: self.pool.shared.name.to_string(),
            })),
            Err(ReplyFailure::TooLarge { len, max }) => Some(Err(Error::ReplyTooLarge {
                actor: self.pool.shared.name.to_string(),
                len,
                max,
            })),
        }
    }
}

impl<W, M: Message> Drop for Run<W, M> {
    fn drop(&mut self) {
        // Tasks never answered (an imap dropped early, a timeout) no longer count.
        let mut workers = self
            .pool
            .shared
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (w, out) in workers.iter_mut().zip(&self.tasks_out) {
            w.load = w.load.saturating_sub(*out);
        }
    }
}

fn decode_results<R: DeserializeOwned>(body: &[u8], expected: usize) -> Result<Vec<R>> {
    let recs = records(body).ok_or_else(|| Error::Runtime("a malformed chunk reply".into()))?;
    if recs.len() != expected {
        return Err(Error::Runtime(format!(
            "a chunk reply holds {} results, not {expected}",
            recs.len()
        )));
    }
    recs.into_iter()
        .map(|r| decode_body::<R>(r, "task result").map_err(Error::from))
        .collect()
}

/// A chunk back ahead of its turn: its results, or its error and its length.
type ReadyChunk<R> = std::result::Result<Vec<R>, (Error, usize)>;

/// The iterator of [`Pool::imap`] and [`Pool::imap_unordered`].
pub struct Imap<W, M: Message> {
    run: Run<W, M>,
    /// Chunks that came back ahead of their turn (ordered mode), by start index: their
    /// results, or their error and length.
    ready: HashMap<usize, ReadyChunk<M::Reply>>,
    next: usize,
    buffer: VecDeque<M::Reply>,
    ordered: bool,
}

impl<W: Dispatch + Handles<M>, M: Message> Iterator for Imap<W, M> {
    type Item = Result<M::Reply>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.buffer.pop_front() {
                return Some(Ok(r));
            }
            if self.ordered {
                match self.ready.remove(&self.next) {
                    Some(Ok(chunk)) => {
                        self.next += chunk.len();
                        self.buffer.extend(chunk);
                        continue;
                    }
                    // A failed chunk yields its error in its place; the rest goes on.
                    Some(Err((e, len))) => {
                        self.next += len;
                        return Some(Err(e));
                    }
                    None => {}
                }
            }
            match self.run.next_chunk()? {
                Ok((start, results)) if self.ordered => {
                    self.ready.insert(start, Ok(results));
                }
                Ok((_, results)) => self.buffer.extend(results),
                Err(e) => match self.run.last_failed.take() {
                    Some((start, len)) if self.ordered => {
                        self.ready.insert(start, Err((e, len)));
                    }
                    _ => return Some(Err(e)),
                },
            }
        }
    }
}
