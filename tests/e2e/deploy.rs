//! deploy/ cannot rot: the CloudFormation template passes cfn-lint, the task definition holds
//! what ecsdns needs, the example config loads, the systemd unit runs the real subcommand.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("deploy")
        .join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(deploy(file)).unwrap_or_else(|e| panic!("deploy/{file}: {e}"))
}

#[test]
fn cloudformation_template_passes_cfn_lint() {
    let lint = std::env::var("ECSDNS_CFN_LINT").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/ecsdns/moto-venv/bin/cfn-lint")
    });
    let out = Command::new(&lint)
        .arg(deploy("cloudformation.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {lint} ({e}); ./test.sh installs cfn-lint"));
    assert!(
        out.status.success(),
        "cfn-lint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Least privilege: no wildcard actions, and exactly the watcher's calls.
    let template = read("cloudformation.yaml");
    for line in template.lines().map(str::trim) {
        if let Some(action) = line
            .strip_prefix("- ")
            .filter(|a| a.contains(':') && !a.contains(' '))
        {
            assert!(!action.contains('*'), "wildcard action {action}");
        }
    }
    for action in [
        "ecs:ListTasks",
        "ecs:DescribeTasks",
        "ecs:DescribeContainerInstances",
        "ecs:DescribeTaskDefinition",
        "ec2:DescribeInstances",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
    ] {
        assert!(template.contains(action), "the task role lacks {action}");
    }
    for needed in [
        "RedrivePolicy",
        "deadLetterTargetArn",
        "ECS Task State Change",
        "ECS Container Instance State Change",
        "AWS::SQS::QueuePolicy",
        "aws:SourceArn",
    ] {
        assert!(template.contains(needed), "the template lacks {needed}");
    }
}

#[test]
fn task_definition_holds_what_ecsdns_needs() {
    let td: Value = serde_json::from_str(&read("ecs-task-definition.json")).unwrap();
    assert_eq!(td["networkMode"], "awsvpc");
    let c = &td["containerDefinitions"][0];
    assert_eq!(c["essential"], true);
    let ports: Vec<(u64, &str)> = c["portMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["containerPort"].as_u64().unwrap(),
                p["protocol"].as_str().unwrap(),
            )
        })
        .collect();
    for want in [(53, "udp"), (53, "tcp"), (8053, "tcp")] {
        assert!(ports.contains(&want), "{want:?} not mapped: {ports:?}");
    }
    let check: Vec<&str> = c["healthCheck"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&check[..3], ["CMD", "/usr/local/bin/ecsdns", "health"]);
    assert_eq!(c["logConfiguration"]["logDriver"], "awslogs");
    assert!(c["stopTimeout"].as_u64().unwrap() >= 10);
    // Every environment variable it sets is one ecsdns reads (a typo would be ignored).
    let help = testkit::run_ecsdns(&["serve", "--help"]).1;
    for var in c["environment"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap();
        assert!(help.contains(name), "ecsdns serve does not read {name}");
    }
    // The health check subcommand exists and fails cleanly with nothing to ask.
    let (code, _, err) = testkit::run_ecsdns(&["health", "--api", "http://127.0.0.1:9"]);
    assert_eq!(code, Some(1), "{err}");
}

#[test]
fn example_config_and_unit_load() {
    let config = ecsdns::config::FileConfig::read(&deploy("ecsdns.toml")).unwrap();
    let settings = ecsdns::config::Settings::default()
        .with_file(config)
        .unwrap();
    assert_eq!(settings.dns_addr.port(), 53);
    assert_eq!(settings.reverse_zones, vec!["10.in-addr.arpa.".to_string()]);
    assert!(!settings.allow_transfer.is_empty());
    let unit = read("ecsdns.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert!(exec.starts_with("/usr/local/bin/ecsdns serve --config /etc/ecsdns/ecsdns.toml"));
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains("FROM gcr.io/distroless/cc"),
        "a small final image"
    );
    assert!(dockerfile.contains("cargo build --release --locked -p ecsdns"));
}
