//! Safe stops: `GET /v1/tasks/{task}/drain` against what a real UDP client was answered, and
//! `ecsdns drain-wait` holding SIGTERM from a real child process until then.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use testkit::http::request;
use testkit::{Process, dig, ecsdns_bin, eventually};

use crate::fixture::{serve_endpoints, temp_dir, write_atomic as write};

const TOKEN: &str = "drain-test-token";

fn endpoint(id: &str, ip: &str, health: Option<&str>) -> String {
    let health = health
        .map(|h| format!("health = \"{h}\"\n"))
        .unwrap_or_default();
    format!(
        "[[service.endpoint]]\nid = \"{id}\"\naddresses = [\"{ip}\"]\nports = {{ http = 8080 }}\n{health}"
    )
}

/// `web` with the given endpoints, and `db` with one healthy and one never-served task.
fn file(web: &[(&str, &str)]) -> String {
    let mut s = String::from("[[service]]\nname = \"web\"\n");
    for (id, ip) in web {
        s.push_str(&endpoint(id, ip, None));
    }
    s.push_str("[[service]]\nname = \"db\"\n");
    s.push_str(&endpoint("db-1", "10.0.1.1", Some("HEALTHY")));
    s.push_str(&endpoint("db-sick", "10.0.1.2", Some("UNHEALTHY")));
    s
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn drain(p: &Process, task: &str, query: &str) -> testkit::http::Reply {
    let url = format!(
        "http://{}/v1/tasks/{}/drain{query}",
        p.api.unwrap(),
        task.replace('/', "%2F")
    );
    request("GET", &url, Some(TOKEN), None)
}

fn served_a(p: &Process) -> Vec<String> {
    let mut v: Vec<String> = dig(p.dns, &["+short", "web.static.ecs.internal", "A"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// A server over an endpoints file with TTL 2 s and a 500 ms margin, tokens on.
fn start(name: &str, web: &[(&str, &str)]) -> (Process, std::path::PathBuf) {
    let dir = temp_dir(name);
    let path = dir.join("endpoints.toml");
    write(&path, file(web));
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).unwrap();
    let p = serve_endpoints(
        &path,
        &[
            "--endpoints-poll",
            "50ms",
            "--ttl",
            "2",
            "--drain-margin",
            "500ms",
            "--api-token-file",
            tokens.to_str().unwrap(),
        ],
    );
    (p, path)
}

#[test]
fn drain_answers_follow_what_dns_served() {
    let (p, path) = start("drain-api", &[("web-1", "10.0.0.1"), ("web-2", "10.0.0.2")]);
    assert_eq!(served_a(&p), vec!["10.0.0.1", "10.0.0.2"]);

    // Served: not safe, no safe time. Tokens apply as everywhere else.
    let r = drain(&p, "web-1", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["served"], true, "{j}");
    assert_eq!(j["safe"], false);
    assert!(j["safeAtMs"].is_null());
    assert_eq!(j["ttl"], 2);
    let arn = j["task"].as_str().unwrap().to_string();
    assert!(arn.ends_with("/web-1"), "{arn}");
    let url = format!("http://{}/v1/tasks/web-1/drain", p.api.unwrap());
    assert_eq!(request("GET", &url, None, None).status, 401);
    // Unknown: 404. Known but never served (unhealthy beside a healthy one): safe at once.
    assert_eq!(drain(&p, "nope", "").status, 404);
    let sick = drain(&p, "db-sick", "").json();
    assert_eq!(
        (sick["served"].clone(), sick["safe"].clone()),
        (false.into(), true.into())
    );
    assert!(sick["lastServedMs"].is_null(), "{sick}");
    // A bounded wait on a served task ends with the wait, still not safe.
    let started = Instant::now();
    let j = drain(&p, "web-1", "?wait=300ms").json();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(j["safe"], false);
    assert_eq!(drain(&p, "web-1", "?wait=soon").status, 400);

    // web-1 leaves the file: a waiting request returns when the cached answers have expired.
    let removed = now_ms();
    write(&path, file(&[("web-2", "10.0.0.2")]));
    let waiter = {
        let arn = arn.clone();
        let api = p.api.unwrap();
        std::thread::spawn(move || {
            let url = format!(
                "http://{api}/v1/tasks/{}/drain?wait=10s",
                arn.replace('/', "%2F")
            );
            let j = request("GET", &url, Some(TOKEN), None).json();
            (j, now_ms())
        })
    };
    eventually(Duration::from_secs(5), "web-1 out of the A set", || {
        (served_a(&p) == vec!["10.0.0.2"]).then_some(())
    });
    let seen_gone = now_ms();
    let (j, returned) = waiter.join().unwrap();
    assert_eq!(j["safe"], true, "{j}");
    assert_eq!(j["served"], false);
    let last = j["lastServedMs"].as_u64().unwrap();
    assert!(
        removed <= last && last <= seen_gone,
        "left DNS between the edit ({removed}) and our client seeing it gone ({seen_gone}): {last}"
    );
    let safe_at = j["safeAtMs"].as_u64().unwrap();
    assert_eq!(
        safe_at,
        last + 2_000 + 1_000 + 500,
        "last served + TTL + cache clock + margin"
    );
    assert!(returned >= safe_at, "returned {returned} before {safe_at}");
    assert!(
        returned < safe_at + 1_000,
        "returned {returned}, safe at {safe_at}"
    );

    // Gone from the registry too: the tombstone still answers, by id and by ARN.
    let by_id = drain(&p, "web-1", "").json();
    assert_eq!(by_id["safe"], true);
    assert_eq!(by_id["task"], arn.as_str());
    assert_eq!(drain(&p, &arn, "").json()["lastServedMs"], last);
}

/// A loopback address nothing listens on.
fn silent_addr_closed() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `ecsdns drain-wait ARGS -- sh -c SCRIPT`, its stderr piped.
fn wrapper(args: &[&str], script: &str) -> Child {
    wrapper_env(args, script, &[])
}

/// [`wrapper`] with extra environment variables.
fn wrapper_env(args: &[&str], script: &str, env: &[(&str, &str)]) -> Child {
    Command::new(ecsdns_bin())
        .envs(env.iter().copied())
        .arg("drain-wait")
        .args(args)
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> (i32, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        assert!(Instant::now() < deadline, "wrapper still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes whose parent is `pid`: (pid, state).
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next());
        if ppid == Some(&pid.to_string()) {
            let child = head.split_whitespace().next().unwrap().parse().unwrap();
            out.push((child, state.unwrap_or("?").to_string()));
        }
    }
    out
}

/// The child's script: records the signals it gets in `log`, exits 7 on SIGTERM, and leaves an
/// orphan behind at start (for the wrapper to reap).
fn script(log: &std::path::Path) -> String {
    let log = log.display();
    format!(
        "trap 'echo USR1 >> {log}' USR1; trap 'echo TERM >> {log}; exit 7' TERM; \
         (sleep 1 &) ; echo up >> {log}; while :; do sleep 0.05; done"
    )
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn wrapper_holds_sigterm_until_safe_and_forwards_the_rest() {
    let (p, path) = start(
        "drain-wrap",
        &[("web-1", "10.0.0.1"), ("web-2", "10.0.0.2")],
    );
    let dir = path.parent().unwrap().to_path_buf();
    let tokens = dir.join("tokens");
    let log = dir.join("child.log");
    let api = format!("http://{}", p.api.unwrap());
    // The task comes from the ECS task metadata endpoint (a stand-in answering its shape).
    let metadata = metadata_endpoint("static:static/web/web-2");
    let mut w = wrapper_env(
        &[
            "--api",
            &api,
            "--token-file",
            tokens.to_str().unwrap(),
            "--max-wait",
            "20s",
        ],
        &script(&log),
        &[("ECS_CONTAINER_METADATA_URI_V4", &metadata)],
    );
    eventually(Duration::from_secs(5), "the child up", || {
        lines(&log).contains(&"up".to_string()).then_some(())
    });
    // The orphan it left is reparented to the wrapper (a subreaper), and reaped when it ends.
    eventually(
        Duration::from_secs(2),
        "the orphan under the wrapper",
        || (children_of(w.id()).len() == 2).then_some(()),
    );
    eventually(Duration::from_secs(3), "the orphan reaped", || {
        (children_of(w.id()).len() == 1).then_some(())
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        children_of(w.id()).iter().all(|(_, state)| state != "Z"),
        "no zombies: {:?}",
        children_of(w.id())
    );

    signal(&w, "USR1");
    eventually(Duration::from_secs(5), "USR1 forwarded at once", || {
        lines(&log).contains(&"USR1".to_string()).then_some(())
    });
    signal(&w, "TERM");
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !lines(&log).contains(&"TERM".to_string()),
        "SIGTERM held while web-2 is served"
    );
    assert!(w.try_wait().unwrap().is_none());

    let removed = Instant::now();
    write(&path, file(&[("web-1", "10.0.0.1")]));
    let (code, err) = wait_exit(&mut w, Duration::from_secs(10));
    let took = removed.elapsed();
    assert_eq!(code, 7, "the child's exit status: {err}");
    assert!(lines(&log).contains(&"TERM".to_string()));
    // TTL 2 s + cache clock 1 s + margin 0.5 s after it left DNS (a poll of 50 ms).
    assert!(
        took >= Duration::from_millis(3_500) && took < Duration::from_millis(5_000),
        "forwarded {took:?} after the edit: {err}"
    );
    assert!(err.contains("safe to stop"), "{err}");
    assert!(err.contains("about static:static/web/web-2"), "{err}");
}

/// A one-request HTTP server answering `GET /v4/ID/task` as the ECS agent does (the fields the
/// wrapper reads, plus some it ignores); its base URL.
fn metadata_endpoint(task_arn: &str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v4/0123abcd", listener.local_addr().unwrap());
    let body = serde_json::json!({
        "Cluster": "static", "TaskARN": task_arn, "Family": "web", "Revision": "3",
        "DesiredStatus": "RUNNING", "KnownStatus": "RUNNING", "LaunchType": "FARGATE",
        "AvailabilityZone": "us-east-1a", "Containers": [],
    })
    .to_string();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 2048];
        let n = stream.read(&mut buf).unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        let reply = if request.starts_with("GET /v4/0123abcd/task ") {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        } else {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
        };
        stream.write_all(reply.as_bytes()).unwrap();
    });
    base
}

/// Starts the wrapper over the test child, sends SIGTERM once the child is up, and waits for
/// the exit: (exit code, the wrapper's log, time from SIGTERM to exit).
fn term_and_wait(
    args: &[&str],
    log: &std::path::Path,
    within: Duration,
) -> (i32, String, Duration) {
    let _ = std::fs::remove_file(log);
    let mut w = wrapper(args, &script(log));
    eventually(Duration::from_secs(5), "the child up", || {
        lines(log).contains(&"up".to_string()).then_some(())
    });
    let started = Instant::now();
    signal(&w, "TERM");
    let (code, err) = wait_exit(&mut w, within);
    (code, err, started.elapsed())
}

#[test]
fn wrapper_falls_back_bounds_the_wait_and_passes_exit_statuses() {
    let dir = temp_dir("drain-fallback");
    let log = dir.join("child.log");
    // Nothing listens on the API port: the fallback wait, said in the log.
    let api = format!("http://{}", silent_addr_closed());
    let args = ["--api", &api, "--task", "t", "--fallback-wait", "1s"];
    let (code, err, took) = term_and_wait(&args, &log, Duration::from_secs(5));
    assert_eq!(code, 7);
    assert!(took >= Duration::from_millis(1_000), "{err}");
    assert!(err.contains("waiting the fallback"), "{err}");

    // A server that accepts and never answers: --max-wait still ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!("http://{}", silent.local_addr().unwrap());
    let args = ["--api", &api, "--task", "t", "--max-wait", "1500ms"];
    let (code, err, took) = term_and_wait(&args, &log, Duration::from_secs(6));
    assert_eq!(code, 7, "{err}");
    assert!(
        took >= Duration::from_millis(1_500) && took < Duration::from_millis(3_500),
        "{took:?}: {err}"
    );
    assert!(err.contains("--max-wait"), "{err}");

    // A second SIGTERM goes through at once.
    let _ = std::fs::remove_file(&log);
    let mut w = wrapper(
        &["--api", &api, "--task", "t", "--max-wait", "20s"],
        &script(&log),
    );
    eventually(Duration::from_secs(5), "the child up", || {
        lines(&log).contains(&"up".to_string()).then_some(())
    });
    signal(&w, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    signal(&w, "TERM");
    let (code, err) = wait_exit(&mut w, Duration::from_secs(3));
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("second SIGTERM"), "{err}");
    drop(silent);

    // As a sidecar: no command; exits 0 once the wait is over.
    let mut sidecar = Command::new(ecsdns_bin())
        .args([
            "drain-wait",
            "--sidecar",
            "--task",
            "t",
            "--fallback-wait",
            "500ms",
        ])
        .args(["--api", &format!("http://{}", silent_addr_closed())])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    signal(&sidecar, "TERM");
    let (code, err) = wait_exit(&mut sidecar, Duration::from_secs(5));
    assert_eq!(code, 0, "{err}");
    assert!(started.elapsed() >= Duration::from_millis(500), "{err}");
    assert!(err.contains("exiting"), "{err}");

    // A child killed by a signal: 128 + N, as a shell reports it.
    let mut w = wrapper(&["--task", "t"], "kill -KILL $$");
    let (code, _) = wait_exit(&mut w, Duration::from_secs(5));
    assert_eq!(code, 137);
    // Usage errors name the problem; exit 2.
    let out = Command::new(ecsdns_bin())
        .args(["drain-wait", "--max-wait", "soon", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-wait=\"soon\""));
}
