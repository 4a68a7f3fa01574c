//! Copy-on-write upsert: each live base data file holding a row whose key
//! is among the new rows' keys is marked deleted and its other rows are
//! written again to a new file; manifests without such files are kept
//! untouched. Refuses a table that holds position deletes.

use arrow::array::RecordBatch;
use arrow::compute::filter_record_batch;
use iceberg::spec::{DataFile, ManifestContentType, ManifestFile, Schema, Snapshot};

use super::files::{decode_parquet, read_parquet_bytes, write_data_files};
use super::matcher::Matcher;
use super::producer::{SnapshotProducer, live_entries, seq_of};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::catalog::Warehouse;
use crate::storage::schema::{arrow_schema, project_by_name};

/// Rewrite the base data files `matcher` finds keys in (of snapshot
/// `current`, whose manifests are `base_manifests`).
pub(super) async fn rewrite_base(
    p: &mut SnapshotProducer<'_>,
    base_manifests: &[ManifestFile],
    current: &Snapshot,
    matcher: Option<&Matcher>,
) -> Result<()> {
    if let Some(d) = base_manifests.iter().find(|mf| {
        mf.content == ManifestContentType::Deletes
            && (mf.has_added_files() || mf.has_existing_files())
    }) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "copy-on-write upsert: the table has position deletes ({}); use a replace (merge-on-read) or an overwrite",
                d.manifest_path
            ),
        ));
    }
    for mf in base_manifests {
        if mf.content != ManifestContentType::Data {
            p.manifests.push(mf.clone());
            continue;
        }
        let live = live_entries(p.wh, mf).await?;
        let mut affected = Vec::new();
        let mut kept = Vec::new();
        for e in live {
            match rows_without_keys(p.wh, e.data_file(), p.schema, matcher).await? {
                None => kept.push(e),
                Some(remaining) => affected.push((e, remaining)),
            }
        }
        if affected.is_empty() {
            p.manifests.push(mf.clone());
            continue;
        }
        let mut w = p.new_writer(ManifestContentType::Data)?;
        for e in &kept {
            w.add_existing_file(
                e.data_file.clone(),
                e.snapshot_id.unwrap_or(current.snapshot_id()),
                seq_of(e)?,
                e.file_sequence_number,
            )?;
        }
        for (e, remaining) in affected {
            let remaining_count: u64 = remaining.iter().map(|b| b.num_rows() as u64).sum();
            p.removed_rows += e.record_count() - remaining_count;
            p.totals.count(e.data_file(), -1);
            p.mark_deleted(&mut w, &e)?;
            if remaining_count > 0 {
                p.rewritten_rows += remaining_count;
                p.rewritten.extend(
                    write_data_files(
                        &p.table.table,
                        p.schema,
                        &remaining,
                        p.commit_id,
                        &format!("a{}-rewrite", p.attempt),
                        // A subset of a file keeps its order.
                        !p.write.sort_by.is_empty(),
                    )
                    .await?,
                );
            }
        }
        p.manifests.push(w.write_manifest_file().await?);
    }
    Ok(())
}

/// For upsert: `None` if the file has no row whose key `matcher` holds;
/// otherwise the file's other rows (projected onto `schema`).
async fn rows_without_keys(
    wh: &Warehouse,
    file: &DataFile,
    schema: &Schema,
    matcher: Option<&Matcher>,
) -> Result<Option<Vec<RecordBatch>>> {
    let Some(matcher) = matcher else {
        return Ok(None);
    };
    let bytes = read_parquet_bytes(wh, file).await?;
    let target = arrow_schema(schema)?;
    let mut out = Vec::new();
    let mut any_hit = false;
    for batch in decode_parquet(bytes, None, file.file_path())? {
        let batch = project_by_name(&batch, &target)?;
        let hit = matcher.matches(&batch, &[])?;
        if hit.true_count() > 0 {
            any_hit = true;
        }
        out.push(filter_record_batch(&batch, &arrow::compute::not(&hit)?)?);
    }
    Ok(any_hit.then_some(out))
}
