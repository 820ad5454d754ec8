//! Load generators: a closed-loop saturating client on sendmmsg/recvmmsg (dnsperf saturates its
//! own core first here), and a paced client for latency at light load.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg};

const BATCH: usize = 64;

/// Pins the calling thread to `cpu`.
pub(crate) fn pin_to(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

/// Result of a saturation run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Throughput {
    /// Responses received.
    pub(crate) responses: u64,
    /// Wall time.
    pub(crate) elapsed: Duration,
    /// Times the window was presumed lost (a receive timed out with queries in flight).
    pub(crate) stalls: u64,
}

impl Throughput {
    /// Responses per second.
    pub(crate) fn qps(&self) -> f64 {
        self.responses as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn v4(addr: SocketAddr) -> anyhow::Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => anyhow::bail!("IPv4 only"),
    }
}

/// Keeps `window` queries in flight for `duration`, cycling through `queries`.
pub(crate) fn saturate(
    server: SocketAddr,
    queries: &[Vec<u8>],
    window: usize,
    duration: Duration,
) -> anyhow::Result<Throughput> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let fd = sock.as_raw_fd();
    let dest = SockaddrIn::from(v4(server)?);
    let addrs = vec![Some(dest); BATCH];
    let mut send_headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
    let mut recv_headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
    let mut bufs = vec![[0u8; 1500]; BATCH];
    let mut next = 0usize;
    let mut inflight = 0usize;
    let mut responses = 0u64;
    let mut stalls = 0u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        while inflight < window {
            let n = (window - inflight).min(BATCH);
            let slices: Vec<[IoSlice<'_>; 1]> = (0..n)
                .map(|k| [IoSlice::new(&queries[(next + k) % queries.len()])])
                .collect();
            let sent = sendmmsg(
                fd,
                &mut send_headers,
                &slices,
                &addrs[..n],
                [],
                MsgFlags::empty(),
            )
            .context("sendmmsg")?
            .count();
            next = (next + sent) % queries.len();
            inflight += sent;
            if sent == 0 {
                break;
            }
        }
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(&mut b[..])])
            .collect();
        match recvmmsg(
            fd,
            &mut recv_headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        ) {
            Ok(results) => {
                let got = results.count();
                responses += got as u64;
                inflight = inflight.saturating_sub(got);
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {
                stalls += 1;
                inflight = 0;
            }
            Err(e) => return Err(e).context("recvmmsg"),
        }
    }
    Ok(Throughput {
        responses,
        elapsed: start.elapsed(),
        stalls,
    })
}

/// Sends `count` queries at `rate` per second, one at a time, and returns each round-trip time
/// (lost queries are left out and counted).
pub(crate) fn latency(
    server: SocketAddr,
    queries: &[Vec<u8>],
    rate: f64,
    count: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    let gap = Duration::from_secs_f64(1.0 / rate);
    let mut buf = [0u8; 1500];
    let mut rtts = Vec::with_capacity(count);
    let mut lost = 0;
    let start = Instant::now();
    for i in 0..count {
        let due = start + gap.mul_f64(i as f64);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let q = &queries[i % queries.len()];
        let sent = Instant::now();
        sock.send_to(q, server)?;
        loop {
            match sock.recv(&mut buf) {
                Ok(n) if n >= 2 && buf[..2] == q[..2] => {
                    rtts.push(sent.elapsed());
                    break;
                }
                Ok(_) => continue,
                Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
    }
    rtts.sort();
    Ok((rtts, lost))
}

/// The `q`-quantile of sorted durations.
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}
