//! The system limits a user runs into first — open files, processes, the tmpfs that
//! holds the mailboxes — told apart from other OS errors, with their values and how to
//! raise them ([`SystemLimit`], inside [`Error::Limit`](crate::Error::Limit)).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A limit of the system or of this process that an operation ran into. Its `Display`
/// names the limit, gives its value as read when the error was made, and says how to
/// raise it.
///
/// ```
/// use procession::SystemLimit;
/// let l = SystemLimit::OpenFiles { soft: Some(256), hard: Some(4096), system_wide: false };
/// assert!(l.to_string().contains("RLIMIT_NOFILE"));
/// assert!(l.to_string().contains("ulimit -n"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SystemLimit {
    /// No file descriptor was free: this process's `RLIMIT_NOFILE` (`EMFILE`), or the
    /// system's file table, `fs.file-max` (`ENFILE`). Every mailbox a process uses
    /// holds one while it is mapped.
    OpenFiles {
        /// `RLIMIT_NOFILE`, soft.
        soft: Option<u64>,
        /// `RLIMIT_NOFILE`, hard.
        hard: Option<u64>,
        /// `ENFILE`: the whole system's table, not this process's limit.
        system_wide: bool,
    },
    /// A new process could not be made (`fork` failed with `EAGAIN`): `RLIMIT_NPROC`
    /// (not enforced for root), `kernel.pid_max`, `kernel.threads-max`, or the cgroup's
    /// `pids.max`. Every actor is a process.
    Processes {
        /// `RLIMIT_NPROC`, soft.
        nproc: Option<u64>,
        /// `kernel.pid_max`.
        pid_max: Option<u64>,
        /// `kernel.threads-max`.
        threads_max: Option<u64>,
        /// This process's cgroup's `pids.max` (`None`: unlimited or unknown).
        cgroup_pids_max: Option<u64>,
    },
    /// The filesystem that holds the mailboxes (a tmpfs, `/dev/shm` by default) is full
    /// (`ENOSPC`). Each mailbox's ring takes room there as it is used.
    SharedMemory {
        /// The runtime directory's filesystem.
        path: PathBuf,
        /// Its size in bytes.
        size: Option<u64>,
        /// Bytes free in it.
        free: Option<u64>,
    },
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "unknown".into(), |v| v.to_string())
}

impl std::fmt::Display for SystemLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SystemLimit::OpenFiles {
                system_wide: true, ..
            } => write!(
                f,
                "the system's file table is full (ENFILE, fs.file-max); raise it with `sysctl fs.file-max=...`, or close files"
            ),
            SystemLimit::OpenFiles { soft, hard, .. } => write!(
                f,
                "this process has as many files open as RLIMIT_NOFILE allows (soft {}, hard {}); raise it with `ulimit -n`, or Limits::rlimit(RLIMIT_NOFILE, ...) for an actor",
                show(*soft),
                show(*hard)
            ),
            SystemLimit::Processes {
                nproc,
                pid_max,
                threads_max,
                cgroup_pids_max,
            } => write!(
                f,
                "no new process could be made (EAGAIN): RLIMIT_NPROC {}, kernel.pid_max {}, kernel.threads-max {}, cgroup pids.max {}; raise the one reached (`ulimit -u`, `sysctl kernel.pid_max=...`, the cgroup's pids.max), or run fewer actors",
                show(*nproc),
                show(*pid_max),
                show(*threads_max),
                cgroup_pids_max.map_or_else(|| "max".into(), |v| v.to_string())
            ),
            SystemLimit::SharedMemory { path, size, free } => write!(
                f,
                "the filesystem of {} is full (ENOSPC; size {} bytes, free {}); make it larger (`mount -o remount,size=... /dev/shm`), stop actors, or give mailboxes a smaller capacity",
                path.display(),
                show(*size),
                show(*free)
            ),
        }
    }
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// This process's cgroup (v2) `pids.max`, if it has one that is not `max`.
fn cgroup_pids_max() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    read_u64(&format!("/sys/fs/cgroup{}/pids.max", rel.trim()))
}

fn rlimit(res: nix::sys::resource::Resource) -> (Option<u64>, Option<u64>) {
    let inf = |v: u64| (v != nix::sys::resource::RLIM_INFINITY).then_some(v);
    nix::sys::resource::getrlimit(res).map_or((None, None), |(s, h)| (inf(s), inf(h)))
}

/// The limit behind an OS error, if it is one of those a user runs into first. `fork`:
/// the error came from making a process (there `EAGAIN` means a process limit).
/// `dir`: the directory the operation wrote in, for `ENOSPC`.
pub(crate) fn classify(
    err: &std::io::Error,
    fork: bool,
    dir: Option<&Path>,
) -> Option<SystemLimit> {
    use nix::sys::resource::Resource;
    match err.raw_os_error()? {
        libc::EMFILE | libc::ENFILE => {
            let (soft, hard) = rlimit(Resource::RLIMIT_NOFILE);
            Some(SystemLimit::OpenFiles {
                soft,
                hard,
                system_wide: err.raw_os_error() == Some(libc::ENFILE),
            })
        }
        libc::EAGAIN if fork => Some(SystemLimit::Processes {
            nproc: rlimit(Resource::RLIMIT_NPROC).0,
            pid_max: read_u64("/proc/sys/kernel/pid_max"),
            threads_max: read_u64("/proc/sys/kernel/threads-max"),
            cgroup_pids_max: cgroup_pids_max(),
        }),
        libc::ENOSPC => {
            let path = dir
                .map(Path::to_path_buf)
                .or_else(|| crate::process::runtime::current().map(|rt| rt.dir().to_path_buf()))
                .unwrap_or_else(|| PathBuf::from("/dev/shm"));
            let stat = nix::sys::statvfs::statvfs(&path).ok();
            let frag = |s: &nix::sys::statvfs::Statvfs| s.fragment_size();
            Some(SystemLimit::SharedMemory {
                size: stat.as_ref().map(|s| s.blocks() * frag(s)),
                free: stat.as_ref().map(|s| s.blocks_available() * frag(s)),
                path,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emfile_is_the_open_files_limit_with_its_values() {
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        match classify(&e, false, None) {
            Some(SystemLimit::OpenFiles {
                soft,
                system_wide: false,
                ..
            }) => assert_eq!(soft, rlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn eagain_is_a_process_limit_only_from_fork() {
        let e = std::io::Error::from_raw_os_error(libc::EAGAIN);
        assert_eq!(classify(&e, false, None), None);
        match classify(&e, true, None) {
            Some(l @ SystemLimit::Processes { pid_max, .. }) => {
                assert_eq!(pid_max, read_u64("/proc/sys/kernel/pid_max"));
                assert!(l.to_string().contains("kernel.pid_max"), "{l}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn enospc_is_the_shared_memory_filesystem_with_its_size() {
        let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
        match classify(&e, false, Some(Path::new("/dev/shm"))) {
            Some(SystemLimit::SharedMemory { path, size, free }) => {
                assert_eq!(path, Path::new("/dev/shm"));
                assert!(size.is_some_and(|s| s > 0) && free.is_some());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_errors_are_no_limit() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(classify(&e, true, None), None);
    }
}
