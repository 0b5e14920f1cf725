//! The roll policy of the Parquet history, as a pure rule: when a worker turns the final windows it holds into
//! history files. Files are rolled by age and size, not by checkpoint, so that a device gets a file per
//! `--roll-interval` rather than per `--checkpoint-interval`; what is not rolled yet travels in the checkpoint
//! (saved with the checkpoint), so exactly-once holds across a crash.

use std::time::Duration;

use crate::messages::BarrierKind;

/// When to roll (`--roll-interval`, `--roll-rows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollPolicy {
    /// The longest a final window waits for its file (checked at each checkpoint, so it may wait up to one
    /// checkpoint interval more).
    pub interval: Duration,
    /// A roll also happens at the first checkpoint at which a worker holds this many final windows.
    pub max_rows: usize,
}

impl RollPolicy {
    /// Whether the held windows go to files at a barrier of `kind`, the oldest of `rows` held windows having
    /// waited `oldest`. A stop and the end of a bounded run always roll, so that they leave every final window
    /// in a file; nothing held, nothing to roll.
    pub fn due(&self, kind: BarrierKind, rows: usize, oldest: Duration) -> bool {
        rows > 0 && (kind != BarrierKind::Periodic || oldest >= self.interval || rows >= self.max_rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RollPolicy = RollPolicy {
        interval: Duration::from_secs(60),
        max_rows: 1_000,
    };

    #[test]
    fn windows_roll_once_the_oldest_has_waited_the_interval() {
        assert!(!POLICY.due(BarrierKind::Periodic, 5, Duration::from_secs(59)));
        assert!(POLICY.due(BarrierKind::Periodic, 5, Duration::from_secs(60)));
    }

    #[test]
    fn many_windows_roll_before_the_interval() {
        assert!(!POLICY.due(BarrierKind::Periodic, 999, Duration::ZERO));
        assert!(POLICY.due(BarrierKind::Periodic, 1_000, Duration::ZERO));
    }

    #[test]
    fn a_stop_and_the_end_of_the_input_always_roll_what_is_held() {
        for kind in [BarrierKind::Stop, BarrierKind::Final] {
            assert!(POLICY.due(kind, 1, Duration::ZERO));
            assert!(!POLICY.due(kind, 0, Duration::from_secs(3_600)), "nothing held");
        }
    }
}
