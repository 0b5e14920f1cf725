//! The supervisor's restart rule, pure (`docs/operations.md`, "A cluster"): after a failure the whole cluster
//! restarts after a backoff that doubles with each failure inside the window (Flink's exponential-delay
//! strategy), and the supervisor gives up once more than `max_restarts` failures fall within `window` (Flink's
//! failure-rate strategy, Arroyo's `allowed-restarts`); failures older than the window are forgotten, so a
//! cluster that has run healthy for a window starts again from the first backoff.

use std::collections::VecDeque;
use std::time::Duration;

/// How the supervisor restarts (`--max-restarts`, `--restart-window`, `--restart-backoff`,
/// `--restart-backoff-max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed within `window`.
    pub max_restarts: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// The first backoff.
    pub backoff: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
}

/// What to do after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Restart after this long.
    RestartAfter(Duration),
    /// Give up: this many failures fell within the window.
    GiveUp(usize),
}

/// The failures seen, for [`RestartPolicy`].
#[derive(Clone, Debug, Default)]
pub struct Restarts {
    /// When each failure inside the window happened, ms since any fixed origin.
    recent: VecDeque<u64>,
    /// Restarts made since the supervisor started.
    pub total: u64,
}

impl Restarts {
    /// Records a failure at `now_ms` and decides.
    pub fn on_failure(&mut self, now_ms: u64, policy: &RestartPolicy) -> Decision {
        let window = policy.window.as_millis() as u64;
        while self.recent.front().is_some_and(|&t| now_ms.saturating_sub(t) >= window) {
            self.recent.pop_front();
        }
        self.recent.push_back(now_ms);
        let failures = self.recent.len();
        if failures > policy.max_restarts as usize {
            return Decision::GiveUp(failures);
        }
        self.total += 1;
        let doublings = (failures - 1).min(30) as u32;
        let delay = policy.backoff.saturating_mul(1u32 << doublings).min(policy.backoff_max);
        Decision::RestartAfter(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RestartPolicy = RestartPolicy {
        max_restarts: 3,
        window: Duration::from_secs(600),
        backoff: Duration::from_secs(1),
        backoff_max: Duration::from_secs(5),
    };

    #[test]
    fn backoff_doubles_up_to_its_maximum_then_the_budget_runs_out() {
        let mut r = Restarts::default();
        let secs = |s| Decision::RestartAfter(Duration::from_secs(s));
        assert_eq!(r.on_failure(0, &POLICY), secs(1));
        assert_eq!(r.on_failure(10_000, &POLICY), secs(2));
        assert_eq!(r.on_failure(20_000, &POLICY), secs(4));
        assert_eq!(r.on_failure(30_000, &POLICY), Decision::GiveUp(4));
        assert_eq!(r.total, 3);
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let mut r = Restarts::default();
        for t in [0, 1_000, 2_000] {
            assert!(matches!(r.on_failure(t, &POLICY), Decision::RestartAfter(_)));
        }
        // Ten minutes of health later the budget and the backoff start over.
        assert_eq!(
            r.on_failure(602_000, &POLICY),
            Decision::RestartAfter(Duration::from_secs(1))
        );
        assert_eq!(r.total, 4);
    }

    #[test]
    fn the_backoff_never_passes_its_maximum() {
        let policy = RestartPolicy {
            max_restarts: 100,
            ..POLICY
        };
        let mut r = Restarts::default();
        let last = (0..40).map(|i| r.on_failure(i, &policy)).last().unwrap();
        assert_eq!(last, Decision::RestartAfter(Duration::from_secs(5)));
    }

    #[test]
    fn no_restart_allowed_gives_up_at_the_first_failure() {
        let policy = RestartPolicy {
            max_restarts: 0,
            ..POLICY
        };
        assert_eq!(Restarts::default().on_failure(0, &policy), Decision::GiveUp(1));
    }
}
