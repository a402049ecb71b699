//! The side-by-side report: procession's figures, measured the way
//! `../shared/bench/mp_baseline.py` measures Python's `multiprocessing`, one JSON object
//! per line on stdout (progress on stderr).
//!
//! ```text
//! cargo bench --bench report > /tmp/pr.jsonl
//! python3 benches/compare.py /tmp/py.jsonl /tmp/pr.jsonl
//! ```
//!
//! Every record has `id`, `desc` (what exactly was timed), `unit`, `value` (a median) and
//! `stat`; distributions add `p50`/`p99`/`min`/`max`/`n`, rates add `reps`; `py_id` names
//! the matching `mp_baseline.py` record (`py_also`: further Python records worth showing
//! beside it). A record with an `error` field failed; the others still run.
//!
//! Figures: spawn-to-first-reply per start method; ask round trip of 16 bytes (default
//! spin, spin off, and with every CPU kept busy); tell throughput of small messages from 1
//! and 4 sender threads; 1 MiB and 16 MiB messages; memory per idle actor; spawning,
//! asking and stopping 10/100/1000 actors; restart latency of a supervised actor after a
//! SIGKILL (no Python counterpart). The multiprocessing toolbox (issue 4): `Lock`
//! acquire/release in one process and contended by two; `Value` increments from two
//! processes (under its lock, and with `fetch_add`); `Manager` map set/get and list
//! append from a child; one-way `Queue`/`SimpleQueue` throughput; `Pool::map` of 100,000
//! trivial tasks (chunk size 1 and default); a fan-out to 16 workers (pipes, and two
//! procession-specific variants: asks, and tells with one reply queue).
//!
//! Knobs: `PB_REPS` (repetitions per figure, default 3; the value is the median of the
//! repetitions), `PB_TARGET_S` (seconds per throughput repetition, default 1.0),
//! `PB_QUICK=1` (tiny counts, for a smoke test), `PB_ONLY=spawn,rtt,...` (run only some
//! sections: spawn, rtt, tell, bytes, mem, scale, restart, lock, value, manager, queue,
//! pool, fanout).
//!
//! The spin-off and busy-CPU round trips run in a re-executed copy of this binary
//! (`--sub rtt_nospin`, `--sub rtt_busy`): the spin budget is read once per process from
//! `PROCESSION_SPIN_US`, and the zygote and actors inherit the environment the runtime
//! starts with. That is safe because procession children are diverted before `main`.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use procession::__private::Dispatch;
use procession::manager::{Manager, SharedList, SharedMap};
use procession::pool::{Pool, PoolOptions};
use procession::prelude::*;
use procession::queue::{
    pipe, simplex, PipeEnd, PipeReceiver, PipeSender, Queue, RecvError, SimpleQueue,
};
use procession::shared::Value;
use procession::supervisor::{ChildSpec, Shutdown, Strategy, Supervisor, SupervisorActor};
use procession::sync::{Lock, OwnerDied};
use procession::{SpawnOptions, StartMethod};

// ---------------------------------------------------------------------------------------
// The actor and its messages

/// Replies `()`: the trivial first message after a spawn, and the one ask of the scale test.
#[derive(Serialize, Deserialize, Message)]
struct Ping;

/// Replies with the same bytes (the round-trip payload).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ByteBuf)]
struct Echo(ByteBuf);

/// A small tell: one integer.
#[derive(Serialize, Deserialize, Message)]
struct Tick(u64);

/// A small tell shaped like Python's `(i, "hello")` tuple.
#[derive(Serialize, Deserialize, Message)]
struct Pair(u64, Cow<'static, str>);

/// A tell carrying bytes; the actor adds up their lengths.
#[derive(Serialize, Deserialize, Message)]
struct Bytes(Blob);

/// Returns (messages, bytes) counted since the last `Take`, and resets both.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (u64, u64))]
struct Take;

/// Shared bytes: sending the same buffer N times costs no copy on the sender's side
/// before the library's own encoding, as when Python sends one `bytes` object N times.
#[derive(Clone)]
struct Blob(Arc<Vec<u8>>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Blob(Arc::new(ByteBuf::deserialize(d)?.into_vec())))
    }
}

/// Counts what it is told; answers pings and echoes.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Ping, Echo, Tick, Pair, Bytes, Take))]
struct Sink {
    msgs: u64,
    bytes: u64,
}

impl Handler<Ping> for Sink {
    fn handle(&mut self, _: Ping, _cx: &mut Context<Self>) {}
}

impl Handler<Echo> for Sink {
    fn handle(&mut self, Echo(b): Echo, _cx: &mut Context<Self>) -> ByteBuf {
        b
    }
}

impl Handler<Tick> for Sink {
    fn handle(&mut self, Tick(_): Tick, _cx: &mut Context<Self>) {
        self.msgs += 1;
    }
}

impl Handler<Pair> for Sink {
    fn handle(&mut self, Pair(_, s): Pair, _cx: &mut Context<Self>) {
        self.msgs += 1;
        self.bytes += s.len() as u64;
    }
}

impl Handler<Bytes> for Sink {
    fn handle(&mut self, Bytes(b): Bytes, _cx: &mut Context<Self>) {
        self.msgs += 1;
        self.bytes += b.0.len() as u64;
    }
}

impl Handler<Take> for Sink {
    fn handle(&mut self, _: Take, _cx: &mut Context<Self>) -> (u64, u64) {
        (
            std::mem::take(&mut self.msgs),
            std::mem::take(&mut self.bytes),
        )
    }
}

type R<T> = Result<T, String>;

/// An actor this runner started. Dropping it kills and joins the actor if it still runs,
/// so an error part-way through a figure leaves no process behind.
struct Owned(ActorRef<Sink>);

impl std::ops::Deref for Owned {
    type Target = ActorRef<Sink>;
    fn deref(&self) -> &ActorRef<Sink> {
        &self.0
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill(); // a no-op once the actor has exited
        let _ = self.0.join_timeout(Duration::from_secs(10));
    }
}

fn spawn_sink(method: StartMethod) -> R<Owned> {
    procession::spawn_with(Sink::default(), SpawnOptions::new().start_method(method))
        .map(Owned)
        .map_err(|e| format!("spawn ({method:?}) failed: {e}"))
}

/// Stops the actor gracefully and checks that it ended with `Exit::Stopped`.
fn finish(a: &Owned) -> R<()> {
    a.stop().map_err(|e| format!("stop failed: {e}"))?;
    match a.join_timeout(Duration::from_secs(30)) {
        Ok(Exit::Stopped) => Ok(()),
        Ok(other) => Err(format!("actor ended with {other}")),
        Err(e) => Err(format!("join failed: {e}")),
    }
}

// ---------------------------------------------------------------------------------------
// Settings, statistics and JSON output

struct Cfg {
    reps: usize,
    target_s: f64,
    quick: bool,
    only: Option<Vec<String>>,
}

impl Cfg {
    fn from_env() -> Cfg {
        let quick = std::env::var("PB_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
        let num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
        Cfg {
            reps: num("PB_REPS").map_or(if quick { 1 } else { 3 }, |r| (r as usize).max(1)),
            target_s: num("PB_TARGET_S").unwrap_or(if quick { 0.05 } else { 1.0 }),
            quick,
            only: std::env::var("PB_ONLY")
                .ok()
                .map(|s| s.split(',').map(|x| x.trim().to_string()).collect()),
        }
    }

    fn wants(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .map_or(true, |o| o.iter().any(|s| s == section))
    }

    /// `full` normally, `quick` under `PB_QUICK=1`.
    fn n(&self, full: usize, quick: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

/// The q-th percentile with linear interpolation between closest ranks (as mp_baseline.py).
fn pct(data: &[f64], q: f64) -> f64 {
    let mut s = data.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let k = (s.len() - 1) as f64 * q / 100.0;
    let f = k.floor() as usize;
    let c = (f + 1).min(s.len() - 1);
    s[f] + (s[c] - s[f]) * (k - f as f64)
}

fn median(data: &[f64]) -> f64 {
    pct(data, 50.0)
}

/// Rounds to about 3 significant digits, as mp_baseline.py does.
fn r3(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let mag = 10f64.powi(2 - x.abs().log10().floor() as i32);
    if mag >= 1.0 {
        (x * mag).round() / mag
    } else {
        x.round()
    }
}

/// One JSON object, built field by field and printed as one line.
struct Json(String);

impl Json {
    fn new(id: &str) -> Json {
        Json(String::from("{")).s("id", id)
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push_str(", ");
        }
        self.0.push_str(&quote(k));
        self.0.push_str(": ");
    }

    fn s(mut self, k: &str, v: &str) -> Json {
        self.key(k);
        self.0.push_str(&quote(v));
        self
    }

    fn f(mut self, k: &str, v: f64) -> Json {
        self.key(k);
        self.0.push_str(&num(v));
        self
    }

    fn i(mut self, k: &str, v: u64) -> Json {
        self.key(k);
        self.0.push_str(&v.to_string());
        self
    }

    fn list(mut self, k: &str, v: &[f64]) -> Json {
        self.key(k);
        let items: Vec<String> = v.iter().map(|x| num(*x)).collect();
        self.0.push('[');
        self.0.push_str(&items.join(", "));
        self.0.push(']');
        self
    }

    fn strs(mut self, k: &str, v: &[&str]) -> Json {
        self.key(k);
        let items: Vec<String> = v.iter().map(|x| quote(x)).collect();
        self.0.push('[');
        self.0.push_str(&items.join(", "));
        self.0.push(']');
        self
    }

    fn emit(mut self) {
        self.0.push('}');
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", self.0);
        let _ = out.flush();
    }
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{}", r3(v))
    } else {
        "null".to_string()
    }
}

fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn error_line(id: &str, e: &str) {
    eprintln!("   ERROR in {id}: {e}");
    Json::new(id).s("error", e).emit();
}

fn log(t0: Instant, what: &str) {
    eprintln!("[{:7.1}s] {what}", t0.elapsed().as_secs_f64());
}

/// A latency distribution measured in `reps` series: `value`/`p50`/`p99` are the medians
/// of the series' own percentiles; `min`/`max`/`n` cover every sample.
fn dist_record(id: &str, desc: &str, series: &[Vec<f64>]) -> Json {
    let p50s: Vec<f64> = series.iter().map(|s| median(s)).collect();
    let p99s: Vec<f64> = series.iter().map(|s| pct(s, 99.0)).collect();
    let all: Vec<f64> = series.iter().flatten().copied().collect();
    let n = all.len();
    Json::new(id)
        .s("desc", desc)
        .s("unit", "us")
        .f("value", median(&p50s))
        .s(
            "stat",
            &format!(
                "median of {} reps' p50 ({} samples in all)",
                series.len(),
                n
            ),
        )
        .f("p50", median(&p50s))
        .f("p99", median(&p99s))
        .f("min", all.iter().copied().fold(f64::INFINITY, f64::min))
        .f("max", all.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        .i("n", n as u64)
        .list("reps", &p50s)
}

fn rate_record(id: &str, desc: &str, unit: &str, rates: &[f64]) -> Json {
    Json::new(id)
        .s("desc", desc)
        .s("unit", unit)
        .f("value", median(rates))
        .s("stat", &format!("median of {} reps", rates.len()))
        .list("reps", rates)
        .f("min", rates.iter().copied().fold(f64::INFINITY, f64::min))
        .f(
            "max",
            rates.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
}

/// Grows `n` from `n0` until one run takes >= 0.2 s (or `n` reaches `nmax`), then returns
/// the `n` expected to take `target` seconds (as mp_baseline.py's `calibrate`). Under
/// `PB_QUICK` a single short run decides. The calibration runs double as warm-up.
fn calibrate(cfg: &Cfg, run: &mut dyn FnMut(u64) -> R<f64>, n0: u64, nmax: u64) -> R<u64> {
    let floor = if cfg.quick { 0.01 } else { 0.2 };
    let mut n = n0;
    let el = loop {
        let el = run(n)?;
        if el >= floor || n >= nmax {
            break el;
        }
        n = ((n as f64) * (0.3 / el.max(1e-6)).clamp(2.0, 10.0)) as u64;
        n = n.min(nmax);
    };
    Ok(((n as f64 / el * cfg.target_s) as u64).clamp(1, nmax))
}

// ---------------------------------------------------------------------------------------
// /proc helpers

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// A `Name:   123 kB` field of a /proc file, in KiB.
fn proc_kib(path: &str, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn smaps(pid: u32, field: &str) -> Option<f64> {
    proc_kib(&format!("/proc/{pid}/smaps_rollup"), field)
}

// ---------------------------------------------------------------------------------------
// 1. spawn-to-first-reply

fn method_name(m: StartMethod) -> &'static str {
    match m {
        StartMethod::Forkserver => "forkserver",
        StartMethod::Spawn => "spawn",
        StartMethod::Fork => "fork",
    }
}

fn bench_spawn(cfg: &Cfg, method: StartMethod) -> R<()> {
    let name = method_name(method);
    let id = format!("spawn.{name}.first_reply");
    let (n_target, budget) = match method {
        StartMethod::Spawn => (cfg.n(100, 5), Duration::from_secs(8)),
        _ => (cfg.n(200, 20), Duration::from_secs(8)),
    };
    let threads = thread_count();
    if method == StartMethod::Fork && threads != 1 {
        return Err(format!(
            "the runner has {threads} threads; fork needs a single-threaded process"
        ));
    }
    let mut series = Vec::new();
    let mut cold = None;
    for _ in 0..cfg.reps {
        let mut samples = Vec::with_capacity(n_target);
        let start = Instant::now();
        // One extra, untimed-in-the-stats start first: the cold one (it may start the
        // zygote, and it faults in the binary's pages).
        for i in 0..=n_target {
            let t0 = Instant::now();
            let a = spawn_sink(method)?;
            a.ask(Ping).map_err(|e| format!("first ask failed: {e}"))?;
            let us = t0.elapsed().as_secs_f64() * 1e6;
            finish(&a)?;
            if i == 0 {
                cold.get_or_insert(us);
                continue;
            }
            samples.push(us);
            if start.elapsed() > budget && samples.len() >= 15 {
                break;
            }
        }
        series.push(samples);
    }
    dist_record(
        &id,
        &format!(
            "start method {name}: procession::spawn_with(Sink, start_method={name}) then \
             ask(Ping) (a trivial request, empty reply); timed from before spawn to the \
             reply in hand; stop()+join() afterwards, not timed; the first (cold) start of \
             each rep excluded (cold_us: the very first); root process single-threaded: {}",
            threads == 1
        ),
        &series,
    )
    .f("cold_us", cold.unwrap_or(f64::NAN))
    .s("method", name)
    .s("py_id", &format!("spawn.{name}.first_msg"))
    .emit();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. ask round trip

fn rtt_series(cfg: &Cfg, n: usize, warm: usize) -> R<Vec<Vec<f64>>> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let payload = ByteBuf::from(b"0123456789abcdef".to_vec());
    let ask = |m: Echo| -> R<ByteBuf> { a.ask(m).map_err(|e| format!("ask failed: {e}")) };
    for _ in 0..warm {
        ask(Echo(payload.clone()))?;
    }
    let mut series = Vec::new();
    for _ in 0..cfg.reps {
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let msg = Echo(payload.clone());
            let t0 = Instant::now();
            let back = ask(msg)?;
            samples.push(t0.elapsed().as_secs_f64() * 1e6);
            if back.len() != 16 {
                return Err("echo mismatch".into());
            }
        }
        series.push(samples);
    }
    finish(&a)?;
    Ok(series)
}

fn bench_rtt(cfg: &Cfg, variant: &str) -> R<()> {
    let (n, warm) = (cfg.n(20_000, 2_000), cfg.n(2_000, 200));
    let spin = std::env::var("PROCESSION_SPIN_US").unwrap_or_else(|_| "50 (default)".into());
    let mut spinners = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let (id, py_id, note) = match variant {
        "rtt" => ("ask_rtt.bytes16", "pipe_rtt.bytes16", String::new()),
        "rtt_nospin" => ("ask_rtt.bytes16_nospin", "pipe_rtt.bytes16", String::new()),
        "rtt_busy" => {
            let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
            for _ in 0..cpus {
                let stop = stop.clone();
                spinners.push(std::thread::spawn(move || {
                    // SAFETY: plain syscalls on the calling thread; on Linux the nice value
                    // is per thread, so this lowers only this spinner.
                    unsafe {
                        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
                    }
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                }));
            }
            std::thread::sleep(Duration::from_millis(200)); // let the spinners get going
            (
                "ask_rtt.bytes16_busy_cpus",
                "pipe_rtt.bytes16_busy_cpus",
                format!(
                    "; diagnostic: {cpus} nice-19 busy-loop threads run meanwhile so no CPU \
                     goes idle"
                ),
            )
        }
        other => return Err(format!("unknown round-trip variant {other}")),
    };
    let result = rtt_series(cfg, n, warm);
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        let _ = s.join();
    }
    let series = result?;
    dist_record(
        id,
        &format!(
            "ActorRef::ask(Echo(16-byte ByteBuf)), the actor replies with the same 16 bytes; \
             each round trip timed individually ({warm} warm-up round trips discarded); \
             PROCESSION_SPIN_US={spin}{note}"
        ),
        &series,
    )
    .s("spin_us", &spin)
    .s("py_id", py_id)
    .emit();
    Ok(())
}

/// Runs `--sub <which>` in a fresh copy of this binary with `env` set, forwarding its lines.
fn run_sub(which: &str, env: &[(&str, &str)]) -> R<()> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--sub").arg(which).stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot re-run: {e}"))?;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| format!("reading the sub-run: {e}"))?;
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        }
    }
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("sub-run {which} ended with {status}"))
    }
}

// ---------------------------------------------------------------------------------------
// 3./4. tell throughput

/// Tells `n` messages from `senders` threads (each its own share, in order), then asks for
/// the count; returns the seconds from the first tell to the count in hand.
fn tell_run(a: &ActorRef<Sink>, n: u64, senders: u64, send: &SendFn) -> R<f64> {
    let t0 = Instant::now();
    if senders == 1 {
        for i in 0..n {
            send(a, i)?;
        }
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..senders)
                .map(|k| {
                    let a = a.clone();
                    let share = n / senders + u64::from(k < n % senders);
                    s.spawn(move || (0..share).try_for_each(|i| send(&a, i)))
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|_| Err("sender panicked".into())))
        })?;
    }
    let (got, _) = a.ask(Take).map_err(|e| format!("count ask failed: {e}"))?;
    let el = t0.elapsed().as_secs_f64();
    if got != n {
        return Err(format!("actor counted {got} of {n} messages"));
    }
    Ok(el)
}

/// Sends message number `i` of a run to the actor.
type SendFn = dyn Fn(&ActorRef<Sink>, u64) -> R<()> + Sync;

struct Payload {
    name: &'static str,
    what: &'static str,
    send: Box<SendFn>,
    py: Option<(&'static str, &'static str)>,
}

fn tell_err<M>(e: procession::TellError<M>) -> String {
    format!("tell failed: {e}")
}

fn payloads() -> Vec<Payload> {
    let b64 = Blob(Arc::new(vec![b'x'; 64]));
    vec![
        Payload {
            name: "u64",
            what: "Tick(u64)",
            send: Box::new(|a, i| a.tell(Tick(i)).map_err(tell_err)),
            py: None,
        },
        Payload {
            name: "tuple",
            what: "Pair(i, \"hello\") (the shape of Python's (i, 'hello'))",
            send: Box::new(|a, i| a.tell(Pair(i, Cow::Borrowed("hello"))).map_err(tell_err)),
            py: Some(("throughput.pipe.tuple", "throughput.queue.tuple")),
        },
        Payload {
            name: "bytes64",
            what: "Bytes(64 bytes) (one shared buffer, serialized as a CBOR byte string)",
            send: Box::new(move |a, _| a.tell(Bytes(b64.clone())).map_err(tell_err)),
            py: Some(("throughput.pipe.bytes64", "throughput.queue.bytes64")),
        },
    ]
}

fn bench_tell(cfg: &Cfg, p: &Payload, senders: u64) -> R<()> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let mut run = |n: u64| tell_run(&a, n, senders, &*p.send);
    let n = calibrate(cfg, &mut run, 5_000, 1 << 32)?;
    let mut rates = Vec::new();
    let mut els = Vec::new();
    for _ in 0..cfg.reps {
        let el = run(n)?;
        els.push(el);
        rates.push(n as f64 / el);
    }
    finish(&a)?;
    let who = if senders == 1 {
        "1 sender thread".to_string()
    } else {
        format!("{senders} sender threads (ActorRef clones), n/{senders} each")
    };
    let id = format!(
        "tell.{}.{}",
        p.name,
        if senders == 1 {
            "1sender".to_string()
        } else {
            format!("{senders}senders")
        }
    );
    let mut rec = rate_record(
        &id,
        &format!(
            "{who}: n x ActorRef::tell({}) to one actor that counts them, then one \
             ask(Take) returning the count (== n checked); clock from the first tell to the \
             count in hand (end-to-end delivery); actor started before the clock",
            p.what
        ),
        "msg/s",
        &rates,
    )
    .i("n_per_rep", n)
    .list("elapsed_s", &els)
    .i("senders", senders);
    if let (Some((py, also)), 1) = (p.py, senders) {
        rec = rec.s("py_id", py).strs("py_also", &[also]);
    }
    rec.emit();
    Ok(())
}

fn bench_bytes(cfg: &Cfg, label: &str, size: usize) -> R<()> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let blob = Blob(Arc::new(vec![0u8; size]));
    let mut run = |n: u64| -> R<f64> {
        let t0 = Instant::now();
        for _ in 0..n {
            a.tell(Bytes(blob.clone())).map_err(tell_err)?;
        }
        let (got, bytes) = a.ask(Take).map_err(|e| format!("count ask failed: {e}"))?;
        let el = t0.elapsed().as_secs_f64();
        if got != n || bytes != n * size as u64 {
            return Err(format!("actor got {got} messages / {bytes} bytes of {n}"));
        }
        Ok(el)
    };
    let n0 = if size <= 1 << 20 { 16 } else { 4 };
    let saved = cfg.target_s;
    let cfg_large = Cfg {
        target_s: saved * 0.75,
        only: None,
        ..*cfg
    };
    let n = calibrate(&cfg_large, &mut run, n0, 1 << 20)?.max(4);
    let mut mbs = Vec::new();
    let mut els = Vec::new();
    for _ in 0..cfg.reps {
        let el = run(n)?;
        els.push(el);
        mbs.push(n as f64 * size as f64 / 1e6 / el);
    }
    finish(&a)?;
    rate_record(
        &format!("bytes.{label}"),
        &format!(
            "n x ActorRef::tell(Bytes({label})) ({size} bytes each, one shared buffer, a CBOR \
             byte string; the actor adds up the lengths), then ask(Take) (count and byte \
             total checked); MB = 10^6 bytes; clock from the first tell to the count in hand"
        ),
        "MB/s",
        &mbs,
    )
    .i("n_per_rep", n)
    .list("elapsed_s", &els)
    .s("py_id", &format!("large.pipe.{label}"))
    .strs("py_also", &[&format!("large.queue.{label}")])
    .emit();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 5. memory per idle actor

fn bench_mem(cfg: &Cfg) -> R<()> {
    let count = cfg.n(20, 5);
    let mut fields: [(&str, Vec<f64>); 5] = [
        ("Pss", vec![]),
        ("Rss", vec![]),
        ("Pss_Anon", vec![]),
        ("Pss_File", vec![]),
        ("Pss_Shmem", vec![]),
    ];
    for _ in 0..cfg.reps {
        let mut actors = Vec::new();
        for _ in 0..count {
            let a = spawn_sink(StartMethod::Forkserver)?;
            a.ask(Ping).map_err(|e| format!("ask failed: {e}"))?;
            actors.push(a);
        }
        for (field, vals) in fields.iter_mut() {
            let per: Vec<f64> = actors
                .iter()
                .filter_map(|a| smaps(a.pid(), field))
                .collect();
            vals.push(median(&per));
        }
        for a in &actors {
            finish(a)?;
        }
    }
    let [pss, rss, anon, file, shmem] = &fields;
    let desc = |what: &str| {
        format!(
            "{what} of one idle actor process (forkserver start method), from \
             /proc/PID/smaps_rollup, with {count} such actors alive after one ask(Ping) each; \
             median over the actors, then over the reps. PSS divides shared pages among \
             the processes sharing them (the zygote and sibling actors)"
        )
    };
    Json::new("mem.idle_actor.pss")
        .s("desc", &desc("PSS (proportional set size)"))
        .s("unit", "KiB")
        .f("value", median(&pss.1))
        .s("stat", &format!("median of {} reps", pss.1.len()))
        .list("reps", &pss.1)
        .f("pss_anon_kib", median(&anon.1))
        .f("pss_file_kib", median(&file.1))
        .f("pss_shmem_kib", median(&shmem.1))
        .i("actors", count as u64)
        .emit();
    Json::new("mem.idle_actor.rss")
        .s("desc", &desc("RSS (resident set size)"))
        .s("unit", "KiB")
        .f("value", median(&rss.1))
        .s("stat", &format!("median of {} reps", rss.1.len()))
        .list("reps", &rss.1)
        .i("actors", count as u64)
        .emit();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 6. scale

/// A scale phase: name, what it does, and how to read its time from a rep.
type Phase = (&'static str, &'static str, fn(&ScaleRep) -> f64);

#[derive(Default)]
struct ScaleRep {
    spawn_s: f64,
    ask_s: f64,
    stop_s: f64,
    pss_kib: f64,
    root_rss_kib: f64,
}

fn scale_rep(n: usize) -> R<ScaleRep> {
    let mut rep = ScaleRep::default();
    // Dropping `actors` on an early return kills and joins whatever was started.
    let mut actors: Vec<Owned> = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        match spawn_sink(StartMethod::Forkserver) {
            Ok(a) => actors.push(a),
            Err(e) => return Err(format!("spawn #{} of {n}: {e}", i + 1)),
        }
    }
    rep.spawn_s = t0.elapsed().as_secs_f64();
    rep.pss_kib = actors.iter().filter_map(|a| smaps(a.pid(), "Pss")).sum();
    rep.root_rss_kib = proc_kib("/proc/self/status", "VmRSS").unwrap_or(f64::NAN);
    let t1 = Instant::now();
    for (i, a) in actors.iter().enumerate() {
        if let Err(e) = a.ask(Ping) {
            return Err(format!("ask #{} of {n}: {e}", i + 1));
        }
    }
    rep.ask_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    for a in &actors {
        if let Err(e) = a.stop() {
            return Err(format!("stop: {e}"));
        }
    }
    for a in &actors {
        match a.join_timeout(Duration::from_secs(30)) {
            Ok(Exit::Stopped) => {}
            other => return Err(format!("join: {other:?}")),
        }
    }
    rep.stop_s = t2.elapsed().as_secs_f64();
    Ok(rep)
}

fn bench_scale(cfg: &Cfg, n: usize) {
    let mut reps = Vec::new();
    let mut error = None;
    for _ in 0..cfg.reps {
        match scale_rep(n) {
            Ok(r) => reps.push(r),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let phases: [Phase; 3] = [
        (
            "spawn",
            "procession::spawn (forkserver) of N Sink actors, one after another; each \
             spawn returns once the actor's create has run",
            |r| r.spawn_s,
        ),
        (
            "ask",
            "one ask(Ping) to each of the N actors, one after another (their first message)",
            |r| r.ask_s,
        ),
        (
            "stop",
            "stop() on each of the N actors, then join() on each (Exit::Stopped checked)",
            |r| r.stop_s,
        ),
    ];
    for (phase, what, get) in phases {
        let id = format!("scale.{n}.{phase}");
        let ms: Vec<f64> = reps.iter().map(|r| get(r) * 1e3).collect();
        let per: Vec<f64> = reps.iter().map(|r| get(r) * 1e6 / n as f64).collect();
        let mut rec = Json::new(&id)
            .s(
                "desc",
                &format!("N = {n}: {what}; wall time of the whole phase"),
            )
            .s("unit", "ms")
            .f("value", median(&ms))
            .s("stat", &format!("median of {} reps", ms.len()))
            .list("reps", &ms)
            .f("per_actor_us", median(&per))
            .i("actors", n as u64);
        if let Some(e) = &error {
            rec = rec.s("error", e);
        }
        rec.emit();
    }
    let pss: Vec<f64> = reps.iter().map(|r| r.pss_kib).collect();
    let rss: Vec<f64> = reps.iter().map(|r| r.root_rss_kib).collect();
    let mut rec = Json::new(&format!("scale.{n}.mem"))
        .s(
            "desc",
            &format!(
                "N = {n}: sum of the PSS of all N actor processes (smaps_rollup) right after \
                 the spawn phase; root_rss_kib: the root process's VmRSS at that moment"
            ),
        )
        .s("unit", "KiB")
        .f("value", median(&pss))
        .s("stat", &format!("median of {} reps", pss.len()))
        .list("reps", &pss)
        .f("per_actor_kib", median(&pss) / n as f64)
        .f("root_rss_kib", median(&rss))
        .i("actors", n as u64);
    if let Some(e) = &error {
        eprintln!("   ERROR in scale.{n}: {e}");
        rec = rec.s("error", e);
    }
    rec.emit();
}

// ---------------------------------------------------------------------------------------
// 7. restart latency

/// Replies with the incarnation that handles it (0 for the first, +1 per restart).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct WhichIncarnation;

/// The supervised worker of the restart figure.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(WhichIncarnation))]
struct Phoenix;

impl Handler<WhichIncarnation> for Phoenix {
    fn handle(&mut self, _: WhichIncarnation, cx: &mut Context<Self>) -> u32 {
        cx.incarnation()
    }
}

/// A supervisor this runner started. Dropping it kills and joins it if it still runs;
/// its child dies with it.
struct OwnedSup(ActorRef<SupervisorActor>);

impl Drop for OwnedSup {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.join_timeout(Duration::from_secs(10));
    }
}

/// What one restart cost, and what the asker saw on the way.
struct RestartSample {
    us: f64,
    /// Replies from the killed incarnation (the ask raced the SIGKILL).
    stale: u64,
    /// Asks the killed incarnation had taken when it died (at most once: `ActorDied`).
    died: u64,
}

/// Kills the worker, then asks it until an incarnation newer than the killed one
/// answers; times from just before `kill()` to that reply in hand.
fn restart_once(w: &ActorRef<Phoenix>) -> R<RestartSample> {
    let ask = || w.ask_timeout(WhichIncarnation, Duration::from_secs(30));
    let before = ask().map_err(|e| format!("ask before the kill failed: {e}"))?;
    let (mut stale, mut died) = (0, 0);
    let t0 = Instant::now();
    w.kill().map_err(|e| format!("kill failed: {e}"))?;
    loop {
        match ask() {
            Ok(now) if now > before => break,
            Ok(_) => stale += 1,
            Err(procession::Error::ActorDied { .. }) => died += 1,
            Err(e) => return Err(format!("ask after the kill failed: {e}")),
        }
        if stale + died > 100 {
            return Err("no new incarnation answered 100 asks after the kill".into());
        }
    }
    Ok(RestartSample {
        us: t0.elapsed().as_secs_f64() * 1e6,
        stale,
        died,
    })
}

fn bench_restart(cfg: &Cfg) -> R<()> {
    let (n, warm) = (cfg.n(200, 20), cfg.n(10, 2));
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(1_000_000, Duration::from_secs(1))
        .child(ChildSpec::worker::<Phoenix>("phoenix", Phoenix).shutdown(Shutdown::BrutalKill))
        .spawn()
        .map(OwnedSup)
        .map_err(|e| format!("supervisor spawn failed: {e}"))?;
    let w = sup
        .0
        .child::<Phoenix>("phoenix")
        .map_err(|e| format!("no child: {e}"))?;
    for _ in 0..warm {
        restart_once(&w)?;
    }
    let (mut stale, mut died) = (0, 0);
    let mut series = Vec::new();
    for _ in 0..cfg.reps {
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let s = restart_once(&w)?;
            samples.push(s.us);
            stale += s.stale;
            died += s.died;
        }
        series.push(samples);
    }
    let restarts = sup
        .0
        .which_children()
        .map_err(|e| format!("which_children failed: {e}"))?
        .first()
        .map_or(0, |c| c.restarts);
    sup.0.stop().map_err(|e| format!("stop failed: {e}"))?;
    match sup.0.join_timeout(Duration::from_secs(30)) {
        Ok(Exit::Stopped) => {}
        Ok(other) => return Err(format!("supervisor ended with {other}")),
        Err(e) => return Err(format!("supervisor join failed: {e}")),
    }
    dist_record(
        "restart.sigkill_to_next_reply",
        &format!(
            "restart latency: one Phoenix worker under a OneForOne supervisor (intensity \
             1,000,000 in 1 s, so it never gives up; forkserver); each sample: ask it once \
             (untimed, the incarnation before), then ActorRef::kill() (SIGKILL) and at once \
             ask(WhichIncarnation), which waits in the mailbox and is answered by the new \
             incarnation; timed from just before kill() to a reply from a newer incarnation \
             in hand (an ask the dying incarnation took or answered is asked again, inside \
             the timing: stale_replies, actor_died); {warm} warm-up restarts discarded. \
             Covers the exit being reaped and reported to the supervisor, the zygote forking \
             the new incarnation, its create, and the queued ask. No Python counterpart: \
             multiprocessing has no supervisor"
        ),
        &series,
    )
    .i("stale_replies", stale)
    .i("actor_died", died)
    .i("restarts_reported", u64::from(restarts))
    .emit();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 8. the multiprocessing toolbox (issue 4): Lock, Value, Manager, Queue, Pool, fan-out

/// `(i, "hello")`, the shape of Python's tuple payload.
type Tup = (u64, Cow<'static, str>);

/// An actor of any type this runner started. Dropping it kills and joins the actor if it
/// still runs, so an error part-way through a figure leaves no process behind.
struct Held<A: Dispatch>(ActorRef<A>);

impl<A: Dispatch> std::ops::Deref for Held<A> {
    type Target = ActorRef<A>;
    fn deref(&self) -> &ActorRef<A> {
        &self.0
    }
}

impl<A: Dispatch> Drop for Held<A> {
    fn drop(&mut self) {
        let _ = self.0.kill(); // a no-op once the actor has exited
        let _ = self.0.join_timeout(Duration::from_secs(10));
    }
}

fn held<A: Dispatch>(args: A::Args) -> R<Held<A>> {
    procession::spawn_with::<A>(
        args,
        SpawnOptions::new().start_method(StartMethod::Forkserver),
    )
    .map(Held)
    .map_err(|e| format!("spawn failed: {e}"))
}

/// Stops a held actor gracefully and checks that it ended with `Exit::Stopped`.
fn finish_held<A: Dispatch>(a: &Held<A>) -> R<()> {
    a.stop().map_err(|e| format!("stop failed: {e}"))?;
    match a.join_timeout(Duration::from_secs(30)) {
        Ok(Exit::Stopped) => Ok(()),
        Ok(other) => Err(format!("actor ended with {other}")),
        Err(e) => Err(format!("join failed: {e}")),
    }
}

/// Seconds on CLOCK_MONOTONIC (the same clock in every process, like Python's
/// `perf_counter`), or this process's CPU seconds with CLOCK_PROCESS_CPUTIME_ID.
fn clock_s(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// What a worker of a multi-process figure reports about its own timed window (as
/// mp_baseline.py's `_stats`).
#[derive(Serialize, Deserialize, Clone, Copy, Default)]
struct ChildStats {
    /// Start and end of the window, CLOCK_MONOTONIC seconds.
    t0: f64,
    t1: f64,
    /// CPU seconds the process used in the window.
    cpu: f64,
    /// The CPU the process last ran on.
    last_cpu: i32,
}

/// `group_diag` of mp_baseline.py: per-child CPU seconds, CPU-busy share, overlap of the
/// children's windows (share of the wall time), last CPU.
fn group_diag(wall: f64, st: &[ChildStats]) -> String {
    let cpu: Vec<String> = st.iter().map(|c| num(c.cpu)).collect();
    let busy: Vec<String> = st
        .iter()
        .map(|c| num(c.cpu / (c.t1 - c.t0).max(1e-9)))
        .collect();
    let last: Vec<String> = st.iter().map(|c| c.last_cpu.to_string()).collect();
    let t0 = st.iter().map(|c| c.t0).fold(f64::NEG_INFINITY, f64::max);
    let t1 = st.iter().map(|c| c.t1).fold(f64::INFINITY, f64::min);
    format!(
        "{{\"child_cpu_s\": [{}], \"child_busy\": [{}], \"last_cpu\": [{}], \
         \"overlap_of_wall\": {}}}",
        cpu.join(", "),
        busy.join(", "),
        last.join(", "),
        num((t1 - t0).max(0.0) / wall)
    )
}

impl Json {
    /// A field whose value is already JSON text.
    fn raw(mut self, k: &str, v: &str) -> Json {
        self.key(k);
        self.0.push_str(v);
        self
    }
}

/// Runs `run` (one repetition: n operations -> seconds) after calibration, `reps` times.
fn measure(
    cfg: &Cfg,
    run: &mut dyn FnMut(u64) -> R<f64>,
    n0: u64,
    nmin: u64,
) -> R<(u64, Vec<f64>)> {
    let n = calibrate(cfg, run, n0, 1 << 40)?.max(nmin);
    let mut els = Vec::new();
    for _ in 0..cfg.reps {
        els.push(run(n)?);
    }
    Ok((n, els))
}

fn rates_of(els: &[f64], ops: f64) -> Vec<f64> {
    els.iter().map(|e| ops / e).collect()
}

// --- Lock and Value -------------------------------------------------------------------

/// What a [`Grunt`] does N times in its timed window.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
enum Work {
    /// `drop(lock.acquire())`.
    LockPairs,
    /// `*value.get_lock() += 1`.
    ValueLocked,
    /// `value.fetch_add(1)`.
    ValueAtomic,
}

/// Gives a grunt the shared Lock and Value (maps them in its process before any timing).
#[derive(Serialize, Deserialize, Message)]
struct Arm(Lock, Value<u64>);

/// "go": do `Work` N times (a tell; the stats wait for `Report`).
#[derive(Serialize, Deserialize, Message)]
struct Go(Work, u64);

/// The stats of the last `Go` (asked after it, so the reply means "done").
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<ChildStats, String>)]
struct Report;

/// A worker process of the Lock and Value figures.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Arm, Go, Report, Pin))]
struct Grunt {
    #[serde(skip)]
    lock: Option<Lock>,
    #[serde(skip)]
    value: Option<Value<u64>>,
    #[serde(skip)]
    last: Option<Result<ChildStats, String>>,
    /// The affinity before a `Pin`, restored by `Pin(None)`.
    #[serde(skip)]
    affinity: Option<libc::cpu_set_t>,
}

impl Handler<Arm> for Grunt {
    fn handle(&mut self, Arm(lock, value): Arm, _cx: &mut Context<Self>) {
        self.lock = Some(lock);
        self.value = Some(value);
    }
}

impl Handler<Go> for Grunt {
    fn handle(&mut self, Go(work, n): Go, _cx: &mut Context<Self>) {
        let (Some(lock), Some(value)) = (&self.lock, &self.value) else {
            self.last = Some(Err("Go before Arm".into()));
            return;
        };
        let c0 = clock_s(libc::CLOCK_PROCESS_CPUTIME_ID);
        let t0 = clock_s(libc::CLOCK_MONOTONIC);
        match work {
            Work::LockPairs => {
                for _ in 0..n {
                    drop(std::hint::black_box(lock.acquire()));
                }
            }
            Work::ValueLocked => {
                for _ in 0..n {
                    *value.get_lock().unwrap_or_else(OwnerDied::into_inner) += 1;
                }
            }
            Work::ValueAtomic => {
                for _ in 0..n {
                    value.fetch_add(1);
                }
            }
        }
        let t1 = clock_s(libc::CLOCK_MONOTONIC);
        self.last = Some(Ok(ChildStats {
            t0,
            t1,
            cpu: clock_s(libc::CLOCK_PROCESS_CPUTIME_ID) - c0,
            // SAFETY: a plain query of the calling thread's CPU.
            last_cpu: unsafe { libc::sched_getcpu() },
        }));
    }
}

impl Handler<Report> for Grunt {
    fn handle(&mut self, _: Report, _cx: &mut Context<Self>) -> Result<ChildStats, String> {
        self.last.take().unwrap_or_else(|| Err("no Go ran".into()))
    }
}

const LONG: Duration = Duration::from_secs(120);

/// One repetition of a group figure (mp_baseline.py's `run_group`): "go" to every grunt,
/// then wait for each one's report; wall time from before the first "go" to the last
/// report in hand.
fn group_run(grunts: &[Held<Grunt>], work: Work, n: u64) -> R<(f64, Vec<ChildStats>)> {
    let t0 = Instant::now();
    for g in grunts {
        g.tell(Go(work, n)).map_err(tell_err)?;
    }
    let mut stats = Vec::new();
    for g in grunts {
        stats.push(
            g.ask_timeout(Report, LONG)
                .map_err(|e| format!("report ask failed: {e}"))??,
        );
    }
    Ok((t0.elapsed().as_secs_f64(), stats))
}

fn two_grunts(lock: &Lock, value: &Value<u64>) -> R<Vec<Held<Grunt>>> {
    let mut gs = Vec::new();
    for _ in 0..2 {
        let g = held::<Grunt>(Grunt::default())?;
        g.ask(Arm(lock.clone(), value.clone()))
            .map_err(|e| format!("arm failed: {e}"))?;
        gs.push(g);
    }
    Ok(gs)
}

/// Pins the calling process to one CPU, or restores the affinity it had before.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(), String>)]
struct Pin(Option<usize>);

/// Pins process `pid` (0: the caller) to one CPU (`Some`), saving its affinity in
/// `saved` first, or restores the saved affinity (`None`).
fn set_affinity(
    pid: libc::pid_t,
    cpu: Option<usize>,
    saved: &mut Option<libc::cpu_set_t>,
) -> Result<(), String> {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is plain data (all-zero is the empty set); CPU_SET checks the
    // index against the set's size; the affinity calls read/write one set we own.
    unsafe {
        let set = match cpu {
            Some(c) => {
                if saved.is_none() {
                    let mut old: libc::cpu_set_t = std::mem::zeroed();
                    if libc::sched_getaffinity(pid, size, &mut old) != 0 {
                        return Err(format!("sched_getaffinity({pid}) failed"));
                    }
                    *saved = Some(old);
                }
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(c, &mut set);
                set
            }
            None => match saved.take() {
                Some(old) => old,
                None => return Ok(()),
            },
        };
        if libc::sched_setaffinity(pid, size, &set) != 0 {
            return Err(format!("sched_setaffinity({pid}, {cpu:?}) failed"));
        }
    }
    Ok(())
}

impl Handler<Pin> for Grunt {
    fn handle(&mut self, Pin(cpu): Pin, _cx: &mut Context<Self>) -> Result<(), String> {
        set_affinity(0, cpu, &mut self.affinity)
    }
}

/// Pins grunt k to CPU k (`true`), or restores their affinity (`false`).
fn pin_grunts(grunts: &[Held<Grunt>], on: bool) -> R<()> {
    for (k, g) in grunts.iter().enumerate() {
        g.ask(Pin(on.then_some(k)))
            .map_err(|e| format!("pin ask failed: {e}"))??;
    }
    Ok(())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One 2-process figure: calibrate, then `reps` group runs of `work`; when `value` is
/// given, it is reset before and checked (== 2N) after every run.
fn group_figure(
    cfg: &Cfg,
    grunts: &[Held<Grunt>],
    work: Work,
    value: Option<&Value<u64>>,
    n0: u64,
) -> R<(u64, Vec<f64>, String, Vec<f64>)> {
    let mut diags = Vec::new();
    let mut finals = Vec::new();
    let mut run = |n: u64| -> R<f64> {
        if let Some(v) = value {
            v.store(0);
        }
        let (wall, st) = group_run(grunts, work, n)?;
        if let Some(v) = value {
            let got = v.get();
            if got != 2 * n {
                return Err(format!("Value count wrong: {got} != {}", 2 * n));
            }
            finals.push(got as f64);
        }
        diags.push(group_diag(wall, &st));
        Ok(wall)
    };
    let (n, els) = measure(cfg, &mut run, n0, 1000)?;
    let k = els.len();
    let diag = format!("[{}]", diags[diags.len() - k..].join(", "));
    let finals = finals[finals.len().saturating_sub(k)..].to_vec();
    Ok((n, els, diag, finals))
}

const PINNED_NOTE: &str = "; diagnostic variant: worker k pinned to CPU k \
     (sched_setaffinity), so the two really run at the same time on two CPUs and contend \
     (unpinned, the scheduler may put both on one CPU, where they take turns)";

fn bench_lock(cfg: &Cfg) -> R<()> {
    let lock = Lock::new().map_err(|e| format!("Lock::new: {e}"))?;
    let mut local = |n: u64| -> R<f64> {
        let t0 = Instant::now();
        for _ in 0..n {
            drop(std::hint::black_box(lock.acquire()));
        }
        Ok(t0.elapsed().as_secs_f64())
    };
    let (n, els) = measure(cfg, &mut local, 100_000, 1000)?;
    rate_record(
        "lock.uncontended_1proc",
        "procession::sync::Lock (robust process-shared mutex); drop(lock.acquire()) \
         (acquire, then release by dropping the guard) in a loop in the runner process, \
         no other process touching it",
        "pairs/s",
        &rates_of(&els, n as f64),
    )
    .i("n_per_rep", n)
    .list("elapsed_s", &els)
    .s("py_id", "lock.uncontended_1proc")
    .emit();

    let value = Value::new(0u64).map_err(|e| format!("Value::new: {e}"))?;
    let grunts = two_grunts(&lock, &value)?;
    let pinned: &[bool] = if cpus() >= 2 {
        &[false, true]
    } else {
        &[false]
    };
    for &pin in pinned {
        pin_grunts(&grunts, pin)?;
        let (n, els, diag, _) = group_figure(cfg, &grunts, Work::LockPairs, None, 50_000)?;
        rate_record(
            if pin {
                "lock.contended_2proc_pinned"
            } else {
                "lock.contended_2proc"
            },
            &format!(
                "procession::sync::Lock shared by 2 actor processes, each doing N x \
                 drop(lock.acquire()) with nothing inside; total pairs (2N) / wall time from \
                 the first \"go\" (a tell) to both workers' reports in hand{}",
                if pin { PINNED_NOTE } else { "" }
            ),
            "pairs/s",
            &rates_of(&els, 2.0 * n as f64),
        )
        .i("n_per_process", n)
        .list("elapsed_s", &els)
        .raw("diag_per_rep", &diag)
        .s("py_id", "lock.contended_2proc")
        .emit();
    }
    pin_grunts(&grunts, false)?;
    for g in &grunts {
        finish_held(g)?;
    }
    Ok(())
}

fn bench_value(cfg: &Cfg) -> R<()> {
    let lock = Lock::new().map_err(|e| format!("Lock::new: {e}"))?;
    let value = Value::new(0u64).map_err(|e| format!("Value::new: {e}"))?;
    let grunts = two_grunts(&lock, &value)?;
    let locked = "`*value.get_lock() += 1` (the value's robust re-entrant lock, as Python's \
                  `with v.get_lock(): v.value += 1`)";
    let mut figures = vec![
        (Work::ValueLocked, false, "shm.value_incr_2proc", locked, ""),
        (
            Work::ValueAtomic,
            false,
            "shm.value_fetch_add_2proc",
            "`value.fetch_add(1)` (a lock-free atomic add on the shared value)",
            "; NOT the same operation as the Python figure: Python has no lock-free \
             increment, so this is shown beside its locked one",
        ),
    ];
    if cpus() >= 2 {
        figures.push((
            Work::ValueLocked,
            true,
            "shm.value_incr_2proc_pinned",
            locked,
            PINNED_NOTE,
        ));
    }
    for (work, pin, id, what, note) in figures {
        pin_grunts(&grunts, pin)?;
        let (n, els, diag, finals) = group_figure(cfg, &grunts, work, Some(&value), 20_000)?;
        rate_record(
            id,
            &format!(
                "Value<u64> shared by 2 actor processes, each doing N x {what}; total \
                 increments (2N) / wall time from the first \"go\" to both workers' reports \
                 in hand; final value checked == 2N on every rep{note}"
            ),
            "incr/s",
            &rates_of(&els, 2.0 * n as f64),
        )
        .i("n_per_process", n)
        .s("final_count_exact", "true")
        .list("final_values", &finals)
        .list("elapsed_s", &els)
        .raw("diag_per_rep", &diag)
        .s("py_id", "shm.value_incr_2proc")
        .emit();
    }
    pin_grunts(&grunts, false)?;
    for g in &grunts {
        finish_held(g)?;
    }
    Ok(())
}

// --- Manager ----------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
enum MgrOp {
    DictSet,
    DictGet,
    ListAppend,
}

/// Do `op` N times through the proxies, timed inside the worker; replies the seconds.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<f64, String>)]
struct MgrGo(MgrOp, u64, SharedMap<u64, u64>, SharedList<u64>);

/// The child process of the Manager figures.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(MgrGo, Pin))]
struct MgrWorker {
    #[serde(skip)]
    affinity: Option<libc::cpu_set_t>,
}

impl Handler<Pin> for MgrWorker {
    fn handle(&mut self, Pin(cpu): Pin, _cx: &mut Context<Self>) -> Result<(), String> {
        set_affinity(0, cpu, &mut self.affinity)
    }
}

impl Handler<MgrGo> for MgrWorker {
    fn handle(
        &mut self,
        MgrGo(op, n, map, list): MgrGo,
        _cx: &mut Context<Self>,
    ) -> Result<f64, String> {
        let e = |e: procession::Error| format!("{op:?}: {e}");
        // Establish this process's connection first, as Python's `len(proxy)`.
        map.len().map_err(e)?;
        list.len().map_err(e)?;
        let t0 = Instant::now();
        match op {
            MgrOp::DictSet => {
                for i in 0..n {
                    map.insert(i & 1023, i).map_err(e)?;
                }
            }
            MgrOp::DictGet => {
                for i in 0..n {
                    if map.get(&(i & 1023)).map_err(e)?.is_none() {
                        return Err(format!("key {} missing", i & 1023));
                    }
                }
            }
            MgrOp::ListAppend => {
                for i in 0..n {
                    list.push(i).map_err(e)?;
                }
            }
        }
        Ok(t0.elapsed().as_secs_f64())
    }
}

fn bench_manager(cfg: &Cfg) -> R<()> {
    let m = Manager::start().map_err(|e| format!("Manager::start: {e}"))?;
    let result = manager_figures(cfg, &m);
    let shut = m.shutdown().map_err(|e| format!("manager shutdown: {e}"));
    result?;
    match shut? {
        Exit::Stopped => Ok(()),
        other => Err(format!("manager server ended with {other}")),
    }
}

fn manager_figures(cfg: &Cfg, m: &Manager) -> R<()> {
    let e = |e: procession::Error| format!("manager: {e}");
    let w = held::<MgrWorker>(MgrWorker::default())?;
    let go = |op, n, map: &SharedMap<u64, u64>, list: &SharedList<u64>| -> R<f64> {
        w.ask_timeout(MgrGo(op, n, map.clone(), list.clone()), LONG)
            .map_err(|e| format!("worker ask failed: {e}"))?
    };
    let spare_list = m.list::<u64>().map_err(e)?;
    let figures: [(MgrOp, &str, &str); 3] = [
        (
            MgrOp::DictSet,
            "manager.dict_set",
            "Manager::start().dict::<u64, u64>() proxy (a fresh, empty map per rep), given \
             to an actor process that does map.insert(i & 1023, i) in a loop (1024 int keys, \
             int values; each one ask to the server); timed inside the child, connection \
             pre-established; after each rep len == min(N, 1024) and map[(N-1) & 1023] == \
             N-1 checked",
        ),
        (
            MgrOp::DictGet,
            "manager.dict_get",
            "Manager dict proxy pre-filled with 1024 int keys (one update()); an actor \
             process reads map.get(&(i & 1023)) in a loop (each one ask to the server; a \
             missing key fails the rep); timed inside the child",
        ),
        (
            MgrOp::ListAppend,
            "manager.list_append",
            "Manager::start().list::<u64>() proxy (fresh, empty per rep); an actor process \
             does list.push(i) in a loop (each one ask to the server); timed inside the \
             child; len == N and list[N-1] == N-1 checked",
        ),
    ];
    let filled = m.dict::<u64, u64>().map_err(e)?;
    filled.update((0..1024).map(|i| (i, i))).map_err(e)?;
    let pins: &[bool] = if cpus() >= 2 {
        &[false, true]
    } else {
        &[false]
    };
    let mut server_affinity = None;
    for (&pin, (op, id, desc)) in pins
        .iter()
        .flat_map(|p| figures.iter().map(move |f| (p, *f)))
    {
        // The pinned variants: the server on CPU 0, the worker on CPU 1.
        set_affinity(
            m.pid() as libc::pid_t,
            pin.then_some(0),
            &mut server_affinity,
        )?;
        w.ask(Pin(pin.then_some(1)))
            .map_err(|e| format!("pin ask failed: {e}"))??;
        let mut run = |n: u64| -> R<f64> {
            match op {
                MgrOp::DictSet => {
                    let map = m.dict::<u64, u64>().map_err(e)?;
                    let el = go(op, n, &map, &spare_list)?;
                    let len = map.len().map_err(e)? as u64;
                    let last = map.get(&((n - 1) & 1023)).map_err(e)?;
                    if len != n.min(1024) || last != Some(n - 1) {
                        return Err(format!("dict_set verification failed: len {len}"));
                    }
                    Ok(el)
                }
                MgrOp::DictGet => go(op, n, &filled, &spare_list),
                MgrOp::ListAppend => {
                    let list = m.list::<u64>().map_err(e)?;
                    let el = go(op, n, &filled, &list)?;
                    let len = list.len().map_err(e)? as u64;
                    if len != n || list.get((n - 1) as usize).map_err(e)? != Some(n - 1) {
                        return Err(format!("list_append verification failed: len {len}"));
                    }
                    Ok(el)
                }
            }
        };
        let (n, els) = measure(cfg, &mut run, 500, 1000)?;
        let (rid, note) = if pin {
            (
                format!("{id}_pinned"),
                "; diagnostic variant: the manager's server pinned to CPU 0 and the worker to \
                 CPU 1 (sched_setaffinity), so each round trip goes between two running CPUs \
                 (unpinned, the scheduler may put both on one CPU, where they take turns)",
            )
        } else {
            (id.to_string(), "")
        };
        rate_record(
            &rid,
            &format!("{desc}{note}"),
            "ops/s",
            &rates_of(&els, n as f64),
        )
        .i("n_per_rep", n)
        .list("elapsed_s", &els)
        .s("py_id", id)
        .emit();
    }
    set_affinity(m.pid() as libc::pid_t, None, &mut server_affinity)?;
    w.ask(Pin(None))
        .map_err(|e| format!("pin ask failed: {e}"))??;
    finish_held(&w)
}

// --- Queue and SimpleQueue --------------------------------------------------------------

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

fn bench_queue(cfg: &Cfg, kind: &str, bytes64: bool) -> R<()> {
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

// --- Pool -------------------------------------------------------------------------------

/// `f(x) = x`.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Noop(u64);

/// The pool's worker.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Noop))]
struct PoolWorker;

impl Handler<Noop> for PoolWorker {
    fn handle(&mut self, Noop(x): Noop, _cx: &mut Context<Self>) -> u64 {
        x
    }
}

fn bench_pool(cfg: &Cfg, chunksize: Option<usize>) -> R<()> {
    let tasks = cfg.n(100_000, 5_000) as u64;
    let mut opts = PoolOptions::new()
        .processes(2)
        .start_method(StartMethod::Forkserver);
    if let Some(c) = chunksize {
        opts = opts.chunksize(c);
    }
    let pe = |e: procession::Error| format!("pool: {e}");
    let pool = Pool::<PoolWorker>::with_options(PoolWorker, opts).map_err(pe)?;
    let result = (|| -> R<(Vec<f64>, Vec<f64>)> {
        pool.map((0..2000).map(Noop)).map_err(pe)?; // warm-up
                                                    // A default-chunksize map of 100k no-ops is quick, so it gets more repetitions,
                                                    // as in mp_baseline.py.
        let reps = if chunksize.is_none() {
            cfg.reps.max(if cfg.quick { 1 } else { 10 })
        } else {
            cfg.reps
        };
        let (mut rates, mut els) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let t0 = Instant::now();
            let res = pool.map((0..tasks).map(Noop)).map_err(pe)?;
            let el = t0.elapsed().as_secs_f64();
            if res.len() as u64 != tasks || res.last() != Some(&(tasks - 1)) {
                return Err("pool result wrong".into());
            }
            rates.push(tasks as f64 / el);
            els.push(el);
        }
        Ok((rates, els))
    })();
    pool.close();
    let joined = pool.join().map_err(pe);
    let (rates, els) = result?;
    joined?;
    let (label, eff) = match chunksize {
        Some(c) => (c.to_string(), c as u64),
        None => ("default".to_string(), tasks.div_ceil(2 * 4)),
    };
    rate_record(
        &format!("pool.map.chunksize_{label}"),
        &format!(
            "procession::pool::Pool::<W>::with_options(processes(2){}) .map((0..{tasks}) \
             .map(Noop)) with handler f(x) = x; pool created and warmed up (a map of 2000) \
             beforehand, not timed; tasks / map() wall time; result length and last value \
             checked",
            chunksize.map_or(String::new(), |c| format!(".chunksize({c})"))
        ),
        "tasks/s",
        &rates,
    )
    .i("effective_chunksize", eff)
    .i("tasks", tasks)
    .list("elapsed_s", &els)
    .s("py_id", &format!("pool.map.chunksize_{label}"))
    .emit();
    Ok(())
}

// --- fan-out ----------------------------------------------------------------------------

/// Echo everything received on this pipe end until `None` (or the other end is gone).
#[derive(Serialize, Deserialize, Message)]
struct Serve(PipeEnd<Option<Tup>>);

/// The ask variant: replies with the same tuple.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Tup)]
struct FanAsk(Tup);

/// The tell variant: put the tuple into the reply queue given at `FanArm`.
#[derive(Serialize, Deserialize, Message)]
struct FanTell(Tup);

/// Gives the worker the shared reply queue of the tell variant.
#[derive(Serialize, Deserialize, Message)]
struct FanArm(Queue<Tup>);

/// A fan-out worker process.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(Serve, FanAsk, FanTell, FanArm))]
struct FanWorker {
    #[serde(skip)]
    replies: Option<Queue<Tup>>,
}

impl Handler<Serve> for FanWorker {
    fn handle(&mut self, Serve(end): Serve, _cx: &mut Context<Self>) {
        if end.send(Some((u64::MAX, Cow::Borrowed("ready")))).is_err() {
            return;
        }
        while let Ok(Some(m)) = end.recv() {
            if end.send(Some(m)).is_err() {
                return;
            }
        }
    }
}

impl Handler<FanAsk> for FanWorker {
    fn handle(&mut self, FanAsk(m): FanAsk, _cx: &mut Context<Self>) -> Tup {
        m
    }
}

impl Handler<FanArm> for FanWorker {
    fn handle(&mut self, FanArm(q): FanArm, _cx: &mut Context<Self>) {
        self.replies = Some(q);
    }
}

impl Handler<FanTell> for FanWorker {
    fn handle(&mut self, FanTell(m): FanTell, _cx: &mut Context<Self>) {
        if let Some(q) = &self.replies {
            let _ = q.put(m);
        }
    }
}

fn fan_record(id: &str, how: &str, els: &[f64], workers: u64, rounds: u64, warm: u64) -> Json {
    rate_record(
        id,
        &format!(
            "{workers} worker actor processes; {how}; {rounds} rounds = {} round trips per \
             rep; workers started and warmed up ({warm} rounds) before timing",
            workers * rounds
        ),
        "round-trips/s",
        &rates_of(els, (workers * rounds) as f64),
    )
    .i("workers", workers)
    .i("rounds", rounds)
    .i("round_trips_per_rep", workers * rounds)
    .list("elapsed_s", els)
}

fn bench_fanout(cfg: &Cfg) -> R<()> {
    const WORKERS: usize = 16;
    let (rounds, warm) = (cfg.n(10_000, 300) as u64, cfg.n(500, 20) as u64);
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(held::<FanWorker>(FanWorker::default())?);
    }
    let hello = || Cow::Borrowed("hello");

    // 1. One duplex pipe per worker (the Python figure's mechanism).
    let mut ends = Vec::new();
    for w in &workers {
        let (a, b) = pipe::<Option<Tup>>().map_err(|e| format!("pipe: {e}"))?;
        w.tell(Serve(b)).map_err(tell_err)?;
        ends.push(a);
    }
    for a in &ends {
        match a.recv_timeout(LONG) {
            Ok(Some((u64::MAX, _))) => {}
            other => return Err(format!("worker not ready: {other:?}")),
        }
    }
    let run_pipes = |nr: u64| -> R<f64> {
        let t0 = Instant::now();
        for r in 0..nr {
            for a in &ends {
                a.send(Some((r, hello()))).map_err(tell_err)?;
            }
            for a in &ends {
                match a.recv_timeout(LONG) {
                    Ok(Some((x, _))) if x == r => {}
                    other => return Err(format!("fan-out echo mismatch: {other:?}")),
                }
            }
        }
        Ok(t0.elapsed().as_secs_f64())
    };
    run_pipes(warm)?;
    let mut els = Vec::new();
    for _ in 0..cfg.reps {
        els.push(run_pipes(rounds)?);
    }
    for a in &ends {
        a.send(None).map_err(tell_err)?;
    }
    drop(ends);
    fan_record(
        "fanout.16x10000",
        "each with its own duplex pipe (procession::queue::pipe::<Option<(u64, Cow<str>)>>, \
         the worker's end given in a tell; the worker loops recv/send in that handler); \
         per round the runner sends Some((r, \"hello\")) to every worker, then recv()s \
         every echo (r checked)",
        &els,
        WORKERS as u64,
        rounds,
        warm,
    )
    .s("py_id", "fanout.16x10000")
    .emit();

    // 2. Asks: one ask per worker, one after another (no pipelining across workers).
    let run_asks = |nr: u64| -> R<f64> {
        let t0 = Instant::now();
        for r in 0..nr {
            for w in &workers {
                match w.ask_timeout(FanAsk((r, hello())), LONG) {
                    Ok((x, _)) if x == r => {}
                    Ok((x, _)) => return Err(format!("fan-out ask mismatch: {x} != {r}")),
                    Err(e) => return Err(format!("fan-out ask failed: {e}")),
                }
            }
        }
        Ok(t0.elapsed().as_secs_f64())
    };
    run_asks(warm)?;
    let mut els = Vec::new();
    for _ in 0..cfg.reps {
        els.push(run_asks(rounds)?);
    }
    fan_record(
        "fanout.16x10000.ask",
        "per round the runner asks every worker FanAsk((r, \"hello\")) in turn, each ask \
         waiting for its reply before the next (round trips NOT overlapped across workers, \
         unlike the pipe figure)",
        &els,
        WORKERS as u64,
        rounds,
        warm,
    )
    .s("py_id", "fanout.16x10000")
    .emit();

    // 3. Tells out, one shared reply Queue back.
    let replies = Queue::<Tup>::unbounded().map_err(|e| format!("queue: {e}"))?;
    for w in &workers {
        w.ask(FanArm(replies.clone()))
            .map_err(|e| format!("arm failed: {e}"))?;
    }
    let run_tells = |nr: u64| -> R<f64> {
        let t0 = Instant::now();
        for r in 0..nr {
            for w in &workers {
                w.tell(FanTell((r, hello()))).map_err(tell_err)?;
            }
            for _ in 0..WORKERS {
                match replies.get_timeout(LONG) {
                    Ok((x, _)) if x == r => {}
                    other => return Err(format!("fan-out reply mismatch: {other:?}")),
                }
            }
        }
        Ok(t0.elapsed().as_secs_f64())
    };
    run_tells(warm)?;
    let mut els = Vec::new();
    for _ in 0..cfg.reps {
        els.push(run_tells(rounds)?);
    }
    fan_record(
        "fanout.16x10000.tell_queue",
        "per round the runner tells every worker FanTell((r, \"hello\")); each worker puts \
         the tuple into one shared reply Queue<(u64, Cow<str>)>; the runner get()s 16 \
         replies (r checked)",
        &els,
        WORKERS as u64,
        rounds,
        warm,
    )
    .s("py_id", "fanout.16x10000")
    .emit();

    for w in &workers {
        finish_held(w)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// driver

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Async callers and concurrent askers (issue 9)

/// `ask_async` round trips on a current-thread tokio runtime, each timed individually.
fn bench_ask_async_rtt(cfg: &Cfg) -> R<()> {
    let (n, warm) = (cfg.n(20_000, 2_000), cfg.n(2_000, 200));
    let a = spawn_sink(StartMethod::Forkserver)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    let payload = ByteBuf::from(b"0123456789abcdef".to_vec());
    let series = rt.block_on(async {
        for _ in 0..warm {
            a.ask_async(Echo(payload.clone()))
                .await
                .map_err(|e| format!("ask_async failed: {e}"))?;
        }
        let mut series = Vec::new();
        for _ in 0..cfg.reps {
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let msg = Echo(payload.clone());
                let t0 = Instant::now();
                let back = a
                    .ask_async(msg)
                    .await
                    .map_err(|e| format!("ask_async failed: {e}"))?;
                samples.push(t0.elapsed().as_secs_f64() * 1e6);
                if back.len() != 16 {
                    return Err("echo mismatch".to_string());
                }
            }
            series.push(samples);
        }
        Ok::<_, String>(series)
    })?;
    finish(&a)?;
    dist_record(
        "ask_async_rtt.bytes16",
        &format!(
            "ActorRef::ask_async(Echo(16-byte ByteBuf)).await on a current-thread tokio \
             runtime; the reply comes through the process's reply router thread; {warm} \
             warm-up round trips discarded"
        ),
        &series,
    )
    .s("py_id", "pipe_rtt.bytes16")
    .emit();
    Ok(())
}

/// Asks per second to one actor from `threads` threads, each asking in a loop, through
/// the thread's own inbox (`routed == false`) or the reply router.
fn bench_ask_threads(cfg: &Cfg, threads: usize, routed: bool) -> R<()> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let run = |n: u64| -> R<f64> {
        let per = (n / threads as u64).max(1);
        let t0 = Instant::now();
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    let a = a.clone();
                    s.spawn(move || -> R<()> {
                        let payload = ByteBuf::from(b"0123456789abcdef".to_vec());
                        for _ in 0..per {
                            let r = if routed {
                                a.ask_routed(Echo(payload.clone()), Duration::from_secs(30))
                            } else {
                                a.ask(Echo(payload.clone()))
                            };
                            r.map_err(|e| format!("ask failed: {e}"))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in hs {
                h.join().map_err(|_| "asker panicked".to_string())??;
            }
            Ok::<(), String>(())
        })?;
        Ok(t0.elapsed().as_secs_f64() * (n as f64 / (per * threads as u64) as f64))
    };
    let mut run = run;
    let n = calibrate(cfg, &mut run, 2_000, 5_000_000)?;
    let mut rates = Vec::new();
    for _ in 0..cfg.reps {
        let el = run(n)?;
        rates.push(n as f64 / el);
    }
    finish(&a)?;
    let how = if routed { "routed" } else { "inbox" };
    rate_record(
        &format!("asks_per_s.threads.{threads}.{how}"),
        &format!(
            "blocking asks (Echo, 16 bytes) per second to one actor from {threads} threads, \
             each asking in a loop; replies through {}",
            if routed {
                "the process's reply router and a crossbeam channel per ask (ask_routed)"
            } else {
                "each thread's own reply inbox (ActorRef::ask)"
            }
        ),
        "asks/s",
        &rates,
    )
    .emit();
    Ok(())
}

/// Asks per second to one actor from `tasks` tokio tasks on a 2-thread runtime, each
/// awaiting one ask after another.
fn bench_ask_tasks(cfg: &Cfg, tasks: usize) -> R<()> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    let mut run = |n: u64| -> R<f64> {
        let per = (n / tasks as u64).max(1);
        let t0 = Instant::now();
        rt.block_on(async {
            let hs: Vec<_> = (0..tasks)
                .map(|_| {
                    let a = a.clone();
                    tokio::spawn(async move {
                        let payload = ByteBuf::from(b"0123456789abcdef".to_vec());
                        for _ in 0..per {
                            a.ask_async_timeout(Echo(payload.clone()), Duration::from_secs(30))
                                .await
                                .map_err(|e| format!("ask_async failed: {e}"))?;
                        }
                        Ok::<(), String>(())
                    })
                })
                .collect();
            for h in hs {
                h.await.map_err(|e| format!("task: {e}"))??;
            }
            Ok::<(), String>(())
        })?;
        Ok(t0.elapsed().as_secs_f64() * (n as f64 / (per * tasks as u64) as f64))
    };
    let n = calibrate(cfg, &mut run, 2_000, 5_000_000)?;
    let mut rates = Vec::new();
    for _ in 0..cfg.reps {
        let el = run(n)?;
        rates.push(n as f64 / el);
    }
    drop(rt);
    finish(&a)?;
    rate_record(
        &format!("asks_per_s.tasks.{tasks}"),
        &format!(
            "ask_async (Echo, 16 bytes) per second to one actor from {tasks} tokio tasks on a \
             2-worker multi-thread runtime, each task awaiting one ask after another"
        ),
        "asks/s",
        &rates,
    )
    .emit();
    Ok(())
}

fn section(t0: Instant, name: &str, f: impl FnOnce() -> R<()>) {
    log(t0, name);
    if let Err(e) = f() {
        error_line(name, &e);
    }
}

fn main() {
    let cfg = Cfg::from_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(pos) = args.iter().position(|a| a == "--sub") {
        let which = args.get(pos + 1).map_or("", String::as_str);
        let result = match which {
            // The zygote also removes the runtime directory when this process ends; with
            // the fork method alone nothing would (see BENCHMARKS.md).
            "spawn_fork" => procession::init()
                .map_err(|e| format!("init: {e}"))
                .and_then(|()| bench_spawn(&cfg, StartMethod::Fork)),
            rtt => bench_rtt(&cfg, rtt),
        };
        if let Err(e) = result {
            error_line(&format!("sub.{which}"), &e);
            std::process::exit(1);
        }
        return;
    }
    let t0 = Instant::now();
    Json::new("meta")
        .s("runner", "procession benches/report.rs")
        .i(
            "cpu_count",
            std::thread::available_parallelism().map_or(0, |n| n.get() as u64),
        )
        .s(
            "spin_us",
            &std::env::var("PROCESSION_SPIN_US").unwrap_or_else(|_| "50 (default)".into()),
        )
        .i("reps", cfg.reps as u64)
        .f("target_s", cfg.target_s)
        .i("quick", u64::from(cfg.quick))
        .i("root_threads_at_start", thread_count() as u64)
        .s("loadavg_start", &loadavg())
        .emit();

    if cfg.wants("spawn") {
        for m in [StartMethod::Forkserver, StartMethod::Spawn] {
            let id = format!("spawn.{}.first_reply", method_name(m));
            section(t0, &id, || bench_spawn(&cfg, m));
        }
        // In a fresh process: surely single-threaded, and no fork child inherits this
        // runner's state (such as its thread's reply inbox).
        section(t0, "spawn.fork.first_reply", || run_sub("spawn_fork", &[]));
    }
    if cfg.wants("rtt") {
        section(t0, "ask_rtt.bytes16", || bench_rtt(&cfg, "rtt"));
        section(t0, "ask_rtt.bytes16_nospin", || {
            run_sub("rtt_nospin", &[("PROCESSION_SPIN_US", "0")])
        });
        section(t0, "ask_rtt.bytes16_busy_cpus", || run_sub("rtt_busy", &[]));
    }
    if cfg.wants("tell") {
        for p in payloads() {
            for senders in [1, 4] {
                let id = format!("tell.{}.{senders}", p.name);
                section(t0, &id, || bench_tell(&cfg, &p, senders));
            }
        }
    }
    if cfg.wants("bytes") {
        section(t0, "bytes.1MiB", || bench_bytes(&cfg, "1MiB", 1 << 20));
        section(t0, "bytes.16MiB", || bench_bytes(&cfg, "16MiB", 16 << 20));
    }
    if cfg.wants("mem") {
        section(t0, "mem.idle_actor", || bench_mem(&cfg));
    }
    if cfg.wants("scale") {
        let sizes: &[usize] = if cfg.quick {
            &[10, 50]
        } else {
            &[10, 100, 1000]
        };
        for &n in sizes {
            log(t0, &format!("scale.{n}"));
            bench_scale(&cfg, n);
        }
    }
    if cfg.wants("restart") {
        section(t0, "restart.sigkill_to_next_reply", || bench_restart(&cfg));
    }
    if cfg.wants("lock") {
        section(t0, "lock", || bench_lock(&cfg));
    }
    if cfg.wants("value") {
        section(t0, "shm.value", || bench_value(&cfg));
    }
    if cfg.wants("manager") {
        section(t0, "manager", || bench_manager(&cfg));
    }
    if cfg.wants("queue") {
        for kind in ["queue", "simplequeue"] {
            for bytes64 in [false, true] {
                let id = format!(
                    "throughput.{kind}.{}",
                    if bytes64 { "bytes64" } else { "tuple" }
                );
                section(t0, &id, || bench_queue(&cfg, kind, bytes64));
            }
        }
    }
    if cfg.wants("pool") {
        section(t0, "pool.map.chunksize_default", || bench_pool(&cfg, None));
        section(t0, "pool.map.chunksize_1", || bench_pool(&cfg, Some(1)));
    }
    if cfg.wants("fanout") {
        section(t0, "fanout", || bench_fanout(&cfg));
    }
    // Last: the first async ask starts this process's reply router thread.
    if cfg.wants("async") {
        for threads in [1, 4, 16] {
            for routed in [false, true] {
                let id = format!(
                    "asks_per_s.threads.{threads}.{}",
                    if routed { "routed" } else { "inbox" }
                );
                section(t0, &id, || bench_ask_threads(&cfg, threads, routed));
            }
        }
        section(t0, "ask_async_rtt.bytes16", || bench_ask_async_rtt(&cfg));
        for tasks in [1, 16, 256] {
            let id = format!("asks_per_s.tasks.{tasks}");
            section(t0, &id, || bench_ask_tasks(&cfg, tasks));
        }
    }
    Json::new("meta_end")
        .f("total_runtime_s", t0.elapsed().as_secs_f64())
        .s("loadavg_end", &loadavg())
        .i("root_threads_at_end", thread_count() as u64)
        .emit();
    log(t0, "done");
}
