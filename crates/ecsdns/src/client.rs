//! The operator subcommands (`services`, `endpoints`, `watch`, `reconcile`): a client of a
//! running ecsdns's HTTP API. Human tables by default, JSON with `--json`, and exit codes that
//! scripts can branch on (see [`Exit`]).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use api::dto::{Endpoint, ServiceDetail, ServiceEvent, ServiceList, ServiceSummary};

pub mod show;
mod watch;

/// Exit codes of the client subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It worked.
    Ok = 0,
    /// The API could not be reached, or failed (5xx, unreadable answer).
    Error = 1,
    /// Bad command line (clap's own code) or a 400 from the API.
    Usage = 2,
    /// No such service or task (404).
    NotFound = 3,
    /// A token is missing or wrong (401), or the action is disabled (403).
    Denied = 4,
    /// `endpoints --passing` found no passing endpoint.
    NonePassing = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Where the API is and how to authenticate.
#[derive(Debug, Clone)]
pub struct Target {
    /// Base URL, e.g. `http://127.0.0.1:8053`.
    pub api: String,
    /// Bearer token, if any.
    pub token: Option<String>,
}

impl Target {
    /// Resolves the token: a token file wins over a token given directly.
    pub fn new(
        api: &str,
        token_file: Option<&PathBuf>,
        token: Option<String>,
    ) -> Result<Self, String> {
        let token = match token_file {
            Some(path) => api::read_tokens(path)
                .map_err(|e| e.to_string())?
                .into_iter()
                .next(),
            None => token.filter(|t| !t.is_empty()),
        };
        Ok(Self {
            api: api.trim_end_matches('/').to_string(),
            token,
        })
    }

    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let mut r = client.request(method, format!("{}{path}", self.api));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }
}

/// A failed call, with the exit code it maps to.
struct Failure(Exit, String);

fn client(timeout: Option<Duration>) -> Result<reqwest::Client, Failure> {
    let mut b = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build().map_err(|e| Failure(Exit::Error, e.to_string()))
}

async fn send(target: &Target, r: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
    let response = r.send().await.map_err(|e| {
        Failure(
            Exit::Error,
            format!("cannot reach the ecsdns API at {}: {e}", target.api),
        )
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<api::ErrorBody>(&body)
        .map(|b| b.error)
        .unwrap_or(body);
    let exit = match status.as_u16() {
        400 => Exit::Usage,
        401 | 403 => Exit::Denied,
        404 => Exit::NotFound,
        _ => Exit::Error,
    };
    Err(Failure(exit, format!("{status}: {message}")))
}

async fn get_json<T: serde::de::DeserializeOwned>(
    target: &Target,
    path: &str,
) -> Result<(T, String), Failure> {
    let http = client(Some(Duration::from_secs(30)))?;
    let response = send(target, target.request(&http, reqwest::Method::GET, path)).await?;
    let text = response
        .text()
        .await
        .map_err(|e| Failure(Exit::Error, e.to_string()))?;
    let value = serde_json::from_str(&text)
        .map_err(|e| Failure(Exit::Error, format!("unexpected answer from the API: {e}")))?;
    Ok((value, text))
}

fn finish(result: Result<Exit, Failure>) -> ExitCode {
    match result {
        Ok(exit) => exit.into(),
        Err(Failure(exit, message)) => {
            eprintln!("ecsdns: {message}");
            exit.into()
        }
    }
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Lays out rows under a header, columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = String>, out: &mut String| {
        let cells: Vec<String> = cells.collect();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                let _ = write!(out, "{cell}");
            } else {
                let _ = write!(out, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push('\n');
    };
    line(&mut header.iter().map(|h| h.to_string()), &mut out);
    for row in rows {
        line(&mut row.iter().cloned(), &mut out);
    }
    out
}

fn summary_row(s: &ServiceSummary) -> Vec<String> {
    vec![
        s.cluster.clone(),
        s.service.clone(),
        s.kind.clone(),
        s.passing.to_string(),
        s.unhealthy.to_string(),
        s.starting.to_string(),
        s.draining.to_string(),
        if s.fail_open {
            format!("{} (fail-open)", s.dns_name)
        } else {
            s.dns_name.clone()
        },
    ]
}

/// `ecsdns services`
pub async fn services(target: &Target, cluster: Option<&str>, json: bool) -> ExitCode {
    finish(
        async {
            let path = match cluster {
                Some(c) => format!("/v1/services?cluster={}", encode(c)),
                None => "/v1/services".to_string(),
            };
            let (list, raw): (ServiceList, String) = get_json(target, &path).await?;
            if json {
                print(&format!("{raw}\n"));
            } else {
                let rows: Vec<Vec<String>> = list.services.iter().map(summary_row).collect();
                print(&table(
                    &[
                        "CLUSTER",
                        "SERVICE",
                        "KIND",
                        "PASSING",
                        "UNHEALTHY",
                        "STARTING",
                        "DRAINING",
                        "DNS NAME",
                    ],
                    &rows,
                ));
            }
            Ok(Exit::Ok)
        }
        .await,
    )
}

fn endpoint_row(e: &Endpoint) -> Vec<String> {
    vec![
        e.task_id.clone(),
        format!("{:?}", e.state).to_ascii_lowercase(),
        e.addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        e.ports
            .iter()
            .map(|p| format!("{}:{}/{}", p.name, p.port, p.protocol))
            .collect::<Vec<_>>()
            .join(" "),
        e.az.clone().unwrap_or_else(|| "-".into()),
        e.health.clone(),
        e.check
            .as_ref()
            .map_or_else(|| "-".into(), |c| c.status.clone()),
        e.check
            .as_ref()
            .and_then(|c| c.reason.clone())
            .unwrap_or_else(|| "-".into()),
        e.check
            .as_ref()
            .and_then(|c| c.since_ms)
            .map_or_else(|| "-".into(), ago),
        format!("{}/{}", e.last_status, e.desired_status),
    ]
}

/// `12s ago`, `3m ago`, `2h ago` from a Unix time in milliseconds.
fn ago(since_ms: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let s = now.saturating_sub(since_ms) / 1000;
    match s {
        0..120 => format!("{s}s ago"),
        120..7200 => format!("{}m ago", s / 60),
        _ => format!("{}h ago", s / 3600),
    }
}

/// Filters of `ecsdns endpoints`.
#[derive(Debug, Default, Clone)]
pub struct EndpointFilter {
    /// Only passing endpoints.
    pub passing: bool,
    /// Only this AZ.
    pub az: Option<String>,
    /// Only endpoints with this named port.
    pub port: Option<String>,
}

/// `ecsdns endpoints CLUSTER SERVICE`
pub async fn endpoints(
    target: &Target,
    cluster: &str,
    service: &str,
    filter: &EndpointFilter,
    json: bool,
) -> ExitCode {
    finish(
        async {
            let mut path = format!(
                "/v1/health/{}/{}?passing={}",
                encode(cluster),
                encode(service),
                filter.passing
            );
            if let Some(az) = &filter.az {
                let _ = write!(path, "&az={}", encode(az));
            }
            if let Some(port) = &filter.port {
                let _ = write!(path, "&port={}", encode(port));
            }
            let (detail, raw): (ServiceDetail, String) = get_json(target, &path).await?;
            if json {
                print(&format!("{raw}\n"));
            } else {
                let rows: Vec<Vec<String>> = detail.endpoints.iter().map(endpoint_row).collect();
                print(&table(
                    &[
                        "TASK",
                        "STATE",
                        "ADDRESSES",
                        "PORTS",
                        "AZ",
                        "HEALTH",
                        "CHECK",
                        "REASON",
                        "SINCE",
                        "LAST/DESIRED",
                    ],
                    &rows,
                ));
            }
            if filter.passing && detail.endpoints.is_empty() {
                return Err(Failure(
                    Exit::NonePassing,
                    format!("no passing endpoint in {cluster}/{service}"),
                ));
            }
            Ok(Exit::Ok)
        }
        .await,
    )
}

/// `ecsdns reconcile`
pub async fn reconcile(target: &Target) -> ExitCode {
    finish(
        async {
            let http = client(Some(Duration::from_secs(30)))?;
            let response = send(
                target,
                target.request(&http, reqwest::Method::POST, "/v1/reconcile"),
            )
            .await?;
            let body: serde_json::Value = response
                .json()
                .await
                .map_err(|e| Failure(Exit::Error, e.to_string()))?;
            print(&format!(
                "reconcile started for {} cluster(s)\n",
                body["clusters"].as_u64().unwrap_or(0)
            ));
            Ok(Exit::Ok)
        }
        .await,
    )
}

/// `ecsdns health`: `/healthz` answers 200 within 3 s.
pub async fn health(target: &Target) -> ExitCode {
    finish(
        async {
            let http = client(Some(Duration::from_secs(3)))?;
            send(
                target,
                target.request(&http, reqwest::Method::GET, "/healthz"),
            )
            .await?;
            Ok(Exit::Ok)
        }
        .await,
    )
}

/// `ecsdns watch`: prints every change until interrupted, reconnecting (and resuming from the
/// last event seen) when the connection drops.
pub async fn watch(
    target: &Target,
    cluster: Option<&str>,
    service: Option<&str>,
    json: bool,
) -> ExitCode {
    finish(
        async {
            let http = client(None)?;
            let mut query = Vec::new();
            if let Some(c) = cluster {
                query.push(format!("cluster={}", encode(c)));
            }
            if let Some(s) = service {
                query.push(format!("service={}", encode(s)));
            }
            let mut transitions = watch::Transitions::default();
            // Seed each watched service's tasks, so the first change already says which task
            // moved; the stream then starts after the newest state read.
            let mut last_id: Option<String> = None;
            if !json {
                let seeded = watch::seed(target, cluster, service, &mut transitions).await;
                last_id = seeded.map(|index| index.to_string());
            }
            let path = format!("/v1/watch?{}", query.join("&"));
            let mut failures = 0u32;
            loop {
                let mut request = target
                    .request(&http, reqwest::Method::GET, &path)
                    .header("accept", "text/event-stream");
                if let Some(id) = &last_id {
                    request = request.header("last-event-id", id.as_str());
                }
                let mut response = match send(target, request).await {
                    Ok(r) => r,
                    Err(Failure(Exit::Error, message)) if failures < 30 => {
                        failures += 1;
                        eprintln!("ecsdns: {message}; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    Err(f) => return Err(f),
                };
                failures = 0;
                let mut buffer = String::new();
                while let Ok(Some(chunk)) = response.chunk().await {
                    buffer.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(end) = buffer.find("\n\n") {
                        let frame: String = buffer.drain(..end + 2).collect();
                        if let Some(id) = show_event(&frame, json, &mut transitions) {
                            last_id = Some(id);
                        }
                    }
                }
                eprintln!("ecsdns: watch stream closed; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        .await,
    )
}

/// Prints one SSE frame; returns its id.
fn show_event(frame: &str, json: bool, transitions: &mut watch::Transitions) -> Option<String> {
    let (mut event, mut data, mut id) = ("message", String::new(), None);
    for line in frame.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        } else if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_string());
        }
    }
    if data.is_empty() {
        return id;
    }
    if json {
        print(&format!("{{\"event\":\"{event}\",\"data\":{data}}}\n"));
        return id;
    }
    let line = match event {
        "service" => match serde_json::from_str::<ServiceEvent>(&data) {
            Ok(e) => transitions.lines(&e).join("\n"),
            Err(_) => format!("{event}: {data}"),
        },
        "hello" => format!("watching from {data}"),
        "reset" => {
            transitions.reset();
            format!("registry reset, refetch everything: {data}")
        }
        other => format!("{other}: {data}"),
    };
    print(&format!("{line}\n"));
    id
}

/// Percent-encodes a path segment or query value (names are DNS labels, but be safe).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_encoding() {
        let t = table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    BB\nxyz  1\n");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
