//! The packed form of everything served at one name: one allocation per name.
//!
//! A name used to hold a boxed slice of RRsets, each with six boxed slices (bytes, unit bounds,
//! record counts, for the answer and the additional section): about ten allocations per task
//! name, which cost more memory than the records themselves at 100,000 endpoints. Now a name is
//! one byte string, read in place by the answer path.
//!
//! Layout (integers little-endian):
//! - `u8` number of RRsets R, then R headers of 10 bytes: `qtype u16`, `serial_at u32`
//!   (`u32::MAX`: none), `offset u32` of the RRset's body.
//! - A body is two unit lists, answer then additional. A unit list is `n u32`, `records u32`,
//!   `n + 1` bounds (`u32`, offsets into its bytes), `n` record counts (`u16`), then the bytes.

/// Everything served at one name. No RRsets: the name exists but holds no data (an empty
/// non-terminal, or a service with nothing to serve): NODATA, never NXDOMAIN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NameEntry {
    packed: Box<[u8]>,
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
}

const HEADER: usize = 10;

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

fn push_units(out: &mut Vec<u8>, units: &[(Vec<u8>, u16)]) {
    push_u32(out, units.len());
    push_u32(out, units.iter().map(|(_, c)| usize::from(*c)).sum());
    let mut at = 0;
    push_u32(out, 0);
    for (bytes, _) in units {
        at += bytes.len();
        push_u32(out, at);
    }
    for (_, count) in units {
        out.extend_from_slice(&count.to_le_bytes());
    }
    for (bytes, _) in units {
        out.extend_from_slice(bytes);
    }
}

impl NameEntry {
    /// Packs RRsets (at most 255 per name: the schema has a handful).
    pub(crate) fn new(rrsets: Vec<RrsetParts>) -> Self {
        let count = rrsets.len().min(usize::from(u8::MAX));
        let mut out = vec![count as u8];
        out.resize(1 + count * HEADER, 0);
        for (i, rrset) in rrsets.iter().take(count).enumerate() {
            let body = out.len();
            push_units(&mut out, &rrset.answer);
            push_units(&mut out, &rrset.additional);
            let serial = rrset.serial_at.map_or(u32::MAX, |s| s as u32);
            let h = 1 + i * HEADER;
            out[h..h + 2].copy_from_slice(&rrset.qtype.to_le_bytes());
            out[h + 2..h + 6].copy_from_slice(&serial.to_le_bytes());
            out[h + 6..h + 10].copy_from_slice(&(body as u32).to_le_bytes());
        }
        Self { packed: out.into() }
    }

    /// Whether the name holds no data.
    pub(crate) fn is_empty(&self) -> bool {
        self.packed.first().is_none_or(|n| *n == 0)
    }

    /// The RRsets, in the order they were packed.
    pub(crate) fn rrsets(&self) -> impl Iterator<Item = Rrset<'_>> {
        let count = usize::from(self.packed.first().copied().unwrap_or(0));
        (0..count).map(move |i| {
            let h = 1 + i * HEADER;
            let p = &self.packed[..];
            let serial = u32_at(p, h + 2);
            let body = u32_at(p, h + 6);
            let (answer, next) = Units::read(p, body);
            let (additional, _) = Units::read(p, next);
            Rrset {
                qtype: u16_at(p, h),
                serial_at: (serial != u32::MAX as usize).then_some(serial),
                answer,
                additional,
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
}

/// Position-independent records, one unit after another. A unit is one record in an answer
/// section, or the group of additional records that belongs to one answer record.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Units<'a> {
    n: usize,
    records: usize,
    bounds: &'a [u8],
    counts: &'a [u8],
    /// Concatenated wire bytes of every unit.
    pub(crate) bytes: &'a [u8],
}

impl<'a> Units<'a> {
    /// Reads a unit list at `at`; returns it and where the next one starts.
    fn read(p: &'a [u8], at: usize) -> (Self, usize) {
        let n = u32_at(p, at);
        let records = u32_at(p, at + 4);
        let bounds_at = at + 8;
        let counts_at = bounds_at + 4 * (n + 1);
        let bytes_at = counts_at + 2 * n;
        let len = u32_at(p, bounds_at + 4 * n);
        let slice = |from: usize, to: usize| p.get(from..to).unwrap_or_default();
        let units = Self {
            n,
            records,
            bounds: slice(bounds_at, counts_at),
            counts: slice(counts_at, bytes_at),
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
        u32_at(self.bounds, 4 * i)
    }

    /// Records in unit `i`.
    pub(crate) fn count(&self, i: usize) -> u16 {
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
            },
            RrsetParts {
                qtype: 6,
                answer: vec![(vec![7; 30], 1)],
                additional: vec![],
                serial_at: Some(10),
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
    }
}
