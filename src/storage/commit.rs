//! Commits: append, overwrite and upsert-by-key, each one atomic Iceberg
//! snapshot, with an optimistic retry loop.
//!
//! iceberg 0.10 only offers fast-append; this module is our own snapshot
//! producer for all three kinds, so they share one code path:
//!
//! 1. Validate and conform the batches to the table schema (nothing is
//!    written if that fails: the error names the column).
//! 2. Write the new rows as Parquet data files (zstd) under `data/`.
//! 3. Against the current snapshot (the *base*), decide the manifests:
//!    - **append**: every base manifest is kept; one manifest adds the new files;
//!    - **overwrite**: every live base file is marked deleted; the new files are added;
//!    - **upsert(keys)**: copy-on-write. Each live base file holding a row
//!      whose key appears in the new rows is marked deleted and its other rows
//!      are rewritten to a new file; manifests without such files are kept
//!      untouched; then the new rows are added.
//! 4. Write the manifest list and the next metadata file with a create-only
//!    put. If another writer won that version, reload and redo step 3 (the
//!    data files of step 2 are reused; nothing a loser wrote is ever
//!    referenced).
//!
//! Sequence numbers follow the spec: added entries inherit the new snapshot's
//! sequence number; existing and deleted entries keep theirs. Caller-supplied
//! properties go into the snapshot summary in the same commit, so a
//! high-water mark can never be published without its rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef as ArrowSchemaRef;
use arrow::row::{RowConverter, SortField};
use iceberg::spec::{
    DataContentType, DataFile, DataFileFormat, MAIN_BRANCH, ManifestContentType, ManifestFile,
    ManifestListWriter, ManifestWriterBuilder, Operation, Schema, Snapshot,
    SnapshotSummaryCollector, Summary, TableMetadata, TableMetadataBuilder,
};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rand::Rng;
use uuid::Uuid;

use super::catalog::{LoadedTable, TableName, Warehouse};
use super::schema::{arrow_schema, conform_batch, iceberg_schema_from_arrow, project_by_name};
use crate::error::{Error, ErrorKind, Result, ResultExt};

/// What a write does to the rows already in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// Add the rows.
    Append,
    /// Replace all rows (and adopt the batch schema).
    Overwrite,
    /// Replace the rows whose key (these columns) appears in the new rows;
    /// keep every other row untouched.
    Upsert { keys: Vec<String> },
}

impl WriteMode {
    fn name(&self) -> &'static str {
        match self {
            WriteMode::Append => "append",
            WriteMode::Overwrite => "overwrite",
            WriteMode::Upsert { .. } => "upsert",
        }
    }
}

/// How a write treats a batch schema that differs from the table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaPolicy {
    /// The batch must have exactly the table's columns (overwrite always
    /// adopts the batch schema).
    #[default]
    Strict,
    /// New columns in the batch are added to the table (as optional columns);
    /// table columns the batch lacks are filled with NULL if optional.
    AddColumns,
}

/// A write request.
#[derive(Debug, Clone)]
pub struct Write {
    pub mode: WriteMode,
    /// Extra snapshot-summary properties committed with the rows.
    pub properties: BTreeMap<String, String>,
    pub schema_policy: SchemaPolicy,
    /// Give up after this many lost races.
    pub max_attempts: usize,
}

impl Write {
    /// A write of the given mode with default settings.
    pub fn new(mode: WriteMode) -> Self {
        Self {
            mode,
            properties: BTreeMap::new(),
            schema_policy: SchemaPolicy::Strict,
            max_attempts: 100,
        }
    }
    pub fn append() -> Self {
        Self::new(WriteMode::Append)
    }
    pub fn overwrite() -> Self {
        Self::new(WriteMode::Overwrite)
    }
    pub fn upsert<S: Into<String>>(keys: impl IntoIterator<Item = S>) -> Self {
        Self::new(WriteMode::Upsert {
            keys: keys.into_iter().map(Into::into).collect(),
        })
    }
    /// Add a snapshot-summary property.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }
    pub fn schema_policy(mut self, policy: SchemaPolicy) -> Self {
        self.schema_policy = policy;
        self
    }
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutcome {
    /// The new snapshot, or `None` when there was nothing to commit.
    pub snapshot_id: Option<i64>,
    /// The metadata version now current.
    pub version: u64,
    pub added_rows: u64,
    pub removed_rows: u64,
    /// Attempts made (1 = no conflict).
    pub attempts: usize,
}

/// Test hook: called at named points of a commit; returning an error aborts
/// the commit there, as a crash would.
pub type FailPoint = Arc<dyn Fn(&str) -> Result<()> + Send + Sync>;

impl Warehouse {
    /// Write `batches` (all with schema `schema`) into `name`, creating the
    /// table if needed, as one atomic snapshot.
    pub async fn write(
        &self,
        name: &TableName,
        schema: ArrowSchemaRef,
        batches: Vec<RecordBatch>,
        write: Write,
    ) -> Result<CommitOutcome> {
        self.write_with_failpoint(name, schema, batches, write, None)
            .await
    }

    /// [`Warehouse::write`] with a crash-injection hook (tests).
    pub async fn write_with_failpoint(
        &self,
        name: &TableName,
        schema: ArrowSchemaRef,
        batches: Vec<RecordBatch>,
        write: Write,
        failpoint: Option<FailPoint>,
    ) -> Result<CommitOutcome> {
        let fail = |at: &str| match &failpoint {
            Some(f) => f(at),
            None => Ok(()),
        };
        if let WriteMode::Upsert { keys } = &write.mode {
            if keys.is_empty() {
                return Err(Error::invalid(format!(
                    "upsert into {name} needs at least one key column"
                )));
            }
            for k in keys {
                if schema.index_of(k).is_err() {
                    return Err(Error::new(
                        ErrorKind::SchemaMismatch,
                        format!("upsert key column '{k}' is not in the batch for table {name}"),
                    ));
                }
            }
        }
        let mut table = self.load_or_create(name, &schema).await?;
        let commit_id = Uuid::now_v7();
        // Data files written so far, with the schema they were written under.
        let mut written: Option<(Schema, Vec<DataFile>, u64)> = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let base = table.metadata();
            let target_schema = target_schema(base, &schema, &write)?;
            let reuse =
                matches!(&written, Some((s, _, _)) if s.as_struct() == target_schema.as_struct());
            if !reuse {
                let target_arrow = arrow_schema(&target_schema)?;
                let mut conformed = Vec::with_capacity(batches.len());
                for b in &batches {
                    let b = if write.schema_policy == SchemaPolicy::AddColumns {
                        fill_missing_optional(b, &target_arrow)
                    } else {
                        b.clone()
                    };
                    conformed.push(conform_batch(&name.to_string(), &b, &target_arrow)?);
                }
                let rows: u64 = conformed.iter().map(|b| b.num_rows() as u64).sum();
                fail("before-data")?;
                let files =
                    write_data_files(&table.table, &target_schema, &conformed, commit_id, "new")
                        .await
                        .map_err(|e| e.context(format!("writing data of {name}")))?;
                written = Some((target_schema.clone(), files, rows));
            }
            let (_, files, rows) = written
                .as_ref()
                .ok_or_else(|| Error::internal("no data files"))?;
            if files.is_empty()
                && write.properties.is_empty()
                && write.mode == WriteMode::Append
                && target_schema.as_struct() == base.current_schema().as_struct()
            {
                return Ok(CommitOutcome {
                    snapshot_id: None,
                    version: table.version,
                    added_rows: 0,
                    removed_rows: 0,
                    attempts: attempt,
                });
            }
            let staged = stage_snapshot(
                self,
                &table,
                &target_schema,
                files.clone(),
                &batches_keys(&write, &batches)?,
                &write,
                commit_id,
                attempt,
            )
            .await
            .map_err(|e| e.context(format!("preparing the {} of {name}", write.mode.name())))?;
            fail("before-commit")?;
            match self
                .put_metadata(name, table.version + 1, &staged.metadata)
                .await
            {
                Ok(()) => {
                    fail("after-commit")?;
                    return Ok(CommitOutcome {
                        snapshot_id: Some(staged.snapshot_id),
                        version: table.version + 1,
                        added_rows: *rows + staged.rewritten_rows,
                        removed_rows: staged.removed_rows,
                        attempts: attempt,
                    });
                }
                Err(e) if e.kind() == ErrorKind::CommitConflict && attempt < write.max_attempts => {
                    tracing::debug!(table = %name, attempt, "lost a commit race; retrying");
                    let backoff = {
                        let mut rng = rand::rng();
                        let cap = 5u64 * (1 << attempt.min(6));
                        rng.random_range(1..=cap)
                    };
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                    table = self.load_table(name).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The schema the new snapshot is written under: the table's own unless the
/// mode or policy lets the batch change it.
fn target_schema(base: &TableMetadata, batch: &ArrowSchemaRef, write: &Write) -> Result<Schema> {
    let current = base.current_schema();
    let last = base.last_column_id();
    let candidate = match (&write.mode, write.schema_policy) {
        (WriteMode::Overwrite, _) => iceberg_schema_from_arrow(batch, Some((current, last)))?,
        (_, SchemaPolicy::AddColumns) => {
            let current_arrow = arrow_schema(current)?;
            let mut fields: Vec<_> = current_arrow
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            for f in batch.fields() {
                if current_arrow.field_with_name(f.name()).is_err() {
                    fields.push(f.as_ref().clone().with_nullable(true));
                }
            }
            iceberg_schema_from_arrow(
                &arrow::datatypes::Schema::new(fields),
                Some((current, last)),
            )?
        }
        (_, SchemaPolicy::Strict) => return Ok(current.as_ref().clone()),
    };
    if candidate.as_struct() == current.as_struct() {
        Ok(current.as_ref().clone())
    } else {
        Ok(candidate)
    }
}

/// Add NULL columns for optional table columns missing from `batch`.
fn fill_missing_optional(batch: &RecordBatch, target: &ArrowSchemaRef) -> RecordBatch {
    let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
    let mut cols = batch.columns().to_vec();
    for tf in target.fields() {
        if tf.is_nullable() && batch.schema().index_of(tf.name()).is_err() {
            fields.push(tf.clone());
            cols.push(arrow::array::new_null_array(
                tf.data_type(),
                batch.num_rows(),
            ));
        }
    }
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), cols)
        .unwrap_or_else(|_| batch.clone())
}

/// Encoded upsert keys of the new rows (empty for other modes).
struct KeySet {
    columns: Vec<String>,
    converter: Option<RowConverter>,
    keys: HashSet<Box<[u8]>>,
}

fn batches_keys(write: &Write, batches: &[RecordBatch]) -> Result<KeySet> {
    let WriteMode::Upsert { keys } = &write.mode else {
        return Ok(KeySet {
            columns: vec![],
            converter: None,
            keys: HashSet::new(),
        });
    };
    let Some(first) = batches.first() else {
        return Ok(KeySet {
            columns: keys.clone(),
            converter: None,
            keys: HashSet::new(),
        });
    };
    let fields = keys
        .iter()
        .map(|k| {
            Ok(SortField::new(
                first.schema_ref().field_with_name(k)?.data_type().clone(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let converter = RowConverter::new(fields)?;
    let mut set = HashSet::new();
    for b in batches {
        let cols = keys
            .iter()
            .map(|k| Ok(b.column(b.schema_ref().index_of(k)?).clone()))
            .collect::<Result<Vec<_>>>()?;
        let rows = converter.convert_columns(&cols)?;
        for r in rows.iter() {
            set.insert(r.as_ref().into());
        }
    }
    Ok(KeySet {
        columns: keys.clone(),
        converter: Some(converter),
        keys: set,
    })
}

/// Write conformed batches as Parquet data files of `table`.
async fn write_data_files(
    table: &Table,
    schema: &Schema,
    batches: &[RecordBatch],
    commit_id: Uuid,
    tag: &str,
) -> Result<Vec<DataFile>> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(vec![]);
    }
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).map_err(|e| Error::internal(e.to_string()))?,
        ))
        .build();
    let parquet = ParquetWriterBuilder::new(props, Arc::new(schema.clone()));
    let rolling = RollingFileWriterBuilder::new_with_default_file_size(
        parquet,
        table.file_io().clone(),
        DefaultLocationGenerator::new(table.metadata())?,
        DefaultFileNameGenerator::new(format!("{commit_id}-{tag}"), None, DataFileFormat::Parquet),
    );
    let mut writer = DataFileWriterBuilder::new(rolling).build(None).await?;
    for b in batches {
        if b.num_rows() > 0 {
            writer.write(b.clone()).await?;
        }
    }
    Ok(writer.close().await?)
}

struct Staged {
    metadata: TableMetadata,
    snapshot_id: i64,
    removed_rows: u64,
    rewritten_rows: u64,
}

#[allow(clippy::too_many_arguments)]
async fn stage_snapshot(
    wh: &Warehouse,
    table: &LoadedTable,
    schema: &Schema,
    added: Vec<DataFile>,
    keys: &KeySet,
    write: &Write,
    commit_id: Uuid,
    attempt: usize,
) -> Result<Staged> {
    let base = table.metadata();
    let t = &table.table;
    let file_io = t.file_io();
    let snapshot_id = unique_snapshot_id(base);
    let seq = base.next_sequence_number();
    let location = base.location().to_string();
    let mut manifest_counter = 0u32;
    let mut next_manifest_path = || {
        manifest_counter += 1;
        format!("{location}/metadata/{commit_id}-a{attempt}-m{manifest_counter}.avro")
    };
    let new_writer = |path: String, content: ManifestContentType| -> Result<_> {
        let b = ManifestWriterBuilder::new(
            file_io.new_output(path)?,
            Some(snapshot_id),
            Arc::new(schema.clone()),
            base.default_partition_spec().as_ref().clone(),
        );
        Ok(match content {
            ManifestContentType::Data => b.build_v2_data(),
            ManifestContentType::Deletes => b.build_v2_deletes(),
        })
    };

    let mut summary = SnapshotSummaryCollector::default();
    let mut manifests: Vec<ManifestFile> = Vec::new();
    let mut removed_rows = 0u64;
    let mut rewritten: Vec<DataFile> = Vec::new();
    let mut rewritten_rows = 0u64;

    if let Some(current) = base.current_snapshot() {
        let list = t.manifest_list_reader(current).load().await?;
        for mf in list.entries() {
            if mf.content != ManifestContentType::Data {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "table has delete files ({}); only copy-on-write tables are supported",
                        mf.manifest_path
                    ),
                ));
            }
            match &write.mode {
                WriteMode::Append => manifests.push(mf.clone()),
                WriteMode::Overwrite => {
                    let manifest = mf.load_manifest(file_io).await?;
                    let live: Vec<_> = manifest
                        .entries()
                        .iter()
                        .filter(|e| e.is_alive())
                        .cloned()
                        .collect();
                    if live.is_empty() {
                        continue;
                    }
                    let mut w = new_writer(next_manifest_path(), ManifestContentType::Data)?;
                    for e in live {
                        removed_rows += e.record_count();
                        mark_deleted(&mut w, &mut summary, &e, schema, base)?;
                    }
                    manifests.push(w.write_manifest_file().await?);
                }
                WriteMode::Upsert { .. } => {
                    let manifest = mf.load_manifest(file_io).await?;
                    let live: Vec<_> = manifest
                        .entries()
                        .iter()
                        .filter(|e| e.is_alive())
                        .cloned()
                        .collect();
                    let mut affected = Vec::new();
                    let mut kept = Vec::new();
                    for e in live {
                        match rows_without_keys(wh, e.data_file(), schema, keys).await? {
                            None => kept.push(e),
                            Some(remaining) => affected.push((e, remaining)),
                        }
                    }
                    if affected.is_empty() {
                        manifests.push(mf.clone());
                        continue;
                    }
                    let mut w = new_writer(next_manifest_path(), ManifestContentType::Data)?;
                    for e in &kept {
                        w.add_existing_file(
                            e.data_file.clone(),
                            e.snapshot_id.unwrap_or(current.snapshot_id()),
                            seq_of(e)?,
                            e.file_sequence_number,
                        )?;
                    }
                    for (e, remaining) in affected {
                        let remaining_count: u64 =
                            remaining.iter().map(|b| b.num_rows() as u64).sum();
                        removed_rows += e.record_count() - remaining_count;
                        mark_deleted(&mut w, &mut summary, &e, schema, base)?;
                        if remaining_count > 0 {
                            rewritten_rows += remaining_count;
                            rewritten.extend(
                                write_data_files(
                                    t,
                                    schema,
                                    &remaining,
                                    commit_id,
                                    &format!("a{attempt}-rewrite"),
                                )
                                .await?,
                            );
                        }
                    }
                    manifests.push(w.write_manifest_file().await?);
                }
            }
        }
    }

    let all_added: Vec<DataFile> = added.into_iter().chain(rewritten).collect();
    for f in &all_added {
        summary.add_file(
            f,
            Arc::new(schema.clone()),
            base.default_partition_spec().clone(),
        );
    }
    if !all_added.is_empty() {
        let mut w = new_writer(next_manifest_path(), ManifestContentType::Data)?;
        for f in all_added {
            w.add_file(f, -1)?;
        }
        manifests.insert(0, w.write_manifest_file().await?);
    }

    // Totals over the live files of the new snapshot.
    let mut totals = (0u64, 0u64, 0u64); // records, files, bytes
    for mf in &manifests {
        let m = mf.load_manifest(file_io).await?;
        for e in m.entries().iter().filter(|e| e.is_alive()) {
            if e.content_type() == DataContentType::Data {
                totals.0 += e.record_count();
                totals.1 += 1;
                totals.2 += e.file_size_in_bytes();
            }
        }
    }

    let list_path = format!("{location}/metadata/snap-{snapshot_id}-{attempt}-{commit_id}.avro");
    let mut list = ManifestListWriter::v2(
        file_io.new_output(&list_path)?.writer().await?,
        snapshot_id,
        base.current_snapshot_id(),
        seq,
    );
    list.add_manifests(manifests.into_iter())?;
    list.close().await?;

    let mut props: HashMap<String, String> = write.properties.clone().into_iter().collect();
    props.extend(summary.build());
    props.insert("total-records".into(), totals.0.to_string());
    props.insert("total-data-files".into(), totals.1.to_string());
    props.insert("total-files-size".into(), totals.2.to_string());
    props.insert("total-delete-files".into(), "0".into());
    props.insert("total-position-deletes".into(), "0".into());
    props.insert("total-equality-deletes".into(), "0".into());
    props.insert("lakehouse.write-mode".into(), write.mode.name().into());
    let operation = match write.mode {
        WriteMode::Append => Operation::Append,
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

/// Record a live entry as deleted in manifest `w` and in the summary.
fn mark_deleted(
    w: &mut iceberg::spec::ManifestWriter,
    summary: &mut SnapshotSummaryCollector,
    e: &iceberg::spec::ManifestEntry,
    schema: &Schema,
    base: &TableMetadata,
) -> Result<()> {
    summary.remove_file(
        e.data_file(),
        Arc::new(schema.clone()),
        base.default_partition_spec().clone(),
    );
    w.add_delete_file(e.data_file.clone(), seq_of(e)?, e.file_sequence_number)?;
    Ok(())
}

fn seq_of(e: &iceberg::spec::ManifestEntry) -> Result<i64> {
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

/// For upsert: `None` if the file has no row whose key is in `keys`;
/// otherwise the file's other rows (projected onto `schema`).
async fn rows_without_keys(
    wh: &Warehouse,
    file: &DataFile,
    schema: &Schema,
    keys: &KeySet,
) -> Result<Option<Vec<RecordBatch>>> {
    let Some(converter) = &keys.converter else {
        return Ok(None);
    };
    if file.file_format() != DataFileFormat::Parquet {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("data file {} is not Parquet", file.file_path()),
        ));
    }
    let path = wh.url().location_to_path(file.file_path())?;
    let bytes = wh
        .store()
        .get(&path)
        .await
        .map_err(|e| Error::from(e).context(format!("cannot read data file {}", file.file_path())))?
        .bytes()
        .await
        .map_err(|e| {
            Error::from(e).context(format!("cannot read data file {}", file.file_path()))
        })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .ctx(ErrorKind::Corrupt, || {
            format!("data file {} is not valid Parquet", file.file_path())
        })?
        .build()
        .ctx(ErrorKind::Corrupt, || {
            format!("data file {} is not valid Parquet", file.file_path())
        })?;
    let target = arrow_schema(schema)?;
    let mut out = Vec::new();
    let mut any_hit = false;
    for batch in reader {
        let batch = batch.ctx(ErrorKind::Corrupt, || {
            format!("cannot decode data file {}", file.file_path())
        })?;
        let batch = project_by_name(&batch, &target)?;
        let cols = keys
            .columns
            .iter()
            .map(|k| Ok(batch.column(batch.schema_ref().index_of(k)?).clone()))
            .collect::<Result<Vec<_>>>()?;
        let rows = converter.convert_columns(&cols)?;
        let keep: BooleanArray = rows
            .iter()
            .map(|r| Some(!keys.keys.contains(r.as_ref())))
            .collect();
        if keep.false_count() > 0 {
            any_hit = true;
        }
        out.push(filter_record_batch(&batch, &keep)?);
    }
    Ok(any_hit.then_some(out))
}

/// Files of the current snapshot (live entries), for inspection and tests.
pub async fn live_data_files(table: &LoadedTable) -> Result<Vec<DataFile>> {
    let Some(current) = table.metadata().current_snapshot() else {
        return Ok(vec![]);
    };
    let list = table.table.manifest_list_reader(current).load().await?;
    let mut out = Vec::new();
    for mf in list.entries() {
        let m = mf.load_manifest(table.table.file_io()).await?;
        out.extend(
            m.entries()
                .iter()
                .filter(|e| e.is_alive())
                .map(|e| e.data_file().clone()),
        );
    }
    Ok(out)
}
