//! The ECS watcher against a real moto server over HTTP: reconcile from the ECS API, events
//! through SQS, EC2 lookups, outages, and the event -> DNS freshness figure.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::NetworkMode;
use serde_json::{Value, json};
use testkit::http::get;
use testkit::{Moto, Process, dig, eventually};

use crate::ecs_aws::{Aws, detail, instance_event, task_event};

const WAIT: Duration = Duration::from_secs(20);

fn serve(moto: &Moto, extra: &[&str]) -> Process {
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut args = vec!["serve", "--dns-addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Process::start_with_env(&args, &env)
}

/// `serve` watching `cluster` through `queue` only (no periodic reconcile after the first),
/// once the first reconcile is done: events alone drive DNS from then on.
fn serve_events(moto: &Moto, cluster: &str, queue: &str) -> Process {
    let p = serve(
        moto,
        &[
            "--cluster",
            cluster,
            "--sqs-queue-url",
            queue,
            "--reconcile-interval",
            "1h",
            "--cloudwatch-emf",
            "1s",
        ],
    );
    p.wait_for_log("cluster synced", WAIT);
    p
}

fn set(dns: SocketAddr, name: &str, qtype: &str) -> BTreeSet<String> {
    dig(dns, &["+short", "+tcp", name, qtype])
        .lines()
        .map(str::to_string)
        .collect()
}

fn api(p: &Process, path: &str) -> testkit::http::Reply {
    get(&format!("http://{}{path}", p.api.unwrap()))
}

fn strs(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn reconcile_serves_awsvpc_tasks_and_drops_stopped_ones() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    aws.cluster("shop");
    let net = aws.network();
    let td = aws.task_definition(
        "web",
        NetworkMode::Awsvpc,
        &[("http", 8080), ("admin", 9000)],
    );
    let tasks = aws.run_awsvpc("shop", &td, 3, "web", &net);
    let p = serve(&moto, &["--cluster", "shop", "--reconcile-interval", "1s"]);
    // No queue: said at start, with what it costs.
    p.wait_for_log("no SQS queue (--sqs-queue-url)", WAIT);
    let ips: BTreeSet<String> = tasks.iter().map(|(_, ip)| ip.clone()).collect();
    eventually(WAIT, "the 3 tasks in DNS", || {
        (set(p.dns, "web.shop.ecs.internal", "A") == ips).then_some(())
    });
    let srv = set(p.dns, "_http._tcp.web.shop.ecs.internal", "SRV");
    assert_eq!(srv.len(), 3);
    assert!(srv.iter().all(|r| r.starts_with("0 1 8080 ")), "{srv:?}");
    let admin = set(p.dns, "_admin._tcp.web.shop.ecs.internal", "SRV");
    assert!(
        admin.iter().all(|r| r.starts_with("0 1 9000 ")),
        "{admin:?}"
    );
    // per-task name from the task id
    let (arn, ip) = &tasks[0];
    let id = arn.rsplit('/').next().unwrap();
    assert_eq!(
        set(p.dns, &format!("{id}.web.shop.ecs.internal"), "A"),
        strs(&[ip])
    );

    aws.stop_task("shop", arn);
    let rest: BTreeSet<String> = tasks[1..].iter().map(|(_, ip)| ip.clone()).collect();
    eventually(
        WAIT,
        "the stopped task to leave at the next reconcile",
        || (set(p.dns, "web.shop.ecs.internal", "A") == rest).then_some(()),
    );
}

#[test]
fn events_through_sqs_drive_dns_between_reconciles() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let cluster = aws.cluster("ev");
    let queue = aws.queue("ecs-events");
    let td = aws.task_definition(
        "api",
        NetworkMode::Bridge,
        &[("http", 8080), ("grpc", 9090)],
    );
    let (ci, host_ip) = aws.container_instance("ev");
    let p = serve_events(&moto, "ev", &queue);

    let task = |id: &str, version: u64, desired: &str, grpc_port: u16| {
        let arn = format!("arn:aws:ecs:us-east-1:123456789012:task/ev/{id}");
        let mut d = detail(&cluster, &arn, version, "RUNNING", desired);
        d["group"] = json!("service:api");
        d["taskDefinitionArn"] = json!(td);
        d["containerInstanceArn"] = json!(ci);
        d["availabilityZone"] = json!("us-east-1b");
        d["someFieldAwsAddsLater"] = json!({"nested": [1, 2]});
        d["containers"] = json!([{
            "name": "api",
            "lastStatus": "RUNNING",
            "unknownContainerField": true,
            "networkBindings": [
                {"bindIP": "0.0.0.0", "containerPort": 8080, "hostPort": 32768, "protocol": "tcp"},
                {"bindIP": "0.0.0.0", "containerPort": 9090, "hostPort": grpc_port, "protocol": "tcp"},
                {"bindIP": "::", "containerPort": 9090, "hostPort": grpc_port, "protocol": "tcp"},
            ],
        }]);
        task_event(d)
    };
    let grpc = "_grpc._tcp.api.ev.ecs.internal";

    // A bridge task: the EC2 host's address and the dynamic host port.
    aws.send(&queue, &task("aaaa", 5, "RUNNING", 32770));
    eventually(WAIT, "the bridge task's SRV", || {
        (set(p.dns, grpc, "SRV") == strs(&["0 1 32770 aaaa.api.ev.ecs.internal."])).then_some(())
    });
    assert_eq!(
        set(p.dns, "aaaa.api.ev.ecs.internal", "A"),
        strs(&[&host_ip])
    );
    assert_eq!(
        set(p.dns, "api.ev.ecs.internal", "SRV"),
        strs(&["0 1 32768 aaaa.api.ev.ecs.internal."]),
        "the primary port is the definition's first mapping"
    );

    // A duplicate and a stale older version change nothing; garbage does not block the queue.
    aws.send(&queue, &task("aaaa", 5, "RUNNING", 40000));
    aws.send(&queue, &task("aaaa", 4, "RUNNING", 40001));
    aws.send(&queue, "this is not an event");
    aws.send(&queue, &task("bbbb", 1, "RUNNING", 32771));
    eventually(WAIT, "the event after the garbage", || {
        (set(p.dns, grpc, "SRV").len() == 2).then_some(())
    });
    assert!(set(p.dns, grpc, "SRV").contains("0 1 32770 aaaa.api.ev.ecs.internal."));

    // desiredStatus STOPPED leaves DNS at once (the reconcile is an hour away).
    aws.send(&queue, &task("aaaa", 6, "STOPPED", 32770));
    eventually(WAIT, "the stopping task to leave", || {
        (set(p.dns, grpc, "SRV") == strs(&["0 1 32771 bbbb.api.ev.ecs.internal."])).then_some(())
    });

    // The container instance drains: its tasks leave.
    aws.send(&queue, &instance_event(&cluster, &ci, "DRAINING", 7));
    eventually(WAIT, "the draining instance's task to leave", || {
        set(p.dns, grpc, "SRV").is_empty().then_some(())
    });
    let out = dig(p.dns, &["api.ev.ecs.internal", "A"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("ANSWER: 0"),
        "{out}"
    );
    // ...but the API still shows both, as draining, until they stop.
    let detail = api(&p, "/v1/services/ev/api").json();
    let (aaaa, bbbb) = (&detail["endpoints"][0], &detail["endpoints"][1]);
    assert_eq!(
        (aaaa["taskId"].as_str(), bbbb["taskId"].as_str()),
        (Some("aaaa"), Some("bbbb"))
    );
    assert_eq!(aaaa["state"], "draining");
    assert_eq!(aaaa["desiredStatus"], "STOPPED");
    // The task definition's ecsdns.meta.* docker labels, read from ECS (moto), are its labels.
    assert_eq!(
        aaaa["labels"],
        serde_json::json!({"family": "api"}),
        "{detail}"
    );
    assert_eq!(detail["service"]["draining"], 2);
    assert_eq!(bbbb["state"], "draining");
    assert_eq!(bbbb["instanceDraining"], true);
    assert_eq!(bbbb["served"], false);

    let mut p = p;
    p.wait_for_log("poison message left for the dead-letter queue", WAIT);
    let problems = api(&p, "/v1/problems").json();
    let poison = &problems["problems"][0];
    assert_eq!(poison["kind"], "poisonEvent", "{problems}");
    assert!(!poison["messageId"].as_str().unwrap().is_empty());
    let metrics = api(&p, "/metrics").body;
    for series in [
        "ecsdns_events_total{result=\"poison\"}",
        "ecsdns_registry_updates_total{result=\"duplicate\"}",
        "ecsdns_registry_updates_total{result=\"stale\"}",
        "ecsdns_sqs_deleted_total",
        "ecsdns_reconciles_total",
    ] {
        let n = testkit::http::metric(&metrics, series).unwrap_or_else(|| panic!("no {series}"));
        assert!(n >= 1.0, "{series} {n}");
    }
    assert!(metrics.contains("ecsdns_aws_calls_total{service=\"ecs\"}"));
    // The queue's lag, from SQS's SentTimestamp: the messages above waited well under a minute.
    let lag = testkit::http::metric(&metrics, "ecsdns_sqs_message_lag_seconds")
        .expect("no ecsdns_sqs_message_lag_seconds");
    assert!((0.0..60.0).contains(&lag), "lag {lag}");
    let last = testkit::http::metric(&metrics, "ecsdns_sqs_last_message_timestamp_seconds")
        .expect("no ecsdns_sqs_last_message_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(now - last < 120.0, "last message {last}, now {now}");
    // The same figures as CloudWatch EMF: events counted, the lag, both sources up.
    let out = eventually(WAIT, "EMF lines with the events", || {
        let out = p.wait_for_stdout("serving DNS", WAIT);
        let lines = crate::cloudwatch::emf_lines(&out);
        let events: f64 = lines.iter().filter_map(|v| v["Events"].as_f64()).sum();
        (events >= 3.0 && lines.iter().any(|v| v.get("SqsLag").is_some())).then_some(lines)
    });
    for source in ["cluster:ev", "queue"] {
        assert!(
            out.iter()
                .any(|v| v["Source"] == source && v["SourceUp"] == 1.0),
            "{source} up"
        );
    }
    assert!(
        out.iter()
            .any(|v| v.get("PoisonEvents").and_then(Value::as_f64) >= Some(1.0))
    );
    assert_eq!(p.stop(), Some(0));
}

#[test]
fn aws_down_keeps_the_last_state_then_converges() {
    let mut moto = Moto::start();
    let aws = Aws::new(&moto);
    aws.cluster("prod");
    let net = aws.network();
    let td = aws.task_definition("web", NetworkMode::Awsvpc, &[("http", 8080)]);
    let tasks = aws.run_awsvpc("prod", &td, 2, "web", &net);
    let mut p = serve(&moto, &["--cluster", "prod", "--reconcile-interval", "1s"]);
    let before: BTreeSet<String> = tasks.iter().map(|(_, ip)| ip.clone()).collect();
    eventually(WAIT, "the tasks", || {
        (set(p.dns, "web.prod.ecs.internal", "A") == before).then_some(())
    });

    assert_eq!(api(&p, "/readyz").json()["degraded"], false);
    moto.stop();
    p.wait_for_log(
        "cluster reconcile failed; serving the last known state",
        WAIT,
    );
    // Still ready (it serves the last known state), visibly degraded.
    let ready = api(&p, "/readyz");
    assert_eq!(ready.status, 200);
    let body = ready.json();
    assert_eq!(body["degraded"], true, "{body}");
    assert_eq!(body["sources"][0]["name"], "cluster:prod");
    assert_eq!(body["sources"][0]["ok"], false);
    for _ in 0..5 {
        assert_eq!(
            set(p.dns, "web.prod.ecs.internal", "A"),
            before,
            "last state kept"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // moto comes back empty: the new truth is one other task.
    moto.restart();
    let aws = Aws::new(&moto);
    aws.cluster("prod");
    let net = aws.network();
    let td = aws.task_definition("web", NetworkMode::Awsvpc, &[("http", 8080)]);
    let now = aws.run_awsvpc("prod", &td, 1, "web", &net);
    let after = strs(&[&now[0].1]);
    eventually(
        Duration::from_secs(60),
        "convergence on the new truth",
        || (set(p.dns, "web.prod.ecs.internal", "A") == after).then_some(()),
    );
    p.wait_for_log("cluster reconcile works again", WAIT);
    assert_eq!(api(&p, "/readyz").json()["degraded"], false);
    assert_eq!(p.stop(), Some(0));
}

#[test]
fn a_missing_cluster_is_reported_and_others_still_work() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    aws.cluster("real");
    let net = aws.network();
    let td = aws.task_definition("svc", NetworkMode::Awsvpc, &[("http", 80)]);
    let tasks = aws.run_awsvpc("real", &td, 1, "svc", &net);
    let p = serve(
        &moto,
        &[
            "--cluster",
            "ghost",
            "--cluster",
            "real=r",
            "--reconcile-interval",
            "1s",
        ],
    );
    p.wait_for_log("cluster ghost does not exist", WAIT);
    eventually(WAIT, "the real cluster under its alias", || {
        (set(p.dns, "svc.r.ecs.internal", "A") == strs(&[&tasks[0].1])).then_some(())
    });
    // Not ready: one cluster never synced. The reason is there for the operator.
    let ready = api(&p, "/readyz");
    assert_eq!(ready.status, 503);
    let body = ready.json();
    assert_eq!(body["ready"], false);
    let sources = body["sources"].as_array().unwrap();
    let ghost = sources
        .iter()
        .find(|s| s["name"] == "cluster:ghost")
        .unwrap();
    assert_eq!(ghost["synced"], false);
    assert!(ghost["error"].as_str().unwrap().contains("ghost"), "{body}");
    let real = sources.iter().find(|s| s["name"] == "cluster:r").unwrap();
    assert_eq!(
        (real["synced"].as_bool(), real["ok"].as_bool()),
        (Some(true), Some(true))
    );
}

#[test]
fn reconcile_on_request_through_the_api() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    aws.cluster("ops");
    let net = aws.network();
    let td = aws.task_definition("svc", NetworkMode::Awsvpc, &[("http", 80)]);
    let first = aws.run_awsvpc("ops", &td, 1, "svc", &net);
    let dir = crate::fixture::temp_dir("reconcile-api");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "ops-token\n").unwrap();
    let p = serve(
        &moto,
        &[
            "--cluster",
            "ops",
            "--reconcile-interval",
            "1h",
            "--api-token-file",
            tokens.to_str().unwrap(),
        ],
    );
    eventually(WAIT, "the first task", || {
        (set(p.dns, "svc.ops.ecs.internal", "A") == strs(&[&first[0].1])).then_some(())
    });
    let second = aws.run_awsvpc("ops", &td, 1, "svc", &net);
    let url = format!("http://{}", p.api.unwrap());
    let (code, out, err) = testkit::run_ecsdns(&[
        "reconcile",
        "--api",
        &url,
        "--api-token-file",
        tokens.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "reconcile started for 1 cluster(s)");
    eventually(
        WAIT,
        "the second task, an hour before the next scheduled reconcile",
        || {
            (set(p.dns, "svc.ops.ecs.internal", "A") == strs(&[&first[0].1, &second[0].1]))
                .then_some(())
        },
    );
}

/// Freshness: time from an event landing in SQS to the DNS answer changing. Prints p50/p99;
/// the speed itself is a figure for the notes, not an assertion.
#[test]
fn freshness_from_sqs_to_dns() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let cluster = aws.cluster("fresh");
    let queue = aws.queue("fresh-events");
    let td = aws.task_definition("web", NetworkMode::Awsvpc, &[("http", 8080)]);
    let p = serve_events(&moto, "fresh", &queue);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut latencies = Vec::new();
    for i in 0..40u32 {
        let id = format!("f{i:04}");
        let arn = format!("arn:aws:ecs:us-east-1:123456789012:task/fresh/{id}");
        let mut d = detail(&cluster, &arn, 1, "RUNNING", "RUNNING");
        d["group"] = json!("service:web");
        d["taskDefinitionArn"] = json!(td);
        d["launchType"] = json!("FARGATE");
        d["attachments"] = json!([{"type": "eni", "details": [
            {"name": "privateIPv4Address", "value": format!("10.77.{}.{}", i / 200, i % 200 + 1)}]}]);
        let name = format!("{id}.web.fresh.ecs.internal.");
        let query = testkit::query(&name, hickory_proto::rr::RecordType::A)
            .to_vec()
            .unwrap();
        aws.send(&queue, &task_event(d));
        let sent = Instant::now();
        loop {
            let reply = testkit::udp_raw(p.dns, &query, Duration::from_millis(200)).unwrap();
            let answers = u16::from_be_bytes([reply[6], reply[7]]);
            if answers > 0 {
                latencies.push(sent.elapsed());
                break;
            }
            assert!(sent.elapsed() < WAIT, "event {i} never reached DNS");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    latencies.sort();
    let pct = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "freshness over {} events (SQS send -> DNS answer): p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        latencies.last().unwrap()
    );
}

/// Reconcile cost: `ECSDNS_RECONCILE_TASKS` tasks (default 1,000; the issue's figure is 10,000)
/// over 10 services are synced with at most 2 ECS calls per 100 tasks (ListTasks pages of 100,
/// DescribeTasks batches of 100) plus a few task-definition reads. Counted by the server itself
/// (`ecsdns_aws_calls_total`), read over the API.
#[test]
fn reconcile_call_budget() {
    let n: usize = std::env::var("ECSDNS_RECONCILE_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    aws.cluster("big");
    let net = aws.network();
    let td = aws.task_definition("svc", NetworkMode::Awsvpc, &[("http", 80)]);
    let created = Instant::now();
    let mut made = 0;
    for i in 0..n.div_ceil(10) {
        let count = (n - made).min(10);
        made += aws
            .run_awsvpc("big", &td, count as i32, &format!("svc{}", i % 10), &net)
            .len();
    }
    assert_eq!(made, n);
    let created = created.elapsed();
    let started = Instant::now();
    let p = serve(&moto, &["--cluster", "big", "--reconcile-interval", "1h"]);
    eventually(Duration::from_secs(300), "the initial sync", || {
        (api(&p, "/readyz").status == 200).then_some(())
    });
    let synced = started.elapsed();
    let metrics = api(&p, "/metrics").body;
    let value = |series: &str| -> f64 {
        testkit::http::metric(&metrics, series).unwrap_or_else(|| panic!("no {series}"))
    };
    let calls = value("ecsdns_aws_calls_total{service=\"ecs\"}") as usize;
    let took = value("ecsdns_reconcile_duration_seconds{cluster=\"big\"}");
    assert_eq!(value("ecsdns_registry_tasks") as usize, n);
    let budget = 2 * n.div_ceil(100) + 10;
    println!(
        "reconcile: {n} tasks, {calls} ECS calls (budget {budget}), reconcile {took:.2} s, \
         ready {:.2} s after start (moto took {:.1} s to create the tasks)",
        synced.as_secs_f64(),
        created.as_secs_f64()
    );
    assert!(calls <= budget, "{calls} ECS calls for {n} tasks");
}

/// The scale-out model: two stateless replicas, each on its own queue (the EventBridge rule's two
/// targets), both converge from the ECS API and both act on every event.
#[test]
fn replicas_on_their_own_queues_answer_alike() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let cluster = aws.cluster("rep");
    let net = aws.network();
    let td = aws.task_definition("web", NetworkMode::Awsvpc, &[("http", 8080)]);
    let tasks = aws.run_awsvpc("rep", &td, 3, "web", &net);
    let (qa, qb) = (aws.queue("ecsdns-a"), aws.queue("ecsdns-b"));
    let args = |q: &str| {
        [
            "--cluster",
            "rep",
            "--sqs-queue-url",
            q,
            "--reconcile-interval",
            "1h",
        ]
        .map(str::to_string)
    };
    let (aa, ab) = (args(&qa), args(&qb));
    let a = serve(&moto, &aa.iter().map(String::as_str).collect::<Vec<_>>());
    let b = serve(&moto, &ab.iter().map(String::as_str).collect::<Vec<_>>());
    let name = "web.rep.ecs.internal";
    let ips: BTreeSet<String> = tasks.iter().map(|(_, ip)| ip.clone()).collect();
    for p in [&a, &b] {
        eventually(WAIT, "each replica to reconcile", || {
            (set(p.dns, name, "A") == ips).then_some(())
        });
    }
    // One event, delivered to both queues as EventBridge does for a rule with two targets.
    let (arn, ip) = &tasks[0];
    let mut d = detail(&cluster, arn, 100, "RUNNING", "STOPPED");
    d["group"] = json!("service:web");
    let event = task_event(d);
    aws.send(&qa, &event);
    aws.send(&qb, &event);
    let rest: BTreeSet<String> = ips.iter().filter(|i| *i != ip).cloned().collect();
    for p in [&a, &b] {
        eventually(WAIT, "each replica to drop the stopping task", || {
            (set(p.dns, name, "A") == rest).then_some(())
        });
    }
    for qtype in ["A", "SRV"] {
        assert_eq!(set(a.dns, name, qtype), set(b.dns, name, qtype), "{qtype}");
    }
    let state = |p: &Process| {
        let v = api(p, "/v1/services/rep/web").json();
        v["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["taskArn"].to_string(), e["state"].to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        state(&a),
        state(&b),
        "the API agrees too, draining task included"
    );
}

/// A queue idle for longer than one AWS call may take (10 s) is a long poll returning empty,
/// not a failure: the first event after the lull is served at once. (The SDK's attempt timeout
/// once cut every idle 20 s poll at 10 s, and the back-off delayed the next event.)
#[test]
fn an_idle_queue_is_not_a_failure_and_the_next_event_is_served_at_once() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let cluster = aws.cluster("idle");
    let queue = aws.queue("idle-events");
    let mut p = serve_events(&moto, "idle", &queue);
    std::thread::sleep(Duration::from_secs(12));
    let arn = "arn:aws:ecs:us-east-1:123456789012:task/idle/after-the-lull";
    let mut d = detail(&cluster, arn, 1, "RUNNING", "RUNNING");
    d["group"] = json!("service:web");
    d["launchType"] = json!("FARGATE");
    d["attachments"] = json!([{"type": "eni", "details": [
        {"name": "privateIPv4Address", "value": "10.9.0.1"}]}]);
    aws.send(&queue, &task_event(d));
    let sent = Instant::now();
    eventually(WAIT, "the task after the lull", || {
        (set(p.dns, "web.idle.ecs.internal", "A") == strs(&["10.9.0.1"])).then_some(())
    });
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "served {:?} after the event",
        sent.elapsed()
    );
    let ready = api(&p, "/readyz").json();
    let queue_ok = ready["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "queue")
        .map(|s| s["ok"].clone());
    assert_eq!(queue_ok, Some(json!(true)), "{ready}");
    let log = p.stderr();
    assert!(!log.contains("event queue failed"), "{log}");
}
