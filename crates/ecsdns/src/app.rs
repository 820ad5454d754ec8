//! Wiring: registry, the update channel and its applier, the DNS table follower, the DNS
//! server, the HTTP API, and the sources (static file, demo, ECS watcher). The same wiring serves
//! `serve`, `demo` and the end-to-end tests (which start it in-process on port 0).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dns::{AnswerTable, Answerer, DnsMetrics, DnsServer, ServerConfig};
use model::Update;
use registry::{Registry, RegistryConfig};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::background::{
    prune_tombstones, report_problems, restore, save_state, start_prober, track_visibility,
};
use crate::config::Settings;
use crate::file_watch::{read_stable, stamp};
use crate::operator::{AppOperator, LocalSources, VISIBLE_BOUNDS};
use crate::state_file;
use endpoints_file::{self as static_file, StaticSource};

/// A running ecsdns.
pub struct App {
    /// The registry.
    pub registry: Arc<Registry>,
    /// The DNS answer table.
    pub table: Arc<AnswerTable>,
    /// DNS counters.
    pub dns_metrics: Arc<DnsMetrics>,
    /// The ECS watcher, when clusters are configured.
    pub watcher: Option<Arc<ecs::Watcher>>,
    /// Readiness of the sources the binary runs itself.
    pub local: Arc<LocalSources>,
    dns_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    updates: ingest::Sink,
    synced: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    server: DnsServer,
    encrypted: Option<dns::EncryptedServer>,
    /// Where the registry is saved at shutdown, and the zone it belongs to.
    state: Option<(PathBuf, String)>,
}

impl App {
    /// Starts everything but the sources. Must run inside a tokio runtime.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        let registry = Arc::new(Registry::new(RegistryConfig {
            fail_open: settings.fail_open,
            ordinals: crate::zone::ordinal_services(settings)?,
            ..RegistryConfig::default()
        }));
        let table = Arc::new(AnswerTable::new(crate::zone::zone_config(settings)?)?);
        let zone_name = table.zone().origin.to_string();
        // Before any source starts: a reconcile's listing marker must come after these, so the
        // listing removes whatever stopped while we were down.
        let restored = match &settings.state_file {
            Some(path) => restore(&registry, path, &zone_name),
            None => false,
        };
        let dns_metrics = Arc::new(DnsMetrics::default());
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();

        let (synced_tx, synced) = watch::channel(0);
        tasks.spawn(dns::follow::follow(
            Arc::clone(&registry),
            Arc::clone(&table),
            synced_tx,
            stopped.clone(),
        ));

        if !table.zone().transfer.notify.is_empty() {
            tasks.spawn(dns::notify::notify_secondaries(
                Arc::clone(&table),
                synced.clone(),
                stopped.clone(),
            ));
        }

        let visible = Arc::new(api::Histogram::new(&VISIBLE_BOUNDS));
        let (applied_tx, applied_rx) = mpsc::channel(4096);
        tasks.spawn(track_visibility(
            applied_rx,
            synced.clone(),
            Arc::clone(&visible),
        ));
        // The one applier: every source below sends through `updates`.
        let (updates, inbox) = ingest::channel(1024);
        let applier = Arc::clone(&registry);
        tasks.spawn(inbox.run(
            registry.generation(),
            move |batch| applier.apply_batch(batch),
            // Full only if the tracker is far behind: then skipping a sample is the right cost.
            move |generation, received| {
                let _ = applied_tx.try_send((generation, received));
            },
        ));
        tasks.spawn(prune_tombstones(Arc::clone(&registry), stopped.clone()));
        let health = Arc::new(health::HealthMetrics::default());
        start_prober(
            Arc::clone(&registry),
            updates.clone(),
            Arc::clone(&health),
            stopped.clone(),
        )?;
        tasks.spawn(report_problems(Arc::clone(&registry), stopped.clone()));

        let (udp, tcp) = dns::bind_udp_tcp(settings.dns_addr).with_context(|| {
            format!(
                "cannot serve DNS on {} (UDP and TCP): if the port is taken, another DNS server \
                 (systemd-resolved, dnsmasq, another ecsdns) holds it; choose one with --dns-addr",
                settings.dns_addr
            )
        })?;
        let server = DnsServer::start(
            Answerer::new(Arc::clone(&table), Arc::clone(&dns_metrics)),
            udp,
            tcp,
            ServerConfig {
                udp_workers: settings.udp_workers,
                tcp_idle_timeout: settings.tcp_idle_timeout,
                tcp_max_connections: settings.tcp_max_connections,
                rrl: settings.rrl,
                ..ServerConfig::default()
            },
        )?;
        let dns_addr = server.local_addr();
        let encrypted = match settings
            .tls
            .encrypted(settings.tcp_idle_timeout, settings.tcp_max_connections)?
        {
            Some(config) => {
                let answerer = Answerer::new(Arc::clone(&table), Arc::clone(&dns_metrics));
                let started = dns::EncryptedServer::start(answerer, config).await;
                Some(started.context("cannot serve DNS over TLS or HTTPS")?)
            }
            None => None,
        };
        let watcher = if settings.ecs.clusters.is_empty() {
            if settings.ecs.sqs_queue_url.is_some() {
                anyhow::bail!("an SQS queue is configured but no cluster to watch (--cluster)");
            }
            None
        } else {
            let config = ecs::WatchConfig {
                aws: ecs::aws::AwsSettings {
                    region: settings.ecs.region.clone(),
                    ..Default::default()
                },
                clusters: settings.ecs.clusters.clone(),
                queue_url: settings.ecs.sqs_queue_url.clone(),
                reconcile_interval: settings.ecs.reconcile_interval,
                ecs_rate: settings.ecs.api_rate,
                ecs_burst: (settings.ecs.api_rate * 2.0).max(1.0),
                ..Default::default()
            };
            let unqueued: Vec<&str> = settings
                .ecs
                .clusters
                .iter()
                .filter(|c| c.sqs_queue_url.is_none())
                .map(|c| c.label.as_str())
                .collect();
            if settings.ecs.sqs_queue_url.is_none() && !unqueued.is_empty() {
                tracing::warn!(
                    clusters = ?unqueued,
                    reconcile_interval = ?settings.ecs.reconcile_interval,
                    "no SQS queue (--sqs-queue-url): ECS changes reach DNS only at the next \
                     reconcile, up to one reconcile interval late; stopping tasks stay in DNS \
                     that long"
                );
            }
            let watcher = ecs::Watcher::start(config, updates.clone(), stopped.clone(), &mut tasks)
                .await
                .context("cannot watch ECS")?;
            Some(Arc::new(watcher))
        };
        let local = Arc::new(LocalSources::default());
        if restored {
            local.set_restored();
        }
        if let Some(path) = &settings.state_file {
            tasks.spawn(save_state(
                Arc::clone(&registry),
                path.clone(),
                zone_name.clone(),
                settings.state_interval,
                stopped.clone(),
            ));
        }
        if settings.endpoints.is_some() {
            local.expect(ENDPOINTS_SOURCE);
        }
        let operator: Arc<dyn api::Operator> = Arc::new(AppOperator {
            dns: Arc::clone(&dns_metrics),
            watcher: watcher.clone(),
            local: Arc::clone(&local),
            visible,
            health: Arc::clone(&health),
            table: Arc::clone(&table),
        });
        if let Some(interval) = settings.cloudwatch_emf {
            let config = api::emf::EmfConfig {
                namespace: settings.cloudwatch_namespace.clone(),
                interval,
                zone: table.zone().origin.to_string(),
            };
            tasks.spawn(api::emf::run(
                Arc::clone(&registry),
                Arc::clone(&operator),
                config,
                Box::new(std::io::stdout()),
                stopped.clone(),
            ));
        }
        let http_addr = match settings.http_addr {
            None => None,
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                    format!(
                        "cannot serve the HTTP API on {addr} (another ecsdns running? \
                         choose one with --http-addr, or --http-addr off)"
                    )
                })?;
                let bound = listener.local_addr()?;
                let mut tokens = match &settings.api_token_file {
                    Some(path) => api::read_tokens(path)?,
                    None => Vec::new(),
                };
                tokens.extend(settings.api_tokens.0.iter().cloned());
                let config = api::ApiConfig {
                    zone: table.zone().origin.to_string(),
                    tokens,
                    drain_margin: settings.drain_margin,
                    history_interval: settings.history_interval,
                    ..api::ApiConfig::default()
                };
                let router = api::router(
                    Arc::clone(&registry),
                    operator,
                    config.clone(),
                    stopped.clone(),
                );
                let stop = stopped.clone();
                tasks.spawn(async move {
                    if let Err(e) = api::serve(listener, router, &config, stop).await {
                        tracing::error!(error = %e, "HTTP API stopped");
                    }
                });
                Some(bound)
            }
        };
        let mut app = Self {
            registry,
            table,
            dns_metrics,
            watcher,
            local,
            dns_addr,
            http_addr,
            updates,
            synced,
            stop,
            tasks,
            server,
            encrypted,
            state: settings.state_file.clone().map(|p| (p, zone_name)),
        };
        if let Some(path) = &settings.endpoints {
            app.watch_endpoints(path.clone(), settings.endpoints_poll)
                .await?;
        }
        Ok(app)
    }

    /// The DNS address served (UDP and TCP).
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns_addr
    }

    /// The DNS over TLS and HTTPS listeners, when configured.
    pub fn encrypted(&self) -> Option<&dns::EncryptedServer> {
        self.encrypted.as_ref()
    }

    /// The HTTP API address, unless the API is off.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Applies updates and waits until DNS serves the result.
    pub async fn ingest(&self, updates: Vec<Update>) -> anyhow::Result<()> {
        ingest(&self.updates, &self.synced, updates).await
    }

    /// A receiver that turns true when the app is stopping.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Loads the static endpoints file (an error if the first load fails) and reloads it on
    /// change. A reload is applied only once two reads a moment apart agree (a file being
    /// written is not read half-way), and never when it would drop every endpoint unless the
    /// file says `allow_empty = true` (a truncated file reads as an empty, valid one). A
    /// rejected reload keeps the previous endpoints and is reported: a WARN log line, the
    /// source's error in `/readyz` and an entry in `/v1/problems`.
    async fn watch_endpoints(&mut self, path: PathBuf, poll: Duration) -> anyhow::Result<()> {
        let mut source = StaticSource::default();
        let settle = (poll / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
        // Stamped before the first read: a write landing during or just after it (before
        // the poll loop starts) is then a change the loop sees, not a version it skips.
        let mut seen = stamp(&path);
        let text = read_stable(&path, settle)
            .await
            .with_context(|| format!("cannot read endpoints file {}", path.display()))?;
        let file = static_file::parse_file(&path, &text)
            .map_err(|e| anyhow::anyhow!("endpoints file {}: {}", path.display(), e))?;
        tracing::info!(path = %path.display(), endpoints = file.tasks.len(), "endpoints file loaded");
        let mut count = file.tasks.len();
        self.ingest(source.load(file.tasks)).await?;
        self.local.ok(ENDPOINTS_SOURCE, count);
        let local = Arc::clone(&self.local);
        let updates = self.updates.clone();
        let synced = self.synced.clone();
        let mut stopping = self.stopping();
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = stopping.changed() => return,
                }
                let now = stamp(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                let loaded = match read_stable(&path, settle).await {
                    Ok(text) => static_file::parse_file(&path, &text).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let refused = match loaded {
                    Ok(file) if file.tasks.is_empty() && count > 0 && !file.allow_empty => {
                        Some(format!(
                            "the new file has no endpoint and would remove all {count}; \
                             keeping them (write `allow_empty = true` at the top of the file \
                             to empty it on purpose)"
                        ))
                    }
                    Ok(file) => {
                        tracing::info!(path = %path.display(), endpoints = file.tasks.len(), "endpoints file reloaded");
                        let n = file.tasks.len();
                        if ingest(&updates, &synced, source.load(file.tasks)).await.is_err() {
                            return;
                        }
                        count = n;
                        local.ok(ENDPOINTS_SOURCE, count);
                        None
                    }
                    Err(e) => Some(format!("{e}; keeping the previous {count} endpoints")),
                };
                if let Some(error) = refused {
                    tracing::warn!(
                        path = %path.display(),
                        error = %error,
                        "endpoints file rejected"
                    );
                    local.failed(ENDPOINTS_SOURCE, &format!("{}: {error}", path.display()));
                }
            }
        });
        Ok(())
    }

    /// Runs the demo simulator: the initial cluster now, then a churn step every `churn`, and a
    /// rolling deploy of `web` every `deploy` (its steps 2 s apart, or one per churn step).
    pub async fn start_demo(
        &mut self,
        seed: u64,
        churn: Option<Duration>,
        deploy: Option<Duration>,
    ) -> anyhow::Result<()> {
        let decoder = ecs::Decoder::new(ecs::demo::Simulator::clusters());
        let mut sim = ecs::demo::Simulator::new(seed);
        let decode = move |bodies: Vec<String>, sim: &ecs::demo::Simulator| {
            bodies
                .iter()
                .filter_map(|body| match decoder.decode(body, sim) {
                    Ok(update) => update,
                    Err(e) => {
                        tracing::warn!(error = %e, "demo produced an undecodable event");
                        None
                    }
                })
                .collect::<Vec<_>>()
        };
        self.local.expect(DEMO_SOURCE);
        let initial = decode(sim.initial_events(), &sim);
        let count = initial.len();
        self.ingest(initial).await?;
        self.local.ok(DEMO_SOURCE, count);
        let Some(every) = churn.or(deploy.map(|_| Duration::from_secs(2))) else {
            return Ok(());
        };
        let updates = self.updates.clone();
        let mut stopping = self.stopping();
        self.tasks.spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.tick().await;
            // The first deploy soon after start, so a newcomer sees one.
            let first = Duration::from_secs(10);
            let mut deploys = deploy
                .map(|d| tokio::time::interval_at(tokio::time::Instant::now() + first.min(d), d));
            loop {
                let next_deploy = async {
                    match deploys.as_mut() {
                        Some(d) => {
                            d.tick().await;
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = next_deploy => {
                        let replacing = sim.start_rolling_deploy();
                        if !replacing.is_empty() {
                            tracing::info!(
                                service = "demo/web",
                                replacing = %replacing.join(","),
                                "demo rolling deploy started"
                            );
                        }
                        continue;
                    }
                    _ = stopping.changed() => return,
                }
                let batch = decode(sim.tick(churn.is_some()), &sim);
                if !batch.is_empty() && updates.send(batch).await.is_err() {
                    return;
                }
            }
        });
        Ok(())
    }

    /// Stops sources and the follower, then the DNS server (finishing in-flight TCP answers).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.server.shutdown().await;
        if let Some(encrypted) = self.encrypted.take() {
            encrypted.shutdown().await;
        }
        drop(self.updates);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        if let Some((path, zone)) = self.state.take() {
            let tasks = self.registry.live_tasks();
            match state_file::write(&path, &zone, &tasks) {
                Ok(()) => {
                    tracing::info!(tasks = tasks.len(), path = %path.display(), "state saved")
                }
                Err(e) => tracing::error!(error = %format!("{e:#}"), "state not saved"),
            }
        }
    }
}

async fn ingest(
    updates: &ingest::Sink,
    synced: &watch::Receiver<u64>,
    batch: Vec<Update>,
) -> anyhow::Result<()> {
    let generation = updates.apply(batch).await?;
    let mut synced = synced.clone();
    synced
        .wait_for(|g| *g >= generation)
        .await
        .context("DNS follower stopped")?;
    Ok(())
}

/// Readiness name of the static endpoints file.
const ENDPOINTS_SOURCE: &str = "endpoints-file";
/// Readiness name of the demo simulator.
const DEMO_SOURCE: &str = "demo";
