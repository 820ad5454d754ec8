//! Size checks on negative answers: a long name under a long origin, without EDNS.

use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

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
