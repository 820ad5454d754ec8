//! Command-line options, parsed by hand (no argument library in a binary copied into images).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What the wrapper was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL of the ecsdns HTTP API (`http://HOST:PORT`).
    pub api: String,
    /// The task id or ARN; `None`: read from the ECS task metadata endpoint.
    pub task: Option<String>,
    /// Longest time SIGTERM is held.
    pub max_wait: Duration,
    /// How long to hold SIGTERM when ecsdns cannot be asked (its TTL + 1 s + margin).
    pub fallback_wait: Duration,
    /// Bearer token for the API, if it needs one.
    pub token: Option<String>,
    /// The application and its arguments (empty for a sidecar).
    pub command: Vec<OsString>,
    /// Run no command: exit once safe after SIGTERM (a sidecar container).
    pub sidecar: bool,
}

/// A command line the wrapper cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(USAGE);
        }
        write!(f, "ecsdns drain-wait: {}\n\n{USAGE}", self.0)
    }
}

impl std::error::Error for UsageError {}

impl UsageError {
    /// 0 for `--help`, 2 for a bad command line.
    pub fn exit_code(&self) -> i32 {
        if self.0.is_empty() { 0 } else { 2 }
    }
}

/// The help text.
pub(crate) const USAGE: &str = "\
Usage: ecsdns drain-wait [OPTIONS] -- COMMAND [ARGS...]
       ecsdns drain-wait [OPTIONS] --sidecar

Runs COMMAND as a child (as PID 1 if need be: signals forwarded, zombies reaped, the child's
exit status returned). On the first SIGTERM it asks ecsdns when no DNS answer or cache can still
hand this task's address out, waits until then, and only then forwards SIGTERM.

Options:
  --api URL             ecsdns HTTP API [env ECSDNS_API; default http://127.0.0.1:8053]
  --task ID|ARN         this task [default: TaskARN from $ECS_CONTAINER_METADATA_URI_V4/task]
  --max-wait D          hold SIGTERM at most this long [default 25s, under ECS's 30s stopTimeout]
  --fallback-wait D     hold it this long when ecsdns cannot be asked [default 7s: TTL 5s + 1s + margin 1s]
  --token-file F        bearer token file [env ECSDNS_API_TOKEN_FILE; or ECSDNS_API_TOKEN]
  --sidecar             run no command; exit once safe after SIGTERM (a sidecar container that
                        the application's container is stopped after, via dependsOn)
  -h, --help            this text

Durations: 250ms, 6s, 2m.";

/// Parses `30s`, `250ms`, `2m` or bare seconds.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => s.split_at(at),
        None => (s, "s"),
    };
    let n: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    (seconds.is_finite() && (0.0..=86_400.0).contains(&seconds))
        .then(|| Duration::from_secs_f64(seconds))
}

impl Options {
    /// Parses the arguments after the program name (or after `ecsdns drain-wait`).
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, UsageError> {
        Self::parse_with_env(args, |k| std::env::var(k).ok())
    }

    /// [`Options::parse`] with the environment given (for tests).
    pub fn parse_with_env(
        args: impl IntoIterator<Item = OsString>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, UsageError> {
        let mut o = Self {
            api: env("ECSDNS_API").unwrap_or_else(|| "http://127.0.0.1:8053".into()),
            task: None,
            max_wait: Duration::from_secs(25),
            fallback_wait: Duration::from_secs(7),
            token: None,
            command: Vec::new(),
            sidecar: false,
        };
        let mut token_file = env("ECSDNS_API_TOKEN_FILE").map(PathBuf::from);
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.to_str().map(str::to_string) else {
                return Err(UsageError(format!("unexpected argument {arg:?}")));
            };
            if flag == "--" {
                o.command = args.collect();
                break;
            }
            if flag == "-h" || flag == "--help" {
                return Err(UsageError(String::new()));
            }
            if flag == "--sidecar" {
                o.sidecar = true;
                continue;
            }
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (flag.clone(), None),
            };
            let mut value = || -> Result<String, UsageError> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => args
                        .next()
                        .and_then(|v| v.into_string().ok())
                        .ok_or_else(|| UsageError(format!("{name} needs a value"))),
                }
            };
            let duration = |v: String| {
                parse_duration(&v).ok_or_else(|| {
                    UsageError(format!(
                        "{name}={v:?}: expected a duration like 25s or 500ms"
                    ))
                })
            };
            match name.as_str() {
                "--api" => o.api = value()?,
                "--task" => o.task = Some(value()?),
                "--max-wait" => o.max_wait = duration(value()?)?,
                "--fallback-wait" => o.fallback_wait = duration(value()?)?,
                "--token-file" => token_file = Some(PathBuf::from(value()?)),
                _ if flag.starts_with('-') => {
                    return Err(UsageError(format!("unknown option {flag}")));
                }
                _ => {
                    return Err(UsageError(format!(
                        "{flag:?}: put the command after --, e.g. -- {flag} ..."
                    )));
                }
            }
        }
        match (o.command.is_empty(), o.sidecar) {
            (true, false) => return Err(UsageError("no command given after --".into())),
            (false, true) => {
                return Err(UsageError(
                    "--sidecar runs no command: drop the -- part".into(),
                ));
            }
            _ => {}
        }
        if !o.api.starts_with("http://") {
            return Err(UsageError(format!(
                "--api {}: expected http://HOST:PORT",
                o.api
            )));
        }
        o.api = o.api.trim_end_matches('/').to_string();
        o.token = match token_file {
            Some(path) => Some(read_token(&path)?),
            None => env("ECSDNS_API_TOKEN").filter(|t| !t.trim().is_empty()),
        };
        Ok(o)
    }

    /// The task to ask about: `--task`, or the TaskARN the ECS agent's metadata endpoint gives.
    pub(crate) fn task(&self) -> Result<String, String> {
        if let Some(task) = &self.task {
            return Ok(task.clone());
        }
        let base = std::env::var("ECS_CONTAINER_METADATA_URI_V4")
            .map_err(|_| "no --task and no ECS_CONTAINER_METADATA_URI_V4".to_string())?;
        let body = crate::http::get_json(&format!("{base}/task"), None, Duration::from_secs(2))
            .map_err(|e| format!("task metadata: {e}"))?;
        body.get("TaskARN")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| "task metadata has no TaskARN".to_string())
    }
}

/// The first line of a token file that is neither blank nor a comment.
fn read_token(path: &std::path::Path) -> Result<String, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("--token-file {}: {e}", path.display())))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .ok_or_else(|| UsageError(format!("--token-file {}: no token in it", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Options, UsageError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Options::parse_with_env(args.iter().map(OsString::from), |k| {
            env.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn flags_defaults_and_errors() {
        let o = parse(&["--task", "t1", "--max-wait=10s", "--", "app", "-x"], &[]).unwrap();
        assert_eq!(o.task.as_deref(), Some("t1"));
        assert_eq!(o.max_wait, Duration::from_secs(10));
        assert_eq!(o.fallback_wait, Duration::from_secs(7));
        assert_eq!(o.api, "http://127.0.0.1:8053");
        assert_eq!(o.command, vec![OsString::from("app"), OsString::from("-x")]);
        let o = parse(
            &["--", "app"],
            &[
                ("ECSDNS_API", "http://10.0.0.5:8053/"),
                ("ECSDNS_API_TOKEN", "s3cret"),
            ],
        )
        .unwrap();
        assert_eq!(o.api, "http://10.0.0.5:8053");
        assert_eq!(o.token.as_deref(), Some("s3cret"));
        for (args, expected) in [
            (
                &["--max-wait", "soon", "--", "app"][..],
                "--max-wait=\"soon\"",
            ),
            (&["app"][..], "put the command after --"),
            (&["--what", "--", "app"][..], "unknown option --what"),
            (&["--task"][..], "--task needs a value"),
            (&["--task", "x"][..], "no command given"),
            (
                &["--api", "https://x", "--", "a"][..],
                "expected http://HOST:PORT",
            ),
            (
                &["--token-file", "/nonexistent/t", "--", "a"][..],
                "/nonexistent/t",
            ),
        ] {
            let e = parse(args, &[]).unwrap_err();
            assert!(e.to_string().contains(expected), "{args:?}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
        assert_eq!(parse(&["--help"], &[]).unwrap_err().exit_code(), 0);
        let o = parse(&["--sidecar", "--task", "t"], &[]).unwrap();
        assert!(o.sidecar && o.command.is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5h"), None);
        assert_eq!(parse_duration(""), None);
    }
}
