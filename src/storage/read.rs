//! Reading the warehouse through DataFusion: table providers, registration
//! of every table as `<namespace>.<table>`, time travel and history.
//!
//! Scans use iceberg-datafusion's static provider (wrapped in
//! [`super::provider::SnapshotTable`]) over a table loaded at one
//! metadata version, so a query sees one consistent snapshot per table even
//! while writers commit.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use datafusion::catalog::{MemorySchemaProvider, TableProvider};
use datafusion::prelude::SessionContext;

use super::catalog::{LoadedTable, TableName, Warehouse};
use crate::error::{Error, Result};

/// Which state of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AsOf {
    /// The current snapshot.
    #[default]
    Latest,
    /// A snapshot by id.
    Snapshot(i64),
    /// The snapshot that was current at this instant.
    Timestamp(DateTime<Utc>),
}

/// One entry of a table's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub snapshot_id: i64,
    pub parent_id: Option<i64>,
    pub sequence_number: i64,
    pub committed_at: DateTime<Utc>,
    pub operation: String,
    /// `total-records` after this snapshot.
    pub total_records: Option<u64>,
    pub summary: HashMap<String, String>,
}

/// Row and snapshot counts of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    pub name: TableName,
    pub rows: u64,
    pub snapshots: usize,
    pub version: u64,
}

impl LoadedTable {
    /// Resolve `as_of` to a snapshot id (`None`: the table has no snapshot yet).
    pub fn resolve(&self, as_of: AsOf) -> Result<Option<i64>> {
        let m = self.metadata();
        match as_of {
            AsOf::Latest => Ok(m.current_snapshot_id()),
            AsOf::Snapshot(id) => m
                .snapshot_by_id(id)
                .map(|s| Some(s.snapshot_id()))
                .ok_or_else(|| {
                    Error::not_found(format!("table {} has no snapshot {id}", self.name))
                }),
            AsOf::Timestamp(ts) => {
                let t = ts.timestamp_millis();
                let found = m
                    .history()
                    .iter()
                    .filter(|l| l.timestamp_ms <= t)
                    .max_by_key(|l| l.timestamp_ms)
                    .map(|l| l.snapshot_id);
                if let Some(id) = found {
                    return Ok(Some(id));
                }
                // The oldest snapshot kept names a parent that is gone: the
                // table existed then, but upkeep expired that history.
                let oldest = self.history().into_iter().next();
                if let Some(o) = oldest.filter(|o| o.parent_id.is_some()) {
                    return Err(Error::invalid(format!(
                        "table {} had no snapshot at {}: its history now starts at {} \
                         (older snapshots expired; upkeep keeps `retain`, see `lakehouse maintain`)",
                        self.name,
                        ts.to_rfc3339(),
                        o.committed_at.to_rfc3339()
                    )));
                }
                Err(Error::not_found(format!(
                    "table {} had no snapshot at {}",
                    self.name,
                    ts.to_rfc3339()
                )))
            }
        }
    }

    /// The newest snapshot of the current history that changed rows: the
    /// current snapshot, or, when compactions followed it, the snapshot
    /// before them. Readers that follow a table's changes compare this id
    /// (a compaction is not a change; see [`is_compaction`]).
    pub fn data_snapshot_id(&self) -> Option<i64> {
        let chain = self.ancestry();
        chain
            .iter()
            .find(|s| !is_compaction(s))
            .or(chain.last())
            .map(|s| s.snapshot_id())
    }

    /// The summary properties of the current snapshot (empty if none).
    pub fn current_properties(&self) -> HashMap<String, String> {
        self.metadata()
            .current_snapshot()
            .map(|s| s.summary().additional_properties.clone())
            .unwrap_or_default()
    }

    /// Rows in the current snapshot.
    pub fn row_count(&self) -> u64 {
        live_records(&self.current_properties()).unwrap_or(0)
    }

    /// The snapshots reachable from the current one, oldest first.
    pub fn history(&self) -> Vec<SnapshotInfo> {
        let mut chain = Vec::new();
        for s in self.ancestry() {
            let summary = s.summary().additional_properties.clone();
            chain.push(SnapshotInfo {
                snapshot_id: s.snapshot_id(),
                parent_id: s.parent_snapshot_id(),
                sequence_number: s.sequence_number(),
                committed_at: DateTime::from_timestamp_millis(s.timestamp_ms()).unwrap_or_default(),
                operation: s.summary().operation.as_str().to_string(),
                total_records: live_records(&summary),
                summary,
            });
        }
        chain.reverse();
        chain
    }

    /// The current snapshot and its ancestors still in the metadata, newest
    /// first.
    pub fn ancestry(&self) -> Vec<&iceberg::spec::SnapshotRef> {
        let m = self.metadata();
        let mut chain = Vec::new();
        let mut next = m.current_snapshot();
        while let Some(s) = next {
            chain.push(s);
            next = s.parent_snapshot_id().and_then(|p| m.snapshot_by_id(p));
        }
        chain
    }

    /// A DataFusion provider reading this table as of `as_of`
    /// ([`super::provider::SnapshotTable`]).
    pub async fn provider(&self, as_of: AsOf) -> Result<Arc<dyn TableProvider>> {
        let snapshot = match as_of {
            AsOf::Latest => None,
            _ => self.resolve(as_of)?,
        };
        Ok(Arc::new(
            super::provider::SnapshotTable::try_new(self.table.clone(), snapshot).await?,
        ))
    }
}

/// Whether snapshot `s` rewrote files without changing any live row (an
/// Iceberg `replace` snapshot: our compactions, or another engine's).
pub fn is_compaction(s: &iceberg::spec::Snapshot) -> bool {
    s.summary().operation == iceberg::spec::Operation::Replace
}

/// Live rows of a snapshot from its summary: `total-records` minus
/// `total-position-deletes` (our commits never delete a position twice).
pub fn live_records(summary: &HashMap<String, String>) -> Option<u64> {
    let get = |k: &str| summary.get(k).and_then(|v| v.parse::<u64>().ok());
    let records = get("total-records")?;
    Some(records.saturating_sub(get("total-position-deletes").unwrap_or(0)))
}

impl Warehouse {
    /// Register every table of the warehouse in `ctx` as `<namespace>.<table>`
    /// (current snapshots). Returns the registered names.
    pub async fn register_all(&self, ctx: &SessionContext) -> Result<Vec<TableName>> {
        self.register_all_as_of(ctx, AsOf::Latest).await
    }

    /// Register every table as it was `as_of` (time travel over the whole
    /// warehouse). With a timestamp, tables that had no snapshot yet are left
    /// out; a table whose history at that time was expired is an error.
    /// Returns the registered names.
    pub async fn register_all_as_of(
        &self,
        ctx: &SessionContext,
        as_of: AsOf,
    ) -> Result<Vec<TableName>> {
        let mut registered = Vec::new();
        for name in self.list_all_tables().await? {
            let t = self.load_table(&name).await?;
            match t.resolve(as_of) {
                Ok(_) => {}
                Err(e)
                    if e.kind() == crate::ErrorKind::NotFound
                        && matches!(as_of, AsOf::Timestamp(_)) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
            self.register(ctx, &t, as_of).await?;
            registered.push(name);
        }
        Ok(registered)
    }

    /// Register one loaded table in `ctx` under its `<namespace>.<table>` name.
    pub async fn register(
        &self,
        ctx: &SessionContext,
        table: &LoadedTable,
        as_of: AsOf,
    ) -> Result<()> {
        let catalog_name = ctx
            .state()
            .config()
            .options()
            .catalog
            .default_catalog
            .clone();
        let catalog = ctx
            .catalog(&catalog_name)
            .ok_or_else(|| Error::internal(format!("catalog {catalog_name} missing")))?;
        if catalog.schema(&table.name.namespace).is_none() {
            catalog
                .register_schema(&table.name.namespace, Arc::new(MemorySchemaProvider::new()))?;
        }
        let reference = datafusion::sql::TableReference::partial(
            table.name.namespace.clone(),
            table.name.name.clone(),
        );
        ctx.deregister_table(reference.clone())?;
        ctx.register_table(reference, table.provider(as_of).await?)?;
        Ok(())
    }

    /// Read all rows of a table as of `as_of`.
    pub async fn scan(&self, name: &TableName, as_of: AsOf) -> Result<Vec<RecordBatch>> {
        let t = self.load_table(name).await?;
        let ctx = SessionContext::new();
        let df = ctx.read_table(t.provider(as_of).await?)?;
        Ok(df.collect().await?)
    }

    /// Row and snapshot counts of every table.
    pub async fn stats(&self) -> Result<Vec<TableStats>> {
        let mut out = Vec::new();
        for name in self.list_all_tables().await? {
            let t = self.load_table(&name).await?;
            out.push(TableStats {
                rows: t.row_count(),
                snapshots: t.metadata().snapshots().count(),
                version: t.version,
                name,
            });
        }
        Ok(out)
    }
}
