//! Per-actor limits enforced by the kernel (issue 10, item 2): CPU affinity, nice and any
//! rlimit are in force in the actor's process; a limit the machine cannot apply fails the
//! spawn and says which; an actor that allocates past its memory limit exits
//! `Exit::OutOfMemory`, and under a supervisor it is restarted while its siblings keep
//! their pids.

mod common;
mod sup_common;

use common::LONG;
use procession::prelude::*;
use procession::supervisor::{ChildSpec, Strategy, Supervisor};
use procession::{Error, Limits, Resource, SpawnOptions};

/// Ask: what the kernel says of this process: (CPUs it may run on, nice value, soft and
/// hard RLIMIT_NOFILE, address space in bytes).
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (Vec<usize>, i32, (u64, u64), u64))]
struct Report;

/// Ask: open files until none is left, then spawn an actor; the spawn's error (its limit
/// and its text), with the files closed again before the reply.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(Option<procession::SystemLimit>, String), String>)]
struct SpawnWithoutFiles;

/// Tell: allocate (and touch) 4 MiB blocks until something stops it.
#[derive(Serialize, Deserialize, Message)]
struct Eat;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Report, Eat, SpawnWithoutFiles))]
struct Tenant;

impl Handler<SpawnWithoutFiles> for Tenant {
    fn handle(
        &mut self,
        _: SpawnWithoutFiles,
        cx: &mut Context<Self>,
    ) -> Result<(Option<procession::SystemLimit>, String), String> {
        let mut held = Vec::new();
        let err = loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => held.push(f),
                Err(e) => break e,
            }
        };
        if err.raw_os_error() != Some(libc::EMFILE) {
            return Err(format!("opening files stopped with {err}"));
        }
        let spawned = cx.spawn::<Tenant>(Tenant);
        drop(held);
        match spawned {
            Ok(t) => {
                let _ = t.stop();
                Err("the spawn worked without a free fd".into())
            }
            Err(e) => Ok((e.limit().cloned(), e.to_string())),
        }
    }
}

fn address_space() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    pages * 4096
}

impl Handler<Report> for Tenant {
    fn handle(&mut self, _: Report, _cx: &mut Context<Self>) -> (Vec<usize>, i32, (u64, u64), u64) {
        let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
        let cpus = (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect();
        // Field 19 of /proc/self/stat, the 17th after the command's closing parenthesis.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let nice = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .nth(16)
            .unwrap()
            .parse()
            .unwrap();
        let nofile = nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        (cpus, nice, nofile, address_space())
    }
}

impl Handler<Eat> for Tenant {
    fn handle(&mut self, _: Eat, _cx: &mut Context<Self>) {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 4 << 20]);
        }
    }
}

/// A memory limit 128 MiB above what an actor's process reserves to begin with.
fn roomy_limit() -> u64 {
    let probe: ActorRef<Tenant> = procession::spawn(Tenant).unwrap();
    let (_, _, _, base) = probe.ask_timeout(Report, LONG).unwrap();
    common::stop_and_join(&probe);
    base + (128 << 20)
}

#[test]
fn an_actor_runs_with_the_cpus_nice_value_and_rlimits_it_was_given() {
    let opts =
        SpawnOptions::new()
            .cpu_affinity([0])
            .nice(7)
            .rlimit(Resource::RLIMIT_NOFILE, 100, 200);
    let tenant: ActorRef<Tenant> = procession::spawn_with(Tenant, opts).unwrap();
    let (cpus, nice, nofile, _) = tenant.ask_timeout(Report, LONG).unwrap();
    assert_eq!(cpus, [0]);
    assert_eq!(nice, 7);
    assert_eq!(nofile, (100, 200));
    common::stop_and_join(&tenant);
}

#[test]
fn a_spawn_without_a_free_file_descriptor_fails_naming_rlimit_nofile_and_its_value() {
    let opts = SpawnOptions::new().rlimit(Resource::RLIMIT_NOFILE, 64, 64);
    let tenant: ActorRef<Tenant> = procession::spawn_with(Tenant, opts).unwrap();
    let (limit, text) = tenant
        .ask_timeout(SpawnWithoutFiles, LONG)
        .unwrap()
        .unwrap();
    assert_eq!(
        limit,
        Some(procession::SystemLimit::OpenFiles {
            soft: Some(64),
            hard: Some(64),
            system_wide: false
        }),
        "{text}"
    );
    assert!(
        text.contains("RLIMIT_NOFILE") && text.contains("64"),
        "{text}"
    );
    common::stop_and_join(&tenant);
}

#[test]
fn an_actor_without_limits_keeps_the_defaults() {
    let tenant: ActorRef<Tenant> = procession::spawn(Tenant).unwrap();
    let (_, nice, nofile, _) = tenant.ask_timeout(Report, LONG).unwrap();
    assert_eq!(nice, 0);
    assert_eq!(
        nofile,
        nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE).unwrap()
    );
    common::stop_and_join(&tenant);
}

#[test]
fn a_limit_the_machine_cannot_apply_fails_the_spawn_and_names_the_limit() {
    let opts = SpawnOptions::new().limits(Limits::new().cpu_affinity([100_000]));
    match procession::spawn_with::<Tenant>(Tenant, opts) {
        Err(Error::StartFailed {
            exit: Exit::Failed(why),
            ..
        }) => {
            assert!(why.contains("cpu_affinity([100000])"), "{why}");
        }
        other => panic!("expected StartFailed naming the limit, got {other:?}"),
    }
}

#[test]
fn an_actor_that_allocates_past_its_memory_limit_exits_out_of_memory() {
    let limit = roomy_limit();
    let hog: ActorRef<Tenant> =
        procession::spawn_with(Tenant, SpawnOptions::new().memory_limit(limit)).unwrap();
    hog.tell(Eat).unwrap();
    match hog.join_timeout(LONG).unwrap() {
        Exit::OutOfMemory { limit: l } => assert_eq!(l, limit >> 20 << 20),
        other => panic!("expected OutOfMemory, got {other}"),
    }
}

#[test]
fn a_supervised_child_out_of_memory_is_restarted_and_its_siblings_keep_their_pids() {
    let limit = roomy_limit();
    let sup = sup_common::start(
        Supervisor::new(Strategy::OneForOne)
            .child(ChildSpec::worker::<Tenant>("left", Tenant))
            .child(
                ChildSpec::worker::<Tenant>("hog", Tenant)
                    .limits(Limits::new().memory_limit(limit)),
            )
            .child(ChildSpec::worker::<Tenant>("right", Tenant)),
    );
    let left = sup_common::pid_of(&sup, "left");
    let right = sup_common::pid_of(&sup, "right");
    let hog = sup_common::pid_of(&sup, "hog");
    sup.child::<Tenant>("hog").unwrap().tell(Eat).unwrap();
    let new_hog = sup_common::wait_restarted(&sup, "hog", hog);
    assert_ne!(new_hog, hog);
    let info = sup_common::info(&sup, "hog");
    assert!(
        matches!(info.last_exit, Some(Exit::OutOfMemory { .. })),
        "{:?}",
        info.last_exit
    );
    assert_eq!(info.restarts, 1);
    assert_eq!(sup_common::pid_of(&sup, "left"), left);
    assert_eq!(sup_common::pid_of(&sup, "right"), right);
    // The restarted incarnation has the same limit.
    let (_, _, _, space) = sup
        .child::<Tenant>("hog")
        .unwrap()
        .ask_timeout(Report, LONG)
        .unwrap();
    assert!(space < limit);
}
