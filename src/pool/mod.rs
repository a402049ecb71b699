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
//! [`Error::ActorDied`](crate::Error::ActorDied) — or is retried once on another
//! worker with [`PoolOptions::retry`]. (Python's `Pool` hangs for ever in this case, and
//! `ProcessPoolExecutor` breaks the whole pool.) With
//! [`maxtasksperchild`](PoolOptions::maxtasksperchild), a worker is replaced after that
//! many tasks.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::actor::{send_stop, Dispatch, Handles, Message, Pipeline, PipelinedReply, ReplyFailure};
use crate::error::{Error, Result};
use crate::mailbox::{Mailbox, SendFail, Wait, LIVENESS_SLICE, STATE_EXITED};
use crate::process::{Exit, SpawnOptions, StartMethod};
use crate::wire::{decode_body, encode_body, push_record, records, FrameKind};

/// Options of a [`Pool`].
#[derive(Debug, Clone, Default)]
pub struct PoolOptions {
    processes: Option<usize>,
    chunksize: Option<usize>,
    maxtasksperchild: Option<u64>,
    retry: bool,
    start_method: Option<StartMethod>,
}

impl PoolOptions {
    /// Default options: one worker per CPU, Python's chunking, no retry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of worker processes (default: the number of CPUs).
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n.max(1));
        self
    }

    /// Tasks per chunk for `map`/`starmap`/`imap*` (default: Python's).
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n.max(1));
        self
    }

    /// Replace a worker after it has been given this many tasks.
    pub fn maxtasksperchild(mut self, n: u64) -> Self {
        self.maxtasksperchild = Some(n.max(1));
        self
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
    pub fn new(processes: usize, args: W::Args) -> Result<Self> {
        Self::with_options(args, PoolOptions::new().processes(processes))
    }

    /// Starts a pool with options.
    pub fn with_options(args: W::Args, opts: PoolOptions) -> Result<Self> {
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
    pub fn map<M: Message>(&self, items: impl IntoIterator<Item = M>) -> Result<Vec<M::Reply>>
    where
        W: Handles<M>,
    {
        self.map_deadline(items, None)
    }

    /// Like [`map`](Pool::map), but fails with [`Error::Timeout`] if every result is not
    /// in within `timeout` (a task stuck in a handler cannot hold the caller longer).
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
        let workers = self.processes().max(1);
        let chunk = self
            .shared
            .opts
            .chunksize
            .unwrap_or_else(|| items.len().div_ceil(workers * 4).max(1));
        let mut out: Vec<Option<M::Reply>> = Vec::new();
        out.resize_with(items.len(), || None);
        let mut run = Run::<W, M>::new(self, Box::new(items.into_iter()), chunk)?;
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
    pub fn starmap<M, A>(&self, items: impl IntoIterator<Item = A>) -> Result<Vec<M::Reply>>
    where
        W: Handles<M>,
        M: Message + From<A>,
    {
        self.map(items.into_iter().map(M::from))
    }

    /// Results in input order, as they become available (lazy: tasks are sent as the
    /// iterator is consumed, a few chunks ahead).
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
    pub fn apply<M: Message>(&self, msg: M) -> Result<M::Reply>
    where
        W: Handles<M>,
    {
        self.apply_deadline(msg, None)
    }

    /// Like [`apply`](Pool::apply), but fails with [`Error::Timeout`] after `timeout`.
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
    pub fn apply_async<M>(&self, msg: M) -> AsyncResult<M::Reply>
    where
        W: Handles<M> + 'static,
        M: Message,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let pool = self.clone();
        std::thread::spawn(move || {
            let _ = tx.send(pool.apply(msg));
        });
        AsyncResult { rx, value: None }
    }

    /// Accepts no more tasks (Python's `close`); [`join`](Pool::join) then waits for the
    /// workers to finish what they have and exit.
    pub fn close(&self) {
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// After [`close`](Pool::close): waits for the maps and imaps in progress to finish
    /// (drop an imap you will not finish first), then stops each worker and waits for it
    /// to exit.
    ///
    /// Waits as long as that takes (as Python's `Pool.join`);
    /// [`join_timeout`](Pool::join_timeout) bounds the wait for the maps in progress.
    pub fn join(&self) -> Result<()> {
        self.join_deadline(None)
    }

    /// Like [`join`](Pool::join), but fails with [`Error::Timeout`] if the maps and
    /// imaps in progress have not finished within `timeout` (the workers keep running;
    /// [`terminate`](Pool::terminate) stops them at once).
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

/// The result of [`Pool::apply_async`].
pub struct AsyncResult<R> {
    rx: std::sync::mpsc::Receiver<Result<R>>,
    value: Option<Result<R>>,
}

impl<R> AsyncResult<R> {
    /// Waits at most `timeout` for the result; [`Error::Timeout`] if it is not ready.
    pub fn get(mut self, timeout: Duration) -> Result<R> {
        if let Some(v) = self.value.take() {
            return v;
        }
        self.rx
            .recv_timeout(timeout)
            .unwrap_or(Err(Error::Timeout(timeout)))
    }

    /// Whether the result is ready.
    pub fn ready(&mut self) -> bool {
        if self.value.is_none() {
            self.value = self.rx.try_recv().ok();
        }
        self.value.is_some()
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
}

/// One map/imap: sends chunks to workers and collects their results.
struct Run<W, M: Message> {
    pool: Pool<W>,
    items: std::iter::Peekable<Box<dyn Iterator<Item = M>>>,
    next_index: usize,
    chunk: usize,
    pipe: Pipeline,
    outstanding: HashMap<u64, Outstanding>,
    in_flight: Vec<usize>,
    /// When the whole call must have finished, and the timeout it came from.
    deadline: Option<(Instant, Duration)>,
}

impl<W: Dispatch + Handles<M>, M: Message> Run<W, M> {
    fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.deadline = timeout.and_then(|t| Some((Instant::now().checked_add(t)?, t)));
    }

    fn new(pool: &Pool<W>, items: Box<dyn Iterator<Item = M>>, chunk: usize) -> Result<Self> {
        pool.check_open()?;
        let n = pool.processes();
        let pipe = Pipeline::new()?;
        // Counted only once it exists: its Drop uncounts it.
        *pool
            .shared
            .active_runs
            .lock()
            .unwrap_or_else(|e| e.into_inner()) += 1;
        Ok(Run {
            pool: pool.clone(),
            items: items.peekable(),
            next_index: 0,
            chunk,
            pipe,
            outstanding: HashMap::new(),
            in_flight: vec![0; n],
            deadline: None,
        })
    }

    /// Sends chunks while some worker has room in its window.
    fn pump(&mut self) -> Result<()> {
        loop {
            let Some(worker) = self.pick_worker() else {
                return Ok(());
            };
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
            self.send(
                worker,
                Outstanding {
                    worker,
                    pid: 0,
                    start,
                    body,
                    len,
                    retried: false,
                },
            )?;
        }
    }

    fn window(&self) -> usize {
        (WINDOW_TASKS / self.chunk).max(4)
    }

    fn pick_worker(&self) -> Option<usize> {
        let workers = self.pool.workers();
        (0..self.in_flight.len().min(workers.len()))
            .filter(|&i| self.in_flight[i] < self.window() && !workers[i].retiring)
            .min_by_key(|&i| self.in_flight[i])
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

    /// The next finished chunk: its first index and results.
    fn next_chunk(&mut self) -> Option<Result<(usize, Vec<M::Reply>)>> {
        loop {
            if let Some((at, timeout)) = self.deadline {
                if Instant::now() >= at {
                    return Some(Err(Error::Timeout(timeout)));
                }
            }
            if let Err(e) = self.pump() {
                return Some(Err(e));
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
                    return Some(Err(Error::ActorDied {
                        actor: self.pool.shared.name.to_string(),
                        pid: o.pid,
                        exit: Some(Exit::Signaled(9)),
                    }));
                }
                if self.items.peek().is_some() {
                    return Some(Err(Error::Runtime("the pool was terminated".into())));
                }
                return None;
            }
            if self.outstanding.is_empty() {
                // Done once no task remains...
                self.items.peek()?;
                // ...but tasks remain but every worker is being replaced (maxtasksperchild):
                // wait for a replacement.
                self.pool.maintain();
                let first = self.pool.workers().first().map(|w| w.mb.clone());
                if let Some(mb) = first {
                    mb.wait_state_change(mb.state(), LIVENESS_SLICE);
                }
                continue;
            }
            self.pool.maintain();
            let slice = match self.deadline {
                Some((at, _)) => at
                    .saturating_duration_since(Instant::now())
                    .min(LIVENESS_SLICE),
                None => LIVENESS_SLICE,
            };
            let Some((corr, reply)) = self.pipe.recv(Wait::from_timeout(Some(slice))) else {
                continue;
            };
            let Some(o) = self.outstanding.remove(&corr) else {
                continue; // a late reply to a chunk already retried
            };
            self.in_flight[o.worker] = self.in_flight[o.worker].saturating_sub(1);
            match self.finish(o, reply) {
                Some(r) => return Some(r),
                None => continue,
            }
        }
    }

    fn finish(
        &mut self,
        o: Outstanding,
        reply: PipelinedReply,
    ) -> Option<Result<(usize, Vec<M::Reply>)>> {
        match reply {
            Ok(body) => Some(decode_results::<M::Reply>(&body, o.len).map(|v| (o.start, v))),
            Err(ReplyFailure::Died(exit, _)) => {
                if self.pool.shared.opts.retry && !o.retried {
                    tracing::warn!(%exit, "a pool worker died running a chunk; retrying it once");
                    self.pool.maintain();
                    let worker = self
                        .pick_worker()
                        .unwrap_or((o.worker + 1) % self.in_flight.len().max(1));
                    let retry = Outstanding {
                        worker,
                        retried: true,
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
        let mut active = self
            .pool
            .shared
            .active_runs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *active = active.saturating_sub(1);
        self.pool.shared.runs_done.notify_all();
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

/// The iterator of [`Pool::imap`] and [`Pool::imap_unordered`].
pub struct Imap<W, M: Message> {
    run: Run<W, M>,
    ready: HashMap<usize, Vec<M::Reply>>,
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
                if let Some(chunk) = self.ready.remove(&self.next) {
                    self.next += chunk.len();
                    self.buffer.extend(chunk);
                    continue;
                }
            }
            match self.run.next_chunk()? {
                Ok((start, results)) if self.ordered => {
                    self.ready.insert(start, results);
                }
                Ok((_, results)) => self.buffer.extend(results),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
