//! HAProxy as a client: `server-template` slots filled from ecsdns's SRV and A records through
//! HAProxy's own resolver (`resolvers` section), read back from its admin socket. Over UDP for a
//! small service, over TCP (`tcp@`) for the 60-task fleet whose SRV answer cannot fit a UDP
//! datagram; and what HAProxy makes of the fleet over UDP (the truncated answers) is printed.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::{RData, RecordType};
use testkit::{Process, a_records, query, srv_records, tcp};

use crate::fixture::temp_dir;

/// HAProxy, killed on drop.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `addr:port` of every SRV target of `name`, as ecsdns serves them over TCP (the whole set).
fn srv_targets(dns: std::net::SocketAddr, name: &str) -> BTreeSet<String> {
    let m = tcp(dns, &query(name, RecordType::SRV));
    srv_records(&m)
        .iter()
        .flat_map(|(target, port)| {
            m.additionals
                .iter()
                .filter(move |r| r.name.to_ascii() == *target)
                .filter_map(move |r| match &r.data {
                    RData::A(a) => Some(format!("{}:{port}", a.0)),
                    _ => None,
                })
        })
        .collect()
}

/// `addr:port` of every slot of `backend` that HAProxy has filled, from `show servers state`.
fn haproxy_servers(socket: &Path, backend: &str) -> BTreeSet<String> {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return BTreeSet::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("show servers state {backend}\n").as_bytes())
        .is_err()
    {
        return BTreeSet::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let mut lines = out.lines().skip(1);
    let Some(header) = lines.next() else {
        return BTreeSet::new();
    };
    let cols: Vec<&str> = header.trim_start_matches("# ").split(' ').collect();
    let at = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(addr), Some(port)) = (at("srv_addr"), at("srv_port")) else {
        return BTreeSet::new();
    };
    lines
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| f.len() > addr.max(port))
        .filter(|f| f[addr] != "-" && f[addr] != "0.0.0.0")
        .map(|f| format!("{}:{}", f[addr], f[port]))
        .collect()
}

#[test]
fn haproxy_fills_server_templates_from_srv_records() {
    let dir = temp_dir("haproxy");
    let demo = Process::start(&["demo", "--dns-addr", "127.0.0.1:0", "--no-churn"]);
    let web = srv_targets(demo.dns, "web.demo.ecs.internal.");
    let fleet = srv_targets(demo.dns, "fleet.demo.ecs.internal.");
    assert_eq!(web.len(), 3, "{web:?}");
    assert_eq!(fleet.len(), 60, "{fleet:?}");

    let socket = dir.join("admin.sock");
    let dns = demo.dns;
    let config = format!(
        "global\n\
         \x20 stats socket {socket} mode 600 level admin\n\
         defaults\n\
         \x20 mode http\n\
         \x20 timeout connect 1s\n\
         \x20 timeout client 5s\n\
         \x20 timeout server 5s\n\
         resolvers udp\n\
         \x20 nameserver ecsdns {dns}\n\
         \x20 accepted_payload_size 1232\n\
         \x20 hold valid 1s\n\
         \x20 timeout resolve 200ms\n\
         \x20 timeout retry 200ms\n\
         resolvers tcp\n\
         \x20 nameserver ecsdns tcp@{dns}\n\
         \x20 accepted_payload_size 65535\n\
         \x20 hold valid 1s\n\
         \x20 timeout resolve 200ms\n\
         \x20 timeout retry 200ms\n\
         backend web\n\
         \x20 server-template web 10 _http._tcp.web.demo.ecs.internal resolvers udp init-addr none\n\
         backend web_a\n\
         \x20 server-template web 10 web.demo.ecs.internal:9000 resolvers udp init-addr none\n\
         backend fleet\n\
         \x20 server-template fleet 100 _http._tcp.fleet.demo.ecs.internal resolvers tcp init-addr none\n\
         backend fleet_udp\n\
         \x20 server-template fleet 100 _http._tcp.fleet.demo.ecs.internal resolvers udp init-addr none\n",
        socket = socket.display(),
    );
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, config).unwrap();
    let check = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output()
        .unwrap_or_else(|e| panic!("cannot run haproxy ({e}); ./test.sh installs it"));
    assert!(
        check.status.success(),
        "haproxy refuses the config: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _haproxy = Haproxy(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("haproxy.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default();
    let wait_for = |backend: &str, want: &BTreeSet<String>| {
        let started = std::time::Instant::now();
        loop {
            let got = haproxy_servers(&socket, backend);
            if &got == want {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{backend}: HAProxy has {got:?}, ecsdns serves {want:?}; its log:\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("web", &web);
    // By A records: the addresses, with the port the template names.
    let web_a: BTreeSet<String> = a_records(&tcp(
        demo.dns,
        &query("web.demo.ecs.internal.", RecordType::A),
    ))
    .iter()
    .map(|a| format!("{a}:9000"))
    .collect();
    assert_eq!(web_a.len(), 3);
    wait_for("web_a", &web_a);
    // Sixty SRV records with their addresses only fit over TCP.
    wait_for("fleet", &fleet);
    // Over UDP HAProxy gets the truncated answer: whatever it keeps is part of the real set.
    // Each answer is a different rotated subset, so its servers keep changing: measured here.
    let mut seen = BTreeSet::new();
    let mut sizes = Vec::new();
    for _ in 0..10 {
        let over_udp = haproxy_servers(&socket, "fleet_udp");
        assert!(over_udp.is_subset(&fleet), "{over_udp:?}");
        sizes.push(over_udp.len());
        seen.extend(over_udp);
        std::thread::sleep(Duration::from_millis(300));
    }
    println!(
        "HAProxy over UDP for the 60-task fleet: {sizes:?} slots filled over 3 s, {} distinct \
         addresses seen",
        seen.len()
    );
}
