//! The operator HTTP API: services, endpoints and health read from registry snapshots; blocking
//! queries and a Server-Sent Events stream driven by the registry's change feed; Prometheus
//! metrics and HTTP service discovery; a one-page dashboard.
//!
//! Invariants:
//! - Read-only over the registry: every answer is built from immutable [`registry::ServiceSnapshot`]s
//!   and the generation; the API never takes part in applying updates.
//! - The crate knows neither the DNS server nor the ECS watcher. What it needs of them (readiness,
//!   their counters, poison events, a reconcile trigger) comes through the [`Operator`] trait the
//!   binary implements.
//! - Errors become HTTP statuses in one place ([`ApiError::status`]); JSON shapes are this crate's
//!   own DTOs ([`dto`]).
//! - Secrets never reach a log: tokens are compared, never printed, and request logs carry the
//!   path without its query string (which may hold `access_token`).

mod auth;
mod cloudmap;
mod dashboard;
mod drain;
pub mod dto;
pub mod emf;
mod error;
mod explain;
pub mod metrics;
mod overview;
mod params;
mod views;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use registry::Registry;
use tokio::sync::Semaphore;

pub use auth::{TokenError, read_tokens};
pub use error::{ApiError, ErrorBody};
pub use metrics::{Exposition, Histogram, HistogramValues, Kind};
pub use params::parse_duration;

/// The header that carries the registry generation of an answer (the `index` of blocking queries).
pub const INDEX_HEADER: &str = "x-ecsdns-index";

/// What the API needs from the rest of the process.
pub trait Operator: Send + Sync + 'static {
    /// The state of every source. `show_errors` is false for unauthenticated callers of
    /// `/readyz`, who see states but not error texts.
    fn readiness(&self, show_errors: bool) -> dto::Readiness;
    /// Writes the counters the API does not own (DNS, watcher, update latency).
    fn metrics(&self, out: &mut Exposition);
    /// Problems outside the registry (poison events).
    fn problems(&self) -> Vec<dto::ProblemDto>;
    /// Starts a reconcile of every watched cluster now; returns how many were asked.
    fn reconcile(&self) -> Result<usize, ApiError>;
    /// What DNS knows of the tasks whose ARN or id is `task` (served now, or left lately), as
    /// of `now_ms` (ms since the epoch).
    fn served(&self, task: &str, now_ms: u64) -> Vec<dto::ServedInfo>;
    /// What DNS answers `name`/`qtype` to a client at `from`, asked of the real answer path;
    /// `service` (`service.cluster`) names the service whose same-AZ setting applies.
    fn explain(
        &self,
        name: &str,
        qtype: &str,
        from: Option<std::net::IpAddr>,
        service: Option<&str>,
    ) -> Result<dto::DnsAnswer, ApiError>;
    /// Queries DNS answered so far per service (any of its names), for the dashboard's rates.
    fn query_counts(&self) -> Vec<(model::ServiceKey, u64)>;
    /// The update-to-DNS latency histogram, for the dashboard's chart.
    fn update_latency(&self) -> HistogramValues;
}

/// API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The DNS zone, for the names shown (with or without the trailing dot).
    pub zone: String,
    /// Bearer tokens; when not empty, every request needs one but `/healthz`, `/readyz`, the
    /// dashboard page (`GET /`, no data) and the Cloud Map discovery calls (`POST /`, limited to
    /// what DNS serves).
    pub tokens: Vec<String>,
    /// Longest time a plain request may take.
    pub request_timeout: Duration,
    /// Default `wait` of a blocking query.
    pub default_wait: Duration,
    /// Longest `wait` of a blocking query.
    pub max_wait: Duration,
    /// Watch streams open at once.
    pub max_watchers: usize,
    /// Largest request body.
    pub max_body: usize,
    /// Time a connection has to send a request's headers.
    pub header_timeout: Duration,
    /// HTTP connections open at once; more are closed at accept.
    pub max_connections: usize,
    /// How long shutdown waits for requests in progress.
    pub shutdown_grace: Duration,
    /// Added to `last served + TTL` for a task's safe-to-stop time (clock steps, a query in
    /// flight when the answer changed).
    pub drain_margin: Duration,
    /// How often the dashboard's history (served tasks and query rate per service) is sampled.
    pub history_interval: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            zone: "ecs.internal.".into(),
            tokens: Vec::new(),
            request_timeout: Duration::from_secs(10),
            default_wait: Duration::from_secs(60),
            max_wait: Duration::from_secs(600),
            max_watchers: 256,
            max_body: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(5),
            drain_margin: Duration::from_secs(1),
            history_interval: Duration::from_secs(5),
        }
    }
}

/// HTTP request counters by status class.
#[derive(Debug, Default)]
struct HttpCounters {
    by_class: [AtomicU64; 5],
}

impl HttpCounters {
    fn count(&self, status: u16) {
        let i = usize::from((status / 100).clamp(1, 5) - 1);
        if let Some(c) = self.by_class.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// State shared by the handlers.
struct Shared {
    registry: Arc<Registry>,
    operator: Arc<dyn Operator>,
    config: ApiConfig,
    /// The zone without its trailing dot, as names are shown.
    zone: String,
    watchers: Arc<Semaphore>,
    stop: tokio::sync::watch::Receiver<bool>,
    http: HttpCounters,
    history: overview::History,
}

/// Builds the router. `stop` turning true ends watch streams and blocking queries, so a graceful
/// shutdown does not wait for them.
pub fn router(
    registry: Arc<Registry>,
    operator: Arc<dyn Operator>,
    config: ApiConfig,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Router {
    let zone = config.zone.trim_end_matches('.').to_ascii_lowercase();
    let shared = Arc::new(Shared {
        registry,
        operator,
        watchers: Arc::new(Semaphore::new(config.max_watchers.max(1))),
        zone,
        stop,
        http: HttpCounters::default(),
        history: overview::History::default(),
        config,
    });
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let interval = shared.config.history_interval;
        runtime.spawn(overview::sampler(Arc::clone(&shared), interval));
    }
    Router::new()
        .route("/", get(dashboard::page).post(cloudmap::handle))
        .route("/healthz", get(views::healthz))
        .route("/readyz", get(views::readyz))
        .route("/metrics", get(views::metrics))
        .route("/v1/services", get(views::services))
        .route("/v1/services/{cluster}/{service}", get(views::service))
        .route("/v1/health/{cluster}/{service}", get(views::service))
        .route("/v1/tasks/{task}", get(views::task))
        .route("/v1/tasks/{task}/drain", get(drain::drain))
        .route("/v1/problems", get(views::problems))
        .route("/v1/explain", get(explain::explain))
        .route("/v1/overview", get(overview::overview))
        .route("/v1/prometheus-sd", get(views::prometheus_sd))
        .route("/v1/watch", get(watch::stream))
        .route("/v1/reconcile", post(views::reconcile))
        .fallback(views::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            auth::guard,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(shared.config.max_body))
        .with_state(shared)
}

/// Serves `router` on an already-bound listener until `stop` turns true, then finishes the
/// requests in progress (for at most `config.shutdown_grace`). Each connection must send its
/// request headers within `config.header_timeout`, and at most `config.max_connections` are open
/// at once: slow or idle clients cannot exhaust the server.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    config: &ApiConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    loop {
        if *stop.borrow() {
            break;
        }
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving what is open.
                    tracing::debug!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(config.shutdown_grace, graceful.shutdown()).await;
    Ok(())
}
