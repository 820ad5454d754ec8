//! The AWS Cloud Map data-plane API, `DiscoverInstances` and `DiscoverInstancesRevision`, in
//! AWS JSON 1.1 (`POST /`, `X-Amz-Target: Route53AutoNaming_v20170314.…`), so code written
//! against Cloud Map (Dapr's aws.cloudmap resolver, boto3, the AWS CLI, in-house SDK code)
//! discovers ECS tasks from ecsdns unchanged but for its endpoint.
//!
//! Mapping: a namespace is a cluster's DNS namespace (`C.zone`, or just `C`), a service its
//! service label. Instances are the service's live tasks (running, desired running, instance not
//! draining), as ECS keeps them registered in Cloud Map: a task leaves the moment ECS starts
//! stopping it. `HEALTHY` instances are those DNS serves as usable; `UNHEALTHY` the live rest;
//! `HEALTHY_OR_ELSE_ALL` is our fail-open. Attributes are named as ECS registers them.
//!
//! Like DNS, it answers without a token (SDK clients sign with SigV4, which ecsdns does not
//! check), and then shows only what DNS serves: `HEALTHY`, and `HEALTHY_OR_ELSE_ALL` falling
//! back to the fail-open set. `UNHEALTHY` and `ALL` list tasks DNS hands out no address for,
//! so with tokens configured they need one. `InstancesRevision` is a hash of the instances and
//! their attributes: equal across restarts and replicas for equal content. Errors are
//! AWS-shaped (`__type` and `x-amzn-ErrorType`), so SDKs raise their own `NamespaceNotFound` /
//! `ServiceNotFound`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::ServiceKey;
use registry::{ServiceSnapshot, TaskView};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::auth::Authorized;

/// The `X-Amz-Target` prefix of the service.
const TARGET_PREFIX: &str = "Route53AutoNaming_v20170314.";

/// The Cloud Map operation a request names in `X-Amz-Target` (`""` when none).
fn operation(headers: &HeaderMap) -> &str {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .unwrap_or("")
}

/// Whether a request is a Cloud Map data-plane call (a read, open like DNS).
pub(crate) fn is_discovery(headers: &HeaderMap) -> bool {
    matches!(
        operation(headers),
        "DiscoverInstances" | "DiscoverInstancesRevision"
    )
}

/// An AWS JSON error.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut r = (
        status,
        axum::Json(json!({ "__type": kind, "message": message })),
    )
        .into_response();
    let headers = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(kind) {
        headers.insert("x-amzn-errortype", v);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    r
}

fn ok(body: Value) -> Response {
    let mut r = axum::Json(body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    r
}

/// The request of both operations (each uses its fields).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Discover {
    namespace_name: String,
    service_name: String,
    #[serde(default)]
    max_results: Option<i64>,
    #[serde(default)]
    query_parameters: BTreeMap<String, String>,
    #[serde(default)]
    optional_parameters: BTreeMap<String, String>,
    #[serde(default)]
    health_status: Option<String>,
}

/// The instance attributes ECS registers for a task, and its labels (custom attributes, as
/// Cloud Map instances carry them; ECS's own names win over a label of the same key).
fn attributes(view: &TaskView, key: &ServiceKey) -> BTreeMap<String, String> {
    let t = &view.task;
    let mut a: BTreeMap<&'static str, String> = BTreeMap::new();
    if let Some(v4) = t.addresses.iter().find(|a| a.is_ipv4()) {
        a.insert("AWS_INSTANCE_IPV4", v4.to_string());
    }
    if let Some(v6) = t.addresses.iter().find(|a| matches!(a, IpAddr::V6(_))) {
        a.insert("AWS_INSTANCE_IPV6", v6.to_string());
    }
    if let Some(port) = t.ports.first() {
        a.insert("AWS_INSTANCE_PORT", port.port.to_string());
    }
    if let Some(az) = &t.az {
        a.insert("AVAILABILITY_ZONE", az.to_string());
    }
    // arn:aws:ecs:REGION:ACCOUNT:task/...
    if let Some(region) = t
        .arn
        .strip_prefix("arn:")
        .and_then(|r| r.split(':').nth(2))
        .filter(|r| !r.is_empty())
    {
        a.insert("REGION", region.to_string());
    }
    a.insert("ECS_CLUSTER_NAME", t.cluster.to_string());
    a.insert("ECS_SERVICE_NAME", key.name.clone());
    if let Some(td) = &t.task_definition {
        let family = td.rsplit('/').next().unwrap_or(td);
        let family = family.split(':').next().unwrap_or(family);
        a.insert("ECS_TASK_DEFINITION_FAMILY", family.to_string());
    }
    let mut out: BTreeMap<String, String> = t
        .labels
        .iter()
        .flat_map(|l| l.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    out.extend(a.into_iter().map(|(k, v)| (k.to_string(), v)));
    out
}

/// The service a request names, or the AWS error kind and message for it.
fn find(s: &Shared, d: &Discover) -> Result<Arc<ServiceSnapshot>, (&'static str, String)> {
    let ns = d.namespace_name.trim_end_matches('.').to_ascii_lowercase();
    let cluster = ns
        .strip_suffix(&s.zone)
        .and_then(|c| c.strip_suffix('.'))
        .unwrap_or(&ns)
        .to_string();
    let key = ServiceKey {
        cluster,
        name: d.service_name.to_ascii_lowercase(),
    };
    if let Some(found) = s.registry.service(&key) {
        return Ok(found);
    }
    if key.cluster.contains('.')
        || !s
            .registry
            .services()
            .iter()
            .any(|x| x.key.cluster == key.cluster)
    {
        return Err((
            "NamespaceNotFound",
            format!("namespace {} not found", d.namespace_name),
        ));
    }
    Err((
        "ServiceNotFound",
        format!(
            "service {} not found in namespace {}",
            d.service_name, d.namespace_name
        ),
    ))
}

/// A revision that changes exactly when the instances or their attributes or health do, and
/// is the same across restarts and replicas for the same content (FNV-1a over the sorted
/// instances, 63 bits so it stays a positive `Long`).
fn revision(live: &[&TaskView], key: &ServiceKey) -> i64 {
    let mut lines: Vec<String> = live
        .iter()
        .map(|v| {
            let attrs: Vec<String> = attributes(v, key)
                .into_iter()
                .map(|(k, val)| format!("{k}={val}"))
                .collect();
            format!("{} {} {}", v.task.id(), v.usable, attrs.join(","))
        })
        .collect();
    lines.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in lines.join("\n").bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 1) as i64
}

/// `POST /` with a Cloud Map `X-Amz-Target`.
pub(crate) async fn handle(
    State(s): State<Arc<Shared>>,
    Extension(Authorized(authorized)): Extension<Authorized>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let op = operation(&headers).to_string();
    if !is_discovery(&headers) {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!(
                "operation {op:?} is not served here (only DiscoverInstances and DiscoverInstancesRevision)"
            ),
        );
    }
    let d: Discover = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidInput", &e.to_string()),
    };
    let snap = match find(&s, &d) {
        Ok(snap) => snap,
        Err((kind, message)) => return error(StatusCode::BAD_REQUEST, kind, &message),
    };
    let live: Vec<&TaskView> = snap
        .tasks
        .iter()
        .filter(|v| v.task.is_live(v.instance_draining))
        .collect();
    let revision = revision(&live, &snap.key);
    if op == "DiscoverInstancesRevision" {
        return ok(json!({ "InstancesRevision": revision }));
    }
    let max = match d.max_results {
        None => 100,
        Some(n @ 1..=1000) => n as usize,
        Some(n) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                &format!("MaxResults {n}: expected 1 to 1000"),
            );
        }
    };
    let healthy: Vec<&TaskView> = live.iter().copied().filter(|v| v.usable).collect();
    let status = d.health_status.as_deref().unwrap_or("HEALTHY");
    if !authorized && matches!(status, "UNHEALTHY" | "ALL") {
        return error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            &format!(
                "HealthStatus {status} lists tasks DNS does not serve: it needs an API token \
                 (HEALTHY and HEALTHY_OR_ELSE_ALL answer without one)"
            ),
        );
    }
    let chosen: Vec<&TaskView> = match status {
        "HEALTHY" => healthy,
        "UNHEALTHY" => live.iter().copied().filter(|v| !v.usable).collect(),
        "ALL" => live,
        // Without a token, the fallback is what DNS serves (fail-open), never more.
        "HEALTHY_OR_ELSE_ALL" if healthy.is_empty() && !authorized => {
            live.iter().copied().filter(|v| v.served).collect()
        }
        "HEALTHY_OR_ELSE_ALL" if healthy.is_empty() => live,
        "HEALTHY_OR_ELSE_ALL" => healthy,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                &format!(
                    "HealthStatus {other:?}: expected HEALTHY, UNHEALTHY, ALL or HEALTHY_OR_ELSE_ALL"
                ),
            );
        }
    };
    let with_attrs: Vec<(&TaskView, BTreeMap<String, String>)> = chosen
        .into_iter()
        .map(|v| (v, attributes(v, &snap.key)))
        .collect();
    let matches = |attrs: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>| {
        wanted.iter().all(|(k, v)| attrs.get(k.as_str()) == Some(v))
    };
    let queried: Vec<_> = with_attrs
        .into_iter()
        .filter(|(_, a)| matches(a, &d.query_parameters))
        .collect();
    // OptionalParameters narrow the result only when some instance matches them.
    let optional: Vec<_> = queried
        .iter()
        .filter(|(_, a)| matches(a, &d.optional_parameters))
        .cloned()
        .collect();
    let result = if optional.is_empty() {
        queried
    } else {
        optional
    };
    let instances: Vec<Value> = result
        .into_iter()
        .take(max)
        .map(|(v, attrs)| {
            json!({
                "InstanceId": v.task.id(),
                "NamespaceName": d.namespace_name,
                "ServiceName": d.service_name,
                "HealthStatus": if v.usable { "HEALTHY" } else { "UNHEALTHY" },
                "Attributes": attrs,
            })
        })
        .collect();
    ok(json!({ "Instances": instances, "InstancesRevision": revision }))
}
