//! Warehouse upkeep over many tables: `lakehouse maintain`, and the upkeep
//! `elt` runs after its models when the project enables it (the default).
//!
//! Per table the work is [`Warehouse::upkeep_table`]'s (compaction,
//! snapshot expiry, orphan removal). What this layer adds:
//! - **the run lock**: upkeep commits and deletes files, so it runs only
//!   while holding the lock (`maintain` takes it; `elt` already holds it);
//! - **the run state**: every model records the snapshot of each input it
//!   read (`lakehouse.dep.<table>`), and its next incremental build reads
//!   what was added since. Those snapshots, and every newer one, are
//!   protected from expiry;
//! - the run lock's own history, pruned to its newest entries.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use futures::StreamExt;

use super::lock::RunLock;
use super::plan::{DEP_PREFIX, load_tables};
use crate::budget::MemoryBudget;
use crate::error::{Error, Result};
use crate::storage::upkeep::{TableUpkeep, UpkeepPolicy};
use crate::storage::{LoadedTable, TableName, Warehouse};

/// Run-lock entries kept by upkeep.
const LOCK_ENTRIES_KEPT: usize = 16;

/// Tables kept up at once.
const CONCURRENT_TABLES: usize = 8;

/// Options of `maintain`.
#[derive(Debug, Clone, Default)]
pub struct MaintainOptions {
    /// Only tables whose `<namespace>.<table>` matches this glob.
    pub tables: Option<String>,
    pub policy: UpkeepPolicy,
    /// The memory budget compaction's sorts run under.
    pub budget: MemoryBudget,
}

/// What upkeep did to the warehouse.
#[derive(Debug, Clone, Default)]
pub struct UpkeepReport {
    /// Tables it looked at, with what it did to each.
    pub tables: Vec<TableUpkeep>,
    /// Old run-lock entries deleted (path in the store, bytes).
    pub lock_entries: Vec<(String, u64)>,
    pub seconds: f64,
}

impl UpkeepReport {
    /// Files deleted (or, in a dry run, to be deleted) and their bytes.
    pub fn deleted(&self) -> (usize, u64) {
        self.tables.iter().map(TableUpkeep::deleted).fold(
            (
                self.lock_entries.len(),
                self.lock_entries.iter().map(|e| e.1).sum(),
            ),
            |(n, b), (m, c)| (n + m, b + c),
        )
    }
}

/// `lakehouse maintain`: take the run lock, keep the tables up, free it.
pub async fn maintain(
    wh: &Warehouse,
    options: &MaintainOptions,
    lock_ttl: std::time::Duration,
) -> Result<UpkeepReport> {
    let lock = RunLock::acquire(wh, "maintain", lock_ttl).await?;
    let result = upkeep_locked(wh, options, &lock).await;
    lock.release().await?;
    result
}

/// Keep the warehouse's tables up while `lock` is held.
pub async fn upkeep_locked(
    wh: &Warehouse,
    options: &MaintainOptions,
    lock: &RunLock,
) -> Result<UpkeepReport> {
    let t0 = Instant::now();
    let pattern = options
        .tables
        .as_deref()
        .map(|g| {
            glob::Pattern::new(g)
                .map_err(|e| Error::invalid(format!("--tables '{g}' is not a valid glob: {e}")))
        })
        .transpose()?;
    let tables = load_tables(wh, |_| true).await?;
    let protected = protected_snapshots(&tables);
    let chosen: Vec<TableName> = tables
        .values()
        .map(|t| t.name.clone())
        .filter(|n| pattern.as_ref().is_none_or(|p| p.matches(&n.to_string())))
        .collect();
    if let (Some(g), true) = (&options.tables, chosen.is_empty()) {
        return Err(Error::not_found(format!("no table matches --tables '{g}'")));
    }
    let ctx = options.budget.context()?;
    let none = HashSet::new();
    let mut done: Vec<TableUpkeep> = futures::stream::iter(chosen)
        .map(|name| {
            let (ctx, protected, policy) = (&ctx, &protected, &options.policy);
            let none = &none;
            async move {
                lock.check()?;
                let keep = protected.get(&name.to_string()).unwrap_or(none);
                wh.upkeep_table(ctx, &name, policy, keep).await
            }
        })
        .buffer_unordered(CONCURRENT_TABLES)
        .collect::<Vec<Result<TableUpkeep>>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    done.sort_by(|a, b| a.table.cmp(&b.table));
    let lock_entries = lock
        .prune_history(LOCK_ENTRIES_KEPT, options.policy.dry_run)
        .await?;
    Ok(UpkeepReport {
        tables: done,
        lock_entries,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The snapshots each table's readers recorded (`lakehouse.dep.<table>` of
/// every table's current snapshot), by table.
fn protected_snapshots(tables: &BTreeMap<String, LoadedTable>) -> HashMap<String, HashSet<i64>> {
    let mut out: HashMap<String, HashSet<i64>> = HashMap::new();
    for t in tables.values() {
        for (k, v) in t.current_properties() {
            if let (Some(dep), Ok(id)) = (k.strip_prefix(DEP_PREFIX), v.parse::<i64>()) {
                out.entry(dep.to_string()).or_default().insert(id);
            }
        }
    }
    out
}
