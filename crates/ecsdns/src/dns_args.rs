//! Options `serve` and `demo` share: where and how DNS is served.

use std::net::{IpAddr, SocketAddr};

use clap::Args;

use crate::config::Settings;

/// Options shared by `serve` and `demo`.
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// Address to serve DNS on, UDP and TCP [default: 127.0.0.1:5353].
    #[arg(long, env = "ECSDNS_DNS_ADDR")]
    pub dns_addr: Option<SocketAddr>,
    /// Address to serve DNS over TLS on (RFC 7858; port 853 usually) [default: none].
    #[arg(long, env = "ECSDNS_DOT_ADDR", value_name = "ADDR:PORT")]
    pub dot_addr: Option<SocketAddr>,
    /// Address to serve DNS over HTTPS on (RFC 8484, HTTP/2, path /dns-query) [default: none].
    #[arg(long, env = "ECSDNS_DOH_ADDR", value_name = "ADDR:PORT")]
    pub doh_addr: Option<SocketAddr>,
    /// PEM certificate chain for DoT and DoH; a new one is picked up when the file changes.
    #[arg(long, env = "ECSDNS_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "ECSDNS_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Zone to be authoritative for [default: ecs.internal.].
    #[arg(long, env = "ECSDNS_ZONE")]
    pub zone: Option<String>,
    /// TTL of positive answers, seconds [default: 5].
    #[arg(long, env = "ECSDNS_TTL")]
    pub ttl: Option<u32>,
    /// TTL of negative answers (SOA MINIMUM), seconds [default: 5].
    #[arg(long, env = "ECSDNS_NEGATIVE_TTL")]
    pub negative_ttl: Option<u32>,
    /// Do not serve unhealthy tasks when a service has no healthy one (default: serve them).
    #[arg(long)]
    pub no_fail_open: bool,
    /// Name server name for NS and SOA [default: ns1.<zone>].
    #[arg(long, env = "ECSDNS_NS_NAME")]
    pub ns_name: Option<String>,
    /// Address of the name server name (repeatable) [default: the DNS address, if specific].
    #[arg(long = "ns-address")]
    pub ns_addresses: Vec<IpAddr>,
    /// Threads answering UDP [default: one per core].
    #[arg(long, env = "ECSDNS_UDP_WORKERS")]
    pub udp_workers: Option<usize>,
    /// A client subnet and the AZ it lies in, for same-AZ-first answers (repeatable).
    #[arg(long = "az-subnet", value_name = "CIDR=AZ")]
    pub az_subnets: Vec<String>,
    /// Order A/AAAA/SRV answers by the client's AZ: off, first, or only:N (only the client's
    /// AZ when at least N of its endpoints are served) [default: off].
    #[arg(long, value_name = "PREF", env = "ECSDNS_SAME_AZ")]
    pub same_az: Option<String>,
    /// Same-AZ preference of one service, SERVICE.CLUSTER=PREF (repeatable).
    #[arg(long = "same-az-service", value_name = "NAME=PREF")]
    pub same_az_service: Vec<String>,
    /// What a UDP answer that does not fit carries: truncate (the records that fit, TC=1, so
    /// clients retry over TCP) or fit (the records that fit without TC, for clients that
    /// reject truncation, e.g. HAProxy over UDP) [default: truncate].
    #[arg(long, value_name = "MODE", env = "ECSDNS_UDP_OVERFLOW")]
    pub udp_overflow: Option<String>,
    /// Oversized UDP answers of one service, SERVICE.CLUSTER=MODE (repeatable).
    #[arg(long = "udp-overflow-service", value_name = "NAME=MODE")]
    pub udp_overflow_service: Vec<String>,
    /// Resolver whose EDNS Client Subnet option picks the AZ for it (CIDR, repeatable).
    #[arg(long = "client-subnet-trusted", value_name = "CIDR")]
    pub client_subnet_trusted: Vec<String>,
    /// Serve no AZ-qualified names (`AZ.S.C.zone`, the service's tasks in that AZ).
    #[arg(long, env = "ECSDNS_NO_AZ_NAMES")]
    pub no_az_names: bool,
    /// A task label whose values name subsets of each service: `--subset-label version` serves
    /// `v2.S.C.zone` for the tasks labelled `version=v2` (repeatable).
    #[arg(long = "subset-label", value_name = "KEY")]
    pub subset_labels: Vec<String>,
    /// A service whose tasks get stable ordinals, SERVICE.CLUSTER (repeatable): `0.S.C.zone`,
    /// `1.S.C.zone`, ..., each number kept by its task and reused, lowest first, by replacements.
    #[arg(long = "ordinals", value_name = "SERVICE.CLUSTER")]
    pub ordinals: Vec<String>,
    /// Serve no revision names (`rev-N.S.C.zone`, the tasks of task definition revision N).
    #[arg(long, env = "ECSDNS_NO_REVISION_NAMES")]
    pub no_revision_names: bool,
    /// Client prefix allowed to transfer the zone (AXFR/IXFR over TCP; repeatable)
    /// [default: nobody].
    #[arg(long = "allow-transfer", value_name = "CIDR")]
    pub allow_transfer: Vec<String>,
    /// File of TSIG keys, one `NAME:hmac-sha256:BASE64` per line: transfers must then be signed
    /// with one of them.
    #[arg(long, value_name = "FILE", env = "ECSDNS_TSIG_KEY_FILE")]
    pub tsig_key_file: Option<std::path::PathBuf>,
    /// Secondary to send NOTIFY to on every change (repeatable).
    #[arg(long = "notify", value_name = "ADDR:PORT")]
    pub notify: Vec<SocketAddr>,
    /// UDP response rate limit per client prefix (/24, /56), answers per second; 0: off
    /// [default: 0].
    #[arg(long, value_name = "N", env = "ECSDNS_RRL_RATE")]
    pub rrl_rate: Option<u32>,
    /// Every Nth rate-limited answer is sent truncated (TC=1) rather than dropped, so real
    /// clients retry over TCP; 0 drops all [default: 2].
    #[arg(long, value_name = "N")]
    pub rrl_slip: Option<u32>,
    /// Reverse zone to serve PTR records in for task addresses, e.g. 10.in-addr.arpa.
    /// (repeatable).
    #[arg(long = "reverse-zone", value_name = "ZONE")]
    pub reverse_zones: Vec<String>,
}

impl DnsArgs {
    pub(crate) fn apply(&self, mut s: Settings) -> Settings {
        if let Some(v) = self.dns_addr {
            s.dns_addr = v;
        }
        s.tls.dot_addr = self.dot_addr.or(s.tls.dot_addr);
        s.tls.doh_addr = self.doh_addr.or(s.tls.doh_addr);
        s.tls.cert_file = self.tls_cert.clone().or(s.tls.cert_file.take());
        s.tls.key_file = self.tls_key.clone().or(s.tls.key_file.take());
        if let Some(v) = &self.zone {
            s.zone = v.clone();
        }
        if let Some(v) = self.ttl {
            s.ttl = v;
        }
        if let Some(v) = self.negative_ttl {
            s.negative_ttl = v;
        }
        if self.no_fail_open {
            s.fail_open = false;
        }
        if self.ns_name.is_some() {
            s.ns_name = self.ns_name.clone();
        }
        if !self.ns_addresses.is_empty() {
            s.ns_addresses = self.ns_addresses.clone();
        }
        if let Some(v) = self.udp_workers {
            s.udp_workers = v;
        }
        for pair in &self.az_subnets {
            let (cidr, az) = pair.split_once('=').unwrap_or((pair, ""));
            s.az_subnets.push((cidr.to_string(), az.to_string()));
        }
        if self.same_az.is_some() {
            s.same_az = self.same_az.clone();
        }
        for pair in &self.same_az_service {
            let (name, pref) = pair.split_once('=').unwrap_or((pair, ""));
            s.same_az_service
                .insert(name.to_ascii_lowercase(), pref.to_string());
        }
        s.udp_overflow = self.udp_overflow.clone().or(s.udp_overflow.take());
        for pair in &self.udp_overflow_service {
            let (name, mode) = pair.split_once('=').unwrap_or((pair, ""));
            s.service_udp_overflow
                .insert(name.to_ascii_lowercase(), mode.to_string());
        }
        s.client_subnet_trusted
            .extend(self.client_subnet_trusted.iter().cloned());
        if self.no_az_names {
            s.az_names = false;
        }
        s.subset_labels.extend(self.subset_labels.iter().cloned());
        s.ordinals.extend(self.ordinals.iter().cloned());
        if self.no_revision_names {
            s.revision_names = false;
        }
        s.allow_transfer.extend(self.allow_transfer.iter().cloned());
        if self.tsig_key_file.is_some() {
            s.tsig_key_file = self.tsig_key_file.clone();
        }
        s.notify.extend(self.notify.iter().copied());
        s.reverse_zones.extend(self.reverse_zones.iter().cloned());
        if let Some(v) = self.rrl_rate {
            s.rrl.responses_per_second = v;
        }
        if let Some(v) = self.rrl_slip {
            s.rrl.slip = v;
        }
        s
    }
}
