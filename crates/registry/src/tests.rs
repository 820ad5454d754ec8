//! Registry unit and property tests.

use super::*;
use model::{ContainerInstance, Health, InstanceStatus, TaskGroup, TaskStatus};
use proptest::prelude::*;

fn task(id: &str, group: &str, version: u64) -> Task {
    Task {
        arn: format!("arn:aws:ecs:us-east-1:1:task/c/{id}").into(),
        cluster: "c".into(),
        group: TaskGroup::parse(group),
        version,
        last_status: TaskStatus::Running,
        desired_status: TaskStatus::Running,
        health: Health::Unknown,
        health_checked: false,
        addresses: Box::new([format!("10.0.0.{}", version % 250).parse().unwrap()]),
        ports: Box::new([]),
        az: None,
        task_definition: None,
        container_instance: None,
        started_at: None,
        check: None,
        labels: None,
        ordinal: None,
        service_connect: None,
    }
}

fn key(name: &str) -> ServiceKey {
    ServiceKey {
        cluster: "c".into(),
        name: name.into(),
    }
}

fn served_ids(r: &Registry, name: &str) -> Vec<String> {
    r.service(&key(name))
        .map(|s| s.served().map(|t| t.id().to_string()).collect())
        .unwrap_or_default()
}

fn probe(id: &str, passing: bool) -> Update {
    Update::Probe {
        arn: task(id, "service:web", 0).arn,
        state: model::CheckState {
            passing,
            reason: if passing {
                "connected"
            } else {
                "connection refused"
            }
            .into(),
            since_ms: 1,
        },
    }
}

#[test]
fn active_checks_gate_serving() {
    let r = Registry::new(RegistryConfig::default());
    let check = std::sync::Arc::new(model::Check::parse("tcp:80").unwrap());
    let with_check = |id: &str, version| Task {
        check: Some(std::sync::Arc::clone(&check)),
        ..task(id, "service:web", version)
    };
    r.apply_batch([
        Update::Upsert(with_check("a", 1)),
        Update::Upsert(with_check("b", 1)),
        Update::Upsert(task("c", "service:web", 1)),
    ]);
    assert_eq!(
        served_ids(&r, "web"),
        vec!["c"],
        "pending checks are not served"
    );
    r.apply(probe("a", true));
    assert_eq!(served_ids(&r, "web"), vec!["a", "c"]);
    let view = r.service(&key("web")).unwrap();
    assert_eq!(view.tasks[0].check.as_ref().map(|c| c.passing), Some(true));
    // A new version of the task keeps its verdict.
    r.apply(Update::Upsert(with_check("a", 2)));
    assert_eq!(served_ids(&r, "web"), vec!["a", "c"]);
    r.apply(probe("a", false));
    assert_eq!(served_ids(&r, "web"), vec!["c"]);
    // A probe for a task without a check, or a gone task, is stale.
    let before = r.stats().stale;
    r.apply(probe("c", true));
    r.apply(probe("zz", true));
    assert_eq!(r.stats().stale, before + 2);
    // Nothing usable: fail-open serves every live task, checks or not.
    r.apply(Update::Remove {
        arn: task("c", "service:web", 0).arn.to_string(),
        version: 2,
    });
    let view = r.service(&key("web")).unwrap();
    assert!(view.fail_open);
    assert_eq!(served_ids(&r, "web"), vec!["a", "b"]);
    // A removed task's verdict goes with it: back under the same ARN, it is pending again.
    r.apply(Update::Remove {
        arn: task("a", "service:web", 0).arn.to_string(),
        version: 3,
    });
    r.apply(Update::Upsert(task("x", "service:web", 1)));
    r.apply(Update::Upsert(with_check("a", 4)));
    assert_eq!(served_ids(&r, "web"), vec!["x"]);
}

#[test]
fn versions_order_updates() {
    let r = Registry::new(RegistryConfig::default());
    assert_eq!(r.apply(Update::Upsert(task("a", "service:web", 2))), 1);
    // duplicate and stale change nothing and do not bump the generation
    assert_eq!(r.apply(Update::Upsert(task("a", "service:web", 2))), 1);
    assert_eq!(r.apply(Update::Upsert(task("a", "service:web", 1))), 1);
    let s = r.stats();
    assert_eq!((s.applied, s.duplicates, s.stale), (1, 1, 1));
    assert_eq!(served_ids(&r, "web"), vec!["a"]);
    // remove, then a late older RUNNING event must not resurrect the task
    let arn = task("a", "service:web", 0).arn;
    r.apply(Update::Remove {
        arn: arn.to_string(),
        version: 3,
    });
    r.apply(Update::Upsert(task("a", "service:web", 2)));
    assert!(r.service(&key("web")).is_none());
    assert!(r.task(&arn).is_none());
    // after the tombstone expires an old event would be taken as new: that is the ttl's job
    assert_eq!(
        r.prune_tombstones(
            Instant::now() + Duration::from_secs(3600),
            Duration::from_secs(60)
        ),
        1
    );
}

#[test]
fn draining_and_stopping_leave_at_once() {
    let r = Registry::new(RegistryConfig {
        fail_open: false,
        ..Default::default()
    });
    let mut a = task("a", "service:web", 1);
    a.container_instance = Some("ci-1".into());
    r.apply(Update::Upsert(a.clone()));
    r.apply(Update::Upsert(task("b", "service:web", 1)));
    assert_eq!(served_ids(&r, "web"), vec!["a", "b"]);
    r.apply(Update::Instance(ContainerInstance {
        arn: "ci-1".into(),
        cluster: "c".into(),
        status: InstanceStatus::Draining,
        version: 5,
    }));
    assert_eq!(served_ids(&r, "web"), vec!["b"]);
    let snap = r.service(&key("web")).unwrap();
    assert!(
        snap.tasks
            .iter()
            .any(|t| t.task.id() == "a" && t.instance_draining)
    );
    let mut b = task("b", "service:web", 2);
    b.desired_status = TaskStatus::Stopped;
    r.apply(Update::Upsert(b));
    assert!(served_ids(&r, "web").is_empty());
    assert_eq!(
        r.service(&key("web")).unwrap().tasks.len(),
        2,
        "still visible"
    );
}

#[test]
fn fail_open_serves_live_tasks_when_none_is_usable() {
    let r = Registry::new(RegistryConfig::default());
    let mut a = task("a", "service:web", 1);
    a.health = Health::Unhealthy;
    let mut b = task("b", "service:web", 1);
    b.health = Health::Unhealthy;
    b.desired_status = TaskStatus::Stopped;
    r.apply_batch([Update::Upsert(a.clone()), Update::Upsert(b)]);
    let snap = r.service(&key("web")).unwrap();
    assert!(snap.fail_open);
    assert_eq!(served_ids(&r, "web"), vec!["a"], "stopping tasks stay out");
    a.health = Health::Healthy;
    a.version = 2;
    r.apply(Update::Upsert(a));
    assert!(!r.service(&key("web")).unwrap().fail_open);
}

#[test]
fn reset_keeps_changes_newer_than_the_listing() {
    let r = Registry::new(RegistryConfig::default());
    r.apply_batch([
        Update::Upsert(task("old", "service:web", 1)),
        Update::Upsert(task("kept", "service:web", 1)),
    ]);
    r.apply(Update::BeginListing {
        cluster: "c".into(),
    });
    // while the listing runs: a new task starts, and "kept" moves on to version 3
    r.apply(Update::Upsert(task("new", "service:web", 1)));
    r.apply(Update::Upsert(task("kept", "service:web", 3)));
    // the listing saw "kept" at version 2 and neither "old" (missed stop) nor "new"
    r.apply(Update::Reset {
        cluster: "c".into(),
        tasks: vec![task("kept", "service:web", 2)],
    });
    assert_eq!(served_ids(&r, "web"), vec!["kept", "new"]);
    assert_eq!(r.task(&task("kept", "", 0).arn).unwrap().version, 3);
    assert_eq!(r.stats().reset_removed, 1);
    // a reset without a marker replaces everything unlisted
    r.apply(Update::Reset {
        cluster: "c".into(),
        tasks: vec![],
    });
    assert!(r.live_tasks().is_empty());
}

#[test]
fn collisions_and_invalid_names_are_reported() {
    let r = Registry::new(RegistryConfig::default());
    r.apply_batch([
        Update::Upsert(task("s", "service:etl", 1)),
        Update::Upsert(task("f", "family:etl", 1)),
        Update::Upsert(task("u", "service:ETL", 1)),
        Update::Upsert(task("x", &format!("service:{}", "n".repeat(70)), 1)),
    ]);
    // the service wins over the family; "ETL" sorts before "etl" and wins the case collision
    assert_eq!(served_ids(&r, "etl"), vec!["u"]);
    let problems = r.problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::InvalidName { tasks: 1, .. }))
    );
    assert_eq!(r.stats().tasks, 4, "unservable tasks are kept, not dropped");
}

#[test]
fn change_feed_lists_changed_services() {
    let r = Registry::new(RegistryConfig {
        journal_len: 2,
        ..Default::default()
    });
    let g1 = r.apply(Update::Upsert(task("a", "service:web", 1)));
    r.apply(Update::Upsert(task("b", "service:api", 1)));
    let c = r.changes_since(g1);
    assert_eq!(c.services, Some(vec![key("api")]));
    r.apply(Update::Upsert(task("c", "service:db", 1)));
    assert_eq!(
        r.changes_since(0).services,
        None,
        "journal no longer reaches 0"
    );
    assert_eq!(r.changes_since(r.generation()).services, Some(vec![]));
}

/// One task's life as a source would report it: versions 1..=n, maybe ending in a stop.
fn history(id: usize, steps: u64, stops: bool) -> Vec<Update> {
    let name = format!("t{id}");
    let group = if id.is_multiple_of(2) {
        "service:web"
    } else {
        "family:etl"
    };
    let mut out: Vec<Update> = (1..=steps)
        .map(|v| {
            let mut t = task(&name, group, v);
            t.health = if v % 3 == 0 {
                Health::Unhealthy
            } else {
                Health::Healthy
            };
            Update::Upsert(t)
        })
        .collect();
    if stops {
        out.push(Update::Remove {
            arn: task(&name, group, 0).arn.to_string(),
            version: steps + 1,
        });
    }
    out
}

/// Live tasks, and each service's served task ids.
type FinalState = (Vec<Arc<Task>>, Vec<(ServiceKey, Vec<String>)>);

fn final_state(r: &Registry) -> FinalState {
    let services = r
        .services()
        .iter()
        .map(|s| {
            (
                s.key.clone(),
                s.served().map(|t| t.id().to_string()).collect(),
            )
        })
        .collect();
    (r.live_tasks(), services)
}

proptest! {
    #[test]
    fn any_permutation_with_duplicates_converges(
        lives in prop::collection::vec((1u64..6, any::<bool>()), 1..8),
        shuffle in prop::collection::vec(any::<u32>(), 0..64),
        dups in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        batch in 1usize..5,
    ) {
        let in_order: Vec<Update> = lives
            .iter()
            .enumerate()
            .flat_map(|(i, (steps, stops))| history(i, *steps, *stops))
            .collect();
        let expected = Registry::new(RegistryConfig::default());
        expected.apply_batch(in_order.clone());

        let mut messy = in_order.clone();
        for d in &dups {
            messy.push(d.get(&in_order).clone());
        }
        for (i, s) in shuffle.iter().enumerate() {
            let n = messy.len();
            messy.swap(i % n, *s as usize % n);
        }
        let got = Registry::new(RegistryConfig::default());
        for chunk in messy.chunks(batch) {
            got.apply_batch(chunk.to_vec());
        }
        prop_assert_eq!(final_state(&got), final_state(&expected));
    }
}

fn ordinals(r: &Registry, name: &str) -> Vec<(String, Option<u32>)> {
    let mut v: Vec<_> = r
        .service(&key(name))
        .map(|s| {
            s.tasks
                .iter()
                .map(|t| (t.task.id().to_string(), t.task.ordinal))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn stable_ordinals_are_reused_in_order_and_never_shared() {
    let r = Registry::new(RegistryConfig {
        ordinals: [key("db")].into_iter().collect(),
        ..Default::default()
    });
    for id in ["a", "b", "c"] {
        r.apply(Update::Upsert(task(id, "service:db", 1)));
    }
    r.apply(Update::Upsert(task("w", "service:web", 1)));
    assert_eq!(
        ordinals(&r, "db"),
        vec![
            ("a".into(), Some(0)),
            ("b".into(), Some(1)),
            ("c".into(), Some(2))
        ]
    );
    assert_eq!(ordinals(&r, "web"), vec![("w".into(), None)], "opt-in only");
    // A health change keeps the number.
    let mut b = task("b", "service:db", 2);
    b.health = Health::Unhealthy;
    b.health_checked = true;
    r.apply(Update::Upsert(b));
    assert_eq!(ordinals(&r, "db")[1], ("b".into(), Some(1)));
    // ECS starts stopping a: its number is free for the replacement at once, and a second
    // replacement takes the next free one, never a held one.
    let mut a = task("a", "service:db", 2);
    a.desired_status = TaskStatus::Stopped;
    r.apply(Update::Upsert(a));
    let mut d = task("d", "service:db", 1);
    d.last_status = TaskStatus::Other("PROVISIONING".into());
    r.apply(Update::Upsert(d));
    r.apply(Update::Upsert(task("e", "service:db", 1)));
    assert_eq!(
        ordinals(&r, "db"),
        vec![
            ("a".into(), None),
            ("b".into(), Some(1)),
            ("c".into(), Some(2)),
            ("d".into(), Some(0)),
            ("e".into(), Some(3)),
        ]
    );
    // The stopped task's late events cannot take a number back.
    r.apply(Update::Remove {
        arn: task("a", "", 0).arn.to_string(),
        version: 3,
    });
    r.apply(Update::Remove {
        arn: task("c", "", 0).arn.to_string(),
        version: 2,
    });
    r.apply(Update::Upsert(task("f", "service:db", 1)));
    assert_eq!(ordinals(&r, "db")[3], ("f".into(), Some(2)), "lowest free");
    // A restored task asks for its number back: granted when free, else the lowest free.
    let mut g = task("g", "service:db", 1);
    g.ordinal = Some(7);
    r.apply(Update::Upsert(g));
    let mut h = task("h", "service:db", 1);
    h.ordinal = Some(7);
    r.apply(Update::Upsert(h));
    let all = ordinals(&r, "db");
    assert!(all.contains(&("g".into(), Some(7))), "{all:?}");
    assert!(all.contains(&("h".into(), Some(4))), "{all:?}");
    let held: Vec<u32> = all.iter().filter_map(|(_, n)| *n).collect();
    let unique: std::collections::BTreeSet<u32> = held.iter().copied().collect();
    assert_eq!(held.len(), unique.len(), "never two tasks on one number");
}

proptest! {
    /// Whatever order tasks start, stop and restart in, live tasks hold distinct ordinals, every
    /// task not on its way out holds one, and numbers are handed out lowest first.
    #[test]
    fn ordinals_stay_unique_under_churn(ops in proptest::collection::vec((0u8..8, any::<bool>()), 1..200)) {
        let r = Registry::new(RegistryConfig {
            ordinals: [key("db")].into_iter().collect(),
            ..Default::default()
        });
        let mut versions = [0u64; 8];
        for (id, start) in ops {
            let i = usize::from(id);
            versions[i] += 1;
            let name = format!("t{id}");
            if start {
                r.apply(Update::Upsert(task(&name, "service:db", versions[i])));
            } else {
                let mut t = task(&name, "service:db", versions[i]);
                t.desired_status = TaskStatus::Stopped;
                r.apply(Update::Upsert(t));
            }
            let all = ordinals(&r, "db");
            let held: Vec<u32> = all.iter().filter_map(|(_, n)| *n).collect();
            let unique: std::collections::BTreeSet<u32> = held.iter().copied().collect();
            prop_assert_eq!(held.len(), unique.len());
            // Every task not on its way out holds one; the stopping ones hold none.
            let snap = r.service(&key("db")).unwrap();
            for v in snap.tasks.iter() {
                let running = v.task.desired_status == TaskStatus::Running;
                prop_assert_eq!(v.task.ordinal.is_some(), running, "{:?}", all);
            }
            // Numbers are handed out lowest first: no more numbers than tasks ever held one.
            prop_assert!(held.iter().all(|n| (*n as usize) < 8), "{:?}", all);
        }
    }
}

fn connect(names: &[(&str, &str)]) -> Option<Arc<model::ServiceConnect>> {
    let (sc, bad) =
        model::ServiceConnect::from_names(names.iter().map(|(n, p)| (*n, *p, Some(80))));
    assert!(bad.is_empty());
    Some(Arc::new(sc))
}

fn ported(id: &str, group: &str, version: u64, sc: &[(&str, &str)]) -> Task {
    let mut t = task(id, group, version);
    t.ports = Box::new([
        model::Port {
            name: "admin".into(),
            port: 9000,
            protocol: model::Protocol::Tcp,
        },
        model::Port {
            name: "http".into(),
            port: 8080,
            protocol: model::Protocol::Tcp,
        },
    ]);
    t.service_connect = connect(sc);
    t
}

#[test]
fn service_connect_names_list_their_tasks_and_yield_to_services() {
    let r = Registry::new(RegistryConfig::default());
    r.apply_batch([
        Update::Upsert(ported(
            "a",
            "service:orders",
            1,
            &[("orders-api.prod.local", "http")],
        )),
        Update::Upsert(ported("b", "service:orders", 1, &[("orders-api", "http")])),
        Update::Upsert(ported("c", "service:orders", 1, &[])),
    ]);
    let alias = r.service(&key("orders-api")).expect("the name is served");
    let of = alias.connect.clone().unwrap();
    assert_eq!(
        (of.service.as_str(), of.port_name.as_str()),
        ("orders", "http")
    );
    assert_eq!(
        served_ids(&r, "orders-api"),
        vec!["a", "b"],
        "only the tasks publishing it"
    );
    assert!(
        alias.served().all(|t| &*t.ports[0].name == "http"),
        "the name's port first, for SRV"
    );
    assert_eq!(served_ids(&r, "orders"), vec!["a", "b", "c"]);
    assert_eq!(
        &*r.service(&key("orders")).unwrap().tasks[0].task.ports[0].name,
        "admin"
    );
    // A health change of a publishing task reaches the name's snapshot too.
    let mut a = ported("a", "service:orders", 2, &[("orders-api", "http")]);
    a.health = Health::Unhealthy;
    a.health_checked = true;
    r.apply(Update::Upsert(a));
    assert_eq!(served_ids(&r, "orders-api"), vec!["b"]);
    // A service of that label wins, and the lost name is reported.
    r.apply(Update::Upsert(task("x", "service:orders-api", 1)));
    let real = r.service(&key("orders-api")).unwrap();
    assert!(real.connect.is_none());
    assert_eq!(served_ids(&r, "orders-api"), vec!["x"]);
    assert!(
        r.problems().contains(&Problem::Collision {
            key: key("orders-api"),
            winner: "service:orders-api".into(),
            shadowed: "service-connect:orders".into(),
        }),
        "{:?}",
        r.problems()
    );
    // It goes: the name lists the publishing tasks again.
    r.apply(Update::Remove {
        arn: task("x", "", 0).arn.to_string(),
        version: 2,
    });
    assert_eq!(served_ids(&r, "orders-api"), vec!["b"]);
    assert!(r.service(&key("orders-api")).unwrap().connect.is_some());
    // The last publishing task goes: so does the name.
    r.apply_batch([
        Update::Remove {
            arn: task("a", "", 0).arn.to_string(),
            version: 3,
        },
        Update::Remove {
            arn: task("b", "", 0).arn.to_string(),
            version: 2,
        },
    ]);
    assert!(r.service(&key("orders-api")).is_none());
}

#[test]
fn a_listing_hands_a_stopping_tasks_number_to_its_replacement_in_any_order() {
    let r = Registry::new(RegistryConfig {
        ordinals: [key("db")].into_iter().collect(),
        ..Default::default()
    });
    r.apply(Update::Upsert(task("a", "service:db", 1)));
    let mut a = task("a", "service:db", 2);
    a.desired_status = TaskStatus::Stopped;
    // The replacement is listed before the task it replaces.
    r.apply(Update::Reset {
        cluster: "c".into(),
        tasks: vec![task("b", "service:db", 1), a],
    });
    assert_eq!(
        ordinals(&r, "db"),
        vec![("a".into(), None), ("b".into(), Some(0))]
    );
}
