//! The data-loss rule, in one place: whether a partition's log still holds the offset the job is to read next
//! (on restore: the checkpointed offset; while running: the reader's position), and what `--on-data-loss` then
//! does. A position below the log start (records removed by retention or DeleteRecords before they were read),
//! beyond its end (the topic deleted and recreated, or truncated), in a partition that no longer exists, or a
//! checkpoint written against another Kafka cluster is a loss: `fail` stops the job with a [`DataLoss`] whose
//! text names topic, partition, offset, the log's range and the way out; `continue` goes on from the earliest
//! offset that exists and says what to count. Gaps inside `[low, high)` are never a loss: compaction and
//! transaction markers leave them legitimately.

use std::fmt;

use crate::source::OnDataLoss;

/// When the position is judged (it changes the wording only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// On start, against a restored checkpoint.
    Restore,
    /// While reading (librdkafka reported an out-of-range fetch).
    Running,
}

/// The offset a partition is to be read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// The offset to read next.
    pub offset: i64,
    /// On restore or while running.
    pub moment: Moment,
}

/// What the broker holds of the partition now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Log {
    /// The partition does not exist (the topic has `partitions` partitions).
    Missing {
        /// The topic's partition count now.
        partitions: usize,
    },
    /// Its log holds offsets `[low, high)`.
    Range {
        /// Log start offset (low watermark).
        low: i64,
        /// Log end offset (high watermark).
        high: i64,
    },
}

/// The Kafka cluster ids of the checkpoint and of the brokers now (`None`: not known, e.g. a checkpoint written
/// before cluster ids were recorded; then the cluster is not checked).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clusters<'a> {
    /// The cluster the checkpoint was written against.
    pub checkpointed: Option<&'a str>,
    /// The cluster `--brokers` belongs to now.
    pub now: Option<&'a str>,
}

impl Clusters<'_> {
    fn other(&self) -> Option<(&str, &str)> {
        match (self.checkpointed, self.now) {
            (Some(a), Some(b)) if a != b => Some((a, b)),
            _ => None,
        }
    }
}

/// What was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Below the log start: `low − offset` records were removed before they were read.
    Removed,
    /// Beyond the log end: the log was replaced or truncated; how many records were lost is unknown.
    BeyondEnd,
    /// The partition no longer exists.
    PartitionGone,
    /// The checkpoint belongs to another cluster; how many records were lost is unknown.
    OtherCluster {
        /// The checkpoint's cluster id.
        checkpointed: String,
        /// The brokers' cluster id now.
        now: String,
    },
}

/// How reading goes on after [`judge`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Where to read the partition from (`None`: it no longer exists, nothing to read).
    pub resume_at: Option<i64>,
    /// The loss that was let through (`--on-data-loss continue`), if any: one incident to count.
    pub loss: Option<Loss>,
    /// Records known to be skipped (only a removal below the log start tells how many).
    pub skipped: u64,
}

impl Verdict {
    fn keep(offset: i64) -> Verdict {
        Verdict {
            resume_at: Some(offset),
            loss: None,
            skipped: 0,
        }
    }
}

/// A loss that stops the job (`--on-data-loss fail`); its text is the message for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataLoss {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The offset that was to be read next.
    pub offset: i64,
    /// When it was found.
    pub moment: Moment,
    /// The partition's log now.
    pub log: Log,
    /// What was lost.
    pub loss: Loss,
}

impl std::error::Error for DataLoss {}

impl fmt::Display for DataLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (topic, partition, offset) = (&self.topic, self.partition, self.offset);
        let which = match self.moment {
            Moment::Restore => "checkpointed offset",
            Moment::Running => "next offset to read",
        };
        write!(
            f,
            "data loss on topic {topic} partition {partition}: the {which} {offset} "
        )?;
        let from = match self.log {
            Log::Range { low, high } => {
                write!(f, "is not in the partition's log [{low}, {high}): ")?;
                format!("offset {low}")
            }
            Log::Missing { partitions } => {
                write!(f, "has no log, the topic now has {partitions} partition(s): ")?;
                "the partitions that exist".to_string()
            }
        };
        match (&self.loss, self.log) {
            (Loss::Removed, Log::Range { low, .. }) => write!(
                f,
                "{} unread record(s) were removed (retention or DeleteRecords) before the job read them",
                low - offset
            )?,
            (Loss::Removed, Log::Missing { .. }) | (Loss::PartitionGone, _) => write!(
                f,
                "the partition no longer exists (was the topic deleted and recreated?)"
            )?,
            (Loss::BeyondEnd, _) => write!(
                f,
                "the log ends before it, so the topic was deleted and recreated (or truncated) since; how many \
                 records were lost is unknown"
            )?,
            (Loss::OtherCluster { checkpointed, now }, _) => write!(
                f,
                "the checkpoint was written against Kafka cluster {checkpointed} but --brokers is cluster {now}"
            )?,
        }
        write!(
            f,
            ". Pass --on-data-loss continue to count the loss and go on from {from}, or --fresh to discard the \
             checkpoints and start over (the default, --on-data-loss fail, stops here)"
        )
    }
}

/// Judges where `at` is to be read from, given the partition's `log` now and the clusters; with
/// [`OnDataLoss::Fail`] a loss is an error, with [`OnDataLoss::Continue`] it resumes at the log start and says
/// what to count.
pub fn judge(at: Position<'_>, log: Log, clusters: Clusters<'_>, policy: OnDataLoss) -> Result<Verdict, DataLoss> {
    let loss = match (log, clusters.other()) {
        (Log::Missing { .. }, _) => Loss::PartitionGone,
        (Log::Range { .. }, Some((checkpointed, now))) => Loss::OtherCluster {
            checkpointed: checkpointed.to_string(),
            now: now.to_string(),
        },
        (Log::Range { low, .. }, None) if at.offset < low => Loss::Removed,
        (Log::Range { high, .. }, None) if at.offset > high => Loss::BeyondEnd,
        (Log::Range { .. }, None) => return Ok(Verdict::keep(at.offset)),
    };
    match policy {
        OnDataLoss::Fail => Err(DataLoss {
            topic: at.topic.to_string(),
            partition: at.partition,
            offset: at.offset,
            moment: at.moment,
            log,
            loss,
        }),
        OnDataLoss::Continue => {
            let (resume_at, skipped) = match (log, &loss) {
                (Log::Range { low, .. }, Loss::Removed) => (Some(low), (low - at.offset) as u64),
                (Log::Range { low, .. }, _) => (Some(low), 0),
                (Log::Missing { .. }, _) => (None, 0),
            };
            Ok(Verdict {
                resume_at,
                loss: Some(loss),
                skipped,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Position<'static> = Position {
        topic: "iot-metrics",
        partition: 2,
        offset: 500,
        moment: Moment::Restore,
    };

    fn range(low: i64, high: i64) -> Log {
        Log::Range { low, high }
    }

    fn fail(log: Log, clusters: Clusters<'_>) -> DataLoss {
        judge(AT, log, clusters, OnDataLoss::Fail).unwrap_err()
    }

    fn go_on(log: Log, clusters: Clusters<'_>) -> Verdict {
        judge(AT, log, clusters, OnDataLoss::Continue).unwrap()
    }

    #[test]
    fn an_offset_the_log_holds_resumes_there_whatever_the_policy() {
        for log in [range(0, 1000), range(500, 500), range(500, 501), range(0, 500)] {
            for policy in [OnDataLoss::Fail, OnDataLoss::Continue] {
                assert_eq!(
                    judge(AT, log, Clusters::default(), policy),
                    Ok(Verdict::keep(500)),
                    "{log:?}"
                );
            }
        }
    }

    #[test]
    fn records_removed_before_they_were_read_fail_naming_partition_offsets_range_and_the_flag() {
        let err = fail(range(700, 800), Clusters::default());
        assert_eq!(err.loss, Loss::Removed);
        let text = err.to_string();
        for part in [
            "topic iot-metrics partition 2",
            "checkpointed offset 500",
            "[700, 800)",
            "200 unread record(s) were removed",
            "--on-data-loss continue",
            "offset 700",
            "--fresh",
        ] {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
    }

    #[test]
    fn with_continue_removed_records_are_skipped_and_counted_exactly() {
        let v = go_on(range(700, 800), Clusters::default());
        assert_eq!(
            v,
            Verdict {
                resume_at: Some(700),
                loss: Some(Loss::Removed),
                skipped: 200
            }
        );
    }

    #[test]
    fn an_offset_beyond_the_log_end_is_a_recreated_topic_with_an_unknown_loss() {
        let err = fail(range(0, 100), Clusters::default());
        assert_eq!(err.loss, Loss::BeyondEnd);
        assert!(err.to_string().contains("[0, 100)") && err.to_string().contains("recreated"));
        let v = go_on(range(0, 100), Clusters::default());
        assert_eq!((v.resume_at, v.loss, v.skipped), (Some(0), Some(Loss::BeyondEnd), 0));
        // A recreated topic whose retention already removed its start: go on from what exists.
        assert_eq!(go_on(range(40, 100), Clusters::default()).resume_at, Some(40));
    }

    #[test]
    fn a_partition_that_no_longer_exists_is_a_loss_with_nothing_to_resume() {
        let gone = Log::Missing { partitions: 2 };
        let err = fail(gone, Clusters::default());
        assert_eq!(err.loss, Loss::PartitionGone);
        assert!(err.to_string().contains("now has 2 partition(s)"), "{err}");
        let v = go_on(gone, Clusters::default());
        assert_eq!((v.resume_at, v.loss, v.skipped), (None, Some(Loss::PartitionGone), 0));
    }

    #[test]
    fn a_checkpoint_of_another_cluster_is_a_loss_even_when_the_offset_exists() {
        let clusters = Clusters {
            checkpointed: Some("abc"),
            now: Some("xyz"),
        };
        let err = fail(range(0, 1000), clusters);
        assert!(matches!(err.loss, Loss::OtherCluster { .. }));
        assert!(
            err.to_string().contains("cluster abc but --brokers is cluster xyz"),
            "{err}"
        );
        let v = go_on(range(10, 1000), clusters);
        assert_eq!((v.resume_at, v.skipped), (Some(10), 0));
    }

    #[test]
    fn an_unknown_cluster_id_on_either_side_skips_the_cluster_check() {
        for clusters in [
            Clusters {
                checkpointed: None,
                now: Some("xyz"),
            },
            Clusters {
                checkpointed: Some("abc"),
                now: None,
            },
            Clusters {
                checkpointed: Some("abc"),
                now: Some("abc"),
            },
        ] {
            assert_eq!(go_on(range(0, 1000), clusters), Verdict::keep(500));
        }
    }

    #[test]
    fn while_running_the_message_speaks_of_the_next_offset() {
        let at = Position {
            moment: Moment::Running,
            ..AT
        };
        let err = judge(at, range(900, 900), Clusters::default(), OnDataLoss::Fail).unwrap_err();
        assert!(err.to_string().contains("the next offset to read 500"), "{err}");
    }
}
