//! The new rows of a commit before they become data files: the schema
//! they are written under, NULL columns a write may add, their order
//! ([`Write::sort_by`]) and their split into runs written in parallel.
//! Nothing here writes a file; splitting and sorting keep every row.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef as ArrowSchemaRef;
use arrow::row::{RowConverter, SortField};
use iceberg::spec::{Schema, TableMetadata};

use super::request::{SchemaPolicy, Write, WriteMode};
use crate::error::Result;
use crate::storage::schema::{TypeChange, arrow_schema, iceberg_schema_from_arrow, type_change};
use crate::storage::sink::Part;

/// The new rows of a commit.
pub(super) enum NewRows<'a> {
    /// In memory: sorted here if the write asks for it, and written again
    /// if a concurrent commit changes the table's schema.
    Batches(Vec<RecordBatch>),
    /// Streamed ([`Warehouse::write_stream`]); taken by the first attempt.
    ///
    /// [`Warehouse::write_stream`]: crate::storage::Warehouse::write_stream
    Parts(Vec<Part<'a>>),
}

/// The schema the new snapshot is written under: the table's own unless the
/// mode or policy lets the batch change it.
pub(super) fn target_schema(
    base: &TableMetadata,
    batch: &ArrowSchemaRef,
    write: &Write,
) -> Result<Schema> {
    let current = base.current_schema();
    let last = base.last_column_id();
    let candidate = match (&write.mode, write.schema_policy) {
        (WriteMode::Overwrite, _) => iceberg_schema_from_arrow(batch, Some((current, last)))?,
        (_, SchemaPolicy::AddColumns) => {
            // New columns are added; a column whose type the batch widens
            // (an Iceberg promotion) takes the wider type.
            let current_arrow = arrow_schema(current)?;
            let mut fields: Vec<_> = current_arrow
                .fields()
                .iter()
                .map(|f| match batch.field_with_name(f.name()) {
                    Ok(b) if type_change(current, b)? == TypeChange::Widened => {
                        Ok(f.as_ref().clone().with_data_type(b.data_type().clone()))
                    }
                    _ => Ok(f.as_ref().clone()),
                })
                .collect::<Result<_>>()?;
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
pub(super) fn fill_missing_optional(batch: &RecordBatch, target: &ArrowSchemaRef) -> RecordBatch {
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

/// Fewest new rows per data file written in parallel (see
/// [`Warehouse::write`]): below that, a second file costs more (its own
/// footer, manifest entry and reads) than encoding on one core. A cascade
/// day's event and unified bridges (tens of thousands of new rows at scale
/// 1, last in the run, while the other core has little left to do) are
/// written as two files each (the threshold's measured effect:
/// `docs/benchmarks.md`).
///
/// [`Warehouse::write`]: crate::storage::Warehouse::write
pub(super) const PARALLEL_WRITE_ROWS: usize = 24 * 1024;

/// `batches` as `k` runs of (nearly) equal row counts, in order (batches
/// are sliced where a run ends inside one; empty runs are left out).
pub(super) fn balanced_parts(batches: &[RecordBatch], k: usize) -> Vec<Vec<RecordBatch>> {
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

/// `batches` (of `schema`) as batches sorted by `columns` (ascending, NULLs
/// first), stable.
pub(super) fn sorted(
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    pub(in crate::storage::commit) fn batch(
        schema: &ArrowSchemaRef,
        keys: Vec<Option<&str>>,
        values: Vec<i64>,
    ) -> RecordBatch {
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(Int64Array::from(values)),
            ],
        )
        .expect("valid batch")
    }

    pub(in crate::storage::commit) fn keys_and_values(
        batches: &[RecordBatch],
    ) -> Vec<(Option<String>, i64)> {
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
