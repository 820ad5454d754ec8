//! Rolling deploys through a caching resolver (unbound): without `drain-wait` clients are sent
//! to stopped tasks; with it, not one request fails. The static file and the ECS path (SQS
//! events through moto) both, and a one-task service never answers empty.

use std::time::Duration;

use testkit::deploy::{Report, Scenario, Source, run};
use testkit::ecsdns_bin;

use crate::fixture::temp_dir;

fn scenario(source: Source, drain_wait: bool, tasks: usize) -> Scenario {
    Scenario {
        source,
        drain_wait,
        tasks,
        rounds: 1,
        ttl: 2,
        margin: Duration::from_millis(500),
        rate: 100,
        settle: Duration::from_secs(1),
        ecsdns: vec![ecsdns_bin().into()],
    }
}

fn show(name: &str, r: &Report) {
    println!(
        "{name}: {} requests, {} failed {:?}, deploy {:.1}s, stops {:?}",
        r.requests,
        r.failed(),
        r.failures,
        r.deploy.as_secs_f64(),
        r.stops
    );
}

#[test]
fn rolling_deploy_through_unbound_loses_nothing_with_drain_wait() {
    let dir = temp_dir("rolling");
    let without = run(&scenario(Source::File, false, 2), &dir.join("plain"));
    show("file, no drain-wait", &without);
    let with = run(&scenario(Source::File, true, 2), &dir.join("drain"));
    show("file, drain-wait", &with);
    // The run without the wrapper must show the problem, or this test proves nothing.
    assert!(
        without.failures.get("refused").copied().unwrap_or(0) > 0,
        "{without:?}"
    );
    assert_eq!(with.failed(), 0, "{with:?}");
    assert!(with.requests >= 500, "{with:?}");
    // Each old task was held TTL + 1 s + margin after it left DNS, and not much longer.
    for stop in &with.stops {
        assert!(
            *stop >= Duration::from_millis(3_400) && *stop < Duration::from_millis(5_000),
            "{with:?}"
        );
    }
    assert_eq!(without.empty(), 0, "{without:?}");
}

#[test]
fn rolling_deploy_of_a_one_task_service_over_sqs_events() {
    let dir = temp_dir("rolling-ecs");
    let mut s = scenario(Source::Ecs, true, 1);
    s.rounds = 2;
    let r = run(&s, &dir);
    show("ecs, one task, drain-wait", &r);
    assert_eq!(r.failed(), 0, "never empty, never refused: {r:?}");
    assert_eq!(r.stops.len(), 2);
}
