//! The demo: a simulated ECS cluster named `demo` that needs no AWS account.
//!
//! It writes EventBridge-shaped `ECS Task State Change` JSON, exactly what the SQS watcher
//! receives, and those bodies go through the production [`crate::Decoder`]. Content: service
//! `web` (awsvpc, 3 tasks, port `http` 8080, health-checked), service `api` (bridge, 2 tasks on
//! two EC2 container instances, dynamic host ports for `http` 8080 and `grpc` 9090), service
//! `fleet` (awsvpc, 60 tasks), and the standalone batch group `etl` (`family:etl`, 4 tasks).
//! `api` uses Service Connect: `grpc` published as `api-grpc` and `backend.demo.local`.
//! Churn replaces a `web` or `fleet` task now and then (drain, stop, start) and flips a `web`
//! task UNHEALTHY and back. On request, a rolling deploy replaces every `web` task the way ECS
//! does (new task running first, then the old one's desiredStatus STOPPED, then STOPPED).
//! Deterministic for a given seed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use model::Protocol;
use serde_json::{Value, json};

use crate::{ClusterMap, PortMapping, TaskContext, TaskDefinitionInfo};

mod rolling;
use rolling::DeployStep;

/// The demo cluster's name and DNS label.
pub const CLUSTER: &str = "demo";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const AZS: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

fn arn(kind: &str, rest: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:{kind}/{rest}")
}

/// SplitMix64: a tiny deterministic generator, enough for reproducible churn.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Web,
    Api,
    Fleet,
    Etl,
}

impl Kind {
    fn family(self) -> &'static str {
        match self {
            Kind::Web => "web",
            Kind::Api => "api",
            Kind::Fleet => "fleet",
            Kind::Etl => "etl",
        }
    }

    fn group(self) -> String {
        match self {
            Kind::Etl => "family:etl".to_string(),
            k => format!("service:{}", k.family()),
        }
    }

    fn health_checked(self) -> bool {
        matches!(self, Kind::Web | Kind::Api)
    }

    fn ports(self) -> &'static [(&'static str, u16)] {
        match self {
            Kind::Web | Kind::Fleet => &[("http", 8080)],
            Kind::Api => &[("http", 8080), ("grpc", 9090)],
            Kind::Etl => &[],
        }
    }
}

struct SimTask {
    kind: Kind,
    id: String,
    version: u64,
    last: &'static str,
    desired: &'static str,
    health: &'static str,
    az: usize,
    ip: Option<Ipv4Addr>,
    instance: Option<usize>,
    host_ports: Vec<u16>,
    /// Task definition revision: `web` runs two (its label `version` is `v1` or `v2`).
    revision: u32,
}

/// Where a churn step stands: a draining task to stop and replace, a new task to start, or an
/// unhealthy task to recover.
enum Step {
    Replace { old: usize },
    Start { new: usize },
    Recover { task: usize },
}

/// The simulated cluster.
pub struct Simulator {
    rng: Rng,
    tasks: Vec<SimTask>,
    instances: Vec<(String, Ipv4Addr, usize)>,
    pending: Option<Step>,
    deploy: std::collections::VecDeque<DeployStep>,
    clock: u64,
    next_host: HashMap<(Kind, usize), u8>,
    /// The revision new `web` tasks get: 2, and one more per rolling deploy.
    web_revision: u32,
    /// `api`'s Service Connect names.
    api_connect: Arc<model::ServiceConnect>,
}

impl Simulator {
    /// A cluster in its initial state; `seed` fixes every id, address and churn choice.
    pub fn new(seed: u64) -> Self {
        let mut sim = Self {
            rng: Rng(seed),
            tasks: Vec::new(),
            instances: (0..2)
                .map(|i| {
                    let id = format!("{:032x}", 0xc1_u128 + i as u128);
                    let ip = Ipv4Addr::new(10, 0, 100 + i as u8, 10);
                    (arn("container-instance", &format!("{CLUSTER}/{id}")), ip, i)
                })
                .collect(),
            pending: None,
            deploy: std::collections::VecDeque::new(),
            clock: 0,
            next_host: HashMap::new(),
            web_revision: 2,
            api_connect: Arc::new(
                model::ServiceConnect::from_names([
                    ("api-grpc", "grpc", None),
                    ("backend.demo.local", "grpc", Some(9090)),
                ])
                .0,
            ),
        };
        for (kind, count) in [
            (Kind::Web, 3),
            (Kind::Api, 2),
            (Kind::Fleet, 60),
            (Kind::Etl, 4),
        ] {
            for i in 0..count {
                let mut t = sim.new_task(kind, i, "RUNNING", "HEALTHY");
                // Two versions of web running: two tasks of revision 1, a canary of revision 2.
                if kind == Kind::Web && i < 2 {
                    t.revision = 1;
                }
                sim.tasks.push(t);
            }
        }
        sim
    }

    /// The watched-cluster table the demo's decoder needs.
    pub fn clusters() -> ClusterMap {
        let mut map = ClusterMap::default();
        map.insert(CLUSTER, CLUSTER);
        map
    }

    fn new_task(
        &mut self,
        kind: Kind,
        slot: usize,
        last: &'static str,
        health: &'static str,
    ) -> SimTask {
        let id = format!("{:016x}{:016x}", self.rng.next(), self.rng.next());
        let az = slot % AZS.len();
        let (ip, instance, host_ports) = if kind == Kind::Api {
            let ports = kind
                .ports()
                .iter()
                .map(|_| 32768 + self.rng.below(28_000) as u16)
                .collect();
            (None, Some(slot % self.instances.len()), ports)
        } else {
            let host = self.next_host.entry((kind, az)).or_insert(10);
            *host = host.wrapping_add(1).max(11);
            let second = match kind {
                Kind::Web => 1,
                Kind::Fleet => 2,
                _ => 3,
            };
            let ip = Ipv4Addr::new(10, second, az as u8, *host);
            (Some(ip), None, Vec::new())
        };
        SimTask {
            kind,
            id,
            version: 1,
            last,
            desired: "RUNNING",
            health: if kind.health_checked() {
                health
            } else {
                "UNKNOWN"
            },
            az,
            ip,
            instance,
            host_ports,
            revision: if kind == Kind::Web {
                self.web_revision
            } else {
                1
            },
        }
    }

    fn time(&self) -> String {
        let s = self.clock;
        format!(
            "2026-11-28T{:02}:{:02}:{:02}.000Z",
            (s / 3600) % 24,
            (s / 60) % 60,
            s % 60
        )
    }

    fn task_arn(&self, t: &SimTask) -> String {
        arn("task", &format!("{CLUSTER}/{}", t.id))
    }

    fn task_event(&self, t: &SimTask) -> String {
        let task_arn = self.task_arn(t);
        let cluster_arn = arn("cluster", CLUSTER);
        let mut container = json!({
            "containerArn": arn("container", &format!("{CLUSTER}/{}/{}", t.id, t.kind.family())),
            "lastStatus": t.last,
            "name": t.kind.family(),
            "taskArn": task_arn,
        });
        if t.kind.health_checked() {
            container["healthStatus"] = json!(t.health);
        }
        let mut detail = json!({
            "availabilityZone": AZS[t.az],
            "clusterArn": cluster_arn,
            "createdAt": self.time(),
            "desiredStatus": t.desired,
            "group": t.kind.group(),
            "healthStatus": t.health,
            "lastStatus": t.last,
            "launchType": if t.instance.is_some() { "EC2" } else { "FARGATE" },
            "taskArn": task_arn,
            "taskDefinitionArn": arn("task-definition", &format!("{}:{}", t.kind.family(), t.revision)),
            "updatedAt": self.time(),
            "version": t.version,
        });
        if t.kind != Kind::Etl {
            detail["startedBy"] = json!(format!("ecs-svc/{:019}", t.kind as u64 + 1));
        }
        if let Some(ip) = t.ip {
            let eni = format!("eni-{}", &t.id[..17]);
            detail["attachments"] = json!([{
                "id": format!("{}-att", &t.id[..8]),
                "type": "eni",
                "status": "ATTACHED",
                "details": [
                    {"name": "subnetId", "value": format!("subnet-{:017x}", t.az + 1)},
                    {"name": "networkInterfaceId", "value": eni},
                    {"name": "privateIPv4Address", "value": ip.to_string()},
                ],
            }]);
            container["networkInterfaces"] = json!([{
                "attachmentId": format!("{}-att", &t.id[..8]),
                "privateIpv4Address": ip.to_string(),
            }]);
        }
        if let Some(i) = t.instance {
            detail["containerInstanceArn"] = json!(self.instances[i].0);
            let bindings: Vec<Value> = t
                .kind
                .ports()
                .iter()
                .zip(&t.host_ports)
                .flat_map(|((_, cp), hp)| {
                    // ECS reports a dynamic port bound on both 0.0.0.0 and ::.
                    ["0.0.0.0", "::"].map(|bind| {
                        json!({"bindIP": bind, "containerPort": cp, "hostPort": hp, "protocol": "tcp"})
                    })
                })
                .collect();
            container["networkBindings"] = json!(bindings);
        }
        if t.last == "RUNNING" {
            detail["startedAt"] = json!(self.time());
        }
        detail["containers"] = json!([container]);
        json!({
            "version": "0",
            "id": format!("{:016x}", self.clock.wrapping_mul(0x9E37) ^ t.version),
            "detail-type": "ECS Task State Change",
            "source": "aws.ecs",
            "account": ACCOUNT,
            "time": self.time(),
            "region": REGION,
            "resources": [task_arn],
            "detail": detail,
        })
        .to_string()
    }

    fn instance_event(&self, i: usize) -> String {
        let (ci_arn, _, _) = &self.instances[i];
        json!({
            "version": "0",
            "id": format!("ci-{i}"),
            "detail-type": "ECS Container Instance State Change",
            "source": "aws.ecs",
            "account": ACCOUNT,
            "time": self.time(),
            "region": REGION,
            "resources": [ci_arn],
            "detail": {
                "agentConnected": true,
                "clusterArn": arn("cluster", CLUSTER),
                "containerInstanceArn": ci_arn,
                "ec2InstanceId": format!("i-{:017x}", i + 1),
                "status": "ACTIVE",
                "version": 1,
            },
        })
        .to_string()
    }

    /// Events that bring an empty registry to the initial state.
    pub fn initial_events(&self) -> Vec<String> {
        let mut out: Vec<String> = (0..self.instances.len())
            .map(|i| self.instance_event(i))
            .collect();
        out.extend(self.tasks.iter().map(|t| self.task_event(t)));
        out
    }

    fn bump(
        &mut self,
        i: usize,
        last: &'static str,
        desired: &'static str,
        health: &'static str,
    ) -> String {
        let t = &mut self.tasks[i];
        t.version += 1;
        t.last = last;
        t.desired = desired;
        t.health = health;
        let t = &self.tasks[i];
        self.task_event(t)
    }

    /// One step: a few seconds of a cluster's life, as events. While a rolling deploy runs,
    /// its steps come first; `churn` false leaves the cluster alone otherwise.
    pub fn tick(&mut self, churn: bool) -> Vec<String> {
        self.clock += 2;
        if let Some(events) = self.deploy_step() {
            return events;
        }
        if !churn && self.pending.is_none() {
            return Vec::new();
        }
        let step = self.pending.take();
        match step {
            Some(Step::Replace { old }) => {
                let health = self.tasks[old].health;
                let stopped = self.bump(old, "STOPPED", "STOPPED", health);
                let retired = self.tasks.swap_remove(old);
                let slot = retired.az + 3 * self.rng.below(20);
                let fresh = self.new_task(retired.kind, slot, "PENDING", "UNKNOWN");
                self.tasks.push(fresh);
                let new = self.tasks.len() - 1;
                self.pending = Some(Step::Start { new });
                vec![stopped, self.task_event(&self.tasks[new])]
            }
            Some(Step::Start { new }) => vec![self.bump(new, "RUNNING", "RUNNING", "HEALTHY")],
            Some(Step::Recover { task }) => vec![self.bump(task, "RUNNING", "RUNNING", "HEALTHY")],
            None => {
                let pick = |sim: &mut Self, kind: Kind| {
                    let of_kind: Vec<usize> = (0..sim.tasks.len())
                        .filter(|i| sim.tasks[*i].kind == kind && sim.tasks[*i].last == "RUNNING")
                        .collect();
                    of_kind[sim.rng.below(of_kind.len())]
                };
                match self.rng.below(10) {
                    0..=2 => {
                        let task = pick(self, Kind::Web);
                        self.pending = Some(Step::Recover { task });
                        vec![self.bump(task, "RUNNING", "RUNNING", "UNHEALTHY")]
                    }
                    r => {
                        let kind = if r < 6 { Kind::Web } else { Kind::Fleet };
                        let old = pick(self, kind);
                        let health = self.tasks[old].health;
                        self.pending = Some(Step::Replace { old });
                        // desiredStatus turns STOPPED first: the moment to leave DNS.
                        vec![self.bump(old, "RUNNING", "STOPPED", health)]
                    }
                }
            }
        }
    }
}

impl TaskContext for Simulator {
    fn host_address(&self, container_instance_arn: &str) -> Option<IpAddr> {
        self.instances
            .iter()
            .find(|(arn, _, _)| arn == container_instance_arn)
            .map(|(_, ip, _)| IpAddr::V4(*ip))
    }

    fn task_definition(&self, task_definition_arn: &str) -> Option<TaskDefinitionInfo> {
        let family = task_definition_arn.rsplit('/').next()?.split(':').next()?;
        let kind = [Kind::Web, Kind::Api, Kind::Fleet, Kind::Etl]
            .into_iter()
            .find(|k| k.family() == family)?;
        Some(TaskDefinitionInfo {
            ports: kind
                .ports()
                .iter()
                .map(|(name, port)| PortMapping {
                    container: family.to_string(),
                    name: Some((*name).to_string()),
                    container_port: *port,
                    protocol: Protocol::Tcp,
                })
                .collect(),
            health_checked: kind.health_checked(),
            check: None,
            // web's docker labels: `ecsdns.meta.version = vN` for revision N.
            labels: (kind == Kind::Web)
                .then(|| {
                    let revision = task_definition_arn.rsplit(':').next()?;
                    let docker = format!("v{revision}");
                    model::Labels::from_docker([("ecsdns.meta.version", docker.as_str())]).ok()
                })
                .flatten()
                .map(Arc::new),
        })
    }

    /// `api` runs with Service Connect: its `grpc` port is published as `api-grpc` and the
    /// client alias `backend.demo.local:9090`, served as `api-grpc.demo.<zone>` and
    /// `backend.demo.<zone>` (SRV on each task's dynamic grpc host port).
    fn service_connect(
        &self,
        service: &str,
        _started_by: Option<&str>,
    ) -> Option<Arc<model::ServiceConnect>> {
        (service == Kind::Api.family()).then(|| Arc::clone(&self.api_connect))
    }
}
