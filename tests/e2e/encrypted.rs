//! DNS over TLS and DNS over HTTPS, driven by the clients people use: kdig (`+tls`, `+https`,
//! `+https-get`), unbound forwarding over TLS, and openssl's `s_client` to read which
//! certificate is served while it is replaced on disk.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use testkit::http::{get, metric};

use testkit::{Process, Unbound, eventually, kdig, run_ecsdns, run_tool};

use crate::fixture::{rules_endpoints, temp_dir, write_atomic};

const NAME: &str = "dns.test";

/// A self-signed certificate for `dns.test` and 127.0.0.1, written to `dir/NAME.{crt,key}`.
fn certificate(dir: &Path, name: &str) -> (String, String) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let subject = format!("/CN={name}");
    run_tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &subject,
            "-addext",
            &format!("subjectAltName=DNS:{NAME},IP:127.0.0.1"),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    (cert.display().to_string(), key.display().to_string())
}

/// The subject of the certificate a TLS handshake with `addr` gets.
fn served_subject(addr: SocketAddr) -> String {
    let connect = addr.to_string();
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-servername", NAME])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is installed by ./test.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("subject="))
        .unwrap_or_default()
        .replace(' ', "")
}

/// `kdig` over an encrypted transport, checking the certificate against `ca`.
fn kdig_tls(addr: SocketAddr, ca: &str, transport: &str, args: &[&str]) -> String {
    let ca = format!("+tls-ca={ca}");
    let host = format!("+tls-hostname={NAME}");
    let mut all = vec![transport, ca.as_str(), host.as_str()];
    all.extend_from_slice(args);
    kdig(addr, &all)
}

/// kdig over TLS when it may fail: its stdout and stderr together.
fn kdig_tls_any(addr: SocketAddr, ca: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("kdig")
        .args([
            format!("@{}", addr.ip()),
            "-p".into(),
            addr.port().to_string(),
        ])
        .args(["+time=2", "+retry=0", "+tls", &format!("+tls-ca={ca}")])
        .arg(format!("+tls-hostname={NAME}"))
        .args(args)
        .output()
        .expect("kdig is installed by ./test.sh");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The records of kdig's answer section, without TTLs (`NAME TYPE DATA`), as a set.
fn answers(out: &str) -> BTreeSet<String> {
    out.lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", f[0], f[3], f[4..].join(" "))
        })
        .collect()
}

fn banner_value<'a>(p: &'a Process, after: &str) -> &'a str {
    p.banner[0]
        .split(after)
        .nth(1)
        .and_then(|rest| rest.split([';', ' ']).next())
        .unwrap_or_else(|| panic!("no {after:?} in {:?}", p.banner[0]))
}

#[test]
fn dot_and_doh_answer_as_tcp_does_and_pick_up_a_new_certificate() {
    let dir = temp_dir("encrypted");
    let (cert, key) = certificate(&dir, "first");
    let live_cert = dir.join("live.crt");
    let live_key = dir.join("live.key");
    std::fs::copy(&cert, &live_cert).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let endpoints = dir.join("endpoints.toml");
    std::fs::write(&endpoints, rules_endpoints()).unwrap();
    let config = dir.join("ecsdns.toml");
    std::fs::write(
        &config,
        format!(
            "endpoints = {endpoints:?}\n[dns]\nallow_transfer = [\"127.0.0.0/8\"]\n\
             [tls]\ndot_addr = \"127.0.0.1:0\"\ndoh_addr = \"127.0.0.1:0\"\n\
             cert_file = {live_cert:?}\nkey_file = {live_key:?}\nreload_interval = \"100ms\"\n"
        ),
    )
    .unwrap();
    let p = Process::start(&[
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ]);
    let dot: SocketAddr = banner_value(&p, "DNS over TLS on ").parse().unwrap();
    let url = banner_value(&p, "DNS over HTTPS on ");
    let doh: SocketAddr = url
        .trim_start_matches("https://")
        .trim_end_matches("/dns-query")
        .parse()
        .unwrap();
    assert!(url.ends_with("/dns-query"), "{url}");

    // The same records as TCP, for SRV with additionals and for a 60-task A set.
    for (name, rtype) in [
        ("web.prod.ecs.internal", "SRV"),
        ("big.prod.ecs.internal", "A"),
    ] {
        let tcp = answers(&kdig(p.dns, &["+tcp", name, rtype]));
        assert!(!tcp.is_empty(), "{name} {rtype} over TCP");
        let over_tls = kdig_tls(dot, &cert, "+tls", &[name, rtype]);
        assert!(over_tls.contains(";; TLS session"), "{over_tls}");
        assert_eq!(answers(&over_tls), tcp, "{name} {rtype} over TLS");
        for method in ["+https", "+https-get"] {
            let out = kdig_tls(doh, &cert, method, &[name, rtype]);
            assert!(out.contains("status: 200"), "{method}: {out}");
            assert_eq!(answers(&out), tcp, "{name} {rtype} over {method}");
        }
    }
    let big = answers(&kdig_tls(
        dot,
        &cert,
        "+tls",
        &["big.prod.ecs.internal", "A"],
    ));
    assert_eq!(big.len(), 60, "no truncation over TLS");
    for (transport, addr) in [("+tls", dot), ("+https", doh)] {
        let out = kdig_tls(addr, &cert, transport, &["nope.prod.ecs.internal", "A"]);
        assert!(out.contains("status: NXDOMAIN"), "{transport}: {out}");
        assert!(out.contains("SOA"), "negative answers carry the SOA: {out}");
    }
    // Transfers stay on TCP 53 (where the ACL and TSIG apply), even for an allowed client.
    let axfr = kdig_tls_any(dot, &cert, &["ecs.internal", "AXFR"]);
    assert!(axfr.contains("REFUSED"), "{axfr}");
    let signed = kdig_tls_any(
        dot,
        &cert,
        &[
            "-y",
            "hmac-sha256:k1:c2VjcmV0c2VjcmV0c2VjcmV0",
            "ecs.internal",
            "SOA",
        ],
    );
    assert!(signed.contains("REFUSED"), "{signed}");

    // unbound, the caching resolver, forwarding over TLS and checking the certificate.
    let unbound = Unbound::start_tls(
        &dir.join("unbound"),
        "ecs.internal",
        dot,
        NAME,
        Path::new(&cert),
    );
    let via = kdig(unbound.addr, &["web.prod.ecs.internal", "SRV"]);
    assert_eq!(
        answers(&via),
        answers(&kdig(p.dns, &["+tcp", "web.prod.ecs.internal", "SRV"]))
    );
    let api = p.api.unwrap();
    let page = get(&format!("http://{api}/metrics")).body;
    let tls = metric(&page, "ecsdns_dns_queries_total{transport=\"tls\"}").unwrap();
    let https = metric(&page, "ecsdns_dns_queries_total{transport=\"https\"}").unwrap();
    assert!(tls >= 6.0 && https >= 5.0, "tls {tls}, https {https}");

    // A new pair, renamed into place as cert-manager or a deploy would: served to new
    // handshakes without a restart.
    assert_eq!(served_subject(dot), "CN=first");
    let (cert2, key2) = certificate(&dir, "second");
    write_atomic(&live_key, std::fs::read(&key2).unwrap());
    write_atomic(&live_cert, std::fs::read(&cert2).unwrap());
    eventually(
        Duration::from_secs(10),
        "the new certificate served",
        || (served_subject(dot) == "CN=second" && served_subject(doh) == "CN=second").then_some(()),
    );
    let out = kdig_tls(dot, &cert2, "+tls", &["web.prod.ecs.internal", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    // A broken key is refused; the served pair stays.
    write_atomic(&live_key, "-----BEGIN PRIVATE KEY-----\nnot a key\n");
    eventually(Duration::from_secs(10), "the broken key counted", || {
        let page = get(&format!("http://{api}/metrics")).body;
        metric(
            &page,
            "ecsdns_tls_certificate_reloads_total{result=\"error\"}",
        )
        .filter(|n| *n >= 1.0)
    });
    assert_eq!(served_subject(dot), "CN=second");
    let out = kdig_tls(doh, &cert2, "+https", &["web.prod.ecs.internal", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    let page = get(&format!("http://{api}/metrics")).body;
    assert!(metric(&page, "ecsdns_tls_certificate_reloads_total{result=\"ok\"}").unwrap() >= 1.0);
}

#[test]
fn encrypted_listeners_refuse_to_start_without_a_usable_certificate() {
    let dir = temp_dir("encrypted-refused");
    let endpoints = dir.join("endpoints.toml");
    std::fs::write(&endpoints, rules_endpoints()).unwrap();
    let file = endpoints.to_str().unwrap();
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--dns-addr", "127.0.0.1:0", "--http-addr", "off"];
        args.extend_from_slice(&["--endpoints", file]);
        args.extend_from_slice(extra);
        run_ecsdns(&args)
    };
    let (code, _, err) = serve(&["--dot-addr", "127.0.0.1:0"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("needs a certificate and its key"), "{err}");
    let (cert, _) = certificate(&dir, "one");
    let (_, other_key) = certificate(&dir, "two");
    let (code, _, err) = serve(&[
        "--doh-addr",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &other_key,
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("does not match the certificate"), "{err}");
}
