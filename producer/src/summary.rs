//! Counters of a producer run, printed as one JSON line on stdout at the end so scripts and tests can read them.

use std::time::Duration;

use serde::Serialize;

use crate::sim::RecordKind;

/// What a run sent.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Records handed to Kafka (or written to the file).
    pub sent: u64,
    /// Records acknowledged by the broker.
    pub acked: u64,
    /// Records the broker did not acknowledge.
    pub failed: u64,
    /// Valid events with a past timestamp.
    pub late: u64,
    /// Malformed records.
    pub bad: u64,
    /// Rows of the device table published (`--devices-topic`), the first ones and the changes.
    pub device_rows: u64,
    /// Wall-clock seconds of the run.
    pub elapsed_s: f64,
    /// Records per second over the run.
    pub rate: f64,
}

impl Summary {
    /// Counts one record.
    pub fn count(&mut self, kind: &RecordKind) {
        self.sent += 1;
        match kind {
            RecordKind::OnTime => {}
            RecordKind::Late { .. } => self.late += 1,
            RecordKind::Bad(_) => self.bad += 1,
        }
    }

    /// Records the run's duration and rate.
    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed_s = elapsed.as_secs_f64();
        self.rate = if self.elapsed_s > 0.0 {
            self.sent as f64 / self.elapsed_s
        } else {
            0.0
        };
    }
}
