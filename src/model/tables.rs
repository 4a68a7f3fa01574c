//! How models name and read warehouse tables: the frames' namespace, the
//! snapshot properties a build records, and scans of loaded tables as
//! logical plans (whole, or restricted to rows with given key values).
//! Below the builders ([`super::build`], [`super::dar`],
//! [`super::incremental`]), which all use it.

use std::sync::Arc;

use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::TableReference;

use crate::error::Result;
use crate::storage::{AsOf, LoadedTable};

/// Snapshot property: latest DAS load time (micros, UTC) reflected in the table.
pub const WATERMARK: &str = "lakehouse.watermark";
/// Snapshot property: the DAS snapshot the build read.
pub const SOURCE_SNAPSHOT: &str = "lakehouse.source-snapshot";

/// Snapshot property: changes (a new UUID) on every full build; kept by
/// incremental builds.
pub const EPOCH: &str = "lakehouse.epoch";

/// Snapshot property prefix: `lakehouse.dep.<ns.table>` = snapshot id of
/// an input read by the build (written by the DAG runner).
pub const DEP_PREFIX: &str = "lakehouse.dep.";
/// Snapshot property prefix: `lakehouse.dep-epoch.<ns.table>` = the input's
/// [`EPOCH`] when read; empty if it had none.
pub const DEP_EPOCH_PREFIX: &str = "lakehouse.dep-epoch.";

/// The DAB namespace.
pub const DAB: &str = "dab";

/// A scan of a loaded table as a logical plan named `<ns>.<table>`, and the
/// snapshot it reads.
pub async fn loaded_scan_plan(t: &LoadedTable, as_of: AsOf) -> Result<(LogicalPlan, Option<i64>)> {
    let snapshot = t.resolve(as_of)?;
    let provider = t.provider(as_of).await?;
    let plan = LogicalPlanBuilder::scan(
        TableReference::partial(t.name.namespace.clone(), t.name.name.clone()),
        provider_as_source(provider),
        None,
    )?
    .build()?;
    Ok((plan, snapshot))
}

/// A scan of `t` as of `as_of` restricted to rows whose `column` holds one
/// of `values` ([`crate::storage::restrict`]), named like
/// [`loaded_scan_plan`]'s.
pub async fn restricted_scan_plan(
    t: &LoadedTable,
    as_of: AsOf,
    column: &str,
    values: Vec<datafusion::common::ScalarValue>,
) -> Result<LogicalPlan> {
    let provider = crate::storage::restrict::RestrictedTable::try_new(
        t.provider(as_of).await?,
        column,
        values,
    )
    .map_err(|e| e.context(format!("restricting a scan of {}", t.name)))?;
    Ok(LogicalPlanBuilder::scan(
        TableReference::partial(t.name.namespace.clone(), t.name.name.clone()),
        provider_as_source(Arc::new(provider)),
        None,
    )?
    .build()?)
}
