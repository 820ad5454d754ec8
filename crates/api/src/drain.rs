//! `GET /v1/tasks/{task}/drain[?wait=D]`: when a task can stop without any client being handed
//! its address afterwards. DNS says what it serves (through [`crate::Operator::served`]); the
//! registry says which tasks exist; this handler adds the TTL and the margin and, with `wait`,
//! holds the request until the task is safe or the wait ends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::dto::{Drain, ServedInfo};
use crate::views::{Q, each_task_named, params};
use crate::{ApiError, Shared};

/// How often a waiting request looks again while the task is still served.
const POLL: Duration = Duration::from_millis(50);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The one ARN `task` (an id or an ARN) names among the registry's tasks and DNS's served and
/// recently left ones.
fn resolve(s: &Shared, task: &str, now: u64) -> Result<(String, Option<ServedInfo>), ApiError> {
    let mut found: BTreeMap<String, Option<ServedInfo>> = BTreeMap::new();
    each_task_named(s, task, |view, _| {
        found.entry(view.task.arn.to_string()).or_default();
    });
    for info in s.operator.served(task, now) {
        found.insert(info.arn.clone(), Some(info));
    }
    let mut found = found.into_iter();
    match (found.next(), found.len()) {
        (None, _) => Err(ApiError::NotFound(format!("task {task}"))),
        (Some(one), 0) => Ok(one),
        (Some((first, _)), more) => Err(ApiError::Ambiguous(format!(
            "task id {task} names {} tasks; ask by ARN: {first}, {}",
            more + 1,
            found.map(|(arn, _)| arn).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// `GET /v1/tasks/{task}/drain`
pub(crate) async fn drain(
    State(s): State<Arc<Shared>>,
    Path(task): Path<String>,
    query: Q,
) -> Result<Response, ApiError> {
    let p = params(query)?;
    let wait = p.wait.unwrap_or_default().min(s.config.max_wait);
    let margin = s.config.drain_margin.as_millis() as u64;
    let deadline = tokio::time::Instant::now() + wait;
    let now = now_ms();
    let (arn, served) = resolve(&s, &task, now)?;
    let mut answer = Drain::of(arn.clone(), served.as_ref(), margin, now);
    let mut stop = s.stop.clone();
    while !answer.safe && tokio::time::Instant::now() < deadline && !*stop.borrow() {
        let nap = match answer.wait_ms {
            Some(ms) => Duration::from_millis(ms),
            None => POLL,
        };
        let until = (tokio::time::Instant::now() + nap).min(deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = stop.changed() => {}
        }
        let now = now_ms();
        // Once resolved, only DNS's view can change what we answer: an ARN lookup.
        let served = s
            .operator
            .served(&arn, now)
            .into_iter()
            .find(|i| i.arn == arn);
        answer = Drain::of(arn.clone(), served.as_ref(), margin, now);
    }
    Ok(Json(answer).into_response())
}
