//! Zone configuration: the origin, TTLs and the SOA/NS the zone announces.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::rr::Name;

use crate::DnsError;

/// One authoritative zone. Defaults follow dns-rules: short TTLs because tasks churn.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// Zone origin, e.g. `ecs.internal.`.
    pub origin: Name,
    /// TTL of positive answers (A, AAAA, SRV, TXT), seconds.
    pub ttl: u32,
    /// TTL override per served name, keyed by `service.cluster` (lower case).
    pub service_ttl: HashMap<String, u32>,
    /// Negative-caching TTL: SOA MINIMUM, and the TTL of the SOA in negative answers.
    pub negative_ttl: u32,
    /// TTL of the SOA and NS records themselves.
    pub soa_ttl: u32,
    /// Name server name announced in NS and SOA MNAME.
    pub ns_name: Name,
    /// Addresses of `ns_name`, served when it lies inside the zone.
    pub ns_addresses: Vec<IpAddr>,
    /// SOA refresh, retry, expire (seconds), for secondaries.
    pub refresh: i32,
    /// SOA retry.
    pub retry: i32,
    /// SOA expire.
    pub expire: i32,
    /// Largest UDP payload we accept to send (EDNS); the client's smaller size wins.
    pub max_udp_payload: u16,
    /// Added to the registry generation to form the SOA serial, so a restart does not move the
    /// serial backwards (the default is the start time in Unix seconds).
    pub serial_base: u32,
}

impl ZoneConfig {
    /// A zone at `origin` with the default settings.
    pub fn new(origin: &str) -> Result<Self, DnsError> {
        let origin = parse_name(origin)?;
        let ns_name = Name::from_ascii("ns1")
            .and_then(|n| n.append_name(&origin))
            .map_err(|e| DnsError::InvalidName {
                name: format!("ns1.{origin}"),
                reason: e.to_string(),
            })?;
        let serial_base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(Self {
            origin,
            ttl: 5,
            service_ttl: HashMap::new(),
            negative_ttl: 5,
            soa_ttl: 60,
            ns_name,
            ns_addresses: Vec::new(),
            refresh: 60,
            retry: 30,
            expire: 86_400,
            max_udp_payload: 1232,
            serial_base,
        })
    }
}

/// Parses an absolute, lower-cased domain name (a missing final dot is added).
pub(crate) fn parse_name(name: &str) -> Result<Name, DnsError> {
    let mut parsed = Name::from_ascii(name).map_err(|e| DnsError::InvalidName {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    parsed.set_fqdn(true);
    Ok(parsed.to_lowercase())
}
