//! The source stage: what a worker reads and how. `reader` is the interface to the input, `kafka` and `replay`
//! its two implementations, `data_loss` the rule for offsets a partition's log no longer holds, `watermark` the
//! per-partition event-time clocks, `intake` the per-record rules (parse, validate, late) and `operator` the
//! timely source that drives them and holds the watermark.

pub mod data_loss;
pub mod intake;
pub mod kafka;
pub mod operator;
pub mod reader;
pub mod replay;
pub mod watermark;

use std::collections::HashMap;
use std::rc::Rc;

use anyhow::Result;

use crate::config::JobConfig;
use crate::errors::ErrorLog;
use crate::messages::Resume;
use kafka::KafkaReader;
use reader::Reader;
use replay::ReplayReader;

/// Opens this worker's reader: its byte range of `--input`, or its share of the topic's `partitions`, each
/// positioned where `resume` says (else at `--start`).
pub fn open_reader(
    config: &JobConfig,
    partitions: usize,
    worker: usize,
    peers: usize,
    resume: &Resume,
    errors: Rc<ErrorLog>,
) -> Result<Box<dyn Reader>> {
    Ok(match &config.input {
        Some(path) => Box::new(ReplayReader::open(path, worker, peers)?),
        None => {
            let offsets: HashMap<i32, i64> = resume.partitions.iter().map(|p| (p.partition, p.next_offset)).collect();
            Box::new(KafkaReader::open(config, partitions, worker, peers, &offsets, errors)?)
        }
    })
}
