//! The test broker and what the tests do with it: finding it (or failing with how to start one), topics
//! (created, deleted, recreated, grown, records deleted), producing records, and reading a topic back, also as a
//! `read_committed` consumer of the job's exactly-once sink topic.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::{HistoryRow, run, run_ok};

/// Bootstrap servers of the test broker.
pub fn brokers() -> String {
    std::env::var("IOT_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

/// Panics with instructions unless the test broker answers.
pub fn require_broker() -> String {
    let brokers = brokers();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("consumer config");
    if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(15)) {
        panic!(
            "no Kafka broker at {brokers} ({e}): run the suite with ./test.sh, or start one with \
             `infra/kafka.sh start` (IOT_TEST_BROKERS selects another)"
        );
    }
    brokers
}

/// A topic name no other test run uses.
pub fn unique_topic(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Creates `topic` with `partitions` partitions and waits until its metadata is visible.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin config");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = futures_executor::block_on(admin.create_topics([&new], &opts)).expect("create_topics");
    for r in results {
        r.unwrap_or_else(|(name, code)| panic!("creating {name}: {code}"));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while partition_count(brokers, topic) != Some(partitions as usize) {
        assert!(Instant::now() < deadline, "topic {topic} did not appear within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn admin(brokers: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin config")
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)))
}

/// Deletes `topic` and waits until the broker no longer lists it.
pub fn delete_topic(brokers: &str, topic: &str) {
    let results =
        futures_executor::block_on(admin(brokers).delete_topics(&[topic], &admin_options())).expect("delete_topics");
    for r in results {
        r.unwrap_or_else(|(name, code)| panic!("deleting {name}: {code}"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while partition_count(brokers, topic).is_some() {
        assert!(
            Instant::now() < deadline,
            "topic {topic} was still listed 30 s after its deletion"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deletes `topic` and creates it again, empty, with `partitions` partitions (retrying while the broker still
/// finishes the deletion).
pub fn recreate_topic(brokers: &str, topic: &str, partitions: i32) {
    delete_topic(brokers, topic);
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let results =
            futures_executor::block_on(admin(brokers).create_topics([&new], &admin_options())).expect("create_topics");
        match results.into_iter().next().expect("one result") {
            Ok(_) => break,
            Err((name, code)) => {
                assert!(Instant::now() < deadline, "recreating {name}: {code}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while partition_count(brokers, topic) != Some(partitions as usize) {
        assert!(Instant::now() < deadline, "topic {topic} did not reappear within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deletes the records of `topic`'s `partition` below offset `before` (Kafka's DeleteRecords: the log start
/// moves to `before`), as retention would.
pub fn delete_records(brokers: &str, topic: &str, partition: i32, before: i64) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(before))
        .expect("tpl");
    let done =
        futures_executor::block_on(admin(brokers).delete_records(&tpl, &admin_options())).expect("delete_records");
    for e in done.elements() {
        if let Err(err) = e.error() {
            panic!("deleting records of {topic}/{partition} below {before}: {err}");
        }
    }
    assert_eq!(watermarks(brokers, topic, partition).0, before, "the log start moved");
}

/// Grows `topic` to `total` partitions and waits until the metadata shows them.
pub fn add_partitions(brokers: &str, topic: &str, total: usize) {
    use rdkafka::admin::NewPartitions;
    let grow = NewPartitions::new(topic, total);
    let results = futures_executor::block_on(admin(brokers).create_partitions([&grow], &admin_options()))
        .expect("create_partitions");
    for r in results {
        r.unwrap_or_else(|(name, code)| panic!("adding partitions to {name}: {code}"));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while partition_count(brokers, topic) != Some(total) {
        assert!(
            Instant::now() < deadline,
            "{topic} did not show {total} partitions within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The log start and end offsets `[low, high)` of one partition.
pub fn watermarks(brokers: &str, topic: &str, partition: i32) -> (i64, i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("consumer config");
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .expect("fetch_watermarks")
}

/// Partition count of `topic`, if it exists.
pub fn partition_count(brokers: &str, topic: &str) -> Option<usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("consumer config");
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).ok()?;
    md.topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|&n| n > 0)
}

/// One record read back from a topic.
#[derive(Clone, Debug)]
pub struct Consumed {
    /// Partition it sits in.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes (`None` for a tombstone).
    pub value: Option<Vec<u8>>,
    /// Record timestamp (producer create time), epoch ms.
    pub timestamp_ms: Option<i64>,
}

impl Consumed {
    /// A copy of a consumed message.
    fn of(msg: &impl Message) -> Consumed {
        Consumed {
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key().map(<[u8]>::to_vec),
            value: msg.payload().map(<[u8]>::to_vec),
            timestamp_ms: msg.timestamp().to_millis(),
        }
    }
}

/// A consumer (with `settings`) assigned every partition of `topic` at its start, and the partitions' end offsets
/// seen now.
fn from_the_start(brokers: &str, topic: &str, settings: &[(&str, &str)]) -> (BaseConsumer, Vec<i64>) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("testkit-{}", unique_topic("reader")))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    for (k, v) in settings {
        config.set(*k, *v);
    }
    let consumer: BaseConsumer = config.create().expect("consumer config");
    let partitions = partition_count(brokers, topic).unwrap_or_else(|| panic!("topic {topic} does not exist"));
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..partitions as i32 {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("fetch_watermarks");
        tpl.add_partition_offset(topic, p, Offset::Offset(low)).expect("tpl");
        ends.push(high);
    }
    consumer.assign(&tpl).expect("assign");
    (consumer, ends)
}

/// Reads every record of every partition of `topic`, from the beginning to the end offsets seen now.
pub fn read_topic(brokers: &str, topic: &str) -> Vec<Consumed> {
    let (consumer, ends) = from_the_start(brokers, topic, &[]);
    let partitions = ends.len();
    let total: i64 = ends.iter().sum();
    let mut out = Vec::with_capacity(total as usize);
    let mut next = vec![0i64; partitions];
    let deadline = Instant::now() + Duration::from_secs(120);
    while (0..partitions).any(|p| next[p] < ends[p]) {
        assert!(Instant::now() < deadline, "reading {topic} back took over 120 s");
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg.expect("consume");
        let p = msg.partition() as usize;
        if msg.offset() >= ends[p] {
            continue;
        }
        next[p] = msg.offset() + 1;
        out.push(Consumed::of(&msg));
    }
    out
}

/// Reads every committed record of `topic` as a `read_committed` consumer does, to the end of every partition
/// (waiting up to 60 s for transactions still open to finish).
pub fn read_committed(brokers: &str, topic: &str) -> Vec<Consumed> {
    let (consumer, ends) = from_the_start(brokers, topic, &[("isolation.level", "read_committed")]);
    let partitions = ends.len();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Transaction markers take offsets but are never delivered: the consumer's position, not the last record
    // read, tells when a partition is read to its end.
    let at_end = |c: &BaseConsumer| {
        let pos = c.position().expect("position");
        (0..partitions as i32).all(|p| match pos.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o >= ends[p as usize],
            _ => ends[p as usize] == 0,
        })
    };
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(msg) => {
                let msg = msg.expect("consume");
                out.push(Consumed::of(&msg));
            }
            None if at_end(&consumer) => break,
            None => assert!(
                Instant::now() < deadline,
                "reading {topic} (read_committed) took over 60 s"
            ),
        }
    }
    out
}

/// The final windows a `--sink-topic` holds, as history rows (its records' values are `latest.json` records),
/// each checked to be keyed by its device and final.
pub fn sink_rows(records: &[Consumed]) -> Vec<HistoryRow> {
    let ms = |v: &serde_json::Value| {
        let text = v.as_str().expect("an RFC 3339 time");
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .timestamp_millis()
    };
    let mut rows: Vec<HistoryRow> = records
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(r.value.as_deref().expect("a value")).expect("JSON");
            let device_id = v["device_id"].as_str().expect("device_id").to_string();
            assert_eq!(r.key.as_deref(), Some(device_id.as_bytes()), "keyed by device_id: {v}");
            assert_eq!(v["final"], true, "only final windows: {v}");
            HistoryRow {
                device_id,
                window_start: ms(&v["window_start"]),
                window_end: ms(&v["window_end"]),
                count: v["count"].as_i64().expect("count"),
                avg_temperature: v["avg_temperature"].as_f64().unwrap_or(f64::NAN),
                avg_humidity: v["avg_humidity"].as_f64().unwrap_or(f64::NAN),
                min_battery: v["min_battery"].as_f64().unwrap_or(f64::NAN),
                max_battery: v["max_battery"].as_f64().unwrap_or(f64::NAN),
                stddev_temperature: v["stddev_temperature"].as_f64().unwrap_or(f64::NAN),
                warn_count: v["warn_count"].as_i64().expect("warn_count"),
                error_count: v["error_count"].as_i64().expect("error_count"),
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.device_id, a.window_start).cmp(&(&b.device_id, b.window_start)));
    rows
}

/// A fresh 3-partition topic filled by a seeded producer run of `count` records from 8 devices, with late and
/// bad records among them (`ProducerRun::late_and_bad`).
pub fn seeded_topic(brokers: &str, prefix: &str, count: u64, seed: u64) -> String {
    let topic = unique_topic(prefix);
    let producer = run::ProducerRun::kafka(brokers, &topic)
        .devices(8)
        .rate(0.0)
        .count(count)
        .late_and_bad()
        .seed(seed);
    run_ok(&mut producer.command(), Duration::from_secs(120));
    topic
}

/// A record to produce: key and value (`None` value: tombstone).
pub type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Produces `(key, value)` records to `topic` and waits for every acknowledgement.
pub fn produce(brokers: &str, topic: &str, records: &[KeyValue]) {
    produce_to(brokers, topic, None, records);
}

/// Produces `(key, value)` records to `partition` of `topic` (`None`: the partition the key hashes to) and
/// waits for every acknowledgement.
pub fn produce_to(brokers: &str, topic: &str, partition: Option<i32>, records: &[KeyValue]) {
    let stamped: Vec<(KeyValue, Option<i64>)> = records.iter().map(|r| (r.clone(), None)).collect();
    produce_stamped(brokers, topic, partition, &stamped);
}

/// Produces `(key, value)` records each with its record timestamp (epoch ms; `None`: the producer's clock), as
/// [`produce_to`] does.
pub fn produce_stamped(brokers: &str, topic: &str, partition: Option<i32>, records: &[(KeyValue, Option<i64>)]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer config");
    for ((key, value), timestamp) in records {
        let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        if let Some(t) = timestamp {
            r = r.timestamp(*t);
        }
        if let Some(k) = key {
            r = r.key(k.as_slice());
        }
        if let Some(v) = value {
            r = r.payload(v.as_slice());
        }
        if let Some(p) = partition {
            r = r.partition(p);
        }
        loop {
            match producer.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(10));
                    r = back;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}
