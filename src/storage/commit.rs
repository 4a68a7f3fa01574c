//! Commits: append, overwrite and upsert-by-key, each one atomic Iceberg
//! snapshot, with an optimistic retry loop.
//!
//! iceberg 0.10 only offers fast-append; this module is our own snapshot
//! producer for all three kinds, so they share one code path:
//!
//! 1. Validate and conform the batches to the table schema (nothing is
//!    committed if that fails: the error names the column).
//! 2. Write the new rows as Parquet data files (LZ4) under `data/`: rows in
//!    memory ([`Warehouse::write`]) are sorted here if asked; streamed rows
//!    ([`Warehouse::write_stream`]) go into rolling files as they arrive
//!    ([`super::sink`]), already sorted, and a merge's keys are gathered as
//!    they pass.
//! 3. Against the current snapshot (the *base*), decide the manifests:
//!    - **append**: every base file is kept; one manifest adds the new files;
//!    - **overwrite**: every live base file is marked deleted; the new files are added;
//!    - **upsert(keys)**: copy-on-write. Each live base file holding a row
//!      whose key appears in the new rows is marked deleted and its other rows
//!      are rewritten to a new file; manifests without such files are kept
//!      untouched; then the new rows are added;
//!    - **replace(matches)**: merge-on-read. Live rows matching any
//!      [`KeyMatch`] (key tuples given explicitly, or the keys of the new
//!      rows) get one Iceberg v2 *position delete* file; no data file is
//!      rewritten; then the new rows are added. Only the matching key
//!      columns of the base files are read. Positions already deleted are
//!      not deleted again, so `total-records - total-position-deletes` is
//!      the live row count.
//!
//!    An append or replace merges the base manifests it keeps into its new
//!    manifest of the same content (data, deletes), as EXISTING entries
//!    with their sequence numbers, so a table has at most one manifest of
//!    each content however many commits it has seen ([`merge_manifests`]).
//! 4. Write the manifest list and the next metadata file with a create-only
//!    put. If another writer won that version, reload and redo step 3 (the
//!    data files of step 2 are reused; nothing a loser wrote is ever
//!    referenced).
//!
//! Copy-on-write upsert refuses tables that already hold position deletes
//! (use replace or overwrite there); overwrite drops delete files with the
//! data files. Snapshot totals are the base snapshot's totals plus what the
//! commit added minus what it removed.
//!
//! Sequence numbers follow the spec: added entries inherit the new snapshot's
//! sequence number; existing and deleted entries keep theirs. Caller-supplied
//! properties go into the snapshot summary in the same commit, so a
//! high-water mark can never be published without its rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::DataType;
use arrow::datatypes::SchemaRef as ArrowSchemaRef;
use arrow::row::{RowConverter, SortField};
use iceberg::spec::{
    DataContentType, DataFile, DataFileBuilder, DataFileFormat, MAIN_BRANCH, ManifestContentType,
    ManifestEntryRef, ManifestFile, ManifestListWriter, ManifestWriterBuilder, Operation, Schema,
    Snapshot, SnapshotSummaryCollector, Summary, TableMetadata, TableMetadataBuilder,
};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection};
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use rand::Rng;
use uuid::Uuid;

use super::catalog::{LoadedTable, TableName, Warehouse};
use super::schema::{arrow_schema, conform_batch, iceberg_schema_from_arrow, project_by_name};
use super::sink::{Part, SinkOptions, sink};
use crate::error::{Error, ErrorKind, Result, ResultExt};

/// What a write does to the rows already in the table.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteMode {
    /// Add the rows.
    Append,
    /// Replace all rows (and adopt the batch schema).
    Overwrite,
    /// Replace the rows whose key (these columns) appears in the new rows;
    /// keep every other row untouched.
    Upsert { keys: Vec<String> },
    /// Merge-on-read: delete (with position deletes) the rows matching any
    /// of `matches`, then add the new rows.
    Replace { matches: Vec<KeyMatch> },
}

/// Which existing rows a [`WriteMode::Replace`] deletes: rows whose values
/// in the key columns equal one of the key tuples. NULL never equals
/// anything, and a base file lacking a key column has no matching row.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyMatch {
    /// The tuples of these columns found in the new rows (an upsert).
    NewRows(Vec<String>),
    /// These tuples: the batch's columns name the key columns, each row is
    /// one tuple.
    Values(RecordBatch),
}

impl KeyMatch {
    fn columns(&self) -> Vec<String> {
        match self {
            KeyMatch::NewRows(c) => c.clone(),
            KeyMatch::Values(b) => b
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        }
    }
}

impl WriteMode {
    fn name(&self) -> &'static str {
        match self {
            WriteMode::Append => "append",
            WriteMode::Overwrite => "overwrite",
            WriteMode::Upsert { .. } => "upsert",
            WriteMode::Replace { .. } => "replace",
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
    /// Write each batch to data files of its own (never two batches in one
    /// file), so a reader filtering on what tells the batches apart can
    /// skip whole files by their statistics.
    pub file_per_batch: bool,
    /// Write the new rows sorted by these columns (ascending, NULLs first;
    /// not with `file_per_batch`) in small pages (see [`writer_properties`]):
    /// a replace's search, and a scan restricted to key values, then decode
    /// only the pages whose min/max may hold one of the keys.
    pub sort_by: Vec<String>,
    /// Keep the new rows in this process's cache for a reader of this
    /// commit's added rows (append and replace only: their added files hold
    /// exactly the new rows; see [`super::added`]).
    pub keep_added: bool,
    /// Data files are closed and new ones started past this size (bytes,
    /// encoded); `None`: the warehouse's ([`Warehouse::target_file_size`]).
    pub target_file_size: Option<usize>,
    /// Snapshot properties whose values are known only once every new row
    /// has been written (e.g. the largest load time among streamed rows):
    /// each function is called once, after the last row, before staging
    /// (`None`: the property is not set).
    pub deferred: Vec<(String, Deferred)>,
    /// Commit nothing (not even the properties) when there are no new rows
    /// (an append or replace streaming rows that may all be filtered out).
    pub only_with_rows: bool,
}

/// A snapshot property value computed after the last row (see
/// [`Write::deferred`]).
#[derive(Clone)]
pub struct Deferred(pub Arc<dyn Fn() -> Option<String> + Send + Sync>);

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deferred(..)")
    }
}

impl Write {
    /// A write of the given mode with default settings.
    pub fn new(mode: WriteMode) -> Self {
        Self {
            mode,
            properties: BTreeMap::new(),
            schema_policy: SchemaPolicy::Strict,
            max_attempts: 100,
            file_per_batch: false,
            sort_by: Vec::new(),
            keep_added: false,
            target_file_size: None,
            deferred: Vec::new(),
            only_with_rows: false,
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
    /// Merge-on-read upsert: the rows whose `keys` appear in the new rows are
    /// deleted with position deletes, then the new rows are added.
    pub fn merge<S: Into<String>>(keys: impl IntoIterator<Item = S>) -> Self {
        Self::new(WriteMode::Replace {
            matches: vec![KeyMatch::NewRows(
                keys.into_iter().map(Into::into).collect(),
            )],
        })
    }
    /// Merge-on-read: delete the rows matching any of `matches`, add the new rows.
    pub fn replace(matches: Vec<KeyMatch>) -> Self {
        Self::new(WriteMode::Replace { matches })
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
    /// See [`Write::file_per_batch`].
    pub fn file_per_batch(mut self) -> Self {
        self.file_per_batch = true;
        self
    }
    /// See [`Write::keep_added`].
    pub fn keep_added(mut self) -> Self {
        self.keep_added = true;
        self
    }
    /// A property computed after the last row (see [`Write::deferred`]).
    pub fn deferred_property(
        mut self,
        key: impl Into<String>,
        value: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.deferred.push((key.into(), Deferred(Arc::new(value))));
        self
    }
    /// See [`Write::only_with_rows`].
    pub fn only_with_rows(mut self) -> Self {
        self.only_with_rows = true;
        self
    }
    /// See [`Write::target_file_size`].
    pub fn target_file_size(mut self, bytes: usize) -> Self {
        self.target_file_size = Some(bytes.max(1));
        self
    }
    /// See [`Write::sort_by`].
    pub fn sorted_by<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.sort_by = columns.into_iter().map(Into::into).collect();
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
    /// The write mode: `append`, `overwrite`, `upsert` or `replace`.
    pub mode: &'static str,
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
        self.commit_rows(name, schema, NewRows::Batches(batches), write, failpoint)
            .await
    }

    /// Write the rows of `parts` (each batch with schema `schema`) into
    /// `name` while they are computed, creating the table if needed, as one
    /// atomic snapshot committed after the last row ([`super::sink`]: rows
    /// stream into rolling data files; nothing is visible before the commit,
    /// and a failure leaves only unreferenced files).
    ///
    /// With [`Write::sort_by`], each part must arrive sorted by those
    /// columns (the files are laid out for key search, not re-sorted). A
    /// merge's keys ([`KeyMatch::NewRows`], upsert) are gathered as the rows
    /// pass; the base rows they replace are searched after the last one.
    /// A stream cannot be written twice: if a concurrent commit changes the
    /// table's schema before this one lands, the write fails with a commit
    /// conflict (re-run it).
    pub async fn write_stream(
        &self,
        name: &TableName,
        schema: ArrowSchemaRef,
        parts: Vec<Part<'_>>,
        write: Write,
    ) -> Result<CommitOutcome> {
        self.commit_rows(name, schema, NewRows::Parts(parts), write, None)
            .await
    }

    async fn commit_rows(
        &self,
        name: &TableName,
        schema: ArrowSchemaRef,
        mut rows_in: NewRows<'_>,
        mut write: Write,
        failpoint: Option<FailPoint>,
    ) -> Result<CommitOutcome> {
        let fail = |at: &str| match &failpoint {
            Some(f) => f(at),
            None => Ok(()),
        };
        // Each key list needs a column; keys taken from the new rows must be
        // batch columns (explicit key tuples are checked against the table).
        let key_lists: Vec<(Vec<String>, bool)> = match &write.mode {
            WriteMode::Upsert { keys } => vec![(keys.clone(), true)],
            WriteMode::Replace { matches } => matches
                .iter()
                .map(|m| (m.columns(), matches!(m, KeyMatch::NewRows(_))))
                .collect(),
            WriteMode::Append | WriteMode::Overwrite => vec![],
        };
        for (keys, from_batch) in &key_lists {
            if keys.is_empty() {
                return Err(Error::invalid(format!(
                    "{} into {name} needs at least one key column",
                    write.mode.name()
                )));
            }
            for k in keys.iter().filter(|_| *from_batch) {
                if schema.index_of(k).is_err() {
                    return Err(Error::new(
                        ErrorKind::SchemaMismatch,
                        format!(
                            "{} key column '{k}' is not in the batch for table {name}",
                            write.mode.name()
                        ),
                    ));
                }
            }
        }
        let mut table = self.load_or_create(name, &schema).await?;
        if let WriteMode::Replace { matches } = &write.mode {
            let current = table.metadata().current_schema();
            for m in matches.iter().filter(|m| matches!(m, KeyMatch::Values(_))) {
                if let Some(c) = m
                    .columns()
                    .into_iter()
                    .find(|c| current.field_by_name(c).is_none())
                {
                    return Err(Error::new(
                        ErrorKind::SchemaMismatch,
                        format!("replace key column '{c}' is not a column of table {name}"),
                    ));
                }
            }
        }
        let commit_id = Uuid::now_v7();
        // Key columns the new rows must give (a merge's): known up front for
        // rows in memory, gathered as the rows pass for a stream.
        let new_row_keys: Vec<String> = {
            let mut cols: Vec<String> = Vec::new();
            for (keys, from_batch) in &key_lists {
                for k in keys.iter().filter(|_| *from_batch) {
                    if !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
            cols
        };
        let mut known: Option<Arc<Vec<Matcher>>> = match &rows_in {
            NewRows::Batches(b) => Some(Arc::new(matchers(&write, b)?)),
            NewRows::Parts(_) if new_row_keys.is_empty() => Some(Arc::new(matchers(&write, &[])?)),
            NewRows::Parts(_) => None,
        };
        let is_replace = matches!(write.mode, WriteMode::Replace { .. });
        // Data files written so far, with the schema they were written under.
        let mut written: Option<(Schema, Vec<DataFile>, u64)> = None;
        // The rows those files hold, when the commit is to keep them.
        let mut kept: Option<Vec<RecordBatch>> = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let base = table.metadata();
            let target_schema = target_schema(base, &schema, &write)?;
            let reuse =
                matches!(&written, Some((s, _, _)) if s.as_struct() == target_schema.as_struct());
            if written.is_some() && !reuse && matches!(rows_in, NewRows::Parts(_)) {
                return Err(Error::new(
                    ErrorKind::CommitConflict,
                    format!(
                        "the schema of {name} changed while new rows streamed into it; \
                         run the write again"
                    ),
                ));
            }
            // A replace searches the table's files for the rows it deletes
            // while the new rows' files are written, when its keys are known
            // before the rows are. Both are CPU work and the write does not
            // yield while it encodes, so the search runs on a thread of the
            // blocking pool. Not as a task of its own: a task spawned here
            // waits in this worker's LIFO slot, which no other worker steals
            // from, until the write yields.
            let search = match &known {
                Some(m) if is_replace && !m.is_empty() => {
                    Some(spawn_search(self, &table, &target_schema, m))
                }
                _ => None,
            };
            let write_new = async {
                if reuse {
                    return Ok(None);
                }
                let target_arrow = arrow_schema(&target_schema)?;
                let conform = {
                    let (table_name, target) = (name.to_string(), Arc::clone(&target_arrow));
                    let fill = write.schema_policy == SchemaPolicy::AddColumns;
                    move |b: RecordBatch| {
                        let b = if fill {
                            fill_missing_optional(&b, &target)
                        } else {
                            b
                        };
                        conform_batch(&table_name, &b, &target)
                    }
                };
                let threads = datafusion::common::utils::get_available_parallelism();
                let mut options = SinkOptions {
                    writers: threads,
                    target_file_size: write
                        .target_file_size
                        .unwrap_or_else(|| self.target_file_size()),
                    properties: writer_properties(!write.sort_by.is_empty())?,
                    run_rows: PARALLEL_WRITE_ROWS,
                    prefix: format!("{commit_id}-a{attempt}"),
                    file_per_part: write.file_per_batch,
                    key_columns: if known.is_none() {
                        new_row_keys.clone()
                    } else {
                        vec![]
                    },
                    keep_rows_bytes: (write.keep_added
                        && matches!(write.mode, WriteMode::Append | WriteMode::Replace { .. }))
                    .then_some(KEEP_ADDED_BYTES),
                };
                let sunk = match &mut rows_in {
                    NewRows::Batches(batches) => {
                        let mut conformed = batches
                            .iter()
                            .map(|b| conform(b.clone()))
                            .collect::<Result<Vec<_>>>()?;
                        if !write.sort_by.is_empty() && !write.file_per_batch {
                            conformed =
                                sorted(&target_arrow, &conformed, &write.sort_by).map_err(|e| {
                                    e.context(format!("sorting the new rows of {name}"))
                                })?;
                        }
                        fail("before-data")?;
                        // Files written at the same time, each on a worker: a
                        // file's columns are encoded one after the other, so
                        // many new rows (the unified bridge's 165 columns) are
                        // split into a file per core (contiguous runs: each
                        // stays sorted).
                        let rows: usize = conformed.iter().map(RecordBatch::num_rows).sum();
                        let runs: Vec<Vec<RecordBatch>> = if write.file_per_batch {
                            conformed.into_iter().map(|b| vec![b]).collect()
                        } else {
                            let k = (rows / PARALLEL_WRITE_ROWS).clamp(1, threads);
                            balanced_parts(&conformed, k)
                        };
                        if runs.len() == 1 {
                            options.run_rows = usize::MAX;
                        }
                        let parts: Vec<Part<'_>> = runs
                            .into_iter()
                            .map(|r| {
                                futures::StreamExt::boxed(futures::stream::iter(
                                    r.into_iter().map(Ok),
                                ))
                            })
                            .collect();
                        sink(&table.table, &target_schema, parts, Arc::new(Ok), &options).await
                    }
                    NewRows::Parts(parts) => {
                        fail("before-data")?;
                        let parts = std::mem::take(parts);
                        sink(
                            &table.table,
                            &target_schema,
                            parts,
                            Arc::new(conform),
                            &options,
                        )
                        .await
                    }
                }
                .map_err(|e| e.context(format!("writing data of {name}")))?;
                written = Some((target_schema.clone(), sunk.files, sunk.rows));
                kept = sunk.kept;
                Ok::<_, Error>(Some(sunk.keys))
            };
            let (wrote, replaced) = tokio::join!(write_new, async move {
                match search {
                    Some(task) => task
                        .await
                        .map_err(|e| {
                            Error::internal(format!("searching the rows to delete failed: {e}"))
                        })?
                        .map(Some),
                    None => Ok(None),
                }
            });
            let keys = wrote?;
            for (k, value) in std::mem::take(&mut write.deferred) {
                if let Some(v) = (value.0)() {
                    write.properties.insert(k, v);
                }
            }
            let mut replaced = replaced
                .map_err(|e| e.context(format!("finding the rows a replace of {name} deletes")))?;
            if known.is_none() {
                // A stream's merge keys are known now that every row passed.
                let m = Arc::new(matchers(&write, &keys.unwrap_or_default())?);
                if is_replace && !m.is_empty() {
                    replaced = Some(
                        spawn_search(self, &table, &target_schema, &m)
                            .await
                            .map_err(|e| {
                                Error::internal(format!("searching the rows to delete failed: {e}"))
                            })?
                            .map_err(|e| {
                                e.context(format!("finding the rows a replace of {name} deletes"))
                            })?,
                    );
                }
                known = Some(m);
            }
            let matchers_now = known
                .as_ref()
                .ok_or_else(|| Error::internal("no matchers"))?;
            let (_, files, rows) = written
                .as_ref()
                .ok_or_else(|| Error::internal("no data files"))?;
            let nothing = *rows == 0
                && write.only_with_rows
                && matches!(write.mode, WriteMode::Append | WriteMode::Replace { .. })
                && replaced.as_ref().is_none_or(|r| r.is_empty());
            if nothing
                || files.is_empty()
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
                    mode: write.mode.name(),
                });
            }
            let staged = stage_snapshot(
                self,
                &table,
                &target_schema,
                files.clone(),
                matchers_now,
                replaced.as_ref(),
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
                    if write.keep_added
                        && matches!(write.mode, WriteMode::Append | WriteMode::Replace { .. })
                        && staged.rewritten_rows == 0
                        && let Some(rows) = &kept
                    {
                        self.cache()
                            .put_added(base.location(), staged.snapshot_id, rows);
                    }
                    fail("after-commit")?;
                    return Ok(CommitOutcome {
                        snapshot_id: Some(staged.snapshot_id),
                        version: table.version + 1,
                        added_rows: *rows + staged.rewritten_rows,
                        removed_rows: staged.removed_rows,
                        attempts: attempt,
                        mode: write.mode.name(),
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

/// Search `table` (under `schema`) for the rows `matchers` match, on a
/// thread of the blocking pool (see [`Warehouse::write_stream`]).
fn spawn_search(
    wh: &Warehouse,
    table: &LoadedTable,
    schema: &Schema,
    matchers: &Arc<Vec<Matcher>>,
) -> tokio::task::JoinHandle<Result<HashMap<String, Vec<i64>>>> {
    let (wh, base_table, schema) = (wh.clone(), table.clone(), schema.clone());
    let matchers = Arc::clone(matchers);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        replaced_positions(&handle, &wh, &base_table, &schema, matchers)
    })
}

/// The new rows of a commit.
enum NewRows<'a> {
    /// In memory: sorted here if the write asks for it, and written again
    /// if a concurrent commit changes the table's schema.
    Batches(Vec<RecordBatch>),
    /// Streamed ([`Warehouse::write_stream`]); taken by the first attempt.
    Parts(Vec<Part<'a>>),
}

/// Most bytes of new rows a commit keeps in memory for a reader of its
/// added rows ([`Write::keep_added`]); past it that reader decodes them.
const KEEP_ADDED_BYTES: usize = 256 * 1024 * 1024;

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

/// Key tuples that base rows are matched against (upsert and
/// replace). Tuples with a NULL part are never stored, and base rows with a
/// NULL key part never match. A key column holding one value in every tuple
/// (e.g. the peripheral of a unified-bridge replace) is compared first with
/// a vectorised equality, so only candidate rows are encoded.
struct Matcher {
    columns: Vec<String>,
    types: Vec<arrow::datatypes::DataType>,
    /// Per column: its only value, when all tuples share it.
    constants: Vec<Option<arrow::array::ArrayRef>>,
    tuples: Tuples,
}

/// The key tuples of a [`Matcher`], in a set probed once per candidate row
/// of every scanned file (hashbrown's fast hasher).
enum Tuples {
    /// Every key column but one text column is constant (a PIT hook,
    /// possibly with the unified bridge's peripheral): that column's index
    /// and its values' bytes, probed straight from the decoded strings (no
    /// copy, no row encoding).
    /// The values are also kept sorted, to test page statistics.
    Text(
        usize,
        datafusion::common::HashSet<Box<[u8]>>,
        Vec<Box<[u8]>>,
    ),
    /// Any other key: the tuples in Arrow's row encoding.
    Encoded(RowConverter, datafusion::common::HashSet<Box<[u8]>>),
}

/// `array` as UTF-8 strings (key columns typed `Utf8`).
fn utf8(array: &arrow::array::ArrayRef) -> Result<&arrow::array::StringArray> {
    array
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .ok_or_else(|| Error::internal("a Utf8 key column is not a StringArray"))
}

/// A decoded text key column: `Utf8`, or `Utf8View` (the replace search
/// decodes text as views into the Parquet pages, without copying every
/// value into one buffer, see [`SearchPlan::fetch`]).
enum TextColumn<'a> {
    Plain(&'a arrow::array::StringArray),
    View(&'a arrow::array::StringViewArray),
}

impl<'a> TextColumn<'a> {
    fn of(array: &'a arrow::array::ArrayRef) -> Result<Self> {
        let any = array.as_any();
        if let Some(a) = any.downcast_ref::<arrow::array::StringArray>() {
            return Ok(Self::Plain(a));
        }
        any.downcast_ref::<arrow::array::StringViewArray>()
            .map(Self::View)
            .ok_or_else(|| Error::internal("a text key column is neither Utf8 nor Utf8View"))
    }

    /// Row `r`'s bytes (`None` if NULL).
    fn bytes(&self, r: usize) -> Option<&'a [u8]> {
        match self {
            Self::Plain(a) => a.is_valid(r).then(|| a.value(r).as_bytes()),
            Self::View(a) => a.is_valid(r).then(|| a.value(r).as_bytes()),
        }
    }
}

impl Matcher {
    /// Build from the key columns of `batches` (all of one schema).
    fn from_batches(columns: &[String], batches: &[RecordBatch]) -> Result<Option<Self>> {
        let Some(first) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(None);
        };
        let types = columns
            .iter()
            .map(|k| Ok(first.schema_ref().field_with_name(k)?.data_type().clone()))
            .collect::<Result<Vec<_>>>()?;
        let mut constants: Vec<Option<arrow::array::ArrayRef>> = columns
            .iter()
            .map(|k| {
                Ok(Some(
                    first.column(first.schema_ref().index_of(k)?).slice(0, 1),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let key_columns = |b: &RecordBatch| {
            columns
                .iter()
                .map(|k| Ok(b.column(b.schema_ref().index_of(k)?).clone()))
                .collect::<Result<Vec<_>>>()
        };
        for b in batches {
            for (c, k) in key_columns(b)?.iter().zip(constants.iter_mut()) {
                if let Some(v) = k {
                    let same =
                        arrow::compute::kernels::cmp::eq(c, &arrow::array::Scalar::new(v.clone()))?;
                    if same.null_count() > 0 || same.false_count() > 0 {
                        *k = None;
                    }
                }
            }
        }
        // Constant parts are never NULL (a NULL makes the equality above
        // NULL), so a tuple has a NULL part exactly when its varying text
        // value is NULL.
        let varying: Vec<usize> = (0..columns.len())
            .filter(|&i| constants[i].is_none())
            .collect();
        let mut keys = datafusion::common::HashSet::default();
        let tuples = match varying[..] {
            [i] if types[i] == arrow::datatypes::DataType::Utf8 => {
                for b in batches {
                    let c = utf8(b.column(b.schema_ref().index_of(&columns[i])?))?;
                    keys.extend(c.iter().flatten().map(|v| Box::from(v.as_bytes())));
                }
                let mut sorted: Vec<Box<[u8]>> = keys.iter().cloned().collect();
                sorted.sort_unstable();
                Tuples::Text(i, keys, sorted)
            }
            _ => {
                let converter =
                    RowConverter::new(types.iter().cloned().map(SortField::new).collect())?;
                for b in batches {
                    let cols = key_columns(b)?;
                    let valid = all_valid(&cols, b.num_rows());
                    let rows = converter.convert_columns(&cols)?;
                    for (i, r) in rows.iter().enumerate() {
                        if valid.value(i) {
                            keys.insert(r.as_ref().into());
                        }
                    }
                }
                Tuples::Encoded(converter, keys)
            }
        };
        let empty = match &tuples {
            Tuples::Text(_, k, _) | Tuples::Encoded(_, k) => k.is_empty(),
        };
        Ok((!empty).then_some(Matcher {
            columns: columns.to_vec(),
            types,
            constants,
            tuples,
        }))
    }

    /// The key columns with a constant text value, with that value.
    fn text_constants(&self) -> impl Iterator<Item = (&String, &[u8])> {
        self.columns
            .iter()
            .zip(&self.constants)
            .filter_map(|(name, constant)| {
                constant
                    .as_ref()
                    .and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
                    .filter(|c| c.len() == 1 && c.is_valid(0))
                    .map(|c| (name, c.value(0).as_bytes()))
            })
    }

    /// Whether a Parquet row group may hold a tuple: false only when a
    /// constant text part lies outside the group's min/max statistics.
    fn may_match(&self, group: &parquet::file::metadata::RowGroupMetaData) -> bool {
        use parquet::file::statistics::Statistics;
        for (name, value) in self.text_constants() {
            let Some(chunk) = group
                .columns()
                .iter()
                .find(|c| c.column_path().parts() == [name.as_str()])
            else {
                continue;
            };
            if let Some(Statistics::ByteArray(s)) = chunk.statistics()
                && let (Some(min), Some(max)) = (s.min_bytes_opt(), s.max_bytes_opt())
                && s.min_is_exact()
                && s.max_is_exact()
                && (value < min || value > max)
            {
                return false;
            }
        }
        true
    }

    /// The rows of row group `group` that may hold a tuple, by the page
    /// statistics (the column index) of the key columns: a page may when
    /// its min/max admits the constant text parts and, for a single varying
    /// text part, one of its values. `None` when the file has no page
    /// statistics for them (every row may).
    fn page_selection(&self, meta: &ParquetMetaData, group: usize) -> Option<RowSelection> {
        meta.column_index()?;
        meta.offset_index()?;
        let rows = usize::try_from(meta.row_group(group).num_rows()).ok()?;
        // Per key column with a test: the values a page must admit one of.
        let mut tests: Vec<(&String, Vec<&[u8]>)> = Vec::new();
        for (i, (name, constant)) in self.columns.iter().zip(&self.constants).enumerate() {
            let values: Vec<&[u8]> = match (constant, &self.tuples) {
                (Some(c), _) => match c.as_any().downcast_ref::<arrow::array::StringArray>() {
                    Some(c) if c.len() == 1 && c.is_valid(0) => vec![c.value(0).as_bytes()],
                    _ => continue,
                },
                (None, Tuples::Text(t, _, sorted)) if *t == i => {
                    sorted.iter().map(|v| v.as_ref()).collect()
                }
                (None, _) => continue,
            };
            tests.push((name, values));
        }
        let mut selection: Option<RowSelection> = None;
        for (name, values) in tests {
            let Some((pages, page_rows)) = text_pages(meta, group, name) else {
                continue;
            };
            let mut ranges = Vec::new();
            for (p, span) in page_rows.into_iter().enumerate() {
                let admits = match (pages.min_value(p), pages.max_value(p)) {
                    // Truncated statistics still bound the values.
                    (Some(min), Some(max)) => {
                        let first = values.partition_point(|v| *v < min);
                        values.get(first).is_some_and(|v| *v <= max)
                    }
                    // An all-NULL page holds no tuple; a page without
                    // statistics may hold any.
                    _ => !pages.is_null_page(p),
                };
                if admits {
                    ranges.push(span);
                }
            }
            let here = RowSelection::from_consecutive_ranges(ranges.into_iter(), rows);
            selection = Some(match selection {
                None => here,
                Some(s) => s.intersection(&here),
            });
        }
        selection
    }

    /// The constant text key columns that hold their value on every row of
    /// row group `group` that `selection` reads (all rows when `None`), by
    /// the page statistics: every page those rows are on has that value as
    /// its exact min and max and no NULL. The search need not decode them
    /// (the unified bridge's `peripheral`, one value over long runs). Only
    /// with a single varying text column (the others are then tested by
    /// themselves, see [`Matcher::matches`]).
    fn proven_constants(
        &self,
        meta: &ParquetMetaData,
        group: usize,
        selection: Option<&RowSelection>,
    ) -> Vec<String> {
        if !matches!(self.tuples, Tuples::Text(..)) {
            return vec![];
        }
        let Ok(rows) = usize::try_from(meta.row_group(group).num_rows()) else {
            return vec![];
        };
        let read = selected_runs(selection, 0, rows);
        let mut out = Vec::new();
        for (name, value) in self.text_constants() {
            let Some((pages, page_rows)) = text_pages(meta, group, name) else {
                continue;
            };
            let holds = page_rows.into_iter().enumerate().all(|(p, span)| {
                let is_read = read
                    .iter()
                    .any(|r| r.start < span.end && span.start < r.end);
                !is_read
                    || (pages.min_value(p) == Some(value)
                        && pages.max_value(p) == Some(value)
                        && pages.null_count(p) == Some(0))
            });
            if holds {
                out.push(name.clone());
            }
        }
        out
    }

    /// Which rows of `batch` hold one of the tuples (all false when the
    /// batch lacks a key column).
    /// `assumed`: constant key columns known to hold their value on every
    /// row of `batch` (see [`Matcher::proven_constants`]), not read.
    fn matches(&self, batch: &RecordBatch, assumed: &[String]) -> Result<BooleanArray> {
        let n = batch.num_rows();
        let none = || BooleanArray::from(vec![false; n]);
        let text = match &self.tuples {
            Tuples::Text(i, _, _) => Some(*i),
            Tuples::Encoded(..) => None,
        };
        let mut cols = Vec::with_capacity(self.columns.len());
        for (k, (c, t)) in self.columns.iter().zip(&self.types).enumerate() {
            if assumed.contains(c) {
                cols.push(arrow::array::new_null_array(t, 0));
                continue;
            }
            let Ok(i) = batch.schema_ref().index_of(c) else {
                return Ok(none());
            };
            let column = batch.column(i);
            // The probed text column is read as it was decoded.
            if text == Some(k) && *column.data_type() == DataType::Utf8View {
                cols.push(column.clone());
                continue;
            }
            cols.push(arrow::compute::cast(column, t)?);
        }
        // Constant parts narrow the candidates (NULL compares as no match).
        let mut mask: Option<BooleanArray> = None;
        for ((c, k), name) in cols.iter().zip(&self.constants).zip(&self.columns) {
            if assumed.contains(name) {
                continue;
            }
            if let Some(v) = k {
                let eq =
                    arrow::compute::kernels::cmp::eq(c, &arrow::array::Scalar::new(v.clone()))?;
                mask = Some(match mask {
                    None => eq,
                    Some(m) => arrow::compute::and(&m, &eq)?,
                });
            }
        }
        let (converter, keys) = match &self.tuples {
            Tuples::Encoded(converter, keys) => (converter, keys),
            Tuples::Text(i, values, _) => {
                let strings = TextColumn::of(&cols[*i])?;
                let hit = |r: usize| strings.bytes(r).is_some_and(|b| values.contains(b));
                let out: Vec<bool> = match &mask {
                    None => (0..n).map(hit).collect(),
                    Some(m) => (0..n)
                        .map(|r| m.is_valid(r) && m.value(r) && hit(r))
                        .collect(),
                };
                return Ok(BooleanArray::from(out));
            }
        };
        let candidates: Option<arrow::array::UInt32Array> = match &mask {
            None => None,
            Some(m) => {
                let idx: arrow::array::UInt32Array = m
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| *v == Some(true))
                    .map(|(i, _)| Some(i as u32))
                    .collect();
                if idx.is_empty() {
                    return Ok(none());
                }
                Some(idx)
            }
        };
        let cols = match &candidates {
            None => cols,
            Some(idx) => cols
                .iter()
                .map(|c| arrow::compute::take(c.as_ref(), idx, None))
                .collect::<std::result::Result<Vec<_>, _>>()?,
        };
        let rows_n = cols.first().map(|c| c.len()).unwrap_or(0);
        let valid = all_valid(&cols, rows_n);
        let rows = converter.convert_columns(&cols)?;
        let mut out = vec![false; n];
        for (j, r) in rows.iter().enumerate() {
            if valid.value(j) && keys.contains(r.as_ref()) {
                let at = candidates.as_ref().map_or(j, |idx| idx.value(j) as usize);
                out[at] = true;
            }
        }
        Ok(BooleanArray::from(out))
    }
}

/// Rows where none of `cols` is NULL.
fn all_valid(cols: &[arrow::array::ArrayRef], rows: usize) -> BooleanArray {
    (0..rows)
        .map(|i| Some(cols.iter().all(|c| c.is_valid(i))))
        .collect()
}

/// The matchers of a write: the upsert keys of the new rows, or each of a
/// replace's [`KeyMatch`]es (empty ones dropped).
fn matchers(write: &Write, batches: &[RecordBatch]) -> Result<Vec<Matcher>> {
    let mut out = Vec::new();
    match &write.mode {
        WriteMode::Upsert { keys } => out.extend(Matcher::from_batches(keys, batches)?),
        WriteMode::Replace { matches } => {
            for m in matches {
                let found = match m {
                    KeyMatch::NewRows(keys) => Matcher::from_batches(keys, batches)?,
                    KeyMatch::Values(values) => {
                        Matcher::from_batches(&m.columns(), std::slice::from_ref(values))?
                    }
                };
                out.extend(found);
            }
        }
        WriteMode::Append | WriteMode::Overwrite => {}
    }
    Ok(out)
}

/// The leaf column of top-level column `name` (key columns are primitive).
fn leaf_index(schema: &parquet::schema::types::SchemaDescriptor, name: &str) -> Option<usize> {
    (0..schema.num_columns()).find(|&l| schema.column(l).path().parts() == [name])
}

/// The page statistics of text column `name` in row group `group`, and the
/// rows (within the group) of each of its pages: `None` when the file has
/// no page index for it.
fn text_pages<'a>(
    meta: &'a ParquetMetaData,
    group: usize,
    name: &str,
) -> Option<(
    &'a parquet::file::page_index::column_index::ByteArrayColumnIndex,
    Vec<std::ops::Range<usize>>,
)> {
    use parquet::file::page_index::column_index::ColumnIndexMetaData;
    let leaf = leaf_index(meta.file_metadata().schema_descr(), name)?;
    let rows = usize::try_from(meta.row_group(group).num_rows()).ok()?;
    let ColumnIndexMetaData::BYTE_ARRAY(pages) = meta.column_index()?.get(group)?.get(leaf)? else {
        return None;
    };
    let locations = meta.offset_index()?.get(group)?.get(leaf)?.page_locations();
    let starts = locations
        .iter()
        .map(|l| usize::try_from(l.first_row_index).ok())
        .collect::<Option<Vec<usize>>>()?;
    let ends = starts.iter().skip(1).copied().chain(std::iter::once(rows));
    Some((
        pages,
        starts
            .iter()
            .copied()
            .zip(ends)
            .map(|(a, b)| a..b)
            .collect(),
    ))
}

/// The rows `selection` reads of a row group of `rows` rows (all of them
/// when `None`), as runs in order, numbered from `first`.
fn selected_runs<T>(selection: Option<&RowSelection>, first: T, rows: T) -> Vec<std::ops::Range<T>>
where
    T: Copy + std::ops::Add<Output = T> + TryFrom<usize>,
{
    let Some(s) = selection else {
        return vec![first..first + rows];
    };
    let mut at = first;
    let mut runs = Vec::new();
    for sel in s.iter() {
        let Ok(n) = T::try_from(sel.row_count) else {
            break;
        };
        let end = at + n;
        if !sel.skip {
            runs.push(at..end);
        }
        at = end;
    }
    runs
}

/// Parquet settings of every file we write (data and position deletes).
///
/// LZ4 (the raw block format, `LZ4_RAW`) rather than zstd: an `elt` run
/// decodes key columns of large tables to find the rows it replaces and
/// restricts, and zstd decompression was about a tenth of its CPU; LZ4
/// decompresses several times faster and compresses faster too (`init`),
/// for files about half as large again.
///
/// A sorted table ([`Write::sort_by`]) is written in pages of at most
/// [`SORTED_PAGE_ROWS`] rows, each with min/max statistics (the column
/// index), so that a search for keys reads only the pages that may hold one.
fn writer_properties(sorted: bool) -> Result<WriterProperties> {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        // Row groups small enough for min/max pruning of merge-on-read key lookups.
        .set_max_row_group_row_count(Some(128 * 1024));
    if sorted {
        b = b.set_data_page_row_count_limit(SORTED_PAGE_ROWS);
    }
    Ok(b.build())
}

/// Fewest new rows per data file written in parallel (see
/// [`Warehouse::write`]): below that, a second file costs more (its own
/// footer, manifest entry and reads) than encoding on one core. A cascade
/// day's event and unified bridges (~55,000 and ~62,000 new rows at scale
/// 1, last in the run, while the other core has little left to do) are
/// written as two files each: `elt` -3.6 % against 32,768 rows.
const PARALLEL_WRITE_ROWS: usize = 24 * 1024;

/// `batches` as `k` runs of (nearly) equal row counts, in order (batches
/// are sliced where a run ends inside one; empty runs are left out).
fn balanced_parts(batches: &[RecordBatch], k: usize) -> Vec<Vec<RecordBatch>> {
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let k = k.max(1);
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); k];
    let mut at = 0usize;
    for b in batches {
        let mut offset = 0;
        while offset < b.num_rows() {
            // Run of row `at`; it ends where the next run starts.
            let run = (at * k / total.max(1)).min(k - 1);
            let end = ((run + 1) * total).div_ceil(k);
            let n = (end - at).min(b.num_rows() - offset).max(1);
            parts[run].push(b.slice(offset, n));
            offset += n;
            at += n;
        }
    }
    parts.retain(|p| !p.is_empty());
    parts
}

/// Rows per data page of a sorted table (see [`writer_properties`]): the
/// unit a replace's search skips or decodes.
const SORTED_PAGE_ROWS: usize = 1024;

/// `batches` (of `schema`) as batches sorted by `columns` (ascending, NULLs
/// first), stable.
fn sorted(
    schema: &ArrowSchemaRef,
    batches: &[RecordBatch],
    columns: &[String],
) -> Result<Vec<RecordBatch>> {
    let fields = columns
        .iter()
        .map(|c| {
            Ok(SortField::new(
                schema.field_with_name(c)?.data_type().clone(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let converter = RowConverter::new(fields)?;
    let mut rows = converter.empty_rows(0, 0);
    let mut at: Vec<(usize, usize)> = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        let cols = columns
            .iter()
            .map(|c| Ok(b.column(b.schema_ref().index_of(c)?).clone()))
            .collect::<Result<Vec<_>>>()?;
        converter.append(&mut rows, &cols)?;
        at.extend((0..b.num_rows()).map(|r| (i, r)));
    }
    // Rows often arrive in order already (an event bridge's come from its
    // bridge's sorted rows, each repeated per event in place): then copying
    // every column into new arrays would only cost time.
    if (1..at.len()).all(|i| rows.row(i - 1) <= rows.row(i)) {
        return Ok(batches.to_vec());
    }
    let mut order: Vec<usize> = (0..at.len()).collect();
    order.sort_by(|&a, &b| rows.row(a).cmp(&rows.row(b)));
    let mut out = Vec::new();
    for chunk in order.chunks(8192) {
        let picks: Vec<(usize, usize)> = chunk.iter().map(|&i| at[i]).collect();
        let columns = (0..schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> =
                    batches.iter().map(|b| b.column(c).as_ref()).collect();
                Ok(arrow::compute::interleave(&arrays, &picks)?)
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(RecordBatch::try_new(Arc::clone(schema), columns)?);
    }
    Ok(out)
}

/// Write conformed batches as Parquet data files of `table`.
async fn write_data_files(
    table: &Table,
    schema: &Schema,
    batches: &[RecordBatch],
    commit_id: Uuid,
    tag: &str,
    sorted: bool,
) -> Result<Vec<DataFile>> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(vec![]);
    }
    let props = writer_properties(sorted)?;
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

/// Running totals of a snapshot's live files (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
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
    fn count(&mut self, f: &DataFile, sign: i64) {
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

#[allow(clippy::too_many_arguments)]
async fn stage_snapshot(
    wh: &Warehouse,
    table: &LoadedTable,
    schema: &Schema,
    added: Vec<DataFile>,
    matchers: &[Matcher],
    replaced: Option<&HashMap<String, Vec<i64>>>,
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
    let mut totals = match write.mode {
        WriteMode::Overwrite => Totals::default(),
        _ => Totals::of(
            base.current_snapshot()
                .map(|s| &s.summary().additional_properties),
        ),
    };
    let mut removed_rows = 0u64;
    // Position deletes dropped by an overwrite (they hid removed rows).
    let mut removed_deletes = 0u64;
    let mut rewritten: Vec<DataFile> = Vec::new();
    let mut rewritten_rows = 0u64;
    let mut position_deletes: Vec<(String, Vec<i64>)> = Vec::new();
    // Base manifests an append or replace keeps (merged below).
    let mut carried: Vec<ManifestFile> = Vec::new();

    if let Some(current) = base.current_snapshot() {
        let list = t.manifest_list_reader(current).load().await?;
        let entries = list.entries();
        if matches!(write.mode, WriteMode::Upsert { .. })
            && let Some(d) = entries.iter().find(|mf| {
                mf.content == ManifestContentType::Deletes
                    && (mf.has_added_files() || mf.has_existing_files())
            })
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "copy-on-write upsert: the table has position deletes ({}); use a replace (merge-on-read) or an overwrite",
                    d.manifest_path
                ),
            ));
        }
        // Replace: positions already deleted, per data file.
        let mut deleted: HashMap<String, HashSet<i64>> = HashMap::new();
        if matches!(write.mode, WriteMode::Replace { .. }) && !matchers.is_empty() {
            for mf in entries
                .iter()
                .filter(|mf| mf.content == ManifestContentType::Deletes)
            {
                for e in live_entries(wh, mf).await? {
                    read_position_deletes(wh, e.data_file(), &mut deleted).await?;
                }
            }
        }
        for mf in entries {
            match &write.mode {
                WriteMode::Append => carried.push(mf.clone()),
                WriteMode::Overwrite => {
                    let live = live_entries(wh, mf).await?;
                    if live.is_empty() {
                        continue;
                    }
                    let mut w = new_writer(next_manifest_path(), mf.content)?;
                    for e in live {
                        match e.content_type() {
                            DataContentType::Data => removed_rows += e.record_count(),
                            _ => removed_deletes += e.record_count(),
                        }
                        mark_deleted(&mut w, &mut summary, &e, schema, base)?;
                    }
                    manifests.push(w.write_manifest_file().await?);
                }
                WriteMode::Replace { .. } => {
                    carried.push(mf.clone());
                    if mf.content != ManifestContentType::Data || matchers.is_empty() {
                        continue;
                    }
                    for e in live_entries(wh, mf).await? {
                        let path = e.data_file().file_path();
                        let hits = replaced.and_then(|r| r.get(path)).ok_or_else(|| {
                            Error::internal(format!("matches of {path} were not searched"))
                        })?;
                        let already = deleted.get(path);
                        let fresh: Vec<i64> = hits
                            .iter()
                            .copied()
                            .filter(|p| already.is_none_or(|d| !d.contains(p)))
                            .collect();
                        if !fresh.is_empty() {
                            removed_rows += fresh.len() as u64;
                            position_deletes.push((path.to_string(), fresh));
                        }
                    }
                }
                WriteMode::Upsert { .. } => {
                    if mf.content != ManifestContentType::Data {
                        manifests.push(mf.clone());
                        continue;
                    }
                    let live = live_entries(wh, mf).await?;
                    let mut affected = Vec::new();
                    let mut kept = Vec::new();
                    for e in live {
                        match rows_without_keys(wh, e.data_file(), schema, matchers.first()).await?
                        {
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
                        totals.count(e.data_file(), -1);
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
                                    // A subset of a file keeps its order.
                                    !write.sort_by.is_empty(),
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

    let removed_rows = removed_rows.saturating_sub(removed_deletes);
    let all_added: Vec<DataFile> = added.into_iter().chain(rewritten).collect();
    for f in &all_added {
        summary.add_file(
            f,
            Arc::new(schema.clone()),
            base.default_partition_spec().clone(),
        );
        totals.count(f, 1);
    }
    let mut added_deletes = Vec::new();
    if !position_deletes.is_empty() {
        let f = write_position_deletes(
            wh,
            base,
            position_deletes,
            &format!("{commit_id}-a{attempt}"),
        )
        .await?;
        summary.add_file(
            &f,
            Arc::new(schema.clone()),
            base.default_partition_spec().clone(),
        );
        totals.count(&f, 1);
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
        let mut w = new_writer(next_manifest_path(), content)?;
        for f in added {
            w.add_file(f, -1)?;
        }
        match merged {
            Some(existing) => {
                for e in existing {
                    let snapshot = e.snapshot_id.ok_or_else(|| {
                        Error::new(
                            ErrorKind::Corrupt,
                            format!("manifest entry {} has no snapshot id", e.file_path()),
                        )
                    })?;
                    w.add_existing_file(
                        e.data_file.clone(),
                        snapshot,
                        seq_of(&e)?,
                        e.file_sequence_number,
                    )?;
                }
            }
            None => manifests.extend(kept),
        }
        manifests.insert(0, w.write_manifest_file().await?);
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
    props.insert("total-records".into(), totals.records.to_string());
    props.insert("total-data-files".into(), totals.data_files.to_string());
    props.insert("total-files-size".into(), totals.bytes.to_string());
    props.insert("total-delete-files".into(), totals.delete_files.to_string());
    props.insert(
        "total-position-deletes".into(),
        totals.position_deletes.to_string(),
    );
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

/// The live (added or existing) entries of manifest `mf`, parsed once per
/// process ([`super::cache::FileCache`]).
async fn live_entries(wh: &Warehouse, mf: &ManifestFile) -> Result<Vec<ManifestEntryRef>> {
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
async fn merge_manifests(
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

/// The bytes of a Parquet file of the table.
async fn read_parquet_bytes(wh: &Warehouse, file: &DataFile) -> Result<bytes::Bytes> {
    if file.file_format() != DataFileFormat::Parquet {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("file {} is not Parquet", file.file_path()),
        ));
    }
    let path = wh.url().location_to_path(file.file_path())?;
    let cannot = |e: object_store::Error| {
        Error::from(e).context(format!("cannot read file {}", file.file_path()))
    };
    wh.store()
        .get(&path)
        .await
        .map_err(cannot)?
        .bytes()
        .await
        .map_err(cannot)
}

/// Decode a Parquet file, only the top-level `columns` when given.
fn decode_parquet(
    bytes: bytes::Bytes,
    columns: Option<&[String]>,
    location: &str,
) -> Result<Vec<RecordBatch>> {
    let corrupt = || format!("file {location} is not valid Parquet");
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).ctx(ErrorKind::Corrupt, corrupt)?;
    let builder = match columns {
        None => builder,
        Some(columns) => {
            let roots = root_indices(builder.parquet_schema(), columns);
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
            builder.with_projection(mask)
        }
    };
    let reader = builder.build().ctx(ErrorKind::Corrupt, corrupt)?;
    reader
        .map(|b| {
            b.ctx(ErrorKind::Corrupt, || {
                format!("cannot decode file {location}")
            })
        })
        .collect()
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

/// For replace: per live data file of the table's current snapshot, the
/// positions of its rows that any matcher holds (deleted or not).
///
/// Runs on a thread of the blocking pool. Of each file only what the search
/// decodes is read, through `handle`, a few files at a time (object store
/// latency): its footer (with the page index), then the key column chunks
/// of the row groups some matcher may match (see [`SearchPlan`]). A file
/// of the unified bridge holds ~165 columns of which a search decodes two.
/// The files are then searched one after the other (CPU work, spread over
/// the cores within a file, see [`matching_positions`]).
fn replaced_positions(
    handle: &tokio::runtime::Handle,
    wh: &Warehouse,
    table: &LoadedTable,
    schema: &Schema,
    matchers: Arc<Vec<Matcher>>,
) -> Result<HashMap<String, Vec<i64>>> {
    use futures::{StreamExt, TryStreamExt};
    let base = table.metadata();
    let Some(current) = base.current_snapshot() else {
        return Ok(HashMap::new());
    };
    let plans = handle.block_on(async {
        let list = table.table.manifest_list_reader(current).load().await?;
        let mut files: Vec<DataFile> = Vec::new();
        for mf in list
            .entries()
            .iter()
            .filter(|mf| mf.content == ManifestContentType::Data)
        {
            files.extend(
                live_entries(wh, mf)
                    .await?
                    .iter()
                    .map(|e| e.data_file().clone()),
            );
        }
        futures::stream::iter(files)
            .map(|f| SearchPlan::fetch(wh, f, &matchers))
            .buffered(8)
            .try_collect::<Vec<_>>()
            .await
    })?;
    let target = Arc::new(arrow_schema(schema)?);
    plans
        .into_iter()
        .map(|plan| {
            let path = plan.location.clone();
            let hits = matching_positions(handle, plan, &target, &matchers)?;
            Ok((path, hits))
        })
        .collect()
}

/// What a replace's search reads of one data file: its footer, the row
/// groups some matcher may match (group, position of its first row,
/// indices of those matchers) and, of those groups, the column chunks of
/// the matchers' key columns.
///
/// A row group is skipped when no matcher may match it: a matcher whose
/// constant text part lies outside the group's min/max statistics (data
/// clustered on such a column, like the unified bridge on `peripheral`, is
/// then mostly never read).
struct SearchPlan {
    location: String,
    meta: parquet::arrow::arrow_reader::ArrowReaderMetadata,
    groups: Vec<(usize, i64, Vec<usize>)>,
    chunks: FetchedRanges,
}

impl SearchPlan {
    async fn fetch(wh: &Warehouse, file: DataFile, matchers: &[Matcher]) -> Result<Self> {
        use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
        use parquet::arrow::async_reader::ParquetObjectReader;
        let location = file.file_path().to_string();
        if file.file_format() != DataFileFormat::Parquet {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("file {location} is not Parquet"),
            ));
        }
        let path = wh.url().location_to_path(&location)?;
        let size = file.file_size_in_bytes();
        let mut reader = ParquetObjectReader::new(Arc::clone(wh.store()), path.clone())
            .with_file_size(size)
            .with_footer_size_hint(FOOTER_HINT_BYTES);
        // With the page index (when the file has one): see `Matcher::page_selection`.
        let options = ArrowReaderOptions::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load_async(&mut reader, options)
            .await
            .ctx(ErrorKind::Corrupt, || {
                format!("cannot read the footer of Parquet file {location}")
            })?;
        // Text decoded as views into the decoded pages (or dictionary)
        // instead of each value being copied into one buffer: that copy was
        // about a third of a search's decoding (the searched PIT hooks are
        // 60–200 bytes each).
        let meta = iceberg::arrow::text_as_views(meta).ctx(ErrorKind::Corrupt, || {
            format!("cannot read the text columns of Parquet file {location} as views")
        })?;
        let metadata = meta.metadata();
        let leaves = metadata.file_metadata().schema_descr();
        let mut groups = Vec::new();
        let mut ranges: Vec<std::ops::Range<u64>> = Vec::new();
        let mut offset = 0i64;
        for (index, group) in metadata.row_groups().iter().enumerate() {
            let active: Vec<usize> = (0..matchers.len())
                .filter(|&m| matchers[m].may_match(group))
                .collect();
            for m in &active {
                for name in &matchers[*m].columns {
                    // A file written before the column was added has none:
                    // it reads as NULL there, which matches no key.
                    let Some(leaf) = leaf_index(leaves, name) else {
                        continue;
                    };
                    let (start, length) = group.column(leaf).byte_range();
                    ranges.push(start..start + length);
                }
            }
            if !active.is_empty() {
                groups.push((index, offset, active));
            }
            offset += group.num_rows();
        }
        ranges.sort_by_key(|r| r.start);
        let mut merged: Vec<std::ops::Range<u64>> = Vec::new();
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        let bytes = match merged.is_empty() {
            true => vec![],
            false => wh
                .store()
                .get_ranges(&path, &merged)
                .await
                .map_err(|e| Error::from(e).context(format!("cannot read file {location}")))?,
        };
        Ok(SearchPlan {
            location,
            meta,
            groups,
            chunks: FetchedRanges {
                len: size,
                parts: Arc::new(merged.into_iter().map(|r| r.start).zip(bytes).collect()),
            },
        })
    }
}

/// `field`, typed `Utf8View` if it is `Utf8`.
fn view_field(field: &arrow::datatypes::FieldRef) -> arrow::datatypes::FieldRef {
    match field.data_type() {
        DataType::Utf8 => Arc::new(field.as_ref().clone().with_data_type(DataType::Utf8View)),
        _ => Arc::clone(field),
    }
}

/// Bytes read at once from the end of a Parquet file for its footer: the
/// page index our writer puts just before it usually comes in the same read.
const FOOTER_HINT_BYTES: usize = 256 * 1024;

/// The byte ranges of a Parquet file a [`SearchPlan`] fetched (disjoint,
/// by offset), read as the file by Parquet's synchronous reader. A read
/// outside them is an error (the plan fetches every column chunk the search
/// decodes).
#[derive(Clone)]
struct FetchedRanges {
    len: u64,
    parts: Arc<Vec<(u64, bytes::Bytes)>>,
}

impl FetchedRanges {
    /// The fetched bytes from `start`: `length` of them, or to the end of
    /// the range holding `start`.
    fn slice(&self, start: u64, length: Option<usize>) -> parquet::errors::Result<bytes::Bytes> {
        let i = self.parts.partition_point(|(s, _)| *s <= start);
        if let Some((s, b)) = i.checked_sub(1).and_then(|i| self.parts.get(i)) {
            let from = usize::try_from(start - s).unwrap_or(usize::MAX);
            let to = length.map_or(Some(b.len()), |l| from.checked_add(l));
            if let Some(to) = to.filter(|&to| from <= to && to <= b.len()) {
                return Ok(b.slice(from..to));
            }
        }
        Err(parquet::errors::ParquetError::General(format!(
            "bytes {start}..{} of the file were not read for the search",
            length.map_or("".to_string(), |l| (start + l as u64).to_string())
        )))
    }
}

impl parquet::file::reader::Length for FetchedRanges {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for FetchedRanges {
    type T = bytes::buf::Reader<bytes::Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        self.slice(start, Some(length))
    }
}

/// For replace: the positions (0-based, in file order) of the rows of the
/// file `plan` read that any matcher holds. Row groups are read one at a
/// time, each with only the key columns of the matchers that may match
/// there (see [`SearchPlan`]). Within a row group only the pages some
/// matcher may match by the page index are decoded (see
/// [`Matcher::page_selection`]; a table written sorted by its key,
/// [`Write::sort_by`], has narrow pages).
///
/// Decoding and hashing key columns is CPU work and row groups are
/// independent: contiguous runs of them are searched on this thread and on
/// other threads of `handle`'s blocking pool (one run per core), which are
/// kept and reused, rather than on threads created and torn down per file.
fn matching_positions(
    handle: &tokio::runtime::Handle,
    plan: SearchPlan,
    target: &ArrowSchemaRef,
    matchers: &Arc<Vec<Matcher>>,
) -> Result<Vec<i64>> {
    let SearchPlan {
        location,
        meta,
        groups,
        chunks,
    } = plan;
    let search = GroupSearch {
        chunks,
        meta,
        location: location.clone(),
        target: Arc::clone(target),
        matchers: Arc::clone(matchers),
    };
    // Read once per process (std's call reads cgroup files each time, and
    // this runs per commit).
    let threads = datafusion::common::utils::get_available_parallelism().min(groups.len());
    if threads <= 1 {
        return search.runs(&groups);
    }
    let per = groups.len().div_ceil(threads);
    let mut parts: Vec<Vec<(usize, i64, Vec<usize>)>> = Vec::new();
    let mut rest = groups;
    while rest.len() > per {
        let tail = rest.split_off(per);
        parts.push(rest);
        rest = tail;
    }
    let others: Vec<_> = parts
        .into_iter()
        .map(|part| {
            let search = search.clone();
            handle.spawn_blocking(move || search.runs(&part))
        })
        .collect();
    // The last run is searched here; the others meanwhile on pool threads.
    let out = search.runs(&rest)?;
    let mut earlier = Vec::new();
    for task in others {
        let part = handle
            .block_on(task)
            .map_err(|_| Error::internal(format!("matching keys in {location} panicked")))??;
        earlier.extend(part);
    }
    earlier.extend(out);
    Ok(earlier)
}

/// One Parquet file's replace search, shareable across threads (see
/// [`matching_positions`]).
#[derive(Clone)]
struct GroupSearch {
    chunks: FetchedRanges,
    meta: parquet::arrow::arrow_reader::ArrowReaderMetadata,
    location: String,
    target: ArrowSchemaRef,
    matchers: Arc<Vec<Matcher>>,
}

impl GroupSearch {
    /// The positions matched in `groups`, in order.
    fn runs(&self, groups: &[(usize, i64, Vec<usize>)]) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        for (index, offset, active) in groups {
            self.one_group(*index, *offset, active, &mut out)?;
        }
        Ok(out)
    }

    /// Append the positions matched in row group `index` (whose first row is
    /// at `offset`) by the `active` matchers, in order.
    ///
    /// Each matcher reads its own key columns in the rows its page
    /// statistics admit. Matchers of a clustered table (the unified bridge:
    /// one per peripheral, each keyed on its own PIT column) admit disjoint
    /// row ranges, so reading each apart decodes far less than one read of
    /// every active matcher's columns over the union of their rows (a row
    /// group holding many small peripherals decoded 20-odd columns of all
    /// its rows that way). When the union read decodes fewer values (the
    /// matchers share their rows), it is taken instead.
    fn one_group(
        &self,
        index: usize,
        offset: i64,
        active: &[usize],
        out: &mut Vec<i64>,
    ) -> Result<()> {
        let group_rows = self.meta.metadata().row_group(index).num_rows();
        // One read per matcher, without its proven constants.
        let reads: Vec<Read> = active
            .iter()
            .map(|&m| {
                let selection = self.matchers[m].page_selection(self.meta.metadata(), index);
                let read = Read::new(
                    vec![m],
                    self.matchers[m].columns.clone(),
                    selection,
                    group_rows,
                );
                self.assuming(index, read)
            })
            .collect();
        if let [read] = reads.as_slice() {
            return self.read_matches(index, offset, read, out);
        }
        let cost = |r: &Read| r.rows as u128 * r.columns.len() as u128;
        let apart: u128 = reads.iter().map(cost).sum();
        let union = reads
            .iter()
            .cloned()
            .reduce(|a, b| a.union(b, group_rows))
            .ok_or_else(|| Error::internal("a row group searched without a matcher"))?;
        if cost(&union) < apart {
            return self.read_matches(index, offset, &union, out);
        }
        let mut found = Vec::new();
        for read in &reads {
            self.read_matches(index, offset, read, &mut found)?;
        }
        found.sort_unstable();
        found.dedup();
        out.extend(found);
        Ok(())
    }

    /// `read` without the key columns proven constant on the rows it reads
    /// (see [`Matcher::proven_constants`]), when it serves one matcher.
    fn assuming(&self, index: usize, mut read: Read) -> Read {
        if let [m] = read.matchers[..] {
            read.assumed = self.matchers[m].proven_constants(
                self.meta.metadata(),
                index,
                read.selection.as_ref(),
            );
            read.columns.retain(|c| !read.assumed.contains(c));
        }
        read
    }

    /// Append the positions in row group `index` (first row at `offset`)
    /// that `read`'s matchers hold, among the rows it selects, in order.
    fn read_matches(
        &self,
        index: usize,
        offset: i64,
        read: &Read,
        out: &mut Vec<i64>,
    ) -> Result<()> {
        let location = &self.location;
        let wanted = Arc::new(arrow::datatypes::Schema::new(
            self.target
                .fields()
                .iter()
                .filter(|f| read.columns.contains(f.name()))
                .map(view_field)
                .collect::<Vec<_>>(),
        ));
        // The file positions of the rows read, as runs in order.
        let group_rows = self.meta.metadata().row_group(index).num_rows();
        let runs = selected_runs(read.selection.as_ref(), offset, group_rows);
        if runs.is_empty() {
            return Ok(());
        }
        let mut positions = runs.into_iter().flatten();
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.chunks.clone(),
            self.meta.clone(),
        )
        .with_row_groups(vec![index]);
        let roots = root_indices(builder.parquet_schema(), &read.columns);
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        if let Some(s) = &read.selection {
            builder = builder.with_row_selection(s.clone());
        }
        let reader = builder
            .with_projection(mask)
            .build()
            .ctx(ErrorKind::Corrupt, || {
                format!("file {location} is not valid Parquet")
            })?;
        for batch in reader {
            let batch = batch.ctx(ErrorKind::Corrupt, || {
                format!("cannot decode file {location}")
            })?;
            let batch = project_by_name(&batch, &wanted)?;
            let mut hit = BooleanArray::from(vec![false; batch.num_rows()]);
            for &m in &read.matchers {
                hit = arrow::compute::or(&hit, &self.matchers[m].matches(&batch, &read.assumed)?)?;
            }
            for h in hit.iter() {
                let at = positions.next().ok_or_else(|| {
                    Error::internal(format!("{location}: more rows read than selected"))
                })?;
                if h == Some(true) {
                    out.push(at);
                }
            }
        }
        Ok(())
    }
}

/// One decode of a row group in a replace's search: the matchers tested,
/// the key columns they need, and the rows read (`None`: all of them;
/// `rows` counts them).
#[derive(Clone)]
struct Read {
    matchers: Vec<usize>,
    columns: Vec<String>,
    /// Key columns not read: their constant holds on every row read.
    assumed: Vec<String>,
    selection: Option<RowSelection>,
    rows: usize,
}

impl Read {
    fn new(
        matchers: Vec<usize>,
        mut columns: Vec<String>,
        selection: Option<RowSelection>,
        group_rows: i64,
    ) -> Self {
        columns.sort();
        columns.dedup();
        let rows = match &selection {
            Some(s) => s.row_count(),
            None => usize::try_from(group_rows).unwrap_or(usize::MAX),
        };
        Read {
            matchers,
            columns,
            assumed: Vec::new(),
            selection,
            rows,
        }
    }

    /// One read serving both: their columns (assumed ones too) over the
    /// rows either selects.
    fn union(mut self, other: Read, group_rows: i64) -> Self {
        let selection = match (self.selection, other.selection) {
            (Some(a), Some(b)) => Some(a.union(&b)),
            _ => None,
        };
        self.matchers.extend(other.matchers);
        self.columns.extend(self.assumed);
        self.columns.extend(other.columns);
        self.columns.extend(other.assumed);
        Read::new(self.matchers, self.columns, selection, group_rows)
    }
}

/// Indices of the top-level Parquet fields named in `columns`.
fn root_indices(
    schema: &parquet::schema::types::SchemaDescriptor,
    columns: &[String],
) -> Vec<usize> {
    schema
        .root_schema()
        .get_fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| columns.iter().any(|c| c == f.name()))
        .map(|(i, _)| i)
        .collect()
}

/// Field ids and names of position delete files (Iceberg spec).
const DELETE_FILE_PATH: (&str, i32) = ("file_path", 2_147_483_546);
const DELETE_POS: (&str, i32) = ("pos", 2_147_483_545);

fn position_delete_schema() -> ArrowSchemaRef {
    use arrow::datatypes::{DataType, Field};
    let field = |(name, id): (&str, i32), t: DataType| {
        Field::new(name, t, false).with_metadata(HashMap::from([(
            parquet::arrow::PARQUET_FIELD_ID_META_KEY.to_string(),
            id.to_string(),
        )]))
    };
    Arc::new(arrow::datatypes::Schema::new(vec![
        field(DELETE_FILE_PATH, DataType::Utf8),
        field(DELETE_POS, DataType::Int64),
    ]))
}

/// Add the positions of a live position delete file to `deleted`.
async fn read_position_deletes(
    wh: &Warehouse,
    file: &DataFile,
    deleted: &mut HashMap<String, HashSet<i64>>,
) -> Result<()> {
    if file.content_type() != DataContentType::PositionDeletes {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} is an equality delete file; only position deletes are supported",
                file.file_path()
            ),
        ));
    }
    let bytes = read_parquet_bytes(wh, file).await?;
    for b in decode_parquet(bytes, None, file.file_path())? {
        let bad = || {
            Error::new(
                ErrorKind::Corrupt,
                format!(
                    "position delete file {} lacks string file_path / long pos columns",
                    file.file_path()
                ),
            )
        };
        let paths = b
            .column_by_name(DELETE_FILE_PATH.0)
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
            .ok_or_else(bad)?;
        let pos = b
            .column_by_name(DELETE_POS.0)
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int64Array>())
            .ok_or_else(bad)?;
        for (p, n) in paths.iter().zip(pos.iter()) {
            if let (Some(p), Some(n)) = (p, n) {
                deleted.entry(p.to_string()).or_default().insert(n);
            }
        }
    }
    Ok(())
}

/// Write one position delete file for `deletes` (data file, positions) and
/// describe it as a `DataFile` of content `PositionDeletes`.
async fn write_position_deletes(
    wh: &Warehouse,
    base: &TableMetadata,
    mut deletes: Vec<(String, Vec<i64>)>,
    tag: &str,
) -> Result<DataFile> {
    deletes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut paths = Vec::new();
    let mut positions = Vec::new();
    for (p, mut pos) in deletes.iter().cloned() {
        pos.sort_unstable();
        for n in pos {
            paths.push(p.clone());
            positions.push(n);
        }
    }
    let rows = positions.len() as u64;
    let schema = position_delete_schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(arrow::array::StringArray::from(paths)),
            Arc::new(arrow::array::Int64Array::from(positions)),
        ],
    )?;
    let props = writer_properties(false)?;
    let mut buf = Vec::new();
    let encode = |e: parquet::errors::ParquetError| {
        Error::internal(format!("cannot encode a position delete file: {e}"))
    };
    {
        let mut w =
            parquet::arrow::ArrowWriter::try_new(&mut buf, schema, Some(props)).map_err(encode)?;
        w.write(&batch).map_err(encode)?;
        w.close().map_err(encode)?;
    }
    let size = buf.len() as u64;
    let location = format!("{}/data/{tag}-deletes.parquet", base.location());
    let path = wh.url().location_to_path(&location)?;
    wh.store()
        .put(&path, PutPayload::from(buf))
        .await
        .map_err(|e| Error::from(e).context(format!("cannot write {location}")))?;
    let mut b = DataFileBuilder::default();
    b.content(DataContentType::PositionDeletes)
        .file_path(location)
        .file_format(DataFileFormat::Parquet)
        .record_count(rows)
        .file_size_in_bytes(size)
        .partition_spec_id(base.default_partition_spec_id());
    if let [(only, _)] = deletes.as_slice() {
        b.referenced_data_file(Some(only.clone()));
    }
    b.build()
        .map_err(|e| Error::internal(format!("position delete file entry: {e}")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(schema: &ArrowSchemaRef, keys: Vec<Option<&str>>, values: Vec<i64>) -> RecordBatch {
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(Int64Array::from(values)),
            ],
        )
        .expect("valid batch")
    }

    /// A file's text columns read through `iceberg::arrow::text_as_views` come out as
    /// `Utf8View` with the same values (plain and dictionary pages, NULLs
    /// kept), and the matcher's text probe finds the same rows in them.
    #[test]
    fn text_columns_decode_as_views_and_match_alike() {
        use parquet::arrow::ArrowWriter;
        use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
        let schema: ArrowSchemaRef = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, false),
        ]));
        let long =
            |i: usize| format!("order_line__sales__adventure_works|{i}~epoch__valid_from|1970");
        let keys: Vec<String> = (0..3000).map(|i| long(i % 700)).collect();
        let mut key_refs: Vec<Option<&str>> = keys.iter().map(|k| Some(k.as_str())).collect();
        key_refs[5] = None;
        let input = batch(&schema, key_refs.clone(), (0..3000).collect());
        for dictionary in [true, false] {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_dictionary_enabled(dictionary)
                .build();
            let mut bytes = Vec::new();
            let mut w = ArrowWriter::try_new(&mut bytes, Arc::clone(&schema), Some(props)).unwrap();
            w.write(&input).unwrap();
            w.close().unwrap();
            let bytes = bytes::Bytes::from(bytes);
            let meta = ArrowReaderMetadata::load(&bytes, Default::default()).unwrap();
            let views = iceberg::arrow::text_as_views(meta).unwrap();
            assert_eq!(views.schema().field(0).data_type(), &DataType::Utf8View);
            assert_eq!(views.schema().field(1).data_type(), &DataType::Int64);
            let read: Vec<RecordBatch> =
                ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, views)
                    .build()
                    .unwrap()
                    .map(|b| b.unwrap())
                    .collect();
            let plain: Vec<RecordBatch> = read
                .iter()
                .map(|b| project_by_name(b, &schema).unwrap())
                .collect();
            assert_eq!(
                keys_and_values(&plain),
                keys_and_values(std::slice::from_ref(&input))
            );
            let wanted = [long(3), long(699), "absent".to_string()];
            let m = Matcher::from_batches(
                &["k".to_string()],
                &[batch(
                    &schema,
                    wanted.iter().map(|k| Some(k.as_str())).collect(),
                    vec![0, 0, 0],
                )],
            )
            .unwrap()
            .unwrap();
            let on_views: Vec<bool> = read
                .iter()
                .flat_map(|b| m.matches(b, &[]).unwrap().iter().collect::<Vec<_>>())
                .map(|h| h == Some(true))
                .collect();
            let on_plain = m.matches(&input, &[]).unwrap();
            assert_eq!(on_views.len(), 3000);
            assert_eq!(
                on_views,
                on_plain.iter().map(|h| h == Some(true)).collect::<Vec<_>>()
            );
            // Key 3 is on rows 3, 703, ..., 2803 (five), key 699 on four rows.
            assert_eq!(on_views.iter().filter(|h| **h).count(), 9);
        }
    }

    fn keys_and_values(batches: &[RecordBatch]) -> Vec<(Option<String>, i64)> {
        let mut out = Vec::new();
        for b in batches {
            let k = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            let v = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            for i in 0..b.num_rows() {
                out.push((k.is_valid(i).then(|| k.value(i).to_string()), v.value(i)));
            }
        }
        out
    }

    fn schema() -> ArrowSchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, false),
        ]))
    }

    #[test]
    fn sorted_orders_rows_across_batches_stably_nulls_first() {
        let schema = schema();
        let input = [
            batch(&schema, vec![Some("b"), Some("a"), None], vec![1, 2, 3]),
            batch(&schema, vec![Some("a"), Some("c")], vec![4, 5]),
        ];
        let out = sorted(&schema, &input, &["k".to_string()]).expect("sorted");
        assert_eq!(
            keys_and_values(&out),
            vec![
                (None, 3),
                (Some("a".into()), 2),
                (Some("a".into()), 4),
                (Some("b".into()), 1),
                (Some("c".into()), 5),
            ]
        );
    }

    #[test]
    fn sorted_returns_rows_already_in_order_without_copying() {
        let schema = schema();
        // In order across the batch boundary too (ties included).
        let input = [
            batch(&schema, vec![None, Some("a"), Some("a")], vec![1, 2, 3]),
            batch(&schema, vec![Some("a"), Some("b")], vec![4, 5]),
        ];
        let out = sorted(&schema, &input, &["k".to_string()]).expect("sorted");
        assert_eq!(out.len(), 2);
        for (o, i) in out.iter().zip(&input) {
            assert!(Arc::ptr_eq(o.column(0), i.column(0)), "keys were copied");
            assert!(Arc::ptr_eq(o.column(1), i.column(1)), "values were copied");
        }
        // One row out of order at the boundary: sorted anew.
        let input = [
            batch(&schema, vec![Some("a"), Some("c")], vec![1, 2]),
            batch(&schema, vec![Some("b")], vec![3]),
        ];
        let out = sorted(&schema, &input, &["k".to_string()]).expect("sorted");
        assert_eq!(
            keys_and_values(&out),
            vec![
                (Some("a".into()), 1),
                (Some("b".into()), 3),
                (Some("c".into()), 2)
            ]
        );
    }
}
