//! Zeros written ahead of the appends in a preallocated segment.
//!
//! `posix_fallocate` reserves a segment's blocks as *unwritten* extents (ext4, XFS): they
//! read back as zeros, but the first write into each one makes the `fdatasync` after it
//! convert the extent, a metadata change that costs a filesystem journal commit. Appends of
//! a few KiB then pay that on almost every fsync (measured here: about 5,000 fdatasyncs/s
//! after 5.6 KiB appends into a fallocated file, about 8,000/s into one written with zeros
//! first). So the writer writes real zeros a chunk ahead of the entries: one conversion per
//! chunk, carried by the next fsync, and the fsyncs of the entries in it flush data only.
//!
//! Zeros are what a preallocated segment holds anyway, and a zero length ends a segment's
//! entries: the zeros never change what a reader (or the replay after a crash) finds, they
//! are only ever written past the end of the last entry, and only inside the preallocated
//! size (so they take no space the segment did not already have).

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Bytes zeroed at a time.
pub(super) const CHUNK: u64 = 256 * 1024;

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// How far a segment's zeros reach.
#[derive(Debug, Default)]
pub(super) struct Ahead {
    /// The preallocated size (0: not preallocated, nothing to do).
    pub prealloc: u64,
    /// Bytes from the start known to be written (entries or zeros).
    pub zeroed: u64,
}

impl Ahead {
    /// After an append that ended at `end`: when fewer than half a chunk of written zeros
    /// are left ahead of it, writes the next chunk (never past the preallocated size).
    /// Best effort: a failed write leaves unwritten extents, which read as zeros too (and a
    /// failing disk shows in the next fsync).
    pub fn after_append(&mut self, file: &File, end: u64) {
        if self.zeroed < end {
            self.zeroed = end;
        }
        if self.zeroed >= self.prealloc || self.zeroed - end >= CHUNK / 2 {
            return;
        }
        let stop = (self.zeroed + CHUNK).min(self.prealloc);
        while self.zeroed < stop {
            let n = (stop - self.zeroed).min(ZEROS.len() as u64);
            // `n` is at most ZEROS.len(), so the cast is exact.
            if file
                .write_all_at(&ZEROS[..n as usize], self.zeroed)
                .is_err()
            {
                // Try again a chunk later.
                self.zeroed = stop;
                return;
            }
            self.zeroed += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    #[test]
    fn zeros_go_ahead_of_the_appends_only_inside_the_preallocated_size() {
        let mut f = tempfile::tempfile().unwrap();
        let prealloc = CHUNK * 2 + CHUNK / 4;
        f.set_len(prealloc).unwrap();
        let mut ahead = Ahead {
            prealloc,
            zeroed: 0,
        };
        // An entry, then the zeros after it: the entry is untouched.
        f.write_all(&[7u8; 100]).unwrap();
        ahead.after_append(&f, 100);
        assert_eq!(ahead.zeroed, 100 + CHUNK);
        // Still half a chunk ahead: nothing written.
        ahead.after_append(&f, CHUNK / 2);
        assert_eq!(ahead.zeroed, 100 + CHUNK);
        ahead.after_append(&f, CHUNK / 2 + 200);
        assert_eq!(ahead.zeroed, 100 + 2 * CHUNK);
        // The last chunk stops at the preallocated size; the file did not grow.
        ahead.after_append(&f, 2 * CHUNK);
        assert_eq!(ahead.zeroed, prealloc);
        ahead.after_append(&f, prealloc);
        assert_eq!(f.metadata().unwrap().len(), prealloc);
        let mut head = [0u8; 101];
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_exact(&mut head).unwrap();
        assert_eq!(&head[..100], &[7u8; 100][..]);
        assert_eq!(head[100], 0);
    }

    #[test]
    fn a_segment_not_preallocated_gets_no_zeros() {
        let f = tempfile::tempfile().unwrap();
        let mut ahead = Ahead::default();
        ahead.after_append(&f, 100);
        assert_eq!(f.metadata().unwrap().len(), 0);
    }
}
