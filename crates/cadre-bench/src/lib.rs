//! Shared helpers for Cadre's benchmark binaries.

use std::time::Duration;

/// p50, p99 and mean of samples, in milliseconds.
pub fn summary(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .map_or(0.0, ms)
    };
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len().max(1) as f64;
    (at(0.50), at(0.99), mean)
}
