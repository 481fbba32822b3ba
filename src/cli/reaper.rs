//! `<db>/handlers/<pgid>`: the process groups of the commands `work` is running, so that
//! the next `work` on the database can kill what a killed one left behind.
//!
//! A command's `sh` dies with its `work` (parent-death signal, see `work::run_command`), but
//! what it started (`sh -c 'a; b'`, `cmd &`) is in the same process group and would keep
//! running, while recovery makes the job pending again and the next `work` runs it a second
//! time beside it. So each running command's group is recorded (created right after the
//! spawn, removed once the command has exited), and `work`, holding the database (so no
//! other `work` on it runs), kills every recorded group that still exists before it claims
//! anything.
//!
//! A record holds the boot id and the group leader's start time (`/proc/<pid>/stat`), so a
//! process group id reused by someone else is never killed: a live leader must have the
//! recorded start time, and without one only members started no earlier than it count
//! (a reused id means every member of ours had exited). A record from an earlier boot is
//! dropped. The group is unrecorded for the instant between the spawn and the record, where
//! the parent-death signal still kills the `sh`.
//!
//! On PostgreSQL several `work` may run on one host and nothing locks a database directory,
//! so the registry lives in the user's runtime directory instead
//! (`$XDG_RUNTIME_DIR/jobspool-<uid>/handlers/`, else the temp directory; created 0700 and
//! used only when the user owns it), one directory per `work` process (`<pid>-<start
//! time>`), and a starting `work` reaps only the directories of `work` processes that no
//! longer run. That covers a `work` restarted on the host where one was killed; what a
//! killed `work` left running on a host where none starts again runs until it ends.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The registry's directory inside the database directory.
const DIR: &str = "handlers";

pub(crate) struct Registry {
    /// Where this `work` records its groups.
    dir: PathBuf,
    boot: String,
    /// For a database several `work` share (PostgreSQL): the directory holding one `dir`
    /// per `work` process.
    shared: Option<PathBuf>,
    /// Why nothing is recorded or reaped (a shared directory this user cannot trust).
    disabled: Option<String>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        if self.shared.is_some() {
            // Empty once every command has exited; else left for the next `work` to reap.
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// Whether `dir` is a directory (not a link) that only this user can use.
fn private_dir(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir).is_ok_and(|m| {
        m.is_dir()
            && m.uid() == nix::unistd::getuid().as_raw()
            && m.permissions().mode() & 0o077 == 0
    })
}

/// A recorded group; dropping it removes the record.
pub(crate) struct Record {
    path: Option<PathBuf>,
}

impl Drop for Record {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// (pid, process group, start time in clock ticks since boot) of a process.
fn stat(pid: &str) -> Option<(i32, i32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses): state is
    // field 3, pgrp field 5, starttime field 22.
    let (_, rest) = s.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let pgrp = fields.get(2)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((pid.parse().ok()?, pgrp, start))
}

impl Registry {
    /// The registry of a database only one `work` can hold (sled): in its directory.
    pub(crate) fn new(db: &Path) -> Registry {
        Registry {
            dir: db.join(DIR),
            boot: boot_id(),
            shared: None,
            disabled: None,
        }
    }

    /// Why this registry records nothing, if it does not.
    pub(crate) fn disabled(&self) -> Option<&str> {
        self.disabled.as_deref()
    }

    /// The registry of this `work` process when several may share a database
    /// (PostgreSQL): see the module docs.
    pub(crate) fn per_process() -> Registry {
        let root = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute() && p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let user = root.join(format!("jobspool-{}", nix::unistd::getuid()));
        Self::in_shared(user.join(DIR))
    }

    /// This process's registry under `shared` (created 0700 with its parent when missing;
    /// both must be this user's own, and not links, else the registry is disabled).
    fn in_shared(shared: PathBuf) -> Registry {
        let me = std::process::id();
        let mut reg = Registry {
            dir: shared.join(format!("{me}-0")),
            boot: boot_id(),
            shared: Some(shared.clone()),
            disabled: None,
        };
        for d in shared.parent().into_iter().chain([shared.as_path()]) {
            // Created, or there already: either way it is checked before use.
            let _ = std::fs::DirBuilder::new().mode(0o700).create(d);
            if !private_dir(d) {
                reg.disabled = Some(format!(
                    "{} is not a directory of this user's that only it can use",
                    d.display()
                ));
                return reg;
            }
        }
        // Without this process's start time another `work` could take it for gone.
        match stat(&me.to_string()) {
            Some((_, _, start)) => reg.dir = shared.join(format!("{me}-{start}")),
            None => reg.disabled = Some("this process's /proc/self/stat cannot be read".into()),
        }
        reg
    }

    /// Records the group led by `pid` (best effort: without a record only the parent-death
    /// signal covers the command).
    pub(crate) fn register(&self, pid: u32) -> Record {
        let Some((_, _, start)) = stat(&pid.to_string()) else {
            // Already gone: nothing left to record.
            return Record { path: None };
        };
        if self.disabled.is_some() {
            return Record { path: None };
        }
        // (Inside a directory checked to be this user's only, when shared.)
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&self.dir);
        let path = self.dir.join(pid.to_string());
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{} {start}", self.boot));
        Record {
            path: written.is_ok().then_some(path),
        }
    }

    /// Kills (SIGKILL) every recorded group that still runs and removes every record: of
    /// this database (sled), or of every `work` process of this user on this host that no
    /// longer runs (PostgreSQL). Returns how many groups were killed.
    pub(crate) fn reap(&self) -> usize {
        let Some(shared) = &self.shared else {
            return self.reap_dir(&self.dir);
        };
        if self.disabled.is_some() {
            return 0;
        }
        let Ok(entries) = std::fs::read_dir(shared) else {
            return 0;
        };
        let mut killed = 0;
        for e in entries.filter_map(Result::ok) {
            let path = e.path();
            if path == self.dir {
                continue;
            }
            let Some((pid, start)) = e
                .file_name()
                .to_str()
                .and_then(|n| n.split_once('-'))
                .and_then(|(p, s)| Some((p.to_string(), s.parse::<u64>().ok()?)))
            else {
                continue;
            };
            if stat(&pid).is_some_and(|(_, _, s)| s == start) {
                continue; // that `work` still runs: its commands are its own
            }
            killed += self.reap_dir(&path);
            let _ = std::fs::remove_dir(&path);
        }
        killed
    }

    /// [`Registry::reap`] of the records in `dir`.
    fn reap_dir(&self, dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let records: Vec<(PathBuf, i32, Option<u64>)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let pgid: i32 = e.file_name().to_str()?.parse().ok()?;
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let start = text
                    .split_once(' ')
                    .filter(|(boot, _)| *boot == self.boot)
                    .and_then(|(_, s)| s.trim().parse().ok());
                Some((e.path(), pgid, start))
            })
            .collect();
        if records.is_empty() {
            return 0;
        }
        let procs: Vec<(i32, i32, u64)> = std::fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| stat(e.file_name().to_str()?))
                    .collect()
            })
            .unwrap_or_default();
        let mut killed = 0;
        for (path, pgid, start) in records {
            if let Some(start) = start.filter(|_| pgid > 1) {
                let leader = procs.iter().find(|(pid, _, _)| *pid == pgid);
                let ours = match leader {
                    Some(&(_, _, s)) => s == start,
                    None => procs.iter().any(|&(_, g, s)| g == pgid && s >= start),
                };
                if ours
                    && nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pgid),
                        nix::sys::signal::Signal::SIGKILL,
                    )
                    .is_ok()
                {
                    killed += 1;
                }
            }
            let _ = std::fs::remove_file(path);
        }
        killed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_registry_is_used_only_in_this_users_private_directories() {
        let d = tempfile::tempdir().unwrap();
        // Made here, 0700: used, under this process's pid and start time.
        let ok = Registry::in_shared(d.path().join("u").join(DIR));
        assert_eq!(ok.disabled(), None);
        assert!(ok.dir.ends_with(format!(
            "{}-{}",
            std::process::id(),
            stat(&std::process::id().to_string()).unwrap().2
        )));
        // Open to others: not used.
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let reg = Registry::in_shared(open.join(DIR));
        assert!(reg.disabled().is_some_and(|w| w.contains("open")));
        assert!(reg.register(std::process::id()).path.is_none());
        assert_eq!(reg.reap(), 0);
        // A link to a directory of ours: not used either.
        let target = d.path().join("target");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&target)
            .unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(Registry::in_shared(link.join(DIR)).disabled().is_some());
    }

    #[test]
    fn only_the_directories_of_work_processes_that_are_gone_are_reaped() {
        let d = tempfile::tempdir().unwrap();
        let shared = d.path().join("u").join(DIR);
        let me = Registry::in_shared(shared.clone());
        assert_eq!(me.disabled(), None);
        // A live process (this one, as another registry would see it) and a gone one.
        let live = shared.join(format!(
            "{}-{}",
            std::process::id(),
            stat(&std::process::id().to_string()).unwrap().2
        ));
        let gone = shared.join("999999999-1");
        for dir in [&live, &gone] {
            std::fs::create_dir_all(dir).unwrap();
            // A record of a group that no longer exists: nothing to kill, but it goes.
            std::fs::write(dir.join("999999998"), "boot 1\n").unwrap();
        }
        let other = Registry {
            dir: shared.join("1-1"),
            boot: boot_id(),
            shared: Some(shared.clone()),
            disabled: None,
        };
        assert_eq!(other.reap(), 0);
        assert!(
            live.join("999999998").exists(),
            "a live work's records stay"
        );
        assert!(
            !gone.exists(),
            "a gone work's directory is reaped and removed"
        );
    }
}
