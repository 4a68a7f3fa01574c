//! A replace's search: the positions of the rows of the table's live data
//! files that any [`Matcher`] holds. Runs on the blocking pool; of each
//! file it fetches only the footer and the key column chunks of row groups
//! a matcher may match, and decodes only the pages the page index admits.
//! Positions are 0-based in file order and come out sorted per file.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::datatypes::DataType;
use arrow::datatypes::SchemaRef as ArrowSchemaRef;
use iceberg::spec::{DataFile, DataFileFormat, ManifestContentType, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection};

use super::files::root_indices;
use super::matcher::{Matcher, leaf_index, selected_runs};
use super::producer::live_entries;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::storage::catalog::{LoadedTable, Warehouse};
use crate::storage::schema::{arrow_schema, project_by_name};

/// Search `table` (under `schema`) for the rows `matchers` match, on a
/// thread of the blocking pool (see [`Warehouse::write_stream`]).
pub(super) fn spawn_search(
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
        // instead of each value being copied into one buffer: the searched
        // PIT hooks are long, so that copy is much of a search's decoding.
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
/// [`Write::sort_by`](super::request::Write::sort_by), has narrow pages).
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
