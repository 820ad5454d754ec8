//! `ecsdns explain` and `GET /v1/explain`: the answer a client really gets (checked against
//! dig from that client's address), and a reason for every task left out of it.

use std::collections::BTreeSet;

use testkit::{dig, run_ecsdns};

use crate::fixture::{serve_endpoints, temp_dir};

const FILE: &str = r#"
[[service]]
name = "web"
[[service.endpoint]]
id = "a1"
addresses = ["10.0.1.1"]
ports = { http = 8080, metrics = 9100 }
az = "us-east-1a"
[[service.endpoint]]
id = "a2"
addresses = ["10.0.1.2"]
ports = { http = 8080, metrics = 9100 }
az = "us-east-1a"
health = "UNHEALTHY"
[[service.endpoint]]
id = "a3"
addresses = ["10.0.1.3"]
ports = { http = 8080 }
az = "us-east-1a"
[[service.endpoint]]
id = "b1"
addresses = ["10.0.2.1"]
ports = { http = 8080, metrics = 9100 }
az = "us-east-1b"
"#;

#[test]
fn explain_shows_the_clients_answer_and_why_each_task_is_left_out() {
    let dir = temp_dir("explain");
    let path = dir.join("endpoints.toml");
    std::fs::write(&path, FILE).unwrap();
    let p = serve_endpoints(
        &path,
        &[
            "--az-subnet",
            "127.0.0.2/32=us-east-1a",
            "--same-az-service",
            "web.static=only:1",
        ],
    );
    let api = format!("http://{}", p.api.unwrap());
    let run = |args: &[&str]| {
        let mut all = vec!["explain"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--api", &api]);
        run_ecsdns(&all)
    };

    // A client in us-east-1a gets its AZ's served tasks only.
    let (code, out, err) = run(&["web.static.ecs.internal", "--from", "127.0.0.2"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with(
            "web.static.ecs.internal. A from 127.0.0.2 (us-east-1a, same-AZ only:1): NOERROR, 2 records"
        ),
        "{out}"
    );
    assert_eq!(line_of(&out, "a1"), "yes served");
    assert_eq!(line_of(&out, "a3"), "yes served");
    assert_eq!(line_of(&out, "a2"), "no ECS health UNHEALTHY");
    assert_eq!(
        line_of(&out, "b1"),
        "no served, but in us-east-1b: same-AZ answers (only:1) give a client in us-east-1a only its own AZ"
    );
    // The records shown are those the DNS server gives that client.
    let from_a = dig(
        p.dns,
        &["-b", "127.0.0.2", "+short", "web.static.ecs.internal", "A"],
    );
    let dug: BTreeSet<&str> = from_a.lines().collect();
    assert_eq!(dug, BTreeSet::from(["10.0.1.1", "10.0.1.3"]), "{from_a}");
    for ip in &dug {
        assert!(out.contains(&format!("IN A {ip}")), "{ip} in {out}");
    }

    // An unmapped client gets every served task; the unhealthy one stays out.
    let json = testkit::http::get(&format!(
        "{api}/v1/explain?name=web.static.ecs.internal&type=A&from=127.0.0.1"
    ))
    .json();
    assert_eq!(json["clientAz"], serde_json::Value::Null);
    assert_eq!(json["service"], "static/web");
    let held: BTreeSet<&str> = json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["inAnswer"] == true)
        .map(|t| t["taskId"].as_str().unwrap())
        .collect();
    assert_eq!(held, BTreeSet::from(["a1", "a3", "b1"]), "{json}");

    // A port's SRV: a task without that port is named as such.
    let (code, out, _) = run(&["_metrics._tcp.web.static.ecs.internal", "SRV"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(line_of(&out, "a3"), "no served, but has no port metrics");
    assert_eq!(line_of(&out, "b1"), "yes served");

    // A task name: only that task; its TXT answers though it is not served.
    let (code, out, _) = run(&["a2.web.static.ecs.internal", "TXT"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("served=no"), "{out}");
    assert_eq!(
        line_of(&out, "a2"),
        "yes named, but not served: ECS health UNHEALTHY"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l
                .split_whitespace()
                .next()
                .is_some_and(|w| w.starts_with('a') && !w.contains('.')))
            .count(),
        1,
        "{out}"
    );

    // An AZ name: the AZ's served tasks; the others are named as being elsewhere.
    let (code, out, _) = run(&["us-east-1b.web.static.ecs.internal"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(line_of(&out, "b1"), "yes served");
    assert_eq!(
        line_of(&out, "a1"),
        "no served, but in us-east-1a: the name asks for us-east-1b"
    );
    assert_eq!(line_of(&out, "a2"), "no ECS health UNHEALTHY");

    // Names that are not a service: exit 3; a bad type or address: exit 2.
    let (code, out, _) = run(&["nope.static.ecs.internal"]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("NXDOMAIN"), "{out}");
    let (code, _, err) = run(&["web.static.ecs.internal", "BOGUS"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("\"BOGUS\" is not a DNS record type"), "{err}");
    let reply = testkit::http::get(&format!("{api}/v1/explain?name=x&from=nope"));
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.contains("expected an IPv4 or IPv6 address"),
        "{}",
        reply.body
    );
}

/// The words after the task id on `id`'s line.
fn line_of(out: &str, id: &str) -> String {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .unwrap_or_else(|| panic!("no line for {id}: {out}"))
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}
