//! `ecsdns-bench deploy`: rolling deploys through unbound, with and without `drain-wait`, over
//! the static file and over the ECS path (SQS events through moto), side by side. The scenario
//! itself is `testkit::deploy`, which the end-to-end test runs too.

use std::time::Duration;

use testkit::deploy::{Report, Scenario, Source, run};

/// What to run.
pub(crate) struct DeployOptions {
    pub(crate) tasks: usize,
    pub(crate) rounds: usize,
    pub(crate) ttl: u32,
    pub(crate) margin: Duration,
    pub(crate) rate: u32,
    pub(crate) settle: Duration,
    pub(crate) sources: Vec<Source>,
    pub(crate) out: std::path::PathBuf,
}

fn mean(v: &[Duration]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64
}

/// Runs every source without and with the wrapper; prints the table. Fails when the wrapper
/// lost a request, or when the run without it lost none (then the benchmark measured nothing).
pub(crate) fn bench(o: &DeployOptions) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    println!(
        "rolling deploy: {} tasks x {} rounds, TTL {} s, margin {:.1} s, {} requests/s through {}",
        o.tasks,
        o.rounds,
        o.ttl,
        o.margin.as_secs_f64(),
        o.rate,
        testkit::unbound_version()
            .to_lowercase()
            .replace("version", "unbound")
    );
    let mut rows: Vec<(Source, bool, Report)> = Vec::new();
    for source in &o.sources {
        for drain_wait in [false, true] {
            let scenario = Scenario {
                source: *source,
                drain_wait,
                tasks: o.tasks,
                rounds: o.rounds,
                ttl: o.ttl,
                margin: o.margin,
                rate: o.rate,
                settle: o.settle,
                ecsdns: vec![exe.clone().into(), "__ecsdns".into()],
            };
            let dir = o
                .out
                .join(format!("deploy-{}-{}", source.name(), u8::from(drain_wait)));
            let report = run(&scenario, &dir);
            rows.push((*source, drain_wait, report));
        }
    }
    println!(
        "\n{:<6} {:<10} {:>9} {:>7} {:>7} {:>11} {:>13} {:>15}",
        "source",
        "drain-wait",
        "requests",
        "failed",
        "empty",
        "deploy (s)",
        "stop/task (s)",
        "extra/task (s)"
    );
    let mut problems = Vec::new();
    for (source, drain_wait, r) in &rows {
        let plain = rows
            .iter()
            .find(|(s, d, _)| s == source && !d)
            .map(|(_, _, r)| mean(&r.stops))
            .unwrap_or(0.0);
        let stop = mean(&r.stops);
        println!(
            "{:<6} {:<10} {:>9} {:>7} {:>7} {:>11.1} {:>13.2} {:>15}",
            source.name(),
            if *drain_wait { "yes" } else { "no" },
            r.requests,
            r.failed(),
            r.empty(),
            r.deploy.as_secs_f64(),
            stop,
            if *drain_wait {
                format!("{:.2}", stop - plain)
            } else {
                "-".to_string()
            }
        );
        if *drain_wait && r.failed() > 0 {
            problems.push(format!(
                "{}: {} failed with drain-wait: {:?}",
                source.name(),
                r.failed(),
                r.failures
            ));
        }
        if !*drain_wait && r.failed() == 0 {
            problems.push(format!(
                "{}: nothing failed without drain-wait",
                source.name()
            ));
        }
        if r.empty() > 0 {
            problems.push(format!(
                "{}: the service answered empty {} times",
                source.name(),
                r.empty()
            ));
        }
        let bound = f64::from(o.ttl) + 1.0 + o.margin.as_secs_f64() + 1.0;
        if *drain_wait && stop - plain > bound {
            problems.push(format!(
                "{}: {:.2} s extra per task, over TTL + 1 s + margin + 1 s = {bound:.1} s",
                source.name(),
                stop - plain
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", problems.join("; "))
    }
}
