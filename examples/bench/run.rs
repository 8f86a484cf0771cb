//! The load driver: a fixed pool of tokio tasks pulling operation numbers
//! from one shared atomic counter until the count or the time limit is
//! reached, timing each operation; and the percentile arithmetic.
//!
//! It must never retry: a failed operation is counted as an error, once.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one operation did.
pub struct Done {
    /// HTTP requests it sent.
    pub requests: u32,
    /// Why it failed (any non-2xx, a transport error, or a wrong answer).
    pub error: Option<String>,
}

impl Done {
    pub fn ok(requests: u32) -> Done {
        Done {
            requests,
            error: None,
        }
    }

    pub fn failed(requests: u32, why: String) -> Done {
        Done {
            requests,
            error: Some(why),
        }
    }
}

/// The result of one measurement.
#[derive(Default)]
pub struct Outcome {
    pub ops: u64,
    pub requests: u64,
    pub errors: u64,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// One entry per operation, in microseconds.
    pub latencies_us: Vec<u32>,
    pub elapsed: Duration,
    /// The time limit cut the run short.
    pub timed_out: bool,
}

impl Outcome {
    /// Percentile `p` (0..=100) in milliseconds, nearest rank.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        percentile_us(&mut self.latencies_us, p) as f64 / 1000.0
    }

    pub fn record_error(&mut self, why: String) {
        self.errors += 1;
        if self.error_samples.len() < 5 {
            self.error_samples.push(why);
        }
    }
}

/// Nearest-rank percentile of microsecond samples; sorts in place.
pub fn percentile_us(samples: &mut [u32], p: f64) -> u32 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// Runs `op(0..total)` on `concurrency` tasks, stopping at `total` or `limit`.
pub async fn drive<F, Fut>(total: usize, concurrency: usize, limit: Duration, op: F) -> Outcome
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Done> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(Mutex::new(Vec::<String>::new()));
    let start = Instant::now();
    let deadline = start + limit;
    let per_task = total / concurrency.max(1) + 1;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (op, next, samples) = (op.clone(), next.clone(), samples.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome {
                latencies_us: Vec::with_capacity(per_task),
                ..Outcome::default()
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                if Instant::now() >= deadline {
                    out.timed_out = true;
                    break;
                }
                let t = Instant::now();
                let done = op(i).await;
                let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                out.latencies_us.push(us);
                out.ops += 1;
                out.requests += u64::from(done.requests);
                if let Some(why) = done.error {
                    out.errors += 1;
                    let mut s = samples.lock().expect("samples");
                    if s.len() < 5 {
                        s.push(why);
                    }
                }
            }
            out
        }));
    }
    let mut all = Outcome::default();
    for task in tasks {
        match task.await {
            Ok(part) => {
                all.ops += part.ops;
                all.requests += part.requests;
                all.errors += part.errors;
                all.timed_out |= part.timed_out;
                all.latencies_us.extend(part.latencies_us);
            }
            Err(e) => all.record_error(format!("a load task panicked: {e}")),
        }
    }
    all.elapsed = start.elapsed();
    all.error_samples
        .extend(samples.lock().expect("samples").drain(..));
    all
}

/// A reproducible pseudo-random number for operation `i` (splitmix64).
pub fn mix(i: u64, seed: u64) -> u64 {
    let mut z = i.wrapping_add(seed).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::percentile_us;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(percentile_us(&mut v, 50.0), 50);
        assert_eq!(percentile_us(&mut v, 99.0), 99);
        assert_eq!(percentile_us(&mut v, 100.0), 100);
        assert_eq!(percentile_us(&mut [7], 50.0), 7);
        assert_eq!(percentile_us(&mut [], 50.0), 0);
    }
}
