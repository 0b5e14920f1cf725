//! Wire contracts of the IoT pipeline, kept in one place: the sensor event and its validation, tumbling-window
//! arithmetic and aggregates, the `latest.json` document, and the Parquet history (folder, schema, part-file
//! names, and the escaping of device ids into its partitions).

pub mod cli;
pub mod event;
pub mod history;
pub mod latest;
pub mod output;
pub mod partition;
pub mod sessions;
pub mod time;
pub mod udf;
pub mod value;
pub mod window;
pub mod window_kind;

pub use event::{BadEvent, Event, Field, Status, Validation, parse_event};
pub use latest::{Alert, FleetView, LatestDoc, LocationRollup, PipelineStats};
pub use udf::{UdfColumn, UdfKind, UdfType, UdfValue, UdfValues};
pub use window::{Aggregate, AggregateRecord, Window, WindowAgg};
pub use window_kind::{Hopping, WindowKind};

/// Default Kafka topic of sensor events.
pub const DEFAULT_TOPIC: &str = "iot-metrics";
/// Default Kafka topic of dead-lettered events.
pub const DEFAULT_DLQ_TOPIC: &str = "iot-metrics-dlq";
/// Default Kafka topic of the simulator's device table (`producer --devices-topic`, on in the launcher).
pub const DEFAULT_DEVICES_TOPIC: &str = "iot-devices";
/// Default partition count of the events topic.
pub const DEFAULT_PARTITIONS: i32 = 3;
