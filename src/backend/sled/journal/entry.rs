//! The journal's entry format: `len u32 | crc32 u32 | body`, body = `lsn u64 | count u32 |
//! ops`, op = `kind u8 (1 put, 0 remove) | key len u32 | key | value len u32 | value`
//! (big-endian); a seal is a body with `count` = `u32::MAX`. Encoding, checking, decoding,
//! and reading ops in place.

use super::{Change, Entry, HEADER, MIN_BODY, SEAL};

/// Appends `entry` to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, entry: &Entry) {
    match entry {
        Entry::Group(lsn, changes) => encode_entry(out, *lsn, changes),
        Entry::Seal(next) => {
            let start = begin(out, *next, SEAL);
            finish(out, start);
        }
    }
}

fn begin(out: &mut Vec<u8>, lsn: u64, count: u32) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out.extend_from_slice(&lsn.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    start
}

fn finish(out: &mut [u8], start: usize) {
    let body_len = len32(out.len() - start - HEADER);
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&body_len.to_be_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_be_bytes());
}

/// Appends `changes` as the entry `lsn` to `out`.
pub(crate) fn encode_entry(out: &mut Vec<u8>, lsn: u64, changes: &[Change]) {
    // (A group never holds u32::MAX changes: the writer's groups are bounded.)
    let start = begin(out, lsn, len32(changes.len()).min(SEAL - 1));
    for (key, value) in changes {
        out.push(u8::from(value.is_some()));
        out.extend_from_slice(&len32(key.len()).to_be_bytes());
        out.extend_from_slice(key);
        if let Some(v) = value {
            out.extend_from_slice(&len32(v.len()).to_be_bytes());
            out.extend_from_slice(v);
        }
    }
    finish(out, start);
}

/// Lengths are bounded far below 4 GiB (payload limit, group size); saturate rather than wrap
/// so an impossible length shows up as a checksum failure, never as a misread.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Decodes one entry body (checksum already verified): [`check_body`], then its ops copied
/// out.
pub(crate) fn decode_body(body: &[u8]) -> Option<Entry> {
    Some(match check_body(body)? {
        Entry::Seal(next) => Entry::Seal(next),
        Entry::Group(lsn, _) => Entry::Group(
            lsn,
            raw_ops(body)
                .map(|op| (op.key.into(), op.value.map(|(_, v)| v.into())))
                .collect(),
        ),
    })
}

/// What [`decode_body`] would return, without building the changes (a group comes back
/// with none): the journal's scan at open checks every entry this way.
pub(crate) fn check_body(body: &[u8]) -> Option<Entry> {
    let mut r = body;
    let lsn = u64::from_be_bytes(take(&mut r, 8)?.try_into().ok()?);
    let count = u32::from_be_bytes(take(&mut r, 4)?.try_into().ok()?);
    if count == SEAL {
        return r.is_empty().then_some(Entry::Seal(lsn));
    }
    if count as usize > r.len() / 5 {
        return None;
    }
    for _ in 0..count {
        let kind = take(&mut r, 1)?[0];
        let klen = u32::from_be_bytes(take(&mut r, 4)?.try_into().ok()?) as usize;
        take(&mut r, klen)?;
        match kind {
            0 => {}
            1 => {
                let vlen = u32::from_be_bytes(take(&mut r, 4)?.try_into().ok()?) as usize;
                take(&mut r, vlen)?;
            }
            _ => return None,
        }
    }
    r.is_empty().then_some(Entry::Group(lsn, Vec::new()))
}

/// One op of a checked entry body, borrowed: its key, and its value (`None`: a removal)
/// with the value's offset in the body.
pub(crate) struct RawOp<'a> {
    pub key: &'a [u8],
    pub value: Option<(usize, &'a [u8])>,
}

/// The ops of an entry body that [`decode_body`] accepts as a group, without copying
/// anything (open reads every entry of the journal this way). Stops at anything malformed.
pub(crate) fn raw_ops(body: &[u8]) -> impl Iterator<Item = RawOp<'_>> {
    let count = body
        .get(8..12)
        .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    let count = if count == SEAL { 0 } else { count as usize };
    let mut at = MIN_BODY;
    (0..count).map_while(move |_| {
        let mut r = body.get(at..)?;
        let start = r.len();
        let kind = take(&mut r, 1)?[0];
        let klen = u32::from_be_bytes(take(&mut r, 4)?.try_into().ok()?) as usize;
        let key = take(&mut r, klen)?;
        let value = match kind {
            0 => None,
            1 => {
                let vlen = u32::from_be_bytes(take(&mut r, 4)?.try_into().ok()?) as usize;
                let off = at + (start - r.len());
                Some((off, take(&mut r, vlen)?))
            }
            _ => return None,
        };
        at += start - r.len();
        Some(RawOp { key, value })
    })
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Some(head)
}
