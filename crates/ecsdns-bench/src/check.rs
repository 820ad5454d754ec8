//! Before comparing speed: every server must give the same answers (rcode, answer RRsets, and the
//! addresses in the additional section) for a sample of names.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{Context, bail};
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::servers::Server;

/// What a server said, normalised for comparison (order and compression do not matter).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    rcode: String,
    truncated: bool,
    answers: BTreeSet<String>,
    additional: BTreeSet<String>,
}

fn ask(server: SocketAddr, name: &str, qtype: RecordType) -> anyhow::Result<Answer> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    sock.send_to(&crate::data::query(name, qtype, 4242), server)?;
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .with_context(|| format!("no answer from {server} for {name}"))?;
    let m = Message::from_vec(&buf[..n])?;
    let show = |r: &hickory_proto::rr::Record| {
        format!(
            "{} {} {} {}",
            r.name.to_ascii().to_lowercase(),
            r.ttl,
            r.record_type(),
            r.data
        )
    };
    Ok(Answer {
        rcode: m.metadata.response_code.to_string(),
        truncated: m.metadata.truncation,
        answers: m.answers.iter().map(show).collect(),
        additional: m
            .additionals
            .iter()
            .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
            .map(show)
            .collect(),
    })
}

/// Compares every server with the first on `sample`; returns how many (name, type) pairs
/// matched, or the first difference.
pub(crate) fn answers_match(
    servers: &[&Server],
    sample: &[(String, RecordType)],
) -> anyhow::Result<usize> {
    let Some((reference, others)) = servers.split_first() else {
        return Ok(0);
    };
    for (name, qtype) in sample {
        let want = ask(reference.addr, name, *qtype)?;
        for other in others {
            let mut got = ask(other.addr, name, *qtype)?;
            // NSD does no additional-section processing for SRV; compare its answers only.
            let mut want = Answer { ..want.clone() };
            if other.kind == crate::servers::Kind::Nsd {
                got.additional.clear();
                want.additional.clear();
            }
            if got != want {
                bail!(
                    "{} and {} disagree on {name} {qtype}:\n  {}: {want:?}\n  {}: {got:?}",
                    reference.kind.name(),
                    other.kind.name(),
                    reference.kind.name(),
                    other.kind.name()
                );
            }
        }
    }
    Ok(sample.len())
}
