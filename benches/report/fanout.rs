//! Fan-out to 16 workers (section 8): duplex pipes, and two procession-specific variants
//! (asks, and tells with one reply queue).

use std::borrow::Cow;
use std::time::Instant;

use procession::prelude::*;
use procession::queue::{pipe, PipeEnd, Queue};

use crate::toolbox::{finish_held, held, rates_of, Tup, LONG};
use crate::{rate_record, tell_err, Cfg, Json, R};

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

pub(crate) fn bench_fanout(cfg: &Cfg) -> R<()> {
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
