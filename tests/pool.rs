//! `procession::pool::Pool`, as its module docs state it: `map` and `starmap` return
//! results in input order whatever the chunk size; `imap` yields in order and lazily
//! (an endless input works, and dropping it early leaves the pool usable);
//! `imap_unordered` yields every result exactly once; `apply` and `apply_async` (whose
//! `get` times out with `Error::Timeout`); the worker's `create` runs once in each worker
//! process (Python's initializer); a worker killed or panicking mid-task gives its caller
//! `ActorDied` instead of hanging, is replaced, and the pool stays usable; `retry(true)`
//! reruns such a task once; `maxtasksperchild` replaces workers; `close` + `join` finish
//! queued tasks and stop the workers; `terminate` kills them; a closed pool refuses work;
//! dropping a pool leaves no worker process.
//!
//! Tasks that must be running when the test acts wait at a [`PidGate`] (a unix socket:
//! the worker announces its pid and blocks until released); no test sleeps to
//! synchronize. Blocking calls run on a helper thread and are awaited with a timeout, so
//! a hang fails the test instead of stalling it. Every pool is dropped (its workers
//! killed and reaped) when its test ends.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use procession::pool::{Pool, PoolOptions};
use procession::prelude::*;
use procession::Error;

/// Long enough never to be hit in a passing run on a loaded 2-core machine.
const LONG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// The worker and its tasks.

/// Creates run in this worker process so far (a worker process starts with 0: the test
/// process and the zygote never run `create`).
static CREATES: AtomicU32 = AtomicU32::new(0);

/// The worker's spawn argument: a directory the test owns, for files the worker writes.
#[derive(Clone, Serialize, Deserialize)]
struct WorkerArgs {
    dir: String,
}

/// Squares.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Square(u64);

/// Adds; built from a tuple by `starmap`.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Add(u64, u64);

impl From<(u64, u64)> for Add {
    fn from((a, b): (u64, u64)) -> Add {
        Add(a, b)
    }
}

/// Squares and says which process did it.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (u64, u32))]
struct SquareWithPid(u64);

/// Replies with the worker's pid and how many times `create` ran in its process.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (u32, u32))]
struct WhoAmI;

/// Tasks that misbehave on purpose.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
enum Job {
    /// Returns `x * x`.
    Square(u64),
    /// Announces the worker's pid at the gate socket at this path, blocks until released,
    /// and returns the pid.
    WaitAtGate(String),
    /// Panics with this message.
    Panic(String),
    /// Kills its own process with SIGKILL.
    Crash,
    /// The first attempt creates the marker file (holding its pid) and kills its own
    /// process with SIGKILL; an attempt that finds the marker returns `x * x`.
    CrashFirstTime { marker: String, x: u64 },
}

#[derive(Actor)]
#[actor(handles(Square, Add, SquareWithPid, WhoAmI, Job), args = WorkerArgs)]
struct Worker;

impl Actor for Worker {
    type Args = WorkerArgs;

    /// Python's initializer: counts the creates of this process and appends
    /// `"<pid> <creates>"` to `<dir>/creates`.
    fn create(args: WorkerArgs, cx: &mut Context<Self>) -> Result<Self, BoxError> {
        let creates = CREATES.fetch_add(1, Ordering::SeqCst) + 1;
        let line = format!("{} {creates}\n", cx.pid());
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(&args.dir).join("creates"))?
            .write_all(line.as_bytes())?;
        Ok(Worker)
    }
}

impl Handler<Square> for Worker {
    fn handle(&mut self, Square(x): Square, _cx: &mut Context<Self>) -> u64 {
        x * x
    }
}

impl Handler<Add> for Worker {
    fn handle(&mut self, Add(a, b): Add, _cx: &mut Context<Self>) -> u64 {
        a + b
    }
}

impl Handler<SquareWithPid> for Worker {
    fn handle(&mut self, SquareWithPid(x): SquareWithPid, cx: &mut Context<Self>) -> (u64, u32) {
        (x * x, cx.pid())
    }
}

impl Handler<WhoAmI> for Worker {
    fn handle(&mut self, _: WhoAmI, cx: &mut Context<Self>) -> (u32, u32) {
        (cx.pid(), CREATES.load(Ordering::SeqCst))
    }
}

impl Handler<Job> for Worker {
    fn handle(&mut self, job: Job, cx: &mut Context<Self>) -> u64 {
        match job {
            Job::Square(x) => x * x,
            Job::WaitAtGate(path) => {
                wait_at_gate(&path, cx.pid());
                u64::from(cx.pid())
            }
            Job::Panic(message) => panic!("{message}"),
            Job::Crash => kill_myself(),
            Job::CrashFirstTime { marker, x } => {
                let first = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&marker);
                if let Ok(mut f) = first {
                    let _ = f.write_all(cx.pid().to_string().as_bytes());
                    drop(f);
                    kill_myself();
                }
                x * x
            }
        }
    }
}

fn kill_myself() -> ! {
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    unreachable!("SIGKILL does not return")
}

// ---------------------------------------------------------------------------------------
// Test plumbing.

/// A private directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "procession-test-pool-{}-{}-{what}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn args(&self) -> WorkerArgs {
        WorkerArgs {
            dir: self.0.to_string_lossy().into_owned(),
        }
    }

    /// The `(pid, creates)` lines the workers' `create` appended.
    fn creates(&self) -> Vec<(u32, u32)> {
        std::fs::read_to_string(self.path("creates"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let (pid, n) = l.split_once(' ').expect("a create line");
                (pid.parse().unwrap(), n.parse().unwrap())
            })
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A rendezvous between the test and a task in a worker process: a unix socket. The task
/// connects, writes its pid and a newline, and blocks reading one byte.
struct PidGate {
    listener: UnixListener,
    path: PathBuf,
}

/// A task blocked at a [`PidGate`]. Dropping it without [`Arrived::release`] also frees
/// the task (it reads end-of-file).
struct Arrived {
    conn: UnixStream,
    pid: u32,
}

impl PidGate {
    fn new(dir: &TempDir) -> PidGate {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = dir.path(&format!("gate{}", N.fetch_add(1, Ordering::Relaxed)));
        let listener = UnixListener::bind(&path).expect("bind the gate socket");
        PidGate { listener, path }
    }

    /// The task that waits at this gate.
    fn job(&self) -> Job {
        Job::WaitAtGate(self.path.to_string_lossy().into_owned())
    }

    /// Waits (at most [`LONG`]) until a task has arrived, and reads its pid.
    fn arrival(&self) -> Arrived {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(LONG).unwrap();
        let ready = loop {
            match poll(&mut fds, timeout) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.unwrap(),
            }
        };
        assert!(ready > 0, "no task arrived at the gate within {LONG:?}");
        let (conn, _) = self.listener.accept().unwrap();
        conn.set_read_timeout(Some(LONG)).unwrap();
        let mut line = String::new();
        BufReader::new(&conn).read_line(&mut line).unwrap();
        let pid = line.trim().parse().expect("the task's pid");
        Arrived { conn, pid }
    }
}

impl Arrived {
    /// Lets the task return.
    fn release(mut self) {
        self.conn.write_all(&[1]).unwrap();
    }
}

/// In a task: announces `pid` at the gate at `path` and blocks until released (or the
/// gate is dropped, or a minute passes: a failing test must not leave a task blocked).
fn wait_at_gate(path: &str, pid: u32) {
    let Ok(mut conn) = UnixStream::connect(path) else {
        return;
    };
    if conn.write_all(format!("{pid}\n").as_bytes()).is_err() {
        return;
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = conn.read(&mut [0u8; 1]);
}

/// Runs `f` on a helper thread; [`Pending::wait`] waits for its result at most [`LONG`].
fn in_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Pending<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    Pending(rx)
}

struct Pending<T>(mpsc::Receiver<T>);

impl<T> Pending<T> {
    fn wait(self, what: &str) -> T {
        self.0
            .recv_timeout(LONG)
            .unwrap_or_else(|_| panic!("{what} did not return within {LONG:?}"))
    }
}

/// Runs `f` and fails the test if it does not return within [`LONG`].
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    in_thread(f).wait(what)
}

/// Whether process `pid` exists and has not exited. A worker whose exit was just
/// published can still be a zombie for a moment: the zygote publishes an exit before it
/// reaps the process (so that its pid cannot be recycled meanwhile).
fn process_runs(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "<pid> (<comm>) <state> ...": the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

fn sigkill(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

fn pool_with(dir: &TempDir, opts: PoolOptions) -> Pool<Worker> {
    Pool::with_options(dir.args(), opts).unwrap()
}

fn two_workers(dir: &TempDir) -> Pool<Worker> {
    pool_with(dir, PoolOptions::new().processes(2))
}

fn squares(range: std::ops::Range<u64>) -> Vec<u64> {
    range.map(|x| x * x).collect()
}

/// Checks that `pool` still runs tasks correctly.
fn assert_usable(pool: &Pool<Worker>) {
    let p = pool.clone();
    let out = within("a map on the pool", move || p.map((0..50).map(Square)));
    assert_eq!(out.unwrap(), squares(0..50));
}

// ---------------------------------------------------------------------------------------
// map, starmap, imap, imap_unordered, apply, apply_async.

#[test]
fn map_returns_results_in_input_order_with_chunksize_one() {
    let dir = TempDir::new("map1");
    let pool = pool_with(&dir, PoolOptions::new().processes(2).chunksize(1));
    let out = within("map", move || pool.map((0..300).map(Square))).unwrap();
    assert_eq!(out, squares(0..300));
}

#[test]
fn map_returns_results_in_input_order_with_the_default_chunksize() {
    let dir = TempDir::new("mapdefault");
    let pool = two_workers(&dir);
    let out = within("map", move || pool.map((0..10_000).map(Square))).unwrap();
    assert_eq!(out, squares(0..10_000));
}

#[test]
fn map_returns_results_in_input_order_with_a_chunk_larger_than_the_input() {
    let dir = TempDir::new("mapbig");
    let pool = pool_with(&dir, PoolOptions::new().processes(2).chunksize(5_000));
    let out = within("map", move || pool.map((0..1_000).map(Square))).unwrap();
    assert_eq!(out, squares(0..1_000));
}

#[test]
fn map_of_no_items_returns_no_results() {
    let dir = TempDir::new("mapempty");
    let pool = two_workers(&dir);
    let out = within("map", move || pool.map(Vec::<Square>::new())).unwrap();
    assert!(out.is_empty());
}

#[test]
fn starmap_builds_each_task_from_a_tuple() {
    let dir = TempDir::new("starmap");
    let pool = two_workers(&dir);
    let pairs: Vec<(u64, u64)> = (0..100).map(|i| (i, 1000 * i)).collect();
    let expected: Vec<u64> = pairs.iter().map(|&(a, b)| a + b).collect();
    let out = within("starmap", move || pool.starmap::<Add, _>(pairs)).unwrap();
    assert_eq!(out, expected);
}

#[test]
fn imap_yields_results_in_input_order() {
    let dir = TempDir::new("imap");
    let pool = two_workers(&dir);
    let out: Vec<u64> = within("imap", move || {
        pool.imap((0..500).map(Square))
            .unwrap()
            .collect::<Result<_, _>>()
    })
    .unwrap();
    assert_eq!(out, squares(0..500));
}

#[test]
fn imap_is_lazy_and_can_be_dropped_before_the_end_of_an_endless_input() {
    let dir = TempDir::new("imaplazy");
    let pool = two_workers(&dir);
    let pids = pool.pids();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let p = pool.clone();
    let first: Vec<u64> = within("the first results of imap", move || {
        let endless = (0u64..).map(move |x| {
            counter.fetch_add(1, Ordering::SeqCst);
            Square(x)
        });
        // The iterator is dropped after 5 results, with many tasks still in flight.
        p.imap(endless).unwrap().take(5).collect::<Result<_, _>>()
    })
    .unwrap();
    assert_eq!(first, [0, 1, 4, 9, 16]);
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(
        pulled < 10_000,
        "imap pulled {pulled} items to yield 5: it is not lazy"
    );

    assert_usable(&pool);
    assert_eq!(pool.pids(), pids, "no worker was replaced");
    assert_eq!(pool.restarts(), [0, 0]);
}

#[test]
fn imap_unordered_yields_every_result_exactly_once() {
    let dir = TempDir::new("imapunordered");
    let pool = two_workers(&dir);
    let out: Vec<u64> = within("imap_unordered", move || {
        pool.imap_unordered((0..1_000).map(Square))
            .unwrap()
            .collect::<Result<_, _>>()
    })
    .unwrap();
    assert_eq!(out.len(), 1_000, "one result per task");
    let mut sorted = out;
    sorted.sort_unstable();
    assert_eq!(sorted, squares(0..1_000));
}

#[test]
fn apply_returns_the_task_result() {
    let dir = TempDir::new("apply");
    let pool = two_workers(&dir);
    assert_eq!(within("apply", move || pool.apply(Square(7))).unwrap(), 49);
}

#[test]
fn apply_async_get_returns_the_result() {
    let dir = TempDir::new("applyasync");
    let pool = two_workers(&dir);
    let results: Vec<_> = (0..10).map(|x| pool.apply_async(Square(x))).collect();
    let got: Vec<u64> = results.into_iter().map(|r| r.get(LONG).unwrap()).collect();
    assert_eq!(got, squares(0..10));
}

#[test]
fn apply_async_get_times_out_on_a_task_that_is_not_done() {
    let dir = TempDir::new("applyasynctimeout");
    let pool = two_workers(&dir);
    let gate = PidGate::new(&dir);
    let slow = pool.apply_async(gate.job());
    let running = gate.arrival();
    let err = slow.get(Duration::from_millis(1)).unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");

    // The task still finishes, and its result can be had from a new apply.
    let pid = running.pid;
    running.release();
    let again = pool.apply_async(Square(12));
    assert_eq!(again.get(LONG).unwrap(), 144);
    assert!(pool.pids().contains(&pid));
}

// ---------------------------------------------------------------------------------------
// The initializer.

#[test]
fn worker_create_runs_once_in_each_worker_process() {
    let dir = TempDir::new("create");
    let pool = pool_with(&dir, PoolOptions::new().processes(3).chunksize(1));
    let pids: HashSet<u32> = pool.pids().into_iter().collect();
    assert_eq!(pids.len(), 3);
    assert!(!pids.contains(&std::process::id()));

    let creates = dir.creates();
    assert_eq!(creates.len(), 3, "one create per worker: {creates:?}");
    assert!(creates.iter().all(|&(_, n)| n == 1), "{creates:?}");
    let created: HashSet<u32> = creates.iter().map(|&(pid, _)| pid).collect();
    assert_eq!(created, pids);

    // Many tasks later, each worker process still counts exactly one create.
    let p = pool.clone();
    let seen = within("map", move || p.map((0..300).map(|_| WhoAmI))).unwrap();
    for (pid, n) in seen {
        assert!(pids.contains(&pid), "task ran in pid {pid}, not a worker");
        assert_eq!(n, 1, "create ran {n} times in worker {pid}");
    }
    assert_eq!(dir.creates().len(), 3, "tasks never run create again");
}

#[test]
fn a_replacement_worker_runs_create_once_in_its_new_process() {
    let dir = TempDir::new("createreplaced");
    let pool = pool_with(&dir, PoolOptions::new().processes(1));
    let old = pool.pids()[0];
    let gate = PidGate::new(&dir);
    let p = pool.clone();
    let job = gate.job();
    let task = in_thread(move || p.apply(job));
    let running = gate.arrival();
    sigkill(running.pid);
    assert!(task.wait("apply").unwrap_err().is_actor_died());

    let p = pool.clone();
    let (_, n) = within("apply", move || p.apply(WhoAmI)).unwrap();
    assert_eq!(n, 1);
    let new = pool.pids()[0];
    assert_ne!(new, old);
    assert_eq!(dir.creates(), [(old, 1), (new, 1)]);
}

// ---------------------------------------------------------------------------------------
// Crashes.

#[test]
fn a_pool_worker_killed_mid_task_gives_its_caller_an_error_and_the_pool_stays_usable() {
    let dir = TempDir::new("killed");
    let pool = pool_with(&dir, PoolOptions::new().processes(2).chunksize(1));
    let gate = PidGate::new(&dir);
    let p = pool.clone();
    let job = gate.job();
    let task = in_thread(move || p.map(vec![job]));
    let running = gate.arrival();
    let victim = running.pid;
    assert!(pool.pids().contains(&victim), "the task runs in a worker");

    sigkill(victim);
    match task.wait("map on a killed worker") {
        Err(Error::ActorDied { exit, .. }) => {
            assert_eq!(exit, Some(Exit::Signaled(9)))
        }
        other => panic!("expected ActorDied, got {other:?}"),
    }
    drop(running);

    assert_usable(&pool);
    assert!(
        !pool.pids().contains(&victim),
        "the dead worker was replaced"
    );
    assert_eq!(
        pool.restarts().iter().sum::<u32>(),
        1,
        "{:?}",
        pool.restarts()
    );
}

/// The `ActorDied` reply for the interrupted chunk is written by the worker's *next*
/// incarnation (src/actor/run.rs), so the pid it names must be the one recorded when the
/// chunk was sent, not the worker's pid when the error is built (the replacement's).
#[test]
fn a_killed_workers_error_names_the_pid_that_died() {
    let dir = TempDir::new("killedpid");
    let pool = pool_with(&dir, PoolOptions::new().processes(1));
    let gate = PidGate::new(&dir);
    let p = pool.clone();
    let job = gate.job();
    let task = in_thread(move || p.apply(job));
    let running = gate.arrival();
    let victim = running.pid;
    sigkill(victim);
    match task.wait("apply on a killed worker") {
        Err(Error::ActorDied { pid, .. }) => assert_eq!(
            pid,
            victim,
            "the error names pid {pid}; the worker that died was {victim}, the pool's \
             workers are now {:?}",
            pool.pids()
        ),
        other => panic!("expected ActorDied, got {other:?}"),
    }
}

#[test]
fn a_panicking_task_gives_actor_died_with_the_panic_message_and_the_pool_stays_usable() {
    let dir = TempDir::new("panic");
    let pool = two_workers(&dir);
    let p = pool.clone();
    let err = within("apply of a panicking task", move || {
        p.apply(Job::Panic("task 13 is cursed".into()))
    })
    .unwrap_err();
    match err {
        Error::ActorDied {
            exit: Some(Exit::Panicked { message }),
            ..
        } => assert!(message.contains("task 13 is cursed"), "{message:?}"),
        other => panic!("expected ActorDied with Exit::Panicked, got {other:?}"),
    }
    assert_usable(&pool);
    assert_eq!(
        pool.restarts().iter().sum::<u32>(),
        1,
        "{:?}",
        pool.restarts()
    );
}

#[test]
fn retry_reruns_a_task_whose_worker_died_and_it_succeeds() {
    let dir = TempDir::new("retry");
    let pool = pool_with(&dir, PoolOptions::new().processes(2).retry(true));
    let marker = dir.path("marker");
    let job = Job::CrashFirstTime {
        marker: marker.to_string_lossy().into_owned(),
        x: 9,
    };
    let p = pool.clone();
    assert_eq!(
        within("apply with retry", move || p.apply(job)).unwrap(),
        81
    );

    let crashed: u32 = std::fs::read_to_string(&marker).unwrap().parse().unwrap();
    assert!(
        !pool.pids().contains(&crashed),
        "the crashed worker was replaced"
    );
    assert_eq!(
        pool.restarts().iter().sum::<u32>(),
        1,
        "{:?}",
        pool.restarts()
    );
    assert_usable(&pool);
}

#[test]
fn retry_gives_up_after_one_retry_with_actor_died() {
    let dir = TempDir::new("retrytwice");
    let pool = pool_with(&dir, PoolOptions::new().processes(2).retry(true));
    let p = pool.clone();
    let err = within("apply with retry", move || p.apply(Job::Crash)).unwrap_err();
    assert!(err.is_actor_died(), "{err:?}");
    assert_usable(&pool);
    assert_eq!(
        pool.restarts().iter().sum::<u32>(),
        2,
        "{:?}",
        pool.restarts()
    );
}

#[test]
fn without_retry_a_task_whose_worker_died_is_not_rerun() {
    let dir = TempDir::new("noretry");
    let pool = two_workers(&dir);
    let marker = dir.path("marker");
    let job = Job::CrashFirstTime {
        marker: marker.to_string_lossy().into_owned(),
        x: 9,
    };
    let p = pool.clone();
    let err = within("apply", move || p.apply(job)).unwrap_err();
    assert!(err.is_actor_died(), "{err:?}");
    assert_usable(&pool);
    assert_eq!(
        pool.restarts().iter().sum::<u32>(),
        1,
        "{:?}",
        pool.restarts()
    );
}

// ---------------------------------------------------------------------------------------
// maxtasksperchild.

#[test]
fn maxtasksperchild_replaces_workers_and_every_result_is_correct() {
    let dir = TempDir::new("maxtasks");
    let pool = pool_with(
        &dir,
        PoolOptions::new()
            .processes(2)
            .chunksize(1)
            .maxtasksperchild(2),
    );
    let first: HashSet<u32> = pool.pids().into_iter().collect();
    let p = pool.clone();
    let out = within("map", move || p.map((0..20).map(SquareWithPid))).unwrap();

    let values: Vec<u64> = out.iter().map(|&(v, _)| v).collect();
    assert_eq!(values, squares(0..20));
    let mut per_pid: HashMap<u32, u32> = HashMap::new();
    for &(_, pid) in &out {
        *per_pid.entry(pid).or_default() += 1;
    }
    assert!(
        per_pid.values().all(|&n| n <= 2),
        "a worker ran more than 2 tasks: {per_pid:?}"
    );
    assert!(per_pid.len() >= 10, "{per_pid:?}");
    assert!(
        per_pid.keys().any(|pid| !first.contains(pid)),
        "new workers ran tasks"
    );
    assert!(
        pool.restarts().iter().sum::<u32>() >= 8,
        "{:?}",
        pool.restarts()
    );
    let creates = dir.creates();
    assert!(
        creates.iter().all(|&(_, n)| n == 1),
        "each replacement is a new process that ran create once: {creates:?}"
    );
}

/// The tightest case: one worker that retires after each task. After each result, no
/// worker can take the next task (the only one is retiring) and nothing is outstanding;
/// the map must wait for the replacement rather than end with tasks never sent.
#[test]
fn maxtasksperchild_one_runs_every_task_of_a_map_on_one_worker() {
    let dir = TempDir::new("maxtasksone");
    let pool = pool_with(
        &dir,
        PoolOptions::new()
            .processes(1)
            .chunksize(1)
            .maxtasksperchild(1),
    );
    let p = pool.clone();
    let out = within("map", move || p.map((0..10).map(SquareWithPid))).unwrap();
    let values: Vec<u64> = out.iter().map(|&(v, _)| v).collect();
    assert_eq!(values, squares(0..10));
    let pids: HashSet<u32> = out.iter().map(|&(_, pid)| pid).collect();
    assert_eq!(pids.len(), 10, "each task ran in a new worker process");
}

#[test]
fn maxtasksperchild_imap_yields_every_result() {
    let dir = TempDir::new("maxtasksimap");
    let pool = pool_with(
        &dir,
        PoolOptions::new()
            .processes(2)
            .chunksize(1)
            .maxtasksperchild(3),
    );
    let p = pool.clone();
    let out: Vec<u64> = within("imap", move || {
        p.imap((0..30).map(Square))
            .unwrap()
            .collect::<Result<_, _>>()
    })
    .unwrap();
    assert_eq!(out, squares(0..30));
}

#[test]
fn maxtasksperchild_applies_go_on_after_every_first_worker_retired() {
    let dir = TempDir::new("maxtasksapply");
    let pool = pool_with(&dir, PoolOptions::new().processes(2).maxtasksperchild(1));
    let mut pids = HashSet::new();
    for x in 0..8 {
        let p = pool.clone();
        let (v, pid) = within("apply", move || p.apply(SquareWithPid(x))).unwrap();
        assert_eq!(v, x * x);
        assert!(pids.insert(pid), "pid {pid} ran a second task");
    }
}

// ---------------------------------------------------------------------------------------
// close, join, terminate, drop.

#[test]
fn close_then_join_stops_every_worker() {
    let dir = TempDir::new("closejoin");
    let pool = two_workers(&dir);
    let pids = pool.pids();
    assert_usable(&pool);
    pool.close();
    let p = pool.clone();
    within("join", move || p.join()).unwrap();
    for pid in pids {
        assert!(!process_runs(pid), "worker {pid} runs after join");
    }
}

/// Starts an ordered `imap` on `pool` over `[Square(0), <gate task>, Square(1..=20)]`
/// (one task per chunk) on a helper thread, and returns once its first result is in and
/// the gate task is running. By then every chunk has been sent (they all fit in the
/// window, and the first `next` sends all it can before it waits), so the mapping thread
/// sends nothing more. The pending result is the list of all 22 results.
fn imap_held_at_gate(
    pool: &Pool<Worker>,
    gate: &PidGate,
) -> (Pending<procession::Result<Vec<u64>>>, Arrived) {
    let jobs: Vec<Job> = [Job::Square(0), gate.job()]
        .into_iter()
        .chain((1..=20).map(Job::Square))
        .collect();
    let p = pool.clone();
    let (first_tx, first_rx) = mpsc::channel();
    let task = in_thread(move || {
        let mut it = p.imap(jobs)?;
        let first = it.next().expect("a first result")?;
        let _ = first_tx.send(());
        std::iter::once(Ok(first)).chain(it).collect()
    });
    first_rx
        .recv_timeout(LONG)
        .expect("the first result of the imap");
    (task, gate.arrival())
}

/// Python's `close(); join()` while results are pending: join lets the workers finish
/// the tasks they were given. `Run::next_chunk` (src/pool/mod.rs) takes
/// `self.pool.processes() == 0` to mean "terminate() took the workers", but `join`
/// empties the workers vector too (`std::mem::take`), so a map waiting for its queued
/// tasks gets a made-up `ActorDied { exit: Signaled(9) }` at its next 20 ms liveness
/// slice, while the worker is still running them.
#[test]
fn close_then_join_lets_a_map_in_flight_finish_its_queued_tasks() {
    let dir = TempDir::new("closejoininflight");
    let pool = pool_with(&dir, PoolOptions::new().processes(1).chunksize(1));
    let pids = pool.pids();
    let gate = PidGate::new(&dir);
    let (task, running) = imap_held_at_gate(&pool, &gate);

    pool.close();
    let p = pool.clone();
    let joined = in_thread(move || p.join());
    // join waits for the map in progress. The worker is still at the gate, so the map
    // cannot have all its results yet: a correct pool gives none in this window (and
    // join cannot return), however long it is.
    if let Ok(early) = task.0.recv_timeout(Duration::from_millis(200)) {
        panic!("the map returned while its tasks were still running: {early:?}");
    }
    running.release();
    joined.wait("join").unwrap();

    let out = task.wait("the map queued before close").unwrap();
    assert_eq!(
        out[1],
        u64::from(pids[0]),
        "the gate task ran in the worker"
    );
    assert_eq!(out[2..], squares(1..21)[..], "the queued tasks ran");
    for pid in pids {
        assert!(!process_runs(pid), "worker {pid} runs after join");
    }
}

#[test]
fn join_without_close_is_an_error() {
    let dir = TempDir::new("joinnoclose");
    let pool = two_workers(&dir);
    assert!(pool.join().is_err());
    assert_usable(&pool);
}

#[test]
fn terminate_kills_the_workers() {
    let dir = TempDir::new("terminate");
    let pool = two_workers(&dir);
    let pids = pool.pids();
    assert_usable(&pool);
    let p = pool.clone();
    within("terminate", move || p.terminate());
    for pid in pids {
        assert!(!process_runs(pid), "worker {pid} runs after terminate");
    }
}

/// Nobody answers the chunks sent to a terminated worker: the `ActorDied` reply for an
/// interrupted task is written by the worker's next incarnation (src/actor/run.rs, the
/// `send_failure(.., ReplyFailure::Died(prev))` on redelivery), and `terminate` starts
/// none; `Run::next_chunk` (src/pool/mod.rs) then loops for ever on `pipe.recv`, since
/// `maintain` sees no workers and nothing fails the outstanding chunks.
#[test]
fn terminate_fails_the_tasks_in_flight_with_actor_died() {
    let dir = TempDir::new("terminateinflight");
    let pool = pool_with(&dir, PoolOptions::new().processes(1).chunksize(1));
    let pids = pool.pids();
    let gate = PidGate::new(&dir);
    let (task, running) = imap_held_at_gate(&pool, &gate);

    let p = pool.clone();
    within("terminate", move || p.terminate());
    for pid in pids {
        assert!(!process_runs(pid), "worker {pid} runs after terminate");
    }
    let err = task
        .wait("the imap in flight during terminate")
        .unwrap_err();
    assert!(err.is_actor_died(), "{err:?}");
    drop(running);
}

/// `Run::send` (src/pool/mod.rs, line 533 `let w = &mut workers[worker];`, after a
/// successful send) indexes the workers vector, which `terminate` (or `join`) may have
/// emptied since the frame went out: the mapping thread panics with "index out of
/// bounds: the len is 0 but the index is 0" instead of returning an error. The window
/// is small, so this tries up to 100 times (it hits ~15% of tries on a 2-core machine).
#[test]
fn terminate_during_a_map_fails_it_without_a_panic() {
    for attempt in 0..100 {
        let dir = TempDir::new("terminaterace");
        let pool = pool_with(&dir, PoolOptions::new().processes(1));
        let gate = PidGate::new(&dir);
        let p = pool.clone();
        let job = gate.job();
        let mapping = std::thread::spawn(move || p.map(vec![job]));
        let running = gate.arrival();
        let p = pool.clone();
        within("terminate", move || p.terminate());
        drop(running);
        match mapping.join() {
            Ok(result) => assert!(result.unwrap_err().is_actor_died()),
            Err(_) => panic!("the mapping thread panicked (attempt {attempt})"),
        }
    }
}

#[test]
fn a_pool_used_after_close_returns_an_error() {
    let dir = TempDir::new("afterclose");
    let pool = two_workers(&dir);
    pool.close();
    assert!(pool.map((0..3).map(Square)).is_err());
    assert!(pool.apply(Square(2)).is_err());
    assert!(pool.imap((0..3).map(Square)).is_err());
    assert!(pool.apply_async(Square(2)).get(LONG).is_err());
    let p = pool.clone();
    within("join", move || p.join()).unwrap();
}

#[test]
fn a_pool_used_after_terminate_returns_an_error() {
    let dir = TempDir::new("afterterminate");
    let pool = two_workers(&dir);
    pool.terminate();
    let p = pool.clone();
    assert!(within("map", move || p.map((0..3).map(Square))).is_err());
}

#[test]
fn dropping_the_pool_leaves_no_worker_process() {
    let dir = TempDir::new("drop");
    let pool = two_workers(&dir);
    let pids = pool.pids();
    assert_usable(&pool);
    assert!(pids.iter().all(|&pid| process_runs(pid)));
    within("drop", move || drop(pool));
    for pid in pids {
        assert!(!process_runs(pid), "worker {pid} outlived its pool");
    }
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[test]
fn many_async_calls_share_one_dispatcher_thread_instead_of_a_thread_each() {
    let dir = TempDir::new("many-async");
    let pool = two_workers(&dir);
    // Both workers held inside a task: nothing submitted next can finish yet.
    let gate = PidGate::new(&dir);
    let held: Vec<_> = (0..2).map(|_| pool.apply_async(gate.job())).collect();
    let arrived = [gate.arrival(), gate.arrival()];
    let pids: Vec<u64> = arrived.iter().map(|a| u64::from(a.pid)).collect();
    let before = thread_count();
    let pending: Vec<_> = (0..200u64)
        .map(|i| pool.apply_async(Job::Square(i)))
        .collect();
    let during = thread_count();
    assert!(
        during < before + 20,
        "{before} threads before 200 async calls, {during} while they wait"
    );
    for a in arrived {
        a.release();
    }
    let mut got: Vec<u64> = held.into_iter().map(|h| h.get(LONG).unwrap()).collect();
    got.sort_unstable();
    let mut want = pids;
    want.sort_unstable();
    assert_eq!(got, want);
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(p.get(LONG).unwrap(), (i * i) as u64);
    }
    pool.close();
    pool.join().unwrap();
}
