//! Recovery of the Kafka output when a job restores a checkpoint: every transactional id the checkpoints may have
//! used is fenced (whatever its zombie left open is aborted), its register read, and the unconfirmed segments of
//! that writer above its register are published again from the checkpoint, in one transaction that also
//! moves the register (so a crash during recovery only repeats it). Each writer is recovered by one worker of the
//! restored job (`writer % workers`), so a job restored with another `-w` recovers the writers it no longer has.

use anyhow::{Context, Result};
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};

use crate::checkpoint::format::Manifest;
use crate::checkpoint::kafka_out::{self, SinkCheckpoint};
use crate::checkpoint::segment::{self, SegmentName};
use crate::checkpoint::store;
use crate::config::{JobConfig, SinkTopic};
use crate::sink::kafka::out::{OutRecord, Shared, maybe_crash, send};
use crate::sink::kafka::register::{self, CALL_TIMEOUT, Register};
use crate::sink::parquet::read_rows;

/// What a restored checkpoint leaves the Kafka output to finish.
#[derive(Clone, Debug)]
pub struct Recovery {
    /// The restored checkpoint.
    pub checkpoint: u64,
    /// Its sink section.
    pub sink: SinkCheckpoint,
    /// The workers that wrote it.
    pub workers: usize,
    /// Workers of this job.
    pub peers: usize,
}

impl Recovery {
    /// The recovery a restored manifest asks for (`None` without one: a fresh start has nothing to finish). A
    /// manifest of a job without `--sink-topic` has no sink section: its writers are fenced all the same.
    pub fn of(manifest: Option<&Manifest>, peers: usize) -> Option<Recovery> {
        let m = manifest?;
        Some(Recovery {
            checkpoint: m.id,
            sink: m.sink.clone().unwrap_or_default(),
            workers: m.workers,
            peers,
        })
    }
}

/// Recovers the writers `worker` is responsible for; `own` is its own (already fenced) producer.
pub fn run(
    config: &JobConfig,
    sink: &SinkTopic,
    worker: usize,
    own: &ThreadedProducer<DefaultProducerContext>,
    r: &Recovery,
    shared: &Shared,
) -> Result<()> {
    let lineage = store::lineage(&config.out).ok();
    let mut commits = 0;
    for writer in kafka_out::writers_of(&r.sink, r.workers, r.peers, worker) {
        let id = register::transactional_id(config, sink, writer);
        let other;
        let producer = if writer == worker {
            own
        } else {
            other = register::open_producer(config, &id)?;
            &other
        };
        let Some(lineage) = lineage.as_deref() else {
            // No lineage: no checkpoint of these was written with --sink-topic, there is nothing to publish.
            shared.confirm(writer, r.checkpoint);
            continue;
        };
        let reg = Register::open(config, sink, &id)?;
        let committed = reg.read(lineage)?;
        if committed > r.checkpoint {
            tracing::error!(
                writer,
                committed,
                restored = r.checkpoint,
                "the sink topic holds the output of a checkpoint newer than the one restored (its manifest is \
                 unreadable): the windows of the checkpoints between will be in the sink topic twice"
            );
        }
        let files = kafka_out::to_republish(&r.sink, writer, committed);
        if let Some(&(newest, _)) = files.last() {
            producer
                .begin_transaction()
                .context("cannot begin the recovery transaction")?;
            let mut rows = 0;
            for (_, file) in &files {
                let aggs = match SegmentName::of(file) {
                    Some(_) => segment::read(&config.out, file)?,
                    // Manifests written before segments list history files.
                    None => read_rows(&config.out.join(file))?,
                };
                for agg in aggs {
                    send(producer, &sink.topic, &OutRecord::of(&agg))?;
                    rows += 1;
                }
            }
            reg.move_in(producer, newest, lineage)?;
            maybe_crash("republish", &mut commits);
            producer
                .commit_transaction(CALL_TIMEOUT)
                .context("cannot commit the recovery transaction")?;
            tracing::info!(
                writer,
                files = files.len(),
                rows,
                "published again the windows whose transaction had not committed"
            );
        }
        shared.confirm(writer, r.checkpoint);
    }
    Ok(())
}
