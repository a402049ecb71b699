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
//!
//! Layout: this file holds the settings, the statistics and JSON helpers, the `Sink` actor
//! most figures use, and the driver (`main`); each section lives in its own module:
//! `spawn`, `rtt`, `tell`, `bytes`, `mem`, `scale`, `restart`, then the toolbox figures
//! `lock`, `value` (both on `group`), `manager`, `queue`, `pool`, `fanout` (their common
//! pieces in `toolbox`), and `async_ask`.

mod async_ask;
mod bytes;
mod fanout;
mod group;
mod lock;
mod manager;
mod mem;
mod pool;
mod queue;
mod restart;
mod rtt;
mod scale;
mod spawn;
mod tell;
mod toolbox;
mod value;

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use procession::prelude::*;
use procession::{SpawnOptions, StartMethod};

use async_ask::{bench_ask_async_rtt, bench_ask_tasks, bench_ask_threads};
use bytes::{bench_bytes, bench_shared};
use fanout::bench_fanout;
use lock::bench_lock;
use manager::bench_manager;
use mem::bench_mem;
use pool::bench_pool;
use queue::bench_queue;
use restart::bench_restart;
use rtt::bench_rtt;
use scale::bench_scale;
use spawn::{bench_spawn, method_name};
use tell::{bench_tell, payloads};
use value::bench_value;

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

/// A buffer in shared memory, sent as a handle: the actor reads one byte per 4 KiB page
/// of it, in place.
#[derive(Serialize, Deserialize, Message)]
struct Shared(procession::SharedBytes);

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
#[actor(handles(Ping, Echo, Tick, Pair, Bytes, Shared, Take))]
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

impl Handler<Shared> for Sink {
    fn handle(&mut self, Shared(b): Shared, _cx: &mut Context<Self>) {
        self.msgs += 1;
        self.bytes += b.len() as u64;
        std::hint::black_box(b.iter().step_by(4096).fold(0u8, |x, &y| x ^ y));
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

fn tell_err<M>(e: procession::TellError<M>) -> String {
    format!("tell failed: {e}")
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

    /// A field whose value is already JSON text.
    fn raw(mut self, k: &str, v: &str) -> Json {
        self.key(k);
        self.0.push_str(v);
        self
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
// driver

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
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
        .s("runner", "procession benches/report/")
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
            for (senders, many) in [(1, false), (4, false), (1, true), (4, true)] {
                let id = format!(
                    "tell.{}.{senders}{}",
                    p.name,
                    if many { "_many" } else { "" }
                );
                section(t0, &id, || bench_tell(&cfg, &p, senders, many));
            }
        }
    }
    if cfg.wants("bytes") {
        section(t0, "bytes.1MiB", || bench_bytes(&cfg, "1MiB", 1 << 20));
        section(t0, "bytes.16MiB", || bench_bytes(&cfg, "16MiB", 16 << 20));
        for (label, size) in [("1MiB", 1 << 20), ("16MiB", 16 << 20)] {
            for fresh in [true, false] {
                let id = format!(
                    "bytes.{label}.shared_{}",
                    if fresh { "fresh" } else { "reused" }
                );
                section(t0, &id, || bench_shared(&cfg, label, size, fresh));
            }
        }
    }
    if cfg.wants("mem") {
        section(t0, "mem.idle_actor", || bench_mem(&cfg));
    }
    if cfg.wants("scale") {
        let sizes: &[usize] = if cfg.quick {
            &[10, 50]
        } else {
            &[10, 100, 1000, 10_000]
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
