//! [`Limits`]: what the kernel enforces on one actor's process.

use serde::{Deserialize, Serialize};

pub use nix::sys::resource::Resource;

/// Limits the kernel enforces on one actor's process, set with
/// [`SpawnOptions::limits`](crate::SpawnOptions::limits) (or its shorthands) and
/// [`ChildSpec::limits`](crate::supervisor::ChildSpec::limits). The actor's process
/// applies them to itself before `create`, at every start and restart. A limit that
/// cannot be applied (a CPU the machine lacks, a hard limit above the current one
/// without the privilege, a nice value below the current one without `CAP_SYS_NICE`)
/// fails the spawn with [`Error::StartFailed`](crate::Error::StartFailed), whose exit
/// says which limit and why: never silently.
///
/// **Memory.** [`memory_limit`](Limits::memory_limit) is `RLIMIT_AS`: the process's
/// address space. An allocation past it fails, and Rust aborts the process on a failed
/// allocation; that abort is reported as [`Exit::OutOfMemory`](crate::Exit::OutOfMemory)
/// (told from other aborts by the address space being within an eighth of the limit,
/// or 8 MiB, when it happened), and a supervisor restarts the actor like any crash. The
/// address space counts what is reserved, not only what is touched: leave room for the
/// program's code, its thread stacks and the mailbox mappings (tens of MiB). A cgroup v2
/// memory group would bound resident memory instead; it is not used yet.
///
/// ```no_run
/// use procession::{Limits, SpawnOptions};
/// # use procession::prelude::*;
/// # #[derive(Serialize, Deserialize, Actor)] #[actor(handles())] struct Worker;
/// let opts = SpawnOptions::new().limits(
///     Limits::new()
///         .memory_limit(512 << 20)
///         .cpu_affinity([0])
///         .nice(10)
///         .rlimit(procession::Resource::RLIMIT_NOFILE, 256, 256),
/// );
/// let w: ActorRef<Worker> = procession::spawn_with(Worker, opts)?;
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub(crate) memory: Option<u64>,
    pub(crate) cpus: Option<Vec<usize>>,
    pub(crate) nice: Option<i32>,
    /// `(resource as i32, soft, hard)`.
    pub(crate) rlimits: Vec<(i32, u64, u64)>,
}

impl Limits {
    /// No limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most address space the process may have, in bytes (`RLIMIT_AS`; see above).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// The CPUs the process may run on (`sched_setaffinity`), numbered from 0.
    pub fn cpu_affinity(mut self, cpus: impl IntoIterator<Item = usize>) -> Self {
        self.cpus = Some(cpus.into_iter().collect());
        self
    }

    /// The process's nice value (`setpriority`): 19 is the least favoured, -20 the most.
    pub fn nice(mut self, n: i32) -> Self {
        self.nice = Some(n);
        self
    }

    /// Any rlimit (`setrlimit`), soft and hard. Set after
    /// [`memory_limit`](Limits::memory_limit), so an `RLIMIT_AS` here wins.
    pub fn rlimit(mut self, resource: Resource, soft: u64, hard: u64) -> Self {
        self.rlimits.push((resource as i32, soft, hard));
        self
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// Applies them to the calling process; says which one failed.
    pub(crate) fn apply(&self) -> Result<(), String> {
        use crate::os::limits as os;
        if let Some(bytes) = self.memory {
            os::set_rlimit(Resource::RLIMIT_AS, bytes, bytes)
                .map_err(|e| format!("memory_limit({bytes}): {e}"))?;
        }
        for &(raw, soft, hard) in &self.rlimits {
            let res = os::resource(raw).ok_or_else(|| format!("rlimit: no resource {raw}"))?;
            os::set_rlimit(res, soft, hard)
                .map_err(|e| format!("rlimit({res:?}, {soft}, {hard}): {e}"))?;
        }
        if let Some(cpus) = &self.cpus {
            os::set_affinity(cpus).map_err(|e| format!("cpu_affinity({cpus:?}): {e}"))?;
        }
        if let Some(n) = self.nice {
            os::set_nice(n).map_err(|e| format!("nice({n}): {e}"))?;
        }
        Ok(())
    }
}
