//! Service Connect names (issue 17, point 3) through moto, by reconcile and by SQS events:
//! ecsdns reads each service's
//! deployments with DescribeServices and serves their `discoveryName`s and client aliases as
//! `NAME.C.zone`, each listing the tasks of the deployment that publishes it, with SRV on the
//! name's port. moto keeps no Service Connect configuration and knows one deployment per
//! service, so a proxy in front of it adds `serviceConnectConfiguration` (shaped as the ECS API
//! reference documents `Deployment`) and a second deployment to its DescribeServices answers.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::types::NetworkMode;
use serde_json::{Value, json};
use testkit::{FaultProxy, Moto, Process, dig, eventually};

use crate::ecs_aws::{Aws, detail, task_event};

const WAIT: Duration = Duration::from_secs(20);

fn short(p: &Process, name: &str, t: &str) -> BTreeSet<String> {
    dig(p.dns, &["+short", "+tcp", name, t])
        .lines()
        .map(str::to_string)
        .collect()
}

fn ips(tasks: &[(String, String)]) -> BTreeSet<String> {
    tasks.iter().map(|(_, ip)| ip.clone()).collect()
}

/// A deployment's Service Connect configuration as DescribeServices returns it.
fn configuration(port: &str, discovery: &str, alias: &str, client_port: u16) -> Value {
    json!({
        "enabled": true,
        "namespace": "arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-0123456789abcdef",
        "services": [{
            "portName": port,
            "discoveryName": discovery,
            "clientAliases": [{"port": client_port, "dnsName": alias}],
        }],
    })
}

#[test]
fn service_connect_names_follow_each_deployment() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(moto.addr());
    let aws = Aws::new(&moto);
    let cluster = aws.cluster("sc");
    let queue = aws.queue("sc-events");
    let net = aws.network();
    // The service's primary port is `admin`; its Service Connect port is `http`.
    let td = aws.task_definition(
        "orders",
        NetworkMode::Awsvpc,
        &[("admin", 9000), ("http", 8080)],
    );
    let created = aws
        .rt
        .block_on(
            aws.ecs
                .create_service()
                .cluster("sc")
                .service_name("orders")
                .task_definition(&td)
                .desired_count(0)
                .send(),
        )
        .unwrap();
    let first = created.service().unwrap().deployments()[0]
        .id()
        .unwrap()
        .to_string();
    let old = aws.run_awsvpc_by("sc", &td, 2, "orders", &net, &first);
    // What moto lacks: the first deployment's Service Connect names, and later a second
    // deployment (PRIMARY, the first becoming ACTIVE) with names of its own.
    let second: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let (first_id, next) = (first.clone(), Arc::clone(&second));
    proxy.rewrite(move |target, mut answer| {
        if !target.ends_with(".DescribeServices") {
            return answer;
        }
        for svc in answer["services"].as_array_mut().into_iter().flatten() {
            let deployments = svc["deployments"].as_array_mut().unwrap();
            for d in deployments.iter_mut() {
                if d["id"] == first_id {
                    d["serviceConnectConfiguration"] =
                        configuration("http", "orders-http", "orders-api.prod.local", 80);
                }
            }
            if let Some(id) = next.lock().unwrap().clone() {
                let mut d = deployments[0].clone();
                deployments[0]["status"] = json!("ACTIVE");
                d["id"] = json!(id);
                d["status"] = json!("PRIMARY");
                d["serviceConnectConfiguration"] =
                    configuration("http", "orders-v2", "orders-next", 8081);
                deployments.insert(0, d);
            }
        }
        answer
    });
    let env = moto.env_via(&proxy.url());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let p = Process::start_with_env(
        &[
            "serve",
            "--dns-addr",
            "127.0.0.1:0",
            "--cluster",
            "sc",
            "--sqs-queue-url",
            &queue,
            "--reconcile-interval",
            "1h",
        ],
        &env,
    );
    eventually(WAIT, "the Service Connect names", || {
        (short(&p, "orders-http.sc.ecs.internal", "A") == ips(&old)
            && short(&p, "orders-api.sc.ecs.internal", "A") == ips(&old))
        .then_some(())
    });
    assert_eq!(short(&p, "orders.sc.ecs.internal", "A"), ips(&old));
    // SRV on the name's port (http, 8080), not the service's primary one (admin, 9000).
    let srv = short(&p, "orders-api.sc.ecs.internal", "SRV");
    assert_eq!(srv.len(), 2, "{srv:?}");
    assert!(srv.iter().all(|r| r.starts_with("0 1 8080 ")), "{srv:?}");
    let primary = short(&p, "orders.sc.ecs.internal", "SRV");
    assert!(
        primary.iter().all(|r| r.starts_with("0 1 9000 ")),
        "{primary:?}"
    );
    assert_eq!(
        dig(p.dns, &["+short", "orders-api.sc.ecs.internal", "TXT"]).trim(),
        "\"service-connect=orders\" \"port=http\" \"client-port=80\""
    );
    // The API lists the name, saying whose it is.
    let services = testkit::http::get(&format!("http://{}/v1/services", p.api.unwrap())).json();
    let entry = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "orders-api")
        .unwrap_or_else(|| panic!("{services}"))
        .clone();
    assert_eq!(entry["kind"], "service-connect", "{entry}");
    assert_eq!(entry["connectOf"], "orders", "{entry}");
    // Prometheus scrapes each task once: under its service, not under its names too.
    let sd = testkit::http::get(&format!("http://{}/v1/prometheus-sd", p.api.unwrap())).json();
    let services: BTreeSet<&str> = sd
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["labels"]["__meta_ecsdns_service"].as_str().unwrap())
        .collect();
    assert_eq!(services, BTreeSet::from(["orders"]), "{sd}");

    // A new deployment, its task arriving as an SQS event (the next reconcile is an hour
    // away): the event names a deployment ecsdns has not read, so it reads the service again
    // (at most every 2 s) and the task publishes the new deployment's names; the old tasks
    // keep the old ones.
    let second_id = "ecs-svc/2222222222222222222".to_string();
    *second.lock().unwrap() = Some(second_id.clone());
    let new = aws.run_awsvpc_by("sc", &td, 1, "orders", &net, &second_id);
    let event = |arn: &str, ip: &str, desired: &str, started_by: &str| {
        let mut d = detail(&cluster, arn, 9, "RUNNING", desired);
        d["group"] = json!("service:orders");
        d["taskDefinitionArn"] = json!(td);
        d["launchType"] = json!("FARGATE");
        d["startedBy"] = json!(started_by);
        d["attachments"] = json!([{"type": "eni", "details": [
            {"name": "privateIPv4Address", "value": ip}]}]);
        task_event(d)
    };
    std::thread::sleep(Duration::from_millis(2100));
    aws.send(&queue, &event(&new[0].0, &new[0].1, "RUNNING", &second_id));
    eventually(WAIT, "the new deployment's names", || {
        (short(&p, "orders-v2.sc.ecs.internal", "A") == ips(&new)
            && short(&p, "orders-next.sc.ecs.internal", "A") == ips(&new))
        .then_some(())
    });
    assert_eq!(short(&p, "orders-http.sc.ecs.internal", "A"), ips(&old));
    let all: BTreeSet<String> = ips(&old).union(&ips(&new)).cloned().collect();
    assert_eq!(short(&p, "orders.sc.ecs.internal", "A"), all);
    // ECS starts stopping the old deployment's tasks (events): they leave its names at once.
    for (arn, ip) in &old {
        aws.send(&queue, &event(arn, ip, "STOPPED", &first));
    }
    eventually(WAIT, "the old tasks to leave", || {
        short(&p, "orders-http.sc.ecs.internal", "A")
            .is_empty()
            .then_some(())
    });
    assert_eq!(short(&p, "orders-next.sc.ecs.internal", "A"), ips(&new));
}
