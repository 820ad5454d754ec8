//! BIND 9 as a secondary: TSIG-signed SOA refreshes and transfers, then NOTIFY and a transfer on
//! each change, and BIND answering what ecsdns answers, as `transfer.rs` checks with Knot. (BIND
//! signs its SOA refresh query and refuses an unsigned answer: this test found that ecsdns
//! signed only transfers.)

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::eventually;

use crate::fixture::temp_dir;
use crate::transfer::{
    Knot as Secondary, SECRET, endpoints, primary_with_secondary, records, serial,
};

fn start_named(dir: &std::path::Path, port: u16, primary: SocketAddr) -> Secondary {
    let conf = dir.join("named.conf");
    std::fs::write(
        &conf,
        format!(
            "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  \
             listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  \
             recursion no;\n  dnssec-validation no;\n  notify no;\n}};\n\
             controls {{ }};\n\
             key \"xfr\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\n\
             zone \"ecs.internal\" {{\n  type secondary;\n  \
             primaries port {pp} {{ {ip} key xfr; }};\n  file \"{d}/ecs.internal.db\";\n  \
             allow-notify {{ {ip}; }};\n}};\n",
            d = dir.display(),
            ip = primary.ip(),
            pp = primary.port()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("named.log")).unwrap();
    let child = Command::new("named")
        .arg("-g")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("named (Debian bind9; ./test.sh installs it)");
    Secondary(child)
}

#[test]
fn bind_follows_by_axfr_then_notify_and_ixfr() {
    let dir = temp_dir("bind-secondary");
    let (p, file, bind) = primary_with_secondary(&dir);
    let named_dir = dir.join("named");
    std::fs::create_dir_all(&named_dir).unwrap();
    let _named = start_named(&named_dir, bind.port(), p.dns);
    let log = || std::fs::read_to_string(named_dir.join("named.log")).unwrap_or_default();

    let ours = serial(p.dns).unwrap();
    eventually(Duration::from_secs(20), "BIND to load the zone", || {
        (serial(bind) == Some(ours)).then_some(())
    });
    let sample = [
        ("web.static.ecs.internal.", "A"),
        ("web.static.ecs.internal.", "SRV"),
        ("_http._tcp.web.static.ecs.internal.", "SRV"),
        ("web-2.web.static.ecs.internal.", "TXT"),
        ("ecs.internal.", "NS"),
    ];
    for (name, qtype) in sample {
        assert_eq!(
            records(bind, name, qtype),
            records(p.dns, name, qtype),
            "{name} {qtype}"
        );
    }
    for n in [4, 2] {
        let before = serial(p.dns).unwrap();
        crate::fixture::write_atomic(&file, endpoints(n));
        let target = eventually(Duration::from_secs(5), "our serial to move", || {
            serial(p.dns).filter(|s| *s != before)
        });
        let changed = Instant::now();
        eventually(Duration::from_secs(10), "BIND to follow", || {
            (serial(bind) == Some(target)).then_some(())
        });
        let took = changed.elapsed();
        eprintln!("bind: reached serial {target} {took:?} after our change");
        assert!(took <= Duration::from_secs(2), "{took:?}:\n{}", log());
        assert_eq!(records(bind, "web.static.ecs.internal.", "A").len(), n);
    }
    let log = log();
    // The first transfer, then one per change, each TSIG-verified by BIND.
    assert!(
        log.matches("Transfer status: success").count() >= 3,
        "{log}"
    );
    assert!(log.contains("TSIG 'xfr'"), "{log}");
    assert!(
        !log.contains("expected a TSIG"),
        "SOA refreshes are signed too: {log}"
    );
}
