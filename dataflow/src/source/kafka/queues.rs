//! Batch reads from librdkafka's per-partition fetch queues. `BaseConsumer::poll` hands out one message per call
//! and wraps each in an event, a clock read and a reference-counted allocation; here each owned partition's
//! queue is detached from the consumer queue (`rd_kafka_queue_forward(q, NULL)`) and read with
//! `rd_kafka_consume_batch_queue`, many messages per call, each message borrowed until it is handed back.
//! The consumer queue keeps the statistics, errors and any message that reached it before the detach, so the
//! reader still polls it first (see `KafkaReader::poll`). The only `unsafe` of the Kafka reader lives here.

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;

use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;

/// One owned partition's fetch queue, detached from the consumer queue. It must be dropped before the consumer
/// it was taken from (`KafkaReader` drops its queues first).
pub struct PartitionQueue {
    queue: NonNull<rd::rd_kafka_queue_t>,
    partition: i32,
}

impl PartitionQueue {
    /// Takes `partition`'s fetch queue of the client `rk` and detaches it, so that the partition's messages
    /// fetched from now on wait there instead of in the consumer queue. `None` for a topic name with a NUL or a
    /// partition librdkafka does not know.
    ///
    /// # Safety
    /// `rk` must be a live consumer handle that outlives the returned queue.
    pub unsafe fn detach(rk: *mut rd::rd_kafka_t, topic: &str, partition: i32) -> Option<PartitionQueue> {
        let topic = CString::new(topic).ok()?;
        // SAFETY: `rk` is live (the caller's promise) and `topic` a NUL-terminated string that outlives the call.
        let queue = NonNull::new(unsafe { rd::rd_kafka_queue_get_partition(rk, topic.as_ptr(), partition) })?;
        // SAFETY: `queue` was just returned by librdkafka and is not destroyed yet.
        unsafe { rd::rd_kafka_queue_forward(queue.as_ptr(), std::ptr::null_mut()) };
        Some(PartitionQueue { queue, partition })
    }

    /// The partition whose messages this queue holds.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Takes up to `slots.len()` messages waiting in the queue without blocking and hands each to `each`, in
    /// the partition's order; returns how many were taken. Each message is given back to librdkafka right after
    /// `each` returns.
    pub fn drain(&self, slots: &mut [*mut rd::rd_kafka_message_t], mut each: impl FnMut(Fetched<'_>)) -> usize {
        if slots.is_empty() {
            return 0;
        }
        // SAFETY: the queue is live; `slots` has room for `slots.len()` pointers, which librdkafka fills with
        // messages that the loop below hands back one by one.
        let n = unsafe { rd::rd_kafka_consume_batch_queue(self.queue.as_ptr(), 0, slots.as_mut_ptr(), slots.len()) };
        let n = usize::try_from(n).unwrap_or(0).min(slots.len());
        for &ptr in &slots[..n] {
            if let Some(message) = NonNull::new(ptr) {
                each(Fetched {
                    message,
                    _queue: PhantomData,
                });
            }
        }
        n
    }
}

impl Drop for PartitionQueue {
    fn drop(&mut self) {
        // SAFETY: the queue was returned by `rd_kafka_queue_get_partition` and is destroyed exactly once.
        unsafe { rd::rd_kafka_queue_destroy(self.queue.as_ptr()) };
    }
}

/// A message taken from a [`PartitionQueue`]: a record, or an error librdkafka reports for the partition. It is
/// given back to librdkafka when dropped.
pub struct Fetched<'q> {
    message: NonNull<rd::rd_kafka_message_t>,
    _queue: PhantomData<&'q PartitionQueue>,
}

impl Fetched<'_> {
    fn raw(&self) -> &rd::rd_kafka_message_t {
        // SAFETY: librdkafka owns the message until `drop` hands it back; nothing else writes to it meanwhile.
        unsafe { self.message.as_ref() }
    }

    /// The partition's error instead of a record: its code and librdkafka's text.
    pub fn error(&self) -> Option<(RDKafkaErrorCode, String)> {
        let raw = self.raw();
        if raw.err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return None;
        }
        // SAFETY: for an error message librdkafka returns a NUL-terminated text that lives as long as the message.
        let text = unsafe { rd::rd_kafka_message_errstr(self.message.as_ptr()) };
        let text = if text.is_null() {
            String::new()
        } else {
            // SAFETY: checked non-null above; valid until the message is destroyed, after this copy.
            unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
        };
        Some((RDKafkaErrorCode::from(raw.err), text))
    }

    /// The record's offset in its partition.
    pub fn offset(&self) -> i64 {
        self.raw().offset
    }

    /// The record's key, if any.
    pub fn key(&self) -> Option<&[u8]> {
        let raw = self.raw();
        // SAFETY: librdkafka's key pointer and length describe one buffer owned by the message.
        (!raw.key.is_null()).then(|| unsafe { std::slice::from_raw_parts(raw.key as *const u8, raw.key_len) })
    }

    /// The record's timestamp, epoch ms, when it has one.
    pub fn timestamp(&self) -> Option<i64> {
        let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: the message is valid until `drop`; librdkafka only reads it and writes the type.
        let ms = unsafe { rd::rd_kafka_message_timestamp(self.message.as_ptr(), &mut kind) };
        (kind != rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ms >= 0).then_some(ms)
    }

    /// The record's value, if any (`None` for a tombstone).
    pub fn payload(&self) -> Option<&[u8]> {
        let raw = self.raw();
        // SAFETY: librdkafka's payload pointer and length describe one buffer owned by the message.
        (!raw.payload.is_null()).then(|| unsafe { std::slice::from_raw_parts(raw.payload as *const u8, raw.len) })
    }
}

impl Drop for Fetched<'_> {
    fn drop(&mut self) {
        // SAFETY: the message came from `rd_kafka_consume_batch_queue` and is handed back exactly once.
        unsafe { rd::rd_kafka_message_destroy(self.message.as_ptr()) };
    }
}
