//! The side-by-side table and the SVG charts.

use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;
use plotters::prelude::*;

/// One server's figures.
pub(crate) struct Row {
    /// Server name.
    pub(crate) name: &'static str,
    /// Per round: (qps, server CPU in cores, stalls).
    pub(crate) rounds: Vec<(f64, f64, u64)>,
    /// Light-load latency.
    pub(crate) p50: Duration,
    /// Light-load latency.
    pub(crate) p99: Duration,
    /// Queries lost at light load.
    pub(crate) lost: usize,
    /// Peak RSS, bytes.
    pub(crate) rss: u64,
}

impl Row {
    /// An empty row.
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            rounds: Vec::new(),
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            lost: 0,
            rss: 0,
        }
    }

    fn median(mut v: Vec<f64>) -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// Median qps over rounds.
    pub(crate) fn median_qps(&self) -> f64 {
        Self::median(self.rounds.iter().map(|r| r.0).collect())
    }

    fn median_cpu(&self) -> f64 {
        Self::median(self.rounds.iter().map(|r| r.1).collect())
    }
}

/// The comparison.
pub(crate) struct Table {
    /// One row per server.
    pub(crate) rows: Vec<Row>,
    /// Endpoints in the data set.
    pub(crate) endpoints: usize,
}

impl Table {
    fn knot(&self) -> f64 {
        self.rows
            .iter()
            .find(|r| r.name == "knot")
            .map_or(0.0, Row::median_qps)
    }

    /// Prints the table.
    pub(crate) fn print(&self) {
        println!(
            "\n{:<8} {:<44} {:>9} {:>8} {:>11} {:>8} {:>8} {:>8} {:>7}",
            "server",
            "qps per round",
            "median",
            "CPU",
            "qps/CPU-s",
            "RSS MiB",
            "p50 µs",
            "p99 µs",
            "vs knot"
        );
        let knot = self.knot();
        for r in &self.rows {
            let per_round: Vec<String> = r
                .rounds
                .iter()
                .map(|x| format!("{:.0}k", x.0 / 1000.0))
                .collect();
            let median = r.median_qps();
            let cpu = r.median_cpu();
            println!(
                "{:<8} {:<44} {:>9.0} {:>7.0}% {:>11.0} {:>8.1} {:>8.1} {:>8.1} {:>6.2}x",
                r.name,
                per_round.join(" "),
                median,
                cpu * 100.0,
                if cpu > 0.0 { median / cpu } else { 0.0 },
                r.rss as f64 / 1_048_576.0,
                r.p50.as_secs_f64() * 1e6,
                r.p99.as_secs_f64() * 1e6,
                if knot > 0.0 { median / knot } else { 0.0 },
            );
        }
        let stalls: u64 = self.rows.iter().flat_map(|r| &r.rounds).map(|x| x.2).sum();
        let lost: usize = self.rows.iter().map(|r| r.lost).sum();
        println!(
            "(light load: 10k qps, sequential; {lost} lost. Saturation stalls (window presumed lost): {stalls})"
        );
    }
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("chart: {e}")
}

/// Bar chart of median qps per server.
pub(crate) fn dns_chart(table: &Table, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let max = table.rows.iter().map(Row::median_qps).fold(1.0, f64::max) * 1.15;
    let names: Vec<&str> = table.rows.iter().map(|r| r.name).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "DNS qps on one pinned core, {} endpoints (median of rounds)",
                table.endpoints
            ),
            ("sans-serif", 18),
        )
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d((0..names.len()).into_segmented(), 0.0..max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => names.get(*i).copied().unwrap_or("").to_string(),
            _ => String::new(),
        })
        .y_desc("queries per second")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(table.rows.iter().enumerate().map(|(i, r)| {
            let color = if r.name == "ecsdns" {
                BLUE
            } else {
                full_palette::GREY
            };
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), r.median_qps()),
                ],
                color.filled(),
            );
            bar.set_margin(0, 0, 20, 20);
            bar
        }))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// One server at one size: (name, qps, peak RSS bytes).
pub(crate) type Point = (&'static str, f64, u64);

/// qps and RSS per endpoint count, one line per server.
pub(crate) fn scale_chart(points: &[(usize, Vec<Point>)], path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (left, right) = root.split_horizontally(450);
    let max_n = points.last().map_or(1, |p| p.0) as f64;
    let series = |f: &dyn Fn(&Point) -> f64, name: &str| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|(n, row)| {
                row.iter()
                    .find(|r| r.0 == name)
                    .map(|r| ((*n as f64).log10(), f(r)))
            })
            .collect()
    };
    for (area, title, f) in [
        (
            &left,
            "qps vs endpoints",
            &(|r: &Point| r.1) as &dyn Fn(&Point) -> f64,
        ),
        (&right, "RSS MiB vs endpoints", &|r: &Point| {
            r.2 as f64 / 1_048_576.0
        }),
    ] {
        let max_y = points
            .iter()
            .flat_map(|(_, row)| row.iter().map(f))
            .fold(1.0, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(2.9..max_n.log10() + 0.1, 0.0..max_y)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| format!("{:.0}", 10f64.powf(*x)))
            .draw()
            .map_err(err)?;
        for (name, color) in [("ecsdns", BLUE), ("knot", RED)] {
            chart
                .draw_series(LineSeries::new(series(f, name), color.stroke_width(2)))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
