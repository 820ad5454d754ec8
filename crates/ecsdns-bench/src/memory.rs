//! Where the memory goes: the same data set as `scale`, loaded stage by stage on one thread
//! (parse, static source, registry, DNS table), with the resident size after each stage. One
//! thread, so the figures are the data's own, without per-thread allocator arenas.

use std::sync::Arc;

use anyhow::Context;

use crate::data::{DataSet, ZONE};

/// Resident set size now, MiB.
fn rss_mib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kib / 1024.0)
}

/// Loads `endpoints` endpoints and prints each stage's share.
pub(crate) fn run(endpoints: usize) -> anyhow::Result<()> {
    let data = DataSet::with_endpoints(endpoints);
    let text = data.endpoints_toml();
    let start = rss_mib()?;
    let tasks = endpoints_file::parse(std::path::Path::new("bench.toml"), &text)?;
    drop(text);
    let parsed = rss_mib()?;
    let mut source = endpoints_file::StaticSource::default();
    let updates = source.load(tasks);
    let loaded = rss_mib()?;
    let registry = Arc::new(registry::Registry::new(registry::RegistryConfig::default()));
    registry.apply_batch(updates);
    let applied = rss_mib()?;
    let table = dns::AnswerTable::new(dns::ZoneConfig::new(ZONE)?)?;
    for snapshot in registry.services() {
        table.set_service(&snapshot.key, Some(&snapshot))?;
    }
    let prepared = rss_mib()?;
    let n = data.endpoints() as f64;
    let row = |stage: &str, mib: f64| {
        println!(
            "{stage:<34} {mib:>8.1} MiB {:>8.0} B/endpoint",
            mib * 1_048_576.0 / n
        );
    };
    println!("memory: {} endpoints, one thread", data.endpoints());
    row("tasks parsed from the static file", parsed - start);
    row("static source (versions)", loaded - parsed);
    row("registry (tasks, indexes, snapshots)", applied - loaded);
    row("DNS answer table", prepared - applied);
    row("total resident", prepared);
    println!(
        "(tasks move from the parsed list into the registry, so the registry line is its indexes \
         and snapshots net of the list it frees; names in the table: {})",
        table.len()
    );
    warm_restart(&registry, data.endpoints())
}

/// The warm-restart figures: writing the registry to a state file, and reading it back into a
/// fresh registry (what `serve --state-file` does at start).
fn warm_restart(registry: &registry::Registry, endpoints: usize) -> anyhow::Result<()> {
    let path = std::env::temp_dir().join(format!("ecsdns-bench-state-{}", std::process::id()));
    let tasks = registry.live_tasks();
    let start = std::time::Instant::now();
    ecsdns::state_file::write(&path, ZONE, &tasks)?;
    let wrote = start.elapsed();
    let size = std::fs::metadata(&path)?.len();
    let start = std::time::Instant::now();
    let read = ecsdns::state_file::read(&path, ZONE)?.context("the state file vanished")?;
    let fresh = registry::Registry::new(registry::RegistryConfig::default());
    fresh.apply_batch(read.into_iter().map(model::Update::Upsert));
    let loaded = start.elapsed();
    std::fs::remove_file(&path)?;
    anyhow::ensure!(
        fresh.stats().tasks as usize == tasks.len(),
        "restore lost tasks"
    );
    println!(
        "state file: {endpoints} endpoints, {:.1} MiB, written in {:.0} ms, read and applied in {:.0} ms",
        size as f64 / 1_048_576.0,
        wrote.as_secs_f64() * 1000.0,
        loaded.as_secs_f64() * 1000.0
    );
    Ok(())
}
