//! The two-host example runs, and says what it should.

use std::process::{Command, Stdio};

#[test]
fn two_hosts_example_plays_five_rounds_and_the_restarted_worker_answers() {
    // `cargo test` builds the examples beside the test binaries' directory.
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("two_hosts");
    let out = Command::new(&bin)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let balls: Vec<&str> = text.lines().filter(|l| l.contains(": ball ")).collect();
    assert_eq!(
        balls,
        [
            "b: ball 1",
            "a: ball 2",
            "b: ball 3",
            "a: ball 4",
            "b: ball 5"
        ],
        "{text}"
    );
    assert!(text.contains("a: 7 squared on b is 49"), "{text}");
    assert!(text.contains("a: the worker died"), "{text}");
    assert!(
        text.contains("a: 8 squared on b is 64 (after the restart)"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("all over"), "{text}");
}
