//! A fault-injecting HTTP/1.1 proxy for tests: put it between ecsdns and moto and switch what it
//! does to each request (pass it on, answer an AWS throttling error, a 500, answer slowly, or
//! reset the connection), to see DNS keep answering and the state converge once faults stop.
//! It can also rewrite JSON answers of one API call ([`FaultProxy::rewrite`]): how tests add
//! what moto leaves out of an answer (Service Connect configurations in DescribeServices),
//! shaped as AWS documents them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Forward to the upstream and relay the answer.
    Pass = 0,
    /// 400 with an AWS `ThrottlingException` body (JSON and query protocols alike).
    Throttle = 1,
    /// 500 Internal Server Error.
    ServerError = 2,
    /// Forward, but only after 3 s (longer than most client timeouts).
    Slow = 3,
    /// Close the connection without answering.
    Reset = 4,
}

/// Rewrites the JSON answer of the call named by its `X-Amz-Target` (the first argument).
pub type Rewrite = Arc<dyn Fn(&str, serde_json::Value) -> serde_json::Value + Send + Sync>;

/// A running proxy; it stops with the test process.
pub struct FaultProxy {
    /// Where clients connect (use as the AWS endpoint).
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    faulted: Arc<AtomicU64>,
    rewrite: Arc<Mutex<Option<Rewrite>>>,
}

impl FaultProxy {
    /// Listens on a loopback port and forwards to `upstream` (e.g. moto's address).
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().unwrap_or(upstream);
        let mode = Arc::new(AtomicU8::new(Fault::Pass as u8));
        let faulted = Arc::new(AtomicU64::new(0));
        let rewrite: Arc<Mutex<Option<Rewrite>>> = Arc::new(Mutex::new(None));
        let (m, f, r) = (
            Arc::clone(&mode),
            Arc::clone(&faulted),
            Arc::clone(&rewrite),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (m, f, r) = (Arc::clone(&m), Arc::clone(&f), Arc::clone(&r));
                std::thread::spawn(move || serve(conn, upstream, &m, &f, &r));
            }
        });
        Self {
            addr,
            mode,
            faulted,
            rewrite,
        }
    }

    /// Rewrites every passed-on JSON answer from now on (replacing an earlier rewrite).
    pub fn rewrite(
        &self,
        f: impl Fn(&str, serde_json::Value) -> serde_json::Value + Send + Sync + 'static,
    ) {
        *self
            .rewrite
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(f));
    }

    /// Switches what happens to the next requests.
    pub fn set(&self, fault: Fault) {
        self.mode.store(fault as u8, Ordering::SeqCst);
    }

    /// Requests answered with a fault so far.
    pub fn faulted(&self) -> u64 {
        self.faulted.load(Ordering::SeqCst)
    }

    /// The endpoint URL to give clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Reads one request (head and Content-Length body); `None` at end of stream.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
        let end = line == "\r\n";
        head.extend_from_slice(line.as_bytes());
        if end {
            break;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    head.extend_from_slice(&body);
    Some(head)
}

/// Sends one request upstream on a fresh connection and returns the whole answer.
fn forward(request: &[u8], upstream: SocketAddr) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(request);
    // One request per upstream connection: ask the upstream to close when done.
    let patched = text.replacen("\r\n", "\r\nConnection: close\r\n", 1);
    let mut up = TcpStream::connect(upstream).ok()?;
    up.write_all(patched.as_bytes()).ok()?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).ok()?;
    Some(answer)
}

fn canned(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         x-amzn-ErrorType: ThrottlingException\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The answer with its JSON body rewritten for the request's `X-Amz-Target`.
fn rewritten(request: &[u8], answer: Vec<u8>, rewrite: &Mutex<Option<Rewrite>>) -> Vec<u8> {
    let Some(f) = rewrite
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
    else {
        return answer;
    };
    let request = String::from_utf8_lossy(request);
    let Some(target) = request.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("x-amz-target")
            .then(|| value.trim().to_string())
    }) else {
        return answer;
    };
    let text = String::from_utf8_lossy(&answer).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return answer;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return answer;
    };
    let body = f(&target, json).to_string();
    let mut out = String::new();
    for line in head.split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

fn serve(
    conn: TcpStream,
    upstream: SocketAddr,
    mode: &AtomicU8,
    faulted: &AtomicU64,
    rewrite: &Mutex<Option<Rewrite>>,
) {
    let Ok(writer) = conn.try_clone() else { return };
    let mut writer = writer;
    let mut reader = BufReader::new(conn);
    while let Some(request) = read_request(&mut reader) {
        let fault = mode.load(Ordering::SeqCst);
        if fault != Fault::Pass as u8 && fault != Fault::Slow as u8 {
            faulted.fetch_add(1, Ordering::SeqCst);
        }
        let answer = match fault {
            1 => canned(
                "400 Bad Request",
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            ),
            2 => canned(
                "500 Internal Server Error",
                r#"{"__type":"InternalFailure"}"#,
            ),
            4 => return,
            3 => {
                faulted.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(3));
                match forward(&request, upstream) {
                    Some(a) => a,
                    None => return,
                }
            }
            _ => match forward(&request, upstream) {
                Some(a) => rewritten(&request, a, rewrite),
                None => return,
            },
        };
        if writer.write_all(&answer).is_err() {
            return;
        }
        // The upstream closed after its answer; so do we, and the client reconnects.
        if fault == 0 || fault == 3 {
            return;
        }
    }
}
