//! OTP's `supervisor` semantics, item by item (issue 8, items 1–7 and 15): restarts that
//! do not freeze the supervisor, links with OTP's rules, child spec validation, group
//! restarts, dynamic supervisors, typed errors with `ignore`, a public bound for generic
//! code, and `ActorDied` naming the process that died. Each test would fail on the
//! behaviour it is named after.

mod sup_common;

use std::time::Duration;

use procession::prelude::*;
use procession::supervisor::{
    check_childspecs, AutoShutdown, ChildSpec, ChildState, Restart, Shutdown, SpecError, Strategy,
    Supervisor, SupervisorActor, SupervisorError,
};
use procession::{ActorType, Error, Exited, Handles, Ignore};
use sup_common::*;

// ---------------------------------------------------------------------------------------
// Actors of this suite.

/// Arguments of a [`Flaky`] worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FlakyArgs {
    id: String,
    log: Option<ActorRef<Collector>>,
    /// `create` fails in these incarnations.
    fail_in: Vec<u32>,
    /// `create` fails in every incarnation from this one on.
    fail_from: Option<u32>,
    /// A failing `create` sleeps this long first (a slow failed start).
    slow_fail_ms: u64,
    /// `create` returns `Ignore`.
    ignore: bool,
    /// `stopping` waits until the log holds this many `Stopping` events (at most 20 s).
    rendezvous: Option<usize>,
}

fn flaky(id: &str) -> FlakyArgs {
    FlakyArgs {
        id: id.into(),
        log: None,
        fail_in: Vec::new(),
        fail_from: None,
        slow_fail_ms: 0,
        ignore: false,
        rendezvous: None,
    }
}

/// Ask: `(pid, incarnation)`.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (u32, u32))]
struct Where;

/// Ask: spin for ever in the handler (only a kill ends it).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct Hang;

/// Tell: end the process with `std::process::exit(code)`.
#[derive(Serialize, Deserialize, Message)]
struct ExitWith(i32);

#[derive(Actor)]
#[actor(handles(Where, Hang, ExitWith, Crash, Quit), args = FlakyArgs)]
struct Flaky {
    args: FlakyArgs,
}

impl Flaky {
    fn note(&self, e: Event) {
        if let Some(log) = &self.args.log {
            let _ = log.tell(Note(e));
        }
    }
}

impl Actor for Flaky {
    type Args = FlakyArgs;

    fn create(args: FlakyArgs, cx: &mut Context<Self>) -> Result<Self, BoxError> {
        if args.ignore {
            return Err(Ignore.into());
        }
        let n = cx.incarnation();
        if args.fail_in.contains(&n) || args.fail_from.is_some_and(|f| n >= f) {
            std::thread::sleep(Duration::from_millis(args.slow_fail_ms));
            return Err(format!("{} fails in incarnation {n}", args.id).into());
        }
        let me = Flaky { args };
        me.note(Event::Created {
            id: me.args.id.clone(),
            pid: cx.pid(),
        });
        Ok(me)
    }

    fn stopping(&mut self, cx: &mut Context<Self>) {
        self.note(Event::Stopping {
            id: self.args.id.clone(),
            pid: cx.pid(),
        });
        if let (Some(n), Some(log)) = (self.args.rendezvous, &self.args.log) {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while stopped(&events(log)).len() < n {
                if std::time::Instant::now() >= deadline {
                    self.note(Event::Got {
                        n: 0,
                        pid: cx.pid(),
                    });
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

impl Handler<Where> for Flaky {
    fn handle(&mut self, _: Where, cx: &mut Context<Self>) -> (u32, u32) {
        (cx.pid(), cx.incarnation())
    }
}

impl Handler<Hang> for Flaky {
    fn handle(&mut self, _: Hang, cx: &mut Context<Self>) {
        self.note(Event::Got {
            n: 7,
            pid: cx.pid(),
        });
        loop {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Handler<ExitWith> for Flaky {
    fn handle(&mut self, ExitWith(code): ExitWith, _cx: &mut Context<Self>) {
        std::process::exit(code);
    }
}

impl Handler<Crash> for Flaky {
    fn handle(&mut self, Crash(why): Crash, _cx: &mut Context<Self>) {
        panic!("{why}");
    }
}

impl Handler<Quit> for Flaky {
    fn handle(&mut self, _: Quit, cx: &mut Context<Self>) {
        cx.stop();
    }
}

fn worker(id: &str, args: FlakyArgs) -> ChildSpec {
    ChildSpec::worker::<Flaky>(id, args)
}

fn flaky_ref(sup: &ActorRef<SupervisorActor>, id: &str) -> ActorRef<Flaky> {
    sup.child::<Flaky>(id).unwrap()
}

/// Ask: link to this actor.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(), String>)]
struct LinkFlaky(ActorRef<Flaky>);

/// Ask: link to this supervisor.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(), String>)]
struct LinkSup(ActorRef<SupervisorActor>);

/// Ask: trap exits or not.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = ())]
struct Trap(bool);

/// Ask: the `Exited` messages received so far.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Vec<Exited>)]
struct Exiteds;

/// An actor that links to others and keeps the `Exited` messages it traps.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(LinkFlaky, LinkSup, Trap, Exiteds, Exited))]
struct Linker {
    exited: Vec<Exited>,
}

impl Handler<LinkFlaky> for Linker {
    fn handle(&mut self, LinkFlaky(t): LinkFlaky, cx: &mut Context<Self>) -> Result<(), String> {
        cx.link(&t).map_err(|e| e.to_string())
    }
}

impl Handler<LinkSup> for Linker {
    fn handle(&mut self, LinkSup(t): LinkSup, cx: &mut Context<Self>) -> Result<(), String> {
        cx.link(&t).map_err(|e| e.to_string())
    }
}

impl Handler<Trap> for Linker {
    fn handle(&mut self, Trap(on): Trap, cx: &mut Context<Self>) {
        cx.trap_exit(on);
    }
}

impl Handler<Exiteds> for Linker {
    fn handle(&mut self, _: Exiteds, _cx: &mut Context<Self>) -> Vec<Exited> {
        self.exited.clone()
    }
}

impl Handler<Exited> for Linker {
    fn handle(&mut self, e: Exited, _cx: &mut Context<Self>) {
        self.exited.push(e);
    }
}

fn linker(trap: bool) -> Guard<Linker> {
    let l = Guard(procession::spawn(Linker::default()).unwrap());
    l.ask_timeout(Trap(trap), LONG).unwrap();
    l
}

/// Waits for the first `Exited` the linker trapped.
fn first_exited(l: &ActorRef<Linker>) -> Exited {
    wait_until("an Exited message", || {
        l.ask_timeout(Exiteds, LONG).unwrap().into_iter().next()
    })
}

fn supervisor_error<T: std::fmt::Debug>(r: procession::Result<T>) -> SupervisorError {
    match r {
        Err(Error::Supervisor(e)) => e,
        other => panic!("expected a SupervisorError, got {other:?}"),
    }
}

fn invalid(sup: Supervisor) -> SpecError {
    match supervisor_error(sup.spawn()) {
        SupervisorError::Invalid(e) => e,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 1. A restart loop does not freeze the supervisor.

/// A supervisor whose child `slow` fails every restart, slowly, with room for many.
fn failing_restarts() -> Guard<SupervisorActor> {
    let mut args = flaky("slow");
    args.fail_from = Some(1);
    args.slow_fail_ms = 200;
    start(
        Supervisor::new(Strategy::OneForOne)
            .intensity(1000, Duration::from_secs(600))
            .child(worker("slow", args))
            .child(worker("other", flaky("other"))),
    )
}

#[test]
fn which_children_is_answered_while_a_child_keeps_failing_to_restart() {
    let sup = failing_restarts();
    flaky_ref(&sup, "slow").tell(Crash("first".into())).unwrap();
    // Each failed start takes 200 ms, 1000 are allowed: a supervisor that retried inside
    // the Down handler would not answer for minutes.
    let info = wait_until("a failed restart attempt", || {
        let c = sup.which_child("slow").unwrap();
        (c.restarts >= 2).then_some(c)
    });
    assert_eq!((info.state, info.pid), (ChildState::Restarting, None));
    assert_eq!(sup.which_child("other").unwrap().state, ChildState::Running);
}

#[test]
fn stop_ends_a_supervisor_whose_child_keeps_failing_to_restart() {
    let sup = failing_restarts();
    flaky_ref(&sup, "slow").tell(Crash("first".into())).unwrap();
    wait_until("a failed restart attempt", || {
        (sup.which_child("slow").unwrap().restarts >= 1).then_some(())
    });
    sup.stop_timeout(LONG).unwrap();
    // Stopped on request, long before the intensity (1000 attempts) could be reached.
    assert_eq!(sup.join_timeout(LONG).unwrap(), Exit::Stopped);
}

#[test]
fn terminate_child_ends_a_restart_loop_and_no_attempt_follows() {
    let sup = failing_restarts();
    flaky_ref(&sup, "slow").tell(Crash("first".into())).unwrap();
    wait_until("a failed restart attempt", || {
        (sup.which_child("slow").unwrap().restarts >= 1).then_some(())
    });
    sup.terminate_child("slow").unwrap();
    let after = sup.which_child("slow").unwrap();
    assert_eq!((after.state, after.pid), (ChildState::Terminated, None));
    // Any attempt queued before the terminate is dropped when it comes up.
    let later = sup.which_child("slow").unwrap();
    assert_eq!(later.state, ChildState::Terminated);
    assert_eq!(later.restarts, after.restarts);
}

// ---------------------------------------------------------------------------------------
// 2. Links follow OTP.

#[test]
fn a_trapping_linked_actor_receives_exited_for_a_normal_exit() {
    let l = linker(true);
    let t: ActorRef<Flaky> = procession::spawn(flaky("t")).unwrap();
    l.ask_timeout(LinkFlaky(t.clone()), LONG).unwrap().unwrap();
    t.tell(Quit).unwrap();
    let e = first_exited(&l);
    assert_eq!((e.id, e.exit), (t.id(), Exit::Normal));
}

#[test]
fn a_trapping_linked_actor_receives_exited_for_a_graceful_stop() {
    let l = linker(true);
    let t: ActorRef<Flaky> = procession::spawn(flaky("t")).unwrap();
    l.ask_timeout(LinkFlaky(t.clone()), LONG).unwrap().unwrap();
    stop_and_join(&t);
    assert_eq!(first_exited(&l).exit, Exit::Stopped);
}

#[test]
fn a_trapping_linked_actor_receives_exited_with_shutdown_when_a_supervisor_terminates_the_child() {
    let sup = start(Supervisor::new(Strategy::OneForOne).child(worker("w", flaky("w"))));
    let l = linker(true);
    l.ask_timeout(LinkFlaky(flaky_ref(&sup, "w")), LONG)
        .unwrap()
        .unwrap();
    sup.terminate_child("w").unwrap();
    assert_eq!(first_exited(&l).exit, Exit::Shutdown("shutdown".into()));
}

#[test]
fn a_non_trapping_linked_actor_survives_a_normal_exit_and_a_graceful_stop() {
    let l = linker(false);
    let quits: ActorRef<Flaky> = procession::spawn(flaky("q")).unwrap();
    let stops: ActorRef<Flaky> = procession::spawn(flaky("s")).unwrap();
    l.ask_timeout(LinkFlaky(quits.clone()), LONG)
        .unwrap()
        .unwrap();
    l.ask_timeout(LinkFlaky(stops.clone()), LONG)
        .unwrap()
        .unwrap();
    quits.tell(Quit).unwrap();
    assert_eq!(quits.join_timeout(LONG).unwrap(), Exit::Normal);
    stop_and_join(&stops);
    // The exits were published before join returned: the linker is still there.
    assert!(l.ask_timeout(Exiteds, LONG).unwrap().is_empty());
    assert!(l.is_alive());
}

#[test]
fn a_non_trapping_linked_actor_dies_when_a_supervisor_terminates_the_linked_child() {
    let sup = start(Supervisor::new(Strategy::OneForOne).child(worker("w", flaky("w"))));
    let l = linker(false);
    l.ask_timeout(LinkFlaky(flaky_ref(&sup, "w")), LONG)
        .unwrap()
        .unwrap();
    sup.terminate_child("w").unwrap();
    match l.join_timeout(LONG).unwrap() {
        Exit::Failed(why) => assert!(why.contains("shutdown"), "exit: {why}"),
        other => panic!("expected the linker to die with the shutdown, got {other:?}"),
    }
}

#[test]
fn a_non_trapping_linked_actor_dies_when_its_linked_supervisor_reaches_its_intensity() {
    let sup = start(
        Supervisor::new(Strategy::OneForOne)
            .intensity(0, Duration::from_secs(5))
            .child(worker("w", flaky("w"))),
    );
    let l = linker(false);
    l.ask_timeout(LinkSup(sup.0.clone()), LONG)
        .unwrap()
        .unwrap();
    flaky_ref(&sup, "w").tell(Crash("boom".into())).unwrap();
    assert!(matches!(sup.join_timeout(LONG).unwrap(), Exit::Shutdown(_)));
    match l.join_timeout(LONG).unwrap() {
        Exit::Failed(why) => assert!(why.contains("intensity"), "exit: {why}"),
        other => panic!("expected the linker to die with its supervisor, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 3. Validation.

#[test]
fn a_zero_period_is_rejected_naming_the_period() {
    let e = invalid(Supervisor::new(Strategy::OneForOne).intensity(1, Duration::ZERO));
    assert_eq!((e.clone(), e.field()), (SpecError::ZeroPeriod, "period"));
}

#[test]
fn a_significant_permanent_child_is_rejected_naming_significant() {
    let e = invalid(
        Supervisor::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(worker("w", flaky("w")).significant(true)),
    );
    assert_eq!(e, SpecError::SignificantPermanent { id: "w".into() });
    assert_eq!(e.field(), "significant");
}

#[test]
fn a_significant_child_under_auto_shutdown_never_is_rejected() {
    let e = invalid(
        Supervisor::new(Strategy::OneForOne).child(
            worker("w", flaky("w"))
                .restart(Restart::Transient)
                .significant(true),
        ),
    );
    assert_eq!(
        e,
        SpecError::SignificantWithoutAutoShutdown { id: "w".into() }
    );
}

#[test]
fn a_dynamic_supervisor_with_an_auto_shutdown_is_rejected() {
    for when in [AutoShutdown::AnySignificant, AutoShutdown::AllSignificant] {
        let e = invalid(
            Supervisor::new(Strategy::Dynamic)
                .auto_shutdown(when)
                .template(worker("t", flaky("t"))),
        );
        assert_eq!(
            (e.clone(), e.field()),
            (SpecError::DynamicAutoShutdown, "auto_shutdown")
        );
    }
}

#[test]
fn check_childspecs_rejects_duplicate_ids_and_a_zero_shutdown_timeout() {
    let twice = [worker("a", flaky("a")), worker("a", flaky("a"))];
    assert_eq!(
        check_childspecs(&twice, AutoShutdown::Never),
        Err(SpecError::DuplicateId { id: "a".into() })
    );
    let zero = [worker("z", flaky("z")).shutdown(Shutdown::Timeout(Duration::ZERO))];
    assert_eq!(
        check_childspecs(&zero, AutoShutdown::Never),
        Err(SpecError::ZeroShutdown { id: "z".into() })
    );
    let fine = [worker("a", flaky("a")), worker("b", flaky("b"))];
    assert_eq!(check_childspecs(&fine, AutoShutdown::Never), Ok(()));
}

#[test]
fn start_child_rejects_an_invalid_spec_and_keeps_nothing() {
    let sup = start(Supervisor::new(Strategy::OneForOne));
    let e = supervisor_error(sup.start_child(worker("w", flaky("w")).significant(true)));
    assert_eq!(
        e,
        SupervisorError::Invalid(SpecError::SignificantPermanent { id: "w".into() })
    );
    assert!(sup.which_children().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// 4. Group restarts.

#[test]
fn a_one_for_all_restart_that_fails_partway_restarts_the_whole_group_again() {
    let log = collector();
    let with_log = |id: &str| FlakyArgs {
        log: Some(log.0.clone()),
        ..flaky(id)
    };
    let mut b = with_log("b");
    b.fail_in = vec![1]; // b's first restart fails, its second succeeds
    let sup = start(
        Supervisor::new(Strategy::OneForAll)
            .intensity(5, Duration::from_secs(60))
            .child(worker("a", with_log("a")))
            .child(worker("b", b))
            .child(worker("c", with_log("c"))),
    );
    flaky_ref(&sup, "c").tell(Crash("boom".into())).unwrap();
    wait_until("the group running again", || {
        let all = sup.which_children().unwrap();
        all.iter()
            .all(|c| c.state == ChildState::Running && c.restarts >= 1)
            .then_some(())
    });
    // a: the first start, the restart that b's failure undid, and the whole-group retry.
    let ev = events(&log);
    let a_created = created(&ev).iter().filter(|id| *id == "a").count();
    assert_eq!(a_created, 3, "events: {ev:?}");
    let (_, a_incarnation) = flaky_ref(&sup, "a").ask_timeout(Where, LONG).unwrap();
    assert_eq!(a_incarnation, 2);
}

#[test]
fn a_group_restart_brings_back_a_child_stopped_with_terminate_child() {
    let sup = start(
        Supervisor::new(Strategy::OneForAll)
            .intensity(5, Duration::from_secs(60))
            .child(worker("a", flaky("a")))
            .child(worker("b", flaky("b"))),
    );
    sup.terminate_child("a").unwrap();
    assert_eq!(sup.which_child("a").unwrap().state, ChildState::Terminated);
    flaky_ref(&sup, "b").tell(Crash("boom".into())).unwrap();
    let a = wait_state(&sup, "a", ChildState::Running);
    assert!(a.pid.is_some());
}

// ---------------------------------------------------------------------------------------
// 5. Dynamic supervisors.

fn dynamic(template: FlakyArgs, shutdown: Shutdown) -> Guard<SupervisorActor> {
    start(
        Supervisor::new(Strategy::Dynamic)
            .template(worker("job", template).shutdown(shutdown))
            .intensity(5, Duration::from_secs(60)),
    )
}

#[test]
fn count_children_of_a_dynamic_supervisor_counts_one_spec() {
    let sup = dynamic(flaky("job"), Shutdown::Timeout(LONG));
    sup.start_dynamic::<Flaky>(flaky("one")).unwrap();
    sup.start_dynamic::<Flaky>(flaky("two")).unwrap();
    let c = sup.count_children().unwrap();
    // OTP: [{specs,1},{active,2},{supervisors,0},{workers,2}]
    assert_eq!((c.specs, c.active, c.supervisors, c.workers), (1, 2, 0, 2));
}

#[test]
fn terminating_a_dynamic_child_that_has_already_ended_is_ok() {
    let sup = start(
        Supervisor::new(Strategy::Dynamic)
            .template(worker("job", flaky("job")).restart(Restart::Transient)),
    );
    let one = sup.start_dynamic::<Flaky>(flaky("one")).unwrap();
    let id = sup.which_children().unwrap()[0].id.clone();
    one.tell(Quit).unwrap();
    one.join_timeout(LONG).unwrap();
    wait_removed(&sup, &id);
    sup.terminate_child(&id).unwrap();
    sup.terminate_ref(&one).unwrap();
    // An id it never gave out is still not found.
    assert_eq!(
        supervisor_error(sup.terminate_child("job-99")),
        SupervisorError::NotFound {
            id: "job-99".into()
        }
    );
}

#[test]
fn dynamic_children_are_stopped_in_parallel_at_shutdown() {
    let log = collector();
    // Each child's `stopping` waits until both have received their stop. Stopped one
    // after another, the first would wait in vain (and record `Got { n: 0 }`).
    let args = FlakyArgs {
        log: Some(log.0.clone()),
        rendezvous: Some(2),
        ..flaky("job")
    };
    let sup = dynamic(args.clone(), Shutdown::Timeout(LONG));
    let one = sup.start_dynamic::<Flaky>(args.clone()).unwrap();
    let two = sup.start_dynamic::<Flaky>(args).unwrap();
    sup.stop_timeout(LONG).unwrap();
    sup.join_timeout(LONG).unwrap();
    for child in [&one, &two] {
        assert_eq!(
            child.join_timeout(LONG).unwrap(),
            Exit::Shutdown("shutdown".into())
        );
    }
    let ev = events(&log);
    assert_eq!(stopped(&ev).len(), 2, "events: {ev:?}");
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Got { n: 0, .. })),
        "a child waited for its sibling's stop: {ev:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 6. Typed errors, which_child, get_childspec, ignore.

#[test]
fn start_child_with_the_id_of_a_terminated_child_is_already_present() {
    let sup = start(Supervisor::new(Strategy::OneForOne).child(worker("a", flaky("a"))));
    let pid = sup.which_child("a").unwrap().pid.unwrap();
    assert_eq!(
        supervisor_error(sup.start_child(worker("a", flaky("a")))),
        SupervisorError::AlreadyStarted {
            id: "a".into(),
            pid
        }
    );
    sup.terminate_child("a").unwrap();
    assert_eq!(
        supervisor_error(sup.start_child(worker("a", flaky("a")))),
        SupervisorError::AlreadyPresent { id: "a".into() }
    );
}

#[test]
fn restart_and_delete_of_a_restarting_child_are_restarting_errors() {
    let sup = start(
        Supervisor::new(Strategy::OneForOne)
            .intensity(5, Duration::from_secs(60))
            .backoff(LONG, LONG, LONG)
            .child(worker("a", flaky("a"))),
    );
    flaky_ref(&sup, "a").tell(Crash("boom".into())).unwrap();
    wait_state(&sup, "a", ChildState::Restarting);
    let restarting = SupervisorError::Restarting { id: "a".into() };
    assert_eq!(supervisor_error(sup.restart_child("a")), restarting);
    assert_eq!(supervisor_error(sup.delete_child("a")), restarting);
}

#[test]
fn which_child_and_get_childspec_describe_one_child() {
    let spec = worker("a", flaky("a")).restart(Restart::Transient);
    let sup = start(Supervisor::new(Strategy::OneForOne).child(spec.clone()));
    let info = sup.which_child("a").unwrap();
    assert_eq!((info.id.as_str(), info.state), ("a", ChildState::Running));
    assert_eq!(sup.get_childspec("a").unwrap(), spec);
}

#[test]
fn a_static_child_that_ignores_its_start_is_listed_with_no_process() {
    let mut ignoring = flaky("i");
    ignoring.ignore = true;
    let sup = start(
        Supervisor::new(Strategy::OneForOne)
            .child(worker("i", ignoring.clone()))
            .child(worker("b", flaky("b"))),
    );
    let i = sup.which_child("i").unwrap();
    assert_eq!((i.state, i.pid), (ChildState::Terminated, None));
    assert_eq!(sup.which_child("b").unwrap().state, ChildState::Running);
    assert_eq!(sup.start_child(worker("j", ignoring)).unwrap(), None);
    assert_eq!(sup.which_child("j").unwrap().pid, None);
}

#[test]
fn a_dynamic_child_that_ignores_its_start_is_not_kept() {
    let sup = dynamic(flaky("job"), Shutdown::Timeout(LONG));
    let mut ignoring = flaky("i");
    ignoring.ignore = true;
    assert_eq!(
        supervisor_error(sup.start_dynamic::<Flaky>(ignoring)),
        SupervisorError::Ignored
    );
    assert!(sup.which_children().unwrap().is_empty());
}

#[test]
fn spawning_an_actor_that_ignores_its_start_fails_with_exit_ignored() {
    let mut ignoring = flaky("i");
    ignoring.ignore = true;
    match procession::spawn::<Flaky>(ignoring) {
        Err(Error::StartFailed {
            exit: Exit::Ignored,
            ..
        }) => {}
        other => panic!("expected StartFailed with Exit::Ignored, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 7. Generic code over refs.

/// Generic over any actor type that handles `Where`: the public bound is enough.
fn incarnations<A: ActorType + Handles<Where>>(refs: &[ActorRef<A>]) -> Vec<u32> {
    refs.iter()
        .map(|r| r.ask_timeout(Where, LONG).unwrap().1)
        .collect()
}

#[test]
fn code_generic_over_refs_needs_only_the_public_actor_type_bound() {
    let a: ActorRef<Flaky> = procession::spawn(flaky("a")).unwrap();
    assert_eq!(incarnations(std::slice::from_ref(&a)), [0]);
    stop_and_join(&a);
}

// ---------------------------------------------------------------------------------------
// 8. Exit codes.

fn exit_of(code: i32) -> Exit {
    let a: ActorRef<Flaky> = procession::spawn(flaky("x")).unwrap();
    a.tell(ExitWith(code)).unwrap();
    a.join_timeout(LONG).unwrap()
}

#[test]
fn process_exit_0_in_an_actor_is_a_clean_exit_with_code_0() {
    let exit = exit_of(0);
    assert_eq!(exit, Exit::Normal);
    assert!(exit.is_clean());
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn process_exit_n_in_an_actor_is_exited_n_with_code_n() {
    let exit = exit_of(3);
    assert_eq!(exit, Exit::Exited(3));
    assert!(!exit.is_clean());
    assert_eq!(exit.code(), Some(3));
}

#[test]
fn exit_codes_follow_pythons_mapping_for_signals_and_panics() {
    let killed: ActorRef<Flaky> = procession::spawn(flaky("k")).unwrap();
    killed.kill().unwrap();
    assert_eq!(killed.join_timeout(LONG).unwrap().code(), Some(-9));
    let panicked: ActorRef<Flaky> = procession::spawn(flaky("p")).unwrap();
    panicked.tell(Crash("boom".into())).unwrap();
    assert_eq!(panicked.join_timeout(LONG).unwrap().code(), Some(1));
}

// ---------------------------------------------------------------------------------------
// 15. ActorDied names the process that died.

#[test]
fn actor_died_names_the_killed_process_not_its_replacement() {
    let log = collector();
    let args = FlakyArgs {
        log: Some(log.0.clone()),
        ..flaky("w")
    };
    let sup = start(
        Supervisor::new(Strategy::OneForOne)
            .intensity(5, Duration::from_secs(60))
            .child(worker("w", args)),
    );
    let w = flaky_ref(&sup, "w");
    let (old, _) = w.ask_timeout(Where, LONG).unwrap();
    let asker = {
        let w = w.clone();
        std::thread::spawn(move || w.ask_timeout(Hang, LONG))
    };
    // Kill it once it is inside the handler of `Hang` (the ask is in flight).
    wait_until("the ask in flight", || {
        events(&log)
            .iter()
            .any(|e| matches!(e, Event::Got { n: 7, .. }))
            .then_some(())
    });
    w.kill().unwrap();
    match asker.join().unwrap() {
        Err(Error::ActorDied { pid, exit, .. }) => {
            assert_eq!(pid, old, "the error names the pid that died");
            assert_eq!(exit, Some(Exit::Signaled(9)));
        }
        other => panic!("expected ActorDied, got {other:?}"),
    }
    assert_ne!(wait_restarted(&sup, "w", old), old);
}
