//! Zone transfer to a standard secondary: Knot (Debian `knot`) started on loopback as a secondary
//! of ecsdns, with TSIG; NOTIFY + IXFR bring it to each new serial; ACL and keys are enforced.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{Process, eventually, kdig};

use crate::fixture::temp_dir;

pub(crate) const SECRET: &str = "ZWNzZG5zLXRyYW5zZmVyLXRlc3Qta2V5LTMyYnl0ZXMh";
const WRONG: &str = "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3JvbmctIQ==";

pub(crate) fn endpoints(n: usize) -> String {
    let mut f = String::from("[[service]]\nname = \"web\"\n");
    for i in 1..=n {
        f.push_str(&format!(
            "[[service.endpoint]]\nid = \"web-{i}\"\naddresses = [\"10.0.0.{i}\"]\nports = {{ http = 8080 }}\naz = \"us-east-1a\"\n"
        ));
    }
    f
}

/// A loopback port free for both UDP and TCP now (a secondary listens on both).
pub(crate) fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub(crate) struct Knot(pub(crate) Child);

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_knot(dir: &std::path::Path, port: u16, primary: SocketAddr) -> Knot {
    let conf = dir.join("knot.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n    user: root:root\n\
             database:\n    storage: {d}\n\
             log:\n  - target: stderr\n    any: info\n\
             key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
             remote:\n  - id: primary\n    address: {ip}@{pp}\n    key: xfr\n\
             acl:\n  - id: from-primary\n    address: {ip}\n    action: notify\n\
             zone:\n  - domain: ecs.internal.\n    master: primary\n    acl: from-primary\n    \
             zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n",
            d = dir.display(),
            ip = primary.ip(),
            pp = primary.port()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("knot.log")).unwrap();
    let child = Command::new("knotd")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("knotd (Debian knot; ./test.sh installs it)");
    Knot(child)
}

/// The zone's SOA serial at `server`, or `None` while it does not answer (Knot starting).
pub(crate) fn serial(server: SocketAddr) -> Option<u32> {
    let at = format!("@{}", server.ip());
    let port = server.port().to_string();
    kdig_any(&[
        &at,
        "-p",
        &port,
        "+time=1",
        "+retry=0",
        "+short",
        "SOA",
        "ecs.internal.",
    ])
    .split_whitespace()
    .nth(2)
    .and_then(|s| s.parse().ok())
}

/// The answer lines of a query, sorted (rotation differs between servers).
pub(crate) fn records(server: SocketAddr, name: &str, qtype: &str) -> Vec<String> {
    let mut v: Vec<String> = kdig(server, &["+short", "+tcp", name, qtype])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Runs kdig without asserting success (refusals and TSIG failures may exit non-zero).
fn kdig_any(args: &[&str]) -> String {
    let out = Command::new("kdig").args(args).output().expect("kdig");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// ecsdns over an endpoints file of 3 endpoints (`endpoints.toml` in `dir`), transfers allowed
/// from loopback with the `xfr` TSIG key, NOTIFYing a secondary on a free port; with the file and
/// the secondary's address.
pub(crate) fn primary_with_secondary(
    dir: &std::path::Path,
) -> (Process, std::path::PathBuf, SocketAddr) {
    let file = dir.join("endpoints.toml");
    crate::fixture::write_atomic(&file, endpoints(3));
    let keys = dir.join("tsig.keys");
    std::fs::write(&keys, format!("# transfer key\nxfr:hmac-sha256:{SECRET}\n")).unwrap();
    let notify = format!("127.0.0.1:{}", free_port());
    let p = Process::start(&[
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--endpoints",
        file.to_str().unwrap(),
        "--endpoints-poll",
        "50ms",
        "--allow-transfer",
        "127.0.0.1/32",
        "--tsig-key-file",
        keys.to_str().unwrap(),
        "--notify",
        &notify,
    ]);
    (p, file, notify.parse().unwrap())
}

/// Names whose answers a secondary must give exactly as we do.
pub(crate) const SAMPLE: [(&str, &str); 6] = [
    ("web.static.ecs.internal.", "A"),
    ("web.static.ecs.internal.", "SRV"),
    ("_http._tcp.web.static.ecs.internal.", "SRV"),
    ("web-2.web.static.ecs.internal.", "TXT"),
    ("web-3.web.static.ecs.internal.", "A"),
    ("ecs.internal.", "NS"),
];

/// Waits until `secondary` (called `who`) holds our serial, then checks it answers [`SAMPLE`]
/// as we do; returns how long reaching the serial took.
pub(crate) fn wait_in_step(
    p: &Process,
    secondary: SocketAddr,
    who: &str,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    let ours = serial(p.dns).unwrap();
    eventually(within, &format!("{who} to reach serial {ours}"), || {
        (serial(secondary) == Some(ours)).then_some(())
    });
    let took = started.elapsed();
    for (name, qtype) in SAMPLE {
        assert_eq!(
            records(secondary, name, qtype),
            records(p.dns, name, qtype),
            "{who}: {name} {qtype}"
        );
    }
    took
}

/// Rewrites the endpoints file to `n` endpoints and returns how long `secondary` took, from our
/// serial moving, to reach it (by NOTIFY and a transfer); it then answers as we do.
pub(crate) fn change_and_follow(
    p: &Process,
    file: &std::path::Path,
    n: usize,
    secondary: SocketAddr,
    who: &str,
) -> Duration {
    let before = serial(p.dns).unwrap();
    crate::fixture::write_atomic(file, endpoints(n));
    let target = eventually(Duration::from_secs(5), "our serial to move", || {
        serial(p.dns).filter(|s| *s != before)
    });
    let took = wait_in_step(p, secondary, who, Duration::from_secs(10));
    eprintln!("{who} reached serial {target} {took:?} after our change");
    assert_eq!(records(secondary, "web.static.ecs.internal.", "A").len(), n);
    took
}

#[test]
fn knot_follows_by_axfr_then_notify_and_ixfr() {
    let dir = temp_dir("transfer");
    let (p, file, knot) = primary_with_secondary(&dir);
    let knot_dir = dir.join("knot");
    std::fs::create_dir_all(&knot_dir).unwrap();
    let knot_process = start_knot(&knot_dir, knot.port(), p.dns);

    // The first transfer (AXFR): Knot answers what we answer.
    wait_in_step(&p, knot, "Knot", Duration::from_secs(20));
    // Churn: NOTIFY, then IXFR, brings Knot to the new serial within 2 s, each time.
    for n in [4, 2, 5] {
        let took = change_and_follow(&p, &file, n, knot, "Knot");
        assert!(
            took <= Duration::from_secs(2),
            "Knot followed after {took:?}"
        );
    }
    let log = std::fs::read_to_string(knot_dir.join("knot.log")).unwrap();
    assert!(
        log.contains("AXFR, incoming"),
        "the first transfer is whole: {log}"
    );
    assert!(log.contains("IXFR, incoming"), "then incremental: {log}");
    assert!(!log.contains("fallback to AXFR"), "{log}");
    let page = testkit::http::get(&format!("http://{}/metrics", p.api.unwrap())).body;
    let transfers = testkit::http::metric(&page, "ecsdns_dns_transfers_total").unwrap();
    assert!(
        transfers >= 4.0,
        "one AXFR and three IXFRs at least: {transfers}"
    );

    // Outside the ACL: REFUSED, whatever the key.
    let port = p.dns.port().to_string();
    let key = format!("hmac-sha256:xfr:{SECRET}");
    let outside = kdig_any(&[
        "@127.0.0.1",
        "-p",
        &port,
        "-b",
        "127.0.0.2",
        "-y",
        &key,
        "AXFR",
        "ecs.internal.",
    ]);
    assert!(outside.contains("REFUSED"), "{outside}");
    // Inside, unsigned: REFUSED (keys are configured).
    let unsigned = kdig_any(&["@127.0.0.1", "-p", &port, "AXFR", "ecs.internal."]);
    assert!(unsigned.contains("REFUSED"), "{unsigned}");
    // Inside, with a wrong secret: NOTAUTH / BADSIG, no records.
    let wrong = format!("hmac-sha256:xfr:{WRONG}");
    let signed = |key: &str, qtype: &str| {
        kdig_any(&["@127.0.0.1", "-p", &port, "-y", key, qtype, "ecs.internal."])
    };
    let bad = signed(&wrong, "AXFR");
    assert!(bad.contains("NOTAUTH") || bad.contains("BADSIG"), "{bad}");
    assert!(!bad.contains("10.0.0.1"), "{bad}");
    // An unknown key name: BADKEY.
    let unknown = format!("hmac-sha256:other:{SECRET}");
    let bad = signed(&unknown, "AXFR");
    assert!(bad.contains("NOTAUTH") || bad.contains("BADKEY"), "{bad}");
    // The right key: the whole zone, signed (kdig verifies our TSIG).
    let good = signed(&key, "AXFR");
    assert!(
        good.contains("10.0.0.5") && !good.contains("WARNING"),
        "{good}"
    );
    // Ordinary queries signed with TSIG (a secondary's SOA refresh) get signed answers over
    // UDP; a wrong secret gets NOTAUTH and no data.
    let soa = signed(&key, "SOA");
    assert!(
        soa.contains("NOERROR") && soa.contains("SOA") && !soa.contains("WARNING"),
        "{soa}"
    );
    let bad = signed(&wrong, "SOA");
    assert!(bad.contains("NOTAUTH") || bad.contains("BADSIG"), "{bad}");
    assert!(!bad.contains("hostmaster"), "{bad}");
    // Never over UDP.
    let udp = kdig_any(&[
        "@127.0.0.1",
        "-p",
        &port,
        "+notcp",
        "-y",
        &key,
        "IXFR=1",
        "ecs.internal.",
    ]);
    assert!(!udp.contains("10.0.0.5"), "{udp}");

    // Safe stops count the secondary: with Knot down, a task that left our answers is still
    // served (by Knot, which has not transferred the serial that dropped it).
    let drain = |task: &str| {
        testkit::http::get(&format!("http://{}/v1/tasks/{task}/drain", p.api.unwrap())).json()
    };
    assert_eq!(drain("web-5")["served"], true);
    drop(knot_process);
    crate::fixture::write_atomic(&file, endpoints(4));
    eventually(Duration::from_secs(5), "web-5 out of our answers", || {
        (records(p.dns, "web.static.ecs.internal.", "A").len() == 4).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let j = drain("web-5");
    assert_eq!(j["served"], true, "{j}");
    assert_eq!(j["heldBy"], "secondary 127.0.0.1", "{j}");
    assert_eq!(j["safe"], false, "{j}");
}
