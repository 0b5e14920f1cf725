//! The one step with side effects before a job reads anything, in order: the output and dead-letter folders
//! (made, and checked writable), the input file, the cluster's host file, the output folder's lock, the UDF
//! crates (built or taken from the cache, and loaded), the Kafka queries (partitions, cluster id), the restore
//! of the newest checkpoint and the check of its offsets against the broker, and the sink topic. Whatever fails
//! here fails with a message naming the flag and the fix, before any input is read.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::{ClusterSettings, Settings};
use crate::checkpoint::{Identity, Restored, StateStore, UdfIdentity, on_start};
use crate::runtime::out_lock::OutLock;
use crate::source::Input;
use crate::source::data_loss::Clusters;
use crate::source::kafka::{cluster_id, judge_restore, partition_count};
use crate::udf::Udfs;

/// A job ready to run: its settings and what preparing them found.
pub struct Prepared {
    /// The settings.
    pub settings: Settings,
    /// The timely configuration of the cluster settings.
    pub timely_config: timely::Config,
    /// The loaded UDFs, shared by the workers.
    pub udfs: Arc<Udfs>,
    /// The input topic's partition count (0 for a file).
    pub partitions: usize,
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
    ensure_writable(&settings.deadletter.dir, "--deadletter")?;
    if let Input::File(path) = &settings.source.input
        && !path.is_file()
    {
        bail!("--input {} is not a readable file", path.display());
    }
    let timely_config = timely_config(&settings.cluster)?;
    let lock = OutLock::for_job(&settings.out)?;
    let udfs = Arc::new(settings.udfs.load()?);
    let (partitions, cluster_id) = match settings.source.input.kafka() {
        Some(input) => (partition_count(input)?, cluster_id(input)?),
        None => (0, None),
    };
    let identity = settings.source.input.kafka().map(|input| {
        let udfs = udfs
            .iter()
            .map(|u| UdfIdentity {
                name: u.name().to_string(),
                source_hash: u.source_hash().to_string(),
            })
            .collect();
        Identity::new(&input.topic, settings.window.kind, settings.source.lateness_ms, udfs)
    });
    let mut restored = on_start(&settings.out, settings.fresh, identity.as_ref())?;
    if let (Some(r), Some(input)) = (restored.as_mut(), settings.source.input.kafka()) {
        let clusters = Clusters {
            checkpointed: r.cluster_id(),
            now: cluster_id.as_deref(),
        };
        let states = judge_restore(input, partitions, clusters, r.partitions())?;
        r.set_partitions(&states);
    }
    if let Some(sink) = &settings.sink {
        crate::sink::kafka::register::ensure_topic(sink, partitions)?;
    }
    Ok(Prepared {
        store: StateStore::new(&settings.out),
        settings,
        timely_config,
        udfs,
        partitions,
        cluster_id,
        identity,
        restored,
        run: model::time::now_ms(),
        _lock: lock,
    })
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

/// The timely communication configuration of `-w -n -p -h` (the host file is read here).
pub fn timely_config(cluster: &ClusterSettings) -> Result<timely::Config> {
    use timely::CommunicationConfig;
    let communication = if cluster.processes > 1 {
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
        CommunicationConfig::Cluster {
            threads: cluster.workers,
            process: cluster.process,
            addresses,
            report: false,
            zerocopy: false,
        }
    } else if cluster.workers > 1 {
        CommunicationConfig::Process(cluster.workers)
    } else {
        CommunicationConfig::Thread
    };
    Ok(timely::Config {
        communication,
        worker: timely::WorkerConfig::default(),
    })
}
