//! Prometheus as a client: `dns_sd_configs` by SRV and by A (through Go's resolver, which reads
//! /etc/resolv.conf: Prometheus runs in a private mount namespace with its own resolv.conf
//! pointing at `ecsdns demo` on port 53) and `http_sd_configs` on the API, each read back from
//! Prometheus's `/api/v1/targets` and compared with what ecsdns serves.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use testkit::{Process, a_records, query, srv_records, tcp};

use crate::fixture::temp_dir;

/// Prometheus, killed on drop.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `target:port` of every SRV record of `name` (the form Prometheus gives `__address__`).
fn srv_addresses(dns: std::net::SocketAddr, name: &str) -> BTreeSet<String> {
    srv_records(&tcp(dns, &query(name, RecordType::SRV)))
        .into_iter()
        .map(|(target, port)| format!("{}:{port}", target.trim_end_matches('.')))
        .collect()
}

/// Discovered `__address__`es per job, from Prometheus's API.
fn discovered(web: &str) -> BTreeMap<String, BTreeSet<String>> {
    // Not listening yet: nothing discovered (the HTTP helper would fail the test).
    if std::net::TcpStream::connect(web).is_err() {
        return BTreeMap::new();
    }
    let r = testkit::http::get(&format!("http://{web}/api/v1/targets?state=active"));
    if r.status != 200 {
        return BTreeMap::new();
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in r.json()["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let job = t["labels"]["job"].as_str().unwrap_or_default().to_string();
        let addr = t["discoveredLabels"]["__address__"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        out.entry(job).or_default().insert(addr);
    }
    out
}

#[test]
fn prometheus_discovers_targets_by_srv_a_and_http_sd() {
    let dir = temp_dir("prometheus");
    // Go's resolver (in Prometheus) only speaks to port 53.
    let server = "127.0.0.78";
    let demo = Process::start(&["demo", "--dns-addr", &format!("{server}:53"), "--no-churn"]);
    let api = demo.api.unwrap();

    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    want.insert(
        "web_srv".into(),
        srv_addresses(demo.dns, "_http._tcp.web.demo.ecs.internal."),
    );
    want.insert(
        "fleet_srv".into(),
        srv_addresses(demo.dns, "_http._tcp.fleet.demo.ecs.internal."),
    );
    want.insert(
        "web_a".into(),
        a_records(&tcp(
            demo.dns,
            &query("web.demo.ecs.internal.", RecordType::A),
        ))
        .iter()
        .map(|a| format!("{a}:9100"))
        .collect(),
    );
    let sd = testkit::http::get(&format!("http://{api}/v1/prometheus-sd?service=web")).json();
    want.insert(
        "web_http_sd".into(),
        sd.as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["targets"].as_array().unwrap().clone())
            .map(|t| t.as_str().unwrap().to_string())
            .collect(),
    );
    assert_eq!(want["web_srv"].len(), 3, "{want:?}");
    assert_eq!(want["fleet_srv"].len(), 60);
    assert_eq!(want["web_a"].len(), 3);
    assert!(!want["web_http_sd"].is_empty());

    let config = format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n\
         - job_name: web_srv\n  dns_sd_configs:\n  - names: [_http._tcp.web.demo.ecs.internal]\n    refresh_interval: 1s\n\
         - job_name: fleet_srv\n  dns_sd_configs:\n  - names: [_http._tcp.fleet.demo.ecs.internal]\n    refresh_interval: 1s\n\
         - job_name: web_a\n  dns_sd_configs:\n  - names: [web.demo.ecs.internal]\n    type: A\n    port: 9100\n    refresh_interval: 1s\n\
         - job_name: web_http_sd\n  http_sd_configs:\n  - url: http://{api}/v1/prometheus-sd?service=web\n    refresh_interval: 1s\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let command = format!(
        "prometheus --config.file={dir}/prometheus.yml --storage.tsdb.path={dir}/data \
         --web.listen-address={web}",
        dir = dir.display()
    );
    let _prometheus = Prometheus(
        crate::fixture::with_resolv_conf(&dir, server, &command)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run prometheus ({e}); ./test.sh installs it")),
    );
    let started = std::time::Instant::now();
    loop {
        let got = discovered(&web);
        if got == want {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "Prometheus discovered {got:?}, ecsdns serves {want:?}; its log ends:\n{}",
            std::fs::read_to_string(dir.join("prometheus.log"))
                .unwrap_or_default()
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
