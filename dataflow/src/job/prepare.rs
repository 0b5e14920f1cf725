//! The one step with side effects before a job reads anything, in order: the output and dead-letter folders
//! (made, and checked writable), the cluster's host file, the output folder's lock, the query (read, planned
//! with the UDFs' signatures and compiled: nothing starts before it is fully checked), the UDF crates (built or
//! taken from the cache, and loaded), the input resolved from the query's `WITH` options and the connection
//! flags (the flags win), the Kafka queries (partitions, cluster id), the restore of the newest checkpoint and
//! the check of its offsets against the broker, and the sink topic. Whatever fails here fails with a message
//! naming the flag, the query's line or the fix, before any input is read.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use sql::plan::{Connector, StartupMode};
use sql::{DefaultQuery, default_job_sql, plan_job};

use super::{ClusterSettings, Connection, QuerySource, Settings};
use crate::checkpoint::{Identity, Restored, StateStore, TableSnapshot, UdfIdentity, on_start};
use crate::query::Query;
use crate::runtime::kafka_client::KafkaClient;
use crate::runtime::out_lock::OutLock;
use crate::sink::deadletter::DeadLetterSettings;
use crate::sink::kafka::SinkSettings;
use crate::source::data_loss::Clusters;
use crate::source::kafka::{cluster_id, judge_restore, partition_count};
use crate::source::{Input, KafkaInput, SourceSettings, StartAt, TableSettings};
use crate::udf::{Signatures, Udfs};
use crate::window::WindowSettings;

/// The default Kafka bootstrap servers.
pub const DEFAULT_BROKERS: &str = "localhost:9092";
/// The default consumer group.
pub const DEFAULT_GROUP: &str = "iot-dataflow";

/// A job ready to run: its settings and what preparing them found and resolved.
pub struct Prepared {
    /// The settings.
    pub settings: Settings,
    /// The compiled query.
    pub query: Arc<Query>,
    /// The source stage's settings, its input resolved.
    pub source: SourceSettings,
    /// The window stage's settings.
    pub window: WindowSettings,
    /// The dead-letter stage's settings.
    pub deadletter: DeadLetterSettings,
    /// The Kafka output's settings.
    pub sink: Option<SinkSettings>,
    /// How the workers are connected: threads of this process, or a cluster's addresses.
    pub network: Network,
    /// The loaded UDFs, shared by the workers.
    pub udfs: Arc<Udfs>,
    /// The input topic's partition count (0 for a file).
    pub partitions: usize,
    /// The versioned table's settings, when the query has a temporal join.
    pub table: Option<TableSettings>,
    /// The versioned table of the checkpoint resumed from, when the query has a temporal join.
    pub table_restored: Option<TableSnapshot>,
    /// The Kafka cluster id of the input (`None`: a file, or not told).
    pub cluster_id: Option<String>,
    /// The checkpoints' identity (`None`: a file replay, which takes none).
    pub identity: Option<Identity>,
    /// The checkpoint resumed from.
    pub restored: Option<Restored>,
    /// The checkpoint protocol's storage in the output folder.
    pub store: StateStore,
    /// Identifies this run in file names (the time it was prepared, ms).
    pub run: u64,
    /// Held until the job ends: `dataflow compact` refuses to run under it.
    _lock: OutLock,
}

/// Prepares `settings` to run (see the module's doc for the order).
pub fn prepare(settings: Settings) -> Result<Prepared> {
    ensure_writable(&settings.out, "--out")?;
    ensure_writable(&settings.deadletter, "--deadletter")?;
    let network = network(&settings.cluster)?;
    let lock = OutLock::for_job(&settings.out)?;
    let signatures = settings.udfs.signatures()?;
    let query = Arc::new(plan_query(&settings.query, &signatures)?);
    let builtin = query.builtin;
    let input = resolve_input(&query, &settings.connection)?;
    if let Input::File(path) = &input
        && !path.is_file()
    {
        bail!(
            "the input file {} is not a readable file (--input, or the query's 'path')",
            path.display()
        );
    }
    if let (Some(sink), Input::Kafka(k)) = (&settings.sink, &input)
        && sink.topic == k.topic
    {
        bail!(
            "--sink-topic {} is also the job's input topic: pass another topic",
            sink.topic
        );
    }
    let udfs = Arc::new(signatures.build()?);
    let client = match &input {
        Input::Kafka(k) => k.client.clone(),
        Input::File(_) => KafkaClient {
            brokers: settings
                .connection
                .brokers
                .clone()
                .unwrap_or_else(|| DEFAULT_BROKERS.into()),
            options: settings.connection.options.clone(),
        },
    };
    let (partitions, cluster_id) = match input.kafka() {
        Some(k) => (partition_count(k)?, cluster_id(k)?),
        None => (0, None),
    };
    let table = match &query.job.join {
        Some(j) => {
            let table_input = resolve_table_input(j, &settings.connection, input.kafka().is_none())?;
            let table_partitions = match table_input.kafka() {
                Some(k) => partition_count(k)?,
                None => 0,
            };
            Some(TableSettings {
                input: table_input,
                partitions: table_partitions,
                name: j.table.name.clone(),
                lateness_ms: j.table.lateness_ms,
            })
        }
        None => None,
    };
    let identity = input.kafka().map(|k| {
        let udfs = udfs
            .iter()
            .map(|u| UdfIdentity {
                name: u.name().to_string(),
                source_hash: u.source_hash().to_string(),
            })
            .collect();
        Identity::new(
            &k.topic,
            query.window,
            query.lateness_ms(),
            udfs,
            &query.job.normalized,
            builtin,
        )
    });
    let mut restored = on_start(&settings.out, settings.fresh, identity.as_ref())?;
    let store = StateStore::new(&settings.out);
    let table_restored = match (&restored, &table) {
        (Some(r), Some(_)) => Some(store.table(r.id(), r.workers())?),
        _ => None,
    };
    if let (Some(r), Some(k)) = (restored.as_mut(), input.kafka()) {
        let clusters = Clusters {
            checkpointed: r.cluster_id(),
            now: cluster_id.as_deref(),
        };
        let states = judge_restore(k, partitions, clusters, r.partitions())?;
        r.set_partitions(&states);
    }
    let sink = settings.sink.as_ref().map(|s| SinkSettings {
        client: client.clone(),
        topic: s.topic.clone(),
        partitions: s.partitions,
        group: input
            .kafka()
            .map_or_else(|| DEFAULT_GROUP.to_string(), |k| k.group.clone()),
    });
    if let Some(sink) = &sink {
        crate::sink::kafka::register::ensure_topic(sink, partitions)?;
    }
    let rules = settings.rules;
    Ok(Prepared {
        source: SourceSettings {
            input,
            idle_timeout: rules.idle_timeout,
            max_future_ms: rules.max_future_ms,
            checkpoint_interval: rules.checkpoint_interval,
            stats_every: settings.trigger,
        },
        window: WindowSettings {
            kind: query.window,
            trigger: settings.trigger,
        },
        deadletter: DeadLetterSettings {
            dir: settings.deadletter.clone(),
            topic: settings.dlq_topic.clone().map(|t| (client, t)),
        },
        sink,
        store,
        query,
        settings,
        network,
        udfs,
        partitions,
        table,
        table_restored,
        cluster_id,
        identity,
        restored,
        run: model::time::now_ms(),
        _lock: lock,
    })
}

/// The text of the query `source` names: the `--sql` file's, or the built-in job's (with a column per UDF).
pub fn query_text(source: &QuerySource, signatures: &Signatures) -> Result<String> {
    Ok(match source {
        QuerySource::Builtin {
            window,
            lateness_ms,
            topic,
        } => default_job_sql(&DefaultQuery {
            window: window_spec(*window),
            lateness_ms: *lateness_ms,
            topic: topic.clone(),
            udf_columns: signatures.builtin_columns()?,
        }),
        QuerySource::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --sql {}: pass the path of a job file", path.display()))?,
    })
}

/// The query `source` names, planned with the UDFs' `signatures` and compiled; an error says the line, the
/// column and the fix.
pub fn plan_query(source: &QuerySource, signatures: &Signatures) -> Result<Query> {
    let text = query_text(source, signatures)?;
    let job = plan_job(&text, &signatures.functions()).map_err(|e| match source {
        QuerySource::File(path) => anyhow!("--sql {}: {e}", path.display()),
        QuerySource::Builtin { .. } => anyhow!("the built-in job does not plan (a --udf crate?): {e}"),
    })?;
    let builtin = matches!(source, QuerySource::Builtin { .. });
    Query::compile(job, text, builtin).map_err(|e| anyhow!("{e}"))
}

/// The input `settings` would read, found by planning its query (the UDF crates' signatures read, none built):
/// what a launcher points its simulator at.
pub fn planned_input(settings: &Settings) -> Result<Input> {
    let query = plan_query(&settings.query, &settings.udfs.signatures()?)?;
    resolve_input(&query, &settings.connection)
}

/// The topic of the versioned table `settings`' query joins, when it joins one read from Kafka: what a launcher
/// points its simulator's device table at.
pub fn planned_table_topic(settings: &Settings) -> Result<Option<String>> {
    let query = plan_query(&settings.query, &settings.udfs.signatures()?)?;
    Ok(match query.job.join.as_ref().map(|j| &j.table.connector) {
        Some(Connector::UpsertKafka { topic, .. } | Connector::Kafka { topic, .. }) => Some(topic.clone()),
        _ => None,
    })
}

/// The `sql` crate's spelling of a window kind.
fn window_spec(kind: model::WindowKind) -> sql::WindowSpec {
    match kind {
        model::WindowKind::Tumbling { size_ms } => sql::WindowSpec::Tumble { size_ms },
        model::WindowKind::Hopping(h) => sql::WindowSpec::Hop {
            slide_ms: h.slide_ms(),
            size_ms: h.size_ms(),
        },
        model::WindowKind::Session { gap_ms } => sql::WindowSpec::Session { gap_ms },
    }
}

/// The input of `query`'s table under the connection flags: `--input` (a file) or the table's connector, each
/// given flag winning over the table's `WITH` option.
pub fn resolve_input(query: &Query, flags: &Connection) -> Result<Input> {
    if let Some(path) = &flags.input {
        return Ok(Input::File(path.clone()));
    }
    match &query.job.table.connector {
        Connector::File { path } => {
            if flags.brokers.is_some() || flags.group.is_some() || flags.start.is_some() {
                tracing::warn!(
                    path,
                    "the query reads a file ('connector' = 'file'): the Kafka flags do nothing"
                );
            }
            Ok(Input::File(path.into()))
        }
        Connector::UpsertKafka { topic, .. } => bail!(
            "the table `{}` reads the upsert-kafka topic {topic}: such a versioned table is joined, not read; read the stream with 'connector' = 'kafka'",
            query.job.table.name
        ),
        Connector::Kafka {
            topic,
            bootstrap_servers,
            group_id,
            startup,
            properties,
        } => Ok(Input::Kafka(KafkaInput {
            client: client_of(flags, bootstrap_servers, properties),
            topic: topic.clone(),
            group: flags
                .group
                .clone()
                .or_else(|| group_id.clone())
                .unwrap_or_else(|| DEFAULT_GROUP.into()),
            start: flags.start.unwrap_or(match startup {
                Some(StartupMode::Latest) => StartAt::Latest,
                Some(StartupMode::Earliest) | None => StartAt::Earliest,
            }),
            bounded: flags.bounded,
            on_data_loss: flags.on_data_loss,
        })),
    }
}

/// The Kafka client of a table's `WITH` options under the connection flags (`--brokers` wins over
/// `'properties.bootstrap.servers'`; `--kafka-option`s follow the table's `'properties.*'`).
fn client_of(flags: &Connection, bootstrap_servers: &Option<String>, properties: &[(String, String)]) -> KafkaClient {
    let mut options = properties.to_vec();
    options.extend(flags.options.iter().cloned());
    KafkaClient {
        brokers: flags
            .brokers
            .clone()
            .or_else(|| bootstrap_servers.clone())
            .unwrap_or_else(|| DEFAULT_BROKERS.into()),
        options,
    }
}

/// The input of a temporal join's versioned table: its file, or its topic read from the earliest offset (the
/// connection flags win over its `WITH` options, as for the stream). A replay (`stream_is_file`) reads the
/// topic up to its end at start.
pub fn resolve_table_input(join: &sql::plan::TemporalJoin, flags: &Connection, stream_is_file: bool) -> Result<Input> {
    let (topic, bootstrap_servers, properties) = match &join.table.connector {
        Connector::File { path } => {
            let path = std::path::PathBuf::from(path);
            if !path.is_file() {
                bail!(
                    "the versioned table `{}` reads {}, which is not a readable file (its 'path' option)",
                    join.table.name,
                    path.display()
                );
            }
            return Ok(Input::File(path));
        }
        Connector::UpsertKafka {
            topic,
            bootstrap_servers,
            properties,
        } => (topic, bootstrap_servers, properties),
        Connector::Kafka {
            topic,
            bootstrap_servers,
            properties,
            ..
        } => (topic, bootstrap_servers, properties),
    };
    Ok(Input::Kafka(KafkaInput {
        client: client_of(flags, bootstrap_servers, properties),
        topic: topic.clone(),
        group: format!(
            "{}-{}",
            flags.group.clone().unwrap_or_else(|| DEFAULT_GROUP.into()),
            join.table.name
        ),
        start: StartAt::Earliest,
        bounded: flags.bounded || stream_is_file,
        on_data_loss: flags.on_data_loss,
    }))
}

/// Makes `dir` and checks that a file can be written there.
fn ensure_writable(dir: &Path, flag: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {flag} folder {}", dir.display()))?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| {
        format!(
            "{flag} folder {} is not writable: pick another with {flag}",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// How a job's workers are connected.
#[derive(Clone, Debug)]
pub enum Network {
    /// Threads of this process only.
    Local(timely::Config),
    /// A cluster: every process's `host:port`, by index (`cluster::connect` connects them).
    Cluster(Vec<String>),
}

/// The network of `-w -n -p -h` (the host file is read here).
pub fn network(cluster: &ClusterSettings) -> Result<Network> {
    use timely::CommunicationConfig;
    if cluster.processes > 1 {
        let addresses = match &cluster.hostfile {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read -h/--hostfile {}", path.display()))?;
                let hosts: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .take(cluster.processes)
                    .map(String::from)
                    .collect();
                if hosts.len() < cluster.processes {
                    bail!(
                        "-h/--hostfile {} lists {} addresses but -n is {}",
                        path.display(),
                        hosts.len(),
                        cluster.processes
                    );
                }
                hosts
            }
            None => (0..cluster.processes)
                .map(|i| format!("localhost:{}", 2101 + i))
                .collect(),
        };
        return Ok(Network::Cluster(addresses));
    }
    let communication = if cluster.workers > 1 {
        CommunicationConfig::Process(cluster.workers)
    } else {
        CommunicationConfig::Thread
    };
    Ok(Network::Local(timely::Config {
        communication,
        worker: timely::WorkerConfig::default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::OnDataLoss;

    fn query(text: &str) -> Query {
        Query::compile(plan_job(text, &[]).unwrap(), text.into(), false).unwrap()
    }

    const TABLE: &str = "CREATE TABLE t (id TEXT NOT NULL, at TIMESTAMP NOT NULL, WATERMARK FOR at AS at) WITH (
        'connector' = 'kafka', 'topic' = 'plant', 'format' = 'json', 'properties.bootstrap.servers' = 'k:1',
        'properties.group.id' = 'from-file', 'scan.startup.mode' = 'latest-offset',
        'properties.client.rack' = 'r1', 'properties.fetch.wait.max.ms' = '5');
        SELECT id, COUNT(*) AS n FROM t GROUP BY tumble(interval '1 second'), id";

    fn flags() -> Connection {
        Connection {
            brokers: None,
            options: Vec::new(),
            group: None,
            start: None,
            bounded: false,
            on_data_loss: OnDataLoss::Fail,
            input: None,
        }
    }

    #[test]
    fn the_querys_with_options_make_the_input_and_given_flags_win_over_them() {
        let q = query(TABLE);
        let Input::Kafka(k) = resolve_input(&q, &flags()).unwrap() else {
            panic!()
        };
        assert_eq!(
            (k.topic.as_str(), k.client.brokers.as_str(), k.group.as_str()),
            ("plant", "k:1", "from-file")
        );
        assert_eq!(k.start, StartAt::Latest);
        assert_eq!(k.client.config(&[]).get("client.rack"), Some("r1"));
        let given = Connection {
            brokers: Some("b:9092".into()),
            options: vec![("fetch.wait.max.ms".into(), "50".into())],
            group: Some("g".into()),
            start: Some(StartAt::Earliest),
            ..flags()
        };
        let Input::Kafka(k) = resolve_input(&q, &given).unwrap() else {
            panic!()
        };
        assert_eq!(
            (k.client.brokers.as_str(), k.group.as_str(), k.start),
            ("b:9092", "g", StartAt::Earliest)
        );
        let client = k.client.config(&[]);
        assert_eq!(
            (client.get("fetch.wait.max.ms"), client.get("client.rack")),
            (Some("50"), Some("r1"))
        );
        let file = Connection {
            input: Some("replay.jsonl".into()),
            ..flags()
        };
        assert!(matches!(resolve_input(&q, &file).unwrap(), Input::File(p) if p.ends_with("replay.jsonl")));
    }

    #[test]
    fn a_table_without_connection_options_reads_the_defaults() {
        let q = query(
            "CREATE TABLE t (id TEXT NOT NULL, at TIMESTAMP NOT NULL, WATERMARK FOR at AS at)
             WITH ('connector' = 'kafka', 'topic' = 'plant', 'format' = 'json');
             SELECT id, COUNT(*) AS n FROM t GROUP BY tumble(interval '1 second'), id",
        );
        let Input::Kafka(k) = resolve_input(&q, &flags()).unwrap() else {
            panic!()
        };
        assert_eq!(
            (k.client.brokers.as_str(), k.group.as_str(), k.start),
            (DEFAULT_BROKERS, DEFAULT_GROUP, StartAt::Earliest)
        );
    }
}
