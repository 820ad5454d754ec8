//! Watching the registry: blocking queries (`?index=N&wait=D`) and the Server-Sent Events stream
//! `GET /v1/watch`. Both ride the registry's generation watch and change feed, so a burst of
//! updates wakes a watcher once and a slow client gets coalesced changes, never a backlog.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use model::ServiceKey;
use tokio::sync::OwnedSemaphorePermit;

use crate::dto::{Endpoint, ServiceEvent, ServiceSummary};
use crate::views::params;
use crate::{ApiError, Shared};

impl Shared {
    /// Returns once the registry has moved past `index` (for `key`, once that service changed),
    /// after `wait` (capped), or at shutdown. An index from the future (a restarted server)
    /// returns at once, so the client resynchronises.
    pub(crate) async fn wait_for_change(
        &self,
        index: u64,
        wait: Option<Duration>,
        key: Option<&ServiceKey>,
    ) {
        let wait = wait
            .unwrap_or(self.config.default_wait)
            .min(self.config.max_wait);
        let deadline = tokio::time::Instant::now() + wait;
        let mut generation = self.registry.subscribe();
        let mut stop = self.stop.clone();
        loop {
            generation.borrow_and_update();
            let changes = self.registry.changes_since(index);
            if index > changes.generation {
                return;
            }
            if changes.generation > index {
                let relevant = match (key, &changes.services) {
                    (None, _) | (_, None) => true,
                    (Some(key), Some(changed)) => changed.contains(key),
                };
                if relevant {
                    return;
                }
            }
            tokio::select! {
                r = generation.changed() => if r.is_err() { return },
                _ = tokio::time::sleep_until(deadline) => return,
                _ = stop.changed() => return,
            }
        }
    }
}

/// One open stream's state.
struct Stream {
    shared: Arc<Shared>,
    generation: tokio::sync::watch::Receiver<u64>,
    stop: tokio::sync::watch::Receiver<bool>,
    last: u64,
    cluster: Option<String>,
    service: Option<String>,
    queue: VecDeque<Event>,
    _permit: OwnedSemaphorePermit,
}

impl Stream {
    fn wants(&self, key: &ServiceKey) -> bool {
        self.cluster.as_ref().is_none_or(|c| *c == key.cluster)
            && self.service.as_ref().is_none_or(|s| *s == key.name)
    }

    /// Queues events for everything changed after `self.last`.
    fn catch_up(&mut self) {
        let changes = self.shared.registry.changes_since(self.last);
        if self.last > changes.generation {
            // The client's index is from another process: tell it to start over.
            self.queue.push_back(reset_event(changes.generation));
        } else {
            match changes.services {
                None => self.queue.push_back(reset_event(changes.generation)),
                Some(keys) => {
                    let wanted: Vec<ServiceKey> =
                        keys.into_iter().filter(|k| self.wants(k)).collect();
                    for key in wanted {
                        let event = service_event(&self.shared, &key, changes.generation);
                        self.queue.push_back(event);
                    }
                }
            }
        }
        self.last = changes.generation;
    }

    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some((Ok(event), self));
            }
            self.generation.borrow_and_update();
            if self.shared.registry.generation() != self.last {
                self.catch_up();
                continue;
            }
            tokio::select! {
                r = self.generation.changed() => if r.is_err() { return None },
                _ = self.stop.wait_for(|stopping| *stopping) => return None,
            }
        }
    }
}

fn reset_event(index: u64) -> Event {
    Event::default()
        .event("reset")
        .id(index.to_string())
        .data(serde_json::json!({ "index": index }).to_string())
}

fn service_event(shared: &Shared, key: &ServiceKey, index: u64) -> Event {
    let body = match shared.registry.service(key) {
        Some(snapshot) => ServiceEvent {
            index,
            cluster: key.cluster.clone(),
            service: key.name.clone(),
            removed: false,
            summary: Some(ServiceSummary::of(&snapshot, &shared.zone)),
            endpoints: snapshot
                .tasks
                .iter()
                .map(|v| Endpoint::of(v, &snapshot, &shared.zone))
                .collect(),
        },
        None => ServiceEvent {
            index,
            cluster: key.cluster.clone(),
            service: key.name.clone(),
            removed: true,
            summary: None,
            endpoints: Vec::new(),
        },
    };
    Event::default()
        .event("service")
        .id(index.to_string())
        .json_data(&body)
        .unwrap_or_else(|_| reset_event(index))
}

/// `GET /v1/watch[?index=N][&cluster=C][&service=S]`: an SSE stream. First a `hello` event with
/// the current index; then one `service` event per changed service (its whole state, health
/// included, or `removed`), or `reset` when the client must refetch everything. Event ids are
/// registry generations, so a reconnecting `EventSource` resumes with `Last-Event-ID`.
pub(crate) async fn stream(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(query)?;
    let permit = Arc::clone(&shared.watchers)
        .try_acquire_owned()
        .map_err(|_| ApiError::Busy)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let now = shared.registry.generation();
    // A reconnecting EventSource repeats the original URL: its Last-Event-ID is newer.
    let start = resume.or(p.index).unwrap_or(now);
    let mut queue = VecDeque::new();
    queue.push_back(
        Event::default()
            .event("hello")
            .id(start.to_string())
            .data(serde_json::json!({ "index": start }).to_string()),
    );
    let state = Stream {
        generation: shared.registry.subscribe(),
        stop: shared.stop.clone(),
        shared,
        last: start,
        cluster: p.cluster,
        service: p.service,
        queue,
        _permit: permit,
    };
    let events = futures_util::stream::unfold(state, Stream::next);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
