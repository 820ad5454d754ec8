//! Every rule of dns-rules.md, over real UDP and TCP sockets, checked with hickory-proto's
//! decoder (and dig/hickory-resolver where a stock client matters).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use testkit::{dig, query, query_edns, tcp, tcp_raw, udp, udp_raw};

use crate::fixture::rules;

const Z: &str = "ecs.internal.";

fn n(name: &str) -> String {
    format!("{name}.{Z}")
}

fn dns() -> SocketAddr {
    rules().dns
}

fn addrs(records: &[Record]) -> BTreeSet<IpAddr> {
    records
        .iter()
        .filter_map(|r| match r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

/// Asserts the header rules every answer from our zone must follow.
fn assert_authoritative(q: &Message, r: &Message) {
    assert_eq!(r.metadata.id, q.metadata.id, "ID echoed");
    assert_eq!(r.metadata.message_type, MessageType::Response);
    assert!(r.metadata.authoritative, "AA set in our zone");
    assert!(!r.metadata.recursion_available, "RA never set");
    assert_eq!(
        r.metadata.recursion_desired, q.metadata.recursion_desired,
        "RD copied"
    );
    assert_eq!(r.queries, q.queries, "question echoed");
}

#[test]
fn service_a_aaaa_and_task_names() {
    let q = query(&n("web.prod"), RecordType::A);
    let r = udp(dns(), &q);
    assert_authoritative(&q, &r);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        addrs(&r.answers),
        ips(&["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    );
    assert!(r.answers.iter().all(|a| a.ttl == 5), "default TTL 5");
    assert!(r.edns.is_none(), "no OPT in the query, none in the reply");

    let r = udp(dns(), &query(&n("web.prod"), RecordType::AAAA));
    assert_eq!(addrs(&r.answers), ips(&["fd00::3"]));

    let r = udp(dns(), &query(&n("web-3.web.prod"), RecordType::A));
    assert_eq!(addrs(&r.answers), ips(&["10.0.0.3"]));
    let r = udp(dns(), &query(&n("web-1.web.prod"), RecordType::TXT));
    let RData::TXT(txt) = &r.answers[0].data else {
        panic!("TXT expected")
    };
    let text: Vec<String> = txt
        .txt_data
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(text.contains(&"az=us-east-1a".to_string()), "{text:?}");
    assert!(text.contains(&"status=RUNNING".to_string()), "{text:?}");
}

#[test]
fn srv_primary_port_and_named_ports_with_additional_addresses() {
    let r = udp(dns(), &query_edns(&n("web.prod"), RecordType::SRV, 1232));
    assert_eq!(r.answers.len(), 3);
    let mut targets = BTreeSet::new();
    for a in &r.answers {
        let RData::SRV(srv) = &a.data else {
            panic!("SRV expected")
        };
        assert_eq!(srv.port, 8080, "primary port is the first one");
        let target = srv.target.to_ascii();
        assert!(target.ends_with(".web.prod.ecs.internal."), "{target}");
        targets.insert(target);
    }
    let extra: BTreeSet<String> = r
        .additionals
        .iter()
        .filter(|a| matches!(a.record_type(), RecordType::A | RecordType::AAAA))
        .map(|a| a.name.to_ascii())
        .collect();
    assert_eq!(
        extra, targets,
        "every SRV target's addresses are in the additional section"
    );
    assert_eq!(
        addrs(&r.additionals),
        ips(&["10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::3"])
    );

    let r = udp(dns(), &query(&n("_grpc._tcp.web.prod"), RecordType::SRV));
    let ports: BTreeSet<u16> = r
        .answers
        .iter()
        .map(|a| match &a.data {
            RData::SRV(s) => s.port,
            _ => 0,
        })
        .collect();
    assert_eq!((r.answers.len(), ports), (3, BTreeSet::from([9090])));

    let r = udp(
        dns(),
        &query(&n("_dns._udp.resolver.prod"), RecordType::SRV),
    );
    assert_eq!(r.answers.len(), 1, "UDP ports live under _udp");
    let r = udp(
        dns(),
        &query(&n("_dns._tcp.resolver.prod"), RecordType::SRV),
    );
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn nxdomain_and_nodata_carry_the_soa() {
    // NXDOMAIN
    let q = query(&n("nope.prod"), RecordType::A);
    let r = udp(dns(), &q);
    assert_authoritative(&q, &r);
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert!(r.answers.is_empty());
    let soa = &r.authorities[0];
    let RData::SOA(data) = &soa.data else {
        panic!("SOA expected")
    };
    assert_eq!(soa.name.to_ascii(), Z);
    assert_eq!(
        soa.ttl,
        5u32.min(data.minimum),
        "TTL = min(SOA TTL, MINIMUM)"
    );
    // NODATA: the name exists, the type does not; empty non-terminals too (RFC 8020).
    for (name, qtype) in [
        ("web.prod", RecordType::TXT),
        ("_tcp.web.prod", RecordType::A),
        ("prod", RecordType::A),
        ("web-1.web.prod", RecordType::SRV),
    ] {
        let r = udp(dns(), &query(&n(name), qtype));
        assert_eq!(
            r.metadata.response_code,
            ResponseCode::NoError,
            "{name} {qtype}"
        );
        assert!(r.answers.is_empty(), "{name}");
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA, "{name}");
        assert!(r.metadata.authoritative);
    }
    // Below a missing name: still NXDOMAIN.
    let r = udp(dns(), &query(&n("x.nope.prod"), RecordType::A));
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn apex_soa_and_ns() {
    let r = udp(dns(), &query(Z, RecordType::SOA));
    let RData::SOA(soa) = &r.answers[0].data else {
        panic!("SOA expected")
    };
    assert_eq!(soa.mname.to_ascii(), n("ns1"));
    assert_eq!(soa.rname.to_ascii(), n("hostmaster"));
    assert_eq!(soa.minimum, 5);
    let serial = soa.serial;
    let r = udp(dns(), &query(Z, RecordType::NS));
    let RData::NS(ns) = &r.answers[0].data else {
        panic!("NS expected")
    };
    assert_eq!(ns.0.to_ascii(), n("ns1"));
    // RFC 1034 4.3.2: the in-zone name server's address rides in the additional section.
    assert_eq!(addrs(&r.additionals), ips(&["127.0.0.1"]), "{r:?}");
    assert_eq!(r.additionals[0].name.to_ascii(), n("ns1"));
    let out = dig(dns(), &[Z, "NS"]);
    assert!(out.contains("ADDITIONAL: 2"), "A + OPT: {out}");
    let r = udp(dns(), &query(&n("ns1"), RecordType::A));
    assert_eq!(
        addrs(&r.answers),
        ips(&["127.0.0.1"]),
        "NS address follows the DNS address"
    );
    // the serial in negative answers matches the apex
    let r = udp(dns(), &query(&n("nope"), RecordType::A));
    let RData::SOA(neg) = &r.authorities[0].data else {
        panic!()
    };
    assert_eq!(neg.serial, serial);
}

#[test]
fn names_are_case_insensitive_and_the_question_is_echoed_byte_for_byte() {
    let q = query("wEb.PrOd.EcS.InTeRnAl.", RecordType::A);
    let raw = q.to_vec().unwrap();
    let reply = udp_raw(dns(), &raw, Duration::from_secs(3)).unwrap();
    let question_len = raw.len() - 12;
    assert_eq!(&reply[12..12 + question_len], &raw[12..], "0x20 case kept");
    let r = Message::from_vec(&reply).unwrap();
    assert_eq!(r.answers.len(), 3);
    // over TCP too
    let r = tcp(dns(), &q);
    assert_eq!(r.answers.len(), 3);
    assert_eq!(r.queries, q.queries);
}

#[test]
fn header_flags_rd_cd_and_z() {
    let mut q = query(&n("web.prod"), RecordType::A);
    q.metadata.recursion_desired = false;
    q.metadata.checking_disabled = true;
    let r = udp(dns(), &q);
    assert!(!r.metadata.recursion_desired);
    assert!(r.metadata.checking_disabled, "CD copied");
    assert!(!r.metadata.authentic_data);
    let mut raw = q.to_vec().unwrap();
    raw[3] |= 0x40; // Z bit set by the client
    let reply = udp_raw(dns(), &raw, Duration::from_secs(3)).unwrap();
    assert_eq!(reply[3] & 0x40, 0, "Z is zero in replies");
}

#[test]
fn outside_the_zone_is_refused() {
    for name in [
        "example.com.",
        "internal.",
        "ecs.internal.evil.com.",
        "xecs.internal.",
    ] {
        let q = query(name, RecordType::A);
        let r = udp(dns(), &q);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(r.answers.is_empty() && r.authorities.is_empty(), "{name}");
        assert!(!r.metadata.authoritative, "{name}");
        assert_eq!(r.queries, q.queries);
    }
    // CHAOS class is refused (no version.bind configured)
    let mut q = query("version.bind.", RecordType::TXT);
    q.queries[0].query_class = DNSClass::CH;
    assert_eq!(udp(dns(), &q).metadata.response_code, ResponseCode::Refused);
    let mut q = query(&n("web.prod"), RecordType::A);
    q.queries[0].query_class = DNSClass::CH;
    assert_eq!(udp(dns(), &q).metadata.response_code, ResponseCode::Refused);
}

#[test]
fn opcodes_question_counts_and_responses() {
    // Unknown opcode (STATUS) and dynamic UPDATE: NOTIMP.
    for opcode in [OpCode::Status, OpCode::Update] {
        let mut q = query(&n("web.prod"), RecordType::A);
        q.metadata.op_code = opcode;
        let r = udp(dns(), &q);
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp, "{opcode:?}");
        assert_eq!(r.metadata.op_code, opcode, "opcode echoed");
    }
    // Two questions: FORMERR.
    let mut q = query(&n("web.prod"), RecordType::A);
    q.add_query(hickory_proto::op::Query::query(
        n("big.prod").parse().unwrap(),
        RecordType::A,
    ));
    let r = udp(dns(), &q);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    assert!(r.answers.is_empty());
    // No question: FORMERR.
    let mut raw = query(&n("web.prod"), RecordType::A).to_vec().unwrap();
    raw[5] = 0;
    let reply = Message::from_vec(&udp_raw(dns(), &raw, Duration::from_secs(3)).unwrap()).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    // A response arriving as a query is dropped.
    let mut raw = query(&n("web.prod"), RecordType::A).to_vec().unwrap();
    raw[2] |= 0x80;
    assert!(udp_raw(dns(), &raw, Duration::from_millis(400)).is_none());
}

#[test]
fn edns_is_answered_with_edns_and_badvers_for_version_1() {
    let q = query_edns(&n("web.prod"), RecordType::A, 4096);
    let r = udp(dns(), &q);
    let edns = r.edns.as_ref().expect("OPT answered with OPT");
    assert_eq!(edns.max_payload(), 1232, "we advertise 1232");
    assert_eq!(edns.version(), 0);

    let mut q = query_edns(&n("web.prod"), RecordType::A, 1232);
    q.edns.as_mut().unwrap().set_version(1);
    let r = udp(dns(), &q);
    // BADVERS is extended rcode 16 (hickory names the shared value BADSIG)
    let rcode = r.metadata.response_code;
    assert_eq!((rcode.high(), rcode.low()), (1, 0), "BADVERS = 16");
    assert!(r.answers.is_empty());
    assert_eq!(r.edns.as_ref().unwrap().version(), 0);

    // Unknown options are ignored, not echoed; unknown flags are cleared, DO is echoed.
    let mut q = query_edns(&n("web.prod"), RecordType::A, 1232);
    let edns = q.edns.as_mut().unwrap();
    edns.options_mut().insert(EdnsOption::Unknown(
        EdnsCode::Unknown(65001).into(),
        vec![1, 2, 3],
    ));
    edns.set_dnssec_ok(true);
    let mut raw = q.to_vec().unwrap();
    // set an unknown EDNS flag bit (the low bit of the OPT TTL's flags field)
    // OPT ends with: flags (2), rdlen (2), one option (4 + 3)
    let flags_low = raw.len() - 7 - 2 - 1;
    raw[flags_low] |= 0x01;
    let reply = udp_raw(dns(), &raw, Duration::from_secs(3)).unwrap();
    let r = Message::from_vec(&reply).unwrap();
    assert_eq!(r.answers.len(), 3);
    let edns = r.edns.as_ref().unwrap();
    assert!(edns.flags().dnssec_ok, "DO echoed");
    assert!(
        edns.options().as_ref().is_empty(),
        "unknown options not echoed"
    );
    // our OPT is the last 11 bytes: flags are 0x8000 (DO only)
    let opt = &reply[reply.len() - 11..];
    assert_eq!(&opt[7..9], &[0x80, 0x00], "unknown flags cleared");

    // A malformed OPT (two OPT records) is FORMERR.
    let mut q = query_edns(&n("web.prod"), RecordType::A, 1232);
    let raw1 = q.to_vec().unwrap();
    let opt_bytes = raw1[raw1.len() - 11..].to_vec();
    q.edns = None;
    let mut raw = q.to_vec().unwrap();
    raw.extend_from_slice(&opt_bytes);
    raw.extend_from_slice(&opt_bytes);
    raw[11] = 2;
    let r = Message::from_vec(&udp_raw(dns(), &raw, Duration::from_secs(3)).unwrap()).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn truncation_over_udp_and_the_full_answer_over_tcp() {
    let big = n("big.prod");
    // Without EDNS: 60 A records do not fit in 512 bytes.
    let raw = query(&big, RecordType::A).to_vec().unwrap();
    let reply = udp_raw(dns(), &raw, Duration::from_secs(3)).unwrap();
    assert!(reply.len() <= 512);
    let r = Message::from_vec(&reply).unwrap();
    assert!(
        r.metadata.truncation,
        "TC set: never a silently shortened RRset"
    );
    // The whole records that fit ride along (RFC 2181 9), for clients without TCP fallback.
    let partial = addrs(&r.answers);
    assert!(partial.len() >= 20 && partial.len() < 60, "{partial:?}");
    let next = addrs(&udp(dns(), &query(&big, RecordType::A)).answers);
    assert_ne!(partial, next, "a rotated subset each time");
    let r = tcp(dns(), &query(&big, RecordType::A));
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 60, "no fixed answer cap");
    let all = addrs(&r.answers);
    assert!(partial.iter().chain(&next).all(|a| all.contains(a)));
    // With EDNS 1232 the A RRset (~1 kB) fits; the client's smaller size is honoured.
    let r = udp(dns(), &query_edns(&big, RecordType::A, 1232));
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 60);
    let r = udp(dns(), &query_edns(&big, RecordType::A, 700));
    assert!(r.metadata.truncation, "client's 700 honoured");
    // SRV for 60 tasks exceeds 1232 even when the client offers 4096 (we cap at 1232).
    let raw = query_edns(&big, RecordType::SRV, 4096).to_vec().unwrap();
    let reply = udp_raw(dns(), &raw, Duration::from_secs(3)).unwrap();
    assert!(reply.len() <= 1232);
    let r = Message::from_vec(&reply).unwrap();
    assert!(r.metadata.truncation);
    let r = tcp(dns(), &query_edns(&big, RecordType::SRV, 4096));
    assert_eq!(r.answers.len(), 60);
    assert_eq!(
        addrs(&r.additionals).len(),
        60,
        "all targets' addresses over TCP"
    );
    // Additional data that does not fit is dropped without TC (RFC 2181 9).
    let r = udp(dns(), &query(&n("web.prod"), RecordType::SRV));
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 3);
}

#[test]
fn dig_sees_truncation_and_retries_over_tcp() {
    let out = dig(dns(), &["+noedns", "+ignore", &n("big.prod"), "A"]);
    assert!(out.contains("flags: qr aa tc"), "{out}");
    let out = dig(dns(), &["+noedns", &n("big.prod"), "A"]);
    assert!(out.contains("ANSWER: 60"), "dig retried over TCP: {out}");
}

#[test]
fn kdig_gets_the_same_answers_over_udp_and_tcp() {
    let udp_out = testkit::kdig(dns(), &["+short", &n("web.prod"), "SRV"]);
    let tcp_out = testkit::kdig(dns(), &["+tcp", "+short", &n("web.prod"), "SRV"]);
    let sorted = |s: &str| s.lines().map(str::to_string).collect::<BTreeSet<_>>();
    assert_eq!(sorted(&udp_out).len(), 3, "{udp_out}");
    assert_eq!(
        sorted(&udp_out),
        sorted(&tcp_out),
        "both transports answer alike"
    );
    let out = testkit::kdig(dns(), &["+tcp", "+short", &n("big.prod"), "A"]);
    assert_eq!(out.lines().count(), 60, "{out}");
    let out = testkit::kdig(dns(), &[&n("nope.prod"), "A"]);
    assert!(out.contains("NXDOMAIN"), "{out}");
}

#[test]
fn tcp_pipelined_queries_are_all_answered() {
    let names = ["web.prod", "big.prod", "nope.prod", "mixed.prod"];
    let queries: Vec<Message> = names.iter().map(|s| query(&n(s), RecordType::A)).collect();
    let raw: Vec<Vec<u8>> = queries.iter().map(|q| q.to_vec().unwrap()).collect();
    let replies = tcp_raw(dns(), &raw);
    for (q, reply) in queries.iter().zip(replies) {
        let r = Message::from_vec(&reply).unwrap();
        assert_eq!(r.metadata.id, q.metadata.id);
        assert_eq!(r.queries, q.queries);
    }
}

#[test]
fn tcp_idle_connections_are_closed() {
    use std::io::Read;
    let server = crate::fixture::start("idle", "", |s| {
        s.tcp_idle_timeout = Duration::from_millis(300);
    });
    let mut stream = std::net::TcpStream::connect(server.dns).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1];
    let started = std::time::Instant::now();
    assert_eq!(
        stream.read(&mut buf).unwrap(),
        0,
        "server closed the idle connection"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(server.app.dns_metrics.snapshot().tcp_idle_closed, 1);
    server.rt.block_on(server.app.shutdown());
}

#[test]
fn any_is_answered_minimally() {
    let r = tcp(dns(), &query(&n("web.prod"), RecordType::ANY));
    let types: BTreeSet<RecordType> = r.answers.iter().map(Record::record_type).collect();
    assert_eq!(types.len(), 1, "one RRset: {types:?}");
    let r = udp(dns(), &query(Z, RecordType::ANY));
    assert_eq!(r.answers.len(), 1);
}

#[test]
fn zone_transfer_is_not_offered_and_update_is_not_accepted() {
    let r = tcp(dns(), &query(Z, RecordType::AXFR));
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    let r = udp(dns(), &query(Z, RecordType::IXFR));
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn answers_rotate() {
    let mut firsts = BTreeSet::new();
    for _ in 0..12 {
        let r = udp(dns(), &query(&n("web.prod"), RecordType::A));
        firsts.insert(addrs(&r.answers[..1]).into_iter().next().unwrap());
        assert_eq!(r.answers.len(), 3);
    }
    assert_eq!(firsts.len(), 3, "each address comes first sometimes");
    // SRV additional data follows the rotation and stays whole
    for _ in 0..6 {
        let r = udp(dns(), &query(&n("web.prod"), RecordType::SRV));
        let RData::SRV(first) = &r.answers[0].data else {
            panic!()
        };
        assert_eq!(r.additionals[0].name, first.target);
    }
}

#[test]
fn only_usable_tasks_are_served_and_fail_open_when_none_is() {
    let r = udp(dns(), &query(&n("mixed.prod"), RecordType::A));
    assert_eq!(addrs(&r.answers), ips(&["10.3.0.1"]));
    let r = udp(dns(), &query(&n("bad.mixed.prod"), RecordType::A));
    assert_eq!(
        (r.metadata.response_code, r.answers.len()),
        (ResponseCode::NoError, 0),
        "an unserved task's name holds no address (NODATA)"
    );
    // Its TXT says it is left out, and why.
    let r = udp(dns(), &query(&n("bad.mixed.prod"), RecordType::TXT));
    let RData::TXT(txt) = &r.answers[0].data else {
        panic!("TXT expected: {r:?}")
    };
    let text: Vec<String> = txt
        .txt_data
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert_eq!(
        text[..3],
        ["served=no", "reason=ECS health UNHEALTHY", "status=RUNNING"],
        "{text:?}"
    );
    let r = udp(dns(), &query(&n("sick.prod"), RecordType::A));
    assert_eq!(
        addrs(&r.answers),
        ips(&["10.2.0.1", "10.2.0.2"]),
        "fail open"
    );
}

#[test]
fn fail_open_can_be_turned_off() {
    let server = crate::fixture::start("closed", &crate::fixture::rules_endpoints(), |s| {
        s.fail_open = false;
    });
    let r = udp(server.dns, &query(&n("sick.prod"), RecordType::A));
    assert_eq!(
        r.metadata.response_code,
        ResponseCode::NoError,
        "the service still exists"
    );
    assert!(r.answers.is_empty());
    server.rt.block_on(server.app.shutdown());
}

#[test]
fn ttls_are_configurable_per_service() {
    let r = udp(dns(), &query(&n("slow.prod"), RecordType::A));
    assert_eq!(r.answers[0].ttl, 30);
    let r = udp(dns(), &query(&n("web.prod"), RecordType::A));
    assert_eq!(r.answers[0].ttl, 5);
}

#[test]
fn malformed_packets_never_stop_the_server() {
    // Its own server: the flood fills the socket buffer, which would drop other tests' queries.
    let server = crate::fixture::start("flood", &crate::fixture::rules_endpoints(), |_| {});
    let dns = || server.dns;
    let before = server.app.dns_metrics.snapshot();
    let good = query(&n("web.prod"), RecordType::A).to_vec().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seed = 0x5eed_u64;
    let mut rand = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..2000 {
        let packet: Vec<u8> = match i % 4 {
            // random bytes
            0 => (0..(rand() % 600) as usize).map(|_| rand() as u8).collect(),
            // a good query cut short
            1 => good[..(rand() as usize % good.len())].to_vec(),
            // a good query with bytes flipped
            2 => {
                let mut p = good.clone();
                let at = rand() as usize % p.len();
                p[at] ^= (rand() as u8) | 1;
                p
            }
            // compression pointer loops and oversize labels in the question
            _ => {
                let mut p = good[..12].to_vec();
                p.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
                p.extend((0..(rand() % 300) as usize).map(|_| 63u8));
                p
            }
        };
        let _ = sock.send_to(&packet, dns());
    }
    // the server still answers, over UDP and TCP (a query sent while the flood still fills the
    // socket buffer may be dropped by the kernel, so UDP is asked until it answers)
    let raw = query(&n("web.prod"), RecordType::A).to_vec().unwrap();
    let reply = testkit::eventually(Duration::from_secs(10), "an answer after the flood", || {
        udp_raw(dns(), &raw, Duration::from_millis(500))
    });
    assert_eq!(Message::from_vec(&reply).unwrap().answers.len(), 3);
    let r = tcp(dns(), &query(&n("web.prod"), RecordType::A));
    assert_eq!(r.answers.len(), 3);
    let after = server.app.dns_metrics.snapshot();
    let formerr =
        |m: &dns::MetricsSnapshot| m.by_rcode.iter().find(|(k, _)| *k == "FORMERR").unwrap().1;
    assert!(
        after.dropped > before.dropped,
        "short packets dropped and counted"
    );
    assert!(
        formerr(&after) > formerr(&before),
        "bad questions answered FORMERR and counted"
    );
    // garbage over TCP: a frame of junk (FORMERR), then a good query on the same connection
    let replies = tcp_raw(dns(), &[vec![0x00; 40], good.clone()]);
    let junk = Message::from_vec(&replies[0]).unwrap();
    assert_eq!(junk.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(Message::from_vec(&replies[1]).unwrap().answers.len(), 3);
}

#[test]
fn a_stock_resolver_finds_services() {
    use hickory_resolver::Resolver;
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    let server = dns();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut ns = NameServerConfig::udp_and_tcp(server.ip());
        for c in &mut ns.connections {
            c.port = server.port();
        }
        let config = ResolverConfig::from_parts(None, vec![], vec![ns]);
        let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .build()
            .unwrap();
        let srv = resolver.srv_lookup(n("_http._tcp.web.prod")).await.unwrap();
        assert_eq!(srv.answers().len(), 3);
        let ips = resolver.lookup_ip(n("big.prod")).await.unwrap();
        assert_eq!(
            ips.iter().filter(|ip| ip.is_ipv4()).count(),
            60,
            "over TCP after TC"
        );
    });
}

#[test]
fn updates_reach_dns_and_bump_the_serial() {
    let server = crate::fixture::start("serial", &crate::fixture::rules_endpoints(), |_| {});
    let serial = |s: SocketAddr| {
        let r = udp(s, &query(Z, RecordType::SOA));
        match &r.answers[0].data {
            RData::SOA(soa) => soa.serial,
            _ => panic!(),
        }
    };
    let before = serial(server.dns);
    let mut t = server.app.registry.live_tasks()[0].as_ref().clone();
    t.version += 1;
    t.addresses = Box::new(["10.9.9.9".parse().unwrap()]);
    let name = format!("{}.{}.{}.{Z}", t.id(), t.group.name(), t.cluster);
    server
        .rt
        .block_on(server.app.ingest(vec![model::Update::Upsert(t)]))
        .unwrap();
    let r = udp(server.dns, &query(&name, RecordType::A));
    assert_eq!(addrs(&r.answers), ips(&["10.9.9.9"]));
    let after = serial(server.dns);
    assert!(
        after.wrapping_sub(before) as i32 > 0,
        "serial grows (RFC 1982)"
    );
    server.rt.block_on(server.app.shutdown());
}
