//! Read handlers: services, endpoints, health, tasks, problems, Prometheus SD, metrics, health
//! of the process itself, and the reconcile trigger.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, http::Uri};
use model::ServiceKey;
use registry::ServiceSnapshot;
use serde::Serialize;

use crate::auth::Authorized;
use crate::dto::{
    Endpoint, EndpointState, ProblemDto, ProblemList, ServiceDetail, ServiceList, ServiceSummary,
    TargetGroup,
};
use crate::metrics::{Exposition, Kind};
use crate::params::{Params, paginate};
use crate::{ApiError, INDEX_HEADER, Shared};

pub(crate) type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

pub(crate) fn params(query: Q) -> Result<Params, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Params::parse(&pairs)
}

/// JSON with the registry generation in [`INDEX_HEADER`].
fn indexed<T: Serialize>(index: u64, body: &T) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&index.to_string()) {
        response.headers_mut().insert(INDEX_HEADER, v);
    }
    response
}

fn key(cluster: &str, service: &str) -> ServiceKey {
    ServiceKey {
        cluster: cluster.to_ascii_lowercase(),
        name: service.to_ascii_lowercase(),
    }
}

/// `GET /v1/services[?cluster=C][&limit=N&after=CURSOR][&index=I&wait=D]`
pub(crate) async fn services(State(s): State<Arc<Shared>>, query: Q) -> Result<Response, ApiError> {
    let p = params(query)?;
    if let Some(index) = p.index {
        s.wait_for_change(index, p.wait, None).await;
    }
    let index = s.registry.generation();
    let snapshots = s.registry.services();
    if let Some(c) = &p.cluster {
        // An unknown cluster is a 404 (a typo must not look like an empty cluster). Known: any
        // cluster with services, and every watched cluster (which may have none yet).
        let watched = s
            .operator
            .readiness(false)
            .sources
            .into_iter()
            .filter_map(|src| src.name.strip_prefix("cluster:").map(str::to_string))
            .any(|label| label == *c);
        if !watched && !snapshots.iter().any(|snap| snap.key.cluster == *c) {
            let mut known: Vec<&str> = snapshots.iter().map(|x| x.key.cluster.as_str()).collect();
            known.dedup();
            return Err(ApiError::NotFound(format!(
                "cluster {c} (known: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let all: Vec<ServiceSummary> = snapshots
        .iter()
        .filter(|snap| p.cluster.as_ref().is_none_or(|c| *c == snap.key.cluster))
        .map(|snap| ServiceSummary::of(snap, &s.zone))
        .collect();
    let total = all.len();
    let (services, next) = paginate(
        all,
        |x| format!("{}/{}", x.cluster, x.service),
        p.after.as_deref(),
        p.limit,
    );
    Ok(indexed(
        index,
        &ServiceList {
            index,
            total,
            services,
            next,
        },
    ))
}

/// The endpoints of one service after the filters, as a [`ServiceDetail`].
fn detail(s: &Shared, snapshot: &ServiceSnapshot, p: &Params, index: u64) -> ServiceDetail {
    let all: Vec<Endpoint> = snapshot
        .tasks
        .iter()
        .filter(|v| !p.passing || EndpointState::of(v) == EndpointState::Passing)
        .filter(|v| {
            p.az.as_ref()
                .is_none_or(|az| v.task.az.as_deref() == Some(az.as_str()))
        })
        .filter(|v| {
            p.port
                .as_ref()
                .is_none_or(|port| v.task.ports.iter().any(|x| *x.name == **port))
        })
        .map(|v| Endpoint::of(v, snapshot, &s.zone))
        .collect();
    let total = all.len();
    let (endpoints, next) = paginate(all, |e| e.task_id.clone(), p.after.as_deref(), p.limit);
    ServiceDetail {
        index,
        service: ServiceSummary::of(snapshot, &s.zone),
        total,
        endpoints,
        next,
    }
}

/// `GET /v1/services/{cluster}/{service}` and `GET /v1/health/{cluster}/{service}` (the
/// Consul-style spelling): every endpoint, `?passing` for usable ones only (fail-open does not
/// make an endpoint pass), `?az=`, `?port=`, `?limit=&after=`, `?index=&wait=`.
pub(crate) async fn service(
    State(s): State<Arc<Shared>>,
    Path((cluster, service)): Path<(String, String)>,
    query: Q,
) -> Result<Response, ApiError> {
    let p = params(query)?;
    let key = key(&cluster, &service);
    if let Some(index) = p.index {
        s.wait_for_change(index, p.wait, Some(&key)).await;
    }
    let index = s.registry.generation();
    let snapshot = s
        .registry
        .service(&key)
        .ok_or_else(|| ApiError::NotFound(format!("service {}/{}", key.cluster, key.name)))?;
    if let Some(port) = &p.port {
        // A port no task of the service has is a 404 naming the ports it has, not an empty list.
        let mut names: Vec<&str> = snapshot
            .tasks
            .iter()
            .flat_map(|v| v.task.ports.iter().map(|p| &*p.name))
            .collect();
        names.sort_unstable();
        names.dedup();
        if !names.contains(&port.as_str()) {
            return Err(ApiError::NotFound(format!(
                "port {port} in {}/{} (its ports: {})",
                key.cluster,
                key.name,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )));
        }
    }
    Ok(indexed(index, &detail(&s, &snapshot, &p, index)))
}

/// `GET /v1/tasks/{task}`: by task id or ARN.
pub(crate) async fn task(
    State(s): State<Arc<Shared>>,
    Path(task): Path<String>,
) -> Result<Response, ApiError> {
    let index = s.registry.generation();
    let mut found = Vec::new();
    each_task_named(&s, &task, |view, snapshot| {
        found.push(Endpoint::of(view, snapshot, &s.zone))
    });
    match found.len() {
        0 => Err(ApiError::NotFound(format!("task {task}"))),
        1 => Ok(indexed(index, &found[0])),
        _ => Err(ApiError::Ambiguous(format!(
            "task id {task} names {} tasks; ask by ARN: {}",
            found.len(),
            found
                .iter()
                .map(|e| e.task_arn.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Calls `f` for every task in a served name whose id or ARN is `task`.
pub(crate) fn each_task_named(
    s: &Shared,
    task: &str,
    mut f: impl FnMut(&registry::TaskView, &ServiceSnapshot),
) {
    for snapshot in s.registry.services() {
        if snapshot.is_connect_name() {
            continue;
        }
        for view in &snapshot.tasks {
            if view.task.id() == task || *view.task.arn == *task {
                f(view, &snapshot);
            }
        }
    }
}

/// `GET /v1/problems`
pub(crate) async fn problems(State(s): State<Arc<Shared>>) -> Response {
    let index = s.registry.generation();
    let problems = all_problems(&s);
    indexed(index, &ProblemList { index, problems })
}

/// The registry's naming problems and the process's own (sources, poison events).
pub(crate) fn all_problems(s: &Shared) -> Vec<ProblemDto> {
    let mut problems: Vec<ProblemDto> = s
        .registry
        .problems()
        .iter()
        .filter_map(ProblemDto::of)
        .collect();
    problems.extend(s.operator.problems());
    problems
}

/// `GET /v1/prometheus-sd[?cluster=&service=&port=]`: Prometheus HTTP service discovery. One
/// target group per endpoint and port, because HTTP SD labels belong to a whole group and the
/// task, AZ and port labels differ per target.
pub(crate) async fn prometheus_sd(
    State(s): State<Arc<Shared>>,
    query: Q,
) -> Result<Response, ApiError> {
    let p = params(query)?;
    let mut groups = Vec::new();
    for snapshot in s.registry.services() {
        // A Service Connect name lists tasks its service lists already: scraped once.
        if snapshot.is_connect_name()
            || p.cluster
                .as_ref()
                .is_some_and(|c| *c != snapshot.key.cluster)
            || p.service.as_ref().is_some_and(|x| *x != snapshot.key.name)
        {
            continue;
        }
        for view in &snapshot.tasks {
            let state = EndpointState::of(view);
            if state == EndpointState::Starting {
                continue;
            }
            let t = &view.task;
            for port in &t.ports {
                if p.port.as_ref().is_some_and(|n| **n != *port.name) {
                    continue;
                }
                let targets = t
                    .addresses
                    .iter()
                    .map(|a| match a {
                        IpAddr::V4(v4) => format!("{v4}:{}", port.port),
                        IpAddr::V6(v6) => format!("[{v6}]:{}", port.port),
                    })
                    .collect::<Vec<_>>();
                if targets.is_empty() {
                    continue;
                }
                let mut labels = BTreeMap::new();
                let mut label = |k: &str, v: &str| {
                    labels.insert(format!("__meta_ecsdns_{k}"), v.to_string());
                };
                label("cluster", &snapshot.key.cluster);
                label("service", &snapshot.key.name);
                label("task_id", t.id());
                label("task_arn", &t.arn);
                label("port_name", &port.name);
                label("state", &format!("{state:?}").to_ascii_lowercase());
                if let Some(az) = &t.az {
                    label("az", az);
                }
                if let Some(td) = &t.task_definition {
                    label("task_definition", td);
                }
                // Task labels as `__meta_ecsdns_label_KEY` (Prometheus label names allow only
                // letters, digits and '_').
                for (k, v) in t.labels.iter().flat_map(|l| l.iter()) {
                    let key: String = k
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                        .collect();
                    label(&format!("label_{key}"), v);
                }
                groups.push(TargetGroup { targets, labels });
            }
        }
    }
    let mut response = Json(groups).into_response();
    if let Some(port) = &p.port
        && let Some(warning) = unknown_port(&s, port)
    {
        // Still `[]` (Prometheus keeps the last target list when a refresh fails, so an error
        // would keep dead targets scraped), with the typo named for a person with curl.
        if let Ok(v) = HeaderValue::from_str(&warning) {
            response.headers_mut().insert("x-ecsdns-warning", v);
        }
    }
    Ok(response)
}

/// A warning when no known task has port `port`, naming the ports there are.
fn unknown_port(s: &Shared, port: &str) -> Option<String> {
    let mut names: Vec<String> = s
        .registry
        .services()
        .iter()
        .flat_map(|snap| {
            snap.tasks
                .iter()
                .flat_map(|v| v.task.ports.iter().map(|p| p.name.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    (!names.iter().any(|n| n == port)).then(|| {
        format!(
            "no endpoint has port {port} (ports known: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )
    })
}

/// `GET /healthz`: the process answers HTTP.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 once every source has synced, 503 before. Degraded sources are shown in
/// the body but keep the status 200: DNS still serves the last known state.
pub(crate) async fn readyz(
    State(s): State<Arc<Shared>>,
    Extension(Authorized(authorized)): Extension<Authorized>,
) -> Response {
    let readiness = s.operator.readiness(authorized);
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

/// `POST /v1/reconcile`: reconcile every watched cluster now (token required).
pub(crate) async fn reconcile(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let clusters = s.operator.reconcile()?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "clusters": clusters })),
    )
        .into_response())
}

/// Anything else.
pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("path {}", uri.path()))
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let mut e = Exposition::new();
    registry_metrics(&s.registry, &mut e);
    let name = "ecsdns_http_requests_total";
    e.family(name, "HTTP API requests by status class.", Kind::Counter);
    for (i, class) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
        let n = s.http.by_class[i].load(Ordering::Relaxed);
        e.sample(name, &[("code", class)], n as f64);
    }
    e.single(
        "ecsdns_http_watch_streams",
        "Open watch (SSE) streams.",
        Kind::Gauge,
        (s.config.max_watchers.max(1) - s.watchers.available_permits()) as f64,
    );
    s.operator.metrics(&mut e);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        e.finish(),
    )
        .into_response()
}

/// The registry's own figures (generation, tasks, updates, endpoints by state, fail-open), shared
/// by `/metrics` and the CloudWatch EMF writer.
pub(crate) fn registry_metrics(registry: &registry::Registry, e: &mut Exposition) {
    let s = registry;
    let stats = s.stats();
    e.single(
        "ecsdns_registry_generation",
        "Registry generation: bumped by every batch of updates that changed something.",
        Kind::Gauge,
        s.generation() as f64,
    );
    e.single(
        "ecsdns_registry_tasks",
        "Live tasks held.",
        Kind::Gauge,
        stats.tasks as f64,
    );
    e.single(
        "ecsdns_registry_services",
        "Served names (services and standalone groups).",
        Kind::Gauge,
        stats.services as f64,
    );
    let name = "ecsdns_registry_updates_total";
    e.family(
        name,
        "Task updates by result: applied, or ignored as a duplicate or stale version.",
        Kind::Counter,
    )
    .sample(name, &[("result", "applied")], stats.applied as f64)
    .sample(name, &[("result", "duplicate")], stats.duplicates as f64)
    .sample(name, &[("result", "stale")], stats.stale as f64);
    e.single(
        "ecsdns_registry_resets_total",
        "Full cluster listings applied.",
        Kind::Counter,
        stats.resets as f64,
    );
    e.single(
        "ecsdns_registry_reset_removed_total",
        "Tasks removed because a listing no longer had them (missed stop events).",
        Kind::Counter,
        stats.reset_removed as f64,
    );
    e.single(
        "ecsdns_registry_problems",
        "Naming problems: names that cannot be DNS labels, and collisions.",
        Kind::Gauge,
        s.problems().len() as f64,
    );
    let mut by_state = [0usize; 4];
    let mut fail_open = 0usize;
    // Counted straight from the snapshots: a scrape builds no per-service JSON shapes.
    for snapshot in s.services().iter().filter(|s| !s.is_connect_name()) {
        for view in &snapshot.tasks {
            by_state[EndpointState::of(view) as usize] += 1;
        }
        fail_open += usize::from(snapshot.fail_open);
    }
    let name = "ecsdns_endpoints";
    e.family(name, "Endpoints by state.", Kind::Gauge);
    for (state, n) in ["passing", "unhealthy", "starting", "draining"]
        .iter()
        .zip(by_state)
    {
        e.sample(name, &[("state", state)], n as f64);
    }
    e.single(
        "ecsdns_services_fail_open",
        "Services with no passing endpoint whose running tasks DNS serves anyway.",
        Kind::Gauge,
        fail_open as f64,
    );
}
