//! Every region, every account (issue 17, point 5), end to end through moto: one ecsdns watches
//! a cluster of its own account in us-east-1 and a cluster of another account (111111111111) in
//! eu-west-1 through STS AssumeRole, each with its own SQS queue; reconcile and events serve
//! both, each (region, account) has its own pacers, and every queue reports on its own.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ecs::types::NetworkMode;
use serde_json::json;
use testkit::{Moto, Process, dig, eventually};

use crate::ecs_aws::{Aws, detail, task_event};
use crate::fixture::temp_dir;

const WAIT: Duration = Duration::from_secs(20);
const ROLE: &str = "arn:aws:iam::111111111111:role/ecsdns-reader";

fn a(p: &Process, name: &str) -> BTreeSet<String> {
    dig(p.dns, &["+short", "+tcp", name, "A"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn ips(tasks: &[(String, String)]) -> BTreeSet<String> {
    tasks.iter().map(|(_, ip)| ip.clone()).collect()
}

/// A task state change for an awsvpc task of `cluster_arn` at `ip`, as EventBridge would put
/// it on that region's queue.
fn event(cluster_arn: &str, region: &str, id: &str, td: &str, ip: &str, desired: &str) -> String {
    let account = cluster_arn.split(':').nth(4).unwrap();
    let name = cluster_arn.rsplit('/').next().unwrap();
    let arn = format!("arn:aws:ecs:{region}:{account}:task/{name}/{id}");
    let mut d = detail(cluster_arn, &arn, 5, "RUNNING", desired);
    d["group"] = json!("service:api");
    d["taskDefinitionArn"] = json!(td);
    d["launchType"] = json!("FARGATE");
    d["attachments"] = json!([{"type": "eni", "details": [
        {"name": "privateIPv4Address", "value": ip}]}]);
    let mut body: serde_json::Value = serde_json::from_str(&task_event(d)).unwrap();
    body["account"] = json!(account);
    body["region"] = json!(region);
    body.to_string()
}

#[test]
fn two_regions_two_accounts_each_cluster_with_its_own_queue() {
    let moto = Moto::start();
    let home = Aws::new(&moto);
    let far = Aws::new_in(&moto, "eu-west-1", Some(ROLE));
    let home_arn = home.cluster("home");
    let far_arn = far.cluster("payments");
    assert!(
        far_arn.starts_with("arn:aws:ecs:eu-west-1:111111111111:cluster/"),
        "moto files the assumed role's cluster under its account: {far_arn}"
    );
    // The other account's cluster is not visible to the base credentials, even in its region:
    // only the role sees it, so a watcher that ignored `role_arn` would fail this test.
    let base_in_eu = Aws::new_in(&moto, "eu-west-1", None);
    let seen = base_in_eu
        .rt
        .block_on(base_in_eu.ecs.list_clusters().send())
        .unwrap();
    assert!(seen.cluster_arns().is_empty(), "{seen:?}");
    let (home_net, far_net) = (home.network(), far.network());
    let home_td = home.task_definition("web", NetworkMode::Awsvpc, &[("http", 8080)]);
    let far_td = far.task_definition("api", NetworkMode::Awsvpc, &[("http", 9000)]);
    let home_tasks = home.run_awsvpc("home", &home_td, 2, "web", &home_net);
    let far_tasks = far.run_awsvpc("payments", &far_td, 2, "api", &far_net);
    let home_queue = home.queue("home-events");
    let far_queue = far.queue("payments-events");

    let dir = temp_dir("regions");
    let config = dir.join("ecsdns.toml");
    std::fs::write(
        &config,
        format!(
            "[ecs]\nsqs_queue_url = \"{home_queue}\"\nreconcile_interval = \"1h\"\n\n\
             [[ecs.cluster]]\nname = \"home\"\n\n\
             [[ecs.cluster]]\nname = \"{far_arn}\"\nrole_arn = \"{ROLE}\"\n\
             sqs_queue_url = \"{far_queue}\"\n"
        ),
    )
    .unwrap();
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let p = Process::start_with_env(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--dns-addr",
            "127.0.0.1:0",
        ],
        &env,
    );
    let web = "web.home.ecs.internal";
    let api = "api.payments.ecs.internal";
    eventually(WAIT, "both clusters reconciled", || {
        (a(&p, web) == ips(&home_tasks) && a(&p, api) == ips(&far_tasks)).then_some(())
    });

    // Events on each region's queue reach DNS long before the next reconcile (an hour).
    far.send(
        &far_queue,
        &event(
            &far_arn,
            "eu-west-1",
            "e0000001",
            &far_td,
            "10.0.99.1",
            "RUNNING",
        ),
    );
    home.send(
        &home_queue,
        &event(
            &home_arn,
            "us-east-1",
            "e0000002",
            &home_td,
            "10.0.99.2",
            "RUNNING",
        ),
    );
    eventually(WAIT, "the eu-west-1 event", || {
        a(&p, api).contains("10.0.99.1").then_some(())
    });
    eventually(WAIT, "the us-east-1 event (service api of home)", || {
        a(&p, "api.home.ecs.internal")
            .contains("10.0.99.2")
            .then_some(())
    });
    // ECS starts stopping the far task: it leaves at once.
    let (stopping, stopping_ip) = far_tasks[0].clone();
    let id = stopping.rsplit('/').next().unwrap();
    far.send(
        &far_queue,
        &event(&far_arn, "eu-west-1", id, &far_td, &stopping_ip, "STOPPED"),
    );
    eventually(WAIT, "the stopping task to leave", || {
        (!a(&p, api).contains(&stopping_ip)).then_some(())
    });

    // Each queue reports on its own; each (region, account) has its own pacers.
    let ready = testkit::http::get(&format!("http://{}/readyz", p.api.unwrap())).json();
    let names: BTreeSet<String> = ready["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "cluster:home",
        "cluster:payments",
        "queue",
        "queue:payments",
    ] {
        assert!(names.contains(want), "{want} missing: {ready}");
    }
    let metrics = testkit::http::get(&format!("http://{}/metrics", p.api.unwrap())).body;
    let calls = |labels: &str| -> f64 {
        let family = if labels.contains("region") {
            "ecsdns_aws_region_calls_total"
        } else {
            "ecsdns_aws_calls_total"
        };
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{family}{{{labels}}} ")))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no {labels}: {metrics}"))
            .parse()
            .unwrap()
    };
    assert!(
        metrics
            .contains("ecsdns_sqs_queue_last_message_timestamp_seconds{queue=\"queue:payments\"} "),
        "{metrics}"
    );
    let home_calls = calls("service=\"ecs\",region=\"us-east-1\",account=\"default\"");
    let far_calls = calls("service=\"ecs\",region=\"eu-west-1\",account=\"111111111111\"");
    assert!(
        home_calls >= 2.0 && far_calls >= 2.0,
        "{home_calls} {far_calls}"
    );
    assert_eq!(calls("service=\"ecs\""), home_calls + far_calls);
}

/// Two clusters of one label (the same name in two regions, say) would share one reconcile
/// loop and remove each other's tasks: `serve` refuses them at start and says what to do.
#[test]
fn two_clusters_of_one_label_are_refused() {
    let (code, _, err) = testkit::run_ecsdns(&[
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--http-addr",
        "off",
        "--aws-region",
        "us-east-1",
        "--cluster",
        "prod",
        "--cluster",
        "arn:aws:ecs:eu-west-1:111111111111:cluster/prod",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("DNS label \"prod\"") && err.contains("NAME=ALIAS"),
        "{err}"
    );
}
