//! Zone versions under churn: while one thread changes the registry as fast as it can and the
//! real follower publishes versions, every version a query loads and every AXFR carries exactly
//! what the registry held at the generation its serial names.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use model::{Task, Update};
use registry::{Registry, RegistryConfig};

use crate::table::wire_key;

use crate::{AnswerTable, Cidr, ZoneConfig};

const SERVICES: usize = 6;
const SLOTS: usize = 6;
const ZONE: &str = "ecs.internal.";

/// Per generation, per service: the addresses the registry serves.
type Expected = Arc<Mutex<HashMap<u64, Vec<BTreeSet<Ipv4Addr>>>>>;

fn ip(service: usize, slot: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, service as u8, slot as u8 + 1)
}

fn arn(service: usize, slot: usize) -> String {
    format!("arn:aws:ecs:r:1:task/c/s{service}t{slot}")
}

fn task(service: usize, slot: usize, version: u64) -> Task {
    crate::test_tasks::running(
        arn(service, slot),
        &format!("svc{service}"),
        ip(service, slot),
        version,
    )
}

fn service_name(service: usize) -> String {
    format!("svc{service}.c.{ZONE}")
}

/// The A addresses a version holds at a service's name (the last 4 bytes of each record).
fn addresses_in(
    table: &AnswerTable,
    version: &crate::version::Version,
    s: usize,
) -> BTreeSet<Ipv4Addr> {
    let key = wire_key(&Name::from_ascii(service_name(s)).unwrap());
    let Some(entry) = version.get(&table.hasher, &key) else {
        return BTreeSet::new();
    };
    let mut out = BTreeSet::new();
    for rrset in entry.rrsets().filter(|r| r.qtype == 1) {
        for i in 0..rrset.answer.len() {
            let unit = rrset.answer.unit(i);
            let b = &unit[unit.len() - 4..];
            out.insert(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        }
    }
    out
}

fn axfr_query() -> Vec<u8> {
    let mut m = Message::new(9, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(ZONE).unwrap(),
        RecordType::AXFR,
    ));
    m.to_vec().unwrap()
}

/// One AXFR: its serial, and per service the A addresses it carries.
fn axfr(table: &AnswerTable) -> (u32, Vec<BTreeSet<Ipv4Addr>>) {
    let messages = table
        .transfer(&axfr_query(), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
        .expect("a transfer");
    let mut serial = None;
    let mut found: BTreeMap<String, BTreeSet<Ipv4Addr>> = BTreeMap::new();
    for m in messages {
        let m = Message::from_vec(&m).expect("a valid transfer message");
        for r in &m.answers {
            match &r.data {
                RData::SOA(soa) => serial = serial.or(Some(soa.serial)),
                RData::A(a) => {
                    found.entry(r.name.to_ascii()).or_default().insert(a.0);
                }
                _ => {}
            }
        }
    }
    let per_service = (0..SERVICES)
        .map(|s| found.remove(&service_name(s)).unwrap_or_default())
        .collect();
    (serial.expect("an SOA"), per_service)
}

#[test]
fn every_version_and_every_transfer_matches_its_generation() {
    let registry = Arc::new(Registry::new(RegistryConfig::default()));
    let mut zone = ZoneConfig::new(ZONE).unwrap();
    zone.transfer.allow = vec![Cidr::parse("127.0.0.0/8").unwrap()];
    let base = zone.serial_base;
    let table = Arc::new(AnswerTable::new(zone).unwrap());
    let expected: Expected = Arc::new(Mutex::new(HashMap::new()));
    expected
        .lock()
        .unwrap()
        .insert(0, vec![BTreeSet::new(); SERVICES]);

    // The real follower, on its own thread.
    let (synced, _) = tokio::sync::watch::channel(0);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let follower = {
        let (registry, table) = (Arc::clone(&registry), Arc::clone(&table));
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(crate::follow::follow(registry, table, synced, stop));
        })
    };

    let done = Arc::new(AtomicBool::new(false));
    // Reads done so far: the writer lets the reader in every 100 batches, so a loaded machine
    // (two cores shared with a build) cannot run the whole churn before the reader looks.
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let (registry, expected, done, reads) = (
            Arc::clone(&registry),
            Arc::clone(&expected),
            Arc::clone(&done),
            Arc::clone(&reads),
        );
        std::thread::spawn(move || {
            let mut state = vec![BTreeSet::new(); SERVICES];
            let mut version = 1;
            let mut seed = 0x2545_F491_4F6C_DD1Du64;
            for round in 0..4_000 {
                if round % 100 == 0 {
                    let target = reads.load(Ordering::Relaxed) + 1;
                    let since = std::time::Instant::now();
                    while reads.load(Ordering::Relaxed) < target
                        && since.elapsed() < Duration::from_secs(2)
                    {
                        std::thread::yield_now();
                    }
                }
                // A batch flips one to three tasks (of any services): always a change.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let flips = 1 + (seed % 3) as usize;
                let mut batch = Vec::new();
                let mut touched = BTreeSet::new();
                for f in 0..flips {
                    let pick = (seed >> (8 * f + 8)) as usize % (SERVICES * SLOTS);
                    if !touched.insert(pick) {
                        continue;
                    }
                    let (s, slot) = (pick / SLOTS, pick % SLOTS);
                    version += 1;
                    if state[s].remove(&ip(s, slot)) {
                        batch.push(Update::Remove {
                            arn: arn(s, slot),
                            version,
                        });
                    } else {
                        state[s].insert(ip(s, slot));
                        batch.push(Update::Upsert(task(s, slot, version)));
                    }
                }
                let next = registry.generation() + 1;
                expected.lock().unwrap().insert(next, state.clone());
                assert_eq!(registry.apply_batch(batch), next);
            }
            done.store(true, Ordering::Relaxed);
        })
    };

    let check = |serial: u32, got: &[BTreeSet<Ipv4Addr>], what: &str| {
        let generation = u64::from(serial.wrapping_sub(base));
        let want = expected
            .lock()
            .unwrap()
            .get(&generation)
            .cloned()
            .unwrap_or_else(|| {
                panic!("{what}: serial {serial} names unknown generation {generation}")
            });
        assert_eq!(got, &want[..], "{what} at generation {generation}");
    };
    let mut versions = 0;
    let mut transfers = 0;
    let mut serials = BTreeSet::new();
    while !done.load(Ordering::Relaxed) || versions == 0 {
        let version = table.version();
        let got: Vec<_> = (0..SERVICES)
            .map(|s| addresses_in(&table, &version, s))
            .collect();
        check(version.serial, &got, "a query's version");
        serials.insert(version.serial);
        versions += 1;
        reads.fetch_add(1, Ordering::Relaxed);
        if versions % 8 == 0 {
            let (serial, got) = axfr(&table);
            check(serial, &got, "an AXFR");
            transfers += 1;
        }
    }
    writer.join().unwrap();
    // The follower catches up with the last generation, which must check out too.
    let last = registry.generation();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while u64::from(table.serial().wrapping_sub(base)) != last {
        assert!(
            std::time::Instant::now() < deadline,
            "the follower fell behind"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (serial, got) = axfr(&table);
    check(serial, &got, "the last AXFR");
    stop_tx.send_replace(true);
    follower.join().unwrap();
    assert!(
        serials.len() > 10,
        "the reader saw the zone change: {} serials",
        serials.len()
    );
    assert!(transfers > 0);
}
