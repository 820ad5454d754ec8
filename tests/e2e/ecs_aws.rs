//! Test-side AWS helpers: SDK clients pointed at a moto server, fixtures (clusters, task
//! definitions, tasks, container instances, queues) and EventBridge-shaped event bodies.

use aws_sdk_ecs::types::{
    AwsVpcConfiguration, ContainerDefinition, LaunchType, NetworkConfiguration, NetworkMode,
    PortMapping,
};
use serde_json::{Value, json};
use testkit::Moto;

pub const REGION: &str = "us-east-1";

pub struct Aws {
    pub rt: tokio::runtime::Runtime,
    pub ecs: aws_sdk_ecs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub region: String,
}

pub struct Net {
    pub subnet: String,
    pub security_group: String,
}

impl Aws {
    pub fn new(moto: &Moto) -> Self {
        Self::new_in(moto, REGION, None)
    }

    /// Clients in `region`, as the base account or, with `role`, as that role (moto files
    /// what an assumed role creates under the role's account).
    pub fn new_in(moto: &Moto, region: &str, role: Option<&str>) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = rt.block_on(async {
            let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(ecs::aws::https_client())
                .region(aws_config::Region::new(region.to_string()))
                .endpoint_url(moto.endpoint())
                .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .load()
                .await;
            match role {
                Some(role) => ecs::aws::assume_role(&base, role).await,
                None => base,
            }
        });
        Self {
            ecs: aws_sdk_ecs::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            region: region.to_string(),
            rt,
        }
    }

    pub fn cluster(&self, name: &str) -> String {
        let out = self
            .rt
            .block_on(self.ecs.create_cluster().cluster_name(name).send())
            .unwrap();
        out.cluster().unwrap().cluster_arn().unwrap().to_string()
    }

    /// A VPC (with DNS hostnames, which moto's awsvpc tasks need), a subnet, a security group.
    pub fn network(&self) -> Net {
        self.rt.block_on(async {
            let vpc = self
                .ec2
                .create_vpc()
                .cidr_block("10.0.0.0/16")
                .send()
                .await
                .unwrap();
            let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
            self.ec2
                .modify_vpc_attribute()
                .vpc_id(&vpc)
                .enable_dns_hostnames(
                    aws_sdk_ec2::types::AttributeBooleanValue::builder()
                        .value(true)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            let subnet = self
                .ec2
                .create_subnet()
                .vpc_id(&vpc)
                // Room for the 10,000-task reconcile measurement.
                .cidr_block("10.0.64.0/18")
                .availability_zone(format!("{}a", self.region))
                .send()
                .await
                .unwrap();
            let sg = self
                .ec2
                .create_security_group()
                .group_name(format!("sg-{vpc}"))
                .description("test")
                .vpc_id(&vpc)
                .send()
                .await
                .unwrap();
            Net {
                subnet: subnet.subnet().unwrap().subnet_id().unwrap().to_string(),
                security_group: sg.group_id().unwrap().to_string(),
            }
        })
    }

    /// A task definition with one container named like the family and named ports
    /// (hostPort 0 for bridge: dynamic host ports).
    pub fn task_definition(
        &self,
        family: &str,
        mode: NetworkMode,
        ports: &[(&str, i32)],
    ) -> String {
        let mappings = ports.iter().map(|(name, port)| {
            let m = PortMapping::builder().container_port(*port).name(*name);
            if mode == NetworkMode::Bridge {
                m.host_port(0).build()
            } else {
                m.build()
            }
        });
        let container = ContainerDefinition::builder()
            .name(family)
            .image("example/app")
            .memory(128)
            .set_port_mappings(Some(mappings.collect()))
            // Published as the task label `family` (ecsdns.meta.*); other labels are not.
            .docker_labels("ecsdns.meta.family", family)
            .docker_labels("com.example.private", "not published")
            .build();
        let out = self
            .rt
            .block_on(
                self.ecs
                    .register_task_definition()
                    .family(family)
                    .network_mode(mode)
                    .container_definitions(container)
                    .send(),
            )
            .unwrap();
        out.task_definition()
            .unwrap()
            .task_definition_arn()
            .unwrap()
            .to_string()
    }

    /// Runs awsvpc tasks as a service would; returns (task ARN, ENI address) pairs.
    pub fn run_awsvpc(
        &self,
        cluster: &str,
        td: &str,
        count: i32,
        service: &str,
        net: &Net,
    ) -> Vec<(String, String)> {
        self.run_awsvpc_by(
            cluster,
            td,
            count,
            service,
            net,
            "ecs-svc/1234567890123456789",
        )
    }

    /// [`Aws::run_awsvpc`] for a given deployment (`startedBy`, as ECS sets it).
    pub fn run_awsvpc_by(
        &self,
        cluster: &str,
        td: &str,
        count: i32,
        service: &str,
        net: &Net,
        started_by: &str,
    ) -> Vec<(String, String)> {
        let network = NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .subnets(&net.subnet)
                    .security_groups(&net.security_group)
                    .build()
                    .unwrap(),
            )
            .build();
        let out = self
            .rt
            .block_on(
                self.ecs
                    .run_task()
                    .cluster(cluster)
                    .task_definition(td)
                    .count(count)
                    .group(format!("service:{service}"))
                    .started_by(started_by)
                    .launch_type(LaunchType::Fargate)
                    .network_configuration(network)
                    .send(),
            )
            .unwrap();
        out.tasks()
            .iter()
            .map(|t| {
                let ip = t
                    .attachments()
                    .iter()
                    .flat_map(|a| a.details())
                    .find(|d| d.name() == Some("privateIPv4Address"))
                    .and_then(|d| d.value())
                    .unwrap()
                    .to_string();
                (t.task_arn().unwrap().to_string(), ip)
            })
            .collect()
    }

    pub fn stop_task(&self, cluster: &str, arn: &str) {
        self.rt
            .block_on(self.ecs.stop_task().cluster(cluster).task(arn).send())
            .unwrap();
    }

    /// An EC2 instance registered as a container instance; returns (ARN, private IP).
    pub fn container_instance(&self, cluster: &str) -> (String, String) {
        self.rt.block_on(async {
            let run = self
                .ec2
                .run_instances()
                .image_id("ami-12c6146b")
                .min_count(1)
                .max_count(1)
                .send()
                .await
                .unwrap();
            let instance = &run.instances()[0];
            let id = instance.instance_id().unwrap().to_string();
            let ip = instance.private_ip_address().unwrap().to_string();
            let doc = json!({"instanceId": id, "region": self.region}).to_string();
            let ci = self
                .ecs
                .register_container_instance()
                .cluster(cluster)
                .instance_identity_document(doc)
                .send()
                .await
                .unwrap();
            let arn = ci
                .container_instance()
                .unwrap()
                .container_instance_arn()
                .unwrap();
            (arn.to_string(), ip)
        })
    }

    pub fn queue(&self, name: &str) -> String {
        let out = self
            .rt
            .block_on(self.sqs.create_queue().queue_name(name).send())
            .unwrap();
        out.queue_url().unwrap().to_string()
    }

    pub fn send(&self, queue: &str, body: &str) {
        self.rt
            .block_on(
                self.sqs
                    .send_message()
                    .queue_url(queue)
                    .message_body(body)
                    .send(),
            )
            .unwrap();
    }
}

/// An EventBridge "ECS Task State Change" envelope around `detail`.
pub fn task_event(detail: Value) -> String {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": "2026-11-28T01:00:00Z",
        "region": REGION,
        "resources": [detail["taskArn"].clone()],
        "detail": detail,
    })
    .to_string()
}

/// The detail of a task state change, with ISO timestamps, for a task in `cluster_arn`.
pub fn detail(cluster_arn: &str, task_arn: &str, version: u64, last: &str, desired: &str) -> Value {
    json!({
        "clusterArn": cluster_arn,
        "taskArn": task_arn,
        "version": version,
        "lastStatus": last,
        "desiredStatus": desired,
        "createdAt": "2026-11-28T00:59:00.000Z",
        "updatedAt": "2026-11-28T01:00:00.000Z",
        "launchType": "EC2",
        "containers": [],
    })
}

/// An "ECS Container Instance State Change" envelope.
pub fn instance_event(cluster_arn: &str, ci_arn: &str, status: &str, version: u64) -> String {
    json!({
        "version": "0",
        "id": "8952ba83-7be2-4ab5-9c32-6687532d15a2",
        "detail-type": "ECS Container Instance State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": "2026-11-28T01:00:00Z",
        "region": REGION,
        "resources": [ci_arn],
        "detail": {
            "clusterArn": cluster_arn,
            "containerInstanceArn": ci_arn,
            "status": status,
            "version": version,
            "agentConnected": true,
        },
    })
    .to_string()
}
