//! Per-partition event-time clocks and the worker watermark derived from them (`docs/ARCHITECTURE.md`,
//! "Checkpoints", and `docs/semantics.md`): watermark = max event time seen − lateness per partition; a worker's
//! watermark is the minimum over the partitions it owns that are neither finished nor idle.
//!
//! Idleness: a partition with no records for `idle_timeout` stops holding the worker back — but only while its
//! reader can vouch that it is really silent (caught up, and no broker trouble lately): a broker outage or a
//! backlog is not idleness, and must not push the watermark past data still to come. If every unfinished
//! partition of a worker is idle, the worker advances to the highest of their watermarks or to wall clock −
//! lateness, whichever is later, so that a silent partition never stalls the job. A worker that owns no
//! partition but may be given one added to the topic later (an unbounded Kafka reader) holds its watermark at
//! wall clock − lateness, as if it owned one idle partition: it keeps its capability, so that it can read the
//! partition it is given, without holding the job back. A partition that wakes up is
//! judged against its worker's watermark at that moment (never below it): its events whose window ends at or
//! below that watermark are late. This keeps the invariant the window operator relies on: an on-time event's
//! time in the dataflow (`EventRec::at`) is never below the source's capability.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::messages::ClockState;

/// Event-time state of one partition.
#[derive(Clone, Debug)]
struct PartitionTime {
    max_ts: Option<u64>,
    floor: u64,
    last_record: Instant,
    done: bool,
    idle: bool,
}

/// The clocks of the partitions a worker owns.
#[derive(Clone, Debug)]
pub struct PartitionClock {
    parts: BTreeMap<i32, PartitionTime>,
    lateness_ms: u64,
    idle_timeout: Duration,
    current: u64,
    /// The worker may be given partitions added to the topic while running.
    may_grow: bool,
    /// When the batch being read started (`None` outside a batch): the "last record" time of every record in
    /// it, so that reading a record costs no clock read.
    batch_started: Option<Instant>,
}

impl PartitionClock {
    /// Clocks for `partitions`, none of which has seen a record.
    pub fn new(partitions: &[i32], lateness_ms: u64, idle_timeout: Duration) -> Self {
        let now = Instant::now();
        PartitionClock {
            parts: partitions
                .iter()
                .map(|&p| {
                    (
                        p,
                        PartitionTime {
                            max_ts: None,
                            floor: 0,
                            last_record: now,
                            done: false,
                            idle: false,
                        },
                    )
                })
                .collect(),
            lateness_ms,
            idle_timeout,
            current: 0,
            may_grow: false,
            batch_started: None,
        }
    }

    /// The worker may be given partitions added to the topic while running: owning none does not finish it.
    pub fn expect_partitions(&mut self) {
        self.may_grow = true;
    }

    /// Adds a partition (one added to the topic while running) whose watermark starts at `floor`.
    pub fn add(&mut self, partition: i32, floor: u64) {
        self.parts.entry(partition).or_insert(PartitionTime {
            max_ts: None,
            floor,
            last_record: self.batch_started.unwrap_or_else(Instant::now),
            done: false,
            idle: false,
        });
    }

    fn watermark_of(&self, t: &PartitionTime) -> u64 {
        t.max_ts.map_or(0, |m| m.saturating_sub(self.lateness_ms)).max(t.floor)
    }

    /// Records an event at `ts` read from `partition`; returns the partition's watermark *before* this event,
    /// which decides whether the event is late. `worker_floor` is the worker's current watermark.
    pub fn observe(&mut self, partition: i32, ts: u64, worker_floor: u64) -> u64 {
        self.touch(partition, worker_floor);
        let t = self.parts.get(&partition).expect("owned partition");
        let wm = self.watermark_of(t);
        let t = self.parts.get_mut(&partition).expect("owned partition");
        t.max_ts = Some(t.max_ts.map_or(ts, |m| m.max(ts)));
        wm
    }

    /// Notes that `partition` produced a record (valid or not): it is no longer idle.
    pub fn touch(&mut self, partition: i32, worker_floor: u64) {
        let t = self.parts.get_mut(&partition).expect("owned partition");
        if t.idle {
            // Waking from idleness: never judge below the watermark the worker has meanwhile reached.
            t.floor = t.floor.max(worker_floor);
            t.idle = false;
        }
        t.last_record = self.batch_started.unwrap_or_else(Instant::now);
    }

    /// Starts a batch of reads at `now`: records observed until the next [`Self::worker_watermark`] count as
    /// read at `now`.
    pub fn start_batch(&mut self, now: Instant) {
        self.batch_started = Some(now);
    }

    /// Marks a partition as finished (bounded end reached).
    pub fn finish(&mut self, partition: i32) {
        if let Some(t) = self.parts.get_mut(&partition) {
            t.done = true;
        }
    }

    /// The worker's watermark, or `None` once every partition is finished (or none is owned and none can be
    /// added). Never goes backwards.
    /// `may_idle(p)` tells whether the reader vouches that partition `p` is really silent.
    pub fn worker_watermark(&mut self, now_ms: u64, may_idle: &dyn Fn(i32) -> bool) -> Option<u64> {
        self.batch_started = None;
        let idle_timeout = self.idle_timeout;
        for (&p, t) in self.parts.iter_mut() {
            t.idle = !t.done && t.last_record.elapsed() >= idle_timeout && may_idle(p);
        }
        let open: Vec<&PartitionTime> = self.parts.values().filter(|t| !t.done).collect();
        if open.is_empty() {
            if self.may_grow && self.parts.is_empty() {
                self.current = self.current.max(now_ms.saturating_sub(self.lateness_ms));
                return Some(self.current);
            }
            return None;
        }
        let active: Vec<u64> = open.iter().filter(|t| !t.idle).map(|t| self.watermark_of(t)).collect();
        let wm = match active.iter().min() {
            Some(&min) => min,
            None => {
                let highest = open.iter().map(|t| self.watermark_of(t)).max().unwrap_or(0);
                highest.max(now_ms.saturating_sub(self.lateness_ms))
            }
        };
        self.current = self.current.max(wm);
        Some(self.current)
    }

    /// The event-time state of a partition, for checkpoints.
    pub fn state(&self, partition: i32) -> ClockState {
        self.parts
            .get(&partition)
            .map_or(ClockState::default(), |t| ClockState {
                max_ts: t.max_ts,
                floor: t.floor,
            })
    }

    /// Restores a partition's event-time state from a checkpoint.
    pub fn restore(&mut self, partition: i32, state: ClockState) {
        if let Some(t) = self.parts.get_mut(&partition) {
            t.max_ts = state.max_ts;
            t.floor = state.floor;
        }
    }

    /// The watermark of one partition (for checkpoints and diagnostics).
    pub fn partition_watermark(&self, partition: i32) -> Option<u64> {
        self.parts.get(&partition).map(|t| self.watermark_of(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATE: u64 = 60_000;

    /// A clock over partitions 0 and 1 that has seen `events` (partition, ts) in order.
    fn clock(idle_timeout: Duration, events: &[(i32, u64)]) -> PartitionClock {
        let mut c = PartitionClock::new(&[0, 1], LATE, idle_timeout);
        for &(p, ts) in events {
            c.observe(p, ts, 0);
        }
        c
    }

    #[test]
    fn partition_watermark_trails_the_newest_event_by_the_lateness() {
        let mut c = PartitionClock::new(&[0], LATE, Duration::from_secs(30));
        assert_eq!(c.observe(0, 100_000, 0), 0);
        assert_eq!(c.observe(0, 90_000, 0), 40_000);
        assert_eq!(c.partition_watermark(0), Some(40_000));
        assert_eq!(c.worker_watermark(0, &|_| true), Some(40_000));
    }

    #[test]
    fn worker_watermark_is_the_minimum_over_active_partitions() {
        let mut c = clock(Duration::from_secs(30), &[(0, 200_000), (1, 100_000)]);
        assert_eq!(c.worker_watermark(0, &|_| true), Some(40_000));
    }

    #[test]
    fn finished_partitions_stop_holding_back_and_all_finished_is_none() {
        let mut c = clock(Duration::from_secs(30), &[(0, 200_000), (1, 100_000)]);
        c.finish(1);
        assert_eq!(c.worker_watermark(0, &|_| true), Some(140_000));
        c.finish(0);
        assert_eq!(c.worker_watermark(0, &|_| true), None);
    }

    #[test]
    fn idle_partition_stops_holding_back() {
        let mut c = clock(Duration::from_millis(50), &[(1, 100_000)]);
        std::thread::sleep(Duration::from_millis(80));
        c.observe(0, 500_000, 0);
        // Partition 1 has been silent past the idle timeout: only partition 0 counts.
        assert_eq!(c.worker_watermark(0, &|_| true), Some(440_000));
    }

    #[test]
    fn silence_the_reader_cannot_vouch_for_is_not_idleness() {
        let mut c = clock(Duration::from_millis(20), &[(0, 100_000), (1, 500_000)]);
        std::thread::sleep(Duration::from_millis(40));
        // A broker outage: both silent, but the reader cannot tell whether data is waiting.
        assert_eq!(c.worker_watermark(10_000_000, &|_| false), Some(40_000));
        // When the records come back they are judged by the partition's own history, not lifted.
        assert_eq!(c.observe(0, 105_000, 40_000), 40_000);
    }

    #[test]
    fn all_idle_advances_with_the_wall_clock() {
        let mut c = PartitionClock::new(&[0], LATE, Duration::from_millis(20));
        c.observe(0, 100_000, 0);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.worker_watermark(1_000_000, &|_| true), Some(940_000));
    }

    #[test]
    fn woken_partition_is_judged_against_the_worker_watermark() {
        let mut c = clock(Duration::from_millis(20), &[(1, 100_000)]);
        std::thread::sleep(Duration::from_millis(40));
        c.observe(0, 900_000, 0);
        let worker = c.worker_watermark(0, &|_| true).unwrap();
        assert_eq!(worker, 840_000);
        // Partition 1 wakes with an old event: its watermark is lifted to the worker's.
        assert_eq!(c.observe(1, 110_000, worker), 840_000);
    }

    #[test]
    fn restored_state_gives_the_same_watermark_and_late_decisions() {
        let mut a = PartitionClock::new(&[0], LATE, Duration::from_secs(30));
        a.observe(0, 500_000, 0);
        let mut b = PartitionClock::new(&[0], LATE, Duration::from_secs(30));
        b.restore(0, a.state(0));
        assert_eq!(a.observe(0, 100_000, 0), b.observe(0, 100_000, 0));
        assert_eq!(a.worker_watermark(0, &|_| true), b.worker_watermark(0, &|_| true));
    }

    #[test]
    fn worker_watermark_never_goes_backwards() {
        let mut c = clock(Duration::from_millis(20), &[(0, 900_000)]);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.worker_watermark(0, &|_| true), Some(840_000));
        c.observe(1, 100_000, 840_000);
        assert_eq!(c.worker_watermark(0, &|_| true), Some(840_000));
    }

    #[test]
    fn the_late_decision_follows_the_partition_not_the_worker() {
        // Partition 0 is far ahead; an event of partition 1 is judged by partition 1's own watermark.
        let mut c = clock(Duration::from_secs(30), &[(0, 900_000), (1, 100_000)]);
        let wm1 = c.observe(1, 50_000, 0);
        assert_eq!(wm1, 40_000);
        assert!(
            !model::WindowKind::tumbling(10_000).unwrap().is_late(55_000, wm1),
            "its window [50 s, 60 s) is still open on partition 1"
        );
    }

    #[test]
    fn a_worker_owning_nothing_follows_the_wall_clock_only_while_it_may_be_given_a_partition() {
        let mut bounded = PartitionClock::new(&[], LATE, Duration::from_secs(30));
        assert_eq!(bounded.worker_watermark(1_000_000, &|_| true), None);
        let mut growing = PartitionClock::new(&[], LATE, Duration::from_secs(30));
        growing.expect_partitions();
        assert_eq!(growing.worker_watermark(1_000_000, &|_| true), Some(940_000));
        // Given a partition, the worker is held by it like any other, never below what it already said.
        growing.add(4, 940_000);
        growing.observe(4, 1_500_000, 940_000);
        assert_eq!(growing.worker_watermark(2_000_000, &|_| false), Some(1_440_000));
    }

    #[test]
    fn an_unknown_partition_has_no_state() {
        let c = PartitionClock::new(&[0], LATE, Duration::from_secs(30));
        assert_eq!(c.state(7), ClockState::default());
        assert_eq!(c.partition_watermark(7), None);
    }
}
