//! Command line: `ecsdns serve` and `ecsdns demo`, logging, signals.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app::App;
use crate::config::{FileConfig, Settings, parse_duration};

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

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS for the configured sources.
    Serve(ServeArgs),
    /// Serve a simulated ECS cluster named `demo` (no AWS account needed).
    Demo(DemoArgs),
}

/// Options shared by `serve` and `demo`.
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// Address to serve DNS on, UDP and TCP [default: 127.0.0.1:5353].
    #[arg(long, env = "ECSDNS_DNS_ADDR")]
    pub dns_addr: Option<SocketAddr>,
    /// Zone to be authoritative for [default: ecs.internal.].
    #[arg(long, env = "ECSDNS_ZONE")]
    pub zone: Option<String>,
    /// TTL of positive answers, seconds [default: 5].
    #[arg(long, env = "ECSDNS_TTL")]
    pub ttl: Option<u32>,
    /// TTL of negative answers (SOA MINIMUM), seconds [default: 5].
    #[arg(long, env = "ECSDNS_NEGATIVE_TTL")]
    pub negative_ttl: Option<u32>,
    /// Do not serve unhealthy tasks when a service has no healthy one (default: serve them).
    #[arg(long)]
    pub no_fail_open: bool,
    /// Name server name for NS and SOA [default: ns1.<zone>].
    #[arg(long, env = "ECSDNS_NS_NAME")]
    pub ns_name: Option<String>,
    /// Address of the name server name (repeatable) [default: the DNS address, if specific].
    #[arg(long = "ns-address")]
    pub ns_addresses: Vec<IpAddr>,
    /// Threads answering UDP [default: one per core].
    #[arg(long, env = "ECSDNS_UDP_WORKERS")]
    pub udp_workers: Option<usize>,
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
    /// DNS options.
    #[command(flatten)]
    pub dns: DnsArgs,
}

impl DnsArgs {
    fn apply(&self, mut s: Settings) -> Settings {
        if let Some(v) = self.dns_addr {
            s.dns_addr = v;
        }
        if let Some(v) = &self.zone {
            s.zone = v.clone();
        }
        if let Some(v) = self.ttl {
            s.ttl = v;
        }
        if let Some(v) = self.negative_ttl {
            s.negative_ttl = v;
        }
        if self.no_fail_open {
            s.fail_open = false;
        }
        if self.ns_name.is_some() {
            s.ns_name = self.ns_name.clone();
        }
        if !self.ns_addresses.is_empty() {
            s.ns_addresses = self.ns_addresses.clone();
        }
        if let Some(v) = self.udp_workers {
            s.udp_workers = v;
        }
        s
    }
}

/// Entry point: parse, set up logging, run, map errors to an exit code.
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// [`main`] with explicit arguments (the first is the program name), so other binaries (the
/// benchmark harness) can run exactly this server.
pub fn main_from(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
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
        Ok(()) => ExitCode::SUCCESS,
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

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let mut settings = Settings::default();
            if let Some(path) = &args.config {
                settings = settings.with_file(FileConfig::read(path)?)?;
            }
            settings = args.dns.apply(settings);
            if args.endpoints.is_some() {
                settings.endpoints = args.endpoints.clone();
            }
            settings.endpoints_poll = args.endpoints_poll;
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
                "ecsdns serving DNS on {} (UDP and TCP), zone {}",
                app.dns_addr(),
                app.table.zone().origin
            ));
            wait_for_signal().await?;
            app.shutdown().await;
        }
        Command::Demo(args) => {
            let settings = args.dns.apply(Settings::default());
            let mut app = App::start(&settings).await?;
            let churn = (!args.no_churn).then_some(args.churn_interval);
            app.start_demo(args.seed, churn).await?;
            let addr = app.dns_addr();
            let zone = app.table.zone().origin.to_string();
            let zone = zone.trim_end_matches('.');
            let dig = format!("dig @{} -p {}", addr.ip(), addr.port());
            announce(&format!(
                "ecsdns demo serving DNS on {addr} (UDP and TCP), zone {zone}.\n\
                 Simulated cluster \"demo\": web (3 tasks), api (2, bridge, dynamic ports), \
                 fleet (60), etl (4, standalone){}.\n\
                 Try:\n  \
                 {dig} web.demo.{zone} SRV\n  \
                 {dig} _grpc._tcp.api.demo.{zone} SRV\n  \
                 {dig} +noedns +ignore fleet.demo.{zone} A    (TC=1: 60 records exceed 512 bytes; \
                 without +ignore dig retries over TCP)\n\
                 Ctrl-C stops.",
                if churn.is_some() {
                    "; tasks churn every few seconds"
                } else {
                    ""
                }
            ));
            wait_for_signal().await?;
            app.shutdown().await;
        }
    }
    Ok(())
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
