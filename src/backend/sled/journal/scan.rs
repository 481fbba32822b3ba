//! Reading the whole journal before anything of it is applied, and telling a torn tail
//! from damage.
//!
//! A crash can leave only the journal's last entry incomplete: every entry is written after
//! the one before it, into a segment preallocated with zeros, so a torn tail is a bad entry
//! (or zeros) with nothing valid after it. A bad entry with a valid entry or seal after it
//! (in its segment, or with entries in a later segment) was damaged after it was written:
//! its group may have been acknowledged, so open fails with `CORRUPTION` naming the segment
//! and offset, before anything is applied; [`plan`] with `salvage` skips such stretches and
//! reports them (`jobspool repair`).
//!
//! Two more ways entries can go missing without a bad byte in sight, both `CORRUPTION`:
//!
//! - A segment that ends in zeros without its seal, followed by a segment with entries.
//!   The writer fsyncs a sealed segment before the next one, and answers only after both,
//!   so the later entries were acknowledged only if the seal was durable. When the later
//!   segment resumes exactly where this one stopped, only the seal is gone and nothing is
//!   missing: the replay goes on. When it resumes further on, entries in between are gone.
//! - The journal's head: sled records the last entry it holds (`keys::META_JOURNAL`), and a
//!   checkpoint deletes only segments at or below it, so the first entry left must come at
//!   or before the one after it; a later first entry means the segments before it are gone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{check_body, decode_body, io, segments, Change, Entry, DIR, HEADER, MIN_BODY, SEAL};
use crate::model::error::{Error, Result};
use crate::model::repair::DroppedRange;

/// What reading at one position found.
enum At {
    /// A valid entry, and the position after it.
    Entry(Entry, usize),
    /// Zeros (or the end of the file) where the next header belongs.
    End,
    /// An entry that fails its checks, and why.
    Bad(String),
}

fn u32_at(b: &[u8], p: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[p..p + 4]);
    u32::from_be_bytes(a)
}

fn u64_at(b: &[u8], p: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[p..p + 8]);
    u64::from_be_bytes(a)
}

fn parse_at(b: &[u8], pos: usize) -> At {
    let rest = &b[pos.min(b.len())..];
    if rest.len() < HEADER {
        return if rest.iter().all(|&x| x == 0) {
            At::End
        } else {
            At::Bad(format!(
                "{} bytes of a header, then the end of the file",
                rest.len()
            ))
        };
    }
    if rest[..HEADER].iter().all(|&x| x == 0) {
        return At::End;
    }
    let len = u32_at(rest, 0) as usize;
    if len < MIN_BODY {
        return At::Bad(format!(
            "length {len} is below the smallest entry ({MIN_BODY})"
        ));
    }
    if len > rest.len() - HEADER {
        return At::Bad(format!(
            "length {len} runs past the end of the segment ({} bytes left)",
            rest.len() - HEADER
        ));
    }
    let body = &rest[HEADER..HEADER + len];
    if crc32fast::hash(body) != u32_at(rest, 4) {
        return At::Bad(format!("checksum mismatch over its {len} bytes"));
    }
    match check_body(body) {
        Some(e) => At::Entry(e, pos + HEADER + len),
        None => At::Bad("the checksum holds but the body does not decode".into()),
    }
}

/// The first valid entry at or after `from` whose lsn (a seal's: the lsn it names) is at
/// least `lo`. Bounded work: zeros are skipped, and a candidate's crc is computed only when
/// its length fits, its lsn lies within the entries that could follow `lo` and its op count
/// fits its length.
fn find_valid(b: &[u8], from: usize, lo: u64) -> Option<(usize, Entry)> {
    let min = HEADER + MIN_BODY;
    let hi = lo.saturating_add((b.len().saturating_sub(from) / min) as u64 + 1);
    let mut p = from;
    while p + min <= b.len() {
        if b[p..p + 4] == [0; 4] {
            // b[p + q] is the first non-zero byte; a length holding it starts at most 3
            // bytes before it (q >= 4, so this moves forward).
            let q = b[p..].iter().position(|&x| x != 0)?;
            p = (p + q - 3).max(p + 1);
            continue;
        }
        let len = u32_at(b, p) as usize;
        if len >= MIN_BODY && len <= b.len() - p - HEADER {
            let lsn = u64_at(b, p + HEADER);
            let count = u32_at(b, p + HEADER + 8);
            let fits = if count == SEAL {
                len == MIN_BODY
            } else {
                count as usize <= (len - MIN_BODY) / 5
            };
            let body = &b[p + HEADER..p + HEADER + len];
            if fits && (lo..=hi).contains(&lsn) && crc32fast::hash(body) == u32_at(b, p + 4) {
                if let Some(e) = check_body(body) {
                    return Some((p, e));
                }
            }
        }
        p += 1;
    }
    None
}

/// `CORRUPTION` naming a segment and an offset in it.
pub(crate) fn corrupt(path: &Path, offset: usize, detail: String) -> Error {
    Error::Corruption {
        tree: "journal",
        key: format!("{} @ offset {offset}", path.display()),
        detail: format!(
            "{detail}. Nothing was changed; `jobspool repair` applies every readable entry and \
             reports what it drops (try `jobspool repair --dry-run` first), or restore from a \
             backup"
        ),
    }
}

/// The entries to apply, segment by segment, and what was skipped.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Each segment and the offsets of its groups to apply, in order.
    pub segments: Vec<(PathBuf, Vec<usize>)>,
    /// The stretches skipped (only with `salvage`).
    pub dropped: Vec<DroppedRange>,
    /// Groups to apply.
    pub entries: u64,
    /// The lsn of the last group to apply.
    pub last_lsn: Option<u64>,
    /// The last segment read when it ends without a seal: its path and where its valid
    /// entries end (open seals it there).
    pub tail: Option<(PathBuf, usize)>,
}

impl Plan {
    fn skip(
        &mut self,
        salvage: bool,
        path: &Path,
        offset: usize,
        end: usize,
        lsns: Option<(u64, u64)>,
        detail: String,
    ) -> Result<()> {
        if !salvage {
            return Err(corrupt(path, offset, detail));
        }
        self.dropped.push(DroppedRange {
            segment: path.to_path_buf(),
            offset: offset as u64,
            end: end as u64,
            lsns,
            detail,
        });
        Ok(())
    }
}

fn lost(from: u64, to_excl: u64) -> Option<(u64, u64)> {
    (to_excl > from).then(|| (from, to_excl - 1))
}

/// Reads every segment and decides what to apply. Without `salvage` the first damage is
/// `CORRUPTION` (nothing read so far is applied by the caller); with it, damage is skipped
/// and recorded. A torn tail, or an unsealed segment end with no entries after it, ends the
/// journal either way. `applied` is the last entry sled holds (`None`: not known, as in a
/// database from before it was recorded, or a dry run that does not open sled): the first
/// entry must not come after the one that follows it.
pub(crate) fn plan(db_dir: &Path, salvage: bool, applied: Option<u64>) -> Result<Plan> {
    plan_each(db_dir, salvage, applied, |_| Ok(()))
}

/// One segment's groups to apply, as [`plan_each`] hands them on: read once, and checked
/// in these same bytes. (A clone shares the bytes.)
#[derive(Clone)]
pub(crate) struct Checked {
    /// The segment, by its first lsn.
    pub seg: u64,
    /// The whole segment file.
    pub bytes: Arc<Vec<u8>>,
    /// Where its groups to apply start, in order.
    pub offsets: Vec<usize>,
}

impl Checked {
    /// Each group's position and body, in order.
    pub fn bodies(&self) -> impl Iterator<Item = (At3, &[u8])> + '_ {
        self.offsets.iter().map(move |&pos| {
            // (The plan parsed an entry at each offset: the length fits.)
            let len = u32_at(&self.bytes, pos) as usize;
            let at = At3 { seg: self.seg, pos };
            (at, &self.bytes[pos + HEADER..pos + HEADER + len])
        })
    }
}

/// [`plan`], handing each segment's groups to `each` as soon as they are known, from the
/// bytes the plan read and checked (no second read, no second checksum). What `each`
/// builds is only provisional: a later segment can still make the plan fail (without
/// `salvage`), and then nothing may be applied. Segments with no group to apply are not
/// handed on.
pub(crate) fn plan_each(
    db_dir: &Path,
    salvage: bool,
    applied: Option<u64>,
    mut each: impl FnMut(Checked) -> Result<()>,
) -> Result<Plan> {
    let segs = segments(&db_dir.join(DIR))?;
    let mut plan = Plan::default();
    let mut expect: Option<u64> = None;
    let mut i = 0;
    while i < segs.len() {
        let (first, path) = (segs[i].0, &segs[i].1);
        let bytes = Arc::new(std::fs::read(path).map_err(|e| io("reading", path, e))?);
        let mut offsets = Vec::new();
        let mut pos = 0;
        let mut next_segment = None;
        loop {
            let (what, bad) = match parse_at(&bytes, pos) {
                At::Entry(Entry::Group(lsn, _), next) => {
                    if let Some(a) = applied.filter(|&a| expect.is_none() && lsn > a + 1) {
                        let detail = format!(
                            "the journal's first entry is {lsn}, yet sled holds entries only \
                             up to {a}: the segments before it are missing (a dry run of \
                             `repair` reads only the journal and does not see this; `repair` \
                             reports the entries it lacks)"
                        );
                        plan.skip(salvage, path, pos, pos, lost(a + 1, lsn), detail)?;
                    }
                    if let Some(e) = expect.filter(|&e| e != lsn) {
                        let detail = format!(
                            "entry {lsn} where entry {e} belongs: entries are missing from the \
                             journal"
                        );
                        if lsn < e {
                            // Out of order: applying it would undo later entries.
                            plan.skip(salvage, path, pos, next, Some((lsn, lsn)), detail)?;
                            pos = next;
                            continue;
                        }
                        plan.skip(salvage, path, pos, pos, lost(e, lsn), detail)?;
                    }
                    offsets.push(pos);
                    plan.entries += 1;
                    plan.last_lsn = Some(lsn);
                    expect = Some(lsn + 1);
                    pos = next;
                    continue;
                }
                At::Entry(Entry::Seal(next_lsn), _) => {
                    if let Some(e) = expect.filter(|&e| e != next_lsn) {
                        let detail = format!(
                            "a seal names entry {next_lsn} after entry {}",
                            e.saturating_sub(1)
                        );
                        plan.skip(salvage, path, pos, pos, lost(e, next_lsn), detail)?;
                    }
                    expect = Some(next_lsn);
                    next_segment = Some(i + 1);
                    break;
                }
                At::End => ("zeros where the next entry belongs".to_string(), false),
                At::Bad(detail) => (format!("a bad entry: {detail}"), true),
            };
            let lo = expect.unwrap_or(first);
            if let Some((found, entry)) = find_valid(&bytes, pos + 1, lo) {
                let (resume, kind) = match entry {
                    Entry::Group(lsn, _) => (lsn, "entry"),
                    Entry::Seal(lsn) => (lsn, "seal naming entry"),
                };
                let detail =
                    format!("{what}, yet a valid {kind} {resume} follows at offset {found}");
                plan.skip(salvage, path, pos, found, lost(lo, resume), detail)?;
                expect = Some(resume);
                pos = found;
                continue;
            }
            // Entries in a later segment mean this one was complete once: sealed, and
            // (unless only its seal is gone) holding whatever came before them.
            for (j, (later_first, later)) in segs.iter().enumerate().skip(i + 1) {
                let more = std::fs::read(later).map_err(|e| io("reading", later, e))?;
                if let Some((found, Entry::Group(lsn, _))) = find_valid(&more, 0, lo) {
                    let only_the_seal = !bad
                        && expect.is_some()
                        && j == i + 1
                        && found == 0
                        && lsn == lo
                        && *later_first == lsn;
                    if !only_the_seal {
                        let detail = format!(
                            "{what}, yet a valid entry {lsn} follows in {} at offset {found}",
                            later.display()
                        );
                        plan.skip(salvage, path, pos, bytes.len(), lost(lo, lsn), detail)?;
                    }
                    expect = Some(lsn);
                    next_segment = Some(j);
                    break;
                }
            }
            if next_segment.is_none() {
                plan.tail = Some((path.clone(), pos));
            }
            break; // a torn tail, or zeros: this segment's entries end here
        }
        if !offsets.is_empty() {
            each(Checked {
                seg: first_lsn_of_path(path),
                bytes,
                offsets: offsets.clone(),
            })?;
        }
        plan.segments.push((path.clone(), offsets));
        match next_segment {
            Some(j) => i = j,
            None => break,
        }
    }
    Ok(plan)
}

/// The first lsn a segment's file name gives (0 for a name that is not a segment's: the
/// scan lists only those).
fn first_lsn_of_path(path: &Path) -> u64 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(super::first_lsn_of)
        .unwrap_or(0)
}

/// Where a group is: its segment (by first lsn) and its offset there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At3 {
    pub seg: u64,
    pub pos: usize,
}

/// Applies the groups `plan` names, in order; returns how many.
pub(crate) fn apply(plan: &Plan, mut f: impl FnMut(At3, Vec<Change>) -> Result<()>) -> Result<u64> {
    for (path, offsets) in &plan.segments {
        if offsets.is_empty() {
            continue;
        }
        let seg = first_lsn_of_path(path);
        let bytes = std::fs::read(path).map_err(|e| io("reading", path, e))?;
        for &pos in offsets {
            let body = match parse_at(&bytes, pos) {
                At::Entry(Entry::Group(..), next) => decode_body(&bytes[pos + HEADER..next]),
                _ => None,
            };
            match body {
                Some(Entry::Group(_, changes)) => f(At3 { seg, pos }, changes)?,
                _ => {
                    return Err(corrupt(
                        path,
                        pos,
                        "the entry changed between its check and its replay".into(),
                    ))
                }
            }
        }
    }
    Ok(plan.entries)
}
