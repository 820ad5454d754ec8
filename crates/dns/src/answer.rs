//! The answer function: query bytes in, response bytes out, for UDP and TCP alike.
//!
//! This is the hot path: one parse without allocation, one hash lookup, copies of prepared
//! bytes. Every DNS rule that depends on the query (0x20 case echo, EDNS, truncation, rotation)
//! is applied here; every rule that depends on the data was applied when it was prepared.

use std::net::IpAddr;
use std::sync::Arc;

use crate::entry::{Rrset, Units};
use crate::metrics::DnsMetrics;
use crate::table::AnswerTable;
use crate::wire::{
    self, CLASS_IN, Edns, HEADER, Query, Rcode, Reject, TYPE_ANY, TYPE_AXFR, TYPE_IXFR, TYPE_MAILA,
    TYPE_MAILB, TYPE_SRV,
};

/// Which transport a query came over: it sets the size limit of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// 512 bytes without EDNS, else the smaller of the client's and our payload size.
    Udp,
    /// 65,535 bytes.
    Tcp,
    /// DNS over TLS (RFC 7858): as TCP.
    Tls,
    /// DNS over HTTPS (RFC 8484): as TCP.
    Https,
}

/// What became of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response is in the output buffer.
    Answered {
        /// Response code (extended codes included, e.g. 16 for BADVERS).
        rcode: u16,
        /// TC was set.
        truncated: bool,
    },
    /// Nothing to send (no header, or a response sent to us).
    Dropped,
}

/// Answers queries from an [`AnswerTable`]. Cheap to clone; one per worker.
#[derive(Clone)]
pub struct Answerer {
    table: Arc<AnswerTable>,
    metrics: Arc<DnsMetrics>,
}

impl Answerer {
    /// An answerer over `table`, counting into `metrics`.
    pub fn new(table: Arc<AnswerTable>, metrics: Arc<DnsMetrics>) -> Self {
        Self { table, metrics }
    }

    /// Whether `query` asks for a zone transfer (AXFR or IXFR), which TCP serves with
    /// [`Answerer::transfer`].
    pub fn is_transfer(&self, query: &[u8]) -> bool {
        wire::parse(query).is_ok_and(|q| q.qtype == TYPE_AXFR || q.qtype == TYPE_IXFR)
    }

    /// Whether `query` is TSIG-signed (its answer is signed over the exact bytes sent).
    pub fn is_signed(&self, query: &[u8]) -> bool {
        wire::parse(query).is_ok_and(|q| q.signed)
    }

    /// The messages answering a transfer query from `client` (over TCP), in order: the zone,
    /// the changes since the client's serial, or a refusal. `None` if it is not a transfer.
    pub fn transfer(&self, query: &[u8], client: Option<IpAddr>) -> Option<Vec<Vec<u8>>> {
        let messages = self.table.transfer(query, client)?;
        self.metrics.transfer(messages.len());
        Some(messages)
    }

    /// Whether any answer depends on the client's address (same-AZ-first is configured).
    pub fn follows_client_az(&self) -> bool {
        self.table.zone.az.enabled()
    }

    /// The counters this answerer moves.
    pub fn metrics(&self) -> &Arc<DnsMetrics> {
        &self.metrics
    }

    /// Writes the response to `query` into `out` (cleared first). `rotation` picks which record
    /// of each RRset comes first; callers pass a counter so answers rotate.
    pub fn respond(
        &self,
        query: &[u8],
        transport: Transport,
        rotation: usize,
        out: &mut Vec<u8>,
    ) -> Outcome {
        self.respond_from(query, transport, rotation, None, out)
    }

    /// [`Answerer::respond`] for a query from `client`: names set to follow the client's AZ
    /// list the endpoints in the client's AZ first (or only those).
    pub fn respond_from(
        &self,
        query: &[u8],
        transport: Transport,
        rotation: usize,
        client: Option<IpAddr>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        out.clear();
        let (qtype, outcome) = match wire::parse(query) {
            Ok(q) if q.signed => {
                // Rare (a secondary's signed SOA refresh): answered, then signed or refused.
                let outcome = self.answer(&q, transport, rotation, client, out);
                let outcome = self.table.sign_answer(query, q.question_end, outcome, out);
                (Some(q.qtype), outcome)
            }
            Ok(q) => (
                Some(q.qtype),
                self.answer(&q, transport, rotation, client, out),
            ),
            Err(Reject::Drop) => (None, Outcome::Dropped),
            Err(Reject::Error {
                rcode,
                question_end,
                edns,
            }) => (None, self.error(query, rcode, question_end, edns, out)),
        };
        self.metrics.count(qtype, outcome, transport);
        outcome
    }

    fn answer(
        &self,
        q: &Query<'_>,
        transport: Transport,
        rotation: usize,
        client: Option<IpAddr>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let max_udp = self.table.zone.max_udp_payload.max(512);
        let limit = match (transport, q.edns) {
            (Transport::Tcp | Transport::Tls | Transport::Https, _) => usize::from(u16::MAX),
            (Transport::Udp, None) => 512,
            (Transport::Udp, Some(e)) => usize::from(e.payload.clamp(512, max_udp)),
        };
        let zone = match self.check(q) {
            Ok(at) => at,
            Err(rcode) => return self.error(q.packet, rcode, Some(q.question_end), q.edns, out),
        };
        // One version for the whole answer: records and serial from the same content.
        let version = self.table.version();
        let entry = version.get(&self.table.hasher, q.key());
        if let Some(slot) = entry.and_then(|e| e.slot()) {
            self.table.queries.count(slot);
        }
        let rrset = entry.and_then(|e| {
            let mut rrsets = e.rrsets();
            if q.qtype == TYPE_ANY {
                // RFC 8482: one RRset is enough.
                rrsets.next()
            } else {
                rrsets.find(|r| r.qtype == q.qtype)
            }
        });
        match rrset {
            Some(rrset) => {
                let az = &self.table.zone.az;
                let matched = match (rrset.az, client) {
                    (Some(_), Some(ip)) => {
                        // A trusted resolver's Client Subnet speaks for its client.
                        let subnet = q
                            .edns
                            .and_then(|e| e.client_subnet)
                            .filter(|_| az.trusted_forwarders.iter().any(|f| f.contains(ip)));
                        match subnet {
                            Some(ecs) => az.client_match(ecs.addr),
                            None => az.client_match(ip).map(|(i, _)| (i, 0)),
                        }
                    }
                    _ => None,
                };
                match matched {
                    Some(placed) => self.positive_by_az(q, &rrset, limit, rotation, placed, out),
                    None => self.positive(q, &rrset, limit, rotation, version.serial, out),
                }
            }
            None => {
                let rcode = if entry.is_some() {
                    Rcode::NoError
                } else {
                    Rcode::NxDomain
                };
                self.negative(q, rcode, zone, version.serial, limit, out)
            }
        }
    }

    /// Appends our OPT when the query had one (RFC 6891: no OPT in, no OPT out); returns the
    /// number of records added.
    /// `scope`: how many bits of the client's subnet the answer depends on (Client Subnet).
    fn push_opt(&self, out: &mut Vec<u8>, edns: Option<Edns>, rcode: Rcode, scope: u8) -> u16 {
        match edns {
            Some(e) => {
                let ecs = e.client_subnet.map(|c| (c, scope));
                wire::push_opt(
                    out,
                    self.table.zone.max_udp_payload,
                    rcode,
                    e.dnssec_ok,
                    ecs,
                );
                1
            }
            None => 0,
        }
    }

    /// The rules that refuse a well-formed query before any lookup. Returns where the zone's
    /// name starts inside the query name, and which zone (0: the main zone, then the reverse
    /// zones in order).
    fn check(&self, q: &Query<'_>) -> Result<(usize, usize), Rcode> {
        if q.edns.is_some_and(|e| e.version > 0) {
            return Err(Rcode::BadVers);
        }
        if q.qclass != CLASS_IN {
            return Err(Rcode::Refused);
        }
        let found = q
            .suffix_at(&self.table.origin_key)
            .map(|at| (at, 0))
            .or_else(|| {
                self.table
                    .reverse
                    .iter()
                    .enumerate()
                    .find_map(|(i, z)| q.suffix_at(&z.key).map(|at| (at, i + 1)))
            });
        let zone = found.ok_or(Rcode::Refused)?;
        match q.qtype {
            // Zone transfer only over TCP (served before this answer path).
            TYPE_AXFR | TYPE_IXFR => Err(Rcode::Refused),
            TYPE_MAILA | TYPE_MAILB => Err(Rcode::NotImp),
            _ => Ok(zone),
        }
    }

    fn positive(
        &self,
        q: &Query<'_>,
        rrset: &Rrset<'_>,
        limit: usize,
        rotation: usize,
        serial: u32,
        out: &mut Vec<u8>,
    ) -> Outcome {
        wire::push_header(out, q.packet, Rcode::NoError, true, [1, 0, 0, 0]);
        out.extend_from_slice(q.question());
        let opt = wire::opt_len(q.edns);
        let answer = &rrset.answer;
        let base = out.len();
        let mut truncated = base + answer.bytes.len() + opt > limit;
        let mut additional = 0u16;
        if truncated {
            // TC tells RFC clients to retry over TCP; the whole records that fit go along (RFC
            // 2181 9 allows the partial set), so clients without TCP fallback (musl) still get
            // addresses, a different rotated subset each time.
            let units = answer.len();
            let first = if units == 0 { 0 } else { rotation % units };
            let order = (0..units).map(|i| (first + i) % units);
            if rrset.fit {
                (truncated, additional) = fit_without_tc(out, rrset, order, opt, limit);
            } else {
                let records = copy_while_fits(out, answer, order, opt, limit);
                wire::set_count(out, 1, records);
                wire::set_truncated(out);
            }
        } else {
            let units = answer.len();
            let first = if units == 0 { 0 } else { rotation % units };
            let split = answer.bound(first);
            out.extend_from_slice(&answer.bytes[split..]);
            out.extend_from_slice(&answer.bytes[..split]);
            if let Some(at) = rrset.serial_at {
                out[base + at..base + at + 4].copy_from_slice(&serial.to_be_bytes());
            }
            wire::set_count(out, 1, answer.records() as u16);
            // Additional data in the same rotated order, whole groups while they fit.
            let extra = &rrset.additional;
            let order = (0..extra.len()).map(|i| (first + i) % extra.len());
            additional += copy_while_fits(out, extra, order, opt, limit);
        }
        additional += self.push_opt(out, q.edns, Rcode::NoError, 0);
        wire::set_count(out, 3, additional);
        Outcome::Answered {
            rcode: 0,
            truncated,
        }
    }

    /// A positive answer ordered by AZ (`client_az`: the client's AZ index; `scope`: the
    /// Client Subnet bits that placed it): the records in the client's AZ first, each group in
    /// rotated order (or only the client's AZ, when enough of it is served). SRV records of
    /// other AZs get priority 1, so clients that honour SRV priorities stay in their AZ.
    fn positive_by_az(
        &self,
        q: &Query<'_>,
        rrset: &Rrset<'_>,
        limit: usize,
        rotation: usize,
        (client_az, scope): (u8, u8),
        out: &mut Vec<u8>,
    ) -> Outcome {
        let tags = rrset.az.map(|a| a.tags).unwrap_or_default();
        let answer = &rrset.answer;
        let units = answer.len();
        let same = tags.iter().filter(|t| **t == client_az).count();
        let only = rrset
            .az
            .and_then(|a| a.only_min)
            .is_some_and(|min| same > 0 && same >= usize::from(min));
        let first = if units == 0 { 0 } else { rotation % units };
        let rotated = move |i: usize| (first + i) % units;
        let in_az = move |idx: &usize| tags.get(*idx) == Some(&client_az);
        let order = (0..units)
            .map(rotated)
            .filter(in_az)
            .chain((0..units).map(rotated).filter(move |i| !only && !in_az(i)));
        wire::push_header(out, q.packet, Rcode::NoError, true, [1, 0, 0, 0]);
        out.extend_from_slice(q.question());
        let opt = wire::opt_len(q.edns);
        let size: usize = order.clone().map(|i| answer.unit(i).len()).sum();
        let mut truncated = out.len() + size + opt > limit;
        let mut additional = 0u16;
        if truncated && rrset.fit {
            // The client's AZ first, as many as fit, no TC; priorities stay as prepared (0).
            (truncated, additional) = fit_without_tc(out, rrset, order, opt, limit);
        } else if truncated {
            // As in `positive`: the whole records that fit, the client's AZ first. Priorities
            // stay as prepared (0): a partial set is a hint to retry over TCP, not a ranking.
            let records = copy_while_fits(out, answer, order, opt, limit);
            wire::set_count(out, 1, records);
            wire::set_truncated(out);
        } else {
            let mut records = 0u16;
            for idx in order.clone() {
                let at = out.len();
                out.extend_from_slice(answer.unit(idx));
                // SRV RDATA starts after the 2-byte owner pointer and 10 bytes of type, class,
                // TTL and length: priority is its first field.
                if rrset.qtype == TYPE_SRV && !in_az(&idx) && out.len() >= at + 14 {
                    out[at + 12..at + 14].copy_from_slice(&1u16.to_be_bytes());
                }
                records += 1;
            }
            wire::set_count(out, 1, records);
            let extra = &rrset.additional;
            if extra.len() == units {
                additional += copy_while_fits(out, extra, order, opt, limit);
            }
        }
        additional += self.push_opt(out, q.edns, Rcode::NoError, scope);
        wire::set_count(out, 3, additional);
        Outcome::Answered {
            rcode: 0,
            truncated,
        }
    }

    /// NXDOMAIN or NODATA, with the zone's SOA in the authority section (RFC 2308).
    fn negative(
        &self,
        q: &Query<'_>,
        rcode: Rcode,
        (zone_at, zone): (usize, usize),
        serial: u32,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let (soa, serial_at) = match zone.checked_sub(1).and_then(|i| self.table.reverse.get(i)) {
            Some(r) => (&r.negative_soa, r.negative_serial_at),
            None => (&self.table.negative_soa, self.table.negative_serial_at),
        };
        let ar = u16::from(q.edns.is_some());
        let size = HEADER + q.question().len() + 2 + soa.len() + wire::opt_len(q.edns);
        if size > limit {
            // A long name under a long origin: the SOA does not fit (512 bytes without EDNS).
            // TC without it, so the client asks over TCP and gets the cacheable form.
            wire::push_header(out, q.packet, rcode, true, [1, 0, 0, ar]);
            out.extend_from_slice(q.question());
            wire::set_truncated(out);
            self.push_opt(out, q.edns, Rcode::NoError, 0);
            return Outcome::Answered {
                rcode: rcode as u16,
                truncated: true,
            };
        }
        wire::push_header(out, q.packet, rcode, true, [1, 0, 1, ar]);
        out.extend_from_slice(q.question());
        let pointer = 0xC000u16 | (HEADER + zone_at) as u16;
        out.extend_from_slice(&pointer.to_be_bytes());
        let soa_at = out.len();
        out.extend_from_slice(soa);
        let at = soa_at + serial_at;
        out[at..at + 4].copy_from_slice(&serial.to_be_bytes());
        self.push_opt(out, q.edns, Rcode::NoError, 0);
        Outcome::Answered {
            rcode: rcode as u16,
            truncated: false,
        }
    }

    fn error(
        &self,
        query: &[u8],
        rcode: Rcode,
        question_end: Option<usize>,
        edns: Option<Edns>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let qd = u16::from(question_end.is_some());
        wire::push_header(
            out,
            query,
            rcode,
            false,
            [qd, 0, 0, u16::from(edns.is_some())],
        );
        if let Some(end) = question_end {
            out.extend_from_slice(&query[HEADER..end]);
        }
        self.push_opt(out, edns, rcode, 0);
        Outcome::Answered {
            rcode: rcode as u16,
            truncated: false,
        }
    }
}

/// An oversized answer as `udp_overflow = "fit"` sends it: the records, in `order`, that fit
/// under `limit`, then the additional groups of those records (an SRV target's addresses) while
/// they fit, without TC; the answer section comes first, as in any answer too big for its
/// additionals. Returns (TC set, additional records copied): TC only when not even one record
/// fits, so an answer is never silently empty.
fn fit_without_tc(
    out: &mut Vec<u8>,
    rrset: &Rrset<'_>,
    order: impl Iterator<Item = usize> + Clone,
    opt: usize,
    limit: usize,
) -> (bool, u16) {
    let (answer, extra) = (&rrset.answer, &rrset.additional);
    let (records, taken) = copy_units_while_fit(out, answer, order.clone(), opt, limit);
    wire::set_count(out, 1, records);
    if records == 0 {
        wire::set_truncated(out);
        return (true, 0);
    }
    let additional = if extra.len() == answer.len() {
        copy_while_fits(out, extra, order.take(taken), opt, limit)
    } else {
        0
    };
    (false, additional)
}

/// Copies whole units of `units`, in `order`, while they fit under `limit` (room left for an
/// OPT of `opt` bytes); returns the records copied. Serves truncated answers (the records that
/// fit) and additional data (the targets' addresses that fit) alike.
fn copy_while_fits(
    out: &mut Vec<u8>,
    units: &Units<'_>,
    order: impl Iterator<Item = usize>,
    opt: usize,
    limit: usize,
) -> u16 {
    copy_units_while_fit(out, units, order, opt, limit).0
}

/// [`copy_while_fits`], also returning how many units it copied (the first that many of
/// `order`).
fn copy_units_while_fit(
    out: &mut Vec<u8>,
    units: &Units<'_>,
    order: impl Iterator<Item = usize>,
    opt: usize,
    limit: usize,
) -> (u16, usize) {
    let (mut records, mut copied) = (0u16, 0);
    for idx in order {
        let unit = units.unit(idx);
        if out.len() + unit.len() + opt > limit {
            break;
        }
        out.extend_from_slice(unit);
        records += units.count(idx);
        copied += 1;
    }
    (records, copied)
}
