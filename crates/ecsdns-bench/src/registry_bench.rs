//! Registry figures: updates applied per second while readers take snapshots, and the time from
//! an update being applied to DNS answering with it (through the real follower task).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dns::{AnswerTable, Answerer, DnsMetrics, Transport, ZoneConfig};
use hickory_proto::rr::RecordType;
use model::{Health, Port, Protocol, ServiceKey, Task, TaskGroup, TaskStatus, Update};
use registry::{Registry, RegistryConfig};

use crate::data::{CLUSTER, ZONE};
use crate::load::quantile;

fn task(service: usize, slot: usize, version: u64) -> Task {
    Task {
        // Unique per (service, slot), and ending in the task id `tNN`.
        arn: format!("arn:aws:ecs:us-east-1:1:task/{CLUSTER}/svc-{service:05}/t{slot:02}").into(),
        cluster: CLUSTER.into(),
        group: TaskGroup::Service(format!("svc-{service:05}").into()),
        version,
        last_status: TaskStatus::Running,
        desired_status: TaskStatus::Running,
        health: Health::Healthy,
        health_checked: true,
        addresses: Box::new([IpAddr::V4(Ipv4Addr::new(
            10,
            (service / 250) as u8,
            (service % 250) as u8,
            (version % 250) as u8 + 1,
        ))]),
        ports: Box::new([Port {
            name: "http".into(),
            port: 8080,
            protocol: Protocol::Tcp,
        }]),
        az: Some("us-east-1a".into()),
        task_definition: None,
        container_instance: None,
        started_at: None,
        check: None,
        labels: None,
        ordinal: None,
        service_connect: None,
    }
}

/// Runs both measurements and prints them.
pub(crate) fn run(updates: usize, smoke: bool) -> anyhow::Result<()> {
    let updates = if smoke { 20_000 } else { updates };
    let services = 1_000;
    let registry = Arc::new(Registry::new(RegistryConfig::default()));
    // Readers: one thread taking snapshots as fast as it can while the writer applies.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (registry, stop, reads) =
            (Arc::clone(&registry), Arc::clone(&stop), Arc::clone(&reads));
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || {
                crate::load::pin_to(1);
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let key = ServiceKey {
                        cluster: CLUSTER.into(),
                        name: format!("svc-{:05}", i % services),
                    };
                    if let Some(s) = registry.service(&key) {
                        std::hint::black_box(s.served().count());
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })?
    };
    let batch = 1024;
    // The updates exist before the clock starts: this measures applying them, not building
    // them (decoding is the sources' cost, measured by their own tests).
    let mut batches: Vec<Vec<Update>> = Vec::with_capacity(updates / batch + 1);
    let mut pending = Vec::with_capacity(batch);
    for n in 0..updates {
        let service = n % services;
        let slot = (n / services) % 10;
        let version = (n / (services * 10)) as u64 + 1;
        pending.push(Update::Upsert(task(service, slot, version)));
        if pending.len() == batch {
            batches.push(std::mem::replace(&mut pending, Vec::with_capacity(batch)));
        }
    }
    batches.push(pending);
    // The writer on CPU 0, the reader on CPU 1, as the DNS comparison pins its processes.
    crate::load::pin_to(0);
    let start = Instant::now();
    for b in batches {
        registry.apply_batch(b);
    }
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    let stats = registry.stats();
    println!(
        "registry: {updates} updates ({} applied, {} tasks, {services} services) in {:.2} s = {:.0} updates/s \
         (batches of {batch}); a reader took {} snapshots meanwhile",
        stats.applied,
        stats.tasks,
        took.as_secs_f64(),
        updates as f64 / took.as_secs_f64(),
        reads.load(Ordering::Relaxed)
    );
    visibility(&registry, if smoke { 200 } else { 2_000 })
}

/// Single updates, one at a time: time from `apply` returning to a DNS answer that carries it.
fn visibility(registry: &Arc<Registry>, samples: usize) -> anyhow::Result<()> {
    // The DNS follower on CPU 0 (as the writer was), this thread, which applies and then spins
    // on the answer, on CPU 1: threads inherit their creator's CPU set, and a follower sharing a
    // CPU with the spinning thread would wait for its time slice (milliseconds), not for DNS.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(|| crate::load::pin_to(0))
        .enable_all()
        .build()?;
    crate::load::pin_to(1);
    let table = Arc::new(AnswerTable::new(ZoneConfig::new(ZONE)?)?);
    let (synced_tx, mut synced) = tokio::sync::watch::channel(0);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    runtime.spawn(dns::follow::follow(
        Arc::clone(registry),
        Arc::clone(&table),
        synced_tx,
        stop_rx,
    ));
    let target = registry.generation();
    runtime.block_on(synced.wait_for(|g| *g >= target))?;
    let answerer = Answerer::new(Arc::clone(&table), Arc::new(DnsMetrics::default()));
    let mut out = Vec::with_capacity(4096);
    let mut latencies = Vec::with_capacity(samples);
    for k in 0..samples {
        let service = k % 1_000;
        let version = 1_000_000 + k as u64;
        let t = task(service, 0, version);
        let want = match t.addresses[0] {
            IpAddr::V4(a) => a.octets(),
            IpAddr::V6(_) => [0; 4],
        };
        let name = format!("t00.svc-{service:05}.{CLUSTER}.{ZONE}");
        let query = crate::data::query(&name, RecordType::A, k as u16);
        let start = Instant::now();
        registry.apply(Update::Upsert(t));
        loop {
            answerer.respond(&query, Transport::Udp, 0, &mut out);
            if out.windows(4).any(|w| w == want) {
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                anyhow::bail!("update {k} never reached DNS");
            }
            std::hint::spin_loop();
        }
        latencies.push(start.elapsed());
    }
    let _ = stop_tx.send(true);
    latencies.sort();
    println!(
        "visibility: update applied -> DNS answer, {samples} single updates: p50 {:?}, p99 {:?}, max {:?}",
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    Ok(())
}
