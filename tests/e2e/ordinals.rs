//! Stable ordinals (issue 17, point 4): `N.S.C.zone` names for the tasks of a service that opts
//! in, each number kept by its task, reused lowest first by replacements (the demo's rolling
//! deploy), never two live tasks on one number, and kept across a warm restart (the state
//! file), where a cold start would number the same tasks differently.

use std::collections::BTreeMap;
use std::time::Duration;

use testkit::{Process, dig, eventually};

use crate::fixture::{serve_endpoints, temp_dir, write_atomic};

const WAIT: Duration = Duration::from_secs(10);

fn short(p: &Process, name: &str, t: &str) -> Vec<String> {
    let mut v: Vec<String> = dig(p.dns, &["+short", name, t])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Ordinal -> (task id, first address) from the API, with the DNS name the API shows.
fn by_ordinal(api: &str, path: &str) -> BTreeMap<u64, (String, String)> {
    let j = testkit::http::get(&format!("http://{api}/v1/services/{path}")).json();
    let mut out = BTreeMap::new();
    for e in j["endpoints"].as_array().unwrap() {
        let Some(n) = e["ordinal"].as_u64() else {
            continue;
        };
        let id = e["taskId"].as_str().unwrap().to_string();
        let addr = e["addresses"][0].as_str().unwrap().to_string();
        if e["served"] == true {
            assert_eq!(
                e["ordinalName"].as_str().unwrap(),
                format!(
                    "{n}.{}.ecs.internal",
                    path.split('/').rev().collect::<Vec<_>>().join(".")
                ),
                "{e}"
            );
        }
        assert!(out.insert(n, (id, addr)).is_none(), "two tasks on {n}: {j}");
    }
    out
}

fn file(ids: &[(&str, &str)]) -> String {
    let mut f = String::from("[[service]]\nname = \"db\"\n");
    for (id, addr) in ids {
        f.push_str(&format!(
            "[[service.endpoint]]\nid = \"{id}\"\naddresses = [\"{addr}\"]\nports = {{ pg = 5432 }}\n"
        ));
    }
    f
}

#[test]
fn ordinals_are_reused_in_order_and_survive_a_warm_restart() {
    let dir = temp_dir("ordinals");
    let path = dir.join("endpoints.toml");
    let state = dir.join("registry.state");
    let state = state.to_str().unwrap();
    let start = || {
        serve_endpoints(
            &path,
            &[
                "--endpoints-poll",
                "100ms",
                "--state-file",
                state,
                "--ordinals",
                "db.static",
            ],
        )
    };
    write_atomic(
        &path,
        file(&[
            ("db-a", "10.0.1.1"),
            ("db-b", "10.0.1.2"),
            ("db-c", "10.0.1.3"),
        ]),
    );
    let mut p = start();
    let api = p.api.unwrap().to_string();
    let first = by_ordinal(&api, "static/db");
    assert_eq!(first.len(), 3, "{first:?}");
    for (n, (_, addr)) in &first {
        assert_eq!(
            short(&p, &format!("{n}.db.static.ecs.internal"), "A"),
            std::slice::from_ref(addr)
        );
        let srv = short(&p, &format!("_pg._tcp.{n}.db.static.ecs.internal"), "SRV");
        assert_eq!(srv.len(), 1, "{srv:?}");
        assert!(srv[0].starts_with("0 1 5432 "), "{srv:?}");
        assert_eq!(
            dig(
                p.dns,
                &["+short", &format!("{n}.db.static.ecs.internal"), "TXT"]
            )
            .trim(),
            format!("\"ordinal={n}\" \"served=1\"")
        );
    }
    // The task on 1 is replaced: its number goes to the replacement, the others keep theirs.
    let (on_one, _) = first[&1].clone();
    let mut kept: Vec<(&str, &str)> = first
        .values()
        .filter(|(id, _)| *id != on_one)
        .map(|(id, addr)| (id.as_str(), addr.as_str()))
        .collect();
    kept.push(("db-new", "10.0.1.9"));
    write_atomic(&path, file(&kept));
    eventually(WAIT, "the replacement on 1", || {
        (short(&p, "1.db.static.ecs.internal", "A") == ["10.0.1.9"]).then_some(())
    });
    let second = by_ordinal(&api, "static/db");
    assert_eq!(second[&0], first[&0]);
    assert_eq!(second[&2], first[&2]);
    assert_eq!(second[&1].0, "db-new");
    // A number nobody holds has no name.
    let out = dig(p.dns, &["3.db.static.ecs.internal", "A"]);
    assert!(out.contains("NXDOMAIN"), "{out}");
    assert_eq!(p.stop(), Some(0), "stopped cleanly, state saved");

    // Warm restart: the numbers come back from the state file. (A cold start numbers the file
    // in its own order: db-new, listed last, would not be 1.)
    let mut p = start();
    let api = p.api.unwrap().to_string();
    assert_eq!(by_ordinal(&api, "static/db"), second);
    assert_eq!(short(&p, "1.db.static.ecs.internal", "A"), ["10.0.1.9"]);
    assert_eq!(p.stop(), Some(0));
    std::fs::remove_file(state).unwrap();
    let p = start();
    let cold = by_ordinal(&p.api.unwrap().to_string(), "static/db");
    assert_ne!(cold, second, "a cold start numbers in file order");
    assert_eq!(cold[&2].0, "db-new", "{cold:?}");
}

/// The demo's rolling deploy replaces every web task, new task first (ECS's default, maximum
/// 200 %): the first replacement takes 3 (0-2 are held by live tasks), each later one the
/// number its predecessor freed, lowest first, so the numbers stay within 0-3 and
/// `N.web.demo.ecs.internal` follows each holder.
#[test]
fn a_rolling_deploy_hands_each_number_to_a_replacement() {
    let demo = Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--no-churn",
        "--rolling-deploy",
        "60s",
        "--ttl",
        "1",
        "--ordinals",
        "web.demo",
    ]);
    demo.wait_for_stdout("Ctrl-C stops", Duration::from_secs(5));
    let api = demo.api.unwrap().to_string();
    let before = by_ordinal(&api, "demo/web");
    assert_eq!(before.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
    let ids = |m: &BTreeMap<u64, (String, String)>| {
        m.values()
            .map(|(id, _)| id.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let old = ids(&before);
    // Each new task's first number, in the order they appeared.
    let mut firsts: Vec<(String, u64)> = Vec::new();
    let after = eventually(Duration::from_secs(60), "the deploy to finish", || {
        let now = by_ordinal(&api, "demo/web");
        for (n, (id, _)) in &now {
            if !old.contains(id) && !firsts.iter().any(|(i, _)| i == id) {
                firsts.push((id.clone(), *n));
            }
        }
        (ids(&now).is_disjoint(&old) && now.len() == 3).then_some(now)
    });
    assert_eq!(firsts.len(), 3, "{firsts:?}");
    assert_eq!(
        firsts[0].1, 3,
        "0-2 were held when the first one started: {firsts:?}"
    );
    let mut numbers: Vec<u64> = after.keys().copied().collect();
    numbers.sort_unstable();
    assert!(numbers.iter().all(|n| *n <= 3), "{numbers:?}");
    for (id, n) in &firsts {
        assert_eq!(
            after[n].0, *id,
            "a task keeps its number: {firsts:?} {after:?}"
        );
    }
    for (n, (_, addr)) in &after {
        let name = format!("{n}.web.demo.ecs.internal");
        eventually(WAIT, "the ordinal name to follow", || {
            (short(&demo, &name, "A") == [addr.clone()]).then_some(())
        });
    }
}
