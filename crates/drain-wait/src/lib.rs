//! `drain-wait`: a container entrypoint that runs the application as its child and holds the
//! first SIGTERM until ecsdns says no DNS answer, and no cache filled from one, can still hand
//! the task's address out (`GET /v1/tasks/{task}/drain?wait=…`).
//!
//! ECS sends SIGTERM the moment it stops a task, while resolvers still hold the address for up
//! to a TTL; an application that exits at once refuses the clients sent to it. Wrapped, it gets
//! SIGTERM when the last cached copy has expired (never later than `--max-wait`, which should
//! stay under the task's `stopTimeout`).
//!
//! Invariants:
//! - It never hangs: the wait has a hard deadline kept by its own timer, whatever the network
//!   does; when ecsdns cannot be asked it waits `--fallback-wait` (TTL + 1 s + margin) and says so.
//! - Every other signal goes to the child at once; a second SIGTERM too. It reaps every zombie
//!   (it is a child subreaper, and may be PID 1) and exits with the child's status (128 + N for
//!   a child killed by signal N).
//! - No async runtime and no HTTP library: std sockets and one JSON answer.
//! - As a sidecar (`--sidecar`, no command) it runs nothing and exits when the task is safe:
//!   an application container that the sidecar `dependsOn` is stopped by ECS only after it.

mod http;
mod options;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

pub use options::{Options, UsageError};

/// The signals taken and forwarded. Synchronous ones (SIGSEGV and the like) stay default: they
/// are the wrapper's own faults.
const FORWARDED: [Signal; 13] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGWINCH,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGCHLD,
];

fn log(message: &str) {
    eprintln!("ecsdns drain-wait: {message}");
}

/// Runs `options.command` under the wrapper; returns the exit code to leave with.
pub fn run(options: Options) -> i32 {
    // The child starts before signals are blocked: std passes the signal mask on to it, and
    // the application must get its signals as usual. A signal in between meets the default
    // action; a child that already exited is found by the reap below.
    let child = match options.command.split_first() {
        None if options.sidecar => None,
        None => {
            log("no command to run");
            return 2;
        }
        Some((program, args)) => match Command::new(program).args(args).spawn() {
            Ok(child) => Some(Pid::from_raw(child.id() as i32)),
            Err(e) => {
                log(&format!("cannot run {}: {e}", program.to_string_lossy()));
                return 127;
            }
        },
    };
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    // Blocked here and in every thread started later, so sigwait below sees them all.
    if let Err(e) = mask.thread_block() {
        log(&format!("cannot take signals: {e}"));
        return 1;
    }
    // Orphans of the application are reparented to us, so we reap them even when not PID 1.
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        log(&format!(
            "not a child subreaper ({e}); reaping direct children only"
        ));
    }
    if let Some(code) = reap(child) {
        return code;
    }
    let options = Arc::new(options);
    let forwarded = Arc::new(AtomicBool::new(false));
    let mut draining = false;
    loop {
        let signal = match mask.wait() {
            Ok(s) => s,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                log(&format!("sigwait failed: {e}"));
                return 1;
            }
        };
        match signal {
            Signal::SIGCHLD => {
                if let Some(code) = reap(child) {
                    return code;
                }
            }
            Signal::SIGTERM if !draining => {
                draining = true;
                start_drain(&options, child, &forwarded);
            }
            Signal::SIGTERM => {
                // A second SIGTERM: whoever sent it wants the application stopped now.
                if !forwarded.swap(true, Ordering::SeqCst) {
                    log("second SIGTERM: forwarding it now");
                    stop(child);
                }
            }
            other => {
                if let Some(pid) = child {
                    send(pid, other);
                }
            }
        }
    }
}

/// Passes SIGTERM on; a sidecar (no child) exits instead, which lets ECS stop the containers
/// that it depends on.
fn stop(child: Option<Pid>) {
    match child {
        Some(pid) => send(pid, Signal::SIGTERM),
        None => std::process::exit(0),
    }
}

fn send(child: Pid, signal: Signal) {
    if let Err(e) = kill(child, signal)
        && e != Errno::ESRCH
    {
        log(&format!("cannot send {signal} to the child: {e}"));
    }
}

/// Reaps every exited process; the child's exit code once it has exited.
fn reap(child: Option<Pid>) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, status)) if Some(pid) == child => code = Some(status),
            Ok(WaitStatus::Signaled(pid, signal, _)) if Some(pid) == child => {
                code = Some(128 + signal as i32);
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}

/// On the first SIGTERM: one thread asks ecsdns and forwards when it is safe, another forwards
/// at the deadline whatever the first is doing. Whichever comes first wins.
fn start_drain(options: &Arc<Options>, child: Option<Pid>, forwarded: &Arc<AtomicBool>) {
    let started = Instant::now();
    let deadline = started + options.max_wait;
    let forward = {
        let forwarded = Arc::clone(forwarded);
        move |why: &str| {
            if !forwarded.swap(true, Ordering::SeqCst) {
                let what = if child.is_some() {
                    "forwarding SIGTERM"
                } else {
                    "exiting"
                };
                log(&format!(
                    "{why}; {what} after {:.1}s",
                    started.elapsed().as_secs_f64()
                ));
                stop(child);
            }
        }
    };
    let at_deadline = forward.clone();
    let max_wait = options.max_wait;
    std::thread::spawn(move || {
        std::thread::sleep(max_wait);
        at_deadline(&format!("--max-wait {}s reached", max_wait.as_secs_f64()));
    });
    let options = Arc::clone(options);
    std::thread::spawn(move || {
        let why = wait_until_safe(&options, deadline);
        forward(&why);
    });
}

/// Asks ecsdns until the task is safe, the deadline passes, or asking fails (then waits the
/// fallback). Returns what happened, for the log.
fn wait_until_safe(options: &Options, deadline: Instant) -> String {
    let fallback = |why: String| {
        let nap = options
            .fallback_wait
            .min(deadline.saturating_duration_since(Instant::now()));
        log(&format!(
            "{why}; waiting the fallback {:.1}s instead",
            nap.as_secs_f64()
        ));
        std::thread::sleep(nap);
        "fallback wait over".to_string()
    };
    let task = match options.task() {
        Ok(task) => task,
        Err(e) => return fallback(e),
    };
    log(&format!(
        "SIGTERM received; asking {} about {task}",
        options.api
    ));
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return "still served at --max-wait".to_string();
        }
        match http::drain(options, &task, remaining) {
            Ok(answer) if answer.safe => return "safe to stop".to_string(),
            Ok(_) => {
                // The server ended the wait early (its own limit, or it is stopping).
                std::thread::sleep(Duration::from_millis(200).min(remaining));
            }
            Err(e) => return fallback(e),
        }
    }
}
