//! Incremental DAR builds: which rows of a DAR model an `elt` must
//! recompute, and the plans that recompute only those.
//!
//! # Change detection
//!
//! Every frame, bridge, event bridge and unified-bridge row carries a load
//! time (`record_loaded_at`: the latest DAS load of the versions it combines)
//! and an update time (`record_updated_at`: the load time while current,
//! else the time it stopped being valid, which is a later load time). A
//! model records, with its rows, the watermark `W` = the largest watermark of
//! its inputs when it was built. Loads are serialised by the run lock and
//! stamped with a monotone clock, so an input row that appeared or changed
//! since that build has `loaded_at > W` or `updated_at > W`: a new version is
//! loaded after `W`, a closed version's `updated_at` is the later load that
//! closed it, and a row combining such a version inherits its load time.
//!
//! # Affected rows
//!
//! DAR rows are recomputed per *version* (the frame's PIT hook, `own PIT`),
//! and all rows of an affected version are replaced (merge-on-read: the old
//! ones get position deletes):
//! - **bridge**: versions whose frame row changed, plus versions whose
//!   foreign hook names a parent key with a changed parent-bridge row (the
//!   parent's timeline, or an ancestor's, moved);
//! - **event bridge**: versions with a changed bridge row (a frame version,
//!   a parent or a related frame providing measure dates always changes some
//!   bridge row of the versions using it); with `count_if` measures, also
//!   every version in the same `per` group as a changed frame row, since
//!   first/repeat ranks are computed over the whole group;
//! - **peripheral**: versions whose frame row changed;
//! - **unified bridge**: per event bridge, the versions with a changed event
//!   row, matched on (`peripheral`, own PIT hook);
//! - **calendar**: rebuilt only when a changed unified row has a date outside
//!   the calendar's years (dates never disappear: versions are never
//!   removed, only closed).
//!
//! The unified bridge reads, of each event bridge, only the files its last
//! commit added when that commit directly follows the snapshot the unified
//! bridge last read: an event build replaces whole versions, so every row of
//! a version changed since then is in those files, and every version in
//! them is replaced whole (no restriction, no change filter: a version
//! rewritten unchanged replaces equal rows). An event bridge reads its
//! bridge's last commit the same way: the versions in it are the affected
//! ones (plus, with `count_if` measures, the rest of their rank groups), and
//! when they are all of them, those rows are the bridge rows it recomputes
//! from, without a restricted scan of the bridge (a replace commit adds only
//! new rows: the old ones get position deletes). The calendar looks for new
//! dates among the rows of the unified bridge's last commit the same way
//! (the rows a replace deletes hold no date its new rows lack: versions are
//! only ever closed, never removed).
//!
//! The recomputation reads the affected versions of the model's own frame
//! or bridge, and of each parent bridge (bridge) or related frame (event
//! bridge) the rows of the keys those versions join: every row a PIT join
//! of the affected versions can match, since rows of other keys never
//! match. So its result equals the full build's rows for those versions.
//! A bridge's or peripheral's own frame rows are those that found its
//! affected versions (changed rows, rows naming a changed parent key), read
//! whole and kept once per version: a frame holds one row per version, so
//! they are exactly the frame's rows of those versions.
//! An event bridge whose `count_if` measures rank within one `per` grouping
//! reads its frame restricted to the groups of the affected versions, each
//! group whole, so the ranks are those of the full build.
//! Every such restriction is a scan restricted to key values
//! ([`crate::storage::restrict`]), as are the lookups of the versions a
//! changed parent or rank group affects. Incremental equals full (decision
//! D6) is tested end to end in `tests/pipeline.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::logical_expr::{JoinType, LogicalPlan, LogicalPlanBuilder, col, lit};
use datafusion::prelude::SessionContext;

use super::bridge::{PERIPHERAL, bridge_column};
use super::config::Frame;
use super::dar::{Dar, DarKind, DarModel, entity};
use super::frame::prefixed;
use super::measures::Measure;
use super::peripheral::GHOST_RECORD;
use super::tables::{DAB, DEP_PREFIX, restricted_scan_plan};
use crate::das::ts_lit;
use crate::error::{Error, Result};
use crate::storage::added::{AddedRows, rows_added_since};
use crate::storage::commit::KeyMatch;
use crate::storage::{AsOf, LoadedTable, Warehouse};

/// The column holding affected PIT hooks in the union of their sources.
const AFFECTED: &str = "__affected_pit";

/// Rows of `plan` that appeared or changed after `since` (see module docs).
fn changed(
    plan: LogicalPlan,
    loaded: &str,
    updated: &str,
    since: i64,
) -> Result<LogicalPlanBuilder> {
    Ok(LogicalPlanBuilder::from(plan).filter(
        col(loaded)
            .gt(ts_lit(since))
            .or(col(updated).gt(ts_lit(since))),
    )?)
}

fn changed_frame_rows(frame: &Frame, scan: LogicalPlan, since: i64) -> Result<LogicalPlanBuilder> {
    changed(
        scan,
        &prefixed(frame, "record_loaded_at"),
        &prefixed(frame, "record_updated_at"),
        since,
    )
}

fn changed_bridge_rows(scan: LogicalPlan, since: i64) -> Result<LogicalPlanBuilder> {
    changed(
        scan,
        &bridge_column("record_loaded_at"),
        &bridge_column("record_updated_at"),
        since,
    )
}

/// Run a plan of one text column and return its distinct non-NULL values.
async fn collect_texts(ctx: &SessionContext, plan: LogicalPlan) -> Result<Vec<String>> {
    let column = plan.schema().field(0).name().clone();
    let plan = LogicalPlanBuilder::from(plan).distinct()?.build()?;
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    distinct_texts(&batches, &column)
}

/// Run a plan of one column and return its distinct non-NULL values.
async fn collect_values(ctx: &SessionContext, plan: LogicalPlan) -> Result<Vec<ScalarValue>> {
    let column = plan.schema().field(0).name().clone();
    let plan = LogicalPlanBuilder::from(plan).distinct()?.build()?;
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    distinct_values(&batches, &column)
}

/// The distinct non-NULL values of `column` in `batches`.
pub(crate) fn distinct_values(batches: &[RecordBatch], column: &str) -> Result<Vec<ScalarValue>> {
    let mut seen = std::collections::HashSet::new();
    for b in batches {
        let c = b.column(b.schema_ref().index_of(column)?);
        for i in 0..c.len() {
            if c.is_valid(i) {
                seen.insert(ScalarValue::try_from_array(c, i)?);
            }
        }
    }
    Ok(seen.into_iter().collect())
}

/// The distinct non-NULL values of text column `column` in `batches`, sorted.
fn distinct_texts(batches: &[RecordBatch], column: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        let c = arrow::compute::cast(b.column(b.schema_ref().index_of(column)?), &DataType::Utf8)?;
        let c = c
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::internal("affected keys are not text"))?;
        out.extend(c.iter().flatten().map(str::to_string));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The rows of `plan` in memory, as a scan named `name`.
async fn materialize(
    ctx: &SessionContext,
    name: &str,
    plan: LogicalPlan,
) -> Result<(LogicalPlan, Vec<RecordBatch>)> {
    let schema = Arc::new(plan.schema().as_arrow().clone());
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    Ok((memory_plan(name, schema, batches.clone())?, batches))
}

/// `rows` of input `key` as a scan of the input's schema.
fn in_memory(
    inputs: &HashMap<String, LogicalPlan>,
    key: &str,
    rows: Vec<RecordBatch>,
) -> Result<LogicalPlan> {
    let scan = inputs
        .get(key)
        .ok_or_else(|| Error::internal(format!("input {key} not provided")))?;
    memory_plan(key, Arc::new(scan.schema().as_arrow().clone()), rows)
}

/// The loaded input `key`.
fn loaded_input<'a>(
    loaded: &'a HashMap<String, LoadedTable>,
    key: &str,
) -> Result<&'a LoadedTable> {
    loaded
        .get(key)
        .ok_or_else(|| Error::internal(format!("input {key} not loaded")))
}

/// A scan named `name` of in-memory `batches` of `schema`.
fn memory_plan(name: &str, schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<LogicalPlan> {
    let table = MemTable::try_new(schema, vec![batches])?;
    Ok(LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?.build()?)
}

/// The affected versions of one frame and the plan restricting a table to them.
#[derive(Debug, Clone)]
pub struct Affected {
    /// The own PIT hook column (frame `i`'s primary PIT hook).
    pub pit_column: String,
    /// The affected PIT hook values, sorted.
    pub pits: Vec<String>,
    /// The rows of the model's own input (its frame; an event bridge's
    /// bridge) holding those versions, when finding them had them whole
    /// (bridges and peripherals read them; an event bridge without rank
    /// groups takes its bridge's last commit): the recompute takes them
    /// instead of scanning the input again.
    pub rows: Option<Vec<RecordBatch>>,
}

impl Affected {
    /// The versions of the frame rows `plan` finds (a UNION ALL of scans of
    /// the model's own frame, which may find a row more than once), with
    /// those rows, each once: a frame holds one row per version, so the
    /// rows of the versions found are exactly the rows found.
    async fn of_rows(ctx: &SessionContext, plan: LogicalPlan, pit_column: String) -> Result<Self> {
        let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
        let mut seen = std::collections::HashSet::new();
        let mut rows = Vec::with_capacity(batches.len());
        for b in batches {
            let pits = b.column_by_name(&pit_column).ok_or_else(|| {
                Error::internal(format!("frame rows without the column {pit_column}"))
            })?;
            let pits = arrow::compute::cast(pits, &DataType::Utf8)?;
            let pits = pits
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| Error::internal(format!("{pit_column} is not text")))?;
            let first: arrow::array::BooleanArray = pits
                .iter()
                .map(|p| Some(p.is_some_and(|p| seen.insert(p.to_string()))))
                .collect();
            rows.push(arrow::compute::filter_record_batch(&b, &first)?);
        }
        let mut pits: Vec<String> = seen.into_iter().collect();
        pits.sort();
        Ok(Affected {
            pit_column,
            pits,
            rows: Some(rows),
        })
    }

    /// The rows of the model's own input `key` holding the affected
    /// versions, in memory, and a scan of them: the rows found with the
    /// versions, else a scan of `table` restricted to them.
    async fn own_rows(
        &self,
        ctx: &SessionContext,
        inputs: &HashMap<String, LogicalPlan>,
        key: &str,
        table: &LoadedTable,
    ) -> Result<(LogicalPlan, Vec<RecordBatch>)> {
        match &self.rows {
            Some(rows) => Ok((in_memory(inputs, key, rows.clone())?, rows.clone())),
            None => materialize(ctx, key, self.restrict_table(table).await?).await,
        }
    }

    /// A scan of `table` restricted to the affected versions, pushed into
    /// the Iceberg scan ([`crate::storage::restrict`]).
    pub async fn restrict_table(&self, table: &LoadedTable) -> Result<LogicalPlan> {
        restricted_scan_plan(
            table,
            AsOf::Latest,
            &self.pit_column,
            self.pits
                .iter()
                .map(|p| ScalarValue::Utf8(Some(p.clone())))
                .collect(),
        )
        .await
    }

    /// The replace condition: rows whose own PIT hook is affected, and with
    /// `peripheral` also the given peripheral (unified bridge).
    pub fn key_match(&self, peripheral: Option<&str>) -> Result<KeyMatch> {
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        if let Some(p) = peripheral {
            fields.push(Field::new(PERIPHERAL, DataType::Utf8, false));
            columns.push(Arc::new(StringArray::from(vec![p; self.pits.len()])));
        }
        fields.push(Field::new(&self.pit_column, DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from(self.pits.clone())));
        Ok(KeyMatch::Values(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?))
    }
}

/// What an incremental build of one DAR model recomputes.
#[derive(Debug, Clone)]
pub enum Recompute {
    /// Recompute the affected versions of one frame's model.
    Versions(Affected),
    /// Unified bridge: per event bridge (its peripheral name), the affected versions.
    Unified(Vec<(String, Affected)>),
    /// Calendar: whether the year range must grow.
    Calendar { rebuild: bool },
}

impl Recompute {
    /// How many versions are to be recomputed.
    pub fn versions(&self) -> usize {
        match self {
            Recompute::Versions(a) => a.pits.len(),
            Recompute::Unified(v) => v.iter().map(|(_, a)| a.pits.len()).sum(),
            Recompute::Calendar { .. } => 0,
        }
    }

    /// Whether nothing needs recomputing.
    pub fn is_empty(&self) -> bool {
        match self {
            Recompute::Versions(a) => a.pits.is_empty(),
            Recompute::Unified(v) => v.iter().all(|(_, a)| a.pits.is_empty()),
            Recompute::Calendar { rebuild } => !rebuild,
        }
    }
}

/// What the model's inputs changed since its last build, as far as it can
/// be told from snapshots alone.
#[derive(Debug, Default)]
pub struct InputChanges {
    /// Inputs (`<ns>.<name>`) still at the snapshot the last build read:
    /// they have no changed rows.
    pub unchanged: std::collections::HashSet<String>,
    /// Unified bridge: the rows each changed event bridge's last commit
    /// added; event bridge: the rows its bridge's last commit added. A
    /// build replaces whole versions (merge-on-read: its commit adds only
    /// new rows), so these are all the input's rows of the versions it
    /// recomputed. Bridge: the rows its changed parent bridges' last commits
    /// added, and calendar: the unified bridge's, which hold every row
    /// changed since (rows that appeared after the snapshot last read).
    /// Missing when the input had more than one commit since. In memory
    /// when the writer kept them, else a lazy scan of the files
    /// ([`crate::storage::added`]).
    pub added: HashMap<String, AddedRows>,
    /// A scan of each of `added`, with its input's schema.
    added_plans: HashMap<String, LogicalPlan>,
}

impl InputChanges {
    /// Compare each of `loaded` (the inputs, at the snapshots this build
    /// reads; `inputs` scan them) with the snapshot recorded in `read` (the
    /// model's last commit's properties).
    pub async fn of(
        ctx: &SessionContext,
        wh: &Warehouse,
        model: &DarModel,
        inputs: &HashMap<String, LogicalPlan>,
        loaded: &HashMap<String, LoadedTable>,
        read: &HashMap<String, String>,
    ) -> Result<Self> {
        let mut out = Self::default();
        for (key, table) in loaded {
            let Some(since) = read
                .get(&format!("{DEP_PREFIX}{key}"))
                .and_then(|v| v.parse::<i64>().ok())
            else {
                continue;
            };
            if table.data_snapshot_id() == Some(since) {
                out.unchanged.insert(key.clone());
            } else if whole_version_input(model, key)
                && let Some(rows) = rows_added_since(wh, table, since).await?
            {
                let scan = inputs
                    .get(key)
                    .ok_or_else(|| Error::internal(format!("input {key} not provided")))?;
                let schema = Arc::new(scan.schema().as_arrow().clone());
                out.added_plans
                    .insert(key.clone(), rows.plan(ctx, wh, key, schema)?);
                out.added.insert(key.clone(), rows);
            }
        }
        Ok(out)
    }

    /// Whether the rows input `key` changed are known as the rows its last
    /// commit added: whole versions, taken as they are.
    fn whole_versions(&self, key: &str) -> bool {
        self.added.contains_key(key)
    }

    /// The rows input `key`'s last commit added, when they are in memory.
    fn kept(&self, key: &str) -> Option<&[RecordBatch]> {
        self.added.get(key).and_then(AddedRows::kept)
    }

    /// The plan to look for changed rows of input `key` in: nothing for an
    /// unchanged input, the added rows when known, else the whole `scan`.
    fn source(&self, key: &str, scan: LogicalPlan) -> Result<LogicalPlan> {
        if self.unchanged.contains(key) {
            return Ok(LogicalPlan::EmptyRelation(
                datafusion::logical_expr::EmptyRelation {
                    produce_one_row: false,
                    schema: scan.schema().clone(),
                },
            ));
        }
        Ok(self.added_plans.get(key).cloned().unwrap_or(scan))
    }
}

/// Whether `model` takes the rows input `key`'s last commit added as its
/// changes (see [`InputChanges::added`]): every input of the unified bridge
/// (event bridges), the bridge of an event bridge, the unified bridge of
/// the calendar (which looks for new dates among its changed rows), a
/// bridge's parent bridges (whose changed rows it looks for among them).
fn whole_version_input(model: &DarModel, key: &str) -> bool {
    let first = || {
        model
            .inputs
            .first()
            .is_some_and(|(ns, name)| key == format!("{ns}.{name}"))
    };
    match model.kind {
        DarKind::Unified | DarKind::Calendar => true,
        DarKind::Bridge(_) => !first(),
        DarKind::Event(_) => first(),
        _ => false,
    }
}

/// Find what `model` must recompute for input changes after `since`.
/// `inputs` maps each of `model.inputs` (`<ns>.<name>`) to a scan of it
/// (`loaded`: the tables those scans read);
/// `calendar` is the model's own current table (for the calendar's range).
#[allow(clippy::too_many_arguments)]
pub async fn affected(
    ctx: &SessionContext,
    dar: &Dar<'_>,
    model: &DarModel,
    inputs: &HashMap<String, LogicalPlan>,
    loaded: &HashMap<String, LoadedTable>,
    changes: &InputChanges,
    since: i64,
    own: Option<LogicalPlan>,
) -> Result<Recompute> {
    let get = |ns: &str, name: &str| -> Result<LogicalPlan> {
        inputs.get(&format!("{ns}.{name}")).cloned().ok_or_else(|| {
            Error::internal(format!(
                "model {}: input {ns}.{name} not provided",
                model.qualified()
            ))
        })
    };
    // Where changed rows of an input can be (see `InputChanges::source`).
    let changed_in = |ns: &str, name: &str| changes.source(&format!("{ns}.{name}"), get(ns, name)?);
    let frames = &dar.project.model.frames;
    let frame_table = |i: usize| loaded_input(loaded, &format!("{DAB}.{}", frames[i].name));
    let frame_changes = |i: usize| changed_in(DAB, &frames[i].name);
    // The frame rows whose `column` holds one of the values `keys` finds
    // (two steps: the few keys, then a scan restricted to them).
    let members = |i: usize, column: String, keys: LogicalPlan| async move {
        let values = collect_values(ctx, keys).await?;
        restricted_scan_plan(frame_table(i)?, AsOf::Latest, &column, values).await
    };
    Ok(match model.kind {
        DarKind::Bridge(i) => {
            let frame = &frames[i];
            let pit = frame.primary().pit_name();
            // Whole frame rows: those of the affected versions are what
            // the recompute reads.
            let mut union = changed_frame_rows(frame, frame_changes(i)?, since)?;
            // Versions naming a parent key whose parent-bridge rows changed.
            let mut children = Vec::new();
            for (d, (ns, name)) in dar.graph.nodes[i]
                .dependencies
                .iter()
                .zip(model.inputs.iter().skip(1))
            {
                let keys = changed_bridge_rows(changed_in(ns, name)?, since)?
                    .project(vec![col(d.hook.as_str())])?
                    .build()?;
                children.push(members(i, d.hook.clone(), keys));
            }
            for plan in futures::future::try_join_all(children).await? {
                union = union.union(plan)?;
            }
            Recompute::Versions(Affected::of_rows(ctx, union.build()?, pit).await?)
        }
        DarKind::Event(i) => {
            let frame = &frames[i];
            let pit = frame.primary().pit_name();
            let (ns, name) = &model.inputs[0];
            let bridge = format!("{ns}.{name}");
            let per_groups = rank_groups(dar.project.measures.of(&frame.name));
            // Rows the bridge's last commit added are whole versions: all
            // of them are recomputed (an unchanged one gives equal rows).
            // Without rank groups they are all the affected versions: taken
            // from memory, without a query.
            if let (true, Some(rows)) = (per_groups.is_empty(), changes.kept(&bridge)) {
                return Ok(Recompute::Versions(Affected {
                    pits: distinct_texts(rows, &pit)?,
                    pit_column: pit,
                    rows: Some(rows.to_vec()),
                }));
            }
            let rows = changed_in(ns, name)?;
            let rows = if changes.whole_versions(&bridge) {
                LogicalPlanBuilder::from(rows)
            } else {
                changed_bridge_rows(rows, since)?
            };
            let mut union = rows.project(vec![col(pit.as_str()).alias(AFFECTED)])?;
            for per in per_groups {
                let per = prefixed(frame, &per);
                let groups = changed_frame_rows(frame, frame_changes(i)?, since)?
                    .project(vec![col(per.as_str())])?
                    .build()?;
                let members = members(i, per, groups).await?;
                union = union.union(
                    LogicalPlanBuilder::from(members)
                        .project(vec![col(pit.as_str()).alias(AFFECTED)])?
                        .build()?,
                )?;
            }
            Recompute::Versions(Affected {
                pits: collect_texts(ctx, union.build()?).await?,
                pit_column: pit,
                rows: None,
            })
        }
        DarKind::Peripheral(i) => {
            let frame = &frames[i];
            let pit = frame.primary().pit_name();
            let plan = changed_frame_rows(frame, frame_changes(i)?, since)?.build()?;
            Recompute::Versions(Affected::of_rows(ctx, plan, pit).await?)
        }
        DarKind::Unified => {
            let mut queries = Vec::new();
            for (f, (ns, name)) in frames.iter().zip(&model.inputs) {
                let pit = f.primary().pit_name();
                let peripheral = entity(f)?.to_string();
                let key = format!("{ns}.{name}");
                let plan = if changes.unchanged.contains(&key) {
                    None
                } else {
                    let rows = changed_in(ns, name)?;
                    // Added rows are whole versions the event bridge
                    // rewrote: all of them replace their old copies (a
                    // version rewritten unchanged replaces equal rows).
                    let rows = if changes.whole_versions(&key) {
                        LogicalPlanBuilder::from(rows)
                    } else {
                        changed_bridge_rows(rows, since)?
                    };
                    Some(rows.project(vec![col(pit.as_str())])?.build()?)
                };
                // Rows known in memory: their versions, without a query.
                let known = changes.kept(&key);
                queries.push(async move {
                    let pits = match (known, plan) {
                        (Some(rows), _) => distinct_texts(rows, &pit)?,
                        (None, Some(plan)) => collect_texts(ctx, plan).await?,
                        (None, None) => vec![],
                    };
                    Ok::<_, Error>((
                        peripheral,
                        Affected {
                            pits,
                            pit_column: pit,
                            rows: None,
                        },
                    ))
                });
            }
            // Independent scans of the event bridges: a few at a time.
            use futures::StreamExt;
            let out: Vec<Result<(String, Affected)>> =
                futures::stream::iter(queries).buffered(4).collect().await;
            Recompute::Unified(out.into_iter().collect::<Result<_>>()?)
        }
        DarKind::Calendar => {
            let (ns, name) = &model.inputs[0];
            let rebuild = match own {
                None => true,
                Some(calendar) => {
                    calendar_must_grow(ctx, changed_in(ns, name)?, calendar, since).await?
                }
            };
            Recompute::Calendar { rebuild }
        }
    })
}

/// The `per` columns of a frame's `count_if` measures.
fn rank_groups(measures: &[Measure]) -> Vec<String> {
    let mut out: Vec<String> = measures
        .iter()
        .filter(|m| m.count_if.is_some())
        .filter_map(|m| m.per.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether changed unified rows hold a date hook outside the calendar.
async fn calendar_must_grow(
    ctx: &SessionContext,
    unified: LogicalPlan,
    calendar: LogicalPlan,
    since: i64,
) -> Result<bool> {
    use super::event::EPOCH_DATE;
    let dates = changed_bridge_rows(unified, since)?
        .filter(col(EPOCH_DATE).like(lit("epoch__date|%")))?
        .project(vec![col(EPOCH_DATE)])?
        .build()?;
    let missing = LogicalPlanBuilder::from(dates)
        .join(
            LogicalPlanBuilder::from(calendar)
                .project(vec![col(EPOCH_DATE).alias("__day")])?
                .build()?,
            JoinType::LeftAnti,
            (
                vec![Column::from_name(EPOCH_DATE)],
                vec![Column::from_name("__day")],
            ),
            None,
        )?
        .limit(0, Some(1))?
        .build()?;
    let batches = ctx.execute_logical_plan(missing).await?.collect().await?;
    Ok(batches.iter().any(|b| b.num_rows() > 0))
}

/// Drop the ghost record from a recomputed peripheral (it never changes).
fn without_ghost(plan: LogicalPlan, pit_column: &str) -> Result<LogicalPlan> {
    Ok(LogicalPlanBuilder::from(plan)
        .filter(col(pit_column).not_eq(lit(GHOST_RECORD)))?
        .build()?)
}

/// What an incremental build of `model` computes ([`Recomputed`]) and the
/// replace conditions of its commit. `inputs` scan the model's inputs (`loaded`: the tables
/// they read) and `changes` are what they changed since the model's last
/// build.
///
/// The model's own frame or bridge is read restricted to the affected
/// versions. A bridge's parent bridges and an event bridge's related
/// frames are read restricted to the keys those versions join (the
/// versions are read first, in memory): the PIT joins find the same
/// overlapping versions as over the whole tables, since rows of other keys
/// never match.
#[allow(clippy::too_many_arguments)]
pub async fn recompute_plan(
    ctx: &SessionContext,
    dar: &Dar<'_>,
    model: &DarModel,
    mut inputs: HashMap<String, LogicalPlan>,
    loaded: &HashMap<String, LoadedTable>,
    changes: &InputChanges,
    recompute: &Recompute,
) -> Result<(Recomputed, Vec<KeyMatch>)> {
    let key = |(ns, name): &(String, String)| format!("{ns}.{name}");
    let table = |k: &str| loaded_input(loaded, k);
    match (model.kind, recompute) {
        (DarKind::Bridge(i), Recompute::Versions(a)) => {
            let own = key(&model.inputs[0]);
            let (plan, rows) = a.own_rows(ctx, &inputs, &own, table(&own)?).await?;
            inputs.insert(own, plan);
            for (d, input) in dar.graph.nodes[i]
                .dependencies
                .iter()
                .zip(model.inputs.iter().skip(1))
            {
                let k = key(input);
                let hooks = distinct_values(&rows, &d.hook)?;
                let parent = restricted_scan_plan(table(&k)?, AsOf::Latest, &d.hook, hooks).await?;
                inputs.insert(k, parent);
            }
        }
        (DarKind::Peripheral(_), Recompute::Versions(a)) => {
            let own = key(&model.inputs[0]);
            let plan = match &a.rows {
                Some(rows) => in_memory(&inputs, &own, rows.clone())?,
                None => a.restrict_table(table(&own)?).await?,
            };
            inputs.insert(own, plan);
        }
        (DarKind::Event(i), Recompute::Versions(a)) => {
            let bridge = key(&model.inputs[0]);
            let frame = &dar.project.model.frames[i];
            let (plan, rows) = a.own_rows(ctx, &inputs, &bridge, table(&bridge)?).await?;
            inputs.insert(bridge, plan);
            let k = key(&model.inputs[1]);
            match rank_groups(dar.project.measures.of(&frame.name)).as_slice() {
                [] => {
                    inputs.insert(k.clone(), a.restrict_table(table(&k)?).await?);
                }
                [per] => {
                    // Ranks are computed within each `per` group, so the
                    // frame is read restricted to the groups of the affected
                    // versions, every row of each (the ranks are the full
                    // build's; rows of unaffected versions join no bridge
                    // row read here), plus the affected versions without a
                    // group (their `count_if` measures are NULL, whatever
                    // their rank).
                    let per = prefixed(frame, per);
                    let (own, rows) =
                        materialize(ctx, &k, a.restrict_table(table(&k)?).await?).await?;
                    let groups = distinct_values(&rows, &per)?;
                    let grouped =
                        restricted_scan_plan(table(&k)?, AsOf::Latest, &per, groups).await?;
                    let ungrouped = LogicalPlanBuilder::from(own)
                        .filter(col(per.as_str()).is_null())?
                        .build()?;
                    inputs.insert(
                        k.clone(),
                        LogicalPlanBuilder::from(grouped)
                            .union(ungrouped)?
                            .build()?,
                    );
                }
                // Rows of one version can sit in groups of several
                // groupings: the frame is scanned whole.
                _ => {}
            }
            for (p, input) in dar.related(i).into_iter().zip(model.inputs.iter().skip(2)) {
                let k = key(input);
                let pit = dar.project.model.frames[p].primary().pit_name();
                let versions = distinct_values(&rows, &pit)?;
                let related =
                    restricted_scan_plan(table(&k)?, AsOf::Latest, &pit, versions).await?;
                inputs.insert(k, related);
            }
        }
        (DarKind::Unified, Recompute::Unified(per_event)) => {
            for (input, (_, a)) in model.inputs.iter().zip(per_event) {
                let k = key(input);
                let plan = if a.pits.is_empty() {
                    // No affected version: no row of this event bridge.
                    let scan = inputs
                        .remove(&k)
                        .ok_or_else(|| Error::internal(format!("input {k} not provided")))?;
                    LogicalPlanBuilder::from(scan).filter(lit(false))?.build()?
                } else if changes.whole_versions(&k) {
                    // The rows its last commit added are the affected
                    // versions' rows already (each event build replaces
                    // whole versions): read just those.
                    let scan = inputs
                        .remove(&k)
                        .ok_or_else(|| Error::internal(format!("input {k} not provided")))?;
                    changes.source(&k, scan)?
                } else {
                    a.restrict_table(table(&k)?).await?
                };
                inputs.insert(k, plan);
            }
        }
        (DarKind::Calendar, Recompute::Calendar { .. }) => {}
        _ => {
            return Err(Error::internal(format!(
                "model {}: recompute set of another kind",
                model.qualified()
            )));
        }
    }
    let mut plan = dar.plan(model, &inputs)?;
    if let (DarKind::Peripheral(_), Recompute::Versions(a)) = (model.kind, recompute) {
        plan = without_ghost(plan, &a.pit_column)?;
    }
    if let Recompute::Unified(per_event) = recompute {
        // The rows are computed straight from the event bridges' rows (the
        // plan gives their schema), batch by batch: see `unified_batch`.
        let mut events = Vec::new();
        for (input, (_, a)) in model.inputs.iter().zip(per_event) {
            let k = key(input);
            if a.pits.is_empty() {
                continue;
            }
            let rows = match changes.kept(&k) {
                Some(rows) => EventRows::Kept(rows.to_vec()),
                None => EventRows::Scan(Box::new(
                    inputs
                        .remove(&k)
                        .ok_or_else(|| Error::internal(format!("input {k} not provided")))?,
                )),
            };
            events.push((k, rows));
        }
        let schema = Arc::new(plan.schema().as_arrow().clone());
        return Ok((
            Recomputed::Unified { schema, events },
            key_matches(recompute)?,
        ));
    }
    Ok((Recomputed::Plan(Box::new(plan)), key_matches(recompute)?))
}

/// What an incremental build computes: the rows of a plan, or (the unified
/// bridge) the unified rows of event bridges' rows, made batch by batch
/// ([`super::unified::unified_batch`]), so a large recompute streams.
pub enum Recomputed {
    Plan(Box<LogicalPlan>),
    Unified {
        /// The unified bridge's schema.
        schema: SchemaRef,
        /// Per event bridge with affected versions, its rows to unify.
        events: Vec<(String, EventRows)>,
    },
}

/// An event bridge's rows the unified bridge recomputes from.
pub enum EventRows {
    /// Kept in memory by the event bridge's commit in this run.
    Kept(Vec<RecordBatch>),
    /// Read from its files (the rows its last commit added).
    Scan(Box<LogicalPlan>),
}

/// The replace conditions of an incremental commit.
fn key_matches(recompute: &Recompute) -> Result<Vec<KeyMatch>> {
    Ok(match recompute {
        Recompute::Versions(a) if !a.pits.is_empty() => vec![a.key_match(None)?],
        Recompute::Unified(v) => v
            .iter()
            .filter(|(_, a)| !a.pits.is_empty())
            .map(|(p, a)| a.key_match(Some(p)))
            .collect::<Result<_>>()?,
        _ => vec![],
    })
}
