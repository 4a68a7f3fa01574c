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
//!    - **compact**: chosen base data files (and, when asked, every
//!      position delete file) are marked deleted and their live rows added
//!      again, with one merged position delete file for the files kept: an
//!      Iceberg `replace` snapshot that changes no live row and carries the
//!      base snapshot's `lakehouse.*` properties (see [`crate::storage::upkeep`]).
//!
//!    An append or replace merges the base manifests it keeps into its new
//!    manifest of the same content (data, deletes), as EXISTING entries
//!    with their sequence numbers, so a table has at most one manifest of
//!    each content however many commits it has seen ([`producer::merge_manifests`]).
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
//!
//! The modules, from the request down:
//! - `request`: the write request ([`Write`]) and its outcome;
//! - this module: [`Warehouse::write`] and [`Warehouse::write_stream`], the
//!   attempt and retry loop, and staging one attempt's snapshot;
//! - `new_rows`: the new rows' target schema, order and parallel runs;
//! - `producer`: the snapshot producer the commit kinds share (manifests,
//!   manifest list, totals, metadata);
//! - `append`, `overwrite`, `upsert`, `replace`, `compact`: what each kind
//!   does with the base snapshot's manifests;
//! - `search`: a replace's search for the rows it deletes;
//! - `matcher`: the key tuples base rows are matched against;
//! - `deletes`: position delete files;
//! - `files`: Parquet settings, data files written and files read back.

mod append;
mod compact;
mod deletes;
mod files;
mod matcher;
mod new_rows;
mod overwrite;
mod producer;
mod replace;
mod request;
mod search;
mod upsert;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef as ArrowSchemaRef;
use iceberg::spec::{DataFile, Schema};
use rand::Rng;
use uuid::Uuid;

use self::files::writer_properties;
use self::matcher::{Matcher, matchers};
use self::new_rows::{
    NewRows, PARALLEL_WRITE_ROWS, balanced_parts, fill_missing_optional, sorted, target_schema,
};
use self::producer::{SnapshotProducer, Staged};
use self::search::spawn_search;
use super::catalog::{LoadedTable, TableName, Warehouse};
use super::schema::{arrow_schema, conform_batch};
use super::sink::{Part, SinkOptions, sink};
use crate::error::{Error, ErrorKind, Result};

pub use self::producer::{SORT_BY, WRITE_MODE};
pub use self::request::{
    CommitOutcome, Deferred, FailPoint, KeyMatch, SchemaPolicy, Write, WriteMode,
};

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
            WriteMode::Append | WriteMode::Overwrite | WriteMode::Compact { .. } => vec![],
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
            if let WriteMode::Compact { base: read_at, .. } = &write.mode
                && base.current_snapshot_id() != Some(*read_at)
            {
                return Err(Error::new(
                    ErrorKind::CommitConflict,
                    format!(
                        "{name} changed while it was being compacted; nothing was committed \
                         (compact it again)"
                    ),
                ));
            }
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
                    // Past the cache's budget that reader decodes them.
                    .then_some(self.cache().added_budget()),
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

/// Stage one attempt's snapshot against the table's current snapshot (the
/// base): the commit kind decides what becomes of the base manifests, then
/// the shared producer adds the new files and writes the rest.
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
    let mut producer = SnapshotProducer::new(wh, table, schema, write, commit_id, attempt);
    if let Some(current) = table.metadata().current_snapshot() {
        let list = table.table.manifest_list_reader(current).load().await?;
        let entries = list.entries();
        match &write.mode {
            WriteMode::Append => append::keep_base(&mut producer, entries),
            WriteMode::Overwrite => overwrite::delete_base(&mut producer, entries).await?,
            WriteMode::Upsert { .. } => {
                upsert::rewrite_base(&mut producer, entries, current, matchers.first()).await?
            }
            WriteMode::Replace { .. } => {
                replace::delete_matching(&mut producer, entries, matchers, replaced).await?
            }
            WriteMode::Compact {
                remove,
                merged_deletes,
                ..
            } => {
                compact::remove_rewritten(&mut producer, entries, remove, merged_deletes.as_ref())
                    .await?
            }
        }
    }
    producer.finish(added).await
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

/// The positions the position delete files `deletes` delete, by data file.
pub async fn deleted_positions(
    wh: &Warehouse,
    deletes: &[DataFile],
) -> Result<HashMap<String, std::collections::HashSet<i64>>> {
    let mut out = HashMap::new();
    for f in deletes {
        deletes::read_position_deletes(wh, f, &mut out).await?;
    }
    Ok(out)
}
