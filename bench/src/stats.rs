//! Latency samples and their summary.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Latencies of one measured operation.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    times: Vec<Duration>,
    wall: Duration,
}

impl Samples {
    /// Times `n` runs of `op`, one after the other.
    pub async fn time<F, Fut, T>(n: usize, mut op: F) -> Samples
    where
        F: FnMut(usize) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let mut times = Vec::with_capacity(n);
        let start = Instant::now();
        for i in 0..n {
            let t = Instant::now();
            let _ = op(i).await;
            times.push(t.elapsed());
        }
        Samples {
            times,
            wall: start.elapsed(),
        }
    }

    /// Builds samples from latencies measured elsewhere over `wall`.
    pub fn from(times: Vec<Duration>, wall: Duration) -> Samples {
        Samples { times, wall }
    }

    fn pct(&self, p: f64) -> Duration {
        if self.times.is_empty() {
            return Duration::ZERO;
        }
        let mut t = self.times.clone();
        t.sort();
        let i = ((t.len() as f64 - 1.0) * p).round() as usize;
        t[i]
    }

    /// Median.
    pub fn p50(&self) -> Duration {
        self.pct(0.50)
    }

    /// 95th percentile.
    pub fn p95(&self) -> Duration {
        self.pct(0.95)
    }

    /// 99th percentile.
    pub fn p99(&self) -> Duration {
        self.pct(0.99)
    }

    /// Operations per second over the wall time.
    pub fn per_sec(&self) -> f64 {
        self.times.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// As a JSON object (milliseconds).
    pub fn json(&self) -> Value {
        json!({
            "n": self.times.len(),
            "p50Ms": ms(self.p50()),
            "p95Ms": ms(self.p95()),
            "p99Ms": ms(self.p99()),
            "perSec": (self.per_sec() * 10.0).round() / 10.0,
        })
    }
}

/// A duration in milliseconds, to three decimals.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
