//! `ecsdns problems`, `ecsdns task ID` and `ecsdns explain NAME`: what the API knows, as lines
//! an operator reads.

use std::process::ExitCode;

use api::dto::{Endpoint, Explain, ProblemDto, ProblemList};

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

/// `ecsdns explain NAME [TYPE] [--from IP]`: the answer, then each task and why. Exit 3 when
/// the name is not one of the zone's services (NXDOMAIN, REFUSED, or no service).
pub async fn explain(
    target: &Target,
    name: &str,
    qtype: &str,
    from: Option<std::net::IpAddr>,
    json: bool,
) -> ExitCode {
    finish(
        async {
            let mut path = format!("/v1/explain?name={}&type={}", encode(name), encode(qtype));
            if let Some(ip) = from {
                path.push_str(&format!("&from={}", encode(&ip.to_string())));
            }
            let (e, raw): (Explain, String) = get_json(target, &path).await?;
            if json {
                print(&format!("{raw}\n"));
            } else {
                print(&explain_text(&e));
            }
            Ok(if e.rcode == "NOERROR" && e.service.is_some() {
                Exit::Ok
            } else {
                Exit::NotFound
            })
        }
        .await,
    )
}

fn explain_text(e: &Explain) -> String {
    let client = match (&e.from, &e.client_az) {
        (Some(ip), Some(az)) => format!(" from {ip} ({az}, same-AZ {})", e.az_preference),
        (Some(ip), None) => format!(" from {ip} (no mapped AZ)"),
        _ => String::new(),
    };
    let mut out = format!(
        "{} {}{client}: {}, {} record{}\n",
        e.name,
        e.qtype,
        e.rcode,
        e.answers.len(),
        if e.answers.len() == 1 { "" } else { "s" }
    );
    for a in &e.answers {
        out.push_str(&format!("  {a}\n"));
    }
    match &e.service {
        None => out.push_str("not a service of this zone: no tasks to explain\n"),
        Some(s) => {
            let open = if e.fail_open { " (fail-open)" } else { "" };
            out.push_str(&format!("service {s}{open}\n"));
            let width = e
                .tasks
                .iter()
                .map(|t| t.task_id.len())
                .max()
                .unwrap_or(4)
                .max(4);
            out.push_str(&format!("{:<width$}  ANSWER  WHY\n", "TASK"));
            for t in &e.tasks {
                let mark = if t.in_answer { "yes" } else { "no" };
                out.push_str(&format!("{:<width$}  {mark:<6}  {}\n", t.task_id, t.why));
            }
        }
    }
    out
}
