//! A real moto server (the local ECS/SQS/EC2 endpoint) for end-to-end tests.
//!
//! `./test.sh` installs moto into a venv and exports `ECSDNS_MOTO_SERVER`; without it the tests
//! fail with a hint, they never skip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `moto_server` is: `$ECSDNS_MOTO_SERVER`, or the venv `./test.sh` makes.
pub fn moto_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("ECSDNS_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let default = PathBuf::from(home).join(".cache/ecsdns/moto-venv/bin/moto_server");
    assert!(
        default.exists(),
        "moto_server not found at {} and ECSDNS_MOTO_SERVER is unset: run ./test.sh, which installs it",
        default.display()
    );
    default
}

/// A moto server on a loopback port; killed on drop.
pub struct Moto {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    /// Starts moto on a free port, waits until it answers, and freezes ECS task progression
    /// (otherwise every DescribeTasks moves a task one step toward STOPPED).
    pub fn start() -> Self {
        let mut moto = Self {
            child: None,
            port: free_port(),
        };
        moto.spawn();
        moto
    }

    fn spawn(&mut self) {
        let child = Command::new(moto_server_bin())
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start moto_server");
        self.child = Some(child);
        let start = Instant::now();
        while self.post("/moto-api/reset", "").is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "moto did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let frozen = self.post(
            "/moto-api/state-manager/set-transition",
            r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000000}}"#,
        );
        assert!(frozen.is_some(), "cannot freeze moto's task progression");
    }

    /// The endpoint URL for AWS clients.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for an ecsdns process talking to this moto through the standard variables.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    /// Like [`Moto::env`], with AWS reached through `endpoint` (a [`crate::FaultProxy`]).
    pub fn env_via(&self, endpoint: &str) -> Vec<(String, String)> {
        let mut env = self.env();
        env[0].1 = endpoint.to_string();
        env
    }

    /// Its address, for a proxy in front of it.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Stops moto (to test an unreachable AWS).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts moto again on the same port (its state starts empty).
    pub fn restart(&mut self) {
        self.stop();
        let start = Instant::now();
        while TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "port {} stays busy",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.spawn();
    }

    /// Calls an AWS JSON API (`target` such as `AmazonSQS.SendMessage` for `service` `sqs`)
    /// without an SDK: moto reads the service from the credential scope and checks no
    /// signature. Panics unless moto answers 2xx; returns the JSON answer.
    pub fn aws_json(
        &self,
        service: &str,
        target: &str,
        body: &serde_json::Value,
    ) -> serde_json::Value {
        let body = body.to_string();
        let content_type = if service == "sqs" {
            "application/x-amz-json-1.0"
        } else {
            "application/x-amz-json-1.1"
        };
        let headers = format!(
            "X-Amz-Target: {target}\r\nContent-Type: {content_type}\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/{service}/aws4_request, \
             SignedHeaders=host, Signature=0\r\n"
        );
        let reply = self
            .post_with("/", &headers, &body)
            .unwrap_or_else(|| panic!("moto: {target} failed"));
        let json = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null)
    }

    /// A minimal HTTP POST; `None` when nothing answers 2xx.
    fn post(&self, path: &str, body: &str) -> Option<String> {
        self.post_with(path, "Content-Type: application/json\r\n", body)
    }

    /// POST with extra header lines (each ending in CRLF).
    fn post_with(&self, path: &str, headers: &str, body: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{headers}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).ok()?;
        let status: u16 = reply.split_whitespace().nth(1)?.parse().ok()?;
        (200..300).contains(&status).then_some(reply)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
