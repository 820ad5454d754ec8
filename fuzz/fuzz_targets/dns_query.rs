//! Fuzz target: arbitrary bytes as a DNS query, over UDP and TCP and as a zone transfer request,
//! against a table holding services, a reverse zone, same-AZ tags and transfers. Never a panic;
//! every answer parses as DNS, echoes the query id, and UDP and TCP agree when UDP did not
//! truncate.
#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use dns::{AnswerTable, Answerer, AzPreference, Cidr, DnsMetrics, Outcome, Transport, ZoneConfig};
use libfuzzer_sys::fuzz_target;
use model::{Health, Port, Protocol, Task, TaskGroup, TaskStatus, Update};
use registry::{Registry, RegistryConfig};

fn answerer() -> &'static Answerer {
    static ANSWERER: OnceLock<Answerer> = OnceLock::new();
    ANSWERER.get_or_init(|| {
        let mut zone = ZoneConfig::new("ecs.internal.").expect("zone");
        zone.add_reverse_zone("10.in-addr.arpa.")
            .expect("reverse zone");
        zone.az
            .subnets
            .push((Cidr::parse("127.0.0.0/8").expect("cidr"), "a".into()));
        zone.az.default = AzPreference::First;
        zone.transfer
            .allow
            .push(Cidr::parse("127.0.0.1").expect("cidr"));
        let registry = Registry::new(RegistryConfig::default());
        for s in 0..4u8 {
            for t in 0..(3 + s * 7) {
                registry.apply(Update::Upsert(Task {
                    arn: format!("arn:aws:ecs:r:1:task/c/s{s}t{t}").into(),
                    cluster: "c".into(),
                    group: TaskGroup::Service(format!("svc{s}").into()),
                    version: 1,
                    last_status: TaskStatus::Running,
                    desired_status: TaskStatus::Running,
                    health: Health::Healthy,
                    health_checked: true,
                    addresses: Box::new([
                        IpAddr::from([10, s, 0, t]),
                        IpAddr::from([0xfd00, 0, 0, 0, 0, 0, u16::from(s), u16::from(t)]),
                    ]),
                    ports: Box::new([Port {
                        name: "http".into(),
                        port: 8080,
                        protocol: Protocol::Tcp,
                    }]),
                    az: Some(if t % 2 == 0 { "a" } else { "b" }.into()),
                    task_definition: None,
                    container_instance: None,
                    started_at: None,
                    check: None,
                    labels: None,
                    ordinal: None,
                    service_connect: None,
                }));
            }
        }
        let table = Arc::new(AnswerTable::new(zone).expect("table"));
        for snapshot in registry.services() {
            table
                .set_service(&snapshot.key, Some(&snapshot))
                .expect("service");
        }
        Answerer::new(table, Arc::new(DnsMetrics::default()))
    })
}

fn parse(answer: &[u8]) -> hickory_proto::op::Message {
    hickory_proto::op::Message::from_vec(answer).expect("checked")
}

fn check(query: &[u8], answer: &[u8]) {
    let parsed = hickory_proto::op::Message::from_vec(answer);
    assert!(
        parsed.is_ok(),
        "unparsable answer {answer:?} to {query:?}: {parsed:?}"
    );
    assert_eq!(answer[..2], query[..2], "id echoed");
    assert!(answer[2] & 0x80 != 0, "QR set");
}

fuzz_target!(|data: &[u8]| {
    let a = answerer();
    let client: IpAddr = [127, 0, 0, 1].into();
    let rotation = data.len();
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    let u = a.respond_from(data, Transport::Udp, rotation, Some(client), &mut udp);
    let t = a.respond_from(data, Transport::Tcp, rotation, Some(client), &mut tcp);
    if let Outcome::Answered { truncated, .. } = u {
        check(data, &udp);
        if !truncated {
            // Same answer and authority; UDP may carry fewer additional records (whole groups
            // while they fit, RFC 2181), never other ones.
            let (u, t) = (parse(&udp), parse(&tcp));
            assert_eq!(u.answers, t.answers, "UDP and TCP answers differ");
            assert_eq!(u.authorities, t.authorities);
            assert_eq!(u.metadata.response_code, t.metadata.response_code);
            // A TSIG carries the second it was made in, which two calls may straddle.
            let tsig = hickory_proto::rr::RecordType::TSIG;
            assert!(
                u.additionals
                    .iter()
                    .filter(|r| r.record_type() != tsig)
                    .all(|r| t.additionals.contains(r))
            );
        }
    }
    if let Outcome::Answered { .. } = t {
        check(data, &tcp);
    }
    if let Some(messages) = a.transfer(data, Some(client)) {
        assert!(!messages.is_empty());
        for m in &messages {
            check(data, m);
        }
    }
});
