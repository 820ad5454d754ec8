//! The packed form of everything served at one name: one allocation per name.
//!
//! A name used to hold a boxed slice of RRsets, each with six boxed slices (bytes, unit bounds,
//! record counts, for the answer and the additional section): about ten allocations per task
//! name, which cost more memory than the records themselves at 100,000 endpoints. Now a name is
//! one byte string, read in place by the answer path.
//!
//! Layout (integers little-endian):
//! - `u8` number of RRsets R (the top bit: a query-counter slot follows the last body, see
//!   [`NameEntry::counted`]), then R headers of 10 bytes: `qtype u16`, `serial_at u32`
//!   (`u32::MAX`: none), `offset u32` of the RRset's body.
//! - A body is two unit lists, answer then additional. A unit list is `flags u8`, `n`, then
//!   (only when flag [`COUNTS`]) `records u32` and `n` record counts (`u16`), then `n` unit ends
//!   (offsets into its bytes; the first unit starts at 0), then the bytes. `n` and the ends are
//!   `u16`, or `u32` with flag [`WIDE`]. Most lists are one or a few single-record units (a task's
//!   A record, an empty additional section), where this costs 3 to 5 bytes instead of 12 to 18.
//! - After the two lists, the RRset's AZ tags: `u8` mode (0: none; 1: same-AZ first; 2: same-AZ
//!   only, with `min u16` after it), then one AZ index (`u8`) per answer unit. The mode byte's
//!   top bit ([`FIT`]) marks an RRset whose oversized UDP answers go out without TC.

/// Everything served at one name. No RRsets: the name exists but holds no data (an empty
/// non-terminal, or a service with nothing to serve): NODATA, never NXDOMAIN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NameEntry {
    packed: std::sync::Arc<[u8]>,
}

/// What one RRset is built from: its records (one unit each, with its record count) and, per
/// record, the group of additional records that belongs to it.
#[derive(Debug, Default)]
pub(crate) struct RrsetParts {
    pub(crate) qtype: u16,
    pub(crate) answer: Vec<(Vec<u8>, u16)>,
    pub(crate) additional: Vec<(Vec<u8>, u16)>,
    /// Offset of the SOA serial inside the answer bytes (the apex SOA), patched per query.
    pub(crate) serial_at: Option<usize>,
    /// Per answer record, the index of its AZ (0: unknown), for same-AZ-first answers.
    pub(crate) azs: Option<AzTags>,
    /// An oversized UDP answer is the rotated subset that fits, without TC (`udp_overflow =
    /// "fit"`, for clients that reject truncated answers).
    pub(crate) fit: bool,
}

/// How one RRset follows the client's AZ, and the AZ of each of its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AzTags {
    /// `Some(min)`: only same-AZ records when at least `min` exist; `None`: same-AZ first.
    pub(crate) only_min: Option<u16>,
    /// AZ index per answer unit; index 0 never matches a client.
    pub(crate) tags: Vec<u8>,
}

const HEADER: usize = 10;
/// The count byte's top bit: a counter slot ends the entry.
const HAS_SLOT: u8 = 0x80;
/// The count byte's other bits: the number of RRsets.
const COUNT_MASK: u8 = 0x7f;

fn u32_at(b: &[u8], at: usize) -> usize {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn push_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u32).to_le_bytes());
}

/// AZ mode byte flag: oversized UDP answers fit without TC.
const FIT: u8 = 0x80;

/// Unit list flag: `n` and the unit ends are `u32` (the list's bytes exceed `u16`).
const WIDE: u8 = 1;
/// Unit list flag: record counts follow (some unit holds other than one record).
const COUNTS: u8 = 2;

fn push_units(out: &mut Vec<u8>, units: &[(Vec<u8>, u16)]) {
    let total: usize = units.iter().map(|(b, _)| b.len()).sum();
    let wide = total > usize::from(u16::MAX) || units.len() > usize::from(u16::MAX);
    let counts = units.iter().any(|(_, c)| *c != 1);
    let flags = if wide { WIDE } else { 0 } | if counts { COUNTS } else { 0 };
    out.push(flags);
    let push = |out: &mut Vec<u8>, v: usize| {
        if wide {
            push_u32(out, v);
        } else {
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
    };
    push(out, units.len());
    if counts {
        push_u32(out, units.iter().map(|(_, c)| usize::from(*c)).sum());
        for (_, count) in units {
            out.extend_from_slice(&count.to_le_bytes());
        }
    }
    let mut at = 0;
    for (bytes, _) in units {
        at += bytes.len();
        push(out, at);
    }
    for (bytes, _) in units {
        out.extend_from_slice(bytes);
    }
}

impl NameEntry {
    /// Packs RRsets (at most 127 per name: the schema has a handful).
    pub(crate) fn new(rrsets: Vec<RrsetParts>) -> Self {
        Self::counted(rrsets, None)
    }

    /// Packs RRsets of a name owned by a service, with the service's query-counter slot
    /// ([`crate::stats::QueryCounts`]): four bytes at the end, flagged in the count byte.
    pub(crate) fn counted(rrsets: Vec<RrsetParts>, slot: Option<u32>) -> Self {
        let count = rrsets.len().min(usize::from(COUNT_MASK));
        let mut out = vec![count as u8];
        out.resize(1 + count * HEADER, 0);
        for (i, rrset) in rrsets.iter().take(count).enumerate() {
            let body = out.len();
            push_units(&mut out, &rrset.answer);
            push_units(&mut out, &rrset.additional);
            let fit = if rrset.fit { FIT } else { 0 };
            match &rrset.azs {
                None => out.push(fit),
                Some(az) => {
                    out.push(fit | if az.only_min.is_some() { 2 } else { 1 });
                    out.extend_from_slice(&az.only_min.unwrap_or(0).to_le_bytes());
                    out.extend(az.tags.iter().take(rrset.answer.len()));
                    out.resize(
                        out.len() + rrset.answer.len().saturating_sub(az.tags.len()),
                        0,
                    );
                }
            }
            let serial = rrset.serial_at.map_or(u32::MAX, |s| s as u32);
            let h = 1 + i * HEADER;
            out[h..h + 2].copy_from_slice(&rrset.qtype.to_le_bytes());
            out[h + 2..h + 6].copy_from_slice(&serial.to_le_bytes());
            out[h + 6..h + 10].copy_from_slice(&(body as u32).to_le_bytes());
        }
        if let Some(slot) = slot {
            out[0] |= HAS_SLOT;
            out.extend_from_slice(&slot.to_le_bytes());
        }
        Self { packed: out.into() }
    }

    /// The query-counter slot of the service owning the name, if it has one.
    #[inline]
    pub(crate) fn slot(&self) -> Option<u32> {
        let p = &self.packed[..];
        if p.first().is_some_and(|n| n & HAS_SLOT != 0) {
            Some(u32_at(p, p.len().checked_sub(4)?) as u32)
        } else {
            None
        }
    }

    /// Whether the name holds no data.
    pub(crate) fn is_empty(&self) -> bool {
        self.packed.first().is_none_or(|n| n & COUNT_MASK == 0)
    }

    /// The RRsets, in the order they were packed.
    pub(crate) fn rrsets(&self) -> impl Iterator<Item = Rrset<'_>> {
        let count = usize::from(self.packed.first().copied().unwrap_or(0) & COUNT_MASK);
        (0..count).map(move |i| {
            let h = 1 + i * HEADER;
            let p = &self.packed[..];
            let serial = u32_at(p, h + 2);
            let body = u32_at(p, h + 6);
            let (answer, next) = Units::read(p, body);
            let (additional, next) = Units::read(p, next);
            let mode = p.get(next).copied().unwrap_or(0);
            let az = match mode & !FIT {
                0 => None,
                mode => Some(AzView {
                    only_min: (mode & !FIT == 2).then(|| u16_at(p, next + 1)),
                    tags: p.get(next + 3..next + 3 + answer.len()).unwrap_or_default(),
                }),
            };
            Rrset {
                qtype: u16_at(p, h),
                serial_at: (serial != u32::MAX as usize).then_some(serial),
                answer,
                additional,
                az,
                fit: mode & FIT != 0,
            }
        })
    }
}

/// One RRset, read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rrset<'a> {
    pub(crate) qtype: u16,
    /// One unit per record.
    pub(crate) answer: Units<'a>,
    /// Empty, or one unit per answer record (that record's additional data).
    pub(crate) additional: Units<'a>,
    /// Offset of the SOA serial inside the answer bytes.
    pub(crate) serial_at: Option<usize>,
    /// AZ tags, when the RRset follows the client's AZ.
    pub(crate) az: Option<AzView<'a>>,
    /// See [`RrsetParts::fit`].
    pub(crate) fit: bool,
}

/// The AZ tags of one RRset, read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AzView<'a> {
    /// See [`AzTags::only_min`].
    pub(crate) only_min: Option<u16>,
    /// One AZ index per answer unit.
    pub(crate) tags: &'a [u8],
}

/// Position-independent records, one unit after another. A unit is one record in an answer
/// section, or the group of additional records that belongs to one answer record.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Units<'a> {
    n: usize,
    records: usize,
    /// Width of `n` and of each unit end: 2 or 4 bytes.
    width: usize,
    ends: &'a [u8],
    /// Empty when every unit holds one record.
    counts: &'a [u8],
    /// Concatenated wire bytes of every unit.
    pub(crate) bytes: &'a [u8],
}

impl<'a> Units<'a> {
    /// Reads a unit list at `at`; returns it and where the next one starts.
    fn read(p: &'a [u8], at: usize) -> (Self, usize) {
        let flags = p.get(at).copied().unwrap_or(0);
        let width = if flags & WIDE != 0 { 4 } else { 2 };
        let word = |at: usize| {
            if width == 4 {
                u32_at(p, at)
            } else {
                usize::from(u16_at(p, at))
            }
        };
        let n = word(at + 1);
        let mut next = at + 1 + width;
        let (records, counts_at) = if flags & COUNTS != 0 {
            (u32_at(p, next), next + 4)
        } else {
            (n, next)
        };
        next = counts_at;
        if flags & COUNTS != 0 {
            next += 2 * n;
        }
        let ends_at = next;
        let bytes_at = ends_at + width * n;
        let len = if n == 0 { 0 } else { word(bytes_at - width) };
        let slice = |from: usize, to: usize| p.get(from..to).unwrap_or_default();
        let units = Self {
            n,
            records,
            width,
            ends: slice(ends_at, bytes_at),
            counts: slice(counts_at, ends_at),
            bytes: slice(bytes_at, bytes_at + len),
        };
        (units, bytes_at + len)
    }

    /// Number of units.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Number of records over all units.
    pub(crate) fn records(&self) -> usize {
        self.records
    }

    /// Where unit `i` starts in [`Units::bytes`] (`i == len()`: the end).
    pub(crate) fn bound(&self, i: usize) -> usize {
        if i == 0 {
            return 0;
        }
        let at = self.width * (i - 1);
        if self.width == 4 {
            u32_at(self.ends, at)
        } else {
            usize::from(u16_at(self.ends, at))
        }
    }

    /// Records in unit `i`.
    pub(crate) fn count(&self, i: usize) -> u16 {
        if self.counts.is_empty() {
            return u16::from(i < self.n);
        }
        u16_at(self.counts, 2 * i)
    }

    /// The bytes of unit `i`.
    pub(crate) fn unit(&self, i: usize) -> &'a [u8] {
        self.bytes
            .get(self.bound(i)..self.bound(i + 1))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_reads_back() {
        let entry = NameEntry::new(vec![
            RrsetParts {
                qtype: 1,
                answer: vec![(vec![1, 2, 3], 1), (vec![4], 1)],
                additional: vec![(vec![9, 9], 2), (vec![], 0)],
                serial_at: None,
                azs: None,
                fit: false,
            },
            RrsetParts {
                qtype: 6,
                answer: vec![(vec![7; 30], 1)],
                additional: vec![],
                serial_at: Some(10),
                azs: None,
                fit: false,
            },
        ]);
        let sets: Vec<Rrset<'_>> = entry.rrsets().collect();
        assert_eq!(sets.len(), 2);
        let a = sets[0];
        assert_eq!((a.qtype, a.serial_at), (1, None));
        assert_eq!((a.answer.len(), a.answer.records()), (2, 2));
        assert_eq!(a.answer.bytes, &[1, 2, 3, 4]);
        assert_eq!(a.answer.bound(1), 3);
        assert_eq!(a.answer.unit(1), &[4]);
        assert_eq!(a.additional.unit(0), &[9, 9]);
        assert_eq!(a.additional.count(0), 2);
        assert_eq!(a.additional.unit(1), &[] as &[u8]);
        assert_eq!(a.additional.records(), 2);
        let soa = sets[1];
        assert_eq!((soa.qtype, soa.serial_at), (6, Some(10)));
        assert_eq!(soa.answer.bytes.len(), 30);
        assert_eq!(soa.additional.len(), 0);
        assert!(!entry.is_empty());
        assert!(NameEntry::default().is_empty());
        assert_eq!(NameEntry::default().rrsets().count(), 0);
        assert!(NameEntry::new(Vec::new()).is_empty());
        assert_eq!(NameEntry::new(Vec::new()).slot(), None);
        let counted = NameEntry::counted(Vec::new(), Some(7));
        assert!(counted.is_empty());
        assert_eq!((counted.slot(), counted.rrsets().count()), (Some(7), 0));
        let one = || RrsetParts {
            qtype: 1,
            answer: vec![(vec![1, 2, 3, 4], 1)],
            ..RrsetParts::default()
        };
        let counted = NameEntry::counted(vec![one()], Some(70_000));
        assert_eq!(counted.slot(), Some(70_000));
        let plain = NameEntry::new(vec![one()]);
        let read = |e: &NameEntry| -> Vec<Vec<u8>> {
            e.rrsets().map(|r| r.answer.bytes.to_vec()).collect()
        };
        assert_eq!(read(&counted), read(&plain), "the slot changes no record");
    }

    #[test]
    fn compact_and_wide_lists() {
        let big: Vec<(Vec<u8>, u16)> = (0..3000u16).map(|i| (vec![i as u8; 30], 1)).collect();
        let entry = NameEntry::new(vec![
            RrsetParts {
                qtype: 1,
                answer: vec![(vec![5; 16], 1)],
                additional: vec![],
                serial_at: None,
                azs: None,
                fit: false,
            },
            RrsetParts {
                qtype: 33,
                answer: big.clone(),
                additional: vec![(vec![1; 70_000], 3), (vec![2], 1)],
                serial_at: None,
                azs: None,
                fit: false,
            },
        ]);
        let sets: Vec<Rrset<'_>> = entry.rrsets().collect();
        let a = sets[0];
        assert_eq!(
            (a.answer.len(), a.answer.records(), a.answer.count(0)),
            (1, 1, 1)
        );
        assert_eq!(a.answer.unit(0), &[5; 16]);
        assert_eq!((a.additional.len(), a.additional.records()), (0, 0));
        let alone = NameEntry::new(vec![RrsetParts {
            qtype: 1,
            answer: vec![(vec![5; 16], 1)],
            ..RrsetParts::default()
        }]);
        // Count, header, then flags + n (u16) + one end (u16) + 16 bytes, an empty list, and
        // the AZ mode byte.
        assert_eq!(alone.packed.len(), 1 + HEADER + 5 + 16 + 3 + 1);
        assert!(alone.rrsets().next().unwrap().az.is_none());
        let tagged = NameEntry::new(vec![RrsetParts {
            qtype: 1,
            answer: vec![(vec![1], 1), (vec![2], 1)],
            azs: Some(AzTags {
                only_min: Some(2),
                tags: vec![3, 1],
            }),
            ..RrsetParts::default()
        }]);
        let tagged = tagged.rrsets().next().unwrap();
        assert!(!tagged.fit);
        let az = tagged.az.unwrap();
        assert_eq!((az.only_min, az.tags), (Some(2), &[3u8, 1][..]));
        // The fit flag shares the AZ mode byte, with or without tags.
        for azs in [
            None,
            Some(AzTags {
                only_min: Some(7),
                tags: vec![2, 4],
            }),
        ] {
            let fit = NameEntry::new(vec![RrsetParts {
                qtype: 1,
                answer: vec![(vec![1], 1), (vec![2], 1)],
                azs: azs.clone(),
                fit: true,
                ..RrsetParts::default()
            }]);
            let read = fit.rrsets().next().unwrap();
            assert!(read.fit);
            let expect = azs.map(|a| (a.only_min, a.tags));
            assert_eq!(read.az.map(|a| (a.only_min, a.tags.to_vec())), expect);
        }
        let srv = sets[1];
        assert_eq!((srv.answer.len(), srv.answer.records()), (3000, 3000));
        for (i, (bytes, _)) in big.iter().enumerate() {
            assert_eq!(srv.answer.unit(i), &bytes[..], "unit {i}");
        }
        assert_eq!(srv.additional.records(), 4);
        assert_eq!((srv.additional.count(0), srv.additional.count(1)), (3, 1));
        assert_eq!(srv.additional.unit(0).len(), 70_000);
        assert_eq!(srv.additional.unit(1), &[2]);
    }
}
