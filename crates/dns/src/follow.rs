//! Keeps an [`AnswerTable`] in step with the registry's change feed.
//!
//! One task per table: it wakes on every generation change, re-prepares only the services that
//! changed (everything, when the feed no longer reaches back), then moves the SOA serial.

use std::collections::BTreeSet;
use std::sync::Arc;

use registry::Registry;
use tokio::sync::watch;

use crate::AnswerTable;

/// Applies every change since `from` to `table`; returns the generation reached.
pub fn sync_once(registry: &Registry, table: &AnswerTable, from: u64) -> u64 {
    let _whole = table.sync_guard();
    let changes = registry.changes_since(from);
    let keys: BTreeSet<_> = match changes.services {
        Some(keys) => keys.into_iter().collect(),
        None => registry
            .services()
            .iter()
            .map(|s| s.key.clone())
            .chain(table.services())
            .collect(),
    };
    for key in keys {
        let snapshot = registry.service(&key);
        if let Err(e) = table.set_service(&key, snapshot.as_deref()) {
            tracing::warn!(service = %key, error = %e, "cannot prepare DNS answers for service");
        }
    }
    table.set_generation(changes.generation);
    changes.generation
}

/// Follows the registry until `stop` turns true (or its sender is dropped). Publishes the
/// generation the table has reached on `synced`, so callers can wait until a change is served.
pub async fn follow(
    registry: Arc<Registry>,
    table: Arc<AnswerTable>,
    synced: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut changed = registry.subscribe();
    let mut generation = sync_once(&registry, &table, 0);
    synced.send_replace(generation);
    loop {
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        generation = sync_once(&registry, &table, generation);
        synced.send_replace(generation);
    }
}
