//! Landing extracted rows in the DAS layer, one atomic commit per resource.
//!
//! For each resource (concurrently, bounded):
//! 1. Read the table's cursor from its current snapshot (`lakehouse.cursor`).
//! 2. Fetch every page changed at or after the cursor less the resource's
//!    `lookback` ([`SourceClient::read_from`]; OData:
//!    `$filter=<cursor field> ge <instant>`, inclusive, so rows published
//!    late with the boundary value are not missed; a REST resource without a
//!    cursor parameter is read whole).
//! 3. Drop rows already landed: a fetched row whose configured columns (true
//!    key + content) equal a landed row at or after that instant (any landed
//!    row, when read whole) is a re-read, not a change. Exact duplicates
//!    within the fetch are dropped too.
//! 4. Add the load columns ([`crate::das`]): one load id and load time
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

use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use datafusion::logical_expr::col;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};

use super::client::SourceClient;
use super::landing::Landing;
use crate::config::{ResourceConfig, SourceConfig};
use crate::das::{NAMESPACE, resource_schema, ts_lit};
use crate::error::{Error, Result};
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
    /// Bytes of a resource's fetched pages held in memory: a fetch that
    /// fits lands from memory, a larger one streams into its table page by
    /// page ([`DEFAULT_HELD_PAGES_BYTES`] by default).
    pub held_pages_bytes: usize,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            resources: Vec::new(),
            concurrency: 4,
            progress: false,
            held_pages_bytes: DEFAULT_HELD_PAGES_BYTES,
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

/// What made a resource fail, for its report: the error's message and each
/// cause once, without the kind and without the leading `resource `<table>``
/// the report's table column already says.
fn cause(table: &str, e: &Error) -> String {
    let own = format!("resource `{table}`");
    let m = e.detail();
    m.strip_prefix(&own)
        .map(|rest| rest.trim_start_matches(':').trim_start())
        .unwrap_or(&m)
        .to_string()
}

/// One line per failed resource: `  <table>: <cause>`.
pub fn failure_lines(failed: &[&ResourceReport]) -> String {
    failed
        .iter()
        .map(|f| format!("  {}: {}", f.table, f.error.as_deref().unwrap_or("failed")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Extract `config`'s resources through `client` into the warehouse's DAS layer.
pub async fn extract(
    wh: &Warehouse,
    config: &SourceConfig,
    client: &SourceClient,
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
                    .find(|r| r.is_named(name))
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "unknown resource '{name}' in source {}",
                            config.name
                        ))
                    })
            })
            .collect::<Result<_>>()?
    };
    // A service that cannot be reached at all fails the extraction at once,
    // in one line, rather than after every resource's retries.
    client.check_reachable().await?;
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
                let held = options.held_pages_bytes;
                tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
                    land_resource(&wh, &client, &resource, &ctx, &load_id, started, held).await
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
                        error: Some(cause(&resource.table, &e)),
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

/// Bring `table`'s configured columns to the types the config gives them
/// before anything lands: a widening Iceberg allows in place (e.g.
/// `decimal(12,2)` to `decimal(18,2)`) is committed at once, as a snapshot of
/// the schema alone that keeps the cursor and load properties, so the
/// models read the configured types even when no row lands; any other
/// change fails the resource naming table and column. Returns whether a
/// snapshot was committed.
async fn widen_columns(
    wh: &Warehouse,
    name: &TableName,
    table: &crate::storage::LoadedTable,
    resource: &ResourceConfig,
) -> Result<bool> {
    use crate::storage::schema::{TypeChange, type_change};
    let configured = resource_schema(resource);
    let current = table.metadata().current_schema();
    let mut widened = false;
    for f in configured.fields() {
        match type_change(current, f)? {
            TypeChange::Widened => widened = true,
            TypeChange::Incompatible { table: had, wanted } => {
                // Both as a source file writes them (`decimal(18,2)`).
                let had = had.replace(", ", ",");
                let wanted = resource
                    .column(f.name())
                    .map_or(wanted, |c| c.data_type.to_string());
                return Err(Error::new(
                    crate::error::ErrorKind::SchemaMismatch,
                    format!(
                        "column `{}` of {name} is {had} but the source config makes it {wanted}; \
                         Iceberg can only widen a column in place (more decimal digits, int to \
                         long, float to double): rebuild with `lakehouse init --force`",
                        f.name()
                    ),
                ));
            }
            TypeChange::New | TypeChange::Same => {}
        }
    }
    if !widened {
        return Ok(false);
    }
    let props = table.current_properties();
    let mut write = Write::append().schema_policy(SchemaPolicy::AddColumns);
    for key in [CURSOR, LOAD_ID_PROP, LOADED_AT_PROP] {
        if let Some(v) = props.get(key) {
            write = write.property(key, v.clone());
        }
    }
    tracing::info!(table = %name, "widening configured column types");
    wh.write(name, configured, vec![], write)
        .await
        .map_err(|e| e.context(format!("widening the columns of {name}")))?;
    Ok(true)
}

async fn land_resource(
    wh: &Warehouse,
    client: &SourceClient,
    resource: &ResourceConfig,
    ctx: &SessionContext,
    load_id: &str,
    started: DateTime<Utc>,
    held_pages_bytes: usize,
) -> Result<ResourceReport> {
    use futures::SinkExt;
    let name = TableName::new(NAMESPACE, resource.table.clone())?;
    let mut existing = wh.try_load_table(&name).await?;
    if let Some(t) = &existing
        && widen_columns(wh, &name, t, resource).await?
    {
        existing = wh.try_load_table(&name).await?;
    }
    let props = existing
        .as_ref()
        .map(|t| t.current_properties())
        .unwrap_or_default();
    let cursor = props
        .get(CURSOR)
        .map(|v| parse_cursor(v, &name))
        .transpose()?;
    let last_loaded: Option<i64> = props.get(LOADED_AT_PROP).and_then(|v| v.parse().ok());
    let loaded_at = started
        .timestamp_micros()
        .max(last_loaded.map_or(i64::MIN, |l| l + 1));

    // The first pages, up to `held_pages_bytes`: a fetch that fits is
    // landed from memory; a larger one streams into the table.
    let from = client.read_from(resource, cursor);
    let mut pages = client.pages(resource, from);
    let mut held = Vec::new();
    let (mut held_bytes, mut page_count, mut max_cursor) = (0usize, 0usize, cursor);
    let mut whole = false;
    while held_bytes <= held_pages_bytes {
        let Some(page) = pages.try_next().await? else {
            whole = true;
            break;
        };
        page_count += 1;
        max_cursor = max_cursor.max(page.max_cursor);
        if page.batch.num_rows() > 0 {
            held_bytes += page.batch.get_array_memory_size();
            held.push(page.batch);
        }
    }
    let mut report = ResourceReport {
        table: resource.table.clone(),
        pages: page_count,
        fetched: 0,
        landed: 0,
        seconds: 0.0,
        cursor: max_cursor,
        error: None,
    };
    if whole && held.is_empty() {
        if existing.is_none() {
            // An empty resource still lands its table, empty, with its
            // schema (no cursor yet): the models over it build, empty.
            let schema = Landing::new(resource, &held, load_id, loaded_at)?.schema();
            let write = Write::append()
                .property(LOAD_ID_PROP, load_id)
                .property(LOADED_AT_PROP, loaded_at.to_string());
            wh.write(&name, schema, vec![], write)
                .await
                .map_err(|e| e.context(format!("landing {} (empty)", resource.table)))?;
        }
        return Ok(report);
    }
    let mut landing = Landing::new(resource, &held, load_id, loaded_at)?;

    // Drop re-read rows: same configured columns as a row already landed at
    // or after the instant read from (every landed row when the whole
    // resource was read), or as an earlier row of this fetch.
    let t_seen = Instant::now();
    if let Some(t) = &existing {
        let cursor_col = resource.cursor_column().ok_or_else(|| {
            Error::invalid(format!("resource {} has no cursor column", resource.table))
        })?;
        let configured: Vec<&str> = resource.columns.iter().map(|c| c.name.as_str()).collect();
        let mut landed = ctx.read_table(t.provider(AsOf::Latest).await?)?;
        if let Some(from) = from {
            landed = landed.filter(
                col(cursor_col.name.as_str()).gt_eq(cursor_literal(cursor_col.data_type, from)),
            )?;
        }
        let mut landed = landed.select_columns(&configured)?.execute_stream().await?;
        let types = landing.configured_schema()?;
        while let Some(b) = landed.try_next().await? {
            landing.remember_landed(&crate::storage::schema::project_by_name(&b, &types)?)?;
        }
    }
    tracing::debug!(table = %resource.table, ms = t_seen.elapsed().as_millis() as u64, "re-read rows looked up");

    let schema = landing.schema();
    let write = Write::append()
        .file_per_batch()
        .schema_policy(SchemaPolicy::AddColumns)
        .property(LOAD_ID_PROP, load_id)
        .property(LOADED_AT_PROP, loaded_at.to_string());
    let cursor_text = |c: DateTime<Utc>| c.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    if whole {
        // Landed from memory: the rows, then those at the new cursor in a
        // file of their own (see [`Landing`]).
        let mut ready = Vec::new();
        for b in &held {
            ready.extend(landing.push(b)?);
        }
        drop(held);
        let tail = landing.finish()?;
        report.fetched = landing.fetched;
        report.landed = landing.landed;
        if landing.landed == 0 {
            return Ok(report);
        }
        let mut batches = Vec::new();
        if !ready.is_empty() {
            batches.push(arrow::compute::concat_batches(&schema, &ready)?);
        }
        batches.extend(tail);
        let write = match max_cursor {
            Some(c) => write.property(CURSOR, cursor_text(c)),
            None => write,
        };
        wh.write(&name, schema, batches, write)
            .await
            .map_err(|e| e.context(format!("landing {}", resource.table)))?;
        return Ok(report);
    }

    // Streamed: the pages are taken as the table's files are written; the
    // rows at the final cursor follow in a part of their own, and the
    // cursor is committed with the rows.
    let final_cursor = Arc::new(std::sync::Mutex::new(max_cursor));
    let (mut rows_tx, rows_rx) = futures::channel::mpsc::channel::<Result<RecordBatch>>(2);
    let (tail_tx, tail_rx) = futures::channel::oneshot::channel::<RecordBatch>();
    let produce = {
        let final_cursor = Arc::clone(&final_cursor);
        let landing = &mut landing;
        async move {
            let mut page_count = page_count;
            let result: Result<()> = async {
                for b in &held {
                    for r in landing.push(b)? {
                        if rows_tx.send(Ok(r)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                drop(held);
                while let Some(page) = pages.try_next().await? {
                    page_count += 1;
                    if let Ok(mut c) = final_cursor.lock() {
                        *c = (*c).max(page.max_cursor);
                    }
                    for r in landing.push(&page.batch)? {
                        if rows_tx.send(Ok(r)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                if let Some(tail) = landing.finish()? {
                    let _ = tail_tx.send(tail);
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                // The write fails with the fetch's error; nothing commits.
                let _ = rows_tx.send(Err(e)).await;
            }
            page_count
        }
    };
    let parts: Vec<crate::storage::Part<'_>> = vec![
        rows_rx.boxed(),
        futures::stream::once(tail_rx)
            .filter_map(|t| async move { t.ok().map(Ok) })
            .boxed(),
    ];
    let write = {
        let final_cursor = Arc::clone(&final_cursor);
        write.only_with_rows().deferred_property(CURSOR, move || {
            final_cursor.lock().ok().and_then(|c| *c).map(cursor_text)
        })
    };
    let (page_count, written) = tokio::join!(produce, wh.write_stream(&name, schema, parts, write));
    written.map_err(|e| e.context(format!("landing {}", resource.table)))?;
    report.pages = page_count;
    report.cursor = final_cursor.lock().ok().and_then(|c| *c);
    report.fetched = landing.fetched;
    report.landed = landing.landed;
    Ok(report)
}

/// Default [`ExtractOptions::held_pages_bytes`]: 64 MiB.
pub const DEFAULT_HELD_PAGES_BYTES: usize = 64 * 1024 * 1024;
