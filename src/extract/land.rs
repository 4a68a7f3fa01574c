//! Landing extracted rows in the DAS layer, one atomic commit per resource.
//!
//! For each resource (concurrently, bounded):
//! 1. Read the table's cursor from its current snapshot (`lakehouse.cursor`).
//! 2. Fetch every page with `$filter=<cursor field> ge <cursor>` (inclusive,
//!    so rows published late with the boundary value are not missed).
//! 3. Drop boundary rows already landed: a fetched row whose configured
//!    columns (true key + content) equal a landed row at or after the cursor
//!    is a re-read, not a change. Exact duplicates within the fetch are
//!    dropped too.
//! 4. Add the load columns ([`crate::model::das`]): one load id and load time
//!    for the run (the time strictly later than the table's previous load),
//!    and a sequence per row.
//! 5. Append the rows **and** the new cursor in one snapshot. New source
//!    fields become new optional columns. The rows at the new cursor go to
//!    a data file of their own, so step 3 of the next run, which reads the
//!    landed rows at or after that cursor, skips the other files by their
//!    statistics.
//!
//! Invariant: the cursor committed with a snapshot is the maximum cursor
//! value among the rows landed up to that snapshot. A run killed at any
//! point commits either all of a resource's new rows with their cursor, or
//! nothing for it; the next run re-fetches from the last committed cursor,
//! and step 3 makes the re-read rows land exactly once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    new_null_array,
};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use chrono::{DateTime, Utc};
use datafusion::logical_expr::col;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};

use super::odata::{Cursor, ODataClient};
use super::schema::resource_schema;
use crate::config::{ResourceConfig, SourceConfig};
use crate::error::{Error, Result};
use crate::model::das::NAMESPACE;
use crate::model::frame::ts_lit;
use crate::storage::{AsOf, SchemaPolicy, TableName, Warehouse, Write};

/// Snapshot property: the cursor (RFC 3339, UTC) after this snapshot.
pub const CURSOR: &str = "lakehouse.cursor";
/// Snapshot property: the load id of this snapshot's rows.
pub const LOAD_ID_PROP: &str = "lakehouse.load-id";
/// Snapshot property: the load time (micros, UTC) of this snapshot's rows.
pub const LOADED_AT_PROP: &str = "lakehouse.loaded-at";

/// Options of one extraction run.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Only these tables (landing names or API paths); all when empty.
    pub resources: Vec<String>,
    /// Resources extracted at the same time.
    pub concurrency: usize,
    /// Show progress bars on a terminal.
    pub progress: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            resources: Vec::new(),
            concurrency: 4,
            progress: false,
        }
    }
}

/// What happened to one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceReport {
    pub table: String,
    pub pages: usize,
    /// Rows the source returned.
    pub fetched: usize,
    /// Rows landed (fetched minus re-read boundary rows).
    pub landed: usize,
    pub seconds: f64,
    /// The cursor after this run.
    pub cursor: Option<DateTime<Utc>>,
    /// The failure, if the resource failed (others still commit).
    pub error: Option<String>,
}

/// The run's report.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractReport {
    pub load_id: String,
    pub resources: Vec<ResourceReport>,
}

impl ExtractReport {
    /// Rows landed over all resources.
    pub fn landed(&self) -> usize {
        self.resources.iter().map(|r| r.landed).sum()
    }
    /// The failed resources.
    pub fn failures(&self) -> Vec<&ResourceReport> {
        self.resources
            .iter()
            .filter(|r| r.error.is_some())
            .collect()
    }
}

/// Extract `config`'s resources through `client` into the warehouse's DAS layer.
pub async fn extract(
    wh: &Warehouse,
    config: &SourceConfig,
    client: &ODataClient,
    options: &ExtractOptions,
) -> Result<ExtractReport> {
    let selected: Vec<&ResourceConfig> = if options.resources.is_empty() {
        config.resources.iter().collect()
    } else {
        options
            .resources
            .iter()
            .map(|name| {
                config
                    .resources
                    .iter()
                    .find(|r| {
                        &r.table == name
                            || &r.api_path == name
                            || r.entity_set() == name
                            || r.table.ends_with(&format!("__{name}"))
                    })
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "unknown resource '{name}' in source {}",
                            config.name
                        ))
                    })
            })
            .collect::<Result<_>>()?
    };
    let load_id = uuid::Uuid::now_v7().to_string();
    let started = Utc::now();
    let bar = if options.progress {
        let b = indicatif::ProgressBar::new(selected.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} extract [{bar:30}] {pos}/{len} resources {msg}",
            )
            .map_err(|e| Error::internal(e.to_string()))?
            .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    // Each resource lands in a task of its own, so fetching, decoding and
    // writing use every worker thread (polled in this task, they took turns
    // on one thread). The tasks share one query context for their lookups.
    // They are aborted when this future is dropped (a cancelled or killed
    // run): left running, they went on landing rows beside the next run,
    // which landed the same rows again.
    let ctx = SessionContext::new();
    let reports: Vec<ResourceReport> = futures::stream::iter(selected)
        .map(|resource| {
            let load_id = load_id.clone();
            let bar = bar.clone();
            let task = {
                let (wh, client, resource, ctx) =
                    (wh.clone(), client.clone(), resource.clone(), ctx.clone());
                let load_id = load_id.clone();
                tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
                    land_resource(&wh, &client, &resource, &ctx, &load_id, started).await
                }))
            };
            async move {
                let t0 = Instant::now();
                let result = task.await.unwrap_or_else(|e| {
                    Err(Error::internal(format!(
                        "landing task of {} failed: {e}",
                        resource.table
                    )))
                });
                bar.inc(1);
                let seconds = t0.elapsed().as_secs_f64();
                match result {
                    Ok(mut r) => {
                        r.seconds = seconds;
                        bar.set_message(format!("{} ({} rows)", resource.table, r.landed));
                        r
                    }
                    Err(e) => ResourceReport {
                        table: resource.table.clone(),
                        pages: 0,
                        fetched: 0,
                        landed: 0,
                        seconds,
                        cursor: None,
                        error: Some(format!("{e}")),
                    },
                }
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    let mut reports = reports;
    reports.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(ExtractReport {
        load_id,
        resources: reports,
    })
}

/// The cursor as a literal of the cursor column's type (a comparison in the
/// column's own type is pushed down to the Iceberg scan correctly).
fn cursor_literal(
    t: crate::config::ColumnType,
    c: DateTime<Utc>,
) -> datafusion::logical_expr::Expr {
    use crate::config::ColumnType;
    match t {
        ColumnType::Date => {
            let days = c
                .date_naive()
                .signed_duration_since(chrono::NaiveDate::default())
                .num_days();
            datafusion::logical_expr::lit(datafusion::common::ScalarValue::Date32(Some(
                days as i32,
            )))
        }
        _ => ts_lit(c.timestamp_micros()),
    }
}

fn parse_cursor(v: &str, table: &TableName) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::invalid(format!("table {table}: bad {CURSOR} property '{v}': {e}")))
}

/// The cursor `resource`'s landing table holds after its current snapshot
/// (`None`: nothing landed yet).
pub async fn landed_cursor(
    wh: &Warehouse,
    resource: &ResourceConfig,
) -> Result<Option<DateTime<Utc>>> {
    let name = TableName::new(NAMESPACE, resource.table.clone())?;
    let Some(table) = wh.try_load_table(&name).await? else {
        return Ok(None);
    };
    table
        .current_properties()
        .get(CURSOR)
        .map(|v| parse_cursor(v, &name))
        .transpose()
}

async fn land_resource(
    wh: &Warehouse,
    client: &ODataClient,
    resource: &ResourceConfig,
    ctx: &SessionContext,
    load_id: &str,
    started: DateTime<Utc>,
) -> Result<ResourceReport> {
    let name = TableName::new(NAMESPACE, resource.table.clone())?;
    let existing = wh.try_load_table(&name).await?;
    let props = existing
        .as_ref()
        .map(|t| t.current_properties())
        .unwrap_or_default();
    let cursor = props
        .get(CURSOR)
        .map(|v| parse_cursor(v, &name))
        .transpose()?;
    let last_loaded: Option<i64> = props.get(LOADED_AT_PROP).and_then(|v| v.parse().ok());

    // Fetch every page.
    let mut pages = client.pages(resource, cursor.map(Cursor::AtOrAfter));
    let mut batches = Vec::new();
    let mut page_count = 0;
    let mut max_cursor = cursor;
    while let Some(page) = pages.try_next().await? {
        page_count += 1;
        max_cursor = max_cursor.max(page.max_cursor);
        if page.batch.num_rows() > 0 {
            batches.push(page.batch);
        }
    }
    let fetched: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut report = ResourceReport {
        table: resource.table.clone(),
        pages: page_count,
        fetched,
        landed: 0,
        seconds: 0.0,
        cursor: max_cursor,
        error: None,
    };
    if fetched == 0 {
        return Ok(report);
    }
    let batch = unify(resource, &batches)?;

    // Drop re-read rows: same configured columns as a row already landed at
    // or after the cursor, or as an earlier row of this fetch.
    let configured: Vec<String> = resource.columns.iter().map(|c| c.name.clone()).collect();
    let converter = RowConverter::new(
        configured
            .iter()
            .map(|c| {
                Ok(SortField::new(
                    batch.schema_ref().field_with_name(c)?.data_type().clone(),
                ))
            })
            .collect::<Result<Vec<_>>>()?,
    )?;
    let encode = |b: &RecordBatch| -> Result<arrow::row::Rows> {
        let cols = configured
            .iter()
            .map(|c| Ok(b.column(b.schema_ref().index_of(c)?).clone()))
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(converter.convert_columns(&cols)?)
    };
    let mut seen: HashSet<Box<[u8]>> = HashSet::new();
    let t_seen = Instant::now();
    if let (Some(t), Some(c)) = (&existing, cursor) {
        let cursor_col = resource.cursor_column().ok_or_else(|| {
            Error::invalid(format!("resource {} has no cursor column", resource.table))
        })?;
        let landed = ctx
            .read_table(t.provider(AsOf::Latest).await?)?
            .filter(col(cursor_col.name.as_str()).gt_eq(cursor_literal(cursor_col.data_type, c)))?
            .select_columns(&configured.iter().map(String::as_str).collect::<Vec<_>>())?
            .collect()
            .await?;
        for b in &landed {
            let b = crate::storage::schema::project_by_name(
                b,
                &Arc::new(Schema::new(
                    configured
                        .iter()
                        .map(|c| batch.schema_ref().field_with_name(c).cloned())
                        .collect::<std::result::Result<Vec<Field>, _>>()?,
                )),
            )?;
            for r in encode(&b)?.iter() {
                seen.insert(r.as_ref().into());
            }
        }
    }
    tracing::debug!(table = %resource.table, fetched, landed_at_cursor = seen.len(), ms = t_seen.elapsed().as_millis() as u64, "re-read rows looked up");
    let rows = encode(&batch)?;
    let keep: BooleanArray = rows
        .iter()
        .map(|r| Some(seen.insert(r.as_ref().into())))
        .collect();
    let batch = filter_record_batch(&batch, &keep)?;
    report.landed = batch.num_rows();
    if batch.num_rows() == 0 {
        return Ok(report);
    }

    // Load columns.
    let loaded_at = started
        .timestamp_micros()
        .max(last_loaded.map_or(i64::MIN, |l| l + 1));
    let n = batch.num_rows();
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.extend(crate::model::das::load_fields());
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec![load_id; n])));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(vec![loaded_at; n]).with_timezone("UTC"),
    ));
    columns.push(Arc::new(Int64Array::from_iter_values(0..n as i64)));
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    // The rows at the new cursor land in a file of their own: the next
    // run's re-read lookup (`cursor >= c`) then skips the file of older
    // rows by its statistics instead of decoding it.
    let batches = match (resource.cursor_column(), max_cursor) {
        (Some(c), Some(max)) => split_at_cursor(&batch, &c.name, max)?,
        _ => vec![batch],
    };
    let mut write = Write::append()
        .file_per_batch()
        .schema_policy(SchemaPolicy::AddColumns)
        .property(LOAD_ID_PROP, load_id)
        .property(LOADED_AT_PROP, loaded_at.to_string());
    if let Some(c) = max_cursor {
        write = write.property(
            CURSOR,
            c.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        );
    }
    wh.write(&name, schema, batches, write)
        .await
        .map_err(|e| e.context(format!("landing {}", resource.table)))?;
    Ok(report)
}

/// `batch` as (rows before `cursor`, rows at or after it), leaving out an
/// empty part. Rows with a NULL cursor count as before.
fn split_at_cursor(
    batch: &RecordBatch,
    column: &str,
    cursor: DateTime<Utc>,
) -> Result<Vec<RecordBatch>> {
    use arrow::array::Array;
    use arrow::compute::kernels::cmp::gt_eq;
    use arrow::compute::{cast, not, prep_null_mask_filter};
    use arrow::datatypes::{DataType, TimeUnit};
    let values = cast(
        batch.column(batch.schema_ref().index_of(column)?),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    let at = gt_eq(
        &values,
        &TimestampMicrosecondArray::new_scalar(cursor.timestamp_micros()),
    )?;
    let at = match at.nulls() {
        Some(_) => prep_null_mask_filter(&at),
        None => at,
    };
    let before = not(&at)?;
    Ok([before, at]
        .iter()
        .map(|mask| filter_record_batch(batch, mask))
        .filter(|b| b.as_ref().map_or(true, |b| b.num_rows() > 0))
        .collect::<std::result::Result<_, _>>()?)
}

/// One batch with the configured columns followed by every extra column seen
/// (NULL where a page lacked it). Fields carry no metadata.
fn unify(resource: &ResourceConfig, batches: &[RecordBatch]) -> Result<RecordBatch> {
    let base = resource_schema(resource);
    let mut fields: Vec<Field> = base
        .fields()
        .iter()
        .map(|f| Field::new(f.name(), f.data_type().clone(), true))
        .collect();
    for b in batches {
        for f in b.schema().fields() {
            if !fields.iter().any(|x| x.name() == f.name()) {
                fields.push(Field::new(f.name(), f.data_type().clone(), true));
            }
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let aligned = batches
        .iter()
        .map(|b| {
            let cols = schema
                .fields()
                .iter()
                .map(|f| match b.schema().index_of(f.name()) {
                    Ok(i) => b.column(i).clone(),
                    Err(_) => new_null_array(f.data_type(), b.num_rows()),
                })
                .collect::<Vec<_>>();
            RecordBatch::try_new(schema.clone(), cols)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(concat_batches(&schema, &aligned)?)
}
