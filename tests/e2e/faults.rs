//! Reliability end to end: kill -9 during churn and a warm restart from the state file while AWS
//! is unreachable, throttling and failing (a fault-injecting proxy in front of moto); DNS keeps
//! answering throughout, readiness and metrics say what is going on, and the state converges to
//! ECS's truth with nothing lost and nothing phantom.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ecs::types::NetworkMode;
use testkit::http::{get, metric};
use testkit::{Fault, FaultProxy, Moto, Process, dig, eventually};

use crate::ecs_aws::Aws;
use crate::fixture::{serve_endpoints, temp_dir};

const WAIT: Duration = Duration::from_secs(30);
const NAME: &str = "web.wr.ecs.internal";

fn served(p: &Process) -> BTreeSet<String> {
    dig(p.dns, &["+short", "+tcp", NAME, "A"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn readiness(p: &Process) -> (u16, serde_json::Value) {
    let r = get(&format!("http://{}/readyz", p.api.unwrap()));
    (r.status, r.json())
}

#[test]
fn kill_9_during_churn_then_warm_restart_through_faults_converges() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    aws.cluster("wr");
    let net = aws.network();
    let td = aws.task_definition("web", NetworkMode::Awsvpc, &[("http", 8080)]);
    let mut running = aws.run_awsvpc("wr", &td, 4, "web", &net);
    let proxy = FaultProxy::start(moto.addr());
    let env = moto.env_via(&proxy.url());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = temp_dir("faults");
    let state = dir.join("registry.state");
    let args = [
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--cluster",
        "wr",
        "--reconcile-interval",
        "1s",
        "--state-file",
        state.to_str().unwrap(),
        "--state-interval",
        "100ms",
    ];
    let truth = |running: &[(String, String)]| -> BTreeSet<String> {
        running.iter().map(|(_, ip)| ip.clone()).collect()
    };
    let mut p = Process::start_with_env(&args, &env);
    eventually(WAIT, "the 4 tasks", || {
        (served(&p) == truth(&running)).then_some(())
    });

    // Churn, then kill -9 in the middle of it.
    aws.stop_task("wr", &running.remove(0).0);
    running.extend(aws.run_awsvpc("wr", &td, 2, "web", &net));
    eventually(WAIT, "the churn to be served", || {
        (served(&p) == truth(&running)).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500)); // > the state interval: the file is current
    let before = served(&p);
    aws.stop_task("wr", &running.remove(0).0);
    p.kill();

    // While it is down, ECS moves on; and at restart AWS does not answer at all.
    running.extend(aws.run_awsvpc("wr", &td, 1, "web", &net));
    proxy.set(Fault::Reset);
    let p = Process::start_with_env(&args, &env);
    p.wait_for_log("state restored", WAIT);
    assert_eq!(served(&p), before, "the saved state is served at once");
    let (status, body) = readiness(&p);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["stale"], true, "{body}");

    // Throttling, then server errors, then slow answers: DNS keeps answering the last state.
    proxy.set(Fault::Throttle);
    let api = format!("http://{}/metrics", p.api.unwrap());
    eventually(WAIT, "throttles counted", || {
        let page = get(&api).body;
        (metric(&page, "ecsdns_aws_throttled_total{service=\"ecs\"}").unwrap_or(0.0) > 0.0)
            .then_some(())
    });
    assert_eq!(served(&p), before);
    proxy.set(Fault::ServerError);
    let faulted = proxy.faulted();
    eventually(WAIT, "500s answered", || {
        (proxy.faulted() > faulted + 1).then_some(())
    });
    assert_eq!(served(&p), before);
    let page = get(&api).body;
    assert!(metric(&page, "ecsdns_aws_errors_total{service=\"ecs\"}").unwrap_or(0.0) > 0.0);
    proxy.set(Fault::Slow);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(served(&p), before);

    // Faults stop: the reconcile converges on ECS's truth, nothing lost, nothing phantom.
    proxy.set(Fault::Pass);
    eventually(WAIT, "convergence on ECS's truth", || {
        (served(&p) == truth(&running)).then_some(())
    });
    eventually(WAIT, "ready and no longer stale", || {
        let (status, body) = readiness(&p);
        (status == 200 && body["stale"] == false).then_some(())
    });
    let lost: Vec<_> = truth(&running).difference(&served(&p)).cloned().collect();
    let phantom: Vec<_> = served(&p).difference(&truth(&running)).cloned().collect();
    assert!(
        lost.is_empty() && phantom.is_empty(),
        "lost {lost:?}, phantom {phantom:?}"
    );
}

/// SIGTERM saves the state and exits 0; a corrupt state file is refused with a clear log line
/// and ignored (cold start).
#[test]
fn graceful_stop_saves_state_and_a_corrupt_file_is_refused() {
    let dir = temp_dir("state-stop");
    let endpoints = dir.join("endpoints.toml");
    std::fs::write(
        &endpoints,
        "[[service]]\nname = \"web\"\n[[service.endpoint]]\nid = \"w1\"\naddresses = [\"10.0.0.1\"]\n",
    )
    .unwrap();
    let state = dir.join("state");
    let state_arg = state.to_str().unwrap();
    let mut p = serve_endpoints(
        &endpoints,
        &["--state-file", state_arg, "--state-interval", "1h"],
    );
    assert!(dig(p.dns, &["+short", "web.static.ecs.internal", "A"]).contains("10.0.0.1"));
    assert!(!state.exists(), "not written yet: the interval is an hour");
    assert_eq!(p.stop(), Some(0), "SIGTERM exits 0");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.starts_with("ecsdns-state 1 ecs.internal. "), "{text}");
    assert!(text.contains("10.0.0.1"));

    // A flipped byte: refused, logged, ignored; the endpoints file still serves.
    let mut bytes = text.into_bytes();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x20;
    std::fs::write(&state, bytes).unwrap();
    let mut p = serve_endpoints(&endpoints, &["--state-file", state_arg]);
    p.wait_for_log("state file refused and ignored", WAIT);
    assert!(dig(p.dns, &["+short", "web.static.ecs.internal", "A"]).contains("10.0.0.1"));
    assert_eq!(p.stop(), Some(0));
    assert!(p.stderr().contains("checksum mismatch"));
}

/// Graceful shutdown waits for a TCP query in progress, but only up to its deadline (5 s), and a
/// second signal cuts the wait short.
#[test]
fn shutdown_waits_for_tcp_within_a_deadline_and_a_second_signal_exits_at_once() {
    use std::io::Write;
    let start_half_query = |p: &Process| {
        let mut s = std::net::TcpStream::connect(p.dns).unwrap();
        // A length prefix of 100 bytes and only 10 of them: a query in progress.
        s.write_all(&[0, 100, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0])
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        s
    };
    let dir = crate::fixture::temp_dir("shutdown-grace");
    let file = dir.join("endpoints.toml");
    std::fs::write(&file, crate::transfer::endpoints(1)).unwrap();
    let file = file.to_str().unwrap();
    let serve = ["serve", "--dns-addr", "127.0.0.1:0", "--endpoints", file];
    let mut p = Process::start(&serve);
    let _held = start_half_query(&p);
    let asked = std::time::Instant::now();
    p.signal("TERM");
    assert_eq!(
        p.wait_exit(Duration::from_secs(15)),
        Some(0),
        "exits 0 after the grace"
    );
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took <= Duration::from_secs(8),
        "waited {took:?} for the query in progress (grace: 5 s)"
    );

    let mut p = Process::start(&serve);
    let _held = start_half_query(&p);
    p.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    let asked = std::time::Instant::now();
    p.signal("INT");
    assert_eq!(
        p.wait_exit(Duration::from_secs(5)),
        Some(130),
        "the second signal exits at once"
    );
    assert!(asked.elapsed() < Duration::from_secs(2));
}
