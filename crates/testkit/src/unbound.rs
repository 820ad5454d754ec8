//! A real unbound (Debian's package, installed by `./test.sh`) as the caching resolver in front
//! of ecsdns: the path production queries take (application -> caching resolver -> ecsdns).

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where unbound is; the test command installs it, so a missing binary fails with a hint.
pub fn unbound_bin() -> PathBuf {
    let bin = PathBuf::from("/usr/sbin/unbound");
    assert!(
        bin.exists(),
        "{} is missing: run ./test.sh, which installs Debian's unbound",
        bin.display()
    );
    bin
}

/// unbound's version line (`Version 1.17.1`).
pub fn unbound_version() -> String {
    let out = Command::new(unbound_bin()).arg("-V").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("Version"))
        .unwrap_or("unknown")
        .trim()
        .to_string()
}

/// A running unbound on a loopback port that sends `zone` to `upstream` (a stub zone: the
/// upstream is authoritative) and caches answers as their TTLs say. Killed on drop.
pub struct Unbound {
    child: Child,
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
}

impl Unbound {
    /// Starts unbound with its files in `dir`; waits until it answers for `zone`.
    pub fn start(dir: &Path, zone: &str, upstream: SocketAddr) -> Self {
        let zone = zone.trim_end_matches('.');
        let block = format!(
            "stub-zone:\n  name: \"{zone}\"\n  stub-addr: {}@{}\n",
            upstream.ip(),
            upstream.port()
        );
        Self::start_with(dir, zone, &block)
    }

    /// [`Unbound::start`] with the defences a careful operator turns on: 0x20 (random query
    /// name case that the answer must echo, `use-caps-for-id`) and QNAME minimisation (RFC
    /// 9156), so an authoritative server that mishandles either shows here.
    pub fn start_hardened(dir: &Path, zone: &str, upstream: SocketAddr) -> Self {
        let zone = zone.trim_end_matches('.');
        let block = format!(
            "server:\n  use-caps-for-id: yes\n  qname-minimisation: yes\n\
             stub-zone:\n  name: \"{zone}\"\n  stub-addr: {}@{}\n",
            upstream.ip(),
            upstream.port()
        );
        Self::start_with(dir, zone, &block)
    }

    /// Starts unbound forwarding `zone` to `upstream` over DNS over TLS (RFC 7858), checking
    /// the server's certificate against `ca` for the name `server_name`.
    pub fn start_tls(
        dir: &Path,
        zone: &str,
        upstream: SocketAddr,
        server_name: &str,
        ca: &Path,
    ) -> Self {
        let zone = zone.trim_end_matches('.');
        let block = format!(
            "forward-zone:\n  name: \"{zone}\"\n  forward-tls-upstream: yes\n  \
             forward-addr: {}@{}#{server_name}\n",
            upstream.ip(),
            upstream.port()
        );
        let tls = format!("  tls-cert-bundle: \"{}\"\n", ca.display());
        Self::start_with(dir, zone, &format!("server:\n{tls}{block}"))
    }

    fn start_with(dir: &Path, zone: &str, upstream: &str) -> Self {
        // A port free now can be taken before unbound binds it (an ephemeral port of another
        // test's connection, on UDP or TCP): try again on a new port when that happens.
        for _ in 0..5 {
            if let Some(me) = Self::try_start(dir, zone, upstream) {
                return me;
            }
        }
        panic!("unbound could not bind a free port in 5 tries");
    }

    /// One attempt; `None` when unbound found its port taken.
    fn try_start(dir: &Path, zone: &str, upstream: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let port = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break port;
            }
        };
        let config = format!(
            "server:\n\
             \x20 interface: 127.0.0.1\n\
             \x20 port: {port}\n\
             \x20 do-ip6: no\n\
             \x20 do-daemonize: no\n\
             \x20 username: \"\"\n\
             \x20 chroot: \"\"\n\
             \x20 directory: \"{dir}\"\n\
             \x20 pidfile: \"{dir}/unbound.pid\"\n\
             \x20 logfile: \"\"\n\
             \x20 use-syslog: no\n\
             \x20 verbosity: 0\n\
             \x20 num-threads: 1\n\
             \x20 access-control: 127.0.0.0/8 allow\n\
             \x20 do-not-query-localhost: no\n\
             \x20 module-config: \"iterator\"\n\
             \x20 domain-insecure: \"{zone}\"\n\
             \x20 prefetch: no\n\
             \x20 serve-expired: no\n\
             remote-control:\n\
             \x20 control-enable: no\n\
             {upstream}",
            dir = dir.display(),
        );
        let conf = dir.join("unbound.conf");
        std::fs::write(&conf, config).unwrap();
        let log = std::fs::File::create(dir.join("unbound.log")).unwrap();
        let child = Command::new(unbound_bin())
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start unbound");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut me = Self { child, addr };
        let query = crate::query(&format!("{zone}."), hickory_proto::rr::RecordType::SOA)
            .to_vec()
            .unwrap();
        let started = Instant::now();
        while crate::udp_raw(addr, &query, Duration::from_millis(200)).is_none() {
            if let Some(status) = me.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.join("unbound.log")).unwrap_or_default();
                if log.contains("Address already in use") {
                    return None;
                }
                panic!("unbound exited ({status}): {log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "unbound did not answer on {addr}"
            );
        }
        me.addr = addr;
        Some(me)
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
