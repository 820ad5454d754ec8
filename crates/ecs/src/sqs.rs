//! The event stream: long-polls an SQS queue fed by an EventBridge rule, applies what the events
//! say, then deletes them (batched). Poison messages are counted, logged once and left for the
//! queue's redrive policy to move to the dead-letter queue; they never stall the consumer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use model::{Health, TaskStatus, Update};
use tokio::sync::watch;

use crate::aws::AwsError;
use crate::event::TaskEvent;
use crate::reconcile;
use crate::watcher::{Shared, Sink};
use crate::{Event, TaskContext};

/// Poison message ids remembered so each is logged once (bounded).
const POISON_MEMORY: usize = 4096;

/// Whether the event says RUNNING but not how healthy, for a task whose definition has a health
/// check: then DescribeTasks is asked, so the task is neither served unhealthy nor held back.
fn health_missing(event: &TaskEvent, ctx: &dyn TaskContext) -> bool {
    event.health_status.is_none()
        && TaskStatus::parse(&event.last_status) == TaskStatus::Running
        && TaskStatus::parse(&event.desired_status) == TaskStatus::Running
        && event
            .task_definition_arn
            .as_deref()
            .and_then(|td| ctx.task_definition(td))
            .is_some_and(|td| td.health_checked)
}

/// One consumed queue.
pub(crate) struct Queue {
    /// Its URL.
    pub(crate) url: String,
    /// Its name in the watcher's status (`queue`, or `queue:CLUSTER` for a cluster's own).
    pub(crate) source: String,
}

/// Consumes the queue until `stop` turns true.
pub(crate) async fn consume(
    shared: Arc<Shared>,
    client: aws_sdk_sqs::Client,
    queue: Queue,
    wait: Duration,
    sink: Sink,
    mut stop: watch::Receiver<bool>,
) {
    let queue_url = queue.url;
    let mut poison_seen: HashSet<String> = HashSet::new();
    let mut failures: u32 = 0;
    loop {
        let receive = client
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp,
            )
            .wait_time_seconds(i32::try_from(wait.as_secs()).unwrap_or(20))
            .send();
        let received = tokio::select! {
            r = receive => r.map_err(|e| AwsError::from_sdk(&e)),
            _ = stop.changed() => return,
        };
        let messages = match received {
            Ok(out) => {
                failures = 0;
                shared.status.queue_ok(&queue.source);
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                failures += 1;
                shared.status.queue_failed(&queue.source, &e.to_string());
                let pause = Duration::from_millis(250 * 2u64.pow(failures.min(7)));
                tokio::select! {
                    _ = tokio::time::sleep(pause.min(Duration::from_secs(30))) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        if messages.is_empty() {
            continue;
        }
        record_lag(&shared, &queue.source, &messages);
        let mut updates = Vec::new();
        let mut done = Vec::new();
        let mut health: HashMap<String, Vec<String>> = HashMap::new();
        for msg in &messages {
            let body = msg.body().unwrap_or_default();
            let event = match shared.decoder.parse(body) {
                Ok(Some(event)) => event,
                Ok(None) => {
                    done.push(msg);
                    continue;
                }
                Err(e) => {
                    let id = msg.message_id().unwrap_or_default().to_string();
                    if poison_seen.len() >= POISON_MEMORY {
                        poison_seen.clear();
                    }
                    if poison_seen.insert(id.clone()) {
                        tracing::warn!(message_id = id, error = %e,
                            "poison message left for the dead-letter queue");
                        shared.status.poison(&id, &e.to_string());
                    }
                    continue;
                }
            };
            done.push(msg);
            if let Some(update) = translate(&shared, &event, &mut health).await {
                updates.push(update);
            }
        }
        for (label, arns) in health {
            updates.extend(describe_health(&shared, &label, &arns).await);
        }
        if !updates.is_empty() && sink.apply(updates).await.is_err() {
            return;
        }
        delete(&shared, &client, &queue_url, &done).await;
    }
}

/// Records the queue's lag: the oldest message's wait, from SQS's `SentTimestamp`.
fn record_lag(shared: &Shared, source: &str, messages: &[aws_sdk_sqs::types::Message]) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let oldest = messages
        .iter()
        .filter_map(|m| {
            m.attributes()?
                .get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp)?
                .parse::<u64>()
                .ok()
        })
        .min();
    let lag = oldest.map(|sent| now_ms.saturating_sub(sent));
    shared.status.queue_messages(source, now_ms, lag);
}

/// An event's update, after the lookups it needs. Events missing health are collected in
/// `health` (cluster label -> ARNs) instead.
async fn translate(
    shared: &Shared,
    event: &Event,
    health: &mut HashMap<String, Vec<String>>,
) -> Option<Update> {
    let label = shared.decoder.cluster_label(event)?.to_string();
    let cw = shared.clusters.get(&label)?;
    match event {
        Event::Task(task) => {
            cw.lookups.prefetch([task.as_ref()]).await;
            if health_missing(task, &cw.lookups) {
                health.entry(label).or_default().push(task.task_arn.clone());
                return None;
            }
        }
        Event::Instance(ci) => cw.lookups.forget_host(&ci.container_instance_arn),
        Event::Other { .. } => return None,
    }
    shared.decoder.translate(event, &label, &cw.lookups)
}

/// DescribeTasks for tasks whose events lacked health (one call per 100, paced). If ECS cannot be
/// asked, nothing is applied for them now; the next event or reconcile brings them.
async fn describe_health(shared: &Shared, label: &str, arns: &[String]) -> Vec<Update> {
    let Some(cw) = shared.clusters.get(label) else {
        return Vec::new();
    };
    shared
        .status
        .counters
        .health_lookups
        .fetch_add(arns.len() as u64, Ordering::Relaxed);
    match reconcile::describe(cw, arns).await {
        Ok(events) => {
            cw.lookups.prefetch(events.iter()).await;
            events
                .iter()
                .map(|e| crate::translate::task_update(e, label, &cw.lookups))
                .map(|u| match u {
                    // ECS may still not know the verdict: keep it out until it does.
                    Update::Upsert(mut t) if t.health == Health::Unknown => {
                        t.health_checked = true;
                        Update::Upsert(t)
                    }
                    other => other,
                })
                .collect()
        }
        Err(e) => {
            tracing::warn!(cluster = label, error = %e, "cannot fetch task health");
            Vec::new()
        }
    }
}

async fn delete(
    shared: &Shared,
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    done: &[&aws_sdk_sqs::types::Message],
) {
    for chunk in done.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        let n = entries.len() as u64;
        match client
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                let failed = out.failed().len() as u64;
                shared
                    .status
                    .counters
                    .sqs_deleted
                    .fetch_add(n - failed.min(n), Ordering::Relaxed);
            }
            // Not deleted: the messages come back after their visibility timeout and are applied
            // again, which changes nothing (same versions).
            Err(e) => tracing::warn!(error = %AwsError::from_sdk(&e), "cannot delete messages"),
        }
    }
}
