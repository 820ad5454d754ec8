//! `ecsdns validate [--config F] [--endpoints F]`: checks files before they are deployed or
//! reloaded, by the same rules `serve` applies. Prints `FILE:LINE:COL: message` per problem
//! (as compilers do, so editors jump to it) and exits 1; exits 0 with a summary line when
//! every file is good.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{FileConfig, Settings};

/// A problem at a place in a file (line and column 0: the file as a whole).
fn report(path: &Path, line: usize, column: usize, message: &str) -> String {
    match (line, column) {
        (0, _) => format!("{}: {message}", path.display()),
        (l, 0) => format!("{}:{l}: {message}", path.display()),
        (l, c) => format!("{}:{l}:{c}: {message}", path.display()),
    }
}

/// Problems of a config file, and the endpoints file it names (if any).
fn config_problems(path: &Path) -> (Vec<String>, Option<PathBuf>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return (vec![report(path, 0, 0, &format!("cannot read: {e}"))], None),
    };
    let file: FileConfig = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            let (line, column) = e
                .span()
                .map_or((0, 0), |s| endpoints_file::position(&text, s.start));
            let message = e.message().trim().replace('\n', "; ");
            return (vec![report(path, line, column, &message)], None);
        }
    };
    let endpoints = file.endpoints.clone();
    // The settings, then the zone built from them: the checks `serve` makes at start.
    let checked = Settings::default().with_file(file).and_then(|s| {
        s.tls.encrypted(s.tcp_idle_timeout, s.tcp_max_connections)?;
        crate::zone::zone_config(&s).map(|_| ())
    });
    match checked {
        Ok(()) => (Vec::new(), endpoints),
        Err(e) => (vec![report(path, 0, 0, &format!("{e:#}"))], endpoints),
    }
}

/// Problems of an endpoints file, and a summary when there are none.
fn endpoints_problems(path: &Path) -> Result<String, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![report(path, 0, 0, &format!("cannot read: {e}"))])?;
    let found = endpoints_file::validate(path, &text);
    if !found.is_empty() {
        return Err(found
            .iter()
            .map(|d| report(path, d.line, d.column, &d.message))
            .collect());
    }
    let file = endpoints_file::parse_file(path, &text)
        .map_err(|e| vec![report(path, 0, 0, &e.to_string())])?;
    let mut services: Vec<String> = file
        .tasks
        .iter()
        .map(|t| format!("{}/{}", t.cluster, t.group.name()))
        .collect();
    services.dedup();
    let empty = if file.tasks.is_empty() && !file.allow_empty {
        " (no endpoint: a running ecsdns refuses to reload it unless it says allow_empty = true)"
    } else {
        ""
    };
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    Ok(format!(
        "{}: ok, {}, {}{empty}",
        path.display(),
        plural(services.len(), "service"),
        plural(file.tasks.len(), "endpoint")
    ))
}

/// Runs the checks; prints problems on stderr, summaries on stdout.
pub(crate) fn run(config: Option<&Path>, endpoints: Option<&Path>) -> ExitCode {
    if config.is_none() && endpoints.is_none() {
        eprintln!("ecsdns validate: name a file: --config FILE and/or --endpoints FILE");
        return ExitCode::from(2);
    }
    let mut problems = Vec::new();
    let mut endpoints = endpoints.map(Path::to_path_buf);
    if let Some(path) = config {
        let (found, named) = config_problems(path);
        if found.is_empty() {
            println!("{}: ok", path.display());
        }
        problems.extend(found);
        if endpoints.is_none() {
            endpoints = named;
        }
    }
    if let Some(path) = &endpoints {
        match endpoints_problems(path) {
            Ok(summary) => println!("{summary}"),
            Err(found) => problems.extend(found),
        }
    }
    for p in &problems {
        eprintln!("{p}");
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
