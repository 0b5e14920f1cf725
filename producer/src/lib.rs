//! The IoT device simulator as a library: its flags (`config`), the seeded device fleet and its record
//! generators (`sim`), the device table it publishes beside them (`devices`), the Kafka side of publishing (`kafka`), and the run summary (`summary`). The `producer`
//! binary wires them together; the launcher and the tests start it from `config::Args`, benchmarks reuse the
//! generator.

pub mod config;
pub mod devices;
pub mod kafka;
pub mod sim;
pub mod summary;
