//! The rows a table's latest commit added, for readers that follow a table
//! commit by commit (incremental DAR builds look for their inputs' changes
//! there instead of scanning whole tables).
//!
//! Semantics: when a table's current snapshot is the direct child of the
//! snapshot a reader last read (compactions in between do not count: they
//! change no row), the data files that commit added hold every row that
//! appeared since, and each of them held only live rows (an append or a
//! replace adds only new rows; a replace removes old ones with position
//! deletes, never pointing at the files it adds). An overwrite's or an
//! upsert's added files hold more than the changed rows (all rows, or the
//! rows it rewrote): a superset, which readers that recompute whole versions
//! take as they are (an unchanged version gives equal rows).
//!
//! The rows come from one of two places ([`AddedRows`]):
//! - **kept**: the rows the writer of this process kept in memory when it
//!   committed them (small commits: [`super::commit::Write::keep_added`]);
//! - **files**: a lazy scan of the added data files by DataFusion's Parquet
//!   reader. Nothing is read until a plan runs, and then only the columns
//!   and row groups it needs, streamed: a commit of millions of rows is
//!   never held in memory.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{EmptyRelation, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;
use iceberg::spec::ManifestContentType;

use super::catalog::{LoadedTable, Warehouse};
use super::read::is_compaction;
use super::schema::{arrow_schema, project_by_name};
use crate::error::{Error, ErrorKind, Result};

/// Where the rows a commit added are (see the module docs).
#[derive(Debug, Clone)]
pub enum AddedRows {
    /// Kept in memory by this process's writer.
    Kept(Vec<RecordBatch>),
    /// In these data files (locations as written in the table's metadata).
    Files(Vec<String>),
}

impl AddedRows {
    /// The rows when they are in memory.
    pub fn kept(&self) -> Option<&[RecordBatch]> {
        match self {
            AddedRows::Kept(rows) => Some(rows),
            AddedRows::Files(_) => None,
        }
    }

    /// A scan named `name`, of `schema` (the table's, as its scans give
    /// it), of these rows.
    pub fn plan(
        &self,
        ctx: &SessionContext,
        wh: &Warehouse,
        name: &str,
        schema: SchemaRef,
    ) -> Result<LogicalPlan> {
        match self {
            AddedRows::Kept(rows) => {
                // The scan's schema may differ from the rows' in metadata
                // only (field ids): the columns are taken under it.
                let rows = rows
                    .iter()
                    .map(|b| {
                        let b = project_by_name(b, &schema)?;
                        Ok(RecordBatch::try_new(
                            Arc::clone(&schema),
                            b.columns().to_vec(),
                        )?)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let table = datafusion::datasource::MemTable::try_new(schema, vec![rows])?;
                Ok(
                    LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?
                        .build()?,
                )
            }
            AddedRows::Files(files) => files_plan(ctx, wh, name, schema, files),
        }
    }
}

/// The rows that appeared in `table` since snapshot `since` (read earlier),
/// when the current snapshot follows `since` through at most one commit
/// that changed rows and any number of compactions (which change none):
/// the rows that commit added. `None` when it does not, or the table has
/// no snapshot: read the table instead. No rows when only compactions (or
/// nothing) followed `since`.
///
/// A commit followed by a compaction no longer has its added files live,
/// but they still hold exactly its rows, and they exist: upkeep keeps every
/// snapshot from the one a reader recorded onwards
/// ([`crate::storage::upkeep`]).
pub async fn rows_added_since(
    wh: &Warehouse,
    table: &LoadedTable,
    since: i64,
) -> Result<Option<AddedRows>> {
    let m = table.metadata();
    let Some(mut s) = m.current_snapshot() else {
        return Ok(None);
    };
    let mut changed = None;
    while s.snapshot_id() != since {
        if !is_compaction(s) {
            if changed.is_some() {
                return Ok(None);
            }
            changed = Some(s);
        }
        match s.parent_snapshot_id().and_then(|p| m.snapshot_by_id(p)) {
            Some(parent) => s = parent,
            None => return Ok(None),
        }
    }
    let Some(current) = changed else {
        return Ok(Some(AddedRows::Kept(vec![])));
    };
    if let Some(rows) = wh
        .cache()
        .added(table.metadata().location(), current.snapshot_id())
    {
        let target = arrow_schema(table.metadata().current_schema())?;
        return Ok(Some(AddedRows::Kept(
            rows.iter()
                .map(|b| project_by_name(b, &target))
                .collect::<Result<_>>()?,
        )));
    }
    let list = table.table.manifest_list_reader(current).load().await?;
    let mut files = Vec::new();
    for mf in list.entries().iter().filter(|mf| {
        mf.content == ManifestContentType::Data && mf.added_snapshot_id == current.snapshot_id()
    }) {
        let m = wh.cache().manifest(mf).await?;
        files.extend(
            m.entries()
                .iter()
                .filter(|e| e.status() == iceberg::spec::ManifestStatus::Added)
                .map(|e| e.data_file().file_path().to_string()),
        );
    }
    Ok(Some(AddedRows::Files(files)))
}

/// A lazy scan named `name` of the Parquet data `files` of the warehouse,
/// read as `schema` (columns matched by name). The warehouse's object store
/// is registered in `ctx`'s runtime under a URL of its own.
pub fn files_plan(
    ctx: &SessionContext,
    wh: &Warehouse,
    name: &str,
    schema: SchemaRef,
    files: &[String],
) -> Result<LogicalPlan> {
    if files.is_empty() {
        return Ok(LogicalPlan::EmptyRelation(EmptyRelation {
            produce_one_row: false,
            schema: Arc::new(datafusion::common::DFSchema::try_from_qualified_schema(
                name,
                schema.as_ref(),
            )?),
        }));
    }
    let root = store_url(wh);
    let url = url::Url::parse(&root)
        .map_err(|e| Error::internal(format!("warehouse store URL {root}: {e}")))?;
    ctx.runtime_env()
        .register_object_store(&url, Arc::clone(wh.store()));
    let urls = files
        .iter()
        .map(|f| {
            let path = wh.url().location_to_path(f)?;
            ListingTableUrl::parse(format!("{root}{path}"))
                .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("data file {f}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension("");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config)?;
    Ok(LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?.build()?)
}

/// The URL the warehouse's object store is registered under in DataFusion's
/// runtime: one per warehouse root, so two warehouses never share it.
fn store_url(wh: &Warehouse) -> String {
    format!(
        "lakehouse-warehouse://{:032x}/",
        twox_hash::XxHash3_128::oneshot(wh.url().root_url().as_bytes())
    )
}
