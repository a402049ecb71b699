//! The load-time hook. A procession zygote or `spawn`-method actor is this same binary,
//! re-executed with `PROCESSION_BOOT` set; the hook below runs before `main` and before any
//! test harness, sees the variable, and turns the process into what it was started as. It
//! never returns in that case. In an ordinary run it returns at once.

/// Registered in `.init_array`, so the dynamic loader calls it before `main`.
#[ctor::ctor]
fn procession_on_load() {
    crate::process::bootstrap::on_load();
}

/// Referencing this from the spawn path forces the linker to keep the object file that
/// holds the hook: a binary that can spawn is a binary that can boot a child.
pub fn keep_hook_linked() {
    std::hint::black_box(procession_on_load as extern "C" fn());
}
