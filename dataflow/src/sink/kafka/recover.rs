//! Recovery of the Kafka output when a job restores a checkpoint: every transactional id the checkpoints may have
//! used is fenced (whatever its zombie left open is aborted), its register read, and the unconfirmed segments of
//! that writer above its register are published again from the checkpoint, in one transaction that also
//! moves the register (so a crash during recovery only repeats it). Each writer is recovered by one worker of the
//! restored job (`writer % workers`), so a job restored with another `-w` recovers the writers it no longer has.

use anyhow::{Context, Result};
use model::output::OutputSchema;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};

use super::SinkSettings;
use crate::checkpoint::{SinkRecovery, StateStore};
use crate::sink::kafka::out::{OutRecord, Shared, maybe_crash, send};
use crate::sink::kafka::register::{self, CALL_TIMEOUT, Register};

/// Recovers the writers `worker` is responsible for; `own` is its own (already fenced) producer.
pub fn run(
    sink: &SinkSettings,
    store: &StateStore,
    schema: &OutputSchema,
    worker: usize,
    own: &ThreadedProducer<DefaultProducerContext>,
    r: &SinkRecovery,
    shared: &Shared,
) -> Result<()> {
    let lineage = store.lineage().ok();
    let mut commits = 0;
    for writer in r.writers(worker) {
        let id = register::transactional_id(sink, writer);
        let other;
        let producer = if writer == worker {
            own
        } else {
            other = register::open_producer(sink, &id)?;
            &other
        };
        let Some(lineage) = lineage.as_deref() else {
            // No lineage: no checkpoint of these was written with --sink-topic, there is nothing to publish.
            shared.confirm(writer, r.checkpoint);
            continue;
        };
        let reg = Register::open(sink, &id)?;
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
        let files = r.to_republish(writer, committed);
        if let Some(&(newest, _)) = files.last() {
            producer
                .begin_transaction()
                .context("cannot begin the recovery transaction")?;
            let mut rows = 0;
            for (_, file) in &files {
                for row in store.final_windows(file, schema)? {
                    send(producer, &sink.topic, &OutRecord::of(schema, &row))?;
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
