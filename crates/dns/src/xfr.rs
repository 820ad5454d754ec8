//! Zone transfer: AXFR (RFC 5936) and IXFR (RFC 1995) over TCP, built from the prepared table,
//! and the bounded journal of changes by SOA serial that IXFR answers from.
//!
//! A transfer reads one zone version (an immutable, whole generation), so a secondary never
//! sees half a change and the serial it is given matches the records. IXFR reads the journal
//! under the lock that versions are published under, so the journal ends at that version.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::entry::NameEntry;
use crate::table::{AnswerTable, Key};
use crate::tsig::{self, Verdict};
use crate::wire::{self, HEADER, Rcode, TYPE_AXFR, TYPE_IXFR};

/// One record: owner (lower-case wire name) and everything after it (type, class, TTL, RDATA
/// with uncompressed names), as prepared.
pub(crate) type Rr = (Key, Box<[u8]>);

/// The changes that took the zone from serial `from` to serial `to`.
pub(crate) struct Delta {
    from: u32,
    to: u32,
    deleted: Vec<Rr>,
    added: Vec<Rr>,
}

/// Recent deltas, oldest first, bounded by the records they hold.
pub(crate) struct Journal {
    deltas: VecDeque<Delta>,
    records: usize,
    limit: usize,
    pending_deleted: Vec<Rr>,
    pending_added: Vec<Rr>,
}

impl Journal {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            deltas: VecDeque::new(),
            records: 0,
            limit,
            pending_deleted: Vec::new(),
            pending_added: Vec::new(),
        }
    }

    /// Records what one service's names change from `old` to `new` (both complete).
    pub(crate) fn change(&mut self, old: Vec<Rr>, new: Vec<Rr>) {
        let old_set: HashSet<&Rr> = old.iter().collect();
        let new_set: HashSet<&Rr> = new.iter().collect();
        self.pending_added
            .extend(new.iter().filter(|r| !old_set.contains(r)).cloned());
        self.pending_deleted
            .extend(old.iter().filter(|r| !new_set.contains(r)).cloned());
    }

    /// Closes the pending changes as the step `from` -> `to`.
    pub(crate) fn seal(&mut self, from: u32, to: u32) {
        let deleted = std::mem::take(&mut self.pending_deleted);
        let added = std::mem::take(&mut self.pending_added);
        if from == to {
            return;
        }
        let size = deleted.len() + added.len();
        if size > self.limit {
            // Too big to keep (a first load, a full resync): secondaries behind it need AXFR.
            self.deltas.clear();
            self.records = 0;
            return;
        }
        self.records += size;
        self.deltas.push_back(Delta {
            from,
            to,
            deleted,
            added,
        });
        while self.records > self.limit {
            match self.deltas.pop_front() {
                Some(d) => self.records -= d.deleted.len() + d.added.len(),
                None => break,
            }
        }
    }

    /// The deltas from `serial` to the newest, if the journal reaches back that far.
    fn since(&self, serial: u32) -> Option<Vec<&Delta>> {
        let start = self.deltas.iter().position(|d| d.from == serial)?;
        let chain: Vec<&Delta> = self.deltas.iter().skip(start).collect();
        chain
            .windows(2)
            .all(|w| w[0].to == w[1].from)
            .then_some(chain)
    }

    /// Steps held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.deltas.len()
    }
}

/// The records one name holds; the apex SOA with `serial` written in.
pub(crate) fn records_of(key: &Key, entry: &NameEntry, serial: u32) -> Vec<Rr> {
    let mut out = Vec::new();
    for rrset in entry.rrsets() {
        for i in 0..rrset.answer.len() {
            let unit = rrset.answer.unit(i);
            // Each answer record starts with a 2-byte pointer to the question (its owner).
            let Some(rest) = unit.get(2..) else { continue };
            let mut data = rest.to_vec();
            if let Some(at) = rrset.serial_at {
                let at = at.saturating_sub(rrset.answer.bound(i)).saturating_sub(2);
                if let Some(slot) = data.get_mut(at..at + 4) {
                    slot.copy_from_slice(&serial.to_be_bytes());
                }
            }
            out.push((key.clone(), data.into()));
        }
    }
    out
}

/// Messages of a transfer are kept under this size (RFC 5936 allows 64 KiB; smaller messages
/// let the secondary start work sooner).
const MESSAGE_TARGET: usize = 16 * 1024;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes messages of records after the first message's question.
struct Writer<'a> {
    query: &'a [u8],
    question_end: usize,
    messages: Vec<Vec<u8>>,
    current: Vec<u8>,
    count: u16,
}

impl<'a> Writer<'a> {
    fn new(query: &'a [u8], question_end: usize) -> Self {
        let mut w = Self {
            query,
            question_end,
            messages: Vec::new(),
            current: Vec::new(),
            count: 0,
        };
        w.start(true);
        w
    }

    fn start(&mut self, with_question: bool) {
        self.current.clear();
        wire::push_header(
            &mut self.current,
            self.query,
            Rcode::NoError,
            true,
            [u16::from(with_question), 0, 0, 0],
        );
        if with_question {
            self.current
                .extend_from_slice(&self.query[HEADER..self.question_end]);
        }
        self.count = 0;
    }

    fn push(&mut self, owner: &[u8], data: &[u8]) {
        if self.count > 0 && self.current.len() + owner.len() + data.len() > MESSAGE_TARGET {
            self.finish();
            self.start(false);
        }
        self.current.extend_from_slice(owner);
        self.current.extend_from_slice(data);
        self.count += 1;
    }

    fn finish(&mut self) {
        wire::set_count(&mut self.current, 1, self.count);
        self.messages.push(std::mem::take(&mut self.current));
    }

    fn done(mut self) -> Vec<Vec<u8>> {
        self.finish();
        self.messages
    }
}

impl AnswerTable {
    /// Whether zone transfers are offered at all (someone is allowed).
    pub(crate) fn transfers_enabled(&self) -> bool {
        !self.zone.transfer.allow.is_empty()
    }

    /// Answers an AXFR or IXFR query received over TCP from `client`: `None` when the query is
    /// not a transfer (the normal answer path takes it), else the messages to send in order.
    pub(crate) fn transfer(&self, query: &[u8], client: Option<IpAddr>) -> Option<Vec<Vec<u8>>> {
        let q = wire::parse(query).ok()?;
        if q.qtype != TYPE_AXFR && q.qtype != TYPE_IXFR {
            return None;
        }
        let allowed =
            client.is_some_and(|ip| self.zone.transfer.allow.iter().any(|c| c.contains(ip)));
        let keys = &self.zone.transfer.tsig_keys;
        let now = now_secs();
        let signed = match tsig::verify(query, keys, now) {
            Verdict::Valid(s) => Some(s),
            Verdict::Unsigned if keys.is_empty() => None,
            Verdict::Unsigned => {
                return Some(vec![self.refusal(query, q.question_end, Rcode::Refused)]);
            }
            Verdict::Invalid {
                error,
                key_name,
                original_id,
            } => {
                // RFC 8945 5.3.2: NOTAUTH, the TSIG error in an unsigned TSIG record.
                let mut m = self.refusal(query, q.question_end, Rcode::NotAuth);
                tsig::push_tsig(&mut m, &key_name, now, &[], original_id, error as u16);
                return Some(vec![m]);
            }
        };
        let rcode = if !allowed {
            Some(Rcode::Refused)
        } else if q.key() != &self.origin_key[..] {
            Some(Rcode::NotAuth)
        } else {
            None
        };
        let mut messages = match rcode {
            Some(rcode) => vec![self.refusal(query, q.question_end, rcode)],
            None => {
                let client_serial = (q.qtype == TYPE_IXFR)
                    .then(|| wire::authority_soa_serial(query, q.question_end))
                    .flatten();
                let (messages, serial) =
                    self.transfer_messages(query, q.question_end, client_serial);
                // What the secondary holds once it has these (the drain API counts it).
                if let (Some(ip), Some(serial)) = (client, serial) {
                    self.served
                        .secondary_has(ip, serial, crate::served::now_ms());
                }
                messages
            }
        };
        if let Some(signed) = &signed {
            tsig::sign_all(&mut messages, signed, keys, now);
        }
        Some(messages)
    }

    /// Signs the answer to a TSIG-signed query with the query's key (RFC 8945 5.3), or replaces
    /// it with NOTAUTH carrying the TSIG error when the signature does not verify (5.3.2).
    pub(crate) fn sign_answer(
        &self,
        query: &[u8],
        question_end: usize,
        outcome: crate::Outcome,
        out: &mut Vec<u8>,
    ) -> crate::Outcome {
        let keys = &self.zone.transfer.tsig_keys;
        let now = now_secs();
        match tsig::verify(query, keys, now) {
            Verdict::Valid(signed) => {
                tsig::sign_all(std::slice::from_mut(out), &signed, keys, now);
                outcome
            }
            Verdict::Unsigned => outcome,
            Verdict::Invalid {
                error,
                key_name,
                original_id,
            } => {
                *out = self.refusal(query, question_end, Rcode::NotAuth);
                tsig::push_tsig(out, &key_name, now, &[], original_id, error as u16);
                crate::Outcome::Answered {
                    rcode: Rcode::NotAuth as u16,
                    truncated: false,
                }
            }
        }
    }

    /// The apex SOA record (after its owner) with the current serial.
    pub(crate) fn current_soa(&self) -> Option<Box<[u8]>> {
        let version = self.version();
        let entry = version.get(&self.hasher, &self.origin_key)?;
        records_of(&self.origin_key, entry, version.serial)
            .into_iter()
            .find(|(_, data)| data.get(..2) == Some(&[0, 6][..]))
            .map(|(_, data)| data)
    }

    fn refusal(&self, query: &[u8], question_end: usize, rcode: Rcode) -> Vec<u8> {
        let mut m = Vec::with_capacity(question_end + 16);
        wire::push_header(&mut m, query, rcode, false, [1, 0, 0, 0]);
        m.extend_from_slice(&query[HEADER..question_end]);
        m
    }

    /// The whole zone (AXFR, or IXFR when the journal does not reach the client's serial), or
    /// the deltas since `client_serial`; with the serial the client holds after them.
    fn transfer_messages(
        &self,
        query: &[u8],
        question_end: usize,
        client_serial: Option<u32>,
    ) -> (Vec<Vec<u8>>, Option<u32>) {
        // The journal first, then the version: versions are published under the journal's
        // lock, so this version is the one the journal ends at.
        let journal = self.journal();
        let version = self.version();
        let serial = version.serial;
        let soa = |s: u32| -> Option<Rr> {
            let entry = version.get(&self.hasher, &self.origin_key)?;
            records_of(&self.origin_key, entry, s)
                .into_iter()
                .find(|(_, data)| data.get(..2) == Some(&[0, 6][..]))
        };
        let Some((origin, current_soa)) = soa(serial) else {
            return (
                vec![self.refusal(query, question_end, Rcode::ServFail)],
                None,
            );
        };
        let mut w = Writer::new(query, question_end);
        if let Some(client) = client_serial {
            // RFC 1982: the client is current (or ahead, after our restart): one SOA.
            if serial_le(serial, client) {
                w.push(&origin, &current_soa);
                return (w.done(), Some(client));
            }
            if let Some(chain) = journal.since(client) {
                w.push(&origin, &current_soa);
                for delta in chain {
                    if let Some((_, from)) = soa(delta.from) {
                        w.push(&origin, &from);
                    }
                    for (owner, data) in &delta.deleted {
                        w.push(owner, data);
                    }
                    if let Some((_, to)) = soa(delta.to) {
                        w.push(&origin, &to);
                    }
                    for (owner, data) in &delta.added {
                        w.push(owner, data);
                    }
                }
                w.push(&origin, &current_soa);
                return (w.done(), Some(serial));
            }
        }
        // AXFR: SOA, every other record, SOA. The frozen version needs no lock.
        drop(journal);
        w.push(&origin, &current_soa);
        for (key, entry) in version.iter() {
            // Reverse zones share the table but are not part of this zone.
            if !in_zone(key, &origin) {
                continue;
            }
            for (owner, data) in records_of(key, entry, serial) {
                if owner[..] == origin[..] && data.get(..2) == Some(&[0, 6][..]) {
                    continue;
                }
                w.push(&owner, &data);
            }
        }
        w.push(&origin, &current_soa);
        (w.done(), Some(serial))
    }
}

/// Whether the wire name `name` is `origin` or below it.
pub(crate) fn in_zone(name: &[u8], origin: &[u8]) -> bool {
    let mut at = 0;
    while at < name.len() {
        if &name[at..] == origin {
            return true;
        }
        at += 1 + usize::from(name[at]);
    }
    origin == [0]
}

/// RFC 1982: whether `a` <= `b` in serial number arithmetic.
pub(crate) fn serial_le(a: u32, b: u32) -> bool {
    a == b || (b.wrapping_sub(a) as i32) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(n: u8) -> Rr {
        (vec![1, b'a', 0].into(), vec![n].into())
    }

    #[test]
    fn journal_chains_and_bounds() {
        let mut j = Journal::new(4);
        j.change(vec![rr(1)], vec![rr(2)]);
        j.seal(10, 11);
        j.change(vec![rr(2)], vec![rr(3)]);
        j.seal(11, 12);
        assert_eq!(j.since(10).unwrap().len(), 2);
        assert_eq!(j.since(11).unwrap().len(), 1);
        assert!(j.since(9).is_none());
        // Over the limit: the oldest step goes.
        j.change(vec![rr(3)], vec![rr(4)]);
        j.seal(12, 13);
        assert!(j.since(10).is_none());
        assert_eq!(j.since(11).unwrap().len(), 2);
        // One step bigger than the whole journal empties it.
        j.change((0..5).map(rr).collect(), vec![]);
        j.seal(13, 14);
        assert_eq!(j.len(), 0);
        // Unchanged records are not part of a delta.
        j.change(vec![rr(1), rr(2)], vec![rr(2), rr(3)]);
        j.seal(14, 15);
        let d = j.since(14).unwrap()[0];
        assert_eq!((d.deleted.len(), d.added.len()), (1, 1));
    }

    #[test]
    fn serial_arithmetic() {
        assert!(serial_le(1, 2));
        assert!(serial_le(5, 5));
        assert!(!serial_le(2, 1));
        assert!(serial_le(u32::MAX, 3), "wraps");
        assert!(!serial_le(3, u32::MAX));
    }
}
