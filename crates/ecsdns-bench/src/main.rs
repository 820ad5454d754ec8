//! `ecsdns-bench`: ecsdns side by side with Knot and NSD on this machine, plus registry and scale
//! figures. Method (shared/guide/benchmarks.md): each server pinned to CPU 0, load from CPU 1,
//! servers interleaved round by round, answers checked equal before any speed is compared.

mod check;
mod data;
mod deploy;
mod load;
mod memory;
mod registry_bench;
mod report;
mod servers;
mod stream;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::data::DataSet;
use crate::report::{Row, Table};
use crate::servers::{Kind, Server};

/// Benchmarks ecsdns against Knot and NSD.
#[derive(Parser)]
#[command(name = "ecsdns-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// DNS queries per second, CPU, memory and latency: ecsdns, Knot, NSD, interleaved.
    Dns(DnsArgs),
    /// Registry updates per second with readers running, and update -> DNS visibility.
    Registry(RegistryArgs),
    /// ecsdns qps and memory at 1k, 10k, 100k endpoints (Knot alongside).
    Scale(ScaleArgs),
    /// TCP and DNS over TLS queries per second (ecsdns), next to Knot over TCP.
    Stream(StreamArgs),
    /// Memory by stage (parse, static source, registry, DNS table) on one thread.
    Memory(MemoryArgs),
    /// Rolling deploys through unbound with and without drain-wait: failed client requests
    /// and the time the deploy took (static file and ECS events).
    Deploy(DeployArgs),
    /// Runs the ecsdns server itself (the harness starts it this way; not for people).
    #[command(name = "__ecsdns", hide = true)]
    Ecsdns {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Args)]
struct DnsArgs {
    /// Endpoints in the data set (10 per service).
    #[arg(long, default_value_t = 10_000)]
    endpoints: usize,
    /// Interleaved rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Seconds per server per round.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Queries kept in flight by the load generator.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Where the SVG chart and server files go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Seconds, not minutes: for CI (no figures worth quoting).
    #[arg(long)]
    smoke: bool,
    /// Queries without EDNS (512-byte answers), as many stub resolvers send them.
    #[arg(long)]
    no_edns: bool,
}

#[derive(Args)]
struct RegistryArgs {
    /// Updates to apply.
    #[arg(long, default_value_t = 1_000_000)]
    updates: usize,
    /// For CI.
    #[arg(long)]
    smoke: bool,
}

#[derive(Args)]
struct DeployArgs {
    /// Tasks of the service.
    #[arg(long, default_value_t = 3)]
    tasks: usize,
    /// Deploys in a row, each replacing every task.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// DNS TTL, seconds.
    #[arg(long, default_value_t = 5)]
    ttl: u32,
    /// Drain margin, milliseconds.
    #[arg(long, default_value_t = 1000)]
    margin_ms: u64,
    /// Client requests per second (each resolves through unbound).
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Seconds of traffic before and after the deploys.
    #[arg(long, default_value_t = 10.0)]
    settle: f64,
    /// `file`, `ecs`, or `both`.
    #[arg(long, default_value = "both")]
    source: String,
    /// Where the runs' files go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// For CI: one task, one round, TTL 1 s, the static file only.
    #[arg(long)]
    smoke: bool,
}

#[derive(Args)]
struct StreamArgs {
    /// Endpoints in the data set (10 per service).
    #[arg(long, default_value_t = 10_000)]
    endpoints: usize,
    /// Connections kept open.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Queries in flight per connection.
    #[arg(long, default_value_t = 16)]
    pipeline: usize,
    /// Interleaved rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per transport per round.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Where the servers' files go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// For CI: 1,000 endpoints, one short round.
    #[arg(long)]
    smoke: bool,
}

#[derive(Args)]
struct MemoryArgs {
    /// Endpoints in the data set (10 per service).
    #[arg(long, default_value_t = 100_000)]
    endpoints: usize,
}

#[derive(Args)]
struct ScaleArgs {
    /// Seconds per point.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Where the SVG chart goes.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// For CI: 1k and 10k endpoints, short runs.
    #[arg(long)]
    smoke: bool,
}

fn deploy_bench(a: DeployArgs) -> anyhow::Result<()> {
    use testkit::deploy::Source;
    let sources = match a.source.as_str() {
        _ if a.smoke => vec![Source::File],
        "file" => vec![Source::File],
        "ecs" => vec![Source::Ecs],
        "both" => vec![Source::File, Source::Ecs],
        other => anyhow::bail!("--source {other:?}: expected file, ecs or both"),
    };
    let o = deploy::DeployOptions {
        tasks: if a.smoke { 2 } else { a.tasks },
        rounds: if a.smoke { 1 } else { a.rounds },
        ttl: if a.smoke { 1 } else { a.ttl },
        margin: Duration::from_millis(if a.smoke { 300 } else { a.margin_ms }),
        rate: a.rate,
        settle: Duration::from_secs_f64(if a.smoke { 1.0 } else { a.settle }),
        sources,
        out: a.out,
    };
    deploy::bench(&o)
}

/// The allocator ecsdns itself runs with (see `crates/ecsdns/src/main.rs`): the registry bench
/// runs the registry in this process, and `__ecsdns` is this binary.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ecsdns { args } => {
            let argv = std::iter::once("ecsdns".into()).chain(args);
            return ecsdns::cli::main_from(argv);
        }
        Command::Dns(args) => dns(args),
        Command::Registry(args) => registry_bench::run(args.updates, args.smoke),
        Command::Scale(args) => scale(args),
        Command::Memory(args) => memory::run(args.endpoints),
        Command::Stream(a) => stream::run(&stream::StreamOptions {
            endpoints: if a.smoke { 1_000 } else { a.endpoints },
            connections: a.connections,
            pipeline: a.pipeline,
            rounds: if a.smoke { 1 } else { a.rounds },
            seconds: if a.smoke { 0.5 } else { a.seconds },
            out: a.out,
        }),
        Command::Deploy(args) => deploy_bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ecsdns-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dns(args: DnsArgs) -> anyhow::Result<()> {
    servers::ensure_packages()?;
    let (endpoints, rounds, seconds) = if args.smoke {
        (1_000, 1, 0.5)
    } else {
        (args.endpoints, args.rounds, args.seconds)
    };
    let data = DataSet::with_endpoints(endpoints);
    let dir = args.out.join("dns");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Knot and NSD resolve relative paths against their own directories.
    let dir = std::fs::canonicalize(&dir)?;
    println!(
        "data: {} services x {} tasks = {} endpoints; mix 60% A, 30% SRV, 10% NXDOMAIN (EDNS 1232)",
        data.services,
        data::TASKS,
        data.endpoints()
    );
    let kinds = [Kind::Ecsdns, Kind::Knot, Kind::Nsd];
    let running: Vec<Server> = kinds
        .iter()
        .map(|k| Server::start(*k, &data, &dir))
        .collect::<anyhow::Result<_>>()?;
    let refs: Vec<&Server> = running.iter().collect();
    let checked = check::answers_match(&refs, &data.sample())?;
    println!("answers: {checked} names x types identical across ecsdns, knot and nsd");
    load::pin_to(1);
    let queries = data.queries(65_536, !args.no_edns);
    println!(
        "query mix: 60% A, 30% SRV, 10% NXDOMAIN, {}",
        if args.no_edns {
            "no EDNS (512-byte answers)"
        } else {
            "EDNS 1232"
        }
    );
    let duration = Duration::from_secs_f64(seconds);
    let mut rows: Vec<Row> = running.iter().map(|s| Row::new(s.kind.name())).collect();
    for server in &running {
        load::saturate(
            server.addr,
            &queries,
            args.window,
            duration.min(Duration::from_millis(500)),
        )?;
    }
    for round in 0..rounds {
        // Interleave, starting with a different server each round.
        for k in 0..running.len() {
            let i = (k + round) % running.len();
            let server = &running[i];
            let cpu_before = server.cpu_seconds();
            let t = load::saturate(server.addr, &queries, args.window, duration)?;
            let cpu = server.cpu_seconds() - cpu_before;
            rows[i]
                .rounds
                .push((t.qps(), cpu / t.elapsed.as_secs_f64(), t.stalls));
        }
    }
    let light = if args.smoke { 2_000 } else { 20_000 };
    for (i, server) in running.iter().enumerate() {
        let (rtts, lost) = load::latency(server.addr, &queries, 10_000.0, light)?;
        rows[i].p50 = load::quantile(&rtts, 0.5);
        rows[i].p99 = load::quantile(&rtts, 0.99);
        rows[i].lost = lost;
        rows[i].rss = server.peak_rss();
    }
    let table = Table {
        rows,
        endpoints: data.endpoints(),
    };
    table.print();
    let svg = args.out.join("dns.svg");
    report::dns_chart(&table, &svg)?;
    println!("chart: {}", svg.display());
    Ok(())
}

fn scale(args: ScaleArgs) -> anyhow::Result<()> {
    servers::ensure_packages()?;
    let sizes: &[usize] = if args.smoke {
        &[1_000, 10_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    let seconds = if args.smoke { 0.5 } else { args.seconds };
    let mut points = Vec::new();
    load::pin_to(1);
    for &n in sizes {
        let data = DataSet::with_endpoints(n);
        let dir = args.out.join(format!("scale-{n}"));
        std::fs::create_dir_all(&dir)?;
        let dir = std::fs::canonicalize(&dir)?;
        let mut row = Vec::new();
        for kind in [Kind::Ecsdns, Kind::Knot] {
            let server = Server::start(kind, &data, &dir)?;
            let queries = data.queries(65_536, true);
            load::saturate(server.addr, &queries, 256, Duration::from_millis(300))?;
            let t = load::saturate(server.addr, &queries, 256, Duration::from_secs_f64(seconds))?;
            let rss = server.peak_rss();
            row.push((kind.name(), t.qps(), rss));
        }
        points.push((n, row));
    }
    println!(
        "\n{:>10} {:>8} {:>12} {:>10} {:>14}",
        "endpoints", "server", "qps", "RSS MiB", "bytes/endpoint"
    );
    for (n, row) in &points {
        for (name, qps, rss) in row {
            println!(
                "{n:>10} {name:>8} {qps:>12.0} {:>10.1} {:>14.0}",
                *rss as f64 / 1048576.0,
                *rss as f64 / *n as f64
            );
        }
    }
    let svg = args.out.join("scale.svg");
    report::scale_chart(&points, &svg)?;
    println!("chart: {}", svg.display());
    Ok(())
}
