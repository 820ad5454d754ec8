//! Decoder tests on hand-written events shaped like the ones AWS documents.

use super::*;
use crate::demo::Simulator;
use serde_json::json;

struct Ctx;

impl TaskContext for Ctx {
    fn host_address(&self, ci: &str) -> Option<IpAddr> {
        (ci == "arn:ci/1").then(|| "10.9.9.9".parse().unwrap())
    }
    fn task_definition(&self, arn: &str) -> Option<TaskDefinitionInfo> {
        (arn == "arn:td/api:3").then(|| TaskDefinitionInfo {
            ports: vec![
                PortMapping {
                    container: "api".into(),
                    name: Some("http".into()),
                    container_port: 8080,
                    protocol: Protocol::Tcp,
                },
                PortMapping {
                    container: "api".into(),
                    name: Some("grpc".into()),
                    container_port: 9090,
                    protocol: Protocol::Tcp,
                },
            ],
            health_checked: true,
            check: check_from_labels([("ecsdns.check", "http:http/healthz")])
                .unwrap()
                .map(std::sync::Arc::new),
            labels: model::Labels::from_docker([("ecsdns.meta.version", "v3")])
                .ok()
                .map(std::sync::Arc::new),
        })
    }
}

#[test]
fn checks_from_docker_labels() {
    let check = check_from_labels([
        ("com.example", "x"),
        ("ecsdns.check", "tcp:grpc"),
        ("ecsdns.check.interval", "500ms"),
        ("ecsdns.check.fall", "3"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(check.to_string(), "tcp:grpc");
    assert_eq!(check.interval, std::time::Duration::from_millis(500));
    assert_eq!(check.fall, 3);
    assert_eq!(check_from_labels([("other", "tcp:1")]).unwrap(), None);
    let err = check_from_labels([("ecsdns.check", "tcp:1"), ("ecsdns.check.rise", "99")]);
    assert!(err.unwrap_err().to_string().contains("rise"));
    assert!(check_from_labels([("ecsdns.check", "icmp")]).is_err());
}

fn decoder() -> Decoder {
    let mut clusters = ClusterMap::default();
    clusters.insert("prod", "Prod");
    Decoder::new(clusters)
}

fn event(detail: serde_json::Value) -> String {
    json!({"version": "0", "detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": detail})
        .to_string()
}

#[test]
fn bridge_task_gets_host_address_and_named_host_ports() {
    let body = event(json!({
        "taskArn": "arn:aws:ecs:r:1:task/prod/abc123",
        "clusterArn": "arn:aws:ecs:r:1:cluster/prod",
        "containerInstanceArn": "arn:ci/1",
        "taskDefinitionArn": "arn:td/api:3",
        "group": "service:api", "version": 4, "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
        "healthStatus": "HEALTHY", "availabilityZone": "r-1a", "brandNewField": {"x": 1},
        "containers": [{"name": "api", "networkBindings": [
            {"bindIP": "0.0.0.0", "containerPort": 9090, "hostPort": 32001, "protocol": "tcp"},
            {"bindIP": "::", "containerPort": 9090, "hostPort": 32001, "protocol": "tcp"},
            {"bindIP": "0.0.0.0", "containerPort": 8080, "hostPort": 32000, "protocol": "tcp"},
            {"bindIP": "0.0.0.0", "containerPort": 7000, "hostPort": 32002, "protocol": "udp"}
        ]}]
    }));
    let d = decoder();
    let Some(Update::Upsert(task)) = d.decode(&body, &Ctx).unwrap() else {
        panic!("expected an upsert");
    };
    assert_eq!(task.id(), "abc123");
    let check = task
        .check
        .as_deref()
        .expect("check from the definition's labels");
    assert_eq!(check.to_string(), "http:http/healthz");
    assert_eq!(
        check.port_of(&task),
        task.ports
            .iter()
            .find(|p| &*p.name == "http")
            .map(|p| p.port),
        "a named check port probes the task's client-facing (host) port"
    );
    assert_eq!(&*task.cluster, "prod");
    assert_eq!(&*task.addresses, ["10.9.9.9".parse::<IpAddr>().unwrap()]);
    let ports: Vec<(&str, u16, Protocol)> = task
        .ports
        .iter()
        .map(|p| (&*p.name, p.port, p.protocol))
        .collect();
    assert_eq!(
        ports,
        vec![
            ("http", 32000, Protocol::Tcp),
            ("grpc", 32001, Protocol::Tcp),
            ("7000", 32002, Protocol::Udp)
        ]
    );
    assert!(task.health_checked && task.health == Health::Healthy);
    assert_eq!(d.stats.unknown_fields.load(Ordering::Relaxed), 1);
}

#[test]
fn awsvpc_task_without_definition_is_still_served() {
    let body = event(json!({
        "taskArn": "arn:aws:ecs:r:1:task/prod/t1", "clusterArn": "prod",
        "taskDefinitionArn": "arn:td/gone:1", "group": "family:etl", "version": 2,
        "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
        "attachments": [{"type": "eni", "details": [
            {"name": "privateIPv4Address", "value": "10.0.0.5"},
            {"name": "ipv6Address", "value": "2600::5"}]}],
        "containers": [{"name": "etl", "networkBindings": [
            {"bindIP": "10.0.0.5", "containerPort": 80, "hostPort": 80}]}]
    }));
    let Some(Update::Upsert(task)) = decoder().decode(&body, &Ctx).unwrap() else {
        panic!("expected an upsert");
    };
    assert_eq!(task.addresses.len(), 2);
    assert_eq!(
        &*task.ports[0].name, "80",
        "unnamed ports are named by number"
    );
    assert!(!task.health_checked);
    assert!(task.is_usable(false));
}

#[test]
fn stopped_is_a_removal_and_other_events_are_counted() {
    let d = decoder();
    let stopped = event(
        json!({"taskArn": "arn:x/prod/t", "clusterArn": "prod", "version": 9,
        "lastStatus": "STOPPED", "desiredStatus": "STOPPED"}),
    );
    assert_eq!(
        d.decode(&stopped, &Ctx).unwrap(),
        Some(Update::Remove {
            arn: "arn:x/prod/t".into(),
            version: 9
        })
    );
    let other_cluster = event(json!({"taskArn": "arn:x/t", "clusterArn": "staging"}));
    assert_eq!(d.decode(&other_cluster, &Ctx).unwrap(), None);
    let deployment =
        json!({"detail-type": "ECS Deployment State Change", "detail": {}}).to_string();
    assert_eq!(d.decode(&deployment, &Ctx).unwrap(), None);
    assert!(d.decode("not json", &Ctx).is_err());
    assert!(
        d.decode(&event(json!({"clusterArn": "prod"})), &Ctx)
            .is_err()
    );
    assert!(d.decode(&event(json!({"taskArn": 5})), &Ctx).is_err());
    let s = &d.stats;
    assert_eq!(s.received.load(Ordering::Relaxed), 6);
    assert_eq!(s.unwatched.load(Ordering::Relaxed), 1);
    assert_eq!(s.unknown_type.load(Ordering::Relaxed), 1);
    assert_eq!(s.poison.load(Ordering::Relaxed), 3);
}

#[test]
fn demo_events_decode_and_churn_keeps_counts() {
    let mut sim = Simulator::new(7);
    let d = Decoder::new(Simulator::clusters());
    let updates: Vec<Update> = sim
        .initial_events()
        .iter()
        .map(|b| d.decode(b, &sim).unwrap().unwrap())
        .collect();
    let tasks: Vec<&Task> = updates
        .iter()
        .filter_map(|u| match u {
            Update::Upsert(t) => Some(t),
            _ => None,
        })
        .collect();
    let count = |g: &str| tasks.iter().filter(|t| t.group.name() == g).count();
    assert_eq!(
        (count("web"), count("api"), count("fleet"), count("etl")),
        (3, 2, 60, 4)
    );
    let api = tasks.iter().find(|t| t.group.name() == "api").unwrap();
    assert_eq!(
        api.ports.len(),
        2,
        "one port per binding pair (0.0.0.0 and ::)"
    );
    assert!(api.ports.iter().all(|p| p.port >= 32768));
    assert!(matches!(api.addresses[0], IpAddr::V4(a) if a.octets()[2] >= 100));
    let mut live = tasks.len();
    let mut removed = 0;
    for _ in 0..200 {
        for body in sim.tick(true) {
            match d.decode(&body, &sim).unwrap().unwrap() {
                Update::Remove { .. } => {
                    live -= 1;
                    removed += 1;
                }
                Update::Upsert(t) if t.last_status == model::TaskStatus::Pending => live += 1,
                _ => {}
            }
        }
    }
    assert!(
        removed >= 40,
        "the cluster churns: {removed} tasks replaced"
    );
    assert_eq!(live, 69, "every stopped task is replaced");
    // Without churn nothing happens, until a rolling deploy of web is asked for.
    let mut still = Simulator::new(3);
    assert!((0..20).all(|_| still.tick(false).is_empty()));
    let old: std::collections::BTreeSet<String> =
        still.start_rolling_deploy().into_iter().collect();
    assert_eq!(old.len(), 3);
    assert!(
        still.start_rolling_deploy().is_empty(),
        "one deploy at a time"
    );
    let mut web: std::collections::BTreeMap<String, bool> =
        old.iter().map(|id| (id.clone(), true)).collect();
    let mut steps = 0;
    while still.deploying() {
        steps += 1;
        for body in still.tick(false) {
            match d.decode(&body, &still).unwrap().unwrap() {
                Update::Upsert(t) if t.group.name() == "web" => {
                    web.insert(t.id().to_string(), t.is_live(false));
                }
                Update::Remove { arn, .. } => {
                    web.remove(arn.rsplit('/').next().unwrap());
                }
                _ => {}
            }
        }
        let serving = web.values().filter(|live| **live).count();
        assert!(serving >= 2, "step {steps}: {web:?}");
    }
    assert_eq!(
        steps, 7,
        "start and stop per task, each retirement with the next start, the last on its own"
    );
    assert_eq!(web.len(), 3);
    assert!(
        web.keys().all(|id| !old.contains(id)),
        "every web task replaced"
    );
    assert_eq!(d.stats.poison.load(Ordering::Relaxed), 0);
    assert_eq!(
        Simulator::new(7).initial_events(),
        Simulator::new(7).initial_events(),
        "the same seed gives the same events"
    );
}

/// Fuzz-style property: event bodies cut, spliced and bit-flipped from real ones (the demo's, in
/// the exact EventBridge shape), and arbitrary text, decode to a value or an error; never a
/// panic. (cargo-fuzz covers the DNS path; this crate links the AWS SDK, too heavy to rebuild
/// with coverage instrumentation on every CI run.)
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn bodies() -> &'static [String] {
        static BODIES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        BODIES.get_or_init(|| {
            let mut sim = Simulator::new(11);
            let mut all = sim.initial_events();
            for _ in 0..20 {
                all.extend(sim.tick(true));
            }
            all
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn mutated_events_never_panic(
            pick in any::<prop::sample::Index>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..8),
        ) {
            let sim = Simulator::new(11);
            let d = Decoder::new(Simulator::clusters());
            let all = bodies();
            let mut bytes = all[pick.index(all.len())].clone().into_bytes();
            for (at, byte, op) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.truncate(i),
                    2 => bytes.insert(i, byte),
                    _ => { bytes.remove(i); }
                }
            }
            let body = String::from_utf8_lossy(&bytes);
            let _ = d.decode(&body, &sim);
        }

        #[test]
        fn arbitrary_text_never_panics(body in ".{0,400}") {
            let sim = Simulator::new(1);
            let _ = Decoder::new(Simulator::clusters()).decode(&body, &sim);
        }
    }
}
