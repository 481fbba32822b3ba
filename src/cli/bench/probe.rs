//! The machine's own limits, measured in the same run as the workload (raw fdatasync and
//! sled insert rates), and what a run used (disk bytes, resident memory).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use jobspool::Error;

pub(super) fn io_err(what: &str, e: std::io::Error) -> Error {
    Error::Storage {
        context: format!("{what}: {e}"),
        source: None,
    }
}

/// Raw fdatasync rate, for at least `min`: 4 KiB writes, each followed by `fdatasync`.
/// Appending to a growing file, or `in_place` over a file written with
/// zeros and fsync'd first (no size or block-map change per fsync: what the journal's
/// preallocated segments get).
pub(super) fn fsync_rate(dir: &Path, min: Duration, in_place: bool) -> Result<f64, Error> {
    use std::io::{Seek, SeekFrom};
    /// Blocks in the in-place file (16 MiB); the writes wrap around.
    const BLOCKS: u64 = 4096;
    let err = |e| io_err("fsync probe", e);
    let path = dir.join(if in_place {
        "fsync-probe-in-place"
    } else {
        "fsync-probe"
    });
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(in_place)
        .write(true)
        .append(!in_place)
        .open(&path)
        .map_err(err)?;
    let mut block = [0u8; 4096];
    if in_place {
        for _ in 0..BLOCKS {
            f.write_all(&block).map_err(err)?;
        }
        f.sync_all().map_err(err)?;
    }
    block.fill(0x5a);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min {
        if in_place && n % BLOCKS == 0 {
            f.seek(SeekFrom::Start(0)).map_err(err)?;
        }
        f.write_all(&block).map_err(err)?;
        f.sync_data().map_err(err)?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(rate)
}

/// Single-threaded buffered sled inserts of `record` bytes, for at least `min`.
pub(super) fn sled_rate(dir: &Path, record: usize, min: Duration) -> Result<f64, Error> {
    let path = dir.join("sled-probe");
    let db = sled::Config::new()
        .path(&path)
        .cache_capacity(64 * 1024 * 1024)
        .flush_every_ms(None)
        .open()
        .map_err(|e| Error::Storage {
            context: format!("sled probe: {e}"),
            source: None,
        })?;
    let value = vec![0x42u8; record];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min {
        for _ in 0..1000 {
            let key = n.to_be_bytes();
            db.insert(key, &value[..]).map_err(|e| Error::Storage {
                context: format!("sled probe: {e}"),
                source: None,
            })?;
            n += 1;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(db);
    let _ = std::fs::remove_dir_all(&path);
    Ok(rate)
}

pub(super) fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub(super) fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

pub(super) fn current_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}
