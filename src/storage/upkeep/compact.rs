//! Compaction: which files of a table's current snapshot are worth
//! rewriting, and the rewrite itself (see the [module docs](super)).
//!
//! A table is compacted when its current snapshot holds
//! - at least `min_files` small data files (under a quarter of the target
//!   file size): they are merged, from the smallest up, while each is at
//!   most the ones taken before it together (size tiers: a large file is
//!   rewritten only once the small ones add up to its size); or
//! - data files with at least 30 % of their rows deleted: a small one joins
//!   the merged small files, a large one is rewritten alone, in its own
//!   (sorted) order, without a sort; or
//! - at least `min_files` position delete files: they are merged into one.
//!
//! Whenever rewritten files had deleted rows, the delete files are merged
//! too, keeping only positions of the files that stay. The rows are read
//! file after file at the current snapshot with their deletes applied
//! (iceberg's reader); the merged small files are merged in the order the
//! table's last write sorted by (`lakehouse.sort-by`; each file is sorted,
//! so a k-way merge, not a sort); everything streams into target-size
//! files, and one `compact` commit swaps them in.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::compute::SortOptions;
use arrow::datatypes::SchemaRef;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::expressions::col as physical_col;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use datafusion::prelude::SessionContext;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use iceberg::spec::{DataContentType, DataFile};

use crate::error::{Error, Result};
use crate::storage::catalog::{LoadedTable, Warehouse};
use crate::storage::commit::{SORT_BY, WRITE_MODE, deleted_positions, live_data_files};
use crate::storage::schema::{arrow_schema, project_by_name};
use crate::storage::sink::Part;
use crate::storage::{Write, WriteMode};

/// Small data files are those under this share of the target file size.
const SMALL_SHARE: usize = 4;

/// A data file with at least this share of its rows deleted is rewritten
/// (Spark's default delete ratio for rewriting data files).
const DELETED_SHARE: f64 = 0.3;

/// What a compaction rewrote (or, in a dry run, would rewrite).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Compaction {
    /// Data files rewritten.
    pub data_files: usize,
    /// Position delete files merged away.
    pub delete_files: usize,
    /// Bytes of the files rewritten or merged.
    pub bytes: u64,
    /// Live rows rewritten.
    pub rows: u64,
    /// Files written (data and merged deletes); 0 in a dry run.
    pub files_out: usize,
}

/// A compaction decided against one snapshot.
pub(super) struct Plan {
    base: i64,
    /// Small files merged, their rows sorted together.
    group: Vec<DataFile>,
    /// Large files with many rows deleted, each rewritten alone in its own
    /// order (a file is written sorted): no sort, one stream each.
    alone: Vec<DataFile>,
    deletes: Vec<DataFile>,
    /// With `Some`, every delete file goes and these positions stay.
    merged: Option<Vec<(String, Vec<i64>)>>,
    /// Live rows of the files rewritten.
    rows: u64,
    sort_by: Vec<String>,
    properties: BTreeMap<String, String>,
}

impl Plan {
    fn rewrite(&self) -> impl Iterator<Item = &DataFile> {
        self.group.iter().chain(&self.alone)
    }

    pub(super) fn summary(&self) -> Compaction {
        let merged = if self.merged.is_some() {
            &self.deletes[..]
        } else {
            &[]
        };
        Compaction {
            data_files: self.group.len() + self.alone.len(),
            delete_files: merged.len(),
            bytes: self
                .rewrite()
                .chain(merged)
                .map(DataFile::file_size_in_bytes)
                .sum(),
            rows: self.rows,
            files_out: 0,
        }
    }
}

/// Decide whether `table` is worth compacting, and how.
pub(super) async fn plan(
    wh: &Warehouse,
    table: &LoadedTable,
    min_files: usize,
) -> Result<Option<Plan>> {
    let Some(current) = table.metadata().current_snapshot() else {
        return Ok(None);
    };
    let min_files = min_files.max(2);
    // The snapshot's totals rule out most tables without reading a file: no
    // delete file (nothing deleted, nothing to merge) and too few data files.
    let total = |k: &str| {
        current
            .summary()
            .additional_properties
            .get(k)
            .and_then(|v| v.parse::<usize>().ok())
    };
    if total("total-delete-files") == Some(0)
        && total("total-data-files").is_some_and(|n| n < min_files)
    {
        return Ok(None);
    }
    let (data, deletes): (Vec<DataFile>, Vec<DataFile>) = live_data_files(table)
        .await?
        .into_iter()
        .partition(|f| f.content_type() == DataContentType::Data);
    if deletes
        .iter()
        .any(|f| f.content_type() == DataContentType::EqualityDeletes)
    {
        // Another engine's equality deletes: not ours to rewrite.
        return Ok(None);
    }
    let positions = deleted_positions(wh, &deletes).await?;
    let deleted_in = |f: &DataFile| positions.get(f.file_path()).map_or(0, |p| p.len() as u64);

    let small_limit = (wh.target_file_size() / SMALL_SHARE) as u64;
    let small: Vec<&DataFile> = data
        .iter()
        .filter(|f| f.file_size_in_bytes() < small_limit)
        .collect();
    let mut group: Vec<DataFile> = Vec::new();
    if small.len() >= min_files {
        group.extend(size_tier(small).into_iter().cloned());
    }
    let mut alone: Vec<DataFile> = Vec::new();
    for f in &data {
        let heavy =
            deleted_in(f) > 0 && deleted_in(f) as f64 >= DELETED_SHARE * f.record_count() as f64;
        if heavy && !group.iter().any(|r| r.file_path() == f.file_path()) {
            if f.file_size_in_bytes() < small_limit {
                group.push(f.clone());
            } else {
                alone.push(f.clone());
            }
        }
    }
    let rewritten: HashSet<&str> = group
        .iter()
        .chain(&alone)
        .map(DataFile::file_path)
        .collect();
    let live: HashSet<&str> = data.iter().map(DataFile::file_path).collect();
    let merge = !deletes.is_empty()
        && (deletes.len() >= min_files
            || positions
                .keys()
                .any(|p| rewritten.contains(p.as_str()) || !live.contains(p.as_str())));
    if rewritten.is_empty() && !merge {
        return Ok(None);
    }
    let merged = merge.then(|| {
        let mut kept: Vec<(String, Vec<i64>)> = positions
            .iter()
            .filter(|(p, _)| live.contains(p.as_str()) && !rewritten.contains(p.as_str()))
            .map(|(p, pos)| {
                let mut pos: Vec<i64> = pos.iter().copied().collect();
                pos.sort_unstable();
                (p.clone(), pos)
            })
            .collect();
        kept.sort();
        kept
    });
    let summary = &current.summary().additional_properties;
    let sort_by = summary
        .get(SORT_BY)
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    // The run state (cursors, watermarks, inputs read) stays with the rows.
    let properties = summary
        .iter()
        .filter(|(k, _)| k.starts_with("lakehouse.") && *k != WRITE_MODE && *k != SORT_BY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Some(Plan {
        base: current.snapshot_id(),
        rows: group
            .iter()
            .chain(&alone)
            .map(|f| f.record_count() - deleted_in(f))
            .sum(),
        group,
        alone,
        deletes,
        merged,
        sort_by,
        properties,
    }))
}

/// Of `small` files, those to merge: from the smallest up, each file no
/// larger than the files taken before it together (the first two always).
/// A table that takes a small commit a day beside one large file merges the
/// daily files among themselves, and the large one only once they add up
/// to its size: each row is rewritten O(log n) times, not daily.
fn size_tier(mut small: Vec<&DataFile>) -> Vec<&DataFile> {
    small.sort_by_key(|f| f.file_size_in_bytes());
    let mut taken: Vec<&DataFile> = Vec::new();
    let mut bytes = 0u64;
    for f in small {
        if taken.len() >= 2 && f.file_size_in_bytes() > bytes {
            break;
        }
        bytes += f.file_size_in_bytes();
        taken.push(f);
    }
    if taken.len() < 2 { vec![] } else { taken }
}

/// Rewrite what `plan` chose and commit it.
pub(super) async fn run(
    wh: &Warehouse,
    ctx: &SessionContext,
    table: &LoadedTable,
    plan: Plan,
) -> Result<Compaction> {
    let schema = arrow_schema(table.metadata().current_schema())?;
    let mut report = plan.summary();
    // The sorted group first, then each file rewritten alone: every part is
    // sorted, as a stream's parts must be.
    let mut parts: Vec<Part<'static>> = Vec::new();
    if plan.sort_by.is_empty() || plan.group.len() <= 1 {
        if !plan.group.is_empty() {
            parts.push(live_rows(table, plan.base, &plan.group, Arc::clone(&schema)).await?);
        }
    } else {
        let mut files = Vec::with_capacity(plan.group.len());
        for one in plan.group.chunks(1) {
            files.push(live_rows(table, plan.base, one, Arc::clone(&schema)).await?);
        }
        parts.push(merged(ctx, Arc::clone(&schema), files, &plan.sort_by)?);
    }
    for one in plan.alone.chunks(1) {
        parts.push(live_rows(table, plan.base, one, Arc::clone(&schema)).await?);
    }
    let mut write = Write::new(WriteMode::Compact {
        base: plan.base,
        remove: plan.rewrite().map(|f| f.file_path().to_string()).collect(),
        merged_deletes: plan.merged,
    })
    .sorted_by(plan.sort_by);
    write.properties = plan.properties;
    write.max_attempts = 1;
    let outcome = wh.write_stream(&table.name, schema, parts, write).await?;
    report.rows = outcome.added_rows;
    let after = wh.load_table(&table.name).await?;
    if let Some(s) = after.metadata().current_snapshot() {
        let added = |k: &str| {
            s.summary()
                .additional_properties
                .get(k)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        };
        report.files_out = added("added-data-files") + added("added-delete-files");
    }
    Ok(report)
}

/// The live rows of `files` at snapshot `base` (their deletes applied), file
/// after file, each in its own order, as `schema`.
async fn live_rows(
    table: &LoadedTable,
    base: i64,
    files: &[DataFile],
    schema: SchemaRef,
) -> Result<Part<'static>> {
    let chosen: HashSet<String> = files.iter().map(|f| f.file_path().to_string()).collect();
    let tasks = table
        .table
        .scan()
        .snapshot_id(base)
        .select_all()
        .build()?
        .plan_files()
        .await?
        .try_filter(move |t| futures::future::ready(chosen.contains(t.data_file_path())));
    Ok(table
        .table
        .reader_builder()
        .with_data_file_concurrency_limit(1)
        .build()
        .read(Box::pin(tasks))?
        .stream()
        .map_err(Error::from)
        .and_then(move |b| futures::future::ready(project_by_name(&b, &schema)))
        .boxed())
}

/// The rows of `files` (each sorted by `by`, ascending, NULLs first, as
/// every write that records `lakehouse.sort-by` lays its files out) merged
/// into one sorted stream by DataFusion's k-way merge: one batch per file in
/// memory, no sort. A file out of order would only leave the output out of
/// order, never lose a row.
fn merged(
    ctx: &SessionContext,
    schema: SchemaRef,
    files: Vec<Part<'static>>,
    by: &[String],
) -> Result<Part<'static>> {
    let partitions: Vec<Arc<dyn PartitionStream>> = files
        .into_iter()
        .map(|rows| {
            Arc::new(OnceStream {
                schema: Arc::clone(&schema),
                rows: Mutex::new(Some(rows)),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    let order = SortOptions {
        descending: false,
        nulls_first: true,
    };
    let exprs = by
        .iter()
        .map(|c| Ok(PhysicalSortExpr::new(physical_col(c, &schema)?, order)))
        .collect::<Result<Vec<_>>>()?;
    let ordering = LexOrdering::new(exprs)
        .ok_or_else(|| Error::internal("a compaction's sort order is empty"))?;
    let files = StreamingTableExec::try_new(
        Arc::clone(&schema),
        partitions,
        None,
        [ordering.clone()],
        false,
        None,
    )?;
    let merge = SortPreservingMergeExec::new(ordering, Arc::new(files));
    let stream = merge.execute(0, ctx.task_ctx())?;
    Ok(stream.map_err(Error::from).boxed())
}

/// A stream a DataFusion plan reads once.
struct OnceStream {
    schema: SchemaRef,
    rows: Mutex<Option<BoxStream<'static, Result<RecordBatch>>>>,
}

impl fmt::Debug for OnceStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnceStream")
    }
}

impl PartitionStream for OnceStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rows = self
            .rows
            .lock()
            .ok()
            .and_then(|mut r| r.take())
            .unwrap_or_else(|| {
                futures::stream::once(async {
                    Err(Error::internal("a compaction's rows were read twice"))
                })
                .boxed()
            })
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)));
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            rows,
        ))
    }
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{DataFileBuilder, DataFileFormat};

    use super::*;

    fn file(name: &str, bytes: u64) -> DataFile {
        DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(name.to_string())
            .file_format(DataFileFormat::Parquet)
            .record_count(1)
            .file_size_in_bytes(bytes)
            .partition_spec_id(0)
            .build()
            .unwrap()
    }

    fn tier(sizes: &[u64]) -> Vec<u64> {
        let files: Vec<DataFile> = sizes
            .iter()
            .enumerate()
            .map(|(i, b)| file(&format!("f{i}"), *b))
            .collect();
        size_tier(files.iter().collect())
            .iter()
            .map(|f| f.file_size_in_bytes())
            .collect()
    }

    #[test]
    fn daily_files_merge_among_themselves_before_the_large_one() {
        // Seven daily files beside a large one: only the daily ones.
        assert_eq!(tier(&[100, 1, 1, 1, 1, 1, 1, 1]), vec![1; 7]);
        // Their merged file grows until it is half the large one.
        assert_eq!(
            tier(&[100, 7, 1, 1, 1, 1, 1, 1, 1]),
            vec![1, 1, 1, 1, 1, 1, 1, 7]
        );
        let mut sizes = vec![100, 40];
        sizes.extend([1; 30]);
        assert_eq!(tier(&sizes), vec![1; 30], "30 daily do not add up to 40");
        sizes.extend([1; 10]);
        assert_eq!(tier(&sizes).len(), 41, "40 daily do: 40 goes too, not 100");
        sizes.extend([1; 20]);
        assert_eq!(tier(&sizes).len(), 62, "60 + 40 reach 100: everything");
        // Files of one size all merge; a lone file never does.
        assert_eq!(tier(&[5, 5, 5, 5]), vec![5; 4]);
        assert!(tier(&[5]).is_empty());
        assert!(tier(&[1, 100, 1000]).len() < 3);
    }
}
