//! Same-AZ-first answers: clients in a mapped subnet get their AZ's endpoints first (or only),
//! unmapped clients the normal rotation; a trusted resolver's Client Subnet speaks for its client.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, RecordType};
use testkit::{query, query_edns};

use crate::fixture::{serve_endpoints, temp_dir};

const FILE: &str = r#"
[[service]]
name = "web"
[[service.endpoint]]
id = "a1"
addresses = ["10.0.1.1"]
ports = { http = 8080 }
az = "us-east-1a"
[[service.endpoint]]
id = "b1"
addresses = ["10.0.2.1"]
ports = { http = 8080 }
az = "us-east-1b"
[[service.endpoint]]
id = "a2"
addresses = ["10.0.1.2"]
ports = { http = 8080 }
az = "us-east-1a"
[[service.endpoint]]
id = "b2"
addresses = ["10.0.2.2"]
ports = { http = 8080 }
az = "us-east-1b"
[[service.endpoint]]
id = "c1"
addresses = ["10.0.3.1"]
ports = { http = 8080 }
az = "us-east-1c"

[[service]]
name = "api"
[[service.endpoint]]
id = "a1"
addresses = ["10.0.1.11"]
az = "us-east-1a"
[[service.endpoint]]
id = "a2"
addresses = ["10.0.1.12"]
az = "us-east-1a"
[[service.endpoint]]
id = "b1"
addresses = ["10.0.2.11"]
az = "us-east-1b"
"#;

/// Sends `m` over UDP from `source` (a loopback address of the test's choosing).
fn udp_from(source: &str, server: SocketAddr, m: &Message) -> Message {
    let sock = UdpSocket::bind((source, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(&m.to_vec().unwrap(), server).unwrap();
    let mut buf = vec![0u8; 65_535];
    let n = sock.recv(&mut buf).expect("an answer");
    Message::from_vec(&buf[..n]).unwrap()
}

fn a_records(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn clients_get_their_az_first() {
    let dir = temp_dir("same-az");
    let path = dir.join("endpoints.toml");
    std::fs::write(&path, FILE).unwrap();
    let p = serve_endpoints(
        &path,
        &[
            "--az-subnet",
            "127.0.0.2/32=us-east-1a",
            "--az-subnet",
            "127.0.0.3/32=us-east-1b",
            "--same-az",
            "first",
            "--same-az-service",
            "api.static=only:2",
            "--client-subnet-trusted",
            "127.0.0.4/32",
        ],
    );
    let web = "web.static.ecs.internal.";
    let in_a: BTreeSet<&str> = ["10.0.1.1", "10.0.1.2"].into();
    let in_b: BTreeSet<&str> = ["10.0.2.1", "10.0.2.2"].into();
    let mut firsts_a = BTreeSet::new();
    let mut firsts_plain = BTreeSet::new();
    for _ in 0..40 {
        // A client in us-east-1a: both of its AZ's addresses lead, in rotation, then the rest.
        let got = a_records(&udp_from("127.0.0.2", p.dns, &query(web, RecordType::A)));
        assert_eq!(
            got.len(),
            5,
            "first, not only: every endpoint is still listed"
        );
        let lead: BTreeSet<&str> = got[..2].iter().map(String::as_str).collect();
        assert_eq!(lead, in_a, "{got:?}");
        firsts_a.insert(got[0].clone());
        // An unmapped client: the normal rotation over all five.
        let got = a_records(&udp_from("127.0.0.1", p.dns, &query(web, RecordType::A)));
        firsts_plain.insert(got[0].clone());
    }
    assert_eq!(
        firsts_a.len(),
        2,
        "same-AZ records still rotate: {firsts_a:?}"
    );
    assert!(
        firsts_plain.len() >= 4,
        "unmapped clients rotate over all: {firsts_plain:?}"
    );

    // SRV: the client's AZ at priority 0, the others at 1.
    let m = udp_from("127.0.0.3", p.dns, &query(web, RecordType::SRV));
    let mut by_priority: Vec<(u16, String)> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.priority, s.target.to_string())),
            _ => None,
        })
        .collect();
    by_priority.sort();
    let zero: Vec<&str> = by_priority
        .iter()
        .filter(|(p, _)| *p == 0)
        .map(|(_, t)| t.split('.').next().unwrap())
        .collect();
    assert_eq!(zero, vec!["b1", "b2"], "{by_priority:?}");
    assert_eq!(by_priority.len(), 5);
    assert_eq!(
        m.additionals.len(),
        5,
        "each target's address, in the same order"
    );
    let m = udp_from("127.0.0.1", p.dns, &query(web, RecordType::SRV));
    assert!(
        m.answers
            .iter()
            .all(|r| matches!(&r.data, RData::SRV(s) if s.priority == 0))
    );

    // only:2 — a client in us-east-1a (two endpoints there) sees only them; us-east-1b has one,
    // too few to carry its clients alone, so they get it first and the rest after.
    let api = "api.static.ecs.internal.";
    let mut got = a_records(&udp_from("127.0.0.2", p.dns, &query(api, RecordType::A)));
    got.sort();
    assert_eq!(got, vec!["10.0.1.11", "10.0.1.12"]);
    let got = a_records(&udp_from("127.0.0.3", p.dns, &query(api, RecordType::A)));
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], "10.0.2.11");

    // A trusted resolver's Client Subnet picks the AZ, and the answer says how much of the
    // subnet it depends on; the same option from an untrusted source is not believed.
    let with_ecs = |client: &str| {
        let mut m = query_edns(web, RecordType::A, 1232);
        let ip: IpAddr = client.parse().unwrap();
        m.edns
            .as_mut()
            .unwrap()
            .options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(ip, 32, 0)));
        m
    };
    for _ in 0..10 {
        let m = udp_from("127.0.0.4", p.dns, &with_ecs("127.0.0.3"));
        let got = a_records(&m);
        let lead: BTreeSet<&str> = got[..2].iter().map(String::as_str).collect();
        assert_eq!(lead, in_b, "{got:?}");
        let echoed = m
            .edns
            .as_ref()
            .unwrap()
            .options()
            .get(EdnsCode::Subnet)
            .cloned();
        match echoed {
            Some(EdnsOption::Subnet(s)) => assert_eq!(s.scope_prefix(), 32),
            other => panic!("Client Subnet not echoed: {other:?}"),
        }
    }
    let mut firsts = BTreeSet::new();
    for _ in 0..40 {
        let m = udp_from("127.0.0.1", p.dns, &with_ecs("127.0.0.3"));
        firsts.insert(a_records(&m)[0].clone());
        match m.edns.as_ref().unwrap().options().get(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => assert_eq!(s.scope_prefix(), 0, "not tailored"),
            other => panic!("Client Subnet not echoed: {other:?}"),
        }
    }
    assert!(
        firsts.len() >= 4,
        "an untrusted Client Subnet changes nothing: {firsts:?}"
    );
}

fn set(v: Vec<String>) -> BTreeSet<String> {
    v.into_iter().collect()
}

fn ips(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// AZ-qualified names: `AZ.S.C.zone` holds that AZ's served tasks, so the answer depends on the
/// name and survives a shared cache (unbound here; the Route 53 VPC resolver in AWS), where
/// ordering by client address sees only the resolver.
#[test]
fn az_names_answer_that_azs_tasks_through_a_shared_cache() {
    let dir = temp_dir("az-names");
    let path = dir.join("endpoints.toml");
    std::fs::write(&path, FILE).unwrap();
    let p = serve_endpoints(
        &path,
        &[
            "--az-subnet",
            "127.0.0.2/32=us-east-1a",
            "--az-subnet",
            "127.0.0.9/32=us-east-1d",
        ],
    );
    let ask = |name: &str, t: RecordType| testkit::udp(p.dns, &query(name, t));
    let a = |name: &str| set(a_records(&ask(name, RecordType::A)));
    assert_eq!(
        a("us-east-1a.web.static.ecs.internal."),
        ips(&["10.0.1.1", "10.0.1.2"])
    );
    assert_eq!(
        a("us-east-1b.web.static.ecs.internal."),
        ips(&["10.0.2.1", "10.0.2.2"])
    );
    assert_eq!(a("us-east-1c.web.static.ecs.internal."), ips(&["10.0.3.1"]));
    // SRV, by port too, with the targets' addresses; targets are the tasks' own names.
    let srv = ask(
        "_http._tcp.us-east-1b.web.static.ecs.internal.",
        RecordType::SRV,
    );
    let targets: BTreeSet<String> = srv
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some(s.target.to_ascii()),
            _ => None,
        })
        .collect();
    assert_eq!(
        targets,
        [
            "b1.web.static.ecs.internal.".to_string(),
            "b2.web.static.ecs.internal.".to_string()
        ]
        .into()
    );
    assert_eq!(
        set(a_records_of(&srv.additionals)),
        ips(&["10.0.2.1", "10.0.2.2"])
    );
    // An AZ the zone maps clients to but with no task of web: every served task, flagged.
    assert_eq!(a("us-east-1d.web.static.ecs.internal.").len(), 5);
    let txt = testkit::dig(
        p.dns,
        &["+short", "us-east-1d.web.static.ecs.internal", "TXT"],
    );
    assert_eq!(
        txt.trim(),
        "\"az=us-east-1d\" \"served=0\" \"fallback=all\""
    );
    let txt = testkit::dig(
        p.dns,
        &["+short", "us-east-1a.web.static.ecs.internal", "TXT"],
    );
    assert_eq!(txt.trim(), "\"az=us-east-1a\" \"served=2\"");
    // An AZ neither the service nor the zone knows has no name.
    let none = ask("us-east-1c.api.static.ecs.internal.", RecordType::A);
    assert_eq!(
        none.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain
    );

    // Through a shared cache: unbound asks from its own address, yet each AZ name keeps its
    // AZ's tasks for every client behind it.
    let unbound = testkit::Unbound::start(&dir.join("unbound"), "ecs.internal", p.dns);
    for _ in 0..3 {
        for (az, want) in [
            ("us-east-1a", ips(&["10.0.1.1", "10.0.1.2"])),
            ("us-east-1b", ips(&["10.0.2.1", "10.0.2.2"])),
        ] {
            let name = format!("{az}.web.static.ecs.internal.");
            let got = set(a_records(&udp_from(
                "127.0.0.2",
                unbound.addr,
                &query(&name, RecordType::A),
            )));
            assert_eq!(got, want, "{name} through unbound");
        }
    }

    // Off: no AZ names.
    let off = serve_endpoints(&path, &["--no-az-names"]);
    let r = testkit::udp(
        off.dns,
        &query("us-east-1a.web.static.ecs.internal.", RecordType::A),
    );
    assert_eq!(
        r.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain
    );
}

fn a_records_of(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}
