//! The rows one resource lands, prepared page by page.
//!
//! [`Landing`] takes the fetched pages in order and gives back the rows to
//! land, so a resource's pages can stream into its table without being held
//! together:
//! - **one schema**: the configured columns, then every extra field of the
//!   pages seen when the landing started (NULL where a page lacks one); a
//!   page bringing a field not in it is refused, naming resource and field;
//! - **re-reads dropped**: a row whose configured columns (true key and
//!   content) equal a landed row at or after the cursor
//!   ([`Landing::remember_landed`]), or an earlier row of this fetch, is not
//!   landed again. Rows are told apart by a 128-bit hash of their row
//!   encoding (XXH3-128), so the memory held is 16 bytes per distinct row;
//! - **load columns**: the run's load id and load time, and a per-row
//!   sequence in fetch order;
//! - **the newest rows apart**: rows at the highest cursor value seen so far
//!   are held back (the *tail*) until a higher value arrives; at the end the
//!   tail holds exactly the rows at the final cursor, which land in a file of
//!   their own (the next run's re-read lookup reads only that file).

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    new_null_array,
};
use arrow::compute::{cast, concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::row::{RowConverter, SortField};

use crate::config::ResourceConfig;
use crate::das::resource_schema;
use crate::error::{Error, Result};

/// See the module docs.
pub struct Landing {
    table: String,
    /// The pages' columns: configured, then extras.
    rows_schema: SchemaRef,
    /// `rows_schema` and the load columns: what lands.
    schema: SchemaRef,
    configured: Vec<String>,
    converter: RowConverter,
    seen: HashSet<u128>,
    load_id: String,
    loaded_at: i64,
    sequence: i64,
    cursor: Option<String>,
    tail: Vec<RecordBatch>,
    tail_cursor: Option<i64>,
    /// Rows taken, and rows kept (not re-reads).
    pub fetched: usize,
    pub landed: usize,
}

impl Landing {
    /// A landing of `resource` whose schema takes the extra fields of
    /// `first_pages`.
    pub fn new(
        resource: &ResourceConfig,
        first_pages: &[RecordBatch],
        load_id: &str,
        loaded_at: i64,
    ) -> Result<Self> {
        let mut fields: Vec<Field> = resource_schema(resource)
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect();
        for b in first_pages {
            for f in b.schema().fields() {
                if !fields.iter().any(|x| x.name() == f.name()) {
                    fields.push(Field::new(f.name(), f.data_type().clone(), true));
                }
            }
        }
        let rows_schema = Arc::new(Schema::new(fields.clone()));
        fields.extend(crate::das::load_fields());
        let configured: Vec<String> = resource.columns.iter().map(|c| c.name.clone()).collect();
        let converter = RowConverter::new(
            configured
                .iter()
                .map(|c| {
                    Ok(SortField::new(
                        rows_schema.field_with_name(c)?.data_type().clone(),
                    ))
                })
                .collect::<Result<Vec<_>>>()?,
        )?;
        Ok(Self {
            table: resource.table.clone(),
            rows_schema,
            schema: Arc::new(Schema::new(fields)),
            configured,
            converter,
            seen: HashSet::new(),
            load_id: load_id.to_string(),
            loaded_at,
            sequence: 0,
            cursor: resource.cursor_column().map(|c| c.name.clone()),
            tail: Vec::new(),
            tail_cursor: None,
            fetched: 0,
            landed: 0,
        })
    }

    /// The schema of the rows [`Landing::push`] gives.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The configured columns' types, to read landed rows in.
    pub fn configured_schema(&self) -> Result<SchemaRef> {
        Ok(Arc::new(Schema::new(
            self.configured
                .iter()
                .map(|c| self.rows_schema.field_with_name(c).cloned())
                .collect::<std::result::Result<Vec<Field>, _>>()?,
        )))
    }

    /// The configured columns of this fetch's rows' hashes.
    fn hashes(&self, batch: &RecordBatch) -> Result<Vec<u128>> {
        let cols = self
            .configured
            .iter()
            .map(|c| Ok(batch.column(batch.schema_ref().index_of(c)?).clone()))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let rows = self.converter.convert_columns(&cols)?;
        Ok(rows
            .iter()
            .map(|r| twox_hash::XxHash3_128::oneshot(r.as_ref()))
            .collect())
    }

    /// Rows already landed (at least the configured columns, in
    /// [`Landing::configured_schema`]'s types): fetched rows equal to one
    /// are re-reads.
    pub fn remember_landed(&mut self, landed: &RecordBatch) -> Result<()> {
        let hashes = self.hashes(landed)?;
        self.seen.extend(hashes);
        Ok(())
    }

    /// Take the next page's rows; returns the rows ready to land now (the
    /// tail is held back, see the module docs).
    pub fn push(&mut self, page: &RecordBatch) -> Result<Vec<RecordBatch>> {
        if page.num_rows() == 0 {
            return Ok(vec![]);
        }
        self.fetched += page.num_rows();
        let page = self.align(page)?;
        let keep: BooleanArray = self
            .hashes(&page)?
            .into_iter()
            .map(|h| Some(self.seen.insert(h)))
            .collect();
        let rows = filter_record_batch(&page, &keep)?;
        let n = rows.num_rows();
        if n == 0 {
            return Ok(vec![]);
        }
        self.landed += n;
        let mut columns = rows.columns().to_vec();
        columns.push(Arc::new(StringArray::from(vec![self.load_id.as_str(); n])));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from(vec![self.loaded_at; n]).with_timezone("UTC"),
        ));
        columns.push(Arc::new(Int64Array::from_iter_values(
            self.sequence..self.sequence + n as i64,
        )));
        self.sequence += n as i64;
        let rows = RecordBatch::try_new(self.schema(), columns)?;
        self.split(rows)
    }

    /// The rows at the final cursor value (after the last page).
    pub fn finish(&mut self) -> Result<Option<RecordBatch>> {
        let tail = std::mem::take(&mut self.tail);
        if tail.is_empty() {
            return Ok(None);
        }
        Ok(Some(concat_batches(&self.schema, &tail)?))
    }

    /// `page` in the landing's page schema (NULL for a missing extra).
    fn align(&self, page: &RecordBatch) -> Result<RecordBatch> {
        if let Some(f) = page
            .schema()
            .fields()
            .iter()
            .find(|f| self.rows_schema.field_with_name(f.name()).is_err())
        {
            return Err(Error::invalid(format!(
                "resource {}: field '{}' first appeared after the first pages of a fetch \
                 too large to hold; add it to the source config",
                self.table,
                f.name()
            )));
        }
        let cols = self
            .rows_schema
            .fields()
            .iter()
            .map(|f| match page.schema().index_of(f.name()) {
                Ok(i) => page.column(i).clone(),
                Err(_) => new_null_array(f.data_type(), page.num_rows()),
            })
            .collect::<Vec<_>>();
        Ok(RecordBatch::try_new(Arc::clone(&self.rows_schema), cols)?)
    }

    /// Hold back the rows at the highest cursor value so far; give the rest
    /// (and a tail a higher value has superseded).
    fn split(&mut self, rows: RecordBatch) -> Result<Vec<RecordBatch>> {
        let Some(column) = &self.cursor else {
            return Ok(vec![rows]);
        };
        let values = cast(
            rows.column(rows.schema_ref().index_of(column)?),
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let values = values
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .ok_or_else(|| Error::internal("a cursor cast to timestamps is not one"))?;
        let Some(max) = arrow::compute::max(values) else {
            return Ok(vec![rows]);
        };
        let mut ready = Vec::new();
        match self.tail_cursor {
            Some(t) if t > max => return Ok(vec![rows]),
            Some(t) if t == max => {}
            _ => {
                ready.append(&mut self.tail);
                self.tail_cursor = Some(max);
            }
        }
        let at: BooleanArray = values.iter().map(|v| Some(v == Some(max))).collect();
        let before = arrow::compute::not(&at)?;
        let held = filter_record_batch(&rows, &at)?;
        let rest = filter_record_batch(&rows, &before)?;
        self.tail.push(held);
        if rest.num_rows() > 0 {
            ready.push(rest);
        }
        Ok(ready)
    }
}
