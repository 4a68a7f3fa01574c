//! Table upkeep: compaction, snapshot expiry and orphan file removal, so a
//! table that takes a commit a day keeps a bounded number of files and
//! snapshots, and its reads do not slow down with the commits it has seen.
//!
//! [`Warehouse::upkeep_table`] does, for one table and in this order:
//!
//! 1. **Compact** ([`compact`]): when the current snapshot holds at least
//!    [`UpkeepPolicy::min_files`] small data files (under a quarter of the
//!    target file size), or position delete files, or files with 30 % or
//!    more of their rows deleted, their live rows are written again into
//!    target-size files in one Iceberg `replace` snapshot that changes no
//!    live row (the remaining deletes merged into one file). The rows are
//!    read at the current snapshot and the commit fails if the table moved
//!    meanwhile, so a compaction never loses a concurrent write. Readers at
//!    older snapshots keep working: those snapshots and their files stay
//!    until they expire.
//! 2. **Expire snapshots** ([`expire`]): a table's snapshots form one
//!    history (each the parent of the next). Kept are the newest
//!    [`UpkeepPolicy::keep_last`], every snapshot committed within
//!    [`UpkeepPolicy::retain`], and every snapshot from the oldest
//!    `protected` one onwards (the run state: a model records the input
//!    snapshots it read, and the next `elt` reads what was added since).
//!    What is kept is therefore always the newest part of the history. The
//!    older snapshots leave the metadata in one create-only commit; only
//!    then are their files deleted: their manifest lists, the manifests the
//!    oldest kept snapshot no longer lists, and the data and delete files
//!    that were live only in expired snapshots (those the snapshot after an
//!    expired one removed). Old metadata versions follow the same rule
//!    (the newest `keep_last` and those younger than `retain` stay).
//! 3. **Remove orphans** ([`orphans`]): files under the table's directory
//!    that neither a kept snapshot nor a kept metadata version references,
//!    last modified more than [`UpkeepPolicy::orphan_age`] ago. A commit
//!    writes its files before its metadata, so the age is what protects the
//!    files of a commit still in flight; a killed run's files are never
//!    referenced and go once they are that old.
//!
//! With [`UpkeepPolicy::dry_run`] everything is decided and reported and
//! nothing is written or deleted. A crash between the expiry commit and the
//! deletes leaves only unreferenced files, which the orphan sweep removes.
//! Time travel reaches back to the oldest kept snapshot.

mod compact;
mod expire;
mod orphans;

use std::collections::HashSet;
use std::time::Duration;

use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::ObjectStoreExt;

use super::catalog::{LoadedTable, TableName, Warehouse};
use crate::error::{Error, ErrorKind, Result};

pub use self::compact::Compaction;

/// What upkeep may do, and how much history it keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct UpkeepPolicy {
    /// Snapshots (and metadata versions) younger than this are kept.
    pub retain: Duration,
    /// At least this many of the newest snapshots (and metadata versions)
    /// are kept, however old (at least 1: the current snapshot).
    pub keep_last: usize,
    /// Unreferenced files younger than this are kept (a commit in flight
    /// may be about to reference them).
    pub orphan_age: Duration,
    /// Rewrite small files and deleted rows.
    pub compact: bool,
    /// Look for orphan files (one listing of each table's directory).
    pub orphans: bool,
    /// Small data files (or position delete files) that make a table worth
    /// compacting.
    pub min_files: usize,
    /// Decide and report only.
    pub dry_run: bool,
}

impl Default for UpkeepPolicy {
    fn default() -> Self {
        UpkeepPolicy {
            retain: Duration::from_secs(7 * 24 * 3600),
            keep_last: 10,
            orphan_age: Duration::from_secs(3 * 24 * 3600),
            compact: true,
            orphans: true,
            min_files: 8,
            dry_run: false,
        }
    }
}

/// What upkeep did (or, in a dry run, would do) to one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableUpkeep {
    pub table: Option<TableName>,
    pub compaction: Option<Compaction>,
    pub expired_snapshots: usize,
    /// Files of expired snapshots and old metadata versions deleted (path
    /// in the warehouse's store, bytes).
    pub expired_files: Vec<(String, u64)>,
    /// Orphan files deleted (path in the warehouse's store, bytes).
    pub orphan_files: Vec<(String, u64)>,
    /// Why a step was skipped (e.g. the table changed meanwhile).
    pub notes: Vec<String>,
    /// The error that stopped upkeep of this table (the others go on).
    pub failed: Option<String>,
}

impl TableUpkeep {
    /// Whether anything was (or would be) done.
    pub fn did_anything(&self) -> bool {
        self.compaction.is_some()
            || self.expired_snapshots > 0
            || !self.expired_files.is_empty()
            || !self.orphan_files.is_empty()
    }

    /// Files deleted (or to be deleted) and their bytes.
    pub fn deleted(&self) -> (usize, u64) {
        let files = self.expired_files.iter().chain(&self.orphan_files);
        (
            self.expired_files.len() + self.orphan_files.len(),
            files.map(|f| f.1).sum(),
        )
    }
}

impl Warehouse {
    /// Compact, expire and sweep `name` under `policy` (see the module
    /// docs). `protected` names snapshots a later run reads from: they and
    /// every newer snapshot are kept. `ctx` runs the compaction's merge
    /// of sorted files (under its memory pool). A table changed by another writer while
    /// this runs is left as it is for that step, with a note. Its errors
    /// say the step, not the table: the caller's report names the table.
    pub async fn upkeep_table(
        &self,
        ctx: &SessionContext,
        name: &TableName,
        policy: &UpkeepPolicy,
        protected: &HashSet<i64>,
    ) -> Result<TableUpkeep> {
        let table = self.load_table(name).await?;
        self.upkeep_loaded(ctx, table, policy, protected).await
    }

    /// [`Self::upkeep_table`] of a table already loaded. Loaded earlier
    /// than now is fine: every commit here is create-only, so a table that
    /// moved since is left as it is for that step, with a note.
    pub async fn upkeep_loaded(
        &self,
        ctx: &SessionContext,
        mut table: LoadedTable,
        policy: &UpkeepPolicy,
        protected: &HashSet<i64>,
    ) -> Result<TableUpkeep> {
        let name = table.name.clone();
        let mut report = TableUpkeep {
            table: Some(name.clone()),
            ..TableUpkeep::default()
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let t0 = std::time::Instant::now();
        if policy.compact
            && let Some(plan) = compact::plan(self, &table, policy.min_files).await?
        {
            if policy.dry_run {
                report.compaction = Some(plan.summary());
            } else {
                match compact::run(self, ctx, &table, plan).await {
                    Ok(done) => {
                        report.compaction = Some(done);
                        table = self.load_table(&name).await?;
                    }
                    Err(e) if e.kind() == ErrorKind::CommitConflict => {
                        report.notes.push(format!("{e:#}"));
                        table = self.load_table(&name).await?;
                    }
                    Err(e) => return Err(e.context("compacting")),
                }
            }
        }
        let compact_ms = t0.elapsed().as_millis() as u64;
        match expire::plan(self, &table, policy, protected, now_ms).await? {
            Err(skipped) => report.notes.push(skipped),
            Ok(expiry) => {
                report.expired_snapshots = expiry.snapshots.len();
                let committed = if policy.dry_run || expiry.snapshots.is_empty() {
                    true
                } else {
                    match expire::commit(self, &table, &expiry).await {
                        Ok(()) => {
                            // Only the orphan sweep below reads it again.
                            if policy.orphans {
                                table = self.load_table(&name).await?;
                            }
                            true
                        }
                        Err(e) if e.kind() == ErrorKind::CommitConflict => {
                            report.notes.push(format!("{e:#}"));
                            report.expired_snapshots = 0;
                            table = self.load_table(&name).await?;
                            false
                        }
                        Err(e) => return Err(e.context("expiring snapshots")),
                    }
                };
                if committed {
                    report.expired_files = expiry.files_to_delete(self)?;
                    if !policy.dry_run {
                        delete_all(self, &report.expired_files).await?;
                    }
                }
            }
        }
        let expire_ms = t0.elapsed().as_millis() as u64 - compact_ms;
        if policy.orphans {
            report.orphan_files = orphans::find(self, &table, policy.orphan_age, now_ms).await?;
            if !policy.dry_run {
                delete_all(self, &report.orphan_files).await?;
            }
        }
        tracing::debug!(
            table = %name,
            compact_ms,
            expire_ms,
            orphans_ms = t0.elapsed().as_millis() as u64 - compact_ms - expire_ms,
            compacted_bytes = report.compaction.as_ref().map_or(0, |c| c.bytes),
            expired = report.expired_snapshots,
            "upkeep"
        );
        Ok(report)
    }
}

/// Files deleted at once.
const CONCURRENT_DELETES: usize = 16;

/// Delete `files` (paths in the warehouse's store, with their sizes); a
/// file already gone is fine.
async fn delete_all(wh: &Warehouse, files: &[(String, u64)]) -> Result<()> {
    let mut deletes = futures::stream::iter(files)
        .map(|(path, _)| async move {
            match wh
                .store()
                .delete(&object_store::path::Path::from(path.as_str()))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(Error::from(e).context(format!("cannot delete {path}"))),
            }
        })
        .buffer_unordered(CONCURRENT_DELETES);
    while let Some(done) = deletes.next().await {
        done?;
    }
    Ok(())
}
