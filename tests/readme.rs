//! What a new user's own crate sees: the README's first snippet, pasted into a fresh
//! crate that depends on procession (by path, this checkout) and serde only, as the
//! README's "Install" section says, builds offline and runs; and the compile errors of
//! the two commonest mistakes read as what they are.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The first ```rust block of README.md.
fn first_snippet(readme: &str) -> String {
    let start = readme.find("```rust\n").expect("a rust block in README.md") + "```rust\n".len();
    let len = readme[start..].find("\n```").expect("the block ends");
    readme[start..start + len].to_string()
}

/// Removes the directory when the test ends, however it ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cargo <command>` offline in a fresh crate named `name` whose `main.rs` is
/// `main_rs`, with procession (this checkout) and serde as its only dependencies.
fn in_fresh_crate(name: &str, main_rs: &str, command: &str) -> Output {
    let dir =
        TempDir(std::env::temp_dir().join(format!("procession-{name}-{}", std::process::id())));
    std::fs::create_dir_all(dir.0.join("src")).unwrap();
    std::fs::write(
        dir.0.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nprocession = {{ path = {:?} }}\n\
             serde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
            repo().display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(dir.0.join("src/main.rs"), main_rs).unwrap();
    // This workspace's lock file, so the build resolves offline to the versions already
    // fetched; a target directory of its own (the one running this test is locked), kept
    // between runs and shared by these tests (cargo takes turns on it).
    std::fs::copy(repo().join("Cargo.lock"), dir.0.join("Cargo.lock")).unwrap();
    // Bounded like every process a test starts: coreutils' timeout ends a cargo that
    // hangs (15 min covers a cold build on a loaded 2-core machine).
    Command::new("timeout")
        .args([
            "--kill-after=10",
            "900",
            env!("CARGO"),
            command,
            "--quiet",
            "--offline",
        ])
        .current_dir(&dir.0)
        .env(
            "CARGO_TARGET_DIR",
            repo().join("target").join("fresh-crate"),
        )
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("PROCESSION_START_METHOD")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap()
}

#[test]
fn the_readme_snippet_builds_and_runs_in_a_fresh_crate_with_procession_and_serde() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let out = in_fresh_crate("readme-snippet", &first_snippet(&readme), "run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the snippet failed:\n{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "stopped on request"
    );
}

/// An actor with a single handler is sent another message; another lists a message it
/// has no handler for; an async actor is declared without the `tokio` feature.
const MISTAKES: &str = r#"
use procession::prelude::*;

#[derive(Serialize, Deserialize, Message)]
struct Ping;

#[derive(Serialize, Deserialize, Message)]
struct Other;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Ping))]
struct One;

impl Handler<Ping> for One {
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Ping, Other))]
struct Forgot;

impl Handler<Ping> for Forgot {
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

// An async actor in a crate that did not enable procession's `tokio` feature.
#[derive(Serialize, Deserialize, Actor)]
#[actor(async, handles(Ping))]
struct Eager;

impl AsyncHandler<Ping> for Eager {
    async fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

fn main() {
    let one = One.spawn().unwrap();
    one.tell(Other).unwrap();
}
"#;

#[test]
fn the_commonest_mistakes_fail_to_compile_with_errors_that_name_them() {
    let out = in_fresh_crate("mistakes", MISTAKES, "build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it compiled:\n{stderr}");
    assert!(
        stderr.contains("actor `One` does not handle message `Other`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("actor `Forgot` has no handler for message `Other`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`#[actor(async)]` needs procession's `tokio` feature"),
        "{stderr}"
    );
    for internal in [
        "ManagerServer",
        "SupervisorActor",
        "NotAMessage",
        "mismatched types",
    ] {
        assert!(!stderr.contains(internal), "{internal} in:\n{stderr}");
    }
}
