//! Tests of the wire helpers: query parsing, name limits, truncation.

use super::*;

fn packet(labels: &[usize]) -> Vec<u8> {
    let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for len in labels {
        p.push(*len as u8);
        p.extend(std::iter::repeat_n(b'A', *len));
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    p
}

#[test]
fn name_length_limit_is_255_octets_with_the_root() {
    // 3 x 63 + 61 + 4 length octets + root = 255
    let p = packet(&[63, 63, 63, 61]);
    let q = parse(&p).ok().unwrap();
    assert_eq!(q.key_len, 255);
    assert!(
        q.key().iter().all(|b| !b.is_ascii_uppercase()),
        "lower-cased"
    );
    assert!(matches!(
        parse(&packet(&[63, 63, 63, 62])),
        Err(Reject::Error {
            rcode: Rcode::FormErr,
            ..
        })
    ));
    assert!(matches!(parse(&packet(&[64])), Err(Reject::Error { .. })));
}

#[test]
fn short_and_response_packets_are_dropped() {
    assert!(matches!(parse(&[0; 11]), Err(Reject::Drop)));
    let mut p = packet(&[3]);
    p[2] |= 0x80;
    assert!(matches!(parse(&p), Err(Reject::Drop)));
}

#[test]
fn suffix_is_matched_on_label_boundaries_only() {
    let mut p = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    p.extend_from_slice(b"\x04xweb\x04prod\x00\x00\x01\x00\x01");
    let q = parse(&p).ok().unwrap();
    assert_eq!(q.suffix_at(b"\x04prod\x00"), Some(5));
    assert_eq!(q.suffix_at(b"\x03web\x04prod\x00"), None);
    assert_eq!(q.suffix_at(b"\x00"), Some(10));
}

mod truncation {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn answer(rdata: RData, edns: Option<Edns>) -> Vec<u8> {
        let name = Name::from_ascii("web.c.ecs.internal.").unwrap();
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name.clone(), rdata.record_type()));
        m.add_answer(Record::from_rdata(name, 5, rdata));
        if let Some(e) = edns {
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn an_opt_with_client_subnet_is_kept() {
        let mut edns = Edns::new();
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(
                "192.0.2.0".parse().unwrap(),
                24,
                0,
            )));
        let mut a = answer(RData::A("10.0.0.1".parse().unwrap()), Some(edns));
        cut_to_truncated(&mut a);
        let m = Message::from_vec(&a).unwrap();
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty());
        let opt = m.edns.expect("OPT in, OPT out");
        assert!(
            opt.options()
                .as_ref()
                .iter()
                .any(|(code, _)| u16::from(*code) == 8)
        );
    }

    #[test]
    fn record_data_that_ends_like_an_opt_is_not_one() {
        // The last 11 bytes: 00 | 00 29 | ... | 00 00, the shape the old tail check took for OPT.
        let aaaa: std::net::Ipv6Addr = "2001:db8:0:29:102:304:506:0".parse().unwrap();
        let mut a = answer(RData::AAAA(aaaa.into()), None);
        cut_to_truncated(&mut a);
        let m = Message::from_vec(&a).unwrap();
        assert!(m.metadata.truncation);
        assert!(m.edns.is_none(), "no OPT in, no OPT out");
        assert!(m.answers.is_empty() && m.additionals.is_empty());
        assert_eq!(RecordType::AAAA, m.queries[0].query_type());
    }
}
