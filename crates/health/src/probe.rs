//! One probe: a TCP connect, or an HTTP/1.1 GET whose status line decides.

use std::net::SocketAddr;
use std::time::Duration;

use model::CheckKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The outcome of one probe: whether it passed, and a short reason for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) passed: bool,
    pub(crate) reason: String,
}

impl Outcome {
    fn fail(reason: impl Into<String>) -> Self {
        Self {
            passed: false,
            reason: reason.into(),
        }
    }
}

/// The status line and headers are enough: a response is read up to this many bytes.
const MAX_HEAD: usize = 1024;

/// Probes `addr` once, giving up after `timeout`.
pub(crate) async fn probe(kind: &CheckKind, addr: SocketAddr, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, attempt(kind, addr)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::fail(format!("timed out after {} ms", timeout.as_millis())),
    }
}

async fn attempt(kind: &CheckKind, addr: SocketAddr) -> Outcome {
    let mut stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return Outcome::fail(io_reason(&e)),
    };
    // Close with a reset rather than FIN: a prober opening thousands of connections a second
    // must not leave them in TIME_WAIT (the way HAProxy ends its checks).
    let _ = stream.set_zero_linger();
    let path = match kind {
        CheckKind::Tcp => {
            return Outcome {
                passed: true,
                reason: "connected".into(),
            };
        }
        CheckKind::Http { path } => path,
    };
    let _ = stream.set_nodelay(true);
    let host = match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ecsdns-health\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return Outcome::fail(io_reason(&e));
    }
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < MAX_HEAD {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Outcome::fail(io_reason(&e)),
        }
    }
    status_verdict(&head)
}

/// Reads `HTTP/1.x NNN ...`: 2xx and 3xx pass.
pub(crate) fn status_verdict(head: &[u8]) -> Outcome {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code) if version.starts_with("HTTP/") && (100..600).contains(&code) => Outcome {
            passed: (200..400).contains(&code),
            reason: format!("HTTP {code}"),
        },
        _ if head.is_empty() => Outcome::fail("closed without a response"),
        _ => Outcome::fail("not an HTTP response"),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::TimedOut => "timed out".into(),
        K::HostUnreachable | K::NetworkUnreachable => "unreachable".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert!(status_verdict(b"HTTP/1.1 200 OK\r\n").passed);
        assert!(status_verdict(b"HTTP/1.0 302 Found\r\nLocation: /").passed);
        let v = status_verdict(b"HTTP/1.1 500 Internal Server Error\r\n");
        assert_eq!((v.passed, v.reason.as_str()), (false, "HTTP 500"));
        assert!(!status_verdict(b"HTTP/1.1 404 Not Found\r\n").passed);
        assert!(!status_verdict(b"SSH-2.0-OpenSSH\r\n").passed);
        assert_eq!(status_verdict(b"").reason, "closed without a response");
        assert!(!status_verdict(b"HTTP/1.1 999 what\r\n").passed);
    }
}
