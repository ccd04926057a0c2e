//! Sliding windows with bounded memory: a rule's aggregate per group is kept as time buckets.
//!
//! A window of length `W` is split into buckets of width `max(1 s, W / 120)` (to the
//! millisecond) aligned to the epoch, so memory per (rule, group) is at most 121 accumulators
//! (120 inside the window and the one its start falls in) plus their running merge,
//! whatever the event rate: a few dozen bytes each, and for `count_distinct` at most ~3 KB
//! each (a HyperLogLog past 128 values), so at most ~380 KB for a group of a distinct rule.
//! **Precision at the edge:** the window always covers whole buckets, so an event older than
//! `W` by less than one bucket width may still count (and drops out at the next bucket
//! boundary); for `7d` that is at most 84 minutes, for `5m` 2.5 seconds, for `30s` 1 second.
//! **Late and out-of-order events** count in the bucket of their event time as long as that
//! bucket is still inside the window; older ones are ignored (they are still stored).

use super::aggregate::{Accumulator, AggregateFunction};
use std::collections::VecDeque;
use std::time::Duration;

/// Buckets per window: the edge precision is 1/120 of the window.
pub const BUCKETS_PER_WINDOW: u64 = 120;

#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    function: AggregateFunction,
    window_ms: u64,
    width_ms: u64,
    /// (bucket start, its aggregate), oldest first.
    buckets: VecDeque<(u64, Accumulator)>,
    /// The merge of all buckets, kept up to date as values arrive, so reading the window's
    /// value costs O(1) instead of a merge of up to 121 buckets.
    running: Accumulator,
    /// A bucket expired that cannot be subtracted (min, max, count_distinct): `running` is
    /// merged afresh from the remaining buckets when next read, once per bucket boundary.
    stale: bool,
}

impl Window {
    pub fn new(function: AggregateFunction, window: Duration) -> Self {
        let window_ms = (window.as_millis() as u64).max(1000);
        let width_ms = window_ms.div_ceil(BUCKETS_PER_WINDOW).max(1000);
        Self {
            function,
            window_ms,
            width_ms,
            buckets: VecDeque::new(),
            running: Accumulator::new(function),
            stale: false,
        }
    }

    /// Bucket width: the precision at the window's edge.
    pub fn bucket_width(&self) -> Duration {
        Duration::from_millis(self.width_ms)
    }

    fn bucket_start(&self, at_ms: u64) -> u64 {
        at_ms - at_ms % self.width_ms
    }

    /// The oldest bucket start still inside the window at `now_ms`: the bucket holding the
    /// window's start counts whole.
    fn horizon(&self, now_ms: u64) -> u64 {
        self.bucket_start(now_ms.saturating_sub(self.window_ms))
    }

    /// Counts one event at `at_ms` (event time) as seen at `now_ms`. Returns whether it
    /// counted: events outside the window (too old, or later than one bucket ahead of now)
    /// do not.
    pub fn observe(
        &mut self,
        at_ms: u64,
        now_ms: u64,
        observe: impl FnOnce(&mut Accumulator) -> bool,
    ) -> bool {
        self.expire(now_ms);
        let start = self.bucket_start(at_ms);
        if start < self.horizon(now_ms) || start > self.bucket_start(now_ms) + self.width_ms {
            return false;
        }
        // The value goes into an accumulator of its own first, then is merged into its
        // bucket and the running total: merging one value is exact for every function.
        let mut value = Accumulator::new(self.function);
        if !observe(&mut value) {
            return false;
        }
        if !self.stale {
            self.running.merge(&value);
        }
        let position = self.buckets.partition_point(|(s, _)| *s < start);
        match self.buckets.get_mut(position) {
            Some((s, bucket)) if *s == start => bucket.merge(&value),
            _ => self.buckets.insert(position, (start, value)),
        }
        true
    }

    /// Drops buckets that slid out of the window.
    pub fn expire(&mut self, now_ms: u64) {
        let horizon = self.horizon(now_ms);
        while self.buckets.front().is_some_and(|(s, _)| *s < horizon) {
            if let Some((_, gone)) = self.buckets.pop_front()
                && !self.stale
                && !self.running.unmerge(&gone)
            {
                self.stale = true;
            }
        }
        if self.buckets.is_empty() {
            // Start exact again: no float residue survives an empty window.
            self.running = Accumulator::new(self.function);
            self.stale = false;
        }
    }

    /// The window's aggregate at `now_ms`.
    pub fn value(&mut self, now_ms: u64) -> Option<f64> {
        self.expire(now_ms);
        if self.stale {
            let mut total = Accumulator::new(self.function);
            for (_, bucket) in &self.buckets {
                total.merge(bucket);
            }
            self.running = total;
            self.stale = false;
        }
        self.running.value()
    }

    /// Whether nothing is left in the window (the group can be forgotten once resolved).
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Approximate memory held by the window's accumulators, in bytes.
    pub fn bytes(&self) -> usize {
        size_of::<Self>()
            + self.running.bytes()
            + self
                .buckets
                .iter()
                .map(|(_, b)| 8 + b.bytes())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const MIN: u64 = 60_000;

    fn sum_window(window: Duration) -> Window {
        Window::new(AggregateFunction::Sum, window)
    }

    fn add(w: &mut Window, at: u64, now: u64, value: f64) -> bool {
        w.observe(at, now, |acc| acc.observe(Some(&json!(value))))
    }

    #[test]
    fn bucket_widths() {
        assert_eq!(
            sum_window(Duration::from_secs(7 * 86400)).bucket_width(),
            Duration::from_secs(5040)
        );
        assert_eq!(
            sum_window(Duration::from_secs(300)).bucket_width(),
            Duration::from_millis(2500)
        );
        assert_eq!(
            sum_window(Duration::from_secs(30)).bucket_width(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn values_slide_out_of_the_window() {
        let mut w = sum_window(Duration::from_secs(300));
        let t0 = 1_000 * MIN;
        assert!(add(&mut w, t0, t0, 10.0));
        assert!(add(&mut w, t0 + 2 * MIN, t0 + 2 * MIN, 5.0));
        assert_eq!(w.value(t0 + 4 * MIN), Some(15.0));
        assert_eq!(
            w.value(t0 + 5 * MIN + 2500),
            Some(5.0),
            "the first event left the window"
        );
        assert_eq!(w.value(t0 + 8 * MIN), Some(0.0));
        assert!(w.is_empty());
    }

    #[test]
    fn late_events_count_in_their_own_bucket_and_too_late_ones_not_at_all() {
        let mut w = sum_window(Duration::from_secs(300));
        let now = 1_000 * MIN;
        assert!(
            add(&mut w, now - 3 * MIN, now, 7.0),
            "late but inside the window"
        );
        assert!(
            !add(&mut w, now - 6 * MIN, now, 100.0),
            "older than the window"
        );
        assert!(!add(&mut w, now + 10 * MIN, now, 100.0), "from the future");
        assert_eq!(w.value(now), Some(7.0));
        assert_eq!(
            w.value(now + 2 * MIN + 2500),
            Some(0.0),
            "the late event leaves on its own schedule"
        );
    }

    #[test]
    fn memory_is_bounded_by_the_bucket_count() {
        let mut w = sum_window(Duration::from_secs(7 * 86400));
        let start = 1_000_000 * MIN;
        for i in 0..100_000u64 {
            let at = start + i * 30_000; // one event every 30 s for ~35 days
            add(&mut w, at, at, 1.0);
        }
        assert!(
            w.buckets() <= BUCKETS_PER_WINDOW as usize + 1,
            "{} buckets",
            w.buckets()
        );
    }

    proptest! {
        /// The running total equals merging the buckets afresh.
        #[test]
        fn running_totals_equal_a_fresh_merge(values in prop::collection::vec((0u64..900_000, -1000i32..1000), 1..120), later in 0u64..900_000) {
            for function in [AggregateFunction::Count, AggregateFunction::Sum, AggregateFunction::Avg, AggregateFunction::Min, AggregateFunction::Max, AggregateFunction::CountDistinct] {
                let mut w = Window::new(function, Duration::from_secs(300));
                let base = 1_000 * MIN;
                for (offset, v) in &values {
                    let at = base + offset;
                    w.observe(at, at, |acc| acc.observe(Some(&json!(v))));
                }
                let now = base + 900_000 + later;
                let running = w.value(now);
                let mut fresh = Accumulator::new(function);
                for (_, bucket) in &w.buckets {
                    fresh.merge(bucket);
                }
                match (running, fresh.value()) {
                    (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-6, "{function:?}: {a} vs {b}"),
                    (a, b) => prop_assert_eq!(a, b),
                }
            }
        }

        /// Against an exact answer: the window's sum equals the sum of events whose bucket is
        /// inside the window, and differs from the exact sliding sum only by events less than
        /// one bucket older than the window.
        #[test]
        fn agrees_with_exact_answers(offsets in prop::collection::vec(0u64..600_000, 1..200), now_extra in 0u64..600_000) {
            let mut w = sum_window(Duration::from_secs(300));
            let base = 1_000 * MIN;
            let mut events: Vec<u64> = offsets.iter().map(|o| base + o).collect();
            events.sort_unstable();
            let now = base + 600_000 + now_extra;
            for at in &events {
                add(&mut w, *at, *at, 1.0);
            }
            let got = w.value(now).unwrap_or(0.0);
            let exact = events.iter().filter(|at| **at > now - 300_000).count() as f64;
            let with_edge = events.iter().filter(|at| **at + 300_000 + 2500 > now).count() as f64;
            prop_assert!(got >= exact && got <= with_edge, "got {got}, exact {exact}, edge {with_edge}");
        }
    }
}
