//! The per-record rules of a source, apart from timely: parse and validate a raw record, judge a valid event
//! late or on time against the watermark of the partition it was read from, and keep every partition's offset,
//! clock and counts. Every record read ends as exactly one [`Outcome`]: an event for the windows or a dead letter
//! with its reason, so nothing is dropped silently and the counts add up to the records read.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use model::value::Value;

use crate::messages::{DeadLetter, EventRec, PartitionState, ProbeRec, RawRecord, RecordCounts};
use crate::query::{Query, UdfHost};
use crate::source::parse::{Parsed, late_letter, parse_record};
use crate::source::watermark::PartitionClock;

/// What became of one record.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// A valid, on-time event.
    Event(EventRec),
    /// A valid, on-time record of a job with a temporal join, bound for the join.
    Probe(ProbeRec),
    /// A valid record the query's `WHERE` leaves out (counted, nothing else).
    Filtered,
    /// A bad or late record.
    Dead(DeadLetter),
}

/// The state of the partitions one source owns.
pub struct Intake {
    parts: BTreeMap<i32, PartitionState>,
    clock: PartitionClock,
    query: Arc<Query>,
    host: Rc<dyn UdfHost>,
    row: Vec<Value>,
    source: u32,
}

impl Intake {
    /// Intake for `owned` partitions of global worker `source`, each starting at `next_offset(p)`, reading records
    /// under `query` (whose UDFs `host` calls).
    pub fn new(
        owned: &[i32],
        next_offset: &dyn Fn(i32) -> i64,
        source: u32,
        query: Arc<Query>,
        host: Rc<dyn UdfHost>,
        idle_timeout: Duration,
    ) -> Intake {
        let parts = owned
            .iter()
            .map(|&p| {
                let state = PartitionState {
                    partition: p,
                    next_offset: next_offset(p),
                    ..Default::default()
                };
                (p, state)
            })
            .collect();
        Intake {
            parts,
            clock: PartitionClock::new(owned, query.lateness_ms(), idle_timeout),
            query,
            host,
            row: Vec::new(),
            source,
        }
    }

    /// The reader may be given partitions added to the topic while running: owning none does not finish the
    /// worker (`watermark`).
    pub fn expect_partitions(&mut self) {
        self.clock.expect_partitions();
    }

    /// Takes over the state a checkpoint recorded for the partitions this intake owns (others are ignored).
    pub fn restore(&mut self, saved: &[PartitionState]) {
        for s in saved {
            if let Some(part) = self.parts.get_mut(&s.partition) {
                self.clock.restore(s.partition, s.clock);
                *part = s.clone();
            }
        }
    }

    /// Takes over a partition added to the topic while running, read from `next_offset`. Its clock starts at
    /// `worker_floor`, the worker's watermark now: its events are judged against that, so the worker's
    /// watermark never goes back (an event whose window ends at or below it is late).
    pub fn add_partition(&mut self, partition: i32, next_offset: i64, worker_floor: u64) {
        self.parts.entry(partition).or_insert_with(|| PartitionState {
            partition,
            next_offset,
            ..Default::default()
        });
        self.clock.add(partition, worker_floor);
    }

    /// Counts a data loss let through on `partition` (`skipped` records known lost) and moves its next offset to
    /// `next_offset`, where reading goes on, so that the next checkpoint records the move and a restore does not
    /// count the loss again.
    pub fn lost(&mut self, partition: i32, next_offset: i64, skipped: u64) {
        if let Some(part) = self.parts.get_mut(&partition) {
            part.next_offset = next_offset;
            part.counts.data_loss += 1;
            part.counts.skipped_records += skipped;
        }
    }

    /// Starts a batch of reads at `now` (see [`PartitionClock::start_batch`]).
    pub fn start_batch(&mut self, now: Instant) {
        self.clock.start_batch(now);
    }

    /// Judges one record; `worker_floor` is the source's current watermark (its capability).
    pub fn take(&mut self, raw: &RawRecord<'_>, rules: model::Validation, worker_floor: u64) -> Outcome {
        let part = self
            .parts
            .get_mut(&raw.partition)
            .expect("a reader yields only the partitions it owns");
        part.next_offset = raw.offset + 1;
        part.counts.records += 1;
        let kind = self.query.window;
        // A valid record is late when its earliest window has closed on its partition: its dead letter.
        let mut late = |ts: u64| {
            let wm = self.clock.observe(raw.partition, ts, worker_floor);
            if kind.is_late(ts, wm) {
                part.counts.late += 1;
                Some(Box::new(late_letter(raw, ts, kind.earliest_end(ts), wm)))
            } else {
                part.counts.events += 1;
                None
            }
        };
        match parse_record(raw, &self.query, self.host.as_ref(), rules, &mut self.row) {
            Parsed::Event { mut event, ts } => match late(ts) {
                Some(letter) => Outcome::Dead(*letter),
                None => {
                    event.source = self.source;
                    Outcome::Event(event)
                }
            },
            Parsed::Probe(mut probe) => match late(probe.ts) {
                Some(letter) => Outcome::Dead(*letter),
                None => {
                    probe.source = self.source;
                    Outcome::Probe(probe)
                }
            },
            Parsed::Filtered { ts } => {
                // A valid record moves its partition's clock as any other: `WHERE` decides what is aggregated, not
                // how far event time has come.
                self.clock.observe(raw.partition, ts, worker_floor);
                part.counts.filtered += 1;
                Outcome::Filtered
            }
            Parsed::Bad(letter) => {
                self.clock.touch(raw.partition, worker_floor);
                *part.counts.bad_by_reason.entry(letter.reason.clone()).or_default() += 1;
                Outcome::Dead(letter)
            }
        }
    }

    /// Marks `partition` as finished (its bounded end is reached).
    pub fn finish(&mut self, partition: i32) {
        self.clock.finish(partition);
    }

    /// The worker's watermark (`None`: every partition finished, or none owned); see
    /// [`PartitionClock::worker_watermark`].
    pub fn watermark(&mut self, now_ms: u64, may_idle: &dyn Fn(i32) -> bool) -> Option<u64> {
        self.clock.worker_watermark(now_ms, may_idle)
    }

    /// Every owned partition's state now, as a checkpoint marker carries it.
    pub fn cut(&self) -> Vec<PartitionState> {
        self.parts
            .values()
            .map(|p| PartitionState {
                clock: self.clock.state(p.partition),
                ..p.clone()
            })
            .collect()
    }

    /// The counts summed over the owned partitions.
    pub fn totals(&self) -> RecordCounts {
        let mut total = RecordCounts::default();
        for p in self.parts.values() {
            total.add(&p.counts);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_730_638_574_123;
    const RULES: model::Validation = model::Validation {
        now_ms: NOW,
        max_future_ms: 3_600_000,
    };

    fn intake() -> Intake {
        let p = crate::query::testing::program();
        Intake::new(
            &[0, 1],
            &|p| p as i64 * 100,
            3,
            p.query,
            p.host,
            Duration::from_secs(30),
        )
    }

    fn event(ts: u64) -> Vec<u8> {
        format!(
            r#"{{"device_id":"d","ts":{ts},"temperature":1,"humidity":2,"battery":3,"status":"ok","location":"lab"}}"#
        )
        .into_bytes()
    }

    fn raw(partition: i32, offset: i64, value: &[u8]) -> RawRecord<'_> {
        RawRecord {
            partition,
            offset,
            key: None,
            value: Some(value),
            timestamp: None,
        }
    }

    #[test]
    fn on_time_event_goes_to_the_windows_marked_with_its_source() {
        let mut i = intake();
        let v = event(NOW);
        match i.take(&raw(0, 5, &v), RULES, 0) {
            Outcome::Event(e) => {
                assert_eq!((e.source, e.at), (3, NOW - NOW % 10_000 + 10_000 - 1))
            }
            other => panic!("{other:?}"),
        }
        let cut = i.cut();
        assert_eq!((cut[0].next_offset, cut[0].counts.events), (6, 1));
        assert_eq!(cut[0].clock.max_ts, Some(NOW));
        assert_eq!(cut[1].next_offset, 100, "untouched partition keeps its start");
    }

    #[test]
    fn event_behind_its_partition_watermark_is_a_late_dead_letter() {
        let mut i = intake();
        let newest = event(NOW);
        i.take(&raw(0, 0, &newest), RULES, 0);
        let old = event(NOW - 120_000);
        match i.take(&raw(0, 1, &old), RULES, 0) {
            Outcome::Dead(l) => {
                assert_eq!(l.reason, "late");
                assert_eq!(l.watermark, Some(NOW - 60_000));
                assert_eq!(l.window_end, Some(NOW - 120_000 - (NOW - 120_000) % 10_000 + 10_000));
                assert_eq!(l.offset, 1);
            }
            other => panic!("accepted {other:?}"),
        }
        // The same old event on the other partition, whose watermark is still 0, is on time.
        assert!(matches!(i.take(&raw(1, 100, &old), RULES, 0), Outcome::Event(_)));
        let t = i.totals();
        assert_eq!((t.records, t.events, t.late), (3, 2, 1));
    }

    #[test]
    fn bad_records_are_counted_per_reason() {
        let mut i = intake();
        i.take(&raw(1, 100, b"{oops"), RULES, 0);
        i.take(&raw(1, 101, b""), RULES, 0);
        i.take(&raw(1, 102, b"{oops"), RULES, 0);
        let t = i.totals();
        assert_eq!(t.records, 3);
        assert_eq!(t.bad(), 3);
        assert_eq!(t.bad_by_reason["not_json"], 2);
    }

    #[test]
    fn restored_intake_continues_offsets_counts_and_late_decisions() {
        let mut a = intake();
        let newest = event(NOW);
        a.take(&raw(0, 7, &newest), RULES, 0);
        let mut b = intake();
        b.restore(&a.cut());
        assert_eq!(b.cut(), a.cut());
        let old = event(NOW - 120_000);
        assert_eq!(a.take(&raw(0, 8, &old), RULES, 0), b.take(&raw(0, 8, &old), RULES, 0));
    }

    #[test]
    fn restore_ignores_partitions_owned_by_other_workers() {
        let mut i = intake();
        i.restore(&[PartitionState {
            partition: 9,
            next_offset: 42,
            ..Default::default()
        }]);
        assert_eq!(i.cut().iter().map(|p| p.partition).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn an_added_partition_starts_at_the_worker_watermark_which_never_goes_back() {
        let mut i = intake();
        let v = event(NOW);
        i.take(&raw(0, 0, &v), RULES, 0);
        i.take(&raw(1, 100, &v), RULES, 0);
        let worker = i.watermark(NOW, &|_| false).unwrap();
        assert_eq!(worker, NOW - 60_000);
        i.add_partition(2, 0, worker);
        assert_eq!(
            i.watermark(NOW, &|_| false),
            Some(worker),
            "the new partition holds no older watermark"
        );
        // An event of the new partition whose window ended at or below the worker's watermark is late.
        let old = event(NOW - 120_000);
        assert!(matches!(i.take(&raw(2, 0, &old), RULES, worker), Outcome::Dead(l) if l.reason == "late"));
        assert!(matches!(i.take(&raw(2, 1, &v), RULES, worker), Outcome::Event(_)));
        let cut = i.cut();
        assert_eq!(cut.iter().map(|p| p.partition).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!((cut[2].next_offset, cut[2].counts.records), (2, 2));
    }

    #[test]
    fn a_loss_let_through_is_counted_and_moves_the_next_offset() {
        let mut i = intake();
        i.lost(1, 700, 200);
        i.lost(0, 50, 0);
        let cut = i.cut();
        assert_eq!(
            (
                cut[1].next_offset,
                cut[1].counts.data_loss,
                cut[1].counts.skipped_records
            ),
            (700, 1, 200)
        );
        let t = i.totals();
        assert_eq!((t.data_loss, t.skipped_records, t.records), (2, 200, 0));
    }

    #[test]
    fn finished_partitions_release_the_watermark() {
        let mut i = intake();
        let v = event(NOW);
        i.take(&raw(0, 0, &v), RULES, 0);
        i.finish(1);
        assert_eq!(i.watermark(NOW, &|_| false), Some(NOW - 60_000));
        i.finish(0);
        assert_eq!(i.watermark(NOW, &|_| false), None);
    }
}
