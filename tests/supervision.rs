//! Supervision, the "Starting and stopping" rules of `procession::supervisor` and the
//! supervisor's API: children start in the given order and stop in reverse; a child that
//! fails to start fails the supervisor (`Error::StartFailed`) after the started ones are
//! stopped; the three `Shutdown` kinds (`Timeout` kills a child stuck in a handler when it
//! expires, `BrutalKill` kills at once, `Infinity` waits for a graceful stop); `Dynamic`
//! supervisors; introspection (`which_children`, `count_children`, `tree` and its
//! `Display`); and run-time changes (`start_child`, `terminate_child`, `restart_child`,
//! `delete_child`).
//!
//! Children report their life (`create`, `stopping`) to a collector actor outside the
//! tree. Every test stops and joins its supervisor, whose stop stops its children.
//! The restart rules are in `tests/supervision_strategies.rs`.

mod sup_common;

use std::time::{Duration, Instant};

use procession::__private::Dispatch;
use procession::prelude::*;
use procession::supervisor::{
    ChildInfo, ChildKind, ChildSpec, ChildState, Restart, Shutdown, SpecError, Strategy,
    Supervisor, SupervisorActor, SupervisorError, TerminateChild,
};
use procession::Error;
use sup_common::*;

/// A short shutdown timeout for children stuck in a handler.
const STUCK: Duration = Duration::from_secs(1);

/// The margin a supervisor may take beyond a shutdown timeout (generous: a loaded box).
const MARGIN: Duration = Duration::from_secs(5);

/// Arguments of a logged probe whose `create` fails.
fn failing(id: &str, log: &ActorRef<Collector>) -> ProbeArgs {
    ProbeArgs {
        fail_from: Some(0),
        ..logged(id, log)
    }
}

/// Spawns `sup`, expecting it to fail to start; returns the error.
fn spawn_err(sup: Supervisor) -> Error {
    match sup.spawn() {
        Ok(s) => {
            let _cleanup = Guard(s);
            panic!("the supervisor started");
        }
        Err(e) => e,
    }
}

/// The `Failed` text of a `StartFailed` error (panics on any other error).
fn start_failure(e: Error) -> String {
    match e {
        Error::StartFailed {
            exit: Exit::Failed(why),
            ..
        } => why,
        other => panic!("expected Error::StartFailed with Exit::Failed, got {other:?}"),
    }
}

/// The pids of the `Created` events among `events`.
fn created_pids(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Created { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect()
}

fn three(log: &ActorRef<Collector>) -> Supervisor {
    Supervisor::new(Strategy::OneForOne)
        .child(probe("a", logged("a", log)))
        .child(probe("b", logged("b", log)))
        .child(probe("c", logged("c", log)))
}

/// The typed supervisor error an operation returned.
fn refused<T: std::fmt::Debug>(r: procession::Result<T>) -> SupervisorError {
    match r {
        Err(Error::Supervisor(e)) => e,
        other => panic!("expected a SupervisorError, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Starting and stopping.

#[test]
fn children_start_in_the_given_order_each_after_the_previous_one_was_created() {
    let log = collector();
    let sup = start(three(&log));
    let steps: Vec<String> = events(&log)
        .iter()
        .map(|e| match e {
            Event::Creating { id, .. } => format!("creating {id}"),
            Event::Created { id, .. } => format!("created {id}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        steps,
        [
            "creating a",
            "created a",
            "creating b",
            "created b",
            "creating c",
            "created c"
        ]
    );
    let running: Vec<u32> = pids(&sup).into_iter().flatten().collect();
    assert_eq!(created_pids(&events(&log)), running);
    stop_and_join(&sup);
}

#[test]
fn children_stop_in_reverse_start_order_when_the_supervisor_stops() {
    let log = collector();
    let sup = start(three(&log));
    let running: Vec<u32> = pids(&sup).into_iter().flatten().collect();
    stop_and_join(&sup);
    assert_eq!(stopped(&events(&log)), ["c", "b", "a"]);
    wait_gone(&running);
}

#[test]
fn a_child_failing_to_start_makes_the_supervisor_fail_with_start_failed() {
    let log = collector();
    let why = start_failure(spawn_err(three(&log).child(probe("d", failing("d", &log)))));
    assert!(why.contains("\"d\""), "reason: {why}");
}

#[test]
fn children_started_before_a_failing_child_are_stopped_in_reverse_order() {
    let log = collector();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(probe("a", logged("a", &log)))
        .child(probe("b", logged("b", &log)))
        .child(probe("c", failing("c", &log)))
        .child(probe("d", logged("d", &log)));
    spawn_err(sup);
    let seen = events(&log);
    assert_eq!(
        story(&seen),
        ["created a", "created b", "stopping b", "stopping a"]
    );
    wait_gone(&created_pids(&seen));
}

#[test]
fn a_child_supervisor_failing_to_start_makes_its_parent_fail_to_start() {
    let log = collector();
    let sub = Supervisor::new(Strategy::OneForOne)
        .child(probe("x", logged("x", &log)))
        .child(probe("y", failing("y", &log)));
    let parent = Supervisor::new(Strategy::OneForOne)
        .child(probe("a", logged("a", &log)))
        .child(ChildSpec::supervisor("sub", sub));
    let why = start_failure(spawn_err(parent));
    assert!(why.contains("\"sub\""), "reason: {why}");
    let seen = events(&log);
    assert_eq!(
        story(&seen),
        ["created a", "created x", "stopping x", "stopping a"]
    );
    wait_gone(&created_pids(&seen));
}

#[test]
fn stopping_a_tree_stops_every_level_in_reverse_start_order() {
    let log = collector();
    let sub = Supervisor::new(Strategy::OneForOne)
        .child(probe("x", logged("x", &log)))
        .child(probe("y", logged("y", &log)));
    let sup = start(
        Supervisor::new(Strategy::OneForOne)
            .child(probe("a", logged("a", &log)))
            .child(ChildSpec::supervisor("sub", sub))
            .child(probe("b", logged("b", &log))),
    );
    assert_eq!(created(&events(&log)), ["a", "x", "y", "b"]);
    stop_and_join(&sup);
    let seen = events(&log);
    assert_eq!(stopped(&seen), ["b", "y", "x", "a"]);
    wait_gone(&created_pids(&seen));
}

#[test]
fn killing_the_supervisor_kills_its_children() {
    let log = collector();
    let sup = start(three(&log));
    let running: Vec<u32> = pids(&sup).into_iter().flatten().collect();
    sup.kill().unwrap();
    assert_eq!(sup.join_timeout(LONG).unwrap(), Exit::Signaled(9));
    wait_gone(&running);
    assert!(stopped(&events(&log)).is_empty());
}

#[test]
fn two_children_with_the_same_id_are_rejected_before_any_child_starts() {
    let log = collector();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(probe("a", logged("a", &log)))
        .child(probe("a", logged("a2", &log)));
    assert!(matches!(
        spawn_err(sup),
        Error::Supervisor(SupervisorError::Invalid(SpecError::DuplicateId { id })) if id == "a"
    ));
    assert!(events(&log).is_empty());
}

#[test]
fn a_child_placed_on_an_empty_or_repeated_host_is_rejected_before_any_child_starts() {
    let log = collector();
    for hosts in [vec![""], vec!["b", "b"]] {
        let sup = Supervisor::new(Strategy::OneForOne)
            .child(probe("first", logged("first", &log)))
            .child(probe("far", logged("far", &log)).on_hosts(hosts.clone()));
        match spawn_err(sup) {
            Error::Supervisor(SupervisorError::Invalid(e @ SpecError::BadHosts { .. })) => {
                assert_eq!(e.field(), "hosts");
            }
            other => panic!("{hosts:?}: expected BadHosts, got {other:?}"),
        }
    }
    assert!(events(&log).is_empty());
}

#[test]
fn a_child_placed_on_another_host_without_a_gateway_fails_the_start_and_names_why() {
    let log = collector();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(probe("first", logged("first", &log)))
        .child(probe("far", logged("far", &log)).on_host("elsewhere"));
    let why = start_failure(spawn_err(sup));
    assert!(
        why.contains("\"far\"") && why.contains("no gateway"),
        "{why}"
    );
    // The child started before it was stopped again, as for any failed start.
    assert_eq!(stopped(&events(&log)), ["first"]);
}

// ---------------------------------------------------------------------------------------
// Shutdown.

fn stuck_sup(shutdown: Option<Shutdown>, log: &ActorRef<Collector>) -> Guard<SupervisorActor> {
    let w = probe("w", logged("w", log));
    let w = match shutdown {
        Some(s) => w.shutdown(s),
        None => w,
    };
    start(
        Supervisor::new(Strategy::OneForOne)
            .child(probe("a", logged("a", log)))
            .child(w),
    )
}

#[test]
fn timeout_shutdown_kills_a_child_stuck_in_a_handler_when_the_timeout_expires() {
    let log = collector();
    let sup = stuck_sup(Some(Shutdown::Timeout(STUCK)), &log);
    let w = probe_ref(&sup, "w");
    w.tell(Spin).unwrap();
    let asked = Instant::now();
    sup.terminate_child("w").unwrap();
    let took = asked.elapsed();
    assert!(took >= STUCK && took < STUCK + MARGIN, "took {took:?}");
    assert_eq!(w.join_timeout(LONG).unwrap(), Exit::Signaled(9));
    assert!(stopped(&events(&log)).is_empty());
    stop_and_join(&sup);
}

#[test]
fn supervisor_stop_kills_a_stuck_child_when_its_timeout_expires_then_stops_the_others() {
    let log = collector();
    let sup = stuck_sup(Some(Shutdown::Timeout(STUCK)), &log);
    let w = probe_ref(&sup, "w");
    w.tell(Spin).unwrap();
    let asked = Instant::now();
    stop_and_join(&sup);
    let took = asked.elapsed();
    assert!(took >= STUCK && took < STUCK + MARGIN, "took {took:?}");
    assert_eq!(w.join_timeout(LONG).unwrap(), Exit::Signaled(9));
    assert_eq!(stopped(&events(&log)), ["a"]);
}

#[test]
fn worker_shutdown_defaults_to_a_five_second_timeout() {
    let log = collector();
    let sup = stuck_sup(None, &log);
    let w = probe_ref(&sup, "w");
    w.tell(Spin).unwrap();
    let asked = Instant::now();
    sup.ask_timeout(TerminateChild("w".into()), LONG)
        .unwrap()
        .unwrap();
    let took = asked.elapsed();
    let five = Duration::from_secs(5);
    assert!(took >= five && took < five + MARGIN, "took {took:?}");
    assert_eq!(w.join_timeout(LONG).unwrap(), Exit::Signaled(9));
    stop_and_join(&sup);
}

#[test]
fn timeout_shutdown_stops_an_idle_child_gracefully() {
    let log = collector();
    let sup = stuck_sup(Some(Shutdown::Timeout(STUCK)), &log);
    let w = probe_ref(&sup, "w");
    sup.terminate_child("w").unwrap();
    assert_eq!(w.join_timeout(LONG).unwrap(), shutdown());
    assert_eq!(stopped(&events(&log)), ["w"]);
    stop_and_join(&sup);
}

#[test]
fn brutal_kill_kills_the_child_at_once_without_a_graceful_stop() {
    let log = collector();
    let sup = stuck_sup(Some(Shutdown::BrutalKill), &log);
    let w = probe_ref(&sup, "w");
    let pid = w.pid();
    sup.terminate_child("w").unwrap();
    assert_eq!(w.join_timeout(LONG).unwrap(), Exit::Signaled(9));
    wait_gone(&[pid]);
    assert!(stopped(&events(&log)).is_empty());
    stop_and_join(&sup);
}

#[test]
fn infinity_shutdown_waits_for_a_graceful_stop() {
    let log = collector();
    let sup = stuck_sup(Some(Shutdown::Infinity), &log);
    let w = probe_ref(&sup, "w");
    sup.terminate_child("w").unwrap();
    assert_eq!(w.join_timeout(LONG).unwrap(), shutdown());
    assert_eq!(stopped(&events(&log)), ["w"]);
    stop_and_join(&sup);
}

#[test]
fn infinity_shutdown_waits_for_a_slow_child_whose_mailbox_is_full() {
    let log = collector();
    let sup = start(
        Supervisor::new(Strategy::OneForOne).child(
            probe("w", logged("w", &log))
                .shutdown(Shutdown::Infinity)
                .capacity(4),
        ),
    );
    let w = probe_ref(&sup, "w");
    // A slow message (longer than the 5 s the stop request may wait for room), then a
    // full mailbox behind it.
    w.tell(Nap(6_000)).unwrap();
    wait_until("the child is inside the slow handler", || {
        (w.mailbox().queued() == 0).then_some(())
    });
    let mut queued = 0;
    while w.try_tell(Record(queued + 1)).is_ok() {
        queued += 1;
    }
    sup.ask_timeout(TerminateChild("w".into()), LONG)
        .unwrap()
        .unwrap();
    assert_eq!(w.join_timeout(LONG).unwrap(), shutdown());
    assert_eq!(stopped(&events(&log)), ["w"]);
    stop_and_join(&sup);
}

#[test]
fn child_supervisors_default_to_an_infinite_shutdown() {
    // The sub's worker is stuck and takes 6 s to be killed: longer than a worker's
    // default, so only an unlimited wait lets the sub stop gracefully.
    let slow = Duration::from_secs(6);
    let sub = Supervisor::new(Strategy::OneForOne)
        .child(probe("w", quiet("w")).shutdown(Shutdown::Timeout(slow)));
    let sup = start(Supervisor::new(Strategy::OneForOne).child(ChildSpec::supervisor("sub", sub)));
    let sub = sup.child::<SupervisorActor>("sub").unwrap();
    let w = probe_ref(&sub, "w");
    w.tell(Spin).unwrap();
    let asked = Instant::now();
    stop_and_join(&sup);
    assert!(asked.elapsed() >= slow, "took {:?}", asked.elapsed());
    assert_eq!(w.join_timeout(LONG).unwrap(), Exit::Signaled(9));
    assert_eq!(sub.join_timeout(LONG).unwrap(), shutdown());
}

#[test]
fn a_killed_child_supervisor_takes_its_children_with_it_and_is_restarted() {
    let log = collector();
    let sub = Supervisor::new(Strategy::OneForOne)
        .child(probe("x", logged("x", &log)))
        .child(probe("y", logged("y", &log)));
    let sup = start(Supervisor::new(Strategy::OneForOne).child(ChildSpec::supervisor("sub", sub)));
    let sub = sup.child::<SupervisorActor>("sub").unwrap();
    let old_sub = sub.pid();
    let old_children: Vec<u32> = pids(&sub).into_iter().flatten().collect();
    sub.kill().unwrap();
    wait_restarted(&sup, "sub", old_sub);
    wait_gone(&old_children);
    let new_children: Vec<u32> = pids(&sub).into_iter().flatten().collect();
    assert_eq!(new_children.len(), 2);
    assert!(new_children.iter().all(|p| !old_children.contains(p)));
    assert_eq!(created(&events(&log)), ["x", "y", "x", "y"]);
    stop_and_join(&sup);
}

// ---------------------------------------------------------------------------------------
// Dynamic supervisors.

fn dynamic() -> Guard<SupervisorActor> {
    start(Supervisor::new(Strategy::Dynamic).template(probe("w", quiet("template"))))
}

#[test]
fn dynamic_supervisor_starts_children_from_its_template_with_the_given_args() {
    let sup = dynamic();
    assert!(children(&sup).is_empty());
    let one = sup.start_dynamic::<Probe>(quiet("one")).unwrap();
    let two = sup.start_dynamic::<Probe>(quiet("two")).unwrap();
    assert_eq!(one.ask_timeout(WhoAmI, LONG).unwrap().0, "one");
    assert_eq!(two.ask_timeout(WhoAmI, LONG).unwrap().0, "two");
    let listed: Vec<(String, Option<u32>)> =
        children(&sup).into_iter().map(|c| (c.id, c.pid)).collect();
    assert_eq!(
        listed,
        [
            ("w-1".to_string(), Some(one.pid())),
            ("w-2".to_string(), Some(two.pid()))
        ]
    );
    stop_and_join(&sup);
}

#[test]
fn dynamic_children_are_restarted_each_on_its_own_with_their_own_args() {
    let sup = dynamic();
    let one = sup.start_dynamic::<Probe>(quiet("one")).unwrap();
    let two = sup.start_dynamic::<Probe>(quiet("two")).unwrap();
    let (old_one, old_two) = (one.pid(), two.pid());
    one.kill().unwrap();
    let new_one = wait_restarted(&sup, "w-1", old_one);
    assert_eq!(
        one.ask_timeout(WhoAmI, LONG).unwrap(),
        ("one".to_string(), new_one, 1)
    );
    assert_eq!(pid_of(&sup, "w-2"), old_two);
    assert_eq!(info(&sup, "w-2").restarts, 0);
    stop_and_join(&sup);
}

#[test]
fn count_children_counts_dynamic_children() {
    let sup = dynamic();
    for id in ["one", "two", "three"] {
        sup.start_dynamic::<Probe>(quiet(id)).unwrap();
    }
    let n = sup.count_children().unwrap();
    // OTP counts one spec, the template.
    assert_eq!((n.specs, n.active, n.workers, n.supervisors), (1, 3, 3, 0));
    sup.terminate_child("w-2").unwrap();
    let n = sup.count_children().unwrap();
    assert_eq!((n.specs, n.active, n.workers), (1, 2, 2));
    stop_and_join(&sup);
}

#[test]
fn dynamic_supervisor_with_static_children_fails_to_start() {
    let sup = Supervisor::new(Strategy::Dynamic)
        .template(probe("w", quiet("template")))
        .child(probe("a", quiet("a")));
    assert!(matches!(
        spawn_err(sup),
        Error::Supervisor(SupervisorError::Invalid(SpecError::DynamicWithChildren))
    ));
}

#[test]
fn dynamic_supervisor_without_a_template_fails_to_start() {
    assert!(matches!(
        spawn_err(Supervisor::new(Strategy::Dynamic)),
        Error::Supervisor(SupervisorError::Invalid(SpecError::MissingTemplate))
    ));
}

#[test]
fn start_child_with_a_spec_is_refused_by_a_dynamic_supervisor() {
    let sup = dynamic();
    assert!(matches!(
        refused(sup.start_child(probe("a", quiet("a")))),
        SupervisorError::WrongStrategy {
            strategy: Strategy::Dynamic,
            ..
        }
    ));
    stop_and_join(&sup);
}

#[test]
fn start_dynamic_is_refused_by_a_static_supervisor() {
    let sup = start(Supervisor::new(Strategy::OneForOne));
    assert!(matches!(
        refused(sup.start_dynamic::<Probe>(quiet("one"))),
        SupervisorError::WrongStrategy {
            strategy: Strategy::OneForOne,
            ..
        }
    ));
    assert!(children(&sup).is_empty());
    stop_and_join(&sup);
}

// ---------------------------------------------------------------------------------------
// Introspection.

/// A two-level tree: workers "a" and "b" (transient), and supervisor "sub" with "x", "y".
fn two_levels() -> Guard<SupervisorActor> {
    let sub = Supervisor::new(Strategy::OneForOne)
        .child(probe("x", quiet("x")))
        .child(probe("y", quiet("y")));
    start(
        Supervisor::new(Strategy::OneForOne)
            .child(probe("a", quiet("a")))
            .child(probe("b", quiet("b")).restart(Restart::Transient))
            .child(ChildSpec::supervisor("sub", sub)),
    )
}

#[test]
fn which_children_reports_every_child_in_start_order() {
    let sup = two_levels();
    let list = children(&sup);
    let ids: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "sub"]);
    let kinds: Vec<ChildKind> = list.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [ChildKind::Worker, ChildKind::Worker, ChildKind::Supervisor]
    );
    let restart: Vec<Restart> = list.iter().map(|c| c.restart).collect();
    assert_eq!(
        restart,
        [Restart::Permanent, Restart::Transient, Restart::Permanent]
    );
    assert!(list
        .iter()
        .all(|c| c.state == ChildState::Running && c.restarts == 0));
    assert_eq!(list[0].actor, <Probe as Dispatch>::NAME);
    assert_eq!(list[2].actor, <SupervisorActor as Dispatch>::NAME);
    for c in &list[..2] {
        let p = probe_ref(&sup, &c.id);
        let (id, pid, _) = p.ask_timeout(WhoAmI, LONG).unwrap();
        assert_eq!(
            (id.as_str(), Some(pid), Some(p.id())),
            (c.id.as_str(), c.pid, c.mailbox)
        );
    }
    let sub = sup.child::<SupervisorActor>("sub").unwrap();
    assert_eq!(
        (Some(sub.pid()), Some(sub.id())),
        (list[2].pid, list[2].mailbox)
    );
    stop_and_join(&sup);
}

#[test]
fn which_children_counts_restarts() {
    let sup = two_levels();
    let old = pid_of(&sup, "a");
    probe_ref(&sup, "a").kill().unwrap();
    let new = wait_restarted(&sup, "a", old);
    let a = info(&sup, "a");
    assert_eq!(
        (a.pid, a.restarts, a.state),
        (Some(new), 1, ChildState::Running)
    );
    assert_eq!(info(&sup, "b").restarts, 0);
    stop_and_join(&sup);
}

#[test]
fn count_children_counts_specs_active_children_supervisors_and_workers() {
    let sup = two_levels();
    let n = sup.count_children().unwrap();
    assert_eq!((n.specs, n.active, n.supervisors, n.workers), (3, 3, 1, 2));
    sup.terminate_child("b").unwrap();
    let n = sup.count_children().unwrap();
    assert_eq!((n.specs, n.active, n.supervisors, n.workers), (3, 2, 1, 2));
    stop_and_join(&sup);
}

#[test]
fn tree_of_a_two_level_tree_contains_the_nested_supervisors_children() {
    let sup = two_levels();
    let tree = sup.tree().unwrap();
    assert_eq!(tree.info.id, "root");
    assert_eq!(tree.info.pid, Some(sup.pid()));
    let ids: Vec<&str> = tree.children.iter().map(|n| n.info.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "sub"]);
    assert!(tree.children[..2].iter().all(|n| n.children.is_empty()));
    let sub = sup.child::<SupervisorActor>("sub").unwrap();
    // Counters (`stats`: RSS, CPU time) are a live snapshot, which moves between the
    // two calls; the rest of each child's record must be the same.
    let settled = |mut c: ChildInfo| {
        c.stats = None;
        c
    };
    let nested: Vec<_> = tree.children[2]
        .children
        .iter()
        .map(|n| settled(n.info.clone()))
        .collect();
    let direct: Vec<_> = children(&sub).into_iter().map(settled).collect();
    assert_eq!(nested, direct);
    let nested_ids: Vec<&str> = nested.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(nested_ids, ["x", "y"]);
    stop_and_join(&sup);
}

#[test]
fn tree_display_draws_every_child() {
    let sup = two_levels();
    let drawn = sup.tree().unwrap().to_string();
    assert_eq!(drawn.lines().count(), 6, "{drawn}");
    for id in ["root", "a", "b", "sub", "x", "y"] {
        assert!(
            drawn.lines().any(|l| l.contains(&format!("{id} ("))),
            "{id} missing from\n{drawn}"
        );
    }
    stop_and_join(&sup);
}

// ---------------------------------------------------------------------------------------
// Run-time changes.

fn one_worker(log: &ActorRef<Collector>) -> Guard<SupervisorActor> {
    start(Supervisor::new(Strategy::OneForOne).child(probe("a", logged("a", log))))
}

#[test]
fn start_child_adds_and_starts_a_child_at_run_time() {
    let log = collector();
    let sup = one_worker(&log);
    sup.start_child(probe("b", logged("b", &log))).unwrap();
    assert_eq!(created(&events(&log)), ["a", "b"]);
    let b = info(&sup, "b");
    assert_eq!(b.state, ChildState::Running);
    let (id, pid, _) = probe_ref(&sup, "b").ask_timeout(WhoAmI, LONG).unwrap();
    assert_eq!((id.as_str(), Some(pid)), ("b", b.pid));
    let ids: Vec<String> = children(&sup).into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["a", "b"]);
    stop_and_join(&sup);
    assert_eq!(stopped(&events(&log)), ["b", "a"]);
}

#[test]
fn start_child_with_a_taken_id_is_an_error() {
    let log = collector();
    let sup = one_worker(&log);
    let a = pid_of(&sup, "a");
    assert_eq!(
        refused(sup.start_child(probe("a", quiet("a")))),
        SupervisorError::AlreadyStarted {
            id: "a".into(),
            pid: a
        }
    );
    assert_eq!(pids(&sup), [Some(a)]);
    stop_and_join(&sup);
}

#[test]
fn start_child_that_fails_to_start_is_an_error_and_keeps_no_spec() {
    let log = collector();
    let sup = one_worker(&log);
    match refused(sup.start_child(probe("b", failing("b", &log)))) {
        SupervisorError::StartFailed { id, reason } => {
            assert_eq!(id, "b");
            assert!(reason.contains("told to fail"), "reason: {reason}");
        }
        other => panic!("expected StartFailed, got {other:?}"),
    }
    assert_eq!(sup.count_children().unwrap().specs, 1);
    stop_and_join(&sup);
}

#[test]
fn terminate_child_stops_it_by_its_shutdown_and_keeps_its_spec() {
    let log = collector();
    let sup = one_worker(&log);
    let a = probe_ref(&sup, "a");
    sup.terminate_child("a").unwrap();
    assert_eq!(a.join_timeout(LONG).unwrap(), shutdown());
    assert_eq!(stopped(&events(&log)), ["a"]);
    let info = info(&sup, "a");
    assert_eq!((info.state, info.pid), (ChildState::Terminated, None));
    // A terminated Permanent child is not restarted.
    assert_eq!(sup.count_children().unwrap().active, 0);
    stop_and_join(&sup);
}

#[test]
fn terminate_child_of_a_temporary_child_removes_its_spec() {
    let log = collector();
    let sup = one_worker(&log);
    sup.start_child(probe("t", quiet("t")).restart(Restart::Temporary))
        .unwrap();
    sup.terminate_child("t").unwrap();
    let ids: Vec<String> = children(&sup).into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["a"]);
    stop_and_join(&sup);
}

#[test]
fn restart_child_starts_a_terminated_child_again() {
    let log = collector();
    let sup = one_worker(&log);
    let old = pid_of(&sup, "a");
    sup.terminate_child("a").unwrap();
    sup.restart_child("a").unwrap();
    let a = info(&sup, "a");
    assert_eq!(a.state, ChildState::Running);
    assert_ne!(a.pid, Some(old));
    let (_, pid, _) = probe_ref(&sup, "a").ask_timeout(WhoAmI, LONG).unwrap();
    assert_eq!(Some(pid), a.pid);
    assert_eq!(created(&events(&log)), ["a", "a"]);
    stop_and_join(&sup);
}

#[test]
fn restart_child_of_a_running_child_is_an_error() {
    let log = collector();
    let sup = one_worker(&log);
    let a = pid_of(&sup, "a");
    assert_eq!(
        refused(sup.restart_child("a")),
        SupervisorError::Running { id: "a".into() }
    );
    assert_eq!(pids(&sup), [Some(a)]);
    stop_and_join(&sup);
}

#[test]
fn delete_child_of_a_running_child_is_an_error() {
    let log = collector();
    let sup = one_worker(&log);
    let a = pid_of(&sup, "a");
    assert_eq!(
        refused(sup.delete_child("a")),
        SupervisorError::Running { id: "a".into() }
    );
    assert_eq!(pids(&sup), [Some(a)]);
    stop_and_join(&sup);
}

#[test]
fn delete_child_forgets_a_terminated_child() {
    let log = collector();
    let sup = one_worker(&log);
    sup.terminate_child("a").unwrap();
    sup.delete_child("a").unwrap();
    assert!(children(&sup).is_empty());
    assert_eq!(
        refused(sup.restart_child("a")),
        SupervisorError::NotFound { id: "a".into() }
    );
    stop_and_join(&sup);
}

#[test]
fn unknown_child_ids_are_errors() {
    let log = collector();
    let sup = one_worker(&log);
    let not_found = SupervisorError::NotFound { id: "nope".into() };
    assert_eq!(refused(sup.terminate_child("nope")), not_found);
    assert_eq!(refused(sup.restart_child("nope")), not_found);
    assert_eq!(refused(sup.delete_child("nope")), not_found);
    assert_eq!(refused(sup.which_child("nope")), not_found);
    assert_eq!(refused(sup.get_childspec("nope")), not_found);
    assert!(matches!(
        sup.child::<Probe>("nope"),
        Err(Error::Supervisor(SupervisorError::NotFound { .. }))
    ));
    stop_and_join(&sup);
}

/// How a child that its supervisor terminated exits: OTP's reason `shutdown`.
fn shutdown() -> Exit {
    Exit::Shutdown("shutdown".into())
}
