//! Orphan files: files under a table's directory that no snapshot and no
//! metadata version of the table references (left by a killed run, a lost
//! commit race, or an expiry interrupted before its deletes).

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;

use crate::error::{ErrorKind, Result, ResultExt};
use crate::storage::catalog::{LoadedTable, VERSION_HINT, Warehouse, parse_metadata_version};

/// The files under `table`'s directory that nothing of it references and
/// that were last modified more than `min_age` before `now_ms` (path in
/// the warehouse's store, bytes). Metadata versions newer than the one loaded are never orphans.
pub(super) async fn find(
    wh: &Warehouse,
    table: &LoadedTable,
    min_age: Duration,
    now_ms: i64,
) -> Result<Vec<(String, u64)>> {
    let m = table.metadata();
    let mut referenced: HashSet<String> = HashSet::new();
    let mut keep = |location: &str| -> Result<()> {
        referenced.insert(wh.url().location_to_path(location)?.to_string());
        Ok(())
    };
    if let Some(current) = table.table.metadata_location() {
        keep(current)?;
    }
    for entry in m.metadata_log() {
        keep(&entry.metadata_file)?;
    }
    let mut manifests = HashSet::new();
    for s in m.snapshots() {
        keep(s.manifest_list())?;
        for mf in table.table.manifest_list_reader(s).load().await?.entries() {
            if !manifests.insert(mf.manifest_path.clone()) {
                continue;
            }
            keep(&mf.manifest_path)?;
            for e in wh.cache().manifest(mf).await?.entries() {
                if e.is_alive() {
                    keep(e.file_path())?;
                }
            }
        }
    }
    let prefix = wh.url().store_path(&table.name.dir());
    let listed: Vec<_> = wh
        .store()
        .list(Some(&prefix))
        .try_collect()
        .await
        .ctx(ErrorKind::Storage, || {
            format!("cannot list the files of {}", table.name)
        })?;
    let cutoff = now_ms - min_age.as_millis() as i64;
    Ok(listed
        .into_iter()
        .filter(|o| !referenced.contains(o.location.as_ref()))
        .filter(|o| {
            let name = o.location.filename().unwrap_or("");
            name != VERSION_HINT && parse_metadata_version(name).is_none_or(|v| v < table.version)
        })
        .filter(|o| o.last_modified.timestamp_millis() < cutoff)
        .map(|o| (o.location.to_string(), o.size))
        .collect())
}
