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
        "ecs:DescribeServices",
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
    // Secrets are ones ecsdns reads from its environment.
    for secret in c["secrets"].as_array().unwrap() {
        let name = secret["name"].as_str().unwrap();
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

/// The venv's tools (cfn-lint, actionlint), installed by ./test.sh.
fn venv_tool(name: &str) -> PathBuf {
    let lint = std::env::var("ECSDNS_CFN_LINT").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/ecsdns/moto-venv/bin/cfn-lint")
    });
    PathBuf::from(lint).with_file_name(name)
}

/// A CloudFormation template as JSON (intrinsics as `{"Ref": ...}`, `{"Fn::Sub": ...}`), read
/// with cfn-lint's own YAML decoder so the short forms (`!Ref`) parse as CloudFormation reads them.
fn template(file: &str) -> Value {
    let python = venv_tool("python3");
    let out = Command::new(&python)
        .args([
            "-c",
            "import json, sys, cfnlint.decode as d\n\
             t, m = d.decode(sys.argv[1])\n\
             assert not m, m\n\
             print(json.dumps(t))",
        ])
        .arg(deploy(file))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); ./test.sh installs it",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn resources(t: &Value) -> &serde_json::Map<String, Value> {
    t["Resources"].as_object().unwrap()
}

fn of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

/// `{"Ref": name}`.
fn reference(name: &str) -> Value {
    serde_json::json!({ "Ref": name })
}

/// Exactly what the watcher calls on a cluster it reads: the central task role's and each
/// member stack's reader role's actions.
const WATCHER_CALLS: [&str; 8] = [
    "ec2:DescribeInstances",
    "ecs:DescribeContainerInstances",
    "ecs:DescribeServices",
    "ecs:DescribeTaskDefinition",
    "ecs:DescribeTasks",
    "ecs:ListTasks",
    "sqs:DeleteMessage",
    "sqs:ReceiveMessage",
];

/// A role's first policy's actions, sorted.
fn role_actions(role: &Value) -> Vec<String> {
    let mut all: Vec<String> = statements(&role["Policies"][0]["PolicyDocument"])
        .iter()
        .flat_map(actions)
        .collect();
    all.sort();
    all
}

/// A policy's statements, each conditional one (`Fn::If`) as its true branch.
fn statements(document: &Value) -> Vec<Value> {
    document["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| match st.get("Fn::If") {
            Some(branches) => branches[1].clone(),
            None => st.clone(),
        })
        .collect()
}

/// The actions of a policy statement, as a list.
fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        other => panic!("Action {other}"),
    }
}

/// Least privilege in every role of a template: no wildcard action, no `NotAction`, and
/// `Resource: "*"` only for actions that have no resource-level permissions (or carry a
/// condition that scopes them).
fn check_least_privilege(t: &Value) {
    const NO_RESOURCE_LEVEL: [&str; 5] = [
        "ecs:DescribeTaskDefinition",
        "ec2:DescribeInstances",
        "ecr:GetAuthorizationToken",
        "ecs:RegisterTaskDefinition",
        "ecs:DeregisterTaskDefinition",
    ];
    for (name, role) in of_type(t, "AWS::IAM::Role") {
        let policies = role["Properties"]["Policies"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for policy in policies {
            for st in &statements(&policy["PolicyDocument"]) {
                assert_eq!(st["Effect"], "Allow", "{name}");
                assert!(st.get("NotAction").is_none() && st.get("NotResource").is_none());
                let acts = actions(st);
                if acts == ["sts:AssumeRole"] {
                    assert_ne!(st["Resource"], "*", "{name}: any role");
                }
                for a in &acts {
                    assert!(!a.contains('*'), "{name}: wildcard action {a}");
                }
                if st["Resource"] == "*" {
                    let scoped = st.get("Condition").is_some();
                    for a in &acts {
                        assert!(
                            scoped || NO_RESOURCE_LEVEL.contains(&a.as_str()),
                            "{name}: {a} on every resource"
                        );
                    }
                }
            }
        }
        // Only the AWS managed policy every ECS execution role uses.
        for arn in role["Properties"]["ManagedPolicyArns"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let arn = arn.to_string();
            assert!(
                arn.contains("AmazonECSTaskExecutionRolePolicy"),
                "{name}: {arn}"
            );
        }
    }
}

#[test]
fn the_template_stands_up_a_reachable_secured_observed_service() {
    let t = template("cloudformation.yaml");
    let r = resources(&t);
    let props = |name: &str| &r[name]["Properties"];

    // Every resource deploy/README.md names exists with that type, and the README names all.
    let readme = read("README.md");
    let mut named = Vec::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() > 3
            && let (Some(id), Some(kind)) = (
                cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')),
                cells[2].strip_prefix('`').and_then(|c| c.strip_suffix('`')),
            )
            && kind.starts_with("AWS::")
        {
            let resource = r
                .get(id)
                .unwrap_or_else(|| panic!("README names {id}, the template lacks it"));
            assert_eq!(resource["Type"], kind, "{id}");
            named.push(id.to_string());
        }
    }
    for id in r.keys() {
        assert!(named.contains(id), "deploy/README.md does not list {id}");
    }

    // Reachable: an internal NLB on fixed addresses, TCP_UDP 53 to IP targets that are ready.
    let nlb = props("LoadBalancer");
    assert_eq!(nlb["Type"], "network");
    assert_eq!(nlb["Scheme"], "internal");
    let mappings = nlb["SubnetMappings"].as_array().unwrap();
    assert_eq!(mappings.len(), 2);
    for (i, m) in mappings.iter().enumerate() {
        let select = |list: &str| serde_json::json!({ "Fn::Select": [i, reference(list)] });
        assert_eq!(m["SubnetId"], select("Subnets"));
        assert_eq!(m["PrivateIPv4Address"], select("LoadBalancerAddresses"));
    }
    let listener = props("DnsListener");
    assert_eq!(listener["Protocol"], "TCP_UDP");
    assert_eq!(listener["Port"], 53);
    assert_eq!(listener["LoadBalancerArn"], reference("LoadBalancer"));
    assert_eq!(
        listener["DefaultActions"][0]["TargetGroupArn"],
        reference("DnsTargetGroup")
    );
    let tg = props("DnsTargetGroup");
    assert_eq!(tg["TargetType"], "ip", "Fargate tasks register by address");
    assert_eq!(tg["Protocol"], "TCP_UDP");
    assert_eq!(tg["HealthCheckPath"], "/readyz");
    assert_eq!(tg["HealthCheckPort"], "8053");
    for service in ["ServiceA", "ServiceB"] {
        let lb = &props(service)["LoadBalancers"][0];
        assert_eq!(
            lb["TargetGroupArn"],
            reference("DnsTargetGroup"),
            "{service}"
        );
        assert_eq!(lb["ContainerPort"], 53);
        assert_eq!(lb["ContainerName"], "ecsdns");
    }
    // The VPC resolver forwards the zone to those same addresses.
    assert_eq!(props("ResolverEndpoint")["Direction"], "OUTBOUND");
    assert_eq!(
        props("ResolverEndpoint")["IpAddresses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let rule = props("ResolverRule");
    assert_eq!(rule["RuleType"], "FORWARD");
    assert_eq!(rule["DomainName"], reference("Zone"));
    assert_eq!(rule["ResolverEndpointId"], reference("ResolverEndpoint"));
    let targets: Vec<&Value> = rule["TargetIps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["Ip"])
        .collect();
    let addresses: Vec<&Value> = mappings.iter().map(|m| &m["PrivateIPv4Address"]).collect();
    assert_eq!(
        targets, addresses,
        "the rule forwards to the NLB's fixed addresses"
    );
    let association = props("ResolverRuleAssociation");
    assert_eq!(association["ResolverRuleId"], reference("ResolverRule"));
    assert_eq!(association["VPCId"], reference("VpcId"));
    assert_eq!(of_type(&t, "AWS::ECR::Repository").len(), 1);
    for output in [
        "ResolverAddresses",
        "ResolverRuleId",
        "RepositoryUri",
        "ApiTokenSecretArn",
    ] {
        assert!(t["Outputs"].get(output).is_some(), "output {output}");
    }
    for p in [
        "VpcId",
        "Subnets",
        "ClusterName",
        "Zone",
        "CpuArchitecture",
        "ImageTag",
    ] {
        assert!(t["Parameters"].get(p).is_some(), "parameter {p}");
    }

    // Secured: the token comes from Secrets Manager; the execution role reads only it.
    let help = testkit::run_ecsdns(&["serve", "--help"]).1;
    for td in ["TaskDefinitionA", "TaskDefinitionB"] {
        let p = props(td);
        assert_eq!(
            p["RuntimePlatform"]["CpuArchitecture"],
            reference("CpuArchitecture")
        );
        let c = &p["ContainerDefinitions"][0];
        let secret = &c["Secrets"][0];
        assert_eq!(secret["Name"], "ECSDNS_API_TOKENS");
        assert_eq!(secret["ValueFrom"], reference("ApiTokenSecret"));
        for var in c["Environment"].as_array().unwrap() {
            let name = var["Name"].as_str().unwrap();
            assert!(help.contains(name), "ecsdns serve does not read {name}");
        }
        assert!(help.contains("ECSDNS_TSIG_KEYS"));
    }
    let secrets_statement =
        &props("ExecutionRole")["Policies"][0]["PolicyDocument"]["Statement"][0];
    assert_eq!(
        actions(secrets_statement),
        ["secretsmanager:GetSecretValue"]
    );
    assert_eq!(
        secrets_statement["Resource"][0],
        reference("ApiTokenSecret")
    );
    check_least_privilege(&t);
    // The watcher's role: exactly the watcher's calls.
    let mut wanted: Vec<&str> = WATCHER_CALLS.to_vec();
    wanted.push("sts:AssumeRole");
    assert_eq!(role_actions(props("TaskRole")), wanted);
    // Other regions' and accounts' clusters: replica A watches A's queues of the member
    // stacks, B B's; the task role assumes exactly the member roles.
    for (td, list) in [
        ("TaskDefinitionA", "RemoteClustersA"),
        ("TaskDefinitionB", "RemoteClustersB"),
    ] {
        let env = props(td)["ContainerDefinitions"][0]["Environment"]
            .as_array()
            .unwrap()
            .clone();
        let clusters = env.iter().find(|v| v["Name"] == "ECSDNS_CLUSTERS").unwrap();
        let branches = &clusters["Value"]["Fn::If"];
        assert_eq!(branches[0], format!("Has{list}"));
        assert_eq!(
            branches[1]["Fn::Join"][1][1]["Fn::Join"][1],
            reference(list)
        );
        assert_eq!(branches[2], reference("ClusterName"));
    }
    let assume = statements(&props("TaskRole")["Policies"][0]["PolicyDocument"])
        .into_iter()
        .find(|st| actions(st) == ["sts:AssumeRole"])
        .unwrap();
    assert_eq!(assume["Resource"], reference("RemoteRoleArns"));

    // Observed: EMF on, alarms on metrics ecsdns writes, and the dead-letter queue.
    for td in ["TaskDefinitionA", "TaskDefinitionB"] {
        let env = &props(td)["ContainerDefinitions"][0]["Environment"];
        assert!(
            env.as_array()
                .unwrap()
                .iter()
                .any(|v| v["Name"] == "ECSDNS_CLOUDWATCH_EMF"),
            "{td} writes no EMF"
        );
    }
    let mut alarmed = Vec::new();
    for (name, alarm) in of_type(&t, "AWS::CloudWatch::Alarm") {
        let p = &alarm["Properties"];
        let mut metrics = vec![(p["Namespace"].clone(), p["MetricName"].clone())];
        for m in p["Metrics"].as_array().cloned().unwrap_or_default() {
            let metric = &m["MetricStat"]["Metric"];
            metrics.push((metric["Namespace"].clone(), metric["MetricName"].clone()));
        }
        for (namespace, metric) in metrics {
            if namespace == "ecsdns" {
                let metric = metric.as_str().unwrap();
                assert!(api::emf::METRICS.contains(&metric), "{name}: {metric}");
                alarmed.push(metric.to_string());
            }
        }
    }
    for wanted in ["FailOpenServices", "SourceUp", "Events", "ReconcileRemoved"] {
        assert!(alarmed.iter().any(|m| m == wanted), "no alarm on {wanted}");
    }
    let dlq = props("DeadLetterQueueAlarm");
    assert_eq!(
        dlq["Dimensions"][0]["Value"]["Fn::GetAtt"][0],
        "DeadLetterQueue"
    );
    let body = props("Dashboard")["DashboardBody"]["Fn::Sub"]
        .as_str()
        .unwrap()
        .to_string();
    let widgets: Value = serde_json::from_str(&body.replace("${AWS::Region}", "r"))
        .expect("the dashboard body is JSON");
    assert!(widgets["widgets"].as_array().unwrap().len() >= 4);
    for m in ["Queries", "ServedEndpoints", "UpdateVisibleP99", "SourceUp"] {
        assert!(body.contains(m), "the dashboard lacks {m}");
    }
}

#[test]
fn the_pipeline_and_its_roles_pass_their_linters() {
    let lint = venv_tool("cfn-lint");
    let out = Command::new(&lint)
        .arg(deploy("github-oidc.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e})", lint.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let t = template("github-oidc.yaml");
    check_least_privilege(&t);
    // The deploy role trusts one repository's one branch, through GitHub's OIDC audience.
    let trust = &resources(&t)["GitHubDeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        [0];
    assert_eq!(trust["Action"], "sts:AssumeRoleWithWebIdentity");
    let cond = &trust["Condition"]["StringEquals"];
    assert_eq!(
        cond["token.actions.githubusercontent.com:aud"],
        "sts.amazonaws.com"
    );
    assert!(
        cond["token.actions.githubusercontent.com:sub"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .contains(":ref:refs/heads/${Branch}")
    );

    let actionlint = venv_tool("actionlint");
    let workflow = deploy("github-actions/ecsdns.yml");
    let out = Command::new(&actionlint)
        .arg("-no-color")
        .arg(&workflow)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); ./test.sh installs it",
                actionlint.display()
            )
        });
    assert!(
        out.status.success(),
        "actionlint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The linter can fail: a job that needs one that does not exist.
    let dir = crate::fixture::temp_dir("actionlint");
    let broken = dir.join("broken.yml");
    std::fs::write(
        &broken,
        read("github-actions/ecsdns.yml").replace("needs: image", "needs: imgae"),
    )
    .unwrap();
    let out = Command::new(&actionlint)
        .arg("-no-color")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("imgae"));
    // The flow: test, then build and push with OIDC, then update the stack and wait.
    let text = read("github-actions/ecsdns.yml");
    for step in [
        "./test.sh",
        "id-token: write",
        "aws-actions/configure-aws-credentials",
        "aws-actions/amazon-ecr-login",
        "platforms: linux/amd64,linux/arm64",
        "file: deploy/Dockerfile",
        "update-stack",
        "--use-previous-template",
        "stack-update-complete",
        "aws ecs wait services-stable",
    ] {
        assert!(text.contains(step), "the workflow lacks {step}");
    }
}

#[test]
fn the_image_build_sends_no_target_dir_and_builds_both_architectures() {
    let ignore = std::fs::read_to_string(deploy("../.dockerignore")).expect(".dockerignore");
    for pattern in ["target/", ".git/"] {
        assert!(ignore.lines().any(|l| l.trim() == pattern), "{pattern}");
    }
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("FROM --platform=$BUILDPLATFORM"));
    for arch in ["amd64)", "arm64)"] {
        assert!(dockerfile.contains(arch), "{arch}");
    }
    // Every path the build copies is in the context (the workspace members and manifests).
    for kept in [
        "Cargo.toml",
        "Cargo.lock",
        "crates",
        "tests",
        "rust-toolchain.toml",
    ] {
        assert!(
            !ignore
                .lines()
                .any(|l| l.trim().trim_end_matches('/') == kept),
            "{kept} is ignored"
        );
    }
}

/// The member stack (a cluster in another region or account): cfn-lint, least privilege, one
/// queue per central replica fed by one rule for that cluster, a role only the central task
/// role may assume, and outputs that `ecsdns serve --cluster` parses as they are.
#[test]
fn the_member_template_gives_each_replica_its_queue_and_a_narrow_role() {
    let lint = venv_tool("cfn-lint");
    let out = Command::new(&lint)
        .arg(deploy("cloudformation-member.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cfn-lint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let t = template("cloudformation-member.yaml");
    let r = resources(&t);
    check_least_privilege(&t);
    let rule = &r["EcsStateChangeRule"]["Properties"];
    let targets: Vec<&Value> = rule["Targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["Arn"]["Fn::GetAtt"][0])
        .collect();
    assert_eq!(targets, ["QueueA", "QueueB"]);
    for q in ["QueueA", "QueueB"] {
        assert_eq!(
            r[q]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0],
            "DeadLetterQueue"
        );
    }
    let role = &r["ReaderRole"]["Properties"];
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
        reference("CentralTaskRoleArn")
    );
    assert_eq!(role_actions(role), WATCHER_CALLS);
    // The outputs, with the values CloudFormation substitutes, are cluster specs ecsdns takes.
    for output in ["ClusterSpecA", "ClusterSpecB"] {
        let spec = t["Outputs"][output]["Value"]["Fn::Sub"].as_str().unwrap();
        let spec = spec
            .replace("${AWS::Partition}", "aws")
            .replace("${AWS::Region}", "eu-west-1")
            .replace("${AWS::AccountId}", "111111111111")
            .replace("${ClusterName}", "payments")
            .replace("${DnsLabel}", "payments-euw1")
            .replace(
                "${ReaderRole.Arn}",
                "arn:aws:iam::111111111111:role/member-ReaderRole-X",
            )
            .replace(
                &format!("${{Queue{}}}", &output[output.len() - 1..]),
                "https://sqs.eu-west-1.amazonaws.com/111111111111/member-Queue",
            );
        assert!(!spec.contains("${"), "{spec}");
        let c = ecsdns::config::parse_cluster(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(c.label, "payments-euw1");
        assert_eq!(
            c.role_arn.as_deref(),
            Some("arn:aws:iam::111111111111:role/member-ReaderRole-X")
        );
        assert!(
            c.sqs_queue_url
                .unwrap()
                .starts_with("https://sqs.eu-west-1.")
        );
    }
}
