//! The checkpoint protocol, in one place: exactly-once history across any crash. Step by step (the full
//! description, with its invariants, is `docs/ARCHITECTURE.md`, "Checkpoints"):
//!
//! 1. **Marker** (source, `source::operator`): every `--checkpoint-interval` each source makes its dead letters
//!    durable, then sends marker `n` carrying its partitions' offsets, clocks and counts to every window
//!    operator, on the same FIFO channels as its events.
//! 2. **Alignment** ([`align`]): a window operator holds back what a source sends after its marker `n` until
//!    every active source's marker `n` is in, then writes its open windows, one per line as it walks its state,
//!    to `pending-n/windows-w<j>.jsonl` ([`windows_file`], atomically; not synced, as the manifest that takes
//!    them in is) and emits barrier `n` with their number.
//!    Windows do not turn final while anything is held, so a checkpoint's final and open windows never overlap.
//! 3. **Stage** (`sink::parquet`): at barrier `n` the Parquet sink writes the final windows before it to hidden
//!    in-progress files, durable before it answers.
//! 4. **Part** ([`parts`]): each worker writes its part of `n` (staged files, how many open windows; worker 0
//!    also the partition states) to `pending-n/part-w<j>.json`, atomically (not synced), beside its windows file. A barrier
//!    whose windows could not be written gets no part, so its checkpoint does not commit.
//! 5. **Commit** ([`commit`]): worker 0, once every worker's part of `n` is in, merges them into the manifest
//!    `ckpt-n.json` (atomic write: the commit point; the open windows are streamed from the parts' files, never
//!    all in memory), then renames the staged files into place, prunes old
//!    manifests and commits the offsets to the consumer group (for lag tools; the manifest stays the truth).
//! 6. **Restore** ([`restore`]): on start the newest manifest that parses and matches the job's settings is
//!    restored: its renames are finished, visible files of newer checkpoints and every in-progress file are
//!    deleted, sources seek to its offsets with its clocks, and its open windows are re-sent to the workers
//!    that own their devices (any `-w`).
//! 7. **Stop** ([`stop`]): on Ctrl-C each source sends marker `STOP_ID` and reads nothing more; the round
//!    completes as a `Stop` barrier, and the worker loop waits until it is committed. A bounded run ends with a
//!    `Final` barrier instead, once every window is final.
//! 8. **Kafka output** ([`kafka_out`], `--sink-topic`): each worker's transaction of checkpoint `n` commits only
//!    once manifest `n` has; the manifest lists the files whose transaction is not yet confirmed, and a restored
//!    job publishes those of them its writers' registers in Kafka do not cover.
//!
//! Invariant: a (device, window) is in the history iff a committed manifest covers the barrier it preceded; its
//! events are then behind the manifest's offsets, so a restored job never counts them again. The files' format
//! is [`format`], their operations [`store`].

//! The stages meet the protocol only through the interface exported here (the submodules are private):
//! [`StateStore`] (what a stage saves at a barrier, gets back on a restore, and learns of commits; its table is
//! in `state.rs`), [`Alignment`] (the window operator's side of step 2), [`CommitReport`] (how a two-phase output
//! reports its commits), [`SinkRecovery`] and [`Fate`] (the Kafka output's rules), and [`Resume`] (a worker's
//! share of a restored checkpoint). The job itself wires the protocol's operators ([`write_parts`],
//! [`commit()`]) and runs its start and stop ([`on_start`], [`Restored`], [`StopProgress`]).

mod align;
mod commit;
mod format;
mod kafka_out;
mod layout;
mod parts;
mod restore;
mod segment;
mod state;
mod stop;
mod store;
mod table_file;
mod windows_file;

pub use align::{Aligned, Alignment};
pub use commit::{CommitSetup, commit};
pub use format::{Identity, UdfIdentity};
pub use kafka_out::{Fate, SinkRecovery};
pub use parts::{CommitReport, write_parts};
pub use restore::{Restored, Resume, on_start};
pub use state::StateStore;
pub use stop::{STOP_WITHIN, StopProgress, await_stop_checkpoint};
pub use store::newest_committed;
pub use table_file::{Saved, TableSnapshot};
pub use windows_file::Visit;
