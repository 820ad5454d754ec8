//! The stub resolvers applications really link: glibc's and musl's `getaddrinfo`, built from a
//! small C program with gcc and musl-gcc, reading a resolv.conf that points at ecsdns. Each runs
//! in a private mount namespace (`unshare -m`) with its own resolv.conf bind-mounted over
//! /etc/resolv.conf; the machine's file is never touched. And unbound, the caching resolver
//! between applications and ecsdns, with 0x20 and QNAME minimisation on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hickory_proto::rr::RecordType;
use testkit::{Process, a_records, query, srv_records, tcp};

use crate::fixture::temp_dir;

const PROGRAM: &str = r#"
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    struct addrinfo hints, *res, *p;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(argv[1], NULL, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(rc));
        return 1;
    }
    for (p = res; p; p = p->ai_next) {
        char buf[INET_ADDRSTRLEN];
        struct sockaddr_in *sin = (struct sockaddr_in *)p->ai_addr;
        printf("%s\n", inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf));
    }
    freeaddrinfo(res);
    return 0;
}
"#;

/// Builds the program with `compiler` (static, so musl needs no loader on the machine).
fn build(dir: &Path, compiler: &str) -> PathBuf {
    let src = dir.join("resolve.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let bin = dir.join(format!("resolve-{compiler}"));
    let out = Command::new(compiler)
        .args(["-O1", "-static", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("{compiler} (./test.sh installs musl-tools): {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// Runs `bin NAME` with a resolv.conf naming only `server` (port 53), in its own mount
/// namespace; the addresses it printed, or its error.
fn resolve(dir: &Path, bin: &Path, server: &str, name: &str) -> Result<BTreeSet<String>, String> {
    let out = crate::fixture::with_resolv_conf(dir, server, &format!("{} {name}", bin.display()))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The demo's fleet addresses, as the API lists them.
fn fleet(demo: &Process) -> BTreeSet<String> {
    let url = format!("http://{}/v1/services/demo/fleet", demo.api.unwrap());
    testkit::http::get(&url).json()["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["served"] == true)
        .flat_map(|e| e["addresses"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn glibc_and_musl_getaddrinfo_resolve_a_60_task_service() {
    let dir = temp_dir("clients");
    // Stub resolvers only speak to port 53.
    let server = "127.0.0.77";
    let demo = Process::start(&["demo", "--dns-addr", &format!("{server}:53"), "--no-churn"]);
    let all = fleet(&demo);
    assert_eq!(all.len(), 60);
    let name = "fleet.demo.ecs.internal";

    // glibc: no EDNS, TC=1 -> retries over TCP -> every address.
    let glibc = resolve(&dir, &build(&dir, "gcc"), server, name).unwrap();
    assert_eq!(glibc, all, "glibc gets all 60 (TCP fallback)");

    // musl: no EDNS and no TCP fallback: it uses the records the truncated answer carries.
    let musl = resolve(&dir, &build(&dir, "musl-gcc"), server, name)
        .unwrap_or_else(|e| panic!("musl getaddrinfo failed: {e}"));
    println!("musl getaddrinfo: {} of 60 addresses", musl.len());
    assert!(musl.len() >= 20, "{musl:?}");
    assert!(musl.is_subset(&all), "{musl:?}");
    // A small service fits whole for both.
    let web = resolve(
        &dir,
        &build(&dir, "musl-gcc"),
        server,
        "web.demo.ecs.internal",
    )
    .unwrap();
    assert_eq!(web.len(), 3, "{web:?}");
}

#[test]
fn unbound_caches_every_record_of_a_60_task_service() {
    let dir = temp_dir("unbound-client");
    let demo = Process::start(&["demo", "--dns-addr", "127.0.0.1:0", "--no-churn"]);
    let all = fleet(&demo);
    assert_eq!(all.len(), 60);
    let unbound = testkit::Unbound::start_hardened(&dir, "ecs.internal", demo.dns);
    // Sixty A records fit unbound's 1232-byte UDP payload; sixty SRV records do not: unbound
    // gets TC=1 with part of the set, asks again over TCP and caches the whole RRset. Every
    // client behind it gets all of both (asked over TCP here, as clients of big sets must).
    for _ in 0..2 {
        let got: BTreeSet<String> = a_records(&tcp(
            unbound.addr,
            &query("fleet.demo.ecs.internal.", RecordType::A),
        ))
        .iter()
        .map(|a| a.to_string())
        .collect();
        assert_eq!(
            got,
            all,
            "{}: fleet A through unbound",
            testkit::unbound_version()
        );
    }
    let srv = tcp(
        unbound.addr,
        &query("_http._tcp.fleet.demo.ecs.internal.", RecordType::SRV),
    );
    let targets: BTreeSet<_> = srv_records(&srv).into_iter().collect();
    assert_eq!(targets.len(), 60, "fleet SRV through unbound: {targets:?}");
    // A target unbound got no address for in the additional section, it resolves itself.
    let (target, _) = targets.first().unwrap();
    let one = a_records(&tcp(unbound.addr, &query(target, RecordType::A)));
    assert_eq!(one.len(), 1);
    assert!(all.contains(&one[0].to_string()), "{target}: {one:?}");
}
