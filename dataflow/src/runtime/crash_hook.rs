//! Test hooks that kill the process at a named point of a protocol, so integration tests can crash it exactly
//! between two steps: `IOT_TEST_SINK_CRASH=commit:N|republish:N` (the Kafka output: right before its N-th
//! transaction commit, after the manifest committed, or before the N-th commit of a recovery) and
//! `IOT_TEST_COMPACT_CRASH=before-swap:N|after-swap:N` (compaction: with the N-th device folder's new contents
//! built but not swapped in, or swapped in but the old contents not yet deleted). Unset in production.

/// The point and count a hook variable asks for.
fn crash_point(var: &str) -> Option<(String, u64)> {
    let v = std::env::var(var).ok()?;
    let (what, n) = v.split_once(':')?;
    Some((what.to_string(), n.parse().ok()?))
}

/// Counts a pass through `point` and kills the process (as SIGKILL would: no cleanup) when `var` asks for this
/// pass.
pub fn maybe_crash(var: &str, point: &str, count: &mut u64) {
    *count += 1;
    if let Some((what, n)) = crash_point(var)
        && what == point
        && *count == n
    {
        eprintln!("dataflow: test hook {var}={what}:{n}: killing the process");
        std::process::abort();
    }
}
