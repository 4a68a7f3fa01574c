//! What a run would do: compare each model's recorded state (snapshot
//! properties of its table) with the DAG.
//!
//! Every model commit records `lakehouse.fingerprint` (its plan's hash),
//! `lakehouse.dep.<ns.table>` (the snapshot of each input it read) and
//! `lakehouse.dep-epoch.<ns.table>` (each input's epoch, which changes on
//! every full build of that input). Then:
//! - **new**: the table does not exist -> full build;
//! - **changed**: the fingerprint differs, an input was rebuilt in full
//!   since the model was built (its epoch moved: e.g. a run that rebuilt it
//!   failed before this model), or an upstream model is being rebuilt in
//!   full -> full build (the model and all its descendants);
//! - **stale**: an input's last snapshot that changed rows differs from the
//!   recorded one (a compaction changes none) -> incremental build; so is every descendant of a model being built;
//! - **up to date**: nothing to do.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::registry::{Dag, ModelKind};
use crate::error::Result;
use crate::model::build::EPOCH;
use crate::storage::{LoadedTable, TableName, Warehouse};

/// Snapshot property: the model's fingerprint.
pub const FINGERPRINT: &str = "lakehouse.fingerprint";
pub use crate::model::build::{DEP_EPOCH_PREFIX, DEP_PREFIX};

/// Why a model is (or is not) built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    New,
    Changed,
    Stale,
    UpToDate,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::New => "new",
            Status::Changed => "changed",
            Status::Stale => "stale",
            Status::UpToDate => "up to date",
        })
    }
}

/// The plan for one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Index in `Dag::nodes`.
    pub node: usize,
    pub status: Status,
    pub reason: String,
    /// Live rows of the model's table when planned (0 when not built yet):
    /// what a run weighs its builds by (see [`Planned::cost`]).
    pub rows: u64,
}

impl Planned {
    /// Whether the model is built in full.
    pub fn full(&self) -> bool {
        matches!(self.status, Status::New | Status::Changed)
    }

    /// The build's estimated cost, for ordering a run: one unit per model
    /// (a build's fixed cost: loading, planning, committing is tens of
    /// milliseconds) plus one per [`ROWS_PER_COST_UNIT`] rows of its table (a
    /// bigger table has more rows to recompute, search and rewrite).
    pub fn cost(&self) -> u64 {
        1 + self.rows / ROWS_PER_COST_UNIT
    }
}

/// Table rows that weigh as much as a model's fixed cost in [`Planned::cost`].
pub const ROWS_PER_COST_UNIT: u64 = 20_000;

/// The current state of a table, as models record it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableState {
    /// The snapshot that last changed rows ([`LoadedTable::data_snapshot_id`]:
    /// compactions do not count; `None`: no snapshot).
    pub snapshot: Option<i64>,
    /// Its epoch property (empty when it has none, e.g. DAS tables).
    pub epoch: String,
}

/// The warehouse's tables for which `keep` holds, at their newest versions,
/// by `<ns>.<name>`.
pub async fn load_tables(
    wh: &Warehouse,
    keep: impl Fn(&TableName) -> bool,
) -> Result<BTreeMap<String, LoadedTable>> {
    Ok(wh
        .load_all_tables(keep)
        .await?
        .into_iter()
        .map(|t| (t.name.to_string(), t))
        .collect())
}

fn state_of(t: &LoadedTable) -> TableState {
    TableState {
        snapshot: t.data_snapshot_id(),
        epoch: t
            .current_properties()
            .get(EPOCH)
            .cloned()
            .unwrap_or_default(),
    }
}

/// Plan every non-raw model. `force_full` plans every model as changed.
pub async fn plan(wh: &Warehouse, dag: &Dag, force_full: bool) -> Result<Vec<Planned>> {
    Ok(plan_with(
        dag,
        force_full,
        &load_tables(wh, |_| true).await?,
    ))
}

/// [`plan`] over `tables`: every table of the warehouse, loaded at its
/// newest version (see [`load_tables`]).
pub fn plan_with(
    dag: &Dag,
    force_full: bool,
    tables: &BTreeMap<String, LoadedTable>,
) -> Vec<Planned> {
    let mut planned: Vec<Option<Planned>> = vec![None; dag.nodes.len()];
    let mut full_roots = BTreeSet::new();
    for (i, node) in dag.nodes.iter().enumerate() {
        if node.kind == ModelKind::Raw {
            continue;
        }
        let t = tables.get(&node.name.to_string());
        let status = match t {
            None => (Status::New, "not built yet".to_string()),
            Some(_) if force_full => (Status::Changed, "full rebuild requested".to_string()),
            Some(t) => {
                let props = t.current_properties();
                let deps: Vec<(String, TableState)> = node
                    .deps
                    .iter()
                    .map(|&d| {
                        let dep = dag.nodes[d].name.to_string();
                        let state = tables.get(&dep).map(state_of).unwrap_or_default();
                        (dep, state)
                    })
                    .collect();
                let rebuilt: Vec<&str> = deps
                    .iter()
                    .filter(|(dep, state)| {
                        props.get(&format!("{DEP_EPOCH_PREFIX}{dep}")) != Some(&state.epoch)
                    })
                    .map(|(dep, _)| dep.as_str())
                    .collect();
                if props.get(FINGERPRINT) != Some(&node.fingerprint) {
                    (Status::Changed, "its plan or config changed".to_string())
                } else if !rebuilt.is_empty() {
                    (
                        Status::Changed,
                        format!("rebuilt in full since: {}", rebuilt.join(", ")),
                    )
                } else {
                    let moved: Vec<&str> = deps
                        .iter()
                        .filter(|(dep, state)| {
                            let seen = props
                                .get(&format!("{DEP_PREFIX}{dep}"))
                                .and_then(|v| v.parse::<i64>().ok());
                            state.snapshot != seen
                        })
                        .map(|(dep, _)| dep.as_str())
                        .collect();
                    if moved.is_empty() {
                        (Status::UpToDate, String::new())
                    } else {
                        (Status::Stale, format!("new data in {}", moved.join(", ")))
                    }
                }
            }
        };
        if matches!(status.0, Status::New | Status::Changed) {
            full_roots.insert(i);
        }
        planned[i] = Some(Planned {
            node: i,
            status: status.0,
            reason: status.1,
            rows: t.map_or(0, LoadedTable::row_count),
        });
    }
    // Descendants of a full rebuild are rebuilt in full too; descendants of
    // any other build are at least stale (their input will change).
    for d in dag.descendants(&full_roots) {
        if let Some(p) = planned[d].as_mut()
            && !p.full()
        {
            p.status = Status::Changed;
            p.reason = "an upstream model is rebuilt in full".to_string();
        }
    }
    let building: BTreeSet<usize> = planned
        .iter()
        .flatten()
        .filter(|p| p.status != Status::UpToDate)
        .map(|p| p.node)
        .collect();
    for d in dag.descendants(&building) {
        if let Some(p) = planned[d].as_mut()
            && p.status == Status::UpToDate
        {
            p.status = Status::Stale;
            p.reason = "an upstream model is rebuilt".to_string();
        }
    }
    planned.into_iter().flatten().collect()
}
