//! DNS counters: queries by type and rcode, truncations, drops, TCP connections, and a latency
//! histogram.
//!
//! Counted, not traced: a span per query would cost more than the answer itself. Latency is timed
//! per UDP batch (from the receive call's return to the last send of its answers) and per TCP
//! query, so the hot path pays two clock reads per batch, not per query.
//!
//! Per-thread shards, summed when read (as Knot keeps per-thread statistics): each thread
//! counts into its own cache-line-aligned set, so UDP workers on different cores never write to
//! the same cache line on the query path.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::answer::{Outcome, Transport};

const QTYPES: [(u16, &str); 9] = [
    (1, "A"),
    (28, "AAAA"),
    (33, "SRV"),
    (16, "TXT"),
    (12, "PTR"),
    (6, "SOA"),
    (2, "NS"),
    (255, "ANY"),
    (0, "other"),
];
const RCODES: [(u16, &str); 7] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
    (u16::MAX, "other"),
];

/// Upper bounds of the latency histogram buckets, in microseconds (a last bucket takes the rest).
const LATENCY_BOUNDS_US: [u64; 11] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000, 50_000, 250_000,
];

/// Shards of [`DnsMetrics`]: more than the UDP workers of a typical host; threads past it share.
pub(crate) const SHARDS: usize = 16;

/// Hands each thread its shard, round-robin on first use.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard; `usize::MAX` until its first count.
    static SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// This thread's shard index (below [`SHARDS`]).
pub(crate) fn shard_index() -> usize {
    SHARD.with(|s| {
        let i = s.get();
        if i < SHARDS {
            return i;
        }
        let i = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
        s.set(i);
        i
    })
}

/// Shared DNS counters: per-thread shards, summed by [`DnsMetrics::snapshot`].
#[derive(Debug)]
pub struct DnsMetrics {
    shards: Box<[Shard; SHARDS]>,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        Self {
            shards: Box::new(std::array::from_fn(|_| Shard::default())),
        }
    }
}

/// One thread's counters, on cache lines of their own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Counters);

/// The counters of one shard. All relaxed atomics: they are statistics, not synchronisation.
#[derive(Debug, Default)]
struct Counters {
    udp: AtomicU64,
    tcp: AtomicU64,
    tls: AtomicU64,
    https: AtomicU64,
    certificate_reloads: AtomicU64,
    certificate_errors: AtomicU64,
    by_qtype: [AtomicU64; QTYPES.len()],
    by_rcode: [AtomicU64; RCODES.len()],
    truncated: AtomicU64,
    dropped: AtomicU64,
    tcp_connections: AtomicU64,
    tcp_rejected: AtomicU64,
    tcp_idle_closed: AtomicU64,
    panicked: AtomicU64,
    transfers: AtomicU64,
    transfer_messages: AtomicU64,
    rrl_dropped: AtomicU64,
    rrl_slipped: AtomicU64,
    latency: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    latency_sum_ns: AtomicU64,
}

/// The latency histogram at one moment, in the Prometheus layout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySnapshot {
    /// Bucket upper bounds in seconds; the last bucket (not listed) is +Inf.
    pub bounds: Vec<f64>,
    /// Answers per bucket (not cumulative): `bounds.len() + 1` entries.
    pub counts: Vec<u64>,
    /// Sum of all observed latencies, seconds.
    pub sum: f64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Queries over UDP (including dropped ones).
    pub udp: u64,
    /// Queries over TCP.
    pub tcp: u64,
    /// Queries over TLS (DoT).
    pub tls: u64,
    /// Queries over HTTPS (DoH).
    pub https: u64,
    /// TLS certificate reloads that took effect.
    pub certificate_reloads: u64,
    /// Changed TLS certificate files that did not load (the previous pair kept serving).
    pub certificate_errors: u64,
    /// Answered queries by question type.
    pub by_qtype: Vec<(&'static str, u64)>,
    /// Responses by rcode.
    pub by_rcode: Vec<(&'static str, u64)>,
    /// Responses sent with TC=1.
    pub truncated: u64,
    /// Packets dropped unanswered (too short to answer, or responses).
    pub dropped: u64,
    /// TCP connections accepted.
    pub tcp_connections: u64,
    /// TCP connections refused over the connection cap.
    pub tcp_rejected: u64,
    /// TCP connections closed for idleness or a stalled read.
    pub tcp_idle_closed: u64,
    /// Queries whose answer panicked (a bug; the worker survives it).
    pub panicked: u64,
    /// Zone transfer queries answered (AXFR, IXFR, refusals included).
    pub transfers: u64,
    /// Messages sent answering them.
    pub transfer_messages: u64,
    /// UDP answers dropped by rate limiting.
    pub rrl_dropped: u64,
    /// UDP answers sent truncated (TC=1) by rate limiting instead of dropped.
    pub rrl_slipped: u64,
    /// Time from receiving a query to sending its answer.
    pub latency: LatencySnapshot,
}

impl Counters {
    fn count(&self, qtype: Option<u16>, outcome: Outcome, transport: Transport) {
        let transport = match transport {
            Transport::Udp => &self.udp,
            Transport::Tcp => &self.tcp,
            Transport::Tls => &self.tls,
            Transport::Https => &self.https,
        };
        transport.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Dropped => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Answered { rcode, truncated } => {
                if let Some(qtype) = qtype {
                    let i = QTYPES
                        .iter()
                        .position(|(t, _)| *t == qtype)
                        .unwrap_or(QTYPES.len() - 1);
                    self.by_qtype[i].fetch_add(1, Ordering::Relaxed);
                }
                let i = RCODES
                    .iter()
                    .position(|(r, _)| *r == rcode)
                    .unwrap_or(RCODES.len() - 1);
                self.by_rcode[i].fetch_add(1, Ordering::Relaxed);
                if truncated {
                    self.truncated.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn tcp_connection(&self) {
        self.tcp_connections.fetch_add(1, Ordering::Relaxed);
    }

    fn tcp_rejected(&self) {
        self.tcp_rejected.fetch_add(1, Ordering::Relaxed);
    }

    fn tcp_idle_closed(&self) {
        self.tcp_idle_closed.fetch_add(1, Ordering::Relaxed);
    }

    fn panicked(&self) {
        self.panicked.fetch_add(1, Ordering::Relaxed);
    }

    fn rrl_dropped(&self) {
        self.rrl_dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn rrl_slipped(&self) {
        self.rrl_slipped.fetch_add(1, Ordering::Relaxed);
    }

    fn transfer(&self, messages: usize) {
        self.transfers.fetch_add(1, Ordering::Relaxed);
        self.transfer_messages
            .fetch_add(messages as u64, Ordering::Relaxed);
    }

    /// Records `answers` answers that each took `elapsed` from receipt to send.
    fn observe_latency(&self, elapsed: Duration, answers: u64) {
        if answers == 0 {
            return;
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.latency[i].fetch_add(answers, Ordering::Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_ns
            .fetch_add(ns.saturating_mul(answers), Ordering::Relaxed);
    }
}

impl DnsMetrics {
    /// This thread's counters.
    fn local(&self) -> &Counters {
        &self.shards[shard_index()].0
    }

    pub(crate) fn count(&self, qtype: Option<u16>, outcome: Outcome, transport: Transport) {
        self.local().count(qtype, outcome, transport);
    }

    pub(crate) fn tcp_connection(&self) {
        self.local().tcp_connection();
    }

    pub(crate) fn tcp_rejected(&self) {
        self.local().tcp_rejected();
    }

    pub(crate) fn tcp_idle_closed(&self) {
        self.local().tcp_idle_closed();
    }

    pub(crate) fn panicked(&self) {
        self.local().panicked();
    }

    pub(crate) fn rrl_dropped(&self) {
        self.local().rrl_dropped();
    }

    pub(crate) fn rrl_slipped(&self) {
        self.local().rrl_slipped();
    }

    pub(crate) fn transfer(&self, messages: usize) {
        self.local().transfer(messages);
    }

    /// Counts a TLS certificate reload: taken (`true`) or refused.
    pub(crate) fn certificate_reload(&self, ok: bool) {
        let c = self.local();
        let counter = if ok {
            &c.certificate_reloads
        } else {
            &c.certificate_errors
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records `answers` answers that each took `elapsed` from receipt to send.
    pub(crate) fn observe_latency(&self, elapsed: Duration, answers: u64) {
        self.local().observe_latency(elapsed, answers);
    }

    /// Reads every counter, summed over the threads' shards.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let sum = |f: &dyn Fn(&Counters) -> &AtomicU64| -> u64 {
            self.shards
                .iter()
                .map(|s| f(&s.0).load(Ordering::Relaxed))
                .sum()
        };
        MetricsSnapshot {
            udp: sum(&|c| &c.udp),
            tcp: sum(&|c| &c.tcp),
            tls: sum(&|c| &c.tls),
            https: sum(&|c| &c.https),
            certificate_reloads: sum(&|c| &c.certificate_reloads),
            certificate_errors: sum(&|c| &c.certificate_errors),
            by_qtype: QTYPES
                .iter()
                .enumerate()
                .map(|(i, (_, n))| (*n, sum(&|c| &c.by_qtype[i])))
                .collect(),
            by_rcode: RCODES
                .iter()
                .enumerate()
                .map(|(i, (_, n))| (*n, sum(&|c| &c.by_rcode[i])))
                .collect(),
            truncated: sum(&|c| &c.truncated),
            dropped: sum(&|c| &c.dropped),
            tcp_connections: sum(&|c| &c.tcp_connections),
            tcp_rejected: sum(&|c| &c.tcp_rejected),
            tcp_idle_closed: sum(&|c| &c.tcp_idle_closed),
            panicked: sum(&|c| &c.panicked),
            transfers: sum(&|c| &c.transfers),
            transfer_messages: sum(&|c| &c.transfer_messages),
            rrl_dropped: sum(&|c| &c.rrl_dropped),
            rrl_slipped: sum(&|c| &c.rrl_slipped),
            latency: LatencySnapshot {
                bounds: LATENCY_BOUNDS_US
                    .iter()
                    .map(|us| *us as f64 / 1e6)
                    .collect(),
                counts: (0..=LATENCY_BOUNDS_US.len())
                    .map(|i| sum(&|c| &c.latency[i]))
                    .collect(),
                sum: sum(&|c| &c.latency_sum_ns) as f64 / 1e9,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_sum_up() {
        let m = std::sync::Arc::new(DnsMetrics::default());
        let threads: Vec<_> = (0..SHARDS + 3)
            .map(|_| {
                let m = std::sync::Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        m.count(
                            Some(1),
                            Outcome::Answered {
                                rcode: 3,
                                truncated: true,
                            },
                            Transport::Udp,
                        );
                    }
                    m.observe_latency(Duration::from_micros(30), 10);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = m.snapshot();
        let n = (SHARDS as u64 + 3) * 1_000;
        assert_eq!(s.udp, n);
        assert_eq!(s.truncated, n);
        assert_eq!(s.by_qtype[0], ("A", n));
        assert_eq!(s.by_rcode[2], ("NXDOMAIN", n));
        assert_eq!(s.latency.counts[2], (SHARDS as u64 + 3) * 10);
        // More than one shard was written: the counters really are per thread.
        let used = m
            .shards
            .iter()
            .filter(|s| s.0.udp.load(Ordering::Relaxed) > 0)
            .count();
        assert!(used > 1, "{used}");
    }
}
