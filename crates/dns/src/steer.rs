//! One UDP socket per worker (`SO_REUSEPORT`), with a classic BPF program that steers each
//! client prefix to one socket.
//!
//! With one shared socket every worker takes packets from every client, so a per-worker rate
//! limiter can only get a share of the rate right. With a socket per worker and the kernel's
//! default 4-tuple hash, one client's source ports still spread over workers. The program picks
//! the socket from the same prefix the rate limiter keys on (IPv4 /24, IPv6 /56), so all of a
//! prefix's queries land on one worker and its limiter applies the whole configured rate, as in
//! Knot and NSD. Where the kernel refuses any of it, the server falls back to one shared socket.

use std::net::{SocketAddr, UdpSocket};

use nix::libc::{sock_filter, sock_fprog};
use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

// Classic BPF (linux/filter.h).
const LD_B_ABS: u16 = 0x10 | 0x20;
const LD_W_ABS: u16 = 0x20;
const LDX_MEM: u16 = 0x01 | 0x60;
const ST: u16 = 0x02;
const ALU_RSH_K: u16 = 0x04 | 0x70;
const ALU_MOD_K: u16 = 0x04 | 0x90;
const ALU_XOR_X: u16 = 0x04 | 0xa0 | 0x08;
const JMP_JEQ_K: u16 = 0x05 | 0x10;
const RET_A: u16 = 0x06 | 0x10;
/// Loads relative to the network header (`SKF_NET_OFF`): the program sees the UDP payload.
const NET: u32 = (-0x10_0000i32) as u32;

fn op(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The program: socket index = hash of the client prefix modulo `sockets`. IPv4: the source
/// address's top 24 bits; IPv6: its top 56 bits folded into one word.
pub(crate) fn program(sockets: u32) -> Vec<sock_filter> {
    let n = sockets.max(1);
    vec![
        op(LD_B_ABS, NET),
        op(ALU_RSH_K, 4),
        sock_filter {
            code: JMP_JEQ_K,
            jt: 4,
            jf: 0,
            k: 6,
        },
        // IPv4: source at 12.
        op(LD_W_ABS, NET + 12),
        op(ALU_RSH_K, 8),
        op(ALU_MOD_K, n),
        op(RET_A, 0),
        // IPv6: source at 8; words at 8 and 12, the second without its last byte.
        op(LD_W_ABS, NET + 8),
        op(ST, 0),
        op(LD_W_ABS, NET + 12),
        op(ALU_RSH_K, 8),
        op(LDX_MEM, 0),
        op(ALU_XOR_X, 0),
        op(ALU_MOD_K, n),
        op(RET_A, 0),
    ]
}

/// Binds a UDP socket that more sockets can join (`SO_REUSEPORT`).
pub(crate) fn bind_shared(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// `workers` sockets for one address: `first` (bound by [`bind_shared`]) and more bound beside
/// it, steered by client prefix. `Err` with the reason when it cannot be done; the caller then
/// shares `first` between workers.
pub(crate) fn group(first: &UdpSocket, workers: usize) -> Result<Vec<UdpSocket>, String> {
    if !SockRef::from(first)
        .reuse_port()
        .map_err(|e| e.to_string())?
    {
        return Err("the socket was bound without SO_REUSEPORT".into());
    }
    let addr = first.local_addr().map_err(|e| e.to_string())?;
    let mut sockets = vec![first.try_clone().map_err(|e| e.to_string())?];
    for _ in 1..workers {
        sockets.push(bind_shared(addr).map_err(|e| format!("cannot bind {addr} again: {e}"))?);
    }
    let mut filter = program(workers as u32);
    let prog = sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    setsockopt(first, sockopt::AttachReusePortCbpf, &prog)
        .map_err(|e| format!("cannot attach the steering program: {e}"))?;
    Ok(sockets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Which socket of the group each of `ports` client sockets on `ip` reaches.
    fn arrivals(group: &[UdpSocket], ip: &str, ports: usize) -> Vec<usize> {
        let to = group[0].local_addr().unwrap();
        for _ in 0..ports {
            let c = UdpSocket::bind(format!("{ip}:0")).unwrap();
            c.send_to(b"hello", to).unwrap();
        }
        let mut seen = Vec::new();
        let mut buf = [0u8; 64];
        for (i, s) in group.iter().enumerate() {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            while seen.len() < ports && s.recv(&mut buf).is_ok() {
                seen.push(i);
                s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            }
        }
        seen
    }

    #[test]
    fn a_prefix_always_reaches_the_same_socket() {
        let first = bind_shared("127.0.0.1:0".parse().unwrap()).unwrap();
        let group = group(&first, 2).unwrap();
        assert_eq!(group.len(), 2);
        // 127.0.0.0/24 hashes to socket 0, 127.0.1.0/24 to socket 1, from any source port.
        assert_eq!(arrivals(&group, "127.0.0.1", 8), vec![0; 8]);
        assert_eq!(arrivals(&group, "127.0.0.9", 8), vec![0; 8]);
        assert_eq!(arrivals(&group, "127.0.1.1", 8), vec![1; 8]);
    }

    #[test]
    fn ipv6_prefixes_are_steered_too() {
        let Ok(first) = bind_shared("[::1]:0".parse().unwrap()) else {
            panic!("::1 must be available for the tests (loopback)");
        };
        let group = group(&first, 3).unwrap();
        // ::1's top 56 bits are zero: socket 0, from every port.
        assert_eq!(arrivals(&group, "[::1]", 8), vec![0; 8]);
    }

    #[test]
    fn a_socket_bound_without_reuseport_is_refused_not_broken() {
        let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(group(&plain, 2).is_err());
    }
}
