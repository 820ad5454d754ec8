//! The operator HTTP API over real HTTP: every endpoint, filters and pagination, blocking
//! queries, the SSE stream, metrics, Prometheus SD, tokens and limits.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use model::{Health, Port, Protocol, Task, TaskGroup, TaskStatus, Update};
use serde_json::Value;
use testkit::http::{Reply, get, request, sse};

use crate::fixture::{self, Server, rules_endpoints};

fn base(s: &Server) -> String {
    format!("http://{}", s.app.http_addr().unwrap())
}

/// A task of cluster `prod` for `ingest`.
pub fn task(id: &str, service: &str, ip: &str, version: u64, health: Health) -> Task {
    Task {
        arn: format!("arn:aws:ecs:us-east-1:1:task/prod/{id}").into(),
        cluster: "prod".into(),
        group: TaskGroup::Service(service.into()),
        version,
        last_status: TaskStatus::Running,
        desired_status: TaskStatus::Running,
        health,
        health_checked: true,
        addresses: Box::new([ip.parse().unwrap()]),
        ports: Box::new([Port {
            name: "http".into(),
            port: 8080,
            protocol: Protocol::Tcp,
        }]),
        az: Some("us-east-1c".into()),
        task_definition: Some("web:7".into()),
        container_instance: None,
        started_at: Some("2026-11-28T00:00:00Z".into()),
        check: None,
        labels: None,
        ordinal: None,
        service_connect: None,
    }
}

fn ingest(s: &Server, updates: Vec<Update>) {
    s.rt.block_on(s.app.ingest(updates)).unwrap();
}

fn upsert(s: &Server, id: &str, service: &str, ip: &str, version: u64, health: Health) {
    ingest(
        s,
        vec![Update::Upsert(task(id, service, ip, version, health))],
    );
}

fn names(v: &Value, field: &str, key: &str) -> Vec<String> {
    v[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_string())
        .collect()
}

fn ok(r: Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn services_endpoints_health_tasks_and_sd() {
    let s = fixture::start("api-read", &rules_endpoints(), |_| {});
    let api = base(&s);

    let r = get(&format!("{api}/v1/services"));
    let index = r.index();
    let list = ok(r);
    assert_eq!(list["index"], index);
    let all = names(&list, "services", "service");
    assert_eq!(all, ["big", "mixed", "resolver", "sick", "slow", "web"]);
    assert_eq!(list["total"], 6);
    let by_name = |n: &str| {
        list["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["service"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("web")["passing"], 3);
    assert_eq!(by_name("web")["dnsName"], "web.prod.ecs.internal");
    assert_eq!(by_name("mixed")["passing"], 1);
    assert_eq!(by_name("mixed")["unhealthy"], 1);
    assert_eq!(by_name("sick")["unhealthy"], 2);
    assert_eq!(by_name("sick")["failOpen"], true, "served anyway");
    assert_eq!(by_name("sick")["served"], 2);

    // Pagination walks everything once; without a limit nothing is cut.
    let mut seen = Vec::new();
    let mut url = format!("{api}/v1/services?limit=4");
    loop {
        let page = ok(get(&url));
        assert_eq!(page["total"], 6);
        seen.extend(names(&page, "services", "service"));
        match page["next"].as_str() {
            Some(next) => url = format!("{api}/v1/services?limit=4&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, all);
    let big = ok(get(&format!("{api}/v1/services/prod/big")));
    assert_eq!(
        big["endpoints"].as_array().unwrap().len(),
        60,
        "no silent cap"
    );
    let mut endpoints = BTreeSet::new();
    let mut after = String::new();
    for expected in [25, 25, 10] {
        let page = ok(get(&format!(
            "{api}/v1/services/prod/big?limit=25&after={after}"
        )));
        let ids = names(&page, "endpoints", "taskId");
        assert_eq!(ids.len(), expected);
        endpoints.extend(ids);
        after = page["next"].as_str().unwrap_or_default().to_string();
    }
    assert_eq!(endpoints.len(), 60);
    assert!(after.is_empty(), "the last page has no next cursor");

    // Filters; names are case-insensitive; mistakes are 400/404 with a JSON error.
    // A cluster that is neither watched nor holds services is a typo: 404, naming the known.
    let other = get(&format!("{api}/v1/services?cluster=other"));
    assert_eq!(other.status, 404, "{}", other.body);
    assert!(
        other.body.contains("cluster other (known: prod)"),
        "{}",
        other.body
    );
    assert_eq!(
        ok(get(&format!("{api}/v1/services?cluster=prod")))["total"],
        ok(get(&format!("{api}/v1/services")))["total"]
    );
    let web = ok(get(&format!("{api}/v1/services/PROD/Web")));
    assert_eq!(
        names(&web, "endpoints", "taskId"),
        ["web-1", "web-2", "web-3"]
    );
    let web1 = &web["endpoints"][0];
    assert_eq!(web1["dnsName"], "web-1.web.prod.ecs.internal");
    assert_eq!(web1["az"], "us-east-1a");
    assert_eq!(web1["state"], "passing");
    assert_eq!(
        web1["ports"][0]["name"], "http",
        "file order: the primary port first"
    );
    let in_az = ok(get(&format!("{api}/v1/services/prod/web?az=us-east-1a")));
    assert_eq!(names(&in_az, "endpoints", "taskId"), ["web-1"]);
    assert_eq!(in_az["total"], 1);
    let port = |svc: &str, p: &str| {
        ok(get(&format!("{api}/v1/services/prod/{svc}?port={p}")))["total"].clone()
    };
    assert_eq!(port("resolver", "dns"), 1);
    // A port no task of the service has: 404 with the ports it has, not an empty list.
    let no_port = get(&format!("{api}/v1/services/prod/resolver?port=http"));
    assert_eq!(no_port.status, 404, "{}", no_port.body);
    assert!(no_port.body.contains("its ports: dns"), "{}", no_port.body);
    let bad = get(&format!("{api}/v1/services?colour=red"));
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("colour"));
    assert_eq!(get(&format!("{api}/v1/services?limit=zero")).status, 400);
    let missing = get(&format!("{api}/v1/services/prod/nope"));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["status"], 404);
    assert_eq!(get(&format!("{api}/v2/anything")).status, 404);

    // Health: ?passing keeps usable endpoints only; fail-open does not make one pass.
    let mixed = ok(get(&format!("{api}/v1/health/prod/mixed")));
    let states: Vec<&str> = mixed["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["unhealthy", "passing"]);
    // A DNS name only for what DNS serves: the unhealthy one (beside a healthy one) has none.
    let dns_names: Vec<&serde_json::Value> = mixed["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["dnsName"])
        .collect();
    assert!(dns_names[0].is_null(), "{mixed}");
    assert_eq!(dns_names[1], "ok.mixed.prod.ecs.internal");
    // Fail-open serves the sick ones, so they have their names.
    let sick_all = ok(get(&format!("{api}/v1/health/prod/sick")));
    assert!(
        sick_all["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["dnsName"].is_string()),
        "{sick_all}"
    );
    let passing = ok(get(&format!("{api}/v1/health/prod/mixed?passing")));
    assert_eq!(names(&passing, "endpoints", "taskId"), ["ok"]);
    let sick = ok(get(&format!("{api}/v1/health/prod/sick?passing")));
    assert_eq!(sick["total"], 0);
    assert_eq!(sick["service"]["failOpen"], true);

    // Tasks by id or ARN.
    let t = ok(get(&format!("{api}/v1/tasks/web-2")));
    assert_eq!(
        (t["cluster"].as_str(), t["service"].as_str()),
        (Some("prod"), Some("web"))
    );
    let by_arn = get(&format!(
        "{api}/v1/tasks/{}",
        t["taskArn"].as_str().unwrap().replace('/', "%2F")
    ));
    assert_eq!(ok(by_arn)["taskId"], "web-2");
    assert_eq!(get(&format!("{api}/v1/tasks/nope")).status, 404);

    // Prometheus HTTP SD: one group per endpoint and port, labels per target.
    let sd = ok(get(&format!(
        "{api}/v1/prometheus-sd?service=web&port=http"
    )));
    let groups = sd.as_array().unwrap();
    assert_eq!(groups.len(), 3);
    let targets: BTreeSet<String> = groups
        .iter()
        .flat_map(|g| g["targets"].as_array().unwrap().clone())
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let expected = [
        "10.0.0.1:8080",
        "10.0.0.2:8080",
        "10.0.0.3:8080",
        "[fd00::3]:8080",
    ];
    assert_eq!(targets, expected.iter().map(|s| s.to_string()).collect());
    let web1 = groups
        .iter()
        .find(|g| g["labels"]["__meta_ecsdns_task_id"] == "web-1")
        .unwrap();
    assert_eq!(web1["labels"]["__meta_ecsdns_cluster"], "prod");
    assert_eq!(web1["labels"]["__meta_ecsdns_service"], "web");
    assert_eq!(web1["labels"]["__meta_ecsdns_az"], "us-east-1a");
    assert_eq!(web1["labels"]["__meta_ecsdns_port_name"], "http");
    let everything = ok(get(&format!("{api}/v1/prometheus-sd")));
    assert!(everything.as_array().unwrap().len() > 60);
    // A port no endpoint has: still a list (Prometheus keeps stale targets when a refresh
    // fails), with a warning header naming the ports there are.
    let typo = get(&format!("{api}/v1/prometheus-sd?port=metrics"));
    assert_eq!((typo.status, typo.body.trim()), (200, "[]"));
    let warning = typo
        .header("x-ecsdns-warning")
        .unwrap_or_default()
        .to_string();
    assert!(
        warning.starts_with("no endpoint has port metrics (ports known: ")
            && warning.contains("http"),
        "{warning}"
    );

    // Problems: a name that cannot be a DNS label is reported, not dropped.
    assert_eq!(
        ok(get(&format!("{api}/v1/problems")))["problems"],
        serde_json::json!([])
    );
    upsert(&s, "odd", "has.dot", "10.9.0.1", 1, Health::Healthy);
    let problems = ok(get(&format!("{api}/v1/problems")));
    let p = &problems["problems"][0];
    assert_eq!(p["kind"], "invalidName", "{problems}");
    assert_eq!(p["name"], "has.dot");
    assert_eq!(p["tasks"], 1);

    // Health of the process itself.
    assert_eq!(get(&format!("{api}/healthz")).status, 200);
    let ready = ok(get(&format!("{api}/readyz")));
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["degraded"], false);
    assert_eq!(ready["sources"][0]["name"], "endpoints-file");
}

#[test]
fn blocking_queries_wake_on_change_and_time_out() {
    let s = fixture::start("api-block", &rules_endpoints(), |_| {});
    let api = base(&s);
    let index = get(&format!("{api}/v1/services/prod/web")).index();

    // Nothing changes: the query returns after `wait` with the same index.
    let started = Instant::now();
    let r = get(&format!(
        "{api}/v1/services/prod/web?index={index}&wait=400ms"
    ));
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(r.index(), index);

    // A change elsewhere does not wake a service query; a change to the service does.
    let (tx, rx) = mpsc::channel();
    let url = format!("{api}/v1/services/prod/web?index={index}&wait=30s");
    std::thread::spawn(move || tx.send((get(&url), Instant::now())).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    upsert(&s, "m3", "mixed", "10.3.0.3", 1, Health::Healthy);
    assert!(
        rx.recv_timeout(Duration::from_millis(600)).is_err(),
        "woke for another service"
    );
    let changed_at = Instant::now();
    upsert(&s, "web-4", "web", "10.0.0.4", 1, Health::Healthy);
    let (reply, returned_at) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(returned_at.duration_since(changed_at) < Duration::from_secs(2));
    assert!(reply.index() > index);
    let body = reply.json();
    assert!(names(&body, "endpoints", "taskId").contains(&"web-4".to_string()));

    // The list query wakes on any change; an index from the future answers at once.
    let now = reply.index();
    let url = format!("{api}/v1/services?index={now}&wait=30s");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(get(&url)).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    upsert(&s, "m4", "mixed", "10.3.0.4", 1, Health::Healthy);
    let woke = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(woke.index() > now);
    let started = Instant::now();
    let future = get(&format!("{api}/v1/services?index={}&wait=30s", now + 1000));
    assert_eq!(future.status, 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        get(&format!("{api}/v1/services?index=1&wait=later")).status,
        400
    );
}

fn next(rx: &mpsc::Receiver<testkit::http::SseEvent>) -> (String, Value, String) {
    let e = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("no event within 10 s");
    let data = serde_json::from_str(&e.data).unwrap();
    (e.event, data, e.id)
}

#[test]
fn watch_stream_delivers_changes_health_and_removals() {
    let s = fixture::start("api-watch", &rules_endpoints(), |_| {});
    let api = base(&s);
    let all = sse(&format!("{api}/v1/watch"), None);
    let only_mixed = sse(&format!("{api}/v1/watch?service=mixed"), None);
    let (event, hello, _) = next(&all);
    assert_eq!(event, "hello");
    let start = hello["index"].as_u64().unwrap();
    assert_eq!(next(&only_mixed).0, "hello");

    upsert(&s, "web-4", "web", "10.0.0.4", 1, Health::Healthy);
    let (event, data, id) = next(&all);
    assert_eq!(event, "service");
    assert_eq!(
        (data["cluster"].as_str(), data["service"].as_str()),
        (Some("prod"), Some("web"))
    );
    assert_eq!(data["summary"]["passing"], 4);
    assert_eq!(id, data["index"].to_string());
    assert!(names(&data, "endpoints", "taskId").contains(&"web-4".to_string()));

    // A health change is a change.
    upsert(&s, "web-4", "web", "10.0.0.4", 2, Health::Unhealthy);
    let (_, data, _) = next(&all);
    let web4 = data["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["taskId"] == "web-4")
        .unwrap()
        .clone();
    assert_eq!(web4["state"], "unhealthy");
    assert_eq!(data["summary"]["unhealthy"], 1);

    // The filtered stream saw none of that; it sees its service, and its removal.
    assert!(only_mixed.recv_timeout(Duration::from_millis(300)).is_err());
    let arns: Vec<(String, u64)> = ok(get(&format!("{api}/v1/services/prod/mixed")))["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["taskArn"].as_str().unwrap().to_string(),
                e["version"].as_u64().unwrap(),
            )
        })
        .collect();
    let removes = arns
        .into_iter()
        .map(|(arn, version)| Update::Remove {
            arn,
            version: version + 1,
        })
        .collect();
    ingest(&s, removes);
    let (_, data, _) = next(&only_mixed);
    assert_eq!(data["service"], "mixed");
    assert_eq!(data["removed"], true);
    let (_, data, _) = next(&all);
    assert_eq!(data["removed"], true);

    // Resuming from an index replays what changed since, coalesced per service.
    let resumed = sse(&format!("{api}/v1/watch?index={start}"), None);
    assert_eq!(next(&resumed).0, "hello");
    let mut replayed = BTreeSet::new();
    for _ in 0..2 {
        let (_, data, _) = next(&resumed);
        replayed.insert(data["service"].as_str().unwrap().to_string());
    }
    assert_eq!(
        replayed,
        ["mixed", "web"].iter().map(|s| s.to_string()).collect()
    );
}

/// A sample's value in a Prometheus text page (0 when absent: counters start at zero).
fn sample(page: &str, series: &str) -> f64 {
    testkit::http::metric(page, series).unwrap_or(0.0)
}

#[test]
fn metrics_move_with_queries_and_updates() {
    let s = fixture::start("api-metrics", &rules_endpoints(), |_| {});
    let api = base(&s);
    let scrape = || {
        let r = get(&format!("{api}/metrics"));
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        r.body
    };
    let before = scrape();
    for _ in 0..5 {
        testkit::udp(
            s.dns,
            &testkit::query("web.prod.ecs.internal.", RecordType::A),
        );
    }
    for _ in 0..3 {
        testkit::tcp(
            s.dns,
            &testkit::query("web.prod.ecs.internal.", RecordType::SRV),
        );
    }
    testkit::udp(
        s.dns,
        &testkit::query("nope.prod.ecs.internal.", RecordType::A),
    );
    upsert(&s, "web-4", "web", "10.0.0.4", 1, Health::Healthy);
    let after = scrape();
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        moved("ecsdns_dns_responses_by_qtype_total{qtype=\"A\"}"),
        6.0
    );
    assert_eq!(
        moved("ecsdns_dns_responses_by_qtype_total{qtype=\"SRV\"}"),
        3.0
    );
    assert_eq!(
        moved("ecsdns_dns_responses_by_rcode_total{rcode=\"NXDOMAIN\"}"),
        1.0
    );
    assert_eq!(moved("ecsdns_dns_queries_total{transport=\"udp\"}"), 6.0);
    assert_eq!(moved("ecsdns_dns_queries_total{transport=\"tcp\"}"), 3.0);
    // Latency is recorded just after the answer is sent: allow the server that moment.
    testkit::eventually(Duration::from_secs(5), "9 latency samples", || {
        let now = scrape();
        let n = sample(&now, "ecsdns_dns_latency_seconds_count")
            - sample(&before, "ecsdns_dns_latency_seconds_count");
        (n == 9.0).then_some(())
    });
    assert_eq!(
        moved("ecsdns_registry_updates_total{result=\"applied\"}"),
        1.0
    );
    testkit::eventually(Duration::from_secs(5), "an update-visible sample", || {
        let now = scrape();
        (sample(&now, "ecsdns_update_visible_seconds_count")
            > sample(&before, "ecsdns_update_visible_seconds_count"))
        .then_some(())
    });
    assert_eq!(sample(&after, "ecsdns_registry_tasks"), 70.0);
    assert_eq!(
        sample(&after, "ecsdns_source_up{source=\"endpoints-file\"}"),
        1.0
    );
    // Well-formed: every sample belongs to a family announced with HELP and TYPE.
    let mut families = BTreeSet::new();
    for line in after.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.insert(rest.split(' ').next().unwrap().to_string());
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| families.contains(*f)))
                .unwrap_or(name);
            assert!(families.contains(family), "no TYPE for {line}");
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
        }
    }
}

#[test]
fn tokens_guard_everything_but_process_health() {
    let dir = fixture::temp_dir("api-tokens");
    let tokens = dir.join("tokens");
    std::fs::write(
        &tokens,
        "# current, then the one being rotated in\ns3cret\nrotated\n",
    )
    .unwrap();
    let s = fixture::start("api-auth", &rules_endpoints(), |s| {
        s.api_token_file = Some(tokens.clone());
    });
    let api = base(&s);
    for path in [
        "/metrics",
        "/v1/services",
        "/v1/overview",
        "/v1/explain?name=web.prod.ecs.internal",
        "/v1/services/prod/web",
        "/v1/health/prod/web?passing",
        "/v1/tasks/web-1",
        "/v1/problems",
        "/v1/prometheus-sd",
        "/v1/watch",
        "/no/such/path",
    ] {
        let url = format!("{api}{path}");
        let r = get(&url);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"ecsdns\"")
        );
        assert_eq!(
            request("GET", &url, Some("wrong"), None).status,
            401,
            "{path}"
        );
        if path == "/v1/watch" {
            continue; // a stream: checked below
        }
        let expected = if path == "/no/such/path" { 404 } else { 200 };
        assert_eq!(
            request("GET", &url, Some("s3cret"), None).status,
            expected,
            "{path}"
        );
        assert_eq!(
            request("GET", &url, Some("rotated"), None).status,
            expected,
            "{path}"
        );
    }
    let q = format!("{api}/v1/services?access_token=s3cret");
    assert_eq!(get(&q).status, 200, "RFC 6750 query parameter");
    let watch = sse(&format!("{api}/v1/watch"), Some("s3cret"));
    assert_eq!(next(&watch).0, "hello");

    // The dashboard page holds no data: it loads without a token and asks for one.
    let page = get(&format!("{api}/"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"signin\""), "the sign-in form");

    // Load balancers cannot send tokens: process health stays open, without error texts.
    assert_eq!(get(&format!("{api}/healthz")).status, 200);
    assert_eq!(get(&format!("{api}/readyz")).status, 200);

    // Mutations always need a token; with one, this server has nothing to reconcile.
    let post = |token: Option<&str>, body: Option<Vec<u8>>| {
        request("POST", &format!("{api}/v1/reconcile"), token, body)
    };
    assert_eq!(post(None, None).status, 401);
    let r = post(Some("s3cret"), None);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("no ECS cluster")
    );
    // An oversized body is refused from its declared length, before it is read.
    {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(s.app.http_addr().unwrap()).unwrap();
        c.write_all(
            b"POST /v1/reconcile HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\
              Content-Length: 1048576\r\n\r\n",
        )
        .unwrap();
        let mut head = [0u8; 12];
        c.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 413");
    }

    // Without tokens configured, mutations are off altogether.
    let open = fixture::start("api-open", &rules_endpoints(), |_| {});
    let r = request("POST", &format!("{}/v1/reconcile", base(&open)), None, None);
    assert_eq!(r.status, 403);
}

#[test]
fn slow_headers_are_cut_off_and_shutdown_does_not_wait_for_streams() {
    use std::io::{Read, Write};
    let s = fixture::start("api-slow", &rules_endpoints(), |_| {});
    let api = base(&s);
    let addr = s.app.http_addr().unwrap();
    // A client that never finishes its headers is disconnected (10 s header timeout).
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /v1/services HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let n = slow.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        n == 0 || answer.starts_with("HTTP/1.1 408"),
        "expected a close or 408, got {answer:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(8) && waited < Duration::from_secs(19),
        "{waited:?}"
    );
    // Shutdown with a watch stream open finishes promptly.
    let stream = sse(&format!("{api}/v1/watch"), None);
    assert_eq!(next(&stream).0, "hello");
    let Server { app, rt, .. } = s;
    let started = Instant::now();
    rt.block_on(app.shutdown());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
