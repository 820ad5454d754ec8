//! Configuration that cannot silently empty a zone (issue 15, point 1): an endpoints file
//! truncated or written in pieces is never served half-way, a reload that drops every endpoint
//! is refused (and reported) unless the file says so, two blocks of one service are an error,
//! file edits made while ecsdns was down win over its state file, and `serve` refuses to start
//! with nothing to serve or no region for its clusters; `ecsdns validate` reports every problem
//! of a file with its line and column.

use std::io::Write;
use std::time::{Duration, Instant};

use testkit::{Process, dig, eventually};

use crate::fixture::{temp_dir, write_atomic};
use crate::transfer::endpoints;

const WAIT: Duration = Duration::from_secs(10);

fn a(p: &Process, name: &str) -> Vec<String> {
    let mut v: Vec<String> = dig(p.dns, &["+short", name, "A"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn serve(file: &std::path::Path, extra: &[&str]) -> Process {
    serve_polling(file, "100ms", extra)
}

fn serve_polling(file: &std::path::Path, poll: &str, extra: &[&str]) -> Process {
    let mut args = vec![
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--endpoints",
        file.to_str().unwrap(),
        "--endpoints-poll",
        poll,
        "--log-format",
        "json",
    ];
    args.extend_from_slice(extra);
    Process::start(&args)
}

#[test]
fn an_emptied_file_is_refused_and_reported_unless_it_says_so() {
    let dir = temp_dir("safe-empty");
    let file = dir.join("endpoints.toml");
    write_atomic(&file, endpoints(3));
    let mut p = serve(&file, &[]);
    let web = "web.static.ecs.internal";
    assert_eq!(a(&p, web).len(), 3);
    let api = format!("http://{}", p.api.unwrap());

    // `: > endpoints.toml`: a valid, empty file. Refused; the three stay.
    std::fs::File::create(&file).unwrap();
    p.wait_for_log("endpoints file rejected", WAIT);
    assert_eq!(a(&p, web).len(), 3, "the zone was emptied");
    let problems = testkit::http::get(&format!("{api}/v1/problems")).json();
    let problem = problems["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "sourceError")
        .unwrap_or_else(|| panic!("no sourceError problem: {problems}"));
    assert_eq!(problem["source"], "endpoints-file");
    let error = problem["error"].as_str().unwrap();
    assert!(
        error.contains("would remove all 3") && error.contains("allow_empty = true"),
        "{error}"
    );
    let (code, out, _) = testkit::run_ecsdns(&["problems", "--api", &api]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("source   endpoints-file: "), "{out}");
    let ready = testkit::http::get(&format!("{api}/readyz")).json();
    let source = ready["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "endpoints-file")
        .unwrap();
    assert_eq!(source["ok"], false, "{ready}");
    assert_eq!(ready["degraded"], true, "{ready}");

    // A comment-only file is no better.
    write_atomic(&file, "# nothing yet\n");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(a(&p, web).len(), 3);

    // Said explicitly: emptied, and the problem is gone.
    write_atomic(&file, "allow_empty = true\n");
    eventually(WAIT, "an empty zone", || {
        a(&p, web).is_empty().then_some(())
    });
    let problems = testkit::http::get(&format!("{api}/v1/problems")).json();
    assert!(!problems.to_string().contains("sourceError"), "{problems}");
    // And a file with endpoints again is served as usual.
    write_atomic(&file, endpoints(2));
    eventually(WAIT, "two endpoints", || {
        (a(&p, web).len() == 2).then_some(())
    });
    assert_eq!(p.stop(), Some(0));
}

#[test]
fn a_file_written_in_pieces_is_only_served_whole() {
    let dir = temp_dir("safe-pieces");
    let file = dir.join("endpoints.toml");
    write_atomic(&file, endpoints(16));
    // A 1 s poll settles for 250 ms: a writer pausing less than that is still writing.
    let mut p = serve_polling(&file, "1s", &[]);
    let web = "web.static.ecs.internal";
    assert_eq!(a(&p, web).len(), 16);
    // A slow writer (a copy over a network mount, an editor saving in place): truncate, then a
    // line every 15 ms, for longer than a poll (so a poll always lands in the middle). The new
    // file moves every endpoint.
    let full = endpoints(16).replace("10.0.0.", "10.9.9.");
    let mut f = std::fs::File::create(&file).unwrap();
    for line in full.split_inclusive('\n') {
        f.write_all(line.as_bytes()).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(15));
    }
    drop(f);
    eventually(WAIT, "the new addresses", || {
        let now = a(&p, web);
        (now.iter().all(|ip| ip.starts_with("10.9.9.")) && now.len() == 16).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    p.stop();
    // Every reload applied the whole file: no partial endpoint count ever reached DNS (before,
    // a poll in the middle of the write served the endpoints written so far).
    let log = p.stderr();
    let reloads: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("endpoints file reloaded"))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["fields"]["endpoints"].as_u64().unwrap()
        })
        .collect();
    assert!(!reloads.is_empty(), "{log}");
    assert!(
        reloads.iter().all(|n| *n == 16),
        "partial reloads {reloads:?}"
    );
}

#[test]
fn two_blocks_of_one_service_are_an_error_not_a_merge() {
    let dir = temp_dir("safe-dup");
    let file = dir.join("endpoints.toml");
    let twice = format!(
        "{}[[service]]\nname = \"db\"\n[[service.endpoint]]\nid = \"db-1\"\naddresses = [\"10.0.1.1\"]\n{}",
        endpoints(1),
        endpoints(1)
            .replace("web-1", "web-9")
            .replace("10.0.0.1", "10.0.0.9")
    );
    std::fs::write(&file, &twice).unwrap();
    let (code, err) = crate::fixture::serve_refused(&file);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "service \"web\" of cluster \"static\" is defined twice (lines 1 and 13): put all its endpoints in one [[service]] block"
        ),
        "{err}"
    );
    assert!(
        err.contains(file.to_str().unwrap()),
        "names the file: {err}"
    );

    // On reload: refused and reported; the good file keeps serving.
    write_atomic(&file, endpoints(2));
    let mut p = serve(&file, &[]);
    write_atomic(&file, &twice);
    p.wait_for_log("defined twice", WAIT);
    assert_eq!(a(&p, "web.static.ecs.internal").len(), 2);
    assert!(a(&p, "db.static.ecs.internal").is_empty());
    assert_eq!(p.stop(), Some(0));
}

#[test]
fn edits_made_while_down_win_over_the_state_file() {
    let dir = temp_dir("safe-restart");
    let file = dir.join("endpoints.toml");
    let state = dir.join("registry.state");
    let state = state.to_str().unwrap();
    write_atomic(&file, endpoints(2));
    let mut p = serve(&file, &["--state-file", state]);
    // Several reloads, so the saved versions are past the first load's.
    for n in [3, 2, 3] {
        write_atomic(&file, endpoints(n));
        eventually(WAIT, "the reload", || {
            (a(&p, "web.static.ecs.internal").len() == n).then_some(())
        });
    }
    assert_eq!(p.stop(), Some(0), "stopped cleanly, state saved");

    // While it is down: web-2 moves, web-3 goes.
    write_atomic(&file, endpoints(2).replace("10.0.0.2", "10.0.0.22"));
    let p = serve(&file, &["--state-file", state]);
    eventually(WAIT, "the edit made while down", || {
        (a(&p, "web.static.ecs.internal") == ["10.0.0.1", "10.0.0.22"]).then_some(())
    });
    // And it stays that way (the restored state never wins later).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a(&p, "web.static.ecs.internal"), ["10.0.0.1", "10.0.0.22"]);
}

#[test]
fn serve_refuses_to_start_with_nothing_to_serve_or_no_region() {
    let started = Instant::now();
    let (code, _, err) =
        testkit::run_ecsdns(&["serve", "--dns-addr", "127.0.0.1:0", "--http-addr", "off"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("nothing to serve"), "{err}");
    assert!(
        err.contains("--endpoints FILE") && err.contains("--cluster NAME"),
        "{err}"
    );

    // A cluster by name, and no region anywhere: an error at once, not retries forever.
    let out = std::process::Command::new(testkit::ecsdns_bin())
        .args([
            "serve",
            "--dns-addr",
            "127.0.0.1:0",
            "--http-addr",
            "off",
            "--cluster",
            "prod",
        ])
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent/ecsdns-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/ecsdns-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It must exit on its own (before, it retried forever): wait at most 20 s.
    let mut out = out;
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = out.kill();
            panic!("serve kept running with no region");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = out.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no AWS region for cluster prod: set --aws-region or AWS_REGION"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// Messages a person can act on: each bad input names the flag or key, the value and what is
/// allowed (issue 15, point 2), and a busy DNS port says so once, with a hint.
#[test]
fn bad_settings_name_the_key_the_value_and_what_is_allowed() {
    let dir = temp_dir("safe-messages");
    let file = dir.join("endpoints.toml");
    std::fs::write(&file, endpoints(1)).unwrap();
    let ports = dir.join("ports.toml");
    std::fs::write(
        &ports,
        "[[service]]\nname = \"cache\"\n[[service.endpoint]]\nid = \"c-1\"\naddresses = [\"10.0.0.1\"]\nports = { redis = 70000 }\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let base = ["serve", "--dns-addr", "127.0.0.1:0", "--endpoints", f];
    let run = |extra: &[&str], endpoints: Option<&str>| {
        let mut args: Vec<&str> = base.to_vec();
        if let Some(e) = endpoints {
            args[4] = e;
        }
        args.extend_from_slice(extra);
        if !extra.contains(&"--http-addr") {
            args.extend(["--http-addr", "off"]);
        }
        testkit::run_ecsdns(&args)
    };
    let cases: Vec<(Vec<&str>, Option<&str>, Vec<&str>)> = vec![
        (
            vec![],
            Some(ports.to_str().unwrap()),
            vec![
                ports.to_str().unwrap(),
                "port redis: 70000 is not a port number (1-65535)",
            ],
        ),
        (
            vec!["--same-az", "frist"],
            None,
            vec![
                "--same-az / [dns] same_az = \"frist\"",
                "is not off, first, or only:N",
            ],
        ),
        (
            vec!["--same-az-service", "web=first"],
            None,
            vec![
                "--same-az-service",
                "\"web\": expected SERVICE.CLUSTER (e.g. web.prod=first)",
            ],
        ),
        (
            vec!["--http-addr", "nowhere.invalid:99999"],
            None,
            vec![
                "invalid HTTP address \"nowhere.invalid:99999\"",
                "localhost:8053",
            ],
        ),
    ];
    for (extra, endpoints, wanted) in cases {
        let (code, _, err) = run(&extra, endpoints);
        assert_ne!(code, Some(0), "{extra:?} was accepted");
        for w in wanted {
            assert!(err.contains(w), "{extra:?}: {err}\nlacks {w:?}");
        }
    }
    // A host name is an address: localhost resolves.
    let p = Process::start(&[
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--endpoints",
        f,
        "--http-addr",
        "localhost:0",
    ]);
    assert!(p.api.unwrap().ip().is_loopback());
    // The DNS port taken: one message, the OS error once, and what to do.
    let (code, _, err) = testkit::run_ecsdns(&[
        "serve",
        "--dns-addr",
        &p.dns.to_string(),
        "--endpoints",
        f,
        "--http-addr",
        "off",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.matches("Address already in use").count(), 1, "{err}");
    assert!(err.contains("choose one with --dns-addr"), "{err}");
    assert_eq!(
        err.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "{err}"
    );
}

#[test]
fn validate_reports_every_problem_with_file_line_and_column() {
    let dir = temp_dir("safe-validate");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[service]]\nname = \"Cache_1\"\n[[service.endpoint]]\nid = \"c-1\"\naddresses = [\"10.0.0.1\"]\n\
         [[service]]\nname = \"web\"\n[[service.endpoint]]\nid = \"w1\"\naddresses = [\"10.0.0.2\"]\nports = { http = 70000 }\n",
    )
    .unwrap();
    let b = bad.to_str().unwrap();
    let (code, out, err) = testkit::run_ecsdns(&["validate", "--endpoints", b]);
    assert_eq!(code, Some(1), "{out}{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "both problems, not just the first: {err}");
    assert!(
        lines[0].starts_with(&format!(
            "{b}:2:8: service \"Cache_1\" is not served as written"
        )),
        "{err}"
    );
    assert!(lines[0].ends_with("write \"cache-1\""), "{err}");
    assert!(
        lines[1].starts_with(&format!("{b}:11:"))
            && lines[1].contains("port http: 70000 is not a port number (1-65535)"),
        "{err}"
    );

    // A good file: exit 0 and what it holds.
    let good = dir.join("good.toml");
    std::fs::write(&good, endpoints(3)).unwrap();
    let (code, out, err) =
        testkit::run_ecsdns(&["validate", "--endpoints", good.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        format!("{}: ok, 1 service, 3 endpoints", good.display())
    );

    // A config file: its values are checked as serve checks them, and the endpoints file it
    // names is checked too.
    let config = dir.join("ecsdns.toml");
    std::fs::write(
        &config,
        format!("endpoints = {b:?}\n[dns]\nsame_az = \"frist\"\n"),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let (code, _, err) = testkit::run_ecsdns(&["validate", "--config", c]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("{c}: --same-az / [dns] same_az = \"frist\"")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{b}:2:8:")),
        "the named endpoints file: {err}"
    );
    // A syntax error in the config: its line and column.
    std::fs::write(&config, "[dns]\nttl = \n").unwrap();
    let (code, _, err) = testkit::run_ecsdns(&["validate", "--config", c]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with(&format!("{c}:2:")), "{err}");
    assert_eq!(err.lines().count(), 1, "one line per problem: {err}");
    // Nothing to check is a usage error.
    let (code, _, err) = testkit::run_ecsdns(&["validate"]);
    assert_eq!(code, Some(2), "{err}");
}
