//! Compaction's snapshot: the base data files it rewrote (and, when the
//! delete files are merged, every position delete file) are marked deleted;
//! every other live entry is kept with its snapshot id and sequence numbers,
//! so which deletes apply to which files is unchanged. The rewritten rows
//! and the merged delete file are added by the producer.

use std::collections::HashSet;

use iceberg::spec::{DataContentType, ManifestEntryRef, ManifestFile};

use super::producer::{SnapshotProducer, keep_existing, live_entries};
use crate::error::Result;

/// Mark the base entries a compaction replaces deleted: the data files in
/// `remove` and, with `merged_deletes`, every delete file (whose positions
/// for the files kept become the producer's one new delete file).
pub(super) async fn remove_rewritten(
    p: &mut SnapshotProducer<'_>,
    base_manifests: &[ManifestFile],
    remove: &[String],
    merged_deletes: Option<&Vec<(String, Vec<i64>)>>,
) -> Result<()> {
    let remove: HashSet<&str> = remove.iter().map(String::as_str).collect();
    let goes = |e: &ManifestEntryRef| match e.content_type() {
        DataContentType::Data => remove.contains(e.file_path()),
        _ => merged_deletes.is_some(),
    };
    for mf in base_manifests {
        let live = live_entries(p.wh, mf).await?;
        if !live.iter().any(goes) {
            p.manifests.push(mf.clone());
            continue;
        }
        let mut w = p.new_writer(mf.content)?;
        for e in live {
            if goes(&e) {
                p.totals.count(e.data_file(), -1);
                p.mark_deleted(&mut w, &e)?;
            } else {
                keep_existing(&mut w, &e)?;
            }
        }
        p.manifests.push(w.write_manifest_file().await?);
    }
    if let Some(merged) = merged_deletes {
        p.position_deletes = merged.clone();
    }
    Ok(())
}
