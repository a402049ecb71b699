//! The only place with `unsafe` syscalls. Each item is a small safe wrapper that the
//! upper layers use; every `unsafe` block carries a `// SAFETY:` comment.
//!
//! - [`futex`]: wait/wake on a 32-bit word in memory shared between processes;
//! - [`shm`]: a file in the runtime directory mapped `MAP_SHARED`;
//! - [`robust`]: a process-shared robust lock on one futex word (a dead owner is reported,
//!   not a deadlock; any bit pattern is handled);
//! - [`pidfd`]: process handles, the only way procession signals a process it did not fork;
//! - [`proc`]: fork, exit, parent-death signal, fd hygiene, thread count;
//! - [`boot`]: the load-time hook that lets a re-executed binary become a procession
//!   process before `main` (or the test harness) runs.

pub mod boot;
pub mod fdpass;
pub mod futex;
pub mod limits;
pub mod pidfd;
pub mod proc;
pub mod robust;
pub mod shm;
