//! `GET /v1/explain?name=N[&type=T][&from=IP]`: the answer DNS gives that client (asked of
//! the real answer path through [`crate::Operator::explain`]), and for each task of the
//! service whether the answer holds it and why not: stopping, draining, unhealthy, failing its
//! check, in another AZ, lacking the port or the address family asked.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::Query;
use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use model::{ServiceKey, task_fqdn, task_label};
use registry::TaskView;

use crate::dto::{DnsAnswer, Explain, ExplainTask};
use crate::{ApiError, Shared};

/// What part of a service a name asks for.
#[derive(Debug, PartialEq, Eq)]
enum Part {
    /// `S.C.Z`: every served task.
    Service,
    /// `T.S.C.Z`: one task.
    Task(String),
    /// `_P._proto.S.C.Z`: the tasks with port `P`.
    Port(String),
    /// A group name under the service: `AZ.S.C.Z`, `rev-N.S.C.Z`, or a subset `V.S.C.Z`.
    Group(String),
    /// `_proto.S.C.Z`, or anything deeper: no task answers there.
    Other,
}

/// The service a name under `zone` belongs to, and which part of it.
fn parse_name(name: &str, zone: &str) -> Option<(ServiceKey, Part)> {
    // Our names are ASCII host names; anything else is no service of ours.
    if !name.is_ascii() {
        return None;
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let rest = name.strip_suffix(zone)?.strip_suffix('.')?;
    let mut labels: Vec<&str> = rest.split('.').collect();
    let cluster = labels.pop()?.to_string();
    let service = labels.pop()?.to_string();
    let key = ServiceKey {
        cluster,
        name: service,
    };
    let part = match labels.as_slice() {
        [] => Part::Service,
        [task] if !task.starts_with('_') => Part::Task((*task).to_string()),
        [port, proto] if port.starts_with('_') && proto.starts_with('_') => {
            Part::Port(port.trim_start_matches('_').to_string())
        }
        _ => Part::Other,
    };
    Some((key, part))
}

/// Whether the answer holds `view`'s task, and why (not).
fn verdict(
    view: &TaskView,
    fqdn: &str,
    part: &Part,
    answer: &DnsAnswer,
    fail_open: bool,
) -> (bool, String) {
    let task = &view.task;
    // An unserved task is never in an address answer, even when it shares a host address
    // (bridge and host networking) with a served one.
    if !view.served
        && matches!(answer.qtype.as_str(), "A" | "AAAA" | "SRV")
        && let Some(why) = view.left_out()
    {
        return (false, why);
    }
    let holds = match answer.qtype.as_str() {
        "SRV" => answer.targets.iter().any(|t| t == fqdn),
        "A" | "AAAA" => task.addresses.iter().any(|a| answer.addresses.contains(a)),
        _ => matches!(part, Part::Task(_)) && !answer.answers.is_empty(),
    };
    if holds && !matches!(answer.qtype.as_str(), "A" | "AAAA" | "SRV") {
        // A task name's TXT (or other data) answers for served and unserved tasks alike.
        let why = match view.left_out() {
            Some(w) => format!("named, but not served: {w}"),
            None => "served".to_string(),
        };
        return (true, why);
    }
    if holds {
        let why = if fail_open {
            "live, served under fail-open (no task of the service is usable)"
        } else {
            "served"
        };
        return (true, why.to_string());
    }
    if let Some(why) = view.left_out() {
        return (false, why);
    }
    let v4 = task.addresses.iter().any(IpAddr::is_ipv4);
    let v6 = task.addresses.iter().any(IpAddr::is_ipv6);
    let why = match (part, answer.qtype.as_str()) {
        (Part::Port(p), _) if !task.ports.iter().any(|x| &*x.name == p) => {
            format!("served, but has no port {p}")
        }
        (_, "A") if !v4 => "served, but has no IPv4 address".to_string(),
        (_, "AAAA") if !v6 => "served, but has no IPv6 address".to_string(),
        // What a group name selects is the DNS's word (its TXT), not guessed from the label.
        (Part::Group(name), "A" | "AAAA" | "SRV") => match answer.group.as_deref() {
            Some(g) if g.starts_with("az=") => format!(
                "served, but in {}: the name asks for {name}",
                task.az.as_deref().unwrap_or("no known AZ")
            ),
            Some(g) if g.starts_with("revision=") => format!(
                "served, but of revision {}: the name asks for {name}",
                task.revision()
                    .map_or_else(|| "unknown".to_string(), |n| n.to_string())
            ),
            Some(g) => format!(
                "served, but not labelled {}",
                g.trim_start_matches("label.")
            ),
            None => "served, but not in this answer".to_string(),
        },
        (_, "A" | "AAAA" | "SRV") => match (&answer.client_az, task.az.as_deref()) {
            (Some(client), Some(az)) if !az.eq_ignore_ascii_case(client) => format!(
                "served, but in {az}: same-AZ answers ({}) give a client in {client} only its own AZ",
                answer.az_preference
            ),
            _ => "served, but not in this answer".to_string(),
        },
        _ => format!("served; a {} query does not carry tasks", answer.qtype),
    };
    (false, why)
}

/// `GET /v1/explain`
pub(crate) async fn explain(
    State(s): State<Arc<Shared>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Explain>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (mut name, mut qtype, mut from) = (None, "A".to_string(), None);
    for (k, v) in pairs {
        match k.as_str() {
            "name" => name = Some(v),
            "type" => qtype = v,
            "from" => {
                let ip: IpAddr = v.parse().map_err(|_| {
                    ApiError::BadRequest(format!("from={v:?}: expected an IPv4 or IPv6 address"))
                })?;
                from = Some(ip);
            }
            "access_token" => {}
            other => return Err(ApiError::BadRequest(format!("unknown parameter {other:?}"))),
        }
    }
    let name = name.ok_or_else(|| ApiError::BadRequest("name=NAME is required".into()))?;
    let parsed = parse_name(&name, &s.zone);
    let service = parsed
        .as_ref()
        .map(|(k, _)| format!("{}.{}", k.name, k.cluster));
    let answer = s
        .operator
        .explain(&name, &qtype, from, service.as_deref())?;
    let snapshot = parsed
        .as_ref()
        .and_then(|(key, _)| Some((s.registry.service(key)?, key)));
    let mut tasks = Vec::new();
    let mut fail_open = false;
    if let (Some((snap, key)), Some((_, part))) = (&snapshot, &parsed) {
        fail_open = snap.fail_open;
        // A label under the service that names no task is a group name (AZ, revision, subset).
        let group_part;
        let part = match part {
            Part::Task(t)
                if !snap
                    .tasks
                    .iter()
                    .any(|v| task_label(v.task.id()).as_deref() == Some(t.as_str())) =>
            {
                group_part = Part::Group(t.clone());
                &group_part
            }
            other => other,
        };
        for view in &snap.tasks {
            let label = task_label(view.task.id());
            if let Part::Task(t) = part
                && label.as_deref() != Some(t.as_str())
            {
                continue;
            }
            let fqdn = label
                .as_deref()
                .map(|l| task_fqdn(l, &key.name, &key.cluster, &s.zone))
                .unwrap_or_default();
            let (in_answer, why) = match label {
                None => (
                    false,
                    "its id is not a DNS label: it has no name, and is not served".to_string(),
                ),
                Some(_) => verdict(view, &fqdn, part, &answer, fail_open),
            };
            tasks.push(ExplainTask {
                task_id: view.task.id().to_string(),
                arn: view.task.arn.to_string(),
                in_answer,
                why,
                addresses: view
                    .task
                    .addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                az: view.task.az.as_deref().map(str::to_string),
            });
        }
    }
    Ok(Json(Explain {
        name: answer.name,
        qtype: answer.qtype,
        from: from.map(|ip| ip.to_string()),
        client_az: answer.client_az,
        az_preference: answer.az_preference,
        rcode: answer.rcode,
        answers: answer.answers,
        service: snapshot.map(|(_, k)| format!("{}/{}", k.cluster, k.name)),
        fail_open,
        tasks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_their_service_and_part() {
        let key = |c: &str, n: &str| ServiceKey {
            cluster: c.into(),
            name: n.into(),
        };
        let z = "ecs.internal";
        assert_eq!(
            parse_name("Web.Prod.ecs.internal.", z),
            Some((key("prod", "web"), Part::Service))
        );
        assert_eq!(
            parse_name("t1.web.prod.ecs.internal", z),
            Some((key("prod", "web"), Part::Task("t1".into())))
        );
        assert_eq!(
            parse_name("_http._tcp.web.prod.ecs.internal", z),
            Some((key("prod", "web"), Part::Port("http".into())))
        );
        assert_eq!(
            parse_name("_tcp.web.prod.ecs.internal", z),
            Some((key("prod", "web"), Part::Other))
        );
        assert_eq!(parse_name("prod.ecs.internal", z), None);
        assert_eq!(parse_name("web.prod.example.com", z), None);
        assert_eq!(parse_name("xecs.internal", z), None);
        assert_eq!(
            parse_name("\u{e9}.web.prod.ecs.internal", z),
            None,
            "not ASCII"
        );
    }
}
