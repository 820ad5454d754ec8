//! The UDP and TCP servers around [`Answerer::respond`].
//!
//! UDP runs on plain OS threads with blocking sockets and batched `recvmmsg`/`sendmmsg`: no task
//! spawn, no allocation per query, reused buffers. TCP (RFC 7766: pipelined queries, idle timeout, connection cap) runs
//! on tokio and answers with the same function, so both transports agree byte for byte apart
//! from the size limit.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::{Answerer, DnsError, Transport};

/// Server limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Threads reading the UDP socket.
    pub udp_workers: usize,
    /// A TCP connection with no complete query for this long is closed (RFC 7766 6.2.3).
    pub tcp_idle_timeout: Duration,
    /// Open TCP connections at most; more are closed at once and counted.
    pub tcp_max_connections: usize,
    /// How long shutdown waits for in-flight TCP answers.
    pub shutdown_grace: Duration,
    /// Response rate limiting of UDP answers per client prefix.
    pub rrl: crate::RrlConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            udp_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_max_connections: 1024,
            shutdown_grace: Duration::from_secs(5),
            rrl: crate::RrlConfig::default(),
        }
    }
}

/// Binds a UDP socket and a TCP listener on the same address. With port 0 the OS picks a UDP
/// port and TCP takes the same one (retried a few times if TCP finds it taken). The UDP socket
/// allows `SO_REUSEPORT`, so [`DnsServer::start`] can give each worker a socket of its own.
pub fn bind_udp_tcp(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsError> {
    let sock_err = |addr, source| DnsError::Socket { addr, source };
    let mut last = None;
    for _ in 0..16 {
        let udp = crate::steer::bind_shared(addr).map_err(|e| sock_err(addr, e))?;
        let bound = udp.local_addr().map_err(|e| sock_err(addr, e))?;
        match TcpListener::bind(bound) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(sock_err(bound, e)),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("no free port"));
    Err(sock_err(addr, e))
}

/// A running DNS server. Dropping it does not stop it; call [`DnsServer::shutdown`].
pub struct DnsServer {
    local_addr: SocketAddr,
    stop_udp: Arc<AtomicBool>,
    udp_threads: Vec<JoinHandle<()>>,
    stop_tcp: watch::Sender<bool>,
    tcp_task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    /// Starts serving on already-bound sockets. Must be called inside a tokio runtime (TCP).
    pub fn start(
        answerer: Answerer,
        udp: UdpSocket,
        tcp: TcpListener,
        config: ServerConfig,
    ) -> Result<Self, DnsError> {
        let local_addr = udp.local_addr().map_err(|source| DnsError::Socket {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        })?;
        let sock_err = |source| DnsError::Socket {
            addr: local_addr,
            source,
        };
        let stop_udp = Arc::new(AtomicBool::new(false));
        let mut udp_threads = Vec::new();
        let workers = config.udp_workers.max(1);
        // A socket per worker, steered by client prefix; else one shared socket.
        let (sockets, steered) = match workers {
            1 => (vec![udp], false),
            _ => match crate::steer::group(&udp, workers) {
                Ok(sockets) => (sockets, true),
                Err(why) => {
                    tracing::warn!(%why, "UDP workers share one socket");
                    (vec![udp], false)
                }
            },
        };
        for i in 0..workers {
            let socket = match sockets.get(i) {
                Some(s) if steered => s.try_clone().map_err(sock_err)?,
                _ => sockets[0].try_clone().map_err(sock_err)?,
            };
            // The read timeout lets workers notice shutdown without a wake-up packet.
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .map_err(sock_err)?;
            let answerer = answerer.clone();
            let stop = Arc::clone(&stop_udp);
            // Steered, each worker sees all of a prefix's queries: the whole rate is its own.
            let share = if steered { 1 } else { workers };
            let limiter = crate::rrl::Limiter::new(config.rrl, share);
            let thread = std::thread::Builder::new()
                .name(format!("dns-udp-{i}"))
                .spawn(move || udp_worker(&socket, &answerer, &stop, i, limiter))
                .map_err(sock_err)?;
            udp_threads.push(thread);
        }
        tcp.set_nonblocking(true).map_err(sock_err)?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(sock_err)?;
        let (stop_tcp, stopped) = watch::channel(false);
        let tcp_task = tokio::spawn(tcp_accept(tcp, answerer, config, stopped));
        Ok(Self {
            local_addr,
            stop_udp,
            udp_threads,
            stop_tcp,
            tcp_task,
        })
    }

    /// The address served (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight TCP answers finish (within the grace period), and joins
    /// every worker.
    pub async fn shutdown(self) {
        self.stop_udp.store(true, Ordering::Relaxed);
        let _ = self.stop_tcp.send(true);
        let _ = self.tcp_task.await;
        let threads = self.udp_threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Answers one query; a panic (a bug: the answer path is written not to) drops that query and
/// is counted instead of killing the worker.
fn guarded(
    answerer: &Answerer,
    query: &[u8],
    transport: Transport,
    rotation: usize,
    client: Option<std::net::IpAddr>,
    out: &mut Vec<u8>,
) -> crate::Outcome {
    let run = || answerer.respond_from(query, transport, rotation, client, out);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(outcome) => outcome,
        Err(_) => {
            answerer.metrics().panicked();
            crate::Outcome::Dropped
        }
    }
}

/// Applies rate limiting to one UDP answer: true to send it (possibly cut to a truncated
/// answer: a slip), false to drop it.
fn admit(
    limiter: &mut Option<crate::rrl::Limiter>,
    peer: Option<&nix::sys::socket::SockaddrStorage>,
    now: std::time::Instant,
    answerer: &Answerer,
    answer: &mut Vec<u8>,
) -> bool {
    use crate::rrl::Verdict;
    let (Some(limiter), Some(ip)) = (limiter.as_mut(), peer.and_then(peer_ip)) else {
        return true;
    };
    match limiter.check(ip, now) {
        Verdict::Send => true,
        Verdict::Drop => {
            answerer.metrics().rrl_dropped();
            false
        }
        Verdict::Slip => {
            answerer.metrics().rrl_slipped();
            crate::wire::cut_to_truncated(answer);
            true
        }
    }
}

fn peer_ip(peer: &nix::sys::socket::SockaddrStorage) -> Option<std::net::IpAddr> {
    if let Some(v4) = peer.as_sockaddr_in() {
        return Some(std::net::IpAddr::V4(v4.ip()));
    }
    peer.as_sockaddr_in6()
        .map(|v6| std::net::IpAddr::V6(v6.ip()))
}

/// Queries read (and answers sent) per system call.
const BATCH: usize = 64;
/// Largest query read; a longer datagram arrives cut short and is answered FORMERR or dropped.
const MAX_QUERY: usize = 4096;

/// One UDP worker: `recvmmsg` up to [`BATCH`] queries, answer each from the prepared table into a
/// reused buffer, `sendmmsg` the answers. No allocation per query, one system call per batch in
/// each direction when busy.
fn udp_worker(
    socket: &UdpSocket,
    answerer: &Answerer,
    stop: &AtomicBool,
    seed: usize,
    mut limiter: Option<crate::rrl::Limiter>,
) {
    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
    use std::io::{IoSlice, IoSliceMut};
    use std::os::fd::AsRawFd;

    let fd = socket.as_raw_fd();
    let mut recv_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut queries = vec![[0u8; MAX_QUERY]; BATCH];
    let mut answers: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1500)).collect();
    let mut received: Vec<(usize, Option<SockaddrStorage>)> = Vec::with_capacity(BATCH);
    let mut peers: Vec<Option<SockaddrStorage>> = Vec::with_capacity(BATCH);
    let mut ready: Vec<usize> = Vec::with_capacity(BATCH);
    let mut rotation = seed;
    let by_az = answerer.follows_client_az();
    while !stop.load(Ordering::Relaxed) {
        received.clear();
        {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> = queries
                .iter_mut()
                .map(|q| [IoSliceMut::new(&mut q[..])])
                .collect();
            match recvmmsg(
                fd,
                &mut recv_headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(results) => received.extend(results.map(|m| (m.bytes, m.address))),
                // The read timeout lets the worker notice shutdown; ICMP errors from earlier
                // sends surface here too: keep serving.
                Err(e) => {
                    if !matches!(e, nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) {
                        tracing::debug!(error = %e, "udp receive error");
                    }
                    continue;
                }
            }
        }
        let received_at = std::time::Instant::now();
        ready.clear();
        peers.clear();
        for (i, (len, peer)) in received.iter().enumerate() {
            rotation = rotation.wrapping_add(1);
            let query = &queries[i][..(*len).min(MAX_QUERY)];
            // The client's address matters only where answers follow its AZ.
            let client = if by_az {
                peer.as_ref().and_then(peer_ip)
            } else {
                None
            };
            if let crate::Outcome::Answered { .. } = guarded(
                answerer,
                query,
                Transport::Udp,
                rotation,
                client,
                &mut answers[i],
            ) && peer.is_some()
                && admit(
                    &mut limiter,
                    peer.as_ref(),
                    received_at,
                    answerer,
                    &mut answers[i],
                )
            {
                ready.push(i);
                peers.push(*peer);
            }
        }
        let mut sent = 0;
        while sent < ready.len() {
            let slices: Vec<[IoSlice<'_>; 1]> = ready[sent..]
                .iter()
                .map(|i| [IoSlice::new(&answers[*i])])
                .collect();
            match sendmmsg(
                fd,
                &mut send_headers,
                &slices,
                &peers[sent..],
                [],
                MsgFlags::empty(),
            ) {
                Ok(results) => {
                    let n = results.count();
                    if n == 0 {
                        break;
                    }
                    sent += n;
                }
                Err(e) => {
                    // The first unsent answer's peer is unreachable (or the buffer is full):
                    // skip it rather than stall the batch.
                    tracing::debug!(error = %e, "udp send error");
                    sent += 1;
                }
            }
        }
        answerer
            .metrics()
            .observe_latency(received_at.elapsed(), ready.len() as u64);
    }
}

async fn tcp_accept(
    listener: tokio::net::TcpListener,
    answerer: Answerer,
    config: ServerConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(config.tcp_max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Out of file descriptors and the like: pause instead of spinning on it.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    answerer.metrics().tcp_rejected();
                    drop(stream);
                    continue;
                };
                answerer.metrics().tcp_connection();
                let answerer = answerer.clone();
                let stopped = stopped.clone();
                let idle = config.tcp_idle_timeout;
                connections.spawn(async move {
                    tcp_connection(stream, &answerer, idle, stopped).await;
                    drop(permit);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(config.shutdown_grace, drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

/// Where each TCP connection starts rotating, so short connections do not all see one order.
static TCP_ROTATION: AtomicUsize = AtomicUsize::new(0);

/// Serves one TCP connection: length-prefixed queries, answered in order, until the client
/// closes, goes idle, or the server stops (after the answer in progress).
async fn tcp_connection(
    mut stream: tokio::net::TcpStream,
    answerer: &Answerer,
    idle: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut query = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(4096);
    let mut rotation = TCP_ROTATION.fetch_add(7, Ordering::Relaxed);
    let client = stream.peer_addr().ok().map(|a| a.ip());
    loop {
        let mut len = [0u8; 2];
        let read_len = tokio::select! {
            _ = stopped.changed() => return,
            r = tokio::time::timeout(idle, stream.read_exact(&mut len)) => r,
        };
        match read_len {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                answerer.metrics().tcp_idle_closed();
                return;
            }
        }
        let len = usize::from(u16::from_be_bytes(len));
        query.resize(len, 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut query)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                answerer.metrics().tcp_idle_closed();
                return;
            }
        }
        let received_at = std::time::Instant::now();
        if answerer.is_transfer(&query) {
            // Collecting a whole zone is blocking work: off the async workers.
            let (a, q) = (answerer.clone(), query.clone());
            let messages = tokio::task::spawn_blocking(move || a.transfer(&q, client))
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            for m in messages {
                if !write_frame(&mut stream, &m, idle, answerer).await {
                    return;
                }
            }
            continue;
        }
        rotation = rotation.wrapping_add(1);
        if guarded(answerer, &query, Transport::Tcp, rotation, client, &mut out)
            == crate::Outcome::Dropped
        {
            continue;
        }
        if !write_frame(&mut stream, &out, idle, answerer).await {
            return;
        }
        answerer.metrics().observe_latency(received_at.elapsed(), 1);
    }
}

/// Writes one length-prefixed message. A client that does not read it within `limit` (the
/// idle timeout) loses the connection, so clients that never read cannot hold every slot.
/// False when the connection is done.
async fn write_frame(
    stream: &mut tokio::net::TcpStream,
    message: &[u8],
    limit: Duration,
    answerer: &Answerer,
) -> bool {
    let mut frame = Vec::with_capacity(message.len() + 2);
    frame.extend_from_slice(&(message.len() as u16).to_be_bytes());
    frame.extend_from_slice(message);
    match tokio::time::timeout(limit, stream.write_all(&frame)).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            answerer.metrics().tcp_idle_closed();
            false
        }
    }
}
