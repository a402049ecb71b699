//! The errors of supervisor operations ([`SupervisorError`]) and of child specs
//! ([`SpecError`]), as OTP's `supervisor` returns them, typed so a caller can match.

use serde::{Deserialize, Serialize};

use super::spec::Strategy;

/// Why a supervisor refused or failed an operation (`start_child`, `restart_child`,
/// `terminate_child`, `delete_child`, `which_child`, `get_childspec`). It arrives inside
/// [`Error::Supervisor`](crate::Error::Supervisor).
///
/// ```
/// use procession::supervisor::SupervisorError;
/// let e = SupervisorError::AlreadyStarted { id: "db".into(), pid: 42 };
/// assert_eq!(e.to_string(), "child \"db\" is already started (pid 42)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// A child with this id runs already (OTP's `{already_started, Pid}`).
    #[error("child {id:?} is already started (pid {pid})")]
    AlreadyStarted {
        /// The id asked for.
        id: String,
        /// The pid of the child that has it.
        pid: u32,
    },
    /// A child with this id exists but does not run (OTP's `already_present`): restart
    /// or delete it.
    #[error(
        "a child with id {id:?} is already present (not running): restart_child or delete_child it"
    )]
    AlreadyPresent {
        /// The id asked for.
        id: String,
    },
    /// The child runs, so it cannot be restarted or deleted (OTP's `running`).
    #[error("child {id:?} is running: terminate it first")]
    Running {
        /// The child's id.
        id: String,
    },
    /// The child waits for a restart (OTP's `restarting`).
    #[error("child {id:?} is restarting")]
    Restarting {
        /// The child's id.
        id: String,
    },
    /// No child has this id (OTP's `not_found`).
    #[error("no child {id:?}")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The child's `create` failed (or its process could not start); no spec is kept for
    /// a new child.
    #[error("child {id:?} failed to start: {reason}")]
    StartFailed {
        /// The child's id.
        id: String,
        /// What went wrong.
        reason: String,
    },
    /// A Dynamic child's `create` returned [`Ignore`](crate::Ignore); it is not kept.
    #[error("the child ignored its start (create returned Ignore)")]
    Ignored,
    /// The spec is invalid.
    #[error("invalid child spec: {0}")]
    Invalid(SpecError),
    /// The operation does not apply to this strategy (OTP's `simple_one_for_one` error).
    #[error("{op} is not supported by a {strategy:?} supervisor")]
    WrongStrategy {
        /// What was attempted.
        op: String,
        /// The supervisor's strategy.
        strategy: Strategy,
    },
}

/// A supervisor or child spec that OTP's `check_childspecs` or `init` would reject. The
/// message names the field; [`SpecError::field`] gives it alone.
///
/// ```
/// use std::time::Duration;
/// use procession::supervisor::{SpecError, Strategy, Supervisor};
/// let bad = Supervisor::new(Strategy::OneForOne).intensity(3, Duration::ZERO);
/// assert_eq!(bad.check(), Err(SpecError::ZeroPeriod));
/// assert_eq!(SpecError::ZeroPeriod.field(), "period");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// `period` is zero (OTP wants a positive integer).
    #[error("period: must be greater than zero")]
    ZeroPeriod,
    /// A `Permanent` child is `significant` (it never exits for good).
    #[error("child {id:?}: significant: a Permanent child cannot be significant; make it Transient or Temporary")]
    SignificantPermanent {
        /// The child's id.
        id: String,
    },
    /// A `significant` child under `AutoShutdown::Never` (it would mean nothing).
    #[error("child {id:?}: significant: needs auto_shutdown AnySignificant or AllSignificant, not Never")]
    SignificantWithoutAutoShutdown {
        /// The child's id.
        id: String,
    },
    /// A Dynamic supervisor with an auto-shutdown other than `Never`.
    #[error("auto_shutdown: a Dynamic supervisor must use Never")]
    DynamicAutoShutdown,
    /// Two children have the same id.
    #[error("id: {id:?} is used by two children")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// A Dynamic supervisor without a template.
    #[error("template: a Dynamic supervisor needs one")]
    MissingTemplate,
    /// A Dynamic supervisor with static children.
    #[error("children: a Dynamic supervisor has none (it starts them from its template)")]
    DynamicWithChildren,
    /// A template on a supervisor that is not Dynamic (it would be ignored).
    #[error("template: only a Dynamic supervisor has one")]
    TemplateWithoutDynamic,
    /// `Shutdown::Timeout(0)` (OTP wants a positive timeout; use `BrutalKill`).
    #[error("child {id:?}: shutdown: Timeout(0) is not a timeout; use BrutalKill")]
    ZeroShutdown {
        /// The child's id.
        id: String,
    },
    /// A child placed on other hosts names an empty host, or the same host twice.
    #[error("child {id:?}: hosts: {reason}")]
    BadHosts {
        /// The child's id.
        id: String,
        /// What is wrong with the list.
        reason: String,
    },
    /// The child's arguments could not be encoded.
    #[error("child {id:?}: args: could not be encoded: {reason}")]
    Args {
        /// The child's id.
        id: String,
        /// The encoder's error.
        reason: String,
    },
}

impl SpecError {
    /// The name of the field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            SpecError::ZeroPeriod => "period",
            SpecError::SignificantPermanent { .. }
            | SpecError::SignificantWithoutAutoShutdown { .. } => "significant",
            SpecError::DynamicAutoShutdown => "auto_shutdown",
            SpecError::DuplicateId { .. } => "id",
            SpecError::MissingTemplate | SpecError::TemplateWithoutDynamic => "template",
            SpecError::DynamicWithChildren => "children",
            SpecError::ZeroShutdown { .. } => "shutdown",
            SpecError::Args { .. } => "args",
            SpecError::BadHosts { .. } => "hosts",
        }
    }
}
