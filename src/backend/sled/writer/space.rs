//! The disk-space check before a group is written.

use crate::backend::sled::stage::Staged;
use crate::backend::sled::Shared;
use crate::model::error::{Error, Result};

/// Space kept free on the database's filesystem. sled 0.34 does not surface an out-of-space
/// write from its IO threads: its flush then waits forever. So the writer refuses a group
/// that would leave less than this free, failing cleanly with `STORAGE` instead.
pub(super) const RESERVE_BYTES: u64 = 8 * 1024 * 1024;

/// Whether the filesystem has `bytes` to spare beyond what is kept free (compaction, which
/// is skipped rather than fail when it has not).
pub(super) fn room_for(shared: &Shared, bytes: u64) -> bool {
    match nix::sys::statvfs::statvfs(shared.path.as_path()) {
        Ok(vfs) => {
            let free = vfs.blocks_available().saturating_mul(vfs.fragment_size());
            free >= bytes.saturating_add(RESERVE_BYTES)
        }
        Err(_) => true,
    }
}

pub(super) fn check_space(shared: &Shared, staged: &Staged) -> Result<()> {
    let Ok(vfs) = nix::sys::statvfs::statvfs(shared.path.as_path()) else {
        return Ok(()); // no answer: let sled try
    };
    let free = vfs.blocks_available().saturating_mul(vfs.fragment_size());
    let raw: usize = staged.raw.values().flatten().map(|v| v.len() + 64).sum();
    // Twice (a margin: records and payloads are written once, into the journal). A
    // compaction staged in the group is not counted: it checked its own room (`room_for`).
    let need = 2 * (raw + staged.jobs.len() * 1024 + staged.events.len() * 256) as u64;
    if free < need.saturating_add(RESERVE_BYTES) {
        return Err(Error::Storage {
            context: format!(
                "disk full: {free} bytes free at {} (jobspool keeps {RESERVE_BYTES} free); free \
                 space, then reopen the database",
                shared.path.display()
            ),
            source: None,
        });
    }
    Ok(())
}
