//! What `repair` found in a database's journal and what it dropped.

use std::path::PathBuf;

/// A stretch of the journal that could not be read, and the entries lost with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DroppedRange {
    /// The segment file.
    pub segment: PathBuf,
    /// The byte offset where the unreadable stretch starts.
    pub offset: u64,
    /// The byte offset where reading resumed (the segment's size when nothing after it in
    /// the segment was readable).
    pub end: u64,
    /// The entries lost, first and last (inclusive); `None` when no whole entry was lost.
    pub lsns: Option<(u64, u64)>,
    /// What was wrong.
    pub detail: String,
}

/// The result of [`crate::repair`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairReport {
    /// Nothing was changed (a dry run).
    pub dry_run: bool,
    /// Journal entries that were (or, in a dry run, would be) applied.
    pub applied: u64,
    /// The stretches skipped, in journal order; empty when the journal was intact.
    pub dropped: Vec<DroppedRange>,
}
