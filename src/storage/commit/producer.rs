//! The snapshot producer every commit kind shares: it holds what one
//! attempt has decided so far (manifests kept, written or marked deleted,
//! files rewritten, positions to delete, running totals), and
//! [`SnapshotProducer::finish`] writes the new manifests, the manifest list
//! and the next table metadata. Added entries inherit the new snapshot's
//! sequence number; existing and deleted ones keep theirs.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::spec::{
    DataContentType, DataFile, MAIN_BRANCH, ManifestContentType, ManifestEntryRef, ManifestFile,
    ManifestListWriter, ManifestWriter, ManifestWriterBuilder, Operation, Schema, Snapshot,
    SnapshotSummaryCollector, Summary, TableMetadata, TableMetadataBuilder,
};
use rand::Rng;
use uuid::Uuid;

use super::deletes::write_position_deletes;
use super::request::{Write, WriteMode};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::catalog::{LoadedTable, Warehouse};

/// The snapshot property naming the commit kind (`append`, ..., `compact`).
pub const WRITE_MODE: &str = "lakehouse.write-mode";

/// The snapshot property naming the columns a write sorted its files by
/// (comma-separated): compaction sorts the rows it rewrites the same way.
pub const SORT_BY: &str = "lakehouse.sort-by";

/// A new snapshot's metadata, ready to be put as the next version.
pub(super) struct Staged {
    pub(super) metadata: TableMetadata,
    pub(super) snapshot_id: i64,
    pub(super) removed_rows: u64,
    pub(super) rewritten_rows: u64,
}

/// Running totals of a snapshot's live files (see the [commit](super) docs).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Totals {
    records: i64,
    data_files: i64,
    bytes: i64,
    delete_files: i64,
    position_deletes: i64,
}

impl Totals {
    fn of(summary: Option<&HashMap<String, String>>) -> Self {
        let get = |k: &str| {
            summary
                .and_then(|s| s.get(k))
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Totals {
            records: get("total-records"),
            data_files: get("total-data-files"),
            bytes: get("total-files-size"),
            delete_files: get("total-delete-files"),
            position_deletes: get("total-position-deletes"),
        }
    }

    /// Count a file in (`sign` 1) or out (`sign` -1).
    pub(super) fn count(&mut self, f: &DataFile, sign: i64) {
        let records = f.record_count() as i64 * sign;
        self.bytes += f.file_size_in_bytes() as i64 * sign;
        match f.content_type() {
            DataContentType::Data => {
                self.records += records;
                self.data_files += sign;
            }
            DataContentType::PositionDeletes => {
                self.position_deletes += records;
                self.delete_files += sign;
            }
            DataContentType::EqualityDeletes => self.delete_files += sign,
        }
    }
}

/// One attempt's new snapshot while it is decided: the base is the table's
/// current snapshot; the commit kind's module records what happens to the
/// base manifests, then [`SnapshotProducer::finish`] writes the rest.
pub(super) struct SnapshotProducer<'a> {
    pub(super) wh: &'a Warehouse,
    pub(super) table: &'a LoadedTable,
    /// The schema the new snapshot is written under.
    pub(super) schema: &'a Schema,
    pub(super) write: &'a Write,
    pub(super) commit_id: Uuid,
    pub(super) attempt: usize,
    snapshot_id: i64,
    seq: i64,
    manifest_counter: u32,
    summary: SnapshotSummaryCollector,
    /// Manifests of the new snapshot so far.
    pub(super) manifests: Vec<ManifestFile>,
    pub(super) totals: Totals,
    pub(super) removed_rows: u64,
    /// Position deletes dropped by an overwrite (they hid removed rows).
    pub(super) removed_deletes: u64,
    /// Data files holding the rows an upsert kept of the files it rewrote.
    pub(super) rewritten: Vec<DataFile>,
    pub(super) rewritten_rows: u64,
    /// Positions a replace deletes, per data file.
    pub(super) position_deletes: Vec<(String, Vec<i64>)>,
    /// Base manifests an append or replace keeps (merged in `finish`).
    pub(super) carried: Vec<ManifestFile>,
}

impl<'a> SnapshotProducer<'a> {
    pub(super) fn new(
        wh: &'a Warehouse,
        table: &'a LoadedTable,
        schema: &'a Schema,
        write: &'a Write,
        commit_id: Uuid,
        attempt: usize,
    ) -> Self {
        let base = table.metadata();
        let snapshot_id = unique_snapshot_id(base);
        let seq = base.next_sequence_number();
        let totals = match write.mode {
            WriteMode::Overwrite => Totals::default(),
            _ => Totals::of(
                base.current_snapshot()
                    .map(|s| &s.summary().additional_properties),
            ),
        };
        SnapshotProducer {
            wh,
            table,
            schema,
            write,
            commit_id,
            attempt,
            snapshot_id,
            seq,
            manifest_counter: 0,
            summary: SnapshotSummaryCollector::default(),
            manifests: Vec::new(),
            totals,
            removed_rows: 0,
            removed_deletes: 0,
            rewritten: Vec::new(),
            rewritten_rows: 0,
            position_deletes: Vec::new(),
            carried: Vec::new(),
        }
    }

    /// A writer of the attempt's next new manifest, of `content`.
    pub(super) fn new_writer(&mut self, content: ManifestContentType) -> Result<ManifestWriter> {
        self.manifest_counter += 1;
        let base = self.table.metadata();
        let path = format!(
            "{}/metadata/{}-a{}-m{}.avro",
            base.location(),
            self.commit_id,
            self.attempt,
            self.manifest_counter
        );
        let b = ManifestWriterBuilder::new(
            self.table.table.file_io().new_output(path)?,
            Some(self.snapshot_id),
            Arc::new(self.schema.clone()),
            base.default_partition_spec().as_ref().clone(),
        );
        Ok(match content {
            ManifestContentType::Data => b.build_v2_data(),
            ManifestContentType::Deletes => b.build_v2_deletes(),
        })
    }

    /// Record a live entry as deleted in manifest `w` and in the summary.
    pub(super) fn mark_deleted(
        &mut self,
        w: &mut ManifestWriter,
        e: &iceberg::spec::ManifestEntry,
    ) -> Result<()> {
        self.summary.remove_file(
            e.data_file(),
            Arc::new(self.schema.clone()),
            self.table.metadata().default_partition_spec().clone(),
        );
        w.add_delete_file(e.data_file.clone(), seq_of(e)?, e.file_sequence_number)?;
        Ok(())
    }

    /// Add the new data files (`added`, then the rewritten ones) and the
    /// replace's position delete file, merge the manifests an append or
    /// replace carried, and stage the manifest list and the next metadata.
    pub(super) async fn finish(mut self, added: Vec<DataFile>) -> Result<Staged> {
        let (wh, table, schema, write) = (self.wh, self.table, self.schema, self.write);
        let (commit_id, attempt) = (self.commit_id, self.attempt);
        let (snapshot_id, seq) = (self.snapshot_id, self.seq);
        let base = table.metadata();
        let t = &table.table;
        let file_io = t.file_io();
        let location = base.location().to_string();
        let mut manifests = std::mem::take(&mut self.manifests);
        let carried = std::mem::take(&mut self.carried);

        let removed_rows = self.removed_rows.saturating_sub(self.removed_deletes);
        let rewritten_rows = self.rewritten_rows;
        let all_added: Vec<DataFile> = added
            .into_iter()
            .chain(std::mem::take(&mut self.rewritten))
            .collect();
        for f in &all_added {
            self.summary.add_file(
                f,
                Arc::new(schema.clone()),
                base.default_partition_spec().clone(),
            );
            self.totals.count(f, 1);
        }
        let mut added_deletes = Vec::new();
        if !self.position_deletes.is_empty() {
            let f = write_position_deletes(
                wh,
                base,
                std::mem::take(&mut self.position_deletes),
                &format!("{commit_id}-a{attempt}"),
            )
            .await?;
            self.summary.add_file(
                &f,
                Arc::new(schema.clone()),
                base.default_partition_spec().clone(),
            );
            self.totals.count(&f, 1);
            added_deletes.push(f);
        }
        for (content, added) in [
            (ManifestContentType::Deletes, added_deletes),
            (ManifestContentType::Data, all_added),
        ] {
            let kept: Vec<ManifestFile> = carried
                .iter()
                .filter(|mf| mf.content == content)
                .cloned()
                .collect();
            let worth_merging = kept.len() >= 2 || (!kept.is_empty() && !added.is_empty());
            let merged = match worth_merging {
                true => merge_manifests(wh, &kept).await?,
                false => None,
            };
            match (&merged, added.is_empty()) {
                // Nothing new and nothing merged: the manifests stay as they are.
                (None, true) => {
                    manifests.extend(kept);
                    continue;
                }
                // Nothing new and nothing live in them: the manifests go.
                (Some(live), true) if live.is_empty() => continue,
                _ => {}
            }
            let mut w = self.new_writer(content)?;
            for f in added {
                w.add_file(f, -1)?;
            }
            match merged {
                Some(existing) => {
                    for e in existing {
                        keep_existing(&mut w, &e)?;
                    }
                }
                None => manifests.extend(kept),
            }
            manifests.insert(0, w.write_manifest_file().await?);
        }

        let list_path =
            format!("{location}/metadata/snap-{snapshot_id}-{attempt}-{commit_id}.avro");
        let mut list = ManifestListWriter::v2(
            file_io.new_output(&list_path)?.writer().await?,
            snapshot_id,
            base.current_snapshot_id(),
            seq,
        );
        list.add_manifests(manifests.into_iter())?;
        list.close().await?;

        let mut props: HashMap<String, String> = write.properties.clone().into_iter().collect();
        props.extend(self.summary.build());
        props.insert("total-records".into(), self.totals.records.to_string());
        props.insert(
            "total-data-files".into(),
            self.totals.data_files.to_string(),
        );
        props.insert("total-files-size".into(), self.totals.bytes.to_string());
        props.insert(
            "total-delete-files".into(),
            self.totals.delete_files.to_string(),
        );
        props.insert(
            "total-position-deletes".into(),
            self.totals.position_deletes.to_string(),
        );
        props.insert("total-equality-deletes".into(), "0".into());
        props.insert(WRITE_MODE.into(), write.mode.name().into());
        if !write.sort_by.is_empty() {
            props.insert(SORT_BY.into(), write.sort_by.join(","));
        }
        let operation = match write.mode {
            WriteMode::Append => Operation::Append,
            WriteMode::Compact { .. } => Operation::Replace,
            _ => Operation::Overwrite,
        };

        // Phase 1: schema change (if any); phase 2: the snapshot.
        let mut builder = TableMetadataBuilder::new_from_metadata(
            base.clone(),
            t.metadata_location().map(str::to_string),
        );
        if schema.as_struct() != base.current_schema().as_struct() {
            builder = builder.add_current_schema(schema.clone())?;
        }
        let staged_schema = builder.build()?.metadata;
        let snapshot = Snapshot::builder()
            .with_snapshot_id(snapshot_id)
            .with_parent_snapshot_id(base.current_snapshot_id())
            .with_sequence_number(seq)
            .with_timestamp_ms(
                chrono::Utc::now()
                    .timestamp_millis()
                    .max(base.last_updated_ms() + 1),
            )
            .with_manifest_list(list_path)
            .with_summary(Summary {
                operation,
                additional_properties: props,
            })
            .with_schema_id(staged_schema.current_schema_id())
            .build();
        let metadata = TableMetadataBuilder::new_from_metadata(staged_schema, None)
            .set_branch_snapshot(snapshot, MAIN_BRANCH)?
            .build()?
            .metadata;
        Ok(Staged {
            metadata,
            snapshot_id,
            removed_rows,
            rewritten_rows,
        })
    }
}

/// The live (added or existing) entries of manifest `mf`, parsed once per
/// process ([`crate::storage::cache::FileCache`]).
pub(super) async fn live_entries(
    wh: &Warehouse,
    mf: &ManifestFile,
) -> Result<Vec<ManifestEntryRef>> {
    let manifest = wh.cache().manifest(mf).await?;
    Ok(manifest
        .entries()
        .iter()
        .filter(|e| e.is_alive())
        .cloned()
        .collect())
}

/// Most live entries an append or replace merges into its new manifest;
/// base manifests holding more are kept as they are.
const MERGE_ENTRIES: usize = 2000;

/// The live entries of `kept` (manifests of one content type that an append
/// or replace keeps, two or more of them or one beside new files), to be
/// merged into the commit's new manifest of that type; `None` (too many
/// entries) keeps the manifests as they are.
///
/// Without merging every commit adds a manifest per content type, so the
/// manifest list of a table grows by one or two entries a day and every scan
/// parses all of them (an Avro header and schema each). Merged, a table has
/// at most one data and one delete manifest whose entries stay small. Live
/// entries are re-written as EXISTING with their snapshot id and sequence
/// numbers, so which deletes apply to which files is unchanged; entries a
/// kept manifest records as DELETED only described its own snapshot and are
/// dropped (the Iceberg spec allows this when manifests are rewritten).
pub(super) async fn merge_manifests(
    wh: &Warehouse,
    kept: &[ManifestFile],
) -> Result<Option<Vec<ManifestEntryRef>>> {
    let mut live = Vec::new();
    for mf in kept {
        live.extend(live_entries(wh, mf).await?);
        if live.len() > MERGE_ENTRIES {
            return Ok(None);
        }
    }
    Ok(Some(live))
}

/// Write live entry `e` into `w` as EXISTING, with its snapshot id and
/// sequence numbers (so which deletes apply to it is unchanged).
pub(super) fn keep_existing(
    w: &mut ManifestWriter,
    e: &iceberg::spec::ManifestEntry,
) -> Result<()> {
    let snapshot = e.snapshot_id.ok_or_else(|| {
        Error::new(
            ErrorKind::Corrupt,
            format!("manifest entry {} has no snapshot id", e.file_path()),
        )
    })?;
    w.add_existing_file(
        e.data_file.clone(),
        snapshot,
        seq_of(e)?,
        e.file_sequence_number,
    )?;
    Ok(())
}

pub(super) fn seq_of(e: &iceberg::spec::ManifestEntry) -> Result<i64> {
    e.sequence_number().ok_or_else(|| {
        Error::new(
            ErrorKind::Corrupt,
            format!("manifest entry {} has no sequence number", e.file_path()),
        )
    })
}

fn unique_snapshot_id(base: &TableMetadata) -> i64 {
    let mut rng = rand::rng();
    loop {
        let id: i64 = rng.random_range(1..i64::MAX);
        if base.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}
