//! HTTP over real sockets with a real client (reqwest), for tests that are plain threads: each
//! call runs on its own small runtime. Also a Server-Sent Events reader on a background thread.

use std::sync::mpsc;
use std::time::Duration;

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `X-Ecsdns-Index` header.
    pub fn index(&self) -> u64 {
        self.header("x-ecsdns-index")
            .expect("no x-ecsdns-index header")
            .parse()
            .unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Sends one request. `token` goes in `Authorization: Bearer`.
pub fn request(method: &str, url: &str, token: Option<&str>, body: Option<Vec<u8>>) -> Reply {
    runtime().block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut r = client.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.body(b);
        }
        let response = r
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = response.text().await.unwrap();
        Reply {
            status,
            headers,
            body,
        }
    })
}

/// `GET url` without a token.
pub fn get(url: &str) -> Reply {
    request("GET", url, None, None)
}

/// The value of one series (`name{labels}` exactly as exposed) in a Prometheus text page.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    /// `event:` field.
    pub event: String,
    /// `id:` field.
    pub id: String,
    /// `data:` lines joined.
    pub data: String,
}

/// Opens an SSE stream; events arrive on the returned channel until the stream ends or the
/// receiver is dropped.
pub fn sse(url: &str, token: Option<&str>) -> mpsc::Receiver<SseEvent> {
    let (tx, rx) = mpsc::channel();
    let url = url.to_string();
    let token = token.map(str::to_string);
    std::thread::spawn(move || {
        runtime().block_on(async move {
            let mut r = reqwest::Client::new()
                .get(&url)
                .header("accept", "text/event-stream");
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let Ok(mut response) = r.send().await else {
                return;
            };
            assert_eq!(response.status().as_u16(), 200, "watch stream refused");
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let mut event = SseEvent::default();
                    for line in frame.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            event.event = v.trim().to_string();
                        } else if let Some(v) = line.strip_prefix("id:") {
                            event.id = v.trim().to_string();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            event.data.push_str(v.trim_start());
                        }
                    }
                    if event.data.is_empty() {
                        continue; // keep-alive comment
                    }
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
    });
    rx
}
