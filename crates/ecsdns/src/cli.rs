//! Command line: `ecsdns serve` and `ecsdns demo`, the operator subcommands (`services`,
//! `endpoints`, `watch`, `reconcile`), logging, signals.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app::App;
use crate::client::{self, EndpointFilter, Target};
use crate::config::{FileConfig, Settings, parse_duration, parse_http_addr};
pub use crate::dns_args::DnsArgs;
pub use crate::drain::DrainWaitArgs;

/// Service discovery and authoritative DNS for Amazon ECS.
///
/// ecsdns keeps an in-memory registry of every running task's endpoints and answers DNS for
/// them: A/AAAA for a service's healthy tasks, SRV with ports, per-task names.
#[derive(Debug, Parser)]
#[command(name = "ecsdns", version, propagate_version = true)]
pub struct Cli {
    /// Log format: human-readable text, or JSON lines (for CloudWatch Logs).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "ECSDNS_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
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
    /// List every service with counts of passing, unhealthy, starting and draining tasks.
    Services(ServicesArgs),
    /// List a service's endpoints (exit 3: no such service; 5: --passing found none).
    Endpoints(EndpointsArgs),
    /// Print every change as it happens (services, endpoints, health) until interrupted.
    Watch(WatchArgs),
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
    fn apply(&self, mut s: Settings) -> Settings {
        if let Some(HttpAddr(addr)) = self.http_addr {
            s.http_addr = addr;
        }
        if self.api_token_file.is_some() {
            s.api_token_file = self.api_token_file.clone();
        }
        if let Some(margin) = self.drain_margin {
            s.drain_margin = margin;
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
    /// ECS cluster to watch, as NAME or ARN, optionally =ALIAS for its DNS label (repeatable).
    #[arg(
        long = "cluster",
        value_name = "NAME[=ALIAS]",
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
}

/// Entry point: parse, set up logging, run, map errors to an exit code.
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// [`main`] with explicit arguments (the first is the program name), so other binaries (the
/// benchmark harness) can run exactly this server.
pub fn main_from(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    if let Command::DrainWait(a) = cli.command {
        return crate::drain::run(a);
    }
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ecsdns: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "ecsdns stopped");
            eprintln!("ecsdns: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn target(args: &ClientArgs) -> Result<Target, ExitCode> {
    Target::new(
        &args.api,
        args.api_token_file.as_ref(),
        args.api_token.clone(),
    )
    .map_err(|e| {
        eprintln!("ecsdns: {e}");
        ExitCode::from(client::Exit::Usage as u8)
    })
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let (args, client) = match command {
        Command::Services(a) => (a.client, Client::Services(a.cluster, a.json)),
        Command::Endpoints(a) => {
            let filter = EndpointFilter {
                passing: a.passing,
                az: a.az,
                port: a.port,
            };
            (
                a.client,
                Client::Endpoints(a.cluster, a.service, filter, a.json),
            )
        }
        Command::Watch(a) => (a.client, Client::Watch(a.cluster, a.service, a.json)),
        Command::Reconcile(a) => (a, Client::Reconcile),
        Command::Health(a) => (a, Client::Health),
        server => {
            serve_or_demo(server).await?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let target = match target(&args) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    Ok(match client {
        Client::Services(cluster, json) => {
            client::services(&target, cluster.as_deref(), json).await
        }
        Client::Endpoints(cluster, service, filter, json) => {
            client::endpoints(&target, &cluster, &service, &filter, json).await
        }
        Client::Watch(cluster, service, json) => {
            client::watch(&target, cluster.as_deref(), service.as_deref(), json).await
        }
        Client::Reconcile => client::reconcile(&target).await,
        Client::Health => client::health(&target).await,
    })
}

/// A client subcommand, its arguments resolved.
enum Client {
    Services(Option<String>, bool),
    Endpoints(String, String, EndpointFilter, bool),
    Watch(Option<String>, Option<String>, bool),
    Reconcile,
    Health,
}

async fn serve_or_demo(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let mut settings = Settings::default().with_env_secrets(|n| std::env::var(n).ok())?;
            if let Some(path) = &args.config {
                settings = settings.with_file(FileConfig::read(path)?)?;
            }
            settings = args.dns.apply(settings);
            settings = args.http.apply(settings);
            if args.endpoints.is_some() {
                settings.endpoints = args.endpoints.clone();
            }
            settings.endpoints_poll = args.endpoints_poll;
            if args.state_file.is_some() {
                settings.state_file = args.state_file.clone();
            }
            if let Some(v) = args.state_interval {
                settings.state_interval = v;
            }
            for spec in &args.clusters {
                settings
                    .ecs
                    .clusters
                    .push(crate::config::parse_cluster(spec)?);
            }
            if args.sqs_queue_url.is_some() {
                settings.ecs.sqs_queue_url = args.sqs_queue_url.clone();
            }
            if let Some(v) = args.reconcile_interval {
                settings.ecs.reconcile_interval = v;
            }
            if args.aws_region.is_some() {
                settings.ecs.region = args.aws_region.clone();
            }
            let app = App::start(&settings).await?;
            announce(&format!(
                "ecsdns serving DNS on {} (UDP and TCP), zone {}{}",
                app.dns_addr(),
                app.table.zone().origin,
                api_note(&app)
            ));
            wait_for_signal().await?;
            app.shutdown().await;
        }
        Command::Demo(args) => {
            let settings = args.http.apply(args.dns.apply(Settings::default()));
            let mut app = App::start(&settings).await?;
            let churn = (!args.no_churn).then_some(args.churn_interval);
            app.start_demo(args.seed, churn, args.rolling_deploy)
                .await?;
            let addr = app.dns_addr();
            let zone = app.table.zone().origin.to_string();
            let zone = zone.trim_end_matches('.');
            let dig = format!("dig @{} -p {}", addr.ip(), addr.port());
            let curl = match app.http_addr() {
                Some(http) => {
                    format!("\n  curl {http}/v1/services\n  open http://{http}/ for the dashboard")
                }
                None => String::new(),
            };
            let deploy = crate::drain::demo_note(args.rolling_deploy, app.http_addr());
            announce(&format!(
                "ecsdns demo serving DNS on {addr} (UDP and TCP), zone {zone}{}\n\
                 Simulated cluster \"demo\": web (3 tasks), api (2, bridge, dynamic ports), \
                 fleet (60), etl (4, standalone){}.\n\
                 Try:\n  \
                 {dig} web.demo.{zone} SRV\n  \
                 {dig} _grpc._tcp.api.demo.{zone} SRV\n  \
                 {dig} +noedns +ignore fleet.demo.{zone} A    (TC=1 with the records that fit in 512 bytes; \
                 without +ignore dig retries over TCP){curl}{deploy}\n\
                 Ctrl-C stops.",
                api_note(&app),
                if churn.is_some() {
                    "; tasks churn every few seconds"
                } else {
                    ""
                }
            ));
            wait_for_signal().await?;
            app.shutdown().await;
        }
        Command::Services(_)
        | Command::Endpoints(_)
        | Command::Watch(_)
        | Command::Reconcile(_)
        | Command::Health(_)
        | Command::DrainWait(_) => {
            anyhow::bail!("not a server command")
        }
    }
    Ok(())
}

/// The announcement's HTTP part: `; HTTP API on http://ADDR`.
fn api_note(app: &App) -> String {
    app.http_addr()
        .map(|a| format!("; HTTP API on http://{a}"))
        .unwrap_or_default()
}

/// Prints to stdout (the banner is for people; the first line names the address for scripts).
fn announce(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    // A second signal exits at once.
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(130);
    });
    Ok(())
}
