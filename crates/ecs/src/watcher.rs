//! The ECS watcher: per watched cluster a reconcile loop, plus one SQS consumer, all sending
//! Updates into the registry's channel. Keeps going whatever AWS does: failures are retried with
//! backoff and reported in [`WatchStatus`]; the registry keeps serving the last known state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::aws::{AwsError, AwsSettings, assume_role, load_config};
use crate::lookups::Lookups;
use crate::pacer::Pacer;
use crate::status::WatchStatus;
use crate::{ClusterMap, Decoder, reconcile, sqs};

pub use ingest::Sink;

/// One watched cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Cluster name (or ARN), as ECS knows it.
    pub name: String,
    /// DNS label: its alias, or its lower-cased name.
    pub label: String,
    /// Role to assume for this cluster's ECS/EC2 calls (another account, say).
    pub role_arn: Option<String>,
    /// The cluster's own event queue (a queue in its region or account), consumed in the
    /// cluster's region with its role. One consumer per distinct queue URL.
    pub sqs_queue_url: Option<String>,
}

/// Watcher configuration.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Region, endpoint, timeouts.
    pub aws: AwsSettings,
    /// Watched clusters.
    pub clusters: Vec<ClusterConfig>,
    /// The SQS queue the EventBridge rule feeds, if any.
    pub queue_url: Option<String>,
    /// Time between reconciles of a cluster.
    pub reconcile_interval: Duration,
    /// SQS long-poll wait (at most 20 s).
    pub queue_wait: Duration,
    /// ECS read calls per second, sustained, over all clusters.
    pub ecs_rate: f64,
    /// ECS read calls at once.
    pub ecs_burst: f64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            aws: AwsSettings::default(),
            clusters: Vec::new(),
            queue_url: None,
            reconcile_interval: Duration::from_secs(60),
            queue_wait: Duration::from_secs(20),
            ecs_rate: 10.0,
            ecs_burst: 20.0,
        }
    }
}

/// A watched cluster's clients and caches.
pub(crate) struct ClusterWatch {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) ecs: aws_sdk_ecs::Client,
    pub(crate) ecs_pacer: Arc<Pacer>,
    pub(crate) lookups: Lookups,
}

/// State shared by the watcher's tasks.
pub(crate) struct Shared {
    pub(crate) decoder: Decoder,
    pub(crate) clusters: BTreeMap<String, ClusterWatch>,
    pub(crate) status: Arc<WatchStatus>,
    /// Wakes every reconcile loop that is waiting for its next round.
    pub(crate) reconcile_now: tokio::sync::Notify,
}

/// The pacers of one account in one region: ECS's and EC2's request quotas are per account
/// and region, so clusters sharing both share these buckets, and a busy region never slows
/// another's reconciles.
pub struct RegionPacers {
    /// The region.
    pub region: String,
    /// The account: the role's account for an assumed role, else `default` (the base
    /// credentials').
    pub account: String,
    /// ECS calls.
    pub ecs: Arc<Pacer>,
    /// EC2 calls (container instance addresses).
    pub ec2: Arc<Pacer>,
}

/// A running watcher.
pub struct Watcher {
    /// Health of each source, for readiness and metrics.
    pub status: Arc<WatchStatus>,
    shared: Arc<Shared>,
    /// One pair of pacers per (region, account) the clusters live in.
    pub pacers: Vec<RegionPacers>,
}

/// The account id of a role ARN (`arn:PARTITION:iam::ACCOUNT:role/NAME`).
fn role_account(role: &str) -> Option<&str> {
    role.split(':').nth(4).filter(|a| !a.is_empty())
}

/// One queue to consume: its URL, its status name, and the SDK config it is called with.
struct QueueSpec {
    url: String,
    source: String,
    sdk: aws_config::SdkConfig,
}

impl Watcher {
    /// Starts the reconcile loops and the queue consumers on `tasks`; they stop when `stop`
    /// turns true.
    pub async fn start(
        config: WatchConfig,
        sink: Sink,
        stop: watch::Receiver<bool>,
        tasks: &mut JoinSet<()>,
    ) -> Result<Self, AwsError> {
        let base = load_config(&config.aws).await;
        let status = Arc::new(WatchStatus::default());
        let mut map = ClusterMap::default();
        let mut clusters = BTreeMap::new();
        let mut pacers: BTreeMap<(String, String), RegionPacers> = BTreeMap::new();
        let mut queues: Vec<QueueSpec> = Vec::new();
        for c in &config.clusters {
            // One label, one cluster: two would share a reconcile loop, and each one's listing
            // would remove the other's tasks.
            if clusters.contains_key(&c.label) {
                return Err(AwsError::Other(format!(
                    "two watched clusters have the DNS label {:?} ({} is the second): give one \
                     NAME=ALIAS (or `alias` in its [[ecs.cluster]])",
                    c.label, c.name
                )));
            }
            // A cluster ARN names its region, and its calls go there; a bare name needs the
            // standard chain's region (there is no sensible default to guess).
            let region = match (arn_region(&c.name), base.region()) {
                (Some(r), _) => r.to_string(),
                (None, Some(r)) => r.to_string(),
                (None, None) => {
                    return Err(AwsError::Other(format!(
                        "no AWS region for cluster {}: set --aws-region or AWS_REGION, a \
                         profile's region, or name the cluster by its ARN",
                        c.name
                    )));
                }
            };
            let regional = if base.region().map(|r| r.as_ref()) == Some(region.as_str()) {
                base.clone()
            } else {
                base.to_builder()
                    .region(aws_config::Region::new(region.clone()))
                    .build()
            };
            let sdk = match &c.role_arn {
                Some(role) => assume_role(&regional, role).await,
                None => regional,
            };
            let account = c
                .role_arn
                .as_deref()
                .map_or("default", |r| role_account(r).unwrap_or(r))
                .to_string();
            let pair = pacers
                .entry((region.clone(), account.clone()))
                .or_insert_with(|| RegionPacers {
                    region: region.clone(),
                    account,
                    ecs: Arc::new(Pacer::new(config.ecs_rate, config.ecs_burst, 5)),
                    ec2: Arc::new(Pacer::new(config.ecs_rate, config.ecs_burst, 5)),
                });
            let (ecs_pacer, ec2_pacer) = (Arc::clone(&pair.ecs), Arc::clone(&pair.ec2));
            let ecs = aws_sdk_ecs::Client::new(&sdk);
            let ec2 = aws_sdk_ec2::Client::new(&sdk);
            map.insert(&c.name, &c.label);
            status.expect_cluster(&c.label);
            let lookups =
                Lookups::new(&c.name, ecs.clone(), ec2, Arc::clone(&ecs_pacer), ec2_pacer);
            if let Some(url) = &c.sqs_queue_url
                && !queues.iter().any(|q| q.url == *url)
            {
                queues.push(QueueSpec {
                    url: url.clone(),
                    source: format!("queue:{}", c.label),
                    sdk: sdk.clone(),
                });
            }
            clusters.insert(
                c.label.clone(),
                ClusterWatch {
                    name: c.name.clone(),
                    label: c.label.clone(),
                    ecs,
                    ecs_pacer,
                    lookups,
                },
            );
        }
        if let Some(url) = &config.queue_url
            && !queues.iter().any(|q| q.url == *url)
        {
            if queue_region(url).is_none() && base.region().is_none() {
                return Err(AwsError::Other(format!(
                    "no AWS region for the queue {url}: set --aws-region or AWS_REGION"
                )));
            }
            queues.push(QueueSpec {
                url: url.clone(),
                source: "queue".to_string(),
                sdk: base.clone(),
            });
        }
        let shared = Arc::new(Shared {
            decoder: Decoder::new(map),
            clusters,
            status: Arc::clone(&status),
            reconcile_now: tokio::sync::Notify::new(),
        });
        for label in shared.clusters.keys() {
            tasks.spawn(reconcile_loop(
                Arc::clone(&shared),
                label.clone(),
                config.reconcile_interval,
                sink.clone(),
                stop.clone(),
            ));
        }
        let wait = config.queue_wait.min(Duration::from_secs(20));
        // A long poll holds the call open for `wait`: the attempt timeout must cover it,
        // or every poll of an idle queue fails and backs off (up to 30 s) instead of
        // returning empty, and the next event waits for the back-off.
        let call = config.aws.call_timeout.unwrap_or(Duration::from_secs(10));
        for q in queues {
            status.expect_queue(&q.source);
            let timeouts = aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(wait + call)
                .connect_timeout(Duration::from_secs(3))
                .build();
            let mut sqs_config =
                aws_sdk_sqs::config::Builder::from(&q.sdk).timeout_config(timeouts);
            // A queue URL of AWS's names its region; another host (a local endpoint, a VPC
            // endpoint) is called in the region of the config it came with.
            if let Some(region) = queue_region(&q.url) {
                sqs_config = sqs_config.region(aws_config::Region::new(region.to_string()));
            }
            let client = aws_sdk_sqs::Client::from_conf(sqs_config.build());
            tasks.spawn(sqs::consume(
                Arc::clone(&shared),
                client,
                sqs::Queue {
                    url: q.url,
                    source: q.source,
                },
                wait,
                sink.clone(),
                stop.clone(),
            ));
        }
        Ok(Self {
            status,
            shared,
            pacers: pacers.into_values().collect(),
        })
    }

    /// Starts a reconcile of every cluster whose loop is waiting for its next round (one that is
    /// reconciling now just finishes). Returns the number of watched clusters.
    pub fn reconcile_now(&self) -> usize {
        self.shared.reconcile_now.notify_waiters();
        self.shared.clusters.len()
    }

    /// Lookup failures over all clusters: (task definitions, container instance addresses,
    /// service descriptions).
    pub fn lookup_failures(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.shared
            .clusters
            .values()
            .fold((0, 0, 0), |(td, host, svc), cw| {
                let s = &cw.lookups.stats;
                (
                    td + s.task_definition_failures.load(Relaxed),
                    host + s.host_failures.load(Relaxed),
                    svc + s.service_failures.load(Relaxed),
                )
            })
    }

    /// Event decoding counters.
    pub fn decode_stats(&self) -> &crate::DecodeStats {
        &self.shared.decoder.stats
    }
}

/// Reconciles one cluster now and then every `interval`; after a failure, sooner (backoff from
/// 1 s up to the interval). Only this loop reconciles this cluster, so reconciles never overlap.
async fn reconcile_loop(
    shared: Arc<Shared>,
    label: String,
    interval: Duration,
    sink: Sink,
    mut stop: watch::Receiver<bool>,
) {
    let Some(cw) = shared.clusters.get(&label) else {
        return;
    };
    let mut failures = 0u32;
    loop {
        let started = tokio::time::Instant::now();
        let wait = match reconcile::reconcile(cw, &sink).await {
            Ok(tasks) => {
                failures = 0;
                shared.status.cluster_ok(&label, tasks, started.elapsed());
                interval
            }
            Err(e) => {
                failures += 1;
                let what = match &e {
                    AwsError::ClusterNotFound(_) => {
                        format!("cluster {} does not exist: {e}", cw.name)
                    }
                    _ => e.to_string(),
                };
                shared.status.cluster_failed(&label, &what);
                Duration::from_secs(1u64 << failures.min(6)).min(interval)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.reconcile_now.notified() => {
                tracing::info!(cluster = label, "reconcile requested");
            }
            _ = stop.changed() => return,
        }
    }
}

/// The region of a cluster ARN (`arn:PARTITION:ecs:REGION:ACCOUNT:cluster/NAME`).
fn arn_region(name: &str) -> Option<&str> {
    let mut parts = name.split(':');
    (parts.next()? == "arn").then_some(())?;
    parts.next()?;
    (parts.next()? == "ecs").then_some(())?;
    parts.next().filter(|r| !r.is_empty())
}

/// The region of an SQS queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`); `None` for
/// other hosts (a local endpoint, a VPC endpoint's name).
fn queue_region(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let rest = host.strip_prefix("sqs.")?;
    let (region, domain) = rest.split_once('.')?;
    domain.starts_with("amazonaws.").then_some(region)
}

#[cfg(test)]
mod region_tests {
    use super::*;

    #[test]
    fn regions_from_arns_and_queue_urls() {
        assert_eq!(
            arn_region("arn:aws:ecs:eu-west-1:111122223333:cluster/prod"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("prod"), None);
        assert_eq!(
            role_account("arn:aws:iam::111111111111:role/ecsdns-reader"),
            Some("111111111111")
        );
        assert_eq!(arn_region("arn:aws:sqs:eu-west-1:1:q"), None);
        assert_eq!(
            queue_region("https://sqs.ap-south-1.amazonaws.com/111122223333/events"),
            Some("ap-south-1")
        );
        assert_eq!(
            queue_region("http://127.0.0.1:5000/123456789012/events"),
            None
        );
    }
}
