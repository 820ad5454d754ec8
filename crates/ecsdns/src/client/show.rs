//! `ecsdns problems` and `ecsdns task ID`: what the API knows, as lines an operator reads.

use std::process::ExitCode;

use api::dto::{Endpoint, ProblemDto, ProblemList};

use super::{Exit, Target, encode, finish, get_json, print};

/// One problem as a line: kind, then what to look at.
fn problem_line(p: &ProblemDto) -> String {
    match p {
        ProblemDto::SourceError {
            source,
            error,
            failures,
        } => format!("source   {source}: {error} ({failures} failed attempts)"),
        ProblemDto::InvalidName {
            cluster,
            name,
            reason,
            tasks,
        } => format!("name     {cluster}/{name}: {reason} ({tasks} tasks not served)"),
        ProblemDto::Collision {
            cluster,
            service,
            winner,
            shadowed,
        } => format!("collision {cluster}/{service}: {winner} served, {shadowed} shadowed"),
        ProblemDto::PoisonEvent {
            message_id, reason, ..
        } => format!("poison   message {message_id}: {reason}"),
    }
}

/// `ecsdns problems`: exit 0 either way (a list, not a check); "no problems" when empty.
pub async fn problems(target: &Target, json: bool) -> ExitCode {
    finish(
        async {
            let (list, raw): (ProblemList, String) = get_json(target, "/v1/problems").await?;
            if json {
                print(&format!("{raw}\n"));
            } else if list.problems.is_empty() {
                print("no problems\n");
            } else {
                let text: String = list
                    .problems
                    .iter()
                    .map(|p| format!("{}\n", problem_line(p)))
                    .collect();
                print(&text);
            }
            Ok(Exit::Ok)
        }
        .await,
    )
}

/// `ecsdns task ID`: one task's state, check and DNS name (exit 3 when unknown).
pub async fn task(target: &Target, task: &str, json: bool) -> ExitCode {
    finish(
        async {
            let path = format!("/v1/tasks/{}", encode(task));
            let (e, raw): (Endpoint, String) = get_json(target, &path).await?;
            if json {
                print(&format!("{raw}\n"));
                return Ok(Exit::Ok);
            }
            let mut lines = vec![
                ("task", e.task_id.clone()),
                ("arn", e.task_arn.clone()),
                ("service", format!("{}/{}", e.cluster, e.service)),
                (
                    "state",
                    format!(
                        "{}{}",
                        format!("{:?}", e.state).to_ascii_lowercase(),
                        if e.served { ", served" } else { ", not served" }
                    ),
                ),
                (
                    "dns name",
                    e.dns_name
                        .clone()
                        .unwrap_or_else(|| "- (not served)".into()),
                ),
                (
                    "addresses",
                    e.addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                (
                    "ports",
                    e.ports
                        .iter()
                        .map(|p| format!("{}:{}/{}", p.name, p.port, p.protocol))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                ("az", e.az.clone().unwrap_or_else(|| "-".into())),
                (
                    "ecs",
                    format!(
                        "{}/{}, health {}{}",
                        e.last_status,
                        e.desired_status,
                        e.health,
                        if e.health_checked {
                            ""
                        } else {
                            " (no ECS health check)"
                        }
                    ),
                ),
            ];
            if let Some(c) = &e.check {
                let mut verdict = format!("{} {}", c.spec, c.status);
                if let Some(r) = &c.reason {
                    verdict.push_str(&format!(" ({r})"));
                }
                if let Some(since) = c.since_ms {
                    verdict.push_str(&format!(", since {}", super::ago(since)));
                }
                lines.push(("check", verdict));
            }
            if e.instance_draining {
                lines.push(("instance", "draining".into()));
            }
            let text: String = lines
                .iter()
                .map(|(k, v)| format!("{k:<10} {v}\n"))
                .collect();
            print(&text);
            Ok(Exit::Ok)
        }
        .await,
    )
}
