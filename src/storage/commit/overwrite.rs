//! Overwrite: every live file of the base snapshot, data and delete files
//! alike, is marked deleted; only the new rows are live afterwards (the
//! producer starts the snapshot totals from zero).

use iceberg::spec::{DataContentType, ManifestFile};

use super::producer::{SnapshotProducer, live_entries};
use crate::error::Result;

/// Mark every live entry of the base manifests deleted, one new manifest
/// per base manifest that has any.
pub(super) async fn delete_base(
    p: &mut SnapshotProducer<'_>,
    base_manifests: &[ManifestFile],
) -> Result<()> {
    for mf in base_manifests {
        let live = live_entries(p.wh, mf).await?;
        if live.is_empty() {
            continue;
        }
        let mut w = p.new_writer(mf.content)?;
        for e in live {
            match e.content_type() {
                DataContentType::Data => p.removed_rows += e.record_count(),
                _ => p.removed_deletes += e.record_count(),
            }
            p.mark_deleted(&mut w, &e)?;
        }
        p.manifests.push(w.write_manifest_file().await?);
    }
    Ok(())
}
