//! How the deploy scenario tells ecsdns about tasks: the endpoints file, or ECS task state
//! change events sent to an SQS queue in moto.

use std::path::PathBuf;

use serde_json::json;

use super::{CLUSTER, PORT, Scenario, TaskProcess};
use crate::Moto;

/// How ecsdns is told about the tasks.
pub(super) enum Feed {
    File(PathBuf),
    Ecs {
        moto: Moto,
        queue: String,
        cluster_arn: String,
    },
}

impl Feed {
    pub(super) fn endpoints(tasks: &[&TaskProcess]) -> String {
        // A service with no task left is intended here (ecsdns refuses an unmarked empty file).
        let mut s = String::from("allow_empty = true\n");
        s.push_str(&format!(
            "[[service]]\ncluster = \"{CLUSTER}\"\nname = \"web\"\n"
        ));
        for t in tasks {
            s.push_str(&format!(
                "[[service.endpoint]]\nid = \"{}\"\naddresses = [\"{}\"]\nports = {{ http = {PORT} }}\n",
                t.id, t.ip
            ));
        }
        s
    }

    /// Tells ecsdns that `tasks` are the service's tasks now (`started` new, `stopped` leaving).
    pub(super) fn publish(
        &self,
        scenario: &Scenario,
        tasks: &[&TaskProcess],
        started: Option<&TaskProcess>,
        stopped: Option<&TaskProcess>,
    ) {
        match self {
            Feed::File(path) => {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, Self::endpoints(tasks)).unwrap();
                std::fs::rename(&tmp, path).unwrap();
            }
            Feed::Ecs {
                moto,
                queue,
                cluster_arn,
            } => {
                let event = |t: &TaskProcess, version: u64, desired: &str| {
                    let detail = json!({
                        "clusterArn": cluster_arn,
                        "taskArn": scenario.arn(&t.id),
                        "group": "service:web",
                        "startedBy": "ecs-svc/1234567890123456789",
                        "launchType": "FARGATE",
                        "version": version,
                        "lastStatus": "RUNNING",
                        "desiredStatus": desired,
                        "availabilityZone": "us-east-1a",
                        "attachments": [{"type": "eni", "status": "ATTACHED", "details": [
                            {"name": "privateIPv4Address", "value": t.ip.to_string()}]}],
                        "containers": [{"name": "web", "lastStatus": "RUNNING",
                            "networkBindings": [{"containerPort": PORT, "hostPort": PORT, "protocol": "tcp"}]}],
                        "createdAt": "2026-12-01T00:00:00.000Z",
                        "updatedAt": "2026-12-01T00:00:01.000Z",
                    });
                    let body = json!({
                        "version": "0",
                        "id": format!("{}-{version}", t.id),
                        "detail-type": "ECS Task State Change",
                        "source": "aws.ecs",
                        "account": "123456789012",
                        "time": "2026-12-01T00:00:01Z",
                        "region": "us-east-1",
                        "resources": [scenario.arn(&t.id)],
                        "detail": detail,
                    });
                    moto.aws_json(
                        "sqs",
                        "AmazonSQS.SendMessage",
                        &json!({"QueueUrl": queue, "MessageBody": body.to_string()}),
                    );
                };
                if started.is_none() && stopped.is_none() {
                    for t in tasks {
                        event(t, 1, "RUNNING");
                    }
                }
                if let Some(t) = started {
                    event(t, 1, "RUNNING");
                }
                if let Some(t) = stopped {
                    event(t, 2, "STOPPED");
                }
            }
        }
    }
}
