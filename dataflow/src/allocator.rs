//! The process's allocator: jemalloc, configured to give freed memory back to the system within a second from a
//! background thread. It is linked unprefixed, so it is both Rust's global allocator and the C `malloc` of the
//! whole process: librdkafka's fetched records (its largest use of memory, and the one that rises whenever a
//! worker reads less than arrives) are freed to jemalloc too, which purges them, where glibc kept the high-water
//! mark of its arenas resident (BENCHMARKS.md, "Memory"). UDF plugins allocate and free with the same `malloc`,
//! so the argument vectors the job hands them (`udf::abi`, allocated with the system allocator because the
//! plugin frees them) still come from the allocator that frees them.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once at its start (the `MALLOC_CONF` environment variable still overrides them):
/// purge dirty pages after 1 s from a background thread, and do not keep them as "muzzy" (lazily freed) pages,
/// which still count as resident.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "malloc_conf")]
static malloc_conf: Conf = Conf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A `const char *` that can live in a static.
#[repr(transparent)]
struct Conf(*const std::ffi::c_char);

// SAFETY: the pointer is to a string literal, immutable and alive for the whole program.
unsafe impl Sync for Conf {}
