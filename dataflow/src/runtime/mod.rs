//! Runtime helpers every stage may use and none owns: counting errors inside operators and raising the one that
//! stops the job (`errors`), the trigger grid of live output (`trigger`), atomic writes and syncs (`durable`),
//! a helper thread whose outcomes wake an operator (`helper_thread`), an in-order filter operator (`in_order`),
//! the output folder's lock (`out_lock`), the bounded wait for librdkafka clients (`teardown`), Kafka client
//! settings (`kafka_client`) and the test hooks that kill the process at a named point (`crash_hook`).

pub mod crash_hook;
pub mod durable;
pub mod errors;
pub mod helper_thread;
pub mod in_order;
pub mod kafka_client;
pub mod out_lock;
pub mod teardown;
pub mod trigger;
