//! [`wait`]: which of several actors, pipe ends and queues are ready, as Python's
//! `multiprocessing.connection.wait` does for connections and process sentinels.

use std::time::{Duration, Instant};

use crate::mailbox::LIVENESS_SLICE;

/// Something [`wait`] can wait on.
///
/// | type | ready when |
/// |---|---|
/// | [`ActorRef`](crate::ActorRef) | its process has ended (Python's `Process.sentinel`) |
/// | [`PipeEnd`](crate::queue::PipeEnd), [`PipeReceiver`](crate::queue::PipeReceiver) | a value is waiting, or `recv` would report EOF |
/// | [`Queue`](crate::queue::Queue), [`SimpleQueue`](crate::queue::SimpleQueue), [`JoinableQueue`](crate::queue::JoinableQueue) | an item is waiting, or the queue is shut down |
///
/// "Ready" means the next call (`join`, `recv`, `get`) would not block. With several
/// waiters in one process, another may take the value first, as with Python's.
pub trait Waitable {
    /// Whether it is ready now.
    fn is_ready(&self) -> bool;

    /// Sleeps until it may have become ready, at most `timeout`. It may return early
    /// (the caller checks [`is_ready`](Waitable::is_ready) again).
    fn wait_ready(&self, timeout: Duration);
}

impl<W: Waitable + ?Sized> Waitable for &W {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }

    fn wait_ready(&self, timeout: Duration) {
        (**self).wait_ready(timeout)
    }
}

/// While several objects are waited on, how long the wait sleeps on one of them before
/// it looks at all of them again: the most a readiness of the others can go unnoticed.
const ROTATION: Duration = Duration::from_millis(1);

/// Waits until at least one of `objects` is ready, or `timeout` passes (`None`: as long
/// as it takes), and returns the indexes of those that are ready, in order (empty on
/// timeout). As Python's `multiprocessing.connection.wait(object_list, timeout)`.
///
/// One object is waited on with its own futex. Several are looked at in turn: one of
/// them is waited on for at most a millisecond at a time, so the readiness of another
/// is noticed within about a millisecond.
///
/// ```
/// use std::time::Duration;
/// use procession::queue::{simplex, Queue};
/// let (tx, rx) = simplex::<u32>()?;
/// let q = Queue::<u32>::bounded(4)?;
/// assert!(procession::wait(&[&rx, &q], Some(Duration::from_millis(10))).is_empty());
/// q.put(1).unwrap();
/// assert_eq!(procession::wait(&[&rx, &q], None), vec![1]);
/// tx.send(2).unwrap();
/// assert_eq!(procession::wait(&[&rx, &q], None), vec![0, 1]);
/// # Ok::<(), procession::Error>(())
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Vec<usize> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut turn = 0usize;
    loop {
        let ready: Vec<usize> = (0..objects.len())
            .filter(|&i| objects[i].is_ready())
            .collect();
        if !ready.is_empty() || objects.is_empty() {
            return ready;
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return ready;
        }
        let slice = if objects.len() == 1 {
            LIVENESS_SLICE
        } else {
            ROTATION
        };
        objects[turn % objects.len()].wait_ready(left.map_or(slice, |l| l.min(slice)));
        turn = turn.wrapping_add(1);
    }
}
