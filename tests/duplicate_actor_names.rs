//! Two actor types with one stable name (issue 8, item 14): a ref to one would run the
//! other's code, so the first spawn of this binary fails with an error naming both. This
//! is its own test binary, since the duplicate makes every spawn in it fail.

use procession::prelude::*;
use procession::Error;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(), name = "duplicates::Worker")]
struct FirstWorker;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(), name = "duplicates::Worker")]
struct SecondWorker;

#[test]
fn two_actor_types_with_one_name_fail_the_first_spawn_naming_both() {
    match procession::spawn::<FirstWorker>(FirstWorker) {
        Err(Error::DuplicateActorName {
            name,
            first,
            second,
        }) => {
            assert_eq!(name, "duplicates::Worker");
            assert!(first.ends_with("::FirstWorker"), "first: {first}");
            assert!(second.ends_with("::SecondWorker"), "second: {second}");
        }
        Ok(_) => panic!("the spawn succeeded with two types under one name"),
        Err(other) => panic!("expected DuplicateActorName, got {other:?}"),
    }
    assert!(matches!(
        procession::spawn::<SecondWorker>(SecondWorker),
        Err(Error::DuplicateActorName { .. })
    ));
}
