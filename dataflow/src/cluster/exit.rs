//! The exit statuses of `dataflow` (documented in `docs/operations.md`, "Exit statuses"), so that a supervisor,
//! Kubernetes or a script can tell a lost peer from a job error without reading the log.

/// The job ended: its input finished, or it was stopped and took its last checkpoint.
pub const OK: i32 = 0;
/// The job failed (a bad query or setting found while preparing, a data loss under `--on-data-loss fail`, a
/// history that could not be written, ...): the message says which; restarting alone does not help.
pub const FAILED: i32 = 1;
/// Bad flags (clap's own status).
pub const USAGE: i32 = 2;
/// A process of the cluster was lost (its connection failed, or it fell silent): restart every process; they
/// resume from the last committed checkpoint.
pub const PEER_LOST: i32 = 3;
/// The processes of the cluster could not all connect within `--connect-timeout` at start.
pub const PEERS_UNREACHABLE: i32 = 4;
/// `dataflow cluster` gave up: more restarts than `--max-restarts` within `--restart-window`.
pub const GAVE_UP: i32 = 5;
