//! The binary's background duties: the active-check prober's thread, the warm-restart state
//! file (restore at start, periodic saves), update-visibility timing, tombstone pruning and
//! naming-problem reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use model::Update;
use registry::Registry;
use tokio::sync::{mpsc, watch};

use crate::state_file;

/// How long a removed task's tombstone is kept to recognise late, older events.
const TOMBSTONE_TTL: Duration = Duration::from_secs(600);

/// Runs the active-check prober on a thread of its own (one core at most, whatever the probe
/// load, so probing never competes with DNS workers for more than that), forwarding its
/// verdicts to the applier.
pub(crate) fn start_prober(
    registry: Arc<Registry>,
    updates: ingest::Sink,
    metrics: Arc<health::HealthMetrics>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the health-check runtime")?;
    std::thread::Builder::new()
        .name("ecsdns-health".into())
        .spawn(move || {
            runtime.block_on(health::run(
                registry,
                updates,
                metrics,
                health::HealthConfig::default(),
                stopped,
            ));
        })
        .context("cannot start the health-check thread")?;
    Ok(())
}

/// Observes, per applied batch, the time until the DNS table serves its generation.
pub(crate) async fn track_visibility(
    mut applied: mpsc::Receiver<(u64, Instant)>,
    mut synced: watch::Receiver<u64>,
    histogram: Arc<api::Histogram>,
) {
    while let Some((generation, received)) = applied.recv().await {
        if synced.wait_for(|g| *g >= generation).await.is_err() {
            return;
        }
        histogram.observe(received.elapsed());
    }
}

/// Fills the registry from the state file; false (and a log line saying why) when there is none
/// or it is refused.
pub(crate) fn restore(registry: &Registry, path: &std::path::Path, zone: &str) -> bool {
    let started = Instant::now();
    match state_file::read(path, zone) {
        Ok(Some(tasks)) => {
            let n = tasks.len();
            registry.apply_batch(tasks.into_iter().map(Update::Upsert));
            tracing::info!(
                tasks = n,
                path = %path.display(),
                took_ms = started.elapsed().as_millis() as u64,
                "state restored: serving it (stale) until the sources have synced"
            );
            true
        }
        Ok(None) => {
            tracing::info!(path = %path.display(), "no state file yet: cold start");
            false
        }
        Err(e) => {
            tracing::warn!(
                path = %path.display(),
                error = %format!("{e:#}"),
                "state file refused and ignored: cold start"
            );
            false
        }
    }
}

/// Rewrites the state file every `interval` when the registry changed since the last write.
pub(crate) async fn save_state(
    registry: Arc<Registry>,
    path: PathBuf,
    zone: String,
    interval: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut saved = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopping.changed() => return,
        }
        let generation = registry.generation();
        if saved == Some(generation) {
            continue;
        }
        let tasks = registry.live_tasks();
        let (path, zone) = (path.clone(), zone.clone());
        let wrote =
            tokio::task::spawn_blocking(move || state_file::write(&path, &zone, &tasks)).await;
        match wrote {
            Ok(Ok(())) => saved = Some(generation),
            Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "state file not written"),
            Err(_) => return,
        }
    }
}

pub(crate) async fn prune_tombstones(registry: Arc<Registry>, mut stopping: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = stopping.changed() => return,
        }
        let pruned = registry.prune_tombstones(Instant::now(), TOMBSTONE_TTL);
        if pruned > 0 {
            tracing::debug!(pruned, "tombstones pruned");
        }
    }
}

/// Logs each naming problem (unservable name, collision) once when it appears, and once when it
/// is gone; likewise each service entering fail-open (a WARN: DNS serves tasks that do not pass)
/// and leaving it. Checked at most once a second, whatever the churn.
pub(crate) async fn report_problems(registry: Arc<Registry>, mut stopping: watch::Receiver<bool>) {
    let mut changed = registry.subscribe();
    let mut reported: Vec<registry::Problem> = Vec::new();
    let mut fail_open = std::collections::BTreeSet::new();
    let mut first = true;
    loop {
        // The first check runs at once: changes made before this task started count too.
        if !first {
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = stopping.changed() => return,
            }
        }
        first = false;
        let open_now: std::collections::BTreeSet<String> = registry
            .services()
            .iter()
            .filter(|s| s.fail_open)
            .map(|s| s.key.to_string())
            .collect();
        for service in open_now.difference(&fail_open) {
            tracing::warn!(
                service = %service,
                "fail-open: no task of the service passes; DNS serves its running tasks anyway"
            );
        }
        for service in fail_open.difference(&open_now) {
            tracing::info!(service = %service, "fail-open over: a task passes again");
        }
        fail_open = open_now;
        let now = registry.problems();
        for p in now.iter().filter(|p| !reported.contains(p)) {
            tracing::warn!(problem = ?p, "naming problem: not served as the name suggests");
        }
        for p in reported.iter().filter(|p| !now.contains(p)) {
            tracing::info!(problem = ?p, "naming problem resolved");
        }
        reported = now;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
