//! Response rate limiting for UDP (RRL-style): a token bucket per client prefix (IPv4 /24,
//! IPv6 /56), so a forged source address cannot turn the server into an amplifier. Over the
//! limit, answers are dropped, except every `slip`-th one, which goes out truncated (TC=1, no
//! records): a real client behind that prefix retries over TCP, which proves its address and is
//! never limited.
//!
//! Each UDP worker owns its limiter (no shared state on the hot path). With a socket per worker
//! steered by client prefix (`steer`), all of a prefix's queries reach one worker, which applies
//! the whole rate; where steering is unavailable the rate is split between workers, since one
//! client's packets then spread over them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Rate limiting settings. Off by default: ecsdns answers resolvers inside a VPC, and one
/// resolver may rightly send thousands of queries a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RrlConfig {
    /// Responses per second per client prefix; 0 turns rate limiting off.
    pub responses_per_second: u32,
    /// Every `slip`-th limited response is sent truncated instead of dropped (0: drop all).
    pub slip: u32,
}

impl Default for RrlConfig {
    fn default() -> Self {
        Self {
            responses_per_second: 0,
            slip: 2,
        }
    }
}

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Send,
    Slip,
    Drop,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    limited: u32,
}

/// One worker's limiter.
pub(crate) struct Limiter {
    rate: f64,
    slip: u32,
    buckets: HashMap<u128, Bucket, ahash::RandomState>,
    swept: Instant,
}

/// Buckets kept at most; past it, buckets idle for a second (full again) are forgotten.
const MAX_BUCKETS: usize = 100_000;

fn prefix(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a) & 0xFFFF_FF00),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4) & 0xFFFF_FF00),
            None => (u128::from(a) & !((1u128 << 72) - 1)) | 1,
        },
    }
}

impl Limiter {
    /// A limiter for one of `workers` workers; `None` when limiting is off.
    pub(crate) fn new(config: RrlConfig, workers: usize) -> Option<Self> {
        (config.responses_per_second > 0).then(|| Self {
            rate: (f64::from(config.responses_per_second) / workers.max(1) as f64).max(1.0),
            slip: config.slip,
            buckets: HashMap::with_hasher(ahash::RandomState::new()),
            swept: Instant::now(),
        })
    }

    /// Takes one response's token for `ip` at `now`.
    pub(crate) fn check(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if self.buckets.len() >= MAX_BUCKETS && now.duration_since(self.swept).as_secs() >= 1 {
            self.buckets
                .retain(|_, b| now.duration_since(b.last).as_secs_f64() < 1.0);
            self.swept = now;
        }
        let rate = self.rate;
        let bucket = self.buckets.entry(prefix(ip)).or_insert(Bucket {
            tokens: rate,
            last: now,
            limited: 0,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Send;
        }
        bucket.limited = bucket.limited.wrapping_add(1);
        if self.slip > 0 && bucket.limited.is_multiple_of(self.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn limits_per_prefix_and_slips() {
        let config = RrlConfig {
            responses_per_second: 10,
            slip: 2,
        };
        assert!(
            Limiter::new(RrlConfig::default(), 1).is_none(),
            "off by default"
        );
        let mut l = Limiter::new(config, 1).unwrap();
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let same_prefix: IpAddr = "192.0.2.200".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let sent = (0..10).filter(|_| l.check(a, t) == Verdict::Send).count();
        assert_eq!(sent, 10, "the burst");
        let verdicts: Vec<Verdict> = (0..4).map(|_| l.check(same_prefix, t)).collect();
        assert_eq!(
            verdicts,
            [Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip],
            "one bucket per /24"
        );
        assert_eq!(
            l.check(other, t),
            Verdict::Send,
            "another prefix is not affected"
        );
        assert_eq!(
            l.check(a, t + Duration::from_millis(150)),
            Verdict::Send,
            "refilled"
        );
        let v6a: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        assert_eq!(prefix(v6a), prefix(v6b), "one /56");
        assert_ne!(prefix(v6a), prefix("2001:db8:1::1".parse().unwrap()));
    }
}
