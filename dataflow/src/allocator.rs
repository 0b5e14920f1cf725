//! The job's global allocator: jemalloc, configured to give freed memory back to the system within a second from a
//! background thread. glibc's allocator kept the peaks of checkpoints and rolls (bursts of many short-lived
//! buffers on several threads, librdkafka's among them) as resident memory for good; jemalloc purges them
//! without the contention that capping glibc's arenas brought (BENCHMARKS.md, "Memory"). UDF argument vectors
//! are still allocated with the system allocator, as the plugins free them (`udf::abi`).

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once at its start (`MALLOC_CONF`-style; the `_RJEM_MALLOC_CONF` environment variable
/// still overrides them): purge dirty pages after 1 s from a background thread, and do not keep them as
/// "muzzy" (lazily freed) pages, which still count as resident.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static malloc_conf: Conf = Conf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A `const char *` that can live in a static.
#[repr(transparent)]
struct Conf(*const std::ffi::c_char);

// SAFETY: the pointer is to a string literal, immutable and alive for the whole program.
unsafe impl Sync for Conf {}
