//! Active health checks: what to probe on a task, and the verdicts probes produce.
//!
//! A check is declared per service (ECS container `dockerLabels`, or the static endpoints file)
//! as a short spec, `tcp:PORT` or `http:PORT/path`, where PORT is a port name of the task or a
//! number. The prober (`crates/health`) turns verdicts into [`crate::Update::Probe`]s; the
//! registry combines them with ECS health to decide which tasks are usable.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a check declaration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckError {
    /// The spec is not `tcp:PORT` or `http:PORT/path`.
    #[error("check {spec:?}: {reason} (expected tcp:PORT or http:PORT/path)")]
    Spec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An option (interval, timeout, rise, fall) is out of range or unreadable.
    #[error("check option {option} = {value:?}: {reason}")]
    Option {
        /// Option name.
        option: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Which port of the task a check connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CheckPort {
    /// A port by the name the task gives it (resolved to that port's client-facing number, so
    /// dynamic host ports work).
    Named(Arc<str>),
    /// A fixed port number.
    Number(u16),
}

/// The protocol of a check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CheckKind {
    /// Passes when a TCP connection is accepted.
    Tcp,
    /// Passes on an HTTP status 2xx or 3xx for `GET path`.
    Http {
        /// Request path, starting with `/`.
        path: Arc<str>,
    },
}

/// One declared active check, shared by every task of a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Check {
    /// TCP connect or HTTP GET.
    pub kind: CheckKind,
    /// Port to probe.
    pub port: CheckPort,
    /// Time between probes of one task (each probe is jittered by up to a tenth of it).
    pub interval: Duration,
    /// Time a probe may take before it counts as failed.
    pub timeout: Duration,
    /// Consecutive passes that bring a failing task back.
    pub rise: u8,
    /// Consecutive failures that take a passing task out.
    pub fall: u8,
}

impl Check {
    /// Default interval: fast enough that a dead task leaves DNS within seconds.
    pub const INTERVAL: Duration = Duration::from_secs(2);
    /// Default timeout.
    pub const TIMEOUT: Duration = Duration::from_secs(1);
    /// Default rise and fall.
    pub const RISE: u8 = 2;
    /// Default fall.
    pub const FALL: u8 = 2;

    /// Parses `tcp:PORT` or `http:PORT/path` with the default timing.
    pub fn parse(spec: &str) -> Result<Self, CheckError> {
        let bad = |reason| CheckError::Spec {
            spec: spec.to_string(),
            reason,
        };
        let (proto, rest) = spec.trim().split_once(':').ok_or_else(|| bad("no ':'"))?;
        let (port, kind) = match proto.to_ascii_lowercase().as_str() {
            "tcp" => (rest, CheckKind::Tcp),
            "http" => {
                let (port, path) = match rest.find('/') {
                    Some(at) => (&rest[..at], &rest[at..]),
                    None => (rest, "/"),
                };
                if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                    return Err(bad("the path holds spaces or control characters"));
                }
                (port, CheckKind::Http { path: path.into() })
            }
            _ => return Err(bad("the protocol is not tcp or http")),
        };
        let port = match port.parse::<u16>() {
            Ok(0) => return Err(bad("port 0")),
            Ok(n) => CheckPort::Number(n),
            Err(_) if !port.is_empty() && crate::port_label(port).is_ok() => {
                CheckPort::Named(port.into())
            }
            Err(_) => return Err(bad("the port is neither a number nor a port name")),
        };
        Ok(Self {
            kind,
            port,
            interval: Self::INTERVAL,
            timeout: Self::TIMEOUT,
            rise: Self::RISE,
            fall: Self::FALL,
        })
    }

    /// Sets one option from its text form (`interval`/`timeout`: `500ms`, `2s`, `1m`;
    /// `rise`/`fall`: 1 to 10). Intervals are 100 ms to 1 h, timeouts at most the interval.
    pub fn set_option(&mut self, option: &str, value: &str) -> Result<(), CheckError> {
        let err = |option, reason| CheckError::Option {
            option,
            value: value.to_string(),
            reason,
        };
        match option {
            "interval" => {
                let d = parse_duration(value).ok_or_else(|| err("interval", "not a duration"))?;
                if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
                    return Err(err("interval", "must be between 100ms and 1h"));
                }
                self.interval = d;
            }
            "timeout" => {
                let d = parse_duration(value).ok_or_else(|| err("timeout", "not a duration"))?;
                if d < Duration::from_millis(10) {
                    return Err(err("timeout", "must be at least 10ms"));
                }
                self.timeout = d;
            }
            "rise" | "fall" => {
                let name = if option == "rise" { "rise" } else { "fall" };
                let n: u8 = value
                    .trim()
                    .parse()
                    .map_err(|_| err(name, "not a number"))?;
                if !(1..=10).contains(&n) {
                    return Err(err(name, "must be 1 to 10"));
                }
                if option == "rise" {
                    self.rise = n;
                } else {
                    self.fall = n;
                }
            }
            _ => {
                return Err(CheckError::Option {
                    option: "name",
                    value: option.to_string(),
                    reason: "not one of interval, timeout, rise, fall",
                });
            }
        }
        if self.timeout > self.interval {
            self.timeout = self.interval;
        }
        Ok(())
    }

    /// The port number to probe on a task: the named port's client-facing number, or the fixed
    /// number. `None` when the task has no port of that name.
    pub fn port_of(&self, task: &crate::Task) -> Option<u16> {
        match &self.port {
            CheckPort::Number(n) => Some(*n),
            CheckPort::Named(name) => task
                .ports
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(name))
                .map(|p| p.port),
        }
    }
}

impl fmt::Display for Check {
    /// The spec form, `tcp:http` or `http:8080/healthz`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = match &self.port {
            CheckPort::Named(n) => n.to_string(),
            CheckPort::Number(n) => n.to_string(),
        };
        match &self.kind {
            CheckKind::Tcp => write!(f, "tcp:{port}"),
            CheckKind::Http { path } => write!(f, "http:{port}{path}"),
        }
    }
}

/// `500ms`, `2s`, `1m`, or a bare number of seconds.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => (&s[..at], &s[at..]),
        None => (s, "s"),
    };
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// The verdict of a task's active check, as the registry holds it. Sent only when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckState {
    /// Whether the task passes (after rise/fall smoothing).
    pub passing: bool,
    /// Why: the last probe's outcome (`connected`, `HTTP 200`, `connection refused`, ...).
    pub reason: Arc<str>,
    /// When the verdict last changed, milliseconds since the Unix epoch.
    pub since_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let c = Check::parse("http:8080/healthz").unwrap();
        assert_eq!(c.port, CheckPort::Number(8080));
        assert_eq!(
            c.kind,
            CheckKind::Http {
                path: "/healthz".into()
            }
        );
        assert_eq!(c.to_string(), "http:8080/healthz");
        let c = Check::parse("TCP:http").unwrap();
        assert_eq!(
            (c.kind.clone(), c.port.clone()),
            (CheckKind::Tcp, CheckPort::Named("http".into()))
        );
        assert_eq!(Check::parse("http:web").unwrap().to_string(), "http:web/");
        for bad in [
            "",
            "tcp",
            "udp:53",
            "tcp:0",
            "tcp:",
            "http:80/a b",
            "tcp:no pe",
        ] {
            assert!(Check::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options() {
        let mut c = Check::parse("tcp:80").unwrap();
        c.set_option("interval", "500ms").unwrap();
        assert_eq!(c.interval, Duration::from_millis(500));
        assert_eq!(
            c.timeout,
            Duration::from_millis(500),
            "timeout capped by interval"
        );
        c.set_option("rise", "3").unwrap();
        c.set_option("fall", "1").unwrap();
        assert_eq!((c.rise, c.fall), (3, 1));
        assert!(c.set_option("interval", "10ms").is_err());
        assert!(c.set_option("rise", "0").is_err());
        assert!(c.set_option("fall", "x").is_err());
        assert!(c.set_option("colour", "red").is_err());
        c.set_option("interval", "1m").unwrap();
        assert_eq!(c.interval, Duration::from_secs(60));
    }
}
