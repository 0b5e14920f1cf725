//! The IoT device simulator as a library: the seeded device fleet and its record generators (`sim`), the Kafka
//! side of publishing (`kafka`), and the run summary (`summary`). The `producer` binary wires them to flags;
//! benchmarks and tests reuse the generator.

pub mod kafka;
pub mod sim;
pub mod summary;
