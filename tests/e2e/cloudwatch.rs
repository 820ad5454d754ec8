//! CloudWatch Embedded Metric Format on a real run: `ecsdns demo --cloudwatch-emf 1s` prints EMF
//! lines on stdout; every line keeps the format's rules (what CloudWatch Logs needs to turn it
//! into metrics), and the figures are the server's: served endpoints per service, queries and
//! rcodes counted over the interval, the demo source up.

use std::collections::HashSet;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::Value;
use testkit::Process;

/// The units CloudWatch accepts.
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks one line against the EMF specification; returns its (dimension names, metric names).
pub(crate) fn validate(line: &str) -> (Vec<String>, Vec<String>) {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let root = v.as_object().expect("an object");
    let aws = root["_aws"].as_object().expect("_aws");
    let ts = aws["Timestamp"].as_u64().expect("Timestamp in ms");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        ts <= now && now - ts < 60_000,
        "Timestamp {ts} is not now ({now})"
    );
    let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
    assert_eq!(directives.len(), 1, "{line}");
    let d = &directives[0];
    let ns = d["Namespace"].as_str().expect("Namespace");
    assert!(!ns.is_empty() && ns.len() <= 255 && !ns.contains(char::is_whitespace));
    let mut dims = Vec::new();
    for set in d["Dimensions"].as_array().expect("Dimensions") {
        let set = set.as_array().expect("a dimension set");
        assert!(set.len() <= 30, "{line}");
        for dim in set {
            let dim = dim.as_str().expect("a dimension name");
            let value = root
                .get(dim)
                .unwrap_or_else(|| panic!("{dim} not in {line}"));
            let value = value.as_str().expect("dimension values are strings");
            assert!(!value.is_empty() && value.len() <= 1024, "{line}");
            dims.push(dim.to_string());
        }
    }
    let metrics = d["Metrics"].as_array().expect("Metrics");
    assert!(!metrics.is_empty() && metrics.len() <= 100, "{line}");
    let mut names = Vec::new();
    for m in metrics {
        let name = m["Name"].as_str().expect("Name");
        assert!(!name.is_empty() && name.len() <= 1024);
        if let Some(unit) = m.get("Unit") {
            assert!(UNITS.contains(&unit.as_str().unwrap()), "unit {unit}");
        }
        let value = root
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in {line}"));
        assert!(value.is_number(), "{name} is not a number: {line}");
        assert!(
            !dims.contains(&name.to_string()),
            "{name} is a dimension too"
        );
        names.push(name.to_string());
    }
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "a metric named twice: {line}");
    (dims, names)
}

/// The EMF lines of a process's stdout, each checked with [`validate`].
pub(crate) fn emf_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"_aws\""))
        .map(|l| {
            validate(l);
            serde_json::from_str(l).unwrap()
        })
        .collect()
}

#[test]
fn demo_writes_valid_emf_with_the_servers_figures() {
    let p = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--no-churn",
        "--cloudwatch-emf",
        "1s",
        "--cloudwatch-namespace",
        "ecsdns-test",
    ]);
    // Queries during the run: A for web (NOERROR) and a name that does not exist (NXDOMAIN).
    for _ in 0..5 {
        let m = testkit::udp(
            p.dns,
            &testkit::query("web.demo.ecs.internal.", RecordType::A),
        );
        assert_eq!(testkit::a_records(&m).len(), 3);
        testkit::udp(
            p.dns,
            &testkit::query("nope.demo.ecs.internal.", RecordType::A),
        );
    }
    // Two intervals at least, so the second counts the queries above.
    let stdout = testkit::eventually(Duration::from_secs(10), "three sets of EMF lines", || {
        let out = p.wait_for_stdout("serving DNS", Duration::from_secs(1));
        let zone_lines = emf_lines(&out)
            .iter()
            .filter(|v| v.get("Queries").is_some())
            .count();
        (zone_lines >= 3).then_some(out)
    });
    let lines = emf_lines(&stdout);
    // Every name is one the templates may alarm on (api::emf lists them).
    for v in &lines {
        let (dims, names) = validate(&v.to_string());
        for d in dims {
            assert!(api::emf::DIMENSIONS.contains(&d.as_str()), "{d}");
        }
        for n in names {
            assert!(api::emf::METRICS.contains(&n.as_str()), "{n}");
        }
    }
    assert!(
        lines
            .iter()
            .all(|v| { v["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ecsdns-test" })
    );
    // The zone's totals: every interval's queries add up to what was sent (10), once.
    let zone: Vec<&Value> = lines
        .iter()
        .filter(|v| v.get("Queries").is_some())
        .collect();
    assert!(zone.iter().all(|v| v["Zone"] == "ecs.internal"), "{zone:?}");
    let queries: f64 = zone.iter().map(|v| v["Queries"].as_f64().unwrap()).sum();
    assert_eq!(queries, 10.0, "{zone:?}");
    assert_eq!(
        zone[0]["ServedEndpoints"], 69.0,
        "web 3 + api 2 + fleet 60 + etl 4"
    );
    assert_eq!(zone[0]["FailOpenServices"], 0.0);
    // Responses per rcode: 5 NOERROR and 5 NXDOMAIN over the intervals.
    let rcode = |code: &str| -> f64 {
        lines
            .iter()
            .filter(|v| v["Rcode"] == code)
            .map(|v| v["Responses"].as_f64().unwrap())
            .sum()
    };
    assert_eq!(rcode("NOERROR"), 5.0);
    assert_eq!(rcode("NXDOMAIN"), 5.0);
    // Each service: served endpoints and fail-open, dimensioned by cluster and service.
    let web = lines
        .iter()
        .find(|v| v["Cluster"] == "demo" && v["Service"] == "web")
        .expect("a line for demo/web");
    assert_eq!(web["ServedEndpoints"], 3.0);
    assert_eq!(web["FailOpen"], 0.0);
    let (dims, _) = validate(&web.to_string());
    assert_eq!(dims, ["Zone", "Cluster", "Service"]);
    // The source.
    let source = lines
        .iter()
        .find(|v| v.get("SourceUp").is_some())
        .expect("a source line");
    assert_eq!(source["SourceUp"], 1.0, "{source}");
}

#[test]
fn validator_rejects_what_cloudwatch_would() {
    // The checks above can fail: a metric missing from the root, a dimension that is a number.
    let missing = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["Zone"]],"Metrics":[{"Name":"Queries"}]}]},"Zone":"z"}"#;
    assert!(std::panic::catch_unwind(|| validate(missing)).is_err());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let numeric = format!(
        r#"{{"_aws":{{"Timestamp":{now},"CloudWatchMetrics":[{{"Namespace":"n","Dimensions":[["Zone"]],"Metrics":[{{"Name":"Q"}}]}}]}},"Zone":5,"Q":1}}"#
    );
    assert!(std::panic::catch_unwind(|| validate(&numeric)).is_err());
    let good = numeric.replace("\"Zone\":5", "\"Zone\":\"z\"");
    assert_eq!(validate(&good).1, ["Q"]);
}
