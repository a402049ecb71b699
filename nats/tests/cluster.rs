//! Two hosts over a real nats-server: remote tell, ask, stop and spawn, refs across hosts,
//! and the typed errors of the cluster's failures.

mod common;

use std::time::{Duration, Instant};

use common::*;
use procession::prelude::*;
use procession::remote::{RemoteError, SpawnOn};
use procession::{Error, TellError};

/// Not a test: the body of the other hosts (see `common::Host`).
#[test]
#[ignore]
fn host_main() {
    common::host_main();
}

fn remote_err(e: &Error) -> Option<&RemoteError> {
    match e {
        Error::Remote(r) => Some(r),
        _ => None,
    }
}

#[test]
fn remote_ask_is_answered_by_the_actor_on_the_other_host() {
    let (_c, _g) = cluster();
    let b = Host::start(_c, "ask-b");
    let counter: ActorRef<Counter> = find(&b.name, "counter");
    assert_eq!(
        counter.remote_addr().map(|a| a.host.as_str()),
        Some("ask-b")
    );
    assert_eq!(counter.ask(WhoAmI).unwrap(), "ask-b");
    assert_eq!(counter.ask(Add(2)).unwrap(), 2);
    assert_eq!(counter.ask(Add(3)).unwrap(), 5);
}

#[test]
fn remote_tells_arrive_in_order_before_a_later_ask() {
    let (c, _g) = cluster();
    let b = Host::start(c, "order-b");
    let counter: ActorRef<Counter> = find(&b.name, "counter");
    for _ in 0..1000 {
        counter.tell(Inc).unwrap();
    }
    assert_eq!(counter.ask(Add(1)).unwrap(), 1001);
}

#[test]
fn a_ref_sent_to_another_host_reaches_back_to_this_one() {
    let (c, _g) = cluster();
    let b = Host::start(c, "relay-b");
    let local = Counter { n: 10 }.spawn().unwrap();
    let relay: ActorRef<Relay> = find(&b.name, "relay");
    // The relay on host b gets a ref to an actor of host a, and asks it through b's gateway.
    assert_eq!(relay.ask(AskThrough(local.clone(), 5)).unwrap(), Ok(15));
    assert_eq!(local.ask(Get).unwrap(), 15);
    // And a ref of b's own counter, sent to b, is local there again.
    let theirs: ActorRef<Counter> = find(&b.name, "counter");
    assert_eq!(relay.ask(AskThrough(theirs, 7)).unwrap(), Ok(7));
    local.stop().unwrap();
    local.join().unwrap();
}

#[test]
fn spawn_on_runs_the_actor_on_that_host_and_stop_ends_it() {
    let (c, _g) = cluster();
    let b = Host::start(c, "spawn-b");
    let counter = procession::spawn_on::<Counter>(&b.name, Counter { n: 40 }, T).unwrap();
    assert_eq!(counter.ask(WhoAmI).unwrap(), "spawn-b");
    assert_eq!(counter.ask(Add(2)).unwrap(), 42);
    counter.stop().unwrap();
    // Once it has stopped, the host says there is no such actor.
    let deadline = Instant::now() + T;
    let err = loop {
        match counter.ask_timeout(Get, T) {
            Ok(_) if Instant::now() < deadline => continue,
            Ok(n) => panic!("still answering after stop: {n}"),
            Err(e) => break e,
        }
    };
    assert!(
        err.is_actor_died() || matches!(remote_err(&err), Some(RemoteError::NoSuchActor { .. })),
        "{err}"
    );
}

#[test]
fn spawn_on_of_an_actor_type_the_host_lacks_names_the_types_it_has() {
    let (c, _g) = cluster();
    let b = Host::start(c, "types-b");
    let gw = procession_nats::gateway().unwrap();
    let req = SpawnOn {
        host: b.name.clone(),
        actor: "no.such.Actor".into(),
        args: ByteBuf::new(),
        timeout: T,
    };
    match gw.ask(req).unwrap() {
        Err(RemoteError::UnknownActorType { host, actor, known }) => {
            assert_eq!(
                (host.as_str(), actor.as_str()),
                ("types-b", "no.such.Actor")
            );
            assert!(known.iter().any(|k| k.ends_with("Counter")), "{known:?}");
        }
        other => panic!("expected UnknownActorType, got {other:?}"),
    }
}

#[test]
fn a_host_that_nobody_runs_is_unreachable_at_once() {
    let (_c, _g) = cluster();
    let started = Instant::now();
    let err = procession::spawn_on::<Counter>("nobody", Counter { n: 0 }, T).unwrap_err();
    assert!(
        matches!(remote_err(&err), Some(RemoteError::HostUnreachable { host }) if host == "nobody"),
        "{err}"
    );
    // No responders: the server says so, not the timeout.
    assert!(started.elapsed() < T, "{:?}", started.elapsed());
}

#[test]
fn a_ref_from_an_earlier_run_of_a_host_is_refused_as_stale() {
    let (c, _g) = cluster();
    let mut b = Host::start(c, "stale-b");
    let old: ActorRef<Counter> = find(&b.name, "counter");
    assert_eq!(old.ask(Add(1)).unwrap(), 1);
    b.kill();
    let b2 = Host::start(c, "stale-b");
    let err = old.ask(Get).unwrap_err();
    assert!(
        matches!(remote_err(&err), Some(RemoteError::StaleRef { host, .. }) if host == "stale-b"),
        "{err}"
    );
    let new: ActorRef<Counter> = find(&b2.name, "counter");
    assert_eq!(new.ask(Get).unwrap(), 0);
}

#[test]
fn a_message_above_the_servers_max_payload_fails_as_too_large() {
    let (c, _g) = cluster();
    let b = Host::start(c, "big-b");
    let counter: ActorRef<Counter> = find(&b.name, "counter");
    let max = procession::remote::this_host().unwrap().max_payload as usize;
    let big = ByteBuf::from(vec![1u8; max + 1]);
    let err = counter.ask(Echo(big.clone())).unwrap_err();
    assert!(
        matches!(remote_err(&err), Some(RemoteError::TooLarge { .. })),
        "{err}"
    );
    match counter.tell(Echo(big)) {
        Err(TellError::Remote {
            error: RemoteError::TooLarge { len, max: m },
            ..
        }) => {
            assert!(len > m)
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // A reply above the limit comes back as the same error, not as a timeout.
    let err = counter.ask(Blob(max + 1)).unwrap_err();
    assert!(
        matches!(remote_err(&err), Some(RemoteError::TooLarge { .. })),
        "{err}"
    );
    // Below the limit all is well.
    assert_eq!(
        counter
            .ask(Echo(ByteBuf::from(vec![1u8; max / 2])))
            .unwrap(),
        (max / 2) as u64
    );
}

#[test]
fn a_remote_ask_of_an_actor_too_slow_times_out_at_its_timeout() {
    let (c, _g) = cluster();
    let b = Host::start(c, "slow-b");
    let counter: ActorRef<Counter> = find(&b.name, "counter");
    let started = Instant::now();
    let err = counter
        .ask_timeout(Sleep(3000), Duration::from_millis(300))
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_actor_that_dies_handling_a_remote_ask_is_reported_died() {
    let (c, _g) = cluster();
    let b = Host::start(c, "crash-b");
    let counter = procession::spawn_on::<Counter>(&b.name, Counter { n: 0 }, T).unwrap();
    let err = counter.ask(Crash).unwrap_err();
    assert!(err.is_actor_died(), "{err}");
}

#[test]
fn operations_a_remote_ref_cannot_do_say_so() {
    let (c, _g) = cluster();
    let b = Host::start(c, "ops-b");
    let counter: ActorRef<Counter> = find(&b.name, "counter");
    for e in [counter.join().unwrap_err(), counter.kill().unwrap_err()] {
        assert!(
            matches!(remote_err(&e), Some(RemoteError::Unsupported(_))),
            "{e}"
        );
    }
}

#[test]
fn a_killed_gateway_is_restarted_by_its_supervisor_and_remote_asks_resume() {
    let (c, _g) = cluster();
    let b = Host::start(c, "gwkill-b");
    let counter: ActorRef<Counter> = find(&b.name, "counter");
    assert_eq!(counter.ask(Add(1)).unwrap(), 1);
    let gw = procession_nats::gateway().unwrap();
    let pid = gw.pid();
    gw.kill().unwrap();
    let deadline = Instant::now() + T;
    while gw.pid() == pid || procession_nats::wait_connected(Duration::from_millis(100)).is_err() {
        assert!(Instant::now() < deadline, "the gateway was not restarted");
    }
    // The epoch is the runtime's, so the refs made before still work.
    assert_eq!(counter.ask(Add(1)).unwrap(), 2);
}

/// A request from a raw NATS client (another host's gateway, gone wrong), and the
/// gateway's typed refusal.
fn raw_request(
    url: &str,
    subject: String,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> RemoteError {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let mut h = async_nats::HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, v.as_str());
        }
        let reply = tokio::time::timeout(T, client.request_with_headers(subject, h, body.into()))
            .await
            .expect("the gateway answers a bad request")
            .unwrap();
        let status = reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Procession-Status"))
            .map(|v| v.to_string());
        assert_eq!(status.as_deref(), Some("err"));
        procession::wire::decode_body::<RemoteError>(&reply.payload, "RemoteError").unwrap()
    })
}

#[test]
fn a_request_of_another_wire_version_is_refused_with_version_mismatch() {
    let (c, _g) = cluster();
    let b = Host::start(c, "version-b");
    let subject = format!("proc.{}.{}.info", c.cluster, b.name);
    let theirs = procession::wire::WIRE_VERSION + 1;
    let e = raw_request(
        &c.url,
        subject,
        &[
            ("Procession-Wire", theirs.to_string()),
            ("Procession-From", "old".into()),
        ],
        vec![],
    );
    assert_eq!(
        e,
        RemoteError::VersionMismatch {
            host: "old".into(),
            ours: procession::wire::WIRE_VERSION,
            theirs
        }
    );
}

#[test]
fn a_malformed_frame_from_another_host_gets_a_typed_error_and_the_gateway_lives_on() {
    let (c, _g) = cluster();
    let b = Host::start(c, "garbage-b");
    let counter: ActorRef<Counter> = find(&b.name, "counter");
    let to = counter.remote_addr().unwrap().clone();
    let subject = format!("proc.{}.{}.mb.{:x}", c.cluster, to.host, to.mailbox);
    let headers = [
        (
            "Procession-Wire",
            procession::wire::WIRE_VERSION.to_string(),
        ),
        ("Procession-Epoch", format!("{:x}", to.epoch)),
        ("Procession-Actor", to.actor.clone()),
    ];
    for body in [vec![], vec![0xff; 7], vec![0xff; 64]] {
        let e = raw_request(&c.url, subject.clone(), &headers, body);
        assert!(matches!(e, RemoteError::BadInput(_)), "{e:?}");
    }
    // A valid frame with a body that is not the message's CBOR reaches the actor, which
    // rejects it: a typed error for the asker, and the actor lives on.
    let mut frame = Vec::new();
    procession::wire::FrameHeader {
        kind: procession::wire::FrameKind::Ask,
        tag: <Add as Message>::TAG_ID,
        corr: 0,
        reply_to: 0,
    }
    .write_into(&mut frame);
    frame.extend_from_slice(&[0xff, 0x00, 0x13]);
    procession::wire::FrameHeader::seal(&mut frame).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reply = rt.block_on(async {
        let client = async_nats::connect(c.url.as_str()).await.unwrap();
        let mut h = async_nats::HeaderMap::new();
        for (k, v) in &headers {
            h.insert(*k, v.as_str());
        }
        client
            .request_with_headers(subject, h, frame.into())
            .await
            .unwrap()
    });
    let (h, _) = procession::wire::FrameHeader::parse(&reply.payload).unwrap();
    assert_eq!(h.kind, procession::wire::FrameKind::ReplyError);
    assert_eq!(counter.ask(Add(1)).unwrap(), 1);
}

#[test]
fn with_the_server_down_remote_asks_fail_typed_local_refs_work_and_the_gateways_reconnect() {
    let (c, _g) = cluster();
    let b = Host::start(c, "down-b");
    let remote: ActorRef<Counter> = find(&b.name, "counter");
    let local = Counter { n: 0 }.spawn().unwrap();
    assert_eq!(remote.ask(Add(1)).unwrap(), 1);
    c.server.lock().unwrap().kill();
    // The gateway notices the lost connection; until then an ask may wait for its timeout.
    let timeout = Duration::from_millis(500);
    let deadline = Instant::now() + T;
    loop {
        let started = Instant::now();
        let err = remote.ask_timeout(Get, timeout).unwrap_err();
        assert!(
            started.elapsed() < timeout + Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        if matches!(remote_err(&err), Some(RemoteError::Disconnected)) {
            break;
        }
        assert!(err.is_timeout(), "{err}");
        assert!(
            Instant::now() < deadline,
            "the gateway never saw the server go"
        );
    }
    assert_eq!(local.ask(Add(2)).unwrap(), 2, "local refs are unaffected");
    c.server.lock().unwrap().restart().unwrap();
    procession_nats::wait_connected(T).unwrap();
    // Host b reconnects on its own too.
    let deadline = Instant::now() + T;
    loop {
        match remote.ask_timeout(Add(1), Duration::from_secs(1)) {
            Ok(n) => {
                assert_eq!(n, 2);
                break;
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "no answer after the server came back: {e}"
            ),
        }
    }
    local.stop().unwrap();
    local.join().unwrap();
}
