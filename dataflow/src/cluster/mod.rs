//! A cluster of processes (`-n -p -h`) and what keeps it honest: connecting the processes with a bounded,
//! logged retry (`connect`), noticing a lost process, whether its connection failed or it fell silent, and
//! stopping promptly with one line and a distinct exit status (`liveness`, `exit`), a process's health endpoint
//! for an orchestrator's probes (`health`), and `dataflow cluster`,
//! which runs N local processes and restarts them all from the last checkpoint when one is lost
//! (`supervisor`, with its restart rule, pure, in `restart`). `docs/operations.md`, "A cluster", is the
//! operator's view of it.

pub mod connect;
pub mod exit;
pub mod health;
pub mod liveness;
pub mod restart;
pub mod supervisor;
