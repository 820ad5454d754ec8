//! Just enough HTTP/1.1 for two GETs (the drain answer and the ECS task metadata): std sockets,
//! one request per connection, a deadline on everything.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Options;

/// What the drain answer says.
#[derive(Debug)]
pub(crate) struct DrainAnswer {
    pub(crate) safe: bool,
}

/// Asks `GET /v1/tasks/{task}/drain?wait=…` and waits for the answer (at most `wait`, plus a
/// little for the answer to travel).
pub(crate) fn drain(options: &Options, task: &str, wait: Duration) -> Result<DrainAnswer, String> {
    let url = format!(
        "{}/v1/tasks/{}/drain?wait={}ms",
        options.api,
        encode_segment(task),
        wait.as_millis()
    );
    let body = get_json(
        &url,
        options.token.as_deref(),
        wait + Duration::from_secs(2),
    )?;
    let safe = body
        .get("safe")
        .and_then(Value::as_bool)
        .ok_or_else(|| format!("unexpected answer from {url}: {body}"))?;
    Ok(DrainAnswer { safe })
}

/// Percent-encodes one path segment (an ARN holds `/` and `:`).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GETs `url` (plain `http://`) and parses a 200 answer as JSON. Any other status is an error
/// carrying the server's message.
pub(crate) fn get_json(url: &str, token: Option<&str>, timeout: Duration) -> Result<Value, String> {
    let deadline = Instant::now() + timeout;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// is supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .collect();
    let mut stream = None;
    let mut last = format!("{authority}: no address");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        match TcpStream::connect_timeout(
            &addr,
            left.min(Duration::from_secs(2))
                .max(Duration::from_millis(1)),
        ) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last)?;
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|e| format!("{authority}: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{authority}: no answer in {:.1}s",
                timeout.as_secs_f64()
            ));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| format!("{authority}: {e}"))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{authority}: {e}")),
        }
        if raw.len() > 1 << 20 {
            return Err(format!("{authority}: answer too large"));
        }
    }
    let (status, body) =
        parse_response(&raw).ok_or_else(|| format!("{authority}: not an HTTP answer"))?;
    let json: Result<Value, _> = serde_json::from_slice(&body);
    if status != 200 {
        let message = json
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        return Err(format!("{url}: HTTP {status}: {message}"));
    }
    json.map_err(|e| format!("{url}: invalid JSON: {e}"))
}

/// Status code and body of a whole response (Content-Length, chunked, or until close).
fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name == "content-length" {
            length = value.parse::<usize>().ok();
        }
    }
    if chunked {
        return Some((status, dechunk(body)?));
    }
    let body = match length {
        Some(n) => body.get(..n)?.to_vec(),
        None => body.to_vec(),
    };
    Some((status, body))
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn responses_and_segments() {
        let (status, body) =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing").unwrap();
        assert_eq!((status, body), (200, b"{}".to_vec()));
        let (status, body) = parse_response(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((status, body), (404, b"abcde".to_vec()));
        assert!(parse_response(b"garbage").is_none());
        assert_eq!(
            encode_segment("arn:aws:ecs:us-east-1:1:task/c/abc"),
            "arn%3Aaws%3Aecs%3Aus-east-1%3A1%3Atask%2Fc%2Fabc"
        );
    }

    #[test]
    fn unreachable_is_an_error_within_the_deadline() {
        // A port nobody listens on: refused at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let started = Instant::now();
        let e = get_json(&format!("http://{addr}/x"), None, Duration::from_secs(3)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{e}");
        // A server that accepts and never answers: the deadline ends it.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let started = Instant::now();
        let e = get_json(
            &format!("http://{addr}/x"),
            None,
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(
            e.contains("no answer") || e.contains("timed out") || e.contains("Resource"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
