//! Go's own DNS resolver (`GODEBUG=netdns=go`, what most Go services and sidecars use): a small
//! program built with the Debian Go toolchain looks up A and SRV records through a resolv.conf
//! pointing at `ecsdns demo` on port 53, inside a private mount namespace.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use hickory_proto::rr::RecordType;
use testkit::{Process, a_records, query, srv_records, tcp};

use crate::fixture::temp_dir;

const PROGRAM: &str = r#"package main

import (
	"context"
	"fmt"
	"net"
	"os"
)

func main() {
	r := &net.Resolver{PreferGo: true}
	ctx := context.Background()
	switch os.Args[1] {
	case "host":
		addrs, err := r.LookupHost(ctx, os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, a := range addrs {
			fmt.Println(a)
		}
	case "srv":
		_, srvs, err := r.LookupSRV(ctx, "", "", os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, s := range srvs {
			fmt.Printf("%s:%d\n", s.Target, s.Port)
		}
	}
}
"#;

/// Builds the program (static: the pure Go resolver, no cgo).
fn build(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("main.go"), PROGRAM).unwrap();
    std::fs::write(dir.join("go.mod"), "module resolve\n\ngo 1.19\n").unwrap();
    let bin = dir.join("resolve-go");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(dir)
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .output()
        .unwrap_or_else(|e| panic!("cannot run go ({e}); ./test.sh installs golang-go"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// Runs one lookup with a resolv.conf naming only `server`.
fn lookup(dir: &Path, bin: &Path, server: &str, kind: &str, name: &str) -> BTreeSet<String> {
    let command = format!("{} {kind} {name}", bin.display());
    let out = crate::fixture::with_resolv_conf(dir, server, &command)
        .env("GODEBUG", "netdns=go")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go {kind} {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn gos_resolver_gets_every_address_and_srv_record() {
    let dir = temp_dir("go-resolver");
    let server = "127.0.0.79";
    let demo = Process::start(&["demo", "--dns-addr", &format!("{server}:53"), "--no-churn"]);
    let bin = build(&dir);
    for service in ["web", "fleet"] {
        let name = format!("{service}.demo.ecs.internal.");
        let want_a: BTreeSet<String> = a_records(&tcp(demo.dns, &query(&name, RecordType::A)))
            .iter()
            .map(ToString::to_string)
            .collect();
        let want_srv: BTreeSet<String> =
            srv_records(&tcp(demo.dns, &query(&name, RecordType::SRV)))
                .into_iter()
                .map(|(target, port)| format!("{target}:{port}"))
                .collect();
        assert!(!want_a.is_empty() && !want_srv.is_empty());
        // 60 records do not fit a UDP answer: Go retries over TCP and gets them all.
        assert_eq!(
            lookup(&dir, &bin, server, "host", &name),
            want_a,
            "{name} A"
        );
        assert_eq!(
            lookup(&dir, &bin, server, "srv", &name),
            want_srv,
            "{name} SRV"
        );
    }
}
