//! The toolbox examples work: each one ported from Python's `multiprocessing` docs
//! (`seed_lock`, `seed_pipe`, `seed_queue`, `seed_globals_not_shared`, `seed_value_array`,
//! `seed_daemon`, `seed_semaphore`) is built with the profile of this test binary, run as
//! a subprocess with a private `PROCESSION_SHM_DIR`, and its output is checked; no
//! example leaves a runtime directory behind.
//!
//! `cargo test --test examples_toolbox` does not build the examples (only a plain
//! `cargo test` does), so the first test to need them runs `cargo build --example ...`
//! with the same profile; when they are fresh that is a no-op. (The helpers are those of
//! `tests/examples.rs`.)

use std::collections::HashSet;

mod example_runner;
use example_runner::*;

const EXAMPLES: [&str; 7] = [
    "seed_lock",
    "seed_pipe",
    "seed_queue",
    "seed_globals_not_shared",
    "seed_value_array",
    "seed_daemon",
    "seed_semaphore",
];

/// The index of the first line equal to `line`.
fn position(run: &Run, line: &str) -> usize {
    run.lines()
        .iter()
        .position(|l| *l == line)
        .unwrap_or_else(|| panic!("missing line {line:?}:\n{}", run.stdout))
}

#[test]
fn seed_lock_prints_ten_greetings_whose_lines_the_lock_keeps_together() {
    let run = run_example("seed_lock", &[]);
    let lines = run.lines();
    let mut nums = HashSet::new();
    let mut pids = HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("hello world ") {
            let num = leading_number(rest);
            let pid = leading_number(rest.split_once("(pid ").expect("pid").1);
            assert!(
                nums.insert(num),
                "worker {num} greeted twice:\n{}",
                run.stdout
            );
            pids.insert(pid);
            assert_eq!(
                lines.get(i + 1).copied(),
                Some(format!("  goodbye from {num}").as_str()),
                "another worker printed while {num} held the lock:\n{}",
                run.stdout
            );
        }
    }
    assert_eq!(nums, (0..10).collect::<HashSet<u32>>(), "{}", run.stdout);
    assert_eq!(pids.len(), 10, "ten processes:\n{}", run.stdout);
    assert_eq!(
        lines.last(),
        Some(&"all 10 printed under the lock"),
        "{}",
        run.stdout
    );
}

#[test]
fn seed_pipe_carries_values_both_ways_and_the_child_sees_end_of_file() {
    let run = run_example("seed_pipe", &[]);
    let parent = run.number_after("parent (pid");
    let child = leading_number(
        run.stdout
            .split_once("child (pid ")
            .expect("the header names the child")
            .1,
    );
    assert_ne!(parent, child, "{}", run.stdout);
    let greeting = position(&run, r#"parent received (42, None, "hello")"#);
    let question = position(
        &run,
        &format!(r#"child (pid {child}) received (1, None, "how are you")"#),
    );
    let answer = position(
        &run,
        &format!(r#"parent received (2, Some({child}), "how are you, answered")"#),
    );
    let last = position(
        &run,
        &format!(r#"parent received (40, Some({child}), "what is twice 20, answered")"#),
    );
    let eof = position(
        &run,
        &format!("child (pid {child}) sees end of file: the parent closed its end"),
    );
    assert!(
        greeting < question && question < answer && answer < last && last < eof,
        "{}",
        run.stdout
    );
    position(&run, "child answered 2 questions");
    position(&run, "child exited: stopped on request");
}

#[test]
fn seed_queue_collects_one_item_from_each_of_ten_processes() {
    let run = run_example("seed_queue", &[]);
    let items: Vec<(u32, u32)> = run
        .lines()
        .iter()
        .filter_map(|l| l.strip_prefix(r#"got "hello" from worker "#))
        .map(|rest| {
            let (num, pid) = rest.split_once(" (pid ").expect("item line");
            (leading_number(num), leading_number(pid))
        })
        .collect();
    assert_eq!(items.len(), 10, "{}", run.stdout);
    let nums: HashSet<u32> = items.iter().map(|i| i.0).collect();
    let pids: HashSet<u32> = items.iter().map(|i| i.1).collect();
    assert_eq!(nums, (0..10).collect::<HashSet<u32>>(), "{}", run.stdout);
    assert_eq!(pids.len(), 10, "ten processes:\n{}", run.stdout);
    assert_eq!(
        run.lines().last(),
        Some(&"collected 10 items; queue empty: true"),
        "{}",
        run.stdout
    );
}

/// The lines `child <n> (pid <p>) changed its copy: <rest>`, as `(n, rest)`.
fn child_copies(run: &Run) -> Vec<(u32, String)> {
    run.lines()
        .iter()
        .filter_map(|l| l.strip_prefix("child "))
        .map(|rest| {
            let (_, values) = rest.split_once("changed its copy: ").expect("child line");
            (leading_number(rest), values.to_string())
        })
        .collect()
}

#[test]
fn seed_globals_not_shared_leaves_the_parents_copy_unchanged() {
    let run = run_example("seed_globals_not_shared", &[]);
    position(&run, "parent before: COUNTER = 1, ITEMS = [0]");
    position(&run, "parent after: COUNTER = 1, ITEMS = [0]");
    assert_eq!(
        child_copies(&run),
        [
            (1, "COUNTER = 100, ITEMS = [1]".to_string()),
            (2, "COUNTER = 100, ITEMS = [2]".to_string())
        ],
        "forkserver children start from the initial globals:\n{}",
        run.stdout
    );
}

#[test]
fn seed_globals_not_shared_under_fork_children_change_a_copy_of_the_parents_values() {
    let run = run_example(
        "seed_globals_not_shared",
        &[("PROCESSION_START_METHOD", "fork")],
    );
    assert_eq!(
        child_copies(&run),
        [
            (1, "COUNTER = 101, ITEMS = [0, 1]".to_string()),
            (2, "COUNTER = 101, ITEMS = [0, 2]".to_string())
        ],
        "{}",
        run.stdout
    );
    position(&run, "parent after: COUNTER = 1, ITEMS = [0]");
}

#[test]
fn seed_value_array_parent_sees_the_childs_writes() {
    let run = run_example("seed_value_array", &[]);
    let before = position(
        &run,
        "before: num = 0, arr = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
    );
    let num = position(&run, "num = 10.78");
    let arr = position(&run, "arr = [0, 1, 9999, 3, 4, 5, 6, 7, 8, 9]");
    assert!(before < num && num < arr, "{}", run.stdout);
}

#[test]
fn seed_daemon_waits_for_the_worker_then_its_daemon_dies_with_it() {
    let run = run_example("seed_daemon", &[]);
    let daemon = run.number_after("daemon pid");
    let waiting = position(
        &run,
        "launcher still running: it waits for its non-daemon worker",
    );
    let alive = position(&run, &format!("daemon pid {daemon} running: true"));
    let worker = position(&run, "worker exited: stopped itself");
    let launcher = position(&run, "launcher exited: stopped on request");
    let killed = position(&run, "daemon exited: killed by signal 9 (SIGKILL)");
    let gone = position(&run, &format!("daemon pid {daemon} is gone from /proc"));
    assert!(
        waiting < alive
            && alive < worker
            && worker < launcher
            && launcher < killed
            && killed < gone,
        "{}",
        run.stdout
    );
}

#[test]
fn seed_semaphore_never_lets_more_than_two_workers_in_at_once() {
    let run = run_example("seed_semaphore", &[]);
    let active_after = |marker: &str| -> Vec<u32> {
        run.lines()
            .iter()
            .filter_map(|l| l.split_once(marker))
            .map(|(_, n)| leading_number(n))
            .collect()
    };
    let enters = active_after(" enter (active: ");
    let leaves = active_after(" leave (active: ");
    assert_eq!(enters.len(), 6, "{}", run.stdout);
    assert_eq!(leaves.len(), 6, "{}", run.stdout);
    assert!(
        enters.iter().all(|&n| (1..=2).contains(&n)),
        "{}",
        run.stdout
    );
    let max = run.number_after("max concurrent workers observed:");
    assert!((1..=2).contains(&max), "{}", run.stdout);
    position(&run, "permits free at the end: 2");
}

#[test]
fn every_toolbox_example_leaves_no_runtime_directory_behind() {
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
