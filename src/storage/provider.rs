//! The table provider every warehouse scan goes through.
//!
//! [`SnapshotTable`] reads one Iceberg table at one snapshot through
//! iceberg-datafusion's static provider, and remembers what it reads (the
//! table, with its metadata and location, and the snapshot), which the
//! static provider keeps private. That identity is what a plan codec needs
//! to ship a scan to another process ([`crate::codec`]).
//!
//! Invariant: a `SnapshotTable` behaves exactly as the static provider it
//! wraps (same schema, filters pushed down inexactly, same scan plan).

use std::any::Any;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use iceberg::table::Table;
use iceberg_datafusion::IcebergStaticTableProvider;

use crate::error::Result;

/// A read-only provider of `table` at `snapshot_id` (the current snapshot
/// when `None`).
#[derive(Debug, Clone)]
pub struct SnapshotTable {
    table: Table,
    snapshot_id: Option<i64>,
    inner: IcebergStaticTableProvider,
}

impl SnapshotTable {
    /// The provider of `table` at `snapshot_id`; an unknown snapshot id is
    /// an error.
    pub async fn try_new(table: Table, snapshot_id: Option<i64>) -> Result<Self> {
        let inner = match snapshot_id {
            None => IcebergStaticTableProvider::try_new_from_table(table.clone()).await?,
            Some(id) => {
                IcebergStaticTableProvider::try_new_from_table_snapshot(table.clone(), id).await?
            }
        };
        Ok(Self {
            table,
            snapshot_id,
            inner,
        })
    }

    /// The table read (its metadata at the version loaded).
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The snapshot read, or `None` for the table's current one.
    pub fn snapshot_id(&self) -> Option<i64> {
        self.snapshot_id
    }
}

#[async_trait]
impl TableProvider for SnapshotTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.inner.scan(state, projection, filters, limit).await
    }
}
