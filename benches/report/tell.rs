//! Tell throughput (section 3): small messages from 1 and 4 sender threads.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use procession::prelude::*;
use procession::StartMethod;

use crate::{
    calibrate, finish, rate_record, spawn_sink, tell_err, Blob, Bytes, Cfg, Pair, Sink, Take, Tick,
    R,
};

/// Tells `n` messages from `senders` threads (each its own share, in order; with
/// `many`, a sender's share is one `tell_many`), then asks for the count; returns the
/// seconds from the first tell to the count in hand.
fn tell_run(a: &ActorRef<Sink>, n: u64, senders: u64, p: &Payload, many: bool) -> R<f64> {
    let send = |a: &ActorRef<Sink>, share: u64| -> R<()> {
        if many {
            (p.many)(a, share)
        } else {
            (0..share).try_for_each(|i| (p.send)(a, i))
        }
    };
    let t0 = Instant::now();
    if senders == 1 {
        send(a, n)?;
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..senders)
                .map(|k| {
                    let a = a.clone();
                    let share = n / senders + u64::from(k < n % senders);
                    s.spawn(move || send(&a, share))
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

/// Sends `n` messages to the actor with one `tell_many`.
type ManyFn = dyn Fn(&ActorRef<Sink>, u64) -> R<()> + Sync;

pub(crate) struct Payload {
    pub(crate) name: &'static str,
    what: &'static str,
    send: Box<SendFn>,
    many: Box<ManyFn>,
    py: Option<(&'static str, &'static str)>,
}

pub(crate) fn payloads() -> Vec<Payload> {
    let b64 = Blob(Arc::new(vec![b'x'; 64]));
    vec![
        Payload {
            name: "u64",
            what: "Tick(u64)",
            send: Box::new(|a, i| a.tell(Tick(i)).map_err(tell_err)),
            many: Box::new(|a, n| a.tell_many((0..n).map(Tick)).map_err(many_err)),
            py: None,
        },
        Payload {
            name: "tuple",
            what: "Pair(i, \"hello\") (the shape of Python's (i, 'hello'))",
            send: Box::new(|a, i| a.tell(Pair(i, Cow::Borrowed("hello"))).map_err(tell_err)),
            many: Box::new(|a, n| {
                a.tell_many((0..n).map(|i| Pair(i, Cow::Borrowed("hello"))))
                    .map_err(many_err)
            }),
            py: Some(("throughput.pipe.tuple", "throughput.queue.tuple")),
        },
        Payload {
            name: "bytes64",
            what: "Bytes(64 bytes) (one shared buffer, serialized as a CBOR byte string)",
            send: Box::new({
                let b64 = b64.clone();
                move |a, _| a.tell(Bytes(b64.clone())).map_err(tell_err)
            }),
            many: Box::new(move |a, n| {
                a.tell_many((0..n).map(|_| Bytes(b64.clone())))
                    .map_err(many_err)
            }),
            py: Some(("throughput.pipe.bytes64", "throughput.queue.bytes64")),
        },
    ]
}

fn many_err<M>(e: procession::TellManyError<M>) -> String {
    format!("tell_many failed: {e}")
}

pub(crate) fn bench_tell(cfg: &Cfg, p: &Payload, senders: u64, many: bool) -> R<()> {
    let a = spawn_sink(StartMethod::Forkserver)?;
    let mut run = |n: u64| tell_run(&a, n, senders, p, many);
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
        "tell.{}.{}{}",
        p.name,
        if senders == 1 {
            "1sender".to_string()
        } else {
            format!("{senders}senders")
        },
        if many { "_many" } else { "" }
    );
    let how = if many {
        format!("one ActorRef::tell_many of n x {} per sender", p.what)
    } else {
        format!("n x ActorRef::tell({})", p.what)
    };
    let mut rec = rate_record(
        &id,
        &format!(
            "{who}: {how} to one actor that counts them, then one ask(Take) returning the \
             count (== n checked); clock from the first tell to the count in hand \
             (end-to-end delivery); actor started before the clock"
        ),
        "msg/s",
        &rates,
    )
    .i("n_per_rep", n)
    .list("elapsed_s", &els)
    .i("senders", senders);
    if let (Some((py, also)), 1, false) = (p.py, senders, many) {
        rec = rec.s("py_id", py).strs("py_also", &[also]);
    }
    rec.emit();
    Ok(())
}
