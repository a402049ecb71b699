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
//! SIGKILL (no Python counterpart).
//!
//! Knobs: `PB_REPS` (repetitions per figure, default 3; the value is the median of the
//! repetitions), `PB_TARGET_S` (seconds per throughput repetition, default 1.0),
//! `PB_QUICK=1` (tiny counts, for a smoke test), `PB_ONLY=spawn,rtt,...` (run only some
//! sections: spawn, rtt, tell, bytes, mem, scale, restart).
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

use procession::prelude::*;
use procession::supervisor::{ChildSpec, Shutdown, Strategy, Supervisor, SupervisorActor};
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
    Json::new("meta_end")
        .f("total_runtime_s", t0.elapsed().as_secs_f64())
        .s("loadavg_end", &loadavg())
        .i("root_threads_at_end", thread_count() as u64)
        .emit();
    log(t0, "done");
}
