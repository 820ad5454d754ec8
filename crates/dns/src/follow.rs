//! Keeps an [`AnswerTable`] in step with the registry's change feed.
//!
//! One thread per table, off the async runtime: it wakes on every generation change, takes a
//! consistent cut of the registry (the snapshots of exactly the services changed up to that
//! generation), re-prepares only those, and publishes them with the generation's serial as one
//! new zone version.

use std::collections::BTreeSet;
use std::sync::Arc;

use registry::{Changed, Registry};
use tokio::sync::watch;

use crate::AnswerTable;

/// Applies every change since `from` to `table` as one version; returns the generation reached.
pub fn sync_once(registry: &Registry, table: &AnswerTable, from: u64) -> u64 {
    let cut = registry.cut_since(from);
    let failed = match &cut.changed {
        Changed::Services(changed) => table.update(
            changed.iter().map(|(k, s)| (k, s.as_deref())),
            Some(cut.generation),
        ),
        Changed::All(all) => {
            let present: BTreeSet<_> = all.iter().map(|s| &s.key).collect();
            let gone: Vec<_> = table
                .services()
                .into_iter()
                .filter(|k| !present.contains(k))
                .collect();
            table.update(
                all.iter()
                    .map(|s| (&s.key, Some(s.as_ref())))
                    .chain(gone.iter().map(|k| (k, None))),
                Some(cut.generation),
            )
        }
    };
    for (service, error) in failed {
        tracing::warn!(%service, %error, "cannot prepare DNS answers for service");
    }
    cut.generation
}

/// Follows the registry until `stop` turns true (or its sender is dropped). Publishes the
/// generation the table has reached on `synced`, so callers can wait until a change is served.
///
/// The work runs on a thread of its own (preparing a big service takes milliseconds that the
/// runtime's workers owe to TCP queries and the API); this future only waits for it to end.
pub async fn follow(
    registry: Arc<Registry>,
    table: Arc<AnswerTable>,
    synced: watch::Sender<u64>,
    stop: watch::Receiver<bool>,
) {
    let (done, ended) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("dns-follow".into())
        .spawn(move || {
            follow_blocking(&registry, &table, &synced, stop);
            let _ = done.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = ended.await;
        }
        Err(e) => tracing::error!(error = %e, "cannot start the DNS follower thread"),
    }
}

/// The follower's loop; waits on the change feed with a small runtime of its own.
fn follow_blocking(
    registry: &Registry,
    table: &AnswerTable,
    synced: &watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let waiter = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the DNS follower's waiter");
            return;
        }
    };
    let mut changed = registry.subscribe();
    let mut generation = sync_once(registry, table, 0);
    synced.send_replace(generation);
    loop {
        let go_on = waiter.block_on(async {
            tokio::select! {
                r = changed.changed() => r.is_ok(),
                _ = stop.changed() => false,
            }
        });
        if !go_on || *stop.borrow() {
            return;
        }
        generation = sync_once(registry, table, generation);
        synced.send_replace(generation);
    }
}
