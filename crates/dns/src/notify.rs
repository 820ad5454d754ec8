//! NOTIFY (RFC 1996): tells secondaries the zone changed, so they transfer it within a second
//! instead of at their next SOA refresh.
//!
//! One task per secondary. Changes are coalesced: a secondary is told the newest serial, at most
//! once per [`SPACING`], and each NOTIFY is retried with backoff until the secondary answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::AnswerTable;
use crate::wire::HEADER;

/// Least time between two NOTIFYs to one secondary: churn becomes a few NOTIFYs a second.
const SPACING: Duration = Duration::from_millis(250);
/// Attempts per NOTIFY (RFC 1996 suggests retrying; BIND tries five times).
const ATTEMPTS: u32 = 5;

/// Sends NOTIFYs to every configured secondary whenever `synced` (the generation the table
/// serves) moves, until `stop` turns true.
pub async fn notify_secondaries(
    table: Arc<AnswerTable>,
    synced: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for secondary in table.zone.transfer.notify.clone() {
        tasks.spawn(notify_one(
            Arc::clone(&table),
            secondary,
            synced.clone(),
            stop.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn notify_one(
    table: Arc<AnswerTable>,
    secondary: SocketAddr,
    mut synced: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut told: Option<u32> = None;
    let mut id: u16 = (std::process::id() as u16) ^ secondary.port();
    loop {
        let serial = table.serial();
        if told != Some(serial) && *synced.borrow() > 0 {
            id = id.wrapping_add(1);
            if send(&table, secondary, id).await {
                told = Some(serial);
                tracing::debug!(%secondary, serial, "NOTIFY acknowledged");
            } else {
                tracing::warn!(%secondary, serial, "NOTIFY not acknowledged after {ATTEMPTS} tries");
                told = Some(serial);
            }
            tokio::time::sleep(SPACING).await;
            continue;
        }
        tokio::select! {
            r = synced.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One NOTIFY with retries (1 s, then doubling); true once the secondary answered it.
async fn send(table: &AnswerTable, secondary: SocketAddr, id: u16) -> bool {
    let bind: SocketAddr = if secondary.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let Ok(socket) = UdpSocket::bind(bind).await else {
        return false;
    };
    if socket.connect(secondary).await.is_err() {
        return false;
    }
    let mut message = message(&table.origin_key, id);
    // The current SOA in the answer section (RFC 1996 3.7): the secondary may skip its SOA query.
    if let Some(soa) = table.current_soa() {
        message.extend_from_slice(&table.origin_key);
        message.extend_from_slice(&soa);
        message[7] = 1;
    }
    let mut wait = Duration::from_secs(1);
    let mut buf = [0u8; 512];
    for _ in 0..ATTEMPTS {
        if socket.send(&message).await.is_err() {
            return false;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Ok(Ok(n)) if is_answer(&buf[..n], id) => return true,
                Ok(Ok(_)) => continue,
                Ok(Err(_)) | Err(_) => break,
            }
        }
        wait *= 2;
    }
    false
}

/// A NOTIFY for the zone's SOA: opcode 4, AA, one question.
fn message(origin: &[u8], id: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER + origin.len() + 4);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x24, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(origin);
    m.extend_from_slice(&6u16.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

fn is_answer(m: &[u8], id: u16) -> bool {
    m.len() >= HEADER && m[..2] == id.to_be_bytes() && m[2] & 0x80 != 0 && (m[2] >> 3) & 0x0F == 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_messages() {
        let m = message(b"\x03ecs\x08internal\x00", 7);
        assert_eq!(&m[..4], &[0, 7, 0x24, 0]);
        assert_eq!(m.len(), HEADER + 14 + 4);
        let mut reply = m.clone();
        reply[2] |= 0x80;
        assert!(is_answer(&reply, 7));
        assert!(!is_answer(&reply, 8));
        assert!(!is_answer(&m, 7), "our own query is not an answer");
    }
}
