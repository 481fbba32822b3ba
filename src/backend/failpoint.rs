//! Failpoints in the sled backend's write path (the `fail` crate, feature `failpoints`).
//!
//! Without the feature [`check`] is an empty inline function: a normal build pays nothing.
//! With it, a test turns a failpoint on with `fail::cfg(name, "return")` (an injected I/O
//! error), `"return(enospc)"` (a full disk: raw OS error 28) or `"panic"`, and the step it
//! guards fails the way the real call would.

use crate::model::error::Result;

/// Every failpoint, so a test can go through all of them (add a new one here; a unit test
/// checks this list against the `check` calls in the source).
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
pub const FAILPOINTS: &[&str] = &[
    // Writing a group's entry to the current journal segment.
    "journal-append",
    // Writing the seal at the end of a full segment.
    "journal-seal",
    // Creating the next segment after a seal.
    "journal-roll",
    // The fdatasync of the journal that acknowledges groups.
    "journal-fsync",
    // The applier's writes of durable groups into sled.
    "applier-write",
    // The checkpoint's sled flush.
    "checkpoint-flush",
    // The checkpoint's fsync of sled's data file.
    "checkpoint-fsync",
    // Deleting journal segments a checkpoint covers.
    "journal-truncate",
    // The replay of the journal on open.
    "open-replay",
];

/// Fails with an injected error if the failpoint `name` is set to return.
#[cfg(feature = "failpoints")]
pub(crate) fn check(name: &'static str) -> Result<()> {
    debug_assert!(FAILPOINTS.contains(&name), "failpoint {name} is not listed");
    match fail::eval(name, |arg| arg) {
        None => Ok(()),
        Some(arg) => {
            let e = match arg.as_deref() {
                Some("enospc") => std::io::Error::from_raw_os_error(28),
                _ => std::io::Error::other("injected I/O error"),
            };
            Err(crate::model::error::Error::storage(
                format!("failpoint {name}"),
                e,
            ))
        }
    }
}

/// Nothing (the `failpoints` feature is off).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn check(_name: &'static str) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn calls(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                calls(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, _) in text.match_indices("failpoint::check(\"") {
                    let rest = &text[i + "failpoint::check(\"".len()..];
                    out.insert(rest[..rest.find('"').unwrap()].to_string());
                }
            }
        }
    }

    #[test]
    fn the_list_names_every_failpoint_in_the_source() {
        let mut found = BTreeSet::new();
        calls(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        let listed: BTreeSet<String> = super::FAILPOINTS.iter().map(ToString::to_string).collect();
        assert_eq!(found, listed);
    }
}
