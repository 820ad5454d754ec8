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
    /// What a UDP answer that does not fit carries: see [`UdpOverflow`].
    pub udp_overflow: UdpOverflow,
    /// [`ZoneConfig::udp_overflow`] per service, keyed by `service.cluster` (lower case).
    pub service_udp_overflow: HashMap<String, UdpOverflow>,
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
    /// Same-AZ-first answers: which client subnets lie in which AZ, and where it applies.
    pub az: AzConfig,
    /// Zone transfer to secondaries: who may transfer, with which keys, whom to notify.
    pub transfer: TransferConfig,
    /// Reverse zones (e.g. `10.in-addr.arpa.`) served alongside: PTR records for the served
    /// tasks' addresses that fall inside them, pointing at the task names.
    pub reverse_zones: Vec<Name>,
    /// Subset names: by task definition revision, and by the values of declared labels.
    pub subsets: SubsetConfig,
}

/// What a UDP answer whose RRset does not fit in the client's payload size carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UdpOverflow {
    /// The whole records that fit, rotated, with TC=1 (RFC 2181 §9): RFC clients retry over
    /// TCP and get everything; clients without TCP fallback (musl) still get addresses.
    #[default]
    Truncate,
    /// The rotated records that fit (SRV with their targets' addresses), without TC: for
    /// clients that reject truncated answers (HAProxy's UDP resolver). Caching resolvers then
    /// hold that subset for the TTL, so it is opt-in.
    Fit,
}

impl UdpOverflow {
    /// Parses `truncate` or `fit`.
    pub fn parse(text: &str) -> Result<Self, DnsError> {
        match text {
            "truncate" => Ok(Self::Truncate),
            "fit" => Ok(Self::Fit),
            other => Err(DnsError::Config(format!(
                "udp overflow {other:?}: expected \"truncate\" (TC=1 with the records that \
                 fit) or \"fit\" (the records that fit, without TC)"
            ))),
        }
    }
}

/// Which subsets of a service get names (see the `azname` module).
#[derive(Debug, Clone, Default)]
pub struct SubsetConfig {
    /// `rev-N.S.C.zone`: the tasks of task definition revision N.
    pub revisions: bool,
    /// Label keys whose values name subsets: `V.S.C.zone` for the tasks labelled `K=V`.
    pub labels: Vec<String>,
}

/// Zone transfer (AXFR/IXFR over TCP) and NOTIFY. Nobody may transfer by default.
#[derive(Debug, Clone, Default)]
pub struct TransferConfig {
    /// Client prefixes allowed to transfer; everyone else is REFUSED.
    pub allow: Vec<Cidr>,
    /// When any is configured, transfers must also be signed with one of them (TSIG).
    pub tsig_keys: Vec<crate::TsigKey>,
    /// Secondaries sent a NOTIFY on every change (coalesced, retried).
    pub notify: Vec<std::net::SocketAddr>,
}

/// How a service's A/AAAA/SRV answers follow the asking client's availability zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AzPreference {
    /// One rotation for everyone.
    #[default]
    Off,
    /// Endpoints in the client's AZ first (SRV: priority 0 for them, 1 for the others).
    First,
    /// Only endpoints in the client's AZ when at least `min` of them are served; otherwise as
    /// [`AzPreference::First`].
    Only {
        /// Fewest same-AZ endpoints that may carry the client alone.
        min: u16,
    },
}

impl AzPreference {
    /// Parses `off`, `first`, or `only:N`.
    pub fn parse(s: &str) -> Result<Self, DnsError> {
        let bad = || DnsError::Config(format!("{s:?} is not off, first, or only:N"));
        match s.trim() {
            "off" => Ok(Self::Off),
            "first" => Ok(Self::First),
            other => {
                let min = other.strip_prefix("only:").ok_or_else(bad)?;
                let min: u16 = min.parse().map_err(|_| bad())?;
                if min == 0 {
                    return Err(bad());
                }
                Ok(Self::Only { min })
            }
        }
    }
}

/// An IPv4 or IPv6 prefix, `10.0.0.0/24` or `fd00::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address (host bits are ignored).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/LEN`, or a bare address as a host prefix.
    pub fn parse(s: &str) -> Result<Self, DnsError> {
        let bad = |why: &str| DnsError::Config(format!("{s:?} is not a CIDR prefix: {why}"));
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("bad address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| bad("bad length"))?,
            None => max,
        };
        if prefix > max {
            return Err(bad("length too long"));
        }
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` lies inside (IPv4-mapped IPv6 clients count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Same-AZ-first settings of a zone. Off unless subnets are mapped and a preference is set.
#[derive(Debug, Clone, Default)]
pub struct AzConfig {
    /// Client subnets and the AZ each lies in; the longest matching prefix wins.
    pub subnets: Vec<(Cidr, String)>,
    /// The zone-wide preference.
    pub default: AzPreference,
    /// Overrides per served name, keyed by `service.cluster` (lower case).
    pub per_service: HashMap<String, AzPreference>,
    /// Resolvers whose EDNS Client Subnet option (RFC 7871) is believed: for queries from them
    /// the option's subnet, not the resolver's address, picks the AZ.
    pub trusted_forwarders: Vec<Cidr>,
    /// Serve AZ-qualified names (`AZ.S.C.zone`: that AZ's served tasks), which work through
    /// shared caches where ordering by client address cannot. Off: no such names.
    pub no_az_names: bool,
}

impl AzConfig {
    /// The index of an AZ among the mapped ones (1-based, in order of first mention); 0 for an
    /// AZ no client subnet lies in (it can never be a client's).
    pub fn index_of(&self, az: Option<&str>) -> u8 {
        let Some(az) = az else { return 0 };
        let mut seen: Vec<&str> = Vec::new();
        for (_, name) in &self.subnets {
            if !seen.contains(&name.as_str()) {
                seen.push(name);
            }
            if name.eq_ignore_ascii_case(az) {
                return u8::try_from(seen.len()).unwrap_or(0);
            }
        }
        0
    }

    /// The AZ index of a client address and the length of the mapped prefix that placed it
    /// (the longest that contains it); `None` for an unmapped client.
    pub fn client_match(&self, ip: IpAddr) -> Option<(u8, u8)> {
        self.client_subnet(ip)
            .map(|(net, az)| (self.index_of(Some(az)), net.prefix))
            .filter(|(i, _)| *i != 0)
    }

    /// The mapped subnet that places a client address (the longest that contains it), and
    /// its AZ.
    pub fn client_subnet(&self, ip: IpAddr) -> Option<&(Cidr, String)> {
        self.subnets
            .iter()
            .filter(|(net, _)| net.contains(ip))
            .max_by_key(|(net, _)| net.prefix)
    }

    /// Whether any name can follow the client's AZ (checked once per query before the lookup).
    pub fn enabled(&self) -> bool {
        !self.subnets.is_empty()
            && (self.default != AzPreference::Off
                || self.per_service.values().any(|p| *p != AzPreference::Off))
    }

    /// The preference of one served name.
    pub fn preference(&self, service: &str) -> AzPreference {
        self.per_service
            .get(service)
            .copied()
            .unwrap_or(self.default)
    }
}

impl ZoneConfig {
    /// Adds a reverse zone (`10.in-addr.arpa.`, `0.0.d.f.ip6.arpa.`) to serve PTR records in.
    pub fn add_reverse_zone(&mut self, name: &str) -> Result<(), DnsError> {
        let zone = parse_reverse_zone(name)?;
        if !self.reverse_zones.contains(&zone) {
            self.reverse_zones.push(zone);
        }
        Ok(())
    }

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
            udp_overflow: UdpOverflow::Truncate,
            service_udp_overflow: HashMap::new(),
            negative_ttl: 5,
            soa_ttl: 60,
            ns_name,
            ns_addresses: Vec::new(),
            refresh: 60,
            retry: 30,
            expire: 86_400,
            max_udp_payload: 1232,
            serial_base,
            az: AzConfig::default(),
            transfer: TransferConfig::default(),
            reverse_zones: Vec::new(),
            subsets: SubsetConfig {
                revisions: true,
                labels: Vec::new(),
            },
        })
    }
}

/// Parses a reverse zone: a name under `in-addr.arpa.` or `ip6.arpa.`.
pub(crate) fn parse_reverse_zone(name: &str) -> Result<Name, DnsError> {
    let parsed = parse_name(name)?;
    let v4 = parse_name("in-addr.arpa.")?;
    let v6 = parse_name("ip6.arpa.")?;
    if v4.zone_of(&parsed) || v6.zone_of(&parsed) {
        Ok(parsed)
    } else {
        Err(DnsError::Config(format!(
            "{name:?} is not a reverse zone (under in-addr.arpa. or ip6.arpa.)"
        )))
    }
}

/// The reverse name of an address: `4.3.2.1.in-addr.arpa.`, or nibbles under `ip6.arpa.`.
pub(crate) fn reverse_name(ip: IpAddr) -> Result<Name, DnsError> {
    let text = match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(72);
            for byte in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", byte & 0x0F, byte >> 4));
            }
            s.push_str("ip6.arpa.");
            s
        }
    };
    parse_name(&text)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_preferences() {
        let net = Cidr::parse("10.0.64.0/18").unwrap();
        assert!(net.contains("10.0.100.7".parse().unwrap()));
        assert!(!net.contains("10.0.128.1".parse().unwrap()));
        assert!(
            net.contains("::ffff:10.0.64.1".parse().unwrap()),
            "v4-mapped client"
        );
        assert!(!net.contains("fd00::1".parse().unwrap()));
        let v6 = Cidr::parse("fd00:1::/32").unwrap();
        assert!(v6.contains("fd00:1:ffff::9".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert_eq!(Cidr::parse("10.1.2.3").unwrap().prefix, 32);
        for bad in ["10.0.0.0/33", "nope/8", "10.0.0.0/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            AzPreference::parse("only:2").unwrap(),
            AzPreference::Only { min: 2 }
        );
        assert_eq!(AzPreference::parse("first").unwrap(), AzPreference::First);
        assert!(AzPreference::parse("only:0").is_err());
        assert!(AzPreference::parse("sometimes").is_err());
    }
}
