//! Key matching for upsert and replace: a [`Matcher`] holds the key tuples
//! base rows are compared with, and tells which row groups, pages and rows
//! of a Parquet file may or do hold one. A tuple with a NULL part is never
//! stored and a NULL key never matches; a pruning test may only say "no"
//! when the statistics prove it.

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};
use parquet::arrow::arrow_reader::RowSelection;
use parquet::file::metadata::ParquetMetaData;

use super::request::{KeyMatch, Write, WriteMode};
use crate::error::{Error, Result};

/// Key tuples that base rows are matched against (upsert and
/// replace). Tuples with a NULL part are never stored, and base rows with a
/// NULL key part never match. A key column holding one value in every tuple
/// (e.g. the peripheral of a unified-bridge replace) is compared first with
/// a vectorised equality, so only candidate rows are encoded.
pub(super) struct Matcher {
    pub(super) columns: Vec<String>,
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
/// value into one buffer, see `SearchPlan::fetch` in `search`).
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
    pub(super) fn may_match(&self, group: &parquet::file::metadata::RowGroupMetaData) -> bool {
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
    pub(super) fn page_selection(
        &self,
        meta: &ParquetMetaData,
        group: usize,
    ) -> Option<RowSelection> {
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
    pub(super) fn proven_constants(
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
    pub(super) fn matches(&self, batch: &RecordBatch, assumed: &[String]) -> Result<BooleanArray> {
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
pub(super) fn matchers(write: &Write, batches: &[RecordBatch]) -> Result<Vec<Matcher>> {
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
        WriteMode::Append | WriteMode::Overwrite | WriteMode::Compact { .. } => {}
    }
    Ok(out)
}

/// The leaf column of top-level column `name` (key columns are primitive).
pub(super) fn leaf_index(
    schema: &parquet::schema::types::SchemaDescriptor,
    name: &str,
) -> Option<usize> {
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
pub(super) fn selected_runs<T>(
    selection: Option<&RowSelection>,
    first: T,
    rows: T,
) -> Vec<std::ops::Range<T>>
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::new_rows::tests::{batch, keys_and_values};
    use super::*;
    use crate::storage::schema::project_by_name;
    use arrow::datatypes::SchemaRef as ArrowSchemaRef;
    use arrow::datatypes::{DataType, Field, Schema};

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
}
