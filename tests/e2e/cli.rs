//! The operator subcommands against a running `ecsdns serve`: tables, JSON, exit codes, watch,
//! JSON log lines, and no token ever written to the server's log.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::{Process, ecsdns_bin, run_ecsdns};

use crate::fixture::{rules_endpoints, temp_dir};

#[test]
fn cli_against_a_running_server() {
    let dir = temp_dir("cli");
    let endpoints = dir.join("endpoints.toml");
    std::fs::write(&endpoints, rules_endpoints()).unwrap();
    let tokens = dir.join("tokens");
    let token = "tok-5e57c1e4ffa0";
    std::fs::write(&tokens, format!("{token}\n")).unwrap();
    let mut server = Process::start_with_env(
        &[
            "serve",
            "--dns-addr",
            "127.0.0.1:0",
            "--endpoints",
            endpoints.to_str().unwrap(),
            "--endpoints-poll",
            "100ms",
            "--api-token-file",
            tokens.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        &[("RUST_LOG", "debug,hyper=info,h2=info,reqwest=info")],
    );
    let url = format!("http://{}", server.api.unwrap());
    let auth = [
        "--api",
        url.as_str(),
        "--api-token-file",
        tokens.to_str().unwrap(),
    ];
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&auth);
        run_ecsdns(&all)
    };

    let (code, out, err) = run(&["services"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("CLUSTER  SERVICE"), "{out}");
    let web: Vec<&str> = lines
        .iter()
        .find(|l| l.split_whitespace().nth(1) == Some("web"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        web,
        [
            "prod",
            "web",
            "service",
            "3",
            "0",
            "0",
            "0",
            "web.prod.ecs.internal"
        ]
    );
    assert!(out.contains("sick.prod.ecs.internal (fail-open)"), "{out}");

    let (code, out, _) = run(&["services", "--json"]);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["total"], 6);

    let (code, out, _) = run(&["endpoints", "prod", "mixed", "--passing"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 2, "header + the passing one: {out}");
    assert!(out.lines().nth(1).unwrap().starts_with("ok "), "{out}");
    let (code, out, _) = run(&["endpoints", "prod", "web", "--az", "us-east-1a", "--json"]);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["endpoints"][0]["taskId"], "web-1");

    // Exit codes scripts can use.
    let (code, _, err) = run(&["endpoints", "prod", "sick", "--passing"]);
    assert_eq!(code, Some(5), "no passing endpoint: {err}");
    let (code, _, err) = run(&["endpoints", "prod", "nope"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("service prod/nope not found"), "{err}");
    // A typo in a cluster or port is "not found", never an empty table with exit 0.
    let (code, out, err) = run(&["services", "--cluster", "nope"]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        err.contains("cluster nope") && err.contains("known: prod"),
        "{err}"
    );
    let (code, out, err) = run(&["endpoints", "prod", "web", "--port", "nope"]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(err.contains("port nope in prod/web (its ports: "), "{err}");
    // One task, and the problems list.
    let (code, out, err) = run(&["task", "web-1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("service    prod/web"), "{out}");
    assert!(
        out.contains("dns name   web-1.web.prod.ecs.internal"),
        "{out}"
    );
    let (code, _, err) = run(&["task", "no-such-task"]);
    assert_eq!(code, Some(3), "{err}");
    let (code, out, err) = run(&["problems"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "no problems\n");
    // Client subcommands do not offer the server's logging flags.
    let (_, help, _) = run_ecsdns(&["services", "--help"]);
    assert!(!help.contains("--log-format"), "{help}");
    let (_, help, _) = run_ecsdns(&["serve", "--help"]);
    assert!(help.contains("--log-format"), "{help}");
    let (code, _, err) = run_ecsdns(&["services", "--api", &url]);
    assert_eq!(code, Some(4), "no token: {err}");
    let (code, _, _) = run_ecsdns(&["services", "--api", &url, "--api-token", "wrong"]);
    assert_eq!(code, Some(4));
    let (code, _, err) = run_ecsdns(&["services", "--api", "http://127.0.0.1:1"]);
    assert_eq!(code, Some(1), "unreachable: {err}");
    let (code, _, _) = run(&["endpoints", "prod"]);
    assert_eq!(code, Some(2), "usage");
    let (code, _, err) = run(&["reconcile"]);
    assert_eq!(code, Some(1), "409: nothing to reconcile: {err}");

    // watch prints changes as they happen: add an endpoint to the file.
    let mut args = vec!["watch"];
    args.extend_from_slice(&auth);
    let mut watch = Command::new(ecsdns_bin())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let hello = lines.next().unwrap().unwrap();
    assert!(hello.starts_with("watching from"), "{hello}");
    let more = rules_endpoints().replacen(
        "[[service.endpoint]]\nid = \"web-2\"",
        "[[service.endpoint]]\nid = \"web-4\"\naddresses = [\"10.0.0.4\"]\n[[service.endpoint]]\nid = \"web-2\"",
        1,
    );
    assert_ne!(more, rules_endpoints());
    std::fs::write(&endpoints, more).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(line.contains("prod/web: 4 passing, 0 unhealthy"), "{line}");
    // Then the task that changed, by name (the watch read every service's tasks at start).
    let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(line, "  web-4: new, passing");
    let _ = watch.kill();
    let _ = watch.wait();

    // The server logged requests at debug level, but never the token.
    testkit::http::get(&format!("{url}/v1/services?access_token={token}"));
    let log = server.stderr();
    assert!(log.contains("http request"), "debug request log expected");
    assert!(!log.contains(token), "token in the log");
    // JSON lines, as the awslogs driver ships them to CloudWatch Logs.
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert_eq!(server.stop(), Some(0));
}
