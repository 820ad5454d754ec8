//! Configuration: defaults, then the config file, then environment and flags (clap merges
//! those two). Resolved into [`Settings`], which is all the wiring reads.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// The config file (TOML). Every field is optional; flags and environment win over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[dns]`
    #[serde(default)]
    pub dns: DnsFile,
    /// `[registry]`
    #[serde(default)]
    pub registry: RegistryFile,
    /// Static endpoints file.
    pub endpoints: Option<PathBuf>,
    /// Warm-restart state file.
    pub state_file: Option<PathBuf>,
    /// How often the state file is rewritten (when something changed), e.g. `30s`.
    pub state_interval: Option<String>,
    /// `[ecs]`
    #[serde(default)]
    pub ecs: EcsFile,
    /// `[api]`
    #[serde(default)]
    pub api: ApiFile,
    /// `[tls]`
    #[serde(default)]
    pub tls: TlsFile,
}

/// `[api]` section: the operator HTTP API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFile {
    /// Listen address, or `off`.
    pub addr: Option<String>,
    /// File of bearer tokens (one per line).
    pub token_file: Option<PathBuf>,
    /// Added to "last served + TTL" for safe-to-stop times, e.g. `1s`.
    pub drain_margin: Option<String>,
    /// How often the dashboard's per-service history is sampled, e.g. `5s`.
    pub history_interval: Option<String>,
}

/// `[ecs]` section: the watched clusters and the event queue.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsFile {
    /// `[[ecs.cluster]]` entries.
    #[serde(default, rename = "cluster")]
    pub clusters: Vec<ClusterFile>,
    /// The SQS queue an EventBridge rule feeds with ECS events.
    pub sqs_queue_url: Option<String>,
    /// Time between reconciles, e.g. `60s`.
    pub reconcile_interval: Option<String>,
    /// AWS region (else the standard chain).
    pub region: Option<String>,
    /// ECS read calls per second over all clusters.
    pub api_rate: Option<f64>,
}

/// One `[[ecs.cluster]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Cluster name or ARN.
    pub name: String,
    /// DNS label to serve it under (default: the name, lower-cased).
    pub alias: Option<String>,
    /// Role to assume for this cluster.
    pub role_arn: Option<String>,
    /// This cluster's event queue (its region's, or its account's), called in the cluster's
    /// region with the cluster's role.
    pub sqs_queue_url: Option<String>,
}

/// `[dns]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsFile {
    /// Listen address (UDP and TCP).
    pub addr: Option<SocketAddr>,
    /// Zone origin.
    pub zone: Option<String>,
    /// Positive TTL, seconds.
    pub ttl: Option<u32>,
    /// Negative TTL, seconds.
    pub negative_ttl: Option<u32>,
    /// TTL per `service.cluster`.
    #[serde(default)]
    pub service_ttl: HashMap<String, u32>,
    /// What an oversized UDP answer carries: `truncate` (TC=1) or `fit` (no TC).
    pub udp_overflow: Option<String>,
    /// [`DnsFile::udp_overflow`] per `service.cluster`.
    #[serde(default)]
    pub service_udp_overflow: HashMap<String, String>,
    /// Name server name (NS, SOA MNAME).
    pub ns_name: Option<String>,
    /// Addresses of the name server name, when inside the zone.
    #[serde(default)]
    pub ns_addresses: Vec<IpAddr>,
    /// Largest UDP payload sent with EDNS.
    pub max_udp_payload: Option<u16>,
    /// UDP worker threads.
    pub udp_workers: Option<usize>,
    /// TCP idle timeout, e.g. `10s`.
    pub tcp_idle_timeout: Option<String>,
    /// TCP connection cap.
    pub tcp_max_connections: Option<usize>,
    /// Client subnets by AZ, `"10.0.0.0/20" = "us-east-1a"`, for same-AZ-first answers.
    #[serde(default)]
    pub az_subnets: HashMap<String, String>,
    /// Zone-wide same-AZ preference: `off`, `first`, or `only:N`.
    pub same_az: Option<String>,
    /// Same-AZ preference per `service.cluster`.
    #[serde(default)]
    pub same_az_service: HashMap<String, String>,
    /// Resolvers whose EDNS Client Subnet is believed (CIDR prefixes).
    #[serde(default)]
    pub client_subnet_trusted: Vec<String>,
    /// AZ-qualified names (`AZ.S.C.zone`); `false` serves none.
    pub az_names: Option<bool>,
    /// Labels whose values name subsets (`V.S.C.zone`).
    #[serde(default)]
    pub subset_labels: Vec<String>,
    /// Services (`service.cluster`) whose tasks get stable ordinals (`N.S.C.zone`).
    #[serde(default)]
    pub ordinals: Vec<String>,
    /// Revision names (`rev-N.S.C.zone`); `false` serves none.
    pub revision_names: Option<bool>,
    /// Client prefixes allowed to transfer the zone.
    #[serde(default)]
    pub allow_transfer: Vec<String>,
    /// File of TSIG keys for transfers.
    pub tsig_key_file: Option<PathBuf>,
    /// Secondaries to NOTIFY.
    #[serde(default)]
    pub notify: Vec<SocketAddr>,
    /// Reverse zones served with PTR records for task addresses.
    #[serde(default)]
    pub reverse_zones: Vec<String>,
    /// UDP answers per second per client prefix (0: no rate limiting).
    pub rrl_rate: Option<u32>,
    /// Every Nth limited answer goes out truncated instead of dropped.
    pub rrl_slip: Option<u32>,
}

/// `[registry]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    /// Serve live tasks when none is usable.
    pub fail_open: Option<bool>,
}

impl FileConfig {
    /// Reads a config file; a missing path is an error (the operator named it).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// Everything the server needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// DNS listen address.
    pub dns_addr: SocketAddr,
    /// DNS over TLS and HTTPS.
    pub tls: TlsSettings,
    /// Zone origin.
    pub zone: String,
    /// Positive TTL.
    pub ttl: u32,
    /// Negative TTL.
    pub negative_ttl: u32,
    /// Per-service TTLs.
    pub service_ttl: HashMap<String, u32>,
    /// Oversized UDP answers: `truncate` or `fit` (zone-wide).
    pub udp_overflow: Option<String>,
    /// Oversized UDP answers per `service.cluster`.
    pub service_udp_overflow: HashMap<String, String>,
    /// Client subnet (CIDR) -> AZ, for same-AZ-first answers.
    pub az_subnets: Vec<(String, String)>,
    /// Zone-wide same-AZ preference (`off`, `first`, `only:N`).
    pub same_az: Option<String>,
    /// Same-AZ preference per `service.cluster`.
    pub same_az_service: HashMap<String, String>,
    /// Resolvers whose EDNS Client Subnet is believed.
    pub client_subnet_trusted: Vec<String>,
    /// Whether AZ-qualified names are served.
    pub az_names: bool,
    /// Labels whose values name subsets.
    pub subset_labels: Vec<String>,
    /// Services (`service.cluster`) with stable ordinals.
    pub ordinals: Vec<String>,
    /// Whether revision names are served.
    pub revision_names: bool,
    /// Client prefixes allowed to transfer the zone.
    pub allow_transfer: Vec<String>,
    /// TSIG keys file.
    pub tsig_key_file: Option<PathBuf>,
    /// TSIG keys given directly (`ECSDNS_TSIG_KEYS`, e.g. a Secrets Manager secret injected by
    /// ECS), in the key file's `name:algorithm:base64` form; added to the file's keys.
    pub tsig_keys: Secrets,
    /// Secondaries to NOTIFY.
    pub notify: Vec<SocketAddr>,
    /// Reverse zones (PTR for task addresses).
    pub reverse_zones: Vec<String>,
    /// UDP response rate limiting.
    pub rrl: dns::RrlConfig,
    /// NS name, if not the default `ns1.<zone>`.
    pub ns_name: Option<String>,
    /// NS addresses.
    pub ns_addresses: Vec<IpAddr>,
    /// Largest EDNS UDP payload.
    pub max_udp_payload: u16,
    /// UDP threads.
    pub udp_workers: usize,
    /// TCP idle timeout.
    pub tcp_idle_timeout: Duration,
    /// TCP connection cap.
    pub tcp_max_connections: usize,
    /// Fail-open.
    pub fail_open: bool,
    /// Static endpoints file.
    pub endpoints: Option<PathBuf>,
    /// How often the endpoints file is checked for changes.
    pub endpoints_poll: Duration,
    /// Warm-restart state file: written periodically and at shutdown, read at start.
    pub state_file: Option<PathBuf>,
    /// How often the state file is rewritten when the registry changed.
    pub state_interval: Duration,
    /// The ECS watcher, when clusters are configured.
    pub ecs: EcsSettings,
    /// HTTP API listen address; `None` turns the API off.
    pub http_addr: Option<SocketAddr>,
    /// File of bearer tokens for the API.
    pub api_token_file: Option<PathBuf>,
    /// Bearer tokens given directly (`ECSDNS_API_TOKENS`), added to the file's: a distroless
    /// Fargate task gets Secrets Manager values only as environment variables.
    pub api_tokens: Secrets,
    /// Added to "last served + TTL" for a task's safe-to-stop time.
    pub drain_margin: Duration,
    /// How often the dashboard's per-service history is sampled.
    pub history_interval: Duration,
    /// CloudWatch EMF lines on stdout at this interval, when set.
    pub cloudwatch_emf: Option<Duration>,
    /// The CloudWatch namespace of those metrics.
    pub cloudwatch_namespace: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            dns_addr: SocketAddr::from(([127, 0, 0, 1], 5353)),
            tls: TlsSettings::default(),
            zone: "ecs.internal.".to_string(),
            ttl: 5,
            negative_ttl: 5,
            service_ttl: HashMap::new(),
            udp_overflow: None,
            service_udp_overflow: HashMap::new(),
            az_subnets: Vec::new(),
            same_az: None,
            same_az_service: HashMap::new(),
            client_subnet_trusted: Vec::new(),
            az_names: true,
            subset_labels: Vec::new(),
            ordinals: Vec::new(),
            revision_names: true,
            allow_transfer: Vec::new(),
            tsig_key_file: None,
            tsig_keys: Secrets::default(),
            notify: Vec::new(),
            reverse_zones: Vec::new(),
            rrl: dns::RrlConfig::default(),
            ns_name: None,
            ns_addresses: Vec::new(),
            max_udp_payload: 1232,
            udp_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_max_connections: 1024,
            fail_open: true,
            endpoints: None,
            endpoints_poll: Duration::from_secs(1),
            state_file: None,
            state_interval: Duration::from_secs(30),
            ecs: EcsSettings::default(),
            http_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8053))),
            api_token_file: None,
            api_tokens: Secrets::default(),
            drain_margin: Duration::from_secs(1),
            history_interval: Duration::from_secs(5),
            cloudwatch_emf: None,
            cloudwatch_namespace: "ecsdns".into(),
        }
    }
}

mod secrets;
pub use secrets::Secrets;
mod tls;
pub use tls::{TlsFile, TlsSettings};
mod ecs_settings;
use ecs_settings::cluster;
pub use ecs_settings::{EcsSettings, parse_cluster};

/// The environment variable of API bearer tokens (comma-separated).
pub const API_TOKENS_ENV: &str = "ECSDNS_API_TOKENS";
/// The environment variable of TSIG keys (comma-separated `name:algorithm:base64`).
pub const TSIG_KEYS_ENV: &str = "ECSDNS_TSIG_KEYS";

impl Settings {
    /// Reads the secrets that come only from the environment (never from flags, which other
    /// users can read in `ps`): [`API_TOKENS_ENV`] and [`TSIG_KEYS_ENV`]. A variable that is set
    /// but holds nothing is an error, so a secret that failed to resolve cannot quietly turn
    /// authentication off.
    pub fn with_env_secrets(
        mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        for (name, slot) in [
            (API_TOKENS_ENV, &mut self.api_tokens),
            (TSIG_KEYS_ENV, &mut self.tsig_keys),
        ] {
            if let Some(value) = var(name) {
                *slot = Secrets::parse(&value)
                    .with_context(|| format!("{name} is set but holds no value"))?;
            }
        }
        Ok(self)
    }

    /// Applies a config file over the defaults.
    pub fn with_file(mut self, file: FileConfig) -> anyhow::Result<Self> {
        let d = file.dns;
        if let Some(v) = d.addr {
            self.dns_addr = v;
        }
        if let Some(v) = d.zone {
            self.zone = v;
        }
        if let Some(v) = d.ttl {
            self.ttl = v;
        }
        if let Some(v) = d.negative_ttl {
            self.negative_ttl = v;
        }
        self.service_ttl.extend(d.service_ttl);
        self.udp_overflow = d.udp_overflow.or(self.udp_overflow.take());
        self.service_udp_overflow.extend(d.service_udp_overflow);
        let mut subnets: Vec<(String, String)> = d.az_subnets.into_iter().collect();
        subnets.sort();
        self.az_subnets.extend(subnets);
        if d.same_az.is_some() {
            self.same_az = d.same_az;
        }
        self.same_az_service.extend(d.same_az_service);
        self.client_subnet_trusted.extend(d.client_subnet_trusted);
        if let Some(on) = d.az_names {
            self.az_names = on;
        }
        self.subset_labels.extend(d.subset_labels);
        self.ordinals.extend(d.ordinals);
        if let Some(on) = d.revision_names {
            self.revision_names = on;
        }
        self.allow_transfer.extend(d.allow_transfer);
        if d.tsig_key_file.is_some() {
            self.tsig_key_file = d.tsig_key_file;
        }
        self.notify.extend(d.notify);
        self.reverse_zones.extend(d.reverse_zones);
        if let Some(v) = d.rrl_rate {
            self.rrl.responses_per_second = v;
        }
        if let Some(v) = d.rrl_slip {
            self.rrl.slip = v;
        }
        if d.ns_name.is_some() {
            self.ns_name = d.ns_name;
        }
        if !d.ns_addresses.is_empty() {
            self.ns_addresses = d.ns_addresses;
        }
        if let Some(v) = d.max_udp_payload {
            self.max_udp_payload = v;
        }
        if let Some(v) = d.udp_workers {
            self.udp_workers = v;
        }
        if let Some(v) = d.tcp_idle_timeout {
            self.tcp_idle_timeout = parse_duration(&v)?;
        }
        if let Some(v) = d.tcp_max_connections {
            self.tcp_max_connections = v;
        }
        self.tls.merge(file.tls)?;
        if let Some(v) = file.registry.fail_open {
            self.fail_open = v;
        }
        if file.state_file.is_some() {
            self.state_file = file.state_file;
        }
        if let Some(v) = file.state_interval {
            self.state_interval = parse_duration(&v)?;
        }
        if file.endpoints.is_some() {
            self.endpoints = file.endpoints;
        }
        let e = file.ecs;
        for c in e.clusters {
            self.ecs.clusters.push(cluster(
                &c.name,
                c.alias.as_deref(),
                c.role_arn,
                c.sqs_queue_url,
            )?);
        }
        if e.sqs_queue_url.is_some() {
            self.ecs.sqs_queue_url = e.sqs_queue_url;
        }
        if let Some(v) = e.reconcile_interval {
            self.ecs.reconcile_interval = parse_duration(&v)?;
        }
        if e.region.is_some() {
            self.ecs.region = e.region;
        }
        if let Some(v) = e.api_rate {
            self.ecs.api_rate = v;
        }
        if let Some(v) = file.api.addr {
            self.http_addr = parse_http_addr(&v)?;
        }
        if file.api.token_file.is_some() {
            self.api_token_file = file.api.token_file;
        }
        if let Some(v) = file.api.drain_margin {
            self.drain_margin = parse_duration(&v)?;
        }
        if let Some(v) = file.api.history_interval {
            self.history_interval = parse_duration(&v)?;
        }
        Ok(self)
    }
}

mod parse;
pub use parse::{parse_duration, parse_http_addr};

#[cfg(test)]
mod tests;
