//! A rolling deploy as clients live through it: real HTTP servers per task on loopback
//! addresses, unbound as the caching resolver in front of ecsdns, and a client that resolves
//! through unbound for every request. Each old task is replaced the way ECS does it: the new
//! task starts and is served first, then the old one is stopped, its stop reaching ecsdns (a
//! file edit, or a desiredStatus STOPPED event through SQS) at the moment it gets SIGTERM.
//! Shared by the end-to-end test and `ecsdns-bench deploy`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::{Moto, Process, Unbound};

mod client;
mod feed;
use client::Load;
use feed::Feed;

/// The port every task's HTTP server listens on (each task has its own address).
const PORT: u16 = 8080;
const CLUSTER: &str = "deploy";
const ZONE: &str = "ecs.internal";

/// How ecsdns learns of tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The static endpoints file, rewritten (atomically) on each change.
    File,
    /// ECS task state change events through SQS (moto), as EventBridge delivers them.
    Ecs,
}

impl Source {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Ecs => "ecs",
        }
    }
}

/// One rolling-deploy run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Where ecsdns learns of tasks.
    pub source: Source,
    /// Whether each task's server runs under `ecsdns drain-wait`.
    pub drain_wait: bool,
    /// Tasks of the service.
    pub tasks: usize,
    /// Deploys in a row, each replacing every task.
    pub rounds: usize,
    /// DNS TTL, seconds.
    pub ttl: u32,
    /// The drain margin.
    pub margin: Duration,
    /// Client requests per second (each resolves through unbound first).
    pub rate: u32,
    /// Client traffic before the first and after the last deploy.
    pub settle: Duration,
    /// How to run ecsdns: the program and the arguments before its subcommand.
    pub ecsdns: Vec<OsString>,
}

/// What the clients lived through.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Requests made.
    pub requests: u64,
    /// Requests that failed, by kind (`refused`, `empty answer`, `dns error`, `http`).
    pub failures: BTreeMap<String, u64>,
    /// Wall time of the deploys (first new task started to last old task exited).
    pub deploy: Duration,
    /// Per replaced task: SIGTERM sent to its process exiting.
    pub stops: Vec<Duration>,
}

impl Report {
    /// Every failed request.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Requests that found the service with no address at all.
    pub fn empty(&self) -> u64 {
        self.failures.get("empty answer").copied().unwrap_or(0)
    }
}

/// One task: its HTTP server process (under drain-wait or not), killed with its process
/// group on drop.
struct TaskProcess {
    id: String,
    ip: Ipv4Addr,
    child: Child,
}

impl Drop for TaskProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// Runs in this process so far: picks each run's loopback block (127.BLOCK.GENERATION.TASK).
static NEXT_BLOCK: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// The interpreter that runs each task's HTTP server (`python3 -m http.server`).
const PYTHON: &str = "python3";

impl Scenario {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.ecsdns[0]);
        c.args(&self.ecsdns[1..]);
        c
    }

    fn arn(&self, id: &str) -> String {
        format!("arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/{id}")
    }

    /// Starts a task's server on `ip` and waits until it accepts connections.
    fn start_task(&self, dir: &Path, id: &str, ip: Ipv4Addr, api: SocketAddr) -> TaskProcess {
        let root = dir.join("www");
        std::fs::create_dir_all(&root).unwrap();
        let mut command = if self.drain_wait {
            let mut c = self.command();
            let task = match self.source {
                Source::File => id.to_string(),
                Source::Ecs => self.arn(id),
            };
            c.args([
                "drain-wait",
                "--api",
                &format!("http://{api}"),
                "--task",
                &task,
            ]);
            c.args(["--max-wait", "25s", "--", PYTHON]);
            c
        } else {
            Command::new(PYTHON)
        };
        command
            .args([
                "-m",
                "http.server",
                &PORT.to_string(),
                "--bind",
                &ip.to_string(),
            ])
            .arg("--directory")
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{id}.log"))).unwrap());
        let addr = SocketAddr::from((ip, PORT));
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err(),
            "{addr} is taken (a server left over from an earlier run?)"
        );
        // Its own process group, so the wrapper and the server go together on cleanup.
        let child = command
            .process_group(0)
            .spawn()
            .expect("cannot start a task's HTTP server");
        let started = Instant::now();
        while TcpStream::connect_timeout(&SocketAddr::from((ip, PORT)), Duration::from_millis(100))
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "task {id} on {ip} did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TaskProcess {
            id: id.to_string(),
            ip,
            child,
        }
    }
}

/// The A set ecsdns itself serves for the service now.
fn served(dns: SocketAddr) -> Vec<Ipv4Addr> {
    let q = crate::query(&format!("web.{CLUSTER}.{ZONE}."), RecordType::A);
    let Some(reply) = crate::udp_raw(dns, &q.to_vec().unwrap(), Duration::from_millis(500)) else {
        return Vec::new();
    };
    Message::from_vec(&reply)
        .map(|m| crate::a_records(&m))
        .unwrap_or_default()
}

fn wait_served(ecsdns: &mut Process, ip: Ipv4Addr, want: bool) {
    let started = Instant::now();
    while served(ecsdns.dns).contains(&ip) != want {
        if started.elapsed() > Duration::from_secs(20) {
            let log = ecsdns.stderr();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "ecsdns did not {} {ip} in 20 s; its log ends:\n{}",
                if want { "serve" } else { "drop" },
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// Runs the scenario with its files under `dir`; panics on setup failures (a tool missing,
/// a server not coming up), reports what the clients saw.
pub fn run(s: &Scenario, dir: &Path) -> Report {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let ttl = s.ttl.to_string();
    let margin = format!("{}ms", s.margin.as_millis());
    let mut args = vec![
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--ttl",
        &ttl,
        "--drain-margin",
        &margin,
    ];
    let path = dir.join("endpoints.toml");
    let (feed, env) = match s.source {
        Source::File => {
            std::fs::write(&path, Feed::endpoints(&[])).unwrap();
            (Feed::File(path.clone()), Vec::new())
        }
        Source::Ecs => {
            let moto = Moto::start();
            let cluster = moto.aws_json(
                "ecs",
                "AmazonEC2ContainerServiceV20141113.CreateCluster",
                &json!({"clusterName": CLUSTER}),
            );
            let cluster_arn = cluster["cluster"]["clusterArn"]
                .as_str()
                .unwrap()
                .to_string();
            let queue = moto.aws_json(
                "sqs",
                "AmazonSQS.CreateQueue",
                &json!({"QueueName": "deploy-events"}),
            );
            let queue = queue["QueueUrl"].as_str().unwrap().to_string();
            let env = moto.env();
            (
                Feed::Ecs {
                    moto,
                    queue,
                    cluster_arn,
                },
                env,
            )
        }
    };
    let path_arg = path.to_str().unwrap().to_string();
    let queue_arg;
    match &feed {
        Feed::File(_) => args.extend(["--endpoints", &path_arg, "--endpoints-poll", "50ms"]),
        Feed::Ecs { queue, .. } => {
            queue_arg = queue.clone();
            args.extend([
                "--cluster",
                CLUSTER,
                "--sqs-queue-url",
                &queue_arg,
                "--reconcile-interval",
                "1h",
            ]);
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut ecsdns = Process::start_command(s.command(), &args, &env);
    if s.source == Source::Ecs {
        ecsdns.wait_for_log("cluster synced", Duration::from_secs(30));
    }
    let api = ecsdns.api.expect("ecsdns serves its API");
    let unbound = Unbound::start(&dir.join("unbound"), ZONE, ecsdns.dns);

    // Each run its own block of loopback addresses: runs side by side (parallel tests) never
    // race for a task's address.
    let block = 100 + NEXT_BLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100;
    let ip =
        move |generation: usize, i: usize| Ipv4Addr::new(127, block, generation as u8, i as u8 + 1);
    let id = |generation: usize, i: usize| format!("web-g{generation}-{i}");
    let mut live: Vec<TaskProcess> = (0..s.tasks)
        .map(|i| s.start_task(dir, &id(0, i), ip(0, i), api))
        .collect();
    feed.publish(s, &live.iter().collect::<Vec<_>>(), None, None);
    for t in &live {
        wait_served(&mut ecsdns, t.ip, true);
    }

    let load = Load::start(unbound.addr, s.rate);
    std::thread::sleep(s.settle);
    let stops = Arc::new(Mutex::new(Vec::new()));
    let deploy_started = Instant::now();
    let mut stopping = Vec::new();
    for round in 1..=s.rounds {
        for i in 0..s.tasks {
            let new = s.start_task(dir, &id(round, i), ip(round, i), api);
            let mut tasks: Vec<&TaskProcess> = live.iter().collect();
            tasks.push(&new);
            feed.publish(s, &tasks, Some(&new), None);
            wait_served(&mut ecsdns, new.ip, true);
            let mut old = std::mem::replace(&mut live[i], new);
            let tasks: Vec<&TaskProcess> = live.iter().collect();
            // The stop reaches ecsdns and the task together, as ECS does it.
            feed.publish(s, &tasks, None, Some(&old));
            sigterm(&old.child);
            let sent = Instant::now();
            let stops = Arc::clone(&stops);
            // ECS stops the old task while it goes on with the next one.
            stopping.push(std::thread::spawn(move || {
                let _ = old.child.wait();
                stops.lock().unwrap().push(sent.elapsed());
            }));
            wait_served(&mut ecsdns, ip(round - 1, i), false);
        }
    }
    for t in stopping {
        let _ = t.join();
    }
    let deploy = deploy_started.elapsed();
    std::thread::sleep(s.settle);
    let (requests, failures) = load.finish();
    drop(live);
    drop(unbound);
    drop(ecsdns);
    let stops = stops.lock().unwrap().clone();
    Report {
        requests,
        failures,
        deploy,
        stops,
    }
}
