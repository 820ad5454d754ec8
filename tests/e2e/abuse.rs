//! Abuse limits over real sockets: UDP response rate limiting per client prefix, with slips to
//! TC=1 so real clients move to TCP, which is never limited.

use std::net::UdpSocket;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use testkit::http::{get, metric};
use testkit::{Process, query, tcp, udp_raw};

/// The demo with UDP answers limited to 50 a second per prefix, every `slip`-th limited one sent
/// truncated.
fn rate_limited_demo(slip: &str) -> Process {
    Process::start(&[
        "demo",
        "--dns-addr",
        "127.0.0.1:0",
        "--no-churn",
        "--rrl-rate",
        "50",
        "--rrl-slip",
        slip,
    ])
}

#[test]
fn rate_limited_clients_get_truncation_and_tcp_still_answers() {
    let p = rate_limited_demo("2");
    let name = "web.demo.ecs.internal.";
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Room for every reply of the burst (the kernel caps it at twice net.core.rmem_max).
    let sock: UdpSocket = {
        let s = socket2::Socket::from(sock);
        s.set_recv_buffer_size(4 << 20).unwrap();
        s.into()
    };
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // Replies are read while the queries go out, so a loaded machine cannot overflow the
    // socket's receive buffer and lose some (the counts below are exact).
    let reader = {
        let sock = sock.try_clone().unwrap();
        std::thread::spawn(move || {
            let (mut full, mut truncated) = (0, 0);
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let reply = Message::from_vec(&buf[..n]).unwrap();
                if reply.metadata.truncation {
                    assert!(reply.answers.is_empty(), "a slip carries no records");
                    truncated += 1;
                } else {
                    assert!(!reply.answers.is_empty());
                    full += 1;
                }
            }
            (full, truncated)
        })
    };
    let mut m = query(name, RecordType::A);
    for id in 0..400u16 {
        m.metadata.id = id;
        sock.send_to(&m.to_vec().unwrap(), p.dns).unwrap();
        // Bursts of 32, so the server's receive buffer never overflows on a loaded machine
        // (25 ms in all: the bucket refills about one token meanwhile).
        if id % 32 == 31 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let (full, truncated) = reader.join().unwrap();
    let mut buf = [0u8; 4096];
    assert!(
        (20..=100).contains(&full),
        "about 50 answers a second pass: {full}"
    );
    assert!(
        truncated >= 100,
        "every 2nd limited answer slips: {truncated}"
    );
    assert!(full + truncated < 400, "the rest are dropped");
    let page = get(&format!("http://{}/metrics", p.api.unwrap())).body;
    let dropped = metric(&page, "ecsdns_dns_rrl_dropped_total").unwrap();
    let slipped = metric(&page, "ecsdns_dns_rrl_slipped_total").unwrap();
    assert_eq!(slipped as usize, truncated);
    assert_eq!(dropped as usize + slipped as usize + full, 400);

    // TCP proves the address: never limited.
    let answer = tcp(p.dns, &query(name, RecordType::A));
    assert!(!answer.answers.is_empty() && !answer.metadata.truncation);
    // Another /24 has its own budget.
    let other = UdpSocket::bind("127.0.1.1:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    other
        .send_to(&query(name, RecordType::A).to_vec().unwrap(), p.dns)
        .unwrap();
    let n = other.recv(&mut buf).unwrap();
    let reply = Message::from_vec(&buf[..n]).unwrap();
    assert!(!reply.answers.is_empty() && !reply.metadata.truncation);
    // And the limited prefix gets answers again once its bucket refills.
    std::thread::sleep(Duration::from_millis(300));
    let again = udp_raw(
        p.dns,
        &query(name, RecordType::A).to_vec().unwrap(),
        Duration::from_secs(2),
    );
    assert!(again.is_some_and(|r| !Message::from_vec(&r).unwrap().answers.is_empty()));
}

/// A TCP client that sends queries and never reads their answers loses its connection after
/// the idle timeout, so such clients cannot hold every connection slot.
#[test]
fn a_tcp_client_that_never_reads_is_dropped_and_its_slot_freed() {
    use std::io::{Read, Write};
    let server = crate::fixture::start("tcp-stall", &crate::fixture::rules_endpoints(), |s| {
        s.tcp_idle_timeout = Duration::from_secs(1);
        s.tcp_max_connections = 1;
    });
    let big = query("big.prod.ecs.internal.", RecordType::SRV)
        .to_vec()
        .unwrap();
    let mut framed = (big.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&big);
    // Thousands of ~5 KB answers: far more than the socket buffers hold.
    let mut stalled = std::net::TcpStream::connect(server.dns).unwrap();
    let burst: Vec<u8> = framed
        .iter()
        .copied()
        .cycle()
        .take(framed.len() * 4_000)
        .collect();
    stalled
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stalled.write_all(&burst);
    // While it holds the only slot, another client is turned away...
    std::thread::sleep(Duration::from_millis(200));
    // ...until the server gives up on writing to it (1 s), then it is answered.
    let answer = testkit::eventually(Duration::from_secs(10), "the slot freed", || {
        let mut c = std::net::TcpStream::connect(server.dns).ok()?;
        c.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
        c.write_all(&framed).ok()?;
        let mut len = [0u8; 2];
        c.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        c.read_exact(&mut body).ok()?;
        Some(Message::from_vec(&body).unwrap())
    });
    assert_eq!(answer.answers.len(), 60);
    let stats = server.app.dns_metrics.snapshot();
    assert!(
        stats.tcp_rejected >= 1,
        "turned away while the slot was held"
    );
    assert!(stats.tcp_idle_closed >= 1, "the stalled client was dropped");
    drop(stalled);
}

/// Full answers one client gets for `queries` sent from `ports` source ports on `ip`, read as
/// they come, and how long sending took.
fn burst_from(ip: &str, ports: usize, queries: u16, dns: std::net::SocketAddr) -> (usize, f64) {
    let name = "web.demo.ecs.internal.";
    let socks: Vec<UdpSocket> = (0..ports)
        .map(|_| {
            let s = UdpSocket::bind(format!("{ip}:0")).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            s
        })
        .collect();
    let readers: Vec<_> = socks
        .iter()
        .map(|s| {
            let s = s.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut full = 0;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.recv(&mut buf) {
                    if !Message::from_vec(&buf[..n]).unwrap().answers.is_empty() {
                        full += 1;
                    }
                }
                full
            })
        })
        .collect();
    let mut m = query(name, RecordType::A);
    let started = std::time::Instant::now();
    for id in 0..queries {
        m.metadata.id = id;
        socks[usize::from(id) % ports]
            .send_to(&m.to_vec().unwrap(), dns)
            .unwrap();
        if id % 32 == 31 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let took = started.elapsed().as_secs_f64();
    (readers.into_iter().map(|r| r.join().unwrap()).sum(), took)
}

#[test]
fn each_prefix_gets_exactly_its_rate_however_many_ports_it_uses() {
    // UDP workers default to one per core; with two or more each has its own socket, and the
    // kernel steers a prefix's queries to one of them (the limiter there has the whole rate).
    let p = rate_limited_demo("0");
    for ip in ["127.0.0.1", "127.0.1.1"] {
        let (full, took) = burst_from(ip, 16, 200, p.dns);
        // The bucket starts full (50) and refills 50 tokens a second while the burst goes out.
        let most = 51 + (took * 50.0) as usize;
        assert!(
            (48..=most).contains(&full),
            "{ip}: {full} answers from 16 ports in {took:.3} s against a rate of 50"
        );
    }
}
