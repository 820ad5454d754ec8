//! The DNS zone's settings, from the binary's settings: TTLs, NS, and same-AZ-first answers.

use anyhow::Context;
use dns::ZoneConfig;

use crate::config::Settings;

/// Builds the zone configuration from settings.
pub fn zone_config(settings: &Settings) -> anyhow::Result<ZoneConfig> {
    let mut zone = ZoneConfig::new(&settings.zone)?;
    zone.ttl = settings.ttl;
    zone.negative_ttl = settings.negative_ttl;
    zone.service_ttl = settings
        .service_ttl
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    zone.max_udp_payload = settings.max_udp_payload;
    if let Some(ns) = &settings.ns_name {
        zone.ns_name = ZoneConfig::new(ns)?.origin;
    }
    zone.ns_addresses = settings.ns_addresses.clone();
    for (cidr, az) in &settings.az_subnets {
        if az.is_empty() {
            anyhow::bail!("--az-subnet {cidr}: expected CIDR=AZ");
        }
        zone.az.subnets.push((dns::Cidr::parse(cidr)?, az.clone()));
    }
    if let Some(pref) = &settings.same_az {
        zone.az.default = dns::AzPreference::parse(pref)
            .with_context(|| format!("--same-az / [dns] same_az = {pref:?}"))?;
    }
    if let Some(mode) = &settings.udp_overflow {
        zone.udp_overflow = dns::UdpOverflow::parse(mode)
            .with_context(|| format!("--udp-overflow / [dns] udp_overflow = {mode:?}"))?;
    }
    for (name, mode) in &settings.service_udp_overflow {
        let what = "--udp-overflow-service / [dns.service_udp_overflow]";
        service_key(name, what, "web.prod=fit")?;
        let mode =
            dns::UdpOverflow::parse(mode).with_context(|| format!("{what} {name:?} = {mode:?}"))?;
        zone.service_udp_overflow
            .insert(name.to_ascii_lowercase(), mode);
    }
    for (name, pref) in &settings.same_az_service {
        service_key(
            name,
            "--same-az-service / [dns.same_az_service]",
            "web.prod=first",
        )?;
        let pref = dns::AzPreference::parse(pref).with_context(|| {
            format!("--same-az-service / [dns.same_az_service] {name:?} = {pref:?}")
        })?;
        zone.az.per_service.insert(name.to_ascii_lowercase(), pref);
    }
    zone.az.no_az_names = !settings.az_names;
    zone.subsets.revisions = settings.revision_names;
    for key in &settings.subset_labels {
        model::Labels::new([(key.as_str(), "")])
            .with_context(|| format!("--subset-label / [dns] subset_labels {key:?}"))?;
        zone.subsets.labels.push(key.clone());
    }
    for cidr in &settings.client_subnet_trusted {
        zone.az.trusted_forwarders.push(dns::Cidr::parse(cidr)?);
    }
    for cidr in &settings.allow_transfer {
        zone.transfer.allow.push(dns::Cidr::parse(cidr)?);
    }
    if let Some(path) = &settings.tsig_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the TSIG key file {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = dns::TsigKey::parse(line)
                .with_context(|| format!("{} line {}", path.display(), n + 1))?;
            zone.transfer.tsig_keys.push(key);
        }
        if zone.transfer.tsig_keys.is_empty() {
            anyhow::bail!("the TSIG key file {} holds no key", path.display());
        }
    }
    for (n, line) in settings.tsig_keys.0.iter().enumerate() {
        // The error names the entry, never its secret.
        let key = dns::TsigKey::parse(line).with_context(|| {
            format!(
                "{} entry {} (NAME:ALGORITHM:BASE64)",
                crate::config::TSIG_KEYS_ENV,
                n + 1
            )
        })?;
        zone.transfer.tsig_keys.push(key);
    }
    zone.transfer.notify = settings.notify.clone();
    for reverse in &settings.reverse_zones {
        zone.add_reverse_zone(reverse)?;
    }
    if zone.az.subnets.len() > 250 {
        anyhow::bail!("at most 250 AZ subnets can be mapped");
    }
    if zone.ns_addresses.is_empty() && !settings.dns_addr.ip().is_unspecified() {
        zone.ns_addresses.push(settings.dns_addr.ip());
    }
    Ok(zone)
}

/// The services with stable ordinals, as registry keys.
pub fn ordinal_services(
    settings: &Settings,
) -> anyhow::Result<std::collections::BTreeSet<model::ServiceKey>> {
    settings
        .ordinals
        .iter()
        .map(|name| {
            service_key(name, "--ordinals / [dns] ordinals", "db.prod")?;
            let (service, cluster) = name.split_once('.').unwrap_or_default();
            let label = |l: &str| {
                model::dns_label(l).with_context(|| format!("--ordinals / [dns] ordinals {name:?}"))
            };
            Ok(model::ServiceKey {
                cluster: label(cluster)?,
                name: label(service)?,
            })
        })
        .collect()
}

/// Checks that a per-service key is `SERVICE.CLUSTER`; `what` names the setting, `example`
/// shows one.
fn service_key(name: &str, what: &str, example: &str) -> anyhow::Result<()> {
    match name.split_once('.') {
        Some((service, cluster))
            if !service.is_empty() && !cluster.is_empty() && !cluster.contains('.') =>
        {
            Ok(())
        }
        _ => anyhow::bail!("{what} {name:?}: expected SERVICE.CLUSTER (e.g. {example})"),
    }
}
