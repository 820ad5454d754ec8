//! The benchmark data set: N services x 10 tasks, written twice with identical records (a static
//! endpoints file for ecsdns, an RFC 1035 zone file for Knot and NSD), and the query mix.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// Zone served by every server.
pub(crate) const ZONE: &str = "ecs.internal.";
/// Cluster label of the benchmark services.
pub(crate) const CLUSTER: &str = "bench";
/// Tasks per service.
pub(crate) const TASKS: usize = 10;

/// A generated data set.
pub(crate) struct DataSet {
    /// Number of services.
    pub(crate) services: usize,
}

impl DataSet {
    /// `endpoints` endpoints, 10 per service.
    pub(crate) fn with_endpoints(endpoints: usize) -> Self {
        Self {
            services: (endpoints / TASKS).max(1),
        }
    }

    /// Endpoints in the set.
    pub(crate) fn endpoints(&self) -> usize {
        self.services * TASKS
    }

    fn service(i: usize) -> String {
        format!("svc-{i:05}")
    }

    fn task(j: usize) -> String {
        format!("t{j:02}")
    }

    fn address(i: usize, j: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, (i / 250) as u8, (i % 250) as u8, (j + 1) as u8)
    }

    /// The static endpoints file (TOML) for ecsdns.
    pub(crate) fn endpoints_toml(&self) -> String {
        let mut out = String::with_capacity(self.services * 900);
        for i in 0..self.services {
            let _ = writeln!(
                out,
                "[[service]]\ncluster = \"{CLUSTER}\"\nname = \"{}\"",
                Self::service(i)
            );
            for j in 0..TASKS {
                let _ = writeln!(
                    out,
                    "[[service.endpoint]]\nid = \"{}\"\naddresses = [\"{}\"]\nports = {{ http = 8080 }}",
                    Self::task(j),
                    Self::address(i, j)
                );
            }
        }
        out
    }

    /// The same records as a zone file (TTL 5, SOA and NS like ecsdns's defaults).
    pub(crate) fn zone_file(&self) -> String {
        let mut out = String::with_capacity(self.services * 1600);
        let _ = writeln!(out, "$ORIGIN {ZONE}\n$TTL 5");
        let _ = writeln!(out, "@ 60 IN SOA ns1 hostmaster 1 60 30 86400 5");
        let _ = writeln!(out, "@ 60 IN NS ns1\nns1 60 IN A 127.0.0.1");
        for i in 0..self.services {
            let s = format!("{}.{CLUSTER}", Self::service(i));
            for j in 0..TASKS {
                let t = Self::task(j);
                let ip = Self::address(i, j);
                let _ = writeln!(out, "{s} IN A {ip}");
                let _ = writeln!(out, "{s} IN SRV 0 1 8080 {t}.{s}");
                let _ = writeln!(out, "_http._tcp.{s} IN SRV 0 1 8080 {t}.{s}");
                let _ = writeln!(out, "{t}.{s} IN A {ip}");
            }
        }
        out
    }

    /// The query mix: 60% A and 30% SRV on service names, 10% NXDOMAIN; EDNS 1232 like a
    /// modern resolver, or no EDNS like many stub resolvers (`edns` false: 512-byte answers).
    /// Deterministic.
    pub(crate) fn queries(&self, count: usize, edns: bool) -> Vec<Vec<u8>> {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        (0..count)
            .map(|k| {
                let i = next() as usize % self.services;
                let (name, qtype) = match k % 10 {
                    0..=5 => (
                        format!("{}.{CLUSTER}.{ZONE}", Self::service(i)),
                        RecordType::A,
                    ),
                    6..=8 => (
                        format!("{}.{CLUSTER}.{ZONE}", Self::service(i)),
                        RecordType::SRV,
                    ),
                    _ => (format!("nx-{i}.{CLUSTER}.{ZONE}"), RecordType::A),
                };
                let mut q = query(&name, qtype, k as u16);
                if !edns {
                    // Drop the OPT record (the last 11 bytes) and its count.
                    q.truncate(q.len() - 11);
                    q[10..12].copy_from_slice(&0u16.to_be_bytes());
                }
                q
            })
            .collect()
    }

    /// Names and types whose answers every server must agree on.
    pub(crate) fn sample(&self) -> Vec<(String, RecordType)> {
        let step = (self.services / 20).max(1);
        let mut out = Vec::new();
        for i in (0..self.services).step_by(step) {
            let s = format!("{}.{CLUSTER}.{ZONE}", Self::service(i));
            out.push((s.clone(), RecordType::A));
            out.push((s.clone(), RecordType::SRV));
            out.push((format!("_http._tcp.{s}"), RecordType::SRV));
            out.push((format!("t03.{s}"), RecordType::A));
            out.push((format!("nx-{i}.{CLUSTER}.{ZONE}"), RecordType::A));
            out.push((s, RecordType::TXT));
        }
        out
    }
}

/// A query with EDNS (payload 1232) and RD clear.
pub(crate) fn query(name: &str, qtype: RecordType, id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    if let Ok(name) = Name::from_ascii(name) {
        m.add_query(Query::query(name, qtype));
    }
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    m.to_vec().unwrap_or_default()
}
