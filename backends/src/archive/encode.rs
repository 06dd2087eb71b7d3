//! The stored form of an [`Index`]: compact, versioned, and read back without trusting it
//! (a damaged row is a decode failure, never a panic or a huge allocation).

use super::{Checkpoint, Data, Format, Index, Member};

const MAGIC: &[u8; 4] = b"WXI1";
/// The fewest bytes a member is encoded in (no path; flags, size, time and offset one byte
/// each): a zip folder dated 1970 takes 7. A count of members is checked against it.
const MIN_MEMBER: usize = 5;
/// The fewest bytes a restart point is encoded in.
const MIN_CHECKPOINT: usize = 4;

pub(super) fn encode(index: &Index) -> Vec<u8> {
    let mut w = Vec::with_capacity(64 + index.members.len() * 48);
    w.extend_from_slice(MAGIC);
    w.push(index.format.tag());
    put(&mut w, index.members.len() as u64);
    for m in &index.members {
        member(&mut w, m);
    }
    put(&mut w, index.checkpoints.len() as u64);
    for c in &index.checkpoints {
        put(&mut w, c.out);
        put(&mut w, c.input);
        w.push(c.bits);
        bytes(&mut w, &c.window);
    }
    w
}

fn member(w: &mut Vec<u8>, m: &Member) {
    put(w, m.path.len() as u64);
    for seg in &m.path {
        bytes(w, seg.as_bytes());
    }
    let kind = match m.data {
        Data::Stored { .. } => 0,
        Data::Deflated { .. } => 1,
        Data::Stream { .. } => 2,
    };
    let flags = m.dir as u8 | (m.crc32.is_some() as u8) << 1 | (m.refused.is_some() as u8) << 2 | kind << 4;
    w.push(flags);
    put(w, m.size);
    put(w, zigzag(m.modified_ns));
    match m.data {
        Data::Stored { offset } | Data::Stream { offset } => put(w, offset),
        Data::Deflated { offset, compressed } => {
            put(w, offset);
            put(w, compressed);
        }
    }
    if let Some(crc) = m.crc32 {
        w.extend_from_slice(&crc.to_le_bytes());
    }
    if let Some(why) = &m.refused {
        bytes(w, why.as_bytes());
    }
}

pub(super) fn decode(b: &[u8]) -> Option<Index> {
    let mut r = Reader { b, at: 0 };
    if r.take(4)? != MAGIC {
        return None;
    }
    let format = Format::from_tag(r.byte()?)?;
    let n = r.count(MIN_MEMBER)?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        members.push(r.member()?);
    }
    let n = r.count(MIN_CHECKPOINT)?;
    let mut checkpoints = Vec::with_capacity(n);
    for _ in 0..n {
        let (out, input, bits) = (r.var()?, r.var()?, r.byte()?);
        checkpoints.push(Checkpoint { out, input, bits, window: r.bytes()?.to_vec() });
    }
    (r.at == b.len()).then_some(Index { format, members, checkpoints })
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn var(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// A count of items each at least `min` bytes long: never more than the rest could hold.
    fn count(&mut self, min: usize) -> Option<usize> {
        let n = usize::try_from(self.var()?).ok()?;
        (n <= (self.b.len() - self.at) / min).then_some(n)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.var()?).ok()?;
        self.take(n)
    }

    fn member(&mut self) -> Option<Member> {
        let segs = self.count(1)?;
        let mut path = Vec::with_capacity(segs);
        for _ in 0..segs {
            path.push(String::from_utf8(self.bytes()?.to_vec()).ok()?);
        }
        let flags = self.byte()?;
        let (size, modified_ns) = (self.var()?, unzigzag(self.var()?));
        let data = match flags >> 4 {
            0 => Data::Stored { offset: self.var()? },
            1 => Data::Deflated { offset: self.var()?, compressed: self.var()? },
            2 => Data::Stream { offset: self.var()? },
            _ => return None,
        };
        let crc32 = match flags & 2 {
            0 => None,
            _ => Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?)),
        };
        let refused = match flags & 4 {
            0 => None,
            _ => Some(String::from_utf8(self.bytes()?.to_vec()).ok()?),
        };
        Some(Member { path, dir: flags & 1 == 1, size, modified_ns, data, crc32, refused })
    }
}

fn put(w: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        w.push(v as u8 | 0x80);
        v >>= 7;
    }
    w.push(v as u8);
}

fn bytes(w: &mut Vec<u8>, b: &[u8]) {
    put(w, b.len() as u64);
    w.extend_from_slice(b);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Index {
        let m = |path: &[&str], data| Member {
            path: path.iter().map(|s| s.to_string()).collect(),
            dir: false,
            size: 1 << 33,
            modified_ns: -1_234_567_890_123,
            data,
            crc32: Some(0xdead_beef),
            refused: Some("cut short".into()),
        };
        Index {
            format: Format::TarGz,
            members: vec![
                m(&["a", "b.txt"], Data::Stream { offset: 512 }),
                m(&["ü"], Data::Deflated { offset: 7, compressed: 3 }),
                Member { dir: true, crc32: None, refused: None, ..m(&["d"], Data::Stored { offset: 0 }) },
            ],
            checkpoints: vec![Checkpoint { out: 4 << 20, input: 99_999, bits: 5, window: vec![7; 32768] }],
        }
    }

    #[test]
    fn an_index_survives_encoding() {
        let i = sample();
        assert_eq!(decode(&encode(&i)), Some(i));
    }

    #[test]
    fn members_encoded_in_fewer_than_eight_bytes_survive_encoding() {
        // Folders of a zip whose extended timestamps say 1970-01-01 (`touch -d @0`): 7 bytes.
        let dir = |name: &str| Member {
            path: vec![name.into()],
            dir: true,
            size: 0,
            modified_ns: 0,
            data: Data::Stored { offset: 0 },
            crc32: None,
            refused: None,
        };
        let i = Index { format: Format::Zip, members: vec![dir("a"), dir("b"), dir("c")], checkpoints: vec![] };
        assert_eq!(decode(&encode(&i)), Some(i));
        let none = Member { path: vec![], ..dir("") };
        let i = Index { format: Format::Tar, members: vec![none.clone(), none], checkpoints: vec![] };
        assert_eq!(decode(&encode(&i)), Some(i));
    }

    #[test]
    fn every_truncation_of_an_encoded_index_is_refused() {
        let b = encode(&sample());
        for n in 0..b.len() {
            assert_eq!(decode(&b[..n]), None, "cut at {n}");
        }
    }

    #[test]
    fn a_huge_declared_count_is_refused_without_allocating() {
        let mut b = MAGIC.to_vec();
        b.push(Format::Zip.tag());
        put(&mut b, u64::MAX >> 1);
        assert_eq!(decode(&b), None);
    }
}
