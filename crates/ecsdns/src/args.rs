//! The command line's shape (clap): subcommands and their flags, and how the server's flags fold
//! into [`Settings`]. What runs them is in [`crate::cli`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Settings, parse_duration, parse_http_addr};
pub use crate::dns_args::DnsArgs;
pub use crate::drain::DrainWaitArgs;

/// Service discovery and authoritative DNS for Amazon ECS.
///
/// ecsdns keeps an in-memory registry of every running task's endpoints and answers DNS for
/// them: A/AAAA for a service's healthy tasks, SRV with ports, per-task names.
#[derive(Debug, Parser)]
#[command(name = "ecsdns", version, propagate_version = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Logging of the servers (`serve`, `demo`); the client subcommands only print.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format: human-readable text, or JSON lines (for CloudWatch Logs).
    #[arg(long, value_enum, default_value = "text", env = "ECSDNS_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The secrets `serve` reads only from its environment, as ECS injects Secrets Manager values.
const SECRETS_HELP: &str = "Secrets, from the environment only (never flags, which `ps` shows):
  ECSDNS_API_TOKENS  API bearer tokens, comma-separated (list the old and the new one while
                     rotating); added to --api-token-file's
  ECSDNS_TSIG_KEYS   TSIG keys, comma-separated NAME:ALGORITHM:BASE64 (the key file's lines);
                     added to --tsig-key-file's
A variable that is set but empty is an error. Values are never logged.";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS for the configured sources.
    #[command(after_help = SECRETS_HELP)]
    Serve(ServeArgs),
    /// Serve a simulated ECS cluster named `demo` (no AWS account needed).
    Demo(DemoArgs),
    /// Check a config file and/or an endpoints file by the rules `serve` applies: every
    /// problem as FILE:LINE:COL: message, exit 1; exit 0 when all is well.
    Validate(ValidateArgs),
    /// List every service with counts of passing, unhealthy, starting and draining tasks.
    Services(ServicesArgs),
    /// List a service's endpoints (exit 3: no such service; 5: --passing found none).
    Endpoints(EndpointsArgs),
    /// Print every change as it happens (services, endpoints, health) until interrupted.
    Watch(WatchArgs),
    /// List what an operator should fix: rejected reloads and failing sources, names DNS
    /// cannot serve, collisions, poison events.
    Problems(ListArgs),
    /// Show one task by id or ARN: state, check verdict and reason, DNS name (exit 3: unknown).
    Task(TaskArgs),
    /// Show what DNS answers a name to a client, and why each task of the service is in the
    /// answer or left out (health, check, draining, stopping, AZ, port).
    Explain(ExplainArgs),
    /// Ask a running ecsdns to reconcile every watched cluster now (needs a token).
    Reconcile(ClientArgs),
    /// Exit 0 when a running ecsdns answers `/healthz` (for container health checks: the
    /// image has no shell or curl).
    Health(ClientArgs),
    /// Container entrypoint: run a command, and hold the first SIGTERM until DNS no longer
    /// hands this task out (`ecsdns drain-wait --help`).
    #[command(disable_help_flag = true)]
    DrainWait(DrainWaitArgs),
}

/// How the operator subcommands reach a running ecsdns. Exit codes: 0 ok, 1 API unreachable or
/// failing, 2 usage, 3 not found, 4 token missing or wrong, 5 no passing endpoint.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Base URL of the ecsdns HTTP API.
    #[arg(long, env = "ECSDNS_API", default_value = "http://127.0.0.1:8053")]
    pub api: String,
    /// File holding the bearer token (first non-comment line).
    #[arg(long, env = "ECSDNS_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
    /// The bearer token itself (prefer the file: command lines are visible to other users).
    #[arg(long, env = "ECSDNS_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

/// `ecsdns problems`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the API's JSON instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Where the API is.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `ecsdns task`.
#[derive(Debug, Args)]
pub struct TaskArgs {
    /// Task id (`T` of `T.S.C.zone`) or ARN.
    pub task: String,
    /// `--json` and where the API is.
    #[command(flatten)]
    pub out: ListArgs,
}

/// `ecsdns validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A config file (`serve --config`); the endpoints file it names is checked too.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// An endpoints file (`serve --endpoints`).
    #[arg(long)]
    pub endpoints: Option<PathBuf>,
}

/// `ecsdns explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The name asked (`web.prod.ecs.internal`, `_http._tcp.web.prod.ecs.internal`, a task
    /// name).
    pub name: String,
    /// The record type asked.
    #[arg(default_value = "A")]
    pub qtype: String,
    /// The client's address: same-AZ answers follow it.
    #[arg(long, value_name = "IP")]
    pub from: Option<std::net::IpAddr>,
    /// `--json` and where the API is.
    #[command(flatten)]
    pub out: ListArgs,
}

/// `ecsdns services`.
#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Only this cluster (label).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where the API is.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `ecsdns endpoints`.
#[derive(Debug, Args)]
pub struct EndpointsArgs {
    /// Cluster label.
    pub cluster: String,
    /// Service (or standalone group) label.
    pub service: String,
    /// Only endpoints that pass (what DNS serves when anything passes).
    #[arg(long)]
    pub passing: bool,
    /// Only endpoints in this availability zone.
    #[arg(long)]
    pub az: Option<String>,
    /// Only endpoints with this named port.
    #[arg(long)]
    pub port: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where the API is.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `ecsdns watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only this cluster (label).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only this service (label).
    #[arg(long)]
    pub service: Option<String>,
    /// One JSON object per event instead of a line of text.
    #[arg(long)]
    pub json: bool,
    /// Where the API is.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// HTTP API options of `serve` and `demo`.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Address of the HTTP API (services, health, watch, /metrics, dashboard), or `off`
    /// [default: 127.0.0.1:8053].
    #[arg(long, env = "ECSDNS_HTTP_ADDR", value_parser = |s: &str| parse_http_addr(s).map(HttpAddr))]
    pub http_addr: Option<HttpAddr>,
    /// File of bearer tokens (one per line); when set, every API request needs one.
    #[arg(long, env = "ECSDNS_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Added to "last served + TTL" for a task's safe-to-stop time (`/v1/tasks/ID/drain`,
    /// `ecsdns drain-wait`) [default: 1s].
    #[arg(long, env = "ECSDNS_DRAIN_MARGIN", value_parser = parse_duration)]
    pub drain_margin: Option<Duration>,
    /// How often the dashboard samples each service's served tasks and query rate (its
    /// sparklines keep 60 samples) [default: 5s].
    #[arg(long, value_name = "INTERVAL", env = "ECSDNS_HISTORY_INTERVAL", value_parser = parse_duration)]
    pub history_interval: Option<Duration>,
    /// Write CloudWatch Embedded Metric Format lines on stdout at this interval (e.g. `60s`):
    /// with the awslogs driver they become CloudWatch metrics, with no agent.
    #[arg(long, value_name = "INTERVAL", env = "ECSDNS_CLOUDWATCH_EMF", value_parser = parse_duration)]
    pub cloudwatch_emf: Option<Duration>,
    /// The CloudWatch namespace of those metrics [default: ecsdns].
    #[arg(long, env = "ECSDNS_CLOUDWATCH_NAMESPACE")]
    pub cloudwatch_namespace: Option<String>,
}

/// `--http-addr`: an address, or `off` (`None`).
#[derive(Debug, Clone, Copy)]
pub struct HttpAddr(pub Option<SocketAddr>);

impl HttpArgs {
    pub(crate) fn apply(&self, mut s: Settings) -> Settings {
        if let Some(HttpAddr(addr)) = self.http_addr {
            s.http_addr = addr;
        }
        if self.api_token_file.is_some() {
            s.api_token_file = self.api_token_file.clone();
        }
        if let Some(margin) = self.drain_margin {
            s.drain_margin = margin;
        }
        if let Some(every) = self.history_interval {
            s.history_interval = every;
        }
        if self.cloudwatch_emf.is_some() {
            s.cloudwatch_emf = self.cloudwatch_emf;
        }
        if let Some(ns) = &self.cloudwatch_namespace {
            s.cloudwatch_namespace = ns.clone();
        }
        s
    }
}

/// `ecsdns serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML); flags and environment override it.
    #[arg(long, short, env = "ECSDNS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Static endpoints file (TOML, or JSON by extension), reloaded when it changes.
    #[arg(long, env = "ECSDNS_ENDPOINTS")]
    pub endpoints: Option<PathBuf>,
    /// How often to check the endpoints file for changes.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub endpoints_poll: Duration,
    /// Warm restart: keep the registry in this file (rewritten every --state-interval when it
    /// changed, and at shutdown) and serve from it at start until the sources have synced.
    #[arg(long, env = "ECSDNS_STATE_FILE")]
    pub state_file: Option<PathBuf>,
    /// How often the state file is rewritten [default: 30s].
    #[arg(long, value_parser = parse_duration)]
    pub state_interval: Option<Duration>,
    /// ECS cluster to watch, as NAME or ARN, optionally =ALIAS for its DNS label, then
    /// `;role=ARN` (another account's) and `;queue=URL` (its own event queue) (repeatable).
    #[arg(
        long = "cluster",
        value_name = "NAME[=ALIAS][;role=ARN][;queue=URL]",
        env = "ECSDNS_CLUSTERS",
        value_delimiter = ','
    )]
    pub clusters: Vec<String>,
    /// SQS queue fed by an EventBridge rule with ECS task and container instance events.
    #[arg(long, env = "ECSDNS_SQS_QUEUE_URL")]
    pub sqs_queue_url: Option<String>,
    /// Time between full reconciles from the ECS API [default: 60s].
    #[arg(long, env = "ECSDNS_RECONCILE_INTERVAL", value_parser = parse_duration)]
    pub reconcile_interval: Option<Duration>,
    /// AWS region [default: the standard chain: AWS_REGION, profile, instance metadata].
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// DNS options.
    #[command(flatten)]
    pub dns: DnsArgs,
    /// HTTP API options.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// `ecsdns demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the simulated cluster: the same seed gives the same tasks and churn.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep the cluster still (no task replacements or health flips).
    #[arg(long)]
    pub no_churn: bool,
    /// Time between churn steps.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub churn_interval: Duration,
    /// Roll every `web` task this often (the first one 10 s after start), as ECS deploys:
    /// new task served first, then the old one stopped. Watch it with `ecsdns watch`.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_duration)]
    pub rolling_deploy: Option<Duration>,
    /// DNS options.
    #[command(flatten)]
    pub dns: DnsArgs,
    /// HTTP API options.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}
