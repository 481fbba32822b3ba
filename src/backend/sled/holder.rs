//! `<db>/holder`: the id of the process that holds the database, written right after sled's
//! lock is taken and removed before it is released, so that a second opener can say who
//! holds it. A file left by a killed process is harmless: it is only read when the lock is
//! held by someone, and a pid with no live process behind it is not named.

use std::path::Path;

use crate::model::error::Error;

/// The file's name inside the database directory.
pub(super) const FILE: &str = "holder";

/// Records this process as the holder (best effort: the name is a courtesy for others).
/// `mode`: the database's file mode.
pub(super) fn record(db: &Path, mode: u32) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(db.join(FILE))
        .and_then(|mut f| {
            super::perms::set_file(&f, mode)?;
            f.write_all(format!("{}\n", std::process::id()).as_bytes())
        });
}

/// Removes the record if it is this process's (call while the lock is still held).
pub(super) fn remove(db: &Path) {
    if read(db) == Some(std::process::id()) {
        let _ = std::fs::remove_file(db.join(FILE));
    }
}

/// The recorded holder, if one is recorded.
fn read(db: &Path) -> Option<u32> {
    let s = std::fs::read_to_string(db.join(FILE)).ok()?;
    s.trim().parse().ok()
}

/// `DATABASE_IN_USE` for `db`, naming the live holder when one is recorded.
pub(super) fn in_use(db: &Path) -> Error {
    let holder = read(db)
        .filter(|pid| *pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists());
    let holder_command = holder.and_then(|pid| {
        if pid == std::process::id() {
            return Some("this process".to_string());
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some(comm.trim().to_string()).filter(|c| !c.is_empty())
    });
    Error::DatabaseInUse {
        path: db.to_path_buf(),
        holder,
        holder_command,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_live_holder_and_ignores_a_dead_one() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), 0o600);
        let e = in_use(dir.path());
        assert!(
            e.to_string()
                .contains(&format!("process {} (this process)", std::process::id())),
            "{e}"
        );
        assert!(e.to_string().contains("connect_db"), "{e}");
        remove(dir.path());
        assert!(!dir.path().join(FILE).exists());
        // A pid above the kernel's maximum (4194304) never runs.
        std::fs::write(dir.path().join(FILE), "99999999\n").unwrap();
        let e = in_use(dir.path());
        assert!(e.to_string().contains("by another process"), "{e}");
        remove(dir.path());
        assert!(dir.path().join(FILE).exists(), "not ours: left alone");
    }
}
