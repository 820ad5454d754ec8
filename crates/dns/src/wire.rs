//! Just enough DNS wire parsing for the query path: the header, one question, the OPT record.
//! It reads borrowed bytes and allocates nothing; anything it cannot make sense of is a FORMERR
//! (or a silent drop when there is not even a header to answer).

/// Header length.
pub(crate) const HEADER: usize = 12;
/// Length of the OPT record we append.
pub(crate) const OPT_LEN: usize = 11;

pub(crate) const TYPE_SRV: u16 = 33;
pub(crate) const TYPE_OPT: u16 = 41;
pub(crate) const TYPE_IXFR: u16 = 251;
pub(crate) const TYPE_AXFR: u16 = 252;
pub(crate) const TYPE_MAILB: u16 = 253;
pub(crate) const TYPE_MAILA: u16 = 254;
pub(crate) const TYPE_ANY: u16 = 255;
pub(crate) const CLASS_IN: u16 = 1;

/// Response codes we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
    NotAuth = 9,
    /// Extended rcode 16: upper bits 1 in OPT, lower bits 0 in the header.
    BadVers = 16,
}

/// What the client's OPT record said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edns {
    pub(crate) payload: u16,
    pub(crate) version: u8,
    pub(crate) dnssec_ok: bool,
    /// The EDNS Client Subnet option (RFC 7871), when the query carried a well-formed one.
    pub(crate) client_subnet: Option<ClientSubnet>,
}

/// EDNS Client Subnet, as a resolver sends it on behalf of its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientSubnet {
    /// 1: IPv4, 2: IPv6.
    pub(crate) family: u16,
    /// Significant leading bits of `addr`.
    pub(crate) source: u8,
    /// The client's subnet (bits past `source` are zero).
    pub(crate) addr: std::net::IpAddr,
}

/// EDNS option code of Client Subnet.
const OPTION_ECS: u16 = 8;

impl ClientSubnet {
    /// Reads an ECS option body; `None` when malformed (then it is ignored, not trusted).
    fn parse(body: &[u8]) -> Option<Self> {
        let family = u16_at(body, 0)?;
        let source = *body.get(2)?;
        let addr = body.get(4..)?;
        let (max, width) = match family {
            1 => (32, 4),
            2 => (128, 16),
            _ => return None,
        };
        if source > max || addr.len() != usize::from(source).div_ceil(8) {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes[..addr.len()].copy_from_slice(addr);
        let addr = if width == 4 {
            std::net::IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
        } else {
            std::net::IpAddr::from(bytes)
        };
        Some(Self {
            family,
            source,
            addr,
        })
    }

    /// Bytes of the option as echoed with `scope` (RFC 7871 7.2.1).
    fn option_len(&self) -> usize {
        4 + 4 + usize::from(self.source).div_ceil(8)
    }
}

fn client_subnet(mut options: &[u8]) -> Option<ClientSubnet> {
    while let (Some(code), Some(len)) = (u16_at(options, 0), u16_at(options, 2)) {
        let end = 4 + usize::from(len);
        let body = options.get(4..end)?;
        if code == OPTION_ECS {
            return ClientSubnet::parse(body);
        }
        options = &options[end..];
    }
    None
}

/// Length of our OPT record in a response to a query with `edns`.
pub(crate) fn opt_len(edns: Option<Edns>) -> usize {
    match edns {
        None => 0,
        Some(e) => OPT_LEN + e.client_subnet.map_or(0, |c| c.option_len()),
    }
}

/// A query that parsed. `key` holds the lower-cased wire name, the table's lookup key.
pub(crate) struct Query<'a> {
    pub(crate) packet: &'a [u8],
    /// End of the question (name + type + class) in `packet`.
    pub(crate) question_end: usize,
    pub(crate) key: [u8; 255],
    pub(crate) key_len: usize,
    /// Offsets of label starts inside `key`.
    pub(crate) labels: [u8; 128],
    pub(crate) label_count: usize,
    pub(crate) qtype: u16,
    pub(crate) qclass: u16,
    pub(crate) edns: Option<Edns>,
    /// Whether the last additional record is a TSIG (the answer must then be signed, or be
    /// NOTAUTH: RFC 8945).
    pub(crate) signed: bool,
}

impl Query<'_> {
    pub(crate) fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }

    pub(crate) fn question(&self) -> &[u8] {
        &self.packet[HEADER..self.question_end]
    }

    /// Whether `suffix` (a lower-cased wire name) is the name or one of its ancestors; returns
    /// its offset inside the name.
    pub(crate) fn suffix_at(&self, suffix: &[u8]) -> Option<usize> {
        let at = self.key_len.checked_sub(suffix.len())?;
        let on_boundary = self.labels[..self.label_count]
            .iter()
            .any(|l| usize::from(*l) == at)
            || at + 1 == self.key_len;
        (on_boundary && &self.key[at..self.key_len] == suffix).then_some(at)
    }
}

/// Why a packet was not parsed into a [`Query`].
pub(crate) enum Reject {
    /// Not worth an answer: shorter than a header, or a response.
    Drop,
    /// Answer with this rcode; echo the question if it was read, add OPT if one was read.
    Error {
        rcode: Rcode,
        question_end: Option<usize>,
        edns: Option<Edns>,
    },
}

fn u16_at(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

/// Skips a possibly compressed name; returns the offset after it.
fn skip_name(p: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *p.get(at)?;
        match len & 0xC0 {
            0x00 if len == 0 => return Some(at + 1),
            0x00 => at += 1 + usize::from(len),
            0xC0 => return (at + 2 <= p.len()).then_some(at + 2),
            _ => return None,
        }
    }
    None
}

/// Skips one resource record; returns (offset after it, type, class, ttl, rdata range).
fn read_rr(p: &[u8], at: usize) -> Option<(usize, u16, u16, u32, usize, usize)> {
    let name_end = skip_name(p, at)?;
    let rtype = u16_at(p, name_end)?;
    let class = u16_at(p, name_end + 2)?;
    let ttl = (u32::from(u16_at(p, name_end + 4)?) << 16) | u32::from(u16_at(p, name_end + 6)?);
    let rdlen = usize::from(u16_at(p, name_end + 8)?);
    let rdata = name_end + 10;
    let end = rdata + rdlen;
    (end <= p.len()).then_some((end, rtype, class, ttl, rdata, end))
}

/// The smallest TTL of a response's records (OPT and TSIG aside): how long an HTTP cache may
/// keep a DoH answer (RFC 8484 section 5.1). `None` for a response without records.
pub(crate) fn min_ttl(p: &[u8]) -> Option<u32> {
    let mut at = HEADER;
    for _ in 0..u16_at(p, 4)? {
        at = skip_name(p, at)? + 4;
    }
    let records = u32::from(u16_at(p, 6)?) + u32::from(u16_at(p, 8)?) + u32::from(u16_at(p, 10)?);
    let mut least: Option<u32> = None;
    for _ in 0..records {
        let (end, rtype, _, ttl, _, _) = read_rr(p, at)?;
        if rtype != TYPE_OPT && rtype != crate::tsig::TYPE_TSIG {
            least = Some(least.map_or(ttl, |l| l.min(ttl)));
        }
        at = end;
    }
    least
}

/// The serial of the SOA record in an IXFR query's authority section (RFC 1995: the client's
/// version of the zone).
pub(crate) fn authority_soa_serial(p: &[u8], question_end: usize) -> Option<u32> {
    let an = u16_at(p, 6)?;
    let ns = u16_at(p, 8)?;
    let mut at = question_end;
    for _ in 0..an {
        at = read_rr(p, at)?.0;
    }
    for _ in 0..ns {
        let (end, rtype, _, _, _, rdata_end) = read_rr(p, at)?;
        if rtype == 6 && rdata_end >= 20 {
            let s = p.get(rdata_end - 20..rdata_end - 16)?;
            return Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
        }
        at = end;
    }
    None
}

/// Where the OPT record of one of our answers lies: the last additional record, found by
/// walking every record (not guessed from the tail, which an OPT with Client Subnet or record
/// data ending in the right bytes would fool).
fn opt_range(answer: &[u8]) -> Option<std::ops::Range<usize>> {
    let qd = u16_at(answer, 4)?;
    let records = [6, 8, 10]
        .iter()
        .map(|at| u16_at(answer, *at).map(usize::from))
        .sum::<Option<usize>>()?;
    if u16_at(answer, 10)? == 0 {
        return None;
    }
    let mut at = HEADER;
    for _ in 0..qd {
        at = skip_name(answer, at)? + 4;
    }
    for _ in 1..records {
        at = read_rr(answer, at)?.0;
    }
    let (end, rtype, ..) = read_rr(answer, at)?;
    (rtype == TYPE_OPT && end == answer.len()).then_some(at..end)
}

/// Cuts an answer down to its header and question with TC=1 and no records: "ask again over
/// TCP" (what a rate-limited client gets instead of the answer).
pub(crate) fn cut_to_truncated(answer: &mut Vec<u8>) {
    let question_end = if u16_at(answer, 4) == Some(1) {
        skip_name(answer, HEADER).map(|end| end + 4)
    } else {
        Some(HEADER)
    };
    // Our OPT, when the query had one, is the last record: keep it (OPT in, OPT out).
    let opt = opt_range(answer).map(|r| answer[r].to_vec());
    match question_end.filter(|end| *end <= answer.len()) {
        Some(end) => {
            answer.truncate(end);
            set_truncated(answer);
            set_count(answer, 1, 0);
            set_count(answer, 2, 0);
            set_count(answer, 3, u16::from(opt.is_some()));
            if let Some(opt) = opt {
                answer.extend_from_slice(&opt);
            }
        }
        None => answer.clear(),
    }
}

/// Parses a query. Only the first question is read; QDCOUNT must be 1.
pub(crate) fn parse(p: &[u8]) -> Result<Query<'_>, Reject> {
    if p.len() < HEADER || p[2] & 0x80 != 0 {
        return Err(Reject::Drop);
    }
    let formerr = |question_end, edns| Reject::Error {
        rcode: Rcode::FormErr,
        question_end,
        edns,
    };
    let opcode = (p[2] >> 3) & 0x0F;
    let qdcount = u16_at(p, 4).unwrap_or(0);
    if qdcount != 1 {
        let rcode = if opcode == 0 {
            Rcode::FormErr
        } else {
            Rcode::NotImp
        };
        return Err(Reject::Error {
            rcode,
            question_end: None,
            edns: None,
        });
    }
    let mut q = Query {
        packet: p,
        question_end: 0,
        key: [0; 255],
        key_len: 0,
        labels: [0; 128],
        label_count: 0,
        qtype: 0,
        qclass: 0,
        edns: None,
        signed: false,
    };
    let mut at = HEADER;
    loop {
        let Some(&len) = p.get(at) else {
            return Err(formerr(None, None));
        };
        if len & 0xC0 != 0 {
            return Err(formerr(None, None));
        }
        let len = usize::from(len);
        // A name is at most 255 octets on the wire, its root label included (RFC 1035 3.1).
        let too_long = len > 0 && q.key_len + 1 + len > 254;
        if too_long || at + 1 + len > p.len() || q.label_count == 128 {
            return Err(formerr(None, None));
        }
        if len == 0 {
            q.key[q.key_len] = 0;
            q.key_len += 1;
            at += 1;
            break;
        }
        q.labels[q.label_count] = q.key_len as u8;
        q.label_count += 1;
        q.key[q.key_len] = len as u8;
        for (dst, src) in q.key[q.key_len + 1..q.key_len + 1 + len]
            .iter_mut()
            .zip(&p[at + 1..at + 1 + len])
        {
            *dst = src.to_ascii_lowercase();
        }
        q.key_len += 1 + len;
        at += 1 + len;
    }
    let (Some(qtype), Some(qclass)) = (u16_at(p, at), u16_at(p, at + 2)) else {
        return Err(formerr(None, None));
    };
    q.qtype = qtype;
    q.qclass = qclass;
    q.question_end = at + 4;
    if opcode != 0 {
        return Err(Reject::Error {
            rcode: Rcode::NotImp,
            question_end: Some(q.question_end),
            edns: None,
        });
    }
    let question_end = Some(q.question_end);
    let counts = [u16_at(p, 6), u16_at(p, 8), u16_at(p, 10)];
    let [Some(an), Some(ns), Some(ar)] = counts else {
        return Err(formerr(question_end, None));
    };
    let mut at = q.question_end;
    for _ in 0..(u32::from(an) + u32::from(ns)) {
        match read_rr(p, at) {
            Some((end, ..)) => at = end,
            None => return Err(formerr(question_end, None)),
        }
    }
    for _ in 0..ar {
        let Some((end, rtype, class, ttl, rdata, rdata_end)) = read_rr(p, at) else {
            return Err(formerr(question_end, q.edns));
        };
        if rtype == TYPE_OPT {
            // RFC 6891: one OPT, owned by the root, with well-formed options.
            if q.edns.is_some() || p[at] != 0 || !options_well_formed(&p[rdata..rdata_end]) {
                return Err(formerr(question_end, q.edns));
            }
            q.edns = Some(Edns {
                payload: class,
                version: (ttl >> 16) as u8,
                dnssec_ok: ttl & 0x8000 != 0,
                client_subnet: client_subnet(&p[rdata..rdata_end]),
            });
        }
        q.signed = rtype == crate::tsig::TYPE_TSIG;
        at = end;
    }
    if qtype == TYPE_OPT || qtype == 0 {
        return Err(formerr(question_end, q.edns));
    }
    Ok(q)
}

fn options_well_formed(mut options: &[u8]) -> bool {
    while !options.is_empty() {
        let Some(len) = u16_at(options, 2) else {
            return false;
        };
        let end = 4 + usize::from(len);
        if end > options.len() {
            return false;
        }
        options = &options[end..];
    }
    true
}

/// Appends our OPT record: our payload size, the extended rcode bits, version 0, DO echoed
/// (RFC 3225), every other flag clear; no options but Client Subnet, echoed with the scope
/// the answer depends on (RFC 7871 7.2.1: 0 when it does not depend on the subnet).
pub(crate) fn push_opt(
    out: &mut Vec<u8>,
    payload: u16,
    rcode: Rcode,
    dnssec_ok: bool,
    client_subnet: Option<(ClientSubnet, u8)>,
) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    out.push(((rcode as u16) >> 4) as u8);
    out.push(0);
    out.push(if dnssec_ok { 0x80 } else { 0 });
    out.push(0);
    match client_subnet {
        None => out.extend_from_slice(&[0, 0]),
        Some((ecs, scope)) => {
            let len = ecs.option_len();
            out.extend_from_slice(&(len as u16).to_be_bytes());
            out.extend_from_slice(&OPTION_ECS.to_be_bytes());
            out.extend_from_slice(&((len - 4) as u16).to_be_bytes());
            out.extend_from_slice(&ecs.family.to_be_bytes());
            out.push(ecs.source);
            out.push(scope.min(ecs.source));
            let n = usize::from(ecs.source).div_ceil(8);
            match ecs.addr {
                std::net::IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..n]),
                std::net::IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..n]),
            }
        }
    }
}

/// Writes a response header. `aa` for answers from our zone.
pub(crate) fn push_header(
    out: &mut Vec<u8>,
    query: &[u8],
    rcode: Rcode,
    aa: bool,
    counts: [u16; 4],
) {
    out.extend_from_slice(&query[..2]);
    // QR, opcode echoed, AA, TC clear (set later), RD echoed.
    let opcode_rd = query[2] & 0x79;
    out.push(0x80 | opcode_rd | if aa { 0x04 } else { 0 });
    // RA clear, Z clear, AD clear, CD echoed (RFC 6840), rcode low bits.
    out.push((query[3] & 0x10) | ((rcode as u8) & 0x0F));
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
}

/// Sets TC.
pub(crate) fn set_truncated(out: &mut [u8]) {
    out[2] |= 0x02;
}

/// Overwrites a section count (0 = QD, 1 = AN, 2 = NS, 3 = AR).
pub(crate) fn set_count(out: &mut [u8], section: usize, count: u16) {
    out[4 + 2 * section..6 + 2 * section].copy_from_slice(&count.to_be_bytes());
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
