//! `ecsdns serve --endpoints FILE`: loading, reloading, and refusing bad files.

use std::time::Duration;

use testkit::{Process, dig, eventually, run_ecsdns};

use crate::fixture::temp_dir;

const ONE: &str = r#"
[[service]]
name = "web"
[[service.endpoint]]
id = "web-1"
addresses = ["10.0.0.1"]
ports = { http = 8080 }
"#;

/// `ONE` plus a second endpoint.
fn two() -> String {
    format!(
        "{ONE}[[service.endpoint]]\nid = \"web-2\"\naddresses = [\"10.0.0.2\"]\nports = {{ http = 8080 }}\n"
    )
}

fn short(dns: std::net::SocketAddr, name: &str, qtype: &str) -> Vec<String> {
    let mut v: Vec<String> = dig(dns, &["+short", name, qtype])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn reloads_on_change_and_keeps_state_on_a_bad_file() {
    let dir = temp_dir("reload");
    let file = dir.join("endpoints.toml");
    crate::fixture::write_atomic(&file, ONE);
    let path = file.to_str().unwrap();
    let mut p = Process::start(&[
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--endpoints",
        path,
        "--endpoints-poll",
        "50ms",
    ]);
    let name = "web.static.ecs.internal";
    assert_eq!(short(p.dns, name, "A"), vec!["10.0.0.1"]);
    assert_eq!(
        short(p.dns, "_http._tcp.web.static.ecs.internal", "SRV").len(),
        1
    );

    crate::fixture::write_atomic(&file, two());
    eventually(Duration::from_secs(10), "the second endpoint", || {
        (short(p.dns, name, "A") == vec!["10.0.0.1", "10.0.0.2"]).then_some(())
    });

    // a bad file (invalid label) is refused and the previous endpoints stay
    crate::fixture::write_atomic(&file, two().replace("web-2", "web 2"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(short(p.dns, name, "A"), vec!["10.0.0.1", "10.0.0.2"]);
    // broken TOML too
    crate::fixture::write_atomic(&file, "[[service]\nname=");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(short(p.dns, name, "A"), vec!["10.0.0.1", "10.0.0.2"]);

    // removing everything empties the zone, when the file says so
    crate::fixture::write_atomic(&file, "allow_empty = true\n");
    eventually(Duration::from_secs(10), "the service to leave", || {
        dig(p.dns, &[name, "A"]).contains("NXDOMAIN").then_some(())
    });
    assert_eq!(p.stop(), Some(0));
    let log = p.stderr();
    assert!(log.contains("endpoints file rejected"), "{log}");
    assert!(
        log.contains("not a DNS label"),
        "the reason is logged: {log}"
    );
}

#[test]
fn json_endpoints_and_config_file() {
    let dir = temp_dir("json");
    let file = dir.join("endpoints.json");
    std::fs::write(
        &file,
        r#"{"service": [{"cluster": "edge", "name": "proxy", "endpoint": [
            {"id": "p1", "addresses": ["10.1.1.1", "fd00::1"], "ports": {"https": 443}}]}]}"#,
    )
    .unwrap();
    let config = dir.join("ecsdns.toml");
    std::fs::write(
        &config,
        format!(
            "endpoints = {:?}\n[dns]\naddr = \"127.0.0.1:0\"\nzone = \"svc.example.\"\nttl = 42\n",
            file.to_str().unwrap()
        ),
    )
    .unwrap();
    let p = Process::start(&["serve", "--config", config.to_str().unwrap()]);
    let out = dig(
        p.dns,
        &["+noall", "+answer", "proxy.edge.svc.example", "AAAA"],
    );
    assert!(out.contains("42\tIN\tAAAA\tfd00::1"), "{out}");
    let out = dig(
        p.dns,
        &["+short", "_https._tcp.proxy.edge.svc.example", "SRV"],
    );
    assert_eq!(out.trim(), "0 1 443 p1.proxy.edge.svc.example.");
}

#[test]
fn a_bad_file_at_startup_is_a_clear_error() {
    let dir = temp_dir("badstart");
    let file = dir.join("endpoints.toml");
    crate::fixture::write_atomic(&file, ONE.replace("10.0.0.1", "not-an-ip"));
    let (code, err) = crate::fixture::serve_refused(&file);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("endpoints file") && err.contains("invalid TOML"),
        "{err}"
    );
    let (code, _, err) = run_ecsdns(&["serve", "--endpoints", "/nonexistent/e.toml"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot read endpoints file"), "{err}");
}

#[test]
fn names_not_served_as_written_are_refused_with_the_name_to_write() {
    // "Api" would be served as "api", "Cache_1" as "cache_1": neither is what the operator
    // wrote, and two blocks "Api" and "api" would silently be one name. Refused, naming what to
    // write instead.
    let dir = temp_dir("collide");
    let file = dir.join("endpoints.toml");
    for (name, message) in [
        ("Api", "service \"Api\" is not served as written"),
        ("Cache_1", "service \"Cache_1\" is not served as written"),
    ] {
        std::fs::write(
            &file,
            format!(
                "[[service]]\nname = \"{name}\"\n[[service.endpoint]]\nid = \"a1\"\naddresses = [\"10.0.0.1\"]\n"
            ),
        )
        .unwrap();
        let (code, err) = crate::fixture::serve_refused(&file);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains(message), "{err}");
        let instead = name.to_ascii_lowercase().replace('_', "-");
        assert!(err.contains(&format!("write \"{instead}\"")), "{err}");
        assert!(err.contains(file.to_str().unwrap()), "{err}");
    }
}

/// A reverse name shared by tasks of two services (bridge tasks on one host share its address)
/// holds both PTRs, and keeps the other when one service goes.
#[test]
fn shared_addresses_keep_every_ptr() {
    let dir = temp_dir("ptr");
    let file = dir.join("endpoints.toml");
    let web = "[[service]]\nname = \"web\"\n[[service.endpoint]]\nid = \"w1\"\naddresses = [\"10.0.0.9\"]\n";
    let api = "[[service]]\nname = \"api\"\n[[service.endpoint]]\nid = \"a1\"\naddresses = [\"10.0.0.9\"]\n";
    crate::fixture::write_atomic(&file, format!("{web}{api}"));
    let p = Process::start(&[
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--endpoints",
        file.to_str().unwrap(),
        "--endpoints-poll",
        "50ms",
        "--reverse-zone",
        "0.10.in-addr.arpa",
    ]);
    let ptrs = |p: &Process| {
        let mut v: Vec<String> = dig(p.dns, &["+short", "-x", "10.0.0.9"])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        ptrs(&p),
        vec!["a1.api.static.ecs.internal.", "w1.web.static.ecs.internal."]
    );
    crate::fixture::write_atomic(&file, web);
    eventually(Duration::from_secs(10), "api's PTR to go", || {
        (ptrs(&p) == vec!["w1.web.static.ecs.internal."]).then_some(())
    });
    crate::fixture::write_atomic(&file, "allow_empty = true\n");
    eventually(Duration::from_secs(10), "the reverse name to go", || {
        dig(p.dns, &["-x", "10.0.0.9"])
            .contains("NXDOMAIN")
            .then_some(())
    });
}

/// Labels in the file are published with each endpoint: the API, Prometheus SD labels, the
/// task's TXT; a bad key is refused with the endpoint named.
#[test]
fn labels_are_published_in_the_api_sd_and_txt() {
    let dir = temp_dir("labels");
    let file = dir.join("endpoints.toml");
    let with_labels = ONE.replace(
        "ports = { http = 8080 }",
        "ports = { http = 8080 }\nlabels = { version = \"v2\", \"team.name\" = \"payments\" }",
    );
    crate::fixture::write_atomic(&file, &with_labels);
    let p = crate::fixture::serve_endpoints(&file, &[]);
    let api = p.api.unwrap();
    let web = testkit::http::get(&format!("http://{api}/v1/services/static/web")).json();
    assert_eq!(
        web["endpoints"][0]["labels"],
        serde_json::json!({"team.name": "payments", "version": "v2"})
    );
    let sd = testkit::http::get(&format!("http://{api}/v1/prometheus-sd?service=web")).json();
    let labels = &sd[0]["labels"];
    assert_eq!(labels["__meta_ecsdns_label_version"], "v2", "{sd}");
    assert_eq!(labels["__meta_ecsdns_label_team_name"], "payments", "{sd}");
    let txt = dig(p.dns, &["+short", "web-1.web.static.ecs.internal", "TXT"]);
    assert!(
        txt.contains("\"label.team.name=payments\" \"label.version=v2\""),
        "{txt}"
    );

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        ONE.replace(
            "ports = { http = 8080 }",
            "labels = { \"bad key\" = \"x\" }",
        ),
    )
    .unwrap();
    let (code, err) = crate::fixture::serve_refused(&bad);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("endpoint web-1 of web.static: label key \"bad key\": use 1-40 letters"),
        "{err}"
    );
}
