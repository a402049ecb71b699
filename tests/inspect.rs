//! Looking at a runtime from outside (`procession::inspect`, what `procession-top` reads):
//! the runtime is listed by its root pid, its actors with their counters and their place
//! in the tree, read through read-only mappings; untrusted header bytes do not mislead.

mod common;
mod sup_common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::LONG;
use procession::inspect::{self, ActorState, ActorView, RuntimeInfo};
use procession::prelude::*;
use procession::supervisor::{ChildSpec, Strategy, Supervisor};
use sup_common::{probe, probe_ref, quiet, WhoAmI};

fn this_runtime() -> RuntimeInfo {
    inspect::runtimes()
        .into_iter()
        .find(|rt| rt.root_pid == std::process::id())
        .expect("this program's runtime is listed")
}

fn view(id: u64) -> ActorView {
    inspect::actors(&this_runtime())
        .unwrap()
        .into_iter()
        .find(|a| a.stats.id == id)
        .unwrap_or_else(|| panic!("actor {id:016x} is listed"))
}

#[test]
fn a_supervision_tree_is_listed_with_child_ids_parents_and_depths() {
    let inner = Supervisor::new(Strategy::OneForOne).child(probe("leaf", quiet("leaf")));
    let sup = sup_common::start(
        Supervisor::new(Strategy::OneForAll)
            .child(probe("first", quiet("first")))
            .child(ChildSpec::supervisor("inner", inner)),
    );
    let first = probe_ref(&sup, "first");
    let inner = sup
        .child::<procession::supervisor::SupervisorActor>("inner")
        .unwrap();
    let leaf = probe_ref(&inner, "leaf");
    leaf.ask_timeout(WhoAmI, LONG).unwrap();

    let rt = this_runtime();
    assert!(rt.is_alive());
    assert!(rt.program.is_some(), "{rt:?}");
    let actors = inspect::actors(&rt).unwrap();
    let order = inspect::tree_order(&actors);
    let at = |id: u64| {
        let (i, depth) = *order
            .iter()
            .find(|(i, _)| actors[*i].stats.id == id)
            .expect("listed in the tree order");
        (&actors[i], depth, order.iter().position(|(j, _)| *j == i))
    };
    let (top, top_depth, top_pos) = at(sup.id());
    let (f, f_depth, f_pos) = at(first.id());
    let (inn, inn_depth, _) = at(inner.id());
    let (l, l_depth, l_pos) = at(leaf.id());
    assert!(top.supervisor && inn.supervisor && !f.supervisor && !l.supervisor);
    assert_eq!((top.parent, top_depth, top.label.as_str()), (0, 0, ""));
    assert_eq!(
        (f.parent, f_depth, f.label.as_str()),
        (sup.id(), 1, "first")
    );
    assert_eq!(
        (inn.parent, inn_depth, inn.label.as_str()),
        (sup.id(), 1, "inner")
    );
    assert_eq!(
        (l.parent, l_depth, l.label.as_str()),
        (inner.id(), 2, "leaf")
    );
    assert!(
        top_pos < f_pos && f_pos < l_pos,
        "parents before children, siblings by id"
    );
    assert_eq!(l.state, ActorState::Running);
    assert_eq!(l.stats.asks_answered, 1);
    assert!(
        l.stats.rss_bytes.unwrap() > 0,
        "its pid is a process of this runtime"
    );
    assert_eq!(l.stats.pid, sup_common::pid_of(&inner, "leaf"));
}

#[test]
fn a_restart_shows_as_a_new_incarnation_with_the_last_exit() {
    let sup = sup_common::start(Supervisor::new(Strategy::OneForOne).child(probe("p", quiet("p"))));
    let p = probe_ref(&sup, "p");
    let old = sup_common::pid_of(&sup, "p");
    // The test started this process (through its supervisor) and may kill it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let new = sup_common::wait_restarted(&sup, "p", old);
    p.ask_timeout(WhoAmI, LONG).unwrap();
    let v = view(p.id());
    assert_eq!(
        (v.stats.restarts, v.stats.pid, v.state),
        (1, new, ActorState::Running)
    );
    assert_eq!(v.stats.last_exit, Some(Exit::Signaled(9)));
}

#[test]
fn queues_are_not_listed_as_actors() {
    let q = procession::queue::Queue::<u64>::bounded(4).unwrap();
    q.put(7).unwrap();
    let a: ActorRef<sup_common::Probe> =
        procession::spawn::<sup_common::Probe>(quiet("solo")).unwrap();
    a.ask_timeout(WhoAmI, LONG).unwrap();
    let actors = inspect::actors(&this_runtime()).unwrap();
    assert!(actors.iter().any(|v| v.stats.id == a.id()));
    assert!(
        actors
            .iter()
            .all(|v| v.stats.name != std::any::type_name::<u64>()),
        "{actors:?}"
    );
    common::stop_and_join(&a);
}

#[test]
fn a_foreign_pid_written_into_a_header_gets_no_usage_figures() {
    let a: ActorRef<sup_common::Probe> =
        procession::spawn::<sup_common::Probe>(quiet("target")).unwrap();
    a.ask_timeout(WhoAmI, LONG).unwrap();
    let path = procession::__private::mailbox_path(a.id()).unwrap();
    let at = procession::__private::header_field_offset("pid").unwrap() as u64;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut real = [0u8; 4];
    file.read_exact_at(&mut real, at).unwrap();
    assert!(view(a.id()).stats.rss_bytes.is_some());
    // This root process is alive and runs the same executable, but it is not an actor of
    // the runtime: an inspector must not report its memory as the actor's.
    for foreign in [std::process::id(), 1] {
        file.write_all_at(&foreign.to_le_bytes(), at).unwrap();
        let v = view(a.id());
        assert_eq!(v.stats.pid, foreign);
        assert_eq!(
            (v.stats.rss_bytes, v.stats.cpu_time),
            (None, None),
            "pid {foreign}"
        );
    }
    file.write_all_at(&real, at).unwrap();
    common::stop_and_join(&a);
}

#[test]
fn a_runtime_directory_that_is_gone_gives_a_not_found_error() {
    let gone = RuntimeInfo {
        dir: std::env::temp_dir().join("procession-1-00000000-surely-absent"),
        root_pid: 1,
        program: None,
    };
    assert!(!gone.is_alive());
    match inspect::actors(&gone) {
        Err(procession::Error::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
        }
        other => panic!("{other:?}"),
    }
}
