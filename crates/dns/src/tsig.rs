//! TSIG (RFC 8945) with HMAC-SHA256: verifying signed transfer requests and signing the
//! responses, every message of a multi-message transfer chained to the previous MAC.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::DnsError;

/// A shared secret secondaries sign their transfer requests with.
#[derive(Clone)]
pub struct TsigKey {
    /// Key name, lower-case wire form.
    pub(crate) name: Vec<u8>,
    /// The name as configured, for logs.
    pub display: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "TsigKey({})", self.display)
    }
}

/// `hmac-sha256.` in wire form, the one algorithm offered.
const HMAC_SHA256: &[u8] = b"\x0bhmac-sha256\x00";
/// TSIG RR type.
pub(crate) const TYPE_TSIG: u16 = 250;
/// Class ANY, as TSIG records carry.
const CLASS_ANY: u16 = 255;
/// Allowed clock skew, seconds (RFC 8945 recommends 300).
const FUDGE: u16 = 300;

/// TSIG errors (RFC 8945 5.2: BADSIG, BADKEY, BADTIME), sent with rcode NOTAUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TsigError {
    Sig = 16,
    Key = 17,
    Time = 18,
}

impl TsigKey {
    /// Parses `NAME:hmac-sha256:BASE64SECRET` (the algorithm may be left out).
    pub fn parse(spec: &str) -> Result<Self, DnsError> {
        use base64::Engine;
        let bad = |why: &str| {
            DnsError::Config(format!(
                "TSIG key: {why} (expected NAME:hmac-sha256:BASE64)"
            ))
        };
        let parts: Vec<&str> = spec.trim().split(':').collect();
        let (name, secret) = match parts.as_slice() {
            [name, alg, secret] if alg.eq_ignore_ascii_case("hmac-sha256") => (*name, *secret),
            [_, alg, _] => return Err(bad(&format!("algorithm {alg} is not offered"))),
            [name, secret] => (*name, *secret),
            _ => return Err(bad("wrong number of fields")),
        };
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret)
            .map_err(|_| bad("the secret is not base64"))?;
        if secret.is_empty() {
            return Err(bad("empty secret"));
        }
        let parsed = crate::config::parse_name(name)?;
        let mut wire = Vec::new();
        for label in parsed.iter() {
            wire.push(label.len() as u8);
            wire.extend(label.iter().map(u8::to_ascii_lowercase));
        }
        wire.push(0);
        Ok(Self {
            name: wire,
            display: parsed.to_string(),
            secret,
        })
    }

    fn mac(&self) -> Option<Hmac<Sha256>> {
        Hmac::<Sha256>::new_from_slice(&self.secret).ok()
    }
}

/// A verified request: which key, and its MAC (the first response's MAC covers it).
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    key: usize,
    request_mac: Vec<u8>,
    original_id: u16,
}

/// What a request's TSIG said.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// No TSIG record.
    Unsigned,
    /// Signed by a known key, MAC and time good.
    Valid(Signed),
    /// Signed, but not acceptably: answer NOTAUTH with this error.
    Invalid {
        error: TsigError,
        /// Key name and algorithm as the request gave them, to echo.
        key_name: Vec<u8>,
        original_id: u16,
    },
}

fn u16_at(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

/// The uncompressed name at `at` (TSIG names must not be compressed), and where it ends.
fn name_at(p: &[u8], mut at: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    loop {
        let len = usize::from(*p.get(at)?);
        if len & 0xC0 != 0 || out.len() + len + 1 > 255 {
            return None;
        }
        out.push(len as u8);
        out.extend(
            p.get(at + 1..at + 1 + len)?
                .iter()
                .map(u8::to_ascii_lowercase),
        );
        at += 1 + len;
        if len == 0 {
            return Some((out, at));
        }
    }
}

/// Skips a possibly compressed name.
fn skip_name(p: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *p.get(at)?;
        match len & 0xC0 {
            0x00 if len == 0 => return Some(at + 1),
            0x00 => at += 1 + usize::from(len),
            0xC0 => return Some(at + 2),
            _ => return None,
        }
    }
}

/// Finds the TSIG record, which must be the last additional record. Returns where it starts.
fn find_tsig(p: &[u8]) -> Option<usize> {
    let counts: Vec<usize> = (0..4)
        .map(|i| u16_at(p, 4 + 2 * i).map(usize::from))
        .collect::<Option<_>>()?;
    if counts[3] == 0 {
        return None;
    }
    let mut at = 12;
    for _ in 0..counts[0] {
        at = skip_name(p, at)? + 4;
    }
    let records = counts[1] + counts[2] + counts[3];
    let mut last = at;
    for _ in 0..records {
        last = at;
        let end = skip_name(p, at)?;
        let rdlen = usize::from(u16_at(p, end + 8)?);
        at = end + 10 + rdlen;
        if at > p.len() {
            return None;
        }
    }
    let end = skip_name(p, last)?;
    (u16_at(p, end)? == TYPE_TSIG).then_some(last)
}

/// Checks a request's TSIG against `keys` at time `now` (Unix seconds).
pub(crate) fn verify(p: &[u8], keys: &[TsigKey], now: u64) -> Verdict {
    let Some(at) = find_tsig(p) else {
        return Verdict::Unsigned;
    };
    let parsed = (|| {
        let (key_name, end) = name_at(p, at)?;
        let rdata = end + 10;
        let (alg, after_alg) = name_at(p, rdata)?;
        let time = (u64::from(u16_at(p, after_alg)?) << 32)
            | (u64::from(u16_at(p, after_alg + 2)?) << 16)
            | u64::from(u16_at(p, after_alg + 4)?);
        let fudge = u16_at(p, after_alg + 6)?;
        let mac_len = usize::from(u16_at(p, after_alg + 8)?);
        let mac = p.get(after_alg + 10..after_alg + 10 + mac_len)?.to_vec();
        let original_id = u16_at(p, after_alg + 10 + mac_len)?;
        let error = u16_at(p, after_alg + 12 + mac_len)?;
        let other_len = usize::from(u16_at(p, after_alg + 14 + mac_len)?);
        let other = p.get(after_alg + 16 + mac_len..after_alg + 16 + mac_len + other_len)?;
        Some((
            key_name,
            alg,
            time,
            fudge,
            mac,
            original_id,
            error,
            other.to_vec(),
        ))
    })();
    let Some((key_name, alg, time, fudge, mac, original_id, error, other)) = parsed else {
        return Verdict::Invalid {
            error: TsigError::Sig,
            key_name: Vec::new(),
            original_id: u16_at(p, 0).unwrap_or(0),
        };
    };
    let invalid = |error| Verdict::Invalid {
        error,
        key_name: key_name.clone(),
        original_id,
    };
    let Some(index) = keys.iter().position(|k| k.name == key_name) else {
        return invalid(TsigError::Key);
    };
    if alg != HMAC_SHA256 {
        return invalid(TsigError::Key);
    }
    let Some(mut h) = keys[index].mac() else {
        return invalid(TsigError::Key);
    };
    // The message as signed: without the TSIG record, ARCOUNT one less, the original id.
    let mut message = p[..at].to_vec();
    message[..2].copy_from_slice(&original_id.to_be_bytes());
    let ar = u16_at(p, 10).unwrap_or(1).saturating_sub(1);
    message[10..12].copy_from_slice(&ar.to_be_bytes());
    h.update(&message);
    h.update(&key_name);
    h.update(&CLASS_ANY.to_be_bytes());
    h.update(&0u32.to_be_bytes());
    h.update(&alg);
    h.update(&time.to_be_bytes()[2..]);
    h.update(&fudge.to_be_bytes());
    h.update(&error.to_be_bytes());
    h.update(&(other.len() as u16).to_be_bytes());
    h.update(&other);
    if mac.len() < 16 || h.verify_truncated_left(&mac).is_err() {
        return invalid(TsigError::Sig);
    }
    if now.abs_diff(time) > u64::from(fudge) {
        return invalid(TsigError::Time);
    }
    Verdict::Valid(Signed {
        key: index,
        request_mac: mac,
        original_id,
    })
}

/// Signs the messages of one response in order (RFC 8945 5.3.1: the first covers the request
/// MAC and all TSIG variables, each next one the previous MAC and the timers).
pub(crate) fn sign_all(messages: &mut [Vec<u8>], signed: &Signed, keys: &[TsigKey], now: u64) {
    let Some(key) = keys.get(signed.key) else {
        return;
    };
    let mut prior = signed.request_mac.clone();
    for (i, message) in messages.iter_mut().enumerate() {
        let Some(mut h) = key.mac() else { return };
        h.update(&(prior.len() as u16).to_be_bytes());
        h.update(&prior);
        h.update(message);
        if i == 0 {
            h.update(&key.name);
            h.update(&CLASS_ANY.to_be_bytes());
            h.update(&0u32.to_be_bytes());
            h.update(HMAC_SHA256);
            h.update(&now.to_be_bytes()[2..]);
            h.update(&FUDGE.to_be_bytes());
            h.update(&0u16.to_be_bytes());
            h.update(&0u16.to_be_bytes());
        } else {
            h.update(&now.to_be_bytes()[2..]);
            h.update(&FUDGE.to_be_bytes());
        }
        let mac = h.finalize().into_bytes().to_vec();
        push_tsig(message, &key.name, now, &mac, signed.original_id, 0);
        prior = mac;
    }
}

/// Appends a TSIG record and counts it in ARCOUNT.
pub(crate) fn push_tsig(
    message: &mut Vec<u8>,
    key_name: &[u8],
    now: u64,
    mac: &[u8],
    original_id: u16,
    error: u16,
) {
    let name = if key_name.is_empty() {
        &[0u8][..]
    } else {
        key_name
    };
    message.extend_from_slice(name);
    message.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    let rdlen = HMAC_SHA256.len() + 6 + 2 + 2 + mac.len() + 2 + 2 + 2;
    message.extend_from_slice(&(rdlen as u16).to_be_bytes());
    message.extend_from_slice(HMAC_SHA256);
    message.extend_from_slice(&now.to_be_bytes()[2..]);
    message.extend_from_slice(&FUDGE.to_be_bytes());
    message.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    message.extend_from_slice(mac);
    message.extend_from_slice(&original_id.to_be_bytes());
    message.extend_from_slice(&error.to_be_bytes());
    message.extend_from_slice(&0u16.to_be_bytes());
    let ar = u16_at(message, 10).unwrap_or(0).saturating_add(1);
    message[10..12].copy_from_slice(&ar.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_hide_their_secret() {
        let k = TsigKey::parse("xfr-key:hmac-sha256:c2VjcmV0c2VjcmV0").unwrap();
        assert_eq!(k.name, b"\x07xfr-key\x00");
        assert!(!format!("{k:?}").contains("c2Vj"));
        assert!(TsigKey::parse("k:hmac-md5:c2VjcmV0").is_err());
        assert!(TsigKey::parse("k:hmac-sha256:***").is_err());
        assert!(TsigKey::parse("k").is_err());
    }
}
