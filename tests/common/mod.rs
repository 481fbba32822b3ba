//! Helpers shared by the integration tests. Each test crate uses a subset, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

mod backend;
#[cfg(feature = "http")]
pub mod http;
pub mod pg;
#[allow(unused_imports)]
pub(crate) use backend::conformance;
#[allow(unused_imports)]
pub use backend::{Store, TestBackend, REQUIRE_ENV};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use jobspool::{
    Error, EventRecord, Job, JobId, JobStatus, ListQuery, ManualClock, Spool, Stats, MAX_PAGE,
};

/// A fixed start time for manual clocks: 2026-11-28T20:00:00.000Z.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 20, 0, 0).unwrap()
}

/// A temporary directory on the same disk as the target dir (so fsync is a real fsync,
/// not a tmpfs no-op).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("jobspool-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("creating a temp dir")
}

/// The database path inside a temp dir.
pub fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("db")
}

/// A spool on `path` with a manual clock and no maintenance thread (so nothing happens in
/// the background).
pub fn open_manual(path: &Path, clock: &ManualClock) -> Spool {
    Spool::builder()
        .clock(clock.clone())
        .maintenance(false)
        .scheduler(false)
        .open(path)
        .expect("opening the spool")
}

/// A fresh temp dir, a manual clock at [`t0`] and a spool on it.
pub fn fresh() -> (tempfile::TempDir, ManualClock, Spool) {
    let dir = tempdir();
    let clock = ManualClock::new(t0());
    let spool = open_manual(&db_path(&dir), &clock);
    (dir, clock, spool)
}

/// Every event in the log, from seq 1.
pub fn all_events(spool: &Spool) -> Vec<EventRecord> {
    let mut out = Vec::new();
    loop {
        let last = out.last().map_or(0, |e: &EventRecord| e.seq);
        let page = spool.events_since(last, 1000).expect("reading events");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Every job matching `query` (its `after` and `limit` are used for paging).
pub fn all_jobs(spool: &Spool, query: &ListQuery) -> Vec<Job> {
    let mut out: Vec<Job> = Vec::new();
    let mut q = query.clone();
    q.limit = Some(q.limit.unwrap_or(MAX_PAGE));
    loop {
        let page = spool.list(&q).expect("listing jobs");
        let Some(last) = page.last() else {
            return out;
        };
        q.after = Some(last.id);
        out.extend(page);
    }
}

/// Asserts that event seqs are exactly 1..=n.
pub fn assert_contiguous_from_one(events: &[EventRecord]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.seq,
            i as u64 + 1,
            "event seqs must start at 1 and have no gaps; got {:?}",
            events.iter().map(|e| e.seq).collect::<Vec<_>>()
        );
    }
}

/// The code of an error result, panicking on success.
pub fn code_of<T: std::fmt::Debug>(r: Result<T, Error>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.code().as_str(),
    }
}

/// Everything observable about a spool's content, to check that a rejected call changed
/// nothing.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub stats: Stats,
    pub last_seq: u64,
    pub events: Vec<EventRecord>,
    pub jobs: Vec<Job>,
}

pub fn snapshot(spool: &Spool) -> Snapshot {
    Snapshot {
        stats: spool.stats().expect("stats"),
        last_seq: spool.last_seq(),
        events: all_events(spool),
        jobs: all_jobs(spool, &ListQuery::default()),
    }
}

/// `sled::open` of a jobspool database directory, retrying while the previous owner's lock
/// is being released (sled releases it asynchronously after a drop).
pub fn raw_sled(path: &Path) -> sled::Db {
    let deadline = Instant::now() + Duration::from_secs(10);
    // sled refuses another segment size than the one the database was created with.
    let segment_size = std::fs::read(path.join("conf"))
        .ok()
        .and_then(|c| {
            // The file ends in a binary checksum: read it as lossy text.
            String::from_utf8_lossy(&c)
                .lines()
                .find_map(|l| l.strip_prefix("segment_size: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .unwrap_or(1024 * 1024);
    loop {
        match sled::Config::new()
            .path(path)
            .segment_size(segment_size)
            .open()
        {
            Ok(db) => return db,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("raw sled open of {} failed: {e}", path.display()),
        }
    }
}

/// The sled key of a job record: `b'j'` + the 16 UUID bytes.
pub fn job_key(id: JobId) -> Vec<u8> {
    let mut k = vec![b'j'];
    k.extend_from_slice(id.as_bytes());
    k
}

/// Pending count across statuses of `stats`, as a quick sum.
pub fn total_jobs(stats: &Stats) -> u64 {
    JobStatus::ALL.iter().map(|s| stats.total.of(*s)).sum()
}

/// A small deterministic PRNG (xorshift64*), seeded from the time unless given.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn from_time() -> (Self, u64) {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            ^ u64::from(std::process::id());
        (Rng::new(seed), seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// Name of the env var that puts a test binary in child mode; its value selects the role.
pub const CHILD_ENV: &str = "JOBSPOOL_TEST_CHILD";
/// Name of the env var carrying the database path to a child.
pub const CHILD_DB_ENV: &str = "JOBSPOOL_TEST_CHILD_DB";

/// The child role this process was started in, if any.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Re-runs this test binary as a child process running only `test_name`, in child mode
/// `role`, on database `db`, with stdout piped.
pub fn spawn_child(test_name: &str, role: &str, db: &Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role)
        .env(CHILD_DB_ENV, db)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawning the child test process")
}

/// Prints one tagged line to the real stdout and flushes it (a parent reads it live with
/// [`heard`]). The test harness may print its own text on the same line first, hence the
/// tag and the leading newline.
pub fn say(msg: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "\n{TAG}{msg}").expect("writing to stdout");
    out.flush().expect("flushing stdout");
}

const TAG: &str = "@@jobspool-test@@ ";

/// The message of a line printed by [`say`], if it is one.
pub fn heard(line: &str) -> Option<&str> {
    line.find(TAG).map(|i| &line[i + TAG.len()..])
}

/// The journal's segments of the database at `path`, oldest first.
fn journal_segments(path: &Path) -> Vec<std::path::PathBuf> {
    let mut segs: Vec<_> = std::fs::read_dir(path.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal-"))
        .collect();
    segs.sort();
    segs
}

/// Reads the journal of a closed database the way its format says (`len u32 | crc32 u32 |
/// lsn u64 | count u32 | ops`, op = `kind u8 | key len u32 | key [| value len u32 |
/// value]`, big-endian; a count of `u32::MAX` is a seal naming the next lsn): every key's
/// last value (`None`: removed), and the lsn the next entry gets.
pub fn journal_state(path: &Path) -> (std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>, u64) {
    let u32_at = |b: &[u8], p: usize| u32::from_be_bytes(b[p..p + 4].try_into().unwrap());
    let mut state = std::collections::BTreeMap::new();
    let mut next = 1;
    for seg in journal_segments(path) {
        let b = std::fs::read(&seg).unwrap();
        let mut pos = 0;
        while pos + 8 <= b.len() && u32_at(&b, pos) != 0 {
            let len = u32_at(&b, pos) as usize;
            let body = &b[pos + 8..pos + 8 + len];
            let lsn = u64::from_be_bytes(body[..8].try_into().unwrap());
            let count = u32_at(body, 8);
            next = if count == u32::MAX { lsn } else { lsn + 1 };
            if count == u32::MAX {
                break;
            }
            let mut r = 12;
            for _ in 0..count {
                let kind = body[r];
                let klen = u32_at(body, r + 1) as usize;
                let k = body[r + 5..r + 5 + klen].to_vec();
                r += 5 + klen;
                let v = if kind == 1 {
                    let vlen = u32_at(body, r) as usize;
                    r += 4 + vlen;
                    Some(body[r - vlen..r].to_vec())
                } else {
                    None
                };
                state.insert(k, v);
            }
            pos += 8 + len;
        }
    }
    (state, next)
}

/// [`journal_state`] of one key.
pub fn journal_value(path: &Path, key: &[u8]) -> (Option<Vec<u8>>, u64) {
    let (state, next) = journal_state(path);
    (state.get(key).cloned().flatten(), next)
}

/// Appends to the journal of a closed database a valid entry (right checksum, next lsn)
/// setting `key` to `value`, in a segment of its own: what a writer bug that stored bad
/// bytes would leave, as opposed to bit rot, which the checksum catches.
pub fn journal_put(path: &Path, key: &[u8], value: &[u8]) {
    let (_, next) = journal_value(path, key);
    let mut body = Vec::new();
    body.extend_from_slice(&next.to_be_bytes());
    body.extend_from_slice(&1u32.to_be_bytes());
    body.push(1);
    body.extend_from_slice(&(key.len() as u32).to_be_bytes());
    body.extend_from_slice(key);
    body.extend_from_slice(&(value.len() as u32).to_be_bytes());
    body.extend_from_slice(value);
    let mut entry = Vec::new();
    entry.extend_from_slice(&(body.len() as u32).to_be_bytes());
    entry.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    entry.extend_from_slice(&body);
    std::fs::write(path.join("journal").join(format!("wal-{next:020}")), entry).unwrap();
}
