//! Micro-benchmarks of the two hot paths: answering one query from prepared bytes, and applying
//! registry updates. `cargo bench -p ecsdns-bench`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use dns::{AnswerTable, Answerer, DnsMetrics, Transport, ZoneConfig};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use model::{Health, Port, Protocol, Task, TaskGroup, TaskStatus, Update};
use registry::{Registry, RegistryConfig};

fn task(s: usize, t: usize, version: u64) -> Task {
    Task {
        arn: format!("arn:aws:ecs:r:1:task/bench/{s}/t{t:02}").into(),
        cluster: "bench".into(),
        group: TaskGroup::Service(format!("svc-{s:05}").into()),
        version,
        last_status: TaskStatus::Running,
        desired_status: TaskStatus::Running,
        health: Health::Healthy,
        health_checked: true,
        addresses: Box::new([IpAddr::V4(Ipv4Addr::new(
            10,
            (s / 250) as u8,
            (s % 250) as u8,
            t as u8 + 1,
        ))]),
        ports: Box::new([Port {
            name: "http".into(),
            port: 8080,
            protocol: Protocol::Tcp,
        }]),
        az: None,
        task_definition: None,
        container_instance: None,
        started_at: None,
        check: None,
        labels: None,
        ordinal: None,
        service_connect: None,
    }
}

fn query(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m.set_edns(Edns::new());
    m.to_vec().unwrap()
}

fn answer(c: &mut Criterion) {
    let registry = Registry::new(RegistryConfig::default());
    registry
        .apply_batch((0..1000).flat_map(|s| (0..10).map(move |t| Update::Upsert(task(s, t, 1)))));
    let table = Arc::new(AnswerTable::new(ZoneConfig::new("ecs.internal.").unwrap()).unwrap());
    dns::follow::sync_once(&registry, &table, 0);
    let answerer = Answerer::new(table, Arc::new(DnsMetrics::default()));
    let mut out = Vec::with_capacity(4096);
    for (label, name, qtype) in [
        (
            "A, 10 records",
            "svc-00042.bench.ecs.internal.",
            RecordType::A,
        ),
        (
            "SRV, 10 records + additional",
            "svc-00042.bench.ecs.internal.",
            RecordType::SRV,
        ),
        ("NXDOMAIN", "nope.bench.ecs.internal.", RecordType::A),
    ] {
        let q = query(name, qtype);
        let mut rotation = 0;
        c.bench_function(&format!("respond: {label}"), |b| {
            b.iter(|| {
                rotation += 1;
                answerer.respond(std::hint::black_box(&q), Transport::Udp, rotation, &mut out)
            })
        });
    }
}

fn apply(c: &mut Criterion) {
    let registry = Registry::new(RegistryConfig::default());
    let mut version = 1;
    c.bench_function(
        "registry: apply a batch of 1000 upserts over 100 services",
        |b| {
            b.iter(|| {
                version += 1;
                registry
                    .apply_batch((0..1000).map(|n| Update::Upsert(task(n % 100, n / 100, version))))
            })
        },
    );
}

criterion_group!(benches, answer, apply);
criterion_main!(benches);
