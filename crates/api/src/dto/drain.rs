//! The drain answer: when a task is safe to stop.

use serde::{Deserialize, Serialize};

/// What DNS knows of one task's place in its answers (from [`crate::Operator::served`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedInfo {
    /// Task ARN.
    pub arn: String,
    /// Whether an answer (ours, or a secondary's) may still carry its address.
    pub serving: bool,
    /// What still carries it, while it is served.
    pub held_by: Option<String>,
    /// The last moment its address could have been handed out, ms since the epoch.
    pub last_served_ms: u64,
    /// The TTL of those answers, seconds.
    pub ttl: u32,
}

/// `GET /v1/tasks/{task}/drain`: when a task can stop without a client being handed an address
/// that no longer answers. Times are milliseconds since the Unix epoch on the server's clock;
/// `waitMs` says the same relative to the answer, for callers whose clock may differ.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Drain {
    /// Task ARN.
    pub task: String,
    /// Whether DNS (or a secondary) may still hand its address out.
    pub served: bool,
    /// What still carries it (`answers`, `secondary IP`), while served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// The last moment its address could have been handed out: now while served, `null` when
    /// it never was.
    pub last_served_ms: Option<u64>,
    /// The TTL of the answers that carried it (seconds); `null` when never served.
    pub ttl: Option<u32>,
    /// `lastServedMs + ttl + 1 s + margin` (the second: [`CACHE_CLOCK_MS`]): from then on no
    /// cache may hold the address. `null` while served.
    pub safe_at_ms: Option<u64>,
    /// Whether that time has passed (or the task was never served).
    pub safe: bool,
    /// Milliseconds from this answer to `safeAtMs` (0 when safe, `null` while served).
    pub wait_ms: Option<u64>,
    /// The server's clock when it answered.
    pub now_ms: u64,
}

/// How long past its TTL a cache may still hand out an answer, ms. Caches count TTLs in whole
/// seconds of their own clock (unbound and BIND store `now + ttl` in seconds and drop the entry
/// only once that second has passed), so an answer fetched just after a tick lives up to TTL + 1 s.
pub(crate) const CACHE_CLOCK_MS: u64 = 1_000;

impl Drain {
    /// The drain state of `arn` at `now_ms`: `served` is what DNS knows (`None`: never served).
    pub fn of(arn: String, served: Option<&ServedInfo>, margin_ms: u64, now_ms: u64) -> Self {
        let Some(s) = served else {
            return Self {
                task: arn,
                served: false,
                held_by: None,
                last_served_ms: None,
                ttl: None,
                safe_at_ms: None,
                safe: true,
                wait_ms: Some(0),
                now_ms,
            };
        };
        let safe_at = (!s.serving)
            .then(|| s.last_served_ms + u64::from(s.ttl) * 1000 + CACHE_CLOCK_MS + margin_ms);
        Self {
            task: arn,
            served: s.serving,
            held_by: s.held_by.clone(),
            last_served_ms: Some(s.last_served_ms),
            ttl: Some(s.ttl),
            safe_at_ms: safe_at,
            safe: safe_at.is_some_and(|at| at <= now_ms),
            wait_ms: safe_at.map(|at| at.saturating_sub(now_ms)),
            now_ms,
        }
    }
}
