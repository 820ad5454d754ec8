//! The deploy scenario's client: paced requests, each resolving through the caching resolver
//! first and then connecting to one of the addresses at random, failures counted by kind.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use super::{CLUSTER, PORT, ZONE};

/// The client: `rate` requests a second over a few threads, each resolving through `resolver`
/// and then connecting to one of the addresses at random.
pub(super) struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<std::thread::JoinHandle<(u64, BTreeMap<String, u64>)>>,
}

fn request_once(resolver: SocketAddr, name: &str, seed: &mut u64) -> Result<(), &'static str> {
    let query = crate::query(name, RecordType::A);
    let Some(reply) = crate::udp_raw(
        resolver,
        &query.to_vec().unwrap(),
        Duration::from_millis(1_000),
    ) else {
        return Err("dns error");
    };
    let Ok(reply) = Message::from_vec(&reply) else {
        return Err("dns error");
    };
    if reply.metadata.response_code != ResponseCode::NoError {
        return Err("dns error");
    }
    let addrs: Vec<IpAddr> = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    if addrs.is_empty() {
        return Err("empty answer");
    }
    // xorshift: a different pick per request, no dependency.
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let ip = addrs[(*seed % addrs.len() as u64) as usize];
    let mut stream =
        TcpStream::connect_timeout(&SocketAddr::new(ip, PORT), Duration::from_millis(1_000))
            .map_err(|_| "refused")?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
        .map_err(|_| "http")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|_| "http")?;
    if &head[9..12] != b"200" {
        return Err("http");
    }
    Ok(())
}

impl Load {
    pub(super) fn start(resolver: SocketAddr, rate: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = 8u64;
        let interval = Duration::from_secs_f64(threads as f64 / f64::from(rate.max(1)));
        let name = format!("web.{CLUSTER}.{ZONE}.");
        let started = Instant::now();
        let workers = (0..threads)
            .map(|i| {
                let stop = Arc::clone(&stop);
                let name = name.clone();
                std::thread::spawn(move || {
                    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (i + 1);
                    let mut next = started + interval.mul_f64(i as f64 / threads as f64);
                    let mut requests = 0;
                    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
                    while !stop.load(Ordering::Relaxed) {
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        }
                        next += interval;
                        requests += 1;
                        if let Err(kind) = request_once(resolver, &name, &mut seed) {
                            *failures.entry(kind.to_string()).or_default() += 1;
                        }
                    }
                    (requests, failures)
                })
            })
            .collect();
        Self { stop, workers }
    }

    pub(super) fn finish(self) -> (u64, BTreeMap<String, u64>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut requests = 0;
        let mut failures = BTreeMap::new();
        for w in self.workers {
            let (r, f) = w.join().unwrap();
            requests += r;
            for (k, v) in f {
                *failures.entry(k).or_default() += v;
            }
        }
        (requests, failures)
    }
}
