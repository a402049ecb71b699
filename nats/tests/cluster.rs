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
        capacity: None,
        limits: Default::default(),
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

/// The 24-byte envelope of a message between gateways (see `procession_nats`'s docs):
/// magic, wire version, kind, epoch, and the actor type's id for a mailbox message.
fn envelope(version: u8, kind: u8, epoch: u64, actor: u64, body: &[u8]) -> Vec<u8> {
    let mut m = b"PROC".to_vec();
    m.extend_from_slice(&[version, kind, 0, 0]);
    m.extend_from_slice(&epoch.to_le_bytes());
    m.extend_from_slice(&actor.to_le_bytes());
    m.extend_from_slice(body);
    m
}

/// A request from a raw NATS client (another host's gateway, gone wrong), and what the
/// gateway answered: the reply's envelope kind and its body.
fn raw_request(url: &str, subject: String, payload: Vec<u8>) -> (u8, Vec<u8>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let reply = tokio::time::timeout(T, client.request(subject, payload.into()))
            .await
            .expect("the gateway answers a bad request")
            .unwrap();
        assert!(reply.payload.len() >= 24, "{:?}", reply.payload);
        (reply.payload[5], reply.payload[24..].to_vec())
    })
}

/// As [`raw_request`], for a request the gateway refuses: its typed error.
fn raw_refusal(url: &str, subject: String, payload: Vec<u8>) -> RemoteError {
    let (kind, body) = raw_request(url, subject, payload);
    assert_eq!(kind, 4, "an error reply");
    procession::wire::decode_body::<RemoteError>(&body, "RemoteError").unwrap()
}

#[test]
fn a_request_of_another_wire_version_is_refused_with_version_mismatch() {
    let (c, _g) = cluster();
    let b = Host::start(c, "version-b");
    let subject = format!("proc.{}.{}.info", c.cluster, b.name);
    let ours = procession::wire::WIRE_VERSION;
    let e = raw_refusal(&c.url, subject, envelope(ours + 1, 2, 0, 0, &[]));
    assert!(
        matches!(e, RemoteError::VersionMismatch { ours: o, theirs, .. } if o == ours && theirs == ours + 1),
        "{e:?}"
    );
}

#[test]
fn a_malformed_message_from_another_host_gets_a_typed_error_and_the_gateway_lives_on() {
    let (c, _g) = cluster();
    let b = Host::start(c, "garbage-b");
    let counter: ActorRef<Counter> = find(&b.name, "counter");
    let to = counter.remote_addr().unwrap().clone();
    let subject = format!("proc.{}.{}.mb.{:x}", c.cluster, to.host, to.mailbox);
    let v = procession::wire::WIRE_VERSION;
    let id = procession::remote::actor_id(&to.actor);
    let bad = [
        vec![],                                    // no envelope
        vec![0xff; 64],                            // not procession's
        envelope(v, 9, to.epoch, id, &[]),         // no such kind
        envelope(v, 1, to.epoch, id, &[0xff; 7]),  // a frame too short
        envelope(v, 1, to.epoch, id, &[0xff; 64]), // a frame that does not parse
    ];
    for payload in bad {
        let e = raw_refusal(&c.url, subject.clone(), payload);
        assert!(matches!(e, RemoteError::BadInput(_)), "{e:?}");
    }
    // The right envelope with another epoch: stale.
    let e = raw_refusal(
        &c.url,
        subject.clone(),
        envelope(v, 1, to.epoch ^ 1, id, &[]),
    );
    assert!(matches!(e, RemoteError::StaleRef { .. }), "{e:?}");
    // A valid frame whose body is not the message's CBOR reaches the actor, which
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
    let (kind, reply) = raw_request(&c.url, subject, envelope(v, 1, to.epoch, id, &frame));
    assert_eq!(kind, 3, "the actor's reply");
    let (h, _) = procession::wire::FrameHeader::parse(&reply).unwrap();
    assert_eq!(h.kind, procession::wire::FrameKind::ReplyError);
    assert_eq!(counter.ask(Add(1)).unwrap(), 1);
    let status = procession_nats::gateway()
        .unwrap()
        .ask(procession_nats::Status)
        .unwrap();
    assert_eq!(status.refused, 0, "this host refused nothing: host b did");
}

/// A sealed tell frame of `msg`.
fn tell_frame<M: Message>(msg: &M) -> Vec<u8> {
    let mut frame = Vec::new();
    procession::wire::FrameHeader {
        kind: procession::wire::FrameKind::Tell,
        tag: M::TAG_ID,
        corr: 0,
        reply_to: 0,
    }
    .write_into(&mut frame);
    procession::wire::encode_body(msg, &mut frame).unwrap();
    procession::wire::FrameHeader::seal(&mut frame).unwrap();
    frame
}

#[test]
fn a_batch_of_tells_delivers_its_good_frames_in_order_and_refuses_the_bad_ones() {
    let (c, _g) = cluster();
    let b = Host::start(c, "batch-b");
    let counter: ActorRef<Counter> = find(&b.name, "counter");
    let to = counter.remote_addr().unwrap().clone();
    let subject = format!("proc.{}.{}.mb.{:x}", c.cluster, to.host, to.mailbox);
    let push = |body: &mut Vec<u8>, frame: &[u8]| {
        body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        body.extend_from_slice(frame);
    };
    let mut body = Vec::new();
    push(&mut body, &tell_frame(&Add(1))); // a tell whose reply nobody waits for
    push(&mut body, &tell_frame(&Inc));
    push(&mut body, &[0xff; 40]); // not a frame: refused, the batch goes on
    push(&mut body, &tell_frame(&Add(10)));
    body.extend_from_slice(&1000u32.to_le_bytes()); // a length past the end: the rest goes
    body.extend_from_slice(&tell_frame(&Add(100)));
    let v = procession::wire::WIRE_VERSION;
    let payload = envelope(
        v,
        7,
        to.epoch,
        procession::remote::actor_id(&to.actor),
        &body,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(&c.url).await.unwrap();
        client.publish(subject, payload.into()).await.unwrap();
        client.flush().await.unwrap();
    });
    let n = poll_until(T, || counter.ask(Get).ok().filter(|&n| n >= 12));
    assert_eq!(n, Some(12), "1 + 1 + 10, in one batch");
    assert_eq!(
        counter.ask(Get).unwrap(),
        12,
        "and nothing after the broken length"
    );
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

#[test]
fn a_monitor_of_an_actor_on_another_host_gets_its_down_when_it_stops_there() {
    let (c, _g) = cluster();
    let b = Host::start(c, "mon-b");
    let watcher = Watcher { downs: vec![] }.spawn().unwrap();
    let target = procession::spawn_on::<Counter>(&b.name, Counter { n: 0 }, T).unwrap();
    watcher.ask(Watch(target.clone())).unwrap();
    // The registration is on host b once an ask that went after it is answered there.
    assert_eq!(target.ask(Add(1)).unwrap(), 1);
    target.stop().unwrap();
    let down = wait_down(&watcher, target.id(), T).expect("a Down from host b");
    assert_eq!(down.exit, procession::Exit::Stopped);
    assert_eq!(down.actor, target.remote_addr().unwrap().actor);
    watcher.stop().unwrap();
    watcher.join().unwrap();
}

#[test]
fn a_demonitored_actor_on_another_host_sends_no_down() {
    let (c, _g) = cluster();
    let b = Host::start(c, "demon-b");
    let watcher = Watcher { downs: vec![] }.spawn().unwrap();
    let target = procession::spawn_on::<Counter>(&b.name, Counter { n: 0 }, T).unwrap();
    let other = procession::spawn_on::<Counter>(&b.name, Counter { n: 0 }, T).unwrap();
    watcher.ask(Watch(target.clone())).unwrap();
    watcher.ask(Watch(other.clone())).unwrap();
    assert!(watcher.ask(Unwatch(target.clone())).unwrap());
    target.stop().unwrap();
    other.stop().unwrap();
    // `other`'s Down went after `target`'s would have: once it is here, none can come.
    wait_down(&watcher, other.id(), T).expect("the Down of the actor still monitored");
    let downs = watcher.ask(Downs).unwrap();
    assert!(downs.iter().all(|d| d.id != target.id()), "{downs:?}");
    watcher.stop().unwrap();
    watcher.join().unwrap();
}

#[test]
fn when_a_host_is_killed_its_monitors_get_host_lost_within_the_lease() {
    let (c, _g) = cluster();
    let mut b = Host::start(c, "lost-b");
    let watcher = Watcher { downs: vec![] }.spawn().unwrap();
    let target: ActorRef<Counter> = find(&b.name, "counter");
    watcher.ask(Watch(target.clone())).unwrap();
    assert_eq!(target.ask(Add(1)).unwrap(), 1);
    let killed = Instant::now();
    b.kill();
    let lease = Duration::from_secs(3); // GatewayConfig's default, which host a uses
    let down = wait_down(&watcher, target.id(), lease + T).expect("a HostLost Down");
    let after = killed.elapsed();
    assert_eq!(
        down.exit,
        procession::Exit::HostLost {
            host: "lost-b".into()
        }
    );
    // Within the lease, and a tenth of it for the check, with room for a loaded machine.
    assert!(after <= lease + Duration::from_secs(2), "{after:?}");
    eprintln!("HostLost {after:?} after the SIGKILL");
    watcher.stop().unwrap();
    watcher.join().unwrap();
}

#[test]
fn a_monitor_of_an_actor_gone_from_its_host_gets_down_at_once() {
    let (c, _g) = cluster();
    let b = Host::start(c, "noproc-b");
    let watcher = Watcher { downs: vec![] }.spawn().unwrap();
    let target = procession::spawn_on::<Counter>(&b.name, Counter { n: 0 }, T).unwrap();
    target.stop().unwrap();
    // Stopped for good: the host says so to an ask.
    let deadline = Instant::now() + T;
    while target.ask(Get).is_ok() {
        assert!(Instant::now() < deadline);
    }
    watcher.ask(Watch(target.clone())).unwrap();
    let down = wait_down(&watcher, target.id(), T).expect("a Down at once");
    assert!(
        matches!(&down.exit, procession::Exit::Failed(why) if why.starts_with("noproc"))
            || down.exit == procession::Exit::Stopped,
        "{down:?}"
    );
    watcher.stop().unwrap();
    watcher.join().unwrap();
}

#[test]
fn a_name_registered_in_the_cluster_is_found_from_another_host() {
    let (c, _g) = cluster();
    let b = Host::start(c, "reg-b");
    let counter = procession_nats::whereis_global::<Counter>("reg-b-counter")
        .unwrap()
        .expect("host b registered its counter");
    assert_eq!(counter.remote_addr().unwrap().host, "reg-b");
    assert_eq!(counter.ask(WhoAmI).unwrap(), "reg-b");
    assert!(
        procession_nats::whereis_global::<Counter>("nobody-has-this")
            .unwrap()
            .is_none()
    );
    drop(b);
}

#[test]
fn a_cluster_name_is_taken_while_its_actor_lives_and_released_when_it_stops() {
    let (_c, _g) = cluster();
    let first = Counter { n: 1 }.spawn().unwrap();
    let second = Counter { n: 2 }.spawn().unwrap();
    procession_nats::register_global("taken", &first).unwrap();
    let err = procession_nats::register_global("taken", &second).unwrap_err();
    assert!(
        matches!(err, Error::NameTaken(ref n) if n == "taken"),
        "{err}"
    );
    // Found here as a local ref.
    let found = procession_nats::whereis_global::<Counter>("taken")
        .unwrap()
        .unwrap();
    assert!(found.remote_addr().is_none());
    assert_eq!(found.ask(Get).unwrap(), 1);
    first.stop().unwrap();
    first.join().unwrap();
    let deadline = Instant::now() + T;
    while procession_nats::whereis_global::<Counter>("taken")
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "the name outlived its actor");
        std::thread::sleep(Duration::from_millis(10));
    }
    procession_nats::register_global("taken", &second).unwrap();
    assert!(procession_nats::unregister_global("taken", &second).unwrap());
    assert!(procession_nats::whereis_global::<Counter>("taken")
        .unwrap()
        .is_none());
    second.stop().unwrap();
    second.join().unwrap();
}

#[test]
fn a_cluster_name_held_on_a_lost_host_is_released_within_the_lease() {
    let (c, _g) = cluster();
    let mut b = Host::start(c, "regdead-b");
    assert!(
        procession_nats::whereis_global::<Counter>("regdead-b-counter")
            .unwrap()
            .is_some()
    );
    let killed = Instant::now();
    b.kill();
    let deadline = Instant::now() + T;
    while procession_nats::whereis_global::<Counter>("regdead-b-counter")
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "the name outlived its host");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("released {:?} after the SIGKILL", killed.elapsed());
    // And another actor can take it over.
    let mine = Counter { n: 0 }.spawn().unwrap();
    procession_nats::register_global("regdead-b-counter", &mine).unwrap();
    mine.stop().unwrap();
    mine.join().unwrap();
}

// ---- durable mailboxes ----

mod durable {
    use super::*;
    use procession::supervisor::{ChildSpec, Strategy, Supervisor};
    use procession_nats::{Durable, DurableOptions};

    /// Collects the ids the ledger handled, across the ledger's restarts.
    #[derive(Debug, Serialize, Deserialize, Message)]
    pub struct Seen(pub u64);

    #[derive(Debug, Serialize, Deserialize, Message)]
    #[message(reply = Vec<u64>)]
    pub struct SeenSoFar;

    #[derive(Serialize, Deserialize, Actor)]
    #[actor(handles(Seen, SeenSoFar))]
    pub struct Collector {
        pub seen: Vec<u64>,
    }

    impl Handler<Seen> for Collector {
        fn handle(&mut self, Seen(n): Seen, _cx: &mut Context<Self>) {
            self.seen.push(n);
        }
    }
    impl Handler<SeenSoFar> for Collector {
        fn handle(&mut self, _: SeenSoFar, _cx: &mut Context<Self>) -> Vec<u64> {
            self.seen.clone()
        }
    }

    /// A durable message.
    #[derive(Debug, Serialize, Deserialize, Message)]
    pub struct Entry(pub u64);

    /// Handles entries by passing them to the collector; aborts its process on the
    /// entry `crash_on` (in its first incarnation only, unless `always`).
    #[derive(Serialize, Deserialize, Actor)]
    #[actor(handles(Entry))]
    pub struct Ledger {
        pub collector: ActorRef<Collector>,
        pub crash_on: Option<u64>,
        pub always: bool,
        /// Time each entry takes.
        pub delay_ms: u64,
    }

    impl Handler<Entry> for Ledger {
        fn handle(&mut self, Entry(n): Entry, cx: &mut Context<Self>) {
            if self.crash_on == Some(n) && (self.always || cx.incarnation() == 0) {
                std::process::abort();
            }
            std::thread::sleep(Duration::from_millis(self.delay_ms));
            self.collector.tell(Seen(n)).unwrap();
        }
    }

    struct Setup {
        collector: ActorRef<Collector>,
        sup: ActorRef<procession::supervisor::SupervisorActor>,
        jobs: Durable<Ledger>,
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            let _ = self.sup.stop();
            let _ = self.sup.join();
            let _ = self.collector.stop();
            let _ = self.collector.join();
        }
    }

    /// A supervised ledger serving the durable mailbox `name`.
    fn setup(name: &str, crash_on: Option<u64>, always: bool, redeliver: u32) -> Setup {
        setup_slow(name, crash_on, always, redeliver, 0)
    }

    fn setup_slow(
        name: &str,
        crash_on: Option<u64>,
        always: bool,
        redeliver: u32,
        delay_ms: u64,
    ) -> Setup {
        let collector = Collector { seen: vec![] }.spawn().unwrap();
        let ledger = Ledger {
            collector: collector.clone(),
            crash_on,
            always,
            delay_ms,
        };
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(20, Duration::from_secs(10))
            .child(ChildSpec::worker::<Ledger>("ledger", ledger))
            .spawn()
            .unwrap();
        let ledger: ActorRef<Ledger> = sup.child("ledger").unwrap();
        let jobs = Durable::<Ledger>::new(name).unwrap();
        let opts = DurableOptions {
            redeliver,
            ..DurableOptions::default()
        };
        jobs.serve(&ledger, opts).unwrap();
        Setup {
            collector,
            sup,
            jobs,
        }
    }

    /// Waits until the collector has seen every id of `want`; returns what it saw.
    fn wait_seen(c: &ActorRef<Collector>, want: &[u64], timeout: Duration) -> Vec<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = c.ask(SeenSoFar).unwrap();
            if want.iter().all(|w| seen.contains(w)) {
                return seen;
            }
            assert!(Instant::now() < deadline, "still missing: {seen:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn durable_tells_are_handled_once_each_in_order() {
        let (_c, _g) = cluster();
        let s = setup("order", None, false, 3);
        for n in 0..50 {
            s.jobs.tell(Entry(n)).unwrap();
        }
        let want: Vec<u64> = (0..50).collect();
        assert_eq!(wait_seen(&s.collector, &want, T), want);
    }

    #[test]
    fn a_durable_message_whose_handler_dies_is_handled_by_the_next_incarnation() {
        let (_c, _g) = cluster();
        let s = setup("crash", Some(3), false, 3);
        for n in 0..6 {
            s.jobs.tell(Entry(n)).unwrap();
        }
        let seen = wait_seen(&s.collector, &[0, 1, 2, 3, 4, 5], T);
        // In order, 3 included, each once: the crash came before 3 was handled.
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
        let status = procession_nats::gateway()
            .unwrap()
            .ask(procession_nats::Status)
            .unwrap();
        assert!(status.durable_redelivered >= 1, "{status:?}");
    }

    #[test]
    fn a_durable_message_that_always_kills_its_handler_is_dropped_as_poison() {
        let (_c, _g) = cluster();
        let before = procession_nats::gateway()
            .unwrap()
            .ask(procession_nats::Status)
            .unwrap();
        let s = setup("poison", Some(2), true, 1);
        for n in 0..5 {
            s.jobs.tell(Entry(n)).unwrap();
        }
        let seen = wait_seen(&s.collector, &[0, 1, 3, 4], T);
        assert_eq!(seen, vec![0, 1, 3, 4]);
        let after = procession_nats::gateway()
            .unwrap()
            .ask(procession_nats::Status)
            .unwrap();
        assert_eq!(
            after.durable_poisoned,
            before.durable_poisoned + 1,
            "{after:?}"
        );
    }

    #[test]
    fn a_durable_tell_with_the_same_id_is_stored_once() {
        let (_c, _g) = cluster();
        let s = setup("dedup", None, false, 3);
        let first = s.jobs.tell_with_id(Entry(1), "the-one").unwrap();
        let again = s.jobs.tell_with_id(Entry(1), "the-one").unwrap();
        assert_eq!(first, again);
        s.jobs.tell(Entry(2)).unwrap();
        // 2 was stored after both sends of 1: once it is handled, a second 1 would be too.
        assert_eq!(wait_seen(&s.collector, &[1, 2], T), vec![1, 2]);
    }

    #[test]
    fn durable_messages_survive_a_sigkill_of_the_server() {
        let (c, _g) = cluster();
        // 5 ms an entry: the server dies with most of them still in the stream.
        let s = setup_slow("survive", None, false, 3, 5);
        let n = 200u64;
        for i in 0..n {
            s.jobs.tell(Entry(i)).unwrap();
        }
        // Kill it mid-stream: once some, not all, are handled.
        let deadline = Instant::now() + T;
        while s.collector.ask(SeenSoFar).unwrap().len() < 10 {
            assert!(Instant::now() < deadline);
        }
        c.server.lock().unwrap().kill();
        let at_kill = s.collector.ask(SeenSoFar).unwrap().len();
        assert!(at_kill < n as usize, "the kill came after the last entry");
        c.server.lock().unwrap().restart().unwrap();
        procession_nats::wait_connected(T).unwrap();
        let want: Vec<u64> = (0..n).collect();
        let seen = wait_seen(&s.collector, &want, Duration::from_secs(60));
        let mut distinct = seen.clone();
        distinct.dedup();
        eprintln!(
            "{} handled before the kill, {} in all, {} distinct",
            at_kill,
            seen.len(),
            distinct.len()
        );
        assert_eq!(distinct, want, "nothing lost, in order");
    }
}

#[test]
fn remote_ask_async_resolves_to_the_reply_of_the_actor_on_the_other_host() {
    let (c, _g) = cluster();
    let b = Host::start(c, "async-b");
    let counter: ActorRef<Counter> = find(&b.name, "counter");
    let n = futures::executor::block_on(counter.ask_async(Add(5))).unwrap();
    assert_eq!(n, 5);
    let started = Instant::now();
    let slow = counter.ask_async_timeout(Sleep(3000), Duration::from_millis(300));
    let err = futures::executor::block_on(slow).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    futures::executor::block_on(counter.tell_async(Inc)).unwrap();
    assert_eq!(
        futures::executor::block_on(counter.ask_async(Get)).unwrap(),
        6
    );
}

#[test]
fn a_link_across_hosts_kills_this_actor_when_that_one_crashes() {
    let (c, _g) = cluster();
    let b = Host::start(c, "link-b");
    let linker = Linker { exits: vec![] }.spawn().unwrap();
    let target = procession::spawn_on::<Counter>(&b.name, Counter { n: 0 }, T).unwrap();
    linker.ask(LinkTo(target.clone())).unwrap();
    assert_eq!(target.ask(Add(1)).unwrap(), 1); // the link is registered there by now
    assert!(target.ask(Crash).unwrap_err().is_actor_died());
    let exit = linker.join_timeout(T).expect("the linked actor was killed");
    assert!(
        matches!(&exit, procession::Exit::Failed(why) if why.contains("linked")),
        "{exit:?}"
    );
}

#[test]
fn a_trapping_actor_linked_across_hosts_gets_exited_even_for_a_normal_stop() {
    let (c, _g) = cluster();
    let b = Host::start(c, "trap-b");
    let linker = Linker { exits: vec![] }.spawn().unwrap();
    linker.ask(Trap(true)).unwrap();
    let target = procession::spawn_on::<Counter>(&b.name, Counter { n: 0 }, T).unwrap();
    linker.ask(LinkTo(target.clone())).unwrap();
    assert_eq!(target.ask(Add(1)).unwrap(), 1);
    target.stop().unwrap();
    let e = wait_exited(&linker, target.id(), T).expect("an Exited");
    assert_eq!(e.exit, procession::Exit::Stopped);
    assert!(linker.is_alive());
    linker.stop().unwrap();
    linker.join().unwrap();
}

#[test]
fn when_this_actor_crashes_its_link_kills_the_actor_on_the_other_host() {
    let (c, _g) = cluster();
    let b = Host::start(c, "linkback-b");
    let linker = Linker { exits: vec![] }.spawn().unwrap();
    let target = procession::spawn_on::<Counter>(&b.name, Counter { n: 0 }, T).unwrap();
    let watcher = Watcher { downs: vec![] }.spawn().unwrap();
    watcher.ask(Watch(target.clone())).unwrap();
    linker.ask(LinkTo(target.clone())).unwrap();
    assert_eq!(target.ask(Add(1)).unwrap(), 1);
    linker.tell(Die).unwrap();
    let down = wait_down(&watcher, target.id(), T).expect("the linked actor on b was killed");
    assert!(
        matches!(&down.exit, procession::Exit::Failed(why) if why.contains("linked")),
        "{down:?}"
    );
    watcher.stop().unwrap();
    watcher.join().unwrap();
}

#[test]
fn a_trapping_actor_linked_to_an_actor_of_a_lost_host_gets_exited_host_lost() {
    let (c, _g) = cluster();
    let mut b = Host::start(c, "linklost-b");
    let linker = Linker { exits: vec![] }.spawn().unwrap();
    linker.ask(Trap(true)).unwrap();
    let target: ActorRef<Counter> = find(&b.name, "counter");
    linker.ask(LinkTo(target.clone())).unwrap();
    assert_eq!(target.ask(Add(1)).unwrap(), 1);
    b.kill();
    let e = wait_exited(&linker, target.id(), Duration::from_secs(3) + T).expect("an Exited");
    assert_eq!(
        e.exit,
        procession::Exit::HostLost {
            host: "linklost-b".into()
        }
    );
    linker.stop().unwrap();
    linker.join().unwrap();
}

#[test]
fn when_a_host_is_lost_the_actors_linked_with_its_actors_on_other_hosts_die_too() {
    let (c, _g) = cluster();
    let mut b = Host::start(c, "lost3-b");
    let c3 = Host::start(c, "lost3-c");
    // On host b, a linker links with a counter on host c; this host watches the counter.
    let counter = procession::spawn_on::<Counter>(&c3.name, Counter { n: 0 }, T).unwrap();
    let linker = procession::spawn_on::<Linker>(&b.name, Linker { exits: vec![] }, T).unwrap();
    linker.ask(LinkTo(counter.clone())).unwrap();
    let watcher = Watcher { downs: vec![] }.spawn().unwrap();
    watcher.ask(Watch(counter.clone())).unwrap();
    assert_eq!(counter.ask(Add(1)).unwrap(), 1); // both registrations are on c by now
    b.kill();
    // Host c sees b's lease run out, and kills the counter, which does not trap exits.
    let down = wait_down(&watcher, counter.id(), Duration::from_secs(3) + T).expect("a Down");
    assert!(
        matches!(&down.exit, procession::Exit::Failed(why) if why.contains("lost3-b")),
        "{down:?}"
    );
    watcher.stop().unwrap();
    watcher.join().unwrap();
}

// ---- supervision across hosts ----

mod supervised {
    use super::*;
    use procession::supervisor::{ChildInfo, ChildSpec, ChildState, Strategy, Supervisor};
    use procession::Exit;

    /// A supervisor on this host (a) with one `Counter` child `w` placed on `hosts`.
    fn supervise(hosts: &[&str]) -> ActorRef<procession::supervisor::SupervisorActor> {
        Supervisor::new(Strategy::OneForOne)
            .intensity(50, Duration::from_secs(60))
            .backoff(
                Duration::from_millis(100),
                Duration::from_millis(500),
                Duration::from_secs(30),
            )
            .child(
                ChildSpec::worker::<Counter>("w", Counter { n: 7 }).on_hosts(hosts.iter().copied()),
            )
            // A daemon: a test that fails does not wait for it.
            .spawn_with(procession::SpawnOptions::default().daemon(true))
            .unwrap()
    }

    fn host_of(info: &ChildInfo) -> Option<&str> {
        info.remote.as_ref().map(|r| r.host.as_str())
    }

    /// Waits until child `w` runs again after `restarts` restarts, and returns it.
    fn wait_restarted(
        sup: &ActorRef<procession::supervisor::SupervisorActor>,
        restarts: u32,
        timeout: Duration,
    ) -> ChildInfo {
        poll_until(timeout, || {
            sup.which_child("w")
                .ok()
                .filter(|i| i.restarts >= restarts && i.state == ChildState::Running)
        })
        .unwrap_or_else(|| panic!("not restarted: {:?}", sup.which_child("w")))
    }

    fn stop(sup: ActorRef<procession::supervisor::SupervisorActor>) {
        sup.stop().unwrap();
        sup.join().unwrap();
    }

    #[test]
    fn a_child_placed_on_another_host_runs_there_and_the_supervisor_stops_it_there() {
        let (c, _g) = cluster();
        let b = Host::start(c, "place-b");
        let sup = supervise(&[&b.name]);
        let info = sup.which_child("w").unwrap();
        assert_eq!(host_of(&info), Some("place-b"));
        assert_eq!(sup.count_children().unwrap().active, 1);
        let w: ActorRef<Counter> = sup.child("w").unwrap();
        assert_eq!(w.ask(WhoAmI).unwrap(), "place-b");
        assert_eq!(w.ask(Add(1)).unwrap(), 8);
        stop(sup);
        // Terminated on its host by its shutdown: the host has no such actor any more.
        let err = w.ask_timeout(Get, T).unwrap_err();
        assert!(
            err.is_actor_died()
                || matches!(remote_err(&err), Some(RemoteError::NoSuchActor { .. })),
            "{err}"
        );
    }

    #[test]
    fn a_child_on_another_host_that_crashes_is_restarted_on_that_host() {
        let (c, _g) = cluster();
        let b = Host::start(c, "crashsup-b");
        let sup = supervise(&[&b.name, "nobody"]);
        let w: ActorRef<Counter> = sup.child("w").unwrap();
        assert!(w.ask_timeout(Crash, T).unwrap_err().is_actor_died());
        let info = wait_restarted(&sup, 1, T);
        assert_eq!(host_of(&info), Some("crashsup-b"));
        assert_eq!(info.last_exit, Some(Exit::Signaled(6)));
        let again: ActorRef<Counter> = sup.child("w").unwrap();
        assert_ne!(
            again.id(),
            w.id(),
            "a new incarnation on another host has a new address"
        );
        assert_eq!(again.ask(Get).unwrap(), 7, "started again from its spec");
        stop(sup);
    }

    #[test]
    fn when_a_childs_host_is_lost_it_is_restarted_on_the_next_host_its_spec_allows() {
        let (c, _g) = cluster();
        let mut b = Host::start(c, "failover-b");
        let other = Host::start(c, "failover-c");
        let sup = supervise(&[&b.name, &other.name]);
        assert_eq!(host_of(&sup.which_child("w").unwrap()), Some("failover-b"));
        let killed = Instant::now();
        b.kill();
        let info = wait_restarted(&sup, 1, Duration::from_secs(3) + T);
        eprintln!(
            "restarted on {:?} {:?} after the SIGKILL",
            host_of(&info),
            killed.elapsed()
        );
        assert_eq!(
            info.last_exit,
            Some(Exit::HostLost {
                host: "failover-b".into()
            })
        );
        assert_eq!(host_of(&info), Some("failover-c"));
        let w: ActorRef<Counter> = sup.child("w").unwrap();
        assert_eq!(w.ask(WhoAmI).unwrap(), "failover-c");
        stop(sup);
    }

    #[test]
    fn a_child_placed_on_one_host_is_restarted_there_once_the_host_returns() {
        let (c, _g) = cluster();
        let mut b = Host::start(c, "return-b");
        let sup = supervise(&[&b.name]);
        let before = sup.which_child("w").unwrap().remote.unwrap();
        b.kill();
        // Lost, and no host takes it meanwhile: it waits, restarting.
        poll_until(Duration::from_secs(3) + T, || {
            sup.which_child("w").ok().filter(|i| {
                i.state == ChildState::Restarting
                    && i.last_exit
                        == Some(Exit::HostLost {
                            host: "return-b".into(),
                        })
            })
        })
        .expect("the child waits for its host");
        let _b2 = Host::start(c, "return-b");
        let info = wait_restarted(&sup, 1, T);
        let now = info.remote.unwrap();
        assert_eq!(now.host, "return-b");
        assert_ne!(now.epoch, before.epoch, "on the host's new run");
        let w: ActorRef<Counter> = sup.child("w").unwrap();
        assert_eq!(w.ask(Get).unwrap(), 7);
        stop(sup);
    }

    #[test]
    fn when_the_gateway_of_a_childs_host_restarts_the_child_it_took_down_is_restarted() {
        let (c, _g) = cluster();
        let b = Host::start(c, "gwsup-b");
        let sup = supervise(&[&b.name]);
        let w: ActorRef<Counter> = sup.child("w").unwrap();
        // The child runs under b's gateway, which dies: so does the child, and the
        // restarted gateway no longer holds this host's monitor of it.
        let host_counter: ActorRef<Counter> = find(&b.name, "counter");
        // A tell: the gateway that would carry the answer back is what dies.
        host_counter.tell(KillGateway).unwrap();
        let info = wait_restarted(&sup, 1, T);
        assert_eq!(host_of(&info), Some("gwsup-b"));
        let again: ActorRef<Counter> = sup.child("w").unwrap();
        assert_ne!(again.id(), w.id());
        assert_eq!(again.ask(Get).unwrap(), 7);
        stop(sup);
    }

    #[test]
    fn after_this_hosts_gateway_restarts_the_supervisor_still_hears_of_its_remote_childs_exit() {
        let (c, _g) = cluster();
        let b = Host::start(c, "gwhome-b");
        let sup = supervise(&[&b.name]);
        let w: ActorRef<Counter> = sup.child("w").unwrap();
        let gw = procession_nats::gateway().unwrap();
        let pid = gw.pid();
        gw.kill().unwrap();
        poll_until(T, || {
            (gw.pid() != pid && procession_nats::wait_connected(Duration::from_millis(100)).is_ok())
                .then_some(())
        })
        .expect("the gateway was not restarted");
        // The new run of the gateway holds the supervisor's monitor of the child again.
        assert!(w.ask_timeout(Crash, T).unwrap_err().is_actor_died());
        let info = wait_restarted(&sup, 1, T);
        assert_eq!(info.last_exit, Some(Exit::Signaled(6)));
        stop(sup);
    }

    #[test]
    fn a_dynamic_supervisor_starts_children_of_its_template_on_another_host_and_ends_them_there() {
        let (c, _g) = cluster();
        let b = Host::start(c, "dyn-b");
        let sup = Supervisor::new(Strategy::Dynamic)
            .template(ChildSpec::worker::<Counter>("job", Counter { n: 0 }).on_host(&b.name))
            .spawn_with(procession::SpawnOptions::default().daemon(true))
            .unwrap();
        let one: ActorRef<Counter> = sup.start_dynamic::<Counter>(Counter { n: 5 }).unwrap();
        let two: ActorRef<Counter> = sup.start_dynamic::<Counter>(Counter { n: 9 }).unwrap();
        assert_eq!(one.ask(WhoAmI).unwrap(), "dyn-b");
        assert_eq!((one.ask(Get).unwrap(), two.ask(Get).unwrap()), (5, 9));
        assert_eq!(sup.count_children().unwrap().active, 2);
        sup.terminate_ref(&one).unwrap();
        assert!(one.ask_timeout(Get, T).is_err(), "ended on its host");
        assert_eq!(two.ask(Get).unwrap(), 9);
        assert_eq!(sup.count_children().unwrap().active, 1);
        stop(sup);
        assert!(
            two.ask_timeout(Get, T).is_err(),
            "the supervisor's stop ends it there"
        );
    }

    #[test]
    fn terminate_child_of_a_child_on_another_host_ends_it_there_and_restart_child_brings_it_back() {
        let (c, _g) = cluster();
        let b = Host::start(c, "term-b");
        let sup = supervise(&[&b.name]);
        let w: ActorRef<Counter> = sup.child("w").unwrap();
        sup.terminate_child("w").unwrap();
        let info = sup.which_child("w").unwrap();
        assert_eq!((info.state, info.remote), (ChildState::Terminated, None));
        assert!(w.ask_timeout(Get, T).is_err());
        sup.restart_child("w").unwrap();
        let again: ActorRef<Counter> = sup.child("w").unwrap();
        assert_eq!(again.ask(WhoAmI).unwrap(), "term-b");
        stop(sup);
    }
}
