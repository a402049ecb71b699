//! The pool and manager examples work: `seed_pool` (Python's `Pool(5).map(f, [1, 2, 3])`,
//! `imap_unordered`, `apply_async`, and a worker crash that gives an error, not a hang)
//! and `seed_manager` (Python's Manager example: 10 processes update a shared dict and
//! list, which ends with 15 elements). Each is built with the profile of this test
//! binary, run as a subprocess with a private `PROCESSION_SHM_DIR` and a timeout, and its
//! output is checked; neither leaves a runtime directory behind.
//!
//! `cargo test --test examples_pool_manager` does not build the examples (only a plain
//! `cargo test` does), so the first test to need them runs `cargo build --example ...`
//! with the same profile; when they are fresh that is a no-op.

use std::collections::HashSet;

mod example_runner;
use example_runner::*;

const EXAMPLES: [&str; 2] = ["seed_pool", "seed_manager"];

/// `"[1, 2, 3]"` -> `[1, 2, 3]`.
fn parse_list(s: &str) -> Vec<u64> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a list: {s:?}"));
    inner
        .split(", ")
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap_or_else(|_| panic!("not a number: {x:?}")))
        .collect()
}

#[test]
fn seed_pool_maps_f_over_1_2_3_like_python() {
    let run = run_example("seed_pool", &[]);
    assert_eq!(run.lines().first(), Some(&"[1, 4, 9]"), "{}", run.stdout);
}

#[test]
fn seed_pool_imap_unordered_and_apply_async_give_every_result() {
    let run = run_example("seed_pool", &[]);
    let unordered = parse_list(run.after("imap_unordered(f, 1..=10), sorted: "));
    assert_eq!(unordered, (1..=10).map(|x| x * x).collect::<Vec<u64>>());
    run.assert_line("apply_async(f, (10,)).get() -> 100");
}

#[test]
fn seed_pool_worker_crash_gives_an_error_and_the_pool_keeps_working() {
    let run = run_example("seed_pool", &[]);
    let error = run.after("worker crash -> error: ");
    assert!(
        error.contains("died") && error.contains("SIGABRT"),
        "the error says how the worker died: {error:?}"
    );
    run.assert_line("workers replaced: 1");
    run.assert_line("the pool still works: [16, 25, 36]");
    assert_eq!(
        run.lines().last(),
        Some(&"pool closed and joined"),
        "{}",
        run.stdout
    );
}

#[test]
fn seed_manager_ten_processes_fill_the_dict_and_the_list_reaches_15() {
    let run = run_example("seed_manager", &[]);
    run.assert_line("10 workers in 10 processes joined");
    run.assert_line("{0: 0, 1: 1, 2: 4, 3: 9, 4: 16, 5: 25, 6: 36, 7: 49, 8: 64, 9: 81}");
    let list_line = run
        .lines()
        .into_iter()
        .find(|l| l.starts_with('['))
        .unwrap_or_else(|| panic!("no list line:\n{}", run.stdout));
    let list = parse_list(list_line);
    assert_eq!(list.len(), 15, "{}", run.stdout);
    assert_eq!(
        list[..5],
        [0, 1, 2, 3, 4],
        "the initial elements come first"
    );
    let appended: HashSet<u64> = list[5..].iter().copied().collect();
    assert_eq!(
        appended,
        (10..20).collect::<HashSet<u64>>(),
        "each worker appended once"
    );
    run.assert_line("list length: 15");
    assert_eq!(
        run.lines().last(),
        Some(&"manager shut down"),
        "{}",
        run.stdout
    );
}

#[test]
fn seed_manager_server_runs_in_another_process() {
    let run = run_example("seed_manager", &[]);
    let pid_after = |prefix: &str| -> u32 { run.after(prefix).trim().parse().expect("a pid") };
    let main = pid_after("main: pid ");
    let server = pid_after("manager server: pid ");
    assert_ne!(server, 0);
    assert_ne!(server, main, "{}", run.stdout);
}

#[test]
fn pool_and_manager_examples_leave_no_runtime_directory_behind() {
    for name in EXAMPLES {
        let run = run_example(name, &[]);
        assert_eq!(
            run.shm.leftovers(),
            Vec::<String>::new(),
            "{name} left files in its PROCESSION_SHM_DIR; stderr:\n{}",
            run.stderr
        );
    }
}
