//! Reconcile: a cluster's full listing from the ECS API (ListTasks, then DescribeTasks in
//! batches of 100), turned into a `BeginListing` marker and a `Reset` for the registry.
//!
//! The marker goes out (and is applied) before the first ListTasks call, so any event applied
//! while the listing runs is newer than the listing and survives the Reset.

use aws_sdk_ecs::types::{DesiredStatus, TaskField};
use model::{TaskStatus, Update};
use tokio::time::Instant;

use crate::aws::AwsError;
use crate::event::TaskEvent;
use crate::translate::task_update;
use crate::watcher::{ClusterWatch, Sink};
use crate::{lookups::Lookups, sdk};

/// Lists a cluster's live tasks and describes them (paced, retried).
pub(crate) async fn list_tasks(cw: &ClusterWatch) -> Result<Vec<TaskEvent>, AwsError> {
    let mut arns: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = cw
            .ecs_pacer
            .call("ListTasks", || async {
                cw.ecs
                    .list_tasks()
                    .cluster(&cw.name)
                    .desired_status(DesiredStatus::Running)
                    .max_results(100)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(&e))
            })
            .await?;
        arns.extend(out.task_arns().iter().cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    arns.sort();
    arns.dedup();
    describe(cw, &arns).await
}

/// DescribeTasks for `arns`, 100 per call. Tasks ECS no longer knows are simply absent.
pub(crate) async fn describe(
    cw: &ClusterWatch,
    arns: &[String],
) -> Result<Vec<TaskEvent>, AwsError> {
    let mut events = Vec::with_capacity(arns.len());
    for chunk in arns.chunks(100) {
        let out = cw
            .ecs_pacer
            .call("DescribeTasks", || async {
                cw.ecs
                    .describe_tasks()
                    .cluster(&cw.name)
                    .set_tasks(Some(chunk.to_vec()))
                    .include(TaskField::Tags)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(&e))
            })
            .await?;
        for failure in out.failures() {
            tracing::debug!(cluster = %cw.name, arn = ?failure.arn(), reason = ?failure.reason(),
                "task not described");
        }
        events.extend(out.tasks().iter().filter_map(sdk::task_event));
    }
    Ok(events)
}

/// Turns described tasks into upserts (stopped ones are left out of the listing).
pub(crate) fn upserts(events: &[TaskEvent], label: &str, lookups: &Lookups) -> Vec<model::Task> {
    events
        .iter()
        .filter_map(|e| match task_update(e, label, lookups) {
            Update::Upsert(task) if task.last_status != TaskStatus::Stopped => Some(task),
            _ => None,
        })
        .collect()
}

/// One reconcile of one cluster. Returns how many tasks the listing held.
pub(crate) async fn reconcile(cw: &ClusterWatch, sink: &Sink) -> Result<usize, AwsError> {
    let started = Instant::now();
    sink.apply(vec![Update::BeginListing {
        cluster: cw.label.clone(),
    }])
    .await
    .map_err(|_| AwsError::Other("registry closed".into()))?;
    let events = list_tasks(cw).await?;
    cw.lookups.prefetch(events.iter()).await;
    let tasks = upserts(&events, &cw.label, &cw.lookups);
    let count = tasks.len();
    sink.apply(vec![Update::Reset {
        cluster: cw.label.clone(),
        tasks,
    }])
    .await
    .map_err(|_| AwsError::Other("registry closed".into()))?;
    tracing::debug!(cluster = %cw.name, tasks = count, took = ?started.elapsed(), "reconciled");
    Ok(count)
}
