//! Prometheus text exposition (format 0.0.4) and a lock-free histogram.
//!
//! The API crate does not know the DNS server or the ECS watcher: the binary hands it an
//! [`crate::Operator`] that writes their counters through [`Exposition`]. This module only knows
//! the format, so every family is written the same way (HELP and TYPE once, escaped labels).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Metric kinds of the text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets on restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Bucketed observations.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// A histogram as numbers: bucket upper bounds (seconds), per-bucket counts (not cumulative, one
/// more than the bounds: the last is +Inf), and the sum of observations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramValues {
    /// Upper bounds, ascending.
    pub bounds: Vec<f64>,
    /// Observations per bucket; `bounds.len() + 1` entries.
    pub counts: Vec<u64>,
    /// Sum of observations.
    pub sum: f64,
}

/// Builds one exposition document, and keeps its samples as numbers too (for other formats of
/// the same figures, such as CloudWatch EMF).
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    families: Vec<String>,
    samples: Vec<Sample>,
    histograms: Vec<HistogramSample>,
}

/// One histogram series as written: name, labels, values.
type HistogramSample = (String, Vec<(String, String)>, HistogramValues);

/// One sample as written: family name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name.
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

impl Exposition {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family (HELP and TYPE lines). A family started twice is written once.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Self {
        if !self.families.iter().any(|f| f == name) {
            self.families.push(name.to_string());
            let help = help.replace('\\', "\\\\").replace('\n', "\\n");
            let _ = writeln!(self.out, "# HELP {name} {help}");
            let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        }
        self
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.samples.push(Sample {
            name: name.to_string(),
            labels: owned(labels),
            value,
        });
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", format_value(value));
        self
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, help: &str, kind: Kind, value: f64) -> &mut Self {
        self.family(name, help, kind).sample(name, &[], value)
    }

    /// The samples of one histogram series (`_bucket`, `_sum`, `_count`).
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        values: &HistogramValues,
    ) -> &mut Self {
        self.histograms
            .push((name.to_string(), owned(labels), values.clone()));
        let mut cumulative = 0u64;
        for (i, count) in values.counts.iter().enumerate() {
            cumulative += count;
            let le = values
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| format_value(*b));
            let _ = write!(self.out, "{name}_bucket");
            write_labels(&mut self.out, labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        let _ = write!(self.out, "{name}_sum");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", format_value(values.sum));
        let _ = write!(self.out, "{name}_count");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {cumulative}");
        self
    }

    /// The finished document.
    pub fn finish(self) -> String {
        self.out
    }

    /// Every sample written so far, in order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The sum of every sample of `name` whose labels include all of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for s in self.samples.iter().filter(|s| s.name == name) {
            let matches = labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v));
            if matches {
                *found.get_or_insert(0.0) += s.value;
            }
        }
        found
    }

    /// The histogram series `name` with no labels, if written.
    pub fn histogram_values(&self, name: &str) -> Option<&HistogramValues> {
        self.histograms
            .iter()
            .find(|(n, labels, _)| n == name && labels.is_empty())
            .map(|(_, _, v)| v)
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let all = labels.iter().copied().chain(le.map(|v| ("le", v)));
    for (key, value) in all {
        if !first {
            out.push(',');
        }
        first = false;
        let value = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(out, "{key}=\"{value}\"");
    }
    out.push('}');
}

fn format_value(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// A histogram of durations with fixed bounds, updated with relaxed atomics (statistics, not
/// synchronisation), so any thread can observe without a lock.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
}

impl Histogram {
    /// A histogram with these upper bounds (seconds, ascending) plus +Inf.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(bucket) = self.counts.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The current values.
    pub fn values(&self) -> HistogramValues {
        HistogramValues {
            bounds: self.bounds.to_vec(),
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        let mut e = Exposition::new();
        e.family("x_total", "Things.\nCounted", Kind::Counter)
            .sample("x_total", &[("a", "q\"uo\\te")], 3.0)
            .sample("x_total", &[], 0.5);
        e.family("x_total", "again", Kind::Counter);
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1));
        e.family("lat_seconds", "Latency.", Kind::Histogram)
            .histogram("lat_seconds", &[("t", "udp")], &h.values());
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_total Things.\\nCounted\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"uo\\\\te\"} 3\nx_total 0.5\n\
             # HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n\
             lat_seconds_bucket{t=\"udp\",le=\"0.001\"} 1\n\
             lat_seconds_bucket{t=\"udp\",le=\"0.01\"} 2\n\
             lat_seconds_bucket{t=\"udp\",le=\"+Inf\"} 3\n\
             lat_seconds_sum{t=\"udp\"} 1.0055\n\
             lat_seconds_count{t=\"udp\"} 3\n"
        );
    }
}
