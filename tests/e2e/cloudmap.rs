//! The Cloud Map data-plane API (`DiscoverInstances`, `DiscoverInstancesRevision`) against the
//! demo, called by real AWS clients, unmodified but for their endpoint: boto3 (with host-prefix
//! injection off in its config) and the AWS CLI (with `AWS_DISABLE_HOST_PREFIX_INJECTION`), both
//! from the venv the test command installs. What they get is compared with the HTTP API.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use testkit::Process;

fn venv_tool(var: &str, name: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/ecsdns/moto-venv/bin/{name}")
    })
}

/// Runs `program` with fake credentials (ecsdns does not check SigV4) and returns stdout,
/// failing the test with stderr when it fails.
fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/ecsdns-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/ecsdns-credentials",
        )
        .env("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); ./test.sh installs it"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BOTO3: &str = r#"
import json, sys
import boto3
from botocore.config import Config
c = boto3.client("servicediscovery", endpoint_url=sys.argv[1],
                 config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
out = {}
r = c.discover_instances(NamespaceName="demo.ecs.internal", ServiceName="web", HealthStatus="ALL")
out["all"] = r["Instances"]
out["revision"] = r["InstancesRevision"]
out["healthy"] = c.discover_instances(NamespaceName="demo.ecs.internal", ServiceName="web")["Instances"]
out["max1"] = len(c.discover_instances(NamespaceName="demo.ecs.internal", ServiceName="web",
                                       HealthStatus="ALL", MaxResults=1)["Instances"])
az = out["all"][0]["Attributes"]["AVAILABILITY_ZONE"]
out["az"] = az
out["in_az"] = c.discover_instances(NamespaceName="demo.ecs.internal", ServiceName="web",
                                    HealthStatus="ALL", QueryParameters={"AVAILABILITY_ZONE": az})["Instances"]
out["optional_nomatch"] = len(c.discover_instances(NamespaceName="demo.ecs.internal", ServiceName="web",
    HealthStatus="ALL", OptionalParameters={"AVAILABILITY_ZONE": "nowhere-1z"})["Instances"])
out["v2"] = c.discover_instances(NamespaceName="demo.ecs.internal", ServiceName="web",
                                 HealthStatus="ALL", QueryParameters={"version": "v2"})["Instances"]
out["rev_only"] = c.discover_instances_revision(NamespaceName="demo.ecs.internal", ServiceName="web")["InstancesRevision"]
for ns, svc in [("nope.ecs.internal", "web"), ("demo.ecs.internal", "nope")]:
    try:
        c.discover_instances(NamespaceName=ns, ServiceName=svc)
        out[ns + "/" + svc] = "no error"
    except c.exceptions.NamespaceNotFound:
        out[ns + "/" + svc] = "NamespaceNotFound"
    except c.exceptions.ServiceNotFound:
        out[ns + "/" + svc] = "ServiceNotFound"
print(json.dumps(out))
"#;

#[test]
fn boto3_and_the_aws_cli_discover_the_demo_as_cloud_map() {
    let demo = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--no-churn",
        "--seed",
        "7",
    ]);
    let api = demo.api.expect("the demo serves the API");
    let endpoint = format!("http://{api}");
    let web = testkit::http::get(&format!("{endpoint}/v1/services/demo/web")).json();
    let endpoints = web["endpoints"].as_array().unwrap();
    let live: BTreeSet<String> = endpoints
        .iter()
        .filter(|e| e["lastStatus"] == "RUNNING" && e["desiredStatus"] == "RUNNING")
        .map(|e| e["taskId"].as_str().unwrap().to_string())
        .collect();
    let passing: BTreeSet<String> = endpoints
        .iter()
        .filter(|e| e["state"] == "passing")
        .map(|e| e["taskId"].as_str().unwrap().to_string())
        .collect();
    assert!(!live.is_empty());

    // boto3.
    let python = venv_tool("ECSDNS_VENV_PYTHON", "python");
    let (ok, out, err) = run(&python, &["-c", BOTO3, &endpoint]);
    assert!(ok, "boto3: {err}");
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    let ids = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["InstanceId"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&r["all"]), live, "ALL: the live tasks");
    assert_eq!(
        ids(&r["healthy"]),
        passing,
        "default HEALTHY: the passing tasks"
    );
    let one = &r["all"][0];
    let attrs = &one["Attributes"];
    let task = endpoints
        .iter()
        .find(|e| e["taskId"] == one["InstanceId"])
        .unwrap();
    assert_eq!(attrs["AWS_INSTANCE_IPV4"], task["addresses"][0]);
    assert_eq!(
        attrs["AWS_INSTANCE_PORT"],
        task["ports"][0]["port"].as_u64().unwrap().to_string()
    );
    assert_eq!(attrs["AVAILABILITY_ZONE"], task["az"]);
    assert_eq!(attrs["ECS_CLUSTER_NAME"], "demo");
    assert_eq!(attrs["ECS_SERVICE_NAME"], "web");
    assert!(attrs["REGION"].is_string(), "{attrs}");
    assert!(attrs["ECS_TASK_DEFINITION_FAMILY"].is_string(), "{attrs}");
    assert_eq!(r["max1"], 1);
    let az = r["az"].as_str().unwrap();
    assert!(
        r["in_az"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["Attributes"]["AVAILABILITY_ZONE"] == az),
        "QueryParameters filter: {}",
        r["in_az"]
    );
    assert_eq!(
        r["optional_nomatch"].as_u64(),
        Some(live.len() as u64),
        "OptionalParameters that match nothing are ignored"
    );
    assert_eq!(r["rev_only"], r["revision"]);
    // Task labels are instance attributes too: the canary by its version.
    let v2: BTreeSet<String> = endpoints
        .iter()
        .filter(|e| e["labels"]["version"] == "v2")
        .map(|e| e["taskId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids(&r["v2"]), v2, "{}", r["v2"]);
    assert!(
        r["v2"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["Attributes"]["version"] == "v2")
    );
    assert_eq!(r["nope.ecs.internal/web"], "NamespaceNotFound");
    assert_eq!(r["demo.ecs.internal/nope"], "ServiceNotFound");

    // The AWS CLI.
    let aws = venv_tool("ECSDNS_AWS_CLI", "aws");
    let cli = |extra: &[&str]| {
        let mut args = vec![
            "servicediscovery",
            "discover-instances",
            "--endpoint-url",
            &endpoint,
            "--namespace-name",
            "demo.ecs.internal",
        ];
        args.extend_from_slice(extra);
        run(&aws, &args)
    };
    let (ok, out, err) = cli(&["--service-name", "web", "--health-status", "ALL"]);
    assert!(ok, "aws: {err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ids(&r["Instances"]), live, "{out}");
    let (ok, _, err) = cli(&["--service-name", "nope"]);
    assert!(!ok);
    assert!(err.contains("ServiceNotFound"), "{err}");
    // The revision alone, as DiscoverInstances reported it, and stable while nothing changes.
    let rev = |svc: &str| {
        let (ok, out, err) = run(
            &aws,
            &[
                "servicediscovery",
                "discover-instances-revision",
                "--endpoint-url",
                &endpoint,
                "--namespace-name",
                "demo.ecs.internal",
                "--service-name",
                svc,
            ],
        );
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()["InstancesRevision"].clone()
    };
    assert_eq!(rev("web"), r["InstancesRevision"]);
    assert_eq!(rev("web"), rev("web"));
    drop(demo);

    // The same tasks give the same revision after a restart (a hash of the instances, not a
    // counter); with tokens on, an unauthenticated caller sees only what DNS serves.
    let tokens = crate::fixture::temp_dir("cloudmap").join("tokens");
    std::fs::write(&tokens, "cloudmap-token\n").unwrap();
    let again = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--no-churn",
        "--seed",
        "7",
        "--api-token-file",
        tokens.to_str().unwrap(),
    ]);
    let endpoint = format!("http://{}", again.api.unwrap());
    let (ok, out, err) = run(&python, &["-c", GUARDED, &endpoint]);
    assert!(ok, "boto3: {err}");
    let g: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        g["revision"], r["InstancesRevision"],
        "stable across a restart"
    );
    assert_eq!(g["healthy"].as_u64(), Some(passing.len() as u64));
    assert_eq!(g["all"], "AccessDeniedException");
}

const GUARDED: &str = r#"
import json, sys
import boto3
from botocore.config import Config
c = boto3.client("servicediscovery", endpoint_url=sys.argv[1],
                 config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
out = {}
r = c.discover_instances(NamespaceName="demo.ecs.internal", ServiceName="web")
out["healthy"] = len(r["Instances"])
out["revision"] = r["InstancesRevision"]
try:
    c.discover_instances(NamespaceName="demo.ecs.internal", ServiceName="web", HealthStatus="ALL")
    out["all"] = "allowed"
except c.exceptions.ClientError as e:
    out["all"] = e.response["Error"]["Code"]
print(json.dumps(out))
"#;
