//! Size checks: negative answers (a long name under a long origin, without EDNS), a 5,000-task
//! service over UDP and TCP, and `udp_overflow = "fit"`.

use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::{AnswerTable, Answerer, DnsMetrics, Transport, ZoneConfig};

/// A label of `n` letters.
fn label(n: usize) -> String {
    "a".repeat(n)
}

#[test]
fn a_negative_answer_that_does_not_fit_512_bytes_is_truncated_not_oversized() {
    // An origin of about 190 bytes: its SOA (ns1 and hostmaster names uncompressed) alone takes
    // about 420.
    let origin = format!("{}.{}.{}.internal.", label(60), label(60), label(60));
    let table = AnswerTable::new(ZoneConfig::new(&origin).unwrap()).unwrap();
    let answerer = Answerer::new(Arc::new(table), Arc::new(DnsMetrics::default()));
    let qname = Name::from_ascii(format!("{}.{origin}", label(60))).unwrap();
    let mut q = Message::new(3, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(qname, RecordType::A));
    let query = q.to_vec().unwrap();

    let mut out = Vec::new();
    answerer.respond(&query, Transport::Udp, 0, &mut out);
    assert!(
        out.len() <= 512,
        "{} bytes over UDP without EDNS",
        out.len()
    );
    let m = Message::from_vec(&out).unwrap();
    assert!(m.metadata.truncation, "TC: ask again over TCP");
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    answerer.respond(&query, Transport::Tcp, 0, &mut out);
    let m = Message::from_vec(&out).unwrap();
    assert!(out.len() > 512);
    assert!(!m.metadata.truncation);
    assert_eq!(m.authorities.len(), 1, "the SOA, over TCP");
}

/// ECS's largest service: 5,000 tasks in one service.
fn big_service() -> Answerer {
    big_service_in(ZoneConfig::new("ecs.internal.").unwrap())
}

/// [`big_service`] in `zone`.
fn big_service_in(zone: ZoneConfig) -> Answerer {
    use model::Update;
    use registry::{Registry, RegistryConfig};
    let registry = Registry::new(RegistryConfig::default());
    registry.apply_batch((0..5_000u32).map(|i| {
        Update::Upsert(crate::test_tasks::running(
            format!("arn:aws:ecs:r:1:task/c/{i:032x}"),
            "big",
            std::net::Ipv4Addr::from(0x0a00_0000 + i),
            1,
        ))
    }));
    let table = Arc::new(AnswerTable::new(zone).unwrap());
    crate::follow::sync_once(&registry, &table, 0);
    Answerer::new(table, Arc::new(DnsMetrics::default()))
}

#[test]
fn a_5000_task_service_answers_the_rotated_subset_that_fits_over_tcp_and_udp() {
    let answerer = big_service();
    for (qtype, transport, limit) in [
        (RecordType::A, Transport::Tcp, 65_535),
        (RecordType::SRV, Transport::Tcp, 65_535),
        (RecordType::A, Transport::Udp, 512),
        (RecordType::SRV, Transport::Udp, 512),
    ] {
        let mut q = Message::new(5, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(
            Name::from_ascii("big.c.ecs.internal.").unwrap(),
            qtype,
        ));
        let query = q.to_vec().unwrap();
        let mut firsts = std::collections::BTreeSet::new();
        for rotation in [0, 1, 2_500] {
            let mut out = Vec::new();
            answerer.respond(&query, transport, rotation, &mut out);
            assert!(
                out.len() <= limit,
                "{qtype} over {transport:?}: {} bytes",
                out.len()
            );
            let m = Message::from_vec(&out).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert!(
                m.metadata.truncation,
                "{qtype} over {transport:?}: only part fits"
            );
            assert!(
                !m.answers.is_empty(),
                "{qtype} over {transport:?}: whole records"
            );
            assert!(m.answers.len() < 5_000);
            firsts.insert(m.answers[0].data.to_string());
        }
        assert_eq!(
            firsts.len(),
            3,
            "{qtype} over {transport:?}: each rotation starts elsewhere"
        );
    }
}

#[test]
fn fit_mode_sends_the_records_that_fit_with_their_addresses_and_no_tc() {
    let mut zone = ZoneConfig::new("ecs.internal.").unwrap();
    zone.service_udp_overflow
        .insert("big.c".into(), crate::UdpOverflow::Fit);
    let answerer = big_service_in(zone);
    for (qtype, transport, limit) in [
        (RecordType::A, Transport::Udp, 512),
        (RecordType::SRV, Transport::Udp, 512),
        (RecordType::A, Transport::Tcp, 65_535),
        (RecordType::SRV, Transport::Tcp, 65_535),
    ] {
        let mut q = Message::new(9, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(
            Name::from_ascii("big.c.ecs.internal.").unwrap(),
            qtype,
        ));
        let query = q.to_vec().unwrap();
        let mut out = Vec::new();
        let mut firsts = std::collections::BTreeSet::new();
        for rotation in [0, 7] {
            answerer.respond(&query, transport, rotation, &mut out);
            assert!(
                out.len() <= limit,
                "{qtype} over {transport:?}: {}",
                out.len()
            );
            let m = Message::from_vec(&out).unwrap();
            assert!(!m.metadata.truncation, "{qtype} over {transport:?}: no TC");
            assert!(m.answers.len() > 2 && m.answers.len() < 5_000);
            if qtype == RecordType::SRV {
                // The records come first; then the first targets' addresses, as many as fit.
                assert!(m.additionals.len() < m.answers.len());
                for (srv, a) in m.answers.iter().zip(&m.additionals) {
                    let RData::SRV(srv) = &srv.data else {
                        panic!("{srv:?}")
                    };
                    assert_eq!(srv.target, a.name, "additionals in the answers' order");
                }
            } else {
                // Full: one more A record (16 bytes, its name compressed) would not fit.
                assert!(out.len() + 16 > limit, "{qtype}: {} bytes", out.len());
            }
            firsts.insert(m.answers[0].data.to_string());
        }
        assert_eq!(firsts.len(), 2, "{qtype}: rotated");
    }
}
