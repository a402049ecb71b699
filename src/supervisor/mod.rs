//! Supervision: supervisors, child specs, restart rules — and named actors.

mod registry;

pub use registry::{register, unregister, whereis};
