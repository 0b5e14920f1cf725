//! Whole jobs run in this process through `dataflow::job`, as the binary runs them (flags → settings → prepare →
//! run), against the real broker: a bounded run ends `Finished` with the golden history; an unbounded run asked
//! to stop ends `Stopped` with its last checkpoint committed, and a bounded run resumed from that checkpoint
//! completes the history exactly once.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use dataflow::job::{self, Outcome, StopHandle};
use testkit::golden::{assert_history_matches, expected};
use testkit::run::DataflowRun;
use testkit::{newest_manifest, read_history, read_latest, read_topic, require_broker, seeded_topic, temp_dir};

/// A job of `topic` with its outputs under `dir`, as its flags make it.
fn job_on(brokers: &str, topic: &str, dir: &Path) -> DataflowRun {
    DataflowRun::kafka(brokers, topic)
        .out(&dir.join("out"))
        .deadletter(&dir.join("dead"))
        .workers(2)
}

#[test]
fn a_bounded_job_run_in_process_finishes_with_the_golden_history() {
    let brokers = require_broker();
    let topic = seeded_topic(&brokers, "inproc-bounded", 3000, 5);
    let dir = temp_dir("inproc-bounded");
    let settings = job_on(&brokers, &topic, &dir).bounded().args().check().unwrap();
    let outcome = job::run(settings, StopHandle::default()).expect("the job runs");
    assert_eq!(outcome, Outcome::Finished);
    assert_history_matches(
        &read_history(&dir.join("out")),
        &expected(&read_topic(&brokers, &topic)),
    );
}

#[test]
fn an_in_process_job_asked_to_stop_commits_a_last_checkpoint_that_a_later_run_resumes_exactly() {
    let brokers = require_broker();
    let topic = seeded_topic(&brokers, "inproc-stop", 3000, 6);
    let records = read_topic(&brokers, &topic);
    let dir = temp_dir("inproc-stop");
    let out = dir.join("out");

    let settings = job_on(&brokers, &topic, &dir).args().check().unwrap();
    let stop = StopHandle::default();
    let running = {
        let stop = stop.clone();
        thread::spawn(move || job::run(settings, stop))
    };
    // Stop once the snapshot has seen every record (the job never ends by itself: its input is unbounded).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let read = out.join(model::latest::FILE_NAME).exists().then(|| read_latest(&out));
        let counted = read.as_ref().map_or(0, |l| {
            let p = &l["pipeline"];
            ["events_total", "late_total", "bad_total"]
                .iter()
                .map(|k| p[k].as_u64().unwrap_or(0))
                .sum::<u64>()
        });
        if counted as usize >= records.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job read {counted} of {} records in 90 s",
            records.len()
        );
        thread::sleep(Duration::from_millis(200));
    }
    stop.stop();
    assert_eq!(
        running.join().unwrap().expect("the job stops cleanly"),
        Outcome::Stopped
    );
    assert!(newest_manifest(&out).is_some(), "the stop committed a checkpoint");

    // The open windows travel in that checkpoint: a bounded run from it completes the history, each window once.
    let settings = job_on(&brokers, &topic, &dir).bounded().args().check().unwrap();
    assert_eq!(job::run(settings, StopHandle::default()).unwrap(), Outcome::Finished);
    assert_history_matches(&read_history(&out), &expected(&records));
}
