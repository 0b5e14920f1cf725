//! The processing-time grid of live publication. Window operators emit the live aggregates that changed just
//! before each tick (`k x trigger - lead`, on the wall clock, so every worker and process shares the grid) and the
//! snapshot writer rewrites `latest.json` at the tick itself: a change reaches `latest.json` within one trigger,
//! where two unaligned timers took up to two.

use std::time::Duration;

/// How long before a tick the window operators publish: enough for their output to reach the snapshot writer.
pub fn lead(trigger: Duration) -> u64 {
    (millis(trigger) / 10).min(50)
}

/// The first grid time after `now_ms`: the smallest `k x trigger - lead` above it (all in ms).
pub fn next_after(now_ms: u64, trigger: Duration, lead_ms: u64) -> u64 {
    let t = millis(trigger);
    let shifted = now_ms + lead_ms;
    (shifted / t + 1) * t - lead_ms
}

/// Whether the grid time `next` has come at `now_ms`; if so, `next` moves to the following grid time. A wall
/// clock set back by more than a trigger also moves `next`, so that publication never waits for the clock to
/// catch up.
pub fn due(now_ms: u64, next: &mut u64, trigger: Duration, lead_ms: u64) -> bool {
    if now_ms >= *next {
        *next = next_after(now_ms, trigger, lead_ms);
        return true;
    }
    if *next > now_ms.saturating_add(millis(trigger)) {
        *next = next_after(now_ms, trigger, lead_ms);
    }
    false
}

fn millis(trigger: Duration) -> u64 {
    u64::try_from(trigger.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_multiples_of_the_trigger() {
        let t = Duration::from_millis(500);
        assert_eq!(next_after(1_000, t, 0), 1_500);
        assert_eq!(next_after(1_001, t, 0), 1_500);
        assert_eq!(next_after(1_499, t, 0), 1_500);
        assert_eq!(next_after(1_500, t, 0), 2_000);
    }

    #[test]
    fn publication_leads_the_snapshot_tick() {
        let t = Duration::from_millis(500);
        assert_eq!(lead(t), 50);
        assert_eq!(lead(Duration::from_secs(5)), 50);
        assert_eq!(lead(Duration::from_millis(100)), 10);
        assert_eq!(next_after(1_000, t, 50), 1_450);
        assert_eq!(next_after(1_449, t, 50), 1_450);
        assert_eq!(next_after(1_450, t, 50), 1_950);
        // Every publication time is followed by a snapshot tick `lead` later.
        for now in (0..5_000).step_by(7) {
            let live = next_after(now, t, 50);
            assert!(live > now);
            assert_eq!(next_after(live, t, 0), live + 50);
        }
    }

    #[test]
    fn due_fires_once_per_tick_and_survives_a_clock_set_back() {
        let t = Duration::from_millis(500);
        let mut next = next_after(1_000, t, 0);
        assert!(!due(1_200, &mut next, t, 0));
        assert!(due(1_500, &mut next, t, 0));
        assert_eq!(next, 2_000);
        assert!(!due(1_600, &mut next, t, 0));
        assert_eq!(next, 2_000);
        // The wall clock is set back an hour: the next tick is the grid's next one, not an hour away.
        let mut next = 3_601_500;
        assert!(!due(1_000, &mut next, t, 0));
        assert_eq!(next, 1_500);
        assert!(due(1_500, &mut next, t, 0));
    }

    #[test]
    fn a_one_millisecond_trigger_still_advances() {
        let t = Duration::from_millis(1);
        assert_eq!(lead(t), 0);
        assert_eq!(next_after(41, t, 0), 42);
    }
}
