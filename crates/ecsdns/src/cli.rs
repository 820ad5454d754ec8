//! Command line: `ecsdns serve` and `ecsdns demo`, the operator subcommands (`services`,
//! `endpoints`, `watch`, `reconcile`), logging, signals. The flags themselves are in
//! [`crate::args`].

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::app::App;
pub use crate::args::*;
use crate::client::{self, EndpointFilter, Target};
use crate::config::{FileConfig, Settings};

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
    let log_format = match &cli.command {
        Command::Serve(a) => a.log.log_format,
        Command::Demo(a) => a.log.log_format,
        _ => LogFormat::Text,
    };
    let json_logs = matches!(log_format, LogFormat::Json);
    init_logging(log_format);
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
            // Text logs and the message share stderr: say it once there. JSON logs (shipped to
            // CloudWatch) get it as a record too.
            if json_logs {
                tracing::error!(error = format!("{e:#}"), "ecsdns stopped");
            }
            eprintln!("ecsdns: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // hickory-server (DNS over TLS) logs every request at INFO: two lines a query.
    if !std::env::var("RUST_LOG").is_ok_and(|v| v.contains("hickory"))
        && let Ok(quiet) = "hickory_server=warn".parse()
    {
        filter = filter.add_directive(quiet);
    }
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
        Command::Validate(a) => {
            return Ok(crate::validate::run(
                a.config.as_deref(),
                a.endpoints.as_deref(),
            ));
        }
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
        Command::Problems(a) => (a.client, Client::Problems(a.json)),
        Command::Task(a) => (a.out.client, Client::Task(a.task, a.out.json)),
        Command::Explain(a) => (
            a.out.client,
            Client::Explain(a.name, a.qtype, a.from, a.out.json),
        ),
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
        Client::Problems(json) => client::show::problems(&target, json).await,
        Client::Task(task, json) => client::show::task(&target, &task, json).await,
        Client::Explain(name, qtype, from, json) => {
            client::show::explain(&target, &name, &qtype, from, json).await
        }
        Client::Reconcile => client::reconcile(&target).await,
        Client::Health => client::health(&target).await,
    })
}

/// A client subcommand, its arguments resolved.
enum Client {
    Problems(bool),
    Task(String, bool),
    Explain(String, String, Option<std::net::IpAddr>, bool),
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
            if settings.endpoints.is_none() && settings.ecs.clusters.is_empty() {
                anyhow::bail!(
                    "nothing to serve: give an endpoints file (--endpoints FILE) or ECS \
                     clusters to watch (--cluster NAME), on the command line or in --config; \
                     `ecsdns demo` serves a simulated cluster"
                );
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
        | Command::Problems(_)
        | Command::Task(_)
        | Command::Explain(_)
        | Command::Validate(_)
        | Command::Health(_)
        | Command::DrainWait(_) => {
            anyhow::bail!("not a server command")
        }
    }
    Ok(())
}

/// The announcement's optional parts: `; DNS over TLS on ADDR`, `; DNS over HTTPS on URL`,
/// `; HTTP API on http://ADDR`.
fn api_note(app: &App) -> String {
    let mut note = String::new();
    if let Some(tls) = app.encrypted() {
        if let Some(addr) = tls.dot_addr() {
            note.push_str(&format!("; DNS over TLS on {addr}"));
        }
        if let Some(url) = tls
            .doh_addr()
            .and_then(|a| tls.doh_url(&a.ip().to_string()))
        {
            note.push_str(&format!("; DNS over HTTPS on {url}"));
        }
    }
    if let Some(a) = app.http_addr() {
        note.push_str(&format!("; HTTP API on http://{a}"));
    }
    note
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
