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
//! - the run lock's own history, pruned to its newest entries;
//! - after `elt`, orphans are swept only when due (the last sweep, kept in
//!   `_lakehouse/upkeep/`, is older than half the orphan age); `maintain`
//!   always sweeps.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use futures::StreamExt;
use object_store::ObjectStoreExt;

use super::lock::RunLock;
use super::plan::{DEP_PREFIX, load_tables};
use crate::budget::MemoryBudget;
use crate::error::{Error, Result};
use crate::storage::upkeep::{TableUpkeep, UpkeepPolicy};
use crate::storage::{LoadedTable, Warehouse};

/// Run-lock entries kept by upkeep.
const LOCK_ENTRIES_KEPT: usize = 16;

/// Tables kept up at once.
const CONCURRENT_TABLES: usize = 8;

/// Where the time of the last orphan sweep is kept.
const LAST_SWEEP: &str = "_lakehouse/upkeep/last-orphan-sweep";

/// Options of `maintain`.
#[derive(Debug, Clone, Default)]
pub struct MaintainOptions {
    /// Only tables whose `<namespace>.<table>` matches this glob.
    pub tables: Option<String>,
    pub policy: UpkeepPolicy,
    /// The memory budget compactions run under.
    pub budget: MemoryBudget,
    /// Sweep orphans only when the last sweep is older than half the
    /// orphan age (the upkeep after `elt`: a file becomes an orphan only
    /// once that old, so sweeping more often finds little, and each sweep
    /// lists every table and reads all its snapshots).
    pub orphans_when_due: bool,
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
    /// The tables upkeep failed on, with the cause, one line each.
    pub fn failures(&self) -> Vec<String> {
        self.tables
            .iter()
            .filter_map(|t| {
                let name = t.table.as_ref()?;
                t.failed.as_ref().map(|e| format!("{name}: {e}"))
            })
            .collect()
    }

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
    let chosen: Vec<&LoadedTable> = tables
        .values()
        .filter(|t| {
            pattern
                .as_ref()
                .is_none_or(|p| p.matches(&t.name.to_string()))
        })
        .collect();
    if let (Some(g), true) = (&options.tables, chosen.is_empty()) {
        return Err(Error::not_found(format!("no table matches --tables '{g}'")));
    }
    let ctx = options.budget.context()?;
    let none = HashSet::new();
    let mut policy = options.policy.clone();
    if policy.orphans && options.orphans_when_due && options.tables.is_none() {
        policy.orphans = sweep_due(wh, policy.orphan_age).await?;
    }
    let swept = policy.orphans && !policy.dry_run && options.tables.is_none();
    let mut done: Vec<TableUpkeep> = futures::stream::iter(chosen)
        .map(|table| {
            let (ctx, protected, policy) = (&ctx, &protected, &policy);
            let none = &none;
            let name = table.name.clone();
            async move {
                lock.check()?;
                let keep = protected.get(&name.to_string()).unwrap_or(none);
                // One table failing (say, a file it cannot read) does not
                // stop the others; the report names it.
                Ok(wh
                    .upkeep_loaded(ctx, table.clone(), policy, keep)
                    .await
                    .unwrap_or_else(|e| TableUpkeep {
                        table: Some(name.clone()),
                        failed: Some(e.detail()),
                        ..TableUpkeep::default()
                    }))
            }
        })
        .buffer_unordered(CONCURRENT_TABLES)
        .collect::<Vec<Result<TableUpkeep>>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    done.sort_by(|a, b| a.table.cmp(&b.table));
    if swept {
        let now = chrono::Utc::now().timestamp_millis().to_string();
        wh.store()
            .put(&wh.url().store_path(LAST_SWEEP), now.into_bytes().into())
            .await
            .map_err(|e| Error::from(e).context("cannot record the orphan sweep"))?;
    }
    let lock_entries = lock
        .prune_history(LOCK_ENTRIES_KEPT, options.policy.dry_run)
        .await?;
    Ok(UpkeepReport {
        tables: done,
        lock_entries,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Whether an orphan sweep is due: none recorded, or the last one is older
/// than half of `orphan_age`.
async fn sweep_due(wh: &Warehouse, orphan_age: std::time::Duration) -> Result<bool> {
    let last = match wh.store().get(&wh.url().store_path(LAST_SWEEP)).await {
        Ok(got) => got.bytes().await.ok().and_then(|b| {
            std::str::from_utf8(&b)
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
        }),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(Error::from(e).context("cannot read the last orphan sweep")),
    };
    let half = (orphan_age.as_millis() / 2) as i64;
    Ok(last.is_none_or(|t| chrono::Utc::now().timestamp_millis() - t >= half))
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
