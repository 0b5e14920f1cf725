//! A bound on how long the end of a job waits for a librdkafka client to be torn down. Dropping a consumer
//! closes it (`rd_kafka_consumer_close`, then polling until librdkafka says it is closed) and destroying any
//! client joins librdkafka's broker threads; librdkafka has known races in which that never returns (a
//! reference to a partition or broker that is not given back, e.g. after a broker restart). By then the job's
//! last checkpoint, which alone holds its offsets, is committed, so nothing is lost by not waiting: the drop
//! goes on in a thread of its own, the job waits for it at most a bound, and past it says so and exits.

use std::ops::{Deref, DerefMut};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the end of a job waits for one librdkafka client to close.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// A value dropped with [`drop_within`] (`what` names it in the warning) when it goes out of scope.
pub struct BoundedDrop<T: Send + 'static> {
    value: Option<T>,
    what: &'static str,
    within: Duration,
}

impl<T: Send + 'static> BoundedDrop<T> {
    /// Wraps `value`, whose drop will be waited for at most `within`.
    pub fn new(value: T, what: &'static str, within: Duration) -> BoundedDrop<T> {
        BoundedDrop {
            value: Some(value),
            what,
            within,
        }
    }
}

impl<T: Send + 'static> Deref for BoundedDrop<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.value.as_ref().expect("only taken when dropped")
    }
}

impl<T: Send + 'static> DerefMut for BoundedDrop<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("only taken when dropped")
    }
}

impl<T: Send + 'static> Drop for BoundedDrop<T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            drop_within(value, self.within, self.what);
        }
    }
}

/// Drops `value` on a thread of its own and waits at most `within` for it ([`join_within`]); returns whether the
/// drop finished in time.
pub fn drop_within<T: Send + 'static>(value: T, within: Duration, what: &str) -> bool {
    match std::thread::Builder::new()
        .name("teardown".to_owned())
        .spawn(move || drop(value))
    {
        Ok(thread) => join_within(thread, within, what),
        // The closure, and the value with it, was dropped on this thread already.
        Err(_) => true,
    }
}

/// Waits at most `within` for `thread` to end, joining it if it does; returns whether it ended in time. Past
/// `within` it warns and leaves the thread (it ends with the process).
pub fn join_within(thread: JoinHandle<()>, within: Duration, what: &str) -> bool {
    let deadline = Instant::now() + within;
    while !thread.is_finished() {
        if Instant::now() >= deadline {
            warn_not_closed(what, within);
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = thread.join();
    true
}

fn warn_not_closed(what: &str, within: Duration) {
    tracing::warn!(
        client = what,
        within_s = within.as_secs_f64(),
        "librdkafka did not close this client in time; the job ends without waiting for it (its last \
         checkpoint is committed, nothing is lost)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    struct SlowDrop(Duration);

    impl Drop for SlowDrop {
        fn drop(&mut self) {
            std::thread::sleep(self.0);
        }
    }

    #[test]
    fn a_quick_drop_is_waited_for() {
        assert!(drop_within(SlowDrop(Duration::ZERO), Duration::from_secs(5), "quick"));
    }

    #[test]
    fn a_drop_that_hangs_is_given_up_after_the_bound() {
        let started = Instant::now();
        assert!(!drop_within(
            SlowDrop(Duration::from_secs(30)),
            Duration::from_millis(50),
            "stuck"
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_wrapped_value_is_dropped_when_it_goes_out_of_scope() {
        let (tx, rx) = sync_channel(1);
        struct Tell(std::sync::mpsc::SyncSender<()>);
        impl Drop for Tell {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        drop(BoundedDrop::new(Tell(tx), "told", Duration::from_secs(5)));
        assert!(rx.try_recv().is_ok(), "dropped before the wrapper's drop returned");
    }

    #[test]
    fn a_thread_that_does_not_end_is_left_after_the_bound() {
        let quick = std::thread::spawn(|| {});
        assert!(join_within(quick, Duration::from_secs(5), "quick"));
        let stuck = std::thread::spawn(|| std::thread::sleep(Duration::from_secs(30)));
        let started = Instant::now();
        assert!(!join_within(stuck, Duration::from_millis(50), "stuck"));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
