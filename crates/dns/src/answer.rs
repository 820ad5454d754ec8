//! The answer function: query bytes in, response bytes out, for UDP and TCP alike.
//!
//! This is the hot path: one parse without allocation, one hash lookup, copies of prepared
//! bytes. Every DNS rule that depends on the query (0x20 case echo, EDNS, truncation, rotation)
//! is applied here; every rule that depends on the data was applied when it was prepared.

use std::sync::Arc;

use crate::entry::Rrset;
use crate::metrics::DnsMetrics;
use crate::table::AnswerTable;
use crate::wire::{
    self, CLASS_IN, Edns, HEADER, OPT_LEN, Query, Rcode, Reject, TYPE_ANY, TYPE_AXFR, TYPE_IXFR,
    TYPE_MAILA, TYPE_MAILB,
};

/// Which transport a query came over: it sets the size limit of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// 512 bytes without EDNS, else the smaller of the client's and our payload size.
    Udp,
    /// 65,535 bytes.
    Tcp,
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
        out.clear();
        let (qtype, outcome) = match wire::parse(query) {
            Ok(q) => (Some(q.qtype), self.answer(&q, transport, rotation, out)),
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
        out: &mut Vec<u8>,
    ) -> Outcome {
        let max_udp = self.table.zone.max_udp_payload.max(512);
        let limit = match (transport, q.edns) {
            (Transport::Tcp, _) => usize::from(u16::MAX),
            (Transport::Udp, None) => 512,
            (Transport::Udp, Some(e)) => usize::from(e.payload.clamp(512, max_udp)),
        };
        let zone_at = match self.check(q) {
            Ok(at) => at,
            Err(rcode) => return self.error(q.packet, rcode, Some(q.question_end), q.edns, out),
        };
        let entry = self.table.names.get(q.key());
        let rrset = entry.as_ref().and_then(|e| {
            let mut rrsets = e.rrsets();
            if q.qtype == TYPE_ANY {
                // RFC 8482: one RRset is enough.
                rrsets.next()
            } else {
                rrsets.find(|r| r.qtype == q.qtype)
            }
        });
        match rrset {
            Some(rrset) => self.positive(q, &rrset, limit, rotation, out),
            None => {
                let rcode = if entry.is_some() {
                    Rcode::NoError
                } else {
                    Rcode::NxDomain
                };
                drop(entry);
                self.negative(q, rcode, zone_at, out)
            }
        }
    }

    /// Appends our OPT when the query had one (RFC 6891: no OPT in, no OPT out); returns the
    /// number of records added.
    fn push_opt(&self, out: &mut Vec<u8>, edns: Option<Edns>, rcode: Rcode) -> u16 {
        match edns {
            Some(e) => {
                wire::push_opt(out, self.table.zone.max_udp_payload, rcode, e.dnssec_ok);
                1
            }
            None => 0,
        }
    }

    /// The rules that refuse a well-formed query before any lookup. Returns where the zone's
    /// name starts inside the query name.
    fn check(&self, q: &Query<'_>) -> Result<usize, Rcode> {
        if q.edns.is_some_and(|e| e.version > 0) {
            return Err(Rcode::BadVers);
        }
        if q.qclass != CLASS_IN {
            return Err(Rcode::Refused);
        }
        let zone_at = q.suffix_at(&self.table.origin_key).ok_or(Rcode::Refused)?;
        match q.qtype {
            // Zone transfer is not offered yet; never over UDP.
            TYPE_AXFR | TYPE_IXFR => Err(Rcode::Refused),
            TYPE_MAILA | TYPE_MAILB => Err(Rcode::NotImp),
            _ => Ok(zone_at),
        }
    }

    fn positive(
        &self,
        q: &Query<'_>,
        rrset: &Rrset<'_>,
        limit: usize,
        rotation: usize,
        out: &mut Vec<u8>,
    ) -> Outcome {
        wire::push_header(out, q.packet, Rcode::NoError, true, [1, 0, 0, 0]);
        out.extend_from_slice(q.question());
        let opt = if q.edns.is_some() { OPT_LEN } else { 0 };
        let answer = &rrset.answer;
        let base = out.len();
        let truncated = base + answer.bytes.len() + opt > limit;
        let mut additional = 0u16;
        if truncated {
            // RFC 2181 9: never a partial RRset; TC tells the client to retry over TCP.
            wire::set_truncated(out);
        } else {
            let units = answer.len();
            let first = if units == 0 { 0 } else { rotation % units };
            let split = answer.bound(first);
            out.extend_from_slice(&answer.bytes[split..]);
            out.extend_from_slice(&answer.bytes[..split]);
            if let Some(at) = rrset.serial_at {
                let serial = self.table.serial().to_be_bytes();
                out[base + at..base + at + 4].copy_from_slice(&serial);
            }
            wire::set_count(out, 1, answer.records() as u16);
            // Additional data in the same rotated order, whole groups while they fit.
            let extra = &rrset.additional;
            for i in 0..extra.len() {
                let idx = (first + i) % extra.len();
                let unit = extra.unit(idx);
                if out.len() + unit.len() + opt > limit {
                    break;
                }
                out.extend_from_slice(unit);
                additional += extra.count(idx);
            }
        }
        additional += self.push_opt(out, q.edns, Rcode::NoError);
        wire::set_count(out, 3, additional);
        Outcome::Answered {
            rcode: 0,
            truncated,
        }
    }

    /// NXDOMAIN or NODATA, with the zone's SOA in the authority section (RFC 2308).
    fn negative(&self, q: &Query<'_>, rcode: Rcode, zone_at: usize, out: &mut Vec<u8>) -> Outcome {
        let ar = u16::from(q.edns.is_some());
        wire::push_header(out, q.packet, rcode, true, [1, 0, 1, ar]);
        out.extend_from_slice(q.question());
        let pointer = 0xC000u16 | (HEADER + zone_at) as u16;
        out.extend_from_slice(&pointer.to_be_bytes());
        let soa_at = out.len();
        out.extend_from_slice(&self.table.negative_soa);
        let at = soa_at + self.table.negative_serial_at;
        out[at..at + 4].copy_from_slice(&self.table.serial().to_be_bytes());
        self.push_opt(out, q.edns, Rcode::NoError);
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
        self.push_opt(out, edns, rcode);
        Outcome::Answered {
            rcode: rcode as u16,
            truncated: false,
        }
    }
}
