//! Pacing and retries for AWS calls: a token bucket shared by every caller of one API, and
//! exponential backoff with full jitter on throttling and unavailability.
//!
//! ECS read APIs share per-account token buckets (publicly quoted: burst 100, refill 20/s for
//! ListTasks; about 20/s for DescribeTasks). ecsdns stays well below them by default and, since
//! every ECS read goes through one [`Pacer`], never hammers the API from several paths at once.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::aws::AwsError;

/// Counters of calls through a pacer.
#[derive(Debug, Default)]
pub struct CallStats {
    /// Calls sent (retries included).
    pub calls: AtomicU64,
    /// Calls that failed.
    pub errors: AtomicU64,
    /// Calls that were throttled.
    pub throttled: AtomicU64,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    jitter: u64,
}

/// A token bucket plus the retry policy.
pub struct Pacer {
    bucket: Mutex<Bucket>,
    rate: f64,
    burst: f64,
    attempts: u32,
    base_backoff: Duration,
    max_backoff: Duration,
    /// Counters.
    pub stats: CallStats,
}

impl Pacer {
    /// `rate` calls per second sustained, `burst` at once; failed calls are tried `attempts`
    /// times in all.
    pub fn new(rate: f64, burst: f64, attempts: u32) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64)
            | 1;
        Self {
            bucket: Mutex::new(Bucket {
                tokens: burst,
                last: Instant::now(),
                jitter: seed,
            }),
            rate: rate.max(0.001),
            burst: burst.max(1.0),
            attempts: attempts.max(1),
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            stats: CallStats::default(),
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut b = self.bucket.lock().await;
                let now = Instant::now();
                let refill = now.duration_since(b.last).as_secs_f64() * self.rate;
                b.tokens = (b.tokens + refill).min(self.burst);
                b.last = now;
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - b.tokens) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// A random share of the backoff window for attempt `n` (full jitter).
    async fn backoff(&self, n: u32) -> Duration {
        let window = self
            .base_backoff
            .saturating_mul(1u32 << n.min(16))
            .min(self.max_backoff);
        let mut b = self.bucket.lock().await;
        b.jitter ^= b.jitter << 13;
        b.jitter ^= b.jitter >> 7;
        b.jitter ^= b.jitter << 17;
        let share = (b.jitter % 1000) as f64 / 1000.0;
        window.mul_f64(share).max(Duration::from_millis(10))
    }

    /// Runs `call` under the bucket, retrying retryable failures with backoff.
    pub async fn call<T, F, Fut>(&self, what: &'static str, mut call: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let mut attempt = 0;
        loop {
            self.acquire().await;
            self.stats.calls.fetch_add(1, Ordering::Relaxed);
            let err = match call().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            if matches!(err, AwsError::Throttled(_)) {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            }
            attempt += 1;
            if !err.is_retryable() || attempt >= self.attempts {
                return Err(err);
            }
            let wait = self.backoff(attempt).await;
            tracing::debug!(call = what, attempt, ?wait, error = %err, "aws call failed; backing off");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[tokio::test(start_paused = true)]
    async fn bucket_paces_calls() {
        let pacer = Pacer::new(10.0, 5.0, 1);
        let start = Instant::now();
        for _ in 0..25 {
            pacer.acquire().await;
        }
        // 5 at once, then 20 at 10/s: about 2 s of (paused, virtual) time
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(2100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_throttling_then_gives_up_on_other_errors() {
        let pacer = Pacer::new(100.0, 100.0, 4);
        let tries = AtomicU32::new(0);
        let out = pacer
            .call("t", || async {
                match tries.fetch_add(1, Ordering::Relaxed) {
                    0 | 1 => Err(AwsError::Throttled("slow down".into())),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!(out.ok(), Some(7));
        assert_eq!(pacer.stats.throttled.load(Ordering::Relaxed), 2);
        let denied: Result<(), _> = pacer
            .call("t", || async {
                Err(AwsError::Other("AccessDenied".into()))
            })
            .await;
        assert!(denied.is_err());
        assert_eq!(
            pacer.stats.calls.load(Ordering::Relaxed),
            4,
            "no retry for AccessDenied"
        );
        let down: Result<(), _> = pacer
            .call("t", || async { Err(AwsError::Unavailable("503".into())) })
            .await;
        assert!(down.is_err());
        assert_eq!(
            pacer.stats.calls.load(Ordering::Relaxed),
            8,
            "4 attempts in all"
        );
    }
}
