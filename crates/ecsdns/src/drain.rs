//! `ecsdns drain-wait` (the wrapper in `crates/drain-wait`, run before any runtime or logger
//! exists, so it owns the process's signals) and the demo banner's note on rolling deploys.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

/// `ecsdns drain-wait`: its options are the wrapper's own (the same as `ecsdns-drain-wait`).
#[derive(Debug, Args)]
pub struct DrainWaitArgs {
    /// `[--api URL] [--task ID|ARN] [--max-wait D] [--fallback-wait D] [--token-file F]
    /// [--sidecar] -- COMMAND ARGS...`
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<std::ffi::OsString>,
}

/// Runs the wrapper; its exit code (the child's status).
pub(crate) fn run(a: DrainWaitArgs) -> ExitCode {
    let code = match drain_wait::Options::parse(a.args) {
        Ok(options) => drain_wait::run(options),
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// The demo banner's lines on rolling deploys: how to watch one, or how to ask for them.
pub(crate) fn demo_note(every: Option<Duration>, http: Option<SocketAddr>) -> String {
    match (every, http) {
        (Some(every), Some(http)) => format!(
            "\nRolling deploy of web every {}s (the first in 10s). Watch it:\n  \
             ecsdns watch --api http://{http} --service web\n  \
             curl '{http}/v1/tasks/TASK_ID/drain?wait=30s'   (returns when the \
             stopping task is safe to stop: last served + TTL + 1 s + margin)",
            every.as_secs()
        ),
        (Some(every), None) => {
            format!("\nRolling deploy of web every {}s.", every.as_secs())
        }
        (None, _) => "\nRolling deploys of web: ecsdns demo --rolling-deploy 60s".to_string(),
    }
}
