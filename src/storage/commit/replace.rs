//! Replace (merge-on-read): live base rows that any matcher holds get
//! position deletes (written by the producer as one file); no data file is
//! rewritten and every base manifest is carried over. A position already
//! deleted is not deleted again, so `total-records -
//! total-position-deletes` stays the live row count.

use std::collections::{HashMap, HashSet};

use iceberg::spec::{ManifestContentType, ManifestFile};

use super::deletes::read_position_deletes;
use super::matcher::Matcher;
use super::producer::{SnapshotProducer, live_entries};
use crate::error::{Error, Result};

/// Record the positions to delete: of each live data file of the base,
/// the positions the search found (`replaced`, per file path) that no
/// live delete file deletes yet.
pub(super) async fn delete_matching(
    p: &mut SnapshotProducer<'_>,
    base_manifests: &[ManifestFile],
    matchers: &[Matcher],
    replaced: Option<&HashMap<String, Vec<i64>>>,
) -> Result<()> {
    // Positions already deleted, per data file.
    let mut deleted: HashMap<String, HashSet<i64>> = HashMap::new();
    if !matchers.is_empty() {
        for mf in base_manifests
            .iter()
            .filter(|mf| mf.content == ManifestContentType::Deletes)
        {
            for e in live_entries(p.wh, mf).await? {
                read_position_deletes(p.wh, e.data_file(), &mut deleted).await?;
            }
        }
    }
    for mf in base_manifests {
        p.carried.push(mf.clone());
        if mf.content != ManifestContentType::Data || matchers.is_empty() {
            continue;
        }
        for e in live_entries(p.wh, mf).await? {
            let path = e.data_file().file_path();
            let hits = replaced
                .and_then(|r| r.get(path))
                .ok_or_else(|| Error::internal(format!("matches of {path} were not searched")))?;
            let already = deleted.get(path);
            let fresh: Vec<i64> = hits
                .iter()
                .copied()
                .filter(|pos| already.is_none_or(|d| !d.contains(pos)))
                .collect();
            if !fresh.is_empty() {
                p.removed_rows += fresh.len() as u64;
                p.position_deletes.push((path.to_string(), fresh));
            }
        }
    }
    Ok(())
}
