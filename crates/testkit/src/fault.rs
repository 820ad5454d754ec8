//! A fault-injecting HTTP/1.1 proxy for tests: put it between ecsdns and moto and switch what it
//! does to each request (pass it on, answer an AWS throttling error, a 500, answer slowly, or
//! reset the connection), to see DNS keep answering and the state converge once faults stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
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

/// A running proxy; it stops with the test process.
pub struct FaultProxy {
    /// Where clients connect (use as the AWS endpoint).
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    faulted: Arc<AtomicU64>,
}

impl FaultProxy {
    /// Listens on a loopback port and forwards to `upstream` (e.g. moto's address).
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().unwrap_or(upstream);
        let mode = Arc::new(AtomicU8::new(Fault::Pass as u8));
        let faulted = Arc::new(AtomicU64::new(0));
        let (m, f) = (Arc::clone(&mode), Arc::clone(&faulted));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (m, f) = (Arc::clone(&m), Arc::clone(&f));
                std::thread::spawn(move || serve(conn, upstream, &m, &f));
            }
        });
        Self {
            addr,
            mode,
            faulted,
        }
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

fn serve(conn: TcpStream, upstream: SocketAddr, mode: &AtomicU8, faulted: &AtomicU64) {
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
                Some(a) => a,
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
