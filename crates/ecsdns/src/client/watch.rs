//! `ecsdns watch` lines: a service's counts, then one line per task that changed, so an operator
//! sees which task moved and why (`demo/web web-2: passing -> unhealthy (check failing: connection
//! refused)`), not only that a count stayed 2.

use std::collections::{BTreeMap, HashMap};

use api::dto::{Endpoint, ServiceDetail, ServiceEvent, ServiceList};

/// What a task looked like in the previous event of its service.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    state: String,
    served: bool,
    check: Option<(String, Option<String>)>,
}

impl Seen {
    fn of(e: &Endpoint) -> Self {
        Self {
            state: format!("{:?}", e.state).to_ascii_lowercase(),
            served: e.served,
            check: e
                .check
                .as_ref()
                .map(|c| (c.status.clone(), c.reason.clone())),
        }
    }

    /// `unhealthy (check failing: connection refused)`, `passing`, `draining (not served)`.
    fn describe(&self) -> String {
        let mut out = self.state.clone();
        let mut notes = Vec::new();
        if let Some((status, reason)) = &self.check
            && status != "passing"
        {
            notes.push(match reason {
                Some(r) => format!("check {status}: {r}"),
                None => format!("check {status}"),
            });
        }
        if self.state == "passing" && !self.served {
            notes.push("not served".into());
        }
        if self.state != "passing" && self.served {
            notes.push("served: fail-open".into());
        }
        if !notes.is_empty() {
            out.push_str(&format!(" ({})", notes.join(", ")));
        }
        out
    }
}

/// Reads the watched services' tasks before the stream starts (at most [`SEED_LIMIT`] services;
/// past that the first event of each lists its tasks instead). Returns the newest generation
/// read, to resume the stream after it; `None` when nothing could be read (the stream then
/// starts now, as without seeding).
pub(crate) async fn seed(
    target: &super::Target,
    cluster: Option<&str>,
    service: Option<&str>,
    transitions: &mut Transitions,
) -> Option<u64> {
    let path = match cluster {
        Some(c) => format!("/v1/services?cluster={}", super::encode(c)),
        None => "/v1/services".to_string(),
    };
    let (list, _): (ServiceList, String) = super::get_json(target, &path).await.ok()?;
    let wanted: Vec<_> = list
        .services
        .iter()
        .filter(|s| service.is_none_or(|name| s.service == name))
        .collect();
    if wanted.len() > SEED_LIMIT {
        return None;
    }
    let mut newest = list.index;
    for s in wanted {
        let path = format!(
            "/v1/services/{}/{}",
            super::encode(&s.cluster),
            super::encode(&s.service)
        );
        let Ok((detail, _)) = super::get_json::<ServiceDetail>(target, &path).await else {
            continue;
        };
        newest = newest.max(detail.index);
        let tasks = detail
            .endpoints
            .iter()
            .map(|ep| (ep.task_id.clone(), Seen::of(ep)))
            .collect();
        transitions
            .services
            .insert((s.cluster.clone(), s.service.clone()), tasks);
    }
    Some(newest)
}

/// Services read one by one at the start of a watch; more start unseeded.
const SEED_LIMIT: usize = 200;

/// Every service's tasks as of its latest event.
#[derive(Debug, Default)]
pub(crate) struct Transitions {
    services: HashMap<(String, String), BTreeMap<String, Seen>>,
}

impl Transitions {
    /// The lines for one service event: its summary, then each task added, changed or gone.
    /// The first event of a service (the watch just started) lists the tasks that are not
    /// passing, since there is nothing to compare with.
    pub(crate) fn lines(&mut self, e: &ServiceEvent) -> Vec<String> {
        let key = (e.cluster.clone(), e.service.clone());
        let name = format!("{}/{}", e.cluster, e.service);
        let mut out = Vec::new();
        match &e.summary {
            _ if e.removed => out.push(format!("index {} {name}: removed", e.index)),
            Some(s) => out.push(format!(
                "index {} {name}: {} passing, {} unhealthy, {} starting, {} draining{}",
                e.index,
                s.passing,
                s.unhealthy,
                s.starting,
                s.draining,
                if s.fail_open { " (fail-open)" } else { "" }
            )),
            None => out.push(format!("index {} {name}", e.index)),
        }
        let now: BTreeMap<String, Seen> = e
            .endpoints
            .iter()
            .map(|ep| (ep.task_id.clone(), Seen::of(ep)))
            .collect();
        match self.services.get(&key) {
            Some(before) => {
                for (task, seen) in &now {
                    match before.get(task) {
                        None => {
                            let labels = e
                                .endpoints
                                .iter()
                                .find(|ep| ep.task_id == *task)
                                .map(|ep| {
                                    ep.labels
                                        .iter()
                                        .map(|(k, v)| format!("{k}={v}"))
                                        .collect::<Vec<_>>()
                                        .join(" ")
                                })
                                .filter(|l| !l.is_empty())
                                .map(|l| format!(" [{l}]"))
                                .unwrap_or_default();
                            out.push(format!("  {task}: new, {}{labels}", seen.describe()));
                        }
                        Some(old) if old != seen => out.push(format!(
                            "  {task}: {} -> {}",
                            old.describe(),
                            seen.describe()
                        )),
                        Some(_) => {}
                    }
                }
                for (task, old) in before {
                    if !now.contains_key(task) {
                        out.push(format!("  {task}: gone (was {})", old.describe()));
                    }
                }
            }
            None => {
                for (task, seen) in &now {
                    if seen.state != "passing" || seen.check.is_some() && !seen.served {
                        out.push(format!("  {task}: {}", seen.describe()));
                    }
                }
            }
        }
        if e.removed {
            self.services.remove(&key);
        } else {
            self.services.insert(key, now);
        }
        out
    }

    /// Forgets everything (the server asked for a refetch).
    pub(crate) fn reset(&mut self) {
        self.services.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task in a test event: id, state, served, check (status, reason).
    type T<'a> = (&'a str, &'a str, bool, Option<(&'a str, &'a str)>);

    fn event(index: u64, tasks: &[T<'_>]) -> ServiceEvent {
        let endpoints: Vec<serde_json::Value> = tasks
            .iter()
            .map(|(id, state, served, check)| {
                let mut v = serde_json::json!({
                    "taskId": id, "taskArn": format!("arn:{id}"), "cluster": "demo",
                    "service": "web", "dnsName": null, "state": state, "served": served,
                    "addresses": ["10.0.0.1"], "ports": [], "health": "UNKNOWN",
                    "healthChecked": false, "lastStatus": "RUNNING",
                    "desiredStatus": "RUNNING", "instanceDraining": false, "version": 1
                });
                if *id == "web-3" {
                    v["labels"] = serde_json::json!({"version": "v2"});
                }
                if let Some((status, reason)) = check {
                    v["check"] = serde_json::json!({
                        "spec": "tcp:http", "status": status, "reason": reason,
                        "intervalMs": 1000, "timeoutMs": 500, "rise": 2, "fall": 2
                    });
                }
                v
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "index": index, "cluster": "demo", "service": "web", "removed": false,
            "summary": {
                "cluster": "demo", "service": "web", "kind": "service", "ecsName": "web",
                "index": index, "passing": 1, "unhealthy": 1, "starting": 0, "draining": 0,
                "served": 1, "tasks": 2, "failOpen": false, "dnsName": "web.demo.ecs.internal"
            },
            "endpoints": endpoints
        }))
        .unwrap()
    }

    #[test]
    fn one_line_per_task_that_moved_with_the_reason() {
        let mut t = Transitions::default();
        let first = t.lines(&event(
            1,
            &[
                ("web-1", "passing", true, Some(("passing", "connected"))),
                (
                    "web-2",
                    "unhealthy",
                    false,
                    Some(("pending", "no verdict yet")),
                ),
            ],
        ));
        assert_eq!(
            first[1..],
            ["  web-2: unhealthy (check pending: no verdict yet)"]
        );
        let lines = t.lines(&event(
            2,
            &[
                (
                    "web-1",
                    "unhealthy",
                    false,
                    Some(("failing", "connection refused")),
                ),
                ("web-2", "passing", true, Some(("passing", "connected"))),
                ("web-3", "starting", false, None),
            ],
        ));
        assert_eq!(
            lines[1..],
            [
                "  web-1: passing -> unhealthy (check failing: connection refused)",
                "  web-2: unhealthy (check pending: no verdict yet) -> passing",
                "  web-3: new, starting [version=v2]",
            ]
        );
        let lines = t.lines(&event(
            3,
            &[("web-2", "passing", true, Some(("passing", "connected")))],
        ));
        assert_eq!(
            lines[1..],
            [
                "  web-1: gone (was unhealthy (check failing: connection refused))",
                "  web-3: gone (was starting)",
            ]
        );
        // Nothing changed but the index: only the summary.
        assert_eq!(
            t.lines(&event(
                4,
                &[("web-2", "passing", true, Some(("passing", "connected")))]
            ))
            .len(),
            1
        );
    }
}
