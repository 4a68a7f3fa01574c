//! Scans restricted to a set of key values, pushed into the Iceberg scan.
//!
//! Incremental builds read a few hundred or thousand rows of a table by key
//! (the versions to recompute, the parents those versions join). A join
//! with the keys would decode every column of every row before discarding
//! most of them; an `IN` list in the logical plan would be walked, literal
//! by literal, by each optimizer pass. A [`RestrictedTable`] does neither:
//! its scan hands `column IN (values)` to the Iceberg scan, which evaluates
//! it as a Parquet row filter (the key column is decoded for every row, the
//! other columns only for the rows that match; row groups whose statistics
//! exclude every value are skipped), and the logical plan never sees it.
//!
//! Invariant: a restricted scan returns exactly the rows of the table whose
//! `column` equals one of the values (NULL matches nothing). The Iceberg
//! provider declares its filtering inexact, so the rows it returns are
//! tested again (a hash-set probe over the few rows left).

use std::any::Any;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType, col, lit};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, Literal, in_list};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::limit::GlobalLimitExec;
use datafusion::physical_plan::projection::ProjectionExec;

use crate::error::{Error, Result};

/// A table provider reading only the rows of `inner` whose `column` holds
/// one of `values` (see the module docs).
#[derive(Debug)]
pub struct RestrictedTable {
    inner: Arc<dyn TableProvider>,
    column: String,
    values: Arc<Vec<ScalarValue>>,
}

impl RestrictedTable {
    /// Restrict `inner` to rows whose `column` is one of `values` (cast to
    /// the column's type; NULL values are dropped, as they match nothing).
    pub fn try_new(
        inner: Arc<dyn TableProvider>,
        column: &str,
        values: impl IntoIterator<Item = ScalarValue>,
    ) -> Result<Self> {
        let schema = inner.schema();
        let field = schema.field_with_name(column).map_err(|_| {
            Error::invalid(format!("cannot restrict a scan on missing column {column}"))
        })?;
        let mut cast = Vec::new();
        for v in values {
            if v.is_null() {
                continue;
            }
            cast.push(v.cast_to(field.data_type())?);
        }
        cast.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        cast.dedup();
        Ok(Self {
            inner,
            column: column.to_string(),
            values: Arc::new(cast),
        })
    }

    /// The provider restricted.
    pub fn inner(&self) -> &Arc<dyn TableProvider> {
        &self.inner
    }

    /// The column restricted on.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The values kept (cast to the column's type, sorted, distinct).
    pub fn values(&self) -> &[ScalarValue] {
        &self.values
    }
}

#[async_trait]
impl TableProvider for RestrictedTable {
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
        let schema = self.inner.schema();
        if self.values.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(schema.project(p)?),
                None => schema,
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        let key = schema.index_of(&self.column)?;
        // Scan the key column too (the re-check needs it), dropped after.
        let wanted: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..schema.fields().len()).collect());
        let mut scanned = wanted.clone();
        if !scanned.contains(&key) {
            scanned.push(key);
        }
        let mut pushed = filters.to_vec();
        pushed.push(
            col(datafusion::common::Column::from_name(&self.column))
                .in_list(self.values.iter().cloned().map(lit).collect(), false),
        );
        // The limit applies after the re-check, never inside the scan.
        let scan = self
            .inner
            .scan(state, Some(&scanned), &pushed, None)
            .await?;
        let scan_schema = scan.schema();
        let at = scan_schema.index_of(&self.column)?;
        let list: Vec<Arc<dyn PhysicalExpr>> = self
            .values
            .iter()
            .map(|v| Arc::new(Literal::new(v.clone())) as Arc<dyn PhysicalExpr>)
            .collect();
        let test = in_list(
            Arc::new(Column::new(&self.column, at)),
            list,
            &false,
            &scan_schema,
        )?;
        let mut plan: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(test, scan)?);
        if scanned.len() != wanted.len() {
            let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = (0..wanted.len())
                .map(|i| {
                    let name = scan_schema.field(i).name().clone();
                    (
                        Arc::new(Column::new(&name, i)) as Arc<dyn PhysicalExpr>,
                        name,
                    )
                })
                .collect();
            plan = Arc::new(ProjectionExec::try_new(exprs, plan)?);
        }
        if let Some(n) = limit {
            plan = Arc::new(GlobalLimitExec::new(plan, 0, Some(n)));
        }
        Ok(plan)
    }
}
