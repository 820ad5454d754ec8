//! BIND 9 as a secondary: TSIG-signed SOA refreshes and transfers, then NOTIFY and a transfer on
//! each change, and BIND answering what ecsdns answers, as `transfer.rs` checks with Knot. (BIND
//! signs its SOA refresh query and refuses an unsigned answer: this test found that ecsdns
//! signed only transfers.)

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::fixture::temp_dir;
use crate::transfer::{
    Knot as Secondary, SECRET, change_and_follow, primary_with_secondary, wait_in_step,
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

    wait_in_step(&p, bind, "BIND", Duration::from_secs(20));
    for n in [4, 2] {
        let took = change_and_follow(&p, &file, n, bind, "BIND");
        assert!(took <= Duration::from_secs(2), "{took:?}:\n{}", log());
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
