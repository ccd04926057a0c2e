//! `count_distinct` against exact answers computed here: exact up to 128 distinct values,
//! within the documented error bound beyond, across merged buckets and as windows slide.

use super::aggregate::{
    Accumulator, AggregateFunction, DISTINCT_ERROR_BOUND, DISTINCT_EXACT_UP_TO,
    DISTINCT_STANDARD_ERROR,
};
use super::window::{BUCKETS_PER_WINDOW, Window};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

/// A deterministic stream of pseudo-random numbers per seed (splitmix64).
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The value drawn as `id`: strings and numbers alike, each id one distinct value.
fn value(id: u64) -> Value {
    if id.is_multiple_of(3) {
        json!(id)
    } else {
        json!(format!("user-{id}"))
    }
}

fn distinct() -> Accumulator {
    Accumulator::new(AggregateFunction::CountDistinct)
}

fn relative_error(estimate: f64, exact: usize) -> f64 {
    (estimate - exact as f64).abs() / exact as f64
}

#[test]
fn small_sets_are_exact_whole_and_merged() {
    for seed in 0..40u64 {
        let mut draws = Draws(seed);
        let universe = 1 + draws.below(DISTINCT_EXACT_UP_TO as u64);
        let ids: Vec<u64> = (0..300).map(|_| draws.below(universe)).collect();
        let exact = ids.iter().collect::<HashSet<_>>().len();
        let mut whole = distinct();
        let mut parts = [distinct(), distinct(), distinct()];
        for (i, id) in ids.iter().enumerate() {
            whole.observe(Some(&value(*id)));
            parts[i % 3].observe(Some(&value(*id)));
        }
        let [mut merged, b, c] = parts;
        merged.merge(&b);
        merged.merge(&c);
        assert_eq!(whole.value(), Some(exact as f64), "seed {seed}");
        assert_eq!(merged.value(), Some(exact as f64), "seed {seed}, merged");
    }
}

#[test]
fn large_sets_are_within_the_error_bound() {
    let mut squared = Vec::new();
    for (n, seeds) in [(10_000u64, 0..6u64), (100_000, 6..10), (1_000_000, 10..12)] {
        for seed in seeds {
            // Draw 1.5 n values from a universe of n: about 78 % of it, with repeats.
            let mut draws = Draws(seed);
            let mut exact = HashSet::new();
            let mut acc = distinct();
            for _ in 0..n * 3 / 2 {
                let id = draws.below(n) + seed * 10_000_000;
                exact.insert(id);
                acc.observe(Some(&value(id)));
            }
            let estimate = acc.value().unwrap_or(0.0);
            let error = relative_error(estimate, exact.len());
            assert!(
                error <= DISTINCT_ERROR_BOUND,
                "n {n}, seed {seed}: estimate {estimate} vs exact {}",
                exact.len()
            );
            assert!(acc.bytes() < 3_200, "{} bytes", acc.bytes());
            squared.push(error * error);
        }
    }
    // The sketch is as good as documented, not merely inside the wide bound.
    let rms = (squared.iter().sum::<f64>() / squared.len() as f64).sqrt();
    assert!(rms <= 2.0 * DISTINCT_STANDARD_ERROR, "rms error {rms}");
}

/// A `count_distinct` window over 5 minutes (2.5 s buckets) fed `per_second` draws from
/// `universe` users every second for 15 minutes, read every 20 s: the window's value against
/// the exact number of users whose events' buckets are inside the window. With `drift`, the
/// users drawn move on by one every `drift` seconds, so old ones leave the window for good.
fn slide(universe: u64, per_second: u64, drift: Option<u64>, seed: u64) -> Vec<(usize, f64)> {
    let window = Duration::from_secs(300);
    let mut w = Window::new(AggregateFunction::CountDistinct, window);
    let width = w.bucket_width().as_millis() as u64;
    let base = 1_000_000 * width;
    let mut draws = Draws(seed);
    let mut events: Vec<(u64, u64)> = Vec::new();
    let mut readings = Vec::new();
    for second in 0..900u64 {
        let now = base + second * 1000;
        for _ in 0..per_second {
            let id = draws.below(universe) + drift.map_or(0, |d| second / d);
            events.push((now, id));
            assert!(w.observe(now, now, |acc| acc.observe(Some(&value(id)))));
        }
        if second % 20 == 19 {
            let horizon = now - 300_000 - (now - 300_000) % width;
            let exact = events
                .iter()
                .filter(|(at, _)| at - at % width >= horizon)
                .map(|(_, id)| id)
                .collect::<HashSet<_>>()
                .len();
            readings.push((exact, w.value(now).unwrap_or(-1.0)));
            assert!(w.buckets() <= BUCKETS_PER_WINDOW as usize + 1);
        }
    }
    readings
}

#[test]
fn windows_merge_buckets_and_expire_exactly_while_small() {
    for seed in 0..3 {
        // 50 users at a time, moving on by one every 4 s: a 5-minute window holds up to 125.
        let readings = slide(50, 1, Some(4), seed);
        let counts: HashSet<usize> = readings.iter().map(|(exact, _)| *exact).collect();
        assert!(
            counts.len() > 5,
            "the count moves as users come and go: {counts:?}"
        );
        for (exact, value) in readings {
            assert!(exact <= DISTINCT_EXACT_UP_TO);
            assert_eq!(value, exact as f64, "seed {seed}");
        }
    }
}

#[test]
fn windows_stay_within_the_bound_as_large_sets_slide() {
    for seed in 0..2 {
        // 50 events a second from 100 000 users: ~14 000 distinct in a full window, and the
        // count rises, then holds as old buckets leave while new ones arrive.
        let readings = slide(100_000, 50, None, seed);
        assert!(readings.iter().any(|(exact, _)| *exact > 10_000));
        for (exact, value) in readings {
            let error = relative_error(value, exact);
            assert!(
                exact <= DISTINCT_EXACT_UP_TO || error <= DISTINCT_ERROR_BOUND,
                "seed {seed}: {value} vs exact {exact}"
            );
        }
    }
}

#[test]
fn memory_per_window_is_bounded_whatever_the_input() {
    // A 7-day window fed 2 million distinct values over 10 days: every bucket turns into a
    // full sketch, yet the window never holds more than 122 sketches of ~3 KB.
    let mut w = Window::new(
        AggregateFunction::CountDistinct,
        Duration::from_secs(7 * 86_400),
    );
    let start = 1_000_000 * w.bucket_width().as_millis() as u64;
    let mut largest = 0;
    for i in 0..2_000_000u64 {
        let at = start + i * 432; // 10 days
        w.observe(at, at, |acc| acc.observe(Some(&json!(i))));
        if i % 50_000 == 0 {
            largest = largest.max(w.bytes());
        }
    }
    assert!(w.buckets() <= BUCKETS_PER_WINDOW as usize + 1);
    assert!(largest <= 122 * 3_200, "{largest} bytes");
    assert!(
        largest > 100 * 3_000,
        "the buckets did become sketches: {largest} bytes"
    );
}
