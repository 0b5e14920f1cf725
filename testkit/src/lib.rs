//! Helpers for the integration tests, which run the real binaries against the real Kafka broker started by
//! `infra/kafka.sh` (the suite's `./test.sh` starts it; `IOT_TEST_BROKERS` points elsewhere). A missing broker
//! fails the test with a message saying how to start one: these tests never pass without Kafka. `run` starts
//! the binaries from their typed flags; the rest reads back what they wrote (topics, history, `latest.json`).

pub mod golden;
pub mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

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

/// Path of a binary of this workspace, built next to the running test (`cargo test --workspace` builds them).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "binary {} not built: run `cargo build --release --workspace` or ./test.sh",
        path.display()
    );
    path
}

/// Runs a command to completion with a time limit; returns stdout, panics with stderr on failure.
pub fn run_ok(cmd: &mut Command, limit: Duration) -> String {
    let out = run::Running::spawn(cmd).wait_ok(limit);
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs a command to completion with a time limit (killing it past the limit).
pub fn run(cmd: &mut Command, limit: Duration) -> std::process::Output {
    run::Running::spawn(cmd).wait(limit)
}

/// The `latest.json` a job wrote into its output folder.
pub fn read_latest(out: &std::path::Path) -> serde_json::Value {
    let path = out.join("latest.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// One row of the Parquet history, with its device id decoded from the partition folder.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    /// Device id (from `device_id=<escaped>`).
    pub device_id: String,
    /// Window start, epoch ms.
    pub window_start: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// Events.
    pub count: i64,
    /// Mean temperature.
    pub avg_temperature: f64,
    /// Mean humidity.
    pub avg_humidity: f64,
    /// Lowest battery.
    pub min_battery: f64,
    /// Highest battery.
    pub max_battery: f64,
    /// Population stddev of temperature.
    pub stddev_temperature: f64,
    /// Warn statuses.
    pub warn_count: i64,
    /// Error statuses.
    pub error_count: i64,
}

impl HistoryRow {
    /// The row with floats as bit patterns, for exact comparisons between runs.
    pub fn bits(&self) -> (String, i64, i64, i64, [u64; 5], i64, i64) {
        (
            self.device_id.clone(),
            self.window_start,
            self.window_end,
            self.count,
            [
                self.avg_temperature.to_bits(),
                self.avg_humidity.to_bits(),
                self.min_battery.to_bits(),
                self.max_battery.to_bits(),
                self.stddev_temperature.to_bits(),
            ],
            self.warn_count,
            self.error_count,
        )
    }
}

/// Reads every visible `part-*.parquet` of `<out>/parquet`, sorted by device and window. Panics if a
/// partition folder or file name breaks the layout, or if a file lies outside the folder.
pub fn read_history(out: &std::path::Path) -> Vec<HistoryRow> {
    use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType};

    let mut rows = Vec::new();
    for_each_history_batch(out, |device_id, batch| {
        let ts = |n: &str| {
            assert_eq!(
                batch.column_by_name(n).map(|c| c.data_type().clone()),
                Some(DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))),
                "{n} type"
            );
            column::<TimestampMillisecondType>(batch, n)
        };
        let int = |n: &str| column::<Int64Type>(batch, n);
        let float = |n: &str| column::<Float64Type>(batch, n);
        let (ws, we, count) = (ts("window_start"), ts("window_end"), int("count"));
        let (at, ah) = (float("avg_temperature"), float("avg_humidity"));
        let (minb, maxb, sd) = (float("min_battery"), float("max_battery"), float("stddev_temperature"));
        let (warn, err) = (int("warn_count"), int("error_count"));
        for i in 0..batch.num_rows() {
            rows.push(HistoryRow {
                device_id: device_id.to_string(),
                window_start: ws[i],
                window_end: we[i],
                count: count[i],
                avg_temperature: at[i],
                avg_humidity: ah[i],
                min_battery: minb[i],
                max_battery: maxb[i],
                stddev_temperature: sd[i],
                warn_count: warn[i],
                error_count: err[i],
            });
        }
    });
    rows.sort_by(|a, b| (&a.device_id, a.window_start).cmp(&(&b.device_id, b.window_start)));
    rows
}

/// The values of a primitive column of `batch`; panics naming the column if it is missing or of another type.
fn column<T: arrow::datatypes::ArrowPrimitiveType>(
    batch: &arrow::record_batch::RecordBatch,
    name: &str,
) -> Vec<T::Native> {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
        .as_any()
        .downcast_ref::<arrow::array::PrimitiveArray<T>>()
        .unwrap_or_else(|| panic!("column {name} is not {}", T::DATA_TYPE))
        .values()
        .to_vec()
}

/// The folder of a UDF crate of the project's `udfs/` workspace (e.g. `heat_index`, `fixtures/flaky_ratio`).
pub fn udf_crate(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("udfs").join(name);
    assert!(dir.join("Cargo.toml").is_file(), "no UDF crate at {}", dir.display());
    dir
}

/// One column of every visible history file of `<out>/parquet` read by name and cast to `Float64` (null where the
/// file holds null), keyed by (device id, window start in ms); files without the column are left out. Reads with
/// arrow directly, not through the job's own history code.
pub fn read_history_column(out: &Path, name: &str) -> BTreeMap<(String, i64), Option<f64>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type, TimestampMillisecondType};

    let mut values = BTreeMap::new();
    for_each_history_batch(out, |device_id, batch| {
        let Some(found) = batch.column_by_name(name) else {
            return;
        };
        let floats = arrow::compute::cast(found, &DataType::Float64).unwrap();
        let floats = floats.as_primitive::<Float64Type>();
        let starts = column::<TimestampMillisecondType>(batch, "window_start");
        for (i, start) in starts.iter().enumerate() {
            let v = (!floats.is_null(i)).then(|| floats.value(i));
            assert!(
                values.insert((device_id.to_string(), *start), v).is_none(),
                "{device_id} {start} twice"
            );
        }
    });
    values
}

/// Calls `f` with the device id and each record batch of every visible `part-*.parquet` of `<out>/parquet`.
/// Panics if a partition folder or file name breaks the layout.
fn for_each_history_batch(out: &Path, mut f: impl FnMut(&str, &arrow::record_batch::RecordBatch)) {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let Ok(dirs) = std::fs::read_dir(out.join("parquet")) else {
        return;
    };
    for dir in dirs {
        let dir = dir.unwrap().path();
        let name = dir
            .file_name()
            .unwrap()
            .to_str()
            .expect("utf-8 folder name")
            .to_string();
        let escaped = name
            .strip_prefix("device_id=")
            .unwrap_or_else(|| panic!("unexpected folder {name}"));
        let device_id = model::partition::unescape_partition_value(escaped).expect("percent-encoded id");
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let fname = path.file_name().unwrap().to_str().unwrap();
            if fname.starts_with('.') || fname.starts_with('_') {
                continue;
            }
            assert!(
                fname.starts_with("part-") && fname.ends_with(".parquet"),
                "unexpected file {fname}"
            );
            let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                f(&device_id, &batch.unwrap());
            }
        }
    }
}

/// A timely host file in `dir` for `processes` processes on loopback, each on a port free at the time of the call.
pub fn loopback_hostfile(dir: &Path, processes: usize) -> PathBuf {
    let lines: String = (0..processes)
        .map(|_| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            format!("127.0.0.1:{port}\n")
        })
        .collect();
    let hostfile = dir.join("hosts");
    std::fs::write(&hostfile, lines).unwrap();
    hostfile
}

/// The newest checkpoint manifest (`_checkpoints/ckpt-*.json`) under `out`, if any.
pub fn newest_manifest(out: &Path) -> Option<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(out.join("_checkpoints"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ckpt-"))
        .collect();
    names.sort();
    names.pop()
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
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer config");
    for (key, value) in records {
        let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
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

/// A fresh temporary folder.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_topic(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small deterministic generator for test inputs and schedules (print the seed so a failure can be replayed).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}
