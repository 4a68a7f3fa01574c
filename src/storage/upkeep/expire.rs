//! Snapshot expiry: which snapshots and old metadata versions go, the
//! metadata commit that drops the snapshots, and the files only they
//! referenced (see the [module docs](super) for the rule).

use std::collections::{HashMap, HashSet};

use iceberg::spec::{ManifestList, ManifestStatus, SnapshotRef, TableMetadataBuilder};
use object_store::ObjectStoreExt;

use super::UpkeepPolicy;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::catalog::{LoadedTable, Warehouse};

/// What an expiry removes from one table.
#[derive(Debug, Default)]
pub(super) struct Expiry {
    /// Snapshot ids leaving the metadata.
    pub(super) snapshots: Vec<i64>,
    /// Files only they referenced (location, bytes).
    pub(super) files: Vec<(String, u64)>,
    /// Old metadata versions (location, bytes).
    pub(super) metadata_files: Vec<(String, u64)>,
}

impl Expiry {
    /// The files to delete, as paths in the warehouse's store.
    pub(super) fn files_to_delete(&self, wh: &Warehouse) -> Result<Vec<(String, u64)>> {
        self.files
            .iter()
            .chain(&self.metadata_files)
            .map(|(location, size)| Ok((wh.url().location_to_path(location)?.to_string(), *size)))
            .collect()
    }
}

/// Decide what expires; `Err(reason)` when the table cannot be expired
/// safely (snapshots outside one history: written by another engine's
/// branches, which this rule does not cover).
pub(super) async fn plan(
    wh: &Warehouse,
    table: &LoadedTable,
    policy: &UpkeepPolicy,
    protected: &HashSet<i64>,
    now_ms: i64,
) -> Result<std::result::Result<Expiry, String>> {
    let m = table.metadata();
    let chain: Vec<SnapshotRef> = table.ancestry().into_iter().cloned().collect();
    if chain.len() != m.snapshots().len() {
        return Ok(Err(format!(
            "{}: {} snapshot(s) outside the current history; not expired",
            table.name,
            m.snapshots().len() - chain.len()
        )));
    }
    let cutoff = now_ms - policy.retain.as_millis() as i64;
    let keep_last = policy.keep_last.max(1);
    let mut oldest_kept = 0;
    for (i, s) in chain.iter().enumerate() {
        if i < keep_last || s.timestamp_ms() >= cutoff {
            oldest_kept = i;
        }
        if protected.contains(&s.snapshot_id()) {
            oldest_kept = oldest_kept.max(i);
        }
    }
    let mut expiry = Expiry {
        metadata_files: old_metadata_versions(wh, table, keep_last, cutoff).await?,
        ..Expiry::default()
    };
    let Some(expired) = chain.get(oldest_kept + 1..).filter(|e| !e.is_empty()) else {
        return Ok(Ok(expiry));
    };
    expiry.snapshots = expired.iter().map(|s| s.snapshot_id()).collect();

    let mut lists: HashMap<i64, ManifestList> = HashMap::new();
    for s in &chain[oldest_kept..] {
        lists.insert(
            s.snapshot_id(),
            table.table.manifest_list_reader(s).load().await?,
        );
    }
    let kept_manifests: HashSet<&str> = lists[&chain[oldest_kept].snapshot_id()]
        .entries()
        .iter()
        .map(|mf| mf.manifest_path.as_str())
        .collect();
    let mut seen = HashSet::new();
    for s in expired {
        expiry.files.push((
            s.manifest_list().to_string(),
            size_of(wh, s.manifest_list()).await?.unwrap_or(0),
        ));
        for mf in lists[&s.snapshot_id()].entries() {
            if !kept_manifests.contains(mf.manifest_path.as_str())
                && seen.insert(mf.manifest_path.clone())
            {
                expiry
                    .files
                    .push((mf.manifest_path.clone(), mf.manifest_length as u64));
            }
        }
    }
    // A file live in an expired snapshot and not in the oldest kept one was
    // removed by a snapshot whose parent expired: its own manifests record
    // that removal as DELETED entries.
    for w in chain[oldest_kept..].windows(2) {
        let (removing, _parent) = (&w[0], &w[1]);
        for mf in lists[&removing.snapshot_id()]
            .entries()
            .iter()
            .filter(|mf| mf.added_snapshot_id == removing.snapshot_id())
        {
            let manifest = wh.cache().manifest(mf).await?;
            for e in manifest.entries() {
                if e.status() == ManifestStatus::Deleted
                    && e.snapshot_id == Some(removing.snapshot_id())
                    && seen.insert(e.file_path().to_string())
                {
                    expiry.files.push((
                        e.file_path().to_string(),
                        e.data_file().file_size_in_bytes(),
                    ));
                }
            }
        }
    }
    Ok(Ok(expiry))
}

/// Commit the metadata without the expired snapshots, as the next version
/// (create-only: a concurrent commit wins and this one reports a conflict).
pub(super) async fn commit(wh: &Warehouse, table: &LoadedTable, expiry: &Expiry) -> Result<()> {
    let metadata = TableMetadataBuilder::new_from_metadata(
        table.metadata().clone(),
        table.table.metadata_location().map(str::to_string),
    )
    .remove_snapshots(&expiry.snapshots)
    .build()
    .map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot drop expired snapshots of {}: {e}", table.name),
        )
    })?
    .metadata;
    wh.put_metadata(&table.name, table.version + 1, &metadata)
        .await
}

/// Metadata versions older than the newest `keep_last` and than `cutoff`
/// (the current version always stays), from the table's metadata log.
///
/// The log keeps naming versions long after upkeep deleted their files, and
/// upkeep deletes the old versions it finds each time, so those still there
/// are the newest few of the candidates: they are looked for newest first,
/// and the first one already gone ends the search. (An expiry killed while
/// deleting may leave an older version behind that gap; it becomes an
/// orphan, and is swept as one, once the log no longer names it.)
async fn old_metadata_versions(
    wh: &Warehouse,
    table: &LoadedTable,
    keep_last: usize,
    cutoff: i64,
) -> Result<Vec<(String, u64)>> {
    let log = table.metadata().metadata_log();
    let old = log.len().saturating_sub(keep_last.saturating_sub(1));
    let mut out = Vec::new();
    for entry in log[..old].iter().rev().filter(|e| e.timestamp_ms < cutoff) {
        match size_of(wh, &entry.metadata_file).await? {
            Some(size) => out.push((entry.metadata_file.clone(), size)),
            None => break,
        }
    }
    Ok(out)
}

/// The size of the file at `location`, `None` when it is already gone.
async fn size_of(wh: &Warehouse, location: &str) -> Result<Option<u64>> {
    let path = wh.url().location_to_path(location)?;
    match wh.store().head(&path).await {
        Ok(meta) => Ok(Some(meta.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(Error::from(e).context(format!("cannot read {location}"))),
    }
}
