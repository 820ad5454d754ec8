//! Values from flags, the environment and the config file that need more than `FromStr`:
//! listen addresses that may be host names, and durations with units.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

/// Parses the HTTP API address: `HOST:PORT`, or `off` to serve no API.
pub fn parse_http_addr(s: &str) -> anyhow::Result<Option<SocketAddr>> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    if let Ok(addr) = s.parse() {
        return Ok(Some(addr));
    }
    // A host name (`localhost:8053`): its first address.
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(Some)
        .with_context(|| {
            format!(
                "invalid HTTP address {s:?}: expected IP:PORT or HOST:PORT (e.g. 127.0.0.1:8053, \
                 0.0.0.0:8053, localhost:8053), or off"
            )
        })
}

/// Parses `250ms`, `10s`, `5m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    api::parse_duration(s).with_context(|| {
        format!("invalid duration {s:?}: use a whole number with ms, s, m or h (e.g. 30s)")
    })
}
