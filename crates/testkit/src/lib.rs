//! Test helpers shared by the end-to-end tests: DNS queries over real sockets, the real
//! `ecsdns` binary as a child process, and external tools (dig) that the test command installs.
//!
//! Helpers panic with a clear message instead of returning errors: they only run in tests, and a
//! missing tool must fail the test, never skip it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};

pub mod deploy;
mod fault;
pub mod http;
mod moto;
mod unbound;
pub mod webdriver;
pub use fault::{Fault, FaultProxy, Rewrite};
use hickory_proto::rr::{Name, RData, RecordType};
pub use moto::{Moto, moto_server_bin};
pub use unbound::{Unbound, unbound_bin, unbound_version};

/// Builds a standard query message (RD set, random-looking ID).
pub fn query(name: &str, rtype: RecordType) -> Message {
    let mut m = Message::new(next_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m
}

/// The same query with an EDNS OPT advertising `payload`.
pub fn query_edns(name: &str, rtype: RecordType, payload: u16) -> Message {
    let mut m = query(name, rtype);
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    m.set_edns(edns);
    m
}

fn next_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static ID: AtomicU16 = AtomicU16::new(0x1234);
    ID.fetch_add(7919, Ordering::Relaxed)
}

/// Sends raw bytes over UDP and returns the raw reply, or `None` after `timeout`.
pub fn udp_raw(server: SocketAddr, packet: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind(if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    })
    .unwrap();
    sock.set_read_timeout(Some(timeout)).unwrap();
    sock.send_to(packet, server).unwrap();
    let mut buf = vec![0u8; 65_535];
    match sock.recv(&mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// Sends a message over UDP and parses the reply (panics on silence: use [`udp_raw`] to expect
/// none).
pub fn udp(server: SocketAddr, m: &Message) -> Message {
    let reply = udp_raw(server, &m.to_vec().unwrap(), Duration::from_secs(3))
        .unwrap_or_else(|| panic!("no UDP answer from {server} to {:?}", m.queries));
    Message::from_vec(&reply).unwrap()
}

/// Sends each packet on one TCP connection, back to back (pipelined), and reads one framed
/// reply per packet.
pub fn tcp_raw(server: SocketAddr, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut stream = TcpStream::connect(server).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut out = Vec::new();
    for p in packets {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(p);
    }
    stream.write_all(&out).unwrap();
    packets
        .iter()
        .map(|_| {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).unwrap();
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut reply).unwrap();
            reply
        })
        .collect()
}

/// Sends a message over TCP and parses the reply.
pub fn tcp(server: SocketAddr, m: &Message) -> Message {
    let reply = tcp_raw(server, &[m.to_vec().unwrap()]).remove(0);
    Message::from_vec(&reply).unwrap()
}

/// The IPv4 addresses of an answer's A records, in answer order.
pub fn a_records(m: &Message) -> Vec<std::net::Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// `(target, port)` of an answer's SRV records (targets with their trailing dot).
pub fn srv_records(m: &Message) -> Vec<(String, u16)> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.target.to_ascii(), s.port)),
            _ => None,
        })
        .collect()
}

/// Polls `f` until it returns `Some`, or panics after `timeout` with `what`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs an external command and returns its stdout; a missing tool fails the test with a hint.
pub fn run_tool(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}); the test command (./test.sh) installs it")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `dig @addr -p port ARGS...` with short timeouts.
pub fn dig(server: SocketAddr, args: &[&str]) -> String {
    let at = format!("@{}", server.ip());
    let port = server.port().to_string();
    let mut all = vec![at.as_str(), "-p", port.as_str(), "+time=2", "+tries=1"];
    all.extend_from_slice(args);
    run_tool("dig", &all)
}

/// `kdig @addr -p port ARGS...` (Knot's client) with short timeouts.
pub fn kdig(server: SocketAddr, args: &[&str]) -> String {
    let at = format!("@{}", server.ip());
    let port = server.port().to_string();
    let mut all = vec![at.as_str(), "-p", port.as_str(), "+time=2", "+retry=0"];
    all.extend_from_slice(args);
    run_tool("kdig", &all)
}

/// Path of the `ecsdns` binary under test: `ecsdns-e2e`, which `cargo test` builds beside the
/// test executable (`target/debug/deps/e2e-HASH` -> `target/debug/ecsdns-e2e`).
pub fn ecsdns_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().and_then(|d| d.parent()).unwrap();
        let bin = dir.join("ecsdns-e2e");
        assert!(
            bin.exists(),
            "{} is missing: run the tests with cargo test",
            bin.display()
        );
        bin
    })
    .clone()
}

/// A running `ecsdns` child process; stopped with SIGTERM on drop.
pub struct Process {
    child: Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    out: std::sync::Arc<std::sync::Mutex<String>>,
    /// The DNS address it announced.
    pub dns: SocketAddr,
    /// The HTTP API address it announced, unless the API is off.
    pub api: Option<SocketAddr>,
    /// Lines it printed on stdout before and including the announcement.
    pub banner: Vec<String>,
}

impl Process {
    /// Starts `ecsdns ARGS...` and waits for the line that announces the DNS address.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Like [`Process::start`], with extra environment variables.
    /// `serve` and `demo` get `--http-addr 127.0.0.1:0` unless the test sets one, so tests
    /// running side by side never race for the default API port.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_command(Command::new(ecsdns_bin()), args, env)
    }

    /// Like [`Process::start_with_env`], with `ecsdns` run as `command` (another binary that
    /// embeds it, such as the benchmark harness's `ecsdns-bench __ecsdns`).
    pub fn start_command(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut args: Vec<&str> = args.to_vec();
        let subcommand = args.iter().find(|a| !a.starts_with('-')).copied();
        if matches!(subcommand, Some("serve" | "demo")) && !args.contains(&"--http-addr") {
            args.extend(["--http-addr", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(&args)
            .env(
                "RUST_LOG",
                "info,aws=warn,aws_smithy_runtime=warn,hyper=warn",
            )
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start ecsdns");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let dns = loop {
            let Some(Ok(line)) = lines.next() else {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("ecsdns exited before announcing its address: {err}");
            };
            banner.push(line.clone());
            if let Some(rest) = line.split("serving DNS on ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap();
                let api = line
                    .split("HTTP API on http://")
                    .nth(1)
                    .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap());
                break (addr.parse().unwrap(), api);
            }
        };
        let (dns, api) = dns;
        // Keep reading both pipes in the background so they never fill; keep both.
        let out = std::sync::Arc::new(std::sync::Mutex::new(banner.join("\n")));
        {
            let out = std::sync::Arc::clone(&out);
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    let mut out = out.lock().unwrap();
                    out.push('\n');
                    out.push_str(&line);
                }
            });
        }
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = std::sync::Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Self {
            child,
            log,
            out,
            dns,
            api,
            banner,
        }
    }

    /// Kills the child with SIGKILL (no shutdown, no state saved) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) used so far by the child's thread named `name`, from
    /// `/proc/PID/task/*/stat` (clock ticks of 10 ms).
    pub fn thread_cpu(&self, name: &str) -> Option<Duration> {
        let dir = format!("/proc/{}/task", self.child.id());
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (comm, rest) = stat.split_once(") ")?;
            if comm.split_once('(')?.1 != name {
                continue;
            }
            // After the name: state is field 3, utime 14 and stime 15.
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            return Some(Duration::from_millis(ticks * 10));
        }
        None
    }

    /// Waits until the log (stderr) contains `needle`; panics with the log after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.log.lock().unwrap().contains(needle) {
            assert!(
                start.elapsed() < timeout,
                "no {needle:?} in the log after {timeout:?}:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        signal(self.child.id(), "TERM");
        self.wait_exit(Duration::from_secs(10))
    }

    /// Sends a signal (`TERM`, `INT`, ...) without waiting.
    pub fn signal(&self, name: &str) {
        signal(self.child.id(), name);
    }

    /// Waits up to `timeout` for the process to exit; its exit code, or `None` (then killed).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until stdout contains `needle` (the banner after the address line, say).
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let out = self.out.lock().unwrap().clone();
            if out.contains(needle) {
                return out;
            }
            assert!(start.elapsed() < timeout, "no {needle:?} on stdout: {out}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process wrote on stderr so far (all of it once it has exited).
    pub fn stderr(&mut self) -> String {
        if self.child.try_wait().ok().flatten().is_some() {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

/// Runs `ecsdns ARGS...` to completion and returns (exit code, stdout, stderr).
pub fn run_ecsdns(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(ecsdns_bin()).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
