//! `ecsdns demo` as a user runs it: the real binary, checked with dig.

use std::collections::BTreeSet;
use std::time::Duration;

use testkit::{Process, dig, eventually};

fn answers(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn demo_acceptance_with_dig() {
    let mut demo = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--no-churn",
        "--seed",
        "5",
    ]);
    let dns = demo.dns;
    let banner = demo.banner.join("\n");
    assert!(banner.contains("serving DNS on"), "{banner}");

    // web: 3 SRV records with their A records in the additional section
    let out = dig(dns, &["web.demo.ecs.internal", "SRV"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("ANSWER: 3,"),
        "{out}"
    );
    assert!(out.contains("ADDITIONAL: 4"), "3 A records + OPT: {out}");
    let srv = dig(dns, &["+short", "web.demo.ecs.internal", "SRV"]);
    assert_eq!(srv.lines().count(), 3);
    assert!(srv.lines().all(|l| l.starts_with("0 1 8080 ")), "{srv}");

    // api (bridge): the EC2 hosts' addresses and dynamic host ports
    let out = dig(
        dns,
        &[
            "+noall",
            "+answer",
            "+additional",
            "_grpc._tcp.api.demo.ecs.internal",
            "SRV",
        ],
    );
    let lines = answers(&out);
    let srv: Vec<&String> = lines.iter().filter(|l| l.contains("SRV")).collect();
    assert_eq!(srv.len(), 2, "{out}");
    for l in &srv {
        let port: u16 = l.split_whitespace().nth(6).unwrap().parse().unwrap();
        assert!(port >= 32768, "dynamic host port: {l}");
    }
    let hosts: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l.contains("\tA\t") || l.contains(" A "))
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(
        hosts,
        BTreeSet::from(["10.0.100.10", "10.0.101.10"]),
        "{out}"
    );

    // fleet: truncated without EDNS, complete over TCP
    let out = dig(dns, &["+noedns", "+ignore", "fleet.demo.ecs.internal", "A"]);
    assert!(out.contains("flags: qr aa tc"), "{out}");
    let out = dig(dns, &["+tcp", "+short", "fleet.demo.ecs.internal", "A"]);
    assert_eq!(out.lines().count(), 60, "{out}");
    let out = dig(dns, &["+short", "fleet.demo.ecs.internal", "SRV"]);
    assert_eq!(
        out.lines().count(),
        60,
        "SRV over 1232 bytes: TC over UDP, dig retried over TCP: {out}"
    );

    // nope: NXDOMAIN with the SOA
    let out = dig(dns, &["nope.demo.ecs.internal"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(
        out.contains("AUTHORITY: 1") && out.contains("IN\tSOA\tns1.ecs.internal."),
        "{out}"
    );

    // the standalone group is served by its family name
    let out = dig(dns, &["+short", "etl.demo.ecs.internal", "A"]);
    assert_eq!(out.lines().count(), 4, "{out}");

    assert_eq!(demo.stop(), Some(0), "SIGTERM exits 0");
}

#[test]
fn demo_churn_is_visible_in_dns() {
    let demo = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--seed",
        "9",
        "--churn-interval",
        "100ms",
    ]);
    let dns = demo.dns;
    let snapshot = || {
        let web = dig(dns, &["+tcp", "+short", "web.demo.ecs.internal", "A"]);
        let fleet = dig(dns, &["+tcp", "+short", "fleet.demo.ecs.internal", "A"]);
        format!("{web}|{fleet}")
    };
    let first = snapshot();
    eventually(
        Duration::from_secs(20),
        "the demo's answers to change",
        || (snapshot() != first).then_some(()),
    );
}

#[test]
fn help_reads_well() {
    let (code, out, _) = testkit::run_ecsdns(&["--help"]);
    assert_eq!(code, Some(0));
    for word in ["serve", "demo", "services", "problems", "task"] {
        assert!(out.contains(word), "{out}");
    }
    let (code, out, _) = testkit::run_ecsdns(&["serve", "--help"]);
    assert_eq!(code, Some(0));
    for word in [
        "--dns-addr",
        "--zone",
        "--endpoints",
        "--config",
        "--log-format",
    ] {
        assert!(out.contains(word), "{out}");
    }
    let (code, _, err) = testkit::run_ecsdns(&["serve", "--dns-addr", "nonsense"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("invalid value"), "{err}");
}

/// Drain: a task whose desiredStatus turned STOPPED leaves DNS at once, while ECS still reports
/// it RUNNING (the demo stops it for real one churn step later), and the API shows it draining.
#[test]
fn desired_stopped_leaves_dns_before_the_task_stops() {
    let demo = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--seed",
        "5",
        "--churn-interval",
        "1s",
    ]);
    let api = demo.api.unwrap();
    let mut checked = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while checked < 2 && std::time::Instant::now() < deadline {
        let body = testkit::http::get(&format!("http://{api}/v1/services/demo/web")).json();
        let leaving = body["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["desiredStatus"] == "STOPPED" && e["lastStatus"] == "RUNNING");
        let Some(e) = leaving.cloned() else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let ip = e["addresses"][0].as_str().unwrap().to_string();
        let id = e["taskId"].as_str().unwrap().to_string();
        assert_eq!(e["state"], "draining");
        assert_eq!(e["served"], false);
        let service = dig(demo.dns, &["+short", "web.demo.ecs.internal", "A"]);
        let own = dig(demo.dns, &[&format!("{id}.web.demo.ecs.internal"), "A"]);
        let txt = dig(
            demo.dns,
            &["+short", &format!("{id}.web.demo.ecs.internal"), "TXT"],
        );
        // Still RUNNING in ECS after the DNS check: the answers were taken inside the window.
        let after = testkit::http::get(&format!("http://{api}/v1/tasks/{id}"));
        if after.status != 200 || after.json()["lastStatus"] != "RUNNING" {
            continue;
        }
        assert!(
            !service.lines().any(|l| l == ip),
            "{ip} still served: {service}"
        );
        // Its own name stays, with no address (NODATA), and its TXT says why.
        assert!(
            own.contains("status: NOERROR") && own.contains("ANSWER: 0"),
            "{own}"
        );
        assert!(
            txt.starts_with("\"served=no\" \"reason=stopping (desired STOPPED)\""),
            "{txt}"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "saw two tasks on their way out within a minute");
}

/// PTR over UDP for the demo's task addresses in a configured reverse zone, pointing at the task
/// names; empty non-terminals answer NODATA, names outside the reverse zones are REFUSED.
#[test]
fn ptr_records_for_demo_tasks() {
    let demo = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--no-churn",
        "--reverse-zone",
        "10.in-addr.arpa.",
    ]);
    let api = demo.api.unwrap();
    let body = testkit::http::get(&format!("http://{api}/v1/services/demo/web")).json();
    let endpoints = body["endpoints"].as_array().unwrap();
    assert!(!endpoints.is_empty());
    // Two versions of web run: its tasks carry the label `version` of their revision.
    let mut versions: Vec<&str> = endpoints
        .iter()
        .map(|e| e["labels"]["version"].as_str().unwrap())
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, ["v1", "v1", "v2"], "{body}");
    for e in endpoints.iter().filter(|e| e["served"] == true) {
        let ip = e["addresses"][0].as_str().unwrap();
        let ptr = dig(demo.dns, &["+short", "-x", ip]);
        let want = format!("{}.", e["dnsName"].as_str().unwrap());
        assert_eq!(ptr.trim(), want, "PTR of {ip}");
        // And back: the task name's address is the one we asked about.
        assert_eq!(dig(demo.dns, &["+short", &want, "A"]).trim(), ip);
    }
    let ip = endpoints[0]["addresses"][0].as_str().unwrap();
    let octets: Vec<&str> = ip.split('.').collect();
    let ent = format!("{}.{}.10.in-addr.arpa.", octets[2], octets[1]);
    let out = dig(demo.dns, &[&ent, "PTR"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("ANSWER: 0"),
        "{out}"
    );
    let out = dig(demo.dns, &["-x", "10.254.254.254"]);
    assert!(
        out.contains("status: NXDOMAIN") && out.contains("10.in-addr.arpa."),
        "{out}"
    );
    let out = dig(demo.dns, &["-x", "192.168.0.1"]);
    assert!(out.contains("status: REFUSED"), "{out}");
    let soa = dig(demo.dns, &["+short", "10.in-addr.arpa.", "SOA"]);
    assert!(soa.starts_with("ns1.ecs.internal."), "{soa}");
}

#[test]
fn demo_rolls_web_on_request_and_drain_says_when_each_old_task_is_safe() {
    let demo = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--no-churn",
        "--rolling-deploy",
        "60s",
        "--ttl",
        "1",
    ]);
    let banner = demo.wait_for_stdout("Ctrl-C stops", Duration::from_secs(5));
    assert!(
        banner.contains("Rolling deploy of web every 60s"),
        "{banner}"
    );
    assert!(banner.contains("/drain?wait=30s"), "{banner}");
    let api = demo.api.unwrap();
    let ids = || -> BTreeSet<String> {
        let j = testkit::http::get(&format!("http://{api}/v1/services/demo/web")).json();
        j["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["served"] == true)
            .map(|e| e["taskId"].as_str().unwrap().to_string())
            .collect()
    };
    let before = ids();
    assert_eq!(before.len(), 3);
    let first = before.iter().next().unwrap().clone();
    // The deploy starts 10 s in; a waiting drain request for an old task returns once it has
    // left DNS and its TTL (1 s), the cache clock (1 s) and margin (1 s)
    // have passed.
    let waiter = std::thread::spawn(move || {
        let url = format!("http://{api}/v1/tasks/{first}/drain?wait=60s");
        testkit::http::get(&url).json()
    });
    let started = std::time::Instant::now();
    let mut smallest = usize::MAX;
    let after = loop {
        let srv = dig(demo.dns, &["+short", "web.demo.ecs.internal", "SRV"]);
        // A query dig could not complete (";; ..." under a loaded machine) says nothing about
        // what DNS served: only answers count.
        if !srv.contains(";;") {
            smallest = smallest.min(srv.lines().count());
        }
        let now = ids();
        if now.is_disjoint(&before) && now.len() == 3 {
            break now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the deploy did not finish: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(after.len(), 3);
    assert!(
        smallest >= 2,
        "web never dropped below 2 served tasks: {smallest}"
    );
    let j = waiter.join().unwrap();
    assert_eq!(j["safe"], true, "{j}");
    assert_eq!(
        j["safeAtMs"].as_u64().unwrap(),
        j["lastServedMs"].as_u64().unwrap() + 3_000
    );
}

/// Subset names on the demo's two versions of web: by label value (`--subset-label version`)
/// and by task definition revision, with SRV by port and a TXT saying what each holds;
/// `explain` names why the other tasks are left out.
#[test]
fn subsets_by_label_and_revision() {
    let demo = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--no-churn",
        "--subset-label",
        "version",
    ]);
    let api = demo.api.unwrap();
    let body = testkit::http::get(&format!("http://{api}/v1/services/demo/web")).json();
    let by_version = |v: &str| -> BTreeSet<String> {
        body["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["labels"]["version"] == v)
            .map(|e| e["addresses"][0].as_str().unwrap().to_string())
            .collect()
    };
    let short = |name: &str, t: &str| -> BTreeSet<String> {
        dig(demo.dns, &["+short", name, t])
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (v1, v2) = (by_version("v1"), by_version("v2"));
    assert_eq!((v1.len(), v2.len()), (2, 1), "{body}");
    assert_eq!(short("v2.web.demo.ecs.internal", "A"), v2);
    assert_eq!(short("v1.web.demo.ecs.internal", "A"), v1);
    assert_eq!(short("rev-2.web.demo.ecs.internal", "A"), v2, "the canary");
    assert_eq!(short("rev-1.web.demo.ecs.internal", "A"), v1);
    let srv = short("_http._tcp.v2.web.demo.ecs.internal", "SRV");
    assert_eq!(srv.len(), 1, "{srv:?}");
    assert!(srv.iter().all(|r| r.starts_with("0 1 8080 ")), "{srv:?}");
    assert_eq!(
        dig(demo.dns, &["+short", "v2.web.demo.ecs.internal", "TXT"]).trim(),
        "\"label.version=v2\" \"served=1\""
    );
    assert_eq!(
        dig(demo.dns, &["+short", "rev-1.web.demo.ecs.internal", "TXT"]).trim(),
        "\"revision=1\" \"served=2\""
    );
    // A value no task carries has no name.
    let out = dig(demo.dns, &["v9.web.demo.ecs.internal", "A"]);
    assert!(out.contains("NXDOMAIN"), "{out}");
    // explain says why the v1 tasks are not in v2's answer.
    let (code, out, _) = testkit::run_ecsdns(&[
        "explain",
        "v2.web.demo.ecs.internal",
        "--api",
        &format!("http://{api}"),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.ends_with("served, but not labelled version=v2"))
            .count(),
        2,
        "{out}"
    );
}

/// The demo's `api` uses Service Connect: its names list api's tasks, SRV on each task's
/// dynamic `grpc` host port (the service's primary port is `http`), and TXT says whose they are.
#[test]
fn demo_serves_service_connect_names() {
    let demo = Process::start(&["demo", "--dns-addr", "127.0.0.1:0", "--no-churn"]);
    let api = demo.api.unwrap();
    let body = testkit::http::get(&format!("http://{api}/v1/services/demo/api")).json();
    // (task id, grpc host port) of each api task.
    let grpc: Vec<(String, u64)> = body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let port = e["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "grpc")
                .unwrap()["port"]
                .as_u64()
                .unwrap();
            (e["taskId"].as_str().unwrap().to_string(), port)
        })
        .collect();
    assert_eq!(grpc.len(), 2, "{body}");
    for name in ["backend.demo.ecs.internal", "api-grpc.demo.ecs.internal"] {
        let srv: BTreeSet<String> = dig(demo.dns, &["+short", name, "SRV"])
            .lines()
            .map(str::to_string)
            .collect();
        let want: BTreeSet<String> = grpc
            .iter()
            .map(|(id, port)| format!("0 1 {port} {id}.{name}."))
            .collect();
        assert_eq!(srv, want, "{name}");
    }
    assert_eq!(
        dig(demo.dns, &["+short", "backend.demo.ecs.internal", "TXT"]).trim(),
        "\"service-connect=api\" \"port=grpc\" \"client-port=9090\""
    );
}
