//! Configuration: defaults, file, flags and their errors.

use super::*;

#[test]
fn durations() {
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
    assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
    assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
    assert!(parse_duration("5 parsecs").is_err());
    assert!(parse_duration("s").is_err());
}

#[test]
fn file_overrides_defaults() {
    let file: FileConfig = toml::from_str(
        r#"
        endpoints = "e.toml"
        [dns]
        addr = "127.0.0.1:53"
        ttl = 30
        tcp_idle_timeout = "3s"
        [dns.service_ttl]
        "web.prod" = 60
        [registry]
        fail_open = false
        "#,
    )
    .unwrap();
    let s = Settings::default().with_file(file).unwrap();
    assert_eq!(s.dns_addr.port(), 53);
    assert_eq!(s.ttl, 30);
    assert_eq!(s.negative_ttl, 5);
    assert_eq!(s.tcp_idle_timeout, Duration::from_secs(3));
    assert_eq!(s.service_ttl["web.prod"], 60);
    assert!(!s.fail_open);
    assert!(toml::from_str::<FileConfig>("[dns]\nbogus = 1").is_err());
    assert_eq!(s.http_addr, Some(SocketAddr::from(([127, 0, 0, 1], 8053))));
}

#[test]
fn api_section() {
    let file: FileConfig =
        toml::from_str("[api]\naddr = \"0.0.0.0:9000\"\ntoken_file = \"t\"\ndrain_margin = \"2s\"")
            .unwrap();
    assert_eq!(Settings::default().drain_margin, Duration::from_secs(1));
    let s = Settings::default().with_file(file).unwrap();
    assert_eq!(s.http_addr.map(|a| a.port()), Some(9000));
    assert_eq!(s.api_token_file, Some(PathBuf::from("t")));
    assert_eq!(s.drain_margin, Duration::from_secs(2));
    let off: FileConfig = toml::from_str("[api]\naddr = \"off\"").unwrap();
    assert_eq!(Settings::default().with_file(off).unwrap().http_addr, None);
    let bad: FileConfig = toml::from_str("[api]\naddr = \"nowhere\"").unwrap();
    assert!(Settings::default().with_file(bad).is_err());
}

#[test]
fn clusters_and_aliases() {
    let c = parse_cluster("Prod-Cluster").unwrap();
    assert_eq!(
        (c.name.as_str(), c.label.as_str()),
        ("Prod-Cluster", "prod-cluster")
    );
    let c = parse_cluster("arn:aws:ecs:us-east-1:1:cluster/big=p").unwrap();
    assert_eq!(c.label, "p");
    let c = parse_cluster("arn:aws:ecs:us-east-1:1:cluster/big").unwrap();
    assert_eq!(c.label, "big");
    assert!(parse_cluster("x=not a label").is_err());
    let c = parse_cluster(
        "arn:aws:ecs:eu-west-1:111111111111:cluster/pay=pay;role=arn:aws:iam::111111111111:role/r;\
         queue=https://sqs.eu-west-1.amazonaws.com/111111111111/q",
    )
    .unwrap();
    assert_eq!(c.label, "pay");
    assert_eq!(
        c.role_arn.as_deref(),
        Some("arn:aws:iam::111111111111:role/r")
    );
    assert_eq!(
        c.sqs_queue_url.as_deref(),
        Some("https://sqs.eu-west-1.amazonaws.com/111111111111/q")
    );
    let err = parse_cluster("prod;region=eu-west-1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("role=ARN or queue=URL"), "{err}");
    assert!(parse_cluster("").is_err());
    let file: FileConfig = toml::from_str(
        r#"
        [ecs]
        sqs_queue_url = "http://q"
        reconcile_interval = "5m"
        [[ecs.cluster]]
        name = "prod"
        [[ecs.cluster]]
        name = "other"
        alias = "o"
        role_arn = "arn:aws:iam::2:role/ecsdns"
        "#,
    )
    .unwrap();
    let s = Settings::default().with_file(file).unwrap();
    assert_eq!(s.ecs.clusters.len(), 2);
    assert_eq!(s.ecs.clusters[1].label, "o");
    assert_eq!(s.ecs.reconcile_interval, Duration::from_secs(300));
}

#[test]
fn udp_overflow_zone_wide_and_per_service() {
    let file: FileConfig = toml::from_str(
        r#"
        [dns]
        udp_overflow = "truncate"
        [dns.service_udp_overflow]
        "Fleet.demo" = "fit"
        "#,
    )
    .unwrap();
    let s = Settings::default().with_file(file).unwrap();
    let zone = crate::zone::zone_config(&s).unwrap();
    assert_eq!(zone.udp_overflow, dns::UdpOverflow::Truncate);
    assert_eq!(
        zone.service_udp_overflow["fleet.demo"],
        dns::UdpOverflow::Fit
    );
    for (key, mode, says) in [
        ("fleet.demo", "fits", "expected \"truncate\""),
        ("fleet", "fit", "expected SERVICE.CLUSTER"),
    ] {
        let mut bad = Settings::default();
        bad.service_udp_overflow.insert(key.into(), mode.into());
        let e = format!("{:#}", crate::zone::zone_config(&bad).unwrap_err());
        assert!(
            e.contains("service_udp_overflow") && e.contains(says),
            "{e}"
        );
    }
}
