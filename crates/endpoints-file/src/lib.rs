//! The static endpoints file: non-ECS endpoints (and benchmark data) in TOML, or JSON of the
//! same shape. Reloaded when it changes; a bad file keeps the previous state.
//!
//! Its own crate, free of the binary's dependencies (and of the AWS SDK), so the fuzz targets
//! and the benchmarks parse files exactly as the server does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use model::{
    Check, Health, Port, Protocol, Task, TaskGroup, TaskStatus, Update, dns_label, port_label,
};
use serde::Deserialize;

mod ports;
mod validate;
use ports::{OrderedPorts, PortDef};
use validate::one_line;
pub use validate::{Diagnostic, position, validate};

/// Why a file was refused: the first problem found, with what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Not valid TOML or JSON, or a field of the wrong type or unknown.
    #[error("invalid {format}: {reason}")]
    Syntax {
        /// `TOML` or `JSON`.
        format: &'static str,
        /// The parser's message (with line and column).
        reason: String,
    },
    /// Well-formed, but a name, port, health, check or endpoint is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// `return Err(FileError::Invalid(format!(...)))`.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(FileError::Invalid(format!($($arg)*)))
    };
}

/// Adds what a lower-level error was about.
trait Context<T> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, FileError>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, FileError> {
        self.map_err(|e| FileError::Invalid(format!("{}: {e}", what())))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The file means to serve nothing: a reload that drops every endpoint is refused without
    /// it (a truncated or half-written file reads as empty).
    #[serde(default)]
    allow_empty: bool,
    #[serde(default, rename = "service")]
    services: Vec<ServiceDef>,
}

/// A whole parsed file.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointsFile {
    /// Every endpoint, as tasks (version 0; [`StaticSource`] assigns versions).
    pub tasks: Vec<Task>,
    /// `allow_empty = true`: an empty result is intended.
    pub allow_empty: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceDef {
    #[serde(default = "default_cluster")]
    cluster: String,
    name: String,
    /// Active check of every endpoint: `tcp:PORT` or `http:PORT/path` (PORT: name or number).
    #[serde(default)]
    check: Option<String>,
    /// Check timing, e.g. `500ms`, `2s`.
    #[serde(default)]
    check_interval: Option<String>,
    #[serde(default)]
    check_timeout: Option<String>,
    /// Consecutive results that flip a verdict.
    #[serde(default)]
    check_rise: Option<u8>,
    #[serde(default)]
    check_fall: Option<u8>,
    #[serde(default, rename = "endpoint")]
    endpoints: Vec<EndpointDef>,
}

impl ServiceDef {
    /// The service's check, validated; options without a `check` are an error, not ignored.
    fn check(&self) -> Result<Option<Arc<Check>>, FileError> {
        let Some(spec) = &self.check else {
            let orphan = self.check_interval.is_some()
                || self.check_timeout.is_some()
                || self.check_rise.is_some()
                || self.check_fall.is_some();
            if orphan {
                bail!("service {}: check_* options without a check", self.name);
            }
            return Ok(None);
        };
        let mut check =
            Check::parse(spec).with_context(|| format!("service {}: check", self.name))?;
        let rise = self.check_rise.map(|n| n.to_string());
        let fall = self.check_fall.map(|n| n.to_string());
        for (option, value) in [
            ("interval", self.check_interval.as_deref()),
            ("timeout", self.check_timeout.as_deref()),
            ("rise", rise.as_deref()),
            ("fall", fall.as_deref()),
        ] {
            if let Some(value) = value {
                check
                    .set_option(option, value)
                    .with_context(|| format!("service {}: check_{option}", self.name))?;
            }
        }
        Ok(Some(Arc::new(check)))
    }
}

fn default_cluster() -> String {
    "static".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointDef {
    id: String,
    addresses: Vec<IpAddr>,
    #[serde(default)]
    ports: OrderedPorts,
    #[serde(default)]
    az: Option<String>,
    /// HEALTHY or UNHEALTHY; absent means no health check.
    #[serde(default)]
    health: Option<String>,
    /// Metadata labels published with the endpoint.
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Every service of a whole parsed file, validated, as tasks.
fn whole_file(
    file: Result<File, FileError>,
    names: &mut Names,
) -> Result<EndpointsFile, FileError> {
    let file = file?;
    let mut tasks = Vec::new();
    let mut seen = Services::default();
    for svc in file.services {
        seen.add(&svc, None)?;
        add_service(svc, &mut tasks, names)?;
    }
    check_unique(&tasks)?;
    Ok(EndpointsFile {
        tasks,
        allow_empty: file.allow_empty,
    })
}

/// Services already defined, so a second `[[service]]` block of the same name is an error
/// instead of a silent merge (the second block's endpoints served under the first's name).
#[derive(Default)]
struct Services(HashMap<(String, String), Option<usize>>);

impl Services {
    fn add(&mut self, svc: &ServiceDef, line: Option<usize>) -> Result<(), FileError> {
        let key = (
            svc.cluster.to_ascii_lowercase(),
            svc.name.to_ascii_lowercase(),
        );
        if let Some(first) = self.0.get(&key) {
            let at = match (first, line) {
                (Some(a), Some(b)) => format!(" (lines {a} and {b})"),
                _ => String::new(),
            };
            bail!(
                "service {:?} of cluster {:?} is defined twice{at}: put all its endpoints in one [[service]] block",
                svc.name,
                svc.cluster
            );
        }
        self.0.insert(key, line);
        Ok(())
    }
}

/// A name of the file (cluster, service, endpoint id, port) as DNS serves it. The file is
/// written by people, so a name must already be its own label: lowercase letters, digits and
/// `-`, as host names are (RFC 1123). `Cache_1` is refused with the name to write instead, not
/// served as `cache_1` (a lowercased name the operator never wrote, with an underscore many
/// resolvers and HTTP clients reject in a host name). ECS names keep their documented mapping.
fn served_label(what: &str, name: &str) -> Result<String, FileError> {
    let label = dns_label(name).with_context(|| format!("{what} {name:?} is not a DNS label"))?;
    if label != name || name.contains('_') {
        let instead = label.replace('_', "-");
        bail!(
            "{what} {name:?} is not served as written: names here are lowercase letters, digits \
             and '-' (host name labels); write {instead:?}"
        );
    }
    Ok(label)
}

/// Reads and validates a file into tasks (version 0; [`StaticSource`] assigns versions).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Task>, FileError> {
    parse_file(path, text).map(|f| f.tasks)
}

/// Reads and validates a whole file: its tasks and whether it may be empty.
pub fn parse_file(path: &Path, text: &str) -> Result<EndpointsFile, FileError> {
    let mut names = Names::default();
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        let file = serde_json::from_str(text).map_err(|e| FileError::Syntax {
            format: "JSON",
            reason: e.to_string(),
        });
        return whole_file(file, &mut names);
    }
    // The toml crate builds a document tree several times the size of its text (a whole
    // 100,000-endpoint file peaked at 335 MB), so parse one `[[service]]` block at a time.
    let blocks = service_blocks(text);
    let endpoints = text
        .lines()
        .filter(|l| l.trim() == "[[service.endpoint]]")
        .count();
    let mut chunked = Vec::with_capacity(endpoints);
    let mut seen = Services::default();
    let mut allow_empty = false;
    for (line, block) in &blocks {
        match toml::from_str::<File>(block) {
            Ok(file) => {
                allow_empty |= file.allow_empty;
                for svc in file.services {
                    seen.add(&svc, Some(*line))?;
                    add_service(svc, &mut chunked, &mut names)?;
                }
            }
            Err(_) => {
                // A split the block finder got wrong (a header inside a multi-line string)
                // cannot change the verdict: parse the whole text for the real error or data.
                drop(chunked);
                let file = toml::from_str(text).map_err(|e| FileError::Syntax {
                    format: "TOML",
                    reason: one_line(&e, text),
                });
                return whole_file(file, &mut Names::default());
            }
        }
    }
    check_unique(&chunked)?;
    Ok(EndpointsFile {
        tasks: chunked,
        allow_empty,
    })
}

/// Fails on an endpoint listed twice. The ARN spells (cluster, service, id) and labels hold no
/// `/`, so equal ARNs mean the same endpoint; sorting positions costs 4 bytes per endpoint where
/// a set of the three names cost over a hundred.
fn check_unique(tasks: &[Task]) -> Result<(), FileError> {
    let mut order: Vec<u32> = (0..tasks.len() as u32).collect();
    order.sort_unstable_by(|a, b| tasks[*a as usize].arn.cmp(&tasks[*b as usize].arn));
    for pair in order.windows(2) {
        let (a, b) = (&tasks[pair[0] as usize], &tasks[pair[1] as usize]);
        if a.arn == b.arn {
            bail!(
                "endpoint {} appears twice in {}.{}",
                b.id(),
                b.group.name(),
                b.cluster
            );
        }
    }
    Ok(())
}

/// Splits a TOML endpoints file before each line that is exactly `[[service]]`, giving
/// independent documents, each with the line it starts on (1-based). The text before the first
/// header (top-level keys such as `allow_empty`, comments) is a document of its own.
fn service_blocks(text: &str) -> Vec<(usize, &str)> {
    let mut starts = Vec::new();
    let mut offset = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim() == "[[service]]" {
            starts.push((offset, n + 1));
        }
        offset += line.len();
    }
    let Some(&(first, _)) = starts.first() else {
        return vec![(1, text)];
    };
    let mut blocks = vec![(1, &text[..first])];
    let ends = starts.iter().skip(1).map(|(at, _)| *at).chain([text.len()]);
    blocks.extend(
        starts
            .iter()
            .zip(ends)
            .map(|((at, line), end)| (*line, &text[*at..end])),
    );
    blocks
}

/// One allocation per distinct cluster, service, port name and AZ in a file, shared by every
/// endpoint that uses it (at 100,000 endpoints these repeat tens of thousands of times).
#[derive(Default)]
struct Names(std::collections::HashSet<Arc<str>>);

impl Names {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(known) = self.0.get(s) {
            return Arc::clone(known);
        }
        let new: Arc<str> = s.into();
        self.0.insert(Arc::clone(&new));
        new
    }
}

/// Validates one service of the file and appends its endpoints as tasks.
fn add_service(svc: ServiceDef, tasks: &mut Vec<Task>, names: &mut Names) -> Result<(), FileError> {
    let cluster = served_label("cluster", &svc.cluster)?;
    let name_label = served_label("service", &svc.name)?;
    let check = svc.check()?;
    for ep in svc.endpoints {
        let id = served_label("endpoint id", &ep.id)?;
        if id.starts_with('_') {
            bail!("endpoint id {:?} may not start with '_'", ep.id);
        }
        if ep.addresses.is_empty() {
            bail!("endpoint {id} of {name_label}.{cluster} has no address");
        }
        let mut ports = Vec::new();
        for (name, def) in ep.ports.0 {
            served_label("port name", &name)?;
            port_label(&name).with_context(|| format!("port name {name:?} is not a label"))?;
            let (port, protocol) = match def {
                PortDef::Number(p) => (p, Protocol::Tcp),
                PortDef::Full { port, protocol } => match protocol.as_deref() {
                    None | Some("tcp") => (port, Protocol::Tcp),
                    Some("udp") => (port, Protocol::Udp),
                    Some(other) => bail!("port {name}: protocol {other:?} is not tcp or udp"),
                },
            };
            ports.push(Port {
                name: names.get(&name),
                port,
                protocol,
            });
        }
        let health = match ep.health.as_deref() {
            None => Health::Unknown,
            Some("HEALTHY" | "healthy") => Health::Healthy,
            Some("UNHEALTHY" | "unhealthy") => Health::Unhealthy,
            Some(other) => bail!("endpoint {id}: health {other:?} is not HEALTHY or UNHEALTHY"),
        };
        let labels = match ep.labels.is_empty() {
            true => None,
            false => Some(Arc::new(model::Labels::new(&ep.labels).map_err(|e| {
                FileError::Invalid(format!("endpoint {id} of {name_label}.{cluster}: {e}"))
            })?)),
        };
        tasks.push(Task {
            arn: format!("static:{cluster}/{name_label}/{id}").into(),
            cluster: names.get(&cluster),
            group: TaskGroup::Service(names.get(&svc.name)),
            version: 0,
            last_status: TaskStatus::Running,
            desired_status: TaskStatus::Running,
            health,
            health_checked: ep.health.is_some(),
            addresses: ep.addresses.into(),
            ports: ports.into(),
            az: ep.az.as_deref().map(|az| names.get(az)),
            task_definition: None,
            container_instance: None,
            started_at: None,
            check: check.clone(),
            labels,
            ordinal: None,
            service_connect: None,
        });
    }
    Ok(())
}

/// Turns successive loads of the file into registry updates. An endpoint keeps its version while
/// its content is unchanged, so an unchanged reload changes nothing downstream. A changed
/// endpoint's version is the load's wall-clock time in milliseconds (and always above the
/// previous load's), so versions keep growing across restarts: a warm restart restores the old
/// process's versions from its state file, and an edit made while ecsdns was down must win.
#[derive(Default)]
pub struct StaticSource {
    /// The version given by the latest load.
    version: u64,
    /// Hash of the ARN -> (hash of the endpoint's content, its version): hashes, not copies, so
    /// a large file is not held in memory twice. Two ARNs whose hashes collide only cost an
    /// extra version bump (their content hashes differ), never a stale endpoint.
    previous: HashMap<u64, (u64, u64)>,
    clusters: BTreeSet<String>,
}

fn hash_of(value: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

impl StaticSource {
    /// Updates that bring the registry from the previous load to `tasks`: per cluster (including
    /// clusters that disappeared from the file) a listing marker and a full Reset.
    pub fn load(&mut self, tasks: Vec<Task>) -> Vec<Update> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.load_at(tasks, now_ms)
    }

    /// [`StaticSource::load`] at a given wall-clock time (milliseconds since the epoch).
    pub fn load_at(&mut self, tasks: Vec<Task>, now_ms: u64) -> Vec<Update> {
        self.version = now_ms.max(self.version + 1);
        // Exact sizes up front: a 100,000-endpoint file must not leave doubling garbage behind.
        let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
        for task in &tasks {
            *sizes.entry(&task.cluster).or_default() += 1;
        }
        let mut by_cluster: BTreeMap<String, Vec<Task>> = sizes
            .into_iter()
            .map(|(cluster, n)| (cluster.to_string(), Vec::with_capacity(n)))
            .collect();
        let mut next = HashMap::with_capacity(tasks.len());
        for mut task in tasks {
            let hash = hash_of(&task);
            let arn = hash_of(&task.arn);
            task.version = match self.previous.get(&arn) {
                Some((old_hash, version)) if *old_hash == hash => *version,
                _ => self.version,
            };
            next.insert(arn, (hash, task.version));
            by_cluster
                .entry(task.cluster.to_string())
                .or_default()
                .push(task);
        }
        for gone in self.clusters.iter() {
            by_cluster.entry(gone.clone()).or_default();
        }
        self.clusters = by_cluster
            .iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(c, _)| c.clone())
            .collect();
        self.previous = next;
        by_cluster
            .into_iter()
            .flat_map(|(cluster, tasks)| {
                [
                    Update::BeginListing {
                        cluster: cluster.clone(),
                    },
                    Update::Reset { cluster, tasks },
                ]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
