//! HAProxy as a client: `server-template` slots filled from ecsdns's SRV and A records through
//! HAProxy's own resolver (`resolvers` section), read back from its admin socket. Over UDP for a
//! small service, over TCP (`tcp@`) for the 60-task fleet whose SRV answer cannot fit a UDP
//! datagram; and what HAProxy makes of the fleet over UDP (the truncated answers) is printed.
//! With `udp_overflow = "fit"` for the fleet, HAProxy over UDP gets a full set of the servers
//! that fit, by SRV and by A, from answers without TC.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::{RData, RecordType};
use testkit::{Process, a_records, query, query_edns, srv_records, tcp, udp};

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

/// What HAProxy's admin socket answers to `command` (empty while it is not up).
fn haproxy_cli(socket: &Path, command: &str) -> String {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("{command}\n").as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// How many answers HAProxy's resolver counted as truncated (an error to it), over all its
/// name servers (`show resolvers`).
fn haproxy_truncated(socket: &Path) -> u64 {
    haproxy_cli(socket, "show resolvers")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("truncated:"))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

/// `addr:port` for every address of `name` over TCP (the whole set), with the port a
/// `server-template` by A records names.
fn a_targets(dns: std::net::SocketAddr, name: &str, port: u16) -> BTreeSet<String> {
    a_records(&tcp(dns, &query(name, RecordType::A)))
        .iter()
        .map(|a| format!("{a}:{port}"))
        .collect()
}

/// `addr:port` of every slot of `backend` that HAProxy has filled, from `show servers state`.
fn haproxy_servers(socket: &Path, backend: &str) -> BTreeSet<String> {
    let out = haproxy_cli(socket, &format!("show servers state {backend}"));
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
    let config = haproxy_config(
        &socket,
        demo.dns,
        "backend web\n\
         \x20 server-template web 10 _http._tcp.web.demo.ecs.internal resolvers udp init-addr none\n\
         backend web_a\n\
         \x20 server-template web 10 web.demo.ecs.internal:9000 resolvers udp init-addr none\n\
         backend fleet\n\
         \x20 server-template fleet 100 _http._tcp.fleet.demo.ecs.internal resolvers tcp init-addr none\n\
         backend fleet_udp\n\
         \x20 server-template fleet 100 _http._tcp.fleet.demo.ecs.internal resolvers udp init-addr none\n\
         backend fleet_a_udp\n\
         \x20 server-template fleet 100 fleet.demo.ecs.internal:9000 resolvers udp512 init-addr none\n",
    );
    let (_haproxy, log) = start_haproxy(&dir, &config);
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
    let web_a = a_targets(demo.dns, "web.demo.ecs.internal.", 9000);
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
    // HAProxy counts a TC=1 answer to an A query as an error ("truncated") and keeps nothing
    // from it: the fleet's A records over its default 512-byte payload give it no server (it
    // does use truncated SRV answers, as above). That is what `udp_overflow = "fit"` is for
    // (the next test).
    let truncated = haproxy_truncated(&socket);
    let by_a = haproxy_servers(&socket, "fleet_a_udp");
    assert!(truncated > 0, "HAProxy saw TC=1 answers");
    println!(
        "HAProxy over UDP (512 bytes) for the fleet's A records, TC mode: {} servers, {truncated} \
         answers counted as truncated",
        by_a.len()
    );
}

/// An HAProxy config with an admin socket and three `resolvers` sections for `dns`: `udp`
/// (1232-byte payload), `udp512` (HAProxy's default payload) and `tcp` (`tcp@`), then `backends`.
fn haproxy_config(socket: &Path, dns: std::net::SocketAddr, backends: &str) -> String {
    let resolvers = |name: &str, server: String, payload: Option<u16>| {
        let payload = payload.map_or(String::new(), |p| format!("  accepted_payload_size {p}\n"));
        format!(
            "resolvers {name}\n  nameserver ecsdns {server}\n{payload}  hold valid 1s\n  \
             timeout resolve 200ms\n  timeout retry 200ms\n"
        )
    };
    format!(
        "global\n  stats socket {} mode 600 level admin\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         {}{}{}{backends}",
        socket.display(),
        resolvers("udp", dns.to_string(), Some(1232)),
        resolvers("udp512", dns.to_string(), None),
        resolvers("tcp", format!("tcp@{dns}"), Some(65535)),
    )
}

/// Checks `config` with `haproxy -c`, then runs it; returns it and a reader of its log.
fn start_haproxy(dir: &Path, config: &str) -> (Haproxy, impl Fn() -> String) {
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
    let haproxy = Haproxy(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("haproxy.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let log_file = dir.join("haproxy.log");
    (haproxy, move || {
        std::fs::read_to_string(&log_file).unwrap_or_default()
    })
}

#[test]
fn haproxy_over_udp_gets_servers_from_fit_answers() {
    let dir = temp_dir("haproxy-fit");
    let demo = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--no-churn",
        "--udp-overflow-service",
        "fleet.demo=fit",
    ]);
    let fleet = srv_targets(demo.dns, "fleet.demo.ecs.internal.");
    assert_eq!(fleet.len(), 60, "{fleet:?}");
    let fleet_a = a_targets(demo.dns, "fleet.demo.ecs.internal.", 9000);
    assert_eq!(fleet_a.len(), 60);
    // What HAProxy asks: no TC, whole SRV records, then the addresses of those that fit.
    let srv = udp(
        demo.dns,
        &query_edns("_http._tcp.fleet.demo.ecs.internal.", RecordType::SRV, 1232),
    );
    assert!(!srv.metadata.truncation, "fit answers carry no TC");
    let targets: BTreeSet<_> = srv_records(&srv).into_iter().map(|(t, _)| t).collect();
    let glued: BTreeSet<_> = srv.additionals.iter().map(|r| r.name.to_ascii()).collect();
    assert!(
        targets.len() >= 15,
        "{} SRV records fit 1232 bytes",
        targets.len()
    );
    assert!(glued.is_subset(&targets), "{glued:?}");
    println!(
        "fit SRV in 1232 bytes: {} records, {} addresses",
        targets.len(),
        glued.len()
    );
    let a = udp(demo.dns, &query("fleet.demo.ecs.internal.", RecordType::A));
    assert!(!a.metadata.truncation);
    assert_eq!(a_records(&a).len(), 29, "512 bytes hold 29 A records");
    // HAProxy sends EDNS with its accepted_payload_size (512 by default): the OPT's 11 bytes
    // leave room for one record fewer.
    let a512 = udp(
        demo.dns,
        &query_edns("fleet.demo.ecs.internal.", RecordType::A, 512),
    );
    assert!(!a512.metadata.truncation);
    let a512 = a_records(&a512).len();
    assert!(
        (20..=29).contains(&a512),
        "{a512} A records in 512 bytes with an OPT"
    );

    let socket = dir.join("admin.sock");
    let config = haproxy_config(
        &socket,
        demo.dns,
        "backend fleet_srv\n\
         \x20 server-template fleet 100 _http._tcp.fleet.demo.ecs.internal resolvers udp init-addr none\n\
         backend fleet_a\n\
         \x20 server-template fleet 100 fleet.demo.ecs.internal:9000 resolvers udp512 init-addr none\n",
    );
    let (_haproxy, log) = start_haproxy(&dir, &config);
    // Each backend fills as many slots as one answer holds, all of them real servers.
    for (backend, real, want) in [
        ("fleet_srv", &fleet, targets.len()),
        ("fleet_a", &fleet_a, a512),
    ] {
        let started = std::time::Instant::now();
        let mut sizes = Vec::new();
        loop {
            let got = haproxy_servers(&socket, backend);
            assert!(got.is_subset(real), "{backend}: {got:?}");
            sizes.push(got.len());
            if got.len() >= want {
                println!(
                    "HAProxy over UDP, fit mode, {backend}: {} servers",
                    got.len()
                );
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{backend}: HAProxy filled {sizes:?} slots, one answer holds {want}; log:\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(haproxy_truncated(&socket), 0, "no answer HAProxy rejects");
}
